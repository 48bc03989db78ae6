//! Team mode on Postgres: each operator connects as their own database login, and Postgres
//! itself refuses what their roles do not allow, whatever client they run. Every refusal here
//! is tried over the operator's own login, never the owner's.

mod common;
#[path = "common/smtp.rs"]
mod smtp;

use std::collections::BTreeSet;
use std::ops::ControlFlow;

use common::{TestDb, PASSWORD};
use sqlx::{Connection, PgConnection, PgPool, Row};
use vigil::auth::users::{self, DatabaseLogin};
use vigil::auth::{self, Actor};
use vigil::crypto::KeyBits;
use vigil::incidents::{self, QueueFilter};
use vigil::keys::{self, keystore::FileKeystore, Purpose};
use vigil::privacy::{self, RequestKind, SubjectRef};
use vigil::rbac::privileges::{role_grants, GROUP_ROLES};
use vigil::rbac::{purposes_of, Role};
use vigil::store::{team, DatabaseUrl, Store, StoreOptions};

/// A team database: the owner's store, and the first administrator signed in over their own
/// database login.
struct Team {
    db: TestDb,
    admin: Actor,
    admin_store: Store,
    admin_login: DatabaseLogin,
}

/// One operator working over their own login.
struct Operator {
    actor: Actor,
    store: Store,
    login: DatabaseLogin,
}

/// The test database's URL with the operator's database user and password instead of the
/// owner's.
fn url_as(db: &TestDb, login: &DatabaseLogin) -> String {
    url_with(db, &login.user, login.password())
}

fn url_with(db: &TestDb, user: &str, password: &str) -> String {
    let mut url = url::Url::parse(&db.raw_url).unwrap();
    url.set_username(user).unwrap();
    url.set_password(Some(password)).unwrap();
    url.to_string()
}

async fn open_as(db: &TestDb, login: &DatabaseLogin) -> Store {
    let url = DatabaseUrl::parse(&url_as(db, login)).unwrap();
    Store::open(&url, &StoreOptions::default())
        .await
        .expect("open the store over the operator's own login")
}

async fn team() -> Team {
    let db = common::postgres().await;
    let owner_admin = common::admin(&db).await;
    let admin_login = users::bootstrap_database_login(&db.store, owner_admin.user_id())
        .await
        .expect("init makes the first administrator's login");
    let admin_store = open_as(&db, &admin_login).await;
    assert!(admin_store.is_operator_login());
    assert!(!db.store.is_operator_login());
    let admin = auth::authenticate(
        &admin_store,
        "root-admin",
        PASSWORD,
        &vigil::auth::MfaPolicy::none(),
    )
    .await
    .expect("the administrator signs in over their own login");
    Team {
        db,
        admin,
        admin_store,
        admin_login,
    }
}

impl Team {
    /// The administrator creates an operator (with their database login) over the
    /// administrator's own login; the operator then signs in over theirs.
    async fn operator(&self, name: &str, roles: &[Role]) -> Operator {
        let (_, login) = users::create_with_database_login(
            &self.admin_store,
            &self.admin,
            name,
            PASSWORD,
            roles,
        )
        .await
        .expect("an administrator creates an operator over their own login");
        let login = login.expect("a database login on Postgres");
        let store = open_as(&self.db, &login).await;
        let actor = auth::authenticate(&store, name, PASSWORD, &vigil::auth::MfaPolicy::none())
            .await
            .expect("the operator signs in over their own login");
        Operator {
            actor,
            store,
            login,
        }
    }

    async fn raw_as(&self, login: &DatabaseLogin) -> PgPool {
        PgPool::connect(&url_as(&self.db, login)).await.unwrap()
    }

    async fn conn_as(&self, login: &DatabaseLogin) -> PgConnection {
        PgConnection::connect(&url_as(&self.db, login))
            .await
            .unwrap()
    }

    async fn owner(&self) -> PgPool {
        PgPool::connect(&self.db.raw_url).await.unwrap()
    }
}

/// A month partition of activity_log (`activity_log_YYYY_MM`) or its default partition.
fn is_activity_partition(table: &str) -> bool {
    table == "activity_log_default" || vigil::store::partitions::month_of_partition(table).is_some()
}

fn sqlstate(e: &sqlx::Error) -> Option<String> {
    e.as_database_error()
        .and_then(|d| d.code())
        .map(|c| c.into_owned())
}

/// Postgres refuses `sql` for lack of privilege (SQLSTATE 42501).
async fn refused<'e, E: sqlx::PgExecutor<'e>>(ex: E, sql: &str) {
    let e = sqlx::query(sql)
        .execute(ex)
        .await
        .expect_err(&format!("Postgres should refuse: {sql}"));
    assert_eq!(sqlstate(&e).as_deref(), Some("42501"), "{sql}: {e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_moderator_cannot_touch_roles_audit_hashes_or_key_grants() {
    let t = team().await;
    let m = t.operator("mod.one", &[Role::Moderator]).await;
    let pool = t.raw_as(&m.login).await;
    let me = m.actor.user_id().to_string();
    let admin = t.admin.user_id().to_string();

    refused(&pool, "UPDATE user_roles SET role = 'admin'").await;
    refused(
        &pool,
        &format!("INSERT INTO user_roles (user_id, role, granted_at) VALUES ('{me}', 'admin', 0)"),
    )
    .await;
    refused(&pool, "UPDATE audit_log SET details = '{}'").await;
    refused(&pool, "DELETE FROM audit_log").await;
    refused(&pool, "INSERT INTO audit_log (seq, at, actor, action, details, prev_hash, hash) VALUES (999, 0, 'x', 'x', '{}', '', '')").await;
    refused(&pool, "UPDATE audit_head SET seq = 0").await;
    refused(&pool, "SELECT password_hash FROM credentials").await;
    refused(&pool, "SELECT * FROM credentials").await;
    refused(&pool, "SELECT credential_key_sealed FROM credentials").await;
    refused(
        &pool,
        &format!("UPDATE credentials SET password_hash = 'x' WHERE user_id = '{admin}'"),
    )
    .await;
    refused(&pool, "DELETE FROM key_grants").await;
    refused(&pool, "UPDATE key_grants SET wrapped_key = ''").await;
    refused(
        &pool,
        "INSERT INTO key_grants (data_key_id, user_key_id, wrapped_key, granted_at) \
         SELECT d.id, k.id, '', 0 FROM data_keys d, user_keys k LIMIT 1",
    )
    .await;
    refused(&pool, "INSERT INTO data_keys (id, purpose, version, status, created_at) VALUES ('x', 'pii', 99, 'active', 0)").await;
    refused(
        &pool,
        "INSERT INTO operator_logins (user_id, db_role, created_at) VALUES ('x', 'postgres', 0)",
    )
    .await;
    refused(&pool, "SELECT * FROM dsr_requests").await;
    // Accounts: no column grant for the kind; the status grant (for suspending platform
    // accounts) reaches neither another operator's row (row-level security) nor one's own
    // beyond the sign-in bookkeeping (a trigger).
    refused(
        &pool,
        &format!("UPDATE users SET kind = 'platform' WHERE id = '{me}'"),
    )
    .await;
    refused(
        &pool,
        &format!("UPDATE users SET status = 'locked' WHERE id = '{me}'"),
    )
    .await;
    let changed = sqlx::query("UPDATE users SET status = 'suspended' WHERE id = $1")
        .bind(&admin)
        .execute(&pool)
        .await
        .unwrap()
        .rows_affected();
    assert_eq!(changed, 0);
    // Nor end another operator's sessions, or open one in their name.
    sqlx::query(
        "INSERT INTO sessions (id, user_id, client, created_at, last_seen_at, expires_at) \
         VALUES ('s-admin', $1, 'desktop', 0, 0, 99999999999999)",
    )
    .bind(&admin)
    .execute(&t.owner().await)
    .await
    .unwrap();
    let (ended,): (i64,) = sqlx::query_as(
        "WITH e AS (UPDATE sessions SET revoked_at = 1 WHERE user_id = $1 RETURNING 1) \
         SELECT COUNT(*) FROM e",
    )
    .bind(&admin)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(ended, 0);
    let e = sqlx::query(
        "INSERT INTO sessions (id, user_id, client, created_at, last_seen_at, expires_at) \
         VALUES ('s-forged', $1, 'x', 0, 0, 99999999999999)",
    )
    .bind(&admin)
    .execute(&pool)
    .await
    .expect_err("a session in another operator's name");
    assert_eq!(sqlstate(&e).as_deref(), Some("42501"), "{e}");

    // Nor can they switch off another operator's second factor.
    let changed = sqlx::query("UPDATE users SET mfa_enabled = FALSE WHERE id = $1")
        .bind(&admin)
        .execute(&pool)
        .await
        .unwrap()
        .rows_affected();
    assert_eq!(changed, 0);
    let changed = sqlx::query("DELETE FROM mfa_secrets WHERE user_id = $1")
        .bind(&admin)
        .execute(&pool)
        .await
        .unwrap()
        .rows_affected();
    assert_eq!(changed, 0);

    // Another account's hash is not shown by the sign-in function, only one's own.
    let theirs: Option<String> = sqlx::query_scalar("SELECT vigil_password_hash($1)")
        .bind(&admin)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(theirs, None);
    let mine: Option<String> = sqlx::query_scalar("SELECT vigil_password_hash($1)")
        .bind(&me)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(mine.is_some_and(|h| h.starts_with("$argon2id$")));
    // Signing in as the administrator over the moderator's login fails, even with the
    // right password: the database login says who is signing in.
    assert!(auth::authenticate(
        &m.store,
        "root-admin",
        PASSWORD,
        &vigil::auth::MfaPolicy::none()
    )
    .await
    .is_err());

    // The audit log takes entries only through the function, and only as oneself.
    refused(
        &pool,
        &format!(
            "SELECT vigil_audit_append('user:{admin}', 'operator.roles_changed', NULL, '{{}}', 0, 'success', NULL)"
        ),
    )
    .await;
    sqlx::query("SELECT vigil_audit_append($1, 'bench.entry', NULL, '{}', 0, 'denied', 's-1')")
        .bind(format!("user:{me}"))
        .execute(&pool)
        .await
        .expect("an operator appends as themselves");
    // Nor can the moderator archive (delete) entries, or give itself a group.
    refused(&pool, "SELECT vigil_audit_retire(1, 2, ''::bytea)").await;
    let admin_group = team::group_name(&team::prefix(&t.db.store).await.unwrap(), Role::Admin);
    refused(&pool, &format!("SET ROLE \"{admin_group}\"")).await;
    refused(&pool, &format!("GRANT \"{admin_group}\" TO CURRENT_USER")).await;
    refused(
        &pool,
        "SELECT vigil_create_login((SELECT id FROM users LIMIT 1), 'SCRAM-SHA-256$4096:x$y:z', 0)",
    )
    .await;

    // Whatever the moderator tried, the chain the function built still verifies.
    let v = vigil::audit::verify_chain(&t.db.store).await.unwrap();
    assert!(matches!(v, vigil::audit::Verification::Ok { .. }), "{v:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_officer_cannot_change_roles() {
    let t = team().await;
    let o = t.operator("officer.one", &[Role::ComplianceOfficer]).await;
    let pool = t.raw_as(&o.login).await;
    let me = o.actor.user_id().to_string();
    let admin = t.admin.user_id().to_string();
    refused(&pool, "UPDATE user_roles SET role = 'admin'").await;
    refused(
        &pool,
        &format!("INSERT INTO user_roles (user_id, role, granted_at) VALUES ('{me}', 'admin', 0)"),
    )
    .await;
    // An officer may delete a platform account's roles during an erasure, but the rows of
    // operators are not theirs to delete: Postgres' row-level security leaves them alone.
    let gone = sqlx::query("DELETE FROM user_roles WHERE user_id = $1")
        .bind(&admin)
        .execute(&pool)
        .await
        .unwrap()
        .rows_affected();
    assert_eq!(gone, 0);
    let gone = sqlx::query("DELETE FROM users WHERE id = $1")
        .bind(&admin)
        .execute(&pool)
        .await
        .unwrap()
        .rows_affected();
    assert_eq!(gone, 0);
    let changed = sqlx::query("UPDATE users SET status = 'suspended' WHERE id = $1")
        .bind(&admin)
        .execute(&pool)
        .await
        .unwrap()
        .rows_affected();
    assert_eq!(changed, 0);
    let roles: Vec<String> = sqlx::query_scalar("SELECT role FROM user_roles WHERE user_id = $1")
        .bind(&admin)
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(roles, ["admin"]);
    // And through the core it is refused before any SQL.
    assert!(
        users::set_roles(&o.store, &o.actor, "root-admin", &[Role::User])
            .await
            .is_err()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_suspended_operator_cannot_connect_and_is_disconnected() {
    let t = team().await;
    let m = t.operator("mod.two", &[Role::Moderator]).await;
    let mut open = t.conn_as(&m.login).await;
    sqlx::query("SELECT COUNT(*) FROM incidents")
        .execute(&mut open)
        .await
        .unwrap();

    users::set_suspended(&t.admin_store, &t.admin, "mod.two", true)
        .await
        .expect("an administrator suspends over their own login");

    // The open connection was ended, and a new one is refused.
    assert!(sqlx::query("SELECT 1").execute(&mut open).await.is_err());
    let e = PgConnection::connect(&url_as(&t.db, &m.login))
        .await
        .expect_err("a suspended operator's login may not connect");
    assert_eq!(sqlstate(&e).as_deref(), Some("28000"), "{e}");
    m.store.close().await;

    // Reinstated, they connect again with their roles back.
    users::set_suspended(&t.admin_store, &t.admin, "mod.two", false)
        .await
        .unwrap();
    let mut again = t.conn_as(&m.login).await;
    sqlx::query("SELECT COUNT(*) FROM incidents")
        .execute(&mut again)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_demoted_moderator_is_refused_at_the_next_statement() {
    let t = team().await;
    let m = t.operator("mod.three", &[Role::Moderator]).await;
    let mut conn = t.conn_as(&m.login).await;
    sqlx::query("SELECT COUNT(*) FROM incidents")
        .execute(&mut conn)
        .await
        .unwrap();
    users::set_roles(&t.admin_store, &t.admin, "mod.three", &[Role::User])
        .await
        .unwrap();
    refused(&mut conn, "SELECT COUNT(*) FROM incidents").await;
    // Promoted to officer, the same connection reads requests but still not incidents' actions.
    users::set_roles(
        &t.admin_store,
        &t.admin,
        "mod.three",
        &[Role::ComplianceOfficer],
    )
    .await
    .unwrap();
    sqlx::query("SELECT COUNT(*) FROM dsr_requests")
        .execute(&mut conn)
        .await
        .unwrap();
    refused(
        &mut conn,
        "INSERT INTO ip_blocks (id, ip, reason, created_at) VALUES ('x', '203.0.113.1', 'r', 0)",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_database_password_is_refused() {
    let t = team().await;
    let e = PgConnection::connect(&url_with(&t.db, &t.admin_login.user, "not-the-password"))
        .await
        .expect_err("a wrong database password must be refused");
    // 28P01: invalid_password. A server that trusts TCP connections accepts anything, so the
    // test script's Postgres authenticates with scram-sha-256 (scripts/lib/postgres.sh).
    assert_eq!(sqlstate(&e).as_deref(), Some("28P01"), "{e}");
    let e = PgConnection::connect(&url_with(&t.db, "nobody_at_all", "x"))
        .await
        .expect_err("an unknown database user must be refused");
    assert!(sqlstate(&e).is_some(), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn normal_work_goes_through_each_operators_own_login() {
    let t = team().await;
    let m = t.operator("mod.four", &[Role::Moderator]).await;
    let o = t.operator("officer.two", &[Role::ComplianceOfficer]).await;

    // A platform account for the officer's request (the platform's own data, loaded by the
    // owner here).
    let owner = t.owner().await;
    sqlx::query(
        "INSERT INTO users (id, username, display_name, kind, status, created_at, updated_at) \
         VALUES ($1, 'pat.platform', 'Pat', 'platform', 'active', 0, 0)",
    )
    .bind(uuid::Uuid::new_v4().to_string())
    .execute(&owner)
    .await
    .unwrap();

    // The moderator lists incidents.
    incidents::list(
        &m.store,
        &m.actor,
        &QueueFilter {
            limit: Some(50),
            ..QueueFilter::default()
        },
    )
    .await
    .expect("a moderator lists incidents over their own login");

    // The officer files a data-subject request.
    let created = privacy::create(
        &o.store,
        None,
        &o.actor,
        RequestKind::Access,
        &SubjectRef::Username("pat.platform".into()),
        privacy::CodeDelivery::Manual,
    )
    .await
    .expect("an officer files a request over their own login");
    privacy::list(&o.store, &o.actor, &Default::default())
        .await
        .expect("and lists requests");
    assert!(created.verification_code.is_some_and(|c| !c.is_empty()));

    // The administrator lists and creates operators (the two above were made that way).
    let all = users::list(&t.admin_store, &t.admin, &Default::default())
        .await
        .unwrap();
    assert!(all.iter().any(|a| a.username == "officer.two"));
    // The moderator changes their own password over their own login (the guard on operators'
    // rows lets the definer function through, not a direct UPDATE).
    let raw = t.raw_as(&m.login).await;
    let own_hash = || async {
        sqlx::query_scalar::<_, Option<String>>("SELECT vigil_password_hash($1)")
            .bind(m.actor.user_id().to_string())
            .fetch_one(&raw)
            .await
            .unwrap()
    };
    let before = own_hash().await;
    let (mks, _md) = common::keystore();
    keys::enrol(&m.store, &mks, &m.actor, PASSWORD, KeyBits::B2048)
        .await
        .unwrap();
    let ring = keys::unlock(&m.store, &mks, &m.actor, PASSWORD)
        .await
        .unwrap();
    const NEW_PASSWORD: &str = "a fresh passphrase of my own 31";
    auth::change_password(
        &m.store,
        &mks,
        &m.actor,
        &ring,
        None,
        PASSWORD,
        NEW_PASSWORD,
    )
    .await
    .expect("one's own password changes over one's own login");
    assert_ne!(own_hash().await, before);
    auth::authenticate(
        &m.store,
        "mod.four",
        NEW_PASSWORD,
        &vigil::auth::MfaPolicy::none(),
    )
    .await
    .expect("the new password signs in");
    refused(
        &raw,
        &format!(
            "UPDATE users SET must_change_password = TRUE WHERE id = '{}'",
            m.actor.user_id()
        ),
    )
    .await;

    // The audit entries every step wrote through the definer function verify end to end.
    let v = vigil::audit::verify_chain(&t.db.store).await.unwrap();
    assert!(matches!(v, vigil::audit::Verification::Ok { .. }), "{v:?}");
    let actors: Vec<String> = sqlx::query_scalar("SELECT DISTINCT actor FROM audit_log")
        .fetch_all(&owner)
        .await
        .unwrap();
    assert!(actors.contains(&format!("user:{}", o.actor.user_id())));
    assert!(before.is_some());
}

/// The detectors run over a moderator's own login, and the moderator's run may change how
/// many shards they are split into (the checkpoints of the old layout are replaced).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_moderator_runs_the_detectors_and_reshards_them_over_their_own_login() {
    use vigil::monitor::shard::ShardCount;
    use vigil::monitor::{self, policy::Policy, screen::Screener};
    let t = team().await;
    let admin_ring = keys::unlock(&t.admin_store, &t.db.keystore, &t.admin, PASSWORD)
        .await
        .unwrap();
    let m = t.operator("monty.moderator", &[Role::Moderator]).await;
    let (mks, _md) = t.enrolled(&m, &admin_ring).await;
    let ring = keys::unlock(&m.store, &mks, &m.actor, PASSWORD)
        .await
        .unwrap();
    let screener = Screener::new(&[], &[]).unwrap();
    for shards in [1, 2, 1] {
        let report = monitor::run(
            &m.store,
            &ring,
            &m.actor,
            &Policy::default(),
            &screener,
            ShardCount::new(shards).unwrap(),
        )
        .await
        .unwrap_or_else(|e| panic!("a detector run in {shards} shard(s): {e}"));
        assert_eq!(report.shards, shards);
        let names: Vec<String> = sqlx::query_scalar(
            "SELECT name FROM monitor_checkpoints WHERE name LIKE 'detectors%' ORDER BY name",
        )
        .fetch_all(&t.owner().await)
        .await
        .unwrap();
        let expected: Vec<String> = (0..shards)
            .map(|k| format!("detectors/{k}/{shards}"))
            .collect();
        assert_eq!(names, expected);
    }
}

/// Direct grants to `grantee`, from the catalogue: whole-table privileges and column privileges
/// not implied by a whole-table one.
async fn catalogue_grants(
    owner: &PgPool,
    grantee: &str,
) -> BTreeSet<(String, String, Option<String>)> {
    let mut out = BTreeSet::new();
    for r in sqlx::query(
        "SELECT table_name::text, privilege_type::text FROM information_schema.role_table_grants \
         WHERE grantee = $1 AND table_schema = 'public'",
    )
    .bind(grantee)
    .fetch_all(owner)
    .await
    .unwrap()
    {
        out.insert((r.get(0), r.get(1), None));
    }
    for r in sqlx::query(
        "SELECT table_name::text, column_name::text, privilege_type::text \
         FROM information_schema.column_privileges \
         WHERE grantee = $1 AND table_schema = 'public'",
    )
    .bind(grantee)
    .fetch_all(owner)
    .await
    .unwrap()
    {
        let (table, column, p): (String, String, String) = (r.get(0), r.get(1), r.get(2));
        if !out.contains(&(table.clone(), p.clone(), None)) {
            out.insert((table, p, Some(column)));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn granted_privileges_match_the_permission_table() {
    let t = team().await;
    let owner = t.owner().await;
    let prefix = team::prefix(&t.db.store).await.unwrap();
    for role in GROUP_ROLES {
        let group = team::group_name(&prefix, role);
        let expected: BTreeSet<(String, String, Option<String>)> = role_grants(role)
            .into_iter()
            .map(|(t, p, c)| (t.to_owned(), p.as_sql().to_owned(), c.map(str::to_owned)))
            .collect();
        let granted = catalogue_grants(&owner, &group).await;
        assert_eq!(
            granted, expected,
            "{role}: the catalogue (left) differs from the permission table (right)"
        );
        // Whatever the table says, some things no group may do at all.
        for (table, p) in [
            ("audit_log", "UPDATE"),
            ("audit_log", "DELETE"),
            ("audit_log", "INSERT"),
            ("audit_head", "UPDATE"),
            ("credentials", "SELECT"),
            ("credentials", "UPDATE"),
            ("operator_logins", "INSERT"),
        ] {
            let has: bool = sqlx::query_scalar("SELECT has_table_privilege($1, $2, $3)")
                .bind(&group)
                .bind(table)
                .bind(p)
                .fetch_one(&owner)
                .await
                .unwrap();
            assert!(!has, "{group} has {p} on {table}");
        }
        let sees_hash: bool = sqlx::query_scalar(
            "SELECT has_column_privilege($1, 'credentials', 'password_hash', 'SELECT')",
        )
        .bind(&group)
        .fetch_one(&owner)
        .await
        .unwrap();
        assert!(!sees_hash, "{group} may read password hashes");
        // And the groups cannot log in.
        let login: bool = sqlx::query_scalar("SELECT rolcanlogin FROM pg_roles WHERE rolname = $1")
            .bind(&group)
            .fetch_one(&owner)
            .await
            .unwrap();
        assert!(!login, "{group}");
    }
    // Every table is in the privilege table: a migration that adds one must say who may use it
    // (or, in operator mode, every console is refused it).
    let granted_somewhere: BTreeSet<&str> = GROUP_ROLES
        .into_iter()
        .flat_map(role_grants)
        .map(|(t, _, _)| t)
        .collect();
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables \
         WHERE table_schema = 'public' AND table_type = 'BASE TABLE' ORDER BY 1",
    )
    .fetch_all(&owner)
    .await
    .unwrap();
    for table in &tables {
        // activity_log's month partitions (migration 0017) are reached through activity_log,
        // whose grants they need no copy of.
        if is_activity_partition(table) {
            continue;
        }
        assert!(
            granted_somewhere.contains(table.as_str()),
            "table {table} has no team-mode grants: add it to src/rbac/privileges.rs"
        );
    }
    // The definer functions are not open to every role on the server, only to the groups.
    for f in team::OPERATOR_FUNCTIONS {
        let public: bool =
            sqlx::query_scalar("SELECT has_function_privilege('public', $1, 'EXECUTE')")
                .bind(f)
                .fetch_one(&owner)
                .await
                .unwrap();
        assert!(!public, "PUBLIC may execute {f}");
    }
    // Those for one permission only to the groups holding it.
    for (f, p) in team::PERMISSION_FUNCTIONS {
        let public: bool =
            sqlx::query_scalar("SELECT has_function_privilege('public', $1, 'EXECUTE')")
                .bind(f)
                .fetch_one(&owner)
                .await
                .unwrap();
        assert!(!public, "PUBLIC may execute {f}");
        for role in GROUP_ROLES {
            let group = team::group_name(&prefix, role);
            let may: bool = sqlx::query_scalar("SELECT has_function_privilege($1, $2, 'EXECUTE')")
                .bind(&group)
                .bind(f)
                .fetch_one(&owner)
                .await
                .unwrap();
            assert_eq!(may, vigil::rbac::role_allows(role, *p), "{group} on {f}");
        }
    }
    // An operator's login holds exactly the groups of their roles.
    let m = t
        .operator("mod.five", &[Role::Moderator, Role::ComplianceOfficer])
        .await;
    let mut groups: Vec<String> = sqlx::query_scalar(
        "SELECT g.rolname::text FROM pg_auth_members a JOIN pg_roles g ON g.oid = a.roleid \
         JOIN pg_roles u ON u.oid = a.member WHERE u.rolname = $1 ORDER BY 1",
    )
    .bind(&m.login.user)
    .fetch_all(&owner)
    .await
    .unwrap();
    groups.sort();
    let mut want = vec![
        team::group_name(&prefix, Role::ComplianceOfficer),
        team::group_name(&prefix, Role::Moderator),
    ];
    want.sort();
    assert_eq!(groups, want);
}

// ---- Upgrading a database made before team mode. ----

/// `vigil ARGS` with a clean environment, on `url`, with a file keystore in `keys`.
fn vigil(url: &str, keys: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> String {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_vigil"));
    cmd.args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", std::env::temp_dir())
        .env("VIGIL_DATABASE_URL", url)
        .env(
            "VIGIL_KEYSTORE",
            format!("file:{}", keys.join("ks").display()),
        )
        .env("VIGIL_REQUIRE_MFA", "none")
        .stdin(std::process::Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "vigil {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The schema as migrations 0001-0006 left it, before team mode.
async fn previous_schema(url: &str) {
    let dir = tempfile::tempdir().unwrap();
    for e in std::fs::read_dir("migrations/postgres").unwrap() {
        let e = e.unwrap();
        let name = e.file_name().to_string_lossy().into_owned();
        if name.as_str() < "0007" {
            std::fs::copy(e.path(), dir.path().join(&name)).unwrap();
        }
    }
    let migrator = sqlx::migrate::Migrator::new(dir.path()).await.unwrap();
    assert_eq!(migrator.iter().count(), 6);
    let pool = PgPool::connect(url).await.unwrap();
    migrator.run(&pool).await.unwrap();
    pool.close().await;
}

/// An operator and their credential and role, written the way the previous version did.
async fn old_operator(pool: &PgPool, username: &str, role: &str) -> String {
    let id = uuid::Uuid::new_v4().to_string();
    let name = auth::Username::parse(username).unwrap();
    let hash = auth::hash_password(&auth::Password::parse_for_operator(PASSWORD, &name).unwrap());
    sqlx::query(
        "INSERT INTO users (id, username, display_name, kind, status, created_at, updated_at) \
         VALUES ($1, $2, $2, 'operator', 'active', 0, 0)",
    )
    .bind(&id)
    .bind(username)
    .execute(pool)
    .await
    .unwrap();
    sqlx::query("INSERT INTO credentials (user_id, password_hash, changed_at) VALUES ($1, $2, 0)")
        .bind(&id)
        .bind(hash)
        .execute(pool)
        .await
        .unwrap();
    sqlx::query("INSERT INTO user_roles (user_id, role, granted_at) VALUES ($1, $2, 0)")
        .bind(&id)
        .bind(role)
        .execute(pool)
        .await
        .unwrap();
    id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_from_before_team_mode_upgrades_and_operators_get_logins() {
    let owner_url = common::postgres_url().await;
    previous_schema(&owner_url).await;
    let pool = PgPool::connect(&owner_url).await.unwrap();
    let admin_id = old_operator(&pool, "root-admin", "admin").await;
    old_operator(&pool, "old.mod", "moderator").await;
    sqlx::query("INSERT INTO app_meta (key, value, updated_at) VALUES ('initialised_at', '0', 0)")
        .execute(&pool)
        .await
        .unwrap();
    // One audit entry on the old chain, hashed by the core as the previous version did.
    let (actor, details) = ("system:init".to_owned(), "{}".to_owned());
    let canonical = vigil::audit::canonical_bytes(
        1,
        1,
        &actor,
        "operator.bootstrapped",
        Some(&format!("user:{admin_id}")),
        &details,
    );
    let hash = vigil::audit::chain_hash(&[0u8; 32], &canonical).to_vec();
    sqlx::query(
        "INSERT INTO audit_log (seq, at, actor, action, target, details, prev_hash, hash) \
         VALUES (1, 1, $1, 'operator.bootstrapped', $2, $3, $4, $5)",
    )
    .bind(&actor)
    .bind(format!("user:{admin_id}"))
    .bind(&details)
    .bind(vec![0u8; 32])
    .bind(&hash)
    .execute(&pool)
    .await
    .unwrap();
    sqlx::query("UPDATE audit_head SET seq = 1, hash = $1")
        .bind(&hash)
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO incidents (id, kind, severity, status, dedup_key, summary, created_at, updated_at) \
         VALUES ('i1', 'suspicious_activity', 'high', 'open', 'k', 'old incident', 1, 1)",
    )
    .execute(&pool)
    .await
    .unwrap();

    // The database administrator migrates with the owner's URL...
    let admin_keys = tempfile::tempdir().unwrap();
    let out = vigil(&owner_url, admin_keys.path(), &["migrate", "--json"], &[]);
    assert!(out.contains("\"migrated\": true"), "{out}");
    // ...and an administrator gives the existing moderator a database login (here over the
    // owner's URL, as no one has a login yet).
    let out = vigil(
        &owner_url,
        admin_keys.path(),
        &["user", "db-login", "old.mod", "--json"],
        &[
            ("VIGIL_USERNAME", "root-admin"),
            ("VIGIL_PASSWORD", PASSWORD),
        ],
    );
    let login: serde_json::Value = serde_json::from_str(&out).unwrap();
    let db_user = login["database_user"].as_str().unwrap().to_owned();
    let db_password = login["database_password"].as_str().unwrap().to_owned();
    assert!(db_user.ends_with("_u_old.mod"), "{db_user}");

    // The moderator keeps the password in their keystore; their config holds no password.
    let mut url = url::Url::parse(&owner_url).unwrap();
    url.set_username(&db_user).unwrap();
    url.set_password(None).unwrap();
    let mod_url = url.to_string();
    let mod_keys = tempfile::tempdir().unwrap();
    vigil(
        &mod_url,
        mod_keys.path(),
        &["keystore", "set-database-password"],
        &[("VIGIL_DATABASE_PASSWORD", &db_password)],
    );
    let out = vigil(
        &mod_url,
        mod_keys.path(),
        &["incidents", "list", "--json"],
        &[("VIGIL_USERNAME", "old.mod"), ("VIGIL_PASSWORD", PASSWORD)],
    );
    assert!(out.contains("old incident"), "{out}");

    // Over that login Postgres refuses what a moderator may not do.
    let mut direct = url::Url::parse(&mod_url).unwrap();
    direct.set_password(Some(&db_password)).unwrap();
    let mod_pool = PgPool::connect(direct.as_str()).await.unwrap();
    refused(&mod_pool, "DELETE FROM audit_log").await;
    refused(&mod_pool, "SELECT password_hash FROM credentials").await;

    // The chain from before the upgrade continues through the definer function.
    let store = Store::open(
        &DatabaseUrl::parse(&owner_url).unwrap(),
        &StoreOptions::default(),
    )
    .await
    .unwrap();
    let v = vigil::audit::verify_chain(&store).await.unwrap();
    match v {
        vigil::audit::Verification::Ok { entries, .. } => assert!(entries >= 3, "{entries}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_account_runs_retention_and_archives_the_audit_log_over_its_own_login() {
    use vigil::retention::{self, RunOptions, RunStatus};
    let t = team().await;
    let w = t.operator("worker.one", &[Role::Service]).await;
    // Old platform activity, an ended old session and a deleted platform account.
    let owner = t.owner().await;
    let person = uuid::Uuid::new_v4().to_string();
    sqlx::query(
        "INSERT INTO users (id, username, display_name, kind, status, created_at, updated_at, deleted_at) \
         VALUES ($1, 'gone.platform', 'Gone', 'platform', 'deleted', 1, 1, 1)",
    )
    .bind(&person)
    .execute(&owner)
    .await
    .unwrap();
    for i in 0..5 {
        sqlx::query(
            "INSERT INTO activity_log (id, user_id, kind, outcome, occurred_at, ingested_at) \
             VALUES ($1, NULL, 'comment', 'success', $2, $2)",
        )
        .bind(format!("act-{i}"))
        .bind(1_000_000 + i)
        .execute(&owner)
        .await
        .unwrap();
    }
    // Ages judged eight years on: every policy, the audit log's seven years too, is due.
    let as_of = vigil::store::Timestamp::from_micros(
        vigil::store::Timestamp::now().micros() + 8 * 366 * 86_400 * 1_000_000,
    );
    let archive = tempfile::tempdir().unwrap();
    let options = RunOptions {
        as_of: Some(as_of),
        archive_dir: Some(archive.path().to_owned()),
        ..RunOptions::default()
    };
    let rec = retention::run(&w.store, &w.actor, &options, &mut |_| {
        ControlFlow::Continue(())
    })
    .await
    .expect("the service account runs retention over its own login");
    assert_eq!(rec.status, RunStatus::Completed, "{:?}", rec.errors);
    let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM activity_log WHERE id LIKE 'act-%'")
        .fetch_one(&owner)
        .await
        .unwrap();
    assert_eq!(left, 0);
    // The audit entries went to the archive through the definer function, and the live chain
    // and the archive still verify.
    let archived: i64 =
        sqlx::query_scalar("SELECT archived_through_seq FROM audit_head WHERE id = 1")
            .fetch_one(&owner)
            .await
            .unwrap();
    assert!(archived > 0, "nothing archived");
    let v = vigil::audit::verify_chain(&t.db.store).await.unwrap();
    assert!(matches!(v, vigil::audit::Verification::Ok { .. }), "{v:?}");
    // But the service account still cannot delete audit entries itself.
    let pool = t.raw_as(&w.login).await;
    refused(&pool, "DELETE FROM audit_log").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_and_user_create_print_each_database_login_once() {
    let owner_url = common::postgres_url().await;
    let admin_keys = tempfile::tempdir().unwrap();
    let out = vigil(
        &owner_url,
        admin_keys.path(),
        &["init", "--admin", "root-admin", "--json"],
        &[("VIGIL_ADMIN_PASSWORD", PASSWORD)],
    );
    let init: serde_json::Value = serde_json::from_str(&out).unwrap();
    let admin_user = init["database_user"].as_str().unwrap().to_owned();
    let admin_password = init["database_password"].as_str().unwrap().to_owned();
    assert!(admin_user.ends_with("_u_root-admin"), "{admin_user}");
    assert!(admin_password.len() >= 32);

    // From now on the administrator works over their own login, its password in their
    // keystore, their URL without it.
    let mut url = url::Url::parse(&owner_url).unwrap();
    url.set_username(&admin_user).unwrap();
    url.set_password(None).unwrap();
    let admin_url = url.to_string();
    vigil(
        &admin_url,
        admin_keys.path(),
        &["keystore", "set-database-password"],
        &[("VIGIL_DATABASE_PASSWORD", &admin_password)],
    );
    let signed_in = [
        ("VIGIL_USERNAME", "root-admin"),
        ("VIGIL_PASSWORD", PASSWORD),
    ];
    let out = vigil(
        &admin_url,
        admin_keys.path(),
        &["user", "create", "ana", "--role", "moderator", "--json"],
        &signed_in,
    );
    let created: serde_json::Value = serde_json::from_str(&out).unwrap();
    let ana_user = created["database_user"].as_str().unwrap().to_owned();
    let ana_password = created["database_password"].as_str().unwrap().to_owned();
    let temporary = created["temporary_password"].as_str().unwrap().to_owned();
    assert!(ana_user.ends_with("_u_ana"), "{ana_user}");
    assert_ne!(ana_password, temporary);
    // `migrate` over an operator's login only checks.
    let out = vigil(&admin_url, admin_keys.path(), &["migrate", "--json"], &[]);
    assert!(out.contains("\"migrated\": false"), "{out}");
    // `init` over an operator's login is refused.
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_vigil"));
    let refused_init = cmd
        .args(["init", "--admin", "someone"])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", std::env::temp_dir())
        .env("VIGIL_DATABASE_URL", &admin_url)
        .env(
            "VIGIL_KEYSTORE",
            format!("file:{}", admin_keys.path().join("ks").display()),
        )
        .env("VIGIL_ADMIN_PASSWORD", PASSWORD)
        .output()
        .unwrap();
    assert!(!refused_init.status.success());
    assert!(String::from_utf8_lossy(&refused_init.stderr).contains("owner"));

    // Ana connects with her own login and the temporary password works (she must change it).
    let mut ana = url::Url::parse(&owner_url).unwrap();
    ana.set_username(&ana_user).unwrap();
    ana.set_password(Some(&ana_password)).unwrap();
    let store = Store::open(
        &DatabaseUrl::parse(ana.as_str()).unwrap(),
        &StoreOptions::default(),
    )
    .await
    .unwrap();
    assert!(store.is_operator_login());
    auth::authenticate(&store, "ana", &temporary, &vigil::auth::MfaPolicy::none())
        .await
        .expect("ana signs in over her own login");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_owner_without_createrole_migrates_with_team_mode_off_until_it_may() {
    // A deployment from before team mode: the database belongs to a plain login role.
    let server = PgPool::connect(&common::postgres_server_url())
        .await
        .unwrap();
    let suffix = uuid::Uuid::new_v4().simple().to_string();
    let (owner, db) = (
        format!("own_{}", &suffix[..12]),
        format!("vigil_plain_{}", &suffix[..12]),
    );
    sqlx::query(&format!(
        "CREATE ROLE {owner} LOGIN PASSWORD 'owner-password'"
    ))
    .execute(&server)
    .await
    .unwrap();
    sqlx::query(&format!("CREATE DATABASE {db} OWNER {owner}"))
        .execute(&server)
        .await
        .unwrap();
    let mut url = url::Url::parse(&common::postgres_server_url()).unwrap();
    url.set_username(&owner).unwrap();
    url.set_password(Some("owner-password")).unwrap();
    url.set_path(&db);
    let owner_url = DatabaseUrl::parse(url.as_str()).unwrap();
    let store = Store::open(&owner_url, &StoreOptions::default())
        .await
        .expect("an owner without CREATEROLE still migrates");
    assert!(!store.is_operator_login());
    let prefix = team::prefix(&store).await.unwrap();
    let groups = |pool: PgPool, prefix: String| async move {
        sqlx::query_scalar::<_, i64>(
            "SELECT COUNT(*) FROM pg_roles WHERE rolname LIKE $1 || '\\_%'",
        )
        .bind(prefix)
        .fetch_one(&pool)
        .await
        .unwrap()
    };
    assert_eq!(groups(server.clone(), prefix.clone()).await, 0);
    store.close().await;

    // Once the owner may create roles, the next migrate sets team mode up.
    sqlx::query(&format!("ALTER ROLE {owner} CREATEROLE"))
        .execute(&server)
        .await
        .unwrap();
    let store = Store::open(&owner_url, &StoreOptions::default())
        .await
        .unwrap();
    assert_eq!(groups(server.clone(), prefix.clone()).await, 4);
    let v = vigil::audit::verify_chain(&store).await.unwrap();
    assert!(matches!(v, vigil::audit::Verification::Ok { .. }), "{v:?}");
}

impl Team {
    /// `op` enrols a key pair on their own machine over their own login, and the administrator
    /// grants it over theirs.
    async fn enrolled(
        &self,
        op: &Operator,
        admin_ring: &keys::KeyRing,
    ) -> (FileKeystore, tempfile::TempDir) {
        let (ks, dir) = common::keystore();
        keys::enrol(&op.store, &ks, &op.actor, PASSWORD, KeyBits::B2048)
            .await
            .expect("an operator enrols over their own login");
        keys::grant(
            &self.admin_store,
            admin_ring,
            &self.admin,
            op.actor.username().as_str(),
        )
        .await
        .expect("the administrator grants over their own login");
        (ks, dir)
    }
}

/// Purpose names in the order `keys status` lists them.
fn names(purposes: &[Purpose]) -> Vec<String> {
    let mut n: Vec<String> = purposes.iter().map(|p| p.as_str().to_owned()).collect();
    n.sort();
    n
}

/// The id of `sql`'s one text value, read by the owner.
async fn owner_text(t: &Team, sql: &str) -> String {
    sqlx::query_scalar(sql)
        .fetch_one(&t.owner().await)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_follow_roles_over_each_operators_own_login() {
    let t = team().await;
    let admin_ring = keys::unlock(&t.admin_store, &t.db.keystore, &t.admin, PASSWORD)
        .await
        .expect("the administrator unlocks over their own login");
    let o = t
        .operator("olive.officer", &[Role::ComplianceOfficer])
        .await;
    let m = t.operator("mo.moderator", &[Role::Moderator]).await;
    let (oks, _od) = t.enrolled(&o, &admin_ring).await;
    let (mks, _md) = t.enrolled(&m, &admin_ring).await;
    for (op, roles) in [(&o, [Role::ComplianceOfficer]), (&m, [Role::Moderator])] {
        let h = keys::holdings(&op.store, &op.actor).await.unwrap();
        assert_eq!(
            h.held,
            names(&purposes_of(&roles)),
            "{}",
            op.actor.username()
        );
    }

    // The moderator's own login cannot wrap a purpose they do not hold, nor write a wrap or a
    // key version directly; the officer, who holds contact, cannot wrap it for the moderator.
    let contact = owner_text(
        &t,
        "SELECT id FROM data_keys WHERE purpose = 'contact' AND status = 'active'",
    )
    .await;
    let network = owner_text(
        &t,
        "SELECT id FROM data_keys WHERE purpose = 'network' AND status = 'active'",
    )
    .await;
    let mod_pair = owner_text(
        &t,
        &format!(
            "SELECT id FROM user_keys WHERE user_id = '{}'",
            m.actor.user_id()
        ),
    )
    .await;
    let admin_pair = owner_text(
        &t,
        &format!(
            "SELECT id FROM user_keys WHERE user_id = '{}'",
            t.admin.user_id()
        ),
    )
    .await;
    let wrap = |key: &str, pair: &str| {
        format!("SELECT vigil_insert_grant('{key}', '{pair}', '\\x00', NULL, 0)")
    };
    let mpool = t.raw_as(&m.login).await;
    refused(&mpool, &wrap(&contact, &mod_pair)).await;
    refused(
        &mpool,
        "INSERT INTO data_keys (id, purpose, version, status, created_at) \
         VALUES ('forged', 'contact', 99, 'active', 0)",
    )
    .await;
    let opool = t.raw_as(&o.login).await;
    refused(&opool, &wrap(&contact, &mod_pair)).await;
    // Holding network, the moderator still cannot hand it to an account whose roles do not
    // (a second administrator, who holds only blind_index).
    let a2 = t.operator("second.admin", &[Role::Admin]).await;
    let (_a2ks, _a2d) = t.enrolled(&a2, &admin_ring).await;
    let a2_pair = owner_text(
        &t,
        &format!(
            "SELECT id FROM user_keys WHERE user_id = '{}'",
            a2.actor.user_id()
        ),
    )
    .await;
    refused(&mpool, &wrap(&network, &a2_pair)).await;
    let _ = admin_pair;

    // The first administrator gives up what their role does not hold; the rotations wait for
    // holders, and a second officer's grant waits too.
    for p in [Purpose::Contact, Purpose::Network, Purpose::ContentHash] {
        keys::relinquish(&t.admin_store, &t.admin, p).await.unwrap();
    }
    // A holder takes a request up only by starting the rotation, never by deleting it.
    refused(
        &mpool,
        "DELETE FROM rotation_requests WHERE purpose = 'network'",
    )
    .await;
    let b = t.operator("bea.officer", &[Role::ComplianceOfficer]).await;
    let (bks, _bd) = common::keystore();
    keys::enrol(&b.store, &bks, &b.actor, PASSWORD, KeyBits::B2048)
        .await
        .unwrap();
    let admin_ring = keys::unlock(&t.admin_store, &t.db.keystore, &t.admin, PASSWORD)
        .await
        .unwrap();
    let report = keys::grant(&t.admin_store, &admin_ring, &t.admin, "bea.officer")
        .await
        .unwrap();
    assert_eq!(report.pending, vec![Purpose::Contact, Purpose::Network]);

    // Olive and Mo sign in over their own logins: the grant completes and the rotations start,
    // each through the definer function, none wrapped for the administrator.
    for (name, store, ks) in [
        ("olive.officer", &o.store, &oks),
        ("mo.moderator", &m.store, &mks),
    ] {
        let signed = auth::login(
            store,
            Some(ks),
            name,
            PASSWORD,
            &auth::LoginSource::default(),
            &vigil::auth::MfaPolicy::none(),
        )
        .await
        .expect("sign in over their own login");
        assert!(matches!(signed, auth::LoginOutcome::SignedIn(_)));
    }
    let after = keys::holdings(&b.store, &b.actor).await.unwrap();
    assert_eq!(after.held, names(&purposes_of(&[Role::ComplianceOfficer])));
    assert!(after.pending_grants.is_empty());
    assert!(after.rotations_requested.is_empty());
    let owner = t.owner().await;
    let running: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM key_rotations WHERE status = 'running'")
            .fetch_one(&owner)
            .await
            .unwrap();
    assert_eq!(running, 3);
    let admin_wraps: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM key_grants g JOIN user_keys k ON k.id = g.user_key_id \
         JOIN data_keys d ON d.id = g.data_key_id WHERE k.user_id = $1 AND d.purpose <> 'blind_index'",
    )
    .bind(t.admin.user_id().to_string())
    .fetch_one(&owner)
    .await
    .unwrap();
    assert_eq!(admin_wraps, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_bookkeeping_and_ended_sessions_work_over_each_operators_own_login() {
    use vigil::auth::tokens::{self, TokenError};
    use vigil::auth::{LoginError, LoginOutcome, LoginSource};
    use vigil::store::Timestamp;

    let t = team().await;
    let m = t.operator("mod.six", &[Role::Moderator]).await;
    let (mks, _md) = common::keystore();
    let src = LoginSource::default();
    let at = |secs: i64| Timestamp::from_micros(Timestamp::now().micros() + secs * 1_000_000);
    let login = |pw: &'static str, when: Timestamp| {
        let (store, mks, src) = (&m.store, &mks, &src);
        async move {
            auth::login_at(
                store,
                Some(mks),
                "mod.six",
                pw,
                src,
                &vigil::auth::MfaPolicy::none(),
                when,
            )
            .await
        }
    };
    let signed_in = |r: Result<LoginOutcome, LoginError>| match r {
        Ok(LoginOutcome::SignedIn(s)) => s,
        other => panic!("{other:?}"),
    };
    // A wrong password is counted over the operator's own login (the throttling window and the
    // lockout counter); the right one clears it.
    assert!(matches!(
        login("not my password at all", at(0)).await,
        Err(LoginError::InvalidCredentials)
    ));
    let owner = t.owner().await;
    let failures = || async {
        sqlx::query_scalar::<_, i64>("SELECT failed_logins FROM users WHERE username = 'mod.six'")
            .fetch_one(&owner)
            .await
            .unwrap()
    };
    assert_eq!(failures().await, 1);
    // The administrator chose the first password: it is changed before anything else.
    let first = signed_in(login(PASSWORD, at(1)).await);
    assert_eq!(failures().await, 0);
    const OWN: &str = "a fresh passphrase of my own 31";
    auth::change_password(
        &m.store,
        &mks,
        &m.actor,
        first
            .keys
            .as_ref()
            .expect("a key pair made at first sign-in"),
        None,
        PASSWORD,
        OWN,
    )
    .await
    .unwrap();
    let session = signed_in(login(OWN, at(2)).await);
    let ring = session.keys.as_ref().unwrap();

    // Sessions and their rotation over the operator's own login.
    let issue = || tokens::issue(&m.store, ring, &session, "test");
    let (current, other) = (issue().await.unwrap(), issue().await.unwrap());
    let current = tokens::refresh(&m.store, ring, &current.refresh_token)
        .await
        .unwrap();

    // Idle and absolute limits over the operator's own login: a use is recorded in their own
    // session's row, and an idle session is refused by verification and refresh.
    let limits = tokens::SessionLimits {
        idle_timeout_secs: 600,
        absolute_lifetime_secs: 3600,
    };
    let t0 = Timestamp::now();
    let secs = |s: i64| Timestamp::from_micros(t0.micros() + s * 1_000_000);
    let short = tokens::issue_limited_at(&m.store, ring, &session.actor, "test", limits, t0)
        .await
        .unwrap();
    tokens::verify_access_token_at(&m.store, &short.access_token, secs(300))
        .await
        .unwrap();
    let seen: i64 = sqlx::query_scalar("SELECT last_seen_at FROM sessions WHERE id = $1")
        .bind(&short.session_id)
        .fetch_one(&owner)
        .await
        .unwrap();
    assert_eq!(
        seen,
        secs(300).micros(),
        "the use was recorded over the own login"
    );
    tokens::verify_access_token_at(&m.store, &short.access_token, secs(800))
        .await
        .unwrap();
    assert!(matches!(
        tokens::verify_access_token_at(&m.store, &short.access_token, secs(1401)).await,
        Err(tokens::TokenError::SessionIdle)
    ));
    assert!(matches!(
        tokens::refresh_at(&m.store, ring, &short.refresh_token, secs(1401)).await,
        Err(tokens::TokenError::SessionIdle)
    ));
    assert!(tokens::logout_refresh(&m.store, &short.refresh_token)
        .await
        .unwrap());

    // A wrong code and a replayed code are both "invalid code", each a failure.
    let ck = session.credential.as_ref().unwrap();
    let e = vigil::mfa::enroll(&m.store, ck, &m.actor).await.unwrap();
    let secret = totp_rs::Secret::Encoded(e.secret_base32.clone())
        .to_bytes()
        .unwrap();
    let step = |t: Timestamp| t.micros() as u64 / 1_000_000 / vigil::mfa::STEP_SECONDS;
    vigil::mfa::confirm(
        &m.store,
        ck,
        &m.actor,
        &vigil::mfa::code_at(&secret, step(at(0)), 6),
    )
    .await
    .unwrap();
    let later = at(120);
    let code = vigil::mfa::code_at(&secret, step(later), 6);
    for expect_ok in [true, false] {
        let LoginOutcome::MfaRequired(c) = login(OWN, later).await.unwrap() else {
            panic!("MFA is on");
        };
        let token = c.token().to_owned();
        let r = auth::finish_mfa_at(&m.store, c, &token, &code, later).await;
        assert_eq!(r.is_ok(), expect_ok, "{r:?}");
    }
    assert_eq!(failures().await, 1, "the replay counted");

    // His password change ends his other session over his own login; the administrator's MFA
    // reset and password reset end the rest over theirs.
    let changed = auth::change_password(
        &m.store,
        &mks,
        &m.actor,
        ring,
        Some(&current.session_id),
        OWN,
        "a fresh passphrase of my own 32",
    )
    .await
    .unwrap();
    assert_eq!(changed.sessions_ended, 1);
    assert!(matches!(
        tokens::verify_access_token(&m.store, &other.access_token).await,
        Err(TokenError::Revoked)
    ));
    tokens::verify_access_token(&m.store, &current.access_token)
        .await
        .unwrap();
    assert_eq!(
        vigil::mfa::reset(&t.admin_store, &t.admin, "mod.six")
            .await
            .unwrap(),
        1
    );
    assert!(matches!(
        tokens::verify_access_token(&m.store, &current.access_token).await,
        Err(TokenError::Revoked)
    ));
    let fresh = issue().await.unwrap();
    let report = auth::reset_password(
        &t.admin_store,
        &t.admin,
        "mod.six",
        "temporary passphrase 7",
    )
    .await
    .unwrap();
    assert_eq!(report.sessions_ended, 1);
    assert!(tokens::refresh(&m.store, ring, &fresh.refresh_token)
        .await
        .is_err());
}

/// Rotation and the `pii` split write each chunk with one set-based statement; over the
/// administrator's own login they stay within its privileges and row-level security.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_and_the_split_run_over_the_administrators_own_login() {
    use vigil::crypto::field::{self, Place};
    use vigil::crypto::{KeyVersion, SymmetricKey};
    use vigil::keys::{rotation, split, WriteKeys};
    use vigil::platform::{self, NewPlatformUser};

    let t = team().await;
    let ring = keys::unlock(&t.admin_store, &t.db.keystore, &t.admin, PASSWORD)
        .await
        .unwrap();
    let people: Vec<NewPlatformUser> = (1..=5)
        .map(|i| NewPlatformUser {
            id: uuid::Uuid::now_v7(),
            username: format!("person{i}"),
            display_name: format!("Person {i}"),
            country: "GB".into(),
            email: Some(format!("person{i}@example.org")),
            phone: None,
            created_at: vigil::store::Timestamp::now(),
            last_login_at: None,
        })
        .collect();
    let ids: Vec<uuid::Uuid> = people.iter().map(|p| p.id).collect();
    let write = WriteKeys::current(&t.db.store, &ring, &keys::PLATFORM_PURPOSES)
        .await
        .unwrap();
    let mut tx = t.db.store.begin().await.unwrap();
    platform::insert_users(&mut tx, &write, &people)
        .await
        .unwrap();
    tx.commit().await.unwrap();

    // A rotation of `contact` and of `network` (numbering them above the `pii` v1 planted next).
    for p in [Purpose::Contact, Purpose::Network] {
        let r = rotation::start(&t.admin_store, &ring, &t.admin, p)
            .await
            .unwrap();
        let report = rotation::run(&t.admin_store, &ring, &t.admin, &r, 2, &mut |_| {})
            .await
            .unwrap();
        assert_eq!(report.retired, [1]);
    }
    let owner = t.owner().await;
    let at_v2: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM users WHERE kind = 'platform' AND contact_key_version = 2",
    )
    .fetch_one(&owner)
    .await
    .unwrap();
    assert_eq!(at_v2, 5);

    // What an older version wrote: two emails and an incident's address under `pii` v1.
    let pii = SymmetricKey::random();
    let pii_id = uuid::Uuid::now_v7().to_string();
    sqlx::query("INSERT INTO data_keys (id, purpose, version, status, created_at) VALUES ($1, 'pii', 1, 'active', 0)")
        .bind(&pii_id)
        .execute(&owner)
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO key_grants (data_key_id, user_key_id, wrapped_key, granted_at) \
         VALUES ($1, $2, $3, 0)",
    )
    .bind(&pii_id)
    .bind(
        sqlx::query_scalar::<_, String>(
            "SELECT id FROM user_keys WHERE user_id = $1 AND retired_at IS NULL",
        )
        .bind(t.admin.user_id().to_string())
        .fetch_one(&owner)
        .await
        .unwrap(),
    )
    .bind(
        ring.public_key()
            .encrypt("vigil-data-key-v1:pii:1", pii.expose())
            .unwrap(),
    )
    .execute(&owner)
    .await
    .unwrap();
    for (i, id) in ids.iter().enumerate().take(2) {
        let id = id.to_string();
        let place = Place::new("users", "email_enc", &id);
        let email = format!("person{}@example.org", i + 1);
        sqlx::query("UPDATE users SET email_enc = $1, pii_key_version = 1, contact_key_version = NULL WHERE id = $2")
            .bind(field::seal(&pii, KeyVersion(1), &place, email.as_bytes()))
            .bind(&id)
            .execute(&owner)
            .await
            .unwrap();
    }
    let incident = uuid::Uuid::now_v7().to_string();
    sqlx::query(
        "INSERT INTO incidents (id, kind, severity, status, source_ip_enc, dedup_key, summary, \
         created_at, updated_at) VALUES ($1, 'brute_force', 'high', 'open', $2, 'd', 's', 0, 0)",
    )
    .bind(&incident)
    .bind(field::seal(
        &pii,
        KeyVersion(1),
        &Place::new("incidents", "source_ip_enc", &incident),
        b"203.0.113.9",
    ))
    .execute(&owner)
    .await
    .unwrap();

    let ring = keys::unlock(&t.admin_store, &t.db.keystore, &t.admin, PASSWORD)
        .await
        .unwrap();
    let report = split::run(&t.admin_store, &ring, &t.admin, 2, &mut |_| {})
        .await
        .unwrap();
    assert_eq!(
        (report.rows, report.unreadable, report.retired),
        (3, 0, vec![1])
    );
    for (i, id) in ids.iter().enumerate() {
        assert_eq!(
            platform::user_email(&t.admin_store, &ring, *id)
                .await
                .unwrap(),
            Some(format!("person{}@example.org", i + 1))
        );
    }
    let row = sqlx::query(
        "SELECT network_key_version, bidx_key_version, source_ip_bidx IS NOT NULL \
         FROM incidents WHERE id = $1",
    )
    .bind(&incident)
    .fetch_one(&owner)
    .await
    .unwrap();
    assert_eq!(row.get::<Option<i64>, _>(0), Some(2));
    assert!(row.get::<Option<i64>, _>(1).is_some());
    assert!(row.get::<bool, _>(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_operator_learns_over_their_own_login_that_their_password_was_set_at_creation() {
    let t = team().await;
    let m = t.operator("mod.new", &[Role::Moderator]).await;
    assert_eq!(
        auth::password_to_change(&m.store, &m.actor).await.unwrap(),
        Some(auth::PasswordToChange::SetAtAccountCreation)
    );
    // Another operator's login learns nothing about it (the function answers only for one's own
    // account), and the administrator owes no change.
    let o = t.operator("officer.new", &[Role::ComplianceOfficer]).await;
    let raw = t.raw_as(&o.login).await;
    let theirs: Option<bool> = sqlx::query_scalar("SELECT vigil_password_set_at_creation($1)")
        .bind(m.actor.user_id().to_string())
        .fetch_one(&raw)
        .await
        .unwrap();
    assert_eq!(theirs, None);
    raw.close().await;
    assert_eq!(
        auth::password_to_change(&t.admin_store, &t.admin)
            .await
            .unwrap(),
        None
    );
}

/// Security events are recorded over each operator's own login (a denial by an officer, who
/// may not read them), read by a moderator over theirs, and no operator can forge, alter or
/// delete one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn security_events_are_append_only_and_recorded_over_each_operators_own_login() {
    use vigil::security_events::{self as events, SecurityEventFilter};
    let t = team().await;
    let o = t
        .operator("officer.events", &[Role::ComplianceOfficer])
        .await;
    let m = t.operator("mod.events", &[Role::Moderator]).await;

    // The officer lacks the permission: refused, and the refusal is recorded over their login.
    let e = events::list(&o.store, &o.actor, &SecurityEventFilter::default())
        .await
        .expect_err("an officer may not read security events");
    assert!(matches!(e, events::SecurityEventError::Forbidden(_)), "{e}");
    let seen = events::list(&m.store, &m.actor, &SecurityEventFilter::default())
        .await
        .expect("a moderator reads security events over their own login");
    let officer = format!("user:{}", o.actor.user_id());
    assert!(
        seen.iter().any(|e| e.kind == "authorization_denied"
            && e.actor.as_deref() == Some(officer.as_str())
            && e.attempted == "security_events_read"
            && e.outcome == "denied"),
        "{seen:?}"
    );

    let pool = t.raw_as(&m.login).await;
    let me = m.actor.user_id().to_string();
    let admin = t.admin.user_id().to_string();
    refused(&pool, "UPDATE security_events SET outcome = 'success'").await;
    refused(&pool, "DELETE FROM security_events").await;
    refused(
        &pool,
        "INSERT INTO security_events (id, at, kind, actor, attempted, outcome, details) \
         VALUES ('x', 0, 'logout', NULL, 'session', 'success', '{}')",
    )
    .await;
    refused(
        &pool,
        &format!(
            "SELECT vigil_security_event_append('f1', 'logout', 'user:{admin}', 'session', \
             'success', NULL, '{{}}', 0)"
        ),
    )
    .await;
    sqlx::query(
        "SELECT vigil_security_event_append('f2', 'logout', $1, 'session', 'success', NULL, '{}', 0)",
    )
    .bind(format!("user:{me}"))
    .execute(&pool)
    .await
    .expect("an operator records as themselves");
    // Stamped with the server's clock, not the time the client sent.
    let at: i64 = sqlx::query_scalar("SELECT at FROM security_events WHERE id = 'f2'")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(at > 0);
    // The officer's login cannot read the table at all.
    let opool = t.raw_as(&o.login).await;
    refused(&opool, "SELECT * FROM security_events").await;
}

/// Notices over each operator's own login: an operator reads and dismisses only their own, adds
/// notices only for themselves, and an administrator's reset tells the operator it was done to.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notices_are_each_operators_own_over_their_login() {
    use vigil::notices::{self, NoticeKind};
    let t = team().await;
    let m = t.operator("mod.notice", &[Role::Moderator]).await;
    let admin_id = t.admin.user_id().to_string();
    let m_id = m.actor.user_id().to_string();
    // The administrator resets the moderator's MFA over the administrator's own login: the
    // notice is the moderator's.
    vigil::mfa::reset(&t.admin_store, &t.admin, "mod.notice")
        .await
        .expect("an administrator's reset tells the operator");
    let theirs = notices::pending(&m.store, &m.actor).await.unwrap();
    assert_eq!(theirs.len(), 1);
    assert_eq!(theirs[0].kind, NoticeKind::MfaReset);
    assert!(notices::pending(&t.admin_store, &t.admin)
        .await
        .unwrap()
        .is_empty());
    // One of the administrator's own, added by the owner.
    let owner = t.owner().await;
    sqlx::query("SELECT vigil_notice_add('n-admin', $1, 'password_changed', '{}', 0)")
        .bind(&admin_id)
        .execute(&owner)
        .await
        .unwrap();

    let mut mc = t.conn_as(&m.login).await;
    // Row-level security: only one's own rows are seen or dismissed.
    let seen: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM operator_notices")
        .fetch_one(&mut mc)
        .await
        .unwrap();
    assert_eq!(seen, 1);
    let touched = sqlx::query("UPDATE operator_notices SET dismissed_at = 1 WHERE id = 'n-admin'")
        .execute(&mut mc)
        .await
        .unwrap()
        .rows_affected();
    assert_eq!(touched, 0);
    // No direct writes; through the definer function, only for oneself.
    refused(
        &mut mc,
        &format!(
            "INSERT INTO operator_notices (id, user_id, kind, created_at) \
             VALUES ('forged', '{admin_id}', 'mfa_reset', 0)"
        ),
    )
    .await;
    refused(
        &mut mc,
        &format!("SELECT vigil_notice_add('forged', '{admin_id}', 'mfa_reset', '{{}}', 0)"),
    )
    .await;
    sqlx::query("SELECT vigil_notice_add('n-self', $1, 'new_machine', '{}', 0)")
        .bind(&m_id)
        .execute(&mut mc)
        .await
        .expect("one's own notice");
    // An administrator adds only a reset's notices for someone else.
    let mut ac = t.conn_as(&t.admin_login).await;
    refused(
        &mut ac,
        &format!("SELECT vigil_notice_add('forged2', '{m_id}', 'password_changed', '{{}}', 0)"),
    )
    .await;
    // The moderator dismisses their own over their login; the administrator's stays.
    assert_eq!(notices::dismiss(&m.store, &m.actor, None).await.unwrap(), 2);
    let left: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM operator_notices WHERE dismissed_at IS NULL")
            .fetch_one(&owner)
            .await
            .unwrap();
    assert_eq!(left, 1);
    // Each notice is queued for delivery, stamped with the server's clock over a login.
    let queued: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM notifications WHERE kind = 'operator_notice' AND state = 'queued' \
         AND created_at > 0 AND recipient_id = $1",
    )
    .bind(&m_id)
    .fetch_one(&owner)
    .await
    .unwrap();
    assert_eq!(queued, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_account_delivers_the_outbox_over_its_own_login() {
    use vigil::mail::{self, DeliverOptions, Mailer};
    use vigil::platform::{self, NewPlatformUser};
    let t = team().await;
    let admin_ring = keys::unlock(&t.admin_store, &t.db.keystore, &t.admin, PASSWORD)
        .await
        .expect("the administrator unlocks over their own login");
    // A platform subject with an address (written by the platform's own import).
    let wk = keys::WriteKeys::current(&t.db.store, &admin_ring, &keys::PLATFORM_PURPOSES)
        .await
        .unwrap();
    let mut tx = t.db.store.begin().await.unwrap();
    let now = vigil::store::Timestamp::now();
    platform::insert_users(
        &mut tx,
        &wk,
        &[NewPlatformUser {
            id: uuid::Uuid::new_v4(),
            username: "sam".into(),
            display_name: "Sam".into(),
            country: "DE".into(),
            email: Some("sam@mail.example".into()),
            phone: None,
            created_at: now,
            last_login_at: None,
        }],
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();

    let o = t
        .operator("olive.officer", &[Role::ComplianceOfficer])
        .await;
    let w = t.operator("worker.mail", &[Role::Service]).await;
    let (oks, _od) = t.enrolled(&o, &admin_ring).await;
    let (wks, _wd) = t.enrolled(&w, &admin_ring).await;
    let o_ring = keys::unlock(&o.store, &oks, &o.actor, PASSWORD)
        .await
        .unwrap();
    let w_ring = keys::unlock(&w.store, &wks, &w.actor, PASSWORD)
        .await
        .unwrap();
    let c = privacy::create(
        &o.store,
        Some(&o_ring),
        &o.actor,
        RequestKind::Access,
        &SubjectRef::Username("sam".into()),
        privacy::CodeDelivery::Mail,
    )
    .await
    .expect("the officer files over their own login");
    assert!(c.verification_code.is_none());

    // The worker's mail job: delivery over the service account's own login.
    let server = smtp::SmtpServer::start().await;
    let mailer = Mailer::new(&server.config(), None).unwrap();
    let report = mail::deliver_due(&w.store, &w_ring, &mailer, &DeliverOptions::default())
        .await
        .expect("the service account delivers over its own login");
    assert_eq!((report.sent, report.deferred, report.failed), (1, 0, 0));
    let got = server.received();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].to, vec!["sam@mail.example".to_owned()]);
    let code = got[0].code().expect("the message carries the code");
    privacy::verify_code(&o.store, &o.actor, c.request.id, &code)
        .await
        .expect("the delivered code verifies the request");

    // Delivery reads and updates the outbox; the service account's login cannot delete a
    // message.
    let pool = t.raw_as(&w.login).await;
    refused(&pool, "DELETE FROM notifications").await;
}

// ---- Monthly partitions of activity_log (migration 0017). ----

/// Whether activity_log has a partition of this name.
async fn has_partition(owner: &PgPool, name: &str) -> bool {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid \
         WHERE i.inhparent = 'activity_log'::regclass AND c.relname = $1)",
    )
    .bind(name)
    .fetch_one(owner)
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operators_cannot_drop_current_or_held_activity_partitions() {
    use vigil::store::partitions::{month_start, partition_name};
    let t = team().await;
    let owner = t.owner().await;
    let m = t.operator("mod.parts", &[Role::Moderator]).await;
    let c = t.operator("co.parts", &[Role::ComplianceOfficer]).await;
    let mod_pool = t.raw_as(&m.login).await;
    let co_pool = t.raw_as(&c.login).await;

    // March and April 2020: any operator's login makes a month's partition (and only that).
    let march = 1_583_020_800_000_000; // 2020-03-01T00:00:00Z
    let april = 1_585_699_200_000_000; // 2020-04-01T00:00:00Z
    for at in [march + 5, april + 5] {
        let made: bool = sqlx::query_scalar("SELECT vigil_activity_partition_ensure($1)")
            .bind(at)
            .fetch_one(&mod_pool)
            .await
            .unwrap();
        assert!(made);
    }
    // Not a year and more ahead: those rows stay in the default partition.
    let far: bool = sqlx::query_scalar("SELECT vigil_activity_partition_ensure($1)")
        .bind(vigil::store::Timestamp::now().micros() + 400 * 86_400_000_000)
        .fetch_one(&mod_pool)
        .await
        .unwrap();
    assert!(!far);
    let person = uuid::Uuid::new_v4().to_string();
    sqlx::query(
        "INSERT INTO users (id, username, display_name, kind, status, created_at, updated_at) \
         VALUES ($1, 'held.person', 'Held', 'platform', 'active', 1, 1)",
    )
    .bind(&person)
    .execute(&owner)
    .await
    .unwrap();
    for (i, at) in [march + 10, march + 20, april + 10].into_iter().enumerate() {
        sqlx::query(
            "INSERT INTO activity_log (id, user_id, kind, outcome, occurred_at, ingested_at) \
             VALUES ($1, $2, 'login', 'success', $3, $3)",
        )
        .bind(format!("part-{i}"))
        .bind((i == 2).then_some(&person))
        .bind(at)
        .execute(&owner)
        .await
        .unwrap();
    }
    sqlx::query(
        "INSERT INTO legal_holds (id, target_kind, target_id, reason, created_by, created_at) \
         VALUES ('hold-parts', 'user', $1, 'litigation', $2, 1)",
    )
    .bind(&person)
    .bind(t.admin.user_id().to_string())
    .execute(&owner)
    .await
    .unwrap();
    let now = vigil::store::Timestamp::now().micros();
    let this_month = month_start(now);
    let far_cutoff = now + 10 * 365 * 86_400_000_000;

    // A moderator's login may not run the function at all.
    refused(
        &mod_pool,
        &format!("SELECT vigil_activity_partition_drop({march}, {far_cutoff})"),
    )
    .await;
    // A compliance officer's may, but not on this month, whatever cutoff it names (the
    // function judges against the activity policy as of now), nor on something not a month.
    refused(
        &co_pool,
        &format!("SELECT vigil_activity_partition_drop({this_month}, {far_cutoff})"),
    )
    .await;
    let e = sqlx::query("SELECT vigil_activity_partition_drop($1, $2)")
        .bind(march + 1)
        .bind(far_cutoff)
        .execute(&co_pool)
        .await
        .expect_err("not the start of a month");
    assert_eq!(sqlstate(&e).as_deref(), Some("22023"));
    // The held record's month is kept, with its rows.
    let kept: Option<i64> = sqlx::query_scalar("SELECT vigil_activity_partition_drop($1, $2)")
        .bind(april)
        .bind(far_cutoff)
        .fetch_one(&co_pool)
        .await
        .unwrap();
    assert_eq!(kept, None);
    assert!(has_partition(&owner, &partition_name(april)).await);
    // The other old month goes, and says how many rows it held.
    let dropped: Option<i64> = sqlx::query_scalar("SELECT vigil_activity_partition_drop($1, $2)")
        .bind(march)
        .bind(far_cutoff)
        .fetch_one(&co_pool)
        .await
        .unwrap();
    assert_eq!(dropped, Some(2));
    assert!(!has_partition(&owner, &partition_name(march)).await);
    assert!(has_partition(&owner, &partition_name(this_month)).await);
    let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM activity_log WHERE id LIKE 'part-%'")
        .fetch_one(&owner)
        .await
        .unwrap();
    assert_eq!(left, 1);
    // Nor may an operator drop a partition directly: they own no table.
    refused(&co_pool, &format!("DROP TABLE {}", partition_name(april))).await;
    refused(
        &co_pool,
        &format!("DROP TABLE {}", partition_name(this_month)),
    )
    .await;
}
