//! Sessions end on their own, on both databases, with a clock the tests control: a session not
//! used for its idle timeout is refused by verification (cached or not) and by refresh; one used
//! keeps going, its uses recorded at most about once a minute; and refresh stops at the
//! absolute lifetime, whatever the activity.

mod common;

use common::{admin_keys, count, TestDb};
use vigil::auth::tokens::{self, SessionLimits, TokenError};
use vigil::store::Timestamp;

fn after(t: Timestamp, secs: i64) -> Timestamp {
    Timestamp::from_micros(t.micros() + secs * 1_000_000)
}

async fn an_idle_session_is_refused_after_the_timeout(db: TestDb) {
    let (admin, ring) = admin_keys(&db).await;
    let limits = SessionLimits {
        idle_timeout_secs: 900,
        absolute_lifetime_secs: 12 * 3600,
    };
    let t0 = Timestamp::now();
    let pair = tokens::issue_limited_at(&db.store, &ring, &admin, "test", limits, t0)
        .await
        .unwrap();
    let session = pair.session_id.clone();
    let last_seen = || async {
        count(
            &db.raw().await,
            &format!("SELECT last_seen_at FROM sessions WHERE id = '{session}'"),
        )
        .await
    };
    assert_eq!(last_seen().await, t0.micros());

    // Uses within a minute of the last recorded one are not written.
    tokens::verify_access_token_at(&db.store, &pair.access_token, after(t0, 30))
        .await
        .unwrap();
    assert_eq!(
        last_seen().await,
        t0.micros(),
        "no write within the granularity"
    );
    // A use after that is recorded, and keeps the session alive past t0 + timeout.
    tokens::verify_access_token_at(&db.store, &pair.access_token, after(t0, 600))
        .await
        .unwrap();
    assert_eq!(last_seen().await, after(t0, 600).micros());
    tokens::verify_access_token_at(&db.store, &pair.access_token, after(t0, 1400))
        .await
        .unwrap();
    assert_eq!(last_seen().await, after(t0, 1400).micros());

    // Then nothing for the idle timeout: refused, by every verifier and by refresh.
    let idle = after(t0, 1400 + 900);
    assert!(matches!(
        tokens::verify_access_token_at(&db.store, &pair.access_token, idle).await,
        Err(TokenError::SessionIdle)
    ));
    assert!(matches!(
        tokens::refresh_at(&db.store, &ring, &pair.refresh_token, idle).await,
        Err(TokenError::SessionIdle)
    ));
    // The refusal records nothing as a use: still refused a moment later.
    assert!(matches!(
        tokens::verify_access_token_at(&db.store, &pair.access_token, after(idle, 1)).await,
        Err(TokenError::SessionIdle)
    ));
    assert_eq!(last_seen().await, after(t0, 1400).micros());

    // A cached verifier does not keep an idle session alive either.
    let short = SessionLimits {
        idle_timeout_secs: 120,
        absolute_lifetime_secs: 3600,
    };
    let t1 = Timestamp::now();
    let pair = tokens::issue_limited_at(&db.store, &ring, &admin, "test", short, t1)
        .await
        .unwrap();
    let verifier = tokens::Verifier::new();
    for s in [0, 10, 20] {
        verifier
            .verify_at(&db.store, &pair.access_token, after(t1, s))
            .await
            .unwrap();
    }
    assert!(matches!(
        verifier
            .verify_at(&db.store, &pair.access_token, after(t1, 20 + 120))
            .await,
        Err(TokenError::SessionIdle)
    ));
    // A refreshed session is a used one: refresh counts as activity.
    let t2 = Timestamp::now();
    let pair = tokens::issue_limited_at(&db.store, &ring, &admin, "test", short, t2)
        .await
        .unwrap();
    let next = tokens::refresh_at(&db.store, &ring, &pair.refresh_token, after(t2, 100))
        .await
        .unwrap();
    tokens::verify_access_token_at(&db.store, &next.access_token, after(t2, 200))
        .await
        .unwrap();
}
on_both!(an_idle_session_is_refused_after_the_timeout);

async fn refresh_stops_at_the_absolute_lifetime(db: TestDb) {
    let (admin, ring) = admin_keys(&db).await;
    let limits = SessionLimits {
        idle_timeout_secs: 900,
        absolute_lifetime_secs: 3000,
    };
    let t0 = Timestamp::now();
    let mut pair = tokens::issue_limited_at(&db.store, &ring, &admin, "test", limits, t0)
        .await
        .unwrap();
    // Busy all along: refreshed every 800 s, each pair verified.
    for s in [800, 1600, 2400] {
        pair = tokens::refresh_at(&db.store, &ring, &pair.refresh_token, after(t0, s))
            .await
            .unwrap();
        tokens::verify_access_token_at(&db.store, &pair.access_token, after(t0, s + 1))
            .await
            .unwrap();
    }
    // The refresh token issued last ends with the session, not 30 days later.
    let ends = count(
        &db.raw().await,
        &format!(
            "SELECT MAX(expires_at) FROM refresh_tokens WHERE session_id = '{}'",
            pair.session_id
        ),
    )
    .await;
    assert_eq!(ends, after(t0, 3000).micros());
    // At the limit: refresh refused, and the last access token (one hour long) too.
    assert!(matches!(
        tokens::refresh_at(&db.store, &ring, &pair.refresh_token, after(t0, 3000)).await,
        Err(TokenError::SessionExpired)
    ));
    assert!(matches!(
        tokens::verify_access_token_at(&db.store, &pair.access_token, after(t0, 3001)).await,
        Err(TokenError::SessionExpired)
    ));
    // Nothing was revoked or rotated by the refusals: just over.
    assert!(matches!(
        tokens::refresh_at(&db.store, &ring, &pair.refresh_token, after(t0, 3500)).await,
        Err(TokenError::SessionExpired)
    ));
}
on_both!(refresh_stops_at_the_absolute_lifetime);

async fn the_configured_limits_are_the_defaults(db: TestDb) {
    let d = SessionLimits::default();
    assert_eq!(
        (d.idle_timeout_secs, d.absolute_lifetime_secs),
        (900, 12 * 3600)
    );
    // A session issued with the defaults ends 12 hours after it began.
    let (admin, ring) = admin_keys(&db).await;
    let t0 = Timestamp::now();
    let pair = tokens::issue_at(&db.store, &ring, &admin, "test", t0)
        .await
        .unwrap();
    let (ends, idle) = (
        count(
            &db.raw().await,
            &format!(
                "SELECT expires_at FROM sessions WHERE id = '{}'",
                pair.session_id
            ),
        )
        .await,
        count(
            &db.raw().await,
            &format!(
                "SELECT idle_timeout_secs FROM sessions WHERE id = '{}'",
                pair.session_id
            ),
        )
        .await,
    );
    assert_eq!(ends, after(t0, 12 * 3600).micros());
    assert_eq!(idle, 900);
}
on_both!(the_configured_limits_are_the_defaults);
