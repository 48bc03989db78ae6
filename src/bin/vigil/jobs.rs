//! `vigil retention …` and `vigil worker`: the retention policies, their dry run and runs, and
//! the headless worker that runs the scheduled jobs.

use std::io::IsTerminal;
use std::process::ExitCode;

use anyhow::{anyhow, bail, Result};
use clap::Subcommand;
use vigil::auth::Actor;
use vigil::cli_values::one_of;
use vigil::config::Config;
use vigil::monitor;
use vigil::retention::{self, Category, PolicyAction, PolicyChange, RunOptions, RunStatus};
use vigil::store::Store;
use vigil::worker::{Job, Worker};

use crate::shared::{
    open, print_json, print_json_line, progress_bar, session, show_progress, sign_in,
};

#[derive(Subcommand)]
pub(crate) enum Command {
    /// Retention policies: view and change them, the dry run, runs and their history.
    #[command(subcommand)]
    Retention(RetentionCommand),
    /// Run the scheduled jobs (retention daily, the detectors every minute) as a service
    /// account, until stopped. Several workers may share one Postgres database.
    Worker {
        /// Run the due jobs once and exit (for a systemd timer or cron).
        #[arg(long)]
        once: bool,
        /// Only this job (repeat for several): retention, monitor, mail.
        #[arg(long = "job", value_name = "JOB")]
        jobs: Vec<String>,
        /// One JSON line per job per round.
        #[arg(long)]
        json: bool,
        /// Crash tests: abort inside this retention chunk's transaction.
        #[arg(long, hide = true)]
        abort_in_chunk: Option<u64>,
    },
}

pub(crate) async fn run(command: Command, config: &Config) -> Result<ExitCode> {
    match command {
        Command::Retention(c) => retention_cmd(config, c).await,
        Command::Worker {
            once,
            jobs: names,
            json,
            abort_in_chunk,
        } => worker_cmd(config, once, &names, json, abort_in_chunk).await,
    }
}

#[derive(Subcommand)]
pub(crate) enum RetentionCommand {
    /// The policies: category, period, action, enabled.
    Policies {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Change a policy (refused, changing nothing, if a value is out of range).
    Set {
        /// activity, comments, sessions, deleted_users or audit.
        #[arg(value_parser = one_of(Category::parse, CATEGORIES))]
        category: Category,
        /// Keep records this many days.
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..=i64::from(retention::MAX_DAYS)))]
        days: Option<u32>,
        /// delete, anonymize or archive (each category allows some).
        #[arg(long, value_parser = one_of(PolicyAction::parse, "delete, anonymize or archive"))]
        action: Option<PolicyAction>,
        /// Apply it in runs.
        #[arg(long, conflicts_with = "disable")]
        enable: bool,
        /// Skip it in runs.
        #[arg(long)]
        disable: bool,
    },
    /// Dry run: per policy, what is due, the oldest, and what holds keep back. Changes nothing.
    Plan {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Apply the policies in chunks (one transaction each). An interrupted run resumes first.
    Run {
        /// Only this policy.
        #[arg(long, value_parser = one_of(Category::parse, CATEGORIES))]
        policy: Option<Category>,
        /// Records per chunk (default from [retention] chunk).
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..=i64::from(vigil::config::MAX_CHUNK)))]
        chunk: Option<u32>,
        /// Progress and the result as JSON lines on stdout.
        #[arg(long)]
        json: bool,
        /// No progress bar.
        #[arg(long)]
        quiet: bool,
        /// Crash tests: abort the process inside this chunk's transaction.
        #[arg(long, hide = true)]
        abort_in_chunk: Option<u64>,
    },
    /// Past runs, newest first.
    Runs {
        /// Most runs to show (1 to 500).
        #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=500))]
        limit: u32,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

const CATEGORIES: &str = "activity, comments, sessions, deleted_users or audit";

fn when(t: Option<vigil::store::Timestamp>) -> String {
    t.map_or_else(
        || "-".into(),
        |t| t.to_datetime().format("%Y-%m-%d").to_string(),
    )
}

pub(crate) async fn retention_cmd(config: &Config, command: RetentionCommand) -> Result<ExitCode> {
    let store = open(config).await?;
    let (actor, _) = sign_in(config, &store).await?;
    match command {
        RetentionCommand::Policies { json } => {
            let list = retention::policies(&store, &actor).await?;
            if json {
                print_json(&list)?;
            } else {
                println!("{:<14} {:>7}  {:<10} ENABLED", "POLICY", "DAYS", "ACTION");
                for p in list {
                    println!(
                        "{:<14} {:>7}  {:<10} {}",
                        p.category.as_str(),
                        p.period_days,
                        p.action.as_str(),
                        if p.enabled { "yes" } else { "no" }
                    );
                }
            }
        }
        RetentionCommand::Set {
            category: c,
            days,
            action,
            enable,
            disable,
        } => set_policy(&store, &actor, c, days, action, enable, disable).await?,
        RetentionCommand::Plan { json } => plan(&store, &actor, json).await?,
        RetentionCommand::Run {
            policy,
            chunk,
            json,
            quiet,
            abort_in_chunk,
        } => {
            let options = RunOptions {
                policy,
                chunk: chunk.unwrap_or(config.retention.chunk),
                as_of: None,
                archive_dir: config.retention.archive_dir(),
                abort_in_chunk,
            };
            return run_policies(&store, &actor, &options, json, quiet).await;
        }
        RetentionCommand::Runs { limit, json } => {
            let runs = retention::runs(&store, &actor, limit).await?;
            if json {
                print_json(&runs)?;
            } else {
                for r in runs {
                    let done: u64 = r.counts.values().map(|c| c.done).sum();
                    let held: u64 = r.counts.values().map(|c| c.held).sum();
                    println!(
                        "{}  {}  {:<9} {:<14} by {:<16} {done} done, {held} held{}",
                        r.id,
                        r.started_at,
                        format!("{:?}", r.status).to_lowercase(),
                        r.policy.map_or("all", Category::as_str),
                        r.started_by.as_deref().unwrap_or("-"),
                        if r.errors.is_empty() {
                            String::new()
                        } else {
                            format!(", {} failed", r.errors.len())
                        }
                    );
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn set_policy(
    store: &Store,
    actor: &Actor,
    c: Category,
    days: Option<u32>,
    action: Option<PolicyAction>,
    enable: bool,
    disable: bool,
) -> Result<()> {
    let enabled = match (enable, disable) {
        (true, _) => Some(true),
        (_, true) => Some(false),
        _ => None,
    };
    if days.is_none() && action.is_none() && enabled.is_none() {
        bail!("nothing to change: give --days, --action, --enable or --disable");
    }
    let change = PolicyChange {
        period_days: days,
        action,
        enabled,
    };
    let p = retention::set_policy(store, actor, c, &change).await?;
    println!(
        "{}: keep {} days, then {}{}",
        p.category,
        p.period_days,
        p.action.as_str(),
        if p.enabled { "" } else { " (disabled)" }
    );
    Ok(())
}

async fn plan(store: &Store, actor: &Actor, json: bool) -> Result<()> {
    let plan = retention::plan(store, actor, None).await?;
    if json {
        print_json(&plan)?;
    } else {
        println!(
            "{:<14} {:<10} {:>6} {:>10} {:>11} {:>8}  HELD BY (hold/incident/request)",
            "POLICY", "ACTION", "DAYS", "DUE", "OLDEST", "HELD"
        );
        for p in plan {
            println!(
                "{:<14} {:<10} {:>6} {:>10} {:>11} {:>8}  {}/{}/{}{}",
                p.category.as_str(),
                p.action.as_str(),
                p.period_days,
                p.due,
                when(p.oldest),
                p.held.total(),
                p.held.legal_hold,
                p.held.open_incident,
                p.held.open_request,
                if p.enabled { "" } else { "  (disabled)" }
            );
        }
    }
    Ok(())
}

async fn run_policies(
    store: &Store,
    actor: &Actor,
    options: &RunOptions,
    json: bool,
    quiet: bool,
) -> Result<ExitCode> {
    let bar = progress_bar(quiet || json);
    let mut progress = |p: retention::Progress| {
        bar.set_message(p.policy.as_str());
        show_progress(json, &bar, &p, p.done, p.due);
        std::ops::ControlFlow::Continue(())
    };
    let rec = retention::run(store, actor, options, &mut progress).await?;
    bar.finish_and_clear();
    if json {
        print_json_line("run", &rec)?;
    } else {
        if rec.resumed {
            println!("resumed the interrupted run {}", rec.id);
        }
        for c in Category::ALL {
            let Some(n) = rec.counts.get(&c) else {
                continue;
            };
            if n.skipped {
                println!("{:<14} skipped (disabled)", c.as_str());
            } else {
                println!(
                    "{:<14} {:>9} done {:>7} held  {:>5} chunks  {:.2} s",
                    c.as_str(),
                    n.done,
                    n.held,
                    n.chunks,
                    n.seconds
                );
            }
        }
        if let (Some(dir), true) = (
            &options.archive_dir,
            rec.counts.get(&Category::Audit).is_some_and(|n| n.done > 0),
        ) {
            println!("audit log archived to {}", dir.display());
        }
        for e in &rec.errors {
            eprintln!("{}: failed: {}", e.policy, e.message);
        }
        println!(
            "run {} {}",
            rec.id,
            format!("{:?}", rec.status).to_lowercase()
        );
    }
    if rec.status != RunStatus::Completed {
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

/// `vigil worker`.
pub(crate) async fn worker_cmd(
    config: &Config,
    once: bool,
    jobs: &[String],
    json: bool,
    abort_in_chunk: Option<u64>,
) -> Result<ExitCode> {
    let jobs: Vec<Job> = if jobs.is_empty() {
        Job::ALL.to_vec()
    } else {
        jobs.iter()
            .map(|j| {
                Job::parse(j)
                    .ok_or_else(|| anyhow!("unknown job {j:?}: retention, monitor or mail"))
            })
            .collect::<Result<_>>()?
    };
    let wants_mail = jobs.contains(&Job::Mail);
    let screener = monitor::screen::Screener::from_config(&config.monitor, &[])?;
    let store = open(config).await?;
    let (s, _password) = session(config, &store).await?;
    let mut worker = Worker::start(store, s.actor, s.keys, config.clone(), screener, jobs).await?;
    worker.abort_in_chunk = abort_in_chunk;
    if config.mail.host.is_some() && wants_mail {
        worker.mailer = Some(super::mail::mailer(config)?);
    }
    let interactive = std::io::stderr().is_terminal();
    loop {
        let outcomes = worker.round().await?;
        let mut failed = false;
        for o in &outcomes {
            failed |= o.outcome == "failed";
            if json {
                println!("{}", serde_json::to_string(o)?);
            } else if o.outcome != "not_due" || interactive {
                println!(
                    "{} {:<9} {}{}",
                    o.at,
                    o.job.as_str(),
                    o.outcome,
                    o.error
                        .as_deref()
                        .map(|e| format!(": {e}"))
                        .unwrap_or_default()
                );
            }
        }
        if once {
            return Ok(if failed {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            });
        }
        tokio::select! {
            _ = tokio::time::sleep(worker.next_wake()) => {}
            _ = tokio::signal::ctrl_c() => return Ok(ExitCode::SUCCESS),
        }
    }
}
