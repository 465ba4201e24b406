//! `POST /metrics` and the metrics core.

mod beyond;
mod fixtures;
mod http;
mod properties;
