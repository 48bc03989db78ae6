//! Monthly time partitions of `activity_log` on Postgres (migration 0017): one partition per UTC
//! calendar month, `activity_log_YYYY_MM`, plus `activity_log_default` for rows no month takes.
//!
//! Partitions are made ahead of the rows: the worker makes this month's and the next at every
//! round ([`ensure_ahead`]), and every write of activity makes sure the months of its batch
//! exist first ([`ensure`]), so rows land in their month rather than piling into the default
//! partition. Retention drops a month whose whole range is past the cutoff and which holds no
//! held record ([`drop_month`]), one statement instead of a delete per row.
//!
//! Creating and dropping tables is the owner's: operators' logins (team mode) go through the
//! `SECURITY DEFINER` functions `vigil_activity_partition_ensure` (any operator; creates only an
//! empty month partition) and `vigil_activity_partition_drop` (the retention permission; refuses
//! a month not entirely past the activity policy's cutoff, and keeps one holding a held record).
//! Everything here is a no-op on SQLite, which has no partitions.

use chrono::{Datelike, TimeZone, Utc};
use sqlx::Row;

use super::{Backend, Store, StoreError, Timestamp, Tx};

/// The partitioned table.
pub const TABLE: &str = "activity_log";

/// The first microsecond of the UTC month `micros` falls in.
pub fn month_start(micros: i64) -> i64 {
    let t = Timestamp::from_micros(micros).to_datetime();
    Utc.with_ymd_and_hms(t.year(), t.month(), 1, 0, 0, 0)
        .single()
        .map(|m| m.timestamp_micros())
        .unwrap_or(micros)
}

/// The first microsecond of the month after the one starting at `start`.
pub fn month_end(start: i64) -> i64 {
    let t = Timestamp::from_micros(start).to_datetime();
    let (y, m) = if t.month() == 12 {
        (t.year() + 1, 1)
    } else {
        (t.year(), t.month() + 1)
    };
    Utc.with_ymd_and_hms(y, m, 1, 0, 0, 0)
        .single()
        .map(|m| m.timestamp_micros())
        .unwrap_or(i64::MAX)
}

/// The name of the partition of the month starting at `start`.
pub fn partition_name(start: i64) -> String {
    let t = Timestamp::from_micros(start).to_datetime();
    format!("{TABLE}_{:04}_{:02}", t.year(), t.month())
}

/// The month start a partition's name stands for (`None` for the default partition or a name
/// of another shape).
pub fn month_of_partition(name: &str) -> Option<i64> {
    let rest = name.strip_prefix(TABLE)?.strip_prefix('_')?;
    let (y, m) = rest.split_once('_')?;
    if y.len() != 4 || m.len() != 2 {
        return None;
    }
    let (y, m): (i32, u32) = (y.parse().ok()?, m.parse().ok()?);
    Utc.with_ymd_and_hms(y, m, 1, 0, 0, 0)
        .single()
        .map(|t| t.timestamp_micros())
}

/// The distinct month starts of `times`, in order.
pub fn months_of(times: impl IntoIterator<Item = i64>) -> Vec<i64> {
    let mut v: Vec<i64> = times.into_iter().map(month_start).collect();
    v.sort_unstable();
    v.dedup();
    v
}

const ENSURE: &str = "SELECT vigil_activity_partition_ensure($1)";

/// Makes sure the partitions of `months` (any instant within each) exist. Returns how many it
/// created. Months before 1970 or more than a year ahead are left to the default partition.
pub async fn ensure(store: &Store, months: &[i64]) -> Result<u64, StoreError> {
    if store.backend() != Backend::Postgres {
        return Ok(0);
    }
    let mut created = 0;
    for m in months_of(months.iter().copied()) {
        let made: bool = sqlx::query(ENSURE)
            .bind(m)
            .fetch_one(store.pool())
            .await?
            .try_get(0)?;
        created += u64::from(made);
    }
    Ok(created)
}

/// [`ensure`] inside a transaction (a writer that inserts activity in `tx`). A month that exists
/// costs one lookup and takes no lock.
pub(crate) async fn ensure_in(tx: &mut Tx, months: &[i64]) -> Result<(), StoreError> {
    if super::backend_of(tx) != Backend::Postgres {
        return Ok(());
    }
    for m in months_of(months.iter().copied()) {
        sqlx::query(ENSURE).bind(m).fetch_one(&mut **tx).await?;
    }
    Ok(())
}

/// Makes sure this month's partition and the next month's exist (the worker, every round).
pub async fn ensure_ahead(store: &Store) -> Result<u64, StoreError> {
    let this = month_start(Timestamp::now().micros());
    ensure(store, &[this, month_end(this)]).await
}

/// A month partition of `activity_log`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partition {
    /// Its name, `activity_log_YYYY_MM`.
    pub name: String,
    /// The first microsecond of its month.
    pub start: i64,
    /// The first microsecond after it.
    pub end: i64,
}

/// The month partitions of `activity_log`, oldest first (empty on SQLite). The default
/// partition is not listed.
pub async fn list(store: &Store) -> Result<Vec<Partition>, StoreError> {
    if store.backend() != Backend::Postgres {
        return Ok(Vec::new());
    }
    let rows = sqlx::query(
        "SELECT c.relname::TEXT FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid \
         WHERE i.inhparent = to_regclass('public.activity_log')",
    )
    .fetch_all(store.pool())
    .await?;
    let mut out = Vec::new();
    for r in rows {
        let name: String = r.try_get(0)?;
        if let Some(start) = month_of_partition(&name) {
            out.push(Partition {
                name,
                start,
                end: month_end(start),
            });
        }
    }
    out.sort_by_key(|p| p.start);
    Ok(out)
}

/// Drops the partition of the month starting at `start` in `tx` if the whole month is before
/// `cutoff` (and before the activity policy's own cutoff as of now) and no record in it is
/// held: returns the rows it held, or `None` when it was kept (a held record) or is not there.
/// An error when the month is not entirely past the cutoff or the session may not run
/// retention.
pub async fn drop_month(tx: &mut Tx, start: i64, cutoff: i64) -> Result<Option<i64>, StoreError> {
    let row = sqlx::query("SELECT vigil_activity_partition_drop($1, $2)")
        .bind(start)
        .bind(cutoff)
        .fetch_one(&mut **tx)
        .await?;
    Ok(row.try_get::<Option<i64>, _>(0)?)
}

/// For `vigil bench --partition-drop`: fills the month starting at `start` with `rows` sign-ins
/// spread over it (no account, so nothing holds them), its partition made first, then vacuums
/// and analyses the partition as a settled month is. Postgres only.
pub async fn bench_fill(store: &Store, start: i64, rows: u64) -> Result<(), StoreError> {
    ensure(store, &[start]).await?;
    let span = month_end(start) - start;
    sqlx::query(
        "INSERT INTO activity_log (id, user_id, kind, outcome, occurred_at, ingested_at, details) \
         SELECT 'bench-' || g, NULL, 'login', 'success', $1 + (g * 7919) % $2, $1, '{}' \
         FROM generate_series(1, $3) g",
    )
    .bind(start)
    .bind(span)
    .bind(i64::try_from(rows).unwrap_or(i64::MAX))
    .execute(store.pool())
    .await?;
    sqlx::raw_sql(&format!("VACUUM ANALYZE {}", partition_name(start)))
        .execute(store.pool())
        .await?;
    Ok(())
}

/// For `vigil bench --partition-drop`: deletes the rows of the month starting at `start` with one
/// `DELETE`; returns how many.
pub async fn bench_delete(store: &Store, start: i64) -> Result<u64, StoreError> {
    Ok(
        sqlx::query("DELETE FROM activity_log WHERE occurred_at >= $1 AND occurred_at < $2")
            .bind(start)
            .bind(month_end(start))
            .execute(store.pool())
            .await?
            .rows_affected(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_are_utc_calendar_months() {
        // 2024-02-29T23:59:59.999999Z
        let leap = 1_709_251_199_999_999;
        let feb = month_start(leap);
        assert_eq!(feb, 1_706_745_600_000_000);
        assert_eq!(month_end(feb), leap + 1);
        assert_eq!(partition_name(feb), "activity_log_2024_02");
        assert_eq!(month_of_partition("activity_log_2024_02"), Some(feb));
        assert_eq!(month_of_partition("activity_log_default"), None);
        assert_eq!(
            month_end(month_start(1_733_011_200_000_000 - 1)),
            1_733_011_200_000_000
        );
        assert_eq!(
            partition_name(month_end(1_732_000_000_000_000)),
            "activity_log_2024_12"
        );
        assert_eq!(months_of([leap, feb, leap + 1]), vec![feb, leap + 1]);
    }
}
