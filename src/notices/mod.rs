//! Notices to operators of security changes to their own account: a password change or an
//! administrator's reset, MFA enabled, disabled or reset, new backup codes, and a sign-in from a
//! machine that had no key pair for them.
//!
//! Each notice is written in the same transaction as the change it tells of, and queued in the
//! same step in the outbox (`notifications`, kind `operator_notice`, template
//! `operator_notice/<kind>`) that mail delivery sends from. The app shows an operator their
//! notices at their next sign-in until they dismiss them. A notice holds no secret, no address
//! and no IP: its kind, when, and who made the change when it was someone else. In team mode an
//! operator reads and dismisses only their own (row-level security), and notices are added only
//! through the `vigil_notice_add` definer function: for oneself, or, with the users_manage
//! permission, a reset's notice for another operator.

mod repo;

use serde::Serialize;

use crate::identity::{Actor, UserId};
use crate::store::{Store, StoreError, Timestamp, Tx};

/// What a notice tells of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NoticeKind {
    /// The operator changed their password.
    PasswordChanged,
    /// An administrator set a temporary password.
    PasswordReset,
    /// MFA was turned on.
    MfaEnabled,
    /// MFA was turned off (an administrator's password reset removes it).
    MfaDisabled,
    /// An administrator reset the operator's MFA.
    MfaReset,
    /// New backup codes replaced the old ones.
    BackupCodesRegenerated,
    /// A sign-in from a machine that had no key pair for the operator.
    NewMachine,
}

impl NoticeKind {
    /// Every kind.
    pub const ALL: [NoticeKind; 7] = [
        NoticeKind::PasswordChanged,
        NoticeKind::PasswordReset,
        NoticeKind::MfaEnabled,
        NoticeKind::MfaDisabled,
        NoticeKind::MfaReset,
        NoticeKind::BackupCodesRegenerated,
        NoticeKind::NewMachine,
    ];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            NoticeKind::PasswordChanged => "password_changed",
            NoticeKind::PasswordReset => "password_reset",
            NoticeKind::MfaEnabled => "mfa_enabled",
            NoticeKind::MfaDisabled => "mfa_disabled",
            NoticeKind::MfaReset => "mfa_reset",
            NoticeKind::BackupCodesRegenerated => "backup_codes_regenerated",
            NoticeKind::NewMachine => "new_machine",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// What the operator is told, in one sentence.
    pub fn message(self) -> &'static str {
        match self {
            NoticeKind::PasswordChanged => {
                "Your password was changed; your other sessions were ended."
            }
            NoticeKind::PasswordReset => {
                "An administrator reset your password; all your sessions were ended."
            }
            NoticeKind::MfaEnabled => "Two-factor authentication was turned on for your account.",
            NoticeKind::MfaDisabled => {
                "Two-factor authentication was turned off for your account; enrol again."
            }
            NoticeKind::MfaReset => {
                "An administrator reset your two-factor authentication; all your sessions were \
                 ended and you enrol again at your next sign-in."
            }
            NoticeKind::BackupCodesRegenerated => {
                "New backup codes were made for your account; the old ones no longer work."
            }
            NoticeKind::NewMachine => {
                "Someone signed in to your account from a machine that had no key pair for you."
            }
        }
    }
}

impl std::fmt::Display for NoticeKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A notice, as the operator it is for sees it.
#[derive(Debug, Clone, Serialize)]
pub struct Notice {
    /// Id.
    pub id: String,
    /// What it tells of.
    pub kind: NoticeKind,
    /// The sentence shown.
    pub message: String,
    /// Who made the change, when it was someone else (their username).
    pub by: Option<String>,
    /// The client that signed in, for a new machine (its program name, never an address).
    pub client: Option<String>,
    /// When (RFC 3339).
    pub created_at: String,
}

/// Adds a notice for `user` within `tx` and queues it in the outbox. `by` names the operator who
/// made the change when it was not `user`; `client` the program that signed in, for a new
/// machine.
pub(crate) async fn add(
    tx: &mut Tx,
    user: UserId,
    kind: NoticeKind,
    by: Option<&Actor>,
    client: Option<&str>,
    now: Timestamp,
) -> Result<(), StoreError> {
    let mut details = serde_json::Map::new();
    if let Some(by) = by.filter(|a| a.user_id() != user) {
        details.insert("by".into(), by.username().as_str().into());
    }
    if let Some(client) = client {
        // A program name, cut short: it comes from the client and is shown as text only.
        let client: String = client.chars().take(80).collect();
        details.insert("client".into(), client.into());
    }
    repo::add(
        tx,
        &uuid::Uuid::now_v7().to_string(),
        user,
        kind.as_str(),
        &serde_json::Value::Object(details).to_string(),
        now,
    )
    .await
}

/// [`add`] in a transaction of its own.
pub(crate) async fn add_now(
    store: &Store,
    user: UserId,
    kind: NoticeKind,
    client: Option<&str>,
) -> Result<(), StoreError> {
    let mut tx = store.begin().await?;
    add(&mut tx, user, kind, None, client, Timestamp::now()).await?;
    tx.commit().await?;
    Ok(())
}

/// The signed-in operator's notices not yet dismissed, newest first. Open to every operator for
/// their own account, an operator held at MFA enrolment included (they need to know why).
pub async fn pending(store: &Store, actor: &Actor) -> Result<Vec<Notice>, StoreError> {
    let rows = repo::pending(store, actor.user_id()).await?;
    Ok(rows
        .into_iter()
        .filter_map(|r| {
            let kind = NoticeKind::parse(&r.kind)?;
            let details: serde_json::Value = serde_json::from_str(&r.details).unwrap_or_default();
            Some(Notice {
                id: r.id,
                kind,
                message: kind.message().to_owned(),
                by: details["by"].as_str().map(str::to_owned),
                client: details["client"].as_str().map(str::to_owned),
                created_at: Timestamp::from_micros(r.created_at).to_rfc3339(),
            })
        })
        .collect())
}

/// Dismisses one of the signed-in operator's notices (`Some(id)`) or all of them (`None`).
/// Returns how many were dismissed; another operator's notice is never touched.
pub async fn dismiss(store: &Store, actor: &Actor, id: Option<&str>) -> Result<u64, StoreError> {
    repo::dismiss(store, actor.user_id(), id, Timestamp::now()).await
}
