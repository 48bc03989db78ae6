//! `vigil config` and `vigil keystore`: the effective configuration and the operator keystore.

use std::io::IsTerminal;
use std::process::ExitCode;

use anyhow::{anyhow, bail, Result};
use clap::Subcommand;
use vigil::config::Config;
use vigil::keys::keystore::SecretName;
use vigil::store::Store;

use crate::shared::*;

#[derive(Subcommand)]
pub(crate) enum Command {
    /// Configuration.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// The operator keystore (OS keychain or file keystore).
    #[command(subcommand)]
    Keystore(KeystoreCommand),
}

#[derive(Subcommand)]
pub(crate) enum ConfigCommand {
    /// Print the effective configuration, secrets redacted.
    Show(JsonFlag),
    /// Move this console to another Vigil database that is set up already (administrators;
    /// recorded in the audit log of the database it leaves, then in the config file). Sign in
    /// again afterwards, on the new database.
    SetDatabase {
        /// The database: sqlite:///path/to/vigil.db, or postgres://USER@host/db (team mode:
        /// its password from the keystore, `vigil keystore set-database-password`). `-` reads
        /// it from standard input, and leaving it out on a terminal asks for it without echo: a
        /// URL holding a password, given here, is visible to other local users in the process
        /// list while the command runs.
        url: Option<String>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
pub(crate) enum KeystoreCommand {
    /// Store, read back and delete a test secret in the configured keystore.
    Check(JsonFlag),
    /// Team mode: keep your database password (from VIGIL_DATABASE_PASSWORD, or asked for on
    /// the terminal) in the keystore for the database user the configured URL names, after
    /// checking it connects. The config file then holds postgres://USER@host/db, no password.
    SetDatabasePassword,
}

pub(crate) async fn run(command: Command, config: &Config) -> Result<ExitCode> {
    match command {
        Command::Config(ConfigCommand::Show(f)) => config_show(config, f.json),
        Command::Config(ConfigCommand::SetDatabase { url, json }) => {
            set_database(config, url, json).await
        }
        Command::Keystore(KeystoreCommand::Check(f)) => keystore_check(config, f.json),
        Command::Keystore(KeystoreCommand::SetDatabasePassword) => {
            set_database_password(config).await
        }
    }
}

fn config_show(config: &Config, json: bool) -> Result<ExitCode> {
    if json {
        print_json(config)?;
    } else {
        println!(
            "config file:      {}",
            config
                .source_file
                .as_ref()
                .map_or("(none; defaults)".into(), |p| p.display().to_string())
        );
        println!("database.url:     {}", config.database.url.redacted());
        println!("database.backend: {}", config.database.url.backend());
        println!(
            "database.max_connections: {}",
            config.database.max_connections
        );
        println!("keystore:         {}", config.keystore);
        println!("log:              {}", config.log);
        println!(
            "auth.require_mfa: {} (from {})",
            config.auth.require_mfa_text(),
            config.auth.require_mfa_source
        );
        println!("auth.idle_timeout_secs: {}", config.auth.idle_timeout_secs);
        println!(
            "auth.absolute_lifetime_secs: {}",
            config.auth.absolute_lifetime_secs
        );
        println!("rsa_bits:         {}", u32::from(config.rsa_bits));
        println!(
            "retention.archive_dir: {}",
            config
                .retention
                .archive_dir()
                .map_or("(none: no OS data folder)".into(), |p| p
                    .display()
                    .to_string())
        );
        println!("retention.chunk:  {}", config.retention.chunk);
        println!(
            "worker.monitor_interval_secs: {}",
            config.worker.monitor_interval_secs
        );
        println!(
            "worker.retention_interval_hours: {}",
            config.worker.retention_interval_hours
        );
        println!(
            "monitor.blocklist: {}",
            if config.monitor.blocklist.is_empty() {
                "(none)".to_owned()
            } else {
                config
                    .monitor
                    .blocklist
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        );
        println!(
            "monitor.rules:    {}",
            if config.monitor.rules.is_empty() {
                "(built-in only)".to_owned()
            } else {
                config
                    .monitor
                    .rules
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        );
        println!("monitor.max_line_bytes: {}", config.monitor.max_line_bytes);
        println!("monitor.shards: {}", config.monitor.shards);
        println!(
            "monitor.policy:   {}",
            serde_json::to_string(&config.monitor.policy)?
        );
        println!("platform.token_issuer: {}", config.platform.token_issuer);
        println!(
            "platform.token_audience: {}",
            config.platform.token_audience
        );
        println!(
            "platform.token_max_lifetime_secs: {}",
            config.platform.token_max_lifetime_secs
        );
        println!(
            "platform.token_keys: {}",
            config
                .platform
                .token_keys
                .as_ref()
                .map_or("(none; data subjects verify by code)".into(), |p| p
                    .display()
                    .to_string())
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn keystore_check(config: &Config, json: bool) -> Result<ExitCode> {
    let store = config.keystore.open()?;
    let probe_owner = uuid::Uuid::new_v4();
    let name = SecretName::parse("keystore-check")?;
    let probe: [u8; 32] = rand::random();
    store.put(probe_owner, &name, &probe)?;
    let back = store.get(probe_owner, &name)?;
    let deleted = store.delete(probe_owner, &name)?;
    let ok = back.as_ref().map(|s| s.expose()) == Some(&probe[..]) && deleted;
    if json {
        print_json(&serde_json::json!({ "keystore": store.describe(), "usable": ok }))?;
    } else if ok {
        println!(
            "ok: {} stores, returns and deletes secrets",
            store.describe()
        );
    } else {
        println!(
            "failed: {} did not return the secret it stored",
            store.describe()
        );
    }
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

async fn set_database(config: &Config, url: Option<String>, json: bool) -> Result<ExitCode> {
    let given = sensitive_value(url, "database URL")?;
    let new = vigil::store::DatabaseUrl::parse(given.trim())?;
    let file = config
        .source_file
        .clone()
        .or_else(vigil::config::default_config_file)
        .ok_or_else(|| anyhow!("this machine has no config folder"))?;
    let store = open(config).await?;
    let (actor, _) = sign_in(config, &store).await?;
    let keystore = config.keystore.open().ok();
    let change = vigil::settings::set_database(
        &store,
        &actor,
        &config.database.url,
        &new,
        &file,
        &config.database.store_options(),
        keystore.as_deref(),
    )
    .await?;
    store.close().await;
    if json {
        print_json(&change)?;
    } else {
        println!(
            "this console now uses {} (was {}; recorded in its audit log and in {}); sign in \
             again",
            change.to,
            change.from,
            change.config_file.display()
        );
    }
    if std::env::var_os("VIGIL_DATABASE_URL").is_some() {
        eprintln!(
            "note: VIGIL_DATABASE_URL is set in this shell and overrides the config file until \
             it is unset"
        );
    }
    Ok(ExitCode::SUCCESS)
}

async fn set_database_password(config: &Config) -> Result<ExitCode> {
    let url = &config.database.url;
    if url.postgres_user().is_none() {
        bail!(
            "the configured database URL names no Postgres user: set it to \
             postgres://DATABASE_USER@host/db (without the password) first"
        );
    }
    if url.has_password() {
        bail!("the configured database URL already holds a password: remove it from the URL");
    }
    let password = zeroize::Zeroizing::new(match std::env::var("VIGIL_DATABASE_PASSWORD") {
        Ok(p) => p,
        Err(_) if std::io::stdin().is_terminal() => {
            rpassword::prompt_password("Database password: ")?
        }
        Err(_) => bail!("set VIGIL_DATABASE_PASSWORD or run on a terminal to be asked"),
    });
    let with = url
        .with_password(&password)
        .ok_or_else(|| anyhow!("cannot put a password into this database URL"))?;
    let store = Store::open(&with, &config.database.store_options()).await?;
    store.close().await;
    let keystore = config.keystore.open()?;
    vigil::store::team::remember_password(keystore.as_ref(), url, &password)?;
    println!(
        "the database password for {} is kept in {}",
        url.redacted(),
        keystore.describe()
    );
    Ok(ExitCode::SUCCESS)
}
