//! Vigil desktop shell: a thin Tauri v2 layer over the `vigil` core crate.
//!
//! Commands live in [`commands`] and stay thin: they translate between the
//! UI's JSON world and the core library, nothing more.

mod commands;
mod error;

pub use error::CommandError;

/// Builds and runs the desktop application until its last window closes.
///
/// # Panics
///
/// Panics if the Tauri runtime cannot be started (for example when no display
/// is available); there is nothing useful the shell can do in that case.
pub fn run() {
    tauri::Builder::default()
        .invoke_handler(tauri::generate_handler![commands::app::app_version])
        .run(tauri::generate_context!("../tauri.conf.json"))
        .expect("error while running the Vigil desktop shell");
}
