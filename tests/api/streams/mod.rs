//! Streams: ingest, metrics, idempotent retries, summaries and users, expiry and `evald push` (durability: [`crate::durability`]).

mod ingest;
mod metrics;
mod push;
mod retries;
mod summary;
mod ttl;
