//! SQL of the security-event log.

use sqlx::Row;

use super::SecurityEvent;
use crate::store::{Store, StoreError, Timestamp};

/// Filters for listing events.
#[derive(Debug, Clone, Default)]
pub struct SecurityEventFilter {
    /// Only this kind (stored name).
    pub kind: Option<String>,
    /// Only this actor (`user:<uuid>` or `system:<name>`).
    pub actor: Option<String>,
    /// Only this outcome (`success`, `denied`, `failed`).
    pub outcome: Option<String>,
    /// Only events at or after this time.
    pub since: Option<Timestamp>,
    /// Most events to return (default 50, at most 10,000).
    pub limit: Option<u32>,
}

pub(super) async fn list(
    store: &Store,
    f: &SecurityEventFilter,
) -> Result<Vec<SecurityEvent>, StoreError> {
    let limit = i64::from(f.limit.unwrap_or(50).clamp(1, 10_000));
    let rows = sqlx::query(
        "SELECT e.id, e.at, e.kind, e.actor, e.attempted, e.outcome, e.session_id, e.details, \
                u.username \
         FROM security_events e LEFT JOIN users u ON u.id = substr(e.actor, 6) \
         WHERE ($1 IS NULL OR e.kind = $1) AND ($2 IS NULL OR e.actor = $2) \
           AND ($3 IS NULL OR e.outcome = $3) AND ($4 IS NULL OR e.at >= $4) \
         ORDER BY e.at DESC, e.id DESC LIMIT $5",
    )
    .bind(f.kind.as_deref())
    .bind(f.actor.as_deref())
    .bind(f.outcome.as_deref())
    .bind(f.since.map(Timestamp::micros))
    .bind(limit)
    .fetch_all(store.pool())
    .await?;
    crate::store::map_rows(&rows, |r| {
        Ok(SecurityEvent {
            id: r.try_get(0)?,
            at: Timestamp::from_micros(r.try_get(1)?),
            kind: r.try_get(2)?,
            actor: r.try_get(3)?,
            attempted: r.try_get(4)?,
            outcome: r.try_get(5)?,
            session_id: r.try_get(6)?,
            details: r.try_get(7)?,
            actor_name: r.try_get(8)?,
        })
    })
}
