//! Access and refresh tokens.
//!
//! Access tokens are JWS `EdDSA` (Ed25519) JWTs signed on the operator's own machine with the
//! token-signing key of its key pair ([`crate::keys::signing`]), whose `user_keys` id is the
//! `kid`; one hour, carrying `iss`, `aud`, `sub` (the account id), `sid` (the session), `roles`,
//! `iat`, `nbf`, `exp` and `jti`, and no personal data. No secret Vigil holds can sign one for
//! someone else. Verification pins the algorithm, refuses any `crit` header (no extension is
//! understood here), looks the public key up by `kid` and requires it to be live and to belong
//! to `sub`, checks the signature and every claim (30 s leeway) and that the lifetime is at most
//! [`ACCESS_SECONDS`], then in one database round trip that the `jti` is not revoked, the
//! session is live, the account is active and still holds exactly those roles.
//! Refresh tokens are 256 random bits, stored as SHA-256, rotated on every use (one
//! conditional update, so a token is traded once even when two refreshes race); a rotated
//! token presented again revokes its whole family and session (theft signal, audited).
//! Sessions end on their own ([`SessionLimits`], `[auth]` in the configuration): a session not
//! used for its idle timeout is refused ([`TokenError::SessionIdle`]), and none outlives its
//! absolute lifetime ([`TokenError::SessionExpired`]); refresh tokens stop at the same limit.
//! Verification and refresh are the uses that count, recorded in `sessions.last_seen_at` at
//! most about once a minute.
//! A credential change ends sessions (`auth::change_password`, `auth::reset_password`,
//! `mfa::reset`): tokens issued in them stop verifying, and their refresh tokens are refused.

use jsonwebtoken::{Algorithm, DecodingKey, Header, Validation};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::{repo, Actor, Session, UserId};
use crate::audit::{self, AuditAction, AuditActor, NewAuditEntry};
use crate::keys::KeyRing;
use crate::security_log::{self as events, NewSecurityEvent, Outcome, SecurityEventKind};
use crate::store::{Store, StoreError, Timestamp};

/// `iss` of every access token.
pub const ISSUER: &str = "vigil";
/// `aud` of every access token.
pub const AUDIENCE: &str = "vigil-console";
/// Access token lifetime.
pub const ACCESS_SECONDS: i64 = 3600;
/// The longest a refresh token (and session) may be configured to live.
pub const REFRESH_SECONDS: i64 = 30 * 24 * 3600;
/// The coarsest granularity of `sessions.last_seen_at` (a use within this of the last recorded
/// one is not written); shorter for idle timeouts under four minutes.
pub const LAST_SEEN_GRANULARITY_SECONDS: i64 = 60;

/// How long a session may last: since its last use, and since it began.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionLimits {
    /// A session not used for this long is refused.
    pub idle_timeout_secs: i64,
    /// No session lasts longer than this, refreshed or not.
    pub absolute_lifetime_secs: i64,
}

impl Default for SessionLimits {
    fn default() -> Self {
        Self::from_config(&crate::config::AuthConfig::default())
    }
}

impl SessionLimits {
    /// The limits `[auth]` configures (each at least one second, at most [`REFRESH_SECONDS`]).
    pub fn from_config(auth: &crate::config::AuthConfig) -> Self {
        let clamp = |s: u64| (s.min(REFRESH_SECONDS as u64) as i64).max(1);
        Self {
            idle_timeout_secs: clamp(auth.idle_timeout_secs),
            absolute_lifetime_secs: clamp(auth.absolute_lifetime_secs),
        }
    }
}

/// How long after a recorded use the next one is written: a quarter of the idle timeout, at
/// most a minute, so a session in use never looks idle by more than that.
fn touch_interval_micros(idle_timeout_secs: i64) -> i64 {
    (idle_timeout_secs * 1_000_000 / 4).clamp(1, LAST_SEEN_GRANULARITY_SECONDS * 1_000_000)
}
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
    /// The header names an algorithm other than the one pinned (`none` and HMAC included).
    #[error("token algorithm not allowed")]
    Algorithm,
    /// The header marks an extension critical (`crit`); none is understood here (RFC 7515
    /// §4.1.11).
    #[error("token header names a critical extension this console does not understand")]
    CriticalHeader,
    /// The signature does not verify.
    #[error("token signature is invalid")]
    Signature,
    /// The `kid` names no signing key known here.
    #[error("token names no known signing key")]
    UnknownKey,
    /// The signing key's key pair was retired (a password reset or a revocation).
    #[error("token was signed by a retired key pair")]
    KeyRetired,
    /// The signing key belongs to another account than the token's subject.
    #[error("token was signed by a key that does not belong to its subject")]
    WrongSigner,
    /// `exp - iat` is longer than tokens are issued for.
    #[error("token lifetime is longer than allowed")]
    LifetimeTooLong,
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
    /// The session was not used for its idle timeout; sign in again.
    #[error("the session ended after being idle; sign in again")]
    SessionIdle,
    /// The session reached its absolute lifetime; sign in again.
    #[error("the session reached its maximum lifetime; sign in again")]
    SessionExpired,
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
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl TokenError {
    /// A short stable name for the refusal, as security events record it.
    pub fn reason(&self) -> &'static str {
        match self {
            TokenError::Malformed => "malformed",
            TokenError::Algorithm => "algorithm",
            TokenError::CriticalHeader => "critical_header",
            TokenError::Signature => "signature",
            TokenError::UnknownKey => "unknown_key",
            TokenError::KeyRetired => "key_retired",
            TokenError::WrongSigner => "wrong_signer",
            TokenError::LifetimeTooLong => "lifetime_too_long",
            TokenError::WrongAudience => "wrong_audience",
            TokenError::Expired => "expired",
            TokenError::NotYetValid => "not_yet_valid",
            TokenError::Revoked => "revoked",
            TokenError::AccountChanged => "account_changed",
            TokenError::StepUpRequired => "step_up_required",
            TokenError::Reused => "reused",
            TokenError::InvalidRefresh => "invalid_refresh",
            TokenError::SessionIdle => "session_idle",
            TokenError::SessionExpired => "session_expired",
            TokenError::Store(_) => "store",
        }
    }
}

/// Records a refused access token. The actor and session are named only once the signature
/// has verified (`claims`): before that, what the token says about itself is not believed.
/// A database failure is not a refusal and is not recorded.
async fn record_rejected(store: &Store, e: &TokenError, claims: Option<&Claims>) {
    if matches!(e, TokenError::Store(_)) {
        return;
    }
    // A session that ended by itself (idle or past its lifetime) is recorded as its expiry.
    let kind = match e {
        TokenError::SessionIdle | TokenError::SessionExpired => SecurityEventKind::SessionExpired,
        _ => SecurityEventKind::TokenRejected,
    };
    let mut event = NewSecurityEvent::new(kind, "access_token", Outcome::Failed)
        .details(serde_json::json!({ "reason": e.reason() }));
    if let Some(c) = claims {
        event = event.by_user(&c.sub).session(c.sid.clone());
    }
    events::record(store, event).await;
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

fn sign(
    ring: &KeyRing,
    user: &str,
    session: &str,
    roles: Vec<String>,
    now: Timestamp,
) -> Result<(String, Timestamp), TokenError> {
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
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some(ring.key_pair_id().to_owned());
    let token = jsonwebtoken::encode(&header, &claims, &ring.token_signing_key().encoding_key())
        .map_err(|_| TokenError::Malformed)?;
    Ok((token, Timestamp::from_micros(claims.exp * 1_000_000)))
}

/// Opens a session for a signed-in operator and issues its first pair, with the default
/// [`SessionLimits`].
pub async fn issue(
    store: &Store,
    ring: &KeyRing,
    session: &Session,
    client: &str,
) -> Result<TokenPair, TokenError> {
    issue_at(store, ring, &session.actor, client, Timestamp::now()).await
}

/// [`issue`] with the configured limits.
pub async fn issue_limited(
    store: &Store,
    ring: &KeyRing,
    session: &Session,
    client: &str,
    limits: SessionLimits,
) -> Result<TokenPair, TokenError> {
    issue_limited_at(
        store,
        ring,
        &session.actor,
        client,
        limits,
        Timestamp::now(),
    )
    .await
}

/// [`issue`] for `actor` at a given time (tests step the clock).
pub async fn issue_at(
    store: &Store,
    ring: &KeyRing,
    actor: &Actor,
    client: &str,
    now: Timestamp,
) -> Result<TokenPair, TokenError> {
    issue_limited_at(store, ring, actor, client, SessionLimits::default(), now).await
}

/// [`issue_limited`] for `actor` at a given time (tests step the clock).
pub async fn issue_limited_at(
    store: &Store,
    ring: &KeyRing,
    actor: &Actor,
    client: &str,
    limits: SessionLimits,
    now: Timestamp,
) -> Result<TokenPair, TokenError> {
    // A console signs only for the operator whose key pair it holds.
    if ring.operator() != actor.user_id() {
        return Err(TokenError::WrongSigner);
    }
    let session_id = uuid::Uuid::now_v7().to_string();
    let expires = Timestamp::from_micros(now.micros() + limits.absolute_lifetime_secs * 1_000_000);
    repo::insert_session(
        store,
        &session_id,
        actor.user_id(),
        client,
        now,
        expires,
        limits.idle_timeout_secs,
    )
    .await?;
    let refresh = random_token();
    let mut tx = store.begin().await?;
    let family = uuid::Uuid::now_v7().to_string();
    let id = uuid::Uuid::now_v7().to_string();
    repo::insert_refresh(
        &mut tx,
        &id,
        &session_id,
        &family,
        &hash(&refresh),
        now,
        expires,
    )
    .await?;
    tx.commit().await?;
    let roles = actor
        .roles()
        .iter()
        .map(|r| r.as_str().to_owned())
        .collect();
    let user = actor.user_id().to_string();
    let (access_token, access_expires_at) = sign(ring, &user, &session_id, roles, now)?;
    Ok(TokenPair {
        access_token,
        refresh_token: refresh,
        session_id,
        access_expires_at,
    })
}

/// Checks an access token completely; see the module documentation.
pub async fn verify_access_token(store: &Store, token: &str) -> Result<Claims, TokenError> {
    verify_access_token_at(store, token, Timestamp::now()).await
}

/// [`verify_access_token`] at a given time (tests step the clock).
pub async fn verify_access_token_at(
    store: &Store,
    token: &str,
    now: Timestamp,
) -> Result<Claims, TokenError> {
    let c = match check_token(store, token, now).await {
        Ok(c) => c,
        Err((e, claims)) => {
            record_rejected(store, &e, claims.as_deref()).await;
            return Err(e);
        }
    };
    if let Err(e) = check_account(store, &c, now).await {
        record_rejected(store, &e, Some(&c)).await;
        return Err(e);
    }
    Ok(c)
}

/// A verifier that remembers, per token, that it verified and at which authorisation epoch.
/// The epoch is bumped (by triggers, so even by changes made outside Vigil) on every status,
/// role, session, token revocation or key pair change, so a remembered result is used only
/// while nothing that could invalidate it has happened: revocation stays immediate, and a
/// verification of a token seen before costs one primary-key read instead of the signature and
/// the full checks. Time claims are checked on every call.
#[derive(Default)]
pub struct Verifier {
    /// SHA-256 of the token → its claims, the epoch they were checked at, and when they must be
    /// checked again regardless (the session's end, its idle deadline, or its next recorded use).
    cache: std::sync::Mutex<std::collections::HashMap<[u8; 32], (Claims, i64, i64)>>,
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
    pub async fn verify(&self, store: &Store, token: &str) -> Result<Claims, TokenError> {
        self.verify_at(store, token, Timestamp::now()).await
    }

    /// [`Verifier::verify`] at a given time.
    pub async fn verify_at(
        &self,
        store: &Store,
        token: &str,
        now: Timestamp,
    ) -> Result<Claims, TokenError> {
        let token = token.trim();
        let id: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let cached = self
            .cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&id)
            .cloned();
        if let Some((claims, epoch, recheck_at)) = cached {
            // The same bytes verified before; the clock and the epoch decide the rest.
            if let Err(e) = check_times(&claims, now) {
                record_rejected(store, &e, Some(&claims)).await;
                return Err(e);
            }
            if recheck_at > now.micros() && self.epoch(store).await? == epoch {
                return Ok(claims);
            }
        }
        let c = match check_token(store, token, now).await {
            Ok(c) => c,
            Err((e, claims)) => {
                record_rejected(store, &e, claims.as_deref()).await;
                return Err(e);
            }
        };
        let (epoch, recheck_at) = match check_account(store, &c, now).await {
            Ok(r) => r,
            Err(e) => {
                record_rejected(store, &e, Some(&c)).await;
                return Err(e);
            }
        };
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= 50_000 {
            cache.clear();
        }
        cache.insert(id, (c.clone(), epoch, recheck_at));
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

/// The database checks: returns the epoch they were made at and when they must be made again
/// (the session's end, its idle deadline or its next recorded use, whichever is first). A use
/// is recorded (`last_seen_at`) when the last recorded one is older than the touch interval.
pub(super) async fn check_account(
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
    if facts.jti_revoked {
        return Err(TokenError::Revoked);
    }
    if facts.status.is_some() && !facts.session_live {
        // Not revoked but past its end: it expired.
        return Err(match facts.session_expires_at {
            Some(end) if end <= now.micros() => TokenError::SessionExpired,
            _ => TokenError::Revoked,
        });
    }
    if facts.status.as_deref() != Some("active") || !facts.roles_match {
        return Err(TokenError::AccountChanged);
    }
    if facts.step_up_required {
        return Err(TokenError::StepUpRequired);
    }
    let (last_seen, idle) = (facts.last_seen_at.unwrap_or(0), facts.idle_timeout_secs);
    let idle_deadline = last_seen + idle * 1_000_000;
    if idle_deadline <= now.micros() {
        return Err(TokenError::SessionIdle);
    }
    let interval = touch_interval_micros(idle);
    let mut touch_due = last_seen + interval;
    if touch_due <= now.micros() {
        repo::touch_session(store, &c.sid, now).await?;
        touch_due = now.micros() + interval;
    }
    let recheck_at = facts
        .session_expires_at
        .unwrap_or(0)
        .min(idle_deadline)
        .min(touch_due);
    Ok((facts.epoch, recheck_at))
}

/// A token's header, read before any signature is checked, so that what is refused is
/// reported as what it is.
pub(super) struct RawHeader {
    /// `alg`, as written.
    pub alg: String,
    /// `kid`, if any.
    pub kid: Option<String>,
}

/// Size, header JSON, and no `crit` (RFC 7515 §4.1.11: a recipient that does not understand a
/// listed extension must refuse the token, and none is understood here).
pub(super) fn read_header(token: &str) -> Result<RawHeader, TokenError> {
    use base64::Engine;
    if token.is_empty() || token.len() > MAX_TOKEN_LEN {
        return Err(TokenError::Malformed);
    }
    let header = token
        .split('.')
        .next()
        .and_then(|h| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(h)
                .ok()
        })
        .and_then(|h| serde_json::from_slice::<serde_json::Value>(&h).ok())
        .ok_or(TokenError::Malformed)?;
    let header = header.as_object().ok_or(TokenError::Malformed)?;
    let alg = header
        .get("alg")
        .and_then(|a| a.as_str())
        .ok_or(TokenError::Malformed)?
        .to_owned();
    if header.contains_key("crit") {
        return Err(TokenError::CriticalHeader);
    }
    let kid = match header.get("kid") {
        None => None,
        Some(serde_json::Value::String(k)) if !k.is_empty() && k.len() <= 200 => Some(k.clone()),
        Some(_) => return Err(TokenError::Malformed),
    };
    Ok(RawHeader { alg, kid })
}

/// Whether the token's third part is base64url at all: one that is not is a damaged signature,
/// and is reported as such rather than as a malformed token.
pub(super) fn signature_is_base64(token: &str) -> bool {
    use base64::Engine;
    token.split('.').nth(2).is_some_and(|sig| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(sig)
            .is_ok()
    })
}

/// Maps the JWT crate's refusals.
pub(super) fn decode_error(e: jsonwebtoken::errors::Error) -> TokenError {
    use jsonwebtoken::errors::ErrorKind as K;
    match e.kind() {
        K::InvalidSignature => TokenError::Signature,
        K::InvalidAlgorithm | K::InvalidAlgorithmName => TokenError::Algorithm,
        K::InvalidIssuer | K::InvalidAudience => TokenError::WrongAudience,
        _ => TokenError::Malformed,
    }
}

/// The validation every token gets from the JWT crate: the pinned algorithm, issuer, audience
/// and required claims; time claims are checked here, against this clock, in [`check_times`].
pub(super) fn validation(alg: Algorithm, issuer: &str, audience: &str) -> Validation {
    let mut v = Validation::new(alg);
    v.set_issuer(&[issuer]);
    v.set_audience(&[audience]);
    v.set_required_spec_claims(&["exp", "nbf", "iat", "iss", "aud", "sub", "jti"]);
    v.leeway = 0;
    v.validate_exp = false;
    v.validate_nbf = false;
    v
}

/// Expiry and not-before against `now`, with the leeway.
pub(super) fn check_times(c: &Claims, now: Timestamp) -> Result<(), TokenError> {
    let t = secs(now);
    let leeway = LEEWAY_SECONDS as i64;
    if c.exp + leeway <= t {
        return Err(TokenError::Expired);
    }
    if c.nbf - leeway > t || c.iat - leeway > t {
        return Err(TokenError::NotYetValid);
    }
    Ok(())
}

/// The token itself: size, header, key, signature, issuer, audience, time claims and lifetime.
/// A refusal after the signature verified comes with the claims (they are the signer's).
async fn check_token(
    store: &Store,
    token: &str,
    now: Timestamp,
) -> Result<Claims, (TokenError, Option<Box<Claims>>)> {
    let token = token.trim();
    let header = read_header(token).map_err(|e| (e, None))?;
    // The algorithm is pinned; it is read from the raw header first, so `none` (in any casing),
    // HMAC and names the JWT crate does not even parse are reported as what they are.
    if header.alg != "EdDSA" {
        return Err((TokenError::Algorithm, None));
    }
    let kid = header.kid.ok_or((TokenError::Malformed, None))?;
    let key = crate::keys::signing::verifying_key(store, &kid)
        .await
        .map_err(|e| (e.into(), None))?
        .ok_or((TokenError::UnknownKey, None))?;
    if token.split('.').count() == 3 && !signature_is_base64(token) {
        return Err((TokenError::Signature, None));
    }
    let data = jsonwebtoken::decode::<Claims>(
        token,
        &DecodingKey::from_ed_der(&key.public),
        &validation(Algorithm::EdDSA, ISSUER, AUDIENCE),
    )
    .map_err(|e| (decode_error(e), None))?;
    let c = data.claims;
    // Only now are the claims the signer's: the signer must be the subject's own key pair.
    if key.owner != c.sub {
        return Err((TokenError::WrongSigner, None));
    }
    let fail = |e: TokenError, c: Claims| Err((e, Some(Box::new(c))));
    if key.retired {
        return fail(TokenError::KeyRetired, c);
    }
    if let Err(e) = check_times(&c, now) {
        return fail(e, c);
    }
    if c.exp - c.iat > ACCESS_SECONDS {
        return fail(TokenError::LifetimeTooLong, c);
    }
    Ok(c)
}

/// Trades a refresh token for a new pair in the same session; the old one is spent. A spent
/// token presented again revokes the family and the session; one whose session ended (logout,
/// a credential change, an administrator) is refused as revoked.
pub async fn refresh(
    store: &Store,
    ring: &KeyRing,
    refresh_token: &str,
) -> Result<TokenPair, TokenError> {
    refresh_at(store, ring, refresh_token, Timestamp::now()).await
}

/// [`refresh`] at a given time.
///
/// The old token is spent by one conditional update, before the new one is stored: of two
/// concurrent refreshes of one token, only one succeeds, and the other counts as reuse.
pub async fn refresh_at(
    store: &Store,
    ring: &KeyRing,
    refresh_token: &str,
    now: Timestamp,
) -> Result<TokenPair, TokenError> {
    let mut session = None;
    let result = refresh_inner(store, ring, refresh_token, now, &mut session).await;
    // Recorded as the console's operator (the one whose key signs), in the token's session.
    let event = |kind, outcome| {
        let e =
            NewSecurityEvent::new(kind, "refresh", outcome).by_user(&ring.operator().to_string());
        match &session {
            Some(s) => e.session(s.clone()),
            None => e,
        }
    };
    match &result {
        Ok(_) => {
            events::record(
                store,
                event(SecurityEventKind::TokenRefreshed, Outcome::Success),
            )
            .await
        }
        Err(TokenError::Store(_)) => {}
        Err(e) => {
            let ended = match e {
                TokenError::InvalidRefresh => Some("refresh_lifetime"),
                TokenError::SessionExpired => Some("absolute_lifetime"),
                TokenError::SessionIdle => Some("idle_timeout"),
                _ => None,
            };
            if let (Some(reason), true) = (ended, session.is_some()) {
                // A known token past its end: the session expired.
                events::record(
                    store,
                    event(SecurityEventKind::SessionExpired, Outcome::Success)
                        .details(serde_json::json!({ "reason": reason })),
                )
                .await;
            }
            events::record(
                store,
                event(SecurityEventKind::TokenRefreshed, Outcome::Failed)
                    .details(serde_json::json!({ "reason": e.reason() })),
            )
            .await;
        }
    }
    result
}

async fn refresh_inner(
    store: &Store,
    ring: &KeyRing,
    refresh_token: &str,
    now: Timestamp,
    session: &mut Option<String>,
) -> Result<TokenPair, TokenError> {
    let mut tx = store.begin().await?;
    let row = repo::refresh_by_hash(&mut tx, &hash(refresh_token.trim()))
        .await?
        .ok_or(TokenError::InvalidRefresh)?;
    if row.user != ring.operator().to_string() {
        return Err(TokenError::WrongSigner);
    }
    *session = Some(row.session.clone());
    if row.revoked {
        return Err(TokenError::Revoked);
    }
    if row.rotated {
        return Err(reused(tx, &row, now).await?);
    }
    // Refresh stops at the session's absolute end, and after its idle timeout.
    if row.session_expires_at <= now.micros() {
        return Err(TokenError::SessionExpired);
    }
    if row.last_seen_at + row.idle_timeout_secs * 1_000_000 <= now.micros() {
        return Err(TokenError::SessionIdle);
    }
    if row.expires_at <= now.micros() {
        return Err(TokenError::InvalidRefresh);
    }
    let (status, roles) = repo::roles_and_status(store, &row.user).await?;
    if status.as_deref() != Some("active") {
        return Err(TokenError::AccountChanged);
    }
    let fresh = random_token();
    let expires = Timestamp::from_micros(row.session_expires_at);
    let new_id = uuid::Uuid::now_v7().to_string();
    if !repo::rotate_refresh(&mut tx, &row.id, &new_id, now).await? {
        // A concurrent refresh of the same token spent it first.
        return Err(reused(tx, &row, now).await?);
    }
    repo::insert_refresh(
        &mut tx,
        &new_id,
        &row.session,
        &row.family,
        &hash(&fresh),
        now,
        expires,
    )
    .await?;
    repo::touch_session_in(&mut tx, &row.session, now).await?;
    tx.commit().await?;
    let (access_token, access_expires_at) = sign(ring, &row.user, &row.session, roles, now)?;
    Ok(TokenPair {
        access_token,
        refresh_token: fresh,
        session_id: row.session,
        access_expires_at,
    })
}

/// A spent refresh token presented again (a theft signal): its family and session are revoked,
/// and the reuse audited. Returns the error to give.
async fn reused(
    mut tx: crate::store::Tx,
    row: &repo::RefreshRow,
    now: Timestamp,
) -> Result<TokenError, TokenError> {
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
    Ok(TokenError::Reused)
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
    events::record(
        store,
        NewSecurityEvent::new(SecurityEventKind::Logout, "session", Outcome::Success)
            .by_user(&claims.sub)
            .session(claims.sid.clone()),
    )
    .await;
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
    events::record(
        store,
        NewSecurityEvent::new(SecurityEventKind::Logout, "all_sessions", Outcome::Success)
            .by_user(&user.to_string())
            .details(serde_json::json!({ "sessions": sessions.len() })),
    )
    .await;
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
    events::record(
        store,
        NewSecurityEvent::new(SecurityEventKind::Logout, "session", Outcome::Success)
            .by_user(&row.user)
            .session(row.session.clone()),
    )
    .await;
    Ok(true)
}
