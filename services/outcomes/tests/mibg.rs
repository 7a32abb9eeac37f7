//! Metastases through the API, on SQLite and PostgreSQL, with responses worked out by hand: the
//! relative MIBG score is the bone score (revised INRC, Park et al., JCO 2017), the 9 skeletal
//! Curie segments now ÷ at baseline, the soft-tissue segment left to the diameters; and the
//! FDG-PET route (>= 50% fewer FDG-avid lesions) only where the protocol takes it.

// Test code, helpers included, unwraps: a failure is a test failure with the value shown.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use trialops_platform::{audit_events, backend_tests};
use trialops_proto::outcomes::v1 as pb;

backend_tests!(
    metastases_are_judged_by_the_skeletal_mibg_score,
    fdg_avid_lesions_count_only_where_the_protocol_says,
    a_baseline_recorded_before_the_bone_score_stands_in_with_its_total
);

fn with_segments(
    subject_id: &str,
    after_cycle: i32,
    sum_mm: &str,
    segments: [i32; 10],
) -> pb::RecordResponseAssessmentRequest {
    let mut request = assessment(subject_id, after_cycle, true, ("50", true), (sum_mm, 0, false), "30");
    if let Some(m) = request.metastases.as_mut() {
        m.curie_segment_scores = segments.to_vec();
    }
    request
}

/// The metastases response of a recorded assessment.
fn metastases(a: Option<pb::ResponseAssessment>) -> pb::Response {
    pb::Response::try_from(a.unwrap_or_default().metastases_response).unwrap_or(pb::Response::Unspecified)
}

/// A subject's assessments as listed.
async fn listed(o: &mut Outcomes, subject_id: &str) -> Vec<pb::ResponseAssessment> {
    o.list_response_assessments(pb::ListResponseAssessmentsRequest {
        subject_id: subject_id.to_owned(),
        page_size: 10,
        page_token: String::new(),
    })
    .await
    .unwrap()
    .into_inner()
    .assessments
}

async fn metastases_are_judged_by_the_skeletal_mibg_score(backend: Backend) {
    let s = stack(backend).await;
    let mut o = s.outcomes().await;

    // Bone 10 -> 4 (relative 0.4), soft tissue 3 -> 3, sum 40 -> 20 mm (-50%): PR.
    // All ten segments (13 -> 7 = 0.54) would have said SD.
    let first = s.subject("SCR-1", true).await;
    o.record_response_assessment(with_segments(
        &first.subject_id,
        0,
        "40",
        [2, 2, 2, 2, 2, 0, 0, 0, 0, 3],
    ))
    .await
    .unwrap();
    let after = o
        .record_response_assessment(with_segments(
            &first.subject_id,
            2,
            "20",
            [2, 2, 0, 0, 0, 0, 0, 0, 0, 3],
        ))
        .await
        .unwrap()
        .into_inner()
        .assessment;
    assert_eq!(metastases(after), pb::Response::Pr);

    // Soft tissue 0 -> 3 with the skeleton unchanged (9 -> 9) and the sum unchanged: SD.
    // All ten segments (9 -> 12 = 1.33 >= 1.2) would have said PD.
    let second = s.subject("SCR-2", true).await;
    o.record_response_assessment(with_segments(
        &second.subject_id,
        0,
        "40",
        [1, 1, 1, 1, 1, 1, 1, 1, 1, 0],
    ))
    .await
    .unwrap();
    let after = o
        .record_response_assessment(with_segments(
            &second.subject_id,
            2,
            "40",
            [1, 1, 1, 1, 1, 1, 1, 1, 1, 3],
        ))
        .await
        .unwrap()
        .into_inner()
        .assessment;
    assert_eq!(metastases(after), pb::Response::Sd);
    s.stop().await;
}

async fn fdg_avid_lesions_count_only_where_the_protocol_says(backend: Backend) {
    let with_fdg = |subject_id: &str, after_cycle: i32, sum: &str, bone: [i32; 10], fdg: i32| {
        let mut request = with_segments(subject_id, after_cycle, sum, bone);
        if let Some(m) = request.metastases.as_mut() {
            m.fdg_avid_lesions = Some(fdg);
        }
        request
    };
    // ANBL1221's definition does not use FDG-avid lesions: the count is refused, naming it.
    let s = stack(backend).await;
    let mut o = s.outcomes().await;
    let subject = s.subject("SCR-1", true).await;
    let err = o
        .record_response_assessment(with_fdg(
            &subject.subject_id,
            0,
            "100",
            [2, 2, 2, 2, 2, 0, 0, 0, 0, 0],
            4,
        ))
        .await
        .expect_err("accepted");
    assert_eq!(violated_fields(&err), ["metastases.fdg_avid_lesions"]);
    s.stop().await;

    // A definition taking the FDG route: sum 100 -> 60 mm (-40%), bone 10 -> 6 (0.6, not enough
    // alone), FDG-avid lesions 4 -> 2 (half): PR.
    let protocols = tempfile::tempdir().unwrap();
    bundled_as(protocols.path(), "FDGROUTE1", |line| {
        line.starts_with("fdg_avid_lesion_route")
            .then(|| "fdg_avid_lesion_route = true".to_owned())
    });
    let s = stack_with(backend, Some(protocols.path())).await;
    let mut o = s.outcomes().await;
    let subject = s.subject_in("FDGROUTE1", "SCR-1", true).await;
    o.record_response_assessment(with_fdg(
        &subject.subject_id,
        0,
        "100",
        [2, 2, 2, 2, 2, 0, 0, 0, 0, 0],
        4,
    ))
    .await
    .unwrap();
    let after = o
        .record_response_assessment(with_fdg(
            &subject.subject_id,
            2,
            "60",
            [2, 2, 1, 1, 0, 0, 0, 0, 0, 0],
            2,
        ))
        .await
        .unwrap()
        .into_inner()
        .assessment;
    assert_eq!(metastases(after), pb::Response::Pr);
    s.stop().await;
}

/// Assessments recorded before the skeletal score was stored kept only the total of the 10
/// segments: against such a baseline the total stands in for the bone score (the documented
/// interpretation until their segments can be re-entered).
async fn a_baseline_recorded_before_the_bone_score_stands_in_with_its_total(backend: Backend) {
    use sea_orm::{ConnectionTrait, Database};
    let s = stack(backend).await;
    let mut o = s.outcomes().await;
    let subject = s.subject("SCR-1", true).await;
    o.record_response_assessment(with_segments(
        &subject.subject_id,
        0,
        "40",
        [2, 2, 2, 2, 2, 0, 0, 0, 0, 3],
    ))
    .await
    .unwrap();
    // As an earlier release left it: no skeletal score.
    let conn = Database::connect(&s.set.dbs[2].url).await.unwrap();
    conn.execute_unprepared("UPDATE assessments SET curie_skeletal_score = NULL")
        .await
        .unwrap();
    conn.close().await.unwrap();
    // Bone now 6. Against the true bone baseline 10 that is 0.6 (SD); against the stored total
    // 13 it is 0.46, and with the sum 40 -> 20 mm (-50%) the metastases read PR.
    let after = o
        .record_response_assessment(with_segments(
            &subject.subject_id,
            2,
            "20",
            [2, 2, 2, 0, 0, 0, 0, 0, 0, 0],
        ))
        .await
        .unwrap()
        .into_inner()
        .assessment
        .unwrap_or_default();
    assert_eq!(after.metastases_response, pb::Response::Pr as i32);
    let report = |o: &mut Outcomes| {
        let mut o = o.clone();
        async move {
            o.get_trial_report(pb::GetTrialReportRequest {
                trial_id: "ANBL1221".into(),
                confidence_level: dec("0.95"),
            })
            .await
            .unwrap()
            .into_inner()
        }
    };
    let before = report(&mut o).await;
    assert_eq!(
        (before.assessments_awaiting_curie_segments, before.assessments_rederived),
        (1, 0),
        "the baseline lacks its bone score (the follow-up, recorded after, has it)"
    );

    // The baseline's segments re-entered: the later assessment is derived again against the true
    // bone baseline, 6 / 10 = 0.6 > 0.5: metastases SD. Appended, not rewritten.
    let baseline_id = listed(&mut o, &subject.subject_id)
        .await
        .into_iter()
        .find(|a| a.after_cycle == 0)
        .map(|a| a.assessment_id)
        .unwrap_or_default();
    let reenter = |segments: Vec<i32>| pb::ReenterCurieSegmentsRequest {
        request_id: request_id(),
        assessment_id: baseline_id.clone(),
        curie_segment_scores: segments,
        reason: "segments re-entered from the central review sheet".into(),
    };
    let wrong_total = o
        .reenter_curie_segments(reenter(vec![3, 3, 2, 2, 2, 0, 0, 0, 0, 3]))
        .await
        .expect_err("segments of another scan were accepted");
    assert_eq!(violated_fields(&wrong_total), ["curie_segment_scores"]);
    let request = reenter(vec![2, 2, 2, 2, 2, 0, 0, 0, 0, 3]);
    let rederived = o
        .reenter_curie_segments(request.clone())
        .await
        .unwrap()
        .into_inner()
        .rederived;
    assert_eq!(rederived.len(), 1);
    assert_eq!(rederived[0].assessment_id, after.assessment_id);
    assert_eq!(rederived[0].metastases_response, pb::Response::Sd as i32);
    // A retry returns the first answer; entering them again is refused.
    let retried = o.reenter_curie_segments(request).await.unwrap().into_inner().rederived;
    assert_eq!(retried, rederived);
    let again = o
        .reenter_curie_segments(reenter(vec![2, 2, 2, 2, 2, 0, 0, 0, 0, 3]))
        .await
        .expect_err("re-entered twice");
    assert_eq!(reason(&again), "CURIE_SEGMENTS_ALREADY_RECORDED");

    // Every read shows the re-derived response; the trail keeps both.
    let follow_up = listed(&mut o, &subject.subject_id)
        .await
        .into_iter()
        .find(|a| a.after_cycle == 2)
        .unwrap_or_default();
    assert_eq!(follow_up.metastases_response, pb::Response::Sd as i32);
    let trail = audit_events!(o, pb, "assessment", after.assessment_id.clone());
    assert_eq!(
        trail.iter().map(|e| e.action.as_str()).collect::<Vec<_>>(),
        ["assessment.recorded", "assessment.rederived"]
    );
    let now = report(&mut o).await;
    assert_eq!(
        (now.assessments_awaiting_curie_segments, now.assessments_rederived),
        (0, 1),
        "nothing waits any more; one assessment changed"
    );
    s.stop().await;
}
