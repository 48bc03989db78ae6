//! TOTP enrolment with QR codes, the replay guard, the ±1 step window, backup codes and the
//! administrator's reset, on both databases.

mod common;

use common::{admin_keys, count, TestDb};
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
    let (admin, ring) = admin_keys(&db).await;
    let e = mfa::enroll(&db.store, &ring, &admin).await.unwrap();
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
        mfa::confirm(&db.store, &ring, &admin, "000000").await,
        Err(MfaError::InvalidCode)
    ));
    assert!(!mfa::is_enabled(&db.store, admin.user_id()).await.unwrap());
    let code = mfa::code_at(&secret, step_now(), 6);
    let backup = mfa::confirm(&db.store, &ring, &admin, &code).await.unwrap();
    assert_eq!(backup.len(), 10);
    assert!(mfa::is_enabled(&db.store, admin.user_id()).await.unwrap());
    assert!(matches!(
        mfa::enroll(&db.store, &ring, &admin).await,
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
    let (admin, ring) = admin_keys(&db).await;
    let e = mfa::enroll(&db.store, &ring, &admin).await.unwrap();
    let secret = secret_of(&e);
    let n = step_now();
    mfa::confirm(&db.store, &ring, &admin, &mfa::code_at(&secret, n, 6))
        .await
        .unwrap();
    let user = admin.user_id();
    let later = n + 10;
    let verify = |code: String, at: Timestamp| {
        let (store, ring) = (db.store.clone(), &ring);
        async move { mfa::verify(&store, ring, user, &code, at).await }
    };
    // Two steps away either side: refused.
    for off in [later - 2, later + 2] {
        assert!(matches!(
            verify(mfa::code_at(&secret, off, 6), at_step(later)).await,
            Err(MfaError::InvalidCode)
        ));
    }
    // One step early is accepted; replaying it, or using an older step, is refused.
    verify(mfa::code_at(&secret, later - 1, 6), at_step(later))
        .await
        .unwrap();
    assert!(matches!(
        verify(mfa::code_at(&secret, later - 1, 6), at_step(later)).await,
        Err(MfaError::Replayed)
    ));
    verify(mfa::code_at(&secret, later, 6), at_step(later))
        .await
        .unwrap();
    assert!(matches!(
        verify(mfa::code_at(&secret, later, 6), at_step(later)).await,
        Err(MfaError::Replayed)
    ));
    // One step late (clock ahead) is accepted once.
    verify(mfa::code_at(&secret, later + 1, 6), at_step(later))
        .await
        .unwrap();
    assert!(matches!(
        verify(mfa::code_at(&secret, later + 1, 6), at_step(later + 1)).await,
        Err(MfaError::Replayed)
    ));
}
on_both!(each_code_once_within_one_step_either_side);

async fn backup_codes_work_once_and_regenerating_replaces_them(db: TestDb) {
    let (admin, ring) = admin_keys(&db).await;
    let user = admin.user_id();
    let e = mfa::enroll(&db.store, &ring, &admin).await.unwrap();
    let codes = mfa::confirm(
        &db.store,
        &ring,
        &admin,
        &mfa::code_at(&secret_of(&e), step_now(), 6),
    )
    .await
    .unwrap();
    let now = Timestamp::now();
    // Case and dashes do not matter; a code works once.
    let typed = codes[0].to_lowercase().replace('-', " ");
    mfa::verify(&db.store, &ring, user, &typed, now)
        .await
        .unwrap();
    assert!(matches!(
        mfa::verify(&db.store, &ring, user, &codes[0], now).await,
        Err(MfaError::InvalidCode)
    ));
    assert_eq!(mfa::backup_codes_left(&db.store, user).await.unwrap(), 9);
    assert!(matches!(
        mfa::verify(&db.store, &ring, user, "AAAA-BBBB-CCCC-DDDD", now).await,
        Err(MfaError::InvalidCode)
    ));

    let fresh = mfa::regenerate_backup_codes(&db.store, &admin)
        .await
        .unwrap();
    assert_eq!(mfa::backup_codes_left(&db.store, user).await.unwrap(), 10);
    assert!(matches!(
        mfa::verify(&db.store, &ring, user, &codes[1], now).await,
        Err(MfaError::InvalidCode)
    ));
    mfa::verify(&db.store, &ring, user, &fresh[3], now)
        .await
        .unwrap();
}
on_both!(backup_codes_work_once_and_regenerating_replaces_them);

async fn only_an_administrator_resets_mfa(db: TestDb) {
    let (admin, ring) = admin_keys(&db).await;
    let e = mfa::enroll(&db.store, &ring, &admin).await.unwrap();
    mfa::confirm(
        &db.store,
        &ring,
        &admin,
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
        mfa::reset(&db.store, &admin, "nobody-here").await,
        Err(MfaError::UnknownOperator(_))
    ));
    mfa::reset(&db.store, &admin, "root-admin").await.unwrap();
    assert!(!mfa::is_enabled(&db.store, admin.user_id()).await.unwrap());
    let raw = db.raw().await;
    assert_eq!(count(&raw, "SELECT COUNT(*) FROM mfa_secrets").await, 0);
    assert_eq!(count(&raw, "SELECT COUNT(*) FROM backup_codes").await, 0);
    raw.close().await;
    // Enrolment starts over.
    mfa::enroll(&db.store, &ring, &admin).await.unwrap();
}
on_both!(only_an_administrator_resets_mfa);
