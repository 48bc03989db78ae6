//! Figures of the desktop app, measured in its real window (run by scripts/desktop-bench):
//! cold start to the first screen, idle memory of the whole app (shell plus WebKit's web and
//! network processes) against the floor of a bare Tauri window (the vigil-floor crate: same
//! Tauri, WebKitGTK, window and CSP, a blank page) measured in the same run, and, with 100,000
//! platform users seeded, the users page's time from a click (next page, a filter) to its rows
//! rendered, as the page itself records it.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use vigil_e2e::{fresh_totp, totp_now, App, Result};

const ADMIN: &str = "root-admin";
const PASSWORD: &str = "correct horse battery 42";

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// Memory (KiB) of `pid` and every process below it: (RSS, PSS), with each process's name, PSS
/// and anonymous PSS (MiB; heaps, the JavaScript heap, buffers: what is not a mapped file such
/// as a library or a font). PSS charges shared pages (the WebKit and GTK libraries every process maps) to each
/// process in proportion, so summing it over processes does not count them twice.
fn tree_memory_kib(pid: u32) -> (u64, u64, Vec<(String, u64, u64)>) {
    let field = |text: &str, key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .unwrap_or(0)
    };
    let (mut rss, mut pss, mut each) = (0, 0, Vec::new());
    let mut stack = vec![pid];
    while let Some(p) = stack.pop() {
        let status = std::fs::read_to_string(format!("/proc/{p}/status")).unwrap_or_default();
        let rollup = std::fs::read_to_string(format!("/proc/{p}/smaps_rollup")).unwrap_or_default();
        rss += field(&status, "VmRSS:");
        let own = field(&rollup, "Pss:");
        pss += own;
        each.push((
            status
                .lines()
                .next()
                .unwrap_or_default()
                .trim_start_matches("Name:")
                .trim()
                .to_owned(),
            own / 1024,
            field(&rollup, "Pss_Anon:") / 1024,
        ));
        if let Ok(children) = std::fs::read_to_string(format!("/proc/{p}/task/{p}/children")) {
            stack.extend(
                children
                    .split_whitespace()
                    .filter_map(|c| c.parse::<u32>().ok()),
            );
        }
    }
    (rss, pss, each)
}

/// The newest process whose command line names `binary`.
fn pid_of(binary: &str) -> Option<u32> {
    let out = std::process::Command::new("pgrep")
        .args(["-n", "-f", binary])
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stdout).trim().parse().ok()
}

fn app_pid() -> Option<u32> {
    pid_of("vigil-desktop")
}

/// PSS (MiB) per process kind of a process tree: the shell (the Tauri binary itself), WebKit's
/// web process and its network process, and anything else.
#[derive(Debug, Default, Clone, Copy)]
struct Split {
    shell: f64,
    web: f64,
    network: f64,
    other: f64,
}

impl Split {
    fn of(tree: &(u64, u64, Vec<(String, u64, u64)>), shell: &str) -> Self {
        Self::by(tree, shell, |_, pss, _| pss)
    }

    /// The anonymous part of [`Split::of`].
    fn anon(tree: &(u64, u64, Vec<(String, u64, u64)>), shell: &str) -> Self {
        Self::by(tree, shell, |_, _, anon| anon)
    }

    fn by(
        tree: &(u64, u64, Vec<(String, u64, u64)>),
        shell: &str,
        pick: impl Fn(&str, u64, u64) -> u64,
    ) -> Self {
        let mut split = Self::default();
        for (name, pss, anon) in &tree.2 {
            let mib = pick(name, *pss, *anon);
            let slot = if shell.starts_with(name.as_str()) {
                &mut split.shell
            } else if name.starts_with("WebKitWebProces") {
                &mut split.web
            } else if name.starts_with("WebKitNetworkPr") {
                &mut split.network
            } else {
                &mut split.other
            };
            *slot += mib as f64;
        }
        split
    }

    fn total(&self) -> f64 {
        self.shell + self.web + self.network + self.other
    }
}

fn ratio(a: f64, b: f64) -> String {
    if b > 0.0 {
        format!("{:.2}x", a / b)
    } else {
        "n/a".into()
    }
}

/// The bare window's idle memory: launched the same way as the app (tauri-driver), left 5 s to
/// settle on its blank page, measured, closed.
async fn floor_memory(floor: &std::path::Path, home: &std::path::Path) -> Result<(Split, Split)> {
    let app = App::launch_binary(floor, &home.join("floor"), 4480, &[]).await?;
    app.wait_css("body").await?;
    tokio::time::sleep(Duration::from_secs(5)).await;
    let tree = pid_of("vigil-floor")
        .map(tree_memory_kib)
        .ok_or("the bare window's process is not running")?;
    app.quit().await?;
    Ok((
        Split::of(&tree, "vigil-floor"),
        Split::anon(&tree, "vigil-floor"),
    ))
}

async fn render_ms(app: &App, serial_before: &str) -> Result<f64> {
    for _ in 0..200 {
        let table = app.el("users-table").await?;
        let serial = table.attr("data-render-serial").await?.unwrap_or_default();
        if serial != serial_before {
            let ms = table.attr("data-last-render-ms").await?.unwrap_or_default();
            return Ok(ms.parse()?);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Err("the users table never re-rendered".into())
}

async fn serial(app: &App) -> Result<String> {
    Ok(app
        .el("users-table")
        .await?
        .attr("data-render-serial")
        .await?
        .unwrap_or_default())
}

#[tokio::main]
async fn main() -> Result<()> {
    let home = std::env::temp_dir().join(format!("vigil-desktop-bench-{}", std::process::id()));
    std::fs::create_dir_all(&home)?;
    let vigil = std::env::var("VIGIL_BENCH_CLI").unwrap_or_else(|_| "target/release/vigil".into());
    let floor_bin = PathBuf::from(
        std::env::var("VIGIL_BENCH_FLOOR").unwrap_or_else(|_| "target/release/vigil-floor".into()),
    );
    let (floor, floor_anon) = floor_memory(&floor_bin, &home).await?;

    // Cold start: from asking for the window to the first screen's form being there.
    let mut starts = Vec::new();
    for run in 0..5u16 {
        let run_home = home.join(format!("cold-{run}"));
        let t = Instant::now();
        let app = App::launch(&run_home, 4450 + 2 * run).await?;
        app.el("setup-username").await?;
        starts.push(t.elapsed().as_secs_f64() * 1000.0);
        app.quit().await?;
    }

    let app = App::launch(&home, 4470).await?;
    app.el("setup-username").await?;
    app.fill("setup-username", ADMIN).await?;
    app.fill("setup-password", PASSWORD).await?;
    app.fill("setup-password-confirm", PASSWORD).await?;
    app.click("setup-submit").await?;
    // The default `[auth] require_mfa` policy holds the new administrator at MFA enrolment.
    app.click("mfa-start").await?;
    let secret = app.text("mfa-secret").await?;
    let (code, used) = totp_now(&secret)?;
    app.fill("mfa-confirm-code", &code).await?;
    app.click("mfa-confirm-submit").await?;
    app.click("backup-codes-done").await?;
    app.el("current-user").await?;
    // Idle on the users page (the administrator alone), the figure compared with the floor.
    app.click("nav-users").await?;
    app.el("users-table").await?;
    tokio::time::sleep(Duration::from_secs(5)).await;
    let idle = app_pid().map(tree_memory_kib).unwrap_or_default();
    let vigil_split = Split::of(&idle, "vigil-desktop");
    let vigil_anon = Split::anon(&idle, "vigil-desktop");

    eprintln!("seeding 100,000 platform users...");
    // The command line signs in with the second factor too (a later code: the enrolment's is
    // spent).
    let (code, _) = fresh_totp(&secret, used).await?;
    let status = std::process::Command::new(&vigil)
        .args([
            "demo",
            "seed",
            "--users",
            "100000",
            "--comments",
            "20000",
            "--days",
            "30",
        ])
        .env("XDG_CONFIG_HOME", home.join("config"))
        .env("XDG_DATA_HOME", home.join("data"))
        .env("VIGIL_USERNAME", ADMIN)
        .env("VIGIL_PASSWORD", PASSWORD)
        .env("VIGIL_TOTP", &code)
        .status()?;
    if !status.success() {
        return Err("demo seed failed".into());
    }

    app.click("nav-users").await?;
    app.wait_text("users-total", "100,").await?;
    let mut pages = Vec::new();
    for _ in 0..15 {
        let before = serial(&app).await?;
        app.click("users-next").await?;
        pages.push(render_ms(&app, &before).await?);
    }
    let mut filters = Vec::new();
    for status in ["suspended", "active", "", "suspended", "active", ""] {
        let before = serial(&app).await?;
        let select = app.el("users-filter-status").await?;
        select
            .select_by(fantoccini::Locator::Css(&format!(
                "option[value=\"{status}\"]"
            )))
            .await?;
        filters.push(render_ms(&app, &before).await?);
    }
    let busy = app_pid().map(tree_memory_kib).unwrap_or_default();
    app.screenshot("users-100k").await?;
    app.quit().await?;
    let _ = std::fs::remove_dir_all(&home);

    println!(
        "cold start to first screen (median of 5): {:.0} ms",
        median(starts.clone())
    );
    println!("  runs: {starts:.0?}");
    println!(
        "idle memory, whole app after sign-in on the users page: {} MiB PSS ({} MiB RSS summed); per process, MiB PSS: {:?}",
        idle.1 / 1024,
        idle.0 / 1024,
        idle.2
    );
    println!(
        "floor, bare Tauri window (blank page, same Tauri, WebKitGTK and CSP): {:.0} MiB PSS (shell {:.0}, web {:.0}, network {:.0}, other {:.0})",
        floor.total(),
        floor.shell,
        floor.web,
        floor.network,
        floor.other
    );
    println!(
        "Vigil idle / floor (target <= 1.3x): whole {} ({:.0} / {:.0} MiB), shell {} ({:.0} / {:.0}), web {} ({:.0} / {:.0}), network {} ({:.0} / {:.0})",
        ratio(vigil_split.total(), floor.total()),
        vigil_split.total(),
        floor.total(),
        ratio(vigil_split.shell, floor.shell),
        vigil_split.shell,
        floor.shell,
        ratio(vigil_split.web, floor.web),
        vigil_split.web,
        floor.web,
        ratio(vigil_split.network, floor.network),
        vigil_split.network,
        floor.network
    );
    println!(
        "of which anonymous (heaps, the JavaScript heap; the rest is mapped files: libraries, fonts), MiB PSS: Vigil shell {:.0}, web {:.0}, network {:.0}; floor shell {:.0}, web {:.0}, network {:.0}",
        vigil_anon.shell,
        vigil_anon.web,
        vigil_anon.network,
        floor_anon.shell,
        floor_anon.web,
        floor_anon.network
    );
    println!(
        "memory after browsing 100k users: {} MiB PSS ({} MiB RSS summed)",
        busy.1 / 1024,
        busy.0 / 1024
    );
    println!(
        "users page, next page on 100k users (median of 15): {:.1} ms",
        median(pages.clone())
    );
    println!(
        "users page, status filter on 100k users (median of 6): {:.1} ms",
        median(filters.clone())
    );
    Ok(())
}
