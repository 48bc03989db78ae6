//! First-run setup: choose the database, create the first administrator and their key pair.

use std::sync::Arc;

use serde::Deserialize;
use tauri::State;
use ts_rs::TS;
use vigil::auth::{self, LoginOutcome, Password, Username};
use vigil::store::{Backend, DatabaseUrl, Store};

use crate::error::{CommandError, CommandResult, ErrorCode};
use crate::state::{AppState, Db};

/// Where the console's data lives.
#[derive(Deserialize, TS)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[ts(export)]
pub enum DatabaseChoice {
    /// A SQLite file in the OS data folder.
    Sqlite,
    /// A PostgreSQL server.
    Postgres {
        /// `postgres://user:password@host/db`.
        url: String,
    },
}

/// First-run setup's form.
#[derive(Deserialize, TS)]
#[ts(export)]
pub struct SetupRequest {
    /// Where the data lives.
    pub database: DatabaseChoice,
    /// The first administrator's username.
    pub username: String,
    /// Their password.
    pub password: String,
}

/// What setup did.
#[derive(Debug, serde::Serialize, TS)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[ts(export)]
pub enum SetupResult {
    /// The database and its first administrator were created, and they are signed in.
    Initialised {
        /// The administrator.
        me: super::session::Me,
    },
    /// The database already had operators (another machine set it up): the app now uses it,
    /// and nothing in it was changed. Sign in.
    Connected,
}

/// Creates the database (or opens the Postgres one), the first administrator with their key
/// pair sealed into this machine's keystore, records the database choice in the config file,
/// and signs the administrator in. A database that already has operators is only connected
/// to: the choice is recorded and nothing in it changes.
#[tauri::command]
pub async fn setup_initialise(
    state: State<'_, AppState>,
    req: SetupRequest,
) -> CommandResult<SetupResult> {
    let mut config = state.config();
    let url = match &req.database {
        DatabaseChoice::Sqlite => DatabaseUrl::sqlite_file(
            &vigil::config::default_database_path()
                .ok_or_else(|| CommandError::invalid("this machine has no data folder"))?,
        ),
        DatabaseChoice::Postgres { url } => {
            let parsed =
                DatabaseUrl::parse(url).map_err(|e| CommandError::invalid(e.to_string()))?;
            if parsed.backend() != Backend::Postgres {
                return Err(CommandError::invalid("expected a postgres:// URL"));
            }
            parsed
        }
    };
    let store = Store::open(&url, &config.database.store_options()).await?;
    let initialised = auth::is_initialised(&store).await?;
    let (username, password) = if initialised {
        (None, None)
    } else {
        let username =
            Username::parse(&req.username).map_err(|e| CommandError::invalid(e.to_string()))?;
        let password = Password::parse_for_operator(&req.password, &username)
            .map_err(|e| CommandError::new(ErrorCode::PasswordRejected, e.to_string()))?;
        (Some(username), Some(password))
    };
    let keystore = config
        .keystore
        .open()
        .map_err(|e| CommandError::new(ErrorCode::KeysUnavailable, e.to_string()))?;
    // Record the choice first: if creating the administrator fails, the next start offers
    // setup again on the same database.
    if url != config.database.url {
        let file = config
            .source_file
            .clone()
            .or_else(vigil::config::default_config_file)
            .ok_or_else(|| CommandError::invalid("this machine has no config folder"))?;
        vigil::config::save_database_url(&file, &url)
            .map_err(|e| CommandError::new(ErrorCode::Internal, e.to_string()))?;
        config.database.url = url;
        config.source_file = Some(file);
    }
    state.set_config(config.clone()).await;
    let db = Arc::new(Db {
        store,
        keystore: Some(Arc::from(keystore)),
    });
    state.set_db(db.clone()).await;
    let (Some(username), Some(password)) = (username, password) else {
        return Ok(SetupResult::Connected);
    };
    let keystore = db.keystore.as_deref().expect("opened above");
    auth::bootstrap_admin(&db.store, keystore, &username, &password, config.rsa_bits).await?;
    let source = crate::state::login_source();
    let outcome = auth::login(
        &db.store,
        Some(keystore),
        username.as_str(),
        password.expose(),
        &source,
    )
    .await?;
    let LoginOutcome::SignedIn(session) = outcome else {
        return Err(CommandError::new(
            ErrorCode::Internal,
            "a new administrator cannot owe a second factor",
        ));
    };
    let session = state.sign_in(&db, session).await;
    Ok(SetupResult::Initialised {
        me: super::session::me_of(&db, &session).await?,
    })
}
