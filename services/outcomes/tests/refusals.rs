//! Refusals of the outcomes service that the scenario tests do not reach, on SQLite and
//! PostgreSQL: a Simon design no sample size up to 100 admits, an interim for a protocol without
//! a configured design, an adverse-event update that changes nothing, and adverse events before
//! the protocol's reporting period (both settings).

// Test code, helpers included, unwraps: a failure is a test failure with the value shown.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use tonic::Code;
use trialops_platform::{audit_events, backend_tests};
use trialops_proto::dosing::v1 as dpb;
use trialops_proto::outcomes::v1 as pb;
use trialops_proto::outcomes::v1::outcomes_service_client::OutcomesServiceClient;

backend_tests!(
    designs_and_interims_that_cannot_be_given,
    an_update_must_change_something,
    adverse_events_before_the_reporting_period_are_baseline_conditions,
);

/// The bundled ANBL1221 definition under another trial id and without its Simon design.
fn protocol_without_simon(dir: &std::path::Path) {
    let bundled = include_str!("../../../crates/domain/protocols/anbl1221.toml");
    let mut out = String::new();
    let mut skipping = false;
    for line in bundled.lines() {
        if line.starts_with('[') {
            skipping = line.trim() == "[outcomes.simon]";
        }
        if skipping {
            continue;
        }
        if line.trim_start().starts_with("id = \"ANBL1221\"") {
            out.push_str("id = \"NOSIMON1\"\n");
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    assert!(!out.contains("[outcomes.simon]") && out.contains("NOSIMON1"));
    std::fs::write(dir.join("nosimon.toml"), out).unwrap();
}

async fn designs_and_interims_that_cannot_be_given(backend: Backend) {
    let db = TestDatabase::create(backend)
        .await
        .unwrap_or_else(|| panic!("{backend:?}"));
    let protocols = tempfile::tempdir().unwrap();
    protocol_without_simon(protocols.path());
    let mut settings = trialops_platform::testing::settings(&db.url);
    settings.protocol_dir = Some(protocols.path().to_owned());
    let server = RunningServer::spawn(
        trialops_outcomes::build(settings, Default::default(), trialops_outcomes::Options::default())
            .await
            .unwrap(),
    );
    let mut o = OutcomesServiceClient::connect(server.url()).await.unwrap();

    // p0 0.10 against p1 0.12 (alpha 0.05, power 0.8): even one stage needs about
    // (1.645 + 0.842)^2 x 0.1 x 0.9 / 0.02^2 = 1,390 subjects (by hand), far beyond 100.
    let err = o
        .compute_simon_design(pb::ComputeSimonDesignRequest {
            p0: dec("0.10"),
            p1: dec("0.12"),
            alpha: dec("0.05"),
            beta: dec("0.20"),
        })
        .await
        .expect_err("a design was found");
    assert_refused(&err, Code::FailedPrecondition, "NO_ADMISSIBLE_DESIGN");

    let err = o
        .evaluate_simon_interim(pb::EvaluateSimonInterimRequest {
            trial_id: "NOSIMON1".into(),
        })
        .await
        .expect_err("an interim without a design");
    assert_refused(&err, Code::FailedPrecondition, "NO_SIMON_DESIGN");
    server.stop().await;
}

async fn an_update_must_change_something(backend: Backend) {
    let s = stack(backend).await;
    let mut o = s.outcomes().await;
    let subject = s.subject("SCR-1", true).await;
    let event = o
        .record_adverse_event(pb::RecordAdverseEventRequest {
            request_id: request_id(),
            subject_id: subject.subject_id.clone(),
            ctcae_term: "Nausea".into(),
            grade: 2,
            onset_on: s.time.date(0),
            site_aware_at: s.time.ago(0),
            attributions: vec![],
            seriousness: vec![],
        })
        .await
        .unwrap()
        .into_inner()
        .adverse_event
        .unwrap_or_default();
    let err = o
        .update_adverse_event(pb::UpdateAdverseEventRequest {
            request_id: request_id(),
            adverse_event_id: event.adverse_event_id.clone(),
            etag: event.etag.clone(),
            grade: 2,
            resolved_on: None,
            reason: "re-entered".into(),
        })
        .await
        .expect_err("an update changing nothing was accepted");
    assert_refused(&err, Code::FailedPrecondition, "UPDATE_CHANGES_NOTHING");
    let history = audit_events!(o, pb, "adverse_event", event.adverse_event_id.clone());
    assert_eq!(history.len(), 1, "only the recording is in the trail");
    s.stop().await;
}

fn adverse_event(
    subject_id: &str,
    onset: Option<trialops_proto::common::v1::Date>,
    time: TestTime,
) -> pb::RecordAdverseEventRequest {
    pb::RecordAdverseEventRequest {
        request_id: request_id(),
        subject_id: subject_id.to_owned(),
        ctcae_term: "Nausea".into(),
        grade: 2,
        onset_on: onset,
        site_aware_at: time.ago(0),
        attributions: vec![],
        seriousness: vec![],
    }
}

async fn adverse_events_before_the_reporting_period_are_baseline_conditions(backend: Backend) {
    // ANBL1221's definition: the period starts at enrollment (today here). Four days before is a
    // baseline condition; the day before still counts (a site's date may be a day off UTC).
    let s = stack(backend).await;
    let mut o = s.outcomes().await;
    // Enrollment's date and the test's must be the same day.
    let time = TestTime::away_from_midnight().await;
    let subject = s.subject("SCR-1", false).await;
    let err = o
        .record_adverse_event(adverse_event(&subject.subject_id, time.date(-4), time))
        .await
        .expect_err("an event four days before enrollment was recorded");
    assert_refused(&err, Code::FailedPrecondition, "ONSET_BEFORE_REPORTING_PERIOD");
    assert_eq!(metadata(&err, "reporting_period_starts"), "enrollment");
    let listed = o
        .list_audit_events(pb::ListAuditEventsRequest {
            entity_type: "adverse_event".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .events;
    assert!(listed.is_empty(), "nothing was recorded");
    o.record_adverse_event(adverse_event(&subject.subject_id, time.date(-1), time))
        .await
        .expect("the day before enrollment");
    s.stop().await;

    // A definition whose period starts with treatment: nothing before day 1 of cycle 1.
    let protocols = tempfile::tempdir().unwrap();
    bundled_as(protocols.path(), "AETREAT1", |line| {
        line.starts_with("adverse_event_reporting_starts")
            .then(|| "adverse_event_reporting_starts = \"treatment_start\"".to_owned())
    });
    let s = stack_with(backend, Some(protocols.path())).await;
    let mut o = s.outcomes().await;
    let subject = s.subject_in("AETREAT1", "SCR-1", false).await;
    let err = o
        .record_adverse_event(adverse_event(&subject.subject_id, time.date(0), time))
        .await
        .expect_err("an event before any treatment was recorded");
    assert_eq!(reason(&err), "ONSET_BEFORE_REPORTING_PERIOD");
    assert_eq!(
        (
            metadata(&err, "reporting_period_starts"),
            metadata(&err, "reporting_period_start_date")
        ),
        ("treatment_start".to_owned(), "not yet".to_owned())
    );
    let mut d = s.dosing().await;
    d.create_treatment_plan(dpb::CreateTreatmentPlanRequest {
        request_id: request_id(),
        subject_id: subject.subject_id.clone(),
    })
    .await
    .unwrap_or_else(|err| panic!("{err}"));
    d.start_cycle(dpb::StartCycleRequest {
        request_id: request_id(),
        subject_id: subject.subject_id.clone(),
        cycle_number: 1,
        planned_start_date: time.date(0),
        height_cm: dec("102"),
        weight_kg: dec("16"),
        anc_per_ul: dec("1000"),
        platelets_per_ul: dec("120000"),
        measured_at: time.ago(1),
        confirm_implausible_measurements: false,
    })
    .await
    .unwrap_or_else(|err| panic!("{err}"));
    let err = o
        .record_adverse_event(adverse_event(&subject.subject_id, time.date(-3), time))
        .await
        .expect_err("an event three days before cycle 1 was recorded");
    assert_eq!(metadata(&err, "reporting_period_start_date"), time.day(0).to_string());
    o.record_adverse_event(adverse_event(&subject.subject_id, time.date(0), time))
        .await
        .unwrap_or_else(|err| panic!("on day 1: {err}"));
    s.stop().await;
}
