//! The security-event log on both databases: authorization denials (recorded by
//! `rbac::require` itself), token rejections, refreshes, logouts and session expiry, listed by
//! moderators and administrators only; and audit entries carrying their outcome and session.

mod common;

use common::{admin_keys, operator_with_role, TestDb};
use vigil::audit::{self, AuditFilter, Verification};
use vigil::auth::tokens::{self, TokenError, REFRESH_SECONDS};
use vigil::security_events::{
    self as events, SecurityEvent, SecurityEventError, SecurityEventFilter,
};
use vigil::store::Timestamp;

async fn all(db: &TestDb, admin: &vigil::auth::Actor) -> Vec<SecurityEvent> {
    events::list(
        &db.store,
        admin,
        &SecurityEventFilter {
            limit: Some(1000),
            ..Default::default()
        },
    )
    .await
    .expect("an administrator lists security events")
}

async fn denials_are_recorded_and_only_moderators_and_administrators_list(db: TestDb) {
    let (admin, _) = admin_keys(&db).await;
    let officer = operator_with_role(&db, "officer.one", "compliance_officer").await;
    let moderator = operator_with_role(&db, "mod.one", "moderator").await;

    // A moderator may not verify the audit chain: refused, and the refusal recorded with who,
    // what, the outcome and the session.
    let moderator = moderator.with_session_id("sess-mod");
    let e = audit::verify(&db.store, &moderator).await.unwrap_err();
    assert!(matches!(e, audit::AuditError::Forbidden(_)), "{e}");

    // A compliance officer may not read the security-event log; that refusal is recorded too.
    let e = events::list(&db.store, &officer, &SecurityEventFilter::default())
        .await
        .unwrap_err();
    assert!(matches!(e, SecurityEventError::Forbidden(_)), "{e}");

    let seen = events::list(
        &db.store,
        &moderator,
        &SecurityEventFilter {
            kind: Some("authorization_denied".into()),
            ..Default::default()
        },
    )
    .await
    .expect("a moderator lists security events");
    assert_eq!(seen.len(), 2, "{seen:?}");
    let by_mod = seen
        .iter()
        .find(|e| e.actor == Some(format!("user:{}", moderator.user_id())))
        .expect("the moderator's denial");
    assert_eq!(by_mod.attempted, "audit_verify");
    assert_eq!(by_mod.outcome, "denied");
    assert_eq!(by_mod.session_id.as_deref(), Some("sess-mod"));
    let by_officer = seen
        .iter()
        .find(|e| e.actor == Some(format!("user:{}", officer.user_id())))
        .expect("the officer's denial");
    assert_eq!(by_officer.attempted, "security_events_read");
    assert_eq!(by_officer.outcome, "denied");
    assert_eq!(by_officer.session_id, None);
    // No username or other personal data in the record; the list names the operator.
    assert!(!by_officer.details.contains("officer.one"));
    assert_eq!(by_officer.actor_name.as_deref(), Some("officer.one"));

    // Filters: by actor, by outcome.
    let only_officer = events::list(
        &db.store,
        &moderator,
        &SecurityEventFilter {
            actor: Some(format!("user:{}", officer.user_id())),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(only_officer.len(), 1);
    let successes = events::list(
        &db.store,
        &moderator,
        &SecurityEventFilter {
            outcome: Some("success".into()),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert!(successes.is_empty(), "{successes:?}");

    // The refused operations changed nothing: no audit entry was written for them.
    let entries = audit::list(&db.store, &admin, &AuditFilter::default())
        .await
        .unwrap();
    assert!(entries.iter().all(|e| e.action != "audit.verified"));
}
on_both!(denials_are_recorded_and_only_moderators_and_administrators_list);

async fn token_rejections_refreshes_logouts_and_expiry_are_recorded(db: TestDb) {
    let (admin, ring) = admin_keys(&db).await;
    let me = format!("user:{}", admin.user_id());
    let now = Timestamp::now();

    // A token that is not one: recorded with its reason, naming nobody.
    let e = tokens::verify_access_token(&db.store, "not-a-token")
        .await
        .unwrap_err();
    assert!(matches!(e, TokenError::Malformed), "{e}");
    // A real token, tampered: the signature fails; still nobody is named.
    let pair = tokens::issue_at(&db.store, &ring, &admin, "test", now)
        .await
        .unwrap();
    let mut bad = pair.access_token.clone();
    let last = bad.pop().unwrap();
    bad.push(if last == 'A' { 'B' } else { 'A' });
    assert!(tokens::verify_access_token(&db.store, &bad).await.is_err());

    // A refresh: recorded as a success in the session.
    let fresh = tokens::refresh_at(&db.store, &ring, &pair.refresh_token, now)
        .await
        .unwrap();
    // The spent token again: refused (reuse), recorded as a failure.
    let e = tokens::refresh_at(&db.store, &ring, &pair.refresh_token, now)
        .await
        .unwrap_err();
    assert!(matches!(e, TokenError::Reused), "{e}");

    // A second session, refreshed after its absolute lifetime: the session expired.
    let other = tokens::issue_at(&db.store, &ring, &admin, "test", now)
        .await
        .unwrap();
    let later = Timestamp::from_micros(now.micros() + (REFRESH_SECONDS + 60) * 1_000_000);
    let e = tokens::refresh_at(&db.store, &ring, &other.refresh_token, later)
        .await
        .unwrap_err();
    assert!(matches!(e, TokenError::SessionExpired), "{e}");

    // A third session, ended by its operator.
    let third = tokens::issue_at(&db.store, &ring, &admin, "test", now)
        .await
        .unwrap();
    assert!(tokens::logout_refresh(&db.store, &third.refresh_token)
        .await
        .unwrap());
    // A token of an ended session: refused as revoked, naming its signer and session.
    let e = tokens::verify_access_token(&db.store, &third.access_token)
        .await
        .unwrap_err();
    assert!(matches!(e, TokenError::Revoked), "{e}");

    let seen = all(&db, &admin).await;
    let find = |kind: &str, outcome: &str, reason: Option<&str>| {
        seen.iter()
            .filter(|e| {
                e.kind == kind
                    && e.outcome == outcome
                    && reason.is_none_or(|r| e.details.contains(&format!("\"reason\":\"{r}\"")))
            })
            .collect::<Vec<_>>()
    };
    let malformed = find("token_rejected", "failed", Some("malformed"));
    assert_eq!(malformed.len(), 1, "{seen:?}");
    assert_eq!(malformed[0].actor, None);
    assert_eq!(malformed[0].actor_name, None);
    assert_eq!(malformed[0].attempted, "access_token");
    let signature = find("token_rejected", "failed", Some("signature"));
    assert_eq!(signature.len(), 1, "{seen:?}");
    assert_eq!(signature[0].actor, None);
    let revoked = find("token_rejected", "failed", Some("revoked"));
    assert_eq!(revoked.len(), 1, "{seen:?}");
    assert_eq!(revoked[0].actor.as_deref(), Some(me.as_str()));
    assert_eq!(
        revoked[0].session_id.as_deref(),
        Some(third.session_id.as_str())
    );

    let refreshed = find("token_refreshed", "success", None);
    assert_eq!(refreshed.len(), 1, "{seen:?}");
    assert_eq!(refreshed[0].actor.as_deref(), Some(me.as_str()));
    assert_eq!(
        refreshed[0].session_id.as_deref(),
        Some(fresh.session_id.as_str())
    );
    let reused = find("token_refreshed", "failed", Some("reused"));
    assert_eq!(reused.len(), 1, "{seen:?}");
    assert_eq!(
        reused[0].session_id.as_deref(),
        Some(pair.session_id.as_str())
    );

    let expired = find("session_expired", "success", Some("absolute_lifetime"));
    assert_eq!(expired.len(), 1, "{seen:?}");
    assert_eq!(
        expired[0].session_id.as_deref(),
        Some(other.session_id.as_str())
    );

    let logout = find("logout", "success", None);
    assert_eq!(logout.len(), 1, "{seen:?}");
    assert_eq!(logout[0].actor.as_deref(), Some(me.as_str()));
    assert_eq!(
        logout[0].session_id.as_deref(),
        Some(third.session_id.as_str())
    );

    // No token text anywhere in the log.
    for e in &seen {
        assert!(!e.details.contains(&pair.access_token[..20]), "{e:?}");
        assert!(!e.details.contains(pair.refresh_token.as_str()), "{e:?}");
    }

    // The lock and unlock a console reports.
    events::record_session_locked(&db.store, &admin, "idle").await;
    events::record_session_unlock(&db.store, &admin, events::Outcome::Failed).await;
    let seen = all(&db, &admin).await;
    assert!(seen
        .iter()
        .any(|e| e.kind == "session_locked" && e.actor.as_deref() == Some(me.as_str())));
    assert!(seen
        .iter()
        .any(|e| e.kind == "session_unlocked" && e.outcome == "failed"));
}
on_both!(token_rejections_refreshes_logouts_and_expiry_are_recorded);

async fn audit_entries_carry_their_outcome_and_session_and_still_chain(db: TestDb) {
    let (admin, _) = admin_keys(&db).await;
    let admin = admin.with_session_id("sess-admin");
    audit::verify(&db.store, &admin).await.unwrap();
    let entries = audit::list(&db.store, &admin, &AuditFilter::default())
        .await
        .unwrap();
    let verified = entries
        .iter()
        .find(|e| e.action == "audit.verified")
        .expect("the verification's own entry");
    assert_eq!(verified.outcome, "success");
    assert_eq!(verified.session_id.as_deref(), Some("sess-admin"));
    // Entries written without a session keep none.
    assert!(entries
        .iter()
        .any(|e| e.action == "operator.bootstrapped" && e.session_id.is_none()));

    // An entry with another outcome, then the chain (hashed in Rust on SQLite, in the
    // definer function on Postgres) still verifies.
    let mut tx = db.store.begin().await.unwrap();
    audit::append(
        &mut tx,
        &audit::NewAuditEntry::new(&admin, audit::AuditAction::BenchmarkEntry)
            .outcome(events::Outcome::Denied),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let v = audit::verify_chain(&db.store).await.unwrap();
    assert!(matches!(v, Verification::Ok { .. }), "{v:?}");

    // Changing a recorded outcome or session breaks the chain.
    let raw = db.raw().await;
    common::exec(
        &raw,
        "UPDATE audit_log SET outcome = 'success' WHERE action = 'bench.entry'",
    )
    .await;
    let v = audit::verify_chain(&db.store).await.unwrap();
    assert!(matches!(v, Verification::Broken { .. }), "{v:?}");
}
on_both!(audit_entries_carry_their_outcome_and_session_and_still_chain);

async fn an_email_search_is_audited_without_the_address(db: TestDb) {
    use vigil::auth::users::{self, DirectoryQuery, DirectorySearch};
    let (admin, ring) = admin_keys(&db).await;
    let opts = vigil::demo::SeedOptions {
        users: 5,
        comments: 5,
        days: 1,
        seed: 3,
        scenarios: false,
    };
    vigil::demo::seed(&db.store, &admin, &ring, opts, &mut |_| {})
        .await
        .unwrap();
    let id = vigil::platform::sample_user_ids(&db.store, 1)
        .await
        .unwrap()[0];
    let email = vigil::platform::user_email(&db.store, &ring, id)
        .await
        .unwrap()
        .unwrap();
    let search = |text: String| DirectoryQuery {
        search: DirectorySearch::from_text(&text),
        page_size: 10,
        ..DirectoryQuery::default()
    };
    let before = audit::head_seq(&db.store).await.unwrap();
    let hit = users::directory(&db.store, &admin, Some(&ring), &search(email.clone()))
        .await
        .unwrap();
    assert_eq!(hit.total, 1);
    users::directory(&db.store, &admin, Some(&ring), &search(format!("x{email}")))
        .await
        .unwrap();
    // A search by username is not a read of personal data.
    users::directory(&db.store, &admin, Some(&ring), &search("user".into()))
        .await
        .unwrap();

    let entries = audit::list(&db.store, &admin, &AuditFilter::default())
        .await
        .unwrap();
    let reads: Vec<_> = entries
        .iter()
        .filter(|e| e.seq > before && e.action == "pii.read")
        .collect();
    assert_eq!(reads.len(), 2, "one entry per search: {reads:?}");
    for r in &reads {
        assert!(r.details.contains("\"purpose\":\"directory_email_search\""));
        assert!(!r.details.contains(&email), "{r:?}");
        assert!(!r.details.contains('@'), "{r:?}");
        assert_eq!(r.actor, format!("user:{}", admin.user_id()));
    }
    // Newest first: the miss names no account, the hit names the account found.
    assert_eq!(reads[0].target, None);
    assert_eq!(reads[1].target, Some(format!("user:{id}")));
    let v = audit::verify_chain(&db.store).await.unwrap();
    assert!(matches!(v, Verification::Ok { .. }), "{v:?}");
}
on_both!(an_email_search_is_audited_without_the_address);
