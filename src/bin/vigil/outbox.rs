//! `vigil outbox …`: the messages waiting, sent, failed or cancelled; retry and cancel; and
//! `deliver`, which sends what is due now and exits.

use std::process::ExitCode;

use anyhow::Result;
use clap::Subcommand;
use vigil::config::Config;
use vigil::mail::{self, DeliverOptions, OutboxFilter, OutboxMessage, OutboxState};

use crate::shared::{open, print_json, sign_in, unlock};

#[derive(Subcommand)]
pub(crate) enum Command {
    /// The outbox: list, retry and cancel messages; deliver what is due now.
    #[command(subcommand)]
    Outbox(OutboxCommand),
}

pub(crate) async fn run(command: Command, config: &Config) -> Result<ExitCode> {
    match command {
        Command::Outbox(c) => outbox_cmd(config, c).await,
    }
}

#[derive(Subcommand)]
pub(crate) enum OutboxCommand {
    /// The messages, newest first: kind, recipient, state, attempts, last error.
    List {
        /// Only this state: queued, sent, failed or cancelled.
        #[arg(long, value_parser = vigil::cli_values::one_of(OutboxState::parse, "queued, sent, failed or cancelled"))]
        state: Option<OutboxState>,
        /// At most this many (1 to 10,000).
        #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=10_000))]
        limit: u32,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Put a queued or failed message back in the queue, due now.
    Retry {
        /// The message id.
        #[arg(value_parser = vigil::cli_values::id)]
        id: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Cancel a queued or failed message: it is never sent.
    Cancel {
        /// The message id.
        #[arg(value_parser = vigil::cli_values::id)]
        id: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Send the messages that are due now and exit (needs the `contact` data key).
    Deliver {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

fn print_message(m: &OutboxMessage) {
    println!(
        "{}  {:<16} {:<10} {:<9} attempts {}{}{}",
        m.id,
        m.template,
        m.recipient.as_deref().unwrap_or("-"),
        m.state.as_str(),
        m.attempts,
        m.next_attempt_at
            .as_deref()
            .map(|t| format!("  next {t}"))
            .unwrap_or_default(),
        m.last_error
            .as_deref()
            .map(|e| format!("  last error: {e}"))
            .unwrap_or_default(),
    );
}

pub(crate) async fn outbox_cmd(config: &Config, command: OutboxCommand) -> Result<ExitCode> {
    let store = open(config).await?;
    match command {
        OutboxCommand::List { state, limit, json } => {
            let (actor, _) = sign_in(config, &store).await?;
            let list = mail::list(
                &store,
                &actor,
                &OutboxFilter {
                    state,
                    limit: Some(limit),
                },
            )
            .await?;
            if json {
                print_json(&list)?;
            } else if list.is_empty() {
                println!("the outbox is empty");
            } else {
                list.iter().for_each(print_message);
            }
        }
        OutboxCommand::Retry { id, json } => {
            let (actor, _) = sign_in(config, &store).await?;
            let m = mail::retry(&store, &actor, &id).await?;
            if json {
                print_json(&m)?;
            } else {
                print_message(&m);
            }
        }
        OutboxCommand::Cancel { id, json } => {
            let (actor, _) = sign_in(config, &store).await?;
            let m = mail::cancel(&store, &actor, &id).await?;
            if json {
                print_json(&m)?;
            } else {
                print_message(&m);
            }
        }
        OutboxCommand::Deliver { json } => {
            let mailer = super::mail::mailer(config)?;
            let (_, ring) = unlock(config, &store).await?;
            let report =
                mail::deliver_due(&store, &ring, &mailer, &DeliverOptions::default()).await?;
            if json {
                print_json(&report)?;
            } else {
                println!(
                    "sent {}, deferred {}, failed {}{}",
                    report.sent,
                    report.deferred,
                    report.failed,
                    report
                        .last_error
                        .as_deref()
                        .map(|e| format!(" (last error: {e})"))
                        .unwrap_or_default()
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
