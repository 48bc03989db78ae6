//! SQL of the platform tables: multi-row inserts sized to stay under both backends' limits
//! on bound parameters.

use sqlx::any::AnyArguments;
use sqlx::query::Query;
use sqlx::{Any, Row};

use super::{NewActivity, NewComment, NewEvent, NewPlatformUser, NewReaction, PlatformCounts};
use crate::store::{backend_of, values_placeholders, Store, StoreError, Timestamp, Tx};

/// Bound parameters per statement: below SQLite's 32,766 and Postgres' 65,535.
const MAX_PARAMS: usize = 30_000;

type AnyQuery<'q> = Query<'q, Any, AnyArguments<'q>>;

/// Inserts `rows` in statements of as many rows as fit, binding each row with `bind`.
async fn insert_many<T>(
    tx: &mut Tx,
    head: &str,
    cols: usize,
    rows: &[T],
    bind: impl for<'q> Fn(AnyQuery<'q>, &'q T) -> AnyQuery<'q>,
) -> Result<u64, StoreError> {
    let per = (MAX_PARAMS / cols).max(1);
    let backend = backend_of(tx);
    let mut done = 0;
    let mut full_sql = None;
    for chunk in rows.chunks(per) {
        let sql = if chunk.len() == per {
            full_sql
                .get_or_insert_with(|| {
                    format!("{head} VALUES {}", values_placeholders(backend, per, cols))
                })
                .clone()
        } else {
            format!(
                "{head} VALUES {}",
                values_placeholders(backend, chunk.len(), cols)
            )
        };
        let mut q = sqlx::query(&sql);
        for row in chunk {
            q = bind(q, row);
        }
        done += q.execute(&mut **tx).await?.rows_affected();
    }
    Ok(done)
}

pub(super) async fn insert_users(
    tx: &mut Tx,
    users: &[NewPlatformUser],
) -> Result<u64, StoreError> {
    insert_many(
        tx,
        "INSERT INTO users (id, username, display_name, kind, status, country, created_at, \
         updated_at, last_login_at)",
        9,
        users,
        |q, u| {
            q.bind(u.id.to_string())
                .bind(u.username.as_str())
                .bind(u.display_name.as_str())
                .bind("platform")
                .bind("active")
                .bind(u.country.as_str())
                .bind(u.created_at.micros())
                .bind(u.created_at.micros())
                .bind(u.last_login_at.map(Timestamp::micros))
        },
    )
    .await
}

pub(super) async fn insert_events(tx: &mut Tx, events: &[NewEvent]) -> Result<u64, StoreError> {
    insert_many(
        tx,
        "INSERT INTO events (id, title, starts_at, ends_at, created_at)",
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
    comments: &[NewComment],
) -> Result<u64, StoreError> {
    insert_many(
        tx,
        "INSERT INTO comments (id, event_id, author_id, is_private, body, created_at)",
        6,
        comments,
        |q, c| {
            q.bind(c.id.to_string())
                .bind(c.event_id.to_string())
                .bind(c.author_id.to_string())
                .bind(false)
                .bind(c.body.as_str())
                .bind(c.created_at.micros())
        },
    )
    .await
}

pub(super) async fn insert_reactions(
    tx: &mut Tx,
    reactions: &[NewReaction],
) -> Result<u64, StoreError> {
    insert_many(
        tx,
        "INSERT INTO reactions (id, comment_id, user_id, kind, created_at)",
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

pub(super) async fn insert_activity(
    tx: &mut Tx,
    activity: &[NewActivity],
    ingested_at: Timestamp,
) -> Result<u64, StoreError> {
    insert_many(
        tx,
        "INSERT INTO activity_log (id, user_id, kind, outcome, reason, occurred_at, \
         ingested_at, user_agent, country, ref_id)",
        10,
        activity,
        |q, a| {
            q.bind(a.id.to_string())
                .bind(a.user_id.map(|u| u.to_string()))
                .bind(a.kind)
                .bind(a.outcome)
                .bind(a.reason)
                .bind(a.occurred_at.micros())
                .bind(ingested_at.micros())
                .bind(a.user_agent.as_str())
                .bind(a.country.as_str())
                .bind(a.ref_id.map(|r| r.to_string()))
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
