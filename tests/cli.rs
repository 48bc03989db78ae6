//! The `vigil` command line, run as a user would: exit codes, messages, and the foundation's
//! acceptance flow (init, demo seed, audit verify, tamper, verify again).

mod common;

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

    fn run(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
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
            .stdin(std::process::Stdio::null());
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
    assert_eq!(cli.ok(&["audit", "verify"], &[]).trim(), "ok: 4 entries");

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
