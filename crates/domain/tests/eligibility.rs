//! Eligibility evaluated against the bundled ANBL1221 criteria, with cases worked by hand from
//! TRIAL.md's thresholds.

// Test code, helpers included, unwraps: a failure is a test failure with the value shown.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use trialops_domain::Decimal;
use trialops_domain::eligibility::{InputPart, Outcome, Value, check_inputs, evaluate};
use trialops_domain::protocol::{self, Protocol};

fn anbl() -> Protocol {
    protocol::anbl1221().unwrap()
}

fn d(s: &str) -> Value {
    Value::Decimal(s.parse::<Decimal>().unwrap_or_else(|_| panic!("{s}")))
}

/// A candidate who meets every criterion.
fn eligible_candidate() -> Vec<(String, Value)> {
    [
        ("histology_confirmed", Value::Boolean(true)),
        ("disease_status", Value::Choice("first_recurrence".into())),
        ("measurable_tumour_mm", d("23")),
        ("measurable_tumour_avid", Value::Boolean(true)),
        ("anc_per_ul", d("1200")),
        ("platelets_per_ul", d("150000")),
        ("platelets_transfusion_independent", Value::Boolean(true)),
        ("bilirubin_mg_dl", d("0.6")),
        ("bilirubin_uln_mg_dl", d("1.0")),
        ("alt_u_l", d("40")),
        ("creatinine_within_age_sex_limit", Value::Boolean(true)),
        ("shortening_fraction_percent", d("34")),
        ("performance_score", d("80")),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

fn with(mut entries: Vec<(String, Value)>, id: &str, value: Option<Value>) -> Vec<(String, Value)> {
    entries.retain(|(k, _)| k != id);
    if let Some(v) = value {
        entries.push((id.to_owned(), v));
    }
    entries
}

fn outcome_of(entries: &[(String, Value)], criterion: &str) -> (Outcome, String) {
    let p = anbl();
    let values = check_inputs(&p, entries).unwrap();
    let eval = evaluate(&p, &values);
    let r = eval
        .results
        .iter()
        .find(|r| r.criterion_id == criterion)
        .unwrap_or_else(|| panic!("{criterion}"));
    (r.outcome, r.detail.clone())
}

#[test]
fn a_candidate_meeting_every_criterion_is_eligible() {
    let p = anbl();
    let values = check_inputs(&p, &eligible_candidate()).unwrap();
    let eval = evaluate(&p, &values);
    assert_eq!(eval.results.len(), 10);
    assert!(eval.eligible(), "{:?}", eval.results);
    assert!(eval.failed().is_empty());
}

#[test]
fn thresholds_are_inclusive_where_the_protocol_says_at_least() {
    // ANC >= 750: 750 meets, 749 does not.
    let c = eligible_candidate();
    assert_eq!(
        outcome_of(&with(c.clone(), "anc_per_ul", Some(d("750"))), "anc").0,
        Outcome::Met
    );
    let (o, detail) = outcome_of(&with(c.clone(), "anc_per_ul", Some(d("749"))), "anc");
    assert_eq!(o, Outcome::NotMet);
    assert_eq!(detail, "anc_per_ul = 749 /uL; required >= 750 /uL");
    // ALT <= 5 x 45 = 225 U/L.
    assert_eq!(
        outcome_of(&with(c.clone(), "alt_u_l", Some(d("225"))), "alt").0,
        Outcome::Met
    );
    assert_eq!(
        outcome_of(&with(c, "alt_u_l", Some(d("225.1"))), "alt").0,
        Outcome::NotMet
    );
}

#[test]
fn bilirubin_is_compared_with_one_and_a_half_times_the_uln() {
    // ULN 0.8 mg/dL -> limit 1.5 x 0.8 = 1.2 mg/dL.
    let c = with(eligible_candidate(), "bilirubin_uln_mg_dl", Some(d("0.8")));
    let (o, detail) = outcome_of(&with(c.clone(), "bilirubin_mg_dl", Some(d("1.2"))), "bilirubin");
    assert_eq!(o, Outcome::Met);
    assert_eq!(
        detail,
        "bilirubin_mg_dl = 1.2 mg/dL; required <= 1.5 x bilirubin_uln_mg_dl (1.5 x 0.8 = 1.20 mg/dL)"
    );
    assert_eq!(
        outcome_of(&with(c, "bilirubin_mg_dl", Some(d("1.21"))), "bilirubin").0,
        Outcome::NotMet
    );
}

#[test]
fn either_branch_of_an_alternative_suffices_and_missing_data_is_not_a_pass() {
    let c = eligible_candidate();
    // Cardiac: SF >= 27% or EF >= 50%. SF 20 alone: not met; add EF 55: met.
    let low_sf = with(c.clone(), "shortening_fraction_percent", Some(d("20")));
    assert_eq!(
        outcome_of(&low_sf, "cardiac").0,
        Outcome::MissingData,
        "EF unknown could still qualify"
    );
    assert_eq!(
        outcome_of(
            &with(low_sf.clone(), "ejection_fraction_percent", Some(d("55"))),
            "cardiac"
        )
        .0,
        Outcome::Met
    );
    assert_eq!(
        outcome_of(&with(low_sf, "ejection_fraction_percent", Some(d("45"))), "cardiac").0,
        Outcome::NotMet
    );
    // Evaluable disease: a 9 mm tumour is too small, but one MIBG-positive site qualifies.
    let small = with(c.clone(), "measurable_tumour_mm", Some(d("9")));
    assert_eq!(
        outcome_of(
            &with(small.clone(), "mibg_positive_sites", Some(d("0"))),
            "evaluable_disease"
        )
        .0,
        Outcome::NotMet
    );
    assert_eq!(
        outcome_of(&with(small, "mibg_positive_sites", Some(d("1"))), "evaluable_disease").0,
        Outcome::Met
    );
    // Platelets: count and transfusion independence are both required.
    let transfused = with(
        c.clone(),
        "platelets_transfusion_independent",
        Some(Value::Boolean(false)),
    );
    assert_eq!(outcome_of(&transfused, "platelets").0, Outcome::NotMet);
    // A missing value makes the criterion MISSING_DATA and the candidate not eligible.
    let p = anbl();
    let no_anc = with(c, "anc_per_ul", None);
    let eval = evaluate(&p, &check_inputs(&p, &no_anc).unwrap());
    assert!(!eval.eligible());
    assert_eq!(eval.failed(), ["anc"]);
    assert_eq!(eval.results[3].detail, "anc_per_ul not supplied");
}

#[test]
fn disease_status_must_be_one_of_the_three_qualifying_categories() {
    let c = with(
        eligible_candidate(),
        "disease_status",
        Some(Value::Choice("other".into())),
    );
    let (o, detail) = outcome_of(&c, "disease_status");
    assert_eq!(o, Outcome::NotMet);
    assert!(
        detail.starts_with("disease_status = other; required one of first_recurrence"),
        "{detail}"
    );
}

#[test]
fn bad_inputs_are_refused_with_their_position() {
    let p = anbl();
    let entries = vec![
        ("anc".to_owned(), d("1000")),
        ("anc_per_ul".to_owned(), Value::Boolean(true)),
        ("platelets_per_ul".to_owned(), d("-5")),
        ("disease_status".to_owned(), Value::Choice("relapse".into())),
        ("alt_u_l".to_owned(), d("40")),
        ("alt_u_l".to_owned(), d("41")),
    ];
    let problems = check_inputs(&p, &entries).err().unwrap_or_default();
    let summary: Vec<_> = problems.iter().map(|p| (p.index, p.part)).collect();
    assert_eq!(
        summary,
        [
            (0, InputPart::Variable),
            (1, InputPart::Value),
            (2, InputPart::Value),
            (3, InputPart::Value),
            (5, InputPart::Variable)
        ]
    );
    assert_eq!(
        problems[2].message,
        "-5 is outside the plausible range 0 to 2000000 /uL"
    );
}
