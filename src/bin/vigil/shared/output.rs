//! Output: `--json`, progress bars.

use std::io::IsTerminal;

use anyhow::Result;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use vigil::demo::SeedProgress;

#[derive(Args)]
pub(crate) struct JsonFlag {
    /// Print JSON instead of text.
    #[arg(long)]
    pub(crate) json: bool,
}

pub(crate) fn print_json<T: serde::Serialize>(v: &T) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

/// One line of JSON, `{"<key>": v}`: the closing line of a long run under `--json`.
pub(crate) fn print_json_line<T: serde::Serialize>(key: &str, v: &T) -> Result<()> {
    let mut line = serde_json::Map::new();
    line.insert(key.to_owned(), serde_json::to_value(v)?);
    println!("{}", serde_json::Value::Object(line));
    Ok(())
}

/// One progress report of a long run: a `{"progress": p}` line under `--json`, and the bar
/// (hidden under `--json` or off a terminal) moved to `done` of `total`.
pub(crate) fn show_progress<T: serde::Serialize>(
    json: bool,
    bar: &ProgressBar,
    p: &T,
    done: u64,
    total: u64,
) {
    if json {
        if let Ok(line) = serde_json::to_string(&serde_json::json!({ "progress": p })) {
            println!("{line}");
        }
    }
    bar.set_length(total);
    bar.set_position(done);
}

pub(crate) fn progress_bar(quiet: bool) -> ProgressBar {
    if quiet || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("{msg:>9} [{bar:40}] {pos}/{len} ({eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar
}

pub(crate) fn show(bar: &ProgressBar, p: SeedProgress) {
    bar.set_message(p.phase);
    bar.set_length(p.total);
    bar.set_position(p.done);
}

/// Text that came from the platform or from another operator (a comment, a display name, a
/// user agent, a reason, a note), made safe to print on a terminal: control characters (C0,
/// DEL, C1) and the bidirectional controls that reorder what is shown (U+200E, U+200F,
/// U+202A-U+202E, U+2066-U+2069) are written as `\u{..}` escapes (`\n`, `\r`, `\t` as
/// themselves escaped), so the text can neither drive the terminal nor forge extra lines.
/// `--json` output is not passed through this: it stays exact.
pub(crate) fn terminal_safe(text: &str) -> std::borrow::Cow<'_, str> {
    fn unsafe_char(c: char) -> bool {
        c.is_control()
            || matches!(c, '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
    }
    if !text.chars().any(unsafe_char) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if unsafe_char(c) => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    std::borrow::Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::terminal_safe;

    #[test]
    fn control_and_bidi_characters_are_escaped_and_plain_text_is_not() {
        assert_eq!(terminal_safe("Grüße, 世界!"), "Grüße, 世界!");
        assert_eq!(
            terminal_safe("a\u{1b}]0;owned\u{7}b\r\nc\0d\u{202e}e\u{9b}f\u{7f}\\"),
            "a\\u{1b}]0;owned\\u{7}b\\r\\nc\\u{0}d\\u{202e}e\\u{9b}f\\u{7f}\\"
        );
        for c in ['\u{200e}', '\u{200f}', '\u{202a}', '\u{2066}', '\u{2069}'] {
            assert!(!terminal_safe(&format!("x{c}y")).contains(c));
        }
    }
}
