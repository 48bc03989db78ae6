//! `vigil mail …`: the SMTP password in the keystore, and a test message.

use std::process::ExitCode;

use anyhow::Result;
use clap::Subcommand;
use vigil::config::Config;
use vigil::mail::{self, Mailer};

use crate::shared::{print_json, sensitive_value};

#[derive(Subcommand)]
pub(crate) enum Command {
    /// Mail settings: the SMTP password in the keystore, a test message.
    #[command(subcommand)]
    Mail(MailCommand),
}

pub(crate) async fn run(command: Command, config: &Config) -> Result<ExitCode> {
    match command {
        Command::Mail(c) => mail_cmd(config, c).await,
    }
}

#[derive(Subcommand)]
pub(crate) enum MailCommand {
    /// Store the SMTP password in this machine's keystore (never in the configuration file).
    /// Read from a terminal without echo, or as one line of standard input.
    SetPassword {
        /// Remove the stored password instead.
        #[arg(long)]
        clear: bool,
    },
    /// Send one test message to ADDRESS and print what the server answered.
    Test {
        /// Where to send it.
        address: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

/// A mailer from the configuration and the stored password.
pub(crate) fn mailer(config: &Config) -> Result<Mailer> {
    let keystore = config.keystore.open()?;
    let password = mail::password(keystore.as_ref())?;
    Ok(Mailer::new(
        &config.mail,
        password.as_deref().map(|p| p.as_str()),
    )?)
}

pub(crate) async fn mail_cmd(config: &Config, command: MailCommand) -> Result<ExitCode> {
    match command {
        MailCommand::SetPassword { clear } => {
            let keystore = config.keystore.open()?;
            if clear {
                if mail::clear_password(keystore.as_ref())? {
                    println!("SMTP password removed from {}", keystore.describe());
                } else {
                    println!("no SMTP password was stored");
                }
            } else {
                let password = sensitive_value(Some("-".into()), "SMTP password")?;
                mail::set_password(keystore.as_ref(), &password)?;
                println!("SMTP password stored in {}", keystore.describe());
            }
        }
        MailCommand::Test { address, json } => {
            let reply = mailer(config)?.send_test(&address).await?;
            if json {
                print_json(&reply)?;
            } else {
                println!("the server answered: {} {}", reply.code, reply.message);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
