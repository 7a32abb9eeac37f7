//! Outcomes' FHIR R4 resources: `AdverseEvent` (CTCAE term and grade, seriousness, causality per
//! agent, outcome) and `Observation` (an INRC 2017 response assessment: the overall response with
//! the primary tumour, metastases and bone marrow responses as components), and `Provenance` (an
//! electronic signature of either, ids `ae.{adverse event id}.{n}` and `ra.{assessment id}.{n}`
//! for the record's n-th signature). Each read is one of
//! the service's own gRPC reads, made with the caller's token, so roles and sites apply as they
//! do there (a central reviewer reads assessments, not adverse events).

use serde_json::{Value, json};
use trialops_platform::server::fhir::{self, Outcome, Params, Read, ResourceType};
use trialops_proto::common::v1::Date;
use trialops_proto::outcomes::v1 as pb;
use trialops_proto::outcomes::v1::outcomes_service_client::OutcomesServiceClient;

/// Code system of INRC 2017 responses (CR, PR, MR, SD, PD, MD, NI).
const INRC_SYSTEM: &str = "urn:trialops:inrc-2017-response";
/// Code system of trialops' own observation codes.
const OBSERVATION_SYSTEM: &str = "urn:trialops:observation";
const SERIOUSNESS: &str = "http://terminology.hl7.org/CodeSystem/adverse-event-seriousness";
const SEVERITY: &str = "http://terminology.hl7.org/CodeSystem/adverse-event-severity";
const OUTCOME: &str = "http://terminology.hl7.org/CodeSystem/adverse-event-outcome";
const CAUSALITY: &str = "http://terminology.hl7.org/CodeSystem/adverse-event-causality-assess";
const CATEGORY: &str = "http://terminology.hl7.org/CodeSystem/observation-category";

/// The FHIR resources of the outcomes service.
pub struct OutcomesFhir;

fn client(read: &Read) -> OutcomesServiceClient<fhir::Loopback> {
    OutcomesServiceClient::new(read.grpc.clone())
}

fn date(d: Option<&Date>) -> Option<String> {
    d.filter(|d| d.year > 0)
        .map(|d| format!("{:04}-{:02}-{:02}", d.year, d.month, d.day))
}

fn instant(t: Option<&prost_types::Timestamp>) -> Option<String> {
    t.and_then(|t| chrono::DateTime::from_timestamp(t.seconds, t.nanos.max(0) as u32))
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
}

fn coded(system: &str, code: &str, text: &str) -> Value {
    json!({ "coding": [{ "system": system, "code": code }], "text": text })
}

/// R4 adverse-event-severity of a CTCAE grade: 1 mild, 2 moderate, 3 to 5 severe (the exact
/// grade is the severity's text).
fn severity(grade: i32) -> &'static str {
    match grade {
        ..=1 => "mild",
        2 => "moderate",
        _ => "severe",
    }
}

/// WHO-UMC causality (the R4 example code system) of an attribution; "unrelated" has none.
fn causality(attribution: i32) -> (Option<&'static str>, String) {
    let a = pb::Attribution::try_from(attribution).unwrap_or(pb::Attribution::Unspecified);
    let code = match a {
        pb::Attribution::Definite => Some("Certain"),
        pb::Attribution::Probable => Some("Probably-Likely"),
        pb::Attribution::Possible => Some("Possible"),
        pb::Attribution::Unlikely => Some("Unlikely"),
        pb::Attribution::Unrelated | pb::Attribution::Unspecified => None,
    };
    let text = a.as_str_name().trim_start_matches("ATTRIBUTION_").to_lowercase();
    (code, text)
}

fn adverse_event(e: &pb::AdverseEvent) -> Value {
    let serious = !e.seriousness.is_empty();
    let criteria: Vec<String> = e
        .seriousness
        .iter()
        .filter_map(|s| pb::Seriousness::try_from(*s).ok())
        .map(|s| {
            s.as_str_name()
                .trim_start_matches("SERIOUSNESS_")
                .to_lowercase()
                .replace('_', " ")
        })
        .collect();
    let mut seriousness_text = if serious {
        "serious".to_owned()
    } else {
        "non-serious".to_owned()
    };
    if !criteria.is_empty() {
        seriousness_text = format!("serious: {}", criteria.join(", "));
    }
    let outcome = match (e.grade, date(e.resolved_on.as_ref())) {
        (5, _) => "fatal",
        (_, Some(_)) => "resolved",
        _ => "ongoing",
    };
    let suspects: Vec<Value> = e
        .attributions
        .iter()
        .map(|a| {
            let (code, text) = causality(a.attribution);
            let assessment = match code {
                Some(code) => coded(CAUSALITY, code, &text),
                None => json!({ "text": text }),
            };
            json!({ "instance": { "display": a.agent_id }, "causality": [{ "assessment": assessment }] })
        })
        .collect();
    let mut resource = json!({
        "resourceType": "AdverseEvent",
        "id": e.adverse_event_id,
        "actuality": "actual",
        "event": { "text": e.ctcae_term },
        "subject": fhir::subject_reference(&e.subject_id),
        "seriousness": coded(SERIOUSNESS, if serious { "serious" } else { "non-serious" }, &seriousness_text),
        "severity": coded(SEVERITY, severity(e.grade), &format!("CTCAE v{} grade {}", e.ctcae_version, e.grade)),
        "outcome": coded(OUTCOME, outcome, outcome),
    });
    if let Some(onset) = date(e.onset_on.as_ref()) {
        resource["date"] = json!(onset);
    }
    if let Some(aware) = instant(e.site_aware_at.as_ref()) {
        resource["detected"] = json!(aware);
    }
    if !suspects.is_empty() {
        resource["suspectEntity"] = json!(suspects);
    }
    resource
}

fn response(value: i32) -> Option<(String, String)> {
    let r = pb::Response::try_from(value).ok()?;
    let (code, text) = match r {
        pb::Response::Unspecified => return None,
        pb::Response::Cr => ("CR", "complete response"),
        pb::Response::Pr => ("PR", "partial response"),
        pb::Response::Mr => ("MR", "minor response"),
        pb::Response::Sd => ("SD", "stable disease"),
        pb::Response::Pd => ("PD", "progressive disease"),
        pb::Response::Md => ("MD", "minimal disease"),
        pb::Response::NotInvolved => ("NI", "not involved"),
    };
    Some((code.to_owned(), text.to_owned()))
}

fn observation(a: &pb::ResponseAssessment) -> Value {
    let value = |r: i32| response(r).map(|(code, text)| coded(INRC_SYSTEM, &code, &text));
    let assessor = match pb::Assessor::try_from(a.assessor) {
        Ok(pb::Assessor::CentralReview) => "central review",
        _ => "site investigator",
    };
    let mut resource = json!({
        "resourceType": "Observation",
        "id": a.assessment_id,
        "status": "final",
        "category": [coded(CATEGORY, "exam", "exam")],
        "code": coded(OBSERVATION_SYSTEM, "inrc-overall-response", "INRC 2017 overall response"),
        "subject": fhir::subject_reference(&a.subject_id),
        "performer": [{ "display": assessor }],
        "method": { "text": format!("INRC 2017, after cycle {}", a.after_cycle) },
    });
    if let Some(on) = date(a.assessed_on.as_ref()) {
        resource["effectiveDateTime"] = json!(on);
    }
    match value(a.overall_response) {
        Some(overall) => resource["valueCodeableConcept"] = overall,
        None => resource["dataAbsentReason"] = json!({ "text": "no overall response (baseline)" }),
    }
    let components: Vec<Value> = [
        (
            "inrc-primary-tumour-response",
            "primary tumour response",
            a.primary_tumour_response,
        ),
        ("inrc-metastases-response", "metastases response", a.metastases_response),
        (
            "inrc-bone-marrow-response",
            "bone marrow response",
            a.bone_marrow_response,
        ),
    ]
    .into_iter()
    .filter_map(|(code, text, r)| {
        value(r).map(|v| json!({ "code": coded(OBSERVATION_SYSTEM, code, text), "valueCodeableConcept": v }))
    })
    .collect();
    if !components.is_empty() {
        resource["component"] = json!(components);
    }
    if !a.override_reason.is_empty() {
        resource["note"] = json!([{ "text": format!("overall response overridden: {}", a.override_reason) }]);
    }
    resource
}

/// The signatures of an adverse event or an assessment (`kind` "AdverseEvent" or "Observation"),
/// read as the caller, each as a Provenance.
async fn signatures(read: &Read, kind: &str, record: &str) -> Result<Vec<Value>, Outcome> {
    let mut c = client(read);
    let (prefix, found) = if kind == "AdverseEvent" {
        let request = read.request(pb::GetAdverseEventRequest {
            adverse_event_id: record.to_owned(),
        });
        let event = c.get_adverse_event(request).await?.into_inner().adverse_event;
        ("ae", event.unwrap_or_default().signatures)
    } else {
        let request = read.request(pb::GetResponseAssessmentRequest {
            assessment_id: record.to_owned(),
        });
        let assessment = c.get_response_assessment(request).await?.into_inner().assessment;
        ("ra", assessment.unwrap_or_default().signatures)
    };
    let target = fhir::reference(kind, record);
    Ok(found
        .iter()
        .enumerate()
        .map(|(i, s)| fhir::provenance(&fhir::provenance_id(prefix, record, i + 1), target.clone(), s))
        .collect())
}

#[tonic::async_trait]
impl fhir::Resources for OutcomesFhir {
    fn service(&self) -> &'static str {
        "outcomes"
    }

    fn types(&self) -> Vec<ResourceType> {
        let search = vec![
            (
                "subject",
                "reference",
                "the study subject id, for example ANBL1221-0001 (required)",
            ),
            ("_count", "number", "results per page, 1 to 500 (50)"),
            ("_page", "string", "the page the previous page's next link names"),
        ];
        vec![
            ResourceType {
                name: "AdverseEvent",
                search: search.clone(),
            },
            ResourceType {
                name: "Observation",
                search,
            },
            ResourceType {
                name: "Provenance",
                search: fhir::provenance_search(
                    "the signed record, AdverseEvent/{id} or Observation/{id} (required): its electronic signatures",
                ),
            },
        ]
    }

    async fn read(&self, read: &Read, resource_type: &str, id: &str) -> Result<Value, Outcome> {
        let mut c = client(read);
        if resource_type == "Provenance" {
            let (prefix, record, n) = fhir::parse_provenance_id(id)?;
            let kind = match prefix {
                "ae" => "AdverseEvent",
                "ra" => "Observation",
                _ => return Err(Outcome::not_found(format!("Provenance/{id}"))),
            };
            let found = signatures(read, kind, record).await?;
            return found
                .into_iter()
                .nth(n - 1)
                .ok_or_else(|| Outcome::not_found(format!("Provenance/{id}")));
        }
        if resource_type == "AdverseEvent" {
            let request = read.request(pb::GetAdverseEventRequest {
                adverse_event_id: id.to_owned(),
            });
            let event = c
                .get_adverse_event(request)
                .await?
                .into_inner()
                .adverse_event
                .unwrap_or_default();
            return Ok(adverse_event(&event));
        }
        let request = read.request(pb::GetResponseAssessmentRequest {
            assessment_id: id.to_owned(),
        });
        let found = c
            .get_response_assessment(request)
            .await?
            .into_inner()
            .assessment
            .unwrap_or_default();
        Ok(observation(&found))
    }

    async fn search(
        &self,
        read: &Read,
        resource_type: &str,
        params: &Params,
    ) -> Result<(Vec<Value>, Option<Vec<(String, String)>>), Outcome> {
        if resource_type == "Provenance" {
            let (kind, record) = params.target(&["AdverseEvent", "Observation"])?;
            return Ok((signatures(read, kind, record).await?, None));
        }
        params.only(&["subject", "_count", "_page"])?;
        let subject = params.subject()?;
        let (page_size, page_token) = (params.count()?, params.get("_page").unwrap_or_default().to_owned());
        let mut c = client(read);
        if resource_type == "AdverseEvent" {
            let request = read.request(pb::ListAdverseEventsRequest {
                subject_id: subject.to_owned(),
                page_size,
                page_token,
            });
            let page = c.list_adverse_events(request).await?.into_inner();
            let found = page.adverse_events.iter().map(adverse_event).collect();
            return Ok((found, params.next(&["subject", "_count"], page.next_page_token)));
        }
        let request = read.request(pb::ListResponseAssessmentsRequest {
            subject_id: subject.to_owned(),
            page_size,
            page_token,
        });
        let page = c.list_response_assessments(request).await?.into_inner();
        let found = page.assessments.iter().map(observation).collect();
        Ok((found, params.next(&["subject", "_count"], page.next_page_token)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grades_and_attributions_map_to_r4_codes() {
        // hl7.org/fhir/R4/codesystem-adverse-event-severity.html: mild, moderate, severe.
        assert_eq!(
            [1, 2, 3, 4, 5].map(severity),
            ["mild", "moderate", "severe", "severe", "severe"]
        );
        // hl7.org/fhir/R4/codesystem-adverse-event-causality-assess.html (WHO-UMC).
        assert_eq!(causality(pb::Attribution::Definite as i32).0, Some("Certain"));
        assert_eq!(causality(pb::Attribution::Probable as i32).0, Some("Probably-Likely"));
        assert_eq!(
            causality(pb::Attribution::Unrelated as i32),
            (None, "unrelated".to_owned())
        );
    }
}
