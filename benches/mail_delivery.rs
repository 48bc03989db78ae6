//! Outbox delivery rate: messages delivered per second to a local SMTP server (the tests'
//! server: STARTTLS with a certificate made here) over one connection reused, each message
//! claimed and committed before and after its SMTP transaction, its recipient's address opened
//! with the `contact` key, its template rendered. On SQLite and, with
//! `VIGIL_TEST_POSTGRES_URL` set, on a fresh Postgres database.
//!
//! `cargo bench --bench mail_delivery -- MESSAGES RUNS` (defaults 2000 and 3); prints the
//! median rate.

#[path = "../tests/common/smtp.rs"]
mod smtp;

use std::time::Instant;

use vigil::auth::{self, Password, Username};
use vigil::crypto::KeyBits;
use vigil::keys::{self, keystore::FileKeystore, WriteKeys};
use vigil::mail::{self, DeliverOptions, Mailer};
use vigil::platform::{self, NewPlatformUser};
use vigil::store::{DatabaseUrl, Store, StoreOptions, Timestamp};

const PASSWORD: &str = "correct horse battery staple";

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<u32> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let messages = args.first().copied().unwrap_or(2_000);
    let runs = args.get(1).copied().unwrap_or(3).max(1);
    let dir = tempfile::tempdir().unwrap();
    let lite = DatabaseUrl::sqlite_file(&dir.path().join("vigil.db"));
    run("sqlite", &lite, messages, runs).await;
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
        run("postgres", &url, messages, runs).await;
        admin.close().await;
    }
}

async fn run(backend: &str, url: &DatabaseUrl, messages: u32, runs: u32) {
    let store = Store::open(url, &StoreOptions::default()).await.unwrap();
    let keys_dir = tempfile::tempdir().unwrap();
    let ks = FileKeystore::open(&keys_dir.path().join("keys")).unwrap();
    let name = Username::parse("root-admin").unwrap();
    let pw = Password::parse_for_operator(PASSWORD, &name).unwrap();
    auth::bootstrap_admin(&store, &ks, &name, &pw, KeyBits::B2048)
        .await
        .unwrap();
    let admin = auth::authenticate(&store, "root-admin", PASSWORD, &auth::MfaPolicy::none())
        .await
        .unwrap();
    let ring = keys::unlock(&store, &ks, &admin, PASSWORD).await.unwrap();
    // 100 recipients with addresses, sealed as the platform writes them.
    let wk = WriteKeys::current(&store, &ring, &keys::PLATFORM_PURPOSES)
        .await
        .unwrap();
    let people: Vec<NewPlatformUser> = (0..100)
        .map(|i| NewPlatformUser {
            id: uuid::Uuid::new_v4(),
            username: format!("person{i}"),
            display_name: format!("Person {i}"),
            country: "DE".into(),
            email: Some(format!("person{i}@mail.example")),
            phone: None,
            created_at: Timestamp::now(),
            last_login_at: None,
        })
        .collect();
    let mut tx = store.begin().await.unwrap();
    platform::insert_users(&mut tx, &wk, &people).await.unwrap();
    tx.commit().await.unwrap();

    let server = smtp::SmtpServer::start().await;
    let mailer = Mailer::new(&server.config(), None).unwrap();
    let mut rates = Vec::new();
    for _ in 0..runs {
        // Security notices, as the incident responses queue them.
        let mut tx = store.begin().await.unwrap();
        let now = Timestamp::now().micros();
        for i in 0..messages {
            sqlx::query(
                "INSERT INTO notifications (id, kind, recipient_id, payload, created_at, \
                 template, state, next_attempt_at) \
                 VALUES ($1, 'security_notice', $2, $3, $4, 'security_notice', 'queued', $4)",
            )
            .bind(uuid::Uuid::now_v7().to_string())
            .bind(people[i as usize % people.len()].id.to_string())
            .bind(serde_json::json!({ "incident": uuid::Uuid::new_v4() }).to_string())
            .bind(now)
            .execute(&mut *tx)
            .await
            .unwrap();
        }
        tx.commit().await.unwrap();
        let before = server.received().len();
        let t = Instant::now();
        let report = mail::deliver_due(&store, &ring, &mailer, &DeliverOptions::default())
            .await
            .unwrap();
        let secs = t.elapsed().as_secs_f64();
        assert_eq!(report.sent, u64::from(messages));
        assert_eq!(server.received().len() - before, messages as usize);
        rates.push(f64::from(messages) / secs);
    }
    rates.sort_by(f64::total_cmp);
    println!(
        "{backend}: {messages} messages per run, {runs} runs: median {:.0} messages/s \
         (range {:.0}-{:.0})",
        rates[rates.len() / 2],
        rates[0],
        rates[rates.len() - 1]
    );
    store.close().await;
}
