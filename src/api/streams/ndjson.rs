//! Incremental NDJSON reading: body chunks in, complete lines out.
//!
//! [`LineReader`] keeps at most one partial line (bounded by `max_line_bytes`)
//! between chunks, so parsing memory is constant however large the body is.
//! Lines are split on `\n`; a trailing `\r` (CRLF) is dropped; blank lines are
//! skipped but counted, so reported line numbers match the file.

use memchr::memchr_iter;

use super::dto::{stage_line, stage_record, stage_short, Line, Origin};
use super::fast::{scan_record, ScannedId};
use crate::api::error::echo_quoted;
use crate::api::extract::syntax_error_after;
use crate::api::ApiError;
use crate::state::BatchBuilder;

/// Called with each complete, non-blank line and its 1-based number.
pub type OnLine<'a> = dyn FnMut(u64, &[u8]) -> Result<(), ApiError> + 'a;

/// Splits a byte stream into lines.
#[derive(Debug)]
pub struct LineReader {
    partial: Vec<u8>,
    max_line_bytes: usize,
    line_no: u64,
}

impl LineReader {
    /// A reader refusing lines longer than `max_line_bytes` (CR excluded).
    pub fn new(max_line_bytes: usize) -> Self {
        LineReader {
            partial: Vec::new(),
            max_line_bytes,
            line_no: 0,
        }
    }

    /// Lines completed so far (blank ones included).
    pub fn lines(&self) -> u64 {
        self.line_no
    }

    fn too_long(&self) -> ApiError {
        let n = self.line_no + 1;
        ApiError::too_large(format!(
            "line {n} is longer than the limit of {} bytes (max_line_bytes, --max-line-bytes)",
            self.max_line_bytes
        ))
        .with_extension("line", n)
    }

    fn keep_partial(&mut self, bytes: &[u8]) -> Result<(), ApiError> {
        // +1 leaves room for the CR of a CRLF ending split from its LF.
        if self.partial.len() + bytes.len() > self.max_line_bytes.saturating_add(1) {
            return Err(self.too_long());
        }
        self.partial.extend_from_slice(bytes);
        Ok(())
    }

    fn emit(&mut self, line: &[u8], on_line: &mut OnLine<'_>) -> Result<(), ApiError> {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.len() > self.max_line_bytes {
            return Err(self.too_long());
        }
        self.line_no += 1;
        if line.iter().all(u8::is_ascii_whitespace) {
            return Ok(());
        }
        on_line(self.line_no, line)
    }

    /// Feeds one chunk, calling `on_line(line_number, bytes)` per complete line.
    pub fn feed(&mut self, chunk: &[u8], on_line: &mut OnLine<'_>) -> Result<(), ApiError> {
        let mut start = 0;
        for end in memchr_iter(b'\n', chunk) {
            let piece = chunk.get(start..end).unwrap_or_default();
            if self.partial.is_empty() {
                self.emit(piece, on_line)?;
            } else {
                self.keep_partial(piece)?;
                let line = std::mem::take(&mut self.partial);
                self.emit(&line, on_line)?;
                // Reuse the allocation for the next partial line.
                self.partial = line;
                self.partial.clear();
            }
            start = end + 1;
        }
        self.keep_partial(chunk.get(start..).unwrap_or_default())
    }

    /// Ends the body: a last line without a trailing newline still counts.
    pub fn finish(mut self, on_line: &mut OnLine<'_>) -> Result<(), ApiError> {
        if self.partial.is_empty() {
            return Ok(());
        }
        let line = std::mem::take(&mut self.partial);
        self.emit(&line, on_line)
    }
}

/// Parses one non-blank line into `builder`. Syntax errors (including the
/// `NaN` / `Infinity` literals JSON does not have) are 400 `bad-ndjson`;
/// meaning errors are 422 with the JSON path as `field`; both carry `line`.
pub fn parse_line(builder: &mut BatchBuilder, line_no: u64, bytes: &[u8]) -> Result<(), ApiError> {
    if let Some(r) = scan_record(bytes) {
        let user = match r.user_id {
            Some(ScannedId::Short(id, _)) => {
                return stage_short(builder, line_no, r.prediction, r.label, id, r.weight);
            }
            Some(ScannedId::Long(id)) => Some(id),
            None => None,
        };
        return stage_record(
            builder,
            Origin::Line(line_no),
            r.prediction,
            r.label,
            user,
            r.weight,
            str::to_owned,
        );
    }
    match serde_json::from_slice::<Line<'_>>(bytes) {
        Ok(line) => stage_line(builder, line_no, line),
        Err(err) => Err(line_error(line_no, bytes, err)),
    }
}

/// Builds the error for a line serde_json refused; for a meaning error it
/// parses the line again with path tracking (only on this cold path). A line
/// that is not valid JSON is a 400 even when a value before the syntax error
/// already failed its check.
fn line_error(line_no: u64, bytes: &[u8], err: serde_json::Error) -> ApiError {
    use serde_json::error::Category;
    let err = syntax_error_after(&err, bytes).unwrap_or(err);
    let position =
        |e: &serde_json::Error| e.to_string().replace(" at line 1 column ", " at column ");
    match err.classify() {
        Category::Syntax | Category::Eof | Category::Io => ApiError::bad_ndjson(
            line_no,
            format!("line {line_no} is not valid JSON: {}", position(&err)),
        ),
        Category::Data => {
            let mut de = serde_json::Deserializer::from_slice(bytes);
            let path = match serde_path_to_error::deserialize::<_, Line<'_>>(&mut de) {
                Err(e) => e.path().to_string(),
                Ok(_) => ".".to_owned(),
            };
            let field = if path.is_empty() || path == "." {
                "line".to_owned()
            } else {
                path
            };
            let message = err.to_string();
            let message = message
                .rfind(" at line ")
                .and_then(|i| message.get(..i))
                .unwrap_or(&message);
            let message = echo_quoted(message);
            ApiError::invalid(field.clone(), format!("line {line_no}: {field}: {message}"))
                .with_extension("line", line_no)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(chunks: &[&[u8]], max: usize) -> Result<Vec<(u64, String)>, ApiError> {
        let mut out = Vec::new();
        let mut reader = LineReader::new(max);
        let mut sink = |n: u64, l: &[u8]| {
            out.push((n, String::from_utf8_lossy(l).into_owned()));
            Ok(())
        };
        for c in chunks {
            reader.feed(c, &mut sink)?;
        }
        reader.finish(&mut sink)?;
        Ok(out)
    }

    #[test]
    fn lines_split_across_chunks_crlf_and_blank_lines_are_handled() {
        let got = collect(
            &[b"{\"a\"", b":1}\r", b"\n\n  \r\n{\"b\":2}\n{\"c\"", b":3}"],
            100,
        );
        let expected = vec![
            (1, "{\"a\":1}".to_owned()),
            (4, "{\"b\":2}".to_owned()),
            (5, "{\"c\":3}".to_owned()),
        ];
        assert_eq!(got.map_err(|e| e.detail), Ok(expected));
    }

    #[test]
    fn every_split_point_of_a_body_gives_the_same_lines() {
        let body = b"{\"x\":1}\r\n\n{\"y\":22}\n{\"z\":333}";
        let whole = collect(&[body], 64).map_err(|e| e.detail);
        for cut in 0..body.len() {
            let (a, b) = body.split_at(cut);
            assert_eq!(
                collect(&[a, b], 64).map_err(|e| e.detail),
                whole,
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn a_line_over_the_limit_is_413_with_its_number_even_when_never_terminated() {
        let one: &[&[u8]] = &[b"ok\n0123456789\n"];
        let two: &[&[u8]] = &[b"ok\n01234", b"56789"];
        for chunks in [one, two] {
            match collect(chunks, 5) {
                Err(e) => {
                    assert_eq!(e.status().as_u16(), 413);
                    assert_eq!(e.extensions.get("line"), Some(&serde_json::json!(2)));
                    assert!(e.detail.contains("max_line_bytes"), "{}", e.detail);
                }
                Ok(lines) => panic!("accepted {lines:?}"),
            }
        }
    }

    #[test]
    fn bad_lines_name_their_line_and_field() {
        let cases: [(&[u8], u16, &str); 8] = [
            (
                b"{\"prediction\": NaN, \"label\": 1}",
                400,
                "not valid JSON",
            ),
            (
                b"{\"prediction\": Infinity, \"label\": 1}",
                400,
                "not valid JSON",
            ),
            (b"{\"prediction\": 0.5, \"label\": 2}", 422, "label"),
            (
                b"{\"prediction\": 0.5, \"label\": 1, \"weight\": -1}",
                422,
                "weight",
            ),
            (
                b"{\"prediction\": 0.5, \"label\": 1, \"colour\": 1}",
                422,
                "colour",
            ),
            (
                b"{\"predictions\": [0.5], \"labels\": [1, 0]}",
                422,
                "labels has 2 elements but predictions has 1",
            ),
            (b"{\"prediction\": 0.5, \"labels\": [1]}", 422, "not both"),
            (b"{\"colour\": 1, \"prediction\": 0.", 400, "not valid JSON"),
        ];
        for (line, status, needle) in cases {
            let mut b = BatchBuilder::new();
            match parse_line(&mut b, 7, line) {
                Err(e) => {
                    assert_eq!(e.status().as_u16(), status, "{}", e.detail);
                    assert!(e.detail.contains(needle), "{}", e.detail);
                    assert!(e.detail.contains("line 7"), "{}", e.detail);
                    assert_eq!(e.extensions.get("line"), Some(&serde_json::json!(7)));
                }
                Ok(()) => panic!("accepted {}", String::from_utf8_lossy(line)),
            }
        }
    }
}
