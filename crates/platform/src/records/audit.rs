//! The audit trail (21 CFR Part 11): append-only, written in the same transaction as the change,
//! each entry a leaf of the service's transparency log ([`crate::records::log`]), so that
//! altering, removing, reordering or inserting an entry is detected.
//!
//! Entries written before the log were hash-chained: entry hash = SHA-256 over the JSON array
//! `[sequence, occurred_at (RFC 3339, µs, Z), actor, actor_role, actor_site, action, entity_type,
//! entity_id, old_value, new_value, reason, request_id, trace_id, previous_hash]`, then
//! `actor_via`, `trial_id`, `site_code` when the entry has a trial or a site, or only `actor_via`
//! when just that is not empty; the first entry's previous hash is 64 zeros. Their chain is still
//! checked ([`LegacyChain`]), and their leaves include both chain hashes.

use crate::records::idempotency::RequestId;
use chrono::SecondsFormat;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use sha2::{Digest, Sha256};
use trialops_proto::common::v1 as common;

use crate::identity::auth::{CallContext, Principal};
use crate::records::store::{audit_event as event, audit_pending as pending};
use crate::wire::convert::to_timestamp;
use crate::wire::error::AppError;
use crate::wire::pagination::{self, Page};

/// Previous hash of the first entry.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Who acted and under which call, for every entry a request writes.
#[derive(Debug, Clone)]
pub struct AuditContext {
    actor: String,
    actor_via: String,
    actor_role: String,
    actor_site: String,
    request_id: String,
    trace_id: String,
    trial_id: String,
    site_code: String,
}

impl AuditContext {
    /// The context of a call with this client request id.
    pub fn new(call: CallContext, request_id: RequestId) -> Self {
        AuditContext {
            actor: call.principal.subject,
            actor_via: call.via.unwrap_or_default(),
            actor_role: call.principal.role.as_str().to_owned(),
            actor_site: call.principal.site.unwrap_or_default(),
            request_id: request_id.to_string(),
            trace_id: call.trace_id,
            trial_id: String::new(),
            site_code: String::new(),
        }
    }

    /// The same context for a call about one record of `trial_id` at `site_code`: its entries
    /// carry them unless a [`Change`] names its own (see [`Change::within`]).
    pub fn within(self, trial_id: &str, site_code: &str) -> Self {
        AuditContext {
            trial_id: trial_id.to_owned(),
            site_code: site_code.to_owned(),
            ..self
        }
    }

    /// Who acts: the staff identifier of the call's principal.
    pub fn actor(&self) -> &str {
        &self.actor
    }

    /// The context of a refused call: the principal if one was authenticated, otherwise the
    /// actor "unauthenticated" with no role; no request id (the body is never read).
    pub fn refused(principal: Option<&Principal>, trace_id: &str) -> Self {
        AuditContext {
            actor: principal.map_or_else(|| "unauthenticated".to_owned(), |p| p.subject.clone()),
            actor_via: String::new(),
            actor_role: principal.map(|p| p.role.as_str().to_owned()).unwrap_or_default(),
            actor_site: principal.and_then(|p| p.site.clone()).unwrap_or_default(),
            request_id: String::new(),
            trace_id: trace_id.to_owned(),
            trial_id: String::new(),
            site_code: String::new(),
        }
    }
}

/// One change to record.
#[derive(Debug, Clone)]
pub struct Change<'a> {
    /// What was done, for example "subject.enrolled".
    pub action: &'a str,
    /// Kind of record.
    pub entity_type: &'a str,
    /// Record identifier (a study identifier).
    pub entity_id: &'a str,
    /// The record before, `None` on creation.
    pub old: Option<serde_json::Value>,
    /// The record after.
    pub new: serde_json::Value,
    /// The reason given (empty when the action needs none).
    pub reason: &'a str,
    /// The trial the record belongs to, empty when none.
    pub trial_id: &'a str,
    /// The site the record belongs to, empty when none.
    pub site_code: &'a str,
}

impl<'a> Change<'a> {
    /// A record created: no earlier value and no reason.
    pub fn created(action: &'a str, entity_type: &'a str, entity_id: &'a str, new: serde_json::Value) -> Self {
        Change {
            action,
            entity_type,
            entity_id,
            old: None,
            new,
            reason: "",
            trial_id: "",
            site_code: "",
        }
    }

    /// A record changed from `old` to `new`, for `reason`.
    pub fn updated(
        action: &'a str,
        entity_type: &'a str,
        entity_id: &'a str,
        old: serde_json::Value,
        new: serde_json::Value,
        reason: &'a str,
    ) -> Self {
        Change {
            action,
            entity_type,
            entity_id,
            old: Some(old),
            new,
            reason,
            trial_id: "",
            site_code: "",
        }
    }

    /// The same change to a record of `trial_id` at `site_code` (either may be empty): WatchEvents
    /// filters by them and shows a site's records only to callers who see that site.
    pub fn within(self, trial_id: &'a str, site_code: &'a str) -> Self {
        Change {
            trial_id,
            site_code,
            ..self
        }
    }
}

fn entry_hash(e: &event::Model) -> String {
    let mut fields = serde_json::json!([
        e.sequence,
        e.occurred_at.to_rfc3339_opts(SecondsFormat::Micros, true),
        e.actor,
        e.actor_role,
        e.actor_site,
        e.action,
        e.entity_type,
        e.entity_id,
        e.old_value,
        e.new_value,
        e.reason,
        e.request_id,
        e.trace_id,
        e.previous_hash,
    ]);
    let scoped = !e.trial_id.is_empty() || !e.site_code.is_empty();
    if let Some(all) = fields.as_array_mut() {
        if scoped || !e.actor_via.is_empty() {
            all.push(e.actor_via.clone().into());
        }
        if scoped {
            all.push(e.trial_id.clone().into());
            all.push(e.site_code.clone().into());
        }
    }
    hex::encode(Sha256::digest(fields.to_string().as_bytes()))
}

/// The entries written before the transparency log, checked in sequence order: each one's chain
/// hash over its content and its link to the one before. Entries after the log's start carry no
/// chain hashes, and none may come before a chained one.
#[derive(Debug, Default)]
pub struct LegacyChain {
    previous: Option<String>,
    ended: bool,
}

impl LegacyChain {
    /// The problem with the next entry's chain, if any.
    pub fn check(&mut self, e: &event::Model) -> Option<&'static str> {
        if e.hash.is_empty() && e.previous_hash.is_empty() {
            self.ended = true;
            return None;
        }
        if self.ended {
            return Some("a hash-chained entry after the log began");
        }
        let expected = self.previous.as_deref().unwrap_or(GENESIS_HASH);
        if e.previous_hash != expected {
            return Some("previous_hash does not match the previous entry");
        }
        if entry_hash(e) != e.hash {
            return Some("hash does not match the entry's content");
        }
        self.previous = Some(e.hash.clone());
        None
    }
}

/// Appends one entry inside the caller's transaction. It has its position (its sequence) once
/// the log's sequencer integrates it, shortly after the transaction commits.
pub async fn append<C: ConnectionTrait>(conn: &C, ctx: &AuditContext, change: Change<'_>) -> Result<(), AppError> {
    append_all(conn, ctx, vec![change]).await
}

/// Appends the entries of one call, in order, with one statement.
pub async fn append_all<C: ConnectionTrait>(
    conn: &C,
    ctx: &AuditContext,
    changes: Vec<Change<'_>>,
) -> Result<(), AppError> {
    append_each(conn, changes.into_iter().map(|change| (ctx, change)).collect()).await
}

/// Appends the entries of several calls (each with its call's context), in order, with one
/// statement: a batch's.
pub async fn append_each<C: ConnectionTrait>(
    conn: &C,
    changes: Vec<(&AuditContext, Change<'_>)>,
) -> Result<(), AppError> {
    if changes.is_empty() {
        return Ok(());
    }
    let at = crate::clock::now_stored();
    let rows = changes.into_iter().map(|(ctx, change)| pending_row(ctx, change, at));
    pending::Entity::insert_many(rows).exec_without_returning(conn).await?;
    Ok(())
}

fn pending_row(ctx: &AuditContext, change: Change<'_>, at: chrono::DateTime<chrono::Utc>) -> pending::ActiveModel {
    use sea_orm::ActiveValue::{NotSet, Set};
    let or_call = |own: &str, call: &str| Some(own).filter(|v| !v.is_empty()).unwrap_or(call).to_owned();
    pending::ActiveModel {
        id: NotSet,
        occurred_at: Set(at),
        actor: Set(ctx.actor.clone()),
        actor_role: Set(ctx.actor_role.clone()),
        actor_site: Set(ctx.actor_site.clone()),
        actor_via: Set(ctx.actor_via.clone()),
        action: Set(change.action.to_owned()),
        entity_type: Set(change.entity_type.to_owned()),
        entity_id: Set(change.entity_id.to_owned()),
        old_value: Set(change.old.map(|v| v.to_string()).unwrap_or_default()),
        new_value: Set(change.new.to_string()),
        reason: Set(change.reason.to_owned()),
        request_id: Set(ctx.request_id.clone()),
        trace_id: Set(ctx.trace_id.clone()),
        trial_id: Set(or_call(change.trial_id, &ctx.trial_id)),
        site_code: Set(or_call(change.site_code, &ctx.site_code)),
    }
}

/// A stored record as the JSON an audit entry keeps.
pub fn to_json<T: serde::Serialize>(record: &T) -> Result<serde_json::Value, AppError> {
    serde_json::to_value(record).map_err(AppError::internal)
}

/// Wire form of an entry.
pub fn to_proto(e: event::Model) -> common::AuditEvent {
    common::AuditEvent {
        sequence: e.sequence,
        occurred_at: Some(to_timestamp(e.occurred_at)),
        actor: e.actor,
        actor_role: e.actor_role,
        actor_site: e.actor_site,
        action: e.action,
        entity_type: e.entity_type,
        entity_id: e.entity_id,
        old_value_json: e.old_value,
        new_value_json: e.new_value,
        reason: e.reason,
        request_id: e.request_id,
        trace_id: e.trace_id,
        previous_hash: e.previous_hash,
        hash: e.hash,
        actor_via: e.actor_via,
        trial_id: e.trial_id,
        site_code: e.site_code,
        leaf_hash: e.leaf_hash,
    }
}

/// One page of the trail, optionally for one kind of record or one record, in sequence order.
/// Returns the entries and the next page token.
pub async fn list<C: ConnectionTrait>(
    conn: &C,
    entity_type: &str,
    entity_id: &str,
    page_size: i32,
    page_token: &str,
) -> Result<(Vec<common::AuditEvent>, String), AppError> {
    if !entity_id.is_empty() && entity_type.is_empty() {
        return Err(AppError::invalid("entity_type", "required when entity_id is given"));
    }
    let scope = format!("audit|{entity_type}|{entity_id}");
    let page: Page = pagination::page(page_size, page_token, &scope)?;
    let mut query = event::Entity::find().order_by_asc(event::Column::Sequence);
    if !entity_type.is_empty() {
        query = query.filter(event::Column::EntityType.eq(entity_type));
    }
    if !entity_id.is_empty() {
        query = query.filter(event::Column::EntityId.eq(entity_id));
    }
    if let Some(after) = &page.after {
        let after: i64 = after
            .parse()
            .map_err(|_| AppError::invalid("page_token", "not a token this list issued"))?;
        query = query.filter(event::Column::Sequence.gt(after));
    }
    let rows = query.limit(page.size + 1).all(conn).await?;
    let (rows, next) = pagination::split(rows, &page, &scope, |e| e.sequence.to_string());
    Ok((rows.into_iter().map(to_proto).collect(), next))
}

/// One page of a trial's entries of one action, in sequence order: at most `limit`, after the
/// entry at `after` (a sequence number). Integrate the log first (`log::integrate`) to see what
/// was written just before.
pub async fn of_trial_action<C: ConnectionTrait>(
    conn: &C,
    trial_id: &str,
    action: &str,
    after: i64,
    limit: u64,
) -> Result<Vec<common::AuditEvent>, AppError> {
    let rows = event::Entity::find()
        .filter(event::Column::TrialId.eq(trial_id))
        .filter(event::Column::Action.eq(action))
        .filter(event::Column::Sequence.gt(after))
        .order_by_asc(event::Column::Sequence)
        .limit(limit)
        .all(conn)
        .await?;
    Ok(rows.into_iter().map(to_proto).collect())
}

/// One record's entries of one action, in sequence order. Integrate the log first
/// (`log::integrate`) to see what was written just before.
pub async fn of_entity_action<C: ConnectionTrait>(
    conn: &C,
    entity_type: &str,
    entity_id: &str,
    action: &str,
) -> Result<Vec<common::AuditEvent>, AppError> {
    let rows = event::Entity::find()
        .filter(event::Column::EntityType.eq(entity_type))
        .filter(event::Column::EntityId.eq(entity_id))
        .filter(event::Column::Action.eq(action))
        .order_by_asc(event::Column::Sequence)
        .all(conn)
        .await?;
    Ok(rows.into_iter().map(to_proto).collect())
}

/// Defines the `list`, `verify`, `watch`, `checkpoint`, `inclusion` and `consistency` handlers of
/// `ListAuditEvents`, `VerifyAuditTrail`, `WatchEvents`, `GetCheckpoint`, `GetInclusionProof` and
/// `GetConsistencyProof` for a service API type with `db: DatabaseConnection` and
/// `trail: records::log::Trail` fields, whose proto
/// module is in scope as `$pb` (every service's contract declares the same message pairs).
/// `$service` names the service in event ids and cursors; `$may_read(role, entity_type)` says
/// which records a role reads.
#[macro_export]
macro_rules! audit_handlers {
    ($api:ty, $pb:ident, $service:literal, $may_read:path) => {
        pub(super) async fn watch(
            api: &$api,
            request: tonic::Request<$pb::WatchEventsRequest>,
        ) -> Result<$crate::server::handlers::EventStream<$pb::WatchEventsResponse>, $crate::AppError> {
            use $crate::records::watch;
            let call = $crate::identity::auth::CallContext::of(&request)?;
            let req = request.into_inner();
            // "From now" starts after every change committed before this call.
            $crate::records::log::integrate(&api.db).await?;
            let asked = watch::Request {
                cursor: &req.cursor,
                from_now: req.from_now,
                entity_types: &req.entity_types,
                trial_id: &req.trial_id,
                site_code: &req.site_code,
            };
            let subscription = watch::Subscription::new(&api.db, $service, &call, asked, $may_read)
                .await?
                .without_training(&api.trail.training_trials);
            let events = watch::stream(api.db.clone(), subscription, api.trail.watch);
            Ok(watch::boxed(events, |event| $pb::WatchEventsResponse {
                event: Some(event),
            }))
        }

        pub(super) async fn list(
            api: &$api,
            request: tonic::Request<$pb::ListAuditEventsRequest>,
        ) -> Result<$pb::ListAuditEventsResponse, $crate::AppError> {
            let req = request.into_inner();
            // What the caller wrote before this call is listed: integrate it first.
            $crate::records::log::integrate(&api.db).await?;
            let (events, next_page_token) = $crate::records::audit::list(
                &api.db,
                &req.entity_type,
                &req.entity_id,
                req.page_size,
                &req.page_token,
            )
            .await?;
            Ok($pb::ListAuditEventsResponse {
                events,
                next_page_token,
            })
        }

        pub(super) async fn verify(
            api: &$api,
            _request: tonic::Request<$pb::VerifyAuditTrailRequest>,
        ) -> Result<$pb::VerifyAuditTrailResponse, $crate::AppError> {
            Ok($pb::VerifyAuditTrailResponse {
                verification: Some($crate::records::log::verify(&api.db, &api.trail).await?),
            })
        }

        pub(super) async fn checkpoint(
            api: &$api,
            _request: tonic::Request<$pb::GetCheckpointRequest>,
        ) -> Result<$pb::GetCheckpointResponse, $crate::AppError> {
            Ok($pb::GetCheckpointResponse {
                checkpoint: Some($crate::records::log::checkpoint(&api.db, &api.trail.key).await?),
            })
        }

        pub(super) async fn inclusion(
            api: &$api,
            request: tonic::Request<$pb::GetInclusionProofRequest>,
        ) -> Result<$pb::GetInclusionProofResponse, $crate::AppError> {
            let req = request.into_inner();
            let (entry, proof) = $crate::records::log::inclusion_proof(&api.db, req.sequence, req.tree_size).await?;
            Ok($pb::GetInclusionProofResponse {
                entry: Some(entry),
                tree_size: req.tree_size,
                proof,
            })
        }

        pub(super) async fn consistency(
            api: &$api,
            request: tonic::Request<$pb::GetConsistencyProofRequest>,
        ) -> Result<$pb::GetConsistencyProofResponse, $crate::AppError> {
            let req = request.into_inner();
            let proof = $crate::records::log::consistency_proof(&api.db, req.old_size, req.new_size).await?;
            Ok($pb::GetConsistencyProofResponse {
                old_size: req.old_size,
                new_size: req.new_size,
                proof,
            })
        }
    };
}
