//! Response assessments over gRPC: INRC component and overall responses derived against the
//! baseline.

// Test code, helpers included, unwraps: a failure is a test failure with the value shown.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use tonic::Code;
use trialops_platform::backend_tests;
use trialops_proto::outcomes::v1 as pb;

backend_tests!(assessments_derive_inrc_responses,);

async fn assessments_derive_inrc_responses(backend: Backend) {
    let s = stack(backend).await;
    let mut o = s.outcomes().await;
    let subject = s.subject("SCR-1", true).await;
    let id = subject.subject_id.as_str();

    let early = o
        .record_response_assessment(assessment(id, 2, true, ("30", true), ("20", 4, false), "4"))
        .await
        .err();
    assert_eq!(early.map(|e| reason(&e)).as_deref(), Some("NO_BASELINE_ASSESSMENT"));
    // Baseline: primary 50 mm avid; metastases sum 40 mm, Curie 10; marrow 30%.
    let baseline = o
        .record_response_assessment(assessment(id, 0, true, ("50", true), ("40", 10, false), "30"))
        .await
        .unwrap()
        .into_inner()
        .assessment
        .unwrap_or_default();
    assert_eq!(baseline.overall_response, resp(pb::Response::Unspecified));
    let again = o
        .record_response_assessment(assessment(id, 0, true, ("50", true), ("40", 10, false), "30"))
        .await
        .err();
    assert_eq!(again.map(|e| reason(&e)).as_deref(), Some("BASELINE_EXISTS"));

    // After cycle 2: primary 30 (-40%) PR; metastases 20 (-50%), Curie 4/10 = 0.4: PR;
    // marrow 30% -> 4%: MD. Overall PR.
    let c2 = o
        .record_response_assessment(assessment(id, 2, true, ("30", true), ("20", 4, false), "4"))
        .await
        .unwrap()
        .into_inner()
        .assessment
        .unwrap_or_default();
    assert_eq!(
        (
            c2.primary_tumour_response,
            c2.metastases_response,
            c2.bone_marrow_response,
            c2.overall_response
        ),
        (
            resp(pb::Response::Pr),
            resp(pb::Response::Pr),
            resp(pb::Response::Md),
            resp(pb::Response::Pr)
        )
    );
    // After cycle 4: primary 8 mm, uptake resolved; metastases resolved; marrow clear: CR.
    let c4 = o
        .record_response_assessment(assessment(id, 4, true, ("8", false), ("0", 0, true), "0"))
        .await
        .unwrap()
        .into_inner()
        .assessment
        .unwrap_or_default();
    assert_eq!(c4.overall_response, resp(pb::Response::Cr));

    // Site review: an override keeps the derived response beside it and needs a reason.
    o.record_response_assessment(assessment(id, 0, false, ("50", true), ("40", 10, false), "30"))
        .await
        .unwrap();
    let mut overridden = assessment(id, 2, false, ("30", true), ("20", 4, false), "4");
    overridden.override_overall_response = pb::Response::Sd as i32;
    let err = o
        .record_response_assessment(overridden.clone())
        .await
        .expect_err("accepted");
    assert_eq!(violated_fields(&err), ["override_reason"]);
    overridden.override_reason = "marrow sample inadequate; residual disease suspected".into();
    let site = o
        .record_response_assessment(overridden)
        .await
        .unwrap()
        .into_inner()
        .assessment
        .unwrap_or_default();
    assert_eq!(
        (site.derived_overall_response, site.overall_response),
        (resp(pb::Response::Pr), resp(pb::Response::Sd))
    );

    let listed = o
        .list_response_assessments(pb::ListResponseAssessmentsRequest {
            subject_id: id.into(),
            page_size: 2,
            page_token: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.assessments.len(), 2);
    assert!(!listed.next_page_token.is_empty());
    assert_eq!(
        (listed.best_central_response, listed.best_site_response),
        (resp(pb::Response::Cr), resp(pb::Response::Sd))
    );
    // One by id: the site's assessment as recorded (its override kept), and an unknown id.
    let read = o
        .get_response_assessment(pb::GetResponseAssessmentRequest {
            assessment_id: site.assessment_id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .assessment
        .unwrap_or_default();
    assert_eq!(read, site);
    let unknown = o
        .get_response_assessment(pb::GetResponseAssessmentRequest {
            assessment_id: "no-such-assessment".into(),
        })
        .await
        .unwrap_err();
    assert_refused(&unknown, Code::NotFound, "NOT_FOUND");

    let mut bad = assessment(id, 6, true, ("30", true), ("20", 4, false), "120");
    bad.assessed_on = s.time.date(30);
    if let Some(m) = bad.metastases.as_mut() {
        m.curie_segment_scores = vec![1; 9];
    }
    let err = o.record_response_assessment(bad).await.expect_err("accepted");
    assert_eq!(
        violated_fields(&err),
        [
            "assessed_on",
            "metastases.curie_segment_scores",
            "bone_marrow.tumour_infiltration_percent"
        ]
    );
    s.stop().await;
}
