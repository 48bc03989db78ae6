//! Operators, their passwords and the acting user.
//!
//! An [`Actor`] is made only here, by checking a password (and, with the identity module, a
//! second factor), so holding one proves the operator authenticated.

pub mod cli_session;
mod credential;
mod login;
pub mod mfa;
mod password;
pub mod platform_tokens;
mod repo;

pub mod tokens;
pub mod users;

use rand::RngCore;

use crate::audit::{self, AuditAction, AuditActor, NewAuditEntry};
use crate::rbac::Role;
use crate::store::{Store, StoreError, Timestamp, Tx};

pub use crate::identity::{Actor, InvalidUsername, MfaPolicy, UserId, Username};
pub use credential::CredentialKey;
pub use login::{
    finish_mfa, finish_mfa_at, login, login_at, LoginError, LoginOutcome, LoginSource,
    MfaChallenge, Session, CHALLENGE_SECONDS, FIRST_LOCK_SECONDS, LOCK_AFTER, MAX_ATTEMPTS,
    MAX_LOCK_SECONDS, WINDOW_SECONDS,
};
pub use password::{
    hash_password, is_common, normalize as normalize_password, verify_password, Password,
    PasswordRejected, COMMON_PASSWORDS, MAX_LENGTH as PASSWORD_MAX_LENGTH,
    MIN_LENGTH as PASSWORD_MIN_LENGTH,
};

/// Why authentication failed. Unknown user and wrong password are one variant on purpose.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// The username or password is wrong (which one is not said).
    #[error("invalid username or password")]
    InvalidCredentials,
    /// The account exists but may not sign in now.
    #[error("this account is {0}; an administrator must reinstate it")]
    NotActive(String),
    /// The account needs a second factor; the CLI cannot finish MFA yet.
    #[error("this account has MFA enabled; provide a TOTP code")]
    MfaRequired,
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for AuthError {
    fn from(e: sqlx::Error) -> Self {
        AuthError::Store(e.into())
    }
}

/// Checks an operator's password and returns the [`Actor`].
///
/// An unknown username costs the same argon2id work as a known one (a fixed dummy hash is
/// verified), so timing does not tell which usernames exist.
///
/// Under `policy`, an operator whose roles require MFA and who has none gets an actor that
/// may only enrol it ([`Actor::must_enrol_mfa`]).
pub async fn authenticate(
    store: &Store,
    username: &str,
    password: &str,
    policy: &MfaPolicy,
) -> Result<Actor, AuthError> {
    let found = match Username::parse(username) {
        Ok(u) => repo::find_operator(store, &u).await?,
        Err(_) => None,
    };
    // An account whose hash this session may not read (team mode: another operator's) is
    // treated as unknown: only the operator the database login belongs to signs in over it.
    let Some((op, hash)) = found.and_then(|o| o.password_hash.clone().map(|h| (o, h))) else {
        let _ = verify_password(password, password::dummy_hash());
        return Err(AuthError::InvalidCredentials);
    };
    let pw = zeroize::Zeroizing::new(password.to_owned());
    let ok = tokio::task::spawn_blocking(move || verify_password(&pw, &hash))
        .await
        .unwrap_or(false);
    if !ok {
        return Err(AuthError::InvalidCredentials);
    }
    if op.status != "active" {
        return Err(AuthError::NotActive(op.status));
    }
    if op.mfa_enabled {
        return Err(AuthError::MfaRequired);
    }
    let must_enrol_mfa = policy.requires(&op.roles);
    Ok(Actor::signed_in(
        op.id,
        op.username,
        op.roles,
        None,
        must_enrol_mfa,
    ))
}

/// Reads a signed-in operator's account again: the [`Actor`] with its current roles, or why it
/// may no longer act (suspended or deleted). A long-lived client (the desktop console)
/// calls this before each operation, so a change an administrator makes elsewhere takes
/// effect at once. An actor held at MFA enrolment is released once MFA is on.
pub async fn recheck(store: &Store, actor: &Actor) -> Result<Actor, AuthError> {
    let op = repo::find_operator(store, actor.username())
        .await?
        .filter(|o| o.id == actor.user_id())
        .ok_or(AuthError::InvalidCredentials)?;
    // A lockout (someone failing to sign in as this operator) does not end a session that
    // is already open: that would hand anyone who knows a username a way to cut it off.
    if op.status != "active" {
        return Err(AuthError::NotActive(op.status));
    }
    // A sign-in held at MFA enrolment stays held until MFA is on (an MFA reset meanwhile has
    // ended the session).
    Ok(Actor::signed_in(
        op.id,
        op.username,
        op.roles,
        actor.session_id().map(str::to_owned),
        actor.must_enrol_mfa() && !op.mfa_enabled,
    ))
}

/// The [`Actor`] of a session that is already open (its token verified or refreshed), read
/// from the database: current roles, or why the account may no longer act.
pub(crate) async fn actor_of(store: &Store, id: UserId) -> Result<Actor, AuthError> {
    let (username, status, roles) = repo::operator_by_id(store, id)
        .await?
        .ok_or(AuthError::InvalidCredentials)?;
    if status != "active" {
        return Err(AuthError::NotActive(status));
    }
    // A session is opened only by a sign-in that was not held at MFA enrolment, and an MFA
    // reset ends every session, so an open session's operator is never held.
    Ok(Actor::signed_in(id, username, roles, None, false))
}

/// Why `vigil init` could not create the first administrator.
#[derive(Debug, thiserror::Error)]
pub enum BootstrapError {
    /// The database already has operators; nothing was changed.
    #[error("this database is already initialised (it has operators); nothing was changed")]
    AlreadyInitialised,
    /// The password does not meet the policy.
    #[error(transparent)]
    Password(#[from] PasswordRejected),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The key pair or data keys could not be made or stored.
    #[error(transparent)]
    Keys(#[from] crate::keys::KeyError),
}

impl From<sqlx::Error> for BootstrapError {
    fn from(e: sqlx::Error) -> Self {
        BootstrapError::Store(e.into())
    }
}

/// Creates the first administrator, once. In one transaction: the account, its role, its
/// argon2id credential, the "initialised" marker, its key pair (private half sealed into
/// `keystore`), version 1 of every data key granted to it, and the audit entries.
pub async fn bootstrap_admin(
    store: &Store,
    keystore: &dyn crate::keystore::Keystore,
    username: &Username,
    password: &Password,
    bits: crate::crypto::KeyBits,
) -> Result<UserId, BootstrapError> {
    let hash = {
        let pw = password.clone();
        tokio::task::spawn_blocking(move || hash_password(&pw))
            .await
            .expect("hashing task panicked")
    };
    let id = UserId::new();
    let now = Timestamp::now();
    let mut tx = store.begin().await?;
    if repo::operator_count(&mut tx).await? > 0 || !repo::mark_initialised(&mut tx, now).await? {
        return Err(BootstrapError::AlreadyInitialised);
    }
    repo::insert_operator(&mut tx, id, username, &hash, &[Role::Admin], now).await?;
    audit::append(
        &mut tx,
        &NewAuditEntry::new(
            AuditActor::System("init"),
            AuditAction::OperatorBootstrapped,
        )
        .target(format!("user:{id}"))
        .details(serde_json::json!({ "roles": ["admin"] })),
    )
    .await?;
    crate::keys::provision_first_operator(&mut tx, keystore, id, password.expose(), bits).await?;
    tx.commit().await?;
    Ok(id)
}

/// Whether `vigil init` has run on this database.
pub async fn is_initialised(store: &Store) -> Result<bool, StoreError> {
    repo::is_initialised(store).await
}

/// Finds an operator's account id by username, for filters such as `audit list --actor`.
pub async fn operator_id(store: &Store, username: &Username) -> Result<Option<UserId>, StoreError> {
    Ok(repo::find_operator(store, username).await?.map(|o| o.id))
}

/// A random password of `len` characters from an unambiguous alphabet (for scratch databases).
pub fn random_password(len: usize) -> String {
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyzABCDEFGHJKMNPQRSTUVWXYZ23456789";
    let mut bytes = vec![0u8; len];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    bytes
        .iter()
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
        .collect()
}

/// Why an operator must choose a new password before doing anything else.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PasswordToChange {
    /// An administrator set it when creating the account: this is the operator's first
    /// password, not a reset.
    #[error(
        "your account is new and its password was set by an administrator when it was created"
    )]
    SetAtAccountCreation,
    /// An administrator reset it.
    #[error("your password was reset by an administrator")]
    ResetByAdministrator,
}

/// Why `actor` must change their password before anything else, or `None` if they need not.
/// Derived, not stored: a password still unchanged since the account was made was set at its
/// creation; any other password an administrator set came from a reset.
pub async fn password_to_change(
    store: &Store,
    actor: &Actor,
) -> Result<Option<PasswordToChange>, StoreError> {
    let Some(op) = repo::find_operator(store, actor.username()).await? else {
        return Ok(None);
    };
    if !op.must_change_password {
        return Ok(None);
    }
    Ok(Some(
        if repo::password_set_at_creation(store, op.id).await? {
            PasswordToChange::SetAtAccountCreation
        } else {
            PasswordToChange::ResetByAdministrator
        },
    ))
}

/// Why a password change or reset failed. Nothing was changed.
#[derive(Debug, thiserror::Error)]
pub enum PasswordChangeError {
    /// The actor may not reset passwords.
    #[error(transparent)]
    Forbidden(#[from] crate::rbac::Forbidden),
    /// The current password given is wrong.
    #[error("the current password is wrong")]
    WrongPassword,
    /// The new password does not meet the policy.
    #[error(transparent)]
    Rejected(#[from] PasswordRejected),
    /// No operator by that name.
    #[error("no operator named {0}")]
    UnknownOperator(String),
    /// No session by that id.
    #[error("no session with that id")]
    UnknownSession,
    /// Administrators change their own account by other means.
    #[error("this cannot be done to your own account")]
    ResetSelf,
    /// An operator by that name exists already.
    #[error("an operator named {0} already exists")]
    Exists(String),
    /// Database logins exist only on a shared Postgres database (team mode).
    #[error(
        "database logins exist only in team mode: on Postgres, once the database owner may \
         create roles (CREATEROLE) and has run `vigil migrate`"
    )]
    NotTeamDatabase,
    /// The change would leave no active administrator.
    #[error("this would leave no active administrator")]
    LastAdmin,
    /// The key pair could not be re-sealed.
    #[error(transparent)]
    Keys(#[from] crate::keys::KeyError),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for PasswordChangeError {
    fn from(e: sqlx::Error) -> Self {
        PasswordChangeError::Store(e.into())
    }
}

pub(super) async fn hash_off_thread(password: &Password) -> String {
    let pw = password.clone();
    tokio::task::spawn_blocking(move || hash_password(&pw))
        .await
        .expect("hashing task panicked")
}

/// Ends `user`'s sessions within `tx`, all but `keep` if given: each session and its refresh
/// tokens are revoked with `reason`, so access tokens issued in them stop verifying (their `sid`
/// is no longer live, and the authorisation epoch moves, so no cached verification outlives
/// it) and cannot be refreshed. Returns how many live sessions ended.
pub(crate) async fn end_sessions(
    tx: &mut Tx,
    user: UserId,
    keep: Option<&str>,
    reason: &str,
    now: Timestamp,
) -> Result<u64, StoreError> {
    repo::end_sessions(tx, user, keep, reason, now).await
}

/// What a password change did.
pub struct PasswordChanged {
    /// The credential key, sealed now with the new password.
    pub credential: CredentialKey,
    /// The operator's other sessions, ended.
    pub sessions_ended: u64,
}

impl std::fmt::Debug for PasswordChanged {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswordChanged")
            .field("sessions_ended", &self.sessions_ended)
            .finish_non_exhaustive()
    }
}

/// The signed-in operator changes their own password. Their key pair on this machine and their
/// credential key (which seals their TOTP secret) are re-sealed with the new password in the
/// same step, so both keep opening, on every machine. Every other session of theirs ends in the
/// same transaction (a session opened with the old password is not trusted with the new one);
/// `current`, the session making the change, stays (none: the change ends them all).
/// After an administrator's reset the credential key is a new one: the temporary password was
/// known to the administrator, so nothing sealed under it is trusted.
pub async fn change_password(
    store: &Store,
    keystore: &dyn crate::keystore::Keystore,
    actor: &Actor,
    ring: &crate::keys::KeyRing,
    current_session: Option<&str>,
    current: &str,
    new: &str,
) -> Result<PasswordChanged, PasswordChangeError> {
    let op = repo::find_operator(store, actor.username())
        .await?
        .ok_or_else(|| PasswordChangeError::UnknownOperator(actor.username().to_string()))?;
    let (pw, hash) = (
        zeroize::Zeroizing::new(current.to_owned()),
        op.password_hash.clone().unwrap_or_default(),
    );
    let old_key = tokio::task::spawn_blocking(move || password::verify_and_derive(&pw, &hash))
        .await
        .ok()
        .flatten()
        .ok_or(PasswordChangeError::WrongPassword)?;
    let new = Password::parse_for_operator(new, actor.username())?;
    let (hash, new_key) = {
        let pw = new.clone();
        tokio::task::spawn_blocking(move || password::hash_and_derive(&pw))
            .await
            .expect("hashing task panicked")
    };
    let credential = op
        .credential_key
        .as_deref()
        .filter(|_| !op.must_change_password)
        .and_then(|sealed| CredentialKey::open(op.id, sealed, &old_key).ok())
        .unwrap_or_else(|| CredentialKey::random(op.id));
    let now = Timestamp::now();
    let mut tx = store.begin().await?;
    repo::set_password(
        &mut tx,
        actor.user_id(),
        &hash,
        Some(&credential.seal(&new_key)),
        false,
        now,
    )
    .await?;
    let ended = end_sessions(
        &mut tx,
        actor.user_id(),
        current_session,
        "password_changed",
        now,
    )
    .await?;
    crate::notices::add(
        &mut tx,
        actor.user_id(),
        crate::notices::NoticeKind::PasswordChanged,
        None,
        None,
        now,
    )
    .await?;
    audit::append(
        &mut tx,
        &NewAuditEntry::new(actor, AuditAction::PasswordChanged)
            .target(format!("user:{}", actor.user_id()))
            .details(serde_json::json!({ "sessions_ended": ended })),
    )
    .await?;
    // Re-seal before committing; if the commit fails, seal it back under the old password.
    crate::keys::reseal(keystore, ring, new.expose())?;
    if let Err(e) = tx.commit().await {
        let _ = crate::keys::reseal(keystore, ring, current);
        return Err(e.into());
    }
    Ok(PasswordChanged {
        credential,
        sessions_ended: ended,
    })
}

/// What an administrator's password reset undid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct ResetReport {
    /// Key pairs retired: the operator enrols a new one, and an administrator grants it.
    pub key_pairs_retired: u64,
    /// MFA was on (or being set up) and was removed: the TOTP secret was sealed with a key only
    /// the old password opened, so the operator must enrol again.
    pub mfa_removed: bool,
    /// The operator's sessions, all ended.
    pub sessions_ended: u64,
}

/// An administrator sets a temporary password for another operator, who must change it at the
/// next sign-in. Their key pairs are retired (the old sealed keys no longer open with a
/// password the operator knows); they enrol a new one and an administrator grants it. Their
/// credential key, which only the old password opened, is dropped, and with it their MFA: the
/// TOTP secret and backup codes are deleted and they enrol again. Every session of theirs ends
/// (tokens issued in them stop verifying and cannot be refreshed).
/// Needs [`crate::rbac::Permission::UsersManage`].
pub async fn reset_password(
    store: &Store,
    actor: &Actor,
    username: &str,
    temporary: &str,
) -> Result<ResetReport, PasswordChangeError> {
    let _permit = crate::rbac::require(store, actor, crate::rbac::Permission::UsersManage).await?;
    let name = Username::parse(username)
        .map_err(|_| PasswordChangeError::UnknownOperator(username.to_owned()))?;
    let op = repo::find_operator(store, &name)
        .await?
        .ok_or_else(|| PasswordChangeError::UnknownOperator(username.to_owned()))?;
    if op.id == actor.user_id() {
        return Err(PasswordChangeError::ResetSelf);
    }
    let temporary = Password::parse_for_operator(temporary, &name)?;
    let hash = hash_off_thread(&temporary).await;
    let now = Timestamp::now();
    let mut tx = store.begin().await?;
    repo::set_password(&mut tx, op.id, &hash, None, true, now).await?;
    let retired = crate::keys::retire_key_pairs(&mut tx, op.id).await?;
    let mfa_removed = crate::auth::mfa::remove_in(&mut tx, op.id).await?;
    let ended = end_sessions(&mut tx, op.id, None, "password_reset", now).await?;
    use crate::notices::{self, NoticeKind};
    notices::add(
        &mut tx,
        op.id,
        NoticeKind::PasswordReset,
        Some(actor),
        None,
        now,
    )
    .await?;
    if mfa_removed {
        notices::add(
            &mut tx,
            op.id,
            NoticeKind::MfaDisabled,
            Some(actor),
            None,
            now,
        )
        .await?;
    }
    audit::append(
        &mut tx,
        &NewAuditEntry::new(actor, AuditAction::PasswordReset)
            .target(format!("user:{}", op.id))
            .details(serde_json::json!({
                "key_pairs_retired": retired,
                "mfa_removed": mfa_removed,
                "sessions_ended": ended,
            })),
    )
    .await?;
    tx.commit().await?;
    Ok(ResetReport {
        key_pairs_retired: retired,
        mfa_removed,
        sessions_ended: ended,
    })
}

/// An administrator clears an operator's lockout and failed-attempt count, and the throttling
/// window of their account name. Needs [`crate::rbac::Permission::UsersManage`].
pub async fn unlock_account(
    store: &Store,
    actor: &Actor,
    username: &str,
) -> Result<(), PasswordChangeError> {
    let _permit = crate::rbac::require(store, actor, crate::rbac::Permission::UsersManage).await?;
    let name = Username::parse(username)
        .map_err(|_| PasswordChangeError::UnknownOperator(username.to_owned()))?;
    let op = repo::find_operator(store, &name)
        .await?
        .ok_or_else(|| PasswordChangeError::UnknownOperator(username.to_owned()))?;
    let salt = repo::throttle_salt(store).await?;
    let mut tx = store.begin().await?;
    repo::unlock(&mut tx, op.id).await?;
    repo::clear_hits(
        &mut tx,
        "login:account",
        &login::account_subject(&salt, username),
    )
    .await?;
    audit::append(
        &mut tx,
        &NewAuditEntry::new(actor, AuditAction::AccountUnlocked).target(format!("user:{}", op.id)),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}
