//! Vigil core: the security and privacy console's domain logic, with no UI code.
//!
//! Each operation takes the acting operator ([`identity::Actor`]) first, checks its permission
//! ([`rbac::require`]), does its work in one transaction and writes its audit entry
//! ([`audit::append`]) in that same transaction.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod analytics;
pub mod audit;
pub mod auth;
pub mod cli_values;
pub mod config;
pub mod crypto;
pub mod demo;
pub mod files;
pub mod identity;
pub mod incidents;
pub mod keys;
pub mod keystore;
pub mod mail;
/// TOTP second factor: part of sign-in, kept in `auth` and named here as before.
pub use auth::mfa;
pub mod monitor;
pub mod notices;
pub mod platform;
pub mod privacy;
pub mod rbac;
pub mod retention;
pub mod security_events;
pub mod security_log;
pub mod settings;
pub mod store;
pub mod worker;

/// The version of the Vigil core, as built.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
