//! Streams: ingest, metrics, expiry, durability and `evald push`.

mod durability;
mod ingest;
mod metrics;
mod push;
mod ttl;
