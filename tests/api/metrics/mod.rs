//! `POST /metrics` and the metrics core.

mod fixtures;
mod http;
mod properties;
