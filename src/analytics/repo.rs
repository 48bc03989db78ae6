//! SQL of the charts: counts grouped by UTC day, rule and status, one text for both databases.
//!
//! A day is `(t - start) / 86400000000` with `start` the midnight opening the period: integer
//! division of non-negative BIGINTs truncates alike on SQLite and Postgres, so both give the
//! same day index from 0 to `days - 1`.

use sqlx::Row;

use super::{DeadlineBuckets, Window, MICROS_PER_DAY};
use crate::store::{map_rows, Store, StoreError};

type Result<T> = std::result::Result<T, StoreError>;

/// `(day index, severity, incidents)` for the days that have any.
///
/// `incidents` has no index on `created_at` alone: one scan with a GROUP BY reads it once.
pub(super) async fn incidents_per_day(
    store: &Store,
    w: &Window,
) -> Result<Vec<(i64, String, i64)>> {
    let rows = sqlx::query(
        "SELECT (created_at - $1) / $2, severity, COUNT(*) FROM incidents \
         WHERE created_at >= $1 AND created_at <= $3 GROUP BY 1, 2",
    )
    .bind(w.start)
    .bind(MICROS_PER_DAY)
    .bind(w.end)
    .fetch_all(store.pool())
    .await?;
    map_rows(&rows, |r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))
}

/// Activity events per day, one entry for every day of the window.
///
/// A GROUP BY over a million rows makes SQLite sort them all in a temporary B-tree (about
/// 300 ms); instead each day is counted by its own range of `activity_log_time_id_idx`, which only
/// steps through the index. The days are split into consecutive runs counted on separate
/// connections at once, one per core (SQLite runs each connection on its own thread).
pub(super) async fn activity_per_day(store: &Store, w: &Window) -> Result<Vec<u64>> {
    let days = i64::from(w.days);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    // Short periods are not worth a second connection.
    let parts = (cores as i64).clamp(1, 4).min((days / 7).max(1));
    let per_part = (days + parts - 1) / parts;
    let runs = (0..parts)
        .map(|p| (p * per_part, ((p + 1) * per_part).min(days) - 1))
        .filter(|(first, last)| first <= last)
        .map(|(first, last)| activity_days(store, w, first, last));
    let mut out = vec![0u64; w.days as usize];
    for counts in futures_util::future::try_join_all(runs).await? {
        for (day, n) in counts {
            if let Some(slot) = usize::try_from(day).ok().and_then(|d| out.get_mut(d)) {
                *slot = super::count(n);
            }
        }
    }
    Ok(out)
}

/// `(day index, events)` for days `first..=last` of the window.
///
/// Each day's bounds are worked out once by the recursive CTE (the last day ends just after
/// `now`), so the count is a bare index range: a further `occurred_at <= now` test on every row
/// would nearly double the time.
async fn activity_days(
    store: &Store,
    w: &Window,
    first: i64,
    last: i64,
) -> Result<Vec<(i64, i64)>> {
    let rows = sqlx::query(
        "WITH RECURSIVE d (i, lo, hi) AS ( \
           SELECT $4, $1 + $4 * $2, \
                  CASE WHEN $1 + ($4 + 1) * $2 > $3 THEN $3 + 1 ELSE $1 + ($4 + 1) * $2 END \
           UNION ALL \
           SELECT i + 1, hi, CASE WHEN hi + $2 > $3 THEN $3 + 1 ELSE hi + $2 END \
           FROM d WHERE i < $5) \
         SELECT i, (SELECT COUNT(*) FROM activity_log \
                    WHERE occurred_at >= d.lo AND occurred_at < d.hi) \
         FROM d",
    )
    .bind(w.start)
    .bind(MICROS_PER_DAY)
    .bind(w.end)
    .bind(first)
    .bind(last)
    .fetch_all(store.pool())
    .await?;
    map_rows(&rows, |r| Ok((r.try_get(0)?, r.try_get(1)?)))
}

/// `(day index, evidence rows)` of rules named `rate_limit...`, for the days that have any.
///
/// `substr` decides, rather than `LIKE 'rate_limit%'`: `_` is a LIKE wildcard, and SQLite's
/// LIKE ignores case where Postgres's does not. The range before it only lets an index on
/// `rule` skip the other rules: every name starting `rate_limit` sorts within it, in byte
/// order and in linguistic collations alike (`t` < `u` decides before any suffix counts).
pub(super) async fn rate_limit_violations_per_day(
    store: &Store,
    w: &Window,
) -> Result<Vec<(i64, i64)>> {
    // Dated by when the activity behind the evidence happened, not when a detector run found
    // it (often the next day). Evidence is added after its activity, so `added_at >= $1`
    // keeps the (rule, added_at) index in play.
    let rows = sqlx::query(
        "SELECT (COALESCE(a.occurred_at, e.added_at) - $1) / $2, COUNT(*) \
         FROM incident_evidence e \
         LEFT JOIN activity_log a ON e.kind = 'activity' AND a.id = e.ref_id \
         WHERE e.rule >= 'rate_limit' AND e.rule < 'rate_limiu' \
           AND substr(e.rule, 1, 10) = 'rate_limit' AND e.added_at >= $1 \
           AND COALESCE(a.occurred_at, e.added_at) >= $1 \
           AND COALESCE(a.occurred_at, e.added_at) <= $3 \
         GROUP BY 1",
    )
    .bind(w.start)
    .bind(MICROS_PER_DAY)
    .bind(w.end)
    .fetch_all(store.pool())
    .await?;
    map_rows(&rows, |r| Ok((r.try_get(0)?, r.try_get(1)?)))
}

/// `(rule, evidence rows)` for every rule that added evidence in the window, unordered.
pub(super) async fn evidence_per_rule(store: &Store, w: &Window) -> Result<Vec<(String, i64)>> {
    let rows = sqlx::query(
        "SELECT rule, COUNT(*) FROM incident_evidence \
         WHERE rule IS NOT NULL AND added_at >= $1 AND added_at <= $2 GROUP BY rule",
    )
    .bind(w.start)
    .bind(w.end)
    .fetch_all(store.pool())
    .await?;
    map_rows(&rows, |r| Ok((r.try_get(0)?, r.try_get(1)?)))
}

/// `(status, requests)` received in the window, for the statuses that have any.
pub(super) async fn requests_per_status(store: &Store, w: &Window) -> Result<Vec<(String, i64)>> {
    let rows = sqlx::query(
        "SELECT status, COUNT(*) FROM dsr_requests \
         WHERE received_at >= $1 AND received_at <= $2 GROUP BY status",
    )
    .bind(w.start)
    .bind(w.end)
    .fetch_all(store.pool())
    .await?;
    map_rows(&rows, |r| Ok((r.try_get(0)?, r.try_get(1)?)))
}

/// Requests open at `now` (received by then), by deadline in force: overdue (`now` past it, as
/// the inbox counts), due by `soon`, due later.
pub(super) async fn open_requests_by_deadline(
    store: &Store,
    now: i64,
    soon: i64,
) -> Result<DeadlineBuckets> {
    let row = sqlx::query(
        "SELECT COUNT(CASE WHEN COALESCE(extended_due_at, due_at) < $1 THEN 1 END), \
                COUNT(CASE WHEN COALESCE(extended_due_at, due_at) >= $1 \
                            AND COALESCE(extended_due_at, due_at) <= $2 THEN 1 END), \
                COUNT(CASE WHEN COALESCE(extended_due_at, due_at) > $2 THEN 1 END) \
         FROM dsr_requests \
         WHERE status NOT IN ('completed', 'rejected', 'withdrawn') AND received_at <= $1",
    )
    .bind(now)
    .bind(soon)
    .fetch_one(store.pool())
    .await?;
    let get = |i: usize| row.try_get::<i64, _>(i).map(super::count);
    Ok(DeadlineBuckets {
        overdue: get(0)?,
        due_soon: get(1)?,
        due_later: get(2)?,
    })
}
