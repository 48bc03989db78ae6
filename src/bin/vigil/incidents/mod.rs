//! Security monitoring and the moderators' work: `vigil activity`, `monitor`, `incidents`,
//! `charts` and `blocks`.

mod activity;

use std::process::ExitCode;

use anyhow::{anyhow, Context, Result};
use clap::Subcommand;
use vigil::auth::Actor;
use vigil::cli_values::one_of;
use vigil::config::Config;
use vigil::incidents::{
    self, Action, IncidentDetail, IncidentKind, IncidentStatus, QueueFilter, Severity,
};
use vigil::store::{Store, Timestamp};

use crate::shared::*;
use activity::{ActivityCommand, MonitorCommand};

#[derive(Subcommand)]
pub(crate) enum Command {
    /// Platform activity: take it in for the detectors.
    #[command(subcommand)]
    Activity(ActivityCommand),
    /// Security monitoring: the detectors, content and URL screening.
    #[command(subcommand)]
    Monitor(MonitorCommand),
    /// The moderators' incident queue.
    #[command(subcommand)]
    Incidents(IncidentsCommand),
    /// Draw the dashboard charts to files (SVG, or PNG with --png).
    Charts {
        /// The folder to write them to.
        #[arg(long)]
        out: std::path::PathBuf,
        /// Days: 7, 30 or 90.
        #[arg(long, default_value_t = 30, value_parser = vigil::cli_values::chart_days)]
        days: u32,
        /// PNG instead of SVG.
        #[arg(long)]
        png: bool,
    },
    /// IP address blocks.
    #[command(subcommand)]
    Blocks(BlocksCommand),
}

#[derive(Subcommand)]
pub(crate) enum IncidentsCommand {
    /// The review queue: most severe first, then oldest.
    List {
        /// open, investigating, resolved or dismissed (default: open and investigating).
        #[arg(long, value_parser = one_of(IncidentStatus::parse, "open, investigating, resolved or dismissed"))]
        status: Option<IncidentStatus>,
        /// critical, high, medium or low.
        #[arg(long, value_parser = one_of(Severity::parse, "critical, high, medium or low"))]
        severity: Option<Severity>,
        /// credential_stuffing, rate_limit_exceeded, suspicious_activity, malicious_content,
        /// suspicious_content.
        #[arg(long, value_parser = one_of(IncidentKind::parse, KINDS))]
        kind: Option<IncidentKind>,
        /// Only incidents assigned to me.
        #[arg(long)]
        mine: bool,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// One incident: evidence, activity around it, timeline, blocks and restrictions.
    Show {
        /// Incident id.
        #[arg(value_parser = vigil::cli_values::id)]
        id: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Act on an incident: assign, confirm, dismiss, lift-suspension, extend-suspension:HOURS,
    /// lift-block, extend-block:HOURS, lift-restrictions, remove-comment:ID, warn, note.
    Act {
        /// Incident id.
        #[arg(value_parser = vigil::cli_values::id)]
        id: String,
        /// The action.
        #[arg(value_parser = |s: &str| Action::parse(s).map_err(|e| e.to_string()))]
        action: Action,
        /// Why (needed for note and remove-comment).
        #[arg(long)]
        reason: Option<String>,
    },
    /// Rules dismissed as false positives, with how often.
    Feedback(JsonFlag),
}

#[derive(Subcommand)]
pub(crate) enum BlocksCommand {
    /// Blocks in force.
    List {
        /// Expired and lifted ones too.
        #[arg(long)]
        all: bool,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Block an address.
    Add {
        /// The IP address. Leave it out on a terminal to be asked for it without echo, or give
        /// `-` to read one line from standard input: given here, it is visible to other local
        /// users in the process list while the command runs.
        #[arg(value_parser = vigil::cli_values::ip_or_stdin)]
        ip: Option<String>,
        /// For this many hours, 1 to 8760 (until lifted if absent).
        #[arg(long, value_parser = vigil::cli_values::hours)]
        hours: Option<u32>,
        /// Why.
        #[arg(long)]
        reason: String,
    },
    /// Lift a block, by its id or by address.
    Remove {
        /// Block id or IP address. `-` reads it from standard input, and leaving it out on a
        /// terminal asks for it without echo: an address given here is visible to other local
        /// users in the process list while the command runs.
        #[arg(value_parser = vigil::cli_values::block_or_ip_or_stdin)]
        which: Option<String>,
    },
}

pub(crate) async fn run(command: Command, config: &Config) -> Result<ExitCode> {
    match command {
        Command::Activity(c) => activity::activity_cmd(config, c).await,
        Command::Monitor(MonitorCommand::Run(j)) => activity::monitor_run(config, j.json).await,
        Command::Monitor(MonitorCommand::Screen {
            file,
            blocklist,
            json,
        }) => activity::monitor_screen(config, file, &blocklist, json),
        Command::Incidents(c) => incidents_cmd(config, c).await,
        Command::Charts { out, days, png } => charts_cmd(config, &out, days, png).await,
        Command::Blocks(c) => blocks_cmd(config, c).await,
    }
}

const KINDS: &str = "credential_stuffing, rate_limit_exceeded, suspicious_activity, \
                     malicious_content or suspicious_content";

async fn incidents_cmd(config: &Config, command: IncidentsCommand) -> Result<ExitCode> {
    let store = open(config).await?;
    let (actor, _) = sign_in(config, &store).await?;
    match command {
        IncidentsCommand::List {
            status,
            severity,
            kind,
            mine,
            json,
        } => list(&store, &actor, status, severity, kind, mine, json).await?,
        IncidentsCommand::Show { id, json } => show(&store, &actor, &id, json).await?,
        IncidentsCommand::Act { id, action, reason } => {
            incidents::act(&store, &actor, &id, &action, reason.as_deref()).await?;
            println!("{}: {}", id.trim(), action.name());
        }
        IncidentsCommand::Feedback(j) => {
            let rows = incidents::rule_feedback(&store, &actor).await?;
            if j.json {
                print_json(&rows)?;
            } else {
                for (rule, n) in &rows {
                    println!("{n:>6}  {rule}");
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn list(
    store: &Store,
    actor: &Actor,
    status: Option<IncidentStatus>,
    severity: Option<Severity>,
    kind: Option<IncidentKind>,
    mine: bool,
    json: bool,
) -> Result<()> {
    let filter = QueueFilter {
        status,
        severity,
        kind,
        mine,
        limit: None,
    };
    let rows = incidents::list(store, actor, &filter).await?;
    if json {
        print_json(&rows)?;
    } else {
        for i in &rows {
            println!(
                "{}  {:<8}  {:<13}  {:<20}  {:<16}  {}  {}",
                i.id,
                i.severity.as_str(),
                i.status.as_str(),
                i.kind.as_str(),
                terminal_safe(i.username.as_deref().unwrap_or("-")),
                i.created_at,
                terminal_safe(&i.summary)
            );
        }
        println!("{} incidents", rows.len());
    }
    Ok(())
}

async fn show(store: &Store, actor: &Actor, id: &str, json: bool) -> Result<()> {
    let d = incidents::show(store, actor, id).await?;
    if json {
        print_json(&d)?;
    } else {
        print_incident(&d);
        print_measures(&d);
    }
    Ok(())
}

/// An incident as text: what, whose, why, and the activity and comments behind it. Text that
/// came from the platform or from an operator is passed through [`terminal_safe`].
fn print_incident(d: &IncidentDetail) {
    let i = &d.incident;
    println!("incident {}", i.id);
    println!("  kind      {}", i.kind.as_str());
    println!("  severity  {}", i.severity.as_str());
    println!("  status    {}", i.status.as_str());
    println!(
        "  account   {} ({})",
        terminal_safe(i.username.as_deref().unwrap_or("-")),
        d.account_status.as_deref().unwrap_or("-")
    );
    println!(
        "  assignee  {}",
        terminal_safe(i.assignee.as_deref().unwrap_or("-"))
    );
    println!("  summary   {}", terminal_safe(&i.summary));
    println!("rules:");
    for (rule, n) in &d.rules {
        println!("  {} x{n}", terminal_safe(rule));
    }
    println!("activity ({}):", d.activity.len());
    for a in &d.activity {
        println!(
            "  {} {} {:<8} {:<7} {:<3} {}",
            if a.evidence { "*" } else { " " },
            a.at,
            a.kind,
            a.outcome,
            terminal_safe(a.country.as_deref().unwrap_or("-")),
            terminal_safe(a.username.as_deref().unwrap_or("(unknown account)"))
        );
    }
    for c in &d.comments {
        println!(
            "comment {}: {}",
            c.id,
            terminal_safe(c.text.as_deref().unwrap_or(if c.private {
                "(end-to-end encrypted)"
            } else {
                "(removed)"
            }))
        );
    }
}

/// The blocks and restrictions an incident led to, and its timeline.
fn print_measures(d: &IncidentDetail) {
    for b in &d.blocks {
        println!(
            "block {}  {}  {}  until {}",
            b.id,
            b.ip,
            b.state,
            b.expires_at
                .map(|t| t.to_rfc3339())
                .unwrap_or("lifted by hand".into())
        );
    }
    for r in &d.restrictions {
        println!(
            "restriction {}  {}  {}  until {}",
            r.id,
            r.kind,
            r.state,
            r.expires_at
                .map(|t| t.to_rfc3339())
                .unwrap_or("lifted by hand".into())
        );
    }
    println!("timeline:");
    for t in &d.timeline {
        println!(
            "  {}  {:<18} {}{}{}",
            t.at,
            t.action,
            if t.automated {
                "automatic".to_owned()
            } else {
                terminal_safe(t.actor.as_deref().unwrap_or_default()).into_owned()
            },
            t.details["reason"]
                .as_str()
                .map(|r| format!(": {}", terminal_safe(r)))
                .unwrap_or_default(),
            t.reversed_at
                .map(|r| format!("  (reversed {r})"))
                .unwrap_or_default()
        );
    }
}

async fn charts_cmd(
    config: &Config,
    out: &std::path::Path,
    days: u32,
    png: bool,
) -> Result<ExitCode> {
    use vigil::analytics::{self, ChartKind, Period};
    let period = Period::from_days(days).ok_or_else(|| anyhow!("--days must be 7, 30 or 90"))?;
    let store = open(config).await?;
    let (actor, _) = sign_in(config, &store).await?;
    vigil::store::files::create_private_dir(out)
        .with_context(|| format!("cannot create {}", out.display()))?;
    for kind in ChartKind::ALL {
        let data = match analytics::chart_data(&store, &actor, kind, period, Timestamp::now()).await
        {
            Ok(d) => d,
            Err(analytics::AnalyticsError::Forbidden(e)) => {
                eprintln!("{}: skipped ({e})", kind.as_str());
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        let (bytes, ext) = if png {
            (analytics::render_png(&data, 1200, 600)?, "png")
        } else {
            (analytics::render_svg(&data, 1200, 600)?.into_bytes(), "svg")
        };
        let path = out.join(format!("{}-{days}d.{ext}", kind.as_str()));
        // Replaced whole, owner-only; a symbolic link planted in the folder is refused.
        vigil::store::files::replace_atomically(&path, &bytes, vigil::store::files::PRIVATE_FILE)?;
        println!("{}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}

async fn blocks_cmd(config: &Config, command: BlocksCommand) -> Result<ExitCode> {
    let store = open(config).await?;
    let (actor, _) = sign_in(config, &store).await?;
    match command {
        BlocksCommand::List { all, json } => {
            let rows = incidents::blocks(&store, &actor, all).await?;
            if json {
                print_json(&rows)?;
            } else {
                for b in &rows {
                    println!(
                        "{}  {:<39}  {:<7}  until {:<27}  {}",
                        b.id,
                        b.ip,
                        b.state,
                        b.expires_at
                            .map(|t| t.to_rfc3339())
                            .unwrap_or_else(|| "lifted by hand".into()),
                        terminal_safe(&b.reason)
                    );
                }
            }
        }
        BlocksCommand::Add { ip, hours, reason } => {
            let ip = sensitive_value(ip, "IP address to block")?;
            let id = incidents::block(&store, &actor, &ip, hours, &reason).await?;
            println!("blocked: {id}");
        }
        BlocksCommand::Remove { which } => {
            let which = sensitive_value(which, "block id or IP address")?;
            let n = incidents::unblock(&store, &actor, &which).await?;
            println!("lifted {n} block(s)");
        }
    }
    Ok(ExitCode::SUCCESS)
}
