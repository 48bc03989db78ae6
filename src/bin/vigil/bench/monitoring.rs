//! Activity ingestion and a detector run: `vigil bench --monitor EVENTS`.

use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result};
use serde::Serialize;
use vigil::auth::{self};
use vigil::demo::{self, SeedOptions};
use vigil::keys::keystore::{FileKeystore, Keystore};
use vigil::monitor::shard::ShardCount;
use vigil::platform;
use vigil::store::{Store, StoreOptions};

use super::*;
use crate::shared::*;

/// What the monitoring benchmark measured.
#[derive(Debug, Clone, Serialize)]
pub struct MonitorBenchReport {
    /// `sqlite` or `postgres`.
    pub backend: String,
    /// Activity lines ingested (JSON lines, parsed, resolved, sealed and written).
    pub events: u64,
    /// Seconds to ingest them.
    pub ingest_seconds: f64,
    /// Records judged by the detector run (the ingested lines and the seeded history).
    pub judged: u64,
    /// Seconds for the detector run (content screening included).
    pub detect_seconds: f64,
    /// Ingested lines per second.
    pub ingest_per_s: f64,
    /// Judged records per second.
    pub detect_per_s: f64,
    /// Ingested lines per second of ingestion plus detection.
    pub combined_per_s: f64,
    /// The same machine's bare floor for writing the same rows, in events per second: a plain
    /// `COPY` by `psql` on Postgres, `scripts/ingest-floor`'s C program on SQLite (`null` when
    /// `VIGIL_INGEST_FLOOR` does not name it).
    pub floor_per_s: Option<f64>,
    /// Incidents the run opened.
    pub incidents: u64,
    /// Detector runs that judged new records (one per worker unless `together`).
    pub runs: u64,
    /// Of those, the ones that started afresh for some shard rather than following on from
    /// the worker's previous run (the first, and any after a record that came in late).
    pub runs_afresh: u64,
    /// Workers that ran the detectors at once (tasks, each with its own connections).
    pub workers: u32,
    /// Shards the detectors were split into.
    pub shards: u32,
    /// Whether the detectors ran while the lines came in (`--together`), following on from
    /// run to run as a worker does: `ingest_seconds` is then the ingestion with the detectors
    /// alongside, `detect_seconds` the time after it until every record was judged, and
    /// `detect_per_s` the records judged over the two.
    pub together: bool,
}

/// Where the detector run of the benchmark happens: `workers` tasks over `shards` shards,
/// each task with its own [`Store`] (connections) opened with `options`.
pub struct Fleet<'a> {
    /// Tasks running the detectors at once.
    pub workers: u32,
    /// Shards the detectors are split into.
    pub shards: ShardCount,
    /// How each worker opens the database.
    pub options: &'a StoreOptions,
    /// Whether the detectors run while the lines come in, rather than after.
    pub together: bool,
}

/// Seeds `users` accounts, then times ingesting `events` lines of activity (sign-ins, comment
/// submissions with their text, profile changes over the last day) and one detector run over
/// all of it.
pub async fn monitoring(
    store: &Store,
    keystore: &dyn Keystore,
    users: u32,
    events: u64,
    scratch: &Path,
    fleet: &Fleet<'_>,
) -> Result<MonitorBenchReport, BenchError> {
    use std::io::Read as _;
    if auth::is_initialised(store).await? {
        return Err(BenchError::NotScratch);
    }
    let step = |e: &dyn std::fmt::Display| BenchError::Step(e.to_string());
    let (actor, ring, _) = scratch_admin(store, keystore, &[vigil::rbac::Role::Moderator]).await?;
    let opts = SeedOptions {
        users,
        comments: 0,
        days: 30,
        seed: 11,
        scenarios: false,
    };
    demo::seed(store, &actor, &ring, opts, &mut |_| {})
        .await
        .map_err(|e| step(&e))?;
    let names = platform::first_usernames(store, users).await?;
    // Anchored to the hour, as the seeded history is: the same command judges the same history
    // (the same times of day, so the same habits and the same line ids) run after run.
    const HOUR: i64 = 3_600_000_000;
    const DAY: i64 = 24 * HOUR;
    let now = vigil::store::Timestamp::now().micros() / HOUR * HOUR;
    // Generated before the clock starts: ingestion is timed, not the generator.
    let mut file = Vec::with_capacity(events as usize * 200);
    super::feed::Feed::new(names, events, now - DAY, DAY)
        .read_to_end(&mut file)
        .map_err(|e| step(&e))?;
    let sqlite_floor = sqlite_floor(store, scratch, events).await?;
    // Each worker opens its own connections before the clock starts, as a running fleet has.
    let mut stores = Vec::with_capacity(fleet.workers as usize);
    for _ in 0..fleet.workers {
        stores.push(Store::open(store.url(), fleet.options).await?);
    }
    let ring = std::sync::Arc::new(ring);
    // Set once every line is in: a worker's run that starts after it sees them all.
    let ingested_all = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let detect = |tasks: &mut tokio::task::JoinSet<_>, stores: Vec<Store>| {
        for worker in stores {
            let (ring, actor, shards) = (ring.clone(), actor.clone(), fleet.shards);
            let follow = fleet.together.then(|| ingested_all.clone());
            tasks.spawn(async move {
                let r = detect_until_done(&worker, &ring, &actor, shards, follow).await;
                worker.close().await;
                r
            });
        }
    };
    let mut tasks = tokio::task::JoinSet::new();
    let ingest_start = vigil::store::Timestamp::now();
    let t = Instant::now();
    if fleet.together {
        detect(&mut tasks, std::mem::take(&mut stores));
    }
    let ingested = vigil::monitor::ingest_reader(store, &ring, &actor, file.as_slice())
        .await
        .map_err(|e| step(&e))?;
    let ingest_seconds = t.elapsed().as_secs_f64();
    ingested_all.store(true, std::sync::atomic::Ordering::SeqCst);
    if ingested.rejected_total > 0 {
        return Err(step(&format!("{} lines rejected", ingested.rejected_total)));
    }
    drop(file);
    let t = Instant::now();
    detect(&mut tasks, stores);
    let mut judged = Judged::default();
    while let Some(done) = tasks.join_next().await {
        let j = done.map_err(|e| step(&e))?.map_err(|e| step(&e))?;
        judged.records += j.records;
        judged.incidents += j.incidents;
        judged.runs += j.runs;
        judged.afresh += j.afresh;
    }
    let detect_seconds = t.elapsed().as_secs_f64();
    // Measured once the database is quiet: the floor has the machine to itself.
    let floor_per_s = match platform::copy_floor(store, ingest_start, scratch).await? {
        Some(f) => Some(f.rows as f64 / f.seconds),
        None => sqlite_floor,
    };
    let busy_seconds = if fleet.together {
        ingest_seconds + detect_seconds
    } else {
        detect_seconds
    };
    Ok(MonitorBenchReport {
        backend: store.backend().to_string(),
        events: ingested.ingested,
        ingest_seconds,
        judged: judged.records,
        detect_seconds,
        ingest_per_s: ingested.ingested as f64 / ingest_seconds,
        detect_per_s: judged.records as f64 / busy_seconds,
        combined_per_s: ingested.ingested as f64 / (ingest_seconds + detect_seconds),
        floor_per_s,
        incidents: judged.incidents,
        runs: judged.runs,
        runs_afresh: judged.afresh,
        workers: fleet.workers,
        shards: fleet.shards.get(),
        together: fleet.together,
    })
}

/// What the workers' runs judged.
#[derive(Debug, Default)]
struct Judged {
    /// Records judged.
    records: u64,
    /// Incidents opened.
    incidents: u64,
    /// Runs that judged new records.
    runs: u64,
    /// Of those, the ones that could not follow on from the previous run for every shard.
    afresh: u64,
}

/// One worker of the fleet: runs the detectors, following on from its own previous run as a
/// running worker does, until a run finds every shard free and judged (a shard another worker
/// holds is polled for, as a worker's next round would). With `follow`, it runs while the lines are still coming in, and
/// stops only at such a run that started after `follow` was set.
async fn detect_until_done(
    store: &Store,
    ring: &vigil::keys::KeyRing,
    actor: &vigil::auth::Actor,
    shards: ShardCount,
    follow: Option<std::sync::Arc<std::sync::atomic::AtomicBool>>,
) -> Result<Judged, vigil::monitor::MonitorError> {
    let screener = vigil::monitor::screen::Screener::new(&[], &[])
        .map_err(|e| vigil::monitor::MonitorError::Io(std::io::Error::other(e)))?;
    let policy = vigil::monitor::policy::Policy::default();
    let mut carry = vigil::monitor::Carry::default();
    let mut judged = Judged::default();
    loop {
        // Whether every line was in before this run started.
        let complete = follow
            .as_ref()
            .is_none_or(|f| f.load(std::sync::atomic::Ordering::SeqCst));
        match vigil::monitor::run_carrying(
            store, ring, actor, &policy, &screener, shards, &mut carry,
        )
        .await
        {
            Ok(r) => {
                judged.records += r.new_events;
                judged.incidents += r.opened;
                if r.new_events > 0 {
                    judged.runs += 1;
                    judged.afresh += u64::from(r.shards_followed.len() < r.shards_done.len());
                }
                if complete && r.shards_busy.is_empty() {
                    return Ok(judged);
                }
            }
            Err(vigil::monitor::MonitorError::Busy) => {}
            Err(e) => return Err(e),
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// SQLite's floor: `scripts/ingest-floor`'s C program (its binary named by
/// `VIGIL_INGEST_FLOOR`) writing `events` events' rows into a copy of the seeded database.
async fn sqlite_floor(
    store: &Store,
    scratch: &Path,
    events: u64,
) -> Result<Option<f64>, BenchError> {
    let step = |e: &dyn std::fmt::Display| BenchError::Step(e.to_string());
    let (Some(db), Some(floor)) = (
        store.url().sqlite_path(),
        std::env::var_os("VIGIL_INGEST_FLOOR"),
    ) else {
        return Ok(None);
    };
    store.checkpoint().await?;
    let copy = scratch.join("floor.db");
    std::fs::copy(db, &copy).map_err(|e| step(&e))?;
    let out = std::process::Command::new(floor)
        .arg(&copy)
        .arg(events.to_string())
        .output()
        .map_err(|e| step(&e))?;
    let _ = std::fs::remove_file(&copy);
    // "N events in S s = R/s"
    let text = String::from_utf8_lossy(&out.stdout);
    let rate = text
        .rsplit_once("= ")
        .and_then(|(_, r)| r.trim().trim_end_matches("/s").parse::<f64>().ok());
    match (out.status.success(), rate) {
        (true, Some(r)) => Ok(Some(r)),
        _ => Err(step(&format!("the ingest floor failed: {}", text.trim()))),
    }
}

pub(super) async fn cmd(
    store: &Store,
    options: &StoreOptions,
    keystore: &FileKeystore,
    a: &BenchArgs,
    events: u64,
    scratch: &Path,
) -> Result<ExitCode> {
    let fleet = Fleet {
        workers: a.workers,
        shards: ShardCount::new(a.shards.unwrap_or(a.workers))?,
        options,
        together: a.together,
    };
    let r = monitoring(store, keystore, a.users, events, scratch, &fleet)
        .await
        .context("benchmark failed")?;
    if a.json {
        print_json(&r)?;
    } else {
        println!("backend:   {}", r.backend);
        println!(
            "ingest:    {} events in {:.2} s = {:.0} events/s (JSON lines parsed, addresses sealed)",
            r.events, r.ingest_seconds, r.ingest_per_s
        );
        println!(
            "detect:    {} records in {:.2} s = {:.0} records/s ({} incidents opened; {} \
             worker(s), {} shard(s); {} run(s), {} afresh)",
            r.judged,
            r.detect_seconds,
            r.detect_per_s,
            r.incidents,
            r.workers,
            r.shards,
            r.runs,
            r.runs_afresh
        );
        println!(
            "combined:  {:.0} events/s ingested and judged{}",
            r.combined_per_s,
            if r.together {
                " (the detectors ran alongside ingestion; detect is the time after it)"
            } else {
                " (ingestion, then the detectors)"
            }
        );
        match r.floor_per_s {
            Some(f) => println!(
                "floor:     {f:.0} events/s (the same rows written bare; ingestion at {:.2}x)",
                r.ingest_per_s / f
            ),
            None => println!("floor:     not measured (set VIGIL_INGEST_FLOOR on SQLite)"),
        }
    }
    Ok(ExitCode::SUCCESS)
}
