//! SimulateAllocation over gRPC: the figures of the domain's simulation for the same trial,
//! sizes and seed (the figures themselves are checked against closed forms and a brute-force
//! simulation in `crates/domain/tests/simulation.rs`), and sizes out of bounds refused.

// Test code, helpers included, unwraps: a failure is a test failure with the value shown.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use trialops_domain::simulation::simulate;
use trialops_proto::enrollment::v1 as pb;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulation_over_grpc() {
    let (_db, server) = start(Backend::Sqlite).await;
    let mut c = client(&server).await;
    let request = |subjects, runs| pb::SimulateAllocationRequest {
        trial_id: "ANBL1221".into(),
        subjects,
        runs,
        seed: 8,
    };
    let answer = c.simulate_allocation(request(35, 40)).await.unwrap().into_inner();
    let expected = simulate(&trialops_domain::protocol::anbl1221().unwrap(), 35, 40, 8).unwrap();
    assert_eq!((answer.runs, answer.subjects, answer.strata), (40, 35, 6));
    assert_eq!(answer.correct_guess_rate, expected.correct_guess_rate);
    let running = answer.stratum_running_imbalance.unwrap();
    assert_eq!(running.max, expected.stratum_running_imbalance.max);
    assert!(answer.correct_guess_rate > 0.5 && answer.correct_guess_rate < 1.0);

    let refused = c.simulate_allocation(request(0, 40)).await.unwrap_err();
    assert_eq!(violated_fields(&refused), ["subjects"]);
    let refused = c.simulate_allocation(request(10_000, 201)).await.unwrap_err();
    assert_eq!(violated_fields(&refused), ["runs"]);
    let unknown = pb::SimulateAllocationRequest {
        trial_id: "NOPE".into(),
        ..request(35, 1)
    };
    assert_eq!(
        c.simulate_allocation(unknown).await.unwrap_err().code(),
        tonic::Code::NotFound
    );
    server.stop().await;
}
