//! The benchmarks' load client: callers that each hold one connection and call back to back (a
//! closed loop) or on a shared schedule (paced), with every call's latency kept, and pgbench run
//! with the same callers and read back from its per-transaction logs, so a service's figures and
//! its database baseline are measured the same way in the same run.
//!
//! Latency percentiles are exact (every latency is kept and sorted); a benchmark prints its
//! figures as a table and as JSON, never asserts on them.

use std::future::Future;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// One phase's figures: calls that succeeded, their latencies, calls that failed.
#[derive(Debug, Clone)]
pub struct Figures {
    /// What ran ("GetSubject", "pgbench: the same SELECT").
    pub label: String,
    /// Concurrent callers.
    pub callers: usize,
    /// Failed calls.
    pub errors: usize,
    /// Successful calls per second of the phase.
    pub per_second: f64,
    /// Every successful call's latency, ascending.
    pub latencies: Vec<Duration>,
    /// The longest a thread of the benchmark asking to wake every millisecond overslept during
    /// the phase ([`PauseWatch`]): a pause of the whole machine shows here as well as in the
    /// latencies, so it is not mistaken for the service's.
    pub pause: Duration,
}

impl Figures {
    /// Figures from a phase's latencies over `elapsed`.
    pub fn new(
        label: impl Into<String>,
        callers: usize,
        errors: usize,
        elapsed: Duration,
        mut latencies: Vec<Duration>,
    ) -> Figures {
        latencies.sort();
        Figures {
            label: label.into(),
            callers,
            errors,
            per_second: latencies.len() as f64 / elapsed.as_secs_f64().max(1e-9),
            latencies,
            pause: Duration::ZERO,
        }
    }

    /// These figures with the pause `watch` measured over the phase.
    pub fn paused(mut self, watch: PauseWatch) -> Figures {
        self.pause = watch.stop();
        self
    }

    /// The exact `p`th percentile (nearest rank); zero without calls.
    pub fn percentile(&self, p: f64) -> Duration {
        if self.latencies.is_empty() {
            return Duration::ZERO;
        }
        let rank = ((p / 100.0) * self.latencies.len() as f64).ceil() as usize;
        self.latencies[rank.clamp(1, self.latencies.len()) - 1]
    }

    /// The table's header, for [`Figures::print`].
    pub fn header() -> String {
        format!(
            "{:<56} {:>7} {:>12} {:>9} {:>9} {:>9} {:>7} {:>9}",
            "", "callers", "per second", "p50 ms", "p99 ms", "max ms", "errors", "pause ms"
        )
    }

    /// One table row.
    pub fn row(&self) -> String {
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        format!(
            "{:<56} {:>7} {:>12.0} {:>9.3} {:>9.3} {:>9.3} {:>7} {:>9.1}",
            self.label,
            self.callers,
            self.per_second,
            ms(self.percentile(50.0)),
            ms(self.percentile(99.0)),
            ms(self.latencies.last().copied().unwrap_or_default()),
            self.errors,
            ms(self.pause),
        )
    }

    /// Prints [`Figures::row`].
    pub fn print(&self) {
        println!("{}", self.row());
    }

    /// The figures as JSON (milliseconds).
    pub fn json(&self) -> serde_json::Value {
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        serde_json::json!({
            "label": self.label,
            "callers": self.callers,
            "per_second": self.per_second,
            "p50_ms": ms(self.percentile(50.0)),
            "p99_ms": ms(self.percentile(99.0)),
            "max_ms": ms(self.latencies.last().copied().unwrap_or_default()),
            "calls": self.latencies.len(),
            "errors": self.errors,
            "pause_ms": ms(self.pause),
        })
    }
}

/// A runtime of two worker threads named `name`: the callers' (`"callers"`), or the servers' so
/// that, as in a deployment, the callers' work does not take the servers' turns.
pub fn runtime(name: &str) -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name(name)
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("a runtime: {e}"))
}

/// A caller: one connection, one call at a time.
pub trait Caller: Send + 'static {
    /// Makes the `turn`th call (turns count across callers); `Err` describes a failed call.
    fn call(&mut self, turn: u64) -> impl Future<Output = Result<(), String>> + Send;
}

/// The callers calling back to back for `phase`.
pub async fn closed_loop<C: Caller>(label: &str, callers: Vec<C>, phase: Duration) -> Figures {
    let watch = PauseWatch::start();
    let count = callers.len();
    let started = Instant::now();
    let deadline = started + phase;
    let turns = Arc::new(AtomicU64::new(0));
    let tasks = callers
        .into_iter()
        .map(|mut caller| {
            let turns = turns.clone();
            tokio::spawn(async move {
                let (mut latencies, mut errors) = (Vec::new(), 0);
                while Instant::now() < deadline {
                    let turn = turns.fetch_add(1, Ordering::Relaxed);
                    let at = Instant::now();
                    match caller.call(turn).await {
                        Ok(()) => latencies.push(at.elapsed()),
                        Err(e) => {
                            errors += 1;
                            eprintln!("call {turn}: {e}");
                        }
                    }
                }
                (latencies, errors)
            })
        })
        .collect();
    collect(label, count, started, tasks).await.paused(watch)
}

/// The callers sharing a schedule of `rate` calls per second for `phase`. A call's latency runs
/// from its scheduled start, so a call held up behind a slow one counts the wait.
pub async fn paced<C: Caller>(label: &str, callers: Vec<C>, rate: f64, phase: Duration) -> Figures {
    let watch = PauseWatch::start();
    let count = callers.len();
    let started = tokio::time::Instant::now();
    let slots = Arc::new(AtomicU64::new(0));
    let total = (rate * phase.as_secs_f64()) as u64;
    let tasks = callers
        .into_iter()
        .map(|mut caller| {
            let slots = slots.clone();
            tokio::spawn(async move {
                let (mut latencies, mut errors) = (Vec::new(), 0);
                loop {
                    let slot = slots.fetch_add(1, Ordering::Relaxed);
                    if slot >= total {
                        break;
                    }
                    let at = started + Duration::from_secs_f64(slot as f64 / rate);
                    tokio::time::sleep_until(at).await;
                    match caller.call(slot).await {
                        Ok(()) => latencies.push(at.elapsed()),
                        Err(e) => {
                            errors += 1;
                            eprintln!("call {slot}: {e}");
                        }
                    }
                }
                (latencies, errors)
            })
        })
        .collect();
    collect(label, count, started.into_std(), tasks).await.paused(watch)
}

/// Prints a benchmark's title line (`what`, the phase length, the machine's cores) and the
/// table's header, after writing the machine's dirty pages to disk (`sync`), so that the
/// writeback of an earlier build's files does not land in the first phases.
pub fn print_title(what: &str, phase: Duration) {
    if let Err(e) = Command::new("sync").status() {
        eprintln!("sync: {e}");
    }
    println!(
        "{what}, {} s per phase, {} cores",
        phase.as_secs(),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!("{}", Figures::header());
}

/// Prints the rows as one line of JSON, a benchmark's last line (what `scripts/bench.sh` gathers).
pub fn print_json(phase: Duration, rows: &[Figures]) {
    let figures: Vec<_> = rows.iter().map(Figures::json).collect();
    println!(
        "{}",
        serde_json::json!({ "phase_seconds": phase.as_secs(), "figures": figures })
    );
}

/// A write path's phases: closed loops at each count of `counts` in turn, then the largest count
/// paced at half the best rate of those loops; each row printed as it ends. `callers(n)` makes
/// `n` callers with work enough for one phase (a write consumes what it writes to).
pub async fn write_phases<C: Caller>(
    label: &str,
    counts: &[usize],
    phase: Duration,
    callers: impl AsyncFn(usize) -> Vec<C>,
) -> Vec<Figures> {
    let mut rows = Vec::new();
    for &count in counts {
        let f = closed_loop(label, callers(count).await, phase).await;
        f.print();
        rows.push(f);
    }
    let peak = rows.iter().map(|f| f.per_second).fold(0.0, f64::max);
    let most = counts.iter().copied().max().unwrap_or(1);
    let half = format!("{label}, half the peak ({:.0}/s)", peak / 2.0);
    let f = paced(&half, callers(most).await, peak / 2.0, phase).await;
    f.print();
    rows.push(f);
    rows
}

/// Writes a benchmark's bulk load out of the write-ahead log before a phase starts
/// (`CHECKPOINT` on PostgreSQL, a truncating WAL checkpoint on SQLite), so that the phase does
/// not pay for the load's writes: on SQLite the first commit past the WAL's threshold would
/// otherwise copy the whole load into the database file while the phase's callers wait.
pub async fn write_out(db: &sea_orm::DatabaseConnection) {
    use sea_orm::ConnectionTrait;
    let sql = match db.get_database_backend() {
        sea_orm::DbBackend::Postgres => "CHECKPOINT",
        _ => "PRAGMA wal_checkpoint(TRUNCATE)",
    };
    if let Err(e) = db.execute_unprepared(sql).await {
        eprintln!("{sql} failed ({e}): the next phase may pay for the load's writes");
    }
}

/// Prints each row's p99 / p50 against the target of at most `target`.
pub fn print_tail_ratios<'a>(rows: impl IntoIterator<Item = &'a Figures>, target: f64) {
    for f in rows {
        let (p50, p99) = (f.percentile(50.0), f.percentile(99.0));
        // A pause of the machine longer than the phase's p99 sets the tail by itself.
        let paused = if f.pause > p99 {
            format!(
                "; the machine paused {:.0} ms during the phase, so this tail is not the service's alone",
                f.pause.as_secs_f64() * 1000.0
            )
        } else {
            String::new()
        };
        println!(
            "{} at {}: p99 / p50 = {:.2} (target: at most {target}){paused}",
            f.label,
            f.callers,
            p99.as_secs_f64() / p50.as_secs_f64().max(1e-9)
        );
    }
}

async fn collect(
    label: &str,
    callers: usize,
    started: Instant,
    tasks: Vec<tokio::task::JoinHandle<(Vec<Duration>, usize)>>,
) -> Figures {
    let (mut latencies, mut errors) = (Vec::new(), 0);
    for task in tasks {
        match task.await {
            Ok((l, e)) => {
                latencies.extend(l);
                errors += e;
            }
            Err(e) => panic!("a caller failed: {e}"),
        }
    }
    Figures::new(label, callers, errors, started.elapsed(), latencies)
}

/// pgbench running `script` against `url` with `clients` clients (prepared statements, no
/// vacuum) for `phase`, `defines` as its `-D` variables; its per-transaction logs as figures.
/// Panics when pgbench fails: a baseline is never silently left out.
pub fn pgbench(
    label: &str,
    url: &str,
    script: &Path,
    clients: usize,
    phase: Duration,
    defines: &[(&str, String)],
) -> Figures {
    let logs = tempfile::tempdir().unwrap_or_else(|e| panic!("temporary folder: {e}"));
    let prefix = logs.path().join("pgbench");
    let mut command = Command::new("pgbench");
    command.args(["-n", "-M", "prepared"]);
    for (name, value) in defines {
        command.arg("-D").arg(format!("{name}={value}"));
    }
    let watch = PauseWatch::start();
    let started = Instant::now();
    let out = command
        .args(["-c", &clients.to_string(), "-j", &clients.min(2).to_string()])
        .args(["-T", &phase.as_secs().max(1).to_string(), "-l", "--log-prefix"])
        .arg(&prefix)
        .arg("-f")
        .arg(script)
        .arg(url)
        .output()
        .unwrap_or_else(|e| panic!("running pgbench: {e}"));
    assert!(
        out.status.success(),
        "pgbench: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let elapsed = started.elapsed().min(phase.max(Duration::from_secs(1)));
    // `client transaction latency_us script epoch us`, one file per thread.
    let (mut latencies, mut errors) = (Vec::new(), 0);
    let entries = std::fs::read_dir(logs.path()).unwrap_or_else(|e| panic!("pgbench's logs: {e}"));
    for entry in entries.flatten() {
        let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
        for line in text.lines() {
            match line.split_whitespace().nth(2).map(str::parse::<u64>) {
                Some(Ok(us)) => latencies.push(Duration::from_micros(us)),
                _ => errors += 1,
            }
        }
    }
    Figures::new(label, clients, errors, elapsed, latencies).paused(watch)
}

/// A thread of its own that asks to wake every millisecond and keeps the longest it overslept.
/// On a loaded machine the scheduler wakes it within a few milliseconds; a longer pause means
/// every thread of the machine was held up (a virtual machine paused by its host, the kernel
/// writing back a build's files), and the phase's tail latencies are not the service's alone.
pub struct PauseWatch {
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<Duration>,
}

impl PauseWatch {
    /// Starts watching.
    pub fn start() -> PauseWatch {
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let watching = stop.clone();
        let thread = std::thread::spawn(move || {
            let (tick, mut longest) = (Duration::from_millis(1), Duration::ZERO);
            while !watching.load(Ordering::Relaxed) {
                let asked = Instant::now();
                std::thread::sleep(tick);
                longest = longest.max(asked.elapsed().saturating_sub(tick));
            }
            longest
        });
        PauseWatch { stop, thread }
    }

    /// Stops watching; the longest oversleep seen.
    pub fn stop(self) -> Duration {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank_over_every_latency() {
        let latencies = (1..=200).rev().map(Duration::from_millis).collect();
        let f = Figures::new("x", 1, 0, Duration::from_secs(2), latencies);
        // 200 calls in 2 s; the 50th percentile of 1..=200 ms by nearest rank is the 100th value.
        assert_eq!(f.per_second, 100.0);
        assert_eq!(f.percentile(50.0), Duration::from_millis(100));
        assert_eq!(f.percentile(99.0), Duration::from_millis(198));
        assert_eq!(f.percentile(100.0), Duration::from_millis(200));
        assert_eq!(
            Figures::new("y", 1, 3, Duration::from_secs(1), vec![]).percentile(50.0),
            Duration::ZERO
        );
    }
}
