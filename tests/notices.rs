//! Notices (issue 19, item 10), on both databases: each credential change tells the operator,
//! in the app (pending until dismissed) and in the outbox for mail delivery; an operator sees
//! and dismisses only their own.

mod common;

use common::{count, keystore, operator_with_role, sign_in_with, TestDb, PASSWORD};
use vigil::auth;
use vigil::mfa::{self, STEP_SECONDS};
use vigil::notices::{self, NoticeKind};
use vigil::store::Timestamp;

const NEW_PASSWORD: &str = "a brand new passphrase 9";

fn step_now() -> u64 {
    Timestamp::now().micros() as u64 / 1_000_000 / STEP_SECONDS
}

async fn kinds(db: &TestDb, actor: &auth::Actor) -> Vec<NoticeKind> {
    notices::pending(&db.store, actor)
        .await
        .unwrap()
        .into_iter()
        .map(|n| n.kind)
        .collect()
}

async fn queued(db: &TestDb, user: &auth::Actor, kind: NoticeKind) -> i64 {
    let raw = db.raw().await;
    let n = count(
        &raw,
        &format!(
            "SELECT COUNT(*) FROM notifications WHERE kind = 'operator_notice' \
             AND recipient_id = '{}' AND state = 'queued' AND template = 'operator_notice/{}' \
             AND next_attempt_at IS NOT NULL",
            user.user_id(),
            kind
        ),
    )
    .await;
    raw.close().await;
    n
}

async fn each_credential_change_tells_the_operator(db: TestDb) {
    let admin = common::admin(&db).await;
    let _ = operator_with_role(&db, "olive-officer", "compliance_officer").await;
    // The first sign-in makes the key pair on this machine: not a new machine.
    let s = sign_in_with(&db, &db.keystore, "olive-officer", PASSWORD).await;
    let officer = s.actor.clone();
    assert!(kinds(&db, &officer).await.is_empty());

    // A password change.
    let ring = s.keys.as_ref().unwrap();
    auth::change_password(
        &db.store,
        &db.keystore,
        &officer,
        ring,
        None,
        PASSWORD,
        NEW_PASSWORD,
    )
    .await
    .unwrap();
    assert_eq!(kinds(&db, &officer).await, [NoticeKind::PasswordChanged]);

    // MFA enabled, then new backup codes.
    let s = sign_in_with(&db, &db.keystore, "olive-officer", NEW_PASSWORD).await;
    let ck = s.credential.as_ref().unwrap();
    let e = mfa::enroll(&db.store, ck, &officer).await.unwrap();
    let secret = totp_rs::Secret::Encoded(e.secret_base32.clone())
        .to_bytes()
        .unwrap();
    mfa::confirm(
        &db.store,
        ck,
        &officer,
        &mfa::code_at(&secret, step_now(), 6),
    )
    .await
    .unwrap();
    mfa::regenerate_backup_codes(&db.store, &officer)
        .await
        .unwrap();

    // An administrator resets the MFA, then the password (after the officer enrolled again, so
    // the reset also turns MFA off).
    mfa::reset(&db.store, &admin, "olive-officer")
        .await
        .unwrap();
    let e = mfa::enroll(&db.store, ck, &officer).await.unwrap();
    let secret = totp_rs::Secret::Encoded(e.secret_base32.clone())
        .to_bytes()
        .unwrap();
    mfa::confirm(
        &db.store,
        ck,
        &officer,
        &mfa::code_at(&secret, step_now() + 1, 6),
    )
    .await
    .unwrap();
    let report = auth::reset_password(&db.store, &admin, "olive-officer", "temporary passphrase 1")
        .await
        .unwrap();
    assert!(report.mfa_removed);

    let pending = notices::pending(&db.store, &officer).await.unwrap();
    let got: Vec<NoticeKind> = pending.iter().map(|n| n.kind).collect();
    for kind in [
        NoticeKind::PasswordChanged,
        NoticeKind::MfaEnabled,
        NoticeKind::BackupCodesRegenerated,
        NoticeKind::MfaReset,
        NoticeKind::PasswordReset,
        NoticeKind::MfaDisabled,
    ] {
        assert!(got.contains(&kind), "{kind} missing from {got:?}");
        assert!(queued(&db, &officer, kind).await >= 1, "{kind} not queued");
    }
    // Who made a change is named when it was someone else; messages carry no secret.
    let reset = pending
        .iter()
        .find(|n| n.kind == NoticeKind::MfaReset)
        .unwrap();
    assert_eq!(reset.by.as_deref(), Some("root-admin"));
    let own = pending
        .iter()
        .find(|n| n.kind == NoticeKind::PasswordChanged)
        .unwrap();
    assert_eq!(own.by, None);
    let raw = db.raw().await;
    let payloads: Vec<String> =
        sqlx::query_scalar("SELECT payload FROM notifications WHERE kind = 'operator_notice'")
            .fetch_all(&raw)
            .await
            .unwrap();
    assert!(payloads
        .iter()
        .all(|p| !p.contains(NEW_PASSWORD) && !p.contains("temporary passphrase")));
    // Nobody else was told.
    assert!(kinds(&db, &admin).await.is_empty());
}
on_both!(each_credential_change_tells_the_operator);

async fn a_sign_in_from_a_machine_without_their_key_pair_tells_them(db: TestDb) {
    let _ = common::admin(&db).await;
    let first = sign_in_with(&db, &db.keystore, "root-admin", PASSWORD).await;
    assert!(kinds(&db, &first.actor).await.is_empty());
    // Another machine: its keystore has no key pair for them.
    let (other, _dir) = keystore();
    let s = match auth::login(
        &db.store,
        Some(&other),
        "root-admin",
        PASSWORD,
        &auth::LoginSource {
            ip: Some("203.0.113.9".into()),
            user_agent: Some("vigil-cli/test".into()),
        },
        &auth::MfaPolicy::none(),
    )
    .await
    .unwrap()
    {
        auth::LoginOutcome::SignedIn(s) => s,
        auth::LoginOutcome::MfaRequired(_) => unreachable!(),
    };
    assert!(s.keys.is_none());
    let pending = notices::pending(&db.store, &s.actor).await.unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].kind, NoticeKind::NewMachine);
    assert_eq!(pending[0].client.as_deref(), Some("vigil-cli/test"));
    assert_eq!(queued(&db, &s.actor, NoticeKind::NewMachine).await, 1);
    // No address is kept with it.
    let raw = db.raw().await;
    assert_eq!(
        count(
            &raw,
            "SELECT COUNT(*) FROM notifications WHERE payload LIKE '%203.0.113%'"
        )
        .await,
        0
    );
    // The same machine again is not new.
    let _ = sign_in_with(&db, &db.keystore, "root-admin", PASSWORD).await;
    assert_eq!(kinds(&db, &s.actor).await.len(), 1);
}
on_both!(a_sign_in_from_a_machine_without_their_key_pair_tells_them);

async fn an_operator_dismisses_only_their_own_notices(db: TestDb) {
    let admin = common::admin(&db).await;
    let _ = operator_with_role(&db, "mo-moderator", "moderator").await;
    let s = sign_in_with(&db, &db.keystore, "mo-moderator", PASSWORD).await;
    let moderator = s.actor.clone();
    auth::change_password(
        &db.store,
        &db.keystore,
        &moderator,
        s.keys.as_ref().unwrap(),
        None,
        PASSWORD,
        NEW_PASSWORD,
    )
    .await
    .unwrap();
    auth::reset_password(&db.store, &admin, "mo-moderator", "temporary passphrase 1")
        .await
        .unwrap();
    let pending = notices::pending(&db.store, &moderator).await.unwrap();
    assert_eq!(pending.len(), 2);
    // Newest first.
    assert_eq!(pending[0].kind, NoticeKind::PasswordReset);
    // Another operator cannot dismiss them, by id or all at once.
    assert_eq!(
        notices::dismiss(&db.store, &admin, Some(&pending[0].id))
            .await
            .unwrap(),
        0
    );
    assert_eq!(notices::dismiss(&db.store, &admin, None).await.unwrap(), 0);
    assert_eq!(kinds(&db, &moderator).await.len(), 2);
    // The operator dismisses one, then the rest.
    assert_eq!(
        notices::dismiss(&db.store, &moderator, Some(&pending[0].id))
            .await
            .unwrap(),
        1
    );
    assert_eq!(kinds(&db, &moderator).await, [NoticeKind::PasswordChanged]);
    assert_eq!(
        notices::dismiss(&db.store, &moderator, None).await.unwrap(),
        1
    );
    assert!(kinds(&db, &moderator).await.is_empty());
    // Dismissing in the app leaves the outbox message for mail delivery.
    assert_eq!(queued(&db, &moderator, NoticeKind::PasswordReset).await, 1);
}
on_both!(an_operator_dismisses_only_their_own_notices);
