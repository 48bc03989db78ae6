//! The audit chain: browse it and verify it.

use serde::{Deserialize, Serialize};
use tauri::State;
use ts_rs::TS;
use vigil::audit::{self, AuditFilter, Verification};
use vigil::auth::Username;

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

/// Lists audit entries, newest first.
#[tauri::command]
pub async fn audit_list(state: State<'_, AppState>, req: AuditQuery) -> CommandResult<AuditPage> {
    let (db, _, actor) = state.authorised().await?;
    let blank = |s: &Option<String>| {
        s.as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    let who = match blank(&req.actor) {
        None => None,
        Some(name) if name.contains(':') => Some(name),
        Some(name) => {
            let username = Username::parse(&name)
                .map_err(|_| CommandError::invalid(format!("no operator named {name}")))?;
            match vigil::auth::operator_id(&db.store, &username).await? {
                Some(id) => Some(format!("user:{id}")),
                None => {
                    return Err(CommandError::invalid(format!("no operator named {name}")));
                }
            }
        }
    };
    let filter = AuditFilter {
        actor: who,
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
