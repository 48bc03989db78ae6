//! The ingestion fence: a detector run never passes over activity that commits late.
//!
//! A detector run reads the activity ingested after its last checkpoint up to a snapshot (the
//! newest ingestion time), and the next run starts after that snapshot. Activity stamped before
//! the snapshot but committed after it would be skipped for good: on Postgres two ingesters (two
//! `activity ingest` runs, a platform feed and a worker, hosts with different clocks) can commit
//! out of stamp order. So on Postgres every ingestion transaction enters the fence (a shared
//! transaction-level advisory lock) and only then takes its stamp, from the database's clock; a
//! detector takes its snapshot inside the fence exclusively, which waits for the ingestion
//! transactions in flight to commit and holds new ones until the snapshot is read. Every
//! activity row is then either in the snapshot or stamped after it.
//!
//! SQLite has one writer at a time: a write transaction (`BEGIN IMMEDIATE`) stamps after every
//! earlier write committed, so its snapshot needs no fence.

use sqlx::Row;

use super::{Backend, Store, StoreError, Timestamp, Tx};

/// The fence's advisory lock key: the first eight bytes of `SHA-256("vigil.fence.ingestion")`.
pub(crate) fn ingestion_fence_key() -> i64 {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(b"vigil.fence.ingestion");
    i64::from_be_bytes(digest[..8].try_into().expect("eight bytes"))
}

/// The database clock, in microseconds since the epoch (Postgres).
pub(crate) const POSTGRES_NOW_MICROS: &str =
    "SELECT (EXTRACT(EPOCH FROM clock_timestamp()) * 1000000)::BIGINT";

/// Enters the ingestion fence for the rest of `tx` and returns the time to stamp the activity
/// `tx` writes as ingested: on Postgres the database's clock once inside the fence, on SQLite
/// this machine's clock (`tx` holds the write lock already).
pub async fn ingestion_stamp(tx: &mut Tx) -> Result<Timestamp, StoreError> {
    if tx.backend_name() != "PostgreSQL" {
        return Ok(Timestamp::now());
    }
    sqlx::query("SELECT pg_advisory_xact_lock_shared($1)")
        .bind(ingestion_fence_key())
        .execute(&mut **tx)
        .await?;
    let micros: i64 = sqlx::query(POSTGRES_NOW_MICROS)
        .fetch_one(&mut **tx)
        .await?
        .try_get(0)?;
    Ok(Timestamp::from_micros(micros))
}

impl Store {
    /// The newest ingestion time, taken so that every activity row stamped at or before it is
    /// committed and every row committed later is stamped after it; `None` before any activity.
    pub async fn settled_ingestion(&self) -> Result<Option<i64>, StoreError> {
        const NEWEST: &str = "SELECT MAX(ingested_at) FROM activity_log";
        if self.backend() == Backend::Sqlite {
            return Ok(sqlx::query(NEWEST)
                .fetch_one(self.pool())
                .await?
                .try_get(0)?);
        }
        let mut tx = self.pool().begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(ingestion_fence_key())
            .execute(&mut *tx)
            .await?;
        let newest: Option<i64> = sqlx::query(NEWEST).fetch_one(&mut *tx).await?.try_get(0)?;
        tx.commit().await?;
        Ok(newest)
    }
}
