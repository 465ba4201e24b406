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
use crate::state::{Budgets, MemoryStore, StreamStore, TenantLimits, Writers};

pub mod activation;
pub mod admission;
pub mod auth;
pub mod error;
pub mod extract;
pub mod labels;
pub mod limits;
pub mod losses;
pub mod metrics;
pub mod negative_zero;
pub mod normalize;
pub mod ops;
pub mod optimizer;
pub mod params;
pub mod plots;
pub mod streams;
pub mod tensor;
pub mod ui;

pub use error::{ApiError, ApiResult, Problem};
pub use extract::{ApiJson, ApiQuery};

/// Shared, cheap-to-clone application state handed to every handler.
#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub stats: Arc<ops::Stats>,
    /// Stream state (in memory; see [`crate::state`]).
    pub streams: Arc<dyn StreamStore>,
    /// The threads that merge batches into streams.
    pub writers: Arc<Writers>,
    /// The API keys of `--api-keys-file`; `None` leaves the service open.
    pub keys: Option<Arc<auth::KeyStore>>,
    /// Memory held by requests in flight (`--max-inflight-bytes`).
    pub admission: Arc<admission::InflightBudget>,
}

impl AppState {
    /// Builds the state for `config`.
    ///
    /// # Errors
    /// When the stream writer threads cannot be started or the API key file
    /// cannot be read.
    pub fn new(config: Config) -> std::io::Result<Self> {
        let keys = config.api_keys_file.as_deref().map(auth::KeyStore::load);
        let store = MemoryStore::new(budgets(&config)).with_tenant_limits(tenant_limits(&config));
        Ok(AppState {
            stats: Arc::new(ops::Stats::default()),
            streams: Arc::new(store),
            writers: Arc::new(Writers::per_core()?),
            keys: keys.transpose()?.map(Arc::new),
            admission: Arc::new(admission::InflightBudget::new(
                config.max_inflight_bytes,
                config.max_decompression_ratio,
            )),
            config: Arc::new(config),
        })
    }
}

/// The stream budgets configured by `config`.
pub fn budgets(config: &Config) -> Budgets {
    Budgets {
        max_streams: config.max_streams,
        max_users_per_stream: config.max_users_per_stream,
        max_scores_per_user: config.max_scores_per_user,
        max_scores_per_stream: config.max_scores_per_stream,
        memory_budget: config.memory_budget,
    }
}

/// The per-tenant budgets configured by `config`.
pub fn tenant_limits(config: &Config) -> TenantLimits {
    TenantLimits {
        max_streams: config.tenant_max_streams,
        memory_budget: config.tenant_memory_budget,
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
        .merge(plots::router())
        .layer(RequestBodyLimitLayer::new(state.config.body_limit));
    Router::new()
        .merge(ops::router())
        .merge(bounded)
        .merge(streams::router())
        .merge(plots::stream_router())
        .merge(ui::router())
        .layer(DefaultBodyLimit::disable())
        .fallback(ops::not_found)
        .method_not_allowed_fallback(ops::method_not_allowed)
        .with_state(state)
}
