//! Monitoring and incidents on both databases: the demo's attack scenarios each open the
//! incident they should and nobody else is flagged; the automated responses (suspension,
//! revoked tokens, IP block, restrictions, step-up) and their expiry; moderators reversing
//! them with both sides audited; re-runs that add nothing; ingestion that keeps good lines.

mod common;

use common::{count, exec, PlatformIssuer, TestDb};
use vigil::auth::platform_tokens;
use vigil::auth::{tokens, Actor};
use vigil::demo::{self, SeedOptions, SCENARIOS, STUFFING_IP};
use vigil::incidents::{
    self, Action, IncidentError, IncidentKind, IncidentStatus, QueueFilter, Severity,
};
use vigil::keys::KeyRing;
use vigil::monitor::shard::ShardCount;
use vigil::monitor::{self, policy::Policy, screen::Screener, MonitorError, RunReport};
use vigil::store::{Store, StoreOptions, Timestamp};

const HOUR: i64 = 3_600_000_000;

/// How long a test that seeds two histories and compares them needs clear of the turn of an
/// hour (see [`common::clear_of_the_hour`]): the longest of them takes about 20 s.
const COMPARED_HISTORIES: std::time::Duration = std::time::Duration::from_secs(90);

async fn run(db: &TestDb, actor: &Actor, ring: &KeyRing) -> RunReport {
    run_on(&db.store, actor, ring, 1).await.unwrap()
}

/// A detector run on `store` split in `shards`.
async fn run_on(
    store: &Store,
    actor: &Actor,
    ring: &KeyRing,
    shards: u32,
) -> Result<RunReport, MonitorError> {
    let screener = Screener::new(&[], &[]).unwrap();
    let shards = ShardCount::new(shards).unwrap();
    monitor::run(store, ring, actor, &Policy::default(), &screener, shards).await
}

fn all() -> QueueFilter {
    QueueFilter {
        limit: Some(10_000),
        ..QueueFilter::default()
    }
}

/// A token for a platform account, as the platform's own sign-in would issue it: signed with
/// the platform's key, in a session the platform records in the shared database.
async fn platform_token(db: &TestDb, platform: &PlatformIssuer, username: &str) -> String {
    let raw = db.raw().await;
    exec(
        &raw,
        &format!(
            "INSERT INTO user_roles (user_id, role, granted_at) \
             SELECT id, 'user', 0 FROM users WHERE username = '{username}' \
             AND id NOT IN (SELECT user_id FROM user_roles)"
        ),
    )
    .await;
    raw.close().await;
    let id = user_id(db, username).await.to_string();
    platform.token(db, &id, &["user"]).await
}

async fn user_id(db: &TestDb, username: &str) -> uuid::Uuid {
    use sqlx::Row;
    let raw = db.raw().await;
    let id: String = sqlx::query("SELECT id FROM users WHERE username = $1")
        .bind(username)
        .fetch_one(&raw)
        .await
        .unwrap()
        .try_get(0)
        .unwrap();
    raw.close().await;
    uuid::Uuid::parse_str(&id).unwrap()
}

async fn scenarios_open_their_incidents_and_responses_hold(db: TestDb) {
    let (admin, ring) = common::admin_keys(&db).await;
    let moderator = common::operator_with_role(&db, "mo-moderator", "moderator").await;
    let officer = common::operator_with_role(&db, "cy-officer", "compliance_officer").await;
    let opts = SeedOptions {
        users: 1_000,
        comments: 10_000,
        days: 30,
        seed: 5,
        scenarios: true,
    };
    demo::seed(&db.store, &admin, &ring, opts, &mut |_| {})
        .await
        .unwrap();
    // Sessions opened before the detectors run.
    let platform = PlatformIssuer::new();
    let platform_keys = platform.keys();
    let victim_token = platform_token(&db, &platform, "stuffed.victim").await;
    let poster_token = platform_token(&db, &platform, "burst.poster").await;
    platform_tokens::verify(&db.store, &platform_keys, &victim_token)
        .await
        .unwrap();

    // Moderators may run the detectors; compliance officers may not.
    assert!(matches!(
        run_on(&db.store, &officer, &ring, 1).await,
        Err(MonitorError::Forbidden(_))
    ));
    let first = run(&db, &admin, &ring).await;
    assert!(first.new_events > 10_000, "{first:?}");

    // Each scenario opened its incident, and nobody else was flagged.
    let queue = incidents::list(&db.store, &moderator, &all())
        .await
        .unwrap();
    for s in SCENARIOS {
        assert!(
            queue
                .iter()
                .any(|i| i.username.as_deref() == Some(s.username)
                    && i.kind == s.kind
                    && i.severity == s.severity),
            "{} should open {:?}/{:?}: {queue:#?}",
            s.label,
            s.kind,
            s.severity
        );
    }
    for i in &queue {
        let name = i.username.as_deref().unwrap_or("-");
        assert!(
            SCENARIOS.iter().any(|s| s.username == name),
            "scenario-free account {name} flagged: {i:?}"
        );
    }
    assert_eq!(queue.len(), SCENARIOS.len(), "{queue:#?}");
    // Most severe first.
    assert_eq!(queue[0].kind, IncidentKind::CredentialStuffing);
    assert_eq!(first.critical, vec![queue[0].id.clone()]);

    // Running again judges nothing new and opens nothing; forgetting the checkpoint (a run
    // stopped before it could save it) folds every detection into the same incidents.
    let again = run(&db, &admin, &ring).await;
    assert_eq!((again.new_events, again.opened), (0, 0));
    let raw = db.raw().await;
    let evidence_before = count(&raw, "SELECT COUNT(*) FROM incident_evidence").await;
    exec(&raw, "DELETE FROM monitor_checkpoints").await;
    let replay = run(&db, &admin, &ring).await;
    assert_eq!(replay.opened, 0, "{replay:?}");
    assert!(replay.folded >= SCENARIOS.len() as u64);
    assert_eq!(
        count(&raw, "SELECT COUNT(*) FROM incidents").await,
        SCENARIOS.len() as i64
    );
    assert_eq!(
        count(&raw, "SELECT COUNT(*) FROM incident_evidence").await,
        evidence_before,
        "evidence is added once"
    );

    // Critical: suspended, tokens dead, address blocked for 24 h, holder notified.
    let stuffing = &queue[0];
    let victim = user_id(&db, "stuffed.victim").await;
    let detail = incidents::show(&db.store, &moderator, &stuffing.id)
        .await
        .unwrap();
    assert_eq!(detail.account_status.as_deref(), Some("suspended"));
    // Its blocks show the source address: the read is audited, how many and never which.
    assert!(!detail.blocks.is_empty());
    let reads = count(
        &raw,
        &format!(
            "SELECT COUNT(*) FROM audit_log WHERE action = 'pii.read' \
             AND target = 'incident:{}' AND details LIKE '%\"purpose\":\"incident_addresses\"%' \
             AND actor = 'user:{}' AND details NOT LIKE '%{STUFFING_IP}%'",
            stuffing.id,
            moderator.user_id()
        ),
    )
    .await;
    assert_eq!(reads, 1, "one audited read of the incident's addresses");
    assert!(matches!(
        platform_tokens::verify(&db.store, &platform_keys, &victim_token).await,
        Err(tokens::TokenError::Revoked | tokens::TokenError::AccountChanged)
    ));
    let now = Timestamp::now();
    assert!(incidents::is_blocked(&db.store, STUFFING_IP, now)
        .await
        .unwrap());
    let after_a_day = Timestamp::from_micros(now.micros() + 25 * HOUR);
    assert!(
        !incidents::is_blocked(&db.store, STUFFING_IP, after_a_day)
            .await
            .unwrap(),
        "the block ends on its own after 24 h"
    );
    assert_eq!(
        count(
            &raw,
            &format!(
                "SELECT COUNT(*) FROM notifications WHERE recipient_id = '{victim}' \
                 AND kind = 'security_notice'"
            )
        )
        .await,
        1
    );
    let automated: Vec<&str> = detail
        .timeline
        .iter()
        .filter(|t| t.automated)
        .map(|t| t.action.as_str())
        .collect();
    for a in [
        "suspend_account",
        "revoke_sessions",
        "block_ip",
        "notify_user",
    ] {
        assert!(automated.contains(&a), "{a} in {automated:?}");
    }
    assert!(detail.activity.iter().filter(|a| a.evidence).count() >= 10);
    // The moderator sees no email or phone anywhere in the incident.
    let shown = serde_json::to_string(&detail).unwrap();
    assert!(
        !shown.contains("@example") && !shown.contains("+1-555"),
        "{shown}"
    );

    // High: step-up at next use, commenting and uploads restricted for an hour.
    let poster = user_id(&db, "burst.poster").await;
    let kinds = |rs: Vec<incidents::RestrictionInfo>| {
        let mut k: Vec<String> = rs.into_iter().map(|r| r.kind).collect();
        k.sort();
        k
    };
    assert_eq!(
        kinds(
            incidents::restrictions_in_force(&db.store, poster, now)
                .await
                .unwrap()
        ),
        ["comment", "step_up", "upload"]
    );
    let later = Timestamp::from_micros(now.micros() + 2 * HOUR);
    assert_eq!(
        kinds(
            incidents::restrictions_in_force(&db.store, poster, later)
                .await
                .unwrap()
        ),
        ["step_up"],
        "the comment and upload restrictions end on their own after an hour"
    );
    assert!(matches!(
        platform_tokens::verify(&db.store, &platform_keys, &poster_token).await,
        Err(tokens::TokenError::StepUpRequired)
    ));
    let fresh = platform_token(&db, &platform, "burst.poster").await;
    platform_tokens::verify(&db.store, &platform_keys, &fresh)
        .await
        .expect("signing in again satisfies the step-up");

    // A moderator reverses the automated actions; the audit log shows both sides.
    assert!(matches!(
        incidents::act(&db.store, &officer, &stuffing.id, &Action::LiftBlock, None).await,
        Err(IncidentError::Forbidden(_))
    ));
    assert!(matches!(
        incidents::act(&db.store, &moderator, &stuffing.id, &Action::Note, None).await,
        Err(IncidentError::Invalid(_))
    ));
    incidents::act(
        &db.store,
        &moderator,
        &stuffing.id,
        &Action::AssignToMe,
        None,
    )
    .await
    .unwrap();
    incidents::act(
        &db.store,
        &moderator,
        &stuffing.id,
        &Action::LiftBlock,
        None,
    )
    .await
    .unwrap();
    assert!(
        !incidents::is_blocked(&db.store, STUFFING_IP, Timestamp::now())
            .await
            .unwrap()
    );
    assert!(matches!(
        incidents::act(
            &db.store,
            &moderator,
            &stuffing.id,
            &Action::LiftBlock,
            None
        )
        .await,
        Err(IncidentError::NotApplicable(_))
    ));
    incidents::act(
        &db.store,
        &moderator,
        &stuffing.id,
        &Action::LiftSuspension,
        None,
    )
    .await
    .unwrap();
    let detail = incidents::show(&db.store, &moderator, &stuffing.id)
        .await
        .unwrap();
    assert_eq!(detail.account_status.as_deref(), Some("active"));
    assert_eq!(detail.incident.status, IncidentStatus::Investigating);
    assert!(detail.incident.assigned_to_me);
    assert!(detail.blocks.iter().all(|b| b.state == "lifted"));
    let block_ip = detail
        .timeline
        .iter()
        .find(|t| t.action == "block_ip")
        .unwrap();
    assert_eq!(block_ip.reversed_by.as_deref(), Some("mo-moderator"));
    let audit_of = |action: &'static str, needle: &'static str| {
        let raw = raw.clone();
        let id = stuffing.id.clone();
        async move {
            count(
                &raw,
                &format!(
                    "SELECT COUNT(*) FROM audit_log WHERE target = 'incident:{id}' \
                     AND action = '{action}' AND details LIKE '%{needle}%'"
                ),
            )
            .await
        }
    };
    assert_eq!(
        audit_of("incident.response", "block_ip").await,
        1,
        "the automated block"
    );
    assert_eq!(
        audit_of("incident.action", "lift_block").await,
        1,
        "the moderator's lift"
    );

    // Dismissing a false positive lifts what is left and keeps the rules as feedback.
    let roaming = queue
        .iter()
        .find(|i| i.username.as_deref() == Some("roaming.account"))
        .unwrap();
    incidents::act(
        &db.store,
        &moderator,
        &roaming.id,
        &Action::Dismiss,
        Some("travelling"),
    )
    .await
    .unwrap();
    let roamer = user_id(&db, "roaming.account").await;
    assert!(
        incidents::restrictions_in_force(&db.store, roamer, Timestamp::now())
            .await
            .unwrap()
            .is_empty()
    );
    let feedback = incidents::rule_feedback(&db.store, &moderator)
        .await
        .unwrap();
    assert!(
        feedback.iter().any(|(r, n)| r == "multiple_ips" && *n == 1),
        "{feedback:?}"
    );
    assert!(matches!(
        incidents::act(&db.store, &moderator, &roaming.id, &Action::Confirm, None).await,
        Err(IncidentError::NotApplicable(_))
    ));

    // Removing the spammer's comment: soft delete with the reason; its text is no longer shown.
    let phish = queue
        .iter()
        .find(|i| i.kind == IncidentKind::MaliciousContent)
        .unwrap();
    let d = incidents::show(&db.store, &moderator, &phish.id)
        .await
        .unwrap();
    let comment = d
        .comments
        .iter()
        .find(|c| {
            c.text
                .as_deref()
                .is_some_and(|t| t.contains("verify account"))
        })
        .expect("the moderator reads the comment text");
    let cid = uuid::Uuid::parse_str(&comment.id).unwrap();
    incidents::act(
        &db.store,
        &moderator,
        &phish.id,
        &Action::RemoveComment(cid),
        Some("phishing"),
    )
    .await
    .unwrap();
    let d = incidents::show(&db.store, &moderator, &phish.id)
        .await
        .unwrap();
    let removed = d.comments.iter().find(|c| c.id == comment.id).unwrap();
    assert!(removed.text.is_none() && removed.removed_at.is_some());
    assert_eq!(removed.removal_reason.as_deref(), Some("phishing"));

    // Severity filter and the officer's read-only view.
    let critical = incidents::list(
        &db.store,
        &officer,
        &QueueFilter {
            severity: Some(Severity::Critical),
            ..all()
        },
    )
    .await
    .unwrap();
    assert_eq!(critical.len(), 1);
    raw.close().await;
    assert!(matches!(
        vigil::audit::verify_chain(&db.store).await.unwrap(),
        vigil::audit::Verification::Ok { .. }
    ));
}
on_both!(scenarios_open_their_incidents_and_responses_hold);

async fn ingestion_keeps_good_lines_and_reports_bad_ones(db: TestDb) {
    let (admin, ring) = common::admin_keys(&db).await;
    let opts = SeedOptions {
        users: 20,
        comments: 50,
        days: 3,
        seed: 2,
        scenarios: false,
    };
    demo::seed(&db.store, &admin, &ring, opts, &mut |_| {})
        .await
        .unwrap();
    let raw = db.raw().await;
    let name: String = {
        use sqlx::Row;
        sqlx::query("SELECT username FROM users WHERE kind = 'platform' ORDER BY username LIMIT 1")
            .fetch_one(&raw)
            .await
            .unwrap()
            .try_get(0)
            .unwrap()
    };
    let before = count(&raw, "SELECT COUNT(*) FROM activity_log").await;
    let file = format!(
        "{{\"type\":\"login_attempt\",\"user\":\"{name}\",\"at\":\"2026-11-20T10:00:00Z\",\"ip\":\"192.0.2.1\",\"country\":\"GB\"}}\n\
         this is not json\n\
         {{\"type\":\"comment_submission\",\"user\":\"{name}\",\"at\":\"2026-11-20T10:01:00Z\",\"ip\":\"192.0.2.1\",\"content\":\"hello there\"}}\n\
         \n\
         {{\"type\":\"comment_submission\",\"user\":\"nobody-here\",\"at\":\"2026-11-20T10:02:00Z\",\"content\":\"hi\"}}\n\
         {{\"type\":\"login_attempt\",\"user\":\"nobody-here\",\"at\":\"2026-11-20T10:03:00Z\",\"ip\":\"192.0.2.9\",\"outcome\":\"failure\",\"reason\":\"unknown_user\"}}\n\
         {{\"type\":\"reaction\",\"user\":\"{name}\",\"at\":\"2026-11-20T10:04:00Z\",\"comment\":\"00000000-0000-7000-8000-00000000beef\"}}\n"
    );
    let report = monitor::ingest_reader(&db.store, &ring, &admin, file.as_bytes())
        .await
        .unwrap();
    assert_eq!(report.ingested, 3, "{report:?}");
    assert_eq!(report.comments, 1);
    let bad: Vec<(u64, &str)> = report
        .rejected
        .iter()
        .map(|b| (b.line, b.error.as_str()))
        .collect();
    assert_eq!(bad.len(), 3, "{bad:?}");
    assert_eq!(bad[0].0, 2);
    assert_eq!((bad[1].0, bad[1].1), (5, "unknown user"));
    assert_eq!((bad[2].0, bad[2].1), (7, "unknown comment"));
    assert_eq!(
        count(&raw, "SELECT COUNT(*) FROM activity_log").await,
        before + 3
    );
    // The source address is sealed; the tried name of an unknown account is only a keyed hash.
    assert_eq!(
        count(
            &raw,
            "SELECT COUNT(*) FROM activity_log WHERE ip_enc IS NULL AND ip_bidx IS NOT NULL"
        )
        .await,
        0
    );
    assert_eq!(
        count(
            &raw,
            "SELECT COUNT(*) FROM activity_log WHERE details LIKE '%nobody%'"
        )
        .await,
        0
    );
    // The same file again adds nothing.
    let again = monitor::ingest_reader(&db.store, &ring, &admin, file.as_bytes())
        .await
        .unwrap();
    assert_eq!((again.ingested, again.duplicates), (0, 3));
    assert_eq!(
        count(&raw, "SELECT COUNT(*) FROM activity_log").await,
        before + 3
    );
    // Ingestion needs its permission.
    let officer = common::operator_with_role(&db, "cy-officer", "compliance_officer").await;
    assert!(matches!(
        monitor::ingest_reader(&db.store, &ring, &officer, file.as_bytes()).await,
        Err(monitor::MonitorError::Forbidden(_))
    ));
    raw.close().await;
}
on_both!(ingestion_keeps_good_lines_and_reports_bad_ones);

async fn manual_blocks_expire_and_lift(db: TestDb) {
    let _ = common::admin(&db).await;
    let moderator = common::operator_with_role(&db, "mo-moderator", "moderator").await;
    let officer = common::operator_with_role(&db, "cy-officer", "compliance_officer").await;
    assert!(matches!(
        incidents::block(&db.store, &officer, "192.0.2.50", Some(1), "abuse").await,
        Err(IncidentError::Forbidden(_))
    ));
    for (ip, hours, reason) in [
        ("not-an-ip", Some(1), "abuse"),
        ("192.0.2.50", Some(0), "abuse"),
        ("192.0.2.50", Some(1), "  "),
    ] {
        assert!(matches!(
            incidents::block(&db.store, &moderator, ip, hours, reason).await,
            Err(IncidentError::Invalid(_))
        ));
    }
    incidents::block(&db.store, &moderator, "192.0.2.50", Some(1), "abuse")
        .await
        .unwrap();
    incidents::block(&db.store, &moderator, "2001:DB8::7", None, "abuse")
        .await
        .unwrap();
    let now = Timestamp::now();
    let later = Timestamp::from_micros(now.micros() + 2 * HOUR);
    assert!(incidents::is_blocked(&db.store, "192.0.2.50", now)
        .await
        .unwrap());
    assert!(!incidents::is_blocked(&db.store, "192.0.2.50", later)
        .await
        .unwrap());
    assert!(incidents::is_blocked(&db.store, "2001:db8::7", later)
        .await
        .unwrap());
    assert_eq!(
        incidents::blocks(&db.store, &officer, false)
            .await
            .unwrap()
            .len(),
        2
    );
    assert_eq!(
        incidents::unblock(&db.store, &moderator, "2001:db8::7")
            .await
            .unwrap(),
        1
    );
    assert!(!incidents::is_blocked(&db.store, "2001:db8::7", now)
        .await
        .unwrap());
    assert!(matches!(
        incidents::unblock(&db.store, &moderator, "2001:db8::7").await,
        Err(IncidentError::BlockNotFound(_))
    ));
    let every = incidents::blocks(&db.store, &moderator, true)
        .await
        .unwrap();
    assert_eq!(every.len(), 2);
    assert!(every.iter().any(|b| b.state == "lifted"));
}
on_both!(manual_blocks_expire_and_lift);

/// A seeded history (the demo's attack scenarios among 400 accounts over 30 days), and a day
/// of busy traffic to ingest on top, as `vigil bench --monitor` makes it: many addresses per
/// account, comments with the demo's texts (a few of them suspicious). The lines are in time
/// order.
async fn a_seeded_history(db: &TestDb) -> (Actor, KeyRing, Vec<String>) {
    let (admin, ring) = common::admin_keys(db).await;
    let opts = SeedOptions {
        users: 400,
        comments: 6_000,
        days: 30,
        seed: 23,
        scenarios: true,
    };
    demo::seed(&db.store, &admin, &ring, opts, &mut |_| {})
        .await
        .unwrap();
    use rand::{Rng, SeedableRng};
    let names = vigil::platform::first_usernames(&db.store, 400)
        .await
        .unwrap();
    let texts = demo::comment_texts(512, 3);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
    let end = Timestamp::now().micros() / HOUR * HOUR;
    let mut lines = Vec::with_capacity(6_000);
    for i in 0..6_000i64 {
        let who = &names[rng.gen_range(0..names.len())];
        let at = Timestamp::from_micros(end - 24 * HOUR + i * 14_400_000).to_rfc3339();
        let ip = format!(
            "10.{}.{}.{}",
            rng.gen::<u8>(),
            rng.gen::<u8>(),
            rng.gen_range(1..255u8)
        );
        if rng.gen_bool(0.6) {
            let text = texts[rng.gen_range(0..texts.len())].replace('"', "'");
            lines.push(format!(
                r#"{{"type":"comment_submission","user":"{who}","at":"{at}","ip":"{ip}","country":"GB","content":"{text}"}}"#
            ));
        } else {
            lines.push(format!(
                r#"{{"type":"login_attempt","user":"{who}","at":"{at}","ip":"{ip}","country":"GB","outcome":"success"}}"#
            ));
        }
    }
    (admin, ring, lines)
}

/// An administrator with the data keys, and `users` platform accounts with `days` of quiet
/// history (no scenarios, no comments); returns the accounts' names.
async fn some_accounts(db: &TestDb, users: u32, days: u32) -> (Actor, KeyRing, Vec<String>) {
    let (admin, ring) = common::admin_keys(db).await;
    let opts = SeedOptions {
        users,
        comments: 0,
        days,
        seed: 4,
        scenarios: false,
    };
    demo::seed(&db.store, &admin, &ring, opts, &mut |_| {})
        .await
        .unwrap();
    let names = vigil::platform::first_usernames(&db.store, users)
        .await
        .unwrap();
    (admin, ring, names)
}

/// Ingests `lines` of activity.
async fn ingest(db: &TestDb, admin: &Actor, ring: &KeyRing, lines: &[String]) {
    let file: String = lines.iter().map(|l| format!("{l}\n")).collect();
    let ingested = monitor::ingest_reader(&db.store, ring, admin, file.as_bytes())
        .await
        .unwrap();
    assert_eq!(ingested.rejected_total, 0, "{ingested:?}");
}

/// The incidents in a form two databases can compare: for each its account, kind, severity,
/// amount of evidence and summary.
async fn incidents_seen(db: &TestDb, admin: &Actor) -> Vec<String> {
    let queue = incidents::list(&db.store, admin, &all()).await.unwrap();
    let mut seen: Vec<String> = queue
        .iter()
        .map(|i| {
            format!(
                "{} {} {} {} [{}]",
                i.username.as_deref().unwrap_or("-"),
                i.kind.as_str(),
                i.severity.as_str(),
                i.evidence_count,
                i.summary
            )
        })
        .collect();
    seen.sort();
    seen
}

/// What a detector run over a seeded history opened ([`a_seeded_history`], one run, one
/// shard), in the form of [`incidents_seen`].
async fn incidents_of_a_seeded_history(db: &TestDb) -> Vec<String> {
    let (admin, ring, lines) = a_seeded_history(db).await;
    ingest(db, &admin, &ring, &lines).await;
    let report = run(db, &admin, &ring).await;
    let seen = incidents_seen(db, &admin).await;
    assert_eq!(report.opened as usize, seen.len(), "{report:?}");
    seen
}

async fn the_same_history_opens_the_same_incidents_run_after_run(db: TestDb) {
    common::clear_of_the_hour(COMPARED_HISTORIES).await;
    let first = incidents_of_a_seeded_history(&db).await;
    assert!(first.len() > 2 * SCENARIOS.len(), "{first:#?}");
    let again = incidents_of_a_seeded_history(&common::fresh_like(&db).await).await;
    assert_eq!(first, again);
}
on_both!(the_same_history_opens_the_same_incidents_run_after_run);

/// The same history opens the same incidents on SQLite and on Postgres.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_history_opens_the_same_incidents_on_both_databases() {
    common::clear_of_the_hour(COMPARED_HISTORIES).await;
    let on_sqlite = incidents_of_a_seeded_history(&common::sqlite().await).await;
    let on_postgres = incidents_of_a_seeded_history(&common::postgres().await).await;
    assert_eq!(on_sqlite, on_postgres);
}

async fn a_large_file_ingested_twice_adds_nothing_the_second_time(db: TestDb) {
    let (admin, ring, names) = some_accounts(&db, 50, 3).await;
    let raw = db.raw().await;
    let before = count(&raw, "SELECT COUNT(*) FROM activity_log").await;
    let comments_before = count(&raw, "SELECT COUNT(*) FROM comments").await;
    // Several batches' worth, with text that needs escaping on its way in (tabs, backslashes,
    // newlines, quotes), and a stretch of lines repeated within the file itself.
    let mut file = String::new();
    for i in 0..12_000i64 {
        let who = &names[(i % 50) as usize];
        let at = Timestamp::from_micros(1_790_000_000_000_000 + i * 1_000_000).to_rfc3339();
        if i % 2 == 0 {
            file.push_str(&format!(
                r#"{{"type":"comment_submission","user":"{who}","at":"{at}","ip":"192.0.2.{}","user_agent":"Agent\t{i}\\x","content":"line {i}\ttab \\ back\nnew \"q\""}}"#,
                i % 200 + 1
            ));
        } else {
            file.push_str(&format!(
                r#"{{"type":"login_attempt","user":"{who}","at":"{at}","ip":"192.0.2.{}","country":"GB","outcome":"success"}}"#,
                i % 200 + 1
            ));
        }
        file.push('\n');
    }
    let repeated: String = file.lines().take(700).map(|l| format!("{l}\n")).collect();
    file.push_str(&repeated);
    let first = monitor::ingest_reader(&db.store, &ring, &admin, file.as_bytes())
        .await
        .unwrap();
    assert_eq!(
        (
            first.lines,
            first.ingested,
            first.duplicates,
            first.comments
        ),
        (12_700, 12_000, 700, 6_000),
        "{first:?}"
    );
    assert_eq!(
        count(&raw, "SELECT COUNT(*) FROM activity_log").await,
        before + 12_000
    );
    assert_eq!(
        count(&raw, "SELECT COUNT(*) FROM comments").await,
        comments_before + 6_000
    );
    // The text arrives as it was sent, and the addresses sealed with their blind index.
    let matching = |sql: &'static str, value: &'static str| {
        let raw = raw.clone();
        async move {
            use sqlx::Row;
            sqlx::query(sql)
                .bind(value)
                .fetch_one(&raw)
                .await
                .unwrap()
                .try_get::<i64, _>(0)
                .unwrap()
        }
    };
    assert_eq!(
        matching(
            "SELECT COUNT(*) FROM comments WHERE body = $1",
            "line 4\ttab \\ back\nnew \"q\""
        )
        .await,
        1
    );
    assert_eq!(
        matching(
            "SELECT COUNT(*) FROM activity_log WHERE user_agent = $1",
            "Agent\t4\\x"
        )
        .await,
        1
    );
    assert_eq!(
        count(
            &raw,
            "SELECT COUNT(*) FROM activity_log WHERE ip_enc IS NULL OR ip_bidx IS NULL \
             OR network_key_version IS NULL"
        )
        .await,
        0
    );
    let again = monitor::ingest_reader(&db.store, &ring, &admin, file.as_bytes())
        .await
        .unwrap();
    assert_eq!(
        (again.ingested, again.duplicates, again.comments),
        (0, 12_700, 0),
        "{again:?}"
    );
    assert_eq!(
        count(&raw, "SELECT COUNT(*) FROM activity_log").await,
        before + 12_000
    );
    assert_eq!(
        count(&raw, "SELECT COUNT(*) FROM comments").await,
        comments_before + 6_000
    );
    // The detectors open the sealed addresses of what was copied in.
    let r = run(&db, &admin, &ring).await;
    assert_eq!(r.new_events as i64, before + 12_000, "{r:?}");
    raw.close().await;
}
on_both!(a_large_file_ingested_twice_adds_nothing_the_second_time);

/// The ingestion fence on Postgres: an ingestion transaction stamped first but committing last
/// (another ingester stamped after it and committed first) is not passed over by a detector
/// run. The detector's snapshot waits for it to commit, and then takes in both; the second
/// ingester was not held up by the first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_detector_run_never_passes_over_activity_that_commits_late() {
    use vigil::keys::{Purpose, WriteKeys};
    use vigil::platform::{self, NewActivity};
    let db = common::postgres().await;
    let (_admin, ring) = common::admin_keys(&db).await;
    let keys = WriteKeys::current(&db.store, &ring, &[Purpose::Network, Purpose::BlindIndex])
        .await
        .unwrap();
    let activity = |n: u8| NewActivity {
        id: uuid::Uuid::now_v7(),
        user_id: None,
        kind: "login",
        outcome: "failure",
        reason: Some("unknown_user"),
        occurred_at: Timestamp::now(),
        user_agent: "fence-test".into(),
        country: "GB".into(),
        ip: Some(format!("192.0.2.{n}")),
        ref_id: None,
        target: None,
    };
    let mut late = db.store.begin().await.unwrap();
    platform::insert_activity(&mut late, &keys, &[activity(1)])
        .await
        .unwrap();
    let mut early = db.store.begin().await.unwrap();
    platform::insert_activity(&mut early, &keys, &[activity(2)])
        .await
        .unwrap();
    early.commit().await.unwrap();

    let snapshot = db.store.settled_ingestion();
    tokio::pin!(snapshot);
    tokio::select! {
        taken = &mut snapshot => panic!("a snapshot ({taken:?}) was taken with an ingestion in flight"),
        () = tokio::time::sleep(std::time::Duration::from_millis(500)) => {}
    }
    late.commit().await.unwrap();
    let snap = snapshot.await.unwrap().expect("activity was ingested");
    let raw = db.raw().await;
    let stamps: Vec<i64> = {
        use sqlx::Row;
        sqlx::query("SELECT ingested_at FROM activity_log WHERE user_agent = 'fence-test'")
            .fetch_all(&raw)
            .await
            .unwrap()
            .iter()
            .map(|r| r.try_get(0).unwrap())
            .collect()
    };
    assert_eq!(stamps.len(), 2);
    assert!(stamps.iter().all(|s| *s <= snap), "{stamps:?} after {snap}");
}

/// A worker: runs the detectors on `store` split in `shards` until a run finds no shard held
/// by another (a busy shard is polled for, as a worker's next round would); its runs' reports.
async fn work_until_done(
    store: &Store,
    actor: &Actor,
    ring: &KeyRing,
    shards: u32,
) -> Vec<RunReport> {
    let mut reports = Vec::new();
    for _ in 0..3_000 {
        match run_on(store, actor, ring, shards).await {
            Ok(r) => {
                let done = r.shards_busy.is_empty();
                reports.push(r);
                if done {
                    return reports;
                }
            }
            Err(MonitorError::Busy) => {}
            Err(e) => panic!("the detectors failed: {e}"),
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("the shards stayed busy: {reports:?}");
}

/// Records judged by `reports` in all.
fn judged(reports: &[RunReport]) -> u64 {
    reports.iter().map(|r| r.new_events).sum()
}

async fn activity_rows(db: &TestDb) -> u64 {
    let raw = db.raw().await;
    let n = count(&raw, "SELECT COUNT(*) FROM activity_log").await;
    raw.close().await;
    n as u64
}

/// The automated responses taken, in a form two databases can compare: each account's
/// restrictions and status, each incident's automated actions, the address blocks and the
/// notices queued.
async fn responses_taken(db: &TestDb) -> Vec<String> {
    use sqlx::Row;
    let raw = db.raw().await;
    let mut out = Vec::new();
    for sql in [
        "SELECT 'restriction ' || u.username || ' ' || r.kind FROM user_restrictions r \
         JOIN users u ON u.id = r.user_id",
        "SELECT 'action ' || COALESCE(u.username, '-') || ' ' || i.kind || ' ' || a.action \
         FROM incident_actions a JOIN incidents i ON i.id = a.incident_id \
         LEFT JOIN users u ON u.id = i.user_id WHERE a.automated",
        "SELECT 'block ' || ip || ' ' || reason FROM ip_blocks",
        "SELECT 'notice ' || u.username || ' ' || n.kind FROM notifications n \
         JOIN users u ON u.id = n.recipient_id",
        "SELECT 'status ' || username || ' ' || status FROM users WHERE status <> 'active'",
    ] {
        for r in sqlx::query(sql).fetch_all(&raw).await.unwrap() {
            out.push(r.try_get::<String, _>(0).unwrap());
        }
    }
    raw.close().await;
    out.sort();
    out
}

/// How many records the shards of `count` read in all, each reading its own (its accounts'
/// records, the sign-ins from its sources, and shard 0 the records naming neither), by the
/// shards' public rules: what the database must pick for them.
async fn records_the_shards_own(db: &TestDb, count: u32) -> u64 {
    use sqlx::Row;
    use vigil::monitor::shard::Shard;
    let count = ShardCount::new(count).unwrap();
    let raw = db.raw().await;
    let rows = sqlx::query("SELECT user_id, ip_bidx, kind FROM activity_log")
        .fetch_all(&raw)
        .await
        .unwrap();
    raw.close().await;
    let mut n = 0;
    for r in rows {
        let user: Option<String> = r.try_get(0).unwrap();
        let user = user.map(|u| uuid::Uuid::parse_str(&u).unwrap());
        let ip: Option<Vec<u8>> = r.try_get(1).unwrap();
        let ip: Option<[u8; 32]> = ip.map(|b| b.try_into().unwrap());
        let login = r.try_get::<String, _>(2).unwrap() == "login";
        let reads = |s: Shard| {
            user.is_some_and(|u| s.owns_account(&u))
                || ((login || user.is_none()) && ip.is_some_and(|ip| s.owns_source(&ip)))
                || (s.index() == 0 && user.is_none() && ip.is_none())
        };
        n += Shard::all(count).filter(|s| reads(*s)).count() as u64;
    }
    n
}

/// Every scenario's incident is in `seen` (a list of [`incidents_seen`]).
fn has_every_scenario(seen: &[String]) {
    for s in SCENARIOS {
        let head = format!(
            "{} {} {} ",
            s.username,
            s.kind.as_str(),
            s.severity.as_str()
        );
        assert!(
            seen.iter().any(|i| i.starts_with(&head)),
            "{} should open {head}: {seen:#?}",
            s.label
        );
    }
}

/// Two workers (each its own connections) running the detectors at once in four shards on
/// one Postgres database open exactly the incidents one worker opens in one shard; every
/// record is judged once, and every shard by one of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_on_four_shards_open_what_one_worker_opens() {
    common::clear_of_the_hour(COMPARED_HISTORIES).await;
    let reference = common::postgres().await;
    let one = incidents_of_a_seeded_history(&reference).await;
    has_every_scenario(&one);
    let responses = responses_taken(&reference).await;
    assert!(
        responses.iter().any(|r| r.starts_with("block ")),
        "{responses:#?}"
    );

    let db = common::postgres().await;
    let (admin, ring, lines) = a_seeded_history(&db).await;
    ingest(&db, &admin, &ring, &lines).await;
    let other = Store::open(&db.url, &StoreOptions::default())
        .await
        .unwrap();
    let (a, b) = tokio::join!(
        work_until_done(&db.store, &admin, &ring, 4),
        work_until_done(&other, &admin, &ring, 4)
    );
    let all_runs: Vec<RunReport> = a.iter().chain(&b).cloned().collect();
    assert_eq!(
        judged(&all_runs),
        activity_rows(&db).await,
        "each record judged once: {all_runs:#?}"
    );
    let mut done: Vec<u32> = all_runs
        .iter()
        .flat_map(|r| r.shards_done.iter().copied())
        .collect();
    done.sort();
    done.dedup();
    assert_eq!(done, [0, 1, 2, 3], "{all_runs:#?}");
    assert!(all_runs.iter().all(|r| r.shards == 4));
    // Each shard read exactly its own records, once: the database picked what the shards own.
    assert_eq!(
        all_runs.iter().map(|r| r.scanned).sum::<u64>(),
        records_the_shards_own(&db, 4).await
    );
    let four = incidents_seen(&db, &admin).await;
    assert_eq!(
        all_runs.iter().map(|r| r.opened).sum::<u64>() as usize,
        four.len()
    );
    assert_eq!(four, one, "four shards on two workers open what one opens");
    assert_eq!(
        responses_taken(&db).await,
        responses,
        "and take the same automated actions, once each"
    );
    has_every_scenario(&four);

    // Nothing is left: another round of both judges nothing and opens nothing.
    let again = run_on(&other, &admin, &ring, 4).await.unwrap();
    assert_eq!((again.new_events, again.opened), (0, 0), "{again:?}");
    assert_eq!(again.shards_done, [0, 1, 2, 3]);
    other.close().await;
}

/// A worker that dies holding a shard (its connection still open, then cut by the server)
/// leaves that shard to the other worker: its run judges the free shards and reports the
/// held one busy; once the dead worker's connection is gone its next run judges that shard.
/// A run cancelled midway (its task dropped) loses nothing either. The incidents are those one
/// worker opens.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_workers_shard_is_judged_by_the_next_run_of_another() {
    common::clear_of_the_hour(COMPARED_HISTORIES).await;
    let reference = common::postgres().await;
    let one = incidents_of_a_seeded_history(&reference).await;

    let db = common::postgres().await;
    let (admin, ring, lines) = a_seeded_history(&db).await;
    let raw = db.raw().await;
    // Half the day first: the live worker is cancelled midway through judging it.
    ingest(&db, &admin, &ring, &lines[..3_000]).await;
    let live = Store::open(&db.url, &StoreOptions::default())
        .await
        .unwrap();
    {
        let cancelled = run_on(&live, &admin, &ring, 4);
        tokio::pin!(cancelled);
        tokio::select! {
            // A fast machine may finish first; the rest of the test holds either way.
            r = &mut cancelled => { r.unwrap(); }
            () = tokio::time::sleep(std::time::Duration::from_millis(400)) => {}
        }
    }
    // The cancelled run's locks are let go as its connections close.
    for _ in 0..100 {
        let held = count(
            &raw,
            "SELECT COUNT(*) FROM pg_locks WHERE locktype = 'advisory' \
             AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
        )
        .await;
        if held == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    // The rest of the day; then a worker takes shard 2 and dies there.
    ingest(&db, &admin, &ring, &lines[3_000..]).await;
    let dead = Store::open(&db.url, &StoreOptions::default())
        .await
        .unwrap();
    let held = dead.try_job_lock("monitor/2").await.unwrap();
    let held = held.expect("shard 2 is free");

    let first = run_on(&live, &admin, &ring, 4).await.unwrap();
    assert_eq!(first.shards_busy, [2], "{first:?}");
    assert_eq!(first.shards_done, [0, 1, 3], "{first:?}");
    // Held by the dead worker's connection: the server ends it (as it does once a dead
    // host's connection times out), and the lock goes with it.
    let ended = count(
        &raw,
        "SELECT COUNT(pg_terminate_backend(pid)) FROM pg_locks WHERE locktype = 'advisory' \
         AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) \
         AND pid <> pg_backend_pid()",
    )
    .await;
    assert_eq!(ended, 1, "only the dead worker holds a lock");
    drop(held);
    let rest = work_until_done(&live, &admin, &ring, 4).await;
    assert!(
        rest.iter()
            .any(|r| r.shards_done.contains(&2) && r.new_events > 0),
        "{rest:#?}"
    );
    assert_eq!(incidents_seen(&db, &admin).await, one);
    assert_eq!(
        responses_taken(&db).await,
        responses_taken(&reference).await
    );
    let again = run_on(&live, &admin, &ring, 4).await.unwrap();
    assert_eq!((again.new_events, again.opened), (0, 0), "{again:?}");
    raw.close().await;
    live.close().await;
}

/// Changing the shard count judges every record exactly once: a database whose detectors ran
/// before shards existed, then three shards with one of them held (so it lags), then two, then
/// one, each with new activity in between. The incidents are those of one shard all along,
/// with the same runs.
async fn changing_the_shard_count_judges_every_record_once(db: TestDb) {
    common::clear_of_the_hour(COMPARED_HISTORIES).await;
    let steady = common::fresh_like(&db).await;
    let (admin, ring, lines) = a_seeded_history(&steady).await;
    let mut one = vec![run(&steady, &admin, &ring).await];
    for part in lines.chunks(2_000) {
        ingest(&steady, &admin, &ring, part).await;
        one.push(run(&steady, &admin, &ring).await);
    }
    assert_eq!(judged(&one), activity_rows(&steady).await);
    let expected = incidents_seen(&steady, &admin).await;
    let responses = responses_taken(&steady).await;

    let (admin, ring, lines) = a_seeded_history(&db).await;
    let raw = db.raw().await;
    let mut runs = vec![run(&db, &admin, &ring).await];
    // As a database upgraded from before shards: the one checkpoint, named as it was.
    exec(
        &raw,
        "UPDATE monitor_checkpoints SET name = 'detectors' WHERE name = 'detectors/0/1'",
    )
    .await;
    let parts: Vec<&[String]> = lines.chunks(2_000).collect();

    ingest(&db, &admin, &ring, parts[0]).await;
    let hold = db.store.try_job_lock("monitor/1").await.unwrap().unwrap();
    let three = run_on(&db.store, &admin, &ring, 3).await.unwrap();
    assert_eq!(three.resharded_from, Some(1), "{three:?}");
    assert_eq!(
        (three.shards_done.as_slice(), three.shards_busy.as_slice()),
        (&[0, 2][..], &[1][..])
    );
    // While a shard of the current count is held, the count cannot change.
    assert!(matches!(
        run_on(&db.store, &admin, &ring, 2).await,
        Err(MonitorError::Busy)
    ));
    hold.release().await;
    runs.push(three);

    ingest(&db, &admin, &ring, parts[1]).await;
    let two = run_on(&db.store, &admin, &ring, 2).await.unwrap();
    assert_eq!(two.resharded_from, Some(3), "{two:?}");
    assert_eq!(two.shards_done, [0, 1]);
    runs.push(two);

    ingest(&db, &admin, &ring, parts[2]).await;
    let back = run_on(&db.store, &admin, &ring, 1).await.unwrap();
    assert_eq!(back.resharded_from, Some(2), "{back:?}");
    runs.push(back);
    assert_eq!(
        count(
            &raw,
            "SELECT COUNT(*) FROM monitor_checkpoints WHERE name LIKE 'detectors%'"
        )
        .await,
        1,
        "one shard, one checkpoint"
    );

    assert_eq!(
        judged(&runs),
        activity_rows(&db).await,
        "each record judged once: {runs:#?}"
    );
    assert_eq!(judged(&runs), judged(&one));
    assert_eq!(incidents_seen(&db, &admin).await, expected);
    assert_eq!(responses_taken(&db).await, responses);
    let again = run_on(&db.store, &admin, &ring, 1).await.unwrap();
    assert_eq!(
        (again.new_events, again.opened, again.resharded_from),
        (0, 0, None)
    );
    raw.close().await;
}
on_both!(changing_the_shard_count_judges_every_record_once);

/// On each database the shards read exactly their own records (the database computes the same
/// shard of an account and of a source as the detectors do), and judge each record once.
async fn each_shard_reads_exactly_its_own_records(db: TestDb) {
    let (admin, ring) = common::admin_keys(&db).await;
    let opts = SeedOptions {
        users: 120,
        comments: 800,
        days: 5,
        seed: 9,
        scenarios: true,
    };
    demo::seed(&db.store, &admin, &ring, opts, &mut |_| {})
        .await
        .unwrap();
    let five = run_on(&db.store, &admin, &ring, 5).await.unwrap();
    assert_eq!(five.shards_done, [0, 1, 2, 3, 4]);
    assert_eq!(five.new_events, activity_rows(&db).await);
    assert_eq!(
        five.scanned,
        records_the_shards_own(&db, 5).await,
        "{five:?}"
    );
    assert!(five.scanned < 2 * five.new_events, "{five:?}");
}
on_both!(each_shard_reads_exactly_its_own_records);

/// Someone with write access to `activity_log` moves one sealed address over every other (so
/// none of those opens where it now sits): the detector run still records every scenario's
/// incident, without the addresses that did not open, and says how many did not.
async fn an_address_altered_in_the_database_does_not_stop_the_detectors(db: TestDb) {
    let (admin, ring) = common::admin_keys(&db).await;
    let opts = SeedOptions {
        users: 200,
        comments: 0,
        days: 30,
        seed: 5,
        scenarios: true,
    };
    demo::seed(&db.store, &admin, &ring, opts, &mut |_| {})
        .await
        .unwrap();
    let raw = db.raw().await;
    exec(
        &raw,
        "UPDATE activity_log SET ip_enc = (SELECT ip_enc FROM activity_log \
         WHERE ip_enc IS NOT NULL ORDER BY id LIMIT 1) WHERE ip_enc IS NOT NULL",
    )
    .await;
    raw.close().await;

    let report = run(&db, &admin, &ring).await;
    assert!(report.sources_unopened > 0, "{report:?}");
    let queue = incidents::list(&db.store, &admin, &all()).await.unwrap();
    for s in SCENARIOS {
        assert!(
            queue
                .iter()
                .any(|i| i.username.as_deref() == Some(s.username) && i.kind == s.kind),
            "{} should still open {:?}: {queue:#?}",
            s.label,
            s.kind
        );
    }
    // The incidents whose source did not open carry no address.
    let raw = db.raw().await;
    let without = count(
        &raw,
        "SELECT COUNT(*) FROM incidents WHERE source_ip_enc IS NULL AND user_id IS NOT NULL",
    )
    .await;
    raw.close().await;
    assert!(without > 0, "{report:?}");
}
on_both!(an_address_altered_in_the_database_does_not_stop_the_detectors);

/// On Postgres a batch is copied straight into the tables after one query finds which of its
/// ids are stored. A record another ingestion commits in between (here: held uncommitted
/// until the copy waits on its key) fails the copy; the batch is then merged through the
/// staging tables, and every record is stored once and counted once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_another_ingestion_commits_first_is_stored_once() {
    let db = common::postgres().await;
    let (admin, ring, names) = some_accounts(&db, 20, 1).await;
    let at = (Timestamp::now().micros() - HOUR) / 1_000_000 * 1_000_000;
    let ids: Vec<uuid::Uuid> = (0..3).map(|_| uuid::Uuid::now_v7()).collect();
    let iso = Timestamp::from_micros(at).to_rfc3339();
    let file = format!(
        "{{\"id\":\"{}\",\"type\":\"login_attempt\",\"user\":\"{}\",\"at\":\"{iso}\",\"ip\":\"192.0.2.1\"}}\n\
         {{\"id\":\"{}\",\"type\":\"comment_submission\",\"user\":\"{}\",\"at\":\"{iso}\",\"content\":\"hello\"}}\n\
         {{\"id\":\"{}\",\"type\":\"profile_change\",\"user\":\"{}\",\"at\":\"{iso}\",\"field\":\"bio\"}}\n",
        ids[0], names[0], ids[1], names[1], ids[2], names[2]
    );
    let raw = db.raw().await;
    let mut other = raw.begin().await.unwrap();
    sqlx::query(
        "INSERT INTO activity_log (id, kind, outcome, occurred_at, ingested_at, details) \
         VALUES ($1, 'login', 'success', $2, $2, '{}')",
    )
    .bind(ids[0].to_string())
    .bind(at)
    .execute(&mut *other)
    .await
    .unwrap();
    let watcher = db.raw().await;
    let commit_once_waited_on = async {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while count(
            &watcher,
            "SELECT COUNT(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' \
             AND query LIKE 'COPY activity_log %'",
        )
        .await
            == 0
        {
            assert!(
                std::time::Instant::now() < deadline,
                "the copy never waited"
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        other.commit().await.unwrap();
    };
    let (report, ()) = tokio::join!(
        monitor::ingest_reader(&db.store, &ring, &admin, file.as_bytes()),
        commit_once_waited_on
    );
    let report = report.unwrap();
    assert_eq!(
        (report.ingested, report.duplicates, report.comments),
        (2, 1, 1),
        "{report:?}"
    );
    let mut stored = Vec::new();
    for id in &ids {
        stored.push(
            count(
                &raw,
                &format!("SELECT COUNT(*) FROM activity_log WHERE id = '{id}'"),
            )
            .await,
        );
    }
    assert_eq!(stored, [1, 1, 1]);
    // Counted once each: every row but the one written by hand.
    assert_eq!(
        count(
            &raw,
            "SELECT CAST(SUM(n) AS BIGINT) FROM daily_counts WHERE metric = 'activity'"
        )
        .await,
        count(&raw, "SELECT COUNT(*) FROM activity_log").await - 1
    );
    watcher.close().await;
    raw.close().await;
}

/// Two batches written at once that share records (the second repeats part of the first, in
/// reverse order, with comments): each record is stored once, reported once as a duplicate,
/// and neither write deadlocks on the other.
async fn batches_in_flight_together_store_shared_records_once(db: TestDb) {
    let (admin, ring, names) = some_accounts(&db, 30, 1).await;
    let raw = db.raw().await;
    let before = count(&raw, "SELECT COUNT(*) FROM activity_log").await;
    let line = |i: i64| {
        let who = &names[(i % 30) as usize];
        let at = Timestamp::from_micros(1_790_000_000_000_000 + i * 1_000_000).to_rfc3339();
        if i % 2 == 0 {
            format!(
                r#"{{"type":"comment_submission","user":"{who}","at":"{at}","ip":"192.0.2.9","content":"c {i}"}}"#
            )
        } else {
            format!(r#"{{"type":"login_attempt","user":"{who}","at":"{at}","ip":"192.0.2.9"}}"#)
        }
    };
    // The first batch is lines 0-4999; the second repeats 1000-1999 among new ones.
    let mut lines: Vec<String> = (0..9_000).map(line).collect();
    lines.splice(5_000..5_000, (1_000..2_000).rev().map(line));
    let file: String = lines.iter().map(|l| format!("{l}\n")).collect();
    let report = monitor::ingest_reader(&db.store, &ring, &admin, file.as_bytes())
        .await
        .unwrap();
    assert_eq!(
        (report.ingested, report.duplicates, report.comments),
        (9_000, 1_000, 4_500),
        "{report:?}"
    );
    assert_eq!(
        count(&raw, "SELECT COUNT(*) FROM activity_log").await,
        before + 9_000
    );
    raw.close().await;
}
on_both!(batches_in_flight_together_store_shared_records_once);

/// Detections recorded through one `Recorder` in one transaction (as a detector run records a
/// page's findings) leave the incidents, their evidence, the responses and the daily counts
/// as recording each in a transaction of its own does: folds, a fold that names the account,
/// a raised severity, repeated evidence, and a critical incident's responses.
async fn a_batch_of_detections_records_what_one_by_one_records(db: TestDb) {
    use vigil::incidents::{Detection, Evidence, Recorder};
    use vigil::store::daily_counts::CountChanges;
    let (admin, ring, names) = some_accounts(&db, 20, 1).await;
    let names = &names[..6];
    let mut users = Vec::new();
    for n in names {
        users.push(user_id(&db, n).await);
    }
    let keys = vigil::keys::WriteKeys::current(&db.store, &ring, &vigil::keys::PLATFORM_PURPOSES)
        .await
        .unwrap();
    let policy = Policy::default().responses;
    let who = vigil::audit::AuditActor::from(&admin);
    // One pass's detections: keys under `pass`, accounts from `users`.
    let detections = |pass: &str, users: &[uuid::Uuid]| -> Vec<Detection> {
        let d = |key: &str, kind, severity, user: Option<usize>, refs: &[&str]| Detection {
            kind,
            severity,
            user_id: user.map(|u| users[u]),
            source_ip: Some("192.0.2.77".into()),
            evidence: refs
                .iter()
                .map(|r| Evidence {
                    kind: "activity",
                    ref_id: format!("{pass}-{r}"),
                    rule: format!("rule.{key}"),
                })
                .collect(),
            summary: format!("summary {key}"),
            dedup_key: format!("{pass}:{key}"),
            at: Timestamp::now(),
        };
        use IncidentKind::*;
        vec![
            d("a", SuspiciousActivity, Severity::Medium, None, &["1", "2"]),
            d("a", SuspiciousActivity, Severity::Medium, Some(0), &["3"]),
            d(
                "a",
                SuspiciousActivity,
                Severity::High,
                Some(0),
                &["3", "4"],
            ),
            d("a", SuspiciousActivity, Severity::Medium, Some(0), &["4"]),
            d("b", RateLimitExceeded, Severity::Low, Some(1), &["5"]),
            d("b", RateLimitExceeded, Severity::Low, Some(1), &["6", "7"]),
            d("c", SuspiciousContent, Severity::Critical, Some(2), &["8"]),
            d("c", SuspiciousContent, Severity::Critical, Some(2), &["9"]),
        ]
    };
    let raw = db.raw().await;
    let counts_now = || async {
        use sqlx::Row;
        let rows = sqlx::query(
            "SELECT metric, day, key, CAST(SUM(n) AS BIGINT) FROM daily_counts \
             GROUP BY metric, day, key ORDER BY metric, day, key",
        )
        .fetch_all(&raw)
        .await
        .unwrap();
        rows.iter()
            .map(|r| {
                let (m, d, k, n): (String, i64, String, i64) = (
                    r.try_get(0).unwrap(),
                    r.try_get(1).unwrap(),
                    r.try_get(2).unwrap(),
                    r.try_get(3).unwrap(),
                );
                ((m, d, k.replace("one:", "").replace("batch:", "")), n)
            })
            .collect::<std::collections::BTreeMap<_, _>>()
    };
    let incidents_of = |pass: &'static str, users: Vec<uuid::Uuid>| {
        let raw = raw.clone();
        async move {
            use sqlx::Row;
            let rows = sqlx::query(
                "SELECT i.dedup_key, i.kind, i.severity, i.status, i.user_id, \
                 (SELECT COUNT(*) FROM incident_evidence e WHERE e.incident_id = i.id) \
                 FROM incidents i WHERE i.dedup_key LIKE $1 ORDER BY i.dedup_key",
            )
            .bind(format!("{pass}:%"))
            .fetch_all(&raw)
            .await
            .unwrap();
            rows.iter()
                .map(|r| {
                    let user: Option<String> = r.try_get(4).unwrap();
                    let user = user.map(|u| users.iter().position(|x| x.to_string() == u).unwrap());
                    let key: String = r.try_get(0).unwrap();
                    format!(
                        "{} {} {} {} {user:?} {}",
                        key.trim_start_matches(&format!("{pass}:")),
                        r.try_get::<String, _>(1).unwrap(),
                        r.try_get::<String, _>(2).unwrap(),
                        r.try_get::<String, _>(3).unwrap(),
                        r.try_get::<i64, _>(5).unwrap()
                    )
                })
                .collect::<Vec<_>>()
        }
    };
    let now = Timestamp::now();

    let before = counts_now().await;
    let mut one_by_one = Vec::new();
    for d in detections("one", &users[..3]) {
        let mut tx = db.store.begin().await.unwrap();
        let mut counts = CountChanges::new();
        let r = incidents::record(&mut tx, &mut counts, &keys, &who, &policy, &d, now)
            .await
            .unwrap();
        counts.write(&mut tx).await.unwrap();
        tx.commit().await.unwrap();
        one_by_one.push((r.created, r.severity, r.actions));
    }
    let after_one = counts_now().await;

    let mut tx = db.store.begin().await.unwrap();
    let mut counts = CountChanges::new();
    let mut recorder = Recorder::default();
    let mut batched = Vec::new();
    for d in detections("batch", &users[3..6]) {
        let r = recorder
            .record(&mut tx, &mut counts, &keys, &who, &policy, &d, now)
            .await
            .unwrap();
        batched.push((r.created, r.severity, r.actions));
    }
    counts.write(&mut tx).await.unwrap();
    tx.commit().await.unwrap();
    let after_batch = counts_now().await;

    assert_eq!(batched, one_by_one);
    let seen_one = incidents_of("one", users[..3].to_vec()).await;
    assert_eq!(seen_one.len(), 3, "{seen_one:?}");
    assert_eq!(incidents_of("batch", users[3..6].to_vec()).await, seen_one);
    let delta = |from: &std::collections::BTreeMap<(String, i64, String), i64>,
                 to: &std::collections::BTreeMap<(String, i64, String), i64>| {
        to.iter()
            .map(|(k, n)| (k.clone(), n - from.get(k).copied().unwrap_or(0)))
            .filter(|(_, n)| *n != 0)
            .collect::<Vec<_>>()
    };
    let counted_one = delta(&before, &after_one);
    assert!(!counted_one.is_empty());
    assert_eq!(delta(&after_one, &after_batch), counted_one);
    raw.close().await;
}
on_both!(a_batch_of_detections_records_what_one_by_one_records);

/// Six hours of activity by `names` from `from` (after their seeded history), in time order:
/// everyday sign-ins and comments, each account from its own address in GB (which teaches
/// the detectors their habits), with attacks laid across the stretch so that their windows
/// cross any split of it: comment bursts, accounts hopping addresses from JP, and sources
/// trying many accounts with mostly failures.
fn six_hours_after(names: &[String], from: i64) -> Vec<String> {
    use rand::{Rng, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(17);
    let mut at_lines: Vec<(i64, String)> = Vec::new();
    let mut push = |at: i64, line: String| at_lines.push((at, line));
    for i in 0..3_000i64 {
        let u = rng.gen_range(0..names.len());
        let who = &names[u];
        let at = from + i * 7_200_000;
        let (ip, country) = (format!("10.0.{}.{}", u / 256, u % 256), "GB");
        let when = Timestamp::from_micros(at).to_rfc3339();
        push(
            at,
            if rng.gen_bool(0.5) {
                format!(
                    r#"{{"type":"comment_submission","user":"{who}","at":"{when}","ip":"{ip}","country":"{country}","content":"hello {i}"}}"#
                )
            } else {
                format!(
                    r#"{{"type":"login_attempt","user":"{who}","at":"{when}","ip":"{ip}","country":"{country}","outcome":"success"}}"#
                )
            },
        );
    }
    // Every half hour somewhere in the stretch, one of the attacks.
    for k in 0..12i64 {
        let t0 = from + k * HOUR / 2 + 600_000_000;
        match k % 3 {
            0 => {
                let who = &names[k as usize % names.len()];
                for j in 0..70 {
                    let at = t0 + j * 500_000;
                    let when = Timestamp::from_micros(at).to_rfc3339();
                    push(
                        at,
                        format!(
                            r#"{{"type":"comment_submission","user":"{who}","at":"{when}","ip":"10.9.9.{k}","country":"GB","content":"burst {k} {j}"}}"#
                        ),
                    );
                }
            }
            1 => {
                let who = &names[(k as usize * 7) % names.len()];
                for j in 0..12 {
                    let at = t0 + j * 60_000_000;
                    let when = Timestamp::from_micros(at).to_rfc3339();
                    push(
                        at,
                        format!(
                            r#"{{"type":"login_attempt","user":"{who}","at":"{when}","ip":"172.16.{k}.{j}","country":"JP","outcome":"success"}}"#
                        ),
                    );
                }
            }
            _ => {
                for j in 0..30i64 {
                    let who = &names[(j as usize * 3 + k as usize) % names.len()];
                    let at = t0 + j * 10_000_000;
                    let when = Timestamp::from_micros(at).to_rfc3339();
                    let outcome = if j % 10 == 9 { "success" } else { "failure" };
                    push(
                        at,
                        format!(
                            r#"{{"type":"login_attempt","user":"{who}","at":"{when}","ip":"203.0.113.{k}","country":"US","outcome":"{outcome}"}}"#
                        ),
                    );
                }
            }
        }
    }
    at_lines.sort_by_key(|(at, _)| *at);
    at_lines.into_iter().map(|(_, l)| l).collect()
}

/// A monitor run that follows on from the previous one.
async fn run_carrying(
    db: &TestDb,
    actor: &Actor,
    ring: &KeyRing,
    carry: &mut monitor::Carry,
) -> RunReport {
    let screener = Screener::new(&[], &[]).unwrap();
    monitor::run_carrying(
        &db.store,
        ring,
        actor,
        &Policy::default(),
        &screener,
        ShardCount::ONE,
        carry,
    )
    .await
    .unwrap()
}

/// A worker that keeps its detectors from run to run reads only what is new, and opens, folds
/// and responds exactly as fresh runs over the same history do, with attacks whose windows
/// cross the runs.
async fn a_worker_following_on_judges_as_fresh_runs_do(db: TestDb) {
    common::clear_of_the_hour(COMPARED_HISTORIES).await;
    let fresh = common::fresh_like(&db).await;
    let (admin_f, ring_f, names) = some_accounts(&fresh, 60, 20).await;
    let lines = six_hours_after(&names, Timestamp::now().micros() / HOUR * HOUR + HOUR);
    let mut fresh_runs = vec![run(&fresh, &admin_f, &ring_f).await];
    for part in lines.chunks(400) {
        ingest(&fresh, &admin_f, &ring_f, part).await;
        fresh_runs.push(run(&fresh, &admin_f, &ring_f).await);
    }
    let expected = incidents_seen(&fresh, &admin_f).await;
    for kind in [
        "rate_limit_exceeded",
        "suspicious_activity",
        "credential_stuffing",
    ] {
        let n = expected.iter().filter(|i| i.contains(kind)).count();
        assert!(
            n >= 3,
            "{kind} flagged for most of its attacks: {expected:#?}"
        );
    }

    let (admin, ring, same) = some_accounts(&db, 60, 20).await;
    assert_eq!(same, names);
    let mut carry = monitor::Carry::default();
    let mut runs = vec![run_carrying(&db, &admin, &ring, &mut carry).await];
    for part in lines.chunks(400) {
        ingest(&db, &admin, &ring, part).await;
        runs.push(run_carrying(&db, &admin, &ring, &mut carry).await);
    }
    // The first run starts afresh; each one after follows on.
    assert!(runs[0].shards_followed.is_empty(), "{:?}", runs[0]);
    for r in &runs[1..] {
        assert_eq!(r.shards_followed, [0], "{r:?}");
        assert_eq!(r.scanned, r.new_events, "only the new records read: {r:?}");
    }
    assert!(
        runs.iter().map(|r| r.scanned).sum::<u64>()
            < fresh_runs.iter().map(|r| r.scanned).sum::<u64>()
    );
    assert_eq!(judged(&runs), judged(&fresh_runs));
    assert_eq!(judged(&runs), activity_rows(&db).await);
    assert_eq!(incidents_seen(&db, &admin).await, expected);
    assert_eq!(responses_taken(&db).await, responses_taken(&fresh).await);
}
on_both!(a_worker_following_on_judges_as_fresh_runs_do);

/// What a worker carries is not followed on from when the shard moved on without it (another
/// worker judged it), nor when a new record happened before the last one it read: the run
/// starts afresh, and the late record is judged among the records around it.
async fn a_worker_starts_afresh_after_another_worker_or_a_late_record(db: TestDb) {
    let (admin, ring, names) = some_accounts(&db, 60, 20).await;
    let lines = six_hours_after(&names, Timestamp::now().micros() / HOUR * HOUR + HOUR);
    let parts: Vec<&[String]> = lines.chunks(700).collect();
    let mut carry = monitor::Carry::default();
    let mut runs = vec![run_carrying(&db, &admin, &ring, &mut carry).await];
    ingest(&db, &admin, &ring, parts[0]).await;
    runs.push(run_carrying(&db, &admin, &ring, &mut carry).await);
    assert_eq!(runs[1].shards_followed, [0]);

    // Another worker (no carry) judges the next part: this worker's state is behind.
    ingest(&db, &admin, &ring, parts[1]).await;
    runs.push(run(&db, &admin, &ring).await);
    ingest(&db, &admin, &ring, parts[2]).await;
    let after_other = run_carrying(&db, &admin, &ring, &mut carry).await;
    assert!(after_other.shards_followed.is_empty(), "{after_other:?}");
    assert!(
        after_other.scanned > after_other.new_events,
        "{after_other:?}"
    );
    runs.push(after_other);

    // Records from before the last one read arrive late: a dozen sign-ins to one account in
    // as many seconds. The run goes back for the window around them and flags the account.
    let who = &names[59];
    let late_at = Timestamp::now().micros() / HOUR * HOUR + 4 * HOUR + HOUR / 2;
    let late: Vec<String> = (0..12)
        .map(|j| {
            let when = Timestamp::from_micros(late_at + j * 1_000_000).to_rfc3339();
            format!(r#"{{"type":"login_attempt","user":"{who}","at":"{when}","ip":"198.51.100.{j}","country":"JP","outcome":"success"}}"#)
        })
        .collect();
    let before = incidents_seen(&db, &admin).await;
    ingest(&db, &admin, &ring, &late).await;
    let late_run = run_carrying(&db, &admin, &ring, &mut carry).await;
    assert!(late_run.shards_followed.is_empty(), "{late_run:?}");
    assert_eq!(late_run.new_events, 12);
    runs.push(late_run);
    let after = incidents_seen(&db, &admin).await;
    assert!(
        after.iter().any(
            |i| i.starts_with(&format!("{who} rate_limit_exceeded medium")) && !before.contains(i)
        ),
        "{after:#?}"
    );

    // From there it follows on again.
    ingest(&db, &admin, &ring, parts[3]).await;
    let next = run_carrying(&db, &admin, &ring, &mut carry).await;
    assert_eq!(next.shards_followed, [0], "{next:?}");
    runs.push(next);
    assert_eq!(judged(&runs), activity_rows(&db).await);
}
on_both!(a_worker_starts_afresh_after_another_worker_or_a_late_record);

/// Detectors a fresh pass built are followed on from only until they are
/// [`monitor::Carry::renewed_after`] old: the next run drops them and rebuilds them from the
/// database (which no longer holds what an erasure or retention removed since), then follows
/// on again.
async fn a_worker_rebuilds_its_detectors_once_they_are_old(db: TestDb) {
    let (admin, ring, names) = some_accounts(&db, 60, 20).await;
    let lines = six_hours_after(&names, Timestamp::now().micros() / HOUR * HOUR + HOUR);
    let parts: Vec<&[String]> = lines.chunks(700).collect();
    let age = std::time::Duration::from_secs(10);
    let mut carry = monitor::Carry::renewed_after(age);
    let before_built = std::time::Instant::now();
    let mut runs = vec![run_carrying(&db, &admin, &ring, &mut carry).await];
    ingest(&db, &admin, &ring, parts[0]).await;
    let within = run_carrying(&db, &admin, &ring, &mut carry).await;
    assert!(
        before_built.elapsed() < age,
        "two runs took longer than the detectors' age: the machine is too slow for this test"
    );
    assert_eq!(within.shards_followed, [0], "{within:?}");
    runs.push(within);

    tokio::time::sleep(age).await;
    // (A run with nothing new comes in between.)
    let idle = run_carrying(&db, &admin, &ring, &mut carry).await;
    assert_eq!(idle.new_events, 0);
    ingest(&db, &admin, &ring, parts[1]).await;
    let rebuilt = run_carrying(&db, &admin, &ring, &mut carry).await;
    assert!(rebuilt.shards_followed.is_empty(), "{rebuilt:?}");
    assert!(rebuilt.scanned > rebuilt.new_events, "{rebuilt:?}");
    runs.push(rebuilt);

    ingest(&db, &admin, &ring, parts[2]).await;
    let next = run_carrying(&db, &admin, &ring, &mut carry).await;
    assert_eq!(next.shards_followed, [0], "{next:?}");
    runs.push(next);
    assert_eq!(judged(&runs), activity_rows(&db).await);
}
on_both!(a_worker_rebuilds_its_detectors_once_they_are_old);
