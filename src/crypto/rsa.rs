//! RSA key pairs and RSA-OAEP (SHA-256, MGF1-SHA-256): the only place Vigil touches RSA.
//!
//! The `rsa` crate is 0.10: modular exponentiation over `crypto-bigint` in constant time (the
//! cause of RUSTSEC-2023-0071 in 0.9 was the variable-time `num-bigint-dig`), private-key
//! operations blinded with the OS random source. Vigil uses private keys only on the operator's
//! own machine, for that operator's own work, never in answer to input from a network (see
//! SECURITY.md). Keeping RSA behind this module means the backend can be swapped without
//! touching the rest of the core.

use getrandom::SysRng;
use rsa::pkcs1::DecodeRsaPublicKey;
use rsa::pkcs8::{
    DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey, LineEnding,
};
use rsa::sha2::{Digest, Sha256};
use rsa::traits::PublicKeyParts;
use rsa::{BoxedUint, Oaep, PrivateKey as RsaPrivateKey, PublicKey as RsaPublicKey};
use subtle::{Choice, ConditionallySelectable, ConstantTimeEq};
use zeroize::{Zeroize, Zeroizing};

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

    /// RSA-OAEP-SHA256 encryption of a short message (a key), under `label` (any bytes; Vigil's
    /// own labels are text).
    pub fn encrypt(
        &self,
        label: &(impl AsRef<[u8]> + ?Sized),
        msg: &[u8],
    ) -> Result<Vec<u8>, RsaError> {
        self.key
            .encrypt(&mut SysRng, oaep(label.as_ref()), msg)
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
        let key = RsaPrivateKey::new(&mut SysRng, bits.bits())
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

    /// RSA-OAEP-SHA256 decryption under `label` (any bytes, as RFC 8017 §7.1.2 allows), blinded
    /// with the OS random source. Every way a ciphertext can be wrong gives the same error, and
    /// the padding checks run in constant time (no padding oracle, RFC 8017 §7.1.2 note).
    pub fn decrypt(
        &self,
        label: &(impl AsRef<[u8]> + ?Sized),
        ciphertext: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, RsaError> {
        // RFC 8017 §7.1.2 step 1b: the ciphertext is exactly k octets (public information).
        let k = self.key.size();
        if ciphertext.len() != k {
            return Err(RsaError::DecryptFailed);
        }
        let c = BoxedUint::from_be_slice(ciphertext, self.key.n_bits_precision())
            .map_err(|_| RsaError::DecryptFailed)?;
        // Step 2: m = c^d mod n (the crate refuses c >= n, blinds, and checks m^e = c).
        let mut m = rsa::hazmat::rsa_decrypt_and_check(&self.key, Some(&mut SysRng), &c)
            .map_err(|_| RsaError::DecryptFailed)?;
        let bytes = Zeroizing::new(m.to_be_bytes());
        m.zeroize();
        // The integer's storage may be wider than k octets (limb-aligned); m < n fits in k.
        let em = &bytes[bytes.len().saturating_sub(k)..];
        oaep_decode(em, label.as_ref()).ok_or(RsaError::DecryptFailed)
    }
}

/// Length of a SHA-256 output, `hLen` in RFC 8017.
const H_LEN: usize = 32;

/// EME-OAEP decoding (RFC 8017 §7.1.2 step 3) with SHA-256 and MGF1-SHA-256. All checks are
/// made in constant time and combined before the one branch: Y is zero, lHash' equals lHash,
/// and DB is lHash' || zero or more 0x00 || 0x01 || M. (`rsa` 0.10 does not check Y.)
fn oaep_decode(em: &[u8], label: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
    let (y, rest) = em.split_first()?;
    if rest.len() < 2 * H_LEN + 1 {
        return None;
    }
    let (masked_seed, masked_db) = rest.split_at(H_LEN);
    let mut seed = Zeroizing::new(masked_seed.to_vec());
    mgf1_xor(&mut seed, masked_db);
    let mut db = Zeroizing::new(masked_db.to_vec());
    mgf1_xor(&mut db, &seed);
    let l_hash = Sha256::digest(label);

    let mut good = y.ct_eq(&0) & db[..H_LEN].ct_eq(&l_hash[..]);
    let mut looking = Choice::from(1);
    let mut index = 0u32;
    for (i, b) in db[H_LEN..].iter().enumerate() {
        let is_zero = b.ct_eq(&0);
        let is_one = b.ct_eq(&1);
        index.conditional_assign(&(i as u32), looking & is_one);
        looking &= !is_one;
        // Before the 0x01 separator every octet is zero.
        good &= !(looking & !is_zero);
    }
    good &= !looking;
    if !bool::from(good) {
        return None;
    }
    Some(Zeroizing::new(db[H_LEN + index as usize + 1..].to_vec()))
}

/// XORs `out` with MGF1-SHA-256(`seed`, `out.len()`) (RFC 8017 appendix B.2.1).
fn mgf1_xor(out: &mut [u8], seed: &[u8]) {
    for (counter, chunk) in out.chunks_mut(H_LEN).enumerate() {
        let mask = Sha256::new()
            .chain_update(seed)
            .chain_update((counter as u32).to_be_bytes())
            .finalize();
        for (o, m) in chunk.iter_mut().zip(mask.iter()) {
            *o ^= m;
        }
    }
}

/// OAEP with SHA-256 for the label hash and for MGF1, as every key wrap in Vigil uses.
fn oaep(label: &[u8]) -> Oaep<Sha256> {
    Oaep::<Sha256>::new_with_label(label)
}

/// The modulus size in bits of a PKCS#1 `RSAPublicKey` (DER), for callers that hand the key to
/// another library (a platform's token keys) but must check its size first.
pub fn pkcs1_public_key_bits(der: &[u8]) -> Result<usize, RsaError> {
    let key = RsaPublicKey::from_pkcs1_der(der)
        .map_err(|_| RsaError::InvalidKey("not a PKCS#1 RSA public key"))?;
    Ok(key.size() * 8)
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

    /// RFC 8017 §7.1.2 step 3g: an encoded message whose first octet is not zero is refused,
    /// although the rest of it decodes (the `rsa` crate's own OAEP decoding would accept it).
    #[test]
    fn an_encoded_message_with_a_nonzero_first_octet_is_refused() {
        let sk = PrivateKey::generate(KeyBits::B2048).unwrap();
        let ct = sk.public_key().encrypt("vigil-test", b"key").unwrap();
        let c = BoxedUint::from_be_slice(&ct, sk.key.n_bits_precision()).unwrap();
        let m = rsa::hazmat::rsa_decrypt_and_check(&sk.key, Some(&mut SysRng), &c).unwrap();
        let mut em = m.to_be_bytes().to_vec();
        let k = sk.key.size();
        let at = em.len() - k;
        assert_eq!(em[at], 0);
        let reencrypt = |em: &[u8]| {
            let m = BoxedUint::from_be_slice(em, sk.key.n_bits_precision()).unwrap();
            let c = rsa::hazmat::rsa_encrypt(&sk.key, &m).unwrap().to_be_bytes();
            c[c.len() - k..].to_vec()
        };
        assert_eq!(
            sk.decrypt("vigil-test", &reencrypt(&em))
                .unwrap()
                .as_slice(),
            b"key"
        );
        em[at] = 1;
        assert_eq!(
            sk.decrypt("vigil-test", &reencrypt(&em)).unwrap_err(),
            RsaError::DecryptFailed
        );
        // Wrong lengths are refused the same way.
        assert_eq!(
            sk.decrypt("vigil-test", &ct[1..]).unwrap_err(),
            RsaError::DecryptFailed
        );
    }

    #[test]
    fn key_sizes_are_checked() {
        assert_eq!(KeyBits::try_from(3072), Ok(KeyBits::B3072));
        assert!(KeyBits::try_from(1024).is_err());
        assert!(PublicKey::from_spki_der(b"not a key").is_err());
    }
}
