//! The dashboard charts over 90 days of a seeded platform: `vigil bench --charts`.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde::Serialize;
use vigil::auth::{self};
use vigil::demo::{self, SeedOptions};
use vigil::keys::keystore::{FileKeystore, Keystore};
use vigil::store::Store;

use super::*;
use crate::shared::*;

/// Chart figures: one chart read and drawn, for each chart, over 90 days.
#[derive(Debug, Clone, Serialize)]
pub struct ChartsReport {
    /// The backend measured.
    pub backend: String,
    /// Activity events in the 90 days charted.
    pub activity_events: u64,
    /// Timed rounds per chart (after one untimed warm-up round).
    pub rounds: u32,
    /// One entry per chart, in dashboard order.
    pub charts: Vec<ChartTiming>,
}

/// The median of one chart's rounds.
#[derive(Debug, Clone, Serialize)]
pub struct ChartTiming {
    /// The chart.
    pub kind: vigil::analytics::ChartKind,
    /// Milliseconds to read the figures and draw the SVG (800×450).
    pub median_ms: f64,
    /// Of which reading the figures ([`vigil::analytics::chart_data`]).
    pub data_median_ms: f64,
    /// Of which drawing the SVG ([`vigil::analytics::render_svg`]).
    pub svg_median_ms: f64,
}

/// Times [`vigil::analytics::chart_data`] and [`vigil::analytics::render_svg`] (800×450) for
/// every chart over the 90 days ending at `now`, `rounds` times each after a warm-up round, on
/// the database as it is (read only). `actor` needs the incident and data-subject request read
/// permissions.
pub async fn charts(
    store: &Store,
    actor: &auth::Actor,
    now: vigil::store::Timestamp,
    rounds: u32,
) -> Result<ChartsReport, BenchError> {
    use vigil::analytics::{self, ChartKind, ChartSeries, Period};
    let step = |e: &dyn std::fmt::Display| BenchError::Step(e.to_string());
    let median = |mut v: Vec<Duration>| {
        v.sort();
        v[v.len() / 2].as_secs_f64() * 1e3
    };
    let rounds = rounds.max(1);
    let mut charts = Vec::with_capacity(ChartKind::ALL.len());
    let mut activity_events = 0;
    for kind in ChartKind::ALL {
        let (mut data_runs, mut svg_runs, mut total_runs) = (Vec::new(), Vec::new(), Vec::new());
        for round in 0..=rounds {
            let t = Instant::now();
            let data = analytics::chart_data(store, actor, kind, Period::Days90, now)
                .await
                .map_err(|e| step(&e))?;
            let read = t.elapsed();
            let svg = analytics::render_svg(&data, 800, 450).map_err(|e| step(&e))?;
            let total = t.elapsed();
            std::hint::black_box(svg);
            if let ChartSeries::ActivityVolume { days } = &data.series {
                activity_events = days.iter().map(|d| d.events).sum();
            }
            if round > 0 {
                data_runs.push(read);
                svg_runs.push(total - read);
                total_runs.push(total);
            }
        }
        charts.push(ChartTiming {
            kind,
            median_ms: median(total_runs),
            data_median_ms: median(data_runs),
            svg_median_ms: median(svg_runs),
        });
    }
    Ok(ChartsReport {
        backend: store.backend().to_string(),
        activity_events,
        rounds,
        charts,
    })
}

/// Seeds a scratch database (`users` and `comments` over 90 days, the attack scenarios, a
/// detector run), ingests `events` more lines of activity over the same days, and times the
/// dashboard charts on it.
pub async fn charts_on_scratch(
    store: &Store,
    keystore: &dyn Keystore,
    users: u32,
    comments: u32,
    events: u64,
    rounds: u32,
) -> Result<ChartsReport, BenchError> {
    if auth::is_initialised(store).await? {
        return Err(BenchError::NotScratch);
    }
    let step = |e: &dyn std::fmt::Display| BenchError::Step(e.to_string());
    let (actor, ring, _) = scratch_admin(store, keystore, &[vigil::rbac::Role::Moderator]).await?;
    let opts = SeedOptions {
        users,
        comments,
        days: 90,
        seed: 13,
        scenarios: true,
    };
    demo::seed(store, &actor, &ring, opts, &mut |_| {})
        .await
        .map_err(|e| step(&e))?;
    let screener = vigil::monitor::screen::Screener::new(&[], &[]).map_err(|e| step(&e))?;
    vigil::monitor::run(
        store,
        &ring,
        &actor,
        &vigil::monitor::policy::Policy::default(),
        &screener,
        vigil::monitor::shard::ShardCount::ONE,
    )
    .await
    .map_err(|e| step(&e))?;
    if events > 0 {
        // The volume a platform sends, through the same ingestion as its feed, streamed.
        const DAY: i64 = 86_400_000_000;
        let names = vigil::platform::first_usernames(store, users).await?;
        let now = vigil::store::Timestamp::now().micros();
        let feed = super::feed::Feed::new(names, events, now - 89 * DAY, 89 * DAY);
        let input = std::io::BufReader::with_capacity(1 << 20, feed);
        let ingested = vigil::monitor::ingest_reader(store, &ring, &actor, input)
            .await
            .map_err(|e| step(&e))?;
        if ingested.rejected_total > 0 {
            return Err(step(&format!("{} lines rejected", ingested.rejected_total)));
        }
    }
    charts(store, &actor, vigil::store::Timestamp::now(), rounds).await
}

pub(super) async fn cmd(store: &Store, keystore: &FileKeystore, a: &BenchArgs) -> Result<ExitCode> {
    let r = charts_on_scratch(
        store,
        keystore,
        a.users,
        a.comments,
        a.events.unwrap_or(0),
        5,
    )
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
    Ok(ExitCode::SUCCESS)
}
