//! RSA key pairs and RSA-OAEP (SHA-256, MGF1-SHA-256): the only place Vigil touches RSA.
//!
//! The `rsa` crate carries RUSTSEC-2023-0071, a timing side channel in private-key operations.
//! Vigil uses private keys only on the operator's own machine, for that operator's own work,
//! never in answer to input from a network (see SECURITY.md). Keeping RSA behind this module
//! means the backend can be swapped without touching the rest of the core.

use rsa::pkcs8::{
    DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey, LineEnding,
};
use rsa::traits::PublicKeyParts;
use rsa::{Oaep, RsaPrivateKey, RsaPublicKey};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

/// Allowed modulus sizes: 2048 bits is the minimum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "u32", into = "u32")]
pub enum KeyBits {
    /// 2048-bit modulus (the default).
    #[default]
    B2048,
    /// 3072-bit modulus.
    B3072,
    /// 4096-bit modulus.
    B4096,
}

impl KeyBits {
    /// The modulus size in bits.
    pub fn bits(self) -> usize {
        match self {
            KeyBits::B2048 => 2048,
            KeyBits::B3072 => 3072,
            KeyBits::B4096 => 4096,
        }
    }
}

impl TryFrom<u32> for KeyBits {
    type Error = String;
    fn try_from(v: u32) -> Result<Self, String> {
        match v {
            2048 => Ok(KeyBits::B2048),
            3072 => Ok(KeyBits::B3072),
            4096 => Ok(KeyBits::B4096),
            other => Err(format!(
                "RSA key size must be 2048, 3072 or 4096 bits, not {other}"
            )),
        }
    }
}

impl From<KeyBits> for u32 {
    fn from(b: KeyBits) -> u32 {
        b.bits() as u32
    }
}

/// Why an RSA operation failed. Decryption failures say nothing about why (no padding oracle).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RsaError {
    /// A key could not be parsed or has an unsupported size.
    #[error("invalid RSA key: {0}")]
    InvalidKey(&'static str),
    /// The message is too long for one OAEP block.
    #[error("message too long for RSA-OAEP with this key")]
    MessageTooLong,
    /// Decryption failed.
    #[error("RSA-OAEP decryption failed")]
    DecryptFailed,
}

/// A public key's identity: SHA-256 of its SubjectPublicKeyInfo DER.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Fingerprint(pub [u8; 32]);

impl Fingerprint {
    /// Lower-case hex, as stored in `user_keys.fingerprint`.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parses the hex form.
    pub fn from_hex(s: &str) -> Option<Self> {
        let v = hex::decode(s).ok()?;
        Some(Self(v.try_into().ok()?))
    }
}

impl std::fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Fingerprint({})", &self.to_hex()[..16])
    }
}

impl std::fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SHA256:{}", self.to_hex())
    }
}

/// An RSA public key.
#[derive(Clone, PartialEq, Eq)]
pub struct PublicKey {
    key: RsaPublicKey,
    der: Vec<u8>,
    fingerprint: Fingerprint,
}

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PublicKey({} bits, {:?})", self.bits(), self.fingerprint)
    }
}

impl PublicKey {
    fn from_rsa(key: RsaPublicKey) -> Result<Self, RsaError> {
        let der = key
            .to_public_key_der()
            .map_err(|_| RsaError::InvalidKey("cannot encode"))?
            .into_vec();
        let fingerprint = Fingerprint(Sha256::digest(&der).into());
        Ok(Self {
            key,
            der,
            fingerprint,
        })
    }

    /// Parses SubjectPublicKeyInfo DER; refuses moduli under 2048 bits.
    pub fn from_spki_der(der: &[u8]) -> Result<Self, RsaError> {
        let key = RsaPublicKey::from_public_key_der(der)
            .map_err(|_| RsaError::InvalidKey("not an RSA SubjectPublicKeyInfo"))?;
        if key.size() * 8 < 2048 {
            return Err(RsaError::InvalidKey("modulus under 2048 bits"));
        }
        Self::from_rsa(key)
    }

    /// SubjectPublicKeyInfo DER.
    pub fn spki_der(&self) -> &[u8] {
        &self.der
    }

    /// PEM (`-----BEGIN PUBLIC KEY-----`).
    pub fn to_pem(&self) -> String {
        self.key
            .to_public_key_pem(LineEnding::LF)
            .unwrap_or_default()
    }

    /// The key's fingerprint.
    pub fn fingerprint(&self) -> Fingerprint {
        self.fingerprint
    }

    /// Modulus size in bits.
    pub fn bits(&self) -> usize {
        self.key.size() * 8
    }

    /// RSA-OAEP-SHA256 encryption of a short message (a key), under `label`.
    pub fn encrypt(&self, label: &str, msg: &[u8]) -> Result<Vec<u8>, RsaError> {
        self.key
            .encrypt(
                &mut rand::rngs::OsRng,
                Oaep::new_with_label::<Sha256, _>(label),
                msg,
            )
            .map_err(|_| RsaError::MessageTooLong)
    }
}

/// An RSA private key. Wiped on drop (by the `rsa` crate); never printed.
pub struct PrivateKey {
    key: RsaPrivateKey,
    public: PublicKey,
}

impl std::fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PrivateKey({:?})", self.public.fingerprint)
    }
}

impl PrivateKey {
    /// Generates a key pair (slow: a 2048-bit key takes about 0.2 s, sometimes more).
    pub fn generate(bits: KeyBits) -> Result<Self, RsaError> {
        let key = RsaPrivateKey::new(&mut rand::rngs::OsRng, bits.bits())
            .map_err(|_| RsaError::InvalidKey("generation failed"))?;
        Self::from_rsa(key)
    }

    fn from_rsa(key: RsaPrivateKey) -> Result<Self, RsaError> {
        let public = PublicKey::from_rsa(key.to_public_key())?;
        Ok(Self { key, public })
    }

    /// Parses PKCS#8 DER; refuses moduli under 2048 bits.
    pub fn from_pkcs8_der(der: &[u8]) -> Result<Self, RsaError> {
        let key = RsaPrivateKey::from_pkcs8_der(der)
            .map_err(|_| RsaError::InvalidKey("not an RSA PKCS#8 private key"))?;
        if key.size() * 8 < 2048 {
            return Err(RsaError::InvalidKey("modulus under 2048 bits"));
        }
        Self::from_rsa(key)
    }

    /// PKCS#8 DER, in memory that is wiped on drop.
    pub fn to_pkcs8_der(&self) -> Zeroizing<Vec<u8>> {
        Zeroizing::new(
            self.key
                .to_pkcs8_der()
                .map(|d| d.as_bytes().to_vec())
                .unwrap_or_default(),
        )
    }

    /// The public half.
    pub fn public_key(&self) -> &PublicKey {
        &self.public
    }

    /// RSA-OAEP-SHA256 decryption under `label`.
    pub fn decrypt(&self, label: &str, ciphertext: &[u8]) -> Result<Zeroizing<Vec<u8>>, RsaError> {
        self.key
            .decrypt(Oaep::new_with_label::<Sha256, _>(label), ciphertext)
            .map(Zeroizing::new)
            .map_err(|_| RsaError::DecryptFailed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_other_labels_keys_and_alterations() {
        let sk = PrivateKey::generate(KeyBits::B2048).unwrap();
        let pk = sk.public_key().clone();
        assert_eq!(pk.bits(), 2048);
        let ct = pk
            .encrypt("vigil-test", b"32 bytes of key material here!!!")
            .unwrap();
        assert_eq!(
            sk.decrypt("vigil-test", &ct).unwrap().as_slice(),
            b"32 bytes of key material here!!!"
        );
        assert_eq!(
            sk.decrypt("other", &ct).unwrap_err(),
            RsaError::DecryptFailed
        );
        let mut t = ct.clone();
        t[100] ^= 1;
        assert_eq!(
            sk.decrypt("vigil-test", &t).unwrap_err(),
            RsaError::DecryptFailed
        );
        let again = PrivateKey::from_pkcs8_der(&sk.to_pkcs8_der()).unwrap();
        assert_eq!(again.public_key(), &pk);
        assert_eq!(PublicKey::from_spki_der(pk.spki_der()).unwrap(), pk);
        assert!(format!("{sk:?}").starts_with("PrivateKey(Fingerprint("));
        assert_eq!(
            Fingerprint::from_hex(&pk.fingerprint().to_hex()),
            Some(pk.fingerprint())
        );
    }

    #[test]
    fn key_sizes_are_checked() {
        assert_eq!(KeyBits::try_from(3072), Ok(KeyBits::B3072));
        assert!(KeyBits::try_from(1024).is_err());
        assert!(PublicKey::from_spki_der(b"not a key").is_err());
    }
}
