//! SQL of the audit chain.

use futures_util::TryStreamExt;
use sqlx::Row;

use super::{canonical_bytes, chain_hash, AuditEntry, ChainFault, NewAuditEntry, Verification};
use crate::store::{Backend, Store, StoreError, Timestamp, Tx};

/// Filters for listing entries.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// Stored actor (`user:<uuid>` or `system:<name>`).
    pub actor: Option<String>,
    /// Stored action name.
    pub action: Option<String>,
    /// Only entries at or after this time.
    pub since: Option<Timestamp>,
    /// Most entries to return (default 50, at most 10,000).
    pub limit: Option<u32>,
}

pub(super) async fn append(
    tx: &mut Tx,
    entry: &NewAuditEntry,
    at: Timestamp,
) -> Result<i64, StoreError> {
    // Taking the head row's lock first serialises appenders on both backends; under
    // Postgres' READ COMMITTED a waiting appender re-reads the head once the first commits.
    let head = sqlx::query("UPDATE audit_head SET seq = seq + 1 WHERE id = 1 RETURNING seq, hash")
        .fetch_one(&mut **tx)
        .await?;
    let seq: i64 = head.try_get(0)?;
    let prev: Vec<u8> = head.try_get(1)?;
    let actor = entry.actor.as_stored();
    let details = entry.details.to_string();
    let canonical = canonical_bytes(
        seq,
        at.micros(),
        &actor,
        entry.action.as_str(),
        entry.target.as_deref(),
        &details,
    );
    let hash = chain_hash(&prev, &canonical);
    sqlx::query(
        "INSERT INTO audit_log (seq, at, actor, action, target, details, prev_hash, hash) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(seq)
    .bind(at.micros())
    .bind(actor)
    .bind(entry.action.as_str())
    .bind(entry.target.as_deref())
    .bind(details)
    .bind(prev)
    .bind(hash.to_vec())
    .execute(&mut **tx)
    .await?;
    sqlx::query("UPDATE audit_head SET hash = $1 WHERE id = 1")
        .bind(hash.to_vec())
        .execute(&mut **tx)
        .await?;
    Ok(seq)
}

pub(super) async fn verify(store: &Store) -> Result<Verification, StoreError> {
    // One snapshot for the head and the entries, so concurrent appends don't look like faults.
    let mut tx = match store.backend() {
        Backend::Sqlite => store.pool().begin().await?,
        Backend::Postgres => {
            store
                .pool()
                .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                .await?
        }
    };
    let head = sqlx::query(
        "SELECT seq, hash, archived_through_seq, archived_hash FROM audit_head WHERE id = 1",
    )
    .fetch_one(&mut *tx)
    .await?;
    let head_seq: i64 = head.try_get(0)?;
    let head_hash: Vec<u8> = head.try_get(1)?;
    let start_seq: i64 = head.try_get(2)?;
    let mut running: Vec<u8> = head.try_get(3)?;

    let mut expected = start_seq + 1;
    let mut checked: u64 = 0;
    let result = {
        let mut rows = sqlx::query(
            "SELECT seq, at, actor, action, target, details, prev_hash, hash \
             FROM audit_log WHERE seq > $1 ORDER BY seq",
        )
        .bind(start_seq)
        .fetch(&mut *tx);
        let mut fault = None;
        while let Some(row) = rows.try_next().await? {
            let seq: i64 = row.try_get(0)?;
            if seq != expected {
                fault = Some((expected, ChainFault::Missing { found: Some(seq) }));
                break;
            }
            let prev: &[u8] = row.try_get(6)?;
            if prev != running.as_slice() {
                fault = Some((seq, ChainFault::BrokenLink));
                break;
            }
            let canonical = canonical_bytes(
                seq,
                row.try_get(1)?,
                row.try_get(2)?,
                row.try_get(3)?,
                row.try_get(4)?,
                row.try_get(5)?,
            );
            let stored: &[u8] = row.try_get(7)?;
            let computed = chain_hash(prev, &canonical);
            if stored != computed.as_slice() {
                fault = Some((seq, ChainFault::HashMismatch));
                break;
            }
            running.clear();
            running.extend_from_slice(stored);
            checked += 1;
            expected += 1;
        }
        fault
    };
    tx.rollback().await?;
    let last_seq = expected - 1;
    Ok(match result {
        Some((seq, fault)) => Verification::Broken {
            seq,
            fault,
            entries_ok: checked,
        },
        None if head_seq > last_seq => Verification::Broken {
            seq: last_seq + 1,
            fault: ChainFault::Truncated { head_seq },
            entries_ok: checked,
        },
        None if head_hash != running => Verification::Broken {
            seq: last_seq,
            fault: ChainFault::HeadMismatch,
            entries_ok: checked,
        },
        None => Verification::Ok {
            entries: checked,
            last_seq,
        },
    })
}

pub(super) async fn list(store: &Store, f: &AuditFilter) -> Result<Vec<AuditEntry>, StoreError> {
    let limit = i64::from(f.limit.unwrap_or(50).clamp(1, 10_000));
    let rows = sqlx::query(
        "SELECT seq, at, actor, action, target, details, prev_hash, hash FROM audit_log \
         WHERE ($1 IS NULL OR actor = $1) AND ($2 IS NULL OR action = $2) \
           AND ($3 IS NULL OR at >= $3) \
         ORDER BY seq DESC LIMIT $4",
    )
    .bind(f.actor.as_deref())
    .bind(f.action.as_deref())
    .bind(f.since.map(Timestamp::micros))
    .bind(limit)
    .fetch_all(store.pool())
    .await?;
    rows.iter()
        .map(|r| {
            Ok(AuditEntry {
                seq: r.try_get(0)?,
                at: Timestamp::from_micros(r.try_get(1)?),
                actor: r.try_get(2)?,
                action: r.try_get(3)?,
                target: r.try_get(4)?,
                details: r.try_get(5)?,
                prev_hash: r.try_get(6)?,
                hash: r.try_get(7)?,
            })
        })
        .collect::<Result<_, sqlx::Error>>()
        .map_err(StoreError::from)
}
