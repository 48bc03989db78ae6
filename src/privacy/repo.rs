//! SQL of data-subject requests, their steps and files, the subject's records for export and
//! erasure, legal holds, and the residual scan's reads.

use futures_util::TryStreamExt;
use sqlx::any::AnyRow;
use sqlx::{Any, Row};

use super::{
    Artifact, CodeDelivery, PrivacyError, Request, RequestId, RequestKind, RequestStatus, Step,
    TimelineEntry, VerificationMethod, DUE_SOON_DAYS, MAX_CODE_ATTEMPTS,
};
use crate::store::daily_counts::{CountChanges, Metric};
use crate::store::{backend_of, flag, map_rows, Backend, Store, StoreError, Timestamp, Tx};

type Result<T> = std::result::Result<T, StoreError>;

// ---------------------------------------------------------------------------------------------
// Requests

pub(super) struct NewRequestRow<'a> {
    pub id: String,
    pub kind: &'a str,
    pub subject_id: String,
    pub received_at: i64,
    pub due_at: i64,
    pub code_hash: String,
    pub code_expires_at: i64,
    pub created_by: String,
    pub code_delivery: &'static str,
}

pub(super) async fn insert_request(tx: &mut Tx, r: &NewRequestRow<'_>) -> Result<()> {
    sqlx::query(
        "INSERT INTO dsr_requests (id, kind, status, subject_id, received_at, due_at, \
         verification_method, verification_code_hash, verification_expires_at, created_by, \
         updated_at, code_delivery) VALUES ($1, $2, 'verifying', $3, $4, $5, NULL, $6, $7, $8, $4, \
         $9)",
    )
    .bind(&r.id)
    .bind(r.kind)
    .bind(&r.subject_id)
    .bind(r.received_at)
    .bind(r.due_at)
    .bind(&r.code_hash)
    .bind(r.code_expires_at)
    .bind(&r.created_by)
    .bind(r.code_delivery)
    .execute(&mut **tx)
    .await?;
    let mut counts = CountChanges::new();
    counts.add(Metric::Requests, r.received_at, "verifying", 1);
    counts.write(tx).await
}

/// Records the outbox message that carries the request's current code.
pub(super) async fn set_code_message(tx: &mut Tx, id: &str, message: &str) -> Result<()> {
    sqlx::query("UPDATE dsr_requests SET code_message_id = $2 WHERE id = $1")
        .bind(id)
        .bind(message)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// A request as stored, with the usernames it refers to.
#[derive(Debug, Clone)]
pub(super) struct RequestRow {
    pub id: String,
    pub kind: String,
    pub status: String,
    pub subject_id: Option<String>,
    pub subject_username: Option<String>,
    pub received_at: i64,
    pub due_at: i64,
    pub extended_due_at: Option<i64>,
    pub extension_reason: Option<String>,
    pub verification_method: Option<String>,
    pub verification_code_hash: Option<String>,
    pub verification_expires_at: Option<i64>,
    pub verification_attempts: i64,
    pub verified_at: Option<i64>,
    pub completed_at: Option<i64>,
    pub rejected_reason: Option<String>,
    pub created_by: String,
    pub updated_at: i64,
    pub subject_sealed: Option<Vec<u8>>,
    pub code_delivery: String,
    pub code_message_id: Option<String>,
    pub created_by_id: String,
}

const REQUEST_COLS: &str = "r.id, r.kind, r.status, r.subject_id, s.username, r.received_at, \
    r.due_at, r.extended_due_at, r.extension_reason, r.verification_method, \
    r.verification_code_hash, r.verification_expires_at, r.verification_attempts, \
    r.verified_at, r.completed_at, r.rejected_reason, COALESCE(c.username, r.created_by), \
    r.updated_at, r.subject_sealed, r.code_delivery, r.code_message_id, r.created_by \
    FROM dsr_requests r LEFT JOIN users s ON s.id = r.subject_id \
    LEFT JOIN users c ON c.id = r.created_by";

fn request_row(r: &AnyRow) -> std::result::Result<RequestRow, sqlx::Error> {
    Ok(RequestRow {
        id: r.try_get(0)?,
        kind: r.try_get(1)?,
        status: r.try_get(2)?,
        subject_id: r.try_get(3)?,
        subject_username: r.try_get(4)?,
        received_at: r.try_get(5)?,
        due_at: r.try_get(6)?,
        extended_due_at: r.try_get(7)?,
        extension_reason: r.try_get(8)?,
        verification_method: r.try_get(9)?,
        verification_code_hash: r.try_get(10)?,
        verification_expires_at: r.try_get(11)?,
        verification_attempts: r.try_get(12)?,
        verified_at: r.try_get(13)?,
        completed_at: r.try_get(14)?,
        rejected_reason: r.try_get(15)?,
        created_by: r.try_get(16)?,
        updated_at: r.try_get(17)?,
        subject_sealed: r.try_get(18)?,
        code_delivery: r.try_get(19)?,
        code_message_id: r.try_get(20)?,
        created_by_id: r.try_get(21)?,
    })
}

impl RequestRow {
    pub fn status(&self) -> std::result::Result<RequestStatus, PrivacyError> {
        RequestStatus::parse(&self.status)
            .ok_or_else(|| PrivacyError::Invalid(format!("unknown status {}", self.status)))
    }

    pub fn kind(&self) -> std::result::Result<RequestKind, PrivacyError> {
        RequestKind::parse(&self.kind)
            .ok_or_else(|| PrivacyError::Invalid(format!("unknown kind {}", self.kind)))
    }

    pub fn request_id(&self) -> std::result::Result<RequestId, PrivacyError> {
        RequestId::parse(&self.id).ok_or(PrivacyError::NotFound)
    }

    pub fn subject_uuid(&self) -> Option<uuid::Uuid> {
        self.subject_id
            .as_deref()
            .and_then(|s| uuid::Uuid::parse_str(s).ok())
    }

    pub fn into_request(self, now: Timestamp) -> std::result::Result<Request, PrivacyError> {
        let status = self.status()?;
        let due = self.extended_due_at.unwrap_or(self.due_at);
        let open = !status.is_closed();
        let attempts_left = (MAX_CODE_ATTEMPTS - self.verification_attempts).max(0);
        Ok(Request {
            id: self.request_id()?,
            kind: self.kind()?,
            status,
            subject_id: self.subject_uuid(),
            subject_username: self.subject_username,
            received_at: Timestamp::from_micros(self.received_at),
            due_at: Timestamp::from_micros(due),
            original_due_at: Timestamp::from_micros(self.due_at),
            extension_reason: self.extension_reason,
            overdue: open && now.micros() > due,
            due_soon: open && due - now.micros() <= DUE_SOON_DAYS * 86_400 * 1_000_000,
            verification_method: match self.verification_method.as_deref() {
                Some("code") => Some(VerificationMethod::Code),
                Some("token") => Some(VerificationMethod::Token),
                _ => None,
            },
            code_expires_at: (status == RequestStatus::Verifying)
                .then_some(self.verification_expires_at)
                .flatten()
                .map(Timestamp::from_micros),
            code_attempts_left: attempts_left,
            verification_locked: status == RequestStatus::Verifying && attempts_left == 0,
            verified_at: self.verified_at.map(Timestamp::from_micros),
            completed_at: self.completed_at.map(Timestamp::from_micros),
            closing_reason: self.rejected_reason,
            created_by: self.created_by,
            updated_at: Timestamp::from_micros(self.updated_at),
            code_delivery: if self.code_delivery == "mail" {
                CodeDelivery::Mail
            } else {
                CodeDelivery::Manual
            },
            code_message_id: self.code_message_id,
        })
    }
}

pub(super) async fn request(store: &Store, id: &str) -> Result<Option<RequestRow>> {
    Ok(
        sqlx::query(&format!("SELECT {REQUEST_COLS} WHERE r.id = $1"))
            .bind(id)
            .fetch_optional(store.pool())
            .await?
            .map(|r| request_row(&r))
            .transpose()?,
    )
}

/// The request, locked for the rest of the transaction on Postgres (SQLite's `BEGIN
/// IMMEDIATE` already serialises writers).
pub(super) async fn request_for_update(tx: &mut Tx, id: &str) -> Result<Option<RequestRow>> {
    let lock = if backend_of(tx) == Backend::Postgres {
        " FOR UPDATE OF r"
    } else {
        ""
    };
    Ok(
        sqlx::query(&format!("SELECT {REQUEST_COLS} WHERE r.id = $1{lock}"))
            .bind(id)
            .fetch_optional(&mut **tx)
            .await?
            .map(|r| request_row(&r))
            .transpose()?,
    )
}

pub(super) struct ListArgs<'a> {
    pub status: Option<&'a str>,
    pub kind: Option<&'a str>,
    /// Only open requests whose deadline in force is before this.
    pub due_before: Option<i64>,
}

pub(super) async fn list_requests(store: &Store, a: &ListArgs<'_>) -> Result<Vec<RequestRow>> {
    let rows = sqlx::query(&format!(
        "SELECT {REQUEST_COLS} \
         WHERE ($1 IS NULL OR r.status = $1) AND ($2 IS NULL OR r.kind = $2) \
           AND ($3 IS NULL OR (r.status NOT IN ('completed', 'rejected', 'withdrawn') \
                               AND COALESCE(r.extended_due_at, r.due_at) < $3)) \
         ORDER BY CASE WHEN r.status IN ('completed', 'rejected', 'withdrawn') THEN 1 ELSE 0 END, \
                  CASE WHEN r.status IN ('completed', 'rejected', 'withdrawn') \
                       THEN -r.updated_at ELSE COALESCE(r.extended_due_at, r.due_at) END, r.id \
         LIMIT 1000"
    ))
    .bind(a.status)
    .bind(a.kind)
    .bind(a.due_before)
    .fetch_all(store.pool())
    .await?;
    Ok(rows
        .iter()
        .map(request_row)
        .collect::<std::result::Result<_, _>>()?)
}

/// Locks a request's row ahead of a change of status, and returns its status and receipt
/// time then (`None`: no such request).
async fn status_before(tx: &mut Tx, id: &str) -> Result<Option<(String, i64)>> {
    let row = sqlx::query(
        "UPDATE dsr_requests SET updated_at = updated_at WHERE id = $1 \
         RETURNING status, received_at",
    )
    .bind(id)
    .fetch_optional(&mut **tx)
    .await?;
    row.map(|r| Ok((r.try_get(0)?, r.try_get(1)?))).transpose()
}

/// Moves the request from the status it had (`before`, from [`status_before`]) to `to` in the
/// dashboard's daily counts (requests by current status, on the day received), in `tx`.
async fn count_status(tx: &mut Tx, before: Option<(String, i64)>, to: &str) -> Result<()> {
    let Some((from, received_at)) = before else {
        return Ok(());
    };
    let mut counts = CountChanges::new();
    counts.moved(Metric::Requests, received_at, &from, to);
    counts.write(tx).await
}

pub(super) async fn set_code(
    tx: &mut Tx,
    id: &str,
    hash: &str,
    expires: i64,
    now: i64,
) -> Result<()> {
    let before = status_before(tx, id).await?;
    sqlx::query(
        "UPDATE dsr_requests SET status = 'verifying', verification_code_hash = $2, \
         verification_expires_at = $3, verification_attempts = 0, updated_at = $4 WHERE id = $1",
    )
    .bind(id)
    .bind(hash)
    .bind(expires)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    count_status(tx, before, "verifying").await
}

/// Counts a wrong code; returns the attempts so far.
pub(super) async fn record_failed_attempt(tx: &mut Tx, id: &str, now: i64) -> Result<i64> {
    Ok(sqlx::query(
        "UPDATE dsr_requests SET verification_attempts = verification_attempts + 1, \
         updated_at = $2 WHERE id = $1 RETURNING verification_attempts",
    )
    .bind(id)
    .bind(now)
    .fetch_one(&mut **tx)
    .await?
    .try_get(0)?)
}

pub(super) async fn set_verified(tx: &mut Tx, id: &str, method: &str, now: i64) -> Result<()> {
    let before = status_before(tx, id).await?;
    sqlx::query(
        "UPDATE dsr_requests SET status = 'verified', verification_method = $2, verified_at = $3, \
         verification_code_hash = NULL, verification_expires_at = NULL, updated_at = $3 \
         WHERE id = $1",
    )
    .bind(id)
    .bind(method)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    count_status(tx, before, "verified").await
}

pub(super) async fn set_extension(
    tx: &mut Tx,
    id: &str,
    due: i64,
    reason: &str,
    now: i64,
) -> Result<()> {
    sqlx::query(
        "UPDATE dsr_requests SET extended_due_at = $2, extension_reason = $3, updated_at = $4 \
         WHERE id = $1",
    )
    .bind(id)
    .bind(due)
    .bind(reason)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

pub(super) async fn set_closed(
    tx: &mut Tx,
    id: &str,
    status: &str,
    reason: &str,
    now: i64,
) -> Result<()> {
    let before = status_before(tx, id).await?;
    sqlx::query(
        "UPDATE dsr_requests SET status = $2, rejected_reason = $3, completed_at = $4, \
         verification_code_hash = NULL, updated_at = $4 WHERE id = $1",
    )
    .bind(id)
    .bind(status)
    .bind(reason)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    count_status(tx, before, status).await
}

pub(super) async fn set_in_progress(
    tx: &mut Tx,
    id: &str,
    sealed: Option<(&[u8], i64)>,
    now: i64,
) -> Result<()> {
    let before = status_before(tx, id).await?;
    sqlx::query(
        "UPDATE dsr_requests SET status = 'in_progress', \
         subject_sealed = COALESCE($2, subject_sealed), \
         contact_key_version = COALESCE($4, contact_key_version), updated_at = $3 WHERE id = $1",
    )
    .bind(id)
    .bind(sealed.map(|s| s.0))
    .bind(now)
    .bind(sealed.map(|s| s.1))
    .execute(&mut **tx)
    .await?;
    count_status(tx, before, "in_progress").await
}

/// Completes a request and wipes its working copy of the subject's identifiers.
pub(super) async fn set_completed(tx: &mut Tx, id: &str, now: i64) -> Result<()> {
    let before = status_before(tx, id).await?;
    sqlx::query(
        "UPDATE dsr_requests SET status = 'completed', completed_at = $2, subject_sealed = NULL, \
         contact_key_version = NULL, subject_email_bidx = NULL, updated_at = $2 WHERE id = $1",
    )
    .bind(id)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    count_status(tx, before, "completed").await
}

pub(super) async fn user_by_username(store: &Store, name: &str) -> Result<Option<uuid::Uuid>> {
    let id: Option<String> = sqlx::query("SELECT id FROM users WHERE username = $1")
        .bind(name)
        .fetch_optional(store.pool())
        .await?
        .map(|r| r.try_get(0))
        .transpose()?;
    Ok(id.and_then(|s| uuid::Uuid::parse_str(&s).ok()))
}

// ---------------------------------------------------------------------------------------------
// Steps, artifacts, timeline

/// Replaces a request's plan with `names`, all pending.
pub(super) async fn insert_steps(tx: &mut Tx, id: &str, names: &[&str]) -> Result<()> {
    sqlx::query("DELETE FROM dsr_steps WHERE request_id = $1")
        .bind(id)
        .execute(&mut **tx)
        .await?;
    for (i, name) in names.iter().enumerate() {
        sqlx::query(
            "INSERT INTO dsr_steps (id, request_id, step_no, name, status) \
             VALUES ($1, $2, $3, $4, 'pending')",
        )
        .bind(uuid::Uuid::now_v7().to_string())
        .bind(id)
        .bind(i as i64 + 1)
        .bind(*name)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

pub(super) async fn steps_of(store: &Store, id: &str) -> Result<Vec<Step>> {
    let rows = sqlx::query(
        "SELECT step_no, name, status, rows_affected, started_at, finished_at, error, details \
         FROM dsr_steps WHERE request_id = $1 ORDER BY step_no",
    )
    .bind(id)
    .fetch_all(store.pool())
    .await?;
    map_rows(&rows, |r| {
        let details: Option<String> = r.try_get(7)?;
        Ok(Step {
            no: r.try_get(0)?,
            name: r.try_get(1)?,
            status: r.try_get(2)?,
            rows_affected: r.try_get(3)?,
            started_at: r.try_get::<Option<i64>, _>(4)?.map(Timestamp::from_micros),
            finished_at: r.try_get::<Option<i64>, _>(5)?.map(Timestamp::from_micros),
            error: r.try_get(6)?,
            details: details.and_then(|d| serde_json::from_str(&d).ok()),
        })
    })
}

pub(super) struct StepUpdate<'a> {
    pub status: &'a str,
    pub rows: i64,
    pub started_at: i64,
    pub finished_at: i64,
    pub error: Option<&'a str>,
    pub details: Option<String>,
}

pub(super) async fn update_step(tx: &mut Tx, id: &str, no: i64, u: &StepUpdate<'_>) -> Result<()> {
    sqlx::query(
        "UPDATE dsr_steps SET status = $3, rows_affected = $4, started_at = $5, finished_at = $6, \
         error = $7, details = $8 WHERE request_id = $1 AND step_no = $2",
    )
    .bind(id)
    .bind(no)
    .bind(u.status)
    .bind(u.rows)
    .bind(u.started_at)
    .bind(u.finished_at)
    .bind(u.error)
    .bind(u.details.as_deref())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

pub(super) async fn insert_artifact(
    tx: &mut Tx,
    id: &str,
    kind: &str,
    sha256: &str,
    size: i64,
    now: i64,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO dsr_artifacts (id, request_id, kind, sha256, size_bytes, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(uuid::Uuid::now_v7().to_string())
    .bind(id)
    .bind(kind)
    .bind(sha256)
    .bind(size)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

pub(super) async fn artifacts_of(store: &Store, id: &str) -> Result<Vec<Artifact>> {
    let rows = sqlx::query(
        "SELECT kind, sha256, size_bytes, created_at FROM dsr_artifacts WHERE request_id = $1 \
         ORDER BY created_at, kind",
    )
    .bind(id)
    .fetch_all(store.pool())
    .await?;
    map_rows(&rows, |r| {
        Ok(Artifact {
            kind: r.try_get(0)?,
            sha256: r.try_get(1)?,
            size_bytes: r.try_get(2)?,
            created_at: Timestamp::from_micros(r.try_get(3)?),
        })
    })
}

pub(super) async fn timeline_of(store: &Store, id: &str) -> Result<Vec<TimelineEntry>> {
    let rows = sqlx::query(
        "SELECT a.seq, a.at, COALESCE(u.username, a.actor), a.action, a.details \
         FROM audit_log a LEFT JOIN users u ON u.id = substr(a.actor, 6) AND a.actor LIKE 'user:%' \
         WHERE a.target = $1 ORDER BY a.seq",
    )
    .bind(id)
    .fetch_all(store.pool())
    .await?;
    map_rows(&rows, |r| {
        let details: String = r.try_get(4)?;
        Ok(TimelineEntry {
            seq: r.try_get(0)?,
            at: Timestamp::from_micros(r.try_get(1)?),
            actor: r.try_get(2)?,
            action: r.try_get(3)?,
            details: serde_json::from_str(&details).unwrap_or(serde_json::Value::Null),
        })
    })
}

// ---------------------------------------------------------------------------------------------
// The subject's records, for exports

pub(super) struct ProfileRow {
    pub username: String,
    pub display_name: String,
    pub kind: String,
    pub status: String,
    pub country: Option<String>,
    pub created_at: i64,
    pub last_login_at: Option<i64>,
    pub email_enc: Option<Vec<u8>>,
    pub phone_enc: Option<Vec<u8>>,
    pub mfa_enabled: bool,
}

pub(super) async fn profile(store: &Store, user: &str) -> Result<Option<ProfileRow>> {
    let row = sqlx::query(
        "SELECT username, display_name, kind, status, country, created_at, last_login_at, \
         email_enc, phone_enc, mfa_enabled FROM users WHERE id = $1",
    )
    .bind(user)
    .fetch_optional(store.pool())
    .await?;
    let Some(r) = row else { return Ok(None) };
    Ok(Some(ProfileRow {
        username: r.try_get(0)?,
        display_name: r.try_get(1)?,
        kind: r.try_get(2)?,
        status: r.try_get(3)?,
        country: r.try_get(4)?,
        created_at: r.try_get(5)?,
        last_login_at: r.try_get(6)?,
        email_enc: r.try_get(7)?,
        phone_enc: r.try_get(8)?,
        mfa_enabled: flag(&r, 9)?,
    }))
}

pub(super) async fn roles(store: &Store, user: &str) -> Result<Vec<String>> {
    strings(
        store,
        "SELECT role FROM user_roles WHERE user_id = $1 ORDER BY role",
        user,
    )
    .await
}

pub(super) async fn mfa_state(store: &Store, user: &str) -> Result<(Option<i64>, i64)> {
    let r = sqlx::query(
        "SELECT (SELECT confirmed_at FROM mfa_secrets WHERE user_id = $1), \
                (SELECT COUNT(*) FROM backup_codes WHERE user_id = $1 AND used_at IS NULL)",
    )
    .bind(user)
    .fetch_one(store.pool())
    .await?;
    Ok((r.try_get(0)?, r.try_get(1)?))
}

pub(super) struct CommentRow {
    pub id: String,
    pub event_id: String,
    pub event_title: String,
    pub parent_id: Option<String>,
    pub is_private: bool,
    pub body: Option<String>,
    pub envelope: Option<Vec<u8>>,
    pub created_at: i64,
    pub edited_at: Option<i64>,
    pub deleted_at: Option<i64>,
    pub deletion_reason: Option<String>,
}

pub(super) async fn comments_by(store: &Store, user: &str) -> Result<Vec<CommentRow>> {
    let mut rows = sqlx::query(
        "SELECT c.id, c.event_id, e.title, c.parent_id, c.is_private, c.body, c.body_envelope, \
         c.created_at, c.edited_at, c.deleted_at, c.deletion_reason \
         FROM comments c JOIN events e ON e.id = c.event_id \
         WHERE c.author_id = $1 ORDER BY c.created_at, c.id",
    )
    .bind(user)
    .fetch(store.pool());
    let mut out = Vec::new();
    while let Some(r) = rows.try_next().await? {
        out.push(CommentRow {
            id: r.try_get(0)?,
            event_id: r.try_get(1)?,
            event_title: r.try_get(2)?,
            parent_id: r.try_get(3)?,
            is_private: flag(&r, 4)?,
            body: r.try_get(5)?,
            envelope: r.try_get(6)?,
            created_at: r.try_get(7)?,
            edited_at: r.try_get(8)?,
            deleted_at: r.try_get(9)?,
            deletion_reason: r.try_get(10)?,
        });
    }
    Ok(out)
}

pub(super) struct ReceivedRow {
    pub comment_id: String,
    pub event_id: String,
    pub created_at: i64,
    pub envelope: Option<Vec<u8>>,
    pub key_fingerprint: String,
}

/// Private comments addressed to `user` by others (the author is not exported).
pub(super) async fn private_received(store: &Store, user: &str) -> Result<Vec<ReceivedRow>> {
    let rows = sqlx::query(
        "SELECT c.id, c.event_id, c.created_at, c.body_envelope, r.key_fingerprint \
         FROM comment_recipients r JOIN comments c ON c.id = r.comment_id \
         WHERE r.recipient_id = $1 AND (c.author_id IS NULL OR c.author_id <> $1) \
         ORDER BY c.created_at, c.id",
    )
    .bind(user)
    .fetch_all(store.pool())
    .await?;
    map_rows(&rows, |r| {
        Ok(ReceivedRow {
            comment_id: r.try_get(0)?,
            event_id: r.try_get(1)?,
            created_at: r.try_get(2)?,
            envelope: r.try_get(3)?,
            key_fingerprint: r.try_get(4)?,
        })
    })
}

pub(super) struct ReactionRow {
    pub id: String,
    pub comment_id: String,
    pub kind: String,
    pub created_at: i64,
}

pub(super) async fn reactions_by(store: &Store, user: &str) -> Result<Vec<ReactionRow>> {
    let mut rows = sqlx::query(
        "SELECT id, comment_id, kind, created_at FROM reactions WHERE user_id = $1 \
         ORDER BY created_at, id",
    )
    .bind(user)
    .fetch(store.pool());
    let mut out = Vec::new();
    while let Some(r) = rows.try_next().await? {
        out.push(ReactionRow {
            id: r.try_get(0)?,
            comment_id: r.try_get(1)?,
            kind: r.try_get(2)?,
            created_at: r.try_get(3)?,
        });
    }
    Ok(out)
}

pub(super) struct ActivityRow {
    pub id: String,
    pub kind: String,
    pub outcome: String,
    pub reason: Option<String>,
    pub occurred_at: i64,
    pub ip_enc: Option<Vec<u8>>,
    pub user_agent: Option<String>,
    pub country: Option<String>,
}

pub(super) async fn activity_of(store: &Store, user: &str) -> Result<Vec<ActivityRow>> {
    let mut rows = sqlx::query(
        "SELECT id, kind, outcome, reason, occurred_at, ip_enc, user_agent, country \
         FROM activity_log WHERE user_id = $1 ORDER BY occurred_at, id",
    )
    .bind(user)
    .fetch(store.pool());
    let mut out = Vec::new();
    while let Some(r) = rows.try_next().await? {
        out.push(ActivityRow {
            id: r.try_get(0)?,
            kind: r.try_get(1)?,
            outcome: r.try_get(2)?,
            reason: r.try_get(3)?,
            occurred_at: r.try_get(4)?,
            ip_enc: r.try_get(5)?,
            user_agent: r.try_get(6)?,
            country: r.try_get(7)?,
        });
    }
    Ok(out)
}

pub(super) struct SessionRow {
    pub id: String,
    pub client: String,
    pub user_agent: Option<String>,
    pub created_at: i64,
    pub last_seen_at: i64,
    pub expires_at: i64,
    pub revoked_at: Option<i64>,
    pub revoked_reason: Option<String>,
}

pub(super) async fn sessions_of(store: &Store, user: &str) -> Result<Vec<SessionRow>> {
    let rows = sqlx::query(
        "SELECT id, client, user_agent, created_at, last_seen_at, expires_at, revoked_at, \
         revoked_reason FROM sessions WHERE user_id = $1 ORDER BY created_at, id",
    )
    .bind(user)
    .fetch_all(store.pool())
    .await?;
    map_rows(&rows, |r| {
        Ok(SessionRow {
            id: r.try_get(0)?,
            client: r.try_get(1)?,
            user_agent: r.try_get(2)?,
            created_at: r.try_get(3)?,
            last_seen_at: r.try_get(4)?,
            expires_at: r.try_get(5)?,
            revoked_at: r.try_get(6)?,
            revoked_reason: r.try_get(7)?,
        })
    })
}

pub(super) struct AboutRow {
    pub id: String,
    pub kind: String,
    pub status: String,
    pub extra: Option<String>,
    pub created_at: i64,
    pub closed_at: Option<i64>,
}

fn about_rows(rows: &[AnyRow]) -> Result<Vec<AboutRow>> {
    map_rows(rows, |r| {
        Ok(AboutRow {
            id: r.try_get(0)?,
            kind: r.try_get(1)?,
            status: r.try_get(2)?,
            extra: r.try_get(3)?,
            created_at: r.try_get(4)?,
            closed_at: r.try_get(5)?,
        })
    })
}

/// Data-subject requests about `user` (kind, status, deadline).
pub(super) async fn requests_about(store: &Store, user: &str) -> Result<Vec<AboutRow>> {
    let rows = sqlx::query(
        "SELECT id, kind, status, NULL, received_at, completed_at FROM dsr_requests \
         WHERE subject_id = $1 ORDER BY received_at, id",
    )
    .bind(user)
    .fetch_all(store.pool())
    .await?;
    about_rows(&rows)
}

/// Incidents about `user` (type, status, severity; not the evidence, which names others).
pub(super) async fn incidents_about(store: &Store, user: &str) -> Result<Vec<AboutRow>> {
    let rows = sqlx::query(
        "SELECT id, kind, status, severity, created_at, resolved_at FROM incidents \
         WHERE user_id = $1 ORDER BY created_at, id",
    )
    .bind(user)
    .fetch_all(store.pool())
    .await?;
    about_rows(&rows)
}

/// Restrictions placed on `user` (kind, reason, expiry).
pub(super) async fn restrictions_of(store: &Store, user: &str) -> Result<Vec<AboutRow>> {
    let rows = sqlx::query(
        "SELECT id, kind, CASE WHEN lifted_at IS NULL THEN 'active' ELSE 'lifted' END, reason, \
         created_at, COALESCE(lifted_at, expires_at) FROM user_restrictions \
         WHERE user_id = $1 ORDER BY created_at, id",
    )
    .bind(user)
    .fetch_all(store.pool())
    .await?;
    about_rows(&rows)
}

// ---------------------------------------------------------------------------------------------
// Rectification

pub(super) async fn set_display_name(tx: &mut Tx, user: &str, name: &str, now: i64) -> Result<u64> {
    Ok(
        sqlx::query("UPDATE users SET display_name = $2, updated_at = $3 WHERE id = $1")
            .bind(user)
            .bind(name)
            .bind(now)
            .execute(&mut **tx)
            .await?
            .rows_affected(),
    )
}

pub(super) struct SealedEmail {
    pub enc: Vec<u8>,
    pub bidx: Vec<u8>,
    pub contact_version: i64,
    pub bidx_version: i64,
}

/// Replaces the email. Both sealed contact fields must share one `contact` version, so the phone
/// (re-sealed by the caller under the same version) comes along.
pub(super) async fn set_email(
    tx: &mut Tx,
    user: &str,
    e: &SealedEmail,
    phone: Option<&[u8]>,
    now: i64,
) -> Result<u64> {
    Ok(sqlx::query(
        "UPDATE users SET email_enc = $2, email_bidx = $3, contact_key_version = $4, pii_key_version = NULL, \
         bidx_key_version = $5, phone_enc = $6, updated_at = $7 WHERE id = $1",
    )
    .bind(user)
    .bind(e.enc.as_slice())
    .bind(e.bidx.as_slice())
    .bind(e.contact_version)
    .bind(e.bidx_version)
    .bind(phone)
    .bind(now)
    .execute(&mut **tx)
    .await?
    .rows_affected())
}

pub(super) async fn set_phone(
    tx: &mut Tx,
    user: &str,
    phone: &[u8],
    email: Option<&[u8]>,
    contact_version: i64,
    now: i64,
) -> Result<u64> {
    Ok(sqlx::query(
        "UPDATE users SET phone_enc = $2, email_enc = $3, contact_key_version = $4, pii_key_version = NULL, updated_at = $5 \
         WHERE id = $1",
    )
    .bind(user)
    .bind(phone)
    .bind(email)
    .bind(contact_version)
    .bind(now)
    .execute(&mut **tx)
    .await?
    .rows_affected())
}

pub(super) async fn set_completed_plain(tx: &mut Tx, id: &str, now: i64) -> Result<()> {
    set_completed(tx, id, now).await
}

// ---------------------------------------------------------------------------------------------
// Erasure

async fn exec(tx: &mut Tx, sql: &str, user: &str) -> Result<u64> {
    Ok(sqlx::query(sql)
        .bind(user)
        .execute(&mut **tx)
        .await?
        .rows_affected())
}

/// Ends every session of `user` and removes them with their refresh tokens. Access tokens stop
/// verifying at once: each verification requires a live session.
pub(super) async fn erase_sessions(tx: &mut Tx, user: &str) -> Result<u64> {
    let refresh = exec(
        tx,
        "DELETE FROM refresh_tokens WHERE session_id IN (SELECT id FROM sessions WHERE user_id = $1)",
        user,
    )
    .await?;
    let sessions = exec(tx, "DELETE FROM sessions WHERE user_id = $1", user).await?;
    Ok(refresh + sessions)
}

/// Credentials, MFA secret, backup codes, pending sign-in challenges, key pairs (and so their
/// grants), roles.
pub(super) async fn erase_auth(tx: &mut Tx, user: &str) -> Result<u64> {
    let mut n = 0;
    for sql in [
        "DELETE FROM credentials WHERE user_id = $1",
        "DELETE FROM mfa_secrets WHERE user_id = $1",
        "DELETE FROM backup_codes WHERE user_id = $1",
        "DELETE FROM login_challenges WHERE user_id = $1",
        "DELETE FROM user_keys WHERE user_id = $1",
        "DELETE FROM user_roles WHERE user_id = $1",
        "DELETE FROM revoked_tokens WHERE user_id = $1",
    ] {
        n += exec(tx, sql, user).await?;
    }
    Ok(n)
}

pub(super) async fn erase_reactions(tx: &mut Tx, user: &str) -> Result<u64> {
    exec(tx, "DELETE FROM reactions WHERE user_id = $1", user).await
}

pub(super) async fn erase_activity(tx: &mut Tx, user: &str) -> Result<u64> {
    exec(tx, "DELETE FROM activity_log WHERE user_id = $1", user).await
}

pub(super) async fn count_comments_by(tx: &mut Tx, user: &str) -> Result<i64> {
    Ok(
        sqlx::query("SELECT COUNT(*) FROM comments WHERE author_id = $1")
            .bind(user)
            .fetch_one(&mut **tx)
            .await?
            .try_get(0)?,
    )
}

/// A pseudonymous account that keeps the community's thread readable: random name, no
/// personal data, status `deleted`, no link to the account it replaces.
pub(super) async fn insert_pseudonym(
    tx: &mut Tx,
    id: &str,
    username: &str,
    display: &str,
    now: i64,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO users (id, username, display_name, kind, status, created_at, updated_at, \
         deleted_at) VALUES ($1, $2, $3, 'platform', 'deleted', $4, $4, $4)",
    )
    .bind(id)
    .bind(username)
    .bind(display)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

pub(super) async fn reassign_comments(tx: &mut Tx, user: &str, to: &str) -> Result<u64> {
    Ok(
        sqlx::query("UPDATE comments SET author_id = $2 WHERE author_id = $1")
            .bind(user)
            .bind(to)
            .execute(&mut **tx)
            .await?
            .rows_affected(),
    )
}

/// Removes the content of `user`'s comments, keeping each as a deleted placeholder so replies
/// still thread.
pub(super) async fn wipe_comments(tx: &mut Tx, user: &str, now: i64) -> Result<u64> {
    Ok(sqlx::query(
        "UPDATE comments SET author_id = NULL, body = NULL, body_envelope = NULL, \
         content_hash = NULL, hash_key_version = NULL, deleted_at = COALESCE(deleted_at, $2), \
         deleted_by = NULL, deletion_reason = 'erasure' WHERE author_id = $1",
    )
    .bind(user)
    .bind(now)
    .execute(&mut **tx)
    .await?
    .rows_affected())
}

/// Drops `user` as a recipient of private comments; a comment nobody can open any more loses
/// its envelope. Returns (recipient rows removed, envelopes wiped).
pub(super) async fn erase_recipient_entries(
    tx: &mut Tx,
    user: &str,
    now: i64,
) -> Result<(u64, u64)> {
    let removed = exec(
        tx,
        "DELETE FROM comment_recipients WHERE recipient_id = $1",
        user,
    )
    .await?;
    let wiped = sqlx::query(
        "UPDATE comments SET body_envelope = NULL, content_hash = NULL, hash_key_version = NULL, \
         deleted_at = COALESCE(deleted_at, $1), deletion_reason = 'no readers left' \
         WHERE body_envelope IS NOT NULL \
           AND NOT EXISTS (SELECT 1 FROM comment_recipients r WHERE r.comment_id = comments.id)",
    )
    .bind(now)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    Ok((removed, wiped))
}

/// Records about `user` that outlive the account lose the link: restrictions and notifications
/// go; closed incidents keep their facts without the account; other requests about the subject
/// forget the email's blind index.
pub(super) async fn detach_records(tx: &mut Tx, user: &str) -> Result<u64> {
    let mut n = 0;
    for sql in [
        "DELETE FROM user_restrictions WHERE user_id = $1",
        "DELETE FROM notifications WHERE recipient_id = $1",
        "UPDATE incidents SET user_id = NULL WHERE user_id = $1",
        "UPDATE incidents SET assignee_id = NULL WHERE assignee_id = $1",
        "UPDATE dsr_requests SET subject_email_bidx = NULL WHERE subject_id = $1 \
         AND subject_email_bidx IS NOT NULL",
        "DELETE FROM legal_holds WHERE target_kind = 'user' AND target_id = $1 \
         AND released_at IS NOT NULL",
    ] {
        n += exec(tx, sql, user).await?;
    }
    Ok(n)
}

pub(super) async fn delete_user(tx: &mut Tx, user: &str) -> Result<u64> {
    exec(tx, "DELETE FROM users WHERE id = $1", user).await
}

// ---------------------------------------------------------------------------------------------
// Holds

/// Unreleased holds on `user` and open incidents about them: (kind, id, reason).
pub(super) async fn holds_on_user(
    store: &Store,
    user: &str,
) -> Result<Vec<(String, String, String)>> {
    let rows = sqlx::query(
        "SELECT 'legal_hold', id, reason FROM legal_holds \
         WHERE target_kind = 'user' AND target_id = $1 AND released_at IS NULL \
         UNION ALL \
         SELECT 'open_incident', id, kind FROM incidents \
         WHERE user_id = $1 AND status IN ('open', 'investigating') \
         UNION ALL \
         SELECT 'incident_hold', h.id, h.reason FROM legal_holds h JOIN incidents i ON i.id = h.target_id \
         WHERE h.target_kind = 'incident' AND h.released_at IS NULL AND i.user_id = $1",
    )
    .bind(user)
    .fetch_all(store.pool())
    .await?;
    map_rows(&rows, |r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))
}

pub(super) struct HoldRow {
    pub id: String,
    pub target_kind: String,
    pub target_id: String,
    pub target_name: Option<String>,
    pub reason: String,
    pub created_by: String,
    pub created_at: i64,
    pub released_at: Option<i64>,
    pub released_by: Option<String>,
}

pub(super) async fn insert_hold(
    tx: &mut Tx,
    id: &str,
    kind: &str,
    target: &str,
    reason: &str,
    by: &str,
    now: i64,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO legal_holds (id, target_kind, target_id, reason, created_by, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(id)
    .bind(kind)
    .bind(target)
    .bind(reason)
    .bind(by)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

pub(super) async fn release_hold(tx: &mut Tx, id: &str, by: &str, now: i64) -> Result<u64> {
    Ok(sqlx::query(
        "UPDATE legal_holds SET released_at = $2, released_by = $3 \
         WHERE id = $1 AND released_at IS NULL",
    )
    .bind(id)
    .bind(now)
    .bind(by)
    .execute(&mut **tx)
    .await?
    .rows_affected())
}

pub(super) async fn incident_exists(store: &Store, id: &str) -> Result<bool> {
    Ok(sqlx::query("SELECT 1 FROM incidents WHERE id = $1")
        .bind(id)
        .fetch_optional(store.pool())
        .await?
        .is_some())
}

pub(super) async fn list_holds(store: &Store, include_released: bool) -> Result<Vec<HoldRow>> {
    let rows = sqlx::query(
        "SELECT h.id, h.target_kind, h.target_id, u.username, h.reason, \
         COALESCE(c.username, h.created_by), h.created_at, h.released_at, \
         COALESCE(r.username, h.released_by) \
         FROM legal_holds h \
         LEFT JOIN users u ON h.target_kind = 'user' AND u.id = h.target_id \
         LEFT JOIN users c ON c.id = h.created_by \
         LEFT JOIN users r ON r.id = h.released_by \
         WHERE $1 OR h.released_at IS NULL ORDER BY h.created_at DESC, h.id LIMIT 1000",
    )
    .bind(include_released)
    .fetch_all(store.pool())
    .await?;
    map_rows(&rows, |r| {
        Ok(HoldRow {
            id: r.try_get(0)?,
            target_kind: r.try_get(1)?,
            target_id: r.try_get(2)?,
            target_name: r.try_get(3)?,
            reason: r.try_get(4)?,
            created_by: r.try_get(5)?,
            created_at: r.try_get(6)?,
            released_at: r.try_get(7)?,
            released_by: r.try_get(8)?,
        })
    })
}

// ---------------------------------------------------------------------------------------------
// Residual scan

/// Every text and byte column of every table: (table, column, is_bytes).
pub(super) async fn scannable_columns(store: &Store) -> Result<Vec<(String, String, bool)>> {
    let sql = match store.backend() {
        Backend::Sqlite => {
            "SELECT m.name, p.name, upper(p.type) FROM sqlite_master m \
             JOIN pragma_table_info(m.name) p \
             WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite\\_%' ESCAPE '\\' \
             ORDER BY m.name, p.cid"
        }
        Backend::Postgres => {
            "SELECT table_name::text, column_name::text, upper(data_type::text) \
             FROM information_schema.columns \
             WHERE table_schema = current_schema() \
             ORDER BY table_name, ordinal_position"
        }
    };
    let rows = sqlx::query(sql).fetch_all(store.pool()).await?;
    let mut out = Vec::new();
    for r in &rows {
        let table: String = r.try_get(0)?;
        let column: String = r.try_get(1)?;
        let ty: String = r.try_get(2)?;
        let bytes = ty.contains("BLOB") || ty.contains("BYTEA");
        let text = ty.contains("TEXT") || ty.contains("CHAR") || ty.contains("JSON");
        if bytes || text {
            out.push((table, column, bytes));
        }
    }
    Ok(out)
}

/// Rows of `table` where any text column matches any `LIKE` pattern or any byte column contains
/// any needle. Returns, per matching row, the text values and a flag per byte column.
pub(super) async fn scan_table(
    store: &Store,
    table: &str,
    text_cols: &[String],
    byte_cols: &[String],
    patterns: &[String],
    needles: &[Vec<u8>],
) -> Result<Vec<(Vec<Option<String>>, Vec<bool>)>> {
    if (text_cols.is_empty() || patterns.is_empty()) && (byte_cols.is_empty() || needles.is_empty())
    {
        return Ok(Vec::new());
    }
    let backend = store.backend();
    let q = |c: &str| format!("\"{}\"", c.replace('"', "\"\""));
    let mut n = 0;
    let mut next = || {
        n += 1;
        format!("${n}")
    };
    let pattern_params: Vec<String> = patterns.iter().map(|_| next()).collect();
    let needle_params: Vec<String> = needles.iter().map(|_| next()).collect();
    let byte_cond = |col: &str| -> String {
        needle_params
            .iter()
            .map(|p| match backend {
                Backend::Sqlite => format!("instr({}, {p}) > 0", q(col)),
                Backend::Postgres => format!("position({p} in {}) > 0", q(col)),
            })
            .collect::<Vec<_>>()
            .join(" OR ")
    };
    // One lower-cased concatenation of the row's text columns per pattern: a cheap pre-filter
    // (the caller confirms each column on its own).
    let mut conds = Vec::new();
    if !text_cols.is_empty() {
        let joined = text_cols
            .iter()
            .map(|c| format!("COALESCE({}, '')", q(c)))
            .collect::<Vec<_>>()
            .join(" || ' ' || ");
        for p in &pattern_params {
            conds.push(format!("lower({joined}) LIKE {p} ESCAPE '\\'"));
        }
    }
    let mut flags = Vec::new();
    for c in byte_cols {
        if needles.is_empty() {
            flags.push("FALSE".to_owned());
            continue;
        }
        let cond = byte_cond(c);
        conds.push(format!("({cond})"));
        flags.push(format!(
            "CAST(CASE WHEN {cond} THEN 1 ELSE 0 END AS BIGINT)"
        ));
    }
    let mut select: Vec<String> = text_cols.iter().map(|c| q(c)).collect();
    select.extend(flags.iter().map(|f| {
        if f == "FALSE" {
            "0".to_owned()
        } else {
            f.clone()
        }
    }));
    if select.is_empty() || conds.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT {} FROM {} WHERE {}",
        select.join(", "),
        q(table),
        conds.join(" OR ")
    );
    let mut query = sqlx::query::<Any>(&sql);
    for p in patterns {
        query = query.bind(p.as_str());
    }
    for nd in needles {
        query = query.bind(nd.as_slice());
    }
    let rows = query.fetch_all(store.pool()).await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in &rows {
        let mut texts = Vec::with_capacity(text_cols.len());
        for i in 0..text_cols.len() {
            texts.push(r.try_get::<Option<String>, _>(i)?);
        }
        let mut hits = Vec::with_capacity(byte_cols.len());
        for i in 0..byte_cols.len() {
            let v: i64 = r
                .try_get::<Option<i64>, _>(text_cols.len() + i)?
                .unwrap_or(0);
            hits.push(v != 0);
        }
        out.push((texts, hits));
    }
    Ok(out)
}

/// Streams `(id, sealed)` of a sealed column, calling `each` per row.
pub(super) async fn for_each_sealed(
    store: &Store,
    table: &str,
    id_col: &str,
    col: &str,
    mut each: impl FnMut(String, Vec<u8>),
) -> Result<u64> {
    let sql = format!("SELECT {id_col}, {col} FROM {table} WHERE {col} IS NOT NULL");
    let mut rows = sqlx::query(&sql).fetch(store.pool());
    let mut n = 0;
    while let Some(r) = rows.try_next().await? {
        each(r.try_get(0)?, r.try_get(1)?);
        n += 1;
    }
    Ok(n)
}

/// Rows of `table` whose `col` is one of `values`.
pub(super) async fn count_equal(
    store: &Store,
    table: &str,
    col: &str,
    values: &[Vec<u8>],
) -> Result<i64> {
    let mut total = 0;
    for v in values {
        let n: i64 = sqlx::query(&format!("SELECT COUNT(*) FROM {table} WHERE {col} = $1"))
            .bind(v.as_slice())
            .fetch_one(store.pool())
            .await?
            .try_get(0)?;
        total += n;
    }
    Ok(total)
}

async fn strings(store: &Store, sql: &str, arg: &str) -> Result<Vec<String>> {
    let rows = sqlx::query(sql).bind(arg).fetch_all(store.pool()).await?;
    map_rows(&rows, |r| r.try_get(0))
}

/// Whether the account has an address on file.
pub(super) async fn has_email(store: &Store, user: &str) -> Result<bool> {
    let r = sqlx::query("SELECT email_enc IS NOT NULL FROM users WHERE id = $1")
        .bind(user)
        .fetch_optional(store.pool())
        .await?;
    Ok(match r {
        Some(r) => flag(&r, 0)?,
        None => false,
    })
}
