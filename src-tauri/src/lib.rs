//! Vigil desktop shell: a thin Tauri v2 layer over the `vigil` core crate.
//!
//! Commands live in [`commands`], one module per domain, and stay thin: they translate
//! between the UI's JSON world and the core library. [`state::AppState`] holds the open
//! database and the signed-in operator; secrets never cross to the UI.

pub mod commands;
mod error;
mod events;
pub mod state;
mod watch;

pub use error::{CommandError, CommandResult, ErrorCode};

/// Builds and runs the desktop application until its last window closes.
///
/// # Panics
///
/// Panics if the configuration is invalid or the Tauri runtime cannot be started (for example
/// when no display is available); there is nothing useful the shell can do in those cases.
pub fn run() {
    let config = vigil::config::Config::load().unwrap_or_else(|e| {
        eprintln!("vigil-desktop: {e}");
        std::process::exit(2);
    });
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(&config.log))
        .with_writer(std::io::stderr)
        .try_init();
    tauri::Builder::default()
        .plugin(tauri_plugin_notification::init())
        .manage(state::AppState::new(config))
        .setup(|app| {
            watch::start(app.handle().clone());
            Ok(())
        })
        .invoke_handler(tauri::generate_handler![
            commands::app::app_version,
            commands::app::app_status,
            commands::setup::setup_initialise,
            commands::session::login,
            commands::session::login_mfa,
            commands::session::logout,
            commands::session::me,
            commands::session::session_status,
            commands::session::session_activity,
            commands::session::change_password,
            commands::session::notices,
            commands::session::notices_dismiss,
            commands::mfa::mfa_begin,
            commands::mfa::mfa_confirm,
            commands::mfa::mfa_save_backup_codes,
            commands::users::users_list,
            commands::users::user_detail,
            commands::users::user_create,
            commands::users::user_set_roles,
            commands::users::user_set_suspended,
            commands::users::user_unlock,
            commands::users::user_reset_password,
            commands::users::user_reset_mfa,
            commands::users::session_revoke,
            commands::keys::keys_status,
            commands::keys::keys_grant,
            commands::keys::keys_rotate,
            commands::audit::audit_list,
            commands::audit::audit_verify,
            commands::audit::security_events_list,
            commands::settings::settings_show,
            commands::settings::settings_set_database,
            commands::outbox::outbox_list,
            commands::outbox::outbox_retry,
            commands::outbox::outbox_cancel,
            commands::outbox::outbox_deliver,
            commands::outbox::mail_settings,
            commands::outbox::mail_test,
            commands::privacy::dsr_list,
            commands::privacy::dsr_create,
            commands::privacy::dsr_show,
            commands::privacy::dsr_verify_code,
            commands::privacy::dsr_verify_token,
            commands::privacy::dsr_reissue_code,
            commands::privacy::dsr_extend,
            commands::privacy::dsr_reject,
            commands::privacy::dsr_withdraw,
            commands::privacy::dsr_run,
            commands::privacy::dsr_stop,
            commands::privacy::dsr_default_export_dir,
            commands::privacy::holds_list,
            commands::privacy::hold_place,
            commands::privacy::incident_hold_place,
            commands::privacy::hold_release,
            commands::demo::demo_seed,
            commands::incidents::incidents_list,
            commands::incidents::incident_show,
            commands::incidents::incident_act,
            commands::incidents::blocks_list,
            commands::incidents::block_add,
            commands::incidents::block_remove,
            commands::incidents::monitor_run,
            commands::incidents::dashboard_chart,
            commands::incidents::dashboard_chart_export,
            commands::retention::retention_policies,
            commands::retention::retention_set_policy,
            commands::retention::retention_plan,
            commands::retention::retention_run,
            commands::retention::retention_stop,
            commands::retention::retention_runs,
        ])
        .run(tauri::generate_context!("../tauri.conf.json"))
        .expect("error while running the Vigil desktop shell");
}

#[cfg(test)]
mod tests {
    /// Every registered command is allowed by the window's capability and declared to the
    /// build (which makes its permission), and nothing else is.
    #[test]
    fn the_capability_allows_exactly_the_registered_commands() {
        let lib = include_str!("lib.rs");
        let registered: std::collections::BTreeSet<String> = lib
            .lines()
            .filter_map(|l| l.trim().strip_prefix("commands::"))
            .filter_map(|l| l.trim_end_matches(',').rsplit("::").next())
            .map(str::to_owned)
            .collect();
        assert!(registered.len() > 20);
        let build = include_str!("../build.rs");
        let declared: std::collections::BTreeSet<String> = build
            .lines()
            .filter_map(|l| l.trim().strip_prefix('"')?.strip_suffix("\","))
            .map(str::to_owned)
            .collect();
        assert_eq!(registered, declared);
        let capability: serde_json::Value =
            serde_json::from_str(include_str!("../capabilities/default.json")).unwrap();
        let allowed: std::collections::BTreeSet<String> = capability["permissions"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|p| p.as_str()?.strip_prefix("allow-"))
            .map(|p| p.replace('-', "_"))
            .collect();
        assert_eq!(registered, allowed);
    }
}
