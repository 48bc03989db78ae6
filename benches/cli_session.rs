//! A command-line command with a session (`VIGIL_SESSION`: the sealed record opened, the
//! access token verified, no argon2id) against the same command signing in
//! (`VIGIL_USERNAME`/`VIGIL_PASSWORD`: argon2id for the password and again for the key pair),
//! each as a whole `vigil` process, alternated, on a fresh SQLite database and file keystore.
//!
//! `cargo bench --bench cli_session -- RUNS` (default 21); prints the medians, in ms.

use std::process::Command;
use std::time::{Duration, Instant};

const PASSWORD: &str = "correct horse battery staple";

fn main() {
    let runs: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(21);
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/vigil.db", dir.path().display());
    let keystore = format!("file:{}", dir.path().join("ks").display());
    let vigil = |args: &[&str], env: &[(&str, &str)]| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_vigil"));
        cmd.args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", dir.path())
            .env("VIGIL_DATABASE_URL", &url)
            .env("VIGIL_KEYSTORE", &keystore)
            // A throwaway database: the administrator is not held at MFA enrolment.
            .env("VIGIL_REQUIRE_MFA", "none")
            .stdin(std::process::Stdio::null());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "vigil {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let password = [
        ("VIGIL_USERNAME", "root-admin"),
        ("VIGIL_PASSWORD", PASSWORD),
    ];
    vigil(
        &["init", "--admin", "root-admin"],
        &[("VIGIL_ADMIN_PASSWORD", PASSWORD)],
    );
    let session = vigil(&["login"], &password)
        .trim()
        .strip_prefix("export VIGIL_SESSION=")
        .unwrap()
        .to_owned();
    let with_session = [("VIGIL_SESSION", session.as_str())];
    let command = ["whoami", "--json"];
    // Warm the caches once each.
    vigil(&command, &with_session);
    vigil(&command, &password);
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        let t = Instant::now();
        vigil(&command, &with_session);
        a.push(t.elapsed());
        let t = Instant::now();
        vigil(&command, &password);
        b.push(t.elapsed());
    }
    let median = |v: &mut Vec<Duration>| {
        v.sort();
        v[v.len() / 2].as_secs_f64() * 1000.0
    };
    println!(
        "`vigil whoami --json`, median of {runs} processes: with VIGIL_SESSION {:.1} ms; \
         signing in with VIGIL_USERNAME/VIGIL_PASSWORD {:.1} ms",
        median(&mut a),
        median(&mut b)
    );
}
