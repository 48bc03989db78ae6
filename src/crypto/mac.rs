//! Keyed hashes (HMAC-SHA256): blind indexes for equality lookups on encrypted values, and
//! content hashes for integrity and duplicate detection. Both are keyed, so neither is a
//! dictionary oracle for someone holding only the database.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::{put_len_prefixed, SymmetricKey};

type HmacSha256 = Hmac<Sha256>;

/// What a blind index is of; each kind has its own domain, so equal strings of different
/// kinds do not collide.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlindKind {
    /// An email address (trimmed, lower-cased).
    Email,
    /// An IP address (in its canonical text form).
    Ip,
    /// An account name a sign-in tried (trimmed, lower-cased), known or not.
    Account,
}

impl BlindKind {
    fn domain(self) -> &'static [u8] {
        match self {
            BlindKind::Email => b"vigil-bidx-email-v1",
            BlindKind::Ip => b"vigil-bidx-ip-v1",
            BlindKind::Account => b"vigil-bidx-account-v1",
        }
    }
}

/// An email address as it is indexed: surrounding space removed, lower case.
pub fn normalise_email(email: &str) -> String {
    email.trim().to_lowercase()
}

/// An IP address as it is indexed: parsed and printed canonically (so `::FFFF:1.2.3.4` and
/// `::ffff:1.2.3.4` agree); text that is no address is indexed as given.
pub fn normalise_ip(ip: &str) -> String {
    ip.trim()
        .parse::<std::net::IpAddr>()
        .map(|a| a.to_string())
        .unwrap_or_else(|_| ip.trim().to_owned())
}

/// The blind index of `value` (normalised for its kind) under the `blind_index` key.
pub fn blind_index(key: &SymmetricKey, kind: BlindKind, value: &str) -> [u8; 32] {
    let norm = match kind {
        BlindKind::Email => normalise_email(value),
        BlindKind::Ip => normalise_ip(value),
        BlindKind::Account => value.trim().to_lowercase(),
    };
    tag(key, kind.domain(), norm.as_bytes())
}

/// The content hash of a comment body under the `content_hash` key.
pub fn content_hash(key: &SymmetricKey, body: &[u8]) -> [u8; 32] {
    tag(key, b"vigil-content-v1", body)
}

fn tag(key: &SymmetricKey, domain: &[u8], msg: &[u8]) -> [u8; 32] {
    let mut mac = HmacSha256::new_from_slice(key.expose()).expect("HMAC takes any key length");
    let mut prefix = Vec::with_capacity(domain.len() + 4);
    put_len_prefixed(&mut prefix, domain);
    mac.update(&prefix);
    mac.update(msg);
    mac.finalize().into_bytes().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_index_ignores_case_and_space_only() {
        let k = SymmetricKey::random();
        let a = blind_index(&k, BlindKind::Email, " Ada@Example.org ");
        assert_eq!(a, blind_index(&k, BlindKind::Email, "ada@example.org"));
        assert_ne!(a, blind_index(&k, BlindKind::Email, "ada@example.com"));
        assert_ne!(
            a,
            blind_index(&SymmetricKey::random(), BlindKind::Email, "ada@example.org")
        );
    }

    #[test]
    fn kinds_do_not_collide_and_ips_are_canonical() {
        let k = SymmetricKey::random();
        assert_ne!(
            blind_index(&k, BlindKind::Email, "1.2.3.4"),
            blind_index(&k, BlindKind::Ip, "1.2.3.4")
        );
        assert_eq!(
            blind_index(&k, BlindKind::Ip, "2001:DB8::1"),
            blind_index(&k, BlindKind::Ip, "2001:db8:0::1")
        );
    }

    #[test]
    fn content_hash_is_keyed() {
        let k = SymmetricKey::random();
        assert_eq!(content_hash(&k, b"hello"), content_hash(&k, b"hello"));
        assert_ne!(
            content_hash(&k, b"hello"),
            content_hash(&SymmetricKey::random(), b"hello")
        );
    }
}
