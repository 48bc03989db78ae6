//! Data-subject requests under the GDPR: intake, identity verification, deadlines, access and
//! portability exports, provable erasure with a residual-PII scan, and legal holds.
//!
//! A request moves `received → verifying → verified → in_progress → completed`, or ends
//! `rejected` (with a reason) or `withdrawn`. Every transition is one transaction with its
//! audit entry. Nothing leaves or is destroyed before the subject's identity is verified, and
//! the core refuses it, not only the screens: [`run`] checks the request's state itself.
//!
//! The subject is named by username or by email; an email is looked up through the blind index
//! and never stored with the request. Audit details carry ids, kinds and counts, never a
//! username, email or the verification code.

mod erasure;
mod export;
pub mod holds;
mod repo;
mod scan;

use chrono::Months;
use rand::Rng;
use serde::Serialize;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::audit::{self, AuditAction, NewAuditEntry};
use crate::auth::platform_tokens::{self, PlatformTokenKeys};
use crate::auth::tokens::TokenError;
use crate::identity::Actor;
use crate::keys::{KeyError, KeyRing};
use crate::rbac::{self, Forbidden, Permission};
use crate::store::{Store, StoreError, Timestamp};

pub use erasure::{CommentPolicy, ErasureReceipt, ReceiptStep};
pub use export::ExportedFile;
pub use scan::{Identifiers, ScanHit, ScanReport};

/// How long a verification code is valid.
pub const CODE_VALID_SECONDS: i64 = 7 * 24 * 3600;
/// Wrong codes allowed before the request's verification locks.
pub const MAX_CODE_ATTEMPTS: i64 = 5;
/// Requests due within this many days count as "due soon".
pub const DUE_SOON_DAYS: i64 = 7;
/// The most months a deadline may be extended by (Art. 12(3)).
pub const MAX_EXTENSION_MONTHS: u32 = 2;
/// Longest reason accepted for an extension, rejection or withdrawal.
pub const MAX_REASON_LEN: usize = 500;

/// The right a request exercises.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RequestKind {
    /// Art. 15: a copy of everything held about the subject.
    Access,
    /// Art. 20: the subject's data in machine-readable files.
    Portability,
    /// Art. 17: the right to be forgotten.
    Erasure,
    /// Art. 16: correction of inaccurate personal data.
    Rectification,
}

impl RequestKind {
    /// Every kind.
    pub const ALL: [RequestKind; 4] = [
        RequestKind::Access,
        RequestKind::Portability,
        RequestKind::Erasure,
        RequestKind::Rectification,
    ];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            RequestKind::Access => "access",
            RequestKind::Portability => "portability",
            RequestKind::Erasure => "erasure",
            RequestKind::Rectification => "rectification",
        }
    }

    /// Parses a stored or typed name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// Where a request is in its lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RequestStatus {
    /// Recorded; no verification started.
    Received,
    /// A code was issued to the subject; waiting for it.
    Verifying,
    /// The subject's identity is verified: the request may run.
    Verified,
    /// Running (an erasure that stopped part-way stays here until it is resumed).
    InProgress,
    /// Done.
    Completed,
    /// Refused, with a reason.
    Rejected,
    /// The subject withdrew it.
    Withdrawn,
}

impl RequestStatus {
    /// Every status.
    pub const ALL: [RequestStatus; 7] = [
        RequestStatus::Received,
        RequestStatus::Verifying,
        RequestStatus::Verified,
        RequestStatus::InProgress,
        RequestStatus::Completed,
        RequestStatus::Rejected,
        RequestStatus::Withdrawn,
    ];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            RequestStatus::Received => "received",
            RequestStatus::Verifying => "verifying",
            RequestStatus::Verified => "verified",
            RequestStatus::InProgress => "in_progress",
            RequestStatus::Completed => "completed",
            RequestStatus::Rejected => "rejected",
            RequestStatus::Withdrawn => "withdrawn",
        }
    }

    /// Parses a stored or typed name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// No further transition is possible.
    pub fn is_closed(self) -> bool {
        matches!(
            self,
            RequestStatus::Completed | RequestStatus::Rejected | RequestStatus::Withdrawn
        )
    }
}

/// A request's id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct RequestId(uuid::Uuid);

impl RequestId {
    /// Parses a typed id.
    pub fn parse(s: &str) -> Option<Self> {
        uuid::Uuid::parse_str(s.trim()).ok().map(Self)
    }

    /// The UUID.
    pub fn as_uuid(self) -> uuid::Uuid {
        self.0
    }
}

impl std::fmt::Display for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// How the officer names the subject.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubjectRef {
    /// By username.
    Username(String),
    /// By email address, looked up through the blind index; never stored with the request.
    Email(String),
}

/// How the subject proved who they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum VerificationMethod {
    /// A one-time code the platform delivered to the subject.
    Code,
    /// The subject's own valid access token.
    Token,
}

impl VerificationMethod {
    fn as_str(self) -> &'static str {
        match self {
            VerificationMethod::Code => "code",
            VerificationMethod::Token => "token",
        }
    }
}

/// How the verification code reaches the subject.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CodeDelivery {
    /// By mail to the subject's registered address, through the outbox; the officer never
    /// sees it (the subject's reply brings it).
    Mail,
    /// Shown to the filing officer, for a request filed on paper by a subject with no usable
    /// address; then another officer, not the one who filed, must enter it.
    Manual,
}

impl CodeDelivery {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            CodeDelivery::Mail => "mail",
            CodeDelivery::Manual => "manual",
        }
    }

    /// Parses a name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "mail" => Some(CodeDelivery::Mail),
            "manual" => Some(CodeDelivery::Manual),
            _ => None,
        }
    }
}

/// A request as the inbox shows it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Request {
    /// Id.
    pub id: RequestId,
    /// Kind.
    pub kind: RequestKind,
    /// Status.
    pub status: RequestStatus,
    /// The subject's account, while it exists (an erasure removes it).
    pub subject_id: Option<uuid::Uuid>,
    /// The subject's username, while the account exists.
    pub subject_username: Option<String>,
    /// When the request was received.
    pub received_at: Timestamp,
    /// The deadline in force: the extended one if extended.
    pub due_at: Timestamp,
    /// The original deadline: received + one calendar month.
    pub original_due_at: Timestamp,
    /// Why the deadline was extended, if it was.
    pub extension_reason: Option<String>,
    /// Open and past its deadline.
    pub overdue: bool,
    /// Open and due within [`DUE_SOON_DAYS`].
    pub due_soon: bool,
    /// How identity was verified, once it was.
    pub verification_method: Option<VerificationMethod>,
    /// When the current code expires.
    pub code_expires_at: Option<Timestamp>,
    /// Wrong codes left before the verification locks.
    pub code_attempts_left: i64,
    /// Too many wrong codes: a new code must be issued.
    pub verification_locked: bool,
    /// When identity was verified.
    pub verified_at: Option<Timestamp>,
    /// When it completed.
    pub completed_at: Option<Timestamp>,
    /// Why it was rejected or withdrawn.
    pub closing_reason: Option<String>,
    /// The officer who recorded it.
    pub created_by: String,
    /// Last change.
    pub updated_at: Timestamp,
    /// How the verification code reaches the subject.
    pub code_delivery: CodeDelivery,
    /// The outbox message carrying the current code (mail delivery).
    pub code_message_id: Option<String>,
}

/// One step of a request's run.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Step {
    /// Position, from 1.
    pub no: i64,
    /// Name, such as `delete_activity`.
    pub name: String,
    /// `pending`, `running`, `done`, `failed` or `skipped`.
    pub status: String,
    /// Rows the step changed.
    pub rows_affected: i64,
    /// When it started.
    pub started_at: Option<Timestamp>,
    /// When it finished.
    pub finished_at: Option<Timestamp>,
    /// Why it failed.
    pub error: Option<String>,
    /// What it recorded (counts, scan results), as JSON.
    pub details: Option<serde_json::Value>,
}

/// A file a run produced: its kind and digest (the file itself is where the officer saved it).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Artifact {
    /// `access_json`, `access_html`, `portability_zip`.
    pub kind: String,
    /// SHA-256, hex.
    pub sha256: String,
    /// Size in bytes.
    pub size_bytes: i64,
    /// When it was written.
    pub created_at: Timestamp,
}

/// One audit entry about a request, for its timeline.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct TimelineEntry {
    /// Audit sequence number.
    pub seq: i64,
    /// When.
    pub at: Timestamp,
    /// Who (username, or `system:...`).
    pub actor: String,
    /// The audit action, such as `dsr.verified`.
    pub action: String,
    /// Its details.
    pub details: serde_json::Value,
}

/// A request with everything recorded about it.
#[derive(Debug, Clone, Serialize)]
pub struct RequestDetail {
    /// The request.
    pub request: Request,
    /// Its run's steps, in order.
    pub steps: Vec<Step>,
    /// Files its run produced.
    pub artifacts: Vec<Artifact>,
    /// Its audit entries, oldest first.
    pub timeline: Vec<TimelineEntry>,
    /// The erasure receipt, once the erasure completed.
    pub receipt: Option<ErasureReceipt>,
    /// The delivery of the current code by mail: its outbox state, attempts and last error.
    pub code_message: Option<crate::mail::OutboxMessage>,
}

/// A new request, and the code when it is delivered by hand.
pub struct Created {
    /// The request (status `verifying`).
    pub request: Request,
    /// The one-time verification code, shown once, for [`CodeDelivery::Manual`] only; a
    /// mailed code is never returned. Only its hash is stored.
    pub verification_code: Option<Zeroizing<String>>,
}

impl std::fmt::Debug for Created {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Created")
            .field("request", &self.request)
            .finish_non_exhaustive()
    }
}

/// Which requests to list.
#[derive(Debug, Clone, Default)]
pub struct RequestFilter {
    /// Only this status.
    pub status: Option<RequestStatus>,
    /// Only this kind.
    pub kind: Option<RequestKind>,
    /// Only open requests past their deadline.
    pub overdue: bool,
    /// Only open requests due within [`DUE_SOON_DAYS`] (overdue ones included).
    pub due_soon: bool,
}

/// A correction for a rectification request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Correction {
    /// The name shown beside comments.
    DisplayName(String),
    /// The email address (re-sealed, with a new blind index).
    Email(String),
    /// The phone number (re-sealed).
    Phone(String),
}

/// How a run should go.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Where exports are written (must exist); required for access and portability.
    pub out_dir: Option<std::path::PathBuf>,
    /// What an erasure does with the subject's comments.
    pub comments: CommentPolicy,
    /// The corrections a rectification applies.
    pub corrections: Vec<Correction>,
}

/// Progress of a run, reported as each step starts and ends.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct RunProgress {
    /// The step, from 1.
    pub step: i64,
    /// Steps in all.
    pub steps: i64,
    /// The step's name.
    pub name: String,
    /// `running`, `done` or `failed`.
    pub state: &'static str,
    /// Rows the step changed (when done).
    pub rows: i64,
}

/// What the caller wants after a progress report: go on, or stop here (the step in flight is
/// rolled back, exactly as if the process had been killed; a later run resumes from it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Go on.
    Continue,
    /// Stop.
    Stop,
}

/// What a run did.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RunOutcome {
    /// Files written for an access or portability request.
    Exported {
        /// The files, with their digests.
        files: Vec<ExportedFile>,
    },
    /// The erasure finished and its receipt is in the audit chain.
    Erased {
        /// The receipt.
        receipt: ErasureReceipt,
    },
    /// The erasure ran but the residual scan still found the subject: not completed.
    ResidualFound {
        /// Where.
        report: ScanReport,
    },
    /// The corrections were applied.
    Rectified {
        /// Fields changed.
        fields: Vec<&'static str>,
    },
}

/// Why a privacy operation was refused.
#[derive(Debug, thiserror::Error)]
pub enum PrivacyError {
    /// The actor lacks the permission.
    #[error(transparent)]
    Forbidden(#[from] Forbidden),
    /// No request with that id.
    #[error("no data-subject request with that id")]
    NotFound,
    /// No account matches the username or email given.
    #[error("no account matches that subject")]
    SubjectNotFound,
    /// The request is not in a state that allows this.
    #[error("the request is {status}: {action} is not possible")]
    WrongState {
        /// The request's status.
        status: &'static str,
        /// What was attempted.
        action: &'static str,
    },
    /// The subject's identity is not verified: nothing may run.
    #[error("the subject's identity is not verified; the request cannot run")]
    NotVerified,
    /// The code was wrong; attempts remain.
    #[error("wrong verification code ({attempts_left} attempts left)")]
    WrongCode {
        /// Attempts left before the verification locks.
        attempts_left: i64,
    },
    /// The code expired: issue a new one.
    #[error("the verification code expired; issue a new one")]
    CodeExpired,
    /// Too many wrong codes: issue a new one.
    #[error("verification is locked after too many wrong codes; issue a new code")]
    VerificationLocked,
    /// The token does not belong to the subject, or did not verify.
    #[error("the access token does not prove the subject's identity: {0}")]
    TokenRefused(String),
    /// Input refused, with why.
    #[error("{0}")]
    Invalid(String),
    /// The subject has no usable address for a mailed code.
    #[error("the subject has no address on file: file the request with manual delivery")]
    NoAddress,
    /// A code delivered by hand is entered by another officer than the one who filed the
    /// request (and saw the code).
    #[error("the officer who filed this request saw its code: another officer must enter it")]
    SameOfficer,
    /// The code could not be queued for delivery.
    #[error(transparent)]
    Mail(#[from] crate::mail::MailError),
    /// Legal holds or open incidents block the erasure.
    #[error("erasure blocked: {}", .reasons.join("; "))]
    Held {
        /// Each hold or incident, with its reason.
        reasons: Vec<String>,
    },
    /// The run was stopped by its caller; run again to resume.
    #[error("stopped at step {step}; run the request again to resume")]
    Stopped {
        /// The step that was in flight (rolled back).
        step: i64,
    },
    /// An export file could not be written.
    #[error("cannot write the export: {0}")]
    Io(String),
    /// Keys were needed and are not available.
    #[error(transparent)]
    Keys(#[from] KeyError),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for PrivacyError {
    fn from(e: sqlx::Error) -> Self {
        PrivacyError::Store(e.into())
    }
}

/// Records a request and issues its verification code. The email, if given, is used only to
/// find the account.
pub async fn create(
    store: &Store,
    ring: Option<&KeyRing>,
    actor: &Actor,
    kind: RequestKind,
    subject: &SubjectRef,
    delivery: CodeDelivery,
) -> Result<Created, PrivacyError> {
    create_at(
        store,
        ring,
        actor,
        kind,
        subject,
        delivery,
        Timestamp::now(),
    )
    .await
}

/// [`create`] as if received at `now` (tests and backfilled paper requests).
pub async fn create_at(
    store: &Store,
    ring: Option<&KeyRing>,
    actor: &Actor,
    kind: RequestKind,
    subject: &SubjectRef,
    delivery: CodeDelivery,
    now: Timestamp,
) -> Result<Created, PrivacyError> {
    rbac::require(store, actor, Permission::DsrManage).await?;
    let subject_id = find_subject(store, ring, subject).await?;
    let mail_ring = match delivery {
        CodeDelivery::Mail => Some(mail_ring(store, ring, subject_id).await?),
        CodeDelivery::Manual => None,
    };
    let id = RequestId(uuid::Uuid::now_v7());
    let due = add_months(now, 1)?;
    let code = new_code();
    let mut tx = store.begin().await?;
    repo::insert_request(
        &mut tx,
        &repo::NewRequestRow {
            id: id.to_string(),
            kind: kind.as_str(),
            subject_id: subject_id.to_string(),
            received_at: now.micros(),
            due_at: due.micros(),
            code_hash: code_hash(id, &code),
            code_expires_at: now.micros() + CODE_VALID_SECONDS * 1_000_000,
            created_by: actor.user_id().to_string(),
            code_delivery: delivery.as_str(),
        },
    )
    .await?;
    if let Some(ring) = mail_ring {
        let expires = Timestamp::from_micros(now.micros() + CODE_VALID_SECONDS * 1_000_000);
        let message = crate::mail::queue_dsr_code(
            &mut tx,
            store,
            ring,
            &crate::mail::DsrCodeMessage {
                subject: subject_id,
                request_id: &id.to_string(),
                request_kind: kind.as_str(),
                code: &code,
                expires_at: expires,
            },
            now,
        )
        .await?;
        repo::set_code_message(&mut tx, &id.to_string(), &message).await?;
    }
    audit::append(
        &mut tx,
        &NewAuditEntry::new(actor, AuditAction::DsrReceived)
            .target(id.to_string())
            .details(serde_json::json!({
                "kind": kind.as_str(),
                "subject": subject_id.to_string(),
                "found_by": match subject { SubjectRef::Username(_) => "username", SubjectRef::Email(_) => "email" },
                "due_at": due.to_rfc3339(),
                "verification": "code",
                "delivery": delivery.as_str(),
            })),
    )
    .await?;
    tx.commit().await?;
    let request = get(store, id, Timestamp::now()).await?;
    Ok(Created {
        request,
        verification_code: (delivery == CodeDelivery::Manual).then_some(code),
    })
}

/// The key ring that seals a mailed code, after checking the subject has an address on file.
async fn mail_ring<'r>(
    store: &Store,
    ring: Option<&'r KeyRing>,
    subject: uuid::Uuid,
) -> Result<&'r KeyRing, PrivacyError> {
    let ring = ring.ok_or_else(|| {
        PrivacyError::Invalid(
            "mailing the code needs your data keys (the contact purpose) on this machine".into(),
        )
    })?;
    if !repo::has_email(store, &subject.to_string()).await? {
        return Err(PrivacyError::NoAddress);
    }
    Ok(ring)
}

/// Issues a new verification code (the old one stops working; attempts start again). A mailed
/// request's code is queued to the subject's address and a still queued earlier one cancelled,
/// so one code of a request is on its way at a time; a manual request's code is returned.
pub async fn reissue_code(
    store: &Store,
    ring: Option<&KeyRing>,
    actor: &Actor,
    id: RequestId,
) -> Result<Option<Zeroizing<String>>, PrivacyError> {
    rbac::require(store, actor, Permission::DsrManage).await?;
    let now = Timestamp::now();
    let before = repo::request(store, &id.to_string())
        .await?
        .ok_or(PrivacyError::NotFound)?;
    let mailed = before.code_delivery == CodeDelivery::Mail.as_str();
    let ring = match (mailed, before.subject_uuid()) {
        (true, Some(subject)) => Some((mail_ring(store, ring, subject).await?, subject)),
        (true, None) => return Err(PrivacyError::SubjectNotFound),
        (false, _) => None,
    };
    let mut tx = store.begin().await?;
    let (row, status) = locked(&mut tx, id).await?;
    if !matches!(status, RequestStatus::Received | RequestStatus::Verifying) {
        return Err(PrivacyError::WrongState {
            status: status.as_str(),
            action: "issuing a verification code",
        });
    }
    let code = new_code();
    repo::set_code(
        &mut tx,
        &id.to_string(),
        &code_hash(id, &code),
        now.micros() + CODE_VALID_SECONDS * 1_000_000,
        now.micros(),
    )
    .await?;
    if let Some((ring, subject)) = ring {
        if let Some(old) = &row.code_message_id {
            crate::mail::cancel_queued(&mut tx, old).await?;
        }
        let kind = row.kind()?;
        let message = crate::mail::queue_dsr_code(
            &mut tx,
            store,
            ring,
            &crate::mail::DsrCodeMessage {
                subject,
                request_id: &id.to_string(),
                request_kind: kind.as_str(),
                code: &code,
                expires_at: Timestamp::from_micros(now.micros() + CODE_VALID_SECONDS * 1_000_000),
            },
            now,
        )
        .await?;
        repo::set_code_message(&mut tx, &id.to_string(), &message).await?;
    }
    audit::append(
        &mut tx,
        &NewAuditEntry::new(actor, AuditAction::DsrCodeIssued)
            .target(id.to_string())
            .details(serde_json::json!({ "delivery": row.code_delivery })),
    )
    .await?;
    tx.commit().await?;
    Ok((!mailed).then_some(code))
}

/// Checks the code the subject received. A wrong code uses up an attempt (recorded and
/// audited); after [`MAX_CODE_ATTEMPTS`] the verification locks until a new code is issued.
pub async fn verify_code(
    store: &Store,
    actor: &Actor,
    id: RequestId,
    code: &str,
) -> Result<Request, PrivacyError> {
    verify_code_at(store, actor, id, code, Timestamp::now()).await
}

/// [`verify_code`] at a given time (tests step the clock).
pub async fn verify_code_at(
    store: &Store,
    actor: &Actor,
    id: RequestId,
    code: &str,
    now: Timestamp,
) -> Result<Request, PrivacyError> {
    rbac::require(store, actor, Permission::DsrManage).await?;
    let mut tx = store.begin().await?;
    let (row, status) = locked(&mut tx, id).await?;
    if status != RequestStatus::Verifying {
        return Err(PrivacyError::WrongState {
            status: status.as_str(),
            action: "verifying a code",
        });
    }
    if row.code_delivery == CodeDelivery::Manual.as_str()
        && row.created_by_id == actor.user_id().to_string()
    {
        // Four eyes: the filing officer saw the code, so their entering it proves nothing.
        return Err(PrivacyError::SameOfficer);
    }
    if row.verification_attempts >= MAX_CODE_ATTEMPTS {
        return Err(PrivacyError::VerificationLocked);
    }
    if row.verification_expires_at.is_none_or(|e| now.micros() > e) {
        return Err(PrivacyError::CodeExpired);
    }
    let expected = row.verification_code_hash.clone().unwrap_or_default();
    let given = code_hash(id, &normalise_code(code));
    let ok: bool = subtle_eq(expected.as_bytes(), given.as_bytes());
    if !ok {
        let attempts = repo::record_failed_attempt(&mut tx, &id.to_string(), now.micros()).await?;
        let left = (MAX_CODE_ATTEMPTS - attempts).max(0);
        audit::append(
            &mut tx,
            &NewAuditEntry::new(
                actor,
                if left == 0 {
                    AuditAction::DsrVerificationLocked
                } else {
                    AuditAction::DsrVerificationFailed
                },
            )
            .target(id.to_string())
            .details(serde_json::json!({ "attempt": attempts })),
        )
        .await?;
        tx.commit().await?;
        return Err(if left == 0 {
            PrivacyError::VerificationLocked
        } else {
            PrivacyError::WrongCode {
                attempts_left: left,
            }
        });
    }
    mark_verified(&mut tx, actor, id, VerificationMethod::Code, now).await?;
    tx.commit().await?;
    get(store, id, now).await
}

/// Verifies the request with the subject's own access token, signed by the platform: it must
/// verify completely with the platform's public keys (signature, expiry, lifetime, revocation,
/// live session, active account) and belong to the subject.
pub async fn verify_token(
    store: &Store,
    platform: &PlatformTokenKeys,
    actor: &Actor,
    id: RequestId,
    token: &str,
) -> Result<Request, PrivacyError> {
    rbac::require(store, actor, Permission::DsrManage).await?;
    let now = Timestamp::now();
    let claims = platform_tokens::verify(store, platform, token)
        .await
        .map_err(|e| match e {
            TokenError::Store(s) => PrivacyError::Store(s),
            other => PrivacyError::TokenRefused(other.to_string()),
        })?;
    let mut tx = store.begin().await?;
    let (row, status) = locked(&mut tx, id).await?;
    if !matches!(status, RequestStatus::Received | RequestStatus::Verifying) {
        return Err(PrivacyError::WrongState {
            status: status.as_str(),
            action: "verifying identity",
        });
    }
    if row.subject_id.as_deref() != Some(claims.sub.as_str()) {
        audit::append(
            &mut tx,
            &NewAuditEntry::new(actor, AuditAction::DsrVerificationFailed)
                .target(id.to_string())
                .details(serde_json::json!({ "method": "token", "reason": "not_the_subject" })),
        )
        .await?;
        tx.commit().await?;
        return Err(PrivacyError::TokenRefused(
            "it belongs to another account".into(),
        ));
    }
    mark_verified(&mut tx, actor, id, VerificationMethod::Token, now).await?;
    tx.commit().await?;
    get(store, id, now).await
}

async fn mark_verified(
    tx: &mut crate::store::Tx,
    actor: &Actor,
    id: RequestId,
    method: VerificationMethod,
    now: Timestamp,
) -> Result<(), PrivacyError> {
    repo::set_verified(tx, &id.to_string(), method.as_str(), now.micros()).await?;
    audit::append(
        tx,
        &NewAuditEntry::new(actor, AuditAction::DsrVerified)
            .target(id.to_string())
            .details(serde_json::json!({ "method": method.as_str() })),
    )
    .await?;
    Ok(())
}

/// Requests matching `filter`, the most urgent first (open ones by deadline, then closed ones
/// newest first).
pub async fn list(
    store: &Store,
    actor: &Actor,
    filter: &RequestFilter,
) -> Result<Vec<Request>, PrivacyError> {
    list_at(store, actor, filter, Timestamp::now()).await
}

/// [`list`] as seen at `now`.
pub async fn list_at(
    store: &Store,
    actor: &Actor,
    filter: &RequestFilter,
    now: Timestamp,
) -> Result<Vec<Request>, PrivacyError> {
    rbac::require(store, actor, Permission::DsrRead).await?;
    let soon = now.micros() + DUE_SOON_DAYS * 86_400 * 1_000_000;
    let rows = repo::list_requests(
        store,
        &repo::ListArgs {
            status: filter.status.map(RequestStatus::as_str),
            kind: filter.kind.map(RequestKind::as_str),
            due_before: if filter.overdue {
                Some(now.micros())
            } else if filter.due_soon {
                Some(soon)
            } else {
                None
            },
        },
    )
    .await?;
    rows.into_iter().map(|r| r.into_request(now)).collect()
}

/// One request with its steps, files, timeline and (once erased) receipt.
pub async fn show(
    store: &Store,
    actor: &Actor,
    id: RequestId,
) -> Result<RequestDetail, PrivacyError> {
    rbac::require(store, actor, Permission::DsrRead).await?;
    let now = Timestamp::now();
    let request = get(store, id, now).await?;
    let steps = repo::steps_of(store, &id.to_string()).await?;
    let artifacts = repo::artifacts_of(store, &id.to_string()).await?;
    let timeline = repo::timeline_of(store, &id.to_string()).await?;
    let receipt = timeline
        .iter()
        .find(|t| t.action == AuditAction::DsrErasureReceipt.as_str())
        .and_then(|t| serde_json::from_value(t.details.clone()).ok());
    let code_message = match &request.code_message_id {
        Some(m) => crate::mail::message(store, m).await?,
        None => None,
    };
    Ok(RequestDetail {
        request,
        steps,
        artifacts,
        timeline,
        receipt,
        code_message,
    })
}

/// Extends the deadline once, by 1 or 2 months, with a recorded reason (Art. 12(3)).
pub async fn extend(
    store: &Store,
    actor: &Actor,
    id: RequestId,
    months: u32,
    reason: &str,
) -> Result<Request, PrivacyError> {
    rbac::require(store, actor, Permission::DsrManage).await?;
    if !(1..=MAX_EXTENSION_MONTHS).contains(&months) {
        return Err(PrivacyError::Invalid(format!(
            "a deadline may be extended by 1 to {MAX_EXTENSION_MONTHS} months"
        )));
    }
    let reason = clean_reason(reason)?;
    let now = Timestamp::now();
    let mut tx = store.begin().await?;
    let (row, status) = locked(&mut tx, id).await?;
    if status.is_closed() {
        return Err(PrivacyError::WrongState {
            status: status.as_str(),
            action: "extending the deadline",
        });
    }
    if row.extended_due_at.is_some() {
        return Err(PrivacyError::Invalid(
            "the deadline was already extended; it may be extended only once".into(),
        ));
    }
    let due = add_months(Timestamp::from_micros(row.due_at), months)?;
    repo::set_extension(
        &mut tx,
        &id.to_string(),
        due.micros(),
        &reason,
        now.micros(),
    )
    .await?;
    audit::append(
        &mut tx,
        &NewAuditEntry::new(actor, AuditAction::DsrExtended)
            .target(id.to_string())
            .details(serde_json::json!({ "months": months, "due_at": due.to_rfc3339() })),
    )
    .await?;
    tx.commit().await?;
    get(store, id, now).await
}

/// Rejects the request with a reason.
pub async fn reject(
    store: &Store,
    actor: &Actor,
    id: RequestId,
    reason: &str,
) -> Result<Request, PrivacyError> {
    close(store, actor, id, reason, RequestStatus::Rejected).await
}

/// Records that the subject withdrew the request.
pub async fn withdraw(
    store: &Store,
    actor: &Actor,
    id: RequestId,
    reason: &str,
) -> Result<Request, PrivacyError> {
    close(store, actor, id, reason, RequestStatus::Withdrawn).await
}

async fn close(
    store: &Store,
    actor: &Actor,
    id: RequestId,
    reason: &str,
    to: RequestStatus,
) -> Result<Request, PrivacyError> {
    rbac::require(store, actor, Permission::DsrManage).await?;
    let reason = clean_reason(reason)?;
    let now = Timestamp::now();
    let mut tx = store.begin().await?;
    let (_, status) = locked(&mut tx, id).await?;
    // A request whose erasure has begun cannot be abandoned half-way: it must be resumed.
    if status.is_closed() || status == RequestStatus::InProgress {
        return Err(PrivacyError::WrongState {
            status: status.as_str(),
            action: if to == RequestStatus::Rejected {
                "rejecting"
            } else {
                "withdrawing"
            },
        });
    }
    repo::set_closed(&mut tx, &id.to_string(), to.as_str(), &reason, now.micros()).await?;
    audit::append(
        &mut tx,
        &NewAuditEntry::new(
            actor,
            if to == RequestStatus::Rejected {
                AuditAction::DsrRejected
            } else {
                AuditAction::DsrWithdrawn
            },
        )
        .target(id.to_string()),
    )
    .await?;
    tx.commit().await?;
    get(store, id, now).await
}

/// Runs a verified request: the export, the erasure (resuming where a stopped one left off) or
/// the correction. `progress` hears each step start and end; answering [`Flow::Stop`] rolls the
/// step in flight back and returns [`PrivacyError::Stopped`].
pub async fn run(
    store: &Store,
    ring: &KeyRing,
    actor: &Actor,
    id: RequestId,
    options: &RunOptions,
    progress: &mut (dyn FnMut(&RunProgress) -> Flow + Send),
) -> Result<RunOutcome, PrivacyError> {
    rbac::require(store, actor, Permission::DsrManage).await?;
    let now = Timestamp::now();
    let row = repo::request(store, &id.to_string())
        .await?
        .ok_or(PrivacyError::NotFound)?;
    let status = row.status()?;
    match status {
        RequestStatus::Verified | RequestStatus::InProgress => {}
        RequestStatus::Received | RequestStatus::Verifying => {
            return Err(PrivacyError::NotVerified)
        }
        closed => {
            return Err(PrivacyError::WrongState {
                status: closed.as_str(),
                action: "running",
            })
        }
    }
    let kind = row.kind()?;
    match kind {
        RequestKind::Access | RequestKind::Portability => {
            let subject = row.subject_uuid().ok_or(PrivacyError::SubjectNotFound)?;
            let dir = options.out_dir.as_deref().ok_or_else(|| {
                PrivacyError::Invalid("choose a folder to write the export to".into())
            })?;
            let files =
                export::run(store, ring, actor, id, kind, subject, dir, now, progress).await?;
            Ok(RunOutcome::Exported { files })
        }
        RequestKind::Erasure => erasure::run(store, ring, actor, &row, options, progress).await,
        RequestKind::Rectification => {
            let subject = row.subject_uuid().ok_or(PrivacyError::SubjectNotFound)?;
            let fields =
                export::rectify(store, ring, actor, id, subject, &options.corrections).await?;
            Ok(RunOutcome::Rectified { fields })
        }
    }
}

/// Scans the whole database for `identifiers` (see [`ScanReport`]). Read-only.
pub async fn residual_scan(
    store: &Store,
    ring: &KeyRing,
    actor: &Actor,
    identifiers: &Identifiers,
) -> Result<ScanReport, PrivacyError> {
    rbac::require(store, actor, Permission::DsrManage).await?;
    let report = scan::scan(store, ring, identifiers, None).await?;
    // The scan opens every sealed value: audited, with counts only.
    crate::audit::record_personal_data_read(
        store,
        actor,
        "dsr_scan",
        None,
        serde_json::json!({
            "tables": report.tables,
            "values_opened": report.values_opened,
            "hits": report.hits.len(),
        }),
    )
    .await?;
    Ok(report)
}

/// The identifiers of an account (username, display name, email, phone), for a scan.
pub async fn identifiers_of(
    store: &Store,
    ring: &KeyRing,
    actor: &Actor,
    subject: &SubjectRef,
) -> Result<Identifiers, PrivacyError> {
    rbac::require(store, actor, Permission::DsrManage).await?;
    let id = find_subject(store, Some(ring), subject).await?;
    scan::identifiers(store, ring, id)
        .await?
        .ok_or(PrivacyError::SubjectNotFound)
}

/// The request, locked for the rest of the transaction, and its status.
async fn locked(
    tx: &mut crate::store::Tx,
    id: RequestId,
) -> Result<(repo::RequestRow, RequestStatus), PrivacyError> {
    let row = repo::request_for_update(tx, &id.to_string())
        .await?
        .ok_or(PrivacyError::NotFound)?;
    let status = row.status()?;
    Ok((row, status))
}

async fn get(store: &Store, id: RequestId, now: Timestamp) -> Result<Request, PrivacyError> {
    repo::request(store, &id.to_string())
        .await?
        .ok_or(PrivacyError::NotFound)?
        .into_request(now)
}

async fn find_subject(
    store: &Store,
    ring: Option<&KeyRing>,
    subject: &SubjectRef,
) -> Result<uuid::Uuid, PrivacyError> {
    let found = match subject {
        SubjectRef::Username(name) => {
            let name = name.trim();
            if name.is_empty() {
                return Err(PrivacyError::Invalid("give the subject's username".into()));
            }
            repo::user_by_username(store, name).await?
        }
        SubjectRef::Email(email) => {
            let email = email.trim();
            if !email.contains('@') || email.len() > 320 {
                return Err(PrivacyError::Invalid("that is not an email address".into()));
            }
            let ring = ring.ok_or(PrivacyError::Keys(KeyError::NoKeyPairHere))?;
            crate::platform::find_user_by_email(store, ring, email).await?
        }
    };
    found.ok_or(PrivacyError::SubjectNotFound)
}

fn add_months(t: Timestamp, months: u32) -> Result<Timestamp, PrivacyError> {
    t.to_datetime()
        .checked_add_months(Months::new(months))
        .map(|d| Timestamp::from_micros(d.timestamp_micros()))
        .ok_or_else(|| PrivacyError::Invalid("date out of range".into()))
}

fn clean_reason(reason: &str) -> Result<String, PrivacyError> {
    let r = reason.trim();
    if r.is_empty() {
        return Err(PrivacyError::Invalid("give a reason".into()));
    }
    if r.chars().count() > MAX_REASON_LEN {
        return Err(PrivacyError::Invalid(format!(
            "a reason is at most {MAX_REASON_LEN} characters"
        )));
    }
    Ok(r.to_owned())
}

/// Unambiguous characters for codes read aloud or typed (Crockford's base32).
const CODE_ALPHABET: &[u8] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// A fresh code of 10 characters (50 bits) in two groups: `K7QX2-MPA9D`.
fn new_code() -> Zeroizing<String> {
    let mut rng = rand::rngs::OsRng;
    let mut s = String::with_capacity(11);
    for i in 0..10 {
        if i == 5 {
            s.push('-');
        }
        s.push(CODE_ALPHABET[rng.gen_range(0..CODE_ALPHABET.len())] as char);
    }
    Zeroizing::new(s)
}

/// Upper case, separators dropped, and the letters people confuse mapped as Crockford does.
fn normalise_code(code: &str) -> Zeroizing<String> {
    let mut s = String::with_capacity(11);
    for (n, c) in code.chars().filter(|c| !matches!(c, '-' | ' ')).enumerate() {
        if n == 5 {
            s.push('-');
        }
        s.push(match c.to_ascii_uppercase() {
            'O' => '0',
            'I' | 'L' => '1',
            other => other,
        });
    }
    Zeroizing::new(s)
}

/// SHA-256 of the request id and the code, hex. The code has 50 random bits and lives a week
/// with five tries, so a salted fast hash is enough; the id salts it per request.
fn code_hash(id: RequestId, code: &str) -> String {
    let mut h = Sha256::new();
    h.update(b"vigil-dsr-code-v1\0");
    h.update(id.0.as_bytes());
    h.update(code.as_bytes());
    hex::encode(h.finalize())
}

fn subtle_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The desktop shell awaits these inside its commands, whose futures must be `Send`.
#[allow(dead_code)]
fn futures_are_send(
    store: &Store,
    ring: &KeyRing,
    actor: &Actor,
    id: RequestId,
    options: &RunOptions,
    progress: &mut (dyn FnMut(&RunProgress) -> Flow + Send),
) {
    fn send<T: Send>(_: T) {}
    send(run(store, ring, actor, id, options, progress));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_normalise_as_people_type_them() {
        let code = new_code();
        assert_eq!(code.len(), 11);
        assert_eq!(&*normalise_code(&code.to_lowercase()), &*code);
        assert_eq!(&*normalise_code("k7qx2 mpa9d"), "K7QX2-MPA9D");
        assert_eq!(&*normalise_code("O1IL0-abcde"), "01110-ABCDE");
    }

    #[test]
    fn deadlines_are_calendar_months() {
        let jan31 = Timestamp::from_micros(
            chrono::DateTime::parse_from_rfc3339("2026-01-31T10:00:00Z")
                .unwrap()
                .timestamp_micros(),
        );
        // One calendar month after 31 January is the last day of February.
        assert_eq!(
            add_months(jan31, 1).unwrap().to_rfc3339(),
            "2026-02-28T10:00:00.000000Z"
        );
        assert_eq!(
            add_months(jan31, 3).unwrap().to_rfc3339(),
            "2026-04-30T10:00:00.000000Z"
        );
    }
}
