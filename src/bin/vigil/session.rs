//! Your own sign-in: `vigil login`, `logout`, `passwd`, `whoami`, `notices`, `token`, `sessions`.

use std::process::ExitCode;

use anyhow::Result;
use clap::Subcommand;
use vigil::auth::cli_session;
use vigil::auth::tokens::{self, SessionLimits};
use vigil::auth::{self, users};
use vigil::config::Config;
use vigil::keys::keystore::SecretName;
use vigil::mfa;
use vigil::notices;
use vigil::store::Timestamp;

use crate::shared::*;

/// The keystore entry holding the command line's session refresh token.
const REFRESH_ENTRY: &str = "refresh-token";

#[derive(Subcommand)]
pub(crate) enum Command {
    /// Change your own password (re-seals your key pair on this machine).
    Passwd,
    /// Sign in once (password, second factor) and open a session for this shell: prints
    /// `export VIGIL_SESSION=...`; later commands with it need neither, until `vigil logout`,
    /// the idle timeout or the absolute lifetime ([auth]).
    Login,
    /// End this shell's session (VIGIL_SESSION), or with --all every session of yours.
    Logout {
        /// Every session of the signed-in operator, on every machine.
        #[arg(long)]
        all: bool,
    },
    /// Who you are signed in as: account, roles, MFA, this machine's key pair, and your notices.
    Whoami(JsonFlag),
    /// Notices of changes to your own account (password, MFA, backup codes, a sign-in from a new
    /// machine), shown until dismissed.
    Notices {
        /// Dismiss the notices listed.
        #[arg(long)]
        dismiss: bool,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Access tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Sessions: yours, or everyone's with --all (administrators).
    #[command(subcommand)]
    Sessions(SessionsCommand),
}

#[derive(Subcommand)]
pub(crate) enum TokenCommand {
    /// Open a session and print its access token (for scripts).
    Show,
    /// Read a token on stdin: exit 0 and its claims as JSON if valid, exit 1 and why if not.
    Verify,
}

#[derive(Subcommand)]
pub(crate) enum SessionsCommand {
    /// Unexpired sessions.
    List {
        /// Everyone's (administrators).
        #[arg(long)]
        all: bool,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a session by id.
    Revoke {
        /// The session id.
        #[arg(value_parser = vigil::cli_values::id)]
        id: String,
    },
}

pub(crate) async fn run(command: Command, config: &Config) -> Result<ExitCode> {
    match command {
        Command::Passwd => passwd(config).await,
        Command::Login => login(config).await,
        Command::Logout { all } => logout(config, all).await,
        Command::Whoami(f) => whoami(config, f.json).await,
        Command::Notices { dismiss, json } => notices_cmd(config, dismiss, json).await,
        Command::Token(TokenCommand::Show) => token_show(config).await,
        Command::Token(TokenCommand::Verify) => token_verify(config).await,
        Command::Sessions(c) => sessions_cmd(config, c).await,
    }
}

async fn passwd(config: &Config) -> Result<ExitCode> {
    let store = open(config).await?;
    let (session, current) = signed_in_session(config, &store, true, false).await?;
    let ring = session.keys.ok_or(vigil::keys::KeyError::NoKeyPairHere)?;
    let actor = session.actor;
    let new = new_password("New password: ")?;
    let keystore = config.keystore.open()?;
    // This command's own sign-in opened no session, so every session of the operator
    // ends, including one `vigil login` keeps on this machine.
    let changed = auth::change_password(
        &store,
        keystore.as_ref(),
        &actor,
        &ring,
        None,
        &current,
        &new,
    )
    .await?;
    println!(
        "password changed; your key pair on this machine is sealed with it; {} session(s) \
             signed in with the old password ended",
        changed.sessions_ended
    );
    Ok(ExitCode::SUCCESS)
}

async fn login(config: &Config) -> Result<ExitCode> {
    let store = open(config).await?;
    // Always with the password (and second factor): never from another session.
    let (session, _) = password_session(config, &store, false, false).await?;
    let ring = session
        .keys
        .as_ref()
        .ok_or(vigil::keys::KeyError::NoKeyPairHere)?;
    let limits = SessionLimits::from_config(&config.auth);
    let now = Timestamp::now();
    let pair = tokens::issue_limited_at(&store, ring, &session.actor, "cli", limits, now).await?;
    let ends = Timestamp::from_micros(now.micros() + limits.absolute_lifetime_secs * 1_000_000);
    let keystore = config.keystore.open()?;
    let database_password = remembered_database_password(config, keystore.as_ref());
    let key = cli_session::begin(
        keystore.as_ref(),
        &session,
        &pair,
        ends,
        database_password.as_deref().map(|p| p.as_str()),
    )?;
    println!("export VIGIL_SESSION={}", key.reveal().as_str());
    eprintln!(
        "signed in as {}; session {} ends after {} min without use, and at {} UTC at the \
             latest (kept sealed in {}). Run the line above in this shell, e.g. \
             eval \"$(vigil login)\"; `vigil logout` ends it.",
        session.actor.username(),
        pair.session_id,
        limits.idle_timeout_secs / 60,
        ends.to_datetime().format("%Y-%m-%d %H:%M"),
        keystore.describe()
    );
    // On standard error: standard output carries only the line for `eval`.
    for line in notice_lines(&notices::pending(&store, &session.actor).await?) {
        eprintln!("{line}");
    }
    Ok(ExitCode::SUCCESS)
}

async fn logout(config: &Config, all: bool) -> Result<ExitCode> {
    if let Some(mut record) = cli_record(config)? {
        let store = open(config).await?;
        let keystore = config.keystore.open()?;
        if all {
            let session = record.resume(&store, keystore.as_ref()).await?;
            let n = tokens::logout_everywhere(&store, session.actor.user_id()).await?;
            println!("ended {n} session(s) of {}", session.actor.username());
        }
        let id = record.session_id();
        record.end(&store, keystore.as_ref()).await?;
        println!("signed out; session {id} ended (unset VIGIL_SESSION)");
        return Ok(ExitCode::SUCCESS);
    }
    let store = open(config).await?;
    let (actor, _) = enrolment_session(config, &store)
        .await
        .map(|(s, pw)| (s.actor, pw))?;
    if all {
        let n = tokens::logout_everywhere(&store, actor.user_id()).await?;
        println!("ended {n} session(s) of {}", actor.username());
    } else {
        // A refresh token kept by an earlier version's `vigil login`.
        let keystore = config.keystore.open()?;
        let entry = SecretName::parse(REFRESH_ENTRY)?;
        match keystore.get(actor.user_id().as_uuid(), &entry)? {
            Some(token) => {
                let token = String::from_utf8_lossy(token.expose()).into_owned();
                tokens::logout_refresh(&store, &token).await?;
                keystore.delete(actor.user_id().as_uuid(), &entry)?;
                println!("signed out");
            }
            None => println!(
                "no session is kept on this machine for this shell (VIGIL_SESSION is \
                     not set); `vigil logout --all` ends every session"
            ),
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn whoami(config: &Config, json: bool) -> Result<ExitCode> {
    let store = open(config).await?;
    let (session, _) = enrolment_session(config, &store).await?;
    let a = &session.actor;
    let info = serde_json::json!({
        "user_id": a.user_id().to_string(),
        "username": a.username().as_str(),
        "roles": a.roles().iter().map(|r| r.as_str()).collect::<Vec<_>>(),
        "mfa_enabled": mfa::is_enabled(&store, a.user_id()).await?,
        "key_pair": session.keys.as_ref().map(|k| k.public_key().fingerprint().to_hex()),
        "must_change_password": session.must_change_password,
        "must_enrol_mfa": a.must_enrol_mfa(),
        "notices": notices::pending(&store, a).await?,
    });
    if json {
        print_json(&info)?;
    } else {
        println!("{} ({})", a.username(), a.user_id());
        println!("roles:     {}", info["roles"]);
        println!(
            "mfa:       {}",
            if info["mfa_enabled"] == true {
                "on"
            } else if a.must_enrol_mfa() {
                "off: required for your role; run `vigil mfa enroll` before anything else"
            } else {
                "off"
            }
        );
        println!(
            "key pair:  {}",
            info["key_pair"].as_str().unwrap_or("none on this machine")
        );
        print_notices(&notices::pending(&store, a).await?);
    }
    Ok(ExitCode::SUCCESS)
}

async fn notices_cmd(config: &Config, dismiss: bool, json: bool) -> Result<ExitCode> {
    let store = open(config).await?;
    let (session, _) = enrolment_session(config, &store).await?;
    let pending = notices::pending(&store, &session.actor).await?;
    if dismiss {
        for n in &pending {
            notices::dismiss(&store, &session.actor, Some(&n.id)).await?;
        }
    }
    if json {
        print_json(&pending)?;
    } else if pending.is_empty() {
        println!("no notices");
    } else {
        print_notices(&pending);
        if dismiss {
            println!("dismissed {}", pending.len());
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn token_show(config: &Config) -> Result<ExitCode> {
    let store = open(config).await?;
    // With VIGIL_SESSION: that session's token (verified, or refreshed).
    if let Some(mut record) = cli_record(config)? {
        let keystore = config.keystore.open()?;
        record.resume(&store, keystore.as_ref()).await?;
        println!("{}", record.access_token());
        return Ok(ExitCode::SUCCESS);
    }
    let (session, _) = session(config, &store).await?;
    let ring = session
        .keys
        .as_ref()
        .ok_or(vigil::keys::KeyError::NoKeyPairHere)?;
    let pair = tokens::issue(&store, ring, &session, "cli-token").await?;
    println!("{}", pair.access_token);
    Ok(ExitCode::SUCCESS)
}

async fn token_verify(config: &Config) -> Result<ExitCode> {
    // Verification needs no keys and no sign-in: the public keys are in the database.
    let store = open(config).await?;
    let mut token = String::new();
    std::io::Read::read_to_string(
        &mut std::io::Read::take(std::io::stdin(), tokens::MAX_TOKEN_LEN as u64 + 2),
        &mut token,
    )?;
    match tokens::verify_access_token(&store, &token).await {
        Ok(claims) => {
            print_json(&claims)?;
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("invalid: {e}");
            Ok(ExitCode::from(1))
        }
    }
}

async fn sessions_cmd(config: &Config, command: SessionsCommand) -> Result<ExitCode> {
    let store = open(config).await?;
    let (actor, _) = sign_in(config, &store).await?;
    match command {
        SessionsCommand::List { all, json } => {
            let list = users::sessions(&store, &actor, all).await?;
            if json {
                print_json(&list)?;
            } else {
                for s in &list {
                    println!(
                        "{}  {:<20} {:<10} opened {}  {}",
                        s.id,
                        s.username,
                        s.client,
                        s.created_at,
                        s.revoked_at
                            .as_deref()
                            .map(|r| format!("revoked {r}"))
                            .unwrap_or_else(|| format!("until {}", s.expires_at))
                    );
                }
            }
        }
        SessionsCommand::Revoke { id } => {
            users::revoke_session(&store, &actor, &id).await?;
            println!("revoked session {id}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The operator's notices, newest first, with how to dismiss them.
fn print_notices(pending: &[notices::Notice]) {
    for line in notice_lines(pending) {
        println!("{line}");
    }
}

/// The notices as printed: a heading and one line each (nothing when there are none).
fn notice_lines(pending: &[notices::Notice]) -> Vec<String> {
    let mut lines = Vec::new();
    if pending.is_empty() {
        return lines;
    }
    lines.push(format!(
        "notices ({}; `vigil notices --dismiss` marks them read):",
        pending.len()
    ));
    for n in pending {
        let mut line = format!("  {}  {}", n.created_at, n.message);
        if let Some(by) = &n.by {
            line.push_str(&format!(" (by {by})"));
        }
        if let Some(client) = &n.client {
            line.push_str(&format!(" (client: {client})"));
        }
        lines.push(line);
    }
    lines
}
