//! Test helpers, one home for each: the running app and its per-endpoint
//! requests ([`app`]).

pub mod app;

pub use app::*;
