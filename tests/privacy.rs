//! Data-subject requests on both databases: lifecycle and deadlines, identity verification,
//! exports that hold the subject and nobody else, erasure that resumes after a stop at any step,
//! the residual scan, and legal holds.

mod common;

use std::io::Read;

use common::{count, exec, TestDb, PASSWORD};
use vigil::auth::{self, Actor};
use vigil::crypto::KeyBits;
use vigil::keys::{self, KeyRing, WriteKeys};
use vigil::platform::{
    self, CommentBody, NewActivity, NewComment, NewEvent, NewPlatformUser, NewReaction,
};
use vigil::privacy::{
    self, holds, CommentPolicy, Flow, PrivacyError, RequestFilter, RequestKind, RequestStatus,
    RunOptions, RunOutcome, SubjectRef,
};
use vigil::store::Timestamp;

/// An administrator, and a compliance officer with a key pair and granted data keys.
struct Desk {
    admin: Actor,
    officer: Actor,
    /// A second officer: a code delivered by hand is entered by someone other than its filer.
    second: Actor,
    ring: KeyRing,
    /// The first administrator's keys (every purpose): they write the platform's own data here,
    /// as the platform would.
    platform: KeyRing,
    _keys: tempfile::TempDir,
}

async fn desk(db: &TestDb) -> Desk {
    let (admin, admin_ring) = common::admin_keys(db).await;
    let officer = common::operator_with_role(db, "cora-officer", "compliance_officer").await;
    let second = common::operator_with_role(db, "dora-officer", "compliance_officer").await;
    let (ks, dir) = common::keystore();
    keys::enrol(&db.store, &ks, &officer, PASSWORD, KeyBits::B2048)
        .await
        .unwrap();
    keys::grant(&db.store, &admin_ring, &admin, "cora-officer")
        .await
        .unwrap();
    let ring = keys::unlock(&db.store, &ks, &officer, PASSWORD)
        .await
        .unwrap();
    Desk {
        admin,
        officer,
        second,
        ring,
        platform: admin_ring,
        _keys: dir,
    }
}

/// A platform person with `n` comments on `event`, reactions and activity.
struct Person {
    id: uuid::Uuid,
    username: String,
    email: String,
    phone: String,
    display: String,
}

fn person(username: &str, display: &str, phone: &str) -> Person {
    Person {
        id: uuid::Uuid::new_v4(),
        username: username.into(),
        email: format!("{username}@mail.example"),
        phone: phone.into(),
        display: display.into(),
    }
}

async fn add_people(
    db: &TestDb,
    ring: &KeyRing,
    event: uuid::Uuid,
    people: &[&Person],
    comments_each: usize,
) {
    let keys = WriteKeys::current(&db.store, ring, &vigil::keys::PLATFORM_PURPOSES)
        .await
        .unwrap();
    let mut tx = db.store.begin().await.unwrap();
    let t0 = Timestamp::from_micros(Timestamp::now().micros() - 86_400_000_000);
    platform::insert_users(
        &mut tx,
        &keys,
        &people
            .iter()
            .map(|p| NewPlatformUser {
                id: p.id,
                username: p.username.clone(),
                display_name: p.display.clone(),
                country: "DE".into(),
                email: Some(p.email.clone()),
                phone: Some(p.phone.clone()),
                created_at: t0,
                last_login_at: Some(t0),
            })
            .collect::<Vec<_>>(),
    )
    .await
    .unwrap();
    let mut comments = Vec::new();
    let mut reactions = Vec::new();
    let mut activity = Vec::new();
    for (pi, p) in people.iter().enumerate() {
        for i in 0..comments_each {
            let id = uuid::Uuid::new_v4();
            comments.push(NewComment {
                id,
                event_id: event,
                author_id: p.id,
                body: CommentBody::Public(format!("comment {i} by person {pi}: what a goal")),
                created_at: Timestamp::from_micros(t0.micros() + i as i64),
            });
            activity.push(NewActivity {
                id: uuid::Uuid::new_v4(),
                user_id: Some(p.id),
                kind: "comment",
                outcome: "success",
                reason: None,
                occurred_at: Timestamp::from_micros(t0.micros() + i as i64),
                user_agent: "Firefox".into(),
                country: "DE".into(),
                ip: Some(format!("10.9.{pi}.{}", i % 250 + 1)),
                ref_id: Some(id),
                target: None,
            });
        }
    }
    platform::insert_comments(&mut tx, &keys, &comments)
        .await
        .unwrap();
    // Everyone reacts to everyone else's first comment.
    for (pi, p) in people.iter().enumerate() {
        for (ci, c) in comments.iter().enumerate() {
            if c.author_id != p.id && ci % comments_each == 0 {
                reactions.push(NewReaction {
                    id: uuid::Uuid::new_v4(),
                    comment_id: c.id,
                    user_id: p.id,
                    kind: if pi % 2 == 0 { "like" } else { "love" },
                    created_at: t0,
                });
            }
        }
    }
    platform::insert_reactions(&mut tx, &reactions)
        .await
        .unwrap();
    platform::insert_activity(&mut tx, &keys, &activity)
        .await
        .unwrap();
    tx.commit().await.unwrap();
}

async fn new_event(db: &TestDb) -> uuid::Uuid {
    let id = uuid::Uuid::new_v4();
    let mut tx = db.store.begin().await.unwrap();
    platform::insert_events(
        &mut tx,
        &[NewEvent {
            id,
            title: "Cup Final #1".into(),
            starts_at: Timestamp::from_micros(0),
            ends_at: Timestamp::from_micros(1),
        }],
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    id
}

fn keep_going(_: &privacy::RunProgress) -> Flow {
    Flow::Continue
}

/// Creates and verifies a request for `username`.
async fn verified(db: &TestDb, d: &Desk, kind: RequestKind, username: &str) -> privacy::RequestId {
    let c = privacy::create(
        &db.store,
        Some(&d.ring),
        &d.officer,
        kind,
        &SubjectRef::Username(username.into()),
        privacy::CodeDelivery::Manual,
    )
    .await
    .unwrap();
    privacy::verify_code(
        &db.store,
        &d.second,
        c.request.id,
        c.verification_code.as_deref().unwrap(),
    )
    .await
    .unwrap();
    c.request.id
}

async fn the_lifecycle_deadlines_and_verification(db: TestDb) {
    let d = desk(&db).await;
    let event = new_event(&db).await;
    let ada = person("ada.lovelace1", "Ada Lovelace", "+1-555-100-0001");
    add_people(&db, &d.platform, event, &[&ada], 3).await;

    // Found by email through the blind index, however it is typed; the email is not stored.
    let c = privacy::create(
        &db.store,
        Some(&d.ring),
        &d.officer,
        RequestKind::Access,
        &SubjectRef::Email("  ADA.LOVELACE1@Mail.Example ".into()),
        privacy::CodeDelivery::Manual,
    )
    .await
    .unwrap();
    let r = &c.request;
    assert_eq!(r.status, RequestStatus::Verifying);
    assert_eq!(r.subject_id, Some(ada.id));
    assert_eq!(r.subject_username.as_deref(), Some("ada.lovelace1"));
    let received = r.received_at.to_datetime();
    assert_eq!(
        r.due_at.to_datetime(),
        received.checked_add_months(chrono::Months::new(1)).unwrap()
    );
    assert_eq!(r.code_attempts_left, privacy::MAX_CODE_ATTEMPTS);
    assert!(c.verification_code.as_deref().unwrap().len() >= 10);
    let raw = db.raw().await;
    let leaked = count(
        &raw,
        "SELECT COUNT(*) FROM dsr_requests WHERE verification_code_hash LIKE '%@%' \
         OR subject_email_bidx IS NOT NULL",
    )
    .await;
    assert_eq!(
        leaked, 0,
        "neither the email nor its index is kept with the request"
    );
    let audit: String = sqlx::query_scalar(
        "SELECT details FROM audit_log WHERE action = 'dsr.received' AND target = $1",
    )
    .bind(r.id.to_string())
    .fetch_one(&raw)
    .await
    .unwrap();
    assert!(
        !audit.contains("mail.example")
            && !audit.contains(c.verification_code.as_deref().unwrap().as_str())
    );

    // Unknown subjects and bad input are refused and change nothing.
    for s in [
        SubjectRef::Username("nobody.here".into()),
        SubjectRef::Email("nobody@mail.example".into()),
    ] {
        assert!(matches!(
            privacy::create(
                &db.store,
                Some(&d.ring),
                &d.officer,
                RequestKind::Access,
                &s,
                privacy::CodeDelivery::Manual
            )
            .await,
            Err(PrivacyError::SubjectNotFound)
        ));
    }
    assert!(matches!(
        privacy::create(
            &db.store,
            Some(&d.ring),
            &d.officer,
            RequestKind::Access,
            &SubjectRef::Email("not-an-email".into()),
            privacy::CodeDelivery::Manual
        )
        .await,
        Err(PrivacyError::Invalid(_))
    ));
    // Moderators and administrators may not open requests; administrators may read them.
    let moderator = common::operator_with_role(&db, "mo-moderator", "moderator").await;
    for actor in [&moderator, &d.admin] {
        assert!(matches!(
            privacy::create(
                &db.store,
                Some(&d.ring),
                actor,
                RequestKind::Erasure,
                &SubjectRef::Username("ada.lovelace1".into()),
                privacy::CodeDelivery::Manual
            )
            .await,
            Err(PrivacyError::Forbidden(_))
        ));
    }
    assert!(matches!(
        privacy::list(&db.store, &moderator, &RequestFilter::default()).await,
        Err(PrivacyError::Forbidden(_))
    ));
    assert_eq!(
        privacy::list(&db.store, &d.admin, &RequestFilter::default())
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(count(&raw, "SELECT COUNT(*) FROM dsr_requests").await, 1);

    // Unverified: the core refuses to run it.
    let out = tempfile::tempdir().unwrap();
    let opts = RunOptions {
        out_dir: Some(out.path().into()),
        ..RunOptions::default()
    };
    assert!(matches!(
        privacy::run(&db.store, &d.ring, &d.officer, r.id, &opts, &mut keep_going).await,
        Err(PrivacyError::NotVerified)
    ));
    assert_eq!(std::fs::read_dir(out.path()).unwrap().count(), 0);

    // Wrong codes use up attempts, then the verification locks; even the right code is refused.
    for left in (1..privacy::MAX_CODE_ATTEMPTS).rev() {
        match privacy::verify_code(&db.store, &d.second, r.id, "AAAAA-AAAAA").await {
            Err(PrivacyError::WrongCode { attempts_left }) => assert_eq!(attempts_left, left),
            other => panic!("expected a wrong code, got {other:?}"),
        }
    }
    assert!(matches!(
        privacy::verify_code(&db.store, &d.second, r.id, "AAAAA-AAAAA").await,
        Err(PrivacyError::VerificationLocked)
    ));
    assert!(matches!(
        privacy::verify_code(
            &db.store,
            &d.second,
            r.id,
            c.verification_code.as_deref().unwrap()
        )
        .await,
        Err(PrivacyError::VerificationLocked)
    ));
    let shown = privacy::show(&db.store, &d.officer, r.id).await.unwrap();
    assert!(shown.request.verification_locked);
    assert_eq!(
        shown
            .timeline
            .iter()
            .filter(|t| t.action == "dsr.verification_failed")
            .count() as i64,
        privacy::MAX_CODE_ATTEMPTS - 1
    );
    assert!(shown
        .timeline
        .iter()
        .any(|t| t.action == "dsr.verification_locked"));

    // A new code: the old one stays dead, the new one verifies, typed loosely.
    let code = privacy::reissue_code(&db.store, Some(&d.ring), &d.officer, r.id)
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(
        privacy::verify_code(
            &db.store,
            &d.second,
            r.id,
            c.verification_code.as_deref().unwrap()
        )
        .await,
        Err(PrivacyError::WrongCode { .. })
    ));
    let loose = code.to_lowercase().replace('-', " ");
    let v = privacy::verify_code(&db.store, &d.second, r.id, &loose)
        .await
        .unwrap();
    assert_eq!(v.status, RequestStatus::Verified);
    assert!(matches!(
        privacy::verify_code(&db.store, &d.second, r.id, &code).await,
        Err(PrivacyError::WrongState { .. })
    ));

    // An expired code is refused.
    let c2 = privacy::create(
        &db.store,
        Some(&d.ring),
        &d.officer,
        RequestKind::Portability,
        &SubjectRef::Username("ada.lovelace1".into()),
        privacy::CodeDelivery::Manual,
    )
    .await
    .unwrap();
    let later = Timestamp::from_micros(
        Timestamp::now().micros() + (privacy::CODE_VALID_SECONDS + 60) * 1_000_000,
    );
    assert!(matches!(
        privacy::verify_code_at(
            &db.store,
            &d.second,
            c2.request.id,
            c2.verification_code.as_deref().unwrap(),
            later
        )
        .await,
        Err(PrivacyError::CodeExpired)
    ));

    // Extension: once, by at most two months, with a reason.
    assert!(matches!(
        privacy::extend(&db.store, &d.officer, r.id, 3, "complex").await,
        Err(PrivacyError::Invalid(_))
    ));
    assert!(matches!(
        privacy::extend(&db.store, &d.officer, r.id, 2, "   ").await,
        Err(PrivacyError::Invalid(_))
    ));
    let e = privacy::extend(
        &db.store,
        &d.officer,
        r.id,
        2,
        "many records across systems",
    )
    .await
    .unwrap();
    assert_eq!(
        e.due_at.to_datetime(),
        r.due_at
            .to_datetime()
            .checked_add_months(chrono::Months::new(2))
            .unwrap()
    );
    assert_eq!(e.original_due_at, r.due_at);
    assert!(matches!(
        privacy::extend(&db.store, &d.officer, r.id, 1, "again").await,
        Err(PrivacyError::Invalid(_))
    ));

    // Overdue: a request received by post six weeks ago.
    let old = Timestamp::from_micros(Timestamp::now().micros() - 42 * 86_400 * 1_000_000);
    let late = privacy::create_at(
        &db.store,
        Some(&d.ring),
        &d.officer,
        RequestKind::Erasure,
        &SubjectRef::Username("ada.lovelace1".into()),
        privacy::CodeDelivery::Manual,
        old,
    )
    .await
    .unwrap();
    assert!(late.request.overdue);
    let overdue = privacy::list(
        &db.store,
        &d.officer,
        &RequestFilter {
            overdue: true,
            ..RequestFilter::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(
        overdue.iter().map(|r| r.id).collect::<Vec<_>>(),
        vec![late.request.id]
    );
    let all = privacy::list(&db.store, &d.officer, &RequestFilter::default())
        .await
        .unwrap();
    assert_eq!(all[0].id, late.request.id, "the most urgent comes first");

    // Reject and withdraw close a request; a closed one cannot be closed again or run.
    assert!(matches!(
        privacy::reject(&db.store, &d.officer, late.request.id, "").await,
        Err(PrivacyError::Invalid(_))
    ));
    let rej = privacy::reject(
        &db.store,
        &d.officer,
        late.request.id,
        "duplicate of an earlier request",
    )
    .await
    .unwrap();
    assert_eq!(rej.status, RequestStatus::Rejected);
    assert!(!rej.overdue, "a closed request is not overdue");
    assert!(matches!(
        privacy::withdraw(&db.store, &d.officer, late.request.id, "changed mind").await,
        Err(PrivacyError::WrongState { .. })
    ));
    assert!(matches!(
        privacy::run(
            &db.store,
            &d.ring,
            &d.officer,
            late.request.id,
            &opts,
            &mut keep_going
        )
        .await,
        Err(PrivacyError::WrongState { .. })
    ));
    let w = privacy::withdraw(
        &db.store,
        &d.officer,
        c2.request.id,
        "the subject withdrew by email",
    )
    .await
    .unwrap();
    assert_eq!(w.status, RequestStatus::Withdrawn);

    // Rectification: corrections applied, sealed again, found by the new email.
    let rect = verified(&db, &d, RequestKind::Rectification, "ada.lovelace1").await;
    let corrections = RunOptions {
        corrections: vec![
            privacy::Correction::DisplayName("Augusta Ada King".into()),
            privacy::Correction::Email("countess@mail.example".into()),
        ],
        ..RunOptions::default()
    };
    match privacy::run(
        &db.store,
        &d.ring,
        &d.officer,
        rect,
        &corrections,
        &mut keep_going,
    )
    .await
    .unwrap()
    {
        RunOutcome::Rectified { fields } => assert_eq!(fields, vec!["display_name", "email"]),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        platform::find_user_by_email(&db.store, &d.ring, "countess@mail.example")
            .await
            .unwrap(),
        Some(ada.id)
    );
    assert_eq!(
        platform::find_user_by_email(&db.store, &d.ring, &ada.email)
            .await
            .unwrap(),
        None
    );
    let shown = privacy::show(&db.store, &d.officer, rect).await.unwrap();
    assert_eq!(shown.request.status, RequestStatus::Completed);
    raw.close().await;
    assert!(matches!(
        vigil::audit::verify_chain(&db.store).await.unwrap(),
        vigil::audit::Verification::Ok { .. }
    ));
}
on_both!(the_lifecycle_deadlines_and_verification);

async fn a_token_verifies_only_its_own_subject(db: TestDb) {
    let d = desk(&db).await;
    // Operators are subjects too (of access requests): one shows the token the platform issued
    // them. The platform signs with its own key; Vigil holds only the public half.
    let subject = common::operator_with_role(&db, "sam-subject", "moderator").await;
    let other = common::operator_with_role(&db, "oli-other", "moderator").await;
    let platform = common::PlatformIssuer::new();
    let keys = platform.keys();
    let token_of = |a: Actor| {
        let (db, platform) = (&db, &platform);
        async move {
            platform
                .token(db, &a.user_id().to_string(), &["moderator"])
                .await
        }
    };
    let mine = token_of(subject.clone()).await;
    let theirs = token_of(other).await;
    let c = privacy::create(
        &db.store,
        Some(&d.ring),
        &d.officer,
        RequestKind::Access,
        &SubjectRef::Username("sam-subject".into()),
        privacy::CodeDelivery::Manual,
    )
    .await
    .unwrap();
    let id = c.request.id;
    assert!(matches!(
        privacy::verify_token(&db.store, &keys, &d.officer, id, &theirs).await,
        Err(PrivacyError::TokenRefused(_))
    ));
    assert!(matches!(
        privacy::verify_token(&db.store, &keys, &d.officer, id, "not.a.token").await,
        Err(PrivacyError::TokenRefused(_))
    ));
    // The subject's own Vigil console token is no platform token: Vigil's keys prove nothing
    // about a platform account.
    let (sam_keystore, _dir) = common::keystore();
    let sam = common::sign_in_with(&db, &sam_keystore, "sam-subject", common::PASSWORD).await;
    let console = auth::tokens::issue(&db.store, sam.keys.as_ref().unwrap(), &sam, "test")
        .await
        .unwrap()
        .access_token;
    assert!(matches!(
        privacy::verify_token(&db.store, &keys, &d.officer, id, &console).await,
        Err(PrivacyError::TokenRefused(_))
    ));
    // A revoked token no longer proves anything.
    let claims = auth::platform_tokens::verify(&db.store, &keys, &mine)
        .await
        .unwrap();
    auth::tokens::logout(&db.store, &claims).await.unwrap();
    assert!(matches!(
        privacy::verify_token(&db.store, &keys, &d.officer, id, &mine).await,
        Err(PrivacyError::TokenRefused(_))
    ));
    let fresh = token_of(subject).await;
    let r = privacy::verify_token(&db.store, &keys, &d.officer, id, &fresh)
        .await
        .unwrap();
    assert_eq!(r.status, RequestStatus::Verified);
    assert_eq!(
        r.verification_method,
        Some(privacy::VerificationMethod::Token)
    );
}
on_both!(a_token_verifies_only_its_own_subject);

fn read_zip(path: &std::path::Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    let mut z = zip::ZipArchive::new(std::fs::File::open(path).unwrap()).unwrap();
    let mut out = std::collections::BTreeMap::new();
    for i in 0..z.len() {
        let mut f = z.by_index(i).unwrap();
        let mut b = Vec::new();
        f.read_to_end(&mut b).unwrap();
        out.insert(f.name().to_owned(), b);
    }
    out
}

async fn exports_hold_the_subject_and_nobody_else(db: TestDb) {
    let d = desk(&db).await;
    let event = new_event(&db).await;
    let ada = person("ada.lovelace1", "Ada Lovelace", "+1-555-100-0001");
    let bob = person("bob.babbage2", "Bob Babbage", "+1-555-200-0002");
    add_people(&db, &d.platform, event, &[&ada, &bob], 5).await;
    let out = tempfile::tempdir().unwrap();
    let opts = RunOptions {
        out_dir: Some(out.path().into()),
        ..RunOptions::default()
    };

    let access = verified(&db, &d, RequestKind::Access, "ada.lovelace1").await;
    let mut seen = Vec::new();
    let files = match privacy::run(&db.store, &d.ring, &d.officer, access, &opts, &mut |p| {
        seen.push((p.name.clone(), p.state));
        Flow::Continue
    })
    .await
    .unwrap()
    {
        RunOutcome::Exported { files } => files,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        seen.len(),
        6,
        "three steps, each started and done: {seen:?}"
    );
    assert_eq!(files.len(), 2);
    let json_path = files.iter().find(|f| f.kind == "access_json").unwrap();
    let json = std::fs::read(&json_path.path).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&json_path.path)
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let doc: serde_json::Value = serde_json::from_slice(&json).unwrap();
    assert_eq!(doc["profile"]["email"], ada.email.as_str());
    assert_eq!(doc["profile"]["phone"], ada.phone.as_str());
    assert_eq!(doc["comments"].as_array().unwrap().len(), 5);
    assert_eq!(doc["reactions"].as_array().unwrap().len(), 1);
    let activity = doc["activity"].as_array().unwrap();
    assert_eq!(activity.len(), 5);
    for a in activity {
        let ip = a["ip_anonymised"].as_str().unwrap();
        assert!(ip.starts_with("10.9.0.") && ip.ends_with(".0"), "{ip}");
    }
    assert_eq!(doc["mfa"]["enabled"], false);
    let html =
        std::fs::read_to_string(&files.iter().find(|f| f.kind == "access_html").unwrap().path)
            .unwrap();
    assert!(html.contains("Ada Lovelace") && html.contains(&ada.email));
    // Nothing of Bob, who commented on the same event and reacted to Ada.
    for blob in [&json[..], html.as_bytes()] {
        let text = String::from_utf8_lossy(blob);
        for theirs in [
            &bob.username,
            &bob.email,
            &bob.phone,
            &bob.display,
            "person 1:",
            "bob",
        ] {
            assert!(
                !text.to_lowercase().contains(&theirs.to_lowercase()),
                "{theirs} leaked"
            );
        }
        assert!(!text.contains(&bob.id.to_string()));
        // Real IPs never appear, only their anonymised form.
        assert!(!text.contains("10.9.0.1\""));
    }
    // The digests are recorded and audited; the content is not.
    let shown = privacy::show(&db.store, &d.officer, access).await.unwrap();
    assert_eq!(shown.request.status, RequestStatus::Completed);
    assert_eq!(shown.artifacts.len(), 2);
    let sha = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&json));
    assert!(shown.artifacts.iter().any(|a| a.sha256 == sha));
    let exported = shown
        .timeline
        .iter()
        .find(|t| t.action == "dsr.exported")
        .unwrap();
    assert!(exported.details.to_string().contains(&sha));
    assert!(!exported.details.to_string().contains(&ada.email));

    // Portability: a zip whose manifest lists every file with its digest.
    let port = verified(&db, &d, RequestKind::Portability, "ada.lovelace1").await;
    let files = match privacy::run(&db.store, &d.ring, &d.officer, port, &opts, &mut keep_going)
        .await
        .unwrap()
    {
        RunOutcome::Exported { files } => files,
        other => panic!("{other:?}"),
    };
    let zip = read_zip(std::path::Path::new(&files[0].path));
    let manifest: serde_json::Value = serde_json::from_slice(&zip["manifest.json"]).unwrap();
    assert_eq!(manifest["request_id"], port.to_string());
    let listed = manifest["files"].as_array().unwrap();
    assert_eq!(listed.len(), zip.len() - 1);
    for f in listed {
        let name = f["name"].as_str().unwrap();
        let bytes = &zip[name];
        assert_eq!(
            f["sha256"].as_str().unwrap(),
            hex::encode(<sha2::Sha256 as sha2::Digest>::digest(bytes)),
            "{name}"
        );
    }
    let csv = String::from_utf8(zip["comments.csv"].clone()).unwrap();
    assert_eq!(csv.lines().count(), 6, "a header and five comments");
    for bytes in zip.values() {
        assert!(!String::from_utf8_lossy(bytes).contains(&bob.username));
    }
    // Running again into the same folder would overwrite: refused, nothing written.
    let again = verified(&db, &d, RequestKind::Portability, "ada.lovelace1").await;
    let before = std::fs::read_dir(out.path()).unwrap().count();
    let r = privacy::run(
        &db.store,
        &d.ring,
        &d.officer,
        again,
        &opts,
        &mut keep_going,
    )
    .await;
    assert!(r.is_ok(), "a new request gets its own file name: {r:?}");
    assert_eq!(std::fs::read_dir(out.path()).unwrap().count(), before + 1);
}
on_both!(exports_hold_the_subject_and_nobody_else);

/// Rows that describe the end state of an erasure, independent of random ids.
async fn end_state(db: &TestDb, p: &Person) -> Vec<i64> {
    let raw = db.raw().await;
    let id = p.id.to_string();
    let mut v = Vec::new();
    for sql in [
        "SELECT COUNT(*) FROM users WHERE id = $1",
        "SELECT COUNT(*) FROM comments WHERE author_id = $1",
        "SELECT COUNT(*) FROM reactions WHERE user_id = $1",
        "SELECT COUNT(*) FROM activity_log WHERE user_id = $1",
        "SELECT COUNT(*) FROM sessions WHERE user_id = $1",
        "SELECT COUNT(*) FROM credentials WHERE user_id = $1",
        "SELECT COUNT(*) FROM user_roles WHERE user_id = $1",
        "SELECT COUNT(*) FROM comment_recipients WHERE recipient_id = $1",
    ] {
        v.push(
            sqlx::query_scalar::<_, i64>(sql)
                .bind(&id)
                .fetch_one(&raw)
                .await
                .unwrap(),
        );
    }
    for sql in [
        "SELECT COUNT(*) FROM users WHERE status = 'deleted'",
        "SELECT COUNT(*) FROM comments c JOIN users u ON u.id = c.author_id \
         WHERE u.status = 'deleted'",
        "SELECT COUNT(*) FROM dsr_requests WHERE subject_sealed IS NOT NULL",
    ] {
        v.push(count(&raw, sql).await);
    }
    raw.close().await;
    v
}

async fn erasure_resumes_after_a_stop_at_every_step(db: TestDb) {
    let d = desk(&db).await;
    let event = new_event(&db).await;
    let steps = 8; // the steps before the residual scan
    let people: Vec<Person> = (0..=steps * 2)
        .map(|i| {
            person(
                &format!("zed.quill{i}x"),
                &format!("Zed Quill{i}"),
                &format!("+1-555-300-{i:04}"),
            )
        })
        .collect();
    add_people(
        &db,
        &d.platform,
        event,
        &people.iter().collect::<Vec<_>>(),
        4,
    )
    .await;
    // Sessions with refresh tokens, as the platform would have them.
    let raw = db.raw().await;
    for p in &people {
        let sid = uuid::Uuid::new_v4().to_string();
        sqlx::query(
            "INSERT INTO sessions (id, user_id, client, created_at, last_seen_at, expires_at) \
             VALUES ($1, $2, 'web', 0, 0, 9999999999999999)",
        )
        .bind(&sid)
        .bind(p.id.to_string())
        .execute(&raw)
        .await
        .unwrap();
        sqlx::query(
            "INSERT INTO refresh_tokens (id, session_id, family_id, token_hash, issued_at, \
             expires_at) VALUES ($1, $2, $1, $3, 0, 9999999999999999)",
        )
        .bind(uuid::Uuid::new_v4().to_string())
        .bind(&sid)
        .bind(uuid::Uuid::new_v4().as_bytes().to_vec())
        .execute(&raw)
        .await
        .unwrap();
    }
    raw.close().await;

    // The reference: person 0, erased without interruption.
    let reference = verified(&db, &d, RequestKind::Erasure, &people[0].username).await;
    let receipt = match privacy::run(
        &db.store,
        &d.ring,
        &d.officer,
        reference,
        &RunOptions::default(),
        &mut keep_going,
    )
    .await
    .unwrap()
    {
        RunOutcome::Erased { receipt } => receipt,
        other => panic!("{other:?}"),
    };
    assert!(receipt.scan.is_clean());
    let rows: Vec<(String, i64)> = receipt
        .steps
        .iter()
        .map(|s| (s.name.clone(), s.rows))
        .collect();
    assert_eq!(rows[0], ("revoke_sessions".into(), 2), "{rows:?}");
    assert_eq!(
        rows[2].1,
        (people.len() - 1) as i64,
        "one reaction to each other's comment"
    );
    assert_eq!(rows[3], ("delete_activity".into(), 4));
    assert_eq!(rows[4], ("comments".into(), 4));
    assert_eq!(rows[7], ("delete_profile".into(), 1));
    let expected = end_state(&db, &people[0]).await;
    assert_eq!(&expected[..8], &[0; 8], "nothing of the subject is left");

    // Every other person: stopped once, at each step, before or after its commit; then resumed.
    let mut stop_points = Vec::new();
    for step in 1..=steps as i64 {
        stop_points.push((step, "finishing"));
        stop_points.push((step, "done"));
    }
    for (i, (stop_step, stop_state)) in stop_points.iter().enumerate() {
        let p = &people[i + 1];
        let id = verified(&db, &d, RequestKind::Erasure, &p.username).await;
        let r = privacy::run(
            &db.store,
            &d.ring,
            &d.officer,
            id,
            &RunOptions::default(),
            &mut |pr| {
                if pr.step == *stop_step && pr.state == *stop_state {
                    Flow::Stop
                } else {
                    Flow::Continue
                }
            },
        )
        .await;
        assert!(
            matches!(r, Err(PrivacyError::Stopped { step }) if step == *stop_step),
            "{r:?}"
        );
        let shown = privacy::show(&db.store, &d.officer, id).await.unwrap();
        assert_eq!(shown.request.status, RequestStatus::InProgress);
        let done = shown.steps.iter().filter(|s| s.status == "done").count() as i64;
        let want = if *stop_state == "done" {
            *stop_step
        } else {
            stop_step - 1
        };
        assert_eq!(done, want, "stop at {stop_step}/{stop_state}");
        // Withdrawing half-way is refused: an erasure that began must finish.
        assert!(matches!(
            privacy::withdraw(&db.store, &d.officer, id, "no").await,
            Err(PrivacyError::WrongState { .. })
        ));
        match privacy::run(
            &db.store,
            &d.ring,
            &d.officer,
            id,
            &RunOptions::default(),
            &mut keep_going,
        )
        .await
        .unwrap()
        {
            RunOutcome::Erased { receipt: r } => {
                let got: Vec<(String, i64)> =
                    r.steps.iter().map(|s| (s.name.clone(), s.rows)).collect();
                assert_eq!(got, rows, "same counts as the uninterrupted run");
            }
            other => panic!("{other:?}"),
        }
        let state = end_state(&db, p).await;
        assert_eq!(
            &state[..8],
            &expected[..8],
            "stop at {stop_step}/{stop_state}"
        );
    }
    let state = end_state(&db, &people[0]).await;
    assert_eq!(
        state[8],
        people.len() as i64,
        "one pseudonym per erased person"
    );
    assert_eq!(
        state[9],
        (people.len() * 4) as i64,
        "their comments kept, anonymised"
    );
    assert_eq!(state[10], 0, "no working copy of identifiers left");
    assert!(matches!(
        vigil::audit::verify_chain(&db.store).await.unwrap(),
        vigil::audit::Verification::Ok { .. }
    ));
}
on_both!(erasure_resumes_after_a_stop_at_every_step);

async fn erasure_leaves_no_trace_and_proves_it(db: TestDb) {
    let d = desk(&db).await;
    let event = new_event(&db).await;
    let eve = person("eve.erasable7", "Evangeline Erasable", "+1-555-700-0007");
    let fay = person("fay.friend8", "Fay Friend", "+1-555-800-0008");
    add_people(&db, &d.platform, event, &[&eve, &fay], 6).await;
    // Fay wrote Eve a private comment; only Eve could read it.
    let fay_key = vigil::crypto::PrivateKey::generate(KeyBits::B2048).unwrap();
    let eve_key = vigil::crypto::PrivateKey::generate(KeyBits::B2048).unwrap();
    let pid = uuid::Uuid::new_v4();
    let keys = WriteKeys::current(&db.store, &d.platform, &vigil::keys::PLATFORM_PURPOSES)
        .await
        .unwrap();
    let mut tx = db.store.begin().await.unwrap();
    platform::insert_comments(
        &mut tx,
        &keys,
        &[NewComment {
            id: pid,
            event_id: event,
            author_id: fay.id,
            body: CommentBody::private(
                pid,
                &[(eve.id, eve_key.public_key())],
                "for your eyes only",
            )
            .unwrap(),
            created_at: Timestamp::now(),
        }],
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let _ = fay_key;

    let id = verified(&db, &d, RequestKind::Erasure, "eve.erasable7").await;
    let receipt = match privacy::run(
        &db.store,
        &d.ring,
        &d.officer,
        id,
        &RunOptions {
            comments: CommentPolicy::Delete,
            ..RunOptions::default()
        },
        &mut keep_going,
    )
    .await
    .unwrap()
    {
        RunOutcome::Erased { receipt } => receipt,
        other => panic!("{other:?}"),
    };
    assert_eq!(receipt.comments, CommentPolicy::Delete);
    assert!(receipt.scan.is_clean());
    assert!(receipt.scan.values_opened > 0);
    assert!(receipt.scan.columns > 20);
    let raw = db.raw().await;
    // Her comments are empty placeholders; Fay's private comment to her lost its envelope.
    assert_eq!(
        count(&raw, "SELECT COUNT(*) FROM comments WHERE deletion_reason = 'erasure' AND body IS NULL AND author_id IS NULL").await,
        6
    );
    assert_eq!(
        count(
            &raw,
            &format!("SELECT COUNT(*) FROM comments WHERE id = '{pid}' AND body_envelope IS NULL")
        )
        .await,
        1
    );
    // Fay is untouched.
    assert_eq!(
        end_state(&db, &fay).await[..4],
        [1, 7, 1, 6],
        "her own and her private one"
    );
    // The receipt is in the audit chain, and the chain verifies.
    let shown = privacy::show(&db.store, &d.officer, id).await.unwrap();
    assert_eq!(shown.receipt.as_ref(), Some(&receipt));
    assert_eq!(shown.request.subject_username, None);
    let receipt_text: String = sqlx::query_scalar(
        "SELECT details FROM audit_log WHERE action = 'dsr.erasure_receipt' AND target = $1",
    )
    .bind(id.to_string())
    .fetch_one(&raw)
    .await
    .unwrap();
    for secret in [&eve.username, &eve.email, &eve.phone, &eve.display] {
        assert!(!receipt_text.contains(secret.as_str()));
    }

    // Nowhere in the bytes: the SQLite file and its log, or a full Postgres dump.
    match db.store.url().sqlite_path() {
        Some(path) => {
            db.store.checkpoint().await.unwrap();
            let mut bytes = std::fs::read(path).unwrap();
            if let Ok(wal) = std::fs::read(format!("{}-wal", path.display())) {
                bytes.extend(wal);
            }
            let lower = bytes.to_ascii_lowercase();
            for secret in [&eve.username, &eve.email] {
                assert!(
                    memchr::memmem::find(&lower, secret.as_bytes()).is_none(),
                    "{secret} in the file"
                );
            }
            assert!(
                memchr::memmem::find(&lower, fay.username.as_bytes()).is_some(),
                "the scan would see plaintext"
            );
        }
        None => {
            let dump = std::process::Command::new("/usr/lib/postgresql/15/bin/pg_dump")
                .arg(&db.raw_url)
                .output()
                .expect("pg_dump");
            assert!(
                dump.status.success(),
                "{}",
                String::from_utf8_lossy(&dump.stderr)
            );
            let text = String::from_utf8_lossy(&dump.stdout).to_lowercase();
            assert!(text.contains(&fay.username));
            for secret in [&eve.username, &eve.email] {
                assert!(!text.contains(secret.as_str()), "{secret} in the dump");
            }
        }
    }
    raw.close().await;
}
on_both!(erasure_leaves_no_trace_and_proves_it);

async fn a_planted_leftover_fails_the_scan(db: TestDb) {
    let d = desk(&db).await;
    let event = new_event(&db).await;
    let gus = person("gus.gone9", "Gus Gone", "+1-555-900-0009");
    add_people(&db, &d.platform, event, &[&gus], 2).await;
    // Someone copied Gus's email into an unrelated text column.
    let raw = db.raw().await;
    exec(
        &raw,
        &format!(
            "UPDATE events SET title = 'Final, ask {} for tickets' WHERE id = '{event}'",
            gus.email.to_uppercase()
        ),
    )
    .await;
    let id = verified(&db, &d, RequestKind::Erasure, "gus.gone9").await;
    let report = match privacy::run(
        &db.store,
        &d.ring,
        &d.officer,
        id,
        &RunOptions::default(),
        &mut keep_going,
    )
    .await
    .unwrap()
    {
        RunOutcome::ResidualFound { report } => report,
        other => panic!("{other:?}"),
    };
    // The email is found (and the username within it), in that column and, on SQLite, in the
    // file's bytes; nowhere else.
    assert!(
        report
            .hits
            .iter()
            .any(|h| h.place == "events.title" && h.identifier == "email"),
        "{report:?}"
    );
    for h in &report.hits {
        assert!(
            h.place == "events.title" || h.place == "file:vigil.db",
            "{report:?}"
        );
        assert!(h.identifier == "email" || h.identifier == "username");
    }
    let shown = privacy::show(&db.store, &d.officer, id).await.unwrap();
    assert_eq!(
        shown.request.status,
        RequestStatus::InProgress,
        "not completed"
    );
    let scan_step = shown.steps.last().unwrap();
    assert_eq!(scan_step.status, "failed");
    assert!(!scan_step.error.as_deref().unwrap().contains(&gus.email));
    assert!(shown
        .timeline
        .iter()
        .any(|t| t.action == "dsr.residual_found"));
    assert!(shown.receipt.is_none());

    // Fix the leftover; the request resumes at the scan and completes.
    exec(
        &raw,
        &format!("UPDATE events SET title = 'Final' WHERE id = '{event}'"),
    )
    .await;
    raw.close().await;
    assert!(matches!(
        privacy::run(
            &db.store,
            &d.ring,
            &d.officer,
            id,
            &RunOptions::default(),
            &mut keep_going
        )
        .await
        .unwrap(),
        RunOutcome::Erased { .. }
    ));
}
on_both!(a_planted_leftover_fails_the_scan);

async fn legal_holds_and_open_incidents_block_erasure(db: TestDb) {
    let d = desk(&db).await;
    let event = new_event(&db).await;
    let hal = person("hal.held3", "Hal Held", "+1-555-330-0003");
    add_people(&db, &d.platform, event, &[&hal], 2).await;
    let moderator = common::operator_with_role(&db, "mo-moderator", "moderator").await;
    assert!(matches!(
        holds::place(
            &db.store,
            &moderator,
            &holds::HoldTarget::User("hal.held3".into()),
            "x"
        )
        .await,
        Err(PrivacyError::Forbidden(_))
    ));
    let hold = holds::place(
        &db.store,
        &d.officer,
        &holds::HoldTarget::User("hal.held3".into()),
        "litigation 2026-17",
    )
    .await
    .unwrap();
    let id = verified(&db, &d, RequestKind::Erasure, "hal.held3").await;
    match privacy::run(
        &db.store,
        &d.ring,
        &d.officer,
        id,
        &RunOptions::default(),
        &mut keep_going,
    )
    .await
    {
        Err(PrivacyError::Held { reasons }) => {
            assert_eq!(reasons.len(), 1);
            assert!(reasons[0].contains("litigation 2026-17"), "{reasons:?}");
        }
        other => panic!("{other:?}"),
    }
    let untouched = end_state(&db, &hal).await;
    assert_eq!(&untouched[..4], &[1, 2, 0, 2], "nothing erased");
    let shown = privacy::show(&db.store, &d.officer, id).await.unwrap();
    assert_eq!(shown.request.status, RequestStatus::Verified);
    assert!(shown.steps.is_empty());
    assert!(shown
        .timeline
        .iter()
        .any(|t| t.action == "dsr.erasure_blocked"));

    // Released, but an open incident about him also holds it.
    holds::release(&db.store, &d.officer, hold.id)
        .await
        .unwrap();
    assert!(holds::release(&db.store, &d.officer, hold.id)
        .await
        .is_err());
    let raw = db.raw().await;
    let incident = uuid::Uuid::new_v4();
    exec(
        &raw,
        &format!(
            "INSERT INTO incidents (id, kind, severity, status, user_id, dedup_key, summary, \
             created_at, updated_at) VALUES ('{incident}', 'burst_posting', 'high', 'open', \
             '{}', 'k', 'burst', 0, 0)",
            hal.id
        ),
    )
    .await;
    match privacy::run(
        &db.store,
        &d.ring,
        &d.officer,
        id,
        &RunOptions::default(),
        &mut keep_going,
    )
    .await
    {
        Err(PrivacyError::Held { reasons }) => assert!(reasons[0].contains(&incident.to_string())),
        other => panic!("{other:?}"),
    }
    // Resolved: the erasure runs, and the incident keeps its facts without the account.
    exec(
        &raw,
        &format!("UPDATE incidents SET status = 'resolved' WHERE id = '{incident}'"),
    )
    .await;
    assert!(matches!(
        privacy::run(
            &db.store,
            &d.ring,
            &d.officer,
            id,
            &RunOptions::default(),
            &mut keep_going
        )
        .await
        .unwrap(),
        RunOutcome::Erased { .. }
    ));
    assert_eq!(
        count(
            &raw,
            &format!("SELECT COUNT(*) FROM incidents WHERE id = '{incident}' AND user_id IS NULL")
        )
        .await,
        1
    );
    raw.close().await;
    let listed = holds::list(&db.store, &d.officer, true).await.unwrap();
    assert!(
        listed.is_empty(),
        "a released hold on an erased user goes with the account"
    );
}
on_both!(legal_holds_and_open_incidents_block_erasure);
