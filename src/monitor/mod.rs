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
pub mod shard;

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
use crate::store::daily_counts::CountChanges;
use crate::store::{Store, StoreError, Timestamp};

use detect::{Engine, Finding, Kind};
use policy::Policy;
use screen::{Screener, Verdict};
use shard::{Shard, ShardCount};

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
    /// Other consoles or workers hold every shard of the detectors now (or one of them while
    /// the shard count has to change).
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
    crate::store::daily_counts::fold(store).await?;
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
/// ([`ingest_batch`]); on Postgres with `COPY` on [`BULK_WRITERS`] connections of their own,
/// each batch written on a task while the next is parsed, resolved and sealed.
///
/// Batches in flight at once may share ids (a file that repeats itself): each batch copies
/// its rows in id order, so two writers take the keys they share in the same order and one
/// waits for the other instead of deadlocking; the one that waited finds the key stored and
/// merges its batch through the staging tables (see [`crate::platform::bulk`]).
struct BatchWriter {
    /// Connections not writing a batch.
    idle: Vec<BulkWriter>,
    /// Batches being written, oldest first, each with its record count.
    pending: std::collections::VecDeque<(u64, PendingWrite)>,
    postgres: bool,
}

/// Connections that write batches at once on Postgres: the server's side of a copy (keys,
/// indexes, partition routing) is most of an ingestion's work, and two keep a second core busy
/// while the client parses and seals.
const BULK_WRITERS: usize = 2;

type PendingWrite = tokio::task::JoinHandle<(BulkWriter, Result<Written, StoreError>)>;

impl BatchWriter {
    async fn open(store: &Store) -> Result<Self, MonitorError> {
        let mut idle = Vec::new();
        while let Some(writer) = BulkWriter::connect(store).await? {
            idle.push(writer);
            if idle.len() == BULK_WRITERS {
                break;
            }
        }
        Ok(Self {
            postgres: !idle.is_empty(),
            idle,
            pending: Default::default(),
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
        let copy = CopyBatch::new(keys, &batch.comments, &batch.activity);
        if self.idle.is_empty() {
            self.finish_oldest(report).await?;
        }
        let mut conn = self.idle.pop().expect("a writer is idle after finish");
        let rows = copy.activity_rows();
        self.pending.push_back((
            rows,
            tokio::spawn(async move {
                let r = conn.write(&copy).await;
                (conn, r)
            }),
        ));
        Ok(())
    }

    /// Waits for the batches in flight, then refreshes the planner's statistics if much was
    /// written (so the detector run that follows a bulk load is not planned for the table as
    /// it was).
    async fn close(mut self, report: &mut IngestReport) -> Result<(), MonitorError> {
        while !self.pending.is_empty() {
            self.finish_oldest(report).await?;
        }
        if let Some(conn) = self.idle.first_mut() {
            if report.ingested >= INGEST_BATCH as u64 {
                conn.analyze().await?;
            }
        }
        for conn in self.idle {
            conn.close().await;
        }
        Ok(())
    }

    /// Waits for the oldest batch in flight, and counts it into `report`. On an error the
    /// batches still in flight finish on their own (each is one transaction).
    async fn finish_oldest(&mut self, report: &mut IngestReport) -> Result<(), MonitorError> {
        let Some((rows, task)) = self.pending.pop_front() else {
            return Ok(());
        };
        let (conn, written) = task
            .await
            .map_err(|e| MonitorError::Io(std::io::Error::other(e)))?;
        self.idle.push(conn);
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
    /// Activity records not judged before (each counted once, by the shard of its account, or
    /// of its source when it names none).
    pub new_events: u64,
    /// Records read (the new ones and the window before them): each shard this run judged
    /// reads its own.
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
    /// Source addresses of findings that did not open (altered or moved in the database):
    /// their incidents were recorded without the address.
    pub sources_unopened: u64,
    /// Critical incidents opened, by id.
    pub critical: Vec<String>,
    /// How many shards the detectors are split into (`[monitor] shards`).
    pub shards: u32,
    /// The shards this run judged, by number.
    pub shards_done: Vec<u32>,
    /// Of those, the ones judged by following on from where this worker's previous run left
    /// them (see [`Carry`]): only their new records were read.
    pub shards_followed: Vec<u32>,
    /// The shards another worker or console was judging, skipped by this run (that one
    /// finishes them; if it died, the next run takes them).
    pub shards_busy: Vec<u32>,
    /// The shard count this run changed from (1 for a database whose detectors ran before
    /// shards existed), after bringing every shard of that count to the same point.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resharded_from: Option<u32>,
}

impl RunReport {
    /// Adds what one shard's pass did.
    fn absorb(&mut self, part: RunReport) {
        self.new_events += part.new_events;
        self.scanned += part.scanned;
        self.comments_screened += part.comments_screened;
        self.detections += part.detections;
        self.opened += part.opened;
        self.folded += part.folded;
        self.actions += part.actions;
        self.sources_unopened += part.sources_unopened;
        self.critical.extend(part.critical);
        self.shards_followed.extend(part.shards_followed);
    }
}

/// Activity records per page of the stream.
const PAGE: i64 = 20_000;

/// The job lock a change of the shard count holds (with every shard's), so one worker
/// changes it at a time. Each shard's own lock is `monitor/K` ([`Shard::job`]).
pub const JOB: &str = "monitor";

/// Runs the detectors and the content screening over the activity ingested since the last
/// run, records what they find as incidents (with the automated responses), and moves the
/// checkpoints. The work is split in `shards` (see [`shard`]); the run takes every shard no
/// other worker holds, one after the other, each under its job lock and with its own
/// checkpoint and snapshot, and reports the ones it skipped. Resumable and idempotent: stopped
/// midway, the next run judges the same activity again and its detections fold into the
/// incidents already opened.
///
/// When the checkpoints were kept for another shard count (or before shards existed), the
/// run first changes the count, holding every shard's lock: the shards of the old count that
/// lag are brought to the furthest one's position, then every new shard starts from there,
/// so each record is judged exactly once across the change.
///
/// [`MonitorError::Busy`] when it could take no shard at all (or another worker holds a
/// shard while the count has to change). Needs [`Permission::MonitorRun`], and key grants to
/// seal and open source addresses.
pub async fn run(
    store: &Store,
    ring: &KeyRing,
    actor: &Actor,
    policy: &Policy,
    screener: &Screener,
    shards: ShardCount,
) -> Result<RunReport, MonitorError> {
    run_carrying(
        store,
        ring,
        actor,
        policy,
        screener,
        shards,
        &mut Carry::default(),
    )
    .await
}

/// What a worker carries from one detector run to the next: for each shard its last run
/// judged, the detectors' windows and the accounts' habits as they stood when that run moved
/// the shard's checkpoint, and the last record they read.
///
/// A run that follows on (no other worker judged the shard since, the thresholds are the
/// same, every new record happened after the last one read, and the fresh pass that built the
/// detectors was less than [`Carry::RENEW_AFTER`] ago) feeds the detectors only the
/// new records, which is what a fresh pass would judge them against: the windows hold the
/// same records and the habits the same counts. Otherwise the pass starts afresh, reading the
/// look-back window before the new records and every account's habits from the database, and
/// what was carried is dropped. Without it, each run does the latter, which at platform
/// volume is most of a run's work: an hour's window of records and a scan of the whole
/// history, however little is new.
///
/// What a fresh pass built is followed on from for [`Carry::RENEW_AFTER`] at most: the first
/// run after that drops it, and starts afresh from the database if there is anything new.
/// Records removed meanwhile (by an erasure or a retention run) leave the worker's memory
/// then, so an erased account's habits and record ids stay there an hour at most (and one
/// run interval) after the erasure.
pub struct Carry {
    shards: HashMap<Shard, Kept>,
    renew_after: std::time::Duration,
}

impl Default for Carry {
    fn default() -> Self {
        Self::renewed_after(Self::RENEW_AFTER)
    }
}

impl Carry {
    /// How long a worker follows on from the detectors a fresh pass built: an hour.
    pub const RENEW_AFTER: std::time::Duration = std::time::Duration::from_secs(3600);

    /// An empty carry whose detectors are rebuilt from the database once a fresh pass built
    /// them `age` ago.
    pub fn renewed_after(age: std::time::Duration) -> Self {
        Self {
            shards: HashMap::new(),
            renew_after: age,
        }
    }
}

/// One shard's detectors as a run left them.
struct Kept {
    engine: Engine,
    /// When the fresh pass that built them started.
    built: std::time::Instant,
    /// The checkpoint the run moved the shard to.
    checkpoint: i64,
    /// The last record fed to the detectors: `(occurred_at, id)`.
    last: (i64, String),
}

/// [`run`], following on from what `carry` holds of this worker's previous run where that is
/// still the shard's state (see [`Carry`]), and leaving in it what this run ends with.
pub async fn run_carrying(
    store: &Store,
    ring: &KeyRing,
    actor: &Actor,
    policy: &Policy,
    screener: &Screener,
    shards: ShardCount,
    carry: &mut Carry,
) -> Result<RunReport, MonitorError> {
    // Shards of another count are never followed on from.
    carry.shards.retain(|s, _| s.count() == shards);
    rbac::require(store, actor, Permission::MonitorRun).await?;
    let keys = WriteKeys::current(store, ring, &[Purpose::Network, Purpose::BlindIndex]).await?;
    let ctx = Pass {
        store,
        ring,
        keys: &keys,
        actor,
        who: AuditActor::from(actor),
        policy,
        screener,
    };
    let mut report = RunReport {
        shards: shards.get(),
        ..RunReport::default()
    };
    if Layout::read(store).await?.count() != Some(shards)
        && !reshard(&ctx, shards, &mut report).await?
    {
        return Err(MonitorError::Busy);
    }
    for shard in Shard::all(shards) {
        let Some(lock) = store.try_job_lock(&shard.job()).await? else {
            report.shards_busy.push(shard.index());
            continue;
        };
        // Another worker may have changed the count since it was read. A change away from a
        // count holds every one of its shards' locks, so under this one it stays as read now.
        if Layout::read(store).await?.count() != Some(shards) {
            tracing::warn!(
                shards = shards.get(),
                "the detectors' shard count was changed by another worker; \
                 [monitor] shards should be the same on every worker"
            );
            lock.release().await;
            report.shards_busy.push(shard.index());
            continue;
        }
        let first = report.shards_done.is_empty();
        let result = judge_locked(&ctx, shard, first, &mut report, carry).await;
        lock.release().await;
        result?;
        report.shards_done.push(shard.index());
    }
    if report.shards_done.is_empty() && report.resharded_from.is_none() {
        return Err(MonitorError::Busy);
    }
    Ok(report)
}

/// What every shard's pass of one run shares.
struct Pass<'a> {
    store: &'a Store,
    ring: &'a KeyRing,
    keys: &'a WriteKeys,
    actor: &'a Actor,
    who: AuditActor,
    policy: &'a Policy,
    screener: &'a Screener,
}

/// Where the detectors' checkpoints stand.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Layout {
    /// No checkpoint: nothing judged yet.
    Fresh,
    /// The one checkpoint from before shards existed.
    Legacy(i64),
    /// One checkpoint per shard of `count`, by shard number (a missing one at the start).
    Sharded {
        count: ShardCount,
        positions: Vec<i64>,
    },
}

impl Layout {
    async fn read(store: &Store) -> Result<Self, StoreError> {
        Self::from_rows(repo::detector_checkpoints(store).await?)
    }

    fn from_rows(rows: Vec<(String, i64)>) -> Result<Self, StoreError> {
        let mut legacy = None;
        let mut sharded: Option<(ShardCount, Vec<i64>)> = None;
        for (name, position) in rows {
            if name == shard::CHECKPOINT {
                legacy = Some(position);
                continue;
            }
            let s = Shard::parse_checkpoint(&name)
                .ok_or(StoreError::Corrupt("monitor_checkpoints.name"))?;
            let (count, positions) = sharded
                .get_or_insert_with(|| (s.count(), vec![i64::MIN; s.count().get() as usize]));
            if *count != s.count() {
                return Err(StoreError::Corrupt("monitor_checkpoints.name"));
            }
            positions[s.index() as usize] = position;
        }
        Ok(match (sharded, legacy) {
            (Some((count, positions)), _) => Layout::Sharded { count, positions },
            (None, Some(p)) => Layout::Legacy(p),
            (None, None) => Layout::Fresh,
        })
    }

    fn count(&self) -> Option<ShardCount> {
        match self {
            Layout::Sharded { count, .. } => Some(*count),
            _ => None,
        }
    }
}

/// Changes the checkpoints to `to` shards, holding the `monitor` lock and every shard's lock
/// of the old and the new count; `false` (nothing changed) if another worker holds one.
async fn reshard(
    ctx: &Pass<'_>,
    to: ShardCount,
    report: &mut RunReport,
) -> Result<bool, MonitorError> {
    let Some(global) = ctx.store.try_job_lock(JOB).await? else {
        return Ok(false);
    };
    let mut locks = vec![global];
    let result = async {
        // Read again under the lock: another worker may have just changed it.
        let layout = Layout::read(ctx.store).await?;
        if layout.count() == Some(to) {
            return Ok(true);
        }
        // Shards run only under the count the checkpoints have: changing from one needs each
        // of its shards' locks (and the new count's, for a worker configured with it). Before
        // any count (a fresh database, or one from before shards) no shard runs.
        let held = layout.count().map_or(0, |from| from.max(to).get());
        for index in 0..held {
            match ctx.store.try_job_lock(&shard::job_of(index)).await? {
                Some(l) => locks.push(l),
                None => return Ok(false),
            }
        }
        level_and_switch(ctx, layout, to, report).await?;
        Ok(true)
    }
    .await;
    for lock in locks {
        lock.release().await;
    }
    result
}

/// Brings every shard of the old layout to one position, then replaces the checkpoints with
/// `to` shards starting there. The caller holds every shard's lock.
async fn level_and_switch(
    ctx: &Pass<'_>,
    layout: Layout,
    to: ShardCount,
    report: &mut RunReport,
) -> Result<(), MonitorError> {
    let (position, from) = match &layout {
        Layout::Fresh => (i64::MIN, None),
        Layout::Legacy(p) => (*p, Some(1)),
        Layout::Sharded { count, positions } => {
            // The furthest shard's position is a snapshot an earlier run read through the
            // ingestion fence: everything stamped up to it is committed, so the others can be
            // judged up to it now.
            let top = positions.iter().copied().max().unwrap_or(i64::MIN);
            for (shard, at) in Shard::all(*count).zip(positions) {
                if *at < top {
                    judge(ctx, shard, Some(top), report, None).await?;
                }
            }
            (top, Some(count.get()))
        }
    };
    let names: Vec<String> = Shard::all(to).map(Shard::checkpoint).collect();
    let mut tx = ctx.store.begin().await?;
    repo::replace_detector_checkpoints(&mut tx, &names, position, Timestamp::now()).await?;
    if let Some(from) = from {
        audit::append(
            &mut tx,
            &NewAuditEntry::new(ctx.actor, AuditAction::MonitorRan).details(serde_json::json!({
                "shards": { "from": from, "to": to.get() },
            })),
        )
        .await?;
    }
    tx.commit().await?;
    report.resharded_from = from;
    Ok(())
}

/// Judges `shard` under its lock, ending timed suspensions first if `expire`.
async fn judge_locked(
    ctx: &Pass<'_>,
    shard: Shard,
    expire: bool,
    report: &mut RunReport,
    carry: &mut Carry,
) -> Result<(), MonitorError> {
    if expire {
        let mut tx = ctx.store.begin().await?;
        // In turn with the recording of incidents on other workers (it reinstates accounts
        // that a response may be suspending).
        crate::store::serialize_transaction(&mut tx, "monitor.incidents").await?;
        report.suspensions_expired = incidents::expire(&mut tx, &ctx.who, Timestamp::now()).await?;
        tx.commit().await?;
    }
    judge(ctx, shard, None, report, Some(carry)).await
}

/// Judges what `shard` owns of the activity ingested after its checkpoint, up to a snapshot
/// read through the ingestion fence (or up to `upto`, an earlier such snapshot), and moves its
/// checkpoint there. With a `carry`, follows on from what it holds for the shard where it can,
/// and leaves the shard's detectors in it once the checkpoint has moved.
async fn judge(
    ctx: &Pass<'_>,
    shard: Shard,
    upto: Option<i64>,
    total: &mut RunReport,
    mut carry: Option<&mut Carry>,
) -> Result<(), MonitorError> {
    let store = ctx.store;
    let name = shard.checkpoint();
    // Taken out: a pass that fails midway leaves nothing carried.
    let renew_after = carry.as_ref().map(|c| c.renew_after);
    let kept = carry.as_mut().and_then(|c| c.shards.remove(&shard));
    let after = repo::checkpoint(store, &name).await?;
    let kept = kept.filter(|k| {
        k.checkpoint == after
            && k.engine.policy() == ctx.policy
            && renew_after.is_some_and(|age| k.built.elapsed() < age)
    });
    // Nothing stamped at or before the snapshot commits after it (the ingestion fence).
    let snap = match upto {
        Some(at) => Some(at),
        None => store.settled_ingestion().await?,
    };
    let span = match snap.filter(|s| *s > after) {
        Some(snap) => repo::new_span(store, after, snap)
            .await?
            .map(|span| (snap, span)),
        None => None,
    };
    let Some((snap, (lo, hi, _))) = span else {
        // Nothing new: the checkpoint stays, and so does what was carried.
        if let (Some(carry), Some(kept)) = (carry, kept) {
            carry.shards.insert(shard, kept);
        }
        return Ok(());
    };
    let mut report = RunReport::default();
    // Following on needs every new record to come after the last one read: one that happened
    // before it belongs among records already fed, and only a fresh pass puts it there.
    let (mut engine, mut cursor, built) = match kept.filter(|k| lo > k.last.0) {
        Some(k) => {
            report.shards_followed.push(shard.index());
            (k.engine, k.last, k.built)
        }
        None => {
            let built = std::time::Instant::now();
            let start = lo.saturating_sub(ctx.policy.lookback_micros());
            let engine = Engine::for_shard(ctx.policy, repo::profiles(store, start).await?, shard);
            (engine, (start - 1, String::new()), built)
        }
    };
    let mut findings = Vec::new();
    loop {
        let page =
            repo::stream_page(store, shard, (cursor.0, &cursor.1), hi, after, snap, PAGE).await?;
        let Some((last, _)) = page.last() else { break };
        cursor = (last.at, last.id.clone());
        let full = page.len() as i64 == PAGE;
        for (ev, comment) in &page {
            report.scanned += 1;
            engine.feed(ev, &mut findings);
            if !ev.fresh || !shard.owns_record(ev) {
                continue;
            }
            report.new_events += 1;
            if let Some((id, body)) = comment {
                report.comments_screened += 1;
                if let Some(f) = screen_comment(ctx.screener, ev, id, body) {
                    findings.push(f);
                }
            }
        }
        record_findings(ctx, &mut findings, &mut report).await?;
        if !full {
            break;
        }
    }

    let mut tx = store.begin().await?;
    repo::set_checkpoint(&mut tx, &name, snap, Timestamp::now()).await?;
    audit::append(
        &mut tx,
        &NewAuditEntry::new(ctx.actor, AuditAction::MonitorRan).details(serde_json::json!({
            "shard": format!("{}/{}", shard.index(), shard.count()),
            "new_events": report.new_events,
            "detections": report.detections,
            "opened": report.opened,
            "folded": report.folded,
            "actions": report.actions,
            "sources_unopened": report.sources_unopened,
        })),
    )
    .await?;
    tx.commit().await?;
    if let Some(carry) = carry {
        engine.forget_idle(cursor.0);
        carry.shards.insert(
            shard,
            Kept {
                engine,
                built,
                checkpoint: snap,
                last: cursor,
            },
        );
    }
    total.absorb(report);
    Ok(())
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
    ctx: &Pass<'_>,
    findings: &mut Vec<Finding>,
    report: &mut RunReport,
) -> Result<(), MonitorError> {
    if findings.is_empty() {
        return Ok(());
    }
    let store = ctx.store;
    let mut sources: Vec<&str> = findings
        .iter()
        .filter_map(|f| f.source_event.as_deref())
        .collect();
    sources.sort_unstable();
    sources.dedup();
    let mut ips: HashMap<String, String> = HashMap::new();
    for (record, sealed) in repo::sealed_ips(store, &sources).await? {
        let place = Place::new("activity_log", "ip_enc", &record);
        match ctx
            .ring
            .open_field(store, Purpose::Network, &place, &sealed)
            .await
        {
            Ok(plain) => {
                ips.insert(record, String::from_utf8_lossy(&plain).into_owned());
            }
            // A stored address that does not open (altered or moved there by someone with
            // write access to the table) must not stop the detectors: the incident is
            // recorded without it, and the record is named for whoever looks into it.
            Err(KeyError::Field(e)) => {
                tracing::warn!(
                    record = %record,
                    error = %e,
                    "an activity record's source address does not open; its incident is \
                     recorded without the address"
                );
                report.sources_unopened += 1;
            }
            Err(e) => return Err(e.into()),
        }
    }
    let now = Timestamp::now();
    let mut tx = store.begin().await?;
    // Shards record one at a time: each dedup key belongs to one shard, but an automated
    // response can reach an account of another shard (the account a credential-stuffing run
    // got into), and recording in turn keeps those from crossing or deadlocking.
    crate::store::serialize_transaction(&mut tx, "monitor.incidents").await?;
    let mut counts = CountChanges::new();
    let mut recorder = incidents::Recorder::default();
    for f in findings.drain(..) {
        report.detections += 1;
        let d = Detection {
            kind: f.kind,
            severity: f.severity,
            user_id: f.user,
            source_ip: f.source_event.as_ref().and_then(|e| ips.get(e).cloned()),
            evidence: f.evidence,
            summary: f.summary,
            dedup_key: f.dedup_key,
            at: Timestamp::from_micros(f.at),
        };
        let r = recorder
            .record(
                &mut tx,
                &mut counts,
                ctx.keys,
                &ctx.who,
                &ctx.policy.responses,
                &d,
                now,
            )
            .await?;
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
    counts.write(&mut tx).await?;
    tx.commit().await?;
    crate::store::daily_counts::fold(store).await?;
    Ok(())
}
