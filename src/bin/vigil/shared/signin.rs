//! Opening the database and signing in: from `VIGIL_SESSION` (`vigil login`), or with the
//! password and second factor.

use std::io::IsTerminal;

use anyhow::{bail, Result};
use vigil::auth::cli_session::{self, OpenRecord, SessionKey};
use vigil::auth::{self, Actor, LoginOutcome, LoginSource, Session};
use vigil::config::Config;
use vigil::keys::KeyRing;
use vigil::store::{DatabaseUrl, Store};

pub(crate) async fn open(config: &Config) -> Result<Store> {
    Ok(Store::open(&connect_url(config), &config.database.store_options()).await?)
}

/// The configured URL, with the operator's database password from their keystore when the
/// URL names a Postgres user without one (team mode keeps it out of the config file).
fn connect_url(config: &Config) -> DatabaseUrl {
    let url = &config.database.url;
    if url.postgres_user().is_none() || url.has_password() {
        return url.clone();
    }
    // A command-line session keeps the database password in its sealed record.
    if let Ok(Some(record)) = cli_record(config) {
        let with = record
            .database_password()
            .and_then(|pw| url.with_password(pw));
        *CLI_RECORD.lock().unwrap_or_else(|p| p.into_inner()) = Some(record);
        if let Some(with) = with {
            return with;
        }
    }
    match config.keystore.open() {
        Ok(ks) => {
            vigil::store::team::with_remembered_password(ks.as_ref(), url).unwrap_or_else(|e| {
                tracing::warn!(error = %e, "cannot read the database password from the keystore");
                url.clone()
            })
        }
        Err(_) => url.clone(),
    }
}

/// Signs in; the session must have this machine's keys.
pub(crate) async fn unlock(config: &Config, store: &Store) -> Result<(Actor, KeyRing)> {
    let session = session(config, store).await?.0;
    match session.keys {
        Some(ring) => Ok((session.actor, ring)),
        None => Err(vigil::keys::KeyError::NoKeyPairHere.into()),
    }
}

/// Signs in from VIGIL_USERNAME / VIGIL_PASSWORD (and VIGIL_TOTP when MFA is on), or asks on
/// a terminal. Returns the session and the password (wiped when dropped), which unlocked it.
pub(crate) async fn session(
    config: &Config,
    store: &Store,
) -> Result<(Session, zeroize::Zeroizing<String>)> {
    signed_in_session(config, store, false, false).await
}

/// [`session`], also for an operator held at MFA enrolment by the `[auth] require_mfa` policy:
/// only `mfa enroll`, `mfa confirm`, `whoami` and `logout` use it.
pub(crate) async fn enrolment_session(
    config: &Config,
    store: &Store,
) -> Result<(Session, zeroize::Zeroizing<String>)> {
    signed_in_session(config, store, false, true).await
}

/// [`session`]; after an administrator's reset, only `passwd` (`may_change`) may proceed, and
/// while MFA enrolment is owed only the commands of [`enrolment_session`] (`may_enrol`) and
/// `passwd` (a reset password is changed before MFA can be enrolled).
///
/// With `VIGIL_SESSION` (from `vigil login`), the session it opens, checked by the core (idle
/// timeout, absolute lifetime, revocation, the account read again), with no password: the
/// password returned is then empty. `passwd` (`may_change`) always asks for the password.
pub(crate) async fn signed_in_session(
    config: &Config,
    store: &Store,
    may_change: bool,
    may_enrol: bool,
) -> Result<(Session, zeroize::Zeroizing<String>)> {
    if !may_change {
        if let Some(mut record) = cli_record(config)? {
            let keystore = config.keystore.open()?;
            let session = record.resume(store, keystore.as_ref()).await?;
            return Ok((session, zeroize::Zeroizing::new(String::new())));
        }
    }
    password_session(config, store, may_change, may_enrol).await
}

/// The session record that `VIGIL_SESSION` opened for this process, kept between opening the
/// database (its password may be in it) and signing in.
static CLI_RECORD: std::sync::Mutex<Option<OpenRecord>> = std::sync::Mutex::new(None);

/// The sealed session record `VIGIL_SESSION` names in this machine's keystore, opened; `None`
/// when the variable is not set. A wrong or stale value opens nothing and says so.
pub(crate) fn cli_record(config: &Config) -> Result<Option<OpenRecord>> {
    if let Some(r) = CLI_RECORD.lock().unwrap_or_else(|p| p.into_inner()).take() {
        return Ok(Some(r));
    }
    let Some(value) = std::env::var("VIGIL_SESSION")
        .ok()
        .filter(|v| !v.trim().is_empty())
    else {
        return Ok(None);
    };
    let key = SessionKey::parse(&value)?;
    let keystore = config.keystore.open()?;
    Ok(Some(cli_session::open(keystore.as_ref(), key)?))
}

/// The database password `vigil keystore set-database-password` keeps for the configured URL,
/// if it names a Postgres user and holds none itself.
pub(crate) fn remembered_database_password(
    config: &Config,
    keystore: &dyn vigil::keys::keystore::Keystore,
) -> Option<zeroize::Zeroizing<String>> {
    let url = &config.database.url;
    if url.has_password() {
        return None;
    }
    let (id, name) = vigil::store::team::password_entry(url)?;
    let secret = keystore.get(id, &name).ok()??;
    Some(zeroize::Zeroizing::new(
        String::from_utf8_lossy(secret.expose()).into_owned(),
    ))
}

/// Signs in with the password (and second factor), never from `VIGIL_SESSION`.
pub(crate) async fn password_session(
    config: &Config,
    store: &Store,
    may_change: bool,
    may_enrol: bool,
) -> Result<(Session, zeroize::Zeroizing<String>)> {
    if !auth::is_initialised(store).await? {
        bail!(
            "{} has no operators yet: run `vigil init --admin NAME` first",
            store.describe()
        );
    }
    let interactive = std::io::stdin().is_terminal();
    let username = match std::env::var("VIGIL_USERNAME") {
        Ok(u) => u,
        Err(_) if interactive => {
            eprint!("Username: ");
            let mut line = String::new();
            std::io::stdin().read_line(&mut line)?;
            line.trim().to_owned()
        }
        Err(_) => bail!(
            "not signed in: run `eval \"$(vigil login)\"` for a session, or set VIGIL_USERNAME \
             and VIGIL_PASSWORD"
        ),
    };
    let password = zeroize::Zeroizing::new(match std::env::var("VIGIL_PASSWORD") {
        Ok(p) => p,
        Err(_) if interactive => rpassword::prompt_password("Password: ")?,
        Err(_) => bail!(
            "not signed in: run `eval \"$(vigil login)\"` for a session, or set VIGIL_USERNAME \
             and VIGIL_PASSWORD"
        ),
    });
    // A machine without a usable keystore still signs in; commands needing keys say so.
    let keystore = config.keystore.open().ok();
    let source = LoginSource {
        ip: None,
        user_agent: Some(format!("vigil-cli/{}", vigil::VERSION)),
    };
    let outcome = auth::login(
        store,
        keystore.as_deref(),
        &username,
        &password,
        &source,
        &config.auth.mfa_policy(),
    )
    .await?;
    let session = match outcome {
        LoginOutcome::SignedIn(s) => s,
        LoginOutcome::MfaRequired(challenge) => {
            let code = zeroize::Zeroizing::new(match std::env::var("VIGIL_TOTP") {
                Ok(c) => c,
                Err(_) if interactive => {
                    rpassword::prompt_password("Authenticator or backup code: ")?
                }
                Err(_) => bail!("this account has MFA on: set VIGIL_TOTP to a current code"),
            });
            let token = challenge.token().to_owned();
            auth::finish_mfa(store, challenge, &token, &code).await?
        }
    };
    if session.must_change_password && !may_change {
        let why = auth::password_to_change(store, &session.actor)
            .await?
            .unwrap_or(auth::PasswordToChange::ResetByAdministrator);
        bail!("{why}: run `vigil passwd` to choose your own first");
    }
    if session.actor.must_enrol_mfa() && !may_enrol && !may_change {
        bail!(
            "MFA enrolment required: the policy ({}, from {}) requires a second factor for your \
             role; run `vigil mfa enroll` and `vigil mfa confirm CODE` first (until then only \
             those, `vigil whoami` and `vigil logout` work)",
            config.auth.require_mfa_text(),
            config.auth.require_mfa_source
        );
    }
    Ok((session, password))
}

/// Signs in (see [`session`]) and returns the operator and the password.
pub(crate) async fn sign_in(
    config: &Config,
    store: &Store,
) -> Result<(Actor, zeroize::Zeroizing<String>)> {
    let (s, pw) = session(config, store).await?;
    Ok((s.actor, pw))
}
