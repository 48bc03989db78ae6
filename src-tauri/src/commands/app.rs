//! The app's state at start: which database, whether it is set up, who is signed in.

use serde::Serialize;
use tauri::State;
use ts_rs::TS;
use vigil::store::Backend;

use crate::error::CommandResult;
use crate::state::AppState;

/// Returns the version string of the `vigil` core library.
#[tauri::command]
pub fn app_version() -> String {
    vigil::VERSION.to_owned()
}

/// Where the app stands: the first screen depends on it.
#[derive(Debug, Serialize, TS)]
#[ts(export)]
pub struct AppStatus {
    /// Core version.
    pub version: String,
    /// Whether the database has its first administrator (false: first-run setup).
    pub initialised: bool,
    /// The database, with any password hidden.
    pub database: String,
    /// `sqlite` or `postgres`; none if it could not be opened.
    #[ts(type = "'sqlite' | 'postgres' | null")]
    pub backend: Option<String>,
    /// Why the database could not be opened, if so.
    pub database_error: Option<String>,
    /// Where a local database goes.
    pub default_sqlite_path: String,
    /// Where operators' key pairs are kept.
    pub keystore: String,
    /// The signed-in operator, if any.
    pub me: Option<super::session::Me>,
}

pub(crate) fn backend_name(b: Backend) -> String {
    match b {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
    }
    .to_owned()
}

pub(crate) fn keystore_name(choice: &vigil::keys::keystore::KeystoreChoice) -> String {
    match choice {
        vigil::keys::keystore::KeystoreChoice::Os => "OS keychain".to_owned(),
        vigil::keys::keystore::KeystoreChoice::File(p) => format!("files in {}", p.display()),
    }
}

/// The app's status. A local database file that does not exist yet is not created here:
/// first-run setup creates it, or points the app at Postgres instead.
#[tauri::command]
pub async fn app_status(state: State<'_, AppState>) -> CommandResult<AppStatus> {
    let config = state.config();
    let url = &config.database.url;
    let mut status = AppStatus {
        version: vigil::VERSION.to_owned(),
        initialised: false,
        database: url.redacted(),
        backend: None,
        database_error: None,
        default_sqlite_path: vigil::config::default_database_path()
            .map(|p| p.display().to_string())
            .unwrap_or_default(),
        keystore: keystore_name(&config.keystore),
        me: None,
    };
    let missing_file = url.sqlite_path().is_some_and(|p| !p.exists());
    if missing_file && state.db_if_open().await.is_none() {
        return Ok(status);
    }
    match state.db().await {
        Ok(db) => {
            status.backend = Some(backend_name(db.store.backend()));
            status.initialised = vigil::auth::is_initialised(&db.store).await?;
            status.me = super::session::me(state).await?;
        }
        Err(e) => status.database_error = Some(e.message),
    }
    Ok(status)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_version_is_the_core_version() {
        assert_eq!(app_version(), vigil::VERSION);
    }
}
