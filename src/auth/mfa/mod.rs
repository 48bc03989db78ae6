//! TOTP second factor (RFC 6238: SHA-1, 6 digits, 30 s) with a replay guard, QR enrolment and
//! single-use backup codes.
//!
//! Secrets are 160 random bits, sealed at their row with a key derived from their owner's
//! credential key ([`crate::auth::CredentialKey`]), which only the owner's own sign-in opens: no
//! data key, no other operator and no administrator can read them (an administrator can only
//! delete them, with [`reset`]). A code is accepted for the current step or one step either
//! side, and each step at most once per operator (RFC 6238 §5.2): the last used step is stored
//! and only a later one is accepted. A replayed code is refused with the same error as a wrong
//! one, so the refusal does not tell an onlooker that the code had been right; sign-in records
//! the difference in its own log.
//!
//! Secrets made before per-operator sealing were sealed with the shared `totp` data key, now
//! retired. Such a secret opens once more, at its owner's next sign-in with a correct code, if
//! that sign-in's key ring still holds the old key; it is then re-sealed for the owner alone.
//! Otherwise the owner signs in with a backup code and an administrator resets their MFA.

mod qr;
mod repo;

use rand::RngCore;
use serde::Serialize;
use sha2::{Digest, Sha256};
use totp_rs::{Algorithm, TOTP};
use zeroize::Zeroizing;

use crate::audit::{self, AuditAction, AuditActor, NewAuditEntry};
use crate::auth::{Actor, CredentialKey, UserId};
use crate::crypto::field;
use crate::crypto::{KeyVersion, Place, SymmetricKey};
use crate::keys::{KeyError, KeyRing};
use crate::notices::{self, NoticeKind};
use crate::rbac::{self, Forbidden, Permission};
use crate::store::{Store, StoreError, Timestamp, Tx};

/// Seconds per step.
pub const STEP_SECONDS: u64 = 30;
/// Digits per code.
pub const DIGITS: usize = 6;
/// Backup codes issued at a time.
pub const BACKUP_CODES: usize = 10;
const ISSUER: &str = "Vigil";

/// Why an MFA operation failed. Messages never include a secret or a code.
#[derive(Debug, thiserror::Error)]
pub enum MfaError {
    /// The actor lacks the permission.
    #[error(transparent)]
    Forbidden(#[from] Forbidden),
    /// MFA is already on; an administrator must reset it before enrolling again.
    #[error("MFA is already enabled for this account")]
    AlreadyEnabled,
    /// No enrolment to confirm, or MFA is not on.
    #[error("MFA is not set up for this account")]
    NotEnrolled,
    /// The code is wrong, outside the accepted window, or was used already (a replay is not
    /// told apart, on purpose).
    #[error("invalid code")]
    InvalidCode,
    /// This sign-in cannot open the operator's TOTP secret: it was sealed with the retired
    /// shared `totp` key and this machine's key pair does not hold it, or it was sealed under a
    /// password replaced outside Vigil.
    #[error(
        "your TOTP secret cannot be opened by this sign-in: sign in with a backup code, then ask \
         an administrator to reset your MFA (`vigil user reset-mfa`) and enrol again"
    )]
    SecretUnavailable,
    /// The credential key given is not the enrolling operator's.
    #[error("this session holds no credential key of yours: sign in again with your own password")]
    NoCredentialKey,
    /// No operator by that name.
    #[error("no operator named {0}")]
    UnknownOperator(String),
    /// The retired `totp` key could not be read.
    #[error(transparent)]
    Keys(#[from] KeyError),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for MfaError {
    fn from(e: sqlx::Error) -> Self {
        MfaError::Store(e.into())
    }
}

/// What an operator needs to add Vigil to an authenticator app. Shown once.
#[derive(Clone, Serialize)]
pub struct Enrolment {
    /// `otpauth://totp/Vigil:<username>?secret=...&issuer=Vigil&algorithm=SHA1&digits=6&period=30`.
    pub uri: String,
    /// The secret in base32, for typing in by hand.
    pub secret_base32: String,
    /// The URI as an SVG QR code.
    pub qr_svg: String,
    /// The URI as a PNG QR code.
    #[serde(skip)]
    pub qr_png: Vec<u8>,
    /// The URI drawn with block characters for a terminal.
    #[serde(skip)]
    pub qr_text: String,
}

impl std::fmt::Debug for Enrolment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Enrolment(..)")
    }
}

/// The code for `step` (RFC 6238 with SHA-1) of `digits` digits. Public for the RFC's test
/// vectors; verification goes through [`verify`].
pub fn code_at(secret: &[u8], step: u64, digits: usize) -> String {
    TOTP::new_unchecked(
        Algorithm::SHA1,
        digits,
        1,
        STEP_SECONDS,
        secret.to_vec(),
        None,
        String::new(),
    )
    .generate(step * STEP_SECONDS)
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The step within ±1 of `now_step` whose code is `code`, if any. Every candidate is computed
/// and compared in constant time, so timing does not tell which one matched.
pub fn matching_step(secret: &[u8], code: &str, now_step: u64) -> Option<u64> {
    let mut found = None;
    for step in now_step.saturating_sub(1)..=now_step + 1 {
        if constant_time_eq(code_at(secret, step, DIGITS).as_bytes(), code.as_bytes()) {
            found = Some(step);
        }
    }
    found
}

fn step_of(t: Timestamp) -> u64 {
    u64::try_from(t.micros() / 1_000_000).unwrap_or(0) / STEP_SECONDS
}

fn place(user: UserId) -> (String, &'static str, &'static str) {
    (user.to_string(), "mfa_secrets", "secret_enc")
}

/// How a stored secret is sealed (`mfa_secrets.sealed_with`).
const SEALED_WITH_CREDENTIAL_KEY: &str = "credential_key";

/// The key a TOTP secret is sealed with: derived from its owner's credential key.
fn secret_key(credential: &CredentialKey) -> SymmetricKey {
    credential.derive("totp-secret-v1")
}

/// Seals `secret` for `credential`'s owner. The field's key version is 0: no data key made it.
fn seal_secret(credential: &CredentialKey, secret: &[u8]) -> Vec<u8> {
    let (row, table, column) = place(credential.user());
    field::seal(
        &secret_key(credential),
        KeyVersion(0),
        &Place::new(table, column, &row),
        secret,
    )
}

/// Starts enrolment for the signed-in operator (`credential` is the credential key their sign-in
/// opened): a fresh secret, sealed for them alone; MFA turns on only when a code from it is
/// confirmed. Starting again before confirming replaces the secret.
pub async fn enroll(
    store: &Store,
    credential: &CredentialKey,
    actor: &Actor,
) -> Result<Enrolment, MfaError> {
    let user = actor.user_id();
    if credential.user() != user {
        return Err(MfaError::NoCredentialKey);
    }
    if repo::mfa_enabled(store, user).await? {
        return Err(MfaError::AlreadyEnabled);
    }
    let mut secret = Zeroizing::new(vec![0u8; 20]);
    rand::rngs::OsRng.fill_bytes(&mut secret);
    let sealed = seal_secret(credential, &secret);
    let mut tx = store.begin().await?;
    repo::put_secret(&mut tx, user, &sealed, Timestamp::now()).await?;
    audit::append(
        &mut tx,
        &NewAuditEntry::new(actor, AuditAction::MfaEnrolmentStarted).target(format!("user:{user}")),
    )
    .await?;
    tx.commit().await?;
    let totp = TOTP::new_unchecked(
        Algorithm::SHA1,
        DIGITS,
        1,
        STEP_SECONDS,
        secret.to_vec(),
        Some(ISSUER.to_owned()),
        actor.username().to_string(),
    );
    // Every parameter spelled out (the crate omits defaults), so no authenticator guesses.
    let uri = format!(
        "otpauth://totp/{ISSUER}:{}?secret={}&issuer={ISSUER}&algorithm=SHA1&digits={DIGITS}&period={STEP_SECONDS}",
        actor.username(),
        totp.get_secret_base32()
    );
    Ok(Enrolment {
        secret_base32: totp.get_secret_base32(),
        qr_svg: qr::svg(&uri),
        qr_png: qr::png(&uri),
        qr_text: qr::text(&uri),
        uri,
    })
}

/// Confirms enrolment with a current code: MFA is on from now, and ten backup codes are
/// returned (shown once; only their hashes are kept).
pub async fn confirm(
    store: &Store,
    credential: &CredentialKey,
    actor: &Actor,
    code: &str,
) -> Result<Vec<String>, MfaError> {
    let user = actor.user_id();
    if credential.user() != user {
        return Err(MfaError::NoCredentialKey);
    }
    if repo::mfa_enabled(store, user).await? {
        return Err(MfaError::AlreadyEnabled);
    }
    if check_totp(store, Some(credential), None, user, code, Timestamp::now()).await?
        != Verdict::Accepted
    {
        return Err(MfaError::InvalidCode);
    }
    let codes = new_backup_codes();
    let mut tx = store.begin().await?;
    repo::enable(&mut tx, user, Timestamp::now()).await?;
    notices::add(
        &mut tx,
        user,
        NoticeKind::MfaEnabled,
        None,
        None,
        Timestamp::now(),
    )
    .await?;
    repo::replace_backup_codes(&mut tx, user, &hashes(user, &codes), Timestamp::now()).await?;
    audit::append(
        &mut tx,
        &NewAuditEntry::new(actor, AuditAction::MfaEnabled).target(format!("user:{user}")),
    )
    .await?;
    tx.commit().await?;
    Ok(codes)
}

/// What checking a second factor found. Only sign-in's own log tells [`Verdict::Wrong`] from
/// [`Verdict::Replayed`]; every caller's error is [`MfaError::InvalidCode`] for both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// The code is right and now spent.
    Accepted,
    /// No step in the window has this code, or no unused backup code is this one.
    Wrong,
    /// The code is right for a step already used (RFC 6238 §5.2).
    Replayed,
}

/// Checks a second factor for `user` at `now`: a TOTP code (each step once) or an unused
/// backup code (then spent). `credential` is the credential key this sign-in opened, which opens
/// the TOTP secret; `legacy` is the sign-in's key ring, needed only for a secret still sealed
/// with the retired shared `totp` key, which is then re-sealed with `credential`. A wrong code
/// and a replayed one are both [`MfaError::InvalidCode`].
pub async fn verify(
    store: &Store,
    credential: Option<&CredentialKey>,
    legacy: Option<&KeyRing>,
    user: UserId,
    code: &str,
    now: Timestamp,
) -> Result<(), MfaError> {
    match check(store, credential, legacy, user, code, now).await? {
        Verdict::Accepted => Ok(()),
        Verdict::Wrong | Verdict::Replayed => Err(MfaError::InvalidCode),
    }
}

/// [`verify`], telling a replay from a wrong code, for sign-in's log.
pub(crate) async fn check(
    store: &Store,
    credential: Option<&CredentialKey>,
    legacy: Option<&KeyRing>,
    user: UserId,
    code: &str,
    now: Timestamp,
) -> Result<Verdict, MfaError> {
    let code = code.trim();
    if code.len() == DIGITS && code.bytes().all(|b| b.is_ascii_digit()) {
        return check_totp(store, credential, legacy, user, code, now).await;
    }
    let hash = backup_hash(user, &normalise_backup(code));
    Ok(if repo::spend_backup_code(store, user, &hash, now).await? {
        Verdict::Accepted
    } else {
        Verdict::Wrong
    })
}

async fn check_totp(
    store: &Store,
    credential: Option<&CredentialKey>,
    legacy: Option<&KeyRing>,
    user: UserId,
    code: &str,
    now: Timestamp,
) -> Result<Verdict, MfaError> {
    let (sealed, sealed_with) = repo::secret(store, user)
        .await?
        .ok_or(MfaError::NotEnrolled)?;
    let credential = credential.filter(|c| c.user() == user);
    let (row, table, column) = place(user);
    let at = Place::new(table, column, &row);
    let per_operator = sealed_with == SEALED_WITH_CREDENTIAL_KEY;
    let secret = if per_operator {
        let credential = credential.ok_or(MfaError::SecretUnavailable)?;
        field::open(&secret_key(credential), &at, &sealed)
            .map_err(|_| MfaError::SecretUnavailable)?
    } else {
        let ring = legacy
            .filter(|r| r.operator() == user)
            .ok_or(MfaError::SecretUnavailable)?;
        crate::keys::legacy::open_totp_secret(store, ring, &at, &sealed)
            .await?
            .ok_or(MfaError::SecretUnavailable)?
    };
    let Some(step) = matching_step(&secret, code, step_of(now)) else {
        return Ok(Verdict::Wrong);
    };
    if !repo::use_step(store, user, step).await? {
        return Ok(Verdict::Replayed);
    }
    if let (false, Some(credential)) = (per_operator, credential) {
        // The owner proved the code: from now on only their own sign-in opens the secret.
        let mut tx = store.begin().await?;
        if repo::reseal_secret(&mut tx, user, &sealed, &seal_secret(credential, &secret)).await? {
            audit::append(
                &mut tx,
                &NewAuditEntry::new(AuditActor::System("mfa"), AuditAction::MfaSecretResealed)
                    .target(format!("user:{user}")),
            )
            .await?;
        }
        tx.commit().await?;
        crate::keys::legacy::retire_totp_keys_if_unused(store).await?;
    }
    Ok(Verdict::Accepted)
}

/// Replaces the signed-in operator's backup codes with ten new ones (shown once).
pub async fn regenerate_backup_codes(
    store: &Store,
    actor: &Actor,
) -> Result<Vec<String>, MfaError> {
    let user = actor.user_id();
    if !repo::mfa_enabled(store, user).await? {
        return Err(MfaError::NotEnrolled);
    }
    let codes = new_backup_codes();
    let mut tx = store.begin().await?;
    repo::replace_backup_codes(&mut tx, user, &hashes(user, &codes), Timestamp::now()).await?;
    notices::add(
        &mut tx,
        user,
        NoticeKind::BackupCodesRegenerated,
        None,
        None,
        Timestamp::now(),
    )
    .await?;
    audit::append(
        &mut tx,
        &NewAuditEntry::new(actor, AuditAction::MfaBackupCodesRegenerated)
            .target(format!("user:{user}")),
    )
    .await?;
    tx.commit().await?;
    Ok(codes)
}

/// An administrator turns MFA off for `username` (lost device): secret and backup codes are
/// deleted, every session of the operator ends (tokens issued in them stop verifying and cannot
/// be refreshed), and the operator must enrol again. Returns how many sessions ended. Needs
/// [`Permission::UsersManage`].
pub async fn reset(store: &Store, actor: &Actor, username: &str) -> Result<u64, MfaError> {
    let _permit = rbac::require(store, actor, Permission::UsersManage).await?;
    let now = Timestamp::now();
    let mut tx = store.begin().await?;
    let user = repo::operator_id(&mut tx, username)
        .await?
        .ok_or_else(|| MfaError::UnknownOperator(username.to_owned()))?;
    remove_in(&mut tx, user).await?;
    let ended = crate::auth::end_sessions(&mut tx, user, None, "mfa_reset", now).await?;
    notices::add(&mut tx, user, NoticeKind::MfaReset, Some(actor), None, now).await?;
    audit::append(
        &mut tx,
        &NewAuditEntry::new(actor, AuditAction::MfaReset)
            .target(format!("user:{user}"))
            .details(serde_json::json!({ "sessions_ended": ended })),
    )
    .await?;
    tx.commit().await?;
    Ok(ended)
}

/// Deletes `user`'s TOTP secret and backup codes and turns MFA off, within `tx` (an
/// administrator's reset of MFA or of the password, after which the secret could not open).
/// Returns whether MFA was on or an enrolment was under way.
pub(crate) async fn remove_in(tx: &mut Tx, user: UserId) -> Result<bool, StoreError> {
    repo::disable(tx, user).await
}

/// Whether `user` has a TOTP secret sealed with their credential key (which must then not be
/// replaced while it could still open).
pub(crate) async fn has_sealed_secret(store: &Store, user: UserId) -> Result<bool, StoreError> {
    Ok(repo::secret(store, user)
        .await?
        .is_some_and(|(_, with)| with == SEALED_WITH_CREDENTIAL_KEY))
}

/// Whether `user` has MFA on.
pub async fn is_enabled(store: &Store, user: UserId) -> Result<bool, MfaError> {
    Ok(repo::mfa_enabled(store, user).await?)
}

/// Unused backup codes left.
pub async fn backup_codes_left(store: &Store, user: UserId) -> Result<i64, MfaError> {
    Ok(repo::backup_codes_left(store, user).await?)
}

const BACKUP_ALPHABET: &[u8] = b"ABCDEFGHJKMNPQRSTUVWXYZ23456789";

/// Ten codes of 16 characters from a 31-letter alphabet (about 79 bits each), as
/// `XXXX-XXXX-XXXX-XXXX`.
fn new_backup_codes() -> Vec<String> {
    (0..BACKUP_CODES)
        .map(|_| {
            let mut raw = [0u8; 16];
            rand::rngs::OsRng.fill_bytes(&mut raw);
            let chars: Vec<char> = raw
                .iter()
                .map(|b| BACKUP_ALPHABET[*b as usize % BACKUP_ALPHABET.len()] as char)
                .collect();
            chars
                .chunks(4)
                .map(|c| c.iter().collect::<String>())
                .collect::<Vec<_>>()
                .join("-")
        })
        .collect()
}

fn normalise_backup(code: &str) -> String {
    code.chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

/// SHA-256 over the user id and the normalised code. The codes carry ~79 random bits, so a
/// fast hash suffices; the user id keeps equal codes of two users apart.
fn backup_hash(user: UserId, normalised: &str) -> String {
    let mut h = Sha256::new();
    h.update(b"vigil-backup-code-v1\0");
    h.update(user.as_uuid().as_bytes());
    h.update(normalised.as_bytes());
    hex::encode(h.finalize())
}

fn hashes(user: UserId, codes: &[String]) -> Vec<String> {
    codes
        .iter()
        .map(|c| backup_hash(user, &normalise_backup(c)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 Appendix B, SHA-1 rows: the seed "12345678901234567890", 8 digits.
    #[test]
    fn rfc_6238_appendix_b_sha1_vectors() {
        let seed = b"12345678901234567890";
        for (time, expected) in [
            (59u64, "94287082"),
            (1_111_111_109, "07081804"),
            (1_111_111_111, "14050471"),
            (1_234_567_890, "89005924"),
            (2_000_000_000, "69279037"),
            (20_000_000_000, "65353130"),
        ] {
            let step = time / STEP_SECONDS;
            assert_eq!(code_at(seed, step, 8), expected, "T = {time}");
            // Vigil's 6-digit verifier accepts the same value truncated, at that step only.
            let six = &expected[2..];
            assert_eq!(matching_step(seed, six, step), Some(step));
            assert_eq!(matching_step(seed, six, step + 1), Some(step));
            assert_eq!(matching_step(seed, six, step + 2), None, "two steps late");
            if step >= 2 {
                assert_eq!(matching_step(seed, six, step - 2), None, "two steps early");
            }
        }
        assert_eq!(matching_step(seed, "000000", 1), None);
    }

    #[test]
    fn backup_codes_are_distinct_and_normalised() {
        let codes = new_backup_codes();
        assert_eq!(codes.len(), 10);
        let mut unique = codes.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), 10);
        assert!(codes
            .iter()
            .all(|c| c.len() == 19 && c.matches('-').count() == 3));
        assert_eq!(normalise_backup(" abcd-efgh "), "ABCDEFGH");
    }
}
