//! `vigil dsr`: data-subject requests (GDPR access, portability, erasure, rectification).

use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Subcommand;
use vigil::auth::platform_tokens::PlatformTokenKeys;
use vigil::cli_values::one_of;
use vigil::config::Config;
use vigil::privacy::{self, RequestFilter, RequestKind, RequestStatus, SubjectRef};
use vigil::store::{Store, Timestamp};

use crate::shared::*;

#[derive(Subcommand)]
pub(crate) enum DsrCommand {
    /// Record a request and issue the one-time verification code: mailed to the subject, or shown
    /// once for a paper request (`--deliver manual`).
    New {
        /// access, portability, erasure or rectification.
        #[arg(long = "type", value_name = "T", value_parser = one_of(RequestKind::parse, KINDS))]
        kind: RequestKind,
        /// The subject's username.
        #[arg(long, conflicts_with = "email")]
        user: Option<String>,
        /// The subject's email (found through the blind index; not stored with the request).
        /// `-` reads it from standard input, and with neither --user nor --email a terminal
        /// asks for it without echo: given here, it is visible to other local users in the
        /// process list while the command runs.
        #[arg(long)]
        email: Option<String>,
        /// The day the request was received, if earlier than today (YYYY-MM-DD).
        #[arg(long, value_name = "DATE", value_parser = vigil::cli_values::past_date)]
        received: Option<chrono::NaiveDate>,
        /// How the code reaches the subject: `mail` (queued to their registered address; never
        /// shown here) or `manual` (a paper request from a subject with no usable address: the
        /// code is shown once, and another officer must enter it).
        #[arg(long, value_name = "HOW", default_value = "mail",
              value_parser = one_of(privacy::CodeDelivery::parse, "mail or manual"))]
        deliver: privacy::CodeDelivery,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Verify the subject's identity with the code they received, or with their access token
    /// read from stdin (--token).
    Verify {
        /// The request id.
        #[arg(value_parser = one_of(privacy::RequestId::parse, REQUEST_ID))]
        id: privacy::RequestId,
        /// The code the subject received. `-` reads it from standard input, and leaving it out
        /// on a terminal asks for it without echo: given here, it is visible to other local users
        /// in the process list while the command runs.
        #[arg(long)]
        code: Option<String>,
        /// Read the subject's access token from stdin instead.
        #[arg(long, conflicts_with = "code")]
        token: bool,
    },
    /// Issue a new verification code (after expiry or too many wrong codes).
    Code {
        /// The request id.
        #[arg(value_parser = one_of(privacy::RequestId::parse, REQUEST_ID))]
        id: privacy::RequestId,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Requests, the most urgent first.
    List {
        /// Only this status.
        #[arg(long, value_parser = one_of(RequestStatus::parse, STATUSES))]
        status: Option<RequestStatus>,
        /// Only this type.
        #[arg(long = "type", value_name = "T", value_parser = one_of(RequestKind::parse, KINDS))]
        kind: Option<RequestKind>,
        /// Only open requests past their deadline.
        #[arg(long)]
        overdue: bool,
        /// Only open requests due within 7 days.
        #[arg(long)]
        due_soon: bool,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// One request with its steps, files and timeline.
    Show {
        /// The request id.
        #[arg(value_parser = one_of(privacy::RequestId::parse, REQUEST_ID))]
        id: privacy::RequestId,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Run a verified request: write the export, erase (resuming a stopped erasure), or apply
    /// corrections.
    Run {
        /// The request id.
        #[arg(value_parser = one_of(privacy::RequestId::parse, REQUEST_ID))]
        id: privacy::RequestId,
        /// Folder for the export files (access, portability); default: the current folder.
        #[arg(long, value_name = "DIR")]
        out: Option<std::path::PathBuf>,
        /// What an erasure does with the subject's comments: anonymise or delete.
        #[arg(long, default_value = "anonymise",
              value_parser = one_of(privacy::CommentPolicy::parse, "anonymise or delete"))]
        comments: privacy::CommentPolicy,
        /// A correction for a rectification: display_name=..., email=... or phone=... (repeat).
        /// `email=-` or `phone=-` reads the value from standard input (or asks without echo on a
        /// terminal): given here, it is visible to other local users in the process list.
        #[arg(long = "set", value_name = "FIELD=VALUE")]
        set: Vec<String>,
        /// Print JSON progress lines and the outcome instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Extend the deadline once by 1 or 2 months, with a reason.
    Extend {
        /// The request id.
        #[arg(value_parser = one_of(privacy::RequestId::parse, REQUEST_ID))]
        id: privacy::RequestId,
        /// Months: 1 or 2.
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..=2))]
        months: u32,
        /// Why.
        #[arg(long)]
        reason: String,
    },
    /// Reject a request, with a reason.
    Reject {
        /// The request id.
        #[arg(value_parser = one_of(privacy::RequestId::parse, REQUEST_ID))]
        id: privacy::RequestId,
        /// Why.
        #[arg(long)]
        reason: String,
    },
    /// Record that the subject withdrew the request.
    Withdraw {
        /// The request id.
        #[arg(value_parser = one_of(privacy::RequestId::parse, REQUEST_ID))]
        id: privacy::RequestId,
        /// Why (as the subject said).
        #[arg(long)]
        reason: String,
    },
    /// Scan the whole database for an account's identifiers (read-only; prints where, never
    /// what).
    Scan {
        /// The account's username.
        #[arg(long)]
        user: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

const KINDS: &str = "access, portability, erasure or rectification";
const STATUSES: &str =
    "received, verifying, verified, in_progress, completed, rejected or withdrawn";
const REQUEST_ID: &str = "a request id (a UUID such as 0193a0c4-...)";

fn print_request(r: &privacy::Request) {
    let flag = if r.overdue {
        "  OVERDUE"
    } else if r.due_soon {
        "  due soon"
    } else {
        ""
    };
    println!("id:        {}", r.id);
    println!("type:      {}", r.kind.as_str());
    println!("status:    {}", r.status.as_str());
    println!(
        "subject:   {}",
        r.subject_username.as_deref().unwrap_or("(account erased)")
    );
    println!("received:  {}", r.received_at);
    println!("due:       {}{flag}", r.due_at);
    if let Some(reason) = &r.extension_reason {
        println!("extended:  from {} ({reason})", r.original_due_at);
    }
    if r.verification_locked {
        println!("verification: locked after too many wrong codes; issue a new code");
    } else if r.status == privacy::RequestStatus::Verifying {
        println!(
            "verification: code issued, {} attempts left",
            r.code_attempts_left
        );
    }
    if let Some(reason) = &r.closing_reason {
        println!("reason:    {reason}");
    }
}

pub(crate) async fn run(config: &Config, command: DsrCommand) -> Result<ExitCode> {
    let store = open(config).await?;
    match command {
        DsrCommand::New {
            kind,
            user,
            email,
            received,
            deliver,
            json,
        } => new_request(config, &store, kind, user, email, received, deliver, json).await?,
        DsrCommand::Verify { id, code, token } => {
            let request = if token {
                // The platform signs its users' tokens; only its public keys are configured here.
                let platform = PlatformTokenKeys::load(&config.platform)?;
                let (actor, _) = sign_in(config, &store).await?;
                let mut t = String::new();
                std::io::Read::read_to_string(&mut std::io::stdin(), &mut t)?;
                privacy::verify_token(&store, &platform, &actor, id, t.trim()).await?
            } else {
                let code = sensitive_value(code, "verification code")
                    .context("give --code (`-` for standard input) or --token")?;
                let (actor, _) = sign_in(config, &store).await?;
                privacy::verify_code(&store, &actor, id, &code).await?
            };
            println!("verified: request {} may run", request.id);
        }
        // A mailed request's new code is queued, never shown; a manual one's is shown once.
        DsrCommand::Code { id, json } => {
            let (actor, ring) = unlock(config, &store).await?;
            let code = privacy::reissue_code(&store, Some(&ring), &actor, id).await?;
            match (code, json) {
                (Some(code), true) => {
                    print_json(&serde_json::json!({ "verification_code": code.as_str() }))?
                }
                (Some(code), false) => println!(
                    "new verification code (shown once; another officer must enter it): {}",
                    code.as_str()
                ),
                (None, true) => print_json(&serde_json::json!({ "queued": true }))?,
                (None, false) => {
                    println!("new verification code queued by mail to the subject's address")
                }
            }
        }
        DsrCommand::List {
            status,
            kind,
            overdue,
            due_soon,
            json,
        } => list(config, &store, status, kind, overdue, due_soon, json).await?,
        DsrCommand::Show { id, json } => show(config, &store, id, json).await?,
        DsrCommand::Run {
            id,
            out,
            comments,
            set,
            json,
        } => return super::run::run_request(config, &store, id, out, comments, set, json).await,
        DsrCommand::Extend { id, months, reason } => {
            let (actor, _) = sign_in(config, &store).await?;
            let r = privacy::extend(&store, &actor, id, months, &reason).await?;
            println!("due {} (extended)", r.due_at);
        }
        DsrCommand::Reject { id, reason } => {
            let (actor, _) = sign_in(config, &store).await?;
            privacy::reject(&store, &actor, id, &reason).await?;
            println!("rejected");
        }
        DsrCommand::Withdraw { id, reason } => {
            let (actor, _) = sign_in(config, &store).await?;
            privacy::withdraw(&store, &actor, id, &reason).await?;
            println!("withdrawn");
        }
        DsrCommand::Scan { user, json } => scan(config, &store, user, json).await?,
    }
    Ok(ExitCode::SUCCESS)
}

#[allow(clippy::too_many_arguments)] // the flags of `dsr new`, one each
async fn new_request(
    config: &Config,
    store: &Store,
    kind: RequestKind,
    user: Option<String>,
    email: Option<String>,
    received: Option<chrono::NaiveDate>,
    delivery: privacy::CodeDelivery,
    json: bool,
) -> Result<()> {
    let subject = match user {
        Some(u) => SubjectRef::Username(u),
        None => SubjectRef::Email(
            sensitive_value(email, "subject's email")
                .context("give --user, or --email (`-` for standard input)")?
                .to_string(),
        ),
    };
    let (actor, ring) = unlock(config, store).await?;
    let received = match received {
        None => Timestamp::now(),
        // Noon of that day; today's before noon is now.
        Some(day) => {
            let noon = Timestamp::from(day.and_hms_opt(12, 0, 0).unwrap_or_default().and_utc());
            let now = Timestamp::now();
            if noon > now {
                now
            } else {
                noon
            }
        }
    };
    let created = privacy::create_at(
        store,
        Some(&ring),
        &actor,
        kind,
        &subject,
        delivery,
        received,
    )
    .await?;
    // A mailed code is never shown to the officer.
    if json {
        let mut out = serde_json::json!({
            "id": created.request.id,
            "request": created.request,
        });
        if let Some(code) = &created.verification_code {
            out["verification_code"] = code.as_str().into();
        }
        print_json(&out)?;
    } else {
        print_request(&created.request);
        match &created.verification_code {
            Some(code) => println!(
                "verification code (hand it to the subject; shown once; another officer \
                 must enter it): {}",
                code.as_str()
            ),
            None => println!(
                "verification code: queued by mail to the subject's registered address; \
                 the subject's reply brings it"
            ),
        }
    }
    Ok(())
}

async fn list(
    config: &Config,
    store: &Store,
    status: Option<RequestStatus>,
    kind: Option<RequestKind>,
    overdue: bool,
    due_soon: bool,
    json: bool,
) -> Result<()> {
    let (actor, _) = sign_in(config, store).await?;
    let filter = RequestFilter {
        status,
        kind,
        overdue,
        due_soon,
    };
    let rows = privacy::list(store, &actor, &filter).await?;
    if json {
        print_json(&rows)?;
    } else {
        println!(
            "{:<36}  {:<13}  {:<11}  {:<24}  {:<10}  due",
            "id", "type", "status", "subject", "received"
        );
        for r in &rows {
            println!(
                "{:<36}  {:<13}  {:<11}  {:<24}  {:<10}  {}{}",
                r.id,
                r.kind.as_str(),
                r.status.as_str(),
                r.subject_username.as_deref().unwrap_or("(erased)"),
                &r.received_at.to_rfc3339()[..10],
                &r.due_at.to_rfc3339()[..10],
                if r.overdue {
                    "  OVERDUE"
                } else if r.due_soon {
                    "  soon"
                } else {
                    ""
                }
            );
        }
    }
    Ok(())
}

async fn show(config: &Config, store: &Store, id: privacy::RequestId, json: bool) -> Result<()> {
    let (actor, _) = sign_in(config, store).await?;
    let d = privacy::show(store, &actor, id).await?;
    if json {
        print_json(&d)?;
    } else {
        print_request(&d.request);
        for s in &d.steps {
            println!(
                "step {:>2} {:<20} {:<8} rows {}{}",
                s.no,
                s.name,
                s.status,
                s.rows_affected,
                s.error
                    .as_deref()
                    .map(|e| format!("  {e}"))
                    .unwrap_or_default()
            );
        }
        for a in &d.artifacts {
            println!(
                "file: {} {} bytes sha256 {}",
                a.kind, a.size_bytes, a.sha256
            );
        }
        for t in &d.timeline {
            println!("{:>7}  {}  {:<24}  {}", t.seq, t.at, t.action, t.actor);
        }
    }
    Ok(())
}

async fn scan(config: &Config, store: &Store, user: String, json: bool) -> Result<()> {
    let (actor, ring) = unlock(config, store).await?;
    let ids =
        privacy::identifiers_of(store, &ring, &actor, &privacy::SubjectRef::Username(user)).await?;
    let report = privacy::residual_scan(store, &ring, &actor, &ids).await?;
    if json {
        print_json(&report)?;
    } else {
        println!(
            "scanned {} tables, {} columns, {} sealed values{}",
            report.tables,
            report.columns,
            report.values_opened,
            report
                .file_bytes
                .map(|b| format!(", {b} file bytes"))
                .unwrap_or_default()
        );
        for h in &report.hits {
            println!("found  {} ({}): {}", h.place, h.identifier, h.count);
        }
        for h in &report.shared {
            println!(
                "shared {} ({}): {} (another account's own)",
                h.place, h.identifier, h.count
            );
        }
    }
    Ok(())
}
