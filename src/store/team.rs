//! Team mode: the Postgres-only part of the store, in one place.
//!
//! On a shared Postgres database each operator connects as their own login role, a member of
//! the group roles of their Vigil roles (migrations/postgres/0009_team_roles.sql). This module
//! grants each group the privileges the permission table gives it ([`apply`], run by the
//! owner at every migration), tells an operator's connection from the owner's, and calls the
//! `SECURITY DEFINER` functions through which operators append to the audit log, read their
//! own password hash, set passwords and get database logins. Nothing here runs on SQLite.

use sha2::{Digest, Sha256};
use sqlx::{AnyPool, Row};

use super::privileges::{role_grants, Privilege, GROUP_ROLES};
use super::{StoreError, Tx};
use crate::identity::{role_allows, role_holds, Permission, Purpose, Role};

/// The definer functions an operator's login may call. Each checks the caller itself.
pub const OPERATOR_FUNCTIONS: &[&str] = &[
    "vigil_group(text)",
    "vigil_session_is_owner()",
    "vigil_session_user_id()",
    "vigil_session_may(text)",
    "vigil_is_platform_account(text)",
    "vigil_may_touch_sessions_of(text)",
    "vigil_may_touch_session(text)",
    "vigil_audit_text(text)",
    "vigil_audit_append(text, text, text, text, bigint, text, text)",
    "vigil_security_event_append(text, text, text, text, text, text, text, bigint)",
    "vigil_notice_add(text, text, text, text, bigint)",
    "vigil_audit_retire(bigint, bigint, bytea)",
    "vigil_password_hash(text)",
    "vigil_credential_key(text)",
    "vigil_password_set_at_creation(text)",
    "vigil_set_password(text, text, bytea, boolean, bigint)",
    "vigil_set_credential_key(text, text, bytea, bytea)",
    "vigil_create_login(text, text, bigint)",
    "vigil_account_holds(text, text)",
    "vigil_session_holds(text)",
    "vigil_insert_grant(text, text, bytea, text, bigint)",
    "vigil_delete_retired_grants(text)",
    "vigil_drop_unused_totp_keys()",
    "vigil_end_connections(text)",
    "vigil_activity_partition_ensure(bigint)",
];

/// The definer functions only the groups holding a permission may call (each checks the
/// permission itself too): dropping a month of activity is retention's.
pub const PERMISSION_FUNCTIONS: &[(&str, Permission)] = &[(
    "vigil_activity_partition_drop(bigint, bigint)",
    Permission::RetentionManage,
)];

/// Advisory lock key serialising [`apply`] between owners migrating at once (concurrent GRANTs
/// on one table fail with "tuple concurrently updated").
const APPLY_LOCK: i64 = 0x5649_4749_4c54_4541; // "VIGILTEA"

/// Whether this connection is an operator's own login rather than the database owner's: the
/// schema exists and the current user does not own it.
pub(super) async fn is_operator_login(pool: &AnyPool) -> Result<bool, StoreError> {
    let row = sqlx::query(
        "SELECT CASE WHEN to_regclass('public._sqlx_migrations') IS NULL THEN FALSE \
         ELSE NOT pg_has_role(current_user, (SELECT relowner FROM pg_class \
              WHERE oid = to_regclass('public._sqlx_migrations')), 'USAGE') END",
    )
    .fetch_one(pool)
    .await?;
    Ok(row.try_get::<bool, _>(0)?)
}

/// Migrations an operator's connection finds missing (it cannot apply them itself).
pub(super) async fn missing_migrations(
    pool: &AnyPool,
    migrator: &sqlx::migrate::Migrator,
) -> Result<Vec<i64>, StoreError> {
    let applied: Vec<i64> = sqlx::query("SELECT version FROM _sqlx_migrations WHERE success")
        .fetch_all(pool)
        .await?
        .iter()
        .map(|r| r.try_get::<i64, _>(0))
        .collect::<Result<_, _>>()?;
    Ok(migrator
        .iter()
        .map(|m| m.version)
        .filter(|v| !applied.contains(v))
        .collect())
}

fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// The group role of a Vigil role, given the database's prefix.
pub fn group_name(prefix: &str, role: Role) -> String {
    format!("{prefix}_{}", role.as_str())
}

/// The statements that give every group exactly its privileges, and define
/// `vigil_session_may` from the permission table.
pub fn privilege_statements(prefix: &str) -> Vec<String> {
    let mut out = Vec::new();
    out.push("REVOKE ALL ON ALL FUNCTIONS IN SCHEMA public FROM PUBLIC".to_owned());
    for role in GROUP_ROLES {
        let g = ident(&group_name(prefix, role));
        out.push(format!(
            "REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {g}"
        ));
        out.push(format!("GRANT USAGE ON SCHEMA public TO {g}"));
        for f in OPERATOR_FUNCTIONS {
            out.push(format!("GRANT EXECUTE ON FUNCTION {f} TO {g}"));
        }
        for (f, p) in PERMISSION_FUNCTIONS {
            out.push(if role_allows(role, *p) {
                format!("GRANT EXECUTE ON FUNCTION {f} TO {g}")
            } else {
                format!("REVOKE EXECUTE ON FUNCTION {f} FROM {g}")
            });
        }
        let grants = role_grants(role);
        let mut tables: Vec<&str> = grants.iter().map(|(t, _, _)| *t).collect();
        tables.dedup();
        for table in tables {
            let whole: Vec<&str> = grants
                .iter()
                .filter(|(t, _, c)| *t == table && c.is_none())
                .map(|(_, p, _)| p.as_sql())
                .collect();
            if !whole.is_empty() {
                out.push(format!(
                    "GRANT {} ON {} TO {g}",
                    whole.join(", "),
                    ident(table)
                ));
            }
            for p in [
                Privilege::Select,
                Privilege::Insert,
                Privilege::Update,
                Privilege::Delete,
            ] {
                let cols: Vec<String> = grants
                    .iter()
                    .filter(|(t, q, c)| *t == table && *q == p && c.is_some())
                    .map(|(_, _, c)| ident(c.unwrap_or_default()))
                    .collect();
                if !cols.is_empty() {
                    out.push(format!(
                        "GRANT {} ({}) ON {} TO {g}",
                        p.as_sql(),
                        cols.join(", "),
                        ident(table)
                    ));
                }
            }
        }
    }
    let mut pairs = Vec::new();
    for p in Permission::ALL {
        for role in GROUP_ROLES {
            if role_allows(role, p) {
                pairs.push(format!("('{}', '{}')", p.as_str(), role.as_str()));
            }
        }
    }
    out.push(format!(
        "CREATE OR REPLACE FUNCTION vigil_session_may(permission TEXT) RETURNS BOOLEAN \
         LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $fn$ \
         SELECT vigil_session_is_owner() OR EXISTS (SELECT 1 FROM (VALUES {}) AS p(permission, vigil_role) \
         WHERE p.permission = $1 AND pg_has_role(session_user, vigil_group(p.vigil_role), 'MEMBER')) $fn$",
        pairs.join(", ")
    ));
    let mut holds = Vec::new();
    for p in Purpose::ALL {
        for role in GROUP_ROLES {
            if role_holds(role, p) {
                holds.push(format!("('{}', '{}')", role.as_str(), p.as_str()));
            }
        }
    }
    // An account holds a purpose while active (or only locked out) by its roles, or as the
    // first administrator while they keep a live wrap of it (or of `pii`, during the split).
    out.push(format!(
        "CREATE OR REPLACE FUNCTION vigil_account_holds(p_user_id TEXT, p_purpose TEXT) \
         RETURNS BOOLEAN LANGUAGE sql STABLE SECURITY DEFINER \
         SET search_path = public, pg_temp AS $fn$ \
         SELECT EXISTS (SELECT 1 FROM users WHERE id = $1 AND status IN ('active', 'locked')) \
         AND (EXISTS (SELECT 1 FROM user_roles r JOIN (VALUES {}) AS h(vigil_role, purpose) \
                      ON h.vigil_role = r.role WHERE r.user_id = $1 AND h.purpose = $2) \
              OR (EXISTS (SELECT 1 FROM app_meta WHERE key = 'first_admin' AND value = $1) \
                  AND EXISTS (SELECT 1 FROM key_grants g \
                              JOIN user_keys k ON k.id = g.user_key_id \
                              JOIN data_keys d ON d.id = g.data_key_id \
                              WHERE k.user_id = $1 AND k.retired_at IS NULL \
                              AND d.status <> 'retired' AND d.purpose IN ($2, 'pii')))) $fn$",
        holds.join(", ")
    ));
    out
}

/// Grants every group its privileges (run by the owner after migrating). Skipped when the
/// privileges granted last time came from the same table.
pub(super) async fn apply(pool: &AnyPool) -> Result<(), StoreError> {
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(APPLY_LOCK)
        .execute(&mut *tx)
        .await?;
    let prefix = role_prefix(&mut tx).await?;
    if !ensure_groups(&mut tx, &prefix).await? {
        // An owner without CREATEROLE: single-login use goes on; team mode waits.
        tracing::warn!(
            "team mode is off: the database owner may not create roles (grant it CREATEROLE, \
             then run `vigil migrate`)"
        );
        return Ok(());
    }
    let statements = privilege_statements(&prefix);
    // A later migration's new tables and functions need the statements run again too.
    let migrations: String = sqlx::query(
        "SELECT COALESCE(string_agg(version::TEXT, ',' ORDER BY version), '') FROM _sqlx_migrations",
    )
    .fetch_one(&mut *tx)
    .await?
    .try_get(0)?;
    let digest = hex::encode(Sha256::digest(
        format!("{migrations}\n{}", statements.join(";\n")).as_bytes(),
    ));
    let current: Option<String> =
        sqlx::query("SELECT value FROM app_meta WHERE key = 'team_privileges'")
            .fetch_optional(&mut *tx)
            .await?
            .map(|r| r.try_get(0))
            .transpose()?;
    if current.as_deref() == Some(digest.as_str()) {
        return Ok(());
    }
    for s in &statements {
        sqlx::query(s).execute(&mut *tx).await?;
    }
    sqlx::query(
        "INSERT INTO app_meta (key, value, updated_at) VALUES ('team_privileges', $1, $2) \
         ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
    )
    .bind(&digest)
    .bind(super::Timestamp::now().micros())
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    tracing::info!(
        statements = statements.len(),
        "granted team-mode privileges"
    );
    Ok(())
}

/// Creates the group roles that are missing, if the owner may; whether all exist now.
async fn ensure_groups(tx: &mut Tx, prefix: &str) -> Result<bool, StoreError> {
    let may_create: bool =
        sqlx::query("SELECT rolsuper OR rolcreaterole FROM pg_roles WHERE rolname = current_user")
            .fetch_optional(&mut **tx)
            .await?
            .map(|r| r.try_get(0))
            .transpose()?
            .unwrap_or(false);
    for role in GROUP_ROLES {
        let name = group_name(prefix, role);
        let exists = sqlx::query("SELECT 1 FROM pg_roles WHERE rolname = $1")
            .bind(&name)
            .fetch_optional(&mut **tx)
            .await?
            .is_some();
        if !exists {
            if !may_create {
                return Ok(false);
            }
            sqlx::query(&format!("CREATE ROLE {} NOLOGIN", ident(&name)))
                .execute(&mut **tx)
                .await?;
        }
    }
    Ok(true)
}

async fn role_prefix(tx: &mut Tx) -> Result<String, StoreError> {
    sqlx::query("SELECT value FROM app_meta WHERE key = 'team_role_prefix'")
        .fetch_optional(&mut **tx)
        .await?
        .map(|r| r.try_get::<String, _>(0))
        .transpose()?
        .ok_or(StoreError::Corrupt("team_role_prefix"))
}

/// Whether team mode is set up on this database: a Postgres database whose group roles exist
/// (an owner without CREATEROLE leaves them out, and everyone keeps using the owner's login).
pub async fn enabled(store: &super::Store) -> Result<bool, StoreError> {
    if store.backend() != super::Backend::Postgres {
        return Ok(false);
    }
    let n: i64 = sqlx::query(
        "SELECT COUNT(*) FROM pg_roles WHERE rolname IN (SELECT vigil_group(r) \
         FROM unnest(ARRAY['moderator', 'compliance_officer', 'admin', 'service']) AS r)",
    )
    .fetch_one(store.pool())
    .await?
    .try_get(0)?;
    Ok(n == GROUP_ROLES.len() as i64)
}

/// This database's prefix for role names (`<prefix>_moderator`, `<prefix>_u_<username>`).
pub async fn prefix(store: &super::Store) -> Result<String, StoreError> {
    let mut tx = store.pool().begin().await?;
    role_prefix(&mut tx).await
}

/// Appends an audit entry through `vigil_audit_append` (which hashes it onto the chain).
#[allow(clippy::too_many_arguments)]
pub(crate) async fn audit_append(
    tx: &mut Tx,
    actor: &str,
    action: &str,
    target: Option<&str>,
    details: &str,
    at: i64,
    outcome: &str,
    session_id: Option<&str>,
) -> Result<i64, StoreError> {
    Ok(
        sqlx::query("SELECT vigil_audit_append($1, $2, $3, $4, $5, $6, $7)")
            .bind(actor)
            .bind(action)
            .bind(target)
            .bind(details)
            .bind(at)
            .bind(outcome)
            .bind(session_id)
            .fetch_one(&mut **tx)
            .await?
            .try_get(0)?,
    )
}

/// Retires archived audit entries through `vigil_audit_retire`.
pub(crate) async fn audit_retire(
    tx: &mut Tx,
    first: i64,
    last: i64,
    last_hash: &[u8],
) -> Result<bool, StoreError> {
    Ok(sqlx::query("SELECT vigil_audit_retire($1, $2, $3)")
        .bind(first)
        .bind(last)
        .bind(last_hash.to_vec())
        .fetch_one(&mut **tx)
        .await?
        .try_get(0)?)
}

/// The SQL expression that reads an account's password hash, for a query over `users u`:
/// only the session's own (or any, for the owner).
pub(crate) const PASSWORD_HASH_EXPR: &str = "vigil_password_hash(u.id)";

/// The same for the credential key sealed with the account's password.
pub(crate) const CREDENTIAL_KEY_EXPR: &str = "vigil_credential_key(u.id)";

/// Stores a password hash and the credential key sealed with it through `vigil_set_password`.
pub(crate) async fn set_password(
    tx: &mut Tx,
    user_id: &str,
    hash: &str,
    credential_key: Option<&[u8]>,
    must_change: bool,
    at: i64,
) -> Result<(), StoreError> {
    sqlx::query("SELECT vigil_set_password($1, $2, $3, $4, $5)")
        .bind(user_id)
        .bind(hash)
        .bind(credential_key)
        .bind(must_change)
        .bind(at)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Stores one's own credential key through `vigil_set_credential_key`, if the password is still
/// `hash` and the sealed key still `replaces`; false if either changed meanwhile.
pub(crate) async fn set_credential_key(
    store: &super::Store,
    user_id: &str,
    hash: &str,
    replaces: Option<&[u8]>,
    sealed: &[u8],
) -> Result<bool, StoreError> {
    Ok(
        sqlx::query("SELECT vigil_set_credential_key($1, $2, $3, $4)")
            .bind(user_id)
            .bind(hash)
            .bind(replaces)
            .bind(sealed)
            .fetch_one(store.pool())
            .await?
            .try_get(0)?,
    )
}

/// Creates (or gives a new password to) an account's database login; returns its name.
pub(crate) async fn create_login(
    tx: &mut Tx,
    user_id: &str,
    password: &str,
    at: i64,
) -> Result<String, StoreError> {
    Ok(sqlx::query("SELECT vigil_create_login($1, $2, $3)")
        .bind(user_id)
        .bind(scram_verifier(password))
        .bind(at)
        .fetch_one(&mut **tx)
        .await?
        .try_get(0)?)
}

/// Ends the connections of an account that may no longer act; returns how many.
pub(crate) async fn end_connections(
    store: &super::Store,
    user_id: &str,
) -> Result<i64, StoreError> {
    Ok(sqlx::query("SELECT vigil_end_connections($1)::BIGINT")
        .bind(user_id)
        .fetch_one(store.pool())
        .await?
        .try_get(0)?)
}

/// The database login of an account, if it has one.
pub async fn login_of(store: &super::Store, user_id: &str) -> Result<Option<String>, StoreError> {
    Ok(
        sqlx::query("SELECT db_role FROM operator_logins WHERE user_id = $1")
            .bind(user_id)
            .fetch_optional(store.pool())
            .await?
            .map(|r| r.try_get(0))
            .transpose()?,
    )
}

/// The keystore entry holding an operator's database password: filed under an id made from
/// the database user and the server and database it is for (the operator's account id is
/// not known before connecting), named `database-password`.
pub fn password_entry(
    url: &super::DatabaseUrl,
) -> Option<(uuid::Uuid, crate::keystore::SecretName)> {
    let user = url.postgres_user()?;
    let target = url.postgres_target()?;
    let digest = Sha256::digest(format!("vigil.database-login\0{user}\0{target}").as_bytes());
    let mut id = [0u8; 16];
    id.copy_from_slice(&digest[..16]);
    let name = crate::keystore::SecretName::parse("database-password").ok()?;
    Some((uuid::Uuid::from_bytes(id), name))
}

/// Keeps an operator's database password in their keystore (never in the config file).
pub fn remember_password(
    keystore: &dyn crate::keystore::Keystore,
    url: &super::DatabaseUrl,
    password: &str,
) -> Result<bool, crate::keystore::KeystoreError> {
    let Some((id, name)) = password_entry(url) else {
        return Ok(false);
    };
    keystore.put(id, &name, password.as_bytes())?;
    Ok(true)
}

/// The URL to connect with: unchanged if it has a password or names no Postgres user, else
/// with the password remembered in the keystore for that user and database, if any.
pub fn with_remembered_password(
    keystore: &dyn crate::keystore::Keystore,
    url: &super::DatabaseUrl,
) -> Result<super::DatabaseUrl, crate::keystore::KeystoreError> {
    if url.has_password() {
        return Ok(url.clone());
    }
    let Some((id, name)) = password_entry(url) else {
        return Ok(url.clone());
    };
    Ok(match keystore.get(id, &name)? {
        Some(secret) => {
            let password =
                zeroize::Zeroizing::new(String::from_utf8_lossy(secret.expose()).into_owned());
            url.with_password(&password).unwrap_or_else(|| url.clone())
        }
        None => url.clone(),
    })
}

/// Iterations of the SCRAM verifier (Postgres' default).
const SCRAM_ITERATIONS: u32 = 4096;

/// A SCRAM-SHA-256 verifier for `password` (RFC 5802 §3, RFC 7677), in the form Postgres
/// stores: `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`. Handing Postgres the
/// verifier rather than the password keeps the password out of the server and its logs. The
/// passwords Vigil makes are ASCII, for which SASLprep changes nothing.
pub fn scram_verifier(password: &str) -> String {
    use base64::Engine as _;
    use hmac::{Hmac, Mac};
    use rand::RngCore;
    type HmacSha256 = Hmac<Sha256>;
    let mut salt = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut salt);
    let hmac = |key: &[u8], msg: &[u8]| -> [u8; 32] {
        let mut m = HmacSha256::new_from_slice(key).expect("HMAC takes any key length");
        m.update(msg);
        m.finalize().into_bytes().into()
    };
    // PBKDF2-HMAC-SHA-256 with one output block (RFC 8018 §5.2).
    let mut block = salt.to_vec();
    block.extend_from_slice(&1u32.to_be_bytes());
    let mut u = hmac(password.as_bytes(), &block);
    let mut salted = u;
    for _ in 1..SCRAM_ITERATIONS {
        u = hmac(password.as_bytes(), &u);
        for (s, x) in salted.iter_mut().zip(u.iter()) {
            *s ^= x;
        }
    }
    let client_key = hmac(&salted, b"Client Key");
    let stored_key = Sha256::digest(client_key);
    let server_key = hmac(&salted, b"Server Key");
    let b64 = base64::engine::general_purpose::STANDARD;
    format!(
        "SCRAM-SHA-256${SCRAM_ITERATIONS}:{}${}:{}",
        b64.encode(salt),
        b64.encode(stored_key),
        b64.encode(server_key)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scram_verifier_has_postgres_form() {
        let v = scram_verifier("correct horse battery staple");
        let (head, keys) = v.rsplit_once('$').unwrap();
        assert!(head.starts_with("SCRAM-SHA-256$4096:"), "{v}");
        assert_eq!(keys.split(':').count(), 2);
        assert_ne!(v, scram_verifier("correct horse battery staple"), "salted");
    }

    #[test]
    fn statements_never_grant_rewriting_the_audit_log() {
        for s in privilege_statements("db") {
            if s.starts_with("GRANT") && s.contains("\"audit_log\"") {
                assert_eq!(
                    s,
                    format!(
                        "GRANT SELECT ON \"audit_log\" TO {}",
                        &s[s.find(" TO ").unwrap() + 4..]
                    )
                );
            }
        }
    }
}
