//! Named counters (subject numbers per trial, allocation positions per stratum), incremented
//! inside the enrolling transaction. The increment is one upsert whose update takes the row
//! lock on PostgreSQL (and SQLite's write lock), so concurrent enrollments on any number of
//! replicas are serialized per counter by the database and never share a number or a position.

use sea_orm::entity::prelude::*;
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{ActiveValue::Set, ConnectionTrait};

/// A counter.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "counters")]
pub struct Model {
    /// Counter name, for example "subject_number|ANBL1221".
    #[sea_orm(primary_key, auto_increment = false)]
    pub name: String,
    /// Last value handed out, 0 before the first.
    pub value: i64,
}

/// No relations.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

/// Adds to each counter (names distinct; each created at 0) and returns their new values in the
/// order given: one statement, an upsert of every row returning them. Rows are locked in the
/// order given, so callers that list the counters in the same order never deadlock.
pub async fn add_each<C: ConnectionTrait>(conn: &C, added: &[(&str, i64)]) -> Result<Vec<i64>, DbErr> {
    upsert_each(
        conn,
        added,
        Expr::col((Entity, Column::Value)).add(Expr::cust("excluded.value")),
    )
    .await
}

/// Sets each counter (names distinct) to its value: one statement.
pub async fn set_each<C: ConnectionTrait>(conn: &C, values: &[(&str, i64)]) -> Result<(), DbErr> {
    upsert_each(conn, values, Expr::cust("excluded.value")).await.map(drop)
}

/// Inserts `(name, value)` rows, a row already there taking `update`; the new values in the
/// order given.
async fn upsert_each<C: ConnectionTrait>(conn: &C, rows: &[(&str, i64)], update: Expr) -> Result<Vec<i64>, DbErr> {
    use sea_orm::sea_query::OnConflict;
    let models = rows.iter().map(|(name, value)| ActiveModel {
        name: Set((*name).to_owned()),
        value: Set(*value),
    });
    let stored = Entity::insert_many(models)
        .on_conflict(OnConflict::column(Column::Name).value(Column::Value, update).to_owned())
        .exec_with_returning(conn)
        .await?;
    rows.iter()
        .map(|(name, _)| {
            stored
                .iter()
                .find(|row| row.name == *name)
                .map(|row| row.value)
                .ok_or_else(|| DbErr::RecordNotFound(format!("counter {name} was not returned")))
        })
        .collect()
}

/// Takes the row lock of counter `name` without changing it (creating it at 0): what must not
/// interleave with the writers that increment it waits for them, and they for it.
pub async fn hold<C: ConnectionTrait>(conn: &C, name: &str) -> Result<(), DbErr> {
    upsert_each(conn, &[(name, 0)], Expr::col((Entity, Column::Value)))
        .await
        .map(drop)
}
