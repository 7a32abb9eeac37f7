//! ScreenSubject: check the values, evaluate every criterion, record the attempt.

use std::sync::Arc;

use chrono::NaiveDate;
use sea_orm::DatabaseTransaction;
use tonic::Request;
use trialops_domain::eligibility::{self, InputPart};
use trialops_domain::identifiers::{ScreeningId, SiteCode};
use trialops_platform::identity::auth::CallContext;
use trialops_platform::records::audit::{self, AuditContext, Change};
use trialops_platform::records::idempotency::{self, RequestId};
use trialops_platform::wire::convert as wire;
use trialops_platform::wire::fields::{AllFields, Field};
use trialops_platform::{AppError, Violations};
use trialops_proto::enrollment::v1 as pb;
use uuid::Uuid;

use super::{EnrollmentApi, convert, parse};
use crate::error::Reason;
use crate::store::{admission, screening};
use crate::trials::Trial;

/// Most screening values one request may carry (a protocol defines a few dozen variables).
pub const MAX_SCREENING_VALUES: usize = 200;

/// A ScreenSubject request, parsed: the candidate, the date and the protocol-checked values.
struct Screen {
    request_id: RequestId,
    trial: Arc<Trial>,
    site: SiteCode,
    screening: ScreeningId,
    assessed_on: NaiveDate,
    values: eligibility::Values,
}

impl Screen {
    /// The command, or INVALID_ARGUMENT naming every bad field (each bad value by its index).
    /// The criteria are those of the protocol version in force on the assessment date.
    async fn parse(req: &pb::ScreenSubjectRequest, api: &EnrollmentApi) -> Result<Screen, AppError> {
        let on = wire::past_date("assessed_on", req.assessed_on.as_ref()).ok();
        let trial = parse::trial_on(&api.trials, &api.db, &req.trial_id, on).await?;
        let (request_id, site, screening, assessed_on, (trial, values)) = (
            wire::request_id("request_id", &req.request_id),
            wire::parsed("site_code", SiteCode::parse(&req.site_code)),
            wire::parsed("screening_id", ScreeningId::parse(&req.screening_id)),
            wire::past_date("assessed_on", req.assessed_on.as_ref()),
            values(trial, &req.values),
        )
            .all()?;
        Ok(Screen {
            request_id,
            trial,
            site,
            screening,
            assessed_on,
            values,
        })
    }
}

/// The trial with its screening values checked against its protocol. Entries that fail
/// conversion are reported first (also when the trial is not known); the rest are checked with
/// their original positions, so every bad entry is named once, by its own index.
fn values(trial: Field<Arc<Trial>>, values: &[pb::ScreeningValue]) -> Field<(Arc<Trial>, eligibility::Values)> {
    let (trial, mut bad) = match trial {
        Ok(trial) => (Some(trial), Violations::new()),
        Err(bad) => (None, bad),
    };
    if let Err(too_many) = wire::at_most("values", values.len(), MAX_SCREENING_VALUES) {
        bad.extend(too_many.into());
        return Err(bad);
    }
    let (positions, entries) = convert::screening_entries(values, &mut bad);
    let Some(trial) = trial else {
        return Err(bad);
    };
    match eligibility::check_inputs(&trial.protocol, &entries) {
        Ok(values) => bad.or((trial, values)),
        Err(problems) => {
            for p in problems {
                let part = if p.part == InputPart::Variable {
                    "variable_id"
                } else {
                    "value"
                };
                bad.add(format!("values[{}].{part}", positions[p.index]), p.message);
            }
            Err(bad)
        }
    }
}

pub(super) async fn screen(
    api: &EnrollmentApi,
    request: Request<pb::ScreenSubjectRequest>,
) -> Result<pb::ScreenSubjectResponse, AppError> {
    let call = CallContext::of(&request)?;
    let req = request.into_inner();
    let command = Screen::parse(&req, api).await?;
    call.require_own_site("site_code", command.site.as_str())?;
    let audit_ctx = AuditContext::new(call, command.request_id);
    let method = "EnrollmentService/ScreenSubject";
    idempotency::execute(&api.db, method, command.request_id, &req, move |tx| {
        Box::pin(screen_in(tx, audit_ctx, command))
    })
    .await
}

/// The transaction: the site registered and the candidate not enrolled, then the next attempt
/// with every criterion's result, audited.
async fn screen_in(
    tx: &DatabaseTransaction,
    audit_ctx: AuditContext,
    command: Screen,
) -> Result<pb::ScreenSubjectResponse, AppError> {
    let (trial_id, screening_id) = (command.trial.protocol.trial.id.as_str(), command.screening.as_str());
    let prior = admission::prior(tx, trial_id, screening_id, command.site.as_str()).await?;
    if prior.site_registered == 0 {
        return Err(super::site_not_registered(command.site.as_str()));
    }
    if prior.enrolled_as.is_some() {
        return Err(AppError::AlreadyExists {
            reason: Reason::SubjectAlreadyEnrolled.into(),
            message: format!("screening {screening_id} is already enrolled"),
        });
    }
    let evaluation = eligibility::evaluate(&command.trial.protocol, &command.values);
    let results: Vec<convert::StoredResult> = evaluation.results.iter().map(convert::StoredResult::from).collect();
    let record = screening::Model {
        id: Uuid::new_v4().to_string(),
        trial_id: trial_id.to_owned(),
        screening_id: screening_id.to_owned(),
        attempt: prior.last_attempt.map_or(1, |last| last + 1),
        site_code: command.site.to_string(),
        assessed_on: command.assessed_on,
        eligible: evaluation.eligible(),
        results_json: serde_json::to_string(&results).map_err(AppError::internal)?,
        values_json: convert::values_json(&command.values).to_string(),
        recorded_at: trialops_platform::clock::now_stored(),
        protocol_version: command.trial.protocol.trial.protocol_version.clone(),
    };
    screening::insert(tx, &record).await?;
    let entity_id = format!("{}/{}/{}", record.trial_id, record.screening_id, record.attempt);
    let change = Change::created("screening.recorded", "screening", &entity_id, audit::to_json(&record)?)
        .within(&record.trial_id, &record.site_code);
    audit::append(tx, &audit_ctx, change).await?;
    Ok(pb::ScreenSubjectResponse {
        screening: Some(convert::screening(&record)?),
    })
}
