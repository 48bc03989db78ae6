//! Line-oriented input read without trusting it: a line longer than the limit is skipped as
//! it streams past (never held whole), and a line that is not UTF-8 text or holds a NUL byte
//! is reported by its number. What `vigil activity ingest` and `vigil monitor screen` read.

use std::io::{self, BufRead};

/// The longest line taken by default, and the range `monitor.max_line_bytes` may be set in.
pub use crate::config::{DEFAULT_MAX_LINE_BYTES, MAX_LINE_BYTES_RANGE};

/// Why a line was not taken. Says nothing of the line's content.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LineFault {
    /// Longer than the limit; skipped without being read whole.
    #[error("line longer than {max} bytes (skipped)")]
    TooLong {
        /// The limit.
        max: usize,
    },
    /// Not UTF-8 text.
    #[error("the line is not UTF-8 text")]
    NotUtf8,
    /// Holds a NUL byte.
    #[error("the line holds a NUL byte")]
    Nul,
}

/// Numbered lines (from 1) of a reader, each at most `max` bytes without its line end (`\n`
/// or `\r\n`). Memory held: the reader's buffer plus one line of at most `max` bytes.
pub struct Lines<R> {
    input: R,
    max: usize,
    n: u64,
    line: Vec<u8>,
}

impl<R: BufRead> Lines<R> {
    /// Lines of `input`, refusing any longer than `max` bytes.
    pub fn new(input: R, max: usize) -> Self {
        Self {
            input,
            max,
            n: 0,
            line: Vec::new(),
        }
    }

    /// The next line and its number, or `None` at the end of the input. An error is only a
    /// failure to read; a bad line is an `Err` inside.
    pub fn next_line(&mut self) -> io::Result<Option<(u64, Result<&str, LineFault>)>> {
        self.line.clear();
        let mut too_long = false;
        let mut any = false;
        loop {
            let chunk = match self.input.fill_buf() {
                Ok(c) => c,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if chunk.is_empty() {
                break;
            }
            any = true;
            let (part, used, ended) = match memchr::memchr(b'\n', chunk) {
                Some(i) => (&chunk[..i], i + 1, true),
                None => (chunk, chunk.len(), false),
            };
            // One byte over the limit is kept for a `\r` before the `\n`.
            if !too_long && self.line.len() + part.len() > self.max + 1 {
                too_long = true;
                self.line = Vec::new();
            } else if !too_long {
                self.line.extend_from_slice(part);
            }
            self.input.consume(used);
            if ended {
                break;
            }
        }
        if !any {
            return Ok(None);
        }
        self.n += 1;
        if self.line.last() == Some(&b'\r') {
            self.line.pop();
        }
        let checked = if too_long || self.line.len() > self.max {
            Err(LineFault::TooLong { max: self.max })
        } else if memchr::memchr(0, &self.line).is_some() {
            Err(LineFault::Nul)
        } else {
            std::str::from_utf8(&self.line).map_err(|_| LineFault::NotUtf8)
        };
        Ok(Some((self.n, checked)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(input: &[u8], max: usize) -> Vec<(u64, Result<String, LineFault>)> {
        // A small buffer, so lines straddle refills.
        let mut lines = Lines::new(io::BufReader::with_capacity(7, input), max);
        let mut out = Vec::new();
        while let Some((n, l)) = lines.next_line().unwrap() {
            out.push((n, l.map(str::to_owned)));
        }
        out
    }

    #[test]
    fn lines_are_numbered_and_checked_one_by_one() {
        let mut input = b"first\r\nsecond\n".to_vec();
        input.extend(std::iter::repeat_n(b'x', 100));
        input.extend(b"\nbad \xff\nnul\0here\n\nlast");
        assert_eq!(
            all(&input, 40),
            vec![
                (1, Ok("first".into())),
                (2, Ok("second".into())),
                (3, Err(LineFault::TooLong { max: 40 })),
                (4, Err(LineFault::NotUtf8)),
                (5, Err(LineFault::Nul)),
                (6, Ok(String::new())),
                (7, Ok("last".into())),
            ]
        );
    }

    #[test]
    fn the_limit_is_exact_and_a_crlf_does_not_count() {
        let ok = "y".repeat(10);
        assert_eq!(
            all(format!("{ok}\r\n").as_bytes(), 10),
            vec![(1, Ok(ok.clone()))]
        );
        assert_eq!(
            all(format!("{ok}y\n").as_bytes(), 10)[0].1,
            Err(LineFault::TooLong { max: 10 })
        );
        assert_eq!(
            all(format!("{ok}y\r\n").as_bytes(), 10)[0].1,
            Err(LineFault::TooLong { max: 10 })
        );
        assert!(all(b"", 10).is_empty());
    }
}
