//! Accounts: the directory of every user, and the actions on operator accounts.

use serde::{Deserialize, Serialize};
use tauri::State;
use ts_rs::TS;
use vigil::auth::users::{
    self, AccountKind, AccountStatus, DirectoryEntry, DirectoryQuery, DirectorySearch,
};
use vigil::auth::{Actor, UserId};
use vigil::rbac::{self, Permission, Role};

use crate::error::{CommandError, CommandResult, ErrorCode};
use crate::state::{AppState, Db, DesktopSession};

/// Filters and page of the users table.
#[derive(Debug, Deserialize, TS)]
#[ts(export)]
pub struct UserQuery {
    /// `operator`, `platform`, `service`, or none for all.
    pub kind: Option<String>,
    /// A role name.
    pub role: Option<String>,
    /// `active`, `suspended`, `locked` or `deleted`.
    pub status: Option<String>,
    /// MFA on or off.
    pub mfa: Option<bool>,
    /// A username prefix, or an exact email when it contains `@`.
    pub search: Option<String>,
    /// Page, from 0.
    pub page: u32,
    /// Rows per page (1 to 500).
    pub page_size: u32,
}

/// One row of the users table.
#[derive(Debug, Serialize, TS)]
#[ts(export)]
pub struct UserRow {
    /// Account id.
    pub id: String,
    /// Username.
    pub username: String,
    /// Display name.
    pub display_name: String,
    /// `operator`, `platform` or `service`.
    #[ts(type = "'operator' | 'platform' | 'service'")]
    pub kind: String,
    /// Account status.
    #[ts(type = "'active' | 'suspended' | 'locked' | 'deleted'")]
    pub status: String,
    /// Roles.
    pub roles: Vec<String>,
    /// MFA on.
    pub mfa_enabled: bool,
    /// Country code.
    pub country: Option<String>,
    /// Created (RFC 3339).
    pub created_at: String,
    /// Last sign-in (RFC 3339).
    pub last_login_at: Option<String>,
}

impl From<&DirectoryEntry> for UserRow {
    fn from(e: &DirectoryEntry) -> Self {
        Self {
            id: e.id.clone(),
            username: e.username.clone(),
            display_name: e.display_name.clone(),
            kind: e.kind.clone(),
            status: e.status.clone(),
            roles: e.roles.clone(),
            mfa_enabled: e.mfa_enabled,
            country: e.country.clone(),
            created_at: e.created_at.clone(),
            last_login_at: e.last_login_at.clone(),
        }
    }
}

/// A page of users.
#[derive(Debug, Serialize, TS)]
#[ts(export)]
pub struct UserPage {
    /// The rows, by username.
    pub rows: Vec<UserRow>,
    /// Users matching the filters.
    #[ts(type = "number")]
    pub total: u64,
    /// This page.
    pub page: u32,
    /// Rows per page.
    pub page_size: u32,
}

fn parse_query(q: &UserQuery) -> CommandResult<DirectoryQuery> {
    let blank = |s: &Option<String>| {
        s.as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    Ok(DirectoryQuery {
        kind: blank(&q.kind)
            .map(|k| {
                AccountKind::parse(&k)
                    .ok_or_else(|| CommandError::invalid(format!("unknown account kind {k:?}")))
            })
            .transpose()?,
        role: blank(&q.role)
            .map(|r| {
                Role::parse(&r).ok_or_else(|| CommandError::invalid(format!("unknown role {r:?}")))
            })
            .transpose()?,
        status: blank(&q.status)
            .map(|s| {
                AccountStatus::parse(&s)
                    .ok_or_else(|| CommandError::invalid(format!("unknown status {s:?}")))
            })
            .transpose()?,
        mfa: q.mfa,
        search: q.search.as_deref().and_then(DirectorySearch::from_text),
        page: q.page,
        page_size: q.page_size.clamp(1, 500),
    })
}

/// One page of the directory.
#[tauri::command]
pub async fn users_list(state: State<'_, AppState>, req: UserQuery) -> CommandResult<UserPage> {
    let (db, session, actor) = state.authorised().await?;
    let query = parse_query(&req)?;
    let page = users::directory(&db.store, &actor, session.ring.as_ref(), &query).await?;
    Ok(UserPage {
        rows: page.rows.iter().map(UserRow::from).collect(),
        total: page.total,
        page: query.page,
        page_size: query.page_size,
    })
}

/// One of the operator's sessions.
#[derive(Debug, Serialize, TS)]
#[ts(export)]
pub struct SessionView {
    /// Session id.
    pub id: String,
    /// The client that opened it.
    pub client: String,
    /// Opened (RFC 3339).
    pub created_at: String,
    /// Ends (RFC 3339).
    pub expires_at: String,
    /// Revoked (RFC 3339), if so.
    pub revoked_at: Option<String>,
    /// Whether it is this app's own session.
    pub current: bool,
}

/// A user and what the signed-in operator may do to them.
#[derive(Debug, Serialize, TS)]
#[ts(export)]
pub struct UserDetail {
    /// The account.
    pub user: UserRow,
    /// A reset password is owed.
    pub must_change_password: bool,
    /// Locked until (RFC 3339).
    pub locked_until: Option<String>,
    /// Their unexpired sessions (operators).
    pub sessions: Vec<SessionView>,
    /// Unused backup codes (operators with MFA).
    #[ts(type = "number | null")]
    pub backup_codes_left: Option<i64>,
    /// What the signed-in operator may do: `suspend`, `unsuspend`, `unlock`,
    /// `reset_password`, `reset_mfa`, `set_roles`, `revoke_session`, `grant_keys`.
    pub actions: Vec<String>,
}

fn actions_for(actor: &Actor, e: &DirectoryEntry) -> Vec<String> {
    let mut out: Vec<&str> = Vec::new();
    if e.kind == "platform" {
        return Vec::new();
    }
    let may = |p| rbac::allows(actor, p);
    let is_self = e.id == actor.user_id().to_string();
    if may(Permission::UsersManage) && !is_self {
        match e.status.as_str() {
            "active" => out.push("suspend"),
            "suspended" => out.push("unsuspend"),
            _ => {}
        }
        if e.locked_until.is_some() {
            out.push("unlock");
        }
        out.push("reset_password");
        if e.mfa_enabled {
            out.push("reset_mfa");
        }
        out.push("revoke_session");
    }
    if may(Permission::RolesAssign) {
        out.push("set_roles");
    }
    if may(Permission::KeysManage) && e.status == "active" {
        out.push("grant_keys");
    }
    out.into_iter().map(str::to_owned).collect()
}

async fn detail_of(
    db: &Db,
    session: &DesktopSession,
    actor: &Actor,
    id: UserId,
) -> CommandResult<UserDetail> {
    let entry = users::directory_entry(&db.store, actor, id)
        .await?
        .ok_or_else(|| CommandError::new(ErrorCode::NotFound, "no such user"))?;
    let operator = entry.kind != "platform";
    let mut sessions = Vec::new();
    if operator && rbac::allows(actor, Permission::UsersManage) {
        let own = session.session_id().await;
        for s in users::sessions_of(&db.store, actor, id).await? {
            sessions.push(SessionView {
                current: own.as_deref() == Some(s.id.as_str()),
                id: s.id,
                client: s.client,
                created_at: s.created_at,
                expires_at: s.expires_at,
                revoked_at: s.revoked_at,
            });
        }
    }
    let backup_codes_left = if operator && entry.mfa_enabled {
        Some(vigil::mfa::backup_codes_left(&db.store, id).await?)
    } else {
        None
    };
    Ok(UserDetail {
        user: UserRow::from(&entry),
        must_change_password: entry.must_change_password,
        locked_until: entry.locked_until.clone(),
        sessions,
        backup_codes_left,
        actions: actions_for(actor, &entry),
    })
}

fn user_id(id: &str) -> CommandResult<UserId> {
    UserId::parse(id).ok_or_else(|| CommandError::invalid("not a user id"))
}

/// Names a user.
#[derive(Debug, Deserialize, TS)]
#[ts(export)]
pub struct UserRef {
    /// Account id.
    pub id: String,
}

/// A user's detail.
#[tauri::command]
pub async fn user_detail(state: State<'_, AppState>, req: UserRef) -> CommandResult<UserDetail> {
    let (db, session, actor) = state.authorised().await?;
    detail_of(&db, &session, &actor, user_id(&req.id)?).await
}

/// A new operator.
#[derive(Debug, Deserialize, TS)]
#[ts(export)]
pub struct CreateOperator {
    /// Username.
    pub username: String,
    /// Role names.
    pub roles: Vec<String>,
}

/// A temporary password, shown once; it must be changed at the first sign-in.
#[derive(Serialize, TS)]
#[ts(export)]
pub struct TemporaryPassword {
    /// Whose.
    pub username: String,
    /// The password.
    pub temporary_password: String,
    /// A reset removed the operator's MFA (their TOTP secret opened only with the old
    /// password): they enrol again after choosing their new password.
    pub mfa_removed: bool,
    /// Team mode (Postgres): the new operator's own database user, shown once.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub database_user: Option<String>,
    /// And its password, shown once (the operator keeps it in their keystore).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub database_password: Option<String>,
}

// Both passwords are wiped once the reply has been sent to the window.
impl Drop for TemporaryPassword {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.temporary_password);
        zeroize::Zeroize::zeroize(&mut self.database_password);
    }
}

fn parse_roles(roles: &[String]) -> CommandResult<Vec<Role>> {
    roles
        .iter()
        .map(|r| Role::parse(r).ok_or_else(|| CommandError::invalid(format!("unknown role {r:?}"))))
        .collect()
}

/// Creates an operator with a temporary password.
#[tauri::command]
pub async fn user_create(
    state: State<'_, AppState>,
    req: CreateOperator,
) -> CommandResult<TemporaryPassword> {
    let (db, _, actor) = state.authorised().await?;
    let roles = parse_roles(&req.roles)?;
    let temporary = vigil::auth::random_password(16);
    let (_, login) = users::create_with_database_login(
        &db.store,
        &actor,
        req.username.trim(),
        &temporary,
        &roles,
    )
    .await?;
    Ok(TemporaryPassword {
        username: req.username.trim().to_owned(),
        temporary_password: temporary,
        mfa_removed: false,
        database_user: login.as_ref().map(|l| l.user.clone()),
        database_password: login.as_ref().map(|l| l.password().to_owned()),
    })
}

/// An operator and new roles.
#[derive(Debug, Deserialize, TS)]
#[ts(export)]
pub struct SetRoles {
    /// Account id.
    pub id: String,
    /// Role names.
    pub roles: Vec<String>,
}

async fn username_of(db: &Db, actor: &Actor, id: UserId) -> CommandResult<String> {
    let entry = users::directory_entry(&db.store, actor, id)
        .await?
        .ok_or_else(|| CommandError::new(ErrorCode::NotFound, "no such user"))?;
    if entry.kind == "platform" {
        return Err(CommandError::invalid(
            "this is a platform user, not an operator",
        ));
    }
    Ok(entry.username)
}

/// Replaces an operator's roles.
#[tauri::command]
pub async fn user_set_roles(
    state: State<'_, AppState>,
    req: SetRoles,
) -> CommandResult<UserDetail> {
    let (db, session, actor) = state.authorised().await?;
    let id = user_id(&req.id)?;
    let roles = parse_roles(&req.roles)?;
    let name = username_of(&db, &actor, id).await?;
    users::set_roles(&db.store, &actor, &name, &roles).await?;
    detail_of(&db, &session, &actor, id).await
}

/// Suspend or reinstate.
#[derive(Debug, Deserialize, TS)]
#[ts(export)]
pub struct SetSuspended {
    /// Account id.
    pub id: String,
    /// Suspend (true) or reinstate (false).
    pub suspended: bool,
}

/// Suspends (ending all sessions) or reinstates an operator.
#[tauri::command]
pub async fn user_set_suspended(
    state: State<'_, AppState>,
    req: SetSuspended,
) -> CommandResult<UserDetail> {
    let (db, session, actor) = state.authorised().await?;
    let id = user_id(&req.id)?;
    let name = username_of(&db, &actor, id).await?;
    users::set_suspended(&db.store, &actor, &name, req.suspended).await?;
    detail_of(&db, &session, &actor, id).await
}

/// Clears an operator's lockout.
#[tauri::command]
pub async fn user_unlock(state: State<'_, AppState>, req: UserRef) -> CommandResult<UserDetail> {
    let (db, session, actor) = state.authorised().await?;
    let id = user_id(&req.id)?;
    let name = username_of(&db, &actor, id).await?;
    vigil::auth::unlock_account(&db.store, &actor, &name).await?;
    detail_of(&db, &session, &actor, id).await
}

/// Sets a temporary password (their key pairs are retired and their MFA removed; they enrol
/// again at sign-in).
#[tauri::command]
pub async fn user_reset_password(
    state: State<'_, AppState>,
    req: UserRef,
) -> CommandResult<TemporaryPassword> {
    let (db, _, actor) = state.authorised().await?;
    let name = username_of(&db, &actor, user_id(&req.id)?).await?;
    let temporary = vigil::auth::random_password(16);
    let report = vigil::auth::reset_password(&db.store, &actor, &name, &temporary).await?;
    Ok(TemporaryPassword {
        username: name,
        temporary_password: temporary,
        mfa_removed: report.mfa_removed,
        database_user: None,
        database_password: None,
    })
}

/// Turns an operator's MFA off (they enrol again).
#[tauri::command]
pub async fn user_reset_mfa(state: State<'_, AppState>, req: UserRef) -> CommandResult<UserDetail> {
    let (db, session, actor) = state.authorised().await?;
    let id = user_id(&req.id)?;
    let name = username_of(&db, &actor, id).await?;
    vigil::mfa::reset(&db.store, &actor, &name).await?;
    detail_of(&db, &session, &actor, id).await
}

/// Names a session.
#[derive(Debug, Deserialize, TS)]
#[ts(export)]
pub struct SessionRef {
    /// Session id.
    pub session_id: String,
}

/// Revokes a session.
#[tauri::command]
pub async fn session_revoke(state: State<'_, AppState>, req: SessionRef) -> CommandResult<()> {
    let (db, _, actor) = state.authorised().await?;
    users::revoke_session(&db.store, &actor, &req.session_id).await?;
    Ok(())
}
