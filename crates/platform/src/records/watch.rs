//! WatchEvents: every committed change of a service, in commit order, from an opaque cursor.
//!
//! The events are the audit trail's entries, so nothing is written twice and an event exists
//! exactly when its change committed. Order: an entry's sequence is its position in the
//! transparency log, which the log's sequencer assigns after the change committed, in batches
//! each committed at once ([`crate::records::log`]); so entries become visible in sequence order
//! and a reader that has seen entry n never later finds an n-1 appear. A subscriber is
//! therefore served by reading "sequence > cursor" in pages, then polling for newer entries;
//! reconnecting with the cursor of the last event processed misses nothing.
//!
//! Memory is bounded per subscriber: one page read from the database and a channel of
//! [`Options::buffer`] events. A subscriber that does not take an event within
//! [`Options::slow_after`] is not waited for: its stream ends with ABORTED /
//! `SUBSCRIBER_TOO_SLOW`, whose metadata `resume_cursor` is where to call again.

use std::collections::HashMap;
use std::time::Duration;

use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use tokio::sync::mpsc;
use tokio_stream::{Stream, StreamExt, wrappers::ReceiverStream};
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};
use trialops_proto::common::v1::{self as common, CommonReason};

use crate::identity::auth::{CallContext, Role};
use crate::records::audit::to_proto;
use crate::records::store::audit_event as event;
use crate::wire::error::{AppError, ERROR_DOMAIN, ReasonCode};

/// The record type of refused calls, which only administrators receive (they name other callers).
const REFUSALS: &str = "rpc";

/// Keys of a record's JSON that carry a treatment arm, removed for callers blinded to allocation.
const ARM_KEYS: &[&str] = &["arm_code"];

/// How a service serves its subscribers.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// How often a subscriber that is up to date looks for new entries.
    pub poll_interval: Duration,
    /// Entries read from the database at a time.
    pub page: u64,
    /// Events waiting for a subscriber at most.
    pub buffer: usize,
    /// How long an event may wait for a subscriber whose buffer is full before its stream ends.
    pub slow_after: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            poll_interval: Duration::from_millis(250),
            page: 200,
            buffer: 256,
            slow_after: Duration::from_secs(30),
        }
    }
}

/// What one caller asked for and may receive.
#[derive(Debug, Clone)]
pub struct Subscription {
    service: &'static str,
    after: i64,
    entity_types: Vec<String>,
    trial_id: Option<String>,
    site_code: Option<String>,
    refusals: bool,
    blinded: bool,
    /// Training trials left out (of a subscription to every trial).
    left_out: Vec<String>,
}

/// The fields of a WatchEventsRequest, as every service's contract declares them.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// Continue after this cursor; empty for the start.
    pub cursor: &'a str,
    /// Start after the last committed entry.
    pub from_now: bool,
    /// Only these record types; empty for all.
    pub entity_types: &'a [String],
    /// Only this trial; empty for all.
    pub trial_id: &'a str,
    /// Only this site; empty for all the caller sees.
    pub site_code: &'a str,
}

fn cursor_for(service: &str, sequence: i64) -> String {
    hex::encode(format!("w1|{service}|{sequence}"))
}

fn parse_cursor(service: &str, cursor: &str) -> Result<i64, AppError> {
    let bad = |why: &str| AppError::invalid("cursor", why.to_owned());
    let text = hex::decode(cursor)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .ok_or_else(|| bad("not a cursor WatchEvents issued"))?;
    match text.split('|').collect::<Vec<_>>().as_slice() {
        ["w1", issuer, sequence] if *issuer == service => sequence
            .parse::<i64>()
            .ok()
            .filter(|n| *n >= 0)
            .ok_or_else(|| bad("not a cursor WatchEvents issued")),
        ["w1", issuer, _] => Err(bad(&format!(
            "a cursor of the {issuer} service; this is the {service} service"
        ))),
        _ => Err(bad("not a cursor WatchEvents issued")),
    }
}

impl Subscription {
    /// Checks a request against what the caller may see. `may_read(role, entity_type)` is the
    /// service's rule for which records a role reads (refused calls are handled here).
    pub async fn new(
        db: &DatabaseConnection,
        service: &'static str,
        call: &CallContext,
        request: Request<'_>,
        may_read: fn(Role, &str) -> bool,
    ) -> Result<Self, AppError> {
        let role = call.principal.role;
        let mut violations = Vec::new();
        if request.from_now && !request.cursor.is_empty() {
            violations.push(("from_now", "give either a cursor or from_now, not both".to_owned()));
        }
        for (i, kind) in request.entity_types.iter().enumerate() {
            if kind.is_empty() || kind.len() > 64 {
                violations.push(("entity_types", format!("entry {i} must be 1 to 64 characters")));
            }
        }
        if request.entity_types.len() > 32 {
            violations.push(("entity_types", "at most 32 record types".to_owned()));
        }
        if let Some((field, description)) = violations.into_iter().next() {
            return Err(AppError::invalid(field, description));
        }
        let denied: Vec<&str> = request
            .entity_types
            .iter()
            .map(String::as_str)
            .filter(|kind| !Self::readable(role, kind, may_read))
            .collect();
        if !denied.is_empty() {
            return Err(AppError::PermissionDenied(format!(
                "entity_types: a {} does not read {}",
                role.as_str(),
                denied.join(", ")
            )));
        }
        let site_code = match call.site_scope.as_deref() {
            Some(own) if !request.site_code.is_empty() && request.site_code != own => {
                return Err(AppError::PermissionDenied(format!(
                    "site_code: you see only site {own}"
                )));
            }
            Some(own) => Some(own.to_owned()),
            None => Some(request.site_code.to_owned()).filter(|s| !s.is_empty()),
        };
        let after = if request.from_now {
            event::Entity::find()
                .select_only()
                .column_as(event::Column::Sequence.max(), "last")
                .into_tuple::<Option<i64>>()
                .one(db)
                .await?
                .flatten()
                .unwrap_or(0)
        } else if request.cursor.is_empty() {
            0
        } else {
            parse_cursor(service, request.cursor)?
        };
        let mut entity_types: Vec<String> = request.entity_types.to_vec();
        if entity_types.is_empty() && KINDS.iter().any(|kind| !may_read(role, kind)) {
            // "All" for a role that does not read every kind: the kinds it reads.
            entity_types = known_kinds(may_read, role);
        }
        Ok(Subscription {
            service,
            after,
            entity_types,
            trial_id: Some(request.trial_id.to_owned()).filter(|t| !t.is_empty()),
            site_code,
            refusals: role == Role::Administrator,
            blinded: call.blinded_to_allocation(),
            left_out: Vec::new(),
        })
    }

    /// The same subscription without the changes of `training` trials, unless it asked for one
    /// of them by trial: a production consumer never receives practice data.
    pub fn without_training(self, training: &[String]) -> Self {
        if self.trial_id.is_some() {
            return self;
        }
        Subscription {
            left_out: training.to_vec(),
            ..self
        }
    }

    fn readable(role: Role, kind: &str, may_read: fn(Role, &str) -> bool) -> bool {
        if kind == REFUSALS {
            role == Role::Administrator
        } else {
            may_read(role, kind)
        }
    }
}

/// Every record type any trialops service writes, for turning "all types" into the list a role
/// reads when it does not read them all.
const KINDS: &[&str] = &[
    "site",
    "screening",
    "subject",
    "unblinding",
    "accrual",
    "plan",
    "cycle",
    "administration",
    "assessment",
    "adverse_event",
    "obligation",
];

fn known_kinds(may_read: fn(Role, &str) -> bool, role: Role) -> Vec<String> {
    let mut kinds: Vec<String> = KINDS
        .iter()
        .filter(|kind| may_read(role, kind))
        .map(|kind| (*kind).to_owned())
        .collect();
    if role == Role::Administrator {
        kinds.push(REFUSALS.to_owned());
    }
    if kinds.is_empty() {
        // Matches nothing: an empty list would mean "all".
        kinds.push(String::new());
    }
    kinds
}

fn strip_arms(json: &str) -> String {
    fn strip(value: &mut serde_json::Value) {
        match value {
            serde_json::Value::Object(map) => {
                map.retain(|k, _| !ARM_KEYS.contains(&k.as_str()));
                map.values_mut().for_each(strip);
            }
            serde_json::Value::Array(items) => items.iter_mut().for_each(strip),
            _ => {}
        }
    }
    match serde_json::from_str::<serde_json::Value>(json) {
        Ok(mut value) => {
            strip(&mut value);
            value.to_string()
        }
        // Not JSON (empty, for a creation): nothing to remove.
        Err(_) => json.to_owned(),
    }
}

impl Subscription {
    async fn page(&self, db: &DatabaseConnection, size: u64) -> Result<Vec<event::Model>, AppError> {
        let mut query = event::Entity::find()
            .filter(event::Column::Sequence.gt(self.after))
            .order_by_asc(event::Column::Sequence)
            .limit(size);
        if !self.entity_types.is_empty() {
            query = query.filter(event::Column::EntityType.is_in(self.entity_types.iter().cloned()));
        }
        if !self.refusals {
            query = query.filter(event::Column::EntityType.ne(REFUSALS));
        }
        if let Some(trial) = &self.trial_id {
            query = query.filter(event::Column::TrialId.eq(trial.as_str()));
        }
        if !self.left_out.is_empty() {
            query = query.filter(event::Column::TrialId.is_not_in(self.left_out.iter().cloned()));
        }
        if let Some(site) = &self.site_code {
            query = query.filter(event::Column::SiteCode.eq(site.as_str()));
        }
        Ok(query.all(db).await?)
    }

    fn event(&self, e: event::Model) -> common::ChangeEvent {
        let (trial_id, site_code) = (e.trial_id.clone(), e.site_code.clone());
        let sequence = e.sequence;
        let mut entry = to_proto(e);
        if self.blinded {
            entry.old_value_json = strip_arms(&entry.old_value_json);
            entry.new_value_json = strip_arms(&entry.new_value_json);
        }
        common::ChangeEvent {
            event_id: format!("{}/{sequence}", self.service),
            cursor: cursor_for(self.service, sequence),
            trial_id,
            site_code,
            entry: Some(entry),
        }
    }
}

/// ABORTED / `SUBSCRIBER_TOO_SLOW`, telling the subscriber where to resume.
fn too_slow(cursor: &str) -> Status {
    let metadata = HashMap::from([("resume_cursor".to_owned(), cursor.to_owned())]);
    Status::with_error_details(
        Code::Aborted,
        "you read more slowly than events arrived; call WatchEvents again with the cursor of the last \
         event you received",
        ErrorDetails::with_error_info(
            ReasonCode::from(CommonReason::SubscriberTooSlow).as_str(),
            ERROR_DOMAIN,
            metadata,
        ),
    )
}

/// The subscriber's events, read by a task of their own until the subscriber goes away, falls
/// too far behind, or the database fails (UNAVAILABLE: resume with the last cursor).
pub fn stream(
    db: DatabaseConnection,
    mut subscription: Subscription,
    options: Options,
) -> impl Stream<Item = Result<common::ChangeEvent, Status>> + Send + 'static {
    let (tx, rx) = mpsc::channel(options.buffer.max(1));
    let (end_tx, end_rx) = mpsc::channel::<Result<common::ChangeEvent, Status>>(1);
    tokio::spawn(async move {
        let ended = loop {
            let rows = match subscription.page(&db, options.page.max(1)).await {
                Ok(rows) => rows,
                Err(e) => break Some(Status::from(e)),
            };
            let full_page = rows.len() as u64 >= options.page.max(1);
            let mut slow = None;
            for row in rows {
                let sequence = row.sequence;
                let event = subscription.event(row);
                match tx.send_timeout(Ok(event), options.slow_after).await {
                    Ok(()) => subscription.after = sequence,
                    Err(mpsc::error::SendTimeoutError::Timeout(_)) => {
                        slow = Some(too_slow(&cursor_for(subscription.service, subscription.after)));
                        break;
                    }
                    Err(mpsc::error::SendTimeoutError::Closed(_)) => return,
                }
            }
            if slow.is_some() {
                break slow;
            }
            if !full_page {
                tokio::select! {
                    () = tokio::time::sleep(options.poll_interval) => {}
                    () = tx.closed() => return,
                }
            }
        };
        if let Some(status) = ended {
            // Delivered after the events already buffered.
            let _ = end_tx.send(Err(status)).await;
        }
    });
    ReceiverStream::new(rx).chain(ReceiverStream::new(end_rx))
}

/// `events` as a handler answers them, each wrapped in its service's response message.
pub fn boxed<T: Send + 'static>(
    events: impl Stream<Item = Result<common::ChangeEvent, Status>> + Send + 'static,
    wrap: fn(common::ChangeEvent) -> T,
) -> crate::server::handlers::EventStream<T> {
    Box::pin(events.map(move |event| event.map(wrap)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_belong_to_their_service() {
        let cursor = cursor_for("dosing", 42);
        assert_eq!(parse_cursor("dosing", &cursor).ok(), Some(42));
        let err = parse_cursor("outcomes", &cursor)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("the dosing service"), "{err}");
        assert!(parse_cursor("dosing", "zz").is_err());
        assert!(parse_cursor("dosing", &hex::encode("w1|dosing|-3")).is_err());
    }

    #[test]
    fn arms_are_removed_at_any_depth_and_nothing_else() {
        let stripped = strip_arms(r#"{"subject_id":"T-1","arm_code":"B","inner":[{"arm_code":"A","x":1}]}"#);
        let value: serde_json::Value = serde_json::from_str(&stripped).unwrap_or_default();
        assert_eq!(value, serde_json::json!({"subject_id": "T-1", "inner": [{"x": 1}]}));
        assert_eq!(strip_arms(""), "");
    }
}
