//! `vigil dsr` and `vigil hold`: data-subject requests and legal holds.

mod dsr;
mod run;

use std::process::ExitCode;

use anyhow::{bail, Result};
use clap::Subcommand;
use vigil::config::Config;
use vigil::privacy;

use crate::shared::*;
use dsr::DsrCommand;

#[derive(Subcommand)]
pub(crate) enum Command {
    /// Data-subject requests (GDPR access, portability, erasure, rectification).
    #[command(subcommand)]
    Dsr(DsrCommand),
    /// Legal holds on users and incidents (they block erasure and retention).
    #[command(subcommand)]
    Hold(HoldCommand),
}

#[derive(Subcommand)]
pub(crate) enum HoldCommand {
    /// Holds in force.
    List {
        /// Released ones too.
        #[arg(long)]
        all: bool,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Place a hold on a user or an incident.
    Place {
        /// The user's username.
        #[arg(
            long,
            conflicts_with = "incident",
            required_unless_present = "incident"
        )]
        user: Option<String>,
        /// The incident's id.
        #[arg(long, value_parser = vigil::cli_values::uuid)]
        incident: Option<uuid::Uuid>,
        /// Why.
        #[arg(long)]
        reason: String,
    },
    /// Release a hold.
    Release {
        /// The hold's id.
        #[arg(value_parser = vigil::cli_values::uuid)]
        id: uuid::Uuid,
    },
}

pub(crate) async fn run(command: Command, config: &Config) -> Result<ExitCode> {
    match command {
        Command::Dsr(c) => dsr::run(config, c).await,
        Command::Hold(c) => hold_cmd(config, c).await,
    }
}

async fn hold_cmd(config: &Config, command: HoldCommand) -> Result<ExitCode> {
    use privacy::holds::{self, HoldTarget};
    let store = open(config).await?;
    let (actor, _) = sign_in(config, &store).await?;
    match command {
        HoldCommand::List { all, json } => {
            let rows = holds::list(&store, &actor, all).await?;
            if json {
                print_json(&rows)?;
            } else {
                for h in &rows {
                    println!(
                        "{}  {} {}  {}  {}{}",
                        h.id,
                        h.target_kind,
                        h.target_name.as_deref().unwrap_or(&h.target_id),
                        h.created_at,
                        h.reason,
                        if h.released_at.is_some() {
                            "  (released)"
                        } else {
                            ""
                        }
                    );
                }
            }
        }
        HoldCommand::Place {
            user,
            incident,
            reason,
        } => {
            let target = match (user, incident) {
                (Some(u), _) => HoldTarget::User(u),
                (None, Some(i)) => HoldTarget::Incident(i),
                (None, None) => bail!("give --user or --incident"),
            };
            let h = holds::place(&store, &actor, &target, &reason).await?;
            println!("hold {} placed", h.id);
        }
        HoldCommand::Release { id } => {
            holds::release(&store, &actor, id).await?;
            println!("released");
        }
    }
    Ok(ExitCode::SUCCESS)
}
