//! The command line as people use a terminal, on the real binary against `trialops up`: a closed
//! pipe ends a command quietly, tables fit a narrow terminal, and completion scripts and the
//! manual page come from the command's own definitions.

// Test code, helpers included, unwraps: a failure is a test failure with the value shown.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Read;
use std::process::{Command, Output, Stdio};

struct Up {
    child: std::process::Child,
    urls: [String; 3],
    dir: tempfile::TempDir,
}

impl Drop for Up {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

fn up() -> Up {
    let dir = tempfile::tempdir().unwrap();
    let mut command = common::up(dir.path());
    command.stderr(Stdio::null());
    let common::Started { child, ports, .. } = common::start(command);
    Up {
        child,
        urls: ports.map(|p| format!("http://127.0.0.1:{p}")),
        dir,
    }
}

fn trialops(up: &Up, args: &[&str]) -> Command {
    let token = Command::new(env!("CARGO_BIN_EXE_trialops"))
        .args(["token", "--role", "administrator", "--data-dir"])
        .arg(up.dir.path())
        .output()
        .unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_trialops"));
    command
        .args([
            "--enrollment",
            &up.urls[0],
            "--dosing",
            &up.urls[1],
            "--outcomes",
            &up.urls[2],
        ])
        .env("TRIALOPS_TOKEN", String::from_utf8_lossy(&token.stdout).trim())
        .env_remove("COLUMNS")
        .args(args);
    command
}

fn output(mut command: Command) -> Output {
    command.output().unwrap()
}

#[cfg(unix)]
#[test]
fn a_closed_pipe_ends_every_command_quietly() {
    use std::os::unix::process::ExitStatusExt;
    let up = up();
    for args in [&["trial"][..], &["completions", "bash"][..], &["man"][..]] {
        // The reader goes away before the command writes: its first write meets a closed pipe.
        let mut child = trialops(&up, args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take());
        let mut stderr = String::new();
        if let Some(mut e) = child.stderr.take() {
            let _ = e.read_to_string(&mut stderr);
        }
        let status = child.wait().unwrap();
        assert!(
            !stderr.contains("panicked") && !stderr.contains("Broken pipe"),
            "{args:?}: {stderr}"
        );
        // As `yes | head -1` ends: killed by SIGPIPE (a shell reports 141).
        assert_eq!(status.signal(), Some(libc_sigpipe()), "{args:?}: {status}");
    }
}

/// SIGPIPE's number on Linux and the BSDs.
#[cfg(unix)]
fn libc_sigpipe() -> i32 {
    13
}

#[test]
fn tables_fit_a_narrow_terminal_and_stay_whole_in_a_pipe() {
    let up = up();
    let wide = output(trialops(&up, &["trial"]));
    assert!(wide.status.success(), "{}", String::from_utf8_lossy(&wide.stderr));
    let wide = String::from_utf8_lossy(&wide.stdout).into_owned();
    let widest = |text: &str| text.lines().map(|l| l.chars().count()).max().unwrap_or(0);
    assert!(
        widest(&wide) > 80,
        "the trial's table is wider than 80 columns in a pipe"
    );
    for columns in ["80", "60"] {
        let mut command = trialops(&up, &["trial"]);
        command.env("COLUMNS", columns);
        let narrow = output(command);
        let text = String::from_utf8_lossy(&narrow.stdout);
        let limit: usize = columns.parse().unwrap_or(0);
        assert!(
            widest(&text) <= limit,
            "COLUMNS={columns}: a line of {}:\n{text}",
            widest(&text)
        );
        // Wrapped, not cut: each variable's row is there, its name (the first column) whole.
        for variable in ["anc_per_ul", "performance_score", "shortening_fraction_percent"] {
            assert!(text.contains(variable), "COLUMNS={columns}: {variable} lost");
        }
    }
    // --json is not a table: unchanged by the width.
    let mut command = trialops(&up, &["--json", "trial"]);
    command.env("COLUMNS", "60");
    let json: serde_json::Value = serde_json::from_slice(&output(command).stdout).expect("not JSON");
    assert!(json.get("trial").is_some(), "{json}");
}

#[test]
fn completions_and_the_manual_come_from_the_command_itself() {
    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_trialops"))
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let bash = run(&["completions", "bash"]);
    assert!(bash.contains("complete -F _trialops"), "{bash}");
    for subcommand in ["worklist", "start-cycle", "adverse-event", "completions"] {
        assert!(bash.contains(subcommand), "bash completion lacks {subcommand}");
    }
    assert!(run(&["completions", "zsh"]).contains("#compdef trialops"));
    assert!(run(&["completions", "fish"]).contains("complete -c trialops"));
    let man = run(&["man"]);
    assert!(man.contains(".TH trialops 1"), "{man}");
    assert!(man.contains("worklist"), "the manual lists the commands");
}
