//! RecordResponseAssessment and ListResponseAssessments.
//!
//! The baseline is the assessment with `after_cycle` 0 (one per subject and assessor). A later
//! assessment is compared with that assessor's baseline and the nadir of that assessor's
//! assessments on or before its date; the service derives every component's response and the
//! overall response by the revised INRC. An override keeps the derived value beside it.

use sea_orm::DatabaseTransaction;
use tonic::Request;
use trialops_domain::identifiers::SubjectId;
use trialops_domain::outcomes::inrc::{self, Response};
use trialops_platform::identity::auth::CallContext;
use trialops_platform::records::audit::{self, AuditContext, Change};
use trialops_platform::wire::fields::{AllFields, Field, ensure, violation};
use trialops_platform::{AppError, records::idempotency, wire::convert as wire, wire::pagination};
use trialops_proto::enrollment::v1::Subject;
use trialops_proto::outcomes::v1 as pb;
use uuid::Uuid;

use super::derivation::{Measures, derive};
use super::{OutcomesApi, convert, signatures};
use crate::error::Reason;
use crate::store::{assessment, rederivation};

/// The overall response an assessor sets instead of the derived one, with the reason, if any.
fn overriding(req: &pb::RecordResponseAssessmentRequest) -> Field<Option<Response>> {
    if req.override_overall_response == pb::Response::Unspecified as i32 {
        return Ok(None);
    }
    let (to, ()) = (
        convert::overall_from(req.override_overall_response)
            .ok_or_else(|| violation("override_overall_response", "one of CR, PR, MR, SD, PD")),
        ensure(
            !req.override_reason.trim().is_empty(),
            "override_reason",
            "required with an override",
        ),
    )
        .collect()?;
    Ok(Some(to))
}

pub(super) async fn record(
    api: &OutcomesApi,
    request: Request<pb::RecordResponseAssessmentRequest>,
) -> Result<pb::RecordResponseAssessmentResponse, AppError> {
    let call = CallContext::of(&request)?;
    let req = request.into_inner();
    let assessor = convert::assessor_from(req.assessor).ok_or_else(|| violation("assessor", "SITE or CENTRAL_REVIEW"));
    let (request_id, _, assessed_on, (), assessor, (), measures, override_to) = (
        wire::request_id("request_id", &req.request_id),
        wire::parsed("subject_id", SubjectId::parse(&req.subject_id)),
        wire::past_date("assessed_on", req.assessed_on.as_ref()),
        ensure(
            req.after_cycle >= 0,
            "after_cycle",
            "0 for the baseline, else the cycle the assessment follows",
        ),
        assessor,
        ensure(
            req.criteria == pb::ResponseCriteria::Inrc2017 as i32,
            "criteria",
            "INRC_2017",
        ),
        Measures::try_from(&req),
        overriding(&req),
    )
        .all()?;
    let subject = api.deps.subject(&call, &req.subject_id).await?;
    // Judged by the response rules of the protocol version in force on the assessment date.
    let protocol = api.deps.protocol_on(&call, &subject.trial_id, assessed_on).await?;
    let fdg_route = protocol.outcomes.fdg_avid_lesion_route;
    if measures.fdg.is_some() && !fdg_route {
        return Err(AppError::invalid(
            "metastases.fdg_avid_lesions",
            format!(
                "the {} protocol does not judge metastases by FDG-avid lesions",
                subject.trial_id
            ),
        ));
    }
    let audit_ctx = AuditContext::new(call, request_id).within(&subject.trial_id, &subject.site_code);
    let assessment = Assessment {
        protocol_version: protocol.trial.protocol_version.clone(),
        assessed_on,
        assessor,
        measures,
        override_to,
        request: req.clone(),
    };
    let method = "OutcomesService/RecordResponseAssessment";
    idempotency::execute(&api.db, method, request_id, &req, move |tx| {
        Box::pin(record_in(tx, audit_ctx, subject, fdg_route, assessment))
    })
    .await
}

/// A RecordResponseAssessment request, parsed: its date, assessor, checked measurements and
/// override, beside the request's other fields.
struct Assessment {
    protocol_version: String,
    assessed_on: chrono::NaiveDate,
    assessor: assessment::Assessor,
    measures: Measures,
    override_to: Option<Response>,
    request: pb::RecordResponseAssessmentRequest,
}

/// The transaction: the responses derived against this assessor's baseline and earlier
/// assessments (a baseline needs none, and only one is recorded), stored and audited.
async fn record_in(
    tx: &DatabaseTransaction,
    audit_ctx: AuditContext,
    subject: Subject,
    fdg_route: bool,
    assessment: Assessment,
) -> Result<pb::RecordResponseAssessmentResponse, AppError> {
    let (req, assessor) = (&assessment.request, assessment.assessor.as_str());
    let history: Vec<_> = rederivation::subject_assessments(tx, &req.subject_id)
        .await?
        .into_iter()
        .filter(|a| a.assessor == assessor)
        .collect();
    let baseline = history.iter().find(|a| a.after_cycle == 0).cloned();
    let responses: [Option<Response>; 4] = match (req.after_cycle, baseline) {
        (0, Some(_)) => {
            let message = format!("the {assessor} baseline of {} is recorded", req.subject_id);
            return Err(AppError::precondition(Reason::BaselineExists, message));
        }
        (0, None) => [None; 4],
        (_, None) => {
            let message = format!(
                "record the {assessor} baseline (after_cycle 0) of {} first",
                req.subject_id
            );
            return Err(AppError::precondition(Reason::NoBaselineAssessment, message));
        }
        (_, Some(baseline)) => {
            let earlier: Vec<_> = history
                .iter()
                .filter(|a| a.after_cycle > 0 && a.assessed_on <= assessment.assessed_on)
                .cloned()
                .collect();
            derive(&assessment.measures, &baseline, &earlier, fdg_route)?.map(Some)
        }
    };
    let record = stored_assessment(&subject, &assessment, responses);
    assessment::insert(tx, &record).await?;
    let action = if assessment.override_to.is_some() {
        "assessment.recorded_with_override"
    } else {
        "assessment.recorded"
    };
    let change = Change {
        action,
        entity_type: "assessment",
        entity_id: &record.assessment_id,
        old: None,
        new: audit::to_json(&record)?,
        reason: &record.override_reason,
        trial_id: "",
        site_code: "",
    };
    audit::append(tx, &audit_ctx, change).await?;
    Ok(pb::RecordResponseAssessmentResponse {
        assessment: Some(convert::assessment(&record)?),
    })
}

/// The row an assessment is stored as, with its derived responses ("baseline" for none).
fn stored_assessment(
    subject: &Subject,
    assessment: &Assessment,
    responses: [Option<Response>; 4],
) -> assessment::Model {
    let (req, measures, override_to) = (&assessment.request, &assessment.measures, assessment.override_to);
    let name = |r: Option<Response>| r.map_or("baseline", Response::as_str).to_owned();
    let derived = responses[3];
    assessment::Model {
        assessment_id: Uuid::new_v4().to_string(),
        subject_id: req.subject_id.clone(),
        trial_id: subject.trial_id.clone(),
        // Empty when a central reviewer (blinded to allocation) records it; the analyses take
        // each subject's arm from enrollment.
        arm_code: subject.arm_code.clone(),
        assessed_on: assessment.assessed_on,
        after_cycle: req.after_cycle,
        assessor: assessment.assessor.as_str().to_owned(),
        criteria: "inrc_2017".into(),
        primary_mm: measures.primary_mm.map(wire::to_stored).unwrap_or_default(),
        primary_avid: measures.primary_avid,
        metastases_sum_mm: measures.mets_sum.map(wire::to_stored).unwrap_or_default(),
        metastases_under_10_mm: measures.mets_under_10,
        curie_score: measures.curie as i32,
        curie_skeletal_score: Some(measures.skeletal as i32),
        fdg_avid_lesions: measures.fdg.map(|n| n as i32),
        new_lesions: measures.new_lesions,
        metastases_not_involved: req.metastases.as_ref().is_some_and(|m| m.not_involved),
        marrow_percent: wire::to_stored(measures.marrow),
        primary_not_involved: req.primary_tumour.as_ref().is_some_and(|p| p.not_involved),
        primary_response: name(responses[0]),
        metastases_response: name(responses[1]),
        marrow_response: name(responses[2]),
        derived_overall: name(derived),
        protocol_version: assessment.protocol_version.clone(),
        overall: name(override_to.or(derived)),
        override_reason: if override_to.is_some() {
            req.override_reason.trim().to_owned()
        } else {
            String::new()
        },
        recorded_at: trialops_platform::clock::now_stored(),
    }
}

/// GetResponseAssessment: one assessment, of a subject the caller sees.
pub(super) async fn get(
    api: &OutcomesApi,
    request: Request<pb::GetResponseAssessmentRequest>,
) -> Result<pb::GetResponseAssessmentResponse, AppError> {
    let call = CallContext::of(&request)?;
    let req = request.into_inner();
    trialops_platform::wire::fields::required("assessment_id", &req.assessment_id)?;
    let not_found = || AppError::NotFound {
        what: "assessment",
        id: req.assessment_id.clone(),
    };
    let found = assessment::find(&api.db, &req.assessment_id)
        .await?
        .ok_or_else(not_found)?;
    // A site-bound caller sees only their site's subjects: enrollment (with their token) decides.
    if call.site_scope.is_some() {
        api.deps.subject(&call, &found.subject_id).await.map_err(|e| match e {
            AppError::FailedPrecondition { .. } | AppError::NotFound { .. } => not_found(),
            other => other,
        })?;
    }
    let mut shown = [convert::assessment(&found)?];
    signatures::with_assessment_signatures(&api.db, std::slice::from_ref(&found), &mut shown).await?;
    let [shown] = shown;
    Ok(pb::GetResponseAssessmentResponse {
        assessment: Some(shown),
    })
}

pub(super) async fn list(
    api: &OutcomesApi,
    request: Request<pb::ListResponseAssessmentsRequest>,
) -> Result<pb::ListResponseAssessmentsResponse, AppError> {
    let call = CallContext::of(&request)?;
    let req = request.into_inner();
    if req.subject_id.is_empty() {
        return Err(AppError::invalid("subject_id", "required"));
    }
    // A site-bound caller sees only their site's subjects: enrollment (with their token) decides.
    if call.site_scope.is_some() {
        api.deps.subject(&call, &req.subject_id).await.map_err(|e| match e {
            AppError::FailedPrecondition { .. } => AppError::NotFound {
                what: "subject",
                id: req.subject_id.clone(),
            },
            other => other,
        })?;
    }
    let scope = format!("assessments|{}", req.subject_id);
    let page = pagination::page(req.page_size, &req.page_token, &scope)?;
    // A subject has a handful of assessments: read them all (best responses need them anyway).
    let all = rederivation::subject_assessments(&api.db, &req.subject_id).await?;
    let best = |central: bool| -> Result<i32, AppError> {
        let mut overall = Vec::new();
        for a in all.iter().filter(|a| a.after_cycle > 0) {
            if (a.assessor()? == assessment::Assessor::CentralReview) == central {
                overall.extend(a.overall()?);
            }
        }
        Ok(inrc::best(overall).map_or(pb::Response::Unspecified, convert::response) as i32)
    };
    let key = |a: &assessment::Model| format!("{}|{}", a.assessed_on, a.assessment_id);
    let rows: Vec<_> = all
        .iter()
        .filter(|a| page.after.as_ref().is_none_or(|after| key(a) > *after))
        .take(page.size as usize + 1)
        .cloned()
        .collect();
    let (rows, next_page_token) = pagination::split(rows, &page, &scope, key);
    let mut assessments = rows.iter().map(convert::assessment).collect::<Result<Vec<_>, _>>()?;
    signatures::with_assessment_signatures(&api.db, &rows, &mut assessments).await?;
    Ok(pb::ListResponseAssessmentsResponse {
        assessments,
        next_page_token,
        best_site_response: best(false)?,
        best_central_response: best(true)?,
    })
}
