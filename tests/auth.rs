//! `vigil init`'s bootstrap and password sign-in.

mod common;

use common::{count, TestDb, PASSWORD};
use vigil::auth::{self, AuthError, BootstrapError, Password, Username};
use vigil::crypto::KeyBits;
use vigil::rbac::Role;

async fn bootstrap_once_then_refuse_without_change(db: TestDb) {
    assert!(!auth::is_initialised(&db.store).await.unwrap());
    let name = Username::parse("root-admin").unwrap();
    let pw = Password::parse_for_operator(PASSWORD, &name).unwrap();
    let id = auth::bootstrap_admin(&db.store, &db.keystore, &name, &pw, KeyBits::B2048)
        .await
        .unwrap();
    assert!(auth::is_initialised(&db.store).await.unwrap());

    let raw = db.raw().await;
    let users = count(&raw, "SELECT COUNT(*) FROM users").await;
    let entries = count(&raw, "SELECT COUNT(*) FROM audit_log").await;
    assert_eq!((users, entries), (1, 2));
    // One key pair, a data key at version 1 per purpose, each granted to it (the first
    // administrator holds every purpose).
    let purposes = vigil::keys::Purpose::ALL.len() as i64;
    assert_eq!(count(&raw, "SELECT COUNT(*) FROM user_keys").await, 1);
    assert_eq!(
        count(&raw, "SELECT COUNT(*) FROM data_keys WHERE version = 1").await,
        purposes
    );
    assert_eq!(
        count(&raw, "SELECT COUNT(*) FROM key_grants").await,
        purposes
    );
    // The stored credential is an argon2id PHC string, never the password.
    let hash: String = sqlx::query_scalar("SELECT password_hash FROM credentials")
        .fetch_one(&raw)
        .await
        .unwrap();
    assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
    assert!(!hash.contains(PASSWORD));

    let other = Username::parse("second-admin").unwrap();
    let pw2 = Password::parse_for_operator("another long passphrase", &other).unwrap();
    assert!(matches!(
        auth::bootstrap_admin(&db.store, &db.keystore, &other, &pw2, KeyBits::B2048).await,
        Err(BootstrapError::AlreadyInitialised)
    ));
    assert_eq!(count(&raw, "SELECT COUNT(*) FROM users").await, users);
    assert_eq!(count(&raw, "SELECT COUNT(*) FROM audit_log").await, entries);
    raw.close().await;

    let actor = auth::authenticate(
        &db.store,
        "root-admin",
        PASSWORD,
        &vigil::auth::MfaPolicy::none(),
    )
    .await
    .unwrap();
    assert_eq!(actor.user_id(), id);
    assert_eq!(actor.roles(), &[Role::Admin]);
}
on_both!(bootstrap_once_then_refuse_without_change);

async fn wrong_password_and_unknown_user_look_the_same(db: TestDb) {
    let _ = common::admin(&db).await;
    let wrong = auth::authenticate(
        &db.store,
        "root-admin",
        "not the password at all",
        &vigil::auth::MfaPolicy::none(),
    )
    .await
    .unwrap_err();
    let unknown = auth::authenticate(
        &db.store,
        "nobody-here",
        PASSWORD,
        &vigil::auth::MfaPolicy::none(),
    )
    .await
    .unwrap_err();
    let invalid_name = auth::authenticate(
        &db.store,
        "Not A Name",
        PASSWORD,
        &vigil::auth::MfaPolicy::none(),
    )
    .await
    .unwrap_err();
    for e in [&wrong, &unknown, &invalid_name] {
        assert!(matches!(e, AuthError::InvalidCredentials), "{e:?}");
    }
    assert_eq!(wrong.to_string(), unknown.to_string());
    assert!(!wrong.to_string().contains("root-admin"));
}
on_both!(wrong_password_and_unknown_user_look_the_same);

async fn suspended_and_mfa_accounts_cannot_sign_in_with_a_password_alone(db: TestDb) {
    let _ = common::admin(&db).await;
    let raw = db.raw().await;
    sqlx::query("UPDATE users SET status = 'suspended' WHERE username = 'root-admin'")
        .execute(&raw)
        .await
        .unwrap();
    assert!(matches!(
        auth::authenticate(&db.store, "root-admin", PASSWORD, &vigil::auth::MfaPolicy::none()).await,
        Err(AuthError::NotActive(s)) if s == "suspended"
    ));
    // A wrong password on a suspended account still says only "invalid".
    assert!(matches!(
        auth::authenticate(
            &db.store,
            "root-admin",
            "a wrong password here",
            &vigil::auth::MfaPolicy::none()
        )
        .await,
        Err(AuthError::InvalidCredentials)
    ));
    sqlx::query(
        "UPDATE users SET status = 'active', mfa_enabled = TRUE WHERE username = 'root-admin'",
    )
    .execute(&raw)
    .await
    .unwrap();
    assert!(matches!(
        auth::authenticate(
            &db.store,
            "root-admin",
            PASSWORD,
            &vigil::auth::MfaPolicy::none()
        )
        .await,
        Err(AuthError::MfaRequired)
    ));
    raw.close().await;
}
on_both!(suspended_and_mfa_accounts_cannot_sign_in_with_a_password_alone);
