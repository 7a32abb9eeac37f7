//! Administrations and dose changes over gRPC: recorded once and corrected with a reason;
//! modifications from the next cycle that never rewrite given doses.

// Test code, helpers included, unwraps: a failure is a test failure with the value shown.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use tonic::Code;
use trialops_platform::{audit_events, backend_tests};
use trialops_proto::dosing::v1 as pb;

backend_tests!(
    administrations_are_recorded_once_and_corrected_with_a_reason,
    modifications_apply_from_the_next_cycle_and_never_rewrite_given_doses,
);

async fn administrations_are_recorded_once_and_corrected_with_a_reason(backend: Backend) {
    let s = stack(backend).await;
    let (mut d, plan) = s.first_cycle().await;
    let tmz: Vec<_> = administrations(&mut d, date(2026, 1, 5), date(2026, 1, 9))
        .await
        .into_iter()
        .filter(|a| a.agent_id == "temozolomide")
        .collect();
    assert_eq!(tmz.len(), 5);
    let now = chrono::Utc::now().timestamp();
    let given = |id: &str, dose: &str| pb::RecordAdministrationRequest {
        request_id: request_id(),
        administration_id: id.to_owned(),
        status: pb::AdministrationStatus::Given as i32,
        actual_dose: dec(dose),
        started_at: Some(prost_types::Timestamp {
            seconds: now - 7200,
            nanos: 0,
        }),
        ended_at: Some(prost_types::Timestamp {
            seconds: now - 7000,
            nanos: 0,
        }),
        ..Default::default()
    };
    let first = d
        .record_administration(given(&tmz[0].administration_id, "65"))
        .await
        .unwrap()
        .into_inner()
        .administration
        .unwrap_or_default();
    assert_eq!(first.status, pb::AdministrationStatus::Given as i32);
    assert!(!first.deviation_flagged);
    let twice = d
        .record_administration(given(&tmz[0].administration_id, "65"))
        .await
        .expect_err("recorded twice");
    assert_refused(&twice, Code::AlreadyExists, "ADMINISTRATION_ALREADY_RECORDED");
    // A correction needs the etag and a reason; the audit trail keeps the first value.
    let mut correction = given(&tmz[0].administration_id, "60");
    correction.etag = first.etag.clone();
    correction.correction_reason = "the capsule count was misread".into();
    let corrected = d
        .record_administration(correction)
        .await
        .unwrap()
        .into_inner()
        .administration
        .unwrap_or_default();
    assert_eq!(corrected.actual_dose.unwrap_or_default().value, "60");
    let history = audit_events!(d, pb, "administration", first.administration_id.clone());
    assert_eq!(
        history.iter().map(|e| e.action.as_str()).collect::<Vec<_>>(),
        ["administration.recorded", "administration.corrected"]
    );
    assert_eq!(history[1].reason, "the capsule count was misread");
    assert!(
        history[1].old_value_json.contains("\"actual_dose\":\"65\""),
        "{}",
        history[1].old_value_json
    );

    // 55 mg against 65 prescribed deviates 15.38% > 10%: flagged.
    let low = d
        .record_administration(given(&tmz[1].administration_id, "55"))
        .await
        .unwrap()
        .into_inner()
        .administration
        .unwrap_or_default();
    assert!(low.deviation_flagged);
    // Held needs a reason; then it can still be given.
    let mut held = pb::RecordAdministrationRequest {
        request_id: request_id(),
        administration_id: tmz[2].administration_id.clone(),
        status: pb::AdministrationStatus::Held as i32,
        ..Default::default()
    };
    assert_eq!(
        violated_fields(&d.record_administration(held.clone()).await.expect_err("accepted")),
        ["reason"]
    );
    held.reason = "vomiting".into();
    d.record_administration(held).await.unwrap();
    d.record_administration(given(&tmz[2].administration_id, "65"))
        .await
        .unwrap();

    // Exposure by hand: temozolomide planned 5 x 65 = 325 mg; delivered 60 + 55 + 65 = 180 mg;
    // intensity 180 / 325 = 0.553846... -> 0.5538.
    let exposure = d
        .get_cumulative_exposure(pb::GetCumulativeExposureRequest {
            subject_id: plan.subject_id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    let t = exposure
        .agents
        .iter()
        .find(|a| a.agent_id == "temozolomide")
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        (
            t.planned_total.unwrap_or_default().value,
            t.delivered_total.unwrap_or_default().value,
            t.dose_intensity.unwrap_or_default().value
        ),
        ("325".to_owned(), "180".to_owned(), "0.5538".to_owned())
    );
    assert_eq!((exposure.cycles_started, exposure.cycles_completed), (1, 0));
    assert!(exposure.received_protocol_therapy);

    // The trial-wide list gives the same exposure, with untreated subjects marked so.
    let untreated = s.subject_with_plan("SCR-2").await;
    let listed = d
        .list_exposures(pb::ListExposuresRequest {
            trial_id: "ANBL1221".into(),
            page_size: 1,
            page_token: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.exposures, std::slice::from_ref(&exposure));
    let rest = d
        .list_exposures(pb::ListExposuresRequest {
            trial_id: "ANBL1221".into(),
            page_size: 1,
            page_token: listed.next_page_token,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(rest.exposures.len(), 1);
    assert_eq!(rest.exposures[0].subject_id, untreated.subject_id);
    assert!(!rest.exposures[0].received_protocol_therapy);

    // On 7 January cycle 1 (from 5 January) is running; on 1 January nothing was.
    let active = d
        .get_active_treatment(pb::GetActiveTreatmentRequest {
            subject_id: plan.subject_id.clone(),
            on_date: date(2026, 1, 7),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(active.cycle_number, 1);
    assert_eq!(
        active.agent_ids[..2],
        ["temozolomide".to_owned(), "irinotecan".to_owned()]
    );
    let before = d
        .get_active_treatment(pb::GetActiveTreatmentRequest {
            subject_id: plan.subject_id.clone(),
            on_date: date(2026, 1, 1),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((before.cycle_number, before.agent_ids.len()), (0, 0));
    s.stop().await;
}

async fn modifications_apply_from_the_next_cycle_and_never_rewrite_given_doses(backend: Backend) {
    let s = stack(backend).await;
    let (mut d, plan) = s.first_cycle().await;
    let cycle1 = administrations(&mut d, date(2026, 1, 5), date(2026, 1, 16)).await;
    let iri_day1 = cycle1
        .iter()
        .find(|a| a.agent_id == "irinotecan" && a.cycle_day == 1)
        .cloned()
        .unwrap_or_default();
    let now = chrono::Utc::now().timestamp();
    d.record_administration(pb::RecordAdministrationRequest {
        request_id: request_id(),
        administration_id: iri_day1.administration_id.clone(),
        status: pb::AdministrationStatus::Given as i32,
        actual_dose: dec("33.5"),
        started_at: Some(prost_types::Timestamp {
            seconds: now - 7200,
            nanos: 0,
        }),
        ended_at: Some(prost_types::Timestamp {
            seconds: now - 1800,
            nanos: 0,
        }),
        ..Default::default()
    })
    .await
    .unwrap();

    let modify = |etag: &str, level: i32| pb::ApplyDoseModificationRequest {
        request_id: request_id(),
        subject_id: plan.subject_id.clone(),
        etag: etag.to_owned(),
        agent_id: "temozolomide".into(),
        dose_level: level,
        reason: "grade 4 neutropenia".into(),
        adverse_event_id: "AE-7".into(),
    };
    let reduced = d
        .apply_dose_modification(modify(&plan.etag, -1))
        .await
        .unwrap()
        .into_inner()
        .plan
        .unwrap_or_default();
    let tmz = reduced
        .agents
        .iter()
        .find(|a| a.agent_id == "temozolomide")
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        (tmz.dose_level, tmz.protocol_dose.unwrap_or_default().value.as_str()),
        (-1, "75")
    );
    let stale = d.apply_dose_modification(modify(&plan.etag, -1)).await.err();
    assert_eq!(stale.map(|e| e.code()), Some(Code::Aborted));
    let up = d
        .apply_dose_modification(modify(&reduced.etag, 0))
        .await
        .expect_err("re-escalated");
    assert_eq!(reason(&up), "DOSE_RE_ESCALATION_NOT_ALLOWED");

    // Irinotecan stops: its open administrations close; the given one stays as recorded.
    let stopped = d
        .discontinue_agent(pb::DiscontinueAgentRequest {
            request_id: request_id(),
            subject_id: plan.subject_id.clone(),
            etag: reduced.etag.clone(),
            agent_id: "irinotecan".into(),
            reason: "grade 3 diarrhoea despite loperamide".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .plan
        .unwrap_or_default();
    assert!(
        stopped
            .agents
            .iter()
            .any(|a| a.agent_id == "irinotecan" && a.discontinued)
    );
    let after = administrations(&mut d, date(2026, 1, 5), date(2026, 1, 16)).await;
    let iri: Vec<_> = after.iter().filter(|a| a.agent_id == "irinotecan").collect();
    assert_eq!(
        iri.iter()
            .filter(|a| a.status == pb::AdministrationStatus::Given as i32)
            .count(),
        1
    );
    assert_eq!(
        iri.iter()
            .filter(|a| a.status == pb::AdministrationStatus::NotGiven as i32)
            .count(),
        4
    );
    let tmz_cycle1: Vec<_> = after
        .iter()
        .filter(|a| a.agent_id == "temozolomide")
        .map(|a| a.prescribed_dose.clone().unwrap_or_default().value)
        .collect();
    assert_eq!(tmz_cycle1, ["65"; 5], "the current cycle keeps its prescriptions");

    // Cycle 2: temozolomide at 75 mg/m2 x 0.67 = 50.25 -> 50 mg; no irinotecan.
    let cycle2 = d
        .start_cycle(start(&plan.subject_id, 2, date(2026, 1, 26), "102", "16", "1000"))
        .await
        .unwrap()
        .into_inner()
        .cycle
        .unwrap_or_default();
    assert_eq!(rounded(&cycle2)[0], ("temozolomide".to_owned(), "50".to_owned()));
    assert!(cycle2.doses.iter().all(|x| x.agent_id != "irinotecan"));
    s.stop().await;
}
