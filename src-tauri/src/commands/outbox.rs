//! The outbox and the mail settings: messages with their delivery state, retry and cancel, a
//! delivery round now, the effective `[mail]` settings (never the password) and a test message.

use serde::{Deserialize, Serialize};
use tauri::State;
use ts_rs::TS;
use vigil::mail::{self, DeliverOptions, Mailer, OutboxFilter, OutboxMessage, OutboxState};
use vigil::rbac::{self, Permission};

use crate::error::{CommandError, CommandResult};
use crate::state::AppState;

/// One message of the outbox. Holds no address and no body: the recipient is an account.
#[derive(Debug, Serialize, TS)]
#[ts(export)]
pub struct OutboxMessageView {
    /// Id (its `Message-ID` is derived from it).
    pub id: String,
    /// `dsr_code`, `operator_notice`, `security_notice` or `warning`.
    pub kind: String,
    /// The template it is written with.
    pub template: String,
    /// The recipient's username, while the account exists.
    pub recipient: Option<String>,
    /// Where it is.
    #[ts(type = "'queued' | 'sent' | 'failed' | 'cancelled'")]
    pub state: String,
    /// Attempts so far.
    #[ts(type = "number")]
    pub attempts: i64,
    /// The last failure (the server's or the connection's words), if any.
    pub last_error: Option<String>,
    /// Queued (RFC 3339).
    pub created_at: String,
    /// The next attempt, while queued (RFC 3339).
    pub next_attempt_at: Option<String>,
    /// The last attempt (RFC 3339).
    pub last_attempt_at: Option<String>,
    /// When the server took it (RFC 3339).
    pub sent_at: Option<String>,
}

impl From<OutboxMessage> for OutboxMessageView {
    fn from(m: OutboxMessage) -> Self {
        Self {
            id: m.id,
            kind: m.kind,
            template: m.template,
            recipient: m.recipient,
            state: m.state.as_str().to_owned(),
            attempts: m.attempts,
            last_error: m.last_error,
            created_at: m.created_at,
            next_attempt_at: m.next_attempt_at,
            last_attempt_at: m.last_attempt_at,
            sent_at: m.sent_at,
        }
    }
}

/// Which messages to list.
#[derive(Debug, Deserialize, TS)]
#[ts(export)]
pub struct OutboxListQuery {
    /// Only this state: `queued`, `sent`, `failed` or `cancelled`; none for all.
    pub state: Option<String>,
    /// At most this many, newest first (default 100).
    pub limit: Option<u32>,
}

/// Names a message.
#[derive(Debug, Deserialize, TS)]
#[ts(export)]
pub struct OutboxRef {
    /// Message id.
    pub id: String,
}

/// What one delivery round did.
#[derive(Debug, Serialize, TS)]
#[ts(export)]
pub struct DeliveryReportView {
    /// Messages the server took.
    #[ts(type = "number")]
    pub sent: u64,
    /// Messages that failed this time and wait for a later attempt.
    #[ts(type = "number")]
    pub deferred: u64,
    /// Messages given up.
    #[ts(type = "number")]
    pub failed: u64,
    /// The last failure, if any.
    pub last_error: Option<String>,
}

/// The effective `[mail]` settings; the password is never shown, only whether one is stored.
#[derive(Debug, Serialize, TS)]
#[ts(export)]
pub struct MailSettingsView {
    /// The SMTP server; none: mail is not configured and the outbox waits.
    pub host: Option<String>,
    /// Its port.
    pub port: u16,
    /// `starttls`, `tls` or `none`.
    #[ts(type = "'starttls' | 'tls' | 'none'")]
    pub security: String,
    /// The sender.
    pub from: Option<String>,
    /// Where replies go.
    pub reply_to: Option<String>,
    /// The SMTP login.
    pub username: Option<String>,
    /// An extra trusted root certificate.
    pub ca_file: Option<String>,
    /// Whether this machine's keystore (or `VIGIL_MAIL_PASSWORD`) holds the SMTP password.
    pub password_stored: bool,
}

/// A test message's recipient.
#[derive(Debug, Deserialize, TS)]
#[ts(export)]
pub struct MailTestRequest {
    /// Where to send it.
    pub address: String,
}

/// What the server answered.
#[derive(Debug, Serialize, TS)]
#[ts(export)]
pub struct MailTestReply {
    /// The reply code, e.g. `250`.
    pub code: String,
    /// The reply text.
    pub message: String,
}

fn parse_state(s: &Option<String>) -> CommandResult<Option<OutboxState>> {
    match s.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(s) => OutboxState::parse(s).map(Some).ok_or_else(|| {
            CommandError::invalid("state must be queued, sent, failed or cancelled")
        }),
    }
}

/// The messages, newest first. Administrators and compliance officers.
#[tauri::command]
pub async fn outbox_list(
    state: State<'_, AppState>,
    req: OutboxListQuery,
) -> CommandResult<Vec<OutboxMessageView>> {
    let (db, _, actor) = state.authorised().await?;
    let filter = OutboxFilter {
        state: parse_state(&req.state)?,
        limit: req.limit,
    };
    let list = mail::list(&db.store, &actor, &filter).await?;
    Ok(list.into_iter().map(Into::into).collect())
}

/// Puts a queued or failed message back in the queue, due now.
#[tauri::command]
pub async fn outbox_retry(
    state: State<'_, AppState>,
    req: OutboxRef,
) -> CommandResult<OutboxMessageView> {
    let (db, _, actor) = state.authorised().await?;
    Ok(mail::retry(&db.store, &actor, req.id.trim()).await?.into())
}

/// Cancels a queued or failed message: it is never sent.
#[tauri::command]
pub async fn outbox_cancel(
    state: State<'_, AppState>,
    req: OutboxRef,
) -> CommandResult<OutboxMessageView> {
    let (db, _, actor) = state.authorised().await?;
    Ok(mail::cancel(&db.store, &actor, req.id.trim()).await?.into())
}

fn mailer(
    state: &AppState,
    keystore: Option<&dyn vigil::keys::keystore::Keystore>,
) -> CommandResult<Mailer> {
    let password = match keystore {
        Some(ks) => mail::password(ks)?,
        None => None,
    };
    Ok(Mailer::new(
        &state.config().mail,
        password.as_deref().map(|p| p.as_str()),
    )?)
}

/// Sends what is due now, as the signed-in operator (who needs the `contact` data key).
#[tauri::command]
pub async fn outbox_deliver(state: State<'_, AppState>) -> CommandResult<DeliveryReportView> {
    let (db, session, actor) = state.authorised().await?;
    // Listing is what those who may see the outbox may do; delivery also needs the key.
    mail::list(
        &db.store,
        &actor,
        &OutboxFilter {
            state: Some(OutboxState::Queued),
            limit: Some(1),
        },
    )
    .await?;
    let ring = session.ring.as_ref().ok_or_else(|| {
        CommandError::new(
            crate::error::ErrorCode::KeysUnavailable,
            "delivery opens addresses with the contact key, which this machine does not hold for you",
        )
    })?;
    let mailer = mailer(&state, db.keystore.as_deref())?;
    let r = mail::deliver_due(&db.store, ring, &mailer, &DeliverOptions::default()).await?;
    Ok(DeliveryReportView {
        sent: r.sent,
        deferred: r.deferred,
        failed: r.failed,
        last_error: r.last_error,
    })
}

/// The effective mail settings. Administrators (they manage the settings).
#[tauri::command]
pub async fn mail_settings(state: State<'_, AppState>) -> CommandResult<MailSettingsView> {
    let (db, _, actor) = state.authorised().await?;
    rbac::require(&db.store, &actor, Permission::ConfigRead).await?;
    let c = state.config().mail;
    let password_stored = match db.keystore.as_deref() {
        Some(ks) => mail::password(ks)?.is_some(),
        None => false,
    };
    Ok(MailSettingsView {
        host: c.host,
        port: c.port,
        security: c.security.as_str().to_owned(),
        from: c.from,
        reply_to: c.reply_to,
        username: c.username,
        ca_file: c.ca_file.map(|p| p.display().to_string()),
        password_stored,
    })
}

/// Sends one test message and returns what the server answered. Administrators.
#[tauri::command]
pub async fn mail_test(
    state: State<'_, AppState>,
    req: MailTestRequest,
) -> CommandResult<MailTestReply> {
    let (db, _, actor) = state.authorised().await?;
    rbac::require(&db.store, &actor, Permission::UsersManage).await?;
    let reply = mailer(&state, db.keystore.as_deref())?
        .send_test(&req.address)
        .await?;
    Ok(MailTestReply {
        code: reply.code,
        message: reply.message,
    })
}
