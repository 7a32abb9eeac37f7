//! A protocol amendment mid-treatment, over gRPC: the trial starts under ANBL1221 version 1.0
//! (dinutuximab 25 mg/m2/day), version 2.0 (17.5 mg/m2/day) is activated with an effective date,
//! and each cycle is dosed under the version in force on its day 1 — doses checked against hand
//! calculations. Refusals: an effective date not after today, a version already recorded, an
//! amendment removing an agent subjects on an arm receive.

// Test code, helpers included, unwraps: a failure is a test failure with the value shown.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use tonic::Code;
use trialops_domain::protocol::{ANBL1221_TOML, anbl1221_before_dose_revision};
use trialops_platform::backend_tests;
use trialops_platform::testing::TestTime;
use trialops_proto::dosing::v1 as pb;
use trialops_proto::enrollment::v1 as epb;

backend_tests!(cycles_are_dosed_under_the_version_in_force_on_day_1);

fn amend(definition: &str, effective_on: Option<trialops_proto::common::v1::Date>) -> epb::AmendProtocolRequest {
    epb::AmendProtocolRequest {
        request_id: request_id(),
        trial_id: "ANBL1221".into(),
        definition: definition.to_owned(),
        effective_on,
        reason: "Amendment: dinutuximab dose revised to 17.5 mg/m2/day".into(),
    }
}

fn dinutuximab(cycle: &pb::Cycle) -> String {
    rounded(cycle)
        .into_iter()
        .find(|(agent, _)| agent == "dinutuximab")
        .map(|(_, dose)| dose)
        .unwrap_or_default()
}

async fn cycles_are_dosed_under_the_version_in_force_on_day_1(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("anbl1221-v1.toml"), anbl1221_before_dose_revision()).unwrap();
    let protocol_dir = dir.path().to_path_buf();
    let set = TestStack::start(backend, move |_, settings| {
        settings.protocol_dir = Some(protocol_dir.clone());
    })
    .await;
    let s = Stack { set };
    let time = TestTime::away_from_midnight().await;
    let mut e = s.enrollment().await;
    let mut d = s.dosing().await;
    let (_, on_b) = s.subjects_on_both_arms().await;

    let versions = e
        .list_protocol_versions(epb::ListProtocolVersionsRequest {
            trial_id: "ANBL1221".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .versions;
    assert_eq!(versions.len(), 1);
    assert_eq!((versions[0].version.as_str(), versions[0].in_force), ("1.0", true));
    assert_eq!(versions[0].effective_on, None);

    // Refused: effective today (tomorrow is the earliest), a version already recorded, and arm B
    // removed while subjects are on it.
    let err = e.amend_protocol(amend(ANBL1221_TOML, time.date(0))).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(violated_fields(&err), ["effective_on"]);
    let err = e
        .amend_protocol(amend(&anbl1221_before_dose_revision(), time.date(2)))
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&err), ["definition.trial.protocol_version"]);
    let agent = ANBL1221_TOML
        .find("[[regimens.agents]]\nid = \"sargramostim\"")
        .unwrap();
    let outcomes = ANBL1221_TOML
        .find(
            "
# Outcomes.",
        )
        .and_then(|i| {
            ANBL1221_TOML[..i].rfind(
                "
",
            )
        })
        .unwrap();
    let without_gm_csf = format!("{}{}", &ANBL1221_TOML[..agent], &ANBL1221_TOML[outcomes..]);
    let err = e
        .amend_protocol(amend(&without_gm_csf, time.date(2)))
        .await
        .unwrap_err();
    assert_refused(&err, Code::FailedPrecondition, "PROTOCOL_AMENDMENT_REFUSED");
    assert!(
        metadata(&err, "problems").contains("agent sargramostim of arm B ("),
        "{err:?}"
    );

    // Cycle 1 starts 19 days before version 2.0 takes effect: version 1.0.
    let amended = e
        .amend_protocol(amend(ANBL1221_TOML, time.date(2)))
        .await
        .unwrap()
        .into_inner()
        .version
        .unwrap();
    assert_eq!((amended.version.as_str(), amended.in_force), ("2.0", false));
    assert_eq!(amended.effective_on, time.date(2));
    assert_eq!(amended.definition_sha256.len(), 64);
    let first = d
        .start_cycle(start(&on_b.subject_id, 1, time.date(-19), "102", "16", "1000"))
        .await
        .unwrap()
        .into_inner()
        .cycle
        .unwrap();
    // BSA 0.67 m2 (102 cm, 16 kg); dinutuximab 25 x 0.67 = 16.75 mg -> 16.8 (one decimal, half up).
    assert_eq!(
        (first.protocol_version.as_str(), dinutuximab(&first).as_str()),
        ("1.0", "16.8")
    );
    // Cycle 2, 21 days later, is on the effective date: version 2.0, 17.5 x 0.67 = 11.725 -> 11.7.
    let second = d
        .start_cycle(start(&on_b.subject_id, 2, time.date(2), "102", "16", "1000"))
        .await
        .unwrap()
        .into_inner()
        .cycle
        .unwrap();
    assert_eq!(
        (second.protocol_version.as_str(), dinutuximab(&second).as_str()),
        ("2.0", "11.7")
    );
    // Both versions dose temozolomide alike: 100 x 0.67 = 67 -> 65 (capsules).
    assert_eq!(rounded(&first)[0], ("temozolomide".to_owned(), "65".to_owned()));
    assert_eq!(rounded(&second)[0], rounded(&first)[0]);

    // Exposure splits each agent by version: dinutuximab planned 4 days x 16.8 = 67.2 mg under
    // 1.0 and 4 x 11.7 = 46.8 mg under 2.0 (none recorded as given yet).
    let exposure = d
        .get_cumulative_exposure(pb::GetCumulativeExposureRequest {
            subject_id: on_b.subject_id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    let agent = exposure.agents.iter().find(|a| a.agent_id == "dinutuximab").unwrap();
    let split: Vec<(String, i32, String)> = agent
        .by_protocol_version
        .iter()
        .map(|v| {
            (
                v.protocol_version.clone(),
                v.cycles,
                v.planned_total.clone().unwrap_or_default().value,
            )
        })
        .collect();
    assert_eq!(
        split,
        [
            ("1.0".to_owned(), 1, "67.2".to_owned()),
            ("2.0".to_owned(), 1, "46.8".to_owned())
        ]
    );
    assert_eq!(agent.planned_total.clone().unwrap_or_default().value, "114");

    // GetTrial lists both versions; today 1.0 is still in force.
    let trial = e
        .get_trial(epb::GetTrialRequest {
            trial_id: "ANBL1221".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .trial
        .unwrap();
    let listed: Vec<(String, bool)> = trial.versions.iter().map(|v| (v.version.clone(), v.in_force)).collect();
    assert_eq!(listed, [("1.0".to_owned(), true), ("2.0".to_owned(), false)]);
    assert_eq!(trial.summary.unwrap().protocol_version, "1.0");
    let v1 = e
        .get_protocol_version(epb::GetProtocolVersionRequest {
            trial_id: "ANBL1221".into(),
            version: "1.0".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(v1.definition, anbl1221_before_dose_revision());
    s.stop().await;
}
