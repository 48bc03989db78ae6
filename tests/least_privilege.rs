//! Keys follow roles: each role holds exactly the data-key purposes of its row in the purpose
//! table, grants an administrator cannot wrap wait for a holder, a role taken away takes its
//! keys with it, and the retired `pii` purpose is split into `contact` and `network`. Played as
//! an attacker with a moderator's own keystore and password would play it.

mod common;

use common::{admin_keys, count, TestDb, PASSWORD};
use sqlx::Row;
use vigil::auth::{self, Actor, LoginOutcome, LoginSource};
use vigil::crypto::field::{self, Place};
use vigil::crypto::mac::{self, BlindKind};
use vigil::crypto::{KeyBits, KeyVersion, SymmetricKey};
use vigil::keys::{
    self, keystore::FileKeystore, rotation, split, KeyError, KeyRing, Purpose, WriteKeys,
};
use vigil::platform::{self, NewActivity, NewPlatformUser};
use vigil::rbac::{purposes_of, Role};
use vigil::store::{Backend, Timestamp};

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

/// A platform user and one sign-in of theirs from an address, written with `ring`.
async fn write_person(db: &TestDb, ring: &KeyRing, i: u32) -> (uuid::Uuid, uuid::Uuid) {
    let keys = WriteKeys::current(&db.store, ring, &keys::PLATFORM_PURPOSES)
        .await
        .unwrap();
    let p = person(i);
    let (id, event) = (p.id, uuid::Uuid::now_v7());
    let mut tx = db.store.begin().await.unwrap();
    platform::insert_users(&mut tx, &keys, &[p]).await.unwrap();
    platform::insert_activity(
        &mut tx,
        &keys,
        &[NewActivity {
            id: event,
            user_id: Some(id),
            kind: "login",
            outcome: "success",
            reason: None,
            occurred_at: Timestamp::now(),
            user_agent: "test".into(),
            country: "GB".into(),
            target: None,
            ip: Some(format!("198.51.100.{i}")),
            ref_id: None,
        }],
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    (id, event)
}

/// An operator with `role` on their own machine: enrolled there and granted by `admin`.
async fn operator(
    db: &TestDb,
    admin: &Actor,
    admin_ring: &KeyRing,
    name: &str,
    role: &str,
) -> (Actor, FileKeystore, tempfile::TempDir) {
    let actor = common::operator_with_role(db, name, role).await;
    let (ks, dir) = common::keystore();
    keys::enrol(&db.store, &ks, &actor, PASSWORD, KeyBits::B2048)
        .await
        .unwrap();
    keys::grant(&db.store, admin_ring, admin, name)
        .await
        .unwrap();
    (actor, ks, dir)
}

fn names(purposes: &[Purpose]) -> Vec<String> {
    let mut v: Vec<String> = purposes.iter().map(|p| p.to_string()).collect();
    v.sort();
    v
}

async fn each_role_holds_exactly_the_purposes_of_its_row(db: TestDb) {
    let (admin, admin_ring) = admin_keys(&db).await;
    let first = keys::holdings(&db.store, &admin).await.unwrap();
    assert_eq!(
        first.held,
        names(&Purpose::ALL),
        "the first administrator holds everything"
    );
    for (name, role, r) in [
        (
            "olive-officer",
            "compliance_officer",
            Role::ComplianceOfficer,
        ),
        ("mo-moderator", "moderator", Role::Moderator),
        ("ada-admin", "admin", Role::Admin),
        ("worker-one", "service", Role::Service),
    ] {
        let (actor, _ks, _dir) = operator(&db, &admin, &admin_ring, name, role).await;
        let h = keys::holdings(&db.store, &actor).await.unwrap();
        assert_eq!(h.held, names(&purposes_of(&[r])), "{name}");
        assert_eq!(h.entitled, purposes_of(&[r]), "{name}");
        assert!(h.pending_grants.is_empty(), "{name}");
    }
}
on_both!(each_role_holds_exactly_the_purposes_of_its_row);

/// The reviewer's attack: with only the moderator's keystore item and password and a raw
/// connection to the database, try every wrapped key in `key_grants`.
async fn a_moderators_own_keys_open_nothing_outside_their_row(db: TestDb) {
    let (admin, admin_ring) = admin_keys(&db).await;
    let (ada, event) = write_person(&db, &admin_ring, 1).await;
    let (_officer, _oks, _odir) = operator(
        &db,
        &admin,
        &admin_ring,
        "olive-officer",
        "compliance_officer",
    )
    .await;
    let (moderator, mks, _mdir) =
        operator(&db, &admin, &admin_ring, "mo-moderator", "moderator").await;
    let ring = keys::unlock(&db.store, &mks, &moderator, PASSWORD)
        .await
        .unwrap();

    // Through Vigil: no email, no phone; the IP of an activity record opens (network).
    assert!(matches!(
        platform::user_email(&db.store, &ring, ada).await,
        Err(KeyError::NotGranted(Purpose::Contact, _))
    ));
    assert!(matches!(
        ring.current(&db.store, Purpose::Contact).await,
        Err(KeyError::NotGranted(Purpose::Contact, _))
    ));
    for p in purposes_of(&[Role::Moderator]) {
        assert!(ring.holds(&db.store, p).await.unwrap(), "{p}");
    }

    // Around Vigil: the moderator's private key against every wrapped copy in the database.
    let raw = db.raw().await;
    let rows: Vec<(String, i64, Vec<u8>)> = sqlx::query_as(
        "SELECT d.purpose, d.version, g.wrapped_key FROM key_grants g \
         JOIN data_keys d ON d.id = g.data_key_id",
    )
    .fetch_all(&raw)
    .await
    .unwrap();
    assert_eq!(
        rows.len(),
        4 + 3 + 3,
        "the first administrator's, the officer's, the moderator's"
    );
    let mut opened = std::collections::BTreeSet::new();
    for (purpose, version, wrapped) in &rows {
        let label = format!("vigil-data-key-v1:{purpose}:{version}");
        if let Ok(raw_key) = ring.private_key().decrypt(&label, wrapped) {
            opened.insert(purpose.clone());
            let key = SymmetricKey::from_slice(&raw_key).unwrap();
            // Whatever opened, no contact field opens with it.
            let sealed: Vec<u8> = sqlx::query_scalar("SELECT email_enc FROM users WHERE id = $1")
                .bind(ada.to_string())
                .fetch_one(&raw)
                .await
                .unwrap();
            assert!(field::open(
                &key,
                &Place::new("users", "email_enc", &ada.to_string()),
                &sealed
            )
            .is_err());
        }
    }
    assert_eq!(
        opened.into_iter().collect::<Vec<_>>(),
        names(&purposes_of(&[Role::Moderator])),
        "exactly the moderator's row unwraps"
    );
    let ip: Vec<u8> = sqlx::query_scalar("SELECT ip_enc FROM activity_log WHERE id = $1")
        .bind(event.to_string())
        .fetch_one(&raw)
        .await
        .unwrap();
    let plain = ring
        .open_field(
            &db.store,
            Purpose::Network,
            &Place::new("activity_log", "ip_enc", &event.to_string()),
            &ip,
        )
        .await
        .unwrap();
    assert_eq!(&plain[..], b"198.51.100.1");
    raw.close().await;
}
on_both!(a_moderators_own_keys_open_nothing_outside_their_row);

async fn a_grant_the_administrator_cannot_wrap_waits_for_a_holder(db: TestDb) {
    let (admin, admin_ring) = admin_keys(&db).await;
    let (ada, _) = write_person(&db, &admin_ring, 1).await;
    // Alone, the first administrator cannot give up what nobody else holds.
    assert!(matches!(
        keys::relinquish(&db.store, &admin, Purpose::Contact).await,
        Err(KeyError::LastHolder(Purpose::Contact))
    ));
    assert!(matches!(
        keys::relinquish(&db.store, &admin, Purpose::BlindIndex).await,
        Err(KeyError::RoleHolds(Purpose::BlindIndex))
    ));
    let (_olive, oks, _odir) = operator(
        &db,
        &admin,
        &admin_ring,
        "olive-officer",
        "compliance_officer",
    )
    .await;
    let (_mo, mks, _mdir) = operator(&db, &admin, &admin_ring, "mo-moderator", "moderator").await;
    for p in [Purpose::Contact, Purpose::Network, Purpose::ContentHash] {
        assert_eq!(keys::relinquish(&db.store, &admin, p).await.unwrap(), p);
    }
    assert!(matches!(
        keys::relinquish(&db.store, &admin, Purpose::Contact).await,
        Err(KeyError::NotHeld(Purpose::Contact))
    ));
    let h = keys::holdings(&db.store, &admin).await.unwrap();
    assert_eq!(h.held, names(&purposes_of(&[Role::Admin])));
    // The relinquished keys' rotations are asked for, not started: the administrator made no
    // new key. A fresh unlock opens no email.
    let raw = db.raw().await;
    assert_eq!(
        count(&raw, "SELECT COUNT(*) FROM rotation_requests").await,
        3
    );
    assert_eq!(
        count(
            &raw,
            "SELECT COUNT(*) FROM key_rotations WHERE status = 'running'"
        )
        .await,
        0
    );
    assert_eq!(
        keys::holdings(&db.store, &admin)
            .await
            .unwrap()
            .rotations_requested,
        vec![Purpose::Contact, Purpose::ContentHash, Purpose::Network]
    );
    let admin_ring = keys::unlock(&db.store, &db.keystore, &admin, PASSWORD)
        .await
        .unwrap();
    assert!(platform::user_email(&db.store, &admin_ring, ada)
        .await
        .is_err());

    // A second officer: the administrator wraps what they hold, the rest waits.
    let bea = common::operator_with_role(&db, "bea-officer", "compliance_officer").await;
    let (bks, _bdir) = common::keystore();
    keys::enrol(&db.store, &bks, &bea, PASSWORD, KeyBits::B2048)
        .await
        .unwrap();
    let report = keys::grant(&db.store, &admin_ring, &admin, "bea-officer")
        .await
        .unwrap();
    assert_eq!(report.pending, vec![Purpose::Contact, Purpose::Network]);
    assert_eq!(report.granted, vec![Purpose::BlindIndex]);
    let shown = keys::holdings(&db.store, &admin).await.unwrap();
    assert_eq!(shown.pending_grants.len(), 2);
    assert!(shown
        .pending_grants
        .iter()
        .all(|p| p.username == "bea-officer" && p.requested_by.as_deref() == Some("root-admin")));
    let bea_ring = keys::unlock(&db.store, &bks, &bea, PASSWORD).await.unwrap();
    assert!(platform::user_email(&db.store, &bea_ring, ada)
        .await
        .is_err());

    // The moderator signs in: they hold network, so that grant completes; contact still waits.
    let signed = auth::login(
        &db.store,
        Some(&mks),
        "mo-moderator",
        PASSWORD,
        &LoginSource::default(),
        &vigil::auth::MfaPolicy::none(),
    )
    .await
    .unwrap();
    assert!(matches!(signed, LoginOutcome::SignedIn(_)));
    let left = keys::holdings(&db.store, &admin).await.unwrap();
    assert_eq!(left.pending_grants.len(), 1);
    assert_eq!(left.pending_grants[0].purpose, "contact");
    // ... and starts the rotations of what they hold; contact's waits for an officer.
    assert_eq!(left.rotations_requested, vec![Purpose::Contact]);
    // Olive, an officer, signs in: the last one completes and Bea reads the email.
    let signed = auth::login(
        &db.store,
        Some(&oks),
        "olive-officer",
        PASSWORD,
        &LoginSource::default(),
        &vigil::auth::MfaPolicy::none(),
    )
    .await
    .unwrap();
    assert!(matches!(signed, LoginOutcome::SignedIn(_)));
    let settled = keys::holdings(&db.store, &admin).await.unwrap();
    assert!(settled.pending_grants.is_empty());
    assert!(settled.rotations_requested.is_empty());
    // Every new version was made by a holder and wrapped for holders only: none for the
    // administrator who gave the purposes up.
    assert_eq!(
        count(
            &raw,
            "SELECT COUNT(*) FROM key_rotations WHERE status = 'running'"
        )
        .await,
        3
    );
    assert_eq!(
        count(
            &raw,
            &format!(
                "SELECT COUNT(*) FROM key_grants g JOIN user_keys k ON k.id = g.user_key_id \
                 JOIN data_keys d ON d.id = g.data_key_id \
                 WHERE k.user_id = '{}' AND d.purpose <> 'blind_index'",
                admin.user_id()
            )
        )
        .await,
        0
    );
    let bea_ring = keys::unlock(&db.store, &bks, &bea, PASSWORD).await.unwrap();
    assert_eq!(
        platform::user_email(&db.store, &bea_ring, ada)
            .await
            .unwrap()
            .as_deref(),
        Some("person1@example.org")
    );
    assert_eq!(
        keys::holdings(&db.store, &bea).await.unwrap().held,
        names(&purposes_of(&[Role::ComplianceOfficer]))
    );

    // An order nobody with the right placed (written straight into the table, here by the
    // moderator's name) is dropped, not carried out, at the next holder's sign-in.
    let cy = common::operator_with_role(&db, "cy-officer", "compliance_officer").await;
    let (cks, _cdir) = common::keystore();
    keys::enrol(&db.store, &cks, &cy, PASSWORD, KeyBits::B2048)
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO pending_grants (user_key_id, purpose, requested_by, requested_at) \
         SELECT k.id, 'contact', (SELECT id FROM users WHERE username = 'mo-moderator'), 0 \
         FROM user_keys k JOIN users u ON u.id = k.user_id WHERE u.username = 'cy-officer'",
    )
    .execute(&raw)
    .await
    .unwrap();
    auth::login(
        &db.store,
        Some(&oks),
        "olive-officer",
        PASSWORD,
        &LoginSource::default(),
        &vigil::auth::MfaPolicy::none(),
    )
    .await
    .unwrap();
    assert_eq!(count(&raw, "SELECT COUNT(*) FROM pending_grants").await, 0);
    assert!(keys::holdings(&db.store, &cy)
        .await
        .unwrap()
        .held
        .is_empty());
    raw.close().await;
}
on_both!(a_grant_the_administrator_cannot_wrap_waits_for_a_holder);

async fn a_role_taken_away_takes_its_keys_with_it(db: TestDb) {
    let (admin, admin_ring) = admin_keys(&db).await;
    let (ada, _) = write_person(&db, &admin_ring, 1).await;
    let (olive, oks, _odir) = operator(
        &db,
        &admin,
        &admin_ring,
        "olive-officer",
        "compliance_officer",
    )
    .await;
    auth::users::set_roles(&db.store, &admin, "olive-officer", &[Role::Moderator])
        .await
        .unwrap();
    let held = keys::holdings(&db.store, &olive).await.unwrap().held;
    assert_eq!(held, vec!["blind_index", "network"]);
    let ring = keys::unlock(&db.store, &oks, &olive, PASSWORD)
        .await
        .unwrap();
    assert!(matches!(
        platform::user_email(&db.store, &ring, ada).await,
        Err(KeyError::NotGranted(Purpose::Contact, _))
    ));
    let raw = db.raw().await;
    assert_eq!(
        count(
            &raw,
            "SELECT COUNT(*) FROM rotation_requests WHERE purpose = 'contact'"
        )
        .await,
        1,
        "the contact key she held is to be rotated"
    );
    // A holder's console takes the request up and rotates; her old copy opens nothing new.
    let r = rotation::start(&db.store, &admin_ring, &admin, Purpose::Contact)
        .await
        .unwrap();
    rotation::run(&db.store, &admin_ring, &admin, &r, 100, &mut |_| {})
        .await
        .unwrap();
    // Suspended, she holds nothing at all.
    auth::users::set_suspended(&db.store, &admin, "olive-officer", true)
        .await
        .unwrap();
    assert_eq!(
        count(
            &raw,
            "SELECT COUNT(*) FROM key_grants g JOIN user_keys k ON k.id = g.user_key_id \
                     JOIN users u ON u.id = k.user_id WHERE u.username = 'olive-officer'"
        )
        .await,
        0
    );
    raw.close().await;
}
on_both!(a_role_taken_away_takes_its_keys_with_it);

/// The key layout of a database an older version wrote: `pii` v1 (returned), wrapped for the
/// administrator's key pair and numbered below `contact` and `network` (the split numbers them
/// after it). The ring must be unlocked again to hold `pii`.
async fn legacy_pii_key(db: &TestDb, admin: &Actor, ring: &KeyRing) -> SymmetricKey {
    for p in [Purpose::Contact, Purpose::Network] {
        let r = rotation::start(&db.store, ring, admin, p).await.unwrap();
        rotation::run(&db.store, ring, admin, &r, 100, &mut |_| {})
            .await
            .unwrap();
    }
    let raw = db.raw().await;
    let pii = SymmetricKey::random();
    let pii_id = uuid::Uuid::now_v7().to_string();
    sqlx::query("INSERT INTO data_keys (id, purpose, version, status, created_at) VALUES ($1, 'pii', 1, 'active', 0)")
        .bind(&pii_id)
        .execute(&raw)
        .await
        .unwrap();
    let wrapped = ring
        .public_key()
        .encrypt("vigil-data-key-v1:pii:1", pii.expose())
        .unwrap();
    let pair: String = sqlx::query_scalar("SELECT id FROM user_keys WHERE retired_at IS NULL")
        .fetch_one(&raw)
        .await
        .unwrap();
    sqlx::query("INSERT INTO key_grants (data_key_id, user_key_id, wrapped_key, granted_at) VALUES ($1, $2, $3, 0)")
        .bind(&pii_id)
        .bind(&pair)
        .bind(wrapped)
        .execute(&raw)
        .await
        .unwrap();
    raw.close().await;
    pii
}

/// Person `i` (see [`write_person`]) as an older version wrote them: email, phone and sign-in
/// address sealed under `pii` v1.
async fn write_legacy_person(
    db: &TestDb,
    raw: &sqlx::AnyPool,
    ring: &KeyRing,
    pii: &SymmetricKey,
    i: u32,
) -> uuid::Uuid {
    let (id, event) = write_person(db, ring, i).await;
    let (ids, evs) = (id.to_string(), event.to_string());
    let seal = |t: &str, c: &str, row: &str, v: String| {
        field::seal(pii, KeyVersion(1), &Place::new(t, c, row), v.as_bytes())
    };
    sqlx::query("UPDATE users SET email_enc = $1, phone_enc = $2, pii_key_version = 1, contact_key_version = NULL WHERE id = $3")
        .bind(seal("users", "email_enc", &ids, format!("person{i}@example.org")))
        .bind(seal("users", "phone_enc", &ids, format!("+44 20 7946 {i:04}")))
        .bind(&ids)
        .execute(raw)
        .await
        .unwrap();
    sqlx::query("UPDATE activity_log SET ip_enc = $1, pii_key_version = 1, network_key_version = NULL WHERE id = $2")
        .bind(seal("activity_log", "ip_enc", &evs, format!("198.51.100.{i}")))
        .bind(&evs)
        .execute(raw)
        .await
        .unwrap();
    id
}

/// A database an older version wrote: emails, phones and IPs sealed under `pii`. They read
/// throughout, the split re-seals them under `contact` and `network`, and `pii` is retired.
async fn the_split_reseals_what_pii_sealed(db: TestDb) {
    let (admin, ring) = admin_keys(&db).await;
    let pii = legacy_pii_key(&db, &admin, &ring).await;
    let raw = db.raw().await;
    let mut people = Vec::new();
    for i in 1..=25 {
        people.push(write_legacy_person(&db, &raw, &ring, &pii, i).await);
    }
    let ring = keys::unlock(&db.store, &db.keystore, &admin, PASSWORD)
        .await
        .unwrap();
    // Before the split: reads open through the old key.
    assert_eq!(
        platform::user_email(&db.store, &ring, people[3])
            .await
            .unwrap()
            .as_deref(),
        Some("person4@example.org")
    );
    assert_eq!(split::remaining(&db.store).await.unwrap(), 50);
    // A row that will not open stops nothing, keeps `pii` alive, and is counted.
    let victim = people[10].to_string();
    sqlx::query("UPDATE users SET email_enc = phone_enc WHERE id = $1")
        .bind(&victim)
        .execute(&raw)
        .await
        .unwrap();
    let first = split::run(&db.store, &ring, &admin, 7, &mut |_| {})
        .await
        .unwrap();
    assert_eq!((first.rows, first.unreadable), (49, 1));
    assert!(first.retired.is_empty());
    assert_eq!(split::remaining(&db.store).await.unwrap(), 1);
    // Mended, a second run (a resumed one) finishes and retires `pii`.
    sqlx::query("UPDATE users SET email_enc = $1 WHERE id = $2")
        .bind(field::seal(
            &pii,
            KeyVersion(1),
            &Place::new("users", "email_enc", &victim),
            b"person11@example.org",
        ))
        .bind(&victim)
        .execute(&raw)
        .await
        .unwrap();
    let second = split::run(&db.store, &ring, &admin, 7, &mut |_| {})
        .await
        .unwrap();
    assert_eq!(
        (second.rows, second.unreadable, second.retired),
        (1, 0, vec![1])
    );
    assert_eq!(split::remaining(&db.store).await.unwrap(), 0);
    assert_eq!(
        count(&raw, "SELECT COUNT(*) FROM key_grants g JOIN data_keys d ON d.id = g.data_key_id WHERE d.purpose = 'pii'").await,
        0
    );
    let ring = keys::unlock(&db.store, &db.keystore, &admin, PASSWORD)
        .await
        .unwrap();
    for (i, id) in people.iter().enumerate() {
        assert_eq!(
            platform::user_email(&db.store, &ring, *id).await.unwrap(),
            Some(format!("person{}@example.org", i + 1))
        );
    }
    assert_eq!(
        count(
            &raw,
            "SELECT COUNT(*) FROM users WHERE contact_key_version = 2 AND email_enc IS NOT NULL"
        )
        .await,
        25
    );
    assert_eq!(
        count(
            &raw,
            "SELECT COUNT(*) FROM activity_log WHERE network_key_version = 2"
        )
        .await,
        25
    );
    // A split of a database with nothing left is a no-op.
    let again = split::run(&db.store, &ring, &admin, 7, &mut |_| {})
        .await
        .unwrap();
    assert_eq!((again.rows, again.retired.len()), (0, 0));
    raw.close().await;
}
on_both!(the_split_reseals_what_pii_sealed);

/// The split's other tables: an incident's source address (its blind index recomputed under
/// the current `blind_index` key) and an erasure's working record, in chunks of two. A missing
/// value stays missing, and rows holding no `pii` value are not touched.
async fn the_split_reseals_incidents_and_erasures_and_keeps_missing_values(db: TestDb) {
    let (admin, ring) = admin_keys(&db).await;
    let pii = legacy_pii_key(&db, &admin, &ring).await;
    let raw = db.raw().await;
    let person = write_legacy_person(&db, &raw, &ring, &pii, 1).await;
    let pid = person.to_string();
    sqlx::query("UPDATE users SET phone_enc = NULL WHERE id = $1")
        .bind(&pid)
        .execute(&raw)
        .await
        .unwrap();
    let seal = |t: &str, c: &str, row: &str, v: &str| {
        field::seal(&pii, KeyVersion(1), &Place::new(t, c, row), v.as_bytes())
    };
    let mut incidents = Vec::new();
    for (i, ip) in [Some("203.0.113.9"), None, Some("203.0.113.10")]
        .into_iter()
        .enumerate()
    {
        let id = uuid::Uuid::now_v7().to_string();
        sqlx::query(
            "INSERT INTO incidents (id, kind, severity, status, source_ip_enc, source_ip_bidx, \
             dedup_key, summary, created_at, updated_at) \
             VALUES ($1, 'brute_force', 'high', 'open', $2, $3, $4, 'test', 0, 0)",
        )
        .bind(&id)
        .bind(ip.map(|ip| seal("incidents", "source_ip_enc", &id, ip)))
        .bind(ip.map(|_| b"an index under no version".to_vec()))
        .bind(format!("dedup-{i}"))
        .execute(&raw)
        .await
        .unwrap();
        incidents.push((id, ip));
    }
    let mut erasures = Vec::new();
    for subject in [Some("person1@example.org"), None] {
        let id = uuid::Uuid::now_v7().to_string();
        sqlx::query(
            "INSERT INTO dsr_requests (id, kind, status, received_at, due_at, created_by, \
             updated_at, subject_sealed) VALUES ($1, 'erasure', 'received', 0, 0, $2, 0, $3)",
        )
        .bind(&id)
        .bind(admin.user_id().to_string())
        .bind(subject.map(|s| seal("dsr_requests", "subject_sealed", &id, s)))
        .execute(&raw)
        .await
        .unwrap();
        erasures.push((id, subject));
    }
    let ring = keys::unlock(&db.store, &db.keystore, &admin, PASSWORD)
        .await
        .unwrap();
    assert_eq!(split::remaining(&db.store).await.unwrap(), 5);
    let report = split::run(&db.store, &ring, &admin, 2, &mut |_| {})
        .await
        .unwrap();
    assert_eq!(
        (report.rows, report.unreadable, report.retired),
        (5, 0, vec![1])
    );
    let ring = keys::unlock(&db.store, &db.keystore, &admin, PASSWORD)
        .await
        .unwrap();
    let (contact, _) = ring.current(&db.store, Purpose::Contact).await.unwrap();
    let (network, _) = ring.current(&db.store, Purpose::Network).await.unwrap();
    let (blind, blind_key) = ring.current(&db.store, Purpose::BlindIndex).await.unwrap();

    // The person: email re-sealed, the missing phone still missing, `pii` cleared.
    assert_eq!(
        platform::user_email(&db.store, &ring, person)
            .await
            .unwrap(),
        Some("person1@example.org".into())
    );
    let row = sqlx::query(
        "SELECT phone_enc, contact_key_version, pii_key_version FROM users WHERE id = $1",
    )
    .bind(&pid)
    .fetch_one(&raw)
    .await
    .unwrap();
    assert_eq!(row.get::<Option<Vec<u8>>, _>(0), None);
    assert_eq!(row.get::<Option<i64>, _>(1), Some(i64::from(contact.0)));
    assert_eq!(row.get::<Option<i64>, _>(2), None);

    for (id, ip) in &incidents {
        let row = sqlx::query(
            "SELECT source_ip_enc, source_ip_bidx, network_key_version, bidx_key_version \
             FROM incidents WHERE id = $1",
        )
        .bind(id)
        .fetch_one(&raw)
        .await
        .unwrap();
        let sealed: Option<Vec<u8>> = row.get(0);
        let bidx: Option<Vec<u8>> = row.get(1);
        let versions: (Option<i64>, Option<i64>) = (row.get(2), row.get(3));
        let Some(ip) = ip else {
            assert_eq!((sealed, bidx, versions), (None, None, (None, None)));
            continue;
        };
        let place = Place::new("incidents", "source_ip_enc", id);
        let plain = ring
            .open_field(&db.store, Purpose::Network, &place, &sealed.unwrap())
            .await
            .unwrap();
        assert_eq!(plain.as_slice(), ip.as_bytes());
        assert_eq!(
            bidx,
            Some(mac::blind_index(&blind_key, BlindKind::Ip, ip).to_vec())
        );
        assert_eq!(
            versions,
            (Some(i64::from(network.0)), Some(i64::from(blind.0)))
        );
    }
    for (id, subject) in &erasures {
        let row = sqlx::query(
            "SELECT subject_sealed, contact_key_version FROM dsr_requests WHERE id = $1",
        )
        .bind(id)
        .fetch_one(&raw)
        .await
        .unwrap();
        let sealed: Option<Vec<u8>> = row.get(0);
        let version: Option<i64> = row.get(1);
        let Some(subject) = subject else {
            assert_eq!((sealed, version), (None, None));
            continue;
        };
        let place = Place::new("dsr_requests", "subject_sealed", id);
        let plain = ring
            .open_field(&db.store, Purpose::Contact, &place, &sealed.unwrap())
            .await
            .unwrap();
        assert_eq!(plain.as_slice(), subject.as_bytes());
        assert_eq!(version, Some(i64::from(contact.0)));
    }
    raw.close().await;
}
on_both!(the_split_reseals_incidents_and_erasures_and_keeps_missing_values);

/// Another writer re-seals a row after the split read it and before the split writes it: the
/// split's write of that chunk waits for the other to commit, then leaves the row as the other
/// wrote it (it no longer matches) and does not count it. On SQLite the writers take turns, so
/// the split reads the row already written; the outcome is the same.
async fn a_row_written_meanwhile_by_another_writer_is_left_alone(db: TestDb) {
    let (admin, ring) = admin_keys(&db).await;
    let pii = legacy_pii_key(&db, &admin, &ring).await;
    let raw = db.raw().await;
    let mut people = Vec::new();
    for i in 1..=5 {
        people.push(write_legacy_person(&db, &raw, &ring, &pii, i).await);
    }
    let ring = keys::unlock(&db.store, &db.keystore, &admin, PASSWORD)
        .await
        .unwrap();
    let (version, contact) = ring.current(&db.store, Purpose::Contact).await.unwrap();
    let moved = people[2].to_string();
    let mut other = raw.begin().await.unwrap();
    sqlx::query(
        "UPDATE users SET email_enc = $1, phone_enc = NULL, contact_key_version = $2, \
         pii_key_version = NULL WHERE id = $3",
    )
    .bind(field::seal(
        &contact,
        version,
        &Place::new("users", "email_enc", &moved),
        b"moved@example.org",
    ))
    .bind(i64::from(version.0))
    .bind(&moved)
    .execute(&mut *other)
    .await
    .unwrap();
    let backend = db.store.backend();
    let other_commits = async {
        if backend == Backend::Postgres {
            // Until the split waits for the row.
            let mut waited = 0;
            while count(
                &raw,
                "SELECT COUNT(*) FROM pg_stat_activity \
                 WHERE datname = current_database() AND wait_event_type = 'Lock'",
            )
            .await
                == 0
            {
                waited += 1;
                assert!(waited < 600, "the split never waited for the row");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        } else {
            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        }
        other.commit().await.unwrap();
    };
    let mut progress = |_| {};
    let (report, ()) = tokio::join!(
        split::run(&db.store, &ring, &admin, 2, &mut progress),
        other_commits
    );
    let report = report.unwrap();
    assert_eq!(
        (report.rows, report.unreadable, report.retired),
        (9, 0, vec![1])
    );
    let ring = keys::unlock(&db.store, &db.keystore, &admin, PASSWORD)
        .await
        .unwrap();
    for (i, id) in people.iter().enumerate() {
        let want = if i == 2 {
            "moved@example.org".to_owned()
        } else {
            format!("person{}@example.org", i + 1)
        };
        assert_eq!(
            platform::user_email(&db.store, &ring, *id).await.unwrap(),
            Some(want)
        );
    }
    assert_eq!(
        count(
            &raw,
            &format!("SELECT COUNT(*) FROM users WHERE id = '{moved}' AND phone_enc IS NULL")
        )
        .await,
        1
    );
    raw.close().await;
}
on_both!(a_row_written_meanwhile_by_another_writer_is_left_alone);
