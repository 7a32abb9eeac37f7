//! ListTrials and GetTrial: each trial under the version of its protocol in force today.

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
    let today = trialops_platform::clock::now().date_naive();
    let ids: Vec<String> = api
        .trials
        .all()
        .map(|t| t.protocol.trial.id.clone())
        .filter(|id| page.after.as_deref().is_none_or(|after| id.as_str() > after))
        .take(page.size as usize + 1)
        .collect();
    let mut rows = Vec::with_capacity(ids.len());
    for id in ids {
        let found = api.trials.in_force(&api.db, &id, today).await?;
        rows.push(convert::trial_summary(&found.trial.protocol));
    }
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
    let today = trialops_platform::clock::now().date_naive();
    let found = api.trials.in_force(&api.db, &req.trial_id, today).await?;
    let trial = &found.trial;
    let (allocation_commitment, allocation_parameters) = super::commitment::published(trial);
    Ok(pb::GetTrialResponse {
        trial: Some(pb::Trial {
            allocation_commitment,
            allocation_parameters,
            versions: convert::protocol_versions(&found.versions, &trial.protocol.trial.protocol_version),
            ..convert::trial(&trial.protocol)
        }),
    })
}
