//! Reading the security-event log (written through `security_log`, whose types and
//! recording functions are named here too): a guarded operation, so it sits above `rbac`.

mod repo;

use serde::Serialize;

use crate::identity::Actor;
use crate::rbac::{self, Forbidden, Permission};
use crate::store::{Store, StoreError, Timestamp};

pub use crate::security_log::{
    record, record_session_expired, record_session_locked, record_session_unlock, try_record,
    NewSecurityEvent, Outcome, SecurityEventKind,
};
pub use repo::SecurityEventFilter;

/// A stored event.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct SecurityEvent {
    /// Its id (a UUIDv7, so ids sort by time).
    pub id: String,
    /// When it was recorded.
    pub at: Timestamp,
    /// What happened (a [`SecurityEventKind`] name).
    pub kind: String,
    /// `user:<uuid>`, `system:<name>`, or none.
    pub actor: Option<String>,
    /// What was attempted.
    pub attempted: String,
    /// `success`, `denied` or `failed`.
    pub outcome: String,
    /// The session, if known.
    pub session_id: Option<String>,
    /// JSON text: ids, reasons, counts.
    pub details: String,
    /// The acting account's username, when the actor is one.
    pub actor_name: Option<String>,
}

/// Errors of listing events.
#[derive(Debug, thiserror::Error)]
pub enum SecurityEventError {
    /// The actor may not read the log (the refusal itself is recorded).
    #[error(transparent)]
    Forbidden(#[from] Forbidden),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Lists events, newest first. Needs [`Permission::SecurityEventsRead`] (moderators and
/// administrators); a refusal is itself recorded.
pub async fn list(
    store: &Store,
    actor: &Actor,
    filter: &SecurityEventFilter,
) -> Result<Vec<SecurityEvent>, SecurityEventError> {
    let _permit = rbac::require(store, actor, Permission::SecurityEventsRead).await?;
    Ok(repo::list(store, filter).await?)
}
