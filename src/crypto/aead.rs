//! AES-256-GCM with 96-bit nonces: the one authenticated cipher every format here uses.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use rand::RngCore;
use zeroize::Zeroizing;

use super::SymmetricKey;

/// Nonce length in bytes (96 bits, GCM's native size).
pub const NONCE_LEN: usize = 12;
/// Authentication tag length in bytes.
pub const TAG_LEN: usize = 16;

/// The ciphertext or its associated data did not authenticate under the key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the ciphertext does not authenticate (wrong key, or altered)")]
pub struct OpenFailed;

/// A fresh random nonce. With random 96-bit nonces a key must seal fewer than 2^32 values;
/// data keys are rotated long before that.
pub fn random_nonce() -> [u8; NONCE_LEN] {
    let mut n = [0u8; NONCE_LEN];
    rand::rngs::OsRng.fill_bytes(&mut n);
    n
}

/// Encrypts `plaintext` and returns ciphertext followed by the 16-byte tag.
pub fn seal(key: &SymmetricKey, nonce: &[u8; NONCE_LEN], aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
    let cipher = Aes256Gcm::new(key.expose().into());
    cipher
        .encrypt(
            Nonce::from_slice(nonce),
            Payload {
                msg: plaintext,
                aad,
            },
        )
        .expect("AES-GCM encryption fails only for inputs over 64 GiB")
}

/// Decrypts ciphertext-and-tag; refuses anything that does not authenticate.
pub fn open(
    key: &SymmetricKey,
    nonce: &[u8; NONCE_LEN],
    aad: &[u8],
    ciphertext_and_tag: &[u8],
) -> Result<Zeroizing<Vec<u8>>, OpenFailed> {
    if ciphertext_and_tag.len() < TAG_LEN {
        return Err(OpenFailed);
    }
    let cipher = Aes256Gcm::new(key.expose().into());
    cipher
        .decrypt(
            Nonce::from_slice(nonce),
            Payload {
                msg: ciphertext_and_tag,
                aad,
            },
        )
        .map(Zeroizing::new)
        .map_err(|_| OpenFailed)
}
