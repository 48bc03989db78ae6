//! Shared test harness: one test body, run on a fresh SQLite file and on a fresh Postgres
//! database (from `VIGIL_TEST_POSTGRES_URL`, which the project's test script provides).
#![allow(dead_code)]

use sqlx::any::AnyPoolOptions;
use sqlx::AnyPool;
use vigil::auth::{self, Actor, Password, Username};
use vigil::crypto::KeyBits;
use vigil::keys::keystore::FileKeystore;
use vigil::keys::{self, KeyRing};
use vigil::store::{DatabaseUrl, Store, StoreOptions};

/// The operator password every test uses.
pub const PASSWORD: &str = "correct horse battery staple";

/// A fresh database with the store open on it.
pub struct TestDb {
    pub store: Store,
    pub url: DatabaseUrl,
    /// The raw URL, for side connections that tamper with rows the way an attacker would.
    pub raw_url: String,
    /// The first operator's keystore: a real file keystore in its own private folder.
    pub keystore: FileKeystore,
    _dir: Option<tempfile::TempDir>,
    _keys: tempfile::TempDir,
}

/// A file keystore in a fresh private folder (another machine's keystore, as it were).
pub fn keystore() -> (FileKeystore, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let ks = FileKeystore::open(&dir.path().join("keys")).expect("file keystore");
    (ks, dir)
}

impl TestDb {
    /// A second, raw connection pool, bypassing the core (for tampering and inspection).
    pub async fn raw(&self) -> AnyPool {
        sqlx::any::install_default_drivers();
        AnyPoolOptions::new()
            .max_connections(2)
            .connect(&self.raw_url)
            .await
            .expect("raw connection")
    }
}

pub async fn sqlite() -> TestDb {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("vigil.db");
    let url = DatabaseUrl::sqlite_file(&path);
    let store = Store::open(&url, &StoreOptions::default())
        .await
        .expect("open sqlite");
    let (keystore, keys) = keystore();
    TestDb {
        store,
        url,
        raw_url: format!("sqlite://{}", path.display()),
        keystore,
        _dir: Some(dir),
        _keys: keys,
    }
}

/// The Postgres server URL, or a failure that says how to get one.
pub fn postgres_server_url() -> String {
    std::env::var("VIGIL_TEST_POSTGRES_URL").expect(
        "VIGIL_TEST_POSTGRES_URL is not set: run scripts/test, which starts a throwaway \
         Postgres, or point it at a server where this user may CREATE DATABASE",
    )
}

/// A new, empty database on the test server.
pub async fn postgres_url() -> String {
    let server = postgres_server_url();
    sqlx::any::install_default_drivers();
    let admin = AnyPoolOptions::new()
        .max_connections(1)
        .connect(&server)
        .await
        .expect("connect to the test Postgres server");
    let name = format!("vigil_test_{}", uuid::Uuid::new_v4().simple());
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&admin)
        .await
        .expect("create test database");
    admin.close().await;
    let (base, query) = match server.split_once('?') {
        Some((b, q)) => (b.to_owned(), format!("?{q}")),
        None => (server.clone(), String::new()),
    };
    let base = base
        .rsplit_once('/')
        .map(|(b, _)| b.to_owned())
        .unwrap_or(base);
    format!("{base}/{name}{query}")
}

pub async fn postgres() -> TestDb {
    let raw_url = postgres_url().await;
    let url = DatabaseUrl::parse(&raw_url).expect("postgres url");
    let store = Store::open(&url, &StoreOptions::default())
        .await
        .expect("open postgres");
    let (keystore, keys) = keystore();
    TestDb {
        store,
        url,
        raw_url,
        keystore,
        _dir: None,
        _keys: keys,
    }
}

/// Another fresh database on the same backend as `db`.
pub async fn fresh_like(db: &TestDb) -> TestDb {
    match db.store.backend() {
        vigil::store::Backend::Sqlite => sqlite().await,
        vigil::store::Backend::Postgres => postgres().await,
    }
}

/// Runs `vigil init` in-process and signs the administrator in.
pub async fn admin(db: &TestDb) -> Actor {
    let name = Username::parse("root-admin").unwrap();
    let pw = Password::parse_for_operator(PASSWORD, &name).unwrap();
    auth::bootstrap_admin(&db.store, &db.keystore, &name, &pw, KeyBits::B2048)
        .await
        .expect("bootstrap admin");
    auth::authenticate(&db.store, "root-admin", PASSWORD)
        .await
        .expect("sign in")
}

/// `vigil init`, then signs the administrator in and unlocks their keys.
pub async fn admin_keys(db: &TestDb) -> (Actor, KeyRing) {
    let actor = admin(db).await;
    let ring = keys::unlock(&db.store, &db.keystore, &actor, PASSWORD)
        .await
        .expect("unlock keys");
    (actor, ring)
}

/// Adds an operator with `role` directly in the tables (account management is a later
/// module) and signs them in.
pub async fn operator_with_role(db: &TestDb, username: &str, role: &str) -> Actor {
    let raw = db.raw().await;
    let id = uuid::Uuid::new_v4().to_string();
    let name = Username::parse(username).unwrap();
    let hash = auth::hash_password(&Password::parse_for_operator(PASSWORD, &name).unwrap());
    sqlx::query(
        "INSERT INTO users (id, username, display_name, kind, status, created_at, updated_at) \
         VALUES ($1, $2, $2, 'operator', 'active', 0, 0)",
    )
    .bind(&id)
    .bind(username)
    .execute(&raw)
    .await
    .unwrap();
    sqlx::query("INSERT INTO credentials (user_id, password_hash, changed_at) VALUES ($1, $2, 0)")
        .bind(&id)
        .bind(hash)
        .execute(&raw)
        .await
        .unwrap();
    sqlx::query("INSERT INTO user_roles (user_id, role, granted_at) VALUES ($1, $2, 0)")
        .bind(&id)
        .bind(role)
        .execute(&raw)
        .await
        .unwrap();
    raw.close().await;
    auth::authenticate(&db.store, username, PASSWORD)
        .await
        .expect("sign in")
}

/// Runs one statement on a raw pool (tampering, setup).
pub async fn exec(pool: &AnyPool, sql: &str) {
    sqlx::query(sql).execute(pool).await.expect(sql);
}

/// One `COUNT(*)`.
pub async fn count(pool: &AnyPool, sql: &str) -> i64 {
    use sqlx::Row;
    sqlx::query(sql)
        .fetch_one(pool)
        .await
        .expect(sql)
        .try_get(0)
        .unwrap()
}

/// For a test body `async fn NAME(db: TestDb)`, defines the tests `NAME::sqlite` and
/// `NAME::postgres`, each running it on a fresh database of that kind.
#[macro_export]
macro_rules! on_both {
    ($name:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name($crate::common::sqlite().await).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$name($crate::common::postgres().await).await
            }
        }
    };
}
