//! The headless worker: the scheduled jobs, for a server or a systemd timer.
//!
//! A worker signs in as a service account (its own account, the `service` role, its key pair
//! in this machine's keystore, granted the data keys like any operator), so each thing it does
//! is attributed to it in the audit log. It opens a session like any console (the `[auth]`
//! idle timeout and absolute lifetime apply), and before every job it refreshes the session's
//! token and reads its account again, so a suspended or demoted worker, or one whose session
//! was ended or reached its lifetime, stops at its next job. It runs the jobs that are due: retention once per interval
//! (`[worker] retention_interval_hours`, judged from the runs recorded in the database, so a
//! fleet of workers runs it once), the detectors every `monitor_interval_secs`. Every job
//! holds its job lock while it runs ([`crate::store::JobLock`]): on a shared Postgres database
//! one worker runs a job at a time, and if that worker dies its lock goes with its connection
//! and another takes the job over (an interrupted retention run resumes where it stopped).
//! The detectors split in `[monitor] shards` are the exception: each shard has its own lock,
//! so several workers judge different shards at once, and a round's monitor job takes every
//! shard no other worker holds (`busy` only when it could take none).

use std::ops::ControlFlow;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::audit::{self, AuditAction, NewAuditEntry};
use crate::auth::tokens::{self, SessionLimits, TokenError, TokenPair};
use crate::auth::{self, Actor, AuthError};
use crate::config::Config;
use crate::keys::KeyRing;
use crate::monitor::{self, screen::Screener, MonitorError};
use crate::retention::{self, RetentionError, RunOptions};
use crate::store::{Store, StoreError, Timestamp};

/// A scheduled job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Job {
    /// Apply the retention policies.
    Retention,
    /// Run the detectors over new activity.
    Monitor,
    /// Deliver the outbox messages that are due (when `[mail]` is configured).
    Mail,
}

impl Job {
    /// Every job.
    pub const ALL: [Job; 3] = [Job::Retention, Job::Monitor, Job::Mail];

    /// The job's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Job::Retention => "retention",
            Job::Monitor => "monitor",
            Job::Mail => "mail",
        }
    }

    /// Parses a name.
    pub fn parse(s: &str) -> Option<Job> {
        Job::ALL.into_iter().find(|j| j.as_str() == s)
    }
}

/// Why a worker stops.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// The account may no longer act (suspended, deleted).
    #[error(transparent)]
    Account(#[from] AuthError),
    /// The session was refused (ended, idle, past its lifetime, or the account changed).
    #[error("the worker's session was refused: {0}; start the worker again to sign in")]
    Session(#[from] TokenError),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What happened to a job in a round.
#[derive(Debug, Clone, Serialize)]
pub struct JobOutcome {
    /// The job.
    pub job: Job,
    /// When the round looked at it.
    pub at: Timestamp,
    /// `ran`, `not_due`, `busy` (another worker holds it) or `failed`.
    pub outcome: &'static str,
    /// What a run did (the retention run record, or the detectors' report).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub report: Option<serde_json::Value>,
    /// Why it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A signed-in worker.
pub struct Worker {
    store: Store,
    actor: Actor,
    ring: Option<KeyRing>,
    /// The worker's session, when it holds a key pair to sign its tokens with.
    tokens: Option<TokenPair>,
    config: Config,
    screener: Screener,
    jobs: Vec<Job>,
    last_monitor: Option<Instant>,
    /// The detectors as this worker's last monitor run left them, to follow on from.
    carry: monitor::Carry,
    /// Fault injection for crash tests (see [`RunOptions::abort_in_chunk`]).
    pub abort_in_chunk: Option<u64>,
    /// The connection to the mail server the mail job delivers through (set by the caller,
    /// which holds the keystore with the SMTP password); none while `[mail]` is not configured.
    pub mailer: Option<crate::mail::Mailer>,
}

impl Worker {
    /// A worker for `actor` (signed in, with its keys if this machine holds them) that runs
    /// `jobs`; records `worker.started` in the audit log.
    pub async fn start(
        store: Store,
        actor: Actor,
        ring: Option<KeyRing>,
        config: Config,
        screener: Screener,
        jobs: Vec<Job>,
    ) -> Result<Self, WorkerError> {
        let mut tx = store.begin().await?;
        audit::append(
            &mut tx,
            &NewAuditEntry::new(&actor, AuditAction::WorkerStarted).details(serde_json::json!({
                "jobs": jobs.iter().map(|j| j.as_str()).collect::<Vec<_>>(),
                "version": crate::VERSION,
            })),
        )
        .await?;
        tx.commit().await.map_err(StoreError::from)?;
        let tokens = match &ring {
            Some(ring) => Some(
                tokens::issue_limited_at(
                    &store,
                    ring,
                    &actor,
                    "worker",
                    SessionLimits::from_config(&config.auth),
                    Timestamp::now(),
                )
                .await?,
            ),
            None => None,
        };
        Ok(Self {
            store,
            actor,
            tokens,
            ring,
            config,
            screener,
            jobs,
            last_monitor: None,
            carry: monitor::Carry::default(),
            abort_in_chunk: None,
            mailer: None,
        })
    }

    /// How long until the next job may be due.
    pub fn next_wake(&self) -> Duration {
        let monitor = Duration::from_secs(self.config.worker.monitor_interval_secs);
        let until_monitor = match self.last_monitor {
            Some(t) if self.jobs.contains(&Job::Monitor) => monitor.saturating_sub(t.elapsed()),
            _ => monitor,
        };
        // Retention is judged from the database; look at least every minute.
        until_monitor
            .min(Duration::from_secs(60))
            .max(Duration::from_secs(1))
    }

    /// One round: reads the account again (an error ends the worker), then runs each due job.
    pub async fn round(&mut self) -> Result<Vec<JobOutcome>, WorkerError> {
        let mut out = Vec::new();
        // This month's and next month's activity partitions, ahead of the rows (Postgres).
        if let Err(e) = crate::store::partitions::ensure_ahead(&self.store).await {
            tracing::warn!(error = %e, "cannot make the coming month's activity partition");
        }
        for job in self.jobs.clone() {
            self.check_in().await?;
            let at = Timestamp::now();
            let (outcome, report, error) = match job {
                Job::Retention => self.retention().await,
                Job::Monitor => self.monitor().await,
                Job::Mail => self.mail().await,
            };
            if let Some(e) = &error {
                tracing::warn!(job = job.as_str(), error = %e, "job failed");
            }
            out.push(JobOutcome {
                job,
                at,
                outcome,
                report,
                error,
            });
        }
        Ok(out)
    }

    /// Before each job: the session's token refreshed (refused once the session ended, was
    /// idle, or reached its lifetime) and the account read again (refused once suspended; a
    /// role change applies to this job).
    async fn check_in(&mut self) -> Result<(), WorkerError> {
        if let (Some(ring), Some(pair)) = (&self.ring, &self.tokens) {
            let fresh = tokens::refresh(&self.store, ring, &pair.refresh_token).await?;
            self.tokens = Some(fresh);
        }
        self.actor = auth::recheck(&self.store, &self.actor).await?;
        Ok(())
    }

    async fn retention(&mut self) -> (&'static str, Option<serde_json::Value>, Option<String>) {
        let options = RunOptions {
            policy: None,
            chunk: self.config.retention.chunk,
            as_of: None,
            archive_dir: self.config.retention.archive_dir(),
            abort_in_chunk: self.abort_in_chunk,
        };
        let interval = Duration::from_secs(self.config.worker.retention_interval_hours * 3_600);
        match retention::run_scheduled(&self.store, &self.actor, &options, interval, &mut |_| {
            ControlFlow::Continue(())
        })
        .await
        {
            Ok(Some(rec)) => ("ran", serde_json::to_value(&rec).ok(), None),
            Ok(None) => ("not_due", None, None),
            Err(RetentionError::Busy) => ("busy", None, None),
            Err(e) => ("failed", None, Some(e.to_string())),
        }
    }

    async fn mail(&mut self) -> (&'static str, Option<serde_json::Value>, Option<String>) {
        let (Some(mailer), Some(ring)) = (&self.mailer, &self.ring) else {
            return if self.config.mail.host.is_none() {
                ("not_configured", None, None)
            } else {
                (
                    "failed",
                    None,
                    Some("the mail job needs this worker's keys and a mail connection".into()),
                )
            };
        };
        match crate::mail::deliver_due(
            &self.store,
            ring,
            mailer,
            &crate::mail::DeliverOptions::default(),
        )
        .await
        {
            Ok(r) if r.sent + r.deferred + r.failed == 0 => ("not_due", None, None),
            Ok(r) => ("ran", serde_json::to_value(&r).ok(), None),
            Err(e) => ("failed", None, Some(e.to_string())),
        }
    }

    async fn monitor(&mut self) -> (&'static str, Option<serde_json::Value>, Option<String>) {
        let every = Duration::from_secs(self.config.worker.monitor_interval_secs);
        if self.last_monitor.is_some_and(|t| t.elapsed() < every) {
            return ("not_due", None, None);
        }
        let Some(ring) = &self.ring else {
            self.last_monitor = Some(Instant::now());
            return (
                "failed",
                None,
                Some(
                    "this worker has no key pair on this machine: sign in once with `vigil login`, \
                     then an administrator runs `vigil keys grant` for it"
                        .into(),
                ),
            );
        };
        let result = monitor::run_carrying(
            &self.store,
            ring,
            &self.actor,
            &self.config.monitor.policy,
            &self.screener,
            self.config.monitor.shards,
            &mut self.carry,
        )
        .await;
        match result {
            Ok(report) => {
                self.last_monitor = Some(Instant::now());
                ("ran", serde_json::to_value(&report).ok(), None)
            }
            Err(MonitorError::Busy) => ("busy", None, None),
            Err(e) => {
                self.last_monitor = Some(Instant::now());
                ("failed", None, Some(e.to_string()))
            }
        }
    }
}
