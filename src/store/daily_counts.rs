//! Daily counts: what the dashboard charts ([`crate::analytics`]) read instead of the rows they
//! count, so a chart reads one row per day and key whatever the size of the history (table
//! `daily_counts`, migration 0016). Here, below the domains, so that every domain writing what
//! is counted can count it in its own transaction.
//!
//! Each count is changed in the transaction of the change it counts ([`CountChanges`]):
//!
//! - [`Metric::Activity`]: activity records by kind, on the UTC day they occurred; added by
//!   every insertion into `activity_log` (ingestion, the `COPY` merge, console sign-ins, the
//!   demo), only for the rows actually inserted (a record already stored adds nothing);
//! - [`Metric::Incidents`]: incidents by their current severity, on the day opened; an
//!   escalation moves the incident from its old severity to the new one;
//! - [`Metric::Evidence`]: incident evidence by rule, on the day added;
//! - [`Metric::Violations`]: incident evidence by rule, on the day the activity behind it
//!   occurred (the day added, for evidence that is not a stored activity);
//! - [`Metric::Requests`]: data-subject requests by their current status, on the day received:
//!   every status change moves the request from its old status to the new one, so the counts of
//!   a day always equal `SELECT status, COUNT(*) FROM dsr_requests` over the requests received
//!   that day.
//!
//! On Postgres each session adds to slots of its own, which [`fold`] gathers after ingestion
//! and detection: a count is the sum of its slots.
//!
//! The counts hold no personal data (kinds, severities, rule names, statuses and numbers), and
//! deleting the rows they count leaves them: a retention cleanup or an erasure that deletes
//! activity does not take it out of the activity chart of the days it happened, nor move the
//! violations it caused to another day. They are aggregate statistics of what happened, kept
//! as long as the database. Rows written around the core (by hand, in SQL) are not counted
//! until [`crate::analytics::rebuild_daily_counts`] recounts everything from the rows stored
//! then.

use std::collections::BTreeMap;

use sqlx::Row;

use super::{backend_of, Backend, Store, StoreError, Timestamp, Tx};

/// Microseconds in a UTC day.
pub const MICROS_PER_DAY: i64 = 86_400_000_000;

/// What a daily count counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Metric {
    /// Activity records by kind, on the day they occurred.
    Activity,
    /// Incidents by current severity, on the day opened.
    Incidents,
    /// Incident evidence by rule, on the day added.
    Evidence,
    /// Incident evidence by rule, on the day the activity behind it occurred.
    Violations,
    /// Data-subject requests by current status, on the day received.
    Requests,
}

impl Metric {
    /// Every metric.
    pub const ALL: [Metric; 5] = [
        Metric::Activity,
        Metric::Incidents,
        Metric::Evidence,
        Metric::Violations,
        Metric::Requests,
    ];

    /// The name stored in `daily_counts.metric`.
    pub fn as_str(self) -> &'static str {
        match self {
            Metric::Activity => "activity",
            Metric::Incidents => "incidents",
            Metric::Evidence => "evidence",
            Metric::Violations => "violations",
            Metric::Requests => "requests",
        }
    }
}

/// A UTC day, as days since 1970-01-01 (floored: the instant before 1970 is day -1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Day(i64);

impl Day {
    /// The day holding the instant `micros` (UTC microseconds).
    pub fn of_micros(micros: i64) -> Self {
        Day(micros.div_euclid(MICROS_PER_DAY))
    }

    /// The day holding `t`.
    pub fn of(t: Timestamp) -> Self {
        Self::of_micros(t.micros())
    }

    /// Days since 1970-01-01.
    pub fn number(self) -> i64 {
        self.0
    }

    /// Midnight opening the day, in UTC microseconds.
    pub fn start_micros(self) -> i64 {
        self.0 * MICROS_PER_DAY
    }
}

/// Changes to the daily counts that one transaction makes, written in that transaction by
/// [`CountChanges::write`] before it commits.
///
/// Changes are summed per count and written once, in this session's slot of each count (see
/// the `slot` of migration 0016), so concurrent transactions never wait for each other's
/// counts; [`fold`] gathers the slots later.
#[derive(Debug, Default)]
#[must_use = "changes to the daily counts are lost unless written"]
pub struct CountChanges(BTreeMap<(Metric, Day, String), i64>);

impl CountChanges {
    /// No changes yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `n` (which may be negative) to the count of `metric` and `key` on the day of `at`
    /// (UTC microseconds).
    pub fn add(&mut self, metric: Metric, at: i64, key: &str, n: i64) {
        *self
            .0
            .entry((metric, Day::of_micros(at), key.to_owned()))
            .or_default() += n;
    }

    /// Moves one from `from` to `to` on the day of `at` (a status or severity that changed);
    /// nothing if they are the same.
    pub fn moved(&mut self, metric: Metric, at: i64, from: &str, to: &str) {
        if from != to {
            self.add(metric, at, from, -1);
            self.add(metric, at, to, 1);
        }
    }

    /// Whether nothing would change.
    pub fn is_empty(&self) -> bool {
        self.0.values().all(|n| *n == 0)
    }

    /// Writes the changes in `tx`.
    pub async fn write(self, tx: &mut Tx) -> Result<(), StoreError> {
        let changes: Vec<(Metric, Day, String, i64)> = self
            .0
            .into_iter()
            .filter(|(_, n)| *n != 0)
            .map(|((m, d, k), n)| (m, d, k, n))
            .collect();
        add_counts(tx, &changes).await
    }
}

/// Adds each `(metric, day, key, n)` to its count, in this session's slot (0 on SQLite; on
/// Postgres the server process id, which no concurrent transaction shares, so none waits for
/// another's counts), creating rows not stored yet, in one statement per few hundred counts.
async fn add_counts(tx: &mut Tx, changes: &[(Metric, Day, String, i64)]) -> Result<(), StoreError> {
    let backend = backend_of(tx);
    for chunk in changes.chunks(250) {
        let rows: Vec<String> = (0..chunk.len())
            .map(|i| match backend {
                Backend::Postgres => format!(
                    "(${}, ${}, ${}, pg_backend_pid(), ${})",
                    4 * i + 1,
                    4 * i + 2,
                    4 * i + 3,
                    4 * i + 4
                ),
                Backend::Sqlite => "(?, ?, ?, 0, ?)".to_owned(),
            })
            .collect();
        let sql = format!(
            "INSERT INTO daily_counts (metric, day, key, slot, n) VALUES {} \
             ON CONFLICT (metric, day, key, slot) DO UPDATE SET n = daily_counts.n + excluded.n",
            rows.join(", ")
        );
        let mut q = sqlx::query(&sql);
        for (metric, day, key, n) in chunk {
            q = q
                .bind(metric.as_str())
                .bind(day.number())
                .bind(key.as_str())
                .bind(*n);
        }
        q.execute(&mut **tx).await?;
    }
    Ok(())
}

/// Adds the sessions' slots of every count into its slot 0 and deletes them, in one transaction
/// of its own, so a count stays a few rows however many sessions wrote it; returns the rows
/// folded. Rows a transaction in flight holds are skipped (`SKIP LOCKED`), for a later fold: no
/// writer waits for a fold, nor a fold for a writer. Postgres only (SQLite counts in slot 0);
/// run after ingestion and after each batch of detections.
pub async fn fold(store: &Store) -> Result<u64, StoreError> {
    if store.backend() != Backend::Postgres {
        return Ok(0);
    }
    let mut tx = store.begin().await?;
    let folded: i64 = sqlx::query(
        "WITH moved AS ( \
           DELETE FROM daily_counts d USING ( \
             SELECT metric, day, key, slot FROM daily_counts WHERE slot <> 0 \
             FOR UPDATE SKIP LOCKED) s \
           WHERE d.metric = s.metric AND d.day = s.day AND d.key = s.key AND d.slot = s.slot \
           RETURNING d.metric, d.day, d.key, d.n), \
         summed AS ( \
           INSERT INTO daily_counts (metric, day, key, slot, n) \
           SELECT metric, day, key, 0, CAST(SUM(n) AS BIGINT) FROM moved \
           GROUP BY metric, day, key ORDER BY metric, day, key \
           ON CONFLICT (metric, day, key, slot) DO UPDATE SET n = daily_counts.n + EXCLUDED.n) \
         SELECT COUNT(*) FROM moved",
    )
    .fetch_one(&mut *tx)
    .await?
    .try_get(0)?;
    tx.commit().await?;
    Ok(u64::try_from(folded).unwrap_or(0))
}
