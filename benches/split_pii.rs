//! The `pii` → `contact`/`network` re-seal rate (`vigil keys split-pii`), on SQLite and, with
//! `VIGIL_TEST_POSTGRES_URL` set, on a fresh Postgres database.
//!
//! It seeds a demo platform, then turns its emails, phones and IPs back into what an older
//! version wrote (sealed under one `pii` key, `pii_key_version` set), and times the split over
//! them: rows re-sealed per second, one run each.
//!
//! `cargo bench --bench split_pii -- USERS COMMENTS` (defaults 20000 and 100000).

use std::time::Instant;

use sqlx::Row;
use vigil::auth::{self, Password, Username};
use vigil::crypto::field::{self, Place};
use vigil::crypto::{KeyBits, KeyVersion, SymmetricKey};
use vigil::demo::{self, SeedOptions};
use vigil::keys::{self, keystore::FileKeystore, rotation, split, Purpose};
use vigil::store::{DatabaseUrl, Store, StoreOptions};

const PASSWORD: &str = "correct horse battery staple";

#[tokio::main]
async fn main() {
    let args: Vec<u32> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let users = args.first().copied().unwrap_or(20_000);
    let comments = args.get(1).copied().unwrap_or(100_000);
    let dir = tempfile::tempdir().unwrap();
    let lite = DatabaseUrl::sqlite_file(&dir.path().join("vigil.db"));
    run("sqlite", &lite, users, comments).await;
    if let Ok(server) = std::env::var("VIGIL_TEST_POSTGRES_URL") {
        sqlx::any::install_default_drivers();
        let name = format!("vigil_bench_{}", uuid::Uuid::new_v4().simple());
        let admin = sqlx::AnyPool::connect(&server).await.unwrap();
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&admin)
            .await
            .unwrap();
        let (base, _) = server.rsplit_once('/').unwrap();
        let url = DatabaseUrl::parse(&format!("{base}/{name}")).unwrap();
        run("postgres", &url, users, comments).await;
        admin.close().await;
    }
}

async fn run(backend: &str, url: &DatabaseUrl, users: u32, comments: u32) {
    let store = Store::open(url, &StoreOptions::default()).await.unwrap();
    let keys_dir = tempfile::tempdir().unwrap();
    let ks = FileKeystore::open(&keys_dir.path().join("keys")).unwrap();
    let name = Username::parse("root-admin").unwrap();
    let pw = Password::parse_for_operator(PASSWORD, &name).unwrap();
    auth::bootstrap_admin(&store, &ks, &name, &pw, KeyBits::B2048)
        .await
        .unwrap();
    let admin = auth::authenticate(
        &store,
        "root-admin",
        PASSWORD,
        &vigil::auth::MfaPolicy::none(),
    )
    .await
    .unwrap();
    let ring = keys::unlock(&store, &ks, &admin, PASSWORD).await.unwrap();
    // `pii` v1 below `contact` and `network` v2, as the split numbers them.
    for p in [Purpose::Contact, Purpose::Network] {
        let r = rotation::start(&store, &ring, &admin, p).await.unwrap();
        rotation::run(&store, &ring, &admin, &r, 5_000, &mut |_| {})
            .await
            .unwrap();
    }
    let opts = SeedOptions {
        users,
        comments,
        days: 30,
        seed: 7,
        scenarios: false,
    };
    demo::seed(&store, &admin, &ring, opts, &mut |_| {})
        .await
        .unwrap();

    // What an older version wrote: every value sealed under `pii` v1.
    let pii = SymmetricKey::random();
    let mut tx = store.begin().await.unwrap();
    let pii_id = uuid::Uuid::now_v7().to_string();
    sqlx::query(
        "INSERT INTO data_keys (id, purpose, version, status, created_at) \
         VALUES ($1, 'pii', 1, 'active', 0)",
    )
    .bind(&pii_id)
    .execute(&mut *tx)
    .await
    .unwrap();
    let pair: String = sqlx::query("SELECT id FROM user_keys WHERE retired_at IS NULL")
        .fetch_one(&mut *tx)
        .await
        .unwrap()
        .get(0);
    sqlx::query(
        "INSERT INTO key_grants (data_key_id, user_key_id, wrapped_key, granted_at) \
         VALUES ($1, $2, $3, 0)",
    )
    .bind(&pii_id)
    .bind(&pair)
    .bind(
        ring.public_key()
            .encrypt("vigil-data-key-v1:pii:1", pii.expose())
            .unwrap(),
    )
    .execute(&mut *tx)
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let t = Instant::now();
    let mut legacy = 0u64;
    for (table, cols, purpose, version_col) in [
        (
            "users",
            &["email_enc", "phone_enc"][..],
            Purpose::Contact,
            "contact_key_version",
        ),
        (
            "activity_log",
            &["ip_enc"][..],
            Purpose::Network,
            "network_key_version",
        ),
    ] {
        let rows = sqlx::query(&format!(
            "SELECT id, {} FROM {table} WHERE {version_col} IS NOT NULL",
            cols.join(", ")
        ))
        .fetch_all(&mut *store.begin().await.unwrap())
        .await
        .unwrap();
        let mut tx = store.begin().await.unwrap();
        for r in rows {
            let id: String = r.get(0);
            let mut values = Vec::new();
            for (i, col) in cols.iter().enumerate() {
                let sealed: Option<Vec<u8>> = r.get(1 + i);
                values.push(match sealed {
                    None => None,
                    Some(s) => {
                        let place = Place::new(table, col, &id);
                        let plain = ring.open_field(&store, purpose, &place, &s).await.unwrap();
                        Some(field::seal(&pii, KeyVersion(1), &place, &plain))
                    }
                });
            }
            let sets: Vec<String> = cols
                .iter()
                .enumerate()
                .map(|(i, c)| format!("{c} = ${}", i + 1))
                .collect();
            let sql = format!(
                "UPDATE {table} SET {}, pii_key_version = 1, {version_col} = NULL WHERE id = ${}",
                sets.join(", "),
                cols.len() + 1
            );
            let mut u = sqlx::query(&sql);
            for v in values {
                u = u.bind(v);
            }
            u.bind(&id).execute(&mut *tx).await.unwrap();
            legacy += 1;
        }
        tx.commit().await.unwrap();
    }
    let setup = t.elapsed();

    let ring = keys::unlock(&store, &ks, &admin, PASSWORD).await.unwrap();
    let t = Instant::now();
    let report = split::run(&store, &ring, &admin, 5_000, &mut |_| {})
        .await
        .unwrap();
    let took = t.elapsed();
    assert_eq!(report.rows, legacy);
    assert_eq!(split::remaining(&store).await.unwrap(), 0);
    println!(
        "{backend}: split-pii re-sealed {} rows in {:.2} s: {:.0} rows/s (setup {:.1} s)",
        report.rows,
        took.as_secs_f64(),
        report.rows as f64 / took.as_secs_f64(),
        setup.as_secs_f64()
    );
    store.close().await;
}
