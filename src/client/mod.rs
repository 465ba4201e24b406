//! Command-line clients of the service.
//!
//! - [`push`]: `evald push FILE --stream NAME --url URL` streams a local
//!   NDJSON or CSV file (optionally gzip-compressed) into a stream and prints
//!   the resulting metrics.
//! - [`csv`]: the RFC 4180 reader `push` uses, with exact record line numbers.
//! - [`progress`]: `push`'s progress line on stderr.
//! - [`error`]: why `push` stops.

pub mod csv;
pub mod error;
pub mod progress;
pub mod push;
