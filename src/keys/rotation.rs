//! Key rotation: a new version of a data key, then every value made with older versions remade
//! with it, in chunks of one transaction each, resumable from the last committed chunk after a
//! crash or kill. Reads keep working throughout: a value opens with whichever version made it.
//! Old versions are retired (and their wrapped copies deleted) only when no row uses them.

use serde::Serialize;

use super::{repo, KeyError, KeyRing, Purpose};
use crate::audit::{self, AuditAction, NewAuditEntry};
use crate::crypto::field::{self, Place};
use crate::crypto::mac::{self, BlindKind};
use crate::crypto::{KeyVersion, PublicKey, SymmetricKey};
use crate::identity::Actor;
use crate::rbac::{self, Permission};
use crate::store::{Store, Timestamp, Tx};

/// What kind of value a column holds, and so how rotation remakes it.
pub(crate) enum SpecKind {
    /// Field ciphertexts (re-encrypted under the new key).
    Sealed(&'static [&'static str]),
    /// A blind index of another column's ciphertext (recomputed under the new key; opening the
    /// source needs `source_purpose`).
    Blind {
        source: &'static str,
        source_purpose: Purpose,
        target: &'static str,
        kind: BlindKind,
    },
    /// A comment's content hash, of its public body or else of its envelope.
    ContentHash,
}

/// A table's values made with one purpose's keys, and the column naming the version.
pub(crate) struct Spec {
    pub table: &'static str,
    pub id_col: &'static str,
    pub version_col: &'static str,
    pub kind: SpecKind,
}

const CONTACT: &[Spec] = &[
    Spec {
        table: "users",
        id_col: "id",
        version_col: "contact_key_version",
        kind: SpecKind::Sealed(&["email_enc", "phone_enc"]),
    },
    Spec {
        table: "dsr_requests",
        id_col: "id",
        version_col: "contact_key_version",
        kind: SpecKind::Sealed(&["subject_sealed"]),
    },
];
const NETWORK: &[Spec] = &[
    Spec {
        table: "activity_log",
        id_col: "id",
        version_col: "network_key_version",
        kind: SpecKind::Sealed(&["ip_enc"]),
    },
    Spec {
        table: "incidents",
        id_col: "id",
        version_col: "network_key_version",
        kind: SpecKind::Sealed(&["source_ip_enc"]),
    },
];
/// Values sealed with the retired `pii` purpose, found by its version column (rows `keys
/// split-pii` has not yet re-sealed). The incidents' and erasures' copies carried no version.
const PII: &[Spec] = &[
    Spec {
        table: "users",
        id_col: "id",
        version_col: "pii_key_version",
        kind: SpecKind::Sealed(&["email_enc", "phone_enc"]),
    },
    Spec {
        table: "activity_log",
        id_col: "id",
        version_col: "pii_key_version",
        kind: SpecKind::Sealed(&["ip_enc"]),
    },
];
const BLIND: &[Spec] = &[
    Spec {
        table: "users",
        id_col: "id",
        version_col: "bidx_key_version",
        kind: SpecKind::Blind {
            source: "email_enc",
            source_purpose: Purpose::Contact,
            target: "email_bidx",
            kind: BlindKind::Email,
        },
    },
    Spec {
        table: "activity_log",
        id_col: "id",
        version_col: "bidx_key_version",
        kind: SpecKind::Blind {
            source: "ip_enc",
            source_purpose: Purpose::Network,
            target: "ip_bidx",
            kind: BlindKind::Ip,
        },
    },
    Spec {
        table: "incidents",
        id_col: "id",
        version_col: "bidx_key_version",
        kind: SpecKind::Blind {
            source: "source_ip_enc",
            source_purpose: Purpose::Network,
            target: "source_ip_bidx",
            kind: BlindKind::Ip,
        },
    },
];
const HASH: &[Spec] = &[Spec {
    table: "comments",
    id_col: "id",
    version_col: "hash_key_version",
    kind: SpecKind::ContentHash,
}];

/// Where `purpose`'s keys were used.
pub(crate) fn specs(purpose: Purpose) -> &'static [Spec] {
    match purpose {
        Purpose::Contact => CONTACT,
        Purpose::Network => NETWORK,
        Purpose::Pii => PII,
        Purpose::BlindIndex => BLIND,
        Purpose::ContentHash => HASH,
    }
}

impl Spec {
    fn field_table(&self) -> repo::FieldTable<'static> {
        repo::FieldTable {
            table: self.table,
            id_col: self.id_col,
            version_col: self.version_col,
        }
    }

    fn read_cols(&self) -> Vec<(&'static str, bool)> {
        match &self.kind {
            SpecKind::Sealed(cols) => cols.iter().map(|c| (*c, false)).collect(),
            SpecKind::Blind { source, .. } => vec![(source, false)],
            SpecKind::ContentHash => vec![("body", true), ("body_envelope", false)],
        }
    }

    pub(crate) fn write_cols(&self) -> Vec<&'static str> {
        match &self.kind {
            SpecKind::Sealed(cols) => cols.to_vec(),
            SpecKind::Blind { target, .. } => vec![target],
            SpecKind::ContentHash => vec!["content_hash"],
        }
    }
}

/// A rotation under way.
#[derive(Debug, Clone, Serialize)]
pub struct Rotation {
    /// Its `key_rotations` id.
    pub id: String,
    /// The purpose rotated.
    pub purpose: Purpose,
    /// The version that was current before.
    pub from: u32,
    /// The new version.
    pub to: u32,
}

/// Progress, after each committed chunk.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct RotationProgress {
    /// The purpose rotated.
    pub purpose: Purpose,
    /// Rows remade in this run.
    pub done: u64,
    /// Rows under older versions when this run began.
    pub total: u64,
}

/// What a finished rotation did.
#[derive(Debug, Clone, Serialize)]
pub struct RotationReport {
    /// The purpose rotated.
    pub purpose: Purpose,
    /// The new version.
    pub version: u32,
    /// Rows remade in this run.
    pub rows: u64,
    /// Versions retired.
    pub retired: Vec<u32>,
}

/// Starts a rotation of `purpose` (or returns the one already under way, unless a rotation was
/// asked for since: then a new one supersedes it). Needs [`Permission::KeysManage`], or a role
/// that holds `purpose`.
pub async fn start(
    store: &Store,
    ring: &KeyRing,
    actor: &Actor,
    purpose: Purpose,
) -> Result<Rotation, KeyError> {
    require_rotate(store, actor, purpose).await?;
    let mut tx = store.begin().await?;
    if purpose == Purpose::Pii {
        return Err(KeyError::Retired(purpose));
    }
    let requested = repo::take_rotation_request(&mut tx, purpose).await?;
    let r = start_in(&mut tx, Some(store), Some(ring), actor, purpose, requested).await?;
    tx.commit().await?;
    Ok(r)
}

/// Within `tx`, after someone lost `purpose`: asks for its rotation. The caller need not hold
/// the purpose and never sees the new key: the next console holding it that signs in makes the
/// new version, wrapped for the key pairs still holding the current one, and starts the
/// rotation ([`start_requested`]; `keys rotate PURPOSE` takes the request up too).
pub(crate) async fn schedule_in(
    tx: &mut Tx,
    actor: &Actor,
    purpose: Purpose,
) -> Result<(), KeyError> {
    repo::request_rotation(tx, purpose, &actor.user_id().to_string(), Timestamp::now()).await?;
    Ok(())
}

/// Starts the rotations others asked for (see [`schedule_in`]) of the purposes `ring` holds and
/// `actor` may rotate, superseding any under way. Called when an operator or worker signs in;
/// returns the rotations started (their rows are re-encrypted by [`run`]).
pub async fn start_requested(
    store: &Store,
    ring: &KeyRing,
    actor: &Actor,
) -> Result<Vec<Rotation>, KeyError> {
    let mut started = Vec::new();
    for purpose in repo::requested_rotations(store).await? {
        if !may_rotate(actor, purpose) || !ring.holds(store, purpose).await? {
            continue;
        }
        let mut tx = store.begin().await?;
        // Another holder's console may have taken it up meanwhile.
        if !repo::take_rotation_request(&mut tx, purpose).await? {
            continue;
        }
        started.push(start_in(&mut tx, Some(store), Some(ring), actor, purpose, true).await?);
        tx.commit().await?;
    }
    Ok(started)
}

/// Within `tx`: a new version of `purpose`, wrapped for every key pair holding the current
/// one. With `force`, a rotation already under way is superseded (after a revocation its
/// target version was wrapped for the revoked operator too). With a ring, its operator must
/// hold the current version (they will remake the values).
pub(super) async fn start_in(
    tx: &mut Tx,
    store: Option<&Store>,
    ring: Option<&KeyRing>,
    actor: &Actor,
    purpose: Purpose,
    force: bool,
) -> Result<Rotation, KeyError> {
    let now = Timestamp::now();
    if let Some(r) = repo::running_rotation(tx, purpose).await? {
        if !force {
            return Ok(Rotation {
                id: r.id,
                purpose,
                from: r.from_version,
                to: r.to_version,
            });
        }
        repo::finish_rotation(tx, &r.id, "failed", now).await?;
    }
    let live = repo::live_data_keys(tx, purpose).await?;
    let active = live
        .iter()
        .find(|d| d.status == "active")
        .cloned()
        .ok_or(KeyError::NotProvisioned(purpose))?;
    // The rotating operator must hold the current key to remake values.
    if let (Some(store), Some(ring)) = (store, ring) {
        ring.key(store, purpose, KeyVersion(active.version)).await?;
    }
    let holders = repo::holders(tx, &active.id).await?;
    let to = repo::max_version(tx, purpose).await? + 1;
    for d in &live {
        repo::set_data_key_status(tx, &d.id, "rotating_out", now).await?;
    }
    let id = uuid::Uuid::now_v7().to_string();
    repo::insert_data_key(tx, &id, purpose, to, now).await?;
    let key = SymmetricKey::random();
    let by = actor.user_id().to_string();
    for h in &holders {
        let public = PublicKey::from_spki_der(&h.der).map_err(|_| KeyError::KeyPairMismatch)?;
        let wrapped = public
            .encrypt(&super::wrap_label(purpose, to), key.expose())
            .map_err(|_| KeyError::KeyPairMismatch)?;
        repo::insert_grant(tx, &id, &h.id, &wrapped, Some(&by), now).await?;
        if let Some(ring) = ring.filter(|r| r.user_key_id == h.id) {
            ring.remember(purpose, to, key.clone());
        }
    }
    let rotation_id = uuid::Uuid::now_v7().to_string();
    repo::insert_rotation(tx, &rotation_id, purpose, active.version, to, now).await?;
    audit::append(
        tx,
        &NewAuditEntry::new(actor, AuditAction::KeyRotationStarted)
            .target(format!("data_key:{}:{to}", purpose.as_str()))
            .details(serde_json::json!({
                "purpose": purpose.as_str(),
                "from": active.version,
                "to": to,
                "key_pairs": holders.len(),
            })),
    )
    .await?;
    Ok(Rotation {
        id: rotation_id,
        purpose,
        from: active.version,
        to,
    })
}

/// Remakes every value of the rotation's purpose made with an older version, `chunk` rows per
/// transaction, from where an earlier run stopped; then retires the old versions. Needs
/// [`Permission::KeysManage`], or a role that holds the purpose.
pub async fn run(
    store: &Store,
    ring: &KeyRing,
    actor: &Actor,
    rotation: &Rotation,
    chunk: usize,
    progress: &mut (dyn FnMut(RotationProgress) + Send),
) -> Result<RotationReport, KeyError> {
    require_rotate(store, actor, rotation.purpose).await?;
    let purpose = rotation.purpose;
    let to = rotation.to;
    let chunk = chunk.clamp(1, 50_000);
    let specs = specs(purpose);
    let new_key = ring.key(store, purpose, KeyVersion(to)).await?;

    let mut tx = store.begin().await?;
    let Some(row) = repo::running_rotation(&mut tx, purpose)
        .await?
        .filter(|r| r.id == rotation.id)
    else {
        // Finished or superseded meanwhile: nothing to do.
        return Ok(RotationReport {
            purpose,
            version: to,
            rows: 0,
            retired: Vec::new(),
        });
    };
    let mut total = 0u64;
    for s in specs {
        total += repo::rows_not_at(&mut tx, s.table, s.version_col, to).await? as u64;
    }
    tx.commit().await?;
    let (mut spec_at, mut after) = parse_cursor(row.cursor.as_deref());
    let mut done = 0u64;

    for _pass in 0..4 {
        while spec_at < specs.len() {
            let spec = &specs[spec_at];
            let mut tx = store.begin().await?;
            let table = spec.field_table();
            let rows =
                repo::field_rows_after(&mut tx, &table, &spec.read_cols(), &after, to, chunk)
                    .await?;
            let Some(last) = rows.last().map(|r| r.id.clone()) else {
                spec_at += 1;
                after.clear();
                repo::advance_rotation(&mut tx, &rotation.id, &format!("{spec_at}:"), 0).await?;
                tx.commit().await?;
                continue;
            };
            let mut remade = Vec::with_capacity(rows.len());
            for r in rows {
                let values = remake(store, ring, purpose, spec, &new_key, to, &r).await?;
                remade.push(repo::RemadeRow {
                    id: r.id,
                    old_version: r.version,
                    values,
                });
            }
            let n = repo::update_field_rows(&mut tx, &table, &spec.write_cols(), &remade, to)
                .await? as i64;
            repo::advance_rotation(&mut tx, &rotation.id, &format!("{spec_at}:{last}"), n).await?;
            tx.commit().await?;
            after = last;
            done += n as u64;
            progress(RotationProgress {
                purpose,
                done,
                total: total.max(done),
            });
        }

        // Rows written under an old version behind the cursor (by a console that read the
        // active version just before the rotation began) are caught by one more pass.
        let mut tx = store.begin().await?;
        let mut left = 0;
        for s in specs {
            left += repo::rows_not_at(&mut tx, s.table, s.version_col, to).await?;
        }
        if left > 0 {
            repo::advance_rotation(&mut tx, &rotation.id, "0:", 0).await?;
            tx.commit().await?;
            spec_at = 0;
            after.clear();
            continue;
        }
        let now = Timestamp::now();
        let mut retired = Vec::new();
        for d in repo::live_data_keys(&mut tx, purpose).await? {
            if d.version != to {
                repo::set_data_key_status(&mut tx, &d.id, "retired", now).await?;
                repo::delete_grants_of_data_key(&mut tx, &d.id).await?;
                retired.push(d.version);
            }
        }
        repo::finish_rotation(&mut tx, &rotation.id, "completed", now).await?;
        audit::append(
            &mut tx,
            &NewAuditEntry::new(actor, AuditAction::KeyRotationCompleted)
                .target(format!("data_key:{}:{to}", purpose.as_str()))
                .details(serde_json::json!({
                    "purpose": purpose.as_str(),
                    "version": to,
                    "rows": row.rows_done + done as i64,
                    "retired": retired,
                })),
        )
        .await?;
        tx.commit().await?;
        return Ok(RotationReport {
            purpose,
            version: to,
            rows: done,
            retired,
        });
    }
    Err(KeyError::RotationStalled(purpose))
}

/// Administrators rotate keys; so may any role that holds the purpose (an administrator who
/// opens no personal data cannot remake it, a compliance officer can).
fn may_rotate(actor: &Actor, purpose: Purpose) -> bool {
    rbac::allows(actor, Permission::KeysManage)
        || rbac::purposes_of(actor.roles()).contains(&purpose)
}

/// [`may_rotate`], enforced: a refusal is the `KeysManage` denial, recorded.
async fn require_rotate(store: &Store, actor: &Actor, purpose: Purpose) -> Result<(), KeyError> {
    if !may_rotate(actor, purpose) {
        rbac::require(store, actor, Permission::KeysManage).await?;
    }
    Ok(())
}

fn parse_cursor(c: Option<&str>) -> (usize, String) {
    match c.and_then(|c| c.split_once(':')) {
        Some((i, id)) => (i.parse().unwrap_or(0), id.to_owned()),
        None => (0, String::new()),
    }
}

/// A row's values remade under the new key.
async fn remake(
    store: &Store,
    ring: &KeyRing,
    purpose: Purpose,
    spec: &Spec,
    new_key: &SymmetricKey,
    to: u32,
    row: &repo::FieldRow,
) -> Result<Vec<Option<Vec<u8>>>, KeyError> {
    let version = KeyVersion(to);
    match &spec.kind {
        SpecKind::Sealed(cols) => {
            let mut out = Vec::with_capacity(cols.len());
            for (col, value) in cols.iter().zip(&row.values) {
                out.push(match value {
                    None => None,
                    Some(sealed) => {
                        let place = Place::new(spec.table, col, &row.id);
                        let plain = ring.open_field(store, purpose, &place, sealed).await?;
                        Some(field::seal(new_key, version, &place, &plain))
                    }
                });
            }
            Ok(out)
        }
        SpecKind::Blind {
            source,
            source_purpose,
            kind,
            ..
        } => {
            let Some(sealed) = &row.values[0] else {
                return Ok(vec![None]);
            };
            let place = Place::new(spec.table, source, &row.id);
            let plain = ring
                .open_field(store, *source_purpose, &place, sealed)
                .await?;
            let text = String::from_utf8_lossy(&plain);
            Ok(vec![Some(mac::blind_index(new_key, *kind, &text).to_vec())])
        }
        SpecKind::ContentHash => {
            let input = row.values[0].as_ref().or(row.values[1].as_ref());
            Ok(vec![input.map(|b| mac::content_hash(new_key, b).to_vec())])
        }
    }
}
