//! RecordResponseAssessment and ListResponseAssessments.
//!
//! The baseline is the assessment with `after_cycle` 0 (one per subject and assessor). A later
//! assessment is compared with that assessor's baseline and the nadir of that assessor's
//! assessments on or before its date; the service derives every component's response and the
//! overall response by the revised INRC. An override keeps the derived value beside it.

use rust_decimal::Decimal;
use sea_orm::EntityTrait;
use tonic::Request;
use trialops_domain::outcomes::inrc::{self, Marrow, Metastases, Primary, Response};
use trialops_platform::audit::{self, AuditContext, Change};
use trialops_platform::auth::CallContext;
use trialops_platform::{AppError, Violations, convert as wire, idempotency, pagination};
use trialops_proto::outcomes::v1 as pb;
use uuid::Uuid;

use super::{OutcomesApi, convert};
use crate::error::Reason;
use crate::store::{assessment, rederivation};

/// A stored measurement. Empty text is a measurement the assessment did not have (no
/// measurable primary or metastases), which the nadir and baseline comparisons read as 0 mm, as
/// they always have; anything else must be a decimal, or the read fails loudly.
fn measured(column: &'static str, text: &str) -> Result<Decimal, AppError> {
    if text.is_empty() {
        return Ok(Decimal::ZERO);
    }
    wire::from_stored(column, text)
}

/// Checked measurements of one assessment.
pub(super) struct Measures {
    primary_mm: Option<Decimal>,
    primary_avid: bool,
    mets_sum: Option<Decimal>,
    mets_under_10: bool,
    curie: u32,
    /// The 9 skeletal segments of `curie`: the bone score.
    skeletal: u32,
    /// FDG-avid metastatic lesions, when reported.
    fdg: Option<u32>,
    new_lesions: bool,
    marrow: Decimal,
}

fn check_measures(req: &pb::RecordResponseAssessmentRequest, v: &mut Violations) -> Option<Measures> {
    let mm = |field: &str, d: Option<&trialops_proto::common::v1::Decimal>, v: &mut Violations| {
        v.take(wire::decimal_in(field, d, Decimal::ZERO, Decimal::from(1000), "mm"))
    };
    let primary = req.primary_tumour.clone();
    let primary_mm = match &primary {
        None => {
            v.add(
                "primary_tumour",
                "required (set not_involved when there was no primary at baseline)",
            );
            None
        }
        Some(p) if p.not_involved => None,
        Some(p) => Some(mm(
            "primary_tumour.longest_diameter_mm",
            p.longest_diameter_mm.as_ref(),
            v,
        )?),
    };
    let mets = req.metastases.clone();
    let (mets_sum, curie, skeletal) = match &mets {
        None => {
            v.add(
                "metastases",
                "required (set not_involved when there were none at baseline)",
            );
            (None, 0, 0)
        }
        Some(m) => {
            let sum = if m.not_involved && m.sum_of_diameters_mm.is_none() {
                None
            } else {
                Some(mm("metastases.sum_of_diameters_mm", m.sum_of_diameters_mm.as_ref(), v)?)
            };
            let scores = &m.curie_segment_scores;
            v.check(
                scores.is_empty() || (scores.len() == 10 && scores.iter().all(|s| (0..=3).contains(s))),
                "metastases.curie_segment_scores",
                "10 Curie segment scores (9 skeletal + 1 soft tissue), each 0 to 3, or none",
            );
            let score = |segments: &[i32]| segments.iter().map(|s| (*s).clamp(0, 3) as u32).sum::<u32>();
            (sum, score(scores), score(&scores[..scores.len().min(9)]))
        }
    };
    let fdg = mets.as_ref().and_then(|m| m.fdg_avid_lesions).and_then(|n| {
        v.check(
            (0..=1000).contains(&n),
            "metastases.fdg_avid_lesions",
            "0 to 1000 lesions",
        );
        u32::try_from(n).ok()
    });
    let marrow = match &req.bone_marrow {
        None => {
            v.add("bone_marrow", "required");
            None
        }
        Some(b) => v.take(wire::decimal_in(
            "bone_marrow.tumour_infiltration_percent",
            b.tumour_infiltration_percent.as_ref(),
            Decimal::ZERO,
            Decimal::ONE_HUNDRED,
            "%",
        )),
    };
    Some(Measures {
        primary_mm,
        primary_avid: primary.is_some_and(|p| p.avid),
        mets_sum,
        mets_under_10: mets.as_ref().is_some_and(|m| m.all_targets_under_10_mm),
        curie,
        skeletal,
        fdg,
        new_lesions: mets.as_ref().is_some_and(|m| m.new_lesions),
        marrow: marrow?,
    })
}

impl Measures {
    /// The measurements a stored assessment was derived from. One recorded before the skeletal
    /// score was kept has its total standing in for it.
    pub(super) fn of(a: &assessment::Model) -> Result<Measures, AppError> {
        let decimal = |column, text: &str| (!text.is_empty()).then(|| wire::from_stored(column, text)).transpose();
        Ok(Measures {
            primary_mm: decimal("assessments.primary_mm", &a.primary_mm)?,
            primary_avid: a.primary_avid,
            mets_sum: decimal("assessments.metastases_sum_mm", &a.metastases_sum_mm)?,
            mets_under_10: a.metastases_under_10_mm,
            curie: a.curie_score.max(0) as u32,
            skeletal: a.curie_skeletal_score.unwrap_or(a.curie_score).max(0) as u32,
            fdg: a.fdg_avid_lesions.and_then(|n| u32::try_from(n).ok()),
            new_lesions: a.new_lesions,
            marrow: wire::from_stored("assessments.marrow_percent", &a.marrow_percent)?,
        })
    }
}

/// Component and overall responses against the baseline and the earlier assessments.
pub(super) fn derive(
    m: &Measures,
    baseline: &assessment::Model,
    earlier: &[assessment::Model],
    fdg_route: bool,
) -> Result<[Response; 4], AppError> {
    let nadir = |column: &'static str, f: fn(&assessment::Model) -> &str| -> Result<Decimal, AppError> {
        let mut lowest = measured(column, f(baseline))?;
        for a in earlier {
            lowest = lowest.min(measured(column, f(a))?);
        }
        Ok(lowest)
    };
    let primary = match (baseline.primary_not_involved, m.primary_mm) {
        (true, _) | (_, None) => Response::NotInvolved,
        (false, Some(mm)) => inrc::primary(&Primary {
            longest_mm: mm,
            avid: m.primary_avid,
            baseline_mm: measured("assessments.primary_mm", &baseline.primary_mm)?,
            nadir_mm: nadir("assessments.primary_mm", |a| &a.primary_mm)?,
        }),
    };
    let metastases = if baseline.metastases_not_involved {
        if m.new_lesions {
            Response::Pd
        } else {
            Response::NotInvolved
        }
    } else {
        inrc::metastases(&Metastases {
            sum_mm: m.mets_sum.unwrap_or(Decimal::ZERO),
            all_targets_under_10_mm: m.mets_under_10,
            curie_score: m.curie,
            skeletal_score: m.skeletal,
            new_lesions: m.new_lesions,
            baseline_sum_mm: measured("assessments.metastases_sum_mm", &baseline.metastases_sum_mm)?,
            nadir_sum_mm: nadir("assessments.metastases_sum_mm", |a| &a.metastases_sum_mm)?,
            // A baseline recorded before the bone score was stored has only its total: with no
            // uptake that is 0 either way; otherwise the total stands in (see README, "Known
            // limits").
            baseline_skeletal_score: baseline.curie_skeletal_score.unwrap_or(baseline.curie_score).max(0) as u32,
            fdg_avid_lesions: m.fdg,
            baseline_fdg_avid_lesions: baseline.fdg_avid_lesions.and_then(|n| u32::try_from(n).ok()),
            fdg_route,
        })
    };
    let marrow = inrc::marrow(&Marrow {
        percent: m.marrow,
        baseline_percent: wire::from_stored("assessments.marrow_percent", &baseline.marrow_percent)?,
        nadir_percent: nadir("assessments.marrow_percent", |a| &a.marrow_percent)?,
    });
    Ok([
        primary,
        metastases,
        marrow,
        inrc::overall(&[primary, metastases, marrow]),
    ])
}

pub(super) async fn record(
    api: &OutcomesApi,
    request: Request<pb::RecordResponseAssessmentRequest>,
) -> Result<pb::RecordResponseAssessmentResponse, AppError> {
    let call = CallContext::of(&request)?;
    let req = request.into_inner();
    let mut v = Violations::new();
    let request_id = v.take(wire::request_id("request_id", &req.request_id));
    v.check(!req.subject_id.is_empty(), "subject_id", "required");
    let assessed_on = v.take(wire::date("assessed_on", req.assessed_on.as_ref()));
    if let Some(date) = assessed_on {
        // Site-local dates may be one day ahead of UTC.
        let latest = trialops_platform::clock::now().date_naive() + chrono::Days::new(1);
        v.check(date <= latest, "assessed_on", "must not be in the future");
    }
    v.check(
        req.after_cycle >= 0,
        "after_cycle",
        "0 for the baseline, else the cycle the assessment follows",
    );
    let assessor = match pb::Assessor::try_from(req.assessor) {
        Ok(pb::Assessor::Site) => Some("site"),
        Ok(pb::Assessor::CentralReview) => Some("central_review"),
        _ => {
            v.add("assessor", "SITE or CENTRAL_REVIEW");
            None
        }
    };
    v.check(
        req.criteria == pb::ResponseCriteria::Inrc2017 as i32,
        "criteria",
        "INRC_2017",
    );
    let measures = check_measures(&req, &mut v);
    let override_to = if req.override_overall_response == pb::Response::Unspecified as i32 {
        None
    } else {
        let to = convert::overall_from(req.override_overall_response);
        v.check(to.is_some(), "override_overall_response", "one of CR, PR, MR, SD, PD");
        v.check(
            !req.override_reason.trim().is_empty(),
            "override_reason",
            "required with an override",
        );
        to
    };
    let (Some(request_id), Some(assessed_on), Some(assessor), Some(measures)) =
        (request_id, assessed_on, assessor, measures)
    else {
        return Err(v.into_error());
    };
    v.finish()?;
    let subject = api.deps.subject(&call, &req.subject_id).await?;
    let fdg_route = api.protocol(&subject.trial_id)?.outcomes.fdg_avid_lesion_route;
    if measures.fdg.is_some() && !fdg_route {
        return Err(AppError::invalid(
            "metastases.fdg_avid_lesions",
            format!(
                "the {} protocol does not judge metastases by FDG-avid lesions",
                subject.trial_id
            ),
        ));
    }
    let audit_ctx = AuditContext::new(call, request_id);
    idempotency::execute(
        &api.db,
        "OutcomesService/RecordResponseAssessment",
        request_id,
        &req.clone(),
        move |tx| {
            Box::pin(async move {
                let history: Vec<_> = rederivation::subject_assessments(tx, &req.subject_id)
                    .await?
                    .into_iter()
                    .filter(|a| a.assessor == assessor)
                    .collect();
                let baseline = history.iter().find(|a| a.after_cycle == 0).cloned();
                let responses: [Option<Response>; 4] = if req.after_cycle == 0 {
                    if baseline.is_some() {
                        return Err(AppError::precondition(
                            Reason::BaselineExists,
                            format!("the {assessor} baseline of {} is recorded", req.subject_id),
                        ));
                    }
                    [None; 4]
                } else {
                    let Some(baseline) = baseline else {
                        return Err(AppError::precondition(
                            Reason::NoBaselineAssessment,
                            format!(
                                "record the {assessor} baseline (after_cycle 0) of {} first",
                                req.subject_id
                            ),
                        ));
                    };
                    let earlier: Vec<_> = history
                        .iter()
                        .filter(|a| a.after_cycle > 0 && a.assessed_on <= assessed_on)
                        .cloned()
                        .collect();
                    derive(&measures, &baseline, &earlier, fdg_route)?.map(Some)
                };
                let name = |r: Option<Response>| r.map_or("baseline", Response::as_str).to_owned();
                let derived = responses[3];
                let record = assessment::Model {
                    assessment_id: Uuid::new_v4().to_string(),
                    subject_id: req.subject_id.clone(),
                    trial_id: subject.trial_id.clone(),
                    // Empty when a central reviewer (blinded to allocation) records it; the
                    // analyses take each subject's arm from enrollment.
                    arm_code: subject.arm_code.clone(),
                    assessed_on,
                    after_cycle: req.after_cycle,
                    assessor: assessor.to_owned(),
                    criteria: "inrc_2017".into(),
                    primary_mm: measures.primary_mm.map(wire::to_stored).unwrap_or_default(),
                    primary_avid: measures.primary_avid,
                    metastases_sum_mm: measures.mets_sum.map(wire::to_stored).unwrap_or_default(),
                    metastases_under_10_mm: measures.mets_under_10,
                    curie_score: measures.curie as i32,
                    curie_skeletal_score: Some(measures.skeletal as i32),
                    fdg_avid_lesions: measures.fdg.map(|n| n as i32),
                    new_lesions: measures.new_lesions,
                    metastases_not_involved: req.metastases.as_ref().is_some_and(|m| m.not_involved),
                    marrow_percent: wire::to_stored(measures.marrow),
                    primary_not_involved: req.primary_tumour.as_ref().is_some_and(|p| p.not_involved),
                    primary_response: name(responses[0]),
                    metastases_response: name(responses[1]),
                    marrow_response: name(responses[2]),
                    derived_overall: name(derived),
                    overall: name(override_to.or(derived)),
                    override_reason: if override_to.is_some() {
                        req.override_reason.trim().to_owned()
                    } else {
                        String::new()
                    },
                    recorded_at: trialops_platform::clock::now(),
                };
                assessment::Entity::insert(assessment::ActiveModel::from(record.clone()))
                    .exec_without_returning(tx)
                    .await?;
                audit::append(
                    tx,
                    &audit_ctx,
                    Change {
                        action: if override_to.is_some() {
                            "assessment.recorded_with_override"
                        } else {
                            "assessment.recorded"
                        },
                        entity_type: "assessment",
                        entity_id: &record.assessment_id,
                        old: None,
                        new: audit::to_json(&record)?,
                        reason: &record.override_reason,
                    },
                )
                .await?;
                Ok(pb::RecordResponseAssessmentResponse {
                    assessment: Some(convert::assessment(&record)),
                })
            })
        },
    )
    .await
}

pub(super) async fn list(
    api: &OutcomesApi,
    request: Request<pb::ListResponseAssessmentsRequest>,
) -> Result<pb::ListResponseAssessmentsResponse, AppError> {
    let call = CallContext::of(&request)?;
    let req = request.into_inner();
    if req.subject_id.is_empty() {
        return Err(AppError::invalid("subject_id", "required"));
    }
    // A site-bound caller sees only their site's subjects: enrollment (with their token) decides.
    if call.site_scope.is_some() {
        api.deps.subject(&call, &req.subject_id).await.map_err(|e| match e {
            AppError::FailedPrecondition { .. } => AppError::NotFound {
                what: "subject",
                id: req.subject_id.clone(),
            },
            other => other,
        })?;
    }
    let scope = format!("assessments|{}", req.subject_id);
    let page = pagination::page(req.page_size, &req.page_token, &scope)?;
    // A subject has a handful of assessments: read them all (best responses need them anyway).
    let all = rederivation::subject_assessments(&api.db, &req.subject_id).await?;
    let best = |central: bool| {
        inrc::best(
            all.iter()
                .filter(|a| a.after_cycle > 0 && (a.assessor == "central_review") == central)
                .filter_map(|a| Response::parse(&a.overall)),
        )
        .map_or(pb::Response::Unspecified, convert::response) as i32
    };
    let key = |a: &assessment::Model| format!("{}|{}", a.assessed_on, a.assessment_id);
    let rows: Vec<_> = all
        .iter()
        .filter(|a| page.after.as_ref().is_none_or(|after| key(a) > *after))
        .take(page.size as usize + 1)
        .cloned()
        .collect();
    let (rows, next_page_token) = pagination::split(rows, &page, &scope, key);
    Ok(pb::ListResponseAssessmentsResponse {
        assessments: rows.iter().map(convert::assessment).collect(),
        next_page_token,
        best_site_response: best(false),
        best_central_response: best(true),
    })
}
