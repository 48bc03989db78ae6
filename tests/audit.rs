//! The audit chain: append, verify, tamper detection, listing and concurrent appenders.

mod common;

use common::{admin, count, TestDb};
use sqlx::Row;
use vigil::audit::{
    self, AuditAction, AuditActor, AuditFilter, ChainFault, NewAuditEntry, Verification,
};

async fn append_n(db: &TestDb, n: usize) {
    let mut tx = db.store.begin().await.unwrap();
    for i in 0..n {
        audit::append(
            &mut tx,
            &NewAuditEntry::new(AuditActor::System("test"), AuditAction::BenchmarkEntry)
                .target(format!("item:{i}"))
                .details(serde_json::json!({ "i": i })),
        )
        .await
        .unwrap();
    }
    tx.commit().await.unwrap();
}

async fn chain(db: &TestDb) -> Verification {
    audit::verify_chain(&db.store).await.unwrap()
}

async fn verify_records_its_result(db: TestDb) {
    let actor = admin(&db).await; // seqs 1-2: operator.bootstrapped, keys.data_keys_created
    append_n(&db, 8).await;
    let v = audit::verify(&db.store, &actor).await.unwrap();
    assert_eq!(
        v,
        Verification::Ok {
            entries: 10,
            last_seq: 10
        }
    );
    // The verification itself is entry 11, and the chain still verifies.
    let last = audit::list(&db.store, &actor, &AuditFilter::default())
        .await
        .unwrap();
    assert_eq!(last[0].seq, 11);
    assert_eq!(last[0].action, "audit.verified");
    assert!(matches!(
        chain(&db).await,
        Verification::Ok { entries: 11, .. }
    ));
}
on_both!(verify_records_its_result);

async fn a_rolled_back_operation_leaves_no_entry(db: TestDb) {
    let _ = admin(&db).await;
    let mut tx = db.store.begin().await.unwrap();
    let seq = audit::append(
        &mut tx,
        &NewAuditEntry::new(AuditActor::System("test"), AuditAction::BenchmarkEntry),
    )
    .await
    .unwrap();
    assert_eq!(seq, 3);
    tx.rollback().await.unwrap();
    // The head was rolled back with it: the next entry takes seq 3 and the chain holds.
    append_n(&db, 1).await;
    assert_eq!(
        chain(&db).await,
        Verification::Ok {
            entries: 3,
            last_seq: 3
        }
    );
}
on_both!(a_rolled_back_operation_leaves_no_entry);

/// Each column of a stored entry, and an edit to it that an attacker could make.
const TAMPERS: &[(&str, &str)] = &[
    ("at", "UPDATE audit_log SET at = at + 1 WHERE seq = 4"),
    (
        "actor",
        "UPDATE audit_log SET actor = 'system:other' WHERE seq = 4",
    ),
    (
        "action",
        "UPDATE audit_log SET action = 'demo.seeded' WHERE seq = 4",
    ),
    (
        "target",
        "UPDATE audit_log SET target = 'item:999' WHERE seq = 4",
    ),
    (
        "target null",
        "UPDATE audit_log SET target = NULL WHERE seq = 4",
    ),
    (
        "details",
        "UPDATE audit_log SET details = '{\"i\":99}' WHERE seq = 4",
    ),
];

async fn editing_any_column_breaks_the_chain_at_that_entry(db: TestDb) {
    let _ = admin(&db).await;
    append_n(&db, 7).await;
    let raw = db.raw().await;
    let original: Vec<(i64, String, String, Option<String>, String)> =
        sqlx::query("SELECT at, actor, action, target, details FROM audit_log WHERE seq = 4")
            .fetch_all(&raw)
            .await
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)))
            .collect();
    let (at, actor, action, target, details) = original[0].clone();
    for (column, sql) in TAMPERS {
        common::exec(&raw, sql).await;
        match chain(&db).await {
            Verification::Broken {
                seq: 4,
                fault: ChainFault::HashMismatch,
                entries_ok: 3,
            } => {}
            other => panic!("tampering with {column}: {other:?}"),
        }
        // Restore, and the chain verifies again.
        sqlx::query(
            "UPDATE audit_log SET at = $1, actor = $2, action = $3, target = $4, details = $5 \
             WHERE seq = 4",
        )
        .bind(at)
        .bind(&actor)
        .bind(&action)
        .bind(&target)
        .bind(&details)
        .execute(&raw)
        .await
        .unwrap();
        assert!(matches!(
            chain(&db).await,
            Verification::Ok { entries: 9, .. }
        ));
    }

    // Rewriting an entry's hash to match its new content breaks the next entry's link.
    common::exec(&raw, "UPDATE audit_log SET hash = prev_hash WHERE seq = 6").await;
    assert!(matches!(
        chain(&db).await,
        Verification::Broken {
            seq: 6,
            fault: ChainFault::HashMismatch,
            ..
        }
    ));
    raw.close().await;
}
on_both!(editing_any_column_breaks_the_chain_at_that_entry);

async fn links_gaps_and_truncation_are_named(db: TestDb) {
    let _ = admin(&db).await;
    append_n(&db, 8).await; // seqs 1..=10
    let raw = db.raw().await;
    // A forged prev_hash.
    common::exec(&raw, "UPDATE audit_log SET prev_hash = hash WHERE seq = 3").await;
    assert!(matches!(
        chain(&db).await,
        Verification::Broken {
            seq: 3,
            fault: ChainFault::BrokenLink,
            entries_ok: 2
        }
    ));
    // Renumbering an entry leaves a gap where it was.
    common::exec(&raw, "UPDATE audit_log SET seq = 500 WHERE seq = 2").await;
    assert_eq!(
        chain(&db).await,
        Verification::Broken {
            seq: 2,
            fault: ChainFault::Missing { found: Some(3) },
            entries_ok: 1
        }
    );
    raw.close().await;

    // On a clean chain, deleting the newest entries is caught by the head.
    let db2 = common::fresh_like(&db).await;
    let _ = admin(&db2).await;
    append_n(&db2, 3).await;
    let raw = db2.raw().await;
    common::exec(&raw, "DELETE FROM audit_log WHERE seq >= 4").await;
    assert_eq!(
        chain(&db2).await,
        Verification::Broken {
            seq: 4,
            fault: ChainFault::Truncated { head_seq: 5 },
            entries_ok: 3
        }
    );
    raw.close().await;
}
on_both!(links_gaps_and_truncation_are_named);

async fn list_filters(db: TestDb) {
    let actor = admin(&db).await;
    append_n(&db, 4).await;
    audit::verify(&db.store, &actor).await.unwrap();
    let all = audit::list(&db.store, &actor, &AuditFilter::default())
        .await
        .unwrap();
    assert_eq!(all.len(), 7);
    assert!(all.windows(2).all(|w| w[0].seq > w[1].seq), "newest first");

    let mine = audit::list(
        &db.store,
        &actor,
        &AuditFilter {
            actor: Some(format!("user:{}", actor.user_id())),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(
        mine.iter().map(|e| e.action.as_str()).collect::<Vec<_>>(),
        ["audit.verified"]
    );

    let boot = audit::list(
        &db.store,
        &actor,
        &AuditFilter {
            action: Some("operator.bootstrapped".into()),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(boot.len(), 1);
    assert_eq!(boot[0].seq, 1);
    assert_eq!(boot[0].actor, "system:init");

    let limited = audit::list(
        &db.store,
        &actor,
        &AuditFilter {
            limit: Some(2),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(limited.iter().map(|e| e.seq).collect::<Vec<_>>(), [7, 6]);
    let older = audit::list(
        &db.store,
        &actor,
        &AuditFilter {
            limit: Some(2),
            before_seq: Some(6),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(older.iter().map(|e| e.seq).collect::<Vec<_>>(), [5, 4]);
    assert_eq!(audit::head_seq(&db.store).await.unwrap(), 7);
    let names = audit::usernames(&db.store, &actor, &mine).await.unwrap();
    assert_eq!(
        names
            .get(&format!("user:{}", actor.user_id()))
            .map(String::as_str),
        Some(actor.username().as_str())
    );

    let future = audit::list(
        &db.store,
        &actor,
        &AuditFilter {
            since: Some(vigil::store::Timestamp::from_micros(
                vigil::store::Timestamp::now().micros() + 3_600_000_000,
            )),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert!(future.is_empty());
}
on_both!(list_filters);

async fn roles_without_audit_rights_are_refused(db: TestDb) {
    let _ = admin(&db).await;
    let moderator = common::operator_with_role(&db, "mod-one", "moderator").await;
    // Moderators may read the log but not run (and record) a verification.
    assert!(audit::list(&db.store, &moderator, &AuditFilter::default())
        .await
        .is_ok());
    let err = audit::verify(&db.store, &moderator).await.unwrap_err();
    assert!(err.to_string().contains("permission denied"), "{err}");
    let platform_user = common::operator_with_role(&db, "plain-user", "user").await;
    assert!(
        audit::list(&db.store, &platform_user, &AuditFilter::default())
            .await
            .is_err()
    );
    // Refusals write nothing.
    let raw = db.raw().await;
    assert_eq!(count(&raw, "SELECT COUNT(*) FROM audit_log").await, 2);
    raw.close().await;
}
on_both!(roles_without_audit_rights_are_refused);

async fn concurrent_tasks_queue_on_the_head(db: TestDb) {
    let _ = admin(&db).await;
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let store = db.store.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..25 {
                let mut tx = store.begin().await.unwrap();
                audit::append(
                    &mut tx,
                    &NewAuditEntry::new(AuditActor::System("test"), AuditAction::BenchmarkEntry)
                        .details(serde_json::json!({ "i": i })),
                )
                .await
                .unwrap();
                tx.commit().await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(
        chain(&db).await,
        Verification::Ok {
            entries: 102,
            last_seq: 102
        }
    );
}
on_both!(concurrent_tasks_queue_on_the_head);

// Two separate processes appending to one database at once must not fork the chain. The test
// re-runs its own binary as the two appenders.
const CHILD_URL: &str = "VIGIL_AUDIT_CHILD_URL";
const PER_CHILD: usize = 150;

async fn two_processes(db: TestDb, test_name: &str) {
    if let Ok(url) = std::env::var(CHILD_URL) {
        // Child: append to the parent's database.
        let store = vigil::store::Store::open(
            &vigil::store::DatabaseUrl::parse(&url).unwrap(),
            &Default::default(),
        )
        .await
        .unwrap();
        for i in 0..PER_CHILD {
            let mut tx = store.begin().await.unwrap();
            audit::append(
                &mut tx,
                &NewAuditEntry::new(AuditActor::System("child"), AuditAction::BenchmarkEntry)
                    .details(serde_json::json!({ "pid": std::process::id(), "i": i })),
            )
            .await
            .unwrap();
            tx.commit().await.unwrap();
        }
        return;
    }
    let _ = admin(&db).await;
    let url = db.url.clone();
    let connect = match url.sqlite_path() {
        Some(p) => format!("sqlite://{}", p.display()),
        None => db.raw_url.clone(),
    };
    let exe = std::env::current_exe().unwrap();
    let children: Vec<_> = (0..2)
        .map(|_| {
            std::process::Command::new(&exe)
                .args(["--exact", test_name, "--nocapture", "--test-threads", "1"])
                .env(CHILD_URL, &connect)
                .stdout(std::process::Stdio::null())
                .spawn()
                .expect("spawn appender process")
        })
        .collect();
    for mut c in children {
        assert!(c.wait().unwrap().success(), "an appender process failed");
    }
    let total = 2 + 2 * PER_CHILD as u64;
    assert_eq!(
        chain(&db).await,
        Verification::Ok {
            entries: total,
            last_seq: total as i64
        }
    );
    // Both processes really did append.
    let raw = db.raw().await;
    let pids = count(
        &raw,
        "SELECT COUNT(DISTINCT details) FROM audit_log WHERE actor = 'system:child'",
    )
    .await;
    assert_eq!(pids, 2 * PER_CHILD as i64);
    raw.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_append_without_forking_postgres() {
    let db = if std::env::var(CHILD_URL).is_ok() {
        // The child does not need a database of its own; hand it a throwaway SQLite one.
        common::sqlite().await
    } else {
        common::postgres().await
    };
    two_processes(db, "two_processes_append_without_forking_postgres").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_append_without_forking_sqlite() {
    two_processes(
        common::sqlite().await,
        "two_processes_append_without_forking_sqlite",
    )
    .await
}

async fn long_chains_are_walked_to_the_end(db: TestDb) {
    // Longer than one page of the SQLite walk (4,096 entries), with faults past the first page.
    let _ = admin(&db).await;
    append_n(&db, 9_998).await;
    assert_eq!(
        chain(&db).await,
        Verification::Ok {
            entries: 10_000,
            last_seq: 10_000
        }
    );
    let raw = db.raw().await;
    common::exec(&raw, "UPDATE audit_log SET details = '{}' WHERE seq = 9000").await;
    assert_eq!(
        chain(&db).await,
        Verification::Broken {
            seq: 9000,
            fault: ChainFault::HashMismatch,
            entries_ok: 8999
        }
    );
    // A gap exactly at a page boundary.
    common::exec(&raw, "DELETE FROM audit_log WHERE seq = 4097").await;
    assert_eq!(
        chain(&db).await,
        Verification::Broken {
            seq: 4097,
            fault: ChainFault::Missing { found: Some(4098) },
            entries_ok: 4096
        }
    );
    raw.close().await;
}
on_both!(long_chains_are_walked_to_the_end);
