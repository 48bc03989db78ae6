//! Retention over 2,000 days of a seeded platform: `vigil bench --retention`.

use std::ops::ControlFlow;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result};
use serde::Serialize;
use vigil::auth::{self};
use vigil::demo::{self, SeedOptions};
use vigil::keys::keystore::{FileKeystore, Keystore};
use vigil::platform;
use vigil::store::{Store, StoreError};

use super::*;
use crate::shared::*;

/// Retention figures: rows per second for each policy's action, and archive throughput.
#[derive(Debug, Clone, Serialize)]
pub struct RetentionBenchReport {
    /// The backend measured.
    pub backend: String,
    /// Seconds of the dry run over every policy.
    pub plan_seconds: f64,
    /// Activity records deleted.
    pub activity_deleted: u64,
    /// Seconds.
    pub activity_seconds: f64,
    /// Activity records deleted per second.
    pub activity_per_sec: f64,
    /// Comments anonymised.
    pub comments_anonymised: u64,
    /// Seconds.
    pub comments_seconds: f64,
    /// Comments anonymised per second.
    pub comments_per_sec: f64,
    /// Audit entries archived.
    pub audit_archived: u64,
    /// Seconds.
    pub audit_seconds: f64,
    /// Audit entries archived per second (written, synced, removed from the live table).
    pub audit_per_sec: f64,
    /// Accounts the platform deleted 60 days before, removed for good (with what cascades:
    /// their remaining activity and reactions; their comments lose the author).
    pub accounts_deleted: u64,
    /// Seconds.
    pub accounts_seconds: f64,
    /// Accounts removed per second.
    pub accounts_per_sec: f64,
    /// Activity records and reactions removed with those accounts.
    pub accounts_cascaded: u64,
    /// Records per chunk.
    pub chunk: u32,
}

/// Seeds a scratch database with `users` and `comments` over 2,000 days and `audit_entries`
/// audit entries, then times one retention run per policy: activity past 90 days deleted,
/// comments past 30 days anonymised (the period shortened so most are due), a quarter of the
/// accounts (deleted by the platform 60 days before) removed for good, and the audit log
/// archived as it would be eight years on.
pub async fn retention(
    store: &Store,
    keystore: &dyn Keystore,
    users: u32,
    comments: u32,
    audit_entries: u32,
    chunk: u32,
) -> Result<RetentionBenchReport, BenchError> {
    use vigil::retention::{self, Category, RunOptions};
    if auth::is_initialised(store).await? {
        return Err(BenchError::NotScratch);
    }
    let step = |e: &dyn std::fmt::Display| BenchError::Step(e.to_string());
    let (actor, ring, _) = scratch_admin(store, keystore, &[]).await?;
    scratch_history(store, &actor, &ring, users, comments, audit_entries).await?;
    let t = Instant::now();
    retention::plan(store, &actor, None)
        .await
        .map_err(|e| step(&e))?;
    let plan_seconds = t.elapsed().as_secs_f64();
    let archive =
        std::env::temp_dir().join(format!("vigil-bench-archive-{}", uuid::Uuid::new_v4()));
    let timed = |policy: Category, as_of: Option<vigil::store::Timestamp>| {
        let options = RunOptions {
            policy: Some(policy),
            chunk,
            as_of,
            archive_dir: Some(archive.clone()),
            abort_in_chunk: None,
        };
        let actor = &actor;
        async move {
            let t = Instant::now();
            let rec = retention::run(store, actor, &options, &mut |_| ControlFlow::Continue(()))
                .await
                .map_err(|e| BenchError::Step(e.to_string()))?;
            let seconds = t.elapsed().as_secs_f64();
            if let Some(e) = rec.errors.first() {
                return Err(BenchError::Step(e.message.clone()));
            }
            let done = rec.counts.get(&policy).map_or(0, |c| c.done);
            Ok::<_, BenchError>((done, seconds))
        }
    };
    let (activity_deleted, activity_seconds) = timed(Category::Activity, None).await?;
    let (comments_anonymised, comments_seconds) = timed(Category::Comments, None).await?;
    let before = platform::counts(store).await?;
    let (accounts_deleted, accounts_seconds) = timed(Category::DeletedUsers, None).await?;
    let after = platform::counts(store).await?;
    let cascaded = (before.activity - after.activity) + (before.reactions - after.reactions);
    let later = vigil::store::Timestamp::from_micros(
        vigil::store::Timestamp::now().micros() + 8 * 366 * 86_400_000_000,
    );
    let (audit_archived, audit_seconds) = timed(Category::Audit, Some(later)).await?;
    let _ = std::fs::remove_dir_all(&archive);
    let rate = |n: u64, s: f64| if s > 0.0 { n as f64 / s } else { 0.0 };
    Ok(RetentionBenchReport {
        backend: store.backend().to_string(),
        plan_seconds,
        activity_deleted,
        activity_seconds,
        activity_per_sec: rate(activity_deleted, activity_seconds),
        comments_anonymised,
        comments_seconds,
        comments_per_sec: rate(comments_anonymised, comments_seconds),
        audit_archived,
        audit_seconds,
        audit_per_sec: rate(audit_archived, audit_seconds),
        accounts_deleted,
        accounts_seconds,
        accounts_per_sec: rate(accounts_deleted, accounts_seconds),
        accounts_cascaded: u64::try_from(cascaded).unwrap_or(0),
        chunk,
    })
}

/// The history [`retention`] cleans up: `users` and `comments` over 2,000 days, `audit_entries`
/// entries, a quarter of the accounts deleted 60 days ago, and comments kept 30 days.
async fn scratch_history(
    store: &Store,
    actor: &auth::Actor,
    ring: &keys::KeyRing,
    users: u32,
    comments: u32,
    audit_entries: u32,
) -> Result<(), BenchError> {
    use vigil::retention::{self, Category, PolicyChange};
    let step = |e: &dyn std::fmt::Display| BenchError::Step(e.to_string());
    let opts = SeedOptions {
        users,
        comments,
        days: 2_000,
        seed: 13,
        scenarios: false,
    };
    demo::seed(store, actor, ring, opts, &mut |_| {})
        .await
        .map_err(|e| step(&e))?;
    append_bench_entries(store, audit_entries).await?;
    let gone = platform::sample_user_ids(store, users / 4).await?;
    let mut tx = store.begin().await?;
    let deleted_at = vigil::store::Timestamp::from_micros(
        vigil::store::Timestamp::now().micros() - 60 * 86_400_000_000,
    );
    platform::mark_deleted(&mut tx, &gone, deleted_at).await?;
    tx.commit().await.map_err(StoreError::from)?;
    let shorter = PolicyChange {
        period_days: Some(30),
        ..PolicyChange::default()
    };
    retention::set_policy(store, actor, Category::Comments, &shorter)
        .await
        .map_err(|e| step(&e))?;
    Ok(())
}

pub(super) async fn cmd(
    store: &Store,
    keystore: &FileKeystore,
    a: &BenchArgs,
    chunk: u32,
) -> Result<ExitCode> {
    let r = retention(store, keystore, a.users, a.comments, a.audit_entries, chunk)
        .await
        .context("benchmark failed")?;
    if a.json {
        print_json(&r)?;
    } else {
        println!("backend:   {} (chunks of {})", r.backend, r.chunk);
        println!("plan:      {:.2} s for every policy", r.plan_seconds);
        println!(
            "activity:  {} deleted in {:.2} s = {:.0} rows/s",
            r.activity_deleted, r.activity_seconds, r.activity_per_sec
        );
        println!(
            "comments:  {} anonymised in {:.2} s = {:.0} rows/s",
            r.comments_anonymised, r.comments_seconds, r.comments_per_sec
        );
        println!(
            "accounts:  {} deleted accounts removed in {:.2} s = {:.0} accounts/s \
             (with {} activity records and reactions)",
            r.accounts_deleted, r.accounts_seconds, r.accounts_per_sec, r.accounts_cascaded
        );
        println!(
            "audit:     {} archived in {:.2} s = {:.0} entries/s",
            r.audit_archived, r.audit_seconds, r.audit_per_sec
        );
    }
    Ok(ExitCode::SUCCESS)
}
