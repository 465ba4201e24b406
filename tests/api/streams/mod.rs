//! Streams: ingest, metrics, expiry and `evald push` (durability: [`crate::durability`]).

mod ingest;
mod metrics;
mod push;
mod ttl;
