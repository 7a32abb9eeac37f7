//! Trials and sites over gRPC: the loaded trials, registering and listing sites (SQLite and
//! PostgreSQL).

// Test code, helpers included, unwraps: a failure is a test failure with the value shown.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use tonic::Code;
use trialops_platform::backend_tests;
use trialops_platform::testing::Backend;
use trialops_proto::enrollment::v1 as pb;

backend_tests!(trials_and_sites,);

async fn trials_and_sites(backend: Backend) {
    let (_db, server) = start(backend).await;
    let mut c = client(&server).await;
    let trials = c
        .list_trials(pb::ListTrialsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        trials.trials.iter().map(|t| t.trial_id.as_str()).collect::<Vec<_>>(),
        ["ANBL1221"]
    );
    let trial = c
        .get_trial(pb::GetTrialRequest {
            trial_id: "ANBL1221".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .trial
        .unwrap_or_default();
    assert_eq!(trial.arms.len(), 2);
    assert_eq!(trial.eligibility_criteria.len(), 10);
    let anc = trial
        .screening_variables
        .iter()
        .find(|v| v.variable_id == "anc_per_ul")
        .cloned()
        .unwrap_or_default();
    assert_eq!((anc.unit.as_str(), anc.kind), ("/uL", pb::VariableKind::Decimal as i32));
    let err = c
        .get_trial(pb::GetTrialRequest {
            trial_id: "NOPE".into(),
        })
        .await
        .expect_err("found");
    assert_eq!(err.code(), Code::NotFound);

    // Registration is idempotent on the request id; a second registration of the code is refused.
    let req = pb::RegisterSiteRequest {
        request_id: request_id(),
        site_code: "COG-101".into(),
        name: "Children's Hospital".into(),
        ..Default::default()
    };
    let first = c.register_site(req.clone()).await.unwrap().into_inner();
    let replay = c.register_site(req.clone()).await.unwrap().into_inner();
    assert_eq!(first, replay);
    let again = pb::RegisterSiteRequest {
        request_id: request_id(),
        ..req.clone()
    };
    let err = c.register_site(again).await.expect_err("registered twice");
    assert_refused(&err, Code::AlreadyExists, "SITE_ALREADY_REGISTERED");
    let reused = pb::RegisterSiteRequest {
        site_code: "COG-102".into(),
        ..req
    };
    let err = c.register_site(reused).await.expect_err("request id reused");
    assert_refused(&err, Code::AlreadyExists, "REQUEST_ID_REUSED");

    for code in ["COG-103", "COG-102", "AB"] {
        register_site(&mut c, code).await;
    }
    let page1 = c
        .list_sites(pb::ListSitesRequest {
            page_size: 2,
            page_token: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    let page2 = c
        .list_sites(pb::ListSitesRequest {
            page_size: 2,
            page_token: page1.next_page_token.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    let codes: Vec<_> = page1
        .sites
        .iter()
        .chain(&page2.sites)
        .map(|s| s.site_code.as_str())
        .collect();
    assert_eq!(codes, ["AB", "COG-101", "COG-102", "COG-103"]);
    assert!(page2.next_page_token.is_empty());
    server.stop().await;
}
