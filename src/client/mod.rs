//! Command-line clients of the service.
//!
//! - [`push`]: `evald push FILE --stream NAME --url URL` streams a local
//!   NDJSON, CSV or TSV file (optionally gzip-compressed) into a stream and
//!   prints a summary of the resulting metrics.
//! - [`csv`]: the RFC 4180 reader `push` uses, with exact record line numbers.
//! - [`columns`]: which CSV/TSV column is the prediction, label, user, weight.
//! - [`progress`]: `push`'s progress bar on stderr.
//! - [`summary`]: `push`'s final table.
//! - [`error`]: why `push` stops.

pub mod columns;
pub mod csv;
pub mod error;
pub mod progress;
pub mod push;
pub mod summary;
