//! Operator passwords on both databases: one Unicode form (NFC) on every path, so a password set
//! in one form signs in, unlocks its key pair and opens its credential key in the other; the
//! 128-character limit; and what a new operator is told about the password they must change.

mod common;

use common::TestDb;
use vigil::auth::{self, users, LoginError, LoginOutcome, LoginSource, Password, Username};
use vigil::crypto::KeyBits;
use vigil::rbac::Role;

/// "Zoë café crème brûlée 42", precomposed (NFC) and decomposed (NFD).
const ADMIN_NFC: &str = "Zo\u{eb} caf\u{e9} cr\u{e8}me br\u{fb}l\u{e9}e 42";
const ADMIN_NFD: &str = "Zoe\u{308} cafe\u{301} cre\u{300}me bru\u{302}le\u{301}e 42";
/// "Ångström señor naïve 7" in both forms.
const TEMP_NFC: &str = "\u{c5}ngstr\u{f6}m se\u{f1}or na\u{ef}ve 7";
const TEMP_NFD: &str = "A\u{30a}ngstro\u{308}m sen\u{303}or nai\u{308}ve 7";
/// "Ça déjà vu, über müde 9" in both forms.
const OWN_NFC: &str = "\u{c7}a d\u{e9}j\u{e0} vu, \u{fc}ber m\u{fc}de 9";
const OWN_NFD: &str = "C\u{327}a de\u{301}ja\u{300} vu, u\u{308}ber mu\u{308}de 9";

async fn sign_in(db: &TestDb, name: &str, pw: &str) -> Result<auth::Session, LoginError> {
    match auth::login(
        &db.store,
        Some(&db.keystore),
        name,
        pw,
        &LoginSource::default(),
        &auth::MfaPolicy::none(),
    )
    .await?
    {
        LoginOutcome::SignedIn(s) => Ok(s),
        LoginOutcome::MfaRequired(_) => panic!("no MFA here"),
    }
}

async fn nfc_and_nfd_forms_are_one_password_on_every_path(db: TestDb) {
    assert_ne!(ADMIN_NFC, ADMIN_NFD);
    // `vigil init` with the NFC form; sign-in with the NFD form opens the key pair it sealed and
    // makes, then reopens, the credential key.
    let name = Username::parse("root-admin").unwrap();
    let pw = Password::parse_for_operator(ADMIN_NFC, &name).unwrap();
    auth::bootstrap_admin(&db.store, &db.keystore, &name, &pw, KeyBits::B2048)
        .await
        .unwrap();
    for form in [ADMIN_NFD, ADMIN_NFC, ADMIN_NFD] {
        let s = sign_in(&db, "root-admin", form).await.unwrap();
        assert!(s.keys.is_some(), "the key pair unlocks");
        assert!(s.credential.is_some(), "the credential key opens");
    }
    let admin = auth::authenticate(&db.store, "root-admin", ADMIN_NFD, &auth::MfaPolicy::none())
        .await
        .unwrap();

    // An operator created with the NFD form signs in with the NFC form.
    users::create(
        &db.store,
        &admin,
        "carol-officer",
        TEMP_NFD,
        &[Role::ComplianceOfficer],
    )
    .await
    .unwrap();
    let carol = sign_in(&db, "carol-officer", TEMP_NFC).await.unwrap();
    assert!(carol.must_change_password);
    let ring = carol.keys.as_ref().expect("her key pair, made here");

    // She changes it, giving the current one in NFD and the new one in NFD.
    auth::change_password(
        &db.store,
        &db.keystore,
        &carol.actor,
        ring,
        None,
        TEMP_NFD,
        OWN_NFD,
    )
    .await
    .unwrap();
    // The NFC form signs in, unlocks the re-sealed key pair and opens the credential key.
    for form in [OWN_NFC, OWN_NFD] {
        let s = sign_in(&db, "carol-officer", form).await.unwrap();
        assert!(!s.must_change_password);
        assert!(s.keys.is_some() && s.credential.is_some(), "{form:?}");
    }
    assert!(matches!(
        sign_in(&db, "carol-officer", TEMP_NFC).await,
        Err(LoginError::InvalidCredentials)
    ));

    // An administrator's reset in NFC; the NFD form signs in.
    auth::reset_password(&db.store, &admin, "carol-officer", TEMP_NFC)
        .await
        .unwrap();
    let again = sign_in(&db, "carol-officer", TEMP_NFD).await.unwrap();
    assert!(again.must_change_password && again.keys.is_some());
}
on_both!(nfc_and_nfd_forms_are_one_password_on_every_path);

async fn passwords_over_128_characters_are_refused_and_change_nothing(db: TestDb) {
    let (admin, _) = common::admin_keys(&db).await;
    let at_limit = "a long enough passphrase ".repeat(6)[..128].to_owned();
    let over = format!("{at_limit}x");
    let err = users::create(&db.store, &admin, "dave-mod", &over, &[Role::Moderator])
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "password too long: at most 128 characters",
        "a clear message"
    );
    let raw = db.raw().await;
    assert_eq!(
        common::count(
            &raw,
            "SELECT COUNT(*) FROM users WHERE username = 'dave-mod'"
        )
        .await,
        0
    );
    users::create(&db.store, &admin, "dave-mod", &at_limit, &[Role::Moderator])
        .await
        .unwrap();
    let s = sign_in(&db, "dave-mod", &at_limit).await.unwrap();
    assert!(s.must_change_password);
    // The breached-password list refuses the common long ones here too.
    for common in [
        "123456789012",
        "iloveyou1234",
        "qwertyuiop123",
        "password1234",
    ] {
        assert!(matches!(
            users::create(&db.store, &admin, "erin-mod", common, &[Role::Moderator]).await,
            Err(auth::PasswordChangeError::Rejected(
                auth::PasswordRejected::Common
            ))
        ));
    }
    assert_eq!(
        common::count(
            &raw,
            "SELECT COUNT(*) FROM users WHERE username = 'erin-mod'"
        )
        .await,
        0
    );
    raw.close().await;
}
on_both!(passwords_over_128_characters_are_refused_and_change_nothing);

async fn a_new_operator_is_told_their_password_was_set_at_creation_not_reset(db: TestDb) {
    let (admin, _) = common::admin_keys(&db).await;
    users::create(
        &db.store,
        &admin,
        "carol-officer",
        TEMP_NFC,
        &[Role::ComplianceOfficer],
    )
    .await
    .unwrap();
    let first = sign_in(&db, "carol-officer", TEMP_NFC).await.unwrap();
    assert!(first.must_change_password);
    // Asked over the store the sign-in used (in team mode an operator's own login may ask only
    // about its own account; the test store is the owner's).
    let why = auth::password_to_change(&db.store, &first.actor)
        .await
        .unwrap();
    assert_eq!(why, Some(auth::PasswordToChange::SetAtAccountCreation));
    assert!(why
        .unwrap()
        .to_string()
        .contains("set by an administrator when it was created"));
    assert!(!why.unwrap().to_string().contains("reset"));

    // Once she chose her own, nothing is owed.
    auth::change_password(
        &db.store,
        &db.keystore,
        &first.actor,
        first.keys.as_ref().unwrap(),
        None,
        TEMP_NFC,
        OWN_NFC,
    )
    .await
    .unwrap();
    let own = sign_in(&db, "carol-officer", OWN_NFC).await.unwrap();
    assert_eq!(
        auth::password_to_change(&db.store, &own.actor)
            .await
            .unwrap(),
        None
    );

    // After an administrator's reset, it says reset.
    auth::reset_password(&db.store, &admin, "carol-officer", TEMP_NFD)
        .await
        .unwrap();
    let after = sign_in(&db, "carol-officer", TEMP_NFC).await.unwrap();
    assert_eq!(
        auth::password_to_change(&db.store, &after.actor)
            .await
            .unwrap(),
        Some(auth::PasswordToChange::ResetByAdministrator)
    );
    // The administrator themselves owes nothing.
    assert_eq!(
        auth::password_to_change(&db.store, &admin).await.unwrap(),
        None
    );
}
on_both!(a_new_operator_is_told_their_password_was_set_at_creation_not_reset);
