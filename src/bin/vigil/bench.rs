//! `vigil bench`: throughput and latency figures on a scratch database.

use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use vigil::bench::{self, BenchOptions};
use vigil::config::Config;
use vigil::demo::SeedOptions;
use vigil::keys::keystore::FileKeystore;
use vigil::store::{DatabaseUrl, Store};

use crate::shared::*;

#[derive(Subcommand)]
pub(crate) enum Command {
    /// Measure demo-seed throughput and audit-chain speed on a scratch database.
    Bench(BenchArgs),
}

#[derive(Args)]
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
    /// Measure activity ingestion plus a detector run instead: this many events from --users
    /// accounts (on a scratch SQLite file unless --database names an empty database).
    #[arg(long, value_name = "EVENTS")]
    monitor: Option<u64>,
    /// Measure retention instead: seed --users and --comments over 2,000 days plus
    /// --audit-entries, then time deleting old activity, anonymising comments and archiving the
    /// audit log.
    #[arg(long)]
    retention: bool,
    /// Measure the dashboard charts instead: seed --users and --comments over 90 days (with
    /// the attack scenarios, and a detector run), then time each chart (median of 5).
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
    bench_cmd(config, a, explicit_database).await
}

async fn bench_cmd(config: &Config, a: BenchArgs, explicit_database: bool) -> Result<ExitCode> {
    if let Some(lines) = a.screen {
        let r = tokio::task::spawn_blocking(move || bench::screening(lines)).await??;
        if a.json {
            print_json(&r)?;
        } else {
            println!(
                "monitor screen: {} lines ({} flagged) = {:.0} comments/s, reading the file and writing JSON lines (median of 5)",
                r.lines, r.flagged, r.screen_lines_per_sec
            );
            println!(
                "bare RegexSet:  {:.0} comments/s on one core, the four patterns only; ratio {:.2}",
                r.bare_regexset_per_sec, r.ratio
            );
        }
        return Ok(ExitCode::SUCCESS);
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
        let r = bench::charts_on_scratch(&store, &keystore, a.users, a.comments, 5)
            .await
            .context("benchmark failed")?;
        if a.json {
            print_json(&r)?;
        } else {
            println!(
                "backend: {}, {} activity events over 90 days",
                r.backend, r.activity_events
            );
            for c in &r.charts {
                println!(
                    "{:<22} {:>7.2} ms median (query {:.2} ms, SVG {:.2} ms)",
                    c.kind.as_str(),
                    c.median_ms,
                    c.data_median_ms,
                    c.svg_median_ms
                );
            }
        }
        return Ok(ExitCode::SUCCESS);
    }
    if a.retention {
        let r = bench::retention(
            &store,
            &keystore,
            a.users,
            a.comments,
            a.audit_entries,
            config.retention.chunk,
        )
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
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(events) = a.monitor {
        let r = bench::monitoring(&store, &keystore, a.users, events)
            .await
            .context("benchmark failed")?;
        if a.json {
            print_json(&r)?;
        } else {
            println!("backend:   {}", r.backend);
            println!(
                "ingest:    {} events in {:.2} s = {:.0} events/s (JSON lines parsed, addresses sealed)",
                r.events, r.ingest_seconds, r.ingest_per_sec
            );
            println!(
                "detect:    {} records in {:.2} s = {:.0} records/s ({} incidents opened)",
                r.judged, r.detect_seconds, r.detect_per_sec, r.incidents
            );
            println!(
                "combined:  {:.0} events/s ingested and judged",
                r.combined_per_sec
            );
        }
        return Ok(ExitCode::SUCCESS);
    }
    let bar = progress_bar(a.json);
    if a.dsr {
        let report = bench::dsr(
            &store,
            &keystore,
            bench::DsrBenchOptions {
                seed: opts.seed,
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
        return Ok(ExitCode::SUCCESS);
    }
    let report = bench::run(&store, &keystore, opts, &mut |p| show(&bar, p)).await;
    bar.finish_and_clear();
    let report = report.context("benchmark failed")?;
    if a.json {
        print_json(&report)?;
    } else {
        println!("backend:        {}", report.backend);
        println!(
            "demo seed:      {} rows in {:.2} s = {:.0} rows/s",
            report.seed_rows, report.seed_seconds, report.seed_rows_per_sec
        );
        println!(
            "audit append:   {} entries = {:.0} entries/s (1,000 per transaction)",
            report.audit_appended, report.audit_appends_per_sec
        );
        println!(
            "audit verify:   {} entries, median {:.3} s = {:.0} entries/s",
            report.verify_entries, report.verify_median_seconds, report.verify_entries_per_sec
        );
        let c = &report.crypto;
        println!(
            "field seal:     {:.0} ops/s; field open: {:.0} ops/s (AES-256-GCM, place-bound)",
            c.field_seal_per_sec, c.field_open_per_sec
        );
        println!(
            "RSA-OAEP 2048:  {:.0} encrypts/s, {:.0} decrypts/s (bare)",
            c.rsa_encrypt_per_sec, c.rsa_decrypt_per_sec
        );
        println!(
            "E2E envelope:   seal for 5 = {:.0}/s ({:.3}x five bare encrypts); open = {:.0}/s ({:.3}x one bare decrypt)",
            c.e2e_seal_5_per_sec, c.e2e_seal_overhead, c.e2e_open_per_sec, c.e2e_open_overhead
        );
        println!(
            "email lookup:   median {:.1} us over {} users (blind index)",
            report.email_lookup_median_us, report.email_lookup_users
        );
        println!(
            "sign-in:        median {:.1} ms (argon2id, unlocking keys); TOTP verify: {:.0}/s",
            report.login_median_ms, report.totp_verify_per_sec
        );
        println!(
            "token verify:   {:.0}/s with the epoch cache; {:.0}/s with full database checks each time",
            report.token_verify_per_sec, report.token_verify_uncached_per_sec
        );
        println!(
            "token EdDSA:    {:.0}/s for the signature and claims alone (no database, one core)",
            report.token_signature_verify_per_sec
        );
        if let (Some(rows), Some(rate)) = (report.rotation_rows, report.rotation_rows_per_sec) {
            println!("contact rotation: {rows} rows = {rate:.0} rows/s (5,000 per transaction)");
        }
    }
    Ok(ExitCode::SUCCESS)
}
