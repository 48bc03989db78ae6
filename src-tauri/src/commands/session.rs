//! Sign-in, the MFA step, sign-out, password change and who is signed in.

use serde::{Deserialize, Serialize};
use tauri::State;
use ts_rs::TS;
use vigil::auth::{self, LoginOutcome};
use vigil::rbac::{self, Permission};

use crate::error::{CommandError, CommandResult};
use crate::state::{AppState, Db, DesktopSession, Standing};

/// Whether this machine can open the operator's data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, TS)]
#[serde(rename_all = "snake_case")]
#[ts(export)]
pub enum KeysState {
    /// The key pair opened and holds the data keys.
    Unlocked,
    /// This machine holds no key pair for the operator.
    NoKeyPair,
    /// The key pair is here but an administrator has not granted it the data keys yet.
    NoGrants,
}

/// The signed-in operator, as the UI needs them.
#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct Me {
    /// Account id.
    pub user_id: String,
    /// Username.
    pub username: String,
    /// Roles.
    pub roles: Vec<String>,
    /// Everything the roles allow (snake_case permission names).
    pub permissions: Vec<String>,
    /// Whether MFA is on for the account.
    pub mfa_enabled: bool,
    /// A password an administrator set must be changed before anything else.
    pub must_change_password: bool,
    /// Why, when it must: the account was just created with it, or an administrator reset it.
    pub password_change_reason: Option<PasswordChangeReason>,
    /// The operator's role requires MFA and it is not on: enrolment comes before anything
    /// else (the `[auth] require_mfa` policy).
    pub must_enrol_mfa: bool,
    /// Data keys on this machine.
    pub keys: KeysState,
}

/// Why a password must be changed before anything else.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, TS)]
#[serde(rename_all = "snake_case")]
#[ts(export)]
pub enum PasswordChangeReason {
    /// The account is new: an administrator set the password when creating it.
    Created,
    /// An administrator reset it.
    Reset,
}

/// The operator of `session` as the UI sees them.
pub(crate) async fn me_of(db: &Db, session: &DesktopSession) -> CommandResult<Me> {
    let actor = session.actor();
    let permissions = Permission::ALL
        .into_iter()
        .filter(|p| rbac::allows(&actor, *p))
        .map(|p| {
            serde_json::to_value(p)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default()
        })
        .collect();
    let keys = match &session.ring {
        None => KeysState::NoKeyPair,
        Some(ring) => {
            // Unlocked when this machine's key pair holds every purpose of the operator's roles.
            let mut held = true;
            for p in rbac::purposes_of(actor.roles()) {
                held &= ring.current(&db.store, p).await.is_ok();
            }
            if held {
                KeysState::Unlocked
            } else {
                KeysState::NoGrants
            }
        }
    };
    Ok(Me {
        user_id: actor.user_id().to_string(),
        username: actor.username().to_string(),
        roles: actor
            .roles()
            .iter()
            .map(|r| r.as_str().to_owned())
            .collect(),
        permissions,
        mfa_enabled: vigil::mfa::is_enabled(&db.store, actor.user_id()).await?,
        must_change_password: session.must_change_password(),
        password_change_reason: if session.must_change_password() {
            Some(match auth::password_to_change(&db.store, &actor).await? {
                Some(auth::PasswordToChange::SetAtAccountCreation) => PasswordChangeReason::Created,
                _ => PasswordChangeReason::Reset,
            })
        } else {
            None
        },
        must_enrol_mfa: actor.must_enrol_mfa(),
        keys,
    })
}

/// Username and password.
#[derive(Deserialize, TS)]
#[ts(export)]
pub struct LoginRequest {
    /// Username.
    pub username: String,
    /// Password.
    pub password: String,
}

// The password is wiped when the request is dropped, as soon as the command has used it.
impl Drop for LoginRequest {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.password);
    }
}

/// What the password step gave.
#[derive(Debug, Serialize, TS)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[ts(export)]
pub enum LoginResult {
    /// Signed in.
    SignedIn {
        /// The operator.
        me: Me,
    },
    /// A TOTP or backup code is owed (the challenge stays in the app, not the UI).
    MfaRequired {
        /// When the challenge lapses (RFC 3339).
        expires_at: String,
    },
}

/// The password step of signing in.
#[tauri::command]
pub async fn login(state: State<'_, AppState>, req: LoginRequest) -> CommandResult<LoginResult> {
    let db = state.db().await?;
    let source = crate::state::login_source();
    // A new sign-in replaces any session still open here, whose tokens are revoked first.
    state.sign_out().await;
    let outcome = auth::login(
        &db.store,
        db.keystore.as_deref(),
        &req.username,
        &req.password,
        &source,
        &state.config().auth.mfa_policy(),
    )
    .await?;
    match outcome {
        LoginOutcome::SignedIn(session) => {
            let session = state.sign_in(&db, session).await;
            Ok(LoginResult::SignedIn {
                me: me_of(&db, &session).await?,
            })
        }
        LoginOutcome::MfaRequired(challenge) => {
            let expires_at = super::rfc3339(challenge.expires_at());
            state.hold_challenge(challenge).await;
            Ok(LoginResult::MfaRequired { expires_at })
        }
    }
}

/// A TOTP or backup code.
#[derive(Deserialize, TS)]
#[ts(export)]
pub struct CodeRequest {
    /// The code as typed.
    pub code: String,
}

impl Drop for CodeRequest {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.code);
    }
}

/// The MFA step of signing in.
#[tauri::command]
pub async fn login_mfa(state: State<'_, AppState>, req: CodeRequest) -> CommandResult<Me> {
    let db = state.db().await?;
    let challenge = state.take_challenge().await.ok_or_else(|| {
        CommandError::new(
            crate::error::ErrorCode::ChallengeExpired,
            "the sign-in step has expired; enter your password again",
        )
    })?;
    let token = challenge.token().to_owned();
    let session = auth::finish_mfa(&db.store, challenge, &token, &req.code).await?;
    let session = state.sign_in(&db, session).await;
    me_of(&db, &session).await
}

/// Signs out: ends the session's tokens and forgets the keys (and a lock).
#[tauri::command]
pub async fn logout(state: State<'_, AppState>) -> CommandResult<()> {
    state.sign_out().await;
    state.clear_lock();
    Ok(())
}

/// Where the console stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, TS)]
#[serde(rename_all = "snake_case")]
#[ts(export)]
pub enum SessionState {
    /// Nobody is signed in.
    SignedOut,
    /// Signed in.
    Active,
    /// Locked after the idle timeout: the lock screen asks for the password and code again.
    Locked,
}

/// The session's standing, for the lock screen.
#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct SessionStatus {
    /// Signed out, active or locked.
    pub state: SessionState,
    /// The operator the console is locked for, when locked.
    pub locked_username: Option<String>,
    /// The idle timeout (`[auth] idle_timeout_secs`).
    pub idle_timeout_secs: u32,
}

async fn status_of(state: &AppState) -> SessionStatus {
    let standing = state.standing().await;
    SessionStatus {
        state: match standing {
            Standing::SignedOut => SessionState::SignedOut,
            Standing::Active => SessionState::Active,
            Standing::Locked => SessionState::Locked,
        },
        locked_username: state.locked_for(),
        idle_timeout_secs: u32::try_from(state.config().auth.idle_timeout_secs).unwrap_or(u32::MAX),
    }
}

/// Where the console stands; locks it first if it has been idle for the timeout. Asking does
/// not count as use.
#[tauri::command]
pub async fn session_status(state: State<'_, AppState>) -> CommandResult<SessionStatus> {
    Ok(status_of(&state).await)
}

/// The operator used the window (a key, a click, a scroll): the idle timeout starts again,
/// unless it had already run out, in which case the console locks.
#[tauri::command]
pub async fn session_activity(state: State<'_, AppState>) -> CommandResult<SessionStatus> {
    let status = status_of(&state).await;
    if status.state == SessionState::Active {
        state.touch();
    }
    Ok(status)
}

/// The signed-in operator, checked against the database, or none.
#[tauri::command]
pub async fn me(state: State<'_, AppState>) -> CommandResult<Option<Me>> {
    if state.locked_for().is_some() {
        return Err(crate::state::locked_error());
    }
    if state.current().is_none() {
        return Ok(None);
    }
    match state.authorised_for_password_change().await {
        Ok((db, session, _)) => Ok(Some(me_of(&db, &session).await?)),
        Err(e) if e.code == crate::error::ErrorCode::SessionEnded => Ok(None),
        Err(e) => Err(e),
    }
}

/// The current and the new password.
#[derive(Deserialize, TS)]
#[ts(export)]
pub struct ChangePasswordRequest {
    /// The password now.
    pub current: String,
    /// The new one.
    pub new_password: String,
}

impl Drop for ChangePasswordRequest {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.current);
        zeroize::Zeroize::zeroize(&mut self.new_password);
    }
}

/// Changes the signed-in operator's password (and re-seals their key pair on this machine).
/// Their other sessions end; this one stays.
#[tauri::command]
pub async fn change_password(
    state: State<'_, AppState>,
    req: ChangePasswordRequest,
) -> CommandResult<Me> {
    let (db, session, actor) = state.authorised_for_password_change().await?;
    let keystore = db
        .keystore
        .as_deref()
        .ok_or(vigil::keys::KeyError::NoKeyPairHere)?;
    let ring = session
        .ring
        .as_ref()
        .ok_or(vigil::keys::KeyError::NoKeyPairHere)?;
    let current = session.session_id().await;
    let changed = auth::change_password(
        &db.store,
        keystore,
        &actor,
        ring,
        current.as_deref(),
        &req.current,
        &req.new_password,
    )
    .await?;
    session.password_changed(changed.credential);
    me_of(&db, &session).await
}

/// A notice of a change to the signed-in operator's own account (password, MFA, backup codes, a
/// sign-in from a new machine), shown until dismissed.
#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct NoticeView {
    /// Id, to dismiss it.
    pub id: String,
    /// What it tells of (`password_changed`, `password_reset`, `mfa_enabled`, `mfa_disabled`,
    /// `mfa_reset`, `backup_codes_regenerated`, `new_machine`).
    pub kind: String,
    /// The sentence shown.
    pub message: String,
    /// Who made the change, when it was someone else.
    pub by: Option<String>,
    /// The program that signed in, for a new machine.
    pub client: Option<String>,
    /// When (RFC 3339).
    pub created_at: String,
}

/// The signed-in operator's notices, newest first (also while MFA enrolment is owed).
#[tauri::command]
pub async fn notices(state: State<'_, AppState>) -> CommandResult<Vec<NoticeView>> {
    let (db, _, actor) = state.authorised_for_enrolment().await?;
    Ok(vigil::notices::pending(&db.store, &actor)
        .await?
        .into_iter()
        .map(|n| NoticeView {
            id: n.id,
            kind: n.kind.as_str().to_owned(),
            message: n.message,
            by: n.by,
            client: n.client,
            created_at: n.created_at,
        })
        .collect())
}

/// Which notice to dismiss: one by id, or all of them.
#[derive(Deserialize, TS)]
#[ts(export)]
pub struct DismissNoticeRequest {
    /// The notice; none dismisses them all.
    pub id: Option<String>,
}

/// Dismisses one of the signed-in operator's notices, or all of them.
#[tauri::command]
pub async fn notices_dismiss(
    state: State<'_, AppState>,
    req: DismissNoticeRequest,
) -> CommandResult<u64> {
    let (db, _, actor) = state.authorised_for_enrolment().await?;
    Ok(vigil::notices::dismiss(&db.store, &actor, req.id.as_deref()).await?)
}
