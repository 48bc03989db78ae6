//! The live comment platform's records as Vigil holds them: platform accounts, live events,
//! comments, reactions and activity. Demo data and (later) ingestion write them through here.

mod repo;

use crate::store::{StoreError, Timestamp, Tx};

/// A platform account to import. Personal fields arrive only as ciphertext (the keys module
/// seals them); until a sealing key exists they are not stored at all.
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

/// A public comment.
#[derive(Debug, Clone)]
pub struct NewComment {
    /// Comment id.
    pub id: uuid::Uuid,
    /// The event it was posted under.
    pub event_id: uuid::Uuid,
    /// Its author.
    pub author_id: uuid::Uuid,
    /// Text.
    pub body: String,
    /// When it was posted.
    pub created_at: Timestamp,
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
    /// The record it concerns (a comment id, ...).
    pub ref_id: Option<uuid::Uuid>,
}

/// Inserts platform accounts (kind `platform`, status `active`).
pub async fn insert_users(tx: &mut Tx, users: &[NewPlatformUser]) -> Result<u64, StoreError> {
    repo::insert_users(tx, users).await
}

/// Inserts live events.
pub async fn insert_events(tx: &mut Tx, events: &[NewEvent]) -> Result<u64, StoreError> {
    repo::insert_events(tx, events).await
}

/// Inserts public comments.
pub async fn insert_comments(tx: &mut Tx, comments: &[NewComment]) -> Result<u64, StoreError> {
    repo::insert_comments(tx, comments).await
}

/// Inserts reactions.
pub async fn insert_reactions(tx: &mut Tx, reactions: &[NewReaction]) -> Result<u64, StoreError> {
    repo::insert_reactions(tx, reactions).await
}

/// Inserts activity records, stamped as ingested now.
pub async fn insert_activity(tx: &mut Tx, activity: &[NewActivity]) -> Result<u64, StoreError> {
    repo::insert_activity(tx, activity, Timestamp::now()).await
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
