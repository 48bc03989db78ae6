//! An operator's private key as kept in the keystore: sealed with a key derived from the
//! operator's password, so the keystore item alone opens nothing.
//!
//! Format (version 1): `0x01 | user key id (16) | salt (16) | m_cost, t_cost, p_cost (u32 each)
//! | nonce (12) | AES-256-GCM(PKCS#8 DER) | tag (16)`. The key is argon2id(password, salt) with
//! the stored costs; the associated data names the operator and the user key, so an item
//! copied to another operator's entry does not open.

use argon2::{Algorithm, Argon2, Params, Version};
use rand::RngCore;
use zeroize::Zeroizing;

use crate::crypto::aead::{self, NONCE_LEN, TAG_LEN};
use crate::crypto::{PrivateKey, SymmetricKey};

const FORMAT_V1: u8 = 1;
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

impl SealedKey<'_> {
    /// The `user_keys` row the sealed key belongs to.
    pub fn user_key_id(&self) -> Result<uuid::Uuid, UnsealError> {
        if self.0.len() < HEADER_LEN + TAG_LEN || self.0[0] != FORMAT_V1 {
            return Err(UnsealError::Malformed);
        }
        Ok(uuid::Uuid::from_slice(&self.0[1..17]).expect("16 bytes"))
    }

    /// Opens it with the operator's password.
    pub fn open(&self, operator: uuid::Uuid, password: &str) -> Result<PrivateKey, UnsealError> {
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
        let der = aead::open(&kek, &nonce, &aad(operator, user_key), &b[HEADER_LEN..])
            .map_err(|_| UnsealError::WrongPasswordOrTampered)?;
        PrivateKey::from_pkcs8_der(&der).map_err(|_| UnsealError::Malformed)
    }
}

/// Seals `key` (of `user_key` of `operator`) with `password`.
pub fn seal(
    operator: uuid::Uuid,
    user_key: uuid::Uuid,
    key: &PrivateKey,
    password: &str,
) -> Zeroizing<Vec<u8>> {
    let mut salt = [0u8; SALT_LEN];
    rand::rngs::OsRng.fill_bytes(&mut salt);
    let kek = derive(password, &salt, M_COST, T_COST, P_COST).expect("fixed costs are valid");
    let nonce = aead::random_nonce();
    let mut out = Zeroizing::new(Vec::with_capacity(HEADER_LEN + 1300));
    out.push(FORMAT_V1);
    out.extend_from_slice(user_key.as_bytes());
    out.extend_from_slice(&salt);
    for c in [M_COST, T_COST, P_COST] {
        out.extend_from_slice(&c.to_be_bytes());
    }
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&aead::seal(
        &kek,
        &nonce,
        &aad(operator, user_key),
        &key.to_pkcs8_der(),
    ));
    out
}

fn aad(operator: uuid::Uuid, user_key: uuid::Uuid) -> Vec<u8> {
    let mut a = b"vigil-sealed-private-key-v1".to_vec();
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
        let (op, uk) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
        let sealed = seal(op, uk, &key, "correct horse battery staple");
        let s = SealedKey(&sealed);
        assert_eq!(s.user_key_id().unwrap(), uk);
        let opened = s.open(op, "correct horse battery staple").unwrap();
        assert_eq!(opened.public_key(), key.public_key());
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
    }
}
