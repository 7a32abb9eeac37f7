//! Dosing's FHIR R4 resource: `MedicationAdministration`, one per recorded administration
//! (given, partially given, held, not given; a planned dose is not yet an administration, so it
//! is not one). Each read is one of the service's own gRPC reads, made with the caller's token,
//! so roles and sites apply as they do there.

use serde_json::{Value, json};
use trialops_platform::server::fhir::{self, Outcome, Params, Read, ResourceType};
use trialops_proto::dosing::v1 as pb;
use trialops_proto::dosing::v1::dosing_service_client::DosingServiceClient;

/// Code system of the protocol's agent identifiers (for example "temozolomide").
const AGENT_SYSTEM: &str = "urn:trialops:agent";
/// The protocols' dose units are UCUM codes ("mg", "ug").
const UCUM: &str = "http://unitsofmeasure.org";

/// The FHIR resources of the dosing service.
pub struct DosingFhir;

fn client(read: &Read) -> DosingServiceClient<fhir::Loopback> {
    DosingServiceClient::new(read.grpc.clone())
}

/// MedicationAdministration.status (R4 value set medication-admin-status) of a recorded status;
/// `None` for a planned dose.
fn status_code(status: i32) -> Option<&'static str> {
    match pb::AdministrationStatus::try_from(status).ok()? {
        pb::AdministrationStatus::Given => Some("completed"),
        // Stopped before the whole dose went in.
        pb::AdministrationStatus::PartiallyGiven => Some("stopped"),
        // Withheld for now; may be given later in the cycle.
        pb::AdministrationStatus::Held => Some("on-hold"),
        pb::AdministrationStatus::NotGiven => Some("not-done"),
        pb::AdministrationStatus::Planned | pb::AdministrationStatus::Unspecified => None,
    }
}

fn instant(t: Option<&prost_types::Timestamp>) -> Option<String> {
    t.and_then(|t| chrono::DateTime::from_timestamp(t.seconds, t.nanos.max(0) as u32))
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
}

fn quantity(value: &str, unit: &str) -> Option<Value> {
    let number: serde_json::Number = value.parse().ok()?;
    Some(json!({ "value": number, "unit": unit, "system": UCUM, "code": unit }))
}

fn medication_administration(a: &pb::Administration) -> Option<Value> {
    let status = status_code(a.status)?;
    let prescribed = a.prescribed_dose.as_ref().map(|d| d.value.clone()).unwrap_or_default();
    let mut resource = json!({
        "resourceType": "MedicationAdministration",
        "id": a.administration_id,
        "status": status,
        "medicationCodeableConcept": {
            "coding": [{ "system": AGENT_SYSTEM, "code": a.agent_id }],
            "text": a.agent_id,
        },
        "subject": fhir::subject_reference(&a.subject_id),
    });
    let given = matches!(status, "completed" | "stopped");
    match (instant(a.started_at.as_ref()), instant(a.ended_at.as_ref())) {
        (Some(start), end) if given => {
            resource["effectivePeriod"] = json!({ "start": start });
            if let Some(end) = end {
                resource["effectivePeriod"]["end"] = json!(end);
            }
        }
        // Not given (or no times recorded): the day it was planned for.
        _ => {
            let d = a.planned_on.unwrap_or_default();
            resource["effectiveDateTime"] = json!(format!("{:04}-{:02}-{:02}", d.year, d.month, d.day));
        }
    }
    let mut dosage = json!({
        "text": format!(
            "cycle {} day {}: prescribed {prescribed} {}",
            a.cycle_number, a.cycle_day, a.dose_unit
        ),
    });
    if let Some(dose) = a.actual_dose.as_ref().and_then(|d| quantity(&d.value, &a.dose_unit)) {
        dosage["dose"] = dose;
    }
    resource["dosage"] = dosage;
    if !a.reason.is_empty() {
        if given {
            resource["note"] = json!([{ "text": a.reason }]);
        } else {
            resource["statusReason"] = json!([{ "text": a.reason }]);
        }
    }
    if a.deviation_flagged {
        let note = json!({ "text": "the dose given deviates from the prescription beyond the protocol's tolerance" });
        match resource["note"].as_array_mut() {
            Some(notes) => notes.push(note),
            None => resource["note"] = json!([note]),
        }
    }
    Some(resource)
}

#[tonic::async_trait]
impl fhir::Resources for DosingFhir {
    fn service(&self) -> &'static str {
        "dosing"
    }

    fn types(&self) -> Vec<ResourceType> {
        vec![ResourceType {
            name: "MedicationAdministration",
            search: vec![
                (
                    "subject",
                    "reference",
                    "the study subject id, for example ANBL1221-0001 (required)",
                ),
                ("_count", "number", "results per page, 1 to 500 (50)"),
                ("_page", "string", "the page the previous page's next link names"),
            ],
        }]
    }

    async fn read(&self, read: &Read, _resource_type: &str, id: &str) -> Result<Value, Outcome> {
        let request = read.request(pb::GetAdministrationRequest {
            administration_id: id.to_owned(),
        });
        let found = client(read)
            .get_administration(request)
            .await?
            .into_inner()
            .administration
            .unwrap_or_default();
        medication_administration(&found)
            .ok_or_else(|| Outcome::not_found(format!("administration {id} is planned, not yet recorded")))
    }

    async fn search(
        &self,
        read: &Read,
        _resource_type: &str,
        params: &Params,
    ) -> Result<(Vec<Value>, Option<Vec<(String, String)>>), Outcome> {
        params.only(&["subject", "_count", "_page"])?;
        let subject = params.subject()?;
        let request = read.request(pb::ListSubjectAdministrationsRequest {
            subject_id: subject.to_owned(),
            recorded_only: true,
            page_size: params.count()?,
            page_token: params.get("_page").unwrap_or_default().to_owned(),
        });
        let page = client(read).list_subject_administrations(request).await?.into_inner();
        let found = page
            .administrations
            .iter()
            .filter_map(medication_administration)
            .collect();
        let next = params.next(&["subject", "_count"], page.next_page_token);
        Ok((found, next))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recorded_statuses_are_r4_medication_admin_statuses_and_planned_is_none() {
        // hl7.org/fhir/R4/valueset-medication-admin-status.html
        let r4 = [
            "in-progress",
            "not-done",
            "on-hold",
            "completed",
            "entered-in-error",
            "stopped",
            "unknown",
        ];
        for status in [
            pb::AdministrationStatus::Given,
            pb::AdministrationStatus::PartiallyGiven,
            pb::AdministrationStatus::Held,
            pb::AdministrationStatus::NotGiven,
        ] {
            let code = status_code(status as i32).unwrap_or_default();
            assert!(r4.contains(&code), "{status:?}: {code}");
        }
        assert_eq!(status_code(pb::AdministrationStatus::Planned as i32), None);
    }
}
