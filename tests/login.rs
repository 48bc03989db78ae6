//! Signing in on both databases: one error for unknown user and wrong password, account
//! status, throttling per account and per source, lockout with back-off and its release, both
//! counted before the password is checked (a burst of concurrent attempts gets no more checks
//! than the limit), the MFA challenge (single use, expiring, useless for anything else), and
//! wrong or replayed second factors counted like wrong passwords.

mod common;

use common::{admin_keys, count, TestDb, PASSWORD};
use vigil::auth::{
    self, LoginError, LoginOutcome, LoginSource, MfaChallenge, Session, CHALLENGE_SECONDS,
    LOCK_AFTER, MAX_ATTEMPTS, WINDOW_SECONDS,
};
use vigil::mfa::{self, MfaError, STEP_SECONDS};
use vigil::store::Timestamp;

fn src(ip: &str) -> LoginSource {
    LoginSource {
        ip: Some(ip.into()),
        user_agent: Some("vigil-test".into()),
    }
}

fn t0() -> Timestamp {
    // Aligned to the middle of a TOTP step, so the clock arithmetic below stays in one step.
    let s = Timestamp::now().micros() / 1_000_000 / 30 * 30 + 12;
    Timestamp::from_micros(s * 1_000_000)
}

fn plus(t: Timestamp, secs: i64) -> Timestamp {
    Timestamp::from_micros(t.micros() + secs * 1_000_000)
}

async fn login(
    db: &TestDb,
    user: &str,
    pw: &str,
    ip: &str,
    at: Timestamp,
) -> Result<LoginOutcome, LoginError> {
    auth::login_at(
        &db.store,
        Some(&db.keystore),
        user,
        pw,
        &src(ip),
        &vigil::auth::MfaPolicy::none(),
        at,
    )
    .await
}

fn signed_in(r: Result<LoginOutcome, LoginError>) -> Session {
    match r {
        Ok(LoginOutcome::SignedIn(s)) => s,
        other => panic!("expected to be signed in, got {other:?}"),
    }
}

async fn unknown_user_and_wrong_password_look_the_same(db: TestDb) {
    let _ = admin_keys(&db).await;
    let t = t0();
    let s = signed_in(login(&db, "root-admin", PASSWORD, "192.0.2.1", t).await);
    assert_eq!(s.actor.username().as_str(), "root-admin");
    assert!(s.keys.is_some(), "the session unlocked this machine's keys");
    assert!(!s.must_change_password);
    let wrong = login(&db, "root-admin", "not the password!", "192.0.2.2", t).await;
    let unknown = login(&db, "no-such-admin", PASSWORD, "192.0.2.3", t).await;
    let (a, b) = (wrong.unwrap_err(), unknown.unwrap_err());
    assert!(matches!(a, LoginError::InvalidCredentials));
    assert!(matches!(b, LoginError::InvalidCredentials));
    assert_eq!(a.to_string(), b.to_string());

    // Every attempt is in the activity log with its reason, and no password anywhere.
    let raw = db.raw().await;
    for (outcome, reason) in [
        ("success", None),
        ("failure", Some("bad_password")),
        ("failure", Some("unknown_user")),
    ] {
        let sql = match reason {
            Some(r) => format!(
                "SELECT COUNT(*) FROM activity_log WHERE kind = 'vigil_login' \
                 AND outcome = '{outcome}' AND reason = '{r}'"
            ),
            None => format!(
                "SELECT COUNT(*) FROM activity_log WHERE kind = 'vigil_login' \
                 AND outcome = '{outcome}' AND reason IS NULL"
            ),
        };
        assert_eq!(count(&raw, &sql).await, 1, "{outcome} {reason:?}");
    }
    assert_eq!(
        count(
            &raw,
            &format!("SELECT COUNT(*) FROM activity_log WHERE details LIKE '%{PASSWORD}%' OR user_agent LIKE '%{PASSWORD}%'")
        )
        .await,
        0
    );
    // A suspended account says so, after the password was checked.
    common::exec(
        &raw,
        "UPDATE users SET status = 'suspended' WHERE username = 'root-admin'",
    )
    .await;
    assert!(matches!(
        login(&db, "root-admin", PASSWORD, "192.0.2.1", plus(t, 1)).await,
        Err(LoginError::NotActive(s)) if s == "suspended"
    ));
    raw.close().await;
}
on_both!(unknown_user_and_wrong_password_look_the_same);

async fn throttling_trips_and_releases(db: TestDb) {
    let _ = admin_keys(&db).await;
    let t = t0();
    // Per account name: five attempts in the window, the sixth is refused even with the
    // right password and from another address.
    for i in 0..5 {
        assert!(matches!(
            login(
                &db,
                "root-admin",
                "wrong password 123",
                &format!("198.51.100.{i}"),
                plus(t, i)
            )
            .await,
            Err(LoginError::InvalidCredentials)
        ));
    }
    match login(&db, "root-admin", PASSWORD, "203.0.113.9", plus(t, 5)).await {
        Err(LoginError::Throttled {
            retry_after_seconds,
        }) => assert!((1..=WINDOW_SECONDS).contains(&retry_after_seconds)),
        other => panic!("expected throttling, got {other:?}"),
    }
    // The window slides: later, the right password works again (the five failures also
    // locked the account for a minute, long over by then).
    signed_in(
        login(
            &db,
            "root-admin",
            PASSWORD,
            "203.0.113.9",
            plus(t, WINDOW_SECONDS + 5),
        )
        .await,
    );

    // Per source: one address trying many names.
    let t = plus(t, 2 * WINDOW_SECONDS);
    for i in 0..5 {
        let _ = login(
            &db,
            &format!("guess-{i}"),
            "whatever password",
            "192.0.2.50",
            plus(t, i),
        )
        .await;
    }
    assert!(matches!(
        login(&db, "root-admin", PASSWORD, "192.0.2.50", plus(t, 6)).await,
        Err(LoginError::Throttled { .. })
    ));
    signed_in(login(&db, "root-admin", PASSWORD, "192.0.2.51", plus(t, 7)).await);
}
on_both!(throttling_trips_and_releases);

async fn repeated_failures_lock_with_back_off_until_an_admin_unlocks(db: TestDb) {
    let (admin, _) = admin_keys(&db).await;
    let _bob = common::operator_with_role(&db, "bob-officer", "compliance_officer").await;
    // Failures spaced beyond the throttling window, so only the lockout acts.
    let mut t = t0();
    for _ in 0..5 {
        t = plus(t, WINDOW_SECONDS + 1);
        assert!(matches!(
            login(&db, "bob-officer", "wrong password 123", "192.0.2.7", t).await,
            Err(LoginError::InvalidCredentials)
        ));
    }
    // Locked for a minute: even the right password is refused meanwhile.
    match login(&db, "bob-officer", PASSWORD, "192.0.2.7", plus(t, 10)).await {
        Err(LoginError::Throttled {
            retry_after_seconds,
        }) => assert!(
            (40..=60).contains(&retry_after_seconds),
            "{retry_after_seconds}"
        ),
        other => panic!("expected a lockout, got {other:?}"),
    }
    // One more failure after the lock ends doubles it.
    t = plus(t, WINDOW_SECONDS + 1);
    let _ = login(&db, "bob-officer", "wrong password 123", "192.0.2.7", t).await;
    match login(&db, "bob-officer", PASSWORD, "192.0.2.7", plus(t, 70)).await {
        Err(LoginError::Throttled {
            retry_after_seconds,
        }) => assert!(
            (40..=60).contains(&retry_after_seconds),
            "{retry_after_seconds}"
        ),
        other => panic!("expected a two-minute lockout, got {other:?}"),
    }
    // Only an administrator may unlock, and then it works at once.
    let moderator = common::operator_with_role(&db, "mod-one", "moderator").await;
    assert!(auth::unlock_account(&db.store, &moderator, "bob-officer")
        .await
        .is_err());
    auth::unlock_account(&db.store, &admin, "bob-officer")
        .await
        .unwrap();
    let s = signed_in(login(&db, "bob-officer", PASSWORD, "192.0.2.8", plus(t, 71)).await);
    // A new operator's first sign-in made their key pair here; it holds no data keys yet.
    let ring = s.keys.expect("key pair made at first sign-in");
    assert!(matches!(
        ring.current(&db.store, vigil::keys::Purpose::Contact).await,
        Err(vigil::keys::KeyError::NotGranted(..))
    ));
    let raw = db.raw().await;
    assert_eq!(
        count(
            &raw,
            "SELECT COUNT(*) FROM audit_log WHERE action = 'operator.unlocked'"
        )
        .await,
        1
    );
    raw.close().await;
}
on_both!(repeated_failures_lock_with_back_off_until_an_admin_unlocks);

async fn the_mfa_challenge_is_single_use_short_lived_and_good_for_nothing_else(db: TestDb) {
    let session = common::admin_session(&db).await;
    let (admin, ck) = (&session.actor, session.credential.as_ref().unwrap());
    let e = mfa::enroll(&db.store, ck, admin).await.unwrap();
    let secret = totp_rs::Secret::Encoded(e.secret_base32.clone())
        .to_bytes()
        .unwrap();
    let step = |t: Timestamp| t.micros() as u64 / 1_000_000 / STEP_SECONDS;
    let t = t0();
    mfa::confirm(
        &db.store,
        ck,
        admin,
        &mfa::code_at(&secret, step(Timestamp::now()), 6),
    )
    .await
    .unwrap();

    let challenge = |r: Result<LoginOutcome, LoginError>| match r {
        Ok(LoginOutcome::MfaRequired(c)) => c,
        other => panic!("expected an MFA challenge, got {other:?}"),
    };
    // Far enough ahead that the confirmation's step is in the past.
    let t = plus(t, 600);
    let c = challenge(login(&db, "root-admin", PASSWORD, "192.0.2.1", t).await);
    let first_token = c.token().to_owned();
    assert_eq!(
        c.expires_at().micros() - t.micros(),
        CHALLENGE_SECONDS * 1_000_000
    );
    // The challenge token is no password.
    assert!(matches!(
        login(&db, "root-admin", &first_token, "192.0.2.1", t).await,
        Err(LoginError::InvalidCredentials)
    ));
    let code = mfa::code_at(&secret, step(t), 6);
    let session = auth::finish_mfa_at(&db.store, c, &first_token, &code, plus(t, 1))
        .await
        .unwrap();
    assert_eq!(session.actor.user_id(), admin.user_id());

    // A second challenge cannot be finished with the first one's token (used), nor with the
    // same TOTP code again (replayed). The replay is refused exactly as a wrong code is: the
    // refusal does not tell an onlooker that the code had been right.
    let t = plus(t, 2);
    let c = challenge(login(&db, "root-admin", PASSWORD, "192.0.2.1", t).await);
    assert!(matches!(
        auth::finish_mfa_at(&db.store, c, &first_token, &code, t).await,
        Err(LoginError::ChallengeInvalid)
    ));
    let c = challenge(login(&db, "root-admin", PASSWORD, "192.0.2.1", t).await);
    let token = c.token().to_owned();
    let replayed = auth::finish_mfa_at(&db.store, c, &token, &code, t)
        .await
        .unwrap_err();
    assert!(
        matches!(replayed, LoginError::Mfa(MfaError::InvalidCode)),
        "{replayed:?}"
    );
    let c = challenge(login(&db, "root-admin", PASSWORD, "192.0.2.1", t).await);
    let token = c.token().to_owned();
    let wrong = auth::finish_mfa_at(&db.store, c, &token, &wrong_code(&secret, t), t)
        .await
        .unwrap_err();
    assert_eq!(replayed.to_string(), wrong.to_string());
    assert!(!replayed.to_string().contains("used"));
    // Expired after five minutes, even with a fresh code.
    let t = plus(t, 60);
    let c = challenge(login(&db, "root-admin", PASSWORD, "192.0.2.9", t).await);
    let token = c.token().to_owned();
    let late = plus(t, CHALLENGE_SECONDS + 1);
    assert!(matches!(
        auth::finish_mfa_at(
            &db.store,
            c,
            &token,
            &mfa::code_at(&secret, step(late), 6),
            late
        )
        .await,
        Err(LoginError::ChallengeInvalid)
    ));
    let raw = db.raw().await;
    assert!(
        count(
            &raw,
            "SELECT COUNT(*) FROM activity_log WHERE reason = 'challenge_invalid'"
        )
        .await
            >= 2
    );
    // Only the activity log tells the replay from the wrong code.
    for reason in ["mfa_replayed", "mfa_failed"] {
        assert_eq!(
            count(
                &raw,
                &format!(
                    "SELECT COUNT(*) FROM activity_log WHERE kind = 'vigil_login' \
                     AND outcome = 'failure' AND reason = '{reason}'"
                )
            )
            .await,
            1,
            "{reason}"
        );
    }
    // Tokens are stored only as hashes.
    let stored: Vec<Vec<u8>> = sqlx::query_scalar("SELECT token_hash FROM login_challenges")
        .fetch_all(&raw)
        .await
        .unwrap();
    assert!(stored
        .iter()
        .all(|h| h.len() == 32 && h.as_slice() != first_token.as_bytes()));
    raw.close().await;
}
on_both!(the_mfa_challenge_is_single_use_short_lived_and_good_for_nothing_else);

/// A six-digit code no step within one either side of `t` has.
fn wrong_code(secret: &[u8], t: Timestamp) -> String {
    let step = t.micros() as u64 / 1_000_000 / STEP_SECONDS;
    let near: Vec<String> = (step - 1..=step + 1)
        .map(|s| mfa::code_at(secret, s, 6))
        .collect();
    (0..)
        .map(|n: u32| format!("{:06}", (n * 7919) % 1_000_000))
        .find(|c| !near.contains(c))
        .unwrap()
}

fn challenge(r: Result<LoginOutcome, LoginError>) -> MfaChallenge {
    match r {
        Ok(LoginOutcome::MfaRequired(c)) => c,
        other => panic!("expected an MFA challenge, got {other:?}"),
    }
}

/// Signs `user` in with the right password at `at` and answers the challenge with `code`.
async fn with_code(
    db: &TestDb,
    user: &str,
    ip: &str,
    code: &str,
    at: Timestamp,
) -> Result<Session, LoginError> {
    let c = challenge(login(db, user, PASSWORD, ip, at).await);
    let token = c.token().to_owned();
    auth::finish_mfa_at(&db.store, c, &token, code, at).await
}

async fn failures_of(db: &TestDb, user: &str) -> (i64, Option<i64>) {
    let raw = db.raw().await;
    let row: (i64, Option<i64>) =
        sqlx::query_as("SELECT failed_logins, locked_until FROM users WHERE username = $1")
            .bind(user)
            .fetch_one(&raw)
            .await
            .unwrap();
    raw.close().await;
    row
}

async fn wrong_second_factors_count_like_wrong_passwords(db: TestDb) {
    let (admin, _) = admin_keys(&db).await;
    let _ = common::operator_with_role(&db, "bob-officer", "compliance_officer").await;
    let (bob_keys, _dir) = common::keystore();
    let bob = common::sign_in_with(&db, &bob_keys, "bob-officer", PASSWORD).await;
    let ck = bob.credential.as_ref().unwrap();
    let e = mfa::enroll(&db.store, ck, &bob.actor).await.unwrap();
    let secret = totp_rs::Secret::Encoded(e.secret_base32.clone())
        .to_bytes()
        .unwrap();
    let step = |t: Timestamp| t.micros() as u64 / 1_000_000 / STEP_SECONDS;
    let backup = mfa::confirm(
        &db.store,
        ck,
        &bob.actor,
        &mfa::code_at(&secret, step(Timestamp::now()), 6),
    )
    .await
    .unwrap();
    let ip = |i: i64| format!("198.51.100.{i}");

    // Lockout alone: wrong codes spaced beyond the throttling window, alternately TOTP and
    // backup codes, each after the right password. Each challenge dies with its wrong code.
    let mut t = plus(t0(), 600);
    let mut spent_token = None;
    for i in 0..LOCK_AFTER {
        t = plus(t, WINDOW_SECONDS + 1);
        let wrong = if i % 2 == 0 {
            wrong_code(&secret, t)
        } else {
            "AAAA-BBBB-CCCC-DDDD".to_owned()
        };
        let c = challenge(login(&db, "bob-officer", PASSWORD, &ip(i), t).await);
        let token = c.token().to_owned();
        assert!(matches!(
            auth::finish_mfa_at(&db.store, c, &token, &wrong, t).await,
            Err(LoginError::Mfa(MfaError::InvalidCode))
        ));
        spent_token = Some(token);
    }
    assert_eq!(failures_of(&db, "bob-officer").await.0, LOCK_AFTER);
    // Locked: even the right password and a right code are refused, before either is checked.
    match login(&db, "bob-officer", PASSWORD, "203.0.113.1", plus(t, 10)).await {
        Err(LoginError::Throttled {
            retry_after_seconds,
        }) => assert!(
            (40..=60).contains(&retry_after_seconds),
            "{retry_after_seconds}"
        ),
        other => panic!("expected a lockout, got {other:?}"),
    }
    // After the lock, a challenge still takes one code only: the token a wrong code spent does
    // not come back to life for the right code.
    let t = plus(t, 61);
    let c = challenge(login(&db, "bob-officer", PASSWORD, &ip(9), t).await);
    assert!(matches!(
        auth::finish_mfa_at(
            &db.store,
            c,
            spent_token.as_deref().unwrap(),
            &mfa::code_at(&secret, step(t), 6),
            t
        )
        .await,
        Err(LoginError::ChallengeInvalid)
    ));
    // That unfinished challenge was one more failure in a row: the lock doubled.
    let (failures, locked) = failures_of(&db, "bob-officer").await;
    assert_eq!(failures, LOCK_AFTER + 1);
    assert_eq!(locked, Some(t.micros() + 120 * 1_000_000));

    // The window alone: after an administrator's unlock, wrong codes in quick succession; the
    // right password then gets no challenge.
    auth::unlock_account(&db.store, &admin, "bob-officer")
        .await
        .unwrap();
    let t = plus(t, 1);
    for i in 0..MAX_ATTEMPTS {
        let at = plus(t, i);
        assert!(matches!(
            with_code(
                &db,
                "bob-officer",
                &ip(20 + i),
                &wrong_code(&secret, at),
                at
            )
            .await,
            Err(LoginError::Mfa(MfaError::InvalidCode))
        ));
    }
    assert!(matches!(
        login(&db, "bob-officer", PASSWORD, &ip(40), plus(t, 6)).await,
        Err(LoginError::Throttled { .. })
    ));

    // Later, the right code signs in and clears the count.
    let t = plus(t, WINDOW_SECONDS + 600);
    with_code(&db, "bob-officer", &ip(50), &backup[0], t)
        .await
        .unwrap();
    assert_eq!(failures_of(&db, "bob-officer").await, (0, None));
    let raw = db.raw().await;
    assert_eq!(
        count(
            &raw,
            "SELECT COUNT(*) FROM activity_log WHERE reason = 'mfa_failed'"
        )
        .await,
        LOCK_AFTER + MAX_ATTEMPTS
    );
    raw.close().await;
}
on_both!(wrong_second_factors_count_like_wrong_passwords);

/// Thirty wrong passwords for `user`, all at once, each from its own address.
async fn burst(db: &TestDb, user: &str, at: Timestamp) -> Vec<Result<LoginOutcome, LoginError>> {
    let tasks: Vec<_> = (0..30)
        .map(|i| {
            let (store, user) = (db.store.clone(), user.to_owned());
            let source = src(&format!("203.0.113.{i}"));
            tokio::spawn(async move {
                auth::login_at(
                    &store,
                    None,
                    &user,
                    "wrong password 123",
                    &source,
                    &vigil::auth::MfaPolicy::none(),
                    at,
                )
                .await
            })
        })
        .collect();
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

/// Passwords checked so far (each check of a wrong one is logged once, as `bad_password`, or
/// as `unknown_user` for the dummy hash of an unknown name).
async fn checked(db: &TestDb, reason: &str) -> i64 {
    let raw = db.raw().await;
    let n = count(
        &raw,
        &format!(
            "SELECT COUNT(*) FROM activity_log WHERE kind = 'vigil_login' AND reason = '{reason}'"
        ),
    )
    .await;
    raw.close().await;
    n
}

fn refusals(results: &[Result<LoginOutcome, LoginError>]) -> (i64, i64) {
    let n = |f: fn(&Result<LoginOutcome, LoginError>) -> bool| {
        results.iter().filter(|r| f(r)).count() as i64
    };
    (
        n(|r| matches!(r, Err(LoginError::InvalidCredentials))),
        n(|r| matches!(r, Err(LoginError::Throttled { .. }))),
    )
}

async fn concurrent_wrong_passwords_get_no_more_checks_than_the_limit(db: TestDb) {
    let _ = admin_keys(&db).await;
    let _ = common::operator_with_role(&db, "bob-officer", "compliance_officer").await;
    let t = t0();
    let results = burst(&db, "bob-officer", t).await;
    let (invalid, throttled) = refusals(&results);
    assert_eq!(invalid + throttled, 30, "{results:?}");
    assert!((1..=MAX_ATTEMPTS).contains(&invalid), "{invalid} checked");
    assert_eq!(checked(&db, "bad_password").await, invalid);
    // The lock is set: the right password is refused too.
    let (_, locked) = failures_of(&db, "bob-officer").await;
    assert!(locked.is_some_and(|u| u > t.micros()), "{locked:?}");
    assert!(matches!(
        login(&db, "bob-officer", PASSWORD, "192.0.2.1", plus(t, 1)).await,
        Err(LoginError::Throttled { .. })
    ));

    // Once the lock and the window have passed, the next burst gets exactly one check: the
    // statement that counts it also sets the doubled lock, before any other is counted.
    let t = plus(t, WINDOW_SECONDS + 1);
    let before = checked(&db, "bad_password").await;
    let results = burst(&db, "bob-officer", t).await;
    assert_eq!(refusals(&results), (1, 29), "{results:?}");
    assert_eq!(checked(&db, "bad_password").await - before, 1);
    let (failures, locked) = failures_of(&db, "bob-officer").await;
    assert_eq!(failures, LOCK_AFTER + 1);
    assert_eq!(locked, Some(t.micros() + 120 * 1_000_000));

    // A name with no account has no lockout: its window alone holds the burst to the limit.
    let results = burst(&db, "nobody-here", t).await;
    assert_eq!(refusals(&results), (MAX_ATTEMPTS, 30 - MAX_ATTEMPTS));
    assert_eq!(checked(&db, "unknown_user").await, MAX_ATTEMPTS);
}
on_both!(concurrent_wrong_passwords_get_no_more_checks_than_the_limit);
