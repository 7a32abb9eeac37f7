//! Electronic signatures in outcomes, with the three services in JWT mode: an investigator of the
//! subject's site signs a serious adverse event report and a central reviewer a response
//! assessment, each with a fresh authentication. A later change to the event shows the signature
//! no longer applies, wherever the event is shown, until it is signed again. Refused, writing
//! nothing: a stale authentication, another site's investigator, an event that is not serious,
//! the wrong role. Runs on SQLite and PostgreSQL.

// Test code, helpers included, unwraps: a failure is a test failure with the value shown.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use tonic::Code;
use trialops_platform::backend_tests;
use trialops_platform::testing::{assert_refused, jwt_settings, jwt_signing_token, jwt_token, with_bearer};
use trialops_proto::common::v1::SignatureMeaning;
use trialops_proto::dosing::v1 as dpb;
use trialops_proto::enrollment::v1 as epb;
use trialops_proto::outcomes::v1 as pb;

backend_tests!(serious_adverse_events_and_assessments_are_signed_and_a_change_shows);

async fn serious_adverse_events_and_assessments_are_signed_and_a_change_shows(backend: Backend) {
    let time = TestTime::away_from_midnight().await;
    let set = TestStack::start(backend, |_, s| *s = jwt_settings(s.clone())).await;
    let mut e = enrollment::connect(&set.url(Service::Enrollment)).await;
    let mut d = dpb::dosing_service_client::DosingServiceClient::connect(set.url(Service::Dosing))
        .await
        .unwrap();
    let mut o = pb::outcomes_service_client::OutcomesServiceClient::connect(set.url(Service::Outcomes))
        .await
        .unwrap();
    let admin = jwt_token("admin-1", "administrator", None);
    let coordinator = jwt_token("coord-101", "site_coordinator", Some("COG-101"));
    let pharmacist = jwt_token("pharm-101", "pharmacist", Some("COG-101"));
    for site in ["COG-101", "COG-202"] {
        let request = epb::RegisterSiteRequest {
            request_id: request_id(),
            site_code: site.into(),
            name: format!("Site {site}"),
            country: "USA".into(),
        };
        e.register_site(with_bearer(request, &admin)).await.unwrap();
    }
    let subject = enrollment::enroll_as(&mut e, &coordinator, "COG-101", "SCR-1").await;
    let plan = dpb::CreateTreatmentPlanRequest {
        request_id: request_id(),
        subject_id: subject.subject_id.clone(),
    };
    d.create_treatment_plan(with_bearer(plan, &pharmacist)).await.unwrap();

    let investigator = jwt_signing_token("inv-101", "investigator", Some("COG-101"), "Dr. Ada Investigator", 2);
    let event = |grade: i32, seriousness: Vec<i32>| pb::RecordAdverseEventRequest {
        request_id: request_id(),
        subject_id: subject.subject_id.clone(),
        ctcae_term: "Febrile neutropenia".into(),
        grade,
        onset_on: time.date(0),
        site_aware_at: time.ago(1),
        attributions: vec![],
        seriousness,
    };
    let writer = o.clone();
    let record = |request: pb::RecordAdverseEventRequest| {
        let (mut o, token) = (writer.clone(), investigator.clone());
        async move {
            o.record_adverse_event(with_bearer(request, &token))
                .await
                .unwrap()
                .into_inner()
                .adverse_event
                .unwrap()
        }
    };
    let serious = record(event(3, vec![pb::Seriousness::Hospitalisation as i32])).await;
    assert!(serious.signatures.is_empty());
    let minor = record(event(2, vec![])).await;
    let sign = |id: &str, meaning: SignatureMeaning| pb::SignAdverseEventRequest {
        request_id: request_id(),
        adverse_event_id: id.into(),
        meaning: meaning as i32,
    };

    // Refusals, each writing nothing (the audit log is checked at the end).
    let signer = o.clone();
    let sign_as = |id: &str, meaning: SignatureMeaning, token: &str| {
        let (mut o, request, token) = (signer.clone(), sign(id, meaning), token.to_owned());
        async move { o.sign_adverse_event(with_bearer(request, &token)).await }
    };
    let approve = SignatureMeaning::Approved;
    let stale = jwt_signing_token("inv-101", "investigator", Some("COG-101"), "Dr. Ada Investigator", 30);
    let refused = sign_as(&serious.adverse_event_id, approve, &stale).await.unwrap_err();
    assert_refused(&refused, Code::FailedPrecondition, "REAUTHENTICATION_REQUIRED");
    let elsewhere = jwt_signing_token("inv-202", "investigator", Some("COG-202"), "Dr. B", 0);
    let refused = sign_as(&serious.adverse_event_id, approve, &elsewhere)
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::NotFound, "{refused:?}");
    let refused = sign_as(&minor.adverse_event_id, approve, &investigator)
        .await
        .unwrap_err();
    assert_refused(&refused, Code::FailedPrecondition, "RECORD_NOT_SIGNABLE");
    let reviewer = jwt_signing_token("reviewer-1", "central_reviewer", None, "Dr. C Reviewer", 0);
    let refused = sign_as(&serious.adverse_event_id, approve, &reviewer)
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");

    // The SAE report, signed: shown with the event.
    let responsible = SignatureMeaning::ResponsibleFor;
    let signed = sign_as(&serious.adverse_event_id, responsible, &investigator)
        .await
        .unwrap()
        .into_inner();
    let signature = signed.signature.unwrap();
    assert_eq!(
        (
            signature.signer.as_str(),
            signature.printed_name.as_str(),
            signature.signer_role.as_str(),
            signature.meaning,
            signature.applies
        ),
        (
            "inv-101",
            "Dr. Ada Investigator",
            "investigator",
            SignatureMeaning::ResponsibleFor as i32,
            true
        )
    );
    assert_eq!(
        signed.adverse_event.unwrap().signatures,
        std::slice::from_ref(&signature)
    );
    let reader = o.clone();
    let get = |id: String| {
        let (mut o, token) = (reader.clone(), investigator.clone());
        async move {
            o.get_adverse_event(with_bearer(pb::GetAdverseEventRequest { adverse_event_id: id }, &token))
                .await
                .unwrap()
                .into_inner()
                .adverse_event
                .unwrap()
        }
    };
    let shown = get(serious.adverse_event_id.clone()).await;
    assert_eq!(shown.signatures, std::slice::from_ref(&signature));

    // Regraded afterwards: the signature stays, shown as no longer applying, until signed again.
    let update = pb::UpdateAdverseEventRequest {
        request_id: request_id(),
        adverse_event_id: serious.adverse_event_id.clone(),
        etag: shown.etag.clone(),
        grade: 4,
        resolved_on: None,
        reason: "worsened: grade 4".into(),
    };
    let updated = o
        .update_adverse_event(with_bearer(update, &investigator))
        .await
        .unwrap()
        .into_inner()
        .adverse_event
        .unwrap();
    let applies = |s: &[trialops_proto::common::v1::Signature]| s.iter().map(|s| s.applies).collect::<Vec<_>>();
    assert_eq!(applies(&updated.signatures), [false]);
    assert_eq!(updated.signatures[0].signature_id, signature.signature_id);
    assert_eq!(
        applies(&get(serious.adverse_event_id.clone()).await.signatures),
        [false]
    );
    let list = pb::ListAdverseEventsRequest {
        subject_id: subject.subject_id.clone(),
        page_size: 10,
        page_token: String::new(),
    };
    let listed = o
        .list_adverse_events(with_bearer(list.clone(), &investigator))
        .await
        .unwrap()
        .into_inner()
        .adverse_events;
    let by_event: Vec<(String, Vec<bool>)> = listed
        .iter()
        .map(|a| (a.adverse_event_id.clone(), applies(&a.signatures)))
        .collect();
    assert!(
        by_event.contains(&(serious.adverse_event_id.clone(), vec![false])),
        "{by_event:?}"
    );
    assert!(
        by_event.contains(&(minor.adverse_event_id.clone(), vec![])),
        "{by_event:?}"
    );
    let resigned = sign_as(&serious.adverse_event_id, responsible, &investigator)
        .await
        .unwrap()
        .into_inner();
    assert_eq!(applies(&resigned.adverse_event.unwrap().signatures), [false, true]);
    assert_ne!(resigned.signature.unwrap().content_sha256, signature.content_sha256);

    // A central reviewer signs a response assessment; an investigator may not.
    let baseline = assessment(&subject.subject_id, 0, true, ("40", true), ("20", 4, false), "10");
    let reviewer_plain = jwt_token("reviewer-1", "central_reviewer", None);
    let recorded = o
        .record_response_assessment(with_bearer(baseline, &reviewer_plain))
        .await
        .unwrap()
        .into_inner()
        .assessment
        .unwrap();
    let sign_assessment = |meaning: SignatureMeaning| pb::SignResponseAssessmentRequest {
        request_id: request_id(),
        assessment_id: recorded.assessment_id.clone(),
        meaning: meaning as i32,
    };
    let refused = o
        .sign_response_assessment(with_bearer(sign_assessment(SignatureMeaning::Reviewed), &investigator))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
    let refused = o
        .sign_response_assessment(with_bearer(
            sign_assessment(SignatureMeaning::Reviewed),
            &reviewer_plain,
        ))
        .await
        .unwrap_err();
    assert_refused(&refused, Code::FailedPrecondition, "REAUTHENTICATION_REQUIRED");
    let reviewed = o
        .sign_response_assessment(with_bearer(sign_assessment(SignatureMeaning::Reviewed), &reviewer))
        .await
        .unwrap()
        .into_inner();
    let review = reviewed.signature.unwrap();
    assert_eq!(
        (
            review.printed_name.as_str(),
            review.signer_role.as_str(),
            review.signer_site.as_str()
        ),
        ("Dr. C Reviewer", "central_reviewer", "")
    );
    let get = pb::GetResponseAssessmentRequest {
        assessment_id: recorded.assessment_id.clone(),
    };
    let shown = o
        .get_response_assessment(with_bearer(get, &reviewer_plain))
        .await
        .unwrap()
        .into_inner()
        .assessment
        .unwrap();
    assert_eq!(shown.signatures, std::slice::from_ref(&review));
    let list = pb::ListResponseAssessmentsRequest {
        subject_id: subject.subject_id.clone(),
        page_size: 10,
        page_token: String::new(),
    };
    let listed = o
        .list_response_assessments(with_bearer(list, &reviewer_plain))
        .await
        .unwrap()
        .into_inner()
        .assessments;
    assert_eq!(listed[0].signatures, [review]);

    // Three signatures, each an entry of outcomes' audit log checked against the stored rows.
    let entries = o
        .list_audit_events(with_bearer(
            pb::ListAuditEventsRequest {
                entity_type: "signature".into(),
                page_size: 50,
                ..Default::default()
            },
            &admin,
        ))
        .await
        .unwrap()
        .into_inner()
        .events;
    assert_eq!(entries.len(), 3);
    let verified = o
        .verify_audit_trail(with_bearer(pb::VerifyAuditTrailRequest {}, &admin))
        .await
        .unwrap()
        .into_inner()
        .verification
        .unwrap();
    assert!(verified.intact && verified.records_differing.is_empty(), "{verified:?}");
    set.stop().await;
}
