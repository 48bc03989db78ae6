//! `vigil init` and `vigil migrate`: the database, its schema and its first administrator.

use std::io::IsTerminal;
use std::process::ExitCode;

use anyhow::{bail, Result};
use clap::Subcommand;
use vigil::auth::users;
use vigil::auth::{self, Password, Username};
use vigil::config::Config;
use vigil::rbac::Role;

use crate::shared::*;

#[derive(Subcommand)]
pub(crate) enum Command {
    /// Create (or open) the database, apply migrations and create the first administrator.
    Init {
        /// Username of the first administrator. The password is read from
        /// VIGIL_ADMIN_PASSWORD or asked for on the terminal.
        #[arg(long, value_name = "NAME")]
        admin: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Apply pending schema migrations and report the database.
    Migrate(JsonFlag),
}

pub(crate) async fn run(command: Command, config: &Config) -> Result<ExitCode> {
    match command {
        Command::Init { admin, json } => init(config, &admin, json).await,
        Command::Migrate(f) => migrate(config, f.json).await,
    }
}

async fn migrate(config: &Config, json: bool) -> Result<ExitCode> {
    let store = open(config).await?;
    let initialised = auth::is_initialised(&store).await?;
    // An operator's own login checks the schema is current but may not change it.
    let migrated = !store.is_operator_login();
    if json {
        print_json(&serde_json::json!({
            "database": store.describe(),
            "backend": store.backend(),
            "migrated": migrated,
            "initialised": initialised,
        }))?;
    } else if !migrated {
        println!(
            "up to date: {} (connected as an operator's login; the database owner \
                 runs `vigil migrate`)",
            store.describe()
        );
    } else {
        println!("migrated: {} ({})", store.describe(), store.backend());
        if !initialised {
            println!("not initialised yet: run `vigil init --admin NAME`");
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn init(config: &Config, admin: &str, json: bool) -> Result<ExitCode> {
    let username = Username::parse(admin)?;
    let store = open(config).await?;
    if store.is_operator_login() {
        bail!(
            "`vigil init` makes the database's first administrator and their database login: \
             run it with the database owner's URL"
        );
    }
    if auth::is_initialised(&store).await? {
        bail!("this database is already initialised (it has operators); nothing was changed");
    }
    let secret = match std::env::var("VIGIL_ADMIN_PASSWORD") {
        Ok(p) => zeroize::Zeroizing::new(p),
        Err(_) if std::io::stdin().is_terminal() => {
            let first = zeroize::Zeroizing::new(rpassword::prompt_password(format!(
                "Password for {username}: "
            ))?);
            let again =
                zeroize::Zeroizing::new(rpassword::prompt_password("Repeat the password: ")?);
            if *first != *again {
                bail!("the passwords did not match; nothing was changed");
            }
            first
        }
        Err(_) => {
            bail!("set VIGIL_ADMIN_PASSWORD or run on a terminal to be asked for the password")
        }
    };
    let password = Password::parse_for_operator(&secret, &username)?;
    let keystore = config.keystore.open()?;
    let id = auth::bootstrap_admin(
        &store,
        keystore.as_ref(),
        &username,
        &password,
        config.rsa_bits,
    )
    .await?;
    // Team mode: the administrator's own database login, so no console needs the owner's.
    let login = if vigil::store::team::enabled(&store).await? {
        Some(users::bootstrap_database_login(&store, id).await?)
    } else {
        None
    };
    if json {
        print_json(&serde_json::json!({
            "database": store.describe(),
            "administrator": username.as_str(),
            "id": id.to_string(),
            "database_user": login.as_ref().map(|l| &l.user),
            "database_password": login.as_ref().map(|l| l.password()),
        }))?;
    } else {
        println!(
            "initialised {}: administrator {username} ({id})",
            store.describe()
        );
        if let Some(login) = &login {
            crate::users::print_database_login(&store, login);
        }
        if config.auth.requires_mfa(&[Role::Admin]) {
            println!(
                "MFA is required for administrators (policy {}, from {}): sign in and run \
                 `vigil mfa enroll` and `vigil mfa confirm CODE` next; nothing else is open \
                 until then (VIGIL_REQUIRE_MFA=none for a throwaway or demo database)",
                config.auth.require_mfa_text(),
                config.auth.require_mfa_source
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
