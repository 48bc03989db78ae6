//! Cryptography: AES-256-GCM field encryption bound to each value's place, multi-recipient
//! envelopes (RSA-OAEP-SHA256 + AES-256-GCM) for end-to-end encrypted comments, keyed blind
//! indexes and content hashes (HMAC-SHA256).
//!
//! Every primitive comes from a maintained crate; this module only fixes the parameters and
//! the byte formats. RSA lives behind [`rsa`] alone, so its backend can be swapped.

pub mod aead;
pub mod envelope;
pub mod field;
pub mod mac;
pub mod rsa;
pub mod signing;

use rand::RngCore;
use zeroize::{Zeroize, ZeroizeOnDrop};

pub use envelope::{Envelope, EnvelopeError, WrappedFor};
pub use field::{FieldError, Place};
pub use rsa::{Fingerprint, KeyBits, PrivateKey, PublicKey, RsaError};
pub use signing::TokenSigningKey;

/// A 256-bit symmetric key (AES-256 or HMAC-SHA256). Wiped on drop; never printed.
#[derive(Clone, Zeroize, ZeroizeOnDrop, PartialEq, Eq)]
pub struct SymmetricKey([u8; 32]);

impl SymmetricKey {
    /// A fresh key from the operating system's generator.
    pub fn random() -> Self {
        let mut k = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut k);
        Self(k)
    }

    /// A key from exactly 32 bytes.
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        <[u8; 32]>::try_from(bytes).ok().map(Self)
    }

    /// The raw key, for the cipher and for wrapping.
    pub fn expose(&self) -> &[u8; 32] {
        &self.0
    }
}

impl std::fmt::Debug for SymmetricKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SymmetricKey(..)")
    }
}

/// The version of a data key, as written into every ciphertext made with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub struct KeyVersion(pub u32);

impl std::fmt::Display for KeyVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "v{}", self.0)
    }
}

/// Appends `bytes` with a 4-byte big-endian length, so concatenated fields cannot be
/// re-split differently (used for associated data and MAC inputs).
pub(crate) fn put_len_prefixed(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&u32::try_from(bytes.len()).unwrap_or(u32::MAX).to_be_bytes());
    out.extend_from_slice(bytes);
}
