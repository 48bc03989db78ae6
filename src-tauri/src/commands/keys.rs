//! Data keys: versions, holders, grants and rotation with live progress.

use serde::{Deserialize, Serialize};
use tauri::{AppHandle, Emitter, State};
use ts_rs::TS;
use vigil::keys::{self, rotation, Purpose};

use crate::error::{CommandError, CommandResult};
use crate::state::AppState;

/// One version of a data key.
#[derive(Debug, Serialize, TS)]
#[ts(export)]
pub struct KeyVersionView {
    /// Version number.
    pub version: u32,
    /// `active`, `rotating_out` or `retired`.
    #[ts(type = "'active' | 'rotating_out' | 'retired'")]
    pub status: String,
    /// Rows written with it.
    #[ts(type = "number")]
    pub rows: i64,
    /// Key pairs holding it.
    #[ts(type = "number")]
    pub grants: i64,
}

/// A rotation under way.
#[derive(Debug, Serialize, TS)]
#[ts(export)]
pub struct RotationView {
    /// Old version.
    pub from: u32,
    /// New version.
    pub to: u32,
    /// Rows re-encrypted so far.
    #[ts(type = "number")]
    pub rows_done: i64,
    /// Rows still under older versions.
    #[ts(type = "number")]
    pub rows_left: i64,
}

/// One purpose's keys.
#[derive(Debug, Serialize, TS)]
#[ts(export)]
pub struct PurposeView {
    /// `contact`, `network`, `blind_index` or `content_hash` (or the retired
    /// `pii`, on a database not yet split).
    #[ts(type = "'contact' | 'network' | 'pii' | 'blind_index' | 'content_hash'")]
    pub purpose: String,
    /// The version new values are written with.
    pub current: Option<u32>,
    /// Every version.
    pub versions: Vec<KeyVersionView>,
    /// A rotation under way.
    pub rotation: Option<RotationView>,
}

/// An operator as a key holder.
#[derive(Debug, Serialize, TS)]
#[ts(export)]
pub struct KeyHolderView {
    /// Username.
    pub username: String,
    /// Roles.
    pub roles: Vec<String>,
    /// Account status.
    pub status: String,
    /// Live key pairs.
    #[ts(type = "number")]
    pub key_pairs: i64,
    /// Newest key pair's fingerprint (SHA-256 of the public key, hex).
    pub fingerprint: Option<String>,
    /// Purposes granted.
    pub granted: Vec<String>,
    /// Purposes their roles hold: what a grant wraps for them.
    pub entitled: Vec<String>,
}

/// The keys screen.
#[derive(Debug, Serialize, TS)]
#[ts(export)]
pub struct KeysView {
    /// Each purpose.
    pub purposes: Vec<PurposeView>,
    /// Operators and their grants.
    pub holders: Vec<KeyHolderView>,
}

async fn view(db: &crate::state::Db, actor: &vigil::auth::Actor) -> CommandResult<KeysView> {
    let purposes = keys::status(&db.store, actor)
        .await?
        .into_iter()
        .map(|p| PurposeView {
            purpose: p.purpose.as_str().to_owned(),
            current: p.current,
            versions: p
                .versions
                .into_iter()
                .map(|v| KeyVersionView {
                    version: v.version,
                    status: v.status,
                    rows: v.rows,
                    grants: v.grants,
                })
                .collect(),
            rotation: p.rotation.map(|r| RotationView {
                from: r.from,
                to: r.to,
                rows_done: r.rows_done,
                rows_left: r.rows_left,
            }),
        })
        .collect();
    let holders = keys::holders(&db.store, actor)
        .await?
        .into_iter()
        .map(|h| KeyHolderView {
            username: h.username,
            roles: h.roles,
            status: h.status,
            key_pairs: h.key_pairs,
            fingerprint: h.fingerprint,
            granted: h.granted.iter().map(|p| p.as_str().to_owned()).collect(),
            entitled: h.entitled.iter().map(|p| p.as_str().to_owned()).collect(),
        })
        .collect();
    Ok(KeysView { purposes, holders })
}

/// The keys screen's data.
#[tauri::command]
pub async fn keys_status(state: State<'_, AppState>) -> CommandResult<KeysView> {
    let (db, _, actor) = state.authorised().await?;
    view(&db, &actor).await
}

/// Names an operator.
#[derive(Debug, Deserialize, TS)]
#[ts(export)]
pub struct GrantRequest {
    /// Username.
    pub username: String,
}

/// Grants an operator's key pairs the data keys of their roles (those this console does not
/// hold stay pending until a holder signs in).
#[tauri::command]
pub async fn keys_grant(state: State<'_, AppState>, req: GrantRequest) -> CommandResult<KeysView> {
    let (db, session, actor) = state.authorised().await?;
    let ring = session.ring.as_ref().ok_or(keys::KeyError::NoKeyPairHere)?;
    keys::grant(&db.store, ring, &actor, req.username.trim()).await?;
    view(&db, &actor).await
}

/// Names a purpose.
#[derive(Debug, Deserialize, TS)]
#[ts(export)]
pub struct RotateRequest {
    /// `contact`, `network`, `blind_index` or `content_hash`.
    pub purpose: String,
}

/// Progress of a rotation, sent as the `rotation-progress` event.
#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct RotationProgressEvent {
    /// The purpose.
    pub purpose: String,
    /// Rows re-encrypted so far in this run.
    #[ts(type = "number")]
    pub rows_done: u64,
    /// Rows to re-encrypt in this run.
    #[ts(type = "number")]
    pub rows_total: u64,
    /// Whether the rotation has finished.
    pub finished: bool,
}

/// The event name of [`RotationProgressEvent`].
pub const ROTATION_PROGRESS: &str = "rotation-progress";

/// Rotates a purpose's data key: a new version, every row re-encrypted in chunks (resuming a
/// rotation under way), the old version retired. Progress arrives as `rotation-progress`.
#[tauri::command]
pub async fn keys_rotate(
    app: AppHandle,
    state: State<'_, AppState>,
    req: RotateRequest,
) -> CommandResult<KeysView> {
    let (db, session, actor) = state.authorised().await?;
    let purpose = Purpose::parse(&req.purpose)
        .ok_or_else(|| CommandError::invalid(format!("unknown key purpose {:?}", req.purpose)))?;
    let ring = session.ring.as_ref().ok_or(keys::KeyError::NoKeyPairHere)?;
    let r = rotation::start(&db.store, ring, &actor, purpose).await?;
    let emitter = app.clone();
    let report = rotation::run(&db.store, ring, &actor, &r, 2_000, &mut move |p| {
        let _ = emitter.emit(
            ROTATION_PROGRESS,
            RotationProgressEvent {
                purpose: p.purpose.as_str().to_owned(),
                rows_done: p.done,
                rows_total: p.total,
                finished: false,
            },
        );
    })
    .await?;
    let _ = app.emit(
        ROTATION_PROGRESS,
        RotationProgressEvent {
            purpose: report.purpose.as_str().to_owned(),
            rows_done: report.rows,
            rows_total: report.rows,
            finished: true,
        },
    );
    view(&db, &actor).await
}
