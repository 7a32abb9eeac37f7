//! Hostile input at the transport: oversized messages and malformed protobuf are refused with a
//! clear code, nothing is written, and the server keeps serving. (Load shedding is tested on the
//! RPC layer itself, in `trialops_platform::server::rpc_layer`.)

// Test code, helpers included, unwraps: a failure is a test failure with the value shown.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use prost::Message;
use tonic::Code;
use trialops_enrollment::testing::{self as enrollment, Client};
use trialops_platform::testing::{Backend, TestDatabase, raw_call, request_id, settings};
use trialops_proto::enrollment::v1 as pb;

const REGISTER_SITE: &str = "/trialops.enrollment.v1.EnrollmentService/RegisterSite";

async fn sites(client: &mut Client) -> usize {
    client
        .list_sites(pb::ListSitesRequest::default())
        .await
        .unwrap()
        .into_inner()
        .sites
        .len()
}

fn register(site_code: &str, name: &str) -> pb::RegisterSiteRequest {
    pb::RegisterSiteRequest {
        request_id: request_id(),
        site_code: site_code.into(),
        name: name.into(),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_and_malformed_messages_are_refused_and_write_nothing() {
    let db = TestDatabase::create(Backend::Sqlite).await.expect("sqlite");
    let mut s = settings(&db.url);
    s.max_message_bytes = 4096;
    let server = enrollment::start_with(s).await;
    let mut client = enrollment::client(&server).await;
    let channel = tonic::transport::Endpoint::from_shared(server.url())
        .unwrap()
        .connect()
        .await
        .unwrap();

    // Larger than max_message_bytes: refused before any handler runs (tonic answers
    // OUT_OF_RANGE, naming the limit).
    let err = client
        .register_site(register("COG-101", &"x".repeat(10_000)))
        .await
        .expect_err("an oversized message was accepted");
    assert_eq!(err.code(), Code::OutOfRange, "{err:?}");
    assert!(err.message().contains("the limit is: 4096 bytes"), "{err:?}");

    // Malformed protobuf, each a different way of breaking the wire format. gRPC answers
    // INTERNAL for a message it cannot decode (as every gRPC implementation does).
    let valid = register("COG-101", "Hospital").encode_to_vec();
    let mut invalid_utf8 = Vec::new();
    // field 3 (name), length-delimited, 2 bytes that are not UTF-8
    invalid_utf8.extend_from_slice(&[0x1a, 0x02, 0xff, 0xfe]);
    let mut truncated = valid.clone();
    truncated.truncate(valid.len() - 3);
    let hostile: Vec<(&str, Vec<u8>)> = vec![
        ("length beyond the end", vec![0x0a, 0x7f, b'a']),
        ("invalid UTF-8 in a string", invalid_utf8),
        ("truncated message", truncated),
        ("wire type 7 does not exist", vec![0x0f, 0x01]),
        ("field number 0", vec![0x00, 0x01]),
        (
            "varint longer than 10 bytes",
            vec![0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01],
        ),
        ("wrong wire type for a string field", vec![0x0d, 0x01, 0x02, 0x03, 0x04]),
    ];
    for (what, body) in hostile {
        let err = raw_call(channel.clone(), REGISTER_SITE, body)
            .await
            .err()
            .unwrap_or_else(|| panic!("{what}: accepted"));
        assert_eq!(err.code(), Code::Internal, "{what}: {err:?}");
        assert!(err.message().contains("decode"), "{what}: {err:?}");
    }
    assert_eq!(sites(&mut client).await, 0, "a refused message wrote something");

    // Unknown fields are skipped (forward compatibility), and the server still serves.
    let mut with_unknown = valid.clone();
    with_unknown.extend_from_slice(&[0xf8, 0x0f, 0x01]); // field 255, varint 1
    raw_call(channel.clone(), REGISTER_SITE, with_unknown).await.unwrap();
    assert_eq!(sites(&mut client).await, 1);
    server.stop().await;
}

/// The size of what a refusal sends back: its message and its encoded details.
fn answer_bytes(status: &tonic::Status) -> usize {
    status.message().len() + status.details().len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_stay_small_whatever_the_request_holds() {
    use trialops_platform::testing::{jwt_settings, jwt_token, violated_fields, with_bearer};
    let db = TestDatabase::create(Backend::Sqlite).await.expect("sqlite");
    let server = enrollment::start_with(jwt_settings(settings(&db.url))).await;
    let mut client = enrollment::client(&server).await;
    let admin = jwt_token("admin", "administrator", None);
    let coordinator = jwt_token("coordinator-1", "site_coordinator", Some("COG-101"));
    client
        .register_site(with_bearer(register("COG-101", "Children's Hospital"), &admin))
        .await
        .unwrap();
    let screening = |values: Vec<pb::ScreeningValue>| pb::ScreenSubjectRequest {
        request_id: request_id(),
        trial_id: "ANBL1221".into(),
        site_code: "COG-101".into(),
        screening_id: "SCR-1".into(),
        assessed_on: enrollment::today(),
        values,
    };
    let unknown = |n: usize| {
        (0..n)
            .map(|i| enrollment::dec(&format!("unknown_{i}"), "1"))
            .collect::<Vec<_>>()
    };

    // 100,000 unknown variables (about 1.3 MB): one violation for the field, not 200,000.
    let flood = client
        .screen_subject(with_bearer(screening(unknown(100_000)), &coordinator))
        .await
        .expect_err("accepted");
    assert_eq!(flood.code(), Code::InvalidArgument);
    assert_eq!(violated_fields(&flood), ["values"]);
    assert_eq!(flood.message(), "invalid request: values");
    assert!(answer_bytes(&flood) < 1024, "{} bytes", answer_bytes(&flood));

    // 150 unknown variables, under the limit: the first 20 violations and a count of the rest.
    let many = client
        .screen_subject(with_bearer(screening(unknown(150)), &coordinator))
        .await
        .expect_err("accepted");
    let fields = violated_fields(&many);
    assert_eq!(fields.len(), 21, "{fields:?}");
    assert_eq!(fields[0], "values[0].variable_id");
    assert_eq!(fields[20], "request");
    assert!(many.message().ends_with("and 130 more"), "{}", many.message());
    assert!(answer_bytes(&many) < 8 * 1024, "{} bytes", answer_bytes(&many));

    // A 100,000-character identifier is not echoed back in full.
    let long = "X".repeat(100_000);
    let missing = client
        .get_subject(with_bearer(pb::GetSubjectRequest { subject_id: long }, &coordinator))
        .await
        .expect_err("found");
    assert!(answer_bytes(&missing) < 1024, "{} bytes", answer_bytes(&missing));
    let screenings = client
        .list_subjects(with_bearer(
            pb::ListSubjectsRequest {
                trial_id: "ANBL1221".into(),
                ..Default::default()
            },
            &admin,
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(screenings.subjects.is_empty(), "nothing was written");
    server.stop().await;
}
