//! `vigil mfa`: your second factor: TOTP enrolment with a QR code, backup codes.

use std::io::IsTerminal;
use std::process::ExitCode;

use anyhow::{anyhow, Result};
use clap::Subcommand;
use vigil::config::Config;
use vigil::mfa;

use crate::shared::*;

#[derive(Subcommand)]
pub(crate) enum Command {
    /// Your second factor: TOTP enrolment with a QR code, backup codes.
    #[command(subcommand)]
    Mfa(MfaCommand),
}

#[derive(Subcommand)]
pub(crate) enum MfaCommand {
    /// Start TOTP enrolment: prints the otpauth URI and a QR code to scan (on a terminal).
    Enroll {
        /// Also write the QR code as a PNG file: made new, readable by you alone (0600); an
        /// existing file or a symbolic link there is refused, never overwritten or followed.
        #[arg(long, value_name = "FILE")]
        qr_png: Option<std::path::PathBuf>,
        /// Print JSON (URI, secret, SVG) instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Confirm enrolment with a current code; prints ten backup codes, once.
    Confirm {
        /// The 6-digit code from the authenticator app. Leave it out on a terminal to be asked
        /// for it without echo, or give `-` to read one line from standard input: given here, it
        /// is visible to other local users in the process list while the command runs.
        code: Option<String>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Backup codes.
    BackupCodes {
        /// Replace all backup codes with ten new ones (printed once).
        #[arg(long, required = true)]
        regenerate: bool,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

pub(crate) async fn run(command: Command, config: &Config) -> Result<ExitCode> {
    let Command::Mfa(command) = command;
    mfa_cmd(config, command).await
}

async fn mfa_cmd(config: &Config, command: MfaCommand) -> Result<ExitCode> {
    let store = open(config).await?;
    let (session, _) = enrolment_session(config, &store).await?;
    let actor = session.actor;
    // The TOTP secret is sealed with the credential key this sign-in's password opened.
    let credential = || {
        session.credential.as_ref().ok_or_else(|| {
            anyhow!("this sign-in holds no credential key of yours: run `vigil passwd` first")
        })
    };
    match command {
        MfaCommand::Enroll { qr_png, json } => {
            let e = mfa::enroll(&store, credential()?, &actor).await?;
            if let Some(path) = &qr_png {
                write_private_file(path, &e.qr_png)?;
            }
            if json {
                print_json(&e)?;
            } else {
                if std::io::stdout().is_terminal() {
                    println!("{}", e.qr_text);
                }
                println!("Scan the QR code with an authenticator app, or add this URI:");
                println!("  {}", e.uri);
                println!("Then run `vigil mfa confirm CODE` with the code it shows.");
            }
        }
        MfaCommand::Confirm { code, json } => {
            let code = sensitive_value(code, "authenticator code")?;
            let codes = mfa::confirm(&store, credential()?, &actor, &code).await?;
            if !json {
                println!("MFA is on for {}.", actor.username());
                if actor.must_enrol_mfa() {
                    println!("Your next sign-in asks for a code; everything is open to it.");
                }
            }
            print_codes(&codes, json)?;
        }
        MfaCommand::BackupCodes { json, .. } => {
            let codes = mfa::regenerate_backup_codes(&store, &actor).await?;
            print_codes(&codes, json)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn print_codes(codes: &[String], json: bool) -> Result<()> {
    if json {
        print_json(&serde_json::json!({ "backup_codes": codes }))?;
    } else {
        println!("Backup codes (each works once; store them offline, they are not shown again):");
        for c in codes {
            println!("  {c}");
        }
    }
    Ok(())
}
