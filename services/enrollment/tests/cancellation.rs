//! Writes cut off by the caller's deadline, on SQLite and PostgreSQL. tonic drops a handler's
//! future when the deadline passes, wherever it is; an enrollment (allocation counter, subject,
//! allocation, idempotency record, two audit entries) must then be all there or not there at all,
//! and a retry with the same request id must complete it exactly once.

// Test code, helpers included, unwraps: a failure is a test failure with the value shown.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::*;
use tonic::Code;
use trialops_platform::backend_tests;
use trialops_proto::enrollment::v1 as pb;

backend_tests!(an_enrollment_cut_off_at_any_point_is_all_or_nothing);

async fn an_enrollment_cut_off_at_any_point_is_all_or_nothing(backend: Backend) {
    let (_db, server) = start(backend).await;
    let mut c = client(&server).await;
    register_site(&mut c, "COG-101").await;
    let mut cut = 0;
    let attempts = 45u64;
    for n in 1..=attempts {
        let screening_id = format!("SCR-{n}");
        screen(&mut c, "COG-101", &screening_id, eligible_values()).await;
        let request = enroll_request(
            "COG-101",
            &screening_id,
            strata("no_prior_irinotecan_temozolomide", "amplified"),
        );
        // Deadlines from 0.1 ms growing by 17% to about 120 ms: the early ones end before the
        // handler starts, the middle ones inside its transaction, the last ones after it.
        let mut hurried = tonic::Request::new(request.clone());
        hurried.set_timeout(Duration::from_secs_f64(100e-6 * 1.17f64.powi(n as i32)));
        match c.enroll_subject(hurried).await {
            Ok(_) => {}
            Err(e) if matches!(e.code(), Code::DeadlineExceeded | Code::Cancelled) => cut += 1,
            Err(e) => panic!("attempt {n}: {e}"),
        }
        // The retry completes it, once: numbers stay consecutive and nothing is half-written.
        let subject = c
            .enroll_subject(request)
            .await
            .unwrap_or_else(|e| panic!("retry {n}: {e}"))
            .into_inner()
            .subject
            .unwrap_or_default();
        assert_eq!(subject.subject_id, format!("ANBL1221-{n:04}"), "attempt {n}");
        let summary = c
            .get_allocation_summary(pb::GetAllocationSummaryRequest {
                trial_id: "ANBL1221".into(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(summary.total_subjects, n as i64, "attempt {n}");
        let trail = c
            .verify_audit_trail(pb::VerifyAuditTrailRequest {})
            .await
            .unwrap()
            .into_inner()
            .verification
            .unwrap_or_default();
        // The site, then per candidate a screening, the enrollment and its randomization.
        assert!(trail.intact, "attempt {n}: {trail:?}");
        assert_eq!(trail.events_checked, 1 + 3 * n as i64, "attempt {n}");
    }
    assert!(cut > 0, "no attempt was cut off: the test did not test anything");
    assert!(
        cut < attempts as i32,
        "every attempt was cut off before the server could finish"
    );
    server.stop().await;
}
