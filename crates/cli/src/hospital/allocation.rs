//! The committed sequence from the hospital side: export a trial's allocations with its
//! commitment (statistician, administrator), and reveal its key once accrual is closed
//! (administrator). `trialops verify-allocation` checks the two offline.

use clap::Args;
use trialops_proto::enrollment::v1 as epb;

use super::{Session, request_id};
use crate::report::{instant, say};

/// Export a trial's allocations with the commitment GetTrial publishes, as JSON (the input of
/// `trialops verify-allocation`).
#[derive(Args, Debug)]
pub struct Allocations {
    /// Trial.
    #[arg(long, default_value = "ANBL1221")]
    trial: String,
}

impl Allocations {
    /// Reads every page and prints the export.
    pub async fn run(self, session: &mut Session) -> anyhow::Result<()> {
        let request = epb::GetTrialRequest {
            trial_id: self.trial.clone(),
        };
        let action = format!("reading trial {}", self.trial);
        let trial = session.call(action, request, async |c, r| c.enrollment.get_trial(r).await);
        let trial = trial.await?.trial.unwrap_or_default();
        let mut rows = Vec::new();
        let mut page_token = String::new();
        loop {
            let request = epb::ListAllocationsRequest {
                trial_id: self.trial.clone(),
                page_size: 500,
                page_token,
            };
            let action = format!("listing the allocations of {}", self.trial);
            let page = session.call(action, request, async |c, r| c.enrollment.list_allocations(r).await);
            let page = page.await?;
            // Every field written, position 0 included, as a number.
            for a in &page.allocations {
                let at = instant(a.allocated_at.as_ref());
                rows.push(serde_json::json!({
                    "subject_id": a.subject_id,
                    "stratum": a.stratum,
                    "position": a.position,
                    "arm_code": a.arm_code,
                    "allocated_at": at,
                }));
            }
            if page.next_page_token.is_empty() {
                break;
            }
            page_token = page.next_page_token;
        }
        let export = serde_json::json!({
            "trial_id": self.trial,
            "allocation_commitment": trial.allocation_commitment,
            "allocation_parameters": trial.allocation_parameters,
            "allocations": rows,
        });
        println!("{}", serde_json::to_string_pretty(&export)?);
        Ok(())
    }
}

/// Reveal a trial's allocation key, with a reason, once accrual to the whole trial is closed
/// (administrator): from then on anyone can verify every allocation, and accrual stays closed.
#[derive(Args, Debug)]
pub struct RevealAllocationKey {
    /// Trial.
    #[arg(long, default_value = "ANBL1221")]
    trial: String,
    /// Why, for example "final analysis: allocation audit by the DSMB".
    #[arg(long)]
    reason: String,
}

impl RevealAllocationKey {
    /// Sends the request and shows the key and the commitment.
    pub async fn run(self, session: &mut Session) -> anyhow::Result<()> {
        let request = epb::RevealAllocationKeyRequest {
            request_id: request_id(),
            trial_id: self.trial.clone(),
            reason: self.reason,
        };
        let action = format!("revealing the allocation key of {}", self.trial);
        let revealed = session.call(action, request, async |c, r| {
            c.enrollment.reveal_allocation_key(r).await
        });
        let revealed = revealed.await?;
        session
            .out
            .show("trialops.enrollment.v1.RevealAllocationKeyResponse", &revealed, |r| {
                say(format!("allocation key of {}: {}", r.trial_id, r.allocation_key));
                say(format!(
                    "commitment: {} ({})",
                    r.allocation_commitment, r.allocation_parameters
                ));
            })
    }
}

/// Mark a subject randomized in error, with a reason (investigator, administrator): it keeps its
/// arm and stays in the intention-to-treat population; per-protocol analyses leave it out.
#[derive(Args, Debug)]
pub struct RandomizedInError {
    /// Study subject id, for example ANBL1221-0007.
    #[arg(long)]
    subject: String,
    /// Why, for example "ineligible: bilirubin above the limit at screening".
    #[arg(long)]
    reason: String,
}

impl RandomizedInError {
    /// Reads the subject (for its etag), marks it and shows it.
    pub async fn run(self, session: &mut Session) -> anyhow::Result<()> {
        let request = epb::GetSubjectRequest {
            subject_id: self.subject.clone(),
        };
        let action = format!("reading subject {}", self.subject);
        let current = session.call(action, request, async |c, r| c.enrollment.get_subject(r).await);
        let current = current.await?.subject.unwrap_or_default();
        let request = epb::MarkRandomizedInErrorRequest {
            request_id: request_id(),
            subject_id: self.subject.clone(),
            etag: current.etag,
            reason: self.reason,
        };
        let action = format!("marking {} randomized in error", self.subject);
        let marked = session.call(action, request, async |c, r| {
            c.enrollment.mark_randomized_in_error(r).await
        });
        let marked = marked.await?;
        session
            .out
            .show("trialops.enrollment.v1.MarkRandomizedInErrorResponse", &marked, |m| {
                let s = m.subject.clone().unwrap_or_default();
                say(format!(
                    "{} is marked randomized in error ({}); it stays on arm {} for intention to treat",
                    s.subject_id, s.randomized_in_error_reason, s.arm_code
                ));
            })
    }
}

/// Emergency unblinding (investigator, own site): shows a subject's arm and records who asked,
/// why and when, in the audit trail and the trial report.
#[derive(Args, Debug)]
pub struct Unblind {
    /// Study subject id, for example ANBL1221-0007.
    #[arg(long)]
    subject: String,
    /// Why the treatment must be known, for example "grade 4 hypotension during infusion".
    #[arg(long)]
    reason: String,
}

impl Unblind {
    /// Unblinds and shows the arm.
    pub async fn run(self, session: &mut Session) -> anyhow::Result<()> {
        let request = epb::UnblindSubjectRequest {
            request_id: request_id(),
            subject_id: self.subject.clone(),
            reason: self.reason,
        };
        let action = format!("unblinding {}", self.subject);
        let unblinded = session.call(action, request, async |c, r| c.enrollment.unblind_subject(r).await);
        let unblinded = unblinded.await?;
        session
            .out
            .show("trialops.enrollment.v1.UnblindSubjectResponse", &unblinded, |r| {
                let u = r.unblinding.clone().unwrap_or_default();
                say(format!(
                    "{} is on arm {}. Recorded as emergency unblinding {} at {} by {} ({}).",
                    u.subject_id,
                    u.arm_code,
                    u.unblinding_id,
                    instant(u.unblinded_at.as_ref()),
                    u.unblinded_by,
                    u.unblinded_by_role
                ));
            })
    }
}
