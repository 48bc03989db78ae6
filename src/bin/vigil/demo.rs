//! `vigil demo`: demonstration data.

use std::process::ExitCode;

use anyhow::Result;
use clap::{Args, Subcommand};
use vigil::config::Config;
use vigil::demo::{self, SeedOptions};

use crate::shared::*;

#[derive(Subcommand)]
pub(crate) enum Command {
    /// Demonstration data.
    #[command(subcommand)]
    Demo(DemoCommand),
}

#[derive(Subcommand)]
pub(crate) enum DemoCommand {
    /// Fill an empty database with a deterministic, realistic platform.
    Seed(SeedArgs),
}

#[derive(Args)]
pub(crate) struct SeedArgs {
    /// Platform users (1 to 10,000,000).
    #[arg(long, default_value_t = 1_000, value_parser = clap::value_parser!(u32).range(1..=10_000_000))]
    users: u32,
    /// Comments (at most 100,000,000).
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(0..=100_000_000))]
    comments: u32,
    /// Days of history (1 to 3,650).
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..=3_650))]
    days: u32,
    /// Random seed: the same seed gives the same data.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Add the labelled attack scenarios (credential stuffing, a burst poster, an account
    /// used from many addresses, an unusual country and hour, a phishing spammer).
    #[arg(long)]
    scenarios: bool,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

pub(crate) async fn run(command: Command, config: &Config) -> Result<ExitCode> {
    let Command::Demo(DemoCommand::Seed(a)) = command;
    seed(config, a).await
}

async fn seed(config: &Config, a: SeedArgs) -> Result<ExitCode> {
    let store = open(config).await?;
    let (actor, ring) = unlock(config, &store).await?;
    let opts = SeedOptions {
        users: a.users,
        comments: a.comments,
        days: a.days,
        seed: a.seed,
        scenarios: a.scenarios,
    };
    let bar = progress_bar(a.json);
    let report = demo::seed(&store, &actor, &ring, opts, &mut |p| show(&bar, p)).await;
    bar.finish_and_clear();
    let report = report?;
    if a.json {
        print_json(&report)?;
    } else {
        println!(
            "seeded: {} users, {} events, {} comments, {} reactions, {} activity records",
            report.users, report.events, report.comments, report.reactions, report.activity
        );
        if opts.scenarios {
            println!(
                "scenarios ({} activity records; `vigil monitor run` turns them into incidents):",
                report.scenario_activity
            );
            for s in demo::SCENARIOS {
                println!(
                    "  {:<16} {} -> {} ({})",
                    s.username,
                    s.label,
                    s.kind.as_str(),
                    s.severity.as_str()
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
