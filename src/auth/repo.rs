//! SQL of operator accounts.

use sqlx::Row;

use super::{UserId, Username};
use crate::rbac::Role;
use crate::store::{flag, Store, StoreError, Timestamp, Tx};

pub(super) struct OperatorRow {
    pub id: UserId,
    pub username: Username,
    pub status: String,
    pub mfa_enabled: bool,
    pub password_hash: String,
    pub roles: Vec<Role>,
}

pub(super) async fn find_operator(
    store: &Store,
    username: &Username,
) -> Result<Option<OperatorRow>, StoreError> {
    let row = sqlx::query(
        "SELECT u.id, u.status, u.mfa_enabled, c.password_hash FROM users u \
         JOIN credentials c ON c.user_id = u.id \
         WHERE u.username = $1 AND u.kind IN ('operator', 'service')",
    )
    .bind(username.as_str())
    .fetch_optional(store.pool())
    .await?;
    let Some(row) = row else { return Ok(None) };
    let id_text: String = row.try_get(0)?;
    let id = UserId::parse(&id_text)
        .ok_or_else(|| StoreError::Query(sqlx::Error::Decode("users.id is not a UUID".into())))?;
    let roles = sqlx::query("SELECT role FROM user_roles WHERE user_id = $1 ORDER BY role")
        .bind(&id_text)
        .fetch_all(store.pool())
        .await?
        .iter()
        .filter_map(|r| r.try_get::<String, _>(0).ok())
        .filter_map(|r| Role::parse(&r))
        .collect();
    Ok(Some(OperatorRow {
        id,
        username: username.clone(),
        status: row.try_get(1)?,
        mfa_enabled: flag(&row, 2)?,
        password_hash: row.try_get(3)?,
        roles,
    }))
}

pub(super) async fn operator_count(tx: &mut Tx) -> Result<i64, StoreError> {
    let n: i64 = sqlx::query("SELECT COUNT(*) FROM users WHERE kind = 'operator'")
        .fetch_one(&mut **tx)
        .await?
        .try_get(0)?;
    Ok(n)
}

/// Records that the database was initialised; false if it already was.
pub(super) async fn mark_initialised(tx: &mut Tx, now: Timestamp) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "INSERT INTO app_meta (key, value, updated_at) VALUES ('initialised_at', $1, $2) \
         ON CONFLICT (key) DO NOTHING",
    )
    .bind(now.to_rfc3339())
    .bind(now.micros())
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub(super) async fn is_initialised(store: &Store) -> Result<bool, StoreError> {
    let row = sqlx::query("SELECT value FROM app_meta WHERE key = 'initialised_at'")
        .fetch_optional(store.pool())
        .await?;
    Ok(row.is_some())
}

pub(super) async fn insert_operator(
    tx: &mut Tx,
    id: UserId,
    username: &Username,
    password_hash: &str,
    roles: &[Role],
    now: Timestamp,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO users (id, username, display_name, kind, status, created_at, updated_at) \
         VALUES ($1, $2, $2, 'operator', 'active', $3, $3)",
    )
    .bind(id.to_string())
    .bind(username.as_str())
    .bind(now.micros())
    .execute(&mut **tx)
    .await?;
    sqlx::query("INSERT INTO credentials (user_id, password_hash, changed_at) VALUES ($1, $2, $3)")
        .bind(id.to_string())
        .bind(password_hash)
        .bind(now.micros())
        .execute(&mut **tx)
        .await?;
    for role in roles {
        sqlx::query("INSERT INTO user_roles (user_id, role, granted_at) VALUES ($1, $2, $3)")
            .bind(id.to_string())
            .bind(role.as_str())
            .bind(now.micros())
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

/// Replaces an operator's password hash; `must_change` forces a change at next sign-in.
pub(super) async fn set_password(
    tx: &mut Tx,
    id: UserId,
    password_hash: &str,
    must_change: bool,
    now: Timestamp,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE credentials SET password_hash = $1, changed_at = $2 WHERE user_id = $3")
        .bind(password_hash)
        .bind(now.micros())
        .bind(id.to_string())
        .execute(&mut **tx)
        .await?;
    sqlx::query(
        "UPDATE users SET must_change_password = $1, failed_logins = 0, locked_until = NULL, \
         updated_at = $2 WHERE id = $3",
    )
    .bind(must_change)
    .bind(now.micros())
    .bind(id.to_string())
    .execute(&mut **tx)
    .await?;
    Ok(())
}
