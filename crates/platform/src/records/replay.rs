//! Records checked against their trail: each record's state as its latest audit entry recorded
//! it, compared field by field with the row stored now. A value edited in the database behind
//! the service (an `arm_code`, say) differs from the trail; a row with no entry was inserted
//! behind it; an entry whose row is gone names a deleted record.
//!
//! A service lists, per kind of record, the actions whose entry holds the whole record (and
//! where in the entry's new value: a JSON pointer, "" for all of it) and how to read its rows.
//! Fields a record has now but an older entry did not (a column added since) are not compared.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;

use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder};
use serde_json::Value;

use crate::records::store::audit_event as event;
use crate::wire::error::AppError;

/// Rows of one kind of record: (entity id as the trail names it, the row as JSON).
pub type Rows<'a> = Pin<Box<dyn Future<Output = Result<Vec<(String, Value)>, AppError>> + Send + 'a>>;

/// One kind of record and how its trail describes it.
#[derive(Clone, Copy)]
pub struct RecordKind {
    /// The trail's entity type.
    pub entity_type: &'static str,
    /// Actions whose entry holds the whole record after the change, with the JSON pointer to it
    /// in the entry's new value ("" for the whole value).
    pub actions: &'static [(&'static str, &'static str)],
    /// Whether every row was written with an entry of its own (otherwise rows without one, made
    /// with a parent record's entry, are not checked).
    pub every_row_has_entry: bool,
    /// Reads every row.
    pub rows: for<'a> fn(&'a DatabaseConnection) -> Rows<'a>,
}

impl std::fmt::Debug for RecordKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordKind")
            .field("entity_type", &self.entity_type)
            .finish_non_exhaustive()
    }
}

/// Every row of `E` as JSON with the id `id` gives it, for [`RecordKind::rows`].
pub async fn rows<E>(
    db: &DatabaseConnection,
    id: impl Fn(&E::Model) -> String,
) -> Result<Vec<(String, Value)>, AppError>
where
    E: EntityTrait,
    E::Model: serde::Serialize,
{
    E::find()
        .all(db)
        .await?
        .iter()
        .map(|m| Ok((id(m), crate::records::audit::to_json(m)?)))
        .collect()
}

/// Every record of `kinds` that differs from its trail, as "entity_type/entity_id: what", in
/// order.
pub async fn differing(db: &DatabaseConnection, kinds: &[RecordKind]) -> Result<Vec<String>, AppError> {
    let mut found = Vec::new();
    for kind in kinds {
        let actions: Vec<&str> = kind.actions.iter().map(|(a, _)| *a).collect();
        let entries = event::Entity::find()
            .filter(event::Column::EntityType.eq(kind.entity_type))
            .filter(event::Column::Action.is_in(actions))
            .order_by_asc(event::Column::Sequence)
            .all(db)
            .await?;
        let mut recorded: BTreeMap<String, Value> = BTreeMap::new();
        for e in entries {
            let pointer = kind
                .actions
                .iter()
                .find(|(a, _)| *a == e.action)
                .map_or("", |(_, p)| *p);
            let value: Value = serde_json::from_str(&e.new_value).unwrap_or(Value::Null);
            let record = value.pointer(pointer).cloned().unwrap_or(Value::Null);
            recorded.insert(e.entity_id, record);
        }
        let mut stored: BTreeMap<String, Value> = (kind.rows)(db).await?.into_iter().collect();
        for (id, row) in &stored {
            let name = format!("{}/{id}", kind.entity_type);
            match recorded.get(id) {
                None if kind.every_row_has_entry => found.push(format!("{name}: no audit entry")),
                None => {}
                Some(Value::Object(then)) => {
                    let fields: Vec<&str> = match row {
                        Value::Object(now) => then
                            .iter()
                            .filter(|(k, v)| now.get(*k).is_some_and(|n| n != *v))
                            .map(|(k, _)| k.as_str())
                            .collect(),
                        _ => vec!["(not a record)"],
                    };
                    if !fields.is_empty() {
                        found.push(format!("{name}: {}", fields.join(", ")));
                    }
                }
                Some(_) => found.push(format!("{name}: its entry holds no record")),
            }
        }
        for id in recorded.keys() {
            if stored.remove(id).is_none() {
                found.push(format!("{}/{id}: the record is gone", kind.entity_type));
            }
        }
    }
    Ok(found)
}
