//! JWT mode end to end: enrollment and dosing verify bearer tokens; health answers without
//! credentials; dosing forwards the caller's token to enrollment; the audit trail records the
//! token's subject.

// Test code, helpers included, unwraps: a failure is a test failure with the value shown.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use tonic::Code;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;
use trialops_platform::backend_tests;
use trialops_platform::testing::{jwt_settings, jwt_token, with_bearer};
use trialops_proto::dosing::v1 as pb;
use trialops_proto::enrollment::v1 as epb;

backend_tests!(jwt_mode_authenticates_every_call_and_forwards_the_caller);

fn token(sub: &str, role: &str) -> String {
    jwt_token(sub, role, Some("COG-101"))
}

async fn jwt_mode_authenticates_every_call_and_forwards_the_caller(backend: Backend) {
    let enrollment_db = TestDatabase::create(backend)
        .await
        .unwrap_or_else(|| panic!("{backend:?}"));
    let options = trialops_enrollment::Options {
        randomization_secret: Some(enrollment::SECRET.to_vec()),
        ..Default::default()
    };
    let app = trialops_enrollment::build(
        jwt_settings(trialops_platform::testing::settings(&enrollment_db.url)),
        Default::default(),
        options,
    )
    .await
    .unwrap();
    let enrollment_server = RunningServer::spawn(app);
    let dosing_db = TestDatabase::create(backend)
        .await
        .unwrap_or_else(|| panic!("{backend:?}"));
    let settings = jwt_settings(trialops_platform::testing::settings(&dosing_db.url));
    let config = trialops_dosing::Config {
        enrollment_url: enrollment_server.url(),
    };
    let dosing_server = RunningServer::spawn(
        trialops_dosing::build(settings, config, trialops_dosing::Options::default())
            .await
            .unwrap(),
    );
    let mut e = enrollment::client(&enrollment_server).await;
    let mut d = trialops_proto::dosing::v1::dosing_service_client::DosingServiceClient::connect(dosing_server.url())
        .await
        .unwrap();

    // No token: refused. Health needs none (kubelet probes send none).
    let err = e
        .list_trials(epb::ListTrialsRequest::default())
        .await
        .expect_err("no token accepted");
    assert_eq!(err.code(), Code::Unauthenticated);
    let channel = tonic::transport::Endpoint::from_shared(enrollment_server.url())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let health = HealthClient::new(channel)
        .check(HealthCheckRequest { service: String::new() })
        .await;
    assert!(health.is_ok(), "{health:?}");

    let admin = token("admin-1", "administrator");
    let coordinator = token("coordinator-17", "site_coordinator");
    let site = epb::RegisterSiteRequest {
        request_id: request_id(),
        site_code: "COG-101".into(),
        name: "Hospital".into(),
        ..Default::default()
    };
    e.register_site(with_bearer(site, &admin)).await.unwrap();
    let subject = enrollment::enroll_as(&mut e, &coordinator, "COG-101", "SCR-1").await;

    // Dosing refuses a call without a token, and with one it reaches enrollment on the
    // caller's behalf (enrollment also demands a token).
    let plan = pb::CreateTreatmentPlanRequest {
        request_id: request_id(),
        subject_id: subject.subject_id.clone(),
    };
    let err = d
        .create_treatment_plan(plan.clone())
        .await
        .expect_err("no token accepted");
    assert_eq!(err.code(), Code::Unauthenticated);
    let created = d
        .create_treatment_plan(with_bearer(plan, &token("pharmacist-3", "pharmacist")))
        .await
        .unwrap()
        .into_inner()
        .plan
        .unwrap_or_default();
    assert_eq!(created.arm_code, subject.arm_code);

    // The audit trail names the token's subject and role.
    let events = trialops_platform::audit_events!(e, epb, "subject", subject.subject_id.clone(), bearer: &admin);
    assert_eq!(
        (
            events[0].actor.as_str(),
            events[0].actor_role.as_str(),
            events[0].actor_site.as_str()
        ),
        ("coordinator-17", "site_coordinator", "COG-101")
    );

    // Site scoping: a coordinator and a pharmacist of COG-202 cannot see or act on COG-101's
    // subject; it answers NOT_FOUND as if it did not exist.
    let other = jwt_token("coordinator-9", "site_coordinator", Some("COG-202"));
    let get = epb::GetSubjectRequest {
        subject_id: subject.subject_id.clone(),
    };
    let err = e
        .get_subject(with_bearer(get.clone(), &other))
        .await
        .expect_err("another site's subject shown");
    assert_eq!(err.code(), Code::NotFound);
    let listed = e
        .list_subjects(with_bearer(
            epb::ListSubjectsRequest {
                trial_id: "ANBL1221".into(),
                ..Default::default()
            },
            &other,
        ))
        .await
        .unwrap()
        .into_inner()
        .subjects;
    assert!(listed.is_empty(), "another site's subjects listed");
    let change = epb::ChangeSubjectStatusRequest {
        request_id: request_id(),
        subject_id: subject.subject_id.clone(),
        etag: subject.etag.clone(),
        new_status: epb::SubjectStatus::Withdrawn as i32,
        reason: "test".into(),
        effective_on: enrollment::today(),
    };
    assert_eq!(
        e.change_subject_status(with_bearer(change, &other))
            .await
            .err()
            .map(|e| e.code()),
        Some(Code::NotFound)
    );
    let screening = enrollment::screen_request("COG-101", "SCR-2");
    assert_eq!(
        e.screen_subject(with_bearer(screening, &other))
            .await
            .err()
            .map(|e| e.code()),
        Some(Code::PermissionDenied)
    );
    let pharmacist_elsewhere = jwt_token("pharmacist-8", "pharmacist", Some("COG-202"));
    let plan_request = pb::GetTreatmentPlanRequest {
        subject_id: subject.subject_id.clone(),
    };
    let err = d
        .get_treatment_plan(with_bearer(plan_request, &pharmacist_elsewhere))
        .await
        .err();
    assert_eq!(err.map(|e| e.code()), Some(Code::NotFound));
    let worklist = pb::ListAdministrationsRequest {
        site_code: "COG-101".into(),
        from_date: enrollment::today(),
        to_date: enrollment::today(),
        page_size: 10,
        page_token: String::new(),
    };
    let err = d
        .list_administrations(with_bearer(worklist, &pharmacist_elsewhere))
        .await
        .err();
    assert_eq!(err.map(|e| e.code()), Some(Code::PermissionDenied));
    // A site-bound role without a site claim can see nothing; a statistician sees every site.
    let siteless = jwt_token("coordinator-0", "site_coordinator", None);
    assert_eq!(
        e.get_subject(with_bearer(get.clone(), &siteless))
            .await
            .err()
            .map(|e| e.code()),
        Some(Code::PermissionDenied)
    );
    let statistician = jwt_token("statistician-1", "statistician", None);
    assert!(e.get_subject(with_bearer(get, &statistician)).await.is_ok());

    dosing_server.stop().await;
    enrollment_server.stop().await;
}
