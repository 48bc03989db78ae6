//! An operator's credential key: 256 random bits, stored only sealed with the key their password
//! gives ([`super::password::PasswordKey`]), so only their own sign-in opens it, on any machine.
//! Secrets that must follow the operator rather than a machine, and must open for nobody else
//! (their TOTP secret), are sealed with keys derived from it.
//!
//! Sealed format (version 1): `0x01 | nonce (12) | AES-256-GCM(key) | tag (16)`, the associated
//! data naming the operator, so a sealed key copied to another account does not open.
//! A password change re-seals it with the new password; an administrator's reset, which knows
//! no password of the operator's, drops it, and with it what it sealed.

use hkdf::Hkdf;
use sha2::Sha256;

use super::password::PasswordKey;
use super::UserId;
use crate::crypto::aead::{self, NONCE_LEN, TAG_LEN};
use crate::crypto::SymmetricKey;

const FORMAT_V1: u8 = 1;

/// An operator's credential key, open for the session. Never printed, wiped when dropped.
#[derive(Clone)]
pub struct CredentialKey {
    user: UserId,
    key: SymmetricKey,
}

impl std::fmt::Debug for CredentialKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CredentialKey")
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

/// The sealed credential key did not open: altered, another account's, or sealed with a
/// password that has since been replaced outside Vigil.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the credential key does not open with this password")]
pub struct CredentialKeyUnsealError;

fn aad(user: UserId) -> Vec<u8> {
    let mut a = b"vigil-credential-key-v1".to_vec();
    a.extend_from_slice(user.as_uuid().as_bytes());
    a
}

impl CredentialKey {
    /// A fresh key for `user`.
    pub(crate) fn random(user: UserId) -> Self {
        Self {
            user,
            key: SymmetricKey::random(),
        }
    }

    /// The key itself, for a short-lived sealed session record.
    pub(crate) fn secret(&self) -> &[u8; 32] {
        self.key.expose()
    }

    /// The key of `user` from [`CredentialKey::secret`]'s bytes.
    pub(crate) fn from_secret(user: UserId, bytes: &[u8]) -> Option<Self> {
        Some(Self {
            user,
            key: SymmetricKey::from_slice(bytes)?,
        })
    }

    /// The operator it belongs to.
    pub fn user(&self) -> UserId {
        self.user
    }

    /// Seals it with the key of the operator's (new) password.
    pub(crate) fn seal(&self, with: &PasswordKey) -> Vec<u8> {
        let kek = SymmetricKey::from_slice(with.expose()).expect("32 bytes");
        let nonce = aead::random_nonce();
        let mut out = Vec::with_capacity(1 + NONCE_LEN + 32 + TAG_LEN);
        out.push(FORMAT_V1);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&aead::seal(
            &kek,
            &nonce,
            &aad(self.user),
            self.key.expose(),
        ));
        out
    }

    /// Opens `sealed` with the key of the operator's password.
    pub(crate) fn open(
        user: UserId,
        sealed: &[u8],
        with: &PasswordKey,
    ) -> Result<Self, CredentialKeyUnsealError> {
        if sealed.len() != 1 + NONCE_LEN + 32 + TAG_LEN || sealed[0] != FORMAT_V1 {
            return Err(CredentialKeyUnsealError);
        }
        let kek = SymmetricKey::from_slice(with.expose()).expect("32 bytes");
        let nonce: [u8; NONCE_LEN] = sealed[1..1 + NONCE_LEN].try_into().expect("12 bytes");
        let raw = aead::open(&kek, &nonce, &aad(user), &sealed[1 + NONCE_LEN..])
            .map_err(|_| CredentialKeyUnsealError)?;
        Ok(Self {
            user,
            key: SymmetricKey::from_slice(&raw).ok_or(CredentialKeyUnsealError)?,
        })
    }

    /// The key for one use (`purpose` names it), derived with HKDF-SHA256.
    pub(crate) fn derive(&self, purpose: &str) -> SymmetricKey {
        let mut out = zeroize::Zeroizing::new([0u8; 32]);
        Hkdf::<Sha256>::new(Some(b"vigil-credential-key-v1"), self.key.expose())
            .expand(purpose.as_bytes(), out.as_mut())
            .expect("32 bytes is a valid HKDF-SHA256 length");
        SymmetricKey::from_slice(out.as_ref()).expect("32 bytes")
    }
}
