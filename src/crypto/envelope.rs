//! Multi-recipient envelopes for end-to-end encrypted comments.
//!
//! The body is encrypted once with a fresh AES-256-GCM content key; that key is wrapped with
//! RSA-OAEP-SHA256 for each recipient's public key. The associated data binds the ciphertext
//! to its context (the comment id) and to the exact, sorted list of recipient fingerprints, so
//! adding, removing or swapping a recipient, or moving the envelope to another comment, makes
//! it refuse to open. The OAEP label binds each wrapped key to the same context.
//!
//! Format: `version | count (u16) | count × (fingerprint (32) | len (u16) | wrapped key)
//! | nonce (12) | ciphertext | tag (16)`, all big-endian. Version 2 (written now) also binds
//! every recipient's wrapped key into the associated data (by its SHA-256), so no byte of the
//! envelope can change without every recipient refusing it; in version 1 (still opened) a
//! changed wrapped key went unnoticed by the other recipients.

use zeroize::Zeroizing;

use super::aead::{self, NONCE_LEN, TAG_LEN};
use super::rsa::{Fingerprint, PrivateKey, PublicKey};
use super::{put_len_prefixed, SymmetricKey};

/// The first format's version byte: associated data over the recipients' fingerprints only.
pub const FORMAT_V1: u8 = 1;
/// The format written now: associated data over fingerprints and wrapped keys.
pub const FORMAT_V2: u8 = 2;
/// Most recipients one envelope may have.
pub const MAX_RECIPIENTS: usize = 64;

/// Why an envelope could not be made or opened. Each case is its own error on purpose.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    /// No recipients, or too many.
    #[error("an envelope needs 1 to {MAX_RECIPIENTS} recipients")]
    Recipients,
    /// The asked-for recipient is not among the envelope's recipients.
    #[error("not a recipient of this message")]
    NotARecipient,
    /// The private key given is not the recipient's key.
    #[error("this private key is not the recipient's key")]
    WrongKey,
    /// The envelope was altered, truncated, or moved from elsewhere.
    #[error("the encrypted message was altered or is not for this place")]
    Tampered,
    /// A format version this build does not know.
    #[error("encrypted message format {0} is not supported")]
    UnsupportedVersion(u8),
}

/// One recipient's copy of the content key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrappedFor {
    /// The recipient key's fingerprint.
    pub fingerprint: Fingerprint,
    /// The content key, RSA-OAEP-encrypted to that key.
    pub wrapped_key: Vec<u8>,
}

/// A sealed message and its recipients.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    version: u8,
    recipients: Vec<WrappedFor>,
    nonce: [u8; NONCE_LEN],
    ciphertext: Vec<u8>,
}

fn label(context: &str) -> String {
    format!("vigil-envelope-v1:{context}")
}

fn aad(version: u8, context: &str, recipients: &[WrappedFor]) -> Vec<u8> {
    use sha2::Digest;
    let mut a = Vec::with_capacity(64 + 64 * recipients.len());
    put_len_prefixed(&mut a, b"vigil-envelope-v1");
    put_len_prefixed(&mut a, context.as_bytes());
    a.extend_from_slice(&(recipients.len() as u16).to_be_bytes());
    for r in recipients {
        a.extend_from_slice(&r.fingerprint.0);
        if version >= FORMAT_V2 {
            a.extend_from_slice(&sha2::Sha256::digest(&r.wrapped_key));
        }
    }
    a
}

impl Envelope {
    /// Encrypts `plaintext` for `recipients` (duplicates collapse), bound to `context`.
    pub fn seal(
        context: &str,
        recipients: &[&PublicKey],
        plaintext: &[u8],
    ) -> Result<Self, EnvelopeError> {
        let mut keys: Vec<&PublicKey> = recipients.to_vec();
        keys.sort_by_key(|k| k.fingerprint());
        keys.dedup_by_key(|k| k.fingerprint());
        if keys.is_empty() || keys.len() > MAX_RECIPIENTS {
            return Err(EnvelopeError::Recipients);
        }
        let content_key = SymmetricKey::random();
        let label = label(context);
        let wrapped = keys
            .iter()
            .map(|k| {
                Ok(WrappedFor {
                    fingerprint: k.fingerprint(),
                    wrapped_key: k
                        .encrypt(&label, content_key.expose())
                        .map_err(|_| EnvelopeError::Recipients)?,
                })
            })
            .collect::<Result<Vec<_>, EnvelopeError>>()?;
        let nonce = aead::random_nonce();
        let ciphertext = aead::seal(
            &content_key,
            &nonce,
            &aad(FORMAT_V2, context, &wrapped),
            plaintext,
        );
        Ok(Self {
            version: FORMAT_V2,
            recipients: wrapped,
            nonce,
            ciphertext,
        })
    }

    /// Opens the envelope as `recipient`, with that recipient's private key.
    pub fn open(
        &self,
        context: &str,
        recipient: &Fingerprint,
        key: &PrivateKey,
    ) -> Result<Zeroizing<Vec<u8>>, EnvelopeError> {
        let entry = self
            .recipients
            .iter()
            .find(|r| &r.fingerprint == recipient)
            .ok_or(EnvelopeError::NotARecipient)?;
        if &key.public_key().fingerprint() != recipient {
            return Err(EnvelopeError::WrongKey);
        }
        let raw = key
            .decrypt(&label(context), &entry.wrapped_key)
            .map_err(|_| EnvelopeError::Tampered)?;
        let content_key = SymmetricKey::from_slice(&raw).ok_or(EnvelopeError::Tampered)?;
        aead::open(
            &content_key,
            &self.nonce,
            &aad(self.version, context, &self.recipients),
            &self.ciphertext,
        )
        .map_err(|_| EnvelopeError::Tampered)
    }

    /// The recipients' fingerprints and wrapped keys.
    pub fn recipients(&self) -> &[WrappedFor] {
        &self.recipients
    }

    /// The serialised envelope.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = vec![self.version];
        out.extend_from_slice(&(self.recipients.len() as u16).to_be_bytes());
        for r in &self.recipients {
            out.extend_from_slice(&r.fingerprint.0);
            out.extend_from_slice(&(r.wrapped_key.len() as u16).to_be_bytes());
            out.extend_from_slice(&r.wrapped_key);
        }
        out.extend_from_slice(&self.nonce);
        out.extend_from_slice(&self.ciphertext);
        out
    }

    /// Parses a serialised envelope.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, EnvelopeError> {
        let mut r = Reader(bytes);
        let version = r.take(1)?[0];
        if version != FORMAT_V1 && version != FORMAT_V2 {
            return Err(EnvelopeError::UnsupportedVersion(version));
        }
        let n = r.u16()? as usize;
        if n == 0 || n > MAX_RECIPIENTS {
            return Err(EnvelopeError::Tampered);
        }
        let mut recipients = Vec::with_capacity(n);
        for _ in 0..n {
            let fingerprint = Fingerprint(r.take(32)?.try_into().expect("32 bytes"));
            let len = r.u16()? as usize;
            recipients.push(WrappedFor {
                fingerprint,
                wrapped_key: r.take(len)?.to_vec(),
            });
        }
        let nonce = r.take(NONCE_LEN)?.try_into().expect("12 bytes");
        if r.0.len() < TAG_LEN {
            return Err(EnvelopeError::Tampered);
        }
        Ok(Self {
            version,
            recipients,
            nonce,
            ciphertext: r.0.to_vec(),
        })
    }
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], EnvelopeError> {
        if self.0.len() < n {
            return Err(EnvelopeError::Tampered);
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn u16(&mut self) -> Result<u16, EnvelopeError> {
        Ok(u16::from_be_bytes(
            self.take(2)?.try_into().expect("2 bytes"),
        ))
    }
}
