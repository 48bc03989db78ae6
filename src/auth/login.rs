//! Signing in: password, account status, throttling and lockout, then the second factor.
//!
//! Unknown user and wrong password give one error and cost the same argon2id work. With MFA on,
//! the password step yields an [`MfaChallenge`]: a 5-minute, single-use token bound to that
//! attempt and usable for nothing but [`finish_mfa`]. Every attempt is written to
//! `activity_log` (kind `vigil_login`) with a reason code, never the password.
//!
//! Throttling and lockout count an attempt before anything about it is checked: it takes its
//! place in the sliding windows of its account name and source, and in the account's failures in
//! a row (the statement that counts it also sets the lock), so a burst of concurrent attempts
//! gets no more password checks than the limit. Only a complete sign-in gives its place back. A
//! second factor is one more part of the same attempt: a wrong or replayed code (or a challenge
//! never finished) leaves the attempt counted as a failure, and the challenge is spent by its
//! first code, right or wrong.
//!
//! The argon2id run that checks the password also yields the key that opens the operator's
//! credential key ([`CredentialKey`]), which opens their TOTP secret: the second factor needs
//! nothing from this machine, and no second argon2id run.

use rand::RngCore;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::credential::CredentialKey;
use super::password::PasswordKey;
use super::{password, repo, Actor, AuthError, MfaPolicy, Username};
use crate::auth::mfa::{self, MfaError};
use crate::keys::{self, KeyError, KeyRing};
use crate::keystore::Keystore;
use crate::store::{Store, Timestamp};

/// Failed attempts allowed per window, per account name and per source (the origin document's
/// figure). Successes do not count: every command-line call signs in. A wrong second factor
/// counts, as part of its attempt.
pub const MAX_ATTEMPTS: i64 = 5;
/// The sliding window.
pub const WINDOW_SECONDS: i64 = 300;
/// Failed attempts in a row (wrong password, or wrong second factor) before the account locks;
/// each further failure doubles the lock.
pub const LOCK_AFTER: i64 = 5;
/// The first lockout's length; each further one doubles it.
pub const FIRST_LOCK_SECONDS: i64 = 60;
/// The longest lockout.
pub const MAX_LOCK_SECONDS: i64 = 24 * 3600;
/// How long an MFA challenge lives.
pub const CHALLENGE_SECONDS: i64 = 300;

/// Where an attempt comes from.
#[derive(Debug, Clone, Default)]
pub struct LoginSource {
    /// The client's address, if known (throttled on; kept only as a salted hash for 5 minutes).
    pub ip: Option<String>,
    /// The client program.
    pub user_agent: Option<String>,
}

/// A signed-in operator: who, and the keys this machine unlocked for them (none if this
/// machine holds no key pair for them yet).
#[derive(Debug)]
pub struct Session {
    /// The operator.
    pub actor: Actor,
    /// Their unlocked keys.
    pub keys: Option<KeyRing>,
    /// Their credential key, opened by this sign-in's password (none while a password an
    /// administrator set must be changed).
    pub credential: Option<CredentialKey>,
    /// An administrator reset the password: it must be changed before anything else.
    pub must_change_password: bool,
}

/// An attempt under way: its places in the throttling windows, given back only if it succeeds.
#[derive(Debug)]
struct Attempt {
    hits: Vec<String>,
    user_agent: Option<String>,
    /// This machine had no key pair for the operator, who has one elsewhere: a complete sign-in
    /// tells them (a notice).
    new_machine: bool,
}

/// The password was right and a second factor is owed.
pub struct MfaChallenge {
    token: Zeroizing<String>,
    expires_at: Timestamp,
    pending: Session,
    attempt: Attempt,
}

impl std::fmt::Debug for MfaChallenge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MfaChallenge")
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

impl MfaChallenge {
    /// The challenge token, to hand to the client that must send it back with the code.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// When it stops working.
    pub fn expires_at(&self) -> Timestamp {
        self.expires_at
    }
}

/// What the password step gave.
#[derive(Debug)]
pub enum LoginOutcome {
    /// Signed in.
    SignedIn(Session),
    /// A second factor is owed.
    MfaRequired(MfaChallenge),
}

/// Why a sign-in failed. Wrong user and wrong password are one case, on purpose.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    /// The username or password is wrong (which one is not said).
    #[error("invalid username or password")]
    InvalidCredentials,
    /// Too many attempts for this account name or source, or the account is locked.
    #[error("too many sign-in attempts; try again in {retry_after_seconds} seconds")]
    Throttled {
        /// Seconds until an attempt may succeed.
        retry_after_seconds: i64,
    },
    /// The account exists but may not sign in.
    #[error("this account is {0}; an administrator must reinstate it")]
    NotActive(String),
    /// The challenge token is wrong, used or expired.
    #[error("the sign-in challenge is invalid or has expired; sign in again")]
    ChallengeInvalid,
    /// The second factor was refused.
    #[error(transparent)]
    Mfa(#[from] MfaError),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// The keystore failed.
    #[error(transparent)]
    Keys(#[from] KeyError),
}

impl From<AuthError> for LoginError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::InvalidCredentials | AuthError::MfaRequired => {
                LoginError::InvalidCredentials
            }
            AuthError::NotActive(s) => LoginError::NotActive(s),
            AuthError::Store(s) => LoginError::Store(s),
        }
    }
}

fn subject(salt: &[u8], kind: &str, value: &str) -> Vec<u8> {
    let mut h = Sha256::new();
    h.update(salt);
    h.update(kind.as_bytes());
    h.update([0]);
    h.update(value.trim().to_lowercase().as_bytes());
    h.finalize().to_vec()
}

/// The throttling subject of an account name.
pub(super) fn account_subject(salt: &[u8], username: &str) -> Vec<u8> {
    subject(salt, "account", username)
}

const ACCOUNT_SCOPE: &str = "login:account";
const SOURCE_SCOPE: &str = "login:source";

/// The throttling subjects of an attempt: its account name, and its source if known.
async fn subjects(
    store: &Store,
    username: &str,
    source: &LoginSource,
) -> Result<Vec<(&'static str, Vec<u8>)>, LoginError> {
    let salt = repo::throttle_salt(store).await?;
    let mut subjects = vec![(ACCOUNT_SCOPE, account_subject(&salt, username))];
    if let Some(ip) = &source.ip {
        subjects.push((SOURCE_SCOPE, subject(&salt, "ip", ip)));
    }
    Ok(subjects)
}

const LOCKOUT: repo::Lockout = repo::Lockout {
    after: LOCK_AFTER,
    first_seconds: FIRST_LOCK_SECONDS,
    max_seconds: MAX_LOCK_SECONDS,
};

/// Seconds from `now` until `until` (at least one).
fn seconds_until(until: i64, now: Timestamp) -> i64 {
    ((until - now.micros()) / 1_000_000).max(1)
}

/// A complete sign-in: the account's failures in a row are cleared and the attempt's places in
/// the windows given back.
async fn succeeded(
    store: &Store,
    user: super::UserId,
    attempt: &Attempt,
    reason: Option<&str>,
    now: Timestamp,
) -> Result<(), LoginError> {
    repo::record_success(store, user, now).await?;
    repo::release_hits(store, &attempt.hits).await?;
    if attempt.new_machine {
        crate::notices::add_now(
            store,
            user,
            crate::notices::NoticeKind::NewMachine,
            attempt.user_agent.as_deref(),
        )
        .await?;
    }
    repo::log_attempt(
        store,
        Some(user),
        "success",
        reason,
        attempt.user_agent.as_deref(),
        now,
    )
    .await?;
    Ok(())
}

/// The password step. The keystore, if there is one, opens this machine's key pair (for the
/// TOTP secret and the session's data keys).
///
/// Under `policy`, an operator whose roles require MFA and who has none signs in held at
/// enrolment: the session's actor passes no permission check ([`Actor::must_enrol_mfa`]) until
/// they enrol and confirm a second factor.
pub async fn login(
    store: &Store,
    keystore: Option<&dyn Keystore>,
    username: &str,
    password: &str,
    source: &LoginSource,
    policy: &MfaPolicy,
) -> Result<LoginOutcome, LoginError> {
    login_at(
        store,
        keystore,
        username,
        password,
        source,
        policy,
        Timestamp::now(),
    )
    .await
}

/// [`login`] at a given time (tests step the clock).
pub async fn login_at(
    store: &Store,
    keystore: Option<&dyn Keystore>,
    username: &str,
    password: &str,
    source: &LoginSource,
    policy: &MfaPolicy,
    now: Timestamp,
) -> Result<LoginOutcome, LoginError> {
    let agent = source.user_agent.as_deref();
    let subjects = subjects(store, username, source).await?;
    let since = Timestamp::from_micros(now.micros() - WINDOW_SECONDS * 1_000_000);
    let hits = match repo::take_hits(store, &subjects, now, since, MAX_ATTEMPTS).await? {
        repo::Taken::Counted(hits) => hits,
        repo::Taken::Full { oldest } => {
            repo::log_attempt(store, None, "failure", Some("throttled"), agent, now).await?;
            return Err(LoginError::Throttled {
                retry_after_seconds: seconds_until(oldest + WINDOW_SECONDS * 1_000_000, now),
            });
        }
    };
    let mut attempt = Attempt {
        hits,
        user_agent: source.user_agent.clone(),
        new_machine: false,
    };
    // An account whose hash this session may not read (team mode: another operator's) is
    // treated as unknown, so a failure over someone else's login does not lock them out.
    let found = match Username::parse(username) {
        Ok(u) => repo::find_operator(store, &u)
            .await?
            .filter(|o| o.password_hash.is_some()),
        Err(_) => None,
    };
    let Some(op) = found else {
        let pw = Zeroizing::new(password.to_owned());
        let _ = tokio::task::spawn_blocking(move || {
            password::verify_and_derive(&pw, password::dummy_hash())
        })
        .await;
        repo::log_attempt(store, None, "failure", Some("unknown_user"), agent, now).await?;
        return Err(LoginError::InvalidCredentials);
    };
    // Counted as a failure before the password is checked; a locked account's password is not
    // checked at all.
    if !repo::count_attempt(store, op.id, now, &LOCKOUT).await? {
        repo::release_hits(store, &attempt.hits).await?;
        repo::log_attempt(store, Some(op.id), "failure", Some("locked"), agent, now).await?;
        let until = repo::locked_until(store, op.id)
            .await?
            .unwrap_or(now.micros());
        return Err(LoginError::Throttled {
            retry_after_seconds: seconds_until(until, now),
        });
    }
    let (pw, hash) = (
        Zeroizing::new(password.to_owned()),
        op.password_hash.clone().unwrap_or_default(),
    );
    let check = tokio::task::spawn_blocking(move || password::verify_and_derive(&pw, &hash));
    // The keystore's sealed key pair takes a second argon2id run: it runs beside the password
    // check (on another core), changes nothing, and is used only once the password is right.
    let sealed = async {
        match keystore {
            Some(ks) => Some(keys::open_sealed(store, ks, op.id, password).await),
            None => None,
        }
    };
    let (checked, sealed) = tokio::join!(check, sealed);
    let password_key = checked.ok().flatten();
    let Some(password_key) = password_key else {
        repo::log_attempt(
            store,
            Some(op.id),
            "failure",
            Some("bad_password"),
            agent,
            now,
        )
        .await?;
        return Err(LoginError::InvalidCredentials);
    };
    if op.status != "active" {
        // The password was right: not a guess, so it does not count.
        repo::clear_failures(store, op.id).await?;
        repo::release_hits(store, &attempt.hits).await?;
        repo::log_attempt(
            store,
            Some(op.id),
            "failure",
            Some("not_active"),
            agent,
            now,
        )
        .await?;
        return Err(LoginError::NotActive(op.status));
    }
    let credential = credential_at_sign_in(store, &op, &password_key).await?;
    // With MFA on, the second factor is owed below; without it, a role the policy covers may
    // only enrol one.
    let must_enrol_mfa = !op.mfa_enabled && policy.requires(&op.roles);
    let actor = Actor::signed_in(op.id, op.username, op.roles, None, must_enrol_mfa);
    // Without a usable keystore or key pair here the operator still signs in, with no keys
    // (commands that need them say so); the TOTP secret opens with the credential key.
    let unlocked = match (keystore, sealed) {
        (Some(ks), Some(sealed)) => {
            let opened = match sealed {
                Ok(open) => keys::finish_unlock(store, ks, password, open).await,
                Err(e) => Err(e),
            };
            match opened {
                // A new operator's first sign-in makes their key pair, on their own machine;
                // so does the first sign-in after an administrator's reset retired the old one.
                Err(KeyError::NoKeyPairHere | KeyError::KeyPairRetired)
                    if !keys::has_live_key_pair(store, actor.user_id()).await? =>
                {
                    keys::enrol(store, ks, &actor, password, keys::DEFAULT_BITS)
                        .await
                        .map(|_| ())?;
                    keys::unlock(store, ks, &actor, password).await
                }
                other => other,
            }
        }
        _ => Err(KeyError::NoKeyPairHere),
    };
    let keys = match unlocked {
        Ok(ring) => Some(ring),
        // A keystore that holds no key pair of theirs while one is live elsewhere: another
        // machine. (A first sign-in, or the first after a reset, makes the key pair above.)
        Err(KeyError::NoKeyPairHere | KeyError::KeyPairRetired) => {
            attempt.new_machine = keystore.is_some();
            None
        }
        Err(KeyError::Keystore(_)) => None,
        Err(e) => return Err(e.into()),
    };
    let session = Session {
        actor,
        keys,
        credential,
        must_change_password: op.must_change_password,
    };
    if op.mfa_enabled {
        let mut raw = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut raw);
        let token = Zeroizing::new(hex::encode(raw));
        let expires_at = Timestamp::from_micros(now.micros() + CHALLENGE_SECONDS * 1_000_000);
        repo::insert_challenge(
            store,
            op.id,
            &Sha256::digest(token.as_bytes()),
            now,
            expires_at,
        )
        .await?;
        repo::log_attempt(
            store,
            Some(op.id),
            "pending",
            Some("mfa_required"),
            agent,
            now,
        )
        .await?;
        // The attempt stays counted until the second factor completes it.
        return Ok(LoginOutcome::MfaRequired(MfaChallenge {
            token,
            expires_at,
            pending: session,
            attempt,
        }));
    }
    succeeded(store, op.id, &attempt, None, now).await?;
    complete_pending_grants(store, &session).await;
    Ok(LoginOutcome::SignedIn(session))
}

/// A signed-in console that holds a purpose wraps the grants administrators ordered for it and
/// starts the rotations others asked for. Sign-in does not fail if it cannot: the next holder's
/// sign-in tries again.
async fn complete_pending_grants(store: &Store, session: &Session) {
    if session.actor.must_enrol_mfa() {
        return;
    }
    if let Some(ring) = &session.keys {
        if let Err(e) = keys::complete_pending(store, ring).await {
            tracing::warn!(error = %e, "pending key grants not completed");
        }
        if let Err(e) = keys::rotation::start_requested(store, ring, &session.actor).await {
            tracing::warn!(error = %e, "requested key rotations not started");
        }
    }
}

/// The second step: the challenge's own token back, with a TOTP or backup code.
pub async fn finish_mfa(
    store: &Store,
    challenge: MfaChallenge,
    token: &str,
    code: &str,
) -> Result<Session, LoginError> {
    finish_mfa_at(store, challenge, token, code, Timestamp::now()).await
}

/// [`finish_mfa`] at a given time (tests step the clock).
///
/// The challenge is spent before the code is looked at, so it takes one code only: after a wrong
/// one the operator starts again with the password, which the throttle and lockout count. A
/// replayed TOTP code is refused exactly as a wrong one is (saying "already used" would tell an
/// onlooker the code had been right); only the activity log tells them apart.
pub async fn finish_mfa_at(
    store: &Store,
    challenge: MfaChallenge,
    token: &str,
    code: &str,
    now: Timestamp,
) -> Result<Session, LoginError> {
    let user = challenge.pending.actor.user_id();
    let agent = challenge.attempt.user_agent.as_deref();
    if !repo::spend_challenge(store, user, &Sha256::digest(token.as_bytes()), now).await? {
        repo::log_attempt(
            store,
            Some(user),
            "failure",
            Some("challenge_invalid"),
            agent,
            now,
        )
        .await?;
        return Err(LoginError::ChallengeInvalid);
    }
    let pending = &challenge.pending;
    let verdict = mfa::check(
        store,
        pending.credential.as_ref(),
        pending.keys.as_ref(),
        user,
        code,
        now,
    )
    .await;
    let refused = match verdict {
        Ok(mfa::Verdict::Accepted) => None,
        Ok(mfa::Verdict::Wrong) => Some(("mfa_failed", MfaError::InvalidCode)),
        Ok(mfa::Verdict::Replayed) => Some(("mfa_replayed", MfaError::InvalidCode)),
        Err(e) => Some(("mfa_failed", e)),
    };
    if let Some((reason, e)) = refused {
        // The attempt the password step counted stays counted: a failure like a wrong password.
        repo::log_attempt(store, Some(user), "failure", Some(reason), agent, now).await?;
        return Err(e.into());
    }
    succeeded(store, user, &challenge.attempt, Some("mfa"), now).await?;
    complete_pending_grants(store, &challenge.pending).await;
    Ok(challenge.pending)
}

/// The operator's credential key at sign-in, opened with the key `password_key` their password
/// gave. Made (and stored sealed) at the first sign-in that has none, unless the password is a
/// temporary one an administrator set: then none, until the operator chooses their own.
async fn credential_at_sign_in(
    store: &Store,
    op: &repo::OperatorRow,
    password_key: &PasswordKey,
) -> Result<Option<CredentialKey>, LoginError> {
    if op.must_change_password {
        return Ok(None);
    }
    if let Some(sealed) = &op.credential_key {
        if let Ok(key) = CredentialKey::open(op.id, sealed, password_key) {
            return Ok(Some(key));
        }
        // Sealed under a password replaced outside Vigil. While a TOTP secret depends on it, keep
        // it (an administrator's MFA reset clears the way); otherwise make a new one.
        if mfa::has_sealed_secret(store, op.id).await? {
            tracing::warn!(user = %op.id, "the credential key does not open with this password");
            return Ok(None);
        }
    }
    let key = CredentialKey::random(op.id);
    let stored = repo::set_credential_key(
        store,
        op.id,
        op.password_hash.as_deref().unwrap_or_default(),
        op.credential_key.as_deref(),
        &key.seal(password_key),
    )
    .await?;
    if stored {
        return Ok(Some(key));
    }
    // Another sign-in stored one meanwhile.
    Ok(repo::credential_key(store, op.id)
        .await?
        .and_then(|sealed| CredentialKey::open(op.id, &sealed, password_key).ok()))
}
