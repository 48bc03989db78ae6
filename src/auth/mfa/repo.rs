//! SQL of TOTP secrets and backup codes.

use sqlx::Row;

use crate::auth::UserId;
use crate::store::{flag, Store, StoreError, Timestamp, Tx};

pub(super) async fn mfa_enabled(store: &Store, user: UserId) -> Result<bool, StoreError> {
    let row = sqlx::query("SELECT mfa_enabled FROM users WHERE id = $1")
        .bind(user.to_string())
        .fetch_optional(store.pool())
        .await?;
    Ok(match row {
        Some(r) => flag(&r, 0)?,
        None => false,
    })
}

/// Stores a new, unconfirmed secret sealed with its owner's credential key (replacing an
/// unconfirmed one). `key_version` is 0: no data key made it.
pub(super) async fn put_secret(
    tx: &mut Tx,
    user: UserId,
    sealed: &[u8],
    now: Timestamp,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO mfa_secrets (user_id, secret_enc, key_version, sealed_with, created_at) \
         VALUES ($1, $2, 0, 'credential_key', $3) ON CONFLICT (user_id) DO UPDATE SET \
         secret_enc = excluded.secret_enc, key_version = 0, sealed_with = 'credential_key', \
         created_at = excluded.created_at, confirmed_at = NULL, last_used_step = NULL",
    )
    .bind(user.to_string())
    .bind(sealed)
    .bind(now.micros())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The sealed secret and how it is sealed (`credential_key` or `totp_data_key`).
pub(super) async fn secret(
    store: &Store,
    user: UserId,
) -> Result<Option<(Vec<u8>, String)>, StoreError> {
    let row = sqlx::query("SELECT secret_enc, sealed_with FROM mfa_secrets WHERE user_id = $1")
        .bind(user.to_string())
        .fetch_optional(store.pool())
        .await?;
    Ok(match row {
        Some(r) => Some((r.try_get(0)?, r.try_get(1)?)),
        None => None,
    })
}

/// Replaces a secret sealed with the retired `totp` key by the same secret sealed with its
/// owner's credential key, if it is still the one read (`old`).
pub(super) async fn reseal_secret(
    tx: &mut Tx,
    user: UserId,
    old: &[u8],
    sealed: &[u8],
) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "UPDATE mfa_secrets SET secret_enc = $1, key_version = 0, sealed_with = 'credential_key' \
         WHERE user_id = $2 AND secret_enc = $3 AND sealed_with = 'totp_data_key'",
    )
    .bind(sealed)
    .bind(user.to_string())
    .bind(old)
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Records `step` as used if it is later than the last used one; false if it is not (replay).
pub(super) async fn use_step(store: &Store, user: UserId, step: u64) -> Result<bool, StoreError> {
    let step = i64::try_from(step).unwrap_or(i64::MAX);
    let done = sqlx::query(
        "UPDATE mfa_secrets SET last_used_step = $1 \
         WHERE user_id = $2 AND (last_used_step IS NULL OR last_used_step < $1)",
    )
    .bind(step)
    .bind(user.to_string())
    .execute(store.pool())
    .await?;
    Ok(done.rows_affected() == 1)
}

pub(super) async fn enable(tx: &mut Tx, user: UserId, now: Timestamp) -> Result<(), StoreError> {
    sqlx::query("UPDATE mfa_secrets SET confirmed_at = $1 WHERE user_id = $2")
        .bind(now.micros())
        .bind(user.to_string())
        .execute(&mut **tx)
        .await?;
    sqlx::query("UPDATE users SET mfa_enabled = $1, updated_at = $2 WHERE id = $3")
        .bind(true)
        .bind(now.micros())
        .bind(user.to_string())
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Deletes the secret and backup codes and turns MFA off; whether there was anything to remove.
pub(super) async fn disable(tx: &mut Tx, user: UserId) -> Result<bool, StoreError> {
    let secrets = sqlx::query("SELECT COUNT(*) FROM mfa_secrets WHERE user_id = $1")
        .bind(user.to_string())
        .fetch_one(&mut **tx)
        .await?
        .try_get::<i64, _>(0)?;
    let was_on = sqlx::query("SELECT mfa_enabled FROM users WHERE id = $1")
        .bind(user.to_string())
        .fetch_optional(&mut **tx)
        .await?
        .map(|r| flag(&r, 0))
        .transpose()?
        .unwrap_or(false);
    for sql in [
        "DELETE FROM mfa_secrets WHERE user_id = $1",
        "DELETE FROM backup_codes WHERE user_id = $1",
    ] {
        sqlx::query(sql)
            .bind(user.to_string())
            .execute(&mut **tx)
            .await?;
    }
    sqlx::query("UPDATE users SET mfa_enabled = $1 WHERE id = $2")
        .bind(false)
        .bind(user.to_string())
        .execute(&mut **tx)
        .await?;
    Ok(was_on || secrets > 0)
}

pub(super) async fn replace_backup_codes(
    tx: &mut Tx,
    user: UserId,
    hashes: &[String],
    now: Timestamp,
) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM backup_codes WHERE user_id = $1")
        .bind(user.to_string())
        .execute(&mut **tx)
        .await?;
    for h in hashes {
        sqlx::query(
            "INSERT INTO backup_codes (id, user_id, code_hash, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(uuid::Uuid::now_v7().to_string())
        .bind(user.to_string())
        .bind(h)
        .bind(now.micros())
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

/// Marks an unused backup code as used; false if there is none with that hash.
pub(super) async fn spend_backup_code(
    store: &Store,
    user: UserId,
    hash: &str,
    now: Timestamp,
) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "UPDATE backup_codes SET used_at = $1 \
         WHERE user_id = $2 AND code_hash = $3 AND used_at IS NULL",
    )
    .bind(now.micros())
    .bind(user.to_string())
    .bind(hash)
    .execute(store.pool())
    .await?;
    Ok(done.rows_affected() == 1)
}

pub(super) async fn backup_codes_left(store: &Store, user: UserId) -> Result<i64, StoreError> {
    Ok(
        sqlx::query("SELECT COUNT(*) FROM backup_codes WHERE user_id = $1 AND used_at IS NULL")
            .bind(user.to_string())
            .fetch_one(store.pool())
            .await?
            .try_get(0)?,
    )
}

pub(super) async fn operator_id(tx: &mut Tx, username: &str) -> Result<Option<UserId>, StoreError> {
    let id: Option<String> =
        sqlx::query("SELECT id FROM users WHERE username = $1 AND kind IN ('operator', 'service')")
            .bind(username)
            .fetch_optional(&mut **tx)
            .await?
            .map(|r| r.try_get(0))
            .transpose()?;
    Ok(id.as_deref().and_then(UserId::parse))
}
