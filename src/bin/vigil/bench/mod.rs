//! `vigil bench`: reproducible measurements on a scratch database, one file per area. They use
//! the core's public API like any other caller.

mod charts;
mod dsr;
mod feed;
mod foundation;
mod monitoring;
mod partitions;
mod retention;
mod screening;

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Result;
use clap::{Args, Subcommand};
use vigil::audit::{self, AuditAction, AuditActor, NewAuditEntry};
use vigil::auth::{self, Password, Username};
use vigil::config::Config;
use vigil::crypto::KeyBits;
use vigil::demo::SeedOptions;
use vigil::keys;
use vigil::keys::keystore::{FileKeystore, Keystore};
use vigil::store::{DatabaseUrl, Store, StoreError};

use foundation::BenchOptions;

#[derive(Subcommand)]
pub(crate) enum Command {
    /// Measure demo-seed throughput and audit-chain speed on a scratch database.
    Bench(BenchArgs),
}

#[derive(Args)]
#[command(group(clap::ArgGroup::new("takes_events").args(["monitor", "charts"]).multiple(true)))]
pub(crate) struct BenchArgs {
    /// Platform users to seed.
    #[arg(long, default_value_t = 100_000)]
    users: u32,
    /// Comments to seed.
    #[arg(long, default_value_t = 1_000_000)]
    comments: u32,
    /// Audit entries to append and verify.
    #[arg(long, default_value_t = 200_000)]
    audit_entries: u32,
    /// Verification runs (the median is reported).
    #[arg(long, default_value_t = 5)]
    verify_runs: u32,
    /// Skip timing a rotation of the `contact` key over the seeded rows.
    #[arg(long)]
    no_rotate: bool,
    /// Measure data-subject requests instead: a subject with --subject-comments comments among
    /// the seeded platform (access and portability exports, whole-database scan, erasure).
    #[arg(long)]
    dsr: bool,
    /// The subject's comments for --dsr.
    #[arg(long, default_value_t = 100_000)]
    subject_comments: u32,
    /// Measure content screening instead, over this many demo comments (no database).
    #[arg(long, value_name = "LINES")]
    screen: Option<usize>,
    /// Measure activity ingestion plus a detector run instead: this many events (or --events)
    /// from --users accounts (on a scratch SQLite file unless --database names an empty
    /// database), against the bare floor of the same machine: on Postgres a plain `COPY` of
    /// the same rows from a file by `psql`; on SQLite the C program of `scripts/ingest-floor`
    /// when `VIGIL_INGEST_FLOOR` names its binary.
    #[arg(long, value_name = "EVENTS", num_args = 0..=1, default_missing_value = "50000")]
    monitor: Option<u64>,
    /// Events for --monitor; for --charts, activity lines ingested on top of the seeded
    /// platform, spread over the 90 days.
    #[arg(long, value_name = "N", requires = "takes_events")]
    events: Option<u64>,
    /// Workers for --monitor: this many tasks, each with its own connections to the
    /// database, run the detectors at once, each taking the shards no other holds.
    #[arg(long, value_name = "W", default_value_t = 1, requires = "monitor",
          value_parser = clap::value_parser!(u32).range(1..=64))]
    workers: u32,
    /// For --monitor: run the detectors while the lines come in, as a platform's feed and a
    /// running worker do (each worker following on from its previous run), rather than after.
    #[arg(long, requires = "monitor")]
    together: bool,
    /// Shards the detectors are split into for --monitor (1 to 64; default: --workers).
    #[arg(long, value_name = "N", requires = "monitor",
          value_parser = clap::value_parser!(u32).range(1..=64))]
    shards: Option<u32>,
    /// Measure retention instead: seed --users and --comments over 2,000 days plus
    /// --audit-entries, then time deleting old activity, anonymising comments and archiving the
    /// audit log.
    #[arg(long)]
    retention: bool,
    /// Measure dropping a month of activity instead (Postgres only): fill one old month with
    /// this many activity rows, then time a retention run dropping its partition against a
    /// `DELETE` of the same rows (the month filled again), median of 3 each.
    #[arg(long, value_name = "N")]
    partition_drop: Option<u64>,
    /// Measure the dashboard charts instead: seed --users and --comments over 90 days (with
    /// the attack scenarios, and a detector run) and ingest --events lines of activity over
    /// the same days, then time each chart (median of 5).
    #[arg(long)]
    charts: bool,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

pub(crate) async fn run(
    command: Command,
    config: &Config,
    explicit_database: bool,
) -> Result<ExitCode> {
    let Command::Bench(a) = command;
    if let Some(lines) = a.screen {
        return screening::cmd(lines, a.json).await;
    }
    // A scratch SQLite file unless --database / VIGIL_DATABASE_URL names another (empty) one.
    let scratch = tempfile::tempdir()?;
    let url = if explicit_database {
        config.database.url.clone()
    } else {
        DatabaseUrl::sqlite_file(&scratch.path().join("bench.db"))
    };
    let store = Store::open(&url, &config.database.store_options()).await?;
    let opts = BenchOptions {
        seed: SeedOptions {
            users: a.users,
            comments: a.comments,
            days: 30,
            seed: 7,
            scenarios: false,
        },
        audit_entries: a.audit_entries,
        verify_runs: a.verify_runs,
        rotate: !a.no_rotate,
    };
    // The scratch administrator's key pair goes into a scratch file keystore, not the keychain.
    let keystore = FileKeystore::open(&scratch.path().join("keys"))?;
    if a.charts {
        return charts::cmd(&store, &keystore, &a).await;
    }
    if let Some(rows) = a.partition_drop {
        return partitions::cmd(&store, &keystore, &a, rows).await;
    }
    if a.retention {
        return retention::cmd(&store, &keystore, &a, config.retention.chunk).await;
    }
    if let Some(events) = a.monitor {
        let events = a.events.unwrap_or(events);
        let options = config.database.store_options();
        return monitoring::cmd(&store, &options, &keystore, &a, events, scratch.path()).await;
    }
    if a.dsr {
        return dsr::cmd(&store, &keystore, &a, opts.seed).await;
    }
    foundation::cmd(&store, &keystore, &a, opts).await
}

/// Why a benchmark could not run.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// The database already holds data: benchmarks run only on a scratch database.
    #[error("benchmarks need an empty, uninitialised database")]
    NotScratch,
    /// A step failed.
    #[error("{0}")]
    Step(String),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Times `n` runs of `f`; returns operations per second.
fn rate(n: u32, mut f: impl FnMut(u32)) -> f64 {
    let t = Instant::now();
    for i in 0..n {
        f(i);
    }
    per_sec(u64::from(n), t.elapsed())
}

/// Runs `a` and `b` alternately `n` times each; returns the total time of each.
fn paired(n: u32, mut a: impl FnMut(), mut b: impl FnMut()) -> (Duration, Duration) {
    let (mut ta, mut tb) = (Duration::ZERO, Duration::ZERO);
    for _ in 0..n {
        let t = Instant::now();
        a();
        ta += t.elapsed();
        let t = Instant::now();
        b();
        tb += t.elapsed();
    }
    (ta, tb)
}

fn per_sec(n: u64, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64().max(1e-9)
}

/// Creates the scratch database's administrator (with `extra` roles too), signs in and
/// unlocks their keys. Returns the actor, their key ring and their random password.
async fn scratch_admin(
    store: &Store,
    keystore: &dyn Keystore,
    extra: &[vigil::rbac::Role],
) -> Result<(auth::Actor, keys::KeyRing, zeroize::Zeroizing<String>), BenchError> {
    let step = |e: &dyn std::fmt::Display| BenchError::Step(e.to_string());
    let name = Username::parse("bench-admin").map_err(|e| step(&e))?;
    let secret = zeroize::Zeroizing::new(auth::random_password(24));
    let password = Password::parse_for_operator(&secret, &name).map_err(|e| step(&e))?;
    auth::bootstrap_admin(store, keystore, &name, &password, KeyBits::B2048)
        .await
        .map_err(|e| step(&e))?;
    if !extra.is_empty() {
        let admin = auth::authenticate(store, name.as_str(), &secret, &auth::MfaPolicy::none())
            .await
            .map_err(|e| step(&e))?;
        let mut roles = vec![vigil::rbac::Role::Admin];
        roles.extend_from_slice(extra);
        auth::users::set_roles(store, &admin, name.as_str(), &roles)
            .await
            .map_err(|e| step(&e))?;
    }
    let actor = auth::authenticate(store, name.as_str(), &secret, &auth::MfaPolicy::none())
        .await
        .map_err(|e| step(&e))?;
    let ring = keys::unlock(store, keystore, &actor, &secret)
        .await
        .map_err(|e| step(&e))?;
    Ok((actor, ring, secret))
}

/// Appends `count` benchmark entries to the audit chain, 1,000 per transaction.
async fn append_bench_entries(store: &Store, count: u32) -> Result<u64, BenchError> {
    let mut appended = 0u64;
    while appended < u64::from(count) {
        let n = (u64::from(count) - appended).min(1_000);
        let mut tx = store.begin().await?;
        for i in 0..n {
            let entry =
                NewAuditEntry::new(AuditActor::System("bench"), AuditAction::BenchmarkEntry)
                    .target(format!("item:{}", appended + i))
                    .details(serde_json::json!({ "n": appended + i }));
            audit::append(&mut tx, &entry).await?;
        }
        tx.commit().await.map_err(StoreError::from)?;
        appended += n;
    }
    Ok(appended)
}
