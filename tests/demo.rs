//! Demo data: what it writes, that it is deterministic, and what it refuses.

mod common;

use common::{admin_keys, count, TestDb};
use sqlx::Row;
use vigil::audit::{self, AuditFilter, Verification};
use vigil::demo::{self, DemoError, SeedOptions};
use vigil::platform;

fn opts(seed: u64) -> SeedOptions {
    SeedOptions {
        users: 50,
        comments: 500,
        days: 14,
        seed,
        scenarios: false,
    }
}

async fn seeds_a_platform_and_records_it(db: TestDb) {
    let (actor, ring) = admin_keys(&db).await;
    let mut batches = 0;
    let report = demo::seed(&db.store, &actor, &ring, opts(7), &mut |_| batches += 1)
        .await
        .unwrap();
    assert!(batches >= 2, "progress is reported per batch");
    assert_eq!(report.users, 50);
    assert_eq!(report.comments, 500);
    assert!(report.reactions > 0 && report.activity >= 500, "{report:?}");
    let c = platform::counts(&db.store).await.unwrap();
    assert_eq!(
        (c.users, c.events, c.comments, c.reactions, c.activity),
        (
            report.users as i64,
            report.events as i64,
            report.comments as i64,
            report.reactions as i64,
            report.activity as i64
        )
    );

    let raw = db.raw().await;
    // Every comment's author and event exist; every comment has an activity record.
    assert_eq!(
        count(
            &raw,
            "SELECT COUNT(*) FROM comments c JOIN users u ON u.id = c.author_id \
             JOIN events e ON e.id = c.event_id"
        )
        .await,
        500
    );
    assert_eq!(
        count(
            &raw,
            "SELECT COUNT(*) FROM activity_log WHERE kind = 'comment'"
        )
        .await,
        500
    );
    // Personal fields are sealed: every platform user has an email ciphertext and blind
    // index, most a phone; every activity record a sealed IP.
    assert_eq!(
        count(
            &raw,
            "SELECT COUNT(*) FROM users WHERE kind = 'platform' AND email_enc IS NOT NULL \
             AND email_bidx IS NOT NULL AND contact_key_version = 1 AND bidx_key_version = 1"
        )
        .await,
        50
    );
    let phones = count(
        &raw,
        "SELECT COUNT(*) FROM users WHERE phone_enc IS NOT NULL",
    )
    .await;
    assert!(phones > 10 && phones < 50, "{phones}");
    assert_eq!(
        count(
            &raw,
            "SELECT COUNT(*) FROM activity_log WHERE ip_enc IS NULL"
        )
        .await,
        0
    );
    // Private comments: only envelopes, each with its recipients.
    let private = count(
        &raw,
        "SELECT COUNT(*) FROM comments WHERE is_private = TRUE",
    )
    .await;
    assert_eq!(
        count(
            &raw,
            "SELECT COUNT(*) FROM comments WHERE is_private = TRUE AND body IS NULL \
             AND body_envelope IS NOT NULL"
        )
        .await,
        private
    );
    assert_eq!(
        count(
            &raw,
            "SELECT COUNT(*) FROM comments WHERE content_hash IS NULL"
        )
        .await,
        0
    );
    // The sealed emails open with the administrator's keys and are found by blind index.
    let ids = platform::sample_user_ids(&db.store, 5).await.unwrap();
    assert_eq!(ids.len(), 5);
    for id in ids {
        let email = platform::user_email(&db.store, &ring, id)
            .await
            .unwrap()
            .unwrap();
        assert!(email.contains('@'), "{email}");
        assert_eq!(
            platform::find_user_by_email(&db.store, &ring, &email.to_uppercase())
                .await
                .unwrap(),
            Some(id)
        );
    }
    assert_eq!(
        platform::find_user_by_email(&db.store, &ring, "nobody@example.com")
            .await
            .unwrap(),
        None
    );
    // A scenario-free history is clean: none of its comments carries what the screening rules
    // look for (the attack scenarios, added on request, are where threats come from).
    let suspicious = count(
        &raw,
        "SELECT COUNT(*) FROM comments WHERE LOWER(body) LIKE '%verify account%' \
         OR LOWER(body) LIKE '%buy now%' OR LOWER(body) LIKE '%send me%' \
         OR LOWER(body) LIKE '%http%'",
    )
    .await;
    assert_eq!(suspicious, 0);
    raw.close().await;

    let log = audit::list(&db.store, &actor, &AuditFilter::default())
        .await
        .unwrap();
    let actions: Vec<&str> = log.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(
        actions,
        [
            "demo.seeded",
            "demo.seed_started",
            "keys.data_keys_created",
            "operator.bootstrapped"
        ]
    );
    assert!(
        log[0].details.contains("\"comments\":500"),
        "{}",
        log[0].details
    );
    assert!(matches!(
        audit::verify_chain(&db.store).await.unwrap(),
        Verification::Ok { entries: 4, .. }
    ));
}
on_both!(seeds_a_platform_and_records_it);

async fn fingerprint(db: &TestDb) -> (Vec<String>, Vec<String>) {
    let raw = db.raw().await;
    let users = sqlx::query("SELECT username || '|' || display_name || '|' || country FROM users WHERE kind = 'platform' ORDER BY username")
        .fetch_all(&raw)
        .await
        .unwrap()
        .iter()
        .map(|r| r.get::<String, _>(0))
        .collect();
    let comments = sqlx::query(
        "SELECT u.username || '|' || COALESCE(c.body, '(private)') FROM comments c JOIN users u ON u.id = c.author_id \
         ORDER BY c.created_at, c.id",
    )
    .fetch_all(&raw)
    .await
    .unwrap()
    .iter()
    .map(|r| r.get::<String, _>(0))
    .collect();
    raw.close().await;
    (users, comments)
}

async fn the_same_seed_gives_the_same_platform(db: TestDb) {
    let other = common::fresh_like(&db).await;
    let third = common::sqlite().await;
    for (d, seed) in [(&db, 7), (&other, 7), (&third, 8)] {
        let (actor, ring) = admin_keys(d).await;
        demo::seed(&d.store, &actor, &ring, opts(seed), &mut |_| {})
            .await
            .unwrap();
    }
    let a = fingerprint(&db).await;
    assert_eq!(a, fingerprint(&other).await);
    assert_ne!(a, fingerprint(&third).await);
}
on_both!(the_same_seed_gives_the_same_platform);

async fn refuses_bad_options_a_second_seed_and_non_admins(db: TestDb) {
    let (actor, ring) = admin_keys(&db).await;
    for bad in [
        SeedOptions {
            users: 0,
            ..opts(1)
        },
        SeedOptions { days: 0, ..opts(1) },
    ] {
        assert!(matches!(
            demo::seed(&db.store, &actor, &ring, bad, &mut |_| {}).await,
            Err(DemoError::Invalid(_))
        ));
    }
    let moderator = common::operator_with_role(&db, "mod-one", "moderator").await;
    assert!(matches!(
        demo::seed(&db.store, &moderator, &ring, opts(1), &mut |_| {}).await,
        Err(DemoError::Forbidden(_))
    ));
    demo::seed(&db.store, &actor, &ring, opts(1), &mut |_| {})
        .await
        .unwrap();
    let before = platform::counts(&db.store).await.unwrap();
    assert!(matches!(
        demo::seed(&db.store, &actor, &ring, opts(2), &mut |_| {}).await,
        Err(DemoError::NotEmpty(50))
    ));
    assert_eq!(platform::counts(&db.store).await.unwrap(), before);
    // Refusals leave no audit entries: bootstrap's two + one seed's two.
    let raw = db.raw().await;
    assert_eq!(count(&raw, "SELECT COUNT(*) FROM audit_log").await, 4);
    raw.close().await;
}
on_both!(refuses_bad_options_a_second_seed_and_non_admins);
