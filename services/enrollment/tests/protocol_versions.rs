//! A trial's first protocol version is its file, recorded at the first start; afterwards the file
//! may not change behind the trial's back. A start refuses a file that differs from the recorded
//! version of the same number, or names a version never recorded, and accepts the amended
//! version once an amendment recorded it. The amendment refuses an agent's removal, and accepts
//! a dose change (SQLite and PostgreSQL).

// Test code, helpers included, unwraps: a failure is a test failure with the value shown.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use trialops_domain::protocol::{ANBL1221_TOML, anbl1221_before_dose_revision};
use trialops_platform::testing::{TestTime, settings};
use trialops_platform::{audit_events, backend_tests};
use trialops_proto::enrollment::v1 as pb;

backend_tests!(the_file_a_trial_started_with_changes_only_by_amendment,);

async fn build_with(url: &str, dir: &std::path::Path) -> anyhow::Result<trialops_platform::server::Application> {
    let mut s = settings(url);
    s.protocol_dir = Some(dir.to_path_buf());
    let options = trialops_enrollment::Options {
        randomization_secret: Some(SECRET.to_vec()),
        ..Default::default()
    };
    trialops_enrollment::build(s, Default::default(), options).await
}

fn write(dir: &std::path::Path, text: &str) {
    std::fs::write(dir.join("anbl1221.toml"), text).unwrap();
}

async fn the_file_a_trial_started_with_changes_only_by_amendment(backend: Backend) {
    let db = TestDatabase::create(backend).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), &anbl1221_before_dose_revision());
    let mut s = settings(&db.url);
    s.protocol_dir = Some(dir.path().to_path_buf());
    let server = start_with(s).await;
    let mut c = client(&server).await;
    let versions = c
        .list_protocol_versions(pb::ListProtocolVersionsRequest {
            trial_id: "ANBL1221".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .versions;
    assert_eq!(versions.len(), 1);
    assert_eq!(versions[0].activated_by, "protocol file");
    // SHA-256 of the file's text, computed here independently of the service.
    use sha2::Digest;
    let expected = hex::encode(sha2::Sha256::digest(anbl1221_before_dose_revision().as_bytes()));
    assert_eq!(versions[0].definition_sha256, expected);
    register_site(&mut c, "COG-101").await;
    enroll(
        &mut c,
        "COG-101",
        "SCR-1",
        strata("no_prior_irinotecan_temozolomide", "amplified"),
    )
    .await;
    server.stop().await;

    // The same version number with other content: refused, naming the version.
    let edited = anbl1221_before_dose_revision().replacen("validity_days = 21", "validity_days = 28", 1);
    write(dir.path(), &edited);
    let err = build_with(&db.url, dir.path()).await.err().unwrap().to_string();
    assert!(
        err.contains("version 1.0 differs from the version 1.0 recorded"),
        "{err}"
    );
    // A version never recorded (the bundled 2.0): refused, pointing to an amendment.
    write(dir.path(), ANBL1221_TOML);
    let err = build_with(&db.url, dir.path()).await.err().unwrap().to_string();
    assert!(err.contains("version 2.0 was never recorded (recorded: 1.0)"), "{err}");

    // Restored, the service starts; an amendment records 2.0; then the file may hold 2.0.
    write(dir.path(), &anbl1221_before_dose_revision());
    let server = RunningServer::spawn(build_with(&db.url, dir.path()).await.unwrap());
    let mut c = client(&server).await;
    let time = TestTime::away_from_midnight().await;
    let amended = c
        .amend_protocol(pb::AmendProtocolRequest {
            request_id: request_id(),
            trial_id: "ANBL1221".into(),
            definition: ANBL1221_TOML.into(),
            effective_on: time.date(1),
            reason: "Amendment: dinutuximab dose revised to 17.5 mg/m2/day".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .version
        .unwrap();
    assert_eq!(amended.version, "2.0");
    let trail = audit_events!(c, pb, "protocol_version", "ANBL1221|2.0");
    assert_eq!(trail.len(), 1);
    assert_eq!(trail[0].action, "protocol.amended");
    assert_eq!(trail[0].reason, "Amendment: dinutuximab dose revised to 17.5 mg/m2/day");
    server.stop().await;
    write(dir.path(), ANBL1221_TOML);
    let server = RunningServer::spawn(build_with(&db.url, dir.path()).await.unwrap());
    server.stop().await;
}
