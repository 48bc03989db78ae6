//! Dropping a month of activity against deleting it: `vigil bench --partition-drop N`
//! (Postgres only).

use std::process::ExitCode;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use serde::Serialize;
use vigil::auth;
use vigil::keys::keystore::FileKeystore;
use vigil::retention::{self, Category, RunOptions};
use vigil::store::partitions::{bench_delete, bench_fill, drop_month, month_start, partition_name};
use vigil::store::{Backend, Store, Timestamp};

use super::*;
use crate::shared::*;

/// Runs of each measurement (the median is reported).
const RUNS: usize = 3;

/// The figures: one old month of `rows` activity records, cleared by retention dropping its
/// partition, and by one `DELETE` of the same rows.
#[derive(Debug, Clone, Serialize)]
pub struct PartitionDropReport {
    /// Activity records in the month.
    pub rows: u64,
    /// Median milliseconds of a retention run of the activity policy that drops the month's
    /// partition (the whole run: listing, the hold test, the count, the drop, the records).
    pub drop_ms: f64,
    /// Median milliseconds of `DELETE FROM activity_log` of the month's rows.
    pub delete_ms: f64,
    /// Median milliseconds of the drop alone: `vigil_activity_partition_drop` (the hold test,
    /// the exact count, `DROP TABLE`) in its transaction, committed.
    pub drop_statement_ms: f64,
    /// `delete_ms / drop_ms`.
    pub ratio: f64,
    /// Runs of each (the month is filled again before each).
    pub runs: usize,
    /// Rows retention counted as done in its last run (equal to `rows`).
    pub counted: u64,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

pub(super) async fn cmd(
    store: &Store,
    keystore: &FileKeystore,
    a: &BenchArgs,
    rows: u64,
) -> Result<ExitCode> {
    if store.backend() != Backend::Postgres {
        bail!(
            "--partition-drop measures Postgres month partitions: name an empty Postgres \
             database with --database (SQLite has no partitions)"
        );
    }
    if rows == 0 {
        bail!("--partition-drop needs at least one row");
    }
    if auth::is_initialised(store).await? {
        bail!(BenchError::NotScratch);
    }
    let (actor, _ring, _) = scratch_admin(store, keystore, &[])
        .await
        .context("benchmark failed")?;
    // A month two years back: past the default 90-day policy by far.
    let start = month_start(Timestamp::now().micros() - 730 * 86_400_000_000);
    let run = RunOptions {
        policy: Some(Category::Activity),
        ..RunOptions::default()
    };
    let (mut drops, mut statements, mut deletes, mut counted) =
        (Vec::new(), Vec::new(), Vec::new(), 0);
    for i in 0..RUNS {
        if !a.json {
            eprintln!("run {}/{RUNS}: filling {rows} rows", i + 1);
        }
        bench_fill(store, start, rows).await?;
        let t = Instant::now();
        let rec = retention::run(store, &actor, &run, &mut |_| {
            std::ops::ControlFlow::Continue(())
        })
        .await
        .context("retention run")?;
        drops.push(t.elapsed().as_secs_f64() * 1e3);
        let c = &rec.counts[&Category::Activity];
        if c.partitions != 1 {
            bail!("retention did not drop the month's partition: {c:?}");
        }
        counted = c.done;

        bench_fill(store, start, rows).await?;
        let t = Instant::now();
        let mut tx = store.begin().await?;
        let dropped = drop_month(&mut tx, start, Timestamp::now().micros()).await?;
        tx.commit().await.map_err(StoreError::from)?;
        statements.push(t.elapsed().as_secs_f64() * 1e3);
        if dropped != Some(i64::try_from(rows)?) {
            bail!("the drop removed {dropped:?} rows, not {rows}");
        }

        bench_fill(store, start, rows).await?;
        let t = Instant::now();
        let deleted = bench_delete(store, start).await?;
        deletes.push(t.elapsed().as_secs_f64() * 1e3);
        if deleted != rows {
            bail!("deleted {deleted} rows, not {rows}");
        }
    }
    let (drop_ms, delete_ms) = (median(drops), median(deletes));
    let r = PartitionDropReport {
        rows,
        drop_ms,
        drop_statement_ms: median(statements),
        delete_ms,
        ratio: delete_ms / drop_ms.max(1e-9),
        runs: RUNS,
        counted,
    };
    if a.json {
        print_json(&r)?;
    } else {
        println!(
            "month of {} activity rows ({}), median of {RUNS}:",
            r.rows,
            partition_name(start)
        );
        println!("retention dropping its partition: {:.1} ms", r.drop_ms);
        println!(
            "  of which the drop itself:       {:.1} ms",
            r.drop_statement_ms
        );
        println!("DELETE of the same rows:          {:.1} ms", r.delete_ms);
        println!("ratio:                            {:.1}x", r.ratio);
    }
    Ok(ExitCode::SUCCESS)
}
