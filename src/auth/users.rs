//! Operator accounts for administrators: create, list, show, roles, suspension, sessions.

use serde::Serialize;

use super::{repo, Actor, Password, PasswordChangeError, UserId, Username};
use crate::audit::{self, AuditAction, NewAuditEntry};
use crate::rbac::{self, Permission, Role};
use crate::store::{team, Backend, Store, Timestamp, Tx};

/// An operator account as administrators see it (no personal data).
#[derive(Debug, Clone, Serialize)]
pub struct Account {
    /// Account id.
    pub id: String,
    /// Username.
    pub username: String,
    /// `active`, `suspended`, `locked` or `deleted`.
    pub status: String,
    /// Roles.
    pub roles: Vec<String>,
    /// Whether MFA is on.
    pub mfa_enabled: bool,
    /// Whether a reset password must be changed at the next sign-in.
    pub must_change_password: bool,
    /// Locked until (RFC 3339), if locked now.
    pub locked_until: Option<String>,
    /// Created (RFC 3339).
    pub created_at: String,
    /// Last sign-in (RFC 3339).
    pub last_login_at: Option<String>,
}

impl From<repo::AccountRow> for Account {
    fn from(r: repo::AccountRow) -> Self {
        let t = |m: i64| Timestamp::from_micros(m).to_rfc3339();
        let now = Timestamp::now().micros();
        Self {
            id: r.id,
            username: r.username,
            status: r.status,
            roles: r.roles,
            mfa_enabled: r.mfa_enabled,
            must_change_password: r.must_change_password,
            locked_until: r.locked_until.filter(|u| *u > now).map(t),
            created_at: t(r.created_at),
            last_login_at: r.last_login_at.map(t),
        }
    }
}

/// Filters and page for [`list`].
#[derive(Debug, Clone, Default)]
pub struct AccountFilter {
    /// Only accounts holding this role.
    pub role: Option<Role>,
    /// Only accounts with this status.
    pub status: Option<String>,
    /// Only accounts with MFA on (true) or off (false).
    pub mfa: Option<bool>,
    /// Page size (default 50, at most 1,000).
    pub limit: Option<u32>,
    /// Accounts to skip.
    pub offset: Option<u32>,
}

/// Creates an operator with a temporary password they must change at first sign-in. Their key
/// pair is made on their own machine at that sign-in (or by `vigil keys enrol`), and an
/// administrator then grants it the data keys. Needs [`Permission::UsersManage`], and
/// [`Permission::RolesAssign`] to give roles.
pub async fn create(
    store: &Store,
    actor: &Actor,
    username: &str,
    temporary: &str,
    roles: &[Role],
) -> Result<UserId, PasswordChangeError> {
    Ok(
        create_account(store, actor, username, temporary, roles, false)
            .await?
            .0,
    )
}

/// [`create`], and on a shared Postgres database (team mode) also the operator's own
/// database login, in the same transaction. The login's password is returned here once and
/// kept nowhere else. On SQLite there is no login (`None`).
pub async fn create_with_database_login(
    store: &Store,
    actor: &Actor,
    username: &str,
    temporary: &str,
    roles: &[Role],
) -> Result<(UserId, Option<DatabaseLogin>), PasswordChangeError> {
    create_account(store, actor, username, temporary, roles, true).await
}

async fn create_account(
    store: &Store,
    actor: &Actor,
    username: &str,
    temporary: &str,
    roles: &[Role],
    with_login: bool,
) -> Result<(UserId, Option<DatabaseLogin>), PasswordChangeError> {
    let _permit = rbac::require(store, actor, Permission::UsersManage).await?;
    if !roles.is_empty() {
        rbac::require(store, actor, Permission::RolesAssign).await?;
    }
    let name = Username::parse(username)
        .map_err(|_| PasswordChangeError::UnknownOperator(username.to_owned()))?;
    if repo::find_operator(store, &name).await?.is_some() {
        return Err(PasswordChangeError::Exists(username.to_owned()));
    }
    let password = Password::parse_for_operator(temporary, &name)?;
    let hash = super::hash_off_thread(&password).await;
    let id = UserId::new();
    let now = Timestamp::now();
    let mut tx = store.begin().await?;
    repo::insert_operator(&mut tx, id, &name, &hash, roles, now).await?;
    repo::set_password(&mut tx, id, &hash, None, true, now).await?;
    audit::append(
        &mut tx,
        &NewAuditEntry::new(actor, AuditAction::OperatorCreated)
            .target(format!("user:{id}"))
            .details(serde_json::json!({
                "roles": roles.iter().map(|r| r.as_str()).collect::<Vec<_>>()
            })),
    )
    .await?;
    let login = if with_login && team::enabled(store).await? {
        Some(new_database_login(&mut tx, actor, id).await?)
    } else {
        None
    };
    tx.commit().await?;
    Ok((id, login))
}

/// An operator's database login (team mode): the Postgres user they connect as and its
/// password, shown once. The password is wiped when this is dropped and never printed by
/// `Debug`.
pub struct DatabaseLogin {
    /// The Postgres role name (`<prefix>_u_<username>`).
    pub user: String,
    password: zeroize::Zeroizing<String>,
}

impl DatabaseLogin {
    /// The password, to show once or put in the operator's keystore.
    pub fn password(&self) -> &str {
        &self.password
    }
}

impl std::fmt::Debug for DatabaseLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatabaseLogin")
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

/// Length of a generated database password (from a 54-letter alphabet: about 190 bits).
const DATABASE_PASSWORD_LEN: usize = 33;

async fn new_database_login(
    tx: &mut Tx,
    actor: impl audit::Acting,
    id: UserId,
) -> Result<DatabaseLogin, PasswordChangeError> {
    let password = zeroize::Zeroizing::new(super::random_password(DATABASE_PASSWORD_LEN));
    let user =
        team::create_login(tx, &id.to_string(), &password, Timestamp::now().micros()).await?;
    audit::append(
        tx,
        &NewAuditEntry::new(actor, AuditAction::OperatorDatabaseLogin)
            .target(format!("user:{id}"))
            .details(serde_json::json!({ "database_user": user })),
    )
    .await?;
    Ok(DatabaseLogin { user, password })
}

/// Gives an existing operator a database login (team mode), or a new password for the one
/// they have: for operators made before team mode, or one who lost theirs. Needs
/// [`Permission::UsersManage`]; the database checks it again through the caller's own login.
pub async fn database_login(
    store: &Store,
    actor: &Actor,
    username: &str,
) -> Result<DatabaseLogin, PasswordChangeError> {
    let _permit = rbac::require(store, actor, Permission::UsersManage).await?;
    if !team::enabled(store).await? {
        return Err(PasswordChangeError::NotTeamDatabase);
    }
    let id = target(store, username).await?;
    let mut tx = store.begin().await?;
    let login = new_database_login(&mut tx, actor, id).await?;
    tx.commit().await?;
    Ok(login)
}

/// The first administrator's database login, made by `vigil init` over the owner's connection
/// (the database refuses anyone else, as no operator holds a login yet).
pub async fn bootstrap_database_login(
    store: &Store,
    admin: UserId,
) -> Result<DatabaseLogin, PasswordChangeError> {
    if !team::enabled(store).await? {
        return Err(PasswordChangeError::NotTeamDatabase);
    }
    let mut tx = store.begin().await?;
    let login = new_database_login(&mut tx, audit::AuditActor::System("init"), admin).await?;
    tx.commit().await?;
    Ok(login)
}

/// Operator accounts, filtered and paged, by username. Needs [`Permission::UsersRead`].
pub async fn list(
    store: &Store,
    actor: &Actor,
    filter: &AccountFilter,
) -> Result<Vec<Account>, PasswordChangeError> {
    let _permit = rbac::require(store, actor, Permission::UsersRead).await?;
    let rows = repo::list_accounts(
        store,
        filter.role.map(Role::as_str),
        filter.status.as_deref(),
        filter.mfa,
        i64::from(filter.limit.unwrap_or(50).clamp(1, 1_000)),
        i64::from(filter.offset.unwrap_or(0)),
    )
    .await?;
    Ok(rows.into_iter().map(Account::from).collect())
}

/// One operator account. Needs [`Permission::UsersRead`].
pub async fn show(
    store: &Store,
    actor: &Actor,
    username: &str,
) -> Result<Account, PasswordChangeError> {
    let _permit = rbac::require(store, actor, Permission::UsersRead).await?;
    let all = repo::list_accounts(store, None, None, None, 100_000, 0).await?;
    all.into_iter()
        .find(|a| a.username == username)
        .map(Account::from)
        .ok_or_else(|| PasswordChangeError::UnknownOperator(username.to_owned()))
}

async fn target(store: &Store, username: &str) -> Result<UserId, PasswordChangeError> {
    let name = Username::parse(username)
        .map_err(|_| PasswordChangeError::UnknownOperator(username.to_owned()))?;
    Ok(repo::find_operator(store, &name)
        .await?
        .ok_or_else(|| PasswordChangeError::UnknownOperator(username.to_owned()))?
        .id)
}

/// Replaces an operator's roles; effective at their next token verification. Their wraps of
/// data-key purposes the new roles do not hold are deleted at once and those purposes' rotations
/// start. The last active administrator cannot lose the role. Needs [`Permission::RolesAssign`].
pub async fn set_roles(
    store: &Store,
    actor: &Actor,
    username: &str,
    roles: &[Role],
) -> Result<(), PasswordChangeError> {
    let _permit = rbac::require(store, actor, Permission::RolesAssign).await?;
    let id = target(store, username).await?;
    let mut tx = store.begin().await?;
    if !roles.contains(&Role::Admin) && repo::other_active_admins(&mut tx, id).await? == 0 {
        return Err(PasswordChangeError::LastAdmin);
    }
    repo::set_roles(&mut tx, id, roles, Timestamp::now()).await?;
    // Keys follow roles: wraps of a purpose the new roles do not hold go at once, and that
    // purpose's rotation starts.
    crate::keys::drop_unentitled(&mut tx, actor, id).await?;
    audit::append(
        &mut tx,
        &NewAuditEntry::new(actor, AuditAction::OperatorRolesChanged)
            .target(format!("user:{id}"))
            .details(serde_json::json!({
                "roles": roles.iter().map(|r| r.as_str()).collect::<Vec<_>>()
            })),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Suspends (ending every session at once) or reinstates an operator. Needs
/// [`Permission::UsersManage`]; nobody suspends themselves or the last active administrator.
pub async fn set_suspended(
    store: &Store,
    actor: &Actor,
    username: &str,
    suspended: bool,
) -> Result<(), PasswordChangeError> {
    let _permit = rbac::require(store, actor, Permission::UsersManage).await?;
    let id = target(store, username).await?;
    if id == actor.user_id() {
        return Err(PasswordChangeError::ResetSelf);
    }
    let now = Timestamp::now();
    let mut tx = store.begin().await?;
    if suspended {
        let is_admin = repo::find_operator(store, &Username::parse(username).expect("found"))
            .await?
            .map(|o| o.roles.contains(&Role::Admin))
            .unwrap_or(false);
        if is_admin && repo::other_active_admins(&mut tx, id).await? == 0 {
            return Err(PasswordChangeError::LastAdmin);
        }
        for s in repo::sessions_of(&mut tx, id).await? {
            repo::revoke_session(&mut tx, &s, "suspended", now).await?;
        }
    }
    repo::set_status(
        &mut tx,
        id,
        if suspended { "suspended" } else { "active" },
        now,
    )
    .await?;
    if suspended {
        // A suspended operator holds no data key; reinstated, they are granted again.
        crate::keys::drop_unentitled(&mut tx, actor, id).await?;
    }
    audit::append(
        &mut tx,
        &NewAuditEntry::new(
            actor,
            if suspended {
                AuditAction::OperatorSuspended
            } else {
                AuditAction::OperatorReinstated
            },
        )
        .target(format!("user:{id}")),
    )
    .await?;
    tx.commit().await?;
    // The login's groups went and it became NOLOGIN with the commit (a trigger mirrors the
    // status); its connections still open are ended now.
    if suspended && store.backend() == Backend::Postgres {
        team::end_connections(store, &id.to_string()).await?;
    }
    Ok(())
}

/// A session, for `sessions list`.
#[derive(Debug, Clone, Serialize)]
pub struct SessionInfo {
    /// Session id.
    pub id: String,
    /// Whose.
    pub username: String,
    /// Which client opened it.
    pub client: String,
    /// Opened (RFC 3339).
    pub created_at: String,
    /// Ends (RFC 3339).
    pub expires_at: String,
    /// Revoked (RFC 3339), if so.
    pub revoked_at: Option<String>,
}

/// Unexpired sessions: the actor's own, or everyone's with [`Permission::UsersManage`].
pub async fn sessions(
    store: &Store,
    actor: &Actor,
    everyone: bool,
) -> Result<Vec<SessionInfo>, PasswordChangeError> {
    if everyone {
        rbac::require(store, actor, Permission::UsersManage).await?;
    }
    let user = (!everyone).then(|| actor.user_id());
    Ok(session_infos(
        repo::list_sessions(store, user, Timestamp::now()).await?,
    ))
}

/// One account's unexpired sessions. Needs [`Permission::UsersManage`].
pub async fn sessions_of(
    store: &Store,
    actor: &Actor,
    user: UserId,
) -> Result<Vec<SessionInfo>, PasswordChangeError> {
    rbac::require(store, actor, Permission::UsersManage).await?;
    Ok(session_infos(
        repo::list_sessions(store, Some(user), Timestamp::now()).await?,
    ))
}

fn session_infos(rows: Vec<repo::SessionRow>) -> Vec<SessionInfo> {
    let t = |m: i64| Timestamp::from_micros(m).to_rfc3339();
    rows.into_iter()
        .map(|s| SessionInfo {
            id: s.id,
            username: s.username,
            client: s.client,
            created_at: t(s.created_at),
            expires_at: t(s.expires_at),
            revoked_at: s.revoked_at.map(t),
        })
        .collect()
}

/// Revokes a session: one's own, or anyone's with [`Permission::UsersManage`].
pub async fn revoke_session(
    store: &Store,
    actor: &Actor,
    session: &str,
) -> Result<(), PasswordChangeError> {
    let mut tx = store.begin().await?;
    let owner = repo::session_owner(&mut tx, session)
        .await?
        .ok_or(PasswordChangeError::UnknownSession)?;
    if owner != actor.user_id().to_string() {
        rbac::require(store, actor, Permission::UsersManage).await?;
    }
    repo::revoke_session(&mut tx, session, "revoked", Timestamp::now()).await?;
    audit::append(
        &mut tx,
        &NewAuditEntry::new(actor, AuditAction::SessionRevoked)
            .target(format!("session:{session}")),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// What kind of account a row of the `users` table is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AccountKind {
    /// Someone using the comment platform.
    Platform,
    /// A console operator.
    Operator,
    /// A headless worker's account.
    Service,
}

impl AccountKind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            AccountKind::Platform => "platform",
            AccountKind::Operator => "operator",
            AccountKind::Service => "service",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        [
            AccountKind::Platform,
            AccountKind::Operator,
            AccountKind::Service,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

/// An account status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AccountStatus {
    /// May sign in.
    Active,
    /// Suspended by an administrator or an automated response.
    Suspended,
    /// Locked after failed sign-ins.
    Locked,
    /// Erased or closed.
    Deleted,
}

impl AccountStatus {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            AccountStatus::Active => "active",
            AccountStatus::Suspended => "suspended",
            AccountStatus::Locked => "locked",
            AccountStatus::Deleted => "deleted",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        [
            AccountStatus::Active,
            AccountStatus::Suspended,
            AccountStatus::Locked,
            AccountStatus::Deleted,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

/// How the directory is searched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DirectorySearch {
    /// Usernames starting with this text (case-insensitive).
    UsernamePrefix(String),
    /// The one account with exactly this email, found through the blind index (the email is
    /// never compared or stored in plaintext).
    Email(String),
}

impl DirectorySearch {
    /// A search box's text: an exact email when it contains `@`, else a username prefix; `None`
    /// when blank.
    pub fn from_text(text: &str) -> Option<Self> {
        let t = text.trim();
        if t.is_empty() {
            None
        } else if t.contains('@') {
            Some(DirectorySearch::Email(t.to_owned()))
        } else {
            Some(DirectorySearch::UsernamePrefix(t.to_lowercase()))
        }
    }
}

/// Filters and page for [`directory`].
#[derive(Debug, Clone, Default)]
pub struct DirectoryQuery {
    /// Only this kind of account.
    pub kind: Option<AccountKind>,
    /// Only accounts holding this role.
    pub role: Option<Role>,
    /// Only accounts with this status.
    pub status: Option<AccountStatus>,
    /// Only accounts with MFA on (true) or off (false).
    pub mfa: Option<bool>,
    /// Username prefix or exact email.
    pub search: Option<DirectorySearch>,
    /// Page number, from 0.
    pub page: u32,
    /// Rows per page (clamped to 1..=500).
    pub page_size: u32,
}

/// One account of any kind, as the directory shows it (no personal data: emails and phones
/// stay sealed).
#[derive(Debug, Clone, Serialize)]
pub struct DirectoryEntry {
    /// Account id.
    pub id: String,
    /// Username.
    pub username: String,
    /// Display name.
    pub display_name: String,
    /// Platform user, operator or service account.
    pub kind: String,
    /// `active`, `suspended`, `locked` or `deleted`.
    pub status: String,
    /// Roles (operators).
    pub roles: Vec<String>,
    /// Whether MFA is on.
    pub mfa_enabled: bool,
    /// Two-letter country, if known.
    pub country: Option<String>,
    /// Whether a reset password must be changed at the next sign-in.
    pub must_change_password: bool,
    /// Locked until (RFC 3339), if locked now.
    pub locked_until: Option<String>,
    /// Created (RFC 3339).
    pub created_at: String,
    /// Last sign-in (RFC 3339).
    pub last_login_at: Option<String>,
}

impl From<repo::DirectoryRow> for DirectoryEntry {
    fn from(r: repo::DirectoryRow) -> Self {
        let t = |m: i64| Timestamp::from_micros(m).to_rfc3339();
        let now = Timestamp::now().micros();
        Self {
            id: r.id,
            username: r.username,
            display_name: r.display_name,
            kind: r.kind,
            status: r.status,
            roles: r.roles,
            mfa_enabled: r.mfa_enabled,
            country: r.country,
            must_change_password: r.must_change_password,
            locked_until: r.locked_until.filter(|u| *u > now).map(t),
            created_at: t(r.created_at),
            last_login_at: r.last_login_at.map(t),
        }
    }
}

/// One page of the directory and how many accounts match in all.
#[derive(Debug, Clone, Serialize)]
pub struct DirectoryPage {
    /// The page's accounts, by username.
    pub rows: Vec<DirectoryEntry>,
    /// Accounts matching the filters.
    pub total: u64,
}

/// Why the directory could not be read.
#[derive(Debug, thiserror::Error)]
pub enum DirectoryError {
    /// The actor may not read accounts.
    #[error(transparent)]
    Forbidden(#[from] crate::rbac::Forbidden),
    /// An email search needs the blind-index key, which this session cannot open.
    #[error(transparent)]
    Keys(#[from] crate::keys::KeyError),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

/// Every account (platform users, operators, service accounts), filtered, by username, one
/// page at a time. An email search goes through the blind index, so it needs `ring`. Needs
/// [`Permission::UsersRead`].
pub async fn directory(
    store: &Store,
    actor: &Actor,
    ring: Option<&crate::keys::KeyRing>,
    query: &DirectoryQuery,
) -> Result<DirectoryPage, DirectoryError> {
    let size = query.page_size.clamp(1, 500);
    let offset = u64::from(query.page) * u64::from(size);
    directory_range(store, actor, ring, query, size, offset).await
}

/// [`directory`] from any row, for callers that page by offset (the command line): at most
/// `limit` accounts (clamped to 1..=500) after the first `offset` that match; `query.page` and
/// `query.page_size` are not used. The same permission, email search and audit entry.
pub async fn directory_range(
    store: &Store,
    actor: &Actor,
    ring: Option<&crate::keys::KeyRing>,
    query: &DirectoryQuery,
    limit: u32,
    offset: u64,
) -> Result<DirectoryPage, DirectoryError> {
    let _permit = rbac::require(store, actor, Permission::UsersRead).await?;
    let mut filter = repo::DirectoryFilter {
        kind: query.kind.map(AccountKind::as_str),
        role: query.role.map(Role::as_str),
        status: query.status.map(AccountStatus::as_str),
        mfa: query.mfa,
        username_like: None,
        id: None,
    };
    match &query.search {
        None => {}
        Some(DirectorySearch::UsernamePrefix(p)) => {
            filter.username_like = Some(format!("{}%", like_escape(p)));
        }
        Some(DirectorySearch::Email(email)) => {
            let ring = ring.ok_or(crate::keys::KeyError::NoKeyPairHere)?;
            let found = crate::platform::find_user_by_email(store, ring, email).await?;
            // A search by email is a read of personal data: audited, with the result's
            // account (if any), never the address.
            crate::audit::record_personal_data_read(
                store,
                actor,
                "directory_email_search",
                found.map(|id| format!("user:{id}")),
                serde_json::json!({ "matches": u8::from(found.is_some()) }),
            )
            .await?;
            match found {
                Some(id) => filter.id = Some(id.to_string()),
                None => {
                    return Ok(DirectoryPage {
                        rows: Vec::new(),
                        total: 0,
                    })
                }
            }
        }
    }
    let (rows, total) = repo::directory(
        store,
        &filter,
        i64::from(limit.clamp(1, 500)),
        i64::try_from(offset).unwrap_or(i64::MAX),
    )
    .await?;
    Ok(DirectoryPage {
        rows: rows.into_iter().map(DirectoryEntry::from).collect(),
        total,
    })
}

/// One account of any kind by id. Needs [`Permission::UsersRead`].
pub async fn directory_entry(
    store: &Store,
    actor: &Actor,
    id: UserId,
) -> Result<Option<DirectoryEntry>, DirectoryError> {
    let _permit = rbac::require(store, actor, Permission::UsersRead).await?;
    let filter = repo::DirectoryFilter {
        id: Some(id.to_string()),
        ..repo::DirectoryFilter::default()
    };
    let (rows, _) = repo::directory(store, &filter, 1, 0).await?;
    Ok(rows.into_iter().next().map(DirectoryEntry::from))
}

fn like_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}
