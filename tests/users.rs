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
        &vigil::auth::MfaPolicy::none(),
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
    let carol_ring = carol.keys.as_ref().unwrap();
    let pair = tokens::issue(&db.store, carol_ring, &carol, "test")
        .await
        .unwrap();
    tokens::verify_access_token(&db.store, &pair.access_token)
        .await
        .unwrap();
    // No console signs for another operator.
    assert!(matches!(
        tokens::issue(&db.store, &ring, &carol, "test").await,
        Err(tokens::TokenError::WrongSigner)
    ));
    users::set_roles(&db.store, &admin, "carol-officer", &[Role::Moderator])
        .await
        .unwrap();
    assert!(matches!(
        tokens::verify_access_token(&db.store, &pair.access_token).await,
        Err(tokens::TokenError::AccountChanged)
    ));
    assert!(matches!(
        users::set_roles(&db.store, &admin, "root-admin", &[Role::Moderator]).await,
        Err(PasswordChangeError::LastAdmin)
    ));

    // Suspension ends sessions at once and refuses sign-in; reinstating restores it.
    let carol = sign_in(&db, "carol-officer", TEMP).await.unwrap();
    let pair = tokens::issue(&db.store, carol.keys.as_ref().unwrap(), &carol, "test")
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
    // The ended session's refresh token is refused as revoked (no theft signal: it was never
    // used twice).
    assert!(matches!(
        tokens::refresh(&db.store, carol.keys.as_ref().unwrap(), &pair.refresh_token).await,
        Err(tokens::TokenError::Revoked)
    ));
    users::set_suspended(&db.store, &admin, "carol-officer", false)
        .await
        .unwrap();
    let carol = sign_in(&db, "carol-officer", TEMP).await.unwrap();

    // Sessions: one's own, or everyone's for an administrator.
    let mine = tokens::issue(&db.store, carol.keys.as_ref().unwrap(), &carol, "test")
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
    let theirs = tokens::issue(
        &db.store,
        admin_session.keys.as_ref().unwrap(),
        &admin_session,
        "test",
    )
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

async fn the_directory_pages_filters_and_finds_by_exact_email(db: TestDb) {
    use vigil::auth::users::{AccountKind, AccountStatus, DirectoryQuery, DirectorySearch};
    let (admin, ring) = admin_keys(&db).await;
    let opts = vigil::demo::SeedOptions {
        users: 120,
        comments: 50,
        days: 3,
        seed: 11,
        scenarios: false,
    };
    vigil::demo::seed(&db.store, &admin, &ring, opts, &mut |_| {})
        .await
        .unwrap();
    let moderator = common::operator_with_role(&db, "mod-dir", "moderator").await;
    let pool = db.raw().await;
    let all_users = count(&pool, "SELECT COUNT(*) FROM users").await;
    let page = |page, page_size| DirectoryQuery {
        page,
        page_size,
        ..DirectoryQuery::default()
    };

    // Pages tile the whole table in username order, and the total is the table's.
    let mut seen = Vec::new();
    for n in 0.. {
        let p = users::directory(&db.store, &admin, None, &page(n, 50))
            .await
            .unwrap();
        assert_eq!(p.total as i64, all_users);
        if p.rows.is_empty() {
            break;
        }
        seen.extend(p.rows.into_iter().map(|r| r.username));
    }
    assert_eq!(seen.len() as i64, all_users);
    assert!(
        seen.windows(2).all(|w| w[0] < w[1]),
        "not in username order"
    );

    // Filters match what SQL says.
    let operators = users::directory(
        &db.store,
        &admin,
        None,
        &DirectoryQuery {
            kind: Some(AccountKind::Operator),
            ..page(0, 500)
        },
    )
    .await
    .unwrap();
    assert_eq!(
        operators.total as i64,
        count(&pool, "SELECT COUNT(*) FROM users WHERE kind = 'operator'").await
    );
    let mods = users::directory(
        &db.store,
        &admin,
        None,
        &DirectoryQuery {
            role: Some(Role::Moderator),
            ..page(0, 500)
        },
    )
    .await
    .unwrap();
    assert_eq!(
        mods.rows
            .iter()
            .map(|r| r.username.as_str())
            .collect::<Vec<_>>(),
        ["mod-dir"]
    );
    assert_eq!(mods.rows[0].roles, ["moderator"]);
    let suspended = users::directory(
        &db.store,
        &admin,
        None,
        &DirectoryQuery {
            status: Some(AccountStatus::Suspended),
            ..page(0, 500)
        },
    )
    .await
    .unwrap();
    assert_eq!(
        suspended.total as i64,
        count(
            &pool,
            "SELECT COUNT(*) FROM users WHERE status = 'suspended'"
        )
        .await
    );

    // A username prefix; LIKE's wildcards in the text are literal.
    let first = seen.iter().find(|u| u.len() > 4).unwrap().clone();
    let prefix = &first[..4];
    let found = users::directory(
        &db.store,
        &admin,
        None,
        &DirectoryQuery {
            search: DirectorySearch::from_text(&prefix.to_uppercase()),
            ..page(0, 500)
        },
    )
    .await
    .unwrap();
    let expected = seen.iter().filter(|u| u.starts_with(prefix)).count();
    assert_eq!(found.total as usize, expected);
    assert!(found.rows.iter().all(|r| r.username.starts_with(prefix)));
    let wild = users::directory(
        &db.store,
        &admin,
        None,
        &DirectoryQuery {
            search: DirectorySearch::from_text("%"),
            ..page(0, 500)
        },
    )
    .await
    .unwrap();
    assert_eq!(wild.total, 0);

    // An exact email, through the blind index: found however it is typed, and only with keys.
    let id = vigil::platform::sample_user_ids(&db.store, 1)
        .await
        .unwrap()[0];
    let email = vigil::platform::user_email(&db.store, &ring, id)
        .await
        .unwrap()
        .unwrap();
    let by_email = |text: String| DirectoryQuery {
        search: DirectorySearch::from_text(&text),
        ..page(0, 50)
    };
    let hit = users::directory(
        &db.store,
        &admin,
        Some(&ring),
        &by_email(format!("  {}  ", email.to_uppercase())),
    )
    .await
    .unwrap();
    assert_eq!(hit.total, 1);
    assert_eq!(hit.rows[0].id, id.to_string());
    let miss = users::directory(
        &db.store,
        &admin,
        Some(&ring),
        &by_email(format!("x{email}")),
    )
    .await
    .unwrap();
    assert_eq!((miss.total, miss.rows.len()), (0, 0));
    assert!(matches!(
        users::directory(&db.store, &admin, None, &by_email(email.clone())).await,
        Err(users::DirectoryError::Keys(_))
    ));

    // One entry by id; moderators may read, platform users' roles are empty.
    let entry = users::directory_entry(&db.store, &moderator, vigil::auth::UserId::from_uuid(id))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(entry.kind, "platform");
    assert!(entry.roles.is_empty());
    let nobody = common::operator_with_role(&db, "svc-dir", "service").await;
    assert!(matches!(
        users::directory(&db.store, &nobody, None, &page(0, 10)).await,
        Err(users::DirectoryError::Forbidden(_))
    ));
}

on_both!(the_directory_pages_filters_and_finds_by_exact_email);

async fn a_long_lived_session_sees_suspension_and_role_changes_at_once(db: TestDb) {
    let (admin, _) = admin_keys(&db).await;
    let officer = common::operator_with_role(&db, "officer-re", "compliance_officer").await;
    let now = auth::recheck(&db.store, &officer).await.unwrap();
    assert_eq!(now.roles(), [Role::ComplianceOfficer]);
    users::set_roles(&db.store, &admin, "officer-re", &[Role::Moderator])
        .await
        .unwrap();
    let now = auth::recheck(&db.store, &officer).await.unwrap();
    assert_eq!(now.roles(), [Role::Moderator]);
    users::set_suspended(&db.store, &admin, "officer-re", true)
        .await
        .unwrap();
    assert!(matches!(
        auth::recheck(&db.store, &officer).await,
        Err(auth::AuthError::NotActive(s)) if s == "suspended"
    ));
    users::set_suspended(&db.store, &admin, "officer-re", false)
        .await
        .unwrap();
    assert!(auth::recheck(&db.store, &officer).await.is_ok());
}

on_both!(a_long_lived_session_sees_suspension_and_role_changes_at_once);
