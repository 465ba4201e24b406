//! NDJSON ingest parsing, on two threads for large bodies.
//!
//! [`NdjsonParser`] takes the body chunk by chunk. The first
//! [`PARALLEL_FROM`] bytes are parsed on the request's parser thread as they
//! arrive, so small bodies never spawn a thread or buffer more than a chunk.
//! Past that, when no other body is being parsed and the in-flight budget
//! admits [`EXTRA_BYTES`] more, the parser gathers windows of
//! [`WINDOW_BYTES`], splits each at a newline near its middle, and parses
//! the second half on a scoped thread into a side [`BatchBuilder`] while it
//! parses the first half itself; the side records are then appended after
//! its own, in order. Why: parsing a line (JSON number conversion, user id
//! interning) was most of a large request's time, and it is independent
//! from line to line.
//!
//! Both halves number their lines as one reader would (the second starts
//! after the newlines of the first), and the first half's error wins, so a
//! bad body is refused with the same problem, naming the same (first) bad
//! line, as a one-thread parse. Only one body at a time takes the second
//! thread: with several bodies in flight the cores are already busy, and
//! every window and side builder would be memory held per request.

use std::sync::atomic::{AtomicUsize, Ordering};

use memchr::{memchr, memchr_iter, memrchr};

use super::ndjson::{parse_line, LineReader};
use crate::api::ApiError;
use crate::state::BatchBuilder;

/// Bodies are parsed on one thread up to this many bytes.
///
/// Why not 4 MiB: in the default streams benchmark (ten 51 MB bodies, two
/// at a time) bodies took the two-thread path whenever the other one was
/// between parsing and merging, and the peak RSS rose from 232–250 MB to
/// 262–273 MB (three runs each) for no gain in rate. From 64 MiB on, only
/// bodies far larger than a usual batch pay for the window and side
/// builder, and a body of millions of records parses most of itself on two
/// threads.
pub const PARALLEL_FROM: usize = 64 << 20;

/// Bytes gathered before a window is split and parsed on two threads.
pub const WINDOW_BYTES: usize = 4 << 20;

/// What the two-thread parse holds beyond a one-thread parse, reserved from
/// the in-flight budget before it starts: the window, the side builder
/// (pre-sized below) and the second thread's stack.
pub const EXTRA_BYTES: usize = 10 << 20;

/// Windows with fewer bytes of complete lines are parsed on one thread (the
/// last bytes of a body): a thread costs more than it saves there.
const MIN_SPLIT_BYTES: usize = 256 << 10;

/// The shortest record line there is (`{"prediction":0,"label":0}` has 26
/// bytes), to size the side builder for any half window.
const MIN_RECORD_BYTES: usize = 24;

/// NDJSON bodies being parsed now, in the whole process.
static PARSING: AtomicUsize = AtomicUsize::new(0);

/// Counts one body in [`PARSING`] while it lives.
#[derive(Debug)]
struct Parsing;

impl Parsing {
    fn start() -> Parsing {
        PARSING.fetch_add(1, Ordering::AcqRel);
        Parsing
    }

    /// True when this body is the only one being parsed.
    fn alone(&self) -> bool {
        PARSING.load(Ordering::Acquire) <= 1
    }
}

impl Drop for Parsing {
    fn drop(&mut self) {
        PARSING.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The staging budgets, checked with the builder so far and the extra bytes
/// the parse holds (0 or [`EXTRA_BYTES`]); see `streams::Staging`.
pub type Check<'a> = Box<dyn FnMut(&BatchBuilder, usize) -> Result<(), ApiError> + 'a>;

/// When to run the [`Check`].
struct Budget<'a> {
    check: Check<'a>,
    every: usize,
    next: usize,
    extra: usize,
}

impl Budget<'_> {
    /// Checks when the builder passed the next multiple of `every` records.
    fn after_record(&mut self, builder: &BatchBuilder) -> Result<(), ApiError> {
        if builder.len() >= self.next {
            self.next = builder.len().saturating_add(self.every);
            return (self.check)(builder, self.extra);
        }
        Ok(())
    }

    fn now(&mut self, builder: &BatchBuilder) -> Result<(), ApiError> {
        (self.check)(builder, self.extra)
    }
}

/// The window and side builder of the two-thread parse.
struct Halves {
    window: Vec<u8>,
    side: BatchBuilder,
}

/// Parses an NDJSON body into a [`BatchBuilder`] (see the module docs).
pub struct NdjsonParser<'a> {
    reader: LineReader,
    builder: BatchBuilder,
    budget: Budget<'a>,
    max_line: usize,
    received: usize,
    parallel_from: usize,
    window_bytes: usize,
    /// Ignore other bodies being parsed (tests run in parallel).
    even_if_busy: bool,
    /// Windows parsed on two threads.
    splits: usize,
    halves: Option<Halves>,
    parsing: Parsing,
}

impl<'a> NdjsonParser<'a> {
    /// A parser refusing lines over `max_line` bytes that runs `check`
    /// every `check_every` staged records and at the end.
    pub fn new(max_line: usize, check_every: usize, check: Check<'a>) -> Self {
        NdjsonParser {
            reader: LineReader::new(max_line),
            builder: BatchBuilder::new(),
            budget: Budget {
                check,
                every: check_every.max(1),
                next: check_every.max(1),
                extra: 0,
            },
            max_line,
            received: 0,
            parallel_from: PARALLEL_FROM,
            window_bytes: WINDOW_BYTES,
            even_if_busy: false,
            splits: 0,
            halves: None,
            parsing: Parsing::start(),
        }
    }

    /// Takes the two-thread path past `bytes` instead of [`PARALLEL_FROM`],
    /// in windows of 1 MB, whatever other bodies are being parsed: tests
    /// use small bodies, and run beside each other.
    #[cfg(test)]
    fn parallel_from(mut self, bytes: usize) -> Self {
        self.parallel_from = bytes;
        self.window_bytes = 1_000_000;
        self.even_if_busy = true;
        self
    }

    /// True when this body is the only one being parsed (see the module docs).
    fn alone(&self) -> bool {
        self.even_if_busy || self.parsing.alone()
    }

    /// Parses the next chunk of the body.
    pub fn feed(&mut self, chunk: &[u8]) -> Result<(), ApiError> {
        self.received = self.received.saturating_add(chunk.len());
        if self.halves.is_none() && self.received > self.parallel_from && self.alone() {
            self.start_halves();
        }
        let Some(halves) = &mut self.halves else {
            return self.one_thread(chunk);
        };
        if halves.window.len() + chunk.len() > halves.window.capacity() {
            self.parse_window()?;
        }
        if let Some(halves) = &mut self.halves {
            halves.window.reserve_exact(chunk.len());
            halves.window.extend_from_slice(chunk);
        }
        Ok(())
    }

    /// Reserves the extra memory and allocates the window and side builder;
    /// stays on one thread when the budget refuses.
    fn start_halves(&mut self) {
        if (self.budget.check)(&self.builder, EXTRA_BYTES).is_err() {
            return;
        }
        self.budget.extra = EXTRA_BYTES;
        self.halves = Some(Halves {
            window: Vec::with_capacity(self.window_bytes),
            side: BatchBuilder::for_append(WINDOW_BYTES / 2 / MIN_RECORD_BYTES),
        });
    }

    /// Ends the body; the builder of every record, or the first error.
    pub fn finish(mut self) -> Result<BatchBuilder, ApiError> {
        self.parse_window()?;
        let NdjsonParser {
            reader,
            mut builder,
            mut budget,
            ..
        } = self;
        reader.finish(&mut |n, line| {
            parse_line(&mut builder, n, line)?;
            budget.after_record(&builder)
        })?;
        budget.now(&builder)?;
        Ok(builder)
    }

    /// Parses `bytes` on this thread.
    fn one_thread(&mut self, bytes: &[u8]) -> Result<(), ApiError> {
        let NdjsonParser {
            reader,
            builder,
            budget,
            ..
        } = self;
        reader.feed(bytes, &mut |n, line| {
            parse_line(builder, n, line)?;
            budget.after_record(builder)
        })
    }

    /// Parses the gathered window (on two threads when it is large enough
    /// and no other body is being parsed) and empties it.
    fn parse_window(&mut self) -> Result<(), ApiError> {
        let Some(mut halves) = self.halves.take() else {
            return Ok(());
        };
        let result = self.split_parse(&halves.window, &mut halves.side);
        halves.window.clear();
        self.halves = Some(halves);
        result
    }

    fn split_parse(&mut self, window: &[u8], side: &mut BatchBuilder) -> Result<(), ApiError> {
        let (Some(first_nl), Some(last_nl)) = (memchr(b'\n', window), memrchr(b'\n', window))
        else {
            return self.one_thread(window);
        };
        // The line the reader has begun ends at the first newline; the
        // complete lines after it are split; the last, unfinished, line is
        // kept by the reader.
        let head = window.get(..=first_nl).unwrap_or_default();
        let lines = window.get(first_nl + 1..=last_nl).unwrap_or_default();
        let tail = window.get(last_nl + 1..).unwrap_or_default();
        self.one_thread(head)?;
        if lines.len() < MIN_SPLIT_BYTES || !self.alone() {
            self.one_thread(lines)?;
        } else {
            self.two_threads(lines, side)?;
        }
        self.one_thread(tail)
    }

    /// Parses complete `lines` (ending with a newline, the reader at a line
    /// start): the first half here, the second on a scoped thread.
    fn two_threads(&mut self, lines: &[u8], side: &mut BatchBuilder) -> Result<(), ApiError> {
        let half = lines.len() / 2;
        let cut = lines
            .get(half..)
            .and_then(|rest| memchr(b'\n', rest))
            .map_or(lines.len(), |i| half + i + 1);
        let (first, second) = lines.split_at(cut);
        let after = self.reader.lines() + memchr_iter(b'\n', first).count() as u64;
        let max_line = self.max_line;
        self.splits += 1;
        let (mine, theirs) = std::thread::scope(|scope| {
            let other = std::thread::Builder::new()
                .name("evald-parse".to_owned())
                .spawn_scoped(scope, || parse_apart(second, side, max_line, after));
            let mine = self.one_thread(first);
            let theirs = other.ok().map(|h| h.join());
            (mine, theirs)
        });
        mine?;
        match theirs {
            // No thread could be started: parse the second half here.
            None => self.one_thread(second),
            Some(Err(_)) => Err(ApiError::internal(
                "the second NDJSON parsing thread failed",
            )),
            Some(Ok(Err(e))) => Err(e),
            Some(Ok(Ok(last_line))) => {
                self.reader.skip_to(last_line);
                self.builder
                    .append(side)
                    .map_err(|e| ApiError::invalid("line", e.to_string()))?;
                self.budget.now(&self.builder)
            }
        }
    }
}

/// Parses complete `lines` that follow line `after` of the body into
/// `side`; returns the number of the last line read.
fn parse_apart(
    lines: &[u8],
    side: &mut BatchBuilder,
    max_line: usize,
    after: u64,
) -> Result<u64, ApiError> {
    let mut reader = LineReader::after_line(max_line, after);
    reader.feed(lines, &mut |n, line| parse_line(side, n, line))?;
    // `lines` end with a newline, so nothing is left unfinished; were a
    // last line left, it would be read (and counted) here.
    let last = reader.lines() + u64::from(!reader.at_line_start());
    reader.finish(&mut |n, line| parse_line(side, n, line))?;
    Ok(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parses `body` in `chunk`-byte chunks, on two threads past `from`
    /// bytes; also says how many windows were split.
    fn parse_counting(
        body: &[u8],
        chunk: usize,
        from: usize,
    ) -> (Result<crate::state::StagedBatch, ApiError>, usize) {
        let mut parser =
            NdjsonParser::new(1 << 10, 1 << 16, Box::new(|_, _| Ok(()))).parallel_from(from);
        for c in body.chunks(chunk.max(1)) {
            if let Err(e) = parser.feed(c) {
                return (Err(e), parser.splits);
            }
        }
        let splits = parser.splits;
        (parser.finish().map(BatchBuilder::finish), splits)
    }

    fn parse(
        body: &[u8],
        chunk: usize,
        from: usize,
    ) -> Result<crate::state::StagedBatch, ApiError> {
        parse_counting(body, chunk, from).0
    }

    fn body(lines: usize, bad: Option<usize>) -> Vec<u8> {
        let mut out = Vec::new();
        for i in 0..lines {
            if Some(i) == bad {
                out.extend_from_slice(b"{\"prediction\": 0.5, \"label\": 2}\n");
            } else if i % 97 == 5 {
                out.extend_from_slice(b"\r\n"); // blank lines count too
            } else {
                let w = if i % 13 == 0 { ",\"weight\":2.5" } else { "" };
                out.extend_from_slice(
                    format!(
                        "{{\"prediction\":{:.4},\"label\":{},\"user_id\":\"u{}\"{w}}}\n",
                        (i * 7919 % 10007) as f64 / 10007.0,
                        i % 3 % 2,
                        i * 31 % 1000
                    )
                    .as_bytes(),
                );
            }
        }
        out
    }

    type Outcome = Result<(String, Vec<(String, String)>), (u16, String)>;

    fn outcome(r: Result<crate::state::StagedBatch, ApiError>) -> Outcome {
        r.map(|b| {
            let users = b
                .users
                .iter()
                .map(|(n, a)| (n.clone(), format!("{a:?}")))
                .collect();
            (format!("{:?}", b.global), users)
        })
        .map_err(|e| (e.status().as_u16(), e.detail))
    }

    #[test]
    fn two_threads_stage_what_one_thread_stages() {
        // ~1.3 MB: several split windows with the threshold lowered
        let body = body(30_000, None);
        let one = outcome(parse(&body, 64 << 10, usize::MAX));
        assert!(one.is_ok());
        for (chunk, from) in [(64 << 10, 0), (4093, 1000), (1 << 20, 300_000)] {
            let (two, splits) = parse_counting(&body, chunk, from);
            assert!(splits > 0, "chunk {chunk} from {from}: no window was split");
            assert_eq!(outcome(two), one, "chunk {chunk} from {from}");
        }
    }

    #[test]
    fn two_threads_name_the_first_bad_line() {
        for bad in [
            [Some(3), None],
            [Some(12_000), Some(25_000)],
            [Some(29_990), None],
            [Some(17_000), Some(17_001)],
        ] {
            let mut body = body(30_000, bad[0]);
            if let Some(second) = bad[1] {
                // a second bad line later in the body (never reported)
                let at = body.len() / 30_000 * second;
                body.splice(at..at, b"{\"prediction\": NaN}\n".iter().copied());
            }
            let one = outcome(parse(&body, 64 << 10, usize::MAX));
            assert!(one.is_err());
            for (chunk, from) in [(64 << 10, 0), (4093, 1000)] {
                assert_eq!(outcome(parse(&body, chunk, from)), one, "bad {bad:?}");
            }
        }
    }

    #[test]
    fn a_long_line_in_the_second_half_is_refused_with_its_number() {
        let mut body = body(30_000, None);
        let at = body.len() * 3 / 4;
        let at = at + memchr(b'\n', &body[at..]).unwrap_or(0) + 1;
        let long = format!(
            "{{\"prediction\":0.5,\"label\":1,\"user_id\":\"{}\"}}\n",
            "x".repeat(2000)
        );
        body.splice(at..at, long.bytes());
        let one = outcome(parse(&body, 64 << 10, usize::MAX));
        assert_eq!(one.as_ref().err().map(|e| e.0), Some(413));
        assert_eq!(outcome(parse(&body, 64 << 10, 0)), one);
    }
}
