//! Expedited-reporting obligations with their deadlines.

use sea_orm::entity::prelude::*;
use serde::Serialize;

/// A reporting obligation.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize)]
#[sea_orm(table_name = "obligations")]
pub struct Model {
    /// Obligation id (UUID).
    #[sea_orm(primary_key, auto_increment = false)]
    pub obligation_id: String,
    /// Adverse event.
    pub adverse_event_id: String,
    /// Study subject id.
    pub subject_id: String,
    /// Site.
    pub site_code: String,
    /// Kind, for example "notification_24h".
    pub kind: String,
    /// The rule that created it.
    pub rule: String,
    /// Deadline, UTC.
    pub due_at: DateTimeUtc,
    /// True until submitted (indexed with the deadline for the overdue list).
    pub open: bool,
    /// When submitted, UTC.
    pub submitted_at: Option<DateTimeUtc>,
}

/// No relations.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

/// An obligation by its id.
pub async fn find<C: ConnectionTrait>(conn: &C, obligation_id: &str) -> Result<Option<Model>, DbErr> {
    Entity::find_by_id(obligation_id.to_owned()).one(conn).await
}

/// Stores new obligations (none is fine).
pub async fn insert_many<C: ConnectionTrait>(conn: &C, obligations: &[Model]) -> Result<(), DbErr> {
    if obligations.is_empty() {
        return Ok(());
    }
    Entity::insert_many(obligations.iter().cloned().map(ActiveModel::from))
        .exec_without_returning(conn)
        .await?;
    Ok(())
}

/// Writes a changed obligation.
pub async fn save<C: ConnectionTrait>(conn: &C, obligation: &Model) -> Result<(), DbErr> {
    use sea_orm::ActiveModelTrait;
    ActiveModel::from(obligation.clone()).reset_all().update(conn).await?;
    Ok(())
}

/// An adverse event's obligations, earliest due first (the order they are created in).
pub async fn of_event<C: ConnectionTrait>(conn: &C, adverse_event_id: &str) -> Result<Vec<Model>, DbErr> {
    use sea_orm::QueryOrder;
    Entity::find()
        .filter(Column::AdverseEventId.eq(adverse_event_id))
        .order_by_asc(Column::DueAt)
        .order_by_asc(Column::ObligationId)
        .all(conn)
        .await
}

/// Open obligations of a trial's adverse events already past due at `now`, earliest first, at
/// most 500. One parameter whatever the trial's size (a list of its subjects would outgrow the
/// database's limit on parameters in a large trial).
pub async fn overdue_of_trial<C: ConnectionTrait>(
    conn: &C,
    trial_id: &str,
    now: DateTimeUtc,
) -> Result<Vec<Model>, DbErr> {
    use super::adverse_event;
    use sea_orm::sea_query::Query;
    use sea_orm::{QueryOrder, QuerySelect};
    let events_of_trial = Query::select()
        .column(adverse_event::Column::AdverseEventId)
        .from(adverse_event::Entity)
        .and_where(adverse_event::Column::TrialId.eq(trial_id))
        .to_owned();
    Entity::find()
        .filter(Column::Open.eq(true))
        .filter(Column::DueAt.lt(now))
        .filter(Column::AdverseEventId.in_subquery(events_of_trial))
        .order_by_asc(Column::DueAt)
        .order_by_asc(Column::ObligationId)
        .limit(500)
        .all(conn)
        .await
}

/// One page of open obligations due by `horizon`, in due time then id order, of one site when
/// `site` is given: at most `limit`, after `(due, id)`.
pub async fn due_by<C: ConnectionTrait>(
    conn: &C,
    horizon: DateTimeUtc,
    site: Option<&str>,
    after: Option<(DateTimeUtc, &str)>,
    limit: u64,
) -> Result<Vec<Model>, DbErr> {
    use sea_orm::{QueryOrder, QuerySelect};
    let mut query = Entity::find()
        .filter(Column::Open.eq(true))
        .filter(Column::DueAt.lte(horizon))
        .order_by_asc(Column::DueAt)
        .order_by_asc(Column::ObligationId);
    if let Some(site) = site {
        query = query.filter(Column::SiteCode.eq(site));
    }
    if let Some((due, id)) = after {
        query = query.filter(trialops_platform::records::store::after_pair(
            Column::DueAt,
            due,
            Column::ObligationId,
            id,
        ));
    }
    query.limit(limit).all(conn).await
}
