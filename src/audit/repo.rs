//! SQL of the audit chain.

use futures_util::TryStreamExt;
use sqlx::Row;

use super::{
    canonical_bytes_with, chain_hash, AuditEntry, ChainFault, NewAuditEntry, Verification,
};
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
    /// Only entries before this sequence number (paging back from the newest).
    pub before_seq: Option<i64>,
}

pub(super) async fn append(
    tx: &mut Tx,
    entry: &NewAuditEntry,
    at: Timestamp,
) -> Result<i64, StoreError> {
    if crate::store::backend_of(tx) == Backend::Postgres {
        // Operators may not write the log or its head: a definer function appends, with the
        // same canonical encoding and hash, under the same head lock.
        return crate::store::team::audit_append(
            tx,
            &entry.actor.as_stored(),
            entry.action.as_str(),
            entry.target.as_deref(),
            &entry.details.to_string(),
            at.micros(),
            entry.outcome.as_str(),
            entry.session_id.as_deref(),
        )
        .await;
    }
    // Taking the head row's lock first serialises appenders on both backends; under
    // Postgres' READ COMMITTED a waiting appender re-reads the head once the first commits.
    let head = sqlx::query("UPDATE audit_head SET seq = seq + 1 WHERE id = 1 RETURNING seq, hash")
        .fetch_one(&mut **tx)
        .await?;
    let seq: i64 = head.try_get(0)?;
    let prev: Vec<u8> = head.try_get(1)?;
    let actor = entry.actor.as_stored();
    let details = entry.details.to_string();
    let canonical = canonical_bytes_with(
        seq,
        at.micros(),
        &actor,
        entry.action.as_str(),
        entry.target.as_deref(),
        &details,
        entry.outcome.as_str(),
        entry.session_id.as_deref(),
    );
    let hash = chain_hash(&prev, &canonical);
    sqlx::query(
        "INSERT INTO audit_log (seq, at, actor, action, target, details, prev_hash, hash, \
         outcome, session_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(seq)
    .bind(at.micros())
    .bind(actor)
    .bind(entry.action.as_str())
    .bind(entry.target.as_deref())
    .bind(details)
    .bind(prev)
    .bind(hash.to_vec())
    .bind(entry.outcome.as_str())
    .bind(entry.session_id.as_deref())
    .execute(&mut **tx)
    .await?;
    sqlx::query("UPDATE audit_head SET hash = $1 WHERE id = 1")
        .bind(hash.to_vec())
        .execute(&mut **tx)
        .await?;
    Ok(seq)
}

/// Walks entries in order, checking each link and hash.
pub(super) struct ChainWalker {
    pub(super) expected: i64,
    pub(super) running: Vec<u8>,
    pub(super) checked: u64,
}

/// One stored entry, as read for verification.
pub(super) struct StoredEntry<'a>(
    pub(super) i64,
    pub(super) i64,
    pub(super) std::borrow::Cow<'a, str>,
    pub(super) std::borrow::Cow<'a, str>,
    pub(super) Option<std::borrow::Cow<'a, str>>,
    pub(super) std::borrow::Cow<'a, str>,
    pub(super) Vec<u8>,
    pub(super) Vec<u8>,
    /// Outcome.
    pub(super) std::borrow::Cow<'a, str>,
    /// Session.
    pub(super) Option<std::borrow::Cow<'a, str>>,
);

impl ChainWalker {
    /// Checks the next entry; on a fault, returns the seq it names and why.
    pub(super) fn check(&mut self, e: &StoredEntry<'_>) -> Option<(i64, ChainFault)> {
        let seq = e.0;
        if seq != self.expected {
            return Some((self.expected, ChainFault::Missing { found: Some(seq) }));
        }
        if e.6 != self.running {
            return Some((seq, ChainFault::BrokenLink));
        }
        let canonical = canonical_bytes_with(
            seq,
            e.1,
            &e.2,
            &e.3,
            e.4.as_deref(),
            &e.5,
            &e.8,
            e.9.as_deref(),
        );
        if e.7.as_slice() != chain_hash(&e.6, &canonical).as_slice() {
            return Some((seq, ChainFault::HashMismatch));
        }
        self.running.clone_from(&e.7);
        self.checked += 1;
        self.expected += 1;
        None
    }

    /// The verdict once every entry was read (or the first fault was found).
    pub(super) fn finish(
        self,
        fault: Option<(i64, ChainFault)>,
        head_seq: i64,
        head_hash: &[u8],
    ) -> Verification {
        let last_seq = self.expected - 1;
        match fault {
            Some((seq, fault)) => Verification::Broken {
                seq,
                fault,
                entries_ok: self.checked,
            },
            None if head_seq > last_seq => Verification::Broken {
                seq: last_seq + 1,
                fault: ChainFault::Truncated { head_seq },
                entries_ok: self.checked,
            },
            None if head_hash != self.running.as_slice() => Verification::Broken {
                seq: last_seq,
                fault: ChainFault::HeadMismatch,
                entries_ok: self.checked,
            },
            None => Verification::Ok {
                entries: self.checked,
                last_seq,
            },
        }
    }
}

/// Entries per page of the SQLite walk.
const PAGE: i64 = 4_096;

pub(super) async fn verify(store: &Store) -> Result<Verification, StoreError> {
    // One snapshot for the head and the entries, so concurrent appends don't look like faults.
    let backend = store.backend();
    let mut tx = match backend {
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
    let (head_seq, head_hash): (i64, Vec<u8>) = (head.try_get(0)?, head.try_get(1)?);
    let start: i64 = head.try_get(2)?;
    let mut walker = ChainWalker {
        expected: start + 1,
        running: head.try_get(3)?,
        checked: 0,
    };
    let mut fault = None;
    match backend {
        Backend::Postgres => {
            let mut rows = sqlx::query(
                "SELECT seq, at, actor, action, target, details, prev_hash, hash, outcome, \
                 session_id FROM audit_log WHERE seq > $1 ORDER BY seq",
            )
            .bind(start)
            .fetch(&mut *tx);
            while let Some(r) = rows.try_next().await? {
                let entry = StoredEntry(
                    r.try_get(0)?,
                    r.try_get(1)?,
                    r.try_get::<&str, _>(2)?.into(),
                    r.try_get::<&str, _>(3)?.into(),
                    r.try_get::<Option<&str>, _>(4)?.map(Into::into),
                    r.try_get::<&str, _>(5)?.into(),
                    r.try_get(6)?,
                    r.try_get(7)?,
                    r.try_get::<&str, _>(8)?.into(),
                    r.try_get::<Option<&str>, _>(9)?.map(Into::into),
                );
                fault = walker.check(&entry);
                if fault.is_some() {
                    break;
                }
            }
        }
        Backend::Sqlite => {
            // SQLite hands each result row from its worker thread to this task separately, and
            // that hand-over costs more than the hashing; a page of entries travels as one JSON
            // row instead (blobs as hex), which walks the chain several times faster.
            let mut after = start;
            loop {
                let page: Option<String> = sqlx::query(
                    "SELECT json_group_array(json_array(seq, at, actor, action, target, details, \
                     hex(prev_hash), hex(hash), outcome, session_id) ORDER BY seq) FROM \
                     (SELECT * FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2) \
                     HAVING COUNT(*) > 0",
                )
                .bind(after)
                .bind(PAGE)
                .fetch_optional(&mut *tx)
                .await?
                .map(|r| r.try_get(0))
                .transpose()?;
                let Some(page) = page else { break };
                let entries: Vec<HexEntry<'_>> =
                    serde_json::from_str(&page).map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
                let n = entries.len() as i64;
                for h in entries {
                    after = h.0;
                    let entry = StoredEntry(
                        h.0,
                        h.1,
                        h.2,
                        h.3,
                        h.4,
                        h.5,
                        hex::decode(h.6.as_ref()).unwrap_or_default(),
                        hex::decode(h.7.as_ref()).unwrap_or_default(),
                        h.8,
                        h.9,
                    );
                    fault = walker.check(&entry);
                    if fault.is_some() {
                        break;
                    }
                }
                if fault.is_some() || n < PAGE {
                    break;
                }
            }
        }
    }
    tx.rollback().await?;
    Ok(walker.finish(fault, head_seq, &head_hash))
}

/// An entry as the SQLite page query returns it: blobs in hex.
#[derive(serde::Deserialize)]
struct HexEntry<'a>(
    i64,
    i64,
    #[serde(borrow)] std::borrow::Cow<'a, str>,
    #[serde(borrow)] std::borrow::Cow<'a, str>,
    #[serde(borrow)] Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow)] std::borrow::Cow<'a, str>,
    #[serde(borrow)] std::borrow::Cow<'a, str>,
    #[serde(borrow)] std::borrow::Cow<'a, str>,
    #[serde(borrow)] std::borrow::Cow<'a, str>,
    #[serde(borrow)] Option<std::borrow::Cow<'a, str>>,
);

pub(super) async fn list(store: &Store, f: &AuditFilter) -> Result<Vec<AuditEntry>, StoreError> {
    let limit = i64::from(f.limit.unwrap_or(50).clamp(1, 10_000));
    let rows = sqlx::query(
        "SELECT seq, at, actor, action, target, details, prev_hash, hash, outcome, session_id \
         FROM audit_log \
         WHERE ($1 IS NULL OR actor = $1) AND ($2 IS NULL OR action = $2) \
           AND ($3 IS NULL OR at >= $3) AND ($5 IS NULL OR seq < $5) \
         ORDER BY seq DESC LIMIT $4",
    )
    .bind(f.actor.as_deref())
    .bind(f.action.as_deref())
    .bind(f.since.map(Timestamp::micros))
    .bind(limit)
    .bind(f.before_seq)
    .fetch_all(store.pool())
    .await?;
    crate::store::map_rows(&rows, entry)
}

/// The usernames of the `user:<id>` references among `actors`.
pub(super) async fn usernames(
    store: &Store,
    actors: &[&str],
) -> Result<std::collections::HashMap<String, String>, StoreError> {
    let mut out = std::collections::HashMap::new();
    let mut conn = store.pool().acquire().await?;
    for actor in actors {
        let Some(id) = actor.strip_prefix("user:") else {
            continue;
        };
        if out.contains_key(*actor) {
            continue;
        }
        let name: Option<String> = sqlx::query("SELECT username FROM users WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut *conn)
            .await?
            .map(|r| r.try_get(0))
            .transpose()?;
        if let Some(name) = name {
            out.insert((*actor).to_owned(), name);
        }
    }
    Ok(out)
}

pub(super) async fn head_seq(store: &Store) -> Result<i64, StoreError> {
    Ok(sqlx::query("SELECT seq FROM audit_head WHERE id = 1")
        .fetch_one(store.pool())
        .await?
        .try_get(0)?)
}

/// An entry as `SELECT seq, at, actor, action, target, details, prev_hash, hash, outcome,
/// session_id` reads it.
fn entry(r: &sqlx::any::AnyRow) -> Result<AuditEntry, sqlx::Error> {
    Ok(AuditEntry {
        seq: r.try_get(0)?,
        at: Timestamp::from_micros(r.try_get(1)?),
        actor: r.try_get(2)?,
        action: r.try_get(3)?,
        target: r.try_get(4)?,
        details: r.try_get(5)?,
        prev_hash: r.try_get(6)?,
        hash: r.try_get(7)?,
        outcome: r.try_get(8)?,
        session_id: r.try_get(9)?,
    })
}

/// Where the live chain starts: the last archived entry's sequence number and hash.
pub(super) async fn checkpoint(store: &Store) -> Result<(i64, Vec<u8>), StoreError> {
    let r = sqlx::query("SELECT archived_through_seq, archived_hash FROM audit_head WHERE id = 1")
        .fetch_one(store.pool())
        .await?;
    Ok((r.try_get(0)?, r.try_get(1)?))
}

/// Up to `limit` live entries after `after`, in order, written before `before`.
pub(super) async fn entries_before(
    store: &Store,
    after: i64,
    before: Timestamp,
    limit: i64,
) -> Result<Vec<AuditEntry>, StoreError> {
    let rows = sqlx::query(
        "SELECT seq, at, actor, action, target, details, prev_hash, hash, outcome, session_id \
         FROM audit_log \
         WHERE seq > $1 AND at < $2 ORDER BY seq LIMIT $3",
    )
    .bind(after)
    .bind(before.micros())
    .bind(limit)
    .fetch_all(store.pool())
    .await?;
    crate::store::map_rows(&rows, entry)
}

/// Live entries written before `before`: how many, and the oldest time.
pub(super) async fn count_before(
    store: &Store,
    before: Timestamp,
) -> Result<(i64, Option<i64>), StoreError> {
    let r = sqlx::query("SELECT COUNT(*), MIN(at) FROM audit_log WHERE at < $1")
        .bind(before.micros())
        .fetch_one(store.pool())
        .await?;
    Ok((r.try_get(0)?, r.try_get(1)?))
}

/// Removes entries `first..=last` from the live table and moves the checkpoint past them, if
/// the checkpoint is still just before `first` (another archiver did not get there first).
pub(super) async fn retire(
    tx: &mut Tx,
    first: i64,
    last: i64,
    last_hash: &[u8],
) -> Result<bool, StoreError> {
    if crate::store::backend_of(tx) == Backend::Postgres {
        return crate::store::team::audit_retire(tx, first, last, last_hash).await;
    }
    let moved = sqlx::query(
        "UPDATE audit_head SET archived_through_seq = $1, archived_hash = $2 \
         WHERE id = 1 AND archived_through_seq = $3",
    )
    .bind(last)
    .bind(last_hash.to_vec())
    .bind(first - 1)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    if moved == 0 {
        return Ok(false);
    }
    sqlx::query("DELETE FROM audit_log WHERE seq >= $1 AND seq <= $2")
        .bind(first)
        .bind(last)
        .execute(&mut **tx)
        .await?;
    Ok(true)
}
