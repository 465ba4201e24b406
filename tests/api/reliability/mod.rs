//! Reliability: what a hostile or careless client cannot do to the service.
//!
//! - [`admission`]: memory admission control (gzip bombs, the in-flight budget).
//! - [`edges`]: edge cases of input and output (`-0.0`, truncated bodies,
//!   empty ingests, odd names and encodings).

mod admission;
mod edges;
