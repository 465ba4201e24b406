//! Load shedding: at most `--max-concurrent-requests` requests are handled at
//! once; one more is answered 503 with `Retry-After` immediately. There is no
//! queue: a queue in front of a saturated server only grows and turns every
//! answer into a late one, while a quick 503 lets the client (or a load
//! balancer) retry elsewhere or later.
//!
//! The operational routes are exempt: they answer from memory in
//! microseconds, and shedding them would fail liveness probes and blind
//! monitoring exactly when the service is busiest.

use std::sync::Arc;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tokio::sync::Semaphore;

use crate::api::ApiError;

/// Seconds a shed client is asked to wait (`Retry-After`).
pub const RETRY_AFTER_SECS: u64 = 1;

/// Routes never shed.
const EXEMPT_ROUTES: [&str; 3] = ["/healthz", "/readyz", "/internal/metrics"];

/// The permits of the concurrency limit; cheap to clone.
#[derive(Clone)]
pub struct ConcurrencyLimit {
    permits: Arc<Semaphore>,
    max: usize,
}

impl ConcurrencyLimit {
    /// A limit of `max` requests at once (capped at what a semaphore holds).
    pub fn new(max: u64) -> Self {
        let max = usize::try_from(max)
            .unwrap_or(usize::MAX)
            .min(Semaphore::MAX_PERMITS);
        ConcurrencyLimit {
            permits: Arc::new(Semaphore::new(max)),
            max,
        }
    }
}

/// Middleware: runs the request under a permit, or answers 503 when none is free.
pub async fn shed(State(limit): State<ConcurrencyLimit>, req: Request, next: Next) -> Response {
    let exempt = req
        .extensions()
        .get::<MatchedPath>()
        .is_some_and(|route| EXEMPT_ROUTES.contains(&route.as_str()));
    if exempt {
        return next.run(req).await;
    }
    match limit.permits.clone().try_acquire_owned() {
        Ok(_permit) => next.run(req).await,
        Err(_) => overloaded(limit.max),
    }
}

/// The 503 of a shed request.
fn overloaded(max: usize) -> Response {
    let detail = format!(
        "the server is handling its limit of {max} concurrent requests \
         (--max-concurrent-requests); retry after {RETRY_AFTER_SECS} s"
    );
    let mut response = ApiError::over_budget(detail)
        .with_extension("limit", "max_concurrent_requests")
        .into_response();
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECS));
    response
}
