//! Enrollment's FHIR R4 resources: `ResearchStudy` (a trial and its arms), `ResearchSubject` (an
//! enrolled child: status, study, assigned arm) and `Provenance` (an electronic signature of a
//! subject's end-of-treatment record, id `eot.{subject id}.{n}` for its n-th). Each read is one of
//! the service's own gRPC reads, made with the caller's token, so roles, sites and blinding apply
//! as they do there (a central reviewer's `ResearchSubject` has no `assignedArm`).

use serde_json::{Value, json};
use trialops_platform::server::fhir::{self, Outcome, Params, Read, ResourceType};
use trialops_proto::enrollment::v1 as pb;
use trialops_proto::enrollment::v1::enrollment_service_client::EnrollmentServiceClient;

/// Identifier system of trial registry ids (ClinicalTrials.gov NCT numbers).
const REGISTRY_SYSTEM: &str = "https://clinicaltrials.gov";
/// The code system of a trial's mode: `training` for a training trial.
const TRIAL_MODE_SYSTEM: &str = "urn:trialops:trial-mode";

/// The FHIR resources of the enrollment service.
pub struct EnrollmentFhir;

fn client(read: &Read) -> EnrollmentServiceClient<fhir::Loopback> {
    EnrollmentServiceClient::new(read.grpc.clone())
}

/// FHIR's ResearchSubject.status for a subject's status, and back.
const STATUSES: [(pb::SubjectStatus, &str); 4] = [
    (pb::SubjectStatus::OnProtocolTherapy, "on-study-intervention"),
    (pb::SubjectStatus::OffProtocolTherapy, "follow-up"),
    (pb::SubjectStatus::OffStudy, "off-study"),
    (pb::SubjectStatus::Withdrawn, "withdrawn"),
];

fn status_code(status: i32) -> &'static str {
    STATUSES
        .iter()
        .find(|(s, _)| *s as i32 == status)
        .map_or("on-study", |(_, code)| code)
}

fn rfc3339(t: Option<&prost_types::Timestamp>) -> Option<String> {
    t.and_then(|t| chrono::DateTime::from_timestamp(t.seconds, t.nanos.max(0) as u32))
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
}

fn research_study(trial: &pb::Trial) -> Value {
    let summary = trial.summary.clone().unwrap_or_default();
    let mut study = json!({
        "resourceType": "ResearchStudy",
        "id": summary.trial_id,
        "title": summary.title,
        "status": "active",
        "arm": trial.arms.iter().map(|a| json!({ "name": a.code, "description": a.name })).collect::<Vec<_>>(),
    });
    if !summary.registry_id.is_empty() {
        study["identifier"] = json!([{ "system": REGISTRY_SYSTEM, "value": summary.registry_id }]);
    }
    if !summary.protocol_version.is_empty() {
        study["protocol"] = json!([{ "display": format!("protocol definition {}", summary.protocol_version) }]);
    }
    if summary.training {
        // A training trial says so to a FHIR client too.
        study["meta"] =
            json!({ "tag": [{ "system": TRIAL_MODE_SYSTEM, "code": "training", "display": "Training trial" }] });
    }
    study
}

fn research_subject(subject: &pb::Subject) -> Value {
    let mut resource = json!({
        "resourceType": "ResearchSubject",
        "id": subject.subject_id,
        "identifier": [{ "system": fhir::SUBJECT_SYSTEM, "value": subject.subject_id }],
        "status": status_code(subject.status),
        "study": fhir::reference("ResearchStudy", &subject.trial_id),
        "individual": fhir::subject_reference(&subject.subject_id),
    });
    if let Some(start) = rfc3339(subject.enrolled_at.as_ref()) {
        resource["period"] = json!({ "start": start });
    }
    // Empty for callers blinded to allocation: the element is left out, not shown empty.
    if !subject.arm_code.is_empty() {
        resource["assignedArm"] = json!(subject.arm_code);
    }
    resource
}

/// A trial id from a `study` parameter: `ANBL1221` or `ResearchStudy/ANBL1221`.
fn study_id(value: &str) -> &str {
    value.strip_prefix("ResearchStudy/").unwrap_or(value)
}

/// The signatures of a subject's end-of-treatment record, read as the caller, as Provenances.
async fn end_of_treatment_signatures(read: &Read, subject_id: &str) -> Result<Vec<Value>, Outcome> {
    let request = read.request(pb::GetSubjectRequest {
        subject_id: subject_id.to_owned(),
    });
    let subject = client(read).get_subject(request).await?.into_inner().subject;
    let target = fhir::reference("ResearchSubject", subject_id);
    Ok(subject
        .unwrap_or_default()
        .end_of_treatment_signatures
        .iter()
        .enumerate()
        .map(|(i, s)| fhir::provenance(&fhir::provenance_id("eot", subject_id, i + 1), target.clone(), s))
        .collect())
}

#[tonic::async_trait]
impl fhir::Resources for EnrollmentFhir {
    fn service(&self) -> &'static str {
        "enrollment"
    }

    fn types(&self) -> Vec<ResourceType> {
        vec![
            ResourceType {
                name: "ResearchStudy",
                search: vec![("_count", "number", "results per page, 1 to 500 (50)")],
            },
            ResourceType {
                name: "ResearchSubject",
                search: vec![
                    (
                        "study",
                        "reference",
                        "the trial, for example ResearchStudy/ANBL1221 (required)",
                    ),
                    ("site", "token", "only subjects of this site code"),
                    ("status", "token", "only subjects with this status"),
                    ("_count", "number", "results per page, 1 to 500 (50)"),
                    ("_page", "string", "the page the previous page's next link names"),
                ],
            },
            ResourceType {
                name: "Provenance",
                search: fhir::provenance_search(
                    "the subject, ResearchSubject/{id} (required): the signatures of its end-of-treatment record",
                ),
            },
        ]
    }

    async fn read(&self, read: &Read, resource_type: &str, id: &str) -> Result<Value, Outcome> {
        let mut c = client(read);
        match resource_type {
            "Provenance" => {
                let (prefix, subject, n) = fhir::parse_provenance_id(id)?;
                if prefix != "eot" {
                    return Err(Outcome::not_found(format!("Provenance/{id}")));
                }
                end_of_treatment_signatures(read, subject)
                    .await?
                    .into_iter()
                    .nth(n - 1)
                    .ok_or_else(|| Outcome::not_found(format!("Provenance/{id}")))
            }
            "ResearchStudy" => {
                let request = read.request(pb::GetTrialRequest {
                    trial_id: id.to_owned(),
                });
                let trial = c.get_trial(request).await?.into_inner().trial.unwrap_or_default();
                Ok(research_study(&trial))
            }
            _ => {
                let request = read.request(pb::GetSubjectRequest {
                    subject_id: id.to_owned(),
                });
                let subject = c.get_subject(request).await?.into_inner().subject.unwrap_or_default();
                Ok(research_subject(&subject))
            }
        }
    }

    async fn search(
        &self,
        read: &Read,
        resource_type: &str,
        params: &Params,
    ) -> Result<(Vec<Value>, Option<Vec<(String, String)>>), Outcome> {
        let mut c = client(read);
        if resource_type == "Provenance" {
            let (_, subject) = params.target(&["ResearchSubject"])?;
            return Ok((end_of_treatment_signatures(read, subject).await?, None));
        }
        if resource_type == "ResearchStudy" {
            params.only(&["_count", "_page"])?;
            let request = read.request(pb::ListTrialsRequest {
                page_size: params.count()?,
                page_token: params.get("_page").unwrap_or_default().to_owned(),
            });
            let page = c.list_trials(request).await?.into_inner();
            let mut studies = Vec::new();
            for summary in page.trials {
                let request = read.request(pb::GetTrialRequest {
                    trial_id: summary.trial_id,
                });
                let trial = c.get_trial(request).await?.into_inner().trial.unwrap_or_default();
                studies.push(research_study(&trial));
            }
            let next = params.next(&["_count"], page.next_page_token);
            return Ok((studies, next));
        }
        params.only(&["study", "site", "status", "_count", "_page"])?;
        let study = params
            .get("study")
            .map(study_id)
            .ok_or_else(|| Outcome::invalid("study: required, for example study=ResearchStudy/ANBL1221"))?;
        let status = match params.get("status") {
            None => pb::SubjectStatus::Unspecified,
            Some(code) => STATUSES
                .iter()
                .find(|(_, c)| *c == code)
                .map(|(s, _)| *s)
                .ok_or_else(|| {
                    let codes: Vec<&str> = STATUSES.iter().map(|(_, c)| *c).collect();
                    Outcome::invalid(format!("status: one of {}", codes.join(", ")))
                })?,
        };
        let request = read.request(pb::ListSubjectsRequest {
            trial_id: study.to_owned(),
            site_code: params.get("site").unwrap_or_default().to_owned(),
            arm_code: String::new(),
            status: status as i32,
            page_size: params.count()?,
            page_token: params.get("_page").unwrap_or_default().to_owned(),
        });
        let page = c.list_subjects(request).await?.into_inner();
        let subjects = page.subjects.iter().map(research_subject).collect();
        let next = params.next(&["study", "site", "status", "_count"], page.next_page_token);
        Ok((subjects, next))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_subject_status_has_a_research_subject_status_of_fhir_r4() {
        // The R4 value set research-subject-status (hl7.org/fhir/R4/valueset-research-subject-status.html).
        let r4 = [
            "candidate",
            "eligible",
            "follow-up",
            "ineligible",
            "not-registered",
            "off-study",
            "on-study",
            "on-study-intervention",
            "on-study-observation",
            "pending-on-study",
            "potential-candidate",
            "screening",
            "withdrawn",
        ];
        for (status, code) in STATUSES {
            assert!(r4.contains(&code), "{status:?}: {code}");
        }
        assert_eq!(study_id("ResearchStudy/ANBL1221"), "ANBL1221");
        assert_eq!(study_id("ANBL1221"), "ANBL1221");
    }

    #[test]
    fn a_training_trial_is_tagged_and_a_production_one_is_not() {
        let trial = |id: &str, training: bool| pb::Trial {
            summary: Some(pb::TrialSummary {
                trial_id: id.into(),
                training,
                ..Default::default()
            }),
            ..Default::default()
        };
        let tagged = research_study(&trial("ANBL1221TRAINING", true));
        assert_eq!(tagged["meta"]["tag"][0]["code"], "training");
        assert_eq!(tagged["meta"]["tag"][0]["system"], "urn:trialops:trial-mode");
        assert!(research_study(&trial("ANBL1221", false)).get("meta").is_none());
    }
}
