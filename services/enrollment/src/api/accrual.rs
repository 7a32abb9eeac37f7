//! CloseAccrual and OpenAccrual: an administrator closes accrual to a trial or one site with a
//! reason, and opens it again; both audited. The accrual figures GetAllocationSummary shows.

use std::sync::Arc;

use sea_orm::{ConnectionTrait, DatabaseTransaction};
use tonic::Request;
use trialops_domain::identifiers::SiteCode;
use trialops_platform::AppError;
use trialops_platform::identity::auth::CallContext;
use trialops_platform::records::audit::{self, AuditContext, Change};
use trialops_platform::records::idempotency::{self, Operation, RequestId};
use trialops_platform::wire::convert as wire;
use trialops_platform::wire::fields::{self, AllFields};
use trialops_proto::enrollment::v1 as pb;

use super::{EnrollmentApi, parse, require_registered};
use crate::error::Reason;
use crate::store::{accrual_closure, allocation_reveal, subject};
use crate::trials::{Trial, Trials};

/// A CloseAccrual or OpenAccrual request, parsed.
struct AccrualChange {
    request_id: RequestId,
    trial: Arc<Trial>,
    /// `None`: the whole trial.
    site: Option<SiteCode>,
    reason: String,
}

impl AccrualChange {
    /// The command, or INVALID_ARGUMENT naming every bad field; the trial under the protocol
    /// version in force today (its accrual targets and limits).
    async fn parse(
        trials: &Trials,
        db: &sea_orm::DatabaseConnection,
        request_id: &str,
        trial_id: &str,
        site_code: &str,
        reason: &str,
    ) -> Result<Self, AppError> {
        let site = (!site_code.is_empty()).then_some(site_code);
        let (request_id, trial, site, reason) = (
            wire::request_id("request_id", request_id),
            parse::trial_on(trials, db, trial_id, Some(parse::today())).await?,
            fields::optional(site, |s| wire::parsed("site_code", SiteCode::parse(s))),
            wire::text("reason", reason, 1000),
        )
            .all()?;
        Ok(AccrualChange {
            request_id,
            trial,
            site,
            reason,
        })
    }

    fn trial_id(&self) -> &str {
        &self.trial.protocol.trial.id
    }

    fn site_code(&self) -> &str {
        self.site.as_ref().map_or("", |s| s.as_str())
    }
}

pub(super) async fn close(
    api: &EnrollmentApi,
    request: Request<pb::CloseAccrualRequest>,
) -> Result<pb::CloseAccrualResponse, AppError> {
    fn fields(r: &pb::CloseAccrualRequest) -> [&str; 4] {
        [&r.request_id, &r.trial_id, &r.site_code, &r.reason]
    }
    fn apply(tx: &DatabaseTransaction, a: AuditContext, c: AccrualChange) -> Operation<'_, pb::CloseAccrualResponse> {
        Box::pin(close_in(tx, a, c))
    }
    change(api, request, "EnrollmentService/CloseAccrual", fields, apply).await
}

pub(super) async fn open(
    api: &EnrollmentApi,
    request: Request<pb::OpenAccrualRequest>,
) -> Result<pb::OpenAccrualResponse, AppError> {
    fn fields(r: &pb::OpenAccrualRequest) -> [&str; 4] {
        [&r.request_id, &r.trial_id, &r.site_code, &r.reason]
    }
    fn apply(tx: &DatabaseTransaction, a: AuditContext, c: AccrualChange) -> Operation<'_, pb::OpenAccrualResponse> {
        Box::pin(open_in(tx, a, c))
    }
    change(api, request, "EnrollmentService/OpenAccrual", fields, apply).await
}

/// What closing and opening share: the request parsed into an [`AccrualChange`], then `apply`
/// in one transaction under the request id.
async fn change<Req, Resp>(
    api: &EnrollmentApi,
    request: Request<Req>,
    method: &'static str,
    fields: fn(&Req) -> [&str; 4],
    apply: for<'c> fn(&'c DatabaseTransaction, AuditContext, AccrualChange) -> Operation<'c, Resp>,
) -> Result<Resp, AppError>
where
    Req: prost::Message,
    Resp: prost::Message + Default,
{
    let call = CallContext::of(&request)?;
    let req = request.into_inner();
    let [request_id, trial_id, site_code, reason] = fields(&req);
    let change = AccrualChange::parse(&api.trials, &api.db, request_id, trial_id, site_code, reason).await?;
    let audit_ctx = AuditContext::new(call, change.request_id);
    idempotency::execute(&api.db, method, change.request_id, &req, move |tx| {
        apply(tx, audit_ctx, change)
    })
    .await
}

/// The transaction: the site registered, accrual not yet closed there; the closure stored and
/// audited.
async fn close_in(
    tx: &DatabaseTransaction,
    audit_ctx: AuditContext,
    change: AccrualChange,
) -> Result<pb::CloseAccrualResponse, AppError> {
    if let Some(site) = &change.site {
        require_registered(tx, site.as_str()).await?;
    }
    let (trial_id, site_code) = (change.trial_id(), change.site_code());
    if accrual_closure::find(tx, trial_id, site_code).await?.is_some() {
        return Err(AppError::precondition(
            Reason::AccrualAlreadyClosed,
            format!("accrual is already closed to {}", scope_name(trial_id, site_code)),
        ));
    }
    let record = accrual_closure::Model {
        scope: accrual_closure::scope(trial_id, site_code),
        trial_id: trial_id.to_owned(),
        site_code: site_code.to_owned(),
        reason: change.reason.clone(),
        closed_at: trialops_platform::clock::now_stored(),
    };
    accrual_closure::insert(tx, &record).await?;
    let mut entry = Change::created("accrual.closed", "accrual", &record.scope, audit::to_json(&record)?)
        .within(&record.trial_id, &record.site_code);
    entry.reason = &change.reason;
    audit::append(tx, &audit_ctx, entry).await?;
    Ok(pb::CloseAccrualResponse {
        accrual: Some(now(tx, &change.trial, site_code).await?),
    })
}

/// The transaction: the closure in force ended and audited with it as the previous state.
async fn open_in(
    tx: &DatabaseTransaction,
    audit_ctx: AuditContext,
    change: AccrualChange,
) -> Result<pb::OpenAccrualResponse, AppError> {
    let (trial_id, site_code) = (change.trial_id(), change.site_code());
    if site_code.is_empty()
        && let Some(reveal) = allocation_reveal::find(tx, trial_id).await?
    {
        return Err(AppError::precondition(
            Reason::AllocationKeyRevealed,
            format!(
                "trial {trial_id}'s allocation key was revealed on {}: its sequence is public, so accrual stays closed",
                reveal.revealed_at.format("%Y-%m-%d")
            ),
        ));
    }
    let Some(closure) = accrual_closure::find(tx, trial_id, site_code).await? else {
        return Err(AppError::precondition(
            Reason::AccrualAlreadyOpen,
            format!("accrual is already open to {}", scope_name(trial_id, site_code)),
        ));
    };
    accrual_closure::delete(tx, &closure).await?;
    let opened = serde_json::json!({ "trial_id": trial_id, "site_code": site_code, "open": true });
    let old = audit::to_json(&closure)?;
    let entry = Change::updated("accrual.opened", "accrual", &closure.scope, old, opened, &change.reason)
        .within(&closure.trial_id, &closure.site_code);
    audit::append(tx, &audit_ctx, entry).await?;
    Ok(pb::OpenAccrualResponse {
        accrual: Some(now(tx, &change.trial, site_code).await?),
    })
}

fn scope_name(trial_id: &str, site_code: &str) -> String {
    if site_code.is_empty() {
        format!("trial {trial_id}")
    } else {
        format!("site {site_code} in trial {trial_id}")
    }
}

/// The accrual of the trial (empty `site_code`) or a site, as it stands.
async fn now<C: ConnectionTrait>(conn: &C, trial: &Trial, site_code: &str) -> Result<pb::Accrual, AppError> {
    let trial_id = trial.protocol.trial.id.as_str();
    let rules = &trial.protocol.accrual;
    let closure = accrual_closure::find(conn, trial_id, site_code).await?;
    Ok(if site_code.is_empty() {
        let enrolled = subject::count_in_trial(conn, trial_id).await?;
        accrual(enrolled, rules.target, rules.maximum, closure.as_ref())
    } else {
        let enrolled = subject::count_at_site(conn, trial_id, site_code).await?;
        accrual(enrolled, rules.site_target, rules.site_maximum, closure.as_ref())
    })
}

/// The wire form of an accrual: `enrolled` against `target` and `maximum`, closed by `closure`.
pub(super) fn accrual(
    enrolled: u64,
    target: Option<u32>,
    maximum: Option<u32>,
    closure: Option<&accrual_closure::Model>,
) -> pb::Accrual {
    pb::Accrual {
        enrolled: i64::try_from(enrolled).unwrap_or(i64::MAX),
        target: target.map_or(0, i64::from),
        maximum: maximum.map_or(0, i64::from),
        open: closure.is_none(),
        closure_reason: closure.map(|c| c.reason.clone()).unwrap_or_default(),
    }
}
