//! The store: migrations on both backends, SQLite's settings, constraints, and the schema
//! comparison that keeps the two dialects in step.

mod common;

use std::collections::BTreeMap;

use common::TestDb;
use sqlx::Row;
use vigil::keys::WriteKeys;
use vigil::platform::{self, CommentBody, NewComment};
use vigil::store::{DatabaseUrl, Store, StoreError, StoreOptions, Timestamp};

/// Tables of DESIGN.md's data model; later migrations may add more, never fewer.
const TABLES: &[&str] = &[
    "app_meta",
    "users",
    "user_roles",
    "credentials",
    "mfa_secrets",
    "backup_codes",
    "login_challenges",
    "sessions",
    "refresh_tokens",
    "revoked_tokens",
    "rate_limit_hits",
    "user_keys",
    "data_keys",
    "key_grants",
    "key_rotations",
    "events",
    "comments",
    "comment_recipients",
    "reactions",
    "activity_log",
    "monitor_checkpoints",
    "ip_blocks",
    "user_restrictions",
    "incidents",
    "incident_evidence",
    "incident_actions",
    "notifications",
    "legal_holds",
    "dsr_requests",
    "dsr_steps",
    "dsr_artifacts",
    "retention_policies",
    "retention_runs",
    "audit_log",
    "audit_head",
];

/// Tables only the Postgres schema has: team mode's map of database logins to accounts.
const POSTGRES_ONLY_TABLES: &[&str] = &["operator_logins"];

async fn migrations_create_the_whole_schema(db: TestDb) {
    let raw = db.raw().await;
    for t in TABLES {
        let n = common::count(&raw, &format!("SELECT COUNT(*) FROM {t}")).await;
        assert!(n >= 0, "{t}");
    }
    // The chain head starts at the genesis hash.
    let head = sqlx::query("SELECT seq, hash FROM audit_head")
        .fetch_one(&raw)
        .await
        .unwrap();
    assert_eq!(head.get::<i64, _>(0), 0);
    assert_eq!(head.get::<Vec<u8>, _>(1), vec![0u8; 32]);
    raw.close().await;

    // Opening again applies nothing new and keeps the data.
    let again = Store::open(&db.url, &StoreOptions::default())
        .await
        .unwrap();
    again.close().await;
}
on_both!(migrations_create_the_whole_schema);

async fn foreign_keys_are_enforced(db: TestDb) {
    let (_, ring) = common::admin_keys(&db).await;
    let keys = WriteKeys::current(&db.store, &ring, &vigil::keys::PLATFORM_PURPOSES)
        .await
        .unwrap();
    let mut tx = db.store.begin().await.unwrap();
    let orphan = NewComment {
        id: uuid::Uuid::new_v4(),
        event_id: uuid::Uuid::new_v4(),
        author_id: uuid::Uuid::new_v4(),
        body: CommentBody::Public("hello".into()),
        created_at: Timestamp::now(),
    };
    let err = platform::insert_comments(&mut tx, &keys, &[orphan]).await;
    assert!(
        err.is_err(),
        "a comment under a missing event must be refused"
    );
    drop(tx);
    let raw = db.raw().await;
    assert_eq!(
        common::count(&raw, "SELECT COUNT(*) FROM comments").await,
        0
    );
    raw.close().await;
}
on_both!(foreign_keys_are_enforced);

#[tokio::test]
async fn sqlite_runs_in_wal_mode_with_secure_delete() {
    let db = common::sqlite().await;
    let s = db.store.sqlite_settings().await.unwrap().unwrap();
    assert_eq!(s.journal_mode, "wal");
    assert!(s.foreign_keys);
    assert!(s.secure_delete);
}

#[tokio::test]
async fn unreachable_database_is_a_clear_error_without_the_password() {
    let url = DatabaseUrl::parse("postgres://vigil:hunter2@127.0.0.1:1/vigil").unwrap();
    let opts = StoreOptions {
        busy_timeout: std::time::Duration::from_millis(200),
        ..Default::default()
    };
    let err = Store::open(&url, &opts).await.unwrap_err();
    assert!(matches!(err, StoreError::Connect { .. }), "{err:?}");
    let shown = err.to_string();
    assert!(shown.contains("cannot open the database"), "{shown}");
    assert!(!shown.contains("hunter2"), "{shown}");
}

// ---- The two dialects' schemas must not drift. ----

#[derive(Debug, PartialEq, Eq)]
struct Column {
    kind: &'static str,
    not_null: bool,
    primary_key: bool,
}

type Schema = (
    BTreeMap<String, BTreeMap<String, Column>>,
    BTreeMap<String, (String, bool, Vec<String>)>,
);

/// SQLite and Postgres names for the same logical types. Flags are INTEGER on SQLite because
/// sqlx's Any driver cannot map SQLite's boolean type.
fn logical_type(declared: &str) -> &'static str {
    match declared.to_ascii_lowercase().as_str() {
        "text" => "text",
        "integer" | "bigint" | "boolean" => "integer",
        "blob" | "bytea" => "bytes",
        "double precision" | "real" => "float",
        other => panic!("unexpected column type {other}"),
    }
}

async fn sqlite_schema(path: &std::path::Path) -> Schema {
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'table' \
         AND name NOT LIKE 'sqlite_%' AND name <> '_sqlx_migrations'",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    let mut columns = BTreeMap::new();
    let mut indexes = BTreeMap::new();
    for t in tables {
        let mut cols = BTreeMap::new();
        for r in sqlx::query("SELECT name, type, \"notnull\", pk FROM pragma_table_info($1)")
            .bind(&t)
            .fetch_all(&pool)
            .await
            .unwrap()
        {
            let pk: i64 = r.get(3);
            let name: String = r.get(0);
            cols.insert(
                name,
                Column {
                    kind: logical_type(&r.get::<String, _>(1)),
                    not_null: r.get::<i64, _>(2) != 0 || pk > 0,
                    primary_key: pk > 0,
                },
            );
        }
        for r in
            sqlx::query("SELECT name, \"unique\" FROM pragma_index_list($1) WHERE origin = 'c'")
                .bind(&t)
                .fetch_all(&pool)
                .await
                .unwrap()
        {
            let name: String = r.get(0);
            let cols: Vec<String> =
                sqlx::query_scalar("SELECT name FROM pragma_index_info($1) ORDER BY seqno")
                    .bind(&name)
                    .fetch_all(&pool)
                    .await
                    .unwrap();
            indexes.insert(name, (t.clone(), r.get::<i64, _>(1) != 0, cols));
        }
        columns.insert(t, cols);
    }
    pool.close().await;
    (columns, indexes)
}

async fn postgres_schema(url: &str) -> Schema {
    let pool = sqlx::PgPool::connect(url).await.unwrap();
    let mut columns: BTreeMap<String, BTreeMap<String, Column>> = BTreeMap::new();
    let pk: Vec<(String, String)> = sqlx::query_as(
        "SELECT t.relname::text, a.attname::text FROM pg_index ix \
         JOIN pg_class t ON t.oid = ix.indrelid \
         JOIN pg_namespace n ON n.oid = t.relnamespace \
         JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = ANY(ix.indkey) \
         WHERE n.nspname = 'public' AND ix.indisprimary",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    for r in sqlx::query(
        "SELECT table_name::text, column_name::text, data_type::text, is_nullable::text \
         FROM information_schema.columns \
         WHERE table_schema = 'public' AND table_name <> '_sqlx_migrations'",
    )
    .fetch_all(&pool)
    .await
    .unwrap()
    {
        let (t, c): (String, String) = (r.get(0), r.get(1));
        let primary_key = pk.contains(&(t.clone(), c.clone()));
        columns.entry(t).or_default().insert(
            c,
            Column {
                kind: logical_type(&r.get::<String, _>(2)),
                not_null: r.get::<String, _>(3) == "NO",
                primary_key,
            },
        );
    }
    let mut indexes = BTreeMap::new();
    for r in sqlx::query(
        "SELECT i.relname::text, t.relname::text, ix.indisunique, \
           ARRAY(SELECT a.attname::text FROM unnest(ix.indkey) WITH ORDINALITY k(attnum, ord) \
                 JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum \
                 ORDER BY k.ord) \
         FROM pg_index ix JOIN pg_class i ON i.oid = ix.indexrelid \
         JOIN pg_class t ON t.oid = ix.indrelid \
         JOIN pg_namespace n ON n.oid = t.relnamespace \
         WHERE n.nspname = 'public' AND NOT ix.indisprimary AND t.relname <> '_sqlx_migrations'",
    )
    .fetch_all(&pool)
    .await
    .unwrap()
    {
        indexes.insert(r.get(0), (r.get(1), r.get(2), r.get(3)));
    }
    pool.close().await;
    (columns, indexes)
}

#[tokio::test]
async fn sqlite_and_postgres_schemas_match() {
    let lite = common::sqlite().await;
    let pg = common::postgres().await;
    let (lite_cols, lite_idx) = sqlite_schema(lite.url.sqlite_path().unwrap()).await;
    let (mut pg_cols, mut pg_idx) = postgres_schema(&pg.raw_url).await;
    // The one intended difference: team mode (migration 0009) exists only on Postgres, and of
    // it only this table is a table; its roles, grants, policies and functions are not
    // compared here (tests/team.rs checks them).
    for t in POSTGRES_ONLY_TABLES {
        assert!(pg_cols.remove(*t).is_some(), "{t} missing on Postgres");
        assert!(
            !lite_cols.contains_key(*t),
            "{t} should not exist on SQLite"
        );
    }
    pg_idx.retain(|_, (table, _, _)| !POSTGRES_ONLY_TABLES.contains(&table.as_str()));
    // The other: on Postgres activity_log is partitioned by month (migration 0017), so its
    // partitions are tables of their own and its primary key takes the partition key,
    // (id, occurred_at). Nothing else is partitioned.
    let pg = sqlx::PgPool::connect(&pg.raw_url).await.unwrap();
    let partitioned: Vec<(String, String)> = sqlx::query_as(
        "SELECT c.relname::text, pg_get_partkeydef(c.oid) FROM pg_class c \
         JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE n.nspname = 'public' AND c.relkind = 'p'",
    )
    .fetch_all(&pg)
    .await
    .unwrap();
    assert_eq!(
        partitioned,
        vec![("activity_log".to_owned(), "RANGE (occurred_at)".to_owned())]
    );
    let partitions: Vec<(String, String)> = sqlx::query_as(
        "SELECT c.relname::text, p.relname::text FROM pg_class c \
         JOIN pg_namespace n ON n.oid = c.relnamespace \
         JOIN pg_inherits i ON i.inhrelid = c.oid JOIN pg_class p ON p.oid = i.inhparent \
         WHERE n.nspname = 'public' AND c.relkind = 'r' AND c.relispartition",
    )
    .fetch_all(&pg)
    .await
    .unwrap();
    pg.close().await;
    assert!(partitions.iter().any(|(c, _)| c == "activity_log_default"));
    for (child, parent) in &partitions {
        assert_eq!(parent, "activity_log", "{child} is a partition of {parent}");
        assert!(
            child == "activity_log_default"
                || vigil::store::partitions::month_of_partition(child).is_some(),
            "unexpected partition {child}"
        );
        assert_eq!(
            pg_cols.remove(child).as_ref(),
            Some(&pg_cols["activity_log"]),
            "{child} has the columns of activity_log"
        );
    }
    pg_idx.retain(|_, (table, _, _)| !partitions.iter().any(|(c, _)| c == table));
    let key = pg_cols
        .get_mut("activity_log")
        .and_then(|c| c.get_mut("occurred_at"))
        .unwrap();
    assert!(key.primary_key, "activity_log's key includes occurred_at");
    key.primary_key = false;

    let names =
        |m: &BTreeMap<String, BTreeMap<String, Column>>| m.keys().cloned().collect::<Vec<_>>();
    assert_eq!(names(&lite_cols), names(&pg_cols), "tables differ");
    for t in TABLES {
        assert!(lite_cols.contains_key(*t), "missing table {t}");
    }
    for (t, cols) in &lite_cols {
        assert_eq!(
            cols, &pg_cols[t],
            "columns of {t} differ (SQLite left, Postgres right)"
        );
    }
    assert_eq!(
        lite_idx, pg_idx,
        "indexes differ (SQLite left, Postgres right)"
    );

    // Both dialects have the same migrations.
    let files = |dir: &str| {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    };
    assert_eq!(files("migrations/sqlite"), files("migrations/postgres"));
}

#[tokio::test]
async fn indexes_dropped_for_a_bulk_load_come_back_after_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vigil.db");
    let url = DatabaseUrl::sqlite_file(&path);
    let store = Store::open(&url, &StoreOptions::default()).await.unwrap();
    store.close().await;
    let before = sqlite_schema(&path).await;

    let store = Store::open(&url, &StoreOptions::default()).await.unwrap();
    store
        .defer_indexes(&["comments", "activity_log"])
        .await
        .unwrap();
    store.close().await;
    // The process "dies" here, before the load finishes and rebuilds the indexes.
    let during = sqlite_schema(&path).await;
    assert!(!during.1.contains_key("comments_author_idx"));
    assert!(!during.1.contains_key("activity_log_user_time_idx"));
    assert!(
        during.1.contains_key("reactions_once_key"),
        "unique indexes are never dropped"
    );

    let store = Store::open(&url, &StoreOptions::default()).await.unwrap();
    assert_eq!(store.rebuild_deferred_indexes().await.unwrap(), 0);

    // Named indexes only: the rest of the table's stay, a unique one is never dropped, and a
    // name already dropped is not dropped twice.
    let names = [
        "activity_log_user_time_idx",
        "sqlite_autoindex_activity_log_1",
    ];
    assert_eq!(
        store
            .defer_named_indexes("activity_log", &names)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        store
            .defer_named_indexes("activity_log", &names)
            .await
            .unwrap(),
        0
    );
    store.close().await;
    let during = sqlite_schema(&path).await;
    assert!(!during.1.contains_key("activity_log_user_time_idx"));
    assert!(during.1.contains_key("activity_log_time_id_idx"));
    assert!(during.1.contains_key("comments_author_idx"));
    let store = Store::open(&url, &StoreOptions::default()).await.unwrap();
    store.close().await;
    assert_eq!(sqlite_schema(&path).await, before);
}
