//! `trialops watch`: one service's committed changes as they happen, resumable by cursor.

use std::pin::Pin;
use std::time::Duration;

use chrono::{DateTime, Utc};
use clap::{Args, ValueEnum};
use tokio_stream::{Stream, StreamExt};
use trialops_proto::common::v1::ChangeEvent;
use trialops_proto::dosing::v1 as dpb;
use trialops_proto::enrollment::v1 as epb;
use trialops_proto::outcomes::v1 as opb;

use super::Session;
use crate::api::{CallError, with_token};

/// Which service's changes to watch.
#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum Service {
    /// Sites, screenings, subjects, accrual.
    Enrollment,
    /// Plans, cycles, administrations.
    Dosing,
    /// Response assessments, adverse events, reports, follow-up.
    Outcomes,
}

/// Print every committed change of one service as it commits, in commit order, each with the
/// cursor to resume after it; reconnects by itself after a dropped connection.
#[derive(Args, Debug)]
pub struct Watch {
    /// The service whose changes to print.
    #[arg(long, value_enum, default_value = "enrollment")]
    service: Service,
    /// Continue after the event that printed this cursor (from an earlier run).
    #[arg(long, conflicts_with = "from_now")]
    cursor: Option<String>,
    /// Only changes committed from now on (without it and without --cursor: from the first).
    #[arg(long)]
    from_now: bool,
    /// Only this kind of record, for example `subject` (repeat for several).
    #[arg(long = "entity-type")]
    entity_types: Vec<String>,
    /// Only records of this trial.
    #[arg(long)]
    trial: Option<String>,
    /// Only records of this site.
    #[arg(long)]
    site: Option<String>,
    /// Stop after this many events (without it: until interrupted).
    #[arg(long)]
    limit: Option<u64>,
}

type Events = Pin<Box<dyn Stream<Item = Result<ChangeEvent, tonic::Status>> + Send>>;

fn events<T: Send + 'static>(stream: tonic::codec::Streaming<T>, event: fn(T) -> Option<ChangeEvent>) -> Events {
    Box::pin(stream.map(move |message| message.map(|m| event(m).unwrap_or_default())))
}

/// Whether a stream that ended with `status` should be resumed from the last cursor: the
/// connection or the database went away, or the service stopped waiting for a slow reader.
fn resumable(status: &tonic::Status) -> bool {
    matches!(status.code(), tonic::Code::Unavailable | tonic::Code::Aborted)
}

impl Watch {
    async fn open(&self, session: &mut Session, cursor: &str) -> Result<Events, CallError> {
        fn fail(status: tonic::Status) -> CallError {
            CallError {
                action: "watching events".to_owned(),
                status,
            }
        }
        fn bearer<T>(message: T, token: &str) -> Result<tonic::Request<T>, CallError> {
            with_token(message, token).map_err(|e| fail(tonic::Status::invalid_argument(e.to_string())))
        }
        let token = session.token.clone();
        let (cursor, from_now) = (cursor.to_owned(), self.from_now && cursor.is_empty());
        let (entity_types, trial_id, site_code) = (
            self.entity_types.clone(),
            self.trial.clone().unwrap_or_default(),
            self.site.clone().unwrap_or_default(),
        );
        let clients = &mut session.clients;
        // The three contracts declare the same request and response; only the package differs.
        macro_rules! watch {
            ($client:ident, $pb:ident) => {{
                let request = $pb::WatchEventsRequest {
                    cursor,
                    from_now,
                    entity_types,
                    trial_id,
                    site_code,
                };
                let response = clients
                    .$client
                    .watch_events(bearer(request, &token)?)
                    .await
                    .map_err(fail)?;
                events(response.into_inner(), |m: $pb::WatchEventsResponse| m.event)
            }};
        }
        let stream = match self.service {
            Service::Enrollment => watch!(enrollment, epb),
            Service::Dosing => watch!(dosing, dpb),
            Service::Outcomes => watch!(outcomes, opb),
        };
        Ok(stream)
    }

    /// Prints events until the limit or an interrupt; after a dropped stream, resumes from the
    /// last cursor printed (waiting 1 s, then up to 30 s, between attempts).
    pub async fn run(self, session: &mut Session) -> anyhow::Result<()> {
        let mut cursor = self.cursor.clone().unwrap_or_default();
        let mut printed = 0u64;
        let mut backoff = Duration::from_secs(1);
        if self.limit == Some(0) {
            return Ok(());
        }
        loop {
            let ended = match self.open(session, &cursor).await {
                Ok(mut stream) => loop {
                    match stream.next().await {
                        Some(Ok(event)) => {
                            backoff = Duration::from_secs(1);
                            self.print(session, &event)?;
                            cursor = event.cursor;
                            printed += 1;
                            if self.limit.is_some_and(|limit| printed >= limit) {
                                return Ok(());
                            }
                        }
                        Some(Err(status)) => {
                            break CallError {
                                action: "watching events".into(),
                                status,
                            };
                        }
                        None => {
                            break CallError {
                                action: "watching events".into(),
                                status: tonic::Status::unavailable("the service ended the stream"),
                            };
                        }
                    }
                },
                Err(e) => e,
            };
            if !resumable(&ended.status) {
                return Err(ended.into());
            }
            eprintln!(
                "{}; resuming {} in {} s",
                ended,
                if cursor.is_empty() {
                    "from the start".to_owned()
                } else {
                    format!("after {cursor}")
                },
                backoff.as_secs()
            );
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(30));
        }
    }

    fn print(&self, session: &Session, event: &ChangeEvent) -> anyhow::Result<()> {
        if session.out.json {
            // One JSON object per line, so the output can be piped line by line.
            let value = session.out.to_json("trialops.common.v1.ChangeEvent", event)?;
            println!("{}", serde_json::to_string(&value)?);
            return Ok(());
        }
        let entry = event.entry.clone().unwrap_or_default();
        let at = entry
            .occurred_at
            .and_then(|t| DateTime::<Utc>::from_timestamp(t.seconds, t.nanos.max(0) as u32))
            .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
            .unwrap_or_default();
        let place = match (event.trial_id.as_str(), event.site_code.as_str()) {
            ("", "") => String::new(),
            (trial, "") => format!(" [{trial}]"),
            ("", site) => format!(" [{site}]"),
            (trial, site) => format!(" [{trial} {site}]"),
        };
        println!(
            "{}  {at}  {} {} {}{place} by {} ({})  cursor {}",
            event.event_id,
            entry.action,
            entry.entity_type,
            entry.entity_id,
            entry.actor,
            entry.actor_role,
            event.cursor
        );
        Ok(())
    }
}
