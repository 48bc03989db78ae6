//! The installed app starts to its first-run screen (run by scripts/package-test against the
//! binary the .deb installed): launches it in a fresh home through tauri-driver, waits for the
//! setup form, and saves a screenshot named `package-first-run`.

use std::path::PathBuf;

use vigil_e2e::{App, Result};

#[tokio::main]
async fn main() -> Result<()> {
    let shots = PathBuf::from(
        std::env::var("VIGIL_E2E_SCREENSHOTS")
            .map_err(|_| "VIGIL_E2E_SCREENSHOTS is not set: run with scripts/package-test")?,
    );
    let home = std::env::temp_dir().join(format!("vigil-first-run-{}", std::process::id()));
    let app = App::launch(&home, 4490).await?;
    let outcome = async {
        app.el("setup-username").await?;
        app.el("setup-submit").await?;
        app.screenshot("package-first-run").await
    }
    .await;
    if outcome.is_err() {
        app.report_failure().await;
    }
    app.quit().await?;
    let _ = std::fs::remove_dir_all(&home);
    outcome?;
    let shot = shots.join("package-first-run.png");
    let size = std::fs::metadata(&shot)
        .map_err(|e| format!("no screenshot at {}: {e}", shot.display()))?
        .len();
    if size < 1024 {
        return Err(format!("the screenshot {} is only {size} bytes", shot.display()).into());
    }
    println!("first-run screen: {} ({size} bytes)", shot.display());
    Ok(())
}
