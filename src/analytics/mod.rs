//! Dashboard charts: counts aggregated in the database and drawn with `plotters`, as SVG for the
//! console and PNG for export.
//!
//! Four charts, each over the last 7, 30 or 90 UTC days ending at `now` (the day of `now` is the
//! last day, and nothing after `now` counts):
//!
//! - [`ChartKind::IncidentsBySeverity`]: incidents opened per day, stacked by severity;
//! - [`ChartKind::ActivityVolume`]: platform activity per day, with rate-limit violations (the
//!   incident evidence whose rule starts with `rate_limit`) on a second axis;
//! - [`ChartKind::TopRules`]: the detection rules that added the most incident evidence;
//! - [`ChartKind::DsrStatus`]: data-subject requests received in the period by status, and the
//!   requests open now by deadline.
//!
//! A chart holds counts, dates, rule names and statuses only: no username, IP address or other
//! personal data enters a [`ChartData`] or a drawing. The charts read the per-day counts of
//! [`daily_counts`] (one row per day and key, whatever the size of the history), less what the day of
//! `now` counted after `now` (normally nothing: a short index range of the raw rows); days
//! without data are filled with zeros here.

mod charts;
mod repo;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::identity::Actor;
use crate::privacy::{RequestStatus, DUE_SOON_DAYS};
use crate::rbac::{self, Forbidden, Permission};
use crate::store::daily_counts::{self, Day, Metric};
use crate::store::{Store, StoreError, Timestamp};

/// Microseconds in a UTC day: the charts' buckets.
pub const MICROS_PER_DAY: i64 = daily_counts::MICROS_PER_DAY;

/// Rules shown by [`ChartKind::TopRules`].
pub const TOP_RULES: usize = 10;

/// Narrowest and lowest chart [`render_svg`] and [`render_png`] draw, in pixels.
pub const MIN_SIZE: (u32, u32) = (240, 160);

/// Widest and highest chart [`render_svg`] and [`render_png`] draw, in pixels.
pub const MAX_SIZE: (u32, u32) = (4096, 4096);

/// Which chart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChartKind {
    /// Incidents opened per day, by severity.
    IncidentsBySeverity,
    /// Activity events per day, with rate-limit violations overlaid.
    ActivityVolume,
    /// The rules that added the most incident evidence.
    TopRules,
    /// Data-subject requests by status, and the open ones by deadline.
    DsrStatus,
}

impl ChartKind {
    /// Every chart, in dashboard order.
    pub const ALL: [ChartKind; 4] = [
        ChartKind::IncidentsBySeverity,
        ChartKind::ActivityVolume,
        ChartKind::TopRules,
        ChartKind::DsrStatus,
    ];

    /// The name used on the command line, in the UI and in serialised data.
    pub fn as_str(self) -> &'static str {
        match self {
            ChartKind::IncidentsBySeverity => "incidents_by_severity",
            ChartKind::ActivityVolume => "activity_volume",
            ChartKind::TopRules => "top_rules",
            ChartKind::DsrStatus => "dsr_status",
        }
    }

    /// Parses a chart name as [`ChartKind::as_str`] writes it.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// The chart's title.
    pub fn title(self) -> &'static str {
        match self {
            ChartKind::IncidentsBySeverity => "Incidents by severity",
            ChartKind::ActivityVolume => "Activity and rate-limit violations",
            ChartKind::TopRules => "Most frequent detection rules",
            ChartKind::DsrStatus => "Data-subject requests",
        }
    }

    /// The permission reading the chart needs: the data-subject request chart needs
    /// [`Permission::DsrRead`], the others [`Permission::IncidentsRead`].
    pub fn permission(self) -> Permission {
        match self {
            ChartKind::DsrStatus => Permission::DsrRead,
            _ => Permission::IncidentsRead,
        }
    }
}

impl std::fmt::Display for ChartKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How many UTC days a chart covers, ending with the day of `now`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(into = "u32")]
pub enum Period {
    /// The last 7 days.
    Days7,
    /// The last 30 days.
    Days30,
    /// The last 90 days.
    Days90,
}

impl Period {
    /// Every period, shortest first.
    pub const ALL: [Period; 3] = [Period::Days7, Period::Days30, Period::Days90];

    /// The period of 7, 30 or 90 days; `None` for any other number.
    pub fn from_days(days: u32) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.days() == days)
    }

    /// Its length in days.
    pub fn days(self) -> u32 {
        match self {
            Period::Days7 => 7,
            Period::Days30 => 30,
            Period::Days90 => 90,
        }
    }
}

impl From<Period> for u32 {
    fn from(p: Period) -> u32 {
        p.days()
    }
}

/// A chart's figures, ready to draw ([`render_svg`], [`render_png`]) or to show as a table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChartData {
    /// Which chart.
    pub kind: ChartKind,
    /// Days covered: 7, 30 or 90.
    pub period_days: u32,
    /// The title drawn at the top.
    pub title: String,
    /// What is counted, over which days, drawn under the title.
    pub subtitle: String,
    /// The first UTC day of the period.
    pub first_day: NaiveDate,
    /// The last UTC day of the period: the day of `now`.
    pub last_day: NaiveDate,
    /// The instant the period ends at (nothing later is counted).
    pub until: Timestamp,
    /// The figures.
    pub series: ChartSeries,
}

/// A chart's figures, by chart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ChartSeries {
    /// One entry per day of the period, oldest first, days without incidents included.
    IncidentsBySeverity {
        /// The days.
        days: Vec<SeverityDay>,
    },
    /// One entry per day of the period, oldest first, days without activity included.
    ActivityVolume {
        /// The days.
        days: Vec<ActivityDay>,
    },
    /// The rules that added the most evidence, most first (ties by name); at most
    /// [`TOP_RULES`].
    TopRules {
        /// The rules shown.
        rules: Vec<RuleCount>,
        /// Further rules that fired in the period but are not shown.
        other_rules: u64,
        /// Evidence rows of those further rules.
        other_evidence: u64,
    },
    /// Requests received in the period by status, and every request open now by deadline.
    DsrStatus {
        /// Every status, in lifecycle order, zeros included.
        by_status: Vec<StatusCount>,
        /// Requests still open at `now` (whenever received), by their deadline in force.
        open_by_deadline: DeadlineBuckets,
    },
}

/// Incidents opened on one UTC day, by severity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SeverityDay {
    /// The day.
    pub day: NaiveDate,
    /// Critical incidents.
    pub critical: u64,
    /// High-severity incidents.
    pub high: u64,
    /// Medium-severity incidents.
    pub medium: u64,
    /// Low-severity incidents.
    pub low: u64,
}

impl SeverityDay {
    /// All incidents of the day.
    pub fn total(&self) -> u64 {
        self.critical + self.high + self.medium + self.low
    }
}

/// Platform activity on one UTC day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ActivityDay {
    /// The day.
    pub day: NaiveDate,
    /// Activity events that occurred that day.
    pub events: u64,
    /// Incident evidence from a rule whose name starts with `rate_limit`, on the day the
    /// activity behind it happened (evidence that is not an activity: the day it was added).
    pub rate_limit_violations: u64,
}

/// How much incident evidence one rule added in the period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuleCount {
    /// The rule's name, as the detectors record it.
    pub rule: String,
    /// Evidence rows.
    pub count: u64,
}

/// Requests received in the period with one status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct StatusCount {
    /// The status.
    pub status: RequestStatus,
    /// Requests.
    pub count: u64,
}

/// Open requests by deadline in force (`COALESCE(extended_due_at, due_at)`), as the inbox marks
/// them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct DeadlineBuckets {
    /// Past their deadline.
    pub overdue: u64,
    /// Due within [`DUE_SOON_DAYS`] days of `now`.
    pub due_soon: u64,
    /// Due later.
    pub due_later: u64,
}

impl DeadlineBuckets {
    /// All open requests.
    pub fn total(&self) -> u64 {
        self.overdue + self.due_soon + self.due_later
    }
}

impl ChartData {
    /// Whether there is anything to draw; a chart without data is drawn as "No data in this
    /// period".
    pub fn has_data(&self) -> bool {
        match &self.series {
            ChartSeries::IncidentsBySeverity { days } => days.iter().any(|d| d.total() > 0),
            ChartSeries::ActivityVolume { days } => days
                .iter()
                .any(|d| d.events > 0 || d.rate_limit_violations > 0),
            ChartSeries::TopRules { rules, .. } => !rules.is_empty(),
            ChartSeries::DsrStatus {
                by_status,
                open_by_deadline,
            } => open_by_deadline.total() > 0 || by_status.iter().any(|s| s.count > 0),
        }
    }
}

/// Why a chart could not be read or drawn.
#[derive(Debug, thiserror::Error)]
pub enum AnalyticsError {
    /// The actor may not read this chart.
    #[error(transparent)]
    Forbidden(#[from] Forbidden),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The chart could not be drawn (a size out of range, or a drawing failure).
    #[error("cannot draw the chart: {0}")]
    Render(String),
}

/// The UTC days a chart covers: from midnight of its first day to `now`, inclusive.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Window {
    /// Midnight UTC starting the first day, in microseconds.
    pub start: i64,
    /// `now`, in microseconds: the last instant counted.
    pub end: i64,
    /// Days, the last being the day of `now`.
    pub days: u32,
}

impl Window {
    fn ending(now: Timestamp, period: Period) -> Self {
        let days = period.days();
        let today = now.micros().div_euclid(MICROS_PER_DAY);
        Self {
            start: (today - i64::from(days) + 1) * MICROS_PER_DAY,
            end: now.micros(),
            days,
        }
    }

    /// The first day.
    fn first_day(&self) -> Day {
        Day::of_micros(self.start)
    }

    /// The last day: the day of `now`.
    fn last_day(&self) -> Day {
        Day::of_micros(self.end)
    }

    /// The date of day `index` (0 is the first).
    fn day(&self, index: usize) -> NaiveDate {
        Timestamp::from_micros(self.start + index as i64 * MICROS_PER_DAY)
            .to_datetime()
            .date_naive()
    }

    /// Spreads `(day index, count)` pairs over every day of the window, zeros elsewhere.
    fn per_day(&self, counts: &[(i64, i64)]) -> Vec<u64> {
        let mut out = vec![0u64; self.days as usize];
        for &(day, n) in counts {
            if let Some(slot) = usize::try_from(day).ok().and_then(|d| out.get_mut(d)) {
                *slot += count(n);
            }
        }
        out
    }
}

/// A count as SQL returned it (never negative).
fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

/// Reads one chart's figures for the period ending at `now`.
///
/// Needs [`Permission::IncidentsRead`] for the incident and activity charts and
/// [`Permission::DsrRead`] for [`ChartKind::DsrStatus`]; refuses before reading anything.
/// Reading is not audited: a chart holds aggregate counts only.
pub async fn chart_data(
    store: &Store,
    actor: &Actor,
    kind: ChartKind,
    period: Period,
    now: Timestamp,
) -> Result<ChartData, AnalyticsError> {
    rbac::require(store, actor, kind.permission()).await?;
    let w = Window::ending(now, period);
    let series = match kind {
        ChartKind::IncidentsBySeverity => incidents_by_severity(store, &w).await?,
        ChartKind::ActivityVolume => activity_volume(store, &w).await?,
        ChartKind::TopRules => top_rules(store, &w).await?,
        ChartKind::DsrStatus => dsr_status(store, &w).await?,
    };
    let (first_day, last_day) = (w.day(0), w.day(w.days as usize - 1));
    let span = format!("last {} days, {first_day} to {last_day} (UTC)", w.days);
    let subtitle = match &series {
        ChartSeries::IncidentsBySeverity { .. } => format!("Incidents opened per day, {span}"),
        ChartSeries::ActivityVolume { .. } => {
            format!("Activity events and rate-limit violations per day, {span}")
        }
        ChartSeries::TopRules { other_rules, .. } => match other_rules {
            0 => format!("Incident evidence added per rule, {span}"),
            n => format!("Incident evidence added per rule, {span}; {n} more not shown"),
        },
        ChartSeries::DsrStatus { .. } => {
            format!("Received in the {span}, by status; open now, by deadline")
        }
    };
    tracing::debug!(chart = kind.as_str(), days = w.days, "chart data read");
    Ok(ChartData {
        kind,
        period_days: w.days,
        title: kind.title().to_owned(),
        subtitle,
        first_day,
        last_day,
        until: now,
        series,
    })
}

/// The counts of `metric` on the day of `now` that happened after it, by key: taken off the
/// last day, since the charts stop at `now` and the daily counts at midnight.
async fn after_now(
    store: &Store,
    w: &Window,
    metric: Metric,
) -> Result<Vec<(String, u64)>, StoreError> {
    let end = w.last_day().start_micros() + MICROS_PER_DAY;
    Ok(repo::counted_after(store, metric, w.end, end)
        .await?
        .into_iter()
        .map(|(k, n)| (k, count(n)))
        .collect())
}

/// Whether a rule counts as a rate-limit violation: its name starts with `rate_limit`, byte for
/// byte (the same test as the SQL's).
fn is_rate_limit(rule: &str) -> bool {
    rule.as_bytes().starts_with(b"rate_limit")
}

async fn incidents_by_severity(store: &Store, w: &Window) -> Result<ChartSeries, StoreError> {
    let (rows, after) = futures_util::future::try_join(
        repo::counts_by_day_and_key(store, Metric::Incidents, w.first_day(), w.last_day()),
        after_now(store, w, Metric::Incidents),
    )
    .await?;
    let mut days: Vec<SeverityDay> = (0..w.days as usize)
        .map(|i| SeverityDay {
            day: w.day(i),
            critical: 0,
            high: 0,
            medium: 0,
            low: 0,
        })
        .collect();
    let last = w.days as i64 - 1;
    let counts = rows
        .into_iter()
        .map(|(day, severity, n)| (day - w.first_day().number(), severity, n))
        .chain(
            after
                .into_iter()
                .map(|(severity, n)| (last, severity, -(n as i64))),
        );
    for (index, severity, n) in counts {
        let Some(d) = usize::try_from(index).ok().and_then(|i| days.get_mut(i)) else {
            continue;
        };
        // The schema's CHECK allows exactly these four.
        let slot = match severity.as_str() {
            "critical" => &mut d.critical,
            "high" => &mut d.high,
            "medium" => &mut d.medium,
            "low" => &mut d.low,
            _ => continue,
        };
        *slot = slot.saturating_add_signed(n);
    }
    Ok(ChartSeries::IncidentsBySeverity { days })
}

async fn activity_volume(store: &Store, w: &Window) -> Result<ChartSeries, StoreError> {
    let (first, last) = (w.first_day(), w.last_day());
    let (events, violations, events_after, violations_after) = futures_util::future::try_join4(
        repo::counts_by_day(store, Metric::Activity, first, last, false),
        repo::counts_by_day(store, Metric::Violations, first, last, true),
        after_now(store, w, Metric::Activity),
        after_now(store, w, Metric::Violations),
    )
    .await?;
    let index = |rows: Vec<(i64, i64)>| -> Vec<(i64, i64)> {
        rows.into_iter()
            .map(|(day, n)| (day - first.number(), n))
            .collect()
    };
    let mut events = w.per_day(&index(events));
    let mut violations = w.per_day(&index(violations));
    if let (Some(e), Some(v)) = (events.last_mut(), violations.last_mut()) {
        *e = e.saturating_sub(events_after.iter().map(|(_, n)| n).sum());
        *v = v.saturating_sub(
            violations_after
                .iter()
                .filter(|(rule, _)| is_rate_limit(rule))
                .map(|(_, n)| n)
                .sum(),
        );
    }
    let days = events
        .into_iter()
        .zip(violations)
        .enumerate()
        .map(|(i, (events, rate_limit_violations))| ActivityDay {
            day: w.day(i),
            events,
            rate_limit_violations,
        })
        .collect();
    Ok(ChartSeries::ActivityVolume { days })
}

/// `metric`'s counts over the window by key, less what happened after `now`, without the keys
/// left at zero.
async fn counts_by_key(
    store: &Store,
    w: &Window,
    metric: Metric,
) -> Result<Vec<(String, u64)>, StoreError> {
    let (counts, after) = futures_util::future::try_join(
        repo::counts_by_key(store, metric, w.first_day(), w.last_day()),
        after_now(store, w, metric),
    )
    .await?;
    let mut by_key: std::collections::BTreeMap<String, u64> =
        counts.into_iter().map(|(k, n)| (k, count(n))).collect();
    for (k, n) in after {
        if let Some(c) = by_key.get_mut(&k) {
            *c = c.saturating_sub(n);
        }
    }
    Ok(by_key.into_iter().filter(|(_, n)| *n > 0).collect())
}

async fn top_rules(store: &Store, w: &Window) -> Result<ChartSeries, StoreError> {
    let mut rules: Vec<RuleCount> = counts_by_key(store, w, Metric::Evidence)
        .await?
        .into_iter()
        .map(|(rule, count)| RuleCount { rule, count })
        .collect();
    // Ranked here rather than by SQL's ORDER BY so that ties break the same way (by the rule's
    // bytes) on both databases, whatever Postgres's collation.
    rules.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.rule.cmp(&b.rule)));
    let rest = rules.split_off(rules.len().min(TOP_RULES));
    Ok(ChartSeries::TopRules {
        rules,
        other_rules: rest.len() as u64,
        other_evidence: rest.iter().map(|r| r.count).sum(),
    })
}

async fn dsr_status(store: &Store, w: &Window) -> Result<ChartSeries, StoreError> {
    let soon = w.end + DUE_SOON_DAYS * MICROS_PER_DAY;
    let (received, open_by_deadline) = futures_util::future::try_join(
        counts_by_key(store, w, Metric::Requests),
        repo::open_requests_by_deadline(store, w.end, soon),
    )
    .await?;
    let by_status = RequestStatus::ALL
        .into_iter()
        .map(|status| StatusCount {
            status,
            count: received
                .iter()
                .filter(|(s, _)| s == status.as_str())
                .map(|(_, n)| *n)
                .sum(),
        })
        .collect();
    Ok(ChartSeries::DsrStatus {
        by_status,
        open_by_deadline,
    })
}

/// Recounts the dashboard's daily counts ([`daily_counts`]) from the rows stored now, in one
/// transaction, and returns how many counts it wrote. A repair, for rows written around the
/// core (by hand, in SQL), which the counts do not see; it also takes out of the charts the
/// activity and the requests that retention or erasure deleted since, and dates again the
/// violations whose activity is gone by the day their evidence was added.
///
/// Needs [`Permission::RetentionManage`] (whose holders read every table counted); audited.
pub async fn rebuild_daily_counts(store: &Store, actor: &Actor) -> Result<u64, AnalyticsError> {
    rbac::require(store, actor, Permission::RetentionManage).await?;
    let mut tx = store.begin().await?;
    let written = repo::recount(&mut tx).await?;
    crate::audit::append(
        &mut tx,
        &crate::audit::NewAuditEntry::new(actor, crate::audit::AuditAction::DailyCountsRebuilt)
            .details(serde_json::json!({ "counts": written })),
    )
    .await?;
    tx.commit().await.map_err(StoreError::from)?;
    tracing::info!(counts = written, "daily counts rebuilt");
    Ok(written)
}

/// The background a chart is drawn for: the console's light or dark theme.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChartTheme {
    /// Dark text on white (exports and the command line use it too).
    #[default]
    Light,
    /// Light text on the console's dark surface.
    Dark,
}

impl ChartTheme {
    fn palette(self) -> &'static charts::Palette {
        match self {
            ChartTheme::Light => &charts::LIGHT,
            ChartTheme::Dark => &charts::DARK,
        }
    }
}

/// Draws the chart as a self-contained SVG document (no external references; text in the
/// reader's `sans-serif`, never under 12 pixels), `width` × `height` pixels, for a light
/// background.
///
/// A chart without data says "No data in this period". Sizes outside [`MIN_SIZE`]..=
/// [`MAX_SIZE`] are refused.
pub fn render_svg(data: &ChartData, width: u32, height: u32) -> Result<String, AnalyticsError> {
    render_svg_themed(data, width, height, ChartTheme::Light)
}

/// [`render_svg`] for the given theme's background.
pub fn render_svg_themed(
    data: &ChartData,
    width: u32,
    height: u32,
    theme: ChartTheme,
) -> Result<String, AnalyticsError> {
    charts::svg(data, charts::Size::new(width, height)?, theme.palette())
}

/// Draws the chart as an encoded PNG image (RGB, 8 bits), `width` × `height` pixels, with the
/// text in the embedded DejaVu Sans font (no system fonts needed), for a light background.
///
/// A chart without data says "No data in this period". Sizes outside [`MIN_SIZE`]..=
/// [`MAX_SIZE`] are refused.
pub fn render_png(data: &ChartData, width: u32, height: u32) -> Result<Vec<u8>, AnalyticsError> {
    render_png_themed(data, width, height, ChartTheme::Light)
}

/// [`render_png`] for the given theme's background.
pub fn render_png_themed(
    data: &ChartData,
    width: u32,
    height: u32,
    theme: ChartTheme,
) -> Result<Vec<u8>, AnalyticsError> {
    charts::png(data, charts::Size::new(width, height)?, theme.palette())
}

/// A chart's figures as a table, for screen readers and for anyone who wants the numbers:
/// a header row, then one row per day, rule or status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChartTable {
    /// Column headings.
    pub columns: Vec<String>,
    /// The rows, as text, in the chart's order.
    pub rows: Vec<Vec<String>>,
}

/// The figures drawn by [`render_svg`], as a table.
pub fn table(data: &ChartData) -> ChartTable {
    let cols = |c: &[&str]| c.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    match &data.series {
        ChartSeries::IncidentsBySeverity { days } => ChartTable {
            columns: cols(&["Day", "Critical", "High", "Medium", "Low"]),
            rows: days
                .iter()
                .map(|d| {
                    vec![
                        d.day.to_string(),
                        d.critical.to_string(),
                        d.high.to_string(),
                        d.medium.to_string(),
                        d.low.to_string(),
                    ]
                })
                .collect(),
        },
        ChartSeries::ActivityVolume { days } => ChartTable {
            columns: cols(&["Day", "Activity events", "Rate-limit violations"]),
            rows: days
                .iter()
                .map(|d| {
                    vec![
                        d.day.to_string(),
                        d.events.to_string(),
                        d.rate_limit_violations.to_string(),
                    ]
                })
                .collect(),
        },
        ChartSeries::TopRules {
            rules,
            other_rules,
            other_evidence,
        } => {
            let mut rows: Vec<Vec<String>> = rules
                .iter()
                .map(|r| vec![r.rule.clone(), r.count.to_string()])
                .collect();
            if *other_rules > 0 {
                rows.push(vec![
                    format!("{other_rules} other rules"),
                    other_evidence.to_string(),
                ]);
            }
            ChartTable {
                columns: cols(&["Rule", "Evidence"]),
                rows,
            }
        }
        ChartSeries::DsrStatus {
            by_status,
            open_by_deadline,
        } => {
            let mut rows: Vec<Vec<String>> = by_status
                .iter()
                .map(|s| {
                    vec![
                        format!("Received, now {}", s.status.as_str()),
                        s.count.to_string(),
                    ]
                })
                .collect();
            for (label, n) in [
                ("Open, overdue", open_by_deadline.overdue),
                ("Open, due soon", open_by_deadline.due_soon),
                ("Open, due later", open_by_deadline.due_later),
            ] {
                rows.push(vec![label.to_owned(), n.to_string()]);
            }
            ChartTable {
                columns: cols(&["Requests", "Count"]),
                rows,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chart_names_round_trip() {
        for k in ChartKind::ALL {
            assert_eq!(ChartKind::parse(k.as_str()), Some(k));
            assert_eq!(
                serde_json::to_value(k).unwrap(),
                serde_json::json!(k.as_str())
            );
        }
        assert_eq!(ChartKind::parse("pie"), None);
    }

    #[test]
    fn periods_are_7_30_or_90_days() {
        for p in Period::ALL {
            assert_eq!(Period::from_days(p.days()), Some(p));
        }
        assert_eq!(Period::from_days(14), None);
        assert_eq!(
            serde_json::to_value(Period::Days30).unwrap(),
            serde_json::json!(30)
        );
    }

    #[test]
    fn the_window_ends_with_the_day_of_now() {
        // 2024-03-10T15:00:00Z.
        let now = Timestamp::from_micros(1_710_082_800_000_000);
        let w = Window::ending(now, Period::Days7);
        assert_eq!(w.day(0), NaiveDate::from_ymd_opt(2024, 3, 4).unwrap());
        assert_eq!(w.day(6), NaiveDate::from_ymd_opt(2024, 3, 10).unwrap());
        assert_eq!(w.start % MICROS_PER_DAY, 0);
        assert_eq!(w.end, now.micros());
        assert_eq!(
            w.per_day(&[(0, 2), (6, 5), (7, 9), (-1, 9)]),
            [2, 0, 0, 0, 0, 0, 5]
        );
    }
}
