//! Incidents: what the detectors and the content screening found, folded so one problem is
//! one incident however often it is seen; the automated responses the policy orders (critical:
//! suspend, end every session, block the source address, notify the account holder; high:
//! step-up at next use, restrict commenting and uploads, manual review), each recorded on the
//! incident, audited and reversible; and the moderators' queue and actions.
//!
//! Moderators see usernames, activity, comment text and blocked addresses, never an email
//! address or phone number.

mod repo;

use serde::Serialize;

use crate::audit::{self, AuditAction, AuditActor, NewAuditEntry};
use crate::config::policy::Responses;
use crate::crypto::field::Place;
use crate::crypto::mac::BlindKind;
use crate::identity::Actor;
use crate::keys::WriteKeys;
use crate::rbac::{self, Forbidden, Permission};
use crate::store::daily_counts::{CountChanges, Metric};
use crate::store::{Store, StoreError, Timestamp, Tx};

pub use repo::{
    ActivityItem, BlockInfo, CommentItem, EvidenceItem, IncidentSummary, RestrictionInfo,
    TimelineEntry,
};

/// How bad an incident is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Suspend, revoke, block, notify.
    Critical,
    /// Step-up, restrict, manual review.
    High,
    /// Queued for a moderator.
    Medium,
    /// Queued for a moderator, last.
    Low,
}

impl Severity {
    /// Every severity, most severe first.
    pub const ALL: [Severity; 4] = [
        Severity::Critical,
        Severity::High,
        Severity::Medium,
        Severity::Low,
    ];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Critical => "critical",
            Severity::High => "high",
            Severity::Medium => "medium",
            Severity::Low => "low",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }
}

/// Where an incident is in its review.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum IncidentStatus {
    /// Waiting for a moderator.
    Open,
    /// A moderator has it.
    Investigating,
    /// Confirmed and dealt with.
    Resolved,
    /// A false positive.
    Dismissed,
}

impl IncidentStatus {
    /// Every status.
    pub const ALL: [IncidentStatus; 4] = [
        IncidentStatus::Open,
        IncidentStatus::Investigating,
        IncidentStatus::Resolved,
        IncidentStatus::Dismissed,
    ];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            IncidentStatus::Open => "open",
            IncidentStatus::Investigating => "investigating",
            IncidentStatus::Resolved => "resolved",
            IncidentStatus::Dismissed => "dismissed",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }

    /// Open or investigating: new detections of the same thing fold into it.
    pub fn is_active(self) -> bool {
        matches!(self, IncidentStatus::Open | IncidentStatus::Investigating)
    }
}

/// What was detected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum IncidentKind {
    /// One source tried many accounts, mostly failing.
    CredentialStuffing,
    /// An account went over a rate limit.
    RateLimitExceeded,
    /// Several behaviour indicators at once (many addresses, unusual hour or country, bursts).
    SuspiciousActivity,
    /// A comment with a malicious link or several threat patterns.
    MaliciousContent,
    /// A comment matching one threat pattern or with a suspicious link.
    SuspiciousContent,
}

impl IncidentKind {
    /// Every kind.
    pub const ALL: [IncidentKind; 5] = [
        IncidentKind::CredentialStuffing,
        IncidentKind::RateLimitExceeded,
        IncidentKind::SuspiciousActivity,
        IncidentKind::MaliciousContent,
        IncidentKind::SuspiciousContent,
    ];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            IncidentKind::CredentialStuffing => "credential_stuffing",
            IncidentKind::RateLimitExceeded => "rate_limit_exceeded",
            IncidentKind::SuspiciousActivity => "suspicious_activity",
            IncidentKind::MaliciousContent => "malicious_content",
            IncidentKind::SuspiciousContent => "suspicious_content",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }
}

/// One piece of evidence: an activity record or a comment, and the rule it fired.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evidence {
    /// `activity` or `comment`.
    pub kind: &'static str,
    /// The record's id.
    pub ref_id: String,
    /// The rule: `rate_limit.comment`, `multiple_ips`, `phishing_attempt`, `url.malicious`, ...
    pub rule: String,
}

/// A detector's finding, to record.
#[derive(Debug, Clone)]
pub struct Detection {
    /// What.
    pub kind: IncidentKind,
    /// How bad.
    pub severity: Severity,
    /// Whose account, if one.
    pub user_id: Option<uuid::Uuid>,
    /// The source address, if one (sealed when stored; blocked as given).
    pub source_ip: Option<String>,
    /// What fired, on what.
    pub evidence: Vec<Evidence>,
    /// One line for the queue (no personal data).
    pub summary: String,
    /// Detections with the same key fold into one open incident.
    pub dedup_key: String,
    /// When the detected activity happened.
    pub at: Timestamp,
}

/// What recording a detection did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Recorded {
    /// The incident.
    pub id: uuid::Uuid,
    /// A new incident (rather than a fold into an open one).
    pub created: bool,
    /// Its severity.
    pub severity: Severity,
    /// Automated actions taken now.
    pub actions: Vec<String>,
}

/// Why an incident operation failed.
#[derive(Debug, thiserror::Error)]
pub enum IncidentError {
    /// The actor may not do this.
    #[error(transparent)]
    Forbidden(#[from] Forbidden),
    /// No such incident.
    #[error("no incident {0}")]
    NotFound(String),
    /// No such block.
    #[error("no IP block {0}")]
    BlockNotFound(String),
    /// The action does not apply to this incident now.
    #[error("{0}")]
    NotApplicable(String),
    /// Bad input.
    #[error("{0}")]
    Invalid(String),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for IncidentError {
    fn from(e: sqlx::Error) -> Self {
        IncidentError::Store(e.into())
    }
}

/// Records a detection in `tx`: folds it into the open incident with the same key (adding
/// new evidence once; raising the severity if it is worse), or opens an incident and runs
/// the automated responses `policy` orders. Everything is audited as `actor`.
///
/// The incident opened (or its severity raised) and the evidence added are counted into
/// `counts` ([`crate::store::daily_counts`]), which the caller writes in `tx` before committing.
/// A batch of detections in one transaction goes through one [`Recorder`] instead.
#[allow(clippy::too_many_arguments)]
pub async fn record(
    tx: &mut Tx,
    counts: &mut CountChanges,
    keys: &WriteKeys,
    actor: &AuditActor,
    policy: &Responses,
    d: &Detection,
    now: Timestamp,
) -> Result<Recorded, StoreError> {
    Recorder::default()
        .record(tx, counts, keys, actor, policy, d, now)
        .await
}

/// Records detections in one transaction as [`record`] does one by one, remembering the open
/// incidents it has read, opened or changed by key, so each key is read once and an incident
/// written only when a detection changes it (thousands of detections folding into the same
/// few incidents is what a busy run makes). Use one per transaction, with the transaction
/// holding the incidents' recording turn (`monitor.incidents`), and drop it with the
/// transaction.
#[derive(Debug, Default)]
pub struct Recorder {
    /// By dedup key: the open incident as this transaction left it, and when it was written.
    open: std::collections::HashMap<String, (repo::Active, Timestamp)>,
}

impl Recorder {
    /// Records `d` (see [`record`]).
    #[allow(clippy::too_many_arguments)]
    pub async fn record(
        &mut self,
        tx: &mut Tx,
        counts: &mut CountChanges,
        keys: &WriteKeys,
        actor: &AuditActor,
        policy: &Responses,
        d: &Detection,
        now: Timestamp,
    ) -> Result<Recorded, StoreError> {
        let existing = match self.open.get(&d.dedup_key) {
            Some((active, _)) => Some(*active),
            None => repo::active_by_key(tx, &d.dedup_key).await?,
        };
        let (id, created, severity, had_user) = match existing {
            Some(e) => {
                let severity = e.severity.min(d.severity);
                let user = e.user_id.or(d.user_id);
                // Written by this transaction at `now` already, as it would be again.
                let unchanged = e.severity == severity
                    && e.user_id == user
                    && self
                        .open
                        .get(&d.dedup_key)
                        .is_some_and(|(_, at)| *at == now);
                if !unchanged {
                    repo::touch(tx, e.id, severity, user, now).await?;
                    counts.moved(
                        Metric::Incidents,
                        e.created_at,
                        e.severity.as_str(),
                        severity.as_str(),
                    );
                }
                self.open.insert(
                    d.dedup_key.clone(),
                    (
                        repo::Active {
                            severity,
                            user_id: user,
                            ..e
                        },
                        now,
                    ),
                );
                (e.id, false, severity, e.user_id.is_some())
            }
            None => {
                let id = open(tx, counts, keys, actor, d, now).await?;
                self.open.insert(
                    d.dedup_key.clone(),
                    (
                        repo::Active {
                            id,
                            severity: d.severity,
                            user_id: d.user_id,
                            created_at: now.micros(),
                        },
                        now,
                    ),
                );
                (id, true, d.severity, false)
            }
        };
        respond(
            tx, counts, actor, policy, d, now, id, created, severity, had_user,
        )
        .await
    }
}

/// Opens an incident for `d`, audited.
async fn open(
    tx: &mut Tx,
    counts: &mut CountChanges,
    keys: &WriteKeys,
    actor: &AuditActor,
    d: &Detection,
    now: Timestamp,
) -> Result<uuid::Uuid, StoreError> {
    let id = uuid::Uuid::now_v7();
    let ip = d.source_ip.as_ref().map(|ip| repo::SealedIp {
        enc: keys.seal_network(
            &Place::new("incidents", "source_ip_enc", &id.to_string()),
            ip.as_bytes(),
        ),
        bidx: keys.blind_index(BlindKind::Ip, ip).to_vec(),
        network_version: i64::from(keys.network_version().0),
        bidx_version: i64::from(keys.blind_version().0),
    });
    repo::insert(tx, id, d, ip.as_ref(), now).await?;
    counts.add(Metric::Incidents, now.micros(), d.severity.as_str(), 1);
    audit::append(
        tx,
        &NewAuditEntry::new(actor.clone(), AuditAction::IncidentOpened)
            .target(format!("incident:{id}"))
            .details(serde_json::json!({
                "kind": d.kind.as_str(),
                "severity": d.severity.as_str(),
                "evidence": d.evidence.len(),
            })),
    )
    .await?;
    Ok(id)
}

/// Adds `d`'s evidence to incident `id` and runs the responses due.
#[allow(clippy::too_many_arguments)]
async fn respond(
    tx: &mut Tx,
    counts: &mut CountChanges,
    actor: &AuditActor,
    policy: &Responses,
    d: &Detection,
    now: Timestamp,
    id: uuid::Uuid,
    created: bool,
    severity: Severity,
    had_user: bool,
) -> Result<Recorded, StoreError> {
    repo::add_evidence(tx, id, &d.evidence, now, counts).await?;

    let mut actions = Vec::new();
    // Responses run when an incident opens, and for an account that a fold newly names (a
    // credential-stuffing run that just got into an account).
    let account_only = !created && !had_user && d.user_id.is_some();
    if created || account_only {
        let ip = if created {
            d.source_ip.as_deref()
        } else {
            None
        };
        match severity {
            Severity::Critical if policy.critical => {
                critical_response(tx, actor, policy, id, d.user_id, ip, now, &mut actions).await?
            }
            Severity::High if policy.high && created => {
                high_response(tx, actor, policy, id, d.user_id, now, &mut actions).await?
            }
            _ => {}
        }
    }
    Ok(Recorded {
        id,
        created,
        severity,
        actions,
    })
}

/// Suspend, end sessions, block the address, notify.
#[allow(clippy::too_many_arguments)]
async fn critical_response(
    tx: &mut Tx,
    actor: &AuditActor,
    policy: &Responses,
    incident: uuid::Uuid,
    user: Option<uuid::Uuid>,
    ip: Option<&str>,
    now: Timestamp,
    actions: &mut Vec<String>,
) -> Result<(), StoreError> {
    if let Some(user) = user {
        if repo::is_platform_account(tx, user).await? {
            let r =
                repo::add_restriction(tx, user, "suspension", incident, None, None, now).await?;
            repo::set_user_status(tx, user, "suspended", now).await?;
            automated(
                tx,
                actor,
                incident,
                "suspend_account",
                json_id("restriction", r),
                now,
            )
            .await?;
            actions.push("suspend_account".into());
            let n = repo::revoke_sessions(tx, user, now).await?;
            automated(
                tx,
                actor,
                incident,
                "revoke_sessions",
                serde_json::json!({ "sessions": n }),
                now,
            )
            .await?;
            actions.push("revoke_sessions".into());
            repo::queue_notification(
                tx,
                "security_notice",
                user,
                &serde_json::json!({ "incident": incident.to_string() }),
                now,
            )
            .await?;
            automated(
                tx,
                actor,
                incident,
                "notify_user",
                serde_json::json!({}),
                now,
            )
            .await?;
            actions.push("notify_user".into());
        }
    }
    if let Some(ip) = ip {
        let hours = policy.ip_block_hours;
        let until = Timestamp::from_micros(now.micros() + i64::from(hours) * HOUR);
        let b = repo::add_block(
            tx,
            ip,
            "critical incident",
            Some(incident),
            None,
            Some(until),
            now,
        )
        .await?;
        automated(
            tx,
            actor,
            incident,
            "block_ip",
            serde_json::json!({ "block": b.to_string(), "hours": hours }),
            now,
        )
        .await?;
        actions.push("block_ip".into());
    }
    Ok(())
}

/// Step-up, restrict commenting and uploads, manual review.
async fn high_response(
    tx: &mut Tx,
    actor: &AuditActor,
    policy: &Responses,
    incident: uuid::Uuid,
    user: Option<uuid::Uuid>,
    now: Timestamp,
    actions: &mut Vec<String>,
) -> Result<(), StoreError> {
    if let Some(user) = user {
        if repo::is_platform_account(tx, user).await? {
            let r = repo::add_restriction(tx, user, "step_up", incident, None, None, now).await?;
            automated(
                tx,
                actor,
                incident,
                "require_step_up",
                json_id("restriction", r),
                now,
            )
            .await?;
            actions.push("require_step_up".into());
            let until =
                Timestamp::from_micros(now.micros() + i64::from(policy.restriction_hours) * HOUR);
            for kind in ["comment", "upload"] {
                let r =
                    repo::add_restriction(tx, user, kind, incident, None, Some(until), now).await?;
                automated(
                    tx,
                    actor,
                    incident,
                    &format!("restrict_{kind}"),
                    serde_json::json!({ "restriction": r.to_string(), "hours": policy.restriction_hours }),
                    now,
                )
                .await?;
                actions.push(format!("restrict_{kind}"));
            }
        }
    }
    automated(
        tx,
        actor,
        incident,
        "manual_review",
        serde_json::json!({}),
        now,
    )
    .await?;
    actions.push("manual_review".into());
    Ok(())
}

const HOUR: i64 = 3_600_000_000;

fn json_id(name: &str, id: uuid::Uuid) -> serde_json::Value {
    serde_json::json!({ name: id.to_string() })
}

/// An automated action: recorded on the incident and audited.
async fn automated(
    tx: &mut Tx,
    actor: &AuditActor,
    incident: uuid::Uuid,
    action: &str,
    details: serde_json::Value,
    now: Timestamp,
) -> Result<(), StoreError> {
    repo::add_action(tx, incident, action, None, true, &details, now).await?;
    let mut d = details;
    d["action"] = serde_json::Value::String(action.to_owned());
    audit::append(
        tx,
        &NewAuditEntry::new(actor.clone(), AuditAction::IncidentResponse)
            .target(format!("incident:{incident}"))
            .details(d),
    )
    .await?;
    Ok(())
}

/// Filters for the queue.
#[derive(Debug, Clone, Default)]
pub struct QueueFilter {
    /// Only this status; `None` means open and investigating.
    pub status: Option<IncidentStatus>,
    /// Only this severity.
    pub severity: Option<Severity>,
    /// Only this kind.
    pub kind: Option<IncidentKind>,
    /// Only incidents assigned to the actor.
    pub mine: bool,
    /// At most this many (default 200).
    pub limit: Option<u32>,
}

/// The review queue: most severe first, then oldest. Needs [`Permission::IncidentsRead`].
pub async fn list(
    store: &Store,
    actor: &Actor,
    filter: &QueueFilter,
) -> Result<Vec<IncidentSummary>, IncidentError> {
    rbac::require(store, actor, Permission::IncidentsRead).await?;
    Ok(repo::list(store, filter, actor.user_id().as_uuid()).await?)
}

/// An incident with everything a moderator needs to decide.
#[derive(Debug, Clone, Serialize)]
pub struct IncidentDetail {
    /// The incident.
    pub incident: IncidentSummary,
    /// The account's state (`active`, `suspended`, ...), if an account is involved.
    pub account_status: Option<String>,
    /// The rules that fired, with how often.
    pub rules: Vec<(String, i64)>,
    /// The evidence.
    pub evidence: Vec<EvidenceItem>,
    /// Opened, automated actions, moderators' actions and notes, oldest first.
    pub timeline: Vec<TimelineEntry>,
    /// The account's or source's activity around the incident, evidence marked.
    pub activity: Vec<ActivityItem>,
    /// Comments in the evidence, with their text where it is public.
    pub comments: Vec<CommentItem>,
    /// Address blocks this incident placed.
    pub blocks: Vec<BlockInfo>,
    /// Account restrictions this incident placed.
    pub restrictions: Vec<RestrictionInfo>,
}

/// One incident in full. Needs [`Permission::IncidentsRead`].
pub async fn show(store: &Store, actor: &Actor, id: &str) -> Result<IncidentDetail, IncidentError> {
    rbac::require(store, actor, Permission::IncidentsRead).await?;
    let id = parse_id(id)?;
    let now = Timestamp::now();
    let incident = repo::summary(store, id, actor.user_id().as_uuid())
        .await?
        .ok_or_else(|| IncidentError::NotFound(id.to_string()))?;
    let evidence = repo::evidence(store, id).await?;
    let mut rules: Vec<(String, i64)> = Vec::new();
    for e in &evidence {
        if let Some(rule) = &e.rule {
            match rules.iter_mut().find(|(r, _)| r == rule) {
                Some((_, n)) => *n += 1,
                None => rules.push((rule.clone(), 1)),
            }
        }
    }
    rules.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let blocks = repo::blocks_of_incident(store, id, now).await?;
    if !blocks.is_empty() {
        // The source addresses of the incident's blocks are personal data: the read is
        // audited (how many, never which).
        crate::audit::record_personal_data_read(
            store,
            actor,
            "incident_addresses",
            Some(format!("incident:{id}")),
            serde_json::json!({ "addresses": blocks.len() }),
        )
        .await?;
    }
    Ok(IncidentDetail {
        account_status: repo::account_status(store, id).await?,
        rules,
        timeline: repo::timeline(store, id).await?,
        activity: repo::activity_around(store, id).await?,
        comments: repo::evidence_comments(store, id).await?,
        blocks,
        restrictions: repo::restrictions_of_incident(store, id, now).await?,
        evidence,
        incident,
    })
}

/// What a moderator does with an incident.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Take it: assigned to the actor, status investigating.
    AssignToMe,
    /// A true positive, dealt with: resolved.
    Confirm,
    /// A false positive: dismissed, every automated action still in force lifted, and the
    /// rules that fired recorded as feedback.
    Dismiss,
    /// End the account's suspension.
    LiftSuspension,
    /// Keep the account suspended for this many more hours (from now or its current end).
    ExtendSuspension(u32),
    /// End the incident's address blocks.
    LiftBlock,
    /// Keep the incident's address blocks for this many more hours.
    ExtendBlock(u32),
    /// End the account's comment, upload and step-up restrictions from this incident.
    LiftRestrictions,
    /// Hide a comment in the evidence (soft delete, with the reason).
    RemoveComment(uuid::Uuid),
    /// Queue a warning to the account holder.
    Warn,
    /// Add a note to the timeline.
    Note,
}

impl Action {
    /// Parses the CLI's and UI's form: `assign`, `confirm`, `dismiss`, `lift-suspension`,
    /// `extend-suspension:HOURS`, `lift-block`, `extend-block:HOURS`, `lift-restrictions`,
    /// `remove-comment:ID`, `warn`, `note`.
    pub fn parse(s: &str) -> Result<Self, IncidentError> {
        let (name, arg) = match s.split_once(':') {
            Some((n, a)) => (n, Some(a)),
            None => (s, None),
        };
        let hours = |a: Option<&str>| -> Result<u32, IncidentError> {
            a.and_then(|h| h.parse::<u32>().ok())
                .filter(|h| (1..=24 * 365).contains(h))
                .ok_or_else(|| {
                    IncidentError::Invalid(format!("{name} needs hours from 1 to 8760: {name}:24"))
                })
        };
        Ok(match (name, arg) {
            ("assign", None) => Action::AssignToMe,
            ("confirm", None) => Action::Confirm,
            ("dismiss", None) => Action::Dismiss,
            ("lift-suspension", None) => Action::LiftSuspension,
            ("extend-suspension", a) => Action::ExtendSuspension(hours(a)?),
            ("lift-block", None) => Action::LiftBlock,
            ("extend-block", a) => Action::ExtendBlock(hours(a)?),
            ("lift-restrictions", None) => Action::LiftRestrictions,
            ("remove-comment", Some(id)) => {
                Action::RemoveComment(uuid::Uuid::parse_str(id).map_err(|_| {
                    IncidentError::Invalid("remove-comment needs a comment id".into())
                })?)
            }
            ("warn", None) => Action::Warn,
            ("note", None) => Action::Note,
            _ => {
                return Err(IncidentError::Invalid(format!(
                    "unknown action {s:?}: expected assign, confirm, dismiss, lift-suspension, \
                     extend-suspension:HOURS, lift-block, extend-block:HOURS, lift-restrictions, \
                     remove-comment:ID, warn or note"
                )))
            }
        })
    }

    /// The name recorded on the timeline.
    pub fn name(&self) -> &'static str {
        match self {
            Action::AssignToMe => "assign",
            Action::Confirm => "confirm",
            Action::Dismiss => "dismiss",
            Action::LiftSuspension => "lift_suspension",
            Action::ExtendSuspension(_) => "extend_suspension",
            Action::LiftBlock => "lift_block",
            Action::ExtendBlock(_) => "extend_block",
            Action::LiftRestrictions => "lift_restrictions",
            Action::RemoveComment(_) => "remove_comment",
            Action::Warn => "warn",
            Action::Note => "note",
        }
    }
}

/// Longest reason or note kept.
const MAX_REASON: usize = 2_000;

/// A moderator's action on an incident, in one transaction with its timeline entry and audit
/// entry. Needs [`Permission::IncidentsAct`]. A note needs its text as `reason`; removing a
/// comment needs a reason.
pub async fn act(
    store: &Store,
    actor: &Actor,
    id: &str,
    action: &Action,
    reason: Option<&str>,
) -> Result<(), IncidentError> {
    rbac::require(store, actor, Permission::IncidentsAct).await?;
    let id = parse_id(id)?;
    let reason = reason.map(str::trim).filter(|r| !r.is_empty());
    if reason.is_some_and(|r| r.len() > MAX_REASON) {
        return Err(IncidentError::Invalid(format!(
            "the reason is longer than {MAX_REASON} bytes"
        )));
    }
    if matches!(action, Action::Note | Action::RemoveComment(_)) && reason.is_none() {
        return Err(IncidentError::Invalid(format!(
            "{} needs a reason (--reason)",
            action.name()
        )));
    }
    let me = actor.user_id().as_uuid();
    let now = Timestamp::now();
    let mut tx = store.begin().await?;
    let inc = repo::lock(&mut tx, id)
        .await?
        .ok_or_else(|| IncidentError::NotFound(id.to_string()))?;
    let not = |m: &str| Err(IncidentError::NotApplicable(m.to_owned()));
    let mut details = serde_json::json!({});
    match action {
        Action::AssignToMe => {
            if !inc.status.is_active() {
                return not("the incident is closed");
            }
            repo::assign(&mut tx, id, me, now).await?;
        }
        Action::Confirm => {
            if !inc.status.is_active() {
                return not("the incident is closed");
            }
            repo::close(&mut tx, id, IncidentStatus::Resolved, now).await?;
        }
        Action::Dismiss => {
            if !inc.status.is_active() {
                return not("the incident is closed");
            }
            let lifted = repo::lift_everything(&mut tx, id, me, now).await?;
            let rules = repo::evidence_rules(&mut tx, id).await?;
            repo::close(&mut tx, id, IncidentStatus::Dismissed, now).await?;
            details = serde_json::json!({ "false_positive_rules": rules, "lifted": lifted });
        }
        Action::LiftSuspension => {
            let user = inc.user_id.ok_or(IncidentError::NotApplicable(
                "the incident names no account".into(),
            ))?;
            let n = repo::lift_restrictions(&mut tx, user, &["suspension"], None, me, now).await?;
            if n == 0 {
                return not("the account is not suspended");
            }
            repo::set_user_status(&mut tx, user, "active", now).await?;
            repo::mark_reversed(&mut tx, id, &["suspend_account"], me, now).await?;
        }
        Action::ExtendSuspension(hours) => {
            let user = inc.user_id.ok_or(IncidentError::NotApplicable(
                "the incident names no account".into(),
            ))?;
            let until = repo::extend_suspension(&mut tx, user, *hours, now).await?;
            let Some(until) = until else {
                return not("the account is not suspended");
            };
            details = serde_json::json!({ "hours": hours, "until": until.to_rfc3339() });
        }
        Action::LiftBlock => {
            let n = repo::lift_blocks_of(&mut tx, id, me, now).await?;
            if n == 0 {
                return not("the incident has no address block in force");
            }
            repo::mark_reversed(&mut tx, id, &["block_ip"], me, now).await?;
            details = serde_json::json!({ "blocks": n });
        }
        Action::ExtendBlock(hours) => {
            let n = repo::extend_blocks_of(&mut tx, id, *hours, now).await?;
            if n == 0 {
                return not("the incident has no address block in force");
            }
            details = serde_json::json!({ "hours": hours, "blocks": n });
        }
        Action::LiftRestrictions => {
            let user = inc.user_id.ok_or(IncidentError::NotApplicable(
                "the incident names no account".into(),
            ))?;
            let n = repo::lift_restrictions(
                &mut tx,
                user,
                &["comment", "upload", "step_up"],
                Some(id),
                me,
                now,
            )
            .await?;
            if n == 0 {
                return not("the incident left no restriction in force");
            }
            repo::mark_reversed(
                &mut tx,
                id,
                &["restrict_comment", "restrict_upload", "require_step_up"],
                me,
                now,
            )
            .await?;
            details = serde_json::json!({ "restrictions": n });
        }
        Action::RemoveComment(comment) => {
            if !repo::comment_in_evidence(&mut tx, id, *comment).await? {
                return not("that comment is not in this incident's evidence");
            }
            if !repo::soft_delete_comment(&mut tx, *comment, me, reason.unwrap_or(""), now).await? {
                return not("the comment is already removed");
            }
            details = serde_json::json!({ "comment": comment.to_string() });
        }
        Action::Warn => {
            let user = inc.user_id.ok_or(IncidentError::NotApplicable(
                "the incident names no account".into(),
            ))?;
            repo::queue_notification(
                &mut tx,
                "warning",
                user,
                &serde_json::json!({ "incident": id.to_string() }),
                now,
            )
            .await?;
        }
        Action::Note => {}
    }
    // The timeline keeps the moderator's words; the audit log keeps only that there were some.
    let mut timeline = details.clone();
    if let Some(r) = reason {
        timeline["reason"] = serde_json::Value::String(r.to_owned());
    }
    repo::add_action(&mut tx, id, action.name(), Some(me), false, &timeline, now).await?;
    details["action"] = serde_json::Value::String(action.name().to_owned());
    details["with_reason"] = serde_json::Value::Bool(reason.is_some());
    audit::append(
        &mut tx,
        &NewAuditEntry::new(actor, AuditAction::IncidentAction)
            .target(format!("incident:{id}"))
            .details(details),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Ends timed suspensions whose time is up (reinstating the account unless another
/// suspension holds it). IP blocks and other restrictions need no sweep: they stop counting
/// at their end. Returns how many suspensions ended.
pub async fn expire(tx: &mut Tx, actor: &AuditActor, now: Timestamp) -> Result<u64, StoreError> {
    let ended = repo::expire_suspensions(tx, now).await?;
    for (restriction, user) in &ended {
        audit::append(
            tx,
            &NewAuditEntry::new(actor.clone(), AuditAction::SuspensionExpired)
                .target(format!("user:{user}"))
                .details(serde_json::json!({ "restriction": restriction })),
        )
        .await?;
    }
    Ok(ended.len() as u64)
}

/// The restrictions in force on an account at `now`: `suspension`, `step_up`, `comment`,
/// `upload`. What the platform asks before it lets the account act.
pub async fn restrictions_in_force(
    store: &Store,
    user: uuid::Uuid,
    now: Timestamp,
) -> Result<Vec<RestrictionInfo>, StoreError> {
    repo::restrictions_in_force(store, user, now).await
}

/// Whether `ip` is blocked at `now`.
pub async fn is_blocked(store: &Store, ip: &str, now: Timestamp) -> Result<bool, StoreError> {
    let Ok(ip) = ip.trim().parse::<std::net::IpAddr>() else {
        return Ok(false);
    };
    repo::is_blocked(store, &ip.to_string(), now).await
}

/// Address blocks: in force (or all, with `all`). Needs [`Permission::IncidentsRead`].
pub async fn blocks(
    store: &Store,
    actor: &Actor,
    all: bool,
) -> Result<Vec<BlockInfo>, IncidentError> {
    rbac::require(store, actor, Permission::IncidentsRead).await?;
    Ok(repo::blocks(store, all, Timestamp::now()).await?)
}

/// Blocks an address by hand for `hours` (or until lifted). Needs [`Permission::IncidentsAct`].
pub async fn block(
    store: &Store,
    actor: &Actor,
    ip: &str,
    hours: Option<u32>,
    reason: &str,
) -> Result<uuid::Uuid, IncidentError> {
    rbac::require(store, actor, Permission::IncidentsAct).await?;
    let ip: std::net::IpAddr = ip
        .trim()
        .parse()
        .map_err(|_| IncidentError::Invalid("not an IP address".into()))?;
    let reason = reason.trim();
    if reason.is_empty() || reason.len() > MAX_REASON {
        return Err(IncidentError::Invalid(
            "a block needs a reason (--reason) of at most 2000 bytes".into(),
        ));
    }
    if hours.is_some_and(|h| !(1..=24 * 365).contains(&h)) {
        return Err(IncidentError::Invalid(
            "--hours must be from 1 to 8760".into(),
        ));
    }
    let now = Timestamp::now();
    let until = hours.map(|h| Timestamp::from_micros(now.micros() + i64::from(h) * HOUR));
    let mut tx = store.begin().await?;
    let id = repo::add_block(
        &mut tx,
        &ip.to_string(),
        reason,
        None,
        Some(actor.user_id().as_uuid()),
        until,
        now,
    )
    .await?;
    audit::append(
        &mut tx,
        &NewAuditEntry::new(actor, AuditAction::IpBlocked)
            .target(format!("ip_block:{id}"))
            .details(serde_json::json!({ "hours": hours })),
    )
    .await?;
    tx.commit().await?;
    Ok(id)
}

/// Lifts a block, by its id or by address (every block of it in force). Needs
/// [`Permission::IncidentsAct`]. Returns how many were lifted.
pub async fn unblock(store: &Store, actor: &Actor, which: &str) -> Result<u64, IncidentError> {
    rbac::require(store, actor, Permission::IncidentsAct).await?;
    let now = Timestamp::now();
    let me = actor.user_id().as_uuid();
    let mut tx = store.begin().await?;
    let ids = if let Ok(id) = uuid::Uuid::parse_str(which.trim()) {
        vec![id]
    } else if let Ok(ip) = which.trim().parse::<std::net::IpAddr>() {
        repo::blocks_in_force_for(&mut tx, &ip.to_string(), now).await?
    } else {
        return Err(IncidentError::Invalid(
            "expected a block id or an IP address".into(),
        ));
    };
    let mut lifted = 0;
    for id in ids {
        if let Some(incident) = repo::lift_block(&mut tx, id, me, now).await? {
            if let Some(incident) = incident {
                repo::mark_reversed(&mut tx, incident, &["block_ip"], me, now).await?;
                repo::add_action(
                    &mut tx,
                    incident,
                    "lift_block",
                    Some(me),
                    false,
                    &serde_json::json!({ "block": id.to_string() }),
                    now,
                )
                .await?;
            }
            audit::append(
                &mut tx,
                &NewAuditEntry::new(actor, AuditAction::IpUnblocked)
                    .target(format!("ip_block:{id}")),
            )
            .await?;
            lifted += 1;
        }
    }
    if lifted == 0 {
        return Err(IncidentError::BlockNotFound(which.trim().to_owned()));
    }
    tx.commit().await?;
    Ok(lifted)
}

/// Rules moderators dismissed as false positives, with how often: feedback for tuning.
pub async fn rule_feedback(
    store: &Store,
    actor: &Actor,
) -> Result<Vec<(String, i64)>, IncidentError> {
    rbac::require(store, actor, Permission::IncidentsRead).await?;
    Ok(repo::rule_feedback(store).await?)
}

/// Critical incidents opened after `since`, for the desktop's notification.
pub async fn critical_since(
    store: &Store,
    actor: &Actor,
    since: Timestamp,
) -> Result<Vec<IncidentSummary>, IncidentError> {
    rbac::require(store, actor, Permission::IncidentsRead).await?;
    Ok(repo::critical_since(store, since, actor.user_id().as_uuid()).await?)
}

fn parse_id(id: &str) -> Result<uuid::Uuid, IncidentError> {
    uuid::Uuid::parse_str(id.trim()).map_err(|_| IncidentError::NotFound(id.trim().to_owned()))
}
