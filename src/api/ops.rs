//! Operational routes: liveness, readiness, the OpenAPI document, problem
//! descriptions, Prometheus metrics, and the fallbacks that turn unknown routes
//! and methods into problem+json.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Path, Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};

use super::error::{echo, ApiError, Problem, PROBLEM_JSON};
use super::AppState;
use crate::state::health::Counter;

/// The OpenAPI document, embedded at build time so the binary is self-contained.
const OPENAPI_YAML: &str = include_str!("../../openapi/openapi.yaml");

/// Routes of this module.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/openapi.json", get(openapi_json))
        .route("/problems", get(problem_index))
        .route("/problems/{slug}", get(problem_description))
        .route("/internal/metrics", get(prometheus_metrics))
}

async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// Ready unless writing the data directory failed (the last snapshot, or the
/// write-ahead log, which then refuses changes): 503 naming what failed.
async fn readyz(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let problems = state.streams.readiness().await;
    if problems.is_empty() {
        Ok(Json(json!({"status": "ready"})))
    } else {
        Err(ApiError::new(Problem::Unavailable, problems.join("; ")))
    }
}

/// The spec parsed once; a parse failure is a build-time bug caught by tests.
fn openapi_value() -> Result<&'static Value, ApiError> {
    static SPEC: OnceLock<Result<Value, serde_norway::Error>> = OnceLock::new();
    SPEC.get_or_init(|| serde_norway::from_str::<Value>(OPENAPI_YAML))
        .as_ref()
        .map_err(|e| ApiError::internal(format!("openapi.yaml does not parse: {e}")))
}

async fn openapi_json() -> Result<Json<Value>, ApiError> {
    openapi_value().map(|v| Json(v.clone()))
}

async fn problem_index() -> Json<Value> {
    let list: Vec<Value> = Problem::ALL
        .iter()
        .map(|p| {
            json!({"type": format!("/problems/{}", p.slug()), "status": p.status().as_u16(),
                   "title": p.title(), "description": p.description()})
        })
        .collect();
    Json(Value::Array(list))
}

async fn problem_description(Path(slug): Path<String>) -> Result<Json<Value>, ApiError> {
    let problem = Problem::from_slug(&slug).ok_or_else(|| {
        let valid: Vec<&str> = Problem::ALL.iter().map(|p| p.slug()).collect();
        ApiError::unknown_name("problem type", &slug, &valid)
    })?;
    Ok(Json(json!({
        "type": format!("/problems/{}", problem.slug()),
        "status": problem.status().as_u16(),
        "title": problem.title(),
        "description": problem.description(),
    })))
}

/// Fallback for unknown routes.
pub async fn not_found(method: Method, uri: Uri) -> ApiError {
    ApiError::not_found(format!("no route for {method} {}", echo(uri.path())))
}

/// Fallback for known routes with the wrong method. axum adds the Allow header.
pub async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        Problem::MethodNotAllowed,
        format!("{method} is not allowed on {}", echo(uri.path())),
    )
}

/// Longest framework error text (e.g. axum's path rejection) kept as `detail`.
const FRAMEWORK_DETAIL_BYTES: usize = 4096;

/// Rewrites any error response that is not already problem+json (a timeout from
/// tower-http, a 413 from the body-limit layer, a 400 from a path that does
/// not decode) into one, so clients see a single error shape.
pub async fn problemize(req: Request, next: Next) -> Response {
    let response = next.run(req).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let is_problem = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(PROBLEM_JSON.as_bytes()));
    if is_problem {
        return response;
    }
    let (parts, body) = response.into_parts();
    let said = axum::body::to_bytes(body, FRAMEWORK_DETAIL_BYTES)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_owned())
        .unwrap_or_default();
    let problem = match status {
        StatusCode::BAD_REQUEST => Problem::BadRequest,
        _ => Problem::from_status(status),
    };
    let detail = match status {
        StatusCode::REQUEST_TIMEOUT => {
            "the request did not complete within the configured timeout (--request-timeout-secs)"
                .to_owned()
        }
        StatusCode::PAYLOAD_TOO_LARGE => {
            "request body is over the configured limit (--body-limit)".to_owned()
        }
        // axum's own rejection text (e.g. a path segment that is not UTF-8),
        // which names what was wrong; the input it quotes is cut by `echo`.
        StatusCode::BAD_REQUEST if !said.is_empty() => echo(&said),
        StatusCode::BAD_REQUEST => "the request could not be understood".to_owned(),
        _ => status.canonical_reason().unwrap_or("error").to_owned(),
    };
    let mut err = ApiError::new(problem, detail).into_response();
    *err.status_mut() = status;
    if let Some(allow) = parts.headers.get(header::ALLOW) {
        err.headers_mut().insert(header::ALLOW, allow.clone());
    }
    err
}

/// Upper bounds (seconds) of the request-latency histogram buckets.
const LATENCY_BUCKETS: [f64; 12] = [
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Per-route request counters and latency histograms.
///
/// A std `Mutex` is enough: it is held for a few map updates per request and
/// never across an `.await`; a metrics crate would add a dependency tree for
/// what is a dozen lines of text exposition.
#[derive(Default)]
pub struct Stats {
    inner: Mutex<StatsInner>,
}

#[derive(Default)]
struct StatsInner {
    /// (method, route, status) -> count
    requests: BTreeMap<(String, String, u16), u64>,
    /// route -> (bucket counts, sum of seconds, count)
    latency: BTreeMap<String, (Vec<u64>, f64, u64)>,
}

impl Stats {
    fn record(&self, method: &str, route: &str, status: u16, elapsed: Duration) {
        let Ok(mut inner) = self.inner.lock() else {
            return;
        };
        *inner
            .requests
            .entry((method.to_owned(), route.to_owned(), status))
            .or_default() += 1;
        let entry = inner
            .latency
            .entry(route.to_owned())
            .or_insert_with(|| (vec![0; LATENCY_BUCKETS.len()], 0.0, 0));
        let secs = elapsed.as_secs_f64();
        for (bucket, bound) in entry.0.iter_mut().zip(LATENCY_BUCKETS) {
            if secs <= bound {
                *bucket += 1;
            }
        }
        entry.1 += secs;
        entry.2 += 1;
    }

    /// Renders the counters in Prometheus text exposition format.
    pub fn render(&self, out: &mut String) {
        let Ok(inner) = self.inner.lock() else {
            return;
        };
        out.push_str("# HELP evald_requests_total HTTP requests by method, route and status.\n");
        out.push_str("# TYPE evald_requests_total counter\n");
        for ((method, route, status), n) in &inner.requests {
            let _ = writeln!(
                out,
                "evald_requests_total{{method=\"{method}\",route=\"{route}\",status=\"{status}\"}} {n}"
            );
        }
        out.push_str("# HELP evald_request_duration_seconds HTTP request latency by route.\n");
        out.push_str("# TYPE evald_request_duration_seconds histogram\n");
        for (route, (buckets, sum, count)) in &inner.latency {
            for (n, bound) in buckets.iter().zip(LATENCY_BUCKETS) {
                let _ = writeln!(
                    out,
                    "evald_request_duration_seconds_bucket{{route=\"{route}\",le=\"{bound}\"}} {n}"
                );
            }
            let _ = writeln!(
                out,
                "evald_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {count}"
            );
            let _ = writeln!(
                out,
                "evald_request_duration_seconds_sum{{route=\"{route}\"}} {sum}"
            );
            let _ = writeln!(
                out,
                "evald_request_duration_seconds_count{{route=\"{route}\"}} {count}"
            );
        }
    }
}

/// Middleware recording every request in [`Stats`] under its route template
/// (not the raw path, so stream names do not explode the label set).
pub async fn track(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = req.method().to_string();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let response = next.run(req).await;
    state
        .stats
        .record(&method, &route, response.status().as_u16(), start.elapsed());
    response
}

/// Stream gauges: streams, users, records and the accounted state bytes.
async fn render_stream_gauges(state: &AppState, out: &mut String) {
    let g = match state.streams.gauges().await {
        Ok(g) => g,
        Err(e) => {
            tracing::warn!(error = %e, "could not read the stream gauges");
            return;
        }
    };
    let gauges: [(&str, &str, u64); 4] = [
        ("evald_streams", "Streams held.", g.streams as u64),
        (
            "evald_stream_users",
            "Distinct users over all streams.",
            g.users as u64,
        ),
        (
            "evald_stream_records",
            "Records ingested over all streams.",
            g.records,
        ),
        (
            "evald_stream_state_bytes",
            "Approximate heap bytes of stream state (counted against --memory-budget).",
            g.bytes as u64,
        ),
    ];
    for (name, help, value) in gauges {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}"
        );
    }
}

/// With `--data-dir`: snapshot and log counters, and 0/1 gauges of whether
/// the last snapshot and the log are healthy (what `/readyz` checks).
fn render_data_dir_health(state: &AppState, out: &mut String) {
    let Some(health) = state.streams.data_dir_health() else {
        return;
    };
    for counter in Counter::ALL {
        let (name, help) = counter.describe();
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}",
            health.get(counter)
        );
    }
    let name = "evald_data_dir_ready";
    let _ = writeln!(
        out,
        "# HELP {name} 1 when the last snapshot and the write-ahead log are healthy (see /readyz).\n# TYPE {name} gauge\n{name} {}",
        u8::from(health.problems().is_empty())
    );
}

async fn prometheus_metrics(State(state): State<AppState>) -> Response {
    let mut out = String::new();
    state.stats.render(&mut out);
    out.push_str("# HELP evald_resident_memory_bytes Resident set size of the process.\n");
    out.push_str("# TYPE evald_resident_memory_bytes gauge\n");
    let _ = writeln!(
        out,
        "evald_resident_memory_bytes {}",
        crate::telemetry::resident_bytes()
    );
    render_stream_gauges(&state, &mut out).await;
    render_data_dir_health(&state, &mut out);
    let mut response = out.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}
