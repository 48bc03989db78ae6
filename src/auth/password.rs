//! Operator passwords: argon2id hashing (OWASP/RFC 9106 parameters) and the length policy.
//!
//! Every password is put in Unicode Normalization Form C before it is measured, compared with
//! the list or given to argon2id (setting it, checking it, opening what it seals), so the same
//! characters typed on a keyboard that composes them and one that does not are the same
//! password (ASVS 5.0 V6.2.1/NIST SP 800-63B §5.1.1.2).

use std::sync::OnceLock;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use zeroize::Zeroizing;

use super::Username;

pub use crate::identity::normalize_password as normalize;

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
/// Most characters (Unicode scalar values, counted after NFC normalisation) in an operator
/// password; ASVS 5.0 V6.2.9 asks that at least 64 be allowed and 128 is plenty for a passphrase.
pub const MAX_LENGTH: usize = 128;

/// Why a password was refused. The message never contains the password.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum PasswordRejected {
    /// Fewer than 12 characters (NIST SP 800-63B minimum for operators here).
    #[error("password too short: operators need at least 12 characters")]
    TooShort,
    /// More than 128 characters.
    #[error("password too long: at most 128 characters")]
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

/// The shipped list of common and breached passwords, gzip-compressed (143 KB): lower case,
/// NFC, one a line, lines starting `#!` are comments. Its header names its sources.
static COMMON_PASSWORDS_GZ: &[u8] = include_bytes!("common_passwords.txt.gz");

/// Entries on the shipped list.
pub const COMMON_PASSWORDS: usize = 49_264;

/// The shipped list, decompressed once.
fn common_passwords() -> &'static std::collections::HashSet<String> {
    static LIST: OnceLock<std::collections::HashSet<String>> = OnceLock::new();
    LIST.get_or_init(|| {
        let mut text = String::new();
        std::io::Read::read_to_string(
            &mut flate2::read::GzDecoder::new(COMMON_PASSWORDS_GZ),
            &mut text,
        )
        .expect("the shipped password list is valid gzip and UTF-8");
        text.lines()
            .filter(|l| !l.starts_with("#!") && !l.is_empty())
            .map(str::to_owned)
            .collect()
    })
}

/// Whether `secret` (NFC, compared in lower case) is on the shipped list, or is an entry of it
/// with digits added at the end that add little: at most four (`iloveyou1234`, `dragon2024`), or
/// a run counting up or down (`monkey123456789`). Attackers try exactly these first.
pub fn is_common(secret: &str) -> bool {
    let lower = Zeroizing::new(normalize(secret).to_lowercase());
    let list = common_passwords();
    if list.contains(lower.as_str()) {
        return true;
    }
    let base = lower.trim_end_matches(|c: char| c.is_ascii_digit());
    let digits = &lower[base.len()..];
    !digits.is_empty()
        && base.chars().count() >= 4
        && (digits.len() <= 4 || is_run(digits))
        && list.contains(base)
}

/// Whether ASCII digits count up or down by one each (`3456`, `987`, wrapping `8901`).
fn is_run(digits: &str) -> bool {
    let d: Vec<u8> = digits.bytes().map(|b| b - b'0').collect();
    let up = d.windows(2).all(|w| w[1] == (w[0] + 1) % 10);
    let down = d.windows(2).all(|w| w[0] == (w[1] + 1) % 10);
    up || down
}

impl Password {
    /// Checks an operator password against the policy: 12 to 128 characters after NFC
    /// normalisation, not containing the username, not one repeated character, not on the
    /// shipped list of common and breached passwords. No composition rules (NIST SP 800-63B
    /// §5.1.1). Keeps the NFC form.
    pub fn parse_for_operator(secret: &str, username: &Username) -> Result<Self, PasswordRejected> {
        let secret = normalize(secret);
        let secret = secret.as_str();
        let n = secret.chars().count();
        if n < MIN_LENGTH {
            return Err(PasswordRejected::TooShort);
        }
        if n > MAX_LENGTH {
            return Err(PasswordRejected::TooLong);
        }
        if Zeroizing::new(secret.to_lowercase()).contains(&username.as_str().to_lowercase()) {
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

    /// The secret (NFC), for hashing.
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

/// Verifies a password (normalised to NFC first, as it was when set) against a stored PHC
/// string. A malformed hash verifies nothing.
pub fn verify_password(password: &str, phc: &str) -> bool {
    let password = normalize(password);
    match PasswordHash::new(phc) {
        Ok(parsed) => hasher()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// A key only this password opens, taken from the same argon2id work that checks it: HKDF-SHA256
/// over argon2's final memory block, of which the stored hash is a different one-way function
/// (RFC 9106 §3.2, step 7: `tag = H'(final block)`). Knowing the hash tells nothing about this key
/// beyond what guessing passwords at full argon2id cost gives, so it costs sign-in no second
/// argon2id run.
pub(crate) struct PasswordKey(Zeroizing<[u8; 32]>);

impl PasswordKey {
    /// The key.
    pub(crate) fn expose(&self) -> &[u8; 32] {
        &self.0
    }
}

/// Runs argon2id as `phc` says for `password` (normalised to NFC) and returns the tag and the
/// password key.
fn argon2_with_key(password: &str, phc: &PasswordHash<'_>) -> Option<(Vec<u8>, PasswordKey)> {
    use argon2::Block;
    use blake2::digest::{Update, VariableOutput};

    let password = normalize(password);
    if phc.algorithm != Algorithm::Argon2id.ident() {
        return None;
    }
    let expected = phc.hash?;
    let tag_len = expected.len();
    // Only tags up to 64 bytes are a single BLAKE2b over the final block (RFC 9106 §3.3); Vigil
    // makes 32-byte ones.
    if !(16..=64).contains(&tag_len) {
        return None;
    }
    let version = phc
        .version
        .map(Version::try_from)
        .transpose()
        .ok()?
        .unwrap_or_default();
    let p = Params::try_from(phc).ok()?;
    let params = Params::new(p.m_cost(), p.t_cost(), p.p_cost(), Some(tag_len)).ok()?;
    let mut salt = [0u8; 64];
    let salt = phc.salt?.decode_b64(&mut salt).ok()?;
    let lanes = params.p_cost() as usize;
    let mut memory = vec![Block::default(); params.block_count()];
    let mut tag = vec![0u8; tag_len];
    Argon2::new(Algorithm::Argon2id, version, params)
        .hash_password_into_with_memory(password.as_bytes(), salt, &mut tag, &mut memory)
        .ok()?;
    // The final block: the last block of every lane, XORed (RFC 9106 §3.2, step 7).
    let lane_length = memory.len() / lanes;
    let mut last = Zeroizing::new([0u64; Block::SIZE / 8]);
    for lane in 0..lanes {
        for (w, v) in last
            .iter_mut()
            .zip(memory[lane * lane_length + lane_length - 1].as_ref())
        {
            *w ^= v;
        }
    }
    let mut bytes = Zeroizing::new([0u8; Block::SIZE]);
    for (chunk, w) in bytes.chunks_mut(8).zip(last.iter()) {
        chunk.copy_from_slice(&w.to_le_bytes());
    }
    for block in memory.iter_mut() {
        zeroize::Zeroize::zeroize(block.as_mut());
    }
    // The block taken must be the one the tag came from; otherwise derive nothing.
    let mut check = blake2::Blake2bVar::new(tag_len).ok()?;
    check.update(&(tag_len as u32).to_le_bytes());
    check.update(bytes.as_ref());
    let mut again = vec![0u8; tag_len];
    check.finalize_variable(&mut again).ok()?;
    if again != tag {
        return None;
    }
    let mut key = Zeroizing::new([0u8; 32]);
    hkdf::Hkdf::<sha2::Sha256>::new(Some(b"vigil-password-key-v1"), bytes.as_ref())
        .expand(b"credential key sealing", key.as_mut())
        .ok()?;
    Some((tag, PasswordKey(key)))
}

/// Verifies a password against a stored PHC string and, if it matches, returns the key only
/// that password opens (see [`PasswordKey`]). Costs the same as [`verify_password`]; a hash
/// Vigil cannot take a key from (not argon2id) gives `None` even for the right password.
pub(crate) fn verify_and_derive(password: &str, phc: &str) -> Option<PasswordKey> {
    let parsed = PasswordHash::new(phc).ok()?;
    let (tag, key) = argon2_with_key(password, &parsed)?;
    let expected = parsed.hash?;
    // Constant time over the tag (the `Output` comparison of the password-hash crate is too).
    (expected == argon2::password_hash::Output::new(&tag).ok()?).then_some(key)
}

/// Hashes with argon2id and a random salt, as [`hash_password`], and returns the key only this
/// password opens against the returned hash.
pub(crate) fn hash_and_derive(password: &Password) -> (String, PasswordKey) {
    let phc = hash_password(password);
    let key = verify_and_derive(password.expose(), &phc)
        .expect("a hash just made verifies and yields its key");
    (phc, key)
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
    fn common_long_passwords_are_refused() {
        for common in [
            "123456789012",
            "iloveyou1234",
            "qwertyuiop123",
            "password1234",
            "Password1234",
            "sunshine2024",
            "football12345678",
            "1q2w3e4r5t6y",
        ] {
            assert_eq!(
                Password::parse_for_operator(common, &user()).unwrap_err(),
                PasswordRejected::Common,
                "{common}"
            );
        }
        // A listed word with digits that are not a short or counting suffix is not refused by
        // the rule (the list itself may still hold it).
        assert!(!is_common("sunshine-73915-otter"));
        assert!(!is_common("zq9sunshine"));
        // The figures the README gives.
        let list = common_passwords();
        assert_eq!(list.len(), COMMON_PASSWORDS);
        assert_eq!(list.iter().filter(|p| p.chars().count() >= 12).count(), 308);
    }

    #[test]
    fn at_most_128_characters_after_normalisation() {
        let ok = "correct horse battery ".repeat(6);
        let at_limit: String = ok.chars().take(MAX_LENGTH).collect();
        assert!(Password::parse_for_operator(&at_limit, &user()).is_ok());
        let over = format!("{at_limit}x");
        let err = Password::parse_for_operator(&over, &user()).unwrap_err();
        assert_eq!(err, PasswordRejected::TooLong);
        assert_eq!(err.to_string(), "password too long: at most 128 characters");
        // Counted after NFC: 128 decomposed "é" (256 code points) are 128 characters.
        let nfd = "e\u{301}".repeat(64) + &"correct horse ".repeat(5)[..64];
        assert_eq!(nfd.chars().count(), 192);
        assert!(Password::parse_for_operator(&nfd, &user()).is_ok());
    }

    #[test]
    fn nfc_and_nfd_forms_are_one_password() {
        let nfc = "Zo\u{eb} caf\u{e9} cr\u{e8}me br\u{fb}l\u{e9}e";
        let nfd = "Zoe\u{308} cafe\u{301} cre\u{300}me bru\u{302}le\u{301}e";
        assert_ne!(nfc, nfd);
        for (set, sign_in) in [(nfc, nfd), (nfd, nfc)] {
            let pw = Password::parse_for_operator(set, &user()).unwrap();
            assert_eq!(pw.expose(), nfc, "kept in NFC");
            let (phc, key) = hash_and_derive(&pw);
            assert!(verify_password(sign_in, &phc));
            assert_eq!(
                verify_and_derive(sign_in, &phc).unwrap().expose(),
                key.expose()
            );
        }
    }

    #[test]
    fn the_password_key_comes_only_from_the_password_and_its_hash() {
        let pw = Password::parse_for_operator("correct horse battery", &user()).unwrap();
        let (phc, key) = hash_and_derive(&pw);
        assert!(verify_password("correct horse battery", &phc));
        let again = verify_and_derive("correct horse battery", &phc).unwrap();
        assert_eq!(key.expose(), again.expose());
        assert!(verify_and_derive("correct horse batterY", &phc).is_none());
        // Another hash of the same password (another salt) gives another key.
        let other = verify_and_derive("correct horse battery", &hash_password(&pw)).unwrap();
        assert_ne!(key.expose(), other.expose());
        // The key is not the stored tag.
        let parsed = PasswordHash::new(&phc).unwrap();
        assert_ne!(parsed.hash.unwrap().as_bytes(), key.expose());
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
