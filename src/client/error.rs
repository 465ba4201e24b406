//! Why `evald push` stops: typed errors whose messages name the file line
//! and, once something was sent, say what was applied and how to resume.

use std::io;

use super::csv::CsvError;

/// A CSV/TSV header row `evald push` cannot use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    #[error("{flag} '{name}' names no column; the header has {header}")]
    NoSuchColumn {
        flag: &'static str,
        name: String,
        header: String,
    },
    #[error("both '{first}' and '{second}' could be the {role} column; choose one with {flag}")]
    Ambiguous {
        role: &'static str,
        first: String,
        second: String,
        flag: &'static str,
    },
    #[error("column '{column}' cannot be both the {first} and the {second}")]
    TwoRoles {
        column: String,
        first: &'static str,
        second: &'static str,
    },
    #[error("the header has no {role} column (looked for {aliases}); name it with {flag}")]
    MissingColumn {
        role: &'static str,
        aliases: String,
        flag: &'static str,
    },
}

/// A CSV row that cannot be converted to an NDJSON record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RowError {
    #[error("CSV line {line} has {found} columns; {name} is column {column}")]
    MissingField {
        line: u64,
        found: usize,
        name: &'static str,
        /// 1-based.
        column: usize,
    },
    #[error("CSV line {line}: {name} '{value}' is not a finite number")]
    NotFinite {
        line: u64,
        name: &'static str,
        value: String,
    },
    #[error("CSV line {line}: label '{value}' must be 0, 1, false or true")]
    BadLabel { line: u64, value: String },
}

/// The input file could not be read or converted.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("cannot open {path}: {source}")]
    Open { path: String, source: io::Error },
    #[error("cannot read {path} after line {line}: {source}")]
    Read {
        path: String,
        line: u64,
        source: io::Error,
    },
    #[error("the CSV file is empty (no header row)")]
    EmptyCsv,
    #[error("CSV line {line}: {source}")]
    Header { line: u64, source: HeaderError },
    #[error("{path}: {source}")]
    Csv { path: String, source: CsvError },
    #[error(transparent)]
    Row(#[from] RowError),
}

/// One bad line: its file line and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadLine {
    pub line: u64,
    /// Names the line (the server's and the CSV converter's messages do).
    pub message: String,
}

impl BadLine {
    /// `message` about file line `line`, prefixed with "line N: " unless it
    /// names the line already.
    pub fn new(line: u64, message: String) -> Self {
        let message = if message.contains(&format!("line {line}")) {
            message
        } else {
            format!("line {line}: {message}")
        };
        BadLine { line, message }
    }
}

/// `lines` as one message line each.
fn list(lines: &[BadLine]) -> String {
    lines
        .iter()
        .map(|b| format!("  {}", b.message))
        .collect::<Vec<_>>()
        .join("\n")
}

/// "" or " (stopped after N; --max-errors raises the limit)".
fn cut_note(lines: &[BadLine], limit: u64) -> String {
    if lines.len() as u64 >= limit {
        format!(" (stopped looking after {limit}; --max-errors raises the limit)")
    } else {
        String::new()
    }
}

/// A request whose connection failed: it may or may not have been applied.
#[derive(Debug, thiserror::Error)]
#[error(
    "POST {url} failed during request {request} (file lines {first} to {last}): {reason}\n\
     That request may or may not have been applied: the stream had {count_before} records before it. \
     Check GET {base}/streams/{stream}/metrics (count), then resume with\n  {resume_first}\nif it was not applied, or\n  {resume_next}\nif it was."
)]
pub struct SendFailure {
    pub url: String,
    pub base: String,
    pub stream: String,
    pub request: u64,
    pub first: u64,
    pub last: u64,
    pub count_before: u64,
    pub reason: String,
    /// The command that resumes at `first`.
    pub resume_first: String,
    /// The command that resumes after `last`.
    pub resume_next: String,
}

/// Why `evald push` failed. The variants raised after the first request
/// carry the resume hint (what was applied, and the `--from-line` to use).
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    /// Found before anything was sent.
    #[error(transparent)]
    Input(#[from] InputError),
    #[error("{source}\n{hint}")]
    InputAfter { source: InputError, hint: String },
    /// Lines the server's record rules refuse, found by the client before
    /// their request was sent.
    #[error("{} bad line(s){}:\n{}\n{hint}", lines.len(), cut_note(lines, *limit), list(lines))]
    BadLines {
        lines: Vec<BadLine>,
        limit: u64,
        hint: String,
    },
    /// `--dry-run` found bad lines.
    #[error("dry run: {} bad line(s){}:\n{}\nNothing was sent.", lines.len(), cut_note(lines, *limit), list(lines))]
    DryRunBadLines { lines: Vec<BadLine>, limit: u64 },
    #[error("--url '{url}': {reason}")]
    Url { url: String, reason: String },
    #[error("cannot connect to {url}: {reason}\nNothing was sent. Is `evald serve` running there (and is --url right)?")]
    Connect { url: String, reason: String },
    #[error(
        "{flags} name CSV/TSV columns; {path} is read as NDJSON (choose the format with --format)"
    )]
    ColumnFlagsOnNdjson { flags: String, path: String },
    /// The connection failed while a request was in flight (boxed: the
    /// largest variant, kept off every `Result` of the client).
    #[error(transparent)]
    Send(Box<SendFailure>),
    #[error("request {request} (file lines {first} to {last}) was answered {status} with an unexpected body ({source}): {text}")]
    UnexpectedReply {
        request: u64,
        first: u64,
        last: u64,
        status: reqwest::StatusCode,
        text: String,
        source: serde_json::Error,
    },
    /// `at` names the file line (or the request's lines), `problem` is the
    /// server's problem+json body.
    #[error("server answered {status} to {at}{detail}\n{problem}\n{hint}")]
    Refused {
        status: reqwest::StatusCode,
        at: String,
        detail: String,
        problem: serde_json::Value,
        hint: String,
    },
    #[error("{path} has no records from line {from_line} on; nothing was sent")]
    NothingToSend { path: String, from_line: u64 },
    #[error("GET metrics failed: {0}")]
    MetricsRequest(reqwest::Error),
    /// The metrics reply could not be read.
    #[error(transparent)]
    MetricsBody(reqwest::Error),
    #[error("GET metrics answered {status}: {body}")]
    MetricsStatus {
        status: reqwest::StatusCode,
        body: serde_json::Value,
    },
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    #[error("cannot write to stdout: {0}")]
    Stdout(io::Error),
}
