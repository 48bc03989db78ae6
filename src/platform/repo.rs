//! SQL of the platform tables: multi-row inserts sized to stay under both backends' limits
//! on bound parameters.

use sqlx::any::{AnyArguments, AnyRow};
use sqlx::query::Query;
use sqlx::{Any, Row};

use super::{NewActivity, NewComment, NewEvent, NewPlatformUser, NewReaction, PlatformCounts};

/// A platform account with its personal fields sealed.
pub(super) struct SealedUser<'a> {
    pub id: String,
    pub user: &'a NewPlatformUser,
    pub email_enc: Option<Vec<u8>>,
    pub email_bidx: Option<Vec<u8>>,
    pub phone_enc: Option<Vec<u8>>,
    pub contact_version: Option<i64>,
    pub bidx_version: Option<i64>,
}

/// A comment with its keyed content hash and, if private, its serialised envelope.
pub(super) struct HashedComment<'a> {
    pub comment: &'a NewComment,
    pub body: Option<&'a str>,
    pub envelope: Option<Vec<u8>>,
    pub content_hash: Vec<u8>,
    pub hash_version: i64,
}

/// One recipient of a private comment.
pub(super) struct Recipient {
    pub comment_id: String,
    pub user_id: String,
    pub fingerprint: String,
    pub wrapped_key: Vec<u8>,
}

/// An activity record with its source IP sealed.
pub(super) struct SealedActivity<'a> {
    pub id: String,
    pub activity: &'a NewActivity,
    pub ip_enc: Option<Vec<u8>>,
    pub ip_bidx: Option<Vec<u8>>,
    pub network_version: Option<i64>,
    pub bidx_version: Option<i64>,
}
use crate::store::daily_counts::{CountChanges, Metric};
use crate::store::{backend_of, values_placeholders, Store, StoreError, Timestamp, Tx, MAX_PARAMS};

type AnyQuery<'q> = Query<'q, Any, AnyArguments<'q>>;

/// Takes each row a `RETURNING` clause returns.
type Returned<'a> = &'a mut (dyn FnMut(&AnyRow) -> Result<(), StoreError> + Send);

/// Inserts `rows` in statements of as many rows as fit, binding each row with `bind`.
async fn insert_many<T>(
    tx: &mut Tx,
    head: &str,
    tail: &str,
    cols: usize,
    rows: &[T],
    bind: impl for<'q> Fn(AnyQuery<'q>, &'q T) -> AnyQuery<'q>,
) -> Result<u64, StoreError> {
    insert_chunks(tx, head, tail, cols, rows, bind, None).await
}

/// [`insert_many`], handing each row a `RETURNING` clause in `tail` returns to `returned`
/// (the rows actually inserted, with `ON CONFLICT DO NOTHING`); returns how many there were.
async fn insert_many_returning<T>(
    tx: &mut Tx,
    head: &str,
    tail: &str,
    cols: usize,
    rows: &[T],
    bind: impl for<'q> Fn(AnyQuery<'q>, &'q T) -> AnyQuery<'q>,
    returned: Returned<'_>,
) -> Result<u64, StoreError> {
    insert_chunks(tx, head, tail, cols, rows, bind, Some(returned)).await
}

async fn insert_chunks<T>(
    tx: &mut Tx,
    head: &str,
    tail: &str,
    cols: usize,
    rows: &[T],
    bind: impl for<'q> Fn(AnyQuery<'q>, &'q T) -> AnyQuery<'q>,
    mut returned: Option<Returned<'_>>,
) -> Result<u64, StoreError> {
    let per = (MAX_PARAMS / cols).max(1);
    let backend = backend_of(tx);
    let mut done = 0;
    let mut full_sql = None;
    for chunk in rows.chunks(per) {
        let sql = if chunk.len() == per {
            full_sql
                .get_or_insert_with(|| {
                    format!(
                        "{head} VALUES {}{tail}",
                        values_placeholders(backend, per, cols)
                    )
                })
                .clone()
        } else {
            format!(
                "{head} VALUES {}{tail}",
                values_placeholders(backend, chunk.len(), cols)
            )
        };
        let mut q = sqlx::query(&sql);
        for row in chunk {
            q = bind(q, row);
        }
        match returned.as_mut() {
            None => done += q.execute(&mut **tx).await?.rows_affected(),
            Some(f) => {
                let got = q.fetch_all(&mut **tx).await?;
                for r in &got {
                    f(r)?;
                }
                done += got.len() as u64;
            }
        }
    }
    Ok(done)
}

pub(super) async fn insert_users(tx: &mut Tx, users: &[SealedUser<'_>]) -> Result<u64, StoreError> {
    insert_many(
        tx,
        "INSERT INTO users (id, username, display_name, kind, status, country, created_at, \
         updated_at, last_login_at, email_enc, email_bidx, phone_enc, contact_key_version, \
         bidx_key_version)",
        "",
        14,
        users,
        |q, s| {
            let u = s.user;
            q.bind(s.id.as_str())
                .bind(u.username.as_str())
                .bind(u.display_name.as_str())
                .bind("platform")
                .bind("active")
                .bind(u.country.as_str())
                .bind(u.created_at.micros())
                .bind(u.created_at.micros())
                .bind(u.last_login_at.map(Timestamp::micros))
                .bind(s.email_enc.as_deref())
                .bind(s.email_bidx.as_deref())
                .bind(s.phone_enc.as_deref())
                .bind(s.contact_version)
                .bind(s.bidx_version)
        },
    )
    .await
}

pub(super) async fn insert_events(tx: &mut Tx, events: &[NewEvent]) -> Result<u64, StoreError> {
    insert_many(
        tx,
        "INSERT INTO events (id, title, starts_at, ends_at, created_at)",
        " ON CONFLICT (id) DO NOTHING",
        5,
        events,
        |q, e| {
            q.bind(e.id.to_string())
                .bind(e.title.as_str())
                .bind(e.starts_at.micros())
                .bind(e.ends_at.micros())
                .bind(e.starts_at.micros())
        },
    )
    .await
}

pub(super) async fn insert_comments(
    tx: &mut Tx,
    comments: &[HashedComment<'_>],
) -> Result<u64, StoreError> {
    insert_many(
        tx,
        "INSERT INTO comments (id, event_id, author_id, is_private, body, body_envelope, \
         content_hash, hash_key_version, created_at)",
        " ON CONFLICT (id) DO NOTHING",
        9,
        comments,
        |q, h| {
            let c = h.comment;
            q.bind(c.id.to_string())
                .bind(c.event_id.to_string())
                .bind(c.author_id.to_string())
                .bind(h.envelope.is_some())
                .bind(h.body)
                .bind(h.envelope.as_deref())
                .bind(h.content_hash.as_slice())
                .bind(h.hash_version)
                .bind(c.created_at.micros())
        },
    )
    .await
}

pub(super) async fn insert_recipients(tx: &mut Tx, rows: &[Recipient]) -> Result<u64, StoreError> {
    insert_many(
        tx,
        "INSERT INTO comment_recipients (comment_id, recipient_id, key_fingerprint, wrapped_key)",
        "",
        4,
        rows,
        |q, r| {
            q.bind(r.comment_id.as_str())
                .bind(r.user_id.as_str())
                .bind(r.fingerprint.as_str())
                .bind(r.wrapped_key.as_slice())
        },
    )
    .await
}

/// A private comment's envelope, and the key fingerprint recorded for `reader` (`None` if the
/// reader is not a recipient). `None` overall if there is no such private comment.
pub(super) async fn private_comment(
    store: &Store,
    comment_id: &str,
    reader: &str,
) -> Result<Option<(Vec<u8>, Option<String>)>, StoreError> {
    let row = sqlx::query(
        "SELECT c.body_envelope, r.key_fingerprint FROM comments c \
         LEFT JOIN comment_recipients r ON r.comment_id = c.id AND r.recipient_id = $2 \
         WHERE c.id = $1 AND c.body_envelope IS NOT NULL",
    )
    .bind(comment_id)
    .bind(reader)
    .fetch_optional(store.pool())
    .await?;
    let Some(r) = row else { return Ok(None) };
    Ok(Some((r.try_get(0)?, r.try_get(1)?)))
}

/// The account whose email blind index is one of `candidates`.
pub(super) async fn user_by_email_bidx(
    store: &Store,
    candidates: &[Vec<u8>],
) -> Result<Option<String>, StoreError> {
    let mut found = None;
    for c in candidates {
        found = sqlx::query("SELECT id FROM users WHERE email_bidx = $1")
            .bind(c.as_slice())
            .fetch_optional(store.pool())
            .await?
            .map(|r| r.try_get(0))
            .transpose()?;
        if found.is_some() {
            break;
        }
    }
    Ok(found)
}

pub(super) async fn insert_reactions(
    tx: &mut Tx,
    reactions: &[NewReaction],
) -> Result<u64, StoreError> {
    insert_many(
        tx,
        "INSERT INTO reactions (id, comment_id, user_id, kind, created_at)",
        " ON CONFLICT DO NOTHING",
        5,
        reactions,
        |q, r| {
            q.bind(r.id.to_string())
                .bind(r.comment_id.to_string())
                .bind(r.user_id.to_string())
                .bind(r.kind)
                .bind(r.created_at.micros())
        },
    )
    .await
}

/// Inserts the records not stored yet, counting each one inserted into `counts`
/// ([`Metric::Activity`]).
pub(super) async fn insert_activity(
    tx: &mut Tx,
    activity: &[SealedActivity<'_>],
    ingested_at: Timestamp,
    counts: &mut CountChanges,
) -> Result<u64, StoreError> {
    insert_many_returning(
        tx,
        "INSERT INTO activity_log (id, user_id, kind, outcome, reason, occurred_at, \
         ingested_at, user_agent, country, ref_id, ip_enc, ip_bidx, network_key_version, \
         bidx_key_version, details)",
        " ON CONFLICT DO NOTHING RETURNING kind, occurred_at",
        15,
        activity,
        |q, s| {
            let a = s.activity;
            q.bind(s.id.as_str())
                .bind(a.user_id.map(|u| u.to_string()))
                .bind(a.kind)
                .bind(a.outcome)
                .bind(a.reason)
                .bind(a.occurred_at.micros())
                .bind(ingested_at.micros())
                .bind(a.user_agent.as_str())
                .bind(a.country.as_str())
                .bind(a.ref_id.map(|r| r.to_string()))
                .bind(s.ip_enc.as_deref())
                .bind(s.ip_bidx.as_deref())
                .bind(s.network_version)
                .bind(s.bidx_version)
                .bind(match a.target {
                    Some(t) => format!("{{\"target\":\"{}\"}}", hex::encode(t)),
                    None => "{}".to_owned(),
                })
        },
        &mut |r| {
            let kind: String = r.try_get(0)?;
            counts.add(Metric::Activity, r.try_get(1)?, &kind, 1);
            Ok(())
        },
    )
    .await
}

pub(super) async fn counts(store: &Store) -> Result<PlatformCounts, StoreError> {
    let row = sqlx::query(
        "SELECT (SELECT COUNT(*) FROM users WHERE kind = 'platform'), \
                (SELECT COUNT(*) FROM events), (SELECT COUNT(*) FROM comments), \
                (SELECT COUNT(*) FROM reactions), (SELECT COUNT(*) FROM activity_log)",
    )
    .fetch_one(store.pool())
    .await?;
    Ok(PlatformCounts {
        users: row.try_get(0)?,
        events: row.try_get(1)?,
        comments: row.try_get(2)?,
        reactions: row.try_get(3)?,
        activity: row.try_get(4)?,
    })
}

pub(super) async fn user_email_enc(store: &Store, id: &str) -> Result<Option<Vec<u8>>, StoreError> {
    Ok(sqlx::query("SELECT email_enc FROM users WHERE id = $1")
        .bind(id)
        .fetch_optional(store.pool())
        .await?
        .map(|r| r.try_get::<Option<Vec<u8>>, _>(0))
        .transpose()?
        .flatten())
}

pub(super) async fn first_usernames(store: &Store, n: u32) -> Result<Vec<String>, StoreError> {
    let rows = sqlx::query(
        "SELECT username FROM users WHERE kind = 'platform' ORDER BY created_at, id LIMIT $1",
    )
    .bind(i64::from(n))
    .fetch_all(store.pool())
    .await?;
    rows.iter()
        .map(|r| r.try_get(0))
        .collect::<Result<_, sqlx::Error>>()
        .map_err(StoreError::from)
}

/// Marks platform accounts deleted at `at` (those not deleted already).
pub(super) async fn mark_deleted(tx: &mut Tx, ids: &[String], at: i64) -> Result<u64, StoreError> {
    let mut done = 0;
    for chunk in ids.chunks(500) {
        let marks: Vec<String> = (2..chunk.len() + 2).map(|i| format!("${i}")).collect();
        let sql = format!(
            "UPDATE users SET status = 'deleted', deleted_at = $1, updated_at = $1 \
             WHERE kind = 'platform' AND status <> 'deleted' AND id IN ({})",
            marks.join(", ")
        );
        let mut q = sqlx::query(&sql).bind(at);
        for id in chunk {
            q = q.bind(id.as_str());
        }
        done += q.execute(&mut **tx).await?.rows_affected();
    }
    Ok(done)
}

pub(super) async fn sample_user_ids(store: &Store, n: u32) -> Result<Vec<String>, StoreError> {
    let total: i64 = sqlx::query("SELECT COUNT(*) FROM users WHERE kind = 'platform'")
        .fetch_one(store.pool())
        .await?
        .try_get(0)?;
    let step = (total / i64::from(n.max(1))).max(1);
    let rows = sqlx::query(
        "SELECT id FROM (SELECT id, ROW_NUMBER() OVER (ORDER BY id) AS rn FROM users \
         WHERE kind = 'platform') s WHERE rn % $1 = 0 LIMIT $2",
    )
    .bind(step)
    .bind(i64::from(n))
    .fetch_all(store.pool())
    .await?;
    rows.iter()
        .map(|r| r.try_get(0))
        .collect::<Result<_, sqlx::Error>>()
        .map_err(StoreError::from)
}
