//! Round trips of the write path, as the `trialops_rpc_database_statements` histogram counts
//! them (transaction control aside): EnrollSubject alone in its batch in 6 SQL statements, 7 at a
//! trial's first enrollment (the trial's enrollments serialize on the subject-number counter's
//! row lock, so every statement inside it costs every caller; a batch shares its statements
//! among its calls); a replay in fewer; the other writes of enrollment within their own
//! budgets. One test in its own binary: the histogram is per process, and the backends run one
//! after the other.

// Test code, helpers included, unwraps: a failure is a test failure with the value shown.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use trialops_platform::server::metrics::statements_of;
use trialops_proto::enrollment::v1 as pb;

/// Budgets per method: the most statements one call may send.
const BUDGETS: [(&str, u64); 4] = [
    ("EnrollSubject", 7),
    ("ScreenSubject", 4),
    ("RegisterSite", 4),
    ("ChangeSubjectStatus", 6),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_stay_within_their_statement_budgets() {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let Some(db) = TestDatabase::create(backend).await else {
            eprintln!("{backend:?}: skipped, not configured");
            continue;
        };
        let before: Vec<_> = BUDGETS.iter().map(|(m, _)| statements_of(m)).collect();
        let server = start_on(&db.url).await;
        let mut c = client(&server).await;
        register_site(&mut c, "COG-101").await;
        let mut subjects = Vec::new();
        for (i, (prior, mycn)) in [
            ("no_prior_irinotecan_temozolomide", "amplified"),
            ("prior_irinotecan_temozolomide", "amplified"),
            ("no_prior_irinotecan_temozolomide", "not_amplified"),
            ("no_prior_irinotecan_temozolomide", "amplified"),
        ]
        .into_iter()
        .enumerate()
        {
            subjects.push(enroll(&mut c, "COG-101", &format!("SCR-{i}"), strata(prior, mycn)).await);
        }
        // A retry of an enrollment that committed: the stored response, in fewer statements.
        screen(&mut c, "COG-101", "SCR-R", eligible_values()).await;
        let request = enroll_request(
            "COG-101",
            "SCR-R",
            strata("prior_irinotecan_temozolomide", "not_amplified"),
        );
        let first = c.enroll_subject(request.clone()).await.unwrap().into_inner();
        let again = c.enroll_subject(request).await.unwrap().into_inner();
        assert_eq!(first, again, "{backend:?}: the retry replays the first response");
        c.change_subject_status(pb::ChangeSubjectStatusRequest {
            request_id: request_id(),
            subject_id: subjects[0].subject_id.clone(),
            etag: subjects[0].etag.clone(),
            new_status: pb::SubjectStatus::OffProtocolTherapy as i32,
            reason: "progressive disease".into(),
            effective_on: today(),
        })
        .await
        .unwrap();

        for ((method, budget), before) in BUDGETS.iter().zip(&before) {
            let figures = statements_of(method).since(before);
            eprintln!(
                "{backend:?} {method}: {} calls, {} statements, each at most {}",
                figures.calls, figures.statements, figures.at_most
            );
            assert!(figures.calls > 0, "{backend:?} {method}: no calls counted: {figures:?}");
            assert!(
                figures.at_most <= *budget,
                "{backend:?} {method}: a call over {budget} statements: {figures:?}"
            );
        }
        // Six enrollment calls: five enrollments (the first records the trial's key: 7 + 4 x 6)
        // and a replay (counters, facts, refused as enrolled, the stored response: 3).
        let enroll = statements_of("EnrollSubject").since(&before[0]);
        assert_eq!(
            (enroll.calls, enroll.statements),
            (6, 7 + 4 * 6 + 3),
            "{backend:?}: {enroll:?}"
        );
    }
}
