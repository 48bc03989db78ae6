//! Reproducible measurements of the foundation (`vigil bench`): demo-seed throughput, audit
//! append rate and audit verification speed, on a scratch database.

use std::time::{Duration, Instant};

use serde::Serialize;

use crate::audit::{self, AuditAction, AuditActor, NewAuditEntry, Verification};
use crate::auth::{self, Password, Username};
use crate::crypto::field::{self, Place};
use crate::crypto::{Envelope, KeyBits, KeyVersion, PrivateKey, SymmetricKey};
use crate::demo::{self, SeedOptions, SeedProgress};
use crate::keys::keystore::Keystore;
use crate::keys::{self, rotation, Purpose};
use crate::platform;
use crate::store::{Store, StoreError};

/// What to measure.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct BenchOptions {
    /// Demo seed size.
    pub seed: SeedOptions,
    /// Audit entries to append before verifying.
    pub audit_entries: u32,
    /// Times to run the verification (the median is reported).
    pub verify_runs: u32,
    /// Also rotate the `pii` key over the seeded rows and time it.
    pub rotate: bool,
}

/// The figures.
#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    /// The backend measured.
    pub backend: String,
    /// Rows the seed wrote.
    pub seed_rows: u64,
    /// Seconds it took.
    pub seed_seconds: f64,
    /// Rows per second.
    pub seed_rows_per_sec: f64,
    /// Audit entries appended (1,000 per transaction).
    pub audit_appended: u64,
    /// Appends per second.
    pub audit_appends_per_sec: f64,
    /// Entries in the chain when verified.
    pub verify_entries: u64,
    /// Median seconds of one verification.
    pub verify_median_seconds: f64,
    /// Entries verified per second (median run).
    pub verify_entries_per_sec: f64,
    /// Cryptography figures.
    pub crypto: CryptoFigures,
    /// Email lookups through the blind index: median microseconds over sampled users.
    pub email_lookup_median_us: f64,
    /// Users in the table during the lookups.
    pub email_lookup_users: u64,
    /// Sign-in (argon2id, database, unlocking the key pair and data keys): median ms of 15.
    pub login_median_ms: f64,
    /// Access-token verifications per second with a [`auth::tokens::Verifier`] (a token seen
    /// before, while the authorisation epoch is unchanged: one read each).
    pub token_verify_per_sec: f64,
    /// The same with the signing key's lookup, the signature and the full database checks
    /// every time.
    pub token_verify_uncached_per_sec: f64,
    /// The token's Ed25519 (EdDSA) signature and claims alone, no database, on one core.
    pub token_signature_verify_per_sec: f64,
    /// TOTP verifications (three candidate steps each) per second, computation only.
    pub totp_verify_per_sec: f64,
    /// `pii` rotation: rows re-encrypted and rows per second (if run).
    pub rotation_rows: Option<u64>,
    /// Rows per second of the rotation.
    pub rotation_rows_per_sec: Option<f64>,
}

/// Operations per second of the cryptographic building blocks, with 2048-bit RSA keys.
#[derive(Debug, Clone, Serialize)]
pub struct CryptoFigures {
    /// Field seals (AES-256-GCM, 24-byte values, with place binding).
    pub field_seal_per_sec: f64,
    /// Field opens.
    pub field_open_per_sec: f64,
    /// Bare RSA-OAEP-SHA256 encryptions (public key).
    pub rsa_encrypt_per_sec: f64,
    /// Bare RSA-OAEP-SHA256 decryptions (private key).
    pub rsa_decrypt_per_sec: f64,
    /// End-to-end envelopes sealed for 5 recipients.
    pub e2e_seal_5_per_sec: f64,
    /// End-to-end envelopes opened by one recipient.
    pub e2e_open_per_sec: f64,
    /// Envelope seal time over 5 bare RSA encryptions (1.0 = no overhead).
    pub e2e_seal_overhead: f64,
    /// Envelope open time over 1 bare RSA decryption.
    pub e2e_open_overhead: f64,
}

/// Why a benchmark could not run.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// The database already holds data: benchmarks run only on a scratch database.
    #[error("benchmarks need an empty, uninitialised database")]
    NotScratch,
    /// A step failed.
    #[error("{0}")]
    Step(String),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Runs the benchmarks on `store`, which must be freshly created.
pub async fn run(
    store: &Store,
    keystore: &dyn Keystore,
    opts: BenchOptions,
    progress: &mut (dyn FnMut(SeedProgress) + Send),
) -> Result<BenchReport, BenchError> {
    if auth::is_initialised(store).await? {
        return Err(BenchError::NotScratch);
    }
    let step = |e: &dyn std::fmt::Display| BenchError::Step(e.to_string());
    let (actor, ring, secret) = scratch_admin(store, keystore, &[]).await?;

    let t = Instant::now();
    let seeded = demo::seed(store, &actor, &ring, opts.seed, progress)
        .await
        .map_err(|e| step(&e))?;
    let seed_time = t.elapsed();

    let t = Instant::now();
    let appended = append_bench_entries(store, opts.audit_entries).await?;
    let append_time = t.elapsed();

    let mut runs = Vec::new();
    let mut entries = 0;
    for _ in 0..opts.verify_runs.max(1) {
        let t = Instant::now();
        match audit::verify_chain(store).await? {
            Verification::Ok { entries: n, .. } => entries = n,
            broken => return Err(step(&format!("the chain did not verify: {broken:?}"))),
        }
        runs.push(t.elapsed());
    }
    runs.sort();
    let median = runs[runs.len() / 2];

    let crypto = tokio::task::spawn_blocking(crypto_figures)
        .await
        .map_err(|e| step(&e))?;

    let sample = platform::sample_user_ids(store, 1_000).await?;
    let mut emails = Vec::with_capacity(sample.len());
    for id in &sample {
        if let Some(e) = platform::user_email(store, &ring, *id)
            .await
            .map_err(|e| step(&e))?
        {
            emails.push((*id, e));
        }
    }
    let mut lookups = Vec::with_capacity(emails.len());
    for (id, email) in &emails {
        let t = Instant::now();
        let found = platform::find_user_by_email(store, &ring, email)
            .await
            .map_err(|e| step(&e))?;
        lookups.push(t.elapsed());
        if found != Some(*id) {
            return Err(step(&"an email lookup found the wrong account"));
        }
    }
    lookups.sort();
    let lookup_median = lookups.get(lookups.len() / 2).copied().unwrap_or_default();

    let mut logins = Vec::new();
    let mut last = None;
    for _ in 0..15 {
        let t = Instant::now();
        let outcome = auth::login(
            store,
            Some(keystore),
            actor.username().as_str(),
            &secret,
            &auth::LoginSource::default(),
            // A throwaway database: the administrator it makes enrols no second factor.
            &auth::MfaPolicy::none(),
        )
        .await
        .map_err(|e| step(&e))?;
        logins.push(t.elapsed());
        last = Some(outcome);
    }
    logins.sort();
    let login_median = logins[logins.len() / 2];
    let Some(auth::LoginOutcome::SignedIn(session)) = last else {
        return Err(step(&"the benchmark administrator has MFA on"));
    };
    let pair = auth::tokens::issue(store, &ring, &session, "bench")
        .await
        .map_err(|e| step(&e))?;
    let n_verify = 20_000u32;
    let t = Instant::now();
    for _ in 0..n_verify {
        auth::tokens::verify_access_token(store, &pair.access_token)
            .await
            .map_err(|e| step(&e))?;
    }
    let token_verify_uncached_per_sec = per_sec(u64::from(n_verify), t.elapsed());
    let verifier = auth::tokens::Verifier::new();
    let t = Instant::now();
    for _ in 0..n_verify {
        verifier
            .verify(store, &pair.access_token)
            .await
            .map_err(|e| step(&e))?;
    }
    let token_verify_per_sec = per_sec(u64::from(n_verify), t.elapsed());
    let public = jsonwebtoken::DecodingKey::from_ed_der(ring.token_signing_key().public_key());
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::EdDSA);
    validation.set_audience(&[auth::tokens::AUDIENCE]);
    let token_signature_verify_per_sec = rate(n_verify, |_| {
        let ok =
            jsonwebtoken::decode::<auth::tokens::Claims>(&pair.access_token, &public, &validation);
        std::hint::black_box(ok.is_ok());
    });
    let totp_secret = [7u8; 20];
    let code = crate::mfa::code_at(&totp_secret, 1_000_000, crate::mfa::DIGITS);
    let totp_verify_per_sec = rate(200_000, |i| {
        std::hint::black_box(crate::mfa::matching_step(
            &totp_secret,
            &code,
            1_000_000 + u64::from(i % 2),
        ));
    });

    let (rotation_rows, rotation_rows_per_sec) = if opts.rotate {
        let t = Instant::now();
        let r = rotation::start(store, &ring, &actor, Purpose::Contact)
            .await
            .map_err(|e| step(&e))?;
        let report = rotation::run(store, &ring, &actor, &r, 5_000, &mut |_| {})
            .await
            .map_err(|e| step(&e))?;
        (Some(report.rows), Some(per_sec(report.rows, t.elapsed())))
    } else {
        (None, None)
    };

    Ok(BenchReport {
        backend: store.backend().to_string(),
        seed_rows: seeded.total_rows(),
        seed_seconds: seed_time.as_secs_f64(),
        seed_rows_per_sec: per_sec(seeded.total_rows(), seed_time),
        audit_appended: appended,
        audit_appends_per_sec: per_sec(appended, append_time),
        verify_entries: entries,
        verify_median_seconds: median.as_secs_f64(),
        verify_entries_per_sec: per_sec(entries, median),
        crypto,
        email_lookup_median_us: lookup_median.as_secs_f64() * 1e6,
        email_lookup_users: seeded.users,
        login_median_ms: login_median.as_secs_f64() * 1e3,
        token_verify_per_sec,
        token_verify_uncached_per_sec,
        token_signature_verify_per_sec,
        totp_verify_per_sec,
        rotation_rows,
        rotation_rows_per_sec,
    })
}

/// Times `n` runs of `f`; returns operations per second.
fn rate(n: u32, mut f: impl FnMut(u32)) -> f64 {
    let t = Instant::now();
    for i in 0..n {
        f(i);
    }
    per_sec(u64::from(n), t.elapsed())
}

/// Runs `a` and `b` alternately `n` times each; returns the total time of each.
fn paired(n: u32, mut a: impl FnMut(), mut b: impl FnMut()) -> (Duration, Duration) {
    let (mut ta, mut tb) = (Duration::ZERO, Duration::ZERO);
    for _ in 0..n {
        let t = Instant::now();
        a();
        ta += t.elapsed();
        let t = Instant::now();
        b();
        tb += t.elapsed();
    }
    (ta, tb)
}

fn crypto_figures() -> CryptoFigures {
    let key = SymmetricKey::random();
    let place = Place::new("users", "email_enc", "0190f2a4-0000-7000-8000-000000000001");
    let value = b"ada.lovelace42@example.org";
    let sealed = field::seal(&key, KeyVersion(1), &place, value);
    let field_seal_per_sec = rate(300_000, |_| {
        std::hint::black_box(field::seal(&key, KeyVersion(1), &place, value));
    });
    let field_open_per_sec = rate(300_000, |_| {
        std::hint::black_box(field::open(&key, &place, &sealed).ok());
    });

    let recipients: Vec<PrivateKey> = (0..5)
        .map(|_| PrivateKey::generate(KeyBits::B2048).expect("key generation"))
        .collect();
    let publics: Vec<_> = recipients.iter().map(|k| k.public_key()).collect();
    let content = SymmetricKey::random();
    let wrapped = publics[0]
        .encrypt("bench", content.expose())
        .expect("encrypt");
    let body = b"Meet you in the VIP chat after the match?";
    let env = Envelope::seal("comment-1", &publics, body).expect("seal");
    let fp = publics[0].fingerprint();
    // Bare and envelope operations alternate one by one, so a slow patch of the machine weighs
    // on both sides of each ratio alike.
    let (bare_enc, seal5) = paired(
        300,
        || {
            for _ in 0..5 {
                std::hint::black_box(publics[0].encrypt("bench", content.expose()).ok());
            }
        },
        || {
            std::hint::black_box(Envelope::seal("comment-1", &publics, body).ok());
        },
    );
    let (bare_dec, open1) = paired(
        300,
        || {
            std::hint::black_box(recipients[0].decrypt("bench", &wrapped).ok());
        },
        || {
            std::hint::black_box(env.open("comment-1", &fp, &recipients[0]).ok());
        },
    );
    let rsa_encrypt_per_sec = 5.0 * 300.0 / bare_enc.as_secs_f64();
    let rsa_decrypt_per_sec = 300.0 / bare_dec.as_secs_f64();
    let e2e_seal_5_per_sec = 300.0 / seal5.as_secs_f64();
    let e2e_open_per_sec = 300.0 / open1.as_secs_f64();
    let seal_ratio = seal5.as_secs_f64() / bare_enc.as_secs_f64();
    let open_ratio = open1.as_secs_f64() / bare_dec.as_secs_f64();
    CryptoFigures {
        field_seal_per_sec,
        field_open_per_sec,
        rsa_encrypt_per_sec,
        rsa_decrypt_per_sec,
        e2e_seal_5_per_sec,
        e2e_open_per_sec,
        e2e_seal_overhead: seal_ratio,
        e2e_open_overhead: open_ratio,
    }
}

fn per_sec(n: u64, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64().max(1e-9)
}

/// Creates the scratch database's administrator (with `extra` roles too), signs in and
/// unlocks their keys. Returns the actor, their key ring and their random password.
async fn scratch_admin(
    store: &Store,
    keystore: &dyn Keystore,
    extra: &[crate::rbac::Role],
) -> Result<(auth::Actor, keys::KeyRing, zeroize::Zeroizing<String>), BenchError> {
    let step = |e: &dyn std::fmt::Display| BenchError::Step(e.to_string());
    let name = Username::parse("bench-admin").map_err(|e| step(&e))?;
    let secret = zeroize::Zeroizing::new(auth::random_password(24));
    let password = Password::parse_for_operator(&secret, &name).map_err(|e| step(&e))?;
    auth::bootstrap_admin(store, keystore, &name, &password, KeyBits::B2048)
        .await
        .map_err(|e| step(&e))?;
    if !extra.is_empty() {
        let admin = auth::authenticate(store, name.as_str(), &secret, &auth::MfaPolicy::none())
            .await
            .map_err(|e| step(&e))?;
        let mut roles = vec![crate::rbac::Role::Admin];
        roles.extend_from_slice(extra);
        auth::users::set_roles(store, &admin, name.as_str(), &roles)
            .await
            .map_err(|e| step(&e))?;
    }
    let actor = auth::authenticate(store, name.as_str(), &secret, &auth::MfaPolicy::none())
        .await
        .map_err(|e| step(&e))?;
    let ring = keys::unlock(store, keystore, &actor, &secret)
        .await
        .map_err(|e| step(&e))?;
    Ok((actor, ring, secret))
}

/// Appends `count` benchmark entries to the audit chain, 1,000 per transaction.
async fn append_bench_entries(store: &Store, count: u32) -> Result<u64, BenchError> {
    let mut appended = 0u64;
    while appended < u64::from(count) {
        let n = (u64::from(count) - appended).min(1_000);
        let mut tx = store.begin().await?;
        for i in 0..n {
            let entry =
                NewAuditEntry::new(AuditActor::System("bench"), AuditAction::BenchmarkEntry)
                    .target(format!("item:{}", appended + i))
                    .details(serde_json::json!({ "n": appended + i }));
            audit::append(&mut tx, &entry).await?;
        }
        tx.commit().await.map_err(StoreError::from)?;
        appended += n;
    }
    Ok(appended)
}

/// What the data-subject request benchmark measures on.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct DsrBenchOptions {
    /// The demo platform around the subject.
    pub seed: SeedOptions,
    /// The subject's own comments.
    pub subject_comments: u32,
}

/// Data-subject request figures: one subject with many comments among many rows.
#[derive(Debug, Clone, Serialize)]
pub struct DsrBenchReport {
    /// The backend measured.
    pub backend: String,
    /// Rows in the platform tables (users, events, comments, reactions, activity).
    pub platform_rows: i64,
    /// The subject's comments.
    pub subject_comments: u32,
    /// Seconds to run an access request (collect, JSON + HTML, record).
    pub access_export_seconds: f64,
    /// Bytes of the access JSON.
    pub access_json_bytes: u64,
    /// Seconds to run a portability request (zip of JSON + CSV with manifest).
    pub portability_export_seconds: f64,
    /// Seconds of a residual scan of the whole database for the subject (before erasure).
    pub scan_seconds: f64,
    /// Sealed values the scan opened.
    pub scan_values_opened: u64,
    /// Seconds to run the erasure, its residual scan included.
    pub erasure_seconds: f64,
    /// Rows the erasure changed or deleted.
    pub erasure_rows: i64,
}

/// Seeds a scratch database, adds one subject with `subject_comments` comments, and times an
/// access export, a portability export, a whole-database residual scan and an erasure.
pub async fn dsr(
    store: &Store,
    keystore: &dyn Keystore,
    opts: DsrBenchOptions,
    progress: &mut (dyn FnMut(SeedProgress) + Send),
) -> Result<DsrBenchReport, BenchError> {
    use crate::privacy::{self, Flow, RequestKind, RunOptions, RunOutcome, SubjectRef};
    if auth::is_initialised(store).await? {
        return Err(BenchError::NotScratch);
    }
    let step = |e: &dyn std::fmt::Display| BenchError::Step(e.to_string());
    // The scratch administrator also takes the compliance officer's role for the requests.
    let (actor, ring, _) =
        scratch_admin(store, keystore, &[crate::rbac::Role::ComplianceOfficer]).await?;
    demo::seed(store, &actor, &ring, opts.seed, progress)
        .await
        .map_err(|e| step(&e))?;

    // The subject, on one event of their own, with their comments, reactions and activity.
    let keys = keys::WriteKeys::current(store, &ring, &keys::PLATFORM_PURPOSES)
        .await
        .map_err(|e| step(&e))?;
    let subject = uuid::Uuid::new_v4();
    let event = uuid::Uuid::new_v4();
    let now = crate::store::Timestamp::now();
    let t0 = crate::store::Timestamp::from_micros(now.micros() - 86_400_000_000);
    let mut tx = store.begin().await?;
    platform::insert_users(
        &mut tx,
        &keys,
        &[platform::NewPlatformUser {
            id: subject,
            username: "bench.subject".into(),
            display_name: "Bench Subject".into(),
            country: "NL".into(),
            email: Some("bench.subject@mail.example".into()),
            phone: Some("+31-555-000-0001".into()),
            created_at: t0,
            last_login_at: Some(t0),
        }],
    )
    .await?;
    platform::insert_events(
        &mut tx,
        &[platform::NewEvent {
            id: event,
            title: "Bench Final".into(),
            starts_at: t0,
            ends_at: now,
        }],
    )
    .await?;
    tx.commit().await.map_err(StoreError::from)?;
    let mut written = 0u32;
    while written < opts.subject_comments {
        let n = (opts.subject_comments - written).min(10_000);
        let comments: Vec<platform::NewComment> = (0..n)
            .map(|i| platform::NewComment {
                id: uuid::Uuid::new_v4(),
                event_id: event,
                author_id: subject,
                body: platform::CommentBody::Public(format!("bench comment {}", written + i)),
                created_at: crate::store::Timestamp::from_micros(
                    t0.micros() + i64::from(written + i),
                ),
            })
            .collect();
        let activity: Vec<platform::NewActivity> = comments
            .iter()
            .step_by(10)
            .map(|c| platform::NewActivity {
                id: uuid::Uuid::new_v4(),
                user_id: Some(subject),
                kind: "comment",
                outcome: "success",
                reason: None,
                occurred_at: c.created_at,
                user_agent: "Firefox".into(),
                country: "NL".into(),
                ip: Some("10.20.30.40".into()),
                ref_id: Some(c.id),
                target: None,
            })
            .collect();
        let mut tx = store.begin().await?;
        platform::insert_comments(&mut tx, &keys, &comments).await?;
        platform::insert_activity(&mut tx, &keys, &activity).await?;
        tx.commit().await.map_err(StoreError::from)?;
        written += n;
    }
    let counts = platform::counts(store).await?;
    let platform_rows =
        counts.users + counts.events + counts.comments + counts.reactions + counts.activity;

    let out = tempfile::tempdir().map_err(|e| step(&e))?;
    let run_options = RunOptions {
        out_dir: Some(out.path().to_path_buf()),
        ..RunOptions::default()
    };
    let who = SubjectRef::Username("bench.subject".into());
    // Codes are delivered by hand here (no mail server): a second officer enters them.
    let second = {
        let secret = auth::random_password(24);
        auth::users::create(
            store,
            &actor,
            "bench-second",
            &secret,
            &[crate::rbac::Role::ComplianceOfficer],
        )
        .await
        .map_err(|e| step(&e))?;
        auth::authenticate(store, "bench-second", &secret, &auth::MfaPolicy::none())
            .await
            .map_err(|e| step(&e))?
    };
    let request = |kind| {
        let (actor, ring, who, second) = (&actor, &ring, &who, &second);
        async move {
            let c = privacy::create(
                store,
                Some(ring),
                actor,
                kind,
                who,
                privacy::CodeDelivery::Manual,
            )
            .await
            .map_err(|e| step(&e))?;
            let code = c.verification_code.unwrap_or_default();
            privacy::verify_code(store, second, c.request.id, &code)
                .await
                .map_err(|e| step(&e))?;
            Ok::<_, BenchError>(c.request.id)
        }
    };
    let mut go = |_: &privacy::RunProgress| Flow::Continue;

    let id = request(RequestKind::Access).await?;
    let t = Instant::now();
    let files = privacy::run(store, &ring, &actor, id, &run_options, &mut go)
        .await
        .map_err(|e| step(&e))?;
    let access = t.elapsed();
    let access_json_bytes = match files {
        RunOutcome::Exported { files } => files
            .iter()
            .find(|f| f.kind == "access_json")
            .map_or(0, |f| f.bytes),
        _ => 0,
    };

    let id = request(RequestKind::Portability).await?;
    let t = Instant::now();
    privacy::run(store, &ring, &actor, id, &run_options, &mut go)
        .await
        .map_err(|e| step(&e))?;
    let portability = t.elapsed();

    let ids = privacy::identifiers_of(store, &ring, &actor, &who)
        .await
        .map_err(|e| step(&e))?;
    let t = Instant::now();
    let scan = privacy::residual_scan(store, &ring, &actor, &ids)
        .await
        .map_err(|e| step(&e))?;
    let scan_time = t.elapsed();

    let id = request(RequestKind::Erasure).await?;
    let t = Instant::now();
    let outcome = privacy::run(store, &ring, &actor, id, &run_options, &mut go)
        .await
        .map_err(|e| step(&e))?;
    let erasure = t.elapsed();
    let erasure_rows = match outcome {
        RunOutcome::Erased { receipt } => receipt.steps.iter().map(|s| s.rows).sum(),
        other => return Err(step(&format!("the erasure did not complete: {other:?}"))),
    };
    Ok(DsrBenchReport {
        backend: store.backend().to_string(),
        platform_rows,
        subject_comments: opts.subject_comments,
        access_export_seconds: access.as_secs_f64(),
        access_json_bytes,
        portability_export_seconds: portability.as_secs_f64(),
        scan_seconds: scan_time.as_secs_f64(),
        scan_values_opened: scan.values_opened,
        erasure_seconds: erasure.as_secs_f64(),
        erasure_rows,
    })
}

/// Content screening figures.
#[derive(Debug, Clone, Serialize)]
pub struct ScreeningReport {
    /// Lines in the file screened.
    pub lines: usize,
    /// Lines flagged (a rule matched or a URL was not clean).
    pub flagged: usize,
    /// Comments per second through `monitor screen`'s path: reading the file, screening on
    /// every core, writing JSON lines to a file (median of 5 runs).
    pub screen_lines_per_sec: f64,
    /// Comments per second through a bare `RegexSet` of the four built-in patterns, one core,
    /// texts already in memory (the reference).
    pub bare_regexset_per_sec: f64,
    /// The first over the second.
    pub ratio: f64,
}

/// Writes `lines` demo comments to a scratch file and times screening it into JSON lines,
/// against a bare `RegexSet` over the same texts.
pub fn screening(lines: usize) -> Result<ScreeningReport, BenchError> {
    use crate::monitor::screen::{Screener, Verdict, BUILT_IN};
    use std::io::Write;
    let step = |e: &dyn std::fmt::Display| BenchError::Step(e.to_string());
    let texts = demo::comment_texts(lines, 11);
    let dir = tempfile::tempdir().map_err(|e| step(&e))?;
    let input = dir.path().join("comments.txt");
    let output = dir.path().join("screened.jsonl");
    {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&input).map_err(|e| step(&e))?);
        for t in &texts {
            writeln!(f, "{t}").map_err(|e| step(&e))?;
        }
        f.flush().map_err(|e| step(&e))?;
    }
    let screener = Screener::new(&[], &[]).map_err(|e| step(&e))?;
    let flagged = texts
        .iter()
        .filter(|t| {
            let f = screener.screen(t);
            !f.categories.is_empty() || f.urls.iter().any(|u| u.verdict != Verdict::Clean)
        })
        .count();
    let mut runs = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        let mut r = std::io::BufReader::with_capacity(
            1 << 20,
            std::fs::File::open(&input).map_err(|e| step(&e))?,
        );
        let mut w = std::io::BufWriter::with_capacity(
            1 << 20,
            std::fs::File::create(&output).map_err(|e| step(&e))?,
        );
        let n = screener
            .screen_lines(&mut r, &mut w)
            .map_err(|e| step(&e))?;
        runs.push(t.elapsed());
        if n as usize != lines {
            return Err(step(&"the screen read a different number of lines"));
        }
    }
    runs.sort();
    let screen = per_sec(lines as u64, runs[runs.len() / 2]);
    let set = regex::RegexSet::new(BUILT_IN.iter().map(|(_, p)| format!("(?i){p}")))
        .map_err(|e| step(&e))?;
    let mut bare = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        let mut hits = 0usize;
        for text in &texts {
            hits += set.matches(text).iter().count();
        }
        bare.push(t.elapsed());
        std::hint::black_box(hits);
    }
    bare.sort();
    let bare = per_sec(lines as u64, bare[bare.len() / 2]);
    Ok(ScreeningReport {
        lines,
        flagged,
        screen_lines_per_sec: screen,
        bare_regexset_per_sec: bare,
        ratio: screen / bare,
    })
}

/// Chart figures: one chart read and drawn, for each chart, over 90 days.
#[derive(Debug, Clone, Serialize)]
pub struct ChartsReport {
    /// The backend measured.
    pub backend: String,
    /// Activity events in the 90 days charted.
    pub activity_events: u64,
    /// Timed rounds per chart (after one untimed warm-up round).
    pub rounds: u32,
    /// One entry per chart, in dashboard order.
    pub charts: Vec<ChartTiming>,
}

/// The median of one chart's rounds.
#[derive(Debug, Clone, Serialize)]
pub struct ChartTiming {
    /// The chart.
    pub kind: crate::analytics::ChartKind,
    /// Milliseconds to read the figures and draw the SVG (800×450).
    pub median_ms: f64,
    /// Of which reading the figures ([`crate::analytics::chart_data`]).
    pub data_median_ms: f64,
    /// Of which drawing the SVG ([`crate::analytics::render_svg`]).
    pub svg_median_ms: f64,
}

/// Times [`crate::analytics::chart_data`] and [`crate::analytics::render_svg`] (800×450) for
/// every chart over the 90 days ending at `now`, `rounds` times each after a warm-up round, on
/// the database as it is (read only). `actor` needs the incident and data-subject request read
/// permissions.
pub async fn charts(
    store: &Store,
    actor: &auth::Actor,
    now: crate::store::Timestamp,
    rounds: u32,
) -> Result<ChartsReport, BenchError> {
    use crate::analytics::{self, ChartKind, ChartSeries, Period};
    let step = |e: &dyn std::fmt::Display| BenchError::Step(e.to_string());
    let median = |mut v: Vec<Duration>| {
        v.sort();
        v[v.len() / 2].as_secs_f64() * 1e3
    };
    let rounds = rounds.max(1);
    let mut charts = Vec::with_capacity(ChartKind::ALL.len());
    let mut activity_events = 0;
    for kind in ChartKind::ALL {
        let (mut data_runs, mut svg_runs, mut total_runs) = (Vec::new(), Vec::new(), Vec::new());
        for round in 0..=rounds {
            let t = Instant::now();
            let data = analytics::chart_data(store, actor, kind, Period::Days90, now)
                .await
                .map_err(|e| step(&e))?;
            let read = t.elapsed();
            let svg = analytics::render_svg(&data, 800, 450).map_err(|e| step(&e))?;
            let total = t.elapsed();
            std::hint::black_box(svg);
            if let ChartSeries::ActivityVolume { days } = &data.series {
                activity_events = days.iter().map(|d| d.events).sum();
            }
            if round > 0 {
                data_runs.push(read);
                svg_runs.push(total - read);
                total_runs.push(total);
            }
        }
        charts.push(ChartTiming {
            kind,
            median_ms: median(total_runs),
            data_median_ms: median(data_runs),
            svg_median_ms: median(svg_runs),
        });
    }
    Ok(ChartsReport {
        backend: store.backend().to_string(),
        activity_events,
        rounds,
        charts,
    })
}

/// What the monitoring benchmark measured.
#[derive(Debug, Clone, Serialize)]
pub struct MonitorBenchReport {
    /// `sqlite` or `postgres`.
    pub backend: String,
    /// Activity lines ingested (JSON lines, parsed, resolved, sealed and written).
    pub events: u64,
    /// Seconds to ingest them.
    pub ingest_seconds: f64,
    /// Records judged by the detector run (the ingested lines and the seeded history).
    pub judged: u64,
    /// Seconds for the detector run (content screening included).
    pub detect_seconds: f64,
    /// Ingested lines per second.
    pub ingest_per_sec: f64,
    /// Judged records per second.
    pub detect_per_sec: f64,
    /// Ingested lines per second of ingestion plus detection.
    pub combined_per_sec: f64,
    /// Incidents the run opened.
    pub incidents: u64,
}

/// Seeds `users` accounts, then times ingesting `events` lines of activity (sign-ins, comment
/// submissions with their text, profile changes over the last day) and one detector run over
/// all of it.
pub async fn monitoring(
    store: &Store,
    keystore: &dyn Keystore,
    users: u32,
    events: u64,
) -> Result<MonitorBenchReport, BenchError> {
    use rand::{Rng, SeedableRng};
    if auth::is_initialised(store).await? {
        return Err(BenchError::NotScratch);
    }
    let step = |e: &dyn std::fmt::Display| BenchError::Step(e.to_string());
    let (actor, ring, _) = scratch_admin(store, keystore, &[crate::rbac::Role::Moderator]).await?;
    let opts = SeedOptions {
        users,
        comments: 0,
        days: 30,
        seed: 11,
        scenarios: false,
    };
    demo::seed(store, &actor, &ring, opts, &mut |_| {})
        .await
        .map_err(|e| step(&e))?;
    let names = platform::first_usernames(store, users).await?;
    let texts = demo::comment_texts(4_096, 3);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
    let now = crate::store::Timestamp::now().micros();
    let start = now - 86_400_000_000;
    let step_us = (86_400_000_000 / events.max(1)) as i64;
    let mut file = Vec::with_capacity(events as usize * 200);
    for i in 0..events {
        use std::io::Write as _;
        let who = &names[rng.gen_range(0..names.len())];
        let at = crate::store::Timestamp::from_micros(start + i as i64 * step_us).to_rfc3339();
        let ip = format!(
            "10.{}.{}.{}",
            rng.gen::<u8>(),
            rng.gen::<u8>(),
            rng.gen_range(1..255u8)
        );
        let r: f64 = rng.gen();
        if r < 0.6 {
            let text = texts[rng.gen_range(0..texts.len())].replace('"', "'");
            writeln!(file, r#"{{"type":"comment_submission","user":"{who}","at":"{at}","ip":"{ip}","country":"GB","user_agent":"Firefox","content":"{text}"}}"#)
        } else if r < 0.9 {
            let outcome = if rng.gen_bool(0.03) { "failure" } else { "success" };
            writeln!(file, r#"{{"type":"login_attempt","user":"{who}","at":"{at}","ip":"{ip}","country":"GB","user_agent":"Firefox","outcome":"{outcome}"}}"#)
        } else {
            writeln!(file, r#"{{"type":"profile_change","user":"{who}","at":"{at}","ip":"{ip}","country":"GB","field":"display_name"}}"#)
        }
        .map_err(|e| step(&e))?;
    }
    let t = Instant::now();
    let ingested = crate::monitor::ingest_reader(store, &ring, &actor, file.as_slice())
        .await
        .map_err(|e| step(&e))?;
    let ingest_seconds = t.elapsed().as_secs_f64();
    if ingested.rejected_total > 0 {
        return Err(step(&format!("{} lines rejected", ingested.rejected_total)));
    }
    let screener = crate::monitor::screen::Screener::new(&[], &[]).map_err(|e| step(&e))?;
    let t = Instant::now();
    let run = crate::monitor::run(
        store,
        &ring,
        &actor,
        &crate::monitor::policy::Policy::default(),
        &screener,
    )
    .await
    .map_err(|e| step(&e))?;
    let detect_seconds = t.elapsed().as_secs_f64();
    Ok(MonitorBenchReport {
        backend: store.backend().to_string(),
        events: ingested.ingested,
        ingest_seconds,
        judged: run.new_events,
        detect_seconds,
        ingest_per_sec: ingested.ingested as f64 / ingest_seconds,
        detect_per_sec: run.new_events as f64 / detect_seconds,
        combined_per_sec: ingested.ingested as f64 / (ingest_seconds + detect_seconds),
        incidents: run.opened,
    })
}

/// Retention figures: rows per second for each policy's action, and archive throughput.
#[derive(Debug, Clone, Serialize)]
pub struct RetentionBenchReport {
    /// The backend measured.
    pub backend: String,
    /// Seconds of the dry run over every policy.
    pub plan_seconds: f64,
    /// Activity records deleted.
    pub activity_deleted: u64,
    /// Seconds.
    pub activity_seconds: f64,
    /// Activity records deleted per second.
    pub activity_per_sec: f64,
    /// Comments anonymised.
    pub comments_anonymised: u64,
    /// Seconds.
    pub comments_seconds: f64,
    /// Comments anonymised per second.
    pub comments_per_sec: f64,
    /// Audit entries archived.
    pub audit_archived: u64,
    /// Seconds.
    pub audit_seconds: f64,
    /// Audit entries archived per second (written, synced, removed from the live table).
    pub audit_per_sec: f64,
    /// Accounts the platform deleted 60 days before, removed for good (with what cascades:
    /// their remaining activity and reactions; their comments lose the author).
    pub accounts_deleted: u64,
    /// Seconds.
    pub accounts_seconds: f64,
    /// Accounts removed per second.
    pub accounts_per_sec: f64,
    /// Activity records and reactions removed with those accounts.
    pub accounts_cascaded: u64,
    /// Records per chunk.
    pub chunk: u32,
}

/// Seeds a scratch database with `users` and `comments` over 2,000 days and `audit_entries`
/// audit entries, then times one retention run per policy: activity past 90 days deleted,
/// comments past 30 days anonymised (the period shortened so most are due), a quarter of the
/// accounts (deleted by the platform 60 days before) removed for good, and the audit log
/// archived as it would be eight years on.
pub async fn retention(
    store: &Store,
    keystore: &dyn Keystore,
    users: u32,
    comments: u32,
    audit_entries: u32,
    chunk: u32,
) -> Result<RetentionBenchReport, BenchError> {
    use crate::retention::{self, Category, PolicyChange, RunOptions};
    if auth::is_initialised(store).await? {
        return Err(BenchError::NotScratch);
    }
    let step = |e: &dyn std::fmt::Display| BenchError::Step(e.to_string());
    let (actor, ring, _) = scratch_admin(store, keystore, &[]).await?;
    let opts = SeedOptions {
        users,
        comments,
        days: 2_000,
        seed: 13,
        scenarios: false,
    };
    demo::seed(store, &actor, &ring, opts, &mut |_| {})
        .await
        .map_err(|e| step(&e))?;
    append_bench_entries(store, audit_entries).await?;
    let gone = platform::sample_user_ids(store, users / 4).await?;
    let mut tx = store.begin().await?;
    let deleted_at = crate::store::Timestamp::from_micros(
        crate::store::Timestamp::now().micros() - 60 * 86_400_000_000,
    );
    platform::mark_deleted(&mut tx, &gone, deleted_at).await?;
    tx.commit().await.map_err(StoreError::from)?;
    let shorter = PolicyChange {
        period_days: Some(30),
        ..PolicyChange::default()
    };
    retention::set_policy(store, &actor, Category::Comments, &shorter)
        .await
        .map_err(|e| step(&e))?;
    let t = Instant::now();
    retention::plan(store, &actor, None)
        .await
        .map_err(|e| step(&e))?;
    let plan_seconds = t.elapsed().as_secs_f64();
    let archive =
        std::env::temp_dir().join(format!("vigil-bench-archive-{}", uuid::Uuid::new_v4()));
    let timed = |policy: Category, as_of: Option<crate::store::Timestamp>| {
        let options = RunOptions {
            policy: Some(policy),
            chunk,
            as_of,
            archive_dir: Some(archive.clone()),
            abort_in_chunk: None,
        };
        let actor = &actor;
        async move {
            let t = Instant::now();
            let rec = retention::run(store, actor, &options, &mut |_| {})
                .await
                .map_err(|e| BenchError::Step(e.to_string()))?;
            let seconds = t.elapsed().as_secs_f64();
            if let Some(e) = rec.errors.first() {
                return Err(BenchError::Step(e.message.clone()));
            }
            let done = rec.counts.get(&policy).map_or(0, |c| c.done);
            Ok::<_, BenchError>((done, seconds))
        }
    };
    let (activity_deleted, activity_seconds) = timed(Category::Activity, None).await?;
    let (comments_anonymised, comments_seconds) = timed(Category::Comments, None).await?;
    let before = platform::counts(store).await?;
    let (accounts_deleted, accounts_seconds) = timed(Category::DeletedUsers, None).await?;
    let after = platform::counts(store).await?;
    let cascaded = (before.activity - after.activity) + (before.reactions - after.reactions);
    let later = crate::store::Timestamp::from_micros(
        crate::store::Timestamp::now().micros() + 8 * 366 * 86_400_000_000,
    );
    let (audit_archived, audit_seconds) = timed(Category::Audit, Some(later)).await?;
    let _ = std::fs::remove_dir_all(&archive);
    let rate = |n: u64, s: f64| if s > 0.0 { n as f64 / s } else { 0.0 };
    Ok(RetentionBenchReport {
        backend: store.backend().to_string(),
        plan_seconds,
        activity_deleted,
        activity_seconds,
        activity_per_sec: rate(activity_deleted, activity_seconds),
        comments_anonymised,
        comments_seconds,
        comments_per_sec: rate(comments_anonymised, comments_seconds),
        audit_archived,
        audit_seconds,
        audit_per_sec: rate(audit_archived, audit_seconds),
        accounts_deleted,
        accounts_seconds,
        accounts_per_sec: rate(accounts_deleted, accounts_seconds),
        accounts_cascaded: u64::try_from(cascaded).unwrap_or(0),
        chunk,
    })
}

/// Seeds a scratch database (`opts`, over 90 days) and times the dashboard charts on it.
pub async fn charts_on_scratch(
    store: &Store,
    keystore: &dyn Keystore,
    users: u32,
    comments: u32,
    rounds: u32,
) -> Result<ChartsReport, BenchError> {
    if auth::is_initialised(store).await? {
        return Err(BenchError::NotScratch);
    }
    let step = |e: &dyn std::fmt::Display| BenchError::Step(e.to_string());
    let (actor, ring, _) = scratch_admin(store, keystore, &[crate::rbac::Role::Moderator]).await?;
    let opts = SeedOptions {
        users,
        comments,
        days: 90,
        seed: 13,
        scenarios: true,
    };
    demo::seed(store, &actor, &ring, opts, &mut |_| {})
        .await
        .map_err(|e| step(&e))?;
    let screener = crate::monitor::screen::Screener::new(&[], &[]).map_err(|e| step(&e))?;
    crate::monitor::run(
        store,
        &ring,
        &actor,
        &crate::monitor::policy::Policy::default(),
        &screener,
    )
    .await
    .map_err(|e| step(&e))?;
    charts(store, &actor, crate::store::Timestamp::now(), rounds).await
}
