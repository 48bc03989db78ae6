//! The behaviour detectors: one pass over activity in time order, with sliding windows kept
//! in memory (per account and kind, per account, per source), and each account's usual hours
//! and countries learned from its own successful activity.
//!
//! Only events marked `fresh` (not seen by an earlier run) raise detections; older events
//! still fill the windows and the profiles, so a run that picks up where the last one stopped
//! judges new activity exactly as one long run would.

use std::collections::{HashMap, VecDeque};

use super::geo;
use super::policy::{Policy, RateLimit};
use super::shard::{Shard, ShardCount};
use crate::incidents::{Evidence, IncidentKind, Severity};

/// What kind of activity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// A sign-in attempt.
    Login,
    /// A comment submission.
    Comment,
    /// A reaction.
    Reaction,
    /// A profile change.
    ProfileChange,
    /// Anything else.
    Other,
}

impl Kind {
    /// From the stored name.
    pub fn from_stored(s: &str) -> Self {
        match s {
            "login" => Kind::Login,
            "comment" => Kind::Comment,
            "reaction" => Kind::Reaction,
            "profile_change" => Kind::ProfileChange,
            _ => Kind::Other,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Kind::Login => "login",
            Kind::Comment => "comment",
            Kind::Reaction => "reaction",
            Kind::ProfileChange => "profile_change",
            Kind::Other => "other",
        }
    }
}

/// One activity record as the detectors see it (the address only as its blind index).
#[derive(Debug, Clone)]
pub struct Event {
    /// Activity id.
    pub id: String,
    /// The account, if known.
    pub user: Option<uuid::Uuid>,
    /// What.
    pub kind: Kind,
    /// Succeeded.
    pub ok: bool,
    /// When (µs).
    pub at: i64,
    /// Blind index of the source address.
    pub ip: Option<[u8; 32]>,
    /// Keyed hash of the account name a sign-in tried.
    pub target: Option<[u8; 32]>,
    /// Source country.
    pub country: Option<String>,
    /// Not seen by an earlier run: may raise detections.
    pub fresh: bool,
}

/// A detection before its source address is opened.
#[derive(Debug, Clone)]
pub struct Finding {
    /// What.
    pub kind: IncidentKind,
    /// How bad.
    pub severity: Severity,
    /// Whose.
    pub user: Option<uuid::Uuid>,
    /// The activity whose source address is the incident's source.
    pub source_event: Option<String>,
    /// What fired on what.
    pub evidence: Vec<Evidence>,
    /// One line, no personal data.
    pub summary: String,
    /// Folding key.
    pub dedup_key: String,
    /// When.
    pub at: i64,
}

/// An account's learned habits.
#[derive(Debug, Clone, Default)]
pub struct Profile {
    /// Successful actions per hour of day (UTC).
    pub hours: [u32; 24],
    /// Successful actions in all.
    pub total: u32,
    /// Successful actions per country.
    pub countries: HashMap<String, u32>,
}

/// Rate window of one account and kind.
#[derive(Default)]
struct RateWindow {
    events: VecDeque<(i64, String)>,
    over: bool,
}

/// One account's recent activity.
#[derive(Default)]
struct UserWindow {
    ips: VecDeque<(i64, [u8; 32], String)>,
    ip_counts: HashMap<[u8; 32], u32>,
    recent: VecDeque<i64>,
    last_place: Option<(i64, String)>,
}

/// A sign-in attempt in a source's window.
struct Attempt {
    at: i64,
    target: [u8; 32],
    ok: bool,
    id: String,
    /// The account it got into, if it succeeded.
    entered: Option<uuid::Uuid>,
}

/// One source's recent sign-in attempts.
#[derive(Default)]
struct SourceWindow {
    attempts: VecDeque<Attempt>,
    targets: HashMap<[u8; 32], u32>,
    failures: u32,
    over: bool,
}

/// Most evidence rows a single finding carries.
const MAX_EVIDENCE: usize = 200;
const HOUR: i64 = 3_600_000_000;

/// The detectors' state over one pass (of one shard).
pub struct Engine {
    policy: Policy,
    shard: Shard,
    profiles: HashMap<uuid::Uuid, Profile>,
    rates: HashMap<(uuid::Uuid, Kind), RateWindow>,
    users: HashMap<uuid::Uuid, UserWindow>,
    sources: HashMap<[u8; 32], SourceWindow>,
}

impl Engine {
    /// An engine knowing the accounts' habits before the pass starts, judging everything.
    pub fn new(policy: &Policy, profiles: HashMap<uuid::Uuid, Profile>) -> Self {
        let whole = Shard::all(ShardCount::ONE).next().expect("one shard");
        Self::for_shard(policy, profiles, whole)
    }

    /// An engine that judges only what `shard` owns (see [`super::shard`]): the detectors of
    /// its accounts and the credential-stuffing windows of its sources. Habits of accounts
    /// it does not own are dropped.
    pub fn for_shard(
        policy: &Policy,
        mut profiles: HashMap<uuid::Uuid, Profile>,
        shard: Shard,
    ) -> Self {
        profiles.retain(|user, _| shard.owns_account(user));
        Self {
            policy: policy.clone(),
            shard,
            profiles,
            rates: HashMap::new(),
            users: HashMap::new(),
            sources: HashMap::new(),
        }
    }

    /// The thresholds it judges by.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The shard it judges for.
    pub fn shard(&self) -> Shard {
        self.shard
    }

    /// Forgets the windows of the accounts and sources with nothing in the look-back before
    /// `at` (the time of the last record fed): the next record of each would empty them, and a
    /// pass starting cold would not have them. An engine kept from run to run holds only what
    /// was active lately (every address that ever signed in would otherwise stay); habits stay.
    pub fn forget_idle(&mut self, at: i64) {
        let horizon = at - self.policy.lookback_micros();
        self.rates
            .retain(|_, w| w.events.back().is_some_and(|(t, _)| *t > horizon));
        self.users
            .retain(|_, w| w.recent.back().is_some_and(|t| *t > horizon));
        self.sources
            .retain(|_, w| w.attempts.back().is_some_and(|a| a.at > horizon));
    }

    /// Feeds the next event (in time order); findings go to `out`.
    /// Only the parts the engine's shard owns are looked at.
    pub fn feed(&mut self, ev: &Event, out: &mut Vec<Finding>) {
        if let Some(user) = ev.user.filter(|u| self.shard.owns_account(u)) {
            self.rate_limit(user, ev, out);
            self.behaviour(user, ev, out);
        }
        if ev.kind == Kind::Login && ev.ip.is_some_and(|ip| self.shard.owns_source(&ip)) {
            self.stuffing(ev, out);
        }
    }

    fn limit_of(&self, kind: Kind) -> Option<(RateLimit, Severity)> {
        match kind {
            Kind::Comment => Some((self.policy.comments, Severity::High)),
            Kind::Reaction => Some((self.policy.reactions, Severity::High)),
            Kind::Login => Some((self.policy.logins, Severity::Medium)),
            _ => None,
        }
    }

    fn rate_limit(&mut self, user: uuid::Uuid, ev: &Event, out: &mut Vec<Finding>) {
        let Some((limit, severity)) = self.limit_of(ev.kind) else {
            return;
        };
        let w = self.rates.entry((user, ev.kind)).or_default();
        w.events.push_back((ev.at, ev.id.clone()));
        let from = ev.at - limit.window_micros();
        while w.events.front().is_some_and(|(t, _)| *t <= from) {
            w.events.pop_front();
        }
        if w.events.len() as u32 > limit.count {
            if !w.over {
                w.over = true;
                if ev.fresh {
                    let rule = format!("rate_limit.{}", ev.kind.name());
                    out.push(Finding {
                        kind: IncidentKind::RateLimitExceeded,
                        severity,
                        user: Some(user),
                        source_event: Some(ev.id.clone()),
                        evidence: w
                            .events
                            .iter()
                            .rev()
                            .take(MAX_EVIDENCE)
                            .map(|(_, id)| activity(id, &rule))
                            .collect(),
                        summary: format!(
                            "{} {}s within {} s (limit {})",
                            w.events.len(),
                            ev.kind.name(),
                            limit.window_secs,
                            limit.count
                        ),
                        dedup_key: format!("rate_limit_exceeded:{}:{user}", ev.kind.name()),
                        at: ev.at,
                    });
                }
            }
        } else {
            w.over = false;
        }
    }

    fn behaviour(&mut self, user: uuid::Uuid, ev: &Event, out: &mut Vec<Finding>) {
        let p = &self.policy;
        let w = self.users.entry(user).or_default();
        // Distinct addresses in the window.
        if let Some(ip) = ev.ip {
            w.ips.push_back((ev.at, ip, ev.id.clone()));
            *w.ip_counts.entry(ip).or_default() += 1;
        }
        let from = ev.at - i64::from(p.ip_window_secs) * 1_000_000;
        while let Some((t, ip, _)) = w.ips.front() {
            if *t > from {
                break;
            }
            let ip = *ip;
            w.ips.pop_front();
            if let Some(n) = w.ip_counts.get_mut(&ip) {
                *n -= 1;
                if *n == 0 {
                    w.ip_counts.remove(&ip);
                }
            }
        }
        // Actions in the short window.
        w.recent.push_back(ev.at);
        let from = ev.at - i64::from(p.rapid_window_secs) * 1_000_000;
        while w.recent.front().is_some_and(|t| *t <= from) {
            w.recent.pop_front();
        }

        let mut indicators: Vec<(&'static str, String)> = Vec::new();
        if w.ip_counts.len() as u32 > p.max_ips {
            indicators.push((
                "multiple_ips",
                format!(
                    "{} addresses in {} min",
                    w.ip_counts.len(),
                    p.ip_window_secs / 60
                ),
            ));
        }
        if w.recent.len() as u32 > p.max_rapid_actions {
            indicators.push((
                "rapid_actions",
                format!("{} actions in {} s", w.recent.len(), p.rapid_window_secs),
            ));
        }
        let profile = self.profiles.entry(user).or_default();
        let hour = (ev.at.div_euclid(HOUR)).rem_euclid(24) as usize;
        if ev.ok && profile.total >= p.min_history {
            let near = profile.hours[(hour + 23) % 24]
                + profile.hours[hour]
                + profile.hours[(hour + 1) % 24];
            if f64::from(near) < p.unusual_hour_share * f64::from(profile.total) {
                indicators.push(("unusual_hours", format!("active at {hour:02}:00 UTC")));
            }
            if let Some(c) = &ev.country {
                if !profile.countries.contains_key(c) {
                    indicators.push(("geographic_anomaly", format!("first activity from {c}")));
                } else if let Some((t0, c0)) = &w.last_place {
                    if let Some(km) = geo::distance_km(c0, c) {
                        let hours = ((ev.at - t0) as f64 / HOUR as f64).max(1.0 / 60.0);
                        if km / hours > p.max_travel_kmh {
                            indicators.push((
                                "geographic_anomaly",
                                format!(
                                    "{c0} to {c} in {:.1} h",
                                    (ev.at - t0) as f64 / HOUR as f64
                                ),
                            ));
                        }
                    }
                }
            }
        }
        if ev.fresh && ev.ok && indicators.len() as u32 >= p.min_indicators {
            let mut evidence: Vec<Evidence> = indicators
                .iter()
                .map(|(rule, _)| activity(&ev.id, rule))
                .collect();
            if indicators.iter().any(|(r, _)| *r == "multiple_ips") {
                let mut seen = std::collections::HashSet::new();
                for (_, ip, id) in w.ips.iter().rev() {
                    if seen.insert(*ip) && id != &ev.id {
                        evidence.push(activity(id, "multiple_ips"));
                    }
                }
            }
            out.push(Finding {
                kind: IncidentKind::SuspiciousActivity,
                severity: if indicators.len() >= 3 {
                    Severity::Critical
                } else {
                    Severity::High
                },
                user: Some(user),
                source_event: Some(ev.id.clone()),
                evidence,
                summary: indicators
                    .iter()
                    .map(|(_, why)| why.as_str())
                    .collect::<Vec<_>>()
                    .join("; "),
                dedup_key: format!("suspicious_activity:{user}"),
                at: ev.at,
            });
        }
        // Learn from successful activity only: an attacker's failures teach nothing.
        if ev.ok {
            profile.hours[hour] += 1;
            profile.total += 1;
            if let Some(c) = &ev.country {
                *profile.countries.entry(c.clone()).or_default() += 1;
                w.last_place = Some((ev.at, c.clone()));
            }
        }
    }

    fn stuffing(&mut self, ev: &Event, out: &mut Vec<Finding>) {
        let (Some(ip), Some(target)) = (ev.ip, ev.target) else {
            return;
        };
        let p = &self.policy;
        let w = self.sources.entry(ip).or_default();
        w.attempts.push_back(Attempt {
            at: ev.at,
            target,
            ok: ev.ok,
            id: ev.id.clone(),
            entered: ev.ok.then_some(ev.user).flatten(),
        });
        *w.targets.entry(target).or_default() += 1;
        if !ev.ok {
            w.failures += 1;
        }
        let from = ev.at - i64::from(p.stuffing_window_secs) * 1_000_000;
        while let Some(a) = w.attempts.front() {
            if a.at > from {
                break;
            }
            let (tg, ok) = (a.target, a.ok);
            w.attempts.pop_front();
            if !ok {
                w.failures -= 1;
            }
            if let Some(n) = w.targets.get_mut(&tg) {
                *n -= 1;
                if *n == 0 {
                    w.targets.remove(&tg);
                }
            }
        }
        let total = w.attempts.len() as f64;
        let stuffing = w.targets.len() as u32 >= p.stuffing_accounts
            && f64::from(w.failures) >= p.stuffing_failure_ratio * total;
        if !stuffing {
            w.over = false;
            return;
        }
        let key = format!("credential_stuffing:{}", hex::encode(&ip[..16]));
        let summary = format!(
            "{} sign-in attempts on {} accounts from one address in {} min, {} failed",
            w.attempts.len(),
            w.targets.len(),
            p.stuffing_window_secs / 60,
            w.failures
        );
        if !w.over {
            w.over = true;
            if ev.fresh {
                // The first account the source got into, if any.
                let user = w.attempts.iter().find_map(|a| a.entered);
                out.push(Finding {
                    kind: IncidentKind::CredentialStuffing,
                    severity: Severity::Critical,
                    user,
                    source_event: Some(ev.id.clone()),
                    evidence: w
                        .attempts
                        .iter()
                        .rev()
                        .take(MAX_EVIDENCE)
                        .map(|a| activity(&a.id, "credential_stuffing"))
                        .collect(),
                    summary,
                    dedup_key: key,
                    at: ev.at,
                });
            }
        } else if ev.fresh && ev.ok {
            // The run got into an account after it was flagged: that account is compromised.
            out.push(Finding {
                kind: IncidentKind::CredentialStuffing,
                severity: Severity::Critical,
                user: ev.user,
                source_event: Some(ev.id.clone()),
                evidence: vec![activity(&ev.id, "credential_stuffing")],
                summary,
                dedup_key: key,
                at: ev.at,
            });
        }
    }
}

fn activity(id: &str, rule: &str) -> Evidence {
    Evidence {
        kind: "activity",
        ref_id: id.to_owned(),
        rule: rule.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: i64 = 60_000_000;

    fn ev(n: u32, user: Option<uuid::Uuid>, kind: Kind, at: i64) -> Event {
        Event {
            id: format!("e{n}"),
            user,
            kind,
            ok: true,
            at,
            ip: Some([1; 32]),
            target: None,
            country: Some("DE".into()),
            fresh: true,
        }
    }

    fn run(policy: &Policy, events: &[Event]) -> Vec<Finding> {
        let mut e = Engine::new(policy, HashMap::new());
        let mut out = Vec::new();
        for x in events {
            e.feed(x, &mut out);
        }
        out
    }

    #[test]
    fn comment_limit_fires_once_per_burst_at_the_61st_in_a_minute() {
        let p = Policy::default();
        let u = uuid::Uuid::new_v4();
        let at_limit: Vec<Event> = (0..60)
            .map(|i| ev(i, Some(u), Kind::Comment, i64::from(i) * 900_000))
            .collect();
        assert!(run(&p, &at_limit).is_empty());
        let mut over = at_limit.clone();
        over.push(ev(60, Some(u), Kind::Comment, 59 * 900_000));
        over.push(ev(61, Some(u), Kind::Comment, 59 * 900_000 + 1));
        let f = run(&p, &over);
        assert_eq!(f.len(), 1, "one finding per burst, not one per comment");
        assert_eq!(f[0].kind, IncidentKind::RateLimitExceeded);
        assert_eq!(f[0].severity, Severity::High);
        assert_eq!(f[0].evidence.len(), 61);
    }

    #[test]
    fn idle_windows_are_forgotten_and_active_ones_kept() {
        let p = Policy::default();
        let (quiet, busy) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
        let mut e = Engine::new(&p, HashMap::new());
        let mut out = Vec::new();
        let sign_in = |n: u32, user: Option<uuid::Uuid>, at: i64, ip: u8| Event {
            target: Some([n as u8; 32]),
            ip: Some([ip; 32]),
            ..ev(n, user, Kind::Login, at)
        };
        e.feed(&sign_in(0, Some(quiet), 0, 1), &mut out);
        let late = p.lookback_micros() + MIN;
        e.feed(&ev(1, Some(busy), Kind::Comment, late), &mut out);
        e.feed(&sign_in(2, Some(busy), late, 1), &mut out);
        e.feed(&sign_in(3, None, late, 2), &mut out);
        assert_eq!((e.rates.len(), e.users.len(), e.sources.len()), (3, 2, 2));
        e.forget_idle(late);
        assert_eq!(e.users.keys().collect::<Vec<_>>(), [&busy]);
        assert_eq!(
            e.rates.len(),
            2,
            "the busy account's comment and sign-in windows"
        );
        assert_eq!(e.sources.len(), 2, "both sources signed in at `late`");
        e.forget_idle(late + p.lookback_micros());
        assert_eq!((e.rates.len(), e.users.len(), e.sources.len()), (0, 0, 0));
        assert!(e.profiles.contains_key(&quiet), "habits are kept");
        assert!(out.is_empty());
    }

    #[test]
    fn events_seen_before_fill_windows_but_raise_nothing() {
        let p = Policy::default();
        let u = uuid::Uuid::new_v4();
        let mut events: Vec<Event> = (0..70)
            .map(|i| ev(i, Some(u), Kind::Comment, i64::from(i) * 100_000))
            .collect();
        for e in &mut events {
            e.fresh = false;
        }
        assert!(run(&p, &events).is_empty());
    }

    #[test]
    fn many_addresses_alone_are_one_indicator_and_do_not_flag() {
        let p = Policy::default();
        let u = uuid::Uuid::new_v4();
        let events: Vec<Event> = (0..8u8)
            .map(|i| Event {
                ip: Some([i; 32]),
                ..ev(u32::from(i), Some(u), Kind::Login, i64::from(i) * 3 * MIN)
            })
            .collect();
        assert!(run(&p, &events).is_empty());
    }

    #[test]
    fn new_country_plus_many_addresses_flags_the_account() {
        let p = Policy::default();
        let u = uuid::Uuid::new_v4();
        let mut profile = Profile::default();
        for h in 0..24 {
            profile.hours[h] = 2;
        }
        profile.total = 48;
        profile.countries.insert("DE".into(), 48);
        let mut engine = Engine::new(&p, HashMap::from([(u, profile)]));
        let mut out = Vec::new();
        for i in 0..7u8 {
            let mut e = ev(u32::from(i), Some(u), Kind::Comment, i64::from(i) * 2 * MIN);
            e.ip = Some([i; 32]);
            if i == 6 {
                e.country = Some("BR".into());
            }
            engine.feed(&e, &mut out);
        }
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].kind, IncidentKind::SuspiciousActivity);
        let rules: Vec<&str> = out[0].evidence.iter().map(|e| e.rule.as_str()).collect();
        assert!(rules.contains(&"multiple_ips") && rules.contains(&"geographic_anomaly"));
    }

    #[test]
    fn stuffing_needs_many_accounts_and_mostly_failures() {
        let p = Policy::default();
        let attempt = |i: u8, ok: bool| Event {
            target: Some([i; 32]),
            ok,
            user: None,
            ..ev(u32::from(i), None, Kind::Login, i64::from(i) * 10_000_000)
        };
        // Nine accounts: below the threshold.
        let nine: Vec<Event> = (0..9).map(|i| attempt(i, false)).collect();
        assert!(run(&p, &nine).is_empty());
        // Twelve accounts, half succeeding: a shared office address, not stuffing.
        let office: Vec<Event> = (0..12).map(|i| attempt(i, i % 2 == 0)).collect();
        assert!(run(&p, &office).is_empty());
        // Twelve accounts, all failing: stuffing, once.
        let run12: Vec<Event> = (0..12).map(|i| attempt(i, false)).collect();
        let f = run(&p, &run12);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].kind, IncidentKind::CredentialStuffing);
        assert_eq!(f[0].severity, Severity::Critical);
        assert_eq!(f[0].evidence.len(), 10);
    }

    #[test]
    fn the_shards_together_find_what_one_engine_finds() {
        let p = Policy::default();
        // Twenty accounts commenting in bursts (some over the limit) from several addresses,
        // and five sources trying many accounts (some stuffing), interleaved in time.
        let users: Vec<uuid::Uuid> = (1..=20u128).map(uuid::Uuid::from_u128).collect();
        let mut events = Vec::new();
        for i in 0..2_000u32 {
            let n = i as usize;
            let user = users[n % users.len()];
            let mut e = ev(i, Some(user), Kind::Comment, i64::from(i) * 20_000);
            e.ip = Some([(n % 7) as u8; 32]);
            events.push(e);
            if i % 3 == 0 {
                let source = (n % 5) as u8;
                events.push(Event {
                    id: format!("l{i}"),
                    kind: Kind::Login,
                    ok: source == 0,
                    ip: Some([100 + source; 32]),
                    target: Some([(n % 41) as u8; 32]),
                    ..ev(i, None, Kind::Login, i64::from(i) * 20_000 + 1)
                });
            }
        }
        let keys = |found: Vec<Finding>| {
            let mut k: Vec<(String, usize)> = found
                .into_iter()
                .map(|f| (f.dedup_key, f.evidence.len()))
                .collect();
            k.sort();
            k
        };
        let whole = keys(run(&p, &events));
        assert!(
            whole.iter().any(|(k, _)| k.starts_with("rate_limit")),
            "{whole:?}"
        );
        assert!(
            whole.iter().any(|(k, _)| k.starts_with("credential")),
            "{whole:?}"
        );
        for n in [2, 3, 7] {
            let count = ShardCount::new(n).unwrap();
            let mut found = Vec::new();
            for shard in Shard::all(count) {
                let mut e = Engine::for_shard(&p, HashMap::new(), shard);
                for x in &events {
                    e.feed(x, &mut found);
                }
            }
            assert_eq!(keys(found), whole, "{n} shards");
        }
    }
}
