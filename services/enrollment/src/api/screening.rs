//! ScreenSubject: check the values, evaluate every criterion, record the attempt.

use chrono::SubsecRound;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use tonic::Request;
use trialops_domain::eligibility::{self, InputPart};
use trialops_domain::identifiers::{ScreeningId, SiteCode};
use trialops_platform::audit::{self, AuditContext, Change};
use trialops_platform::auth::CallContext;
use trialops_platform::{AppError, Violations, convert as wire, idempotency};
use trialops_proto::enrollment::v1 as pb;
use uuid::Uuid;

use super::{EnrollmentApi, convert, latest_site_date};
use crate::error::Reason;
use crate::store::{screening, subject};

/// Most screening values one request may carry (a protocol defines a few dozen variables).
pub const MAX_SCREENING_VALUES: usize = 200;

pub(super) async fn screen(
    api: &EnrollmentApi,
    request: Request<pb::ScreenSubjectRequest>,
) -> Result<pb::ScreenSubjectResponse, AppError> {
    let call = CallContext::of(&request)?;
    let req = request.into_inner();
    let mut v = Violations::new();
    let request_id = v.take(wire::request_id("request_id", &req.request_id));
    v.take(wire::parsed("site_code", SiteCode::parse(&req.site_code)));
    v.take(wire::parsed("screening_id", ScreeningId::parse(&req.screening_id)));
    let assessed_on = v.take(wire::date("assessed_on", req.assessed_on.as_ref()));
    if let Some(date) = assessed_on {
        v.check(date <= latest_site_date(), "assessed_on", "must not be in the future");
    }
    let trial = if req.trial_id.is_empty() {
        v.add("trial_id", "required");
        None
    } else {
        Some(api.trials.get(&req.trial_id)?)
    };
    // Entries that fail conversion are reported here; the rest are checked against the protocol
    // with their original positions, so every bad entry is named once, by its own index.
    let countable = v.take(wire::at_most("values", req.values.len(), MAX_SCREENING_VALUES));
    let (positions, entries) = match countable {
        Some(()) => convert::screening_entries(&req.values, &mut v),
        None => (Vec::new(), Vec::new()),
    };
    let values = match trial.as_ref().filter(|_| countable.is_some()) {
        Some(trial) => match eligibility::check_inputs(&trial.protocol, &entries) {
            Ok(values) => Some(values),
            Err(problems) => {
                for p in problems {
                    let part = if p.part == InputPart::Variable {
                        "variable_id"
                    } else {
                        "value"
                    };
                    v.add(format!("values[{}].{part}", positions[p.index]), p.message);
                }
                None
            }
        },
        None => None,
    };
    let (Some(request_id), Some(assessed_on), Some(trial), Some(values)) = (request_id, assessed_on, trial, values)
    else {
        return Err(v.into_error());
    };
    v.finish()?;
    call.require_own_site("site_code", &req.site_code)?;

    let evaluation = eligibility::evaluate(&trial.protocol, &values);
    let results: Vec<convert::StoredResult> = evaluation.results.iter().map(convert::StoredResult::from).collect();
    let audit_ctx = AuditContext::new(call, request_id);
    let eligible = evaluation.eligible();
    idempotency::execute(
        &api.db,
        "EnrollmentService/ScreenSubject",
        request_id,
        &req.clone(),
        move |tx| {
            Box::pin(async move {
                super::require_registered(tx, &req.site_code).await?;
                let enrolled = subject::Entity::find()
                    .filter(subject::Column::TrialId.eq(req.trial_id.as_str()))
                    .filter(subject::Column::ScreeningId.eq(req.screening_id.as_str()))
                    .one(tx)
                    .await?;
                if enrolled.is_some() {
                    return Err(AppError::AlreadyExists {
                        reason: Reason::SubjectAlreadyEnrolled.into(),
                        message: format!("screening {} is already enrolled", req.screening_id),
                    });
                }
                let previous = screening::Entity::find()
                    .filter(screening::Column::TrialId.eq(req.trial_id.as_str()))
                    .filter(screening::Column::ScreeningId.eq(req.screening_id.as_str()))
                    .order_by_desc(screening::Column::Attempt)
                    .one(tx)
                    .await?;
                let record = screening::Model {
                    id: Uuid::new_v4().to_string(),
                    trial_id: req.trial_id.clone(),
                    screening_id: req.screening_id.clone(),
                    attempt: previous.map_or(1, |p| p.attempt + 1),
                    site_code: req.site_code.clone(),
                    assessed_on,
                    eligible,
                    results_json: serde_json::to_string(&results).map_err(AppError::internal)?,
                    values_json: convert::values_json(&values).to_string(),
                    recorded_at: trialops_platform::clock::now().trunc_subsecs(6),
                };
                screening::Entity::insert(screening::ActiveModel::from(record.clone()))
                    .exec_without_returning(tx)
                    .await?;
                let entity_id = format!("{}/{}/{}", record.trial_id, record.screening_id, record.attempt);
                audit::append(
                    tx,
                    &audit_ctx,
                    Change {
                        action: "screening.recorded",
                        entity_type: "screening",
                        entity_id: &entity_id,
                        old: None,
                        new: audit::to_json(&record)?,
                        reason: "",
                    },
                )
                .await?;
                Ok(pb::ScreenSubjectResponse {
                    screening: Some(convert::screening(&record)?),
                })
            })
        },
    )
    .await
}
