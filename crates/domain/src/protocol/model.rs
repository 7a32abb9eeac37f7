//! The protocol definition: the data model of a trial's protocol as a trial team writes it.
//!
//! Every protocol-specific value (arms, strata, eligibility thresholds, regimens, cycle rules,
//! assessment schedule) lives in a definition file, never in code. [`super::load`] parses and
//! validates one.

use rust_decimal::Decimal;
use serde::Deserialize;

use super::exact;

/// A whole protocol definition.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Protocol {
    /// Identity of the trial.
    pub trial: TrialInfo,
    /// Consent rules.
    pub consent: ConsentRules,
    /// Screening rules.
    pub screening: ScreeningRules,
    /// Randomization scheme.
    pub randomization: RandomizationRules,
    /// Treatment arms, in the order the protocol lists them.
    pub arms: Vec<Arm>,
    /// Stratification factors, in the order that forms a stratum key.
    #[serde(default)]
    pub strata: Vec<StratificationFactor>,
    /// Variables a screening supplies.
    pub variables: Vec<ScreeningVariable>,
    /// Eligibility criteria; all must be met.
    pub eligibility: Vec<Criterion>,
    /// Cycle rules.
    pub treatment: TreatmentRules,
    /// Response assessment schedule.
    pub assessments: AssessmentSchedule,
    /// One regimen per arm.
    pub regimens: Vec<Regimen>,
    /// Outcomes: criteria, expected events, the configured two-stage design.
    pub outcomes: OutcomeRules,
    /// The expedited-reporting matrix, in order.
    #[serde(default)]
    pub reporting: Vec<ReportingRule>,
    /// Accrual targets and limits (none by default).
    #[serde(default)]
    pub accrual: AccrualRules,
}

/// Accrual targets and limits of a trial, per site and per stratum. A target is what the
/// protocol plans (shown against the count); a maximum refuses enrollment beyond it.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AccrualRules {
    /// Planned enrollments in the trial.
    pub target: Option<u32>,
    /// Most enrollments in the trial.
    pub maximum: Option<u32>,
    /// Planned enrollments at each site.
    pub site_target: Option<u32>,
    /// Most enrollments at any one site.
    pub site_maximum: Option<u32>,
    /// Planned enrollments in each stratum.
    pub stratum_target: Option<u32>,
    /// Most enrollments in any one stratum.
    pub stratum_maximum: Option<u32>,
}

/// Outcome rules.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct OutcomeRules {
    /// Response criteria, only "inrc_2017" is supported.
    pub response_criteria: String,
    /// CTCAE version, for example "5.0".
    pub ctcae_version: String,
    /// CTCAE terms expected with this protocol's therapy.
    #[serde(default)]
    pub expected_adverse_events: Vec<String>,
    /// The configured Simon two-stage design, if any.
    #[serde(default)]
    pub simon: Option<SimonDesign>,
    /// When the adverse-event reporting period starts; an event with an earlier onset is a
    /// baseline condition, not an adverse event of the trial.
    pub adverse_event_reporting_starts: ReportingStart,
    /// Whether metastatic PR may be shown by >= 50% fewer FDG-avid lesions (revised INRC's route
    /// for disease that is not MIBG-avid, or beside the MIBG bone score).
    pub fdg_avid_lesion_route: bool,
    /// Whether the per-protocol population leaves out the subjects randomized in error (they
    /// always stay in the intention-to-treat population). Default: it does.
    #[serde(default = "leave_out")]
    pub per_protocol_excludes_randomized_in_error: bool,
}

fn leave_out() -> bool {
    true
}

/// The start of the adverse-event reporting period.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ReportingStart {
    /// The day the subject was enrolled.
    Enrollment,
    /// Day 1 of the first cycle of protocol therapy.
    TreatmentStart,
}

/// A configured Simon two-stage design.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SimonDesign {
    /// Uninteresting response rate.
    #[serde(deserialize_with = "exact::deserialize")]
    pub p0: Decimal,
    /// Interesting response rate.
    #[serde(deserialize_with = "exact::deserialize")]
    pub p1: Decimal,
    /// Type I error.
    #[serde(deserialize_with = "exact::deserialize")]
    pub alpha: Decimal,
    /// Type II error.
    #[serde(deserialize_with = "exact::deserialize")]
    pub beta: Decimal,
    /// Stage-1 size.
    pub n1: u64,
    /// Stop with this many responses or fewer after stage 1.
    pub r1: u64,
    /// Total size.
    pub n: u64,
    /// Promising with more than this many responses.
    pub r: u64,
}

/// Seriousness criteria (21 CFR 312.32).
#[derive(Debug, Clone, Copy, Deserialize, serde::Serialize, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Seriousness {
    /// Death.
    Death,
    /// Life-threatening.
    LifeThreatening,
    /// Inpatient hospitalisation or its prolongation.
    Hospitalisation,
    /// Persistent or significant incapacity.
    Incapacity,
    /// Congenital anomaly.
    CongenitalAnomaly,
    /// Important medical event.
    ImportantMedicalEvent,
}

/// An obligation a reporting rule creates.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ObligationRule {
    /// Kind, for example "notification_24h".
    pub kind: String,
    /// Due this many hours after the site became aware.
    pub hours: u32,
}

/// One row of the expedited-reporting matrix.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ReportingRule {
    /// Name, for the record.
    pub name: String,
    /// Lowest grade matched.
    #[serde(default)]
    pub min_grade: Option<u8>,
    /// Highest grade matched.
    #[serde(default)]
    pub max_grade: Option<u8>,
    /// Matches only expected (true) or unexpected (false) events.
    #[serde(default)]
    pub expected: Option<bool>,
    /// Matches only serious (true) or non-serious (false) events.
    #[serde(default)]
    pub serious: Option<bool>,
    /// Matches only events related (true: possible or stronger to any agent) or not.
    #[serde(default)]
    pub related: Option<bool>,
    /// Matches when any of these seriousness criteria is met.
    #[serde(default)]
    pub seriousness_any: Vec<Seriousness>,
    /// Not applied when the event already has an obligation of one of these kinds.
    #[serde(default)]
    pub unless: Vec<String>,
    /// What the rule requires.
    pub obligations: Vec<ObligationRule>,
}

/// Identity of a trial.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TrialInfo {
    /// Short identifier used in the API and in subject identifiers, for example "ANBL1221".
    pub id: String,
    /// Title.
    pub title: String,
    /// Registry identifier, for example an NCT number.
    pub registry_id: String,
    /// Version of this definition.
    pub protocol_version: String,
    /// A training trial: for teaching and practice, never a production trial's data. Its id
    /// contains `TRAINING`, so every record, identifier and response naming it says so.
    #[serde(default)]
    pub training: bool,
}

/// Consent rules.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ConsentRules {
    /// Consent form versions accepted at enrollment.
    pub accepted_form_versions: Vec<String>,
}

/// Screening rules.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ScreeningRules {
    /// Days a screening stays valid for enrollment, from its assessment date.
    pub validity_days: u32,
}

/// Randomization: the allocation method and its parameters.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RandomizationRules {
    /// The allocation method: stratified permuted blocks (the default) or minimization.
    #[serde(default)]
    pub method: AllocationMethodKind,
    /// Block size multipliers, for permuted blocks; a block holds each arm
    /// `allocation_ratio × multiplier` times.
    #[serde(default)]
    pub block_multipliers: Vec<u32>,
    /// The parameters of minimization, required when it is the method.
    pub minimization: Option<MinimizationRules>,
}

/// An allocation method a protocol may select.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum AllocationMethodKind {
    /// Stratified permuted blocks with randomly varying block sizes.
    #[default]
    PermutedBlocks,
    /// Pocock–Simon minimization over the stratification factors, with a random element.
    Minimization,
}

/// Pocock–Simon minimization: each candidate arm is scored by the imbalance the new subject
/// would leave on every stratification factor (among subjects sharing the subject's value of
/// it), weighted; the arm with the lowest score is preferred and given with a probability.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MinimizationRules {
    /// How the imbalance of one factor among the arms is measured.
    pub imbalance: ImbalanceMeasure,
    /// Probability of allocating the preferred arm, above 1 / (number of arms) and below 1, with
    /// at most 4 decimal places (for example "0.8").
    #[serde(deserialize_with = "exact::deserialize")]
    pub preferred_arm_probability: Decimal,
    /// Weight of each stratification factor by id (a factor left out weighs 1), exact decimals
    /// above 0 written as strings.
    #[serde(default, deserialize_with = "exact::map")]
    pub weights: std::collections::BTreeMap<String, Decimal>,
}

/// An imbalance measure of one factor's counts among the arms, each count divided by its arm's
/// allocation ratio.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ImbalanceMeasure {
    /// The largest minus the smallest.
    Range,
    /// The variance.
    Variance,
}

/// A treatment arm.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Arm {
    /// Arm code, for example "A".
    pub code: String,
    /// Name of the arm's regimen.
    pub name: String,
    /// Share of the allocation ratio.
    pub allocation_ratio: u32,
}

/// A stratification factor.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct StratificationFactor {
    /// Factor identifier.
    pub id: String,
    /// Description.
    pub description: String,
    /// Allowed values.
    pub values: Vec<String>,
}

/// The kind of value a screening variable takes.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum VariableKind {
    /// An exact decimal.
    Decimal,
    /// Yes or no.
    Boolean,
    /// One of a list of values.
    Choice,
}

/// A variable a screening supplies.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ScreeningVariable {
    /// Variable identifier.
    pub id: String,
    /// Kind of value.
    pub kind: VariableKind,
    /// Description.
    pub description: String,
    /// Unit of a decimal variable.
    #[serde(default)]
    pub unit: Option<String>,
    /// Allowed values of a choice variable.
    #[serde(default)]
    pub allowed: Vec<String>,
    /// Smallest plausible value of a decimal variable.
    #[serde(default, deserialize_with = "exact::option::deserialize")]
    pub minimum: Option<Decimal>,
    /// Largest plausible value of a decimal variable.
    #[serde(default, deserialize_with = "exact::option::deserialize")]
    pub maximum: Option<Decimal>,
}

/// An eligibility criterion.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Criterion {
    /// Criterion identifier.
    pub id: String,
    /// The criterion as the protocol states it.
    pub description: String,
    /// The rule that decides it.
    pub rule: Rule,
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
pub enum CompareOp {
    /// Greater than or equal.
    #[serde(rename = ">=")]
    AtLeast,
    /// Greater than.
    #[serde(rename = ">")]
    Above,
    /// Less than or equal.
    #[serde(rename = "<=")]
    AtMost,
    /// Less than.
    #[serde(rename = "<")]
    Below,
}

impl CompareOp {
    /// The operator as written in a protocol, for example ">=".
    pub fn symbol(self) -> &'static str {
        match self {
            CompareOp::AtLeast => ">=",
            CompareOp::Above => ">",
            CompareOp::AtMost => "<=",
            CompareOp::Below => "<",
        }
    }

    /// Whether `value op threshold` holds.
    pub fn holds(self, value: Decimal, threshold: Decimal) -> bool {
        match self {
            CompareOp::AtLeast => value >= threshold,
            CompareOp::Above => value > threshold,
            CompareOp::AtMost => value <= threshold,
            CompareOp::Below => value < threshold,
        }
    }
}

/// A decimal variable compared with a fixed threshold.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Compare {
    /// The variable.
    pub variable: String,
    /// The operator.
    pub op: CompareOp,
    /// The threshold, in the variable's unit.
    #[serde(deserialize_with = "exact::deserialize")]
    pub value: Decimal,
}

/// A decimal variable compared with a multiple of another (for example ≤ 1.5 × ULN).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CompareToReference {
    /// The variable.
    pub variable: String,
    /// The operator.
    pub op: CompareOp,
    /// The multiple of the reference.
    #[serde(deserialize_with = "exact::deserialize")]
    pub multiple: Decimal,
    /// The reference variable, in the same unit.
    pub reference: String,
}

/// A choice variable that must take one of some values.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct OneOf {
    /// The variable.
    pub variable: String,
    /// The values that meet the criterion.
    pub values: Vec<String>,
}

/// The rule of an eligibility criterion.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Rule {
    /// A decimal compared with a threshold.
    Compare(Compare),
    /// A decimal compared with a multiple of another decimal.
    CompareToReference(CompareToReference),
    /// A boolean variable that must be true.
    IsTrue(String),
    /// A choice among accepted values.
    OneOf(OneOf),
    /// Met when any sub-rule is met.
    AnyOf(Vec<Rule>),
    /// Met when every sub-rule is met.
    AllOf(Vec<Rule>),
}

/// Cycle rules.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TreatmentRules {
    /// Length of a cycle in days.
    pub cycle_length_days: u32,
    /// Maximum number of cycles.
    pub maximum_cycles: u32,
    /// BSA formula; only "mosteller" is supported.
    pub bsa_formula: String,
    /// Decimals BSA is rounded to.
    pub bsa_decimals: u32,
    /// Largest BSA change, in percent, accepted since the previous cycle without confirmation.
    #[serde(deserialize_with = "exact::deserialize")]
    pub max_bsa_change_percent: Decimal,
    /// Largest deviation, in percent, of a rounded dose from the calculated one; beyond it the
    /// dose cannot be prepared by the rounding rule and is refused for a pharmacist to resolve.
    #[serde(deserialize_with = "exact::deserialize")]
    pub max_rounding_deviation_percent: Decimal,
    /// Largest deviation, in percent, of a given dose from the prescribed one before flagging.
    #[serde(deserialize_with = "exact::deserialize")]
    pub administration_tolerance_percent: Decimal,
    /// How many days before its planned day an administration may be recorded as given (the UTC
    /// date of its start against the planned date); 0: never before its day.
    pub earliest_administration_days_before_planned: u32,
    /// The small-child rule.
    pub small_child_rule: SmallChildRule,
    /// Cycle-start criteria.
    pub cycle_start: CycleStartCriteria,
}

/// Per-kg dosing for small children.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SmallChildRule {
    /// Applies below this BSA (m²).
    #[serde(deserialize_with = "exact::deserialize")]
    pub bsa_below_m2: Decimal,
    /// Applies below this weight (kg).
    #[serde(deserialize_with = "exact::deserialize")]
    pub weight_below_kg: Decimal,
    /// dose/kg = dose per m² ÷ this divisor.
    #[serde(deserialize_with = "exact::deserialize")]
    pub per_kg_divisor: Decimal,
    /// Which BSA the threshold compares: the one rounded per protocol, or the measured one.
    pub bsa_compared: BsaCompared,
}

/// Which body surface area the small-child threshold compares. At 86.7 cm and 14.7 kg the
/// measured BSA is 0.595 m² and the rounded one 0.60 m²: per kg below 0.6 on one reading, per m²
/// on the other.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum BsaCompared {
    /// The BSA rounded to `bsa_decimals`, the one the doses are calculated from.
    Rounded,
    /// The measured BSA, √(height × weight / 3600), before rounding.
    Measured,
}

/// Blood counts required to start a cycle, and the delay rules.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CycleStartCriteria {
    /// Minimum absolute neutrophil count, per µL.
    #[serde(deserialize_with = "exact::deserialize")]
    pub min_anc_per_ul: Decimal,
    /// Minimum platelets, per µL.
    #[serde(deserialize_with = "exact::deserialize")]
    pub min_platelets_per_ul: Decimal,
    /// A cycle is delayed in steps of this many days.
    pub delay_step_days: u32,
    /// Off protocol therapy if not recovered within this many days.
    pub max_delay_days: u32,
}

/// When responses are assessed.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AssessmentSchedule {
    /// Assessed after these cycles.
    pub after_cycles: Vec<u32>,
    /// Then after every this many cycles.
    pub then_every_cycles: u32,
    /// The primary endpoint is assessed after this cycle.
    pub primary_evaluation_after_cycle: u32,
}

/// The agents of one arm.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Regimen {
    /// The arm.
    pub arm: String,
    /// Agents given on this arm.
    pub agents: Vec<Agent>,
}

/// How a dose is expressed.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum DoseBasis {
    /// Per m² of body surface area.
    PerM2,
    /// Per kg of body weight.
    PerKg,
    /// Flat.
    Flat,
}

/// A dose level of an agent.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DoseLevel {
    /// 0 for the starting dose, negative for reductions, positive for escalations.
    pub level: i32,
    /// Dose per basis unit.
    #[serde(deserialize_with = "exact::deserialize")]
    pub dose: Decimal,
}

/// How a calculated dose is rounded.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Rounding {
    /// To a number of decimals.
    Decimals(u32),
    /// To the nearest multiple of a step.
    Step(#[serde(deserialize_with = "exact::deserialize")] Decimal),
    /// To the nearest total the listed capsule or vial sizes make up.
    Units(#[serde(deserialize_with = "exact::list")] Vec<Decimal>),
}

/// One agent of a regimen.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Agent {
    /// Agent identifier.
    pub id: String,
    /// Name.
    pub name: String,
    /// Dose basis.
    pub basis: DoseBasis,
    /// Dose unit, for example "mg".
    pub unit: String,
    /// Route, for example "IV".
    pub route: String,
    /// Days of the cycle, 1-based.
    pub days: Vec<u32>,
    /// Infusion duration in minutes, for infusions.
    #[serde(default)]
    pub infusion_minutes: Option<u32>,
    /// Dose levels.
    pub dose_levels: Vec<DoseLevel>,
    /// Rounding rule.
    pub rounding: Rounding,
    /// Whether a dose modification may raise the dose again (re-escalation). Default: no.
    #[serde(default)]
    pub allow_re_escalation: bool,
}

impl Protocol {
    /// The arm with this code.
    pub fn arm(&self, code: &str) -> Option<&Arm> {
        self.arms.iter().find(|a| a.code == code)
    }

    /// The screening variable with this id.
    pub fn variable(&self, id: &str) -> Option<&ScreeningVariable> {
        self.variables.iter().find(|v| v.id == id)
    }

    /// The stratification factor with this id.
    pub fn factor(&self, id: &str) -> Option<&StratificationFactor> {
        self.strata.iter().find(|f| f.id == id)
    }
}
