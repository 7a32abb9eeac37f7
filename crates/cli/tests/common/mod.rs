//! Shared by the process tests: `trialops up` as a child process on ports it picks itself.
// Each test binary uses part of this module.
#![allow(dead_code)]

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use trialops_platform::testing::OutputLines;

/// `trialops up` with its data in `dir` on port 0 for each service, ready for more options and
/// [`start`].
pub fn up(dir: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_trialops"));
    command.args(["up", "--data-dir"]).arg(dir).args([
        "--enrollment-port",
        "0",
        "--dosing-port",
        "0",
        "--outcomes-port",
        "0",
    ]);
    command
}

/// A started `trialops up`: the process, the ports it bound (enrollment, dosing, outcomes) and
/// what it prints.
pub struct Started {
    pub child: Child,
    pub ports: [u16; 3],
    pub output: OutputLines,
}

/// Spawns `command` (from [`up`]) and reads the three bound addresses from its first lines. The
/// services are bound when it prints them, so calls from then on reach them.
pub fn start(mut command: Command) -> Started {
    let mut child = command.stdout(Stdio::piped()).spawn().unwrap();
    let output = OutputLines::read(child.stdout.take().expect("stdout is piped"));
    let port = |name: &str| {
        output.wait_for(Duration::from_secs(60), name, |line| {
            let rest = line.trim_start().strip_prefix(name)?;
            rest.trim().rsplit_once(':')?.1.parse::<u16>().ok()
        })
    };
    let ports = [port("enrollment "), port("dosing "), port("outcomes ")];
    Started { child, ports, output }
}
