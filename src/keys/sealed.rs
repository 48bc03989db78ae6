//! An operator's private keys as kept in the keystore: sealed with a key derived from the
//! operator's password, so the keystore item alone opens nothing.
//!
//! Format (version 2): `0x02 | user key id (16) | salt (16) | m_cost, t_cost, p_cost (u32 each)
//! | nonce (12) | AES-256-GCM(RSA PKCS#8 DER length (u32) | RSA PKCS#8 DER | Ed25519 token-signing
//! seed (32)) | tag (16)`. The key is argon2id(password, salt) with the stored costs; the
//! associated data names the format, the operator and the user key, so an item copied to
//! another operator's entry does not open. Both keys of the machine's key pair open with one
//! argon2id run.
//!
//! Version 1 (before token-signing keys) is the same without the length and the seed, with the
//! RSA DER alone as plaintext; it still opens, and unlocking re-seals it as version 2 with a new
//! token-signing key.

use argon2::{Algorithm, Argon2, Params, Version};
use rand::RngCore;
use zeroize::Zeroizing;

use crate::crypto::aead::{self, NONCE_LEN, TAG_LEN};
use crate::crypto::signing::SEED_LEN;
use crate::crypto::{PrivateKey, SymmetricKey, TokenSigningKey};

const FORMAT_V1: u8 = 1;
const FORMAT_V2: u8 = 2;
const SALT_LEN: usize = 16;
const HEADER_LEN: usize = 1 + 16 + SALT_LEN + 12 + NONCE_LEN;

/// The argon2id costs for sealing (the same as for password hashes).
const M_COST: u32 = 19_456;
const T_COST: u32 = 2;
const P_COST: u32 = 1;

/// Why a sealed key did not open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum UnsealError {
    /// Not a sealed key this build understands.
    #[error("the keystore item is not a sealed Vigil key")]
    Malformed,
    /// The password is wrong, or the item was altered or belongs to someone else.
    #[error("the keystore item does not open with this password")]
    WrongPasswordOrTampered,
}

/// What the keystore holds for one operator on one machine.
pub struct SealedKey<'a>(pub &'a [u8]);

/// A sealed key, opened.
pub struct Unsealed {
    /// The RSA private key.
    pub private: PrivateKey,
    /// The token-signing key (none in a version 1 item, sealed before they existed).
    pub signing: Option<TokenSigningKey>,
}

impl SealedKey<'_> {
    /// The `user_keys` row the sealed key belongs to.
    pub fn user_key_id(&self) -> Result<uuid::Uuid, UnsealError> {
        if self.0.len() < HEADER_LEN + TAG_LEN || !matches!(self.0[0], FORMAT_V1 | FORMAT_V2) {
            return Err(UnsealError::Malformed);
        }
        Ok(uuid::Uuid::from_slice(&self.0[1..17]).expect("16 bytes"))
    }

    /// Opens it with the operator's password: the RSA private key alone.
    pub fn open(&self, operator: uuid::Uuid, password: &str) -> Result<PrivateKey, UnsealError> {
        Ok(self.open_all(operator, password)?.private)
    }

    /// Opens it with the operator's password: every key it holds.
    pub fn open_all(&self, operator: uuid::Uuid, password: &str) -> Result<Unsealed, UnsealError> {
        let user_key = self.user_key_id()?;
        let b = self.0;
        let salt = &b[17..17 + SALT_LEN];
        let at = 17 + SALT_LEN;
        let cost =
            |i: usize| u32::from_be_bytes(b[at + 4 * i..at + 4 * i + 4].try_into().expect("4"));
        let (m, t, p) = (cost(0), cost(1), cost(2));
        // Refuse costs below the floor, so an altered header cannot make guessing cheap.
        if m < M_COST || t < T_COST || p < P_COST || m > 1 << 22 || t > 64 || p > 16 {
            return Err(UnsealError::Malformed);
        }
        let kek = derive(password, salt, m, t, p)?;
        let nonce: [u8; NONCE_LEN] = b[at + 12..HEADER_LEN].try_into().expect("12 bytes");
        let format = b[0];
        let plain = aead::open(
            &kek,
            &nonce,
            &aad(format, operator, user_key),
            &b[HEADER_LEN..],
        )
        .map_err(|_| UnsealError::WrongPasswordOrTampered)?;
        if format == FORMAT_V1 {
            return Ok(Unsealed {
                private: PrivateKey::from_pkcs8_der(&plain).map_err(|_| UnsealError::Malformed)?,
                signing: None,
            });
        }
        let len = plain
            .get(..4)
            .map(|l| u32::from_be_bytes(l.try_into().expect("4 bytes")) as usize)
            .ok_or(UnsealError::Malformed)?;
        if plain.len() != 4 + len + SEED_LEN {
            return Err(UnsealError::Malformed);
        }
        let mut seed = Zeroizing::new([0u8; SEED_LEN]);
        seed.copy_from_slice(&plain[4 + len..]);
        let signing = TokenSigningKey::from_seed(&seed);
        Ok(Unsealed {
            private: PrivateKey::from_pkcs8_der(&plain[4..4 + len])
                .map_err(|_| UnsealError::Malformed)?,
            signing: Some(signing),
        })
    }
}

/// Seals `key` and `signing` (of `user_key` of `operator`) with `password`, as version 2.
pub fn seal(
    operator: uuid::Uuid,
    user_key: uuid::Uuid,
    key: &PrivateKey,
    signing: &TokenSigningKey,
    password: &str,
) -> Zeroizing<Vec<u8>> {
    let mut salt = [0u8; SALT_LEN];
    rand::rngs::OsRng.fill_bytes(&mut salt);
    let kek = derive(password, &salt, M_COST, T_COST, P_COST).expect("fixed costs are valid");
    let nonce = aead::random_nonce();
    let der = key.to_pkcs8_der();
    let mut plain = Zeroizing::new(Vec::with_capacity(4 + der.len() + SEED_LEN));
    plain.extend_from_slice(&(der.len() as u32).to_be_bytes());
    plain.extend_from_slice(&der);
    plain.extend_from_slice(signing.seed());
    let mut out = Zeroizing::new(Vec::with_capacity(HEADER_LEN + plain.len() + TAG_LEN));
    out.push(FORMAT_V2);
    out.extend_from_slice(user_key.as_bytes());
    out.extend_from_slice(&salt);
    for c in [M_COST, T_COST, P_COST] {
        out.extend_from_slice(&c.to_be_bytes());
    }
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&aead::seal(
        &kek,
        &nonce,
        &aad(FORMAT_V2, operator, user_key),
        &plain,
    ));
    out
}

fn aad(format: u8, operator: uuid::Uuid, user_key: uuid::Uuid) -> Vec<u8> {
    let mut a = if format == FORMAT_V1 {
        b"vigil-sealed-private-key-v1".to_vec()
    } else {
        b"vigil-sealed-private-keys-v2".to_vec()
    };
    a.extend_from_slice(operator.as_bytes());
    a.extend_from_slice(user_key.as_bytes());
    a
}

fn derive(
    password: &str,
    salt: &[u8],
    m: u32,
    t: u32,
    p: u32,
) -> Result<SymmetricKey, UnsealError> {
    let params = Params::new(m, t, p, Some(32)).map_err(|_| UnsealError::Malformed)?;
    // The same NFC form that set the password opens what it sealed.
    let password = crate::identity::normalize_password(password);
    let mut out = Zeroizing::new([0u8; 32]);
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password_into(password.as_bytes(), salt, out.as_mut())
        .map_err(|_| UnsealError::Malformed)?;
    Ok(SymmetricKey::from_slice(out.as_ref()).expect("32 bytes"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::KeyBits;

    #[test]
    fn opens_only_with_the_password_for_its_owner() {
        let key = PrivateKey::generate(KeyBits::B2048).unwrap();
        let signing = TokenSigningKey::generate();
        let (op, uk) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
        let sealed = seal(op, uk, &key, &signing, "correct horse battery staple");
        let s = SealedKey(&sealed);
        assert_eq!(s.user_key_id().unwrap(), uk);
        let opened = s.open_all(op, "correct horse battery staple").unwrap();
        assert_eq!(opened.private.public_key(), key.public_key());
        assert_eq!(
            opened.signing.unwrap().public_key(),
            signing.public_key(),
            "the token-signing key comes back with the key pair"
        );
        assert_eq!(
            s.open(op, "wrong horse battery staple").unwrap_err(),
            UnsealError::WrongPasswordOrTampered
        );
        assert_eq!(
            s.open(uuid::Uuid::new_v4(), "correct horse battery staple")
                .unwrap_err(),
            UnsealError::WrongPasswordOrTampered
        );
        let mut weak = sealed.to_vec();
        weak[33..37].copy_from_slice(&8u32.to_be_bytes()); // m_cost lowered to make guessing cheap
        assert_eq!(
            SealedKey(&weak)
                .open(op, "correct horse battery staple")
                .unwrap_err(),
            UnsealError::Malformed
        );
        let mut bent = sealed.to_vec();
        let last = bent.len() - 1;
        bent[last] ^= 1;
        assert_eq!(
            SealedKey(&bent)
                .open(op, "correct horse battery staple")
                .unwrap_err(),
            UnsealError::WrongPasswordOrTampered
        );
        // A version 2 item relabelled as version 1 does not open.
        let mut relabelled = sealed.to_vec();
        relabelled[0] = FORMAT_V1;
        assert!(SealedKey(&relabelled)
            .open(op, "correct horse battery staple")
            .is_err());
    }

    #[test]
    fn version_1_items_still_open_without_a_signing_key() {
        let key = PrivateKey::generate(KeyBits::B2048).unwrap();
        let (op, uk) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
        let pw = "correct horse battery staple";
        let mut salt = [0u8; SALT_LEN];
        rand::rngs::OsRng.fill_bytes(&mut salt);
        let kek = derive(pw, &salt, M_COST, T_COST, P_COST).unwrap();
        let nonce = aead::random_nonce();
        let mut v1 = vec![FORMAT_V1];
        v1.extend_from_slice(uk.as_bytes());
        v1.extend_from_slice(&salt);
        for c in [M_COST, T_COST, P_COST] {
            v1.extend_from_slice(&c.to_be_bytes());
        }
        v1.extend_from_slice(&nonce);
        v1.extend_from_slice(&aead::seal(
            &kek,
            &nonce,
            &aad(FORMAT_V1, op, uk),
            &key.to_pkcs8_der(),
        ));
        let opened = SealedKey(&v1).open_all(op, pw).unwrap();
        assert_eq!(opened.private.public_key(), key.public_key());
        assert!(opened.signing.is_none());
    }
}
