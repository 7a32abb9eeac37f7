//! A replayed write is authorized exactly as a first call, on SQLite and PostgreSQL, with the
//! three services in JWT mode. Site A's staff make every write a site can make; site B's staff
//! of the same role then re-send each exact request (same `request_id`, same body). Each replay
//! must be refused, with the very answer site B gets for the same request under a new id, and
//! never with site A's stored record.
//!
//! RegisterSite is the one write left out: only administrators, who belong to no site, make it.

// Test code, helpers included, unwraps: a failure is a test failure with the value shown.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use tonic::Status;
use tonic::transport::Channel;
use trialops_enrollment::testing::{eligible_values, strata};
use trialops_platform::backend_tests;
use trialops_platform::testing::{Backend, TestTime, jwt_settings, jwt_token, reason, request_id, with_bearer};
use trialops_proto::common::v1::Decimal;
use trialops_proto::dosing::v1 as dpb;
use trialops_proto::dosing::v1::dosing_service_client::DosingServiceClient;
use trialops_proto::enrollment::v1 as epb;
use trialops_proto::enrollment::v1::enrollment_service_client::EnrollmentServiceClient;
use trialops_proto::outcomes::v1 as opb;
use trialops_proto::outcomes::v1::outcomes_service_client::OutcomesServiceClient;
use trialops_stack::Service;
use trialops_stack::testing::TestStack;

backend_tests!(a_replay_from_another_site_is_refused_like_a_first_call);

struct Stack {
    set: TestStack,
    e: EnrollmentServiceClient<Channel>,
    d: DosingServiceClient<Channel>,
    o: OutcomesServiceClient<Channel>,
}

async fn stack(backend: Backend) -> Stack {
    let set = TestStack::start(backend, |_, s| *s = jwt_settings(s.clone())).await;
    let connect = |service| {
        let url = set.url(service);
        async move {
            tonic::transport::Endpoint::from_shared(url)
                .unwrap()
                .connect()
                .await
                .unwrap()
        }
    };
    Stack {
        e: EnrollmentServiceClient::new(connect(Service::Enrollment).await),
        d: DosingServiceClient::new(connect(Service::Dosing).await),
        o: OutcomesServiceClient::new(connect(Service::Outcomes).await),
        set,
    }
}

/// Every write a site makes, as it was sent.
#[derive(Clone, Debug)]
enum Write {
    Screen(epb::ScreenSubjectRequest),
    Enroll(epb::EnrollSubjectRequest),
    Correct(epb::CorrectSubjectRequest),
    ChangeStatus(epb::ChangeSubjectStatusRequest),
    Plan(dpb::CreateTreatmentPlanRequest),
    StartCycle(dpb::StartCycleRequest),
    Administer(dpb::RecordAdministrationRequest),
    Modify(dpb::ApplyDoseModificationRequest),
    Discontinue(dpb::DiscontinueAgentRequest),
    Assess(opb::RecordResponseAssessmentRequest),
    AdverseEvent(opb::RecordAdverseEventRequest),
    UpdateAdverseEvent(opb::UpdateAdverseEventRequest),
    ReportSubmitted(opb::RecordReportSubmittedRequest),
    FollowUp(opb::RecordFollowUpRequest),
}

impl Write {
    /// The same request under a new request id.
    fn fresh(&self) -> Write {
        let mut w = self.clone();
        let id = match &mut w {
            Write::Screen(r) => &mut r.request_id,
            Write::Enroll(r) => &mut r.request_id,
            Write::Correct(r) => &mut r.request_id,
            Write::ChangeStatus(r) => &mut r.request_id,
            Write::Plan(r) => &mut r.request_id,
            Write::StartCycle(r) => &mut r.request_id,
            Write::Administer(r) => &mut r.request_id,
            Write::Modify(r) => &mut r.request_id,
            Write::Discontinue(r) => &mut r.request_id,
            Write::Assess(r) => &mut r.request_id,
            Write::AdverseEvent(r) => &mut r.request_id,
            Write::UpdateAdverseEvent(r) => &mut r.request_id,
            Write::ReportSubmitted(r) => &mut r.request_id,
            Write::FollowUp(r) => &mut r.request_id,
        };
        *id = request_id();
        w
    }
}

/// The same request under a new id, aimed at a record that does not exist; `None` for the writes
/// that name a site rather than a record (screening and enrolling).
fn elsewhere(write: &Write) -> Option<Write> {
    let mut w = write.fresh();
    let missing = "ANBL1221-9999".to_owned();
    match &mut w {
        Write::Screen(_) | Write::Enroll(_) => return None,
        Write::Correct(r) => r.subject_id = missing,
        Write::ChangeStatus(r) => r.subject_id = missing,
        Write::Plan(r) => r.subject_id = missing,
        Write::StartCycle(r) => r.subject_id = missing,
        Write::Modify(r) => r.subject_id = missing,
        Write::Discontinue(r) => r.subject_id = missing,
        Write::Assess(r) => r.subject_id = missing,
        Write::AdverseEvent(r) => r.subject_id = missing,
        Write::FollowUp(r) => r.subject_id = missing,
        Write::Administer(r) => r.administration_id = missing,
        Write::UpdateAdverseEvent(r) => r.adverse_event_id = missing,
        Write::ReportSubmitted(r) => r.obligation_id = missing,
    }
    Some(w)
}

/// Sends `write` with `token`; the answer's message, encoded, or the refusal.
async fn send(s: &Stack, write: &Write, token: &str) -> Result<Vec<u8>, Status> {
    use prost::Message;
    let (mut e, mut d, mut o) = (s.e.clone(), s.d.clone(), s.o.clone());
    Ok(match write.clone() {
        Write::Screen(q) => e
            .screen_subject(with_bearer(q, token))
            .await?
            .into_inner()
            .encode_to_vec(),
        Write::Enroll(q) => e
            .enroll_subject(with_bearer(q, token))
            .await?
            .into_inner()
            .encode_to_vec(),
        Write::Correct(q) => e
            .correct_subject(with_bearer(q, token))
            .await?
            .into_inner()
            .encode_to_vec(),
        Write::ChangeStatus(q) => e
            .change_subject_status(with_bearer(q, token))
            .await?
            .into_inner()
            .encode_to_vec(),
        Write::Plan(q) => d
            .create_treatment_plan(with_bearer(q, token))
            .await?
            .into_inner()
            .encode_to_vec(),
        Write::StartCycle(q) => d.start_cycle(with_bearer(q, token)).await?.into_inner().encode_to_vec(),
        Write::Administer(q) => d
            .record_administration(with_bearer(q, token))
            .await?
            .into_inner()
            .encode_to_vec(),
        Write::Modify(q) => d
            .apply_dose_modification(with_bearer(q, token))
            .await?
            .into_inner()
            .encode_to_vec(),
        Write::Discontinue(q) => d
            .discontinue_agent(with_bearer(q, token))
            .await?
            .into_inner()
            .encode_to_vec(),
        Write::Assess(q) => o
            .record_response_assessment(with_bearer(q, token))
            .await?
            .into_inner()
            .encode_to_vec(),
        Write::AdverseEvent(q) => o
            .record_adverse_event(with_bearer(q, token))
            .await?
            .into_inner()
            .encode_to_vec(),
        Write::UpdateAdverseEvent(q) => o
            .update_adverse_event(with_bearer(q, token))
            .await?
            .into_inner()
            .encode_to_vec(),
        Write::ReportSubmitted(q) => o
            .record_report_submitted(with_bearer(q, token))
            .await?
            .into_inner()
            .encode_to_vec(),
        Write::FollowUp(q) => o
            .record_follow_up(with_bearer(q, token))
            .await?
            .into_inner()
            .encode_to_vec(),
    })
}

fn dec(value: &str) -> Option<Decimal> {
    Some(Decimal { value: value.into() })
}

/// Sends `write` as site A's `role`, which must succeed, and keeps it for the replay.
async fn as_site_a<T: prost::Message + Default>(
    s: &Stack,
    done: &mut Vec<(Write, &'static str)>,
    role: &'static str,
    write: Write,
) -> T {
    let token = jwt_token(&format!("{role}-a"), role, Some("COG-101"));
    let bytes = send(s, &write, &token)
        .await
        .unwrap_or_else(|e| panic!("{write:?} as site A's {role}: {e}"));
    done.push((write, role));
    T::decode(bytes.as_slice()).unwrap()
}

async fn a_replay_from_another_site_is_refused_like_a_first_call(backend: Backend) {
    let s = stack(backend).await;
    let time = TestTime::now();
    let admin = jwt_token("admin", "administrator", None);
    for site in ["COG-101", "COG-202"] {
        let mut e = s.e.clone();
        e.register_site(with_bearer(
            epb::RegisterSiteRequest {
                request_id: request_id(),
                site_code: site.into(),
                name: format!("Hospital {site}"),
                ..Default::default()
            },
            &admin,
        ))
        .await
        .unwrap();
    }
    let mut done: Vec<(Write, &'static str)> = Vec::new();
    let w = &mut done;
    let (coordinator, pharmacist, investigator) = ("site_coordinator", "pharmacist", "investigator");

    let screen = epb::ScreenSubjectRequest {
        request_id: request_id(),
        trial_id: "ANBL1221".into(),
        site_code: "COG-101".into(),
        screening_id: "SCR-1".into(),
        assessed_on: time.date(0),
        values: eligible_values(),
    };
    let _: epb::ScreenSubjectResponse = as_site_a(&s, w, coordinator, Write::Screen(screen)).await;
    let enroll = epb::EnrollSubjectRequest {
        request_id: request_id(),
        trial_id: "ANBL1221".into(),
        site_code: "COG-101".into(),
        screening_id: "SCR-1".into(),
        consent: Some(epb::Consent {
            signed_on: time.date(0),
            form_version: "2.0".into(),
        }),
        strata: strata("no_prior_irinotecan_temozolomide", "amplified"),
    };
    let subject = as_site_a::<epb::EnrollSubjectResponse>(&s, w, coordinator, Write::Enroll(enroll))
        .await
        .subject
        .unwrap_or_default();
    let id = subject.subject_id.clone();
    let corrected = as_site_a::<epb::CorrectSubjectResponse>(
        &s,
        w,
        coordinator,
        Write::Correct(epb::CorrectSubjectRequest {
            request_id: request_id(),
            subject_id: id.clone(),
            etag: subject.etag.clone(),
            reason: "consent date transcribed wrongly".into(),
            consent: Some(epb::Consent {
                signed_on: time.date(-1),
                form_version: "2.0".into(),
            }),
            strata: vec![],
        }),
    )
    .await
    .subject
    .unwrap_or_default();

    let plan = as_site_a::<dpb::CreateTreatmentPlanResponse>(
        &s,
        w,
        pharmacist,
        Write::Plan(dpb::CreateTreatmentPlanRequest {
            request_id: request_id(),
            subject_id: id.clone(),
        }),
    )
    .await
    .plan
    .unwrap_or_default();
    let cycle = as_site_a::<dpb::StartCycleResponse>(
        &s,
        w,
        pharmacist,
        Write::StartCycle(dpb::StartCycleRequest {
            request_id: request_id(),
            subject_id: id.clone(),
            cycle_number: 1,
            planned_start_date: time.date(-2),
            height_cm: dec("102"),
            weight_kg: dec("16"),
            anc_per_ul: dec("1000"),
            platelets_per_ul: dec("120000"),
            measured_at: time.ago(50),
            confirm_implausible_measurements: false,
        }),
    )
    .await
    .cycle
    .unwrap_or_default();
    let mut d = s.d.clone();
    let first = d
        .list_administrations(with_bearer(
            dpb::ListAdministrationsRequest {
                site_code: "COG-101".into(),
                from_date: time.date(-2),
                to_date: time.date(-2),
                page_size: 50,
                page_token: String::new(),
            },
            &jwt_token("pharmacist-a", pharmacist, Some("COG-101")),
        ))
        .await
        .unwrap()
        .into_inner()
        .administrations
        .into_iter()
        .find(|a| a.agent_id == "temozolomide")
        .unwrap_or_default();
    let temozolomide = cycle
        .doses
        .iter()
        .find(|x| x.agent_id == "temozolomide")
        .and_then(|x| x.rounded_dose.clone());
    let _: dpb::RecordAdministrationResponse = as_site_a(
        &s,
        w,
        pharmacist,
        Write::Administer(dpb::RecordAdministrationRequest {
            request_id: request_id(),
            administration_id: first.administration_id.clone(),
            status: dpb::AdministrationStatus::Given as i32,
            actual_dose: temozolomide,
            started_at: time.ago(1),
            ended_at: time.ago(0),
            ..Default::default()
        }),
    )
    .await;
    let modified = as_site_a::<dpb::ApplyDoseModificationResponse>(
        &s,
        w,
        investigator,
        Write::Modify(dpb::ApplyDoseModificationRequest {
            request_id: request_id(),
            subject_id: id.clone(),
            etag: plan.etag.clone(),
            agent_id: "temozolomide".into(),
            dose_level: -1,
            reason: "grade 4 neutropenia".into(),
            adverse_event_id: String::new(),
        }),
    )
    .await
    .plan
    .unwrap_or_default();
    let _: dpb::DiscontinueAgentResponse = as_site_a(
        &s,
        w,
        investigator,
        Write::Discontinue(dpb::DiscontinueAgentRequest {
            request_id: request_id(),
            subject_id: id.clone(),
            etag: modified.etag.clone(),
            agent_id: "irinotecan".into(),
            reason: "grade 3 diarrhoea despite loperamide".into(),
        }),
    )
    .await;

    let _: opb::RecordResponseAssessmentResponse = as_site_a(
        &s,
        w,
        investigator,
        Write::Assess(opb::RecordResponseAssessmentRequest {
            request_id: request_id(),
            subject_id: id.clone(),
            assessed_on: time.date(0),
            after_cycle: 0,
            assessor: opb::Assessor::Site as i32,
            criteria: opb::ResponseCriteria::Inrc2017 as i32,
            primary_tumour: Some(opb::PrimaryTumour {
                longest_diameter_mm: dec("50"),
                avid: true,
                not_involved: false,
            }),
            metastases: Some(opb::Metastases {
                sum_of_diameters_mm: dec("40"),
                curie_segment_scores: vec![1; 10],
                new_lesions: false,
                not_involved: false,
                all_targets_under_10_mm: false,
                fdg_avid_lesions: None,
            }),
            bone_marrow: Some(opb::BoneMarrow {
                tumour_infiltration_percent: dec("30"),
                not_involved: false,
            }),
            override_overall_response: 0,
            override_reason: String::new(),
        }),
    )
    .await;
    let event = as_site_a::<opb::RecordAdverseEventResponse>(
        &s,
        w,
        investigator,
        Write::AdverseEvent(opb::RecordAdverseEventRequest {
            request_id: request_id(),
            subject_id: id.clone(),
            ctcae_term: "Neutrophil count decreased".into(),
            grade: 4,
            onset_on: time.date(0),
            site_aware_at: time.ago(0),
            attributions: vec![],
            seriousness: vec![],
        }),
    )
    .await
    .adverse_event
    .unwrap_or_default();
    let _: opb::UpdateAdverseEventResponse = as_site_a(
        &s,
        w,
        investigator,
        Write::UpdateAdverseEvent(opb::UpdateAdverseEventRequest {
            request_id: request_id(),
            adverse_event_id: event.adverse_event_id.clone(),
            etag: event.etag.clone(),
            grade: 0,
            resolved_on: time.date(0),
            reason: "counts recovered".into(),
        }),
    )
    .await;
    let obligation = event.obligations.first().cloned().unwrap_or_default();
    let _: opb::RecordReportSubmittedResponse = as_site_a(
        &s,
        w,
        investigator,
        Write::ReportSubmitted(opb::RecordReportSubmittedRequest {
            request_id: request_id(),
            obligation_id: obligation.obligation_id.clone(),
            submitted_at: time.ago(0),
        }),
    )
    .await;
    let _: opb::RecordFollowUpResponse = as_site_a(
        &s,
        w,
        coordinator,
        Write::FollowUp(opb::RecordFollowUpRequest {
            request_id: request_id(),
            subject_id: id.clone(),
            last_contact_on: time.date(0),
            vital_status: opb::VitalStatus::Alive as i32,
            progression_on: None,
            second_malignancy_on: None,
        }),
    )
    .await;
    // Replays while the subject is still on therapy, so site A's own retries still pass the
    // checks made before the idempotency record; the status change, which ends therapy, last.
    check_replays(&s, w).await;
    let _: epb::ChangeSubjectStatusResponse = as_site_a(
        &s,
        w,
        investigator,
        Write::ChangeStatus(epb::ChangeSubjectStatusRequest {
            request_id: request_id(),
            subject_id: id.clone(),
            etag: corrected.etag.clone(),
            new_status: epb::SubjectStatus::OffProtocolTherapy as i32,
            reason: "progression".into(),
            effective_on: time.date(0),
        }),
    )
    .await;
    assert_eq!(done.len(), 14, "every write a site makes");

    check_replays(&s, &done[13..]).await;
    s.set.stop().await;
}

/// Each write replayed by site B's staff of the same role: refused exactly as the same request
/// under a new id; site A's own retry still answers.
async fn check_replays(s: &Stack, done: &[(Write, &'static str)]) {
    for (write, role) in done {
        let b = jwt_token(&format!("{role}-b"), role, Some("COG-202"));
        let replay = send(s, write, &b).await;
        let fresh = send(s, &write.fresh(), &b).await;
        let replay = replay
            .err()
            .unwrap_or_else(|| panic!("site B's {role} got site A's answer to {write:?}"));
        let fresh = fresh
            .err()
            .unwrap_or_else(|| panic!("site B's {role} made {write:?} anew"));
        assert_eq!(
            (replay.code(), reason(&replay)),
            (fresh.code(), reason(&fresh)),
            "{write:?}: a replay answers as a first call"
        );
        assert!(!replay.message().contains("COG-101"), "{write:?}: {replay:?}");
        // Another site's record answers as a record that does not exist.
        if let Some(missing) = elsewhere(write) {
            let absent = send(s, &missing, &b)
                .await
                .err()
                .unwrap_or_else(|| panic!("{missing:?}"));
            assert_eq!(
                (fresh.code(), reason(&fresh)),
                (absent.code(), reason(&absent)),
                "{write:?}: another site's record and a missing one answer alike"
            );
        }
        // The same replay from site A's own staff still returns the stored answer.
        let a = jwt_token(&format!("{role}-a"), role, Some("COG-101"));
        assert!(send(s, write, &a).await.is_ok(), "{write:?}: site A's retry");
    }
}
