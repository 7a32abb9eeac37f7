//! What a screening and an enrollment are judged on, each read in one statement. An enrollment's
//! facts: the candidate's latest screening, and beside it whether its site is registered, the
//! subject already enrolled from it, the subjects enrolled at the site, the accrual closures in
//! force and the trial's key fingerprint; read after the enrollment counters are taken, so they
//! include every enrollment committed before. A screening's: whether the site is registered, the
//! subject already enrolled from the screening and its last attempt.

use sea_orm::entity::prelude::*;
use sea_orm::sea_query::{Expr, ExprTrait, Query, SelectStatement};
use sea_orm::{FromQueryResult, QueryOrder, QuerySelect};

use super::{accrual_closure, screening, site, subject, trial_key};

/// The facts, present when the candidate has a screening.
#[derive(Debug, Clone, FromQueryResult)]
pub struct Facts {
    /// The latest screening attempt.
    #[sea_orm(nested)]
    pub screening: screening::Model,
    /// Whether the enrolling site is registered (a count: 0 or 1).
    pub site_registered: i64,
    /// The subject already enrolled from this screening.
    pub enrolled_as: Option<String>,
    /// Subjects of the trial enrolled at the enrolling site; 0 when not asked for (a count
    /// reads every subject of the site, so it is read only where a site maximum needs it).
    pub enrolled_at_site: i64,
    /// The reason of the closure of the whole trial's accrual, if it is closed.
    pub trial_hold: Option<String>,
    /// The reason of the closure of the site's accrual, if it is closed.
    pub site_hold: Option<String>,
    /// The trial's recorded key fingerprint; none before its first allocation.
    pub key_fingerprint: Option<String>,
}

/// What recording another screening attempt needs.
#[derive(Debug, Clone, FromQueryResult)]
pub struct Prior {
    /// Whether the screening site is registered (a count: 0 or 1).
    pub site_registered: i64,
    /// The subject already enrolled from this screening.
    pub enrolled_as: Option<String>,
    /// The screening's last attempt so far.
    pub last_attempt: Option<i32>,
}

fn scalar(select: &mut SelectStatement) -> Expr {
    Expr::SubQuery(None, Box::new(select.take().into()))
}

fn site_registered(site_code: &str) -> Expr {
    scalar(
        Query::select()
            .expr(Expr::col(site::Column::SiteCode).count())
            .from(site::Entity)
            .and_where(site::Column::SiteCode.eq(site_code)),
    )
}

fn enrolled_as(trial_id: &str, screening_id: &str) -> Expr {
    scalar(
        Query::select()
            .column(subject::Column::SubjectId)
            .from(subject::Entity)
            .and_where(subject::Column::TrialId.eq(trial_id))
            .and_where(subject::Column::ScreeningId.eq(screening_id))
            .limit(1),
    )
}

/// What recording another attempt of screening `screening_id` of `trial_id` at `site_code`
/// needs.
pub async fn prior<C: ConnectionTrait>(
    conn: &C,
    trial_id: &str,
    screening_id: &str,
    site_code: &str,
) -> Result<Prior, DbErr> {
    let last_attempt = scalar(
        Query::select()
            .expr(Expr::col(screening::Column::Attempt).max())
            .from(screening::Entity)
            .and_where(screening::Column::TrialId.eq(trial_id))
            .and_where(screening::Column::ScreeningId.eq(screening_id)),
    );
    let select = Query::select()
        .expr_as(site_registered(site_code), "site_registered")
        .expr_as(enrolled_as(trial_id, screening_id), "enrolled_as")
        .expr_as(last_attempt, "last_attempt")
        .to_owned();
    let row = conn
        .query_one(&select)
        .await?
        .ok_or_else(|| DbErr::RecordNotFound("a select without a table returned no row".into()))?;
    Prior::from_query_result(&row, "")
}

/// The facts of enrolling screening `screening_id` of `trial_id` at `site_code` (with the
/// site's count if `count_site`); none when the screening was never recorded.
pub async fn read<C: ConnectionTrait>(
    conn: &C,
    trial_id: &str,
    screening_id: &str,
    site_code: &str,
    count_site: bool,
) -> Result<Option<Facts>, DbErr> {
    let closure = |site: &str| {
        scalar(
            Query::select()
                .column(accrual_closure::Column::Reason)
                .from(accrual_closure::Entity)
                .and_where(accrual_closure::Column::Scope.eq(accrual_closure::scope(trial_id, site))),
        )
    };
    let enrolled_at_site = if count_site {
        scalar(
            Query::select()
                .expr(Expr::col(subject::Column::SubjectId).count())
                .from(subject::Entity)
                .and_where(subject::Column::TrialId.eq(trial_id))
                .and_where(subject::Column::SiteCode.eq(site_code)),
        )
    } else {
        Expr::val(0i64)
    };
    screening::Entity::find()
        .filter(screening::Column::TrialId.eq(trial_id))
        .filter(screening::Column::ScreeningId.eq(screening_id))
        .order_by_desc(screening::Column::Attempt)
        .limit(1)
        .column_as(site_registered(site_code), "site_registered")
        .column_as(enrolled_as(trial_id, screening_id), "enrolled_as")
        .column_as(enrolled_at_site, "enrolled_at_site")
        .column_as(closure(""), "trial_hold")
        .column_as(closure(site_code), "site_hold")
        .column_as(
            scalar(
                Query::select()
                    .column(trial_key::Column::Fingerprint)
                    .from(trial_key::Entity)
                    .and_where(trial_key::Column::TrialId.eq(trial_id)),
            ),
            "key_fingerprint",
        )
        .into_model::<Facts>()
        .one(conn)
        .await
}
