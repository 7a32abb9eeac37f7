//! The database going away under a running service, as in a PostgreSQL restart or failover: a
//! proxy owned by the test sits between the service and PostgreSQL and cuts every connection
//! (and refuses new ones), then lets them through again. Meanwhile calls fail with UNAVAILABLE
//! (never INTERNAL) within their deadline and write nothing; once the database is reachable, a
//! retry with the same request id completes, within 2 s. Under load the cuts land in the middle
//! of transactions (before the fix, those calls answered INTERNAL); every candidate still ends
//! enrolled exactly once, with no gap in the subject numbers.

// Test code, helpers included, unwraps: a failure is a test failure with the value shown.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::AbortHandle;
use tonic::Code;
use trialops_platform::testing::{POSTGRES_URL_VARIABLE, settings};
use trialops_proto::enrollment::v1 as pb;

/// A TCP proxy to `upstream` that can cut every connection and refuse new ones.
struct Proxy {
    port: u16,
    cut: Arc<AtomicBool>,
    open: Arc<Mutex<Vec<AbortHandle>>>,
}

impl Proxy {
    async fn start(upstream: String) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let cut = Arc::new(AtomicBool::new(false));
        let open: Arc<Mutex<Vec<AbortHandle>>> = Arc::default();
        let (refusing, connections) = (cut.clone(), open.clone());
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                if refusing.load(Ordering::SeqCst) {
                    continue; // dropped: the connection closes at once
                }
                let upstream = upstream.clone();
                let task = tokio::spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(&upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
                connections.lock().unwrap().push(task.abort_handle());
            }
        });
        Proxy { port, cut, open }
    }

    /// Closes every connection and refuses new ones.
    fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        for connection in self.open.lock().unwrap().drain(..) {
            connection.abort();
        }
    }

    fn restore(&self) {
        self.cut.store(false, Ordering::SeqCst);
    }
}

/// An enrollment server whose database connections go through a [`Proxy`] to `db`.
async fn behind_proxy(db: &TestDatabase) -> (Proxy, RunningServer) {
    // postgres://user@host:port/name -> the proxy in place of host:port.
    let (scheme, rest) = db.url.split_once("://").unwrap();
    let (user, rest) = rest.split_once('@').unwrap();
    let (upstream, path) = rest.split_once('/').unwrap();
    let proxy = Proxy::start(upstream.to_owned()).await;
    let server = start_with(settings(&format!("{scheme}://{user}@127.0.0.1:{}/{path}", proxy.port))).await;
    (proxy, server)
}

/// An enrollment request for `screening_id` at COG-101 with a deadline.
fn enroll(screening_id: &str, request_id: &str) -> tonic::Request<pb::EnrollSubjectRequest> {
    let mut request = enroll_request(
        "COG-101",
        screening_id,
        strata("no_prior_irinotecan_temozolomide", "amplified"),
    );
    request.request_id = request_id.to_owned();
    let mut request = tonic::Request::new(request);
    request.set_timeout(Duration::from_secs(10));
    request
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_restart_is_unavailable_then_served_again() {
    let Some(db) = TestDatabase::create(Backend::Postgres).await else {
        eprintln!("skipped: {POSTGRES_URL_VARIABLE} is not set");
        return;
    };
    let (proxy, server) = behind_proxy(&db).await;
    let mut c = client(&server).await;
    register_site(&mut c, "COG-101").await;
    screen(&mut c, "COG-101", "SCR-1", eligible_values()).await;
    screen(&mut c, "COG-101", "SCR-2", eligible_values()).await;
    c.enroll_subject(enroll("SCR-1", &request_id())).await.unwrap();

    proxy.cut();
    let retried = request_id();
    let started = Instant::now();
    let err = c.enroll_subject(enroll("SCR-2", &retried)).await.unwrap_err();
    assert_eq!(err.code(), Code::Unavailable, "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(10), "{:?}", started.elapsed());
    let err = c.list_subjects(pb::ListSubjectsRequest {
        trial_id: "ANBL1221".into(),
        ..Default::default()
    });
    assert_eq!(err.await.unwrap_err().code(), Code::Unavailable);

    proxy.restore();
    let restored = Instant::now();
    let subject = loop {
        match c.enroll_subject(enroll("SCR-2", &retried)).await {
            Ok(answer) => break answer.into_inner().subject.unwrap(),
            Err(e) => {
                assert_eq!(e.code(), Code::Unavailable, "{e:?}");
                assert!(
                    restored.elapsed() < Duration::from_secs(2),
                    "not served again within 2 s: {e:?}"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    assert!(restored.elapsed() < Duration::from_secs(2), "{:?}", restored.elapsed());
    // The cut call wrote nothing: the retry took the next number, and there are two subjects.
    assert_eq!(subject.subject_id, "ANBL1221-0002");
    assert_eq!(all_subjects(&mut c).await.len(), 2);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_cut_under_load_answers_unavailable_and_half_writes_nothing() {
    let Some(db) = TestDatabase::create(Backend::Postgres).await else {
        eprintln!("skipped: {POSTGRES_URL_VARIABLE} is not set");
        return;
    };
    let (proxy, server) = behind_proxy(&db).await;
    let mut c = client(&server).await;
    register_site(&mut c, "COG-101").await;
    const CALLERS: usize = 6;
    const EACH: usize = 8;
    for caller in 0..CALLERS {
        for n in 0..EACH {
            screen(&mut c, "COG-101", &format!("L{caller}-{n}"), eligible_values()).await;
        }
    }
    // Six callers enroll their candidates one after another, each retrying an UNAVAILABLE answer
    // with the same request id; meanwhile the database is cut twice, in the middle of their work.
    let callers: Vec<_> = (0..CALLERS)
        .map(|caller| {
            let url = server.url();
            tokio::spawn(async move {
                let mut c = connect(&url).await;
                let mut unavailable = 0;
                for n in 0..EACH {
                    let id = request_id();
                    loop {
                        match c.enroll_subject(enroll(&format!("L{caller}-{n}"), &id)).await {
                            Ok(_) => break,
                            Err(e) if e.code() == Code::Unavailable => {
                                unavailable += 1;
                                tokio::time::sleep(Duration::from_millis(20)).await;
                            }
                            Err(e) => panic!("caller {caller}, candidate {n}: {e:?}"),
                        }
                    }
                }
                unavailable
            })
        })
        .collect();
    for _ in 0..2 {
        tokio::time::sleep(Duration::from_millis(150)).await;
        proxy.cut();
        tokio::time::sleep(Duration::from_millis(300)).await;
        proxy.restore();
    }
    let mut unavailable = 0;
    for caller in callers {
        unavailable += caller.await.unwrap();
    }
    assert!(unavailable > 0, "the cuts met no call: the test proved nothing");
    // Every candidate enrolled exactly once, numbered without a gap, whatever was cut.
    let subjects = all_subjects(&mut c).await;
    assert_eq!(subjects.len(), CALLERS * EACH, "{unavailable} answers were UNAVAILABLE");
    let mut numbers: Vec<String> = subjects.into_iter().map(|s| s.subject_id).collect();
    numbers.sort();
    let expected: Vec<String> = (1..=CALLERS * EACH).map(|n| format!("ANBL1221-{n:04}")).collect();
    assert_eq!(numbers, expected);
    server.stop().await;
}
