//! Access and refresh tokens on both databases: what verification refuses (forged algorithms,
//! tampering, wrong issuer or audience, time claims, missing claims, size, critical headers,
//! over-long lifetimes, keys of another operator or of a retired key pair), revocation by
//! logout, role and status changes, refresh rotation with reuse detection (and one winner when
//! two refreshes of one token race), credential changes ending sessions, and the platform's
//! users' tokens verified with the platform's public keys only.

mod common;

use common::{admin_keys, count, sign_in_with, PlatformIssuer, TestDb, PASSWORD};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use vigil::auth::platform_tokens::{self, PlatformTokenKeys};
use vigil::auth::tokens::{self, Claims, TokenError, ACCESS_SECONDS};
use vigil::crypto::TokenSigningKey;
use vigil::keys::KeyRing;
use vigil::mfa;
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

async fn refused(db: &TestDb, _ring: &KeyRing, token: &str) -> TokenError {
    tokens::verify_access_token(&db.store, token)
        .await
        .expect_err("the token must be refused")
}

/// Signs `claims` with `key` as EdDSA, naming key pair `kid`, with `crit` if given.
fn sign_ed(
    key: &TokenSigningKey,
    kid: &str,
    claims: &serde_json::Value,
    crit: Option<Vec<String>>,
) -> String {
    let mut h = Header::new(Algorithm::EdDSA);
    h.kid = Some(kid.into());
    h.crit = crit;
    jsonwebtoken::encode(&h, claims, &key.encoding_key()).unwrap()
}

async fn forged_and_damaged_tokens_are_refused(db: TestDb) {
    let (admin, ring) = admin_keys(&db).await;
    let pair = tokens::issue_at(&db.store, &ring, &admin, "test", Timestamp::now())
        .await
        .unwrap();
    let claims = tokens::verify_access_token(&db.store, &pair.access_token)
        .await
        .unwrap();
    assert_eq!(claims.sub, admin.user_id().to_string());
    // Signed with this machine's Ed25519 key, named by its key pair.
    let header = jsonwebtoken::decode_header(&pair.access_token).unwrap();
    assert_eq!(header.alg, Algorithm::EdDSA);
    assert_eq!(header.kid.as_deref(), Some(ring.key_pair_id()));
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

    let kid = ring.key_pair_id().to_owned();
    let own = ring.token_signing_key();
    let sign = |c: &serde_json::Value| sign_ed(own, &kid, c, None);
    // HMAC with a secret an attacker might guess (the public key itself: algorithm confusion).
    let secret = EncodingKey::from_secret(own.public_key());
    let sign_hmac = |alg: Algorithm, c: &serde_json::Value| {
        let mut h = Header::new(alg);
        h.kid = Some(kid.clone());
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
        let h = b64url(format!(r#"{{"alg":"{alg}","typ":"JWT","kid":"{kid}"}}"#).as_bytes());
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
    // HMAC (the old HS256 included), whatever the secret.
    for alg in [Algorithm::HS256, Algorithm::HS512, Algorithm::HS384] {
        assert!(matches!(
            refused(&db, &ring, &sign_hmac(alg, &good)).await,
            TokenError::Algorithm
        ));
    }
    let rs256 = format!(
        "{}.{}.{}",
        b64url(format!(r#"{{"alg":"RS256","typ":"JWT","kid":"{kid}"}}"#).as_bytes()),
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
    // A different key under this key pair's name, or a key pair nobody has.
    let other = sign_ed(&TokenSigningKey::generate(), &kid, &good, None);
    assert!(matches!(
        refused(&db, &ring, &other).await,
        TokenError::Signature
    ));
    let unknown = sign_ed(own, &uuid::Uuid::now_v7().to_string(), &good, None);
    assert!(matches!(
        refused(&db, &ring, &unknown).await,
        TokenError::UnknownKey
    ));
    let no_kid =
        jsonwebtoken::encode(&Header::new(Algorithm::EdDSA), &good, &own.encoding_key()).unwrap();
    assert!(matches!(
        refused(&db, &ring, &no_kid).await,
        TokenError::Malformed
    ));
    // A critical header extension, however harmless it looks, and an over-long lifetime.
    for crit in [vec!["exp".to_owned()], vec!["b64".to_owned()], vec![]] {
        assert!(matches!(
            refused(&db, &ring, &sign_ed(own, &kid, &good, Some(crit))).await,
            TokenError::CriticalHeader
        ));
    }
    let long = with("exp", (claims.iat + ACCESS_SECONDS + 1).into());
    assert!(matches!(
        refused(&db, &ring, &sign(&long)).await,
        TokenError::LifetimeTooLong
    ));

    // Right key, wrong claims.
    for (k, v) in [("iss", "someone-else"), ("aud", "another-app")] {
        assert!(matches!(
            refused(&db, &ring, &sign(&with(k, v.into()))).await,
            TokenError::WrongAudience
        ));
    }
    let expired = with("exp", (now - 120).into());
    assert!(matches!(
        refused(&db, &ring, &sign(&expired)).await,
        TokenError::Expired
    ));
    let early = with("nbf", (now + 600).into());
    assert!(matches!(
        refused(&db, &ring, &sign(&early)).await,
        TokenError::NotYetValid
    ));
    for missing in ["exp", "jti", "sub", "nbf"] {
        assert!(
            matches!(
                refused(&db, &ring, &sign(&without(missing))).await,
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
    let huge = sign(&with("pad", "x".repeat(5000).into()));
    assert!(matches!(
        refused(&db, &ring, &huge).await,
        TokenError::Malformed
    ));
    // Within the leeway, a token just past exp still passes.
    let near = sign(&with("exp", (now - 5).into()));
    tokens::verify_access_token(&db.store, &near).await.unwrap();
}
on_both!(forged_and_damaged_tokens_are_refused);

async fn revocation_roles_and_status_take_effect_at_once(db: TestDb) {
    let (admin, ring) = admin_keys(&db).await;
    let issue = || tokens::issue_at(&db.store, &ring, &admin, "test", Timestamp::now());
    let a = issue().await.unwrap();
    let b = issue().await.unwrap();
    let claims: Claims = tokens::verify_access_token(&db.store, &a.access_token)
        .await
        .unwrap();
    tokens::logout(&db.store, &claims).await.unwrap();
    assert!(matches!(
        refused(&db, &ring, &a.access_token).await,
        TokenError::Revoked
    ));
    tokens::verify_access_token(&db.store, &b.access_token)
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
    tokens::verify_access_token(&db.store, &b.access_token)
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
    tokens::verify_access_token(&db.store, &second.access_token)
        .await
        .unwrap();
    // The first refresh token again: theft signal. The family and session are revoked.
    assert!(matches!(
        tokens::refresh(&db.store, &ring, &first.refresh_token).await,
        Err(TokenError::Reused)
    ));
    // The family's newer token was revoked with it.
    assert!(matches!(
        tokens::refresh(&db.store, &ring, &second.refresh_token).await,
        Err(TokenError::Revoked)
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
    let verify = || verifier.verify(&db.store, &pair.access_token);
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
    assert!(verifier.verify(&db.store, &t[..t.len() - 2]).await.is_err());
    let late = Timestamp::from_micros(Timestamp::now().micros() + 2 * ACCESS_SECONDS * 1_000_000);
    assert!(matches!(
        verifier.verify_at(&db.store, t, late).await,
        Err(TokenError::Expired)
    ));
}
on_both!(a_cached_verifier_sees_every_change_at_once);

async fn an_operator_signs_tokens_only_for_themselves(db: TestDb) {
    let (admin, ring) = admin_keys(&db).await;
    let admin_pair = tokens::issue_at(&db.store, &ring, &admin, "test", Timestamp::now())
        .await
        .unwrap();
    let admin_claims = tokens::verify_access_token(&db.store, &admin_pair.access_token)
        .await
        .unwrap();
    // A moderator on their own machine, with their own key pair and token-signing key.
    let _ = common::operator_with_role(&db, "mo-moderator", "moderator").await;
    let (mo_keystore, _dir) = common::keystore();
    let mo = sign_in_with(&db, &mo_keystore, "mo-moderator", PASSWORD).await;
    let mo_ring = mo.keys.as_ref().unwrap();
    let own = tokens::issue(&db.store, mo_ring, &mo, "test")
        .await
        .unwrap();
    let mine = tokens::verify_access_token(&db.store, &own.access_token)
        .await
        .unwrap();
    assert_eq!(mine.sub, mo.actor.user_id().to_string());

    // The moderator's key signing the administrator's claims (their very session) is refused,
    // whichever key pair the header names.
    let forged = serde_json::to_value(&admin_claims).unwrap();
    let mo_key = mo_ring.token_signing_key();
    assert!(matches!(
        refused(
            &db,
            mo_ring,
            &sign_ed(mo_key, mo_ring.key_pair_id(), &forged, None)
        )
        .await,
        TokenError::WrongSigner
    ));
    assert!(matches!(
        refused(
            &db,
            mo_ring,
            &sign_ed(mo_key, ring.key_pair_id(), &forged, None)
        )
        .await,
        TokenError::Signature
    ));
    // Nor may they raise their own roles (the database check) or stretch the lifetime.
    let mut raised = serde_json::to_value(&mine).unwrap();
    raised["roles"] = serde_json::json!(["admin"]);
    assert!(matches!(
        refused(
            &db,
            mo_ring,
            &sign_ed(mo_key, mo_ring.key_pair_id(), &raised, None)
        )
        .await,
        TokenError::AccountChanged
    ));
    let mut long = serde_json::to_value(&mine).unwrap();
    long["exp"] = (mine.iat + 30 * 24 * 3600).into();
    assert!(matches!(
        refused(
            &db,
            mo_ring,
            &sign_ed(mo_key, mo_ring.key_pair_id(), &long, None)
        )
        .await,
        TokenError::LifetimeTooLong
    ));
    // The public keys are in the database; the private ones are not.
    let raw = db.raw().await;
    assert_eq!(
        count(
            &raw,
            "SELECT COUNT(*) FROM user_keys WHERE signing_public_key IS NOT NULL"
        )
        .await,
        2
    );
    raw.close().await;
}
on_both!(an_operator_signs_tokens_only_for_themselves);

async fn a_retired_key_pair_signs_nothing(db: TestDb) {
    let (admin, _ring) = admin_keys(&db).await;
    let _ = common::operator_with_role(&db, "mo-moderator", "moderator").await;
    let (mo_keystore, _dir) = common::keystore();
    let mo = sign_in_with(&db, &mo_keystore, "mo-moderator", PASSWORD).await;
    let mo_ring = mo.keys.as_ref().unwrap();
    let pair = tokens::issue(&db.store, mo_ring, &mo, "test")
        .await
        .unwrap();
    let verifier = tokens::Verifier::new();
    verifier
        .verify(&db.store, &pair.access_token)
        .await
        .unwrap();
    verifier
        .verify(&db.store, &pair.access_token)
        .await
        .unwrap(); // from the cache

    // An administrator's password reset retires the moderator's key pair: every token it signed
    // is refused at once, by the cached verifier too, and it signs no new ones that verify.
    vigil::auth::reset_password(&db.store, &admin, "mo-moderator", "temporary passphrase 1")
        .await
        .unwrap();
    let mut fresh = payload(&pair.access_token);
    fresh["jti"] = uuid::Uuid::now_v7().to_string().into();
    for t in [
        pair.access_token.clone(),
        sign_ed(
            mo_ring.token_signing_key(),
            mo_ring.key_pair_id(),
            &fresh,
            None,
        ),
    ] {
        assert!(matches!(
            tokens::verify_access_token(&db.store, &t).await,
            Err(TokenError::KeyRetired)
        ));
        assert!(matches!(
            verifier.verify(&db.store, &t).await,
            Err(TokenError::KeyRetired)
        ));
    }
}
on_both!(a_retired_key_pair_signs_nothing);

/// A platform account, as the platform records it in the shared database.
async fn platform_account(db: &TestDb, username: &str) -> String {
    let a = common::operator_with_role(db, username, "user").await;
    let raw = db.raw().await;
    common::exec(
        &raw,
        &format!("UPDATE users SET kind = 'platform' WHERE username = '{username}'"),
    )
    .await;
    raw.close().await;
    a.user_id().to_string()
}

fn jwks_file(dir: &std::path::Path, keys: serde_json::Value) -> vigil::config::PlatformConfig {
    let path = dir.join("platform.jwks");
    std::fs::write(&path, serde_json::json!({ "keys": keys }).to_string()).unwrap();
    vigil::config::PlatformConfig {
        token_keys: Some(path),
        ..Default::default()
    }
}

async fn platform_tokens_verify_with_the_platforms_public_keys_only(db: TestDb) {
    use base64::Engine;
    let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    let (admin, ring) = admin_keys(&db).await;
    let user = platform_account(&db, "pat.platform").await;
    let platform = PlatformIssuer::new();
    let keys = platform.keys();
    assert_eq!(keys.len(), 1);

    // A token the platform signed verifies against the PEM file.
    let token = platform.token(&db, &user, &["user"]).await;
    let c = platform_tokens::verify(&db.store, &keys, &token)
        .await
        .unwrap();
    assert_eq!(c.sub, user);
    let good = payload(&token);

    let refuse = |t: String| {
        let (store, keys) = (db.store.clone(), &keys);
        async move {
            platform_tokens::verify(&store, keys, &t)
                .await
                .expect_err("the token must be refused")
        }
    };
    // Another key, even an Ed25519 one; an operator's own Vigil token; HS256 keyed with the
    // platform's public key; none.
    let stranger = jsonwebtoken::encode(
        &Header::new(Algorithm::EdDSA),
        &good,
        &TokenSigningKey::generate().encoding_key(),
    )
    .unwrap();
    assert!(matches!(refuse(stranger).await, TokenError::Signature));
    let vigil_token = tokens::issue_at(&db.store, &ring, &admin, "test", Timestamp::now())
        .await
        .unwrap()
        .access_token;
    assert!(matches!(refuse(vigil_token).await, TokenError::Signature));
    let hs256 = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &good,
        &EncodingKey::from_secret(platform.signing_key().public_key()),
    )
    .unwrap();
    assert!(matches!(refuse(hs256).await, TokenError::Algorithm));
    for alg in ["none", "NONE"] {
        let t = format!(
            "{}.{}.",
            b64url(format!(r#"{{"alg":"{alg}"}}"#).as_bytes()),
            b64url(good.to_string().as_bytes())
        );
        assert!(matches!(refuse(t).await, TokenError::Algorithm));
    }
    // A critical header, a lifetime past the configured one, another issuer.
    let mut h = Header::new(Algorithm::EdDSA);
    h.crit = Some(vec!["exp".into()]);
    let crit = jsonwebtoken::encode(&h, &good, &platform.signing_key().encoding_key()).unwrap();
    assert!(matches!(refuse(crit).await, TokenError::CriticalHeader));
    let mut long = good.clone();
    long["exp"] = (good["iat"].as_i64().unwrap() + 3601).into();
    assert!(matches!(
        refuse(platform.sign(&long)).await,
        TokenError::LifetimeTooLong
    ));
    let mut other = good.clone();
    other["iss"] = "someone-else".into();
    assert!(matches!(
        refuse(platform.sign(&other)).await,
        TokenError::WrongAudience
    ));
    // The database checks apply: a revoked session proves nothing.
    let raw = db.raw().await;
    common::exec(
        &raw,
        &format!(
            "UPDATE sessions SET revoked_at = 1 WHERE id = '{}'",
            good["sid"].as_str().unwrap()
        ),
    )
    .await;
    raw.close().await;
    assert!(matches!(refuse(token).await, TokenError::Revoked));

    // A JWKS file: an RSA key (RS256) and an Ed25519 key, each named by its kid.
    let rsa_key = rsa::PrivateKey::new(&mut getrandom::SysRng, 2048).unwrap();
    let rsa_der = {
        use rsa::pkcs1::EncodeRsaPrivateKey;
        rsa_key.to_pkcs1_der().unwrap().as_bytes().to_vec()
    };
    let (n, e) = {
        use rsa::traits::PublicKeyParts;
        (rsa_key.n_bytes(), rsa_key.e_bytes())
    };
    let ed = TokenSigningKey::generate();
    let dir = tempfile::tempdir().unwrap();
    let config = jwks_file(
        dir.path(),
        serde_json::json!([
            { "kty": "RSA", "kid": "rsa-2026", "use": "sig", "alg": "RS256", "n": b64(&n), "e": b64(&e) },
            { "kty": "OKP", "crv": "Ed25519", "kid": "ed-2026", "x": b64(ed.public_key()) },
        ]),
    );
    let jwks = PlatformTokenKeys::load(&config).unwrap();
    assert_eq!(jwks.len(), 2);
    fn fresh<'a>(
        kid: &str,
        alg: Algorithm,
        key: &'a EncodingKey,
    ) -> impl Fn(&serde_json::Value) -> String + 'a {
        let mut h = Header::new(alg);
        h.kid = Some(kid.into());
        move |claims| jsonwebtoken::encode(&h, claims, key).unwrap()
    }
    let rsa_enc = EncodingKey::from_rsa_der(&rsa_der);
    let ed_enc = ed.encoding_key();
    let t = platform.token(&db, &user, &["user"]).await;
    let claims = payload(&t);
    let rs = fresh("rsa-2026", Algorithm::RS256, &rsa_enc)(&claims);
    platform_tokens::verify(&db.store, &jwks, &rs)
        .await
        .unwrap();
    let eds = fresh("ed-2026", Algorithm::EdDSA, &ed_enc)(&claims);
    platform_tokens::verify(&db.store, &jwks, &eds)
        .await
        .unwrap();
    // A kid the file does not have; a key used with another algorithm; a stranger's RSA key.
    assert!(matches!(
        platform_tokens::verify(
            &db.store,
            &jwks,
            &fresh("rsa-2019", Algorithm::RS256, &rsa_enc)(&claims)
        )
        .await,
        Err(TokenError::UnknownKey)
    ));
    assert!(matches!(
        platform_tokens::verify(
            &db.store,
            &jwks,
            &fresh("rsa-2026", Algorithm::RS512, &rsa_enc)(&claims)
        )
        .await,
        Err(TokenError::Algorithm)
    ));
    let other_rsa = rsa::PrivateKey::new(&mut getrandom::SysRng, 2048).unwrap();
    let other_der = {
        use rsa::pkcs1::EncodeRsaPrivateKey;
        other_rsa.to_pkcs1_der().unwrap().as_bytes().to_vec()
    };
    assert!(matches!(
        platform_tokens::verify(
            &db.store,
            &jwks,
            &fresh(
                "rsa-2026",
                Algorithm::RS256,
                &EncodingKey::from_rsa_der(&other_der)
            )(&claims)
        )
        .await,
        Err(TokenError::Signature)
    ));
    // The PEM-only configuration knows none of these keys.
    assert!(matches!(
        platform_tokens::verify(&db.store, &keys, &rs).await,
        Err(TokenError::Algorithm)
    ));
    assert!(matches!(
        platform_tokens::verify(&db.store, &keys, &eds).await,
        Err(TokenError::Signature)
    ));
    // A file with a symmetric key is refused whole.
    let bad = jwks_file(
        dir.path(),
        serde_json::json!([{ "kty": "oct", "k": b64(b"0123456789abcdef0123456789abcdef") }]),
    );
    assert!(PlatformTokenKeys::load(&bad).is_err());
}
on_both!(platform_tokens_verify_with_the_platforms_public_keys_only);

/// Revocation reasons of `user`'s sessions, sorted.
async fn ended_sessions(db: &TestDb, user: &str) -> Vec<String> {
    let raw = db.raw().await;
    let mut reasons: Vec<String> = sqlx::query_scalar(
        "SELECT s.revoked_reason FROM sessions s JOIN users u ON u.id = s.user_id \
         WHERE u.username = $1 AND s.revoked_at IS NOT NULL",
    )
    .bind(user)
    .fetch_all(&raw)
    .await
    .unwrap();
    raw.close().await;
    reasons.sort();
    reasons
}

async fn credential_changes_end_the_sessions_they_should(db: TestDb) {
    let (admin, admin_ring) = admin_keys(&db).await;
    let _ = common::operator_with_role(&db, "bob-officer", "compliance_officer").await;
    let (bob_keystore, _dir) = common::keystore();
    let bob = sign_in_with(&db, &bob_keystore, "bob-officer", PASSWORD).await;
    let ring = bob.keys.as_ref().unwrap();
    let issue = || tokens::issue(&db.store, ring, &bob, "test");
    let (current, other, third) = (
        issue().await.unwrap(),
        issue().await.unwrap(),
        issue().await.unwrap(),
    );
    let admins = tokens::issue_at(&db.store, &admin_ring, &admin, "test", Timestamp::now())
        .await
        .unwrap();
    let verifier = tokens::Verifier::new();
    for p in [&current, &other, &third, &admins] {
        verifier.verify(&db.store, &p.access_token).await.unwrap();
    }
    let revoked = |r: Result<Claims, TokenError>| matches!(r, Err(TokenError::Revoked));

    // Bob changes his password in `current`: his other sessions end, that one stays, and
    // nobody else's is touched. The cached verifier sees it at once.
    let new_pw = "bob's own new passphrase";
    let changed = vigil::auth::change_password(
        &db.store,
        &bob_keystore,
        &bob.actor,
        ring,
        Some(&current.session_id),
        PASSWORD,
        new_pw,
    )
    .await
    .unwrap();
    assert_eq!(changed.sessions_ended, 2);
    for p in [&other, &third] {
        assert!(revoked(
            tokens::verify_access_token(&db.store, &p.access_token).await
        ));
        assert!(revoked(verifier.verify(&db.store, &p.access_token).await));
        assert!(matches!(
            tokens::refresh(&db.store, ring, &p.refresh_token).await,
            Err(TokenError::Revoked)
        ));
    }
    verifier
        .verify(&db.store, &current.access_token)
        .await
        .unwrap();
    verifier
        .verify(&db.store, &admins.access_token)
        .await
        .unwrap();
    let current = tokens::refresh(&db.store, ring, &current.refresh_token)
        .await
        .unwrap();

    // An administrator resets Bob's MFA: all his sessions end, the current one too.
    mfa::enroll(&db.store, &changed.credential, &bob.actor)
        .await
        .unwrap();
    let fourth = issue().await.unwrap();
    assert_eq!(
        mfa::reset(&db.store, &admin, "bob-officer").await.unwrap(),
        2
    );
    for p in [&current, &fourth] {
        assert!(revoked(verifier.verify(&db.store, &p.access_token).await));
        assert!(matches!(
            tokens::refresh(&db.store, ring, &p.refresh_token).await,
            Err(TokenError::Revoked)
        ));
    }

    // An administrator resets Bob's password: all his sessions end (and his key pair retires,
    // so nothing it signed verifies either).
    let fifth = issue().await.unwrap();
    let report =
        vigil::auth::reset_password(&db.store, &admin, "bob-officer", "temporary passphrase 1")
            .await
            .unwrap();
    assert_eq!(report.sessions_ended, 1);
    assert!(verifier
        .verify(&db.store, &fifth.access_token)
        .await
        .is_err());
    assert!(tokens::refresh(&db.store, ring, &fifth.refresh_token)
        .await
        .is_err());
    assert_eq!(
        ended_sessions(&db, "bob-officer").await,
        [
            "mfa_reset",
            "mfa_reset",
            "password_changed",
            "password_changed",
            "password_reset"
        ]
    );
    // The administrator's own session never ended.
    assert!(ended_sessions(&db, "root-admin").await.is_empty());
    verifier
        .verify(&db.store, &admins.access_token)
        .await
        .unwrap();
    let raw = db.raw().await;
    for action in [
        "operator.password_changed",
        "mfa.reset",
        "operator.password_reset",
    ] {
        assert_eq!(
            count(
                &raw,
                &format!(
                    "SELECT COUNT(*) FROM audit_log WHERE action = '{action}' \
                     AND details LIKE '%sessions_ended%'"
                )
            )
            .await,
            1,
            "{action}"
        );
    }
    raw.close().await;
}
on_both!(credential_changes_end_the_sessions_they_should);

async fn two_concurrent_refreshes_of_one_token_cannot_both_succeed(db: TestDb) {
    let (admin, ring) = admin_keys(&db).await;
    for _ in 0..10 {
        let pair = tokens::issue_at(&db.store, &ring, &admin, "test", Timestamp::now())
            .await
            .unwrap();
        let (a, b) = tokio::join!(
            tokens::refresh(&db.store, &ring, &pair.refresh_token),
            tokens::refresh(&db.store, &ring, &pair.refresh_token),
        );
        let (won, lost) = match (a, b) {
            (Ok(won), Err(lost)) | (Err(lost), Ok(won)) => (won, lost),
            (a, b) => panic!("exactly one refresh must succeed: {a:?} / {b:?}"),
        };
        // The loser presented a spent token: reuse, so the family ends, the winner's new
        // token included.
        assert!(matches!(lost, TokenError::Reused), "{lost:?}");
        assert!(matches!(
            tokens::refresh(&db.store, &ring, &won.refresh_token).await,
            Err(TokenError::Revoked)
        ));
        let raw = db.raw().await;
        assert_eq!(
            count(
                &raw,
                &format!(
                    "SELECT COUNT(*) FROM refresh_tokens WHERE session_id = '{}'",
                    pair.session_id
                )
            )
            .await,
            2,
            "one new token stored, not two"
        );
        raw.close().await;
    }
}
on_both!(two_concurrent_refreshes_of_one_token_cannot_both_succeed);
