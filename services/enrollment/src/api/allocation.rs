//! GetAllocationSummary: subjects randomized per stratum and arm. Counts only — never anything
//! from which the next assignment could be computed.

use tonic::Request;
use trialops_domain::strata::parse_stratum_key;
use trialops_platform::AppError;
use trialops_proto::enrollment::v1 as pb;

use super::EnrollmentApi;
use crate::store::allocation;

pub(super) async fn summary(
    api: &EnrollmentApi,
    request: Request<pb::GetAllocationSummaryRequest>,
) -> Result<pb::GetAllocationSummaryResponse, AppError> {
    let req = request.into_inner();
    if req.trial_id.is_empty() {
        return Err(AppError::invalid("trial_id", "required"));
    }
    api.trials.get(&req.trial_id)?;
    let rows = allocation::counts(&api.db, &req.trial_id).await?;
    let total_subjects = rows.iter().map(|(_, _, n)| n).sum();
    let counts = rows
        .into_iter()
        .map(|(stratum, arm_code, subjects)| pb::AllocationCount {
            stratum: parse_stratum_key(&stratum)
                .into_iter()
                .map(|(factor_id, value)| pb::StratumValue { factor_id, value })
                .collect(),
            arm_code,
            subjects,
        })
        .collect();
    Ok(pb::GetAllocationSummaryResponse { counts, total_subjects })
}
