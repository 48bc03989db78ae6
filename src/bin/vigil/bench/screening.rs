//! Content screening without a database: `vigil bench --screen LINES`.

use std::process::ExitCode;
use std::time::Instant;

use anyhow::Result;
use serde::Serialize;
use vigil::demo::{self};

use super::*;
use crate::shared::*;

/// Content screening figures.
#[derive(Debug, Clone, Serialize)]
pub struct ScreeningReport {
    /// Lines in the file screened.
    pub lines: usize,
    /// Lines flagged (a rule matched or a URL was not clean).
    pub flagged: usize,
    /// Comments per second through `monitor screen`'s path: reading the file, screening on
    /// every core, writing JSON lines to a file (median of 5 runs).
    pub screen_lines_per_sec: f64,
    /// Comments per second through a bare `RegexSet` of the four built-in patterns, one core,
    /// texts already in memory (the reference).
    pub bare_regexset_per_sec: f64,
    /// The first over the second.
    pub ratio: f64,
}

/// Writes `lines` demo comments to a scratch file and times screening it into JSON lines,
/// against a bare `RegexSet` over the same texts.
pub fn screening(lines: usize) -> Result<ScreeningReport, BenchError> {
    use std::io::Write;
    use vigil::monitor::screen::{Screener, Verdict, BUILT_IN};
    let step = |e: &dyn std::fmt::Display| BenchError::Step(e.to_string());
    let texts = demo::comment_texts(lines, 11);
    let dir = tempfile::tempdir().map_err(|e| step(&e))?;
    let input = dir.path().join("comments.txt");
    let output = dir.path().join("screened.jsonl");
    {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&input).map_err(|e| step(&e))?);
        for t in &texts {
            writeln!(f, "{t}").map_err(|e| step(&e))?;
        }
        f.flush().map_err(|e| step(&e))?;
    }
    let screener = Screener::new(&[], &[]).map_err(|e| step(&e))?;
    let flagged = texts
        .iter()
        .filter(|t| {
            let f = screener.screen(t);
            !f.categories.is_empty() || f.urls.iter().any(|u| u.verdict != Verdict::Clean)
        })
        .count();
    let mut runs = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        let mut r = std::io::BufReader::with_capacity(
            1 << 20,
            std::fs::File::open(&input).map_err(|e| step(&e))?,
        );
        let mut w = std::io::BufWriter::with_capacity(
            1 << 20,
            std::fs::File::create(&output).map_err(|e| step(&e))?,
        );
        let n = screener
            .screen_lines(&mut r, &mut w)
            .map_err(|e| step(&e))?;
        runs.push(t.elapsed());
        if n as usize != lines {
            return Err(step(&"the screen read a different number of lines"));
        }
    }
    runs.sort();
    let screen = per_sec(lines as u64, runs[runs.len() / 2]);
    let set = regex::RegexSet::new(BUILT_IN.iter().map(|(_, p)| format!("(?i){p}")))
        .map_err(|e| step(&e))?;
    let mut bare = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        let mut hits = 0usize;
        for text in &texts {
            hits += set.matches(text).iter().count();
        }
        bare.push(t.elapsed());
        std::hint::black_box(hits);
    }
    bare.sort();
    let bare = per_sec(lines as u64, bare[bare.len() / 2]);
    Ok(ScreeningReport {
        lines,
        flagged,
        screen_lines_per_sec: screen,
        bare_regexset_per_sec: bare,
        ratio: screen / bare,
    })
}

pub(super) async fn cmd(lines: usize, json: bool) -> Result<ExitCode> {
    let r = tokio::task::spawn_blocking(move || screening(lines)).await??;
    if json {
        print_json(&r)?;
    } else {
        println!(
            "monitor screen: {} lines ({} flagged) = {:.0} comments/s, reading the file and writing JSON lines (median of 5)",
            r.lines, r.flagged, r.screen_lines_per_sec
        );
        println!(
            "bare RegexSet:  {:.0} comments/s on one core, the four patterns only; ratio {:.2}",
            r.bare_regexset_per_sec, r.ratio
        );
    }
    Ok(ExitCode::SUCCESS)
}
