//! The append-only, hash-chained audit log of every privileged action, and its verifier.
//!
//! Entry `n` stores `hash_n = SHA-256(hash_{n-1} || canonical(entry_n))`, where the canonical
//! encoding is length-prefixed and versioned (see [`canonical_bytes`]). Appenders lock the one
//! `audit_head` row, so concurrent writers — two consoles and a worker on one Postgres — queue
//! rather than fork the chain. `details` carries ids and counts, never personal data.

pub mod archive;
mod repo;

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::identity::Actor;
use crate::rbac::{self, Forbidden, Permission};
use crate::store::{Store, StoreError, Timestamp, Tx};

pub use repo::AuditFilter;

/// A SHA-256 chain hash.
pub type ChainHash = [u8; 32];

/// The hash the first entry chains from.
pub const GENESIS_HASH: ChainHash = [0; 32];

/// Who did something: an authenticated operator, or Vigil itself (bootstrap, migrations).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuditActor {
    /// An operator, by account id.
    Operator(uuid::Uuid),
    /// Vigil itself, naming the process step.
    System(&'static str),
}

impl AuditActor {
    /// The stored form: `user:<uuid>` or `system:<name>`.
    pub fn as_stored(&self) -> String {
        match self {
            AuditActor::Operator(id) => format!("user:{id}"),
            AuditActor::System(name) => format!("system:{name}"),
        }
    }
}

impl From<&Actor> for AuditActor {
    fn from(a: &Actor) -> Self {
        AuditActor::Operator(a.user_id().as_uuid())
    }
}

/// What was done. Stored by [`AuditAction::as_str`]; new operations add variants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditAction {
    /// The first administrator was created by `vigil init`.
    OperatorBootstrapped,
    /// Demonstration data generation started.
    DemoSeedStarted,
    /// Demonstration data generation finished; details hold the row counts.
    DemoSeeded,
    /// The audit chain was verified; details hold the result.
    AuditVerified,
    /// An entry written by a benchmark run on a scratch database.
    BenchmarkEntry,
    /// An operator made a key pair on a machine; details hold its fingerprint.
    KeyPairEnrolled,
    /// The first version of every data key was created.
    DataKeysCreated,
    /// Data keys were wrapped for an operator's key pair.
    KeysGranted,
    /// An operator's data-key grants were removed (rotations follow).
    KeysRevoked,
    /// A data key's new version was made; re-encryption under it began.
    KeyRotationStarted,
    /// Every row uses the new version; the old versions were retired.
    KeyRotationCompleted,
    /// An operator changed their own password (their key pair was re-sealed).
    PasswordChanged,
    /// An administrator reset an operator's password (their key pairs were retired).
    PasswordReset,
    /// An operator began TOTP enrolment.
    MfaEnrolmentStarted,
    /// An operator confirmed a code: MFA is on.
    MfaEnabled,
    /// An operator replaced their backup codes.
    MfaBackupCodesRegenerated,
    /// An administrator turned an operator's MFA off.
    MfaReset,
    /// A TOTP secret sealed with the retired shared `totp` key was re-sealed for its owner alone
    /// at their sign-in.
    MfaSecretResealed,
    /// An administrator cleared an operator's lockout.
    AccountUnlocked,
    /// A spent refresh token was presented again; its family and session were revoked.
    RefreshTokenReused,
    /// An administrator created an operator.
    OperatorCreated,
    /// An operator's roles were replaced.
    OperatorRolesChanged,
    /// An operator was suspended (their sessions ended).
    OperatorSuspended,
    /// A suspended operator was reinstated.
    OperatorReinstated,
    /// A session was revoked.
    SessionRevoked,
    /// A data-subject request was recorded and its verification code issued.
    DsrReceived,
    /// A new verification code was issued for a request.
    DsrCodeIssued,
    /// A wrong verification code or someone else's token was presented.
    DsrVerificationFailed,
    /// Too many wrong codes: the request's verification locked.
    DsrVerificationLocked,
    /// The subject's identity was verified.
    DsrVerified,
    /// A request's deadline was extended; details hold the new deadline.
    DsrExtended,
    /// A request was rejected.
    DsrRejected,
    /// A request was withdrawn by its subject.
    DsrWithdrawn,
    /// An export was written; details hold its digests, never its content.
    DsrExported,
    /// Personal data was corrected; details name the fields.
    DsrRectified,
    /// An erasure began (its plan was recorded).
    DsrErasureStarted,
    /// Holds or open incidents blocked an erasure.
    DsrErasureBlocked,
    /// The residual scan after an erasure still found the subject.
    DsrResidualFound,
    /// An erasure completed; details hold the receipt (steps, counts, scan result).
    DsrErasureReceipt,
    /// A legal hold was placed.
    LegalHoldPlaced,
    /// A legal hold was released.
    LegalHoldReleased,
    /// Platform activity was ingested; details hold the counts.
    ActivityIngested,
    /// The detectors ran over new activity; details hold the counts.
    MonitorRan,
    /// An incident was opened; details hold its kind, severity and evidence count.
    IncidentOpened,
    /// Vigil acted on its own on an incident (suspend, revoke, block, restrict, ...).
    IncidentResponse,
    /// A moderator acted on an incident; details name the action.
    IncidentAction,
    /// A timed suspension ended.
    SuspensionExpired,
    /// An address was blocked by hand.
    IpBlocked,
    /// An address block was lifted.
    IpUnblocked,
    /// A retention policy was changed.
    RetentionPolicyChanged,
    /// A retention run finished (or stopped on an error); details hold its counts.
    RetentionRan,
    /// A headless worker started or stopped.
    WorkerStarted,
    /// An operator was given a database login (team mode), or a new password for it.
    OperatorDatabaseLogin,
    /// Personal data was read (an email or phone opened, an email search, incident evidence
    /// with addresses, a residual scan); details name the purpose and hold counts, never the
    /// data.
    PersonalDataRead,
    /// An outbox message was put back in the queue to be tried again now.
    OutboxRetried,
    /// An outbox message was cancelled before it was sent.
    OutboxCancelled,
    /// An administrator moved this console to another database; the target names it and the
    /// details the one it left (passwords hidden).
    DatabaseChanged,
    /// An administrator recounted the dashboard's daily counts from the rows stored; details
    /// hold how many counts were written.
    DailyCountsRebuilt,
}

impl AuditAction {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            AuditAction::OperatorBootstrapped => "operator.bootstrapped",
            AuditAction::DemoSeedStarted => "demo.seed_started",
            AuditAction::DemoSeeded => "demo.seeded",
            AuditAction::AuditVerified => "audit.verified",
            AuditAction::BenchmarkEntry => "bench.entry",
            AuditAction::KeyPairEnrolled => "keys.pair_enrolled",
            AuditAction::DataKeysCreated => "keys.data_keys_created",
            AuditAction::KeysGranted => "keys.granted",
            AuditAction::KeysRevoked => "keys.revoked",
            AuditAction::KeyRotationStarted => "keys.rotation_started",
            AuditAction::KeyRotationCompleted => "keys.rotation_completed",
            AuditAction::PasswordChanged => "operator.password_changed",
            AuditAction::PasswordReset => "operator.password_reset",
            AuditAction::MfaEnrolmentStarted => "mfa.enrolment_started",
            AuditAction::MfaEnabled => "mfa.enabled",
            AuditAction::MfaBackupCodesRegenerated => "mfa.backup_codes_regenerated",
            AuditAction::MfaReset => "mfa.reset",
            AuditAction::MfaSecretResealed => "mfa.secret_resealed",
            AuditAction::AccountUnlocked => "operator.unlocked",
            AuditAction::RefreshTokenReused => "tokens.refresh_reused",
            AuditAction::OperatorCreated => "operator.created",
            AuditAction::OperatorRolesChanged => "operator.roles_changed",
            AuditAction::OperatorSuspended => "operator.suspended",
            AuditAction::OperatorReinstated => "operator.reinstated",
            AuditAction::SessionRevoked => "session.revoked",
            AuditAction::DsrReceived => "dsr.received",
            AuditAction::DsrCodeIssued => "dsr.code_issued",
            AuditAction::DsrVerificationFailed => "dsr.verification_failed",
            AuditAction::DsrVerificationLocked => "dsr.verification_locked",
            AuditAction::DsrVerified => "dsr.verified",
            AuditAction::DsrExtended => "dsr.extended",
            AuditAction::DsrRejected => "dsr.rejected",
            AuditAction::DsrWithdrawn => "dsr.withdrawn",
            AuditAction::DsrExported => "dsr.exported",
            AuditAction::DsrRectified => "dsr.rectified",
            AuditAction::DsrErasureStarted => "dsr.erasure_started",
            AuditAction::DsrErasureBlocked => "dsr.erasure_blocked",
            AuditAction::DsrResidualFound => "dsr.residual_found",
            AuditAction::DsrErasureReceipt => "dsr.erasure_receipt",
            AuditAction::LegalHoldPlaced => "hold.placed",
            AuditAction::LegalHoldReleased => "hold.released",
            AuditAction::ActivityIngested => "activity.ingested",
            AuditAction::MonitorRan => "monitor.ran",
            AuditAction::IncidentOpened => "incident.opened",
            AuditAction::IncidentResponse => "incident.response",
            AuditAction::IncidentAction => "incident.action",
            AuditAction::SuspensionExpired => "incident.suspension_expired",
            AuditAction::IpBlocked => "ip.blocked",
            AuditAction::IpUnblocked => "ip.unblocked",
            AuditAction::RetentionPolicyChanged => "retention.policy_changed",
            AuditAction::RetentionRan => "retention.ran",
            AuditAction::WorkerStarted => "worker.started",
            AuditAction::OperatorDatabaseLogin => "operator.database_login",
            AuditAction::PersonalDataRead => "pii.read",
            AuditAction::OutboxRetried => "outbox.retried",
            AuditAction::OutboxCancelled => "outbox.cancelled",
            AuditAction::DatabaseChanged => "config.database_changed",
            AuditAction::DailyCountsRebuilt => "analytics.daily_counts_rebuilt",
        }
    }
}

/// Who an entry names, and the session they act in: an [`AuditActor`], or an operator's
/// [`Actor`] (whose session, if known, the entry records).
pub trait Acting {
    /// The stored actor.
    fn audit_actor(&self) -> AuditActor;
    /// The session, if one is known.
    fn acting_session(&self) -> Option<String> {
        None
    }
}

impl Acting for AuditActor {
    fn audit_actor(&self) -> AuditActor {
        self.clone()
    }
}

impl Acting for &Actor {
    fn audit_actor(&self) -> AuditActor {
        AuditActor::from(*self)
    }
    fn acting_session(&self) -> Option<String> {
        self.session_id().map(str::to_owned)
    }
}

impl Acting for &AuditActor {
    fn audit_actor(&self) -> AuditActor {
        (*self).clone()
    }
}

/// An entry to append.
#[derive(Debug, Clone)]
pub struct NewAuditEntry {
    /// Who acted.
    pub actor: AuditActor,
    /// How it ended (most entries record what was done: `success`).
    pub outcome: crate::security_log::Outcome,
    /// The session the actor acted in, if known.
    pub session_id: Option<String>,
    /// What they did.
    pub action: AuditAction,
    /// What it was done to (an id), if anything.
    pub target: Option<String>,
    /// Ids and counts; never personal data.
    pub details: serde_json::Value,
}

impl NewAuditEntry {
    /// An entry with no target and empty details.
    pub fn new(actor: impl Acting, action: AuditAction) -> Self {
        Self {
            actor: actor.audit_actor(),
            outcome: crate::security_log::Outcome::Success,
            session_id: actor.acting_session(),
            action,
            target: None,
            details: serde_json::json!({}),
        }
    }

    /// Sets the target.
    pub fn target(mut self, target: impl Into<String>) -> Self {
        self.target = Some(target.into());
        self
    }

    /// Sets the details.
    pub fn details(mut self, details: serde_json::Value) -> Self {
        self.details = details;
        self
    }

    /// Sets the outcome.
    pub fn outcome(mut self, outcome: crate::security_log::Outcome) -> Self {
        self.outcome = outcome;
        self
    }

    /// Sets the session.
    pub fn session(mut self, session_id: impl Into<String>) -> Self {
        self.session_id = Some(session_id.into());
        self
    }
}

/// A stored entry.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct AuditEntry {
    /// Position in the chain, from 1, without gaps.
    pub seq: i64,
    /// When it was written.
    pub at: Timestamp,
    /// `user:<uuid>` or `system:<name>`.
    pub actor: String,
    /// What was done.
    pub action: String,
    /// What it was done to.
    pub target: Option<String>,
    /// JSON text, exactly as hashed.
    pub details: String,
    /// `success`, `denied` or `failed`.
    pub outcome: String,
    /// The session the actor acted in, if known.
    pub session_id: Option<String>,
    /// The previous entry's hash.
    #[serde(with = "hex_bytes")]
    pub prev_hash: Vec<u8>,
    /// This entry's hash.
    #[serde(with = "hex_bytes")]
    pub hash: Vec<u8>,
}

/// The versioned, unambiguous byte encoding of an entry that the chain hashes.
///
/// `"vigil-audit-v1" 0x00 | seq i64 BE | at i64 BE | actor | action | target | details`, where
/// each text is a u32 BE length then its UTF-8 bytes, and `target` is preceded by 0 (absent)
/// or 1 (present).
pub fn canonical_bytes(
    seq: i64,
    at: i64,
    actor: &str,
    action: &str,
    target: Option<&str>,
    details: &str,
) -> Vec<u8> {
    fn text(buf: &mut Vec<u8>, s: &str) {
        buf.extend_from_slice(&(s.len() as u32).to_be_bytes());
        buf.extend_from_slice(s.as_bytes());
    }
    let mut buf = Vec::with_capacity(48 + actor.len() + action.len() + details.len());
    buf.extend_from_slice(b"vigil-audit-v1\0");
    buf.extend_from_slice(&seq.to_be_bytes());
    buf.extend_from_slice(&at.to_be_bytes());
    text(&mut buf, actor);
    text(&mut buf, action);
    match target {
        None => buf.push(0),
        Some(t) => {
            buf.push(1);
            text(&mut buf, t);
        }
    }
    text(&mut buf, details);
    buf
}

/// [`canonical_bytes`] with the outcome and session: when either differs from the default
/// (`success`, none) a tail follows the details, `1 | outcome | session` (the session preceded
/// by 0 or 1 as `target` is), so entries written before the two existed hash as they did.
#[allow(clippy::too_many_arguments)]
pub fn canonical_bytes_with(
    seq: i64,
    at: i64,
    actor: &str,
    action: &str,
    target: Option<&str>,
    details: &str,
    outcome: &str,
    session: Option<&str>,
) -> Vec<u8> {
    let mut buf = canonical_bytes(seq, at, actor, action, target, details);
    if outcome != "success" || session.is_some() {
        let text = |buf: &mut Vec<u8>, s: &str| {
            buf.extend_from_slice(&(s.len() as u32).to_be_bytes());
            buf.extend_from_slice(s.as_bytes());
        };
        buf.push(1);
        text(&mut buf, outcome);
        match session {
            None => buf.push(0),
            Some(s) => {
                buf.push(1);
                text(&mut buf, s);
            }
        }
    }
    buf
}

/// `SHA-256(prev || canonical)`.
pub fn chain_hash(prev: &[u8], canonical: &[u8]) -> ChainHash {
    let mut h = Sha256::new();
    h.update(prev);
    h.update(canonical);
    h.finalize().into()
}

/// Appends an entry inside the caller's transaction, so the entry commits or rolls back with
/// the change it records. Returns its sequence number.
pub async fn append(tx: &mut Tx, entry: &NewAuditEntry) -> Result<i64, StoreError> {
    repo::append(tx, entry, Timestamp::now()).await
}

/// Records that `actor` read personal data, in a transaction of its own, after the read: one
/// entry per read action, naming the `purpose` (`directory_email_search`, `dsr_scan`,
/// `contact_opened`, `incident_addresses`, ...), the account it concerns if any, and counts in
/// `details`; never the data itself.
pub async fn record_personal_data_read(
    store: &Store,
    actor: &Actor,
    purpose: &str,
    target: Option<String>,
    details: serde_json::Value,
) -> Result<i64, StoreError> {
    let mut details = details;
    if let Some(map) = details.as_object_mut() {
        map.insert("purpose".into(), serde_json::Value::from(purpose));
    }
    let mut entry = NewAuditEntry::new(actor, AuditAction::PersonalDataRead).details(details);
    entry.target = target;
    let mut tx = store.begin().await?;
    let seq = append(&mut tx, &entry).await?;
    tx.commit().await?;
    Ok(seq)
}

/// Why the chain failed verification, at the first bad entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ChainFault {
    /// The entry with this sequence number is missing (the next one found is named).
    Missing {
        /// The sequence number found instead, if any.
        found: Option<i64>,
    },
    /// The entry's `prev_hash` is not the previous entry's hash.
    BrokenLink,
    /// The entry's contents do not hash to its stored hash: it was altered.
    HashMismatch,
    /// The chain's head records a later end than the entries present: entries were removed.
    Truncated {
        /// Where the head says the chain ends.
        head_seq: i64,
    },
    /// The head's hash does not match the last entry.
    HeadMismatch,
}

impl std::fmt::Display for ChainFault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ChainFault::Missing { found: Some(n) } => {
                write!(f, "entry missing (the next entry present is seq {n})")
            }
            ChainFault::Missing { found: None } => f.write_str("entry missing"),
            ChainFault::BrokenLink => {
                f.write_str("prev_hash does not match the previous entry's hash")
            }
            ChainFault::HashMismatch => {
                f.write_str("contents do not match the stored hash (entry altered)")
            }
            ChainFault::Truncated { head_seq } => write!(
                f,
                "entries removed from the end: the chain head records seq {head_seq}"
            ),
            ChainFault::HeadMismatch => f.write_str("the chain head's hash does not match"),
        }
    }
}

/// The outcome of walking the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum Verification {
    /// Every entry links and hashes correctly, and the head matches the last entry.
    Ok {
        /// Entries checked.
        entries: u64,
        /// The last sequence number.
        last_seq: i64,
    },
    /// The first bad entry.
    Broken {
        /// Its sequence number.
        seq: i64,
        /// What is wrong with it.
        fault: ChainFault,
        /// Entries that checked out before it.
        entries_ok: u64,
    },
}

/// Errors of the audit operations.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// The actor may not do this.
    #[error(transparent)]
    Forbidden(#[from] Forbidden),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for AuditError {
    fn from(e: sqlx::Error) -> Self {
        AuditError::Store(e.into())
    }
}

/// Walks the live chain from its start (or the archive checkpoint) to its head, and records
/// that it did so (with the result) as a new entry.
pub async fn verify(store: &Store, actor: &Actor) -> Result<Verification, AuditError> {
    let _permit = rbac::require(store, actor, Permission::AuditVerify).await?;
    let result = verify_chain(store).await?;
    let mut tx = store.begin().await?;
    append(
        &mut tx,
        &NewAuditEntry::new(actor, AuditAction::AuditVerified)
            .details(serde_json::to_value(&result).unwrap_or_default()),
    )
    .await?;
    tx.commit().await.map_err(StoreError::from)?;
    Ok(result)
}

/// The chain check itself, without permission check or record: for benchmarks and tests.
pub async fn verify_chain(store: &Store) -> Result<Verification, StoreError> {
    repo::verify(store).await
}

/// Lists entries, newest first.
pub async fn list(
    store: &Store,
    actor: &Actor,
    filter: &AuditFilter,
) -> Result<Vec<AuditEntry>, AuditError> {
    let _permit = rbac::require(store, actor, Permission::AuditRead).await?;
    Ok(repo::list(store, filter).await?)
}

/// The usernames of the accounts named as `user:<id>` among `entries`' actors and targets,
/// keyed by that reference. Needs [`Permission::AuditRead`].
pub async fn usernames(
    store: &Store,
    actor: &Actor,
    entries: &[AuditEntry],
) -> Result<std::collections::HashMap<String, String>, AuditError> {
    let _permit = rbac::require(store, actor, Permission::AuditRead).await?;
    let refs: Vec<&str> = entries
        .iter()
        .flat_map(|e| std::iter::once(e.actor.as_str()).chain(e.target.as_deref()))
        .collect();
    Ok(repo::usernames(store, &refs).await?)
}

/// The newest sequence number (0 for an empty chain).
pub async fn head_seq(store: &Store) -> Result<i64, StoreError> {
    repo::head_seq(store).await
}

mod hex_bytes {
    pub fn serialize<S: serde::Serializer>(b: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(b))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_encoding_separates_fields_unambiguously() {
        // Moving a byte from one field to the next must change the encoding.
        let a = canonical_bytes(1, 2, "ab", "c", None, "{}");
        let b = canonical_bytes(1, 2, "a", "bc", None, "{}");
        assert_ne!(a, b);
        let absent = canonical_bytes(1, 2, "a", "b", None, "{}");
        let empty = canonical_bytes(1, 2, "a", "b", Some(""), "{}");
        assert_ne!(absent, empty);
        // The default outcome and no session add nothing; anything else adds a tail.
        assert_eq!(
            canonical_bytes_with(1, 2, "a", "b", None, "{}", "success", None),
            absent
        );
        let denied = canonical_bytes_with(1, 2, "a", "b", None, "{}", "denied", None);
        let in_session = canonical_bytes_with(1, 2, "a", "b", None, "{}", "success", Some("s"));
        assert_ne!(denied, absent);
        assert_ne!(in_session, absent);
        assert_ne!(denied, in_session);
    }

    #[test]
    fn chain_hash_is_sha256_of_prev_then_row() {
        // SHA-256("abc") from FIPS 180-2, split across prev and row.
        let h = chain_hash(b"a", b"bc");
        assert_eq!(
            hex::encode(h),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
