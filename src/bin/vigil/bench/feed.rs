//! A platform's activity feed, generated: JSON lines of sign-ins, comment submissions with
//! their text, and profile changes, from a fixed seed, read as a stream (so ten million events
//! need not be held at once).

use std::io::Read;

use rand::{Rng, SeedableRng};

/// `events` lines spread evenly from `start` for `span_us` microseconds, each by one of
/// `names`, from a fixed seed: the same arguments give the same lines.
pub struct Feed {
    names: Vec<String>,
    texts: Vec<String>,
    rng: rand_chacha::ChaCha8Rng,
    start_us: i64,
    step_us: i64,
    next: u64,
    events: u64,
    buf: Vec<u8>,
    pos: usize,
}

/// Lines generated at a time when the reader runs dry.
const LINES_PER_FILL: u64 = 1_000;

impl Feed {
    /// The feed of `events` lines by `names` (at least one), over `span_us` from `start_us`.
    pub fn new(names: Vec<String>, events: u64, start_us: i64, span_us: i64) -> Self {
        Feed {
            names,
            texts: vigil::demo::comment_texts(4_096, 3)
                .into_iter()
                .map(|t| t.replace('"', "'"))
                .collect(),
            rng: rand_chacha::ChaCha8Rng::seed_from_u64(5),
            start_us,
            step_us: (span_us / events.max(1) as i64).max(1),
            next: 0,
            events,
            buf: Vec::with_capacity(LINES_PER_FILL as usize * 220),
            pos: 0,
        }
    }

    fn fill(&mut self) {
        use std::io::Write as _;
        self.buf.clear();
        self.pos = 0;
        let end = (self.next + LINES_PER_FILL).min(self.events);
        for i in self.next..end {
            let rng = &mut self.rng;
            let who = &self.names[rng.gen_range(0..self.names.len())];
            let at = vigil::store::Timestamp::from_micros(self.start_us + i as i64 * self.step_us)
                .to_rfc3339();
            let ip = format!(
                "10.{}.{}.{}",
                rng.gen::<u8>(),
                rng.gen::<u8>(),
                rng.gen_range(1..255u8)
            );
            let r: f64 = rng.gen();
            // Writing into a Vec cannot fail.
            let _ = if r < 0.6 {
                let text = &self.texts[rng.gen_range(0..self.texts.len())];
                writeln!(
                    self.buf,
                    r#"{{"type":"comment_submission","user":"{who}","at":"{at}","ip":"{ip}","country":"GB","user_agent":"Firefox","content":"{text}"}}"#
                )
            } else if r < 0.9 {
                let outcome = if rng.gen_bool(0.03) {
                    "failure"
                } else {
                    "success"
                };
                writeln!(
                    self.buf,
                    r#"{{"type":"login_attempt","user":"{who}","at":"{at}","ip":"{ip}","country":"GB","user_agent":"Firefox","outcome":"{outcome}"}}"#
                )
            } else {
                writeln!(
                    self.buf,
                    r#"{{"type":"profile_change","user":"{who}","at":"{at}","ip":"{ip}","country":"GB","field":"display_name"}}"#
                )
            };
        }
        self.next = end;
    }
}

impl Read for Feed {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        if self.pos == self.buf.len() {
            if self.next == self.events {
                return Ok(0);
            }
            self.fill();
        }
        let n = out.len().min(self.buf.len() - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}
