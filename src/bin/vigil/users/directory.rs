//! `vigil directory`: the accounts of every kind, filtered and paged as on the desktop's Users
//! screen; an email is looked up through the blind index and read from standard input.

use std::process::ExitCode;

use anyhow::{bail, Result};
use clap::Args;
use vigil::auth::users::{self, AccountKind, AccountStatus, DirectoryQuery, DirectorySearch};
use vigil::config::Config;

use super::{ROLES, STATUSES};
use crate::shared::*;
use vigil::cli_values::one_of;
use vigil::rbac::Role;

#[derive(Args)]
pub(crate) struct DirectoryArgs {
    /// Which accounts: operator, platform or all (service accounts too).
    #[arg(long, default_value = "all", value_parser = ["operator", "platform", "all"])]
    kind: String,
    /// Usernames starting with this text (case-insensitive).
    #[arg(long, value_name = "PREFIX", conflicts_with = "email")]
    search: Option<String>,
    /// The one account with this email, found through the blind index (the lookup is recorded
    /// in the audit log as a read of personal data, never the address). `-` reads it from
    /// standard input, or asks for it without echo on a terminal: given here, it is visible to
    /// other local users in the process list while the command runs.
    #[arg(long)]
    email: Option<String>,
    /// Only accounts holding this role.
    #[arg(long, value_name = "R", value_parser = one_of(Role::parse, ROLES))]
    role: Option<Role>,
    /// Only this status: active, suspended, locked, deleted.
    #[arg(long, value_name = "S", value_parser = one_of(AccountStatus::parse, STATUSES))]
    status: Option<AccountStatus>,
    /// Only with MFA on or off.
    #[arg(long, value_parser = ["on", "off"])]
    mfa: Option<String>,
    /// Page size (1 to 500).
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=500))]
    limit: u32,
    /// Accounts to skip.
    #[arg(long, default_value_t = 0)]
    offset: u32,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

/// One account as listed: no personal data.
#[derive(serde::Serialize)]
struct Row<'a> {
    username: &'a str,
    kind: &'a str,
    roles: &'a [String],
    status: &'a str,
    mfa: bool,
}

pub(super) async fn run(config: &Config, a: DirectoryArgs) -> Result<ExitCode> {
    let search = match (&a.search, a.email) {
        (Some(prefix), _) => Some(prefix_search(prefix)?),
        (None, Some(email)) => {
            let email = sensitive_value(Some(email), "email to look up")?;
            if !email.contains('@') {
                bail!("that is not an email address; nothing was looked up");
            }
            Some(DirectorySearch::Email(email.to_string()))
        }
        (None, None) => None,
    };
    let query = DirectoryQuery {
        kind: match a.kind.as_str() {
            "all" => None,
            k => AccountKind::parse(k),
        },
        role: a.role,
        status: a.status,
        mfa: a.mfa.map(|m| m == "on"),
        search,
        ..DirectoryQuery::default()
    };
    let store = open(config).await?;
    // An email search opens the blind-index key: the session's key ring, if this machine has one.
    let (session, _) = session(config, &store).await?;
    let page = users::directory_range(
        &store,
        &session.actor,
        session.keys.as_ref(),
        &query,
        a.limit,
        u64::from(a.offset),
    )
    .await?;
    let rows: Vec<Row> = page
        .rows
        .iter()
        .map(|e| Row {
            username: &e.username,
            kind: &e.kind,
            roles: &e.roles,
            status: &e.status,
            mfa: e.mfa_enabled,
        })
        .collect();
    if a.json {
        print_json(&serde_json::json!({
            "total": page.total,
            "offset": a.offset,
            "limit": a.limit,
            "rows": rows,
        }))?;
    } else {
        print_rows(&rows, page.total, a.offset);
    }
    Ok(ExitCode::SUCCESS)
}

/// A username prefix; an email belongs in `--email`, which keeps it out of the process list.
fn prefix_search(prefix: &str) -> Result<DirectorySearch> {
    let prefix = prefix.trim();
    if prefix.contains('@') {
        bail!(
            "--search takes the start of a username; look an email up with `--email -` (read \
             from standard input); nothing was looked up"
        );
    }
    if prefix.is_empty() {
        bail!("--search is empty: give the start of a username");
    }
    Ok(DirectorySearch::UsernamePrefix(prefix.to_lowercase()))
}

fn print_rows(rows: &[Row], total: u64, offset: u32) {
    println!(
        "{:<24} {:<9} {:<10} {:<3}  roles",
        "username", "kind", "status", "mfa"
    );
    for r in rows {
        println!(
            "{:<24} {:<9} {:<10} {:<3}  {}",
            terminal_safe(r.username),
            r.kind,
            r.status,
            if r.mfa { "on" } else { "off" },
            if r.roles.is_empty() {
                "-".to_owned()
            } else {
                r.roles.join(",")
            }
        );
    }
    if offset > 0 {
        println!(
            "{} of {total} accounts, after the first {offset}",
            rows.len()
        );
    } else {
        println!("{} of {total} accounts", rows.len());
    }
}
