//! The error shape every fallible command returns to the UI.
//!
//! Serialized as `{ "code": "...", "message": "..." }` so the UI can branch on
//! a stable machine-readable `code` and show the human-readable `message`.
//! Messages must never carry secrets (passwords, tokens, key material).

use std::fmt;

use serde::Serialize;

/// A serializable command error: a stable `code` plus a human-readable `message`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CommandError {
    /// Stable, machine-readable identifier such as `"not_found"`.
    pub code: String,
    /// Human-readable explanation, safe to show in the UI.
    pub message: String,
}

impl CommandError {
    /// Creates an error with the given `code` and `message`.
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            code: code.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for CommandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for CommandError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serializes_as_code_and_message() {
        let error = CommandError::new("not_found", "no such session");
        let json = serde_json::to_value(&error).expect("serializable");
        assert_eq!(
            json,
            serde_json::json!({ "code": "not_found", "message": "no such session" })
        );
        assert_eq!(error.to_string(), "not_found: no such session");
    }
}
