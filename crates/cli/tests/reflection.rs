//! Server reflection in both versions a client may speak: `grpc.reflection.v1` and the older
//! `grpc.reflection.v1alpha` (Python's grpcio-reflection, Postman, older grpcurl). Each
//! service lists its own contract, health and reflection, and hands out the file that defines
//! its service.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use tonic::codegen::tokio_stream;
use tonic::transport::Channel;
use tonic_reflection::pb::{v1, v1alpha};
use trialops_platform::testing::Backend;
use trialops_stack::Service;
use trialops_stack::testing::{TestStack, unchanged};

const SERVICES: [(Service, &str); 3] = [
    (Service::Enrollment, "trialops.enrollment.v1.EnrollmentService"),
    (Service::Dosing, "trialops.dosing.v1.DosingService"),
    (Service::Outcomes, "trialops.outcomes.v1.OutcomesService"),
];

/// `async fn $name(url, symbol) -> (listed service names, bytes of the descriptor files that
/// define `symbol`)` over the reflection version `$version` (v1 and v1alpha differ only in
/// their package name).
macro_rules! ask {
    ($name:ident, $version:ident) => {
        async fn $name(url: String, symbol: &str) -> (Vec<String>, usize) {
            use $version::server_reflection_request::MessageRequest;
            use $version::server_reflection_response::MessageResponse;
            let channel = Channel::from_shared(url).unwrap().connect().await.unwrap();
            let mut client = $version::server_reflection_client::ServerReflectionClient::new(channel);
            let mut answers = Vec::new();
            for request in [
                MessageRequest::ListServices(String::new()),
                MessageRequest::FileContainingSymbol(symbol.to_owned()),
            ] {
                let request = $version::ServerReflectionRequest {
                    host: String::new(),
                    message_request: Some(request),
                };
                let mut stream = client
                    .server_reflection_info(tokio_stream::once(request))
                    .await
                    .unwrap()
                    .into_inner();
                answers.push(stream.message().await.unwrap().unwrap().message_response.unwrap());
            }
            let [
                MessageResponse::ListServicesResponse(list),
                MessageResponse::FileDescriptorResponse(files),
            ] = <[MessageResponse; 2]>::try_from(answers).unwrap()
            else {
                panic!("unexpected answers over {}", stringify!($version));
            };
            let names = list.service.into_iter().map(|s| s.name).collect();
            (names, files.file_descriptor_proto.iter().map(Vec::len).sum())
        }
    };
}

ask!(ask_v1, v1);
ask!(ask_v1alpha, v1alpha);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_service_answers_reflection_v1_and_v1alpha() {
    let stack = TestStack::start(Backend::Sqlite, unchanged).await;
    for (service, name) in SERVICES {
        let url = stack.url(service);
        let (v1_names, v1_bytes) = ask_v1(url.clone(), name).await;
        let (alpha_names, alpha_bytes) = ask_v1alpha(url, name).await;
        for names in [&v1_names, &alpha_names] {
            assert!(names.iter().any(|n| n == name), "{name} not in {names:?}");
            assert!(names.iter().any(|n| n == "grpc.health.v1.Health"), "{names:?}");
        }
        assert!(
            alpha_names
                .iter()
                .any(|n| n == "grpc.reflection.v1alpha.ServerReflection")
        );
        assert!(v1_bytes > 1000, "{name}: {v1_bytes} bytes of descriptors");
        assert_eq!(v1_bytes, alpha_bytes, "{name}: both versions hand out the same files");
    }
    stack.stop().await;
}
