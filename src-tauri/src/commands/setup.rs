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
        /// `postgres://host/db`; with the owner's `user:password` only to set up a new
        /// database.
        url: String,
        /// Team mode: the operator's own database user (from their administrator), to connect
        /// to a database that is already set up.
        #[serde(default)]
        #[ts(optional)]
        database_user: Option<String>,
        /// That user's password: kept in this machine's keystore, never in the config file.
        #[serde(default)]
        #[ts(optional)]
        database_password: Option<String>,
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

// The password is wiped when the request is dropped, as soon as setup has used it.
impl Drop for SetupRequest {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.password);
    }
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

/// First run only: setup may not repoint a console that is set up. Refused (nothing opened,
/// nothing written) when the database in force has operators (sign in instead), or when a
/// database was chosen (`VIGIL_DATABASE_URL`, or `database.url` in the config file) and
/// `requested` is another one: after a setup that stopped half-way, only that same database's
/// setup can be finished here. Moving a console that is set up to another database is an
/// administrator's settings action (`vigil config set-database`, or the desktop's Settings).
pub async fn first_run_only(state: &AppState, requested: &DatabaseUrl) -> CommandResult<()> {
    let config = state.config();
    let current = &config.database.url;
    if config.database.configured && requested != current {
        return Err(CommandError::new(
            ErrorCode::Conflict,
            format!(
                "this console is set up for the database {}: setup does not change it (an \
                 administrator does, from the settings); nothing was changed",
                current.redacted()
            ),
        ));
    }
    let missing_file = current.sqlite_path().is_some_and(|p| !p.exists());
    if !missing_file {
        if let Ok(db) = state.db().await {
            if auth::is_initialised(&db.store).await? {
                return Err(CommandError::new(
                    ErrorCode::Conflict,
                    "Vigil is already set up on this console: sign in (setup runs only once); \
                     nothing was changed",
                ));
            }
        }
    }
    Ok(())
}

/// Creates the database (or opens the Postgres one), the first administrator with their key
/// pair sealed into this machine's keystore, records the database choice in the config file,
/// and signs the administrator in. A database that already has operators is only connected
/// to: the choice is recorded and nothing in it changes. First run only: see
/// [`first_run_only`].
#[tauri::command]
pub async fn setup_initialise(
    state: State<'_, AppState>,
    req: SetupRequest,
) -> CommandResult<SetupResult> {
    let mut config = state.config();
    // `url` is what the config file keeps; `connect` what this setup connects with; `login`
    // the operator's own database login, whose password goes to the keystore.
    let mut login: Option<(String, String)> = None;
    let url = match &req.database {
        DatabaseChoice::Sqlite => DatabaseUrl::sqlite_file(
            &vigil::config::default_database_path()
                .ok_or_else(|| CommandError::invalid("this machine has no data folder"))?,
        ),
        DatabaseChoice::Postgres {
            url,
            database_user,
            database_password,
        } => {
            let parsed =
                DatabaseUrl::parse(url).map_err(|e| CommandError::invalid(e.to_string()))?;
            if parsed.backend() != Backend::Postgres {
                return Err(CommandError::invalid("expected a postgres:// URL"));
            }
            match database_user.as_deref().map(str::trim) {
                Some(user) if !user.is_empty() => {
                    let password = database_password.clone().unwrap_or_default();
                    login = Some((user.to_owned(), password));
                    parsed
                        .with_user_only(user)
                        .ok_or_else(|| CommandError::invalid("cannot use this database URL"))?
                }
                _ => parsed,
            }
        }
    };
    first_run_only(&state, &url).await?;
    let connect = match &login {
        Some((_, password)) => url
            .with_password(password)
            .ok_or_else(|| CommandError::invalid("cannot use this database URL"))?,
        None => url.clone(),
    };
    let store = Store::open(&connect, &config.database.store_options()).await?;
    let initialised = auth::is_initialised(&store).await?;
    if store.is_operator_login() && !initialised {
        return Err(CommandError::invalid(
            "this database is not set up yet: its administrator runs `vigil init --admin NAME` \
             with the database owner's URL",
        ));
    }
    if url.backend() == Backend::Postgres
        && !store.is_operator_login()
        && initialised
        && vigil::store::team::enabled(&store).await?
    {
        // No console keeps the owner's URL (SECURITY.md, team mode).
        return Err(CommandError::invalid(
            "this database is set up already: connect with your own database user and \
             password (an administrator gives you them with `vigil user db-login`)",
        ));
    }
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
    if let Some((_, password)) = &login {
        vigil::store::team::remember_password(keystore.as_ref(), &url, password)
            .map_err(|e| CommandError::new(ErrorCode::KeysUnavailable, e.to_string()))?;
    }
    // A new team database: the first administrator gets their own database login below and
    // the console then keeps that (the owner's URL is used for this setup only).
    let owner_setup = !store.is_operator_login() && vigil::store::team::enabled(&store).await?;
    // Record the choice first: if creating the administrator fails, the next start offers
    // setup again on the same database.
    if url != config.database.url && !owner_setup {
        let file = config
            .source_file
            .clone()
            .or_else(vigil::config::default_config_file)
            .ok_or_else(|| CommandError::invalid("this machine has no config folder"))?;
        vigil::config::save_database_url(&file, &url)
            .map_err(|e| CommandError::new(ErrorCode::Internal, e.to_string()))?;
        config.database.url = url.clone();
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
    let admin =
        auth::bootstrap_admin(&db.store, keystore, &username, &password, config.rsa_bits).await?;
    let db = if owner_setup {
        // Switch this console to the administrator's own database login: its password goes
        // to the keystore and the config file names only the user.
        let login = vigil::auth::users::bootstrap_database_login(&db.store, admin).await?;
        let own = url
            .with_user_only(&login.user)
            .ok_or_else(|| CommandError::invalid("cannot use this database URL"))?;
        vigil::store::team::remember_password(keystore, &own, login.password())
            .map_err(|e| CommandError::new(ErrorCode::KeysUnavailable, e.to_string()))?;
        let file = config
            .source_file
            .clone()
            .or_else(vigil::config::default_config_file)
            .ok_or_else(|| CommandError::invalid("this machine has no config folder"))?;
        vigil::config::save_database_url(&file, &own)
            .map_err(|e| CommandError::new(ErrorCode::Internal, e.to_string()))?;
        config.database.url = own;
        config.source_file = Some(file);
        state.set_config(config.clone()).await;
        db.store.close().await;
        state.db().await?
    } else {
        db
    };
    let keystore = db.keystore.as_deref().ok_or_else(|| {
        CommandError::new(
            ErrorCode::KeysUnavailable,
            "the keystore could not be opened",
        )
    })?;
    let source = crate::state::login_source();
    let outcome = auth::login(
        &db.store,
        Some(keystore),
        username.as_str(),
        password.expose(),
        &source,
        &state.config().auth.mfa_policy(),
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
