//! The retired shared `totp` data key. Before per-operator sealing, TOTP secrets were sealed
//! with it, so any holder could read every operator's secret. It opens each such secret once
//! more, at its owner's next sign-in with a correct code (see [`crate::mfa`]), and is deleted
//! with its grants as soon as no secret needs it. The `jwt` purpose needed no such path: its
//! key only signed tokens, which expire, and the migration that ended it deleted it.

use zeroize::Zeroizing;

use super::{repo, KeyRing};
use crate::crypto::field::{self, Place};
use crate::crypto::SymmetricKey;
use crate::store::{Store, StoreError};

/// The stored name of the retired purpose.
const TOTP: &str = "totp";

/// Opens a secret sealed with the retired `totp` key, if `ring`'s key pair still holds a grant of
/// the version that sealed it; `None` if it does not, or the secret does not open.
pub(crate) async fn open_totp_secret(
    store: &Store,
    ring: &KeyRing,
    place: &Place<'_>,
    sealed: &[u8],
) -> Result<Option<Zeroizing<Vec<u8>>>, StoreError> {
    let Ok(version) = field::key_version(sealed) else {
        return Ok(None);
    };
    let Some(wrapped) = repo::grant_of(store, TOTP, version.0, &ring.user_key_id).await? else {
        return Ok(None);
    };
    let label = format!("vigil-data-key-v1:{TOTP}:{}", version.0);
    let Some(key) = ring
        .private
        .decrypt(&label, &wrapped)
        .ok()
        .and_then(|raw| SymmetricKey::from_slice(&raw))
    else {
        return Ok(None);
    };
    Ok(field::open(&key, place, sealed).ok())
}

/// Deletes every version of the retired `totp` key, and its grants, once no TOTP secret is
/// sealed with it any more.
pub(crate) async fn retire_totp_keys_if_unused(store: &Store) -> Result<(), StoreError> {
    let mut tx = store.begin().await?;
    repo::drop_purpose_unless_used(&mut tx, TOTP).await?;
    tx.commit().await?;
    Ok(())
}
