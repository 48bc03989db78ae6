//! SQL of the outbox.

use sqlx::any::AnyRow;
use sqlx::Row;

use super::{OutboxMessage, OutboxState};
use crate::store::{map_rows, Store, StoreError, Timestamp, Tx};

pub(super) struct OutboxRow {
    pub id: String,
    pub kind: String,
    pub template: Option<String>,
    pub recipient_id: Option<String>,
    pub recipient: Option<String>,
    pub state: String,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub created_at: i64,
    pub next_attempt_at: Option<i64>,
    pub last_attempt_at: Option<i64>,
    pub sent_at: Option<i64>,
    pub payload: String,
}

impl OutboxRow {
    pub(super) fn into_message(self) -> OutboxMessage {
        let time = |t: Option<i64>| t.map(|t| Timestamp::from_micros(t).to_rfc3339());
        let state = OutboxState::parse(&self.state).unwrap_or(OutboxState::Failed);
        OutboxMessage {
            template: self.template.unwrap_or_else(|| self.kind.clone()),
            id: self.id,
            kind: self.kind,
            recipient_id: self.recipient_id,
            recipient: self.recipient,
            state,
            attempts: self.attempts,
            last_error: self.last_error,
            created_at: Timestamp::from_micros(self.created_at).to_rfc3339(),
            next_attempt_at: if state == OutboxState::Queued {
                time(self.next_attempt_at)
            } else {
                None
            },
            last_attempt_at: time(self.last_attempt_at),
            sent_at: time(self.sent_at),
        }
    }
}

const COLUMNS: &str = "n.id, n.kind, n.template, n.recipient_id, u.username, n.state, n.attempts, \
     n.last_error, n.created_at, n.next_attempt_at, n.last_attempt_at, n.sent_at, n.payload \
     FROM notifications n LEFT JOIN users u ON u.id = n.recipient_id";

fn row(r: &AnyRow) -> Result<OutboxRow, sqlx::Error> {
    Ok(OutboxRow {
        id: r.try_get(0)?,
        kind: r.try_get(1)?,
        template: r.try_get(2)?,
        recipient_id: r.try_get(3)?,
        recipient: r.try_get(4)?,
        state: r.try_get(5)?,
        attempts: r.try_get(6)?,
        last_error: r.try_get(7)?,
        created_at: r.try_get(8)?,
        next_attempt_at: r.try_get(9)?,
        last_attempt_at: r.try_get(10)?,
        sent_at: r.try_get(11)?,
        payload: r.try_get(12)?,
    })
}

pub(super) async fn insert(
    tx: &mut Tx,
    id: &str,
    kind: &str,
    recipient: &str,
    template: &str,
    payload: &str,
    now: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO notifications (id, kind, recipient_id, payload, created_at, template, \
         state, next_attempt_at) VALUES ($1, $2, $3, $4, $5, $6, 'queued', $5)",
    )
    .bind(id)
    .bind(kind)
    .bind(recipient)
    .bind(payload)
    .bind(now)
    .bind(template)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Queued messages whose next attempt is due, the longest waiting first.
pub(super) async fn due(store: &Store, now: i64, limit: i64) -> Result<Vec<OutboxRow>, StoreError> {
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} WHERE n.state = 'queued' \
         AND (n.next_attempt_at IS NULL OR n.next_attempt_at <= $1) \
         ORDER BY n.next_attempt_at, n.created_at, n.id LIMIT $2"
    ))
    .bind(now)
    .bind(limit)
    .fetch_all(store.pool())
    .await?;
    map_rows(&rows, row)
}

pub(super) async fn list(
    store: &Store,
    state: Option<&str>,
    limit: i64,
) -> Result<Vec<OutboxRow>, StoreError> {
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} WHERE ($1 IS NULL OR n.state = $1) \
         ORDER BY n.created_at DESC, n.id DESC LIMIT $2"
    ))
    .bind(state)
    .bind(limit)
    .fetch_all(store.pool())
    .await?;
    map_rows(&rows, row)
}

pub(super) async fn get(store: &Store, id: &str) -> Result<Option<OutboxRow>, StoreError> {
    let r = sqlx::query(&format!("SELECT {COLUMNS} WHERE n.id = $1"))
        .bind(id)
        .fetch_optional(store.pool())
        .await?;
    Ok(r.as_ref().map(row).transpose()?)
}

pub(super) async fn get_tx(tx: &mut Tx, id: &str) -> Result<Option<OutboxRow>, StoreError> {
    let r = sqlx::query(&format!("SELECT {COLUMNS} WHERE n.id = $1"))
        .bind(id)
        .fetch_optional(&mut **tx)
        .await?;
    Ok(r.as_ref().map(row).transpose()?)
}

/// Claims a queued message for one attempt: counts it and schedules the next one, committed
/// on its own. False if another deliverer claimed it first.
pub(super) async fn claim(
    store: &Store,
    id: &str,
    seen_attempts: i64,
    now: i64,
    next: i64,
) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "UPDATE notifications SET attempts = attempts + 1, last_attempt_at = $3, \
         next_attempt_at = $4 WHERE id = $1 AND state = 'queued' AND attempts = $2",
    )
    .bind(id)
    .bind(seen_attempts)
    .bind(now)
    .bind(next)
    .execute(store.pool())
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Ends a message: sent, failed or cancelled, with its payload cleaned of any code.
pub(super) async fn finish(
    tx: &mut Tx,
    id: &str,
    state: &str,
    error: Option<&str>,
    payload: &str,
    sent_at: Option<i64>,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE notifications SET state = $2, \
         last_error = CASE WHEN $2 = 'sent' THEN NULL ELSE COALESCE($3, last_error) END, \
         payload = $4, sent_at = $5, next_attempt_at = NULL WHERE id = $1",
    )
    .bind(id)
    .bind(state)
    .bind(error)
    .bind(payload)
    .bind(sent_at)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

pub(super) async fn record_error(tx: &mut Tx, id: &str, error: &str) -> Result<(), StoreError> {
    sqlx::query("UPDATE notifications SET last_error = $2 WHERE id = $1")
        .bind(id)
        .bind(error)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Back in the queue, due at `now`.
pub(super) async fn requeue(tx: &mut Tx, id: &str, now: i64) -> Result<(), StoreError> {
    sqlx::query("UPDATE notifications SET state = 'queued', next_attempt_at = $2 WHERE id = $1")
        .bind(id)
        .bind(now)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// The recipient's sealed address, if the account exists and has one.
pub(super) async fn email_of(store: &Store, user: &str) -> Result<Option<Vec<u8>>, StoreError> {
    let r = sqlx::query("SELECT email_enc FROM users WHERE id = $1")
        .bind(user)
        .fetch_optional(store.pool())
        .await?;
    Ok(match r {
        Some(r) => r.try_get::<Option<Vec<u8>>, _>(0)?,
        None => None,
    })
}
