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

pub mod keystore;
pub(crate) mod legacy;
mod repo;
pub mod rotation;
pub mod sealed;
pub mod signing;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde::Serialize;

use crate::audit::{self, AuditAction, AuditActor, NewAuditEntry};
use crate::auth::{Actor, UserId};
use crate::crypto::field::{self, FieldError, Place};
use crate::crypto::{KeyBits, KeyVersion, PrivateKey, PublicKey, SymmetricKey, TokenSigningKey};
use crate::rbac::{self, Forbidden, Permission};
use crate::store::{Store, StoreError, Timestamp, Tx};
use keystore::{Keystore, KeystoreError, SecretName};

pub use rotation::{RotationProgress, RotationReport};

/// What a data key is for. Each purpose has its own versions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Purpose {
    /// Personal data at rest: email, phone, IPs kept with a person.
    Pii,
    /// Blind indexes for equality lookups (email, IP).
    BlindIndex,
    /// Keyed content hashes of comments.
    ContentHash,
}

impl Purpose {
    /// Every purpose. (TOTP secrets and token signing have no shared key: they are per operator,
    /// see [`crate::mfa`] and [`signing`].)
    pub const ALL: [Purpose; 3] = [Purpose::Pii, Purpose::BlindIndex, Purpose::ContentHash];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::Pii => "pii",
            Purpose::BlindIndex => "blind_index",
            Purpose::ContentHash => "content_hash",
        }
    }

    /// Parses a stored or typed name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == s)
    }

    fn wrap_label(self, version: u32) -> String {
        format!("vigil-data-key-v1:{}:{version}", self.as_str())
    }
}

impl std::fmt::Display for Purpose {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
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
    /// An operator may not revoke their own access.
    #[error("you cannot revoke your own keys; another administrator must")]
    RevokeSelf,
    /// An encrypted field did not open.
    #[error(transparent)]
    Field(#[from] FieldError),
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
        let wrapped = repo::grant(store, purpose, version.0, &self.user_key_id)
            .await?
            .ok_or(KeyError::NotGranted(purpose, version))?;
        self.unwrap_into_cache(purpose, version.0, &wrapped)
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
        version: u32,
        wrapped: &[u8],
    ) -> Result<Arc<SymmetricKey>, KeyError> {
        let raw = self
            .private
            .decrypt(&purpose.wrap_label(version), wrapped)
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
        let pw = password.to_owned();
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
/// it, inside the bootstrap transaction.
pub async fn provision_first_operator(
    tx: &mut Tx,
    keystore: &dyn Keystore,
    operator: UserId,
    password: &str,
    bits: KeyBits,
) -> Result<(), KeyError> {
    let (user_key, key) = make_key_pair(tx, keystore, operator, password, bits).await?;
    let now = Timestamp::now();
    for purpose in Purpose::ALL {
        let id = uuid::Uuid::now_v7().to_string();
        repo::insert_data_key(tx, &id, purpose, 1, now).await?;
        let dk = SymmetricKey::random();
        let wrapped = key
            .public_key()
            .encrypt(&purpose.wrap_label(1), dk.expose())
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

/// Opens this machine's key pair for `actor` with their password and unwraps every data key
/// they hold, for the session.
pub async fn unlock(
    store: &Store,
    keystore: &dyn Keystore,
    actor: &Actor,
    password: &str,
) -> Result<KeyRing, KeyError> {
    let operator = actor.user_id();
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
    let pw = password.to_owned();
    let opened = tokio::task::spawn_blocking(move || {
        sealed::SealedKey(&bytes).open_all(operator.as_uuid(), &pw)
    })
    .await
    .expect("unsealing task panicked")
    .map_err(|_| KeyError::Unseal)?;
    let private = opened.private;
    if private.public_key().spki_der() != row.der.as_slice()
        || private.public_key().fingerprint().to_hex() != row.fingerprint
    {
        return Err(KeyError::KeyPairMismatch);
    }
    let signing = signing::settle(
        store,
        keystore,
        operator,
        &row.id,
        &private,
        opened.signing,
        password,
    )
    .await?;
    // Data keys are unwrapped on first use (each costs an RSA private-key operation) and
    // then kept in memory for the session.
    let ring = KeyRing {
        operator,
        user_key_id: row.id,
        private,
        signing,
        keys: Mutex::new(HashMap::new()),
    };
    Ok(ring)
}

/// What `grant` did.
#[derive(Debug, Clone, Serialize)]
pub struct GrantReport {
    /// The operator's key pairs that received grants.
    pub key_pairs: Vec<String>,
    /// Grants written (data key versions × key pairs), not counting ones already there.
    pub grants: u64,
}

/// Wraps every live data key version the granting administrator holds for each live key pair of
/// `username`. Needs [`Permission::KeysManage`].
pub async fn grant(
    store: &Store,
    ring: &KeyRing,
    actor: &Actor,
    username: &str,
) -> Result<GrantReport, KeyError> {
    let _permit = rbac::require(actor, Permission::KeysManage)?;
    let mut tx = store.begin().await?;
    let target = repo::operator_id(&mut tx, username)
        .await?
        .ok_or_else(|| KeyError::UnknownOperator(username.to_owned()))?;
    let pairs = repo::live_user_keys(&mut tx, &target).await?;
    if pairs.is_empty() {
        return Err(KeyError::NoKeyPair(username.to_owned()));
    }
    let publics = pairs
        .iter()
        .map(|p| PublicKey::from_spki_der(&p.der).map_err(|_| KeyError::KeyPairMismatch))
        .collect::<Result<Vec<_>, _>>()?;
    let now = Timestamp::now();
    let granted_by = actor.user_id().to_string();
    let mut grants = 0;
    for purpose in Purpose::ALL {
        for dk in repo::live_data_keys(&mut tx, purpose).await? {
            let key = ring.key(store, purpose, KeyVersion(dk.version)).await?;
            for (pair, public) in pairs.iter().zip(&publics) {
                let wrapped = public
                    .encrypt(&purpose.wrap_label(dk.version), key.expose())
                    .map_err(|_| KeyError::KeyPairMismatch)?;
                if repo::insert_grant(&mut tx, &dk.id, &pair.id, &wrapped, Some(&granted_by), now)
                    .await?
                {
                    grants += 1;
                }
            }
        }
    }
    let key_pairs: Vec<String> = pairs.iter().map(|p| p.fingerprint.clone()).collect();
    audit::append(
        &mut tx,
        &NewAuditEntry::new(actor, AuditAction::KeysGranted)
            .target(format!("user:{target}"))
            .details(serde_json::json!({ "key_pairs": key_pairs, "grants": grants })),
    )
    .await?;
    tx.commit().await?;
    Ok(GrantReport { key_pairs, grants })
}

/// Removes every grant of `username`'s key pairs and starts a rotation of every data key, so
/// their copies open nothing written from now on. Run [`rotation::run`] on each returned
/// rotation to re-encrypt existing rows. Needs [`Permission::KeysManage`].
pub async fn revoke(
    store: &Store,
    ring: &KeyRing,
    actor: &Actor,
    username: &str,
) -> Result<Vec<rotation::Rotation>, KeyError> {
    let _permit = rbac::require(actor, Permission::KeysManage)?;
    let mut tx = store.begin().await?;
    let target = repo::operator_id(&mut tx, username)
        .await?
        .ok_or_else(|| KeyError::UnknownOperator(username.to_owned()))?;
    if target == actor.user_id().to_string() {
        return Err(KeyError::RevokeSelf);
    }
    let removed = repo::delete_grants_of_user(&mut tx, &target).await?;
    audit::append(
        &mut tx,
        &NewAuditEntry::new(actor, AuditAction::KeysRevoked)
            .target(format!("user:{target}"))
            .details(serde_json::json!({ "grants_removed": removed })),
    )
    .await?;
    let mut rotations = Vec::new();
    for purpose in Purpose::ALL {
        rotations.push(rotation::start_in(&mut tx, store, ring, actor, purpose, true).await?);
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
}

/// Operators and service accounts, their key pairs and the purposes granted to them. Needs
/// [`Permission::KeysManage`].
pub async fn holders(store: &Store, actor: &Actor) -> Result<Vec<KeyHolder>, KeyError> {
    let _permit = rbac::require(actor, Permission::KeysManage)?;
    Ok(repo::key_holders(store)
        .await?
        .into_iter()
        .map(|h| KeyHolder {
            username: h.username,
            roles: h.roles,
            status: h.status,
            key_pairs: h.key_pairs,
            fingerprint: h.fingerprint,
            granted: h.granted.iter().filter_map(|p| Purpose::parse(p)).collect(),
        })
        .collect())
}

/// Every purpose's versions, their use and grants, and rotations under way. Needs
/// [`Permission::KeysManage`].
pub async fn status(store: &Store, actor: &Actor) -> Result<Vec<PurposeStatus>, KeyError> {
    let _permit = rbac::require(actor, Permission::KeysManage)?;
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

/// The current keys for writing new values, fetched once for a batch of writes.
#[derive(Debug, Clone)]
pub struct WriteKeys {
    pii: (KeyVersion, Arc<SymmetricKey>),
    blind: (KeyVersion, Arc<SymmetricKey>),
    content: (KeyVersion, Arc<SymmetricKey>),
}

impl WriteKeys {
    /// The current `pii`, `blind_index` and `content_hash` keys of `ring`.
    pub async fn current(store: &Store, ring: &KeyRing) -> Result<Self, KeyError> {
        Ok(Self {
            pii: ring.current(store, Purpose::Pii).await?,
            blind: ring.current(store, Purpose::BlindIndex).await?,
            content: ring.current(store, Purpose::ContentHash).await?,
        })
    }

    /// Seals personal data at `place`; returns the ciphertext and the `pii` version.
    pub fn seal_pii(&self, place: &Place<'_>, plaintext: &[u8]) -> Vec<u8> {
        field::seal(&self.pii.1, self.pii.0, place, plaintext)
    }

    /// The `pii` key version [`WriteKeys::seal_pii`] uses.
    pub fn pii_version(&self) -> KeyVersion {
        self.pii.0
    }

    /// The blind index of `value`.
    pub fn blind_index(&self, kind: crate::crypto::mac::BlindKind, value: &str) -> [u8; 32] {
        crate::crypto::mac::blind_index(&self.blind.1, kind, value)
    }

    /// The `blind_index` key version [`WriteKeys::blind_index`] uses.
    pub fn blind_version(&self) -> KeyVersion {
        self.blind.0
    }

    /// The keyed content hash of `bytes`.
    pub fn content_hash(&self, bytes: &[u8]) -> [u8; 32] {
        crate::crypto::mac::content_hash(&self.content.1, bytes)
    }

    /// The `content_hash` key version [`WriteKeys::content_hash`] uses.
    pub fn content_version(&self) -> KeyVersion {
        self.content.0
    }
}

/// Versions of `purpose` not yet retired (values made with any of them may still exist).
pub async fn live_versions(store: &Store, purpose: Purpose) -> Result<Vec<KeyVersion>, KeyError> {
    Ok(repo::all_data_keys(store, purpose)
        .await?
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
