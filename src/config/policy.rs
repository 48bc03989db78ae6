//! Every detector threshold and automated response, in one struct read from `[monitor.policy]`
//! in the configuration. The defaults are the numbers of the design note Vigil grew out of.

use serde::{Deserialize, Serialize};

/// A count allowed within a window of seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    /// Most events allowed in the window.
    pub count: u32,
    /// The window, in seconds.
    pub window_secs: u32,
}

impl RateLimit {
    /// The window in microseconds.
    pub fn window_micros(self) -> i64 {
        i64::from(self.window_secs) * 1_000_000
    }
}

/// The detectors' thresholds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Policy {
    /// Comment submissions per user (60 a minute).
    pub comments: RateLimit,
    /// Sign-in attempts per account (5 in 5 minutes).
    pub logins: RateLimit,
    /// Reactions per user (100 a minute).
    pub reactions: RateLimit,
    /// More distinct source addresses than this for one account within `ip_window_secs`.
    pub max_ips: u32,
    /// The window for `max_ips` (30 minutes).
    pub ip_window_secs: u32,
    /// More actions than this by one account within `rapid_window_secs`.
    pub max_rapid_actions: u32,
    /// The window for `max_rapid_actions` (10 seconds).
    pub rapid_window_secs: u32,
    /// Successful actions an account needs before its usual hours and countries count.
    pub min_history: u32,
    /// An hour of day (with its two neighbours) holding less than this share of an account's
    /// history is unusual for it.
    pub unusual_hour_share: f64,
    /// Faster than this between two countries' centres is impossible travel (km/h).
    pub max_travel_kmh: f64,
    /// Indicators that together flag an account (the design note's two).
    pub min_indicators: u32,
    /// Credential stuffing: at least this many distinct accounts tried from one source ...
    pub stuffing_accounts: u32,
    /// ... with at least this share of failures ...
    pub stuffing_failure_ratio: f64,
    /// ... within this window (10 minutes).
    pub stuffing_window_secs: u32,
    /// The automated responses.
    pub responses: Responses,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            comments: RateLimit {
                count: 60,
                window_secs: 60,
            },
            logins: RateLimit {
                count: 5,
                window_secs: 300,
            },
            reactions: RateLimit {
                count: 100,
                window_secs: 60,
            },
            max_ips: 5,
            ip_window_secs: 30 * 60,
            max_rapid_actions: 20,
            rapid_window_secs: 10,
            min_history: 10,
            unusual_hour_share: 0.01,
            max_travel_kmh: 1_000.0,
            min_indicators: 2,
            stuffing_accounts: 10,
            stuffing_failure_ratio: 0.8,
            stuffing_window_secs: 10 * 60,
            responses: Responses::default(),
        }
    }
}

impl Policy {
    /// The longest window any detector looks back over, in microseconds.
    pub fn lookback_micros(&self) -> i64 {
        [
            self.comments.window_secs,
            self.logins.window_secs,
            self.reactions.window_secs,
            self.ip_window_secs,
            self.rapid_window_secs,
            self.stuffing_window_secs,
        ]
        .into_iter()
        .max()
        .map(|s| i64::from(s) * 1_000_000)
        .unwrap_or(0)
    }

    /// Checks the numbers make sense; names the first that does not.
    pub fn validate(&self) -> Result<(), String> {
        let limits = [
            ("comments", self.comments),
            ("logins", self.logins),
            ("reactions", self.reactions),
        ];
        for (name, l) in limits {
            if l.count == 0 || l.window_secs == 0 || l.window_secs > 86_400 {
                return Err(format!(
                    "monitor.policy.{name}: count must be positive and the window 1 s to 1 day"
                ));
            }
        }
        let windows = [
            ("ip_window_secs", self.ip_window_secs),
            ("rapid_window_secs", self.rapid_window_secs),
            ("stuffing_window_secs", self.stuffing_window_secs),
        ];
        for (name, w) in windows {
            if w == 0 || w > 86_400 {
                return Err(format!(
                    "monitor.policy.{name}: must be from 1 to 86400 seconds"
                ));
            }
        }
        if !(0.0..=1.0).contains(&self.unusual_hour_share) {
            return Err("monitor.policy.unusual_hour_share: must be from 0 to 1".into());
        }
        if !(0.0..=1.0).contains(&self.stuffing_failure_ratio) {
            return Err("monitor.policy.stuffing_failure_ratio: must be from 0 to 1".into());
        }
        if self.max_travel_kmh <= 0.0 {
            return Err("monitor.policy.max_travel_kmh: must be positive".into());
        }
        if self.min_indicators == 0 || self.stuffing_accounts < 2 {
            return Err(
                "monitor.policy: min_indicators must be positive and stuffing_accounts at least 2"
                    .into(),
            );
        }
        let r = &self.responses;
        if r.ip_block_hours == 0 || r.restriction_hours == 0 {
            return Err("monitor.policy.responses: durations must be positive".into());
        }
        Ok(())
    }
}

/// What Vigil does on its own when an incident opens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Responses {
    /// Critical: suspend the account, end its sessions and tokens, block the source address,
    /// queue a notification to the account holder.
    pub critical: bool,
    /// High: require step-up authentication at next use, restrict commenting and uploads,
    /// put the incident in manual review.
    pub high: bool,
    /// How long a critical incident blocks its source address (24 h).
    pub ip_block_hours: u32,
    /// How long a high incident restricts the account (1 h).
    pub restriction_hours: u32,
}

impl Default for Responses {
    fn default() -> Self {
        Self {
            critical: true,
            high: true,
            ip_block_hours: 24,
            restriction_hours: 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_design_notes_numbers_and_valid() {
        let p = Policy::default();
        assert_eq!((p.comments.count, p.comments.window_secs), (60, 60));
        assert_eq!((p.logins.count, p.logins.window_secs), (5, 300));
        assert_eq!((p.reactions.count, p.reactions.window_secs), (100, 60));
        assert_eq!((p.max_ips, p.ip_window_secs), (5, 1800));
        assert_eq!((p.max_rapid_actions, p.rapid_window_secs), (20, 10));
        assert_eq!(p.min_indicators, 2);
        assert_eq!(p.lookback_micros(), 1_800_000_000);
        p.validate().unwrap();
    }

    #[test]
    fn partial_config_keeps_the_other_defaults_and_bad_numbers_are_named() {
        let p: Policy =
            toml::from_str("max_ips = 8\n[comments]\ncount = 30\nwindow_secs = 60\n").unwrap();
        assert_eq!(p.max_ips, 8);
        assert_eq!(p.comments.count, 30);
        assert_eq!(p.logins.count, 5);
        let bad = Policy {
            unusual_hour_share: 2.0,
            ..Policy::default()
        };
        assert!(bad.validate().unwrap_err().contains("unusual_hour_share"));
        assert!(toml::from_str::<Policy>("max_ipz = 3").is_err());
    }
}
