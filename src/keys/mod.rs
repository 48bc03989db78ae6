//! Keys: where operators' secrets are kept ([`keystore`]) and the key hierarchy on top.
//!
//! Every operator has an RSA key pair per machine: the public half in `user_keys`, the private
//! half only in that machine's keystore, sealed with a key derived from the operator's password
//! ([`sealed`]). Data keys (AES-256, by [`Purpose`], versioned) are stored only wrapped with
//! RSA-OAEP for each key pair allowed to use them (`key_grants`). Signing in and unlocking gives
//! a [`KeyRing`] that holds the unwrapped data keys in memory for the session.
//!
//! Each key pair also has an Ed25519 token-signing key ([`signing`]), sealed beside the RSA key,
//! its public half in `user_keys`: the operator's access tokens are signed on their own machine.

/// The OS keychain or file keystore, a floor below the keys (the store reads from it too).
pub use crate::keystore;
pub(crate) mod legacy;
mod repo;
pub mod rotation;
pub mod sealed;
pub mod signing;
pub mod split;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde::Serialize;

use crate::audit::{self, AuditAction, AuditActor, NewAuditEntry};
use crate::crypto::field::{self, FieldError, Place};
use crate::crypto::{KeyBits, KeyVersion, PrivateKey, PublicKey, SymmetricKey, TokenSigningKey};
use crate::identity::{Actor, UserId};
pub use crate::rbac::Purpose;
use crate::rbac::{self, Forbidden, Permission};
use crate::store::{Store, StoreError, Timestamp, Tx};
use keystore::{Keystore, KeystoreError, SecretName};

pub use rotation::{RotationProgress, RotationReport};

fn wrap_label(purpose: Purpose, version: u32) -> String {
    format!("vigil-data-key-v1:{}:{version}", purpose.as_str())
}

/// Why a key operation failed. None of the messages carries key material or personal data.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The actor lacks the permission.
    #[error(transparent)]
    Forbidden(#[from] Forbidden),
    /// The keystore failed.
    #[error(transparent)]
    Keystore(#[from] KeystoreError),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// This machine's keystore has no key pair for the operator.
    #[error(
        "no key pair for this operator in this machine's keystore: run `vigil keys enrol` here, \
         then ask an administrator to run `vigil keys grant USERNAME`"
    )]
    NoKeyPairHere,
    /// The key pair in the keystore was retired (after a password reset or revocation).
    #[error(
        "this machine's key pair was retired: run `vigil keys enrol` to make a new one, then ask \
         an administrator to grant it the data keys"
    )]
    KeyPairRetired,
    /// The keystore item does not open with the password (or was altered).
    #[error("the key pair in the keystore does not open with this password")]
    Unseal,
    /// The keystore's key pair does not match the database's public key.
    #[error("the key pair in the keystore does not match the one registered for this operator")]
    KeyPairMismatch,
    /// The operator's key pair holds no grant of this data key version.
    #[error("no access to the {0} key {1}: an administrator must grant it")]
    NotGranted(Purpose, KeyVersion),
    /// A wrapped data key did not unwrap.
    #[error("the wrapped {0} key {1} does not open with this key pair")]
    Unwrap(Purpose, KeyVersion),
    /// The data keys were never created (the database was not initialised by this version).
    #[error("no {0} data key exists; run `vigil init` on a fresh database")]
    NotProvisioned(Purpose),
    /// No operator by that name.
    #[error("no operator named {0}")]
    UnknownOperator(String),
    /// The operator has no key pair to grant to.
    #[error("{0} has no key pair yet: they must run `vigil keys enrol` on their machine first")]
    NoKeyPair(String),
    /// A role of the operator holds the purpose they tried to give up.
    #[error("your role holds the {0} key; only a purpose your roles do not hold can be given up")]
    RoleHolds(Purpose),
    /// Nobody else holds the purpose.
    #[error(
        "nobody else holds the {0} key yet: grant it to a compliance officer (or the role that \
         holds it) first, or what it opens would open for nobody"
    )]
    LastHolder(Purpose),
    /// The operator holds no grant of the purpose.
    #[error("you hold no {0} key")]
    NotHeld(Purpose),
    /// An operator may not revoke their own access.
    #[error("you cannot revoke your own keys; another administrator must")]
    RevokeSelf,
    /// An encrypted field did not open.
    #[error(transparent)]
    Field(#[from] FieldError),
    /// The purpose is retired: nothing new is made with it.
    #[error("the {0} key is retired; its values are re-sealed by `vigil keys split-pii`")]
    Retired(Purpose),
    /// A rotation could not finish.
    #[error("rotation of the {0} key did not converge: rows keep arriving under old versions")]
    RotationStalled(Purpose),
}

impl From<sqlx::Error> for KeyError {
    fn from(e: sqlx::Error) -> Self {
        KeyError::Store(e.into())
    }
}

/// Key size for key pairs made at a first sign-in (`vigil keys enrol` takes the configured one).
pub const DEFAULT_BITS: KeyBits = KeyBits::B2048;

/// The keystore entry that holds an operator's sealed private key.
fn private_key_entry() -> SecretName {
    SecretName::parse("rsa-private-key").expect("valid name")
}

/// An operator's unlocked keys for one session: their private key and the data keys they hold,
/// unwrapped on demand and kept only in memory.
pub struct KeyRing {
    operator: UserId,
    user_key_id: String,
    private: PrivateKey,
    signing: TokenSigningKey,
    keys: Mutex<HashMap<(Purpose, u32), Arc<SymmetricKey>>>,
}

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyRing")
            .field("operator", &self.operator)
            .field("key_pair", &self.private.public_key().fingerprint())
            .finish_non_exhaustive()
    }
}

impl KeyRing {
    /// The operator whose keys these are.
    pub fn operator(&self) -> UserId {
        self.operator
    }

    /// This machine's public key for the operator.
    pub fn public_key(&self) -> &PublicKey {
        self.private.public_key()
    }

    /// The operator's private key, for opening envelopes addressed to them.
    pub fn private_key(&self) -> &PrivateKey {
        &self.private
    }

    /// This machine's token-signing key for the operator.
    pub fn token_signing_key(&self) -> &TokenSigningKey {
        &self.signing
    }

    /// The `user_keys` id of this machine's key pair (the `kid` of the tokens it signs).
    pub fn key_pair_id(&self) -> &str {
        &self.user_key_id
    }

    /// Data key `purpose` version `version`, unwrapping its grant on first use.
    pub async fn key(
        &self,
        store: &Store,
        purpose: Purpose,
        version: KeyVersion,
    ) -> Result<Arc<SymmetricKey>, KeyError> {
        if let Some(k) = self.cached(purpose, version) {
            return Ok(k);
        }
        if let Some(wrapped) = repo::grant(store, purpose, version.0, &self.user_key_id).await? {
            return self.unwrap_into_cache(purpose, purpose, version.0, &wrapped);
        }
        // A value an older version sealed under the retired `pii` purpose, not yet re-sealed
        // (`keys split-pii`): the split numbers `contact` and `network` versions after `pii`'s,
        // so a version names one key only.
        if matches!(purpose, Purpose::Contact | Purpose::Network) {
            if let Some(wrapped) =
                repo::grant(store, Purpose::Pii, version.0, &self.user_key_id).await?
            {
                return self.unwrap_into_cache(purpose, Purpose::Pii, version.0, &wrapped);
            }
        }
        Err(KeyError::NotGranted(purpose, version))
    }

    /// Whether this key pair holds `purpose`'s current version.
    pub async fn holds(&self, store: &Store, purpose: Purpose) -> Result<bool, KeyError> {
        match self.current(store, purpose).await {
            Ok(_) => Ok(true),
            Err(KeyError::NotGranted(..) | KeyError::NotProvisioned(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// The version new values of `purpose` are written with, and its key.
    pub async fn current(
        &self,
        store: &Store,
        purpose: Purpose,
    ) -> Result<(KeyVersion, Arc<SymmetricKey>), KeyError> {
        let v = repo::active_version(store, purpose)
            .await?
            .ok_or(KeyError::NotProvisioned(purpose))?;
        let version = KeyVersion(v);
        Ok((version, self.key(store, purpose, version).await?))
    }

    /// Seals `plaintext` at `place` with the current `purpose` key.
    pub async fn seal_field(
        &self,
        store: &Store,
        purpose: Purpose,
        place: &Place<'_>,
        plaintext: &[u8],
    ) -> Result<(KeyVersion, Vec<u8>), KeyError> {
        let (version, key) = self.current(store, purpose).await?;
        Ok((version, field::seal(&key, version, place, plaintext)))
    }

    /// Opens a field sealed with any granted version of `purpose`.
    pub async fn open_field(
        &self,
        store: &Store,
        purpose: Purpose,
        place: &Place<'_>,
        sealed: &[u8],
    ) -> Result<zeroize::Zeroizing<Vec<u8>>, KeyError> {
        let version = field::key_version(sealed)?;
        let key = self.key(store, purpose, version).await?;
        Ok(field::open(&key, place, sealed)?)
    }

    fn remember(&self, purpose: Purpose, version: u32, key: SymmetricKey) {
        self.keys
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert((purpose, version), Arc::new(key));
    }

    fn cached(&self, purpose: Purpose, version: KeyVersion) -> Option<Arc<SymmetricKey>> {
        self.keys
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&(purpose, version.0))
            .cloned()
    }

    fn unwrap_into_cache(
        &self,
        purpose: Purpose,
        wrapped_as: Purpose,
        version: u32,
        wrapped: &[u8],
    ) -> Result<Arc<SymmetricKey>, KeyError> {
        let raw = self
            .private
            .decrypt(&wrap_label(wrapped_as, version), wrapped)
            .map_err(|_| KeyError::Unwrap(purpose, KeyVersion(version)))?;
        let key = Arc::new(
            SymmetricKey::from_slice(&raw).ok_or(KeyError::Unwrap(purpose, KeyVersion(version)))?,
        );
        self.keys
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert((purpose, version), key.clone());
        Ok(key)
    }
}

/// Makes a key pair for `operator` on this machine: public half in `user_keys` (within `tx`),
/// private half sealed with `password` into `keystore`. Returns the new `user_keys` id.
async fn make_key_pair(
    tx: &mut Tx,
    keystore: &dyn Keystore,
    operator: UserId,
    password: &str,
    bits: KeyBits,
) -> Result<(String, PrivateKey), KeyError> {
    let key = tokio::task::spawn_blocking(move || PrivateKey::generate(bits))
        .await
        .expect("key generation task panicked")
        .map_err(|_| KeyError::KeyPairMismatch)?;
    let user_key = uuid::Uuid::now_v7();
    let public = key.public_key();
    repo::insert_user_key(
        tx,
        &user_key.to_string(),
        &operator.to_string(),
        public.bits() as i64,
        public.spki_der(),
        &public.fingerprint().to_hex(),
        Timestamp::now(),
    )
    .await?;
    let signing = TokenSigningKey::generate();
    repo::set_signing_key(&mut **tx, &user_key.to_string(), signing.public_key()).await?;
    let sealed = {
        let pw = zeroize::Zeroizing::new(password.to_owned());
        let der = key.to_pkcs8_der();
        let op = operator.as_uuid();
        tokio::task::spawn_blocking(move || {
            let k = PrivateKey::from_pkcs8_der(&der).expect("own key parses");
            sealed::seal(op, user_key, &k, &signing, &pw)
        })
        .await
        .expect("sealing task panicked")
    };
    keystore.put(operator.as_uuid(), &private_key_entry(), &sealed)?;
    Ok((user_key.to_string(), key))
}

/// For `vigil init`: the first operator's key pair and version 1 of every data key, granted to
/// it (the first administrator holds every purpose until they relinquish the ones their role
/// does not), inside the bootstrap transaction.
pub async fn provision_first_operator(
    tx: &mut Tx,
    keystore: &dyn Keystore,
    operator: UserId,
    password: &str,
    bits: KeyBits,
) -> Result<(), KeyError> {
    let (user_key, key) = make_key_pair(tx, keystore, operator, password, bits).await?;
    let now = Timestamp::now();
    repo::set_first_admin(tx, &operator.to_string(), now).await?;
    for purpose in Purpose::ALL {
        let id = uuid::Uuid::now_v7().to_string();
        repo::insert_data_key(tx, &id, purpose, 1, now).await?;
        let dk = SymmetricKey::random();
        let wrapped = key
            .public_key()
            .encrypt(&wrap_label(purpose, 1), dk.expose())
            .map_err(|_| KeyError::Unwrap(purpose, KeyVersion(1)))?;
        repo::insert_grant(tx, &id, &user_key, &wrapped, None, now).await?;
    }
    audit::append(
        tx,
        &NewAuditEntry::new(AuditActor::System("init"), AuditAction::DataKeysCreated)
            .target(format!("user:{operator}"))
            .details(serde_json::json!({
                "purposes": Purpose::ALL.iter().map(|p| p.as_str()).collect::<Vec<_>>(),
                "version": 1,
                "key_pair": key.public_key().fingerprint().to_hex(),
            })),
    )
    .await?;
    Ok(())
}

/// Makes a new key pair for the signed-in operator on this machine (replacing any in this
/// keystore). It holds no data keys until an administrator grants them.
pub async fn enrol(
    store: &Store,
    keystore: &dyn Keystore,
    actor: &Actor,
    password: &str,
    bits: KeyBits,
) -> Result<PublicKey, KeyError> {
    let mut tx = store.begin().await?;
    let (_, key) = make_key_pair(&mut tx, keystore, actor.user_id(), password, bits).await?;
    audit::append(
        &mut tx,
        &NewAuditEntry::new(actor, AuditAction::KeyPairEnrolled)
            .target(format!("user:{}", actor.user_id()))
            .details(serde_json::json!({
                "fingerprint": key.public_key().fingerprint().to_hex(),
                "bits": key.public_key().bits(),
            })),
    )
    .await?;
    tx.commit().await?;
    Ok(key.public_key().clone())
}

/// Opens this machine's key pair for `actor` with their password, for the session (data keys
/// are unwrapped on first use).
pub async fn unlock(
    store: &Store,
    keystore: &dyn Keystore,
    actor: &Actor,
    password: &str,
) -> Result<KeyRing, KeyError> {
    let opened = open_sealed(store, keystore, actor.user_id(), password).await?;
    finish_unlock(store, keystore, password, opened).await
}

/// This machine's sealed key pair for `operator`, checked against the database (their live
/// key pair) and opened with `password`: the argon2id half of [`unlock`]. It changes nothing,
/// so sign-in runs it beside the password check and keeps it only if the password is right.
pub struct SealedOpen {
    operator: UserId,
    row: repo::UserKeyRow,
    opened: sealed::Unsealed,
}

/// The first half of [`unlock`] (see [`SealedOpen`]).
pub async fn open_sealed(
    store: &Store,
    keystore: &dyn Keystore,
    operator: UserId,
    password: &str,
) -> Result<SealedOpen, KeyError> {
    let item = keystore
        .get(operator.as_uuid(), &private_key_entry())?
        .ok_or(KeyError::NoKeyPairHere)?;
    let bytes = item.expose().to_vec();
    let user_key = sealed::SealedKey(&bytes)
        .user_key_id()
        .map_err(|_| KeyError::Unseal)?;
    let row = repo::user_key_by_id(store, &user_key.to_string())
        .await?
        .filter(|r| r.user_id == operator.to_string())
        .ok_or(KeyError::NoKeyPairHere)?;
    if row.retired {
        return Err(KeyError::KeyPairRetired);
    }
    let pw = zeroize::Zeroizing::new(password.to_owned());
    let opened = tokio::task::spawn_blocking(move || {
        sealed::SealedKey(&bytes).open_all(operator.as_uuid(), &pw)
    })
    .await
    .expect("unsealing task panicked")
    .map_err(|_| KeyError::Unseal)?;
    let public = opened.private.public_key();
    if public.spki_der() != row.der.as_slice() || public.fingerprint().to_hex() != row.fingerprint {
        return Err(KeyError::KeyPairMismatch);
    }
    Ok(SealedOpen {
        operator,
        row,
        opened,
    })
}

/// The second half of [`unlock`]: settles the key pair's token-signing key and makes the ring.
pub async fn finish_unlock(
    store: &Store,
    keystore: &dyn Keystore,
    password: &str,
    open: SealedOpen,
) -> Result<KeyRing, KeyError> {
    let SealedOpen {
        operator,
        row,
        opened,
    } = open;
    let signing = signing::settle(
        store,
        keystore,
        operator,
        &row.id,
        &opened.private,
        opened.signing,
        password,
    )
    .await?;
    // Data keys are unwrapped on first use (each costs an RSA private-key operation) and
    // then kept in memory for the session.
    Ok(KeyRing {
        operator,
        user_key_id: row.id,
        private: opened.private,
        signing,
        keys: Mutex::new(HashMap::new()),
    })
}

/// An open key ring's secrets, for a short-lived sealed session record (the command line's
/// `vigil login`): the key pair id, the private key (PKCS#8 DER) and the token-signing seed,
/// length-prefixed, in memory that is wiped on drop. Data keys are not included: they are
/// unwrapped again on first use.
pub(crate) fn session_material(ring: &KeyRing) -> zeroize::Zeroizing<Vec<u8>> {
    let der = ring.private.to_pkcs8_der();
    let id = ring.user_key_id.as_bytes();
    let seed = ring.signing.seed();
    let mut out =
        zeroize::Zeroizing::new(Vec::with_capacity(8 + id.len() + der.len() + seed.len()));
    out.extend_from_slice(&(id.len() as u32).to_be_bytes());
    out.extend_from_slice(id);
    out.extend_from_slice(&(der.len() as u32).to_be_bytes());
    out.extend_from_slice(&der);
    out.extend_from_slice(seed);
    out
}

/// Reopens a key ring from [`session_material`] without the password: only while its key pair
/// is still `operator`'s live one in the database and matches the private key (a reset, a
/// revocation or a new key pair ends it, as it ends a password sign-in's keys).
pub(crate) async fn resume(
    store: &Store,
    operator: UserId,
    material: &[u8],
) -> Result<KeyRing, KeyError> {
    fn take<'a>(b: &mut &'a [u8]) -> Option<&'a [u8]> {
        let len = u32::from_be_bytes(b.get(..4)?.try_into().ok()?) as usize;
        let part = b.get(4..4 + len)?;
        *b = &b[4 + len..];
        Some(part)
    }
    let mut rest = material;
    let id = take(&mut rest)
        .and_then(|i| std::str::from_utf8(i).ok())
        .map(str::to_owned)
        .ok_or(KeyError::Unseal)?;
    let der = take(&mut rest).ok_or(KeyError::Unseal)?;
    let seed: [u8; crate::crypto::signing::SEED_LEN] =
        rest.try_into().map_err(|_| KeyError::Unseal)?;
    let seed = zeroize::Zeroizing::new(seed);
    let row = repo::user_key_by_id(store, &id)
        .await?
        .filter(|r| r.user_id == operator.to_string())
        .ok_or(KeyError::NoKeyPairHere)?;
    if row.retired {
        return Err(KeyError::KeyPairRetired);
    }
    let private = PrivateKey::from_pkcs8_der(der).map_err(|_| KeyError::Unseal)?;
    if private.public_key().spki_der() != row.der.as_slice() {
        return Err(KeyError::KeyPairMismatch);
    }
    Ok(KeyRing {
        operator,
        user_key_id: row.id,
        private,
        signing: TokenSigningKey::from_seed(&seed),
        keys: Mutex::new(HashMap::new()),
    })
}

/// What `grant` did.
#[derive(Debug, Clone, Serialize)]
pub struct GrantReport {
    /// The operator's key pairs that received grants.
    pub key_pairs: Vec<String>,
    /// Grants written (data key versions × key pairs), not counting ones already there.
    pub grants: u64,
    /// The purposes wrapped now.
    pub granted: Vec<Purpose>,
    /// The purposes the granting console does not hold: ordered, and wrapped by the next
    /// console or worker that holds them and signs in.
    pub pending: Vec<Purpose>,
}

/// Wraps, for each live key pair of `username`, every live version of exactly the purposes of
/// their roles ([`rbac::role_holds`]). A purpose this console does not hold is ordered instead
/// ([`GrantReport::pending`]) and completed by [`complete_pending`] on a holder's console. Needs
/// [`Permission::KeysManage`].
pub async fn grant(
    store: &Store,
    ring: &KeyRing,
    actor: &Actor,
    username: &str,
) -> Result<GrantReport, KeyError> {
    let _permit = rbac::require(store, actor, Permission::KeysManage).await?;
    let mut tx = store.begin().await?;
    let target = repo::operator_id(&mut tx, username)
        .await?
        .ok_or_else(|| KeyError::UnknownOperator(username.to_owned()))?;
    let pairs = repo::live_user_keys(&mut tx, &target).await?;
    if pairs.is_empty() {
        return Err(KeyError::NoKeyPair(username.to_owned()));
    }
    let purposes = entitled(&mut tx, &target).await?;
    let now = Timestamp::now();
    let by = actor.user_id().to_string();
    let mut report = GrantReport {
        key_pairs: pairs.iter().map(|p| p.fingerprint.clone()).collect(),
        grants: 0,
        granted: Vec::new(),
        pending: Vec::new(),
    };
    for purpose in purposes {
        if ring.holds(store, purpose).await? {
            for pair in &pairs {
                report.grants +=
                    wrap_all_versions(&mut tx, store, ring, purpose, pair, &by, now).await?;
            }
            report.granted.push(purpose);
        } else {
            for pair in &pairs {
                repo::insert_pending(&mut tx, &pair.id, purpose, &by, now).await?;
            }
            report.pending.push(purpose);
        }
    }
    audit::append(
        &mut tx,
        &NewAuditEntry::new(actor, AuditAction::KeysGranted)
            .target(format!("user:{target}"))
            .details(serde_json::json!({
                "key_pairs": report.key_pairs,
                "grants": report.grants,
                "granted": report.granted,
                "pending": report.pending,
            })),
    )
    .await?;
    tx.commit().await?;
    Ok(report)
}

/// Wraps every live version of `purpose` that `ring` holds for `pair`; returns the new grants.
async fn wrap_all_versions(
    tx: &mut Tx,
    store: &Store,
    ring: &KeyRing,
    purpose: Purpose,
    pair: &repo::UserKeyRow,
    by: &str,
    now: Timestamp,
) -> Result<u64, KeyError> {
    let public = PublicKey::from_spki_der(&pair.der).map_err(|_| KeyError::KeyPairMismatch)?;
    let mut n = 0;
    for dk in repo::live_data_keys(tx, purpose).await? {
        let key = ring.key(store, purpose, KeyVersion(dk.version)).await?;
        let wrapped = public
            .encrypt(&wrap_label(purpose, dk.version), key.expose())
            .map_err(|_| KeyError::KeyPairMismatch)?;
        if repo::insert_grant(tx, &dk.id, &pair.id, &wrapped, Some(by), now).await? {
            n += 1;
        }
    }
    repo::delete_pending(tx, &pair.id, purpose).await?;
    Ok(n)
}

/// The purposes `user_id` may hold now: those of their roles if their account is active,
/// none otherwise.
async fn entitled(tx: &mut Tx, user_id: &str) -> Result<Vec<Purpose>, KeyError> {
    let (roles, status) = repo::roles_and_status(tx, user_id).await?;
    if status != "active" {
        return Ok(Vec::new());
    }
    let roles: Vec<rbac::Role> = roles.iter().filter_map(|r| rbac::Role::parse(r)).collect();
    Ok(rbac::purposes_of(&roles))
}

/// Completes the pending grants this console can wrap (those of purposes `ring` holds, for key
/// pairs whose owner's roles still hold the purpose); drops those whose owner no longer may.
/// Called when an operator or worker signs in; returns the grants completed.
pub async fn complete_pending(store: &Store, ring: &KeyRing) -> Result<u64, KeyError> {
    let pending = {
        let mut conn = store.pool().acquire().await?;
        repo::pending_grants(&mut conn, None).await?
    };
    if pending.is_empty() {
        return Ok(0);
    }
    let mut done = 0;
    let now = Timestamp::now();
    for p in pending {
        let Some(purpose) = Purpose::parse(&p.purpose) else {
            continue;
        };
        if !ring.holds(store, purpose).await? {
            continue;
        }
        let mut tx = store.begin().await?;
        // Only an order an active administrator placed, for an owner whose roles still hold
        // the purpose, is carried out.
        let ordered_by_admin = match &p.requested_by_id {
            Some(by) => {
                let (roles, status) = repo::roles_and_status(&mut tx, by).await?;
                status == "active" && roles.iter().any(|r| r == "admin")
            }
            None => false,
        };
        if !ordered_by_admin || !entitled(&mut tx, &p.user_id).await?.contains(&purpose) {
            repo::delete_pending(&mut tx, &p.user_key_id, purpose).await?;
            tx.commit().await?;
            continue;
        }
        let pair = repo::UserKeyRow {
            id: p.user_key_id.clone(),
            user_id: p.user_id.clone(),
            der: p.der.clone(),
            fingerprint: p.fingerprint.clone(),
            retired: false,
        };
        let by = ring.operator.to_string();
        let n = wrap_all_versions(&mut tx, store, ring, purpose, &pair, &by, now).await?;
        audit::append(
            &mut tx,
            &NewAuditEntry::new(
                AuditActor::Operator(ring.operator.as_uuid()),
                AuditAction::KeysGranted,
            )
            .target(format!("user:{}", p.user_id))
            .details(serde_json::json!({
                "key_pairs": [p.fingerprint],
                "grants": n,
                "granted": [purpose],
                "completes_pending_from": p.requested_by,
            })),
        )
        .await?;
        tx.commit().await?;
        done += n;
    }
    Ok(done)
}

/// Within `tx`, after `user_id`'s roles or status changed: deletes their wraps (and pending
/// grants) of every purpose they may no longer hold, and starts a rotation of each such purpose
/// they held, so their copies open nothing written from now on. The first administrator keeps
/// the purposes they have not relinquished while they remain an active administrator. Returns
/// the purposes taken away.
pub async fn drop_unentitled(
    tx: &mut Tx,
    actor: &Actor,
    user_id: UserId,
) -> Result<Vec<Purpose>, KeyError> {
    let id = user_id.to_string();
    let keep = entitled(tx, &id).await?;
    let first_admin = repo::first_admin(tx).await?.as_deref() == Some(id.as_str());
    let (roles, status) = repo::roles_and_status(tx, &id).await?;
    if first_admin && status == "active" && roles.iter().any(|r| r == "admin") {
        return Ok(Vec::new());
    }
    let mut dropped = Vec::new();
    for purpose in Purpose::ALL {
        if keep.contains(&purpose) {
            continue;
        }
        if repo::delete_grants_of_user_purpose(tx, &id, purpose).await? > 0 {
            rotation::schedule_in(tx, actor, purpose).await?;
            dropped.push(purpose);
        }
    }
    if !dropped.is_empty() {
        audit::append(
            tx,
            &NewAuditEntry::new(actor, AuditAction::KeysRevoked)
                .target(format!("user:{id}"))
                .details(serde_json::json!({ "purposes": dropped, "reason": "roles" })),
        )
        .await?;
    }
    Ok(dropped)
}

/// The signed-in operator gives up `purpose`, which their roles do not hold (the first
/// administrator's extra purposes, once a compliance officer holds them too): their wraps of it
/// are deleted and its rotation is asked for (made by the next other holder who signs in, so
/// the new key never reaches them). Refused while nobody else holds it, since the data it
/// opens would then open for nobody.
pub async fn relinquish(
    store: &Store,
    actor: &Actor,
    purpose: Purpose,
) -> Result<Purpose, KeyError> {
    let mut tx = store.begin().await?;
    let id = actor.user_id().to_string();
    if entitled(&mut tx, &id).await?.contains(&purpose) {
        return Err(KeyError::RoleHolds(purpose));
    }
    if repo::other_holders(&mut tx, purpose, &id).await? == 0 {
        return Err(KeyError::LastHolder(purpose));
    }
    if repo::delete_grants_of_user_purpose(&mut tx, &id, purpose).await? == 0 {
        return Err(KeyError::NotHeld(purpose));
    }
    audit::append(
        &mut tx,
        &NewAuditEntry::new(actor, AuditAction::KeysRevoked)
            .target(format!("user:{id}"))
            .details(serde_json::json!({ "purposes": [purpose], "reason": "relinquished" })),
    )
    .await?;
    rotation::schedule_in(&mut tx, actor, purpose).await?;
    tx.commit().await?;
    Ok(purpose)
}

/// A grant ordered and not yet wrapped, for `keys status`.
#[derive(Debug, Clone, Serialize)]
pub struct PendingGrant {
    /// The grantee.
    pub username: String,
    /// Their key pair's fingerprint.
    pub fingerprint: String,
    /// The purpose waiting for a holder.
    pub purpose: String,
    /// The administrator who ordered it.
    pub requested_by: Option<String>,
    /// When (RFC 3339).
    pub requested_at: String,
}

/// What the signed-in operator holds, for `keys status`.
#[derive(Debug, Clone, Serialize)]
pub struct Holdings {
    /// The operator.
    pub username: String,
    /// Purposes whose current key a live key pair of theirs holds.
    pub held: Vec<String>,
    /// Purposes their roles hold.
    pub entitled: Vec<Purpose>,
    /// Pending grants: every one for an administrator, their own for anyone else.
    pub pending_grants: Vec<PendingGrant>,
    /// Purposes whose rotation was asked for and waits for a holder's console.
    pub rotations_requested: Vec<Purpose>,
}

/// The signed-in operator's purposes and the pending grants they may see. Any operator.
pub async fn holdings(store: &Store, actor: &Actor) -> Result<Holdings, KeyError> {
    let id = actor.user_id().to_string();
    let mut conn = store.pool().acquire().await?;
    let held = repo::held_purposes(&mut conn, &id).await?;
    let all = rbac::allows(actor, Permission::KeysManage);
    let pending_grants = repo::pending_grants(&mut conn, (!all).then_some(id.as_str()))
        .await?
        .into_iter()
        .map(|p| PendingGrant {
            username: p.username,
            fingerprint: p.fingerprint,
            purpose: p.purpose,
            requested_by: p.requested_by,
            requested_at: Timestamp::from_micros(p.requested_at).to_rfc3339(),
        })
        .collect();
    Ok(Holdings {
        username: actor.username().to_string(),
        held,
        entitled: rbac::purposes_of(actor.roles()),
        pending_grants,
        rotations_requested: repo::requested_rotations(store).await?,
    })
}

/// Removes every grant of `username`'s key pairs and rotates every purpose they held, so their
/// copies open nothing written from now on: those this console holds start now (run
/// [`rotation::run`] on each returned rotation to re-encrypt existing rows), the others are
/// asked for and start at a holder's next sign-in. Needs [`Permission::KeysManage`].
pub async fn revoke(
    store: &Store,
    ring: &KeyRing,
    actor: &Actor,
    username: &str,
) -> Result<Vec<rotation::Rotation>, KeyError> {
    let _permit = rbac::require(store, actor, Permission::KeysManage).await?;
    let mut tx = store.begin().await?;
    let target = repo::operator_id(&mut tx, username)
        .await?
        .ok_or_else(|| KeyError::UnknownOperator(username.to_owned()))?;
    if target == actor.user_id().to_string() {
        return Err(KeyError::RevokeSelf);
    }
    let mut removed = 0;
    let mut held = Vec::new();
    for purpose in Purpose::ALL {
        let n = repo::delete_grants_of_user_purpose(&mut tx, &target, purpose).await?;
        if n > 0 {
            held.push(purpose);
        }
        removed += n;
    }
    audit::append(
        &mut tx,
        &NewAuditEntry::new(actor, AuditAction::KeysRevoked)
            .target(format!("user:{target}"))
            .details(serde_json::json!({ "grants_removed": removed, "purposes": held })),
    )
    .await?;
    // Purposes this console holds rotate now; the others are asked for, so the administrator
    // never sees a new key of a purpose they do not hold.
    let mut rotations = Vec::new();
    for purpose in held {
        if ring.holds(store, purpose).await? {
            rotations.push(
                rotation::start_in(&mut tx, Some(store), Some(ring), actor, purpose, true).await?,
            );
        } else {
            rotation::schedule_in(&mut tx, actor, purpose).await?;
        }
    }
    tx.commit().await?;
    Ok(rotations)
}

/// One version of a data key, for `keys status`.
#[derive(Debug, Clone, Serialize)]
pub struct VersionStatus {
    /// The version number.
    pub version: u32,
    /// `active`, `rotating_out` or `retired`.
    pub status: String,
    /// Rows whose values were made with it.
    pub rows: i64,
    /// Key pairs holding it.
    pub grants: i64,
}

/// One purpose, for `keys status`.
#[derive(Debug, Clone, Serialize)]
pub struct PurposeStatus {
    /// The purpose.
    pub purpose: Purpose,
    /// The version new values are written with.
    pub current: Option<u32>,
    /// Every version.
    pub versions: Vec<VersionStatus>,
    /// A rotation under way: from, to, rows re-encrypted so far.
    pub rotation: Option<RotationStatus>,
}

/// A rotation under way.
#[derive(Debug, Clone, Serialize)]
pub struct RotationStatus {
    /// Old version.
    pub from: u32,
    /// New version.
    pub to: u32,
    /// Rows re-encrypted so far.
    pub rows_done: i64,
    /// Rows still under older versions.
    pub rows_left: i64,
}

/// An operator or service account as a holder of keys.
#[derive(Debug, Clone, Serialize)]
pub struct KeyHolder {
    /// Username.
    pub username: String,
    /// Roles.
    pub roles: Vec<String>,
    /// Account status.
    pub status: String,
    /// Live key pairs (one per machine the operator enrolled).
    pub key_pairs: i64,
    /// The newest live key pair's public-key fingerprint.
    pub fingerprint: Option<String>,
    /// Purposes whose current data key is granted to a live key pair of theirs.
    pub granted: Vec<Purpose>,
    /// Purposes their roles hold (what a grant wraps for them).
    pub entitled: Vec<Purpose>,
}

/// Operators and service accounts, their key pairs and the purposes granted to them. Needs
/// [`Permission::KeysManage`].
pub async fn holders(store: &Store, actor: &Actor) -> Result<Vec<KeyHolder>, KeyError> {
    let _permit = rbac::require(store, actor, Permission::KeysManage).await?;
    Ok(repo::key_holders(store)
        .await?
        .into_iter()
        .map(|h| KeyHolder {
            username: h.username,
            key_pairs: h.key_pairs,
            fingerprint: h.fingerprint,
            granted: h.granted.iter().filter_map(|p| Purpose::parse(p)).collect(),
            entitled: if h.status == "active" {
                rbac::purposes_of(
                    &h.roles
                        .iter()
                        .filter_map(|r| rbac::Role::parse(r))
                        .collect::<Vec<_>>(),
                )
            } else {
                Vec::new()
            },
            roles: h.roles,
            status: h.status,
        })
        .collect())
}

/// Every purpose's versions, their use and grants, and rotations under way. Needs
/// [`Permission::KeysManage`].
pub async fn status(store: &Store, actor: &Actor) -> Result<Vec<PurposeStatus>, KeyError> {
    let _permit = rbac::require(store, actor, Permission::KeysManage).await?;
    let mut out = Vec::new();
    for purpose in Purpose::ALL {
        let mut counts: HashMap<u32, i64> = HashMap::new();
        for spec in rotation::specs(purpose) {
            for (v, n) in repo::version_counts(store, spec.table, spec.version_col).await? {
                *counts.entry(v).or_default() += n;
            }
        }
        let mut versions = Vec::new();
        let mut current = None;
        for dk in repo::all_data_keys(store, purpose).await? {
            if dk.status == "active" {
                current = Some(dk.version);
            }
            versions.push(VersionStatus {
                version: dk.version,
                rows: counts.get(&dk.version).copied().unwrap_or(0),
                grants: repo::grant_count(store, &dk.id).await?,
                status: dk.status,
            });
        }
        let rotation =
            repo::running_rotation_progress(store, purpose)
                .await?
                .map(|(from, to, rows_done)| RotationStatus {
                    from,
                    to,
                    rows_done,
                    rows_left: counts
                        .iter()
                        .filter(|(v, _)| **v != to)
                        .map(|(_, n)| *n)
                        .sum(),
                });
        out.push(PurposeStatus {
            purpose,
            current,
            versions,
            rotation,
        });
    }
    Ok(out)
}

/// Retires every key pair of `user_id` (after an administrator resets their password, the old
/// sealed key no longer opens) and removes their grants. Runs inside the caller's transaction.
pub async fn retire_key_pairs(tx: &mut Tx, user_id: UserId) -> Result<u64, KeyError> {
    repo::delete_grants_of_user(tx, &user_id.to_string()).await?;
    Ok(repo::retire_user_keys(tx, &user_id.to_string(), Timestamp::now()).await?)
}

/// Re-seals this machine's private key after the operator changed their password.
pub fn reseal(keystore: &dyn Keystore, ring: &KeyRing, new_password: &str) -> Result<(), KeyError> {
    let user_key =
        uuid::Uuid::parse_str(&ring.user_key_id).map_err(|_| KeyError::KeyPairMismatch)?;
    let sealed = sealed::seal(
        ring.operator.as_uuid(),
        user_key,
        &ring.private,
        &ring.signing,
        new_password,
    );
    keystore.put(ring.operator.as_uuid(), &private_key_entry(), &sealed)?;
    Ok(())
}

/// Every purpose that seals or derives platform data: what seeding a whole platform needs.
pub const PLATFORM_PURPOSES: [Purpose; 4] = [
    Purpose::Contact,
    Purpose::Network,
    Purpose::BlindIndex,
    Purpose::ContentHash,
];

/// The current keys for writing new values, fetched once for a batch of writes: exactly the
/// purposes the caller names, so a console whose role lacks one is refused before anything is
/// written.
#[derive(Debug, Clone)]
pub struct WriteKeys {
    keys: Vec<(Purpose, KeyVersion, Arc<SymmetricKey>)>,
}

impl WriteKeys {
    /// The current keys of `purposes` from `ring`; fails with [`KeyError::NotGranted`] if the
    /// session holds one of them not.
    pub async fn current(
        store: &Store,
        ring: &KeyRing,
        purposes: &[Purpose],
    ) -> Result<Self, KeyError> {
        let mut keys = Vec::with_capacity(purposes.len());
        for p in purposes {
            let (v, k) = ring.current(store, *p).await?;
            keys.push((*p, v, k));
        }
        Ok(Self { keys })
    }

    fn get(&self, purpose: Purpose) -> (KeyVersion, &SymmetricKey) {
        let (_, v, k) = self
            .keys
            .iter()
            .find(|(p, _, _)| *p == purpose)
            .unwrap_or_else(|| {
                panic!("WriteKeys fetched without the {purpose} key its caller uses")
            });
        (*v, k)
    }

    /// Seals a person's email or phone at `place` with the current `contact` key.
    pub fn seal_contact(&self, place: &Place<'_>, plaintext: &[u8]) -> Vec<u8> {
        let (v, k) = self.get(Purpose::Contact);
        field::seal(k, v, place, plaintext)
    }

    /// The `contact` key version [`WriteKeys::seal_contact`] uses.
    pub fn contact_version(&self) -> KeyVersion {
        self.get(Purpose::Contact).0
    }

    /// Seals connection data (an IP address) at `place` with the current `network` key.
    pub fn seal_network(&self, place: &Place<'_>, plaintext: &[u8]) -> Vec<u8> {
        let (v, k) = self.get(Purpose::Network);
        field::seal(k, v, place, plaintext)
    }

    /// The `network` key version [`WriteKeys::seal_network`] uses.
    pub fn network_version(&self) -> KeyVersion {
        self.get(Purpose::Network).0
    }

    /// The blind index of `value`.
    pub fn blind_index(&self, kind: crate::crypto::mac::BlindKind, value: &str) -> [u8; 32] {
        crate::crypto::mac::blind_index(self.get(Purpose::BlindIndex).1, kind, value)
    }

    /// The `blind_index` key version [`WriteKeys::blind_index`] uses.
    pub fn blind_version(&self) -> KeyVersion {
        self.get(Purpose::BlindIndex).0
    }

    /// The keyed content hash of `bytes`.
    pub fn content_hash(&self, bytes: &[u8]) -> [u8; 32] {
        crate::crypto::mac::content_hash(self.get(Purpose::ContentHash).1, bytes)
    }

    /// The `content_hash` key version [`WriteKeys::content_hash`] uses.
    pub fn content_version(&self) -> KeyVersion {
        self.get(Purpose::ContentHash).0
    }
}

/// Versions of `purpose` not yet retired (values made with any of them may still exist).
/// For `contact` and `network`, the live versions of the retired `pii` count too, until
/// `keys split-pii` has re-sealed what they made.
pub async fn live_versions(store: &Store, purpose: Purpose) -> Result<Vec<KeyVersion>, KeyError> {
    let mut rows = repo::all_data_keys(store, purpose).await?;
    if matches!(purpose, Purpose::Contact | Purpose::Network) {
        rows.extend(repo::all_data_keys(store, Purpose::Pii).await?);
    }
    Ok(rows
        .into_iter()
        .filter(|d| d.status != "retired")
        .map(|d| KeyVersion(d.version))
        .collect())
}

/// Records a platform user's public key (end-to-end encrypted comments are sealed to it; the
/// private half stays on that person's device).
pub async fn register_public_key(
    tx: &mut Tx,
    user: uuid::Uuid,
    key: &PublicKey,
) -> Result<(), KeyError> {
    repo::insert_user_key(
        tx,
        &uuid::Uuid::now_v7().to_string(),
        &user.to_string(),
        key.bits() as i64,
        key.spki_der(),
        &key.fingerprint().to_hex(),
        Timestamp::now(),
    )
    .await?;
    Ok(())
}

/// Whether `user` has a key pair that is not retired, on any machine.
pub async fn has_live_key_pair(store: &Store, user: UserId) -> Result<bool, KeyError> {
    let mut tx = store.begin().await?;
    let live = !repo::live_user_keys(&mut tx, &user.to_string())
        .await?
        .is_empty();
    tx.rollback().await?;
    Ok(live)
}
