//! Legal holds: a flag an administrator or compliance officer sets on a user or an incident,
//! with a reason. An unreleased hold on a user (or on an incident about them), like an open
//! incident about them, blocks their erasure; retention cleanup skips held records too.

use serde::Serialize;

use super::{clean_reason, repo, PrivacyError};
use crate::audit::{self, AuditAction, NewAuditEntry};
use crate::identity::Actor;
use crate::rbac::{self, Permission};
use crate::store::{Store, Timestamp};

/// What a hold is placed on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HoldTarget {
    /// An account, by username.
    User(String),
    /// An incident, by id.
    Incident(uuid::Uuid),
}

/// A hold.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Hold {
    /// Id.
    pub id: uuid::Uuid,
    /// `user` or `incident`.
    pub target_kind: String,
    /// The account or incident id.
    pub target_id: String,
    /// The account's username, for a hold on a user that still exists.
    pub target_name: Option<String>,
    /// Why.
    pub reason: String,
    /// Who placed it.
    pub created_by: String,
    /// When.
    pub created_at: Timestamp,
    /// When it was released.
    pub released_at: Option<Timestamp>,
    /// Who released it.
    pub released_by: Option<String>,
}

/// Places a hold.
pub async fn place(
    store: &Store,
    actor: &Actor,
    target: &HoldTarget,
    reason: &str,
) -> Result<Hold, PrivacyError> {
    rbac::require(store, actor, Permission::LegalHoldManage).await?;
    let reason = clean_reason(reason)?;
    let (kind, target_id) = match target {
        HoldTarget::User(name) => (
            "user",
            repo::user_by_username(store, name.trim())
                .await?
                .ok_or(PrivacyError::SubjectNotFound)?
                .to_string(),
        ),
        HoldTarget::Incident(id) => {
            if !repo::incident_exists(store, &id.to_string()).await? {
                return Err(PrivacyError::Invalid("no incident with that id".into()));
            }
            ("incident", id.to_string())
        }
    };
    let id = uuid::Uuid::now_v7();
    let now = Timestamp::now();
    let mut tx = store.begin().await?;
    repo::insert_hold(
        &mut tx,
        &id.to_string(),
        kind,
        &target_id,
        &reason,
        &actor.user_id().to_string(),
        now.micros(),
    )
    .await?;
    audit::append(
        &mut tx,
        &NewAuditEntry::new(actor, AuditAction::LegalHoldPlaced)
            .target(id.to_string())
            .details(serde_json::json!({ "on": kind, "target": target_id })),
    )
    .await?;
    tx.commit().await?;
    list(store, actor, true)
        .await?
        .into_iter()
        .find(|h| h.id == id)
        .ok_or(PrivacyError::NotFound)
}

/// Releases a hold.
pub async fn release(store: &Store, actor: &Actor, id: uuid::Uuid) -> Result<(), PrivacyError> {
    rbac::require(store, actor, Permission::LegalHoldManage).await?;
    let mut tx = store.begin().await?;
    let n = repo::release_hold(
        &mut tx,
        &id.to_string(),
        &actor.user_id().to_string(),
        Timestamp::now().micros(),
    )
    .await?;
    if n == 0 {
        return Err(PrivacyError::Invalid(
            "no hold in force with that id".into(),
        ));
    }
    audit::append(
        &mut tx,
        &NewAuditEntry::new(actor, AuditAction::LegalHoldReleased).target(id.to_string()),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Holds in force (and released ones too if asked), newest first.
pub async fn list(
    store: &Store,
    actor: &Actor,
    include_released: bool,
) -> Result<Vec<Hold>, PrivacyError> {
    if !rbac::allows(actor, Permission::DsrRead) {
        rbac::require(store, actor, Permission::RetentionRead).await?;
    }
    repo::list_holds(store, include_released)
        .await?
        .into_iter()
        .map(|h| {
            Ok(Hold {
                id: uuid::Uuid::parse_str(&h.id).map_err(|_| PrivacyError::NotFound)?,
                target_kind: h.target_kind,
                target_id: h.target_id,
                target_name: h.target_name,
                reason: h.reason,
                created_by: h.created_by,
                created_at: Timestamp::from_micros(h.created_at),
                released_at: h.released_at.map(Timestamp::from_micros),
                released_by: h.released_by,
            })
        })
        .collect()
}
