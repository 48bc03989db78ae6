//! A bare Tauri window: the same Tauri version, WebKitGTK, window size and content security
//! policy as the Vigil desktop app, showing a blank page and nothing else. scripts/desktop-bench
//! measures its idle memory as the floor that Vigil's own share is counted above.

#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

fn main() {
    tauri::Builder::default()
        .run(tauri::generate_context!())
        .expect("the bare window failed to start");
}
