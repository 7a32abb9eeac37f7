//! GetCumulativeExposure: per agent, the total delivered and planned, and dose intensity
//! (delivered ÷ planned, where planned is the sum of prescribed doses of started cycles); cycles
//! started and completed (every administration recorded); whether any protocol therapy was
//! given. One query for the subject's administrations (at most cycles × agents × days rows).

use std::collections::BTreeMap;

use rust_decimal::{Decimal, RoundingStrategy};
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder};
use tonic::Request;
use trialops_platform::AppError;
use trialops_platform::convert::to_decimal;
use trialops_proto::dosing::v1 as pb;

use super::{DosingApi, convert, load_plan};
use crate::store::{administration, cycle};

pub(super) async fn cumulative(
    api: &DosingApi,
    request: Request<pb::GetCumulativeExposureRequest>,
) -> Result<pb::GetCumulativeExposureResponse, AppError> {
    let req = request.into_inner();
    if req.subject_id.is_empty() {
        return Err(AppError::invalid("subject_id", "required"));
    }
    let (_, agents) = load_plan(&api.db, &req.subject_id).await.map_err(|e| match e {
        AppError::FailedPrecondition { .. } => AppError::NotFound {
            what: "treatment plan",
            id: req.subject_id.clone(),
        },
        other => other,
    })?;
    let cycles_started = cycle::Entity::find()
        .filter(cycle::Column::SubjectId.eq(req.subject_id.as_str()))
        .count(&api.db)
        .await?;
    let rows = administration::Entity::find()
        .filter(administration::Column::SubjectId.eq(req.subject_id.as_str()))
        .order_by_asc(administration::Column::CycleNumber)
        .all(&api.db)
        .await?;

    let mut totals: BTreeMap<&str, (Decimal, Decimal, String)> = BTreeMap::new();
    let mut open_cycles = std::collections::BTreeSet::new();
    let mut received = false;
    for a in &rows {
        let entry = totals
            .entry(a.agent_id.as_str())
            .or_insert((Decimal::ZERO, Decimal::ZERO, a.unit.clone()));
        entry.1 += convert::parse(&a.prescribed_dose)?;
        if !a.actual_dose.is_empty() {
            let given = convert::parse(&a.actual_dose)?;
            entry.0 += given;
            received |= given > Decimal::ZERO;
        }
        if a.status == "planned" || a.status == "held" {
            open_cycles.insert(a.cycle_number);
        }
    }
    let per_agent = agents
        .iter()
        .filter_map(|pa| {
            let (delivered, planned, unit) = totals.get(pa.agent_id.as_str())?;
            let intensity = if planned.is_zero() {
                Decimal::ZERO
            } else {
                (delivered / planned).round_dp_with_strategy(4, RoundingStrategy::MidpointAwayFromZero)
            };
            Some(pb::AgentExposure {
                agent_id: pa.agent_id.clone(),
                delivered_total: Some(to_decimal(*delivered)),
                planned_total: Some(to_decimal(*planned)),
                dose_unit: unit.clone(),
                dose_intensity: Some(to_decimal(intensity)),
            })
        })
        .collect();
    let cycles_with_rows: std::collections::BTreeSet<i32> = rows.iter().map(|a| a.cycle_number).collect();
    let completed = cycles_with_rows.difference(&open_cycles).count();
    Ok(pb::GetCumulativeExposureResponse {
        subject_id: req.subject_id,
        cycles_started: i32::try_from(cycles_started).unwrap_or(i32::MAX),
        cycles_completed: i32::try_from(completed).unwrap_or(i32::MAX),
        agents: per_agent,
        received_protocol_therapy: received,
    })
}
