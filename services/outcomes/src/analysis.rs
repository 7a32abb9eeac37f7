//! The trial's analyses as pure functions of what the services hold, so the RPCs, the trial
//! report and the benchmark share one implementation, and each analysis reads its inputs once.
//!
//! - Evaluable: enrolled (enrollment refuses ineligible candidates) and received at least one
//!   dose of protocol therapy (dosing).
//! - Primary endpoint: the best central-review overall response among assessments after cycles
//!   1 to the protocol's evaluation cycle (6 for ANBL1221). Responders are CR or PR; an evaluable
//!   subject without such an assessment counts in the denominator as not assessed.
//! - EFS from enrollment: the first of relapse/progression (follow-up, or a PD assessment by
//!   any assessor), second malignancy, or death; OS: death. Otherwise censored at the last
//!   contact or assessment.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::NaiveDate;
use trialops_domain::outcomes::inrc::Response;
use trialops_domain::outcomes::survival::Observation;

/// Text many records share, held once: a subject's id is shared by its assessments and
/// follow-ups, an arm's code by its subjects. The analyses compare shared ids by address before
/// comparing their text, and read each once.
pub type Shared = std::sync::Arc<str>;

/// An enrolled subject.
#[derive(Debug, Clone)]
pub struct Subject {
    /// Study subject id.
    pub subject_id: Shared,
    /// Arm.
    pub arm_code: Shared,
    /// Enrollment date.
    pub enrolled_on: NaiveDate,
    /// Marked randomized in error, with this reason: in the intention-to-treat population, not
    /// the per-protocol one.
    pub in_error: Option<String>,
    /// Received at least one dose (evaluable for response).
    pub treated: bool,
}

/// A recorded assessment, as the analyses need it.
#[derive(Debug, Clone)]
pub struct Assessment {
    /// Study subject id (best shared with the subject's).
    pub subject_id: Shared,
    /// After this cycle (0 = baseline).
    pub after_cycle: i32,
    /// Central review (true) or site (false).
    pub central: bool,
    /// Overall response (after any override).
    pub overall: Option<Response>,
    /// Date.
    pub assessed_on: NaiveDate,
    /// Recorded before Curie segments were kept, with MIBG uptake: its bone score waits for
    /// ReenterCurieSegments.
    pub awaiting_curie_segments: bool,
}

/// A follow-up contact.
#[derive(Debug, Clone)]
pub struct FollowUp {
    /// Study subject id (best shared with the subject's).
    pub subject_id: Shared,
    /// Last contact (or death) date.
    pub last_contact_on: NaiveDate,
    /// Dead at that date.
    pub dead: bool,
    /// Relapse or progression date.
    pub progression_on: Option<NaiveDate>,
    /// Second malignancy date.
    pub second_malignancy_on: Option<NaiveDate>,
}

/// Everything an analysis reads.
#[derive(Debug, Clone, Default)]
pub struct Data {
    /// Enrolled subjects, in enrollment order.
    pub subjects: Vec<Subject>,
    /// All assessments of the trial.
    pub assessments: Vec<Assessment>,
    /// All follow-ups of the trial.
    pub follow_ups: Vec<FollowUp>,
    /// The protocol's evaluation cycle for the primary endpoint.
    pub evaluation_cycle: i32,
    /// Arms in protocol order.
    pub arms: Vec<String>,
    /// The protocol keeps subjects randomized in error in its per-protocol population (most
    /// leave them out: the default, false).
    pub per_protocol_keeps_randomized_in_error: bool,
}

impl Data {
    /// The per-protocol population's data: without the subjects randomized in error, unless the
    /// protocol keeps them. Their assessments and follow-ups stay; the analyses read them per
    /// subject.
    pub fn per_protocol(&self) -> Data {
        if self.per_protocol_keeps_randomized_in_error {
            return self.clone();
        }
        Data {
            subjects: self.subjects.iter().filter(|s| s.in_error.is_none()).cloned().collect(),
            ..self.clone()
        }
    }
}

/// One arm's response table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ArmResponses {
    /// Arm.
    pub arm_code: String,
    /// Best responses of evaluable subjects.
    pub cr: u64,
    /// PR.
    pub pr: u64,
    /// MR.
    pub mr: u64,
    /// SD.
    pub sd: u64,
    /// PD.
    pub pd: u64,
    /// Evaluable without a primary-endpoint assessment.
    pub not_assessed: u64,
    /// Evaluable subjects.
    pub evaluable: u64,
    /// Responders (CR + PR).
    pub responders: u64,
}

/// A hash set keyed by subject ids (foldhash: a hash built for in-memory tables, far faster than
/// the standard library's for the millions of lookups an analysis makes).
pub type FastSet<K> = HashSet<K, foldhash::fast::RandomState>;

/// A hash map keyed by subject ids (foldhash, as [`FastSet`]).
pub type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// Each subject's best central-review response within the evaluation window.
fn best_responses(data: &Data) -> FastMap<&str, Response> {
    let mut best = HashMap::with_capacity_and_hasher(data.subjects.len(), Default::default());
    for a in &data.assessments {
        let Some(overall) = a.overall else { continue };
        if !a.central || a.after_cycle < 1 || a.after_cycle > data.evaluation_cycle {
            continue;
        }
        let entry = best.entry(&*a.subject_id).or_insert(overall);
        if overall.rank() < entry.rank() {
            *entry = overall;
        }
    }
    best
}

/// Each subject's best central-review response within the evaluation window, in the order of
/// `data.subjects`. When the subjects and the assessments are both in subject-id order (as the
/// store reads assessments, and as sequential study numbers enroll), one merge pass in memory
/// order that also checks the order; otherwise through a hash table.
fn best_by_subject(data: &Data) -> Vec<Option<Response>> {
    merged_in_id_order(data).unwrap_or_else(|| {
        let best = best_responses(data);
        data.subjects
            .iter()
            .map(|s| best.get(&*s.subject_id).copied())
            .collect()
    })
}

/// [`best_by_subject`] by merging, or `None` as soon as the subjects or the assessments turn out
/// not to be in subject-id order.
fn merged_in_id_order(data: &Data) -> Option<Vec<Option<Response>>> {
    use std::cmp::Ordering;
    let (window, assessments) = (1..=data.evaluation_cycle, &data.assessments);
    let mut out = Vec::with_capacity(data.subjects.len());
    let (mut next, mut previous_subject, mut last_assessed): (usize, Option<&str>, Option<&str>) = (0, None, None);
    for s in &data.subjects {
        let id = &*s.subject_id;
        if previous_subject.is_some_and(|p| p >= id) {
            return None;
        }
        previous_subject = Some(id);
        let mut best: Option<Response> = None;
        let mut in_run = false;
        while let Some(a) = assessments.get(next) {
            let of = &*a.subject_id;
            // The same shared id is the same subject without reading its text.
            let order = if std::ptr::eq(of, id) {
                Ordering::Equal
            } else {
                of.cmp(id)
            };
            match order {
                Ordering::Greater => break,
                // An assessment of a subject not analysed (left out of this population).
                Ordering::Less if last_assessed.is_some_and(|l| l > of) => return None,
                Ordering::Less => {}
                Ordering::Equal => {
                    // The first of a run follows the runs before it.
                    if !in_run && last_assessed.is_some_and(|l| l > of) {
                        return None;
                    }
                    in_run = true;
                    if let Some(overall) = a.overall.filter(|_| a.central && window.contains(&a.after_cycle)) {
                        best = Some(best.map_or(overall, |b| if overall.rank() < b.rank() { overall } else { b }));
                    }
                }
            }
            last_assessed = Some(of);
            next += 1;
        }
        out.push(best);
    }
    // What no subject took must still be in order.
    let rest = assessments.get(next..).unwrap_or_default();
    let ordered = rest.is_sorted_by(|a, b| a.subject_id <= b.subject_id);
    let after = match (last_assessed, rest.first()) {
        (Some(l), Some(a)) => l <= &*a.subject_id,
        _ => true,
    };
    (ordered && after).then_some(out)
}

/// The evaluable subjects (treated) with their best responses, in enrollment order.
fn evaluable(data: &Data) -> impl Iterator<Item = (&Subject, Option<Response>)> {
    data.subjects
        .iter()
        .zip(best_by_subject(data))
        .filter(|(s, _)| s.treated)
}

/// Each evaluable subject's primary-endpoint response (None = not assessed), per arm, in
/// enrollment order.
pub fn primary_endpoint(data: &Data) -> BTreeMap<String, Vec<(String, Option<Response>)>> {
    let mut out: BTreeMap<String, Vec<(String, Option<Response>)>> = BTreeMap::new();
    for arm in &data.arms {
        out.insert(arm.clone(), Vec::new());
    }
    for (s, best) in evaluable(data) {
        out.entry(s.arm_code.to_string())
            .or_default()
            .push((s.subject_id.to_string(), best));
    }
    out
}

/// The response table per arm, in arm-code order: every arm of the protocol, and any other arm
/// an evaluable subject is on.
pub fn response_table(data: &Data) -> Vec<ArmResponses> {
    let mut tables: BTreeMap<&str, ArmResponses> = BTreeMap::new();
    for arm in &data.arms {
        tables.insert(arm, ArmResponses::default());
    }
    for (s, best) in evaluable(data) {
        let t = tables.entry(&*s.arm_code).or_default();
        t.evaluable += 1;
        match best {
            Some(Response::Cr) => t.cr += 1,
            Some(Response::Pr) => t.pr += 1,
            Some(Response::Mr) => t.mr += 1,
            Some(Response::Sd) => t.sd += 1,
            Some(Response::Pd) => t.pd += 1,
            _ => t.not_assessed += 1,
        }
    }
    tables
        .into_iter()
        .map(|(arm, t)| ArmResponses {
            arm_code: arm.to_owned(),
            responders: t.cr + t.pr,
            ..t
        })
        .collect()
}

/// Which survival endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// Event-free survival.
    EventFree,
    /// Overall survival.
    Overall,
}

/// Keeps the earliest (or latest) date per subject.
fn note<'a>(map: &mut FastMap<&'a str, NaiveDate>, id: &'a str, date: NaiveDate, latest: bool) {
    map.entry(id)
        .and_modify(|d| *d = if latest { (*d).max(date) } else { (*d).min(date) })
        .or_insert(date);
}

/// Survival observations (days from enrollment) per arm.
pub fn observations(data: &Data, endpoint: Endpoint) -> BTreeMap<String, Vec<Observation>> {
    let efs = endpoint == Endpoint::EventFree;
    let mut events: FastMap<&str, NaiveDate> = FastMap::default();
    let mut last_seen = FastMap::with_capacity_and_hasher(data.subjects.len(), Default::default());
    for f in &data.follow_ups {
        note(&mut last_seen, &f.subject_id, f.last_contact_on, true);
        if f.dead {
            note(&mut events, &f.subject_id, f.last_contact_on, false);
        }
        if efs {
            for date in [f.progression_on, f.second_malignancy_on].into_iter().flatten() {
                note(&mut events, &f.subject_id, date, false);
            }
        }
    }
    for a in &data.assessments {
        note(&mut last_seen, &a.subject_id, a.assessed_on, true);
        if efs && a.after_cycle >= 1 && a.overall == Some(Response::Pd) {
            note(&mut events, &a.subject_id, a.assessed_on, false);
        }
    }
    let mut out: BTreeMap<String, Vec<Observation>> = data.arms.iter().map(|a| (a.clone(), Vec::new())).collect();
    for s in &data.subjects {
        let (end, event) = match events.get(&*s.subject_id) {
            Some(date) => (*date, true),
            None => (last_seen.get(&*s.subject_id).copied().unwrap_or(s.enrolled_on), false),
        };
        let observation = Observation {
            time: (end - s.enrolled_on).num_days().max(0) as f64,
            event,
        };
        match out.get_mut(&*s.arm_code) {
            Some(arm) => arm.push(observation),
            None => {
                out.insert(s.arm_code.to_string(), vec![observation]);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, m, d).unwrap_or_default()
    }

    fn central(id: &str, cycle: i32, r: Response, on: NaiveDate) -> Assessment {
        Assessment {
            awaiting_curie_segments: false,
            subject_id: id.into(),
            after_cycle: cycle,
            central: true,
            overall: Some(r),
            assessed_on: on,
        }
    }

    /// S1, S2 on arm A; S3, S4 on arm B; S4 never treated.
    fn trial() -> Data {
        let subject = |id: &str, arm: &str, on| Subject {
            subject_id: id.into(),
            arm_code: arm.into(),
            enrolled_on: on,
            in_error: None,
            treated: id != "S4",
        };
        let follow = |id: &str, last, dead, progression, malignancy| FollowUp {
            subject_id: id.into(),
            last_contact_on: last,
            dead,
            progression_on: progression,
            second_malignancy_on: malignancy,
        };
        Data {
            subjects: vec![
                subject("S1", "A", day(1, 1)),
                subject("S2", "A", day(1, 11)),
                subject("S3", "B", day(1, 1)),
                subject("S4", "B", day(1, 1)),
            ],
            assessments: vec![
                central("S1", 2, Response::Pr, day(2, 1)),
                central("S1", 6, Response::Cr, day(3, 1)),
                central("S2", 4, Response::Sd, day(2, 20)),
                central("S2", 6, Response::Pd, day(3, 20)),
                Assessment {
                    awaiting_curie_segments: false,
                    central: false,
                    ..central("S2", 2, Response::Pr, day(2, 1))
                }, // site review: not the endpoint
                central("S3", 2, Response::Mr, day(2, 1)),
                central("S3", 8, Response::Cr, day(4, 1)), // after the evaluation cycle
                central("S4", 2, Response::Cr, day(2, 1)), // not evaluable: never treated
            ],
            follow_ups: vec![
                follow("S1", day(6, 30), false, None, None),
                follow("S2", day(4, 30), false, Some(day(3, 25)), None),
                follow("S3", day(7, 1), false, None, Some(day(5, 1))),
                follow("S4", day(2, 10), true, None, None),
            ],
            evaluation_cycle: 6,
            arms: vec!["A".into(), "B".into()],
            per_protocol_keeps_randomized_in_error: false,
        }
    }

    #[test]
    fn the_per_protocol_population_leaves_out_subjects_randomized_in_error_unless_the_protocol_keeps_them() {
        let mut data = trial();
        data.subjects[0].in_error = Some("ineligible: bilirubin".into());
        let ids = |d: &Data| d.subjects.iter().map(|s| s.subject_id.clone()).collect::<Vec<_>>();
        let all = ids(&data);
        // By default S1 is left out and everyone else kept, in order.
        assert_eq!(ids(&data.per_protocol()), all[1..].to_vec());
        // A: S1's CR goes with it; S2 (best SD) remains, so no responder of 1 evaluable.
        let a = &response_table(&data.per_protocol())[0];
        assert_eq!((a.arm_code.as_str(), a.evaluable, a.cr), ("A", 1, 0));
        data.per_protocol_keeps_randomized_in_error = true;
        assert_eq!(ids(&data.per_protocol()), all);
    }

    #[test]
    fn response_table_uses_central_review_within_the_evaluation_window_for_treated_subjects() {
        let table = response_table(&trial());
        // A: S1 best CR, S2 best SD (site PR ignored) -> 1 responder of 2 evaluable.
        assert_eq!(
            table[0],
            ArmResponses {
                arm_code: "A".into(),
                cr: 1,
                sd: 1,
                evaluable: 2,
                responders: 1,
                ..Default::default()
            }
        );
        // B: S3 MR (its cycle-8 CR is after cycle 6); S4 untreated is not evaluable.
        assert_eq!(
            table[1],
            ArmResponses {
                arm_code: "B".into(),
                mr: 1,
                evaluable: 1,
                ..Default::default()
            }
        );
    }

    #[test]
    fn the_merge_in_id_order_and_the_hash_table_give_the_same_best_responses() {
        let sorted = trial();
        assert!(sorted.assessments.is_sorted_by(|a, b| a.subject_id <= b.subject_id));
        let mut shuffled = sorted.clone();
        shuffled.assessments.reverse();
        let mut enrolled_out_of_order = sorted.clone();
        enrolled_out_of_order.subjects.swap(0, 3);
        let merged = best_by_subject(&sorted);
        assert_eq!(
            merged,
            [
                Some(Response::Cr),
                Some(Response::Sd),
                Some(Response::Mr),
                Some(Response::Cr)
            ]
        );
        assert_eq!(best_by_subject(&shuffled), merged);
        let mut by_subject = best_by_subject(&enrolled_out_of_order);
        by_subject.swap(0, 3);
        assert_eq!(by_subject, merged);
        assert_eq!(response_table(&shuffled), response_table(&sorted));
    }

    /// `data` with each subject's id held once and shared by its assessments and follow-ups, as
    /// the service builds it (the other tests' ids are separate copies).
    fn shared(data: &Data) -> Data {
        let mut shared = data.clone();
        for s in &mut shared.subjects {
            let id = s.subject_id.clone();
            for a in shared.assessments.iter_mut().filter(|a| a.subject_id == id) {
                a.subject_id = id.clone();
            }
            for f in shared.follow_ups.iter_mut().filter(|f| f.subject_id == id) {
                f.subject_id = id.clone();
            }
        }
        shared
    }

    #[test]
    fn shared_ids_and_copied_ids_give_the_same_analyses() {
        let copied = trial();
        let sharing = shared(&copied);
        assert!(std::sync::Arc::ptr_eq(
            &sharing.subjects[1].subject_id,
            &sharing.assessments[2].subject_id
        ));
        assert!(!std::sync::Arc::ptr_eq(
            &copied.subjects[1].subject_id,
            &copied.assessments[2].subject_id
        ));
        // The merge (ids in order), and the hash table (assessments out of order).
        assert_eq!(best_by_subject(&sharing), best_by_subject(&copied));
        let mut reversed = sharing.clone();
        reversed.assessments.reverse();
        assert_eq!(best_by_subject(&reversed), best_by_subject(&copied));
        assert_eq!(response_table(&sharing), response_table(&copied));
        assert_eq!(primary_endpoint(&sharing), primary_endpoint(&copied));
        for endpoint in [Endpoint::EventFree, Endpoint::Overall] {
            let times = |d: &Data| {
                observations(d, endpoint)
                    .into_iter()
                    .map(|(arm, o)| (arm, o.iter().map(|x| (x.time, x.event)).collect::<Vec<_>>()))
                    .collect::<Vec<_>>()
            };
            assert_eq!(times(&sharing), times(&copied));
        }
    }

    #[test]
    fn event_free_survival_takes_the_first_event() {
        let obs = observations(&trial(), Endpoint::EventFree);
        // S1: censored at last contact, 1 Jan -> 30 Jun = 180 days.
        // S2: PD on 20 Mar before the follow-up's 25 Mar progression: 11 Jan -> 20 Mar = 68 days.
        // S3: second malignancy 1 May: 120 days. S4: death 10 Feb: 40 days.
        let a: Vec<_> = obs["A"].iter().map(|o| (o.time, o.event)).collect();
        let b: Vec<_> = obs["B"].iter().map(|o| (o.time, o.event)).collect();
        assert_eq!(a, [(180.0, false), (68.0, true)]);
        assert_eq!(b, [(120.0, true), (40.0, true)]);
    }

    #[test]
    fn overall_survival_counts_deaths_only() {
        let obs = observations(&trial(), Endpoint::Overall);
        // S2: alive, last seen 30 Apr (after its 20 Mar assessment): 109 days. S3: 1 Jul: 181 days.
        let a: Vec<_> = obs["A"].iter().map(|o| (o.time, o.event)).collect();
        let b: Vec<_> = obs["B"].iter().map(|o| (o.time, o.event)).collect();
        assert_eq!(a, [(180.0, false), (109.0, false)]);
        assert_eq!(b, [(181.0, false), (40.0, true)]);
    }
}
