use std::path::Path;

/// The commands registered in `src/lib.rs` (keep the two lists together).
const COMMANDS: &[&str] = &[
    "app_version",
    "app_status",
    "setup_initialise",
    "login",
    "login_mfa",
    "logout",
    "me",
    "session_status",
    "session_activity",
    "change_password",
    "mfa_begin",
    "mfa_confirm",
    "mfa_save_backup_codes",
    "notices",
    "notices_dismiss",
    "users_list",
    "user_detail",
    "user_create",
    "user_set_roles",
    "user_set_suspended",
    "user_unlock",
    "user_reset_password",
    "user_reset_mfa",
    "session_revoke",
    "keys_status",
    "keys_grant",
    "keys_rotate",
    "audit_list",
    "audit_verify",
    "security_events_list",
    "settings_show",
    "settings_set_database",
    "outbox_list",
    "outbox_retry",
    "outbox_cancel",
    "outbox_deliver",
    "mail_settings",
    "mail_test",
    "dsr_list",
    "dsr_create",
    "dsr_show",
    "dsr_verify_code",
    "dsr_verify_token",
    "dsr_reissue_code",
    "dsr_extend",
    "dsr_reject",
    "dsr_withdraw",
    "dsr_run",
    "dsr_stop",
    "dsr_default_export_dir",
    "holds_list",
    "hold_place",
    "incident_hold_place",
    "hold_release",
    "demo_seed",
    "incidents_list",
    "incident_show",
    "incident_act",
    "blocks_list",
    "block_add",
    "block_remove",
    "monitor_run",
    "dashboard_chart",
    "dashboard_chart_export",
    "retention_policies",
    "retention_set_policy",
    "retention_plan",
    "retention_run",
    "retention_stop",
    "retention_runs",
];

fn main() {
    // `generate_context!` embeds the built UI, so it must exist before the shell compiles.
    let frontend_dist = Path::new("../ui/dist");
    if !frontend_dist.join("index.html").is_file() {
        panic!(
            "ui/dist/index.html is missing: run `scripts/build-ui` before building vigil-desktop"
        );
    }
    // Re-embed the UI whenever a new build of it lands.
    println!("cargo:rerun-if-changed=../ui/dist");

    // Every app command gets an allow-<name> permission; the window may call only those its
    // capability lists (capabilities/default.json), and nothing else of Tauri's core but events.
    let attributes = tauri_build::Attributes::new()
        .config_path("../tauri.conf.json")
        .app_manifest(tauri_build::AppManifest::new().commands(COMMANDS));
    if let Err(error) = tauri_build::try_build(attributes) {
        panic!("tauri build step failed: {error:#}");
    }
}
