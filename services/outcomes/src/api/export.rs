//! ExportSdtm and ExportOdm: gather the trial's records (and for ODM the audit log entries) from
//! enrollment, dosing and this service, write the files ([`crate::export`]) and stream them in
//! chunks.

use std::collections::BTreeMap;

use chrono::NaiveDate;

use tonic::Request;
use trialops_domain::protocol::Seriousness;
use trialops_platform::AppError;
use trialops_platform::identity::auth::CallContext;
use trialops_platform::server::handlers::EventStream;
use trialops_proto::dosing::v1 as dpb;
use trialops_proto::outcomes::v1 as pb;

use super::OutcomesApi;
use super::trial_data::{analysed, read};
use crate::analysis;
use crate::export::{self, odm, sdtm as tabulate};
use crate::store::{adverse_event, assessment, follow_up};
use trialops_proto::common::v1::AuditEvent;

/// The largest chunk of a file one message carries.
const CHUNK: usize = 1 << 20;

pub(super) async fn sdtm(
    api: &OutcomesApi,
    request: Request<pb::ExportSdtmRequest>,
) -> Result<EventStream<pb::ExportSdtmResponse>, AppError> {
    let call = CallContext::of(&request)?;
    let trial_id = request.into_inner().trial_id;
    let inputs = read(api, &call, &trial_id).await?;
    let data = analysed(&inputs)?;
    let (administrations, cycles) = doses(api, &call, &inputs.exposures, true).await?;
    let mut subjects = inputs.subjects;
    subjects.sort_by(|a, b| a.subject_id.cmp(&b.subject_id));
    let countries = api
        .deps
        .sites(&call)
        .await?
        .into_iter()
        .map(|s| (s.site_code, s.country))
        .collect();
    let mut versions = std::collections::BTreeMap::new();
    for version in cycles.iter().map(|c| c.protocol_version.as_str()) {
        if !versions.contains_key(version) {
            let protocol = api.deps.protocol_version(&call, &trial_id, version).await?;
            versions.insert(version.to_owned(), (*protocol).clone());
        }
    }
    let input = tabulate::Input {
        protocol: &inputs.protocol,
        versions,
        subjects,
        status_changes: api.deps.status_changes(&call, &trial_id).await?,
        countries,
        administrations,
        cycles,
        adverse_events: adverse_events(api, &trial_id).await?,
        assessments: assessments(inputs.assessments)?,
        deaths: deaths(&inputs.follow_ups)?,
        best: analysis::primary_endpoint(&data).into_values().flatten().collect(),
    };
    let files = export::sdtm(&input, trialops_platform::clock::now()).map_err(AppError::internal)?;
    Ok(Box::pin(tokio_stream::iter(chunked(files).into_iter().map(Ok))))
}

/// Every treated subject's administrations recorded (any status but planned), from dosing; with
/// `cycles`, also every cycle started with its dose calculations.
async fn doses(
    api: &OutcomesApi,
    call: &CallContext,
    exposures: &[dpb::GetCumulativeExposureResponse],
    cycles: bool,
) -> Result<(Vec<dpb::Administration>, Vec<dpb::Cycle>), AppError> {
    let (mut administrations, mut started) = (Vec::new(), Vec::new());
    for exposure in exposures {
        if exposure.cycles_started == 0 {
            continue;
        }
        administrations.extend(api.deps.administrations(call, &exposure.subject_id).await?);
        for number in (1..=exposure.cycles_started).filter(|_| cycles) {
            started.extend(api.deps.cycle(call, &exposure.subject_id, number).await?);
        }
    }
    Ok((administrations, started))
}

/// The trial's adverse events as the export reads them.
async fn adverse_events(api: &OutcomesApi, trial_id: &str) -> Result<Vec<tabulate::AdverseEvent>, AppError> {
    adverse_event::of_trial(&api.db, trial_id)
        .await?
        .into_iter()
        .map(|e| {
            let seriousness: Vec<Seriousness> = serde_json::from_str(&e.seriousness).map_err(AppError::internal)?;
            Ok(tabulate::AdverseEvent {
                attributions: e.attributions()?,
                id: e.adverse_event_id,
                subject_id: e.subject_id,
                term: e.ctcae_term,
                grade: e.grade,
                onset_on: e.onset_on,
                resolved_on: e.resolved_on,
                seriousness,
            })
        })
        .collect()
}

/// The trial's response assessments (after any re-derivation) as the export reads them.
fn assessments(read: Vec<assessment::Model>) -> Result<Vec<tabulate::Assessment>, AppError> {
    read.into_iter()
        .map(|a| {
            Ok(tabulate::Assessment {
                central: a.assessor()? == assessment::Assessor::CentralReview,
                responses: [
                    a.response("primary_response", &a.primary_response)?,
                    a.response("metastases_response", &a.metastases_response)?,
                    a.response("marrow_response", &a.marrow_response)?,
                    a.overall()?,
                ],
                id: a.assessment_id,
                subject_id: a.subject_id,
                assessed_on: a.assessed_on,
                after_cycle: a.after_cycle,
            })
        })
        .collect()
}

/// Each subject's date of death from follow-up (the earliest, were two recorded).
fn deaths(follow_ups: &[follow_up::Model]) -> Result<BTreeMap<String, NaiveDate>, AppError> {
    let mut deaths = BTreeMap::new();
    for f in follow_ups {
        if f.vital_status()? == follow_up::VitalStatus::Dead {
            deaths
                .entry(f.subject_id.clone())
                .and_modify(|d: &mut NaiveDate| *d = (*d).min(f.last_contact_on))
                .or_insert(f.last_contact_on);
        }
    }
    Ok(deaths)
}

/// The files as messages: each in chunks of at most [`CHUNK`], its last marked (an empty file is
/// one empty last chunk).
fn chunked(files: Vec<export::File>) -> Vec<pb::ExportSdtmResponse> {
    let mut messages = Vec::new();
    for file in files {
        let pieces: Vec<&[u8]> = if file.content.is_empty() {
            vec![&[]]
        } else {
            file.content.chunks(CHUNK).collect()
        };
        let last = pieces.len() - 1;
        messages.extend(pieces.into_iter().enumerate().map(|(i, piece)| pb::ExportSdtmResponse {
            file_name: file.name.clone(),
            media_type: file.media_type.to_owned(),
            content: piece.to_vec(),
            last_chunk: i == last,
        }));
    }
    messages
}

/// The entries of one service's audit log that may belong to `trial_id`: those naming it, and
/// those written before entries named their trial (the ODM writer keeps the ones whose record is
/// of the trial's subjects).
fn of_trial(service: &'static str, trial_id: &str, log: Vec<AuditEvent>) -> impl Iterator<Item = odm::Entry> {
    log.into_iter()
        .filter(move |e| e.trial_id == trial_id || e.trial_id.is_empty())
        .map(move |event| odm::Entry { service, event })
}

pub(super) async fn odm(
    api: &OutcomesApi,
    request: Request<pb::ExportOdmRequest>,
) -> Result<EventStream<pb::ExportOdmResponse>, AppError> {
    let call = CallContext::of(&request)?;
    let trial_id = request.into_inner().trial_id;
    if trial_id.is_empty() {
        return Err(AppError::invalid("trial_id", "required"));
    }
    let protocol = api.protocol(&trial_id)?;
    let mut subjects = api.deps.subjects(&call, &trial_id).await?;
    subjects.sort_by(|a, b| a.subject_id.cmp(&b.subject_id));
    let sites = api.deps.sites(&call).await?;
    let mut entries: Vec<odm::Entry> = of_trial("enrollment", &trial_id, api.deps.enrollment_audit_log(&call).await?)
        .chain(of_trial("dosing", &trial_id, api.deps.dosing_audit_log(&call).await?))
        .collect();
    // This service's own log, with what was written before this call integrated first.
    trialops_platform::records::log::integrate(&api.db).await?;
    let own = crate::deps::every_page(|token| async move {
        trialops_platform::records::audit::list(&api.db, "", "", 500, &token).await
    })
    .await?;
    entries.extend(of_trial("outcomes", &trial_id, own));
    let exposures = api.deps.exposures(&call, &trial_id).await?;
    let (administrations, _) = doses(api, &call, &exposures, false).await?;
    let input = odm::Input {
        protocol: &protocol,
        sites,
        subjects,
        entries,
        administrations: administrations
            .into_iter()
            .map(|a| (a.administration_id.clone(), a))
            .collect(),
        created: trialops_platform::clock::now(),
    };
    let file = odm::odm(&input).map_err(AppError::internal)?;
    let messages: Vec<_> = file
        .chunks(CHUNK)
        .map(|c| Ok(pb::ExportOdmResponse { content: c.to_vec() }))
        .collect();
    Ok(Box::pin(tokio_stream::iter(messages)))
}
