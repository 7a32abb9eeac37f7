//! Dosing with enrollment down: UNAVAILABLE, and nothing written.

// Test code, helpers included, unwraps: a failure is a test failure with the value shown.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use tonic::Code;
use trialops_platform::{audit_events, backend_tests};
use trialops_proto::dosing::v1 as pb;

backend_tests!(enrollment_down_is_unavailable_and_writes_nothing,);

async fn enrollment_down_is_unavailable_and_writes_nothing(backend: Backend) {
    let s = stack(backend).await;
    let mut d = s.dosing().await;
    let plan = s.subject_with_plan("SCR-1").await;
    let before = audit_events!(d, pb).len();
    let Stack { mut set } = s;
    set.stop_one(Service::Enrollment).await;
    let err = d
        .start_cycle(start(&plan.subject_id, 1, date(2026, 1, 5), "102", "16", "1000"))
        .await
        .expect_err("started without enrollment");
    assert_eq!((err.code(), reason(&err).as_str()), (Code::Unavailable, "UNAVAILABLE"));
    assert!(
        !err.message().contains("127.0.0.1"),
        "no internals in the message: {}",
        err.message()
    );
    let after = audit_events!(d, pb).len();
    assert_eq!(after, before);
    assert_eq!(
        d.get_cycle(pb::GetCycleRequest {
            subject_id: plan.subject_id.clone(),
            cycle_number: 1
        })
        .await
        .err()
        .map(|e| e.code()),
        Some(Code::NotFound)
    );
    set.stop().await;
}
