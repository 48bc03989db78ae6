//! The detectors' engine alone (`monitor::detect::Engine::feed`): no database, no driver, the
//! records already in memory, so what it measures is the engine's own time per record.
//!
//! The records are shaped like `vigil bench --monitor`'s feed, from a fixed seed: 2,000
//! accounts, one day, 60% comment submissions, 30% sign-ins (3% failing), 10% profile changes,
//! each from a new address. Five passes, each with a fresh engine; prints the median.
//!
//! `cargo bench --bench detectors -- EVENTS` (default 1000000).

use std::time::Instant;

use rand::{Rng, SeedableRng};
use vigil::monitor::detect::{Engine, Event, Kind};
use vigil::monitor::policy::Policy;

const USERS: usize = 2_000;
const DAY_US: i64 = 86_400_000_000;
const PASSES: usize = 5;

fn records(n: usize) -> Vec<Event> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
    let users: Vec<(uuid::Uuid, [u8; 32])> = (0..USERS)
        .map(|_| (uuid::Uuid::from_bytes(rng.gen()), rng.gen()))
        .collect();
    let start = 1_780_000_000_000_000;
    let step = DAY_US / n.max(1) as i64;
    (0..n)
        .map(|i| {
            let (user, target) = users[rng.gen_range(0..USERS)];
            let r: f64 = rng.gen();
            let (kind, ok) = if r < 0.6 {
                (Kind::Comment, true)
            } else if r < 0.9 {
                (Kind::Login, !rng.gen_bool(0.03))
            } else {
                (Kind::ProfileChange, true)
            };
            Event {
                id: uuid::Uuid::from_bytes(rng.gen()).to_string(),
                user: Some(user),
                kind,
                ok,
                at: start + i as i64 * step,
                ip: Some(rng.gen()),
                target: (kind == Kind::Login).then_some(target),
                country: Some("GB".to_owned()),
                fresh: true,
            }
        })
        .collect()
}

fn main() {
    let n: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let events = records(n);
    let policy = Policy::default();
    let mut rates = Vec::with_capacity(PASSES);
    let mut found = 0;
    for _ in 0..PASSES {
        let mut engine = Engine::new(&policy, Default::default());
        let mut out = Vec::new();
        let t = Instant::now();
        for ev in &events {
            engine.feed(ev, &mut out);
        }
        rates.push(n as f64 / t.elapsed().as_secs_f64());
        found = out.len();
    }
    rates.sort_by(f64::total_cmp);
    println!(
        "detectors: {n} records, {found} findings, median of {PASSES}: {:.0} records/s \
         (slowest {:.0}, fastest {:.0})",
        rates[PASSES / 2],
        rates[0],
        rates[PASSES - 1]
    );
}
