//! The messages' text, English, plain and HTML, from the templates in `templates/`: the first
//! line of the `.txt` file is the subject, the rest the body. `{{name}}` is replaced by the
//! parameter `name` (HTML-escaped in the HTML part); a parameter the template names and the
//! message lacks is left empty.

use zeroize::Zeroizing;

use crate::notices::NoticeKind;

/// A message ready to send.
pub struct Rendered {
    /// The subject line.
    pub subject: String,
    /// The plain-text part.
    pub text: Zeroizing<String>,
    /// The HTML part.
    pub html: Zeroizing<String>,
}

const TEMPLATES: [(&str, &str, &str); 5] = [
    (
        "dsr_code",
        include_str!("templates/dsr_code.txt"),
        include_str!("templates/dsr_code.html"),
    ),
    (
        "security_notice",
        include_str!("templates/security_notice.txt"),
        include_str!("templates/security_notice.html"),
    ),
    (
        "warning",
        include_str!("templates/warning.txt"),
        include_str!("templates/warning.html"),
    ),
    (
        "operator_notice",
        include_str!("templates/operator_notice.txt"),
        include_str!("templates/operator_notice.html"),
    ),
    (
        "test",
        include_str!("templates/test.txt"),
        include_str!("templates/test.html"),
    ),
];

/// Renders `template` (`operator_notice/<kind>` selects the notice's sentence) with `params`.
pub(super) fn render(
    template: &str,
    params: &serde_json::Map<String, serde_json::Value>,
) -> Result<Rendered, String> {
    let mut params = params.clone();
    let base = match template.split_once('/') {
        Some(("operator_notice", kind)) => {
            let kind = NoticeKind::parse(kind).ok_or_else(|| format!("unknown notice {kind}"))?;
            params.insert("message".into(), kind.message().into());
            let by = params
                .get("details")
                .and_then(|d| d.get("by"))
                .and_then(|b| b.as_str())
                .map(|b| format!("Made by the administrator {b}."))
                .unwrap_or_default();
            params.insert("by_line".into(), by.into());
            "operator_notice"
        }
        Some(_) => return Err(format!("unknown template {template}")),
        None => template,
    };
    if let Some(kind) = params.get("request_kind").and_then(|k| k.as_str()) {
        let words = match kind {
            "access" => "a copy of your data",
            "portability" => "your data in a portable form",
            "erasure" => "the erasure of your data",
            "rectification" => "the correction of your data",
            _ => "your data",
        };
        params.insert("request_kind".into(), words.into());
    }
    for key in ["created_at", "expires_at"] {
        if let Some(t) = params.get(key).and_then(|v| v.as_str()) {
            let t = chrono::DateTime::parse_from_rfc3339(t)
                .map(|d| d.format("%Y-%m-%d %H:%M UTC").to_string())
                .unwrap_or_else(|_| t.to_owned());
            params.insert(key.into(), t.into());
        }
    }
    let (_, text, html) = TEMPLATES
        .iter()
        .find(|(name, _, _)| *name == base)
        .ok_or_else(|| format!("unknown template {template}"))?;
    let (subject, body) = text.split_once('\n').unwrap_or((text, ""));
    Ok(Rendered {
        subject: subject.trim().to_owned(),
        text: Zeroizing::new(fill(body, &params, false)),
        html: Zeroizing::new(format!(
            "<!DOCTYPE html>\n<html><body>\n{}</body></html>\n",
            fill(html, &params, true)
        )),
    })
}

fn fill(template: &str, params: &serde_json::Map<String, serde_json::Value>, html: bool) -> String {
    let mut out = String::with_capacity(template.len() + 64);
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            out.push_str(&rest[start..]);
            return out;
        };
        let value = match params.get(after[..end].trim()) {
            Some(serde_json::Value::String(s)) => s.clone(),
            Some(serde_json::Value::Null) | None => String::new(),
            Some(other) => other.to_string(),
        };
        if html {
            out.push_str(&escape_html(&value));
        } else {
            out.push_str(&value);
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    out
}

fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_renders_and_escapes_html() {
        let mut p = serde_json::Map::new();
        p.insert("code".into(), "K7QX2-MPA9D".into());
        p.insert("request_kind".into(), "erasure".into());
        p.insert("request_id".into(), "<b>x</b>".into());
        p.insert("expires_at".into(), "2026-01-02T03:04:05Z".into());
        let r = render("dsr_code", &p).unwrap();
        assert!(r.subject.contains("verification code"));
        assert!(r.text.contains("K7QX2-MPA9D") && r.html.contains("K7QX2-MPA9D"));
        assert!(r.text.contains("the erasure of your data"));
        assert!(r.text.contains("2026-01-02 03:04 UTC"));
        assert!(r.html.contains("&lt;b&gt;x&lt;/b&gt;") && !r.html.contains("<b>x</b>"));
        for t in ["security_notice", "warning", "test"] {
            let r = render(t, &serde_json::Map::new()).unwrap();
            assert!(!r.subject.is_empty() && !r.text.contains("{{"), "{t}");
        }
        for k in NoticeKind::ALL {
            let r = render(&format!("operator_notice/{k}"), &serde_json::Map::new()).unwrap();
            assert!(r.text.contains(k.message()), "{k}");
        }
        assert!(render("nope", &p).is_err());
        assert!(render("operator_notice/nope", &p).is_err());
    }
}
