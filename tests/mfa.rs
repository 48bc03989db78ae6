//! TOTP enrolment with QR codes, the replay guard, the ±1 step window, backup codes and the
//! administrator's reset, on both databases; and per-operator sealing: no data key and no other
//! operator opens a secret, it follows a password change to every machine, an administrator's
//! password reset removes it, and a secret sealed with the retired shared key is re-sealed at
//! its owner's next sign-in.

mod common;

use common::{admin_session, count, sign_in_with, TestDb, PASSWORD};
use vigil::auth::{self, LoginError, LoginOutcome, LoginSource, Session};
use vigil::crypto::field::{self, Place};
use vigil::crypto::{KeyVersion, SymmetricKey};
use vigil::keys::{self, Purpose};
use vigil::mfa::{self, MfaError, STEP_SECONDS};
use vigil::store::Timestamp;

fn secret_of(enrolment: &mfa::Enrolment) -> Vec<u8> {
    totp_rs::Secret::Encoded(enrolment.secret_base32.clone())
        .to_bytes()
        .unwrap()
}

fn step_now() -> u64 {
    Timestamp::now().micros() as u64 / 1_000_000 / STEP_SECONDS
}

fn at_step(step: u64) -> Timestamp {
    Timestamp::from_micros((step * STEP_SECONDS * 1_000_000 + 5_000_000) as i64)
}

async fn enrolment_turns_on_only_after_a_valid_code(db: TestDb) {
    let session = admin_session(&db).await;
    let (admin, ck) = (&session.actor, session.credential.as_ref().unwrap());
    let e = mfa::enroll(&db.store, ck, admin).await.unwrap();
    assert!(
        e.uri.starts_with("otpauth://totp/Vigil:root-admin?")
            && e.uri.contains("issuer=Vigil")
            && e.uri.contains("digits=6")
            && e.uri.contains("period=30")
            && e.uri.contains("algorithm=SHA1"),
        "{}",
        e.uri
    );
    assert!(e.qr_svg.contains("<svg"));
    assert_eq!(&e.qr_png[..8], b"\x89PNG\r\n\x1a\n");
    assert!(e.qr_text.lines().count() > 10);
    let secret = secret_of(&e);
    assert_eq!(secret.len(), 20, "160-bit secret");
    assert!(!format!("{e:?}").contains(&e.secret_base32));

    // Not on until confirmed; a wrong code confirms nothing.
    assert!(!mfa::is_enabled(&db.store, admin.user_id()).await.unwrap());
    assert!(matches!(
        mfa::confirm(&db.store, ck, admin, "000000").await,
        Err(MfaError::InvalidCode)
    ));
    assert!(!mfa::is_enabled(&db.store, admin.user_id()).await.unwrap());
    let code = mfa::code_at(&secret, step_now(), 6);
    let backup = mfa::confirm(&db.store, ck, admin, &code).await.unwrap();
    assert_eq!(backup.len(), 10);
    assert!(mfa::is_enabled(&db.store, admin.user_id()).await.unwrap());
    assert!(matches!(
        mfa::enroll(&db.store, ck, admin).await,
        Err(MfaError::AlreadyEnabled)
    ));

    // The secret is stored sealed, and the backup codes only as hashes.
    let raw = db.raw().await;
    let sealed: Vec<u8> = sqlx::query_scalar("SELECT secret_enc FROM mfa_secrets")
        .fetch_one(&raw)
        .await
        .unwrap();
    assert!(!sealed.windows(secret.len()).any(|w| w == secret.as_slice()));
    let hashes: Vec<String> = sqlx::query_scalar("SELECT code_hash FROM backup_codes")
        .fetch_all(&raw)
        .await
        .unwrap();
    assert_eq!(hashes.len(), 10);
    assert!(backup.iter().all(|c| !hashes.contains(c)));
    for action in ["mfa.enrolment_started", "mfa.enabled"] {
        assert_eq!(
            count(
                &raw,
                &format!("SELECT COUNT(*) FROM audit_log WHERE action = '{action}'")
            )
            .await,
            1
        );
    }
    raw.close().await;
}
on_both!(enrolment_turns_on_only_after_a_valid_code);

async fn each_code_once_within_one_step_either_side(db: TestDb) {
    let session = admin_session(&db).await;
    let (admin, ck) = (&session.actor, session.credential.as_ref().unwrap());
    let e = mfa::enroll(&db.store, ck, admin).await.unwrap();
    let secret = secret_of(&e);
    let n = step_now();
    mfa::confirm(&db.store, ck, admin, &mfa::code_at(&secret, n, 6))
        .await
        .unwrap();
    let user = admin.user_id();
    let later = n + 10;
    let verify = |code: String, at: Timestamp| {
        let store = db.store.clone();
        async move { mfa::verify(&store, Some(ck), None, user, &code, at).await }
    };
    // Two steps away either side: refused.
    for off in [later - 2, later + 2] {
        assert!(matches!(
            verify(mfa::code_at(&secret, off, 6), at_step(later)).await,
            Err(MfaError::InvalidCode)
        ));
    }
    // One step early is accepted; replaying it, or using an older step, is refused, with the
    // same error as a wrong code.
    verify(mfa::code_at(&secret, later - 1, 6), at_step(later))
        .await
        .unwrap();
    assert!(matches!(
        verify(mfa::code_at(&secret, later - 1, 6), at_step(later)).await,
        Err(MfaError::InvalidCode)
    ));
    verify(mfa::code_at(&secret, later, 6), at_step(later))
        .await
        .unwrap();
    assert!(matches!(
        verify(mfa::code_at(&secret, later, 6), at_step(later)).await,
        Err(MfaError::InvalidCode)
    ));
    // One step late (clock ahead) is accepted once.
    verify(mfa::code_at(&secret, later + 1, 6), at_step(later))
        .await
        .unwrap();
    assert!(matches!(
        verify(mfa::code_at(&secret, later + 1, 6), at_step(later + 1)).await,
        Err(MfaError::InvalidCode)
    ));
}
on_both!(each_code_once_within_one_step_either_side);

async fn backup_codes_work_once_and_regenerating_replaces_them(db: TestDb) {
    let session = admin_session(&db).await;
    let (admin, ck) = (&session.actor, session.credential.as_ref().unwrap());
    let user = admin.user_id();
    let e = mfa::enroll(&db.store, ck, admin).await.unwrap();
    let codes = mfa::confirm(
        &db.store,
        ck,
        admin,
        &mfa::code_at(&secret_of(&e), step_now(), 6),
    )
    .await
    .unwrap();
    let now = Timestamp::now();
    // Case and dashes do not matter; a code works once.
    let typed = codes[0].to_lowercase().replace('-', " ");
    mfa::verify(&db.store, Some(ck), None, user, &typed, now)
        .await
        .unwrap();
    assert!(matches!(
        mfa::verify(&db.store, Some(ck), None, user, &codes[0], now).await,
        Err(MfaError::InvalidCode)
    ));
    assert_eq!(mfa::backup_codes_left(&db.store, user).await.unwrap(), 9);
    assert!(matches!(
        mfa::verify(&db.store, Some(ck), None, user, "AAAA-BBBB-CCCC-DDDD", now).await,
        Err(MfaError::InvalidCode)
    ));

    let fresh = mfa::regenerate_backup_codes(&db.store, admin)
        .await
        .unwrap();
    assert_eq!(mfa::backup_codes_left(&db.store, user).await.unwrap(), 10);
    assert!(matches!(
        mfa::verify(&db.store, Some(ck), None, user, &codes[1], now).await,
        Err(MfaError::InvalidCode)
    ));
    mfa::verify(&db.store, Some(ck), None, user, &fresh[3], now)
        .await
        .unwrap();
}
on_both!(backup_codes_work_once_and_regenerating_replaces_them);

async fn only_an_administrator_resets_mfa(db: TestDb) {
    let session = admin_session(&db).await;
    let (admin, ck) = (&session.actor, session.credential.as_ref().unwrap());
    let e = mfa::enroll(&db.store, ck, admin).await.unwrap();
    mfa::confirm(
        &db.store,
        ck,
        admin,
        &mfa::code_at(&secret_of(&e), step_now(), 6),
    )
    .await
    .unwrap();
    let moderator = common::operator_with_role(&db, "mod-one", "moderator").await;
    assert!(matches!(
        mfa::reset(&db.store, &moderator, "root-admin").await,
        Err(MfaError::Forbidden(_))
    ));
    assert!(mfa::is_enabled(&db.store, admin.user_id()).await.unwrap());
    assert!(matches!(
        mfa::reset(&db.store, admin, "nobody-here").await,
        Err(MfaError::UnknownOperator(_))
    ));
    mfa::reset(&db.store, admin, "root-admin").await.unwrap();
    assert!(!mfa::is_enabled(&db.store, admin.user_id()).await.unwrap());
    let raw = db.raw().await;
    assert_eq!(count(&raw, "SELECT COUNT(*) FROM mfa_secrets").await, 0);
    assert_eq!(count(&raw, "SELECT COUNT(*) FROM backup_codes").await, 0);
    raw.close().await;
    // Enrolment starts over.
    mfa::enroll(&db.store, ck, admin).await.unwrap();
}
on_both!(only_an_administrator_resets_mfa);

/// Enrols `session`'s operator and confirms with a code of the current step; returns the secret.
async fn enrol(db: &TestDb, session: &Session) -> Vec<u8> {
    let ck = session.credential.as_ref().expect("credential key");
    let e = mfa::enroll(&db.store, ck, &session.actor).await.unwrap();
    let secret = secret_of(&e);
    mfa::confirm(
        &db.store,
        ck,
        &session.actor,
        &mfa::code_at(&secret, step_now(), 6),
    )
    .await
    .unwrap();
    secret
}

/// Signs in at `at` on the machine of `keystore` (or none) and finishes MFA with `code`.
async fn sign_in_with_code(
    db: &TestDb,
    keystore: Option<&dyn keys::keystore::Keystore>,
    username: &str,
    password: &str,
    code: &str,
    at: Timestamp,
) -> Result<Session, LoginError> {
    let src = LoginSource::default();
    match auth::login_at(
        &db.store,
        keystore,
        username,
        password,
        &src,
        &vigil::auth::MfaPolicy::none(),
        at,
    )
    .await?
    {
        LoginOutcome::MfaRequired(c) => {
            let token = c.token().to_owned();
            auth::finish_mfa_at(&db.store, c, &token, code, at).await
        }
        LoginOutcome::SignedIn(_) => panic!("{username} signed in without a second factor"),
    }
}

/// `minutes` from now, in the middle of a TOTP step.
fn later(minutes: u64) -> Timestamp {
    at_step(step_now() + 2 * minutes)
}

async fn no_data_key_and_no_other_operator_opens_a_totp_secret(db: TestDb) {
    let admin = admin_session(&db).await;
    let admin_ring = admin.keys.as_ref().unwrap();
    let secret = enrol(&db, &admin).await;
    // A moderator on their own machine, holding every data key an administrator can grant.
    let moderator = common::operator_with_role(&db, "mo-moderator", "moderator").await;
    let (mo_keystore, _dir) = common::keystore();
    let mo = sign_in_with(&db, &mo_keystore, "mo-moderator", PASSWORD).await;
    keys::grant(&db.store, admin_ring, &admin.actor, "mo-moderator")
        .await
        .unwrap();
    let mo_ring = mo.keys.as_ref().unwrap();

    let raw = db.raw().await;
    let sealed: Vec<u8> = sqlx::query_scalar("SELECT secret_enc FROM mfa_secrets")
        .fetch_one(&raw)
        .await
        .unwrap();
    // No shared TOTP (or token-signing) data key exists any more.
    assert_eq!(
        count(
            &raw,
            "SELECT COUNT(*) FROM data_keys WHERE purpose IN ('totp', 'jwt')"
        )
        .await,
        0
    );
    raw.close().await;
    let row = admin.actor.user_id().to_string();
    let place = Place::new("mfa_secrets", "secret_enc", &row);
    let mut tried = 0;
    for ring in [mo_ring, admin_ring] {
        for purpose in Purpose::ALL {
            for version in keys::live_versions(&db.store, purpose).await.unwrap() {
                // Every data key this operator's role holds (a moderator holds no `contact`).
                let key = match ring.key(&db.store, purpose, version).await {
                    Ok(key) => key,
                    Err(keys::KeyError::NotGranted(..)) => continue,
                    Err(e) => panic!("{e}"),
                };
                assert!(field::open(&key, &place, &sealed).is_err(), "{purpose}");
                // Whatever version the field names.
                let named = field::key_version(&sealed).unwrap();
                assert_eq!(named, KeyVersion(0), "no data key version sealed it");
                tried += 1;
            }
        }
    }
    assert!(tried >= 2 * Purpose::ALL.len() - 1, "{tried}");
    assert!(!sealed.windows(secret.len()).any(|w| w == secret.as_slice()));
    // The moderator's own credential key and key ring do not open it either.
    let code = mfa::code_at(&secret, step_now() + 4, 6);
    assert!(matches!(
        mfa::verify(
            &db.store,
            mo.credential.as_ref(),
            Some(mo_ring),
            admin.actor.user_id(),
            &code,
            at_step(step_now() + 4)
        )
        .await,
        Err(MfaError::SecretUnavailable)
    ));
    // Its owner's does.
    mfa::verify(
        &db.store,
        admin.credential.as_ref(),
        None,
        admin.actor.user_id(),
        &code,
        at_step(step_now() + 4),
    )
    .await
    .unwrap();
    drop(moderator);
}
on_both!(no_data_key_and_no_other_operator_opens_a_totp_secret);

async fn the_secret_follows_a_password_change_to_every_machine(db: TestDb) {
    let admin = admin_session(&db).await;
    let secret = enrol(&db, &admin).await;
    let raw = db.raw().await;
    let old_hash: String = sqlx::query_scalar("SELECT password_hash FROM credentials")
        .fetch_one(&raw)
        .await
        .unwrap();
    let new_pw = "a different long passphrase";
    auth::change_password(
        &db.store,
        &db.keystore,
        &admin.actor,
        admin.keys.as_ref().unwrap(),
        None,
        PASSWORD,
        new_pw,
    )
    .await
    .unwrap();

    // The new password opens it, on this machine and on one that holds no key pair of theirs.
    let code = |at: Timestamp| mfa::code_at(&secret, at.micros() as u64 / 1_000_000 / 30, 6);
    let t = later(1);
    let here = sign_in_with_code(&db, Some(&db.keystore), "root-admin", new_pw, &code(t), t)
        .await
        .unwrap();
    assert!(here.keys.is_some() && here.credential.is_some());
    let (elsewhere, _dir) = common::keystore();
    let t = later(2);
    let there = sign_in_with_code(&db, Some(&elsewhere), "root-admin", new_pw, &code(t), t)
        .await
        .unwrap();
    assert!(there.keys.is_none(), "no key pair on the other machine");
    let t = later(3);
    sign_in_with_code(&db, None, "root-admin", new_pw, &code(t), t)
        .await
        .unwrap();

    // The old password does not: with the old hash put back behind Vigil's back, the password
    // step passes but the credential key, sealed with the new password only, stays shut.
    sqlx::query("UPDATE credentials SET password_hash = $1")
        .bind(&old_hash)
        .execute(&raw)
        .await
        .unwrap();
    let t = later(4);
    assert!(matches!(
        sign_in_with_code(&db, None, "root-admin", PASSWORD, &code(t), t).await,
        Err(LoginError::Mfa(MfaError::SecretUnavailable))
    ));
    raw.close().await;
}
on_both!(the_secret_follows_a_password_change_to_every_machine);

async fn a_password_reset_removes_mfa_until_the_operator_enrols_again(db: TestDb) {
    let admin = admin_session(&db).await;
    let _bob = common::operator_with_role(&db, "bob-officer", "compliance_officer").await;
    let (bob_keystore, _dir) = common::keystore();
    let bob = sign_in_with(&db, &bob_keystore, "bob-officer", PASSWORD).await;
    let secret = enrol(&db, &bob).await;
    let codes = mfa::regenerate_backup_codes(&db.store, &bob.actor)
        .await
        .unwrap();

    let report = auth::reset_password(
        &db.store,
        &admin.actor,
        "bob-officer",
        "temporary passphrase 1",
    )
    .await
    .unwrap();
    assert!(report.mfa_removed);
    assert_eq!(report.key_pairs_retired, 1);
    assert!(!mfa::is_enabled(&db.store, bob.actor.user_id())
        .await
        .unwrap());
    let raw = db.raw().await;
    for sql in [
        "SELECT COUNT(*) FROM mfa_secrets",
        "SELECT COUNT(*) FROM backup_codes",
        "SELECT COUNT(*) FROM credentials c JOIN users u ON u.id = c.user_id \
         WHERE u.username = 'bob-officer' AND c.credential_key_sealed IS NOT NULL",
    ] {
        assert_eq!(count(&raw, sql).await, 0, "{sql}");
    }
    assert_eq!(
        count(
            &raw,
            "SELECT COUNT(*) FROM audit_log WHERE action = 'operator.password_reset' \
             AND details LIKE '%\"mfa_removed\":true%'"
        )
        .await,
        1
    );
    raw.close().await;

    // With the temporary password there is no second factor to give, and no credential key to
    // enrol with: the administrator knows that password.
    let temp = sign_in_with(&db, &bob_keystore, "bob-officer", "temporary passphrase 1").await;
    assert!(temp.must_change_password && temp.credential.is_none());
    assert!(mfa::verify(
        &db.store,
        None,
        None,
        bob.actor.user_id(),
        &codes[0],
        Timestamp::now()
    )
    .await
    .is_err());
    let _ = secret;
    // Choosing a new password gives a fresh credential key, and enrolment starts over.
    let fresh = auth::change_password(
        &db.store,
        &bob_keystore,
        &temp.actor,
        temp.keys.as_ref().unwrap(),
        None,
        "temporary passphrase 1",
        "bob's own new passphrase",
    )
    .await
    .unwrap()
    .credential;
    mfa::enroll(&db.store, &fresh, &temp.actor).await.unwrap();
}
on_both!(a_password_reset_removes_mfa_until_the_operator_enrols_again);

/// Wraps `key` as version 1 of the retired shared `totp` data key for `ring`'s key pair, as
/// Vigil's grants did before per-operator sealing.
async fn grant_the_old_key(db: &TestDb, key: &SymmetricKey, ring: &keys::KeyRing) {
    let raw = db.raw().await;
    sqlx::query(
        "INSERT INTO data_keys (id, purpose, version, status, created_at) \
         SELECT $1, 'totp', 1, 'active', 0 WHERE NOT EXISTS \
         (SELECT 1 FROM data_keys WHERE purpose = 'totp')",
    )
    .bind(uuid::Uuid::now_v7().to_string())
    .execute(&raw)
    .await
    .unwrap();
    let dk: String = sqlx::query_scalar("SELECT id FROM data_keys WHERE purpose = 'totp'")
        .fetch_one(&raw)
        .await
        .unwrap();
    let wrapped = ring
        .public_key()
        .encrypt("vigil-data-key-v1:totp:1", key.expose())
        .unwrap();
    sqlx::query(
        "INSERT INTO key_grants (data_key_id, user_key_id, wrapped_key, granted_at) \
         VALUES ($1, $2, $3, 0)",
    )
    .bind(&dk)
    .bind(ring.key_pair_id())
    .bind(wrapped)
    .execute(&raw)
    .await
    .unwrap();
    raw.close().await;
}

/// Stores `secret` as `user`'s confirmed TOTP secret sealed with `key` as the old shared
/// `totp` key version 1.
async fn seal_the_old_way(db: &TestDb, key: &SymmetricKey, user: &str, secret: &[u8]) {
    let raw = db.raw().await;
    let sealed = field::seal(
        key,
        KeyVersion(1),
        &Place::new("mfa_secrets", "secret_enc", user),
        secret,
    );
    sqlx::query(
        "INSERT INTO mfa_secrets (user_id, secret_enc, key_version, sealed_with, created_at, \
         confirmed_at) VALUES ($1, $2, 1, 'totp_data_key', 0, 0)",
    )
    .bind(user)
    .bind(sealed)
    .execute(&raw)
    .await
    .unwrap();
    sqlx::query("UPDATE users SET mfa_enabled = $1 WHERE id = $2")
        .bind(true)
        .bind(user)
        .execute(&raw)
        .await
        .unwrap();
    raw.close().await;
}

async fn a_secret_under_the_retired_shared_key_is_resealed_at_its_owners_sign_in(db: TestDb) {
    let admin = admin_session(&db).await;
    let admin_ring = admin.keys.as_ref().unwrap();
    let _bob = common::operator_with_role(&db, "bob-officer", "compliance_officer").await;
    let (bob_keystore, _dir) = common::keystore();
    let bob = sign_in_with(&db, &bob_keystore, "bob-officer", PASSWORD).await;
    let bob_ring = bob.keys.as_ref().unwrap();
    let admin_id = admin.actor.user_id().to_string();
    let bob_id = bob.actor.user_id().to_string();
    // Both secrets were sealed with the old shared key; only the administrator's key pair holds
    // it for now.
    let old = SymmetricKey::random();
    grant_the_old_key(&db, &old, admin_ring).await;
    let (secret, bob_secret) = ([3u8; 20], [5u8; 20]);
    seal_the_old_way(&db, &old, &admin_id, &secret).await;
    seal_the_old_way(&db, &old, &bob_id, &bob_secret).await;
    let code = |s: &[u8], at: Timestamp| mfa::code_at(s, at.micros() as u64 / 1_000_000 / 30, 6);

    // The administrator signs in with a code: the old key opens it once, and it is re-sealed.
    let t = later(1);
    sign_in_with_code(
        &db,
        Some(&db.keystore),
        "root-admin",
        PASSWORD,
        &code(&secret, t),
        t,
    )
    .await
    .unwrap();
    let raw = db.raw().await;
    assert_eq!(
        count(
            &raw,
            &format!(
                "SELECT COUNT(*) FROM mfa_secrets WHERE user_id = '{admin_id}' \
                 AND sealed_with = 'credential_key' AND key_version = 0"
            )
        )
        .await,
        1
    );
    assert_eq!(
        count(
            &raw,
            "SELECT COUNT(*) FROM audit_log WHERE action = 'mfa.secret_resealed'"
        )
        .await,
        1
    );
    // From now on it needs no key pair at all.
    let t = later(2);
    sign_in_with_code(&db, None, "root-admin", PASSWORD, &code(&secret, t), t)
        .await
        .unwrap();

    // Bob's key pair does not hold the old key: his code cannot be checked, and he is told to
    // use a backup code and have his MFA reset. The old key stays while his secret needs it.
    let t = later(3);
    let refused = sign_in_with_code(
        &db,
        Some(&bob_keystore),
        "bob-officer",
        PASSWORD,
        &code(&bob_secret, t),
        t,
    )
    .await
    .unwrap_err();
    assert!(matches!(
        refused,
        LoginError::Mfa(MfaError::SecretUnavailable)
    ));
    assert!(refused.to_string().contains("backup code"), "{refused}");
    assert_eq!(
        count(
            &raw,
            "SELECT COUNT(*) FROM data_keys WHERE purpose = 'totp'"
        )
        .await,
        1
    );
    // Had his machine held it, the last old secret is re-sealed and the old key is gone.
    grant_the_old_key(&db, &old, bob_ring).await;
    let t = later(4);
    sign_in_with_code(
        &db,
        Some(&bob_keystore),
        "bob-officer",
        PASSWORD,
        &code(&bob_secret, t),
        t,
    )
    .await
    .unwrap();
    for sql in [
        "SELECT COUNT(*) FROM data_keys WHERE purpose = 'totp'",
        "SELECT COUNT(*) FROM mfa_secrets WHERE sealed_with = 'totp_data_key'",
    ] {
        assert_eq!(count(&raw, sql).await, 0, "{sql}");
    }
    raw.close().await;
}
on_both!(a_secret_under_the_retired_shared_key_is_resealed_at_its_owners_sign_in);
