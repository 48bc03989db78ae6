//! Property-based fuzzing of every core parser of untrusted bytes: access tokens, sealed fields,
//! end-to-end envelopes, activity lines, screening input, the audit archive's manifest and
//! segments, the configuration file, and the command line's value parsers. Each target checks
//! that garbage gets a clean error (never a panic), that valid values round-trip, and, for the
//! authenticated formats, that one flipped bit is refused.
//!
//! Each target runs `VIGIL_FUZZ_CASES` cases (default 256) in the normal test run. With
//! `VIGIL_FUZZ_SECONDS` set (`scripts/fuzz SECONDS`), each target runs batches of that many
//! cases, each batch from a fresh random seed, until the time is up, and prints how many cases
//! it ran. A failing case's seed is kept in `tests/fuzz-corpus/<target>.txt` (proptest's failure
//! persistence) and is replayed first on every later run.

mod common;

use std::io::Write;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use proptest::test_runner::{
    Config as ProptestConfig, FileFailurePersistence, TestCaseError, TestRunner,
};
use vigil::audit::archive;
use vigil::auth::tokens;
use vigil::config::Config;
use vigil::crypto::envelope::Envelope;
use vigil::crypto::field::{self, Place};
use vigil::crypto::{KeyBits, KeyVersion, PrivateKey, SymmetricKey};
use vigil::monitor::{ingest, screen::Screener};
use vigil::store::Timestamp;

fn env_number(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok())
}

/// Runs `test` over `strategy`: `VIGIL_FUZZ_CASES` cases, or batches of them for
/// `VIGIL_FUZZ_SECONDS` seconds. Panics with the (shrunk) failing input.
fn fuzz<S>(target: &str, strategy: S, test: impl Fn(S::Value) -> Result<(), TestCaseError>)
where
    S: Strategy,
    S::Value: std::fmt::Debug,
{
    let cases = env_number("VIGIL_FUZZ_CASES").unwrap_or(256).max(1) as u32;
    let deadline =
        env_number("VIGIL_FUZZ_SECONDS").map(|s| Instant::now() + Duration::from_secs(s));
    let corpus: &'static str =
        Box::leak(format!("tests/fuzz-corpus/{target}.txt").into_boxed_str());
    let mut total = 0u64;
    loop {
        let mut config = ProptestConfig::with_cases(cases);
        config.failure_persistence = Some(Box::new(FileFailurePersistence::Direct(corpus)));
        let mut runner = TestRunner::new(config);
        if let Err(e) = runner.run(&strategy, &test) {
            panic!("fuzz target {target} failed after {total} cases: {e}");
        }
        total += u64::from(cases);
        match deadline {
            Some(d) if Instant::now() < d => {}
            _ => break,
        }
    }
    println!("fuzz target {target}: {total} cases");
}

/// `bytes` with bit `bit` of byte `at` (both taken modulo the length) flipped.
fn flip(bytes: &[u8], at: usize, bit: u8) -> Vec<u8> {
    let mut v = bytes.to_vec();
    let i = at % v.len();
    v[i] ^= 1 << (bit % 8);
    v
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn fuzz_access_tokens() {
    let rt = runtime();
    let db = rt.block_on(common::sqlite());
    let (admin, ring) = rt.block_on(common::admin_keys(&db));
    let pair = rt
        .block_on(tokens::issue_at(
            &db.store,
            &ring,
            &admin,
            "fuzz",
            Timestamp::now(),
        ))
        .unwrap();
    let token = pair.access_token.clone();
    // The genuine token verifies: the refusals below are about the changes.
    rt.block_on(tokens::verify_access_token(&db.store, &token))
        .unwrap();
    let shaped = "[A-Za-z0-9_-]{0,80}\\.[A-Za-z0-9_-]{0,200}\\.[A-Za-z0-9_-]{0,90}";
    let strategy = (
        prop_oneof![any::<String>(), shaped.prop_map(|s| s)],
        any::<usize>(),
        0u8..7,
    );
    fuzz("access_tokens", strategy, |(garbage, at, bit)| {
        rt.block_on(async {
            // Garbage: a clean refusal.
            prop_assert!(tokens::verify_access_token(&db.store, &garbage)
                .await
                .is_err());
            // One flipped bit anywhere in a genuine token (bits 0-6 keep it ASCII).
            let altered = String::from_utf8(flip(token.as_bytes(), at, bit)).unwrap();
            prop_assert!(
                tokens::verify_access_token(&db.store, &altered)
                    .await
                    .is_err(),
                "a token with one flipped bit verified: byte {}",
                at % token.len()
            );
            Ok(())
        })
    });
}

const PLACE: Place<'static> = Place {
    table: "users",
    column: "email_enc",
    row: "0190f2a4-0000-7000-8000-000000000001",
};

#[test]
fn fuzz_sealed_fields() {
    let key = SymmetricKey::random();
    let strategy = (
        proptest::collection::vec(any::<u8>(), 0..512),
        proptest::collection::vec(any::<u8>(), 0..512),
        any::<usize>(),
        any::<u8>(),
    );
    fuzz(
        "sealed_fields",
        strategy,
        |(plaintext, garbage, at, bit)| {
            let _ = field::key_version(&garbage);
            prop_assert!(field::open(&key, &PLACE, &garbage).is_err());
            let sealed = field::seal(&key, KeyVersion(3), &PLACE, &plaintext);
            prop_assert_eq!(field::key_version(&sealed).unwrap(), KeyVersion(3));
            let opened = field::open(&key, &PLACE, &sealed).unwrap();
            prop_assert_eq!(opened.as_slice(), plaintext.as_slice());
            prop_assert!(field::open(&key, &PLACE, &flip(&sealed, at, bit)).is_err());
            Ok(())
        },
    );
}

#[test]
fn fuzz_e2e_envelopes() {
    let alice = PrivateKey::generate(KeyBits::B2048).unwrap();
    let bob = PrivateKey::generate(KeyBits::B2048).unwrap();
    let recipients = [alice.public_key(), bob.public_key()];
    let strategy = (
        proptest::collection::vec(any::<u8>(), 0..600),
        proptest::collection::vec(any::<u8>(), 0..600),
        any::<usize>(),
        any::<u8>(),
    );
    fuzz("e2e_envelopes", strategy, |(body, garbage, at, bit)| {
        if let Ok(env) = Envelope::from_bytes(&garbage) {
            // Whatever parses is refused by the keys, and writes back as it was read.
            prop_assert_eq!(env.to_bytes(), garbage.clone());
            prop_assert!(env
                .open("comment-1", &alice.public_key().fingerprint(), &alice)
                .is_err());
        }
        let env = Envelope::seal("comment-1", &recipients, &body).unwrap();
        let bytes = env.to_bytes();
        let again = Envelope::from_bytes(&bytes).unwrap();
        prop_assert_eq!(again.to_bytes(), bytes.clone());
        let fp = bob.public_key().fingerprint();
        let opened = again.open("comment-1", &fp, &bob).unwrap();
        prop_assert_eq!(opened.as_slice(), body.as_slice());
        prop_assert!(again.open("comment-2", &fp, &bob).is_err());
        let altered = flip(&bytes, at, bit);
        let opened = Envelope::from_bytes(&altered).and_then(|e| e.open("comment-1", &fp, &bob));
        prop_assert!(opened.is_err(), "an envelope with one flipped bit opened");
        Ok(())
    });
}

#[test]
fn fuzz_activity_lines() {
    // Logins: a comment also needs its content and event, a reaction its comment.
    let kinds = Just("login");
    let strategy = (
        any::<String>(),
        "[a-z][a-z0-9_]{0,30}",
        kinds,
        0i64..4_000_000_000,
        any::<[u8; 4]>(),
    );
    fuzz(
        "activity_lines",
        strategy,
        |(garbage, user, kind, secs, ip)| {
            // Garbage: an error that does not repeat the line.
            if let Err(e) = ingest::parse(&garbage) {
                prop_assert!(garbage.len() < 8 || !e.contains(garbage.as_str()));
            }
            let at = chrono::DateTime::from_timestamp(secs, 0).unwrap();
            let ip = std::net::Ipv4Addr::from(ip).to_string();
            let line = serde_json::json!({
                "type": kind, "user": user, "at": at.to_rfc3339(), "ip": ip,
            })
            .to_string();
            let parsed = ingest::parse(&line);
            prop_assert!(parsed.is_ok(), "{line}: {:?}", parsed.err());
            let parsed = parsed.unwrap();
            prop_assert_eq!(&parsed.user, &user);
            prop_assert_eq!(ingest::kind_name(parsed.kind), kind);
            prop_assert_eq!(parsed.at, Timestamp::from(at));
            prop_assert_eq!(parsed.ip.as_deref(), Some(ip.as_str()));
            Ok(())
        },
    );
}

#[test]
fn fuzz_screening_input() {
    let screener = Screener::new(&[], &[]).unwrap();
    let strategy = proptest::collection::vec(
        prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..200),
            "[ -~]{0,120}".prop_map(String::into_bytes),
            Just(b"visit http://203.0.113.9/login now".to_vec()),
        ],
        0..20,
    );
    fuzz("screening_input", strategy, |lines| {
        let mut input = Vec::new();
        for l in &lines {
            input.extend(l.iter().map(|&b| if b == b'\n' { b' ' } else { b }));
            input.push(b'\n');
        }
        for l in &lines {
            let _ = screener.screen(&String::from_utf8_lossy(l));
        }
        let mut out = Vec::new();
        let n = screener
            .screen_lines(&mut input.as_slice(), &mut out)
            .unwrap();
        prop_assert_eq!(n, lines.len() as u64);
        let text = String::from_utf8(out).unwrap();
        let mut numbers = Vec::new();
        for row in text.lines() {
            let v: serde_json::Value = serde_json::from_str(row).unwrap();
            numbers.push(v["line"].as_u64().unwrap());
        }
        prop_assert_eq!(numbers, (1..=lines.len() as u64).collect::<Vec<_>>());
        Ok(())
    });
}

#[test]
fn fuzz_archive_manifest_and_segments() {
    let names = prop_oneof![
        Just("audit-000000000001-000000000005.jsonl.gz".to_owned()),
        Just("../outside.jsonl.gz".to_owned()),
        Just("/dev/zero".to_owned()),
        Just("link.jsonl.gz".to_owned()),
        Just(archive::MANIFEST.to_owned()),
        any::<String>(),
    ];
    let strategy = (
        proptest::collection::vec(any::<u8>(), 0..400),
        names,
        proptest::collection::vec(any::<u8>(), 0..400),
        any::<bool>(),
        0u64..1000,
        any::<bool>(),
    );
    fuzz(
        "archive_manifest_and_segments",
        strategy,
        |(manifest_garbage, name, segment, gzip, bytes, honest)| {
            let root = tempfile::tempdir().unwrap();
            let dir = root.path().join("archive");
            std::fs::create_dir(&dir).unwrap();
            std::os::unix::fs::symlink("/dev/zero", dir.join("link.jsonl.gz")).unwrap();
            // Garbage as the manifest: refused, never a panic.
            std::fs::write(dir.join(archive::MANIFEST), &manifest_garbage).unwrap();
            let r = archive::walk_archive(&dir, 5, &[0; 32]);
            let refused = !matches!(r, archive::ArchiveResult::Ok { .. });
            prop_assert!(refused, "{}", r);
            // A well-formed manifest over a garbage segment (raw, or gzip of garbage lines),
            // with the right checksum and size or not.
            let content = if gzip {
                let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                gz.write_all(&segment).unwrap();
                gz.finish().unwrap()
            } else {
                segment.clone()
            };
            let plain =
                !name.contains(['/', '\\']) && !name.is_empty() && name != "." && name != "..";
            if plain && name != archive::MANIFEST && name != "link.jsonl.gz" {
                std::fs::write(dir.join(&name), &content).unwrap();
            }
            let sha = {
                use sha2::Digest;
                hex::encode(sha2::Sha256::digest(&content))
            };
            let manifest = serde_json::json!({
                "format": "vigil-audit-archive-v1",
                "segments": [{
                    "file": name, "first_seq": 1, "last_seq": 5,
                    "prev_hash": "00", "first_hash": "00", "last_hash": "00", "entries": 5,
                    "sha256": if honest { sha } else { "00".into() },
                    "bytes": if honest { content.len() as u64 } else { bytes },
                }],
            });
            std::fs::write(
                dir.join(archive::MANIFEST),
                serde_json::to_vec(&manifest).unwrap(),
            )
            .unwrap();
            let r = archive::walk_archive(&dir, 5, &[0; 32]);
            let text = r.to_string();
            let refused = !matches!(r, archive::ArchiveResult::Ok { .. });
            prop_assert!(refused, "{}", text);
            prop_assert!(text.starts_with("archive"), "{text}");
            Ok(())
        },
    );
}

#[test]
fn fuzz_config_file() {
    let strategy = (
        prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..300),
            "[\\[\\]a-z_=\" .0-9\n]{0,200}".prop_map(String::into_bytes),
        ],
        1u32..=256,
        0u32..100_000,
    );
    fuzz("config_file", strategy, |(garbage, good, any_number)| {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        let load = |text: &[u8]| {
            std::fs::write(&path, text).unwrap();
            let p = path.clone();
            Config::load_with(move |k| (k == "VIGIL_CONFIG").then(|| p.display().to_string()))
        };
        // Garbage: loads or gives a clean error, never a panic.
        if let Err(e) = load(&garbage) {
            let _ = e.to_string();
        }
        let ok = load(format!("[database]\nmax_connections = {good}\n").as_bytes());
        prop_assert!(ok.is_ok(), "{:?}", ok.err());
        prop_assert_eq!(ok.unwrap().database.max_connections, good);
        let bad = load(format!("[database]\nmax_connections = {any_number}\n").as_bytes());
        prop_assert_eq!(bad.is_ok(), (1..=256).contains(&any_number));
        Ok(())
    });
}

// Regular tests for what the targets found.

/// Found by `fuzz_e2e_envelopes`: in format 1 the associated data covered the recipients'
/// fingerprints but not their wrapped keys, so a changed byte in one recipient's wrapped key
/// still opened for every other recipient. Format 2 binds them all.
#[test]
fn an_envelope_with_another_recipients_wrapped_key_changed_is_refused() {
    let alice = PrivateKey::generate(KeyBits::B2048).unwrap();
    let bob = PrivateKey::generate(KeyBits::B2048).unwrap();
    let env = Envelope::seal(
        "comment-1",
        &[alice.public_key(), bob.public_key()],
        b"hello",
    )
    .unwrap();
    let bytes = env.to_bytes();
    assert_eq!(bytes[0], vigil::crypto::envelope::FORMAT_V2);
    // The first recipient's wrapped key starts after version, count, fingerprint and length.
    let mut altered = bytes.clone();
    altered[1 + 2 + 32 + 2 + 10] ^= 0x01;
    let altered = Envelope::from_bytes(&altered).unwrap();
    for key in [&alice, &bob] {
        let fp = key.public_key().fingerprint();
        assert!(altered.open("comment-1", &fp, key).is_err());
        let intact = Envelope::from_bytes(&bytes).unwrap();
        assert_eq!(
            intact.open("comment-1", &fp, key).unwrap().as_slice(),
            b"hello"
        );
    }
}

/// Found by `fuzz_config_file`: `database.max_connections` in the file was taken unchecked
/// (0 or 257 loaded), while `VIGIL_DB_MAX_CONNECTIONS` was held to 1..=256.
#[test]
fn a_config_file_max_connections_out_of_range_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    for (n, ok) in [(0, false), (1, true), (256, true), (257, false)] {
        std::fs::write(&path, format!("[database]\nmax_connections = {n}\n")).unwrap();
        let p = path.clone();
        let loaded =
            Config::load_with(move |k| (k == "VIGIL_CONFIG").then(|| p.display().to_string()));
        assert_eq!(loaded.is_ok(), ok, "{n}: {:?}", loaded.err());
        if let Err(e) = loaded {
            let text = e.to_string();
            assert!(text.contains("database.max_connections"), "{text}");
        }
    }
}

/// Found by `fuzz_activity_lines`: a line that is valid JSON but not an object, or has a value
/// of the wrong type or an unknown field, got serde's message, which quotes the value or the
/// field name; the error now says what is wrong without any of the line's text.
#[test]
fn an_activity_line_error_repeats_none_of_the_line() {
    for (line, expected) in [
        (r#""ada@example.org""#, "a line must be a JSON object"),
        (
            r#"{"type":"login","user":"ada","at":"2026-01-01T00:00:00Z","ip":["ada@example.org"]}"#,
            "a field has the wrong type (expected a string)",
        ),
        (
            r#"{"type":"login","user":"ada","at":"2026-01-01T00:00:00Z","ada@example.org":1}"#,
            "an unknown field (not part of the format)",
        ),
        (
            r#"{"type":"login","ada@example.org"#,
            "the JSON ends too early",
        ),
        (
            "ada@example.org",
            "not valid JSON (expected one JSON object per line)",
        ),
    ] {
        let e = ingest::parse(line).unwrap_err();
        assert_eq!(e, expected, "{line}");
        assert!(!e.contains("ada"), "{e}");
    }
}

#[test]
fn fuzz_cli_values() {
    use vigil::cli_values;
    let now = Timestamp::from_micros(1_800_000_000_000_000);
    let strategy = prop_oneof![
        any::<String>(),
        "[0-9]{0,25}[mhdé٣ ]?",
        "-?[0-9]{1,20}[mhd]",
        "[0-9]{4}-[0-9]{2}-[0-9]{2}(T[0-9]{2}:[0-9]{2}:[0-9]{2}(Z|[+-][0-9]{2}:[0-9]{2}))?",
        "[0-9a-fA-F:.-]{0,45}",
    ];
    fuzz("cli_values", strategy, |s| {
        if let Ok(t) = cli_values::since_at(&s, now) {
            // An age never reaches past a hundred years before now, and never wraps after it.
            let age: String = s.trim().chars().rev().skip(1).collect();
            if !s.contains('-') && !s.contains(':') && !age.is_empty() {
                prop_assert!(t <= now);
                prop_assert!(
                    now.micros() - t.micros() <= cli_values::MAX_SINCE_DAYS * 86_400_000_000
                );
            }
        }
        let _ = cli_values::date(&s);
        if let Ok(id) = cli_values::id(&s) {
            prop_assert_eq!(cli_values::id(&id), Ok(id.clone()));
        }
        if let Ok(ip) = cli_values::ip_or_stdin(&s) {
            prop_assert_eq!(cli_values::ip_or_stdin(&ip), Ok(ip.clone()));
        }
        let _ = cli_values::block_or_ip_or_stdin(&s);
        if let Ok(d) = cli_values::chart_days(&s) {
            prop_assert!([7, 30, 90].contains(&d));
        }
        if let Ok(h) = cli_values::hours(&s) {
            prop_assert!((1..=8_760).contains(&h));
        }
        if let Ok(d) = cli_values::past_date(&s) {
            prop_assert!(d <= chrono::Utc::now().date_naive());
        }
        let kind = cli_values::one_of(vigil::privacy::RequestKind::parse, "a type");
        if let Ok(k) = kind(&s) {
            prop_assert_eq!(k.as_str(), s.trim());
        }
        Ok(())
    });
}
