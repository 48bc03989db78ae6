//! Tauri commands, one module per domain. Each is a few lines: take the state, parse the
//! request, call the core, map the error. Request and response types derive `TS`, and their
//! TypeScript twins are generated into `ui/src/lib/api/bindings/`.

pub mod app;
pub mod audit;
pub mod demo;
pub mod keys;
pub mod mfa;
pub mod privacy;
pub mod session;
pub mod settings;
pub mod setup;
pub mod users;

/// A timestamp (RFC 3339) from the core's microseconds.
pub(crate) fn rfc3339(t: vigil::store::Timestamp) -> String {
    t.to_rfc3339()
}
