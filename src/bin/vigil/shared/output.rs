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
