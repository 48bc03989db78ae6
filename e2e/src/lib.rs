//! Driving the real Vigil desktop app through `tauri-driver` (WebDriver over WebKitGTK).
//!
//! [`App::launch`] starts `tauri-driver` with an isolated home (its own config, data folder and
//! therefore database), opens a WebDriver session that launches the app binary, and stops the
//! driver with SIGTERM when dropped (a SIGKILL would orphan WebKitWebDriver).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};

/// The result type of the helpers.
pub type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// A running app under a WebDriver session.
pub struct App {
    /// The WebDriver session.
    pub client: Client,
    driver: Child,
    /// The app's isolated home (config, data).
    pub home: PathBuf,
    shots: Option<PathBuf>,
}

fn env_path(name: &str) -> Result<PathBuf> {
    Ok(PathBuf::from(std::env::var(name).map_err(|_| {
        format!("{name} is not set: run the end-to-end tests with scripts/e2e")
    })?))
}

impl App {
    /// Starts tauri-driver on `port` and the app binary named by `VIGIL_E2E_APP`, with its
    /// config and data under `home`.
    pub async fn launch(home: &Path, port: u16) -> Result<Self> {
        Self::launch_with(home, port, &[]).await
    }

    /// [`App::launch`] with extra environment for the app (such as `VIGIL_IDLE_TIMEOUT_SECS`).
    pub async fn launch_with(home: &Path, port: u16, env: &[(&str, &str)]) -> Result<Self> {
        Self::launch_binary(&env_path("VIGIL_E2E_APP")?, home, port, env).await
    }

    /// [`App::launch_with`] for another Tauri binary than `VIGIL_E2E_APP` (desktop-bench's
    /// bare window).
    pub async fn launch_binary(
        app: &Path,
        home: &Path,
        port: u16,
        env: &[(&str, &str)],
    ) -> Result<Self> {
        let driver_bin = env_path("VIGIL_E2E_TAURI_DRIVER")?;
        let native = std::env::var("VIGIL_E2E_NATIVE_DRIVER")
            .unwrap_or_else(|_| "/usr/bin/WebKitWebDriver".to_owned());
        std::fs::create_dir_all(home.join("config"))?;
        std::fs::create_dir_all(home.join("data"))?;
        std::fs::create_dir_all(home.join("Downloads"))?;
        let driver = Command::new(driver_bin)
            .args([
                "--port",
                &port.to_string(),
                "--native-port",
                &(port + 1).to_string(),
            ])
            .args(["--native-driver", &native])
            .env("XDG_CONFIG_HOME", home.join("config"))
            .env("XDG_DATA_HOME", home.join("data"))
            .env("XDG_DOWNLOAD_DIR", home.join("Downloads"))
            .env_remove("VIGIL_DATABASE_URL")
            .env_remove("VIGIL_CONFIG")
            .env_remove("VIGIL_KEYSTORE")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()?;
        let mut caps = serde_json::Map::new();
        caps.insert(
            "tauri:options".into(),
            serde_json::json!({ "application": app }),
        );
        caps.insert("browserName".into(), "wry".into());
        let url = format!("http://127.0.0.1:{port}");
        let mut last = None;
        for _ in 0..100 {
            match ClientBuilder::native()
                .capabilities(caps.clone())
                .connect(&url)
                .await
            {
                Ok(client) => {
                    return Ok(Self {
                        client,
                        driver,
                        home: home.to_owned(),
                        shots: std::env::var_os("VIGIL_E2E_SCREENSHOTS").map(PathBuf::from),
                    });
                }
                Err(e) => last = Some(e),
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let mut driver = driver;
        stop(&mut driver);
        Err(format!("no WebDriver session from tauri-driver on port {port}: {last:?}").into())
    }

    /// The element with this `data-testid`, waiting up to 20 s for it to appear.
    pub async fn el(&self, testid: &str) -> Result<Element> {
        self.wait_css(&format!("[data-testid=\"{testid}\"]")).await
    }

    /// The first element matching `css`, waiting up to 20 s.
    pub async fn wait_css(&self, css: &str) -> Result<Element> {
        self.wait_css_for(css, Duration::from_secs(20)).await
    }

    /// The first element matching `css`, waiting up to `limit` (for slow work such as seeding).
    pub async fn wait_css_for(&self, css: &str, limit: Duration) -> Result<Element> {
        Ok(self
            .client
            .wait()
            .at_most(limit)
            .for_element(Locator::Css(css))
            .await
            .map_err(|e| format!("{css}: {e}"))?)
    }

    /// The attributes `names` and the visible text (as `"text"`) of the first element matching
    /// `css`, read in one step in the page, waiting up to `limit` for one to match. A row the
    /// page re-renders between finding and reading would be stale to read attribute by
    /// attribute; read at once, it is one consistent state.
    pub async fn wait_read(
        &self,
        css: &str,
        names: &[&str],
        limit: Duration,
    ) -> Result<std::collections::HashMap<String, String>> {
        let started = std::time::Instant::now();
        loop {
            let found = self
                .client
                .execute(
                    "const [css, names] = arguments;
                     const el = document.querySelector(css);
                     if (!el) return null;
                     const out = { text: el.innerText };
                     for (const n of names) out[n] = el.getAttribute(n) ?? '';
                     return out;",
                    vec![css.into(), serde_json::json!(names)],
                )
                .await?;
            if let serde_json::Value::Object(map) = found {
                return Ok(map
                    .into_iter()
                    .map(|(k, v)| (k, v.as_str().unwrap_or_default().to_owned()))
                    .collect());
            }
            if started.elapsed() > limit {
                return Err(format!("{css}: nothing matched within {limit:?}").into());
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Waits (up to 20 s) until no element matches `css`.
    pub async fn wait_gone(&self, css: &str) -> Result<()> {
        for _ in 0..100 {
            if self.client.find_all(Locator::Css(css)).await?.is_empty() {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Err(format!("{css} is still on the page").into())
    }

    /// Chooses the option with `value` in the `<select>` with this `data-testid`, as a person
    /// picking it would (the value changes, then a `change` event).
    pub async fn select(&self, testid: &str, value: &str) -> Result<()> {
        let css = format!("[data-testid=\"{testid}\"]");
        self.wait_css(&css).await?;
        let found = self
            .client
            .execute(
                "const [css, value] = arguments;
                 const el = document.querySelector(css);
                 if (![...el.options].some((o) => o.value === value)) return false;
                 el.value = value;
                 el.dispatchEvent(new Event('change', { bubbles: true }));
                 return true;",
                vec![css.clone().into(), value.into()],
            )
            .await?;
        if found != serde_json::Value::Bool(true) {
            return Err(format!("{css} has no option {value:?}").into());
        }
        Ok(())
    }

    /// The value of attribute `name` of every element matching `css`, in page order.
    pub async fn attrs(&self, css: &str, name: &str) -> Result<Vec<String>> {
        // A list the page re-renders between finding and reading is read again.
        let mut tries = 0;
        'again: loop {
            tries += 1;
            let mut out = Vec::new();
            for e in self.client.find_all(Locator::Css(css)).await? {
                match e.attr(name).await {
                    Ok(Some(v)) => out.push(v),
                    Ok(None) => {}
                    Err(fantoccini::error::CmdError::Standard(w))
                        if tries < 5
                            && w.error == fantoccini::error::ErrorStatus::StaleElementReference =>
                    {
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        continue 'again;
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            return Ok(out);
        }
    }

    /// Whether an element with this `data-testid` is on the page now.
    pub async fn present(&self, testid: &str) -> Result<bool> {
        Ok(!self
            .client
            .find_all(Locator::Css(&format!("[data-testid=\"{testid}\"]")))
            .await?
            .is_empty())
    }

    /// Finds the first element matching `css` (waiting up to 20 s) and runs `act` on it. If the
    /// page re-rendered it between the finding and the acting (a stale element: the action did
    /// not happen), it is found again and the action retried, up to five times.
    pub async fn on_css<T, F, Fut>(&self, css: &str, act: F) -> Result<T>
    where
        F: Fn(Element) -> Fut,
        Fut: std::future::Future<Output = std::result::Result<T, fantoccini::error::CmdError>>,
    {
        let mut tries = 0;
        loop {
            tries += 1;
            match act(self.wait_css(css).await?).await {
                Err(fantoccini::error::CmdError::Standard(w))
                    if tries < 5
                        && w.error == fantoccini::error::ErrorStatus::StaleElementReference =>
                {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                done => return Ok(done.map_err(|e| format!("{css}: {e}"))?),
            }
        }
    }

    /// [`App::on_css`] for the element with this `data-testid`.
    pub async fn on<T, F, Fut>(&self, testid: &str, act: F) -> Result<T>
    where
        F: Fn(Element) -> Fut,
        Fut: std::future::Future<Output = std::result::Result<T, fantoccini::error::CmdError>>,
    {
        self.on_css(&format!("[data-testid=\"{testid}\"]"), act)
            .await
    }

    /// Clicks the element with this `data-testid`.
    pub async fn click(&self, testid: &str) -> Result<()> {
        self.on(testid, |e| async move { e.click().await.map(drop) })
            .await
    }

    /// Clicks the first element matching `css`.
    pub async fn click_css(&self, css: &str) -> Result<()> {
        self.on_css(css, |e| async move { e.click().await.map(drop) })
            .await
    }

    /// The attribute `name` of the first element matching `css`.
    pub async fn attr_css(&self, css: &str, name: &str) -> Result<Option<String>> {
        self.on_css(css, |e| async move { e.attr(name).await })
            .await
    }

    /// The attribute `name` of the element with this `data-testid`.
    pub async fn attr(&self, testid: &str, name: &str) -> Result<Option<String>> {
        self.on(testid, |e| async move { e.attr(name).await }).await
    }

    /// Ticks (or unticks) the checkbox with this `data-testid`, whatever its state was.
    pub async fn set_checked(&self, testid: &str, on: bool) -> Result<()> {
        self.on(testid, |e| async move {
            if e.is_selected().await? != on {
                e.click().await?;
            }
            Ok(())
        })
        .await
    }

    /// Clears the input with this `data-testid` and types `text` into it.
    pub async fn fill(&self, testid: &str, text: &str) -> Result<()> {
        self.on(testid, |e| async move {
            e.clear().await?;
            e.send_keys(text).await
        })
        .await
    }

    /// The visible text of the element with this `data-testid`.
    pub async fn text(&self, testid: &str) -> Result<String> {
        self.on(testid, |e| async move { e.text().await }).await
    }

    /// The visible text of the first element matching `css`.
    pub async fn text_css(&self, css: &str) -> Result<String> {
        self.on_css(css, |e| async move { e.text().await }).await
    }

    /// The visible text of every element matching `css`, in page order, read in one step in
    /// the page (so a list re-rendered meanwhile is read whole, never half).
    pub async fn texts(&self, css: &str) -> Result<Vec<String>> {
        let found = self
            .client
            .execute(
                "return [...document.querySelectorAll(arguments[0])].map((e) => e.innerText);",
                vec![css.into()],
            )
            .await?;
        Ok(serde_json::from_value(found)?)
    }

    /// Waits (up to 20 s) until the element's text contains `needle`; returns the text.
    pub async fn wait_text(&self, testid: &str, needle: &str) -> Result<String> {
        let mut last = String::new();
        for _ in 0..100 {
            if let Ok(t) = self.text(testid).await {
                if t.contains(needle) {
                    return Ok(t);
                }
                last = t;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Err(format!("{testid} never showed {needle:?}; last text {last:?}").into())
    }

    /// Calls a shell command straight through the IPC bridge, as a script in the page could,
    /// bypassing the UI. Returns `Ok(value)` or `Err(error object)`.
    pub async fn invoke(
        &self,
        command: &str,
        args: serde_json::Value,
    ) -> Result<std::result::Result<serde_json::Value, serde_json::Value>> {
        let out = self
            .client
            .execute_async(
                "const [cmd, args, done] = arguments;
                 window.__TAURI_INTERNALS__.invoke(cmd, args)
                   .then((v) => done({ ok: v === undefined ? null : v }))
                   .catch((e) => done({ err: e }));",
                vec![command.into(), args],
            )
            .await?;
        Ok(match out.get("err") {
            Some(e) => Err(e.clone()),
            None => Ok(out.get("ok").cloned().unwrap_or(serde_json::Value::Null)),
        })
    }

    /// Saves a screenshot of the window as `<VIGIL_E2E_SCREENSHOTS>/<name>.png`, if set.
    pub async fn screenshot(&self, name: &str) -> Result<()> {
        if let Some(dir) = &self.shots {
            std::fs::create_dir_all(dir)?;
            let png = self.client.screenshot().await?;
            std::fs::write(dir.join(format!("{name}.png")), png)?;
        }
        Ok(())
    }

    /// After a failed step: a screenshot named `failure` and every alert's text on stderr.
    pub async fn report_failure(&self) {
        let _ = self.screenshot("failure").await;
        if let Ok(alerts) = self.client.find_all(Locator::Css("[role=alert]")).await {
            for a in alerts {
                if let Ok(t) = a.text().await {
                    eprintln!("alert on screen: {t}");
                }
            }
        }
    }

    /// Ends the session (the app quits) and stops the driver.
    pub async fn quit(mut self) -> Result<()> {
        let closed = self.client.clone().close().await;
        self.stop_driver();
        closed?;
        Ok(())
    }

    fn stop_driver(&mut self) {
        stop(&mut self.driver);
    }
}

impl Drop for App {
    fn drop(&mut self) {
        if let Ok(None) = self.driver.try_wait() {
            self.stop_driver();
        }
    }
}

/// The current TOTP code for a base32 secret as shown on screen (spaces allowed), and its
/// time step.
pub fn totp_now(secret_on_screen: &str) -> Result<(String, u64)> {
    let compact: String = secret_on_screen
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .collect();
    let bytes = totp_rs::Secret::Encoded(compact)
        .to_bytes()
        .map_err(|e| format!("the secret on screen is not base32: {e:?}"))?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs();
    let step = now / vigil::mfa::STEP_SECONDS;
    Ok((vigil::mfa::code_at(&bytes, step, vigil::mfa::DIGITS), step))
}

/// A code for a time step after `used` (a used code is refused as a replay): waits for the
/// next step if need be.
pub async fn fresh_totp(secret_on_screen: &str, used: u64) -> Result<(String, u64)> {
    loop {
        let (code, step) = totp_now(secret_on_screen)?;
        if step > used {
            return Ok((code, step));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Stops tauri-driver with SIGTERM (it then ends WebKitWebDriver; a SIGKILL would orphan it)
/// and waits for it.
fn stop(driver: &mut Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &driver.id().to_string()])
        .status();
    let _ = driver.wait();
}
