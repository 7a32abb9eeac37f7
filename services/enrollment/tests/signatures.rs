//! Electronic signatures over gRPC with verified tokens (21 CFR 11.50, 11.70, 11.200): an
//! investigator of the site signs an eligibility confirmation and an end-of-treatment record
//! with a fresh authentication; the signature shows the printed name, the time, the meaning and
//! the hash of the content, is audited and verified against its audit entry, and applies to
//! that record only. Refused, writing nothing: a stale or nameless authentication, another
//! site's investigator, a coordinator, an ineligible screening, a subject still on therapy, the
//! same signature twice. Runs on SQLite and PostgreSQL.

// Test code, helpers included, unwraps: a failure is a test failure with the value shown.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use sea_orm::{ConnectionTrait, Database};
use tonic::Code;
use trialops_platform::backend_tests;
use trialops_platform::testing::{
    assert_refused, jwt_settings, jwt_signing_token, jwt_token, metadata, settings, with_bearer,
};
use trialops_proto::common::v1::{Signature, SignatureMeaning};
use trialops_proto::enrollment::v1 as pb;

backend_tests!(an_investigator_signs_eligibility_and_end_of_treatment);

const INVESTIGATOR: &str = "Dr. Ada Investigator";

fn admin() -> String {
    jwt_token("admin-1", "administrator", None)
}

fn sign_screening(screening_id: &str, meaning: SignatureMeaning) -> pb::SignScreeningRequest {
    pb::SignScreeningRequest {
        request_id: request_id(),
        trial_id: "ANBL1221".into(),
        screening_id: screening_id.into(),
        attempt: 1,
        meaning: meaning as i32,
    }
}

async fn get_screening(c: &mut Client, screening_id: &str) -> pb::Screening {
    let request = pb::GetScreeningRequest {
        trial_id: "ANBL1221".into(),
        screening_id: screening_id.into(),
        attempt: 0,
    };
    c.get_screening(with_bearer(request, &admin()))
        .await
        .unwrap()
        .into_inner()
        .screening
        .unwrap()
}

async fn signature_entries(c: &mut Client) -> Vec<trialops_proto::common::v1::AuditEvent> {
    let request = pb::ListAuditEventsRequest {
        entity_type: "signature".into(),
        page_size: 500,
        ..Default::default()
    };
    c.list_audit_events(with_bearer(request, &admin()))
        .await
        .unwrap()
        .into_inner()
        .events
}

async fn verify(c: &mut Client) -> trialops_proto::common::v1::AuditVerification {
    c.verify_audit_trail(with_bearer(pb::VerifyAuditTrailRequest {}, &admin()))
        .await
        .unwrap()
        .into_inner()
        .verification
        .unwrap()
}

fn check_signer(s: &Signature, meaning: SignatureMeaning) {
    assert_eq!(
        (
            s.signer.as_str(),
            s.printed_name.as_str(),
            s.signer_role.as_str(),
            s.signer_site.as_str(),
            s.meaning
        ),
        ("inv-101", INVESTIGATOR, "investigator", "COG-101", meaning as i32)
    );
    assert!(s.applies, "{s:?}");
    assert_eq!(s.content_sha256.len(), 64);
    assert!(s.content_sha256.bytes().all(|b| b.is_ascii_hexdigit()));
    // The token said the person authenticated a minute before it was issued.
    let (signed, authenticated) = (s.signed_at.unwrap().seconds, s.authenticated_at.unwrap().seconds);
    let ago = signed - authenticated;
    assert!((55..=75).contains(&ago), "authenticated {ago} s before signing");
}

async fn an_investigator_signs_eligibility_and_end_of_treatment(backend: Backend) {
    let db = TestDatabase::create(backend).await.unwrap();
    let server = start_with(jwt_settings(settings(&db.url))).await;
    let mut c = client(&server).await;
    for site in ["COG-101", "COG-202"] {
        let request = pb::RegisterSiteRequest {
            site_code: site.into(),
            name: format!("Site {site}"),
            request_id: request_id(),
            country: "USA".into(),
        };
        c.register_site(with_bearer(request, &admin())).await.unwrap();
    }
    let coordinator = jwt_token("coord-101", "site_coordinator", Some("COG-101"));
    let subject = enroll_as(&mut c, &coordinator, "COG-101", "SCR-S1").await;
    let ineligible = pb::ScreenSubjectRequest {
        values: values_with(dec("anc_per_ul", "600")),
        ..screen_request("COG-101", "SCR-S2")
    };
    c.screen_subject(with_bearer(ineligible, &coordinator)).await.unwrap();
    c.screen_subject(with_bearer(screen_request("COG-101", "SCR-S3"), &coordinator))
        .await
        .unwrap();
    let entries_before = signature_entries(&mut c).await.len();
    assert_eq!(entries_before, 0);

    // Refusals.
    let fresh = jwt_signing_token("inv-101", "investigator", Some("COG-101"), INVESTIGATOR, 1);
    let stale = jwt_signing_token("inv-101", "investigator", Some("COG-101"), INVESTIGATOR, 6);
    let approve = || sign_screening("SCR-S1", SignatureMeaning::Approved);
    let refused = c.sign_screening(with_bearer(approve(), &stale)).await.unwrap_err();
    assert_refused(&refused, Code::FailedPrecondition, "REAUTHENTICATION_REQUIRED");
    assert_eq!(metadata(&refused, "max_age_minutes"), "5");
    assert!(refused.message().contains("6 minutes old"), "{}", refused.message());
    // A token naming no person (and no authentication time) cannot sign.
    let nameless = jwt_token("inv-101", "investigator", Some("COG-101"));
    let refused = c.sign_screening(with_bearer(approve(), &nameless)).await.unwrap_err();
    assert_refused(&refused, Code::FailedPrecondition, "REAUTHENTICATION_REQUIRED");
    // Another site's investigator: the screening does not exist for them.
    let elsewhere = jwt_signing_token("inv-202", "investigator", Some("COG-202"), "Dr. B", 1);
    let refused = c.sign_screening(with_bearer(approve(), &elsewhere)).await.unwrap_err();
    assert_eq!(refused.code(), Code::NotFound, "{refused:?}");
    let coordinator_fresh = jwt_signing_token("coord-101", "site_coordinator", Some("COG-101"), "C. Ordinator", 1);
    let refused = c
        .sign_screening(with_bearer(approve(), &coordinator_fresh))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
    let not_eligible = sign_screening("SCR-S2", SignatureMeaning::Approved);
    let refused = c.sign_screening(with_bearer(not_eligible, &fresh)).await.unwrap_err();
    assert_refused(&refused, Code::FailedPrecondition, "RECORD_NOT_SIGNABLE");
    let no_meaning = sign_screening("SCR-S1", SignatureMeaning::Unspecified);
    let refused = c.sign_screening(with_bearer(no_meaning, &fresh)).await.unwrap_err();
    assert_eq!(trialops_platform::testing::violated_fields(&refused), ["meaning"]);
    assert_eq!(signature_entries(&mut c).await.len(), 0, "the refusals wrote nothing");

    // The eligibility confirmation, signed; a retry returns the same signature.
    let request = approve();
    let signed = c
        .sign_screening(with_bearer(request.clone(), &fresh))
        .await
        .unwrap()
        .into_inner();
    let signature = signed.signature.unwrap();
    check_signer(&signature, SignatureMeaning::Approved);
    assert_eq!(signed.screening.unwrap().signatures, std::slice::from_ref(&signature));
    let again = c
        .sign_screening(with_bearer(request, &fresh))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again.signature.unwrap().signature_id, signature.signature_id);
    // The same signature a second time is refused; another meaning is another signature.
    let refused = c.sign_screening(with_bearer(approve(), &fresh)).await.unwrap_err();
    assert_refused(&refused, Code::AlreadyExists, "ALREADY_SIGNED");
    let reviewed = sign_screening("SCR-S1", SignatureMeaning::Reviewed);
    c.sign_screening(with_bearer(reviewed, &fresh)).await.unwrap();
    let shown = get_screening(&mut c, "SCR-S1").await;
    assert_eq!(shown.signatures.len(), 2);
    assert_eq!(shown.signatures[0], signature);
    assert_eq!(
        shown.signatures[1].content_sha256, signature.content_sha256,
        "the same content, signed twice"
    );
    assert!(get_screening(&mut c, "SCR-S3").await.signatures.is_empty());

    // Each signature is an audit entry naming the record, and the stored signatures are checked
    // against them.
    let entries = signature_entries(&mut c).await;
    assert_eq!(entries.len(), 2);
    let first: serde_json::Value = serde_json::from_str(&entries[0].new_value_json).unwrap();
    assert_eq!(entries[0].action, "record.signed");
    assert_eq!(entries[0].entity_id, signature.signature_id);
    assert_eq!(first["record_type"], "screening");
    assert_eq!(first["record_id"], "ANBL1221/SCR-S1/1");
    assert_eq!(first["printed_name"], INVESTIGATOR);
    assert_eq!(first["content_sha256"], signature.content_sha256.as_str());
    assert!(verify(&mut c).await.intact);

    // Copied onto another screening with the same values, a signature does not apply there; a
    // signature edited behind the service is named by verification.
    let conn = Database::connect(&db.url).await.unwrap();
    conn.execute_unprepared(&format!(
        "INSERT INTO signatures SELECT 'copied-signature', record_type, 'ANBL1221/SCR-S3/1', trial_id, site_code, \
         signer, printed_name, signer_role, signer_site, meaning, signed_at, authenticated_at, content_sha256 \
         FROM signatures WHERE signature_id = '{}'",
        signature.signature_id
    ))
    .await
    .unwrap();
    let copied = get_screening(&mut c, "SCR-S3").await.signatures;
    assert_eq!(copied.len(), 1);
    assert!(!copied[0].applies, "a copied signature applies to its own record only");
    conn.execute_unprepared(&format!(
        "UPDATE signatures SET printed_name = 'Someone Else' WHERE signature_id = '{}'",
        signature.signature_id
    ))
    .await
    .unwrap();
    let checked = verify(&mut c).await;
    let differing = checked.records_differing.join("; ");
    assert!(
        differing.contains(&format!("signature/{}: printed_name", signature.signature_id)),
        "{differing}"
    );
    assert!(
        differing.contains("signature/copied-signature: no audit entry"),
        "{differing}"
    );
    conn.execute_unprepared("DELETE FROM signatures WHERE signature_id = 'copied-signature'")
        .await
        .unwrap();
    conn.execute_unprepared(&format!(
        "UPDATE signatures SET printed_name = '{INVESTIGATOR}' WHERE signature_id = '{}'",
        signature.signature_id
    ))
    .await
    .unwrap();

    // End of treatment: nothing to sign while on protocol therapy.
    let sign_end = |meaning: SignatureMeaning| pb::SignEndOfTreatmentRequest {
        request_id: request_id(),
        subject_id: subject.subject_id.clone(),
        meaning: meaning as i32,
    };
    let refused = c
        .sign_end_of_treatment(with_bearer(sign_end(SignatureMeaning::ResponsibleFor), &fresh))
        .await
        .unwrap_err();
    assert_refused(&refused, Code::FailedPrecondition, "RECORD_NOT_SIGNABLE");
    let change = |etag: &str, to: pb::SubjectStatus, reason: &str| pb::ChangeSubjectStatusRequest {
        request_id: request_id(),
        subject_id: subject.subject_id.clone(),
        etag: etag.into(),
        new_status: to as i32,
        reason: reason.into(),
        effective_on: today(),
    };
    let ended = c
        .change_subject_status(with_bearer(
            change(
                &subject.etag,
                pb::SubjectStatus::OffProtocolTherapy,
                "completed 5 cycles",
            ),
            &coordinator,
        ))
        .await
        .unwrap()
        .into_inner()
        .subject
        .unwrap();
    let end = c
        .sign_end_of_treatment(with_bearer(sign_end(SignatureMeaning::ResponsibleFor), &fresh))
        .await
        .unwrap()
        .into_inner();
    let record = end.subject.unwrap();
    assert_eq!(
        (record.status, record.status_reason.as_str()),
        (pb::SubjectStatus::OffProtocolTherapy as i32, "completed 5 cycles")
    );
    let end_signature = end.signature.unwrap();
    check_signer(&end_signature, SignatureMeaning::ResponsibleFor);
    assert_eq!(record.end_of_treatment_signatures, std::slice::from_ref(&end_signature));
    let elsewhere_end = c
        .sign_end_of_treatment(with_bearer(sign_end(SignatureMeaning::Reviewed), &elsewhere))
        .await
        .unwrap_err();
    assert_eq!(elsewhere_end.code(), Code::NotFound, "{elsewhere_end:?}");

    // Off study later: the end-of-treatment record is unchanged, so its signature still applies.
    c.change_subject_status(with_bearer(
        change(&ended.etag, pb::SubjectStatus::OffStudy, "follow-up complete"),
        &coordinator,
    ))
    .await
    .unwrap();
    let request = pb::GetSubjectRequest {
        subject_id: subject.subject_id.clone(),
    };
    let now = c
        .get_subject(with_bearer(request, &fresh))
        .await
        .unwrap()
        .into_inner()
        .subject
        .unwrap();
    assert_eq!(now.end_of_treatment_signatures, std::slice::from_ref(&end_signature));
    let statistician = jwt_token("stat-1", "statistician", None);
    let request = pb::ListStatusChangesRequest {
        trial_id: "ANBL1221".into(),
        page_size: 50,
        ..Default::default()
    };
    let changes = c
        .list_status_changes(with_bearer(request, &statistician))
        .await
        .unwrap()
        .into_inner()
        .changes;
    let signed: Vec<(i32, usize)> = changes.iter().map(|c| (c.status, c.signatures.len())).collect();
    assert_eq!(
        signed,
        [
            (pb::SubjectStatus::OffProtocolTherapy as i32, 1),
            (pb::SubjectStatus::OffStudy as i32, 0)
        ]
    );
    assert_eq!(changes[0].signatures, [end_signature]);
    assert_eq!(signature_entries(&mut c).await.len(), 3);
    assert!(verify(&mut c).await.intact);
    server.stop().await;
}
