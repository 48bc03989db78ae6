//! Security monitoring: the platform's activity taken in ([`ingest`]), the behaviour
//! detectors run over what is new since the last run ([`run`]), and content and URL screening
//! ([`screen`]). What they find becomes incidents (see [`crate::incidents`]).

pub mod detect;
pub mod geo;
pub mod ingest;
pub mod lines;
/// Detector thresholds and automated responses (`[monitor.policy]`), read with the configuration.
pub use crate::config::policy;
mod repo;
pub mod screen;

use std::collections::HashMap;
use std::io::BufRead;

use serde::Serialize;

use crate::audit::{self, AuditAction, AuditActor, NewAuditEntry};
use crate::crypto::field::Place;
use crate::crypto::mac::BlindKind;
use crate::identity::Actor;
use crate::incidents::{self, Detection, Evidence, IncidentKind, Severity};
use crate::keys::{KeyError, KeyRing, Purpose, WriteKeys};
use crate::platform::{
    self, BulkWriter, CommentBody, CopyBatch, NewActivity, NewComment, PublicComment, Written,
};
use crate::rbac::{self, Forbidden, Permission};
use crate::store::{Store, StoreError, Timestamp};

use detect::{Engine, Finding, Kind};
use policy::Policy;
use screen::{Screener, Verdict};

/// Why monitoring failed. Batches already committed stay; nothing is half-written.
#[derive(Debug, thiserror::Error)]
pub enum MonitorError {
    /// The actor may not do this.
    #[error(transparent)]
    Forbidden(#[from] Forbidden),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The keys to seal or open personal data with are not available.
    #[error(transparent)]
    Keys(#[from] KeyError),
    /// Reading the input failed.
    #[error("cannot read the activity: {0}")]
    Io(#[from] std::io::Error),
    /// Another console or worker is running the detectors now.
    #[error("the detectors are running on another console or worker; try again when they finish")]
    Busy,
}

impl From<sqlx::Error> for MonitorError {
    fn from(e: sqlx::Error) -> Self {
        MonitorError::Store(e.into())
    }
}

/// A line that was not ingested, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BadLine {
    /// Its number, from 1.
    pub line: u64,
    /// What is wrong with it.
    pub error: String,
}

/// What an ingestion did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct IngestReport {
    /// Non-blank lines read.
    pub lines: u64,
    /// Activity records written.
    pub ingested: u64,
    /// Good lines already ingested before (same id).
    pub duplicates: u64,
    /// Comments written with their submissions.
    pub comments: u64,
    /// Lines skipped, with why (the first 1,000).
    pub rejected: Vec<BadLine>,
    /// Lines skipped in all.
    pub rejected_total: u64,
}

/// Lines per transaction.
const INGEST_BATCH: usize = 5_000;

/// Takes in activity, one JSON object per line (see [`ingest`] for the schema), with lines of
/// at most [`lines::DEFAULT_MAX_LINE_BYTES`]: see [`ingest_reader_with_limit`].
pub async fn ingest_reader(
    store: &Store,
    ring: &KeyRing,
    actor: &Actor,
    input: impl BufRead,
) -> Result<IngestReport, MonitorError> {
    ingest_reader_with_limit(store, ring, actor, input, lines::DEFAULT_MAX_LINE_BYTES).await
}

/// Bytes of pending lines that make a batch even before it has [`INGEST_BATCH`] lines, so long
/// lines cannot add up to a large batch.
const INGEST_BATCH_BYTES: usize = 4 << 20;

/// Takes in activity, one JSON object per line (see [`ingest`] for the schema). Good lines
/// are written in batches, each in one transaction; bad lines (longer than `max_line_bytes`,
/// which is skipped without being held whole, not UTF-8, holding a NUL byte, or not a valid
/// record) are reported with their numbers and skipped. Needs [`Permission::ActivityIngest`].
pub async fn ingest_reader_with_limit(
    store: &Store,
    ring: &KeyRing,
    actor: &Actor,
    input: impl BufRead,
    max_line_bytes: usize,
) -> Result<IngestReport, MonitorError> {
    rbac::require(store, actor, Permission::ActivityIngest).await?;
    let keys = WriteKeys::current(
        store,
        ring,
        &[Purpose::Network, Purpose::BlindIndex, Purpose::ContentHash],
    )
    .await?;
    let mut report = IngestReport::default();
    let mut writer = BatchWriter::open(store).await?;
    let mut batch: Vec<(u64, String)> = Vec::with_capacity(INGEST_BATCH);
    let mut batch_bytes = 0usize;
    let mut input = lines::Lines::new(input, max_line_bytes);
    while let Some((n, line)) = input.next_line()? {
        let text = match line {
            Ok(text) if text.trim().is_empty() => continue,
            Ok(text) => text,
            Err(fault) => {
                report.lines += 1;
                report.rejected_total += 1;
                if report.rejected.len() < 1_000 {
                    report.rejected.push(BadLine {
                        line: n,
                        error: fault.to_string(),
                    });
                }
                continue;
            }
        };
        batch_bytes += text.len();
        batch.push((n, text.to_owned()));
        if batch.len() == INGEST_BATCH || batch_bytes >= INGEST_BATCH_BYTES {
            writer.ingest(store, &keys, &batch, &mut report).await?;
            batch.clear();
            batch_bytes = 0;
        }
    }
    writer.ingest(store, &keys, &batch, &mut report).await?;
    writer.close(&mut report).await?;
    // Lines refused while reading are reported before the batch they sat in was parsed.
    report.rejected.sort_by_key(|b| b.line);
    let mut tx = store.begin().await?;
    audit::append(
        &mut tx,
        &NewAuditEntry::new(actor, AuditAction::ActivityIngested).details(serde_json::json!({
            "lines": report.lines,
            "ingested": report.ingested,
            "duplicates": report.duplicates,
            "rejected": report.rejected_total,
        })),
    )
    .await?;
    tx.commit().await?;
    Ok(report)
}

/// Parses, resolves and writes one batch of numbered lines: the path every piece of activity
/// takes in, from a file or from the demo's scenarios.
pub async fn ingest_batch(
    store: &Store,
    keys: &WriteKeys,
    lines: &[(u64, String)],
    report: &mut IngestReport,
) -> Result<(), MonitorError> {
    let Some(batch) = prepare_batch(store, keys, lines, report).await? else {
        return Ok(());
    };
    let comments: Vec<NewComment> = batch
        .comments
        .into_iter()
        .map(|c| NewComment {
            id: c.id,
            event_id: c.event_id,
            author_id: c.author_id,
            body: CommentBody::Public(c.text),
            created_at: c.created_at,
        })
        .collect();
    let mut tx = store.begin().await?;
    report.comments += platform::insert_comments(&mut tx, keys, &comments).await?;
    let written = platform::insert_activity(&mut tx, keys, &batch.activity).await?;
    tx.commit().await?;
    report.ingested += written;
    report.duplicates += batch.activity.len() as u64 - written;
    Ok(())
}

/// Writes ingested batches: on SQLite each in its own transaction of prepared statements
/// ([`ingest_batch`]); on Postgres with `COPY` on a connection of its own, each batch written
/// on a task while the next is parsed, resolved and sealed.
struct BatchWriter {
    /// The connection, when no batch is being written on it.
    idle: Option<BulkWriter>,
    /// The batch being written, with its record count.
    pending: Option<(u64, PendingWrite)>,
    postgres: bool,
}

type PendingWrite = tokio::task::JoinHandle<(BulkWriter, Result<Written, StoreError>)>;

impl BatchWriter {
    async fn open(store: &Store) -> Result<Self, MonitorError> {
        let idle = BulkWriter::connect(store).await?;
        Ok(Self {
            postgres: idle.is_some(),
            idle,
            pending: None,
        })
    }

    async fn ingest(
        &mut self,
        store: &Store,
        keys: &WriteKeys,
        lines: &[(u64, String)],
        report: &mut IngestReport,
    ) -> Result<(), MonitorError> {
        if !self.postgres {
            return ingest_batch(store, keys, lines, report).await;
        }
        let Some(batch) = prepare_batch(store, keys, lines, report).await? else {
            return Ok(());
        };
        let copy = CopyBatch::new(keys, &batch.comments, &batch.activity, Timestamp::now());
        self.finish(report).await?;
        let mut conn = self.idle.take().expect("the writer is idle after finish");
        let rows = copy.activity_rows();
        self.pending = Some((
            rows,
            tokio::spawn(async move {
                let r = conn.write(&copy).await;
                (conn, r)
            }),
        ));
        Ok(())
    }

    /// Waits for the last batch, then refreshes the planner's statistics if much was written
    /// (so the detector run that follows a bulk load is not planned for the table as it was).
    async fn close(mut self, report: &mut IngestReport) -> Result<(), MonitorError> {
        self.finish(report).await?;
        if let Some(mut conn) = self.idle.take() {
            if report.ingested >= INGEST_BATCH as u64 {
                conn.analyze().await?;
            }
            conn.close().await;
        }
        Ok(())
    }

    /// Waits for the batch being written, and counts it into `report`.
    async fn finish(&mut self, report: &mut IngestReport) -> Result<(), MonitorError> {
        let Some((rows, task)) = self.pending.take() else {
            return Ok(());
        };
        let (conn, written) = task
            .await
            .map_err(|e| MonitorError::Io(std::io::Error::other(e)))?;
        self.idle = Some(conn);
        let written = written?;
        report.comments += written.comments;
        report.ingested += written.activity;
        report.duplicates += rows - written.activity;
        Ok(())
    }
}

/// A batch parsed and resolved, ready to seal and write.
struct PreparedBatch {
    comments: Vec<PublicComment>,
    activity: Vec<NewActivity>,
}

/// Parses and resolves `lines`, rejecting bad ones into `report`; `None` if there are none.
async fn prepare_batch(
    store: &Store,
    keys: &WriteKeys,
    lines: &[(u64, String)],
    report: &mut IngestReport,
) -> Result<Option<PreparedBatch>, MonitorError> {
    if lines.is_empty() {
        return Ok(None);
    }
    let reject = |report: &mut IngestReport, line: u64, error: String| {
        report.rejected_total += 1;
        if report.rejected.len() < 1_000 {
            report.rejected.push(BadLine { line, error });
        }
    };
    let mut parsed = Vec::with_capacity(lines.len());
    for (n, text) in lines {
        report.lines += 1;
        match ingest::parse(text) {
            Ok(p) => parsed.push((*n, p)),
            Err(e) => reject(report, *n, e),
        }
    }
    let mut names: Vec<&str> = parsed.iter().map(|(_, p)| p.user.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    let users = repo::resolve_users(store, &names).await?;
    let mut events: Vec<uuid::Uuid> = parsed.iter().filter_map(|(_, p)| p.event).collect();
    events.sort_unstable();
    events.dedup();
    let events = repo::existing_events(store, &events).await?;
    let mut comments: Vec<uuid::Uuid> = parsed.iter().filter_map(|(_, p)| p.comment).collect();
    comments.sort_unstable();
    comments.dedup();
    let known_comments = repo::existing_comments(store, &comments).await?;

    let catch_all = if parsed
        .iter()
        .any(|(_, p)| p.content.is_some() && p.event.is_none())
    {
        let mut tx = store.begin().await?;
        let id = repo::ingest_event(&mut tx, Timestamp::now()).await?;
        tx.commit().await?;
        Some(id)
    } else {
        None
    };
    let mut activity = Vec::with_capacity(parsed.len());
    let mut new_comments = Vec::new();
    for (n, p) in parsed {
        let user = users.get(&p.user).copied();
        if user.is_none() && p.kind != Kind::Login {
            reject(report, n, "unknown user".into());
            continue;
        }
        if p.event.is_some_and(|e| !events.contains(&e)) {
            reject(report, n, "unknown event".into());
            continue;
        }
        if p.comment.is_some_and(|c| !known_comments.contains(&c)) {
            reject(report, n, "unknown comment".into());
            continue;
        }
        let mut ref_id = p.comment;
        if let (Some(text), Some(author)) = (p.content, user) {
            ref_id = Some(p.id);
            new_comments.push(PublicComment {
                id: p.id,
                event_id: p.event.or(catch_all).expect("made when needed"),
                author_id: author,
                text,
                created_at: p.at,
            });
        }
        activity.push(NewActivity {
            id: p.id,
            user_id: user,
            kind: ingest::kind_name(p.kind),
            outcome: if p.ok { "success" } else { "failure" },
            reason: p.reason,
            occurred_at: p.at,
            user_agent: p.user_agent,
            country: p.country,
            target: (p.kind == Kind::Login).then(|| keys.blind_index(BlindKind::Account, &p.user)),
            ip: p.ip,
            ref_id,
        });
    }
    Ok(Some(PreparedBatch {
        comments: new_comments,
        activity,
    }))
}

/// What a detector run did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RunReport {
    /// Activity records not judged before.
    pub new_events: u64,
    /// Records read (the new ones and the window before them).
    pub scanned: u64,
    /// Comments screened.
    pub comments_screened: u64,
    /// Detections made.
    pub detections: u64,
    /// Incidents opened.
    pub opened: u64,
    /// Detections folded into an open incident.
    pub folded: u64,
    /// Automated actions taken.
    pub actions: u64,
    /// Timed suspensions that ended.
    pub suspensions_expired: u64,
    /// Critical incidents opened, by id.
    pub critical: Vec<String>,
}

/// The checkpoint the detectors keep.
const CHECKPOINT: &str = "detectors";
/// Activity records per page of the stream.
const PAGE: i64 = 20_000;

/// Runs the detectors and the content screening over the activity ingested since the last
/// run, records what they find as incidents (with the automated responses), and moves the
/// checkpoint. Resumable and idempotent: stopped midway, the next run judges the same activity
/// again and its detections fold into the incidents already opened. Holds the `monitor` job
/// lock, so one run at a time across consoles and workers ([`MonitorError::Busy`] otherwise).
/// Needs [`Permission::MonitorRun`], and key grants to seal and open source addresses.
pub async fn run(
    store: &Store,
    ring: &KeyRing,
    actor: &Actor,
    policy: &Policy,
    screener: &Screener,
) -> Result<RunReport, MonitorError> {
    rbac::require(store, actor, Permission::MonitorRun).await?;
    let lock = store.try_job_lock(JOB).await?.ok_or(MonitorError::Busy)?;
    let result = run_locked(store, ring, actor, policy, screener).await;
    lock.release().await;
    result
}

/// The job lock a run of the detectors holds, so one runs at a time on a shared database.
pub const JOB: &str = "monitor";

async fn run_locked(
    store: &Store,
    ring: &KeyRing,
    actor: &Actor,
    policy: &Policy,
    screener: &Screener,
) -> Result<RunReport, MonitorError> {
    let keys = WriteKeys::current(store, ring, &[Purpose::Network, Purpose::BlindIndex]).await?;
    let who = AuditActor::from(actor);
    let mut report = RunReport::default();

    let mut tx = store.begin().await?;
    report.suspensions_expired = incidents::expire(&mut tx, &who, Timestamp::now()).await?;
    tx.commit().await?;

    let after = repo::checkpoint(store, CHECKPOINT).await?;
    let Some((snap, lo, hi, count)) = repo::new_span(store, after).await? else {
        return Ok(report);
    };
    report.new_events = count as u64;
    let start = lo.saturating_sub(policy.lookback_micros());
    let mut engine = Engine::new(policy, repo::profiles(store, start).await?);
    let mut findings = Vec::new();
    let mut cursor: (i64, String) = (start - 1, String::new());
    loop {
        let page = repo::stream_page(store, (cursor.0, &cursor.1), hi, after, snap, PAGE).await?;
        let Some((last, _)) = page.last() else { break };
        cursor = (last.at, last.id.clone());
        let full = page.len() as i64 == PAGE;
        for (ev, comment) in &page {
            report.scanned += 1;
            engine.feed(ev, &mut findings);
            if let (true, Some((id, body))) = (ev.fresh, comment) {
                report.comments_screened += 1;
                if let Some(f) = screen_comment(screener, ev, id, body) {
                    findings.push(f);
                }
            }
        }
        record_findings(store, ring, &keys, &who, policy, &mut findings, &mut report).await?;
        if !full {
            break;
        }
    }

    let mut tx = store.begin().await?;
    repo::set_checkpoint(&mut tx, CHECKPOINT, snap, Timestamp::now()).await?;
    audit::append(
        &mut tx,
        &NewAuditEntry::new(actor, AuditAction::MonitorRan).details(serde_json::json!({
            "new_events": report.new_events,
            "detections": report.detections,
            "opened": report.opened,
            "folded": report.folded,
            "actions": report.actions,
        })),
    )
    .await?;
    tx.commit().await?;
    Ok(report)
}

/// A finding for a comment that matched threat patterns or holds a suspicious link.
fn screen_comment(
    screener: &Screener,
    ev: &detect::Event,
    id: &str,
    body: &str,
) -> Option<Finding> {
    let user = ev.user?;
    let found = screener.screen(body);
    let malicious_urls = found
        .urls
        .iter()
        .filter(|u| u.verdict == Verdict::Malicious)
        .count();
    let suspicious_urls = found
        .urls
        .iter()
        .filter(|u| u.verdict == Verdict::Suspicious)
        .count();
    if found.categories.is_empty() && malicious_urls + suspicious_urls == 0 {
        return None;
    }
    let malicious = malicious_urls > 0 || found.categories.len() >= 2;
    let (kind, severity) = if malicious {
        (IncidentKind::MaliciousContent, Severity::High)
    } else {
        (IncidentKind::SuspiciousContent, Severity::Medium)
    };
    let mut rules: Vec<String> = found.categories.clone();
    if malicious_urls > 0 {
        rules.push("url.malicious".into());
    }
    if suspicious_urls > 0 {
        rules.push("url.suspicious".into());
    }
    let evidence = rules
        .iter()
        .flat_map(|r| {
            [
                Evidence {
                    kind: "comment",
                    ref_id: id.to_owned(),
                    rule: r.clone(),
                },
                Evidence {
                    kind: "activity",
                    ref_id: ev.id.clone(),
                    rule: r.clone(),
                },
            ]
        })
        .collect();
    Some(Finding {
        kind,
        severity,
        user: Some(user),
        source_event: Some(ev.id.clone()),
        evidence,
        summary: format!("comment matched {}", rules.join(", ")),
        dedup_key: format!("{}:{user}", kind.as_str()),
        at: ev.at,
    })
}

/// Records and clears `findings`, opening each source address to seal it on the incident
/// (and block it, if the response says so).
async fn record_findings(
    store: &Store,
    ring: &KeyRing,
    keys: &WriteKeys,
    who: &AuditActor,
    policy: &Policy,
    findings: &mut Vec<Finding>,
    report: &mut RunReport,
) -> Result<(), MonitorError> {
    if findings.is_empty() {
        return Ok(());
    }
    let mut ips: HashMap<String, Option<String>> = HashMap::new();
    for f in findings.iter() {
        if let Some(ev) = &f.source_event {
            if !ips.contains_key(ev) {
                let ip = match repo::sealed_ip(store, ev).await? {
                    Some(sealed) => {
                        let plain = ring
                            .open_field(
                                store,
                                Purpose::Network,
                                &Place::new("activity_log", "ip_enc", ev),
                                &sealed,
                            )
                            .await?;
                        Some(String::from_utf8_lossy(&plain).into_owned())
                    }
                    None => None,
                };
                ips.insert(ev.clone(), ip);
            }
        }
    }
    let now = Timestamp::now();
    let mut tx = store.begin().await?;
    for f in findings.drain(..) {
        report.detections += 1;
        let d = Detection {
            kind: f.kind,
            severity: f.severity,
            user_id: f.user,
            source_ip: f
                .source_event
                .as_ref()
                .and_then(|e| ips.get(e).cloned().flatten()),
            evidence: f.evidence,
            summary: f.summary,
            dedup_key: f.dedup_key,
            at: Timestamp::from_micros(f.at),
        };
        let r = incidents::record(&mut tx, keys, who, &policy.responses, &d, now).await?;
        if r.created {
            report.opened += 1;
            if r.severity == Severity::Critical {
                report.critical.push(r.id.to_string());
            }
        } else {
            report.folded += 1;
        }
        report.actions += r.actions.len() as u64;
    }
    tx.commit().await?;
    Ok(())
}
