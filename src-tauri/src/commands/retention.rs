//! Data retention for compliance officers and administrators: the policies (how long each
//! category of data is kept and what happens to it then), the dry run of what a run would do
//! now and what holds keep back, a run now (reporting its progress as `retention-progress`
//! events), and the history of runs. The core checks every value and permission; these commands
//! only translate.

use std::ops::ControlFlow;

use serde::{Deserialize, Serialize};
use tauri::{AppHandle, Emitter, State};
use ts_rs::TS;
use vigil::retention::{
    self, Category, Held, PlanItem, Policy, PolicyAction, PolicyChange, Progress, RetentionError,
    MAX_DAYS,
};

use super::rfc3339;
use crate::error::{CommandError, CommandResult, ErrorCode};
use crate::events::run_options;
pub use crate::events::{RetentionCountView, RetentionFaultView, RetentionRunView, RETENTION_RAN};
use crate::state::{AppState, RunKey};

/// A retention policy, with the rules a change to it must keep.
#[derive(Debug, Serialize, TS)]
#[ts(export)]
pub struct RetentionPolicyView {
    /// The category of data.
    #[ts(type = "'activity' | 'comments' | 'sessions' | 'deleted_users' | 'audit'")]
    pub category: String,
    /// How long records are kept, in days.
    pub period_days: u32,
    /// What happens to them then.
    #[ts(type = "'delete' | 'anonymize' | 'archive'")]
    pub action: String,
    /// Whether runs apply it.
    pub enabled: bool,
    /// The actions this category allows.
    #[ts(type = "Array<'delete' | 'anonymize' | 'archive'>")]
    pub allowed_actions: Vec<String>,
    /// The shortest period allowed, in days.
    pub min_days: u32,
    /// The longest period allowed, in days.
    pub max_days: u32,
    /// Last changed (RFC 3339); none while it is the default.
    pub updated_at: Option<String>,
    /// Who changed it last (username).
    pub updated_by: Option<String>,
}

impl From<Policy> for RetentionPolicyView {
    fn from(p: Policy) -> Self {
        Self {
            category: p.category.as_str().to_owned(),
            period_days: p.period_days,
            action: p.action.as_str().to_owned(),
            enabled: p.enabled,
            allowed_actions: p
                .category
                .actions()
                .iter()
                .map(|a| a.as_str().to_owned())
                .collect(),
            min_days: p.category.min_days(),
            max_days: MAX_DAYS,
            updated_at: p.updated_at.map(rfc3339),
            updated_by: p.updated_by,
        }
    }
}

/// A change to one policy; an absent value stays as it is.
#[derive(Debug, Deserialize, TS)]
#[ts(export)]
pub struct RetentionPolicyChange {
    /// The category whose policy changes.
    pub category: String,
    /// New period in days.
    #[ts(type = "number | null")]
    pub period_days: Option<i64>,
    /// New action: `delete`, `anonymize` or `archive` (as the category allows).
    pub action: Option<String>,
    /// Enable or disable the policy.
    pub enabled: Option<bool>,
}

fn parse_category(s: &str) -> CommandResult<Category> {
    Category::parse(s.trim())
        .ok_or_else(|| CommandError::invalid(format!("unknown retention category {s:?}")))
}

fn parse_change(req: &RetentionPolicyChange) -> CommandResult<(Category, PolicyChange)> {
    let category = parse_category(&req.category)?;
    let period_days = req
        .period_days
        .map(|days| {
            // A number no `u32` holds is out of range all the same: say so as the core does.
            u32::try_from(days).map_err(|_| {
                CommandError::invalid(format!(
                    "the {category} period must be from {} to {MAX_DAYS} days, not {days}",
                    category.min_days()
                ))
            })
        })
        .transpose()?;
    let action = req
        .action
        .as_deref()
        .map(|a| {
            PolicyAction::parse(a.trim())
                .ok_or_else(|| CommandError::invalid(format!("unknown retention action {a:?}")))
        })
        .transpose()?;
    Ok((
        category,
        PolicyChange {
            period_days,
            action,
            enabled: req.enabled,
        },
    ))
}

/// Every policy, in the order a run applies them.
#[tauri::command]
pub async fn retention_policies(
    state: State<'_, AppState>,
) -> CommandResult<Vec<RetentionPolicyView>> {
    let (db, _, actor) = state.authorised().await?;
    let policies = retention::policies(&db.store, &actor).await?;
    Ok(policies.into_iter().map(Into::into).collect())
}

/// Changes a policy (recorded in the audit log) and returns it as it is now. An invalid value
/// is refused with the core's reason and changes nothing.
#[tauri::command]
pub async fn retention_set_policy(
    state: State<'_, AppState>,
    req: RetentionPolicyChange,
) -> CommandResult<RetentionPolicyView> {
    let (db, _, actor) = state.authorised().await?;
    let (category, change) = parse_change(&req)?;
    let policy = retention::set_policy(&db.store, &actor, category, &change).await?;
    Ok(policy.into())
}

/// Records past their period that holds keep, by the first reason that applies.
#[derive(Debug, Serialize, TS)]
#[ts(export)]
pub struct RetentionHeldView {
    /// Under a legal hold.
    #[ts(type = "number")]
    pub legal_hold: u64,
    /// Tied to an open incident.
    #[ts(type = "number")]
    pub open_incident: u64,
    /// About the subject of an open data-subject request.
    #[ts(type = "number")]
    pub open_request: u64,
    /// All of them.
    #[ts(type = "number")]
    pub total: u64,
}

impl From<Held> for RetentionHeldView {
    fn from(h: Held) -> Self {
        Self {
            legal_hold: h.legal_hold,
            open_incident: h.open_incident,
            open_request: h.open_request,
            total: h.total(),
        }
    }
}

/// What one policy would do now (the dry run).
#[derive(Debug, Serialize, TS)]
#[ts(export)]
pub struct RetentionPlanItemView {
    /// The category.
    #[ts(type = "'activity' | 'comments' | 'sessions' | 'deleted_users' | 'audit'")]
    pub category: String,
    /// Its action.
    #[ts(type = "'delete' | 'anonymize' | 'archive'")]
    pub action: String,
    /// Its period in days.
    pub period_days: u32,
    /// Whether runs apply it.
    pub enabled: bool,
    /// Records older than this are past their period (RFC 3339).
    pub cutoff: String,
    /// Records the policy would act on now.
    #[ts(type = "number")]
    pub due: u64,
    /// The oldest of them (RFC 3339).
    pub oldest: Option<String>,
    /// Records past their period that holds keep.
    pub held: RetentionHeldView,
}

impl From<PlanItem> for RetentionPlanItemView {
    fn from(p: PlanItem) -> Self {
        Self {
            category: p.category.as_str().to_owned(),
            action: p.action.as_str().to_owned(),
            period_days: p.period_days,
            enabled: p.enabled,
            cutoff: rfc3339(p.cutoff),
            due: p.due,
            oldest: p.oldest.map(rfc3339),
            held: p.held.into(),
        }
    }
}

/// The dry run: per policy, what is due now, the oldest, and what is held back and why.
/// Changes nothing.
#[tauri::command]
pub async fn retention_plan(
    state: State<'_, AppState>,
) -> CommandResult<Vec<RetentionPlanItemView>> {
    let (db, _, actor) = state.authorised().await?;
    let plan = retention::plan(&db.store, &actor, None).await?;
    Ok(plan.into_iter().map(Into::into).collect())
}

/// What to run.
#[derive(Debug, Deserialize, TS)]
#[ts(export)]
pub struct RetentionRunRequest {
    /// One category's policy only; none for every enabled policy.
    pub policy: Option<String>,
}

/// The event name of [`RetentionProgressEvent`].
pub const RETENTION_PROGRESS: &str = "retention-progress";

/// Progress of a run started from this console, after each chunk, sent as the
/// `retention-progress` event.
#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct RetentionProgressEvent {
    /// The policy being applied.
    #[ts(type = "'activity' | 'comments' | 'sessions' | 'deleted_users' | 'audit'")]
    pub category: String,
    /// Records acted on or passed over (held) so far in this policy.
    #[ts(type = "number")]
    pub done: u64,
    /// Records past their period when the policy started (held ones included).
    #[ts(type = "number")]
    pub due: u64,
}

impl From<Progress> for RetentionProgressEvent {
    fn from(p: Progress) -> Self {
        Self {
            category: p.policy.as_str().to_owned(),
            done: p.done,
            due: p.due,
        }
    }
}

/// Applies the policies now (resuming an interrupted run first, if there is one) and returns
/// the run's record. Refused as busy while another console or worker runs them.
#[tauri::command]
pub async fn retention_run(
    app: AppHandle,
    state: State<'_, AppState>,
    req: RetentionRunRequest,
) -> CommandResult<RetentionRunView> {
    let (db, _, actor) = state.authorised().await?;
    let policy = req.policy.as_deref().map(parse_category).transpose()?;
    let options = run_options(&state.config(), policy);
    let run = state.stops.start(RunKey::Retention);
    let outcome = retention::run(&db.store, &actor, &options, &mut |p| {
        if let Err(e) = app.emit(RETENTION_PROGRESS, RetentionProgressEvent::from(p)) {
            tracing::debug!(error = %e, "retention-progress event not sent");
        }
        if run.stop_requested() {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    })
    .await;
    drop(run);
    match outcome {
        Ok(record) => Ok(record.into()),
        // The one holding the lock is this console's own scheduled run: say so.
        Err(RetentionError::Busy) if state.watch.retention_running() => Err(CommandError::new(
            ErrorCode::Busy,
            "the scheduled retention run is under way on this console; it appears in the \
             history when it ends",
        )),
        Err(e) => Err(e.into()),
    }
}

/// Asks the retention run started from this console to stop: it stops after the chunk in
/// hand, and the next run (from any console or worker) resumes it. Refused as not found when
/// none is under way here.
#[tauri::command]
pub async fn retention_stop(state: State<'_, AppState>) -> CommandResult<()> {
    state.authorised().await?;
    if state.stops.request(&RunKey::Retention) {
        Ok(())
    } else {
        Err(CommandError::new(
            ErrorCode::NotFound,
            "no retention run started from this console is under way",
        ))
    }
}

/// How many runs to list.
#[derive(Debug, Deserialize, TS)]
#[ts(export)]
pub struct RetentionRunsQuery {
    /// At most this many (1 to 500); none for 50.
    pub limit: Option<u32>,
}

/// Recent runs, newest first.
#[tauri::command]
pub async fn retention_runs(
    state: State<'_, AppState>,
    req: RetentionRunsQuery,
) -> CommandResult<Vec<RetentionRunView>> {
    let (db, _, actor) = state.authorised().await?;
    let runs = retention::runs(&db.store, &actor, req.limit.unwrap_or(50)).await?;
    Ok(runs.into_iter().map(Into::into).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use vigil::retention::{PolicyCounts, RunFault, RunRecord, RunStatus};
    use vigil::store::Timestamp;

    fn change(category: &str, days: Option<i64>, action: Option<&str>) -> RetentionPolicyChange {
        RetentionPolicyChange {
            category: category.into(),
            period_days: days,
            action: action.map(str::to_owned),
            enabled: None,
        }
    }

    #[test]
    fn changes_parse_or_say_what_is_wrong() {
        let (category, c) = parse_change(&change(" activity ", Some(60), None)).unwrap();
        assert_eq!(category, Category::Activity);
        assert_eq!(c.period_days, Some(60));
        let (_, c) = parse_change(&change("comments", None, Some("anonymise"))).unwrap();
        assert_eq!(c.action, Some(PolicyAction::Anonymize));

        let e = parse_change(&change("backups", Some(1), None)).unwrap_err();
        assert_eq!(e.code, crate::ErrorCode::InvalidInput);
        assert!(e.message.contains("backups"), "{}", e.message);
        let e = parse_change(&change("activity", None, Some("shred"))).unwrap_err();
        assert!(e.message.contains("shred"), "{}", e.message);
        let e = parse_change(&change("audit", Some(-3), None)).unwrap_err();
        assert_eq!(
            e.message,
            "the audit period must be from 365 to 36500 days, not -3"
        );
    }

    #[test]
    fn policy_views_carry_the_rules_a_change_must_keep() {
        let view = RetentionPolicyView::from(Policy {
            category: Category::Comments,
            period_days: 1_825,
            action: PolicyAction::Anonymize,
            enabled: true,
            updated_at: None,
            updated_by: None,
        });
        assert_eq!(view.allowed_actions, ["anonymize", "delete"]);
        assert_eq!((view.min_days, view.max_days), (30, MAX_DAYS));
    }

    #[test]
    fn run_views_list_counts_in_run_order() {
        let mut counts = BTreeMap::new();
        for c in [Category::Audit, Category::Comments, Category::Activity] {
            counts.insert(
                c,
                PolicyCounts {
                    done: 2,
                    held: 1,
                    ..PolicyCounts::default()
                },
            );
        }
        let view = RetentionRunView::from(RunRecord {
            id: uuid::Uuid::nil(),
            policy: None,
            status: RunStatus::Failed,
            started_by: Some("dpo-dana".into()),
            started_at: Timestamp::from_micros(0),
            finished_at: None,
            as_of: Timestamp::from_micros(0),
            counts,
            errors: vec![RunFault {
                policy: Category::Audit,
                message: "no audit archive folder".into(),
            }],
            resumed: false,
        });
        let order: Vec<&str> = view.counts.iter().map(|c| c.category.as_str()).collect();
        assert_eq!(order, ["activity", "comments", "audit"]);
        assert_eq!(view.status, "failed");
        assert_eq!(view.errors[0].category, "audit");
        assert_eq!(view.started_at, "1970-01-01T00:00:00.000000Z");
    }
}
