//! The platform's users' access tokens, as a data subject hands one over to prove who they are.
//!
//! The platform signs them with its own private key; Vigil holds only the public keys, read from
//! the PEM or JWKS file that `[platform] token_keys` names, and never a secret that could sign
//! one. Accepted algorithms are RS256 (2048-bit keys or more), ES256 and EdDSA (Ed25519), each
//! only with a key of its own kind; symmetric keys are refused in the file, and `none` and HMAC
//! in tokens. A token carries the same claims as an operator's ([`Claims`]) with the configured
//! issuer and audience; after its signature, time claims and lifetime, the same database checks
//! apply: `jti` not revoked, session live, account active with exactly those roles, no step-up
//! owed.

use std::path::{Path, PathBuf};

use base64::Engine;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, JwkSet, KeyAlgorithm};
use jsonwebtoken::{Algorithm, DecodingKey};
use rsa::pkcs8::spki::{self, ObjectIdentifier};

use super::tokens::{self, Claims, TokenError};
use crate::config::PlatformConfig;
use crate::store::{Store, Timestamp};

const RSA_ENCRYPTION: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const PRIME256V1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
const ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");

/// Smallest RSA modulus accepted, in bits.
const MIN_RSA_BITS: usize = 2048;

/// One of the platform's public keys.
struct PlatformKey {
    kid: Option<String>,
    alg: Algorithm,
    key: DecodingKey,
}

impl std::fmt::Debug for PlatformKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PlatformKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

/// The platform's token-verification keys and what its tokens must say.
pub struct PlatformTokenKeys {
    keys: Vec<PlatformKey>,
    issuer: String,
    audience: String,
    max_lifetime: i64,
}

impl std::fmt::Debug for PlatformTokenKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PlatformTokenKeys")
            .field("keys", &self.keys.len())
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .finish()
    }
}

/// Why the platform's keys could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum PlatformKeysError {
    /// No key file is configured.
    #[error(
        "the platform's token keys are not configured: set `token_keys` under [platform] in the \
         config file to the platform's public key (a PEM file or a JWKS file)"
    )]
    NotConfigured,
    /// The file could not be read.
    #[error("cannot read the platform's token keys at {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file holds no key that can be used, or one that must not be.
    #[error("the platform's token keys at {path} cannot be used: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

impl PlatformTokenKeys {
    /// Loads the keys the configuration names.
    pub fn load(config: &PlatformConfig) -> Result<Self, PlatformKeysError> {
        let path = config
            .token_keys
            .as_deref()
            .ok_or(PlatformKeysError::NotConfigured)?;
        Self::load_file(path, config)
    }

    /// Loads the keys in `path` (PEM or JWKS) with `config`'s issuer, audience and lifetime.
    pub fn load_file(path: &Path, config: &PlatformConfig) -> Result<Self, PlatformKeysError> {
        let text = std::fs::read_to_string(path).map_err(|source| PlatformKeysError::Read {
            path: path.to_owned(),
            source,
        })?;
        let keys = parse_keys(&text).map_err(|message| PlatformKeysError::Invalid {
            path: path.to_owned(),
            message,
        })?;
        Ok(Self {
            keys,
            issuer: config.token_issuer.clone(),
            audience: config.token_audience.clone(),
            max_lifetime: i64::try_from(config.token_max_lifetime_secs).unwrap_or(i64::MAX),
        })
    }

    /// How many keys were loaded.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether none were (never, once loaded).
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

/// Keys from a JWKS document (`{"keys": [...]}`) or from PEM `PUBLIC KEY` (SPKI) or
/// `RSA PUBLIC KEY` (PKCS#1) blocks.
fn parse_keys(text: &str) -> Result<Vec<PlatformKey>, String> {
    let keys = if text.trim_start().starts_with('{') {
        let set: JwkSet =
            serde_json::from_str(text).map_err(|e| format!("not a JWKS document: {e}"))?;
        set.keys
            .iter()
            .filter_map(|k| from_jwk(k).transpose())
            .collect::<Result<Vec<_>, _>>()?
    } else {
        let mut keys = Vec::new();
        for (label, der) in pem_blocks(text)? {
            keys.push(match label.as_str() {
                "PUBLIC KEY" => from_spki(&der)?,
                "RSA PUBLIC KEY" => rsa_key(&der)?,
                other => return Err(format!("a PEM block of {other} is not a public key")),
            });
        }
        keys
    };
    if keys.is_empty() {
        return Err("no public key in the file".into());
    }
    Ok(keys)
}

fn pem_blocks(text: &str) -> Result<Vec<(String, Vec<u8>)>, String> {
    let mut out = Vec::new();
    let mut lines = text.lines().map(str::trim);
    while let Some(line) = lines.next() {
        let Some(label) = line
            .strip_prefix("-----BEGIN ")
            .and_then(|l| l.strip_suffix("-----"))
        else {
            continue;
        };
        let end = format!("-----END {label}-----");
        let mut body = String::new();
        loop {
            match lines.next() {
                Some(l) if l == end => break,
                Some(l) => body.push_str(l),
                None => return Err(format!("the PEM block {label} has no end line")),
            }
        }
        let der = base64::engine::general_purpose::STANDARD
            .decode(body)
            .map_err(|_| format!("the PEM block {label} is not base64"))?;
        out.push((label.to_owned(), der));
    }
    Ok(out)
}

fn rsa_key(pkcs1: &[u8]) -> Result<PlatformKey, String> {
    let bits =
        crate::crypto::rsa::pkcs1_public_key_bits(pkcs1).map_err(|_| "a malformed RSA key")?;
    if bits < MIN_RSA_BITS {
        return Err(format!("an RSA key shorter than {MIN_RSA_BITS} bits"));
    }
    Ok(PlatformKey {
        kid: None,
        alg: Algorithm::RS256,
        key: DecodingKey::from_rsa_der(pkcs1),
    })
}

fn from_spki(der: &[u8]) -> Result<PlatformKey, String> {
    let info =
        spki::SubjectPublicKeyInfoRef::try_from(der).map_err(|_| "a malformed public key")?;
    let bits = info
        .subject_public_key
        .as_bytes()
        .ok_or("a malformed public key")?;
    let oid = info.algorithm.oid;
    if oid == RSA_ENCRYPTION {
        rsa_key(bits)
    } else if oid == EC_PUBLIC_KEY {
        if info.algorithm.parameters_oid().ok() != Some(PRIME256V1) {
            return Err("an EC key not on P-256 (only ES256 is accepted)".into());
        }
        if bits.len() != 65 || bits[0] != 4 {
            return Err("a malformed P-256 key".into());
        }
        Ok(PlatformKey {
            kid: None,
            alg: Algorithm::ES256,
            key: DecodingKey::from_ec_der(bits),
        })
    } else if oid == ED25519 {
        ed25519_key(None, bits)
    } else {
        Err(format!(
            "a key of algorithm {oid}, not RSA, P-256 or Ed25519"
        ))
    }
}

fn ed25519_key(kid: Option<String>, bits: &[u8]) -> Result<PlatformKey, String> {
    let raw: [u8; 32] = bits.try_into().map_err(|_| "a malformed Ed25519 key")?;
    ed25519_dalek::VerifyingKey::from_bytes(&raw).map_err(|_| "a malformed Ed25519 key")?;
    Ok(PlatformKey {
        kid,
        alg: Algorithm::EdDSA,
        key: DecodingKey::from_ed_der(&raw),
    })
}

/// A JWK as a platform key; `None` for keys marked for encryption only.
fn from_jwk(jwk: &Jwk) -> Result<Option<PlatformKey>, String> {
    use jsonwebtoken::jwk::PublicKeyUse;
    if matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption)) {
        return Ok(None);
    }
    let kid = jwk.common.key_id.clone();
    let named = |what: &str| match &kid {
        Some(k) => format!("{what} (kid {k})"),
        None => what.to_owned(),
    };
    let (alg, key) = match &jwk.algorithm {
        AlgorithmParameters::RSA(p) => {
            let n = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(p.n.trim_end_matches('='))
                .map_err(|_| named("a malformed RSA key"))?;
            if n.iter().skip_while(|b| **b == 0).count() * 8 < MIN_RSA_BITS {
                return Err(named(&format!(
                    "an RSA key shorter than {MIN_RSA_BITS} bits"
                )));
            }
            (
                Algorithm::RS256,
                DecodingKey::from_rsa_components(&p.n, &p.e)
                    .map_err(|_| named("a malformed RSA key"))?,
            )
        }
        AlgorithmParameters::EllipticCurve(p) if p.curve == EllipticCurve::P256 => (
            Algorithm::ES256,
            DecodingKey::from_ec_components(&p.x, &p.y)
                .map_err(|_| named("a malformed P-256 key"))?,
        ),
        AlgorithmParameters::EllipticCurve(_) => {
            return Err(named("an EC key not on P-256 (only ES256 is accepted)"))
        }
        AlgorithmParameters::OctetKeyPair(p) if p.curve == EllipticCurve::Ed25519 => {
            let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(p.x.trim_end_matches('='))
                .map_err(|_| named("a malformed Ed25519 key"))?;
            let k = ed25519_key(kid.clone(), &raw)?;
            (k.alg, k.key)
        }
        AlgorithmParameters::OctetKeyPair(_) => {
            return Err(named("an OKP key not on Ed25519"));
        }
        AlgorithmParameters::OctetKey(_) => {
            return Err(named(
                "a symmetric key: Vigil verifies platform tokens only with public keys",
            ))
        }
        _ => return Err(named("a key of an unknown type")),
    };
    // A key may name its algorithm; it must then be the one its kind is accepted with.
    let declared = jwk.common.key_algorithm.map(|a| match a {
        KeyAlgorithm::RS256 => Some(Algorithm::RS256),
        KeyAlgorithm::ES256 => Some(Algorithm::ES256),
        KeyAlgorithm::EdDSA => Some(Algorithm::EdDSA),
        _ => None,
    });
    if let Some(d) = declared {
        if d != Some(alg) {
            return Err(named(
                "a key whose algorithm is not RS256, ES256 or EdDSA for its kind",
            ));
        }
    }
    Ok(Some(PlatformKey { kid, alg, key }))
}

/// Checks a platform user's access token completely; see the module documentation.
pub async fn verify(
    store: &Store,
    keys: &PlatformTokenKeys,
    token: &str,
) -> Result<Claims, TokenError> {
    verify_at(store, keys, token, Timestamp::now()).await
}

/// [`verify`] at a given time (tests step the clock).
pub async fn verify_at(
    store: &Store,
    keys: &PlatformTokenKeys,
    token: &str,
    now: Timestamp,
) -> Result<Claims, TokenError> {
    let token = token.trim();
    let header = tokens::read_header(token)?;
    let alg = match header.alg.as_str() {
        "RS256" => Algorithm::RS256,
        "ES256" => Algorithm::ES256,
        "EdDSA" => Algorithm::EdDSA,
        _ => return Err(TokenError::Algorithm),
    };
    let named = |k: &&PlatformKey| match (&header.kid, &k.kid) {
        (Some(want), Some(have)) => want == have,
        _ => true,
    };
    let candidates: Vec<&PlatformKey> = keys.keys.iter().filter(named).collect();
    if candidates.is_empty() {
        return Err(TokenError::UnknownKey);
    }
    if token.split('.').count() == 3 && !tokens::signature_is_base64(token) {
        return Err(TokenError::Signature);
    }
    let validation = tokens::validation(alg, &keys.issuer, &keys.audience);
    let mut claims = None;
    let mut refusal = TokenError::Algorithm;
    // Only keys of the token's own algorithm are tried, so a key is never used with another.
    for k in candidates.iter().filter(|k| k.alg == alg) {
        match jsonwebtoken::decode::<Claims>(token, &k.key, &validation) {
            Ok(data) => {
                claims = Some(data.claims);
                break;
            }
            Err(e) => refusal = tokens::decode_error(e),
        }
    }
    let c = claims.ok_or(refusal)?;
    tokens::check_times(&c, now)?;
    if c.exp - c.iat > keys.max_lifetime {
        return Err(TokenError::LifetimeTooLong);
    }
    tokens::check_account(store, &c, now).await?;
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symmetric_and_short_keys_are_refused_in_the_file() {
        let oct = r#"{"keys":[{"kty":"oct","k":"c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0","kid":"h"}]}"#;
        assert!(parse_keys(oct).unwrap_err().contains("symmetric"));
        let small = r#"{"keys":[{"kty":"RSA","n":"AQAB","e":"AQAB"}]}"#;
        assert!(parse_keys(small).unwrap_err().contains("shorter"));
        assert!(parse_keys("").unwrap_err().contains("no public key"));
        assert!(parse_keys("-----BEGIN PUBLIC KEY-----\nAAAA\n").is_err());
    }
}
