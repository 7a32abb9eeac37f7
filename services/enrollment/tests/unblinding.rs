//! Emergency unblinding over gRPC with verified tokens: an investigator of the subject's site is
//! told its arm, giving a reason; the unblinding (who, role, why, when) is stored, listed for the
//! statistician, written to the audit trail and delivered to a subscriber of the event stream
//! as it happens; a retry returns the same unblinding; another site's investigator (to whom the
//! subject does not exist), a coordinator and a call without a reason are refused and write
//! nothing. Runs on SQLite and
//! PostgreSQL.

// Test code, helpers included, unwraps: a failure is a test failure with the value shown.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::*;
use tonic::Code;
use trialops_platform::backend_tests;
use trialops_platform::testing::{jwt_settings, jwt_token, settings, with_bearer};
use trialops_proto::enrollment::v1 as pb;

backend_tests!(an_investigator_unblinds_with_a_reason_and_everyone_who_should_know_does);

fn admin() -> String {
    jwt_token("admin-1", "administrator", None)
}

fn unblind(subject_id: &str, reason: &str) -> pb::UnblindSubjectRequest {
    pb::UnblindSubjectRequest {
        request_id: request_id(),
        subject_id: subject_id.into(),
        reason: reason.into(),
    }
}

/// Unblinding entries in the audit trail.
async fn unblinding_entries(c: &mut Client) -> usize {
    let request = pb::ListAuditEventsRequest {
        entity_type: "unblinding".into(),
        page_size: 500,
        ..Default::default()
    };
    c.list_audit_events(with_bearer(request, &admin()))
        .await
        .unwrap()
        .into_inner()
        .events
        .len()
}

async fn an_investigator_unblinds_with_a_reason_and_everyone_who_should_know_does(backend: Backend) {
    let db = TestDatabase::create(backend).await.unwrap();
    let mut s = jwt_settings(settings(&db.url));
    s.watch_poll_interval_ms = 20;
    let server = start_with(s).await;
    let mut c = client(&server).await;
    for site in ["COG-101", "COG-202"] {
        let request = pb::RegisterSiteRequest {
            site_code: site.into(),
            name: format!("Site {site}"),
            request_id: request_id(),
            ..Default::default()
        };
        c.register_site(with_bearer(request, &admin())).await.unwrap();
    }
    let coordinator = jwt_token("coord-101", "site_coordinator", Some("COG-101"));
    let subject = enroll_as(&mut c, &coordinator, "COG-101", "SCR-U1").await;

    // A subscriber following the trial's changes from now on.
    let watch = pb::WatchEventsRequest {
        from_now: true,
        ..Default::default()
    };
    let mut stream = c.watch_events(with_bearer(watch, &admin())).await.unwrap().into_inner();

    // Refused, nothing written: another site's investigator, a coordinator, no reason.
    let elsewhere = jwt_token("inv-202", "investigator", Some("COG-202"));
    let refused = c
        .unblind_subject(with_bearer(unblind(&subject.subject_id, "SAE"), &elsewhere))
        .await
        .unwrap_err();
    // Another site's subject does not exist for it, as for every read.
    assert_eq!(refused.code(), Code::NotFound, "{refused:?}");
    let refused = c
        .unblind_subject(with_bearer(unblind(&subject.subject_id, "SAE"), &coordinator))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
    let investigator = jwt_token("inv-101", "investigator", Some("COG-101"));
    let refused = c
        .unblind_subject(with_bearer(unblind(&subject.subject_id, ""), &investigator))
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&refused), ["reason"]);
    assert_eq!(unblinding_entries(&mut c).await, 0, "the refusals wrote nothing");

    // The investigator of the subject's site is told the arm the subject was allocated.
    let reason = "grade 4 hypotension during infusion: the treating physician needs the agent";
    let request = unblind(&subject.subject_id, reason);
    let first = c
        .unblind_subject(with_bearer(request.clone(), &investigator))
        .await
        .unwrap()
        .into_inner()
        .unblinding
        .unwrap();
    assert_eq!(first.arm_code, subject.arm_code);
    assert!(matches!(first.arm_code.as_str(), "A" | "B"));
    assert_eq!(
        (
            first.subject_id.as_str(),
            first.site_code.as_str(),
            first.trial_id.as_str()
        ),
        (subject.subject_id.as_str(), "COG-101", "ANBL1221")
    );
    assert_eq!(
        (
            first.unblinded_by.as_str(),
            first.unblinded_by_role.as_str(),
            first.reason.as_str()
        ),
        ("inv-101", "investigator", reason)
    );
    assert_eq!(first.unblinding_id, request.request_id);
    // A retry is the same unblinding, not a second one.
    let again = c
        .unblind_subject(with_bearer(request, &investigator))
        .await
        .unwrap()
        .into_inner()
        .unblinding
        .unwrap();
    assert_eq!(again, first);
    // A second emergency is its own record.
    let second = c
        .unblind_subject(with_bearer(
            unblind(&subject.subject_id, "overdose reported by the family"),
            &investigator,
        ))
        .await
        .unwrap()
        .into_inner()
        .unblinding
        .unwrap();
    assert_ne!(second.unblinding_id, first.unblinding_id);
    assert_eq!(unblinding_entries(&mut c).await, 2);

    // The statistician lists both, oldest first, a page at a time.
    let statistician = jwt_token("stat-1", "statistician", None);
    let page = |page_token: String| pb::ListUnblindingsRequest {
        trial_id: "ANBL1221".into(),
        page_size: 1,
        page_token,
    };
    let one = c
        .list_unblindings(with_bearer(page(String::new()), &statistician))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(one.unblindings, std::slice::from_ref(&first));
    let two = c
        .list_unblindings(with_bearer(page(one.next_page_token), &statistician))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(two.unblindings, std::slice::from_ref(&second));
    let refused = c
        .list_unblindings(with_bearer(page(String::new()), &investigator))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);

    // The subscriber was told, with who, why and when, in the audit entry.
    // The refused attempts were audited too (call.refused), before them.
    let (mut told, mut refusals) = (Vec::new(), 0);
    while told.len() < 2 {
        let next = tokio::time::timeout(Duration::from_secs(20), stream.message())
            .await
            .expect("the unblindings reach the event stream")
            .unwrap()
            .unwrap();
        let entry = next.event.unwrap().entry.unwrap();
        match entry.action.as_str() {
            "subject.unblinded" => told.push(entry),
            "call.refused" if told.is_empty() => refusals += 1,
            other => panic!("unexpected {other}"),
        }
    }
    assert!(refusals >= 1, "the coordinator's refused attempt is in the trail");
    assert_eq!(told[0].action, "subject.unblinded");
    assert_eq!(told[0].entity_id, first.unblinding_id);
    assert_eq!(told[0].actor, "inv-101");
    assert_eq!(told[0].reason, reason);
    let recorded: serde_json::Value = serde_json::from_str(&told[0].new_value_json).unwrap();
    assert_eq!(recorded["subject_id"], first.subject_id.as_str());
    assert_eq!(recorded["arm_code"], first.arm_code.as_str());
    assert_eq!(told[1].entity_id, second.unblinding_id);
    drop(stream);

    // The trail still matches the records it describes.
    let verification = c
        .verify_audit_trail(with_bearer(pb::VerifyAuditTrailRequest {}, &admin()))
        .await
        .unwrap()
        .into_inner()
        .verification
        .unwrap();
    assert!(verification.intact, "{verification:?}");
    server.stop().await;
}
