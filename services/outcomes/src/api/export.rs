//! ExportSdtm and ExportOdm: gather the trial's records (and for ODM the audit log entries) from
//! enrollment, dosing and this service, write the files ([`crate::export`]) and stream them in
//! chunks.

use std::collections::BTreeMap;

use tonic::Request;
use trialops_domain::protocol::Seriousness;
use trialops_platform::AppError;
use trialops_platform::identity::auth::CallContext;
use trialops_platform::server::handlers::EventStream;
use trialops_proto::outcomes::v1 as pb;

use super::OutcomesApi;
use super::trial_data::load;
use crate::analysis;
use crate::export::{self, odm, sdtm as tabulate};
use crate::store::{adverse_event, assessment, follow_up, rederivation};
use trialops_proto::common::v1::AuditEvent;

/// The largest chunk of a file one message carries.
const CHUNK: usize = 1 << 20;

pub(super) async fn sdtm(
    api: &OutcomesApi,
    request: Request<pb::ExportSdtmRequest>,
) -> Result<EventStream<pb::ExportSdtmResponse>, AppError> {
    let call = CallContext::of(&request)?;
    let trial_id = request.into_inner().trial_id;
    let data = load(api, &call, &trial_id).await?;
    let protocol = api.protocol(&trial_id)?;
    let mut subjects = api.deps.subjects(&call, &trial_id).await?;
    subjects.sort_by(|a, b| a.subject_id.cmp(&b.subject_id));

    let (mut administrations, mut cycles) = (Vec::new(), Vec::new());
    for exposure in api.deps.exposures(&call, &trial_id).await? {
        for number in 1..=exposure.cycles_started {
            cycles.extend(api.deps.cycle(&call, &exposure.subject_id, number).await?);
        }
        if exposure.cycles_started > 0 {
            administrations.extend(api.deps.administrations(&call, &exposure.subject_id).await?);
        }
    }

    let adverse_events = adverse_event::of_trial(&api.db, &trial_id)
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
        .collect::<Result<Vec<_>, AppError>>()?;
    let assessments = rederivation::trial_assessments(&api.db, &trial_id)
        .await?
        .into_iter()
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
        .collect::<Result<Vec<_>, AppError>>()?;
    let mut deaths = BTreeMap::new();
    for f in follow_up::of_trial(&api.db, &trial_id).await? {
        if f.vital_status()? == follow_up::VitalStatus::Dead {
            deaths
                .entry(f.subject_id)
                .and_modify(|d: &mut chrono::NaiveDate| *d = (*d).min(f.last_contact_on))
                .or_insert(f.last_contact_on);
        }
    }
    let best = analysis::primary_endpoint(&data)
        .into_values()
        .flatten()
        .collect::<BTreeMap<_, _>>();

    let countries = api
        .deps
        .sites(&call)
        .await?
        .into_iter()
        .map(|s| (s.site_code, s.country))
        .collect();
    let input = tabulate::Input {
        protocol: &protocol,
        subjects,
        countries,
        administrations,
        cycles,
        adverse_events,
        assessments,
        deaths,
        best,
    };
    let files = export::sdtm(&input, trialops_platform::clock::now()).map_err(AppError::internal)?;
    let mut messages = Vec::new();
    for file in files {
        let mut chunks = file.content.chunks(CHUNK).peekable();
        if chunks.peek().is_none() {
            messages.push(Ok(pb::ExportSdtmResponse {
                file_name: file.name.clone(),
                media_type: file.media_type.to_owned(),
                content: Vec::new(),
                last_chunk: true,
            }));
        }
        while let Some(chunk) = chunks.next() {
            messages.push(Ok(pb::ExportSdtmResponse {
                file_name: file.name.clone(),
                media_type: file.media_type.to_owned(),
                content: chunk.to_vec(),
                last_chunk: chunks.peek().is_none(),
            }));
        }
    }
    Ok(Box::pin(tokio_stream::iter(messages)))
}

/// Every entry of one service's audit log that belongs to `trial_id`, page after page.
async fn trail_of<F, Fut>(service: &'static str, trial_id: &str, mut page: F) -> Result<Vec<odm::Entry>, AppError>
where
    F: FnMut(String) -> Fut,
    Fut: Future<Output = Result<(Vec<AuditEvent>, String), AppError>>,
{
    let mut out = Vec::new();
    let mut token = String::new();
    loop {
        let (events, next) = page(token).await?;
        out.extend(
            events
                .into_iter()
                .filter(|e| e.trial_id == trial_id)
                .map(|event| odm::Entry { service, event }),
        );
        if next.is_empty() {
            return Ok(out);
        }
        token = next;
    }
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
    let mut entries = trail_of("enrollment", &trial_id, |token| {
        api.deps.audit_events(&call, "enrollment", token)
    })
    .await?;
    entries.extend(
        trail_of("dosing", &trial_id, |token| {
            api.deps.audit_events(&call, "dosing", token)
        })
        .await?,
    );
    trialops_platform::records::log::integrate(&api.db).await?;
    entries.extend(
        trail_of("outcomes", &trial_id, |token| async move {
            trialops_platform::records::audit::list(&api.db, "", "", 500, &token).await
        })
        .await?,
    );
    let input = odm::Input {
        protocol: &protocol,
        sites,
        subjects,
        entries,
        created: trialops_platform::clock::now(),
    };
    let file = odm::odm(&input).map_err(AppError::internal)?;
    let messages: Vec<_> = file
        .chunks(CHUNK)
        .map(|c| Ok(pb::ExportOdmResponse { content: c.to_vec() }))
        .collect();
    Ok(Box::pin(tokio_stream::iter(messages)))
}
