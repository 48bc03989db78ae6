//! The `[auth] require_mfa` policy, on both databases: an operator whose role requires MFA and
//! who has none signs in held at enrolment. The core refuses such an actor every permission
//! (not only the screens), enrolling and confirming still work, and once MFA is on the operator
//! proceeds; an administrator's MFA reset sends the next sign-in back to enrolment.

mod common;

use common::{count, operator_with_role, TestDb, PASSWORD};
use vigil::auth::{
    self, users, LoginOutcome, LoginSource, MfaPolicy, PasswordChangeError, Session,
};
use vigil::config::DEFAULT_REQUIRE_MFA;
use vigil::mfa::{self, STEP_SECONDS};
use vigil::rbac::{self, Permission, Role};
use vigil::store::Timestamp;

fn default_policy() -> MfaPolicy {
    MfaPolicy::roles(&DEFAULT_REQUIRE_MFA)
}

fn step_now() -> u64 {
    Timestamp::now().micros() as u64 / 1_000_000 / STEP_SECONDS
}

async fn login(db: &TestDb, username: &str, policy: &MfaPolicy) -> LoginOutcome {
    auth::login(
        &db.store,
        Some(&db.keystore),
        username,
        PASSWORD,
        &LoginSource::default(),
        policy,
    )
    .await
    .expect("password step")
}

async fn signed_in(db: &TestDb, username: &str, policy: &MfaPolicy) -> Session {
    match login(db, username, policy).await {
        LoginOutcome::SignedIn(s) => s,
        LoginOutcome::MfaRequired(_) => panic!("{username} owes a code"),
    }
}

/// Enrols and confirms MFA for the operator of `session`; returns the secret.
async fn enrol(db: &TestDb, session: &Session) -> Vec<u8> {
    let ck = session.credential.as_ref().expect("credential key");
    let e = mfa::enroll(&db.store, ck, &session.actor)
        .await
        .expect("enrolment is open to a held operator");
    let secret = totp_rs::Secret::Encoded(e.secret_base32.clone())
        .to_bytes()
        .unwrap();
    mfa::confirm(
        &db.store,
        ck,
        &session.actor,
        &mfa::code_at(&secret, step_now(), 6),
    )
    .await
    .expect("confirm");
    secret
}

fn held(e: &PasswordChangeError) -> bool {
    matches!(e, PasswordChangeError::Forbidden(f) if f.mfa_enrolment_required)
}

async fn an_administrator_without_mfa_can_do_nothing_but_enrol(db: TestDb) {
    let _ = common::admin(&db).await;
    let policy = default_policy();
    let session = signed_in(&db, "root-admin", &policy).await;
    let actor = &session.actor;
    assert!(actor.must_enrol_mfa());

    // Every permission is refused in the core, whatever the roles allow.
    for p in Permission::ALL {
        let e = rbac::require(&db.store, actor, p).await.unwrap_err();
        assert!(e.mfa_enrolment_required, "{p:?}");
        assert!(e.to_string().contains("MFA enrolment required"), "{e}");
    }
    // Real operations, as a script calling the library would try them: refused, nothing done.
    let e = users::list(&db.store, actor, &users::AccountFilter::default())
        .await
        .unwrap_err();
    assert!(held(&e), "{e}");
    let e = users::create(
        &db.store,
        actor,
        "new-officer",
        "temporary passphrase 1",
        &[Role::ComplianceOfficer],
    )
    .await
    .unwrap_err();
    assert!(held(&e), "{e}");
    let e = users::sessions(&db.store, actor, true).await.unwrap_err();
    assert!(held(&e), "{e}");
    assert!(vigil::audit::verify(&db.store, actor).await.is_err());
    assert!(mfa::reset(&db.store, actor, "root-admin").await.is_err());
    let raw = db.raw().await;
    assert_eq!(count(&raw, "SELECT COUNT(*) FROM users").await, 1);

    // Re-reading the account keeps the hold; so does another sign-in, over either entry point.
    assert!(auth::recheck(&db.store, actor)
        .await
        .unwrap()
        .must_enrol_mfa());
    assert!(signed_in(&db, "root-admin", &policy)
        .await
        .actor
        .must_enrol_mfa());
    assert!(
        auth::authenticate(&db.store, "root-admin", PASSWORD, &policy)
            .await
            .unwrap()
            .must_enrol_mfa()
    );

    // Enrolment is open, and once MFA is on the operator proceeds.
    let secret = enrol(&db, &session).await;
    let released = auth::recheck(&db.store, actor).await.unwrap();
    assert!(!released.must_enrol_mfa());
    assert_eq!(
        users::list(&db.store, &released, &users::AccountFilter::default())
            .await
            .unwrap()
            .len(),
        1
    );
    users::create(
        &db.store,
        &released,
        "new-officer",
        "temporary passphrase 1",
        &[Role::ComplianceOfficer],
    )
    .await
    .unwrap();
    // The next sign-in owes a code, and the session it gives is not held.
    let LoginOutcome::MfaRequired(c) = login(&db, "root-admin", &policy).await else {
        panic!("MFA is on: a code is owed");
    };
    let token = c.token().to_owned();
    let next_step = step_now() + 1;
    let s = auth::finish_mfa_at(
        &db.store,
        c,
        &token,
        &mfa::code_at(&secret, next_step, 6),
        Timestamp::from_micros((next_step * STEP_SECONDS * 1_000_000) as i64 + 1_000_000),
    )
    .await
    .unwrap();
    assert!(!s.actor.must_enrol_mfa());
    assert!(rbac::require(&db.store, &s.actor, Permission::UsersManage)
        .await
        .is_ok());
}
on_both!(an_administrator_without_mfa_can_do_nothing_but_enrol);

async fn the_policy_names_the_roles_it_holds(db: TestDb) {
    let _ = common::admin(&db).await;
    let _ = operator_with_role(&db, "mo-moderator", "moderator").await;
    let _ = operator_with_role(&db, "olive-officer", "compliance_officer").await;
    // The default covers administrators and compliance officers, not moderators.
    let policy = default_policy();
    assert!(signed_in(&db, "olive-officer", &policy)
        .await
        .actor
        .must_enrol_mfa());
    let moderator = signed_in(&db, "mo-moderator", &policy).await.actor;
    assert!(!moderator.must_enrol_mfa());
    assert!(
        rbac::require(&db.store, &moderator, Permission::IncidentsRead)
            .await
            .is_ok()
    );
    // A list naming moderators holds them; `none` holds nobody.
    let moderators = MfaPolicy::roles(&[Role::Moderator]);
    assert!(signed_in(&db, "mo-moderator", &moderators)
        .await
        .actor
        .must_enrol_mfa());
    assert!(!signed_in(&db, "root-admin", &moderators)
        .await
        .actor
        .must_enrol_mfa());
    for name in ["root-admin", "olive-officer", "mo-moderator"] {
        assert!(
            !signed_in(&db, name, &MfaPolicy::none())
                .await
                .actor
                .must_enrol_mfa(),
            "{name}"
        );
    }
}
on_both!(the_policy_names_the_roles_it_holds);

async fn after_an_mfa_reset_the_next_sign_in_goes_to_enrolment(db: TestDb) {
    let admin = common::admin(&db).await;
    let _ = operator_with_role(&db, "olive-officer", "compliance_officer").await;
    let policy = default_policy();
    let officer = signed_in(&db, "olive-officer", &policy).await;
    assert!(officer.actor.must_enrol_mfa());
    enrol(&db, &officer).await;
    assert!(matches!(
        login(&db, "olive-officer", &policy).await,
        LoginOutcome::MfaRequired(_)
    ));
    // A lost device: the administrator resets the officer's MFA.
    mfa::reset(&db.store, &admin, "olive-officer")
        .await
        .unwrap();
    // The session held before is not released by it (it ended, and MFA is off again)...
    assert!(auth::recheck(&db.store, &officer.actor)
        .await
        .unwrap()
        .must_enrol_mfa());
    // ...and the next sign-in goes straight to enrolment, without a code.
    let again = signed_in(&db, "olive-officer", &policy).await;
    assert!(again.actor.must_enrol_mfa());
    assert!(rbac::require(&db.store, &again.actor, Permission::DsrRead)
        .await
        .is_err());
    enrol(&db, &again).await;
    assert!(!auth::recheck(&db.store, &again.actor)
        .await
        .unwrap()
        .must_enrol_mfa());
}
on_both!(after_an_mfa_reset_the_next_sign_in_goes_to_enrolment);
