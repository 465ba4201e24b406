//! `evald push`: stream a local NDJSON, CSV or TSV file into a stream.
//!
//! Before anything is read the server is asked for `/healthz`, so a wrong
//! `--url` or a server that is not running is reported as such, before any
//! progress output. The file is then read on a blocking thread, converted to
//! NDJSON when it is CSV/TSV, checked line by line with the server's own
//! record rules ([`crate::api::streams::ndjson::parse_line`]), and cut into
//! requests of at most `--records-per-request` lines (records or batch
//! objects; default 100,000) or [`MAX_REQUEST_BYTES`], whichever comes first.
//! The server stages a whole request before applying it atomically, so it is
//! the request size, not the file size, that bounds the server's staging
//! memory; the client holds at most three requests' worth at once (the one
//! in flight, one queued, one being built).
//!
//! Requests are sent one after another, in file order. At the first bad line
//! nothing more is sent (the request holding it included); reading goes on
//! only to report up to `--max-errors` bad lines, each with its file line.
//! The earlier requests stay applied: the error says what was applied and
//! repeats the whole command with the `--from-line` that resumes exactly
//! after the applied part. `--dry-run` does the reading and checking only.
//!
//! A progress bar on stderr ([`super::progress`]) shows the file's bytes
//! read (compressed bytes for `.gz`), percent, the records applied and the
//! rate. At the end a short summary of `GET /streams/{name}/metrics` is
//! printed on stdout ([`super::summary`]); `--json` prints the full answers.
//!
//! CSV is RFC 4180 (read by [`super::csv`]), TSV the same with tabs: a header
//! row names the columns, matched to prediction, label, user id and weight by
//! [`super::columns`] (aliases such as `score`, `click`, `uid`, or the
//! `--*-col` flags); other columns are ignored with a note. Fields may be
//! double-quoted, with `""` for a quote, delimiters and line breaks inside
//! quotes; CRLF or LF line ends; blank lines are skipped; spaces around
//! numbers and labels are ignored, a user id is taken verbatim.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::columns::{map_header, ColumnFlags, Columns, Role};
use super::csv::{CsvReader, CsvRecord};
use super::error::{BadLine, InputError, PushError, RowError, SendFailure};
use super::progress::Progress;
use crate::api::streams::ndjson::parse_line;
use crate::api::streams::IngestResponse;
use crate::config::{PushFormat, PushOptions};
use crate::state::BatchBuilder;

/// A request is also cut at this many bytes of NDJSON, so a file of huge
/// batch-object lines still makes bounded requests.
pub const MAX_REQUEST_BYTES: usize = 16 * 1024 * 1024;

/// How long `push` waits for a TCP (and TLS) connection before it says the
/// server cannot be reached.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The `--url` default (the resume hint leaves it out when unchanged).
const DEFAULT_URL: &str = "http://127.0.0.1:8080";

/// What `evald push` was asked to do.
#[derive(Debug, Clone)]
pub struct PushArgs {
    pub file: PathBuf,
    pub stream: String,
    pub url: String,
    /// `None`: decide from the file name.
    pub format: Option<PushFormat>,
    pub columns: ColumnFlags,
    /// Bad lines reported before giving up, at least 1.
    pub max_errors: u64,
    pub dry_run: bool,
    pub json: bool,
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
            format: o.format.or(o.csv.then_some(PushFormat::Csv)),
            columns: ColumnFlags {
                prediction: o.prediction_col,
                label: o.label_col,
                user_id: o.user_col,
                weight: o.weight_col,
            },
            max_errors: o.max_errors.max(1),
            dry_run: o.dry_run,
            json: o.json,
            quiet: o.quiet,
            records_per_request: o.records_per_request.max(1),
            from_line: o.from_line.max(1),
        }
    }
}

impl PushArgs {
    /// The command that runs this push again from `from_line`: every flag
    /// that shapes what is sent where, each argument shell-quoted.
    pub fn command_from(&self, from_line: u64) -> String {
        let mut words: Vec<String> = vec![
            "evald".into(),
            "push".into(),
            self.file.display().to_string(),
            "--stream".into(),
            self.stream.clone(),
        ];
        let mut flag = |name: &str, value: String| {
            words.push(name.to_owned());
            words.push(value);
        };
        if self.url != DEFAULT_URL {
            flag("--url", self.url.clone());
        }
        if let Some(format) = self.format {
            flag("--format", format_name(format).to_owned());
        }
        for role in Role::ALL {
            if let Some(column) = self.columns.get(role) {
                flag(role.flag(), column.to_owned());
            }
        }
        if self.records_per_request != 100_000 {
            flag(
                "--records-per-request",
                self.records_per_request.to_string(),
            );
        }
        flag("--from-line", from_line.to_string());
        words
            .iter()
            .map(|w| shell_quote(w))
            .collect::<Vec<_>>()
            .join(" ")
    }

    fn path(&self) -> String {
        self.file.display().to_string()
    }
}

fn format_name(format: PushFormat) -> &'static str {
    match format {
        PushFormat::Ndjson => "ndjson",
        PushFormat::Csv => "csv",
        PushFormat::Tsv => "tsv",
    }
}

/// `word` as a POSIX shell reads it back: unchanged when it has only safe
/// characters, else in single quotes.
fn shell_quote(word: &str) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || "-_./:=@%+,".contains(c);
    if !word.is_empty() && word.chars().all(safe) {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// The format `--format` names, else the one the file name says (`.gz`
/// stripped): `.csv` CSV, `.tsv` / `.tab` TSV, anything else NDJSON.
pub fn format_of(path: &Path, format: Option<PushFormat>) -> PushFormat {
    if let Some(format) = format {
        return format;
    }
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    let name = name.strip_suffix(".gz").unwrap_or(&name);
    if name.ends_with(".csv") {
        PushFormat::Csv
    } else if name.ends_with(".tsv") || name.ends_with(".tab") {
        PushFormat::Tsv
    } else {
        PushFormat::Ndjson
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

/// Why reading stopped short of a clean end.
#[derive(Debug)]
enum Failure {
    /// The file could not be read, or its CSV header / quoting is unusable.
    Input(InputError),
    /// Lines the record rules refuse (at most `--max-errors`).
    BadLines(Vec<BadLine>),
}

/// What the reading thread hands to the sender, in file order.
#[derive(Debug)]
enum Produced {
    Chunk(Chunk),
    /// `resume_at` is the first line of the request that was being built
    /// when the first problem was found (nothing from it was sent).
    Failed {
        failure: Failure,
        resume_at: u64,
    },
}

/// Why the reader stops early.
enum Halt {
    /// The sender hung up: it stopped on an error it reports itself.
    Stopped,
    /// `--max-errors` bad lines were found.
    Enough,
}

/// Checks NDJSON lines, cuts them into [`Chunk`]s and hands them over;
/// after the first bad line it only collects further bad lines.
struct Chunker<'a> {
    /// `None` for a dry run: checked chunks are counted and dropped.
    tx: Option<&'a tokio::sync::mpsc::Sender<Produced>>,
    per_request: usize,
    chunk: Chunk,
    /// The server's staging, used to check each line exactly as it will.
    check: BatchBuilder,
    /// Records in the chunks handed over (batch objects count their records).
    records: u64,
    bad: Vec<BadLine>,
    max_errors: usize,
    /// First line of the request the first bad line was in.
    resume_at: Option<u64>,
    progress: &'a Progress,
}

impl<'a> Chunker<'a> {
    fn new(
        args: &PushArgs,
        tx: Option<&'a tokio::sync::mpsc::Sender<Produced>>,
        progress: &'a Progress,
    ) -> Self {
        Chunker {
            tx,
            per_request: usize::try_from(args.records_per_request).unwrap_or(usize::MAX),
            chunk: Chunk::default(),
            check: BatchBuilder::new(),
            records: 0,
            bad: Vec::new(),
            max_errors: usize::try_from(args.max_errors).unwrap_or(usize::MAX),
            resume_at: None,
            progress,
        }
    }

    /// Adds one NDJSON line (written by `write`) that comes from `file_line`,
    /// once the record rules accept it.
    fn push(
        &mut self,
        file_line: u64,
        write: impl FnOnce(&mut Vec<u8>) -> Result<(), RowError>,
    ) -> Result<(), Halt> {
        let start = self.chunk.body.len();
        let checked = write(&mut self.chunk.body)
            .map_err(|e| e.to_string())
            .and_then(|()| {
                let line = self.chunk.body.get(start..).unwrap_or_default();
                parse_line(&mut self.check, file_line, line).map_err(|e| e.detail)
            });
        if let Err(message) = checked {
            self.chunk.body.truncate(start);
            return self.bad_line(file_line, message);
        }
        if !self.bad.is_empty() {
            // Nothing after the first bad line is sent; the lines are only
            // checked, so the staging is emptied now and then.
            self.chunk.body.truncate(start);
            if self.check.len() >= self.per_request {
                self.check = BatchBuilder::new();
            }
            return Ok(());
        }
        if self.chunk.body.last() != Some(&b'\n') {
            self.chunk.body.push(b'\n');
        }
        self.chunk.lines.push(file_line);
        if self.chunk.lines.len() >= self.per_request || self.chunk.body.len() >= MAX_REQUEST_BYTES
        {
            self.flush()?;
        }
        Ok(())
    }

    fn bad_line(&mut self, line: u64, message: String) -> Result<(), Halt> {
        if self.bad.is_empty() {
            self.resume_at = Some(self.chunk.first_line().unwrap_or(line).min(line));
            self.chunk = Chunk::default();
        }
        self.bad.push(BadLine::new(line, message));
        if self.bad.len() >= self.max_errors {
            Err(Halt::Enough)
        } else {
            Ok(())
        }
    }

    fn flush(&mut self) -> Result<(), Halt> {
        let staged = std::mem::take(&mut self.check);
        if self.chunk.lines.is_empty() || !self.bad.is_empty() {
            return Ok(());
        }
        self.records += staged.len() as u64;
        let full = std::mem::take(&mut self.chunk);
        match self.tx {
            Some(tx) => tx
                .blocking_send(Produced::Chunk(full))
                .map_err(|_| Halt::Stopped),
            None => {
                self.progress.set_records(self.records);
                Ok(())
            }
        }
    }

    /// The outcome once reading stopped: `fatal` is an error that ended it.
    fn finish(mut self, fatal: Option<(InputError, u64)>) -> Read {
        let failure = match fatal {
            Some((error, line)) => {
                let resume_at = self
                    .resume_at
                    .or(self.chunk.first_line())
                    .unwrap_or(line)
                    .min(line);
                Some((Failure::Input(error), resume_at))
            }
            None if !self.bad.is_empty() => {
                let resume_at = self.resume_at.unwrap_or(1);
                Some((Failure::BadLines(std::mem::take(&mut self.bad)), resume_at))
            }
            None => match self.flush() {
                Ok(()) => None,
                // The sender reports why it stopped.
                Err(_) => None,
            },
        };
        Read {
            records: self.records,
            failure,
        }
    }
}

/// What reading the file came to.
struct Read {
    /// Records handed over (or, in a dry run, checked).
    records: u64,
    /// What stopped it and the line to resume at.
    failure: Option<(Failure, u64)>,
}

/// Reads the file, converting, checking and cutting it into requests, until
/// the end, a fatal error, `--max-errors` bad lines, or the sender hanging
/// up. Runs on a blocking thread.
fn produce(
    args: &PushArgs,
    progress: &Progress,
    tx: Option<&tokio::sync::mpsc::Sender<Produced>>,
) -> Read {
    let mut chunker = Chunker::new(args, tx, progress);
    let fatal = match open(&args.file, progress) {
        Err(source) => Some((
            InputError::Open {
                path: args.path(),
                source,
            },
            1,
        )),
        Ok(input) => {
            let outcome = match format_of(&args.file, args.format) {
                PushFormat::Ndjson => produce_ndjson(args, input, &mut chunker),
                PushFormat::Csv => produce_csv(args, CsvReader::new(input), &mut chunker),
                PushFormat::Tsv => {
                    produce_csv(args, CsvReader::with_delimiter(input, b'\t'), &mut chunker)
                }
            };
            match outcome {
                Ok(()) | Err(Step::Halt) => None,
                Err(Step::Fatal(error, line)) => Some((error, line)),
            }
        }
    };
    chunker.finish(fatal)
}

/// Why a reading loop ended early.
enum Step {
    /// Stopped on purpose ([`Halt`]); the chunker knows why.
    Halt,
    /// An error that ends reading, and its file line.
    Fatal(InputError, u64),
}

impl From<Halt> for Step {
    fn from(_: Halt) -> Self {
        Step::Halt
    }
}

fn produce_ndjson(
    args: &PushArgs,
    mut input: Box<dyn BufRead + Send>,
    chunker: &mut Chunker<'_>,
) -> Result<(), Step> {
    let mut line = Vec::new();
    let mut line_no = 0u64;
    loop {
        line.clear();
        match input.read_until(b'\n', &mut line) {
            Ok(0) => return Ok(()),
            Ok(_) => {}
            Err(source) => {
                let error = InputError::Read {
                    path: args.path(),
                    line: line_no,
                    source,
                };
                return Err(Step::Fatal(error, line_no + 1));
            }
        }
        line_no += 1;
        // Blank lines are not sent (the server would skip them anyway).
        if line_no < args.from_line || line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let bytes = &line;
        chunker.push(line_no, |out| {
            out.extend_from_slice(bytes);
            Ok(())
        })?;
    }
}

fn produce_csv<R: BufRead>(
    args: &PushArgs,
    mut reader: CsvReader<R>,
    chunker: &mut Chunker<'_>,
) -> Result<(), Step> {
    let columns = match reader.read_record() {
        Ok(None) => return Err(Step::Fatal(InputError::EmptyCsv, 1)),
        Ok(Some(h)) => map_header(&h, &args.columns).map_err(|source| {
            let line = h.line;
            Step::Fatal(InputError::Header { line, source }, line)
        })?,
        Err(e) => {
            let line = e.line;
            return Err(Step::Fatal(csv_error(args, e), line));
        }
    };
    if !columns.ignored.is_empty() {
        chunker.progress.note(&format!(
            "note: ignoring column(s) {} (not prediction, label, user id or weight; see --help for the names and --*-col flags)",
            columns
                .ignored
                .iter()
                .map(|c| format!("'{c}'"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    loop {
        let row = match reader.read_record() {
            Ok(None) => return Ok(()),
            Ok(Some(row)) => row,
            Err(e) => {
                let line = e.line;
                return Err(Step::Fatal(csv_error(args, e), line));
            }
        };
        if row.line < args.from_line {
            continue;
        }
        chunker.push(row.line, |out| csv_row_to_ndjson(&columns, &row, out))?;
    }
}

fn csv_error(args: &PushArgs, source: super::csv::CsvError) -> InputError {
    InputError::Csv {
        path: args.path(),
        source,
    }
}

/// What was applied so far.
#[derive(Debug, Default, serde::Serialize)]
pub struct Applied {
    pub stream: String,
    /// Records added by this push.
    pub accepted: u64,
    /// Records in the stream after the last applied request.
    pub count: u64,
    pub users: usize,
    /// Requests applied.
    pub requests: u64,
    /// Last file line applied (0: none).
    #[serde(skip)]
    pub last_line: u64,
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
            "{applied}\nFix the file, then resume with:\n  {}",
            args.command_from(resume_at)
        )
    }
}

/// Runs `evald push`; prints a summary of the stream's metrics (or, with
/// `--json`, the ingest summary and the metrics as JSON).
///
/// # Errors
/// When the server cannot be reached (before anything is read), or, naming
/// the file lines and how to resume, when lines are bad, a request is
/// refused or the file cannot be read; see the module docs.
pub async fn run(args: PushArgs) -> Result<(), PushError> {
    let total = std::fs::metadata(&args.file)
        .map_err(|source| InputError::Open {
            path: args.path(),
            source,
        })?
        .len();
    let format = format_of(&args.file, args.format);
    if format == PushFormat::Ndjson && args.columns.any() {
        let flags: Vec<&str> = Role::ALL
            .iter()
            .filter(|r| args.columns.get(**r).is_some())
            .map(|r| r.flag())
            .collect();
        return Err(PushError::ColumnFlagsOnNdjson {
            flags: flags.join(", "),
            path: args.path(),
        });
    }
    if args.dry_run {
        return dry_run(args, total).await;
    }
    let base = args.url.trim_end_matches('/').to_owned();
    let client = connect(&base).await?;
    let progress = Progress::new(total, args.quiet);
    // One request queued while one is in flight and the next is being built.
    let (tx, rx) = tokio::sync::mpsc::channel::<Produced>(1);
    let producer = {
        let (args, progress) = (args.clone(), progress.clone());
        tokio::task::spawn_blocking(move || {
            let read = produce(&args, &progress, Some(&tx));
            if let Some((failure, resume_at)) = read.failure {
                let _ = tx.blocking_send(Produced::Failed { failure, resume_at });
            }
        })
    };
    let sent = send_all(&client, &base, &args, &progress, rx).await;
    progress.finish(sent.is_ok());
    // The producer stops by itself once the receiver is gone.
    let _ = producer.await;
    let applied = sent?;
    if applied.requests == 0 {
        return Err(PushError::NothingToSend {
            path: args.path(),
            from_line: args.from_line,
        });
    }
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
    if args.json {
        let both = serde_json::json!({"push": applied, "metrics": body});
        print(&serde_json::to_string_pretty(&both)?)
    } else {
        print(&super::summary::table(&applied, &body))
    }
}

/// `--dry-run`: read and check the whole file, send nothing.
async fn dry_run(args: PushArgs, total: u64) -> Result<(), PushError> {
    let progress = Progress::new(total, args.quiet);
    let read = {
        let (args, progress) = (args.clone(), progress.clone());
        tokio::task::spawn_blocking(move || produce(&args, &progress, None))
            .await
            .map_err(|e| PushError::Stdout(io::Error::other(e)))?
    };
    progress.finish(read.failure.is_none());
    match read.failure {
        None => print(&format!(
            "dry run: {} records in {} pass the server's record rules; nothing was sent",
            read.records,
            args.path()
        )),
        Some((Failure::BadLines(lines), _)) => Err(PushError::DryRunBadLines {
            lines,
            limit: args.max_errors,
        }),
        Some((Failure::Input(error), _)) => Err(PushError::Input(error)),
    }
}

/// A client for `base`, once `GET /healthz` got an answer: a wrong URL or a
/// server that is not running is reported before anything is read.
async fn connect(base: &str) -> Result<reqwest::Client, PushError> {
    let url_error = |reason: String| PushError::Url {
        url: base.to_owned(),
        reason,
    };
    let parsed = reqwest::Url::parse(base).map_err(|e| {
        url_error(format!(
            "{e}; expected http://host:port or https://host[:port]"
        ))
    })?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(url_error(format!(
            "the scheme '{}' is not supported; use http:// or https://",
            parsed.scheme()
        )));
    }
    let client = reqwest::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .build()
        .map_err(|e| url_error(error_chain(&e)))?;
    match client.get(format!("{base}/healthz")).send().await {
        Ok(_) => Ok(client),
        Err(e) => Err(PushError::Connect {
            url: base.to_owned(),
            reason: connect_reason(&e),
        }),
    }
}

/// "connection refused" (or timed out, ...) when that is what happened,
/// else the whole error chain (DNS and TLS errors say what they are).
fn connect_reason(e: &reqwest::Error) -> String {
    use std::error::Error;
    let mut source: Option<&(dyn Error + 'static)> = Some(e);
    while let Some(err) = source {
        if let Some(io) = err.downcast_ref::<io::Error>() {
            match io.kind() {
                io::ErrorKind::ConnectionRefused => return "connection refused".to_owned(),
                io::ErrorKind::TimedOut => return "connection timed out".to_owned(),
                _ => {}
            }
        }
        source = err.source();
    }
    if e.is_timeout() {
        return format!("no connection within {} s", CONNECT_TIMEOUT.as_secs());
    }
    error_chain(e)
}

/// `e` and its sources, joined by ": " (reqwest's own message is only the
/// outermost, e.g. "error sending request").
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![e.to_string()];
    let mut source = e.source();
    while let Some(err) = source {
        let text = err.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = err.source();
    }
    parts.join(": ")
}

/// Writes `text` and a newline on stdout. A closed pipe (`evald push ... |
/// head`) is not an error: the reader chose to stop reading.
fn print(text: &str) -> Result<(), PushError> {
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
    progress: &Progress,
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
            Produced::Failed { failure, resume_at } => {
                let hint = applied.resume_hint(args, resume_at);
                return Err(match failure {
                    Failure::Input(source) => PushError::InputAfter { source, hint },
                    Failure::BadLines(lines) => PushError::BadLines {
                        lines,
                        limit: args.max_errors,
                        hint,
                    },
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
                return Err(PushError::Send(Box::new(SendFailure {
                    url,
                    base: base.to_owned(),
                    stream: args.stream.clone(),
                    request,
                    first,
                    last,
                    count_before: applied.count,
                    reason: connect_reason(&source),
                    resume_first: args.command_from(first),
                    resume_next: args.command_from(last + 1),
                })));
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
            progress.set_records(applied.accepted);
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

    fn args(name: &str, per_request: u64, from_line: u64) -> PushArgs {
        PushArgs {
            file: PathBuf::from(name),
            stream: "s".into(),
            url: DEFAULT_URL.into(),
            format: None,
            columns: ColumnFlags::default(),
            max_errors: 10,
            dry_run: false,
            json: false,
            quiet: true,
            records_per_request: per_request,
            from_line,
        }
    }

    /// Runs the CSV reader over `text` and returns the NDJSON lines with their
    /// file lines, or the error with the line to resume at.
    fn csv_lines(
        text: &str,
        per_request: u64,
        from_line: u64,
    ) -> Result<Vec<(u64, String)>, (String, u64)> {
        let args = args("t.csv", per_request, from_line);
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .map_err(|e| (e.to_string(), 0))?;
        let (tx, mut rx) = tokio::sync::mpsc::channel(1000);
        let progress = Progress::new(0, true);
        let read = {
            let mut chunker = Chunker::new(&args, Some(&tx), &progress);
            let fatal = match produce_csv(&args, CsvReader::new(text.as_bytes()), &mut chunker) {
                Err(Step::Fatal(e, line)) => Some((e, line)),
                _ => None,
            };
            chunker.finish(fatal)
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
        match read.failure {
            None => Ok(out),
            Some((Failure::Input(e), line)) => Err((e.to_string(), line)),
            Some((Failure::BadLines(bad), line)) => {
                let text: Vec<String> = bad.into_iter().map(|b| b.message).collect();
                Err((text.join("\n"), line))
            }
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
    fn the_header_names_columns_in_any_order_and_missing_or_ambiguous_ones_are_refused() {
        let got = csv_lines("\u{feff}label,\"prediction\"\n1,0.5\n", 10, 1).map_err(|e| e.0);
        assert_eq!(
            got,
            Ok(vec![(2, r#"{"prediction":0.5,"label":1}"#.to_owned())])
        );
        for (header, needle) in [
            ("prediction,colour\n", "no label column"),
            ("prediction,user_id\n", "no label column"),
            ("label,prediction,label\n", "both 'label' and 'label'"),
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
        assert_eq!(format_of(Path::new("a/b.csv.gz"), None), PushFormat::Csv);
        assert_eq!(format_of(Path::new("b.TSV"), None), PushFormat::Tsv);
        assert_eq!(format_of(Path::new("b.tab.gz"), None), PushFormat::Tsv);
        assert_eq!(format_of(Path::new("b.ndjson"), None), PushFormat::Ndjson);
        assert_eq!(
            format_of(Path::new("b.txt"), Some(PushFormat::Csv)),
            PushFormat::Csv
        );
    }

    #[test]
    fn bad_lines_are_collected_up_to_the_limit_and_nothing_after_the_first_is_sent() {
        let text = "score,label\n0.1,0\n0.2,7\n0.3,1\nx,1\n0.4,1\nnan,0\n";
        match csv_lines(text, 1, 1) {
            Err((e, resume)) => {
                assert_eq!(resume, 3, "{e}");
                let lines: Vec<&str> = e.lines().collect();
                assert_eq!(lines.len(), 3, "{e}");
                assert!(
                    lines[0].contains("line 3") && lines[1].contains("line 5"),
                    "{e}"
                );
                assert!(lines[2].contains("line 7"), "{e}");
            }
            Ok(v) => panic!("accepted: {v:?}"),
        }
    }

    #[test]
    fn the_resume_command_repeats_every_flag_that_shapes_the_push() {
        let mut a = args("my data.csv", 500, 1);
        a.url = "https://evald.example:8443".into();
        a.format = Some(PushFormat::Tsv);
        a.columns.label = Some("it's".into());
        assert_eq!(
            a.command_from(42),
            "evald push 'my data.csv' --stream s --url https://evald.example:8443 --format tsv \
             --label-col 'it'\\''s' --records-per-request 500 --from-line 42"
        );
    }
}
