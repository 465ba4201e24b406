//! The numeric core: pure functions and types, free of HTTP.
//!
//! Every function here takes checked inputs (slices, `ndarray` arrays, small
//! parameter structs) and returns values or a `thiserror` error; nothing here
//! knows about JSON or status codes, so the core can be used from `lib.rs`
//! directly, benchmarked in isolation, and tested against reference fixtures.

pub mod activation;
pub mod fastmath;
pub mod index;
pub mod losses;
pub mod merge;
pub mod metrics;
pub mod norm;
pub mod optim;
pub mod rng;
