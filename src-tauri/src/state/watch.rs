//! The background monitor's state, kept in [`AppState`](super::AppState): the loop in
//! `crate::watch` reads and updates it, and the commands call [`Watch::run`].

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use vigil::auth::Actor;
use vigil::config::Config;
use vigil::incidents::IncidentSummary;
use vigil::keys::KeyError;
use vigil::monitor::{self, screen::Screener, RunReport};
use vigil::rbac::{self, Permission};
use vigil::store::Timestamp;

use super::{Db, DesktopSession};
use crate::error::CommandResult;

/// How far back each look for critical incidents reaches before the previous look: an incident
/// is stamped when its transaction starts, so one committed just after a look can carry a time
/// before it. Incidents already told of are not told again.
pub(crate) const OVERLAP_MICROS: i64 = 5 * 60 * 1_000_000;

/// The background monitor's state, kept in [`AppState`].
#[derive(Default)]
pub struct Watch {
    /// One run of the detectors at a time from this app (the timer and the button).
    running: tokio::sync::Mutex<()>,
    /// Wakes the loop early: after a sign-in.
    pub(crate) wake: tokio::sync::Notify,
    /// Held while a background retention run of this app is under way.
    pub(crate) retention: Arc<tokio::sync::Mutex<()>>,
    told: Mutex<Told>,
}

/// What the signed-in operator has been told of.
#[derive(Default)]
struct Told {
    /// The session's serial number ([`super::DesktopSession::serial`]); 0 before any.
    session: u64,
    last_look: Option<Timestamp>,
    ids: HashSet<String>,
}

impl Watch {
    /// Whether this app's background retention run is under way.
    pub fn retention_running(&self) -> bool {
        self.retention.try_lock().is_err()
    }

    /// Runs the loop now rather than at its next minute (a sign-in just happened).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Runs the detectors as `actor` with their keys on this machine.
    pub async fn run(
        &self,
        config: &Config,
        db: &Db,
        session: &DesktopSession,
        actor: &Actor,
    ) -> CommandResult<RunReport> {
        rbac::require(&db.store, actor, Permission::MonitorRun).await?;
        let ring = session.ring.as_ref().ok_or(KeyError::NoKeyPairHere)?;
        let screener = Screener::from_config(&config.monitor, &[])?;
        let _one = self.running.lock().await;
        Ok(monitor::run(
            &db.store,
            ring,
            actor,
            &config.monitor.policy,
            &screener,
            config.monitor.shards,
        )
        .await?)
    }

    /// Starts over when the signed-in session is not the one last seen; returns when to look
    /// back to for critical incidents.
    pub(crate) fn follow(&self, session: u64) -> Timestamp {
        let mut told = self.told.lock().unwrap_or_else(|p| p.into_inner());
        if told.session != session {
            *told = Told {
                session,
                last_look: None,
                ids: HashSet::new(),
            };
        }
        let last = *told.last_look.get_or_insert_with(Timestamp::now);
        Timestamp::from_micros(last.micros() - OVERLAP_MICROS)
    }

    /// The incidents of `found` not told of yet, now remembered as told; the look ended at `at`.
    pub(crate) fn untold(
        &self,
        found: Vec<IncidentSummary>,
        at: Timestamp,
    ) -> Vec<IncidentSummary> {
        let mut told = self.told.lock().unwrap_or_else(|p| p.into_inner());
        told.last_look = Some(at);
        found
            .into_iter()
            .filter(|i| told.ids.insert(i.id.clone()))
            .collect()
    }
}
