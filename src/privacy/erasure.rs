//! Erasure (Art. 17) as a plan of steps recorded in the database. Each step's work and its
//! "done" mark commit in one transaction, so a crash or kill mid-step rolls that step back and
//! the next run resumes there; the end state is the same as an uninterrupted run.
//!
//! The subject's identifiers are kept, sealed with the `pii` key, on the request while it runs
//! (so a resumed run can still scan for them after the profile is gone) and wiped when it
//! completes. The last step is the residual scan: only a clean scan completes the request, and
//! its result goes into the receipt in the audit chain.

use rand::RngCore;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::repo::{self, RequestRow, StepUpdate};
use super::scan::{self, Identifiers, ScanReport};
use super::{Flow, PrivacyError, RequestStatus, RunOptions, RunOutcome, RunProgress};
use crate::audit::{self, AuditAction, NewAuditEntry};
use crate::crypto::Place;
use crate::identity::Actor;
use crate::keys::{KeyRing, Purpose};
use crate::store::{Store, Timestamp};

/// What an erasure does with the subject's comments.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CommentPolicy {
    /// Keep them, attributed to a random pseudonym ("Deleted user 7f3a"), so threads stay
    /// readable.
    #[default]
    Anonymise,
    /// Remove their text, keeping an empty placeholder so replies still thread.
    Delete,
}

impl CommentPolicy {
    /// Parses `anonymise` (or `anonymize`) or `delete`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "anonymise" | "anonymize" => Some(Self::Anonymise),
            "delete" => Some(Self::Delete),
            _ => None,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Self::Anonymise => "anonymise",
            Self::Delete => "delete",
        }
    }
}

/// One step of a receipt.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ReceiptStep {
    /// The step.
    pub name: String,
    /// Rows it changed.
    pub rows: i64,
}

/// The proof of an erasure, written into the audit chain: what was done and what the scan
/// found (nothing). It names no identifier and no pseudonym.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ErasureReceipt {
    /// The request.
    pub request_id: String,
    /// When it completed.
    pub completed_at: String,
    /// What happened to the comments.
    pub comments: CommentPolicy,
    /// Every step with its row count.
    pub steps: Vec<ReceiptStep>,
    /// The residual scan.
    pub scan: ScanReport,
}

/// The plan, in order.
pub(super) const STEPS: [&str; 9] = [
    "revoke_sessions",
    "delete_auth_data",
    "delete_reactions",
    "delete_activity",
    "comments",
    "private_recipients",
    "detach_records",
    "delete_profile",
    "residual_scan",
];

fn sealed_place(id: &str) -> Place<'_> {
    Place::new("dsr_requests", "subject_sealed", id)
}

pub(super) async fn run(
    store: &Store,
    ring: &KeyRing,
    actor: &Actor,
    row: &RequestRow,
    options: &RunOptions,
    progress: &mut (dyn FnMut(&RunProgress) -> Flow + Send),
) -> Result<RunOutcome, PrivacyError> {
    let id = row.request_id()?;
    let id_s = id.to_string();

    // Holds are checked on every run: one placed part-way stops what is left.
    if let Some(subject) = &row.subject_id {
        let holds = repo::holds_on_user(store, subject).await?;
        if !holds.is_empty() {
            let reasons: Vec<String> = holds
                .iter()
                .map(|(kind, hid, reason)| match kind.as_str() {
                    "open_incident" => format!("open incident {hid} ({reason})"),
                    "incident_hold" => format!("legal hold {hid} on an incident: {reason}"),
                    _ => format!("legal hold {hid}: {reason}"),
                })
                .collect();
            let mut tx = store.begin().await?;
            audit::append(
                &mut tx,
                &NewAuditEntry::new(actor, AuditAction::DsrErasureBlocked)
                    .target(id_s.clone())
                    .details(serde_json::json!({
                        "holds": holds.iter().map(|(k, h, _)| serde_json::json!({"kind": k, "id": h}))
                            .collect::<Vec<_>>(),
                    })),
            )
            .await?;
            tx.commit().await?;
            return Err(PrivacyError::Held { reasons });
        }
    }

    let ids: Identifiers = if row.status()? == RequestStatus::Verified {
        let subject = row.subject_uuid().ok_or(PrivacyError::SubjectNotFound)?;
        let profile = repo::profile(store, &subject.to_string())
            .await?
            .ok_or(PrivacyError::SubjectNotFound)?;
        if profile.kind != "platform" {
            return Err(PrivacyError::Invalid(
                "only platform accounts are erased through a request; an operator's account is \
                 retired by an administrator, and the audit chain keeps what they did"
                    .into(),
            ));
        }
        let ids = scan::identifiers(store, ring, subject)
            .await?
            .ok_or(PrivacyError::SubjectNotFound)?;
        let json =
            Zeroizing::new(serde_json::to_vec(&ids).map_err(|e| PrivacyError::Io(e.to_string()))?);
        let (version, sealed) = ring
            .seal_field(store, Purpose::Contact, &sealed_place(&id_s), &json)
            .await?;
        let mut tx = store.begin().await?;
        repo::set_in_progress(
            &mut tx,
            &id_s,
            Some((&sealed, i64::from(version.0))),
            Timestamp::now().micros(),
        )
        .await?;
        repo::insert_steps(&mut tx, &id_s, &STEPS).await?;
        audit::append(
            &mut tx,
            &NewAuditEntry::new(actor, AuditAction::DsrErasureStarted)
                .target(id_s.clone())
                .details(serde_json::json!({
                    "steps": STEPS,
                    "comments": options.comments.as_str(),
                })),
        )
        .await?;
        tx.commit().await?;
        ids
    } else {
        let sealed = row.subject_sealed.as_ref().ok_or_else(|| {
            PrivacyError::Invalid("this erasure's working record is missing".into())
        })?;
        let plain = ring
            .open_field(store, Purpose::Contact, &sealed_place(&id_s), sealed)
            .await?;
        serde_json::from_slice(&plain).map_err(|e| PrivacyError::Io(e.to_string()))?
    };

    let steps = repo::steps_of(store, &id_s).await?;
    let total = steps.len() as i64;
    let subject = row.subject_id.clone();
    for step in steps.iter().filter(|s| s.status != "done") {
        let mut emit = |state: &'static str, rows: i64| {
            progress(&RunProgress {
                step: step.no,
                steps: total,
                name: step.name.clone(),
                state,
                rows,
            })
        };
        if emit("running", 0) == Flow::Stop {
            return Err(PrivacyError::Stopped { step: step.no });
        }
        let started = Timestamp::now();
        if step.name == "residual_scan" {
            return finish(
                store, ring, actor, &id_s, &ids, step.no, started, options, emit,
            )
            .await;
        }
        let user = subject.as_deref().ok_or_else(|| {
            PrivacyError::Invalid(format!(
                "step {} needs the subject's account, which is already gone",
                step.name
            ))
        })?;
        let now = started.micros();
        let mut tx = store.begin().await?;
        let (rows, details): (u64, serde_json::Value) = match step.name.as_str() {
            "revoke_sessions" => (
                repo::erase_sessions(&mut tx, user).await?,
                serde_json::json!({}),
            ),
            "delete_auth_data" => (
                repo::erase_auth(&mut tx, user).await?,
                serde_json::json!({}),
            ),
            "delete_reactions" => (
                repo::erase_reactions(&mut tx, user).await?,
                serde_json::json!({}),
            ),
            "delete_activity" => (
                repo::erase_activity(&mut tx, user).await?,
                serde_json::json!({}),
            ),
            "comments" => {
                let n = repo::count_comments_by(&mut tx, user).await?;
                match options.comments {
                    CommentPolicy::Anonymise if n > 0 => {
                        let mut raw = [0u8; 8];
                        rand::rngs::OsRng.fill_bytes(&mut raw);
                        let tag = hex::encode(raw);
                        let pseudonym = uuid::Uuid::new_v4().to_string();
                        repo::insert_pseudonym(
                            &mut tx,
                            &pseudonym,
                            &format!("deleted-{tag}"),
                            &format!("Deleted user {}", &tag[..4]),
                            now,
                        )
                        .await?;
                        let moved = repo::reassign_comments(&mut tx, user, &pseudonym).await?;
                        (moved, serde_json::json!({ "policy": "anonymise" }))
                    }
                    CommentPolicy::Anonymise => (0, serde_json::json!({ "policy": "anonymise" })),
                    CommentPolicy::Delete => (
                        repo::wipe_comments(&mut tx, user, now).await?,
                        serde_json::json!({ "policy": "delete" }),
                    ),
                }
            }
            "private_recipients" => {
                let (removed, wiped) = repo::erase_recipient_entries(&mut tx, user, now).await?;
                (
                    removed + wiped,
                    serde_json::json!({ "recipient_entries": removed, "unreadable_wiped": wiped }),
                )
            }
            "detach_records" => (
                repo::detach_records(&mut tx, user).await?,
                serde_json::json!({}),
            ),
            "delete_profile" => (
                repo::delete_user(&mut tx, user).await?,
                serde_json::json!({}),
            ),
            other => {
                return Err(PrivacyError::Invalid(format!(
                    "unknown erasure step {other}"
                )));
            }
        };
        repo::update_step(
            &mut tx,
            &id_s,
            step.no,
            &StepUpdate {
                status: "done",
                rows: rows as i64,
                started_at: now,
                finished_at: Timestamp::now().micros(),
                error: None,
                details: Some(details.to_string()),
            },
        )
        .await?;
        // The work is done but not committed: stopping here is a kill mid-step.
        if emit("finishing", rows as i64) == Flow::Stop {
            drop(tx);
            return Err(PrivacyError::Stopped { step: step.no });
        }
        tx.commit().await?;
        if emit("done", rows as i64) == Flow::Stop {
            return Err(PrivacyError::Stopped { step: step.no });
        }
    }
    Err(PrivacyError::Invalid(
        "this erasure has no residual scan step left to run".into(),
    ))
}

#[allow(clippy::too_many_arguments)]
async fn finish(
    store: &Store,
    ring: &KeyRing,
    actor: &Actor,
    id: &str,
    ids: &Identifiers,
    no: i64,
    started: Timestamp,
    options: &RunOptions,
    mut emit: impl FnMut(&'static str, i64) -> Flow,
) -> Result<RunOutcome, PrivacyError> {
    let report = scan::scan(store, ring, ids, None).await?;
    let now = Timestamp::now();
    let mut tx = store.begin().await?;
    let details = serde_json::to_string(&report).map_err(|e| PrivacyError::Io(e.to_string()))?;
    if !report.is_clean() {
        let found: u64 = report.hits.iter().map(|h| h.count).sum();
        repo::update_step(
            &mut tx,
            id,
            no,
            &StepUpdate {
                status: "failed",
                rows: 0,
                started_at: started.micros(),
                finished_at: now.micros(),
                error: Some(&format!(
                    "the subject's identifiers are still in {} place(s) ({found} in all); remove \
                     them and run the request again",
                    report.hits.len()
                )),
                details: Some(details),
            },
        )
        .await?;
        audit::append(
            &mut tx,
            &NewAuditEntry::new(actor, AuditAction::DsrResidualFound)
                .target(id.to_owned())
                .details(serde_json::json!({ "hits": report.hits })),
        )
        .await?;
        tx.commit().await?;
        emit("failed", 0);
        return Ok(RunOutcome::ResidualFound { report });
    }
    repo::update_step(
        &mut tx,
        id,
        no,
        &StepUpdate {
            status: "done",
            rows: 0,
            started_at: started.micros(),
            finished_at: now.micros(),
            error: None,
            details: Some(details),
        },
    )
    .await?;
    let steps = repo::steps_of(store, id).await?;
    let comments = steps
        .iter()
        .find(|s| s.name == "comments")
        .and_then(|s| s.details.as_ref())
        .and_then(|d| d.get("policy"))
        .and_then(|p| p.as_str())
        .and_then(CommentPolicy::parse)
        .unwrap_or(options.comments);
    let receipt = ErasureReceipt {
        request_id: id.to_owned(),
        completed_at: now.to_rfc3339(),
        comments,
        steps: steps
            .iter()
            .map(|s| ReceiptStep {
                name: s.name.clone(),
                rows: s.rows_affected,
            })
            .collect(),
        scan: report,
    };
    repo::set_completed(&mut tx, id, now.micros()).await?;
    audit::append(
        &mut tx,
        &NewAuditEntry::new(actor, AuditAction::DsrErasureReceipt)
            .target(id.to_owned())
            .details(serde_json::to_value(&receipt).map_err(|e| PrivacyError::Io(e.to_string()))?),
    )
    .await?;
    tx.commit().await?;
    // The completed request no longer holds the sealed identifiers: flush that too.
    store.checkpoint().await?;
    emit("done", 0);
    Ok(RunOutcome::Erased { receipt })
}
