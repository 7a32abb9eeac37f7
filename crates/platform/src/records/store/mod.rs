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

/// The keyset condition of a page ordered by `(first, second)` that continues after
/// `(after_first, after_second)`: `first >= a AND (first > a OR (first = a AND second > b))`.
/// The leading `first >= a` is what an index on `(…, first, second)` can seek to; without it
/// the database reads every row before the page and filters them out (a page's cost grew with
/// its depth). Both backends.
pub fn after_pair<C, A, B>(first: C, after_first: A, second: C, after_second: B) -> sea_orm::Condition
where
    C: ColumnTrait,
    A: Into<sea_orm::Value> + Clone,
    B: Into<sea_orm::Value>,
{
    use sea_orm::Condition;
    Condition::all().add(first.gte(after_first.clone())).add(
        Condition::any()
            .add(first.gt(after_first.clone()))
            .add(Condition::all().add(first.eq(after_first)).add(second.gt(after_second))),
    )
}

#[cfg(test)]
mod tests {
    mod row {
        use sea_orm::entity::prelude::*;

        #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
        #[sea_orm(table_name = "rows")]
        pub struct Model {
            #[sea_orm(primary_key, auto_increment = false)]
            pub id: String,
            pub due: i32,
        }

        #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
        pub enum Relation {}

        impl ActiveModelBehavior for ActiveModel {}
    }

    use sea_orm::{
        ConnectOptions, ConnectionTrait, Database, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    };

    #[tokio::test]
    async fn pages_after_a_pair_visit_every_row_once_in_order_through_ties() -> Result<(), DbErr> {
        let mut options = ConnectOptions::new("sqlite::memory:");
        options.max_connections(1);
        let db = Database::connect(options).await?;
        db.execute_unprepared(
            "CREATE TABLE rows (id TEXT PRIMARY KEY, due INTEGER NOT NULL);
             INSERT INTO rows VALUES ('a', 3), ('b', 1), ('c', 3), ('d', 2), ('e', 1), ('f', 3), ('g', 3);",
        )
        .await?;
        let mut seen = Vec::new();
        let mut after: Option<(i32, String)> = None;
        loop {
            let mut query = row::Entity::find()
                .order_by_asc(row::Column::Due)
                .order_by_asc(row::Column::Id);
            if let Some((due, id)) = &after {
                query = query.filter(super::after_pair(row::Column::Due, *due, row::Column::Id, id.clone()));
            }
            let page = query.limit(2).all(&db).await?;
            let Some(last) = page.last() else { break };
            after = Some((last.due, last.id.clone()));
            seen.extend(page.into_iter().map(|r| (r.due, r.id)));
        }
        // By due, then id: the ties at 1 and 3 split across pages without a row lost or repeated.
        let expected = [(1, "b"), (1, "e"), (2, "d"), (3, "a"), (3, "c"), (3, "f"), (3, "g")];
        assert_eq!(seen, expected.map(|(d, id)| (d, id.to_owned())).to_vec());
        Ok(())
    }
}
