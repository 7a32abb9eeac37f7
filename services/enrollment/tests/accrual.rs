//! Accrual over gRPC, on a trial whose protocol sets maxima: the enrollment beyond the maximum
//! of the trial, a site or a stratum is refused and writes nothing; an administrator closes and
//! opens accrual to the trial or one site with a reason, audited; the allocation summary shows
//! accrual against the limits. Expected counts are worked out by hand from the calls made.

// Test code, helpers included, unwraps: a failure is a test failure with the value shown.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use tonic::Code;
use trialops_platform::backend_tests;
use trialops_platform::testing::{Backend, settings};
use trialops_proto::enrollment::v1 as pb;

backend_tests!(
    maxima_refuse_the_enrollment_beyond_them,
    maxima_hold_within_one_batch,
    closures_hold_accrual_until_opened
);

/// A copy of the ANBL1221 definition as trial ACCR1 with `accrual` as its accrual section.
async fn start_trial(backend: Backend, accrual: &str) -> (TestDatabase, RunningServer, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let definition = trialops_domain::protocol::ANBL1221_TOML.replace("id = \"ANBL1221\"", "id = \"ACCR1\"");
    std::fs::write(
        dir.path().join("accr1.toml"),
        format!("{definition}\n[accrual]\n{accrual}\n"),
    )
    .unwrap();
    let db = TestDatabase::create(backend).await.unwrap();
    let mut s = settings(&db.url);
    s.protocol_dir = Some(dir.path().to_owned());
    let server = start_with(s).await;
    (db, server, dir)
}

/// Screens `screening_id` at `site` (eligible) and asks to enroll it in ACCR1 with `mycn`.
async fn try_enroll(c: &mut Client, site: &str, screening_id: &str, mycn: &str) -> Result<pb::Subject, tonic::Status> {
    c.screen_subject(pb::ScreenSubjectRequest {
        trial_id: "ACCR1".into(),
        ..screen_request(site, screening_id)
    })
    .await
    .unwrap();
    let request = pb::EnrollSubjectRequest {
        trial_id: "ACCR1".into(),
        ..enroll_request(site, screening_id, strata("no_prior_irinotecan_temozolomide", mycn))
    };
    c.enroll_subject(request)
        .await
        .map(|r| r.into_inner().subject.unwrap_or_default())
}

/// ACCR1's allocation summary.
async fn summary(c: &mut Client) -> pb::GetAllocationSummaryResponse {
    let request = pb::GetAllocationSummaryRequest {
        trial_id: "ACCR1".into(),
    };
    c.get_allocation_summary(request).await.unwrap().into_inner()
}

/// The (enrolled, target, maximum, open) of an accrual.
fn figures(a: Option<&pb::Accrual>) -> (i64, i64, i64, bool) {
    let a = a.unwrap();
    (a.enrolled, a.target, a.maximum, a.open)
}

async fn maxima_refuse_the_enrollment_beyond_them(backend: Backend) {
    let limits = "target = 3\nmaximum = 4\nsite_maximum = 2\nstratum_maximum = 3";
    let (_db, server, _dir) = start_trial(backend, limits).await;
    let mut c = client(&server).await;
    for site in ["COG-101", "COG-202", "COG-303"] {
        register_site(&mut c, site).await;
    }
    try_enroll(&mut c, "COG-101", "S1", "amplified").await.unwrap();
    try_enroll(&mut c, "COG-101", "S2", "amplified").await.unwrap();
    let before = audit_count(&mut c).await;
    // A third at COG-101: its site maximum of 2 is reached. Nothing is written.
    let err = try_enroll(&mut c, "COG-101", "S3", "amplified").await.unwrap_err();
    assert_refused(&err, Code::FailedPrecondition, "ACCRUAL_LIMIT_REACHED");
    assert_eq!(
        (metadata(&err, "scope"), metadata(&err, "maximum")),
        ("site".into(), "2".into())
    );
    assert_eq!(audit_count(&mut c).await, before + 1, "only the screening was recorded");

    // The amplified stratum holds 3 at most: the third is admitted at COG-202, the fourth not.
    try_enroll(&mut c, "COG-202", "S4", "amplified").await.unwrap();
    let err = try_enroll(&mut c, "COG-202", "S5", "amplified").await.unwrap_err();
    assert_refused(&err, Code::FailedPrecondition, "ACCRUAL_LIMIT_REACHED");
    assert_eq!(
        (metadata(&err, "scope"), metadata(&err, "maximum")),
        ("stratum".into(), "3".into())
    );

    // Another stratum: the fourth subject is the trial's last; the fifth is refused.
    let fourth = try_enroll(&mut c, "COG-202", "S6", "not_amplified").await.unwrap();
    assert_eq!(fourth.subject_id, "ACCR1-0004", "refusals took no subject number");
    let err = try_enroll(&mut c, "COG-303", "S7", "not_amplified").await.unwrap_err();
    assert_refused(&err, Code::FailedPrecondition, "ACCRUAL_LIMIT_REACHED");
    assert_eq!(
        (metadata(&err, "scope"), metadata(&err, "maximum")),
        ("trial".into(), "4".into())
    );

    let summary = summary(&mut c).await;
    assert_eq!(summary.total_subjects, 4);
    assert_eq!(figures(summary.trial_accrual.as_ref()), (4, 3, 4, true));
    let sites: Vec<_> = summary
        .site_accrual
        .iter()
        .map(|s| (s.site_code.as_str(), figures(s.accrual.as_ref())))
        .collect();
    assert_eq!(
        sites,
        [
            ("COG-101", (2, 0, 2, true)),
            ("COG-202", (2, 0, 2, true)),
            ("COG-303", (0, 0, 2, true))
        ]
    );
    let strata: Vec<_> = summary
        .stratum_accrual
        .iter()
        .map(|s| (s.stratum[1].value.as_str(), figures(s.accrual.as_ref())))
        .collect();
    assert_eq!(
        strata,
        [("amplified", (3, 0, 3, true)), ("not_amplified", (1, 0, 3, true))]
    );
    server.stop().await;
}

/// Enrollments written in one batch count the ones before them in the batch: five candidates
/// sent at once while the trial's enrollments are held, three at a site whose maximum is 2
/// (the trial's maximum of 5 is not reached, so the refusal is the site's whatever the order
/// they arrive in).
async fn maxima_hold_within_one_batch(backend: Backend) {
    let (db, server, _dir) = start_trial(backend, "maximum = 5\nsite_maximum = 2").await;
    let mut c = client(&server).await;
    for site in ["COG-101", "COG-202"] {
        register_site(&mut c, site).await;
    }
    let candidates = [
        ("COG-101", "A1"),
        ("COG-101", "A2"),
        ("COG-101", "A3"),
        ("COG-202", "B1"),
        ("COG-202", "B2"),
    ];
    for (site, screening_id) in candidates {
        c.screen_subject(pb::ScreenSubjectRequest {
            trial_id: "ACCR1".into(),
            ..screen_request(site, screening_id)
        })
        .await
        .unwrap();
    }
    let before = audit_count(&mut c).await;
    let held = HeldEnrollments::hold(&db.url, "ACCR1").await;
    let mut calls = tokio::task::JoinSet::new();
    for (i, (site, screening_id)) in candidates.into_iter().enumerate() {
        let mut c = client(&server).await;
        let mycn = if i % 2 == 0 { "amplified" } else { "not_amplified" };
        let request = pb::EnrollSubjectRequest {
            trial_id: "ACCR1".into(),
            ..enroll_request(site, screening_id, strata("no_prior_irinotecan_temozolomide", mycn))
        };
        calls.spawn(async move { (site, c.enroll_subject(request).await) });
    }
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    held.release().await;
    let answers = calls.join_all().await;
    // Two of COG-101's three and both of COG-202's, numbered 1 to 4.
    let mut numbered: Vec<_> = answers
        .iter()
        .filter_map(|(site, a)| {
            a.as_ref()
                .ok()
                .map(|r| (r.get_ref().subject.clone().unwrap_or_default(), site))
        })
        .map(|(s, site)| (s.subject_id, *site))
        .collect();
    numbered.sort();
    let ids: Vec<_> = numbered.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(ids, ["ACCR1-0001", "ACCR1-0002", "ACCR1-0003", "ACCR1-0004"]);
    assert_eq!(numbered.iter().filter(|(_, site)| *site == "COG-101").count(), 2);
    let refused: Vec<_> = answers
        .iter()
        .filter_map(|(site, a)| a.as_ref().err().map(|e| (site, e)))
        .collect();
    let [(site, err)] = refused[..] else {
        panic!("one refusal expected: {refused:?}");
    };
    assert_eq!(*site, "COG-101");
    assert_refused(err, Code::FailedPrecondition, "ACCRUAL_LIMIT_REACHED");
    assert_eq!(
        (metadata(err, "scope"), metadata(err, "maximum")),
        ("site".into(), "2".into())
    );
    assert_eq!(
        audit_count(&mut c).await,
        before + 2 * 4,
        "two entries per subject, none refused"
    );
    let summary = summary(&mut c).await;
    assert_eq!(figures(summary.trial_accrual.as_ref()), (4, 0, 5, true));
    server.stop().await;
}

async fn closures_hold_accrual_until_opened(backend: Backend) {
    let (_db, server, _dir) = start_trial(backend, "target = 10").await;
    let mut c = client(&server).await;
    for site in ["COG-101", "COG-202"] {
        register_site(&mut c, site).await;
    }
    let close = |site: &str, reason: &str| pb::CloseAccrualRequest {
        request_id: request_id(),
        trial_id: "ACCR1".into(),
        site_code: site.into(),
        reason: reason.into(),
    };
    let open = |site: &str, reason: &str| pb::OpenAccrualRequest {
        request_id: request_id(),
        trial_id: "ACCR1".into(),
        site_code: site.into(),
        reason: reason.into(),
    };

    let closed = c
        .close_accrual(close("COG-101", "monitoring visit findings"))
        .await
        .unwrap();
    let closed = closed.into_inner().accrual.unwrap();
    assert_eq!(
        (closed.open, closed.closure_reason.as_str()),
        (false, "monitoring visit findings")
    );
    let err = try_enroll(&mut c, "COG-101", "S1", "amplified").await.unwrap_err();
    assert_refused(&err, Code::FailedPrecondition, "ACCRUAL_CLOSED");
    assert_eq!(
        (metadata(&err, "scope"), metadata(&err, "closure_reason")),
        ("site".into(), "monitoring visit findings".into())
    );
    try_enroll(&mut c, "COG-202", "S2", "amplified").await.unwrap();
    let again = c.close_accrual(close("COG-101", "again")).await.unwrap_err();
    assert_refused(&again, Code::FailedPrecondition, "ACCRUAL_ALREADY_CLOSED");
    let unknown = c.close_accrual(close("COG-999", "no such site")).await.unwrap_err();
    assert_refused(&unknown, Code::FailedPrecondition, "SITE_NOT_REGISTERED");
    let no_reason = c.close_accrual(close("", " ")).await.unwrap_err();
    assert_eq!(violated_fields(&no_reason), ["reason"]);

    // The Simon design's stage-1 pause: the whole trial, every site.
    c.close_accrual(close("", "Simon stage 1 complete: interim analysis"))
        .await
        .unwrap();
    let err = try_enroll(&mut c, "COG-202", "S3", "amplified").await.unwrap_err();
    assert_refused(&err, Code::FailedPrecondition, "ACCRUAL_CLOSED");
    assert_eq!(metadata(&err, "scope"), "trial");
    let trial = summary(&mut c).await.trial_accrual.unwrap();
    assert_eq!((trial.enrolled, trial.target, trial.open), (1, 10, false));
    assert_eq!(trial.closure_reason, "Simon stage 1 complete: interim analysis");

    let opened = c.open_accrual(open("", "stage 2 opened: 3 responses")).await.unwrap();
    assert!(opened.into_inner().accrual.unwrap().open);
    let twice = c.open_accrual(open("", "stage 2")).await.unwrap_err();
    assert_refused(&twice, Code::FailedPrecondition, "ACCRUAL_ALREADY_OPEN");
    c.open_accrual(open("COG-101", "findings resolved")).await.unwrap();
    let subject = try_enroll(&mut c, "COG-101", "S4", "amplified").await.unwrap();
    assert_eq!(subject.subject_id, "ACCR1-0002");

    // Each closure and opening is in the audit trail with its reason.
    let trial_history = trialops_platform::audit_events!(c, pb, "accrual", "ACCR1");
    let actions: Vec<_> = trial_history.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(actions, ["accrual.closed", "accrual.opened"]);
    let history = trialops_platform::audit_events!(c, pb, "accrual", "ACCR1|COG-101");
    let entries: Vec<_> = history.iter().map(|e| (e.action.as_str(), e.reason.as_str())).collect();
    assert_eq!(
        entries,
        [
            ("accrual.closed", "monitoring visit findings"),
            ("accrual.opened", "findings resolved")
        ]
    );
    server.stop().await;
}
