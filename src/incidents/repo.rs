//! SQL of incidents, their evidence and actions, address blocks and account restrictions.

use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::Row;

use super::{Detection, Evidence, IncidentKind, IncidentStatus, QueueFilter, Severity};
use crate::store::daily_counts::{CountChanges, Metric};
use crate::store::{flag, map_rows, Store, StoreError, Timestamp, Tx};

type Result<T> = std::result::Result<T, StoreError>;

/// An incident in the queue.
#[derive(Debug, Clone, Serialize)]
pub struct IncidentSummary {
    /// Id.
    pub id: String,
    /// What was detected.
    pub kind: IncidentKind,
    /// How bad.
    pub severity: Severity,
    /// Where its review is.
    pub status: IncidentStatus,
    /// The account involved, by username.
    pub username: Option<String>,
    /// The account's id.
    pub user_id: Option<String>,
    /// Who has it.
    pub assignee: Option<String>,
    /// Whether that is the asking moderator.
    pub assigned_to_me: bool,
    /// One line.
    pub summary: String,
    /// Opened.
    pub created_at: Timestamp,
    /// Last detection or action.
    pub updated_at: Timestamp,
    /// Pieces of evidence.
    pub evidence_count: i64,
}

/// A piece of evidence.
#[derive(Debug, Clone, Serialize)]
pub struct EvidenceItem {
    /// `activity` or `comment`.
    pub kind: String,
    /// The record.
    pub ref_id: Option<String>,
    /// The rule that fired on it.
    pub rule: Option<String>,
    /// When it was added.
    pub added_at: Timestamp,
}

/// An entry of an incident's timeline.
#[derive(Debug, Clone, Serialize)]
pub struct TimelineEntry {
    /// Id.
    pub id: String,
    /// `opened`, `block_ip`, `lift_block`, `note`, ...
    pub action: String,
    /// The moderator, or none for Vigil's own actions.
    pub actor: Option<String>,
    /// Vigil did it on its own.
    pub automated: bool,
    /// Ids, durations, a moderator's reason or note.
    pub details: serde_json::Value,
    /// When.
    pub at: Timestamp,
    /// When a moderator reversed it, if so.
    pub reversed_at: Option<Timestamp>,
    /// Who reversed it.
    pub reversed_by: Option<String>,
}

/// An activity record shown with an incident (the address itself is not shown).
#[derive(Debug, Clone, Serialize)]
pub struct ActivityItem {
    /// Id.
    pub id: String,
    /// When.
    pub at: Timestamp,
    /// Whose, if a known account.
    pub username: Option<String>,
    /// `login`, `comment`, ...
    pub kind: String,
    /// `success` or `failure`.
    pub outcome: String,
    /// Failure reason code.
    pub reason: Option<String>,
    /// Source country.
    pub country: Option<String>,
    /// Client.
    pub user_agent: Option<String>,
    /// Part of the evidence.
    pub evidence: bool,
}

/// A comment in an incident's evidence.
#[derive(Debug, Clone, Serialize)]
pub struct CommentItem {
    /// Id.
    pub id: String,
    /// Written.
    pub at: Timestamp,
    /// Its text, if public and not removed (a private comment stays sealed).
    pub text: Option<String>,
    /// End-to-end encrypted.
    pub private: bool,
    /// Removed (soft deleted), with when.
    pub removed_at: Option<Timestamp>,
    /// Why it was removed.
    pub removal_reason: Option<String>,
}

/// An address block.
#[derive(Debug, Clone, Serialize)]
pub struct BlockInfo {
    /// Id.
    pub id: String,
    /// The address.
    pub ip: String,
    /// Why.
    pub reason: String,
    /// The incident that placed it, if any.
    pub incident_id: Option<String>,
    /// Placed.
    pub created_at: Timestamp,
    /// Ends on its own, if it does.
    pub expires_at: Option<Timestamp>,
    /// Lifted by a moderator.
    pub lifted_at: Option<Timestamp>,
    /// `active`, `expired` or `lifted`.
    pub state: &'static str,
}

/// An account restriction.
#[derive(Debug, Clone, Serialize)]
pub struct RestrictionInfo {
    /// Id.
    pub id: String,
    /// The account.
    pub user_id: String,
    /// `suspension`, `step_up`, `comment` or `upload`.
    pub kind: String,
    /// Why.
    pub reason: String,
    /// The incident that placed it, if any.
    pub incident_id: Option<String>,
    /// Placed.
    pub created_at: Timestamp,
    /// Ends on its own, if it does.
    pub expires_at: Option<Timestamp>,
    /// Lifted.
    pub lifted_at: Option<Timestamp>,
    /// `active`, `expired` or `lifted`.
    pub state: &'static str,
}

fn ts(m: i64) -> Timestamp {
    Timestamp::from_micros(m)
}

fn opt_ts(r: &AnyRow, i: usize) -> std::result::Result<Option<Timestamp>, sqlx::Error> {
    Ok(r.try_get::<Option<i64>, _>(i)?.map(ts))
}

fn state(lifted: Option<i64>, expires: Option<i64>, now: Timestamp) -> &'static str {
    if lifted.is_some() {
        "lifted"
    } else if expires.is_some_and(|e| e <= now.micros()) {
        "expired"
    } else {
        "active"
    }
}

fn uuid_of(s: Option<String>) -> Option<uuid::Uuid> {
    s.and_then(|s| uuid::Uuid::parse_str(&s).ok())
}

/// The open incident a detection folds into.
#[derive(Debug, Clone, Copy)]
pub(super) struct Active {
    pub id: uuid::Uuid,
    pub severity: Severity,
    pub user_id: Option<uuid::Uuid>,
    pub created_at: i64,
}

pub(super) async fn active_by_key(tx: &mut Tx, key: &str) -> Result<Option<Active>> {
    let row = sqlx::query(
        "SELECT id, severity, user_id, created_at FROM incidents \
         WHERE dedup_key = $1 AND status IN ('open', 'investigating') \
         ORDER BY created_at DESC LIMIT 1",
    )
    .bind(key)
    .fetch_optional(&mut **tx)
    .await?;
    let Some(r) = row else { return Ok(None) };
    let id: String = r.try_get(0)?;
    let sev: String = r.try_get(1)?;
    Ok(Some(Active {
        id: uuid::Uuid::parse_str(&id).map_err(|_| StoreError::Corrupt("incidents.id"))?,
        severity: Severity::parse(&sev).unwrap_or(Severity::Low),
        user_id: uuid_of(r.try_get(2)?),
        created_at: r.try_get(3)?,
    }))
}

pub(super) async fn touch(
    tx: &mut Tx,
    id: uuid::Uuid,
    severity: Severity,
    user: Option<uuid::Uuid>,
    now: Timestamp,
) -> Result<()> {
    sqlx::query("UPDATE incidents SET severity = $1, user_id = $2, updated_at = $3 WHERE id = $4")
        .bind(severity.as_str())
        .bind(user.map(|u| u.to_string()))
        .bind(now.micros())
        .bind(id.to_string())
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// An incident's source address, sealed, with its blind index and the key versions of both.
pub(super) struct SealedIp {
    pub enc: Vec<u8>,
    pub bidx: Vec<u8>,
    pub network_version: i64,
    pub bidx_version: i64,
}

pub(super) async fn insert(
    tx: &mut Tx,
    id: uuid::Uuid,
    d: &Detection,
    ip: Option<&SealedIp>,
    now: Timestamp,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO incidents (id, kind, severity, status, user_id, source_ip_enc, \
         source_ip_bidx, network_key_version, bidx_key_version, dedup_key, summary, created_at, \
         updated_at) VALUES ($1, $2, $3, 'open', $4, $5, $6, $7, $8, $9, $10, $11, $11)",
    )
    .bind(id.to_string())
    .bind(d.kind.as_str())
    .bind(d.severity.as_str())
    .bind(d.user_id.map(|u| u.to_string()))
    .bind(ip.map(|i| i.enc.clone()))
    .bind(ip.map(|i| i.bidx.clone()))
    .bind(ip.map(|i| i.network_version))
    .bind(ip.map(|i| i.bidx_version))
    .bind(d.dedup_key.as_str())
    .bind(d.summary.as_str())
    .bind(now.micros())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Adds the evidence not already on the incident, counting each piece added into `counts`:
/// [`Metric::Evidence`] on the day added, [`Metric::Violations`] on the day the activity behind
/// it occurred (the day added, for evidence that is not a stored activity).
pub(super) async fn add_evidence(
    tx: &mut Tx,
    incident: uuid::Uuid,
    evidence: &[Evidence],
    now: Timestamp,
    counts: &mut CountChanges,
) -> Result<()> {
    let incident = incident.to_string();
    // A statement per hundred rows: a detection's evidence is usually a handful, and a run
    // records hundreds of thousands of them.
    for chunk in evidence.chunks(100) {
        let values: Vec<String> = (0..chunk.len())
            .map(|i| {
                let b = 6 * i;
                format!(
                    "(${}, ${}, ${}, ${}, ${}, ${})",
                    b + 1,
                    b + 2,
                    b + 3,
                    b + 4,
                    b + 5,
                    b + 6
                )
            })
            .collect();
        let sql = format!(
            "INSERT INTO incident_evidence (id, incident_id, kind, ref_id, rule, added_at) \
             VALUES {} ON CONFLICT DO NOTHING \
             RETURNING rule, (SELECT a.occurred_at FROM activity_log a \
                 WHERE incident_evidence.kind = 'activity' AND a.id = incident_evidence.ref_id)",
            values.join(", ")
        );
        let mut q = sqlx::query(&sql);
        for e in chunk {
            q = q
                .bind(uuid::Uuid::now_v7().to_string())
                .bind(incident.as_str())
                .bind(e.kind)
                .bind(e.ref_id.as_str())
                .bind(e.rule.as_str())
                .bind(now.micros());
        }
        for row in q.fetch_all(&mut **tx).await? {
            let rule: String = row.try_get(0)?;
            let occurred: Option<i64> = row.try_get(1)?;
            counts.add(Metric::Evidence, now.micros(), &rule, 1);
            counts.add(
                Metric::Violations,
                occurred.unwrap_or(now.micros()),
                &rule,
                1,
            );
        }
    }
    Ok(())
}

pub(super) async fn is_platform_account(tx: &mut Tx, user: uuid::Uuid) -> Result<bool> {
    Ok(
        sqlx::query("SELECT COUNT(*) FROM users WHERE id = $1 AND kind = 'platform'")
            .bind(user.to_string())
            .fetch_one(&mut **tx)
            .await?
            .try_get::<i64, _>(0)?
            > 0,
    )
}

#[allow(clippy::too_many_arguments)]
pub(super) async fn add_restriction(
    tx: &mut Tx,
    user: uuid::Uuid,
    kind: &str,
    incident: uuid::Uuid,
    by: Option<uuid::Uuid>,
    until: Option<Timestamp>,
    now: Timestamp,
) -> Result<uuid::Uuid> {
    let id = uuid::Uuid::now_v7();
    sqlx::query(
        "INSERT INTO user_restrictions (id, user_id, kind, reason, incident_id, created_by, \
         created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(id.to_string())
    .bind(user.to_string())
    .bind(kind)
    .bind("incident response")
    .bind(incident.to_string())
    .bind(by.map(|b| b.to_string()))
    .bind(now.micros())
    .bind(until.map(Timestamp::micros))
    .execute(&mut **tx)
    .await?;
    Ok(id)
}

pub(super) async fn set_user_status(
    tx: &mut Tx,
    user: uuid::Uuid,
    status: &str,
    now: Timestamp,
) -> Result<()> {
    sqlx::query(
        "UPDATE users SET status = $1, updated_at = $2 WHERE id = $3 AND status IN ('active', 'suspended')",
    )
    .bind(status)
    .bind(now.micros())
    .bind(user.to_string())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

pub(super) async fn revoke_sessions(tx: &mut Tx, user: uuid::Uuid, now: Timestamp) -> Result<u64> {
    let n = sqlx::query(
        "UPDATE sessions SET revoked_at = $1, revoked_reason = 'incident' \
         WHERE user_id = $2 AND revoked_at IS NULL",
    )
    .bind(now.micros())
    .bind(user.to_string())
    .execute(&mut **tx)
    .await?
    .rows_affected();
    sqlx::query(
        "UPDATE refresh_tokens SET revoked_at = $1 WHERE revoked_at IS NULL \
         AND session_id IN (SELECT id FROM sessions WHERE user_id = $2)",
    )
    .bind(now.micros())
    .bind(user.to_string())
    .execute(&mut **tx)
    .await?;
    Ok(n)
}

pub(super) async fn queue_notification(
    tx: &mut Tx,
    kind: &str,
    user: uuid::Uuid,
    payload: &serde_json::Value,
    now: Timestamp,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO notifications (id, kind, recipient_id, payload, created_at, template, \
         state, next_attempt_at) VALUES ($1, $2, $3, $4, $5, $2, 'queued', $5)",
    )
    .bind(uuid::Uuid::now_v7().to_string())
    .bind(kind)
    .bind(user.to_string())
    .bind(payload.to_string())
    .bind(now.micros())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

pub(super) async fn add_block(
    tx: &mut Tx,
    ip: &str,
    reason: &str,
    incident: Option<uuid::Uuid>,
    by: Option<uuid::Uuid>,
    until: Option<Timestamp>,
    now: Timestamp,
) -> Result<uuid::Uuid> {
    let id = uuid::Uuid::now_v7();
    sqlx::query(
        "INSERT INTO ip_blocks (id, ip, reason, incident_id, created_by, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(id.to_string())
    .bind(ip)
    .bind(reason)
    .bind(incident.map(|i| i.to_string()))
    .bind(by.map(|b| b.to_string()))
    .bind(now.micros())
    .bind(until.map(Timestamp::micros))
    .execute(&mut **tx)
    .await?;
    Ok(id)
}

pub(super) async fn add_action(
    tx: &mut Tx,
    incident: uuid::Uuid,
    action: &str,
    actor: Option<uuid::Uuid>,
    automated: bool,
    details: &serde_json::Value,
    now: Timestamp,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO incident_actions (id, incident_id, action, actor_id, automated, details, \
         created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(uuid::Uuid::now_v7().to_string())
    .bind(incident.to_string())
    .bind(action)
    .bind(actor.map(|a| a.to_string()))
    .bind(automated)
    .bind(details.to_string())
    .bind(now.micros())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

const SUMMARY_COLS: &str = "i.id, i.kind, i.severity, i.status, u.username, i.user_id, \
     a.username, i.assignee_id, i.summary, i.created_at, i.updated_at, \
     (SELECT COUNT(*) FROM incident_evidence e WHERE e.incident_id = i.id)";

const SUMMARY_FROM: &str = "FROM incidents i LEFT JOIN users u ON u.id = i.user_id \
     LEFT JOIN users a ON a.id = i.assignee_id";

const SEVERITY_RANK: &str = "CASE i.severity WHEN 'critical' THEN 0 WHEN 'high' THEN 1 \
     WHEN 'medium' THEN 2 ELSE 3 END";

fn summary_row(r: &AnyRow, me: uuid::Uuid) -> std::result::Result<IncidentSummary, sqlx::Error> {
    let kind: String = r.try_get(1)?;
    let severity: String = r.try_get(2)?;
    let status: String = r.try_get(3)?;
    let bad = |what: &str| sqlx::Error::Decode(format!("unknown incident {what}").into());
    let assignee_id: Option<String> = r.try_get(7)?;
    Ok(IncidentSummary {
        id: r.try_get(0)?,
        kind: IncidentKind::parse(&kind).ok_or_else(|| bad("kind"))?,
        severity: Severity::parse(&severity).ok_or_else(|| bad("severity"))?,
        status: IncidentStatus::parse(&status).ok_or_else(|| bad("status"))?,
        username: r.try_get(4)?,
        user_id: r.try_get(5)?,
        assignee: r.try_get(6)?,
        assigned_to_me: assignee_id.as_deref() == Some(me.to_string().as_str()),
        summary: r.try_get(8)?,
        created_at: ts(r.try_get(9)?),
        updated_at: ts(r.try_get(10)?),
        evidence_count: r.try_get(11)?,
    })
}

pub(super) async fn list(
    store: &Store,
    f: &QueueFilter,
    me: uuid::Uuid,
) -> Result<Vec<IncidentSummary>> {
    let sql = format!(
        "SELECT {SUMMARY_COLS} {SUMMARY_FROM} \
         WHERE (($1 IS NULL AND i.status IN ('open', 'investigating')) OR i.status = $1) \
           AND ($2 IS NULL OR i.severity = $2) AND ($3 IS NULL OR i.kind = $3) \
           AND ($4 = 0 OR i.assignee_id = $5) \
         ORDER BY {SEVERITY_RANK}, i.created_at, i.id LIMIT $6"
    );
    let rows = sqlx::query(&sql)
        .bind(f.status.map(IncidentStatus::as_str))
        .bind(f.severity.map(Severity::as_str))
        .bind(f.kind.map(IncidentKind::as_str))
        .bind(i64::from(f.mine))
        .bind(me.to_string())
        .bind(i64::from(f.limit.unwrap_or(200).clamp(1, 10_000)))
        .fetch_all(store.pool())
        .await?;
    map_rows(&rows, |r| summary_row(r, me))
}

pub(super) async fn summary(
    store: &Store,
    id: uuid::Uuid,
    me: uuid::Uuid,
) -> Result<Option<IncidentSummary>> {
    let sql = format!("SELECT {SUMMARY_COLS} {SUMMARY_FROM} WHERE i.id = $1");
    let row = sqlx::query(&sql)
        .bind(id.to_string())
        .fetch_optional(store.pool())
        .await?;
    Ok(row.map(|r| summary_row(&r, me)).transpose()?)
}

pub(super) async fn critical_since(
    store: &Store,
    since: Timestamp,
    me: uuid::Uuid,
) -> Result<Vec<IncidentSummary>> {
    let sql = format!(
        "SELECT {SUMMARY_COLS} {SUMMARY_FROM} \
         WHERE i.severity = 'critical' AND i.created_at > $1 ORDER BY i.created_at LIMIT 50"
    );
    let rows = sqlx::query(&sql)
        .bind(since.micros())
        .fetch_all(store.pool())
        .await?;
    map_rows(&rows, |r| summary_row(r, me))
}

pub(super) async fn evidence(store: &Store, id: uuid::Uuid) -> Result<Vec<EvidenceItem>> {
    let rows = sqlx::query(
        "SELECT kind, ref_id, rule, added_at FROM incident_evidence WHERE incident_id = $1 \
         ORDER BY added_at, id LIMIT 1000",
    )
    .bind(id.to_string())
    .fetch_all(store.pool())
    .await?;
    map_rows(&rows, |r| {
        Ok(EvidenceItem {
            kind: r.try_get(0)?,
            ref_id: r.try_get(1)?,
            rule: r.try_get(2)?,
            added_at: ts(r.try_get(3)?),
        })
    })
}

pub(super) async fn account_status(store: &Store, id: uuid::Uuid) -> Result<Option<String>> {
    Ok(sqlx::query(
        "SELECT u.status FROM incidents i JOIN users u ON u.id = i.user_id WHERE i.id = $1",
    )
    .bind(id.to_string())
    .fetch_optional(store.pool())
    .await?
    .map(|r| r.try_get(0))
    .transpose()?)
}

pub(super) async fn timeline(store: &Store, id: uuid::Uuid) -> Result<Vec<TimelineEntry>> {
    let rows = sqlx::query(
        "SELECT a.id, a.action, u.username, a.automated, a.details, a.created_at, \
         a.reversed_at, r.username \
         FROM incident_actions a LEFT JOIN users u ON u.id = a.actor_id \
         LEFT JOIN users r ON r.id = a.reversed_by \
         WHERE a.incident_id = $1 ORDER BY a.created_at, a.id",
    )
    .bind(id.to_string())
    .fetch_all(store.pool())
    .await?;
    map_rows(&rows, |r| {
        let details: String = r.try_get(4)?;
        Ok(TimelineEntry {
            id: r.try_get(0)?,
            action: r.try_get(1)?,
            actor: r.try_get(2)?,
            automated: flag(r, 3)?,
            details: serde_json::from_str(&details).unwrap_or_default(),
            at: ts(r.try_get(5)?),
            reversed_at: opt_ts(r, 6)?,
            reversed_by: r.try_get(7)?,
        })
    })
}

pub(super) async fn activity_around(store: &Store, id: uuid::Uuid) -> Result<Vec<ActivityItem>> {
    // The evidence, and the account's other activity from an hour before the first piece of
    // evidence to an hour after the last.
    let rows = sqlx::query(
        "WITH ev AS (SELECT ref_id FROM incident_evidence WHERE incident_id = $1 \
                     AND kind = 'activity'), \
              span AS (SELECT MIN(a.occurred_at) - 3600000000 AS lo, \
                              MAX(a.occurred_at) + 3600000000 AS hi \
                       FROM activity_log a WHERE a.id IN (SELECT ref_id FROM ev)), \
              who AS (SELECT user_id FROM incidents WHERE id = $1) \
         SELECT a.id, a.occurred_at, u.username, a.kind, a.outcome, a.reason, a.country, \
                a.user_agent, CASE WHEN a.id IN (SELECT ref_id FROM ev) THEN 1 ELSE 0 END \
         FROM activity_log a LEFT JOIN users u ON u.id = a.user_id \
         WHERE a.id IN (SELECT ref_id FROM ev) \
            OR (a.user_id = (SELECT user_id FROM who) \
                AND a.occurred_at BETWEEN (SELECT lo FROM span) AND (SELECT hi FROM span)) \
         ORDER BY a.occurred_at, a.id LIMIT 500",
    )
    .bind(id.to_string())
    .fetch_all(store.pool())
    .await?;
    map_rows(&rows, |r| {
        Ok(ActivityItem {
            id: r.try_get(0)?,
            at: ts(r.try_get(1)?),
            username: r.try_get(2)?,
            kind: r.try_get(3)?,
            outcome: r.try_get(4)?,
            reason: r.try_get(5)?,
            country: r.try_get(6)?,
            user_agent: r.try_get(7)?,
            evidence: r
                .try_get::<i32, _>(8)
                .map(|v| v != 0)
                .or_else(|_| flag(r, 8))?,
        })
    })
}

pub(super) async fn evidence_comments(store: &Store, id: uuid::Uuid) -> Result<Vec<CommentItem>> {
    let rows = sqlx::query(
        "SELECT c.id, c.created_at, c.body, c.is_private, c.deleted_at, c.deletion_reason \
         FROM comments c WHERE c.id IN \
           (SELECT ref_id FROM incident_evidence WHERE incident_id = $1 AND kind = 'comment') \
         ORDER BY c.created_at, c.id LIMIT 200",
    )
    .bind(id.to_string())
    .fetch_all(store.pool())
    .await?;
    map_rows(&rows, |r| {
        let removed = opt_ts(r, 4)?;
        let private = flag(r, 3)?;
        Ok(CommentItem {
            id: r.try_get(0)?,
            at: ts(r.try_get(1)?),
            text: if private || removed.is_some() {
                None
            } else {
                r.try_get(2)?
            },
            private,
            removed_at: removed,
            removal_reason: r.try_get(5)?,
        })
    })
}

const BLOCK_COLS: &str =
    "id, ip, reason, incident_id, created_at, expires_at, lifted_at FROM ip_blocks";

fn block_row(r: &AnyRow, now: Timestamp) -> std::result::Result<BlockInfo, sqlx::Error> {
    let expires: Option<i64> = r.try_get(5)?;
    let lifted: Option<i64> = r.try_get(6)?;
    Ok(BlockInfo {
        id: r.try_get(0)?,
        ip: r.try_get(1)?,
        reason: r.try_get(2)?,
        incident_id: r.try_get(3)?,
        created_at: ts(r.try_get(4)?),
        expires_at: expires.map(ts),
        lifted_at: lifted.map(ts),
        state: state(lifted, expires, now),
    })
}

pub(super) async fn blocks_of_incident(
    store: &Store,
    id: uuid::Uuid,
    now: Timestamp,
) -> Result<Vec<BlockInfo>> {
    let rows = sqlx::query(&format!(
        "SELECT {BLOCK_COLS} WHERE incident_id = $1 ORDER BY created_at"
    ))
    .bind(id.to_string())
    .fetch_all(store.pool())
    .await?;
    map_rows(&rows, |r| block_row(r, now))
}

pub(super) async fn blocks(store: &Store, all: bool, now: Timestamp) -> Result<Vec<BlockInfo>> {
    let rows = sqlx::query(&format!(
        "SELECT {BLOCK_COLS} WHERE $1 = 1 OR (lifted_at IS NULL \
         AND (expires_at IS NULL OR expires_at > $2)) ORDER BY created_at DESC LIMIT 1000"
    ))
    .bind(i64::from(all))
    .bind(now.micros())
    .fetch_all(store.pool())
    .await?;
    map_rows(&rows, |r| block_row(r, now))
}

pub(super) async fn is_blocked(store: &Store, ip: &str, now: Timestamp) -> Result<bool> {
    Ok(sqlx::query(
        "SELECT COUNT(*) FROM ip_blocks WHERE ip = $1 AND lifted_at IS NULL \
         AND (expires_at IS NULL OR expires_at > $2)",
    )
    .bind(ip)
    .bind(now.micros())
    .fetch_one(store.pool())
    .await?
    .try_get::<i64, _>(0)?
        > 0)
}

pub(super) async fn blocks_in_force_for(
    tx: &mut Tx,
    ip: &str,
    now: Timestamp,
) -> Result<Vec<uuid::Uuid>> {
    let rows = sqlx::query(
        "SELECT id FROM ip_blocks WHERE ip = $1 AND lifted_at IS NULL \
         AND (expires_at IS NULL OR expires_at > $2)",
    )
    .bind(ip)
    .bind(now.micros())
    .fetch_all(&mut **tx)
    .await?;
    Ok(map_rows(&rows, |r| r.try_get::<String, _>(0))?
        .into_iter()
        .filter_map(|s| uuid::Uuid::parse_str(&s).ok())
        .collect())
}

/// Lifts one block still in force: `Some(its incident)` if it was lifted.
pub(super) async fn lift_block(
    tx: &mut Tx,
    id: uuid::Uuid,
    me: uuid::Uuid,
    now: Timestamp,
) -> Result<Option<Option<uuid::Uuid>>> {
    let row = sqlx::query(
        "UPDATE ip_blocks SET lifted_at = $1, lifted_by = $2 WHERE id = $3 \
         AND lifted_at IS NULL AND (expires_at IS NULL OR expires_at > $1) RETURNING incident_id",
    )
    .bind(now.micros())
    .bind(me.to_string())
    .bind(id.to_string())
    .fetch_optional(&mut **tx)
    .await?;
    Ok(row
        .map(|r| r.try_get::<Option<String>, _>(0))
        .transpose()?
        .map(uuid_of))
}

pub(super) async fn lift_blocks_of(
    tx: &mut Tx,
    incident: uuid::Uuid,
    me: uuid::Uuid,
    now: Timestamp,
) -> Result<u64> {
    Ok(sqlx::query(
        "UPDATE ip_blocks SET lifted_at = $1, lifted_by = $2 WHERE incident_id = $3 \
         AND lifted_at IS NULL AND (expires_at IS NULL OR expires_at > $1)",
    )
    .bind(now.micros())
    .bind(me.to_string())
    .bind(incident.to_string())
    .execute(&mut **tx)
    .await?
    .rows_affected())
}

pub(super) async fn extend_blocks_of(
    tx: &mut Tx,
    incident: uuid::Uuid,
    hours: u32,
    now: Timestamp,
) -> Result<u64> {
    let by = i64::from(hours) * super::HOUR;
    Ok(sqlx::query(
        "UPDATE ip_blocks SET expires_at = \
           CASE WHEN expires_at > $1 THEN expires_at ELSE $1 END + $2 \
         WHERE incident_id = $3 AND lifted_at IS NULL AND expires_at IS NOT NULL \
           AND expires_at > $1",
    )
    .bind(now.micros())
    .bind(by)
    .bind(incident.to_string())
    .execute(&mut **tx)
    .await?
    .rows_affected())
}

const RESTRICTION_COLS: &str = "id, user_id, kind, reason, incident_id, created_at, expires_at, \
     lifted_at FROM user_restrictions";

fn restriction_row(
    r: &AnyRow,
    now: Timestamp,
) -> std::result::Result<RestrictionInfo, sqlx::Error> {
    let expires: Option<i64> = r.try_get(6)?;
    let lifted: Option<i64> = r.try_get(7)?;
    Ok(RestrictionInfo {
        id: r.try_get(0)?,
        user_id: r.try_get(1)?,
        kind: r.try_get(2)?,
        reason: r.try_get(3)?,
        incident_id: r.try_get(4)?,
        created_at: ts(r.try_get(5)?),
        expires_at: expires.map(ts),
        lifted_at: lifted.map(ts),
        state: state(lifted, expires, now),
    })
}

pub(super) async fn restrictions_of_incident(
    store: &Store,
    id: uuid::Uuid,
    now: Timestamp,
) -> Result<Vec<RestrictionInfo>> {
    let rows = sqlx::query(&format!(
        "SELECT {RESTRICTION_COLS} WHERE incident_id = $1 ORDER BY created_at, kind"
    ))
    .bind(id.to_string())
    .fetch_all(store.pool())
    .await?;
    map_rows(&rows, |r| restriction_row(r, now))
}

pub(super) async fn restrictions_in_force(
    store: &Store,
    user: uuid::Uuid,
    now: Timestamp,
) -> Result<Vec<RestrictionInfo>> {
    let rows = sqlx::query(&format!(
        "SELECT {RESTRICTION_COLS} WHERE user_id = $1 AND lifted_at IS NULL \
         AND (expires_at IS NULL OR expires_at > $2) ORDER BY created_at, kind"
    ))
    .bind(user.to_string())
    .bind(now.micros())
    .fetch_all(store.pool())
    .await?;
    map_rows(&rows, |r| restriction_row(r, now))
}

pub(super) async fn lift_restrictions(
    tx: &mut Tx,
    user: uuid::Uuid,
    kinds: &[&str],
    incident: Option<uuid::Uuid>,
    me: uuid::Uuid,
    now: Timestamp,
) -> Result<u64> {
    let mut n = 0;
    for kind in kinds {
        n += sqlx::query(
            "UPDATE user_restrictions SET lifted_at = $1, lifted_by = $2 \
             WHERE user_id = $3 AND kind = $4 AND ($5 IS NULL OR incident_id = $5) \
               AND lifted_at IS NULL AND (expires_at IS NULL OR expires_at > $1)",
        )
        .bind(now.micros())
        .bind(me.to_string())
        .bind(user.to_string())
        .bind(*kind)
        .bind(incident.map(|i| i.to_string()))
        .execute(&mut **tx)
        .await?
        .rows_affected();
    }
    Ok(n)
}

/// Extends the account's suspension in force by `hours` from its end (or from now if it
/// has none); returns the new end, or `None` if it is not suspended.
pub(super) async fn extend_suspension(
    tx: &mut Tx,
    user: uuid::Uuid,
    hours: u32,
    now: Timestamp,
) -> Result<Option<Timestamp>> {
    let by = i64::from(hours) * super::HOUR;
    let row = sqlx::query(
        "UPDATE user_restrictions SET expires_at = \
           CASE WHEN expires_at IS NOT NULL AND expires_at > $1 THEN expires_at ELSE $1 END + $2 \
         WHERE user_id = $3 AND kind = 'suspension' AND lifted_at IS NULL \
           AND (expires_at IS NULL OR expires_at > $1) RETURNING expires_at",
    )
    .bind(now.micros())
    .bind(by)
    .bind(user.to_string())
    .fetch_all(&mut **tx)
    .await?;
    Ok(row
        .iter()
        .filter_map(|r| r.try_get::<i64, _>(0).ok())
        .max()
        .map(ts))
}

/// Ends suspensions whose time is up; returns (restriction, account) of each.
pub(super) async fn expire_suspensions(
    tx: &mut Tx,
    now: Timestamp,
) -> Result<Vec<(String, String)>> {
    let rows = sqlx::query(
        "UPDATE user_restrictions SET lifted_at = expires_at \
         WHERE kind = 'suspension' AND lifted_at IS NULL AND expires_at IS NOT NULL \
           AND expires_at <= $1 RETURNING id, user_id",
    )
    .bind(now.micros())
    .fetch_all(&mut **tx)
    .await?;
    let ended: Vec<(String, String)> = map_rows(&rows, |r| Ok((r.try_get(0)?, r.try_get(1)?)))?;
    for (_, user) in &ended {
        reinstate_if_free(tx, user, now).await?;
    }
    Ok(ended)
}

/// Makes a suspended account active again unless another suspension still holds it.
async fn reinstate_if_free(tx: &mut Tx, user: &str, now: Timestamp) -> Result<()> {
    sqlx::query(
        "UPDATE users SET status = 'active', updated_at = $1 WHERE id = $2 \
         AND status = 'suspended' AND NOT EXISTS (SELECT 1 FROM user_restrictions \
           WHERE user_id = $2 AND kind = 'suspension' AND lifted_at IS NULL \
           AND (expires_at IS NULL OR expires_at > $1))",
    )
    .bind(now.micros())
    .bind(user)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Marks the incident's automated `actions` still standing as reversed.
pub(super) async fn mark_reversed(
    tx: &mut Tx,
    incident: uuid::Uuid,
    actions: &[&str],
    me: uuid::Uuid,
    now: Timestamp,
) -> Result<()> {
    for a in actions {
        sqlx::query(
            "UPDATE incident_actions SET reversed_at = $1, reversed_by = $2 \
             WHERE incident_id = $3 AND action = $4 AND reversed_at IS NULL",
        )
        .bind(now.micros())
        .bind(me.to_string())
        .bind(incident.to_string())
        .bind(*a)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

/// The incident, locked for the rest of `tx`: its status and account.
pub(super) struct Locked {
    pub status: IncidentStatus,
    pub user_id: Option<uuid::Uuid>,
}

pub(super) async fn lock(tx: &mut Tx, id: uuid::Uuid) -> Result<Option<Locked>> {
    // An update takes the row lock on Postgres and the write lock on SQLite.
    let row = sqlx::query(
        "UPDATE incidents SET updated_at = updated_at WHERE id = $1 RETURNING status, user_id",
    )
    .bind(id.to_string())
    .fetch_optional(&mut **tx)
    .await?;
    let Some(r) = row else { return Ok(None) };
    let status: String = r.try_get(0)?;
    Ok(Some(Locked {
        status: IncidentStatus::parse(&status).ok_or(StoreError::Corrupt("incidents.status"))?,
        user_id: uuid_of(r.try_get(1)?),
    }))
}

pub(super) async fn assign(
    tx: &mut Tx,
    id: uuid::Uuid,
    me: uuid::Uuid,
    now: Timestamp,
) -> Result<()> {
    sqlx::query(
        "UPDATE incidents SET assignee_id = $1, status = 'investigating', updated_at = $2 \
         WHERE id = $3",
    )
    .bind(me.to_string())
    .bind(now.micros())
    .bind(id.to_string())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

pub(super) async fn close(
    tx: &mut Tx,
    id: uuid::Uuid,
    status: IncidentStatus,
    now: Timestamp,
) -> Result<()> {
    sqlx::query(
        "UPDATE incidents SET status = $1, updated_at = $2, resolved_at = $2 WHERE id = $3",
    )
    .bind(status.as_str())
    .bind(now.micros())
    .bind(id.to_string())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Lifts every block and restriction the incident placed that is still in force, reinstating
/// a suspended account; returns how many were lifted.
pub(super) async fn lift_everything(
    tx: &mut Tx,
    id: uuid::Uuid,
    me: uuid::Uuid,
    now: Timestamp,
) -> Result<u64> {
    let blocks = lift_blocks_of(tx, id, me, now).await?;
    let rows = sqlx::query(
        "UPDATE user_restrictions SET lifted_at = $1, lifted_by = $2 WHERE incident_id = $3 \
         AND lifted_at IS NULL AND (expires_at IS NULL OR expires_at > $1) RETURNING user_id, kind",
    )
    .bind(now.micros())
    .bind(me.to_string())
    .bind(id.to_string())
    .fetch_all(&mut **tx)
    .await?;
    let lifted = map_rows(&rows, |r| {
        Ok((r.try_get::<String, _>(0)?, r.try_get::<String, _>(1)?))
    })?;
    for (user, kind) in &lifted {
        if kind == "suspension" {
            reinstate_if_free(tx, user, now).await?;
        }
    }
    sqlx::query(
        "UPDATE incident_actions SET reversed_at = $1, reversed_by = $2 WHERE incident_id = $3 \
         AND automated = $4 AND reversed_at IS NULL \
         AND action IN ('suspend_account', 'block_ip', 'require_step_up', 'restrict_comment', \
                        'restrict_upload')",
    )
    .bind(now.micros())
    .bind(me.to_string())
    .bind(id.to_string())
    .bind(true)
    .execute(&mut **tx)
    .await?;
    Ok(blocks + lifted.len() as u64)
}

pub(super) async fn evidence_rules(tx: &mut Tx, id: uuid::Uuid) -> Result<Vec<String>> {
    let rows = sqlx::query(
        "SELECT DISTINCT rule FROM incident_evidence WHERE incident_id = $1 AND rule IS NOT NULL \
         ORDER BY rule",
    )
    .bind(id.to_string())
    .fetch_all(&mut **tx)
    .await?;
    map_rows(&rows, |r| r.try_get(0))
}

pub(super) async fn comment_in_evidence(
    tx: &mut Tx,
    incident: uuid::Uuid,
    comment: uuid::Uuid,
) -> Result<bool> {
    Ok(sqlx::query(
        "SELECT COUNT(*) FROM incident_evidence WHERE incident_id = $1 AND kind = 'comment' \
         AND ref_id = $2",
    )
    .bind(incident.to_string())
    .bind(comment.to_string())
    .fetch_one(&mut **tx)
    .await?
    .try_get::<i64, _>(0)?
        > 0)
}

pub(super) async fn soft_delete_comment(
    tx: &mut Tx,
    comment: uuid::Uuid,
    me: uuid::Uuid,
    reason: &str,
    now: Timestamp,
) -> Result<bool> {
    Ok(sqlx::query(
        "UPDATE comments SET deleted_at = $1, deleted_by = $2, deletion_reason = $3 \
         WHERE id = $4 AND deleted_at IS NULL",
    )
    .bind(now.micros())
    .bind(me.to_string())
    .bind(reason)
    .bind(comment.to_string())
    .execute(&mut **tx)
    .await?
    .rows_affected()
        > 0)
}

pub(super) async fn rule_feedback(store: &Store) -> Result<Vec<(String, i64)>> {
    let rows = sqlx::query("SELECT details FROM incident_actions WHERE action = 'dismiss'")
        .fetch_all(store.pool())
        .await?;
    let mut counts: std::collections::BTreeMap<String, i64> = Default::default();
    for r in &rows {
        let d: String = r.try_get(0)?;
        let v: serde_json::Value = serde_json::from_str(&d).unwrap_or_default();
        for rule in v["false_positive_rules"].as_array().into_iter().flatten() {
            if let Some(rule) = rule.as_str() {
                *counts.entry(rule.to_owned()).or_default() += 1;
            }
        }
    }
    let mut out: Vec<(String, i64)> = counts.into_iter().collect();
    out.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    Ok(out)
}
