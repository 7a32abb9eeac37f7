//! ReenterCurieSegments: completing an assessment recorded before its Curie segment scores were
//! kept. With the segments, the relative MIBG bone score uses the 9 skeletal segments; the
//! assessment and the later ones of the same subject and assessor are derived again, and each
//! whose responses change gets a re-derivation appended (the recorded assessment is never
//! rewritten). Every read shows the latest re-derivation.

use sea_orm::DatabaseTransaction;
use tonic::Request;
use trialops_platform::identity::auth::CallContext;
use trialops_platform::records::audit::{self, AuditContext, Change};
use trialops_platform::wire::fields::{AllFields, ensure, required};
use trialops_platform::{AppError, records::idempotency, wire::convert as wire};
use trialops_proto::outcomes::v1 as pb;
use uuid::Uuid;

use super::derivation::{Measures, derive};
use super::{OutcomesApi, convert, signatures};
use crate::error::Reason;
use crate::store::{assessment, rederivation};

pub(super) async fn reenter(
    api: &OutcomesApi,
    request: Request<pb::ReenterCurieSegmentsRequest>,
) -> Result<pb::ReenterCurieSegmentsResponse, AppError> {
    let call = CallContext::of(&request)?;
    let req = request.into_inner();
    let scores = &req.curie_segment_scores;
    let (request_id, _, (), reason) = (
        wire::request_id("request_id", &req.request_id),
        required("assessment_id", &req.assessment_id),
        ensure(
            scores.len() == 10 && scores.iter().all(|s| (0..=3).contains(s)),
            "curie_segment_scores",
            "10 Curie segment scores (9 skeletal + 1 soft tissue), each 0 to 3",
        ),
        wire::text("reason", &req.reason, 1000),
    )
        .all()?;

    let Some(target) = assessment::find(&api.db, &req.assessment_id).await? else {
        return Err(AppError::NotFound {
            what: "assessment",
            id: req.assessment_id.clone(),
        });
    };
    // Scoped like a first call, before the idempotency record: enrollment (with the caller's
    // token) decides whether the subject is theirs.
    let subject = api.deps.subject(&call, &target.subject_id).await?;
    // Each assessment is derived again under the protocol version it was judged by ("" for those
    // recorded before versions were kept: the service's own definition).
    let loaded = api.protocol(&target.trial_id)?.outcomes.fdg_avid_lesion_route;
    let mut fdg_route = std::collections::BTreeMap::from([(String::new(), loaded)]);
    for a in rederivation::subject_assessments(&api.db, &target.subject_id).await? {
        if let std::collections::btree_map::Entry::Vacant(entry) = fdg_route.entry(a.protocol_version) {
            let protocol = api.deps.protocol_version(&call, &target.trial_id, entry.key()).await?;
            entry.insert(protocol.outcomes.fdg_avid_lesion_route);
        }
    }
    let audit_ctx = AuditContext::new(call, request_id).within(&subject.trial_id, &subject.site_code);
    let scores = Reentry {
        total: scores.iter().sum(),
        skeletal: scores[..9].iter().sum(),
        reason,
    };
    idempotency::execute(
        &api.db,
        "OutcomesService/ReenterCurieSegments",
        request_id,
        &req,
        move |tx| Box::pin(reenter_in(tx, audit_ctx, fdg_route, target, scores)),
    )
    .await
}

/// The re-entered segments: their total, the skeletal part, and the reason given.
struct Reentry {
    total: i32,
    skeletal: i32,
    reason: String,
}

/// The transaction: the segments checked against the recorded total, the assessment and the
/// later ones of its subject and assessor derived again, each re-derivation appended and
/// audited (the recorded assessments are never rewritten).
async fn reenter_in(
    tx: &DatabaseTransaction,
    audit_ctx: AuditContext,
    fdg_route: std::collections::BTreeMap<String, bool>,
    target: assessment::Model,
    scores: Reentry,
) -> Result<pb::ReenterCurieSegmentsResponse, AppError> {
    let mut history: Vec<_> = rederivation::subject_assessments(tx, &target.subject_id)
        .await?
        .into_iter()
        .filter(|a| a.assessor == target.assessor)
        .collect();
    let Some(position) = history.iter().position(|a| a.assessment_id == target.assessment_id) else {
        return Err(AppError::internal(anyhow::anyhow!(
            "assessment missing from its history"
        )));
    };
    check_reentry(&history[position], scores.total)?;
    let before = history.clone();
    history[position].curie_skeletal_score = Some(scores.skeletal);
    let rederived = rederive(&mut history, &fdg_route)?;
    let mut sequence = rederivation::count(tx).await? as i32;
    let (mut changed_rows, mut changed_records) = (Vec::new(), Vec::new());
    for (i, (now, was)) in history.iter().zip(&before).enumerate() {
        let changed = rederived.contains(&i);
        if !changed && i != position {
            continue;
        }
        sequence += 1;
        let row = rederivation::Model {
            rederivation_id: Uuid::new_v4().to_string(),
            assessment_id: now.assessment_id.clone(),
            subject_id: now.subject_id.clone(),
            trial_id: now.trial_id.clone(),
            curie_skeletal_score: (i == position).then_some(scores.skeletal),
            primary_response: now.primary_response.clone(),
            metastases_response: now.metastases_response.clone(),
            marrow_response: now.marrow_response.clone(),
            derived_overall: now.derived_overall.clone(),
            overall: now.overall.clone(),
            changed,
            reason: format!(
                "{} (Curie segments of assessment {} re-entered: the relative MIBG score \
                 uses the 9 skeletal segments)",
                scores.reason, target.assessment_id
            ),
            sequence,
            recorded_at: trialops_platform::clock::now_stored(),
        };
        rederivation::insert(tx, &row).await?;
        let (old, new) = (audit::to_json(was)?, audit::to_json(&row)?);
        let change = Change::updated(
            "assessment.rederived",
            "assessment",
            &now.assessment_id,
            old,
            new,
            &row.reason,
        );
        audit::append(tx, &audit_ctx, change).await?;
        if changed {
            changed_rows.push(convert::assessment(now)?);
            changed_records.push(now.clone());
        }
    }
    // Signatures of the assessments as they were show they no longer apply.
    signatures::with_assessment_signatures(tx, &changed_records, &mut changed_rows).await?;
    Ok(pb::ReenterCurieSegmentsResponse {
        rederived: changed_rows,
    })
}

/// Segments may be entered once, for an assessment that has none, and must add up to the total
/// recorded from the same scan.
fn check_reentry(recorded: &assessment::Model, total: i32) -> Result<(), AppError> {
    if recorded.curie_skeletal_score.is_some() {
        return Err(AppError::precondition(
            Reason::CurieSegmentsAlreadyRecorded,
            format!("assessment {} has its Curie segment scores", recorded.assessment_id),
        ));
    }
    if total != recorded.curie_score {
        return Err(AppError::invalid(
            "curie_segment_scores",
            format!(
                "their total {total} differs from the recorded Curie score {}: enter the scores of that scan",
                recorded.curie_score
            ),
        ));
    }
    Ok(())
}

/// Derives every later assessment of `history` (one subject and assessor, in date order) again
/// against its baseline; returns the positions whose responses changed. An override recorded
/// with an assessment stays its overall response.
fn rederive(
    history: &mut [assessment::Model],
    fdg_route: &std::collections::BTreeMap<String, bool>,
) -> Result<Vec<usize>, AppError> {
    let Some(baseline) = history.iter().find(|a| a.after_cycle == 0).cloned() else {
        return Ok(Vec::new());
    };
    let mut changed = Vec::new();
    for i in 0..history.len() {
        if history[i].after_cycle == 0 {
            continue;
        }
        let current = history[i].clone();
        let earlier: Vec<_> = history
            .iter()
            // As when it was recorded: the assessments recorded before it, up to its date.
            .filter(|a| {
                a.after_cycle > 0 && a.assessed_on <= current.assessed_on && a.recorded_at < current.recorded_at
            })
            .cloned()
            .collect();
        let route = fdg_route
            .get(&current.protocol_version)
            .or_else(|| fdg_route.get(""))
            .copied()
            .unwrap_or(false);
        let [primary, metastases, marrow, overall] = derive(&Measures::of(&current)?, &baseline, &earlier, route)?;
        let a = &mut history[i];
        let before = (
            a.primary_response.clone(),
            a.metastases_response.clone(),
            a.marrow_response.clone(),
            a.derived_overall.clone(),
        );
        a.primary_response = primary.as_str().to_owned();
        a.metastases_response = metastases.as_str().to_owned();
        a.marrow_response = marrow.as_str().to_owned();
        a.derived_overall = overall.as_str().to_owned();
        if a.override_reason.is_empty() {
            a.overall = a.derived_overall.clone();
        }
        let after = (
            a.primary_response.clone(),
            a.metastases_response.clone(),
            a.marrow_response.clone(),
            a.derived_overall.clone(),
        );
        if before != after {
            changed.push(i);
        }
    }
    Ok(changed)
}
