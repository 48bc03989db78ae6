//! The platform's activity as Vigil takes it in: one JSON object per line.
//!
//! ```json
//! {"type": "login_attempt", "user": "ada", "at": "2026-11-23T10:15:00Z", "ip": "203.0.113.7",
//!  "user_agent": "Mozilla/5.0 ...", "country": "GB", "outcome": "failure", "reason": "bad_password"}
//! {"type": "comment_submission", "user": "ada", "at": "...", "ip": "...", "country": "GB",
//!  "content": "What a goal!", "event": "0193..."}
//! {"type": "reaction", "user": "ada", "at": "...", "ip": "...", "comment": "0193..."}
//! {"type": "profile_change", "user": "ada", "at": "...", "ip": "...", "field": "email"}
//! ```
//!
//! `type`, `user` and `at` are required; `outcome` defaults to `success`; `id` (a UUID) is
//! optional: without one, the line's own bytes name it, so ingesting a file twice adds nothing.
//! A sign-in may name an account that does not exist (that is what credential stuffing looks
//! like); every other type must name a known account.

use serde::Deserialize;

use super::detect::Kind;

/// Longest line [`parse`] takes: the most `monitor.max_line_bytes` may be set to (the reader
/// refuses longer lines before they get here; see [`super::lines`]).
pub const MAX_LINE_BYTES: usize = *super::lines::MAX_LINE_BYTES_RANGE.end();
/// Longest comment accepted.
pub const MAX_CONTENT_BYTES: usize = 16 * 1024;

/// A line as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Line {
    id: Option<String>,
    #[serde(rename = "type")]
    kind: String,
    user: String,
    at: String,
    ip: Option<String>,
    user_agent: Option<String>,
    country: Option<String>,
    outcome: Option<String>,
    reason: Option<String>,
    content: Option<String>,
    event: Option<String>,
    comment: Option<String>,
    field: Option<String>,
}

/// A line that passed every check.
#[derive(Debug, Clone)]
pub struct Parsed {
    /// The activity id.
    pub id: uuid::Uuid,
    /// What.
    pub kind: Kind,
    /// The account name (resolved to an id when stored).
    pub user: String,
    /// When.
    pub at: crate::store::Timestamp,
    /// Source address, canonical.
    pub ip: Option<String>,
    /// Client.
    pub user_agent: String,
    /// ISO country code, upper case.
    pub country: String,
    /// Succeeded.
    pub ok: bool,
    /// Failure reason code.
    pub reason: Option<&'static str>,
    /// A comment's text.
    pub content: Option<String>,
    /// The live event a comment belongs to.
    pub event: Option<uuid::Uuid>,
    /// The comment a reaction is on.
    pub comment: Option<uuid::Uuid>,
}

/// Failure reasons kept (anything else is stored as `other`; never free text).
const REASONS: &[&str] = &[
    "bad_password",
    "unknown_user",
    "locked",
    "mfa_failed",
    "suspended",
    "rate_limited",
    "blocked",
    "other",
];

/// The stored name of a kind.
pub fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Login => "login",
        Kind::Comment => "comment",
        Kind::Reaction => "reaction",
        Kind::ProfileChange => "profile_change",
        Kind::Other => "other",
    }
}

/// What is wrong with a line that is not a valid JSON activity record, without any of its text:
/// serde's own messages quote values (`invalid type: string "..."`) and unknown field names.
fn json_error(e: &serde_json::Error) -> String {
    use serde_json::error::Category;
    let msg = e.to_string();
    let msg = msg.split_once(" at line").map_or(msg.as_str(), |(m, _)| m);
    match e.classify() {
        // serde_json stops at 128 levels of nesting rather than recursing without end.
        Category::Syntax if msg.starts_with("recursion limit exceeded") => {
            "the JSON is nested too deeply (a line is one flat JSON object)".into()
        }
        Category::Syntax => "not valid JSON (expected one JSON object per line)".into(),
        Category::Eof => "the JSON ends too early".into(),
        Category::Io => "the line cannot be read".into(),
        // Field names in these come from `Line`, not from the input.
        Category::Data if msg.starts_with("missing field") => msg.to_owned(),
        Category::Data if msg.ends_with("expected struct Line") => {
            "a line must be a JSON object".into()
        }
        Category::Data if msg.starts_with("unknown field") => {
            "an unknown field (not part of the format)".into()
        }
        Category::Data => match msg.rsplit_once(", expected ") {
            Some((_, expected)) if msg.starts_with("invalid type") => {
                format!("a field has the wrong type (expected {expected})")
            }
            _ => "a field has an invalid value".into(),
        },
    }
}

/// Parses and checks one line. The error says what is wrong without repeating the line.
pub fn parse(line: &str) -> Result<Parsed, String> {
    if line.len() > MAX_LINE_BYTES {
        return Err(format!("line longer than {MAX_LINE_BYTES} bytes"));
    }
    let l: Line = serde_json::from_str(line).map_err(|e| json_error(&e))?;
    // A JSON `\u0000` decodes to a NUL, which Postgres text cannot hold and no field needs.
    let texts = [
        &l.id,
        &l.ip,
        &l.user_agent,
        &l.country,
        &l.outcome,
        &l.reason,
        &l.content,
        &l.event,
        &l.comment,
        &l.field,
    ];
    if l.kind.contains('\0')
        || l.user.contains('\0')
        || l.at.contains('\0')
        || texts
            .iter()
            .any(|t| t.as_deref().is_some_and(|t| t.contains('\0')))
    {
        return Err("a field holds a NUL character".into());
    }
    let kind = match l.kind.as_str() {
        "login_attempt" | "login" => Kind::Login,
        "comment_submission" | "comment" => Kind::Comment,
        "reaction" => Kind::Reaction,
        "profile_change" => Kind::ProfileChange,
        _ => {
            return Err(
                "type must be login_attempt, comment_submission, reaction or profile_change".into(),
            )
        }
    };
    let user = l.user.trim();
    if user.is_empty() || user.len() > 64 {
        return Err("user must be 1 to 64 characters".into());
    }
    let at = chrono::DateTime::parse_from_rfc3339(l.at.trim())
        .map_err(|_| "at must be an RFC 3339 time such as 2026-11-23T10:15:00Z".to_owned())?
        .with_timezone(&chrono::Utc);
    let at = crate::store::Timestamp::from(at);
    let ip = match l.ip.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(ip) => Some(
            ip.parse::<std::net::IpAddr>()
                .map_err(|_| "ip is not an IP address".to_owned())?
                .to_string(),
        ),
    };
    let country = match l.country.as_deref().map(str::trim) {
        None | Some("") => String::new(),
        Some(c) if c.len() == 2 && c.bytes().all(|b| b.is_ascii_alphabetic()) => {
            c.to_ascii_uppercase()
        }
        Some(_) => return Err("country must be a two-letter ISO code".into()),
    };
    let ok = match l.outcome.as_deref() {
        None | Some("success") => true,
        Some("failure") => false,
        Some(_) => return Err("outcome must be success or failure".into()),
    };
    let reason = if ok {
        None
    } else {
        Some(
            l.reason
                .as_deref()
                .and_then(|r| REASONS.iter().find(|k| **k == r).copied())
                .unwrap_or("other"),
        )
    };
    let id = match l.id.as_deref() {
        Some(s) => uuid::Uuid::parse_str(s).map_err(|_| "id must be a UUID".to_owned())?,
        None => line_id(line.trim(), at),
    };
    let uuid_field = |v: Option<&str>, name: &str| -> Result<Option<uuid::Uuid>, String> {
        v.map(|s| uuid::Uuid::parse_str(s.trim()).map_err(|_| format!("{name} must be a UUID")))
            .transpose()
    };
    let event = uuid_field(l.event.as_deref(), "event")?;
    let comment = uuid_field(l.comment.as_deref(), "comment")?;
    let content = match (kind, l.content) {
        (Kind::Comment, Some(c)) if c.len() > MAX_CONTENT_BYTES => {
            return Err(format!("content longer than {MAX_CONTENT_BYTES} bytes"))
        }
        (Kind::Comment, Some(c)) if !c.trim().is_empty() => Some(c),
        (Kind::Comment, _) if ok => return Err("a comment_submission needs its content".into()),
        (Kind::Comment, _) => None,
        (_, Some(_)) => return Err("only a comment_submission has content".into()),
        (_, None) => None,
    };
    if kind == Kind::Reaction && ok && comment.is_none() {
        return Err("a reaction needs the comment it is on".into());
    }
    if l.field.as_deref().is_some_and(|f| f.len() > 64) {
        return Err("field must be at most 64 characters".into());
    }
    let user_agent = l.user_agent.unwrap_or_default();
    if user_agent.len() > 512 {
        return Err("user_agent longer than 512 bytes".into());
    }
    Ok(Parsed {
        id,
        kind,
        user: user.to_owned(),
        at,
        ip,
        user_agent,
        country,
        ok,
        reason,
        content,
        event,
        comment,
    })
}

/// The id of a line that names none: a time-ordered (version 7) UUID for its time whose other
/// bits come from the SHA-256 of its bytes, so the same line always gets the same id and ids
/// grow with time (new rows land at the end of the indexes).
fn line_id(line: &str, at: crate::store::Timestamp) -> uuid::Uuid {
    use sha2::{Digest, Sha256};
    let digest = Sha256::new()
        .chain_update(b"vigil-activity-line-v1\0")
        .chain_update(line.as_bytes())
        .finalize();
    let mut bytes = [0u8; 10];
    bytes.copy_from_slice(&digest[..10]);
    let millis = u64::try_from(at.micros() / 1_000).unwrap_or(0);
    uuid::Builder::from_unix_timestamp_millis(millis, &bytes).into_uuid()
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOGIN: &str = r#"{"type":"login_attempt","user":"ada","at":"2026-11-23T10:15:00Z","ip":"203.0.113.7","country":"gb","outcome":"failure","reason":"bad_password"}"#;

    #[test]
    fn a_good_line_parses_and_its_id_is_stable() {
        let a = parse(LOGIN).unwrap();
        assert_eq!(a.kind, Kind::Login);
        assert_eq!(a.country, "GB");
        assert!(!a.ok);
        assert_eq!(a.reason, Some("bad_password"));
        assert_eq!(parse(LOGIN).unwrap().id, a.id, "same line, same id");
        let b = parse(&LOGIN.replace("10:15", "10:16")).unwrap();
        assert_ne!(a.id, b.id);
    }

    #[test]
    fn bad_lines_say_what_is_wrong_without_echoing_the_value() {
        for (line, expect) in [
            ("not json", "expected"),
            (
                r#"{"type":"login_attempt","user":"ada"}"#,
                "missing field `at`",
            ),
            (&LOGIN.replace("login_attempt", "teleport"), "type must be"),
            (
                &LOGIN.replace("2026-11-23T10:15:00Z", "yesterday"),
                "RFC 3339",
            ),
            (&LOGIN.replace("203.0.113.7", "999.1.1.1"), "ip is not"),
            (&LOGIN.replace("\"gb\"", "\"GBR\""), "two-letter"),
            (&LOGIN.replace("\"failure\"", "\"maybe\""), "outcome"),
            (
                r#"{"type":"comment_submission","user":"ada","at":"2026-11-23T10:15:00Z"}"#,
                "needs its content",
            ),
            (
                &LOGIN.replace("\"user\"", "\"password\":\"hunter2\",\"user\""),
                "unknown field",
            ),
            (&LOGIN.replace("bad_password", "bad\\u0000"), "NUL"),
            (
                r#"{"type":"comment_submission","user":"ada","at":"2026-11-23T10:15:00Z","content":"hi\u0000"}"#,
                "NUL",
            ),
        ] {
            let err = parse(line).unwrap_err();
            assert!(err.contains(expect), "{line}: {err}");
            assert!(
                !err.contains("hunter2") && !err.contains("999.1.1.1"),
                "{err}"
            );
        }
    }

    #[test]
    fn deeply_nested_json_is_refused_with_a_clear_error() {
        for deep in [
            "[".repeat(10_000),
            format!("{}{}", "[".repeat(10_000), "]".repeat(10_000)),
            format!("{}1{}", r#"{"a":"#.repeat(10_000), "}".repeat(10_000)),
            format!(
                r#"{{"type":"login_attempt","user":"ada","at":"2026-11-23T10:15:00Z","ip":{}1{}}}"#,
                "[".repeat(10_000),
                "]".repeat(10_000)
            ),
        ] {
            let err = parse(&deep).unwrap_err();
            assert!(!err.is_empty() && !err.contains('['), "{err}");
        }
        let err = serde_json::from_str::<serde_json::Value>(&"[".repeat(10_000)).unwrap_err();
        assert_eq!(
            json_error(&err),
            "the JSON is nested too deeply (a line is one flat JSON object)"
        );
    }

    #[test]
    fn unknown_failure_reasons_are_stored_as_other() {
        let p = parse(&LOGIN.replace("bad_password", "my password was hunter2")).unwrap();
        assert_eq!(p.reason, Some("other"));
    }
}
