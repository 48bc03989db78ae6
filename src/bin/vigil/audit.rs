//! `vigil audit` and `vigil security-events`: the audit chain and the security-event log.

use std::process::ExitCode;

use anyhow::{anyhow, Result};
use clap::Subcommand;
use vigil::audit::{self, AuditFilter, Verification};
use vigil::auth::{self, Username};
use vigil::config::Config;
use vigil::store::{Store, Timestamp};

use crate::shared::*;

#[derive(Subcommand)]
pub(crate) enum Command {
    /// The audit chain.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// The security-event log: denials, token failures, refreshes, logouts, expiry and locks.
    #[command(subcommand, name = "security-events")]
    SecurityEvents(SecurityEventsCommand),
}

#[derive(Subcommand)]
pub(crate) enum AuditCommand {
    /// Walk the hash chain; exit 0 and "ok: N entries", or exit 1 naming the first bad seq.
    Verify {
        /// Also verify the archived entries in this folder, from the first entry to the live
        /// chain's checkpoint.
        #[arg(long, value_name = "DIR")]
        archive: Option<std::path::PathBuf>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// List entries, newest first.
    List {
        /// Operator username, or a stored actor (user:<uuid>, system:<name>).
        #[arg(long)]
        actor: Option<String>,
        /// Action name, e.g. operator.bootstrapped.
        #[arg(long)]
        action: Option<String>,
        /// Only entries since this time: RFC 3339, YYYY-MM-DD, or an age such as 24h or 7d.
        #[arg(long, value_parser = vigil::cli_values::since)]
        since: Option<Timestamp>,
        /// Most entries to show.
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=10_000))]
        limit: u32,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
pub(crate) enum SecurityEventsCommand {
    /// List events, newest first (moderators and administrators).
    List {
        /// Operator username, or a stored actor (user:<uuid>, system:<name>).
        #[arg(long)]
        actor: Option<String>,
        /// Event kind: authorization_denied, token_rejected, token_refreshed, logout,
        /// session_expired, session_locked, session_unlocked.
        #[arg(long, value_parser = event_kind)]
        kind: Option<String>,
        /// Outcome: success, denied or failed.
        #[arg(long, value_parser = outcome)]
        outcome: Option<String>,
        /// Only events since this time: RFC 3339, YYYY-MM-DD, or an age such as 24h or 7d.
        #[arg(long, value_parser = vigil::cli_values::since)]
        since: Option<Timestamp>,
        /// Most events to show.
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=10_000))]
        limit: u32,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

pub(crate) async fn run(command: Command, config: &Config) -> Result<ExitCode> {
    match command {
        Command::Audit(AuditCommand::Verify { archive, json }) => {
            verify(config, archive, json).await
        }
        Command::Audit(AuditCommand::List {
            actor,
            action,
            since,
            limit,
            json,
        }) => list(config, actor, action, since, limit, json).await,
        Command::SecurityEvents(SecurityEventsCommand::List {
            actor,
            kind,
            outcome,
            since,
            limit,
            json,
        }) => security_events(config, actor, kind, outcome, since, limit, json).await,
    }
}

async fn verify(
    config: &Config,
    archive: Option<std::path::PathBuf>,
    json: bool,
) -> Result<ExitCode> {
    let store = open(config).await?;
    let (actor, _) = sign_in(config, &store).await?;
    if let Some(dir) = archive {
        let result = audit::archive::verify_with_archive(&store, &actor, &dir).await?;
        if json {
            print_json(&result)?;
        } else {
            // A sentence naming the segment and what is wrong with it.
            println!("{}", result.archive);
            print_live(&result.live);
        }
        return Ok(if result.is_ok() {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        });
    }
    let result = audit::verify(&store, &actor).await?;
    if json {
        print_json(&result)?;
    } else {
        print_live(&result);
    }
    Ok(match result {
        Verification::Ok { .. } => ExitCode::SUCCESS,
        Verification::Broken { .. } => ExitCode::from(1),
    })
}

async fn list(
    config: &Config,
    actor: Option<String>,
    action: Option<String>,
    since: Option<Timestamp>,
    limit: u32,
    json: bool,
) -> Result<ExitCode> {
    let store = open(config).await?;
    let (me, _) = sign_in(config, &store).await?;
    let actor = actor_filter(&store, actor).await?;
    let filter = AuditFilter {
        actor,
        action,
        since,
        limit: Some(limit),
        before_seq: None,
    };
    let entries = audit::list(&store, &me, &filter).await?;
    if json {
        print_json(&entries)?;
    } else {
        println!(
            "{:>7}  {:<27}  {:<43}  {:<22}  target",
            "seq", "at", "actor", "action"
        );
        for e in &entries {
            println!(
                "{:>7}  {:<27}  {:<43}  {:<22}  {}",
                e.seq,
                e.at.to_rfc3339(),
                terminal_safe(&e.actor),
                e.action,
                terminal_safe(e.target.as_deref().unwrap_or("-"))
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `--kind` of `security-events list`: one of the event kinds, as typed.
fn event_kind(s: &str) -> Result<String, String> {
    use vigil::security_events::SecurityEventKind;
    match SecurityEventKind::parse(s.trim()) {
        Some(k) => Ok(k.as_str().to_owned()),
        None => {
            let all: Vec<&str> = SecurityEventKind::ALL.iter().map(|k| k.as_str()).collect();
            Err(format!("expected one of: {}", all.join(", ")))
        }
    }
}

/// `--outcome` of `security-events list`.
fn outcome(s: &str) -> Result<String, String> {
    vigil::cli_values::one_of(
        vigil::security_events::Outcome::parse,
        "success, denied or failed",
    )(s)
    .map(|o| o.as_str().to_owned())
}

async fn security_events(
    config: &Config,
    actor: Option<String>,
    kind: Option<String>,
    outcome: Option<String>,
    since: Option<Timestamp>,
    limit: u32,
    json: bool,
) -> Result<ExitCode> {
    use vigil::security_events as events;
    let store = open(config).await?;
    let (me, _) = sign_in(config, &store).await?;
    let actor = actor_filter(&store, actor).await?;
    let filter = events::SecurityEventFilter {
        kind,
        actor,
        outcome,
        since,
        limit: Some(limit),
    };
    let list = events::list(&store, &me, &filter).await?;
    if json {
        print_json(&list)?;
    } else {
        println!(
            "{:<27}  {:<20}  {:<43}  {:<22}  {:<7}  session",
            "at", "kind", "actor", "attempted", "outcome"
        );
        for e in &list {
            println!(
                "{:<27}  {:<20}  {:<43}  {:<22}  {:<7}  {}",
                e.at.to_rfc3339(),
                e.kind,
                terminal_safe(
                    e.actor_name
                        .as_deref()
                        .or(e.actor.as_deref())
                        .unwrap_or("-")
                ),
                e.attempted,
                e.outcome,
                e.session_id.as_deref().unwrap_or("-")
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// An `--actor` filter as stored: `user:<id>` or `system:<step>` as given, or a username
/// looked up to its `user:<id>`.
async fn actor_filter(store: &Store, actor: Option<String>) -> Result<Option<String>> {
    Ok(match actor {
        None => None,
        Some(a) if a.starts_with("user:") || a.starts_with("system:") => Some(a),
        Some(name) => {
            let name = Username::parse(&name)?;
            let id = auth::operator_id(store, &name)
                .await?
                .ok_or_else(|| anyhow!("no operator with that username"))?;
            Some(format!("user:{id}"))
        }
    })
}

fn print_live(v: &Verification) {
    match v {
        Verification::Ok { entries, .. } => println!("ok: {entries} entries"),
        Verification::Broken { seq, fault, .. } => println!("broken: seq {seq}: {fault}"),
    }
}
