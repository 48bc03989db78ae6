//! The split of the retired `pii` purpose into `contact` (email, phone, an erasure's working
//! record) and `network` (IP addresses): new keys for both, wrapped for the key pairs whose
//! owners' roles hold them, then every value an older version sealed under `pii` re-sealed
//! under its new purpose, in chunks of one transaction each. The state is in the rows (a value
//! re-sealed records its new purpose's version), so a killed run resumes where it stopped; when
//! no `pii` value is left, the `pii` keys are retired and their wraps deleted.

use std::collections::HashMap;
use std::sync::Arc;

use serde::Serialize;

use super::{repo, wrap_label, KeyError, KeyRing, Purpose};
use crate::audit::{self, AuditAction, NewAuditEntry};
use crate::crypto::field::{self, Place};
use crate::crypto::mac::{self, BlindKind};
use crate::crypto::{KeyVersion, PublicKey, SymmetricKey};
use crate::identity::Actor;
use crate::rbac::{self, Permission};
use crate::store::{Store, Timestamp};

/// One table's values sealed under `pii`, and where they go.
pub(super) struct SplitSpec {
    pub table: &'static str,
    /// The sealed columns.
    pub cols: &'static [&'static str],
    /// The purpose they are re-sealed under, and the column recording its version.
    pub to: Purpose,
    pub version_col: &'static str,
    /// Which rows still hold `pii` values.
    pub legacy: &'static str,
    /// The blind index of the first column, recomputed under the current `blind_index` key
    /// (its target column, version column and kind), where the old one recorded no version.
    pub bidx: Option<(&'static str, &'static str, BlindKind)>,
}

const SPECS: &[SplitSpec] = &[
    SplitSpec {
        table: "users",
        cols: &["email_enc", "phone_enc"],
        to: Purpose::Contact,
        version_col: "contact_key_version",
        legacy: "pii_key_version IS NOT NULL",
        bidx: None,
    },
    SplitSpec {
        table: "activity_log",
        cols: &["ip_enc"],
        to: Purpose::Network,
        version_col: "network_key_version",
        legacy: "pii_key_version IS NOT NULL",
        bidx: None,
    },
    SplitSpec {
        table: "incidents",
        cols: &["source_ip_enc"],
        to: Purpose::Network,
        version_col: "network_key_version",
        legacy: "source_ip_enc IS NOT NULL AND network_key_version IS NULL",
        bidx: Some(("source_ip_bidx", "bidx_key_version", BlindKind::Ip)),
    },
    SplitSpec {
        table: "dsr_requests",
        cols: &["subject_sealed"],
        to: Purpose::Contact,
        version_col: "contact_key_version",
        legacy: "subject_sealed IS NOT NULL AND contact_key_version IS NULL",
        bidx: None,
    },
];

/// Progress after each committed chunk.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct SplitProgress {
    /// Rows re-sealed in this run.
    pub done: u64,
    /// Rows under `pii` when this run began.
    pub total: u64,
}

/// What a split did.
#[derive(Debug, Clone, Serialize)]
pub struct SplitReport {
    /// `contact` and `network` keys made by this run (purpose, version).
    pub provisioned: Vec<(Purpose, u32)>,
    /// Rows re-sealed by this run.
    pub rows: u64,
    /// Rows that did not open with any `pii` key (left as they are, and counted here).
    pub unreadable: u64,
    /// `pii` versions retired.
    pub retired: Vec<u32>,
}

/// Rows still sealed under `pii`.
pub async fn remaining(store: &Store) -> Result<u64, KeyError> {
    let mut tx = store.begin().await?;
    let mut n = 0;
    for s in SPECS {
        n += repo::count_where(&mut tx, s.table, s.legacy).await? as u64;
    }
    tx.rollback().await?;
    Ok(n)
}

/// Splits `pii` (see the module doc), `chunk` rows per transaction. Needs
/// [`Permission::KeysManage`] and a console that holds `pii` (the first administrator's, on a
/// database made before the split). On a database that never had `pii`, does nothing.
pub async fn run(
    store: &Store,
    ring: &KeyRing,
    actor: &Actor,
    chunk: usize,
    progress: &mut (dyn FnMut(SplitProgress) + Send),
) -> Result<SplitReport, KeyError> {
    let _permit = rbac::require(store, actor, Permission::KeysManage).await?;
    let chunk = chunk.clamp(1, 50_000);
    let mut report = SplitReport {
        provisioned: Vec::new(),
        rows: 0,
        unreadable: 0,
        retired: Vec::new(),
    };
    let pii_keys = super::live_versions(store, Purpose::Pii).await?;
    if pii_keys.is_empty() {
        return Ok(report);
    }
    report.provisioned = provision(store, ring, actor).await?;
    let mut old = HashMap::new();
    for v in &pii_keys {
        old.insert(v.0, ring.key(store, Purpose::Pii, *v).await?);
    }
    let total = remaining(store).await?;
    let blind = ring.current(store, Purpose::BlindIndex).await?;
    for spec in SPECS {
        let (to_version, to_key) = ring.current(store, spec.to).await?;
        repo::analyze(store, spec.table).await?;
        let mut after = String::new();
        loop {
            let mut tx = store.begin().await?;
            let rows =
                repo::legacy_rows(&mut tx, spec.table, spec.cols, spec.legacy, &after, chunk)
                    .await?;
            let Some(last) = rows.last().map(|r| r.0.clone()) else {
                tx.rollback().await?;
                break;
            };
            let mut resealed = Vec::with_capacity(rows.len());
            for (id, values) in rows {
                match reseal(spec, id, &values, &old, (to_version, &to_key), &blind) {
                    Some(row) => resealed.push(row),
                    None => report.unreadable += 1,
                }
            }
            report.rows += repo::reseal_legacy_rows(
                &mut tx,
                spec.table,
                spec.cols,
                spec.version_col,
                spec.legacy,
                &resealed,
                to_version,
                spec.bidx
                    .map(|(target, version_col, _)| (target, version_col, blind.0)),
            )
            .await?;
            tx.commit().await?;
            after = last;
            progress(SplitProgress {
                done: report.rows,
                total: total.max(report.rows),
            });
        }
    }
    if report.unreadable == 0 && remaining(store).await? == 0 {
        report.retired = retire_pii(store, actor, report.rows).await?;
    }
    Ok(report)
}

/// A legacy row's values re-sealed under `to` (with the blind index of its first value where
/// the spec recomputes one, under `blind`), or `None` if a value opens with none of the `pii`
/// keys `old`.
fn reseal(
    spec: &SplitSpec,
    id: String,
    values: &[Option<Vec<u8>>],
    old: &HashMap<u32, Arc<SymmetricKey>>,
    to: (KeyVersion, &SymmetricKey),
    blind: &(KeyVersion, Arc<SymmetricKey>),
) -> Option<repo::ResealedRow> {
    let mut out = Vec::with_capacity(values.len());
    let mut first_plain = None;
    for (col, value) in spec.cols.iter().zip(values) {
        let Some(sealed) = value else {
            out.push(None);
            continue;
        };
        let place = Place::new(spec.table, col, &id);
        let plain = field::key_version(sealed)
            .ok()
            .and_then(|v| old.get(&v.0))
            .and_then(|k| field::open(k, &place, sealed).ok())?;
        out.push(Some(field::seal(to.1, to.0, &place, &plain)));
        first_plain.get_or_insert(plain);
    }
    let bidx = match (spec.bidx, first_plain) {
        (Some((_, _, kind)), Some(plain)) => {
            Some(mac::blind_index(&blind.1, kind, &String::from_utf8_lossy(&plain)).to_vec())
        }
        _ => None,
    };
    Some(repo::ResealedRow {
        id,
        values: out,
        bidx,
    })
}

/// Makes `contact` and `network` if they do not exist yet, numbered after `pii`'s versions, and
/// wraps them for every live key pair holding the current `pii` whose owner may hold them (the
/// first administrator holds both).
async fn provision(
    store: &Store,
    ring: &KeyRing,
    actor: &Actor,
) -> Result<Vec<(Purpose, u32)>, KeyError> {
    let mut tx = store.begin().await?;
    let mut made = Vec::new();
    let base = repo::max_version(&mut tx, Purpose::Pii).await?;
    let pii_active = repo::live_data_keys(&mut tx, Purpose::Pii)
        .await?
        .into_iter()
        .find(|d| d.status == "active");
    let first_admin = repo::first_admin(&mut tx).await?;
    let now = Timestamp::now();
    for purpose in [Purpose::Contact, Purpose::Network] {
        if repo::max_version(&mut tx, purpose).await? > 0 {
            continue;
        }
        let version = base + 1;
        let id = uuid::Uuid::now_v7().to_string();
        repo::insert_data_key(&mut tx, &id, purpose, version, now).await?;
        let key = SymmetricKey::random();
        let holders = match &pii_active {
            Some(d) => repo::holders(&mut tx, &d.id).await?,
            None => Vec::new(),
        };
        for h in holders {
            let (roles, status) = repo::roles_and_status(&mut tx, &h.user_id).await?;
            let roles: Vec<rbac::Role> =
                roles.iter().filter_map(|r| rbac::Role::parse(r)).collect();
            let may = status == "active"
                && (rbac::purposes_of(&roles).contains(&purpose)
                    || first_admin.as_deref() == Some(h.user_id.as_str()));
            if !may {
                continue;
            }
            let public = PublicKey::from_spki_der(&h.der).map_err(|_| KeyError::KeyPairMismatch)?;
            let wrapped = public
                .encrypt(&wrap_label(purpose, version), key.expose())
                .map_err(|_| KeyError::KeyPairMismatch)?;
            let by = actor.user_id().to_string();
            repo::insert_grant(&mut tx, &id, &h.id, &wrapped, Some(&by), now).await?;
            if h.id == ring.user_key_id {
                ring.remember(purpose, version, key.clone());
            }
        }
        made.push((purpose, version));
    }
    if !made.is_empty() {
        audit::append(
            &mut tx,
            &NewAuditEntry::new(actor, AuditAction::DataKeysCreated).details(serde_json::json!({
                "purposes": made.iter().map(|(p, _)| p.as_str()).collect::<Vec<_>>(),
                "version": base + 1,
                "replaces": "pii",
            })),
        )
        .await?;
    }
    tx.commit().await?;
    Ok(made)
}

/// Retires every `pii` version and deletes its wraps.
async fn retire_pii(store: &Store, actor: &Actor, rows: u64) -> Result<Vec<u32>, KeyError> {
    let mut tx = store.begin().await?;
    let now = Timestamp::now();
    let mut retired = Vec::new();
    for d in repo::live_data_keys(&mut tx, Purpose::Pii).await? {
        repo::set_data_key_status(&mut tx, &d.id, "retired", now).await?;
        repo::delete_grants_of_data_key(&mut tx, &d.id).await?;
        retired.push(d.version);
    }
    audit::append(
        &mut tx,
        &NewAuditEntry::new(actor, AuditAction::KeyRotationCompleted)
            .target("data_key:pii")
            .details(serde_json::json!({
                "split_into": ["contact", "network"],
                "rows": rows,
                "retired": retired,
            })),
    )
    .await?;
    tx.commit().await?;
    Ok(retired)
}
