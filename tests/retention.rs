//! Retention on both databases: the dry run's counts against direct SQL counts, a run that
//! leaves nothing due and every held record intact, policies refused when invalid, job locks
//! that exclude a second holder, and audit archiving that keeps the chain verifiable end to end
//! and catches a changed byte.

mod common;

use common::{count, TestDb};
use std::ops::ControlFlow;
use vigil::audit::{self, archive, Verification};
use vigil::auth::{tokens, Actor};
use vigil::demo::{self, SeedOptions};
use vigil::keys::KeyRing;
use vigil::monitor::{self, policy::Policy, screen::Screener};
use vigil::platform;
use vigil::privacy::holds::{self, HoldTarget};
use vigil::privacy::{self, RequestKind, SubjectRef};
use vigil::retention::{
    self, Category, PolicyAction, PolicyChange, RetentionError, RunOptions, RunStatus,
};
use vigil::store::{Store, StoreOptions, Timestamp};

const DAY: i64 = 86_400_000_000;

async fn seeded(db: &TestDb) -> (Actor, KeyRing) {
    let (admin, ring) = common::admin_keys(db).await;
    let opts = SeedOptions {
        users: 300,
        comments: 6_000,
        days: 2_000,
        seed: 7,
        scenarios: true,
    };
    demo::seed(&db.store, &admin, &ring, opts, &mut |_| {})
        .await
        .unwrap();
    // The scenarios' incidents stay open: their accounts' records are held.
    let screener = Screener::new(&[], &[]).unwrap();
    monitor::run(
        &db.store,
        &ring,
        &admin,
        &Policy::default(),
        &screener,
        monitor::shard::ShardCount::ONE,
    )
    .await
    .unwrap();
    (admin, ring)
}

/// The account with the most activity older than `cutoff` that nothing holds yet.
async fn busiest_free_user(db: &TestDb, cutoff: i64) -> (String, String) {
    use sqlx::Row;
    let raw = db.raw().await;
    let row = sqlx::query(
        "SELECT u.id, u.username FROM users u JOIN activity_log a ON a.user_id = u.id \
         WHERE u.kind = 'platform' AND a.occurred_at < $1 \
           AND u.id NOT IN (SELECT user_id FROM incidents WHERE user_id IS NOT NULL) \
           AND u.id NOT IN (SELECT target_id FROM legal_holds) \
           AND u.id NOT IN (SELECT subject_id FROM dsr_requests WHERE subject_id IS NOT NULL) \
         GROUP BY u.id, u.username ORDER BY COUNT(*) DESC, u.id LIMIT 1",
    )
    .bind(cutoff)
    .fetch_one(&raw)
    .await
    .unwrap();
    raw.close().await;
    (row.try_get(0).unwrap(), row.try_get(1).unwrap())
}

/// Accounts whose records are held, written independently of the core's query.
const HELD_USERS: &str = "(SELECT target_id FROM legal_holds WHERE released_at IS NULL \
      AND target_kind = 'user' \
    UNION SELECT i.user_id FROM legal_holds h JOIN incidents i ON i.id = h.target_id \
      WHERE h.released_at IS NULL AND h.target_kind = 'incident' AND i.user_id IS NOT NULL \
    UNION SELECT user_id FROM incidents WHERE status IN ('open', 'investigating') \
      AND user_id IS NOT NULL \
    UNION SELECT subject_id FROM dsr_requests \
      WHERE status IN ('received', 'verifying', 'verified', 'in_progress') \
      AND subject_id IS NOT NULL)";

/// Records cited as evidence by an open or held incident.
const HELD_EVIDENCE: &str = "(SELECT e.ref_id FROM incident_evidence e JOIN incidents i \
    ON i.id = e.incident_id WHERE e.ref_id IS NOT NULL AND (i.status IN ('open', 'investigating') \
    OR i.id IN (SELECT target_id FROM legal_holds WHERE released_at IS NULL)))";

async fn plan_of(
    db: &TestDb,
    actor: &Actor,
    as_of: Timestamp,
) -> std::collections::HashMap<Category, retention::PlanItem> {
    retention::plan(&db.store, actor, Some(as_of))
        .await
        .unwrap()
        .into_iter()
        .map(|p| (p.category, p))
        .collect()
}

async fn plan_matches_sql_and_a_run_clears_what_is_due_and_keeps_what_is_held(db: TestDb) {
    let (admin, ring) = seeded(&db).await;
    let now = Timestamp::now();
    let activity_cutoff = now.micros() - 90 * DAY;
    let raw = db.raw().await;

    // Holds of each kind: a legal hold, the scenarios' open incidents, an open request.
    let (_held_id, held_name) = busiest_free_user(&db, activity_cutoff).await;
    holds::place(
        &db.store,
        &admin,
        &HoldTarget::User(held_name.clone()),
        "litigation hold 2026-17",
    )
    .await
    .unwrap();
    let (requested_id, requested_name) = busiest_free_user(&db, activity_cutoff).await;
    assert_ne!(requested_name, held_name);
    let officer = common::operator_with_role(&db, "co-casey", "compliance_officer").await;
    privacy::create(
        &db.store,
        Some(&ring),
        &officer,
        RequestKind::Access,
        &SubjectRef::Username(requested_name),
        privacy::CodeDelivery::Manual,
    )
    .await
    .unwrap();

    // Sessions that ended long ago (a sign-in 120 days back), and accounts deleted on the
    // platform 40 days ago (the platform closes accounts; Vigil only sees the result).
    let old = Timestamp::from_micros(now.micros() - 120 * DAY);
    for _ in 0..3 {
        tokens::issue_at(&db.store, &ring, &admin, "test", old)
            .await
            .unwrap();
    }
    let closing: Vec<uuid::Uuid> = sqlx::query_scalar::<_, String>(&format!(
        "SELECT id FROM users WHERE kind = 'platform' AND id NOT IN {HELD_USERS} \
         ORDER BY id LIMIT 7"
    ))
    .fetch_all(&raw)
    .await
    .unwrap()
    .iter()
    .map(|id| id.parse().unwrap())
    .collect();
    let closed_at = Timestamp::from_micros(now.micros() - 40 * DAY);
    let mut tx = db.store.begin().await.unwrap();
    assert_eq!(
        platform::mark_deleted(&mut tx, &closing, closed_at)
            .await
            .unwrap(),
        7
    );
    assert_eq!(
        platform::mark_deleted(&mut tx, &closing, now)
            .await
            .unwrap(),
        0,
        "an account is deleted once; its date stays"
    );
    tx.commit().await.unwrap();
    // Comments are kept five years by default; a month makes most of the seeded ones due.
    retention::set_policy(
        &db.store,
        &admin,
        Category::Comments,
        &PolicyChange {
            period_days: Some(30),
            ..PolicyChange::default()
        },
    )
    .await
    .unwrap();

    let plan = plan_of(&db, &admin, now).await;
    let comment_cutoff = now.micros() - 30 * DAY;
    let sql_activity_due = count(
        &raw,
        &format!(
            "SELECT COUNT(*) FROM activity_log WHERE occurred_at < {activity_cutoff} \
             AND (user_id IS NULL OR user_id NOT IN {HELD_USERS}) AND id NOT IN {HELD_EVIDENCE}"
        ),
    )
    .await;
    let sql_activity_old = count(
        &raw,
        &format!("SELECT COUNT(*) FROM activity_log WHERE occurred_at < {activity_cutoff}"),
    )
    .await;
    let sql_comments_due = count(
        &raw,
        &format!(
            "SELECT COUNT(*) FROM comments WHERE created_at < {comment_cutoff} \
             AND author_id IS NOT NULL AND author_id NOT IN {HELD_USERS} \
             AND id NOT IN {HELD_EVIDENCE}"
        ),
    )
    .await;
    let session_cutoff = now.micros() - 30 * DAY;
    let sql_sessions_due = count(
        &raw,
        &format!(
            "SELECT (SELECT COUNT(*) FROM sessions WHERE expires_at < {session_cutoff}) + \
             (SELECT COUNT(*) FROM revoked_tokens WHERE expires_at < {session_cutoff}) + \
             (SELECT COUNT(*) FROM login_challenges WHERE expires_at < {session_cutoff})"
        ),
    )
    .await;
    let a = &plan[&Category::Activity];
    assert!(sql_activity_due > 1_000, "the seed has old activity");
    assert_eq!(a.due as i64, sql_activity_due);
    assert_eq!((a.due + a.held.total()) as i64, sql_activity_old);
    assert!(a.held.legal_hold > 0, "{:?}", a.held);
    assert!(a.held.open_request > 0, "{:?}", a.held);
    assert_eq!(plan[&Category::Comments].due as i64, sql_comments_due);
    assert!(sql_comments_due > 1_000);
    assert_eq!(plan[&Category::Sessions].due as i64, sql_sessions_due);
    assert!(sql_sessions_due >= 3);
    assert_eq!(plan[&Category::DeletedUsers].due, 7);
    assert_eq!(plan[&Category::Audit].due, 0, "nothing is seven years old");
    let oldest = a.oldest.unwrap().micros();
    assert!(oldest < activity_cutoff && oldest >= now.micros() - 2_001 * DAY);

    // Held records, to compare after the run.
    let held_activity = format!(
        "SELECT COUNT(*) FROM activity_log WHERE occurred_at < {activity_cutoff} \
         AND (user_id IN {HELD_USERS} OR id IN {HELD_EVIDENCE})"
    );
    let held_activity_before = count(&raw, &held_activity).await;
    let held_comments = format!(
        "SELECT COUNT(*) FROM comments WHERE created_at < {comment_cutoff} \
         AND author_id IN {HELD_USERS}"
    );
    let held_comments_before = count(&raw, &held_comments).await;
    let requested_before = count(
        &raw,
        &format!("SELECT COUNT(*) FROM activity_log WHERE user_id = '{requested_id}'"),
    )
    .await;
    assert!(held_activity_before > 0 && held_comments_before > 0);
    let comment_total = count(&raw, "SELECT COUNT(*) FROM comments").await;

    let mut seen = Vec::new();
    let options = RunOptions {
        chunk: 700,
        as_of: Some(now),
        ..RunOptions::default()
    };
    let rec = retention::run(&db.store, &admin, &options, &mut |p| {
        seen.push(p);
        ControlFlow::Continue(())
    })
    .await
    .unwrap();
    assert_eq!(rec.status, RunStatus::Completed, "{:?}", rec.errors);
    assert!(!rec.resumed);
    assert_eq!(
        rec.counts[&Category::Activity].done as i64,
        sql_activity_due
    );
    assert_eq!(
        rec.counts[&Category::Activity].held,
        a.held.total(),
        "a run counts what it passes over"
    );
    assert_eq!(
        rec.counts[&Category::Comments].done as i64,
        sql_comments_due
    );
    assert_eq!(rec.counts[&Category::DeletedUsers].done, 7);
    assert!(rec.counts[&Category::Activity].chunks >= 2);
    if db.store.backend() == vigil::store::Backend::Sqlite {
        // Clearing most of the activity in many chunks, the run dropped the index by account
        // for its duration: it is back, and nothing waits to be rebuilt.
        assert_eq!(
            count(
                &raw,
                "SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' \
                 AND name IN ('activity_log_user_time_idx', 'comments_author_idx')"
            )
            .await,
            2
        );
        assert_eq!(
            count(
                &raw,
                "SELECT COUNT(*) FROM app_meta WHERE key = 'deferred_indexes'"
            )
            .await,
            0
        );
    }
    assert!(seen
        .iter()
        .any(|p| p.policy == Category::Activity && p.done > 0));

    let after = plan_of(&db, &admin, now).await;
    for (c, p) in &after {
        assert_eq!(p.due, 0, "{c} still has records due");
    }
    assert_eq!(after[&Category::Activity].held, a.held);
    assert_eq!(count(&raw, &held_activity).await, held_activity_before);
    assert_eq!(count(&raw, &held_comments).await, held_comments_before);
    assert_eq!(
        count(
            &raw,
            &format!("SELECT COUNT(*) FROM activity_log WHERE user_id = '{requested_id}'"),
        )
        .await,
        requested_before
    );
    // Anonymised comments stay readable: none was removed, none lost its text.
    assert_eq!(
        count(&raw, "SELECT COUNT(*) FROM comments").await,
        comment_total
    );
    assert_eq!(
        count(
            &raw,
            &format!(
                "SELECT COUNT(*) FROM comments WHERE created_at < {comment_cutoff} \
                 AND author_id IS NULL AND body IS NULL AND body_envelope IS NULL \
                 AND deleted_at IS NULL"
            ),
        )
        .await,
        0
    );
    assert_eq!(
        count(&raw, "SELECT COUNT(*) FROM users WHERE status = 'deleted'").await,
        0
    );

    // One audit entry for the run, and the chain still verifies.
    let entries = audit::list(
        &db.store,
        &admin,
        &audit::AuditFilter {
            action: Some("retention.ran".into()),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(entries.len(), 1);
    assert!(!entries[0].details.contains(&held_name));
    assert!(matches!(
        audit::verify_chain(&db.store).await.unwrap(),
        Verification::Ok { .. }
    ));
    let runs = retention::runs(&db.store, &admin, 10).await.unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].status, RunStatus::Completed);
    assert_eq!(runs[0].counts, rec.counts);

    // The attack scenarios are recent; judged four months on, their accounts' activity is past
    // its period and their open incidents hold it.
    let later = plan_of(
        &db,
        &admin,
        Timestamp::from_micros(now.micros() + 120 * DAY),
    )
    .await;
    assert!(later[&Category::Activity].held.open_incident > 0);

    // A second run finds nothing to do.
    let again = retention::run(&db.store, &admin, &options, &mut |_| {
        ControlFlow::Continue(())
    })
    .await
    .unwrap();
    assert!(again.counts.values().all(|c| c.done == 0));
    raw.close().await;
}
on_both!(plan_matches_sql_and_a_run_clears_what_is_due_and_keeps_what_is_held);

async fn a_run_asked_to_stop_stops_after_a_chunk_and_the_next_resumes_it(db: TestDb) {
    let (admin, _ring) = seeded(&db).await;
    let raw = db.raw().await;
    let now = Timestamp::now();
    let activity_cutoff = now.micros() - 90 * DAY;
    let old = format!("SELECT COUNT(*) FROM activity_log WHERE occurred_at < {activity_cutoff}");
    let due = plan_of(&db, &admin, now).await[&Category::Activity].due;
    assert!(due > 1_000, "the seed has old activity");
    let before = count(&raw, &old).await;
    let options = RunOptions {
        policy: Some(Category::Activity),
        chunk: 100,
        as_of: Some(now),
        ..RunOptions::default()
    };

    // Asked to stop at its first progress report: one chunk is done and committed, no more.
    let mut reports = 0;
    let stopped = retention::run(&db.store, &admin, &options, &mut |_| {
        reports += 1;
        ControlFlow::Break(())
    })
    .await;
    assert!(
        matches!(stopped, Err(RetentionError::Stopped)),
        "{stopped:?}"
    );
    assert_eq!(reports, 1);
    let first = before - count(&raw, &old).await;
    assert!(first > 0 && first <= 100, "one chunk of 100: {first}");
    let runs = retention::runs(&db.store, &admin, 5).await.unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].status, RunStatus::Running, "left to be resumed");
    assert!(runs[0].finished_at.is_none());
    // The lock went with the stopped run: nothing is busy.
    let lock = db.store.try_job_lock("retention").await.unwrap();
    assert!(lock.is_some(), "a stopped run holds no lock");
    lock.unwrap().release().await;

    // The next run resumes it (same run, same cutoff) and clears the rest.
    let resumed = retention::run(&db.store, &admin, &options, &mut |_| {
        ControlFlow::Continue(())
    })
    .await
    .unwrap();
    assert!(resumed.resumed);
    assert_eq!(resumed.id, runs[0].id);
    assert_eq!(resumed.status, RunStatus::Completed, "{:?}", resumed.errors);
    assert_eq!(resumed.counts[&Category::Activity].done, due);
    assert_eq!(plan_of(&db, &admin, now).await[&Category::Activity].due, 0);
    assert_eq!(
        retention::runs(&db.store, &admin, 5).await.unwrap().len(),
        1
    );
    raw.close().await;
}
on_both!(a_run_asked_to_stop_stops_after_a_chunk_and_the_next_resumes_it);

async fn invalid_policies_are_refused_and_change_nothing(db: TestDb) {
    let admin = common::admin(&db).await;
    let before = retention::policies(&db.store, &admin).await.unwrap();
    let refused = [
        (Category::Activity, Some(0), None),
        (Category::Activity, Some(40_000), None),
        (Category::Audit, Some(10), None),
        (Category::Audit, None, Some(PolicyAction::Delete)),
        (Category::Activity, None, Some(PolicyAction::Archive)),
    ];
    for (category, days, action) in refused {
        let change = PolicyChange {
            period_days: days,
            action,
            enabled: None,
        };
        let e = retention::set_policy(&db.store, &admin, category, &change)
            .await
            .unwrap_err();
        let RetentionError::Invalid(message) = e else {
            panic!("{category}: {e}")
        };
        assert!(message.contains(category.as_str()), "{message}");
    }
    assert_eq!(
        retention::policies(&db.store, &admin).await.unwrap(),
        before
    );

    // A moderator may neither read nor change them; a compliance officer may.
    let moderator = common::operator_with_role(&db, "mod-morgan", "moderator").await;
    assert!(matches!(
        retention::plan(&db.store, &moderator, None).await,
        Err(RetentionError::Forbidden(_))
    ));
    assert!(matches!(
        retention::run(&db.store, &moderator, &RunOptions::default(), &mut |_| {
            ControlFlow::Continue(())
        })
        .await,
        Err(RetentionError::Forbidden(_))
    ));
    let officer = common::operator_with_role(&db, "co-casey", "compliance_officer").await;
    let changed = retention::set_policy(
        &db.store,
        &officer,
        Category::Comments,
        &PolicyChange {
            period_days: Some(730),
            action: Some(PolicyAction::Delete),
            enabled: Some(false),
        },
    )
    .await
    .unwrap();
    assert_eq!(changed.period_days, 730);
    assert_eq!(changed.action, PolicyAction::Delete);
    assert!(!changed.enabled);
    assert_eq!(changed.updated_by.as_deref(), Some("co-casey"));
    let raw = db.raw().await;
    assert_eq!(
        count(
            &raw,
            "SELECT COUNT(*) FROM audit_log WHERE action = 'retention.policy_changed'"
        )
        .await,
        1
    );
    raw.close().await;
}
on_both!(invalid_policies_are_refused_and_change_nothing);

async fn a_job_lock_has_one_holder_until_released(db: TestDb) {
    let other = Store::open(&db.url, &StoreOptions::default())
        .await
        .unwrap();
    let first = db.store.try_job_lock("retention").await.unwrap().unwrap();
    assert!(other.try_job_lock("retention").await.unwrap().is_none());
    // Another job's lock is independent.
    let monitor = other.try_job_lock("monitor").await.unwrap().unwrap();
    // While a lock is held elsewhere, a run refuses and changes nothing.
    let admin = common::admin(&db).await;
    let e = retention::run(&other, &admin, &RunOptions::default(), &mut |_| {
        ControlFlow::Continue(())
    })
    .await
    .unwrap_err();
    assert!(matches!(e, RetentionError::Busy), "{e}");
    assert!(retention::runs(&db.store, &admin, 5)
        .await
        .unwrap()
        .is_empty());
    first.release().await;
    let second = other.try_job_lock("retention").await.unwrap().unwrap();
    // Dropping a lock frees it too (on Postgres once the server has ended its session).
    drop(second);
    drop(monitor);
    let mut third = None;
    for _ in 0..50 {
        third = db.store.try_job_lock("retention").await.unwrap();
        if third.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(third.is_some(), "the dropped lock was never freed");
    other.close().await;
}
on_both!(a_job_lock_has_one_holder_until_released);

async fn archiving_keeps_the_chain_verifiable_and_a_changed_byte_is_found(db: TestDb) {
    let admin = common::admin(&db).await;
    // Enough entries for several segments.
    for _ in 0..12 {
        audit::verify(&db.store, &admin).await.unwrap();
    }
    let raw = db.raw().await;
    let total = count(&raw, "SELECT COUNT(*) FROM audit_log").await;
    let dir = tempfile::tempdir().unwrap();
    let options = RunOptions {
        policy: Some(Category::Audit),
        chunk: 5,
        // Eight years on, every entry so far is past the seven-year period.
        as_of: Some(Timestamp::from_micros(
            Timestamp::now().micros() + 8 * 366 * DAY,
        )),
        archive_dir: Some(dir.path().to_owned()),
        abort_in_chunk: None,
    };
    let rec = retention::run(&db.store, &admin, &options, &mut |_| {
        ControlFlow::Continue(())
    })
    .await
    .unwrap();
    assert_eq!(rec.status, RunStatus::Completed, "{:?}", rec.errors);
    let archived = rec.counts[&Category::Audit].done as i64;
    assert_eq!(archived, total);
    assert!(rec.counts[&Category::Audit].chunks >= 3);
    // The live table kept only the run's own entry.
    assert_eq!(count(&raw, "SELECT COUNT(*) FROM audit_log").await, 1);

    let live = audit::verify_chain(&db.store).await.unwrap();
    assert!(
        matches!(live, Verification::Ok { entries: 1, .. }),
        "{live:?}"
    );
    let full = archive::verify_with_archive(&db.store, &admin, dir.path())
        .await
        .unwrap();
    assert!(full.is_ok(), "{full:?}");
    let archive::ArchiveResult::Ok {
        entries, segments, ..
    } = full.archive
    else {
        unreachable!()
    };
    assert_eq!(entries as i64, archived);
    let manifest = archive::read_manifest(dir.path()).unwrap().unwrap();
    assert_eq!(manifest.segments.len() as u64, segments);
    assert_eq!(manifest.segments[0].first_seq, 1);

    // Without the archive the live chain still verifies; against the wrong folder it does not.
    let empty = tempfile::tempdir().unwrap();
    let wrong = archive::verify_with_archive(&db.store, &admin, empty.path())
        .await
        .unwrap();
    assert!(!wrong.is_ok());

    // One changed byte in a segment.
    let seg = dir.path().join(&manifest.segments[1].file);
    let mut bytes = std::fs::read(&seg).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x01;
    std::fs::write(&seg, &bytes).unwrap();
    let broken = archive::verify_with_archive(&db.store, &admin, dir.path())
        .await
        .unwrap();
    match broken.archive {
        archive::ArchiveResult::Broken { file, fault, .. } => {
            assert_eq!(file.as_deref(), Some(manifest.segments[1].file.as_str()));
            assert_eq!(fault, archive::ArchiveFault::Checksum);
        }
        other => panic!("{other:?}"),
    }
    // Restored, it verifies again. Rewritten with an altered entry and a matching checksum in
    // the manifest, the chain itself gives it away.
    bytes[mid] ^= 0x01;
    std::fs::write(&seg, &bytes).unwrap();
    assert!(archive::verify_with_archive(&db.store, &admin, dir.path())
        .await
        .unwrap()
        .is_ok());
    let text = {
        use std::io::Read;
        let mut s = String::new();
        flate2::read::GzDecoder::new(bytes.as_slice())
            .read_to_string(&mut s)
            .unwrap();
        s
    };
    let forged = text.replacen("audit.verified", "audit.verifiee", 1);
    assert_ne!(forged, text);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut gz, forged.as_bytes()).unwrap();
    let forged = gz.finish().unwrap();
    std::fs::write(&seg, &forged).unwrap();
    let mut m = manifest.clone();
    m.segments[1].sha256 = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(&forged))
    };
    // A forger who rewrites the checksum writes the size too.
    m.segments[1].bytes = forged.len() as u64;
    std::fs::write(
        dir.path().join(archive::MANIFEST),
        serde_json::to_vec(&m).unwrap(),
    )
    .unwrap();
    let forged = archive::verify_with_archive(&db.store, &admin, dir.path())
        .await
        .unwrap();
    match forged.archive {
        archive::ArchiveResult::Broken { fault, .. } => assert_eq!(
            fault,
            archive::ArchiveFault::Chain {
                fault: audit::ChainFault::HashMismatch
            }
        ),
        other => panic!("{other:?}"),
    }
    raw.close().await;
}
on_both!(archiving_keeps_the_chain_verifiable_and_a_changed_byte_is_found);

/// The archive trusts nothing it reads: a manifest entry that names `../x`, an absolute path, a
/// symbolic link to `/dev/zero`, a segment larger than the manifest says, or a segment whose
/// bytes were changed is refused with a sentence naming the segment and what is wrong, and
/// nothing outside the archive folder is read.
async fn the_archive_trusts_no_name_link_or_size_it_reads(db: TestDb) {
    let admin = common::admin(&db).await;
    for _ in 0..6 {
        audit::verify(&db.store, &admin).await.unwrap();
    }
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("archive");
    let options = RunOptions {
        policy: Some(Category::Audit),
        chunk: 5,
        as_of: Some(Timestamp::from_micros(
            Timestamp::now().micros() + 8 * 366 * DAY,
        )),
        archive_dir: Some(dir.clone()),
        abort_in_chunk: None,
    };
    let rec = retention::run(&db.store, &admin, &options, &mut |_| {
        ControlFlow::Continue(())
    })
    .await
    .unwrap();
    assert_eq!(rec.status, RunStatus::Completed, "{:?}", rec.errors);
    let manifest = archive::read_manifest(&dir).unwrap().unwrap();
    assert!(manifest.segments.len() >= 2);
    let first = manifest.segments[0].clone();
    assert!(archive::verify_with_archive(&db.store, &admin, &dir)
        .await
        .unwrap()
        .is_ok());

    // A copy of the first segment just outside the archive folder: valid bytes, right checksum.
    // If a `../` entry were followed it would verify; it must be refused without being read.
    let outside = root.path().join("outside.jsonl.gz");
    std::fs::copy(dir.join(&first.file), &outside).unwrap();

    let with_first = |file: &str, bytes: Option<u64>| {
        let mut m = manifest.clone();
        m.segments[0].file = file.to_owned();
        if let Some(b) = bytes {
            m.segments[0].bytes = b;
        }
        std::fs::write(dir.join(archive::MANIFEST), serde_json::to_vec(&m).unwrap()).unwrap();
    };
    let check = |result: archive::FullVerification,
                 file: &str,
                 fault: archive::ArchiveFault,
                 sentence: &str| {
        assert!(!result.is_ok());
        match &result.archive {
            archive::ArchiveResult::Broken {
                file: named,
                fault: found,
                entries_ok,
                ..
            } => {
                assert_eq!(named.as_deref(), Some(file));
                assert_eq!(found, &fault);
                assert_eq!(*entries_ok, 0, "nothing was taken from the refused segment");
            }
            other => panic!("{other:?}"),
        }
        let text = result.archive.to_string();
        assert_eq!(text, sentence);
        assert!(!text.contains('{'), "a sentence, not JSON: {text}");
    };

    // `../x`: a name that leads out of the folder.
    with_first("../outside.jsonl.gz", None);
    check(
        archive::verify_with_archive(&db.store, &admin, &dir)
            .await
            .unwrap(),
        "../outside.jsonl.gz",
        archive::ArchiveFault::UnsafeName {
            reason: "it leads out of the archive folder".into(),
        },
        "archive segment \"../outside.jsonl.gz\": the manifest's file name was refused, so \
         nothing was read: it leads out of the archive folder",
    );

    // An absolute path, to the same valid copy.
    let absolute = outside.display().to_string();
    with_first(&absolute, None);
    check(
        archive::verify_with_archive(&db.store, &admin, &dir)
            .await
            .unwrap(),
        &absolute,
        archive::ArchiveFault::UnsafeName {
            reason: "it is an absolute path".into(),
        },
        &format!(
            "archive segment {absolute:?}: the manifest's file name was refused, so nothing \
             was read: it is an absolute path"
        ),
    );
    // `/dev/zero` named directly is an absolute path too.
    with_first("/dev/zero", None);
    let r = archive::verify_with_archive(&db.store, &admin, &dir)
        .await
        .unwrap();
    assert!(matches!(
        r.archive,
        archive::ArchiveResult::Broken {
            fault: archive::ArchiveFault::UnsafeName { .. },
            ..
        }
    ));

    // A plain name that is a symbolic link to /dev/zero: refused without reading (a read would
    // never end, so this test finishing is part of the proof).
    std::os::unix::fs::symlink("/dev/zero", dir.join("zero.jsonl.gz")).unwrap();
    with_first("zero.jsonl.gz", None);
    check(
        archive::verify_with_archive(&db.store, &admin, &dir)
            .await
            .unwrap(),
        "zero.jsonl.gz",
        archive::ArchiveFault::NotARegularFile {
            what: "a symbolic link".into(),
        },
        "archive segment \"zero.jsonl.gz\": it is a symbolic link, not a regular file, so \
         nothing was read",
    );
    // And a symbolic link to the valid copy outside is refused the same way.
    std::os::unix::fs::symlink(&outside, dir.join("link.jsonl.gz")).unwrap();
    with_first("link.jsonl.gz", None);
    let r = archive::verify_with_archive(&db.store, &admin, &dir)
        .await
        .unwrap();
    assert!(matches!(
        r.archive,
        archive::ArchiveResult::Broken {
            fault: archive::ArchiveFault::NotARegularFile { .. },
            ..
        }
    ));

    // The right segment, but the manifest says it is one byte shorter than it is.
    with_first(&first.file, Some(first.bytes - 1));
    check(
        archive::verify_with_archive(&db.store, &admin, &dir)
            .await
            .unwrap(),
        &first.file,
        archive::ArchiveFault::LargerThanManifest {
            manifest_bytes: first.bytes - 1,
        },
        &format!(
            "archive segment {:?}: it is larger than the {} bytes the manifest gives, so it \
             was not read past them",
            first.file,
            first.bytes - 1
        ),
    );

    // The true manifest again, and one changed byte in the segment: the checksum refuses it.
    std::fs::write(
        dir.join(archive::MANIFEST),
        serde_json::to_vec(&manifest).unwrap(),
    )
    .unwrap();
    let seg = dir.join(&first.file);
    let mut bytes = std::fs::read(&seg).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x01;
    std::fs::write(&seg, &bytes).unwrap();
    check(
        archive::verify_with_archive(&db.store, &admin, &dir)
            .await
            .unwrap(),
        &first.file,
        archive::ArchiveFault::Checksum,
        &format!(
            "archive segment {:?}: its bytes do not match the SHA-256 in the manifest: it was \
             changed",
            first.file
        ),
    );
    bytes[mid] ^= 0x01;
    std::fs::write(&seg, &bytes).unwrap();
    assert!(archive::verify_with_archive(&db.store, &admin, &dir)
        .await
        .unwrap()
        .is_ok());

    // The manifest itself as a symbolic link to /dev/zero: refused, not read.
    std::fs::remove_file(dir.join(archive::MANIFEST)).unwrap();
    std::os::unix::fs::symlink("/dev/zero", dir.join(archive::MANIFEST)).unwrap();
    let err = archive::read_manifest(&dir).unwrap_err().to_string();
    assert!(
        err.ends_with("is unreadable: it is a symbolic link, not a regular file"),
        "{err}"
    );
    let r = archive::verify_with_archive(&db.store, &admin, &dir)
        .await
        .unwrap();
    assert!(matches!(
        r.archive,
        archive::ArchiveResult::Broken {
            fault: archive::ArchiveFault::NoManifest { .. },
            ..
        }
    ));
}
on_both!(the_archive_trusts_no_name_link_or_size_it_reads);
