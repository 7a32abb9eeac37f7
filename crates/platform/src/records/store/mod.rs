//! The platform's own tables (idempotency records, the audit trail and its transparency log) and
//! their migrations, which every service's migrator runs before its own.

pub mod audit_checkpoint;
pub mod audit_event;
pub mod audit_log_head;
pub mod audit_pending;
pub mod audit_tree_hash;
pub mod idempotency_record;
mod migrations;
pub mod schema;
pub mod signature;

pub use migrations::{add_column, drop_column, index, migrations};

use sea_orm::{ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, IntoActiveModel, QueryFilter};

/// Optimistic concurrency: writes every column of `updated`, the row whose `key` column is
/// `key_value`, only if its `version` column still holds `expected`; whether it did. A row
/// changed by another call since it was read is left alone (the caller answers ABORTED).
pub async fn save_if_version<C, A>(
    conn: &C,
    updated: impl IntoActiveModel<A>,
    (key, key_value): (<A::Entity as EntityTrait>::Column, &str),
    version: <A::Entity as EntityTrait>::Column,
    expected: i32,
) -> Result<bool, DbErr>
where
    C: ConnectionTrait,
    A: ActiveModelTrait + Send,
{
    // A model converted to an active model is all "unchanged", which an update skips: mark
    // every column for writing.
    let result = <A::Entity as EntityTrait>::update_many()
        .set(updated.into_active_model().reset_all())
        .filter(key.eq(key_value))
        .filter(version.eq(expected))
        .exec(conn)
        .await?;
    Ok(result.rows_affected == 1)
}
