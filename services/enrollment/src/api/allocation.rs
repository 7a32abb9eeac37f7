//! GetAllocationSummary: subjects randomized per stratum and arm, and accrual against the
//! protocol's targets and maxima with the closures in force. Counts only — never anything from
//! which the next assignment could be computed.

use std::collections::BTreeMap;

use tonic::Request;
use trialops_domain::strata::parse_stratum_key;
use trialops_platform::AppError;
use trialops_proto::enrollment::v1 as pb;

use super::EnrollmentApi;
use super::accrual::accrual;
use crate::store::{accrual_closure, allocation, site, subject};

/// Most sites a summary lists (a trial has tens).
const MAX_SITES: u64 = 10_000;

pub(super) async fn summary(
    api: &EnrollmentApi,
    request: Request<pb::GetAllocationSummaryRequest>,
) -> Result<pb::GetAllocationSummaryResponse, AppError> {
    let req = request.into_inner();
    if req.trial_id.is_empty() {
        return Err(AppError::invalid("trial_id", "required"));
    }
    let trial = api.trials.get(&req.trial_id)?;
    let rules = &trial.protocol.accrual;
    let rows = allocation::counts(&api.db, &req.trial_id).await?;
    let total_subjects = rows.iter().map(|(_, _, n)| n).sum();
    let stratum_values = |stratum: &str| {
        parse_stratum_key(stratum)
            .into_iter()
            .map(|(factor_id, value)| pb::StratumValue { factor_id, value })
            .collect()
    };
    let mut per_stratum: BTreeMap<String, i64> = BTreeMap::new();
    for (stratum, _, subjects) in &rows {
        *per_stratum.entry(stratum.clone()).or_default() += subjects;
    }
    let count = |n: i64| u64::try_from(n).unwrap_or(0);
    let stratum_accrual = per_stratum
        .into_iter()
        .map(|(stratum, n)| pb::StratumAccrual {
            stratum: stratum_values(&stratum),
            accrual: Some(accrual(count(n), rules.stratum_target, rules.stratum_maximum, None)),
        })
        .collect();
    let closures = accrual_closure::of_trial(&api.db, &req.trial_id).await?;
    let closure = |site_code: &str| closures.iter().find(|c| c.site_code == site_code);
    let per_site: BTreeMap<String, i64> = subject::counts_by_site(&api.db, &req.trial_id)
        .await?
        .into_iter()
        .collect();
    let site_accrual = site::list(&api.db, None, MAX_SITES)
        .await?
        .into_iter()
        .map(|s| {
            let enrolled = count(per_site.get(&s.site_code).copied().unwrap_or(0));
            let accrual = accrual(enrolled, rules.site_target, rules.site_maximum, closure(&s.site_code));
            pb::SiteAccrual {
                site_code: s.site_code,
                accrual: Some(accrual),
            }
        })
        .collect();
    let counts = rows
        .into_iter()
        .map(|(stratum, arm_code, subjects)| pb::AllocationCount {
            stratum: stratum_values(&stratum),
            arm_code,
            subjects,
        })
        .collect();
    Ok(pb::GetAllocationSummaryResponse {
        counts,
        total_subjects,
        trial_accrual: Some(accrual(count(total_subjects), rules.target, rules.maximum, closure(""))),
        site_accrual,
        stratum_accrual,
    })
}
