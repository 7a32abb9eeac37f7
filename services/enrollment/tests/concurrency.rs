//! Two enrollment servers on one database, many clients enrolling at once: subject numbers stay
//! unique and gap-free, and every stratum's arms are exactly the first positions of its
//! concealed sequence (so block balance holds). A trial's enrollments arriving together are
//! written together, in one transaction: the refused ones among them change nothing and the
//! others take the numbers and positions in turn; the same mix is also sent while the trial's
//! enrollments are held, so that it is written in one or two batches. Runs on SQLite and
//! PostgreSQL.

// Test code, helpers included, unwraps: a failure is a test failure with the value shown.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;

use common::*;
use trialops_domain::protocol;
use trialops_domain::randomization::{BlockScheme, Sequence, TrialKey};
use trialops_platform::backend_tests;
use trialops_platform::testing::Backend;

backend_tests!(
    two_servers_enroll_concurrently,
    one_request_id_sent_twice_at_once_enrolls_once,
    refusals_among_concurrent_enrollments_leave_the_others,
    refusals_in_one_batch_leave_the_others
);

const CLIENTS: usize = 8;
const PER_CLIENT: usize = 5;

async fn two_servers_enroll_concurrently(backend: Backend) {
    let (db, first) = start(backend).await;
    let second = start_on(&db.url).await;
    let mut admin = client(&first).await;
    register_site(&mut admin, "COG-101").await;

    let subjects = enroll_concurrently((&first, &second), "ANBL1221", (CLIENTS, PER_CLIENT), |c, i| {
        let mycn = if (c + i) % 3 == 0 { "not_amplified" } else { "amplified" };
        ("no_prior_irinotecan_temozolomide", mycn)
    })
    .await;
    let total = CLIENTS * PER_CLIENT;
    assert_eq!(subjects.len(), total);

    // Subject numbers: 0001 … 0040, each once.
    let mut ids: Vec<_> = subjects.iter().map(|s| s.subject_id.clone()).collect();
    ids.sort();
    let expected: Vec<_> = (1..=total).map(|n| format!("ANBL1221-{n:04}")).collect();
    assert_eq!(ids, expected);

    // Per stratum, in allocation order (subject number order within a stratum is allocation
    // order, since both counters advance in the same transaction), the arms are the sequence.
    let by_stratum = arms_by_stratum(all_subjects(&mut admin).await);
    assert_eq!(by_stratum.len(), 2);
    let scheme = BlockScheme::from_protocol(&protocol::anbl1221().unwrap()).unwrap();
    for (stratum, arms) in by_stratum {
        assert_eq!(arms, sequence(&stratum, arms.len()), "stratum {stratum}");
        let a = arms.iter().filter(|a| *a == "A").count() as i64;
        let b = arms.len() as i64 - a;
        assert!(
            (a - b).abs() <= i64::from(scheme.largest_block()) / 2,
            "{stratum}: {a} vs {b}"
        );
    }

    let verification = admin
        .verify_audit_trail(trialops_proto::enrollment::v1::VerifyAuditTrailRequest {})
        .await
        .unwrap()
        .into_inner()
        .verification
        .unwrap_or_default();
    assert!(verification.intact, "{verification:?}");
    // 1 site + per subject: screening, enrolled, randomized; the chain never forked.
    assert_eq!(verification.events_checked as usize, 1 + 3 * total);
    first.stop().await;
    second.stop().await;
}

async fn one_request_id_sent_twice_at_once_enrolls_once(backend: Backend) {
    let (db, first) = start(backend).await;
    let second = start_on(&db.url).await;
    let mut c1 = client(&first).await;
    let mut c2 = client(&second).await;
    register_site(&mut c1, "COG-101").await;
    screen(&mut c1, "COG-101", "SCR-1", eligible_values()).await;
    let req = enroll_request(
        "COG-101",
        "SCR-1",
        strata("no_prior_irinotecan_temozolomide", "amplified"),
    );
    let (r1, r2) = tokio::join!(c1.enroll_subject(req.clone()), c2.enroll_subject(req));
    let s1 = r1.unwrap().into_inner().subject;
    let s2 = r2.unwrap().into_inner().subject;
    assert_eq!(s1, s2);
    assert_eq!(all_subjects(&mut c1).await.len(), 1);
    first.stop().await;
    second.stop().await;
}

async fn refusals_among_concurrent_enrollments_leave_the_others(backend: Backend) {
    refusals_among_enrollments_leave_the_others(backend, false).await;
}

async fn refusals_in_one_batch_leave_the_others(backend: Backend) {
    refusals_among_enrollments_leave_the_others(backend, true).await;
}

/// Fourteen enrollments at once, refusals and repeats among them; `held`: sent while the
/// trial's enrollments are held, so they queue and are written in at most two batches (the
/// count is `batches.rs`'s to check: the metric is per process, and these tests share one).
async fn refusals_among_enrollments_leave_the_others(backend: Backend, held: bool) {
    let (db, server) = start(backend).await;
    let mut admin = client(&server).await;
    register_site(&mut admin, "COG-101").await;
    for i in 0..10 {
        screen(&mut admin, "COG-101", &format!("OK-{i}"), eligible_values()).await;
    }
    for i in 0..2 {
        screen(
            &mut admin,
            "COG-101",
            &format!("NO-{i}"),
            values_with(dec("anc_per_ul", "400")),
        )
        .await;
    }
    let request = |screening_id: &str, i: usize| {
        let mycn = if i.is_multiple_of(3) {
            "not_amplified"
        } else {
            "amplified"
        };
        enroll_request(
            "COG-101",
            screening_id,
            strata("no_prior_irinotecan_temozolomide", mycn),
        )
    };
    // Ten to enroll, two ineligible, OK-0 a second time under another request id, and OK-1's
    // very request again: fourteen calls at once.
    let mut requests: Vec<_> = (0..10).map(|i| request(&format!("OK-{i}"), i)).collect();
    requests.extend((0..2).map(|i| request(&format!("NO-{i}"), i)));
    requests.push(request("OK-0", 0));
    requests.push(requests[1].clone());
    let hold = match held {
        true => Some(HeldEnrollments::hold(&db.url, "ANBL1221").await),
        false => None,
    };
    let mut calls = tokio::task::JoinSet::new();
    for (i, r) in requests.into_iter().enumerate() {
        let mut c = client(&server).await;
        calls.spawn(async move { (i, c.enroll_subject(r).await.map(|r| r.into_inner().subject.unwrap())) });
    }
    if let Some(hold) = hold {
        // Every call is queued or waiting on the held lock well before it is let go.
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        hold.release().await;
    }
    let mut answers: Vec<_> = calls.join_all().await;

    answers.sort_by_key(|(i, _)| *i);
    for (i, answer) in &answers[10..12] {
        assert_refused(
            answer.as_ref().unwrap_err(),
            tonic::Code::FailedPrecondition,
            "SUBJECT_INELIGIBLE",
        );
        assert!(*i >= 10);
    }
    // OK-0: exactly one of its two requests enrolled it; the other was told it is enrolled.
    let ok0 = [&answers[0].1, &answers[12].1];
    assert_eq!(ok0.iter().filter(|a| a.is_ok()).count(), 1, "{ok0:?}");
    let refused = ok0.iter().find_map(|a| a.as_ref().err()).unwrap();
    assert_refused(refused, tonic::Code::AlreadyExists, "SUBJECT_ALREADY_ENROLLED");
    // OK-1's repeat is its first answer.
    assert_eq!(answers[1].1.as_ref().unwrap(), answers[13].1.as_ref().unwrap());
    // Ten subjects, numbered 1 to 10 with no gap, each stratum's arms its sequence's first.
    let subjects = all_subjects(&mut admin).await;
    let mut ids: Vec<_> = subjects.iter().map(|s| s.subject_id.clone()).collect();
    ids.sort();
    let expected: Vec<_> = (1..=10).map(|n| format!("ANBL1221-{n:04}")).collect();
    assert_eq!(ids, expected);
    for (stratum, arms) in arms_by_stratum(subjects) {
        assert_eq!(arms, sequence(&stratum, arms.len()), "stratum {stratum}");
    }
    // The trail: the site, twelve screenings, two entries per subject; nothing of the refused.
    let verification = admin
        .verify_audit_trail(trialops_proto::enrollment::v1::VerifyAuditTrailRequest {})
        .await
        .unwrap()
        .into_inner()
        .verification
        .unwrap_or_default();
    assert!(verification.intact, "{verification:?}");
    assert_eq!(verification.events_checked, 1 + 12 + 2 * 10);
    server.stop().await;
}

/// Each stratum's arms in allocation order (subject-number order within a stratum is
/// allocation order, since both counters advance in the same transaction).
fn arms_by_stratum(subjects: Vec<trialops_proto::enrollment::v1::Subject>) -> BTreeMap<String, Vec<String>> {
    let mut by_stratum: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    for s in subjects {
        let stratum = s
            .randomized_strata
            .iter()
            .map(|v| format!("{}={}", v.factor_id, v.value))
            .collect::<Vec<_>>()
            .join("|");
        by_stratum.entry(stratum).or_default().push((s.subject_id, s.arm_code));
    }
    by_stratum
        .into_iter()
        .map(|(stratum, mut members)| {
            members.sort();
            (stratum, members.into_iter().map(|(_, arm)| arm).collect())
        })
        .collect()
}

/// The first `count` arms of `stratum`'s concealed sequence under the test secret.
fn sequence(stratum: &str, count: usize) -> Vec<String> {
    let scheme = BlockScheme::from_protocol(&protocol::anbl1221().unwrap()).unwrap();
    let key = TrialKey::derive(SECRET, "ANBL1221");
    Sequence::new(&key, &scheme, stratum)
        .take(count as u64)
        .into_iter()
        .map(|a| a.arm_code)
        .collect()
}
