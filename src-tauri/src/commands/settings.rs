//! Settings: the effective configuration and the policies in force, and the one setting an
//! administrator changes here: the database.

use serde::{Deserialize, Serialize};
use tauri::State;
use ts_rs::TS;
use vigil::auth::{self, tokens};
use vigil::rbac::{self, Permission};

use crate::error::{CommandError, CommandResult};
use crate::state::AppState;

/// A policy and its value, for display.
#[derive(Debug, Serialize, TS)]
#[ts(export)]
pub struct PolicyView {
    /// What it is.
    pub label: String,
    /// Its value in words.
    pub value: String,
}

/// The settings screen.
#[derive(Debug, Serialize, TS)]
#[ts(export)]
pub struct SettingsView {
    /// The database, password hidden.
    pub database: String,
    /// `sqlite` or `postgres`.
    pub backend: String,
    /// Pooled connections.
    pub max_connections: u32,
    /// The config file read, if any.
    pub config_file: Option<String>,
    /// Where key pairs are kept.
    pub keystore: String,
    /// Size of new RSA key pairs.
    pub rsa_bits: u32,
    /// Log filter.
    pub log: String,
    /// Security policies in force.
    pub policies: Vec<PolicyView>,
}

fn policy(label: &str, value: String) -> PolicyView {
    PolicyView {
        label: label.to_owned(),
        value,
    }
}

/// The effective settings. Needs the config-read permission.
#[tauri::command]
pub async fn settings_show(state: State<'_, AppState>) -> CommandResult<SettingsView> {
    let (db, _, actor) = state.authorised().await?;
    rbac::require(&db.store, &actor, Permission::ConfigRead).await?;
    let c = state.config();
    let policies = vec![
        policy(
            "Operator passwords",
            format!(
                "{} to {} characters (Unicode NFC), not containing the username, not on the list of \
                 {} common and breached passwords nor one with a few digits added; argon2id \
                 (19 MiB, 2 passes)",
                auth::PASSWORD_MIN_LENGTH,
                auth::PASSWORD_MAX_LENGTH,
                auth::COMMON_PASSWORDS
            ),
        ),
        policy(
            "Sign-in throttling",
            format!(
                "{} failed attempts per account or source in {} minutes",
                auth::MAX_ATTEMPTS,
                auth::WINDOW_SECONDS / 60
            ),
        ),
        policy(
            "Account lockout",
            format!(
                "after {} failures: {} s, doubling up to {} h",
                auth::LOCK_AFTER,
                auth::FIRST_LOCK_SECONDS,
                auth::MAX_LOCK_SECONDS / 3600
            ),
        ),
        policy(
            "Second factor",
            format!(
                "TOTP ({} digits, {} s, one step of drift, each code once) or one of {} backup codes; {} min to answer",
                vigil::mfa::DIGITS,
                vigil::mfa::STEP_SECONDS,
                vigil::mfa::BACKUP_CODES,
                auth::CHALLENGE_SECONDS / 60
            ),
        ),
        policy(
            "Access tokens",
            format!(
                "HS256 JWT, {} min, audience {}, checked against revocations on every use",
                tokens::ACCESS_SECONDS / 60,
                tokens::AUDIENCE
            ),
        ),
        policy(
            "Refresh tokens",
            format!(
                "{} days, single use; a reused token revokes its whole session",
                tokens::REFRESH_SECONDS / 86_400
            ),
        ),
        policy(
            "Encryption at rest",
            "AES-256-GCM per field, keys wrapped with each operator's RSA-OAEP key pair"
                .to_owned(),
        ),
    ];
    Ok(SettingsView {
        database: c.database.url.redacted(),
        backend: super::app::backend_name(db.store.backend()),
        max_connections: c.database.max_connections,
        config_file: c.source_file.map(|p| p.display().to_string()),
        keystore: super::app::keystore_name(&c.keystore),
        rsa_bits: u32::from(c.rsa_bits),
        log: c.log,
        policies,
    })
}

/// Which database to move to.
#[derive(Debug, Deserialize, TS)]
#[ts(export)]
pub struct SetDatabaseRequest {
    /// `sqlite:///path/to/vigil.db` or `postgres://USER@host/db` (team mode: the password from
    /// this machine's keystore) or with the password in it.
    pub url: String,
}

/// A database change that was made.
#[derive(Debug, Serialize, TS)]
#[ts(export)]
pub struct DatabaseChangeView {
    /// The database the console left, password hidden.
    pub from: String,
    /// The database it uses now, password hidden.
    pub to: String,
    /// The config file that records it.
    pub config_file: String,
}

/// Moves this console to another Vigil database that is set up already (the config-manage
/// permission; audited in the database it leaves). The session ends here: the operator signs in
/// again, on the new database.
#[tauri::command]
pub async fn settings_set_database(
    state: State<'_, AppState>,
    req: SetDatabaseRequest,
) -> CommandResult<DatabaseChangeView> {
    let (db, _, actor) = state.authorised().await?;
    let new = vigil::store::DatabaseUrl::parse(req.url.trim())
        .map_err(|e| CommandError::invalid(e.to_string()))?;
    let mut config = state.config();
    let file = config
        .source_file
        .clone()
        .or_else(vigil::config::default_config_file)
        .ok_or_else(|| CommandError::invalid("this machine has no config folder"))?;
    let change = vigil::settings::set_database(
        &db.store,
        &actor,
        &config.database.url,
        &new,
        &file,
        &config.database.store_options(),
        db.keystore.as_deref(),
    )
    .await?;
    drop(db);
    state.sign_out().await;
    config.database.url = new;
    config.database.configured = true;
    config.source_file = Some(file);
    // Installing the configuration closes the old database; the next call opens the new one.
    state.set_config(config).await;
    Ok(DatabaseChangeView {
        from: change.from,
        to: change.to,
        config_file: change.config_file.display().to_string(),
    })
}
