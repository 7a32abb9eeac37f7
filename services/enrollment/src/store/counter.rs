//! Named counters (subject numbers per trial, allocation positions per stratum), incremented
//! inside the enrolling transaction. The increment is an UPDATE, which takes the row lock on
//! PostgreSQL (and SQLite's write lock), so concurrent enrollments on any number of replicas
//! are serialized per counter by the database and never share a number or a position.

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

/// Increments counter `name` (creating it at 0) and returns the new value, from 1.
pub async fn next<C: ConnectionTrait>(conn: &C, name: &str) -> Result<i64, DbErr> {
    Entity::insert(ActiveModel {
        name: Set(name.to_owned()),
        value: Set(0),
    })
    .on_conflict_do_nothing_on([Column::Name])
    .exec_without_returning(conn)
    .await?;
    Entity::update_many()
        .col_expr(Column::Value, Expr::col(Column::Value).add(1))
        .filter(Column::Name.eq(name))
        .exec(conn)
        .await?;
    Entity::find_by_id(name.to_owned())
        .one(conn)
        .await?
        .map(|c| c.value)
        .ok_or_else(|| DbErr::RecordNotFound(format!("counter {name}")))
}
