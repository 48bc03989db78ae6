//! Data-subject requests (GDPR) and legal holds: the inbox, intake with a one-time
//! verification code, deadlines, the run with live step progress (`dsr-progress`), the erasure
//! receipt, and holds on accounts.

use serde::{Deserialize, Serialize};
use tauri::{AppHandle, Emitter, State};
use ts_rs::TS;
use vigil::audit::AuditAction;
use vigil::auth::platform_tokens::PlatformTokenKeys;
use vigil::keys::KeyError;
use vigil::privacy::{
    self, holds, Correction, ErasureReceipt, ExportedFile, Flow, Request, RequestDetail,
    RequestFilter, RequestId, RequestKind, RequestStatus, RunOptions, RunOutcome, ScanHit,
    ScanReport, SubjectRef,
};
use vigil::store::Timestamp;

use super::rfc3339;
use crate::error::{CommandError, CommandResult, ErrorCode};
use crate::state::{AppState, RunKey};

/// A data-subject request as the inbox and the detail show it.
#[derive(Debug, Serialize, TS)]
#[ts(export)]
pub struct DsrView {
    /// Id.
    pub id: String,
    /// The right exercised.
    #[ts(type = "'access' | 'portability' | 'erasure' | 'rectification'")]
    pub kind: String,
    /// Where it is in its lifecycle.
    #[ts(
        type = "'received' | 'verifying' | 'verified' | 'in_progress' | 'completed' | 'rejected' | 'withdrawn'"
    )]
    pub status: String,
    /// The subject's account id, while the account exists.
    pub subject_id: Option<String>,
    /// The subject's username, while the account exists.
    pub subject_username: Option<String>,
    /// Received (RFC 3339).
    pub received_at: String,
    /// The deadline in force (RFC 3339).
    pub due_at: String,
    /// The original deadline, one calendar month after receipt (RFC 3339).
    pub original_due_at: String,
    /// Why the deadline was extended, if it was.
    pub extension_reason: Option<String>,
    /// Open and past its deadline.
    pub overdue: bool,
    /// Open and due within a week.
    pub due_soon: bool,
    /// How identity was verified: `code` or `token`.
    #[ts(type = "'code' | 'token' | null")]
    pub verification_method: Option<String>,
    /// When the current code expires (RFC 3339).
    pub code_expires_at: Option<String>,
    /// Wrong codes left before verification locks.
    #[ts(type = "number")]
    pub code_attempts_left: i64,
    /// Too many wrong codes: a new code must be issued.
    pub verification_locked: bool,
    /// Verified (RFC 3339).
    pub verified_at: Option<String>,
    /// Completed (RFC 3339).
    pub completed_at: Option<String>,
    /// Why it was rejected or withdrawn.
    pub closing_reason: Option<String>,
    /// The officer who recorded it.
    pub created_by: String,
    /// Last change (RFC 3339).
    pub updated_at: String,
    /// How the code reaches the subject: by `mail`, or by hand (`manual`, then another
    /// officer enters it).
    #[ts(type = "'mail' | 'manual'")]
    pub code_delivery: String,
}

fn enum_name<T: Serialize>(value: &T) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

impl From<Request> for DsrView {
    fn from(r: Request) -> Self {
        Self {
            id: r.id.to_string(),
            kind: r.kind.as_str().to_owned(),
            status: r.status.as_str().to_owned(),
            subject_id: r.subject_id.map(|u| u.to_string()),
            subject_username: r.subject_username,
            received_at: rfc3339(r.received_at),
            due_at: rfc3339(r.due_at),
            original_due_at: rfc3339(r.original_due_at),
            extension_reason: r.extension_reason,
            overdue: r.overdue,
            due_soon: r.due_soon,
            verification_method: r.verification_method.as_ref().map(enum_name),
            code_expires_at: r.code_expires_at.map(rfc3339),
            code_attempts_left: r.code_attempts_left,
            verification_locked: r.verification_locked,
            verified_at: r.verified_at.map(rfc3339),
            completed_at: r.completed_at.map(rfc3339),
            closing_reason: r.closing_reason,
            created_by: r.created_by,
            updated_at: rfc3339(r.updated_at),
            code_delivery: r.code_delivery.as_str().to_owned(),
        }
    }
}

/// One step of a request's run.
#[derive(Debug, Serialize, TS)]
#[ts(export)]
pub struct DsrStepView {
    /// Position, from 1.
    #[ts(type = "number")]
    pub no: i64,
    /// Name, such as `delete_activity`.
    pub name: String,
    /// `pending`, `running`, `done`, `failed` or `skipped`.
    #[ts(type = "'pending' | 'running' | 'done' | 'failed' | 'skipped'")]
    pub status: String,
    /// Rows the step changed.
    #[ts(type = "number")]
    pub rows_affected: i64,
    /// Started (RFC 3339).
    pub started_at: Option<String>,
    /// Finished (RFC 3339).
    pub finished_at: Option<String>,
    /// Why it failed.
    pub error: Option<String>,
}

/// A file a run produced (the file itself is where the officer saved it).
#[derive(Debug, Serialize, TS)]
#[ts(export)]
pub struct DsrArtifactView {
    /// `access_json`, `access_html` or `portability_zip`.
    pub kind: String,
    /// SHA-256, hex.
    pub sha256: String,
    /// Size in bytes.
    #[ts(type = "number")]
    pub size_bytes: i64,
    /// Written (RFC 3339).
    pub created_at: String,
}

/// One audit entry about a request.
#[derive(Debug, Serialize, TS)]
#[ts(export)]
pub struct DsrTimelineEntry {
    /// Audit sequence number.
    #[ts(type = "number")]
    pub seq: i64,
    /// When (RFC 3339).
    pub at: String,
    /// Who.
    pub actor: String,
    /// The audit action, such as `dsr.verified`.
    pub action: String,
    /// Its details, as JSON text.
    pub details: String,
}

/// Where the residual scan found an identifier.
#[derive(Debug, Serialize, TS)]
#[ts(export)]
pub struct ScanHitView {
    /// `table.column`, or `file:<name>`.
    pub place: String,
    /// `username`, `display_name`, `email` or `phone`.
    pub identifier: String,
    /// Rows (or occurrences in a file).
    #[ts(type = "number")]
    pub count: u64,
}

impl From<ScanHit> for ScanHitView {
    fn from(h: ScanHit) -> Self {
        Self {
            place: h.place,
            identifier: h.identifier,
            count: h.count,
        }
    }
}

/// What the residual scan looked at and found (never the identifiers themselves).
#[derive(Debug, Serialize, TS)]
#[ts(export)]
pub struct ScanReportView {
    /// Tables scanned.
    #[ts(type = "number")]
    pub tables: u64,
    /// Columns scanned.
    #[ts(type = "number")]
    pub columns: u64,
    /// Sealed values opened to compare.
    #[ts(type = "number")]
    pub values_opened: u64,
    /// Bytes of the SQLite file scanned, on SQLite.
    #[ts(type = "number | null")]
    pub file_bytes: Option<u64>,
    /// Which identifiers were searched for (`username`, `email`…).
    pub identifiers: Vec<String>,
    /// The subject's identifiers found: any hit fails the erasure.
    pub hits: Vec<ScanHitView>,
    /// Values shared with other accounts (not the subject's).
    pub shared: Vec<ScanHitView>,
}

impl From<ScanReport> for ScanReportView {
    fn from(s: ScanReport) -> Self {
        Self {
            tables: s.tables,
            columns: s.columns,
            values_opened: s.values_opened,
            file_bytes: s.file_bytes,
            identifiers: s.identifiers,
            hits: s.hits.into_iter().map(Into::into).collect(),
            shared: s.shared.into_iter().map(Into::into).collect(),
        }
    }
}

/// One step of an erasure receipt.
#[derive(Debug, Serialize, TS)]
#[ts(export)]
pub struct ReceiptStepView {
    /// The step.
    pub name: String,
    /// Rows it changed.
    #[ts(type = "number")]
    pub rows: i64,
}

/// The proof of an erasure, as written into the audit chain.
#[derive(Debug, Serialize, TS)]
#[ts(export)]
pub struct ErasureReceiptView {
    /// The request.
    pub request_id: String,
    /// Completed (RFC 3339).
    pub completed_at: String,
    /// `anonymise` or `delete`.
    #[ts(type = "'anonymise' | 'delete'")]
    pub comments: String,
    /// Every step with its row count.
    pub steps: Vec<ReceiptStepView>,
    /// The residual scan.
    pub scan: ScanReportView,
    /// The sequence number of the receipt's audit entry, once found.
    #[ts(type = "number | null")]
    pub audit_seq: Option<i64>,
}

impl ErasureReceiptView {
    fn new(r: ErasureReceipt, audit_seq: Option<i64>) -> Self {
        Self {
            request_id: r.request_id,
            completed_at: r.completed_at,
            comments: enum_name(&r.comments),
            steps: r
                .steps
                .into_iter()
                .map(|s| ReceiptStepView {
                    name: s.name,
                    rows: s.rows,
                })
                .collect(),
            scan: r.scan.into(),
            audit_seq,
        }
    }
}

/// A request with its steps, files, timeline and receipt.
#[derive(Debug, Serialize, TS)]
#[ts(export)]
pub struct DsrDetailView {
    /// The request.
    pub request: DsrView,
    /// Its run's steps, in order (none before it first runs).
    pub steps: Vec<DsrStepView>,
    /// Files its run produced.
    pub artifacts: Vec<DsrArtifactView>,
    /// Its audit entries, oldest first.
    pub timeline: Vec<DsrTimelineEntry>,
    /// The erasure receipt, once the erasure completed.
    pub receipt: Option<ErasureReceiptView>,
    /// The outbox message carrying the current code, for a mailed code: its delivery state.
    pub code_message: Option<super::outbox::OutboxMessageView>,
}

fn receipt_seq(timeline: &[DsrTimelineEntry]) -> Option<i64> {
    timeline
        .iter()
        .find(|t| t.action == AuditAction::DsrErasureReceipt.as_str())
        .map(|t| t.seq)
}

impl From<RequestDetail> for DsrDetailView {
    fn from(d: RequestDetail) -> Self {
        let timeline: Vec<DsrTimelineEntry> = d
            .timeline
            .into_iter()
            .map(|t| DsrTimelineEntry {
                seq: t.seq,
                at: rfc3339(t.at),
                actor: t.actor,
                action: t.action,
                details: t.details.to_string(),
            })
            .collect();
        let seq = receipt_seq(&timeline);
        Self {
            request: d.request.into(),
            steps: d
                .steps
                .into_iter()
                .map(|s| DsrStepView {
                    no: s.no,
                    name: s.name,
                    status: s.status,
                    rows_affected: s.rows_affected,
                    started_at: s.started_at.map(rfc3339),
                    finished_at: s.finished_at.map(rfc3339),
                    error: s.error,
                })
                .collect(),
            artifacts: d
                .artifacts
                .into_iter()
                .map(|a| DsrArtifactView {
                    kind: a.kind,
                    sha256: a.sha256,
                    size_bytes: a.size_bytes,
                    created_at: rfc3339(a.created_at),
                })
                .collect(),
            receipt: d.receipt.map(|r| ErasureReceiptView::new(r, seq)),
            code_message: d.code_message.map(Into::into),
            timeline,
        }
    }
}

fn request_id(id: &str) -> CommandResult<RequestId> {
    RequestId::parse(id).ok_or_else(|| CommandError::invalid("not a request id"))
}

fn blank(s: &Option<String>) -> Option<&str> {
    s.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

fn parse_kind(kind: &str) -> CommandResult<RequestKind> {
    RequestKind::parse(kind.trim())
        .ok_or_else(|| CommandError::invalid(format!("unknown request kind {kind:?}")))
}

/// Filters of the inbox.
#[derive(Debug, Deserialize, TS)]
#[ts(export)]
pub struct DsrListQuery {
    /// A status, or none for all.
    pub status: Option<String>,
    /// A kind, or none for all.
    pub kind: Option<String>,
    /// Only open requests past their deadline.
    pub overdue: bool,
    /// Only open requests due within a week (overdue ones included).
    pub due_soon: bool,
}

fn parse_filter(q: &DsrListQuery) -> CommandResult<RequestFilter> {
    Ok(RequestFilter {
        status: blank(&q.status)
            .map(|s| {
                RequestStatus::parse(s)
                    .ok_or_else(|| CommandError::invalid(format!("unknown status {s:?}")))
            })
            .transpose()?,
        kind: blank(&q.kind).map(parse_kind).transpose()?,
        overdue: q.overdue,
        due_soon: q.due_soon,
    })
}

/// The inbox: requests matching the filters, the most urgent first.
#[tauri::command]
pub async fn dsr_list(
    state: State<'_, AppState>,
    req: DsrListQuery,
) -> CommandResult<Vec<DsrView>> {
    let (db, _, actor) = state.authorised().await?;
    let filter = parse_filter(&req)?;
    let rows = privacy::list(&db.store, &actor, &filter).await?;
    Ok(rows.into_iter().map(DsrView::from).collect())
}

/// A new request.
#[derive(Debug, Deserialize, TS)]
#[ts(export)]
pub struct DsrCreateRequest {
    /// `access`, `portability`, `erasure` or `rectification`.
    pub kind: String,
    /// The subject: an email address if it contains `@`, else a username.
    pub subject: String,
    /// The day it was received (`YYYY-MM-DD`), for a request that arrived earlier, such as by
    /// post; none for today.
    pub received_on: Option<String>,
    /// How the code reaches the subject: `mail` (the default; never shown here) or `manual`
    /// (a paper request from a subject with no usable address: shown once, and another
    /// officer must enter it).
    #[ts(type = "'mail' | 'manual' | null")]
    pub delivery: Option<String>,
}

/// A recorded request; its code goes to the subject's registered address by mail.
#[derive(Serialize, TS)]
#[ts(export)]
pub struct DsrCreated {
    /// The request.
    pub request: DsrView,
    /// The one-time verification code when it is delivered by hand (then another officer
    /// enters it); none when it was queued by mail. Only its hash is kept.
    pub verification_code: Option<String>,
}

/// A new verification code: queued by mail, or shown once when delivered by hand.
#[derive(Serialize, TS)]
#[ts(export)]
pub struct DsrCode {
    /// The request.
    pub request: DsrView,
    /// The new one-time code, for a request whose code is delivered by hand.
    pub verification_code: Option<String>,
}

fn subject_of(text: &str) -> CommandResult<SubjectRef> {
    let text = text.trim();
    if text.is_empty() {
        return Err(CommandError::invalid(
            "give the subject's username or email address",
        ));
    }
    Ok(if text.contains('@') {
        SubjectRef::Email(text.to_owned())
    } else {
        SubjectRef::Username(text.to_owned())
    })
}

const DAY_MICROS: i64 = 86_400 * 1_000_000;

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's `days_from_civil`).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        _ => 28,
    }
}

/// When a request received on `date` (`YYYY-MM-DD`, UTC) counts as received, seen at `now`:
/// today is now; an earlier day is its noon UTC (the same calendar day in every time zone a
/// team is likely to be in). A future or malformed date is refused.
fn received_at(date: &str, now: Timestamp) -> CommandResult<Timestamp> {
    let bad = || CommandError::invalid("the received-on date must be written YYYY-MM-DD");
    let parts: Vec<&str> = date.trim().split('-').collect();
    let [y, m, d] = parts[..] else {
        return Err(bad());
    };
    if y.len() != 4 || m.len() != 2 || d.len() != 2 {
        return Err(bad());
    }
    let (y, m, d): (i64, i64, i64) = (
        y.parse().map_err(|_| bad())?,
        m.parse().map_err(|_| bad())?,
        d.parse().map_err(|_| bad())?,
    );
    if !(1..=12).contains(&m) || d < 1 || d > days_in_month(y, m) {
        return Err(CommandError::invalid(format!(
            "{date} is not a date on the calendar"
        )));
    }
    let day = days_from_civil(y, m, d);
    let today = now.micros().div_euclid(DAY_MICROS);
    if day > today {
        return Err(CommandError::invalid(
            "the received-on date is in the future",
        ));
    }
    if day == today {
        return Ok(now);
    }
    Ok(Timestamp::from_micros(day * DAY_MICROS + DAY_MICROS / 2))
}

/// Records a request (received today, or on an earlier day) and issues its verification code.
#[tauri::command]
pub async fn dsr_create(
    state: State<'_, AppState>,
    req: DsrCreateRequest,
) -> CommandResult<DsrCreated> {
    let (db, session, actor) = state.authorised().await?;
    let kind = parse_kind(&req.kind)?;
    let subject = subject_of(&req.subject)?;
    let now = Timestamp::now();
    let at = match blank(&req.received_on) {
        Some(date) => received_at(date, now)?,
        None => now,
    };
    let delivery = match blank(&req.delivery) {
        None => privacy::CodeDelivery::Mail,
        Some(d) => privacy::CodeDelivery::parse(d)
            .ok_or_else(|| CommandError::invalid("delivery must be mail or manual"))?,
    };
    let created = privacy::create_at(
        &db.store,
        session.ring.as_ref(),
        &actor,
        kind,
        &subject,
        delivery,
        at,
    )
    .await?;
    if created.verification_code.is_none() {
        // A mailed code goes out on the background round: run it now, not within the minute.
        state.watch.wake();
    }
    Ok(DsrCreated {
        request: created.request.into(),
        verification_code: created.verification_code.map(|c| c.to_string()),
    })
}

/// Names a request.
#[derive(Debug, Deserialize, TS)]
#[ts(export)]
pub struct DsrRef {
    /// Request id.
    pub id: String,
}

/// A request's detail: steps, files, timeline, receipt.
#[tauri::command]
pub async fn dsr_show(state: State<'_, AppState>, req: DsrRef) -> CommandResult<DsrDetailView> {
    let (db, _, actor) = state.authorised().await?;
    let detail = privacy::show(&db.store, &actor, request_id(&req.id)?).await?;
    Ok(detail.into())
}

/// A code the subject gave.
#[derive(Deserialize, TS)]
#[ts(export)]
pub struct DsrVerifyCode {
    /// Request id.
    pub id: String,
    /// The code as typed.
    pub code: String,
}

/// Checks the subject's verification code; a wrong one uses up an attempt.
#[tauri::command]
pub async fn dsr_verify_code(
    state: State<'_, AppState>,
    req: DsrVerifyCode,
) -> CommandResult<DsrView> {
    let (db, _, actor) = state.authorised().await?;
    let request = privacy::verify_code(&db.store, &actor, request_id(&req.id)?, &req.code).await?;
    Ok(request.into())
}

/// The subject's own access token, as they handed it over.
#[derive(Deserialize, TS)]
#[ts(export)]
pub struct DsrVerifyToken {
    /// Request id.
    pub id: String,
    /// The token (a JWT); it must verify completely and belong to the subject.
    pub token: String,
}

/// Verifies the subject's identity with their own valid access token instead of a code.
#[tauri::command]
pub async fn dsr_verify_token(
    state: State<'_, AppState>,
    req: DsrVerifyToken,
) -> CommandResult<DsrView> {
    let (db, _, actor) = state.authorised().await?;
    // The platform signs its users' tokens; only its public keys are configured here.
    let platform = PlatformTokenKeys::load(&state.config().platform)
        .map_err(|e| CommandError::new(ErrorCode::ConfigInvalid, e.to_string()))?;
    let request = privacy::verify_token(
        &db.store,
        &platform,
        &actor,
        request_id(&req.id)?,
        req.token.trim(),
    )
    .await?;
    Ok(request.into())
}

/// Issues a new verification code (the old one stops working; attempts start again).
#[tauri::command]
pub async fn dsr_reissue_code(state: State<'_, AppState>, req: DsrRef) -> CommandResult<DsrCode> {
    let (db, session, actor) = state.authorised().await?;
    let id = request_id(&req.id)?;
    let code = privacy::reissue_code(&db.store, session.ring.as_ref(), &actor, id).await?;
    let detail = privacy::show(&db.store, &actor, id).await?;
    Ok(DsrCode {
        request: detail.request.into(),
        verification_code: code.map(|c| c.to_string()),
    })
}

/// A deadline extension.
#[derive(Debug, Deserialize, TS)]
#[ts(export)]
pub struct DsrExtend {
    /// Request id.
    pub id: String,
    /// 1 or 2 months.
    pub months: u32,
    /// Why (recorded with the request).
    pub reason: String,
}

/// Extends the deadline once, by one or two months, with a reason.
#[tauri::command]
pub async fn dsr_extend(state: State<'_, AppState>, req: DsrExtend) -> CommandResult<DsrView> {
    let (db, _, actor) = state.authorised().await?;
    let request = privacy::extend(
        &db.store,
        &actor,
        request_id(&req.id)?,
        req.months,
        &req.reason,
    )
    .await?;
    Ok(request.into())
}

/// A request and a reason.
#[derive(Debug, Deserialize, TS)]
#[ts(export)]
pub struct DsrClose {
    /// Request id.
    pub id: String,
    /// Why.
    pub reason: String,
}

/// Rejects a request with a reason.
#[tauri::command]
pub async fn dsr_reject(state: State<'_, AppState>, req: DsrClose) -> CommandResult<DsrView> {
    let (db, _, actor) = state.authorised().await?;
    let request = privacy::reject(&db.store, &actor, request_id(&req.id)?, &req.reason).await?;
    Ok(request.into())
}

/// Records that the subject withdrew the request.
#[tauri::command]
pub async fn dsr_withdraw(state: State<'_, AppState>, req: DsrClose) -> CommandResult<DsrView> {
    let (db, _, actor) = state.authorised().await?;
    let request = privacy::withdraw(&db.store, &actor, request_id(&req.id)?, &req.reason).await?;
    Ok(request.into())
}

/// A correction for a rectification request.
#[derive(Debug, Deserialize, TS)]
#[ts(export)]
pub struct CorrectionInput {
    /// `display_name`, `email` or `phone`.
    pub field: String,
    /// The corrected value.
    pub value: String,
}

/// How to run a request.
#[derive(Debug, Deserialize, TS)]
#[ts(export)]
pub struct DsrRunRequest {
    /// Request id.
    pub id: String,
    /// The folder exports are written to (access and portability).
    pub out_dir: Option<String>,
    /// What an erasure does with comments: `anonymise` (default) or `delete`.
    pub comments: Option<String>,
    /// The corrections of a rectification.
    pub corrections: Vec<CorrectionInput>,
}

fn run_options(req: &DsrRunRequest) -> CommandResult<RunOptions> {
    let comments = match blank(&req.comments) {
        None => Default::default(),
        Some(c) => privacy::CommentPolicy::parse(c).ok_or_else(|| {
            CommandError::invalid(format!("comments are anonymised or deleted, not {c:?}"))
        })?,
    };
    let corrections = req
        .corrections
        .iter()
        .map(|c| {
            let value = c.value.trim().to_owned();
            match c.field.as_str() {
                "display_name" => Ok(Correction::DisplayName(value)),
                "email" => Ok(Correction::Email(value)),
                "phone" => Ok(Correction::Phone(value)),
                other => Err(CommandError::invalid(format!(
                    "no correctable field {other:?}"
                ))),
            }
        })
        .collect::<CommandResult<Vec<_>>>()?;
    Ok(RunOptions {
        out_dir: blank(&req.out_dir).map(std::path::PathBuf::from),
        comments,
        corrections,
    })
}

/// A step of a run starting or ending, sent as the `dsr-progress` event.
#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct DsrProgressEvent {
    /// The request.
    pub request_id: String,
    /// The step, from 1.
    #[ts(type = "number")]
    pub step: i64,
    /// Steps in all.
    #[ts(type = "number")]
    pub steps: i64,
    /// The step's name.
    pub name: String,
    /// `running`, `done` or `failed`.
    #[ts(type = "'running' | 'done' | 'failed'")]
    pub state: String,
    /// Rows the step changed (when done).
    #[ts(type = "number")]
    pub rows: i64,
}

/// The event name of [`DsrProgressEvent`].
pub const DSR_PROGRESS: &str = "dsr-progress";

/// A file an export wrote.
#[derive(Debug, Serialize, TS)]
#[ts(export)]
pub struct ExportedFileView {
    /// `access_json`, `access_html` or `portability_zip`.
    pub kind: String,
    /// Where it was written.
    pub path: String,
    /// SHA-256, hex.
    pub sha256: String,
    /// Size in bytes.
    #[ts(type = "number")]
    pub bytes: u64,
}

impl From<ExportedFile> for ExportedFileView {
    fn from(f: ExportedFile) -> Self {
        Self {
            kind: f.kind,
            path: f.path,
            sha256: f.sha256,
            bytes: f.bytes,
        }
    }
}

/// What a run did.
#[derive(Debug, Serialize, TS)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[ts(export)]
pub enum DsrRunResult {
    /// Files written for an access or portability request.
    Exported {
        /// The files with their digests.
        files: Vec<ExportedFileView>,
    },
    /// The erasure finished; its receipt is in the audit chain.
    Erased {
        /// The receipt.
        receipt: ErasureReceiptView,
    },
    /// The erasure ran but the residual scan still found the subject: not completed.
    ResidualFound {
        /// Where.
        report: ScanReportView,
    },
    /// The corrections were applied.
    Rectified {
        /// Fields changed.
        fields: Vec<String>,
    },
}

/// Runs a verified request (export, erasure or correction), reporting each step as the
/// `dsr-progress` event.
#[tauri::command]
pub async fn dsr_run(
    app: AppHandle,
    state: State<'_, AppState>,
    req: DsrRunRequest,
) -> CommandResult<DsrRunResult> {
    let (db, session, actor) = state.authorised().await?;
    let id = request_id(&req.id)?;
    let options = run_options(&req)?;
    let ring = session.ring.as_ref().ok_or(KeyError::NoKeyPairHere)?;
    let request_id = id.to_string();
    let run = state.stops.start(RunKey::Request(request_id.clone()));
    let outcome = privacy::run(&db.store, ring, &actor, id, &options, &mut |p| {
        let _ = app.emit(
            DSR_PROGRESS,
            DsrProgressEvent {
                request_id: request_id.clone(),
                step: p.step,
                steps: p.steps,
                name: p.name.clone(),
                state: p.state.to_owned(),
                rows: p.rows,
            },
        );
        if run.stop_requested() {
            Flow::Stop
        } else {
            Flow::Continue
        }
    })
    .await?;
    drop(run);
    Ok(match outcome {
        RunOutcome::Exported { files } => DsrRunResult::Exported {
            files: files.into_iter().map(Into::into).collect(),
        },
        RunOutcome::Erased { receipt } => {
            let seq = match privacy::show(&db.store, &actor, id).await {
                Ok(detail) => detail
                    .timeline
                    .iter()
                    .find(|t| t.action == AuditAction::DsrErasureReceipt.as_str())
                    .map(|t| t.seq),
                Err(_) => None,
            };
            DsrRunResult::Erased {
                receipt: ErasureReceiptView::new(receipt, seq),
            }
        }
        RunOutcome::ResidualFound { report } => DsrRunResult::ResidualFound {
            report: report.into(),
        },
        RunOutcome::Rectified { fields } => DsrRunResult::Rectified {
            fields: fields.into_iter().map(str::to_owned).collect(),
        },
    })
}

/// Asks this console's run of a request to stop: it stops at its next step, the step in
/// flight rolled back, and `dsr_run` answers `stopped`; running the request again resumes it.
/// Refused as not found when no run of that request is under way here.
#[tauri::command]
pub async fn dsr_stop(state: State<'_, AppState>, req: DsrRef) -> CommandResult<()> {
    state.authorised().await?;
    let id = request_id(&req.id)?;
    if state.stops.request(&RunKey::Request(id.to_string())) {
        Ok(())
    } else {
        Err(CommandError::new(
            ErrorCode::NotFound,
            "no run of this request is under way on this console",
        ))
    }
}

/// The folder exports go to unless the officer picks another: Downloads, else the home folder.
#[tauri::command]
pub async fn dsr_default_export_dir(state: State<'_, AppState>) -> CommandResult<String> {
    state.authorised().await?;
    Ok(super::default_export_dir()?.display().to_string())
}

/// A legal hold.
#[derive(Debug, Serialize, TS)]
#[ts(export)]
pub struct HoldView {
    /// Id.
    pub id: String,
    /// `user` or `incident`.
    #[ts(type = "'user' | 'incident'")]
    pub target_kind: String,
    /// The account or incident id.
    pub target_id: String,
    /// The account's username, while it exists.
    pub target_name: Option<String>,
    /// Why.
    pub reason: String,
    /// Who placed it.
    pub created_by: String,
    /// Placed (RFC 3339).
    pub created_at: String,
    /// Released (RFC 3339).
    pub released_at: Option<String>,
    /// Who released it.
    pub released_by: Option<String>,
}

impl From<holds::Hold> for HoldView {
    fn from(h: holds::Hold) -> Self {
        Self {
            id: h.id.to_string(),
            target_kind: h.target_kind,
            target_id: h.target_id,
            target_name: h.target_name,
            reason: h.reason,
            created_by: h.created_by,
            created_at: rfc3339(h.created_at),
            released_at: h.released_at.map(rfc3339),
            released_by: h.released_by,
        }
    }
}

/// Which holds to list.
#[derive(Debug, Deserialize, TS)]
#[ts(export)]
pub struct HoldsQuery {
    /// Released holds too.
    pub include_released: bool,
}

/// Holds in force (and released ones if asked), newest first.
#[tauri::command]
pub async fn holds_list(
    state: State<'_, AppState>,
    req: HoldsQuery,
) -> CommandResult<Vec<HoldView>> {
    let (db, _, actor) = state.authorised().await?;
    let list = holds::list(&db.store, &actor, req.include_released).await?;
    Ok(list.into_iter().map(HoldView::from).collect())
}

/// A hold to place on an account.
#[derive(Debug, Deserialize, TS)]
#[ts(export)]
pub struct HoldPlace {
    /// The account's username.
    pub username: String,
    /// Why.
    pub reason: String,
}

/// Places a legal hold on an account (it blocks the account's erasure).
#[tauri::command]
pub async fn hold_place(state: State<'_, AppState>, req: HoldPlace) -> CommandResult<HoldView> {
    let (db, _, actor) = state.authorised().await?;
    let username = req.username.trim();
    if username.is_empty() {
        return Err(CommandError::invalid("give the account's username"));
    }
    let hold = holds::place(
        &db.store,
        &actor,
        &holds::HoldTarget::User(username.to_owned()),
        &req.reason,
    )
    .await?;
    Ok(hold.into())
}

/// A hold to place on an incident.
#[derive(Debug, Deserialize, TS)]
#[ts(export)]
pub struct IncidentHoldPlace {
    /// The incident's id.
    pub incident_id: String,
    /// Why.
    pub reason: String,
}

/// Places a legal hold on an incident (as `vigil hold place --incident`): it blocks the erasure
/// of the account the incident is about, and retention keeps the incident's records.
#[tauri::command]
pub async fn incident_hold_place(
    state: State<'_, AppState>,
    req: IncidentHoldPlace,
) -> CommandResult<HoldView> {
    let (db, _, actor) = state.authorised().await?;
    let id = uuid::Uuid::parse_str(req.incident_id.trim())
        .map_err(|_| CommandError::invalid("not an incident id"))?;
    let target = holds::HoldTarget::Incident(id);
    let hold = holds::place(&db.store, &actor, &target, &req.reason).await?;
    Ok(hold.into())
}

/// Names a hold.
#[derive(Debug, Deserialize, TS)]
#[ts(export)]
pub struct HoldRef {
    /// Hold id.
    pub id: String,
}

/// Releases a hold.
#[tauri::command]
pub async fn hold_release(state: State<'_, AppState>, req: HoldRef) -> CommandResult<()> {
    let (db, _, actor) = state.authorised().await?;
    let id =
        uuid::Uuid::parse_str(req.id.trim()).map_err(|_| CommandError::invalid("not a hold id"))?;
    holds::release(&db.store, &actor, id).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(rfc: &str) -> Timestamp {
        // 2026-03-15T09:30:00Z and friends, without chrono here.
        let (date, time) = rfc.split_once('T').unwrap();
        let p: Vec<i64> = date.split('-').map(|x| x.parse().unwrap()).collect();
        let t: Vec<i64> = time
            .trim_end_matches('Z')
            .split(':')
            .map(|x| x.parse().unwrap())
            .collect();
        Timestamp::from_micros(
            days_from_civil(p[0], p[1], p[2]) * DAY_MICROS
                + (t[0] * 3600 + t[1] * 60 + t[2]) * 1_000_000,
        )
    }

    #[test]
    fn civil_days_match_known_dates() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(days_from_civil(2026, 1, 31), 20_484);
    }

    #[test]
    fn received_on_dates_are_checked() {
        let now = at("2026-03-15T09:30:00Z");
        assert_eq!(received_at("2026-03-15", now).unwrap(), now);
        assert_eq!(
            received_at("2026-02-01", now).unwrap().to_rfc3339(),
            "2026-02-01T12:00:00.000000Z"
        );
        assert_eq!(
            received_at("2024-02-29", now).unwrap().to_rfc3339(),
            "2024-02-29T12:00:00.000000Z"
        );
        for bad in ["2026-03-16", "2027-01-01"] {
            assert!(received_at(bad, now)
                .unwrap_err()
                .message
                .contains("future"));
        }
        for bad in ["2025-02-29", "2026-13-01", "2026-00-10", "2026-04-31"] {
            assert!(received_at(bad, now)
                .unwrap_err()
                .message
                .contains("calendar"));
        }
        for bad in ["15/03/2026", "2026-3-1", "yesterday", "2026-03-1x"] {
            assert_eq!(
                received_at(bad, now).unwrap_err().code,
                crate::ErrorCode::InvalidInput
            );
        }
    }

    #[test]
    fn subjects_are_emails_when_they_have_an_at_sign() {
        assert_eq!(
            subject_of(" anna@example.org ").unwrap(),
            SubjectRef::Email("anna@example.org".into())
        );
        assert_eq!(
            subject_of("anna.smith").unwrap(),
            SubjectRef::Username("anna.smith".into())
        );
        assert!(subject_of("  ").is_err());
    }

    #[test]
    fn run_options_parse_policies_and_corrections() {
        let req = DsrRunRequest {
            id: "x".into(),
            out_dir: Some(" ".into()),
            comments: Some("delete".into()),
            corrections: vec![CorrectionInput {
                field: "phone".into(),
                value: " +44 20 7946 0000 ".into(),
            }],
        };
        let o = run_options(&req).unwrap();
        assert!(o.out_dir.is_none());
        assert_eq!(o.comments, privacy::CommentPolicy::Delete);
        assert_eq!(
            o.corrections,
            vec![Correction::Phone("+44 20 7946 0000".into())]
        );
        let bad = DsrRunRequest {
            comments: Some("shred".into()),
            ..req
        };
        assert!(run_options(&bad).is_err());
    }
}
