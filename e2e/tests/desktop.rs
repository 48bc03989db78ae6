//! The desktop app end to end, in its real window: first-run setup, MFA enrolment from the
//! on-screen secret (where the MFA policy puts a new administrator before anything else), sign-out, sign-in with password and TOTP, a moderator created and signed
//! in who sees no admin screens and whose direct calls to admin commands are refused, and the
//! audit screen showing all of it with a verified chain; then demo data loaded from Settings, a
//! compliance officer created, given their data keys, and working data-subject requests: an
//! overdue one received by post (its code given by hand), and an erasure verified with the
//! subject's code as mailed to the subject through a real SMTP server (a wrong code refused
//! first), stopped from the desktop before its first step and resumed, run with live step
//! progress, and its receipt showing a clean residual scan;
//! and moderation: the demo's attack scenarios turned into incidents by the detectors, the
//! moderator opening the critical credential-stuffing incident from the queue, checking its
//! evidence and the source address's block, lifting the block and seeing the lift on the
//! incident's timeline; and the dashboard's charts. Finally retention: the administrator's
//! invalid policy changes refused with the core's reason (in the screen, and when the command is
//! called directly), a valid one saved, the dry run showing what is due and what incidents and
//! requests hold back, and a run now that lands in the history as completed.
//! Run by scripts/e2e.

use sqlx::{ConnectOptions, Connection};
use vigil_e2e::{fresh_totp, totp_now, App, Result};

/// The tests' SMTP server (STARTTLS with a certificate made by the test), shared with the
/// core's mail tests.
#[path = "../../tests/common/smtp.rs"]
mod smtp;

const ADMIN: &str = "root-admin";
const ADMIN_PASSWORD: &str = "correct horse battery 42";
const MODERATOR: &str = "mod-morgan";
const MODERATOR_PASSWORD: &str = "moderation shift 77 nights";
const OFFICER: &str = "dpo-dana";
const OFFICER_PASSWORD: &str = "subject rights within one month";

async fn sign_in(app: &App, username: &str, password: &str) -> Result<()> {
    app.fill("login-username", username).await?;
    app.fill("login-password", password).await?;
    app.click("login-submit").await
}

async fn sign_out(app: &App) -> Result<()> {
    app.click("sign-out").await?;
    app.el("login-username").await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setup_mfa_operators_roles_and_audit_in_the_real_window() -> Result<()> {
    let home = tempfile_dir("vigil-e2e")?;
    // The mail server the subjects' codes go to.
    let mail = smtp::SmtpServer::start().await;
    let (port, ca) = (
        mail.addr.port().to_string(),
        mail.ca_file.display().to_string(),
    );
    let app = App::launch_with(
        &home,
        4444,
        &[
            ("VIGIL_MAIL_HOST", "localhost"),
            ("VIGIL_MAIL_PORT", port.as_str()),
            ("VIGIL_MAIL_SECURITY", "starttls"),
            ("VIGIL_MAIL_FROM", "privacy@vigil.test"),
            ("VIGIL_MAIL_CA_FILE", ca.as_str()),
        ],
    )
    .await?;
    if let Err(e) = flow(&app, &home, &mail).await {
        app.report_failure().await;
        return Err(e);
    }
    app.quit().await
}

async fn flow(app: &App, home: &std::path::Path, mail: &smtp::SmtpServer) -> Result<()> {
    // First-run setup on an empty machine: a local database and the first administrator.
    app.el("setup-username").await?;
    app.click("setup-db-sqlite").await?;
    app.fill("setup-username", ADMIN).await?;
    app.fill("setup-password", ADMIN_PASSWORD).await?;
    app.fill("setup-password-confirm", ADMIN_PASSWORD).await?;
    app.screenshot("setup").await?;
    app.click("setup-submit").await?;
    // The default `[auth] require_mfa` policy covers administrators: without MFA the new
    // administrator lands on enrolment, before anything else, and the console is not shown.
    app.el("mfa-enrolment-required").await?;
    assert!(!app.present("current-user").await?);
    assert!(!app.present("nav-users").await?);
    assert!(
        home.join("data/vigil/vigil.db").is_file(),
        "the database is in the OS data folder"
    );

    // MFA enrolment: read the secret off the screen, compute the code, confirm.
    app.click("mfa-start").await?;
    assert!(
        app.on("mfa-qr", |e| async move { e.html(true).await })
            .await?
            .contains("<svg"),
        "QR code drawn as SVG"
    );
    let secret = app.text("mfa-secret").await?;
    app.screenshot("mfa-enrolment").await?;
    // A wrong code is refused and MFA stays off.
    app.fill("mfa-confirm-code", "000000").await?;
    app.click("mfa-confirm-submit").await?;
    app.el("mfa-error").await?;
    let (code, used) = totp_now(&secret)?;
    let (code, used) = if code == "000000" {
        fresh_totp(&secret, used).await?
    } else {
        (code, used)
    };
    app.fill("mfa-confirm-code", &code).await?;
    app.click("mfa-confirm-submit").await?;
    app.el("backup-codes").await?;
    let backup_codes: Vec<String> = app
        .texts("[data-testid=\"backup-code\"]")
        .await?
        .iter()
        .map(|c| c.trim().to_owned())
        .collect();
    assert_eq!(backup_codes.len(), 10, "ten backup codes shown once");
    let backup_code = backup_codes[3].clone();
    app.screenshot("backup-codes").await?;
    app.click("backup-codes-done").await?;
    // Enrolled: the console opens.
    assert_eq!(app.text("current-user").await?.trim(), ADMIN);
    app.click("nav-account").await?;
    app.wait_text("mfa-status", "On").await?;

    // Sign out; signing in again needs the password, then a fresh TOTP code.
    sign_out(app).await?;
    sign_in(app, ADMIN, "not the password at all").await?;
    app.el("login-error").await?;
    sign_in(app, ADMIN, ADMIN_PASSWORD).await?;
    app.el("mfa-code").await?;
    // The code used to enrol is spent: replaying it is refused, and a refused code sends the
    // operator back to the password (one code attempt per password).
    app.fill("mfa-code", &code).await?;
    app.click("mfa-submit").await?;
    app.el("login-error").await?;
    app.el("login-password").await?;
    assert!(!app.present("current-user").await?);
    sign_in(app, ADMIN, ADMIN_PASSWORD).await?;
    app.el("mfa-code").await?;
    app.screenshot("sign-in-second-factor").await?;
    let (code, _) = fresh_totp(&secret, used).await?;
    app.fill("mfa-code", &code).await?;
    app.click("mfa-submit").await?;
    assert_eq!(app.text("current-user").await?.trim(), ADMIN);
    assert!(!app.present("mfa-banner").await?);

    // Create a moderator; the temporary password is shown once.
    app.click("nav-users").await?;
    app.el("users-table").await?;
    app.click("users-create").await?;
    app.fill("create-username", MODERATOR).await?;
    app.set_checked("create-role-moderator", true).await?;
    app.set_checked("create-role-admin", false).await?;
    app.click("create-submit").await?;
    let temporary = app.text("temporary-password").await?.trim().to_owned();
    assert!(temporary.len() >= 12, "temporary password shown");
    app.click("temporary-password-done").await?;
    app.wait_css(&format!(
        "[data-testid=\"users-row\"][data-username=\"{MODERATOR}\"]"
    ))
    .await?;
    app.screenshot("users").await?;
    app.click("nav-keys").await?;
    app.el("keys-holders").await?;
    app.el("keys-purpose-contact").await?;
    app.screenshot("keys").await?;
    // The theme toggle switches the theme (the choice shows on the toggle and is kept).
    let before = app.attr("theme-toggle", "data-theme-current").await?;
    app.click("theme-toggle").await?;
    let after = app.attr("theme-toggle", "data-theme-current").await?;
    assert_ne!(before, after, "the theme toggle changes the theme");
    app.screenshot("keys-other-theme").await?;

    // The moderator signs in, must change the temporary password, and sees no admin screens.
    sign_out(app).await?;
    sign_in(app, MODERATOR, &temporary).await?;
    app.fill("pw-current", &temporary).await?;
    app.fill("pw-new", MODERATOR_PASSWORD).await?;
    app.fill("pw-confirm", MODERATOR_PASSWORD).await?;
    app.click("pw-submit").await?;
    assert_eq!(app.text("current-user").await?.trim(), MODERATOR);
    app.el("nav-users").await?;
    app.el("nav-audit").await?;
    assert!(
        !app.present("nav-keys").await?,
        "no keys screen for a moderator"
    );
    assert!(
        !app.present("nav-settings").await?,
        "no settings for a moderator"
    );
    // Calling admin commands directly, past the UI, is refused by the core.
    for (command, args) in [
        ("keys_status", serde_json::json!({})),
        ("settings_show", serde_json::json!({})),
        (
            "user_create",
            serde_json::json!({ "req": { "username": "sneaky-admin", "roles": ["admin"] } }),
        ),
        ("audit_verify", serde_json::json!({})),
        (
            "dsr_list",
            serde_json::json!({ "req": { "status": null, "kind": null, "overdue": false, "due_soon": false } }),
        ),
        (
            "holds_list",
            serde_json::json!({ "req": { "include_released": false } }),
        ),
        (
            "demo_seed",
            serde_json::json!({ "req": { "users": 10, "comments": 0, "days": 1, "scenarios": false } }),
        ),
    ] {
        let refused = app
            .invoke(command, args)
            .await?
            .expect_err(&format!("{command} must be refused for a moderator"));
        assert_eq!(refused["code"], "forbidden", "{command}: {refused}");
    }
    let whoami = app.invoke("me", serde_json::json!({})).await?.unwrap();
    assert_eq!(whoami["username"], MODERATOR);
    // Each refusal is on the security-event log, which moderators read.
    app.click("nav-security").await?;
    app.el("events-table").await?;
    app.wait_css(
        "[data-testid=\"event-row\"][data-kind=\"authorization_denied\"][data-outcome=\"denied\"]",
    )
    .await?;
    app.screenshot("security-events").await?;
    assert!(!whoami["permissions"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p == "users_manage"));

    // Back as the administrator, this time with a backup code typed loosely (lower case, no
    // dashes); the audit screen shows what happened and the chain verifies.
    sign_out(app).await?;
    sign_in(app, ADMIN, ADMIN_PASSWORD).await?;
    app.el("mfa-code").await?;
    let loose: String = backup_code
        .chars()
        .filter(|c| *c != '-')
        .collect::<String>()
        .to_lowercase();
    app.fill("mfa-code", &loose).await?;
    app.click("mfa-submit").await?;
    assert_eq!(app.text("current-user").await?.trim(), ADMIN);
    app.click("nav-audit").await?;
    app.el("audit-table").await?;
    for action in [
        "operator.bootstrapped",
        "mfa.enabled",
        "operator.created",
        "operator.password_changed",
    ] {
        app.wait_css(&format!(
            "[data-testid=\"audit-row\"][data-action=\"{action}\"]"
        ))
        .await?;
    }
    app.click("audit-verify").await?;
    assert_eq!(
        app.attr("audit-verify-result", "data-ok").await?.as_deref(),
        Some("true")
    );
    app.screenshot("audit").await?;
    app.click("nav-settings").await?;
    app.el("settings").await?;
    app.screenshot("settings").await?;

    data_subject_requests(app, home, &backup_codes[4], mail).await?;
    moderation(app, &backup_codes[5]).await?;
    retention(app, home).await
}

/// Demo data, a compliance officer with data keys, and the officer's requests.
async fn data_subject_requests(
    app: &App,
    home: &std::path::Path,
    admin_backup_code: &str,
    mail: &smtp::SmtpServer,
) -> Result<()> {
    // The administrator loads demo data from Settings (a small platform), with the attack
    // scenarios (their five accounts come on top of the 200).
    let platform = (200 + vigil::demo::SCENARIOS.len()).to_string();
    assert!(
        app.on("demo-scenarios", |e| async move { e.is_selected().await })
            .await?,
        "attack scenarios are on by default"
    );
    app.click("demo-load").await?;
    app.click("confirm-ok").await?;
    app.wait_css_for(
        "[data-testid=\"demo-result\"]",
        std::time::Duration::from_secs(180),
    )
    .await?;
    assert_eq!(
        app.attr("demo-result", "data-users").await?,
        Some(platform.clone())
    );

    // The administrator runs the detectors now from the incident queue (the background monitor
    // would within a minute): the scenarios become incidents, the credential stuffing critical.
    app.click("nav-incidents").await?;
    app.el("incident-table").await?;
    app.click("monitor-run").await?;
    app.wait_css_for(
        "[data-testid=\"monitor-run-result\"]",
        std::time::Duration::from_secs(180),
    )
    .await?;
    app.wait_css(CRITICAL_STUFFING).await?;
    // Accounts with an open incident cannot be erased: the officer's requests below are about
    // others.
    let flagged = app
        .attrs("[data-testid=\"incident-row\"]", "data-username")
        .await?;
    assert!(
        flagged.iter().any(|u| u == STUFFED),
        "the stuffed account's incident is queued: {flagged:?}"
    );

    // A compliance officer: created with a temporary password, signs in (which makes their key
    // pair on this machine) and chooses their own password.
    app.click("nav-users").await?;
    app.click("users-create").await?;
    app.fill("create-username", OFFICER).await?;
    app.set_checked("create-role-compliance_officer", true)
        .await?;
    app.set_checked("create-role-moderator", false).await?;
    app.set_checked("create-role-admin", false).await?;
    app.click("create-submit").await?;
    let temporary = app.text("temporary-password").await?.trim().to_owned();
    app.click("temporary-password-done").await?;
    sign_out(app).await?;
    sign_in(app, OFFICER, &temporary).await?;
    app.fill("pw-current", &temporary).await?;
    app.fill("pw-new", OFFICER_PASSWORD).await?;
    app.fill("pw-confirm", OFFICER_PASSWORD).await?;
    app.click("pw-submit").await?;
    // Compliance officers are under the MFA policy too: enrolment comes next.
    app.el("mfa-enrolment-required").await?;
    app.click("mfa-start").await?;
    let officer_secret = app.text("mfa-secret").await?;
    let (code, officer_used) = totp_now(&officer_secret)?;
    app.fill("mfa-confirm-code", &code).await?;
    app.click("mfa-confirm-submit").await?;
    app.el("backup-codes").await?;
    app.click("backup-codes-done").await?;
    assert_eq!(app.text("current-user").await?.trim(), OFFICER);
    // The console tells the officer what changed on their account: dismissable notices.
    let listed = app
        .invoke("notices", serde_json::json!({}))
        .await?
        .expect("the officer's own notices");
    for kind in ["password_changed", "mfa_enabled"] {
        assert!(listed.to_string().contains(kind), "{kind} in {listed}");
        app.wait_css(&format!("[data-testid=\"notice\"][data-kind=\"{kind}\"]"))
            .await?;
    }
    app.screenshot("notices").await?;
    app.click("notices-dismiss-all").await?;
    app.wait_gone("[data-testid=\"notices\"]").await?;
    app.el("nav-requests").await?;
    app.el("nav-holds").await?;
    app.el("nav-retention").await?;
    assert!(
        !app.present("nav-keys").await?,
        "no keys screen for an officer"
    );

    // The administrator grants the officer's new key pair the data keys (emails and phone
    // numbers are sealed; an erasure opens them to prove they are gone).
    sign_out(app).await?;
    sign_in(app, ADMIN, ADMIN_PASSWORD).await?;
    app.fill("mfa-code", admin_backup_code).await?;
    app.click("mfa-submit").await?;
    assert_eq!(app.text("current-user").await?.trim(), ADMIN);
    app.click("nav-keys").await?;
    // The moderator too, so their console runs the detectors in the background.
    for holder in [OFFICER, MODERATOR] {
        app.click(&format!("keys-grant-{holder}")).await?;
        app.wait_gone(&format!("[data-testid=\"keys-grant-{holder}\"]"))
            .await?;
    }

    // The officer picks two platform users off the Users screen.
    sign_out(app).await?;
    sign_in(app, OFFICER, OFFICER_PASSWORD).await?;
    let (code, _) = fresh_totp(&officer_secret, officer_used).await?;
    app.fill("mfa-code", &code).await?;
    app.click("mfa-submit").await?;
    assert_eq!(app.text("current-user").await?.trim(), OFFICER);
    app.click("nav-users").await?;
    app.el("users-table").await?;
    app.select("users-filter-kind", "platform").await?;
    app.wait_css(&format!(
        "[data-testid=\"users-total\"][data-total=\"{platform}\"]"
    ))
    .await?;
    let platform_users: Vec<String> = app
        .attrs("[data-testid=\"users-row\"]", "data-username")
        .await?
        .into_iter()
        .filter(|u| !flagged.contains(u))
        .collect();
    assert!(platform_users.len() >= 2, "demo users listed");
    let (by_post, to_erase) = (platform_users[0].clone(), platform_users[1].clone());

    // A request that came by post 40 days ago: past its one-month deadline, so overdue.
    app.click("nav-requests").await?;
    app.el("dsr-table").await?;
    app.click("dsr-new").await?;
    app.select("dsr-new-kind", "access").await?;
    app.fill("dsr-new-subject", &by_post).await?;
    let forty_days_ago = vigil::store::Timestamp::from_micros(
        vigil::store::Timestamp::now().micros() - 40 * 86_400 * 1_000_000,
    )
    .to_rfc3339()[..10]
        .to_owned();
    app.fill("dsr-new-received", &forty_days_ago).await?;
    // A paper request: the code is given by hand (shown once; another officer enters it).
    app.click("dsr-new-delivery-manual").await?;
    app.click("dsr-new-submit").await?;
    app.el("dsr-code").await?;
    app.click("dsr-code-close").await?;
    let overdue = app
        .text_css("[data-testid=\"dsr-row\"][data-kind=\"access\"][data-due=\"overdue\"]")
        .await?;
    assert!(overdue.contains("Overdue"));

    // An erasure request for the second user; its code goes by mail to the subject's registered
    // address, and the officer never sees it.
    app.click("dsr-new").await?;
    app.select("dsr-new-kind", "erasure").await?;
    app.fill("dsr-new-subject", &to_erase).await?;
    app.click("dsr-new-submit").await?;
    let erasure_row = "[data-testid=\"dsr-row\"][data-kind=\"erasure\"][data-status=\"verifying\"]";
    app.wait_css(erasure_row).await?;
    assert!(
        !app.present("dsr-code").await?,
        "a mailed code is not shown to the officer"
    );
    let mut delivered = None;
    for _ in 0..600 {
        if let Some(m) = mail.received().last() {
            delivered = Some(m.clone());
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let delivered = delivered.ok_or("the subject's code was not mailed within 120 s")?;
    assert!(delivered.tls, "the code travelled over STARTTLS");
    let code = delivered.code().ok_or("no code in the mailed message")?;
    assert_eq!(code.len(), 11, "a code like K7QX2-MPA9D: {code:?}");
    app.screenshot("dsr-inbox").await?;

    // Verification: a wrong code is refused and uses an attempt; the right one verifies.
    app.click_css(&format!("{erasure_row} .row-link")).await?;
    app.el("dsr-verification").await?;
    let wrong = if code == "AAAAA-AAAAA" {
        "BBBBB-BBBBB"
    } else {
        "AAAAA-AAAAA"
    };
    app.fill("dsr-verify-code", wrong).await?;
    app.click("dsr-verify-submit").await?;
    let refused = app.text("dsr-verify-error").await?;
    assert!(refused.contains("4 attempts left"), "{refused}");
    app.wait_css("[data-testid=\"dsr-attempts-left\"][data-attempts-left=\"4\"]")
        .await?;
    app.fill("dsr-verify-code", &code).await?;
    app.click("dsr-verify-submit").await?;
    app.wait_css("[data-testid=\"dsr-status\"][data-status=\"verified\"]")
        .await?;

    // Stopped from the desktop: another program holds the database's write lock a moment (as a
    // long backup or a worker would), so the run is still at its start when the officer presses
    // Stop; it stops before its first step and changes nothing the steps do.
    let other = hold_write_lock(home).await?;
    app.click("dsr-run").await?;
    app.click("confirm-ok").await?;
    app.click("dsr-stop").await?;
    app.wait_css("[data-testid=\"dsr-stop\"][data-state=\"requested\"]")
        .await?;
    release_write_lock(other).await?;
    app.wait_css_for(
        "[data-testid=\"dsr-run-stopped\"]",
        std::time::Duration::from_secs(60),
    )
    .await?;
    app.wait_css("[data-testid=\"dsr-status\"][data-status=\"in_progress\"]")
        .await?;
    app.wait_css("[data-testid=\"dsr-steps\"][data-running=\"false\"]")
        .await?;
    let states = app
        .attrs("[data-testid=\"dsr-step\"]", "data-state")
        .await?;
    assert_eq!(states.len(), 9, "the erasure plan's steps: {states:?}");
    assert!(
        states.iter().all(|s| s != "done"),
        "no step ran before the stop: {states:?}"
    );
    app.screenshot("dsr-stopped").await?;

    // Resumed: the erasure runs step by step; the steps show as they go.
    assert!(app.text("dsr-run").await?.contains("Resume"));
    app.click("dsr-run").await?;
    app.click("confirm-ok").await?;
    app.wait_css("[data-testid=\"dsr-step\"]").await?;
    app.wait_css_for(
        "[data-testid=\"dsr-status\"][data-status=\"completed\"]",
        std::time::Duration::from_secs(120),
    )
    .await?;
    app.wait_css("[data-testid=\"dsr-steps\"][data-running=\"false\"]")
        .await?;
    let states = app
        .attrs("[data-testid=\"dsr-step\"]", "data-state")
        .await?;
    assert_eq!(states.len(), 9, "the erasure plan's steps: {states:?}");
    assert!(states.iter().all(|s| s == "done"), "{states:?}");
    let names = app.attrs("[data-testid=\"dsr-step\"]", "data-name").await?;
    assert_eq!(names.last().map(String::as_str), Some("residual_scan"));
    // (Once the notifications have faded, so they cover nothing.)
    app.wait_gone(".toast").await?;
    app.screenshot("dsr-run").await?;

    // The receipt: every step with its rows, and the residual scan found nothing.
    app.click("dsr-receipt-open").await?;
    app.el("dsr-receipt").await?;
    assert_eq!(
        app.attr("dsr-receipt-hits", "data-hits").await?.as_deref(),
        Some("0")
    );
    let seq = app.text("dsr-receipt-seq").await?;
    assert!(seq.starts_with('#'), "the receipt's audit entry: {seq}");
    app.screenshot("dsr-receipt").await?;
    app.click("dsr-receipt-close").await?;
    app.wait_css("[data-testid=\"dsr-timeline-entry\"][data-action=\"dsr.erasure_receipt\"]")
        .await?;
    Ok(())
}

/// The account the credential-stuffing scenario gets into.
const STUFFED: &str = "stuffed.victim";

/// The queue's row of the critical credential-stuffing incident.
const CRITICAL_STUFFING: &str = "[data-testid=\"incident-row\"][data-kind=\"credential_stuffing\"]\
                                 [data-severity=\"critical\"]";

/// The moderator reviews the critical credential-stuffing incident and lifts its IP block; the
/// administrator then looks at the dashboard.
async fn moderation(app: &App, admin_backup_code: &str) -> Result<()> {
    sign_out(app).await?;
    sign_in(app, MODERATOR, MODERATOR_PASSWORD).await?;
    assert_eq!(app.text("current-user").await?.trim(), MODERATOR);
    app.el("nav-dashboard").await?;
    app.el("nav-blocks").await?;
    // The data-subject request chart is not theirs, even asked for directly.
    let refused = app
        .invoke(
            "dashboard_chart",
            serde_json::json!({ "req": { "kind": "dsr_status", "days": 30 } }),
        )
        .await?
        .expect_err("the request chart must be refused for a moderator");
    assert_eq!(refused["code"], "forbidden", "{refused}");
    // Nor is retention: no screen, and the run refused if called directly.
    assert!(!app.present("nav-retention").await?);
    let refused = app
        .invoke(
            "retention_run",
            serde_json::json!({ "req": { "policy": null } }),
        )
        .await?
        .expect_err("a retention run must be refused for a moderator");
    assert_eq!(refused["code"], "forbidden", "{refused}");

    // The queue: most severe first, so the critical incident leads.
    app.click("nav-incidents").await?;
    app.el("incident-table").await?;
    assert_eq!(
        app.attr_css(CRITICAL_STUFFING, "data-username")
            .await?
            .as_deref(),
        Some(STUFFED)
    );
    let severities = app
        .attrs("[data-testid=\"incident-row\"]", "data-severity")
        .await?;
    assert_eq!(severities.first().map(String::as_str), Some("critical"));
    assert!(
        severities.len() >= vigil::demo::SCENARIOS.len(),
        "every scenario is queued: {severities:?}"
    );
    app.wait_gone(".toast").await?;
    app.screenshot("incident-queue").await?;

    // The incident: the suspended account, the evidence among the activity around it, the
    // rules that fired, and the automated responses with the source address blocked.
    app.click_css(&format!("{CRITICAL_STUFFING} .row-link"))
        .await?;
    app.wait_css("[data-testid=\"incident-status\"][data-status=\"open\"]")
        .await?;
    assert_eq!(app.text("incident-username").await?.trim(), STUFFED);
    app.wait_css("[data-testid=\"incident-account-status\"][data-status=\"suspended\"]")
        .await?;
    app.el("incident-rule").await?;
    let evidence = app
        .attrs("[data-testid=\"incident-evidence-row\"]", "data-evidence")
        .await?;
    assert!(
        evidence.iter().filter(|e| *e == "true").count() >= 5,
        "the stuffing attempts are evidence: {evidence:?}"
    );
    let block = format!(
        "[data-testid=\"incident-block\"][data-ip=\"{}\"]",
        vigil::demo::STUFFING_IP
    );
    app.wait_css(&format!("{block}[data-state=\"active\"]"))
        .await?;
    app.wait_css(
        "[data-testid=\"incident-timeline-entry\"][data-action=\"block_ip\"]\
         [data-automated=\"true\"][data-reversed=\"false\"]",
    )
    .await?;
    app.wait_css(
        "[data-testid=\"incident-timeline-entry\"][data-action=\"suspend_account\"]\
         [data-automated=\"true\"]",
    )
    .await?;
    for action in [
        "assign",
        "confirm",
        "dismiss",
        "lift-suspension",
        "extend-block",
        "note",
    ] {
        app.el(&format!("incident-action-{action}")).await?;
    }
    app.screenshot("incident-detail").await?;

    // Lifting the IP block asks first, then shows the block lifted and the moderator's action
    // on the timeline, the automated block marked reversed.
    app.click("incident-action-lift-block").await?;
    app.el("confirm-dialog").await?;
    app.click("confirm-ok").await?;
    app.wait_css(&format!("{block}[data-state=\"lifted\"]"))
        .await?;
    app.wait_css(&format!(
        "[data-testid=\"incident-timeline-entry\"][data-action=\"lift_block\"]\
         [data-automated=\"false\"][data-actor=\"{MODERATOR}\"]"
    ))
    .await?;
    app.wait_css(
        "[data-testid=\"incident-timeline-entry\"][data-action=\"block_ip\"]\
         [data-reversed=\"true\"]",
    )
    .await?;
    assert!(
        !app.present("incident-action-lift-block").await?,
        "no block left to lift"
    );

    // The IP blocks screen agrees: not in force, and lifted among all blocks.
    app.click("nav-blocks").await?;
    app.el("block-table").await?;
    let lifted = format!(
        "[data-testid=\"block-row\"][data-ip=\"{}\"]",
        vigil::demo::STUFFING_IP
    );
    app.wait_gone(&format!("{lifted}[data-state=\"active\"]"))
        .await?;
    app.click("block-show-all").await?;
    app.wait_css(&format!("{lifted}[data-state=\"lifted\"]"))
        .await?;

    // The administrator's dashboard: all four charts, the request chart included.
    sign_out(app).await?;
    sign_in(app, ADMIN, ADMIN_PASSWORD).await?;
    app.fill("mfa-code", admin_backup_code).await?;
    app.click("mfa-submit").await?;
    assert_eq!(app.text("current-user").await?.trim(), ADMIN);
    app.click("nav-dashboard").await?;
    for kind in [
        "incidents_by_severity",
        "activity_volume",
        "top_rules",
        "dsr_status",
    ] {
        let chart = app
            .on_css(
                &format!("[data-testid=\"chart-svg\"][data-kind=\"{kind}\"]"),
                |e| async move { e.html(true).await },
            )
            .await?;
        assert!(chart.contains("<svg"), "{kind} drawn");
    }
    app.click("dashboard-period-90").await?;
    app.wait_css("[data-testid=\"chart-svg\"][data-days=\"90\"]")
        .await?;
    app.click("dashboard-period-30").await?;
    app.wait_css("[data-testid=\"chart-svg\"][data-kind=\"dsr_status\"][data-days=\"30\"]")
        .await?;
    app.wait_gone(".toast").await?;
    // The charts follow the console's theme: drawn again in the other one, then back.
    let first = app
        .attr("theme-toggle", "data-theme-current")
        .await?
        .unwrap_or_default();
    app.screenshot(&format!("dashboard-{first}")).await?;
    for _ in 0..2 {
        app.click("theme-toggle").await?;
        let now = app
            .attr("theme-toggle", "data-theme-current")
            .await?
            .unwrap_or_default();
        for kind in ["incidents_by_severity", "dsr_status"] {
            app.wait_css(&format!(
                "[data-testid=\"chart-svg\"][data-kind=\"{kind}\"][data-theme=\"{now}\"]"
            ))
            .await?;
        }
        if now != first {
            app.screenshot(&format!("dashboard-{now}")).await?;
        }
    }
    Ok(())
}

/// The Retention screen's row of `category` in the table `row` names, with `extra` attributes.
fn retention_row(row: &str, category: &str, extra: &str) -> String {
    format!("[data-testid=\"{row}\"][data-category=\"{category}\"]{extra}")
}

/// The administrator's retention: invalid changes refused with the core's reason, a valid one
/// saved, the dry run over the demo platform, a run stopped part-way, and the run resumed and
/// recorded in the history.
async fn retention(app: &App, home: &std::path::Path) -> Result<()> {
    app.click("nav-retention").await?;
    app.el("retention-policy-table").await?;
    app.el("retention-plan-table").await?;
    app.el("retention-runs-table").await?;
    let policy =
        |category: &str, extra: &str| retention_row("retention-policy-row", category, extra);

    // Out-of-range periods are refused next to their row with the core's reason (the screen
    // checks first, then asks the core, whose word is final), and nothing is saved.
    app.fill("retention-period-activity", "0").await?;
    app.click("retention-save-activity").await?;
    app.wait_text(
        "retention-error-activity",
        "The activity period must be from 1 to 36500 days, not 0.",
    )
    .await?;
    app.fill("retention-period-audit", "10").await?;
    app.click("retention-save-audit").await?;
    app.wait_text(
        "retention-error-audit",
        "The audit period must be from 365 to 36500 days, not 10.",
    )
    .await?;
    // Called directly, bypassing the screen, the command refuses them with the same reasons,
    // an action the category does not allow too.
    for (change, reason) in [
        (
            serde_json::json!({ "category": "audit", "period_days": 10, "action": null, "enabled": null }),
            "the audit period must be from 365 to 36500 days, not 10",
        ),
        (
            serde_json::json!({ "category": "audit", "period_days": null, "action": "delete", "enabled": null }),
            "audit records cannot be given the delete action; allowed: archive",
        ),
        (
            serde_json::json!({ "category": "activity", "period_days": 0, "action": null, "enabled": null }),
            "the activity period must be from 1 to 36500 days, not 0",
        ),
    ] {
        let refused = app
            .invoke("retention_set_policy", serde_json::json!({ "req": change }))
            .await?
            .expect_err("an invalid retention policy must be refused");
        assert_eq!(refused["code"], "invalid_input", "{refused}");
        assert_eq!(refused["message"], reason, "{refused}");
    }
    app.wait_css(&policy(
        "audit",
        "[data-period=\"2555\"][data-action=\"archive\"]",
    ))
    .await?;
    app.wait_css(&policy("activity", "[data-period=\"90\"]"))
        .await?;

    // A valid change is saved: activity is kept a week (the demo's history is a month), and the
    // audit field is put back.
    app.fill("retention-period-audit", "2555").await?;
    app.fill("retention-period-activity", "7").await?;
    app.wait_gone("[data-testid=\"retention-error-activity\"]")
        .await?;
    app.click("retention-save-activity").await?;
    app.wait_css(&policy(
        "activity",
        "[data-period=\"7\"][data-enabled=\"true\"]",
    ))
    .await?;
    assert!(!app.present("retention-error-activity").await?);

    // The dry run: activity older than a week is due; the scenario accounts' activity is held
    // by their open incidents.
    let activity_plan = retention_row("retention-plan-row", "activity", "");
    // Read in one step: the dry run is worked out again as the saved change lands, which
    // replaces the row.
    let due_row = app
        .wait_read(
            &format!("{activity_plan}:not([data-due=\"0\"])"),
            &["data-due", "data-held"],
            std::time::Duration::from_secs(60),
        )
        .await?;
    let due: u64 = due_row["data-due"].parse()?;
    let held: u64 = due_row["data-held"].parse()?;
    assert!(due > 0 && held > 0, "due {due}, held {held}");
    let reasons = &due_row["text"];
    assert!(reasons.contains("open incident"), "{reasons}");
    app.el("retention-holds-link").await?;
    app.wait_gone(".toast").await?;
    // The preview scrolled to the top of the screen's own scrolling area; the document itself
    // stays put, so the console's frame does too.
    app.client
        .execute(
            "document.querySelector('[data-testid=\"retention-plan\"]').scrollIntoView({ block: 'start' });
             document.scrollingElement.scrollTop = 0;",
            vec![],
        )
        .await?;
    app.screenshot("retention-plan").await?;

    // Run now, confirmed: the new run heads the history, completed, having deleted what was
    // due; the dry run then finds less due and the held records still held.
    let before: usize = app
        .attr("retention-runs-table", "data-count")
        .await?
        .unwrap_or_default()
        .parse()?;

    // Stopped part-way: another program holds the database's write lock a moment (as a backup
    // or a worker would), so the run is still at its first chunk when the administrator presses
    // Stop; it stops after that chunk, and the history shows it left to be resumed.
    let other = hold_write_lock(home).await?;
    app.click("retention-run").await?;
    app.el("confirm-dialog").await?;
    app.click("confirm-ok").await?;
    app.click("retention-stop").await?;
    app.wait_css("[data-testid=\"retention-stop\"][data-state=\"requested\"]")
        .await?;
    release_write_lock(other).await?;
    app.wait_css_for(
        "[data-testid=\"retention-run-stopped\"]",
        std::time::Duration::from_secs(60),
    )
    .await?;
    assert!(!app.present("retention-running").await?);
    app.wait_css_for(
        &format!(
            "[data-testid=\"retention-runs-table\"][data-count=\"{}\"]",
            before + 1
        ),
        std::time::Duration::from_secs(20),
    )
    .await?;
    let stopped = app
        .wait_read(
            "[data-testid=\"retention-run-row\"]",
            &["data-id", "data-status", "data-done"],
            std::time::Duration::from_secs(20),
        )
        .await?;
    assert_eq!(stopped["data-status"], "running", "left to be resumed");
    let first_chunk: u64 = stopped["data-done"].parse()?;
    assert!(first_chunk > 0, "the chunk in hand was done and kept");
    app.screenshot("retention-stopped").await?;

    // Run now resumes the stopped run (the same run, no new row) and finishes it.
    app.click("retention-run").await?;
    app.el("confirm-dialog").await?;
    app.click("confirm-ok").await?;
    app.wait_css_for(
        &format!(
            "[data-testid=\"retention-run-row\"][data-id=\"{}\"][data-status=\"completed\"]",
            stopped["data-id"]
        ),
        std::time::Duration::from_secs(180),
    )
    .await?;
    assert!(!app.present("retention-run-stopped").await?);
    let count: usize = app
        .attr("retention-runs-table", "data-count")
        .await?
        .unwrap_or_default()
        .parse()?;
    assert_eq!(count, before + 1, "the resumed run is the stopped one");
    let newest = app
        .wait_read(
            "[data-testid=\"retention-run-row\"]",
            &["data-id", "data-status", "data-done"],
            std::time::Duration::from_secs(20),
        )
        .await?;
    assert_eq!(newest["data-id"], stopped["data-id"]);
    assert_eq!(newest["data-status"], "completed");
    let done: u64 = newest["data-done"].parse()?;
    assert!(done > 0, "the run acted on what was due");
    assert!(newest["text"].contains(ADMIN));
    // The dry run is worked out again: what was due is gone, the held records are still held.
    let mut after = None;
    for _ in 0..100 {
        let row = app
            .wait_read(
                &activity_plan,
                &["data-due", "data-held"],
                std::time::Duration::from_secs(20),
            )
            .await?;
        let left: u64 = row["data-due"].parse()?;
        let still: u64 = row["data-held"].parse()?;
        if left < due {
            after = Some((left, still));
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let (left, still) = after.ok_or("the dry run still shows the activity that was due")?;
    assert!(
        left < due && still > 0,
        "due {left}, held {still} after the run"
    );
    Ok(())
}

/// Another program's connection to the app's SQLite file, holding its write lock (as a backup
/// or a worker would) until [`release_write_lock`]: the app's next write waits for it.
async fn hold_write_lock(home: &std::path::Path) -> Result<sqlx::SqliteConnection> {
    let mut other = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(home.join("data/vigil/vigil.db"))
        .connect()
        .await?;
    sqlx::query("BEGIN IMMEDIATE").execute(&mut other).await?;
    Ok(other)
}

async fn release_write_lock(mut other: sqlx::SqliteConnection) -> Result<()> {
    sqlx::query("ROLLBACK").execute(&mut other).await?;
    other.close().await?;
    Ok(())
}

fn tempfile_dir(prefix: &str) -> Result<std::path::PathBuf> {
    let base = std::env::var_os("VIGIL_E2E_HOME")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let dir = base.join(format!("{prefix}-{}", std::process::id()));
    if dir.exists() {
        std::fs::remove_dir_all(&dir)?;
    }
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// Seconds without use after which the console under test locks itself.
const IDLE_SECS: u64 = 20;

/// The idle lock, in its real window: with `VIGIL_IDLE_TIMEOUT_SECS` short, an administrator
/// with MFA on leaves the users screen alone; the lock screen appears, the keys and the
/// operators' data are refused to a direct call, and the password with a fresh TOTP code brings
/// back the same screen.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_locks_when_idle_and_unlocks_to_the_same_screen() -> Result<()> {
    let home = tempfile_dir("vigil-e2e-idle")?;
    let idle = IDLE_SECS.to_string();
    let app = App::launch_with(&home, 4454, &[("VIGIL_IDLE_TIMEOUT_SECS", idle.as_str())]).await?;
    if let Err(e) = idle_lock(&app).await {
        app.report_failure().await;
        return Err(e);
    }
    app.quit().await
}

async fn idle_lock(app: &App) -> Result<()> {
    // The MFA policy holds the new administrator at enrolment first.
    let (secret, used) = first_administrator(app).await?;
    // The console tells the administrator what changed on their account, until dismissed.
    let listed = app
        .invoke("notices", serde_json::json!({}))
        .await?
        .expect("the operator's own notices");
    assert!(
        listed.to_string().contains("mfa_enabled"),
        "an mfa_enabled notice: {listed}"
    );
    app.wait_css("[data-testid=\"notice\"][data-kind=\"mfa_enabled\"]")
        .await?;
    app.screenshot("notices-admin").await?;
    if app.present("notices-dismiss-all").await? {
        app.click("notices-dismiss-all").await?;
    } else {
        app.click("notice-dismiss").await?;
    }
    app.wait_gone("[data-testid=\"notices\"]").await?;
    let left = app
        .invoke("notices", serde_json::json!({}))
        .await?
        .expect("the operator's own notices");
    assert_eq!(left, serde_json::json!([]), "dismissed for good");

    // The users screen, then nothing: the lock screen replaces it.
    app.click("nav-users").await?;
    app.el("users-table").await?;
    assert!(app
        .invoke("keys_status", serde_json::json!({}))
        .await?
        .is_ok());
    app.wait_css_for(
        "[data-testid=\"lock-screen\"]",
        std::time::Duration::from_secs(IDLE_SECS + 70),
    )
    .await?;
    assert!(!app.present("users-table").await?);
    app.screenshot("idle-lock").await?;
    // The keys, the operators' data and the session are gone from the app: direct calls fail.
    for (command, args) in [
        ("keys_status", serde_json::json!({})),
        (
            "users_list",
            serde_json::json!({ "req": {
                "kind": null, "role": null, "status": null, "mfa": null,
                "search": "someone@example.com", "page": 0, "page_size": 10
            } }),
        ),
        ("me", serde_json::json!({})),
    ] {
        let refused = app
            .invoke(command, args)
            .await?
            .expect_err(&format!("{command} must be refused while locked"));
        assert_eq!(refused["code"], "session_locked", "{command}: {refused}");
    }
    // The username is fixed; the password and a fresh code open the same screen again.
    assert_eq!(
        app.on("login-username", |e| async move { e.prop("value").await })
            .await?
            .as_deref(),
        Some(ADMIN)
    );
    app.fill("login-password", ADMIN_PASSWORD).await?;
    app.click("login-submit").await?;
    app.el("mfa-code").await?;
    let (code, _) = fresh_totp(&secret, used).await?;
    app.fill("mfa-code", &code).await?;
    app.click("mfa-submit").await?;
    app.el("users-table").await?;
    assert_eq!(app.text("current-user").await?.trim(), ADMIN);
    assert!(app
        .invoke("keys_status", serde_json::json!({}))
        .await?
        .is_ok());
    // The lock and the unlock are on the security-event log, in that order, as the
    // administrator.
    let events = app
        .invoke(
            "security_events_list",
            serde_json::json!({ "req": { "kind": null, "outcome": null, "actor": ADMIN, "limit": 50 } }),
        )
        .await?
        .expect("the administrator lists security events");
    let kinds: Vec<&str> = events
        .as_array()
        .expect("a list")
        .iter()
        .filter_map(|e| e["kind"].as_str())
        .collect();
    let unlocked = kinds.iter().position(|k| *k == "session_unlocked");
    let locked = kinds.iter().position(|k| *k == "session_locked");
    assert!(
        matches!((unlocked, locked), (Some(u), Some(l)) if u < l),
        "newest first, the unlock then the lock: {kinds:?}"
    );
    Ok(())
}

/// The first administrator on a fresh machine, through the MFA enrolment the default policy
/// holds them at; returns their TOTP secret and the step of the code used.
async fn first_administrator(app: &App) -> Result<(String, u64)> {
    app.el("setup-username").await?;
    app.click("setup-db-sqlite").await?;
    app.fill("setup-username", ADMIN).await?;
    app.fill("setup-password", ADMIN_PASSWORD).await?;
    app.fill("setup-password-confirm", ADMIN_PASSWORD).await?;
    app.click("setup-submit").await?;
    app.el("mfa-enrolment-required").await?;
    app.click("mfa-start").await?;
    let secret = app.text("mfa-secret").await?;
    let (code, used) = totp_now(&secret)?;
    app.fill("mfa-confirm-code", &code).await?;
    app.click("mfa-confirm-submit").await?;
    app.el("backup-codes").await?;
    app.click("backup-codes-done").await?;
    assert_eq!(app.text("current-user").await?.trim(), ADMIN);
    Ok((secret, used))
}

/// A legal hold on an incident, from the incident's page (as `vigil hold place --incident`):
/// the administrator places one with a reason (an empty reason refused first), sees it in force
/// there and on the Holds screen, and releases it from the incident again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_incident_is_held_and_released_from_its_page() -> Result<()> {
    let home = tempfile_dir("vigil-e2e-hold")?;
    let app = App::launch(&home, 4464).await?;
    if let Err(e) = incident_hold(&app).await {
        app.report_failure().await;
        return Err(e);
    }
    app.quit().await
}

/// The hold `id` as `holds_list` gives it (with the released ones too if asked), if listed.
async fn listed_hold(
    app: &App,
    id: &str,
    include_released: bool,
) -> Result<Option<serde_json::Value>> {
    let holds = app
        .invoke(
            "holds_list",
            serde_json::json!({ "req": { "include_released": include_released } }),
        )
        .await?
        .expect("the administrator lists holds");
    Ok(holds
        .as_array()
        .expect("a list")
        .iter()
        .find(|h| h["id"] == id)
        .cloned())
}

async fn incident_hold(app: &App) -> Result<()> {
    first_administrator(app).await?;
    // A small platform with the attack scenarios, and the detectors run over it.
    app.invoke(
        "demo_seed",
        serde_json::json!({ "req": { "users": 20, "comments": 0, "days": 3, "scenarios": true } }),
    )
    .await?
    .expect("the administrator seeds demo data");
    app.click("nav-incidents").await?;
    app.el("incident-table").await?;
    app.click("monitor-run").await?;
    app.wait_css_for(
        "[data-testid=\"monitor-run-result\"]",
        std::time::Duration::from_secs(180),
    )
    .await?;
    app.wait_gone(".toast").await?;
    app.click_css(&format!("{CRITICAL_STUFFING} .row-link"))
        .await?;
    app.el("incident-hold").await?;
    assert!(!app.present("incident-hold-active").await?);

    // A hold needs a reason: refused in the screen, and by the core when called directly.
    app.click("incident-hold-place").await?;
    app.wait_css("[data-testid=\"incident-hold-reason\"][aria-invalid=\"true\"]")
        .await?;
    assert!(!app.present("incident-hold-active").await?);
    let refused = app
        .invoke(
            "incident_hold_place",
            serde_json::json!({ "req": { "incident_id": "not-an-id", "reason": "litigation" } }),
        )
        .await?
        .expect_err("a malformed incident id is refused");
    assert_eq!(refused["code"], "invalid_input", "{refused}");

    app.fill(
        "incident-hold-reason",
        "Litigation 2026-17: keep the evidence",
    )
    .await?;
    app.click("incident-hold-place").await?;
    let hold_id = app
        .attr("incident-hold-active", "data-id")
        .await?
        .expect("the hold's id");
    app.screenshot("incident-hold").await?;
    let held = listed_hold(app, &hold_id, false)
        .await?
        .expect("the new hold is in force");
    assert_eq!(held["target_kind"], "incident", "{held}");
    assert_eq!(held["reason"], "Litigation 2026-17: keep the evidence");

    // Released from the incident's page, after confirming.
    app.wait_gone(".toast").await?;
    app.click("incident-hold-release").await?;
    app.click("confirm-ok").await?;
    app.el("incident-hold-place").await?;
    assert!(!app.present("incident-hold-active").await?);
    assert!(listed_hold(app, &hold_id, false).await?.is_none());
    let released = listed_hold(app, &hold_id, true)
        .await?
        .expect("the released hold is listed with the released ones");
    assert!(released["released_at"].is_string(), "{released}");
    Ok(())
}
