//! Labelled attack scenarios added to a demo history: each an account (made here, with weeks
//! of ordinary history of its own) and the activity that should make the detectors open one
//! incident of a known type and severity. The activity goes in as JSON lines through the same
//! path as `vigil activity ingest`.

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use crate::incidents::{IncidentKind, Severity};
use crate::keys::WriteKeys;
use crate::monitor::{self, IngestReport};
use crate::platform::{self, NewPlatformUser};
use crate::store::{Store, Timestamp};

use super::DemoError;

/// A scenario: who, and what the detectors should make of it.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Scenario {
    /// Its label.
    pub label: &'static str,
    /// The account it is about.
    pub username: &'static str,
    /// The incident it should open.
    pub kind: IncidentKind,
    /// With this severity.
    pub severity: Severity,
}

/// The scenarios `demo seed --scenarios` adds.
pub const SCENARIOS: [Scenario; 5] = [
    Scenario {
        label: "credential stuffing from one address over many accounts",
        username: "stuffed.victim",
        kind: IncidentKind::CredentialStuffing,
        severity: Severity::Critical,
    },
    Scenario {
        label: "burst poster",
        username: "burst.poster",
        kind: IncidentKind::RateLimitExceeded,
        severity: Severity::High,
    },
    Scenario {
        label: "one account used from many addresses within 30 minutes",
        username: "roaming.account",
        kind: IncidentKind::SuspiciousActivity,
        severity: Severity::High,
    },
    Scenario {
        label: "sign-in from an unusual country at an unusual hour",
        username: "night.owl",
        kind: IncidentKind::SuspiciousActivity,
        severity: Severity::High,
    },
    Scenario {
        label: "phishing spammer posting links",
        username: "phish.spammer",
        kind: IncidentKind::MaliciousContent,
        severity: Severity::High,
    },
];

/// The address the credential-stuffing run comes from (a documentation range).
pub const STUFFING_IP: &str = "198.51.100.23";

const HOUR: i64 = 3_600_000_000;
const DAY: i64 = 24 * HOUR;
const MIN: i64 = 60_000_000;
const AGENT: &str = "Mozilla/5.0 (X11; Linux x86_64) Gecko/20100101 Firefox/132.0";

/// Adds the scenarios; `others` are existing usernames the stuffing run may try. Returns the
/// ingestion's counts.
pub(super) async fn add(
    store: &Store,
    keys: &WriteKeys,
    rng: &mut ChaCha8Rng,
    others: &[String],
    now: i64,
) -> Result<IngestReport, DemoError> {
    // Every scenario account is active at 10:00-13:00 UTC from home, for four weeks.
    let today = now.div_euclid(DAY) * DAY;
    let usual = |day: i64| today - day * DAY + 10 * HOUR;
    let homes = [
        ("stuffed.victim", "GB", "192.0.2.10"),
        ("burst.poster", "US", "192.0.2.11"),
        ("roaming.account", "DE", "192.0.2.12"),
        ("night.owl", "GB", "192.0.2.13"),
        ("phish.spammer", "NL", "192.0.2.14"),
    ];
    let mut users = Vec::new();
    for (i, (name, country, _)) in homes.iter().enumerate() {
        let created = today - 60 * DAY;
        users.push(NewPlatformUser {
            id: super::ordered_id(rng, created + i as i64),
            username: (*name).to_owned(),
            display_name: (*name).replace('.', " "),
            country: (*country).to_owned(),
            email: Some(format!("{name}@example.net")),
            phone: None,
            created_at: Timestamp::from_micros(created),
            last_login_at: None,
        });
    }
    let mut tx = store.begin().await?;
    platform::insert_users(&mut tx, keys, &users).await?;
    tx.commit().await?;

    let mut lines = Vec::new();
    let line = |kind: &str, user: &str, at: i64, ip: &str, country: &str, extra: &str| {
        format!(
            r#"{{"type":"{kind}","user":"{user}","at":"{}","ip":"{ip}","country":"{country}","user_agent":"{AGENT}"{extra}}}"#,
            Timestamp::from_micros(at).to_rfc3339()
        )
    };
    for (name, country, ip) in homes {
        for day in 2..30 {
            let at = usual(day) + rng.gen_range(0..3 * HOUR);
            lines.push(line("login_attempt", name, at, ip, country, ""));
            let text = format!("{name} enjoying match day {day}");
            lines.push(line(
                "comment_submission",
                name,
                at + 5 * MIN,
                ip,
                country,
                &format!(r#","content":"{text}""#),
            ));
        }
    }

    // Credential stuffing: yesterday 11:00, one address, 40 accounts in 8 minutes, all but
    // the last failing; the last gets into stuffed.victim.
    let t0 = usual(1) + HOUR;
    let mut tried: Vec<String> = others.iter().take(25).cloned().collect();
    tried.extend((0..15).map(|i| format!("admin{i}")));
    for (i, who) in tried.iter().enumerate() {
        lines.push(line(
            "login_attempt",
            who,
            t0 + i as i64 * 12_000_000,
            STUFFING_IP,
            "RU",
            r#","outcome":"failure","reason":"bad_password""#,
        ));
    }
    lines.push(line(
        "login_attempt",
        "stuffed.victim",
        t0 + 40 * 12_000_000,
        STUFFING_IP,
        "RU",
        "",
    ));

    // Burst poster: yesterday 11:30, 150 comments in 90 seconds, at his usual hour.
    let t1 = usual(1) + HOUR + 30 * MIN;
    for i in 0..150 {
        lines.push(line(
            "comment_submission",
            "burst.poster",
            t1 + i * 600_000,
            "192.0.2.11",
            "US",
            &format!(r#","content":"GOAL GOAL GOAL {i}""#),
        ));
    }

    // Roaming account: yesterday 10:00-10:24, nine addresses in three countries it never
    // used.
    let t2 = usual(1);
    for i in 0..9i64 {
        let country = ["BR", "IN", "JP"][(i % 3) as usize];
        lines.push(line(
            "comment_submission",
            "roaming.account",
            t2 + i * 3 * MIN,
            &format!("203.0.113.{}", 40 + i),
            country,
            &format!(r#","content":"watching from afar {i}""#),
        ));
    }

    // Night owl: yesterday 03:00 UTC, from Brazil.
    lines.push(line(
        "login_attempt",
        "night.owl",
        today - DAY + 3 * HOUR,
        "203.0.113.99",
        "BR",
        "",
    ));

    // Phishing spammer: yesterday 12:00, links to an address and a look-alike host.
    let t3 = usual(1) + 2 * HOUR;
    let posts = [
        "Urgent action required: verify account at http://support:secure@198.51.100.77/login",
        "click here to claim your prize https://user:pass@198.51.100.78/claim",
        "Your account is suspended, verify account now and act fast: guaranteed refund",
    ];
    for (i, p) in posts.iter().enumerate() {
        lines.push(line(
            "comment_submission",
            "phish.spammer",
            t3 + i as i64 * 5 * MIN,
            "192.0.2.14",
            "NL",
            &format!(r#","content":"{p}""#),
        ));
    }

    let numbered: Vec<(u64, String)> = lines
        .into_iter()
        .enumerate()
        .map(|(i, l)| (i as u64 + 1, l))
        .collect();
    let mut report = IngestReport::default();
    for chunk in numbered.chunks(2_000) {
        monitor::ingest_batch(store, keys, chunk, &mut report)
            .await
            .map_err(|e| match e {
                monitor::MonitorError::Store(s) => DemoError::Store(s),
                monitor::MonitorError::Keys(k) => DemoError::Keys(k),
                _ => DemoError::Invalid("scenario activity could not be ingested"),
            })?;
    }
    if report.rejected_total > 0 {
        return Err(DemoError::Invalid("a scenario line was rejected"));
    }
    Ok(report)
}
