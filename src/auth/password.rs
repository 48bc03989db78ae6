//! Operator passwords: argon2id hashing (OWASP/RFC 9106 parameters) and the length policy.

use std::sync::OnceLock;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use zeroize::Zeroizing;

use super::Username;

/// argon2id with m = 19456 KiB, t = 2, p = 1 (OWASP's minimum recommendation).
fn hasher() -> Argon2<'static> {
    let params = Params::new(19_456, 2, 1, None).expect("static argon2 parameters are valid");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// A candidate password that met the policy. Never printed.
#[derive(Clone)]
pub struct Password(Zeroizing<String>);

/// Fewest characters in an operator password.
pub const MIN_LENGTH: usize = 12;
/// Most characters in an operator password.
pub const MAX_LENGTH: usize = 256;

/// Why a password was refused. The message never contains the password.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum PasswordRejected {
    /// Fewer than 12 characters (NIST SP 800-63B minimum for operators here).
    #[error("password too short: operators need at least 12 characters")]
    TooShort,
    /// More than 256 characters.
    #[error("password too long: at most 256 characters")]
    TooLong,
    /// Contains the username.
    #[error("password must not contain the username")]
    ContainsUsername,
    /// One character repeated.
    #[error("password must not be a single repeated character")]
    Repetitive,
    /// On the shipped list of common and breached passwords.
    #[error("this password is on the list of common and breached passwords; choose another")]
    Common,
}

/// The shipped list of common and breached passwords (30,000, lower case).
fn common_passwords() -> &'static std::collections::HashSet<&'static str> {
    static LIST: OnceLock<std::collections::HashSet<&'static str>> = OnceLock::new();
    LIST.get_or_init(|| {
        include_str!("common_passwords.txt")
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .collect()
    })
}

/// Whether `secret` (compared in lower case) is on the shipped list.
pub fn is_common(secret: &str) -> bool {
    common_passwords().contains(secret.to_lowercase().as_str())
}

impl Password {
    /// Checks an operator password against the policy: 12 to 256 characters, not containing
    /// the username, not one repeated character, not on the shipped list of common and
    /// breached passwords. No composition rules (NIST SP 800-63B §5.1.1).
    pub fn parse_for_operator(secret: &str, username: &Username) -> Result<Self, PasswordRejected> {
        let n = secret.chars().count();
        if n < MIN_LENGTH {
            return Err(PasswordRejected::TooShort);
        }
        if n > MAX_LENGTH {
            return Err(PasswordRejected::TooLong);
        }
        if secret
            .to_lowercase()
            .contains(&username.as_str().to_lowercase())
        {
            return Err(PasswordRejected::ContainsUsername);
        }
        let mut chars = secret.chars();
        let first = chars.next();
        if chars.all(|c| Some(c) == first) {
            return Err(PasswordRejected::Repetitive);
        }
        if is_common(secret) {
            return Err(PasswordRejected::Common);
        }
        Ok(Self(Zeroizing::new(secret.to_owned())))
    }

    /// The secret, for hashing.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(***)")
    }
}

/// Hashes with argon2id and a random salt; returns the PHC string.
pub fn hash_password(password: &Password) -> String {
    let salt = SaltString::generate(&mut rand::rngs::OsRng);
    hasher()
        .hash_password(password.expose().as_bytes(), &salt)
        .expect("argon2 hashing with valid parameters does not fail")
        .to_string()
}

/// Verifies a password against a stored PHC string. A malformed hash verifies nothing.
pub fn verify_password(password: &str, phc: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(parsed) => hasher()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// A valid hash of a random password, verified against when the username is unknown so both
/// paths cost the same.
pub(super) fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        let pw = Password(Zeroizing::new(super::random_password(24)));
        hash_password(&pw)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user() -> Username {
        Username::parse("root-admin").unwrap()
    }

    #[test]
    fn policy() {
        assert_eq!(
            Password::parse_for_operator("short", &user()).unwrap_err(),
            PasswordRejected::TooShort
        );
        assert_eq!(
            Password::parse_for_operator("my root-admin pass", &user()).unwrap_err(),
            PasswordRejected::ContainsUsername
        );
        assert_eq!(
            Password::parse_for_operator("aaaaaaaaaaaaaaa", &user()).unwrap_err(),
            PasswordRejected::Repetitive
        );
        // On the shipped list, in any case.
        for common in ["1qaz2wsx3edc", "123QWEASDZXC"] {
            assert_eq!(
                Password::parse_for_operator(common, &user()).unwrap_err(),
                PasswordRejected::Common
            );
        }
        assert!(is_common("password") && is_common("123456") && !is_common("xq7-marble-otter"));
        assert!(Password::parse_for_operator("correct horse battery", &user()).is_ok());
        let dbg = format!(
            "{:?}",
            Password::parse_for_operator("correct horse battery", &user())
        );
        assert!(!dbg.contains("horse"), "{dbg}");
    }

    #[test]
    fn hash_and_verify() {
        let pw = Password::parse_for_operator("correct horse battery", &user()).unwrap();
        let phc = hash_password(&pw);
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert!(verify_password("correct horse battery", &phc));
        assert!(!verify_password("correct horse batterY", &phc));
        assert!(!verify_password("correct horse battery", "not a hash"));
    }
}
