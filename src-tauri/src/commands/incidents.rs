//! Security incidents for moderators: the review queue, an incident in full with the actions on
//! it, address blocks, running the detectors now, and the dashboard charts (SVG to show, PNG to
//! save). Moderators see usernames, activity, comment text and blocked addresses; the core gives
//! them no email address or phone number.

use serde::{Deserialize, Serialize};
use tauri::{AppHandle, State};
use ts_rs::TS;
use vigil::analytics::{self, ChartKind, Period};
use vigil::incidents::{
    self, Action, ActivityItem, BlockInfo, CommentItem, EvidenceItem, IncidentDetail, IncidentKind,
    IncidentStatus, IncidentSummary, QueueFilter, RestrictionInfo, Severity, TimelineEntry,
};
use vigil::store::Timestamp;

use super::mfa::SavedFile;
use super::rfc3339;
use crate::error::{CommandError, CommandResult};
pub use crate::events::{IncidentsChangedEvent, INCIDENTS_CHANGED};
use crate::state::AppState;
use crate::watch;

/// An incident as the queue lists it.
#[derive(Debug, Serialize, TS)]
#[ts(export)]
pub struct IncidentView {
    /// Id.
    pub id: String,
    /// What was detected.
    #[ts(
        type = "'credential_stuffing' | 'rate_limit_exceeded' | 'suspicious_activity' | 'malicious_content' | 'suspicious_content'"
    )]
    pub kind: String,
    /// How bad.
    #[ts(type = "'critical' | 'high' | 'medium' | 'low'")]
    pub severity: String,
    /// Where it is in its review.
    #[ts(type = "'open' | 'investigating' | 'resolved' | 'dismissed'")]
    pub status: String,
    /// The account's username, if an account is involved.
    pub username: Option<String>,
    /// The account's id.
    pub user_id: Option<String>,
    /// The moderator who has it.
    pub assignee: Option<String>,
    /// Assigned to the signed-in operator.
    pub assigned_to_me: bool,
    /// One line, without personal data.
    pub summary: String,
    /// Opened (RFC 3339).
    pub created_at: String,
    /// Last change (RFC 3339).
    pub updated_at: String,
    /// Pieces of evidence.
    #[ts(type = "number")]
    pub evidence_count: i64,
}

impl From<IncidentSummary> for IncidentView {
    fn from(s: IncidentSummary) -> Self {
        Self {
            id: s.id,
            kind: s.kind.as_str().to_owned(),
            severity: s.severity.as_str().to_owned(),
            status: s.status.as_str().to_owned(),
            username: s.username,
            user_id: s.user_id,
            assignee: s.assignee,
            assigned_to_me: s.assigned_to_me,
            summary: s.summary,
            created_at: rfc3339(s.created_at),
            updated_at: rfc3339(s.updated_at),
            evidence_count: s.evidence_count,
        }
    }
}

/// A rule that fired, with how often.
#[derive(Debug, Serialize, TS)]
#[ts(export)]
pub struct RuleCountView {
    /// The rule, such as `rate_limit.comment` or `phishing_attempt`.
    pub rule: String,
    /// Pieces of evidence it added.
    #[ts(type = "number")]
    pub count: i64,
}

/// One piece of evidence.
#[derive(Debug, Serialize, TS)]
#[ts(export)]
pub struct EvidenceView {
    /// `activity` or `comment`.
    pub kind: String,
    /// The activity record's or comment's id.
    pub ref_id: Option<String>,
    /// The rule it fired.
    pub rule: Option<String>,
    /// Added (RFC 3339).
    pub added_at: String,
}

impl From<EvidenceItem> for EvidenceView {
    fn from(e: EvidenceItem) -> Self {
        Self {
            kind: e.kind,
            ref_id: e.ref_id,
            rule: e.rule,
            added_at: rfc3339(e.added_at),
        }
    }
}

/// One entry of an incident's timeline: opened, an automated response, a moderator's action.
#[derive(Debug, Serialize, TS)]
#[ts(export)]
pub struct IncidentTimelineView {
    /// Id.
    pub id: String,
    /// `opened`, `suspend_account`, `block_ip`, `lift_block`, `note`...
    pub action: String,
    /// The moderator, for a moderator's action.
    pub actor: Option<String>,
    /// Taken by Vigil itself, as the response policy orders.
    pub automated: bool,
    /// Its details, as JSON text (a moderator's reason or note included).
    pub details: String,
    /// When (RFC 3339).
    pub at: String,
    /// When it was reversed, for an automated action since lifted (RFC 3339).
    pub reversed_at: Option<String>,
    /// Who reversed it.
    pub reversed_by: Option<String>,
}

impl From<TimelineEntry> for IncidentTimelineView {
    fn from(t: TimelineEntry) -> Self {
        Self {
            id: t.id,
            action: t.action,
            actor: t.actor,
            automated: t.automated,
            details: t.details.to_string(),
            at: rfc3339(t.at),
            reversed_at: t.reversed_at.map(rfc3339),
            reversed_by: t.reversed_by,
        }
    }
}

/// An activity record around the incident.
#[derive(Debug, Serialize, TS)]
#[ts(export)]
pub struct ActivityView {
    /// Id.
    pub id: String,
    /// When (RFC 3339).
    pub at: String,
    /// The account, if known.
    pub username: Option<String>,
    /// `login`, `comment`, `reaction`...
    pub kind: String,
    /// `success`, `failure`...
    pub outcome: String,
    /// Why it failed, if it did.
    pub reason: Option<String>,
    /// Country of the source address, if known.
    pub country: Option<String>,
    /// The client's user agent.
    pub user_agent: Option<String>,
    /// Part of the incident's evidence.
    pub evidence: bool,
}

impl From<ActivityItem> for ActivityView {
    fn from(a: ActivityItem) -> Self {
        Self {
            id: a.id,
            at: rfc3339(a.at),
            username: a.username,
            kind: a.kind,
            outcome: a.outcome,
            reason: a.reason,
            country: a.country,
            user_agent: a.user_agent,
            evidence: a.evidence,
        }
    }
}

/// A comment in the evidence.
#[derive(Debug, Serialize, TS)]
#[ts(export)]
pub struct CommentView {
    /// Id.
    pub id: String,
    /// Posted (RFC 3339).
    pub at: String,
    /// Its text, when it is public.
    pub text: Option<String>,
    /// A private (sealed) comment: its text is not shown.
    pub private: bool,
    /// Removed by a moderator (RFC 3339).
    pub removed_at: Option<String>,
    /// Why it was removed.
    pub removal_reason: Option<String>,
}

impl From<CommentItem> for CommentView {
    fn from(c: CommentItem) -> Self {
        Self {
            id: c.id,
            at: rfc3339(c.at),
            text: c.text,
            private: c.private,
            removed_at: c.removed_at.map(rfc3339),
            removal_reason: c.removal_reason,
        }
    }
}

/// An address block.
#[derive(Debug, Serialize, TS)]
#[ts(export)]
pub struct BlockView {
    /// Id.
    pub id: String,
    /// The blocked address.
    pub ip: String,
    /// Why.
    pub reason: String,
    /// The incident that placed it, if one did.
    pub incident_id: Option<String>,
    /// Placed (RFC 3339).
    pub created_at: String,
    /// When it ends by itself (RFC 3339); none for a block until lifted.
    pub expires_at: Option<String>,
    /// Lifted (RFC 3339).
    pub lifted_at: Option<String>,
    /// In force, run out, or lifted.
    #[ts(type = "'active' | 'expired' | 'lifted'")]
    pub state: String,
}

impl From<BlockInfo> for BlockView {
    fn from(b: BlockInfo) -> Self {
        Self {
            id: b.id,
            ip: b.ip,
            reason: b.reason,
            incident_id: b.incident_id,
            created_at: rfc3339(b.created_at),
            expires_at: b.expires_at.map(rfc3339),
            lifted_at: b.lifted_at.map(rfc3339),
            state: b.state.to_owned(),
        }
    }
}

/// A restriction on an account.
#[derive(Debug, Serialize, TS)]
#[ts(export)]
pub struct RestrictionView {
    /// Id.
    pub id: String,
    /// The account.
    pub user_id: String,
    /// What it restricts.
    #[ts(type = "'suspension' | 'step_up' | 'comment' | 'upload'")]
    pub kind: String,
    /// Why.
    pub reason: String,
    /// The incident that placed it, if one did.
    pub incident_id: Option<String>,
    /// Placed (RFC 3339).
    pub created_at: String,
    /// When it ends by itself (RFC 3339).
    pub expires_at: Option<String>,
    /// Lifted (RFC 3339).
    pub lifted_at: Option<String>,
    /// In force, run out, or lifted.
    #[ts(type = "'active' | 'expired' | 'lifted'")]
    pub state: String,
}

impl From<RestrictionInfo> for RestrictionView {
    fn from(r: RestrictionInfo) -> Self {
        Self {
            id: r.id,
            user_id: r.user_id,
            kind: r.kind,
            reason: r.reason,
            incident_id: r.incident_id,
            created_at: rfc3339(r.created_at),
            expires_at: r.expires_at.map(rfc3339),
            lifted_at: r.lifted_at.map(rfc3339),
            state: r.state.to_owned(),
        }
    }
}

/// An incident with everything a moderator needs to decide.
#[derive(Debug, Serialize, TS)]
#[ts(export)]
pub struct IncidentDetailView {
    /// The incident.
    pub incident: IncidentView,
    /// The account's state (`active`, `suspended`...), if an account is involved.
    pub account_status: Option<String>,
    /// The rules that fired, most first.
    pub rules: Vec<RuleCountView>,
    /// The evidence, oldest first.
    pub evidence: Vec<EvidenceView>,
    /// Opened, automated responses, moderators' actions and notes, oldest first.
    pub timeline: Vec<IncidentTimelineView>,
    /// The account's or source's activity around the incident, evidence marked.
    pub activity: Vec<ActivityView>,
    /// Comments in the evidence.
    pub comments: Vec<CommentView>,
    /// Address blocks the incident placed.
    pub blocks: Vec<BlockView>,
    /// Account restrictions the incident placed.
    pub restrictions: Vec<RestrictionView>,
}

impl From<IncidentDetail> for IncidentDetailView {
    fn from(d: IncidentDetail) -> Self {
        Self {
            incident: d.incident.into(),
            account_status: d.account_status,
            rules: d
                .rules
                .into_iter()
                .map(|(rule, count)| RuleCountView { rule, count })
                .collect(),
            evidence: d.evidence.into_iter().map(Into::into).collect(),
            timeline: d.timeline.into_iter().map(Into::into).collect(),
            activity: d.activity.into_iter().map(Into::into).collect(),
            comments: d.comments.into_iter().map(Into::into).collect(),
            blocks: d.blocks.into_iter().map(Into::into).collect(),
            restrictions: d.restrictions.into_iter().map(Into::into).collect(),
        }
    }
}

fn blank(s: &Option<String>) -> Option<&str> {
    s.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

/// Filters of the queue.
#[derive(Debug, Deserialize, TS)]
#[ts(export)]
pub struct IncidentListQuery {
    /// A status, or none for the active ones (open and investigating).
    pub status: Option<String>,
    /// A severity, or none for all.
    pub severity: Option<String>,
    /// A kind, or none for all.
    pub kind: Option<String>,
    /// Only incidents assigned to the signed-in operator.
    pub mine: bool,
}

fn parse_filter(q: &IncidentListQuery) -> CommandResult<QueueFilter> {
    fn one<T>(
        value: Option<&str>,
        what: &str,
        parse: fn(&str) -> Option<T>,
    ) -> CommandResult<Option<T>> {
        value
            .map(|v| parse(v).ok_or_else(|| CommandError::invalid(format!("unknown {what} {v:?}"))))
            .transpose()
    }
    Ok(QueueFilter {
        status: one(blank(&q.status), "status", IncidentStatus::parse)?,
        severity: one(blank(&q.severity), "severity", Severity::parse)?,
        kind: one(blank(&q.kind), "incident kind", IncidentKind::parse)?,
        mine: q.mine,
        limit: None,
    })
}

/// The review queue: most severe first, then oldest.
#[tauri::command]
pub async fn incidents_list(
    state: State<'_, AppState>,
    req: IncidentListQuery,
) -> CommandResult<Vec<IncidentView>> {
    let (db, _, actor) = state.authorised().await?;
    let filter = parse_filter(&req)?;
    let rows = incidents::list(&db.store, &actor, &filter).await?;
    Ok(rows.into_iter().map(IncidentView::from).collect())
}

/// Names an incident.
#[derive(Debug, Deserialize, TS)]
#[ts(export)]
pub struct IncidentRef {
    /// Incident id.
    pub id: String,
}

/// One incident in full.
#[tauri::command]
pub async fn incident_show(
    state: State<'_, AppState>,
    req: IncidentRef,
) -> CommandResult<IncidentDetailView> {
    let (db, _, actor) = state.authorised().await?;
    let detail = incidents::show(&db.store, &actor, &req.id).await?;
    Ok(detail.into())
}

/// A moderator's action on an incident.
#[derive(Debug, Deserialize, TS)]
#[ts(export)]
pub struct IncidentAct {
    /// Incident id.
    pub id: String,
    /// `assign`, `confirm`, `dismiss`, `lift-suspension`, `extend-suspension:HOURS`,
    /// `lift-block`, `extend-block:HOURS`, `lift-restrictions`, `remove-comment:ID`, `warn` or
    /// `note`.
    pub action: String,
    /// Why (a note's text; needed to remove a comment), kept on the incident's timeline.
    pub reason: Option<String>,
}

/// Acts on an incident and returns it as it is now.
#[tauri::command]
pub async fn incident_act(
    state: State<'_, AppState>,
    req: IncidentAct,
) -> CommandResult<IncidentDetailView> {
    let (db, _, actor) = state.authorised().await?;
    let action = Action::parse(req.action.trim())?;
    incidents::act(&db.store, &actor, &req.id, &action, blank(&req.reason)).await?;
    let detail = incidents::show(&db.store, &actor, &req.id).await?;
    Ok(detail.into())
}

/// Which blocks to list.
#[derive(Debug, Deserialize, TS)]
#[ts(export)]
pub struct BlocksQuery {
    /// Lifted and run-out blocks too.
    pub all: bool,
}

/// Address blocks in force (or all), newest first.
#[tauri::command]
pub async fn blocks_list(
    state: State<'_, AppState>,
    req: BlocksQuery,
) -> CommandResult<Vec<BlockView>> {
    let (db, _, actor) = state.authorised().await?;
    let rows = incidents::blocks(&db.store, &actor, req.all).await?;
    Ok(rows.into_iter().map(BlockView::from).collect())
}

/// A block to place by hand.
#[derive(Debug, Deserialize, TS)]
#[ts(export)]
pub struct BlockAdd {
    /// An IPv4 or IPv6 address.
    pub ip: String,
    /// Hours it lasts (1 to 8760); none for a block until lifted.
    pub hours: Option<u32>,
    /// Why (recorded with the block).
    pub reason: String,
}

/// Blocks an address; returns the block's id.
#[tauri::command]
pub async fn block_add(state: State<'_, AppState>, req: BlockAdd) -> CommandResult<String> {
    let (db, _, actor) = state.authorised().await?;
    let id = incidents::block(&db.store, &actor, &req.ip, req.hours, &req.reason).await?;
    Ok(id.to_string())
}

/// A block to lift.
#[derive(Debug, Deserialize, TS)]
#[ts(export)]
pub struct BlockRemove {
    /// The block's id, or an address (every block of it in force is lifted).
    pub which: String,
}

/// Lifts a block (or every block of an address); returns how many were lifted.
#[tauri::command]
pub async fn block_remove(state: State<'_, AppState>, req: BlockRemove) -> CommandResult<u64> {
    let (db, _, actor) = state.authorised().await?;
    Ok(incidents::unblock(&db.store, &actor, &req.which).await?)
}

/// What a run of the detectors did.
#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct MonitorRunView {
    /// Activity records not judged before.
    #[ts(type = "number")]
    pub new_events: u64,
    /// Records read.
    #[ts(type = "number")]
    pub scanned: u64,
    /// Comments screened.
    #[ts(type = "number")]
    pub comments_screened: u64,
    /// Detections made.
    #[ts(type = "number")]
    pub detections: u64,
    /// Incidents opened.
    #[ts(type = "number")]
    pub opened: u64,
    /// Detections folded into an open incident.
    #[ts(type = "number")]
    pub folded: u64,
    /// Automated responses taken.
    #[ts(type = "number")]
    pub actions: u64,
    /// Timed suspensions that ended.
    #[ts(type = "number")]
    pub suspensions_expired: u64,
    /// Critical incidents opened, by id.
    pub critical: Vec<String>,
}

impl From<vigil::monitor::RunReport> for MonitorRunView {
    fn from(r: vigil::monitor::RunReport) -> Self {
        Self {
            new_events: r.new_events,
            scanned: r.scanned,
            comments_screened: r.comments_screened,
            detections: r.detections,
            opened: r.opened,
            folded: r.folded,
            actions: r.actions,
            suspensions_expired: r.suspensions_expired,
            critical: r.critical,
        }
    }
}

/// Runs the detectors over the activity that is new since the last run, now (the background
/// monitor runs them every minute too). Tells the queue, and the desktop for critical incidents.
#[tauri::command]
pub async fn monitor_run(
    app: AppHandle,
    state: State<'_, AppState>,
) -> CommandResult<MonitorRunView> {
    let (db, session, actor) = state.authorised().await?;
    let report = state
        .watch
        .run(&state.config(), &db, &session, &actor)
        .await?;
    watch::announce(&app, &state, &db, &actor, &report, watch::Source::Manual).await;
    Ok(report.into())
}

/// Which chart, over which days.
#[derive(Debug, Deserialize, TS)]
#[ts(export)]
pub struct ChartRequest {
    /// `incidents_by_severity`, `activity_volume`, `top_rules` or `dsr_status`.
    pub kind: String,
    /// 7, 30 or 90.
    pub days: u32,
    /// The width it is shown at, in CSS pixels (drawn 1:1 so its text keeps its size; 240 to
    /// 4096, the height half of it but at least 160, 400 for the request chart); none draws
    /// the default size.
    pub width: Option<u32>,
    /// `light` or `dark`: the console's theme (default light).
    #[ts(type = "'light' | 'dark' | null")]
    pub theme: Option<String>,
}

/// A chart's figures as a table (for screen readers, and anyone who wants the numbers).
#[derive(Debug, Serialize, TS)]
#[ts(export)]
pub struct ChartTableView {
    /// Column headings.
    pub columns: Vec<String>,
    /// Rows of text, in the chart's order.
    pub rows: Vec<Vec<String>>,
}

/// A chart drawn for the dashboard.
#[derive(Debug, Serialize, TS)]
#[ts(export)]
pub struct ChartView {
    /// Which chart.
    #[ts(type = "'incidents_by_severity' | 'activity_volume' | 'top_rules' | 'dsr_status'")]
    pub kind: String,
    /// Days covered.
    pub days: u32,
    /// Its title.
    pub title: String,
    /// What is counted, over which days (the chart's text alternative with the title).
    pub subtitle: String,
    /// The drawing: a self-contained SVG document for the requested theme's background.
    pub svg: String,
    /// The same figures as a table.
    pub table: ChartTableView,
}

/// Width and height a chart is drawn at when the dashboard does not say.
const CHART_SIZE: (u32, u32) = (720, 360);
/// Width and height of an exported PNG.
const PNG_SIZE: (u32, u32) = (1600, 800);

fn chart_args(kind: &str, days: u32) -> CommandResult<(ChartKind, Period)> {
    let kind = ChartKind::parse(kind.trim())
        .ok_or_else(|| CommandError::invalid(format!("unknown chart {kind:?}")))?;
    let period = Period::from_days(days)
        .ok_or_else(|| CommandError::invalid("a chart covers 7, 30 or 90 days"))?;
    Ok((kind, period))
}

/// One dashboard chart over the last 7, 30 or 90 days, drawn as SVG.
#[tauri::command]
pub async fn dashboard_chart(
    state: State<'_, AppState>,
    req: ChartRequest,
) -> CommandResult<ChartView> {
    let (db, _, actor) = state.authorised().await?;
    let (kind, period) = chart_args(&req.kind, req.days)?;
    let theme = match req.theme.as_deref().map(str::trim) {
        None | Some("light") => analytics::ChartTheme::Light,
        Some("dark") => analytics::ChartTheme::Dark,
        Some(other) => {
            return Err(CommandError::invalid(format!(
                "the chart theme is light or dark, not {other:?}"
            )))
        }
    };
    let (w, h) = match req.width {
        None => CHART_SIZE,
        // The request chart stacks ten rows of labels in two panels: it needs the height.
        Some(w) if kind == ChartKind::DsrStatus => (w, (w / 2).max(400)),
        Some(w) => (w, (w / 2).max(analytics::MIN_SIZE.1)),
    };
    let data = analytics::chart_data(&db.store, &actor, kind, period, Timestamp::now()).await?;
    let svg = analytics::render_svg_themed(&data, w, h, theme)?;
    let table = analytics::table(&data);
    Ok(ChartView {
        kind: kind.as_str().to_owned(),
        days: period.days(),
        title: data.title,
        subtitle: data.subtitle,
        svg,
        table: ChartTableView {
            columns: table.columns,
            rows: table.rows,
        },
    })
}

/// A chart to save as PNG.
#[derive(Debug, Deserialize, TS)]
#[ts(export)]
pub struct ChartExport {
    /// Which chart.
    pub kind: String,
    /// 7, 30 or 90.
    pub days: u32,
    /// An existing folder to save it in; none for Downloads (else the home folder).
    pub out_dir: Option<String>,
}

/// Saves a dashboard chart as a PNG image in a folder, never over an existing file.
#[tauri::command]
pub async fn dashboard_chart_export(
    state: State<'_, AppState>,
    req: ChartExport,
) -> CommandResult<SavedFile> {
    let (db, _, actor) = state.authorised().await?;
    let (kind, period) = chart_args(&req.kind, req.days)?;
    let dir = match blank(&req.out_dir) {
        Some(dir) => {
            let dir = std::path::PathBuf::from(dir);
            if !dir.is_dir() {
                return Err(CommandError::invalid(format!(
                    "{} is not an existing folder",
                    dir.display()
                )));
            }
            dir
        }
        None => super::default_export_dir()?,
    };
    let data = analytics::chart_data(&db.store, &actor, kind, period, Timestamp::now()).await?;
    let png = analytics::render_png(&data, PNG_SIZE.0, PNG_SIZE.1)?;
    let stem = format!(
        "vigil-{}-{}d",
        kind.as_str().replace('_', "-"),
        period.days()
    );
    let path = super::write_new_file(&dir, &stem, "png", &png).map_err(|e| {
        CommandError::new(
            crate::ErrorCode::Io,
            format!("cannot save the chart in {}: {e}", dir.display()),
        )
    })?;
    Ok(SavedFile {
        path: path.display().to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_filters_parse_or_say_what_is_wrong() {
        let q = IncidentListQuery {
            status: Some(" ".into()),
            severity: Some("critical".into()),
            kind: Some("credential_stuffing".into()),
            mine: true,
        };
        let f = parse_filter(&q).unwrap();
        assert_eq!(f.status, None);
        assert_eq!(f.severity, Some(Severity::Critical));
        assert_eq!(f.kind, Some(IncidentKind::CredentialStuffing));
        assert!(f.mine);
        let bad = IncidentListQuery {
            status: Some("closed".into()),
            severity: None,
            kind: None,
            mine: false,
        };
        let e = parse_filter(&bad).unwrap_err();
        assert_eq!(e.code, crate::ErrorCode::InvalidInput);
        assert!(e.message.contains("closed"), "{}", e.message);
    }

    #[test]
    fn charts_are_named_and_cover_7_30_or_90_days() {
        assert_eq!(
            chart_args("top_rules", 30).unwrap(),
            (ChartKind::TopRules, Period::Days30)
        );
        assert!(chart_args("top_rules", 31).is_err());
        assert!(chart_args("pie", 7).is_err());
    }
}
