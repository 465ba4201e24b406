//! Building the application and serving it.
//!
//! `build` binds the listener and assembles router plus middleware; `run`
//! serves an already-bound listener until a shutdown future resolves. Keeping
//! the two apart lets integration tests bind `127.0.0.1:0` and learn the port.

use std::future::Future;
use std::io;
use std::net::SocketAddr;

use axum::http::{HeaderName, StatusCode};
use axum::{middleware, Router};
use tokio::net::TcpListener;
use tower::ServiceBuilder;
use tower_http::compression::CompressionLayer;
use tower_http::decompression::RequestDecompressionLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;
use tower_http::CompressionLevel;

use crate::api::{self, admission, negative_zero, ops, AppState};
use crate::config::Config;
use crate::state::tasks;

/// Header carrying the request id, set when the client did not send one.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// A bound listener and the application ready to serve on it.
pub struct App {
    pub listener: TcpListener,
    pub router: Router,
    pub state: AppState,
}

impl App {
    /// The address actually bound (useful when the configured port was 0).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }
}

/// Binds `config.listen` and assembles the router with its middleware.
pub async fn build(config: Config) -> io::Result<App> {
    let listener = TcpListener::bind(config.listen).await?;
    let state = AppState::new(config)?;
    start_stream_tasks(&state)?;
    let router = app_router(state.clone());
    Ok(App {
        listener,
        router,
        state,
    })
}

/// Restores stream state from `--data-dir` (refusing a bad snapshot) and
/// starts the periodic snapshot and TTL purge tasks that are configured.
fn start_stream_tasks(state: &AppState) -> io::Result<()> {
    let config = &state.config;
    if let Some(dir) = &config.data_dir {
        tasks::restore(state.streams.as_ref(), dir).map_err(|e| {
            io::Error::other(format!(
                "refusing to start: {e}; move the file aside to start with empty streams"
            ))
        })?;
        let interval = std::time::Duration::from_secs(config.snapshot_interval_secs);
        tasks::spawn_snapshots(state.streams.clone(), dir.clone(), interval);
    }
    if config.stream_ttl_secs > 0 {
        let ttl = std::time::Duration::from_secs(config.stream_ttl_secs);
        tasks::spawn_purge(state.streams.clone(), ttl);
    }
    Ok(())
}

/// Writes the final snapshot after a graceful shutdown (when `--data-dir` is set).
pub async fn final_snapshot(state: &AppState) -> io::Result<()> {
    match &state.config.data_dir {
        Some(dir) => tasks::snapshot_now(state.streams.clone(), dir.clone()).await,
        None => Ok(()),
    }
}

/// The router with the full middleware stack, outermost first: request id,
/// tracing span, problem+json for framework errors, metrics, response
/// compression (fastest gzip level: numeric JSON compresses well even so, and
/// the default level cost ~300 ms on a 2 MB response), no `-0.0` in JSON
/// answers (see `api::negative_zero`), memory admission
/// (see `api::admission`), gzip request decompression, request timeout.
pub fn app_router(state: AppState) -> Router {
    let request_id = HeaderName::from_static(REQUEST_ID_HEADER);
    let timeout = state.config.request_timeout();
    let middleware = ServiceBuilder::new()
        .layer(SetRequestIdLayer::new(request_id.clone(), MakeRequestUuid))
        .layer(
            TraceLayer::new_for_http().make_span_with(|req: &axum::http::Request<_>| {
                let id = req
                    .headers()
                    .get(REQUEST_ID_HEADER)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("-");
                tracing::info_span!("request", method = %req.method(), uri = %req.uri(), request_id = %id)
            }),
        )
        .layer(PropagateRequestIdLayer::new(request_id))
        .layer(middleware::from_fn(ops::problemize))
        .layer(middleware::from_fn_with_state(state.clone(), ops::track))
        .layer(CompressionLayer::new().gzip(true).quality(CompressionLevel::Fastest))
        .layer(middleware::from_fn(negative_zero::canonical_zeros))
        .layer(middleware::from_fn_with_state(state.clone(), admission::admit))
        .layer(RequestDecompressionLayer::new().gzip(true))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            timeout,
        ));
    api::router(state).layer(middleware)
}

/// Serves `router` on `listener` until `shutdown` resolves, then lets in-flight
/// requests finish (the timeout layer bounds how long that can take).
pub async fn run(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM (what Docker sends on stop).
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "could not listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "could not listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
    tracing::info!("shutdown signal received; draining in-flight requests");
}
