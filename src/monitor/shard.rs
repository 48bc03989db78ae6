//! Shards of a detector run: the detectors split over several workers.
//!
//! With `[monitor] shards = N` the detectors' work is cut in `N` shards. Shard `K` owns the
//! accounts whose id hashes to `K` (their rate limits, behaviour and learned habits, and the
//! screening of their comments) and the source addresses whose blind index hashes to `K`
//! (credential stuffing). Each shard has its own checkpoint (`detectors/K/N` in
//! `monitor_checkpoints`) and its own job lock (`monitor/K`), so workers sharing a database
//! take different shards at once, and a dead worker's shard is free for the next.
//!
//! A shard reads only its part of the activity stream: the records of its accounts, the
//! sign-ins from its sources, and the records that name neither account nor source (shard 0).
//! The database picks them ([`Shard::owns_account`] and [`Shard::owns_source`] are computed in
//! SQL too), in the same time order a single run reads, and the detectors here check ownership
//! again; the windows of an account or a source are then exactly those one run would keep,
//! across page boundaries included, whatever `N` is. The incidents are recorded one shard at a
//! time (they share the audit chain).
//!
//! The shard of an account is its id's last two bytes (the last four hex digits of its text),
//! modulo `N`; the shard of a source is the first two bytes of its blind index, modulo `N`.
//! Ids are version 4 or 7 UUIDs whose last bytes are random, and blind indexes are keyed
//! hashes, so both spread evenly; and both are fixed by the data, not by a process's
//! randomised hasher, so every worker on every machine and version, and the database, puts an
//! account in the same shard.

use super::detect::Event;

pub use crate::config::shards::{BadShardCount, ShardCount};

/// One shard of a detector run: shard `index` of `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Shard {
    index: u32,
    count: ShardCount,
}

/// The prefix of the shards' checkpoint names; the checkpoint before shards existed had this
/// name alone.
pub(super) const CHECKPOINT: &str = "detectors";

impl Shard {
    /// Every shard of `count`, in order.
    pub fn all(count: ShardCount) -> impl Iterator<Item = Shard> {
        (0..count.get()).map(move |index| Shard { index, count })
    }

    /// Shard `index` of `count`, if `index < count`.
    pub fn new(index: u32, count: ShardCount) -> Option<Self> {
        (index < count.get()).then_some(Self { index, count })
    }

    /// Its number, from 0.
    pub fn index(self) -> u32 {
        self.index
    }

    /// How many shards there are.
    pub fn count(self) -> ShardCount {
        self.count
    }

    /// The name of its checkpoint: `detectors/K/N`.
    pub fn checkpoint(self) -> String {
        format!("{CHECKPOINT}/{}/{}", self.index, self.count)
    }

    /// Parses a checkpoint name made by [`Shard::checkpoint`].
    pub fn parse_checkpoint(name: &str) -> Option<Self> {
        let rest = name.strip_prefix(CHECKPOINT)?.strip_prefix('/')?;
        let (k, n) = rest.split_once('/')?;
        let count = ShardCount::new(n.parse().ok()?).ok()?;
        Self::new(k.parse().ok()?, count)
    }

    /// The name of its job lock: `monitor/K` (the same lock whatever the count, so a worker
    /// configured with another count cannot run the same shard number beside it).
    pub fn job(self) -> String {
        job_of(self.index)
    }

    /// Whether the account's detectors are this shard's.
    pub fn owns_account(self, user: &uuid::Uuid) -> bool {
        let b = user.as_bytes();
        self.owns(u16::from_be_bytes([b[14], b[15]]))
    }

    /// Whether the source address (by its blind index) is this shard's.
    pub fn owns_source(self, ip: &[u8; 32]) -> bool {
        self.owns(u16::from_be_bytes([ip[0], ip[1]]))
    }

    fn owns(self, key: u16) -> bool {
        u32::from(key) % self.count.get() == self.index
    }

    /// Whether the record itself is this shard's: the shard of its account, or of its source
    /// when it names none (shard 0 when it names neither). A comment is screened, and a new
    /// record counted, by exactly one shard.
    pub fn owns_record(self, ev: &Event) -> bool {
        match (&ev.user, &ev.ip) {
            (Some(user), _) => self.owns_account(user),
            (None, Some(ip)) => self.owns_source(ip),
            (None, None) => self.index == 0,
        }
    }
}

/// The job lock of shard number `index` (of any count).
pub(super) fn job_of(index: u32) -> String {
    format!("{}/{index}", super::JOB)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_from_1_to_64_only() {
        assert!(ShardCount::new(0).is_err());
        assert!(ShardCount::new(65).is_err());
        assert_eq!(ShardCount::new(64).unwrap().get(), 64);
        assert_eq!(ShardCount::default(), ShardCount::ONE);
        assert_eq!(
            BadShardCount(0).to_string(),
            "expected a number of shards from 1 to 64 (`[monitor] shards`), not 0"
        );
    }

    #[test]
    fn checkpoint_names_round_trip_and_refuse_the_rest() {
        let four = ShardCount::new(4).unwrap();
        for s in Shard::all(four) {
            assert_eq!(Shard::parse_checkpoint(&s.checkpoint()), Some(s));
        }
        assert_eq!(
            Shard::all(four).nth(2).unwrap().checkpoint(),
            "detectors/2/4"
        );
        assert_eq!(Shard::all(four).nth(2).unwrap().job(), "monitor/2");
        for bad in [
            "detectors",
            "detectors/4/4",
            "detectors/0/0",
            "detectors/0/65",
            "detectors/x/4",
            "detectors/1",
            "other/0/1",
        ] {
            assert_eq!(Shard::parse_checkpoint(bad), None, "{bad}");
        }
    }

    #[test]
    fn every_account_and_source_has_exactly_one_stable_shard() {
        let five = ShardCount::new(5).unwrap();
        let mut per_shard = [0u32; 5];
        for i in 0..1_000u128 {
            let user = uuid::Uuid::from_u128(i * 0x9e37_79b9_7f4a_7c15);
            let owners: Vec<Shard> = Shard::all(five).filter(|s| s.owns_account(&user)).collect();
            assert_eq!(owners.len(), 1);
            per_shard[owners[0].index() as usize] += 1;
            let ip = [i as u8; 32];
            assert_eq!(Shard::all(five).filter(|s| s.owns_source(&ip)).count(), 1);
        }
        assert!(
            per_shard.iter().all(|n| (150..250).contains(n)),
            "{per_shard:?}"
        );
        // Fixed by the data, not by the process or the platform: the last four hex digits of
        // the id (0x2a = 42, shard 2 of 5), the first two bytes of the blind index (0x0707 =
        // 1799, shard 4 of 5).
        let user = uuid::Uuid::from_u128(42);
        let owner = |s: &Shard| s.owns_account(&user);
        assert_eq!(Shard::all(five).find(owner).map(Shard::index), Some(2));
        let source = |s: &Shard| s.owns_source(&[7; 32]);
        assert_eq!(Shard::all(five).find(source).map(Shard::index), Some(4));
        assert!(Shard::all(ShardCount::ONE).all(|s| s.owns_account(&user)));
    }
}
