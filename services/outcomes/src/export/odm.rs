//! CDISC ODM 1.3.2: the trial's study metadata, its sites and staff, and every subject's clinical
//! data with its audit trail, written from the three services' audit log entries. A record's
//! history is a sequence of `ItemGroupData` for the same entity (`Insert`, then `Update`s with the
//! items that changed), each carrying the `AuditRecord` of the entry that made it: who, where,
//! when and why; the value before a change is the one the previous element holds.

use std::collections::{BTreeMap, BTreeSet};
use std::io;

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::Value as Json;
use trialops_domain::protocol::{Protocol, VariableKind};
use trialops_platform::records::signature::Meaning;
use trialops_proto::common::v1::AuditEvent;
use trialops_proto::dosing::v1 as dpb;
use trialops_proto::enrollment::v1 as epb;

use super::xml::{W, document, text, translated};

const ODM_NS: &str = "http://www.cdisc.org/ns/odm/v1.3";

/// One audit log entry and the service whose log holds it.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    /// "enrollment", "dosing" or "outcomes".
    pub service: &'static str,
    /// The entry.
    pub event: AuditEvent,
}

/// What the ODM file is written from.
pub(crate) struct Input<'a> {
    /// The protocol definition.
    pub protocol: &'a Protocol,
    /// Registered sites.
    pub sites: Vec<epb::Site>,
    /// Enrolled subjects of the trial.
    pub subjects: Vec<epb::Subject>,
    /// The trial's audit log entries of the three services, each service's in sequence order.
    pub entries: Vec<Entry>,
    /// Administrations recorded (any status but planned), by id: the doses a discontinuation
    /// closed, which its audit log entry names by id only.
    pub administrations: BTreeMap<String, dpb::Administration>,
    /// When the file is made (after every entry).
    pub created: DateTime<Utc>,
}

/// Where an item's value is in an entry's record.
#[derive(Debug, Clone)]
enum Source {
    /// A field.
    Key(&'static str),
    /// One stratification factor of "f=v|f=v".
    Stratum(String),
    /// One screening variable of the JSON object in `values_json`.
    Screening(String),
    /// One agent's attribution in the JSON object in `attributions`.
    Attribution(String),
    /// The JSON list in `seriousness`, joined with "; ".
    Seriousness,
}

#[derive(Debug, Clone)]
struct Item {
    oid: String,
    name: String,
    data_type: &'static str,
    unit: Option<String>,
    codelist: Option<String>,
    source: Source,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Screening,
    Subject,
    Randomization,
    PlanAgent,
    Cycle,
    Dose,
    Administration,
    Response,
    AdverseEvent,
    FollowUp,
}

/// (kind, item group OID, name, study event, form, repeating group).
const GROUPS: [(Kind, &str, &str, &str, &str, bool); 10] = [
    (
        Kind::Screening,
        "IG.SCREENING",
        "Screening",
        "SE.SCREENING",
        "F.SCREENING",
        false,
    ),
    (
        Kind::Subject,
        "IG.SUBJECT",
        "Enrollment",
        "SE.ENROLLMENT",
        "F.ENROLLMENT",
        false,
    ),
    (
        Kind::Randomization,
        "IG.RANDOMIZATION",
        "Randomization",
        "SE.ENROLLMENT",
        "F.ENROLLMENT",
        false,
    ),
    (
        Kind::PlanAgent,
        "IG.PLAN_AGENT",
        "Treatment plan agent",
        "SE.PLAN",
        "F.PLAN",
        true,
    ),
    (Kind::Cycle, "IG.CYCLE", "Cycle start", "SE.CYCLE", "F.CYCLE", false),
    (Kind::Dose, "IG.DOSE", "Dose calculation", "SE.CYCLE", "F.CYCLE", true),
    (
        Kind::Administration,
        "IG.ADMINISTRATION",
        "Administration",
        "SE.CYCLE",
        "F.CYCLE",
        true,
    ),
    (
        Kind::Response,
        "IG.RESPONSE",
        "Response assessment (INRC 2017)",
        "SE.ASSESSMENT",
        "F.RESPONSE",
        true,
    ),
    (
        Kind::AdverseEvent,
        "IG.AE",
        "Adverse event (CTCAE)",
        "SE.SAFETY",
        "F.AE",
        true,
    ),
    (
        Kind::FollowUp,
        "IG.FOLLOW_UP",
        "Follow-up",
        "SE.FOLLOW_UP",
        "F.FOLLOW_UP",
        true,
    ),
];

/// (study event OID, name, repeating, type).
const EVENTS: [(&str, &str, bool, &str); 7] = [
    ("SE.SCREENING", "Screening", true, "Scheduled"),
    ("SE.ENROLLMENT", "Enrollment and randomization", false, "Scheduled"),
    ("SE.PLAN", "Treatment plan", false, "Common"),
    ("SE.CYCLE", "Cycle of protocol therapy", true, "Scheduled"),
    ("SE.ASSESSMENT", "Response evaluation", true, "Scheduled"),
    ("SE.SAFETY", "Adverse events", false, "Common"),
    ("SE.FOLLOW_UP", "Follow-up", false, "Common"),
];

/// (form OID, name, repeating).
const FORMS: [(&str, &str); 7] = [
    ("F.SCREENING", "Screening values and eligibility"),
    ("F.ENROLLMENT", "Enrollment"),
    ("F.PLAN", "Treatment plan"),
    ("F.CYCLE", "Cycle: measurements, doses, administrations"),
    ("F.RESPONSE", "Response assessment"),
    ("F.AE", "Adverse events"),
    ("F.FOLLOW_UP", "Follow-up"),
];

fn group(kind: Kind) -> (Kind, &'static str, &'static str, &'static str, &'static str, bool) {
    GROUPS[GROUPS.iter().position(|g| g.0 == kind).unwrap_or(0)]
}

fn oid_part(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect()
}

/// The items of each group: fixed fields, and those the protocol defines (screening variables,
/// stratification factors, agents).
fn items(protocol: &Protocol) -> BTreeMap<Kind, Vec<Item>> {
    let fixed = |prefix: &str, fields: &[(&'static str, &'static str, Option<&str>, Option<&str>)]| -> Vec<Item> {
        fields
            .iter()
            .map(|(key, data_type, unit, codelist)| Item {
                oid: format!("IT.{prefix}.{}", oid_part(key)),
                name: (*key).to_owned(),
                data_type,
                unit: unit.map(ToOwned::to_owned),
                codelist: codelist.map(ToOwned::to_owned),
                source: Source::Key(key),
            })
            .collect()
    };
    let mut out = BTreeMap::new();
    let mut screening = fixed(
        "SCREENING",
        &[
            ("screening_id", "text", None, None),
            ("site_code", "text", None, None),
            ("assessed_on", "date", None, None),
            ("eligible", "boolean", None, None),
            ("protocol_version", "text", None, None),
        ],
    );
    for v in &protocol.variables {
        screening.push(Item {
            oid: format!("IT.SCREENING.{}", oid_part(&v.id)),
            name: v.id.clone(),
            data_type: match v.kind {
                VariableKind::Boolean => "boolean",
                VariableKind::Decimal => "float",
                VariableKind::Choice => "text",
            },
            unit: v.unit.clone(),
            codelist: (v.kind == VariableKind::Choice).then(|| format!("CL.SCREENING.{}", oid_part(&v.id))),
            source: Source::Screening(v.id.clone()),
        });
    }
    out.insert(Kind::Screening, screening);
    let mut subject = fixed(
        "SUBJECT",
        &[
            ("site_code", "text", None, None),
            ("screening_id", "text", None, None),
            ("arm_code", "text", None, Some("CL.ARM")),
            ("consent_signed_on", "date", None, None),
            ("consent_form_version", "text", None, None),
            ("enrolled_at", "datetime", None, None),
            ("status", "text", None, Some("CL.SUBJECT_STATUS")),
            ("status_effective_on", "date", None, None),
            ("status_reason", "text", None, None),
            ("randomized_in_error", "boolean", None, None),
            ("randomized_in_error_reason", "text", None, None),
            ("protocol_version", "text", None, None),
        ],
    );
    for f in &protocol.strata {
        subject.push(Item {
            oid: format!("IT.SUBJECT.STRATUM_{}", oid_part(&f.id)),
            name: format!("stratum {}", f.id),
            data_type: "text",
            unit: None,
            codelist: Some(format!("CL.STRATUM.{}", oid_part(&f.id))),
            source: Source::Stratum(f.id.clone()),
        });
    }
    out.insert(Kind::Subject, subject);
    out.insert(
        Kind::Randomization,
        fixed(
            "RANDOMIZATION",
            &[
                ("allocated_at", "datetime", None, None),
                ("arm_code", "text", None, Some("CL.ARM")),
                ("stratum", "text", None, None),
                ("position", "integer", None, None),
                ("allocation_parameters", "text", None, None),
            ],
        ),
    );
    out.insert(
        Kind::PlanAgent,
        fixed(
            "PLAN_AGENT",
            &[
                ("agent_id", "text", None, Some("CL.AGENT")),
                ("dose_level", "integer", None, None),
                ("discontinued", "boolean", None, None),
                ("discontinued_reason", "text", None, None),
            ],
        ),
    );
    out.insert(
        Kind::Cycle,
        fixed(
            "CYCLE",
            &[
                ("cycle_number", "integer", None, None),
                ("start_date", "date", None, None),
                ("height_cm", "float", Some("cm"), None),
                ("weight_kg", "float", Some("kg"), None),
                ("bsa_m2", "float", Some("m2"), None),
                ("anc_per_ul", "float", Some("/uL"), None),
                ("platelets_per_ul", "float", Some("/uL"), None),
                ("delay_days", "integer", Some("d"), None),
                ("protocol_version", "text", None, None),
            ],
        ),
    );
    out.insert(
        Kind::Dose,
        fixed(
            "DOSE",
            &[
                ("agent_id", "text", None, Some("CL.AGENT")),
                ("dose_level", "integer", None, None),
                ("protocol_dose", "float", None, None),
                ("basis", "text", None, None),
                ("calculated", "float", None, None),
                ("rounded", "float", None, None),
                ("unit", "text", None, None),
                ("formula", "text", None, None),
            ],
        ),
    );
    out.insert(
        Kind::Administration,
        fixed(
            "ADMINISTRATION",
            &[
                ("agent_id", "text", None, Some("CL.AGENT")),
                ("cycle_day", "integer", None, None),
                ("planned_on", "date", None, None),
                ("prescribed_dose", "float", None, None),
                ("unit", "text", None, None),
                ("status", "text", None, Some("CL.ADMINISTRATION_STATUS")),
                ("actual_dose", "float", None, None),
                ("started_at", "datetime", None, None),
                ("ended_at", "datetime", None, None),
                ("reason", "text", None, None),
                ("deviation_flagged", "boolean", None, None),
            ],
        ),
    );
    out.insert(
        Kind::Response,
        fixed(
            "RESPONSE",
            &[
                ("after_cycle", "integer", None, None),
                ("assessor", "text", None, Some("CL.ASSESSOR")),
                ("assessed_on", "date", None, None),
                ("protocol_version", "text", None, None),
                ("primary_mm", "float", Some("mm"), None),
                ("primary_avid", "boolean", None, None),
                ("primary_not_involved", "boolean", None, None),
                ("metastases_sum_mm", "float", Some("mm"), None),
                ("curie_score", "integer", None, None),
                ("curie_skeletal_score", "integer", None, None),
                ("new_lesions", "boolean", None, None),
                ("metastases_not_involved", "boolean", None, None),
                ("marrow_percent", "float", Some("%"), None),
                ("primary_response", "text", None, Some("CL.RESPONSE")),
                ("metastases_response", "text", None, Some("CL.RESPONSE")),
                ("marrow_response", "text", None, Some("CL.RESPONSE")),
                ("derived_overall", "text", None, Some("CL.RESPONSE")),
                ("overall", "text", None, Some("CL.RESPONSE")),
                ("override_reason", "text", None, None),
            ],
        ),
    );
    let mut ae = fixed(
        "AE",
        &[
            ("ctcae_term", "text", None, None),
            ("ctcae_version", "text", None, None),
            ("grade", "integer", None, None),
            ("onset_on", "date", None, None),
            ("site_aware_at", "datetime", None, None),
            ("resolved_on", "date", None, None),
            ("expected", "boolean", None, None),
            ("cycle_at_onset", "integer", None, None),
        ],
    );
    ae.push(Item {
        oid: "IT.AE.SERIOUSNESS".to_owned(),
        name: "seriousness".to_owned(),
        data_type: "text",
        unit: None,
        codelist: None,
        source: Source::Seriousness,
    });
    let agents: BTreeSet<&str> = protocol
        .regimens
        .iter()
        .flat_map(|r| &r.agents)
        .map(|a| a.id.as_str())
        .collect();
    for agent in agents {
        ae.push(Item {
            oid: format!("IT.AE.ATTRIBUTION_{}", oid_part(agent)),
            name: format!("attribution {agent}"),
            data_type: "text",
            unit: None,
            codelist: Some("CL.ATTRIBUTION".to_owned()),
            source: Source::Attribution(agent.to_owned()),
        });
    }
    out.insert(Kind::AdverseEvent, ae);
    out.insert(
        Kind::FollowUp,
        fixed(
            "FOLLOW_UP",
            &[
                ("last_contact_on", "date", None, None),
                ("vital_status", "text", None, Some("CL.VITAL_STATUS")),
                ("progression_on", "date", None, None),
                ("second_malignancy_on", "date", None, None),
            ],
        ),
    );
    out
}

/// A JSON scalar as an ODM value; `None` for null or absent.
fn scalar(value: Option<&Json>) -> Option<String> {
    match value? {
        Json::Null => None,
        Json::String(s) if s.is_empty() => None,
        Json::String(s) => Some(s.clone()),
        Json::Bool(b) => Some(b.to_string()),
        Json::Number(n) => Some(n.to_string()),
        other => Some(other.to_string()),
    }
}

fn value(record: &Json, source: &Source) -> Option<String> {
    let nested = |key: &str| -> Option<Json> { serde_json::from_str(record.get(key)?.as_str()?).ok() };
    match source {
        Source::Key(key) => scalar(record.get(*key)),
        Source::Stratum(factor) => record.get("strata")?.as_str()?.split('|').find_map(|pair| {
            pair.split_once('=')
                .filter(|(f, _)| f == factor)
                .map(|(_, v)| v.to_owned())
        }),
        Source::Screening(variable) => scalar(nested("values_json")?.get(variable)),
        Source::Attribution(agent) => scalar(nested("attributions")?.get(agent)),
        Source::Seriousness => {
            let list = nested("seriousness")?;
            let names: Vec<String> = list.as_array()?.iter().filter_map(|v| scalar(Some(v))).collect();
            Some(names.join("; "))
        }
    }
}

/// One record: subject, kind, study event repeat key, item group repeat key.
type Entity = (String, Kind, Option<String>, Option<String>);

/// A code list: OID, name, (coded value, decode) pairs.
type CodeListDef = (String, String, Vec<(String, String)>);

/// One ItemGroupData to write: where it goes, its values, and the entry it comes from.
#[derive(Debug, Clone)]
struct Data {
    subject: String,
    event_key: Option<String>,
    kind: Kind,
    group_key: Option<String>,
    insert: bool,
    values: Vec<(usize, Option<String>)>,
    entry: usize,
    /// Entries of the electronic signatures of this version of the record.
    signatures: Vec<usize>,
}

/// An administration as the dosing service stores it (the fields its audit log entries hold),
/// with `status` and `reason` in place of its own.
fn administration_json(a: &dpb::Administration, status: &str, reason: &str) -> Json {
    let date =
        |d: Option<&trialops_proto::common::v1::Date>| d.map(|d| format!("{:04}-{:02}-{:02}", d.year, d.month, d.day));
    let decimal = |d: Option<&trialops_proto::common::v1::Decimal>| d.map(|d| d.value.clone());
    serde_json::json!({
        "administration_id": a.administration_id,
        "subject_id": a.subject_id,
        "agent_id": a.agent_id,
        "cycle_number": a.cycle_number,
        "cycle_day": a.cycle_day,
        "planned_on": date(a.planned_on.as_ref()),
        "prescribed_dose": decimal(a.prescribed_dose.as_ref()),
        "unit": a.dose_unit,
        "status": status,
        "reason": reason,
        "deviation_flagged": false,
    })
}

/// The record(s) an entry holds: (kind, JSON of the record before, after). A discontinuation
/// also holds each dose it closed as not given.
fn records(entry: &Entry, administrations: &BTreeMap<String, dpb::Administration>) -> Vec<(Kind, Json, Json)> {
    let e = &entry.event;
    let parse = |s: &str| serde_json::from_str::<Json>(s).unwrap_or(Json::Null);
    let (old, new) = (parse(&e.old_value_json), parse(&e.new_value_json));
    let at = |json: &Json, path: &str| json.get(path).cloned().unwrap_or(Json::Null);
    match e.action.as_str() {
        "screening.recorded" => vec![(Kind::Screening, Json::Null, new)],
        "subject.enrolled" | "subject.status_changed" | "subject.corrected" | "subject.randomized_in_error" => {
            vec![(Kind::Subject, old, new)]
        }
        "subject.randomized" => vec![(Kind::Randomization, Json::Null, new)],
        "plan.dose_modified" => vec![(Kind::PlanAgent, old, at(&new, "agent"))],
        "plan.agent_discontinued" => {
            let closed = new
                .get("closed_administrations")
                .and_then(Json::as_array)
                .into_iter()
                .flatten()
                .filter_map(|id| administrations.get(id.as_str()?))
                .map(|a| {
                    (
                        Kind::Administration,
                        administration_json(a, "planned", ""),
                        administration_json(a, "not_given", &a.reason),
                    )
                });
            std::iter::once((Kind::PlanAgent, old, at(&new, "agent")))
                .chain(closed)
                .collect()
        }
        "cycle.started" => {
            let mut out = vec![(Kind::Cycle, Json::Null, at(&new, "cycle"))];
            if let Some(doses) = new.get("doses").and_then(Json::as_array) {
                out.extend(doses.iter().map(|d| (Kind::Dose, Json::Null, d.clone())));
            }
            out
        }
        "administration.recorded" | "administration.corrected" => vec![(Kind::Administration, old, new)],
        "assessment.recorded" | "assessment.recorded_with_override" => vec![(Kind::Response, Json::Null, new)],
        "assessment.rederived" => vec![(Kind::Response, Json::Null, new)],
        "adverse_event.recorded" | "adverse_event.updated" => {
            vec![(Kind::AdverseEvent, at(&old, "event"), at(&new, "event"))]
        }
        "follow_up.recorded" => vec![(Kind::FollowUp, Json::Null, new)],
        _ => Vec::new(),
    }
}

/// The ODM 1.3.2 document.
pub(crate) fn odm(input: &Input<'_>) -> io::Result<Vec<u8>> {
    let protocol = input.protocol;
    let items = items(protocol);
    let trial = protocol.trial.id.as_str();
    let mdv = format!("MDV.{trial}.ODM");
    let subjects: BTreeSet<&str> = input.subjects.iter().map(|s| s.subject_id.as_str()).collect();
    let screened: BTreeMap<(&str, &str), &str> = input
        .subjects
        .iter()
        .map(|s| ((s.site_code.as_str(), s.screening_id.as_str()), s.subject_id.as_str()))
        .collect();
    // The entry that created each cycle and each plan: the Insert of its administrations' and
    // agents' first state.
    let mut creators: BTreeMap<String, usize> = BTreeMap::new();
    for (i, entry) in input.entries.iter().enumerate() {
        let e = &entry.event;
        if e.action == "cycle.started" || e.action == "plan.created" {
            creators
                .entry(format!("{}:{}", e.entity_type, e.entity_id))
                .or_insert(i);
        }
    }

    let mut data: Vec<Data> = Vec::new();
    let mut seen: BTreeMap<Entity, Vec<Option<String>>> = BTreeMap::new();
    let mut assessed_after: BTreeMap<String, Option<String>> = BTreeMap::new();
    for (i, entry) in input.entries.iter().enumerate() {
        for (kind, old, new) in records(entry, &input.administrations) {
            let text = |key: &str| scalar(new.get(key));
            let subject = match kind {
                // A screening of this trial (entries written before they named their trial hold
                // it in the record) at the site, under the screening id, a subject came from.
                Kind::Screening if text("trial_id").is_some_and(|t| t != trial) => None,
                Kind::Screening => {
                    let site = text("site_code").unwrap_or_default();
                    let id = text("screening_id").unwrap_or_default();
                    screened.get(&(site.as_str(), id.as_str())).map(|s| (*s).to_owned())
                }
                _ => text("subject_id"),
            };
            let Some(subject) = subject.filter(|s| subjects.contains(s.as_str())) else {
                continue;
            };
            let (event_key, group_key) = match kind {
                Kind::Screening => (text("attempt"), None),
                Kind::Subject | Kind::Randomization => (None, None),
                Kind::PlanAgent => (None, text("agent_id")),
                Kind::Cycle => (text("cycle_number"), None),
                Kind::Dose => (text("cycle_number"), text("agent_id")),
                Kind::Administration => (text("cycle_number"), text("administration_id")),
                Kind::Response => (None, Some(entry.event.entity_id.clone())),
                Kind::AdverseEvent => (None, text("adverse_event_id")),
                Kind::FollowUp => (None, text("id")),
            };
            let event_key = match (kind, &group_key) {
                // A re-derivation holds the responses only: its assessment's cycle is kept from
                // the assessment's first record.
                (Kind::Response, Some(id)) => assessed_after
                    .entry(id.clone())
                    .or_insert_with(|| text("after_cycle"))
                    .clone(),
                _ => event_key,
            };
            let fields = &items[&kind];
            let key = (subject.clone(), kind, event_key.clone(), group_key.clone());
            let current: Vec<Option<String>> = fields.iter().map(|f| value(&new, &f.source)).collect();
            let previous = match seen.get(&key) {
                Some(previous) => Some(previous.clone()),
                None if !old.is_null() => {
                    // The record existed before this entry (an administration planned at its
                    // cycle's start, a plan agent at the plan's creation): its first state.
                    let before: Vec<Option<String>> = fields.iter().map(|f| value(&old, &f.source)).collect();
                    let creator = match kind {
                        Kind::Administration => event_key
                            .as_ref()
                            .and_then(|c| creators.get(&format!("cycle:{subject}|{c}"))),
                        Kind::PlanAgent => creators.get(&format!("plan:{subject}")),
                        _ => None,
                    };
                    data.push(Data {
                        subject: subject.clone(),
                        event_key: event_key.clone(),
                        kind,
                        group_key: group_key.clone(),
                        insert: true,
                        values: before
                            .iter()
                            .cloned()
                            .enumerate()
                            .filter(|(_, v)| v.is_some())
                            .collect(),
                        entry: creator.copied().unwrap_or(i),
                        signatures: Vec::new(),
                    });
                    Some(before)
                }
                None => None,
            };
            let values: Vec<(usize, Option<String>)> = match &previous {
                None => current
                    .iter()
                    .cloned()
                    .enumerate()
                    .filter(|(_, v)| v.is_some())
                    .collect(),
                Some(before) => current
                    .iter()
                    .enumerate()
                    .filter(|(n, v)| {
                        // A re-derivation sends only what it holds: absent fields stay.
                        let sent = match &fields[*n].source {
                            Source::Key(k) => new.get(*k).is_some(),
                            _ => true,
                        };
                        sent && before.get(*n) != Some(*v)
                    })
                    .map(|(n, v)| (n, v.clone()))
                    .collect(),
            };
            let mut state = previous.clone().unwrap_or_else(|| vec![None; fields.len()]);
            for (n, v) in &values {
                state[*n] = v.clone();
            }
            seen.insert(key, state);
            data.push(Data {
                subject,
                event_key,
                kind,
                group_key,
                insert: previous.is_none(),
                values,
                entry: i,
                signatures: Vec::new(),
            });
        }
    }
    attach_signatures(input, &mut data);

    let created = input.created.to_rfc3339_opts(SecondsFormat::Micros, true);
    let file_oid = format!("{trial}.ODM.{}", input.created.format("%Y%m%dT%H%M%S"));
    document(|w| {
        w.create_element("ODM")
            .with_attributes([
                ("xmlns", ODM_NS),
                ("ODMVersion", "1.3.2"),
                ("FileType", "Transactional"),
                ("Granularity", "All"),
                ("FileOID", file_oid.as_str()),
                ("CreationDateTime", created.as_str()),
                ("Originator", "trialops"),
                ("SourceSystem", "trialops"),
                ("SourceSystemVersion", env!("CARGO_PKG_VERSION")),
                (
                    "Description",
                    "Study metadata, sites and staff, and every subject's clinical data with its audit trail",
                ),
            ])
            .write_inner_content(|w| {
                study(w, protocol, &mdv, &items)?;
                let used: BTreeSet<usize> = data
                    .iter()
                    .flat_map(|d| std::iter::once(d.entry).chain(d.signatures.iter().copied()))
                    .collect();
                admin(w, input, &used, trial, &mdv)?;
                clinical(w, input, trial, &mdv, &items, &data)
            })?;
        Ok(())
    })
}

/// The audit log entity and kind of data a signed record of `record_type` is (the record kinds
/// the services sign).
fn signed_entity(record_type: &str) -> Option<(&'static str, &'static str, Kind)> {
    Some(match record_type {
        "screening" => ("enrollment", "screening", Kind::Screening),
        "end_of_treatment" => ("enrollment", "subject", Kind::Subject),
        "adverse_event" => ("outcomes", "adverse_event", Kind::AdverseEvent),
        "assessment" => ("outcomes", "assessment", Kind::Response),
        _ => return None,
    })
}

/// Each electronic signature (a `record.signed` entry) joins the version of the record it
/// signed: the record's last element written from an earlier entry of the same service's log.
fn attach_signatures(input: &Input<'_>, data: &mut [Data]) {
    for (i, entry) in input.entries.iter().enumerate() {
        if entry.event.action != "record.signed" {
            continue;
        }
        let signed: Json = serde_json::from_str(&entry.event.new_value_json).unwrap_or(Json::Null);
        let text = |key: &str| signed.get(key).and_then(Json::as_str).unwrap_or_default();
        let Some((service, entity_type, kind)) = signed_entity(text("record_type")) else {
            continue;
        };
        let record_id = text("record_id");
        let version = data
            .iter_mut()
            .filter(|d| d.kind == kind && d.entry < i)
            .filter(|d| {
                let source = &input.entries[d.entry];
                source.service == entry.service
                    && source.service == service
                    && source.event.entity_type == entity_type
                    && source.event.entity_id == record_id
            })
            .max_by_key(|d| d.entry);
        if let Some(version) = version {
            version.signatures.push(i);
        }
    }
}

/// The SignatureDef OID of a stored meaning ("approved": "SD.APPROVED").
fn signature_oid(meaning: &str) -> String {
    format!("SD.{}", oid_part(&meaning.to_uppercase()))
}

/// A signature entry's `Signature` element: who (with their site), which meaning, when.
fn signature(w: &mut W, entry: &Entry) -> io::Result<()> {
    let signed: Json = serde_json::from_str(&entry.event.new_value_json).unwrap_or(Json::Null);
    let field = |key: &str| signed.get(key).and_then(Json::as_str).unwrap_or_default().to_owned();
    let when = DateTime::parse_from_rfc3339(&field("signed_at"))
        .map(|t| t.with_timezone(&Utc).to_rfc3339_opts(SecondsFormat::Micros, true))
        .unwrap_or_default();
    w.create_element("Signature").write_inner_content(|w| {
        w.create_element("UserRef")
            .with_attribute(("UserOID", user_oid(&field("signer")).as_str()))
            .write_empty()?;
        w.create_element("LocationRef")
            .with_attribute(("LocationOID", location_oid(&field("signer_site")).as_str()))
            .write_empty()?;
        w.create_element("SignatureRef")
            .with_attribute(("SignatureOID", signature_oid(&field("meaning")).as_str()))
            .write_empty()?;
        text(w, "DateTimeStamp", &when)
    })?;
    Ok(())
}

fn unit_oid(unit: &str) -> String {
    let spelled = unit.replace('%', "PERCENT").replace('/', "_PER_");
    format!("MU.{}", oid_part(spelled.trim_start_matches('_')))
}

fn codelists(protocol: &Protocol) -> Vec<CodeListDef> {
    let pairs = |items: &[(&str, &str)]| -> Vec<(String, String)> {
        items.iter().map(|(c, d)| ((*c).to_owned(), (*d).to_owned())).collect()
    };
    let mut out = vec![
        (
            "CL.ARM".to_owned(),
            "Arm".to_owned(),
            protocol.arms.iter().map(|a| (a.code.clone(), a.name.clone())).collect(),
        ),
        (
            "CL.SUBJECT_STATUS".to_owned(),
            "Subject status".to_owned(),
            pairs(&[
                ("on_protocol_therapy", "On protocol therapy"),
                ("off_protocol_therapy", "Off protocol therapy"),
                ("off_study", "Off study"),
                ("withdrawn", "Consent withdrawn"),
            ]),
        ),
        (
            "CL.AGENT".to_owned(),
            "Agent".to_owned(),
            protocol
                .regimens
                .iter()
                .flat_map(|r| &r.agents)
                .map(|a| (a.id.clone(), a.name.clone()))
                .collect::<BTreeMap<_, _>>()
                .into_iter()
                .collect(),
        ),
        (
            "CL.ADMINISTRATION_STATUS".to_owned(),
            "Administration status".to_owned(),
            pairs(&[
                ("planned", "Planned"),
                ("given", "Given in full"),
                ("partially_given", "Partly given"),
                ("held", "Held"),
                ("not_given", "Not given"),
            ]),
        ),
        (
            "CL.ASSESSOR".to_owned(),
            "Assessor".to_owned(),
            pairs(&[("site", "Site investigator"), ("central_review", "Central review")]),
        ),
        (
            "CL.RESPONSE".to_owned(),
            "INRC 2017 response".to_owned(),
            pairs(&[
                ("baseline", "Baseline (nothing derived)"),
                ("cr", "Complete response"),
                ("pr", "Partial response"),
                ("mr", "Minor response"),
                ("sd", "Stable disease"),
                ("pd", "Progressive disease"),
                ("md", "Minimal disease"),
                ("not_involved", "Not involved"),
            ]),
        ),
        (
            "CL.ATTRIBUTION".to_owned(),
            "Attribution".to_owned(),
            pairs(&[
                ("unrelated", "Unrelated"),
                ("unlikely", "Unlikely"),
                ("possible", "Possible"),
                ("probable", "Probable"),
                ("definite", "Definite"),
            ]),
        ),
        (
            "CL.VITAL_STATUS".to_owned(),
            "Vital status".to_owned(),
            pairs(&[("alive", "Alive"), ("dead", "Dead")]),
        ),
    ];
    for f in &protocol.strata {
        out.push((
            format!("CL.STRATUM.{}", oid_part(&f.id)),
            f.description.clone(),
            f.values.iter().map(|v| (v.clone(), v.replace('_', " "))).collect(),
        ));
    }
    for v in protocol.variables.iter().filter(|v| v.kind == VariableKind::Choice) {
        out.push((
            format!("CL.SCREENING.{}", oid_part(&v.id)),
            v.description.clone(),
            v.allowed.iter().map(|a| (a.clone(), a.replace('_', " "))).collect(),
        ));
    }
    out
}

fn study(w: &mut W, protocol: &Protocol, mdv: &str, items: &BTreeMap<Kind, Vec<Item>>) -> io::Result<()> {
    let units: BTreeSet<String> = items.values().flatten().filter_map(|i| i.unit.clone()).collect();
    w.create_element("Study")
        .with_attribute(("OID", protocol.trial.id.as_str()))
        .write_inner_content(|w| {
            w.create_element("GlobalVariables").write_inner_content(|w| {
                text(w, "StudyName", &protocol.trial.id)?;
                text(w, "StudyDescription", &protocol.trial.title)?;
                text(w, "ProtocolName", &protocol.trial.registry_id)
            })?;
            w.create_element("BasicDefinitions").write_inner_content(|w| {
                for unit in &units {
                    w.create_element("MeasurementUnit")
                        .with_attributes([("OID", unit_oid(unit).as_str()), ("Name", unit.as_str())])
                        .write_inner_content(|w| translated(w, "Symbol", unit))?;
                }
                Ok(())
            })?;
            let name = format!("{} protocol {}", protocol.trial.id, protocol.trial.protocol_version);
            w.create_element("MetaDataVersion")
                .with_attributes([("OID", mdv), ("Name", name.as_str())])
                .write_inner_content(|w| metadata(w, protocol, items))?;
            Ok(())
        })?;
    Ok(())
}

fn metadata(w: &mut W, protocol: &Protocol, items: &BTreeMap<Kind, Vec<Item>>) -> io::Result<()> {
    w.create_element("Protocol").write_inner_content(|w| {
        translated(w, "Description", &protocol.trial.title)?;
        for (n, (oid, ..)) in EVENTS.iter().enumerate() {
            let order = (n + 1).to_string();
            w.create_element("StudyEventRef")
                .with_attributes([
                    ("StudyEventOID", *oid),
                    ("OrderNumber", order.as_str()),
                    ("Mandatory", if *oid == "SE.ENROLLMENT" { "Yes" } else { "No" }),
                ])
                .write_empty()?;
        }
        Ok(())
    })?;
    for (oid, name, repeating, kind) in EVENTS {
        w.create_element("StudyEventDef")
            .with_attributes([
                ("OID", oid),
                ("Name", name),
                ("Repeating", if repeating { "Yes" } else { "No" }),
                ("Type", kind),
            ])
            .write_inner_content(|w| {
                for form in GROUPS
                    .iter()
                    .filter(|g| g.3 == oid)
                    .map(|g| g.4)
                    .collect::<BTreeSet<_>>()
                {
                    w.create_element("FormRef")
                        .with_attributes([("FormOID", form), ("Mandatory", "Yes")])
                        .write_empty()?;
                }
                Ok(())
            })?;
    }
    for (oid, name) in FORMS {
        w.create_element("FormDef")
            .with_attributes([("OID", oid), ("Name", name), ("Repeating", "No")])
            .write_inner_content(|w| {
                for g in GROUPS.iter().filter(|g| g.4 == oid) {
                    w.create_element("ItemGroupRef")
                        .with_attributes([("ItemGroupOID", g.1), ("Mandatory", "No")])
                        .write_empty()?;
                }
                Ok(())
            })?;
    }
    for (kind, oid, name, _, _, repeating) in GROUPS {
        w.create_element("ItemGroupDef")
            .with_attributes([
                ("OID", oid),
                ("Name", name),
                ("Repeating", if repeating { "Yes" } else { "No" }),
            ])
            .write_inner_content(|w| {
                for (n, item) in items[&kind].iter().enumerate() {
                    let order = (n + 1).to_string();
                    w.create_element("ItemRef")
                        .with_attributes([
                            ("ItemOID", item.oid.as_str()),
                            ("OrderNumber", order.as_str()),
                            ("Mandatory", "No"),
                        ])
                        .write_empty()?;
                }
                Ok(())
            })?;
    }
    for item in items.values().flatten() {
        w.create_element("ItemDef")
            .with_attributes([
                ("OID", item.oid.as_str()),
                ("Name", item.name.as_str()),
                ("DataType", item.data_type),
            ])
            .write_inner_content(|w| {
                if let Some(unit) = &item.unit {
                    w.create_element("MeasurementUnitRef")
                        .with_attribute(("MeasurementUnitOID", unit_oid(unit).as_str()))
                        .write_empty()?;
                }
                if let Some(cl) = &item.codelist {
                    w.create_element("CodeListRef")
                        .with_attribute(("CodeListOID", cl.as_str()))
                        .write_empty()?;
                }
                Ok(())
            })?;
    }
    for (oid, name, terms) in codelists(protocol) {
        w.create_element("CodeList")
            .with_attributes([("OID", oid.as_str()), ("Name", name.as_str()), ("DataType", "text")])
            .write_inner_content(|w| {
                for (code, decode) in &terms {
                    w.create_element("CodeListItem")
                        .with_attribute(("CodedValue", code.as_str()))
                        .write_inner_content(|w| translated(w, "Decode", decode))?;
                }
                Ok(())
            })?;
    }
    Ok(())
}

fn user_oid(actor: &str) -> String {
    format!("USR.{}", oid_part(actor))
}

fn location_oid(site: &str) -> String {
    if site.is_empty() {
        "LOC.SPONSOR".to_owned()
    } else {
        format!("LOC.{}", oid_part(site))
    }
}

/// Sites, the sponsor location, and the staff whose entries the file uses (`used`).
fn admin(w: &mut W, input: &Input<'_>, used: &BTreeSet<usize>, trial: &str, mdv: &str) -> io::Result<()> {
    let mut users: BTreeMap<String, (&str, &str)> = BTreeMap::new();
    // Signers' printed names (21 CFR 11.50) and the meanings signed, from the signature entries.
    let mut printed: BTreeMap<String, String> = BTreeMap::new();
    let mut meanings: BTreeSet<String> = BTreeSet::new();
    for e in used.iter().filter_map(|i| input.entries.get(*i)).map(|e| &e.event) {
        users
            .entry(user_oid(&e.actor))
            .or_insert((e.actor.as_str(), e.actor_role.as_str()));
        if e.action == "record.signed" {
            let signed: Json = serde_json::from_str(&e.new_value_json).unwrap_or(Json::Null);
            let field = |key: &str| signed.get(key).and_then(Json::as_str).unwrap_or_default().to_owned();
            printed.insert(user_oid(&e.actor), field("printed_name"));
            meanings.insert(field("meaning"));
        }
    }
    let registered: BTreeMap<&str, &epb::Site> = input.sites.iter().map(|s| (s.site_code.as_str(), s)).collect();
    let mut locations: BTreeMap<String, (String, &'static str, String)> = BTreeMap::new();
    let since = |s: Option<&epb::Site>| {
        s.and_then(|s| s.registered_at.as_ref())
            .and_then(|t| DateTime::from_timestamp(t.seconds, 0))
            .map_or_else(|| "1900-01-01".to_owned(), |t| t.format("%Y-%m-%d").to_string())
    };
    locations.insert(
        location_oid(""),
        (
            "Sponsor and central functions".to_owned(),
            "Sponsor",
            "1900-01-01".to_owned(),
        ),
    );
    let sites_used = input
        .sites
        .iter()
        .map(|s| s.site_code.as_str())
        .chain(
            used.iter()
                .filter_map(|i| input.entries.get(*i))
                .map(|e| e.event.actor_site.as_str()),
        )
        .filter(|s| !s.is_empty());
    for site in sites_used {
        let known = registered.get(site).copied();
        locations.entry(location_oid(site)).or_insert((
            known.map_or_else(|| site.to_owned(), |s| format!("{} ({})", s.name, s.site_code)),
            "Site",
            since(known),
        ));
    }
    w.create_element("AdminData")
        .with_attribute(("StudyOID", trial))
        .write_inner_content(|w| {
            for (oid, (actor, role)) in &users {
                w.create_element("User")
                    .with_attributes([
                        ("OID", oid.as_str()),
                        (
                            "UserType",
                            if *role == "investigator" {
                                "Investigator"
                            } else {
                                "Other"
                            },
                        ),
                    ])
                    .write_inner_content(|w| {
                        text(w, "LoginName", actor)?;
                        text(w, "DisplayName", &format!("{actor} ({role})"))?;
                        match printed.get(oid) {
                            Some(name) => text(w, "FullName", name),
                            None => Ok(()),
                        }
                    })?;
            }
            for (oid, (name, kind, since)) in &locations {
                w.create_element("Location")
                    .with_attributes([("OID", oid.as_str()), ("Name", name.as_str()), ("LocationType", *kind)])
                    .write_inner_content(|w| {
                        w.create_element("MetaDataVersionRef")
                            .with_attributes([
                                ("StudyOID", trial),
                                ("MetaDataVersionOID", mdv),
                                ("EffectiveDate", since.as_str()),
                            ])
                            .write_empty()?;
                        Ok(())
                    })?;
            }
            for meaning in &meanings {
                let words = Meaning::parse(meaning).map_or_else(|| meaning.clone(), |m| m.words().to_owned());
                w.create_element("SignatureDef")
                    .with_attributes([("OID", signature_oid(meaning).as_str()), ("Methodology", "Electronic")])
                    .write_inner_content(|w| {
                        text(w, "Meaning", &words)?;
                        text(
                            w,
                            "LegalReason",
                            "Electronic signature under 21 CFR Part 11, binding as a handwritten signature: \
                             the signer authenticated within the service's allowed minutes before signing",
                        )
                    })?;
            }
            Ok(())
        })?;
    Ok(())
}

fn audit_record(w: &mut W, entry: &Entry) -> io::Result<()> {
    let e = &entry.event;
    let when = e
        .occurred_at
        .as_ref()
        .and_then(|t| DateTime::from_timestamp(t.seconds, u32::try_from(t.nanos).unwrap_or(0)))
        .map_or_else(String::new, |t| t.to_rfc3339_opts(SecondsFormat::Micros, true));
    w.create_element("AuditRecord").write_inner_content(|w| {
        w.create_element("UserRef")
            .with_attribute(("UserOID", user_oid(&e.actor).as_str()))
            .write_empty()?;
        w.create_element("LocationRef")
            .with_attribute(("LocationOID", location_oid(&e.actor_site).as_str()))
            .write_empty()?;
        text(w, "DateTimeStamp", &when)?;
        if !e.reason.is_empty() {
            text(w, "ReasonForChange", &e.reason)?;
        }
        text(
            w,
            "SourceID",
            &format!("{} audit log entry {} ({})", entry.service, e.sequence, e.action),
        )
    })?;
    Ok(())
}

fn clinical(
    w: &mut W,
    input: &Input<'_>,
    trial: &str,
    mdv: &str,
    items: &BTreeMap<Kind, Vec<Item>>,
    data: &[Data],
) -> io::Result<()> {
    let event_rank = |oid: &str| EVENTS.iter().position(|e| e.0 == oid).unwrap_or(usize::MAX);
    let number = |key: &Option<String>| key.as_deref().and_then(|k| k.parse::<i64>().ok()).unwrap_or(-1);
    w.create_element("ClinicalData")
        .with_attributes([("StudyOID", trial), ("MetaDataVersionOID", mdv)])
        .write_inner_content(|w| {
            let by_subject: BTreeMap<&str, Vec<&Data>> = data.iter().fold(BTreeMap::new(), |mut m, d| {
                m.entry(d.subject.as_str()).or_insert_with(Vec::new).push(d);
                m
            });
            for subject in &input.subjects {
                let Some(mine) = by_subject.get(subject.subject_id.as_str()) else {
                    continue;
                };
                // Study events in protocol order (repeating ones by number), each entity's
                // elements in the order of the log.
                let mut events: BTreeMap<(usize, i64, Option<String>), Vec<&Data>> = BTreeMap::new();
                for d in mine {
                    let se = group(d.kind).3;
                    events
                        .entry((event_rank(se), number(&d.event_key), d.event_key.clone()))
                        .or_default()
                        .push(d);
                }
                let first = mine.iter().find(|d| d.kind == Kind::Subject);
                w.create_element("SubjectData")
                    .with_attributes([
                        ("SubjectKey", subject.subject_id.as_str()),
                        ("TransactionType", "Insert"),
                    ])
                    .write_inner_content(|w| {
                        if let Some(first) = first {
                            audit_record(w, &input.entries[first.entry])?;
                        }
                        w.create_element("SiteRef")
                            .with_attribute(("LocationOID", location_oid(&subject.site_code).as_str()))
                            .write_empty()?;
                        for ((rank, _, key), list) in &events {
                            let se = EVENTS[*rank].0;
                            let mut e = w.create_element("StudyEventData").with_attribute(("StudyEventOID", se));
                            if let Some(key) = key {
                                e = e.with_attribute(("StudyEventRepeatKey", key.as_str()));
                            }
                            e.with_attribute(("TransactionType", "Insert"))
                                .write_inner_content(|w| {
                                    let forms: BTreeSet<&str> = list.iter().map(|d| group(d.kind).4).collect();
                                    for form in forms {
                                        w.create_element("FormData")
                                            .with_attributes([("FormOID", form), ("TransactionType", "Insert")])
                                            .write_inner_content(|w| {
                                                for d in list.iter().filter(|d| group(d.kind).4 == form) {
                                                    item_group(w, input, items, d)?;
                                                }
                                                Ok(())
                                            })?;
                                    }
                                    Ok(())
                                })?;
                        }
                        Ok(())
                    })?;
            }
            Ok(())
        })?;
    Ok(())
}

fn item_group(w: &mut W, input: &Input<'_>, items: &BTreeMap<Kind, Vec<Item>>, d: &Data) -> io::Result<()> {
    item_group_data(w, input, items, d)?;
    // Each signature of this version: the record in context (no items change), with the
    // AuditRecord of the signing and the Signature.
    let (_, oid, ..) = group(d.kind);
    for s in &d.signatures {
        let mut e = w.create_element("ItemGroupData").with_attribute(("ItemGroupOID", oid));
        if let Some(key) = &d.group_key {
            e = e.with_attribute(("ItemGroupRepeatKey", key.as_str()));
        }
        e.with_attribute(("TransactionType", "Context"))
            .write_inner_content(|w| {
                audit_record(w, &input.entries[*s])?;
                signature(w, &input.entries[*s])
            })?;
    }
    Ok(())
}

fn item_group_data(w: &mut W, input: &Input<'_>, items: &BTreeMap<Kind, Vec<Item>>, d: &Data) -> io::Result<()> {
    let (_, oid, ..) = group(d.kind);
    let mut e = w.create_element("ItemGroupData").with_attribute(("ItemGroupOID", oid));
    if let Some(key) = &d.group_key {
        e = e.with_attribute(("ItemGroupRepeatKey", key.as_str()));
    }
    let fields = &items[&d.kind];
    e.with_attribute(("TransactionType", if d.insert { "Insert" } else { "Update" }))
        .write_inner_content(|w| {
            audit_record(w, &input.entries[d.entry])?;
            for (n, value) in &d.values {
                let item = w
                    .create_element("ItemData")
                    .with_attribute(("ItemOID", fields[*n].oid.as_str()));
                match value {
                    Some(v) => item.with_attribute(("Value", v.as_str())).write_empty()?,
                    None => item.with_attribute(("IsNull", "Yes")).write_empty()?,
                };
            }
            Ok(())
        })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn entry(sequence: i64, trial: &str, action: &str, entity: &str, new: Json) -> Entry {
        Entry {
            service: "enrollment",
            event: AuditEvent {
                sequence,
                occurred_at: Some(prost_types::Timestamp {
                    seconds: 1_700_000_000 + sequence,
                    nanos: 0,
                }),
                actor: format!("coordinator-{sequence}"),
                actor_role: "site_coordinator".into(),
                actor_site: "COG-101".into(),
                action: action.into(),
                entity_type: "subject".into(),
                entity_id: entity.into(),
                new_value_json: new.to_string(),
                trial_id: trial.into(),
                ..Default::default()
            },
        }
    }

    fn subject(id: &str, trial: &str, status: &str) -> Json {
        serde_json::json!({
            "subject_id": id, "trial_id": trial, "site_code": "COG-101", "arm_code": "A", "status": status
        })
    }

    /// Entries written before entries named their trial still carry the trial's records; an
    /// entry of another trial's subject, and its author, stay out.
    #[test]
    fn entries_without_a_trial_are_kept_for_the_trials_subjects_only() {
        let protocol = trialops_domain::protocol::anbl1221().unwrap();
        let input = Input {
            protocol: &protocol,
            sites: Vec::new(),
            subjects: vec![epb::Subject {
                subject_id: "ANBL1221-0001".into(),
                site_code: "COG-101".into(),
                ..Default::default()
            }],
            entries: vec![
                entry(
                    1,
                    "",
                    "subject.enrolled",
                    "ANBL1221-0001",
                    subject("ANBL1221-0001", "ANBL1221", "on_protocol_therapy"),
                ),
                entry(
                    2,
                    "",
                    "subject.enrolled",
                    "OTHER-0001",
                    subject("OTHER-0001", "OTHER", "on_protocol_therapy"),
                ),
                entry(
                    3,
                    "ANBL1221",
                    "subject.status_changed",
                    "ANBL1221-0001",
                    subject("ANBL1221-0001", "ANBL1221", "off_study"),
                ),
            ],
            administrations: BTreeMap::new(),
            created: DateTime::from_timestamp(1_800_000_000, 0).unwrap(),
        };
        let odm = String::from_utf8(odm(&input).unwrap()).unwrap();
        assert_eq!(odm.matches("<SubjectData ").count(), 1);
        assert!(!odm.contains("OTHER-0001"));
        assert!(odm.contains("USR.COORDINATOR_1") && odm.contains("USR.COORDINATOR_3"));
        assert!(
            !odm.contains("USR.COORDINATOR_2"),
            "the other trial's author is not listed"
        );
        // The legacy entry is the Insert, the later one the Update holding only the new status.
        let insert = odm.find("TransactionType=\"Insert\">\n      <AuditRecord>").unwrap();
        let update = odm.find("TransactionType=\"Update\"").unwrap();
        assert!(insert < update);
        assert!(odm[update..].contains("\"IT.SUBJECT.STATUS\" Value=\"off_study\""));
        assert!(!odm[update..].contains("IT.SUBJECT.ARM_CODE"));
    }
}
