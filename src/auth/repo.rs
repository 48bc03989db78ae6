//! SQL of operator accounts.

use crate::rbac::roles_of;
use sqlx::Row;

use super::{UserId, Username};
use crate::rbac::Role;
use crate::store::daily_counts::{CountChanges, Metric};
use crate::store::{backend_of, flag, team, Backend, Store, StoreError, Timestamp, Tx};

pub(super) struct OperatorRow {
    pub id: UserId,
    pub username: Username,
    pub status: String,
    pub mfa_enabled: bool,
    /// `None` when the database does not show it to this session (team mode: only one's own).
    pub password_hash: Option<String>,
    pub roles: Vec<Role>,
    pub must_change_password: bool,
    /// The credential key sealed with this password's key, if one was made.
    pub credential_key: Option<Vec<u8>>,
}

pub(super) async fn find_operator(
    store: &Store,
    username: &Username,
) -> Result<Option<OperatorRow>, StoreError> {
    // In team mode an operator's login may not read the credentials table; definer functions
    // show it only its own hash and credential key.
    let sql = match store.backend() {
        Backend::Sqlite => "SELECT u.id, u.status, u.mfa_enabled, c.password_hash, \
             u.must_change_password, c.credential_key_sealed \
             FROM users u JOIN credentials c ON c.user_id = u.id \
             WHERE u.username = $1 AND u.kind IN ('operator', 'service')"
            .to_owned(),
        Backend::Postgres => format!(
            "SELECT u.id, u.status, u.mfa_enabled, {}, u.must_change_password, {} \
             FROM users u \
             WHERE u.username = $1 AND u.kind IN ('operator', 'service') \
             AND EXISTS (SELECT 1 FROM credentials c WHERE c.user_id = u.id)",
            team::PASSWORD_HASH_EXPR,
            team::CREDENTIAL_KEY_EXPR
        ),
    };
    let row = sqlx::query(&sql)
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
        must_change_password: flag(&row, 4)?,
        credential_key: row.try_get(5)?,
    }))
}

/// An operator's username, status and roles by id (no credentials).
pub(super) async fn operator_by_id(
    store: &Store,
    id: UserId,
) -> Result<Option<(Username, String, Vec<Role>)>, StoreError> {
    let row = sqlx::query(
        "SELECT username, status FROM users WHERE id = $1 AND kind IN ('operator', 'service')",
    )
    .bind(id.to_string())
    .fetch_optional(store.pool())
    .await?;
    let Some(row) = row else { return Ok(None) };
    let Ok(username) = Username::parse(&row.try_get::<String, _>(0)?) else {
        return Ok(None);
    };
    let roles = sqlx::query("SELECT role FROM user_roles WHERE user_id = $1 ORDER BY role")
        .bind(id.to_string())
        .fetch_all(store.pool())
        .await?
        .iter()
        .filter_map(|r| r.try_get::<String, _>(0).ok())
        .filter_map(|r| Role::parse(&r))
        .collect();
    Ok(Some((username, row.try_get(1)?, roles)))
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
    // An account whose only role is `service` is a headless worker's, and is filed as one.
    let kind = if roles == [Role::Service] {
        "service"
    } else {
        "operator"
    };
    sqlx::query(
        "INSERT INTO users (id, username, display_name, kind, status, created_at, updated_at) \
         VALUES ($1, $2, $2, $4, 'active', $3, $3)",
    )
    .bind(id.to_string())
    .bind(username.as_str())
    .bind(now.micros())
    .bind(kind)
    .execute(&mut **tx)
    .await?;
    if backend_of(tx) == Backend::Postgres {
        team::set_password(
            tx,
            &id.to_string(),
            password_hash,
            None,
            false,
            now.micros(),
        )
        .await?;
    } else {
        sqlx::query(
            "INSERT INTO credentials (user_id, password_hash, changed_at) VALUES ($1, $2, $3)",
        )
        .bind(id.to_string())
        .bind(password_hash)
        .bind(now.micros())
        .execute(&mut **tx)
        .await?;
    }
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

/// Whether `id`'s password is still the one written when the account was created (the
/// credential's last change is the account's creation time); false after any change or reset.
/// Team mode asks a definer function, as the credentials table is hidden there.
pub(super) async fn password_set_at_creation(
    store: &Store,
    id: UserId,
) -> Result<bool, StoreError> {
    let sql = match store.backend() {
        Backend::Sqlite => {
            "SELECT COALESCE(c.changed_at = u.created_at, FALSE) FROM credentials c \
             JOIN users u ON u.id = c.user_id WHERE c.user_id = $1"
        }
        Backend::Postgres => "SELECT COALESCE(vigil_password_set_at_creation($1), FALSE)",
    };
    let row = sqlx::query(sql)
        .bind(id.to_string())
        .fetch_optional(store.pool())
        .await?;
    Ok(match row {
        Some(r) => flag(&r, 0)?,
        None => false,
    })
}

/// Replaces an operator's password hash and the credential key sealed with it (none after an
/// administrator's reset); `must_change` forces a change at next sign-in.
pub(super) async fn set_password(
    tx: &mut Tx,
    id: UserId,
    password_hash: &str,
    credential_key: Option<&[u8]>,
    must_change: bool,
    now: Timestamp,
) -> Result<(), StoreError> {
    if backend_of(tx) == Backend::Postgres {
        return team::set_password(
            tx,
            &id.to_string(),
            password_hash,
            credential_key,
            must_change,
            now.micros(),
        )
        .await;
    }
    sqlx::query(
        "UPDATE credentials SET password_hash = $1, credential_key_sealed = $2, changed_at = $3 \
         WHERE user_id = $4",
    )
    .bind(password_hash)
    .bind(credential_key)
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

/// Stores a credential key sealed with the key of `password_hash`, if the operator still has
/// that password and the sealed key is still `replaces`; false if either changed meanwhile.
pub(super) async fn set_credential_key(
    store: &Store,
    id: UserId,
    password_hash: &str,
    replaces: Option<&[u8]>,
    sealed: &[u8],
) -> Result<bool, StoreError> {
    if store.backend() == Backend::Postgres {
        return team::set_credential_key(store, &id.to_string(), password_hash, replaces, sealed)
            .await;
    }
    let done = sqlx::query(
        "UPDATE credentials SET credential_key_sealed = $1 WHERE user_id = $2 \
         AND password_hash = $3 AND (credential_key_sealed = $4 \
         OR (credential_key_sealed IS NULL AND $4 IS NULL))",
    )
    .bind(sealed)
    .bind(id.to_string())
    .bind(password_hash)
    .bind(replaces)
    .execute(store.pool())
    .await?;
    Ok(done.rows_affected() == 1)
}

/// The credential key sealed for `id` now.
pub(super) async fn credential_key(
    store: &Store,
    id: UserId,
) -> Result<Option<Vec<u8>>, StoreError> {
    let sql = match store.backend() {
        Backend::Sqlite => "SELECT credential_key_sealed FROM credentials WHERE user_id = $1",
        Backend::Postgres => "SELECT vigil_credential_key($1)",
    };
    Ok(sqlx::query(sql)
        .bind(id.to_string())
        .fetch_optional(store.pool())
        .await?
        .map(|r| r.try_get::<Option<Vec<u8>>, _>(0))
        .transpose()?
        .flatten())
}

/// What counting an attempt in the throttling windows gave.
pub(super) enum Taken {
    /// Counted in every window: the hits' ids, given back if the attempt succeeds.
    Counted(Vec<String>),
    /// A window already held the limit; nothing was counted. `oldest` is that window's oldest
    /// hit, which leaves it first.
    Full { oldest: i64 },
}

/// The advisory lock that serialises the attempts counted against one throttling subject on
/// Postgres: the first eight bytes of `SHA-256("vigil.throttle." + scope + 0 + subject)`.
fn throttle_lock_key(scope: &str, subject: &[u8]) -> i64 {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(b"vigil.throttle.");
    h.update(scope.as_bytes());
    h.update([0]);
    h.update(subject);
    let d = h.finalize();
    i64::from_be_bytes(d[..8].try_into().expect("eight bytes"))
}

/// Counts one attempt in the sliding window of each of `subjects`, unless one of them already
/// holds `limit` hits since `since`: all windows or none, in one transaction, before anything
/// about the attempt is checked. Each hit is inserted by one statement that counts the window
/// first; the transaction holds SQLite's write lock from its start, and on Postgres it first
/// takes an advisory lock per subject, so two attempts can never both count the same hits and
/// both pass.
pub(super) async fn take_hits(
    store: &Store,
    subjects: &[(&str, Vec<u8>)],
    at: Timestamp,
    since: Timestamp,
    limit: i64,
) -> Result<Taken, StoreError> {
    let mut tx = store.begin().await?;
    if store.backend() == Backend::Postgres {
        // In one order, so two attempts sharing both subjects cannot deadlock.
        let mut keys: Vec<i64> = subjects
            .iter()
            .map(|(scope, subject)| throttle_lock_key(scope, subject))
            .collect();
        keys.sort_unstable();
        keys.dedup();
        for key in keys {
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(key)
                .execute(&mut *tx)
                .await?;
        }
    }
    let mut ids = Vec::with_capacity(subjects.len());
    for (scope, subject) in subjects {
        let id = uuid::Uuid::now_v7().to_string();
        let counted = sqlx::query(
            "INSERT INTO rate_limit_hits (id, scope, subject, at) SELECT $1, $2, $3, $4 \
             WHERE (SELECT COUNT(*) FROM rate_limit_hits \
                    WHERE scope = $2 AND subject = $3 AND at >= $5) < $6",
        )
        .bind(&id)
        .bind(*scope)
        .bind(subject.as_slice())
        .bind(at.micros())
        .bind(since.micros())
        .bind(limit)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if !counted {
            let oldest: Option<i64> = sqlx::query(
                "SELECT MIN(at) FROM rate_limit_hits WHERE scope = $1 AND subject = $2 AND at >= $3",
            )
            .bind(*scope)
            .bind(subject.as_slice())
            .bind(since.micros())
            .fetch_one(&mut *tx)
            .await?
            .try_get(0)?;
            // Dropping the transaction takes back the hits counted in the other windows.
            return Ok(Taken::Full {
                oldest: oldest.unwrap_or(at.micros()),
            });
        }
        ids.push(id);
    }
    tx.commit().await?;
    // Hits older than the window count for nothing.
    sqlx::query("DELETE FROM rate_limit_hits WHERE at < $1")
        .bind(since.micros())
        .execute(store.pool())
        .await?;
    Ok(Taken::Counted(ids))
}

/// Takes back the hits of an attempt that succeeded (successes do not count).
pub(super) async fn release_hits(store: &Store, ids: &[String]) -> Result<(), StoreError> {
    for id in ids {
        sqlx::query("DELETE FROM rate_limit_hits WHERE id = $1")
            .bind(id)
            .execute(store.pool())
            .await?;
    }
    Ok(())
}

pub(super) async fn clear_hits(tx: &mut Tx, scope: &str, subject: &[u8]) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM rate_limit_hits WHERE scope = $1 AND subject = $2")
        .bind(scope)
        .bind(subject)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// How an account locks: after `after` failed attempts in a row, for `first_seconds`, doubled
/// for each further failure, at most `max_seconds`.
pub(super) struct Lockout {
    pub after: i64,
    pub first_seconds: i64,
    pub max_seconds: i64,
}

/// Counts an attempt as a failure of `id` before its password is checked, unless the account is
/// locked at `now` (then false, and nothing is counted). The one conditional statement that
/// counts it also sets the lock when this makes `after` failures in a row or more, so
/// concurrent attempts cannot all pass a check made before any of them was counted. A success
/// clears the count ([`record_success`]).
pub(super) async fn count_attempt(
    store: &Store,
    id: UserId,
    now: Timestamp,
    lockout: &Lockout,
) -> Result<bool, StoreError> {
    // Past this many doublings the lock is the longest one (and the shift cannot overflow).
    let mut cap: i64 = 0;
    while cap < 62 && lockout.first_seconds.saturating_mul(1 << cap) < lockout.max_seconds {
        cap += 1;
    }
    let done = sqlx::query(
        "UPDATE users SET failed_logins = failed_logins + 1, locked_until = CASE \
           WHEN failed_logins + 1 < $3 THEN locked_until \
           WHEN failed_logins + 1 - $3 >= $6 THEN $2 + $5 * 1000000 \
           ELSE $2 + $4 * (CAST(1 AS BIGINT) << CAST(failed_logins + 1 - $3 AS INTEGER)) * 1000000 END \
         WHERE id = $1 AND (locked_until IS NULL OR locked_until <= $2)",
    )
    .bind(id.to_string())
    .bind(now.micros())
    .bind(lockout.after)
    .bind(lockout.first_seconds)
    .bind(lockout.max_seconds)
    .bind(cap)
    .execute(store.pool())
    .await?;
    Ok(done.rows_affected() == 1)
}

/// When `id`'s lock ends, if it is locked.
pub(super) async fn locked_until(store: &Store, id: UserId) -> Result<Option<i64>, StoreError> {
    Ok(sqlx::query("SELECT locked_until FROM users WHERE id = $1")
        .bind(id.to_string())
        .fetch_optional(store.pool())
        .await?
        .map(|r| r.try_get::<Option<i64>, _>(0))
        .transpose()?
        .flatten())
}

/// Clears `id`'s failures in a row and lock (the password was right, but the account may not
/// sign in for another reason).
pub(super) async fn clear_failures(store: &Store, id: UserId) -> Result<(), StoreError> {
    sqlx::query("UPDATE users SET failed_logins = 0, locked_until = NULL WHERE id = $1")
        .bind(id.to_string())
        .execute(store.pool())
        .await?;
    Ok(())
}

pub(super) async fn record_success(
    store: &Store,
    id: UserId,
    now: Timestamp,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE users SET failed_logins = 0, locked_until = NULL, last_login_at = $1 WHERE id = $2",
    )
    .bind(now.micros())
    .bind(id.to_string())
    .execute(store.pool())
    .await?;
    Ok(())
}

pub(super) async fn unlock(tx: &mut Tx, id: UserId) -> Result<(), StoreError> {
    sqlx::query("UPDATE users SET failed_logins = 0, locked_until = NULL WHERE id = $1")
        .bind(id.to_string())
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// One sign-in attempt, for the monitoring module (never the password; no IP without a key),
/// counted in the dashboard's daily counts in the same transaction.
pub(super) async fn log_attempt(
    store: &Store,
    user: Option<UserId>,
    outcome: &str,
    reason: Option<&str>,
    user_agent: Option<&str>,
    at: Timestamp,
) -> Result<(), StoreError> {
    let mut tx = store.begin().await?;
    sqlx::query(
        "INSERT INTO activity_log (id, user_id, kind, outcome, reason, occurred_at, ingested_at, \
         user_agent) VALUES ($1, $2, 'vigil_login', $3, $4, $5, $5, $6)",
    )
    .bind(uuid::Uuid::now_v7().to_string())
    .bind(user.map(|u| u.to_string()))
    .bind(outcome)
    .bind(reason)
    .bind(at.micros())
    .bind(user_agent)
    .execute(&mut *tx)
    .await?;
    let mut counts = CountChanges::new();
    counts.add(Metric::Activity, at.micros(), "vigil_login", 1);
    counts.write(&mut tx).await?;
    tx.commit().await?;
    Ok(())
}

pub(super) async fn insert_challenge(
    store: &Store,
    user: UserId,
    token_hash: &[u8],
    now: Timestamp,
    expires: Timestamp,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO login_challenges (id, user_id, token_hash, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(uuid::Uuid::now_v7().to_string())
    .bind(user.to_string())
    .bind(token_hash)
    .bind(now.micros())
    .bind(expires.micros())
    .execute(store.pool())
    .await?;
    Ok(())
}

/// Spends the challenge: true only once, before it expires, for that user.
pub(super) async fn spend_challenge(
    store: &Store,
    user: UserId,
    token_hash: &[u8],
    now: Timestamp,
) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "UPDATE login_challenges SET used_at = $1 WHERE token_hash = $2 AND user_id = $3 \
         AND used_at IS NULL AND expires_at > $1",
    )
    .bind(now.micros())
    .bind(token_hash)
    .bind(user.to_string())
    .execute(store.pool())
    .await?;
    Ok(done.rows_affected() == 1)
}

/// The installation's random salt for throttling subjects, made on first use.
pub(super) async fn throttle_salt(store: &Store) -> Result<Vec<u8>, StoreError> {
    let fresh = hex::encode(rand::random::<[u8; 32]>());
    sqlx::query(
        "INSERT INTO app_meta (key, value, updated_at) VALUES ('throttle_salt', $1, $2) \
         ON CONFLICT (key) DO NOTHING",
    )
    .bind(&fresh)
    .bind(Timestamp::now().micros())
    .execute(store.pool())
    .await?;
    let v: String = sqlx::query("SELECT value FROM app_meta WHERE key = 'throttle_salt'")
        .fetch_one(store.pool())
        .await?
        .try_get(0)?;
    Ok(hex::decode(v).unwrap_or_default())
}

pub(super) async fn insert_session(
    store: &Store,
    id: &str,
    user: UserId,
    client: &str,
    now: Timestamp,
    expires: Timestamp,
    idle_timeout_secs: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO sessions (id, user_id, client, created_at, last_seen_at, expires_at, \
         idle_timeout_secs) VALUES ($1, $2, $3, $4, $4, $5, $6)",
    )
    .bind(id)
    .bind(user.to_string())
    .bind(client)
    .bind(now.micros())
    .bind(expires.micros())
    .bind(idle_timeout_secs)
    .execute(store.pool())
    .await?;
    Ok(())
}

const TOUCH_SESSION: &str = "UPDATE sessions SET last_seen_at = $1 \
     WHERE id = $2 AND last_seen_at < $1 AND revoked_at IS NULL";

/// Records a use of a live session (only ever moves `last_seen_at` forward). In team mode the
/// row-level policy lets an operator's own login touch only their own sessions; a verification
/// of someone else's token there changes nothing.
pub(super) async fn touch_session(
    store: &Store,
    session: &str,
    now: Timestamp,
) -> Result<(), StoreError> {
    sqlx::query(TOUCH_SESSION)
        .bind(now.micros())
        .bind(session)
        .execute(store.pool())
        .await?;
    Ok(())
}

/// [`touch_session`] inside a transaction.
pub(super) async fn touch_session_in(
    tx: &mut Tx,
    session: &str,
    now: Timestamp,
) -> Result<(), StoreError> {
    sqlx::query(TOUCH_SESSION)
        .bind(now.micros())
        .bind(session)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

pub(super) async fn insert_refresh(
    tx: &mut Tx,
    id: &str,
    session: &str,
    family: &str,
    hash: &[u8],
    now: Timestamp,
    expires: Timestamp,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO refresh_tokens (id, session_id, family_id, token_hash, issued_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(id)
    .bind(session)
    .bind(family)
    .bind(hash)
    .bind(now.micros())
    .bind(expires.micros())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// A refresh token's row.
pub(super) struct RefreshRow {
    pub id: String,
    pub session: String,
    pub family: String,
    pub user: String,
    pub expires_at: i64,
    /// The session's absolute end.
    pub session_expires_at: i64,
    /// The session's last recorded use.
    pub last_seen_at: i64,
    /// The session's idle timeout.
    pub idle_timeout_secs: i64,
    /// Traded for a newer one already.
    pub rotated: bool,
    /// Revoked, or its session was.
    pub revoked: bool,
}

pub(super) async fn refresh_by_hash(
    tx: &mut Tx,
    hash: &[u8],
) -> Result<Option<RefreshRow>, StoreError> {
    let row = sqlx::query(
        "SELECT r.id, r.session_id, r.family_id, s.user_id, r.expires_at, \
         CAST(CASE WHEN r.rotated_at IS NOT NULL THEN 1 ELSE 0 END AS BIGINT), \
         CAST(CASE WHEN r.revoked_at IS NOT NULL OR s.revoked_at IS NOT NULL \
              THEN 1 ELSE 0 END AS BIGINT), \
         s.expires_at, s.last_seen_at, s.idle_timeout_secs \
         FROM refresh_tokens r JOIN sessions s ON s.id = r.session_id WHERE r.token_hash = $1",
    )
    .bind(hash)
    .fetch_optional(&mut **tx)
    .await?;
    let Some(r) = row else { return Ok(None) };
    Ok(Some(RefreshRow {
        id: r.try_get(0)?,
        session: r.try_get(1)?,
        family: r.try_get(2)?,
        user: r.try_get(3)?,
        expires_at: r.try_get(4)?,
        rotated: r.try_get::<i64, _>(5)? != 0,
        revoked: r.try_get::<i64, _>(6)? != 0,
        session_expires_at: r.try_get(7)?,
        last_seen_at: r.try_get(8)?,
        idle_timeout_secs: r.try_get(9)?,
    }))
}

/// Marks refresh token `id` as traded for `by`, if it is neither rotated nor revoked yet: one
/// conditional statement, so of two concurrent refreshes of one token only one succeeds (on
/// Postgres the second waits for the first's row lock, then finds the token rotated).
pub(super) async fn rotate_refresh(
    tx: &mut Tx,
    id: &str,
    by: &str,
    now: Timestamp,
) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "UPDATE refresh_tokens SET rotated_at = $1, replaced_by = $2 \
         WHERE id = $3 AND rotated_at IS NULL AND revoked_at IS NULL",
    )
    .bind(now.micros())
    .bind(by)
    .bind(id)
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Revokes a refresh-token family and its session.
pub(super) async fn revoke_family(
    tx: &mut Tx,
    family: &str,
    session: &str,
    reason: &str,
    now: Timestamp,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE refresh_tokens SET revoked_at = $1 WHERE family_id = $2 AND revoked_at IS NULL",
    )
    .bind(now.micros())
    .bind(family)
    .execute(&mut **tx)
    .await?;
    revoke_session(tx, session, reason, now).await
}

pub(super) async fn revoke_session(
    tx: &mut Tx,
    session: &str,
    reason: &str,
    now: Timestamp,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE sessions SET revoked_at = $1, revoked_reason = $2 WHERE id = $3 AND revoked_at IS NULL",
    )
    .bind(now.micros())
    .bind(reason)
    .bind(session)
    .execute(&mut **tx)
    .await?;
    sqlx::query(
        "UPDATE refresh_tokens SET revoked_at = $1 WHERE session_id = $2 AND revoked_at IS NULL",
    )
    .bind(now.micros())
    .bind(session)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

pub(super) async fn sessions_of(tx: &mut Tx, user: UserId) -> Result<Vec<String>, StoreError> {
    let rows = sqlx::query("SELECT id FROM sessions WHERE user_id = $1 AND revoked_at IS NULL")
        .bind(user.to_string())
        .fetch_all(&mut **tx)
        .await?;
    rows.iter()
        .map(|r| r.try_get(0))
        .collect::<Result<_, sqlx::Error>>()
        .map_err(StoreError::from)
}

/// Revokes `user`'s live sessions but `keep` (if given), and their refresh tokens, with
/// `reason`; returns how many sessions ended.
pub(super) async fn end_sessions(
    tx: &mut Tx,
    user: UserId,
    keep: Option<&str>,
    reason: &str,
    now: Timestamp,
) -> Result<u64, StoreError> {
    let ended = sqlx::query(
        "UPDATE sessions SET revoked_at = $1, revoked_reason = $2 \
         WHERE user_id = $3 AND revoked_at IS NULL AND expires_at > $1 \
         AND ($4 IS NULL OR id <> $4)",
    )
    .bind(now.micros())
    .bind(reason)
    .bind(user.to_string())
    .bind(keep)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    sqlx::query(
        "UPDATE refresh_tokens SET revoked_at = $1 WHERE revoked_at IS NULL \
         AND session_id IN (SELECT id FROM sessions WHERE user_id = $2 AND revoked_at IS NOT NULL)",
    )
    .bind(now.micros())
    .bind(user.to_string())
    .execute(&mut **tx)
    .await?;
    Ok(ended)
}

pub(super) async fn revoke_jti(
    tx: &mut Tx,
    jti: &str,
    user: &str,
    reason: &str,
    now: Timestamp,
    expires: Timestamp,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO revoked_tokens (jti, user_id, reason, revoked_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (jti) DO NOTHING",
    )
    .bind(jti)
    .bind(user)
    .bind(reason)
    .bind(now.micros())
    .bind(expires.micros())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

pub(super) async fn purge_revocations(store: &Store, now: Timestamp) -> Result<u64, StoreError> {
    Ok(
        sqlx::query("DELETE FROM revoked_tokens WHERE expires_at < $1")
            .bind(now.micros())
            .execute(store.pool())
            .await?
            .rows_affected(),
    )
}

/// What token verification checks in the database, in one single-row round trip: the
/// account's status, whether the jti is revoked, whether the session is live, and whether the
/// account holds exactly the `claimed` roles.
pub(super) struct TokenFacts {
    pub status: Option<String>,
    pub jti_revoked: bool,
    pub session_live: bool,
    pub roles_match: bool,
    /// The session's end, if not revoked.
    pub session_expires_at: Option<i64>,
    /// The session's last recorded use, if not revoked.
    pub last_seen_at: Option<i64>,
    /// The session's idle timeout (0 if there is no such session).
    pub idle_timeout_secs: i64,
    /// The authorisation epoch these facts were read at.
    pub epoch: i64,
    /// A step-up requirement in force placed after the session began.
    pub step_up_required: bool,
}

pub(super) async fn token_facts(
    store: &Store,
    user: &str,
    jti: &str,
    session: &str,
    claimed: &[String],
    now: Timestamp,
) -> Result<TokenFacts, StoreError> {
    let marks: Vec<String> = (0..claimed.len()).map(|i| format!("${}", i + 5)).collect();
    let held = if claimed.is_empty() {
        "0".to_owned()
    } else {
        format!(
            "(SELECT COUNT(*) FROM user_roles WHERE user_id = $1 AND role IN ({}))",
            marks.join(", ")
        )
    };
    let sql = format!(
        "SELECT (SELECT status FROM users WHERE id = $1), \
           (SELECT COUNT(*) FROM revoked_tokens WHERE jti = $2), \
           (SELECT COUNT(*) FROM sessions WHERE id = $3 AND user_id = $1 \
              AND revoked_at IS NULL AND expires_at > $4), \
           (SELECT COUNT(*) FROM user_roles WHERE user_id = $1), {held}, \
           (SELECT expires_at FROM sessions WHERE id = $3 AND user_id = $1 AND revoked_at IS NULL), \
           (SELECT epoch FROM auth_epoch WHERE id = 1), \
           (SELECT COUNT(*) FROM user_restrictions r WHERE r.user_id = $1 \
              AND r.kind = 'step_up' AND r.lifted_at IS NULL \
              AND (r.expires_at IS NULL OR r.expires_at > $4) \
              AND r.created_at >= (SELECT created_at FROM sessions WHERE id = $3)), \
           (SELECT last_seen_at FROM sessions WHERE id = $3 AND user_id = $1 AND revoked_at IS NULL), \
           (SELECT idle_timeout_secs FROM sessions WHERE id = $3 AND user_id = $1)"
    );
    let mut q = sqlx::query(&sql)
        .bind(user)
        .bind(jti)
        .bind(session)
        .bind(now.micros());
    for r in claimed {
        q = q.bind(r.as_str());
    }
    let row = q.fetch_one(store.pool()).await?;
    let all: i64 = row.try_get(3)?;
    let held: i64 = row.try_get(4)?;
    Ok(TokenFacts {
        status: row.try_get(0)?,
        jti_revoked: row.try_get::<i64, _>(1)? > 0,
        session_live: row.try_get::<i64, _>(2)? > 0,
        roles_match: all == claimed.len() as i64 && held == all,
        session_expires_at: row.try_get(5)?,
        epoch: row.try_get(6)?,
        step_up_required: row.try_get::<i64, _>(7)? > 0,
        last_seen_at: row.try_get(8)?,
        idle_timeout_secs: row.try_get::<Option<i64>, _>(9)?.unwrap_or(0),
    })
}

/// The current authorisation epoch, read on `conn`.
pub(super) async fn auth_epoch(conn: &mut sqlx::AnyConnection) -> Result<i64, StoreError> {
    Ok(sqlx::query("SELECT epoch FROM auth_epoch WHERE id = 1")
        .fetch_one(conn)
        .await?
        .try_get(0)?)
}

/// A connection of its own, for a hot path that should not queue on the pool.
pub(super) async fn dedicated(
    store: &Store,
) -> Result<sqlx::pool::PoolConnection<sqlx::Any>, StoreError> {
    Ok(store.pool().acquire().await?)
}

pub(super) async fn roles_and_status(
    store: &Store,
    user: &str,
) -> Result<(Option<String>, Vec<String>), StoreError> {
    let status: Option<String> = sqlx::query("SELECT status FROM users WHERE id = $1")
        .bind(user)
        .fetch_optional(store.pool())
        .await?
        .map(|r| r.try_get(0))
        .transpose()?;
    let roles = sqlx::query("SELECT role FROM user_roles WHERE user_id = $1 ORDER BY role")
        .bind(user)
        .fetch_all(store.pool())
        .await?
        .iter()
        .filter_map(|r| r.try_get::<String, _>(0).ok())
        .collect();
    Ok((status, roles))
}

/// One operator account, for lists and detail views (no personal data).
pub(super) struct AccountRow {
    pub id: String,
    pub username: String,
    pub status: String,
    pub mfa_enabled: bool,
    pub must_change_password: bool,
    pub locked_until: Option<i64>,
    pub created_at: i64,
    pub last_login_at: Option<i64>,
    pub roles: Vec<String>,
}

/// Operator accounts, filtered, ordered by username, one page.
pub(super) async fn list_accounts(
    store: &Store,
    role: Option<&str>,
    status: Option<&str>,
    mfa: Option<bool>,
    limit: i64,
    offset: i64,
) -> Result<Vec<AccountRow>, StoreError> {
    let rows = sqlx::query(
        "SELECT u.id, u.username, u.status, u.mfa_enabled, u.must_change_password, \
         u.locked_until, u.created_at, u.last_login_at FROM users u \
         WHERE u.kind IN ('operator', 'service') \
         AND ($1 IS NULL OR EXISTS (SELECT 1 FROM user_roles r WHERE r.user_id = u.id AND r.role = $1)) \
         AND ($2 IS NULL OR u.status = $2) \
         AND ($3 IS NULL OR u.mfa_enabled = $3) \
         ORDER BY u.username LIMIT $4 OFFSET $5",
    )
    .bind(role)
    .bind(status)
    .bind(mfa)
    .bind(limit)
    .bind(offset)
    .fetch_all(store.pool())
    .await?;
    let ids: Vec<String> = rows
        .iter()
        .map(|r| r.try_get(0))
        .collect::<Result<_, _>>()?;
    let mut conn = store.pool().acquire().await?;
    let mut roles = roles_of(
        &mut conn,
        &ids.iter().map(String::as_str).collect::<Vec<_>>(),
    )
    .await?;
    let mut out = Vec::with_capacity(rows.len());
    for (r, id) in rows.iter().zip(ids) {
        let roles = roles.remove(&id).unwrap_or_default();
        out.push(AccountRow {
            id,
            username: r.try_get(1)?,
            status: r.try_get(2)?,
            mfa_enabled: flag(r, 3)?,
            must_change_password: flag(r, 4)?,
            locked_until: r.try_get(5)?,
            created_at: r.try_get(6)?,
            last_login_at: r.try_get(7)?,
            roles,
        });
    }
    Ok(out)
}

pub(super) async fn set_roles(
    tx: &mut Tx,
    id: UserId,
    roles: &[Role],
    now: Timestamp,
) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM user_roles WHERE user_id = $1")
        .bind(id.to_string())
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

/// Active administrators other than `except`.
pub(super) async fn other_active_admins(tx: &mut Tx, except: UserId) -> Result<i64, StoreError> {
    Ok(sqlx::query(
        "SELECT COUNT(*) FROM users u JOIN user_roles r ON r.user_id = u.id \
         WHERE r.role = 'admin' AND u.status = 'active' AND u.id <> $1",
    )
    .bind(except.to_string())
    .fetch_one(&mut **tx)
    .await?
    .try_get(0)?)
}

pub(super) async fn set_status(
    tx: &mut Tx,
    id: UserId,
    status: &str,
    now: Timestamp,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE users SET status = $1, updated_at = $2 WHERE id = $3")
        .bind(status)
        .bind(now.micros())
        .bind(id.to_string())
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// One session, for `sessions list`.
pub(super) struct SessionRow {
    pub id: String,
    pub username: String,
    pub client: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub revoked_at: Option<i64>,
}

pub(super) async fn list_sessions(
    store: &Store,
    user: Option<UserId>,
    now: Timestamp,
) -> Result<Vec<SessionRow>, StoreError> {
    let rows = sqlx::query(
        "SELECT s.id, u.username, s.client, s.created_at, s.expires_at, s.revoked_at \
         FROM sessions s JOIN users u ON u.id = s.user_id \
         WHERE ($1 IS NULL OR s.user_id = $1) AND s.expires_at > $2 \
         ORDER BY s.created_at DESC LIMIT 500",
    )
    .bind(user.map(|u| u.to_string()))
    .bind(now.micros())
    .fetch_all(store.pool())
    .await?;
    rows.iter()
        .map(|r| {
            Ok(SessionRow {
                id: r.try_get(0)?,
                username: r.try_get(1)?,
                client: r.try_get(2)?,
                created_at: r.try_get(3)?,
                expires_at: r.try_get(4)?,
                revoked_at: r.try_get(5)?,
            })
        })
        .collect::<Result<_, sqlx::Error>>()
        .map_err(StoreError::from)
}

pub(super) async fn session_owner(tx: &mut Tx, id: &str) -> Result<Option<String>, StoreError> {
    Ok(sqlx::query("SELECT user_id FROM sessions WHERE id = $1")
        .bind(id)
        .fetch_optional(&mut **tx)
        .await?
        .map(|r| r.try_get(0))
        .transpose()?)
}

/// Filters of the account directory; `None` means any.
#[derive(Default)]
pub(super) struct DirectoryFilter<'a> {
    pub kind: Option<&'a str>,
    pub role: Option<&'a str>,
    pub status: Option<&'a str>,
    pub mfa: Option<bool>,
    /// A LIKE pattern with `\` as the escape character.
    pub username_like: Option<String>,
    pub id: Option<String>,
}

/// One account of any kind.
pub(super) struct DirectoryRow {
    pub id: String,
    pub username: String,
    pub display_name: String,
    pub kind: String,
    pub status: String,
    pub mfa_enabled: bool,
    pub country: Option<String>,
    pub must_change_password: bool,
    pub locked_until: Option<i64>,
    pub created_at: i64,
    pub last_login_at: Option<i64>,
    pub roles: Vec<String>,
}

const DIRECTORY_WHERE: &str = "WHERE ($1 IS NULL OR u.kind = $1) \
     AND ($2 IS NULL OR EXISTS (SELECT 1 FROM user_roles r WHERE r.user_id = u.id AND r.role = $2)) \
     AND ($3 IS NULL OR u.status = $3) \
     AND ($4 IS NULL OR u.mfa_enabled = $4) \
     AND ($5 IS NULL OR u.username LIKE $5 ESCAPE '\\') \
     AND ($6 IS NULL OR u.id = $6)";

/// One page of accounts by username, and the number matching in all.
pub(super) async fn directory(
    store: &Store,
    f: &DirectoryFilter<'_>,
    limit: i64,
    offset: i64,
) -> Result<(Vec<DirectoryRow>, u64), StoreError> {
    let mut conn = store.pool().acquire().await?;
    let total: i64 = sqlx::query(&format!("SELECT COUNT(*) FROM users u {DIRECTORY_WHERE}"))
        .bind(f.kind)
        .bind(f.role)
        .bind(f.status)
        .bind(f.mfa)
        .bind(f.username_like.as_deref())
        .bind(f.id.as_deref())
        .fetch_one(&mut *conn)
        .await?
        .try_get(0)?;
    let rows = sqlx::query(&format!(
        "SELECT u.id, u.username, u.display_name, u.kind, u.status, u.mfa_enabled, u.country, \
         u.must_change_password, u.locked_until, u.created_at, u.last_login_at \
         FROM users u {DIRECTORY_WHERE} ORDER BY u.username LIMIT $7 OFFSET $8"
    ))
    .bind(f.kind)
    .bind(f.role)
    .bind(f.status)
    .bind(f.mfa)
    .bind(f.username_like.as_deref())
    .bind(f.id.as_deref())
    .bind(limit)
    .bind(offset)
    .fetch_all(&mut *conn)
    .await?;
    let ids: Vec<String> = rows
        .iter()
        .map(|r| r.try_get(0))
        .collect::<Result<_, _>>()?;
    let mut roles = roles_of(
        &mut conn,
        &ids.iter().map(String::as_str).collect::<Vec<_>>(),
    )
    .await?;
    let mut out = Vec::with_capacity(rows.len());
    for (r, id) in rows.iter().zip(ids) {
        let kind: String = r.try_get(3)?;
        let roles = roles.remove(&id).unwrap_or_default();
        out.push(DirectoryRow {
            id,
            username: r.try_get(1)?,
            display_name: r.try_get(2)?,
            kind,
            status: r.try_get(4)?,
            mfa_enabled: flag(r, 5)?,
            country: r.try_get(6)?,
            must_change_password: flag(r, 7)?,
            locked_until: r.try_get(8)?,
            created_at: r.try_get(9)?,
            last_login_at: r.try_get(10)?,
            roles,
        });
    }
    Ok((out, u64::try_from(total).unwrap_or(0)))
}
