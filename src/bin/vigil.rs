//! `vigil`: the command line over the Vigil core.
//!
//! Exit codes: 0 success, 1 the operation failed (message on stderr), 2 usage error.

#[path = "vigil/jobs.rs"]
mod jobs;
#[path = "vigil/mail.rs"]
mod mail;
#[path = "vigil/outbox.rs"]
mod outbox;

use std::io::IsTerminal;
use std::process::ExitCode;

use anyhow::{anyhow, bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use vigil::audit::{self, AuditFilter, Verification};
use vigil::auth::cli_session::{self, OpenRecord, SessionKey};
use vigil::auth::platform_tokens::PlatformTokenKeys;
use vigil::auth::tokens::{self, SessionLimits};
use vigil::auth::users;
use vigil::auth::{self, Actor, LoginOutcome, LoginSource, Password, Session, Username};
use vigil::bench::{self, BenchOptions};
use vigil::config::Config;
use vigil::demo::{self, SeedOptions, SeedProgress};
use vigil::keys::keystore::{FileKeystore, SecretName};
use vigil::keys::{self, rotation, KeyRing, Purpose};
use vigil::mfa;
use vigil::monitor;
use vigil::notices;
use vigil::privacy;
use vigil::rbac::Role;

/// The keystore entry holding the command line's session refresh token.
const REFRESH_ENTRY: &str = "refresh-token";
use vigil::store::{DatabaseUrl, Store, Timestamp};

#[derive(Parser)]
#[command(
    name = "vigil",
    version,
    about = "Vigil: security and privacy console for a live comment platform"
)]
struct Cli {
    /// Database URL (sqlite:///path/vigil.db or postgres://user@host/db); overrides
    /// VIGIL_DATABASE_URL and the config file.
    #[arg(long, global = true, value_name = "URL")]
    database: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create (or open) the database, apply migrations and create the first administrator.
    Init {
        /// Username of the first administrator. The password is read from
        /// VIGIL_ADMIN_PASSWORD or asked for on the terminal.
        #[arg(long, value_name = "NAME")]
        admin: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Apply pending schema migrations and report the database.
    Migrate(JsonFlag),
    /// Configuration.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// The operator keystore (OS keychain or file keystore).
    #[command(subcommand)]
    Keystore(KeystoreCommand),
    /// The audit chain.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// The security-event log: denials, token failures, refreshes, logouts, expiry and locks.
    #[command(subcommand, name = "security-events")]
    SecurityEvents(SecurityEventsCommand),
    /// Operator key pairs and data keys: enrol, grant, revoke, rotate, status.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Your second factor: TOTP enrolment with a QR code, backup codes.
    #[command(subcommand)]
    Mfa(MfaCommand),
    /// Operator accounts (administrators): unlock, reset a password or MFA.
    #[command(subcommand)]
    User(UserCommand),
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
    /// Demonstration data.
    #[command(subcommand)]
    Demo(DemoCommand),
    /// Data-subject requests (GDPR access, portability, erasure, rectification).
    #[command(subcommand)]
    Dsr(DsrCommand),
    /// Legal holds on users and incidents (they block erasure and retention).
    #[command(subcommand)]
    Hold(HoldCommand),
    /// Platform activity: take it in for the detectors.
    #[command(subcommand)]
    Activity(ActivityCommand),
    /// Security monitoring: the detectors, content and URL screening.
    #[command(subcommand)]
    Monitor(MonitorCommand),
    /// The moderators' incident queue.
    #[command(subcommand)]
    Incidents(IncidentsCommand),
    /// Draw the dashboard charts to files (SVG, or PNG with --png).
    Charts {
        /// The folder to write them to.
        #[arg(long)]
        out: std::path::PathBuf,
        /// Days: 7, 30 or 90.
        #[arg(long, default_value_t = 30)]
        days: u32,
        /// PNG instead of SVG.
        #[arg(long)]
        png: bool,
    },
    /// IP address blocks.
    #[command(subcommand)]
    Blocks(BlocksCommand),
    /// Retention policies: view and change them, the dry run, runs and their history.
    #[command(subcommand)]
    Retention(jobs::RetentionCommand),
    /// Mail settings: the SMTP password in the keystore, a test message.
    #[command(subcommand)]
    Mail(mail::MailCommand),
    /// The outbox: list, retry and cancel messages; deliver what is due now.
    #[command(subcommand)]
    Outbox(outbox::OutboxCommand),
    /// Run the scheduled jobs (retention daily, the detectors every minute) as a service
    /// account, until stopped. Several workers may share one Postgres database.
    Worker {
        /// Run the due jobs once and exit (for a systemd timer or cron).
        #[arg(long)]
        once: bool,
        /// Only this job (repeat for several): retention, monitor, mail.
        #[arg(long = "job", value_name = "JOB")]
        jobs: Vec<String>,
        /// One JSON line per job per round.
        #[arg(long)]
        json: bool,
        /// Crash tests: abort inside this retention chunk's transaction.
        #[arg(long, hide = true)]
        abort_in_chunk: Option<u64>,
    },
    /// Measure demo-seed throughput and audit-chain speed on a scratch database.
    Bench(BenchArgs),
}

#[derive(Args)]
struct JsonFlag {
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Print the effective configuration, secrets redacted.
    Show(JsonFlag),
}

#[derive(Subcommand)]
enum KeystoreCommand {
    /// Store, read back and delete a test secret in the configured keystore.
    Check(JsonFlag),
    /// Team mode: keep your database password (from VIGIL_DATABASE_PASSWORD, or asked for on
    /// the terminal) in the keystore for the database user the configured URL names, after
    /// checking it connects. The config file then holds postgres://USER@host/db, no password.
    SetDatabasePassword,
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Walk the hash chain; exit 0 and "ok: N entries", or exit 1 naming the first bad seq.
    Verify {
        /// Also verify the archived entries in this folder, from the first entry to the live
        /// chain's checkpoint.
        #[arg(long, value_name = "DIR")]
        archive: Option<std::path::PathBuf>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// List entries, newest first.
    List {
        /// Operator username, or a stored actor (user:<uuid>, system:<name>).
        #[arg(long)]
        actor: Option<String>,
        /// Action name, e.g. operator.bootstrapped.
        #[arg(long)]
        action: Option<String>,
        /// Only entries since this time: RFC 3339, YYYY-MM-DD, or an age such as 24h or 7d.
        #[arg(long)]
        since: Option<String>,
        /// Most entries to show.
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=10_000))]
        limit: u32,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum SecurityEventsCommand {
    /// List events, newest first (moderators and administrators).
    List {
        /// Operator username, or a stored actor (user:<uuid>, system:<name>).
        #[arg(long)]
        actor: Option<String>,
        /// Event kind: authorization_denied, token_rejected, token_refreshed, logout,
        /// session_expired, session_locked, session_unlocked.
        #[arg(long)]
        kind: Option<String>,
        /// Outcome: success, denied or failed.
        #[arg(long)]
        outcome: Option<String>,
        /// Only events since this time: RFC 3339, YYYY-MM-DD, or an age such as 24h or 7d.
        #[arg(long)]
        since: Option<String>,
        /// Most events to show.
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=10_000))]
        limit: u32,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
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

#[derive(Subcommand)]
enum MfaCommand {
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

#[derive(Subcommand)]
enum UserCommand {
    /// Create an operator with a temporary password (from VIGIL_NEW_PASSWORD, or generated and
    /// printed once) that must be changed at the first sign-in.
    Create {
        /// The new operator's username.
        username: String,
        /// A role (repeat for several): user, moderator, compliance_officer, admin, service.
        #[arg(long = "role", value_name = "ROLE")]
        roles: Vec<String>,
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
        #[arg(long)]
        role: Option<String>,
        /// Only this status: active, suspended, locked, deleted.
        #[arg(long)]
        status: Option<String>,
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
        #[arg(long = "role", value_name = "ROLE", required = true)]
        roles: Vec<String>,
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

#[derive(Subcommand)]
enum SessionsCommand {
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
        id: String,
    },
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Open a session and print its access token (for scripts).
    Show,
    /// Read a token on stdin: exit 0 and its claims as JSON if valid, exit 1 and why if not.
    Verify,
}

#[derive(Subcommand)]
enum DsrCommand {
    /// Record a request and issue the one-time verification code to hand to the subject.
    New {
        /// access, portability, erasure or rectification.
        #[arg(long = "type", value_name = "T")]
        kind: String,
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
        #[arg(long, value_name = "DATE")]
        received: Option<String>,
        // --- mail delivery (outbox) ---
        /// How the code reaches the subject: `mail` (queued to their registered address; never
        /// shown here) or `manual` (a paper request from a subject with no usable address: the
        /// code is shown once, and another officer must enter it).
        #[arg(long, value_name = "HOW", default_value = "mail")]
        deliver: String,
        // --- end mail delivery ---
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Verify the subject's identity with the code they received, or with their access token
    /// read from stdin (--token).
    Verify {
        /// The request id.
        id: String,
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
        id: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Requests, the most urgent first.
    List {
        /// Only this status.
        #[arg(long)]
        status: Option<String>,
        /// Only this type.
        #[arg(long = "type", value_name = "T")]
        kind: Option<String>,
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
        id: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Run a verified request: write the export, erase (resuming a stopped erasure), or apply
    /// corrections.
    Run {
        /// The request id.
        id: String,
        /// Folder for the export files (access, portability); default: the current folder.
        #[arg(long, value_name = "DIR")]
        out: Option<std::path::PathBuf>,
        /// What an erasure does with the subject's comments: anonymise or delete.
        #[arg(long, default_value = "anonymise")]
        comments: String,
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
        id: String,
        /// Months: 1 or 2.
        #[arg(long)]
        months: u32,
        /// Why.
        #[arg(long)]
        reason: String,
    },
    /// Reject a request, with a reason.
    Reject {
        /// The request id.
        id: String,
        /// Why.
        #[arg(long)]
        reason: String,
    },
    /// Record that the subject withdrew the request.
    Withdraw {
        /// The request id.
        id: String,
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

#[derive(Subcommand)]
enum ActivityCommand {
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
enum IncidentsCommand {
    /// The review queue: most severe first, then oldest.
    List {
        /// open, investigating, resolved or dismissed (default: open and investigating).
        #[arg(long)]
        status: Option<String>,
        /// critical, high, medium or low.
        #[arg(long)]
        severity: Option<String>,
        /// credential_stuffing, rate_limit_exceeded, suspicious_activity, malicious_content,
        /// suspicious_content.
        #[arg(long)]
        kind: Option<String>,
        /// Only incidents assigned to me.
        #[arg(long)]
        mine: bool,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// One incident: evidence, activity around it, timeline, blocks and restrictions.
    Show {
        /// Incident id.
        id: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Act on an incident: assign, confirm, dismiss, lift-suspension, extend-suspension:HOURS,
    /// lift-block, extend-block:HOURS, lift-restrictions, remove-comment:ID, warn, note.
    Act {
        /// Incident id.
        id: String,
        /// The action.
        action: String,
        /// Why (needed for note and remove-comment).
        #[arg(long)]
        reason: Option<String>,
    },
    /// Rules dismissed as false positives, with how often.
    Feedback(JsonFlag),
}

#[derive(Subcommand)]
enum BlocksCommand {
    /// Blocks in force.
    List {
        /// Expired and lifted ones too.
        #[arg(long)]
        all: bool,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Block an address.
    Add {
        /// The IP address. Leave it out on a terminal to be asked for it without echo, or give
        /// `-` to read one line from standard input: given here, it is visible to other local
        /// users in the process list while the command runs.
        ip: Option<String>,
        /// For this many hours (until lifted if absent).
        #[arg(long)]
        hours: Option<u32>,
        /// Why.
        #[arg(long)]
        reason: String,
    },
    /// Lift a block, by its id or by address.
    Remove {
        /// Block id or IP address. `-` reads it from standard input, and leaving it out on a
        /// terminal asks for it without echo: an address given here is visible to other local
        /// users in the process list while the command runs.
        which: Option<String>,
    },
}

#[derive(Subcommand)]
enum MonitorCommand {
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

#[derive(Subcommand)]
enum HoldCommand {
    /// Holds in force.
    List {
        /// Released ones too.
        #[arg(long)]
        all: bool,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Place a hold on a user or an incident.
    Place {
        /// The user's username.
        #[arg(
            long,
            conflicts_with = "incident",
            required_unless_present = "incident"
        )]
        user: Option<String>,
        /// The incident's id.
        #[arg(long)]
        incident: Option<String>,
        /// Why.
        #[arg(long)]
        reason: String,
    },
    /// Release a hold.
    Release {
        /// The hold's id.
        id: String,
    },
}

#[derive(Subcommand)]
enum DemoCommand {
    /// Fill an empty database with a deterministic, realistic platform.
    Seed(SeedArgs),
}

#[derive(Args)]
struct SeedArgs {
    /// Platform users.
    #[arg(long, default_value_t = 1_000)]
    users: u32,
    /// Comments.
    #[arg(long, default_value_t = 10_000)]
    comments: u32,
    /// Days of history.
    #[arg(long, default_value_t = 30)]
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

#[derive(Args)]
struct BenchArgs {
    /// Platform users to seed.
    #[arg(long, default_value_t = 100_000)]
    users: u32,
    /// Comments to seed.
    #[arg(long, default_value_t = 1_000_000)]
    comments: u32,
    /// Audit entries to append and verify.
    #[arg(long, default_value_t = 200_000)]
    audit_entries: u32,
    /// Verification runs (the median is reported).
    #[arg(long, default_value_t = 5)]
    verify_runs: u32,
    /// Skip timing a rotation of the `contact` key over the seeded rows.
    #[arg(long)]
    no_rotate: bool,
    /// Measure data-subject requests instead: a subject with --subject-comments comments among
    /// the seeded platform (access and portability exports, whole-database scan, erasure).
    #[arg(long)]
    dsr: bool,
    /// The subject's comments for --dsr.
    #[arg(long, default_value_t = 100_000)]
    subject_comments: u32,
    /// Measure content screening instead, over this many demo comments (no database).
    #[arg(long, value_name = "LINES")]
    screen: Option<usize>,
    /// Measure activity ingestion plus a detector run instead: this many events from --users
    /// accounts (on a scratch SQLite file unless --database names an empty database).
    #[arg(long, value_name = "EVENTS")]
    monitor: Option<u64>,
    /// Measure retention instead: seed --users and --comments over 2,000 days plus
    /// --audit-entries, then time deleting old activity, anonymising comments and archiving the
    /// audit log.
    #[arg(long)]
    retention: bool,
    /// Measure the dashboard charts instead: seed --users and --comments over 90 days (with
    /// the attack scenarios, and a detector run), then time each chart (median of 5).
    #[arg(long)]
    charts: bool,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match load_config(cli.database.as_deref()) {
        Ok(c) => c,
        Err(e) => return fail(e),
    };
    init_logging(&config.log);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => return fail(e.into()),
    };
    let explicit_database =
        cli.database.is_some() || std::env::var_os("VIGIL_DATABASE_URL").is_some();
    match runtime.block_on(run(cli.command, config, explicit_database)) {
        Ok(code) => code,
        Err(e) => fail(e),
    }
}

fn fail(e: anyhow::Error) -> ExitCode {
    eprintln!("error: {e:#}");
    ExitCode::from(1)
}

fn load_config(database: Option<&str>) -> Result<Config> {
    let mut config = Config::load()?;
    if let Some(url) = database {
        config.database.url = DatabaseUrl::parse(url)?;
    }
    Ok(config)
}

fn init_logging(filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

async fn open(config: &Config) -> Result<Store> {
    Ok(Store::open(&connect_url(config), &config.database.store_options()).await?)
}

/// The configured URL, with the operator's database password from their keystore when the
/// URL names a Postgres user without one (team mode keeps it out of the config file).
fn connect_url(config: &Config) -> DatabaseUrl {
    let url = &config.database.url;
    if url.postgres_user().is_none() || url.has_password() {
        return url.clone();
    }
    // A command-line session keeps the database password in its sealed record.
    if let Ok(Some(record)) = cli_record(config) {
        let with = record
            .database_password()
            .and_then(|pw| url.with_password(pw));
        *CLI_RECORD.lock().unwrap_or_else(|p| p.into_inner()) = Some(record);
        if let Some(with) = with {
            return with;
        }
    }
    match config.keystore.open() {
        Ok(ks) => {
            vigil::store::team::with_remembered_password(ks.as_ref(), url).unwrap_or_else(|e| {
                tracing::warn!(error = %e, "cannot read the database password from the keystore");
                url.clone()
            })
        }
        Err(_) => url.clone(),
    }
}

async fn run(command: Command, config: Config, explicit_database: bool) -> Result<ExitCode> {
    match command {
        Command::Init { admin, json } => init(&config, &admin, json).await,
        Command::Migrate(f) => {
            let store = open(&config).await?;
            let initialised = auth::is_initialised(&store).await?;
            // An operator's own login checks the schema is current but may not change it.
            let migrated = !store.is_operator_login();
            if f.json {
                print_json(&serde_json::json!({
                    "database": store.describe(),
                    "backend": store.backend(),
                    "migrated": migrated,
                    "initialised": initialised,
                }))?;
            } else if !migrated {
                println!(
                    "up to date: {} (connected as an operator's login; the database owner \
                     runs `vigil migrate`)",
                    store.describe()
                );
            } else {
                println!("migrated: {} ({})", store.describe(), store.backend());
                if !initialised {
                    println!("not initialised yet: run `vigil init --admin NAME`");
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Config(ConfigCommand::Show(f)) => {
            if f.json {
                print_json(&config)?;
            } else {
                println!(
                    "config file:      {}",
                    config
                        .source_file
                        .as_ref()
                        .map_or("(none; defaults)".into(), |p| p.display().to_string())
                );
                println!("database.url:     {}", config.database.url.redacted());
                println!("database.backend: {}", config.database.url.backend());
                println!(
                    "database.max_connections: {}",
                    config.database.max_connections
                );
                println!("keystore:         {}", config.keystore);
                println!("log:              {}", config.log);
                println!(
                    "auth.require_mfa: {} (from {})",
                    config.auth.require_mfa_text(),
                    config.auth.require_mfa_source
                );
                println!("auth.idle_timeout_secs: {}", config.auth.idle_timeout_secs);
                println!(
                    "auth.absolute_lifetime_secs: {}",
                    config.auth.absolute_lifetime_secs
                );
                println!(
                    "platform.token_keys: {}",
                    config
                        .platform
                        .token_keys
                        .as_ref()
                        .map_or("(none; data subjects verify by code)".into(), |p| p
                            .display()
                            .to_string())
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Keystore(KeystoreCommand::Check(f)) => keystore_check(&config, f.json),
        Command::Keystore(KeystoreCommand::SetDatabasePassword) => {
            set_database_password(&config).await
        }
        Command::Audit(AuditCommand::Verify { archive, json }) => {
            let store = open(&config).await?;
            let (actor, _) = sign_in(&config, &store).await?;
            if let Some(dir) = archive {
                let result = audit::archive::verify_with_archive(&store, &actor, &dir).await?;
                if json {
                    print_json(&result)?;
                } else {
                    match &result.archive {
                        audit::archive::ArchiveResult::Ok {
                            segments, entries, ..
                        } => println!("archive ok: {entries} entries in {segments} segments"),
                        audit::archive::ArchiveResult::Broken {
                            file, seq, fault, ..
                        } => println!(
                            "archive broken: {}{}: {}",
                            file.as_deref().unwrap_or("archive"),
                            seq.map(|s| format!(" seq {s}")).unwrap_or_default(),
                            serde_json::to_string(fault)?
                        ),
                    }
                    print_live(&result.live);
                }
                return Ok(if result.is_ok() {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::from(1)
                });
            }
            let result = audit::verify(&store, &actor).await?;
            if json {
                print_json(&result)?;
            } else {
                print_live(&result);
            }
            Ok(match result {
                Verification::Ok { .. } => ExitCode::SUCCESS,
                Verification::Broken { .. } => ExitCode::from(1),
            })
        }
        Command::Audit(AuditCommand::List {
            actor,
            action,
            since,
            limit,
            json,
        }) => {
            let since = since.as_deref().map(parse_since).transpose()?;
            let store = open(&config).await?;
            let (me, _) = sign_in(&config, &store).await?;
            let actor = actor_filter(&store, actor).await?;
            let filter = AuditFilter {
                actor,
                action,
                since,
                limit: Some(limit),
                before_seq: None,
            };
            let entries = audit::list(&store, &me, &filter).await?;
            if json {
                print_json(&entries)?;
            } else {
                println!(
                    "{:>7}  {:<27}  {:<43}  {:<22}  target",
                    "seq", "at", "actor", "action"
                );
                for e in &entries {
                    println!(
                        "{:>7}  {:<27}  {:<43}  {:<22}  {}",
                        e.seq,
                        e.at.to_rfc3339(),
                        e.actor,
                        e.action,
                        e.target.as_deref().unwrap_or("-")
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::SecurityEvents(SecurityEventsCommand::List {
            actor,
            kind,
            outcome,
            since,
            limit,
            json,
        }) => {
            use vigil::security_events::{self as events, Outcome, SecurityEventKind};
            if let Some(k) = kind.as_deref() {
                if SecurityEventKind::parse(k).is_none() {
                    let all: Vec<&str> =
                        SecurityEventKind::ALL.iter().map(|k| k.as_str()).collect();
                    bail!("unknown event kind; use one of: {}", all.join(", "));
                }
            }
            if let Some(o) = outcome.as_deref() {
                if Outcome::parse(o).is_none() {
                    bail!("unknown outcome; use success, denied or failed");
                }
            }
            let since = since.as_deref().map(parse_since).transpose()?;
            let store = open(&config).await?;
            let (me, _) = sign_in(&config, &store).await?;
            let actor = actor_filter(&store, actor).await?;
            let filter = events::SecurityEventFilter {
                kind,
                actor,
                outcome,
                since,
                limit: Some(limit),
            };
            let list = events::list(&store, &me, &filter).await?;
            if json {
                print_json(&list)?;
            } else {
                println!(
                    "{:<27}  {:<20}  {:<43}  {:<22}  {:<7}  session",
                    "at", "kind", "actor", "attempted", "outcome"
                );
                for e in &list {
                    println!(
                        "{:<27}  {:<20}  {:<43}  {:<22}  {:<7}  {}",
                        e.at.to_rfc3339(),
                        e.kind,
                        e.actor.as_deref().unwrap_or("-"),
                        e.attempted,
                        e.outcome,
                        e.session_id.as_deref().unwrap_or("-")
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Demo(DemoCommand::Seed(a)) => {
            let store = open(&config).await?;
            let (actor, ring) = unlock(&config, &store).await?;
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
        Command::Bench(a) => bench_cmd(&config, a, explicit_database).await,
        Command::Dsr(c) => dsr_cmd(&config, c).await,
        Command::Hold(c) => hold_cmd(&config, c).await,
        Command::Retention(c) => jobs::retention_cmd(&config, c).await,
        Command::Mail(c) => mail::mail_cmd(&config, c).await,
        Command::Outbox(c) => outbox::outbox_cmd(&config, c).await,
        Command::Worker {
            once,
            jobs: names,
            json,
            abort_in_chunk,
        } => jobs::worker_cmd(&config, once, &names, json, abort_in_chunk).await,
        Command::Activity(c) => activity_cmd(&config, c).await,
        Command::Monitor(MonitorCommand::Run(j)) => monitor_run(&config, j.json).await,
        Command::Incidents(c) => incidents_cmd(&config, c).await,
        Command::Blocks(c) => blocks_cmd(&config, c).await,
        Command::Charts { out, days, png } => charts_cmd(&config, &out, days, png).await,
        Command::Monitor(MonitorCommand::Screen {
            file,
            blocklist,
            json,
        }) => monitor_screen(&config, file, &blocklist, json),
        Command::Keys(k) => keys_cmd(&config, k).await,
        Command::Mfa(m) => mfa_cmd(&config, m).await,
        Command::User(u) => user_cmd(&config, u).await,
        Command::Sessions(c) => sessions_cmd(&config, c).await,
        Command::Login => {
            let store = open(&config).await?;
            // Always with the password (and second factor): never from another session.
            let (session, _) = password_session(&config, &store, false, false).await?;
            let ring = session
                .keys
                .as_ref()
                .ok_or(vigil::keys::KeyError::NoKeyPairHere)?;
            let limits = SessionLimits::from_config(&config.auth);
            let now = Timestamp::now();
            let pair =
                tokens::issue_limited_at(&store, ring, &session.actor, "cli", limits, now).await?;
            let ends =
                Timestamp::from_micros(now.micros() + limits.absolute_lifetime_secs * 1_000_000);
            let keystore = config.keystore.open()?;
            let database_password = remembered_database_password(&config, keystore.as_ref());
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
        Command::Logout { all } => {
            if let Some(mut record) = cli_record(&config)? {
                let store = open(&config).await?;
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
            let store = open(&config).await?;
            let (actor, _) = enrolment_session(&config, &store)
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
        Command::Whoami(f) => {
            let store = open(&config).await?;
            let (session, _) = enrolment_session(&config, &store).await?;
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
            if f.json {
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
        Command::Notices { dismiss, json } => {
            let store = open(&config).await?;
            let (session, _) = enrolment_session(&config, &store).await?;
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
        Command::Token(TokenCommand::Show) => {
            let store = open(&config).await?;
            // With VIGIL_SESSION: that session's token (verified, or refreshed).
            if let Some(mut record) = cli_record(&config)? {
                let keystore = config.keystore.open()?;
                record.resume(&store, keystore.as_ref()).await?;
                println!("{}", record.access_token());
                return Ok(ExitCode::SUCCESS);
            }
            let (session, _) = session(&config, &store).await?;
            let ring = session
                .keys
                .as_ref()
                .ok_or(vigil::keys::KeyError::NoKeyPairHere)?;
            let pair = tokens::issue(&store, ring, &session, "cli-token").await?;
            println!("{}", pair.access_token);
            Ok(ExitCode::SUCCESS)
        }
        Command::Token(TokenCommand::Verify) => {
            // Verification needs no keys and no sign-in: the public keys are in the database.
            let store = open(&config).await?;
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
        Command::Passwd => {
            let store = open(&config).await?;
            let (session, current) = signed_in_session(&config, &store, true, false).await?;
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
    }
}

/// An `--actor` filter as stored: `user:<id>` or `system:<step>` as given, or a username
/// looked up to its `user:<id>`.
async fn actor_filter(store: &Store, actor: Option<String>) -> Result<Option<String>> {
    Ok(match actor {
        None => None,
        Some(a) if a.starts_with("user:") || a.starts_with("system:") => Some(a),
        Some(name) => {
            let name = Username::parse(&name)?;
            let id = auth::operator_id(store, &name)
                .await?
                .ok_or_else(|| anyhow!("no operator with that username"))?;
            Some(format!("user:{id}"))
        }
    })
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

/// A new password from VIGIL_NEW_PASSWORD, or asked twice on a terminal.
fn new_password(prompt: &str) -> Result<zeroize::Zeroizing<String>> {
    if let Ok(p) = std::env::var("VIGIL_NEW_PASSWORD") {
        return Ok(zeroize::Zeroizing::new(p));
    }
    if !std::io::stdin().is_terminal() {
        bail!("set VIGIL_NEW_PASSWORD or run on a terminal to be asked for the new password");
    }
    let first = zeroize::Zeroizing::new(rpassword::prompt_password(prompt)?);
    let again = zeroize::Zeroizing::new(rpassword::prompt_password("Repeat it: ")?);
    if *first != *again {
        bail!("the passwords did not match; nothing was changed");
    }
    Ok(first)
}

/// The most a value read from standard input may be (one line; a code, an address or an email).
const MAX_INPUT_LINE: usize = 4096;

/// A value that should not sit in the process list (a code, an email, a phone number, an IP
/// address): the argument as given (scripts; visible to other local users while the command
/// runs), `-` for one line of standard input, or, left out, asked for without echo on a
/// terminal. Without a terminal, leaving it out is an error. Kept in a buffer wiped when dropped.
fn sensitive_value(given: Option<String>, what: &str) -> Result<zeroize::Zeroizing<String>> {
    match given {
        Some(v) if v != "-" => Ok(zeroize::Zeroizing::new(v)),
        given => {
            let value = if std::io::stdin().is_terminal() {
                zeroize::Zeroizing::new(rpassword::prompt_password(format!("{what}: "))?)
            } else if given.is_some() {
                read_stdin_line(what)?
            } else {
                bail!(
                    "no {what} given: pass it as `-` with one line on standard input, or run on \
                     a terminal to be asked for it"
                );
            };
            let trimmed = value.trim();
            if trimmed.is_empty() {
                bail!("no {what} given: the input was empty");
            }
            Ok(zeroize::Zeroizing::new(trimmed.to_owned()))
        }
    }
}

/// One line of standard input (without its line end), at most [`MAX_INPUT_LINE`] bytes, in a
/// buffer allocated once and wiped when dropped.
fn read_stdin_line(what: &str) -> Result<zeroize::Zeroizing<String>> {
    use std::io::Read;
    let mut bytes = zeroize::Zeroizing::new(Vec::with_capacity(MAX_INPUT_LINE + 1));
    let mut stdin = std::io::stdin().lock();
    let mut byte = [0u8; 1];
    while bytes.len() <= MAX_INPUT_LINE {
        match stdin.read(&mut byte)? {
            0 => break,
            _ if byte[0] == b'\n' => break,
            _ => bytes.push(byte[0]),
        }
    }
    zeroize::Zeroize::zeroize(&mut byte);
    if bytes.len() > MAX_INPUT_LINE {
        bail!("the {what} on standard input is longer than {MAX_INPUT_LINE} bytes");
    }
    if bytes.last() == Some(&b'\r') {
        bytes.pop();
    }
    let text = std::str::from_utf8(&bytes)
        .map_err(|_| anyhow!("the {what} on standard input is not UTF-8"))?;
    Ok(zeroize::Zeroizing::new(text.to_owned()))
}

/// Writes `bytes` to a new file at `path` that only its owner can read (0600). Refuses to
/// overwrite an existing file or to follow a symbolic link (`O_CREAT | O_EXCL | O_NOFOLLOW`), so
/// a link planted in a shared folder cannot redirect the write, and says which it was.
fn write_private_file(path: &std::path::Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600).custom_flags(libc::O_NOFOLLOW);
    }
    let mut file = match options.open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists || is_symlink(path) => {
            if is_symlink(path) {
                bail!(
                    "{} is a symbolic link: not followed, nothing written; give a new file name",
                    path.display()
                );
            }
            bail!(
                "{} already exists: not overwritten, nothing written; give a new file name",
                path.display()
            );
        }
        Err(e) => return Err(e).with_context(|| format!("cannot create {}", path.display())),
    };
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .with_context(|| format!("cannot write {}", path.display()))
}

fn is_symlink(path: &std::path::Path) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink())
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

fn parse_roles(roles: &[String]) -> Result<Vec<Role>> {
    roles
        .iter()
        .map(|r| {
            Role::parse(r).ok_or_else(|| {
                anyhow!("unknown role {r:?}: user, moderator, compliance_officer, admin or service")
            })
        })
        .collect()
}

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

async fn user_cmd(config: &Config, command: UserCommand) -> Result<ExitCode> {
    let store = open(config).await?;
    let (actor, _) = sign_in(config, &store).await?;
    match command {
        UserCommand::Create {
            username,
            roles,
            json,
        } => {
            let roles = parse_roles(&roles)?;
            let (temporary, shown) = match std::env::var("VIGIL_NEW_PASSWORD") {
                Ok(p) => (p, false),
                Err(_) => (auth::random_password(20), true),
            };
            let (id, login) =
                users::create_with_database_login(&store, &actor, &username, &temporary, &roles)
                    .await?;
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
                    println!("temporary password (shown once; must be changed at first sign-in): {temporary}");
                }
                if let Some(login) = &login {
                    print_database_login(&store, login);
                }
            }
        }
        UserCommand::DbLogin { username, json } => {
            let login = users::database_login(&store, &actor, &username).await?;
            if json {
                print_json(&serde_json::json!({
                    "username": username,
                    "database_user": login.user,
                    "database_password": login.password(),
                }))?;
            } else {
                println!("database login for {username}:");
                print_database_login(&store, &login);
            }
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
                role: role
                    .as_deref()
                    .map(|r| parse_roles(&[r.to_owned()]))
                    .transpose()?
                    .map(|v| v[0]),
                status,
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
            let roles = parse_roles(&roles)?;
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
            let (temporary, shown) = match std::env::var("VIGIL_NEW_PASSWORD") {
                Ok(p) => (p, false),
                Err(_) => (auth::random_password(20), true),
            };
            let report = auth::reset_password(&store, &actor, &username, &temporary).await?;
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
        }
        UserCommand::ResetMfa { username } => {
            let ended = mfa::reset(&store, &actor, &username).await?;
            println!("MFA is off for {username}; {ended} session(s) ended; they must enrol again");
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn keys_cmd(config: &Config, command: KeysCommand) -> Result<ExitCode> {
    let store = open(config).await?;
    match command {
        KeysCommand::Enrol(f) => {
            // Sealing a key pair takes the password itself, never a session.
            let (session, password) = password_session(config, &store, false, false).await?;
            let actor = session.actor;
            let keystore = config.keystore.open()?;
            let public = keys::enrol(
                &store,
                keystore.as_ref(),
                &actor,
                &password,
                config.rsa_bits,
            )
            .await?;
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
        }
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
        KeysCommand::Status(f) => {
            let (actor, _) = sign_in(config, &store).await?;
            let holdings = keys::holdings(&store, &actor).await?;
            let purposes = match keys::status(&store, &actor).await {
                Ok(p) => Some(p),
                Err(vigil::keys::KeyError::Forbidden(_)) => None,
                Err(e) => return Err(e.into()),
            };
            let pii_rows_left = keys::split::remaining(&store).await?;
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
        }
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
        KeysCommand::SplitPii { chunk, json } => {
            let (actor, ring) = unlock(config, &store).await?;
            let bar = progress_bar(json);
            bar.set_message("pii");
            let report = keys::split::run(&store, &ring, &actor, chunk, &mut |p| {
                if json {
                    if let Ok(line) = serde_json::to_string(&serde_json::json!({ "progress": p })) {
                        println!("{line}");
                    }
                }
                bar.set_length(p.total);
                bar.set_position(p.done);
            })
            .await;
            bar.finish_and_clear();
            let report = report?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string(&serde_json::json!({ "done": report }))?
                );
            } else {
                println!(
                    "split pii: {} rows re-sealed under contact and network, {} unreadable, \
                     retired {:?}",
                    report.rows, report.unreadable, report.retired
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
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
        if json {
            if let Ok(line) = serde_json::to_string(&serde_json::json!({ "progress": p })) {
                println!("{line}");
            }
        }
        bar.set_length(p.total);
        bar.set_position(p.done);
    })
    .await;
    bar.finish_and_clear();
    let report = report?;
    if json {
        println!(
            "{}",
            serde_json::to_string(&serde_json::json!({ "done": report }))?
        );
    } else {
        println!(
            "rotated {}: v{} now, {} rows re-encrypted, retired {:?}",
            report.purpose, report.version, report.rows, report.retired
        );
    }
    Ok(())
}

/// Signs in; the session must have this machine's keys.
async fn unlock(config: &Config, store: &Store) -> Result<(Actor, KeyRing)> {
    let session = session(config, store).await?.0;
    match session.keys {
        Some(ring) => Ok((session.actor, ring)),
        None => Err(vigil::keys::KeyError::NoKeyPairHere.into()),
    }
}

/// Prints a new database login once, and how the operator connects with it.
fn print_database_login(store: &Store, login: &users::DatabaseLogin) {
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

async fn set_database_password(config: &Config) -> Result<ExitCode> {
    let url = &config.database.url;
    if url.postgres_user().is_none() {
        bail!(
            "the configured database URL names no Postgres user: set it to \
             postgres://DATABASE_USER@host/db (without the password) first"
        );
    }
    if url.has_password() {
        bail!("the configured database URL already holds a password: remove it from the URL");
    }
    let password = zeroize::Zeroizing::new(match std::env::var("VIGIL_DATABASE_PASSWORD") {
        Ok(p) => p,
        Err(_) if std::io::stdin().is_terminal() => {
            rpassword::prompt_password("Database password: ")?
        }
        Err(_) => bail!("set VIGIL_DATABASE_PASSWORD or run on a terminal to be asked"),
    });
    let with = url
        .with_password(&password)
        .ok_or_else(|| anyhow!("cannot put a password into this database URL"))?;
    let store = Store::open(&with, &config.database.store_options()).await?;
    store.close().await;
    let keystore = config.keystore.open()?;
    vigil::store::team::remember_password(keystore.as_ref(), url, &password)?;
    println!(
        "the database password for {} is kept in {}",
        url.redacted(),
        keystore.describe()
    );
    Ok(ExitCode::SUCCESS)
}

async fn init(config: &Config, admin: &str, json: bool) -> Result<ExitCode> {
    let username = Username::parse(admin)?;
    let store = open(config).await?;
    if store.is_operator_login() {
        bail!(
            "`vigil init` makes the database's first administrator and their database login: \
             run it with the database owner's URL"
        );
    }
    if auth::is_initialised(&store).await? {
        bail!("this database is already initialised (it has operators); nothing was changed");
    }
    let secret = match std::env::var("VIGIL_ADMIN_PASSWORD") {
        Ok(p) => zeroize::Zeroizing::new(p),
        Err(_) if std::io::stdin().is_terminal() => {
            let first = zeroize::Zeroizing::new(rpassword::prompt_password(format!(
                "Password for {username}: "
            ))?);
            let again =
                zeroize::Zeroizing::new(rpassword::prompt_password("Repeat the password: ")?);
            if *first != *again {
                bail!("the passwords did not match; nothing was changed");
            }
            first
        }
        Err(_) => {
            bail!("set VIGIL_ADMIN_PASSWORD or run on a terminal to be asked for the password")
        }
    };
    let password = Password::parse_for_operator(&secret, &username)?;
    let keystore = config.keystore.open()?;
    let id = auth::bootstrap_admin(
        &store,
        keystore.as_ref(),
        &username,
        &password,
        config.rsa_bits,
    )
    .await?;
    // Team mode: the administrator's own database login, so no console needs the owner's.
    let login = if vigil::store::team::enabled(&store).await? {
        Some(users::bootstrap_database_login(&store, id).await?)
    } else {
        None
    };
    if json {
        print_json(&serde_json::json!({
            "database": store.describe(),
            "administrator": username.as_str(),
            "id": id.to_string(),
            "database_user": login.as_ref().map(|l| &l.user),
            "database_password": login.as_ref().map(|l| l.password()),
        }))?;
    } else {
        println!(
            "initialised {}: administrator {username} ({id})",
            store.describe()
        );
        if let Some(login) = &login {
            print_database_login(&store, login);
        }
        if config.auth.requires_mfa(&[Role::Admin]) {
            println!(
                "MFA is required for administrators (policy {}, from {}): sign in and run \
                 `vigil mfa enroll` and `vigil mfa confirm CODE` next; nothing else is open \
                 until then (VIGIL_REQUIRE_MFA=none for a throwaway or demo database)",
                config.auth.require_mfa_text(),
                config.auth.require_mfa_source
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Signs in from VIGIL_USERNAME / VIGIL_PASSWORD (and VIGIL_TOTP when MFA is on), or asks on
/// a terminal. Returns the session and the password (wiped when dropped), which unlocked it.
async fn session(config: &Config, store: &Store) -> Result<(Session, zeroize::Zeroizing<String>)> {
    signed_in_session(config, store, false, false).await
}

/// [`session`], also for an operator held at MFA enrolment by the `[auth] require_mfa` policy:
/// only `mfa enroll`, `mfa confirm`, `whoami` and `logout` use it.
async fn enrolment_session(
    config: &Config,
    store: &Store,
) -> Result<(Session, zeroize::Zeroizing<String>)> {
    signed_in_session(config, store, false, true).await
}

/// [`session`]; after an administrator's reset, only `passwd` (`may_change`) may proceed, and
/// while MFA enrolment is owed only the commands of [`enrolment_session`] (`may_enrol`) and
/// `passwd` (a reset password is changed before MFA can be enrolled).
///
/// With `VIGIL_SESSION` (from `vigil login`), the session it opens, checked by the core (idle
/// timeout, absolute lifetime, revocation, the account read again), with no password: the
/// password returned is then empty. `passwd` (`may_change`) always asks for the password.
async fn signed_in_session(
    config: &Config,
    store: &Store,
    may_change: bool,
    may_enrol: bool,
) -> Result<(Session, zeroize::Zeroizing<String>)> {
    if !may_change {
        if let Some(mut record) = cli_record(config)? {
            let keystore = config.keystore.open()?;
            let session = record.resume(store, keystore.as_ref()).await?;
            return Ok((session, zeroize::Zeroizing::new(String::new())));
        }
    }
    password_session(config, store, may_change, may_enrol).await
}

/// The session record that `VIGIL_SESSION` opened for this process, kept between opening the
/// database (its password may be in it) and signing in.
static CLI_RECORD: std::sync::Mutex<Option<OpenRecord>> = std::sync::Mutex::new(None);

/// The sealed session record `VIGIL_SESSION` names in this machine's keystore, opened; `None`
/// when the variable is not set. A wrong or stale value opens nothing and says so.
fn cli_record(config: &Config) -> Result<Option<OpenRecord>> {
    if let Some(r) = CLI_RECORD.lock().unwrap_or_else(|p| p.into_inner()).take() {
        return Ok(Some(r));
    }
    let Some(value) = std::env::var("VIGIL_SESSION")
        .ok()
        .filter(|v| !v.trim().is_empty())
    else {
        return Ok(None);
    };
    let key = SessionKey::parse(&value)?;
    let keystore = config.keystore.open()?;
    Ok(Some(cli_session::open(keystore.as_ref(), key)?))
}

/// The database password `vigil keystore set-database-password` keeps for the configured URL,
/// if it names a Postgres user and holds none itself.
fn remembered_database_password(
    config: &Config,
    keystore: &dyn vigil::keys::keystore::Keystore,
) -> Option<zeroize::Zeroizing<String>> {
    let url = &config.database.url;
    if url.has_password() {
        return None;
    }
    let (id, name) = vigil::store::team::password_entry(url)?;
    let secret = keystore.get(id, &name).ok()??;
    Some(zeroize::Zeroizing::new(
        String::from_utf8_lossy(secret.expose()).into_owned(),
    ))
}

/// Signs in with the password (and second factor), never from `VIGIL_SESSION`.
async fn password_session(
    config: &Config,
    store: &Store,
    may_change: bool,
    may_enrol: bool,
) -> Result<(Session, zeroize::Zeroizing<String>)> {
    if !auth::is_initialised(store).await? {
        bail!(
            "{} has no operators yet: run `vigil init --admin NAME` first",
            store.describe()
        );
    }
    let interactive = std::io::stdin().is_terminal();
    let username = match std::env::var("VIGIL_USERNAME") {
        Ok(u) => u,
        Err(_) if interactive => {
            eprint!("Username: ");
            let mut line = String::new();
            std::io::stdin().read_line(&mut line)?;
            line.trim().to_owned()
        }
        Err(_) => bail!(
            "not signed in: run `eval \"$(vigil login)\"` for a session, or set VIGIL_USERNAME \
             and VIGIL_PASSWORD"
        ),
    };
    let password = zeroize::Zeroizing::new(match std::env::var("VIGIL_PASSWORD") {
        Ok(p) => p,
        Err(_) if interactive => rpassword::prompt_password("Password: ")?,
        Err(_) => bail!(
            "not signed in: run `eval \"$(vigil login)\"` for a session, or set VIGIL_USERNAME \
             and VIGIL_PASSWORD"
        ),
    });
    // A machine without a usable keystore still signs in; commands needing keys say so.
    let keystore = config.keystore.open().ok();
    let source = LoginSource {
        ip: None,
        user_agent: Some(format!("vigil-cli/{}", vigil::VERSION)),
    };
    let outcome = auth::login(
        store,
        keystore.as_deref(),
        &username,
        &password,
        &source,
        &config.auth.mfa_policy(),
    )
    .await?;
    let session = match outcome {
        LoginOutcome::SignedIn(s) => s,
        LoginOutcome::MfaRequired(challenge) => {
            let code = zeroize::Zeroizing::new(match std::env::var("VIGIL_TOTP") {
                Ok(c) => c,
                Err(_) if interactive => {
                    rpassword::prompt_password("Authenticator or backup code: ")?
                }
                Err(_) => bail!("this account has MFA on: set VIGIL_TOTP to a current code"),
            });
            let token = challenge.token().to_owned();
            auth::finish_mfa(store, challenge, &token, &code).await?
        }
    };
    if session.must_change_password && !may_change {
        let why = auth::password_to_change(store, &session.actor)
            .await?
            .unwrap_or(auth::PasswordToChange::ResetByAdministrator);
        bail!("{why}: run `vigil passwd` to choose your own first");
    }
    if session.actor.must_enrol_mfa() && !may_enrol && !may_change {
        bail!(
            "MFA enrolment required: the policy ({}, from {}) requires a second factor for your \
             role; run `vigil mfa enroll` and `vigil mfa confirm CODE` first (until then only \
             those, `vigil whoami` and `vigil logout` work)",
            config.auth.require_mfa_text(),
            config.auth.require_mfa_source
        );
    }
    Ok((session, password))
}

/// Signs in (see [`session`]) and returns the operator and the password.
async fn sign_in(config: &Config, store: &Store) -> Result<(Actor, zeroize::Zeroizing<String>)> {
    let (s, pw) = session(config, store).await?;
    Ok((s.actor, pw))
}

fn keystore_check(config: &Config, json: bool) -> Result<ExitCode> {
    let store = config.keystore.open()?;
    let probe_owner = uuid::Uuid::new_v4();
    let name = SecretName::parse("keystore-check")?;
    let probe: [u8; 32] = rand::random();
    store.put(probe_owner, &name, &probe)?;
    let back = store.get(probe_owner, &name)?;
    let deleted = store.delete(probe_owner, &name)?;
    let ok = back.as_ref().map(|s| s.expose()) == Some(&probe[..]) && deleted;
    if json {
        print_json(&serde_json::json!({ "keystore": store.describe(), "usable": ok }))?;
    } else if ok {
        println!(
            "ok: {} stores, returns and deletes secrets",
            store.describe()
        );
    } else {
        println!(
            "failed: {} did not return the secret it stored",
            store.describe()
        );
    }
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

async fn bench_cmd(config: &Config, a: BenchArgs, explicit_database: bool) -> Result<ExitCode> {
    if let Some(lines) = a.screen {
        let r = tokio::task::spawn_blocking(move || bench::screening(lines)).await??;
        if a.json {
            print_json(&r)?;
        } else {
            println!(
                "monitor screen: {} lines ({} flagged) = {:.0} comments/s, reading the file and writing JSON lines (median of 5)",
                r.lines, r.flagged, r.screen_lines_per_sec
            );
            println!(
                "bare RegexSet:  {:.0} comments/s on one core, the four patterns only; ratio {:.2}",
                r.bare_regexset_per_sec, r.ratio
            );
        }
        return Ok(ExitCode::SUCCESS);
    }
    // A scratch SQLite file unless --database / VIGIL_DATABASE_URL names another (empty) one.
    let scratch = tempfile::tempdir()?;
    let url = if explicit_database {
        config.database.url.clone()
    } else {
        DatabaseUrl::sqlite_file(&scratch.path().join("bench.db"))
    };
    let store = Store::open(&url, &config.database.store_options()).await?;
    let opts = BenchOptions {
        seed: SeedOptions {
            users: a.users,
            comments: a.comments,
            days: 30,
            seed: 7,
            scenarios: false,
        },
        audit_entries: a.audit_entries,
        verify_runs: a.verify_runs,
        rotate: !a.no_rotate,
    };
    // The scratch administrator's key pair goes into a scratch file keystore, not the keychain.
    let keystore = FileKeystore::open(&scratch.path().join("keys"))?;
    if a.charts {
        let r = bench::charts_on_scratch(&store, &keystore, a.users, a.comments, 5)
            .await
            .context("benchmark failed")?;
        if a.json {
            print_json(&r)?;
        } else {
            println!(
                "backend: {}, {} activity events over 90 days",
                r.backend, r.activity_events
            );
            for c in &r.charts {
                println!(
                    "{:<22} {:>7.2} ms median (query {:.2} ms, SVG {:.2} ms)",
                    c.kind.as_str(),
                    c.median_ms,
                    c.data_median_ms,
                    c.svg_median_ms
                );
            }
        }
        return Ok(ExitCode::SUCCESS);
    }
    if a.retention {
        let r = bench::retention(
            &store,
            &keystore,
            a.users,
            a.comments,
            a.audit_entries,
            config.retention.chunk,
        )
        .await
        .context("benchmark failed")?;
        if a.json {
            print_json(&r)?;
        } else {
            println!("backend:   {} (chunks of {})", r.backend, r.chunk);
            println!("plan:      {:.2} s for every policy", r.plan_seconds);
            println!(
                "activity:  {} deleted in {:.2} s = {:.0} rows/s",
                r.activity_deleted, r.activity_seconds, r.activity_per_sec
            );
            println!(
                "comments:  {} anonymised in {:.2} s = {:.0} rows/s",
                r.comments_anonymised, r.comments_seconds, r.comments_per_sec
            );
            println!(
                "accounts:  {} deleted accounts removed in {:.2} s = {:.0} accounts/s \
                 (with {} activity records and reactions)",
                r.accounts_deleted, r.accounts_seconds, r.accounts_per_sec, r.accounts_cascaded
            );
            println!(
                "audit:     {} archived in {:.2} s = {:.0} entries/s",
                r.audit_archived, r.audit_seconds, r.audit_per_sec
            );
        }
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(events) = a.monitor {
        let r = bench::monitoring(&store, &keystore, a.users, events)
            .await
            .context("benchmark failed")?;
        if a.json {
            print_json(&r)?;
        } else {
            println!("backend:   {}", r.backend);
            println!(
                "ingest:    {} events in {:.2} s = {:.0} events/s (JSON lines parsed, addresses sealed)",
                r.events, r.ingest_seconds, r.ingest_per_sec
            );
            println!(
                "detect:    {} records in {:.2} s = {:.0} records/s ({} incidents opened)",
                r.judged, r.detect_seconds, r.detect_per_sec, r.incidents
            );
            println!(
                "combined:  {:.0} events/s ingested and judged",
                r.combined_per_sec
            );
        }
        return Ok(ExitCode::SUCCESS);
    }
    let bar = progress_bar(a.json);
    if a.dsr {
        let report = bench::dsr(
            &store,
            &keystore,
            bench::DsrBenchOptions {
                seed: opts.seed,
                subject_comments: a.subject_comments,
            },
            &mut |p| show(&bar, p),
        )
        .await;
        bar.finish_and_clear();
        let r = report.context("benchmark failed")?;
        if a.json {
            print_json(&r)?;
        } else {
            println!("backend:            {}", r.backend);
            println!(
                "platform rows:      {} (subject: {} comments)",
                r.platform_rows, r.subject_comments
            );
            println!(
                "access export:      {:.2} s ({} bytes of JSON, plus HTML)",
                r.access_export_seconds, r.access_json_bytes
            );
            println!(
                "portability export: {:.2} s (zip)",
                r.portability_export_seconds
            );
            println!(
                "residual scan:      {:.2} s over the whole database ({} sealed values opened)",
                r.scan_seconds, r.scan_values_opened
            );
            println!(
                "erasure:            {:.2} s with its scan ({} rows changed)",
                r.erasure_seconds, r.erasure_rows
            );
        }
        return Ok(ExitCode::SUCCESS);
    }
    let report = bench::run(&store, &keystore, opts, &mut |p| show(&bar, p)).await;
    bar.finish_and_clear();
    let report = report.context("benchmark failed")?;
    if a.json {
        print_json(&report)?;
    } else {
        println!("backend:        {}", report.backend);
        println!(
            "demo seed:      {} rows in {:.2} s = {:.0} rows/s",
            report.seed_rows, report.seed_seconds, report.seed_rows_per_sec
        );
        println!(
            "audit append:   {} entries = {:.0} entries/s (1,000 per transaction)",
            report.audit_appended, report.audit_appends_per_sec
        );
        println!(
            "audit verify:   {} entries, median {:.3} s = {:.0} entries/s",
            report.verify_entries, report.verify_median_seconds, report.verify_entries_per_sec
        );
        let c = &report.crypto;
        println!(
            "field seal:     {:.0} ops/s; field open: {:.0} ops/s (AES-256-GCM, place-bound)",
            c.field_seal_per_sec, c.field_open_per_sec
        );
        println!(
            "RSA-OAEP 2048:  {:.0} encrypts/s, {:.0} decrypts/s (bare)",
            c.rsa_encrypt_per_sec, c.rsa_decrypt_per_sec
        );
        println!(
            "E2E envelope:   seal for 5 = {:.0}/s ({:.3}x five bare encrypts); open = {:.0}/s ({:.3}x one bare decrypt)",
            c.e2e_seal_5_per_sec, c.e2e_seal_overhead, c.e2e_open_per_sec, c.e2e_open_overhead
        );
        println!(
            "email lookup:   median {:.1} us over {} users (blind index)",
            report.email_lookup_median_us, report.email_lookup_users
        );
        println!(
            "sign-in:        median {:.1} ms (argon2id, unlocking keys); TOTP verify: {:.0}/s",
            report.login_median_ms, report.totp_verify_per_sec
        );
        println!(
            "token verify:   {:.0}/s with the epoch cache; {:.0}/s with full database checks each time",
            report.token_verify_per_sec, report.token_verify_uncached_per_sec
        );
        println!(
            "token EdDSA:    {:.0}/s for the signature and claims alone (no database, one core)",
            report.token_signature_verify_per_sec
        );
        if let (Some(rows), Some(rate)) = (report.rotation_rows, report.rotation_rows_per_sec) {
            println!("contact rotation: {rows} rows = {rate:.0} rows/s (5,000 per transaction)");
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn request_id(s: &str) -> Result<privacy::RequestId> {
    privacy::RequestId::parse(s).ok_or_else(|| anyhow!("{s:?} is not a request id"))
}

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

async fn dsr_cmd(config: &Config, command: DsrCommand) -> Result<ExitCode> {
    use privacy::{RequestFilter, RequestKind, RequestStatus, SubjectRef};
    let store = open(config).await?;
    match command {
        DsrCommand::New {
            kind,
            user,
            email,
            received,
            deliver,
            json,
        } => {
            let delivery = privacy::CodeDelivery::parse(&deliver)
                .ok_or_else(|| anyhow!("unknown --deliver {deliver:?}: mail or manual"))?;
            let kind = RequestKind::parse(&kind).ok_or_else(|| {
                anyhow!("unknown type {kind:?}: access, portability, erasure or rectification")
            })?;
            let subject = match user {
                Some(u) => SubjectRef::Username(u),
                None => SubjectRef::Email(
                    sensitive_value(email, "subject's email")
                        .context("give --user, or --email (`-` for standard input)")?
                        .to_string(),
                ),
            };
            let (actor, ring) = unlock(config, &store).await?;
            let received = match received {
                None => Timestamp::now(),
                Some(d) => {
                    let day = chrono::NaiveDate::parse_from_str(&d, "%Y-%m-%d")
                        .with_context(|| format!("{d:?} is not a date (YYYY-MM-DD)"))?;
                    let t =
                        Timestamp::from(day.and_hms_opt(12, 0, 0).unwrap_or_default().and_utc());
                    if t > Timestamp::now() {
                        bail!("the received date is in the future");
                    }
                    t
                }
            };
            let created = privacy::create_at(
                &store,
                Some(&ring),
                &actor,
                kind,
                &subject,
                delivery,
                received,
            )
            .await?;
            // --- mail delivery (outbox): a mailed code is never shown to the officer ---
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
            // --- end mail delivery ---
        }
        DsrCommand::Verify { id, code, token } => {
            let id = request_id(&id)?;
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
        // --- mail delivery (outbox): a mailed request's new code is queued, not shown ---
        DsrCommand::Code { id, json } => {
            let (actor, ring) = unlock(config, &store).await?;
            let code = privacy::reissue_code(&store, Some(&ring), &actor, request_id(&id)?).await?;
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
        // --- end mail delivery ---
        DsrCommand::List {
            status,
            kind,
            overdue,
            due_soon,
            json,
        } => {
            let (actor, _) = sign_in(config, &store).await?;
            let filter = RequestFilter {
                status: status
                    .map(|s| {
                        RequestStatus::parse(&s).ok_or_else(|| anyhow!("unknown status {s:?}"))
                    })
                    .transpose()?,
                kind: kind
                    .map(|k| RequestKind::parse(&k).ok_or_else(|| anyhow!("unknown type {k:?}")))
                    .transpose()?,
                overdue,
                due_soon,
            };
            let rows = privacy::list(&store, &actor, &filter).await?;
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
        }
        DsrCommand::Show { id, json } => {
            let (actor, _) = sign_in(config, &store).await?;
            let d = privacy::show(&store, &actor, request_id(&id)?).await?;
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
        }
        DsrCommand::Run {
            id,
            out,
            comments,
            set,
            json,
        } => {
            let comments = privacy::CommentPolicy::parse(&comments)
                .ok_or_else(|| anyhow!("--comments is anonymise or delete"))?;
            let corrections = set
                .iter()
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
                .collect::<Result<Vec<_>>>()?;
            let (actor, ring) = unlock(config, &store).await?;
            let options = privacy::RunOptions {
                out_dir: Some(match out {
                    Some(d) => d,
                    None => std::env::current_dir()?,
                }),
                comments,
                corrections,
            };
            let bar = progress_bar(json);
            let outcome = privacy::run(
                &store,
                &ring,
                &actor,
                request_id(&id)?,
                &options,
                &mut |p| {
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
                },
            )
            .await;
            bar.finish_and_clear();
            let outcome = outcome?;
            if json {
                print_json(&outcome)?;
            }
            match &outcome {
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
                        println!(
                            "NOT completed: the subject's identifiers are still in the database:"
                        );
                        for h in &report.hits {
                            println!("  {} ({}): {}", h.place, h.identifier, h.count);
                        }
                        println!("remove them, then run the request again");
                    }
                    return Ok(ExitCode::from(1));
                }
                privacy::RunOutcome::Rectified { fields } => {
                    if !json {
                        println!("corrected: {}", fields.join(", "));
                    }
                }
            }
        }
        DsrCommand::Extend { id, months, reason } => {
            let (actor, _) = sign_in(config, &store).await?;
            let r = privacy::extend(&store, &actor, request_id(&id)?, months, &reason).await?;
            println!("due {} (extended)", r.due_at);
        }
        DsrCommand::Reject { id, reason } => {
            let (actor, _) = sign_in(config, &store).await?;
            privacy::reject(&store, &actor, request_id(&id)?, &reason).await?;
            println!("rejected");
        }
        DsrCommand::Withdraw { id, reason } => {
            let (actor, _) = sign_in(config, &store).await?;
            privacy::withdraw(&store, &actor, request_id(&id)?, &reason).await?;
            println!("withdrawn");
        }
        DsrCommand::Scan { user, json } => {
            let (actor, ring) = unlock(config, &store).await?;
            let ids = privacy::identifiers_of(
                &store,
                &ring,
                &actor,
                &privacy::SubjectRef::Username(user),
            )
            .await?;
            let report = privacy::residual_scan(&store, &ring, &actor, &ids).await?;
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
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn monitor_screen(
    config: &Config,
    file: Option<std::path::PathBuf>,
    blocklist: &[std::path::PathBuf],
    json: bool,
) -> Result<ExitCode> {
    use std::io::{BufRead, Write};
    use vigil::monitor::screen::Screener;
    let screener = Screener::from_config(&config.monitor, blocklist)?;
    let mut input = input(file.as_deref())?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(1 << 20, stdout.lock());
    if json {
        screener.screen_lines(&mut input, &mut out)?;
        return Ok(ExitCode::SUCCESS);
    }
    let (mut n, mut flagged) = (0u64, 0u64);
    let mut line = Vec::new();
    while {
        line.clear();
        input.read_until(b'\n', &mut line)? > 0
    } {
        n += 1;
        let f = screener.screen(String::from_utf8_lossy(&line).trim_end());
        let risky: Vec<String> = f
            .urls
            .iter()
            .filter(|u| u.verdict != vigil::monitor::screen::Verdict::Clean)
            .map(|u| {
                format!("{} ({:?}: {})", u.url, u.verdict, u.reasons.join(", ")).to_lowercase()
            })
            .collect();
        if !f.categories.is_empty() || !risky.is_empty() {
            flagged += 1;
            let mut parts = f.categories.clone();
            parts.extend(risky);
            writeln!(out, "line {n}: {}", parts.join("; "))?;
        }
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

async fn activity_cmd(config: &Config, command: ActivityCommand) -> Result<ExitCode> {
    let ActivityCommand::Ingest { file, json } = command;
    let store = open(config).await?;
    let (actor, ring) = unlock(config, &store).await?;
    let report = monitor::ingest_reader(&store, &ring, &actor, input(file.as_deref())?).await?;
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

async fn monitor_run(config: &Config, json: bool) -> Result<ExitCode> {
    let screener = monitor::screen::Screener::from_config(&config.monitor, &[])?;
    let store = open(config).await?;
    let (actor, ring) = unlock(config, &store).await?;
    let report = monitor::run(&store, &ring, &actor, &config.monitor.policy, &screener).await?;
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
    }
    Ok(ExitCode::SUCCESS)
}

fn parse_opt<T>(
    v: Option<&str>,
    what: &str,
    parse: impl Fn(&str) -> Option<T>,
) -> Result<Option<T>> {
    v.map(|s| parse(s).ok_or_else(|| anyhow!("unknown {what} {s:?}")))
        .transpose()
}

async fn incidents_cmd(config: &Config, command: IncidentsCommand) -> Result<ExitCode> {
    use vigil::incidents::{self, Action, IncidentKind, IncidentStatus, QueueFilter, Severity};
    let store = open(config).await?;
    let (actor, _) = sign_in(config, &store).await?;
    match command {
        IncidentsCommand::List {
            status,
            severity,
            kind,
            mine,
            json,
        } => {
            let filter = QueueFilter {
                status: parse_opt(status.as_deref(), "status", IncidentStatus::parse)?,
                severity: parse_opt(severity.as_deref(), "severity", Severity::parse)?,
                kind: parse_opt(kind.as_deref(), "kind", IncidentKind::parse)?,
                mine,
                limit: None,
            };
            let rows = incidents::list(&store, &actor, &filter).await?;
            if json {
                print_json(&rows)?;
            } else {
                for i in &rows {
                    println!(
                        "{}  {:<8}  {:<13}  {:<20}  {:<16}  {}  {}",
                        i.id,
                        i.severity.as_str(),
                        i.status.as_str(),
                        i.kind.as_str(),
                        i.username.as_deref().unwrap_or("-"),
                        i.created_at,
                        i.summary
                    );
                }
                println!("{} incidents", rows.len());
            }
        }
        IncidentsCommand::Show { id, json } => {
            let d = incidents::show(&store, &actor, &id).await?;
            if json {
                print_json(&d)?;
            } else {
                let i = &d.incident;
                println!("incident {}", i.id);
                println!("  kind      {}", i.kind.as_str());
                println!("  severity  {}", i.severity.as_str());
                println!("  status    {}", i.status.as_str());
                println!(
                    "  account   {} ({})",
                    i.username.as_deref().unwrap_or("-"),
                    d.account_status.as_deref().unwrap_or("-")
                );
                println!("  assignee  {}", i.assignee.as_deref().unwrap_or("-"));
                println!("  summary   {}", i.summary);
                println!("rules:");
                for (rule, n) in &d.rules {
                    println!("  {rule} x{n}");
                }
                println!("activity ({}):", d.activity.len());
                for a in &d.activity {
                    println!(
                        "  {} {} {:<8} {:<7} {:<3} {}",
                        if a.evidence { "*" } else { " " },
                        a.at,
                        a.kind,
                        a.outcome,
                        a.country.as_deref().unwrap_or("-"),
                        a.username.as_deref().unwrap_or("(unknown account)")
                    );
                }
                for c in &d.comments {
                    println!(
                        "comment {}: {}",
                        c.id,
                        c.text.as_deref().unwrap_or(if c.private {
                            "(end-to-end encrypted)"
                        } else {
                            "(removed)"
                        })
                    );
                }
                for b in &d.blocks {
                    println!(
                        "block {}  {}  {}  until {}",
                        b.id,
                        b.ip,
                        b.state,
                        b.expires_at
                            .map(|t| t.to_rfc3339())
                            .unwrap_or("lifted by hand".into())
                    );
                }
                for r in &d.restrictions {
                    println!(
                        "restriction {}  {}  {}  until {}",
                        r.id,
                        r.kind,
                        r.state,
                        r.expires_at
                            .map(|t| t.to_rfc3339())
                            .unwrap_or("lifted by hand".into())
                    );
                }
                println!("timeline:");
                for t in &d.timeline {
                    println!(
                        "  {}  {:<18} {}{}",
                        t.at,
                        t.action,
                        if t.automated {
                            "automatic".to_owned()
                        } else {
                            t.actor.clone().unwrap_or_default()
                        },
                        t.reversed_at
                            .map(|r| format!("  (reversed {r})"))
                            .unwrap_or_default()
                    );
                }
            }
        }
        IncidentsCommand::Act { id, action, reason } => {
            let action = Action::parse(&action)?;
            incidents::act(&store, &actor, &id, &action, reason.as_deref()).await?;
            println!("{}: {}", id.trim(), action.name());
        }
        IncidentsCommand::Feedback(j) => {
            let rows = incidents::rule_feedback(&store, &actor).await?;
            if j.json {
                print_json(&rows)?;
            } else {
                for (rule, n) in &rows {
                    println!("{n:>6}  {rule}");
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn charts_cmd(
    config: &Config,
    out: &std::path::Path,
    days: u32,
    png: bool,
) -> Result<ExitCode> {
    use vigil::analytics::{self, ChartKind, Period};
    let period = Period::from_days(days).ok_or_else(|| anyhow!("--days must be 7, 30 or 90"))?;
    let store = open(config).await?;
    let (actor, _) = sign_in(config, &store).await?;
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    for kind in ChartKind::ALL {
        let data = match analytics::chart_data(&store, &actor, kind, period, Timestamp::now()).await
        {
            Ok(d) => d,
            Err(analytics::AnalyticsError::Forbidden(e)) => {
                eprintln!("{}: skipped ({e})", kind.as_str());
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        let (bytes, ext) = if png {
            (analytics::render_png(&data, 1200, 600)?, "png")
        } else {
            (analytics::render_svg(&data, 1200, 600)?.into_bytes(), "svg")
        };
        let path = out.join(format!("{}-{days}d.{ext}", kind.as_str()));
        std::fs::write(&path, bytes).with_context(|| format!("cannot write {}", path.display()))?;
        println!("{}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}

async fn blocks_cmd(config: &Config, command: BlocksCommand) -> Result<ExitCode> {
    use vigil::incidents;
    let store = open(config).await?;
    let (actor, _) = sign_in(config, &store).await?;
    match command {
        BlocksCommand::List { all, json } => {
            let rows = incidents::blocks(&store, &actor, all).await?;
            if json {
                print_json(&rows)?;
            } else {
                for b in &rows {
                    println!(
                        "{}  {:<39}  {:<7}  until {:<27}  {}",
                        b.id,
                        b.ip,
                        b.state,
                        b.expires_at
                            .map(|t| t.to_rfc3339())
                            .unwrap_or_else(|| "lifted by hand".into()),
                        b.reason
                    );
                }
            }
        }
        BlocksCommand::Add { ip, hours, reason } => {
            let ip = sensitive_value(ip, "IP address to block")?;
            let id = incidents::block(&store, &actor, &ip, hours, &reason).await?;
            println!("blocked: {id}");
        }
        BlocksCommand::Remove { which } => {
            let which = sensitive_value(which, "block id or IP address")?;
            let n = incidents::unblock(&store, &actor, &which).await?;
            println!("lifted {n} block(s)");
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn hold_cmd(config: &Config, command: HoldCommand) -> Result<ExitCode> {
    use privacy::holds::{self, HoldTarget};
    let store = open(config).await?;
    let (actor, _) = sign_in(config, &store).await?;
    match command {
        HoldCommand::List { all, json } => {
            let rows = holds::list(&store, &actor, all).await?;
            if json {
                print_json(&rows)?;
            } else {
                for h in &rows {
                    println!(
                        "{}  {} {}  {}  {}{}",
                        h.id,
                        h.target_kind,
                        h.target_name.as_deref().unwrap_or(&h.target_id),
                        h.created_at,
                        h.reason,
                        if h.released_at.is_some() {
                            "  (released)"
                        } else {
                            ""
                        }
                    );
                }
            }
        }
        HoldCommand::Place {
            user,
            incident,
            reason,
        } => {
            let target = match (user, incident) {
                (Some(u), _) => HoldTarget::User(u),
                (None, Some(i)) => HoldTarget::Incident(
                    uuid::Uuid::parse_str(&i)
                        .map_err(|_| anyhow!("{i:?} is not an incident id"))?,
                ),
                (None, None) => bail!("give --user or --incident"),
            };
            let h = holds::place(&store, &actor, &target, &reason).await?;
            println!("hold {} placed", h.id);
        }
        HoldCommand::Release { id } => {
            let id = uuid::Uuid::parse_str(&id).map_err(|_| anyhow!("{id:?} is not a hold id"))?;
            holds::release(&store, &actor, id).await?;
            println!("released");
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn progress_bar(quiet: bool) -> ProgressBar {
    if quiet || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("{msg:>9} [{bar:40}] {pos}/{len} ({eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar
}

fn show(bar: &ProgressBar, p: SeedProgress) {
    bar.set_message(p.phase);
    bar.set_length(p.total);
    bar.set_position(p.done);
}

fn parse_since(s: &str) -> Result<Timestamp> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Ok(Timestamp::from(t.with_timezone(&chrono::Utc)));
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        let t = d.and_hms_opt(0, 0, 0).expect("midnight exists").and_utc();
        return Ok(Timestamp::from(t));
    }
    let (num, unit) = s.split_at(s.len().saturating_sub(1));
    let n: i64 = num
        .parse()
        .map_err(|_| anyhow!("--since: expected RFC 3339, YYYY-MM-DD, or an age like 24h or 7d"))?;
    let micros = match unit {
        "m" => n * 60_000_000,
        "h" => n * 3_600_000_000,
        "d" => n * 86_400_000_000,
        _ => bail!("--since: expected RFC 3339, YYYY-MM-DD, or an age like 24h or 7d"),
    };
    Ok(Timestamp::from_micros(Timestamp::now().micros() - micros))
}

fn print_live(v: &Verification) {
    match v {
        Verification::Ok { entries, .. } => println!("ok: {entries} entries"),
        Verification::Broken { seq, fault, .. } => println!("broken: seq {seq}: {fault}"),
    }
}

fn print_json<T: serde::Serialize>(v: &T) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}
