//! GetTrialReport: what a data-monitoring committee reads, from one load of the analyses' inputs,
//! the allocation summary, one grouped query of severe adverse events and one of overdue reports.

use std::collections::BTreeMap;

use tonic::Request;
use trialops_domain::outcomes::survival::kaplan_meier;
use trialops_platform::AppError;
use trialops_platform::identity::auth::CallContext;
use trialops_platform::wire::convert::to_timestamp;
use trialops_proto::outcomes::v1 as pb;

use super::trial_data::{analysed, known, level, rate, read};
use super::{OutcomesApi, convert};
use crate::analysis::{self, Endpoint};
use crate::store::{adverse_event, obligation, rederivation};

pub(super) async fn trial_report(
    api: &OutcomesApi,
    request: Request<pb::GetTrialReportRequest>,
) -> Result<pb::GetTrialReportResponse, AppError> {
    let call = CallContext::of(&request)?;
    let req = request.into_inner();
    let level = level(req.confidence_level.as_ref())?;
    known(api, &req.trial_id)?;
    // The analyses' inputs, the allocation summary and the unblindings, read at once.
    let (inputs, allocation, unblindings) = tokio::try_join!(
        read(api, &call, &req.trial_id),
        api.deps.allocation(&call, &req.trial_id),
        api.deps.unblindings(&call, &req.trial_id),
    )?;
    let data = analysed(&inputs)?;
    let exposures = &inputs.exposures;
    let emergency_unblindings = unblindings
        .into_iter()
        .map(|u| pb::EmergencyUnblinding {
            subject_id: u.subject_id,
            site_code: u.site_code,
            arm_code: u.arm_code,
            reason: u.reason,
            unblinded_by: u.unblinded_by,
            unblinded_by_role: u.unblinded_by_role,
            unblinded_at: u.unblinded_at,
        })
        .collect();

    let enrollment = allocation
        .counts
        .iter()
        .map(|c| pb::StratumCount {
            stratum: c
                .stratum
                .iter()
                .map(|s| format!("{}={}", s.factor_id, s.value))
                .collect::<Vec<_>>()
                .join("|"),
            arm_code: c.arm_code.clone(),
            subjects: c.subjects,
        })
        .collect();

    let arm_of: BTreeMap<&str, &str> = data.subjects.iter().map(|s| (&*s.subject_id, &*s.arm_code)).collect();
    let exposure = data
        .arms
        .iter()
        .map(|arm| {
            let mine: Vec<_> = exposures
                .iter()
                .filter(|e| arm_of.get(e.subject_id.as_str()) == Some(&arm.as_str()))
                .collect();
            let mut cycles: Vec<i32> = mine
                .iter()
                .filter(|e| e.received_protocol_therapy)
                .map(|e| e.cycles_started)
                .collect();
            cycles.sort_unstable();
            let median = match cycles.len() {
                0 => None,
                n if n % 2 == 1 => Some(f64::from(cycles[n / 2])),
                n => Some(f64::from(cycles[n / 2 - 1] + cycles[n / 2]) / 2.0),
            };
            Ok(pb::ArmExposure {
                arm_code: arm.clone(),
                treated_subjects: cycles.len() as i32,
                cycles_started: mine.iter().map(|e| e.cycles_started).sum(),
                median_cycles: median.and_then(convert::stat),
                agents: by_version(&mine)?,
            })
        })
        .collect::<Result<Vec<_>, AppError>>();

    let exposure = exposure?;
    let table = |data: &analysis::Data| -> Result<Vec<pb::ArmResponseTable>, AppError> {
        analysis::response_table(data)
            .into_iter()
            .map(|t| {
                Ok(pb::ArmResponseTable {
                    rate: Some(rate(&t.arm_code, t.responders, t.evaluable, level)?),
                    arm_code: t.arm_code,
                    cr: t.cr as i32,
                    pr: t.pr as i32,
                    mr: t.mr as i32,
                    sd: t.sd as i32,
                    pd: t.pd as i32,
                    not_assessed: t.not_assessed as i32,
                })
            })
            .collect()
    };
    let responses = table(&data)?;
    // Per protocol: the same analysis without the subjects randomized in error, as the
    // protocol says.
    let per_protocol_responses = table(&data.per_protocol())?;
    let randomized_in_error = data
        .subjects
        .iter()
        .filter_map(|s| {
            s.in_error.as_ref().map(|reason| pb::RandomizedInError {
                subject_id: s.subject_id.to_string(),
                arm_code: s.arm_code.to_string(),
                reason: reason.clone(),
            })
        })
        .collect();

    let severe = adverse_event::severe_by_term_and_arm(&api.db, &req.trial_id).await?;
    let severe_events = severe
        .into_iter()
        .map(|(ctcae_term, arm_code, events, subjects)| pb::SevereEventCount {
            ctcae_term,
            arm_code,
            events: events as i32,
            subjects: subjects as i32,
        })
        .collect();

    let overdue = obligation::overdue_of_trial(&api.db, &req.trial_id, trialops_platform::clock::now()).await?;

    let efs = analysis::observations(&data, Endpoint::EventFree);
    let os = analysis::observations(&data, Endpoint::Overall);
    let survival = data
        .arms
        .iter()
        .map(|arm| {
            let e = efs.get(arm).cloned().unwrap_or_default();
            let o = os.get(arm).cloned().unwrap_or_default();
            pb::SurvivalSummary {
                arm_code: arm.clone(),
                efs_median_days: kaplan_meier(&e, 0.95).median.and_then(convert::stat),
                os_median_days: kaplan_meier(&o, 0.95).median.and_then(convert::stat),
                efs_events: e.iter().filter(|x| x.event).count() as i32,
                deaths: o.iter().filter(|x| x.event).count() as i32,
            }
        })
        .collect();

    // Assessments re-derived since their Curie segments were re-entered, and those still waiting:
    // recorded before the bone score was kept, with MIBG uptake.
    let assessments_rederived = rederivation::changed_count(&api.db, &req.trial_id).await? as i32;
    let assessments_awaiting_curie_segments =
        data.assessments.iter().filter(|a| a.awaiting_curie_segments).count() as i32;

    Ok(pb::GetTrialReportResponse {
        training: inputs.protocol.trial.training,
        assessments_rederived,
        assessments_awaiting_curie_segments,
        trial_id: req.trial_id,
        generated_at: Some(to_timestamp(trialops_platform::clock::now())),
        enrollment,
        exposure,
        responses,
        per_protocol_responses,
        randomized_in_error,
        emergency_unblindings,
        severe_events,
        overdue_reports: overdue.iter().map(convert::obligation).collect(),
        survival,
    })
}

/// Each agent's cycles, subjects and delivered doses per protocol version over `exposures` (one
/// arm's), in agent order then version order of first use.
fn by_version(
    exposures: &[&trialops_proto::dosing::v1::GetCumulativeExposureResponse],
) -> Result<Vec<pb::AgentVersionExposure>, AppError> {
    use rust_decimal::Decimal;
    use trialops_platform::wire::convert::{decimal, to_decimal};
    struct Row {
        subjects: usize,
        cycles: i32,
        delivered: Decimal,
        unit: String,
    }
    let mut rows: Vec<((String, String), Row)> = Vec::new();
    for e in exposures {
        for agent in &e.agents {
            for v in &agent.by_protocol_version {
                let delivered = decimal("exposure.delivered_total", v.delivered_total.as_ref())
                    .map_err(|bad| AppError::internal(anyhow::anyhow!("dosing sent {bad:?}")))?;
                let key = (agent.agent_id.clone(), v.protocol_version.clone());
                let at = match rows.iter().position(|(k, _)| *k == key) {
                    Some(at) => at,
                    None => {
                        let row = Row {
                            subjects: 0,
                            cycles: 0,
                            delivered: Decimal::ZERO,
                            unit: agent.dose_unit.clone(),
                        };
                        rows.push((key, row));
                        rows.len() - 1
                    }
                };
                let row = &mut rows[at].1;
                row.subjects += 1;
                row.cycles += v.cycles;
                row.delivered += delivered;
            }
        }
    }
    let agent_order: Vec<String> = rows
        .iter()
        .map(|((agent, _), _)| agent.clone())
        .fold(Vec::new(), |mut seen, a| {
            if !seen.contains(&a) {
                seen.push(a);
            }
            seen
        });
    let mut out = Vec::with_capacity(rows.len());
    for agent in &agent_order {
        for ((a, version), row) in rows.iter().filter(|((a, _), _)| a == agent) {
            out.push(pb::AgentVersionExposure {
                agent_id: a.clone(),
                protocol_version: version.clone(),
                subjects: i32::try_from(row.subjects).unwrap_or(i32::MAX),
                cycles: row.cycles,
                delivered_total: Some(to_decimal(row.delivered)),
                dose_unit: row.unit.clone(),
            });
        }
    }
    Ok(out)
}
