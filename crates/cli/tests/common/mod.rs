//! Shared by the process tests: free ports and `trialops up` as a child process.
// Each test binary uses part of this module.
#![allow(dead_code)]

use std::net::TcpListener;
use std::path::Path;
use std::process::Command;

/// A port nothing listens on now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("{e}"))
}

/// Three free ports: enrollment, dosing, outcomes.
pub fn free_ports() -> [u16; 3] {
    [free_port(), free_port(), free_port()]
}

/// `trialops up` with its data in `dir` on `ports`, ready for more options and `spawn`.
pub fn up(dir: &Path, ports: [u16; 3]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_trialops"));
    command
        .args(["up", "--data-dir"])
        .arg(dir)
        .args(["--enrollment-port", &ports[0].to_string()])
        .args(["--dosing-port", &ports[1].to_string()])
        .args(["--outcomes-port", &ports[2].to_string()]);
    command
}
