//! gRPC-Web on the services' own ports, as a browser tool or an HTTP/1.1-only integration engine
//! speaks it: an HTTP/1.1 client (hyper), with the gRPC-Web framing written here from the
//! protocol's description, calls GetTrial with a bearer token and reads the message and the
//! trailers; a call without a token is refused as over gRPC; a page of a configured origin
//! passes the CORS preflight and another origin does not.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use prost::Message;
use trialops_platform::testing::{Backend, jwt_settings, jwt_token};
use trialops_proto::enrollment::v1 as epb;
use trialops_stack::Service;
use trialops_stack::testing::TestStack;

const TOOLS: &str = "https://tools.hospital.test";

/// Sends one HTTP/1.1 request and reads the whole answer.
async fn send(addr: &str, request: http::Request<Full<Bytes>>) -> (http::response::Parts, Bytes) {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(connection);
    let (parts, body) = sender.send_request(request).await.unwrap().into_parts();
    (parts, body.collect().await.unwrap().to_bytes())
}

/// A gRPC-Web call of `method` with `message`, as HTTP/1.1.
fn call(addr: &str, method: &str, message: &impl Message, token: Option<&str>) -> http::Request<Full<Bytes>> {
    let bytes = message.encode_to_vec();
    let mut body = vec![0u8];
    body.extend(u32::try_from(bytes.len()).unwrap().to_be_bytes());
    body.extend(bytes);
    let mut request = http::Request::post(format!("http://{addr}/{method}"))
        .header("host", addr)
        .header("content-type", "application/grpc-web+proto")
        .header("x-grpc-web", "1");
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    request.body(Full::new(Bytes::from(body))).unwrap()
}

/// The frames of a gRPC-Web answer: its messages and its trailer block.
fn frames(mut body: &[u8]) -> (Vec<Vec<u8>>, String) {
    let (mut messages, mut trailers) = (Vec::new(), String::new());
    while body.len() >= 5 {
        let length = u32::from_be_bytes(body[1..5].try_into().unwrap()) as usize;
        let content = &body[5..5 + length];
        if body[0] & 0x80 == 0 {
            messages.push(content.to_vec());
        } else {
            trailers.push_str(&String::from_utf8_lossy(content));
        }
        body = &body[5 + length..];
    }
    assert!(body.is_empty(), "a partial frame");
    (messages, trailers)
}

/// The grpc-status of an answer: from the trailer block, or the headers of a trailers-only one.
fn grpc_status(parts: &http::response::Parts, trailers: &str) -> String {
    let from_trailers = trailers
        .lines()
        .find_map(|l| l.trim().strip_prefix("grpc-status:").map(|v| v.trim().to_owned()));
    let from_headers = parts.headers.get("grpc-status").map(|v| v.to_str().unwrap().to_owned());
    from_trailers.or(from_headers).expect("no grpc-status")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_web_over_http1_with_tokens_and_cors() {
    let stack = TestStack::start(Backend::Sqlite, |_, s| {
        *s = jwt_settings(s.clone());
        s.grpc_web_allowed_origins = TOOLS.into();
    })
    .await;
    let url = stack.url(Service::Enrollment);
    let addr = url.trim_start_matches("http://");
    let method = "trialops.enrollment.v1.EnrollmentService/GetTrial";
    let request = epb::GetTrialRequest {
        trial_id: "ANBL1221".into(),
    };

    let statistician = jwt_token("statistician-1", "statistician", None);
    let (parts, body) = send(addr, call(addr, method, &request, Some(&statistician))).await;
    assert_eq!(parts.status, http::StatusCode::OK);
    let content_type = parts.headers["content-type"].to_str().unwrap();
    assert!(content_type.starts_with("application/grpc-web"), "{content_type}");
    let (messages, trailers) = frames(&body);
    assert_eq!(grpc_status(&parts, &trailers), "0", "{trailers}");
    let [message] = messages.as_slice() else {
        panic!("{} messages", messages.len())
    };
    let trial = epb::GetTrialResponse::decode(message.as_slice())
        .unwrap()
        .trial
        .unwrap();
    assert_eq!(trial.summary.unwrap().trial_id, "ANBL1221");
    assert!(trial.arms.len() >= 2);

    // Without a token: UNAUTHENTICATED (16), as over gRPC.
    let (parts, body) = send(addr, call(addr, method, &request, None)).await;
    let (messages, trailers) = frames(&body);
    assert!(messages.is_empty());
    assert_eq!(grpc_status(&parts, &trailers), "16");

    // CORS: the configured origin's page may call with a token; another origin's may not.
    let preflight = |origin: &str| {
        http::Request::options(format!("http://{addr}/{method}"))
            .header("host", addr)
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "authorization,content-type,x-grpc-web",
            )
            .body(Full::new(Bytes::new()))
            .unwrap()
    };
    let (parts, _) = send(addr, preflight(TOOLS)).await;
    assert_eq!(parts.headers["access-control-allow-origin"], TOOLS);
    let allowed = parts.headers["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        allowed.contains("authorization") && allowed.contains("x-grpc-web"),
        "{allowed}"
    );
    let (parts, _) = send(addr, preflight("https://elsewhere.test")).await;
    assert!(parts.headers.get("access-control-allow-origin").is_none(), "{parts:?}");
    stack.stop().await;
}
