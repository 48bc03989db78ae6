use super::NewSecurityEvent;
use crate::store::{Backend, StoreError, Timestamp, Tx};

pub(super) async fn append(
    tx: &mut Tx,
    e: &NewSecurityEvent,
    at: Timestamp,
) -> Result<(), StoreError> {
    let id = uuid::Uuid::now_v7().to_string();
    let details = e.details.to_string();
    let sql = if crate::store::backend_of(tx) == Backend::Postgres {
        // Operators may not write the table: a definer function appends, as themselves only.
        "SELECT vigil_security_event_append($1, $2, $3, $4, $5, $6, $7, $8)"
    } else {
        "INSERT INTO security_events (id, kind, actor, attempted, outcome, session_id, details, at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
    };
    sqlx::query(sql)
        .bind(id)
        .bind(e.kind.as_str())
        .bind(e.actor.as_deref())
        .bind(e.attempted.as_str())
        .bind(e.outcome.as_str())
        .bind(e.session_id.as_deref())
        .bind(details)
        .bind(at.micros())
        .execute(&mut **tx)
        .await?;
    Ok(())
}
