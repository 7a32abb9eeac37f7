//! ListTrials and GetTrial: the loaded protocol definitions.

use tonic::Request;
use trialops_platform::{AppError, wire::pagination};
use trialops_proto::enrollment::v1 as pb;

use super::{EnrollmentApi, convert};

pub(super) async fn list(
    api: &EnrollmentApi,
    request: Request<pb::ListTrialsRequest>,
) -> Result<pb::ListTrialsResponse, AppError> {
    let req = request.into_inner();
    let scope = "trials";
    let page = pagination::page(req.page_size, &req.page_token, scope)?;
    let rows: Vec<_> = api
        .trials
        .all()
        .filter(|t| {
            page.after
                .as_deref()
                .is_none_or(|after| t.protocol.trial.id.as_str() > after)
        })
        .take(page.size as usize + 1)
        .map(|t| convert::trial_summary(&t.protocol))
        .collect();
    let (trials, next_page_token) = pagination::split(rows, &page, scope, |t| t.trial_id.clone());
    Ok(pb::ListTrialsResponse {
        trials,
        next_page_token,
    })
}

pub(super) async fn get(
    api: &EnrollmentApi,
    request: Request<pb::GetTrialRequest>,
) -> Result<pb::GetTrialResponse, AppError> {
    let req = request.into_inner();
    if req.trial_id.is_empty() {
        return Err(AppError::invalid("trial_id", "required"));
    }
    let trial = api.trials.get(&req.trial_id)?;
    let (allocation_commitment, allocation_parameters) = super::commitment::published(&trial);
    Ok(pb::GetTrialResponse {
        trial: Some(pb::Trial {
            allocation_commitment,
            allocation_parameters,
            ..convert::trial(&trial.protocol)
        }),
    })
}
