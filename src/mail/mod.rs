//! Out-of-band delivery: the outbox (`notifications`) sent by mail through an SMTP server.
//!
//! Every message in the outbox has a kind, a recipient named by account id (never a stored
//! address: the address is opened with the `contact` data key at send time), a template and
//! its parameters, a count of attempts, the time of its next attempt and a state (`queued`,
//! `sent`, `failed`, `cancelled`). [`deliver_due`] sends what is due. Delivery is at most once
//! per message: before the SMTP transaction the message is claimed in a committed step that
//! counts the attempt and moves its next attempt into the future, and after it the message is
//! marked sent in a second one. A crash between the two leaves the message queued with its
//! next attempt already set, so it is sent once more at the most, with the same `Message-ID`
//! (derived from the message id) and the same body. A failed attempt backs off (1 minute,
//! doubling, at most 6 hours); after 24 hours the message is given up (`failed`).
//!
//! A data-subject request's verification code is the only secret a message carries. It is
//! sealed in the message with the `contact` key and removed once the message is sent,
//! cancelled or given up.

mod repo;
mod templates;

use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::message::{Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::{Credentials, DEFAULT_MECHANISMS};
use lettre::transport::smtp::client::{AsyncSmtpConnection, Certificate, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::Message;
use serde::Serialize;
use zeroize::Zeroizing;

use crate::audit::{self, AuditAction, NewAuditEntry};
use crate::auth::Actor;
use crate::config::{MailConfig, MailSecurity};
use crate::crypto::field::Place;
use crate::keys::keystore::{Keystore, KeystoreError, SecretName};
use crate::keys::{KeyError, KeyRing};
use crate::rbac::{self, Forbidden, Permission, Purpose};
use crate::store::{Store, StoreError, Timestamp, Tx};

pub use templates::Rendered;

/// The first retry waits this long; each further one twice as long as the one before.
pub const FIRST_RETRY_SECS: i64 = 60;
/// The longest wait between two attempts.
pub const MAX_RETRY_SECS: i64 = 6 * 3600;
/// A message not sent this long after it was queued is given up.
pub const GIVE_UP_AFTER_SECS: i64 = 24 * 3600;

/// The keystore entry holding the SMTP password: one per machine, not per operator, so the
/// worker's service account and the operators of this machine send with the same login.
const PASSWORD_OWNER: uuid::Uuid = uuid::Uuid::nil();
const PASSWORD_NAME: &str = "mail-password";

/// Why mail could not be set up or sent.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    /// `[mail] host` or `from` is missing.
    #[error("mail is not configured: set {0} in [mail] (or its VIGIL_MAIL_* variable)")]
    NotConfigured(&'static str),
    /// The settings are unusable.
    #[error("the mail settings are unusable: {0}")]
    Settings(String),
    /// An address given is not an email address.
    #[error("not an email address")]
    BadAddress,
    /// The server refused, dropped or could not be reached. Holds the server's or the
    /// connection's words, never a message body.
    #[error("the mail server did not take the message: {0}")]
    Smtp(String),
    /// The actor lacks the permission.
    #[error(transparent)]
    Forbidden(#[from] Forbidden),
    /// No outbox message with that id.
    #[error("no outbox message with that id")]
    NotFound,
    /// The message is not in a state that allows this.
    #[error("the message is {state}: it cannot be {action}")]
    WrongState {
        /// Its state.
        state: &'static str,
        /// What was attempted.
        action: &'static str,
    },
    /// The keystore failed (the SMTP password).
    #[error(transparent)]
    Keystore(#[from] KeystoreError),
    /// The `contact` key was needed and is not available.
    #[error(transparent)]
    Keys(#[from] KeyError),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Delivery was stopped at the injected point between the SMTP transaction and the commit
    /// that records it ([`DeliverOptions::stop_after_send`]), as a crash there would.
    #[error("delivery stopped after the SMTP transaction, before recording it")]
    StoppedAfterSend,
}

impl From<sqlx::Error> for MailError {
    fn from(e: sqlx::Error) -> Self {
        MailError::Store(e.into())
    }
}

/// Stores the SMTP password in this machine's keystore (never in the configuration file).
pub fn set_password(keystore: &dyn Keystore, password: &str) -> Result<(), MailError> {
    if password.is_empty() {
        return Err(MailError::Settings("the password is empty".into()));
    }
    keystore.put(
        PASSWORD_OWNER,
        &SecretName::parse(PASSWORD_NAME)?,
        password.as_bytes(),
    )?;
    Ok(())
}

/// Removes the SMTP password from the keystore; false if there was none.
pub fn clear_password(keystore: &dyn Keystore) -> Result<bool, MailError> {
    Ok(keystore.delete(PASSWORD_OWNER, &SecretName::parse(PASSWORD_NAME)?)?)
}

/// The SMTP password: `VIGIL_MAIL_PASSWORD` if set, else the keystore's, if any.
pub fn password(keystore: &dyn Keystore) -> Result<Option<Zeroizing<String>>, MailError> {
    if let Ok(p) = std::env::var("VIGIL_MAIL_PASSWORD") {
        if !p.is_empty() {
            return Ok(Some(Zeroizing::new(p)));
        }
    }
    let Some(bytes) = keystore.get(PASSWORD_OWNER, &SecretName::parse(PASSWORD_NAME)?)? else {
        return Ok(None);
    };
    String::from_utf8(bytes.expose().to_vec())
        .map(|s| Some(Zeroizing::new(s)))
        .map_err(|_| MailError::Settings("the stored SMTP password is not text".into()))
}

/// A connection to the configured SMTP server (one connection, reused while it lives) and
/// the sender's addresses.
pub struct Mailer {
    server: Server,
    /// The one connection, kept open between messages; `None` until the first message or
    /// after a failure.
    connection: tokio::sync::Mutex<Option<Connection>>,
    from: Mailbox,
    reply_to: Option<Mailbox>,
    /// The domain part of Message-IDs.
    id_domain: String,
}

/// Where and how to connect.
struct Server {
    host: String,
    port: u16,
    security: Security,
    credentials: Option<Credentials>,
    hello: ClientId,
}

enum Security {
    /// STARTTLS, required: a server that does not offer it is refused.
    Starttls(TlsParameters),
    /// TLS from the first byte (SMTPS).
    Wrapper(TlsParameters),
    /// Plain text (loopback only).
    None,
}

struct Connection {
    smtp: AsyncSmtpConnection,
    last_used: std::time::Instant,
}

/// How long one connection attempt or one server reply may take.
const SMTP_TIMEOUT: Duration = Duration::from_secs(30);
/// A connection idle longer than this is checked with `NOOP` before it is used again (the
/// server may have closed it meanwhile).
const IDLE_CHECK: Duration = Duration::from_secs(5);

/// What the server answered to one message.
#[derive(Debug, Clone, Serialize)]
pub struct ServerReply {
    /// The reply code, e.g. `250`.
    pub code: String,
    /// The reply text.
    pub message: String,
}

impl Mailer {
    /// A mailer from the settings and the password. Mail must be configured (`host`, `from`);
    /// STARTTLS is required when `security` says so, never optional.
    pub fn new(config: &MailConfig, password: Option<&str>) -> Result<Self, MailError> {
        let host = config
            .host
            .clone()
            .ok_or(MailError::NotConfigured("host"))?;
        let from: Mailbox = config
            .from
            .as_deref()
            .ok_or(MailError::NotConfigured("from"))?
            .parse()
            .map_err(|_| MailError::Settings("from is not an email address".into()))?;
        let reply_to = match config.reply_to.as_deref() {
            Some(r) => Some(
                r.parse()
                    .map_err(|_| MailError::Settings("reply_to is not an email address".into()))?,
            ),
            None => None,
        };
        let tls = || -> Result<TlsParameters, MailError> {
            let mut b = TlsParameters::builder(host.clone());
            if let Some(path) = &config.ca_file {
                let pem = std::fs::read(path).map_err(|e| {
                    MailError::Settings(format!("cannot read ca_file {}: {e}", path.display()))
                })?;
                let cert = Certificate::from_pem(&pem).map_err(|_| {
                    MailError::Settings(format!("ca_file {} holds no certificate", path.display()))
                })?;
                b = b.add_root_certificate(cert);
            }
            b.build_rustls()
                .map_err(|e| MailError::Settings(format!("TLS: {e}")))
        };
        let security = match config.security {
            MailSecurity::Starttls => Security::Starttls(tls()?),
            MailSecurity::Tls => Security::Wrapper(tls()?),
            MailSecurity::None => {
                if !crate::config::is_loopback_host(&host) {
                    return Err(MailError::Settings(
                        "security `none` is allowed only for a loopback host".into(),
                    ));
                }
                Security::None
            }
        };
        let credentials = match &config.username {
            Some(user) => {
                let pass = password.ok_or_else(|| {
                    MailError::Settings(
                        "a username is set but no password: run `vigil mail set-password`".into(),
                    )
                })?;
                Some(Credentials::new(user.clone(), pass.to_owned()))
            }
            None => None,
        };
        let id_domain = from.email.domain().to_owned();
        Ok(Self {
            server: Server {
                host,
                port: config.port,
                security,
                credentials,
                hello: ClientId::default(),
            },
            connection: tokio::sync::Mutex::new(None),
            from,
            reply_to,
            id_domain,
        })
    }

    /// Sends one test message to `to` and returns what the server answered.
    pub async fn send_test(&self, to: &str) -> Result<ServerReply, MailError> {
        let to: Mailbox = to.trim().parse().map_err(|_| MailError::BadAddress)?;
        let rendered =
            templates::render("test", &serde_json::Map::new()).map_err(MailError::Settings)?;
        let id = format!("<test.{}@{}>", uuid::Uuid::now_v7(), self.id_domain);
        let message = self.build(to, &rendered, id)?;
        self.send(message).await
    }

    fn build(&self, to: Mailbox, r: &Rendered, message_id: String) -> Result<Message, MailError> {
        let mut b = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(r.subject.clone())
            .message_id(Some(message_id));
        if let Some(reply) = &self.reply_to {
            b = b.reply_to(reply.clone());
        }
        b.multipart(
            MultiPart::alternative()
                .singlepart(
                    SinglePart::builder()
                        .header(ContentType::TEXT_PLAIN)
                        .body(r.text.to_string()),
                )
                .singlepart(
                    SinglePart::builder()
                        .header(ContentType::TEXT_HTML)
                        .body(r.html.to_string()),
                ),
        )
        .map_err(|e| MailError::Settings(format!("cannot build the message: {e}")))
    }

    /// Sends one message over the kept connection, opening one first if there is none (or
    /// the kept one no longer answers). A failure drops the connection; the message is not
    /// tried again here (the outbox's next attempt does that), so a server that took the
    /// message but whose answer was lost is never sent it twice within one attempt.
    async fn send(&self, message: Message) -> Result<ServerReply, MailError> {
        let mut slot = self.connection.lock().await;
        if let Some(c) = slot.as_mut() {
            let stale = c.smtp.has_broken()
                || (c.last_used.elapsed() > IDLE_CHECK && !c.smtp.test_connected().await);
            if stale {
                *slot = None;
            }
        }
        let mut conn = match slot.take() {
            Some(c) => c,
            None => Connection {
                smtp: self.server.connect().await?,
                last_used: std::time::Instant::now(),
            },
        };
        let sent = tokio::time::timeout(
            SMTP_TIMEOUT,
            conn.smtp.send(message.envelope(), &message.formatted()),
        )
        .await
        .map_err(|_| MailError::Smtp("the server did not answer in time".into()))?
        .map_err(|e| MailError::Smtp(smtp_error_text(&e)))?;
        conn.last_used = std::time::Instant::now();
        *slot = Some(conn);
        Ok(ServerReply {
            code: sent.code().to_string(),
            message: sent.message().collect::<Vec<_>>().join(" "),
        })
    }
}

impl Server {
    /// Opens a connection: TCP with `TCP_NODELAY`, then STARTTLS or TLS as configured, then
    /// the login if a username is set.
    ///
    /// `TCP_NODELAY` matters for throughput: the client writes a message's body and its closing
    /// `CRLF.CRLF` in two writes, and with Nagle's algorithm the second waits for the server to
    /// acknowledge the first, which a server delays (about 40 ms) because it has nothing to
    /// say until the closing dot arrives.
    async fn connect(&self) -> Result<AsyncSmtpConnection, MailError> {
        let smtp_err = |e: lettre::transport::smtp::Error| MailError::Smtp(smtp_error_text(&e));
        let work = async {
            let mut conn = match &self.security {
                Security::Starttls(tls) => {
                    let mut conn = self.plain().await?;
                    if !conn.can_starttls() {
                        return Err(MailError::Smtp(
                            "the server does not offer STARTTLS, which the settings require".into(),
                        ));
                    }
                    conn.starttls(tls.clone(), &self.hello)
                        .await
                        .map_err(smtp_err)?;
                    conn
                }
                // lettre wraps the socket in TLS itself here, so TCP_NODELAY is not set on
                // this path.
                Security::Wrapper(tls) => AsyncSmtpConnection::connect_tokio1(
                    (self.host.as_str(), self.port),
                    Some(SMTP_TIMEOUT),
                    &self.hello,
                    Some(tls.clone()),
                    None,
                )
                .await
                .map_err(smtp_err)?,
                Security::None => self.plain().await?,
            };
            if let Some(credentials) = &self.credentials {
                conn.auth(DEFAULT_MECHANISMS, credentials)
                    .await
                    .map_err(smtp_err)?;
            }
            Ok(conn)
        };
        tokio::time::timeout(SMTP_TIMEOUT, work)
            .await
            .map_err(|_| MailError::Smtp("the server did not answer in time".into()))?
    }

    /// A TCP connection with `TCP_NODELAY`, greeted and past `EHLO`.
    async fn plain(&self) -> Result<AsyncSmtpConnection, MailError> {
        let tcp = tokio::net::TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(|e| MailError::Smtp(format!("cannot connect: {e}")))?;
        tcp.set_nodelay(true)
            .map_err(|e| MailError::Smtp(format!("cannot connect: {e}")))?;
        AsyncSmtpConnection::connect_with_transport(Box::new(tcp), &self.hello)
            .await
            .map_err(|e| MailError::Smtp(smtp_error_text(&e)))
    }
}

/// The error's chain as one line, cut short: the server's reply or the connection's failure.
fn smtp_error_text(e: &lettre::transport::smtp::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text.chars().take(300).collect()
}

/// A message's state in the outbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OutboxState {
    /// Waiting for its next attempt.
    Queued,
    /// The server took it.
    Sent,
    /// Given up (too old, or no address to send to).
    Failed,
    /// Cancelled before it was sent.
    Cancelled,
}

impl OutboxState {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            OutboxState::Queued => "queued",
            OutboxState::Sent => "sent",
            OutboxState::Failed => "failed",
            OutboxState::Cancelled => "cancelled",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        [
            OutboxState::Queued,
            OutboxState::Sent,
            OutboxState::Failed,
            OutboxState::Cancelled,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

/// An outbox message as the outbox screen and `vigil outbox list` show it: no address, no
/// parameters (a code stays sealed).
#[derive(Debug, Clone, Serialize)]
pub struct OutboxMessage {
    /// Id (the `Message-ID` is derived from it).
    pub id: String,
    /// Kind: `dsr_code`, `operator_notice`, `security_notice`, `warning`.
    pub kind: String,
    /// Template.
    pub template: String,
    /// The recipient's account id.
    pub recipient_id: Option<String>,
    /// The recipient's username, while the account exists.
    pub recipient: Option<String>,
    /// State.
    pub state: OutboxState,
    /// Attempts so far.
    pub attempts: i64,
    /// The last failure, if any.
    pub last_error: Option<String>,
    /// When it was queued (RFC 3339).
    pub created_at: String,
    /// When it is next tried, while queued (RFC 3339).
    pub next_attempt_at: Option<String>,
    /// When it was last tried (RFC 3339).
    pub last_attempt_at: Option<String>,
    /// When the server took it (RFC 3339).
    pub sent_at: Option<String>,
}

/// Which messages [`list`] shows.
#[derive(Debug, Clone, Default)]
pub struct OutboxFilter {
    /// Only this state.
    pub state: Option<OutboxState>,
    /// At most this many, newest first (default 100).
    pub limit: Option<u32>,
}

/// The outbox, newest first. Administrators (`users_manage`) and compliance officers
/// (`dsr_manage`) see it; it shows no address and no parameter.
pub async fn list(
    store: &Store,
    actor: &Actor,
    filter: &OutboxFilter,
) -> Result<Vec<OutboxMessage>, MailError> {
    require_outbox(store, actor).await?;
    let rows = repo::list(
        store,
        filter.state.map(OutboxState::as_str),
        i64::from(filter.limit.unwrap_or(100).clamp(1, 10_000)),
    )
    .await?;
    Ok(rows
        .into_iter()
        .map(repo::OutboxRow::into_message)
        .collect())
}

/// One message.
pub async fn get(store: &Store, actor: &Actor, id: &str) -> Result<OutboxMessage, MailError> {
    require_outbox(store, actor).await?;
    repo::get(store, id)
        .await?
        .map(repo::OutboxRow::into_message)
        .ok_or(MailError::NotFound)
}

async fn require_outbox(store: &Store, actor: &Actor) -> Result<(), MailError> {
    match rbac::require(store, actor, Permission::UsersManage).await {
        Ok(_) => Ok(()),
        Err(_) => {
            rbac::require(store, actor, Permission::DsrManage).await?;
            Ok(())
        }
    }
}

/// Puts a queued or failed message back in the queue, due now (its attempts are kept; a
/// failed message gets another 24 hours). Audited.
pub async fn retry(store: &Store, actor: &Actor, id: &str) -> Result<OutboxMessage, MailError> {
    require_outbox(store, actor).await?;
    let now = Timestamp::now();
    let mut tx = store.begin().await?;
    let row = repo::get_tx(&mut tx, id)
        .await?
        .ok_or(MailError::NotFound)?;
    let state = OutboxState::parse(&row.state).unwrap_or(OutboxState::Failed);
    if !matches!(state, OutboxState::Queued | OutboxState::Failed) {
        return Err(MailError::WrongState {
            state: state.as_str(),
            action: "retried",
        });
    }
    if state == OutboxState::Failed && row.kind == DSR_CODE && !row.payload.contains(CODE_FIELD) {
        // The code was removed when the message was given up: `dsr code` issues a new one.
        return Err(MailError::WrongState {
            state: state.as_str(),
            action: "retried (its code is gone; issue a new one with `dsr code`)",
        });
    }
    repo::requeue(&mut tx, id, now.micros()).await?;
    audit::append(
        &mut tx,
        &NewAuditEntry::new(actor, AuditAction::OutboxRetried)
            .target(id.to_owned())
            .details(serde_json::json!({ "kind": row.kind, "was": state.as_str() })),
    )
    .await?;
    tx.commit().await?;
    get(store, actor, id).await
}

/// Cancels a queued or failed message: it is never sent, and a code it carried is removed.
/// Audited.
pub async fn cancel(store: &Store, actor: &Actor, id: &str) -> Result<OutboxMessage, MailError> {
    require_outbox(store, actor).await?;
    let mut tx = store.begin().await?;
    let row = repo::get_tx(&mut tx, id)
        .await?
        .ok_or(MailError::NotFound)?;
    let state = OutboxState::parse(&row.state).unwrap_or(OutboxState::Failed);
    if !matches!(state, OutboxState::Queued | OutboxState::Failed) {
        return Err(MailError::WrongState {
            state: state.as_str(),
            action: "cancelled",
        });
    }
    repo::finish(
        &mut tx,
        id,
        OutboxState::Cancelled.as_str(),
        None,
        &scrubbed(&row.payload),
        None,
    )
    .await?;
    audit::append(
        &mut tx,
        &NewAuditEntry::new(actor, AuditAction::OutboxCancelled)
            .target(id.to_owned())
            .details(serde_json::json!({ "kind": row.kind, "was": state.as_str() })),
    )
    .await?;
    tx.commit().await?;
    get(store, actor, id).await
}

/// The kind of a message carrying a data-subject request's verification code.
pub(crate) const DSR_CODE: &str = "dsr_code";
/// The payload field holding a sealed code.
const CODE_FIELD: &str = "code_sealed";

fn code_place(message_id: &str) -> Place<'_> {
    Place::new("notifications", "payload", message_id)
}

/// A data-subject request's code on its way to the subject.
pub(crate) struct DsrCodeMessage<'a> {
    /// The subject's account.
    pub subject: uuid::Uuid,
    /// The request.
    pub request_id: &'a str,
    /// Its kind (`access`, ...).
    pub request_kind: &'a str,
    /// The code.
    pub code: &'a str,
    /// Until when it works.
    pub expires_at: Timestamp,
}

/// Queues a data-subject request's verification code for its subject, sealed with the
/// `contact` key, within `tx`. Returns the message id.
pub(crate) async fn queue_dsr_code(
    tx: &mut Tx,
    store: &Store,
    ring: &KeyRing,
    m: &DsrCodeMessage<'_>,
    now: Timestamp,
) -> Result<String, MailError> {
    let DsrCodeMessage {
        subject,
        request_id,
        request_kind,
        code,
        expires_at,
    } = *m;
    let id = uuid::Uuid::now_v7().to_string();
    let (_, sealed) = ring
        .seal_field(store, Purpose::Contact, &code_place(&id), code.as_bytes())
        .await?;
    use base64::Engine as _;
    let payload = serde_json::json!({
        "request_id": request_id,
        "request_kind": request_kind,
        "expires_at": expires_at.to_rfc3339(),
        CODE_FIELD: base64::engine::general_purpose::STANDARD.encode(sealed),
    });
    repo::insert(
        tx,
        &id,
        DSR_CODE,
        &subject.to_string(),
        DSR_CODE,
        &payload.to_string(),
        now.micros(),
    )
    .await?;
    Ok(id)
}

/// Cancels the queued messages carrying an earlier code of a request, within `tx` (a new code
/// replaces them: only one code of a request is ever on its way).
pub(crate) async fn cancel_queued(tx: &mut Tx, message_id: &str) -> Result<(), MailError> {
    if let Some(row) = repo::get_tx(tx, message_id).await? {
        if row.state == OutboxState::Queued.as_str() {
            repo::finish(
                tx,
                message_id,
                OutboxState::Cancelled.as_str(),
                Some("replaced by a new code"),
                &scrubbed(&row.payload),
                None,
            )
            .await?;
        }
    }
    Ok(())
}

/// A message as the outbox shows it, for the page of what it belongs to (the caller checked
/// its own permission).
pub(crate) async fn message(
    store: &Store,
    message_id: &str,
) -> Result<Option<OutboxMessage>, StoreError> {
    Ok(repo::get(store, message_id)
        .await?
        .map(repo::OutboxRow::into_message))
}

/// The payload without a sealed code.
fn scrubbed(payload: &str) -> String {
    match serde_json::from_str::<serde_json::Value>(payload) {
        Ok(serde_json::Value::Object(mut m)) => {
            m.remove(CODE_FIELD);
            serde_json::Value::Object(m).to_string()
        }
        _ => "{}".into(),
    }
}

/// How [`deliver_due`] runs.
#[derive(Debug, Clone, Default)]
pub struct DeliverOptions {
    /// The time delivery takes as now (default: the clock).
    pub now: Option<Timestamp>,
    /// At most this many messages (default: all that are due).
    pub limit: Option<u32>,
    /// Stop after the first SMTP transaction, before the commit that records it, as a crash
    /// there would: the proof that such a crash sends a message once more at the most.
    pub stop_after_send: bool,
}

/// What one delivery round did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DeliveryReport {
    /// Messages the server took.
    pub sent: u64,
    /// Messages that failed this time and stay queued for a later attempt.
    pub deferred: u64,
    /// Messages given up (too old, or no address on file).
    pub failed: u64,
    /// The last failure's text, if any (no address, no body).
    pub last_error: Option<String>,
}

/// Sends every queued message that is due, oldest first, and returns what happened. The
/// caller's key ring must hold `contact` (the recipient's address is opened with it); compliance
/// officers and the worker's service account do.
pub async fn deliver_due(
    store: &Store,
    ring: &KeyRing,
    mailer: &Mailer,
    options: &DeliverOptions,
) -> Result<DeliveryReport, MailError> {
    // Fails early, and clearly, for an actor without the key.
    ring.current(store, Purpose::Contact).await?;
    let now = options.now.unwrap_or_else(Timestamp::now);
    let mut report = DeliveryReport::default();
    let limit = options.limit.map_or(i64::MAX, i64::from);
    let mut done = 0i64;
    while done < limit {
        let batch = repo::due(store, now.micros(), (limit - done).min(200)).await?;
        if batch.is_empty() {
            break;
        }
        for row in batch {
            done += 1;
            deliver_one(store, ring, mailer, row, now, options, &mut report).await?;
        }
    }
    if report.sent + report.deferred + report.failed > 0 {
        tracing::info!(
            sent = report.sent,
            deferred = report.deferred,
            failed = report.failed,
            "outbox delivery"
        );
    }
    Ok(report)
}

/// The wait after the `attempt`-th attempt failed: 1 minute, doubling, at most 6 hours.
pub fn backoff_secs(attempt: i64) -> i64 {
    let shift = (attempt - 1).clamp(0, 20) as u32;
    (FIRST_RETRY_SECS << shift).min(MAX_RETRY_SECS)
}

async fn deliver_one(
    store: &Store,
    ring: &KeyRing,
    mailer: &Mailer,
    row: repo::OutboxRow,
    now: Timestamp,
    options: &DeliverOptions,
    report: &mut DeliveryReport,
) -> Result<(), MailError> {
    let attempt = row.attempts + 1;
    let next = now.micros() + backoff_secs(attempt) * 1_000_000;
    // First commit: the attempt is counted and the next one scheduled before any byte goes to
    // the server. Only one deliverer wins the claim.
    if !repo::claim(store, &row.id, row.attempts, now.micros(), next).await? {
        return Ok(());
    }
    let give_up = |reason: &str| reason.chars().take(300).collect::<String>();
    let prepared = prepare(store, ring, mailer, &row).await;
    let (to, rendered) = match prepared {
        Ok(p) => p,
        Err(Prepare::Never(reason)) => {
            let mut tx = store.begin().await?;
            repo::finish(
                &mut tx,
                &row.id,
                OutboxState::Failed.as_str(),
                Some(&give_up(&reason)),
                &scrubbed(&row.payload),
                None,
            )
            .await?;
            tx.commit().await?;
            report.failed += 1;
            report.last_error = Some(reason);
            return Ok(());
        }
        Err(Prepare::Error(e)) => return Err(e),
    };
    let message_id = format!("<{}@{}>", row.id, mailer.id_domain);
    let message = mailer.build(to, &rendered, message_id)?;
    drop(rendered);
    match mailer.send(message).await {
        Ok(_) => {
            if options.stop_after_send {
                return Err(MailError::StoppedAfterSend);
            }
            let mut tx = store.begin().await?;
            repo::finish(
                &mut tx,
                &row.id,
                OutboxState::Sent.as_str(),
                None,
                &scrubbed(&row.payload),
                Some(Timestamp::now().micros()),
            )
            .await?;
            tx.commit().await?;
            report.sent += 1;
        }
        Err(e) => {
            let text = e.to_string();
            let too_old = next > row.created_at + GIVE_UP_AFTER_SECS * 1_000_000;
            let mut tx = store.begin().await?;
            if too_old {
                repo::finish(
                    &mut tx,
                    &row.id,
                    OutboxState::Failed.as_str(),
                    Some(&give_up(&text)),
                    &scrubbed(&row.payload),
                    None,
                )
                .await?;
                report.failed += 1;
            } else {
                repo::record_error(&mut tx, &row.id, &give_up(&text)).await?;
                report.deferred += 1;
            }
            tx.commit().await?;
            report.last_error = Some(text);
        }
    }
    Ok(())
}

enum Prepare {
    /// This message can never be sent (no address on file, unknown template): give it up.
    Never(String),
    /// Something failed that may work later (the database, the keys): stop the round.
    Error(MailError),
}

impl From<StoreError> for Prepare {
    fn from(e: StoreError) -> Self {
        Prepare::Error(e.into())
    }
}

impl From<KeyError> for Prepare {
    fn from(e: KeyError) -> Self {
        Prepare::Error(e.into())
    }
}

async fn prepare(
    store: &Store,
    ring: &KeyRing,
    _mailer: &Mailer,
    row: &repo::OutboxRow,
) -> Result<(Mailbox, Rendered), Prepare> {
    let Some(recipient) = row.recipient_id.as_deref() else {
        return Err(Prepare::Never("the message names no recipient".into()));
    };
    let sealed = repo::email_of(store, recipient).await?;
    let Some(sealed) = sealed else {
        return Err(Prepare::Never("the account has no address on file".into()));
    };
    let address = ring
        .open_field(
            store,
            Purpose::Contact,
            &Place::new("users", "email_enc", recipient),
            &sealed,
        )
        .await?;
    let to: Mailbox = std::str::from_utf8(&address)
        .ok()
        .and_then(|a| a.trim().parse().ok())
        .ok_or_else(|| Prepare::Never("the address on file is not usable".into()))?;
    let mut params = match serde_json::from_str::<serde_json::Value>(&row.payload) {
        Ok(serde_json::Value::Object(m)) => m,
        _ => serde_json::Map::new(),
    };
    if let Some(sealed) = params.remove(CODE_FIELD) {
        use base64::Engine as _;
        let bytes = sealed
            .as_str()
            .and_then(|s| base64::engine::general_purpose::STANDARD.decode(s).ok())
            .ok_or_else(|| Prepare::Never("the sealed code is damaged".into()))?;
        let code = ring
            .open_field(store, Purpose::Contact, &code_place(&row.id), &bytes)
            .await?;
        let code = String::from_utf8(code.to_vec())
            .map_err(|_| Prepare::Never("the sealed code is damaged".into()))?;
        params.insert("code".into(), code.into());
    } else if row.kind == DSR_CODE {
        return Err(Prepare::Never("the message's code is gone".into()));
    }
    let template = row.template.as_deref().unwrap_or(&row.kind);
    let rendered = templates::render(template, &params).map_err(Prepare::Never)?;
    Ok((to, rendered))
}
