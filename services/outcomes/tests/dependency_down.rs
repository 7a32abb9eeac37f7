//! Outcomes with dosing down: UNAVAILABLE, and nothing written.

// Test code, helpers included, unwraps: a failure is a test failure with the value shown.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use tonic::Code;
use trialops_platform::{audit_events, backend_tests};
use trialops_proto::outcomes::v1 as pb;

backend_tests!(dosing_down_is_unavailable_and_writes_nothing,);

async fn dosing_down_is_unavailable_and_writes_nothing(backend: Backend) {
    let s = stack(backend).await;
    let mut o = s.outcomes().await;
    let subject = s.subject("SCR-1", true).await;
    let before = audit_events!(o, pb).len();
    let Stack { time, mut set } = s;
    set.stop_one(Service::Dosing).await;
    let err = o
        .record_adverse_event(pb::RecordAdverseEventRequest {
            request_id: request_id(),
            subject_id: subject.subject_id.clone(),
            ctcae_term: "Fever".into(),
            grade: 2,
            onset_on: time.date(0),
            site_aware_at: time.ago(0),
            attributions: vec![],
            seriousness: vec![],
        })
        .await
        .expect_err("recorded without dosing");
    assert_eq!(err.code(), Code::Unavailable);
    let after = audit_events!(o, pb).len();
    assert_eq!(after, before);
    set.stop().await;
}
