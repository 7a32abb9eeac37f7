//! `trialops`: runs the whole service set in one process for local use.
//!
//! `trialops up` starts enrollment, dosing and outcomes on the embedded default (SQLite files
//! under `--data-dir`), wires them to each other, prints where each listens, and drains and
//! stops all three on Ctrl-C or SIGTERM. In containers each service runs as its own binary.
//! Callers authenticate with development tokens: `up` creates a signing key in the data folder
//! and `trialops token` mints tokens with it.

mod api;
mod demo;
mod devkeys;
mod hospital;
mod report;
mod simulate;
mod verify;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;
use trialops_platform::Settings;
use trialops_platform::config::settings::{MigrateOnStart, Sources};
use trialops_platform::identity::auth::Role;
use trialops_platform::records::database;
use trialops_platform::records::log::LogKey;
use trialops_platform::server::{self, telemetry};
use trialops_stack::{Service, ServiceSet};

/// trialops: clinical-trial operations services.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    #[command(flatten)]
    connection: hospital::Connection,
}

#[derive(Subcommand)]
enum Command {
    /// Print a shell completion script, for example
    /// `trialops completions bash > ~/.local/share/bash-completion/completions/trialops`.
    Completions {
        /// The shell: bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff), for example `trialops man > ~/.local/share/man/man1/trialops.1`.
    Man,
    /// Run enrollment, dosing and outcomes in one process.
    Up {
        /// Folder for the SQLite databases and the local randomization secret.
        #[arg(long, default_value = "./data")]
        data_dir: PathBuf,
        /// Address the services listen on (loopback by default).
        #[arg(long, default_value = "127.0.0.1")]
        host: std::net::IpAddr,
        /// Enrollment's port (0: a free port, printed at start, like the others).
        #[arg(long, default_value_t = trialops_enrollment::DEFAULT_PORT)]
        enrollment_port: u16,
        /// Dosing's port.
        #[arg(long, default_value_t = trialops_dosing::DEFAULT_PORT)]
        dosing_port: u16,
        /// Outcomes' port.
        #[arg(long, default_value_t = trialops_outcomes::DEFAULT_PORT)]
        outcomes_port: u16,
    },
    /// Replay a synthetic ANBL1221-like trial over the gRPC API and print its report.
    Demo {
        /// Makes the replay repeatable (allocations, courses, measurements). The default enrolls
        /// exactly 35 children; other seeds enroll up to a few more, as randomization falls.
        #[arg(long, default_value_t = 12)]
        seed: u64,
        /// Keep the databases in this (new or empty) folder instead of a temporary one.
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
        /// Also export the replayed trial as SDTM (Dataset-JSON files and define.xml) into this
        /// folder.
        #[arg(long)]
        export_sdtm: Option<PathBuf>,
        /// Also export the replayed trial as CDISC ODM with its audit trail into this file.
        #[arg(long)]
        export_odm: Option<PathBuf>,
    },
    /// Simulate the protocol's allocation method before go-live: imbalance and predictability
    /// over synthetic enrollment streams (runs locally).
    SimulateAllocation {
        /// A protocol definition file (TOML); the bundled ANBL1221 without one.
        #[arg(long)]
        protocol: Option<PathBuf>,
        /// Subjects enrolled in each run.
        #[arg(long, default_value_t = 35)]
        subjects: u32,
        /// Runs.
        #[arg(long, default_value_t = 1000)]
        runs: u32,
        /// Makes the figures repeatable.
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// Prove, offline, that every allocation followed from the committed sequence: from the key
    /// RevealAllocationKey showed and the export of `trialops allocations`.
    VerifyAllocation {
        /// The file `trialops allocations` wrote.
        #[arg(long)]
        allocations: PathBuf,
        /// The revealed allocation key (64 hex digits).
        #[arg(long)]
        key: String,
        /// The commitment you saved from GetTrial before the first enrollment (the export's
        /// without it).
        #[arg(long)]
        commitment: Option<String>,
        /// The trial's protocol definition file (TOML); the bundled ANBL1221 without one.
        #[arg(long)]
        protocol: Option<PathBuf>,
    },
    #[command(flatten)]
    Hospital(hospital::Hospital),
    /// Print a development token signed with the key `trialops up` created in --data-dir.
    Token {
        /// Role: site_coordinator, pharmacist, investigator, central_reviewer, statistician,
        /// administrator or service.
        #[arg(long)]
        role: String,
        /// Site code, required for site_coordinator, pharmacist and investigator.
        #[arg(long)]
        site: Option<String>,
        /// Who acts (recorded in the audit trail); never a patient identifier.
        #[arg(long, default_value = "local-developer")]
        subject: String,
        /// The person's printed name, which their electronic signatures show (claim `name`).
        #[arg(long)]
        name: Option<String>,
        /// The folder `trialops up` uses.
        #[arg(long, default_value = "./data")]
        data_dir: PathBuf,
        /// Validity in minutes.
        #[arg(long, default_value_t = 480)]
        minutes: i64,
    },
}

/// The settings of one service: the environment's `TRIALOPS_*` values, then this command's
/// (the service set fills in where the services reach each other).
fn settings(
    env: &HashMap<String, String>,
    port: u16,
    host: std::net::IpAddr,
    data_dir: &std::path::Path,
) -> anyhow::Result<Settings> {
    let mut s = Settings::load(port, None, env.clone())?;
    s.listen_addr = SocketAddr::new(host, port);
    s.data_dir = data_dir.to_owned();
    Ok(s)
}

/// Output piped into `head`, `less` or `grep -m` that stops reading ends the command quietly, as
/// other Unix tools end (killed by SIGPIPE): Rust ignores SIGPIPE, so a write to the closed pipe
/// would otherwise be an error (a panic from `println!`). Sockets are unaffected: Rust writes to
/// them with MSG_NOSIGNAL.
fn restore_default_sigpipe() {
    sigpipe::reset();
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    restore_default_sigpipe();
    let cli = Cli::parse();
    match run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // The message and its causes, without a backtrace: a refused call names the code, the
            // reason and each field to fix.
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let env: HashMap<String, String> = std::env::vars().collect();
    match cli.command {
        Command::Completions { shell } => {
            let mut command = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut command, "trialops", &mut std::io::stdout());
            Ok(())
        }
        Command::Man => {
            let command = <Cli as clap::CommandFactory>::command();
            clap_mangen::Man::new(command).render(&mut std::io::stdout())?;
            Ok(())
        }
        Command::Up {
            data_dir,
            host,
            enrollment_port,
            dosing_port,
            outcomes_port,
        } => up(&env, data_dir, host, [enrollment_port, dosing_port, outcomes_port]).await,
        Command::SimulateAllocation {
            protocol,
            subjects,
            runs,
            seed,
        } => simulate::run(simulate::SimulateOptions {
            protocol,
            subjects,
            runs,
            seed,
            json: cli.connection.json,
        }),
        Command::VerifyAllocation {
            allocations,
            key,
            commitment,
            protocol,
        } => verify::run(verify::VerifyOptions {
            allocations,
            key,
            commitment,
            protocol,
        }),
        Command::Hospital(command) => hospital::run(cli.connection, command).await,
        Command::Demo {
            seed,
            data_dir,
            json,
            export_sdtm,
            export_odm,
        } => {
            demo::run(demo::DemoOptions {
                seed,
                data_dir,
                json,
                export_sdtm,
                export_odm,
            })
            .await
        }
        Command::Token {
            role,
            site,
            subject,
            name,
            data_dir,
            minutes,
        } => {
            let role = Role::parse(&role).ok_or_else(|| {
                let names: Vec<&str> = Role::ALL.iter().map(|r| r.as_str()).collect();
                anyhow::anyhow!("--role {role:?}: use one of {}", names.join(", "))
            })?;
            if minutes < 1 {
                anyhow::bail!("--minutes must be at least 1");
            }
            let audience = Settings::load(0, None, env)?.jwt_audience;
            let who = (subject.as_str(), name.as_deref());
            let token = devkeys::mint_named(&data_dir, &audience, who, role, site.as_deref(), minutes * 60)?;
            println!("{token}");
            Ok(())
        }
    }
}

/// `trialops up`.
async fn up(
    env: &HashMap<String, String>,
    data_dir: PathBuf,
    host: std::net::IpAddr,
    [enrollment_port, dosing_port, outcomes_port]: [u16; 3],
) -> anyhow::Result<()> {
    // Verified development tokens unless the environment chose how callers authenticate.
    let dev_key = if env.contains_key("TRIALOPS_AUTH_MODE") {
        None
    } else {
        Some(devkeys::ensure_key(&data_dir)?)
    };
    // On PostgreSQL the three services share the one database, each in its own schema, and
    // migrate at start unless TRIALOPS_MIGRATE_ON_START says otherwise.
    let shared = Settings::load(enrollment_port, None, env.clone())?.database_url;
    let postgres = shared.filter(|url| url.starts_with("postgres"));
    let names = [
        trialops_enrollment::SERVICE_NAME,
        trialops_dosing::SERVICE_NAME,
        trialops_outcomes::SERVICE_NAME,
    ];
    if let Some(url) = &postgres {
        for name in names {
            database::create_schema(url, name).await?;
        }
    }
    let settings = |service: Service, port: u16| -> anyhow::Result<Settings> {
        let mut s = settings(env, port, host, &data_dir)?;
        if let Some(key) = &dev_key {
            devkeys::apply(&mut s, key);
        }
        if s.audit_signing_key_file.is_none() {
            // One log key per service, kept in the data folder, whatever the database.
            let name = names[service as usize];
            let path = LogKey::local_path(&data_dir, name);
            LogKey::ensure(&path, &format!("localhost/trialops/{name}"))?;
            s.audit_signing_key_file = Some(path);
        }
        if let Some(url) = &postgres {
            s.database_url = Some(database::schema_url(url, names[service as usize]));
            if !env.contains_key("TRIALOPS_MIGRATE_ON_START") {
                s.migrate_on_start = MigrateOnStart::Always;
            }
        }
        Ok(s)
    };
    let base = settings(Service::Enrollment, enrollment_port)?;
    let _telemetry = telemetry::init("trialops", &base, env)?;
    // Exported traces name each service, as its own deployment would.
    let mut traced = Vec::new();
    for name in names {
        traced.push(telemetry::service_dispatch(name, &base, env)?);
    }
    let set = ServiceSet::start(
        |service| match service {
            Service::Enrollment => Ok(base.clone()),
            Service::Dosing => settings(service, dosing_port),
            Service::Outcomes => settings(service, outcomes_port),
        },
        &Sources::new(None, env.clone()),
        trialops_enrollment::Options::default(),
        |service| traced[service as usize].as_ref().map(|(dispatch, _)| dispatch.clone()),
    )
    .await?;
    let addresses = set.addresses()?;
    println!("trialops is running (data in {}):", data_dir.display());
    println!("  enrollment  {}", addresses.enrollment);
    println!("  dosing      {}", addresses.dosing);
    println!("  outcomes    {}", addresses.outcomes);
    if dev_key.is_some() {
        println!("Callers need a development token, for example:");
        println!(
            "  trialops token --data-dir {} --role site_coordinator --site COG-101",
            data_dir.display()
        );
    }
    println!("Ctrl-C stops all three.");

    let shutdown = CancellationToken::new();
    let trigger = shutdown.clone();
    tokio::spawn(async move {
        server::termination_signal().await;
        trigger.cancel();
    });
    set.run(shutdown).await
}
