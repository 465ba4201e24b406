//! Building the application and serving it.
//!
//! `build` binds the listener and assembles router plus middleware; `run`
//! serves an already-bound listener until a shutdown future resolves. Keeping
//! the two apart lets integration tests bind `127.0.0.1:0` and learn the port.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::http::{header, HeaderName, HeaderValue, Method, StatusCode};
use axum::{middleware, Router};
use tokio::net::TcpListener;
use tower::ServiceBuilder;
use tower_http::compression::CompressionLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::decompression::RequestDecompressionLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;
use tower_http::CompressionLevel;

use crate::api::{self, admission, auth, negative_zero, ops, AppState};
use crate::config::Config;
use crate::server::{self, shed, shed::ConcurrencyLimit};
use crate::state::tasks::Background;
use crate::state::StreamStore;
use crate::telemetry;

/// Header carrying the request id, set when the client did not send one.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// A bound listener and the application ready to serve on it.
pub struct App {
    pub listener: TcpListener,
    pub router: Router,
    pub state: AppState,
    /// The purge task, and the store to shut down after it.
    pub tasks: StreamTasks,
}

impl App {
    /// The address actually bound (useful when the configured port was 0).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }
}

/// Binds `config.listen` and assembles the router with its middleware.
pub async fn build(config: Config) -> io::Result<App> {
    let listener = server::bind(config.listen)?;
    let cors = cors_layer(&config.cors_origins)?;
    let state = AppState::new(config)?;
    let tasks = start_stream_tasks(&state);
    let router = app_router(state.clone());
    let router = match cors {
        Some(layer) => router.layer(layer),
        None => router,
    };
    Ok(App {
        listener,
        router,
        state,
        tasks,
    })
}

/// The background work on stream state, to stop in order on shutdown.
#[derive(Debug)]
pub struct StreamTasks {
    background: Background,
    store: Arc<dyn StreamStore>,
}

impl StreamTasks {
    /// The ordered stop after the requests have drained: the purge task is
    /// stopped and joined (a purge in progress completes), then the store
    /// ends its own work (the memory store stops its periodic snapshots,
    /// writes the final one and closes its log).
    pub async fn shutdown(self) -> io::Result<()> {
        self.background.stop().await;
        self.store.shutdown().await
    }
}

/// The CORS layer for `--cors-origins` (`None` without origins: no CORS
/// headers, as before). It goes outside every other layer, so a browser's
/// preflight is answered without an API key (browsers send none with it)
/// and every answer, a 401 included, carries the headers a script needs to
/// read it. tower-http's layer handles preflight, `Vary` and wildcard rules.
fn cors_layer(origins: &[String]) -> io::Result<Option<CorsLayer>> {
    if origins.is_empty() {
        return Ok(None);
    }
    let allow_origin = if origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        let parsed = origins
            .iter()
            .map(|o| {
                HeaderValue::from_str(o.trim()).map_err(|e| {
                    io::Error::new(
                        io::ErrorKind::InvalidInput,
                        format!("--cors-origins '{o}': {e}"),
                    )
                })
            })
            .collect::<io::Result<Vec<_>>>()?;
        AllowOrigin::list(parsed)
    };
    let layer = CorsLayer::new()
        .allow_origin(allow_origin)
        .allow_methods([Method::GET, Method::POST, Method::DELETE])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::CONTENT_ENCODING,
            HeaderName::from_static(REQUEST_ID_HEADER),
        ])
        .expose_headers([
            HeaderName::from_static(REQUEST_ID_HEADER),
            header::RETRY_AFTER,
            header::WWW_AUTHENTICATE,
        ])
        .max_age(std::time::Duration::from_secs(600));
    Ok(Some(layer))
}

/// Starts the TTL purge task when configured (the store itself was opened,
/// and `--data-dir` restored, with the state).
fn start_stream_tasks(state: &AppState) -> StreamTasks {
    let config = &state.config;
    let mut background = Background::default();
    if config.stream_ttl_secs > 0 {
        let ttl = Duration::from_secs(config.stream_ttl_secs);
        background.spawn_purge(state.streams.clone(), ttl);
    }
    StreamTasks {
        background,
        store: state.streams.clone(),
    }
}

/// The router with the full middleware stack, outermost first: request id,
/// access log, tracing span, problem+json for framework errors, metrics,
/// API keys (a 401 or 403 is traced and counted, and refused before its body
/// is read or decompressed), load shedding (`--max-concurrent-requests`), response
/// compression (fastest gzip level: numeric JSON compresses well even so, and
/// the default level cost ~300 ms on a 2 MB response), no `-0.0` in JSON
/// answers (see `api::negative_zero`), memory admission
/// (see `api::admission`), gzip request decompression, request timeout.
pub fn app_router(state: AppState) -> Router {
    let request_id = HeaderName::from_static(REQUEST_ID_HEADER);
    let timeout = state.config.request_timeout();
    let concurrency = ConcurrencyLimit::new(state.config.max_concurrent_requests);
    let middleware = ServiceBuilder::new()
        .layer(SetRequestIdLayer::new(request_id.clone(), MakeRequestUuid))
        .layer(middleware::from_fn(telemetry::access_log))
        .layer(
            TraceLayer::new_for_http().make_span_with(|req: &axum::http::Request<_>| {
                let id = req
                    .headers()
                    .get(REQUEST_ID_HEADER)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("-");
                tracing::info_span!("request", method = %req.method(), uri = %req.uri(), request_id = %id)
            })
            // Every status is in the access log, and ApiError logs a server
            // error's cause once; TraceLayer's own ERROR line per 5xx would
            // flood the log under load shedding.
            .on_failure(()),
        )
        .layer(PropagateRequestIdLayer::new(request_id))
        .layer(middleware::from_fn(ops::problemize))
        .layer(middleware::from_fn_with_state(state.clone(), ops::track))
        .layer(middleware::from_fn_with_state(state.clone(), auth::require_key))
        .layer(middleware::from_fn_with_state(concurrency, shed::shed))
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

/// Serves `app` until `shutdown` resolves, then lets in-flight requests
/// finish (the timeout layer bounds how long that can take). The connection
/// limits and timeouts are the configured ones; see [`server`].
pub async fn run(app: App, shutdown: impl Future<Output = ()> + Send + 'static) -> io::Result<()> {
    run_draining(app, shutdown, None).await.map(drop)
}

/// [`run`], but once `shutdown` resolves in-flight requests get at most
/// `drain` (`--shutdown-timeout-secs`) to finish; then their connections are
/// closed so the final snapshot starts within the orchestrator's grace period.
/// Returns the stream tasks, for their ordered stop ([`StreamTasks::shutdown`]).
pub async fn run_draining(
    app: App,
    shutdown: impl Future<Output = ()> + Send + 'static,
    drain: Option<Duration>,
) -> io::Result<StreamTasks> {
    let App {
        listener,
        router,
        state,
        tasks,
    } = app;
    let limits = server::Limits::from_config(&state.config);
    let (signalled, on_signal) = tokio::sync::oneshot::channel::<()>();
    let signal = async move {
        shutdown.await;
        let _ = signalled.send(());
    };
    let serving = server::serve(listener, router, limits, signal);
    let deadline = async move {
        match (on_signal.await, drain) {
            (Ok(()), Some(drain)) => tokio::time::sleep(drain).await,
            _ => std::future::pending().await,
        }
    };
    tokio::select! {
        result = serving => result?,
        () = deadline => {
            tracing::warn!(secs = drain.map_or(0, |d| d.as_secs()),
                "requests still running after the shutdown timeout (--shutdown-timeout-secs); closing their connections");
        }
    }
    Ok(tasks)
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
