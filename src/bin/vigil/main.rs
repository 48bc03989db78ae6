//! `vigil`: the command line over the Vigil core.
//!
//! Exit codes: 0 success, 1 the operation failed (message on stderr), 2 usage error.

mod audit;
mod bench;
mod demo;
mod generate;
mod incidents;
mod jobs;
mod keys;
mod mail;
mod mfa;
mod outbox;
mod privacy;
mod session;
mod settings;
mod setup;
mod shared;
mod users;

use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand};
use vigil::config::Config;
use vigil::store::DatabaseUrl;

#[derive(Parser)]
#[command(
    name = "vigil",
    version,
    about = "Vigil: security and privacy console for a live comment platform"
)]
struct Cli {
    /// Database URL (sqlite:///path/vigil.db or postgres://user@host/db); overrides
    /// VIGIL_DATABASE_URL and the config file.
    #[arg(long, global = true, value_name = "URL")]
    database: Option<String>,
    #[command(subcommand)]
    command: Command,
}

// The commands, one variant per domain (as in the desktop shell's `commands/`); each domain's
// module holds its argument types and handlers.
#[derive(Subcommand)]
enum Command {
    #[command(flatten)]
    Setup(setup::Command),
    #[command(flatten)]
    Settings(settings::Command),
    #[command(flatten)]
    Audit(audit::Command),
    #[command(flatten)]
    Keys(keys::Command),
    #[command(flatten)]
    Mfa(mfa::Command),
    #[command(flatten)]
    Users(users::Command),
    #[command(flatten)]
    Session(session::Command),
    #[command(flatten)]
    Demo(demo::Command),
    #[command(flatten)]
    Privacy(privacy::Command),
    #[command(flatten)]
    Incidents(incidents::Command),
    #[command(flatten)]
    Jobs(jobs::Command),
    #[command(flatten)]
    Mail(mail::Command),
    #[command(flatten)]
    Outbox(outbox::Command),
    #[command(flatten)]
    Bench(bench::Command),
    /// Man pages and shell completions, generated for packages.
    #[command(subcommand, hide = true)]
    Generate(generate::GenerateCommand),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match load_config(cli.database.as_deref()) {
        Ok(c) => c,
        Err(e) => return fail(e),
    };
    init_logging(&config.log);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => return fail(e.into()),
    };
    let explicit_database =
        cli.database.is_some() || std::env::var_os("VIGIL_DATABASE_URL").is_some();
    match runtime.block_on(run(cli.command, config, explicit_database)) {
        Ok(code) => code,
        Err(e) => fail(e),
    }
}

fn fail(e: anyhow::Error) -> ExitCode {
    eprintln!("error: {e:#}");
    ExitCode::from(1)
}

fn load_config(database: Option<&str>) -> Result<Config> {
    let mut config = Config::load()?;
    if let Some(url) = database {
        config.database.url = DatabaseUrl::parse(url)?;
    }
    Ok(config)
}

fn init_logging(filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

async fn run(command: Command, config: Config, explicit_database: bool) -> Result<ExitCode> {
    match command {
        Command::Setup(c) => setup::run(c, &config).await,
        Command::Settings(c) => settings::run(c, &config).await,
        Command::Audit(c) => audit::run(c, &config).await,
        Command::Keys(c) => keys::run(c, &config).await,
        Command::Mfa(c) => mfa::run(c, &config).await,
        Command::Users(c) => users::run(c, &config).await,
        Command::Session(c) => session::run(c, &config).await,
        Command::Demo(c) => demo::run(c, &config).await,
        Command::Privacy(c) => privacy::run(c, &config).await,
        Command::Incidents(c) => incidents::run(c, &config).await,
        Command::Jobs(c) => jobs::run(c, &config).await,
        Command::Mail(c) => mail::run(c, &config).await,
        Command::Outbox(c) => outbox::run(c, &config).await,
        Command::Bench(c) => bench::run(c, &config, explicit_database).await,
        Command::Generate(c) => generate::run(c),
    }
}
