//! Keys follow roles: each role holds exactly the data-key purposes of its row in the purpose
//! table, grants an administrator cannot wrap wait for a holder, a role taken away takes its
//! keys with it, and the retired `pii` purpose is split into `contact` and `network`. Played as
//! an attacker with a moderator's own keystore and password would play it.

mod common;

use common::{admin_keys, count, TestDb, PASSWORD};
use vigil::auth::{self, Actor, LoginOutcome, LoginSource};
use vigil::crypto::field::{self, Place};
use vigil::crypto::{KeyBits, KeyVersion, SymmetricKey};
use vigil::keys::{
    self, keystore::FileKeystore, rotation, split, KeyError, KeyRing, Purpose, WriteKeys,
};
use vigil::platform::{self, NewActivity, NewPlatformUser};
use vigil::rbac::{purposes_of, Role};
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

/// A database an older version wrote: emails, phones and IPs sealed under `pii`. They read
/// throughout, the split re-seals them under `contact` and `network`, and `pii` is retired.
async fn the_split_reseals_what_pii_sealed(db: TestDb) {
    let (admin, ring) = admin_keys(&db).await;
    // Make the key layout of an upgraded database: `pii` v1 numbered below `contact` and
    // `network` (the split numbers them after it).
    for p in [Purpose::Contact, Purpose::Network] {
        let r = rotation::start(&db.store, &ring, &admin, p).await.unwrap();
        rotation::run(&db.store, &ring, &admin, &r, 100, &mut |_| {})
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
    let mut people = Vec::new();
    for i in 1..=25 {
        let (id, event) = write_person(&db, &ring, i).await;
        let (ids, evs) = (id.to_string(), event.to_string());
        let seal = |t: &str, c: &str, row: &str, v: String| {
            field::seal(&pii, KeyVersion(1), &Place::new(t, c, row), v.as_bytes())
        };
        sqlx::query("UPDATE users SET email_enc = $1, phone_enc = $2, pii_key_version = 1, contact_key_version = NULL WHERE id = $3")
            .bind(seal("users", "email_enc", &ids, format!("person{i}@example.org")))
            .bind(seal("users", "phone_enc", &ids, format!("+44 20 7946 {i:04}")))
            .bind(&ids)
            .execute(&raw)
            .await
            .unwrap();
        sqlx::query("UPDATE activity_log SET ip_enc = $1, pii_key_version = 1, network_key_version = NULL WHERE id = $2")
            .bind(seal("activity_log", "ip_enc", &evs, format!("198.51.100.{i}")))
            .bind(&evs)
            .execute(&raw)
            .await
            .unwrap();
        people.push(id);
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
