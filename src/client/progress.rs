//! The progress line of `evald push` on stderr: bytes read (of the file as
//! stored, so compressed bytes for `.gz`), percent, records applied (after
//! decompression: what the stream received) and rate.
//!
//! On a terminal `indicatif` redraws it in place, ten times a second. When
//! stderr is a file or a pipe (or `TERM` is dumb) indicatif draws nothing,
//! so only the final state is written there, once, as a plain line: a log
//! gets the outcome without a hundred redrawn frames.

use std::io::{self, Read, Write};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle, TermLike};

/// `[####------]  42.0%  1.20 MB/2.86 MB  120000 records  35.50 MB/s`
const TEMPLATE: &str =
    "[{bar:30}] {percent_1}%  {decimal_bytes}/{decimal_total_bytes}  {msg}  {decimal_bytes_per_sec}";

/// Progress over the bytes read from the input file.
#[derive(Debug, Clone)]
pub struct Progress {
    bar: ProgressBar,
    /// stderr is no terminal: draw only the final state.
    final_line_only: bool,
}

impl Progress {
    /// Progress over `total` bytes; silent when `quiet`.
    pub fn new(total: u64, quiet: bool) -> Self {
        if quiet {
            return Progress {
                bar: ProgressBar::hidden(),
                final_line_only: false,
            };
        }
        let bar =
            ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr_with_hz(10))
                .with_style(style())
                .with_message("0 records");
        Progress {
            final_line_only: bar.is_hidden(),
            bar,
        }
    }

    /// Shows `records` (applied so far, or checked in a dry run).
    pub fn set_records(&self, records: u64) {
        self.bar.set_message(format!("{records} records"));
    }

    /// Writes `line` on stderr without tearing the bar (a note is shown
    /// even with `--quiet`: it says something about the input).
    pub fn note(&self, line: &str) {
        self.bar.suspend(|| eprintln!("{line}"));
    }

    /// `input`, advancing the bar by every byte read from it.
    pub fn wrap_read<R: Read>(&self, input: R) -> impl Read {
        self.bar.wrap_read(input)
    }

    /// Draws the final state: the full bar after a complete push, the bar
    /// where reading stopped after a failure.
    pub fn finish(&self, complete: bool) {
        if self.final_line_only {
            self.bar
                .set_draw_target(ProgressDrawTarget::term_like(Box::new(FinalLine)));
        }
        if complete {
            self.bar.finish();
        } else {
            self.bar.abandon();
        }
    }
}

fn style() -> ProgressStyle {
    ProgressStyle::with_template(TEMPLATE)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("#-")
        // Percent with one decimal: indicatif's `{percent}` has none.
        .with_key(
            "percent_1",
            |state: &ProgressState, w: &mut dyn std::fmt::Write| {
                let _ = write!(w, "{:5.1}", state.fraction() * 100.0);
            },
        )
}

/// stderr as a plain stream: the one frame drawn after the switch becomes one
/// line. indicatif pads a frame with spaces to the terminal width and moves
/// the cursor around it; the padding is dropped and the moves are no-ops.
#[derive(Debug)]
struct FinalLine;

impl TermLike for FinalLine {
    /// Wide enough that the frame is never wrapped.
    fn width(&self) -> u16 {
        200
    }

    fn move_cursor_up(&self, _: usize) -> io::Result<()> {
        Ok(())
    }

    fn move_cursor_down(&self, _: usize) -> io::Result<()> {
        Ok(())
    }

    fn move_cursor_right(&self, _: usize) -> io::Result<()> {
        Ok(())
    }

    fn move_cursor_left(&self, _: usize) -> io::Result<()> {
        Ok(())
    }

    fn write_line(&self, s: &str) -> io::Result<()> {
        writeln!(io::stderr(), "{s}")
    }

    fn write_str(&self, s: &str) -> io::Result<()> {
        let text = s.trim_end_matches(' ');
        if text.is_empty() || text == "\r" {
            return Ok(());
        }
        write!(io::stderr(), "{text}")
    }

    fn clear_line(&self) -> io::Result<()> {
        Ok(())
    }

    /// indicatif flushes once per frame: end the line there.
    fn flush(&self) -> io::Result<()> {
        writeln!(io::stderr())
    }
}
