//! The HTTP layer: one module per resource, each with its own `router()`, plus
//! the shared error type, extractors and the nested-array parser.
//!
//! A handler is short: extract, convert the DTO into checked core types, call
//! the core (on the blocking pool when the input is large), serialize.

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::Router;
use tower_http::limit::RequestBodyLimitLayer;

use crate::config::Config;

pub mod activation;
pub mod error;
pub mod extract;
pub mod losses;
pub mod metrics;
pub mod normalize;
pub mod ops;
pub mod optimizer;
pub mod streams;
pub mod tensor;

pub use error::{ApiError, ApiResult, Problem};
pub use extract::{ApiJson, ApiQuery};

/// Shared, cheap-to-clone application state handed to every handler.
#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub stats: Arc<ops::Stats>,
}

impl AppState {
    /// Builds the state for `config`.
    pub fn new(config: Config) -> Self {
        AppState {
            config: Arc::new(config),
            stats: Arc::new(ops::Stats::default()),
        }
    }
}

/// Every route of the service. Middleware is added in [`crate::startup`].
pub fn router(state: AppState) -> Router {
    // JSON endpoints get tower-http's body limit (the extractor enforces it too,
    // after decompression); stream ingest reads NDJSON incrementally and is
    // bounded per line instead, so it is merged outside the limit.
    let bounded = Router::new()
        .merge(metrics::router())
        .merge(losses::router())
        .merge(normalize::router())
        .merge(activation::router())
        .merge(optimizer::router())
        .layer(RequestBodyLimitLayer::new(state.config.body_limit));
    Router::new()
        .merge(ops::router())
        .merge(bounded)
        .merge(streams::router())
        .layer(DefaultBodyLimit::disable())
        .fallback(ops::not_found)
        .method_not_allowed_fallback(ops::method_not_allowed)
        .with_state(state)
}
