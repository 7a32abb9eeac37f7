//! GetResponseRate, ComputeSimonDesign, EvaluateSimonInterim and GetSurvivalAnalysis.
//!
//! Each analysis reads its inputs once: the trial's subjects from enrollment and exposures from
//! dosing (page by page), and two queries here (assessments, follow-ups).

use rust_decimal::prelude::ToPrimitive;
use tonic::Request;
use trialops_domain::outcomes::inrc::Response;
use trialops_domain::outcomes::simon::{self, Interim};
use trialops_domain::outcomes::survival::{Curve, kaplan_meier, log_rank};
use trialops_platform::identity::auth::CallContext;
use trialops_platform::wire::fields::{AllFields, violation};
use trialops_platform::{AppError, wire::convert as wire};
use trialops_proto::outcomes::v1 as pb;

use super::trial_data::{level, load, rate};
use super::{OutcomesApi, convert};
use crate::analysis::{self, Endpoint};
use crate::error::Reason;

pub(super) async fn response_rate(
    api: &OutcomesApi,
    request: Request<pb::GetResponseRateRequest>,
) -> Result<pb::GetResponseRateResponse, AppError> {
    let call = CallContext::of(&request)?;
    let req = request.into_inner();
    let level = level(req.confidence_level.as_ref())?;
    let data = load(api, &call, &req.trial_id).await?;
    let arms = analysis::response_table(&data)
        .into_iter()
        .map(|t| rate(&t.arm_code, t.responders, t.evaluable, level))
        .collect::<Result<_, _>>()?;
    Ok(pb::GetResponseRateResponse { arms })
}

fn design(d: &simon::Design) -> pb::SimonDesign {
    pb::SimonDesign {
        n1: d.n1 as i32,
        r1: d.r1 as i32,
        n: d.n as i32,
        r: d.r as i32,
        expected_n: convert::stat(d.expected_n),
        pet: convert::stat(d.pet),
    }
}

pub(super) async fn simon_design(
    _api: &OutcomesApi,
    request: Request<pb::ComputeSimonDesignRequest>,
) -> Result<pb::ComputeSimonDesignResponse, AppError> {
    let req = request.into_inner();
    let read = |field: &str, d: Option<&trialops_proto::common::v1::Decimal>| {
        let x = wire::decimal(field, d)?;
        x.to_f64().ok_or_else(|| violation(field, "out of range"))
    };
    let (p0, p1, alpha, beta) = (
        read("p0", req.p0.as_ref()),
        read("p1", req.p1.as_ref()),
        read("alpha", req.alpha.as_ref()),
        read("beta", req.beta.as_ref()),
    )
        .all()?;
    let unit = |x: f64| x > 0.0 && x < 1.0;
    if !(unit(p0) && unit(p1) && p0 < p1) {
        return Err(AppError::invalid("p1", "need 0 < p0 < p1 < 1"));
    }
    if !(unit(alpha) && unit(beta)) {
        return Err(AppError::invalid("alpha", "alpha and beta must be between 0 and 1"));
    }
    let (optimal, minimax) = simon::designs(p0, p1, alpha, beta, 100)
        .map_err(|e| AppError::precondition(Reason::NoAdmissibleDesign, e.to_string()))?;
    Ok(pb::ComputeSimonDesignResponse {
        optimal: Some(design(&optimal)),
        minimax: Some(design(&minimax)),
    })
}

pub(super) async fn simon_interim(
    api: &OutcomesApi,
    request: Request<pb::EvaluateSimonInterimRequest>,
) -> Result<pb::EvaluateSimonInterimResponse, AppError> {
    let call = CallContext::of(&request)?;
    let req = request.into_inner();
    // The design of the definition loaded: an amendment cannot change it once enrollment began.
    let protocol = api.protocol(&req.trial_id)?;
    let Some(configured) = protocol.outcomes.simon.clone() else {
        return Err(AppError::precondition(
            Reason::NoSimonDesign,
            format!("the {} protocol configures no Simon design", req.trial_id),
        ));
    };
    let d = simon::Design {
        n1: configured.n1,
        r1: configured.r1,
        n: configured.n,
        r: configured.r,
        expected_n: f64::NAN,
        pet: f64::NAN,
        alpha: configured.alpha.to_f64().unwrap_or(f64::NAN),
        power: 1.0 - configured.beta.to_f64().unwrap_or(f64::NAN),
    };
    let data = load(api, &call, &req.trial_id).await?;
    let arms = analysis::primary_endpoint(&data)
        .into_iter()
        .map(|(arm_code, subjects)| {
            // Stage 1 is the first n1 evaluable subjects in enrollment order.
            let stage_one: Vec<_> = subjects.iter().take(configured.n1 as usize).collect();
            let assessed = |list: &mut dyn Iterator<Item = &(String, Option<Response>)>| {
                list.filter_map(|(_, r)| *r)
                    .fold((0u64, 0u64), |(n, x), r| (n + 1, x + u64::from(r.is_objective())))
            };
            let (s1_assessed, s1_responses) = assessed(&mut stage_one.iter().copied());
            let (all_assessed, all_responses) = assessed(&mut subjects.iter());
            let decision = match simon::evaluate(&d, s1_assessed, s1_responses, all_assessed, all_responses) {
                Interim::EnrollingStageOne => pb::InterimDecision::EnrollingStageOne,
                Interim::Stop => pb::InterimDecision::Stop,
                Interim::Continue => pb::InterimDecision::Continue,
                Interim::Promising => pb::InterimDecision::Promising,
                Interim::NotPromising => pb::InterimDecision::NotPromising,
            };
            pb::ArmInterim {
                arm_code,
                stage_one_assessed: s1_assessed as i32,
                stage_one_responses: s1_responses as i32,
                assessed: all_assessed as i32,
                responses: all_responses as i32,
                decision: decision as i32,
            }
        })
        .collect();
    let wire_design = pb::SimonDesign {
        n1: d.n1 as i32,
        r1: d.r1 as i32,
        n: d.n as i32,
        r: d.r as i32,
        expected_n: None,
        pet: None,
    };
    Ok(pb::EvaluateSimonInterimResponse {
        design: Some(wire_design),
        arms,
    })
}

/// The wire form of a curve.
pub(super) fn curve(arm_code: &str, c: &Curve) -> pb::SurvivalCurve {
    pb::SurvivalCurve {
        arm_code: arm_code.to_owned(),
        points: c
            .steps
            .iter()
            .map(|s| pb::SurvivalPoint {
                day: s.time as i32,
                at_risk: s.at_risk as i32,
                events: s.events as i32,
                survival: convert::stat(s.survival),
                standard_error: convert::stat(s.standard_error),
                ci_lower: convert::stat(s.lower),
                ci_upper: convert::stat(s.upper),
            })
            .collect(),
        median_days: c.median.and_then(convert::stat),
    }
}

pub(super) async fn survival(
    api: &OutcomesApi,
    request: Request<pb::GetSurvivalAnalysisRequest>,
) -> Result<pb::GetSurvivalAnalysisResponse, AppError> {
    let call = CallContext::of(&request)?;
    let req = request.into_inner();
    let endpoint = match pb::SurvivalEndpoint::try_from(req.endpoint) {
        Ok(pb::SurvivalEndpoint::Efs) => Endpoint::EventFree,
        Ok(pb::SurvivalEndpoint::Os) => Endpoint::Overall,
        _ => return Err(AppError::invalid("endpoint", "EFS or OS")),
    };
    let data = load(api, &call, &req.trial_id).await?;
    let groups = analysis::observations(&data, endpoint);
    let curves = groups
        .iter()
        .map(|(arm, obs)| curve(arm, &kaplan_meier(obs, 0.95)))
        .collect();
    let groups: Vec<_> = groups.into_values().collect();
    let (chi, p) = match groups.as_slice() {
        [a, b] => {
            let t = log_rank(a, b);
            (convert::stat(t.chi_square), convert::stat(t.p_value))
        }
        _ => (None, None),
    };
    Ok(pb::GetSurvivalAnalysisResponse {
        curves,
        log_rank_chi_square: chi,
        log_rank_p_value: p,
    })
}
