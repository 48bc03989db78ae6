//! Settings an administrator changes once the console is set up: the database it uses.
//!
//! First-run setup chooses the database only while nothing is set up; moving a console that
//! is set up to another database is this audited action. The new database must be a Vigil
//! database that is set up already (its own `vigil init` made its first administrator), so a
//! mistyped URL never leaves a console pointing at an empty database. The change is recorded in
//! the audit log of the database the console leaves, then written to the config file; the
//! operator signs in again, on the new database.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::audit::{self, AuditAction, NewAuditEntry};
use crate::config::{self, ConfigError};
use crate::identity::{Actor, Permission};
use crate::keystore::Keystore;
use crate::rbac::{self, Forbidden};
use crate::store::{DatabaseUrl, Store, StoreError, StoreOptions};

/// Why the database was not changed. Nothing was changed in either database or the file.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// The actor may not change the configuration.
    #[error(transparent)]
    Forbidden(#[from] Forbidden),
    /// The request itself is wrong (the same database, a file that does not exist).
    #[error("{0}; nothing was changed")]
    Invalid(String),
    /// The new database could not be opened.
    #[error("cannot open {url}: {message}; nothing was changed")]
    Unreachable {
        /// The database, password hidden.
        url: String,
        /// What went wrong.
        message: String,
    },
    /// The new database has no operators yet.
    #[error(
        "{0} is not set up: its first administrator runs `vigil init --admin NAME` against it \
         (with VIGIL_DATABASE_URL), then this console can move to it; nothing was changed"
    )]
    NotSetUp(String),
    /// The config file could not be written.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The current database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A database change that was made.
#[derive(Debug, Clone, Serialize)]
pub struct DatabaseChange {
    /// The database the console left, password hidden.
    pub from: String,
    /// The database it uses now, password hidden.
    pub to: String,
    /// The config file that records it.
    pub config_file: PathBuf,
}

/// Moves this console from `current` (open as `store`) to the database at `new`, recorded in
/// `config_file`. Needs [`Permission::ConfigManage`]. `keystore` supplies a team-mode database
/// password when `new` names only the database user. The new database is opened (and brought
/// to the current schema, as any opening does) and must have operators; the change is then
/// appended to the current database's audit log and written to the config file in one step:
/// if writing the file fails, the audit entry is not committed, and if committing fails, the
/// file is put back.
pub async fn set_database(
    store: &Store,
    actor: &Actor,
    current: &DatabaseUrl,
    new: &DatabaseUrl,
    config_file: &Path,
    options: &StoreOptions,
    keystore: Option<&dyn Keystore>,
) -> Result<DatabaseChange, SettingsError> {
    rbac::require(store, actor, Permission::ConfigManage).await?;
    let (from, to) = (current.redacted(), new.redacted());
    if new == current {
        return Err(SettingsError::Invalid(format!(
            "this console uses {to} already"
        )));
    }
    // A missing SQLite file is a mistyped path, not a database to create.
    if let Some(path) = new.sqlite_path() {
        if !path.is_file() {
            return Err(SettingsError::Invalid(format!(
                "there is no database file at {to}"
            )));
        }
    }
    let connect = match keystore {
        Some(ks) => {
            crate::store::team::with_remembered_password(ks, new).unwrap_or_else(|_| new.clone())
        }
        None => new.clone(),
    };
    let target = Store::open(&connect, options)
        .await
        .map_err(|e| SettingsError::Unreachable {
            url: to.clone(),
            message: e.to_string(),
        })?;
    let set_up = crate::auth::is_initialised(&target).await;
    target.close().await;
    if !set_up.map_err(|e| SettingsError::Unreachable {
        url: to.clone(),
        message: e.to_string(),
    })? {
        return Err(SettingsError::NotSetUp(to));
    }

    let mut tx = store.begin().await?;
    audit::append(
        &mut tx,
        &NewAuditEntry::new(actor, AuditAction::DatabaseChanged)
            .target(to.clone())
            .details(serde_json::json!({ "from": from })),
    )
    .await?;
    config::save_database_url(config_file, new)?;
    if let Err(e) = tx.commit().await {
        if let Err(undo) = config::save_database_url(config_file, current) {
            tracing::error!(error = %undo, "could not put the config file's database back");
        }
        return Err(StoreError::from(e).into());
    }
    Ok(DatabaseChange {
        from,
        to,
        config_file: config_file.to_owned(),
    })
}
