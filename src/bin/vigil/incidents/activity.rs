//! `vigil activity ingest` and `vigil monitor`: platform activity in, the detectors and
//! content screening over it.

use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Subcommand;
use vigil::config::Config;
use vigil::monitor;

use crate::shared::*;

#[derive(Subcommand)]
pub(crate) enum ActivityCommand {
    /// Ingest activity, one JSON object per line (FILE or stdin): {"type": "login_attempt" |
    /// "comment_submission" | "reaction" | "profile_change", "user", "at" (RFC 3339), "ip",
    /// "user_agent", "country", "outcome": "success" | "failure", "reason", "content",
    /// "event", "comment", "id"}. Bad lines are reported with their numbers and skipped.
    Ingest {
        /// The file; stdin if absent or `-`.
        file: Option<std::path::PathBuf>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
pub(crate) enum MonitorCommand {
    /// Run the detectors and content screening over activity ingested since the last run;
    /// record incidents and the automated responses.
    Run(JsonFlag),
    /// Screen comments, one per line (FILE or stdin), for the threat patterns and URLs.
    Screen {
        /// The file; stdin if absent or `-`.
        file: Option<std::path::PathBuf>,
        /// A blocklist file of hosts and URLs (repeat; adds to the configured ones).
        #[arg(long, value_name = "FILE")]
        blocklist: Vec<std::path::PathBuf>,
        /// One JSON object per line: {"line", "categories", "urls": [{"url", "verdict", "reasons"}]}.
        #[arg(long)]
        json: bool,
    },
}

pub(crate) fn monitor_screen(
    config: &Config,
    file: Option<std::path::PathBuf>,
    blocklist: &[std::path::PathBuf],
    json: bool,
) -> Result<ExitCode> {
    use std::io::Write;
    use vigil::monitor::screen::Screener;
    let screener = Screener::from_config(&config.monitor, blocklist)?;
    let mut input = input(file.as_deref())?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(1 << 20, stdout.lock());
    if json {
        screener.screen_lines(&mut input, &mut out)?;
        return Ok(ExitCode::SUCCESS);
    }
    let (mut n, mut flagged, mut skipped) = (0u64, 0u64, 0u64);
    let mut lines = monitor::lines::Lines::new(&mut input, screener.max_line_bytes());
    while let Some((number, line)) = lines.next_line()? {
        n = number;
        let text = match line {
            Ok(text) => text,
            Err(fault) => {
                skipped += 1;
                writeln!(out, "line {number}: skipped: {fault}")?;
                continue;
            }
        };
        let f = screener.screen(text.trim_end());
        let risky: Vec<String> = f
            .urls
            .iter()
            .filter(|u| u.verdict != vigil::monitor::screen::Verdict::Clean)
            .map(|u| {
                format!(
                    "{} ({:?}: {})",
                    terminal_safe(&u.url),
                    u.verdict,
                    u.reasons.join(", ")
                )
                .to_lowercase()
            })
            .collect();
        if !f.categories.is_empty() || !risky.is_empty() {
            flagged += 1;
            let mut parts = f.categories.clone();
            parts.extend(risky);
            writeln!(out, "line {number}: {}", parts.join("; "))?;
        }
    }
    if skipped > 0 {
        writeln!(out, "{n} lines read, {flagged} flagged, {skipped} skipped")?;
        out.flush()?;
        return Ok(ExitCode::SUCCESS);
    }
    writeln!(out, "{n} lines screened, {flagged} flagged")?;
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// A file, or stdin for none or `-`.
fn input(file: Option<&std::path::Path>) -> Result<Box<dyn std::io::BufRead>> {
    Ok(match file {
        None => Box::new(std::io::BufReader::with_capacity(1 << 20, std::io::stdin())),
        Some(p) if p.as_os_str() == "-" => {
            Box::new(std::io::BufReader::with_capacity(1 << 20, std::io::stdin()))
        }
        Some(p) => Box::new(std::io::BufReader::with_capacity(
            1 << 20,
            std::fs::File::open(p).with_context(|| format!("cannot open {}", p.display()))?,
        )),
    })
}

pub(crate) async fn activity_cmd(config: &Config, command: ActivityCommand) -> Result<ExitCode> {
    let ActivityCommand::Ingest { file, json } = command;
    let store = open(config).await?;
    let (actor, ring) = unlock(config, &store).await?;
    let report = monitor::ingest_reader_with_limit(
        &store,
        &ring,
        &actor,
        input(file.as_deref())?,
        config.monitor.max_line_bytes,
    )
    .await?;
    if json {
        print_json(&report)?;
    } else {
        for b in &report.rejected {
            eprintln!("line {}: {}", b.line, b.error);
        }
        if report.rejected_total > report.rejected.len() as u64 {
            eprintln!(
                "... and {} more bad lines",
                report.rejected_total - report.rejected.len() as u64
            );
        }
        println!(
            "ingested {} records ({} comments), {} already present, {} bad lines skipped",
            report.ingested, report.comments, report.duplicates, report.rejected_total
        );
    }
    Ok(if report.rejected_total > 0 {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}

pub(crate) async fn monitor_run(config: &Config, json: bool) -> Result<ExitCode> {
    let screener = monitor::screen::Screener::from_config(&config.monitor, &[])?;
    let store = open(config).await?;
    let (actor, ring) = unlock(config, &store).await?;
    let report = monitor::run(
        &store,
        &ring,
        &actor,
        &config.monitor.policy,
        &screener,
        config.monitor.shards,
    )
    .await?;
    if json {
        print_json(&report)?;
    } else {
        println!(
            "{} new records judged ({} read, {} comments screened): {} detections, {} incidents \
             opened, {} folded into open ones, {} automated actions, {} suspensions ended",
            report.new_events,
            report.scanned,
            report.comments_screened,
            report.detections,
            report.opened,
            report.folded,
            report.actions,
            report.suspensions_expired
        );
        if report.sources_unopened > 0 {
            println!(
                "{} source addresses did not open (altered or moved in the database): their \
                 incidents were recorded without them; the log names the records",
                report.sources_unopened
            );
        }
        if report.shards > 1 {
            println!(
                "shards judged: {} of {}{}",
                report.shards_done.len(),
                report.shards,
                if report.shards_busy.is_empty() {
                    String::new()
                } else {
                    format!(
                        " ({} busy on another worker: {})",
                        report.shards_busy.len(),
                        report
                            .shards_busy
                            .iter()
                            .map(u32::to_string)
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                }
            );
        }
        if let Some(from) = report.resharded_from {
            println!(
                "shard count changed from {from} to {} (every record judged once)",
                report.shards
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
