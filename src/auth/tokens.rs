//! Access and refresh tokens.
//!
//! Access tokens are HS256 JWTs signed with the `jwt` data key (its version in `kid`), one hour,
//! carrying `iss`, `aud`, `sub` (the account id), `sid` (the session), `roles`, `iat`, `nbf`,
//! `exp` and `jti`, and no personal data. Verification pins the algorithm, checks the signature
//! and every claim (30 s leeway), then in one database round trip that the `jti` is not
//! revoked, the session is live, the account is active and still holds exactly those roles.
//! Refresh tokens are 256 random bits, stored as SHA-256, 30 days, rotated on every use; a
//! rotated token presented again revokes its whole family and session (theft signal, audited).

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::{repo, Actor, Session, UserId};
use crate::audit::{self, AuditAction, AuditActor, NewAuditEntry};
use crate::crypto::KeyVersion;
use crate::keys::{KeyError, KeyRing, Purpose};
use crate::store::{Store, StoreError, Timestamp};

/// `iss` of every access token.
pub const ISSUER: &str = "vigil";
/// `aud` of every access token.
pub const AUDIENCE: &str = "vigil-console";
/// Access token lifetime.
pub const ACCESS_SECONDS: i64 = 3600;
/// Refresh token (and session) lifetime.
pub const REFRESH_SECONDS: i64 = 30 * 24 * 3600;
/// Clock skew tolerated on `exp`, `nbf` and `iat`.
pub const LEEWAY_SECONDS: u64 = 30;
/// Longest token accepted for parsing.
pub const MAX_TOKEN_LEN: usize = 4096;

/// An access token's claims.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Issuer.
    pub iss: String,
    /// Audience.
    pub aud: String,
    /// The account id.
    pub sub: String,
    /// The session id.
    pub sid: String,
    /// Roles when issued.
    pub roles: Vec<String>,
    /// Issued at (seconds).
    pub iat: i64,
    /// Not before (seconds).
    pub nbf: i64,
    /// Expires (seconds).
    pub exp: i64,
    /// Token id, for revocation.
    pub jti: String,
}

/// A fresh pair. The refresh token is a secret: it is never logged and is stored only hashed.
#[derive(Clone)]
pub struct TokenPair {
    /// The JWT.
    pub access_token: String,
    /// The opaque refresh token.
    pub refresh_token: Zeroizing<String>,
    /// The session both belong to.
    pub session_id: String,
    /// When the access token expires.
    pub access_expires_at: Timestamp,
}

impl std::fmt::Debug for TokenPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenPair")
            .field("session_id", &self.session_id)
            .finish_non_exhaustive()
    }
}

/// Why a token was refused. The message says why, never what the token held.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// Not a well-formed JWT, too long, or missing a required claim.
    #[error("malformed token")]
    Malformed,
    /// The header names an algorithm other than HS256 (`none` included).
    #[error("token algorithm not allowed")]
    Algorithm,
    /// The signature does not verify.
    #[error("token signature is invalid")]
    Signature,
    /// Wrong `iss` or `aud`.
    #[error("token was not issued for this console")]
    WrongAudience,
    /// Past `exp`.
    #[error("token has expired")]
    Expired,
    /// Before `nbf` (or issued in the future).
    #[error("token is not valid yet")]
    NotYetValid,
    /// The `jti` or its session was revoked.
    #[error("token has been revoked")]
    Revoked,
    /// The account is gone, not active, or its roles changed since the token was issued.
    #[error("the account is no longer active with these roles")]
    AccountChanged,
    /// A security incident requires the account to sign in again (with MFA if enrolled):
    /// sessions begun before the requirement no longer verify.
    #[error("this account must sign in again to continue")]
    StepUpRequired,
    /// A refresh token that was already used: its family and session are now revoked.
    #[error("refresh token reuse detected; the session was revoked")]
    Reused,
    /// An unknown or expired refresh token.
    #[error("invalid refresh token")]
    InvalidRefresh,
    /// The signing key is not available to this session.
    #[error(transparent)]
    Keys(#[from] KeyError),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for TokenError {
    fn from(e: sqlx::Error) -> Self {
        TokenError::Store(e.into())
    }
}

fn secs(t: Timestamp) -> i64 {
    t.micros().div_euclid(1_000_000)
}

fn hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

fn random_token() -> Zeroizing<String> {
    let mut raw = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut raw);
    Zeroizing::new(hex::encode(raw))
}

async fn sign(
    store: &Store,
    ring: &KeyRing,
    user: &str,
    session: &str,
    roles: Vec<String>,
    now: Timestamp,
) -> Result<(String, Timestamp), TokenError> {
    let (version, key) = ring.current(store, Purpose::Jwt).await?;
    let claims = Claims {
        iss: ISSUER.into(),
        aud: AUDIENCE.into(),
        sub: user.into(),
        sid: session.into(),
        roles,
        iat: secs(now),
        nbf: secs(now),
        exp: secs(now) + ACCESS_SECONDS,
        jti: uuid::Uuid::now_v7().to_string(),
    };
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some(format!("jwt-v{}", version.0));
    let token = jsonwebtoken::encode(&header, &claims, &EncodingKey::from_secret(key.expose()))
        .map_err(|_| TokenError::Malformed)?;
    Ok((token, Timestamp::from_micros(claims.exp * 1_000_000)))
}

/// Opens a session for a signed-in operator and issues its first pair.
pub async fn issue(
    store: &Store,
    ring: &KeyRing,
    session: &Session,
    client: &str,
) -> Result<TokenPair, TokenError> {
    issue_at(store, ring, &session.actor, client, Timestamp::now()).await
}

/// [`issue`] for `actor` at a given time (tests step the clock).
pub async fn issue_at(
    store: &Store,
    ring: &KeyRing,
    actor: &Actor,
    client: &str,
    now: Timestamp,
) -> Result<TokenPair, TokenError> {
    let session_id = uuid::Uuid::now_v7().to_string();
    let expires = Timestamp::from_micros(now.micros() + REFRESH_SECONDS * 1_000_000);
    repo::insert_session(store, &session_id, actor.user_id(), client, now, expires).await?;
    let refresh = random_token();
    let mut tx = store.begin().await?;
    let family = uuid::Uuid::now_v7().to_string();
    repo::insert_refresh(&mut tx, &session_id, &family, &hash(&refresh), now, expires).await?;
    tx.commit().await?;
    let roles = actor
        .roles()
        .iter()
        .map(|r| r.as_str().to_owned())
        .collect();
    let user = actor.user_id().to_string();
    let (access_token, access_expires_at) =
        sign(store, ring, &user, &session_id, roles, now).await?;
    Ok(TokenPair {
        access_token,
        refresh_token: refresh,
        session_id,
        access_expires_at,
    })
}

/// Checks an access token completely; see the module documentation.
pub async fn verify_access_token(
    store: &Store,
    ring: &KeyRing,
    token: &str,
) -> Result<Claims, TokenError> {
    verify_access_token_at(store, ring, token, Timestamp::now()).await
}

/// [`verify_access_token`] at a given time (tests step the clock).
pub async fn verify_access_token_at(
    store: &Store,
    ring: &KeyRing,
    token: &str,
    now: Timestamp,
) -> Result<Claims, TokenError> {
    let c = check_token(store, ring, token, now).await?;
    check_account(store, &c, now).await?;
    Ok(c)
}

/// A verifier that remembers, per token, that its database checks passed and at which
/// authorisation epoch. The epoch is bumped (by triggers, so even by changes made outside
/// Vigil) on every status, role, session or token revocation change, so a cached result is
/// used only while nothing that could invalidate it has happened: revocation stays immediate,
/// and a verification costs one primary-key read instead of the full checks.
#[derive(Default)]
pub struct Verifier {
    cache: std::sync::Mutex<std::collections::HashMap<String, (i64, i64)>>,
    /// A connection kept for the epoch reads, so they do not queue on the pool.
    conn: tokio::sync::Mutex<Option<sqlx::pool::PoolConnection<sqlx::Any>>>,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier").finish_non_exhaustive()
    }
}

impl Verifier {
    /// An empty verifier.
    pub fn new() -> Self {
        Self::default()
    }

    /// Checks an access token completely, as [`verify_access_token`] does.
    pub async fn verify(
        &self,
        store: &Store,
        ring: &KeyRing,
        token: &str,
    ) -> Result<Claims, TokenError> {
        self.verify_at(store, ring, token, Timestamp::now()).await
    }

    /// [`Verifier::verify`] at a given time.
    pub async fn verify_at(
        &self,
        store: &Store,
        ring: &KeyRing,
        token: &str,
        now: Timestamp,
    ) -> Result<Claims, TokenError> {
        let c = check_token(store, ring, token, now).await?;
        let cached = self
            .cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&c.jti)
            .copied();
        if let Some((epoch, session_end)) = cached {
            if session_end > now.micros() && self.epoch(store).await? == epoch {
                return Ok(c);
            }
        }
        let (epoch, session_end) = check_account(store, &c, now).await?;
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= 50_000 {
            cache.clear();
        }
        cache.insert(c.jti.clone(), (epoch, session_end));
        Ok(c)
    }

    async fn epoch(&self, store: &Store) -> Result<i64, TokenError> {
        let mut slot = self.conn.lock().await;
        if slot.is_none() {
            *slot = Some(repo::dedicated(store).await?);
        }
        let conn = slot.as_mut().expect("just filled");
        match repo::auth_epoch(conn).await {
            Ok(e) => Ok(e),
            Err(e) => {
                // Drop a broken connection; the next call takes a fresh one.
                *slot = None;
                Err(e.into())
            }
        }
    }
}

/// The database checks: returns the epoch they were made at and the session's end.
async fn check_account(
    store: &Store,
    c: &Claims,
    now: Timestamp,
) -> Result<(i64, i64), TokenError> {
    let mut claimed = c.roles.clone();
    claimed.sort();
    claimed.dedup();
    if claimed.len() != c.roles.len() || claimed.len() > 8 {
        return Err(TokenError::Malformed);
    }
    let facts = repo::token_facts(store, &c.sub, &c.jti, &c.sid, &claimed, now).await?;
    if facts.jti_revoked || (facts.status.is_some() && !facts.session_live) {
        return Err(TokenError::Revoked);
    }
    if facts.status.as_deref() != Some("active") || !facts.roles_match {
        return Err(TokenError::AccountChanged);
    }
    if facts.step_up_required {
        return Err(TokenError::StepUpRequired);
    }
    Ok((facts.epoch, facts.session_expires_at.unwrap_or(0)))
}

/// The token itself: size, algorithm, signature, issuer, audience and time claims.
async fn check_token(
    store: &Store,
    ring: &KeyRing,
    token: &str,
    now: Timestamp,
) -> Result<Claims, TokenError> {
    let token = token.trim();
    if token.is_empty() || token.len() > MAX_TOKEN_LEN {
        return Err(TokenError::Malformed);
    }
    // The algorithm is read from the raw header first, so `none` (in any casing) and other
    // names the JWT crate does not even parse are reported as what they are.
    let alg = token
        .split('.')
        .next()
        .and_then(|h| {
            use base64::Engine;
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(h)
                .ok()
        })
        .and_then(|h| serde_json::from_slice::<serde_json::Value>(&h).ok())
        .and_then(|h| h.get("alg").and_then(|a| a.as_str()).map(str::to_owned))
        .ok_or(TokenError::Malformed)?;
    if alg != "HS256" {
        return Err(TokenError::Algorithm);
    }
    let header = jsonwebtoken::decode_header(token).map_err(|e| match e.kind() {
        jsonwebtoken::errors::ErrorKind::InvalidAlgorithm
        | jsonwebtoken::errors::ErrorKind::InvalidAlgorithmName => TokenError::Algorithm,
        _ => TokenError::Malformed,
    })?;
    if header.alg != Algorithm::HS256 {
        return Err(TokenError::Algorithm);
    }
    let version = header
        .kid
        .as_deref()
        .and_then(|k| k.strip_prefix("jwt-v"))
        .and_then(|v| v.parse::<u32>().ok())
        .ok_or(TokenError::Malformed)?;
    let key = match ring.key(store, Purpose::Jwt, KeyVersion(version)).await {
        Ok(k) => k,
        Err(KeyError::NotGranted(..)) => return Err(TokenError::Signature),
        Err(e) => return Err(e.into()),
    };
    let mut v = Validation::new(Algorithm::HS256);
    v.set_issuer(&[ISSUER]);
    v.set_audience(&[AUDIENCE]);
    v.set_required_spec_claims(&["exp", "nbf", "iat", "iss", "aud", "sub", "jti"]);
    v.leeway = 0;
    v.validate_exp = false;
    v.validate_nbf = false;
    let data = jsonwebtoken::decode::<Claims>(token, &DecodingKey::from_secret(key.expose()), &v)
        .map_err(|e| {
        use jsonwebtoken::errors::ErrorKind as K;
        match e.kind() {
            K::InvalidSignature => TokenError::Signature,
            K::InvalidAlgorithm => TokenError::Algorithm,
            K::InvalidIssuer | K::InvalidAudience => TokenError::WrongAudience,
            _ => TokenError::Malformed,
        }
    })?;
    let c = data.claims;
    // Time claims against this clock, with the leeway, here rather than in the crate.
    let t = secs(now);
    let leeway = LEEWAY_SECONDS as i64;
    if c.exp + leeway <= t {
        return Err(TokenError::Expired);
    }
    if c.nbf - leeway > t || c.iat - leeway > t {
        return Err(TokenError::NotYetValid);
    }
    Ok(c)
}

/// Trades a refresh token for a new pair in the same session; the old one is spent. A spent
/// token presented again revokes the family and the session.
pub async fn refresh(
    store: &Store,
    ring: &KeyRing,
    refresh_token: &str,
) -> Result<TokenPair, TokenError> {
    refresh_at(store, ring, refresh_token, Timestamp::now()).await
}

/// [`refresh`] at a given time.
pub async fn refresh_at(
    store: &Store,
    ring: &KeyRing,
    refresh_token: &str,
    now: Timestamp,
) -> Result<TokenPair, TokenError> {
    let mut tx = store.begin().await?;
    let row = repo::refresh_by_hash(&mut tx, &hash(refresh_token.trim()))
        .await?
        .ok_or(TokenError::InvalidRefresh)?;
    if row.spent {
        repo::revoke_family(&mut tx, &row.family, &row.session, "refresh_reuse", now).await?;
        audit::append(
            &mut tx,
            &NewAuditEntry::new(
                AuditActor::System("tokens"),
                AuditAction::RefreshTokenReused,
            )
            .target(format!("user:{}", row.user))
            .details(serde_json::json!({ "session": row.session })),
        )
        .await?;
        tx.commit().await?;
        return Err(TokenError::Reused);
    }
    if row.expires_at <= now.micros() {
        return Err(TokenError::InvalidRefresh);
    }
    let (status, roles) = repo::roles_and_status(store, &row.user).await?;
    if status.as_deref() != Some("active") {
        return Err(TokenError::AccountChanged);
    }
    let fresh = random_token();
    let expires = Timestamp::from_micros(now.micros() + REFRESH_SECONDS * 1_000_000);
    let new_id = repo::insert_refresh(
        &mut tx,
        &row.session,
        &row.family,
        &hash(&fresh),
        now,
        expires,
    )
    .await?;
    repo::rotate_refresh(&mut tx, &row.id, &new_id, now).await?;
    tx.commit().await?;
    let (access_token, access_expires_at) =
        sign(store, ring, &row.user, &row.session, roles, now).await?;
    Ok(TokenPair {
        access_token,
        refresh_token: fresh,
        session_id: row.session,
        access_expires_at,
    })
}

/// Ends the session of `claims`: the session and its refresh tokens are revoked, and the
/// access token's `jti` is denied until it would have expired.
pub async fn logout(store: &Store, claims: &Claims) -> Result<(), TokenError> {
    let now = Timestamp::now();
    let mut tx = store.begin().await?;
    repo::revoke_session(&mut tx, &claims.sid, "logout", now).await?;
    repo::revoke_jti(
        &mut tx,
        &claims.jti,
        &claims.sub,
        "logout",
        now,
        Timestamp::from_micros(claims.exp * 1_000_000),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Ends every session of `user` ("log out everywhere"); returns how many.
pub async fn logout_everywhere(store: &Store, user: UserId) -> Result<usize, TokenError> {
    let now = Timestamp::now();
    let mut tx = store.begin().await?;
    let sessions = repo::sessions_of(&mut tx, user).await?;
    for s in &sessions {
        repo::revoke_session(&mut tx, s, "logout_all", now).await?;
    }
    tx.commit().await?;
    Ok(sessions.len())
}

/// Deletes revocation entries of tokens that have expired anyway; returns how many.
pub async fn purge_expired_revocations(store: &Store) -> Result<u64, TokenError> {
    Ok(repo::purge_revocations(store, Timestamp::now()).await?)
}

/// Ends the session a refresh token belongs to (the command line's `logout`, which holds
/// only its refresh token). Unknown tokens change nothing.
pub async fn logout_refresh(store: &Store, refresh_token: &str) -> Result<bool, TokenError> {
    let now = Timestamp::now();
    let mut tx = store.begin().await?;
    let Some(row) = repo::refresh_by_hash(&mut tx, &hash(refresh_token.trim())).await? else {
        return Ok(false);
    };
    repo::revoke_session(&mut tx, &row.session, "logout", now).await?;
    tx.commit().await?;
    Ok(true)
}
