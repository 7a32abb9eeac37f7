//! The README's worked session, run exactly as written there (the shell block that starts with
//! `TODAY=`), against `trialops up`: if either changes without the other, this fails.

// Test code, helpers included, unwraps: a failure is a test failure with the value shown.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::{Command, Stdio};

/// The README's session block.
fn session() -> String {
    let readme = include_str!("../../../README.md");
    let start = readme
        .find("```sh\nTODAY=")
        .expect("README has no session block starting with TODAY=");
    let body = &readme[start + "```sh\n".len()..];
    let end = body.find("\n```").expect("unterminated block");
    body[..end].to_owned()
}

#[test]
fn the_readme_session_runs_as_written() {
    let dir = tempfile::tempdir().unwrap();
    let mut command = common::up(&dir.path().join("data"));
    command.stderr(Stdio::null());
    let common::Started { mut child, ports, .. } = common::start(command);
    let binary = std::path::Path::new(env!("CARGO_BIN_EXE_trialops"));
    let path = format!(
        "{}:{}",
        binary.parent().map(|p| p.display().to_string()).unwrap_or_default(),
        std::env::var("PATH").unwrap_or_default()
    );
    let script = format!("set -eu\n{}", session());
    let run = Command::new("bash")
        .arg("-c")
        .arg(&script)
        .current_dir(dir.path())
        .env("PATH", path)
        .env("TRIALOPS_ENROLLMENT", format!("http://127.0.0.1:{}", ports[0]))
        .env("TRIALOPS_DOSING", format!("http://127.0.0.1:{}", ports[1]))
        .env("TRIALOPS_OUTCOMES", format!("http://127.0.0.1:{}", ports[2]))
        .env_remove("TRIALOPS_TOKEN")
        .env_remove("COLUMNS")
        .output()
        .unwrap();
    let _ = Command::new("kill").args(["-INT", &child.id().to_string()]).status();
    let _ = child.wait();
    let stdout = String::from_utf8_lossy(&run.stdout);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "the session failed:\n{stderr}\n{stdout}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    // What the session shows, in words: the dose given and the response not yet known.
    assert!(stdout.contains("ANBL1221-0001"), "{stdout}");
    assert!(
        stdout.contains("best central-review response: none yet: only a baseline"),
        "{stdout}"
    );
    assert!(!stdout.contains("UNSPECIFIED"), "{stdout}");
}
