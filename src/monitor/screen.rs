//! Content and URL screening: the threat patterns named in the design note Vigil grew out of
//! (`phishing_attempt`, `spam_content`, `malware_indicators`, `social_engineering`, each
//! case-insensitive and matched anywhere in a comment) plus rules from the configuration,
//! compiled once into one `RegexSet`; and the URLs in a comment, each judged clean, suspicious
//! or malicious by a local blocklist and a few heuristics, with the reasons.
//!
//! Verdicts: a blocklisted host or URL is `malicious`; otherwise two or more heuristic reasons
//! make it `malicious`, one makes it `suspicious`, none leaves it `clean`.

use std::collections::HashSet;
use std::io::{BufRead, Write};
use std::net::IpAddr;

use regex::{Regex, RegexSet};
use serde::Serialize;

use super::lines::{LineFault, Lines};

/// The four patterns of the design note, by name, as written there.
pub const BUILT_IN: [(&str, &str); 4] = [
    (
        "phishing_attempt",
        r"(click here|verify account|suspended|urgent action)",
    ),
    (
        "spam_content",
        r"(buy now|limited time|act fast|guaranteed)",
    ),
    (
        "malware_indicators",
        r"(download.*exe|install.*now|free.*software)",
    ),
    (
        "social_engineering",
        r"(send me|give me|share your|tell me your)",
    ),
];

/// Hosts of well-known link shorteners: they hide where a link goes.
const SHORTENERS: &[&str] = &[
    "bit.ly",
    "tinyurl.com",
    "t.co",
    "goo.gl",
    "ow.ly",
    "is.gd",
    "buff.ly",
    "rebrand.ly",
    "cutt.ly",
    "shorturl.at",
    "tiny.cc",
    "rb.gy",
];

/// More labels than this in a host is suspicious (`login.account.secure.bank.example.com`).
const MAX_LABELS: usize = 4;

/// How a URL was judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Nothing against it.
    Clean,
    /// One heuristic fired.
    Suspicious,
    /// Blocklisted, or several heuristics fired.
    Malicious,
}

/// A URL found in a comment, with its verdict and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UrlVerdict {
    /// The URL as written.
    pub url: String,
    /// The verdict.
    pub verdict: Verdict,
    /// Why: `blocklisted`, `ip_literal_host`, `punycode_host`, `credentials_in_url`,
    /// `shortener`, `many_subdomains`, `not_parseable`.
    pub reasons: Vec<&'static str>,
}

/// What screening found in one comment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// The names of the rules that matched, built-in ones first.
    pub categories: Vec<String>,
    /// The URLs in it.
    pub urls: Vec<UrlVerdict>,
}

/// Why a screener could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ScreenError {
    /// A configured rule's name is empty, reused, or one of the built-in names.
    #[error("rule name {0:?} is empty, repeated or a built-in rule's name")]
    RuleName(String),
    /// A configured rule's pattern does not compile.
    #[error("rule {name:?}: {message}")]
    Pattern {
        /// The rule.
        name: String,
        /// The regex compiler's message.
        message: String,
    },
    /// A blocklist file could not be read.
    #[error("cannot read the blocklist {path}: {source}")]
    Blocklist {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// Reading or writing failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// A compiled screener: the rules in one `RegexSet`, the URL finder, and the blocklist.
pub struct Screener {
    names: Vec<String>,
    rules: RegexSet,
    urls: Regex,
    blocked_hosts: HashSet<String>,
    blocked_urls: HashSet<String>,
    max_line_bytes: usize,
}

impl Screener {
    /// A screener with the configured rules and blocklist files, plus `more_blocklists`.
    pub fn from_config(
        config: &crate::config::MonitorConfig,
        more_blocklists: &[std::path::PathBuf],
    ) -> Result<Self, ScreenError> {
        let mut entries = Vec::new();
        for path in config.blocklist.iter().chain(more_blocklists) {
            let text = std::fs::read_to_string(path).map_err(|source| ScreenError::Blocklist {
                path: path.display().to_string(),
                source,
            })?;
            entries.extend(text.lines().map(str::to_owned));
        }
        let rules: Vec<(String, String)> = config
            .rules
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let mut screener = Self::new(&rules, &entries)?;
        screener.max_line_bytes = config.max_line_bytes;
        Ok(screener)
    }

    /// The longest line [`Screener::screen_lines`] takes (`monitor.max_line_bytes`).
    pub fn max_line_bytes(&self) -> usize {
        self.max_line_bytes
    }

    /// The built-in rules plus `extra` (name, pattern), all matched case-insensitively, and a
    /// blocklist of hosts (a host blocks its subdomains too) and full URLs.
    pub fn new(extra: &[(String, String)], blocklist: &[String]) -> Result<Self, ScreenError> {
        let mut names: Vec<String> = BUILT_IN.iter().map(|(n, _)| (*n).to_owned()).collect();
        let mut patterns: Vec<String> = BUILT_IN.iter().map(|(_, p)| format!("(?i){p}")).collect();
        for (name, pattern) in extra {
            let name = name.trim();
            if name.is_empty() || names.iter().any(|n| n == name) {
                return Err(ScreenError::RuleName(name.to_owned()));
            }
            Regex::new(pattern).map_err(|e| ScreenError::Pattern {
                name: name.to_owned(),
                message: e.to_string(),
            })?;
            names.push(name.to_owned());
            patterns.push(format!("(?i){pattern}"));
        }
        let rules = RegexSet::new(&patterns).map_err(|e| ScreenError::Pattern {
            name: "(set)".into(),
            message: e.to_string(),
        })?;
        let urls = Regex::new(r#"(?i)\b(?:https?://|www\.)[^\s<>"'`]+"#).map_err(|e| {
            ScreenError::Pattern {
                name: "(urls)".into(),
                message: e.to_string(),
            }
        })?;
        let mut blocked_hosts = HashSet::new();
        let mut blocked_urls = HashSet::new();
        for entry in blocklist {
            let e = entry.trim();
            if e.is_empty() || e.starts_with('#') {
                continue;
            }
            if e.contains("://") {
                blocked_urls.insert(normalise_url(e));
            } else {
                blocked_hosts.insert(e.trim_end_matches('.').to_ascii_lowercase());
            }
        }
        Ok(Self {
            names,
            rules,
            urls,
            blocked_hosts,
            blocked_urls,
            max_line_bytes: super::lines::DEFAULT_MAX_LINE_BYTES,
        })
    }

    /// The rule names, in report order.
    pub fn rule_names(&self) -> &[String] {
        &self.names
    }

    /// Screens one comment.
    pub fn screen(&self, text: &str) -> Finding {
        let categories = self
            .rules
            .matches(text)
            .iter()
            .map(|i| self.names[i].clone())
            .collect();
        // Most comments hold no link: look for the cheap markers before running the finder.
        let maybe_url = memchr::memmem::find(text.as_bytes(), b"://").is_some()
            || text.contains("www.")
            || text.contains("WWW.");
        let urls = if maybe_url {
            self.urls
                .find_iter(text)
                .map(|m| self.judge(trim_trailing(m.as_str())))
                .collect()
        } else {
            Vec::new()
        };
        Finding { categories, urls }
    }

    /// Judges one URL.
    pub fn judge(&self, written: &str) -> UrlVerdict {
        let with_scheme = if written.to_ascii_lowercase().starts_with("www.") {
            format!("http://{written}")
        } else {
            written.to_owned()
        };
        let mut reasons = Vec::new();
        match url::Url::parse(&with_scheme) {
            Err(_) => reasons.push("not_parseable"),
            Ok(u) => {
                let host = u.host_str().unwrap_or_default().to_ascii_lowercase();
                let bare = host.trim_start_matches('[').trim_end_matches(']');
                if self.blocked_urls.contains(&normalise_url(&with_scheme))
                    || self.host_blocked(bare)
                {
                    reasons.push("blocklisted");
                }
                if bare.parse::<IpAddr>().is_ok() {
                    reasons.push("ip_literal_host");
                } else {
                    if bare.split('.').any(|l| l.starts_with("xn--")) {
                        reasons.push("punycode_host");
                    }
                    if SHORTENERS.contains(&bare.trim_start_matches("www.")) {
                        reasons.push("shortener");
                    }
                    if bare.split('.').count() > MAX_LABELS {
                        reasons.push("many_subdomains");
                    }
                }
                if !u.username().is_empty() || u.password().is_some() {
                    reasons.push("credentials_in_url");
                }
            }
        }
        let verdict = if reasons.contains(&"blocklisted") || reasons.len() >= 2 {
            Verdict::Malicious
        } else if reasons.is_empty() {
            Verdict::Clean
        } else {
            Verdict::Suspicious
        };
        UrlVerdict {
            url: written.to_owned(),
            verdict,
            reasons,
        }
    }

    fn host_blocked(&self, host: &str) -> bool {
        let mut h = host;
        loop {
            if self.blocked_hosts.contains(h) {
                return true;
            }
            match h.split_once('.') {
                Some((_, rest)) => h = rest,
                None => return false,
            }
        }
    }

    /// Screens `input` line by line (one comment per line) into `output` as JSON lines:
    /// `{"line": n, "categories": [...], "urls": [...]}`, or `{"line": n, "error": "..."}` for
    /// a line that is longer than [`Screener::max_line_bytes`] (skipped as it streams past,
    /// never held whole), not UTF-8, or holds a NUL byte. Returns the number of lines. Work is
    /// spread over the available cores in batches bounded in lines and bytes; the output keeps
    /// the input's order.
    pub fn screen_lines(
        &self,
        input: &mut dyn BufRead,
        output: &mut dyn Write,
    ) -> Result<u64, ScreenError> {
        const BATCH: usize = 8_192;
        const BATCH_BYTES: usize = 4 << 20;
        let workers = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
            .clamp(1, 8);
        let mut n: u64 = 0;
        let mut batch: Vec<Result<String, LineFault>> = Vec::with_capacity(BATCH * workers);
        let mut batch_bytes = 0usize;
        let mut lines = Lines::new(input, self.max_line_bytes);
        loop {
            let read = lines.next_line()?.map(|(_, l)| l.map(str::to_owned));
            let end = read.is_none();
            if let Some(line) = read {
                batch_bytes += line.as_ref().map_or(0, String::len);
                batch.push(line);
            }
            if batch.len() == BATCH * workers
                || batch_bytes >= BATCH_BYTES * workers
                || (end && !batch.is_empty())
            {
                let first = n + 1;
                let per = batch.len().div_ceil(workers).max(1);
                let chunks: Vec<&[Result<String, LineFault>]> = batch.chunks(per).collect();
                let rendered: Vec<Vec<u8>> = std::thread::scope(|s| {
                    let handles: Vec<_> = chunks
                        .iter()
                        .enumerate()
                        .map(|(c, lines)| {
                            let start = first + (c * per) as u64;
                            s.spawn(move || self.render(start, lines))
                        })
                        .collect();
                    handles
                        .into_iter()
                        .map(|h| h.join().unwrap_or_default())
                        .collect()
                });
                for r in &rendered {
                    output.write_all(r)?;
                }
                n += batch.len() as u64;
                batch.clear();
                batch_bytes = 0;
            }
            if end {
                break;
            }
        }
        output.flush()?;
        Ok(n)
    }

    fn render(&self, first: u64, lines: &[Result<String, LineFault>]) -> Vec<u8> {
        let mut out = Vec::with_capacity(lines.len() * 48);
        for (i, line) in lines.iter().enumerate() {
            let line_no = first + i as u64;
            // Serialising these plain structs into a Vec cannot fail.
            let _ = match line {
                Ok(text) => {
                    let f = self.screen(text);
                    serde_json::to_writer(
                        &mut out,
                        &Row {
                            line: line_no,
                            categories: &f.categories,
                            urls: &f.urls,
                        },
                    )
                }
                Err(fault) => serde_json::to_writer(
                    &mut out,
                    &serde_json::json!({ "line": line_no, "error": fault.to_string() }),
                ),
            };
            out.push(b'\n');
        }
        out
    }
}

#[derive(Serialize)]
struct Row<'a> {
    line: u64,
    categories: &'a [String],
    urls: &'a [UrlVerdict],
}

/// Drops the punctuation a sentence puts after a link.
fn trim_trailing(s: &str) -> &str {
    s.trim_end_matches(['.', ',', ';', ':', '!', '?', ')', ']', '}'])
}

fn normalise_url(s: &str) -> String {
    s.trim().trim_end_matches('/').to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn screener() -> Screener {
        Screener::new(
            &[("crypto_scam".into(), r"double your (btc|bitcoin)".into())],
            &[
                "evil.example".into(),
                "https://good.example/bad-page".into(),
            ],
        )
        .unwrap()
    }

    #[test]
    fn the_four_patterns_match_case_insensitively_anywhere() {
        let s = screener();
        let cats = |t: &str| s.screen(t).categories;
        assert_eq!(cats("Please CLICK HERE now"), vec!["phishing_attempt"]);
        assert_eq!(cats("limited time offer"), vec!["spam_content"]);
        assert_eq!(cats("download the patch.exe"), vec!["malware_indicators"]);
        assert_eq!(cats("tell me your password"), vec!["social_engineering"]);
        assert_eq!(cats("Double your BTC today"), vec!["crypto_scam"]);
        assert_eq!(
            cats("urgent action: buy now"),
            vec!["phishing_attempt", "spam_content"]
        );
        assert!(cats("what a goal!").is_empty());
    }

    #[test]
    fn urls_get_verdicts_with_reasons() {
        let s = screener();
        let v = |u: &str| {
            let j = s.judge(u);
            (j.verdict, j.reasons)
        };
        assert_eq!(v("https://news.example/match"), (Verdict::Clean, vec![]));
        assert_eq!(
            v("http://login.evil.example/x"),
            (Verdict::Malicious, vec!["blocklisted"])
        );
        assert_eq!(
            v("https://good.example/bad-page/"),
            (Verdict::Malicious, vec!["blocklisted"])
        );
        assert_eq!(v("https://good.example/fine"), (Verdict::Clean, vec![]));
        assert_eq!(
            v("http://192.0.2.7/login"),
            (Verdict::Suspicious, vec!["ip_literal_host"])
        );
        assert_eq!(
            v("http://[2001:db8::1]/"),
            (Verdict::Suspicious, vec!["ip_literal_host"])
        );
        assert_eq!(
            v("https://xn--pypal-4ve.example/"),
            (Verdict::Suspicious, vec!["punycode_host"])
        );
        // An IDN written in Unicode is converted to punycode by the parser.
        assert_eq!(
            v("https://pаypal.example/").1,
            vec!["punycode_host"],
            "Cyrillic a"
        );
        assert_eq!(
            v("https://bit.ly/3xyz"),
            (Verdict::Suspicious, vec!["shortener"])
        );
        assert_eq!(
            v("https://a.b.c.d.example.com/"),
            (Verdict::Suspicious, vec!["many_subdomains"])
        );
        assert_eq!(
            v("https://user:pw@192.0.2.1/"),
            (
                Verdict::Malicious,
                vec!["ip_literal_host", "credentials_in_url"]
            )
        );
    }

    #[test]
    fn urls_are_found_in_text_without_trailing_punctuation() {
        let s = screener();
        let f = s.screen("see www.evil.example/x, or (https://bit.ly/abc).");
        let urls: Vec<_> = f.urls.iter().map(|u| u.url.as_str()).collect();
        assert_eq!(urls, vec!["www.evil.example/x", "https://bit.ly/abc"]);
        assert_eq!(f.urls[0].verdict, Verdict::Malicious);
    }

    #[test]
    fn bad_rules_are_refused() {
        assert!(matches!(
            Screener::new(&[("spam_content".into(), "x".into())], &[]),
            Err(ScreenError::RuleName(_))
        ));
        assert!(matches!(
            Screener::new(&[("broken".into(), "(unclosed".into())], &[]),
            Err(ScreenError::Pattern { .. })
        ));
    }

    #[test]
    fn lines_become_json_lines_in_order() {
        let s = screener();
        let mut input: Vec<u8> = Vec::new();
        for i in 0..20_000 {
            if i % 1000 == 7 {
                input.extend_from_slice(b"click here http://192.0.2.1/\r\n");
            } else {
                input.extend_from_slice(format!("comment {i}\n").as_bytes());
            }
        }
        input.extend_from_slice(b"not utf-8 \xff buy now");
        let mut out = Vec::new();
        let n = s
            .screen_lines(&mut std::io::Cursor::new(input), &mut out)
            .unwrap();
        assert_eq!(n, 20_001);
        let rows: Vec<serde_json::Value> = out
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| serde_json::from_slice(l).unwrap())
            .collect();
        assert_eq!(rows.len(), 20_001);
        for (i, r) in rows.iter().enumerate() {
            assert_eq!(r["line"], i as u64 + 1);
        }
        assert_eq!(
            rows[7]["categories"],
            serde_json::json!(["phishing_attempt"])
        );
        assert_eq!(rows[7]["urls"][0]["verdict"], "suspicious");
        assert_eq!(rows[8]["categories"], serde_json::json!([]));
        assert_eq!(rows[20_000]["error"], "the line is not UTF-8 text");
    }
}
