//! The committed, verifiable allocation sequence over gRPC: GetTrial publishes the commitment
//! before the first enrollment; each allocation's audit entry carries it; the key is revealed
//! only once accrual to the whole trial is closed, and then accrual never opens again; with the
//! revealed key, the allocations ListAllocations exports verify against the commitment, and a
//! steered one does not.

// Test code, helpers included, unwraps: a failure is a test failure with the value shown.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use tonic::Code;
use trialops_domain::randomization::{self, Method, TrialKey};
use trialops_platform::{audit_events, backend_tests};
use trialops_proto::enrollment::v1 as pb;

backend_tests!(the_committed_sequence_is_revealed_after_accrual_and_proves_every_allocation);

async fn trial(c: &mut Client) -> pb::Trial {
    let request = pb::GetTrialRequest {
        trial_id: "ANBL1221".into(),
    };
    c.get_trial(request).await.unwrap().into_inner().trial.unwrap()
}

fn accrual(reason: &str) -> (pb::CloseAccrualRequest, pb::OpenAccrualRequest) {
    let close = pb::CloseAccrualRequest {
        request_id: request_id(),
        trial_id: "ANBL1221".into(),
        site_code: String::new(),
        reason: reason.into(),
    };
    let open = pb::OpenAccrualRequest {
        request_id: request_id(),
        trial_id: "ANBL1221".into(),
        site_code: String::new(),
        reason: reason.into(),
    };
    (close, open)
}

fn reveal() -> pb::RevealAllocationKeyRequest {
    pb::RevealAllocationKeyRequest {
        request_id: request_id(),
        trial_id: "ANBL1221".into(),
        reason: "final analysis: allocation audit".into(),
    }
}

async fn the_committed_sequence_is_revealed_after_accrual_and_proves_every_allocation(backend: Backend) {
    let (_db, server) = start(backend).await;
    let mut c = client(&server).await;
    // Published before anyone is enrolled, and what the protocol's parameters and the key the
    // service derives from its secret commit to.
    let before = trial(&mut c).await;
    let protocol = trialops_domain::protocol::anbl1221().unwrap();
    let scheme = Method::from_protocol(&protocol).unwrap();
    let key = TrialKey::derive(SECRET, "ANBL1221");
    assert_eq!(
        before.allocation_commitment,
        randomization::commitment("ANBL1221", &scheme, &key)
    );
    assert_eq!(
        before.allocation_parameters,
        "permuted-blocks/v1;arms=A:1,B:1;multipliers=1,2"
    );

    register_site(&mut c, "COG-101").await;
    for (n, mycn) in [
        "amplified",
        "not_amplified",
        "amplified",
        "amplified",
        "not_amplified",
        "amplified",
        "amplified",
    ]
    .into_iter()
    .enumerate()
    {
        enroll(
            &mut c,
            "COG-101",
            &format!("V{n}"),
            strata("no_prior_irinotecan_temozolomide", mycn),
        )
        .await;
    }
    assert_eq!(
        trial(&mut c).await.allocation_commitment,
        before.allocation_commitment,
        "it never changes"
    );
    // Every randomization's audit entry names the commitment it was made under.
    let randomized: Vec<_> = audit_events!(c, pb, "subject", "")
        .into_iter()
        .filter(|e| e.action == "subject.randomized")
        .collect();
    assert_eq!(randomized.len(), 7);
    for e in &randomized {
        let value: serde_json::Value = serde_json::from_str(&e.new_value_json).unwrap();
        assert_eq!(value["allocation_commitment"], before.allocation_commitment.as_str());
    }

    // Not while accrual is open; then, once closed, the key.
    let early = c.reveal_allocation_key(reveal()).await.unwrap_err();
    assert_refused(&early, Code::FailedPrecondition, "TRIAL_ACCRUAL_OPEN");
    let (close, open) = accrual("enrollment complete");
    c.close_accrual(close).await.unwrap();
    let revealed = c.reveal_allocation_key(reveal()).await.unwrap().into_inner();
    assert_eq!(revealed.allocation_key, key.reveal());
    assert_eq!(revealed.allocation_commitment, before.allocation_commitment);
    let entry = audit_events!(c, pb, "trial", "ANBL1221");
    assert_eq!(entry.last().map(|e| e.action.as_str()), Some("allocation.key_revealed"));
    // Its sequence is public now: accrual stays closed.
    let reopened = c.open_accrual(open).await.unwrap_err();
    assert_refused(&reopened, Code::FailedPrecondition, "ALLOCATION_KEY_REVEALED");

    // The export, three at a time, proves every allocation with the revealed key.
    let mut exported = Vec::new();
    let mut page_token = String::new();
    loop {
        let request = pb::ListAllocationsRequest {
            trial_id: "ANBL1221".into(),
            page_size: 3,
            page_token,
        };
        let page = c.list_allocations(request).await.unwrap().into_inner();
        exported.extend(page.allocations);
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    assert_eq!(exported.len(), 7);
    let subjects = all_subjects(&mut c).await;
    for a in &exported {
        let s = subjects.iter().find(|s| s.subject_id == a.subject_id).unwrap();
        assert_eq!(a.arm_code, s.arm_code, "the export is the subjects' arms");
    }
    let recorded = recorded(&exported);
    let revealed_key = TrialKey::from_revealed(&revealed.allocation_key).unwrap();
    assert_eq!(
        randomization::verify(
            "ANBL1221",
            &scheme,
            &revealed_key,
            &before.allocation_commitment,
            &recorded
        ),
        Ok(2)
    );
    let mut steered = recorded.clone();
    steered[0].arm_code = if steered[0].arm_code == "A" {
        "B".into()
    } else {
        "A".into()
    };
    assert!(
        randomization::verify(
            "ANBL1221",
            &scheme,
            &revealed_key,
            &before.allocation_commitment,
            &steered
        )
        .is_err()
    );
    server.stop().await;
}
