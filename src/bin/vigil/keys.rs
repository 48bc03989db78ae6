//! `vigil keys`: operator key pairs and data keys: enrol, grant, revoke, rotate, status.

use std::process::ExitCode;

use anyhow::{anyhow, Result};
use clap::Subcommand;
use vigil::auth::Actor;
use vigil::config::Config;
use vigil::keys::{self, rotation, KeyRing, Purpose};
use vigil::store::Store;

use crate::shared::*;

#[derive(Subcommand)]
pub(crate) enum Command {
    /// Operator key pairs and data keys: enrol, grant, revoke, rotate, status.
    #[command(subcommand)]
    Keys(KeysCommand),
}

#[derive(Subcommand)]
pub(crate) enum KeysCommand {
    /// Make a key pair for yourself on this machine (its private half sealed into this
    /// machine's keystore with your password); an administrator then grants it the data keys.
    Enrol(JsonFlag),
    /// Wrap, for OPERATOR's key pairs, the data keys of exactly the purposes of their roles;
    /// purposes this console does not hold stay pending until a holder signs in.
    Grant {
        /// The operator's username.
        operator: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Remove OPERATOR's grants and rotate every data key they held, re-encrypting all rows
    /// (those of purposes this console holds now; the rest when a holder runs `keys rotate`).
    Revoke {
        /// The operator's username.
        operator: String,
        /// Rows per transaction while re-encrypting.
        #[arg(long, default_value_t = 5_000)]
        chunk: usize,
        /// Print JSON progress events and the result instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Make a new version of PURPOSE's key and re-encrypt every row under it (resumes an
    /// interrupted rotation).
    Rotate {
        /// contact, network, blind_index or content_hash.
        purpose: String,
        /// Rows per transaction.
        #[arg(long, default_value_t = 5_000)]
        chunk: usize,
        /// Print JSON progress events (one per line) and the result instead of text.
        #[arg(long)]
        json: bool,
    },
    /// The purposes you hold and pending grants; for administrators also, per purpose: current
    /// version, versions in use with row counts, grants, rotation progress.
    Status(JsonFlag),
    /// Give up PURPOSE, which your roles do not hold (the first administrator's extra purposes,
    /// once a compliance officer holds them); its rotation starts.
    Relinquish {
        /// contact, network, blind_index or content_hash.
        purpose: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Re-seal every value an older version sealed under the retired `pii` key: emails and
    /// phones under `contact`, IP addresses under `network` (resumes where a killed run stopped).
    SplitPii {
        /// Rows per transaction.
        #[arg(long, default_value_t = 5_000)]
        chunk: usize,
        /// Print JSON progress events (one per line) and the result instead of text.
        #[arg(long)]
        json: bool,
    },
}

fn parse_purpose(purpose: &str) -> Result<Purpose> {
    Purpose::parse(purpose)
        .filter(|p| *p != Purpose::Pii)
        .ok_or_else(|| {
            anyhow!("unknown purpose {purpose:?}: contact, network, blind_index or content_hash")
        })
}

pub(crate) async fn run(command: Command, config: &Config) -> Result<ExitCode> {
    let Command::Keys(command) = command;
    keys_cmd(config, command).await
}

async fn keys_cmd(config: &Config, command: KeysCommand) -> Result<ExitCode> {
    let store = open(config).await?;
    match command {
        KeysCommand::Enrol(f) => enrol(config, &store, f).await?,
        KeysCommand::Grant { operator, json } => {
            let (actor, ring) = unlock(config, &store).await?;
            let report = keys::grant(&store, &ring, &actor, &operator).await?;
            if json {
                print_json(&report)?;
            } else {
                println!(
                    "granted: {} new wrapped keys for {operator}'s {} key pair(s): {}",
                    report.grants,
                    report.key_pairs.len(),
                    names(&report.granted)
                );
                if !report.pending.is_empty() {
                    println!(
                        "pending: {} (this console does not hold them; the next console or \
                         worker that does wraps them when it signs in)",
                        names(&report.pending)
                    );
                }
            }
        }
        KeysCommand::Revoke {
            operator,
            chunk,
            json,
        } => {
            let (actor, ring) = unlock(config, &store).await?;
            let rotations = keys::revoke(&store, &ring, &actor, &operator).await?;
            if !json {
                println!(
                    "revoked: {operator} holds no data keys; rotating the keys they held (those \
                     this console does not hold rotate when a holder signs in)"
                );
            }
            for r in rotations {
                run_rotation(&store, &ring, &actor, &r, chunk, json).await?;
            }
        }
        KeysCommand::Rotate {
            purpose,
            chunk,
            json,
        } => {
            let purpose = parse_purpose(&purpose)?;
            let (actor, ring) = unlock(config, &store).await?;
            let r = rotation::start(&store, &ring, &actor, purpose).await?;
            run_rotation(&store, &ring, &actor, &r, chunk, json).await?;
        }
        KeysCommand::Status(f) => status(config, &store, f).await?,
        KeysCommand::Relinquish { purpose, json } => {
            let purpose = parse_purpose(&purpose)?;
            let (actor, _) = sign_in(config, &store).await?;
            keys::relinquish(&store, &actor, purpose).await?;
            if json {
                print_json(&serde_json::json!({ "purpose": purpose, "rotation": "requested" }))?;
            } else {
                println!(
                    "relinquished: you hold no {purpose} key now; its rotation starts when \
                     another holder signs in"
                );
            }
        }
        KeysCommand::SplitPii { chunk, json } => split_pii(config, &store, chunk, json).await?,
    }
    Ok(ExitCode::SUCCESS)
}

async fn enrol(config: &Config, store: &Store, f: JsonFlag) -> Result<()> {
    // Sealing a key pair takes the password itself, never a session.
    let (session, password) = password_session(config, store, false, false).await?;
    let actor = session.actor;
    let keystore = config.keystore.open()?;
    let public = keys::enrol(store, keystore.as_ref(), &actor, &password, config.rsa_bits).await?;
    if f.json {
        print_json(&serde_json::json!({
            "fingerprint": public.fingerprint().to_hex(),
            "bits": public.bits(),
            "public_key_pem": public.to_pem(),
        }))?;
    } else {
        println!(
            "enrolled: {}-bit key pair {} in {}; ask an administrator to run \
             `vigil keys grant {}`",
            public.bits(),
            public.fingerprint(),
            keystore.describe(),
            actor.username()
        );
    }
    Ok(())
}

async fn status(config: &Config, store: &Store, f: JsonFlag) -> Result<()> {
    let (actor, _) = sign_in(config, store).await?;
    let holdings = keys::holdings(store, &actor).await?;
    let purposes = match keys::status(store, &actor).await {
        Ok(p) => Some(p),
        Err(vigil::keys::KeyError::Forbidden(_)) => None,
        Err(e) => return Err(e.into()),
    };
    let pii_rows_left = keys::split::remaining(store).await?;
    if f.json {
        let mut out = serde_json::to_value(&holdings)?;
        out["pii_rows_left"] = pii_rows_left.into();
        if let Some(p) = &purposes {
            out["purposes"] = serde_json::to_value(p)?;
        }
        print_json(&out)?;
    } else {
        print_key_status(&holdings, purposes.as_deref(), pii_rows_left);
    }
    Ok(())
}

async fn split_pii(config: &Config, store: &Store, chunk: usize, json: bool) -> Result<()> {
    let (actor, ring) = unlock(config, store).await?;
    let bar = progress_bar(json);
    bar.set_message("pii");
    let report = keys::split::run(store, &ring, &actor, chunk, &mut |p| {
        show_progress(json, &bar, &p, p.done, p.total);
    })
    .await;
    bar.finish_and_clear();
    let report = report?;
    if json {
        print_json_line("done", &report)?;
    } else {
        println!(
            "split pii: {} rows re-sealed under contact and network, {} unreadable, \
             retired {:?}",
            report.rows, report.unreadable, report.retired
        );
    }
    Ok(())
}

fn names(purposes: &[Purpose]) -> String {
    if purposes.is_empty() {
        return "none".into();
    }
    purposes
        .iter()
        .map(|p| p.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

fn print_key_status(
    holdings: &keys::Holdings,
    purposes: Option<&[keys::PurposeStatus]>,
    pii_rows_left: u64,
) {
    println!(
        "{} holds: {}",
        holdings.username,
        if holdings.held.is_empty() {
            "none".into()
        } else {
            holdings.held.join(", ")
        }
    );
    println!("roles hold: {}", names(&holdings.entitled));
    for p in &holdings.pending_grants {
        println!(
            "pending grant: {} for {} ({}), ordered by {} at {}",
            p.purpose,
            p.username,
            p.fingerprint,
            p.requested_by.as_deref().unwrap_or("-"),
            p.requested_at
        );
    }
    for p in &holdings.rotations_requested {
        println!("rotation asked for: {p} (starts when a console holding it signs in)");
    }
    if pii_rows_left > 0 {
        println!(
            "{pii_rows_left} rows are still sealed under the retired pii key: run `vigil keys \
             split-pii`"
        );
    }
    let Some(purposes) = purposes else {
        return;
    };
    println!(
        "{:<13} {:>7}  versions (status: rows, grants)",
        "purpose", "current"
    );
    for p in purposes {
        let versions: Vec<String> = p
            .versions
            .iter()
            .map(|v| {
                format!(
                    "v{} ({}: {} rows, {} grants)",
                    v.version, v.status, v.rows, v.grants
                )
            })
            .collect();
        println!(
            "{:<13} {:>7}  {}",
            p.purpose.to_string(),
            p.current
                .map(|c| format!("v{c}"))
                .unwrap_or_else(|| "-".into()),
            versions.join("; ")
        );
        if let Some(r) = &p.rotation {
            println!(
                "{:<13} rotating v{} -> v{}: {} rows done, {} left",
                "", r.from, r.to, r.rows_done, r.rows_left
            );
        }
    }
}

async fn run_rotation(
    store: &Store,
    ring: &KeyRing,
    actor: &Actor,
    r: &rotation::Rotation,
    chunk: usize,
    json: bool,
) -> Result<()> {
    let bar = progress_bar(json);
    bar.set_message(r.purpose.as_str());
    let report = rotation::run(store, ring, actor, r, chunk, &mut |p| {
        show_progress(json, &bar, &p, p.done, p.total);
    })
    .await;
    bar.finish_and_clear();
    let report = report?;
    if json {
        print_json_line("done", &report)?;
    } else {
        println!(
            "rotated {}: v{} now, {} rows re-encrypted, retired {:?}",
            report.purpose, report.version, report.rows, report.retired
        );
    }
    Ok(())
}
