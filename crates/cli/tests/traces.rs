//! Traces across services: `trialops up` exporting OTLP to an in-process receiver. A call to
//! dosing that makes dosing call enrollment arrives as one trace: enrollment's server span is a
//! child of dosing's, through W3C trace context in gRPC metadata. Each span names the service it
//! ran in (the OTLP resource's `service.name`), though one process runs all three. No span
//! carries request text.

// Test code, helpers included, unwraps: a failure is a test failure with the value shown.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Started, start, up};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{TraceService, TraceServiceServer};
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::trace::v1::Span;
use tonic::{Request, Response, Status};
use trialops_proto::dosing::v1 as dpb;
use trialops_proto::dosing::v1::dosing_service_client::DosingServiceClient;
use trialops_proto::enrollment::v1 as epb;
use trialops_proto::enrollment::v1::enrollment_service_client::EnrollmentServiceClient;

/// The spans received, each with its resource's `service.name`.
#[derive(Default, Clone)]
struct Receiver(Arc<Mutex<Vec<(String, Span)>>>);

#[tonic::async_trait]
impl TraceService for Receiver {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        for resource_spans in request.into_inner().resource_spans {
            let service = resource_spans
                .resource
                .iter()
                .flat_map(|r| &r.attributes)
                .find(|a| a.key == "service.name")
                .and_then(|a| match a.value.as_ref()?.value.as_ref()? {
                    Value::StringValue(s) => Some(s.clone()),
                    _ => None,
                })
                .unwrap_or_default();
            let spans = resource_spans.scope_spans.into_iter().flat_map(|s| s.spans);
            if let Ok(mut all) = self.0.lock() {
                all.extend(spans.map(|span| (service.clone(), span)));
            }
        }
        Ok(Response::new(ExportTraceServiceResponse::default()))
    }
}

fn attribute(span: &Span, key: &str) -> Option<String> {
    span.attributes
        .iter()
        .find(|a| a.key == key)
        .and_then(|a| match a.value.as_ref()?.value.as_ref()? {
            Value::StringValue(s) => Some(s.clone()),
            Value::IntValue(i) => Some(i.to_string()),
            _ => None,
        })
}

fn text_of(span: &Span) -> String {
    let mut text = span.name.clone();
    for a in span
        .attributes
        .iter()
        .chain(span.events.iter().flat_map(|e| e.attributes.iter()))
    {
        text.push_str(&format!(" {}={:?}", a.key, a.value));
    }
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_trace_spans_dosing_and_enrollment() {
    let receiver = Receiver::default();
    // The collector listens before anything is told where it is: bound here, served from here.
    let collector = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let collector_port = collector.local_addr().map(|a| a.port()).unwrap();
    let server = receiver.clone();
    tokio::spawn(async move {
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(server))
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(collector))
            .await
    });

    let dir = tempfile::tempdir().unwrap();
    let mut command = up(dir.path());
    command
        .env(
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            format!("http://127.0.0.1:{collector_port}"),
        )
        .env("OTEL_BSP_SCHEDULE_DELAY", "200")
        // Identity headers instead of development tokens: this test is about traces.
        .env("TRIALOPS_AUTH_MODE", "development")
        .stderr(Stdio::null());
    let Started { mut child, ports, .. } = start(command);
    let mut enrollment = EnrollmentServiceClient::connect(format!("http://127.0.0.1:{}", ports[0]))
        .await
        .unwrap();
    // A free-text field that must never reach a span (stand-in for anything personal).
    let marker = "MARKER-Jane-Doe-Free-Text";
    enrollment
        .register_site(epb::RegisterSiteRequest {
            request_id: trialops_platform::testing::request_id(),
            site_code: "COG-101".into(),
            name: marker.into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let mut dosing = DosingServiceClient::connect(format!("http://127.0.0.1:{}", ports[1]))
        .await
        .unwrap();
    let _ = dosing
        .create_treatment_plan(dpb::CreateTreatmentPlanRequest {
            request_id: trialops_platform::testing::request_id(),
            subject_id: "ANBL1221-0001".into(),
        })
        .await;

    let started = Instant::now();
    let (dosing_span, enrollment_span, all) = loop {
        let spans = receiver.0.lock().map(|s| s.clone()).unwrap_or_default();
        let find = |name: &str| spans.iter().find(|(_, s)| s.name == name).cloned();
        if let (Some(d), Some(e)) = (
            find("trialops.dosing.v1.DosingService/CreateTreatmentPlan"),
            find("trialops.enrollment.v1.EnrollmentService/GetSubject"),
        ) {
            break (d, e, spans);
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "spans never arrived: {:?}",
            spans.iter().map(|(_, s)| &s.name).collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let _ = Command::new("kill").args(["-INT", &child.id().to_string()]).status();
    let _ = child.wait();
    let ((dosing_service, dosing_span), (enrollment_service, enrollment_span)) = (dosing_span, enrollment_span);
    assert_eq!(
        (dosing_service.as_str(), enrollment_service.as_str()),
        ("dosing", "enrollment")
    );

    assert_eq!(
        enrollment_span.trace_id, dosing_span.trace_id,
        "one trace across the services"
    );
    assert_eq!(
        enrollment_span.parent_span_id, dosing_span.span_id,
        "enrollment's span is dosing's child"
    );
    assert_eq!(attribute(&enrollment_span, "rpc.system").as_deref(), Some("grpc"));
    assert_eq!(
        attribute(&enrollment_span, "rpc.service").as_deref(),
        Some("trialops.enrollment.v1.EnrollmentService")
    );
    assert_eq!(attribute(&enrollment_span, "rpc.method").as_deref(), Some("GetSubject"));
    assert_eq!(
        attribute(&enrollment_span, "rpc.grpc.status_code").as_deref(),
        Some("5"),
        "NOT_FOUND"
    );
    assert_eq!(
        attribute(&enrollment_span, "enduser.role").as_deref(),
        Some("service"),
        "dosing calls as a service"
    );
    assert_eq!(
        attribute(&dosing_span, "rpc.grpc.status_code").as_deref(),
        Some("9"),
        "FAILED_PRECONDITION"
    );
    for (_, span) in &all {
        assert!(
            !text_of(span).contains(marker),
            "request text in a span: {}",
            text_of(span)
        );
    }
}
