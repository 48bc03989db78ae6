//! The desktop session against the database, on SQLite and Postgres: changes made elsewhere
//! (a session revoked, an operator suspended, roles changed, a reset password) take effect on
//! the open desktop session at its next command.

use std::collections::HashMap;

use vigil::auth::{self, users, LoginOutcome, LoginSource, Password, Username};
use vigil::config::Config;
use vigil::rbac::Role;
use vigil_desktop::state::AppState;
use vigil_desktop::ErrorCode;

const ADMIN_PW: &str = "correct horse battery 42";
const TEMP: &str = "temporary passphrase 7";

struct Fixture {
    state: AppState,
    _dirs: Vec<tempfile::TempDir>,
}

async fn fixture(url: String) -> Fixture {
    let keys = tempfile::tempdir().unwrap();
    let mut vars = HashMap::new();
    vars.insert("VIGIL_DATABASE_URL".to_owned(), url);
    vars.insert(
        "VIGIL_KEYSTORE".to_owned(),
        format!("file:{}", keys.path().join("keys").display()),
    );
    let none = tempfile::tempdir().unwrap();
    vars.insert(
        "VIGIL_CONFIG".to_owned(),
        none.path().join("config.toml").display().to_string(),
    );
    std::fs::write(none.path().join("config.toml"), "").unwrap();
    let config = Config::load_with(|k| vars.get(k).cloned()).unwrap();
    Fixture {
        state: AppState::new(config),
        _dirs: vec![keys, none],
    }
}

async fn sqlite() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("vigil.db").display());
    let mut f = fixture(url).await;
    f._dirs.push(dir);
    f
}

async fn postgres() -> Fixture {
    let server = std::env::var("VIGIL_TEST_POSTGRES_URL").expect(
        "VIGIL_TEST_POSTGRES_URL is not set: run scripts/test, which starts a throwaway Postgres",
    );
    sqlx::any::install_default_drivers();
    let admin = sqlx::AnyPool::connect(&server).await.unwrap();
    let name = format!("vigil_desktop_{}", uuid::Uuid::new_v4().simple());
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&admin)
        .await
        .unwrap();
    admin.close().await;
    let base = server.split('?').next().unwrap();
    let base = base.rsplit_once('/').map(|(b, _)| b).unwrap_or(base);
    fixture(format!("{base}/{name}")).await
}

async fn sign_in(state: &AppState, username: &str, password: &str) {
    let db = state.db().await.unwrap();
    let outcome = auth::login(
        &db.store,
        db.keystore.as_deref(),
        username,
        password,
        &LoginSource::default(),
        &vigil::auth::MfaPolicy::none(),
    )
    .await
    .unwrap();
    let LoginOutcome::SignedIn(session) = outcome else {
        panic!("no MFA in this test");
    };
    state.sign_in(&db, session).await;
}

async fn changes_made_elsewhere_end_or_update_the_desktop_session(f: Fixture) {
    let state = &f.state;
    assert_eq!(
        state.authorised().await.err().map(|e| e.code),
        Some(ErrorCode::NotSignedIn)
    );
    let db = state.db().await.unwrap();
    let name = Username::parse("root-admin").unwrap();
    auth::bootstrap_admin(
        &db.store,
        db.keystore.as_deref().unwrap(),
        &name,
        &Password::parse_for_operator(ADMIN_PW, &name).unwrap(),
        vigil::crypto::KeyBits::try_from(2048).unwrap(),
    )
    .await
    .unwrap();

    // The administrator's desktop session has tokens; revoking its session elsewhere ends it.
    sign_in(state, "root-admin", ADMIN_PW).await;
    let (_, session, admin) = state.authorised().await.unwrap();
    let sid = session.session_id().await.expect("tokens issued");
    users::revoke_session(&db.store, &admin, &sid)
        .await
        .unwrap();
    let ended = state.authorised().await.unwrap_err();
    assert_eq!(ended.code, ErrorCode::SessionEnded, "{ended}");
    assert!(state.current().is_none(), "the ended session is forgotten");

    // A new operator must change the temporary password before anything else.
    sign_in(state, "root-admin", ADMIN_PW).await;
    let (_, _, admin) = state.authorised().await.unwrap();
    users::create(&db.store, &admin, "mod-desk", TEMP, &[Role::Moderator])
        .await
        .unwrap();
    sign_in(state, "mod-desk", TEMP).await;
    assert_eq!(
        state.authorised().await.err().map(|e| e.code),
        Some(ErrorCode::MustChangePassword)
    );
    let (_, session, moderator) = state.authorised_for_password_change().await.unwrap();
    assert_eq!(moderator.roles(), [Role::Moderator]);
    assert!(
        session.session_id().await.is_some(),
        "tokens are signed with the key pair's own key: no grant needed"
    );
    let current = session.session_id().await;
    let changed = auth::change_password(
        &db.store,
        db.keystore.as_deref().unwrap(),
        &moderator,
        session.ring.as_ref().unwrap(),
        current.as_deref(),
        TEMP,
        "the moderator's own passphrase",
    )
    .await
    .unwrap();
    session.password_changed(changed.credential);
    // The password change ends the operator's other sessions, not this one.
    state.authorised().await.unwrap();

    // Roles changed elsewhere end the session at the next command (its access token names the
    // old roles); signing in again gives the new ones. A suspension ends the session.
    users::set_roles(&db.store, &admin, "mod-desk", &[Role::ComplianceOfficer])
        .await
        .unwrap();
    let ended = state.authorised().await.unwrap_err();
    assert_eq!(ended.code, ErrorCode::SessionEnded, "{ended}");
    assert!(ended.message.contains("roles"), "{ended}");
    sign_in(state, "mod-desk", "the moderator's own passphrase").await;
    let (_, _, now) = state.authorised().await.unwrap();
    assert_eq!(now.roles(), [Role::ComplianceOfficer]);
    users::set_suspended(&db.store, &admin, "mod-desk", true)
        .await
        .unwrap();
    let ended = state.authorised().await.unwrap_err();
    assert_eq!(ended.code, ErrorCode::SessionEnded, "{ended}");
    assert!(ended.message.contains("suspended"), "{ended}");
    assert!(state.current().is_none());

    // Signing out revokes the tokens: the session id is gone from the live sessions.
    sign_in(state, "root-admin", ADMIN_PW).await;
    let (_, session, admin) = state.authorised().await.unwrap();
    let sid = session.session_id().await.unwrap();
    state.sign_out().await;
    let live = users::sessions(&db.store, &admin, true).await.unwrap();
    assert!(live.iter().any(|s| s.id == sid && s.revoked_at.is_some()));
    // One account's sessions are that account's alone, and only administrators see them.
    let own = users::sessions_of(&db.store, &admin, admin.user_id())
        .await
        .unwrap();
    assert!(own.iter().any(|s| s.id == sid));
    assert!(own.iter().all(|s| s.username == "root-admin"));
    let theirs = users::sessions_of(&db.store, &admin, moderator.user_id())
        .await
        .unwrap();
    assert!(theirs
        .iter()
        .all(|s| s.username == "mod-desk" && s.id != sid));
    assert!(matches!(
        users::sessions_of(&db.store, &moderator, admin.user_id()).await,
        Err(vigil::auth::PasswordChangeError::Forbidden(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_made_elsewhere_sqlite() {
    changes_made_elsewhere_end_or_update_the_desktop_session(sqlite().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_made_elsewhere_postgres() {
    changes_made_elsewhere_end_or_update_the_desktop_session(postgres().await).await;
}

/// First-run setup runs once: it may finish the setup of the database the console is set up
/// for, but never moves a console to another database, and refuses once that one has
/// operators.
async fn setup_runs_only_at_first_run(f: Fixture) {
    use vigil::store::DatabaseUrl;
    use vigil_desktop::commands::setup::first_run_only;
    let state = &f.state;
    let current = state.config().database.url.clone();
    assert!(state.config().database.configured);
    let elsewhere = tempfile::tempdir().unwrap();
    let other = DatabaseUrl::sqlite_file(&elsewhere.path().join("other.db"));
    let postgres = DatabaseUrl::parse("postgres://attacker@203.0.113.9/vigil").unwrap();

    // Not set up yet: the same database may be set up; another may not be chosen instead.
    first_run_only(state, &current).await.unwrap();
    for url in [&other, &postgres] {
        let e = first_run_only(state, url).await.unwrap_err();
        assert_eq!(e.code, ErrorCode::Conflict);
        assert!(
            e.message.contains("setup does not change it"),
            "{}",
            e.message
        );
    }
    assert!(
        !elsewhere.path().join("other.db").exists(),
        "nothing opened"
    );

    // Set up: refused for every database, the same one included.
    let db = state.db().await.unwrap();
    let name = Username::parse("root-admin").unwrap();
    auth::bootstrap_admin(
        &db.store,
        db.keystore.as_deref().unwrap(),
        &name,
        &Password::parse_for_operator(ADMIN_PW, &name).unwrap(),
        vigil::crypto::KeyBits::try_from(2048).unwrap(),
    )
    .await
    .unwrap();
    for url in [&current, &other, &postgres] {
        let e = first_run_only(state, url).await.unwrap_err();
        assert_eq!(e.code, ErrorCode::Conflict);
    }
    let e = first_run_only(state, &current).await.unwrap_err();
    assert!(e.message.contains("already set up"), "{}", e.message);
    assert_eq!(
        state.config().database.url,
        current,
        "the configuration is unchanged"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setup_runs_only_at_first_run_sqlite() {
    setup_runs_only_at_first_run(sqlite().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setup_runs_only_at_first_run_postgres() {
    setup_runs_only_at_first_run(postgres().await).await;
}
