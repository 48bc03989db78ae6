//! `vigil dsr run`: running a verified request: the export, the erasure (resuming a stopped one),
//! or the corrections.

use std::process::ExitCode;

use anyhow::{anyhow, Result};
use vigil::config::Config;
use vigil::privacy;
use vigil::store::Store;

use crate::shared::*;

pub(super) async fn run_request(
    config: &Config,
    store: &Store,
    id: privacy::RequestId,
    out: Option<std::path::PathBuf>,
    comments: privacy::CommentPolicy,
    set: Vec<String>,
    json: bool,
) -> Result<ExitCode> {
    let corrections = corrections(&set)?;
    let (actor, ring) = unlock(config, store).await?;
    let options = privacy::RunOptions {
        out_dir: Some(match out {
            Some(d) => d,
            None => std::env::current_dir()?,
        }),
        comments,
        corrections,
    };
    let bar = progress_bar(json);
    let outcome = privacy::run(store, &ring, &actor, id, &options, &mut |p| {
        if json {
            if let Ok(line) = serde_json::to_string(p) {
                println!("{line}");
            }
        } else {
            bar.set_message(format!(
                "step {}/{}: {} ({})",
                p.step, p.steps, p.name, p.state
            ));
        }
        privacy::Flow::Continue
    })
    .await;
    bar.finish_and_clear();
    let outcome = outcome?;
    if json {
        print_json(&outcome)?;
    }
    Ok(print_outcome(&outcome, json))
}

/// The corrections of a rectification, from `--set FIELD=VALUE` (`-` reads a value from standard
/// input).
fn corrections(set: &[String]) -> Result<Vec<privacy::Correction>> {
    set.iter()
        .map(|s| match s.split_once('=') {
            Some(("display_name", v)) => Ok(privacy::Correction::DisplayName(v.into())),
            Some(("email", "-")) => Ok(privacy::Correction::Email(
                sensitive_value(Some("-".into()), "new email")?.to_string(),
            )),
            Some(("phone", "-")) => Ok(privacy::Correction::Phone(
                sensitive_value(Some("-".into()), "new phone number")?.to_string(),
            )),
            Some(("email", v)) => Ok(privacy::Correction::Email(v.into())),
            Some(("phone", v)) => Ok(privacy::Correction::Phone(v.into())),
            _ => Err(anyhow!(
                "--set takes display_name=..., email=... or phone=..."
            )),
        })
        .collect()
}

/// The outcome as text (with --json it was printed whole); exit 1 while the subject's
/// identifiers remain.
fn print_outcome(outcome: &privacy::RunOutcome, json: bool) -> ExitCode {
    match outcome {
        privacy::RunOutcome::Exported { files } => {
            if !json {
                for f in files {
                    println!("wrote {} ({} bytes, sha256 {})", f.path, f.bytes, f.sha256);
                }
            }
        }
        privacy::RunOutcome::Erased { receipt } => {
            if !json {
                for s in &receipt.steps {
                    println!("{:<20} {} rows", s.name, s.rows);
                }
                println!(
                    "erased: residual scan clean ({} tables, {} columns, {} sealed values opened{}); receipt in the audit log",
                    receipt.scan.tables,
                    receipt.scan.columns,
                    receipt.scan.values_opened,
                    receipt.scan.file_bytes.map(|b| format!(", {b} file bytes")).unwrap_or_default()
                );
            }
        }
        privacy::RunOutcome::ResidualFound { report } => {
            if !json {
                println!("NOT completed: the subject's identifiers are still in the database:");
                for h in &report.hits {
                    println!("  {} ({}): {}", h.place, h.identifier, h.count);
                }
                println!("remove them, then run the request again");
            }
            return ExitCode::from(1);
        }
        privacy::RunOutcome::Rectified { fields } => {
            if !json {
                println!("corrected: {}", fields.join(", "));
            }
        }
    }
    ExitCode::SUCCESS
}
