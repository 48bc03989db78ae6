//! Writing the security-event log: authorization denials, token verification failures, refreshes,
//! logouts, session expiry and locks, each with who, what was attempted, the outcome and the
//! session.
//!
//! Unlike the audit log, which records what was *done* inside the transaction that did it,
//! a security event is usually about something that was *refused*: it is written in a
//! transaction of its own, so it stays when the refused operation rolls back. Rows are
//! append-only: nothing here updates or deletes one, and in team mode no operator's database
//! login may (they append through the `vigil_security_event_append` definer function, and only
//! as themselves). `details` holds ids, names and counts, never personal data or token text.
//! Recording never fails the operation that is being recorded: a write that fails is logged
//! (without personal data) and the caller's own result stands.

//! Reading it is `security_events`, a floor above `rbac` (whose `require` records its
//! refusals here).

mod repo;

use serde::Serialize;

use crate::identity::Actor;
use crate::store::{Store, StoreError, Timestamp};

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SecurityEventKind {
    /// An operation was refused because the actor lacks its permission (`rbac::require`).
    AuthorizationDenied,
    /// An access token failed verification; `details.reason` says which check.
    TokenRejected,
    /// A refresh token was traded for a new pair (or the trade was refused).
    TokenRefreshed,
    /// A session was ended by its operator.
    Logout,
    /// A session reached its end (refresh lifetime, idle timeout or absolute limit).
    SessionExpired,
    /// A console locked itself (idle): keys and tokens dropped from memory.
    SessionLocked,
    /// A locked console was unlocked with the password (and second factor).
    SessionUnlocked,
}

impl SecurityEventKind {
    /// Every kind, in display order.
    pub const ALL: [SecurityEventKind; 7] = [
        SecurityEventKind::AuthorizationDenied,
        SecurityEventKind::TokenRejected,
        SecurityEventKind::TokenRefreshed,
        SecurityEventKind::Logout,
        SecurityEventKind::SessionExpired,
        SecurityEventKind::SessionLocked,
        SecurityEventKind::SessionUnlocked,
    ];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            SecurityEventKind::AuthorizationDenied => "authorization_denied",
            SecurityEventKind::TokenRejected => "token_rejected",
            SecurityEventKind::TokenRefreshed => "token_refreshed",
            SecurityEventKind::Logout => "logout",
            SecurityEventKind::SessionExpired => "session_expired",
            SecurityEventKind::SessionLocked => "session_locked",
            SecurityEventKind::SessionUnlocked => "session_unlocked",
        }
    }

    /// Parses a stored or typed name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

impl std::fmt::Display for SecurityEventKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How the attempt ended. Audit entries use the same words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// It was done.
    Success,
    /// It was refused for lack of a right.
    Denied,
    /// It was refused because something presented did not check out (a token, a code).
    Failed,
}

impl Outcome {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Denied => "denied",
            Outcome::Failed => "failed",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        [Outcome::Success, Outcome::Denied, Outcome::Failed]
            .into_iter()
            .find(|o| o.as_str() == s)
    }
}

/// An event to record.
#[derive(Debug, Clone)]
pub struct NewSecurityEvent {
    /// What happened.
    pub kind: SecurityEventKind,
    /// `user:<uuid>`, `system:<name>`, or none when nobody is known (a token whose signature
    /// was not checked yet names nobody that can be believed).
    pub actor: Option<String>,
    /// What was attempted: a permission's name, `access_token`, `refresh`, `session`.
    pub attempted: String,
    /// How it ended.
    pub outcome: Outcome,
    /// The session it happened in, if known.
    pub session_id: Option<String>,
    /// Ids, reasons and counts; never personal data or token text.
    pub details: serde_json::Value,
}

impl NewSecurityEvent {
    /// An event with no actor, session or details.
    pub fn new(kind: SecurityEventKind, attempted: impl Into<String>, outcome: Outcome) -> Self {
        Self {
            kind,
            actor: None,
            attempted: attempted.into(),
            outcome,
            session_id: None,
            details: serde_json::json!({}),
        }
    }

    /// Names the operator (and their session, if the actor carries one).
    pub fn by(mut self, actor: &Actor) -> Self {
        self.actor = Some(format!("user:{}", actor.user_id()));
        if self.session_id.is_none() {
            self.session_id = actor.session_id().map(str::to_owned);
        }
        self
    }

    /// Names the actor by account id.
    pub fn by_user(mut self, user_id: &str) -> Self {
        self.actor = Some(format!("user:{user_id}"));
        self
    }

    /// Sets the session.
    pub fn session(mut self, session_id: impl Into<String>) -> Self {
        self.session_id = Some(session_id.into());
        self
    }

    /// Sets the details.
    pub fn details(mut self, details: serde_json::Value) -> Self {
        self.details = details;
        self
    }
}

/// Records an event in a transaction of its own. Never fails: a failed write is logged (kind,
/// outcome and the database's error, nothing personal) and dropped, so recording a refusal can
/// never turn it into a different error.
pub async fn record(store: &Store, event: NewSecurityEvent) {
    if let Err(e) = try_record(store, &event).await {
        tracing::warn!(
            kind = event.kind.as_str(),
            outcome = event.outcome.as_str(),
            error = %e,
            "could not record a security event"
        );
    }
}

/// Records an event and reports a failed write (tests, and callers that must know).
pub async fn try_record(store: &Store, event: &NewSecurityEvent) -> Result<(), StoreError> {
    let mut tx = store.begin().await?;
    repo::append(&mut tx, event, Timestamp::now()).await?;
    tx.commit().await?;
    Ok(())
}

/// Records that the desktop (or another console) locked `actor`'s session: for the idle lock.
pub async fn record_session_locked(store: &Store, actor: &Actor, reason: &str) {
    record(
        store,
        NewSecurityEvent::new(
            SecurityEventKind::SessionLocked,
            "session",
            Outcome::Success,
        )
        .by(actor)
        .details(serde_json::json!({ "reason": reason })),
    )
    .await;
}

/// Records that `actor`'s session ended on its own (`reason`: `idle`, `absolute`, `refresh`).
pub async fn record_session_expired(store: &Store, actor: &Actor, reason: &str) {
    record(
        store,
        NewSecurityEvent::new(
            SecurityEventKind::SessionExpired,
            "session",
            Outcome::Success,
        )
        .by(actor)
        .details(serde_json::json!({ "reason": reason })),
    )
    .await;
}

/// Records an unlock attempt of a locked session: `Success`, or `Failed` for a wrong password
/// or code.
pub async fn record_session_unlock(store: &Store, actor: &Actor, outcome: Outcome) {
    record(
        store,
        NewSecurityEvent::new(SecurityEventKind::SessionUnlocked, "session", outcome).by(actor),
    )
    .await;
}
