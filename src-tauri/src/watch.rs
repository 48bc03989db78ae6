//! The background monitor: while an operator is signed in, every minute (and once right after
//! sign-in) it runs the detectors if the operator may ([`Permission::MonitorRun`]) and this
//! machine holds their data keys, then looks for critical incidents opened since the last look
//! (by this app, another console or a headless `vigil monitor run`), so moderators who do not
//! run the detectors are told too. New incidents reach the UI as the `incidents-changed` event;
//! a critical one also as a desktop notification, whose text names the kind of incident and
//! never a person. A desktop without a notification service (a CI display) only loses the
//! notification.
//!
//! The same loop applies the retention policies when a run is due (none started within
//! `[worker] retention_interval_hours`, or one was interrupted) and the operator may
//! ([`Permission::RetentionManage`]), as a headless `vigil worker` does: the desktop is then
//! one more worker of the shared database. The run goes on its own task, so the detectors do
//! not wait for it; if another console or worker holds the retention job lock, this round
//! leaves the run to it.
//!
//! It also delivers the outbox when `[mail]` is configured and the operator holds the `contact`
//! data key on this machine (compliance officers), as the worker's `mail` job does; each
//! message is claimed before it is sent, so consoles and workers never send one twice.

use std::ops::ControlFlow;
use std::sync::Arc;
use std::time::Duration;

use tauri::{AppHandle, Emitter, Manager};
use tauri_plugin_notification::NotificationExt;
use vigil::auth::Actor;
use vigil::incidents::{self, IncidentSummary};
use vigil::monitor::RunReport;
use vigil::rbac::{self, Permission};
use vigil::retention::{self, RetentionError};
use vigil::store::Timestamp;

use crate::error::ErrorCode;
use crate::events::{
    run_options, IncidentsChangedEvent, RetentionRunView, INCIDENTS_CHANGED, RETENTION_RAN,
};
use crate::state::{AppState, Db, DesktopSession};

/// How often the detectors run while someone is signed in.
pub const INTERVAL: Duration = Duration::from_secs(60);

/// Most critical incidents told of one by one in a look; the rest in one notification.
const MAX_NOTIFICATIONS: usize = 3;

/// Who started a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The timer.
    Background,
    /// An operator's button.
    Manual,
}

/// Starts the background monitor on the async runtime; it runs until the app quits.
pub fn start(app: AppHandle) {
    tauri::async_runtime::spawn(async move {
        loop {
            let state = app.state::<AppState>();
            tick(&app, &state).await;
            tokio::select! {
                () = tokio::time::sleep(INTERVAL) => {}
                () = state.watch.wake.notified() => {}
            }
        }
    });
}

/// One round: run the detectors if the operator may, then tell of new critical incidents.
async fn tick(app: &AppHandle, state: &AppState) {
    // The idle lock holds even when the window reports nothing.
    if state.lock_if_idle().await {
        return;
    }
    let Some(current) = state.current() else {
        return;
    };
    if current.must_change_password() {
        return;
    }
    state.watch.follow(current.serial());
    let (db, session, actor) = match state.authorised().await {
        Ok(signed_in) => signed_in,
        Err(e) => {
            tracing::debug!(code = ?e.code, "background monitor: not signed in");
            return;
        }
    };
    retention_if_due(app, state, &db, &actor).await;
    mail_if_configured(state, &db, &session);
    if rbac::allows(&actor, Permission::MonitorRun) && session.ring.is_some() {
        match state
            .watch
            .run(&state.config(), &db, &session, &actor)
            .await
        {
            Ok(report) => {
                tracing::info!(
                    new_events = report.new_events,
                    opened = report.opened,
                    folded = report.folded,
                    critical = report.critical.len(),
                    "background monitor ran the detectors"
                );
                announce(app, state, &db, &actor, &report, Source::Background).await;
                return;
            }
            // Keys not granted to this machine yet: the next round tries again.
            Err(e) if e.code == ErrorCode::KeysUnavailable => {
                tracing::debug!("background monitor: no data keys here, detectors not run");
            }
            // Another console or worker is running them; it records what it finds.
            Err(e) if e.code == ErrorCode::Busy => {
                tracing::debug!("background monitor: the detectors are running elsewhere");
            }
            Err(e) => {
                tracing::warn!(code = ?e.code, error = %e.message, "background monitor failed")
            }
        }
    }
    let told = tell_critical(app, state, &db, &actor, &[]).await;
    if !told.is_empty() {
        emit(
            app,
            IncidentsChangedEvent {
                opened: 0,
                folded: 0,
                critical: told,
                automatic: true,
            },
        );
    }
}

/// Delivers what is due in the outbox on its own task, when mail is configured and this
/// machine holds the operator's keys; an operator without the `contact` purpose delivers
/// nothing (the core refuses before the first message).
fn mail_if_configured(state: &AppState, db: &Arc<Db>, session: &Arc<DesktopSession>) {
    let config = state.config();
    if config.mail.host.is_none() || session.ring.is_none() {
        return;
    }
    let (db, session) = (db.clone(), session.clone());
    tauri::async_runtime::spawn(async move {
        let Some(ring) = session.ring.as_ref() else {
            return;
        };
        let password = match db.keystore.as_deref().map(vigil::mail::password) {
            Some(Ok(p)) => p,
            Some(Err(e)) => {
                tracing::warn!(error = %e, "outbox: the SMTP password could not be read");
                return;
            }
            None => None,
        };
        let mailer =
            match vigil::mail::Mailer::new(&config.mail, password.as_deref().map(|p| p.as_str())) {
                Ok(m) => m,
                Err(e) => {
                    tracing::warn!(error = %e, "outbox: mail settings unusable");
                    return;
                }
            };
        let options = vigil::mail::DeliverOptions::default();
        match vigil::mail::deliver_due(&db.store, ring, &mailer, &options).await {
            Ok(r) => tracing::debug!(sent = r.sent, deferred = r.deferred, "outbox delivered"),
            Err(vigil::mail::MailError::Keys(_)) => {
                tracing::debug!("outbox: no contact key here, nothing delivered")
            }
            Err(e) => tracing::warn!(error = %e, "outbox delivery failed"),
        }
    });
}

/// Starts a retention run on its own task when the operator may run one and one is due. The
/// check is repeated under the job lock ([`retention::run_scheduled`]), so two consoles or
/// workers never both start the same day's run; one that finds the lock taken (busy) skips.
/// An open Retention screen hears of a finished run through the `retention-ran` event. A run
/// once started goes on to its end (each chunk committed), even if the operator signs out.
async fn retention_if_due(app: &AppHandle, state: &AppState, db: &Arc<Db>, actor: &Actor) {
    if !rbac::allows(actor, Permission::RetentionManage) {
        return;
    }
    // This app's previous background run is still going.
    let Ok(one) = state.watch.retention.clone().try_lock_owned() else {
        return;
    };
    let config = state.config();
    let interval = Duration::from_secs(config.worker.retention_interval_hours * 3_600);
    match retention::schedule_due(&db.store, interval).await {
        Ok(true) => {}
        Ok(false) => return,
        Err(e) => {
            tracing::debug!(error = %e, "background retention: schedule not read");
            return;
        }
    }
    let (app, db, actor) = (app.clone(), db.clone(), actor.clone());
    tauri::async_runtime::spawn(async move {
        let _one = one;
        let options = run_options(&config, None);
        match retention::run_scheduled(&db.store, &actor, &options, interval, &mut |_| {
            ControlFlow::Continue(())
        })
        .await
        {
            Ok(Some(record)) => {
                tracing::info!(
                    run = %record.id,
                    status = ?record.status,
                    resumed = record.resumed,
                    "background retention run finished"
                );
                if let Err(e) = app.emit(RETENTION_RAN, RetentionRunView::from(record)) {
                    tracing::debug!(error = %e, "retention-ran event not sent");
                }
            }
            // Another round (here or elsewhere) ran it meanwhile.
            Ok(None) => {}
            Err(RetentionError::Busy) => {
                tracing::debug!("background retention: running on another console or worker");
            }
            Err(e) => tracing::warn!(error = %e, "background retention run failed"),
        }
    });
}

/// After a run: tells the UI what it opened, and the desktop of critical incidents (the run's
/// and any others opened since the last look).
pub async fn announce(
    app: &AppHandle,
    state: &AppState,
    db: &Db,
    actor: &Actor,
    report: &RunReport,
    source: Source,
) {
    let told = tell_critical(app, state, db, actor, &report.critical).await;
    let changed = report.opened > 0 || report.folded > 0 || report.suspensions_expired > 0;
    if changed || !told.is_empty() || source == Source::Manual {
        emit(
            app,
            IncidentsChangedEvent {
                opened: report.opened,
                folded: report.folded,
                critical: report.critical.clone(),
                automatic: source == Source::Background,
            },
        );
    }
}

fn emit(app: &AppHandle, event: IncidentsChangedEvent) {
    if let Err(e) = app.emit(INCIDENTS_CHANGED, event) {
        tracing::debug!(error = %e, "incidents-changed event not sent");
    }
}

/// Shows a desktop notification for each critical incident opened since the last look (and
/// each of `opened`, the ids a run just reported) not told of before; returns their ids.
async fn tell_critical(
    app: &AppHandle,
    state: &AppState,
    db: &Db,
    actor: &Actor,
    opened: &[String],
) -> Vec<String> {
    if !rbac::allows(actor, Permission::IncidentsRead) {
        return Vec::new();
    }
    let Some(session) = state.current() else {
        return Vec::new();
    };
    let since = state.watch.follow(session.serial());
    let at = Timestamp::now();
    let mut found = match incidents::critical_since(&db.store, actor, since).await {
        Ok(found) => found,
        Err(e) => {
            tracing::debug!(error = %e, "background monitor: critical incidents not read");
            Vec::new()
        }
    };
    for id in opened {
        if found.iter().any(|i| &i.id == id) {
            continue;
        }
        if let Ok(detail) = incidents::show(&db.store, actor, id).await {
            found.push(detail.incident);
        }
    }
    let fresh = state.watch.untold(found, at);
    if !fresh.is_empty() {
        tracing::info!(
            incidents = fresh.len(),
            "telling the desktop of critical incidents"
        );
    }
    for (title, body) in notifications(&fresh) {
        notify(app, &title, &body);
    }
    fresh.into_iter().map(|i| i.id).collect()
}

/// The notifications for newly opened critical incidents: one each for the first few, then
/// one for the rest. The text names the kind and the core's summary (counts and windows, no
/// personal data), never the account.
fn notifications(fresh: &[IncidentSummary]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = fresh
        .iter()
        .take(MAX_NOTIFICATIONS)
        .map(|i| {
            (
                format!("Critical incident: {}", kind_words(i.kind.as_str())),
                format!(
                    "{}. Open Vigil to review it.",
                    i.summary.trim_end_matches('.')
                ),
            )
        })
        .collect();
    if fresh.len() > MAX_NOTIFICATIONS {
        let more = fresh.len() - MAX_NOTIFICATIONS;
        out.push((
            format!(
                "{more} more critical incident{}",
                if more == 1 { "" } else { "s" }
            ),
            "Open Vigil's incident queue to review them.".to_owned(),
        ));
    }
    out
}

/// `credential_stuffing` → "credential stuffing".
fn kind_words(kind: &str) -> String {
    kind.replace('_', " ")
}

/// Shows a desktop notification; without a notification service it is only logged.
fn notify(app: &AppHandle, title: &str, body: &str) {
    if let Err(e) = app.notification().builder().title(title).body(body).show() {
        tracing::debug!(error = %e, "desktop notification not shown");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{Watch, OVERLAP_MICROS};
    use vigil::incidents::{IncidentKind, IncidentStatus, Severity};

    fn critical(id: &str) -> IncidentSummary {
        IncidentSummary {
            id: id.into(),
            kind: IncidentKind::CredentialStuffing,
            severity: Severity::Critical,
            status: IncidentStatus::Open,
            username: Some("stuffed.victim".into()),
            user_id: None,
            assignee: None,
            assigned_to_me: false,
            summary: "40 sign-in attempts on 12 accounts from one address in 10 min, 38 failed"
                .into(),
            created_at: Timestamp::now(),
            updated_at: Timestamp::now(),
            evidence_count: 40,
        }
    }

    #[test]
    fn notifications_name_the_kind_and_never_the_account() {
        let shown = notifications(&[critical("a")]);
        assert_eq!(shown.len(), 1);
        assert_eq!(shown[0].0, "Critical incident: credential stuffing");
        assert!(
            shown[0].1.starts_with("40 sign-in attempts"),
            "{}",
            shown[0].1
        );
        assert!(!shown[0].0.contains("stuffed") && !shown[0].1.contains("stuffed"));
        let many: Vec<_> = ["a", "b", "c", "d", "e"]
            .into_iter()
            .map(critical)
            .collect();
        let shown = notifications(&many);
        assert_eq!(shown.len(), 4);
        assert_eq!(shown[3].0, "2 more critical incidents");
    }

    #[test]
    fn each_incident_is_told_once_per_session() {
        let watch = Watch::default();
        let since = watch.follow(1);
        assert!(since.micros() < Timestamp::now().micros() - OVERLAP_MICROS + 1_000_000);
        let at = Timestamp::now();
        assert_eq!(
            watch.untold(vec![critical("a"), critical("b")], at).len(),
            2
        );
        assert_eq!(
            watch.untold(vec![critical("b"), critical("c")], at).len(),
            1
        );
        assert_eq!(watch.follow(1).micros(), at.micros() - OVERLAP_MICROS);
        // A new sign-in starts over.
        watch.follow(2);
        assert_eq!(watch.untold(vec![critical("a")], at).len(), 1);
    }
}
