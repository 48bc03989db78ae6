//! SQL of the monitoring module: resolving ingested names, the run's checkpoint, the activity
//! stream the detectors read, the accounts' learned habits and the comments to screen.

use std::collections::{HashMap, HashSet};

use sqlx::Row;

use super::detect::{Event, Kind, Profile};
use super::shard::Shard;
use crate::store::{Backend, Store, StoreError, Timestamp, Tx};

type Result<T> = std::result::Result<T, StoreError>;

/// Ids of the platform accounts among `names`.
pub(super) async fn resolve_users(
    store: &Store,
    names: &[&str],
) -> Result<HashMap<String, uuid::Uuid>> {
    let mut out = HashMap::new();
    for chunk in names.chunks(500) {
        let marks: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
        let sql = format!(
            "SELECT username, id FROM users WHERE kind = 'platform' AND username IN ({})",
            marks.join(", ")
        );
        // Planned for its values each time: once Postgres switches a prepared statement to a
        // generic plan, it cannot hash a list of parameters and scans the accounts comparing
        // each with all of them (40-80 ms a batch with 2,000 accounts, where a plan for the
        // values takes 1 ms).
        let mut q = sqlx::query(&sql).persistent(false);
        for n in chunk {
            q = q.bind(*n);
        }
        for r in q.fetch_all(store.pool()).await? {
            let id: String = r.try_get(1)?;
            if let Ok(id) = uuid::Uuid::parse_str(&id) {
                out.insert(r.try_get(0)?, id);
            }
        }
    }
    Ok(out)
}

/// Which of `ids` are live events.
pub(super) async fn existing_events(
    store: &Store,
    ids: &[uuid::Uuid],
) -> Result<HashSet<uuid::Uuid>> {
    existing(store, "events", ids).await
}

/// Which of `ids` are comments.
pub(super) async fn existing_comments(
    store: &Store,
    ids: &[uuid::Uuid],
) -> Result<HashSet<uuid::Uuid>> {
    existing(store, "comments", ids).await
}

async fn existing(store: &Store, table: &str, ids: &[uuid::Uuid]) -> Result<HashSet<uuid::Uuid>> {
    let mut out = HashSet::new();
    for chunk in ids.chunks(500) {
        let marks: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
        let sql = format!("SELECT id FROM {table} WHERE id IN ({})", marks.join(", "));
        let mut q = sqlx::query(&sql);
        for id in chunk {
            q = q.bind(id.to_string());
        }
        for r in q.fetch_all(store.pool()).await? {
            let id: String = r.try_get(0)?;
            if let Ok(id) = uuid::Uuid::parse_str(&id) {
                out.insert(id);
            }
        }
    }
    Ok(out)
}

/// The checkpoint: the ingestion time up to which activity has been judged.
pub(super) async fn checkpoint(store: &Store, name: &str) -> Result<i64> {
    let row = sqlx::query("SELECT position FROM monitor_checkpoints WHERE name = $1")
        .bind(name)
        .fetch_optional(store.pool())
        .await?;
    Ok(match row {
        Some(r) => r
            .try_get::<String, _>(0)?
            .parse()
            .map_err(|_| StoreError::Corrupt("monitor_checkpoints.position"))?,
        None => i64::MIN,
    })
}

pub(super) async fn set_checkpoint(
    tx: &mut Tx,
    name: &str,
    position: i64,
    now: Timestamp,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO monitor_checkpoints (name, position, updated_at) VALUES ($1, $2, $3) \
         ON CONFLICT (name) DO UPDATE SET position = excluded.position, \
         updated_at = excluded.updated_at",
    )
    .bind(name)
    .bind(position.to_string())
    .bind(now.micros())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Every checkpoint of the detectors, by name: the one from before shards
/// (`detectors`) and the shards' (`detectors/K/N`).
pub(super) async fn detector_checkpoints(store: &Store) -> Result<Vec<(String, i64)>> {
    let rows = sqlx::query(
        "SELECT name, position FROM monitor_checkpoints \
         WHERE name = $1 OR name LIKE $2 ORDER BY name",
    )
    .bind(super::shard::CHECKPOINT)
    .bind(format!("{}/%", super::shard::CHECKPOINT))
    .fetch_all(store.pool())
    .await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let position: String = r.try_get(1)?;
        let position = position
            .parse()
            .map_err(|_| StoreError::Corrupt("monitor_checkpoints.position"))?;
        out.push((r.try_get(0)?, position));
    }
    Ok(out)
}

/// Replaces every checkpoint of the detectors with `names`, each at `position`.
pub(super) async fn replace_detector_checkpoints(
    tx: &mut Tx,
    names: &[String],
    position: i64,
    now: Timestamp,
) -> Result<()> {
    sqlx::query("DELETE FROM monitor_checkpoints WHERE name = $1 OR name LIKE $2")
        .bind(super::shard::CHECKPOINT)
        .bind(format!("{}/%", super::shard::CHECKPOINT))
        .execute(&mut **tx)
        .await?;
    for name in names {
        set_checkpoint(tx, name, position, now).await?;
    }
    Ok(())
}

/// The span of occurrence times of activity ingested after `after` up to the snapshot `snap`
/// (an ingestion time read through the fence, [`Store::settled_ingestion`], now or earlier):
/// `(first, last, count)`.
pub(super) async fn new_span(
    store: &Store,
    after: i64,
    snap: i64,
) -> Result<Option<(i64, i64, i64)>> {
    if snap <= after {
        return Ok(None);
    }
    let r = sqlx::query(
        "SELECT MIN(occurred_at), MAX(occurred_at), COUNT(*) FROM activity_log \
         WHERE ingested_at > $1 AND ingested_at <= $2",
    )
    .bind(after)
    .bind(snap)
    .fetch_one(store.pool())
    .await?;
    let (lo, hi): (Option<i64>, Option<i64>) = (r.try_get(0)?, r.try_get(1)?);
    Ok(match (lo, hi) {
        (Some(lo), Some(hi)) => Some((lo, hi, r.try_get(2)?)),
        _ => None,
    })
}

/// Each account's habits from its successful activity before `before`.
pub(super) async fn profiles(store: &Store, before: i64) -> Result<HashMap<uuid::Uuid, Profile>> {
    let rows = sqlx::query(
        "SELECT user_id, (occurred_at / 3600000000) % 24, country, COUNT(*) FROM activity_log \
         WHERE occurred_at < $1 AND user_id IS NOT NULL AND outcome = 'success' \
         GROUP BY user_id, (occurred_at / 3600000000) % 24, country",
    )
    .bind(before)
    .fetch_all(store.pool())
    .await?;
    let mut out: HashMap<uuid::Uuid, Profile> = HashMap::new();
    for r in rows {
        let user: String = r.try_get(0)?;
        let Ok(user) = uuid::Uuid::parse_str(&user) else {
            continue;
        };
        let hour: i64 = r.try_get(1)?;
        let country: Option<String> = r.try_get(2)?;
        let n = u32::try_from(r.try_get::<i64, _>(3)?).unwrap_or(u32::MAX);
        let p = out.entry(user).or_default();
        p.hours[hour.rem_euclid(24) as usize] += n;
        p.total += n;
        if let Some(c) = country.filter(|c| !c.is_empty()) {
            *p.countries.entry(c).or_default() += n;
        }
    }
    Ok(out)
}

/// A page of `shard`'s part of the activity stream in time order after `(at, id)`, up to
/// `hi`; each event is fresh if ingested in `(after, snap]`. A comment submission comes with
/// its comment's id and public text (none if private or removed).
///
/// The position is a row-value comparison, which both databases take as the lower bound of an
/// index range on `(occurred_at, id)`. Written as an `OR` of "later" and "as late with a
/// greater id", Postgres bounded its scan above only and read every page from the start of
/// the range, so a run's time grew with the square of its records.
#[allow(clippy::too_many_arguments)]
pub(super) async fn stream_page(
    store: &Store,
    shard: Shard,
    from: (i64, &str),
    hi: i64,
    after: i64,
    snap: i64,
    limit: i64,
) -> Result<Vec<(Event, Option<(String, String)>)>> {
    let sql = format!(
        "SELECT a.id, a.user_id, a.kind, a.outcome, a.occurred_at, a.ingested_at, a.ip_bidx, \
                a.details, a.country, a.ref_id, c.body \
         FROM activity_log a LEFT JOIN comments c ON a.kind = 'comment' AND c.id = a.ref_id \
              AND c.deleted_at IS NULL \
         WHERE (a.occurred_at, a.id) > ($1, $2) \
           AND a.occurred_at <= $3 AND a.ingested_at <= $4 {} \
         ORDER BY a.occurred_at, a.id LIMIT $5",
        shard_filter(store.backend(), shard)
    );
    let rows = sqlx::query(&sql)
        .bind(from.0)
        .bind(from.1)
        .bind(hi)
        .bind(snap)
        .bind(limit)
        .fetch_all(store.pool())
        .await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let user: Option<String> = r.try_get(1)?;
        let kind: String = r.try_get(2)?;
        let outcome: String = r.try_get(3)?;
        let ingested: i64 = r.try_get(5)?;
        let ip: Option<Vec<u8>> = r.try_get(6)?;
        let details: String = r.try_get(7)?;
        let country: Option<String> = r.try_get(8)?;
        let kind = Kind::from_stored(&kind);
        let ref_id: Option<String> = r.try_get(9)?;
        let body: Option<String> = r.try_get(10)?;
        out.push((
            Event {
                id: r.try_get(0)?,
                user: user.and_then(|u| uuid::Uuid::parse_str(&u).ok()),
                kind,
                ok: outcome == "success",
                at: r.try_get(4)?,
                ip: ip.and_then(|b| <[u8; 32]>::try_from(b.as_slice()).ok()),
                target: target_of(&details),
                country: country.filter(|c| !c.is_empty()),
                fresh: ingested > after,
            },
            ref_id.zip(body).filter(|_| kind == Kind::Comment),
        ));
    }
    Ok(out)
}

/// The records `shard` reads, as a condition on `activity_log a` (empty for a single shard):
/// those of its accounts, the sign-ins from its sources (and any record of a source with no
/// account), and with shard 0 the records naming neither. The same numbers as
/// [`Shard::owns_account`] (the id's last four hex digits) and [`Shard::owns_source`] (the
/// blind index's first two bytes), computed by each database's own functions. A record whose
/// id or index has an unexpected length is read by every shard; the detectors decide.
fn shard_filter(backend: Backend, shard: Shard) -> String {
    let (n, k) = (shard.count().get(), shard.index());
    if n == 1 {
        return String::new();
    }
    let (account, source) = match backend {
        Backend::Postgres => (
            "('x' || right(a.user_id, 4))::bit(16)::int".to_owned(),
            "(get_byte(a.ip_bidx, 0) * 256 + get_byte(a.ip_bidx, 1))".to_owned(),
        ),
        Backend::Sqlite => {
            let digits = |text: &str, first: usize, alphabet: &str| {
                (0..4)
                    .map(|i| {
                        format!(
                            "(instr('{alphabet}', substr({text}, {}, 1)) - 1) * {}",
                            first + i,
                            1 << (4 * (3 - i))
                        )
                    })
                    .collect::<Vec<_>>()
                    .join(" + ")
            };
            (
                format!("({})", digits("lower(a.user_id)", 33, "0123456789abcdef")),
                format!("({})", digits("hex(a.ip_bidx)", 1, "0123456789ABCDEF")),
            )
        }
    };
    let neither = if k == 0 {
        " OR (a.user_id IS NULL AND a.ip_bidx IS NULL)"
    } else {
        ""
    };
    format!(
        "AND ((a.user_id IS NOT NULL AND (length(a.user_id) <> 36 OR {account} % {n} = {k})) \
          OR ((a.kind = 'login' OR a.user_id IS NULL) AND a.ip_bidx IS NOT NULL \
              AND (length(a.ip_bidx) <> 32 OR {source} % {n} = {k})){neither})"
    )
}

/// The `target` hash of an activity's details, if any.
fn target_of(details: &str) -> Option<[u8; 32]> {
    let at = details.find("\"target\":\"")? + 10;
    let hex_str = details.get(at..at + 64)?;
    let mut out = [0u8; 32];
    hex::decode_to_slice(hex_str, &mut out).ok()?;
    Some(out)
}

/// The sealed source addresses of the records `ids` that have one, by record id.
pub(super) async fn sealed_ips(store: &Store, ids: &[&str]) -> Result<HashMap<String, Vec<u8>>> {
    let mut out = HashMap::new();
    for chunk in ids.chunks(500) {
        let marks: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
        let sql = format!(
            "SELECT id, ip_enc FROM activity_log WHERE id IN ({}) AND ip_enc IS NOT NULL",
            marks.join(", ")
        );
        let mut q = sqlx::query(&sql);
        for id in chunk {
            q = q.bind(*id);
        }
        for r in q.fetch_all(store.pool()).await? {
            out.insert(r.try_get(0)?, r.try_get(1)?);
        }
    }
    Ok(out)
}

/// The catch-all live event for ingested comments that name none, created once.
pub(super) async fn ingest_event(tx: &mut Tx, now: Timestamp) -> Result<uuid::Uuid> {
    let id = uuid::Uuid::from_u128(0x0000_0000_0000_7000_8000_0000_0000_0001);
    sqlx::query(
        "INSERT INTO events (id, title, starts_at, ends_at, created_at) \
         VALUES ($1, 'Ingested comments', $2, NULL, $2) ON CONFLICT (id) DO NOTHING",
    )
    .bind(id.to_string())
    .bind(now.micros())
    .execute(&mut **tx)
    .await?;
    Ok(id)
}
