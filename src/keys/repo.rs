//! SQL of key pairs, data keys, grants and rotations.

use sqlx::any::AnyArguments;
use sqlx::query::Query;
use sqlx::{Any, Row};

use super::Purpose;
use crate::crypto::KeyVersion;
use crate::store::{
    backend_of, values_placeholders, Backend, Store, StoreError, Timestamp, Tx, MAX_PARAMS,
};

type AnyQuery<'q> = Query<'q, Any, AnyArguments<'q>>;

/// A `user_keys` row.
pub(super) struct UserKeyRow {
    pub id: String,
    pub user_id: String,
    pub der: Vec<u8>,
    pub fingerprint: String,
    pub retired: bool,
}

fn user_key(row: &sqlx::any::AnyRow) -> Result<UserKeyRow, sqlx::Error> {
    Ok(UserKeyRow {
        id: row.try_get(0)?,
        user_id: row.try_get(1)?,
        der: row.try_get(2)?,
        fingerprint: row.try_get(3)?,
        retired: row.try_get::<Option<i64>, _>(4)?.is_some(),
    })
}

const USER_KEY_COLS: &str = "k.id, k.user_id, k.public_key_der, k.fingerprint, k.retired_at";

pub(super) async fn insert_user_key(
    tx: &mut Tx,
    id: &str,
    user_id: &str,
    bits: i64,
    der: &[u8],
    fingerprint: &str,
    now: Timestamp,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO user_keys (id, user_id, algorithm, bits, public_key_der, fingerprint, created_at) \
         VALUES ($1, $2, 'rsa-oaep-sha256', $3, $4, $5, $6)",
    )
    .bind(id)
    .bind(user_id)
    .bind(bits)
    .bind(der)
    .bind(fingerprint)
    .bind(now.micros())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

pub(super) async fn user_key_by_id(
    store: &Store,
    id: &str,
) -> Result<Option<UserKeyRow>, StoreError> {
    let row = sqlx::query(&format!(
        "SELECT {USER_KEY_COLS} FROM user_keys k WHERE k.id = $1"
    ))
    .bind(id)
    .fetch_optional(store.pool())
    .await?;
    Ok(row.as_ref().map(user_key).transpose()?)
}

/// An operator's key pairs that are not retired.
pub(super) async fn live_user_keys(
    tx: &mut Tx,
    user_id: &str,
) -> Result<Vec<UserKeyRow>, StoreError> {
    let rows = sqlx::query(&format!(
        "SELECT {USER_KEY_COLS} FROM user_keys k WHERE k.user_id = $1 AND k.retired_at IS NULL \
         ORDER BY k.created_at"
    ))
    .bind(user_id)
    .fetch_all(&mut **tx)
    .await?;
    Ok(rows.iter().map(user_key).collect::<Result<_, _>>()?)
}

/// Live key pairs holding a grant of the data key `data_key_id`.
pub(super) async fn holders(tx: &mut Tx, data_key_id: &str) -> Result<Vec<UserKeyRow>, StoreError> {
    let rows = sqlx::query(&format!(
        "SELECT {USER_KEY_COLS} FROM user_keys k JOIN key_grants g ON g.user_key_id = k.id \
         WHERE g.data_key_id = $1 AND k.retired_at IS NULL ORDER BY k.id"
    ))
    .bind(data_key_id)
    .fetch_all(&mut **tx)
    .await?;
    Ok(rows.iter().map(user_key).collect::<Result<_, _>>()?)
}

/// A `data_keys` row.
#[derive(Debug, Clone)]
pub(super) struct DataKeyRow {
    pub id: String,
    pub version: u32,
    pub status: String,
}

fn data_key(row: &sqlx::any::AnyRow) -> Result<DataKeyRow, sqlx::Error> {
    Ok(DataKeyRow {
        id: row.try_get(0)?,
        version: u32::try_from(row.try_get::<i64, _>(1)?).unwrap_or(0),
        status: row.try_get(2)?,
    })
}

/// Versions of `purpose` that are not retired, oldest first.
pub(super) async fn live_data_keys(
    tx: &mut Tx,
    purpose: Purpose,
) -> Result<Vec<DataKeyRow>, StoreError> {
    let rows = sqlx::query(
        "SELECT id, version, status FROM data_keys WHERE purpose = $1 AND status <> 'retired' \
         ORDER BY version",
    )
    .bind(purpose.as_str())
    .fetch_all(&mut **tx)
    .await?;
    Ok(rows.iter().map(data_key).collect::<Result<_, _>>()?)
}

/// Every version of `purpose`, oldest first.
pub(super) async fn all_data_keys(
    store: &Store,
    purpose: Purpose,
) -> Result<Vec<DataKeyRow>, StoreError> {
    let rows = sqlx::query(
        "SELECT id, version, status FROM data_keys WHERE purpose = $1 ORDER BY version",
    )
    .bind(purpose.as_str())
    .fetch_all(store.pool())
    .await?;
    Ok(rows.iter().map(data_key).collect::<Result<_, _>>()?)
}

/// The version new values are written with.
pub(super) async fn active_version(
    store: &Store,
    purpose: Purpose,
) -> Result<Option<u32>, StoreError> {
    let v: Option<i64> =
        sqlx::query("SELECT version FROM data_keys WHERE purpose = $1 AND status = 'active'")
            .bind(purpose.as_str())
            .fetch_optional(store.pool())
            .await?
            .map(|r| r.try_get(0))
            .transpose()?;
    Ok(v.and_then(|v| u32::try_from(v).ok()))
}

pub(super) async fn max_version(tx: &mut Tx, purpose: Purpose) -> Result<u32, StoreError> {
    let v: Option<i64> = sqlx::query("SELECT MAX(version) FROM data_keys WHERE purpose = $1")
        .bind(purpose.as_str())
        .fetch_one(&mut **tx)
        .await?
        .try_get(0)?;
    Ok(v.and_then(|v| u32::try_from(v).ok()).unwrap_or(0))
}

pub(super) async fn insert_data_key(
    tx: &mut Tx,
    id: &str,
    purpose: Purpose,
    version: u32,
    now: Timestamp,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO data_keys (id, purpose, version, status, created_at) \
         VALUES ($1, $2, $3, 'active', $4)",
    )
    .bind(id)
    .bind(purpose.as_str())
    .bind(i64::from(version))
    .bind(now.micros())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

pub(super) async fn set_data_key_status(
    tx: &mut Tx,
    id: &str,
    status: &str,
    now: Timestamp,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE data_keys SET status = $1, \
         retired_at = CASE WHEN $1 = 'retired' THEN $2 ELSE retired_at END WHERE id = $3",
    )
    .bind(status)
    .bind(now.micros())
    .bind(id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

pub(super) async fn insert_grant(
    tx: &mut Tx,
    data_key_id: &str,
    user_key_id: &str,
    wrapped: &[u8],
    granted_by: Option<&str>,
    now: Timestamp,
) -> Result<bool, StoreError> {
    if backend_of(tx) == Backend::Postgres {
        // Checks that the caller and the key pair's owner both hold the purpose (team mode).
        return Ok(sqlx::query("SELECT vigil_insert_grant($1, $2, $3, $4, $5)")
            .bind(data_key_id)
            .bind(user_key_id)
            .bind(wrapped)
            .bind(granted_by)
            .bind(now.micros())
            .fetch_one(&mut **tx)
            .await?
            .try_get(0)?);
    }
    let done = sqlx::query(
        "INSERT INTO key_grants (data_key_id, user_key_id, wrapped_key, granted_at, granted_by) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (data_key_id, user_key_id) DO NOTHING",
    )
    .bind(data_key_id)
    .bind(user_key_id)
    .bind(wrapped)
    .bind(now.micros())
    .bind(granted_by)
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// The wrapped copy of `purpose` version `version` for key pair `user_key_id`, if granted and
/// the version is not retired.
pub(super) async fn grant(
    store: &Store,
    purpose: Purpose,
    version: u32,
    user_key_id: &str,
) -> Result<Option<Vec<u8>>, StoreError> {
    let w: Option<Vec<u8>> = sqlx::query(
        "SELECT g.wrapped_key FROM key_grants g JOIN data_keys d ON d.id = g.data_key_id \
         WHERE d.purpose = $1 AND d.version = $2 AND g.user_key_id = $3 AND d.status <> 'retired'",
    )
    .bind(purpose.as_str())
    .bind(i64::from(version))
    .bind(user_key_id)
    .fetch_optional(store.pool())
    .await?
    .map(|r| r.try_get(0))
    .transpose()?;
    Ok(w)
}

/// Removes every grant held by `user_id`'s key pairs; returns how many.
pub(super) async fn delete_grants_of_user(tx: &mut Tx, user_id: &str) -> Result<u64, StoreError> {
    let done = sqlx::query(
        "DELETE FROM key_grants WHERE user_key_id IN (SELECT id FROM user_keys WHERE user_id = $1)",
    )
    .bind(user_id)
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected())
}

/// Deletes the wraps of a data key already marked retired.
pub(super) async fn delete_grants_of_data_key(
    tx: &mut Tx,
    data_key_id: &str,
) -> Result<(), StoreError> {
    let sql = match backend_of(tx) {
        Backend::Sqlite => "DELETE FROM key_grants WHERE data_key_id = $1",
        // Checks the key is retired and the caller holds its purpose (team mode).
        Backend::Postgres => "SELECT vigil_delete_retired_grants($1)",
    };
    sqlx::query(sql)
        .bind(data_key_id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

pub(super) async fn grant_count(store: &Store, data_key_id: &str) -> Result<i64, StoreError> {
    Ok(
        sqlx::query("SELECT COUNT(*) FROM key_grants WHERE data_key_id = $1")
            .bind(data_key_id)
            .fetch_one(store.pool())
            .await?
            .try_get(0)?,
    )
}

pub(super) async fn retire_user_keys(
    tx: &mut Tx,
    user_id: &str,
    now: Timestamp,
) -> Result<u64, StoreError> {
    let done = sqlx::query(
        "UPDATE user_keys SET retired_at = $1 WHERE user_id = $2 AND retired_at IS NULL",
    )
    .bind(now.micros())
    .bind(user_id)
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected())
}

/// An operator account id by username (operators and service accounts only).
pub(super) async fn operator_id(tx: &mut Tx, username: &str) -> Result<Option<String>, StoreError> {
    Ok(
        sqlx::query("SELECT id FROM users WHERE username = $1 AND kind IN ('operator', 'service')")
            .bind(username)
            .fetch_optional(&mut **tx)
            .await?
            .map(|r| r.try_get(0))
            .transpose()?,
    )
}

/// A `key_rotations` row.
#[derive(Debug, Clone)]
pub(super) struct RotationRow {
    pub id: String,
    pub from_version: u32,
    pub to_version: u32,
    pub cursor: Option<String>,
    pub rows_done: i64,
}

pub(super) async fn running_rotation(
    tx: &mut Tx,
    purpose: Purpose,
) -> Result<Option<RotationRow>, StoreError> {
    let row = sqlx::query(
        "SELECT id, from_version, to_version, cursor, rows_done FROM key_rotations \
         WHERE purpose = $1 AND status = 'running' ORDER BY started_at DESC",
    )
    .bind(purpose.as_str())
    .fetch_optional(&mut **tx)
    .await?;
    let Some(r) = row else { return Ok(None) };
    Ok(Some(RotationRow {
        id: r.try_get(0)?,
        from_version: u32::try_from(r.try_get::<i64, _>(1)?).unwrap_or(0),
        to_version: u32::try_from(r.try_get::<i64, _>(2)?).unwrap_or(0),
        cursor: r.try_get(3)?,
        rows_done: r.try_get(4)?,
    }))
}

pub(super) async fn insert_rotation(
    tx: &mut Tx,
    id: &str,
    purpose: Purpose,
    from: u32,
    to: u32,
    now: Timestamp,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO key_rotations (id, purpose, from_version, to_version, status, started_at) \
         VALUES ($1, $2, $3, $4, 'running', $5)",
    )
    .bind(id)
    .bind(purpose.as_str())
    .bind(i64::from(from))
    .bind(i64::from(to))
    .bind(now.micros())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

pub(super) async fn advance_rotation(
    tx: &mut Tx,
    id: &str,
    cursor: &str,
    rows: i64,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE key_rotations SET cursor = $1, rows_done = rows_done + $2 WHERE id = $3")
        .bind(cursor)
        .bind(rows)
        .bind(id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

pub(super) async fn finish_rotation(
    tx: &mut Tx,
    id: &str,
    status: &str,
    now: Timestamp,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE key_rotations SET status = $1, finished_at = $2 WHERE id = $3")
        .bind(status)
        .bind(now.micros())
        .bind(id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

pub(super) async fn running_rotation_progress(
    store: &Store,
    purpose: Purpose,
) -> Result<Option<(u32, u32, i64)>, StoreError> {
    let row = sqlx::query(
        "SELECT from_version, to_version, rows_done FROM key_rotations \
         WHERE purpose = $1 AND status = 'running'",
    )
    .bind(purpose.as_str())
    .fetch_optional(store.pool())
    .await?;
    let Some(r) = row else { return Ok(None) };
    Ok(Some((
        u32::try_from(r.try_get::<i64, _>(0)?).unwrap_or(0),
        u32::try_from(r.try_get::<i64, _>(1)?).unwrap_or(0),
        r.try_get(2)?,
    )))
}

/// A table holding values made with data keys: its id column and the column naming the version.
pub(super) struct FieldTable<'a> {
    pub table: &'a str,
    pub id_col: &'a str,
    pub version_col: &'a str,
}

/// One row of an encrypted-field table, as rotation reads it.
pub(super) struct FieldRow {
    pub id: String,
    pub version: u32,
    /// The spec's columns, in its order (text columns arrive as UTF-8 bytes).
    pub values: Vec<Option<Vec<u8>>>,
}

/// The next `limit` rows of `table` after `cursor` (by id) whose `version_col` is set and is
/// not `to`. `text_cols` are read as text; the others as bytes.
pub(super) async fn field_rows_after(
    tx: &mut Tx,
    t: &FieldTable<'_>,
    cols: &[(&str, bool)],
    cursor: &str,
    to: u32,
    limit: usize,
) -> Result<Vec<FieldRow>, StoreError> {
    let (table, id_col, version_col) = (t.table, t.id_col, t.version_col);
    let list: Vec<&str> = cols.iter().map(|(c, _)| *c).collect();
    let sql = format!(
        "SELECT {id_col}, {version_col}, {} FROM {table} WHERE {id_col} > $1 \
         AND {version_col} IS NOT NULL AND {version_col} <> $2 ORDER BY {id_col} LIMIT {limit}",
        list.join(", ")
    );
    let rows = sqlx::query(&sql)
        .bind(cursor)
        .bind(i64::from(to))
        .fetch_all(&mut **tx)
        .await?;
    rows.iter()
        .map(|r| {
            let mut values = Vec::with_capacity(cols.len());
            for (i, (_, text)) in cols.iter().enumerate() {
                values.push(if *text {
                    r.try_get::<Option<String>, _>(2 + i)?
                        .map(String::into_bytes)
                } else {
                    r.try_get::<Option<Vec<u8>>, _>(2 + i)?
                });
            }
            Ok(FieldRow {
                id: r.try_get(0)?,
                version: u32::try_from(r.try_get::<i64, _>(1)?).unwrap_or(0),
                values,
            })
        })
        .collect::<Result<_, sqlx::Error>>()
        .map_err(StoreError::from)
}

/// A row remade by rotation: its id, the version it was read with, and its new values.
pub(super) struct RemadeRow {
    pub id: String,
    pub old_version: u32,
    pub values: Vec<Option<Vec<u8>>>,
}

/// Writes rows' new values (into `cols`) and `new_version`, each only if it still has the
/// version it was read with; returns how many were written.
pub(super) async fn update_field_rows(
    tx: &mut Tx,
    t: &FieldTable<'_>,
    cols: &[&str],
    rows: &[RemadeRow],
    new_version: u32,
) -> Result<u64, StoreError> {
    let (table, version_col) = (t.table, t.version_col);
    let mut v_cols = vec!["ver".to_owned()];
    v_cols.extend((0..cols.len()).map(|i| format!("c{i}")));
    let mut sets: Vec<String> = cols
        .iter()
        .enumerate()
        .map(|(i, c)| format!("{c} = v.c{i}"))
        .collect();
    sets.push(format!("{version_col} = {new_version}"));
    let cond = format!("{table}.{version_col} = v.ver");
    update_from_values(
        tx,
        (table, t.id_col),
        &v_cols,
        &sets,
        &cond,
        rows,
        |q, r| {
            let mut q = q.bind(r.id.as_str()).bind(i64::from(r.old_version));
            for v in &r.values {
                q = q.bind(v.as_deref());
            }
            q
        },
    )
    .await
}

/// Rows of `table` per `version_col` value.
pub(super) async fn version_counts(
    store: &Store,
    table: &str,
    version_col: &str,
) -> Result<Vec<(u32, i64)>, StoreError> {
    let rows = sqlx::query(&format!(
        "SELECT {version_col}, COUNT(*) FROM {table} WHERE {version_col} IS NOT NULL \
         GROUP BY {version_col} ORDER BY {version_col}"
    ))
    .fetch_all(store.pool())
    .await?;
    rows.iter()
        .map(|r| {
            Ok((
                u32::try_from(r.try_get::<i64, _>(0)?).unwrap_or(0),
                r.try_get(1)?,
            ))
        })
        .collect::<Result<_, sqlx::Error>>()
        .map_err(StoreError::from)
}

/// Rows of `table` whose `version_col` is set and is not `to`.
pub(super) async fn rows_not_at(
    tx: &mut Tx,
    table: &str,
    version_col: &str,
    to: u32,
) -> Result<i64, StoreError> {
    Ok(sqlx::query(&format!(
        "SELECT COUNT(*) FROM {table} WHERE {version_col} IS NOT NULL AND {version_col} <> $1"
    ))
    .bind(i64::from(to))
    .fetch_one(&mut **tx)
    .await?
    .try_get(0)?)
}

/// One operator's live key pairs and the purposes granted to them.
pub(super) struct HolderRow {
    pub username: String,
    pub roles: Vec<String>,
    pub status: String,
    pub key_pairs: i64,
    pub fingerprint: Option<String>,
    pub granted: Vec<String>,
}

/// Every operator and service account with their live key pairs and granted purposes.
pub(super) async fn key_holders(store: &Store) -> Result<Vec<HolderRow>, StoreError> {
    let mut conn = store.pool().acquire().await?;
    let users = sqlx::query(
        "SELECT u.id, u.username, u.status, \
         (SELECT COUNT(*) FROM user_keys k WHERE k.user_id = u.id AND k.retired_at IS NULL), \
         (SELECT k.fingerprint FROM user_keys k WHERE k.user_id = u.id AND k.retired_at IS NULL \
          ORDER BY k.created_at DESC LIMIT 1) \
         FROM users u WHERE u.kind IN ('operator', 'service') ORDER BY u.username",
    )
    .fetch_all(&mut *conn)
    .await?;
    let ids: Vec<String> = users
        .iter()
        .map(|u| u.try_get(0))
        .collect::<Result<_, _>>()?;
    let mut roles = crate::rbac::roles_of(
        &mut conn,
        &ids.iter().map(String::as_str).collect::<Vec<_>>(),
    )
    .await?;
    let mut out = Vec::with_capacity(users.len());
    for (u, id) in users.iter().zip(ids) {
        let granted = sqlx::query(
            "SELECT DISTINCT d.purpose FROM key_grants g \
             JOIN user_keys k ON k.id = g.user_key_id \
             JOIN data_keys d ON d.id = g.data_key_id \
             WHERE k.user_id = $1 AND k.retired_at IS NULL AND d.status = 'active' \
             ORDER BY d.purpose",
        )
        .bind(&id)
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(|r| r.try_get::<String, _>(0))
        .collect::<Result<_, _>>()?;
        let roles = roles.remove(&id).unwrap_or_default();
        out.push(HolderRow {
            username: u.try_get(1)?,
            roles,
            status: u.try_get(2)?,
            key_pairs: u.try_get(3)?,
            fingerprint: u.try_get(4)?,
            granted,
        });
    }
    Ok(out)
}

// ---- Keys follow roles: grants by purpose, pending grants, the first administrator. ----

/// Removes `user_id`'s grants of every version of `purpose`, and pending grants of it; returns
/// the grants removed.
pub(super) async fn delete_grants_of_user_purpose(
    tx: &mut Tx,
    user_id: &str,
    purpose: Purpose,
) -> Result<u64, StoreError> {
    let done = sqlx::query(
        "DELETE FROM key_grants WHERE user_key_id IN (SELECT id FROM user_keys WHERE user_id = $1) \
         AND data_key_id IN (SELECT id FROM data_keys WHERE purpose = $2)",
    )
    .bind(user_id)
    .bind(purpose.as_str())
    .execute(&mut **tx)
    .await?;
    sqlx::query(
        "DELETE FROM pending_grants WHERE purpose = $2 \
         AND user_key_id IN (SELECT id FROM user_keys WHERE user_id = $1)",
    )
    .bind(user_id)
    .bind(purpose.as_str())
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected())
}

/// The purposes whose active version is granted to a live key pair of `user_id`.
pub(super) async fn held_purposes(
    conn: &mut sqlx::AnyConnection,
    user_id: &str,
) -> Result<Vec<String>, StoreError> {
    Ok(sqlx::query(
        "SELECT DISTINCT d.purpose FROM key_grants g \
         JOIN user_keys k ON k.id = g.user_key_id \
         JOIN data_keys d ON d.id = g.data_key_id \
         WHERE k.user_id = $1 AND k.retired_at IS NULL AND d.status = 'active' \
         ORDER BY d.purpose",
    )
    .bind(user_id)
    .fetch_all(conn)
    .await?
    .iter()
    .map(|r| r.try_get::<String, _>(0))
    .collect::<Result<_, _>>()?)
}

/// Live key pairs of active accounts other than `except` holding the active version of
/// `purpose`.
pub(super) async fn other_holders(
    tx: &mut Tx,
    purpose: Purpose,
    except: &str,
) -> Result<i64, StoreError> {
    Ok(sqlx::query(
        "SELECT COUNT(*) FROM key_grants g \
         JOIN user_keys k ON k.id = g.user_key_id \
         JOIN users u ON u.id = k.user_id \
         JOIN data_keys d ON d.id = g.data_key_id \
         WHERE d.purpose = $1 AND d.status = 'active' AND k.retired_at IS NULL \
         AND u.status = 'active' AND u.id <> $2",
    )
    .bind(purpose.as_str())
    .bind(except)
    .fetch_one(&mut **tx)
    .await?
    .try_get(0)?)
}

/// Asks for a rotation of `purpose` (nothing if one is asked for already).
pub(super) async fn request_rotation(
    tx: &mut Tx,
    purpose: Purpose,
    by: &str,
    now: Timestamp,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO rotation_requests (purpose, requested_by, requested_at) VALUES ($1, $2, $3) \
         ON CONFLICT (purpose) DO NOTHING",
    )
    .bind(purpose.as_str())
    .bind(by)
    .bind(now.micros())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The purposes whose rotation was asked for.
pub(super) async fn requested_rotations(store: &Store) -> Result<Vec<Purpose>, StoreError> {
    Ok(
        sqlx::query("SELECT purpose FROM rotation_requests ORDER BY purpose")
            .fetch_all(store.pool())
            .await?
            .iter()
            .filter_map(|r| r.try_get::<String, _>(0).ok())
            .filter_map(|p| Purpose::parse(&p))
            .collect(),
    )
}

/// Takes up the request to rotate `purpose`: true if there was one (and it is gone now).
pub(super) async fn take_rotation_request(
    tx: &mut Tx,
    purpose: Purpose,
) -> Result<bool, StoreError> {
    let done = sqlx::query("DELETE FROM rotation_requests WHERE purpose = $1")
        .bind(purpose.as_str())
        .execute(&mut **tx)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// Orders a grant that will be wrapped by a holder of `purpose` (nothing if already ordered).
pub(super) async fn insert_pending(
    tx: &mut Tx,
    user_key_id: &str,
    purpose: Purpose,
    by: &str,
    now: Timestamp,
) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "INSERT INTO pending_grants (user_key_id, purpose, requested_by, requested_at) \
         VALUES ($1, $2, $3, $4) ON CONFLICT (user_key_id, purpose) DO NOTHING",
    )
    .bind(user_key_id)
    .bind(purpose.as_str())
    .bind(by)
    .bind(now.micros())
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub(super) async fn delete_pending(
    tx: &mut Tx,
    user_key_id: &str,
    purpose: Purpose,
) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM pending_grants WHERE user_key_id = $1 AND purpose = $2")
        .bind(user_key_id)
        .bind(purpose.as_str())
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// A grant ordered but not yet wrapped.
pub(super) struct PendingRow {
    pub user_key_id: String,
    pub user_id: String,
    pub username: String,
    pub fingerprint: String,
    pub der: Vec<u8>,
    pub purpose: String,
    pub requested_by: Option<String>,
    pub requested_by_id: Option<String>,
    pub requested_at: i64,
}

/// Pending grants to live key pairs (of `user_id` only, if given), oldest first.
pub(super) async fn pending_grants(
    conn: &mut sqlx::AnyConnection,
    user_id: Option<&str>,
) -> Result<Vec<PendingRow>, StoreError> {
    let rows = sqlx::query(
        "SELECT p.user_key_id, k.user_id, u.username, k.fingerprint, k.public_key_der, p.purpose, \
         (SELECT b.username FROM users b WHERE b.id = p.requested_by), p.requested_at, \
         p.requested_by \
         FROM pending_grants p JOIN user_keys k ON k.id = p.user_key_id \
         JOIN users u ON u.id = k.user_id \
         WHERE k.retired_at IS NULL AND ($1 IS NULL OR k.user_id = $1) \
         ORDER BY p.requested_at, p.user_key_id, p.purpose",
    )
    .bind(user_id)
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(PendingRow {
                user_key_id: r.try_get(0)?,
                user_id: r.try_get(1)?,
                username: r.try_get(2)?,
                fingerprint: r.try_get(3)?,
                der: r.try_get(4)?,
                purpose: r.try_get(5)?,
                requested_by: r.try_get(6)?,
                requested_at: r.try_get(7)?,
                requested_by_id: r.try_get(8)?,
            })
        })
        .collect::<Result<_, sqlx::Error>>()
        .map_err(StoreError::from)
}

/// The id of the operator `vigil init` made (who holds every purpose until they give them up).
pub(super) async fn first_admin(
    conn: &mut sqlx::AnyConnection,
) -> Result<Option<String>, StoreError> {
    Ok(
        sqlx::query("SELECT value FROM app_meta WHERE key = 'first_admin'")
            .fetch_optional(conn)
            .await?
            .map(|r| r.try_get(0))
            .transpose()?,
    )
}

pub(super) async fn set_first_admin(
    tx: &mut Tx,
    user_id: &str,
    now: Timestamp,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO app_meta (key, value, updated_at) VALUES ('first_admin', $1, $2) \
         ON CONFLICT (key) DO NOTHING",
    )
    .bind(user_id)
    .bind(now.micros())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// An account's roles and status, for deciding which purposes it may hold.
pub(super) async fn roles_and_status(
    tx: &mut Tx,
    user_id: &str,
) -> Result<(Vec<String>, String), StoreError> {
    let status: String = sqlx::query("SELECT status FROM users WHERE id = $1")
        .bind(user_id)
        .fetch_one(&mut **tx)
        .await?
        .try_get(0)?;
    let roles = sqlx::query("SELECT role FROM user_roles WHERE user_id = $1 ORDER BY role")
        .bind(user_id)
        .fetch_all(&mut **tx)
        .await?
        .iter()
        .map(|r| r.try_get::<String, _>(0))
        .collect::<Result<_, _>>()?;
    Ok((roles, status))
}

// ---- The split of `pii` (the specs' table, column and predicate texts are constants). ----

/// Refreshes Postgres' statistics of `table`, which plan the chunk queries: statistics taken
/// before its `pii` rows were written (a bulk load since the last analysis) say none match,
/// and Postgres then scans the whole table for every chunk instead of walking the primary key.
/// Only the database's owner may analyze, so nothing over an operator's own login (team mode);
/// nothing on SQLite, which walks the primary key regardless.
pub(super) async fn analyze(store: &Store, table: &str) -> Result<(), StoreError> {
    if store.backend() == Backend::Postgres && !store.is_operator_login() {
        sqlx::query(&format!("ANALYZE {table}"))
            .execute(store.pool())
            .await?;
    }
    Ok(())
}

/// Rows of `table` matching `predicate`.
pub(super) async fn count_where(
    tx: &mut Tx,
    table: &str,
    predicate: &str,
) -> Result<i64, StoreError> {
    Ok(
        sqlx::query(&format!("SELECT COUNT(*) FROM {table} WHERE {predicate}"))
            .fetch_one(&mut **tx)
            .await?
            .try_get(0)?,
    )
}

/// A row's id and its sealed columns.
pub(super) type LegacyRow = (String, Vec<Option<Vec<u8>>>);

/// The next `limit` rows of `table` after `after` (by id) matching `predicate`, with `cols`.
pub(super) async fn legacy_rows(
    tx: &mut Tx,
    table: &str,
    cols: &[&str],
    predicate: &str,
    after: &str,
    limit: usize,
) -> Result<Vec<LegacyRow>, StoreError> {
    let rows = sqlx::query(&format!(
        "SELECT id, {} FROM {table} WHERE id > $1 AND {predicate} ORDER BY id LIMIT {limit}",
        cols.join(", ")
    ))
    .bind(after)
    .fetch_all(&mut **tx)
    .await?;
    rows.iter()
        .map(|r| {
            let values = (0..cols.len())
                .map(|i| r.try_get::<Option<Vec<u8>>, _>(1 + i))
                .collect::<Result<_, _>>()?;
            Ok((r.try_get(0)?, values))
        })
        .collect::<Result<_, sqlx::Error>>()
        .map_err(StoreError::from)
}

/// A row re-sealed by the split: its id, its columns' new values, and its recomputed blind
/// index (for a table that has one).
pub(super) struct ResealedRow {
    pub id: String,
    pub values: Vec<Option<Vec<u8>>>,
    pub bidx: Option<Vec<u8>>,
}

/// Writes re-sealed rows of `table`: their `cols` and the new purpose's `version` (and, with
/// `bidx`, a row's blind index into its target column and the blind index key's version into
/// its version column, where the row has one), clearing `pii_key_version` where the table has
/// it. Only rows still matching `predicate` are written (another run may have written some
/// since they were read); returns how many were.
#[allow(clippy::too_many_arguments)]
pub(super) async fn reseal_legacy_rows(
    tx: &mut Tx,
    table: &str,
    cols: &[&str],
    version_col: &str,
    predicate: &str,
    rows: &[ResealedRow],
    version: KeyVersion,
    bidx: Option<(&str, &str, KeyVersion)>,
) -> Result<u64, StoreError> {
    let mut v_cols: Vec<String> = (0..cols.len()).map(|i| format!("c{i}")).collect();
    let mut sets: Vec<String> = cols
        .iter()
        .enumerate()
        .map(|(i, c)| format!("{c} = v.c{i}"))
        .collect();
    sets.push(format!("{version_col} = {}", version.0));
    if matches!(table, "users" | "activity_log") {
        sets.push("pii_key_version = NULL".into());
    }
    if let Some((target, bidx_col, v)) = bidx {
        v_cols.push("b".into());
        sets.push(format!("{target} = COALESCE(v.b, {target})"));
        sets.push(format!(
            "{bidx_col} = CASE WHEN v.b IS NULL THEN {bidx_col} ELSE {} END",
            v.0
        ));
    }
    let with_bidx = bidx.is_some();
    update_from_values(
        tx,
        (table, "id"),
        &v_cols,
        &sets,
        predicate,
        rows,
        |q, r| {
            let mut q = q.bind(r.id.as_str());
            for v in &r.values {
                q = q.bind(v.as_deref());
            }
            if with_bidx {
                q = q.bind(r.bidx.as_deref());
            }
            q
        },
    )
    .await
}

/// `UPDATE {table} SET {sets} FROM v WHERE {table}.{id_col} = v.k AND {cond}`, where the
/// values list `v (k, {v_cols})` holds `rows` (each bound by `bind`: its id, then its values):
/// one statement for as many rows as fit under [`MAX_PARAMS`], so a chunk costs one round
/// trip, not one per row. Versions in `sets` are numbers written into the text. Returns the
/// rows written.
///
/// The target rows are also bounded by the lowest and highest id in `v`, so Postgres reads
/// only the chunk's stretch of the primary key, never the whole table; and its nested loops
/// are off for these statements: one here compares every row with every value (25M
/// comparisons for 5,000 rows), and the planner picks one when stale statistics say no row
/// matches `cond`. SQLite looks each id up in the primary key.
async fn update_from_values<T>(
    tx: &mut Tx,
    (table, id_col): (&str, &str),
    v_cols: &[String],
    sets: &[String],
    cond: &str,
    rows: &[T],
    bind: impl for<'q> Fn(AnyQuery<'q>, &'q T) -> AnyQuery<'q>,
) -> Result<u64, StoreError> {
    if rows.is_empty() {
        return Ok(0);
    }
    let width = 1 + v_cols.len();
    let backend = backend_of(tx);
    if backend == Backend::Postgres {
        sqlx::query("SET LOCAL enable_nestloop = off")
            .execute(&mut **tx)
            .await?;
    }
    let mut done = 0;
    for part in rows.chunks((MAX_PARAMS / width).max(1)) {
        let sql = format!(
            "WITH v (k, {}) AS (VALUES {}) UPDATE {table} SET {} FROM v \
             WHERE {table}.{id_col} = v.k \
             AND {table}.{id_col} BETWEEN (SELECT MIN(k) FROM v) AND (SELECT MAX(k) FROM v) \
             AND {cond}",
            v_cols.join(", "),
            values_placeholders(backend, part.len(), width),
            sets.join(", ")
        );
        let mut q = sqlx::query(&sql);
        for row in part {
            q = bind(q, row);
        }
        done += q.execute(&mut **tx).await?.rows_affected();
    }
    if backend == Backend::Postgres {
        sqlx::query("SET LOCAL enable_nestloop = DEFAULT")
            .execute(&mut **tx)
            .await?;
    }
    Ok(done)
}

/// Stores the token-signing public key of key pair `id`.
pub(super) async fn set_signing_key<'e, E>(e: E, id: &str, public: &[u8]) -> Result<(), StoreError>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    sqlx::query("UPDATE user_keys SET signing_public_key = $1 WHERE id = $2")
        .bind(public)
        .bind(id)
        .execute(e)
        .await?;
    Ok(())
}

/// Key pair `id`'s owner, token-signing public key and whether it is retired.
pub(super) async fn signing_key(
    store: &Store,
    id: &str,
) -> Result<Option<(String, Option<Vec<u8>>, bool)>, StoreError> {
    let row =
        sqlx::query("SELECT user_id, signing_public_key, retired_at FROM user_keys WHERE id = $1")
            .bind(id)
            .fetch_optional(store.pool())
            .await?;
    let Some(r) = row else { return Ok(None) };
    Ok(Some((
        r.try_get(0)?,
        r.try_get(1)?,
        r.try_get::<Option<i64>, _>(2)?.is_some(),
    )))
}

/// The wrapped copy of the data key named `purpose` (by its stored name, so retired purposes
/// too) version `version` for key pair `user_key_id`.
pub(super) async fn grant_of(
    store: &Store,
    purpose: &str,
    version: u32,
    user_key_id: &str,
) -> Result<Option<Vec<u8>>, StoreError> {
    let w: Option<Vec<u8>> = sqlx::query(
        "SELECT g.wrapped_key FROM key_grants g JOIN data_keys d ON d.id = g.data_key_id \
         WHERE d.purpose = $1 AND d.version = $2 AND g.user_key_id = $3",
    )
    .bind(purpose)
    .bind(i64::from(version))
    .bind(user_key_id)
    .fetch_optional(store.pool())
    .await?
    .map(|r| r.try_get(0))
    .transpose()?;
    Ok(w)
}

/// Deletes the retired `purpose`'s data keys, grants and rotations, unless a TOTP secret is still
/// sealed with them.
pub(super) async fn drop_purpose_unless_used(tx: &mut Tx, purpose: &str) -> Result<(), StoreError> {
    if backend_of(tx) == Backend::Postgres && purpose == "totp" {
        // Any sign-in may call it: it checks the condition itself (team mode).
        sqlx::query("SELECT vigil_drop_unused_totp_keys()")
            .execute(&mut **tx)
            .await?;
        return Ok(());
    }
    let used: i64 =
        sqlx::query("SELECT COUNT(*) FROM mfa_secrets WHERE sealed_with = 'totp_data_key'")
            .fetch_one(&mut **tx)
            .await?
            .try_get(0)?;
    if used > 0 {
        return Ok(());
    }
    for sql in [
        "DELETE FROM key_grants WHERE data_key_id IN (SELECT id FROM data_keys WHERE purpose = $1)",
        "DELETE FROM key_rotations WHERE purpose = $1",
        "DELETE FROM data_keys WHERE purpose = $1",
    ] {
        sqlx::query(sql).bind(purpose).execute(&mut **tx).await?;
    }
    Ok(())
}
