//! Screening over gRPC: every criterion's result, and bad input named field by field.

// Test code, helpers included, unwraps: a failure is a test failure with the value shown.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use tonic::Code;
use trialops_platform::backend_tests;
use trialops_platform::testing::Backend;
use trialops_proto::enrollment::v1 as pb;

backend_tests!(screening_reports_every_criterion, bad_input_names_every_field,);

async fn screening_reports_every_criterion(backend: Backend) {
    let (_db, server) = start(backend).await;
    let mut c = client(&server).await;
    register_site(&mut c, "COG-101").await;
    let ok = screen(&mut c, "COG-101", "SCR-1", eligible_values()).await;
    assert!(ok.eligible);
    assert_eq!(ok.attempt, 1);
    assert!(
        ok.criteria
            .iter()
            .all(|r| r.outcome == pb::CriterionOutcome::Met as i32)
    );

    // ANC 600 < 750 and no cardiac function supplied.
    let mut values: Vec<_> = values_with(dec("anc_per_ul", "600"));
    values.retain(|v| v.variable_id != "shortening_fraction_percent");
    let failed = screen(&mut c, "COG-101", "SCR-2", values).await;
    assert!(!failed.eligible);
    let by_id = |id: &str| {
        failed
            .criteria
            .iter()
            .find(|r| r.criterion_id == id)
            .cloned()
            .unwrap_or_default()
    };
    assert_eq!(by_id("anc").outcome, pb::CriterionOutcome::NotMet as i32);
    assert_eq!(by_id("anc").detail, "anc_per_ul = 600 /uL; required >= 750 /uL");
    assert_eq!(by_id("cardiac").outcome, pb::CriterionOutcome::MissingData as i32);
    assert_eq!(by_id("platelets").outcome, pb::CriterionOutcome::Met as i32);

    // A re-screening after recovery is a new attempt; the first stays recorded.
    let again = screen(&mut c, "COG-101", "SCR-2", eligible_values()).await;
    assert_eq!((again.attempt, again.eligible), (2, true));

    let unregistered = pb::ScreenSubjectRequest {
        request_id: request_id(),
        trial_id: "ANBL1221".into(),
        site_code: "COG-999".into(),
        screening_id: "SCR-3".into(),
        assessed_on: today(),
        values: eligible_values(),
    };
    let err = c.screen_subject(unregistered).await.expect_err("unregistered site");
    assert_refused(&err, Code::FailedPrecondition, "SITE_NOT_REGISTERED");
    server.stop().await;
}

async fn bad_input_names_every_field(backend: Backend) {
    let (_db, server) = start(backend).await;
    let mut c = client(&server).await;
    register_site(&mut c, "COG-101").await;
    let before = audit_count(&mut c).await;
    let bad = pb::ScreenSubjectRequest {
        request_id: "not-a-uuid".into(),
        trial_id: "ANBL1221".into(),
        site_code: "cog 101".into(),
        screening_id: "Jane Doe".into(),
        assessed_on: date(2025, 2, 30),
        values: vec![
            dec("anc", "1000"),
            dec("anc_per_ul", "1e3"),
            yes("platelets_per_ul", true),
            dec("alt_u_l", "-4"),
            pb::ScreeningValue {
                variable_id: "histology_confirmed".into(),
                value: None,
            },
        ],
    };
    let err = c.screen_subject(bad).await.expect_err("accepted");
    assert_eq!(
        violated_fields(&err),
        [
            "request_id",
            "site_code",
            "screening_id",
            "assessed_on",
            "values[1].decimal_value",
            "values[4]",
            "values[0].variable_id",
            "values[2].value",
            "values[3].value",
        ]
    );
    let future = pb::ScreenSubjectRequest {
        request_id: request_id(),
        trial_id: "ANBL1221".into(),
        site_code: "COG-101".into(),
        screening_id: "SCR-1".into(),
        assessed_on: date(2999, 1, 1),
        values: vec![dec("alt_u_l", "-4")],
    };
    let err = c.screen_subject(future).await.expect_err("accepted");
    assert_eq!(violated_fields(&err), ["assessed_on", "values[0].value"]);

    let mut enroll = enroll_request(
        "COG-101",
        "SCR-1",
        vec![pb::StratumValue {
            factor_id: "mycn".into(),
            value: "amplified".into(),
        }],
    );
    enroll.consent = Some(pb::Consent {
        signed_on: date(2024, 13, 1),
        form_version: String::new(),
    });
    let err = c.enroll_subject(enroll).await.expect_err("accepted");
    assert_eq!(
        violated_fields(&err),
        [
            "consent.signed_on",
            "consent.form_version",
            "strata[0].factor_id",
            "strata",
            "strata"
        ]
    );
    assert_eq!(
        audit_count(&mut c).await,
        before,
        "a refused request wrote to the audit trail"
    );
    server.stop().await;
}
