//! Reproducible measurements of the foundation (`vigil bench`): demo-seed throughput, audit
//! append rate and audit verification speed, on a scratch database.

use std::time::{Duration, Instant};

use serde::Serialize;

use crate::audit::{self, AuditAction, AuditActor, NewAuditEntry, Verification};
use crate::auth::{self, Password, Username};
use crate::demo::{self, SeedOptions, SeedProgress};
use crate::store::{Store, StoreError};

/// What to measure.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct BenchOptions {
    /// Demo seed size.
    pub seed: SeedOptions,
    /// Audit entries to append before verifying.
    pub audit_entries: u32,
    /// Times to run the verification (the median is reported).
    pub verify_runs: u32,
}

/// The figures.
#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    /// The backend measured.
    pub backend: String,
    /// Rows the seed wrote.
    pub seed_rows: u64,
    /// Seconds it took.
    pub seed_seconds: f64,
    /// Rows per second.
    pub seed_rows_per_sec: f64,
    /// Audit entries appended (1,000 per transaction).
    pub audit_appended: u64,
    /// Appends per second.
    pub audit_appends_per_sec: f64,
    /// Entries in the chain when verified.
    pub verify_entries: u64,
    /// Median seconds of one verification.
    pub verify_median_seconds: f64,
    /// Entries verified per second (median run).
    pub verify_entries_per_sec: f64,
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

/// Runs the benchmarks on `store`, which must be freshly created.
pub async fn run(
    store: &Store,
    opts: BenchOptions,
    progress: &mut dyn FnMut(SeedProgress),
) -> Result<BenchReport, BenchError> {
    if auth::is_initialised(store).await? {
        return Err(BenchError::NotScratch);
    }
    let step = |e: &dyn std::fmt::Display| BenchError::Step(e.to_string());
    let name = Username::parse("bench-admin").map_err(|e| step(&e))?;
    let secret = auth::random_password(24);
    let password = Password::parse_for_operator(&secret, &name).map_err(|e| step(&e))?;
    auth::bootstrap_admin(store, &name, &password)
        .await
        .map_err(|e| step(&e))?;
    let actor = auth::authenticate(store, name.as_str(), &secret)
        .await
        .map_err(|e| step(&e))?;

    let t = Instant::now();
    let seeded = demo::seed(store, &actor, opts.seed, progress)
        .await
        .map_err(|e| step(&e))?;
    let seed_time = t.elapsed();

    let t = Instant::now();
    let mut appended = 0u64;
    while appended < u64::from(opts.audit_entries) {
        let n = (u64::from(opts.audit_entries) - appended).min(1_000);
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
    let append_time = t.elapsed();

    let mut runs = Vec::new();
    let mut entries = 0;
    for _ in 0..opts.verify_runs.max(1) {
        let t = Instant::now();
        match audit::verify_chain(store).await? {
            Verification::Ok { entries: n, .. } => entries = n,
            broken => return Err(step(&format!("the chain did not verify: {broken:?}"))),
        }
        runs.push(t.elapsed());
    }
    runs.sort();
    let median = runs[runs.len() / 2];

    Ok(BenchReport {
        backend: store.backend().to_string(),
        seed_rows: seeded.total_rows(),
        seed_seconds: seed_time.as_secs_f64(),
        seed_rows_per_sec: per_sec(seeded.total_rows(), seed_time),
        audit_appended: appended,
        audit_appends_per_sec: per_sec(appended, append_time),
        verify_entries: entries,
        verify_median_seconds: median.as_secs_f64(),
        verify_entries_per_sec: per_sec(entries, median),
    })
}

fn per_sec(n: u64, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64().max(1e-9)
}
