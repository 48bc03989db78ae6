//! Ed25519 keys for signing operators' access tokens (JWS `EdDSA`, RFC 8037).
//!
//! Each operator key pair (one per machine) has one: the seed is kept only in that machine's
//! keystore, sealed with the RSA private key; the 32-byte public key is stored beside the RSA
//! public key, and tokens name it in their `kid`. So a console signs only for its own operator.

use rand::RngCore;
use zeroize::Zeroizing;

/// Bytes of an Ed25519 public key.
pub const PUBLIC_KEY_LEN: usize = 32;
/// Bytes of an Ed25519 seed (the private key).
pub const SEED_LEN: usize = 32;

/// RFC 8410 §7: the PKCS#8 v1 encoding of an Ed25519 private key is this fixed prefix and the
/// 32-byte seed.
const PKCS8_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];

/// An operator's token-signing key. Opaque: the seed is never printed and leaves only sealed.
#[derive(Clone)]
pub struct TokenSigningKey {
    seed: Zeroizing<[u8; SEED_LEN]>,
    public: [u8; PUBLIC_KEY_LEN],
}

impl std::fmt::Debug for TokenSigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TokenSigningKey({})", hex::encode(&self.public[..8]))
    }
}

impl TokenSigningKey {
    /// A fresh key from the operating system's generator.
    pub fn generate() -> Self {
        let mut seed = Zeroizing::new([0u8; SEED_LEN]);
        rand::rngs::OsRng.fill_bytes(seed.as_mut());
        Self::from_seed(&seed)
    }

    /// The key with this seed.
    pub fn from_seed(seed: &[u8; SEED_LEN]) -> Self {
        let public = ed25519_dalek::SigningKey::from_bytes(seed)
            .verifying_key()
            .to_bytes();
        Self {
            seed: Zeroizing::new(*seed),
            public,
        }
    }

    /// The seed, for sealing into the keystore.
    pub(crate) fn seed(&self) -> &[u8; SEED_LEN] {
        &self.seed
    }

    /// The public key, as stored and as a JWK's `x`.
    pub fn public_key(&self) -> &[u8; PUBLIC_KEY_LEN] {
        &self.public
    }

    /// The key for `jsonwebtoken` (`Algorithm::EdDSA`). Whoever holds it can sign tokens for
    /// this key pair's operator, and for nobody else: verification checks that `sub` owns the
    /// key named in `kid`.
    pub fn encoding_key(&self) -> jsonwebtoken::EncodingKey {
        let mut der = Zeroizing::new(Vec::with_capacity(PKCS8_PREFIX.len() + SEED_LEN));
        der.extend_from_slice(&PKCS8_PREFIX);
        der.extend_from_slice(self.seed.as_ref());
        jsonwebtoken::EncodingKey::from_ed_der(&der)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 8032 §7.1, TEST 1: the seed's public key.
    #[test]
    fn rfc_8032_test_1_public_key() {
        let seed: [u8; 32] =
            hex::decode("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
                .unwrap()
                .try_into()
                .unwrap();
        let k = TokenSigningKey::from_seed(&seed);
        assert_eq!(
            hex::encode(k.public_key()),
            "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
        );
        assert!(!format!("{k:?}").contains("9d61b1"));
    }

    #[test]
    fn signs_tokens_that_verify_with_the_public_key_only() {
        let k = TokenSigningKey::generate();
        let header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
        let claims = serde_json::json!({ "sub": "x", "exp": 4_000_000_000u64 });
        let t = jsonwebtoken::encode(&header, &claims, &k.encoding_key()).unwrap();
        let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::EdDSA);
        v.required_spec_claims.clear();
        let ok = jsonwebtoken::decode::<serde_json::Value>(
            &t,
            &jsonwebtoken::DecodingKey::from_ed_der(k.public_key()),
            &v,
        );
        assert!(ok.is_ok());
        let other = TokenSigningKey::generate();
        assert!(jsonwebtoken::decode::<serde_json::Value>(
            &t,
            &jsonwebtoken::DecodingKey::from_ed_der(other.public_key()),
            &v,
        )
        .is_err());
    }
}
