//! Keys: where operators' secrets are kept ([`keystore`]); the key hierarchy builds on it.

pub mod keystore;
