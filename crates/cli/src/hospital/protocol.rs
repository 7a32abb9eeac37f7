//! Protocol amendments: `amend-protocol` records a new version of a trial's definition from an
//! effective date (administrator); `protocol-versions` lists every version and the one in force.

use chrono::NaiveDate;
use clap::Args;
use trialops_proto::enrollment::v1 as epb;

use super::{Session, request_id};
use crate::api::{date, date_text};
use crate::report::{say, table};

/// Amend a trial's protocol (administrator).
#[derive(Args, Debug)]
pub struct AmendProtocol {
    /// Trial.
    #[arg(long, default_value = "ANBL1221")]
    trial: String,
    /// The whole amended definition: a protocol file (TOML) with a new `trial.protocol_version`.
    #[arg(long)]
    definition: std::path::PathBuf,
    /// First day the version is in force (YYYY-MM-DD, UTC): tomorrow at the earliest.
    #[arg(long)]
    effective_on: NaiveDate,
    /// Why, for example "Amendment 3: dinutuximab dose revised to 17.5 mg/m2/day".
    #[arg(long)]
    reason: String,
}

impl AmendProtocol {
    /// Sends the amendment and shows the version recorded.
    pub async fn run(self, session: &mut Session) -> anyhow::Result<()> {
        let AmendProtocol {
            trial,
            definition,
            effective_on,
            reason,
        } = self;
        let text = std::fs::read_to_string(&definition)
            .map_err(|e| anyhow::anyhow!("--definition {}: {e}", definition.display()))?;
        let amended = session
            .call(
                format!("amending the protocol of {trial}"),
                epb::AmendProtocolRequest {
                    request_id: request_id(),
                    trial_id: trial.clone(),
                    definition: text,
                    effective_on: Some(date(effective_on)),
                    reason,
                },
                async |c, r| c.enrollment.amend_protocol(r).await,
            )
            .await?;
        session
            .out
            .show("trialops.enrollment.v1.AmendProtocolResponse", &amended, |r| {
                let v = r.version.clone().unwrap_or_default();
                say(format!(
                    "{trial}: protocol version {} recorded, in force from {} (sha256 {})",
                    v.version,
                    date_text(v.effective_on.as_ref()),
                    v.definition_sha256
                ));
            })
    }
}

/// List a trial's protocol versions.
#[derive(Args, Debug)]
pub struct ProtocolVersions {
    /// Trial.
    #[arg(long, default_value = "ANBL1221")]
    trial: String,
}

impl ProtocolVersions {
    /// Fetches the versions and shows them, oldest first.
    pub async fn run(self, session: &mut Session) -> anyhow::Result<()> {
        let listed = session
            .call(
                format!("listing the protocol versions of {}", self.trial),
                epb::ListProtocolVersionsRequest {
                    trial_id: self.trial.clone(),
                },
                async |c, r| c.enrollment.list_protocol_versions(r).await,
            )
            .await?;
        session
            .out
            .show("trialops.enrollment.v1.ListProtocolVersionsResponse", &listed, |r| {
                let mut t = table(&["version", "in force from", "in force today", "activated by", "reason"]);
                for v in &r.versions {
                    let from = match date_text(v.effective_on.as_ref()) {
                        text if text.is_empty() => "the start".to_owned(),
                        text => text,
                    };
                    t.add_row(vec![
                        v.version.clone(),
                        from,
                        if v.in_force { "yes" } else { "" }.to_owned(),
                        v.activated_by.clone(),
                        v.reason.clone(),
                    ]);
                }
                println!("{t}");
            })
    }
}
