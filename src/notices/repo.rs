//! SQL of operator notices and their outbox messages.

use sqlx::Row;

use crate::identity::UserId;
use crate::store::{map_rows, Backend, Store, StoreError, Timestamp, Tx};

pub(super) struct NoticeRow {
    pub id: String,
    pub kind: String,
    pub details: String,
    pub created_at: i64,
}

/// The notice and its outbox message. On Postgres through `vigil_notice_add`, which checks in
/// team mode that the caller may add it.
pub(super) async fn add(
    tx: &mut Tx,
    id: &str,
    user: UserId,
    kind: &str,
    details: &str,
    now: Timestamp,
) -> Result<(), StoreError> {
    if crate::store::backend_of(tx) == Backend::Postgres {
        sqlx::query("SELECT vigil_notice_add($1, $2, $3, $4, $5)")
            .bind(id)
            .bind(user.to_string())
            .bind(kind)
            .bind(details)
            .bind(now.micros())
            .execute(&mut **tx)
            .await?;
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO operator_notices (id, user_id, kind, details, created_at) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(id)
    .bind(user.to_string())
    .bind(kind)
    .bind(details)
    .bind(now.micros())
    .execute(&mut **tx)
    .await?;
    let payload = serde_json::json!({
        "notice_id": id,
        "kind": kind,
        "details": serde_json::from_str::<serde_json::Value>(details).unwrap_or_default(),
    });
    sqlx::query(
        "INSERT INTO notifications (id, kind, recipient_id, payload, created_at, template, \
         state, next_attempt_at) VALUES ($1, 'operator_notice', $2, $3, $4, $5, 'queued', $4)",
    )
    .bind(id)
    .bind(user.to_string())
    .bind(payload.to_string())
    .bind(now.micros())
    .bind(format!("operator_notice/{kind}"))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

pub(super) async fn pending(store: &Store, user: UserId) -> Result<Vec<NoticeRow>, StoreError> {
    let rows = sqlx::query(
        "SELECT id, kind, details, created_at FROM operator_notices \
         WHERE user_id = $1 AND dismissed_at IS NULL ORDER BY created_at DESC, id DESC",
    )
    .bind(user.to_string())
    .fetch_all(store.pool())
    .await?;
    map_rows(&rows, |r| {
        Ok(NoticeRow {
            id: r.try_get(0)?,
            kind: r.try_get(1)?,
            details: r.try_get(2)?,
            created_at: r.try_get(3)?,
        })
    })
}

pub(super) async fn dismiss(
    store: &Store,
    user: UserId,
    id: Option<&str>,
    now: Timestamp,
) -> Result<u64, StoreError> {
    let done = sqlx::query(
        "UPDATE operator_notices SET dismissed_at = $1 \
         WHERE user_id = $2 AND dismissed_at IS NULL AND ($3 IS NULL OR id = $3)",
    )
    .bind(now.micros())
    .bind(user.to_string())
    .bind(id)
    .execute(store.pool())
    .await?;
    Ok(done.rows_affected())
}
