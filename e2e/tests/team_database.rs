//! The desktop app joining a shared Postgres database (team mode) as a second operator, in its
//! real window: the administrator has made the database and the operator's account with its
//! own database login; on a fresh machine the operator chooses "join a team database", enters
//! the server's URL with their database user and password (a wrong password is refused by
//! Postgres first), signs in with their temporary Vigil password, chooses their own, and works.
//! The app's connection is the operator's own login, not the owner's, and no file the app
//! wrote holds the database password (it is in the OS keychain). Run by scripts/e2e, which
//! provides the throwaway Postgres in `VIGIL_TEST_POSTGRES_URL`.

use sqlx::{Connection, PgConnection};
use vigil::auth::{self, users, Password, Username};
use vigil::crypto::KeyBits;
use vigil::keys::{self, keystore::FileKeystore};
use vigil::rbac::Role;
use vigil::store::{DatabaseUrl, Store, StoreOptions};
use vigil_e2e::{App, Result};

const ADMIN: &str = "root-admin";
const ADMIN_PASSWORD: &str = "correct horse battery 42";
const MODERATOR: &str = "mod-remote";
const TEMPORARY: &str = "temporary pass 4 the first day";
const MODERATOR_PASSWORD: &str = "my own team database password 9";

/// A fresh database on the test server; its owner URL.
async fn fresh_database(server: &str) -> Result<String> {
    let mut conn = PgConnection::connect(server).await?;
    let name = format!("vigil_e2e_{}", std::process::id());
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name}"))
        .execute(&mut conn)
        .await?;
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await?;
    conn.close().await?;
    let (base, _) = server.rsplit_once('/').ok_or("a URL with a database")?;
    Ok(format!("{base}/{name}"))
}

/// `url` with its user and password taken out: what a console may keep.
fn without_credentials(url: &str) -> Result<String> {
    let (scheme, rest) = url.split_once("://").ok_or("a URL")?;
    let host = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
    Ok(format!("{scheme}://{host}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_operator_joins_a_team_database_with_their_own_login() -> Result<()> {
    let server = std::env::var("VIGIL_TEST_POSTGRES_URL")
        .map_err(|_| "VIGIL_TEST_POSTGRES_URL names the test Postgres (scripts/e2e starts one)")?;
    let owner_url = fresh_database(&server).await?;

    // The database administrator's side: `vigil init` with the owner's URL, then the first
    // administrator creates a moderator and their database login.
    let home = std::env::temp_dir().join(format!("vigil-e2e-team-{}", std::process::id()));
    if home.exists() {
        std::fs::remove_dir_all(&home)?;
    }
    std::fs::create_dir_all(&home)?;
    let store = Store::open(&DatabaseUrl::parse(&owner_url)?, &StoreOptions::default()).await?;
    let admin_keys = FileKeystore::open(&home.join("admin-keys"))?;
    let name = Username::parse(ADMIN)?;
    let pw = Password::parse_for_operator(ADMIN_PASSWORD, &name)?;
    auth::bootstrap_admin(&store, &admin_keys, &name, &pw, KeyBits::B2048).await?;
    let admin = auth::authenticate(
        &store,
        ADMIN,
        ADMIN_PASSWORD,
        &vigil::auth::MfaPolicy::none(),
    )
    .await?;
    let (_, login) =
        users::create_with_database_login(&store, &admin, MODERATOR, TEMPORARY, &[Role::Moderator])
            .await?;
    let login = login.ok_or("team mode makes a database login on Postgres")?;
    // From here the administrator works over their own database login, not the owner's.
    let admin_login = users::bootstrap_database_login(&store, admin.user_id()).await?;
    store.close().await;
    let admin_url = format!(
        "{}://{}:{}@{}",
        "postgres",
        admin_login.user,
        admin_login.password(),
        without_credentials(&owner_url)?.trim_start_matches("postgres://")
    );
    let admin_store =
        Store::open(&DatabaseUrl::parse(&admin_url)?, &StoreOptions::default()).await?;
    let admin_ring = keys::unlock(&admin_store, &admin_keys, &admin, ADMIN_PASSWORD).await?;

    let machine = home.join("moderator-machine");
    let app = App::launch(&machine, 4446).await?;
    let mut outcome = join(&app, &owner_url, &login.user, login.password()).await;
    if outcome.is_ok() {
        // The moderator's first sign-in made their key pair on their machine; the
        // administrator grants it the data keys of the moderator's role.
        keys::grant(&admin_store, &admin_ring, &admin, MODERATOR).await?;
        outcome = work(&app).await;
    }
    if let Err(e) = outcome {
        app.report_failure().await;
        return Err(e);
    }

    // The app's connections are the moderator's own login.
    let mut owner = PgConnection::connect(&owner_url).await?;
    let theirs: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database() AND usename = $1",
    )
    .bind(&login.user)
    .fetch_one(&mut owner)
    .await?;
    assert!(theirs > 0, "the console is connected as {}", login.user);
    owner.close().await?;
    app.quit().await?;

    // Nothing the app wrote on this machine holds the database password.
    let mut stack = vec![machine.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let path = entry?.path();
            if path.is_dir() {
                stack.push(path);
            } else if let Ok(bytes) = std::fs::read(&path) {
                let needle = login.password().as_bytes();
                assert!(
                    !bytes.windows(needle.len()).any(|w| w == needle),
                    "{} holds the database password",
                    path.display()
                );
            }
        }
    }
    std::fs::remove_dir_all(&home)?;
    Ok(())
}

async fn join(app: &App, owner_url: &str, db_user: &str, db_password: &str) -> Result<()> {
    app.el("setup-db-postgres").await?;
    app.click("setup-db-postgres").await?;
    app.click("setup-pg-join").await?;
    app.fill("setup-pg-url", &without_credentials(owner_url)?)
        .await?;
    app.fill("setup-db-user", db_user).await?;
    // Postgres itself refuses a wrong database password.
    app.fill("setup-db-password", "not the database password")
        .await?;
    app.click("setup-submit").await?;
    app.el("setup-error").await?;
    app.screenshot("team-join-refused").await?;
    app.fill("setup-db-password", db_password).await?;
    app.screenshot("team-join").await?;
    app.click("setup-submit").await?;

    // The moderator signs in with the temporary password and chooses their own.
    app.fill("login-username", MODERATOR).await?;
    app.fill("login-password", TEMPORARY).await?;
    app.click("login-submit").await?;
    app.fill("pw-current", TEMPORARY).await?;
    app.fill("pw-new", MODERATOR_PASSWORD).await?;
    app.fill("pw-confirm", MODERATOR_PASSWORD).await?;
    app.click("pw-submit").await?;
    assert_eq!(app.text("current-user").await?.trim(), MODERATOR);
    Ok(())
}

async fn work(app: &App) -> Result<()> {
    // They work over their own login: the incident queue opens and the detectors run (which
    // writes checkpoints and the audit log); no administrator screens.
    app.click("nav-incidents").await?;
    app.el("incident-table").await?;
    app.click("monitor-run").await?;
    app.el("monitor-run-result").await?;
    assert!(
        !app.present("nav-keys").await?,
        "no keys screen for a moderator"
    );
    app.screenshot("team-moderator").await?;
    Ok(())
}
