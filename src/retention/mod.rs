//! Data retention: a policy per category of data, a dry run that says what is due and what is
//! held back, and a run that applies the policies a chunk at a time.
//!
//! | category | default | action |
//! |---|---|---|
//! | `comments` | 5 years | anonymise the author (the thread stays readable) |
//! | `activity` | 90 days | delete |
//! | `sessions` | 30 days after they expire | delete (with refresh tokens, revoked token ids, sign-in challenges) |
//! | `audit` | 7 years | archive to compressed segments ([`crate::audit::archive`]) |
//! | `deleted_users` | 30 days after deletion | delete the account for good |
//!
//! A record is *held* — left alone, and counted as such — while its account (or, for activity
//! and comments, the record itself as evidence) is under a legal hold, is the subject of an open
//! incident, or of an open data-subject request.
//!
//! A run takes the `retention` job lock, so one runs at a time across every console and worker.
//! Each chunk is one transaction that also records the run's cursor and counts, so a run cut
//! short (a crash, a kill, a lost connection) resumes where it stopped: the next run picks up
//! the interrupted one first, with the same cutoff time. A caller may also ask a run to stop
//! (its progress callback answers [`ControlFlow::Break`]): it stops after the chunk in hand,
//! as a killed run would, and resumes the same way.

mod repo;

use std::collections::BTreeMap;
use std::ops::ControlFlow;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::audit::{self, archive, AuditAction, NewAuditEntry};
use crate::identity::Actor;
use crate::rbac::{self, Forbidden, Permission};
use crate::store::{Backend, Store, StoreError, Timestamp, Tx};

/// The job lock a run holds.
pub const JOB: &str = "retention";

/// The chunk bounds are read with the configuration (`[retention] chunk`), a floor below.
pub use crate::config::{DEFAULT_CHUNK, MAX_CHUNK};

/// Microseconds in a day.
const DAY: i64 = 86_400 * 1_000_000;

/// A category of data with a retention policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    /// Comments.
    Comments,
    /// Activity records (sign-ins, submissions) that feed the detectors.
    Activity,
    /// Operator sessions and expired tokens.
    Sessions,
    /// The audit log.
    Audit,
    /// Accounts deleted on the platform, kept a while as a backup.
    DeletedUsers,
}

impl Category {
    /// Every category, in the order a run applies them.
    pub const ALL: [Category; 5] = [
        Category::Activity,
        Category::Comments,
        Category::Sessions,
        Category::DeletedUsers,
        Category::Audit,
    ];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Category::Comments => "comments",
            Category::Activity => "activity",
            Category::Sessions => "sessions",
            Category::Audit => "audit",
            Category::DeletedUsers => "deleted_users",
        }
    }

    /// Parses a stored or typed name.
    pub fn parse(s: &str) -> Option<Category> {
        Category::ALL.into_iter().find(|c| c.as_str() == s)
    }

    /// The default policy.
    pub fn default_policy(self) -> (u32, PolicyAction) {
        match self {
            Category::Comments => (1_825, PolicyAction::Anonymize),
            Category::Activity => (90, PolicyAction::Delete),
            Category::Sessions => (30, PolicyAction::Delete),
            Category::Audit => (2_555, PolicyAction::Archive),
            Category::DeletedUsers => (30, PolicyAction::Delete),
        }
    }

    /// The actions this category allows.
    pub fn actions(self) -> &'static [PolicyAction] {
        match self {
            Category::Comments => &[PolicyAction::Anonymize, PolicyAction::Delete],
            Category::Audit => &[PolicyAction::Archive],
            _ => &[PolicyAction::Delete],
        }
    }

    /// The shortest period allowed, in days: the audit log stays live for at least a year, and
    /// comments for a month.
    pub fn min_days(self) -> u32 {
        match self {
            Category::Audit => 365,
            Category::Comments => 30,
            _ => 1,
        }
    }
}

impl std::fmt::Display for Category {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a policy does with records past their period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PolicyAction {
    /// Delete them (comments: soft delete, keeping a placeholder so replies still thread).
    Delete,
    /// Remove the link to the person, keep the record.
    Anonymize,
    /// Move them to the archive.
    Archive,
}

impl PolicyAction {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            PolicyAction::Delete => "delete",
            PolicyAction::Anonymize => "anonymize",
            PolicyAction::Archive => "archive",
        }
    }

    /// Parses a stored or typed name (`anonymise` too).
    pub fn parse(s: &str) -> Option<PolicyAction> {
        match s {
            "delete" => Some(PolicyAction::Delete),
            "anonymize" | "anonymise" => Some(PolicyAction::Anonymize),
            "archive" => Some(PolicyAction::Archive),
            _ => None,
        }
    }
}

/// Longest period a policy may have, in days (100 years).
pub const MAX_DAYS: u32 = 36_500;

/// A retention policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Policy {
    /// The category.
    pub category: Category,
    /// How long records are kept, in days.
    pub period_days: u32,
    /// What happens to them then.
    pub action: PolicyAction,
    /// Whether runs apply it.
    pub enabled: bool,
    /// When it was last changed (`None`: the default, never changed).
    pub updated_at: Option<Timestamp>,
    /// Who changed it.
    pub updated_by: Option<String>,
}

/// A change to a policy; `None` keeps the current value.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct PolicyChange {
    /// New period in days.
    pub period_days: Option<u32>,
    /// New action.
    pub action: Option<PolicyAction>,
    /// Enable or disable.
    pub enabled: Option<bool>,
}

/// Errors of retention.
#[derive(Debug, thiserror::Error)]
pub enum RetentionError {
    /// The actor lacks the permission.
    #[error(transparent)]
    Forbidden(#[from] Forbidden),
    /// Input refused, with why.
    #[error("{0}")]
    Invalid(String),
    /// Another console or worker is running retention now.
    #[error("a retention run is in progress on another console or worker; try again when it ends")]
    Busy,
    /// Archiving the audit log failed (the folder, the manifest, or a break in the chain).
    #[error(transparent)]
    Archive(#[from] archive::ArchiveError),
    /// No archive folder is configured and none can be found.
    #[error("no audit archive folder: set [retention] archive_dir or VIGIL_ARCHIVE_DIR")]
    NoArchiveDir,
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The caller asked the run to stop (its progress callback answered
    /// [`ControlFlow::Break`]): it stopped after the chunk it had committed, exactly as a killed
    /// run does, and the next run resumes it.
    #[error("the retention run stopped where it was asked to; the next run resumes it")]
    Stopped,
}

impl From<sqlx::Error> for RetentionError {
    fn from(e: sqlx::Error) -> Self {
        RetentionError::Store(e.into())
    }
}

/// Every policy, in run order. Needs [`Permission::RetentionRead`].
pub async fn policies(store: &Store, actor: &Actor) -> Result<Vec<Policy>, RetentionError> {
    rbac::require(store, actor, Permission::RetentionRead).await?;
    load_policies(store).await
}

async fn load_policies(store: &Store) -> Result<Vec<Policy>, RetentionError> {
    let rows = repo::policies(store).await?;
    Ok(Category::ALL
        .into_iter()
        .map(|c| {
            let (days, action) = c.default_policy();
            match rows.iter().find(|r| r.0 == c.as_str()) {
                Some(r) => Policy {
                    category: c,
                    period_days: u32::try_from(r.1).unwrap_or(days),
                    action: PolicyAction::parse(&r.2)
                        .filter(|a| c.actions().contains(a))
                        .unwrap_or(action),
                    enabled: r.3,
                    updated_at: (r.4 > 0).then(|| Timestamp::from_micros(r.4)),
                    updated_by: r.5.clone(),
                },
                None => Policy {
                    category: c,
                    period_days: days,
                    action,
                    enabled: true,
                    updated_at: None,
                    updated_by: None,
                },
            }
        })
        .collect())
}

/// Checks a change against the category's rules; the error says what is allowed.
pub fn validate(category: Category, change: &PolicyChange) -> Result<(), RetentionError> {
    if let Some(days) = change.period_days {
        let min = category.min_days();
        if !(min..=MAX_DAYS).contains(&days) {
            return Err(RetentionError::Invalid(format!(
                "the {category} period must be from {min} to {MAX_DAYS} days, not {days}"
            )));
        }
    }
    if let Some(action) = change.action {
        if !category.actions().contains(&action) {
            let allowed: Vec<&str> = category.actions().iter().map(|a| a.as_str()).collect();
            return Err(RetentionError::Invalid(format!(
                "{category} records cannot be given the {} action; allowed: {}",
                action.as_str(),
                allowed.join(" or ")
            )));
        }
    }
    Ok(())
}

/// Changes a policy, with an audit entry naming the old and new values. Needs
/// [`Permission::RetentionManage`]. An invalid change is refused and changes nothing.
pub async fn set_policy(
    store: &Store,
    actor: &Actor,
    category: Category,
    change: &PolicyChange,
) -> Result<Policy, RetentionError> {
    rbac::require(store, actor, Permission::RetentionManage).await?;
    validate(category, change)?;
    let old = load_policies(store)
        .await?
        .into_iter()
        .find(|p| p.category == category)
        .expect("every category has a policy");
    let period = change.period_days.unwrap_or(old.period_days);
    let action = change.action.unwrap_or(old.action);
    let enabled = change.enabled.unwrap_or(old.enabled);
    let mut tx = store.begin().await?;
    repo::upsert_policy(
        &mut tx,
        category.as_str(),
        i64::from(period),
        action.as_str(),
        enabled,
        &actor.user_id().to_string(),
        Timestamp::now().micros(),
    )
    .await?;
    audit::append(
        &mut tx,
        &NewAuditEntry::new(actor, AuditAction::RetentionPolicyChanged)
            .target(format!("retention:{category}"))
            .details(serde_json::json!({
                "from": { "period_days": old.period_days, "action": old.action, "enabled": old.enabled },
                "to": { "period_days": period, "action": action, "enabled": enabled },
            })),
    )
    .await?;
    tx.commit().await.map_err(StoreError::from)?;
    load_policies(store)
        .await?
        .into_iter()
        .find(|p| p.category == category)
        .ok_or_else(|| RetentionError::Invalid("policy vanished".into()))
}

/// Records held back, by the first reason that applies.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Held {
    /// Under a legal hold (on the account, or on an incident about it or citing the record).
    pub legal_hold: u64,
    /// Tied to an open incident.
    pub open_incident: u64,
    /// The subject of an open data-subject request.
    pub open_request: u64,
}

impl Held {
    /// All held records.
    pub fn total(&self) -> u64 {
        self.legal_hold + self.open_incident + self.open_request
    }
}

/// What one policy would do now.
#[derive(Debug, Clone, Serialize)]
pub struct PlanItem {
    /// The category.
    pub category: Category,
    /// Its action.
    pub action: PolicyAction,
    /// Its period.
    pub period_days: u32,
    /// Whether runs apply it.
    pub enabled: bool,
    /// Records older than this are past their period.
    pub cutoff: Timestamp,
    /// Records the policy would act on now.
    pub due: u64,
    /// The oldest of them.
    pub oldest: Option<Timestamp>,
    /// Records past their period that holds keep.
    pub held: Held,
}

/// The dry run: per policy, what is due as of `as_of` (now, unless testing a date), the oldest,
/// and what is held back and why. Changes nothing. Needs [`Permission::RetentionRead`].
pub async fn plan(
    store: &Store,
    actor: &Actor,
    as_of: Option<Timestamp>,
) -> Result<Vec<PlanItem>, RetentionError> {
    rbac::require(store, actor, Permission::RetentionRead).await?;
    let as_of = as_of.unwrap_or_else(Timestamp::now);
    let mut out = Vec::new();
    for p in load_policies(store).await? {
        let cutoff = cutoff(as_of, p.period_days);
        let (due, oldest, held) = if p.category == Category::Audit {
            let (n, oldest) = archive::due(store, cutoff).await?;
            (n, oldest, Held::default())
        } else {
            let mut due = 0u64;
            let mut oldest: Option<i64> = None;
            let mut held = Held::default();
            for t in repo::targets(p.category, p.action) {
                let tp = repo::plan(store, t, cutoff.micros()).await?;
                let n = |v: i64| u64::try_from(v).unwrap_or(0);
                held.legal_hold += n(tp.legal);
                held.open_incident += n(tp.incident);
                held.open_request += n(tp.request);
                due += n(tp.total - tp.legal - tp.incident - tp.request);
                oldest = match (oldest, tp.oldest_free) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
            }
            (due, oldest.map(Timestamp::from_micros), held)
        };
        out.push(PlanItem {
            category: p.category,
            action: p.action,
            period_days: p.period_days,
            enabled: p.enabled,
            cutoff,
            due,
            oldest,
            held,
        });
    }
    Ok(out)
}

fn cutoff(as_of: Timestamp, days: u32) -> Timestamp {
    Timestamp::from_micros(as_of.micros() - i64::from(days) * DAY)
}

/// How to run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Only this policy (every enabled one if `None`).
    pub policy: Option<Category>,
    /// Records per chunk (one transaction each).
    pub chunk: u32,
    /// Judge ages as of this time (now if `None`; for tests and previews of a date).
    pub as_of: Option<Timestamp>,
    /// Where archived audit segments go.
    pub archive_dir: Option<PathBuf>,
    /// Fault injection for crash tests: abort the process inside the transaction of this
    /// chunk (counting from 1), after its changes and before its commit.
    pub abort_in_chunk: Option<u64>,
}

impl Default for RunOptions {
    fn default() -> Self {
        Self {
            policy: None,
            chunk: DEFAULT_CHUNK,
            as_of: None,
            archive_dir: None,
            abort_in_chunk: None,
        }
    }
}

/// What a run did to one policy's records.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PolicyCounts {
    /// Records deleted, anonymised or archived.
    pub done: u64,
    /// Records past their period that holds kept.
    pub held: u64,
    /// Chunks (transactions; archive segments for the audit log).
    pub chunks: u64,
    /// Whole month partitions dropped (activity on Postgres), a chunk each; their rows are in
    /// `done`.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub partitions: u64,
    /// Seconds spent, across resumptions.
    pub seconds: f64,
    /// The policy was disabled and skipped.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub skipped: bool,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// A policy that failed in a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunFault {
    /// The policy.
    pub policy: Category,
    /// What went wrong.
    pub message: String,
}

/// A run's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Under way, or interrupted (it resumes on the next run).
    Running,
    /// Every policy applied.
    Completed,
    /// At least one policy failed; the others applied.
    Failed,
}

/// A run, as recorded.
#[derive(Debug, Clone, Serialize)]
pub struct RunRecord {
    /// Id.
    pub id: uuid::Uuid,
    /// The one policy it ran, or `None` for all.
    pub policy: Option<Category>,
    /// Status.
    pub status: RunStatus,
    /// Who started it (username).
    pub started_by: Option<String>,
    /// Start.
    pub started_at: Timestamp,
    /// End.
    pub finished_at: Option<Timestamp>,
    /// The time ages were judged against.
    pub as_of: Timestamp,
    /// Per policy.
    pub counts: BTreeMap<Category, PolicyCounts>,
    /// Failures.
    pub errors: Vec<RunFault>,
    /// Whether this call resumed an interrupted run (only in a run's own report).
    #[serde(default)]
    pub resumed: bool,
}

/// Progress of a run, after each chunk.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Progress {
    /// The policy being applied.
    pub policy: Category,
    /// Records acted on or passed over (held) so far in this policy.
    pub done: u64,
    /// Records past their period when the policy started (held ones included).
    pub due: u64,
}

/// Where an interrupted run stopped: the policy, the target within it and the last row done.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct RunCursor {
    policy: Category,
    target: usize,
    after: (i64, String),
}

/// Recent runs, newest first. Needs [`Permission::RetentionRead`].
pub async fn runs(
    store: &Store,
    actor: &Actor,
    limit: u32,
) -> Result<Vec<RunRecord>, RetentionError> {
    rbac::require(store, actor, Permission::RetentionRead).await?;
    repo::runs(store, i64::from(limit.clamp(1, 500)))
        .await?
        .into_iter()
        .map(record)
        .collect()
}

fn record(r: repo::RunRow) -> Result<RunRecord, RetentionError> {
    Ok(RunRecord {
        id: uuid::Uuid::parse_str(&r.id)
            .map_err(|_| RetentionError::Invalid("bad run id".into()))?,
        policy: r.policy.as_deref().and_then(Category::parse),
        status: match r.status.as_str() {
            "running" => RunStatus::Running,
            "completed" => RunStatus::Completed,
            _ => RunStatus::Failed,
        },
        started_by: r.started_by,
        started_at: Timestamp::from_micros(r.started_at),
        finished_at: r.finished_at.map(Timestamp::from_micros),
        as_of: Timestamp::from_micros(r.as_of.unwrap_or(r.started_at)),
        counts: serde_json::from_str(&r.counts).unwrap_or_default(),
        errors: r
            .errors
            .as_deref()
            .and_then(|e| serde_json::from_str(e).ok())
            .unwrap_or_default(),
        resumed: false,
    })
}

/// Whether a scheduled run is due: an interrupted run waits, or no full run started within
/// `interval`.
pub async fn schedule_due(
    store: &Store,
    interval: std::time::Duration,
) -> Result<bool, StoreError> {
    if repo::interrupted_run(store).await?.is_some() {
        return Ok(true);
    }
    let every = i64::try_from(interval.as_micros()).unwrap_or(i64::MAX);
    Ok(match repo::last_full_run(store).await? {
        Some(last) => Timestamp::now().micros() - last >= every,
        None => true,
    })
}

/// Applies the policies: resumes an interrupted run first if there is one (with its own scope
/// and cutoff time), otherwise starts a new one. Holds the `retention` job lock throughout; if
/// another console or worker holds it, returns [`RetentionError::Busy`] and changes nothing.
/// Needs [`Permission::RetentionManage`].
pub async fn run(
    store: &Store,
    actor: &Actor,
    options: &RunOptions,
    progress: &mut (dyn FnMut(Progress) -> ControlFlow<()> + Send),
) -> Result<RunRecord, RetentionError> {
    rbac::require(store, actor, Permission::RetentionManage).await?;
    if !(1..=MAX_CHUNK).contains(&options.chunk) {
        return Err(RetentionError::Invalid(
            "the chunk size must be from 1 to 200,000 records".into(),
        ));
    }
    let lock = store.try_job_lock(JOB).await?.ok_or(RetentionError::Busy)?;
    let result = run_locked(store, actor, options, progress).await;
    lock.release().await;
    result
}

/// A scheduled run: under the job lock, runs only if one is due ([`schedule_due`]): `None` when
/// none is, [`RetentionError::Busy`] when another console or worker holds the lock. Checking
/// under the lock means two workers never both start the day's run.
pub async fn run_scheduled(
    store: &Store,
    actor: &Actor,
    options: &RunOptions,
    interval: std::time::Duration,
    progress: &mut (dyn FnMut(Progress) -> ControlFlow<()> + Send),
) -> Result<Option<RunRecord>, RetentionError> {
    rbac::require(store, actor, Permission::RetentionManage).await?;
    let lock = store.try_job_lock(JOB).await?.ok_or(RetentionError::Busy)?;
    let result = match schedule_due(store, interval).await {
        Ok(true) => run_locked(store, actor, options, progress).await.map(Some),
        Ok(false) => Ok(None),
        Err(e) => Err(e.into()),
    };
    lock.release().await;
    result
}

async fn run_locked(
    store: &Store,
    actor: &Actor,
    options: &RunOptions,
    progress: &mut (dyn FnMut(Progress) -> ControlFlow<()> + Send),
) -> Result<RunRecord, RetentionError> {
    let (mut rec, mut cursor) = match repo::interrupted_run(store).await? {
        Some(row) => {
            let cursor: Option<RunCursor> = row
                .cursor
                .as_deref()
                .and_then(|c| serde_json::from_str(c).ok());
            let mut rec = record(row)?;
            rec.resumed = true;
            (rec, cursor)
        }
        None => {
            let id = uuid::Uuid::now_v7();
            let now = Timestamp::now();
            let as_of = options.as_of.unwrap_or(now);
            repo::insert_run(
                store,
                &id.to_string(),
                options.policy.map(Category::as_str),
                &actor.user_id().to_string(),
                now.micros(),
                as_of.micros(),
            )
            .await?;
            let rec = RunRecord {
                id,
                policy: options.policy,
                status: RunStatus::Running,
                started_by: Some(actor.username().to_string()),
                started_at: now,
                finished_at: None,
                as_of,
                counts: BTreeMap::new(),
                errors: Vec::new(),
                resumed: false,
            };
            (rec, None)
        }
    };
    let policies = load_policies(store).await?;
    let mut chunks_here = 0u64;
    for category in Category::ALL {
        if rec.policy.is_some_and(|p| p != category) {
            continue;
        }
        // A resumed run skips the policies it finished before it stopped.
        if let Some(c) = &cursor {
            if Category::ALL.iter().position(|x| *x == category)
                < Category::ALL.iter().position(|x| *x == c.policy)
            {
                continue;
            }
        }
        let policy = policies
            .iter()
            .find(|p| p.category == category)
            .expect("every category has a policy");
        if !policy.enabled {
            rec.counts.entry(category).or_default().skipped = true;
            continue;
        }
        let started = std::time::Instant::now();
        let applied = if category == Category::Audit {
            archive_policy(store, &mut rec, policy, options, progress).await
        } else {
            let start = cursor.take().filter(|c| c.policy == category);
            apply_policy(
                store,
                &mut rec,
                policy,
                options,
                start,
                &mut chunks_here,
                progress,
            )
            .await
        };
        cursor = None;
        rec.counts.entry(category).or_default().seconds += started.elapsed().as_secs_f64();
        if let Err(RetentionError::Stopped) = applied {
            // Left as it is, the run is an interrupted one: the next run resumes it.
            return Err(RetentionError::Stopped);
        }
        if let Err(e) = applied {
            tracing::warn!(policy = %category, error = %e, "retention policy failed");
            rec.errors.push(RunFault {
                policy: category,
                message: e.to_string(),
            });
        }
    }
    finish(store, actor, rec).await
}

/// Applies one policy's action to its tables, a chunk per transaction.
async fn apply_policy(
    store: &Store,
    rec: &mut RunRecord,
    policy: &Policy,
    options: &RunOptions,
    start: Option<RunCursor>,
    chunks_here: &mut u64,
    progress: &mut (dyn FnMut(Progress) -> ControlFlow<()> + Send),
) -> Result<(), RetentionError> {
    let category = policy.category;
    // Past the period as of now too: the drop function judges by the server's clock, whatever
    // time the run judges ages as of.
    let settled = cutoff(Timestamp::now(), policy.period_days).micros();
    let cutoff = cutoff(rec.as_of, policy.period_days).micros();
    if category == Category::Activity && policy.action == PolicyAction::Delete {
        drop_partitions(
            store,
            rec,
            (cutoff.min(settled), options),
            start.as_ref(),
            chunks_here,
            progress,
        )
        .await?;
    }
    let targets = repo::targets(category, policy.action);
    let mut due_per_target = Vec::with_capacity(targets.len());
    for t in targets {
        due_per_target.push(u64::try_from(repo::count_due(store, t, cutoff).await?).unwrap_or(0));
    }
    let due: u64 = due_per_target.iter().sum();
    let (first_target, mut after) = match start {
        Some(c) => (c.target, c.after),
        None => (0, (i64::MIN, String::new())),
    };
    let mut seen = 0u64;
    for (ti, t) in targets.iter().enumerate().skip(first_target) {
        if ti != first_target {
            after = (i64::MIN, String::new());
        }
        let deferred = defer_for_bulk(store, t, due_per_target[ti], options.chunk).await?;
        let walked = walk_target(
            store,
            rec,
            policy,
            options,
            (ti, t),
            cutoff,
            &mut after,
            (&mut seen, due),
            chunks_here,
            progress,
        )
        .await;
        // Rebuilt on failure too (the walk's error is the one reported); had the process
        // died, the next open would rebuild them.
        let rebuilt = match deferred {
            0 => Ok(0),
            _ => store.rebuild_deferred_indexes().await,
        };
        walked?;
        rebuilt?;
    }
    Ok(())
}

/// On Postgres, drops each month partition of `activity_log` entirely before the cutoff that
/// holds no held record, one transaction each (recording the run's counts with it, so a run
/// cut short resumes with them; each counts as a chunk); its rows count as done. A month
/// holding a held record is kept, and the chunked deletes that follow clear its other rows, as
/// they clear the month the cutoff falls in. A partition that cannot be dropped now (its lock
/// not granted in time) is left to those deletes too.
async fn drop_partitions(
    store: &Store,
    rec: &mut RunRecord,
    (cutoff, options): (i64, &RunOptions),
    resumed_at: Option<&RunCursor>,
    chunks_here: &mut u64,
    progress: &mut (dyn FnMut(Progress) -> ControlFlow<()> + Send),
) -> Result<(), RetentionError> {
    use crate::store::partitions;
    let mut seen = 0u64;
    for p in partitions::list(store).await? {
        if p.end > cutoff {
            break;
        }
        let mut tx = store.begin().await?;
        let rows = match partitions::drop_month(&mut tx, p.start, cutoff).await {
            Ok(Some(rows)) => u64::try_from(rows).unwrap_or(0),
            Ok(None) => continue,
            Err(e) => {
                tracing::warn!(partition = %p.name, error = %e,
                    "retention: month partition not dropped; its rows are deleted instead");
                continue;
            }
        };
        let counts = rec.counts.entry(Category::Activity).or_default();
        counts.done += rows;
        counts.partitions += 1;
        counts.chunks += 1;
        seen += rows;
        // Where the chunked deletes are to start (a resumed run's own place).
        let cursor = resumed_at.cloned().unwrap_or(RunCursor {
            policy: Category::Activity,
            target: 0,
            after: (i64::MIN, String::new()),
        });
        tracing::info!(partition = %p.name, rows, "retention: month partition dropped");
        let report = Progress {
            policy: Category::Activity,
            done: seen,
            due: seen,
        };
        end_chunk(
            tx,
            rec,
            &cursor,
            Some((options, chunks_here)),
            progress,
            report,
        )
        .await?;
    }
    Ok(())
}

/// On SQLite, drops a target's indexes keyed by person when this run clears most of the table
/// in several chunks: each chunk of old rows would otherwise rewrite nearly every page of them,
/// while building them again over the rows that stay is one sort. Lookups by person scan the
/// table until they are rebuilt. Returns how many it dropped.
async fn defer_for_bulk(
    store: &Store,
    t: &repo::Target,
    due: u64,
    chunk: u32,
) -> Result<usize, StoreError> {
    if store.backend() != Backend::Sqlite || t.by_person.is_empty() || due < 2 * u64::from(chunk) {
        return Ok(0);
    }
    let rows = u64::try_from(repo::count_rows(store, t).await?).unwrap_or(0);
    if due * 2 < rows {
        return Ok(0);
    }
    let dropped = store.defer_named_indexes(t.table, t.by_person).await?;
    tracing::info!(
        table = t.table,
        dropped,
        due,
        rows,
        "retention: indexes by person dropped for the run"
    );
    Ok(dropped)
}

/// Walks one target from `after` a chunk per transaction, applying the policy's action.
#[allow(clippy::too_many_arguments)]
async fn walk_target(
    store: &Store,
    rec: &mut RunRecord,
    policy: &Policy,
    options: &RunOptions,
    (ti, t): (usize, &repo::Target),
    cutoff: i64,
    after: &mut repo::Cursor,
    (seen, due): (&mut u64, u64),
    chunks_here: &mut u64,
    progress: &mut (dyn FnMut(Progress) -> ControlFlow<()> + Send),
) -> Result<(), RetentionError> {
    let category = policy.category;
    loop {
        let mut tx = store.begin().await?;
        let upper = repo::chunk_end(&mut tx, t, cutoff, after, options.chunk).await?;
        let (done, held) = repo::act(
            &mut tx,
            t,
            policy.action,
            cutoff,
            after,
            upper.as_ref(),
            Timestamp::now().micros(),
        )
        .await?;
        let counts = rec.counts.entry(category).or_default();
        counts.done += done;
        counts.held += held;
        counts.chunks += 1;
        *seen += done + held;
        let next = match &upper {
            Some(u) => RunCursor {
                policy: category,
                target: ti,
                after: u.clone(),
            },
            // The target is finished: the next one starts from the beginning.
            None => RunCursor {
                policy: category,
                target: ti + 1,
                after: (i64::MIN, String::new()),
            },
        };
        let report = Progress {
            policy: category,
            done: *seen,
            due: due.max(*seen),
        };
        end_chunk(
            tx,
            rec,
            &next,
            Some((options, chunks_here)),
            progress,
            report,
        )
        .await?;
        match upper {
            Some(u) => *after = u,
            None => return Ok(()),
        }
    }
}

/// Archives the audit log's entries past their period, a segment at a time.
async fn archive_policy(
    store: &Store,
    rec: &mut RunRecord,
    policy: &Policy,
    options: &RunOptions,
    progress: &mut (dyn FnMut(Progress) -> ControlFlow<()> + Send),
) -> Result<(), RetentionError> {
    let cutoff = cutoff(rec.as_of, policy.period_days);
    let (due, _) = archive::due(store, cutoff).await?;
    if due == 0 {
        return Ok(());
    }
    let dir = options
        .archive_dir
        .clone()
        .ok_or(RetentionError::NoArchiveDir)?;
    let mut seen = 0u64;
    loop {
        let segment = archive::archive_next(store, &dir, cutoff, options.chunk).await?;
        let Some(segment) = segment else { break };
        let counts = rec.counts.entry(Category::Audit).or_default();
        counts.done += segment.entries;
        counts.chunks += 1;
        seen += segment.entries;
        let tx = store.begin().await?;
        let cursor = RunCursor {
            policy: Category::Audit,
            target: 0,
            after: (segment.last_seq, String::new()),
        };
        let report = Progress {
            policy: Category::Audit,
            done: seen,
            due: due.max(seen),
        };
        end_chunk(tx, rec, &cursor, None, progress, report).await?;
    }
    Ok(())
}

/// Ends a chunk: saves where the run is (`next`) and its counts in `tx`, commits, and reports
/// `report`; an answer to stop ends the run as [`RetentionError::Stopped`], to be resumed from
/// `next`. With `fault`, the chunk is counted for fault injection (`abort_in_chunk`): the
/// process dies with the chunk's transaction open, as a killed run would.
async fn end_chunk(
    mut tx: Tx,
    rec: &RunRecord,
    next: &RunCursor,
    fault: Option<(&RunOptions, &mut u64)>,
    progress: &mut (dyn FnMut(Progress) -> ControlFlow<()> + Send),
    report: Progress,
) -> Result<(), RetentionError> {
    repo::save_progress(
        &mut tx,
        &rec.id.to_string(),
        &serde_json::to_string(next).expect("a cursor serialises"),
        &serde_json::to_string(&rec.counts).expect("counts serialise"),
    )
    .await?;
    if let Some((options, chunks_here)) = fault {
        *chunks_here += 1;
        if options.abort_in_chunk == Some(*chunks_here) {
            std::process::abort();
        }
    }
    tx.commit().await.map_err(StoreError::from)?;
    if progress(report).is_break() {
        return Err(RetentionError::Stopped);
    }
    Ok(())
}

/// Closes the run with its record and one audit entry.
async fn finish(
    store: &Store,
    actor: &Actor,
    mut rec: RunRecord,
) -> Result<RunRecord, RetentionError> {
    let now = Timestamp::now();
    rec.status = if rec.errors.is_empty() {
        RunStatus::Completed
    } else {
        RunStatus::Failed
    };
    rec.finished_at = Some(now);
    let counts = serde_json::to_string(&rec.counts).expect("counts serialise");
    let errors = (!rec.errors.is_empty())
        .then(|| serde_json::to_string(&rec.errors).expect("errors serialise"));
    let mut tx = store.begin().await?;
    repo::finish_run(
        &mut tx,
        &rec.id.to_string(),
        if rec.errors.is_empty() {
            "completed"
        } else {
            "failed"
        },
        now.micros(),
        &counts,
        errors.as_deref(),
    )
    .await?;
    let summary: BTreeMap<&str, serde_json::Value> = rec
        .counts
        .iter()
        .map(|(c, n)| {
            (
                c.as_str(),
                serde_json::json!({ "done": n.done, "held": n.held, "chunks": n.chunks }),
            )
        })
        .collect();
    audit::append(
        &mut tx,
        &NewAuditEntry::new(actor, AuditAction::RetentionRan)
            .target(format!("retention_run:{}", rec.id))
            .details(serde_json::json!({
                "policy": rec.policy,
                "status": rec.status,
                "resumed": rec.resumed,
                "as_of": rec.as_of.micros(),
                "counts": summary,
                "errors": rec.errors.iter().map(|e| e.policy).collect::<Vec<_>>(),
            })),
    )
    .await?;
    tx.commit().await.map_err(StoreError::from)?;
    Ok(rec)
}
