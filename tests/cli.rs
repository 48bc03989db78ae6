//! The `vigil` command line, run as a user would: exit codes, messages, and the foundation's
//! acceptance flow (init, demo seed, audit verify, tamper, verify again).

mod common;
#[path = "common/smtp.rs"]
mod smtp;

use std::process::{Command, Output};

use common::PASSWORD;

struct Cli {
    url: String,
    /// This "machine's" keystore: a file keystore in a private folder.
    keys: tempfile::TempDir,
    _dir: Option<tempfile::TempDir>,
}

impl Cli {
    fn sqlite() -> Self {
        let dir = tempfile::tempdir().unwrap();
        Self {
            url: format!("sqlite://{}/vigil.db", dir.path().display()),
            keys: tempfile::tempdir().unwrap(),
            _dir: Some(dir),
        }
    }

    async fn postgres() -> Self {
        Self {
            url: common::postgres_url().await,
            keys: tempfile::tempdir().unwrap(),
            _dir: None,
        }
    }

    /// `vigil ARGS` as the administrator, on this database and keystore, with a clean
    /// environment.
    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_vigil"));
        cmd.args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", std::env::temp_dir())
            .env("VIGIL_DATABASE_URL", &self.url)
            .env(
                "VIGIL_KEYSTORE",
                format!("file:{}", self.keys.path().join("ks").display()),
            )
            .env("VIGIL_USERNAME", "root-admin")
            .env("VIGIL_PASSWORD", PASSWORD)
            // Tests not about the MFA policy run without it; those about it set their own.
            .env("VIGIL_REQUIRE_MFA", "none");
        cmd
    }

    fn run(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut cmd = self.command(args);
        cmd.stdin(std::process::Stdio::null());
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output().unwrap()
    }

    fn ok(&self, args: &[&str], env: &[(&str, &str)]) -> String {
        let out = self.run(args, env);
        assert!(
            out.status.success(),
            "vigil {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

const ADMIN_PW: (&str, &str) = ("VIGIL_ADMIN_PASSWORD", PASSWORD);

async fn acceptance_flow(cli: &Cli) {
    let out = cli.ok(&["init", "--admin", "root-admin"], &[ADMIN_PW]);
    assert!(out.contains("administrator root-admin"), "{out}");
    // On Postgres (team mode) init also makes the administrator's database login, shown once
    // and audited: one more entry in the chain.
    let team = cli.url.starts_with("postgres");
    assert_eq!(out.contains("database user:"), team, "{out}");

    // A second init fails clearly and changes nothing.
    let again = cli.run(&["init", "--admin", "someone-else"], &[ADMIN_PW]);
    assert_eq!(again.status.code(), Some(1));
    assert!(text(&again.stderr).contains("already initialised"));

    let out = cli.ok(
        &[
            "demo",
            "seed",
            "--users",
            "50",
            "--comments",
            "500",
            "--seed",
            "7",
        ],
        &[],
    );
    assert!(
        out.contains("50 users") && out.contains("500 comments"),
        "{out}"
    );
    let entries = if team { 5 } else { 4 };
    assert_eq!(
        cli.ok(&["audit", "verify"], &[]).trim(),
        format!("ok: {entries} entries")
    );

    let listed = cli.ok(&["audit", "list", "--json", "--action", "demo.seeded"], &[]);
    let entries: serde_json::Value = serde_json::from_str(&listed).unwrap();
    assert_eq!(entries.as_array().unwrap().len(), 1);
    let by_actor = cli.ok(
        &["audit", "list", "--actor", "root-admin", "--since", "1d"],
        &[],
    );
    assert!(by_actor.contains("demo.seeded") && !by_actor.contains("operator.bootstrapped"));
}

async fn tamper(url: &str, sql: &str) {
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(url).await.unwrap();
    sqlx::query(sql).execute(&pool).await.unwrap();
    pool.close().await;
}

#[tokio::test]
async fn acceptance_on_sqlite_then_tampering_names_the_seq() {
    let cli = Cli::sqlite();
    acceptance_flow(&cli).await;
    tamper(
        &cli.url,
        "UPDATE audit_log SET target = 'user:someone' WHERE seq = 2",
    )
    .await;
    let out = cli.run(&["audit", "verify"], &[]);
    assert_eq!(out.status.code(), Some(1));
    let shown = text(&out.stdout);
    assert!(shown.contains("seq 2"), "{shown}");
    let json = cli.run(&["audit", "verify", "--json"], &[]);
    assert_eq!(json.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(v["result"], "broken");
    assert_eq!(v["seq"], 2);
}

#[tokio::test]
async fn acceptance_on_postgres() {
    let cli = Cli::postgres().await;
    acceptance_flow(&cli).await;
    tamper(
        &cli.url,
        "UPDATE audit_log SET details = '{}' WHERE seq = 3",
    )
    .await;
    let out = cli.run(&["audit", "verify"], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stdout).contains("seq 3"));
}

#[test]
fn usage_errors_exit_2_and_failures_exit_1() {
    let cli = Cli::sqlite();
    assert_eq!(cli.run(&["bogus"], &[]).status.code(), Some(2));
    assert_eq!(
        cli.run(&["demo", "seed", "--users", "many"], &[])
            .status
            .code(),
        Some(2)
    );
    assert_eq!(
        cli.run(&["audit", "list", "--limit", "0"], &[])
            .status
            .code(),
        Some(2)
    );

    // Before init, signed-in commands say what to do first.
    let out = cli.run(&["audit", "verify"], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("vigil init"),
        "{}",
        text(&out.stderr)
    );

    // No password and no terminal: a clear failure, nothing created.
    let out = cli.run(&["init", "--admin", "root-admin"], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("VIGIL_ADMIN_PASSWORD"));
    // A weak password is refused without echoing it.
    let out = cli.run(
        &["init", "--admin", "root-admin"],
        &[("VIGIL_ADMIN_PASSWORD", "tiny")],
    );
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("at least 12"), "{err}");
    assert!(!err.contains("tiny"));

    cli.ok(&["init", "--admin", "root-admin"], &[ADMIN_PW]);
    // Wrong credentials: exit 1, the generic message, no password echoed, no stack trace.
    let out = cli.run(
        &["audit", "verify"],
        &[("VIGIL_PASSWORD", "wrong password 123")],
    );
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("invalid username or password"), "{err}");
    assert!(!err.contains("wrong password 123") && !err.contains("panicked"));
    // Not signed in at all.
    let out = cli.run(&["audit", "list"], &[("VIGIL_USERNAME", "")]);
    assert_eq!(out.status.code(), Some(1));
}

/// A detector shard count outside 1 to 64 in the config file is refused by name, before
/// anything runs.
#[test]
fn a_shard_count_outside_1_to_64_is_refused() {
    let cli = Cli::sqlite();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    for bad in ["0", "65"] {
        std::fs::write(&config, format!("[monitor]\nshards = {bad}\n")).unwrap();
        let mut cmd = cli.command(&["monitor", "run"]);
        let out = cmd.env("VIGIL_CONFIG", &config).output().unwrap();
        assert_eq!(out.status.code(), Some(1));
        let err = text(&out.stderr);
        assert!(
            err.contains("expected a number of shards from 1 to 64 (`[monitor] shards`), not")
                && err.contains(bad),
            "{err}"
        );
    }
    std::fs::write(&config, "[monitor]\nshards = 4\n").unwrap();
    let mut cmd = cli.command(&["config", "show"]);
    let out = cmd.env("VIGIL_CONFIG", &config).output().unwrap();
    assert!(
        text(&out.stdout).contains("monitor.shards: 4"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn config_show_redacts_the_database_password() {
    let cli = Cli::sqlite();
    let out = cli.run(
        &["config", "show", "--json"],
        &[
            (
                "VIGIL_DATABASE_URL",
                "postgres://vigil:s3cret-pw@db.internal/vigil",
            ),
            ("VIGIL_KEYSTORE", "os"),
        ],
    );
    assert!(out.status.success());
    let shown = text(&out.stdout);
    assert!(!shown.contains("s3cret-pw"), "{shown}");
    assert!(
        shown.contains("postgres://vigil:***@db.internal/vigil"),
        "{shown}"
    );
    let v: serde_json::Value = serde_json::from_str(&shown).unwrap();
    assert_eq!(v["keystore"]["kind"], "os");
    assert_eq!(v["monitor"]["max_line_bytes"], 65536);
    assert_eq!(v["monitor"]["shards"], 1);

    // The text form shows every section too.
    let human = cli.ok(&["config", "show"], &[]);
    for key in [
        "database.url:",
        "keystore:",
        "rsa_bits:",
        "auth.require_mfa:",
        "retention.archive_dir:",
        "retention.chunk:",
        "worker.monitor_interval_secs:",
        "worker.retention_interval_hours:",
        "monitor.blocklist:",
        "monitor.rules:",
        "monitor.max_line_bytes: 65536",
        "monitor.shards: 1",
        "monitor.policy:",
        "platform.token_issuer:",
        "platform.token_keys:",
    ] {
        assert!(human.contains(key), "{key} missing: {human}");
    }
}

#[test]
fn keystore_check_explains_a_missing_keychain_and_works_with_files() {
    let cli = Cli::sqlite();
    // No session bus: no Secret Service. The message names the way out and does not fall back.
    let out = cli.run(
        &["keystore", "check"],
        &[
            ("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent/bus"),
            ("VIGIL_KEYSTORE", "os"),
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("no usable OS keychain"), "{err}");
    assert!(err.contains("VIGIL_KEYSTORE=file:"), "{err}");

    let dir = tempfile::tempdir().unwrap();
    let ks = format!("file:{}/keys", dir.path().display());
    let out = cli.ok(&["keystore", "check"], &[("VIGIL_KEYSTORE", &ks)]);
    assert!(out.starts_with("ok: file keystore"), "{out}");
}

/// What a demo email, phone or IPv6 address looks like in plaintext.
const PLAINTEXT_PII: &[&[u8]] = &[
    b"@example.com",
    b"@example.org",
    b"@example.net",
    b"@mail.example",
    b"@post.example",
    b"+1-555-",
    b"2001:db8:",
];

fn find(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// One platform username, to show a scan would see plaintext if there were any.
async fn some_username(url: &str) -> String {
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(url).await.unwrap();
    let name: String =
        sqlx::query_scalar("SELECT username FROM users WHERE kind = 'platform' ORDER BY id")
            .fetch_one(&pool)
            .await
            .unwrap();
    pool.close().await;
    name
}

fn seed_small(cli: &Cli) {
    cli.ok(&["init", "--admin", "root-admin"], &[ADMIN_PW]);
    cli.ok(
        &["demo", "seed", "--users", "200", "--comments", "200"],
        &[],
    );
}

#[tokio::test]
async fn no_email_phone_or_ip_in_plaintext_in_the_sqlite_file_or_its_log() {
    let cli = Cli::sqlite();
    seed_small(&cli);
    let path = cli.url.trim_start_matches("sqlite://").to_owned();
    let mut bytes = std::fs::read(&path).unwrap();
    if let Ok(wal) = std::fs::read(format!("{path}-wal")) {
        bytes.extend(wal);
    }
    let username = some_username(&cli.url).await;
    assert!(
        find(&bytes, username.as_bytes()),
        "the scan sees plaintext columns"
    );
    for pattern in PLAINTEXT_PII {
        assert!(
            !find(&bytes, pattern),
            "{} found in the database file",
            String::from_utf8_lossy(pattern)
        );
    }
}

#[tokio::test]
async fn no_email_phone_or_ip_in_plaintext_in_a_postgres_dump() {
    let cli = Cli::postgres().await;
    seed_small(&cli);
    let pg_dump = ["/usr/lib/postgresql/15/bin/pg_dump", "pg_dump"]
        .into_iter()
        .find(|p| Command::new(p).arg("--version").output().is_ok())
        .expect("pg_dump");
    let dump = Command::new(pg_dump)
        .args(["--data-only", "--inserts", &cli.url])
        .output()
        .unwrap();
    assert!(dump.status.success(), "{}", text(&dump.stderr));
    let username = some_username(&cli.url).await;
    assert!(find(&dump.stdout, username.as_bytes()));
    for pattern in PLAINTEXT_PII {
        assert!(
            !find(&dump.stdout, pattern),
            "{} found in pg_dump",
            String::from_utf8_lossy(pattern)
        );
    }
}

#[tokio::test]
async fn a_rotation_killed_mid_run_resumes_and_every_row_opens() {
    use std::io::BufRead;
    let cli = Cli::sqlite();
    cli.ok(&["init", "--admin", "root-admin"], &[ADMIN_PW]);
    cli.ok(
        &["demo", "seed", "--users", "2000", "--comments", "10000"],
        &[],
    );
    // Platform rows only: every command-line call adds its own sign-in to the activity log.
    let counts = "SELECT (SELECT COUNT(*) FROM users) || '/' || \
                  (SELECT COUNT(*) FROM activity_log WHERE kind <> 'vigil_login')";
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&cli.url).await.unwrap();
    let before: String = sqlx::query_scalar(counts).fetch_one(&pool).await.unwrap();

    // Kill -9 the rotation after its first committed chunk, somewhere inside a later one.
    let mut cmd = cli.command(&["keys", "rotate", "contact", "--json", "--chunk", "500"]);
    cmd.stdout(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    assert!(first.starts_with("{\"progress\""), "{first}");
    child.kill().unwrap();
    child.wait().unwrap();

    let status: serde_json::Value =
        serde_json::from_str(&cli.ok(&["keys", "status", "--json"], &[])).unwrap();
    let pii = &status["purposes"].as_array().unwrap()[0];
    assert_eq!(pii["purpose"], "contact");
    assert_eq!(pii["rotation"]["to"], 2, "{pii}");
    assert!(pii["rotation"]["rows_left"].as_i64().unwrap() > 0, "{pii}");

    let out = cli.ok(&["keys", "rotate", "contact", "--json"], &[]);
    let done: serde_json::Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    assert_eq!(done["done"]["retired"], serde_json::json!([1]), "{out}");
    let after: String = sqlx::query_scalar(counts).fetch_one(&pool).await.unwrap();
    assert_eq!(before, after, "no row lost or added");
    let stale: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM users WHERE contact_key_version <> 2 OR pii_key_version IS NOT NULL",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(stale, 0);
    pool.close().await;

    // Every sealed field opens with the new version, from this machine's keystore.
    use vigil::keys::keystore::FileKeystore;
    use vigil::store::{DatabaseUrl, Store, StoreOptions};
    let store = Store::open(
        &DatabaseUrl::parse(&cli.url).unwrap(),
        &StoreOptions::default(),
    )
    .await
    .unwrap();
    let ks = FileKeystore::open(&cli.keys.path().join("ks")).unwrap();
    let admin = vigil::auth::authenticate(
        &store,
        "root-admin",
        PASSWORD,
        &vigil::auth::MfaPolicy::none(),
    )
    .await
    .unwrap();
    let ring = vigil::keys::unlock(&store, &ks, &admin, PASSWORD)
        .await
        .unwrap();
    for id in vigil::platform::sample_user_ids(&store, 2000)
        .await
        .unwrap()
    {
        assert!(vigil::platform::user_email(&store, &ring, id)
            .await
            .unwrap()
            .is_some());
    }
    let status: serde_json::Value =
        serde_json::from_str(&cli.ok(&["keys", "status", "--json"], &[])).unwrap();
    assert!(status["purposes"][0]["rotation"].is_null());
    assert_eq!(status["purposes"][0]["current"], 2);
}

#[test]
fn mfa_enrolment_by_qr_then_sign_in_needs_a_code() {
    let cli = Cli::sqlite();
    cli.ok(&["init", "--admin", "root-admin"], &[ADMIN_PW]);
    let png = cli.keys.path().join("qr.png");
    let out = cli.ok(
        &["mfa", "enroll", "--json", "--qr-png", png.to_str().unwrap()],
        &[],
    );
    let e: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(e["uri"]
        .as_str()
        .unwrap()
        .starts_with("otpauth://totp/Vigil:root-admin?"));
    assert!(e["qr_svg"].as_str().unwrap().contains("<svg"));
    assert_eq!(&std::fs::read(&png).unwrap()[..4], b"\x89PNG");
    let secret = totp_rs::Secret::Encoded(e["secret_base32"].as_str().unwrap().into())
        .to_bytes()
        .unwrap();
    let step = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        / 30;
    let wrong = cli.run(&["mfa", "confirm", "000000"], &[]);
    assert_eq!(wrong.status.code(), Some(1));
    assert!(text(&wrong.stderr).contains("invalid code"));
    // Without a terminal, a left-out code is a clear error (never a hang on a prompt).
    let missing = cli.run(&["mfa", "confirm"], &[]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(
        text(&missing.stderr).contains("no authenticator code given"),
        "{}",
        text(&missing.stderr)
    );
    // The code from standard input (`-`), so it is not in the process list.
    let confirmed = cli.run_with_stdin(
        &["mfa", "confirm", "-", "--json"],
        &format!("{}\n", vigil::mfa::code_at(&secret, step, 6)),
    );
    assert!(confirmed.status.success(), "{}", text(&confirmed.stderr));
    let codes: serde_json::Value = serde_json::from_str(&text(&confirmed.stdout)).unwrap();
    let codes: Vec<String> = codes["backup_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(codes.len(), 10);

    // From now on the password alone is not enough.
    let out = cli.run(&["audit", "verify"], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("VIGIL_TOTP"),
        "{}",
        text(&out.stderr)
    );
    let with_code = [("VIGIL_TOTP", codes[0].as_str())];
    assert!(cli.ok(&["audit", "verify"], &with_code).starts_with("ok:"));
    let again = cli.run(&["audit", "verify"], &with_code);
    assert_eq!(again.status.code(), Some(1), "a backup code works once");
    assert!(
        text(&again.stderr).contains("invalid code"),
        "{}",
        text(&again.stderr)
    );
}

impl Cli {
    fn run_with_stdin(&self, args: &[&str], input: &str) -> Output {
        use std::io::Write;
        let mut cmd = self.command(args);
        cmd.stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    }
}

#[test]
fn tokens_through_the_command_line() {
    let cli = Cli::sqlite();
    cli.ok(&["init", "--admin", "root-admin"], &[ADMIN_PW]);
    let who: serde_json::Value = serde_json::from_str(&cli.ok(&["whoami", "--json"], &[])).unwrap();
    assert_eq!(who["username"], "root-admin");
    assert_eq!(who["roles"], serde_json::json!(["admin"]));
    assert!(who["key_pair"].as_str().unwrap().len() == 64);

    let token = cli.ok(&["token", "show"], &[]).trim().to_owned();
    let ok = cli.run_with_stdin(&["token", "verify"], &token);
    assert_eq!(ok.status.code(), Some(0), "{}", text(&ok.stderr));
    let claims: serde_json::Value = serde_json::from_slice(&ok.stdout).unwrap();
    assert_eq!(claims["sub"], who["user_id"]);

    let parts: Vec<&str> = token.split('.').collect();
    let none = format!("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{}.", parts[1]);
    let flipped = format!("{}.{}.{}x", parts[0], parts[1], parts[2]);
    for (bad, why) in [
        (none.as_str(), "algorithm"),
        (flipped.as_str(), "signature"),
        (&token[..token.len() / 2], ""),
        ("", "malformed"),
    ] {
        let out = cli.run_with_stdin(&["token", "verify"], bad);
        assert_eq!(out.status.code(), Some(1), "{bad}");
        let err = text(&out.stderr);
        assert!(err.starts_with("invalid: ") && err.contains(why), "{err}");
    }

    // A session for this shell, then ended.
    let out = cli.run(&["login"], &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("signed in as root-admin"));
    let session = text(&out.stdout)
        .trim()
        .strip_prefix("export VIGIL_SESSION=")
        .unwrap()
        .to_owned();
    let in_session = [("VIGIL_SESSION", session.as_str())];
    assert!(cli.ok(&["logout"], &in_session).contains("signed out"));
    assert!(cli.ok(&["logout"], &[]).contains("no session"));
    assert!(cli.ok(&["logout", "--all"], &[]).contains("session(s)"));
    let after = cli.run_with_stdin(&["token", "verify"], &token);
    assert_eq!(
        after.status.code(),
        Some(1),
        "logout --all revoked the token's session"
    );
}

#[test]
fn operator_accounts_through_the_command_line() {
    let cli = Cli::sqlite();
    cli.ok(&["init", "--admin", "root-admin"], &[ADMIN_PW]);
    let new_pw = ("VIGIL_NEW_PASSWORD", "temporary passphrase 9");
    let out = cli.ok(
        &[
            "user",
            "create",
            "bob-officer",
            "--role",
            "compliance_officer",
        ],
        &[new_pw],
    );
    assert!(out.contains("created bob-officer"), "{out}");
    let bad = cli.run(&["user", "create", "eve", "--role", "wizard"], &[new_pw]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(text(&bad.stderr).contains("expected user, moderator"));
    let listed: serde_json::Value = serde_json::from_str(&cli.ok(
        &["user", "list", "--role", "compliance_officer", "--json"],
        &[],
    ))
    .unwrap();
    assert_eq!(listed[0]["username"], "bob-officer");
    assert_eq!(listed[0]["must_change_password"], true);

    let as_bob = [
        ("VIGIL_USERNAME", "bob-officer"),
        ("VIGIL_PASSWORD", "temporary passphrase 9"),
    ];
    // The temporary password must be changed before anything else.
    let first = cli.run(&["whoami"], &as_bob);
    assert_eq!(first.status.code(), Some(1));
    assert!(
        text(&first.stderr).contains("vigil passwd"),
        "{}",
        text(&first.stderr)
    );
    // A new account's first password was set at its creation, not reset.
    assert!(
        text(&first.stderr).contains("set by an administrator when it was created")
            && !text(&first.stderr).contains("reset"),
        "{}",
        text(&first.stderr)
    );
    cli.ok(
        &["passwd"],
        &[
            ("VIGIL_USERNAME", "bob-officer"),
            ("VIGIL_PASSWORD", "temporary passphrase 9"),
            ("VIGIL_NEW_PASSWORD", "bob's own long passphrase"),
        ],
    );
    let as_bob = [
        ("VIGIL_USERNAME", "bob-officer"),
        ("VIGIL_PASSWORD", "bob's own long passphrase"),
    ];
    let who: serde_json::Value =
        serde_json::from_str(&cli.ok(&["whoami", "--json"], &as_bob)).unwrap();
    assert_eq!(who["roles"], serde_json::json!(["compliance_officer"]));
    assert_eq!(who["must_change_password"], false);
    cli.ok(
        &["user", "set-role", "bob-officer", "--role", "moderator"],
        &[],
    );
    cli.ok(&["user", "suspend", "bob-officer"], &[]);
    let refused = cli.run(&["whoami"], &as_bob);
    assert_eq!(refused.status.code(), Some(1));
    assert!(text(&refused.stderr).contains("suspended"));
    cli.ok(&["user", "unsuspend", "bob-officer"], &[]);
    let who: serde_json::Value =
        serde_json::from_str(&cli.ok(&["whoami", "--json"], &as_bob)).unwrap();
    assert_eq!(who["roles"], serde_json::json!(["moderator"]));
    // A moderator may look accounts up but not manage them.
    cli.ok(&["user", "show", "root-admin"], &as_bob);
    let denied = cli.run(&["user", "suspend", "root-admin"], &as_bob);
    assert_eq!(denied.status.code(), Some(1));
    assert!(
        text(&denied.stderr).contains("users.manage")
            || text(&denied.stderr).contains("permission"),
        "{}",
        text(&denied.stderr)
    );
    let sessions = cli.ok(&["sessions", "list", "--all", "--json"], &[]);
    assert!(serde_json::from_str::<serde_json::Value>(&sessions)
        .unwrap()
        .is_array());
    // A well-formed id of no session is a failure that says so (exit 1), not a usage error.
    let none = cli.run(
        &["sessions", "revoke", "0193a0c4-0000-7000-8000-000000000000"],
        &[],
    );
    assert_eq!(none.status.code(), Some(1));
    assert!(
        text(&none.stderr).contains("no session with that id"),
        "{}",
        text(&none.stderr)
    );
}

// Multi-threaded: the test's SMTP server answers while the test waits for a `vigil` process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_erasure_killed_mid_run_resumes_and_completes() {
    use std::io::BufRead;
    let cli = Cli::sqlite();
    seed_small(&cli);
    cli.ok(
        &[
            "user",
            "set-role",
            "root-admin",
            "--role",
            "admin",
            "--role",
            "compliance_officer",
        ],
        &[],
    );
    let subject = some_username(&cli.url).await;
    let created: serde_json::Value = serde_json::from_str(&cli.ok(
        &[
            "dsr", "new", "--type", "erasure", "--user", &subject, "--json",
        ],
        &[],
    ))
    .unwrap();
    let id = created["id"].as_str().unwrap().to_owned();
    // The code goes to the subject's address by mail; the officer never sees it.
    assert!(created.get("verification_code").is_none(), "{created}");
    let server = smtp::SmtpServer::start().await;
    let port = server.addr.port().to_string();
    let ca = server.ca_file.to_str().unwrap().to_owned();
    let mail_env = [
        ("VIGIL_MAIL_HOST", "localhost"),
        ("VIGIL_MAIL_PORT", port.as_str()),
        ("VIGIL_MAIL_FROM", "Vigil <vigil@vigil.example>"),
        ("VIGIL_MAIL_CA_FILE", ca.as_str()),
    ];
    let tested = cli.ok(&["mail", "test", "someone@mail.example"], &mail_env);
    assert!(tested.contains("250"), "{tested}");
    // `none` is refused for a host that is not this machine.
    let refused = cli.run(
        &["mail", "test", "someone@mail.example"],
        &[
            ("VIGIL_MAIL_HOST", "mail.example"),
            ("VIGIL_MAIL_SECURITY", "none"),
        ],
    );
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        text(&refused.stderr).contains("loopback")
            || text(&refused.stderr).contains("this machine")
    );
    let listed: serde_json::Value =
        serde_json::from_str(&cli.ok(&["outbox", "list", "--state", "queued", "--json"], &[]))
            .unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
    assert_eq!(listed[0]["kind"], "dsr_code");
    let delivered: serde_json::Value =
        serde_json::from_str(&cli.ok(&["outbox", "deliver", "--json"], &mail_env)).unwrap();
    assert_eq!(delivered["sent"], 1, "{delivered}");
    let got = server.received();
    assert_eq!(got.len(), 2);
    let code = got[1].code().expect("the code in the message");
    // Unverified: refused, exit 1.
    let out = cli.run(&["dsr", "run", &id], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("not verified"),
        "{}",
        text(&out.stderr)
    );
    // The code from standard input, not the command line.
    let verified = cli.run_with_stdin(&["dsr", "verify", &id, "--code", "-"], &format!("{code}\n"));
    assert!(verified.status.success(), "{}", text(&verified.stderr));

    // Kill -9 as soon as the first step reports.
    let mut cmd = cli.command(&["dsr", "run", &id, "--json"]);
    cmd.stdout(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    assert!(first.contains("\"revoke_sessions\""), "{first}");
    child.kill().unwrap();
    child.wait().unwrap();
    let shown: serde_json::Value =
        serde_json::from_str(&cli.ok(&["dsr", "show", &id, "--json"], &[])).unwrap();
    assert_eq!(shown["request"]["status"], "in_progress");

    let out = cli.ok(&["dsr", "run", &id, "--json"], &[]);
    let outcome: serde_json::Value =
        serde_json::from_str(&out[out.find("{\n").expect("the outcome as JSON")..]).unwrap();
    assert_eq!(outcome["kind"], "erased", "{out}");
    assert_eq!(outcome["receipt"]["scan"]["hits"], serde_json::json!([]));
    assert_eq!(
        cli.ok(&["dsr", "list", "--status", "completed", "--json"], &[])
            .matches(&id)
            .count(),
        1
    );
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&cli.url).await.unwrap();
    let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users WHERE username = $1")
        .bind(&subject)
        .fetch_one(&pool)
        .await
        .unwrap();
    pool.close().await;
    assert_eq!(left, 0);
    assert!(cli.ok(&["audit", "verify"], &[]).starts_with("ok:"));
}

#[test]
fn monitor_screen_prints_one_json_line_per_comment() {
    let cli = Cli::sqlite();
    let dir = tempfile::tempdir().unwrap();
    let blocklist = dir.path().join("blocklist.txt");
    std::fs::write(&blocklist, "# known bad\nevil.example\n").unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        "[monitor]\n[monitor.rules]\ncrypto_scam = \"double your (btc|bitcoin)\"\n",
    )
    .unwrap();
    let input = dir.path().join("comments.txt");
    std::fs::write(
        &input,
        b"what a goal\nCLICK HERE: https://login.evil.example/x\nDouble your BTC \xff now\n",
    )
    .unwrap();
    // No database or sign-in is needed: screening reads text only.
    let out = cli.ok(
        &[
            "monitor",
            "screen",
            input.to_str().unwrap(),
            "--blocklist",
            blocklist.to_str().unwrap(),
            "--json",
        ],
        &[("VIGIL_CONFIG", config.to_str().unwrap())],
    );
    let rows: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 3);
    assert_eq!(
        rows[0],
        serde_json::json!({"line": 1, "categories": [], "urls": []})
    );
    assert_eq!(
        rows[1]["categories"],
        serde_json::json!(["phishing_attempt"])
    );
    assert_eq!(rows[1]["urls"][0]["verdict"], "malicious");
    assert_eq!(
        rows[1]["urls"][0]["reasons"],
        serde_json::json!(["blocklisted"])
    );
    // A line that is not UTF-8 is reported by its number, not screened with its bytes guessed.
    assert_eq!(
        rows[2],
        serde_json::json!({"line": 3, "error": "the line is not UTF-8 text"})
    );

    // A rule that reuses a built-in name, or does not compile, is refused with its name.
    std::fs::write(&config, "[monitor.rules]\nspam_content = \"x\"\n").unwrap();
    let bad = cli.run(
        &["monitor", "screen", input.to_str().unwrap()],
        &[("VIGIL_CONFIG", config.to_str().unwrap())],
    );
    assert_eq!(bad.status.code(), Some(1));
    assert!(
        text(&bad.stderr).contains("spam_content"),
        "{}",
        text(&bad.stderr)
    );
}

#[test]
fn activity_ingest_then_monitor_run_and_the_moderators_queue() {
    let cli = Cli::sqlite();
    cli.ok(&["init", "--admin", "root-admin"], &[ADMIN_PW]);
    cli.ok(
        &[
            "demo",
            "seed",
            "--users",
            "300",
            "--comments",
            "2000",
            "--days",
            "14",
            "--scenarios",
        ],
        &[],
    );
    // A file with a bad line: the good ones go in, the bad one is named, exit 2.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("activity.jsonl");
    std::fs::write(
        &file,
        "{\"type\":\"login_attempt\",\"user\":\"night.owl\",\"at\":\"2026-11-01T10:00:00Z\",\"ip\":\"192.0.2.13\",\"country\":\"GB\"}\n\
         {\"type\":\"login_attempt\",\"user\":\"night.owl\",\"at\":\"last tuesday\"}\n",
    )
    .unwrap();
    let out = cli.run(&["activity", "ingest", file.to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("line 2: at must be an RFC 3339 time"));
    assert!(text(&out.stdout).contains("ingested 1 records"));

    let run: serde_json::Value =
        serde_json::from_str(&cli.ok(&["monitor", "run", "--json"], &[])).unwrap();
    assert_eq!(run["opened"], 5, "{run}");
    let again: serde_json::Value =
        serde_json::from_str(&cli.ok(&["monitor", "run", "--json"], &[])).unwrap();
    // The second run sees only this command's own sign-in; it opens and folds nothing.
    assert_eq!(
        (again["opened"].as_u64(), again["folded"].as_u64()),
        (Some(0), Some(0)),
        "{again}"
    );
    // Split in three shards: this run changes the count and judges each shard.
    let config = dir.path().join("shards.toml");
    std::fs::write(&config, "[monitor]\nshards = 3\n").unwrap();
    let config = config.to_str().unwrap();
    let three = cli.ok(&["monitor", "run"], &[("VIGIL_CONFIG", config)]);
    assert!(three.contains("shards judged: 3 of 3\n"), "{three}");
    assert!(
        three.contains("shard count changed from 1 to 3 (every record judged once)"),
        "{three}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&cli.ok(&["monitor", "run", "--json"], &[("VIGIL_CONFIG", config)]))
            .unwrap();
    assert_eq!(
        (
            &json["shards"],
            &json["shards_done"],
            &json["shards_busy"],
            &json["opened"]
        ),
        (
            &serde_json::json!(3),
            &serde_json::json!([0, 1, 2]),
            &serde_json::json!([]),
            &serde_json::json!(0)
        ),
        "{json}"
    );

    let queue: Vec<serde_json::Value> = serde_json::from_str(&cli.ok(
        &["incidents", "list", "--severity", "critical", "--json"],
        &[],
    ))
    .unwrap();
    assert_eq!(queue.len(), 1);
    assert_eq!(queue[0]["kind"], "credential_stuffing");
    let id = queue[0]["id"].as_str().unwrap();
    let blocks = cli.ok(&["blocks", "list"], &[]);
    assert!(blocks.contains("198.51.100.23"), "{blocks}");
    // Administrators read incidents but do not act on them.
    let denied = cli.run(&["incidents", "act", id, "lift-block"], &[]);
    assert_eq!(denied.status.code(), Some(1));
    assert!(
        text(&denied.stderr).contains("permission"),
        "{}",
        text(&denied.stderr)
    );
    let bad = cli.run(&["incidents", "list", "--severity", "urgent"], &[]);
    assert_ne!(bad.status.code(), Some(0));
    let shown = cli.ok(&["incidents", "show", id], &[]);
    assert!(
        shown.contains("block_ip") && shown.contains("suspend_account"),
        "{shown}"
    );
    assert!(
        !shown.contains("@example"),
        "no email in an incident: {shown}"
    );
    let charts = dir.path().join("charts");
    let written = cli.ok(
        &["charts", "--out", charts.to_str().unwrap(), "--days", "30"],
        &[],
    );
    assert_eq!(written.lines().count(), 4, "{written}");
}

/// Counts that describe the platform data after retention (the command line's own sign-ins
/// are left out: each call adds one).
const RETENTION_STATE: &str =
    "SELECT (SELECT COUNT(*) FROM activity_log WHERE kind <> 'vigil_login') \
     || '/' || (SELECT COUNT(*) FROM comments WHERE author_id IS NOT NULL) \
     || '/' || (SELECT COUNT(*) FROM comments) || '/' || (SELECT COUNT(*) FROM users)";

async fn state(url: &str, sql: &str) -> String {
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(url).await.unwrap();
    let s: String = sqlx::query_scalar(sql).fetch_one(&pool).await.unwrap();
    pool.close().await;
    s
}

fn seed_history(cli: &Cli) {
    cli.ok(&["init", "--admin", "root-admin"], &[ADMIN_PW]);
    cli.ok(
        &[
            "demo",
            "seed",
            "--users",
            "300",
            "--comments",
            "6000",
            "--days",
            "2000",
        ],
        &[],
    );
}

async fn killed_retention_run_resumes(cli: Cli, reference: Cli) {
    seed_history(&cli);
    seed_history(&reference);
    let straight: serde_json::Value = serde_json::from_str(
        reference
            .ok(&["retention", "run", "--json"], &[])
            .lines()
            .last()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(straight["run"]["status"], "completed");

    // Abort the process inside the fourth chunk's transaction.
    let out = cli.run(
        &[
            "retention",
            "run",
            "--chunk",
            "500",
            "--json",
            "--abort-in-chunk",
            "4",
        ],
        &[],
    );
    assert!(!out.status.success());
    let progress = text(&out.stdout).lines().count();
    assert_eq!(progress, 3, "three chunks committed: {}", text(&out.stdout));
    let sqlite = cli.url.starts_with("sqlite:");
    if sqlite {
        // Most of the activity is due, in many chunks: the run had dropped the index by
        // account and recorded it, and died before building it again.
        assert_eq!(state(&cli.url, USER_INDEX).await, "0");
        assert_eq!(state(&cli.url, DEFERRED).await, "1");
    }
    let runs: serde_json::Value =
        serde_json::from_str(&cli.ok(&["retention", "runs", "--json"], &[])).unwrap();
    if sqlite {
        // Opening the database rebuilt it.
        assert_eq!(state(&cli.url, USER_INDEX).await, "1");
        assert_eq!(state(&cli.url, DEFERRED).await, "0");
    }
    assert_eq!(runs[0]["status"], "running");
    assert_eq!(runs[0]["counts"]["activity"]["chunks"], 3, "{runs}");

    // The next run resumes it and ends where the uninterrupted run did.
    let resumed: serde_json::Value = serde_json::from_str(
        cli.ok(&["retention", "run", "--json"], &[])
            .lines()
            .last()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(resumed["run"]["resumed"], true);
    assert_eq!(resumed["run"]["status"], "completed");
    assert_eq!(resumed["run"]["id"], runs[0]["id"]);
    for c in ["activity", "comments", "sessions", "deleted_users", "audit"] {
        assert_eq!(
            resumed["run"]["counts"][c]["done"], straight["run"]["counts"][c]["done"],
            "{c}"
        );
    }
    assert_eq!(
        state(&cli.url, RETENTION_STATE).await,
        state(&reference.url, RETENTION_STATE).await
    );
    let plan: serde_json::Value =
        serde_json::from_str(&cli.ok(&["retention", "plan", "--json"], &[])).unwrap();
    assert!(
        plan.as_array().unwrap().iter().all(|p| p["due"] == 0),
        "{plan}"
    );
    cli.ok(&["audit", "verify"], &[]);
    if sqlite {
        assert_eq!(state(&cli.url, USER_INDEX).await, "1");
        assert_eq!(state(&cli.url, DEFERRED).await, "0");
    }
}

/// Whether the activity index by account exists (SQLite), as text.
const USER_INDEX: &str = "SELECT CAST(COUNT(*) AS TEXT) FROM sqlite_master \
     WHERE type = 'index' AND name = 'activity_log_user_time_idx'";
/// Whether dropped indexes wait to be rebuilt, as text.
const DEFERRED: &str = "SELECT CAST(COUNT(*) AS TEXT) FROM app_meta WHERE key = 'deferred_indexes'";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retention_run_killed_mid_chunk_resumes_to_the_same_end_state_on_sqlite() {
    killed_retention_run_resumes(Cli::sqlite(), Cli::sqlite()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retention_run_killed_mid_chunk_resumes_to_the_same_end_state_on_postgres() {
    killed_retention_run_resumes(Cli::postgres().await, Cli::postgres().await).await;
}

/// A worker process with the detectors in two shards on Postgres: while another holds shard
/// 1 its monitor job judges shard 0 and reports 1 busy; while both are held it is busy; once
/// they are free its next round judges shard 1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_judges_the_free_shards_and_reports_the_held_ones() {
    let cli = Cli::postgres().await;
    cli.ok(&["init", "--admin", "root-admin"], &[ADMIN_PW]);
    cli.ok(
        &[
            "demo",
            "seed",
            "--users",
            "60",
            "--comments",
            "400",
            "--days",
            "5",
        ],
        &[],
    );
    cli.ok(
        &["user", "create", "worker-1", "--role", "service"],
        &[("VIGIL_NEW_PASSWORD", "temporary passphrase 9")],
    );
    let worker_keys = tempfile::tempdir().unwrap();
    let config = worker_keys.path().join("config.toml");
    std::fs::write(&config, "[monitor]\nshards = 2\n").unwrap();
    let ks = format!("file:{}", worker_keys.path().join("ks").display());
    let cfg = config.display().to_string();
    let worker_pw = "worker one's long passphrase";
    cli.ok(
        &["passwd"],
        &[
            ("VIGIL_USERNAME", "worker-1"),
            ("VIGIL_PASSWORD", "temporary passphrase 9"),
            ("VIGIL_KEYSTORE", ks.as_str()),
            ("VIGIL_NEW_PASSWORD", worker_pw),
        ],
    );
    let as_worker = [
        ("VIGIL_USERNAME", "worker-1"),
        ("VIGIL_PASSWORD", worker_pw),
        ("VIGIL_KEYSTORE", ks.as_str()),
        ("VIGIL_CONFIG", cfg.as_str()),
    ];
    cli.ok(&["keys", "status"], &as_worker);
    cli.ok(&["keys", "grant", "worker-1"], &[]);
    let monitor_job = || {
        let out = cli.ok(
            &["worker", "--once", "--job", "monitor", "--json"],
            &as_worker,
        );
        serde_json::from_str::<serde_json::Value>(out.trim()).unwrap()
    };

    // Another worker holds shard 1 (this test process, on its own connection).
    let store = vigil::store::Store::open(
        &vigil::store::DatabaseUrl::parse(&cli.url).unwrap(),
        &vigil::store::StoreOptions::default(),
    )
    .await
    .unwrap();
    let one = store.try_job_lock("monitor/1").await.unwrap().unwrap();
    let line = monitor_job();
    assert_eq!(line["outcome"], "ran", "{line}");
    assert_eq!(
        line["report"]["shards_done"],
        serde_json::json!([0]),
        "{line}"
    );
    assert_eq!(
        line["report"]["shards_busy"],
        serde_json::json!([1]),
        "{line}"
    );
    assert!(line["report"]["new_events"].as_u64().unwrap() > 0, "{line}");

    let zero = store.try_job_lock("monitor/0").await.unwrap().unwrap();
    let line = monitor_job();
    assert_eq!(line["outcome"], "busy", "{line}");

    zero.release().await;
    one.release().await;
    let line = monitor_job();
    assert_eq!(line["outcome"], "ran", "{line}");
    assert_eq!(
        line["report"]["shards_done"],
        serde_json::json!([0, 1]),
        "{line}"
    );
    assert!(line["report"]["new_events"].as_u64().unwrap() > 0, "{line}");
    store.close().await;
}

/// Two worker processes on one Postgres database: while one holds the retention lock the
/// other does not run; when the one running dies mid-chunk, the other takes the job over and
/// finishes the same run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_on_one_postgres_never_run_retention_at_once_and_take_over_from_a_dead_one() {
    use std::io::BufRead;
    let cli = Cli::postgres().await;
    seed_history(&cli);
    let worker_pw = "worker one's long passphrase";
    cli.ok(
        &["user", "create", "worker-1", "--role", "service"],
        &[("VIGIL_NEW_PASSWORD", "temporary passphrase 9")],
    );
    let worker_keys = tempfile::tempdir().unwrap();
    let config = worker_keys.path().join("config.toml");
    std::fs::write(
        &config,
        "[retention]\nchunk = 20\n\n[worker]\nmonitor_interval_secs = 5\n",
    )
    .unwrap();
    let ks = format!("file:{}", worker_keys.path().join("ks").display());
    let cfg = config.display().to_string();
    let as_worker = [
        ("VIGIL_USERNAME", "worker-1"),
        ("VIGIL_PASSWORD", worker_pw),
        ("VIGIL_KEYSTORE", ks.as_str()),
        ("VIGIL_CONFIG", cfg.as_str()),
    ];
    cli.ok(
        &["passwd"],
        &[
            ("VIGIL_USERNAME", "worker-1"),
            ("VIGIL_PASSWORD", "temporary passphrase 9"),
            ("VIGIL_KEYSTORE", ks.as_str()),
            ("VIGIL_NEW_PASSWORD", worker_pw),
        ],
    );

    // Another worker holds the lock (this test process, on its own connection).
    let store = vigil::store::Store::open(
        &vigil::store::DatabaseUrl::parse(&cli.url).unwrap(),
        &vigil::store::StoreOptions::default(),
    )
    .await
    .unwrap();
    let held = store.try_job_lock("retention").await.unwrap().unwrap();
    let out = cli.ok(
        &["worker", "--once", "--job", "retention", "--json"],
        &as_worker,
    );
    let line: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(line["outcome"], "busy", "{out}");
    let runs: serde_json::Value =
        serde_json::from_str(&cli.ok(&["retention", "runs", "--json"], &[])).unwrap();
    assert_eq!(
        runs,
        serde_json::json!([]),
        "nothing ran while the lock was held"
    );
    held.release().await;

    // A worker that dies in the middle of a chunk...
    let dead = cli.run(
        &[
            "worker",
            "--once",
            "--job",
            "retention",
            "--abort-in-chunk",
            "30",
        ],
        &as_worker,
    );
    assert!(!dead.status.success());
    let runs: serde_json::Value =
        serde_json::from_str(&cli.ok(&["retention", "runs", "--json"], &[])).unwrap();
    assert_eq!(runs[0]["status"], "running");
    assert_eq!(runs[0]["started_by"], "worker-1");

    // ...and a long-running worker that takes the job over.
    let mut cmd = cli.command(&["worker", "--job", "retention", "--json"]);
    for (k, v) in as_worker {
        cmd.env(k, v);
    }
    cmd.stdout(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    // Until the server has seen the dead worker's connection close, the lock may still look
    // taken: such a round reports busy, and the worker tries again a few seconds later.
    let mut first = serde_json::Value::Null;
    for _ in 0..5 {
        first = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
        if first["outcome"] != "busy" {
            break;
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(first["outcome"], "ran", "{first}");
    assert_eq!(first["report"]["resumed"], true);
    assert_eq!(first["report"]["status"], "completed");
    assert_eq!(first["report"]["id"], runs[0]["id"]);
    let runs: serde_json::Value =
        serde_json::from_str(&cli.ok(&["retention", "runs", "--json"], &[])).unwrap();
    assert_eq!(
        runs.as_array().unwrap().len(),
        1,
        "one run, finished by the second worker"
    );
    let plan: serde_json::Value =
        serde_json::from_str(&cli.ok(&["retention", "plan", "--json"], &[])).unwrap();
    assert!(
        plan.as_array().unwrap().iter().all(|p| p["due"] == 0),
        "{plan}"
    );

    // The service account may run the jobs and nothing else.
    let denied = cli.run(&["user", "list"], &as_worker);
    assert_eq!(denied.status.code(), Some(1));
    assert!(text(&denied.stderr).contains("permission denied"));
    store.close().await;
}

/// The first administrator, an officer and a moderator, each on their own machine (keystore),
/// see in `keys status --json` exactly the purposes of their row; the administrator then gives
/// up what their role does not hold.
#[test]
fn each_operator_holds_the_purposes_of_their_role_row() {
    let cli = Cli::sqlite();
    cli.ok(&["init", "--admin", "root-admin"], &[ADMIN_PW]);
    let held = |env: &[(&str, &str)]| -> Vec<String> {
        let v: serde_json::Value =
            serde_json::from_str(&cli.ok(&["keys", "status", "--json"], env)).unwrap();
        serde_json::from_value(v["held"].clone()).unwrap()
    };
    assert_eq!(
        held(&[]),
        ["blind_index", "contact", "content_hash", "network"]
    );
    let machines = tempfile::tempdir().unwrap();
    let mut people = Vec::new();
    for (name, role) in [
        ("olive-officer", "compliance_officer"),
        ("mo-moderator", "moderator"),
    ] {
        cli.ok(
            &["user", "create", name, "--role", role],
            &[("VIGIL_NEW_PASSWORD", "temporary passphrase 9")],
        );
        let keystore = format!("file:{}", machines.path().join(name).display());
        let own = format!("a long passphrase of my own, {}", name.len());
        cli.ok(
            &["passwd"],
            &[
                ("VIGIL_USERNAME", name),
                ("VIGIL_PASSWORD", "temporary passphrase 9"),
                ("VIGIL_NEW_PASSWORD", &own),
                ("VIGIL_KEYSTORE", &keystore),
            ],
        );
        // The first sign-in on their machine made their key pair there.
        cli.ok(
            &["keys", "status"],
            &[
                ("VIGIL_USERNAME", name),
                ("VIGIL_PASSWORD", &own),
                ("VIGIL_KEYSTORE", &keystore),
            ],
        );
        let granted: serde_json::Value =
            serde_json::from_str(&cli.ok(&["keys", "grant", name, "--json"], &[])).unwrap();
        assert_eq!(granted["pending"], serde_json::json!([]));
        people.push((name, own, keystore));
    }
    for ((name, own, keystore), row) in people.iter().zip([
        vec!["blind_index", "contact", "network"],
        vec!["blind_index", "content_hash", "network"],
    ]) {
        let env = [
            ("VIGIL_USERNAME", *name),
            ("VIGIL_PASSWORD", own.as_str()),
            ("VIGIL_KEYSTORE", keystore.as_str()),
        ];
        assert_eq!(held(&env), row, "{name}");
        let v: serde_json::Value =
            serde_json::from_str(&cli.ok(&["keys", "status", "--json"], &env)).unwrap();
        assert!(
            v.get("purposes").is_none(),
            "{name} sees no key management detail"
        );
    }
    // The officer holds contact and network now, so the administrator may give them up.
    for p in ["contact", "network", "content_hash"] {
        cli.ok(&["keys", "relinquish", p], &[]);
    }
    assert_eq!(held(&[]), ["blind_index"]);
    let refused = cli.run(&["keys", "relinquish", "blind_index"], &[]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        text(&refused.stderr).contains("your role holds"),
        "{}",
        text(&refused.stderr)
    );
    let bad = cli.run(&["keys", "relinquish", "pii"], &[]);
    assert!(
        text(&bad.stderr).contains("unknown purpose"),
        "{}",
        text(&bad.stderr)
    );
}

#[test]
fn mfa_enroll_qr_png_is_made_new_and_private_and_never_overwrites_or_follows_a_link() {
    use std::os::unix::fs::PermissionsExt;
    let cli = Cli::sqlite();
    cli.ok(&["init", "--admin", "root-admin"], &[ADMIN_PW]);
    let dir = tempfile::tempdir().unwrap();
    let png = dir.path().join("qr.png");
    cli.ok(&["mfa", "enroll", "--qr-png", png.to_str().unwrap()], &[]);
    let meta = std::fs::symlink_metadata(&png).unwrap();
    assert!(meta.is_file());
    assert_eq!(meta.permissions().mode() & 0o777, 0o600, "owner-only");
    let first = std::fs::read(&png).unwrap();
    assert_eq!(&first[..4], b"\x89PNG");

    // An existing file is not overwritten.
    let again = cli.run(&["mfa", "enroll", "--qr-png", png.to_str().unwrap()], &[]);
    assert_eq!(again.status.code(), Some(1));
    assert!(
        text(&again.stderr).contains("already exists: not overwritten"),
        "{}",
        text(&again.stderr)
    );
    assert_eq!(std::fs::read(&png).unwrap(), first, "unchanged");

    // A symbolic link to an existing file is not followed: the target is unchanged.
    let target = dir.path().join("precious.txt");
    std::fs::write(&target, b"keep me").unwrap();
    let link = dir.path().join("link.png");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let out = cli.run(&["mfa", "enroll", "--qr-png", link.to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("is a symbolic link: not followed"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(std::fs::read(&target).unwrap(), b"keep me");

    // Nor is a dangling one: nothing is created where it points.
    let nowhere = dir.path().join("created-through-the-link.png");
    let dangling = dir.path().join("dangling.png");
    std::os::unix::fs::symlink(&nowhere, &dangling).unwrap();
    let out = cli.run(
        &["mfa", "enroll", "--qr-png", dangling.to_str().unwrap()],
        &[],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("is a symbolic link: not followed"),
        "{}",
        text(&out.stderr)
    );
    assert!(!nowhere.exists());
}

#[test]
fn codes_and_addresses_come_from_standard_input_with_a_dash() {
    let cli = Cli::sqlite();
    cli.ok(&["init", "--admin", "root-admin"], &[ADMIN_PW]);
    cli.ok(
        &["user", "create", "mo-moderator", "--role", "moderator"],
        &[("VIGIL_NEW_PASSWORD", "temporary passphrase 9")],
    );
    cli.ok(
        &["passwd"],
        &[
            ("VIGIL_USERNAME", "mo-moderator"),
            ("VIGIL_PASSWORD", "temporary passphrase 9"),
            ("VIGIL_NEW_PASSWORD", "mo's own long passphrase"),
        ],
    );
    let as_mo = |args: &[&str], input: &str| {
        use std::io::Write;
        let mut cmd = cli.command(args);
        cmd.env("VIGIL_USERNAME", "mo-moderator")
            .env("VIGIL_PASSWORD", "mo's own long passphrase")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    };
    // An IP address from standard input; an empty line is refused and changes nothing.
    let empty = as_mo(&["blocks", "add", "-", "--reason", "test"], "\n");
    assert_eq!(empty.status.code(), Some(1));
    assert!(
        text(&empty.stderr).contains("no IP address to block given"),
        "{}",
        text(&empty.stderr)
    );
    let added = as_mo(
        &["blocks", "add", "-", "--reason", "abuse"],
        "203.0.113.77\n",
    );
    assert!(added.status.success(), "{}", text(&added.stderr));
    let listed = as_mo(&["blocks", "list"], "");
    assert!(
        text(&listed.stdout).contains("203.0.113.77"),
        "{}",
        text(&listed.stdout)
    );
    // Lifted by the address, from standard input too.
    let lifted = as_mo(&["blocks", "remove", "-"], "203.0.113.77\r\n");
    assert!(
        text(&lifted.stdout).contains("lifted 1 block"),
        "{}",
        text(&lifted.stderr)
    );
    // Left out without a terminal: a clear error, not a prompt.
    let missing = cli.run(&["blocks", "add", "--reason", "abuse"], &[]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(
        text(&missing.stderr).contains("run on a terminal to be asked"),
        "{}",
        text(&missing.stderr)
    );
    // The help says what the argument form exposes.
    let help = cli.ok(&["dsr", "verify", "--help"], &[]);
    assert!(help.contains("process list"), "{help}");
}

/// The default `[auth] require_mfa` policy holds an administrator without MFA at enrolment:
/// only `mfa enroll`/`confirm`, `whoami` and `logout` work until MFA is on.
#[test]
fn the_mfa_policy_holds_an_administrator_at_enrolment() {
    let cli = Cli::sqlite();
    let init = cli.ok(
        &["init", "--admin", "root-admin"],
        &[ADMIN_PW, ("VIGIL_REQUIRE_MFA", "admin,compliance_officer")],
    );
    assert!(init.contains("vigil mfa enroll"), "{init}");
    let policy = [("VIGIL_REQUIRE_MFA", "admin,compliance_officer")];
    for args in [
        &["audit", "verify"][..],
        &["user", "list"],
        &["login"],
        &["keys", "status"],
    ] {
        let out = cli.run(args, &policy);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert!(
            text(&out.stderr).contains("MFA enrolment required"),
            "{args:?}: {}",
            text(&out.stderr)
        );
    }
    let me: serde_json::Value =
        serde_json::from_str(&cli.ok(&["whoami", "--json"], &policy)).unwrap();
    assert_eq!(me["must_enrol_mfa"], true);
    let e: serde_json::Value =
        serde_json::from_str(&cli.ok(&["mfa", "enroll", "--json"], &policy)).unwrap();
    let secret = totp_rs::Secret::Encoded(e["secret_base32"].as_str().unwrap().into())
        .to_bytes()
        .unwrap();
    let step = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        / 30;
    cli.ok(
        &["mfa", "confirm", &vigil::mfa::code_at(&secret, step, 6)],
        &policy,
    );
    // Enrolled: the operator proceeds (with a code from now on), and is told MFA went on.
    let code = vigil::mfa::code_at(&secret, step + 1, 6);
    let out = cli.ok(&["audit", "verify"], &[policy[0], ("VIGIL_TOTP", &code)]);
    assert!(out.starts_with("ok:"), "{out}");
}

/// Notices are printed by `whoami` and `login`, listed and dismissed by `notices`.
#[test]
fn notices_on_whoami_and_dismissed_from_the_command_line() {
    let cli = Cli::sqlite();
    cli.ok(&["init", "--admin", "root-admin"], &[ADMIN_PW]);
    assert!(!cli.ok(&["whoami"], &[]).contains("notices"));
    cli.ok(
        &["passwd"],
        &[("VIGIL_NEW_PASSWORD", "another long passphrase 7")],
    );
    let new_pw = [("VIGIL_PASSWORD", "another long passphrase 7")];
    let me = cli.ok(&["whoami"], &new_pw);
    assert!(me.contains("Your password was changed"), "{me}");
    let listed: serde_json::Value =
        serde_json::from_str(&cli.ok(&["notices", "--json"], &new_pw)).unwrap();
    assert_eq!(listed[0]["kind"], "password_changed");
    // `login` prints them on standard error: standard output is only the line for `eval`.
    let login = cli.run(&["login"], &new_pw);
    assert!(login.status.success(), "{}", text(&login.stderr));
    assert!(text(&login.stderr).contains("Your password was changed"));
    assert!(text(&login.stdout)
        .trim()
        .starts_with("export VIGIL_SESSION="));
    assert!(cli
        .ok(&["notices", "--dismiss"], &new_pw)
        .contains("dismissed 1"));
    assert_eq!(cli.ok(&["notices"], &new_pw).trim(), "no notices");
    assert!(!cli.ok(&["whoami"], &new_pw).contains("notices"));
}

impl Cli {
    /// `vigil ARGS` with `VIGIL_SESSION` (if given) and no password, username or code in the
    /// environment.
    fn run_in_session(&self, args: &[&str], session: Option<&str>) -> Output {
        let mut cmd = self.command(args);
        cmd.env_remove("VIGIL_USERNAME")
            .env_remove("VIGIL_PASSWORD")
            .env_remove("VIGIL_TOTP")
            .stdin(std::process::Stdio::null());
        if let Some(s) = session {
            cmd.env("VIGIL_SESSION", s);
        }
        cmd.output().unwrap()
    }
}

/// `vigil login` with a TOTP code, then ten commands with neither password nor code, all
/// within one TOTP step (a sign-in each would need a fresh code, refused as a replay); after
/// `vigil logout` the next one is refused, and a wrong, foreign or missing VIGIL_SESSION opens
/// nothing.
async fn a_command_line_session_needs_the_second_factor_once(cli: Cli) {
    cli.ok(&["init", "--admin", "root-admin"], &[ADMIN_PW]);
    let e: serde_json::Value =
        serde_json::from_str(&cli.ok(&["mfa", "enroll", "--json"], &[])).unwrap();
    let secret = totp_rs::Secret::Encoded(e["secret_base32"].as_str().unwrap().into())
        .to_bytes()
        .unwrap();
    let step = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
            / 30
    };
    let now = step();
    cli.ok(
        &["mfa", "confirm", &vigil::mfa::code_at(&secret, now, 6)],
        &[],
    );
    // Without a code the password alone no longer signs in.
    assert_eq!(cli.run(&["whoami"], &[]).status.code(), Some(1));
    let code = vigil::mfa::code_at(&secret, now + 1, 6);
    let out = cli.run(&["login"], &[("VIGIL_TOTP", code.as_str())]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let line = text(&out.stdout);
    let session = line
        .trim()
        .strip_prefix("export VIGIL_SESSION=")
        .unwrap_or_else(|| panic!("{line}"))
        .to_owned();
    assert!(
        !text(&out.stderr).contains(&session),
        "the key is printed once"
    );

    let commands: [&[&str]; 10] = [
        &["whoami", "--json"],
        &["whoami"],
        &["token", "show"],
        &["audit", "verify"],
        &["sessions", "list"],
        &["keys", "status"],
        &["user", "list"],
        &["retention", "policies"],
        &["whoami", "--json"],
        &["audit", "verify"],
    ];
    for args in commands {
        let out = cli.run_in_session(args, Some(&session));
        assert!(
            out.status.success(),
            "vigil {args:?} in the session: {}",
            text(&out.stderr)
        );
    }
    let who: serde_json::Value = serde_json::from_slice(
        &cli.run_in_session(&["whoami", "--json"], Some(&session))
            .stdout,
    )
    .unwrap();
    assert_eq!(who["username"], "root-admin");
    // The session's access token is the one `token show` prints, and it verifies.
    let token = text(
        &cli.run_in_session(&["token", "show"], Some(&session))
            .stdout,
    );
    let ok = cli.run_with_stdin(&["token", "verify"], token.trim());
    assert_eq!(ok.status.code(), Some(0), "{}", text(&ok.stderr));

    // Wrong, foreign or missing: nothing opens.
    // One character of the random key changed (near the end, where the key is, and not the
    // last, whose spare bits would make it no key at all).
    let at = session.len() - 3;
    let was = session.as_bytes()[at];
    let mut altered = session.clone();
    altered.replace_range(at..at + 1, if was == b'A' { "B" } else { "A" });
    let other_machine = tempfile::tempdir().unwrap();
    let foreign = {
        let mut cmd = cli.command(&["whoami"]);
        cmd.env_remove("VIGIL_USERNAME")
            .env_remove("VIGIL_PASSWORD")
            .env("VIGIL_SESSION", &session)
            .env(
                "VIGIL_KEYSTORE",
                format!("file:{}", other_machine.path().join("ks").display()),
            )
            .stdin(std::process::Stdio::null());
        cmd.output().unwrap()
    };
    for (out, why) in [
        (
            cli.run_in_session(&["whoami"], Some(&altered)),
            "opens no session",
        ),
        (
            cli.run_in_session(&["whoami"], Some("vs1.AAAA")),
            "not a Vigil session key",
        ),
        (
            cli.run_in_session(&["whoami"], Some("garbage")),
            "not a Vigil session key",
        ),
        (foreign, "opens no session"),
        (cli.run_in_session(&["whoami"], None), "not signed in"),
    ] {
        assert_eq!(out.status.code(), Some(1));
        let err = text(&out.stderr);
        assert!(err.contains(why), "{why}: {err}");
        assert!(!err.contains(&session));
    }
    // Still usable after the refusals.
    assert!(cli
        .run_in_session(&["whoami"], Some(&session))
        .status
        .success());

    // Logout ends it: the session in the database, and the record in the keystore.
    let out = cli.run_in_session(&["logout"], Some(&session));
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("signed out"));
    let after = cli.run_in_session(&["whoami"], Some(&session));
    assert_eq!(after.status.code(), Some(1));
    assert!(
        text(&after.stderr).contains("opens no session"),
        "{}",
        text(&after.stderr)
    );
    let revoked = cli.run_with_stdin(&["token", "verify"], token.trim());
    assert_eq!(
        revoked.status.code(),
        Some(1),
        "the session's token is revoked"
    );
    assert!(
        step() <= now + 2,
        "the commands ran within the code's window (else a sign-in would have been refused)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_line_session_needs_the_second_factor_once_on_sqlite() {
    a_command_line_session_needs_the_second_factor_once(Cli::sqlite()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_line_session_needs_the_second_factor_once_on_postgres() {
    a_command_line_session_needs_the_second_factor_once(Cli::postgres().await).await
}

/// A session that was idle past the configured timeout is refused, and a suspended account's
/// session stops at its next command (the account is read again every time).
async fn a_command_line_session_ends_when_the_account_is_suspended(cli: Cli) {
    cli.ok(&["init", "--admin", "root-admin"], &[ADMIN_PW]);
    cli.ok(
        &["user", "create", "second-admin", "--role", "admin"],
        &[("VIGIL_NEW_PASSWORD", "a long enough passphrase 42")],
    );
    let as_second = [
        ("VIGIL_USERNAME", "second-admin"),
        ("VIGIL_PASSWORD", "a long enough passphrase 42"),
        ("VIGIL_NEW_PASSWORD", "another long passphrase 43"),
    ];
    cli.ok(&["passwd"], &as_second);
    let out = cli.run(
        &["login"],
        &[
            ("VIGIL_USERNAME", "second-admin"),
            ("VIGIL_PASSWORD", "another long passphrase 43"),
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let session = text(&out.stdout)
        .trim()
        .strip_prefix("export VIGIL_SESSION=")
        .unwrap()
        .to_owned();
    assert!(cli
        .run_in_session(&["whoami"], Some(&session))
        .status
        .success());
    cli.ok(&["user", "suspend", "second-admin"], &[]);
    let out = cli.run_in_session(&["whoami"], Some(&session));
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("session has ended"),
        "{}",
        text(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_line_session_ends_when_the_account_is_suspended_on_sqlite() {
    a_command_line_session_ends_when_the_account_is_suspended(Cli::sqlite()).await
}

/// `vigil ARGS` as `env`'s operator with `input` on standard input.
fn run_with_input(cli: &Cli, args: &[&str], env: &[(&str, &str)], input: &str) -> Output {
    use std::io::Write;
    let mut cmd = cli.command(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

/// The usernames of a `vigil directory --json` page.
fn usernames(page: &serde_json::Value) -> Vec<String> {
    page["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["username"].as_str().unwrap().to_owned())
        .collect()
}

/// The core's directory (what the desktop's Users screen shows) for the same filters.
async fn core_directory(
    store: &vigil::store::Store,
    actor: &vigil::auth::Actor,
    ring: Option<&vigil::keys::KeyRing>,
    query: vigil::auth::users::DirectoryQuery,
) -> vigil::auth::users::DirectoryPage {
    vigil::auth::users::directory(store, actor, ring, &query)
        .await
        .unwrap()
}

async fn the_directory_lists_every_account_as_the_desktop_does(cli: Cli) {
    use vigil::auth::users::{AccountKind, DirectoryQuery, DirectorySearch};
    seed_small(&cli);
    let url = vigil::store::DatabaseUrl::parse(&cli.url).unwrap();
    let store = vigil::store::Store::open(&url, &Default::default())
        .await
        .unwrap();
    let admin = vigil::auth::authenticate(
        &store,
        "root-admin",
        PASSWORD,
        &vigil::auth::MfaPolicy::none(),
    )
    .await
    .unwrap();
    let json =
        |args: &[&str]| -> serde_json::Value { serde_json::from_str(&cli.ok(args, &[])).unwrap() };
    let all = |kind| DirectoryQuery {
        kind,
        page_size: 500,
        ..Default::default()
    };

    // By kind, with the core directory's totals and order; each row says no more than asked.
    for (flag, kind) in [
        ("platform", Some(AccountKind::Platform)),
        ("operator", Some(AccountKind::Operator)),
        ("all", None),
    ] {
        let page = json(&["directory", "--kind", flag, "--limit", "500", "--json"]);
        let core = core_directory(&store, &admin, None, all(kind)).await;
        assert_eq!(page["total"], core.total, "--kind {flag}");
        let names: Vec<String> = core.rows.iter().map(|e| e.username.clone()).collect();
        assert_eq!(usernames(&page), names, "--kind {flag}");
        for row in page["rows"].as_array().unwrap() {
            let mut keys: Vec<&str> = row
                .as_object()
                .unwrap()
                .keys()
                .map(|k| k.as_str())
                .collect();
            keys.sort_unstable();
            assert_eq!(keys, ["kind", "mfa", "roles", "status", "username"]);
            if flag != "all" {
                assert_eq!(row["kind"], flag);
            }
        }
    }
    let platform = json(&["directory", "--kind", "platform", "--json"]);
    assert_eq!(platform["total"], 200);
    assert_eq!(platform["rows"].as_array().unwrap().len(), 50);
    let operators = json(&["directory", "--kind", "operator", "--json"]);
    let root = operators["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["username"] == "root-admin")
        .expect("the administrator is listed");
    assert_eq!(root["roles"], serde_json::json!(["admin"]));
    assert_eq!(json(&["directory", "--json"])["total"], {
        core_directory(&store, &admin, None, all(None)).await.total
    });

    // By username prefix.
    let first = usernames(&platform)[0].clone();
    let prefix: String = first.chars().take(3).collect();
    let found = json(&[
        "directory",
        "--kind",
        "platform",
        "--search",
        &prefix,
        "--json",
    ]);
    let core = core_directory(
        &store,
        &admin,
        None,
        DirectoryQuery {
            kind: Some(AccountKind::Platform),
            search: Some(DirectorySearch::UsernamePrefix(prefix.to_lowercase())),
            page_size: 50,
            ..Default::default()
        },
    )
    .await;
    assert!(core.total >= 1);
    assert_eq!(found["total"], core.total);
    assert!(usernames(&found)
        .iter()
        .all(|n| n.to_lowercase().starts_with(&prefix.to_lowercase())));
    assert!(usernames(&found).contains(&first));

    // Paged by offset: the same rows as the core's full list.
    let whole = usernames(&json(&[
        "directory",
        "--kind",
        "platform",
        "--limit",
        "500",
        "--json",
    ]));
    let page = json(&[
        "directory",
        "--kind",
        "platform",
        "--limit",
        "5",
        "--offset",
        "7",
        "--json",
    ]);
    assert_eq!(usernames(&page), whole[7..12]);
    assert_eq!(page["total"], 200);
    let shown = cli.ok(&["directory", "--kind", "platform", "--limit", "3"], &[]);
    assert!(
        shown.contains("username") && shown.contains("3 of 200 accounts"),
        "{shown}"
    );

    // By email from standard input, through the blind index, audited as a read of personal
    // data naming the account and never the address.
    let keystore = vigil::keys::keystore::FileKeystore::open(&cli.keys.path().join("ks")).unwrap();
    let ring = vigil::keys::unlock(&store, &keystore, &admin, PASSWORD)
        .await
        .unwrap();
    let subject = vigil::platform::sample_user_ids(&store, 1).await.unwrap()[0];
    let email = vigil::platform::user_email(&store, &ring, subject)
        .await
        .unwrap()
        .unwrap();
    let reads = || {
        json(&["audit", "list", "--action", "pii.read", "--json"])
            .as_array()
            .unwrap()
            .clone()
    };
    let before = reads().len();
    let out = run_with_input(
        &cli,
        &["directory", "--email", "-", "--json"],
        &[],
        &format!("{}\n", email.to_uppercase()),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let by_email: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(by_email["total"], 1);
    assert_eq!(by_email["rows"][0]["kind"], "platform");
    let subject_name = state(
        &cli.url,
        &format!("SELECT username FROM users WHERE id = '{subject}'"),
    )
    .await;
    assert_eq!(by_email["rows"][0]["username"], subject_name.as_str());
    assert!(!find(&out.stdout, email.as_bytes()) && !find(&out.stderr, email.as_bytes()));
    let after = reads();
    assert_eq!(after.len(), before + 1);
    let entry = &after[0];
    assert_eq!(entry["target"], format!("user:{subject}"));
    let details: serde_json::Value =
        serde_json::from_str(entry["details"].as_str().unwrap()).unwrap();
    assert_eq!(details["purpose"], "directory_email_search");
    assert!(!entry.to_string().contains(&email));
    let core = core_directory(
        &store,
        &admin,
        Some(&ring),
        DirectoryQuery {
            search: Some(DirectorySearch::Email(email.clone())),
            page_size: 50,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(by_email["total"], core.total);
    let before = reads().len();
    let unknown = run_with_input(
        &cli,
        &["directory", "--email", "-", "--json"],
        &[],
        "nobody-at-all@example.invalid\n",
    );
    assert!(unknown.status.success(), "{}", text(&unknown.stderr));
    let none: serde_json::Value = serde_json::from_slice(&unknown.stdout).unwrap();
    assert_eq!(none["total"], 0);
    assert_eq!(reads().len(), before + 1);

    // Bad input: a clear error, nothing looked up or recorded.
    let before = reads().len();
    let at = cli.run(&["directory", "--search", &email], &[]);
    assert_eq!(at.status.code(), Some(1));
    assert!(
        text(&at.stderr).contains("--email -"),
        "{}",
        text(&at.stderr)
    );
    assert!(!find(&at.stderr, email.as_bytes()));
    let empty = run_with_input(&cli, &["directory", "--email", "-"], &[], "\n");
    assert_eq!(empty.status.code(), Some(1));
    assert!(
        text(&empty.stderr).contains("no email to look up given"),
        "{}",
        text(&empty.stderr)
    );
    let status = cli.run(&["directory", "--status", "sleeping"], &[]);
    assert_eq!(status.status.code(), Some(2));
    assert!(text(&status.stderr).contains("expected active, suspended"));
    for args in [
        &["directory", "--kind", "robots"][..],
        &["directory", "--limit", "0"],
        &["directory", "--limit", "501"],
        &["directory", "--mfa", "maybe"],
        &["directory", "--search", "ab", "--email", "-"],
    ] {
        assert_eq!(cli.run(args, &[]).status.code(), Some(2), "{args:?}");
    }
    assert_eq!(reads().len(), before);

    // An operator without the users_read permission the desktop requires is refused, by
    // email too, and nothing is recorded as read.
    cli.ok(
        &["user", "create", "uma-user", "--role", "user"],
        &[("VIGIL_NEW_PASSWORD", "temporary passphrase 9")],
    );
    cli.ok(
        &["passwd"],
        &[
            ("VIGIL_USERNAME", "uma-user"),
            ("VIGIL_PASSWORD", "temporary passphrase 9"),
            ("VIGIL_NEW_PASSWORD", "uma's own long passphrase"),
        ],
    );
    let as_uma = [
        ("VIGIL_USERNAME", "uma-user"),
        ("VIGIL_PASSWORD", "uma's own long passphrase"),
    ];
    let before = reads().len();
    let denied = cli.run(&["directory", "--kind", "platform"], &as_uma);
    assert_eq!(denied.status.code(), Some(1));
    assert!(
        text(&denied.stderr).contains("UsersRead"),
        "{}",
        text(&denied.stderr)
    );
    assert!(denied.stdout.is_empty());
    let denied = run_with_input(
        &cli,
        &["directory", "--email", "-"],
        &as_uma,
        &format!("{email}\n"),
    );
    assert_eq!(denied.status.code(), Some(1));
    assert!(text(&denied.stderr).contains("UsersRead"));
    assert_eq!(reads().len(), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_directory_lists_every_account_as_the_desktop_does_on_sqlite() {
    the_directory_lists_every_account_as_the_desktop_does(Cli::sqlite()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_directory_lists_every_account_as_the_desktop_does_on_postgres() {
    the_directory_lists_every_account_as_the_desktop_does(Cli::postgres().await).await
}

#[test]
fn bad_values_are_usage_errors_never_panics_or_wraps() {
    let cli = Cli::sqlite();
    let id = "0193a0c4-0000-7000-8000-000000000000";
    for (args, expect) in [
        (&["audit", "list", "--since", "5é"][..], "--since"),
        (
            &["audit", "list", "--since", "99999999999999d"],
            "at most 36525d",
        ),
        (&["audit", "list", "--since=-3d"], "--since"),
        (&["security-events", "list", "--since", "7w"], "--since"),
        (
            &["charts", "--out", "/nonexistent", "--days", "8"],
            "7, 30 or 90",
        ),
        (&["incidents", "show", "../../etc/passwd"], "UUID"),
        (&["incidents", "act", id, "teleport"], "unknown action"),
        (
            &["incidents", "act", id, "extend-block:99999999999"],
            "hours",
        ),
        (
            &["blocks", "add", "999.1.1.1", "--reason", "x"],
            "IP address",
        ),
        (
            &[
                "blocks",
                "add",
                "192.0.2.1",
                "--hours",
                "0",
                "--reason",
                "x",
            ],
            "hours",
        ),
        (
            &[
                "blocks",
                "add",
                "192.0.2.1",
                "--hours",
                "4294967296",
                "--reason",
                "x",
            ],
            "hours",
        ),
        (&["blocks", "remove", "not an address"], "block id"),
        // Data-subject requests: ids, types, statuses, dates, delivery, comments, months.
        (&["dsr", "show", "../x"], "request id"),
        (&["dsr", "verify", "nope", "--code", "1"], "request id"),
        (
            &["dsr", "run", id, "--comments", "shred"],
            "anonymise or delete",
        ),
        (
            &["dsr", "extend", id, "--months", "3", "--reason", "x"],
            "1..=2",
        ),
        (
            &["dsr", "new", "--type", "deletion", "--user", "x"],
            "access, portability",
        ),
        (
            &[
                "dsr",
                "new",
                "--type",
                "access",
                "--user",
                "x",
                "--received",
                "2026-13-01",
            ],
            "YYYY-MM-DD",
        ),
        (
            &[
                "dsr",
                "new",
                "--type",
                "access",
                "--user",
                "x",
                "--received",
                "2999-01-01",
            ],
            "in the future",
        ),
        (
            &[
                "dsr",
                "new",
                "--type",
                "access",
                "--user",
                "x",
                "--deliver",
                "pigeon",
            ],
            "mail or manual",
        ),
        (&["dsr", "list", "--status", "done"], "in_progress"),
        // Holds, sessions, the outbox, retention, operators, incidents, events, demo sizes.
        (&["hold", "release", "nope"], "UUID"),
        (
            &["hold", "place", "--incident", "nope", "--reason", "x"],
            "UUID",
        ),
        (&["sessions", "revoke", "nope"], "UUID"),
        (&["outbox", "cancel", "nope"], "UUID"),
        (&["outbox", "list", "--state", "lost"], "queued, sent"),
        (
            &["retention", "set", "photos", "--days", "3"],
            "activity, comments",
        ),
        (
            &["retention", "set", "activity", "--days", "0"],
            "1..=36500",
        ),
        (
            &["retention", "set", "activity", "--action", "burn"],
            "delete, anonymize",
        ),
        (
            &["retention", "run", "--policy", "photos"],
            "activity, comments",
        ),
        (&["retention", "run", "--chunk", "0"], "1..=200000"),
        (&["retention", "runs", "--limit", "0"], "1..=500"),
        (&["user", "list", "--role", "wizard"], "expected user"),
        (&["user", "list", "--status", "sleeping"], "expected active"),
        (
            &["user", "set-role", "x", "--role", "wizard"],
            "expected user",
        ),
        (
            &["incidents", "list", "--severity", "dire"],
            "critical, high",
        ),
        (
            &["incidents", "list", "--status", "closed"],
            "open, investigating",
        ),
        (
            &["incidents", "list", "--kind", "spam"],
            "credential_stuffing",
        ),
        (
            &["security-events", "list", "--kind", "login"],
            "authorization_denied",
        ),
        (
            &["security-events", "list", "--outcome", "maybe"],
            "success, denied or failed",
        ),
        (&["demo", "seed", "--users", "0"], "1..=10000000"),
        (&["demo", "seed", "--days", "9999"], "1..=3650"),
    ] {
        let out = cli.run(args, &[]);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(expect), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
}

/// Runs `vigil ARGS` with standard input from `input` and returns its exit code, standard
/// output, standard error and peak resident memory in KiB.
///
/// The peak comes from GNU time (`/usr/bin/time -f %M`), which forks the command from its own
/// small process. Taking `wait4`'s figure for a child spawned straight from this test process
/// would be wrong: Linux carries the exec'ing process's old peak over into the new program's
/// `ru_maxrss`, and for a child spawned from here that is the whole test harness's peak (every
/// test running in parallel), not the command's.
fn run_measured(
    cli: &Cli,
    args: &[&str],
    env: &[(&str, &str)],
    input: &std::path::Path,
) -> (Option<i32>, String, String, i64) {
    let dir = tempfile::tempdir().unwrap();
    let peak_path = dir.path().join("peak");
    let mut vigil = cli.command(args);
    vigil.envs(env.iter().copied());
    let mut cmd = Command::new("/usr/bin/time");
    cmd.arg("-f")
        .arg("%M")
        .arg("-o")
        .arg(&peak_path)
        .arg(vigil.get_program())
        .args(vigil.get_args())
        .env_clear()
        .envs(vigil.get_envs().filter_map(|(k, v)| Some((k, v?))))
        .stdin(std::fs::File::open(input).unwrap());
    let out = cmd
        .output()
        .expect("GNU time at /usr/bin/time (the `time` package)");
    let report = std::fs::read_to_string(&peak_path).unwrap();
    // GNU time writes "Command exited with non-zero status N" above the figure when it was not 0.
    let peak = report.lines().last().unwrap().trim().parse().unwrap();
    (
        out.status.code(),
        text(&out.stdout),
        text(&out.stderr),
        peak,
    )
}

/// The peak a command reading the hostile feed is held to: `monitor screen`, and `activity
/// ingest` in a session (`vigil login`).
const PEAK_LIMIT_KIB: i64 = 64 * 1024;

/// Signing in with the password runs two argon2id derivations (19 MiB each) at once, which
/// sets the floor of a one-shot `activity ingest`: it may add at most this over `whoami`, the
/// same sign-in with no input. Holding the 10 MB line whole would add more than this by itself.
const OVER_SIGN_IN_LIMIT_KIB: i64 = 8 * 1024;

/// Good lines (1, 3, 7, 8) around a 10 MB line (2), one that is not UTF-8 (4), one with a NUL
/// byte (5) and one nested 10,000 deep (6).
fn hostile_feed(dir: &std::path::Path) -> std::path::PathBuf {
    let good = |i: u32| {
        format!(
            r#"{{"type":"login_attempt","user":"visitor{i}","at":"2026-11-0{i}T10:00:00Z","ip":"192.0.2.{i}","country":"GB","outcome":"failure","reason":"bad_password"}}"#
        )
        .into_bytes()
    };
    let mut feed = Vec::new();
    feed.extend(good(1));
    feed.push(b'\n');
    feed.extend(br#"{"type":"comment_submission","user":"visitor2","content":""#);
    feed.extend(std::iter::repeat_n(b'a', 10 << 20));
    feed.extend(b"\"}\n");
    feed.extend(good(3));
    feed.push(b'\n');
    feed.extend(
        b"{\"type\":\"login_attempt\",\"user\":\"vis\xfftor\",\"at\":\"2026-11-04T10:00:00Z\"}\n",
    );
    feed.extend(
        b"{\"type\":\"login_attempt\",\"user\":\"vis\0tor\",\"at\":\"2026-11-05T10:00:00Z\"}\n",
    );
    feed.extend("[".repeat(10_000).bytes());
    feed.extend("]".repeat(10_000).bytes());
    feed.push(b'\n');
    feed.extend(good(7));
    feed.extend(b"\r\n");
    feed.extend(good(8));
    let path = dir.join("feed.jsonl");
    std::fs::write(&path, feed).unwrap();
    path
}

fn hostile_feed_is_ingested_line_by_line(cli: Cli) {
    cli.ok(&["init", "--admin", "root-admin"], &[ADMIN_PW]);
    let dir = tempfile::tempdir().unwrap();
    let feed = hostile_feed(dir.path());
    let (code, out, err, peak) = run_measured(&cli, &["activity", "ingest", "--json"], &[], &feed);
    assert_eq!(code, Some(2), "{err}");
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["ingested"], 4, "{report}");
    let rejected: Vec<(u64, String)> = report["rejected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            (
                b["line"].as_u64().unwrap(),
                b["error"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        rejected.iter().map(|(n, _)| *n).collect::<Vec<_>>(),
        vec![2, 4, 5, 6],
        "{report}"
    );
    assert_eq!(rejected[0].1, "line longer than 65536 bytes (skipped)");
    assert_eq!(rejected[1].1, "the line is not UTF-8 text");
    assert_eq!(rejected[2].1, "the line holds a NUL byte");
    assert!(!rejected[3].1.contains('['), "{}", rejected[3].1);
    let empty = dir.path().join("empty");
    std::fs::write(&empty, b"").unwrap();
    // The two derivations overlap in most sign-ins but not all (on a loaded machine one may
    // end before the other starts): the baseline is the highest of three.
    let mut sign_in = 0;
    for _ in 0..3 {
        let (code, _, err, peak) = run_measured(&cli, &["whoami"], &[], &empty);
        assert_eq!(code, Some(0), "{err}");
        sign_in = sign_in.max(peak);
    }
    println!("activity ingest: peak resident {peak} KiB; whoami {sign_in} KiB");
    assert!(
        peak < sign_in + OVER_SIGN_IN_LIMIT_KIB,
        "activity ingest peaked at {peak} KiB, whoami at {sign_in} KiB"
    );

    // In a session (as a script signs in once with `vigil login`), the same feed again: the
    // same report (the good lines were taken already, so none is new), under the limit.
    let login = cli.run(&["login"], &[]);
    assert_eq!(login.status.code(), Some(0), "{}", text(&login.stderr));
    let login = text(&login.stdout);
    let session = login
        .trim()
        .strip_prefix("export VIGIL_SESSION=")
        .unwrap_or_else(|| panic!("{login}"))
        .trim_matches('\'');
    let (code, out, err, peak) = run_measured(
        &cli,
        &["activity", "ingest", "--json"],
        &[("VIGIL_SESSION", session)],
        &feed,
    );
    assert_eq!(code, Some(2), "{err}");
    let again: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(again["rejected"], report["rejected"], "{again}");
    println!("activity ingest in a session: peak resident {peak} KiB");
    assert!(
        peak < PEAK_LIMIT_KIB,
        "activity ingest in a session peaked at {peak} KiB"
    );

    // The limit is the configured one, and the human output names the lines too.
    let config = dir.path().join("config.toml");
    std::fs::write(&config, "[monitor]\nmax_line_bytes = 1024\n").unwrap();
    let mut cmd = cli.command(&["activity", "ingest", feed.to_str().unwrap()]);
    let out = cmd.env("VIGIL_CONFIG", &config).output().unwrap();
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("line 2: line longer than 1024 bytes"), "{err}");
    assert!(err.contains("line 6: "), "{err}");
    assert!(
        text(&out.stdout).contains("ingested 0 records"),
        "{}",
        text(&out.stdout)
    );
    std::fs::write(&config, "[monitor]\nmax_line_bytes = 10\n").unwrap();
    let mut cmd = cli.command(&["activity", "ingest", feed.to_str().unwrap()]);
    let out = cmd.env("VIGIL_CONFIG", &config).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("monitor.max_line_bytes"));
}

#[test]
fn a_hostile_feed_is_ingested_line_by_line_in_bounded_memory_on_sqlite() {
    hostile_feed_is_ingested_line_by_line(Cli::sqlite());
}

#[tokio::test]
async fn a_hostile_feed_is_ingested_line_by_line_in_bounded_memory_on_postgres() {
    let cli = Cli::postgres().await;
    tokio::task::spawn_blocking(move || hostile_feed_is_ingested_line_by_line(cli))
        .await
        .unwrap();
}

#[test]
fn a_hostile_feed_is_screened_line_by_line_in_bounded_memory() {
    let cli = Cli::sqlite();
    let dir = tempfile::tempdir().unwrap();
    let feed = hostile_feed(dir.path());
    let (code, out, err, peak) = run_measured(&cli, &["monitor", "screen", "--json"], &[], &feed);
    assert_eq!(code, Some(0), "{err}");
    let rows: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        rows.iter()
            .map(|r| r["line"].as_u64().unwrap())
            .collect::<Vec<_>>(),
        (1..=8).collect::<Vec<_>>()
    );
    for (i, r) in rows.iter().enumerate() {
        let expect = match i + 1 {
            2 => Some("line longer than 65536 bytes (skipped)"),
            4 => Some("the line is not UTF-8 text"),
            5 => Some("the line holds a NUL byte"),
            _ => None,
        };
        assert_eq!(r["error"].as_str(), expect, "{r}");
        assert_eq!(r.get("categories").is_some(), expect.is_none(), "{r}");
    }
    println!("monitor screen --json: peak resident {peak} KiB");
    assert!(peak < PEAK_LIMIT_KIB, "monitor screen peaked at {peak} KiB");

    let (code, out, err, peak) = run_measured(&cli, &["monitor", "screen"], &[], &feed);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        out.contains("line 2: skipped: line longer than 65536 bytes"),
        "{out}"
    );
    assert!(
        out.contains("line 4: skipped: the line is not UTF-8 text"),
        "{out}"
    );
    assert!(
        out.contains("line 5: skipped: the line holds a NUL byte"),
        "{out}"
    );
    assert!(out.contains("8 lines read, 0 flagged, 3 skipped"), "{out}");
    assert!(peak < PEAK_LIMIT_KIB, "monitor screen peaked at {peak} KiB");
}

/// Control characters a hostile comment carries: a title change and screen clear (ESC ... BEL),
/// a carriage return and newline that would forge a line, a DEL, a C1 CSI and a right-to-left
/// override. (A NUL never gets this far: ingestion refuses it, below.)
const HOSTILE_TEXT: &str =
    "\u{1b}]0;owned\u{7}\u{1b}[2J click here http://203.0.113.9/login\r\nline 9: all clear\u{7f}\u{9b}2J \u{202e}txt.exe";

fn assert_terminal_safe(out: &str) {
    for c in [
        '\u{1b}', '\u{7}', '\u{0}', '\u{7f}', '\u{9b}', '\u{202e}', '\r',
    ] {
        assert!(!out.contains(c), "{c:?} reached the terminal: {out:?}");
    }
    assert!(
        !out.lines().any(|l| l.starts_with("line 9")),
        "a forged line: {out}"
    );
}

async fn platform_text_is_escaped_on_the_terminal(cli: Cli) {
    seed_small(&cli);
    let user = some_username(&cli.url).await;
    let dir = tempfile::tempdir().unwrap();
    let feed = dir.path().join("feed.jsonl");
    let line = serde_json::json!({
        "type": "comment_submission", "user": user, "at": "2026-11-20T10:00:00Z",
        "ip": "192.0.2.77", "content": HOSTILE_TEXT,
    });
    // A NUL (JSON `\u0000`) in any field is refused by line number, on both databases.
    let nul = serde_json::json!({
        "type": "comment_submission", "user": user, "at": "2026-11-20T10:01:00Z",
        "content": "hi\u{0}there",
    });
    std::fs::write(&feed, format!("{line}\n{nul}\n")).unwrap();
    let cli = std::sync::Arc::new(cli);
    let c = cli.clone();
    let shown = tokio::task::spawn_blocking(move || {
        let out = c.run(&["activity", "ingest", feed.to_str().unwrap()], &[]);
        assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
        assert!(
            text(&out.stderr).contains("line 2: a field holds a NUL character"),
            "{}",
            text(&out.stderr)
        );
        assert!(text(&out.stdout).contains("ingested 1 records"));
        c.ok(&["monitor", "run"], &[]);
        let list: Vec<serde_json::Value> =
            serde_json::from_str(&c.ok(&["incidents", "list", "--json"], &[])).unwrap();
        let id = list
            .iter()
            .find(|i| i["username"] == user.as_str())
            .unwrap_or_else(|| panic!("no incident for the comment: {list:?}"))["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let json: serde_json::Value =
            serde_json::from_str(&c.ok(&["incidents", "show", &id, "--json"], &[])).unwrap();
        (c.ok(&["incidents", "show", &id], &[]), json)
    })
    .await
    .unwrap();
    let (human, json) = shown;
    assert_terminal_safe(&human);
    assert!(
        human.contains("\\u{1b}]0;owned\\u{7}\\u{1b}[2J click here")
            && human.contains("\\r\\nline 9: all clear\\u{7f}\\u{9b}2J \\u{202e}txt.exe"),
        "{human}"
    );
    // --json stays exact.
    assert_eq!(json["comments"][0]["text"], HOSTILE_TEXT, "{json}");
}

#[tokio::test]
async fn platform_text_is_escaped_on_the_terminal_on_sqlite() {
    platform_text_is_escaped_on_the_terminal(Cli::sqlite()).await;
}

#[tokio::test]
async fn platform_text_is_escaped_on_the_terminal_on_postgres() {
    platform_text_is_escaped_on_the_terminal(Cli::postgres().await).await;
}

#[test]
fn monitor_screen_escapes_what_it_prints_and_json_stays_exact() {
    let cli = Cli::sqlite();
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("comments.txt");
    let url = "http://203.0.113.9/\u{1b}]0;owned\u{7}\u{202e}exe";
    std::fs::write(&input, format!("click here {url}\rline 9: all clear\n")).unwrap();
    let human = cli.ok(&["monitor", "screen", input.to_str().unwrap()], &[]);
    assert_terminal_safe(&human);
    assert!(
        human.contains("http://203.0.113.9/\\u{1b}]0;owned\\u{7}\\u{202e}exe"),
        "{human}"
    );
    let json = cli.ok(
        &["monitor", "screen", input.to_str().unwrap(), "--json"],
        &[],
    );
    let row: serde_json::Value = serde_json::from_str(json.trim()).unwrap();
    assert_eq!(row["urls"][0]["url"], url, "{row}");
}

/// The modes of what a command wrote: every file `0600`, every folder Vigil made `0700`.
fn assert_private_tree(root: &std::path::Path) -> Vec<String> {
    use std::os::unix::fs::PermissionsExt;
    let mut seen = Vec::new();
    for entry in std::fs::read_dir(root).unwrap() {
        let path = entry.unwrap().path();
        let meta = std::fs::symlink_metadata(&path).unwrap();
        let mode = meta.permissions().mode() & 0o777;
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if meta.is_dir() {
            assert_eq!(mode, 0o700, "folder {}", path.display());
            seen.extend(assert_private_tree(&path));
        } else if meta.is_file() {
            assert_eq!(mode, 0o600, "file {}", path.display());
        }
        seen.push(name);
    }
    seen
}

/// Every writer of the command line: the database with its WAL and shared-memory files and
/// job lock files, the file keystore, charts, the QR code and the config file; all owner-only
/// in owner-only folders, and a symbolic link planted where a file goes is refused by name.
#[test]
fn every_file_vigil_writes_is_private_and_no_writer_follows_a_link() {
    use std::os::unix::fs::PermissionsExt;
    let root = tempfile::tempdir().unwrap();
    std::fs::set_permissions(root.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let data = root.path().join("data");
    let mut cli = Cli::sqlite();
    cli.url = format!("sqlite://{}/vigil.db", data.display());
    let keys = root.path().join("keys");
    let env = |cmd: &mut Command| {
        cmd.env("VIGIL_KEYSTORE", format!("file:{}", keys.display()));
    };
    let run = |args: &[&str]| {
        let mut cmd = cli.command(args);
        env(&mut cmd);
        cmd.env("VIGIL_ADMIN_PASSWORD", PASSWORD);
        let out = cmd.output().unwrap();
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
        text(&out.stdout)
    };
    run(&["init", "--admin", "root-admin"]);
    run(&["retention", "run", "--quiet"]);
    let charts = root.path().join("charts");
    run(&["charts", "--out", charts.to_str().unwrap(), "--days", "7"]);
    let qr = root.path().join("qr");
    std::fs::create_dir(&qr).unwrap();
    std::fs::set_permissions(&qr, std::fs::Permissions::from_mode(0o700)).unwrap();
    run(&[
        "mfa",
        "enroll",
        "--qr-png",
        qr.join("qr.png").to_str().unwrap(),
    ]);

    // The WAL and shared-memory files exist while a process has the database open (the last
    // one to close it cleanly removes them): look while an ingestion waits for its input.
    let mut open = cli.command(&["activity", "ingest", "--json"]);
    env(&mut open);
    open.stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    let mut waiting = open.spawn().unwrap();
    let wal = data.join("vigil.db-wal");
    for _ in 0..400 {
        if wal.exists() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let files = assert_private_tree(root.path());
    drop(waiting.stdin.take());
    let ended = waiting.wait_with_output().unwrap();
    assert!(ended.status.success(), "{}", text(&ended.stderr));
    for expect in ["vigil.db", "vigil.db-wal", "vigil.db-shm", "qr.png"] {
        assert!(files.iter().any(|f| f == expect), "{expect} in {files:?}");
    }
    assert!(files.iter().any(|f| f.ends_with(".lock")), "{files:?}");
    assert!(files.iter().any(|f| f.ends_with(".secret")), "{files:?}");
    assert!(files.iter().any(|f| f.ends_with("-7d.svg")), "{files:?}");
    assert!(
        !files.iter().any(|f| f.ends_with(".tmp")),
        "no temporary file left: {files:?}"
    );

    // A link planted in the charts folder is refused by name, and its target is unchanged.
    let target = root.path().join("precious.txt");
    std::fs::write(&target, b"keep me").unwrap();
    let chart = std::fs::read_dir(&charts)
        .unwrap()
        .map(|e| e.unwrap().path())
        .next()
        .unwrap();
    std::fs::remove_file(&chart).unwrap();
    std::os::unix::fs::symlink(&target, &chart).unwrap();
    let mut cmd = cli.command(&["charts", "--out", charts.to_str().unwrap(), "--days", "7"]);
    env(&mut cmd);
    let out = cmd.output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains(&format!(
            "{} is a symbolic link: not followed, nothing written",
            chart.display()
        )),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(std::fs::read(&target).unwrap(), b"keep me");
}

/// `vigil config set-database`: an administrator moves the console (its config file) from
/// this SQLite database to `target`, a Vigil database that is set up; refused, changing
/// nothing, for a moderator, a missing file, a database nobody set up, the same database and a
/// bad URL. The move is in the audit log of the database left behind.
fn the_console_moves_to_another_database(cli: Cli, target: &str) {
    cli.ok(&["init", "--admin", "root-admin"], &[ADMIN_PW]);
    cli.ok(
        &["user", "create", "mo-moderator", "--role", "moderator"],
        &[("VIGIL_NEW_PASSWORD", "temporary passphrase 9")],
    );
    cli.ok(
        &["passwd"],
        &[
            ("VIGIL_USERNAME", "mo-moderator"),
            ("VIGIL_PASSWORD", "temporary passphrase 9"),
            ("VIGIL_NEW_PASSWORD", "mo's own long passphrase"),
        ],
    );
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    let original = format!("[database]\nurl = \"{}\"\n", cli.url);
    std::fs::write(&config, &original).unwrap();
    // The console as its config file sets it up: no VIGIL_DATABASE_URL.
    let set = |url: &str, env: &[(&str, &str)]| {
        let mut cmd = cli.command(&["config", "set-database", url, "--json"]);
        cmd.env_remove("VIGIL_DATABASE_URL")
            .env("VIGIL_CONFIG", &config)
            .stdin(std::process::Stdio::null());
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output().unwrap()
    };
    let unchanged = || assert_eq!(std::fs::read_to_string(&config).unwrap(), original);

    let empty = tempfile::tempdir().unwrap();
    let never_set_up = format!("sqlite://{}/empty.db", empty.path().display());
    cli.ok(
        &["migrate"],
        &[("VIGIL_DATABASE_URL", never_set_up.as_str())],
    );
    let missing = format!("sqlite://{}/missing.db", empty.path().display());
    for (url, env, expect) in [
        (
            target,
            &[
                ("VIGIL_USERNAME", "mo-moderator"),
                ("VIGIL_PASSWORD", "mo's own long passphrase"),
            ][..],
            "ConfigManage",
        ),
        (missing.as_str(), &[], "there is no database file"),
        (never_set_up.as_str(), &[], "is not set up"),
        (cli.url.as_str(), &[], "already"),
        ("ftp://example.org/vigil", &[], "sqlite"),
    ] {
        let out = set(url, env);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{url}: {err}");
        assert!(err.contains(expect), "{url}: {err}");
        unchanged();
    }
    assert!(!empty.path().join("missing.db").exists(), "nothing created");

    let out = set(target, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let change: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let shown = change["to"].as_str().unwrap().to_owned();
    assert!(!shown.contains(&password_in(target)), "{shown}");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&config).unwrap().permissions().mode() & 0o777,
        0o600
    );
    // The console now reads the new database from its file.
    let mut show = cli.command(&["config", "show", "--json"]);
    show.env_remove("VIGIL_DATABASE_URL")
        .env("VIGIL_CONFIG", &config);
    let shown_config: serde_json::Value =
        serde_json::from_slice(&show.output().unwrap().stdout).unwrap();
    assert_eq!(
        shown_config["database"]["url"].as_str(),
        Some(shown.as_str())
    );
    // The database left behind records who moved the console, and where to.
    let audit: serde_json::Value = serde_json::from_str(&cli.ok(
        &[
            "audit",
            "list",
            "--action",
            "config.database_changed",
            "--json",
        ],
        &[],
    ))
    .unwrap();
    let entries = audit.as_array().unwrap();
    assert_eq!(entries.len(), 1, "{audit}");
    assert_eq!(
        entries[0]["target"].as_str(),
        Some(shown.as_str()),
        "{audit}"
    );
    assert!(!audit.to_string().contains(&password_in(target)));
}

/// The password a URL holds, or a string no audit entry contains.
fn password_in(url: &str) -> String {
    url.split_once("://")
        .and_then(|(_, rest)| rest.split_once('@'))
        .and_then(|(auth, _)| auth.split_once(':'))
        .map_or_else(
            || "\u{0}no password\u{0}".to_owned(),
            |(_, pw)| pw.to_owned(),
        )
}

#[test]
fn an_administrator_moves_the_console_to_another_sqlite_database() {
    let other = Cli::sqlite();
    other.ok(&["init", "--admin", "other-admin"], &[ADMIN_PW]);
    let target = other.url.clone();
    the_console_moves_to_another_database(Cli::sqlite(), &target);
}

#[tokio::test]
async fn an_administrator_moves_the_console_to_a_postgres_database() {
    let other = Cli::postgres().await;
    let target = other.url.clone();
    tokio::task::spawn_blocking(move || {
        other.ok(&["init", "--admin", "other-admin"], &[ADMIN_PW]);
        the_console_moves_to_another_database(Cli::sqlite(), &target);
    })
    .await
    .unwrap();
}

/// `vigil bench --monitor N --json` as it is run for the figures, small: every line is
/// ingested and every record judged once, whether the detectors run after ingestion or
/// alongside it (`--together`, where the worker follows on from run to run).
fn bench_monitor(cli: &Cli, together: bool) -> serde_json::Value {
    let mut args = vec!["bench", "--monitor", "3000", "--users", "100", "--json"];
    if together {
        args.push("--together");
    }
    serde_json::from_str(&cli.ok(&args, &[])).unwrap()
}

/// Returns the two reports.
async fn the_monitoring_benchmark_judges_every_line_once(
    after: Cli,
    together: Cli,
) -> [serde_json::Value; 2] {
    let after = bench_monitor(&after, false);
    let with = bench_monitor(&together, true);
    for r in [&after, &with] {
        assert_eq!(r["events"], 3000, "{r}");
        // The lines and the 100 accounts' seeded history, each judged once.
        assert!(r["judged"].as_u64().unwrap() > 3000, "{r}");
        assert!(r["combined_per_s"].as_f64().unwrap() > 0.0, "{r}");
    }
    assert_eq!(after["judged"], with["judged"], "{after} {with}");
    assert_eq!(
        (&after["together"], &after["runs"]),
        (&false.into(), &1.into())
    );
    assert_eq!(with["together"], true);
    assert!(with["runs"].as_u64().unwrap() >= 1, "{with}");
    [after, with]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_monitoring_benchmark_judges_every_line_once_on_sqlite() {
    the_monitoring_benchmark_judges_every_line_once(Cli::sqlite(), Cli::sqlite()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_monitoring_benchmark_judges_every_line_once_on_postgres() {
    let (after, together) = (Cli::postgres().await, Cli::postgres().await);
    // On Postgres the floor is measured in the same run: `psql` copying the same rows.
    for r in the_monitoring_benchmark_judges_every_line_once(after, together).await {
        assert!(r["floor_per_s"].as_f64().unwrap() > 0.0, "{r}");
    }
}

/// `vigil bench --charts --events N` ingests the lines over the 90 days it charts.
#[test]
fn the_charts_benchmark_charts_the_lines_it_ingests() {
    let cli = Cli::sqlite();
    let out = cli.ok(
        &[
            "bench",
            "--charts",
            "--users",
            "50",
            "--comments",
            "200",
            "--events",
            "4000",
            "--json",
        ],
        &[],
    );
    let r: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(r["activity_events"].as_u64().unwrap() >= 4000, "{r}");
    assert_eq!(r["charts"].as_array().unwrap().len(), 4, "{r}");
    // --events belongs to --monitor and --charts only.
    let refused = cli.run(&["bench", "--events", "5"], &[]);
    assert_eq!(refused.status.code(), Some(2));
}
