//! `trialops`: runs the whole service set in one process for local use.
//!
//! `trialops up` starts enrollment, dosing and outcomes on the embedded default (SQLite files
//! under `--data-dir`), wires them to each other, prints where each listens, and drains and
//! stops all three on Ctrl-C or SIGTERM. In containers each service runs as its own binary.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;
use trialops_platform::{Settings, server, telemetry};

/// trialops: clinical-trial operations services.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run enrollment, dosing and outcomes in one process.
    Up {
        /// Folder for the SQLite databases and the local randomization secret.
        #[arg(long, default_value = "./data")]
        data_dir: PathBuf,
        /// Address the services listen on (loopback by default).
        #[arg(long, default_value = "127.0.0.1")]
        host: std::net::IpAddr,
        /// Enrollment's port.
        #[arg(long, default_value_t = trialops_enrollment::DEFAULT_PORT)]
        enrollment_port: u16,
        /// Dosing's port.
        #[arg(long, default_value_t = trialops_dosing::DEFAULT_PORT)]
        dosing_port: u16,
        /// Outcomes' port.
        #[arg(long, default_value_t = trialops_outcomes::DEFAULT_PORT)]
        outcomes_port: u16,
    },
}

/// The settings of one service: the environment's `TRIALOPS_*` values, then this command's.
fn settings(
    env: &HashMap<String, String>,
    port: u16,
    host: std::net::IpAddr,
    data_dir: &std::path::Path,
    urls: (&str, &str),
) -> anyhow::Result<Settings> {
    let mut s = Settings::load(port, None, env.clone())?;
    s.listen_addr = SocketAddr::new(host, port);
    s.data_dir = data_dir.to_owned();
    s.enrollment_url = urls.0.to_owned();
    s.dosing_url = urls.1.to_owned();
    Ok(s)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let env: HashMap<String, String> = std::env::vars().collect();
    let Command::Up {
        data_dir,
        host,
        enrollment_port,
        dosing_port,
        outcomes_port,
    } = cli.command;
    let local = |port: u16| format!("http://{}", SocketAddr::new(host, port));
    let urls = (local(enrollment_port), local(dosing_port));
    let urls = (urls.0.as_str(), urls.1.as_str());
    let base = settings(&env, enrollment_port, host, &data_dir, urls)?;
    let _telemetry = telemetry::init("trialops", &base, &env)?;

    let enrollment = trialops_enrollment::build(base, trialops_enrollment::Options::default()).await?;
    let dosing = trialops_dosing::build(
        settings(&env, dosing_port, host, &data_dir, urls)?,
        trialops_dosing::Options::default(),
    )
    .await?;
    let outcomes = trialops_outcomes::build(
        settings(&env, outcomes_port, host, &data_dir, urls)?,
        trialops_outcomes::Options::default(),
    )
    .await?;
    println!("trialops is running (data in {}):", data_dir.display());
    println!("  enrollment  {}", enrollment.local_addr()?);
    println!("  dosing      {}", dosing.local_addr()?);
    println!("  outcomes    {}", outcomes.local_addr()?);
    println!("Ctrl-C stops all three.");

    let shutdown = CancellationToken::new();
    let trigger = shutdown.clone();
    tokio::spawn(async move {
        server::termination_signal().await;
        trigger.cancel();
    });
    // Outcomes depends on dosing and enrollment, dosing on enrollment: all drain together.
    let (a, b, c) = tokio::join!(
        enrollment.run(shutdown.clone()),
        dosing.run(shutdown.clone()),
        outcomes.run(shutdown)
    );
    a.and(b).and(c)
}
