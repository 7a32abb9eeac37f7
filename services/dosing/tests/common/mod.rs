//! Test harness: the services (each on its own fresh database) talking over gRPC, started by
//! the shared test kit, and helpers to enroll a subject and start cycles.
#![allow(dead_code, unused_imports)]

use tonic::transport::Channel;
pub use trialops_enrollment::testing as enrollment;
pub use trialops_platform::testing::{
    Backend, RunningServer, TestDatabase, assert_refused, metadata, reason, request_id, violated_fields,
};
use trialops_proto::common::v1::{Date, Decimal};
use trialops_proto::dosing::v1 as pb;
use trialops_proto::dosing::v1::dosing_service_client::DosingServiceClient;
pub use trialops_stack::Service;
pub use trialops_stack::testing::{self, TestStack};

pub type Dosing = DosingServiceClient<Channel>;

/// The services on fresh databases of one backend (the shared test kit; dosing's tests call
/// enrollment and dosing).
pub struct Stack {
    pub set: TestStack,
}

pub async fn stack(backend: Backend) -> Stack {
    Stack {
        set: TestStack::start(backend, testing::unchanged).await,
    }
}

impl Stack {
    pub async fn dosing(&self) -> Dosing {
        DosingServiceClient::connect(self.set.url(Service::Dosing))
            .await
            .unwrap()
    }

    pub async fn enrollment(&self) -> enrollment::Client {
        enrollment::connect(&self.set.url(Service::Enrollment)).await
    }

    /// Registers COG-101 (once), enrolls a candidate and creates the treatment plan.
    pub async fn subject_with_plan(&self, screening_id: &str) -> pb::TreatmentPlan {
        let mut e = self.enrollment().await;
        let sites = e
            .list_sites(trialops_proto::enrollment::v1::ListSitesRequest::default())
            .await;
        if sites.map(|s| s.into_inner().sites.is_empty()).unwrap_or(true) {
            enrollment::register_site(&mut e, "COG-101").await;
        }
        let subject = enrollment::enroll(
            &mut e,
            "COG-101",
            screening_id,
            enrollment::strata("no_prior_irinotecan_temozolomide", "amplified"),
        )
        .await;
        self.dosing()
            .await
            .create_treatment_plan(pb::CreateTreatmentPlanRequest {
                request_id: request_id(),
                subject_id: subject.subject_id,
            })
            .await
            .expect("plan")
            .into_inner()
            .plan
            .unwrap_or_default()
    }

    /// A client, and the plan of SCR-1 whose cycle 1 started on 5 January 2026 (102 cm, 16 kg,
    /// ANC 1000/uL): where most cycle scenarios begin.
    pub async fn first_cycle(&self) -> (Dosing, pb::TreatmentPlan) {
        let mut d = self.dosing().await;
        let plan = self.subject_with_plan("SCR-1").await;
        d.start_cycle(start(&plan.subject_id, 1, date(2026, 1, 5), "102", "16", "1000"))
            .await
            .unwrap();
        (d, plan)
    }

    /// Plans for one subject on each arm, A then B: candidates are enrolled in one stratum until
    /// both arms have one. Every permuted block holds both arms and the first is at most 4 long,
    /// so this takes at most 4 candidates whatever the secret; with the tests' fixed secret it is
    /// the same subjects every run.
    pub async fn subjects_on_both_arms(&self) -> (pb::TreatmentPlan, pb::TreatmentPlan) {
        let (mut a, mut b) = (None, None);
        for n in 1..=4 {
            let plan = self.subject_with_plan(&format!("SCR-ARM-{n}")).await;
            match plan.arm_code.as_str() {
                "A" if a.is_none() => a = Some(plan),
                "B" if b.is_none() => b = Some(plan),
                _ => {}
            }
            if let (Some(a), Some(b)) = (&a, &b) {
                return (a.clone(), b.clone());
            }
        }
        panic!("the first block of the stratum did not hold both arms");
    }

    pub async fn stop(self) {
        self.set.stop().await;
    }
}

pub fn dec(value: &str) -> Option<Decimal> {
    Some(Decimal {
        value: value.to_owned(),
    })
}

pub fn date(y: i32, m: i32, d: i32) -> Option<Date> {
    Some(Date {
        year: y,
        month: m,
        day: d,
    })
}

/// A StartCycle request with counts measured now.
pub fn start(
    subject_id: &str,
    cycle: i32,
    day1: Option<Date>,
    height: &str,
    weight: &str,
    anc: &str,
) -> pb::StartCycleRequest {
    pb::StartCycleRequest {
        request_id: request_id(),
        subject_id: subject_id.to_owned(),
        cycle_number: cycle,
        planned_start_date: day1,
        height_cm: dec(height),
        weight_kg: dec(weight),
        anc_per_ul: dec(anc),
        platelets_per_ul: dec("120000"),
        measured_at: Some(prost_types::Timestamp {
            seconds: chrono::Utc::now().timestamp() - 3600,
            nanos: 0,
        }),
        confirm_implausible_measurements: false,
    }
}

/// The rounded dose of each agent of a cycle, as (agent, dose) text pairs.
pub fn rounded(cycle: &pb::Cycle) -> Vec<(String, String)> {
    cycle
        .doses
        .iter()
        .map(|d| (d.agent_id.clone(), d.rounded_dose.clone().unwrap_or_default().value))
        .collect()
}

pub async fn administrations(client: &mut Dosing, from: Option<Date>, to: Option<Date>) -> Vec<pb::Administration> {
    let mut out = Vec::new();
    let mut token = String::new();
    loop {
        let page = client
            .list_administrations(pb::ListAdministrationsRequest {
                site_code: "COG-101".into(),
                from_date: from,
                to_date: to,
                page_size: 7,
                page_token: token,
            })
            .await
            .expect("worklist")
            .into_inner();
        out.extend(page.administrations);
        if page.next_page_token.is_empty() {
            return out;
        }
        token = page.next_page_token;
    }
}
