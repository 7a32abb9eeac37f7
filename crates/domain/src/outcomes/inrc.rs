//! Revised International Neuroblastoma Response Criteria (Park et al., JCO 2017;35:2580):
//! the response of each component — primary tumour, soft-tissue and bone metastases, bone
//! marrow — from its measurements, and the overall response from the components.
//!
//! Interpretations where the summary table is silent, following the paper's text:
//! - Marrow minimal disease (MD) ranks with PR when combining: CR elsewhere + MD marrow is an
//!   overall PR, and MD with an SD component is MR.
//! - A relative MIBG score above 0 but below 0.1 is a PR (improved beyond the PR band without
//!   resolving); 0 with no other residual disease is part of CR.
//! - PD criteria are checked first, then CR, then PR (MD for marrow), else SD.

use rust_decimal::Decimal;

/// A component or overall response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Response {
    /// Complete response.
    Cr,
    /// Partial response.
    Pr,
    /// Minor response (overall only).
    Mr,
    /// Minimal disease (bone marrow only).
    Md,
    /// Stable disease.
    Sd,
    /// Progressive disease.
    Pd,
    /// Not involved at baseline.
    NotInvolved,
}

impl Response {
    /// Rank for "best response": lower is better (CR < PR < MR < SD < PD); NotInvolved and MD are
    /// component-only.
    pub fn rank(self) -> u8 {
        match self {
            Response::Cr => 0,
            Response::Pr => 1,
            Response::Mr => 2,
            Response::Md => 2,
            Response::Sd => 3,
            Response::Pd => 4,
            Response::NotInvolved => 5,
        }
    }

    /// Objective response (CR or PR): the primary endpoint's "responder".
    pub fn is_objective(self) -> bool {
        matches!(self, Response::Cr | Response::Pr)
    }

    /// The stored name, for example "cr".
    pub fn as_str(self) -> &'static str {
        match self {
            Response::Cr => "cr",
            Response::Pr => "pr",
            Response::Mr => "mr",
            Response::Md => "md",
            Response::Sd => "sd",
            Response::Pd => "pd",
            Response::NotInvolved => "not_involved",
        }
    }

    /// The response with this stored name.
    pub fn parse(name: &str) -> Option<Response> {
        [
            Response::Cr,
            Response::Pr,
            Response::Mr,
            Response::Md,
            Response::Sd,
            Response::Pd,
            Response::NotInvolved,
        ]
        .into_iter()
        .find(|r| r.as_str() == name)
    }
}

fn pct(part: Decimal, whole: Decimal) -> Option<Decimal> {
    if whole.is_zero() {
        None
    } else {
        Some(part / whole * Decimal::ONE_HUNDRED)
    }
}

/// Primary tumour now, and its history (from earlier assessments of the subject).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Primary {
    /// Longest diameter now, mm.
    pub longest_mm: Decimal,
    /// MIBG/FDG uptake at the primary persists.
    pub avid: bool,
    /// Longest diameter at baseline, mm.
    pub baseline_mm: Decimal,
    /// Smallest longest diameter so far (including baseline), mm.
    pub nadir_mm: Decimal,
}

/// Primary tumour response. PD: > 20% increase over the nadir and ≥ 5 mm. CR: < 10 mm and
/// uptake resolved. PR: ≥ 30% decrease from baseline. Else SD.
pub fn primary(p: &Primary) -> Response {
    let growth = p.longest_mm - p.nadir_mm;
    if pct(growth, p.nadir_mm).is_some_and(|g| g > Decimal::from(20)) && growth >= Decimal::from(5) {
        return Response::Pd;
    }
    if p.longest_mm < Decimal::from(10) && !p.avid {
        return Response::Cr;
    }
    if pct(p.baseline_mm - p.longest_mm, p.baseline_mm).is_some_and(|d| d >= Decimal::from(30)) {
        return Response::Pr;
    }
    Response::Sd
}

/// Soft-tissue and bone metastases now, and their history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Metastases {
    /// Sum of diameters of non-primary target lesions now, mm.
    pub sum_mm: Decimal,
    /// Every non-primary target is < 10 mm (lymph nodes < 10 mm short axis).
    pub all_targets_under_10_mm: bool,
    /// Curie MIBG score now: all 10 segments (9 skeletal + 1 soft tissue), 0–30. Zero means the
    /// metastases' MIBG uptake has resolved (a condition of CR).
    pub curie_score: u32,
    /// The 9 skeletal segments of the Curie score now, 0–27: the bone score.
    pub skeletal_score: u32,
    /// A new MIBG- or FDG-avid lesion appeared.
    pub new_lesions: bool,
    /// Sum of diameters at baseline, mm.
    pub baseline_sum_mm: Decimal,
    /// Smallest sum so far, mm.
    pub nadir_sum_mm: Decimal,
    /// The skeletal Curie score at baseline.
    pub baseline_skeletal_score: u32,
    /// FDG-avid metastatic lesions now, when FDG-PET was done.
    pub fdg_avid_lesions: Option<u32>,
    /// FDG-avid metastatic lesions at baseline, when FDG-PET was done.
    pub baseline_fdg_avid_lesions: Option<u32>,
    /// The protocol lets >= 50% fewer FDG-avid lesions show metastatic PR.
    pub fdg_route: bool,
}

impl Metastases {
    /// The relative MIBG bone score (revised INRC, Park et al., JCO 2017): the 9 skeletal
    /// segments now ÷ at baseline. The soft-tissue segment is not part of it: soft-tissue disease
    /// is judged by its diameters. `None` when there was no bone uptake at baseline.
    pub fn relative_mibg(&self) -> Option<Decimal> {
        (self.baseline_skeletal_score > 0)
            .then(|| Decimal::from(self.skeletal_score) / Decimal::from(self.baseline_skeletal_score))
    }

    /// Whether the FDG-avid lesions fell by at least half: `None` when the protocol does not use
    /// them or there were none (or no FDG-PET) at baseline or now.
    pub fn fdg_halved(&self) -> Option<bool> {
        let (now, baseline) = (self.fdg_avid_lesions?, self.baseline_fdg_avid_lesions?);
        (self.fdg_route && baseline > 0).then_some(2 * now <= baseline)
    }
}

/// Metastases response. PD: a new avid lesion; > 20% and ≥ 5 mm increase in the sum over its
/// nadir; or relative MIBG bone score ≥ 1.2. CR: all targets < 10 mm and MIBG resolved. PR:
/// ≥ 30% decrease in the sum and relative MIBG bone score ≤ 0.5 (when there was bone uptake at
/// baseline) or, where the protocol allows, ≥ 50% fewer FDG-avid lesions. Else SD.
pub fn metastases(m: &Metastases) -> Response {
    let growth = m.sum_mm - m.nadir_sum_mm;
    let relative = m.relative_mibg();
    let sum_progressed =
        pct(growth, m.nadir_sum_mm).is_some_and(|g| g > Decimal::from(20)) && growth >= Decimal::from(5);
    if m.new_lesions || sum_progressed || relative.is_some_and(|r| r >= Decimal::new(12, 1)) {
        return Response::Pd;
    }
    if m.all_targets_under_10_mm && m.curie_score == 0 {
        return Response::Cr;
    }
    let sum_ok = if m.baseline_sum_mm.is_zero() {
        true // MIBG-only disease: the sum does not apply
    } else {
        pct(m.baseline_sum_mm - m.sum_mm, m.baseline_sum_mm).is_some_and(|d| d >= Decimal::from(30))
    };
    // Uptake must have fallen too: the bone score to 0.5 or less, or (where the protocol allows)
    // the FDG-avid lesions by half. With neither measure at baseline the sum decides alone.
    let fdg = m.fdg_halved();
    let uptake_ok = match (relative, fdg) {
        (None, None) => true,
        (Some(r), fdg) => r <= Decimal::new(5, 1) || fdg == Some(true),
        (None, Some(halved)) => halved,
    };
    let measurable = !m.baseline_sum_mm.is_zero() || relative.is_some() || fdg.is_some();
    if sum_ok && uptake_ok && measurable {
        return Response::Pr;
    }
    Response::Sd
}

/// Bone marrow now and its history (percent tumour infiltration).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Marrow {
    /// Tumour now, %.
    pub percent: Decimal,
    /// Tumour at baseline, %.
    pub baseline_percent: Decimal,
    /// Lowest tumour so far, %.
    pub nadir_percent: Decimal,
}

/// Bone marrow response. PD: 0 → > 5% (from a tumour-free nadir), or > 2-fold increase over the
/// nadir to > 20%. Not involved: 0% at baseline and now. CR: no tumour. MD: 0 < tumour ≤ 5%.
/// SD: remains > 5%.
pub fn marrow(m: &Marrow) -> Response {
    let five = Decimal::from(5);
    if (m.nadir_percent.is_zero() && m.percent > five)
        || (m.percent > Decimal::TWO * m.nadir_percent && m.percent > Decimal::from(20))
    {
        return Response::Pd;
    }
    if m.percent.is_zero() {
        return if m.baseline_percent.is_zero() {
            Response::NotInvolved
        } else {
            Response::Cr
        };
    }
    if m.percent <= five {
        return Response::Md;
    }
    Response::Sd
}

/// The overall response from the three components (revised INRC): PD if any component is PD;
/// CR if all are CR or not involved; PR if at least one is PR (or marrow MD) and the others are
/// CR, PR, MD or not involved; MR if at least one is CR, PR or MD and at least one is SD; else SD.
pub fn overall(components: &[Response]) -> Response {
    let any = |f: fn(&Response) -> bool| components.iter().any(f);
    if any(|r| *r == Response::Pd) {
        return Response::Pd;
    }
    let involved: Vec<_> = components.iter().filter(|r| **r != Response::NotInvolved).collect();
    if !involved.is_empty() && involved.iter().all(|r| **r == Response::Cr) {
        return Response::Cr;
    }
    let better = |r: &Response| matches!(r, Response::Cr | Response::Pr | Response::Md);
    let has_sd = any(|r| *r == Response::Sd);
    if any(|r| matches!(r, Response::Pr | Response::Md)) && !has_sd {
        return Response::Pr;
    }
    if any(better) && has_sd {
        return Response::Mr;
    }
    Response::Sd
}

/// The best of several overall responses (CR best, then PR, MR, SD, PD).
pub fn best(responses: impl IntoIterator<Item = Response>) -> Option<Response> {
    responses
        .into_iter()
        .filter(|r| *r != Response::NotInvolved)
        .min_by_key(|r| r.rank())
}
