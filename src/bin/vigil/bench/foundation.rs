//! The foundation: demo seed, audit chain, cryptography, email lookup, sign-in, tokens, TOTP,
//! key rotation (`vigil bench` without an area flag).

use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result};
use serde::Serialize;
use vigil::audit::{self, Verification};
use vigil::auth::{self};
use vigil::crypto::field::{self, Place};
use vigil::crypto::{Envelope, KeyBits, KeyVersion, PrivateKey, SymmetricKey};
use vigil::demo::{self, SeedOptions, SeedProgress};
use vigil::keys::keystore::{FileKeystore, Keystore};
use vigil::keys::{rotation, Purpose};
use vigil::platform;
use vigil::store::Store;

use super::*;
use crate::shared::*;

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

    let lookup_median = email_lookup_median(store, &ring).await?;

    let (login_median, session) = sign_in_median(store, keystore, &actor, &secret).await?;
    let (token_verify_per_sec, token_verify_uncached_per_sec, token_signature_verify_per_sec) =
        token_rates(store, &ring, &session).await?;
    let totp_verify_per_sec = totp_verify_rate();

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

/// Median time of looking up, through the blind index, the emails of up to 1,000 sampled users.
async fn email_lookup_median(store: &Store, ring: &keys::KeyRing) -> Result<Duration, BenchError> {
    let step = |e: &dyn std::fmt::Display| BenchError::Step(e.to_string());
    let sample = platform::sample_user_ids(store, 1_000).await?;
    let mut emails = Vec::with_capacity(sample.len());
    for id in &sample {
        if let Some(e) = platform::user_email(store, ring, *id)
            .await
            .map_err(|e| step(&e))?
        {
            emails.push((*id, e));
        }
    }
    let mut lookups = Vec::with_capacity(emails.len());
    for (id, email) in &emails {
        let t = Instant::now();
        let found = platform::find_user_by_email(store, ring, email)
            .await
            .map_err(|e| step(&e))?;
        lookups.push(t.elapsed());
        if found != Some(*id) {
            return Err(step(&"an email lookup found the wrong account"));
        }
    }
    lookups.sort();
    Ok(lookups.get(lookups.len() / 2).copied().unwrap_or_default())
}

/// Median of 15 sign-ins (argon2id, unlocking the keys), and the last session.
async fn sign_in_median(
    store: &Store,
    keystore: &dyn Keystore,
    actor: &auth::Actor,
    secret: &str,
) -> Result<(Duration, auth::Session), BenchError> {
    let step = |e: &dyn std::fmt::Display| BenchError::Step(e.to_string());
    let mut logins = Vec::new();
    let mut last = None;
    for _ in 0..15 {
        let t = Instant::now();
        let outcome = auth::login(
            store,
            Some(keystore),
            actor.username().as_str(),
            secret,
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
    Ok((login_median, session))
}

/// Access-token verifications per second: with the epoch cache, with the full database checks
/// each time, and the signature and claims alone.
async fn token_rates(
    store: &Store,
    ring: &keys::KeyRing,
    session: &auth::Session,
) -> Result<(f64, f64, f64), BenchError> {
    let step = |e: &dyn std::fmt::Display| BenchError::Step(e.to_string());
    let pair = auth::tokens::issue(store, ring, session, "bench")
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
    Ok((
        token_verify_per_sec,
        token_verify_uncached_per_sec,
        token_signature_verify_per_sec,
    ))
}

/// TOTP verifications (three candidate steps each) per second, computation only.
fn totp_verify_rate() -> f64 {
    let totp_secret = [7u8; 20];
    let code = vigil::mfa::code_at(&totp_secret, 1_000_000, vigil::mfa::DIGITS);
    rate(200_000, |i| {
        std::hint::black_box(vigil::mfa::matching_step(
            &totp_secret,
            &code,
            1_000_000 + u64::from(i % 2),
        ));
    })
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

pub(super) async fn cmd(
    store: &Store,
    keystore: &FileKeystore,
    a: &BenchArgs,
    opts: BenchOptions,
) -> Result<ExitCode> {
    let bar = progress_bar(a.json);
    let report = run(store, keystore, opts, &mut |p| show(&bar, p)).await;
    bar.finish_and_clear();
    let report = report.context("benchmark failed")?;
    if a.json {
        print_json(&report)?;
    } else {
        println!("backend:        {}", report.backend);
        println!(
            "demo seed:      {} rows in {:.2} s = {:.0} rows/s",
            report.seed_rows, report.seed_seconds, report.seed_rows_per_sec
        );
        println!(
            "audit append:   {} entries = {:.0} entries/s (1,000 per transaction)",
            report.audit_appended, report.audit_appends_per_sec
        );
        println!(
            "audit verify:   {} entries, median {:.3} s = {:.0} entries/s",
            report.verify_entries, report.verify_median_seconds, report.verify_entries_per_sec
        );
        let c = &report.crypto;
        println!(
            "field seal:     {:.0} ops/s; field open: {:.0} ops/s (AES-256-GCM, place-bound)",
            c.field_seal_per_sec, c.field_open_per_sec
        );
        println!(
            "RSA-OAEP 2048:  {:.0} encrypts/s, {:.0} decrypts/s (bare)",
            c.rsa_encrypt_per_sec, c.rsa_decrypt_per_sec
        );
        println!(
            "E2E envelope:   seal for 5 = {:.0}/s ({:.3}x five bare encrypts); open = {:.0}/s ({:.3}x one bare decrypt)",
            c.e2e_seal_5_per_sec, c.e2e_seal_overhead, c.e2e_open_per_sec, c.e2e_open_overhead
        );
        println!(
            "email lookup:   median {:.1} us over {} users (blind index)",
            report.email_lookup_median_us, report.email_lookup_users
        );
        println!(
            "sign-in:        median {:.1} ms (argon2id, unlocking keys); TOTP verify: {:.0}/s",
            report.login_median_ms, report.totp_verify_per_sec
        );
        println!(
            "token verify:   {:.0}/s with the epoch cache; {:.0}/s with full database checks each time",
            report.token_verify_per_sec, report.token_verify_uncached_per_sec
        );
        println!(
            "token EdDSA:    {:.0}/s for the signature and claims alone (no database, one core)",
            report.token_signature_verify_per_sec
        );
        if let (Some(rows), Some(rate)) = (report.rotation_rows, report.rotation_rows_per_sec) {
            println!("contact rotation: {rows} rows = {rate:.0} rows/s (5,000 per transaction)");
        }
    }
    Ok(ExitCode::SUCCESS)
}
