//! The commands people at a hospital use: screen, enroll, show a subject, start a cycle, see the
//! worklist, record an administration, a response assessment or an adverse event, list overdue
//! reports, print the trial report, watch changes as they commit. They speak only the public
//! gRPC API, with the caller's bearer token (`--token` or `TRIALOPS_TOKEN`), print readable
//! tables, or with `--json` the responses in the protobuf JSON mapping (proto field names). A
//! refused call prints the code, the message, the reason and every field violation, and exits 1.
//!
//! One file per service holds its commands (`enrollment`, `dosing`, `outcomes`); each command is
//! a struct of its options whose `run` builds the request, calls with the token and shows the
//! answer.

mod allocation;
pub(crate) mod audit;
mod dosing;
mod enrollment;
pub(crate) mod export;
mod outcomes;
mod protocol;
mod sign;
mod watch;

use chrono::{DateTime, NaiveDate, Utc};
use clap::{Args, Subcommand};
use prost::Message;
use prost_reflect::{DescriptorPool, DynamicMessage, SerializeOptions};
use trialops_proto::outcomes::v1 as opb;

use crate::api::{Clients, Context, with_token};
use crate::report::table;

/// Where the services are and who calls.
#[derive(Args, Debug, Clone)]
pub struct Connection {
    /// Enrollment service URL.
    #[arg(
        long,
        global = true,
        env = "TRIALOPS_ENROLLMENT",
        default_value = "http://127.0.0.1:50051"
    )]
    pub enrollment: String,
    /// Dosing service URL.
    #[arg(
        long,
        global = true,
        env = "TRIALOPS_DOSING",
        default_value = "http://127.0.0.1:50052"
    )]
    pub dosing: String,
    /// Outcomes service URL.
    #[arg(
        long,
        global = true,
        env = "TRIALOPS_OUTCOMES",
        default_value = "http://127.0.0.1:50053"
    )]
    pub outcomes: String,
    /// Bearer token (locally: `trialops token`).
    #[arg(
        long,
        global = true,
        env = "TRIALOPS_TOKEN",
        hide_env_values = true,
        default_value = ""
    )]
    pub token: String,
    /// Print responses as JSON (protobuf JSON mapping) instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
}

/// A hospital command.
#[derive(Subcommand, Debug)]
pub enum Hospital {
    /// Register a site (administrator).
    RegisterSite(enrollment::RegisterSite),
    /// Close accrual to the trial or one site, with a reason (administrator).
    CloseAccrual(enrollment::AccrualChange),
    /// Open accrual again to the trial or one site, with a reason (administrator).
    OpenAccrual(enrollment::AccrualChange),
    /// Export a trial's allocations with its commitment, as JSON (statistician, administrator).
    Allocations(allocation::Allocations),
    /// Reveal a trial's allocation key once its accrual is closed (administrator).
    RevealAllocationKey(allocation::RevealAllocationKey),
    /// Mark a subject randomized in error, with a reason (investigator, administrator).
    RandomizedInError(allocation::RandomizedInError),
    /// Emergency unblinding: show a subject's arm, with a reason, recorded and audited
    /// (investigator, own site).
    Unblind(allocation::Unblind),
    /// Show a trial: arms, strata, screening variables.
    Trial(enrollment::Trial),
    /// Amend a trial's protocol: a new version of its definition from an effective date, with a
    /// reason (administrator).
    AmendProtocol(protocol::AmendProtocol),
    /// List a trial's protocol versions and the one in force today.
    ProtocolVersions(protocol::ProtocolVersions),
    /// Screen a candidate: `--value variable=value` for each screening variable.
    Screen(enrollment::Screen),
    /// Enroll and randomize a screened, consented candidate.
    Enroll(enrollment::Enroll),
    /// Show a subject: enrollment, treatment plan, response assessments.
    Subject(enrollment::Subject),
    /// Create an enrolled subject's treatment plan from the arm (pharmacist, investigator).
    Plan(dosing::Plan),
    /// Start a cycle: doses from today's height and weight, if the counts allow.
    StartCycle(dosing::StartCycle),
    /// A site's administrations between two dates (the pharmacy's or ward's worklist).
    Worklist(dosing::Worklist),
    /// Record an administration from the worklist.
    Administer(dosing::Administer),
    /// Record a response assessment (INRC 2017).
    Response(outcomes::Response),
    /// Record an adverse event (CTCAE).
    AdverseEvent(outcomes::AdverseEvent),
    /// Expedited reports overdue (or due within --within-hours).
    Overdue(outcomes::Overdue),
    /// Sign a record electronically: `sign screening|end-of-treatment|adverse-event|assessment`
    /// with --meaning, using a token from a fresh authentication that names you.
    Sign(sign::Sign),
    /// The trial report (statistician).
    Report(outcomes::Report),
    /// Export a trial: `export sdtm --trial ANBL1221 --out DIR` writes its SDTM datasets as
    /// Dataset-JSON with a Define-XML (statistician, administrator).
    Export(export::Export),
    /// Print one service's changes as they commit, resumable with --cursor.
    Watch(watch::Watch),
    /// Save the services' signed audit checkpoints, verify the logs against them, make a log key.
    Audit(audit::Audit),
}

fn pair<'a>(option: &str, text: &'a str) -> anyhow::Result<(&'a str, &'a str)> {
    text.split_once('=')
        .map(|(k, v)| (k.trim(), v.trim()))
        .filter(|(k, _)| !k.is_empty())
        .ok_or_else(|| anyhow::anyhow!("{option} {text:?}: expected name=value"))
}

fn enum_value(option: &str, prefix: &str, value: &str, parse: impl Fn(&str) -> Option<i32>) -> anyhow::Result<i32> {
    parse(&format!("{prefix}{}", value.trim().to_ascii_uppercase()))
        .ok_or_else(|| anyhow::anyhow!("{option} {value:?} is not one of the allowed values (see --help)"))
}

struct Output {
    json: bool,
    pool: DescriptorPool,
}

impl Output {
    /// `message` (of protobuf type `name`) in the protobuf JSON mapping, with proto field names.
    fn to_json<M: Message>(&self, name: &str, message: &M) -> anyhow::Result<serde_json::Value> {
        let descriptor = self
            .pool
            .get_message_by_name(name)
            .ok_or_else(|| anyhow::anyhow!("no descriptor for {name}"))?;
        let dynamic = DynamicMessage::decode(descriptor, message.encode_to_vec().as_slice())?;
        let options = SerializeOptions::new().use_proto_field_name(true);
        Ok(dynamic.serialize_with_options(serde_json::value::Serializer, &options)?)
    }

    /// Prints `message` (of protobuf type `name`) as JSON, or runs `human`.
    fn show<M: Message>(&self, name: &str, message: &M, human: impl FnOnce(&M)) -> anyhow::Result<()> {
        if self.json {
            println!("{}", serde_json::to_string_pretty(&self.to_json(name, message)?)?);
        } else {
            human(message);
        }
        Ok(())
    }
}

/// What every command works with: the clients, the caller's token, how to show answers, and
/// today's date (the default of date options).
pub(crate) struct Session {
    clients: Clients,
    token: String,
    out: Output,
    today: NaiveDate,
}

impl Session {
    /// A quiet session over existing clients (the demo's).
    pub(crate) fn over(clients: Clients, token: &str) -> anyhow::Result<Session> {
        Ok(Session {
            clients,
            token: token.to_owned(),
            out: Output {
                json: false,
                pool: DescriptorPool::decode(trialops_proto::FILE_DESCRIPTOR_SET)?,
            },
            today: Utc::now().date_naive(),
        })
    }

    fn open(connection: &Connection) -> anyhow::Result<Session> {
        Ok(Session {
            clients: Clients::new(&connection.enrollment, &connection.dosing, &connection.outcomes)?,
            token: connection.token.clone(),
            out: Output {
                json: connection.json,
                pool: DescriptorPool::decode(trialops_proto::FILE_DESCRIPTOR_SET)?,
            },
            today: Utc::now().date_naive(),
        })
    }
}

impl Session {
    /// Sends `message` with the caller's token through `send` (one client method); a refusal
    /// names `action`. Every command's call goes through here.
    async fn call<Req, Resp>(
        &mut self,
        action: impl Into<String>,
        message: Req,
        send: impl AsyncFnOnce(&mut Clients, tonic::Request<Req>) -> Result<tonic::Response<Resp>, tonic::Status>,
    ) -> anyhow::Result<Resp> {
        let request = with_token(message, &self.token)?;
        Ok(send(&mut self.clients, request).await.doing(action)?)
    }
}

fn request_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Runs a hospital command.
pub async fn run(connection: Connection, command: Hospital) -> anyhow::Result<()> {
    let mut session = Session::open(&connection)?;
    match command {
        Hospital::RegisterSite(command) => command.run(&mut session).await,
        Hospital::CloseAccrual(command) => command.run(&mut session, false).await,
        Hospital::OpenAccrual(command) => command.run(&mut session, true).await,
        Hospital::Allocations(command) => command.run(&mut session).await,
        Hospital::RevealAllocationKey(command) => command.run(&mut session).await,
        Hospital::RandomizedInError(command) => command.run(&mut session).await,
        Hospital::Unblind(command) => command.run(&mut session).await,
        Hospital::Trial(command) => command.run(&mut session).await,
        Hospital::AmendProtocol(command) => command.run(&mut session).await,
        Hospital::ProtocolVersions(command) => command.run(&mut session).await,
        Hospital::Screen(command) => command.run(&mut session).await,
        Hospital::Enroll(command) => command.run(&mut session).await,
        Hospital::Subject(command) => command.run(&mut session).await,
        Hospital::Plan(command) => command.run(&mut session).await,
        Hospital::StartCycle(command) => command.run(&mut session).await,
        Hospital::Worklist(command) => command.run(&mut session).await,
        Hospital::Administer(command) => command.run(&mut session).await,
        Hospital::Response(command) => command.run(&mut session).await,
        Hospital::AdverseEvent(command) => command.run(&mut session).await,
        Hospital::Overdue(command) => command.run(&mut session).await,
        Hospital::Sign(command) => command.run(&mut session).await,
        Hospital::Report(command) => command.run(&mut session).await,
        Hospital::Export(command) => command.run(&mut session).await,
        Hospital::Watch(command) => command.run(&mut session).await,
        Hospital::Audit(command) => command.run(&mut session).await,
    }
}

/// A response's short name, for example "PR" (NOT_INVOLVED as "not involved"); "not set" when
/// the contract's unspecified value stands for none.
fn name(response: i32) -> String {
    match opb::Response::try_from(response) {
        Ok(opb::Response::Unspecified) | Err(_) => "not set".to_owned(),
        Ok(opb::Response::NotInvolved) => "not involved".to_owned(),
        Ok(x) => x.as_str_name().trim_start_matches("RESPONSE_").to_owned(),
    }
}

/// An enum value in words for people: its name without `prefix`, in lower case with spaces
/// ("PARTIALLY_GIVEN" -> "partially given"); "not set" for the unspecified value.
fn words(name: &str, prefix: &str) -> String {
    match name.trim_start_matches(prefix) {
        "UNSPECIFIED" => "not set".to_owned(),
        rest => rest.to_lowercase().replace('_', " "),
    }
}

fn print_obligations(obligations: &[opb::ReportingObligation]) {
    if obligations.is_empty() {
        return;
    }
    let mut t = table(&["report", "due", "submitted", "site", "adverse event"]);
    for o in obligations {
        let when = |t: Option<&prost_types::Timestamp>| {
            t.and_then(|t| DateTime::<Utc>::from_timestamp(t.seconds, 0))
                .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
                .unwrap_or_default()
        };
        t.add_row(vec![
            o.kind.clone(),
            when(o.due_at.as_ref()),
            when(o.submitted_at.as_ref()),
            o.site_code.clone(),
            o.adverse_event_id.clone(),
        ]);
    }
    println!("{t}");
}
