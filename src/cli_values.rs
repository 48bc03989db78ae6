//! The command line's value parsers: each turns one argument into a checked value or a sentence
//! saying what was expected, never panics and never wraps. `vigil` uses them as clap value
//! parsers, so a bad value is a usage error (exit 2) before anything is opened or changed.

use crate::store::Timestamp;

/// The longest age `--since` takes: a hundred years, in days.
pub const MAX_SINCE_DAYS: i64 = 36_525;

const SINCE_EXPECTED: &str =
    "expected an RFC 3339 time, a date (YYYY-MM-DD), or an age like 30m, 24h or 7d (at most \
     36525d)";

/// `--since`: an RFC 3339 time, a date (midnight UTC), or an age (`30m`, `24h`, `7d`) before
/// `now`, of at most [`MAX_SINCE_DAYS`] days.
pub fn since_at(s: &str, now: Timestamp) -> Result<Timestamp, String> {
    let s = s.trim();
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Ok(Timestamp::from(t.with_timezone(&chrono::Utc)));
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Ok(Timestamp::from(
            d.and_time(chrono::NaiveTime::MIN).and_utc(),
        ));
    }
    let unit_micros: i64 = match s.chars().last() {
        Some('m') => 60_000_000,
        Some('h') => 3_600_000_000,
        Some('d') => 86_400_000_000,
        _ => return Err(SINCE_EXPECTED.into()),
    };
    let digits = &s[..s.len() - 1];
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(SINCE_EXPECTED.into());
    }
    let age = digits
        .parse::<i64>()
        .ok()
        .and_then(|n| n.checked_mul(unit_micros))
        .filter(|&micros| micros <= MAX_SINCE_DAYS * 86_400_000_000)
        .ok_or_else(|| SINCE_EXPECTED.to_owned())?;
    Ok(Timestamp::from_micros(now.micros().saturating_sub(age)))
}

/// `--since` against the clock.
pub fn since(s: &str) -> Result<Timestamp, String> {
    since_at(s, Timestamp::now())
}

/// A calendar date, `YYYY-MM-DD`.
pub fn date(s: &str) -> Result<chrono::NaiveDate, String> {
    chrono::NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d")
        .map_err(|_| "expected a date such as 2026-11-23 (YYYY-MM-DD)".to_owned())
}

/// An id (a UUID), returned in its canonical form.
pub fn id(s: &str) -> Result<String, String> {
    uuid(s).map(|u| u.to_string())
}

/// An id (a UUID).
pub fn uuid(s: &str) -> Result<uuid::Uuid, String> {
    uuid::Uuid::parse_str(s.trim())
        .map_err(|_| "expected an id (a UUID such as 0193a0c4-...)".to_owned())
}

/// An IP address, or `-` for one line of standard input; returned in canonical form.
pub fn ip_or_stdin(s: &str) -> Result<String, String> {
    match s.trim() {
        "-" => Ok("-".into()),
        s => s
            .parse::<std::net::IpAddr>()
            .map(|ip| ip.to_string())
            .map_err(|_| "expected an IP address, or - to read one from standard input".into()),
    }
}

/// A block's id or an IP address, or `-` for one line of standard input.
pub fn block_or_ip_or_stdin(s: &str) -> Result<String, String> {
    id(s).or_else(|_| ip_or_stdin(s)).map_err(|_| {
        "expected a block id, an IP address, or - to read one from standard input".into()
    })
}

/// A chart period in days: 7, 30 or 90.
pub fn chart_days(s: &str) -> Result<u32, String> {
    match s.trim() {
        "7" => Ok(7),
        "30" => Ok(30),
        "90" => Ok(90),
        _ => Err("expected 7, 30 or 90".into()),
    }
}

/// Hours for a block or a suspension: 1 to 8,760 (a year).
pub fn hours(s: &str) -> Result<u32, String> {
    s.trim()
        .parse::<u32>()
        .ok()
        .filter(|h| (1..=8_760).contains(h))
        .ok_or_else(|| "expected a whole number of hours from 1 to 8760".into())
}

/// One value of a fixed set, such as a request type or a status: `parse` decides, `expected`
/// lists the values for the usage error.
pub fn one_of<T: 'static>(
    parse: fn(&str) -> Option<T>,
    expected: &'static str,
) -> impl Fn(&str) -> Result<T, String> + Clone + Send + Sync + 'static {
    move |s: &str| parse(s.trim()).ok_or_else(|| format!("expected {expected}"))
}

/// A day that is today or earlier (`YYYY-MM-DD`), such as the day a request was received.
pub fn past_date(s: &str) -> Result<chrono::NaiveDate, String> {
    let day = date(s)?;
    if day > chrono::Utc::now().date_naive() {
        return Err("the date is in the future".into());
    }
    Ok(day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_takes_times_dates_and_ages() {
        let now = Timestamp::from_micros(1_800_000_000_000_000);
        assert_eq!(
            since_at("7d", now).unwrap().micros(),
            now.micros() - 7 * 86_400_000_000
        );
        assert_eq!(
            since_at("90m", now).unwrap().micros(),
            now.micros() - 90 * 60_000_000
        );
        assert_eq!(
            since_at("2026-11-23", now).unwrap(),
            since_at("2026-11-23T00:00:00Z", now).unwrap()
        );
        assert!(since_at("36525d", now).is_ok());
    }

    #[test]
    fn since_refuses_what_it_cannot_take_without_panicking_or_wrapping() {
        let now = Timestamp::now();
        for bad in [
            "",
            "5é",
            "é",
            "d",
            "-5d",
            "+5d",
            "5 d",
            "5w",
            "36526d",
            "99999999999999d",
            "9223372036854775807m",
            "2026-13-01",
            "yesterday",
            "٣d",
        ] {
            assert_eq!(
                since_at(bad, now),
                Err(SINCE_EXPECTED.to_owned()),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn the_other_values_are_checked() {
        assert!(date("2026-02-30").is_err());
        assert!(id("not-a-uuid").is_err());
        assert_eq!(ip_or_stdin("::FFFF:1.2.3.4").unwrap(), "::ffff:1.2.3.4");
        assert!(ip_or_stdin("999.1.1.1").is_err());
        assert_eq!(block_or_ip_or_stdin("-").unwrap(), "-");
        assert!(chart_days("8").is_err());
        assert!(hours("0").is_err() && hours("8761").is_err() && hours("4294967296").is_err());
    }
}
