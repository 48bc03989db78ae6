//! Operator accounts managed by an administrator, on both databases.

mod common;

use common::{admin_keys, count, TestDb};
use vigil::auth::users::{self, AccountFilter};
use vigil::auth::{self, tokens, LoginError, LoginOutcome, LoginSource, PasswordChangeError};
use vigil::rbac::Role;

const TEMP: &str = "temporary passphrase 7";

async fn sign_in(db: &TestDb, name: &str, pw: &str) -> Result<auth::Session, LoginError> {
    match auth::login(
        &db.store,
        Some(&db.keystore),
        name,
        pw,
        &LoginSource::default(),
    )
    .await?
    {
        LoginOutcome::SignedIn(s) => Ok(s),
        LoginOutcome::MfaRequired(_) => panic!("no MFA here"),
    }
}

async fn administrators_manage_operators(db: TestDb) {
    let (admin, ring) = admin_keys(&db).await;
    let id = users::create(
        &db.store,
        &admin,
        "carol-officer",
        TEMP,
        &[Role::ComplianceOfficer],
    )
    .await
    .unwrap();
    assert!(matches!(
        users::create(&db.store, &admin, "carol-officer", TEMP, &[]).await,
        Err(PasswordChangeError::Exists(_))
    ));
    assert!(matches!(
        users::create(&db.store, &admin, "dave-mod", "password", &[]).await,
        Err(PasswordChangeError::Rejected(_))
    ));
    let moderator = common::operator_with_role(&db, "mod-one", "moderator").await;
    assert!(matches!(
        users::create(&db.store, &moderator, "eve-admin", TEMP, &[Role::Admin]).await,
        Err(PasswordChangeError::Forbidden(_))
    ));

    // The new operator must change the temporary password; their key pair is made here at
    // their first sign-in.
    let carol = sign_in(&db, "carol-officer", TEMP).await.unwrap();
    assert!(carol.must_change_password);
    assert_eq!(carol.actor.user_id(), id);
    assert!(carol.keys.is_some());

    let shown = users::show(&db.store, &admin, "carol-officer")
        .await
        .unwrap();
    assert_eq!(shown.roles, ["compliance_officer"]);
    assert!(!shown.mfa_enabled);
    let officers = users::list(
        &db.store,
        &admin,
        &AccountFilter {
            role: Some(Role::ComplianceOfficer),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(
        officers
            .iter()
            .map(|a| a.username.as_str())
            .collect::<Vec<_>>(),
        ["carol-officer"]
    );
    let page = users::list(
        &db.store,
        &admin,
        &AccountFilter {
            limit: Some(2),
            offset: Some(1),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(
        page.iter().map(|a| a.username.as_str()).collect::<Vec<_>>(),
        ["mod-one", "root-admin"]
    );

    // Roles change at the next token verification.
    let pair = tokens::issue(&db.store, &ring, &carol, "test")
        .await
        .unwrap();
    users::set_roles(&db.store, &admin, "carol-officer", &[Role::Moderator])
        .await
        .unwrap();
    assert!(
        tokens::verify_access_token(&db.store, &ring, &pair.access_token)
            .await
            .is_err()
    );
    assert!(matches!(
        users::set_roles(&db.store, &admin, "root-admin", &[Role::Moderator]).await,
        Err(PasswordChangeError::LastAdmin)
    ));

    // Suspension ends sessions at once and refuses sign-in; reinstating restores it.
    let carol = sign_in(&db, "carol-officer", TEMP).await.unwrap();
    let pair = tokens::issue(&db.store, &ring, &carol, "test")
        .await
        .unwrap();
    assert!(matches!(
        users::set_suspended(&db.store, &admin, "root-admin", true).await,
        Err(PasswordChangeError::ResetSelf)
    ));
    users::set_suspended(&db.store, &admin, "carol-officer", true)
        .await
        .unwrap();
    assert!(matches!(
        sign_in(&db, "carol-officer", TEMP).await,
        Err(LoginError::NotActive(_))
    ));
    assert!(matches!(
        tokens::refresh(&db.store, &ring, &pair.refresh_token).await,
        Err(tokens::TokenError::Reused)
    ));
    users::set_suspended(&db.store, &admin, "carol-officer", false)
        .await
        .unwrap();
    let carol = sign_in(&db, "carol-officer", TEMP).await.unwrap();

    // Sessions: one's own, or everyone's for an administrator.
    let mine = tokens::issue(&db.store, &ring, &carol, "test")
        .await
        .unwrap();
    let listed = users::sessions(&db.store, &carol.actor, false)
        .await
        .unwrap();
    assert!(listed.iter().all(|s| s.username == "carol-officer"));
    assert!(matches!(
        users::sessions(&db.store, &carol.actor, true).await,
        Err(PasswordChangeError::Forbidden(_))
    ));
    let admin_session = sign_in(&db, "root-admin", common::PASSWORD).await.unwrap();
    let theirs = tokens::issue(&db.store, &ring, &admin_session, "test")
        .await
        .unwrap();
    assert!(matches!(
        users::revoke_session(&db.store, &carol.actor, &theirs.session_id).await,
        Err(PasswordChangeError::Forbidden(_))
    ));
    users::revoke_session(&db.store, &carol.actor, &mine.session_id)
        .await
        .unwrap();
    users::revoke_session(&db.store, &admin, &theirs.session_id)
        .await
        .unwrap();

    // After a reset retires Carol's key pair, her next sign-in makes a new one here.
    let before = carol.keys.as_ref().unwrap().public_key().fingerprint();
    auth::reset_password(&db.store, &admin, "carol-officer", "another temporary one")
        .await
        .unwrap();
    let again = sign_in(&db, "carol-officer", "another temporary one")
        .await
        .unwrap();
    assert!(again.must_change_password);
    let after = again
        .keys
        .as_ref()
        .expect("a new key pair")
        .public_key()
        .fingerprint();
    assert_ne!(before, after);

    let raw = db.raw().await;
    for action in [
        "operator.created",
        "operator.roles_changed",
        "operator.suspended",
        "operator.reinstated",
        "session.revoked",
    ] {
        assert!(
            count(
                &raw,
                &format!("SELECT COUNT(*) FROM audit_log WHERE action = '{action}'")
            )
            .await
                >= 1,
            "{action}"
        );
    }
    raw.close().await;
}
on_both!(administrators_manage_operators);
