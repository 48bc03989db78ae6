//! The audit chain: browse it and verify it.

use serde::{Deserialize, Serialize};
use tauri::State;
use ts_rs::TS;
use vigil::audit::{self, AuditFilter, Verification};
use vigil::auth::Username;
use vigil::security_events::{self, Outcome, SecurityEventFilter, SecurityEventKind};
use vigil::store::Store;

use crate::error::{CommandError, CommandResult};
use crate::state::AppState;

/// Filters and page of the audit screen.
#[derive(Debug, Deserialize, TS)]
#[ts(export)]
pub struct AuditQuery {
    /// An operator's username.
    pub actor: Option<String>,
    /// An action name such as `operator.created`.
    pub action: Option<String>,
    /// Only entries older than this sequence number.
    #[ts(type = "number | null")]
    pub before_seq: Option<i64>,
    /// Most entries (1 to 500).
    pub limit: u32,
}

/// One entry of the chain.
#[derive(Debug, Serialize, TS)]
#[ts(export)]
pub struct AuditRow {
    /// Position in the chain.
    #[ts(type = "number")]
    pub seq: i64,
    /// When (RFC 3339).
    pub at: String,
    /// `user:<id>` or `system:<name>`.
    pub actor: String,
    /// The operator's username, when the actor is one.
    pub actor_name: Option<String>,
    /// What was done.
    pub action: String,
    /// To what.
    pub target: Option<String>,
    /// The account's username, when the target is one.
    pub target_name: Option<String>,
    /// Details, JSON text.
    pub details: String,
    /// The entry's chain hash (hex).
    pub hash: String,
}

/// A page of the chain, newest first.
#[derive(Debug, Serialize, TS)]
#[ts(export)]
pub struct AuditPage {
    /// Entries.
    pub rows: Vec<AuditRow>,
    /// The newest sequence number.
    #[ts(type = "number")]
    pub head_seq: i64,
}

/// A filter's text with blanks as none.
fn blank(s: &Option<String>) -> Option<String> {
    s.as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// An actor filter as stored (`user:<id>`): an operator's username is looked up, an
/// `kind:id` reference is taken as it is.
async fn actor_ref(store: &Store, name: Option<String>) -> CommandResult<Option<String>> {
    match name {
        None => Ok(None),
        Some(name) if name.contains(':') => Ok(Some(name)),
        Some(name) => {
            let unknown = || CommandError::invalid(format!("no operator named {name}"));
            let username = Username::parse(&name).map_err(|_| unknown())?;
            match vigil::auth::operator_id(store, &username).await? {
                Some(id) => Ok(Some(format!("user:{id}"))),
                None => Err(unknown()),
            }
        }
    }
}

/// Lists audit entries, newest first.
#[tauri::command]
pub async fn audit_list(state: State<'_, AppState>, req: AuditQuery) -> CommandResult<AuditPage> {
    let (db, _, actor) = state.authorised().await?;
    let filter = AuditFilter {
        actor: actor_ref(&db.store, blank(&req.actor)).await?,
        action: blank(&req.action),
        since: None,
        limit: Some(req.limit.clamp(1, 500)),
        before_seq: req.before_seq,
    };
    let entries = audit::list(&db.store, &actor, &filter).await?;
    let names = audit::usernames(&db.store, &actor, &entries).await?;
    Ok(AuditPage {
        rows: entries
            .into_iter()
            .map(|e| AuditRow {
                seq: e.seq,
                at: e.at.to_rfc3339(),
                actor_name: names.get(&e.actor).cloned(),
                target_name: e.target.as_ref().and_then(|t| names.get(t)).cloned(),
                actor: e.actor,
                action: e.action,
                target: e.target,
                details: e.details,
                hash: hex::encode(&e.hash),
            })
            .collect(),
        head_seq: audit::head_seq(&db.store).await?,
    })
}

/// The result of verifying the chain.
#[derive(Debug, Serialize, TS)]
#[ts(export)]
pub struct ChainReport {
    /// Whether every entry links and hashes correctly.
    pub ok: bool,
    /// Entries checked (up to the first bad one).
    #[ts(type = "number")]
    pub entries: u64,
    /// What is wrong, if anything.
    pub fault: Option<String>,
    /// When the check ran (RFC 3339).
    pub checked_at: String,
}

/// Verifies the whole chain (and records that it did).
#[tauri::command]
pub async fn audit_verify(state: State<'_, AppState>) -> CommandResult<ChainReport> {
    let (db, _, actor) = state.authorised().await?;
    let result = audit::verify(&db.store, &actor).await?;
    let checked_at = vigil::store::Timestamp::now().to_rfc3339();
    Ok(match result {
        Verification::Ok { entries, .. } => ChainReport {
            ok: true,
            entries,
            fault: None,
            checked_at,
        },
        Verification::Broken {
            seq,
            fault,
            entries_ok,
        } => ChainReport {
            ok: false,
            entries: entries_ok,
            fault: Some(format!("entry {seq}: {fault}")),
            checked_at,
        },
    })
}

/// Filters of the security-event screen.
#[derive(Debug, Deserialize, TS)]
#[ts(export)]
pub struct SecurityEventsQuery {
    /// An event kind such as `authorization_denied`.
    pub kind: Option<String>,
    /// `success`, `denied` or `failed`.
    pub outcome: Option<String>,
    /// An operator's username.
    pub actor: Option<String>,
    /// Most events (1 to 1,000).
    pub limit: u32,
}

/// One security event.
#[derive(Debug, Serialize, TS)]
#[ts(export)]
pub struct SecurityEventRow {
    /// Id (sorts by time).
    pub id: String,
    /// When (RFC 3339).
    pub at: String,
    /// What happened.
    pub kind: String,
    /// `user:<id>`, `system:<name>`, or none when nobody could be believed.
    pub actor: Option<String>,
    /// The operator's username, when the actor is one.
    pub actor_name: Option<String>,
    /// What was attempted: a permission, `access_token`, `refresh`, `session`.
    pub attempted: String,
    /// `success`, `denied` or `failed`.
    pub outcome: String,
    /// The session it happened in.
    pub session_id: Option<String>,
    /// Details, JSON text (ids, reasons, counts).
    pub details: String,
}

/// Lists security events (denials, token failures, refreshes, sign-outs, expiries, locks),
/// newest first. Needs `security_events_read`; a refusal is itself recorded.
#[tauri::command]
pub async fn security_events_list(
    state: State<'_, AppState>,
    req: SecurityEventsQuery,
) -> CommandResult<Vec<SecurityEventRow>> {
    let (db, _, actor) = state.authorised().await?;
    let kind = blank(&req.kind);
    if let Some(k) = kind.as_deref() {
        if SecurityEventKind::parse(k).is_none() {
            return Err(CommandError::invalid(format!("no event kind named {k}")));
        }
    }
    let outcome = blank(&req.outcome);
    if let Some(o) = outcome.as_deref() {
        if Outcome::parse(o).is_none() {
            return Err(CommandError::invalid(
                "the outcome is success, denied or failed",
            ));
        }
    }
    let filter = SecurityEventFilter {
        kind,
        actor: actor_ref(&db.store, blank(&req.actor)).await?,
        outcome,
        since: None,
        limit: Some(req.limit.clamp(1, 1000)),
    };
    Ok(security_events::list(&db.store, &actor, &filter)
        .await?
        .into_iter()
        .map(|e| SecurityEventRow {
            id: e.id,
            at: e.at.to_rfc3339(),
            kind: e.kind,
            actor: e.actor,
            actor_name: e.actor_name,
            attempted: e.attempted,
            outcome: e.outcome,
            session_id: e.session_id,
            details: e.details,
        })
        .collect())
}
