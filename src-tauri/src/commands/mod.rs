//! Tauri commands exposed to the UI. Each one is a thin wrapper over the core.

pub mod app;
