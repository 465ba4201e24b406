//! `evald push`: stream a local NDJSON or CSV file into a stream.
//!
//! The file is read on a blocking thread, converted to NDJSON when it is CSV,
//! and cut into requests of at most `--records-per-request` lines (records or
//! batch objects; default 100,000) or [`MAX_REQUEST_BYTES`], whichever comes
//! first. The server stages a whole request before applying it atomically, so
//! it is the request size, not the file size, that bounds the server's
//! staging memory; the client holds at most three requests' worth at once
//! (the one in flight, one queued, one being built).
//!
//! Requests are sent one after another, in file order. If one is refused (a
//! bad line), the earlier ones stay applied and nothing from the failed
//! request on is: the error names the file line, what was applied, and the
//! `--from-line` that resumes exactly after the applied part. A CSV row the
//! client itself cannot convert fails the same way, before its request is sent.
//!
//! A progress line on stderr ([`super::progress`]) shows bytes read, percent
//! and rate. At the end the ingest summary and then
//! `GET /streams/{name}/metrics` are printed on stdout.
//!
//! CSV is RFC 4180 (read by [`super::csv`]): a header row names the columns
//! `prediction`, `label` and optionally `user_id` and `weight` (any order,
//! other columns refused); fields may be double-quoted, with `""` for a quote,
//! commas and line breaks inside quotes; CRLF or LF line ends; blank lines are
//! skipped; spaces around header names, numbers and labels are ignored, a user
//! id is taken verbatim.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use super::csv::{CsvReader, CsvRecord};
use super::error::{HeaderError, InputError, PushError, RowError};
use super::progress::Progress;
use crate::api::streams::IngestResponse;
use crate::config::PushOptions;

/// A request is also cut at this many bytes of NDJSON, so a file of huge
/// batch-object lines still makes bounded requests.
pub const MAX_REQUEST_BYTES: usize = 16 * 1024 * 1024;

/// What `evald push` was asked to do.
#[derive(Debug, Clone)]
pub struct PushArgs {
    pub file: PathBuf,
    pub stream: String,
    pub url: String,
    /// `None`: decide from the file name (`.csv`, `.csv.gz` are CSV).
    pub csv: Option<bool>,
    pub quiet: bool,
    /// Lines (NDJSON) or rows (CSV) per request, at least 1.
    pub records_per_request: u64,
    /// First file line to send (1-based).
    pub from_line: u64,
}

impl From<PushOptions> for PushArgs {
    fn from(o: PushOptions) -> Self {
        PushArgs {
            file: o.file,
            stream: o.stream,
            url: o.url,
            csv: o.csv.then_some(true),
            quiet: o.quiet,
            records_per_request: o.records_per_request.max(1),
            from_line: o.from_line.max(1),
        }
    }
}

/// Input file formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Ndjson,
    Csv,
}

fn format_of(path: &Path, csv: Option<bool>) -> Format {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    let name = name.strip_suffix(".gz").unwrap_or(&name);
    match csv {
        Some(true) => Format::Csv,
        Some(false) => Format::Ndjson,
        None if name.ends_with(".csv") => Format::Csv,
        None => Format::Ndjson,
    }
}

/// Opens `path`, transparently gunzipping when it starts with the gzip
/// magic; `progress` counts the (compressed) bytes taken from the file.
fn open(path: &Path, progress: &Progress) -> io::Result<Box<dyn BufRead + Send>> {
    let mut file = BufReader::new(progress.wrap_read(File::open(path)?));
    let gzip = file.fill_buf()?.starts_with(&[0x1f, 0x8b]);
    Ok(if gzip {
        Box::new(BufReader::new(flate2::bufread::MultiGzDecoder::new(file)))
    } else {
        Box::new(file)
    })
}

/// Column positions of a CSV header.
#[derive(Debug, Clone, Copy)]
struct Columns {
    prediction: usize,
    label: usize,
    user_id: Option<usize>,
    weight: Option<usize>,
}

fn parse_header(header: &CsvRecord) -> Result<Columns, HeaderError> {
    let (mut prediction, mut label, mut user_id, mut weight) = (None, None, None, None);
    for (i, name) in header.fields.iter().map(|f| f.trim()).enumerate() {
        let slot = match name {
            "prediction" => &mut prediction,
            "label" => &mut label,
            "user_id" => &mut user_id,
            "weight" => &mut weight,
            other => return Err(HeaderError::UnknownColumn(other.to_owned())),
        };
        if slot.replace(i).is_some() {
            return Err(HeaderError::DuplicateColumn(name.to_owned()));
        }
    }
    Ok(Columns {
        prediction: prediction.ok_or(HeaderError::MissingColumn("prediction"))?,
        label: label.ok_or(HeaderError::MissingColumn("label"))?,
        user_id,
        weight,
    })
}

/// One CSV row as an NDJSON record line. Numbers are parsed and written back
/// in serde_json's shortest round-trip form, so what the server reads is the
/// very `f64` Rust parsed from the field (and `.5` or `1.` become valid JSON);
/// the user id is JSON-escaped.
fn csv_row_to_ndjson(cols: &Columns, row: &CsvRecord, out: &mut Vec<u8>) -> Result<(), RowError> {
    let line = row.line;
    let row = &row.fields;
    let raw = |i: usize, name: &'static str| {
        row.get(i).ok_or(RowError::MissingField {
            line,
            found: row.len(),
            name,
            column: i + 1,
        })
    };
    let get = |i: usize, name: &'static str| raw(i, name).map(|f| f.trim());
    let number = |value: &str, name: &'static str| {
        value
            .parse::<f64>()
            .ok()
            .filter(|x| x.is_finite())
            .and_then(|x| serde_json::to_string(&x).ok())
            .ok_or_else(|| RowError::NotFinite {
                line,
                name,
                value: value.to_owned(),
            })
    };
    let prediction = number(get(cols.prediction, "prediction")?, "prediction")?;
    let label = match get(cols.label, "label")? {
        "1" | "true" | "1.0" => "1",
        "0" | "false" | "0.0" => "0",
        other => {
            return Err(RowError::BadLabel {
                line,
                value: other.to_owned(),
            })
        }
    };
    let mut record = format!("{{\"prediction\":{prediction},\"label\":{label}");
    if let Some(i) = cols.user_id {
        let user = serde_json::Value::from(raw(i, "user_id")?.as_str()).to_string();
        record.push_str(&format!(",\"user_id\":{user}"));
    }
    if let Some(i) = cols.weight {
        let w = number(get(i, "weight")?, "weight")?;
        record.push_str(&format!(",\"weight\":{w}"));
    }
    record.push_str("}\n");
    out.extend_from_slice(record.as_bytes());
    Ok(())
}

/// One request's worth of NDJSON.
#[derive(Debug, Default)]
struct Chunk {
    body: Vec<u8>,
    /// The file line of each NDJSON line of `body` (a server error's `line`
    /// is 1-based within the request; CSV rows may span several file lines).
    lines: Vec<u64>,
}

impl Chunk {
    fn first_line(&self) -> Option<u64> {
        self.lines.first().copied()
    }

    fn last_line(&self) -> Option<u64> {
        self.lines.last().copied()
    }
}

/// What the reading thread hands to the sender, in file order.
#[derive(Debug)]
enum Produced {
    Chunk(Chunk),
    /// The file could not be read or converted; `resume_at` is the first
    /// line of the request that was being built (nothing from it was sent).
    Failed {
        error: InputError,
        resume_at: u64,
    },
}

/// Cuts NDJSON lines into [`Chunk`]s and hands them over.
struct Chunker<'a> {
    tx: &'a tokio::sync::mpsc::Sender<Produced>,
    per_request: usize,
    chunk: Chunk,
}

/// The sender hung up: it stopped on an error it reports itself.
struct Stopped;

impl Chunker<'_> {
    /// Adds one NDJSON line (written by `write`) that comes from `file_line`.
    fn push(
        &mut self,
        file_line: u64,
        write: impl FnOnce(&mut Vec<u8>) -> Result<(), RowError>,
    ) -> Result<Result<(), RowError>, Stopped> {
        if let Err(e) = write(&mut self.chunk.body) {
            return Ok(Err(e));
        }
        if self.chunk.body.last() != Some(&b'\n') {
            self.chunk.body.push(b'\n');
        }
        self.chunk.lines.push(file_line);
        if self.chunk.lines.len() >= self.per_request || self.chunk.body.len() >= MAX_REQUEST_BYTES
        {
            self.flush()?;
        }
        Ok(Ok(()))
    }

    fn flush(&mut self) -> Result<(), Stopped> {
        if self.chunk.lines.is_empty() {
            return Ok(());
        }
        let full = std::mem::take(&mut self.chunk);
        self.tx
            .blocking_send(Produced::Chunk(full))
            .map_err(|_| Stopped)
    }

    /// Reports a failure at `line`; the request being built is dropped.
    fn fail(self, error: InputError, line: u64) {
        let resume_at = self.chunk.first_line().unwrap_or(line).min(line);
        let _ = self.tx.blocking_send(Produced::Failed { error, resume_at });
    }
}

/// Reads the file, converting and cutting it into requests, until the end,
/// an error, or the sender hanging up. Runs on a blocking thread.
fn produce(args: &PushArgs, progress: &Progress, tx: tokio::sync::mpsc::Sender<Produced>) {
    let mut chunker = Chunker {
        tx: &tx,
        per_request: usize::try_from(args.records_per_request).unwrap_or(usize::MAX),
        chunk: Chunk::default(),
    };
    let outcome = match open(&args.file, progress) {
        Err(source) => Ok(Err((
            InputError::Open {
                path: args.file.display().to_string(),
                source,
            },
            1,
        ))),
        Ok(input) => match format_of(&args.file, args.csv) {
            Format::Ndjson => produce_ndjson(args, input, &mut chunker),
            Format::Csv => produce_csv(args, input, &mut chunker),
        },
    };
    match outcome {
        Ok(Ok(())) => {
            let _ = chunker.flush();
        }
        Ok(Err((error, line))) => chunker.fail(error, line),
        Err(Stopped) => {}
    }
}

/// `Ok(Err((error, file line)))` is a bad input; `Err(Stopped)` the sender hung up.
type Produce = Result<Result<(), (InputError, u64)>, Stopped>;

fn produce_ndjson(
    args: &PushArgs,
    mut input: Box<dyn BufRead + Send>,
    chunker: &mut Chunker<'_>,
) -> Produce {
    let mut line = Vec::new();
    let mut line_no = 0u64;
    loop {
        line.clear();
        match input.read_until(b'\n', &mut line) {
            Ok(0) => return Ok(Ok(())),
            Ok(_) => {}
            Err(source) => {
                let error = InputError::Read {
                    path: args.file.display().to_string(),
                    line: line_no,
                    source,
                };
                return Ok(Err((error, line_no + 1)));
            }
        }
        line_no += 1;
        // Blank lines are not sent (the server would skip them anyway).
        if line_no < args.from_line || line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let bytes = &line;
        if let Err(e) = chunker.push(line_no, |out| {
            out.extend_from_slice(bytes);
            Ok(())
        })? {
            return Ok(Err((e.into(), line_no)));
        }
    }
}

fn produce_csv(
    args: &PushArgs,
    input: Box<dyn BufRead + Send>,
    chunker: &mut Chunker<'_>,
) -> Produce {
    let mut reader = CsvReader::new(input);
    let columns = match reader.read_record() {
        Ok(None) => return Ok(Err((InputError::EmptyCsv, 1))),
        Ok(Some(h)) => match parse_header(&h) {
            Ok(c) => c,
            Err(source) => {
                let line = h.line;
                return Ok(Err((InputError::Header { line, source }, line)));
            }
        },
        Err(e) => {
            let line = e.line;
            return Ok(Err((csv_error(args, e), line)));
        }
    };
    loop {
        let row = match reader.read_record() {
            Ok(None) => return Ok(Ok(())),
            Ok(Some(row)) => row,
            Err(e) => {
                let line = e.line;
                return Ok(Err((csv_error(args, e), line)));
            }
        };
        if row.line < args.from_line {
            continue;
        }
        if let Err(e) = chunker.push(row.line, |out| csv_row_to_ndjson(&columns, &row, out))? {
            return Ok(Err((e.into(), row.line)));
        }
    }
}

fn csv_error(args: &PushArgs, source: super::csv::CsvError) -> InputError {
    InputError::Csv {
        path: args.file.display().to_string(),
        source,
    }
}

/// What was applied so far.
#[derive(Debug, Default, serde::Serialize)]
struct Applied {
    stream: String,
    /// Records added by this push.
    accepted: u64,
    /// Records in the stream after the last applied request.
    count: u64,
    users: usize,
    /// Requests applied.
    requests: u64,
    /// Last file line applied (0: none).
    #[serde(skip)]
    last_line: u64,
}

impl Applied {
    /// The sentence that says what is in the stream, and how to resume.
    fn resume_hint(&self, args: &PushArgs, resume_at: u64) -> String {
        let applied = if self.requests == 0 {
            format!("Nothing was applied to stream '{}'.", self.stream)
        } else {
            format!(
                "File lines up to {} ({} records in {} requests) were applied to stream '{}' (count now {}); nothing from line {resume_at} on was.",
                self.last_line, self.accepted, self.requests, self.stream, self.count
            )
        };
        format!(
            "{applied}\nFix the file, then resume with: evald push {} --stream {} --from-line {resume_at}",
            args.file.display(),
            args.stream
        )
    }
}

/// Runs `evald push`; prints the ingest summary and the stream's metrics.
///
/// # Errors
/// An error naming the file line and how to resume when a request is
/// refused or the file cannot be read; see the module docs.
pub async fn run(args: PushArgs) -> Result<(), PushError> {
    let total = std::fs::metadata(&args.file)
        .map_err(|source| InputError::Open {
            path: args.file.display().to_string(),
            source,
        })?
        .len();
    let base = args.url.trim_end_matches('/').to_owned();
    let progress = Progress::new(total, args.quiet);
    // One request queued while one is in flight and the next is being built.
    let (tx, rx) = tokio::sync::mpsc::channel::<Produced>(1);
    let producer = {
        let (args, progress) = (args.clone(), progress.clone());
        tokio::task::spawn_blocking(move || produce(&args, &progress, tx))
    };
    let client = reqwest::Client::new();
    let sent = send_all(&client, &base, &args, rx).await;
    progress.finish(sent.is_ok());
    // The producer stops by itself once the receiver is gone.
    let _ = producer.await;
    let applied = sent?;
    if applied.requests == 0 {
        return Err(PushError::NothingToSend {
            path: args.file.display().to_string(),
            from_line: args.from_line,
        });
    }
    print_json(&applied)?;
    let metrics = client
        .get(format!("{base}/streams/{}/metrics", args.stream))
        .send()
        .await
        .map_err(PushError::MetricsRequest)?;
    let status = metrics.status();
    let text = metrics.text().await.map_err(PushError::MetricsBody)?;
    let body: serde_json::Value =
        serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text));
    if !status.is_success() {
        return Err(PushError::MetricsStatus { status, body });
    }
    print_json(&body)?;
    Ok(())
}

/// Pretty-prints `value` on stdout. A closed pipe (`evald push ... | head`)
/// is not an error: the reader chose to stop reading.
fn print_json(value: &impl serde::Serialize) -> Result<(), PushError> {
    let text = serde_json::to_string_pretty(value)?;
    match writeln!(io::stdout().lock(), "{text}") {
        Err(e) if e.kind() != io::ErrorKind::BrokenPipe => Err(PushError::Stdout(e)),
        _ => Ok(()),
    }
}

/// Sends every chunk in order; stops at the first failure.
async fn send_all(
    client: &reqwest::Client,
    base: &str,
    args: &PushArgs,
    mut rx: tokio::sync::mpsc::Receiver<Produced>,
) -> Result<Applied, PushError> {
    let url = format!("{base}/streams/{}", args.stream);
    let mut applied = Applied {
        stream: args.stream.clone(),
        ..Applied::default()
    };
    while let Some(item) = rx.recv().await {
        let chunk = match item {
            Produced::Chunk(c) => c,
            Produced::Failed { error, resume_at } => {
                return Err(PushError::InputAfter {
                    source: error,
                    hint: applied.resume_hint(args, resume_at),
                });
            }
        };
        let (first, last) = (
            chunk.first_line().unwrap_or(0),
            chunk.last_line().unwrap_or(0),
        );
        let Chunk { body, lines } = chunk;
        let request = applied.requests + 1;
        let response = client
            .post(&url)
            .header("content-type", "application/x-ndjson")
            .body(body)
            .send()
            .await;
        let response = match response {
            Ok(r) => r,
            Err(source) => {
                return Err(PushError::Send {
                    url,
                    base: base.to_owned(),
                    request,
                    first,
                    last,
                    next: last + 1,
                    count_before: applied.count,
                    source,
                });
            }
        };
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        if status.is_success() {
            let reply: IngestResponse = match serde_json::from_str(&text) {
                Ok(reply) => reply,
                Err(source) => {
                    return Err(PushError::UnexpectedReply {
                        request,
                        first,
                        last,
                        status,
                        text,
                        source,
                    })
                }
            };
            applied.accepted += reply.accepted;
            applied.count = reply.count;
            applied.users = reply.users;
            applied.requests = request;
            applied.last_line = last;
            continue;
        }
        let problem: serde_json::Value =
            serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text));
        let detail = problem.get("detail").and_then(|d| d.as_str()).unwrap_or("");
        // The server numbers lines within the request; map back to the file.
        let at = problem
            .get("line")
            .and_then(serde_json::Value::as_u64)
            .and_then(|n| chunk_line(&lines, n))
            .map(|(n, file_line)| {
                format!("file line {file_line} (line {n} of request {request}): ")
            })
            .unwrap_or_else(|| format!("request {request} (file lines {first} to {last}): "));
        return Err(PushError::Refused {
            status,
            at,
            detail: detail.to_owned(),
            hint: applied.resume_hint(args, first),
            problem,
        });
    }
    Ok(applied)
}

/// `(n, file line)` of the request's 1-based line `n`.
fn chunk_line(lines: &[u64], n: u64) -> Option<(u64, u64)> {
    let i = usize::try_from(n.checked_sub(1)?).ok()?;
    lines.get(i).map(|&l| (n, l))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs the CSV reader over `text` and returns the NDJSON lines with their
    /// file lines, or the error with the line to resume at.
    fn csv_lines(
        text: &str,
        per_request: u64,
        from_line: u64,
    ) -> Result<Vec<(u64, String)>, (String, u64)> {
        let args = PushArgs {
            file: PathBuf::from("t.csv"),
            stream: "s".into(),
            url: String::new(),
            csv: Some(true),
            quiet: true,
            records_per_request: per_request,
            from_line,
        };
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .map_err(|e| (e.to_string(), 0))?;
        let (tx, mut rx) = tokio::sync::mpsc::channel(1000);
        let input: Box<dyn BufRead + Send> = Box::new(io::Cursor::new(text.as_bytes().to_vec()));
        let outcome = {
            let mut chunker = Chunker {
                tx: &tx,
                per_request: per_request as usize,
                chunk: Chunk::default(),
            };
            let r = produce_csv(&args, input, &mut chunker);
            if let Ok(Ok(())) = r {
                let _ = chunker.flush();
            }
            r
        };
        drop(tx);
        let mut out = Vec::new();
        rt.block_on(async {
            while let Some(Produced::Chunk(c)) = rx.recv().await {
                let body = String::from_utf8_lossy(&c.body).into_owned();
                for (line, text) in c.lines.iter().zip(body.lines()) {
                    out.push((*line, text.to_owned()));
                }
            }
        });
        match outcome {
            Ok(Ok(())) => Ok(out),
            Ok(Err((e, line))) => Err((e.to_string(), line)),
            Err(Stopped) => Err(("stopped".into(), 0)),
        }
    }

    #[test]
    fn quoted_csv_fields_keep_commas_quotes_and_line_breaks() {
        let text = "user_id,prediction,label,weight\r\n\
                    \"a,b\",0.25,1,2\r\n\
                    \"say \"\"hi\"\"\",.5,0,1.\r\n\
                    \r\n\
                    \"two\nlines\", 0.75 ,true,0.5\r\n\
                    \" x \",1e-3,false,3";
        let got = csv_lines(text, 100, 1).map_err(|e| e.0);
        let expected = vec![
            (
                2,
                r#"{"prediction":0.25,"label":1,"user_id":"a,b","weight":2.0}"#.to_owned(),
            ),
            (
                3,
                r#"{"prediction":0.5,"label":0,"user_id":"say \"hi\"","weight":1.0}"#.to_owned(),
            ),
            (
                5,
                r#"{"prediction":0.75,"label":1,"user_id":"two\nlines","weight":0.5}"#.to_owned(),
            ),
            (
                7,
                r#"{"prediction":0.001,"label":0,"user_id":" x ","weight":3.0}"#.to_owned(),
            ),
        ];
        assert_eq!(got, Ok(expected));
    }

    #[test]
    fn the_header_names_columns_in_any_order_and_unknown_or_missing_ones_are_refused() {
        let got = csv_lines("\u{feff}label,\"prediction\"\n1,0.5\n", 10, 1).map_err(|e| e.0);
        assert_eq!(
            got,
            Ok(vec![(2, r#"{"prediction":0.5,"label":1}"#.to_owned())])
        );
        for (header, needle) in [
            ("prediction,colour\n", "unknown column 'colour'"),
            ("prediction,user_id\n", "no 'label' column"),
            ("label,prediction,label\n", "'label' twice"),
            ("", "empty"),
        ] {
            match csv_lines(header, 10, 1) {
                Err((e, line)) => assert!(e.contains(needle) && line == 1, "{header}: {e}"),
                Ok(v) => panic!("accepted {header:?}: {v:?}"),
            }
        }
    }

    #[test]
    fn bad_csv_rows_are_reported_with_their_file_line() {
        for (row, needle) in [
            ("nan,1", "not a finite number"),
            ("0.5,2", "label '2'"),
            ("0.5", "has 1 columns"),
            ("\"0.5,1", "CSV line"),
        ] {
            let text = format!("prediction,label\n0.1,0\n\n{row}\n0.2,1\n");
            match csv_lines(&text, 1, 1) {
                Err((e, line)) => {
                    assert!(e.contains("line 4") && e.contains(needle), "{row}: {e}");
                    assert_eq!(line, 4, "{row}: resume at the failed request's first line");
                }
                Ok(v) => panic!("accepted {row}: {v:?}"),
            }
        }
    }

    #[test]
    fn rows_are_cut_into_requests_and_from_line_skips_the_applied_ones() {
        let text: String = std::iter::once("prediction,label\n".to_owned())
            .chain((0..7).map(|i| format!("0.{i},{}\n", i % 2)))
            .collect();
        let all = csv_lines(&text, 3, 1).unwrap_or_default();
        assert_eq!(
            all.iter().map(|l| l.0).collect::<Vec<_>>(),
            (2..=8).collect::<Vec<_>>()
        );
        let rest = csv_lines(&text, 3, 6).unwrap_or_default();
        assert_eq!(rest.iter().map(|l| l.0).collect::<Vec<_>>(), vec![6, 7, 8]);
    }

    #[test]
    fn server_lines_map_to_file_lines() {
        let lines = [4, 5, 9];
        assert_eq!(chunk_line(&lines, 3), Some((3, 9)));
        assert_eq!(chunk_line(&lines, 0), None);
        assert_eq!(chunk_line(&lines, 4), None);
    }

    #[test]
    fn format_follows_the_file_name_unless_forced() {
        assert_eq!(format_of(Path::new("a/b.csv.gz"), None), Format::Csv);
        assert_eq!(format_of(Path::new("b.ndjson"), None), Format::Ndjson);
        assert_eq!(format_of(Path::new("b.txt"), Some(true)), Format::Csv);
    }
}
