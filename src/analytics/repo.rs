//! SQL of the charts and of the daily counts they read (`daily_counts`, see `store::daily_counts`), one text
//! for both databases.

use sqlx::Row;

use super::DeadlineBuckets;
use crate::store::daily_counts::{Day, Metric};
use crate::store::{map_rows, Store, StoreError, Tx};

type Result<T> = std::result::Result<T, StoreError>;

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

// ---------------------------------------------------------------------------------------------
// Daily counts (`daily_counts`, see `store::daily_counts`)

/// `(day number, key, count)` of `metric` on days `first..=last`, for the counts stored.
pub(super) async fn counts_by_day_and_key(
    store: &Store,
    metric: Metric,
    first: Day,
    last: Day,
) -> Result<Vec<(i64, String, i64)>> {
    let rows = sqlx::query(
        "SELECT day, key, CAST(SUM(n) AS BIGINT) FROM daily_counts \
         WHERE metric = $1 AND day >= $2 AND day <= $3 GROUP BY day, key",
    )
    .bind(metric.as_str())
    .bind(first.number())
    .bind(last.number())
    .fetch_all(store.pool())
    .await?;
    map_rows(&rows, |r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))
}

/// `(day number, count)` of `metric` on days `first..=last`, all keys summed (or only the keys
/// starting `rate_limit`), for the days that have any.
pub(super) async fn counts_by_day(
    store: &Store,
    metric: Metric,
    first: Day,
    last: Day,
    rate_limit_only: bool,
) -> Result<Vec<(i64, i64)>> {
    // The same test of the rule as `rate_limit_violations_per_day`.
    let keys = if rate_limit_only {
        " AND key >= 'rate_limit' AND key < 'rate_limiu' AND substr(key, 1, 10) = 'rate_limit'"
    } else {
        ""
    };
    let rows = sqlx::query(&format!(
        "SELECT day, CAST(SUM(n) AS BIGINT) FROM daily_counts \
         WHERE metric = $1 AND day >= $2 AND day <= $3{keys} GROUP BY day"
    ))
    .bind(metric.as_str())
    .bind(first.number())
    .bind(last.number())
    .fetch_all(store.pool())
    .await?;
    map_rows(&rows, |r| Ok((r.try_get(0)?, r.try_get(1)?)))
}

/// `(key, count)` of `metric` over days `first..=last`, for the keys that have any.
pub(super) async fn counts_by_key(
    store: &Store,
    metric: Metric,
    first: Day,
    last: Day,
) -> Result<Vec<(String, i64)>> {
    let rows = sqlx::query(
        "SELECT key, CAST(SUM(n) AS BIGINT) FROM daily_counts \
         WHERE metric = $1 AND day >= $2 AND day <= $3 GROUP BY key",
    )
    .bind(metric.as_str())
    .bind(first.number())
    .bind(last.number())
    .fetch_all(store.pool())
    .await?;
    map_rows(&rows, |r| Ok((r.try_get(0)?, r.try_get(1)?)))
}

/// What `metric`'s counts of the day of `now` hold that happened after `now` (before `end`,
/// the next midnight), by key: the charts stop at `now`, the counts at midnight. Normally
/// nothing is stamped after the present, so each is a short index range.
pub(super) async fn counted_after(
    store: &Store,
    metric: Metric,
    now: i64,
    end: i64,
) -> Result<Vec<(String, i64)>> {
    let sql = match metric {
        Metric::Activity => {
            "SELECT kind, COUNT(*) FROM activity_log \
             WHERE occurred_at > $1 AND occurred_at < $2 GROUP BY kind"
        }
        Metric::Incidents => {
            "SELECT severity, COUNT(*) FROM incidents \
             WHERE created_at > $1 AND created_at < $2 GROUP BY severity"
        }
        Metric::Evidence => {
            "SELECT rule, COUNT(*) FROM incident_evidence \
             WHERE added_at > $1 AND added_at < $2 AND rule IS NOT NULL GROUP BY rule"
        }
        Metric::Requests => {
            "SELECT status, COUNT(*) FROM dsr_requests \
             WHERE received_at > $1 AND received_at < $2 GROUP BY status"
        }
        // Evidence of activity that occurred in the span, and evidence added in it that is not
        // a stored activity: each by its own index.
        Metric::Violations => {
            "SELECT rule, COUNT(*) FROM ( \
               SELECT e.rule AS rule FROM activity_log a \
               JOIN incident_evidence e ON e.ref_id = a.id AND e.kind = 'activity' \
               WHERE a.occurred_at > $1 AND a.occurred_at < $2 AND e.rule IS NOT NULL \
               UNION ALL \
               SELECT e.rule FROM incident_evidence e \
               WHERE e.added_at > $1 AND e.added_at < $2 AND e.rule IS NOT NULL \
                 AND NOT EXISTS (SELECT 1 FROM activity_log a \
                                 WHERE e.kind = 'activity' AND a.id = e.ref_id)) v \
             GROUP BY rule"
        }
    };
    let rows = sqlx::query(sql)
        .bind(now)
        .bind(end)
        .fetch_all(store.pool())
        .await?;
    map_rows(&rows, |r| Ok((r.try_get(0)?, r.try_get(1)?)))
}

/// The UTC day of a BIGINT column of microseconds, floored: `%` truncates on both databases,
/// so the remainder is made non-negative first (the same expression as migration 0016).
macro_rules! day_of {
    ($t:literal) => {
        concat!(
            "(",
            $t,
            " - ((",
            $t,
            " % 86400000000) + 86400000000) % 86400000000) / 86400000000"
        )
    };
}

/// Recounts every daily count from the rows stored now, as migration 0016 first counted them.
const RECOUNT: &[&str] = &[
    concat!(
        "INSERT INTO daily_counts (metric, day, key, slot, n) SELECT 'activity', ",
        day_of!("occurred_at"),
        ", kind, 0, COUNT(*) FROM activity_log GROUP BY 2, 3"
    ),
    concat!(
        "INSERT INTO daily_counts (metric, day, key, slot, n) SELECT 'incidents', ",
        day_of!("created_at"),
        ", severity, 0, COUNT(*) FROM incidents GROUP BY 2, 3"
    ),
    concat!(
        "INSERT INTO daily_counts (metric, day, key, slot, n) SELECT 'evidence', ",
        day_of!("added_at"),
        ", rule, 0, COUNT(*) FROM incident_evidence WHERE rule IS NOT NULL GROUP BY 2, 3"
    ),
    concat!(
        "INSERT INTO daily_counts (metric, day, key, slot, n) SELECT 'violations', ",
        day_of!("t"),
        ", rule, 0, COUNT(*) FROM ( \
         SELECT COALESCE(a.occurred_at, e.added_at) AS t, e.rule AS rule FROM incident_evidence e \
         LEFT JOIN activity_log a ON e.kind = 'activity' AND a.id = e.ref_id \
         WHERE e.rule IS NOT NULL) v GROUP BY 2, 3"
    ),
    concat!(
        "INSERT INTO daily_counts (metric, day, key, slot, n) SELECT 'requests', ",
        day_of!("received_at"),
        ", status, 0, COUNT(*) FROM dsr_requests GROUP BY 2, 3"
    ),
];

/// Replaces every daily count by a count of the rows stored now; returns the counts written.
pub(super) async fn recount(tx: &mut Tx) -> Result<u64> {
    sqlx::query("DELETE FROM daily_counts")
        .execute(&mut **tx)
        .await?;
    let mut written = 0;
    for sql in RECOUNT {
        written += sqlx::query(sql).execute(&mut **tx).await?.rows_affected();
    }
    Ok(written)
}
