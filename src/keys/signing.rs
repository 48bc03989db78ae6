//! Token-signing keys: one Ed25519 key per operator key pair (so per machine), sealed in the
//! keystore together with the RSA private key ([`super::sealed`]), its public half stored beside
//! the RSA public key in `user_keys`. An access token names the key pair in its `kid`;
//! verification looks the public key up there and checks that it belongs to the token's
//! subject and is not retired, so a console can sign only for its own operator.

use super::keystore::Keystore;
use super::{private_key_entry, repo, sealed, KeyError};
use crate::crypto::signing::PUBLIC_KEY_LEN;
use crate::crypto::{PrivateKey, TokenSigningKey};
use crate::identity::UserId;
use crate::store::{Store, StoreError};

/// A key pair's token-verification key, as stored.
#[derive(Debug, Clone)]
pub struct TokenVerifyingKey {
    /// The account the key pair belongs to.
    pub owner: String,
    /// The Ed25519 public key.
    pub public: [u8; PUBLIC_KEY_LEN],
    /// Whether the key pair was retired (a password reset or a revocation).
    pub retired: bool,
}

/// The token-verification key of key pair `kid`, if it has one.
pub async fn verifying_key(
    store: &Store,
    kid: &str,
) -> Result<Option<TokenVerifyingKey>, StoreError> {
    let Some((owner, public, retired)) = repo::signing_key(store, kid).await? else {
        return Ok(None);
    };
    Ok(public
        .and_then(|p| <[u8; PUBLIC_KEY_LEN]>::try_from(p.as_slice()).ok())
        .map(|public| TokenVerifyingKey {
            owner,
            public,
            retired,
        }))
}

/// At unlocking: the key pair's token-signing key as the keystore item holds it, checked
/// against the stored public key. An item sealed before token-signing keys existed gets one now:
/// its public half is stored and the item is re-sealed with both keys.
pub(super) async fn settle(
    store: &Store,
    keystore: &dyn Keystore,
    operator: UserId,
    user_key_id: &str,
    private: &PrivateKey,
    unsealed: Option<TokenSigningKey>,
    password: &str,
) -> Result<TokenSigningKey, KeyError> {
    let stored = repo::signing_key(store, user_key_id)
        .await?
        .and_then(|(_, public, _)| public);
    if let Some(key) = unsealed {
        return match stored {
            Some(p) if p.as_slice() == key.public_key() => Ok(key),
            Some(_) => Err(KeyError::KeyPairMismatch),
            None => {
                repo::set_signing_key(store.pool(), user_key_id, key.public_key()).await?;
                Ok(key)
            }
        };
    }
    let key = TokenSigningKey::generate();
    let user_key = uuid::Uuid::parse_str(user_key_id).map_err(|_| KeyError::KeyPairMismatch)?;
    let item = {
        let (pw, der, key) = (password.to_owned(), private.to_pkcs8_der(), key.clone());
        let op = operator.as_uuid();
        tokio::task::spawn_blocking(move || {
            let private = PrivateKey::from_pkcs8_der(&der).expect("own key parses");
            sealed::seal(op, user_key, &private, &key, &pw)
        })
        .await
        .expect("sealing task panicked")
    };
    repo::set_signing_key(store.pool(), user_key_id, key.public_key()).await?;
    keystore.put(operator.as_uuid(), &private_key_entry(), &item)?;
    Ok(key)
}
