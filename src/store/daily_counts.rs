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
//! The counts hold no personal data (kinds, severities, rule names, statuses and numbers), and
//! deleting the rows they count leaves them: a retention cleanup or an erasure that deletes
//! activity does not take it out of the activity chart of the days it happened, nor move the
//! violations it caused to another day. They are aggregate statistics of what happened, kept
//! as long as the database. Rows written around the core (by hand, in SQL) are not counted
//! until [`crate::analytics::rebuild_daily_counts`] recounts everything from the rows stored
//! then.

use std::collections::BTreeMap;

use super::{backend_of, values_placeholders, StoreError, Timestamp, Tx};

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
/// Changes are summed per count and written in one statement in the key order, so two
/// transactions changing the same counts on Postgres lock them in the same order and never
/// deadlock on them; a transaction should write its changes once, just before it commits.
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

/// Adds each `(metric, day, key, n)` to its count, creating counts not stored yet, in one
/// statement per few hundred counts and in the order given (sorted by the caller, so concurrent
/// writers lock counts in one order).
async fn add_counts(tx: &mut Tx, changes: &[(Metric, Day, String, i64)]) -> Result<(), StoreError> {
    let backend = backend_of(tx);
    for chunk in changes.chunks(250) {
        let sql = format!(
            "INSERT INTO daily_counts (metric, day, key, n) VALUES {} \
             ON CONFLICT (metric, day, key) DO UPDATE SET n = daily_counts.n + excluded.n",
            values_placeholders(backend, chunk.len(), 4)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_are_floored() {
        assert_eq!(Day::of_micros(0).number(), 0);
        assert_eq!(Day::of_micros(MICROS_PER_DAY - 1).number(), 0);
        assert_eq!(Day::of_micros(MICROS_PER_DAY).number(), 1);
        assert_eq!(Day::of_micros(-1).number(), -1);
        assert_eq!(Day::of_micros(-MICROS_PER_DAY).number(), -1);
        assert_eq!(Day::of_micros(-MICROS_PER_DAY - 1).number(), -2);
        assert_eq!(Day(3).start_micros(), 3 * MICROS_PER_DAY);
    }

    #[test]
    fn changes_sum_per_count_and_a_move_to_the_same_key_is_nothing() {
        let mut c = CountChanges::new();
        c.add(Metric::Activity, 10, "login", 2);
        c.add(Metric::Activity, 20, "login", 3);
        c.moved(Metric::Requests, 10, "verified", "verified");
        assert_eq!(c.0.len(), 1);
        assert_eq!(c.0[&(Metric::Activity, Day(0), "login".to_owned())], 5);
        c.moved(Metric::Requests, 10, "verifying", "verified");
        c.moved(Metric::Requests, 10, "verified", "verifying");
        assert!(c
            .0
            .iter()
            .filter(|((m, _, _), _)| *m == Metric::Requests)
            .all(|(_, n)| *n == 0));
        assert!(!c.is_empty());
        assert!(CountChanges::new().is_empty());
    }
}
