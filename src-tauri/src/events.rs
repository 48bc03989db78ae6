//! What the shell tells the UI on its own (events) and what the background jobs in `watch`
//! share with the command modules: a floor below both, so the jobs never import a command
//! module.

use serde::Serialize;
use ts_rs::TS;
use vigil::retention::{Category, RunOptions, RunRecord, RunStatus};

/// A timestamp (RFC 3339) from the core's microseconds.
pub(crate) fn rfc3339(t: vigil::store::Timestamp) -> String {
    t.to_rfc3339()
}

/// The event name of [`IncidentsChangedEvent`].
pub const INCIDENTS_CHANGED: &str = "incidents-changed";

/// Incidents were opened or changed by a run of the detectors (here or elsewhere), sent as the
/// `incidents-changed` event so the queue can refresh.
#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct IncidentsChangedEvent {
    /// Incidents opened by the run.
    #[ts(type = "number")]
    pub opened: u64,
    /// Detections folded into open incidents.
    #[ts(type = "number")]
    pub folded: u64,
    /// Critical incidents opened, by id.
    pub critical: Vec<String>,
    /// Found by the background monitor rather than an operator's button.
    pub automatic: bool,
}

/// What a run did to one policy's records.
#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct RetentionCountView {
    /// The policy.
    #[ts(type = "'activity' | 'comments' | 'sessions' | 'deleted_users' | 'audit'")]
    pub category: String,
    /// Records deleted, anonymised or archived.
    #[ts(type = "number")]
    pub done: u64,
    /// Records past their period that holds kept.
    #[ts(type = "number")]
    pub held: u64,
    /// Chunks (one transaction each).
    #[ts(type = "number")]
    pub chunks: u64,
    /// Seconds spent.
    pub seconds: f64,
    /// The policy was disabled and skipped.
    pub skipped: bool,
}

/// A policy that failed in a run.
#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct RetentionFaultView {
    /// The policy.
    #[ts(type = "'activity' | 'comments' | 'sessions' | 'deleted_users' | 'audit'")]
    pub category: String,
    /// What went wrong.
    pub message: String,
}

/// A retention run, as recorded.
#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct RetentionRunView {
    /// Id.
    pub id: String,
    /// The one policy it ran; none for every enabled policy.
    #[ts(type = "'activity' | 'comments' | 'sessions' | 'deleted_users' | 'audit' | null")]
    pub policy: Option<String>,
    /// Under way (or interrupted: the next run resumes it), completed, or failed (at least one
    /// policy failed; the others applied).
    #[ts(type = "'running' | 'completed' | 'failed'")]
    pub status: String,
    /// Who started it (username).
    pub started_by: Option<String>,
    /// Started (RFC 3339).
    pub started_at: String,
    /// Ended (RFC 3339).
    pub finished_at: Option<String>,
    /// The time ages were judged against (RFC 3339).
    pub as_of: String,
    /// Per policy, in run order.
    pub counts: Vec<RetentionCountView>,
    /// The policies that failed.
    pub errors: Vec<RetentionFaultView>,
    /// This run resumed an interrupted one (only in a run's own result).
    pub resumed: bool,
}

impl From<RunRecord> for RetentionRunView {
    fn from(r: RunRecord) -> Self {
        let counts = Category::ALL
            .into_iter()
            .filter_map(|c| {
                r.counts.get(&c).map(|n| RetentionCountView {
                    category: c.as_str().to_owned(),
                    done: n.done,
                    held: n.held,
                    chunks: n.chunks,
                    seconds: n.seconds,
                    skipped: n.skipped,
                })
            })
            .collect();
        Self {
            id: r.id.to_string(),
            policy: r.policy.map(|c| c.as_str().to_owned()),
            status: match r.status {
                RunStatus::Running => "running",
                RunStatus::Completed => "completed",
                RunStatus::Failed => "failed",
            }
            .to_owned(),
            started_by: r.started_by,
            started_at: rfc3339(r.started_at),
            finished_at: r.finished_at.map(rfc3339),
            as_of: rfc3339(r.as_of),
            counts,
            errors: r
                .errors
                .into_iter()
                .map(|e| RetentionFaultView {
                    category: e.policy.as_str().to_owned(),
                    message: e.message,
                })
                .collect(),
            resumed: r.resumed,
        }
    }
}

/// The event name of a [`RetentionRunView`] sent when the background loop ran the policies, so
/// an open Retention screen can refresh.
pub const RETENTION_RAN: &str = "retention-ran";

/// The options of a run from this console: the configured chunk size and archive folder.
pub(crate) fn run_options(config: &vigil::config::Config, policy: Option<Category>) -> RunOptions {
    RunOptions {
        policy,
        chunk: config.retention.chunk,
        as_of: None,
        archive_dir: config.retention.archive_dir(),
        abort_in_chunk: None,
    }
}
