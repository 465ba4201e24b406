//! Why `evald push` stops: typed errors whose messages name the file line
//! and, once something was sent, say what was applied and how to resume.

use std::io;

use super::csv::CsvError;

/// A CSV header row `evald push` cannot use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    #[error("CSV header has unknown column '{0}'; expected prediction, label, user_id, weight")]
    UnknownColumn(String),
    #[error("CSV header names the column '{0}' twice")]
    DuplicateColumn(String),
    #[error("CSV header has no '{0}' column")]
    MissingColumn(&'static str),
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

/// Why `evald push` failed. The variants raised after the first request
/// carry the resume hint (what was applied, and the `--from-line` to use).
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    /// Found before anything was sent.
    #[error(transparent)]
    Input(#[from] InputError),
    #[error("{source}\n{hint}")]
    InputAfter { source: InputError, hint: String },
    #[error(
        "POST {url} failed during request {request} (file lines {first} to {last}): {source}\n\
         That request may or may not have been applied: the stream had {count_before} records before it. \
         Check GET {base}/streams, then resume with --from-line {first} (not applied) or --from-line {next} (applied)."
    )]
    Send {
        url: String,
        base: String,
        request: u64,
        first: u64,
        last: u64,
        /// The line after `last`.
        next: u64,
        count_before: u64,
        source: reqwest::Error,
    },
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
