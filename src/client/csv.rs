//! A small RFC 4180 CSV reader that knows the file line each record starts on.
//!
//! Why not the `csv` crate (BurntSushi/rust-csv): its record positions point
//! at the end of the previous record, so the line numbers `evald push` prints
//! in errors and takes in `--from-line` would be off; exact line numbers are
//! the point of those messages. The upstream reports, both open when this was
//! written:
//! - rust-csv#395 "`Position::line` reports incorrect line when input has
//!   CRLF line endings" (only the `\r` of a CRLF terminator is consumed, so
//!   the line is the previous record's);
//! - rust-csv#208 "`Position::line` reports inaccurate line following blank
//!   lines" (the first record after a skipped blank line reports the blank's
//!   line).
//!
//! Rules (RFC 4180, plus the usual leniencies):
//! - records end at LF or CRLF; a line with only spaces/tabs is skipped;
//! - a field may be double-quoted; inside quotes `""` is one quote and commas,
//!   CR and LF are data (a record may span several lines); spaces around a
//!   quoted field are allowed and dropped;
//! - a quote inside an unquoted field, text after a closing quote, and a quote
//!   left open at the end of the file are errors naming the line;
//! - a UTF-8 byte order mark at the start of the file is dropped; fields must
//!   be UTF-8.

use std::io::BufRead;

/// One record and the 1-based file line it starts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsvRecord {
    pub line: u64,
    pub fields: Vec<String>,
}

/// A CSV error: what is wrong and the file line where it was found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("CSV line {line}: {message}")]
pub struct CsvError {
    pub line: u64,
    pub message: String,
}

/// Reads records from a buffered byte source.
pub struct CsvReader<R> {
    input: R,
    /// Lines read so far.
    line: u64,
    buf: Vec<u8>,
    /// `,` for CSV, `\t` for TSV.
    delimiter: u8,
}

impl<R: BufRead> CsvReader<R> {
    /// A comma-separated reader at the start of `input`.
    pub fn new(input: R) -> Self {
        Self::with_delimiter(input, b',')
    }

    /// A reader whose fields are separated by `delimiter` (`b'\t'` for TSV;
    /// the quoting rules stay those of RFC 4180).
    pub fn with_delimiter(input: R, delimiter: u8) -> Self {
        CsvReader {
            input,
            line: 0,
            buf: Vec::new(),
            delimiter,
        }
    }

    /// Reads one physical line (terminator included) into `self.buf`;
    /// false at the end of the input.
    fn next_line(&mut self) -> Result<bool, CsvError> {
        self.buf.clear();
        let n = self
            .input
            .read_until(b'\n', &mut self.buf)
            .map_err(|e| CsvError {
                line: self.line + 1,
                message: format!("cannot read: {e}"),
            })?;
        if n == 0 {
            return Ok(false);
        }
        self.line += 1;
        if self.line == 1 && self.buf.starts_with(b"\xEF\xBB\xBF") {
            self.buf.drain(..3);
        }
        Ok(true)
    }

    /// The next record, `None` at the end of the input.
    pub fn read_record(&mut self) -> Result<Option<CsvRecord>, CsvError> {
        // Skip blank lines.
        loop {
            if !self.next_line()? {
                return Ok(None);
            }
            if !self.buf.iter().all(|b| b.is_ascii_whitespace()) {
                break;
            }
        }
        let start = self.line;
        let mut fields = Vec::new();
        let mut field: Vec<u8> = Vec::new();
        let mut state = State::FieldStart;
        let delimiter = self.delimiter;
        loop {
            let mut i = 0;
            while let Some(&b) = self.buf.get(i) {
                i += 1;
                state = match state {
                    State::FieldStart | State::Unquoted => match b {
                        d if d == delimiter => {
                            fields.push(finish(&mut field, start)?);
                            State::FieldStart
                        }
                        b'\n' => break,
                        b'\r' if self.buf.get(i) == Some(&b'\n') => State::Unquoted,
                        b'"' if state == State::FieldStart
                            || field.iter().all(|c| matches!(c, b' ' | b'\t')) =>
                        {
                            field.clear();
                            State::Quoted
                        }
                        b'"' => {
                            return Err(CsvError {
                                line: self.line,
                                message: "a double quote inside an unquoted field; quote the whole field and write the quote as \"\"".to_owned(),
                            })
                        }
                        _ => {
                            field.push(b);
                            State::Unquoted
                        }
                    },
                    State::Quoted => match b {
                        b'"' if self.buf.get(i) == Some(&b'"') => {
                            i += 1;
                            field.push(b'"');
                            State::Quoted
                        }
                        b'"' => State::AfterQuote,
                        _ => {
                            field.push(b);
                            State::Quoted
                        }
                    },
                    State::AfterQuote => match b {
                        d if d == delimiter => {
                            fields.push(finish(&mut field, start)?);
                            State::FieldStart
                        }
                        b'\n' => break,
                        b' ' | b'\t' | b'\r' => State::AfterQuote,
                        _ => {
                            return Err(CsvError {
                                line: self.line,
                                message: format!(
                                    "'{}' after a closing double quote; a quoted field must end at a delimiter or the end of the line",
                                    char::from(b).escape_default()
                                ),
                            })
                        }
                    },
                };
            }
            if state != State::Quoted {
                break;
            }
            // A quoted field goes on on the next line (its line break was kept).
            if !self.next_line()? {
                return Err(CsvError {
                    line: start,
                    message: "a double-quoted field opened here is never closed".to_owned(),
                });
            }
        }
        fields.push(finish(&mut field, start)?);
        Ok(Some(CsvRecord {
            line: start,
            fields,
        }))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Nothing of the field read yet.
    FieldStart,
    Unquoted,
    Quoted,
    /// The closing quote was read; only spaces may follow before the comma.
    AfterQuote,
}

fn finish(field: &mut Vec<u8>, line: u64) -> Result<String, CsvError> {
    String::from_utf8(std::mem::take(field)).map_err(|_| CsvError {
        line,
        message: "a field is not valid UTF-8".to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(text: &[u8]) -> Result<Vec<(u64, Vec<String>)>, CsvError> {
        let mut r = CsvReader::new(text);
        let mut out = Vec::new();
        while let Some(rec) = r.read_record()? {
            out.push((rec.line, rec.fields));
        }
        Ok(out)
    }

    fn row(line: u64, fields: &[&str]) -> (u64, Vec<String>) {
        (line, fields.iter().map(|s| (*s).to_owned()).collect())
    }

    #[test]
    fn quoted_commas_escaped_quotes_crlf_and_line_breaks_in_quotes() {
        let text = b"\xEF\xBB\xBFa,b,c\r\n\"x,y\",\"say \"\"hi\"\"\",\r\n\r\n  \t\n\"two\r\nlines\" , plain ,\"\"\nlast,\"\",\"q\"";
        assert_eq!(
            read_all(text),
            Ok(vec![
                row(1, &["a", "b", "c"]),
                row(2, &["x,y", "say \"hi\"", ""]),
                row(5, &["two\r\nlines", " plain ", ""]),
                row(7, &["last", "", "q"]),
            ])
        );
    }

    #[test]
    fn malformed_quoting_is_an_error_naming_its_line() {
        for (text, line, needle) in [
            (&b"a,b\nx,y\"z\n"[..], 2, "inside an unquoted field"),
            (b"a,b\n\"x\"y,z\n", 2, "after a closing double quote"),
            (b"a,b\n\n\"x,z\nmore\n", 3, "never closed"),
            (b"a,b\n\xff,1\n", 2, "UTF-8"),
        ] {
            match read_all(text) {
                Err(e) => {
                    assert_eq!(e.line, line, "{e}");
                    assert!(e.to_string().contains(needle), "{e}");
                }
                Ok(rows) => panic!("accepted {rows:?}"),
            }
        }
    }

    #[test]
    fn tabs_separate_tsv_fields_and_commas_are_data_there() {
        let mut r = CsvReader::with_delimiter(&b"score\tlabel\n0.5,x\t\"a\tb\"\n"[..], b'\t');
        let mut rows = Vec::new();
        while let Ok(Some(rec)) = r.read_record() {
            rows.push((rec.line, rec.fields));
        }
        assert_eq!(
            rows,
            vec![row(1, &["score", "label"]), row(2, &["0.5,x", "a\tb"])]
        );
    }

    #[test]
    fn a_lone_carriage_return_is_data_and_a_missing_final_newline_is_fine() {
        assert_eq!(read_all(b"a\rb,c"), Ok(vec![row(1, &["a\rb", "c"])]));
        assert_eq!(read_all(b""), Ok(vec![]));
        assert_eq!(read_all(b"\n\n"), Ok(vec![]));
    }
}
