//! GetAllocationSummary: subjects randomized per stratum and arm, and accrual against the
//! protocol's targets and maxima with the closures in force. Counts only — never anything from
//! which the next assignment could be computed.

use std::collections::BTreeMap;

use tonic::Request;
use trialops_domain::simulation::{self, Distribution};
use trialops_domain::strata::parse_stratum_key;
use trialops_platform::AppError;
use trialops_platform::wire::fields::{self, AllFields};
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
    // Targets and limits of the protocol version in force today.
    let trial = api
        .trials
        .in_force(&api.db, &req.trial_id, super::parse::today())
        .await?
        .trial;
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

/// Most subjects per simulated run, and most allocations in all runs (a few seconds' work).
const MAX_SIMULATED_SUBJECTS: i32 = 10_000;
const MAX_SIMULATED_ALLOCATIONS: i64 = 2_000_000;

pub(super) async fn simulate(
    api: &EnrollmentApi,
    request: Request<pb::SimulateAllocationRequest>,
) -> Result<pb::SimulateAllocationResponse, AppError> {
    let req = request.into_inner();
    let subjects_ok = (1..=MAX_SIMULATED_SUBJECTS).contains(&req.subjects);
    let allocations = i64::from(req.subjects) * i64::from(req.runs);
    let (trial, (), ()) = (
        super::parse::trial_on(&api.trials, &api.db, &req.trial_id, Some(super::parse::today())).await?,
        fields::ensure(subjects_ok, "subjects", format!("1 to {MAX_SIMULATED_SUBJECTS}")),
        fields::ensure(
            req.runs >= 1 && allocations <= MAX_SIMULATED_ALLOCATIONS,
            "runs",
            format!("at least 1, and subjects × runs at most {MAX_SIMULATED_ALLOCATIONS}"),
        ),
    )
        .all()?;
    let protocol = trial.protocol.clone();
    let (subjects, runs) = (req.subjects.unsigned_abs(), req.runs.unsigned_abs());
    // CPU work: off the runtime's threads, so other calls keep being served.
    let oc = tokio::task::spawn_blocking(move || simulation::simulate(&protocol, subjects, runs, req.seed))
        .await
        .map_err(AppError::internal)?
        .map_err(|e| AppError::internal(anyhow::anyhow!("the protocol's allocation method: {e:?}")))?;
    let d = |d: &Distribution| pb::SimulatedDistribution {
        mean: d.mean,
        median: d.median,
        p95: d.p95,
        max: d.max,
    };
    Ok(pb::SimulateAllocationResponse {
        runs: req.runs,
        subjects: req.subjects,
        strata: i32::try_from(oc.strata).unwrap_or(i32::MAX),
        final_imbalance: Some(d(&oc.final_imbalance)),
        running_imbalance: Some(d(&oc.running_imbalance)),
        stratum_final_imbalance: Some(d(&oc.stratum_final_imbalance)),
        stratum_running_imbalance: Some(d(&oc.stratum_running_imbalance)),
        correct_guess_rate: oc.correct_guess_rate,
    })
}
