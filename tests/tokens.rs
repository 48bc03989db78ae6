//! Access and refresh tokens on both databases: what verification refuses (forged algorithms,
//! tampering, wrong issuer or audience, time claims, missing claims, size), revocation by
//! logout, role and status changes, and refresh rotation with reuse detection.

mod common;

use common::{admin_keys, count, TestDb};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use vigil::auth::tokens::{self, Claims, TokenError, ACCESS_SECONDS};
use vigil::crypto::KeyVersion;
use vigil::keys::Purpose;
use vigil::store::Timestamp;

fn b64url(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..=chunk.len() {
            out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}

fn payload(token: &str) -> serde_json::Value {
    let part = token.split('.').nth(1).unwrap();
    let mut bits = 0u32;
    let mut n = 0;
    let mut out = Vec::new();
    for c in part.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'-' => 62,
            _ => 63,
        };
        bits = (bits << 6) | u32::from(v);
        n += 6;
        if n >= 8 {
            n -= 8;
            out.push((bits >> n) as u8);
        }
    }
    serde_json::from_slice(&out).unwrap()
}

async fn refused(db: &TestDb, ring: &vigil::keys::KeyRing, token: &str) -> TokenError {
    tokens::verify_access_token(&db.store, ring, token)
        .await
        .expect_err("the token must be refused")
}

async fn forged_and_damaged_tokens_are_refused(db: TestDb) {
    let (admin, ring) = admin_keys(&db).await;
    let pair = tokens::issue_at(&db.store, &ring, &admin, "test", Timestamp::now())
        .await
        .unwrap();
    let claims = tokens::verify_access_token(&db.store, &ring, &pair.access_token)
        .await
        .unwrap();
    assert_eq!(claims.sub, admin.user_id().to_string());
    assert_eq!(claims.roles, ["admin"]);
    assert_eq!(claims.exp - claims.iat, ACCESS_SECONDS);
    // No personal data in the token: no username, no email.
    let body = payload(&pair.access_token);
    assert!(!body.to_string().contains("root-admin"), "{body}");
    let keys: Vec<&str> = body
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        ["aud", "exp", "iat", "iss", "jti", "nbf", "roles", "sid", "sub"]
    );

    let key = ring
        .key(&db.store, Purpose::Jwt, KeyVersion(1))
        .await
        .unwrap();
    let secret = EncodingKey::from_secret(key.expose());
    let sign = |alg: Algorithm, c: &serde_json::Value| {
        let mut h = Header::new(alg);
        h.kid = Some("jwt-v1".into());
        jsonwebtoken::encode(&h, c, &secret).unwrap()
    };
    let good = serde_json::to_value(&claims).unwrap();
    let with = |k: &str, v: serde_json::Value| {
        let mut c = good.clone();
        c[k] = v;
        c
    };
    let without = |k: &str| {
        let mut c = good.clone();
        c.as_object_mut().unwrap().remove(k);
        c
    };
    let now = claims.iat;

    // alg: none in any casing, signed or not.
    for alg in ["none", "None", "NONE", "nOnE"] {
        let h = b64url(format!(r#"{{"alg":"{alg}","typ":"JWT","kid":"jwt-v1"}}"#).as_bytes());
        let p = b64url(good.to_string().as_bytes());
        for sig in ["", "AAAA"] {
            let t = format!("{h}.{p}.{sig}");
            assert!(
                matches!(
                    refused(&db, &ring, &t).await,
                    TokenError::Algorithm | TokenError::Malformed
                ),
                "alg {alg}"
            );
        }
    }
    // Other algorithms, even with the right key.
    for alg in [Algorithm::HS512, Algorithm::HS384] {
        assert!(matches!(
            refused(&db, &ring, &sign(alg, &good)).await,
            TokenError::Algorithm
        ));
    }
    let rs256 = format!(
        "{}.{}.{}",
        b64url(br#"{"alg":"RS256","typ":"JWT","kid":"jwt-v1"}"#),
        b64url(good.to_string().as_bytes()),
        b64url(&[7u8; 256])
    );
    assert!(matches!(
        refused(&db, &ring, &rs256).await,
        TokenError::Algorithm
    ));

    // Tampered payload (roles raised) or signature.
    let parts: Vec<&str> = pair.access_token.split('.').collect();
    let raised = with("roles", serde_json::json!(["admin", "compliance_officer"]));
    let forged = format!(
        "{}.{}.{}",
        parts[0],
        b64url(raised.to_string().as_bytes()),
        parts[2]
    );
    assert!(matches!(
        refused(&db, &ring, &forged).await,
        TokenError::Signature
    ));
    let mut sig = parts[2].as_bytes().to_vec();
    sig[5] = if sig[5] == b'A' { b'B' } else { b'A' };
    let bent = format!(
        "{}.{}.{}",
        parts[0],
        parts[1],
        String::from_utf8(sig).unwrap()
    );
    assert!(matches!(
        refused(&db, &ring, &bent).await,
        TokenError::Signature
    ));
    // A different key.
    let other = jsonwebtoken::encode(
        &{
            let mut h = Header::new(Algorithm::HS256);
            h.kid = Some("jwt-v1".into());
            h
        },
        &good,
        &EncodingKey::from_secret(b"some other key, 32 bytes long!!!"),
    )
    .unwrap();
    assert!(matches!(
        refused(&db, &ring, &other).await,
        TokenError::Signature
    ));

    // Right key, wrong claims.
    for (k, v) in [("iss", "someone-else"), ("aud", "another-app")] {
        assert!(matches!(
            refused(&db, &ring, &sign(Algorithm::HS256, &with(k, v.into()))).await,
            TokenError::WrongAudience
        ));
    }
    let expired = with("exp", (now - 120).into());
    assert!(matches!(
        refused(&db, &ring, &sign(Algorithm::HS256, &expired)).await,
        TokenError::Expired
    ));
    let early = with("nbf", (now + 600).into());
    assert!(matches!(
        refused(&db, &ring, &sign(Algorithm::HS256, &early)).await,
        TokenError::NotYetValid
    ));
    for missing in ["exp", "jti", "sub", "nbf"] {
        assert!(
            matches!(
                refused(&db, &ring, &sign(Algorithm::HS256, &without(missing))).await,
                TokenError::Malformed
            ),
            "missing {missing}"
        );
    }
    // Truncated, empty, oversized.
    let t = &pair.access_token;
    for cut in [&t[..t.len() - 10], &t[..t.rfind('.').unwrap()], "", "a.b.c"] {
        assert!(matches!(
            refused(&db, &ring, cut).await,
            TokenError::Malformed | TokenError::Signature
        ));
    }
    let huge = sign(Algorithm::HS256, &with("pad", "x".repeat(5000).into()));
    assert!(matches!(
        refused(&db, &ring, &huge).await,
        TokenError::Malformed
    ));
    // Within the leeway, a token just past exp still passes.
    let near = sign(Algorithm::HS256, &with("exp", (now - 5).into()));
    tokens::verify_access_token(&db.store, &ring, &near)
        .await
        .unwrap();
}
on_both!(forged_and_damaged_tokens_are_refused);

async fn revocation_roles_and_status_take_effect_at_once(db: TestDb) {
    let (admin, ring) = admin_keys(&db).await;
    let issue = || tokens::issue_at(&db.store, &ring, &admin, "test", Timestamp::now());
    let a = issue().await.unwrap();
    let b = issue().await.unwrap();
    let claims: Claims = tokens::verify_access_token(&db.store, &ring, &a.access_token)
        .await
        .unwrap();
    tokens::logout(&db.store, &claims).await.unwrap();
    assert!(matches!(
        refused(&db, &ring, &a.access_token).await,
        TokenError::Revoked
    ));
    tokens::verify_access_token(&db.store, &ring, &b.access_token)
        .await
        .unwrap();
    // The logged-out session's refresh token is dead too.
    assert!(tokens::refresh(&db.store, &ring, &a.refresh_token)
        .await
        .is_err());

    // Roles are re-checked: a role removed (or added) refuses the old token.
    let raw = db.raw().await;
    common::exec(&raw, "UPDATE user_roles SET role = 'moderator'").await;
    assert!(matches!(
        refused(&db, &ring, &b.access_token).await,
        TokenError::AccountChanged
    ));
    common::exec(&raw, "UPDATE user_roles SET role = 'admin'").await;
    tokens::verify_access_token(&db.store, &ring, &b.access_token)
        .await
        .unwrap();
    common::exec(&raw, "UPDATE users SET status = 'suspended'").await;
    assert!(matches!(
        refused(&db, &ring, &b.access_token).await,
        TokenError::AccountChanged
    ));
    common::exec(&raw, "UPDATE users SET status = 'active'").await;

    // Log out everywhere.
    let c = issue().await.unwrap();
    assert_eq!(
        tokens::logout_everywhere(&db.store, admin.user_id())
            .await
            .unwrap(),
        2
    );
    for t in [&b.access_token, &c.access_token] {
        assert!(matches!(refused(&db, &ring, t).await, TokenError::Revoked));
    }
    // Old denylist entries are cleaned up once their tokens would have expired anyway.
    common::exec(&raw, "UPDATE revoked_tokens SET expires_at = 0").await;
    assert_eq!(
        tokens::purge_expired_revocations(&db.store).await.unwrap(),
        1
    );
    assert_eq!(count(&raw, "SELECT COUNT(*) FROM revoked_tokens").await, 0);
    raw.close().await;
}
on_both!(revocation_roles_and_status_take_effect_at_once);

async fn refresh_rotates_and_reuse_revokes_the_family(db: TestDb) {
    let (admin, ring) = admin_keys(&db).await;
    let first = tokens::issue_at(&db.store, &ring, &admin, "test", Timestamp::now())
        .await
        .unwrap();
    let second = tokens::refresh(&db.store, &ring, &first.refresh_token)
        .await
        .unwrap();
    assert_eq!(second.session_id, first.session_id);
    assert_ne!(*second.refresh_token, *first.refresh_token);
    tokens::verify_access_token(&db.store, &ring, &second.access_token)
        .await
        .unwrap();
    // The first refresh token again: theft signal. The family and session are revoked.
    assert!(matches!(
        tokens::refresh(&db.store, &ring, &first.refresh_token).await,
        Err(TokenError::Reused)
    ));
    assert!(matches!(
        tokens::refresh(&db.store, &ring, &second.refresh_token).await,
        Err(TokenError::Reused)
    ));
    assert!(matches!(
        refused(&db, &ring, &second.access_token).await,
        TokenError::Revoked
    ));
    assert!(matches!(
        tokens::refresh(&db.store, &ring, "not-a-token").await,
        Err(TokenError::InvalidRefresh)
    ));
    let raw = db.raw().await;
    assert!(
        count(
            &raw,
            "SELECT COUNT(*) FROM audit_log WHERE action = 'tokens.refresh_reused'"
        )
        .await
            >= 1
    );
    // Refresh tokens are stored only as hashes.
    let stored: Vec<Vec<u8>> = sqlx::query_scalar("SELECT token_hash FROM refresh_tokens")
        .fetch_all(&raw)
        .await
        .unwrap();
    assert!(stored
        .iter()
        .all(|h| h.len() == 32 && h.as_slice() != first.refresh_token.as_bytes()));
    raw.close().await;
}
on_both!(refresh_rotates_and_reuse_revokes_the_family);

async fn a_cached_verifier_sees_every_change_at_once(db: TestDb) {
    let (admin, ring) = admin_keys(&db).await;
    let verifier = tokens::Verifier::new();
    let pair = tokens::issue_at(&db.store, &ring, &admin, "test", Timestamp::now())
        .await
        .unwrap();
    let verify = || verifier.verify(&db.store, &ring, &pair.access_token);
    verify().await.unwrap();
    verify().await.unwrap(); // from the cache
    let raw = db.raw().await;
    // Changes made behind Vigil's back (raw SQL) still invalidate the cached result.
    for (change, undo) in [
        (
            "UPDATE user_roles SET role = 'moderator'",
            "UPDATE user_roles SET role = 'admin'",
        ),
        (
            "UPDATE users SET status = 'suspended'",
            "UPDATE users SET status = 'active'",
        ),
        (
            "DELETE FROM user_roles",
            "INSERT INTO user_roles (user_id, role, granted_at) SELECT id, 'admin', 0 FROM users",
        ),
    ] {
        common::exec(&raw, change).await;
        assert!(
            matches!(verify().await, Err(TokenError::AccountChanged)),
            "{change}"
        );
        common::exec(&raw, undo).await;
        verify().await.unwrap();
    }
    common::exec(&raw, "UPDATE sessions SET revoked_at = 1").await;
    assert!(matches!(verify().await, Err(TokenError::Revoked)));
    raw.close().await;
    // Forged or expired tokens are refused before any cache is consulted.
    let t = &pair.access_token;
    assert!(verifier
        .verify(&db.store, &ring, &t[..t.len() - 2])
        .await
        .is_err());
    let late = Timestamp::from_micros(Timestamp::now().micros() + 2 * ACCESS_SECONDS * 1_000_000);
    assert!(matches!(
        verifier.verify_at(&db.store, &ring, t, late).await,
        Err(TokenError::Expired)
    ));
}
on_both!(a_cached_verifier_sees_every_change_at_once);
