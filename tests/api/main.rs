//! The integration tests: one test binary (so a test build links the crate
//! once), a module per resource, shared helpers in [`helpers`].
//!
//! Run one resource with `cargo test --test api metrics::`, one file with
//! `cargo test --test api losses::kernels::`.

mod arrow;
mod catalogues;
mod cli;
mod durability;
mod fastmath;
mod fuzz_regressions;
mod helpers;
mod intervals;
mod losses;
mod metrics;
mod nn;
mod ops;
mod optim;
mod plots;

mod redis;
mod reliability;
mod streams;
