//! Deterministic demonstration data: a realistic live comment platform for trying Vigil out
//! and for benchmarks. The same seed gives the same platform, byte for byte.
//!
//! Rows go in through the platform module's functions in batched transactions. Platform users
//! sign in on the platform, not in Vigil, so they get no password hash here.

mod names;
mod scenarios;

pub use scenarios::{Scenario, SCENARIOS, STUFFING_IP};

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use crate::audit::{self, AuditAction, NewAuditEntry};
use crate::crypto::{KeyBits, PrivateKey, PublicKey};
use crate::identity::Actor;
use crate::keys::{KeyError, KeyRing, WriteKeys};
use crate::platform::{
    self, CommentBody, NewActivity, NewComment, NewEvent, NewPlatformUser, NewReaction,
};
use crate::rbac::{self, Forbidden, Permission};
use crate::store::{Store, StoreError, Timestamp};

/// How much to generate.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct SeedOptions {
    /// Platform accounts.
    pub users: u32,
    /// Comments.
    pub comments: u32,
    /// Days of history, ending now.
    pub days: u32,
    /// Random seed; the same seed gives the same data.
    pub seed: u64,
    /// Add the labelled attack scenarios ([`SCENARIOS`]) to the history.
    pub scenarios: bool,
}

/// What a seed run wrote.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub struct SeedReport {
    /// Platform accounts.
    pub users: u64,
    /// Live events.
    pub events: u64,
    /// Comments.
    pub comments: u64,
    /// Reactions.
    pub reactions: u64,
    /// Activity records (sign-ins and comment submissions).
    pub activity: u64,
    /// Activity records of the attack scenarios (their accounts' history included).
    pub scenario_activity: u64,
}

impl SeedReport {
    fn add(&mut self, other: SeedReport) {
        self.users += other.users;
        self.events += other.events;
        self.comments += other.comments;
        self.reactions += other.reactions;
        self.activity += other.activity;
        self.scenario_activity += other.scenario_activity;
    }

    /// All rows written.
    pub fn total_rows(&self) -> u64 {
        self.users
            + self.events
            + self.comments
            + self.reactions
            + self.activity
            + self.scenario_activity
    }
}

/// Progress, reported after each committed batch.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct SeedProgress {
    /// The phase: `users`, `comments`.
    pub phase: &'static str,
    /// Items of this phase done.
    pub done: u64,
    /// Items of this phase in all.
    pub total: u64,
}

/// Why seeding failed. Batches already committed stay; the run's start is in the audit log.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// The actor may not seed.
    #[error(transparent)]
    Forbidden(#[from] Forbidden),
    /// The options are out of range.
    #[error("invalid demo options: {0}")]
    Invalid(&'static str),
    /// The database already holds platform users: seeding twice would mix two platforms.
    #[error(
        "the database already has {0} platform users; demo data goes into a database without any"
    )]
    NotEmpty(i64),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The keys to seal personal data with are not available.
    #[error(transparent)]
    Keys(#[from] KeyError),
}

impl From<sqlx::Error> for DemoError {
    fn from(e: sqlx::Error) -> Self {
        DemoError::Store(e.into())
    }
}

/// Users per transaction; comments per transaction (with their reactions and activity).
const USER_BATCH: usize = 5_000;
const COMMENT_BATCH: usize = 20_000;
/// Tables whose secondary indexes are built after the load rather than row by row.
const BULK_TABLES: &[&str] = &["users", "comments", "reactions", "activity_log"];

/// Generates and stores a platform. Needs [`Permission::DemoSeed`].
pub async fn seed(
    store: &Store,
    actor: &Actor,
    ring: &KeyRing,
    opts: SeedOptions,
    progress: &mut (dyn FnMut(SeedProgress) + Send),
) -> Result<SeedReport, DemoError> {
    let _permit = rbac::require(store, actor, Permission::DemoSeed).await?;
    if opts.users == 0 || opts.users > 10_000_000 {
        return Err(DemoError::Invalid("--users must be from 1 to 10,000,000"));
    }
    if opts.comments > 100_000_000 {
        return Err(DemoError::Invalid("--comments must be at most 100,000,000"));
    }
    if opts.days == 0 || opts.days > 3_650 {
        return Err(DemoError::Invalid("--days must be from 1 to 3,650"));
    }
    let existing = platform::counts(store).await?.users;
    if existing > 0 {
        return Err(DemoError::NotEmpty(existing));
    }

    let mut report = SeedReport::default();

    let mut tx = store.begin().await?;
    audit::append(
        &mut tx,
        &NewAuditEntry::new(actor, AuditAction::DemoSeedStarted)
            .details(serde_json::to_value(opts).unwrap_or_default()),
    )
    .await?;
    tx.commit().await?;
    let keys = WriteKeys::current(store, ring, &crate::keys::PLATFORM_PURPOSES).await?;
    // The comment, reaction and activity indexes keyed by person are built once at the end.
    store.defer_indexes(BULK_TABLES).await?;
    let loaded = load(store, &keys, opts, &mut report, progress).await;
    // Rebuilt on failure too; had the process died, the next open would rebuild them.
    store.rebuild_deferred_indexes().await?;
    loaded?;
    if opts.scenarios {
        let others = platform::first_usernames(store, 25).await?;
        let mut rng = ChaCha8Rng::seed_from_u64(opts.seed ^ 0x5ce7_a110);
        let now = Timestamp::now().micros();
        let added = scenarios::add(store, &keys, &mut rng, &others, now).await?;
        report.users += scenarios::SCENARIOS.len() as u64;
        report.scenario_activity = added.ingested;
    }

    crate::store::daily_counts::fold(store).await?;
    let mut tx = store.begin().await?;
    audit::append(
        &mut tx,
        &NewAuditEntry::new(actor, AuditAction::DemoSeeded)
            .details(serde_json::to_value(report).unwrap_or_default()),
    )
    .await?;
    tx.commit().await?;
    Ok(report)
}

/// Generates the platform and writes it in batches, counting into `report`.
async fn load(
    store: &Store,
    keys: &WriteKeys,
    opts: SeedOptions,
    report: &mut SeedReport,
    progress: &mut (dyn FnMut(SeedProgress) + Send),
) -> Result<(), DemoError> {
    let mut rng = ChaCha8Rng::seed_from_u64(opts.seed);
    // Anchor the history to the current hour so reruns with the same seed match.
    let now = Timestamp::now().micros() / HOUR * HOUR;
    let start = now - i64::from(opts.days) * DAY;

    // Key pairs for the few people who write privately, made on the other core meanwhile.
    let n_keys = holder_count(opts.users);
    let key_pairs = tokio::task::spawn_blocking(move || {
        (0..n_keys)
            .map(|_| PrivateKey::generate(KeyBits::B2048).map(|k| k.public_key().clone()))
            .collect::<Result<Vec<PublicKey>, _>>()
    });

    // Users, oldest first, with the habits their activity follows.
    let mut people = Vec::with_capacity(opts.users as usize);
    let mut batch = Vec::with_capacity(USER_BATCH);
    let mut logins = Vec::new();
    for i in 0..opts.users {
        let person = names::person(&mut rng, i);
        let created = start - rng.gen_range(0..365 * DAY);
        let id = ordered_id(&mut rng, created);
        let habits = Habits {
            id,
            ip: names::ip(&mut rng),
            country: person.country,
            first_hour: rng.gen_range(0..24),
            agent: rng.gen_range(0..names::USER_AGENTS.len()),
            weight: rng.gen_range(1..=100u32).pow(2),
        };
        // Sign-ins at the person's usual hours, now and then a failed attempt first.
        let mut last_login = None;
        let n_logins = rng.gen_range(0..=(opts.days.min(30) / 3 + 1));
        for _ in 0..n_logins {
            let at =
                start + rng.gen_range(0..i64::from(opts.days)) * DAY + habits.hour_offset(&mut rng);
            if rng.gen_bool(0.04) {
                logins.push(habits.activity(&mut rng, "login", at - 20_000_000, None, false));
            }
            logins.push(habits.activity(&mut rng, "login", at, None, true));
            last_login = last_login.max(Some(at));
        }
        let email = names::email(&mut rng, &person.username);
        batch.push(NewPlatformUser {
            id,
            username: person.username,
            display_name: person.display_name,
            country: person.country.to_owned(),
            email: Some(email),
            phone: rng.gen_bool(0.6).then(|| names::phone(&mut rng)),
            created_at: Timestamp::from_micros(created),
            last_login_at: last_login.map(Timestamp::from_micros),
        });
        people.push(habits);
        if batch.len() == USER_BATCH || i + 1 == opts.users {
            let mut tx = store.begin().await?;
            report.users += platform::insert_users(&mut tx, keys, &batch).await?;
            logins.sort_by_key(|a: &NewActivity| a.occurred_at);
            report.activity += platform::insert_activity(&mut tx, keys, &logins).await?;
            tx.commit().await?;
            batch.clear();
            logins.clear();
            progress(SeedProgress {
                phase: "users",
                done: report.users,
                total: u64::from(opts.users),
            });
        }
    }

    // Live events spread over the period, each a few hours long.
    let n_events = (opts.comments / 2_000).clamp(1, 5_000) as usize;
    let mut events: Vec<NewEvent> = (0..n_events)
        .map(|i| {
            let starts = start + rng.gen_range(0..(i64::from(opts.days) * DAY).max(1));
            let ends = starts + rng.gen_range(2..=4) * HOUR;
            NewEvent {
                id: ordered_id(&mut rng, starts),
                title: names::event_title(&mut rng, i),
                starts_at: Timestamp::from_micros(starts),
                ends_at: Timestamp::from_micros(ends.min(now)),
            }
        })
        .collect();
    events.sort_by_key(|e| e.starts_at);
    let mut tx = store.begin().await?;
    report.events = platform::insert_events(&mut tx, &events).await?;
    tx.commit().await?;

    // Comments in time order (ids follow time, so indexes grow at the end), by authors
    // weighted so a few people write much of the stream, as on real platforms.
    let cumulative: Vec<u64> = people
        .iter()
        .scan(0u64, |acc, p| {
            *acc += u64::from(p.weight);
            Some(*acc)
        })
        .collect();
    let total_weight = *cumulative.last().unwrap_or(&1);
    let mut times: Vec<(i64, u32)> = (0..opts.comments)
        .map(|_| {
            let e = rng.gen_range(0..events.len());
            let ev = &events[e];
            let span = (ev.ends_at.micros() - ev.starts_at.micros()).max(1);
            (ev.starts_at.micros() + rng.gen_range(0..span), e as u32)
        })
        .collect();
    times.sort_unstable();

    // A few people hold key pairs and write to each other end to end encrypted. Their private
    // keys live on their own devices, so the demo keeps only the public halves.
    let n_holders = holder_count(opts.users);
    let mut holders: Vec<usize> = (0..n_holders)
        .map(|_| rng.gen_range(0..people.len()))
        .collect();
    holders.sort_unstable();
    holders.dedup();
    let mut holder_keys = key_pairs
        .await
        .expect("key generation task panicked")
        .map_err(|_| DemoError::Invalid("RSA key generation failed"))?;
    holder_keys.truncate(holders.len());
    if holder_keys.len() < 2 {
        holder_keys.clear();
    }
    let mut tx = store.begin().await?;
    for (h, key) in holders.iter().zip(&holder_keys) {
        crate::keys::register_public_key(&mut tx, people[*h].id, key).await?;
    }
    tx.commit().await?;

    let mut writing: Option<tokio::task::JoinHandle<Result<SeedReport, DemoError>>> = None;
    let mut comments = Vec::with_capacity(COMMENT_BATCH);
    let mut reactions = Vec::new();
    let mut activity = Vec::new();
    let total = u64::from(opts.comments);
    for (n, (at, e)) in times.into_iter().enumerate() {
        let id = ordered_id(&mut rng, at);
        let (author, body) = if holder_keys.len() >= 2 && rng.gen_bool(0.005) {
            // A private message from one key holder to one to three others.
            let from = rng.gen_range(0..holder_keys.len());
            let mut to: Vec<usize> = (0..rng.gen_range(1..=3))
                .map(|_| rng.gen_range(0..holder_keys.len()))
                .chain([from])
                .collect();
            to.sort_unstable();
            to.dedup();
            let recipients: Vec<(uuid::Uuid, &PublicKey)> = to
                .iter()
                .map(|i| (people[holders[*i]].id, &holder_keys[*i]))
                .collect();
            let body = CommentBody::private(id, &recipients, &names::private_note(&mut rng))
                .map_err(|_| DemoError::Invalid("cannot seal a private comment"))?;
            (&people[holders[from]], body)
        } else {
            let pick = rng.gen_range(0..total_weight);
            let author = &people[cumulative.partition_point(|c| *c <= pick)];
            (author, CommentBody::Public(names::chatter(&mut rng)))
        };
        comments.push(NewComment {
            id,
            event_id: events[e as usize].id,
            author_id: author.id,
            body,
            created_at: Timestamp::from_micros(at),
        });
        activity.push(author.activity(&mut rng, "comment", at, Some(id), true));
        // About one reaction for every two comments, each from a different person.
        let n_reactions = if rng.gen_bool(0.3) {
            rng.gen_range(1..=3)
        } else {
            0
        };
        let mut reactors: Vec<usize> = (0..n_reactions)
            .map(|_| rng.gen_range(0..people.len()))
            .collect();
        reactors.sort_unstable();
        reactors.dedup();
        for r in reactors {
            let rat = at + rng.gen_range(1..120) * 1_000_000;
            reactions.push(NewReaction {
                id: ordered_id(&mut rng, rat),
                comment_id: id,
                user_id: people[r].id,
                kind: names::REACTIONS.choose(&mut rng).copied().unwrap_or("like"),
                created_at: Timestamp::from_micros(rat),
            });
        }
        if comments.len() == COMMENT_BATCH || n as u64 + 1 == total {
            // Write this batch on the other core while the next one is generated.
            if let Some(previous) = writing.take() {
                report.add(previous.await.expect("batch writer panicked")?);
                progress(SeedProgress {
                    phase: "comments",
                    done: report.comments,
                    total,
                });
            }
            let batch = (
                std::mem::take(&mut comments),
                std::mem::take(&mut reactions),
                std::mem::take(&mut activity),
            );
            writing = Some(tokio::spawn(write_comment_batch(
                store.clone(),
                keys.clone(),
                batch,
            )));
        }
    }
    if let Some(last) = writing {
        report.add(last.await.expect("batch writer panicked")?);
        progress(SeedProgress {
            phase: "comments",
            done: report.comments,
            total,
        });
    }
    Ok(())
}

/// Comments, their reactions and activity, in one transaction; returns the rows written.
async fn write_comment_batch(
    store: Store,
    keys: WriteKeys,
    (comments, reactions, activity): (Vec<NewComment>, Vec<NewReaction>, Vec<NewActivity>),
) -> Result<SeedReport, DemoError> {
    let mut tx = store.begin().await?;
    let written = SeedReport {
        comments: platform::insert_comments(&mut tx, &keys, &comments).await?,
        reactions: platform::insert_reactions(&mut tx, &reactions).await?,
        activity: platform::insert_activity(&mut tx, &keys, &activity).await?,
        ..SeedReport::default()
    };
    tx.commit().await?;
    Ok(written)
}

/// How many people hold key pairs: a dozen at most (RSA key generation is slow).
fn holder_count(users: u32) -> usize {
    (users / 1_000).clamp(2, 12).min(users) as usize
}

const HOUR: i64 = 3_600_000_000;
const DAY: i64 = 24 * HOUR;

/// A generated person's habits, which their activity follows.
struct Habits {
    id: uuid::Uuid,
    /// The address they usually connect from.
    ip: String,
    country: &'static str,
    /// The first hour (UTC) of the four-hour window they are usually active in.
    first_hour: i64,
    agent: usize,
    /// Relative share of the comment stream.
    weight: u32,
}

impl Habits {
    fn hour_offset(&self, rng: &mut ChaCha8Rng) -> i64 {
        ((self.first_hour + rng.gen_range(0..4)) % 24) * HOUR + rng.gen_range(0..HOUR)
    }

    fn activity(
        &self,
        rng: &mut ChaCha8Rng,
        kind: &'static str,
        at: i64,
        ref_id: Option<uuid::Uuid>,
        ok: bool,
    ) -> NewActivity {
        NewActivity {
            id: ordered_id(rng, at),
            user_id: Some(self.id),
            kind,
            outcome: if ok { "success" } else { "failure" },
            reason: if ok { None } else { Some("bad_password") },
            occurred_at: Timestamp::from_micros(at),
            user_agent: names::USER_AGENTS[self.agent].to_owned(),
            country: self.country.to_owned(),
            ip: Some(if rng.gen_bool(0.9) {
                self.ip.clone()
            } else {
                names::ip(rng)
            }),
            ref_id,
            target: None,
        }
    }
}

/// A time-ordered (version 7) UUID for `at`, with random bits from the seeded generator.
fn ordered_id(rng: &mut ChaCha8Rng, at_micros: i64) -> uuid::Uuid {
    let mut bytes = [0u8; 10];
    rng.fill(&mut bytes);
    let millis = u64::try_from(at_micros / 1_000).unwrap_or(0);
    uuid::Builder::from_unix_timestamp_millis(millis, &bytes).into_uuid()
}

/// The desktop shell awaits the seed inside a command, whose future must be `Send`.
#[allow(dead_code)]
fn seed_is_send(
    store: &Store,
    actor: &Actor,
    ring: &KeyRing,
    options: SeedOptions,
    progress: &mut (dyn FnMut(SeedProgress) + Send),
) {
    fn send<T: Send>(_: T) {}
    send(seed(store, actor, ring, options, progress));
}

/// `n` comment texts as the demo platform writes them (about one in fifty suspicious), for
/// screening benchmarks. The same seed gives the same texts.
pub fn comment_texts(n: usize, seed: u64) -> Vec<String> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..n).map(|_| names::comment_body(&mut rng)).collect()
}
