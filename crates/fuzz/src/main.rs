//! `trialops-fuzz`: runs enrollment, dosing and outcomes in-process on throw-away SQLite
//! databases and sends every unary RPC generated and mutated requests for a bounded time (see
//! [`grammar`]). Each input goes through the real path: HTTP/2, the RPC layer, protobuf
//! decoding, the service's conversion and checks, the database.
//!
//! A finding is an answer no input may cause: a transport failure or UNKNOWN (a handler
//! panicked or the server fell over), or INTERNAL other than "cannot decode" (unhandled input).
//! At the end every audit trail must verify and every service must still answer health. It
//! prints the inputs run per service, the answers by code and the findings (with the input's
//! bytes in hex), and exits 1 if there were any. Not coverage-guided: cargo-fuzz/libFuzzer
//! need a nightly toolchain, which this project does not use.

mod grammar;

use std::collections::BTreeMap;
use std::error::Error as _;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::Parser;
use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::{RngCore, SeedableRng};
use tonic::Code;
use tonic::transport::Channel;
use trialops_platform::testing::{Backend, raw_call};
use trialops_stack::testing::{self, TestStack};

use grammar::{Grammar, Method};

/// Fuzz every trialops RPC for a bounded time.
#[derive(Parser)]
#[command(version, about)]
struct Args {
    /// How long to run, seconds.
    #[arg(long, default_value_t = 30)]
    seconds: u64,
    /// Random seed (printed, so a run can be repeated); random when not given.
    #[arg(long)]
    seed: Option<u64>,
    /// Concurrent callers.
    #[arg(long, default_value_t = 4)]
    workers: u64,
}

#[derive(Default)]
struct Tally {
    inputs: BTreeMap<&'static str, u64>,
    codes: BTreeMap<(&'static str, String), u64>,
    findings: Vec<String>,
}

const SERVICES: [(&str, &str); 3] = [
    ("enrollment", "/trialops.enrollment.v1."),
    ("dosing", "/trialops.dosing.v1."),
    ("outcomes", "/trialops.outcomes.v1."),
];

/// What an answer means; `Some` is a finding.
fn judge(result: &Result<Vec<u8>, tonic::Status>) -> (String, Option<String>) {
    let Err(status) = result else {
        return ("OK".into(), None);
    };
    let transport = status
        .source()
        .is_some_and(|s| s.downcast_ref::<tonic::transport::Error>().is_some());
    let code = format!("{:?}", status.code());
    if transport || status.code() == Code::Unknown {
        return (code, Some(format!("transport failure or UNKNOWN: {status:?}")));
    }
    if status.code() == Code::Internal && !status.message().contains("decode") {
        return (code, Some(format!("INTERNAL: {}", status.message())));
    }
    (code, None)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let seed = args
        .seed
        .unwrap_or_else(|| u64::from_le_bytes(*uuid::Uuid::new_v4().as_bytes().first_chunk().unwrap_or(&[0; 8])));
    let grammar = Arc::new(Grammar::load()?);
    let set = TestStack::start(Backend::Sqlite, testing::unchanged).await;
    let urls = set.addresses.urls();

    // A little state for inputs to find: two sites and one enrolled child.
    let mut client = trialops_enrollment::testing::connect(&urls[0]).await;
    for site in ["COG-101", "COG-202"] {
        trialops_enrollment::testing::register_site(&mut client, site).await;
    }
    trialops_enrollment::testing::screen(
        &mut client,
        "COG-101",
        "SCR-1",
        trialops_enrollment::testing::eligible_values(),
    )
    .await;
    trialops_enrollment::testing::enroll(
        &mut client,
        "COG-101",
        "SCR-1",
        trialops_enrollment::testing::strata("no_prior_irinotecan_temozolomide", "amplified"),
    )
    .await;

    let mut targets: Vec<(&'static str, Method, Channel)> = Vec::new();
    for ((name, prefix), url) in SERVICES.into_iter().zip(&urls) {
        let channel = tonic::transport::Endpoint::from_shared(url.clone())?.connect().await?;
        for method in grammar.methods(prefix) {
            targets.push((name, method, channel.clone()));
        }
    }
    let targets = Arc::new(targets);
    let tally = Arc::new(Mutex::new(Tally::default()));
    let deadline = Instant::now() + Duration::from_secs(args.seconds);
    println!(
        "fuzzing {} RPCs for {} s with {} workers, seed {seed}",
        targets.len(),
        args.seconds,
        args.workers
    );

    let mut workers = Vec::new();
    for worker in 0..args.workers {
        let (grammar, targets, tally) = (grammar.clone(), targets.clone(), tally.clone());
        workers.push(tokio::spawn(async move {
            let mut rng = ChaCha8Rng::seed_from_u64(seed.wrapping_add(worker));
            while Instant::now() < deadline {
                let (service, method, channel) = &targets[(rng.next_u32() as usize) % targets.len()];
                let input = grammar.input(method, &mut rng);
                let result = raw_call(channel.clone(), &method.path, input.clone()).await;
                let (code, finding) = judge(&result);
                let mut t = tally.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                *t.inputs.entry(service).or_default() += 1;
                *t.codes.entry((service, code)).or_default() += 1;
                if let Some(finding) = finding {
                    let shown = &input[..input.len().min(256)];
                    t.findings
                        .push(format!("{} {finding}\n    input: {}", method.path, hex::encode(shown)));
                }
            }
        }));
    }
    for w in workers {
        w.await?;
    }

    // Afterwards: every audit trail intact, every service still healthy.
    let mut after = Vec::new();
    for ((name, prefix), url) in SERVICES.into_iter().zip(&urls) {
        let channel = tonic::transport::Endpoint::from_shared(url.clone())?.connect().await?;
        let verify = format!("{prefix}{}Service/VerifyAuditTrail", capitalized(name));
        match raw_call(channel.clone(), &verify, Vec::new()).await {
            Ok(bytes) => {
                let response =
                    <trialops_proto::enrollment::v1::VerifyAuditTrailResponse as prost::Message>::decode(&bytes[..])?;
                let v = response.verification.unwrap_or_default();
                if !v.intact {
                    after.push(format!("{name}: audit trail broken: {}", v.problem));
                }
                println!("{name}: audit trail intact, {} entries", v.events_checked);
            }
            Err(e) => after.push(format!("{name}: VerifyAuditTrail failed: {e:?}")),
        }
        let health = tonic_health_check(channel).await;
        if let Err(e) = health {
            after.push(format!("{name}: health failed after fuzzing: {e}"));
        }
    }

    let findings: Vec<String> = {
        let t = tally.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        for (name, _) in SERVICES {
            let codes: Vec<String> = t
                .codes
                .iter()
                .filter(|((s, _), _)| *s == name)
                .map(|((_, code), n)| format!("{code} {n}"))
                .collect();
            println!(
                "{name}: {} inputs; answers: {}",
                t.inputs.get(name).copied().unwrap_or(0),
                codes.join(", ")
            );
        }
        let findings: Vec<String> = t.findings.iter().chain(after.iter()).cloned().collect();
        println!("findings: {}", findings.len());
        for f in findings.iter().take(20) {
            println!("  {f}");
        }
        findings
    };
    set.stop().await;
    if findings.is_empty() {
        Ok(())
    } else {
        anyhow::bail!("fuzzing found {} problems (seed {seed})", findings.len())
    }
}

fn capitalized(name: &str) -> String {
    let mut chars = name.chars();
    chars
        .next()
        .map(|c| c.to_ascii_uppercase().to_string() + chars.as_str())
        .unwrap_or_default()
}

/// `grpc.health.v1.Health/Check` for the whole server, as raw bytes (an empty request).
async fn tonic_health_check(channel: Channel) -> anyhow::Result<()> {
    let bytes = raw_call(channel, "/grpc.health.v1.Health/Check", Vec::new()).await?;
    // HealthCheckResponse field 1 (status) = 1 (SERVING).
    if bytes == [0x08, 0x01] {
        Ok(())
    } else {
        anyhow::bail!("not SERVING: {}", hex::encode(bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_crashes_and_unhandled_errors_are_findings() {
        let finding = |status: tonic::Status| judge(&Err(status)).1.is_some();
        assert!(finding(tonic::Status::internal("index out of bounds")));
        assert!(finding(tonic::Status::unknown("handler panicked")));
        assert!(!finding(tonic::Status::internal(
            "failed to decode Protobuf message: invalid wire type"
        )));
        assert!(!finding(tonic::Status::invalid_argument("site_code: required")));
        assert!(!finding(tonic::Status::not_found("subject")));
        assert_eq!(judge(&Ok(Vec::new())), ("OK".to_owned(), None));
    }

    #[test]
    fn generated_requests_decode_as_their_types() {
        let grammar = Grammar::load().unwrap_or_else(|e| panic!("{e}"));
        let methods = grammar.methods("/trialops.enrollment.v1.");
        let register = methods
            .iter()
            .find(|m| m.path.ends_with("/RegisterSite"))
            .unwrap_or_else(|| panic!("RegisterSite missing from {methods:?}"));
        assert_eq!(register.input, ".trialops.enrollment.v1.RegisterSiteRequest");
        assert_eq!(
            grammar.methods("/trialops.").len(),
            72,
            "every unary RPC of the three contracts (WatchEvents, ExportSdtm and ExportOdm stream)"
        );
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let decoded = (0..200)
            .filter(|_| {
                let bytes = grammar.input(register, &mut rng);
                <trialops_proto::enrollment::v1::RegisterSiteRequest as prost::Message>::decode(&bytes[..]).is_ok()
            })
            .count();
        // Most inputs are well-typed (5% random bytes, 10% mutated).
        assert!(decoded > 150, "{decoded} of 200 decoded");
    }
}
