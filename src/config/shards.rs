//! The detector run's shard count (`[monitor] shards`), a setting here so that the
//! configuration needs nothing from the monitor; what a shard owns is said in the monitor's `shard` module.

use std::fmt;

use serde::{Deserialize, Serialize};

/// How many shards the detector run is split into: 1 to [`ShardCount::MAX`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "u32", into = "u32")]
pub struct ShardCount(u32);

/// A shard count outside 1 to [`ShardCount::MAX`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected a number of shards from 1 to 64 (`[monitor] shards`), not {0}")]
pub struct BadShardCount(pub u32);

impl ShardCount {
    /// One shard: the whole run on one worker (the default).
    pub const ONE: ShardCount = ShardCount(1);
    /// The most shards a run may be split into.
    pub const MAX: u32 = 64;

    /// A shard count, if `n` is from 1 to [`ShardCount::MAX`].
    pub fn new(n: u32) -> Result<Self, BadShardCount> {
        if (1..=Self::MAX).contains(&n) {
            Ok(Self(n))
        } else {
            Err(BadShardCount(n))
        }
    }

    /// The number of shards.
    pub fn get(self) -> u32 {
        self.0
    }
}

impl Default for ShardCount {
    fn default() -> Self {
        Self::ONE
    }
}

impl TryFrom<u32> for ShardCount {
    type Error = BadShardCount;
    fn try_from(n: u32) -> Result<Self, Self::Error> {
        Self::new(n)
    }
}

impl From<ShardCount> for u32 {
    fn from(n: ShardCount) -> u32 {
        n.0
    }
}

impl fmt::Display for ShardCount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}
