//! Response derivation shared by RecordResponseAssessment and ReenterCurieSegments: the
//! checked measurements of an assessment and its INRC component and overall responses against
//! the baseline and the earlier assessments.

use rust_decimal::Decimal;
use trialops_domain::outcomes::inrc::{self, Marrow, Metastases, Primary, Response};
use trialops_platform::wire::fields::{self, AllFields, Field, ensure, violation};
use trialops_platform::{AppError, Violation, Violations, wire::convert as wire};
use trialops_proto::outcomes::v1 as pb;

use crate::store::assessment;

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
    pub(super) primary_mm: Option<Decimal>,
    pub(super) primary_avid: bool,
    pub(super) mets_sum: Option<Decimal>,
    pub(super) mets_under_10: bool,
    pub(super) curie: u32,
    /// The 9 skeletal segments of `curie`: the bone score.
    pub(super) skeletal: u32,
    /// FDG-avid metastatic lesions, when reported.
    pub(super) fdg: Option<u32>,
    pub(super) new_lesions: bool,
    pub(super) marrow: Decimal,
}

impl TryFrom<&pb::RecordResponseAssessmentRequest> for Measures {
    type Error = Violations;

    /// The measurements of an assessment, or a violation naming each bad one.
    fn try_from(req: &pb::RecordResponseAssessmentRequest) -> Field<Measures> {
        let primary = req.primary_tumour.as_ref();
        let primary_mm = match primary {
            None => Err(violation(
                "primary_tumour",
                "required (set not_involved when there was no primary at baseline)",
            )),
            Some(p) if p.not_involved => Ok(None),
            Some(p) => millimetres("primary_tumour.longest_diameter_mm", p.longest_diameter_mm.as_ref()).map(Some),
        };
        let mets = req.metastases.as_ref();
        let metastases = match mets {
            None => Err(violation(
                "metastases",
                "required (set not_involved when there were none at baseline)",
            )
            .into()),
            Some(m) => metastases(m),
        };
        let marrow = match &req.bone_marrow {
            None => Err(violation("bone_marrow", "required")),
            Some(b) => wire::decimal_in(
                "bone_marrow.tumour_infiltration_percent",
                b.tumour_infiltration_percent.as_ref(),
                Decimal::ZERO,
                Decimal::ONE_HUNDRED,
                "%",
            ),
        };
        let (primary_mm, (mets_sum, curie, skeletal, fdg), marrow) = (primary_mm, metastases, marrow).collect()?;
        Ok(Measures {
            primary_mm,
            primary_avid: primary.is_some_and(|p| p.avid),
            mets_sum,
            mets_under_10: mets.is_some_and(|m| m.all_targets_under_10_mm),
            curie,
            skeletal,
            fdg,
            new_lesions: mets.is_some_and(|m| m.new_lesions),
            marrow,
        })
    }
}

/// A measured length, 0 to 1000 mm.
fn millimetres(field: &str, value: Option<&trialops_proto::common::v1::Decimal>) -> Result<Decimal, Violation> {
    wire::decimal_in(field, value, Decimal::ZERO, Decimal::from(1000), "mm")
}

/// The metastases' sum of diameters, Curie score (total and skeletal) and FDG-avid lesions.
fn metastases(m: &pb::Metastases) -> Field<(Option<Decimal>, u32, u32, Option<u32>)> {
    let sum = if m.not_involved && m.sum_of_diameters_mm.is_none() {
        Ok(None)
    } else {
        millimetres("metastases.sum_of_diameters_mm", m.sum_of_diameters_mm.as_ref()).map(Some)
    };
    let scores = &m.curie_segment_scores;
    let (sum, (), fdg) = (
        sum,
        ensure(
            scores.is_empty() || (scores.len() == 10 && scores.iter().all(|s| (0..=3).contains(s))),
            "metastases.curie_segment_scores",
            "10 Curie segment scores (9 skeletal + 1 soft tissue), each 0 to 3, or none",
        ),
        fields::optional(m.fdg_avid_lesions, |n| {
            ensure(
                (0..=1000).contains(&n),
                "metastases.fdg_avid_lesions",
                "0 to 1000 lesions",
            )?;
            Ok::<_, Violation>(n.unsigned_abs())
        }),
    )
        .collect()?;
    let score = |segments: &[i32]| segments.iter().map(|s| (*s).clamp(0, 3) as u32).sum::<u32>();
    Ok((sum, score(scores), score(&scores[..scores.len().min(9)]), fdg))
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
