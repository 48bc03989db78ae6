//! `vigil user`: operator accounts (administrators); `vigil directory`: every account, as the
//! desktop's Users screen lists them.

mod directory;

use std::process::ExitCode;

use anyhow::Result;
use clap::Subcommand;
use vigil::auth::users::AccountStatus;
use vigil::auth::{self, users, Actor};
use vigil::cli_values::one_of;
use vigil::config::Config;
use vigil::mfa;
use vigil::rbac::Role;
use vigil::store::Store;

use crate::shared::*;

#[derive(Subcommand)]
pub(crate) enum Command {
    /// Operator accounts (administrators): unlock, reset a password or MFA.
    #[command(subcommand)]
    User(UserCommand),
    /// Every account the desktop's Users screen lists (platform users, operators, service
    /// accounts), by username, one page at a time: username, kind, roles, status, MFA.
    Directory(directory::DirectoryArgs),
}

#[derive(Subcommand)]
pub(crate) enum UserCommand {
    /// Create an operator with a temporary password (from VIGIL_NEW_PASSWORD, or generated and
    /// printed once) that must be changed at the first sign-in.
    Create {
        /// The new operator's username.
        username: String,
        /// A role (repeat for several): user, moderator, compliance_officer, admin, service.
        #[arg(long = "role", value_name = "ROLE", value_parser = one_of(Role::parse, ROLES))]
        roles: Vec<Role>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Team mode (Postgres): give an existing operator their own database login, or a new
    /// password for it; the database user and password are printed once.
    DbLogin {
        /// The operator's username.
        username: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Operator accounts, by username, one page at a time.
    List {
        /// Only this role.
        #[arg(long, value_parser = one_of(Role::parse, ROLES))]
        role: Option<Role>,
        /// Only this status: active, suspended, locked, deleted.
        #[arg(long, value_parser = one_of(AccountStatus::parse, STATUSES))]
        status: Option<AccountStatus>,
        /// Only with MFA on or off.
        #[arg(long, value_parser = ["on", "off"])]
        mfa: Option<String>,
        /// Page size.
        #[arg(long, default_value_t = 50)]
        limit: u32,
        /// Accounts to skip.
        #[arg(long, default_value_t = 0)]
        offset: u32,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// One operator account.
    Show {
        /// The operator's username.
        username: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Replace an operator's roles (effective at their next token verification).
    SetRole {
        /// The operator's username.
        username: String,
        /// A role (repeat for several).
        #[arg(long = "role", value_name = "ROLE", required = true,
              value_parser = one_of(Role::parse, ROLES))]
        roles: Vec<Role>,
    },
    /// Suspend an operator: sign-in refused, every session ended.
    Suspend {
        /// The operator's username.
        username: String,
    },
    /// Reinstate a suspended operator.
    Unsuspend {
        /// The operator's username.
        username: String,
    },
    /// Clear an operator's lockout and failed attempts.
    Unlock {
        /// The operator's username.
        username: String,
    },
    /// Set a temporary password (from VIGIL_NEW_PASSWORD, or generated and printed once); the
    /// operator must change it, and enrols a new key pair.
    ResetPassword {
        /// The operator's username.
        username: String,
    },
    /// Turn an operator's MFA off (lost device); they enrol again.
    ResetMfa {
        /// The operator's username.
        username: String,
    },
}

pub(crate) async fn run(command: Command, config: &Config) -> Result<ExitCode> {
    match command {
        Command::User(command) => user_cmd(config, command).await,
        Command::Directory(args) => directory::run(config, args).await,
    }
}

async fn user_cmd(config: &Config, command: UserCommand) -> Result<ExitCode> {
    let store = open(config).await?;
    let (actor, _) = sign_in(config, &store).await?;
    match command {
        UserCommand::Create {
            username,
            roles,
            json,
        } => create(&store, &actor, &username, &roles, json).await?,
        UserCommand::DbLogin { username, json } => {
            db_login(&store, &actor, &username, json).await?
        }
        UserCommand::List {
            role,
            status,
            mfa,
            limit,
            offset,
            json,
        } => {
            let filter = users::AccountFilter {
                role,
                status: status.map(|s| s.as_str().to_owned()),
                mfa: mfa.map(|m| m == "on"),
                limit: Some(limit),
                offset: Some(offset),
            };
            let list = users::list(&store, &actor, &filter).await?;
            if json {
                print_json(&list)?;
            } else {
                list.iter().for_each(print_account);
            }
        }
        UserCommand::Show { username, json } => {
            let a = users::show(&store, &actor, &username).await?;
            if json {
                print_json(&a)?;
            } else {
                print_account(&a);
            }
        }
        UserCommand::SetRole { username, roles } => {
            users::set_roles(&store, &actor, &username, &roles).await?;
            println!("{username}: roles set");
        }
        UserCommand::Suspend { username } => {
            users::set_suspended(&store, &actor, &username, true).await?;
            println!("suspended {username}; their sessions ended");
        }
        UserCommand::Unsuspend { username } => {
            users::set_suspended(&store, &actor, &username, false).await?;
            println!("reinstated {username}");
        }
        UserCommand::Unlock { username } => {
            auth::unlock_account(&store, &actor, &username).await?;
            println!("unlocked {username}");
        }
        UserCommand::ResetPassword { username } => {
            reset_password(&store, &actor, &username).await?
        }
        UserCommand::ResetMfa { username } => {
            let ended = mfa::reset(&store, &actor, &username).await?;
            println!("MFA is off for {username}; {ended} session(s) ended; they must enrol again");
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn create(
    store: &Store,
    actor: &Actor,
    username: &str,
    roles: &[Role],
    json: bool,
) -> Result<()> {
    let (temporary, shown) = match std::env::var("VIGIL_NEW_PASSWORD") {
        Ok(p) => (p, false),
        Err(_) => (auth::random_password(20), true),
    };
    let (id, login) =
        users::create_with_database_login(store, actor, username, &temporary, roles).await?;
    if json {
        print_json(&serde_json::json!({
            "id": id.to_string(),
            "username": username,
            "temporary_password": shown.then_some(&temporary),
            "database_user": login.as_ref().map(|l| &l.user),
            "database_password": login.as_ref().map(|l| l.password()),
        }))?;
    } else {
        println!("created {username} ({id})");
        if shown {
            println!(
                "temporary password (shown once; must be changed at first sign-in): {temporary}"
            );
        }
        if let Some(login) = &login {
            print_database_login(store, login);
        }
    }
    Ok(())
}

async fn db_login(store: &Store, actor: &Actor, username: &str, json: bool) -> Result<()> {
    let login = users::database_login(store, actor, username).await?;
    if json {
        print_json(&serde_json::json!({
            "username": username,
            "database_user": login.user,
            "database_password": login.password(),
        }))?;
    } else {
        println!("database login for {username}:");
        print_database_login(store, &login);
    }
    Ok(())
}

async fn reset_password(store: &Store, actor: &Actor, username: &str) -> Result<()> {
    let (temporary, shown) = match std::env::var("VIGIL_NEW_PASSWORD") {
        Ok(p) => (p, false),
        Err(_) => (auth::random_password(20), true),
    };
    let report = auth::reset_password(store, actor, username, &temporary).await?;
    if shown {
        println!("temporary password for {username} (shown once): {temporary}");
    }
    println!(
        "{username} must change it at the next sign-in; {} session(s) ended; {} key \
         pair(s) retired: they sign in on their machine (which makes a new one), then an \
         administrator runs `vigil keys grant {username}`",
        report.sessions_ended, report.key_pairs_retired
    );
    if report.mfa_removed {
        println!(
            "MFA was removed: their TOTP secret opened only with the old password; \
             they enrol again (`vigil mfa enroll`) after choosing their new password"
        );
    }
    Ok(())
}

pub(super) const ROLES: &str = "user, moderator, compliance_officer, admin or service";
pub(super) const STATUSES: &str = "active, suspended, locked or deleted";

fn print_account(a: &users::Account) {
    println!(
        "{:<24} {:<10} {:<32} mfa {:<3} {}",
        a.username,
        a.status,
        a.roles.join(","),
        if a.mfa_enabled { "on" } else { "off" },
        a.last_login_at.as_deref().unwrap_or("never signed in")
    );
}

/// Prints a new database login once, and how the operator connects with it.
pub(crate) fn print_database_login(store: &Store, login: &users::DatabaseLogin) {
    println!("database user: {}", login.user);
    println!(
        "database password (shown once; give it to the operator only): {}",
        login.password()
    );
    println!(
        "the operator connects to {} as postgres://{}:PASSWORD@host/db, keeping the password \
         in their keystore with `vigil keystore set-database-password`",
        store.describe(),
        login.user
    );
}
