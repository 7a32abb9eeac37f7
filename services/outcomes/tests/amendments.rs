//! Records judged under the protocol version in force on their own dates, on a simulated calendar:
//! ANBL1221 starts under version 1.0 (metastases not judged by FDG-avid lesions), and version
//! 2.0, which judges them so, takes effect three days later. Screenings, enrollments and response
//! assessments name the version that judged them; an assessment dated before the amendment is
//! still judged by 1.0 when entered late. SQLite and PostgreSQL.

// Test code, helpers included, unwraps: a failure is a test failure with the value shown.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use chrono::{Duration, NaiveDate, TimeZone, Utc};
use common::*;
use tonic::Code;
use trialops_domain::protocol::{ANBL1221_TOML, anbl1221_before_dose_revision};
use trialops_platform::backend_tests;
use trialops_platform::clock::Clock;
use trialops_platform::wire::convert::to_date;
use trialops_proto::enrollment::v1 as epb;
use trialops_proto::outcomes::v1 as pb;

backend_tests!(records_name_the_version_in_force_on_their_dates);

fn with_fdg(mut request: pb::RecordResponseAssessmentRequest, on: NaiveDate) -> pb::RecordResponseAssessmentRequest {
    request.assessed_on = Some(to_date(on));
    if let Some(m) = request.metastases.as_mut() {
        m.fdg_avid_lesions = Some(2);
    }
    request
}

async fn records_name_the_version_in_force_on_their_dates(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("anbl1221.toml"), anbl1221_before_dose_revision()).unwrap();
    let d0 = NaiveDate::from_ymd_opt(2014, 1, 6).unwrap();
    let clock = Clock::simulated(Utc.from_utc_datetime(&d0.and_hms_opt(8, 0, 0).unwrap()));
    let options = trialops_enrollment::Options {
        randomization_secret: Some(enrollment::SECRET.to_vec()),
        server: trialops_platform::server::Options {
            clock: clock.clone(),
            ..Default::default()
        },
    };
    let protocol_dir = dir.path().to_path_buf();
    let set = TestStack::start_with(backend, options, move |_, settings| {
        settings.protocol_dir = Some(protocol_dir.clone());
    })
    .await;
    let mut e = enrollment::connect(&set.url(Service::Enrollment)).await;
    let mut o = common::Outcomes::connect(set.url(Service::Outcomes)).await.unwrap();
    enrollment::register_site(&mut e, "COG-101").await;
    let enroll = async |e: &mut enrollment::Client, screening: &str, on: NaiveDate| {
        let screened = e
            .screen_subject(epb::ScreenSubjectRequest {
                assessed_on: Some(to_date(on)),
                ..enrollment::screen_request("COG-101", screening)
            })
            .await
            .unwrap()
            .into_inner()
            .screening
            .unwrap();
        let mut request = enrollment::enroll_request(
            "COG-101",
            screening,
            enrollment::strata("no_prior_irinotecan_temozolomide", "amplified"),
        );
        request.consent.as_mut().unwrap().signed_on = Some(to_date(on));
        let subject = e.enroll_subject(request).await.unwrap().into_inner().subject.unwrap();
        (screened.protocol_version, subject)
    };

    // Day 0, under 1.0: screening, enrollment and the central baseline.
    let (screened_under, first) = enroll(&mut e, "SCR-1", d0).await;
    assert_eq!(
        (screened_under.as_str(), first.protocol_version.as_str()),
        ("1.0", "1.0")
    );
    let baseline = assessment(&first.subject_id, 0, true, ("40", true), ("30", 6, false), "20");
    let baseline = pb::RecordResponseAssessmentRequest {
        assessed_on: Some(to_date(d0)),
        ..baseline
    };
    let recorded = o
        .record_response_assessment(baseline)
        .await
        .unwrap()
        .into_inner()
        .assessment
        .unwrap();
    assert_eq!(recorded.protocol_version, "1.0");

    // Version 2.0 judges metastases by FDG-avid lesions too; in force from day 3.
    let fdg = ANBL1221_TOML.replacen("fdg_avid_lesion_route = false", "fdg_avid_lesion_route = true", 1);
    assert_ne!(fdg, ANBL1221_TOML);
    e.amend_protocol(epb::AmendProtocolRequest {
        request_id: request_id(),
        trial_id: "ANBL1221".into(),
        definition: fdg,
        effective_on: Some(to_date(d0 + Duration::days(3))),
        reason: "Amendment 2: dinutuximab 17.5 mg/m2/day; FDG-PET for metastases".into(),
    })
    .await
    .unwrap();
    // Still day 0: 1.0 refuses FDG-avid lesions.
    let early = assessment(&first.subject_id, 2, true, ("10", true), ("10", 2, false), "0");
    let err = o
        .record_response_assessment(with_fdg(early.clone(), d0))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(violated_fields(&err), ["metastases.fdg_avid_lesions"]);

    // Day 3, under 2.0: a new child is screened and enrolled under 2.0, and an assessment with
    // FDG-avid lesions is judged by 2.0's rules.
    clock
        .simulation()
        .unwrap()
        .advance_to(Utc.from_utc_datetime(&(d0 + Duration::days(3)).and_hms_opt(9, 0, 0).unwrap()));
    let (screened_under, second) = enroll(&mut e, "SCR-2", d0 + Duration::days(3)).await;
    assert_eq!(
        (screened_under.as_str(), second.protocol_version.as_str()),
        ("2.0", "2.0")
    );
    let after = o
        .record_response_assessment(with_fdg(early.clone(), d0 + Duration::days(3)))
        .await
        .unwrap()
        .into_inner()
        .assessment
        .unwrap();
    assert_eq!(after.protocol_version, "2.0");
    // A late entry for day 1, before the amendment, is still judged by 1.0: FDG refused.
    let late = pb::RecordResponseAssessmentRequest {
        request_id: request_id(),
        ..with_fdg(early, d0 + Duration::days(1))
    };
    let err = o.record_response_assessment(late).await.unwrap_err();
    assert_eq!(violated_fields(&err), ["metastases.fdg_avid_lesions"]);
    // The first child keeps the version of its own enrollment.
    let first_now = e
        .get_subject(epb::GetSubjectRequest {
            subject_id: first.subject_id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .subject
        .unwrap();
    assert_eq!(first_now.protocol_version, "1.0");
    set.stop().await;
}
