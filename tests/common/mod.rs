//! Shared test harness: one test body, run on a fresh SQLite file and on a fresh Postgres
//! database (from `VIGIL_TEST_POSTGRES_URL`, which the project's test script provides).
#![allow(dead_code)]

use sqlx::any::AnyPoolOptions;
use sqlx::AnyPool;
use vigil::auth::platform_tokens::PlatformTokenKeys;
use vigil::auth::{self, Actor, LoginOutcome, LoginSource, MfaPolicy, Password, Session, Username};
use vigil::config::PlatformConfig;
use vigil::crypto::{KeyBits, TokenSigningKey};
use vigil::keys::keystore::{FileKeystore, Keystore};
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

/// Waits, if fewer than `needed` remain of the current UTC hour, until the next one starts.
/// Demo histories are anchored to the hour they are seeded in: a test that seeds two and
/// compares what they open would otherwise see one history an hour later than the other
/// when it runs across the turn of an hour.
#[allow(dead_code)]
pub async fn clear_of_the_hour(needed: std::time::Duration) {
    const HOUR: i64 = 3_600_000_000;
    let now = vigil::store::Timestamp::now().micros();
    let left = HOUR - now.rem_euclid(HOUR);
    if left < needed.as_micros() as i64 {
        tokio::time::sleep(std::time::Duration::from_micros(left as u64 + 1_000_000)).await;
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
    auth::authenticate(&db.store, "root-admin", PASSWORD, &MfaPolicy::none())
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

/// Signs `username` in on the machine whose keystore is `keystore`, with no MFA step owed and
/// under no MFA policy (tests of the policy pass theirs): the session with that machine's keys
/// and the credential key the password opened.
pub async fn sign_in_with(
    db: &TestDb,
    keystore: &dyn Keystore,
    username: &str,
    password: &str,
) -> Session {
    match auth::login(
        &db.store,
        Some(keystore),
        username,
        password,
        &LoginSource::default(),
        &MfaPolicy::none(),
    )
    .await
    .expect("sign in")
    {
        LoginOutcome::SignedIn(s) => s,
        LoginOutcome::MfaRequired(_) => panic!("{username} has MFA on"),
    }
}

/// `vigil init`, then the administrator's full sign-in on the first machine.
pub async fn admin_session(db: &TestDb) -> Session {
    let _ = admin(db).await;
    sign_in_with(db, &db.keystore, "root-admin", PASSWORD).await
}

/// The platform's identity service, as tests play it: its own Ed25519 key pair, the public half
/// in a PEM file that a `[platform]` configuration names, and tokens for platform accounts.
pub struct PlatformIssuer {
    key: TokenSigningKey,
    pub config: PlatformConfig,
    _dir: tempfile::TempDir,
}

impl PlatformIssuer {
    /// A fresh key pair, its public key written as a PEM file.
    pub fn new() -> Self {
        let key = TokenSigningKey::generate();
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("platform.pem");
        std::fs::write(&path, ed25519_pem(key.public_key())).expect("write PEM");
        Self {
            key,
            config: PlatformConfig {
                token_keys: Some(path),
                ..PlatformConfig::default()
            },
            _dir: dir,
        }
    }

    /// The public keys as Vigil loads them.
    pub fn keys(&self) -> PlatformTokenKeys {
        PlatformTokenKeys::load(&self.config).expect("platform keys")
    }

    /// The signing key (tests that forge tokens use it with other claims).
    pub fn signing_key(&self) -> &TokenSigningKey {
        &self.key
    }

    /// Signs `claims` as the platform does.
    pub fn sign(&self, claims: &serde_json::Value) -> String {
        let header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
        jsonwebtoken::encode(&header, claims, &self.key.encoding_key()).expect("sign")
    }

    /// Opens a platform session for account `user` (as the platform records it in the shared
    /// database) and returns an access token for it with `roles`.
    pub async fn token(&self, db: &TestDb, user: &str, roles: &[&str]) -> String {
        let raw = db.raw().await;
        let session = uuid::Uuid::now_v7().to_string();
        let now = vigil::store::Timestamp::now().micros();
        sqlx::query(
            "INSERT INTO sessions (id, user_id, client, created_at, last_seen_at, expires_at) \
             VALUES ($1, $2, 'platform', $3, $3, $4)",
        )
        .bind(&session)
        .bind(user)
        .bind(now)
        .bind(now + 86_400_000_000)
        .execute(&raw)
        .await
        .expect("platform session");
        raw.close().await;
        let iat = now / 1_000_000;
        self.sign(&self.claims(user, &session, roles, iat))
    }

    /// The claims of a token for `user` in `session`, issued at `iat`.
    pub fn claims(&self, user: &str, session: &str, roles: &[&str], iat: i64) -> serde_json::Value {
        serde_json::json!({
            "iss": self.config.token_issuer,
            "aud": self.config.token_audience,
            "sub": user,
            "sid": session,
            "roles": roles,
            "iat": iat,
            "nbf": iat,
            "exp": iat + 3600,
            "jti": uuid::Uuid::now_v7().to_string(),
        })
    }
}

/// An Ed25519 public key as a PEM `PUBLIC KEY` (SPKI, RFC 8410) block.
pub fn ed25519_pem(public: &[u8; 32]) -> String {
    use base64::Engine;
    let mut der = vec![
        0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
    ];
    der.extend_from_slice(public);
    format!(
        "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
        base64::engine::general_purpose::STANDARD.encode(der)
    )
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
    auth::authenticate(&db.store, username, PASSWORD, &MfaPolicy::none())
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
