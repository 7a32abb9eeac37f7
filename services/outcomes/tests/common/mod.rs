//! Test harness: real enrollment, dosing and outcomes servers (each on its own fresh database)
//! talking over gRPC, and helpers to enroll, treat and assess subjects.
#![allow(dead_code, unused_imports)]

use tonic::transport::Channel;
pub use trialops_enrollment::testing as enrollment;
pub use trialops_platform::testing::{
    Backend, RunningServer, TestDatabase, TestTime, assert_refused, metadata, reason, request_id, violated_fields,
};
use trialops_proto::common::v1::{Date, Decimal};
use trialops_proto::dosing::v1 as dpb;
use trialops_proto::dosing::v1::dosing_service_client::DosingServiceClient;
use trialops_proto::outcomes::v1 as pb;
use trialops_proto::outcomes::v1::outcomes_service_client::OutcomesServiceClient;
pub use trialops_stack::Service;
pub use trialops_stack::testing::TestStack;

pub type Outcomes = OutcomesServiceClient<Channel>;

pub struct Stack {
    /// The one clock reading this test's dates and instants are built from.
    pub time: TestTime,
    /// The three services on their fresh databases (`dbs`: enrollment, dosing, outcomes).
    pub set: TestStack,
}

pub async fn stack(backend: Backend) -> Stack {
    stack_with(backend, None).await
}

/// The three servers, each also loading the protocol definitions in `protocol_dir`.
pub async fn stack_with(backend: Backend, protocol_dir: Option<&std::path::Path>) -> Stack {
    let set = TestStack::start(backend, |_, settings| {
        settings.protocol_dir = protocol_dir.map(ToOwned::to_owned);
    })
    .await;
    Stack {
        // Away from midnight, so the subjects enrolled next fall on the reading's day.
        time: TestTime::away_from_midnight().await,
        set,
    }
}

pub fn dec(value: &str) -> Option<Decimal> {
    Some(Decimal {
        value: value.to_owned(),
    })
}

impl Stack {
    pub async fn outcomes(&self) -> Outcomes {
        OutcomesServiceClient::connect(self.set.url(Service::Outcomes))
            .await
            .unwrap()
    }

    pub async fn dosing(&self) -> DosingServiceClient<Channel> {
        DosingServiceClient::connect(self.set.url(Service::Dosing))
            .await
            .unwrap()
    }

    /// Enrolls a subject at COG-101 (registering the site once); with `treat`, plans and starts
    /// cycle 1 two days before the test's clock reading (so an event up to 48 hours back still
    /// falls in cycle 1, at any time of day) and records its first administration as given.
    pub async fn subject(&self, screening_id: &str, treat: bool) -> trialops_proto::enrollment::v1::Subject {
        self.subject_in("ANBL1221", screening_id, treat).await
    }

    /// [`Stack::subject`] in trial `trial_id` (a definition from the stack's protocol folder).
    pub async fn subject_in(
        &self,
        trial_id: &str,
        screening_id: &str,
        treat: bool,
    ) -> trialops_proto::enrollment::v1::Subject {
        use trialops_proto::enrollment::v1 as epb;
        let mut e = enrollment::connect(&self.set.url(Service::Enrollment)).await;
        let sites = e.list_sites(epb::ListSitesRequest::default()).await;
        if sites.map(|s| s.into_inner().sites.is_empty()).unwrap_or(true) {
            enrollment::register_site(&mut e, "COG-101").await;
        }
        e.screen_subject(epb::ScreenSubjectRequest {
            trial_id: trial_id.into(),
            assessed_on: self.time.date(0),
            ..enrollment::screen_request("COG-101", screening_id)
        })
        .await
        .unwrap_or_else(|e| panic!("screen {screening_id}: {e}"));
        let mut enroll = enrollment::enroll_request(
            "COG-101",
            screening_id,
            enrollment::strata("no_prior_irinotecan_temozolomide", "amplified"),
        );
        enroll.trial_id = trial_id.into();
        let subject = e
            .enroll_subject(enroll)
            .await
            .unwrap_or_else(|e| panic!("enroll {screening_id}: {e}"))
            .into_inner()
            .subject
            .unwrap_or_default();
        if treat {
            let mut d = self.dosing().await;
            d.create_treatment_plan(dpb::CreateTreatmentPlanRequest {
                request_id: request_id(),
                subject_id: subject.subject_id.clone(),
            })
            .await
            .unwrap();
            d.start_cycle(dpb::StartCycleRequest {
                request_id: request_id(),
                subject_id: subject.subject_id.clone(),
                cycle_number: 1,
                planned_start_date: self.time.date(-2),
                height_cm: dec("102"),
                weight_kg: dec("16"),
                anc_per_ul: dec("1000"),
                platelets_per_ul: dec("120000"),
                measured_at: self.time.ago(50),
                confirm_implausible_measurements: false,
            })
            .await
            .unwrap();
            let first = d
                .list_administrations(dpb::ListAdministrationsRequest {
                    site_code: "COG-101".into(),
                    from_date: self.time.date(-2),
                    to_date: self.time.date(-2),
                    page_size: 500,
                    page_token: String::new(),
                })
                .await
                .unwrap()
                .into_inner()
                .administrations
                .into_iter()
                .find(|a| a.subject_id == subject.subject_id)
                .unwrap_or_default();
            d.record_administration(dpb::RecordAdministrationRequest {
                request_id: request_id(),
                administration_id: first.administration_id,
                status: dpb::AdministrationStatus::Given as i32,
                actual_dose: first.prescribed_dose,
                started_at: self.time.ago(1),
                ended_at: self.time.ago(0),
                ..Default::default()
            })
            .await
            .unwrap();
        }
        subject
    }

    pub async fn stop(self) {
        self.set.stop().await;
    }
}

/// An assessment request: primary mm (avid?), metastases sum mm and Curie total (spread over the
/// 10 segments), marrow %.
pub fn assessment(
    subject_id: &str,
    after_cycle: i32,
    central: bool,
    primary: (&str, bool),
    mets: (&str, u32, bool),
    marrow: &str,
) -> pb::RecordResponseAssessmentRequest {
    let mut scores = vec![0i32; 10];
    for i in 0..mets.1 as usize {
        scores[i % 10] += 1;
    }
    pb::RecordResponseAssessmentRequest {
        request_id: request_id(),
        subject_id: subject_id.to_owned(),
        // Today is a valid assessment date whenever the test runs.
        assessed_on: TestTime::now().date(0),
        after_cycle,
        assessor: if central {
            pb::Assessor::CentralReview
        } else {
            pb::Assessor::Site
        } as i32,
        criteria: pb::ResponseCriteria::Inrc2017 as i32,
        primary_tumour: Some(pb::PrimaryTumour {
            longest_diameter_mm: dec(primary.0),
            avid: primary.1,
            not_involved: false,
        }),
        metastases: Some(pb::Metastases {
            sum_of_diameters_mm: dec(mets.0),
            curie_segment_scores: scores,
            new_lesions: false,
            not_involved: false,
            all_targets_under_10_mm: mets.2,
            fdg_avid_lesions: None,
        }),
        bone_marrow: Some(pb::BoneMarrow {
            tumour_infiltration_percent: dec(marrow),
            not_involved: false,
        }),
        override_overall_response: 0,
        override_reason: String::new(),
    }
}

/// Writes the bundled ANBL1221 definition into `dir` as trial `id`, each line changed by `edit`
/// where it gives one: a protocol setting tested the other way.
pub fn bundled_as(dir: &std::path::Path, id: &str, edit: impl Fn(&str) -> Option<String>) {
    let bundled = include_str!("../../../../crates/domain/protocols/anbl1221.toml");
    let mut out = String::new();
    for line in bundled.lines() {
        let line = if line.starts_with("id = \"ANBL1221\"") {
            format!("id = \"{id}\"")
        } else {
            edit(line).unwrap_or_else(|| line.to_owned())
        };
        out.push_str(&line);
        out.push('\n');
    }
    assert!(out.contains(&format!("id = \"{id}\"")));
    std::fs::write(dir.join(format!("{id}.toml")), out).unwrap();
}

pub fn resp(r: pb::Response) -> i32 {
    r as i32
}
