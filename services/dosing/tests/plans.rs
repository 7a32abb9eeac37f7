//! Treatment plans over gRPC: created from the arm enrollment assigned.

// Test code, helpers included, unwraps: a failure is a test failure with the value shown.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use tonic::Code;
use trialops_platform::backend_tests;
use trialops_proto::dosing::v1 as pb;
use trialops_proto::enrollment::v1 as epb;

backend_tests!(plans_follow_enrollment,);

async fn plans_follow_enrollment(backend: Backend) {
    let s = stack(backend).await;
    let mut d = s.dosing().await;
    let err = d
        .create_treatment_plan(pb::CreateTreatmentPlanRequest {
            request_id: request_id(),
            subject_id: "ANBL1221-0099".into(),
        })
        .await
        .expect_err("planned an unknown subject");
    assert_refused(&err, Code::FailedPrecondition, "SUBJECT_NOT_ENROLLED");

    let plan = s.subject_with_plan("SCR-1").await;
    let mut e = s.enrollment().await;
    let subject = e
        .get_subject(epb::GetSubjectRequest {
            subject_id: plan.subject_id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .subject
        .unwrap_or_default();
    assert_eq!(
        plan.arm_code, subject.arm_code,
        "the plan takes the arm enrollment randomized"
    );
    let expected_agents: &[&str] = if plan.arm_code == "A" {
        &["temozolomide", "irinotecan", "temsirolimus"]
    } else {
        &["temozolomide", "irinotecan", "dinutuximab", "sargramostim"]
    };
    assert_eq!(
        plan.agents.iter().map(|a| a.agent_id.as_str()).collect::<Vec<_>>(),
        expected_agents
    );
    assert!(plan.agents.iter().all(|a| a.dose_level == 0));
    assert_eq!(plan.maximum_cycles, 17);

    let again = d
        .create_treatment_plan(pb::CreateTreatmentPlanRequest {
            request_id: request_id(),
            subject_id: plan.subject_id.clone(),
        })
        .await
        .expect_err("planned twice");
    assert_refused(&again, Code::AlreadyExists, "TREATMENT_PLAN_EXISTS");

    // Off protocol therapy in enrollment: no new cycle.
    e.change_subject_status(epb::ChangeSubjectStatusRequest {
        request_id: request_id(),
        subject_id: plan.subject_id.clone(),
        etag: subject.etag,
        new_status: epb::SubjectStatus::OffProtocolTherapy as i32,
        reason: "parental decision".into(),
        effective_on: enrollment::today(),
    })
    .await
    .unwrap();
    let err = d
        .start_cycle(start(&plan.subject_id, 1, date(2026, 1, 5), "102", "16", "1000"))
        .await
        .expect_err("started off therapy");
    assert_refused(&err, Code::FailedPrecondition, "SUBJECT_NOT_ON_PROTOCOL_THERAPY");
    s.stop().await;
}
