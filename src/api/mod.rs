//! The HTTP layer: one module per resource, each with its own `router()`, plus
//! the shared error type, extractors and the nested-array parser.
//!
//! A handler is short: extract, convert the DTO into checked core types, call
//! the core (on the blocking pool when the input is large), serialize.

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::Router;
use tower_http::limit::RequestBodyLimitLayer;

use crate::config::{Config, Fsync, StoreKind};
use crate::state::redis::{RedisOptions, RedisStore};
use crate::state::wal::FsyncMode;
use crate::state::{
    Budgets, DataDirOptions, MemoryBackend, MemoryOptions, Retention, StreamStore, TenantLimits,
};

pub mod activation;
pub mod admission;
pub mod arrow;
pub mod auth;
pub mod catalogue;
pub mod error;
pub mod extract;
pub mod json_number;
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
    /// Stream state, in the store `--store` chose (see [`crate::state::store`]).
    pub streams: Arc<dyn StreamStore>,
    /// The API keys of `--api-keys-file`; `None` leaves the service open.
    pub keys: Option<Arc<auth::KeyStore>>,
    /// Memory held by requests in flight (`--max-inflight-bytes`).
    pub admission: Arc<admission::InflightBudget>,
}

impl AppState {
    /// Builds the state for `config`, opening its store (call within a
    /// Tokio runtime: a store starts its own tasks).
    ///
    /// # Errors
    /// When the store cannot be opened (the memory store's writer threads,
    /// a bad snapshot or log in `--data-dir`, a store not built in) or the
    /// API key file cannot be read.
    pub fn new(config: Config) -> std::io::Result<Self> {
        let keys = config
            .api_keys_file
            .as_deref()
            .map(auth::KeyStore::load)
            .transpose()?;
        Ok(AppState {
            stats: Arc::new(ops::Stats::default()),
            streams: open_store(&config)?,
            keys: keys.map(Arc::new),
            admission: Arc::new(admission::InflightBudget::new(
                config.max_inflight_bytes,
                config.max_decompression_ratio,
            )),
            config: Arc::new(config),
        })
    }
}

/// Opens the store `--store` names.
///
/// # Errors
/// The memory store's start-up errors; `redis` while no Redis store is built in.
pub fn open_store(config: &Config) -> std::io::Result<Arc<dyn StreamStore>> {
    match config.store {
        StoreKind::Memory => {
            let store =
                MemoryBackend::open(memory_options(config)).map_err(std::io::Error::other)?;
            Ok(Arc::new(store))
        }
        StoreKind::Redis => {
            if config.redis_url.is_empty() {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    "--store redis needs --redis-url (EVALD_REDIS_URL): one or more comma-separated seed nodes",
                ));
            }
            // Connects on first use: evald starts (and /readyz says not
            // ready) while Redis is still coming up.
            Ok(Arc::new(RedisStore::new(
                redis_options(config),
                budgets(config),
                tenant_limits(config),
            )))
        }
    }
}

/// The memory store's options configured by `config`.
pub fn memory_options(config: &Config) -> MemoryOptions {
    MemoryOptions {
        budgets: budgets(config),
        tenants: tenant_limits(config),
        retention: retention(config),
        data: config.data_dir.as_ref().map(|dir| DataDirOptions {
            dir: dir.clone(),
            fsync: match config.fsync {
                Fsync::Always => FsyncMode::Always,
                Fsync::Interval => {
                    FsyncMode::Interval(std::time::Duration::from_millis(config.fsync_interval_ms))
                }
            },
            snapshot_interval: std::time::Duration::from_secs(config.snapshot_interval_secs),
        }),
    }
}

/// The Redis store's options configured by `config`.
pub fn redis_options(config: &Config) -> RedisOptions {
    RedisOptions {
        urls: config.redis_url.join(","),
        prefix: config.redis_key_prefix.clone(),
        buckets: config.redis_buckets,
        batch_ttl: std::time::Duration::from_secs(config.idempotency_ttl_secs),
        max_inflight: usize::try_from(config.redis_max_inflight).unwrap_or(1024),
    }
}

/// How long and how many `Idempotency-Key`s a stream remembers.
pub fn retention(config: &Config) -> Retention {
    Retention {
        ttl_ms: config.idempotency_ttl_secs.saturating_mul(1000),
        max_keys: config.idempotency_max_keys,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn redis_without_a_redis_store_is_refused_at_start_saying_so() {
        let mut config = Config::for_tests();
        config.store = StoreKind::Redis;
        let err = open_store(&config).err().map(|e| e.to_string());
        assert!(
            err.as_deref().is_some_and(|e| e.contains("--store redis")),
            "{err:?}"
        );
        config.store = StoreKind::Memory;
        assert!(open_store(&config).is_ok());
    }
}
