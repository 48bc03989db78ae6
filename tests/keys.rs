//! The key hierarchy over a real database and real file keystores: operators on separate
//! machines, grants, revocation, rotation that survives being cut off, and ciphertexts that
//! refuse to open anywhere but their own place.

mod common;

use common::{admin_keys, count, TestDb, PASSWORD};
use vigil::crypto::{EnvelopeError, FieldError, KeyBits, KeyVersion, PrivateKey};
use vigil::demo::{self, SeedOptions};
use vigil::keys::{self, rotation, KeyError, Purpose, WriteKeys};
use vigil::platform::{self, CommentBody, NewComment, NewEvent, NewPlatformUser};
use vigil::store::Timestamp;

fn person(i: u32) -> NewPlatformUser {
    NewPlatformUser {
        id: uuid::Uuid::now_v7(),
        username: format!("person{i}"),
        display_name: format!("Person {i}"),
        country: "GB".into(),
        email: Some(format!("person{i}@example.org")),
        phone: Some(format!("+44 20 7946 {i:04}")),
        created_at: Timestamp::now(),
        last_login_at: None,
    }
}

/// Writes one platform user with the given keys; returns their id.
async fn write_person(db: &TestDb, keys: &WriteKeys, i: u32) -> uuid::Uuid {
    let p = person(i);
    let id = p.id;
    let mut tx = db.store.begin().await.unwrap();
    platform::insert_users(&mut tx, keys, &[p]).await.unwrap();
    tx.commit().await.unwrap();
    id
}

fn not_granted(r: Result<Option<String>, KeyError>) -> bool {
    matches!(r, Err(KeyError::NotGranted(Purpose::Contact, _)))
}

async fn a_second_operator_works_from_their_own_keystore_once_granted(db: TestDb) {
    let (admin, admin_ring) = admin_keys(&db).await;
    let keys = WriteKeys::current(&db.store, &admin_ring, &vigil::keys::PLATFORM_PURPOSES)
        .await
        .unwrap();
    let ada = write_person(&db, &keys, 1).await;

    // Bob works on another machine: his own keystore, nothing shared but the database.
    let bob = common::operator_with_role(&db, "bob-officer", "compliance_officer").await;
    let (bob_keystore, _dir) = common::keystore();
    assert!(matches!(
        keys::unlock(&db.store, &bob_keystore, &bob, PASSWORD).await,
        Err(KeyError::NoKeyPairHere)
    ));
    // The administrator's keystore holds nothing for Bob either.
    assert!(matches!(
        keys::unlock(&db.store, &db.keystore, &bob, PASSWORD).await,
        Err(KeyError::NoKeyPairHere)
    ));
    let public = keys::enrol(&db.store, &bob_keystore, &bob, PASSWORD, KeyBits::B2048)
        .await
        .unwrap();
    assert_eq!(public.bits(), 2048);
    // Enrolled but not granted: he holds no data key.
    let ring = keys::unlock(&db.store, &bob_keystore, &bob, PASSWORD)
        .await
        .unwrap();
    assert!(not_granted(
        platform::user_email(&db.store, &ring, ada).await
    ));
    // The keystore item alone opens nothing.
    assert!(matches!(
        keys::unlock(&db.store, &bob_keystore, &bob, "not bob's password at all").await,
        Err(KeyError::Unseal)
    ));
    // Granting needs keys.manage.
    assert!(matches!(
        keys::grant(&db.store, &ring, &bob, "bob-officer").await,
        Err(KeyError::Forbidden(_))
    ));

    let report = keys::grant(&db.store, &admin_ring, &admin, "bob-officer")
        .await
        .unwrap();
    assert_eq!(report.grants, 3, "one per purpose of the officer's role");
    assert_eq!(
        report.granted,
        vigil::rbac::purposes_of(&[vigil::rbac::Role::ComplianceOfficer])
    );
    assert!(
        report.pending.is_empty(),
        "the first administrator holds every purpose"
    );
    assert_eq!(
        keys::grant(&db.store, &admin_ring, &admin, "bob-officer")
            .await
            .unwrap()
            .grants,
        0,
        "granting twice adds nothing"
    );
    let ring = keys::unlock(&db.store, &bob_keystore, &bob, PASSWORD)
        .await
        .unwrap();
    assert_eq!(
        platform::user_email(&db.store, &ring, ada).await.unwrap(),
        Some("person1@example.org".into())
    );
    // The private key never reaches the database.
    let raw = db.raw().await;
    let der = ring.private_key().to_pkcs8_der();
    for (table, col) in [
        ("user_keys", "public_key_der"),
        ("key_grants", "wrapped_key"),
    ] {
        let blobs: Vec<Vec<u8>> = sqlx::query_scalar(&format!("SELECT {col} FROM {table}"))
            .fetch_all(&raw)
            .await
            .unwrap();
        assert!(blobs.iter().all(|b| b.as_slice() != der.as_slice()));
    }
    raw.close().await;
}
on_both!(a_second_operator_works_from_their_own_keystore_once_granted);

async fn a_revoked_operator_opens_nothing_written_after_revocation(db: TestDb) {
    let (admin, admin_ring) = admin_keys(&db).await;
    let bob = common::operator_with_role(&db, "bob-officer", "compliance_officer").await;
    let (bob_keystore, _dir) = common::keystore();
    keys::enrol(&db.store, &bob_keystore, &bob, PASSWORD, KeyBits::B2048)
        .await
        .unwrap();
    keys::grant(&db.store, &admin_ring, &admin, "bob-officer")
        .await
        .unwrap();
    let keys = WriteKeys::current(&db.store, &admin_ring, &vigil::keys::PLATFORM_PURPOSES)
        .await
        .unwrap();
    let before = write_person(&db, &keys, 1).await;
    let bob_session = keys::unlock(&db.store, &bob_keystore, &bob, PASSWORD)
        .await
        .unwrap();
    assert!(platform::user_email(&db.store, &bob_session, before)
        .await
        .unwrap()
        .is_some());

    assert!(matches!(
        keys::revoke(&db.store, &admin_ring, &admin, "root-admin").await,
        Err(KeyError::RevokeSelf)
    ));
    let rotations = keys::revoke(&db.store, &admin_ring, &admin, "bob-officer")
        .await
        .unwrap();
    assert_eq!(rotations.len(), 3, "every purpose Bob held");
    for r in &rotations {
        rotation::run(&db.store, &admin_ring, &admin, r, 100, &mut |_| {})
            .await
            .unwrap();
    }
    let keys = WriteKeys::current(&db.store, &admin_ring, &vigil::keys::PLATFORM_PURPOSES)
        .await
        .unwrap();
    assert_eq!(keys.contact_version(), KeyVersion(2));
    let after = write_person(&db, &keys, 2).await;

    // Bob's session still holds version 1 in memory, and it opens nothing new: the row written
    // after the revocation and the re-encrypted old row are both version 2.
    assert!(not_granted(
        platform::user_email(&db.store, &bob_session, after).await
    ));
    assert!(not_granted(
        platform::user_email(&db.store, &bob_session, before).await
    ));
    // A fresh unlock from his keystore holds no grant at all.
    let fresh = keys::unlock(&db.store, &bob_keystore, &bob, PASSWORD)
        .await
        .unwrap();
    assert!(not_granted(
        platform::user_email(&db.store, &fresh, after).await
    ));
    // The administrator reads both.
    for (id, email) in [
        (before, "person1@example.org"),
        (after, "person2@example.org"),
    ] {
        assert_eq!(
            platform::user_email(&db.store, &admin_ring, id)
                .await
                .unwrap()
                .as_deref(),
            Some(email)
        );
    }
    let raw = db.raw().await;
    assert_eq!(
        count(
            &raw,
            "SELECT COUNT(*) FROM data_keys WHERE status = 'retired'"
        )
        .await,
        3,
        "the three purposes Bob held were rotated"
    );
    assert_eq!(
        count(
            &raw,
            "SELECT COUNT(*) FROM key_grants g JOIN user_keys k ON k.id = g.user_key_id \
             JOIN users u ON u.id = k.user_id WHERE u.username = 'bob-officer'"
        )
        .await,
        0
    );
    for action in [
        "keys.granted",
        "keys.revoked",
        "keys.rotation_started",
        "keys.rotation_completed",
    ] {
        assert!(
            count(
                &raw,
                &format!("SELECT COUNT(*) FROM audit_log WHERE action = '{action}'")
            )
            .await
                > 0,
            "{action} is audited"
        );
    }
    raw.close().await;
}
on_both!(a_revoked_operator_opens_nothing_written_after_revocation);

async fn rotation_stopped_mid_chunk_resumes_and_every_row_opens(db: TestDb) {
    let (admin, ring) = admin_keys(&db).await;
    let opts = SeedOptions {
        users: 300,
        comments: 300,
        days: 7,
        seed: 3,
        scenarios: false,
    };
    demo::seed(&db.store, &admin, &ring, opts, &mut |_| {})
        .await
        .unwrap();
    let raw = db.raw().await;
    let users = count(&raw, "SELECT COUNT(*) FROM users").await;
    let activity = count(&raw, "SELECT COUNT(*) FROM activity_log").await;
    let sealed_rows = count(
        &raw,
        "SELECT (SELECT COUNT(*) FROM activity_log WHERE network_key_version IS NOT NULL) + \
         (SELECT COUNT(*) FROM incidents WHERE network_key_version IS NOT NULL)",
    )
    .await;

    // A ciphertext that will not open, halfway through the activity log: the run stops in
    // the middle of that chunk, after many chunks committed.
    let ids: Vec<String> = sqlx::query_scalar("SELECT id FROM activity_log ORDER BY id")
        .fetch_all(&raw)
        .await
        .unwrap();
    let victim = ids[ids.len() / 2].clone();
    let original: Vec<u8> = sqlx::query_scalar("SELECT ip_enc FROM activity_log WHERE id = $1")
        .bind(&victim)
        .fetch_one(&raw)
        .await
        .unwrap();
    let mut bent = original.clone();
    bent[20] ^= 1;
    let set_ip = "UPDATE activity_log SET ip_enc = $1 WHERE id = $2";
    sqlx::query(set_ip)
        .bind(bent)
        .bind(&victim)
        .execute(&raw)
        .await
        .unwrap();

    let r = rotation::start(&db.store, &ring, &admin, Purpose::Network)
        .await
        .unwrap();
    let mut chunks = 0;
    let failed = rotation::run(&db.store, &ring, &admin, &r, 40, &mut |_| chunks += 1).await;
    assert!(
        matches!(failed, Err(KeyError::Field(FieldError::Tampered))),
        "{failed:?}"
    );
    assert!(chunks > 8, "{chunks} chunks committed before the failure");
    // The failing chunk left nothing half-done: rows at version 2 are exactly the rows the
    // committed chunks counted.
    let done_rows = count(
        &raw,
        "SELECT rows_done FROM key_rotations WHERE status = 'running'",
    )
    .await;
    let at_v2 = count(
        &raw,
        "SELECT (SELECT COUNT(*) FROM activity_log WHERE network_key_version = 2) + \
         (SELECT COUNT(*) FROM incidents WHERE network_key_version = 2)",
    )
    .await;
    assert_eq!(done_rows, at_v2);
    assert!(at_v2 > 0 && at_v2 < sealed_rows);
    sqlx::query(set_ip)
        .bind(&original)
        .bind(&victim)
        .execute(&raw)
        .await
        .unwrap();

    // Both versions are in use now, and reads work throughout.
    let status = keys::status(&db.store, &admin).await.unwrap();
    let pii = status
        .iter()
        .find(|s| s.purpose == Purpose::Network)
        .unwrap();
    assert_eq!(pii.current, Some(2));
    let progress = pii.rotation.as_ref().expect("rotation under way");
    assert!(
        progress.rows_done > 0 && progress.rows_left > 0,
        "{progress:?}"
    );
    let sample = platform::sample_user_ids(&db.store, 20).await.unwrap();
    for id in &sample {
        assert!(platform::user_email(&db.store, &ring, *id)
            .await
            .unwrap()
            .is_some());
    }

    // Resume: `start` finds the rotation under way; `run` carries on from its cursor.
    let again = rotation::start(&db.store, &ring, &admin, Purpose::Network)
        .await
        .unwrap();
    assert_eq!(again.id, r.id);
    let report = rotation::run(&db.store, &ring, &admin, &again, 40, &mut |_| {})
        .await
        .unwrap();
    assert_eq!(report.retired, [1]);
    assert_eq!(count(&raw, "SELECT COUNT(*) FROM users").await, users);
    assert_eq!(
        count(&raw, "SELECT COUNT(*) FROM activity_log").await,
        activity
    );
    assert_eq!(
        count(
            &raw,
            "SELECT (SELECT COUNT(*) FROM activity_log WHERE network_key_version = 2) + \
             (SELECT COUNT(*) FROM incidents WHERE network_key_version = 2)"
        )
        .await,
        sealed_rows
    );
    // Every sealed field opens under version 2 (and version 1 is gone).
    let ids: Vec<String> =
        sqlx::query_scalar("SELECT id FROM users WHERE email_enc IS NOT NULL ORDER BY id")
            .fetch_all(&raw)
            .await
            .unwrap();
    for id in ids {
        let id = uuid::Uuid::parse_str(&id).unwrap();
        assert!(platform::user_email(&db.store, &ring, id)
            .await
            .unwrap()
            .is_some());
    }
    assert_eq!(
        count(
            &raw,
            "SELECT COUNT(*) FROM key_grants g JOIN data_keys d ON d.id = g.data_key_id \
             WHERE d.purpose = 'network' AND d.version = 1"
        )
        .await,
        0,
        "the retired version's wrapped copies are deleted"
    );

    // The blind index and content hash rotate too, and lookups keep finding people.
    for purpose in [Purpose::BlindIndex, Purpose::ContentHash] {
        let r = rotation::start(&db.store, &ring, &admin, purpose)
            .await
            .unwrap();
        rotation::run(&db.store, &ring, &admin, &r, 64, &mut |_| {})
            .await
            .unwrap();
    }
    assert_eq!(
        count(
            &raw,
            "SELECT COUNT(*) FROM comments WHERE hash_key_version <> 2"
        )
        .await,
        0
    );
    let id = sample[0];
    let email = platform::user_email(&db.store, &ring, id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        platform::find_user_by_email(&db.store, &ring, &email)
            .await
            .unwrap(),
        Some(id)
    );
    raw.close().await;
}
on_both!(rotation_stopped_mid_chunk_resumes_and_every_row_opens);

async fn ciphertexts_moved_or_altered_in_the_database_are_refused(db: TestDb) {
    let (_, ring) = admin_keys(&db).await;
    let keys = WriteKeys::current(&db.store, &ring, &vigil::keys::PLATFORM_PURPOSES)
        .await
        .unwrap();
    let a = write_person(&db, &keys, 1).await;
    let b = write_person(&db, &keys, 2).await;
    let raw = db.raw().await;
    // A's email copied into B's row, and into B's phone column: neither opens.
    common::exec(
        &raw,
        &format!(
            "UPDATE users SET email_enc = (SELECT email_enc FROM users WHERE id = '{a}'), \
             phone_enc = (SELECT email_enc FROM users WHERE id = '{a}') WHERE id = '{b}'"
        ),
    )
    .await;
    assert!(matches!(
        platform::user_email(&db.store, &ring, b).await,
        Err(KeyError::Field(FieldError::Tampered))
    ));
    // One flipped bit in A's own ciphertext.
    let sealed: Vec<u8> =
        sqlx::query_scalar(&format!("SELECT email_enc FROM users WHERE id = '{a}'"))
            .fetch_one(&raw)
            .await
            .unwrap();
    let mut bent = sealed.clone();
    let last = bent.len() - 1;
    bent[last] ^= 0x80;
    sqlx::query("UPDATE users SET email_enc = $1 WHERE id = $2")
        .bind(bent)
        .bind(a.to_string())
        .execute(&raw)
        .await
        .unwrap();
    assert!(matches!(
        platform::user_email(&db.store, &ring, a).await,
        Err(KeyError::Field(FieldError::Tampered))
    ));
    raw.close().await;
}
on_both!(ciphertexts_moved_or_altered_in_the_database_are_refused);

async fn private_comments_open_only_for_their_recipients(db: TestDb) {
    let (_, ring) = admin_keys(&db).await;
    let keys = WriteKeys::current(&db.store, &ring, &vigil::keys::PLATFORM_PURPOSES)
        .await
        .unwrap();
    let people: Vec<uuid::Uuid> = {
        let mut v = Vec::new();
        for i in 1..=3 {
            v.push(write_person(&db, &keys, i).await);
        }
        v
    };
    let pks: Vec<PrivateKey> = (0..3)
        .map(|_| PrivateKey::generate(KeyBits::B2048).unwrap())
        .collect();
    let event = NewEvent {
        id: uuid::Uuid::now_v7(),
        title: "Final".into(),
        starts_at: Timestamp::now(),
        ends_at: Timestamp::now(),
    };
    let id = uuid::Uuid::now_v7();
    let body = CommentBody::private(
        id,
        &[
            (people[0], pks[0].public_key()),
            (people[1], pks[1].public_key()),
        ],
        "see you at the gate",
    )
    .unwrap();
    let mut tx = db.store.begin().await.unwrap();
    platform::insert_events(&mut tx, std::slice::from_ref(&event))
        .await
        .unwrap();
    platform::insert_comments(
        &mut tx,
        &keys,
        &[NewComment {
            id,
            event_id: event.id,
            author_id: people[0],
            body,
            created_at: Timestamp::now(),
        }],
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();

    for r in 0..2 {
        assert_eq!(
            platform::open_private_comment(&db.store, id, people[r], &pks[r])
                .await
                .unwrap(),
            "see you at the gate"
        );
    }
    let err = |r: Result<String, platform::PrivateCommentError>| match r {
        Err(platform::PrivateCommentError::Envelope(e)) => e,
        other => panic!("expected an envelope error, got {other:?}"),
    };
    assert_eq!(
        err(platform::open_private_comment(&db.store, id, people[2], &pks[2]).await),
        EnvelopeError::NotARecipient
    );
    assert_eq!(
        err(platform::open_private_comment(&db.store, id, people[0], &pks[1]).await),
        EnvelopeError::WrongKey
    );
    // The body is nowhere in plaintext.
    let raw = db.raw().await;
    assert_eq!(
        count(
            &raw,
            "SELECT COUNT(*) FROM comments WHERE body IS NULL AND is_private = TRUE"
        )
        .await,
        1
    );
    let envelope: Vec<u8> = sqlx::query_scalar("SELECT body_envelope FROM comments")
        .fetch_one(&raw)
        .await
        .unwrap();
    assert!(!envelope.windows(4).any(|w| w == b"gate"));
    // Altered in the database: the last byte (tag), then the version byte.
    for (at, expected) in [
        (envelope.len() - 1, EnvelopeError::Tampered),
        (0, EnvelopeError::UnsupportedVersion(envelope[0] ^ 0x80)),
    ] {
        let mut bent = envelope.clone();
        bent[at] ^= 0x80;
        sqlx::query("UPDATE comments SET body_envelope = $1")
            .bind(bent)
            .execute(&raw)
            .await
            .unwrap();
        assert_eq!(
            err(platform::open_private_comment(&db.store, id, people[0], &pks[0]).await),
            expected
        );
    }
    raw.close().await;
}
on_both!(private_comments_open_only_for_their_recipients);

async fn key_management_needs_its_permission(db: TestDb) {
    let (_, ring) = admin_keys(&db).await;
    let moderator = common::operator_with_role(&db, "mod-one", "moderator").await;
    assert!(matches!(
        keys::status(&db.store, &moderator).await,
        Err(KeyError::Forbidden(_))
    ));
    assert!(matches!(
        keys::grant(&db.store, &ring, &moderator, "mod-one").await,
        Err(KeyError::Forbidden(_))
    ));
    assert!(matches!(
        keys::revoke(&db.store, &ring, &moderator, "root-admin").await,
        Err(KeyError::Forbidden(_))
    ));
    assert!(matches!(
        rotation::start(&db.store, &ring, &moderator, Purpose::Contact).await,
        Err(KeyError::Forbidden(_))
    ));
    // Nothing changed: still one version per purpose, and no rotation.
    let raw = db.raw().await;
    assert_eq!(count(&raw, "SELECT COUNT(*) FROM data_keys").await, 4);
    assert_eq!(count(&raw, "SELECT COUNT(*) FROM key_rotations").await, 0);
    raw.close().await;
}
on_both!(key_management_needs_its_permission);

async fn a_password_change_reseals_and_a_reset_needs_a_new_key_pair(db: TestDb) {
    use vigil::auth::{self, PasswordChangeError};
    let (admin, admin_ring) = admin_keys(&db).await;
    let keys = WriteKeys::current(&db.store, &admin_ring, &vigil::keys::PLATFORM_PURPOSES)
        .await
        .unwrap();
    let ada = write_person(&db, &keys, 1).await;
    let bob = common::operator_with_role(&db, "bob-officer", "compliance_officer").await;
    let (bob_keystore, _dir) = common::keystore();
    keys::enrol(&db.store, &bob_keystore, &bob, PASSWORD, KeyBits::B2048)
        .await
        .unwrap();
    keys::grant(&db.store, &admin_ring, &admin, "bob-officer")
        .await
        .unwrap();
    let ring = keys::unlock(&db.store, &bob_keystore, &bob, PASSWORD)
        .await
        .unwrap();

    // A wrong current password changes nothing.
    let new_pw = "a different long passphrase";
    assert!(matches!(
        auth::change_password(
            &db.store,
            &bob_keystore,
            &bob,
            &ring,
            None,
            "wrong password!!",
            new_pw
        )
        .await,
        Err(PasswordChangeError::WrongPassword)
    ));
    auth::change_password(
        &db.store,
        &bob_keystore,
        &bob,
        &ring,
        None,
        PASSWORD,
        new_pw,
    )
    .await
    .unwrap();
    // The keystore item now opens with the new password only, and the grants still work.
    assert!(matches!(
        keys::unlock(&db.store, &bob_keystore, &bob, PASSWORD).await,
        Err(KeyError::Unseal)
    ));
    let bob = auth::authenticate(
        &db.store,
        "bob-officer",
        new_pw,
        &vigil::auth::MfaPolicy::none(),
    )
    .await
    .unwrap();
    let ring = keys::unlock(&db.store, &bob_keystore, &bob, new_pw)
        .await
        .unwrap();
    assert!(platform::user_email(&db.store, &ring, ada)
        .await
        .unwrap()
        .is_some());

    // An administrator's reset retires Bob's key pair and its grants.
    assert!(matches!(
        auth::reset_password(&db.store, &bob, "root-admin", "temporary passphrase 1").await,
        Err(PasswordChangeError::Forbidden(_))
    ));
    let retired = auth::reset_password(&db.store, &admin, "bob-officer", "temporary passphrase 1")
        .await
        .unwrap();
    assert_eq!(retired.key_pairs_retired, 1);
    assert!(!retired.mfa_removed, "Bob had no MFA");
    let bob = auth::authenticate(
        &db.store,
        "bob-officer",
        "temporary passphrase 1",
        &vigil::auth::MfaPolicy::none(),
    )
    .await
    .unwrap();
    assert!(matches!(
        keys::unlock(&db.store, &bob_keystore, &bob, "temporary passphrase 1").await,
        Err(KeyError::KeyPairRetired)
    ));
    // A new pair, granted again, opens the data.
    keys::enrol(
        &db.store,
        &bob_keystore,
        &bob,
        "temporary passphrase 1",
        KeyBits::B2048,
    )
    .await
    .unwrap();
    keys::grant(&db.store, &admin_ring, &admin, "bob-officer")
        .await
        .unwrap();
    let ring = keys::unlock(&db.store, &bob_keystore, &bob, "temporary passphrase 1")
        .await
        .unwrap();
    assert!(platform::user_email(&db.store, &ring, ada)
        .await
        .unwrap()
        .is_some());
    let raw = db.raw().await;
    for action in ["operator.password_changed", "operator.password_reset"] {
        assert_eq!(
            count(
                &raw,
                &format!("SELECT COUNT(*) FROM audit_log WHERE action = '{action}'")
            )
            .await,
            1
        );
    }
    assert_eq!(
        count(
            &raw,
            "SELECT COUNT(*) FROM users WHERE username = 'bob-officer' AND must_change_password = TRUE"
        )
        .await,
        1
    );
    raw.close().await;
}
on_both!(a_password_change_reseals_and_a_reset_needs_a_new_key_pair);
