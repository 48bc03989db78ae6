//! Data-subject requests for a subject with many comments: `vigil bench --dsr`.

use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result};
use serde::Serialize;
use vigil::auth::{self};
use vigil::demo::{self, SeedOptions, SeedProgress};
use vigil::keys::keystore::{FileKeystore, Keystore};
use vigil::keys::{self};
use vigil::platform;
use vigil::store::{Store, StoreError};

use super::*;
use crate::shared::*;

/// What the data-subject request benchmark measures on.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct DsrBenchOptions {
    /// The demo platform around the subject.
    pub seed: SeedOptions,
    /// The subject's own comments.
    pub subject_comments: u32,
}

/// Data-subject request figures: one subject with many comments among many rows.
#[derive(Debug, Clone, Serialize)]
pub struct DsrBenchReport {
    /// The backend measured.
    pub backend: String,
    /// Rows in the platform tables (users, events, comments, reactions, activity).
    pub platform_rows: i64,
    /// The subject's comments.
    pub subject_comments: u32,
    /// Seconds to run an access request (collect, JSON + HTML, record).
    pub access_export_seconds: f64,
    /// Bytes of the access JSON.
    pub access_json_bytes: u64,
    /// Seconds to run a portability request (zip of JSON + CSV with manifest).
    pub portability_export_seconds: f64,
    /// Seconds of a residual scan of the whole database for the subject (before erasure).
    pub scan_seconds: f64,
    /// Sealed values the scan opened.
    pub scan_values_opened: u64,
    /// Seconds to run the erasure, its residual scan included.
    pub erasure_seconds: f64,
    /// Rows the erasure changed or deleted.
    pub erasure_rows: i64,
}

/// Seeds a scratch database, adds one subject with `subject_comments` comments, and times an
/// access export, a portability export, a whole-database residual scan and an erasure.
pub async fn dsr(
    store: &Store,
    keystore: &dyn Keystore,
    opts: DsrBenchOptions,
    progress: &mut (dyn FnMut(SeedProgress) + Send),
) -> Result<DsrBenchReport, BenchError> {
    use vigil::privacy::{self, Flow, RequestKind, RunOptions, RunOutcome, SubjectRef};
    let step = |e: &dyn std::fmt::Display| BenchError::Step(e.to_string());
    let (actor, ring, platform_rows) =
        scratch_with_subject(store, keystore, opts, progress).await?;

    let out = tempfile::tempdir().map_err(|e| step(&e))?;
    let run_options = RunOptions {
        out_dir: Some(out.path().to_path_buf()),
        ..RunOptions::default()
    };
    let who = SubjectRef::Username("bench.subject".into());
    // Codes are delivered by hand here (no mail server): a second officer enters them.
    let second = {
        let secret = auth::random_password(24);
        auth::users::create(
            store,
            &actor,
            "bench-second",
            &secret,
            &[vigil::rbac::Role::ComplianceOfficer],
        )
        .await
        .map_err(|e| step(&e))?;
        auth::authenticate(store, "bench-second", &secret, &auth::MfaPolicy::none())
            .await
            .map_err(|e| step(&e))?
    };
    let request = |kind| {
        let (actor, ring, who, second) = (&actor, &ring, &who, &second);
        async move {
            let c = privacy::create(
                store,
                Some(ring),
                actor,
                kind,
                who,
                privacy::CodeDelivery::Manual,
            )
            .await
            .map_err(|e| step(&e))?;
            let code = c.verification_code.unwrap_or_default();
            privacy::verify_code(store, second, c.request.id, &code)
                .await
                .map_err(|e| step(&e))?;
            Ok::<_, BenchError>(c.request.id)
        }
    };
    let mut go = |_: &privacy::RunProgress| Flow::Continue;

    let id = request(RequestKind::Access).await?;
    let t = Instant::now();
    let files = privacy::run(store, &ring, &actor, id, &run_options, &mut go)
        .await
        .map_err(|e| step(&e))?;
    let access = t.elapsed();
    let access_json_bytes = match files {
        RunOutcome::Exported { files } => files
            .iter()
            .find(|f| f.kind == "access_json")
            .map_or(0, |f| f.bytes),
        _ => 0,
    };

    let id = request(RequestKind::Portability).await?;
    let t = Instant::now();
    privacy::run(store, &ring, &actor, id, &run_options, &mut go)
        .await
        .map_err(|e| step(&e))?;
    let portability = t.elapsed();

    let ids = privacy::identifiers_of(store, &ring, &actor, &who)
        .await
        .map_err(|e| step(&e))?;
    let t = Instant::now();
    let scan = privacy::residual_scan(store, &ring, &actor, &ids)
        .await
        .map_err(|e| step(&e))?;
    let scan_time = t.elapsed();

    let id = request(RequestKind::Erasure).await?;
    let t = Instant::now();
    let outcome = privacy::run(store, &ring, &actor, id, &run_options, &mut go)
        .await
        .map_err(|e| step(&e))?;
    let erasure = t.elapsed();
    let erasure_rows = match outcome {
        RunOutcome::Erased { receipt } => receipt.steps.iter().map(|s| s.rows).sum(),
        other => return Err(step(&format!("the erasure did not complete: {other:?}"))),
    };
    Ok(DsrBenchReport {
        backend: store.backend().to_string(),
        platform_rows,
        subject_comments: opts.subject_comments,
        access_export_seconds: access.as_secs_f64(),
        access_json_bytes,
        portability_export_seconds: portability.as_secs_f64(),
        scan_seconds: scan_time.as_secs_f64(),
        scan_values_opened: scan.values_opened,
        erasure_seconds: erasure.as_secs_f64(),
        erasure_rows,
    })
}

/// The scratch platform of [`dsr`]: the administrator (also a compliance officer), the demo
/// seed and the subject; returns the actor, their keys and the platform's rows.
async fn scratch_with_subject(
    store: &Store,
    keystore: &dyn Keystore,
    opts: DsrBenchOptions,
    progress: &mut (dyn FnMut(SeedProgress) + Send),
) -> Result<(auth::Actor, keys::KeyRing, i64), BenchError> {
    if auth::is_initialised(store).await? {
        return Err(BenchError::NotScratch);
    }
    let step = |e: &dyn std::fmt::Display| BenchError::Step(e.to_string());
    // The scratch administrator also takes the compliance officer's role for the requests.
    let (actor, ring, _) =
        scratch_admin(store, keystore, &[vigil::rbac::Role::ComplianceOfficer]).await?;
    demo::seed(store, &actor, &ring, opts.seed, progress)
        .await
        .map_err(|e| step(&e))?;
    add_subject(store, &ring, opts.subject_comments).await?;
    let counts = platform::counts(store).await?;
    let platform_rows =
        counts.users + counts.events + counts.comments + counts.reactions + counts.activity;
    Ok((actor, ring, platform_rows))
}

/// The subject, on one event of their own, with `subject_comments` comments and their activity.
async fn add_subject(
    store: &Store,
    ring: &keys::KeyRing,
    subject_comments: u32,
) -> Result<(), BenchError> {
    let step = |e: &dyn std::fmt::Display| BenchError::Step(e.to_string());
    let keys = keys::WriteKeys::current(store, ring, &keys::PLATFORM_PURPOSES)
        .await
        .map_err(|e| step(&e))?;
    let subject = uuid::Uuid::new_v4();
    let event = uuid::Uuid::new_v4();
    let now = vigil::store::Timestamp::now();
    let t0 = vigil::store::Timestamp::from_micros(now.micros() - 86_400_000_000);
    let mut tx = store.begin().await?;
    platform::insert_users(
        &mut tx,
        &keys,
        &[platform::NewPlatformUser {
            id: subject,
            username: "bench.subject".into(),
            display_name: "Bench Subject".into(),
            country: "NL".into(),
            email: Some("bench.subject@mail.example".into()),
            phone: Some("+31-555-000-0001".into()),
            created_at: t0,
            last_login_at: Some(t0),
        }],
    )
    .await?;
    platform::insert_events(
        &mut tx,
        &[platform::NewEvent {
            id: event,
            title: "Bench Final".into(),
            starts_at: t0,
            ends_at: now,
        }],
    )
    .await?;
    tx.commit().await.map_err(StoreError::from)?;
    let mut written = 0u32;
    while written < subject_comments {
        let n = (subject_comments - written).min(10_000);
        let comments: Vec<platform::NewComment> = (0..n)
            .map(|i| platform::NewComment {
                id: uuid::Uuid::new_v4(),
                event_id: event,
                author_id: subject,
                body: platform::CommentBody::Public(format!("bench comment {}", written + i)),
                created_at: vigil::store::Timestamp::from_micros(
                    t0.micros() + i64::from(written + i),
                ),
            })
            .collect();
        let activity: Vec<platform::NewActivity> = comments
            .iter()
            .step_by(10)
            .map(|c| platform::NewActivity {
                id: uuid::Uuid::new_v4(),
                user_id: Some(subject),
                kind: "comment",
                outcome: "success",
                reason: None,
                occurred_at: c.created_at,
                user_agent: "Firefox".into(),
                country: "NL".into(),
                ip: Some("10.20.30.40".into()),
                ref_id: Some(c.id),
                target: None,
            })
            .collect();
        let mut tx = store.begin().await?;
        platform::insert_comments(&mut tx, &keys, &comments).await?;
        platform::insert_activity(&mut tx, &keys, &activity).await?;
        tx.commit().await.map_err(StoreError::from)?;
        written += n;
    }
    Ok(())
}

pub(super) async fn cmd(
    store: &Store,
    keystore: &FileKeystore,
    a: &BenchArgs,
    seed: SeedOptions,
) -> Result<ExitCode> {
    let bar = progress_bar(a.json);
    let report = dsr(
        store,
        keystore,
        DsrBenchOptions {
            seed,
            subject_comments: a.subject_comments,
        },
        &mut |p| show(&bar, p),
    )
    .await;
    bar.finish_and_clear();
    let r = report.context("benchmark failed")?;
    if a.json {
        print_json(&r)?;
    } else {
        println!("backend:            {}", r.backend);
        println!(
            "platform rows:      {} (subject: {} comments)",
            r.platform_rows, r.subject_comments
        );
        println!(
            "access export:      {:.2} s ({} bytes of JSON, plus HTML)",
            r.access_export_seconds, r.access_json_bytes
        );
        println!(
            "portability export: {:.2} s (zip)",
            r.portability_export_seconds
        );
        println!(
            "residual scan:      {:.2} s over the whole database ({} sealed values opened)",
            r.scan_seconds, r.scan_values_opened
        );
        println!(
            "erasure:            {:.2} s with its scan ({} rows changed)",
            r.erasure_seconds, r.erasure_rows
        );
    }
    Ok(ExitCode::SUCCESS)
}
