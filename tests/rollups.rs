//! The dashboard's daily counts on both databases: kept equal to counts of the rows they count
//! through ingestion (twice: the second adds nothing), a detector run, incidents and requests
//! changing status; recounting changes nothing; and every chart read from them equals the same
//! chart counted from the raw rows.

mod common;

use std::collections::BTreeMap;

use common::{count, TestDb};
use sqlx::{AnyPool, Row};
use vigil::analytics::{self, ChartKind, ChartSeries, Period, MICROS_PER_DAY, TOP_RULES};
use vigil::auth::Actor;
use vigil::demo::{self, SeedOptions};
use vigil::keys::KeyRing;
use vigil::monitor::{self, policy::Policy, screen::Screener};
use vigil::privacy::{self, CodeDelivery, RequestKind, RequestStatus, SubjectRef};
use vigil::store::Timestamp;

const HOUR: i64 = 3_600_000_000;

/// `(metric, day, key) -> n`.
type Counts = BTreeMap<(String, i64, String), i64>;

fn day(micros: i64) -> i64 {
    micros.div_euclid(MICROS_PER_DAY)
}

/// Every non-zero daily count as stored (the sum of its slots).
async fn stored(raw: &AnyPool) -> Counts {
    sqlx::query(
        "SELECT metric, day, key, CAST(SUM(n) AS BIGINT) FROM daily_counts \
         GROUP BY metric, day, key HAVING SUM(n) <> 0",
    )
    .fetch_all(raw)
    .await
    .unwrap()
    .iter()
    .map(|r| ((r.get(0), r.get(1), r.get(2)), r.get(3)))
    .collect()
}

/// `(key, time)` rows of one query.
async fn keyed_times(raw: &AnyPool, sql: &str) -> Vec<(String, i64)> {
    sqlx::query(sql)
        .fetch_all(raw)
        .await
        .expect(sql)
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
}

/// The same counts as `stored`, counted from the raw rows, each by its definition.
async fn counted_from_rows(raw: &AnyPool) -> Counts {
    let mut out = Counts::new();
    let sources = [
        ("activity", "SELECT kind, occurred_at FROM activity_log"),
        ("incidents", "SELECT severity, created_at FROM incidents"),
        (
            "evidence",
            "SELECT rule, added_at FROM incident_evidence WHERE rule IS NOT NULL",
        ),
        (
            "violations",
            "SELECT e.rule, COALESCE(a.occurred_at, e.added_at) FROM incident_evidence e \
             LEFT JOIN activity_log a ON e.kind = 'activity' AND a.id = e.ref_id \
             WHERE e.rule IS NOT NULL",
        ),
        ("requests", "SELECT status, received_at FROM dsr_requests"),
    ];
    for (metric, sql) in sources {
        for (key, at) in keyed_times(raw, sql).await {
            *out.entry((metric.to_owned(), day(at), key)).or_default() += 1;
        }
    }
    out
}

async fn run_detectors(db: &TestDb, actor: &Actor, ring: &KeyRing) -> monitor::RunReport {
    let screener = Screener::new(&[], &[]).unwrap();
    monitor::run(
        &db.store,
        ring,
        actor,
        &Policy::default(),
        &screener,
        monitor::shard::ShardCount::ONE,
    )
    .await
    .unwrap()
}

/// JSON lines of activity by the demo's first accounts over the last `days` days (and a few
/// stamped later today than `now`, and one in 1969), `n` of them.
async fn activity_file(db: &TestDb, n: i64, days: i64) -> String {
    let names = vigil::platform::first_usernames(&db.store, 40)
        .await
        .unwrap();
    let now = Timestamp::now().micros();
    let step = days * 24 * HOUR / n;
    let mut lines = String::new();
    let mut line = |kind: &str, who: &str, at: i64, i: i64| {
        let at = Timestamp::from_micros(at).to_rfc3339();
        let ip = format!("198.51.100.{}", i % 250 + 1);
        lines.push_str(&match kind {
            "comment" => format!(
                r#"{{"type":"comment_submission","user":"{who}","at":"{at}","ip":"{ip}","content":"comment {i}"}}"#
            ),
            _ => format!(
                r#"{{"type":"login_attempt","user":"{who}","at":"{at}","ip":"{ip}","country":"GB","outcome":"{}"}}"#,
                if i % 7 == 0 { "failure" } else { "success" }
            ),
        });
        lines.push('\n');
    };
    for i in 0..n {
        let who = &names[(i % names.len() as i64) as usize];
        let kind = if i % 3 == 0 { "comment" } else { "login" };
        line(kind, who, now - days * 24 * HOUR + i * step, i);
    }
    // Later than the charts are read: counted on today, taken off until then.
    for i in 0..5 {
        line("login", &names[0], now + 60_000_000 + i, n + i);
    }
    line("login", &names[1], -HOUR, n + 5);
    lines
}

/// A seeded platform with attacks, a file ingested twice (the second time counting nothing), a
/// detector run, requests received, verified, withdrawn and rejected, and sign-ins. Returns the
/// administrator, who reads every chart, and their keys.
async fn history(db: &TestDb) -> (Actor, KeyRing) {
    let (admin, ring) = common::admin_keys(db).await;
    let opts = SeedOptions {
        users: 120,
        comments: 2_000,
        days: 20,
        seed: 31,
        scenarios: true,
    };
    demo::seed(&db.store, &admin, &ring, opts, &mut |_| {})
        .await
        .unwrap();
    let file = activity_file(db, 3_000, 12).await;
    let first = monitor::ingest_reader(&db.store, &ring, &admin, file.as_bytes())
        .await
        .unwrap();
    assert_eq!(first.rejected_total, 0, "{first:?}");
    assert_eq!(first.ingested, 3_006, "{first:?}");
    let raw = db.raw().await;
    let counts = stored(&raw).await;
    let again = monitor::ingest_reader(&db.store, &ring, &admin, file.as_bytes())
        .await
        .unwrap();
    assert_eq!((again.ingested, again.duplicates), (0, 3_006), "{again:?}");
    assert_eq!(
        stored(&raw).await,
        counts,
        "a second ingestion adds no count"
    );
    // Ingestion folded what the sessions counted into one row per count.
    assert_eq!(
        count(&raw, "SELECT COUNT(*) FROM daily_counts WHERE slot <> 0").await,
        0
    );

    let report = run_detectors(db, &admin, &ring).await;
    assert!(report.opened > 0, "{report:?}");

    let officer = common::operator_with_role(db, "cleo-officer", "compliance_officer").await;
    let second = common::operator_with_role(db, "dina-officer", "compliance_officer").await;
    let names = vigil::platform::first_usernames(&db.store, 10)
        .await
        .unwrap();
    let now = Timestamp::now().micros();
    let mut made = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let received = Timestamp::from_micros(now - (i as i64 * 30 + 5) * HOUR);
        let created = privacy::create_at(
            &db.store,
            None,
            &officer,
            RequestKind::Access,
            &SubjectRef::Username(name.clone()),
            CodeDelivery::Manual,
            received,
        )
        .await
        .unwrap();
        made.push((created, received));
    }
    for (i, (c, received)) in made.iter().enumerate() {
        let id = c.request.id;
        match i % 4 {
            0 => {}
            1 => {
                privacy::verify_code_at(
                    &db.store,
                    &second,
                    id,
                    c.verification_code.as_deref().unwrap(),
                    Timestamp::from_micros(received.micros() + HOUR),
                )
                .await
                .unwrap();
            }
            2 => {
                privacy::withdraw(&db.store, &officer, id, "changed their mind")
                    .await
                    .unwrap();
            }
            _ => {
                privacy::reject(&db.store, &officer, id, "manifestly unfounded")
                    .await
                    .unwrap();
            }
        }
    }
    raw.close().await;
    (admin, ring)
}

async fn daily_counts_equal_counts_of_the_rows(db: TestDb) {
    let (admin, ring) = history(&db).await;
    let raw = db.raw().await;
    let counts = stored(&raw).await;
    assert_eq!(counts, counted_from_rows(&raw).await);
    for metric in [
        "activity",
        "incidents",
        "evidence",
        "violations",
        "requests",
    ] {
        assert!(
            counts.keys().any(|(m, _, _)| m == metric),
            "{metric} counted"
        );
    }
    assert!(
        counts
            .keys()
            .any(|(m, _, k)| m == "violations" && k.starts_with("rate_limit")),
        "the demo's attacks break rate limits"
    );
    assert!(
        counts.keys().any(|(m, d, _)| m == "activity" && *d == -1),
        "1969 is day -1"
    );
    // Statuses moved: every request is counted once, by its status now.
    let requests: i64 = counts
        .iter()
        .filter(|((m, _, _), _)| m == "requests")
        .map(|(_, n)| n)
        .sum();
    assert_eq!(
        requests,
        count(&raw, "SELECT COUNT(*) FROM dsr_requests").await
    );
    for status in ["verified", "withdrawn", "rejected", "verifying"] {
        assert!(counts
            .keys()
            .any(|(m, _, k)| m == "requests" && k == status));
    }

    // A second detector run over nothing new changes nothing; recounting from the rows (what
    // migration 0016 does for an upgraded database) gives the same counts.
    run_detectors(&db, &admin, &ring).await;
    assert_eq!(stored(&raw).await, counts);
    let written = analytics::rebuild_daily_counts(&db.store, &admin)
        .await
        .unwrap();
    assert!(written as usize >= counts.len());
    assert_eq!(stored(&raw).await, counts);

    // Recounting is an audited repair of the retention managers'; a moderator may not.
    let moderator = common::operator_with_role(&db, "max-mod", "moderator").await;
    assert!(matches!(
        analytics::rebuild_daily_counts(&db.store, &moderator).await,
        Err(analytics::AnalyticsError::Forbidden(_))
    ));
    assert_eq!(
        count(
            &raw,
            "SELECT COUNT(*) FROM audit_log WHERE action = 'analytics.daily_counts_rebuilt'"
        )
        .await,
        1
    );
    raw.close().await;
}
on_both!(daily_counts_equal_counts_of_the_rows);

/// Chart figures as plain numbers, to compare.
#[derive(Debug, PartialEq, Eq)]
enum Figures {
    Days(Vec<Vec<u64>>),
    Rules(Vec<(String, u64)>, u64, u64),
    Statuses(Vec<u64>),
}

fn figures(series: &ChartSeries) -> Figures {
    match series {
        ChartSeries::IncidentsBySeverity { days } => Figures::Days(
            days.iter()
                .map(|d| vec![d.critical, d.high, d.medium, d.low])
                .collect(),
        ),
        ChartSeries::ActivityVolume { days } => Figures::Days(
            days.iter()
                .map(|d| vec![d.events, d.rate_limit_violations])
                .collect(),
        ),
        ChartSeries::TopRules {
            rules,
            other_rules,
            other_evidence,
        } => Figures::Rules(
            rules.iter().map(|r| (r.rule.clone(), r.count)).collect(),
            *other_rules,
            *other_evidence,
        ),
        ChartSeries::DsrStatus { by_status, .. } => {
            Figures::Statuses(by_status.iter().map(|s| s.count).collect())
        }
    }
}

/// A chart counted straight from the raw rows: every row of the period (from midnight of its
/// first day to `now`, inclusive) put in its day, rule or status.
async fn from_rows(raw: &AnyPool, kind: ChartKind, period: Period, now: i64) -> Figures {
    let days = period.days() as usize;
    let start = (day(now) - days as i64 + 1) * MICROS_PER_DAY;
    let in_period = |t: i64| t >= start && t <= now;
    let index = |t: i64| ((t - start) / MICROS_PER_DAY) as usize;
    match kind {
        ChartKind::IncidentsBySeverity => {
            let mut out = vec![vec![0u64; 4]; days];
            for (severity, t) in
                keyed_times(raw, "SELECT severity, created_at FROM incidents").await
            {
                let column = ["critical", "high", "medium", "low"]
                    .iter()
                    .position(|s| *s == severity)
                    .unwrap();
                if in_period(t) {
                    out[index(t)][column] += 1;
                }
            }
            Figures::Days(out)
        }
        ChartKind::ActivityVolume => {
            let mut out = vec![vec![0u64; 2]; days];
            for (_, t) in keyed_times(raw, "SELECT kind, occurred_at FROM activity_log").await {
                if in_period(t) {
                    out[index(t)][0] += 1;
                }
            }
            for (_, t) in keyed_times(
                raw,
                "SELECT e.rule, COALESCE(a.occurred_at, e.added_at) FROM incident_evidence e \
                 LEFT JOIN activity_log a ON e.kind = 'activity' AND a.id = e.ref_id \
                 WHERE substr(e.rule, 1, 10) = 'rate_limit'",
            )
            .await
            {
                if in_period(t) {
                    out[index(t)][1] += 1;
                }
            }
            Figures::Days(out)
        }
        ChartKind::TopRules => {
            let mut by_rule: BTreeMap<String, u64> = BTreeMap::new();
            for (rule, t) in keyed_times(
                raw,
                "SELECT rule, added_at FROM incident_evidence WHERE rule IS NOT NULL",
            )
            .await
            {
                if in_period(t) {
                    *by_rule.entry(rule).or_default() += 1;
                }
            }
            let mut rules: Vec<(String, u64)> = by_rule.into_iter().collect();
            rules.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            let rest = rules.split_off(rules.len().min(TOP_RULES));
            Figures::Rules(rules, rest.len() as u64, rest.iter().map(|r| r.1).sum())
        }
        ChartKind::DsrStatus => {
            let mut out = vec![0u64; RequestStatus::ALL.len()];
            for (status, t) in
                keyed_times(raw, "SELECT status, received_at FROM dsr_requests").await
            {
                if in_period(t) {
                    let i = RequestStatus::ALL
                        .iter()
                        .position(|s| s.as_str() == status)
                        .unwrap();
                    out[i] += 1;
                }
            }
            Figures::Statuses(out)
        }
    }
}

async fn charts_from_daily_counts_equal_charts_from_the_rows(db: TestDb) {
    let (admin, _ring) = history(&db).await;
    let raw = db.raw().await;
    let now = Timestamp::now().micros();
    // Now, and in the middle of days with more activity, evidence and requests after it.
    let instants = [
        now,
        (day(now) - 2) * MICROS_PER_DAY + 12 * HOUR,
        (day(now) - 9) * MICROS_PER_DAY + 5 * HOUR + 1,
    ];
    let mut compared = 0;
    for at in instants {
        for kind in ChartKind::ALL {
            for period in Period::ALL {
                let chart = analytics::chart_data(
                    &db.store,
                    &admin,
                    kind,
                    period,
                    Timestamp::from_micros(at),
                )
                .await
                .unwrap();
                let expected = from_rows(&raw, kind, period, at).await;
                assert_eq!(
                    figures(&chart.series),
                    expected,
                    "{kind} over {} days at {at}",
                    period.days()
                );
                compared += 1;
            }
        }
    }
    assert_eq!(compared, 36);
    // The history is not empty where it is compared.
    let c = analytics::chart_data(
        &db.store,
        &admin,
        ChartKind::ActivityVolume,
        Period::Days30,
        Timestamp::from_micros(now),
    )
    .await
    .unwrap();
    let ChartSeries::ActivityVolume { days } = &c.series else {
        panic!()
    };
    assert!(days.iter().map(|d| d.events).sum::<u64>() > 3_000);
    assert!(days.iter().map(|d| d.rate_limit_violations).sum::<u64>() > 0);
    raw.close().await;
}
on_both!(charts_from_daily_counts_equal_charts_from_the_rows);

/// Every chart over every period ending at `now`, as figures.
async fn all_charts(store: &vigil::store::Store, actor: &Actor) -> Vec<Figures> {
    let now = Timestamp::now();
    let mut out = Vec::new();
    for kind in ChartKind::ALL {
        for period in Period::ALL {
            let c = analytics::chart_data(store, actor, kind, period, now)
                .await
                .unwrap();
            out.push(figures(&c.series));
        }
    }
    out
}

/// A database from before the daily counts (migration 0016 undone: no table, no indexes, no
/// record of it) upgrades on open, counting what it holds, and charts the same.
async fn an_upgraded_database_counts_what_it_holds(db: TestDb) {
    let (admin, _ring) = history(&db).await;
    let raw = db.raw().await;
    let counts = stored(&raw).await;
    let charts = all_charts(&db.store, &admin).await;
    for sql in [
        "DROP TABLE daily_counts",
        "DROP INDEX incidents_created_idx",
        "DROP INDEX incident_evidence_added_idx",
        "DROP INDEX dsr_requests_received_idx",
        "DELETE FROM _sqlx_migrations WHERE version = 16",
    ] {
        common::exec(&raw, sql).await;
    }
    let reopened = vigil::store::Store::open(&db.url, &vigil::store::StoreOptions::default())
        .await
        .unwrap();
    assert_eq!(stored(&raw).await, counts);
    assert_eq!(all_charts(&reopened, &admin).await, charts);
    raw.close().await;
}
on_both!(an_upgraded_database_counts_what_it_holds);
