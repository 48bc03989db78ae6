//! What the desktop app holds between commands: the configuration, the open database, and the
//! signed-in operator with their unlocked keys and tokens. Secrets stay here, in Rust: the UI
//! sees none of the private key, the data keys, the refresh token or the MFA challenge.

use std::sync::{Arc, Mutex, RwLock};

use vigil::auth::tokens::{self, SessionLimits, TokenError, TokenPair, Verifier};
use vigil::auth::{self, Actor, CredentialKey, MfaChallenge, Session};
use vigil::config::Config;
use vigil::keys::keystore::Keystore;
use vigil::keys::KeyRing;
use vigil::security_events::{self, Outcome};
use vigil::store::Store;

use crate::error::{CommandError, CommandResult, ErrorCode};
mod stops;
mod watch;
pub use stops::{RunKey, Stops};
pub use watch::Watch;
#[cfg(test)]
pub(crate) use watch::OVERLAP_MICROS;

/// What a command gets while the console is locked.
pub fn locked_error() -> CommandError {
    CommandError::new(
        ErrorCode::SessionLocked,
        "Vigil locked itself after a while without use: sign in again to continue",
    )
}

/// The client name recorded on the desktop app's sessions.
pub const CLIENT: &str = "vigil-desktop";

/// Where the app's sign-ins come from, for the activity log and throttling.
pub fn login_source() -> vigil::auth::LoginSource {
    vigil::auth::LoginSource {
        ip: None,
        user_agent: Some(format!("{CLIENT}/{}", vigil::VERSION)),
    }
}

/// The open database and this machine's keystore.
pub struct Db {
    /// The console database.
    pub store: Store,
    /// This machine's keystore, if one could be opened (sign-in works without; keys do not).
    pub keystore: Option<Arc<dyn Keystore>>,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db")
            .field("store", &self.store.describe())
            .finish_non_exhaustive()
    }
}

/// Serial numbers of sign-ins, so the background monitor can tell one session from the next.
static SESSIONS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// A signed-in operator.
pub struct DesktopSession {
    serial: u64,
    actor: Mutex<Actor>,
    /// Their keys on this machine, if it holds a key pair for them.
    pub ring: Option<KeyRing>,
    /// Their credential key (seals their TOTP secret), opened by their password at sign-in;
    /// none while a password an administrator set must be changed.
    credential: Mutex<Option<CredentialKey>>,
    /// Access and refresh token, when the operator's key pair holds the token key.
    tokens: tokio::sync::Mutex<Option<TokenPair>>,
    must_change_password: Mutex<bool>,
}

impl std::fmt::Debug for DesktopSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DesktopSession")
            .field("actor", &self.actor().username().as_str())
            .finish_non_exhaustive()
    }
}

impl DesktopSession {
    /// This sign-in's number, unique while the app runs (from 1).
    pub fn serial(&self) -> u64 {
        self.serial
    }

    /// The operator as last checked.
    pub fn actor(&self) -> Actor {
        self.actor.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Whether the password must be changed before anything else.
    pub fn must_change_password(&self) -> bool {
        *self
            .must_change_password
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// Records that the password was changed, and the credential key it now opens.
    pub fn password_changed(&self, credential: CredentialKey) {
        *self
            .must_change_password
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = false;
        *self.credential.lock().unwrap_or_else(|p| p.into_inner()) = Some(credential);
    }

    /// The operator's credential key, if this sign-in opened one.
    pub fn credential(&self) -> Option<CredentialKey> {
        self.credential
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The session id of its tokens, if it has them.
    pub async fn session_id(&self) -> Option<String> {
        self.tokens
            .lock()
            .await
            .as_ref()
            .map(|t| t.session_id.clone())
    }
}

/// The app's state, shared by every command.
pub struct AppState {
    config: RwLock<Config>,
    db: tokio::sync::RwLock<Option<Arc<Db>>>,
    session: Mutex<Option<Arc<DesktopSession>>>,
    challenge: tokio::sync::Mutex<Option<MfaChallenge>>,
    verifier: Verifier,
    /// The operator whose session locked itself when idle, until they sign in again.
    locked: Mutex<Option<String>>,
    /// When the operator last used the window (reported by the UI), for the idle lock.
    activity: Mutex<std::time::Instant>,
    /// The background monitor's state.
    pub(crate) watch: Watch,
    /// Runs started here that the operator may ask to stop.
    pub(crate) stops: Stops,
}

/// Where the console stands, for the UI's lock screen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// Nobody is signed in.
    SignedOut,
    /// Signed in and in use.
    Active,
    /// Locked after the idle timeout.
    Locked,
}

impl AppState {
    /// State over `config`; the database is opened on first use.
    pub fn new(config: Config) -> Self {
        Self {
            config: RwLock::new(config),
            db: tokio::sync::RwLock::new(None),
            session: Mutex::new(None),
            challenge: tokio::sync::Mutex::new(None),
            verifier: Verifier::new(),
            locked: Mutex::new(None),
            activity: Mutex::new(std::time::Instant::now()),
            watch: Watch::default(),
            stops: Stops::default(),
        }
    }

    /// The effective configuration.
    pub fn config(&self) -> Config {
        self.config
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Replaces the configuration (after first-run setup saved a new database choice) and
    /// forgets the open database.
    pub async fn set_config(&self, config: Config) {
        *self.config.write().unwrap_or_else(|p| p.into_inner()) = config;
        *self.db.write().await = None;
    }

    /// The database, opened now if it is not yet.
    pub async fn db(&self) -> CommandResult<Arc<Db>> {
        if let Some(db) = self.db.read().await.as_ref() {
            return Ok(db.clone());
        }
        let mut slot = self.db.write().await;
        if let Some(db) = slot.as_ref() {
            return Ok(db.clone());
        }
        let config = self.config();
        let keystore: Option<Arc<dyn vigil::keys::keystore::Keystore>> =
            match config.keystore.open() {
                Ok(k) => Some(Arc::from(k)),
                Err(e) => {
                    tracing::warn!(error = %e, "keystore unavailable");
                    None
                }
            };
        // Team mode: the config names the operator's database user; the password is in
        // their keystore.
        let url = match &keystore {
            Some(ks) => {
                vigil::store::team::with_remembered_password(ks.as_ref(), &config.database.url)
                    .unwrap_or_else(|e| {
                        tracing::warn!(error = %e, "cannot read the database password");
                        config.database.url.clone()
                    })
            }
            None => config.database.url.clone(),
        };
        let store = Store::open(&url, &config.database.store_options()).await?;
        let db = Arc::new(Db { store, keystore });
        *slot = Some(db.clone());
        Ok(db)
    }

    /// The database if it is open already (never opens or creates one).
    pub async fn db_if_open(&self) -> Option<Arc<Db>> {
        self.db.read().await.clone()
    }

    /// Installs an open database (first-run setup opened it).
    pub async fn set_db(&self, db: Arc<Db>) {
        *self.db.write().await = Some(db);
    }

    /// Keeps an MFA challenge until the code arrives.
    pub async fn hold_challenge(&self, challenge: MfaChallenge) {
        *self.challenge.lock().await = Some(challenge);
    }

    /// Takes the pending MFA challenge.
    pub async fn take_challenge(&self) -> Option<MfaChallenge> {
        self.challenge.lock().await.take()
    }

    /// Starts a signed-in session: issues tokens when the operator's keys hold the token key,
    /// with the configured idle timeout and absolute lifetime (`[auth]`).
    pub async fn sign_in(&self, db: &Db, session: Session) -> Arc<DesktopSession> {
        let limits = SessionLimits::from_config(&self.config().auth);
        let tokens = match &session.keys {
            Some(ring) => {
                match tokens::issue_limited(&db.store, ring, &session, CLIENT, limits).await {
                    Ok(pair) => Some(pair),
                    Err(e) => {
                        tracing::info!(error = %e, "signed in without tokens");
                        None
                    }
                }
            }
            None => None,
        };
        let signed_in = Arc::new(DesktopSession {
            serial: SESSIONS.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            // Security events and audit entries name the session the tokens belong to.
            actor: Mutex::new(match &tokens {
                Some(pair) => session.actor.with_session_id(pair.session_id.clone()),
                None => session.actor,
            }),
            ring: session.keys,
            credential: Mutex::new(session.credential),
            tokens: tokio::sync::Mutex::new(tokens),
            must_change_password: Mutex::new(session.must_change_password),
        });
        *self.session.lock().unwrap_or_else(|p| p.into_inner()) = Some(signed_in.clone());
        let was_locked = self.locked.lock().unwrap_or_else(|p| p.into_inner()).take();
        if was_locked.is_some_and(|name| name == signed_in.actor().username().to_string()) {
            security_events::record_session_unlock(&db.store, &signed_in.actor(), Outcome::Success)
                .await;
        }
        self.touch();
        // The background monitor runs right after sign-in, not at its next minute.
        self.watch.wake();
        signed_in
    }

    /// The signed-in session without re-checking it (for `me` and sign-out).
    pub fn current(&self) -> Option<Arc<DesktopSession>> {
        self.session
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Forgets the signed-in session.
    pub fn forget(&self) -> Option<Arc<DesktopSession>> {
        self.session
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
    }

    /// The database and the signed-in session, checked against the database first: the access
    /// token (revoked sessions, suspended accounts and changed roles end it), refreshed when it
    /// expired, and the account's current status and roles. A session that no longer holds is
    /// forgotten, and the error says why. Refuses everything but a password change while one
    /// is owed.
    pub async fn authorised(&self) -> CommandResult<(Arc<Db>, Arc<DesktopSession>, Actor)> {
        let (db, session, actor) = self.authorised_for_enrolment().await?;
        if actor.must_enrol_mfa() {
            return Err(CommandError::new(
                ErrorCode::MfaEnrolmentRequired,
                "your role requires MFA: enrol a second factor before anything else",
            ));
        }
        Ok((db, session, actor))
    }

    /// [`AppState::authorised`], allowed while the `[auth] require_mfa` policy holds the
    /// operator at MFA enrolment (the enrolment commands; the core refuses the actor every
    /// permission meanwhile).
    pub async fn authorised_for_enrolment(
        &self,
    ) -> CommandResult<(Arc<Db>, Arc<DesktopSession>, Actor)> {
        let (db, session, actor) = self.authorised_for_password_change().await?;
        if session.must_change_password() {
            return Err(CommandError::new(
                ErrorCode::MustChangePassword,
                "your password was set by an administrator (for a new account or a reset): \
                 choose your own first",
            ));
        }
        Ok((db, session, actor))
    }

    /// [`AppState::authorised`], allowed while a password change is owed.
    pub async fn authorised_for_password_change(
        &self,
    ) -> CommandResult<(Arc<Db>, Arc<DesktopSession>, Actor)> {
        if self.lock_if_idle().await || self.locked_for().is_some() {
            return Err(locked_error());
        }
        let session = self.current().ok_or_else(CommandError::not_signed_in)?;
        let db = self.db().await?;
        // The account first, so a suspension is reported as one; then the access token, which a
        // role change, a revocation or a retired key pair ends.
        let actor = match auth::recheck(&db.store, &session.actor()).await {
            Ok(actor) => actor,
            Err(e) => {
                let e = CommandError::from(e);
                if e.code == ErrorCode::SessionEnded {
                    self.forget();
                }
                return Err(e);
            }
        };
        match self.check_tokens(&db, &session).await {
            Ok(()) => {
                *session.actor.lock().unwrap_or_else(|p| p.into_inner()) = actor.clone();
                Ok((db, session, actor))
            }
            Err(e) => {
                self.forget();
                Err(e)
            }
        }
    }

    async fn check_tokens(&self, db: &Db, session: &DesktopSession) -> CommandResult<()> {
        let Some(ring) = &session.ring else {
            return Ok(());
        };
        let mut slot = session.tokens.lock().await;
        let Some(pair) = slot.as_ref() else {
            return Ok(());
        };
        match self.verifier.verify(&db.store, &pair.access_token).await {
            Ok(_) => Ok(()),
            Err(TokenError::Expired) => {
                let fresh = tokens::refresh(&db.store, ring, &pair.refresh_token).await?;
                *slot = Some(fresh);
                Ok(())
            }
            Err(TokenError::Store(e)) => Err(e.into()),
            Err(e) => Err(CommandError::new(
                ErrorCode::SessionEnded,
                format!("your session ended: {e}"),
            )),
        }
    }

    /// Forgets a lock (the operator chose to sign out from the lock screen).
    pub fn clear_lock(&self) {
        *self.locked.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }

    /// Records that the operator used the window now.
    pub fn touch(&self) {
        *self.activity.lock().unwrap_or_else(|p| p.into_inner()) = std::time::Instant::now();
    }

    /// The operator the console is locked for, if it is.
    pub fn locked_for(&self) -> Option<String> {
        self.locked
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Where the console stands, locking it first if it has been idle for the timeout.
    pub async fn standing(&self) -> Standing {
        if self.lock_if_idle().await || self.locked_for().is_some() {
            Standing::Locked
        } else if self.current().is_some() {
            Standing::Active
        } else {
            Standing::SignedOut
        }
    }

    /// Locks the console if an operator is signed in and has not used the window for the
    /// idle timeout (`[auth] idle_timeout_secs`); returns whether it locked now.
    pub async fn lock_if_idle(&self) -> bool {
        let idle = std::time::Duration::from_secs(self.config().auth.idle_timeout_secs.max(1));
        let since = self
            .activity
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .elapsed();
        if since < idle || self.current().is_none() {
            return false;
        }
        self.lock().await;
        true
    }

    /// Locks the console: the session is ended (its tokens revoked), and its keys, credential
    /// key and tokens, and the open database with its password, are dropped from memory; only
    /// the username stays, for the lock screen. Signing in again as that operator opens the
    /// console where it was.
    // The lock is recorded as a security event here; the core's `tokens::check_account` /
    // `tokens::refresh_at` record the sessions they refuse as idle or expired.
    pub async fn lock(&self) {
        let Some(session) = self.current() else {
            return;
        };
        if let Some(db) = self.db_if_open().await {
            security_events::record_session_locked(&db.store, &session.actor(), "idle").await;
        }
        *self.locked.lock().unwrap_or_else(|p| p.into_inner()) =
            Some(session.actor().username().to_string());
        drop(session);
        self.sign_out().await;
        // The pool (and the database password in its options) goes with the last handle.
        if let Some(db) = self.db.write().await.take() {
            if Arc::strong_count(&db) == 1 {
                db.store.close().await;
            }
        }
    }

    /// Signs out: revokes the session's tokens, forgets the keys.
    pub async fn sign_out(&self) {
        let Some(session) = self.forget() else {
            return;
        };
        let (Some(db), Some(pair)) = (self.db_if_open().await, session.tokens.lock().await.take())
        else {
            return;
        };
        if let Err(e) = tokens::logout_refresh(&db.store, &pair.refresh_token).await {
            tracing::warn!(error = %e, "could not revoke the session's tokens");
        }
    }
}
