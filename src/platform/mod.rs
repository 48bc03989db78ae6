//! The live comment platform's records as Vigil holds them: platform accounts, live events,
//! comments, reactions and activity. Demo data and (later) ingestion write them through here.

mod bulk;
mod repo;

pub use bulk::{copy_floor, BulkWriter, CopyBatch, CopyFloor, PublicComment, Written};

use crate::crypto::mac::BlindKind;
use crate::crypto::{Envelope, EnvelopeError, Fingerprint, Place, PrivateKey, PublicKey};
use crate::keys::{KeyError, KeyRing, Purpose, WriteKeys};
use crate::store::daily_counts::CountChanges;
use crate::store::{Store, StoreError, Timestamp, Tx};

/// A platform account to import. Email and phone are sealed with the `pii` key on the way in
/// (the email also gets a blind index); they are never stored in plaintext.
#[derive(Debug, Clone)]
pub struct NewPlatformUser {
    /// Account id.
    pub id: uuid::Uuid,
    /// Username on the platform.
    pub username: String,
    /// Name shown beside comments.
    pub display_name: String,
    /// ISO 3166-1 alpha-2 country the account usually signs in from.
    pub country: String,
    /// Email address.
    pub email: Option<String>,
    /// Phone number.
    pub phone: Option<String>,
    /// When the account was made.
    pub created_at: Timestamp,
    /// Last sign-in, if any.
    pub last_login_at: Option<Timestamp>,
}

/// A live event that carries a comment stream.
#[derive(Debug, Clone)]
pub struct NewEvent {
    /// Event id.
    pub id: uuid::Uuid,
    /// Title.
    pub title: String,
    /// Start.
    pub starts_at: Timestamp,
    /// End.
    pub ends_at: Timestamp,
}

/// A comment: public text, or an end-to-end encrypted envelope only its recipients can open.
#[derive(Debug, Clone)]
pub struct NewComment {
    /// Comment id.
    pub id: uuid::Uuid,
    /// The event it was posted under.
    pub event_id: uuid::Uuid,
    /// Its author.
    pub author_id: uuid::Uuid,
    /// Its content.
    pub body: CommentBody,
    /// When it was posted.
    pub created_at: Timestamp,
}

/// What a comment says.
#[derive(Debug, Clone)]
pub enum CommentBody {
    /// Readable by everyone on the platform (and by Vigil's moderators).
    Public(String),
    /// Encrypted end to end for its recipients; Vigil stores only the envelope.
    Private {
        /// The sealed body.
        envelope: Envelope,
        /// The recipients' account ids, each with the fingerprint of the key it was sealed to.
        recipients: Vec<(uuid::Uuid, Fingerprint)>,
    },
}

impl CommentBody {
    /// Seals `text` for `recipients` (account id and public key), bound to comment `id`.
    pub fn private(
        id: uuid::Uuid,
        recipients: &[(uuid::Uuid, &PublicKey)],
        text: &str,
    ) -> Result<Self, EnvelopeError> {
        let keys: Vec<&PublicKey> = recipients.iter().map(|(_, k)| *k).collect();
        let envelope = Envelope::seal(&id.to_string(), &keys, text.as_bytes())?;
        Ok(CommentBody::Private {
            envelope,
            recipients: recipients
                .iter()
                .map(|(u, k)| (*u, k.fingerprint()))
                .collect(),
        })
    }
}

/// A reaction to a comment.
#[derive(Debug, Clone)]
pub struct NewReaction {
    /// Reaction id.
    pub id: uuid::Uuid,
    /// The comment reacted to.
    pub comment_id: uuid::Uuid,
    /// Who reacted.
    pub user_id: uuid::Uuid,
    /// `like`, `love`, ...
    pub kind: &'static str,
    /// When.
    pub created_at: Timestamp,
}

/// One thing a person did on the platform.
#[derive(Debug, Clone)]
pub struct NewActivity {
    /// Activity id.
    pub id: uuid::Uuid,
    /// Who, if known.
    pub user_id: Option<uuid::Uuid>,
    /// `login`, `comment`, `reaction`, `profile_change`, ...
    pub kind: &'static str,
    /// `success` or `failure`.
    pub outcome: &'static str,
    /// A reason code for failures (never a password).
    pub reason: Option<&'static str>,
    /// When it happened.
    pub occurred_at: Timestamp,
    /// Browser or client.
    pub user_agent: String,
    /// ISO country code of the source.
    pub country: String,
    /// Source IP address (sealed with the `pii` key, with a blind index).
    pub ip: Option<String>,
    /// The record it concerns (a comment id, ...).
    pub ref_id: Option<uuid::Uuid>,
    /// Keyed hash of the account name a sign-in tried (known or not): lets the detectors
    /// count distinct targets without storing what was typed.
    pub target: Option<[u8; 32]>,
}

/// Inserts platform accounts (kind `platform`, status `active`), sealing their personal data.
pub async fn insert_users(
    tx: &mut Tx,
    keys: &WriteKeys,
    users: &[NewPlatformUser],
) -> Result<u64, StoreError> {
    let sealed: Vec<repo::SealedUser> = users
        .iter()
        .map(|u| {
            let id = u.id.to_string();
            repo::SealedUser {
                email_enc: u.email.as_ref().map(|e| {
                    keys.seal_contact(&Place::new("users", "email_enc", &id), e.as_bytes())
                }),
                email_bidx: u
                    .email
                    .as_ref()
                    .map(|e| keys.blind_index(BlindKind::Email, e).to_vec()),
                phone_enc: u.phone.as_ref().map(|p| {
                    keys.seal_contact(&Place::new("users", "phone_enc", &id), p.as_bytes())
                }),
                contact_version: (u.email.is_some() || u.phone.is_some())
                    .then(|| i64::from(keys.contact_version().0)),
                bidx_version: u.email.is_some().then(|| i64::from(keys.blind_version().0)),
                id,
                user: u,
            }
        })
        .collect();
    repo::insert_users(tx, &sealed).await
}

/// Inserts live events.
pub async fn insert_events(tx: &mut Tx, events: &[NewEvent]) -> Result<u64, StoreError> {
    repo::insert_events(tx, events).await
}

/// Inserts comments with their keyed content hashes; private ones with their recipients.
pub async fn insert_comments(
    tx: &mut Tx,
    keys: &WriteKeys,
    comments: &[NewComment],
) -> Result<u64, StoreError> {
    let hashed: Vec<repo::HashedComment> = comments
        .iter()
        .map(|c| {
            let (body, envelope) = match &c.body {
                CommentBody::Public(text) => (Some(text.as_str()), None),
                CommentBody::Private { envelope, .. } => (None, Some(envelope.to_bytes())),
            };
            let hash_input = body
                .map(str::as_bytes)
                .or(envelope.as_deref())
                .unwrap_or_default();
            repo::HashedComment {
                comment: c,
                body,
                content_hash: keys.content_hash(hash_input).to_vec(),
                hash_version: i64::from(keys.content_version().0),
                envelope,
            }
        })
        .collect();
    let n = repo::insert_comments(tx, &hashed).await?;
    let recipients: Vec<repo::Recipient> = comments
        .iter()
        .filter_map(|c| match &c.body {
            CommentBody::Private {
                envelope,
                recipients,
            } => Some(recipients.iter().filter_map(move |(user, fp)| {
                let wrapped = envelope
                    .recipients()
                    .iter()
                    .find(|w| &w.fingerprint == fp)?;
                Some(repo::Recipient {
                    comment_id: c.id.to_string(),
                    user_id: user.to_string(),
                    fingerprint: fp.to_hex(),
                    wrapped_key: wrapped.wrapped_key.clone(),
                })
            })),
            CommentBody::Public(_) => None,
        })
        .flatten()
        .collect();
    repo::insert_recipients(tx, &recipients).await?;
    Ok(n)
}

/// Why a private comment could not be read.
#[derive(Debug, thiserror::Error)]
pub enum PrivateCommentError {
    /// No such comment, or it is public.
    #[error("no private comment with that id")]
    NotFound,
    /// The envelope refused: not a recipient, wrong key, tampered, unsupported.
    #[error(transparent)]
    Envelope(#[from] EnvelopeError),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Opens private comment `comment_id` as `reader` with the reader's private key. Runs on the
/// reader's own device: private keys never answer network input (see SECURITY.md).
pub async fn open_private_comment(
    store: &Store,
    comment_id: uuid::Uuid,
    reader: uuid::Uuid,
    key: &PrivateKey,
) -> Result<String, PrivateCommentError> {
    let (envelope, fingerprint) =
        repo::private_comment(store, &comment_id.to_string(), &reader.to_string())
            .await?
            .ok_or(PrivateCommentError::NotFound)?;
    let envelope = Envelope::from_bytes(&envelope)?;
    let Some(fp) = fingerprint.as_deref().and_then(Fingerprint::from_hex) else {
        return Err(EnvelopeError::NotARecipient.into());
    };
    let text = envelope.open(&comment_id.to_string(), &fp, key)?;
    Ok(String::from_utf8_lossy(&text).into_owned())
}

/// Finds a platform account by email through the blind index (every live version of the
/// `blind_index` key is tried, so lookups work during a rotation).
pub async fn find_user_by_email(
    store: &Store,
    ring: &KeyRing,
    email: &str,
) -> Result<Option<uuid::Uuid>, KeyError> {
    let mut candidates = Vec::new();
    for v in crate::keys::live_versions(store, Purpose::BlindIndex).await? {
        let key = ring.key(store, Purpose::BlindIndex, v).await?;
        candidates.push(crate::crypto::mac::blind_index(&key, BlindKind::Email, email).to_vec());
    }
    Ok(repo::user_by_email_bidx(store, &candidates)
        .await?
        .and_then(|id| uuid::Uuid::parse_str(&id).ok()))
}

/// Inserts reactions.
pub async fn insert_reactions(tx: &mut Tx, reactions: &[NewReaction]) -> Result<u64, StoreError> {
    repo::insert_reactions(tx, reactions).await
}

/// Inserts activity records, stamped as ingested now, sealing source IPs. A record whose id
/// is already stored is skipped: returns the rows written. The dashboard's daily counts
/// ([`crate::store::daily_counts`]) count the rows written, in `tx`.
pub async fn insert_activity(
    tx: &mut Tx,
    keys: &WriteKeys,
    activity: &[NewActivity],
) -> Result<u64, StoreError> {
    let sealed: Vec<repo::SealedActivity> = activity
        .iter()
        .map(|a| {
            let id = a.id.to_string();
            repo::SealedActivity {
                ip_enc: a.ip.as_ref().map(|ip| {
                    keys.seal_network(&Place::new("activity_log", "ip_enc", &id), ip.as_bytes())
                }),
                ip_bidx: a
                    .ip
                    .as_ref()
                    .map(|ip| keys.blind_index(BlindKind::Ip, ip).to_vec()),
                network_version: a.ip.is_some().then(|| i64::from(keys.network_version().0)),
                bidx_version: a.ip.is_some().then(|| i64::from(keys.blind_version().0)),
                id,
                activity: a,
            }
        })
        .collect();
    // On Postgres the months' partitions first, so the rows land in them (a no-op on SQLite).
    let months: Vec<i64> = activity.iter().map(|a| a.occurred_at.micros()).collect();
    crate::store::partitions::ensure_in(tx, &months).await?;
    // Stamped inside the ingestion fence (see `store::ingestion_stamp`).
    let stamp = crate::store::ingestion_stamp(tx).await?;
    let mut counts = CountChanges::new();
    let written = repo::insert_activity(tx, &sealed, stamp, &mut counts).await?;
    counts.write(tx).await?;
    Ok(written)
}

/// Row counts of the platform tables.
#[derive(Debug, Clone, Copy, Default, serde::Serialize, PartialEq, Eq)]
pub struct PlatformCounts {
    /// Platform accounts.
    pub users: i64,
    /// Live events.
    pub events: i64,
    /// Comments.
    pub comments: i64,
    /// Reactions.
    pub reactions: i64,
    /// Activity records.
    pub activity: i64,
}

/// Counts the platform's rows.
pub async fn counts(store: &crate::store::Store) -> Result<PlatformCounts, StoreError> {
    repo::counts(store).await
}

/// A platform account's email address, opened with the session's keys.
pub async fn user_email(
    store: &Store,
    ring: &KeyRing,
    user: uuid::Uuid,
) -> Result<Option<String>, KeyError> {
    let id = user.to_string();
    let Some(sealed) = repo::user_email_enc(store, &id).await? else {
        return Ok(None);
    };
    let plain = ring
        .open_field(
            store,
            Purpose::Contact,
            &Place::new("users", "email_enc", &id),
            &sealed,
        )
        .await?;
    Ok(Some(String::from_utf8_lossy(&plain).into_owned()))
}

/// The usernames of the `n` oldest platform accounts.
pub async fn first_usernames(store: &Store, n: u32) -> Result<Vec<String>, StoreError> {
    repo::first_usernames(store, n).await
}

/// Records that the platform deleted these accounts at `at`: their data then waits out the
/// `deleted_users` retention period. Returns how many were not deleted before.
pub async fn mark_deleted(
    tx: &mut Tx,
    ids: &[uuid::Uuid],
    at: Timestamp,
) -> Result<u64, StoreError> {
    let ids: Vec<String> = ids.iter().map(uuid::Uuid::to_string).collect();
    repo::mark_deleted(tx, &ids, at.micros()).await
}

/// Ids of up to `n` platform accounts spread over the table.
pub async fn sample_user_ids(store: &Store, n: u32) -> Result<Vec<uuid::Uuid>, StoreError> {
    Ok(repo::sample_user_ids(store, n)
        .await?
        .iter()
        .filter_map(|s| uuid::Uuid::parse_str(s).ok())
        .collect())
}
