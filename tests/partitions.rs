//! Monthly partitions of `activity_log` (Postgres, migration 0017): the migration partitions an
//! existing table keeping every row; ingestion makes the partition of a month that has none;
//! retention drops a whole month past the cutoff (counting its rows) and deletes the month the
//! cutoff falls in row by row; a month holding a held record survives, its other rows deleted.
//! The retention tests run on SQLite too, where the same run deletes the same rows a chunk at a
//! time.

mod common;

use std::ops::ControlFlow;

use common::{count, exec, TestDb};
use sqlx::AnyPool;
use vigil::auth::Actor;
use vigil::demo::{self, SeedOptions};
use vigil::privacy::holds::{self, HoldTarget};
use vigil::retention::{self, Category, RunOptions, RunRecord, RunStatus};
use vigil::store::partitions::{month_end, month_start, partition_name};
use vigil::store::{Backend, Store, StoreOptions, Timestamp};

const DAY: i64 = 86_400_000_000;
const HOUR: i64 = 3_600_000_000;

/// The partitions of activity_log, by name.
async fn partitions(raw: &AnyPool) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT c.relname::TEXT FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid \
         WHERE i.inhparent = 'activity_log'::regclass ORDER BY 1",
    )
    .fetch_all(raw)
    .await
    .unwrap()
}

/// A platform account.
async fn account(raw: &AnyPool, name: &str) -> String {
    let id = uuid::Uuid::new_v4().to_string();
    sqlx::query(
        "INSERT INTO users (id, username, display_name, kind, status, created_at, updated_at) \
         VALUES ($1, $2, $2, 'platform', 'active', 1, 1)",
    )
    .bind(&id)
    .bind(name)
    .execute(raw)
    .await
    .unwrap();
    id
}

/// `n` sign-ins of `user` from `from`, an hour apart.
async fn activity(raw: &AnyPool, user: &str, from: i64, n: i64, tag: &str) {
    for i in 0..n {
        sqlx::query(
            "INSERT INTO activity_log (id, user_id, kind, outcome, occurred_at, ingested_at) \
             VALUES ($1, $2, 'login', 'success', $3, $3)",
        )
        .bind(format!("{tag}-{i}"))
        .bind(user)
        .bind(from + i * HOUR)
        .execute(raw)
        .await
        .unwrap();
    }
}

async fn run_activity(store: &Store, admin: &Actor, as_of: i64) -> RunRecord {
    let options = RunOptions {
        policy: Some(Category::Activity),
        as_of: Some(Timestamp::from_micros(as_of)),
        chunk: 7,
        ..RunOptions::default()
    };
    let rec = retention::run(store, admin, &options, &mut |_| ControlFlow::Continue(()))
        .await
        .unwrap();
    assert_eq!(rec.status, RunStatus::Completed, "{:?}", rec.errors);
    rec
}

/// Two old months, the first well before the cutoff, the cutoff ten days into the second.
fn old_months() -> (i64, i64, i64) {
    let a = month_start(Timestamp::now().micros() - 3 * 365 * DAY);
    let b = month_end(a);
    (a, b, b + 10 * DAY)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_migration_partitions_an_existing_table_and_keeps_every_row() {
    let db = common::postgres().await;
    let raw = db.raw().await;
    let user = account(&raw, "mover").await;
    let may = 1_556_668_800_000_000; // 2019-05-01T00:00:00Z
    activity(&raw, &user, may + 30 * DAY, 30, "may").await; // May 31st into June
    activity(&raw, &user, -10 * HOUR, 3, "before-1970").await;
    activity(&raw, &user, Timestamp::now().micros() - 2 * HOUR, 2, "now").await;
    // The database as it was before migration 0017: a plain table, keyed by id.
    for sql in [
        "CREATE TABLE activity_log_plain (LIKE activity_log INCLUDING DEFAULTS INCLUDING CONSTRAINTS)",
        "INSERT INTO activity_log_plain SELECT * FROM activity_log",
        "DROP TABLE activity_log",
        "ALTER TABLE activity_log_plain RENAME TO activity_log",
        "ALTER TABLE activity_log ADD CONSTRAINT activity_log_pkey PRIMARY KEY (id)",
        "ALTER TABLE activity_log ADD CONSTRAINT activity_log_user_id_fkey \
         FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE",
        "CREATE INDEX activity_log_user_time_idx ON activity_log (user_id, occurred_at)",
        "CREATE INDEX activity_log_ingested_idx ON activity_log (ingested_at)",
        "CREATE INDEX activity_log_time_id_idx ON activity_log (occurred_at, id)",
        "DROP FUNCTION vigil_activity_partition_drop(BIGINT, BIGINT), \
         vigil_activity_partition_held(TEXT), vigil_activity_partition_ensure(BIGINT), \
         vigil_activity_partition_name(BIGINT), vigil_month_end(BIGINT), \
         vigil_month_start(BIGINT)",
        "DELETE FROM _sqlx_migrations WHERE version = 17",
    ] {
        exec(&raw, sql).await;
    }
    let before: String =
        sqlx::query_scalar("SELECT md5(string_agg(a::TEXT, '|' ORDER BY id)) FROM activity_log a")
            .fetch_one(&raw)
            .await
            .unwrap();
    assert!(partitions(&raw).await.is_empty());

    let reopened = Store::open(&db.url, &StoreOptions::default())
        .await
        .unwrap();
    let after: String =
        sqlx::query_scalar("SELECT md5(string_agg(a::TEXT, '|' ORDER BY id)) FROM activity_log a")
            .fetch_one(&raw)
            .await
            .unwrap();
    assert_eq!(after, before, "every row, every column, kept");
    assert_eq!(count(&raw, "SELECT COUNT(*) FROM activity_log").await, 35);
    let now = month_start(Timestamp::now().micros());
    let names = partitions(&raw).await;
    for want in [
        "activity_log_2019_05".to_owned(),
        "activity_log_2019_06".to_owned(),
        partition_name(now),
        partition_name(month_end(now)),
        "activity_log_default".to_owned(),
    ] {
        assert!(names.contains(&want), "{want} in {names:?}");
    }
    // Only the rows before 1970 are left to the default partition.
    assert_eq!(
        count(&raw, "SELECT COUNT(*) FROM activity_log_default").await,
        3
    );
    assert_eq!(
        count(&raw, "SELECT COUNT(*) FROM activity_log_2019_05").await,
        count(
            &raw,
            "SELECT COUNT(*) FROM activity_log \
             WHERE occurred_at >= 1556668800000000 AND occurred_at < 1559347200000000"
        )
        .await
    );
    // The key now includes the partition key; an id is still found by itself.
    let key: String = sqlx::query_scalar(
        "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = 'activity_log_pkey'",
    )
    .fetch_one(&raw)
    .await
    .unwrap();
    assert_eq!(key, "PRIMARY KEY (id, occurred_at)");
    reopened.close().await;
    raw.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingestion_makes_the_partition_of_a_month_that_has_none() {
    let db = common::postgres().await;
    let (admin, ring) = common::admin_keys(&db).await;
    let opts = SeedOptions {
        users: 5,
        comments: 0,
        days: 2,
        seed: 3,
        scenarios: false,
    };
    demo::seed(&db.store, &admin, &ring, opts, &mut |_| {})
        .await
        .unwrap();
    let names = vigil::platform::first_usernames(&db.store, 5)
        .await
        .unwrap();
    let raw = db.raw().await;
    let july = 1_625_097_600_000_000; // 2021-07-01T00:00:00Z
    assert!(!partitions(&raw).await.contains(&partition_name(july)));
    let line = |i: i64, at: i64, id: Option<&str>| {
        let id = id.map(|i| format!(r#","id":"{i}""#)).unwrap_or_default();
        format!(
            r#"{{"type":"login_attempt","user":"{}","at":"{}","ip":"192.0.2.9","country":"GB","outcome":"success"{id}}}"#,
            names[(i % 5) as usize],
            Timestamp::from_micros(at).to_rfc3339()
        ) + "\n"
    };
    let file: String = (0..40)
        .map(|i| line(i, july + 5 * DAY + i * HOUR, None))
        .collect();
    let first = vigil::monitor::ingest_reader(&db.store, &ring, &admin, file.as_bytes())
        .await
        .unwrap();
    assert_eq!(first.ingested, 40, "{first:?}");
    assert!(partitions(&raw).await.contains(&partition_name(july)));
    assert_eq!(
        count(&raw, "SELECT COUNT(*) FROM activity_log_2021_07").await,
        40
    );
    assert_eq!(
        count(&raw, "SELECT COUNT(*) FROM activity_log_default").await,
        0
    );
    // Twice adds nothing; nor does a record whose id is stored, under another time.
    let again = vigil::monitor::ingest_reader(&db.store, &ring, &admin, file.as_bytes())
        .await
        .unwrap();
    assert_eq!((again.ingested, again.duplicates), (0, 40), "{again:?}");
    let id = uuid::Uuid::new_v4().to_string();
    let once = line(1, july + DAY, Some(&id));
    let moved = line(1, july + 40 * DAY, Some(&id));
    let r = vigil::monitor::ingest_reader(&db.store, &ring, &admin, once.as_bytes())
        .await
        .unwrap();
    assert_eq!(r.ingested, 1);
    let r = vigil::monitor::ingest_reader(&db.store, &ring, &admin, moved.as_bytes())
        .await
        .unwrap();
    assert_eq!((r.ingested, r.duplicates), (0, 1), "{r:?}");
    let stored: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM activity_log WHERE id = $1")
        .bind(&id)
        .fetch_one(&raw)
        .await
        .unwrap();
    assert_eq!(stored, 1);
    raw.close().await;
}

async fn retention_drops_whole_old_months_and_deletes_the_cutoff_month_by_row(db: TestDb) {
    let admin = common::admin(&db).await;
    let raw = db.raw().await;
    let (a, b, cutoff) = old_months();
    vigil::store::partitions::ensure(&db.store, &[a, b])
        .await
        .unwrap();
    let user = account(&raw, "old.timer").await;
    activity(&raw, &user, a, 50, "a").await;
    activity(&raw, &user, b, 20, "b-due").await;
    activity(&raw, &user, cutoff + DAY, 20, "b-kept").await;
    let rec = run_activity(&db.store, &admin, cutoff + 90 * DAY).await;
    let counts = &rec.counts[&Category::Activity];
    assert_eq!((counts.done, counts.held), (70, 0), "{counts:?}");
    assert_eq!(
        count(
            &raw,
            "SELECT COUNT(*) FROM activity_log WHERE id LIKE 'b-kept-%'"
        )
        .await,
        20
    );
    assert_eq!(count(&raw, "SELECT COUNT(*) FROM activity_log").await, 20);
    if db.store.backend() == Backend::Postgres {
        // Month a went in one statement; month b, where the cutoff falls, row by row.
        assert_eq!(counts.partitions, 1, "{counts:?}");
        let names = partitions(&raw).await;
        assert!(!names.contains(&partition_name(a)), "{names:?}");
        assert!(names.contains(&partition_name(b)), "{names:?}");
        let in_b = count(&raw, &format!("SELECT COUNT(*) FROM {}", partition_name(b))).await;
        assert_eq!(in_b, 20);
    } else {
        assert_eq!(counts.partitions, 0);
    }
    // A second run finds nothing due.
    let again = run_activity(&db.store, &admin, cutoff + 90 * DAY).await;
    assert_eq!(again.counts[&Category::Activity].done, 0);
    raw.close().await;
}
on_both!(retention_drops_whole_old_months_and_deletes_the_cutoff_month_by_row);

async fn a_held_record_s_partition_survives_retention(db: TestDb) {
    let admin = common::admin(&db).await;
    let raw = db.raw().await;
    let (a, b, cutoff) = old_months();
    let earlier = month_start(a - DAY);
    vigil::store::partitions::ensure(&db.store, &[earlier, a, b])
        .await
        .unwrap();
    let held = account(&raw, "held.one").await;
    let free = account(&raw, "free.one").await;
    activity(&raw, &free, earlier, 25, "earlier-free").await;
    activity(&raw, &held, a + DAY, 5, "a-held").await;
    activity(&raw, &free, a + 2 * DAY, 30, "a-free").await;
    holds::place(
        &db.store,
        &admin,
        &HoldTarget::User("held.one".into()),
        "litigation hold 2026-44",
    )
    .await
    .unwrap();
    let rec = run_activity(&db.store, &admin, cutoff + 90 * DAY).await;
    let counts = &rec.counts[&Category::Activity];
    assert_eq!((counts.done, counts.held), (55, 5), "{counts:?}");
    assert_eq!(
        count(
            &raw,
            "SELECT COUNT(*) FROM activity_log WHERE id LIKE 'a-held-%'"
        )
        .await,
        5
    );
    assert_eq!(count(&raw, "SELECT COUNT(*) FROM activity_log").await, 5);
    if db.store.backend() == Backend::Postgres {
        // The month without a held record went whole; the held record's month stays, holding
        // only the held rows.
        assert_eq!(counts.partitions, 1, "{counts:?}");
        let names = partitions(&raw).await;
        assert!(!names.contains(&partition_name(earlier)), "{names:?}");
        assert!(names.contains(&partition_name(a)), "{names:?}");
        let in_a = count(&raw, &format!("SELECT COUNT(*) FROM {}", partition_name(a))).await;
        assert_eq!(in_a, 5);
    }
    raw.close().await;
}
on_both!(a_held_record_s_partition_survives_retention);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_coming_month_is_made_ahead() {
    let db = common::postgres().await;
    let raw = db.raw().await;
    let this = month_start(Timestamp::now().micros());
    let next = partition_name(month_end(this));
    // The migration made this month and the next; take the next away, as if the month had
    // turned since.
    assert!(partitions(&raw).await.contains(&next));
    exec(&raw, &format!("DROP TABLE {next}")).await;
    assert_eq!(
        vigil::store::partitions::ensure_ahead(&db.store)
            .await
            .unwrap(),
        1
    );
    assert!(partitions(&raw).await.contains(&next));
    // Made already: nothing to do.
    assert_eq!(
        vigil::store::partitions::ensure_ahead(&db.store)
            .await
            .unwrap(),
        0
    );
    // SQLite has no partitions: a no-op.
    let lite = common::sqlite().await;
    assert_eq!(
        vigil::store::partitions::ensure_ahead(&lite.store)
            .await
            .unwrap(),
        0
    );
    raw.close().await;
}
