//! Command-line clients of the service.
//!
//! - [`push`]: `evald push FILE --stream NAME --url URL` streams a local
//!   NDJSON or CSV file (optionally gzip-compressed) into a stream and prints
//!   the resulting metrics.

pub mod push;
