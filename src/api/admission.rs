//! Memory admission control: one global budget for the bytes that requests in
//! flight hold (`--max-inflight-bytes`), and a bound on how far a compressed
//! body may inflate (`--max-decompression-ratio`).
//!
//! Why: a 1.9 MB gzip of zeros inflates to 2 GB; buffered by doubling up to
//! `--body-limit` it cost ~420 MB of RSS, and eight in parallel 1.6 GB. Here
//! every request gets a [`Permit`] (an RAII reservation, released when the
//! request ends), readers grow it *before* they buffer, and a full budget is
//! a 503 with `Retry-After` instead of more memory. A body that inflates past
//! the ratio is refused with 413 after a few megabytes, so a bomb costs almost
//! nothing however large it claims to be.
//!
//! The [`admit`] middleware sits outside the request decompression layer: it
//! refuses encodings other than gzip and identity, counts the compressed bytes
//! as the decoder pulls them, and holds the permit for the whole request.
//! [`BodyReader`] is the one way handlers read a body: it checks the ratio on
//! every decompressed chunk and turns body errors into problems.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use axum::body::{Body, HttpBody};
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http_body_util::BodyExt;

use super::error::{echo, ApiError};
use super::AppState;

/// Seconds a client is told to wait (`Retry-After`) when the budget is full:
/// requests in flight usually finish within a second.
const RETRY_AFTER_SECS: u64 = 1;

/// Bytes a compressed body may inflate to whatever its ratio, so a small body
/// of a very repetitive payload (a long array of zeros) is still accepted.
const INFLATE_ALLOWANCE: u64 = 1 << 20;

/// The `Content-Encoding` values a request body may have (what the request
/// decompression layer in `startup` decodes).
pub const SUPPORTED_ENCODINGS: [&str; 2] = ["gzip", "identity"];

/// The global budget: bytes reserved by all requests in flight.
#[derive(Debug)]
pub struct InflightBudget {
    limit: usize,
    used: AtomicUsize,
    max_ratio: u64,
}

impl InflightBudget {
    /// A budget of `limit` bytes; compressed bodies may inflate `max_ratio` times.
    pub fn new(limit: usize, max_ratio: u64) -> Self {
        InflightBudget {
            limit,
            used: AtomicUsize::new(0),
            max_ratio,
        }
    }

    /// Bytes reserved right now (for `/internal/metrics` and tests).
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    /// The configured limit.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Adds `n` bytes unless that would pass the limit.
    fn try_take(&self, n: usize) -> bool {
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(n).filter(|total| *total <= self.limit)
            })
            .is_ok()
    }

    fn give_back(&self, n: usize) {
        self.used.fetch_sub(n, Ordering::AcqRel);
    }
}

/// One request's share of the budget; dropping it gives the bytes back.
#[derive(Debug)]
pub struct Permit {
    budget: Arc<InflightBudget>,
    held: AtomicUsize,
    /// Compressed bytes received so far, when the body has a Content-Encoding.
    compressed: Option<Arc<AtomicU64>>,
}

impl Permit {
    /// An empty permit on `budget` for a body that is not compressed.
    pub fn new(budget: Arc<InflightBudget>) -> Self {
        Permit {
            budget,
            held: AtomicUsize::new(0),
            compressed: None,
        }
    }

    /// Bytes this request holds.
    pub fn held(&self) -> usize {
        self.held.load(Ordering::Acquire)
    }

    /// Grows the reservation to at least `total` bytes, before the caller
    /// allocates them. 413 when `total` alone is over the whole budget (no
    /// retry can succeed), 503 with `Retry-After` when the budget is full now.
    pub fn reserve_up_to(&self, total: usize) -> Result<(), ApiError> {
        let limit = self.budget.limit;
        if total > limit {
            return Err(ApiError::too_large(format!(
                "this request needs about {total} bytes in memory, more than the whole in-flight budget of {limit} bytes (--max-inflight-bytes)"
            ))
            .with_extension("limit", "max_inflight_bytes"));
        }
        let held = self.held();
        if total <= held {
            return Ok(());
        }
        if !self.budget.try_take(total - held) {
            return Err(ApiError::over_budget(format!(
                "requests in flight already hold {} of the {limit} bytes this server admits at once (--max-inflight-bytes); retry shortly",
                self.budget.used()
            ))
            .with_extension("limit", "max_inflight_bytes")
            .with_retry_after(RETRY_AFTER_SECS));
        }
        self.held.fetch_add(total - held, Ordering::AcqRel);
        Ok(())
    }

    /// 413 once `inflated` decompressed bytes are more than the ratio allows
    /// for the compressed bytes received so far.
    fn check_ratio(&self, inflated: u64) -> Result<(), ApiError> {
        let Some(compressed) = &self.compressed else {
            return Ok(());
        };
        let ratio = self.budget.max_ratio;
        let received = compressed.load(Ordering::Acquire);
        let allowed = received
            .saturating_mul(ratio)
            .saturating_add(INFLATE_ALLOWANCE);
        if inflated > allowed {
            return Err(ApiError::too_large(format!(
                "the body inflates to more than {ratio} times its compressed size ({inflated} bytes from {received}) (--max-decompression-ratio)"
            ))
            .with_extension("limit", "max_decompression_ratio"));
        }
        Ok(())
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.budget.give_back(*self.held.get_mut());
    }
}

/// 415 unless the body's Content-Encoding is one of [`SUPPORTED_ENCODINGS`];
/// `Ok(true)` when it is compressed.
fn check_encoding(headers: &HeaderMap) -> Result<bool, ApiError> {
    let Some(value) = headers.get(header::CONTENT_ENCODING) else {
        return Ok(false);
    };
    match value.as_bytes() {
        b"gzip" => Ok(true),
        b"identity" => Ok(false),
        other => Err(ApiError::unsupported_media_type(format!(
            "Content-Encoding '{}' is not supported; supported encodings: {}",
            echo(&String::from_utf8_lossy(other)),
            SUPPORTED_ENCODINGS.join(", ")
        ))
        .with_extension("supported", SUPPORTED_ENCODINGS.to_vec())),
    }
}

/// Middleware (outside request decompression): refuses unsupported
/// encodings, attaches a [`Permit`] to the request, counts compressed bytes,
/// and releases the permit when the response is ready.
pub async fn admit(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let compressed = match check_encoding(req.headers()) {
        Ok(compressed) => compressed,
        Err(e) => {
            let mut response = e.into_response();
            let accept = SUPPORTED_ENCODINGS.join(", ");
            if let Ok(value) = accept.parse() {
                response
                    .headers_mut()
                    .insert(header::ACCEPT_ENCODING, value);
            }
            return response;
        }
    };
    let mut permit = Permit::new(state.admission.clone());
    let (parts, body) = req.into_parts();
    let body = if compressed {
        let counter = Arc::new(AtomicU64::new(0));
        permit.compressed = Some(counter.clone());
        Body::new(body.map_frame(move |frame| {
            if let Some(data) = frame.data_ref() {
                counter.fetch_add(data.len() as u64, Ordering::AcqRel);
            }
            frame
        }))
    } else {
        body
    };
    let permit = Arc::new(permit);
    let mut req = Request::from_parts(parts, body);
    req.extensions_mut().insert(permit.clone());
    let response = next.run(req).await;
    drop(permit);
    response
}

/// The request's permit, or a fresh one when the request did not pass
/// through [`admit`] (a handler called directly).
pub fn permit_of(req: &Request, state: &AppState) -> Arc<Permit> {
    req.extensions()
        .get::<Arc<Permit>>()
        .cloned()
        .unwrap_or_else(|| Arc::new(Permit::new(state.admission.clone())))
}

/// Reads a request body chunk by chunk under its permit: the decompression
/// ratio is checked on every chunk, and body errors become problems.
pub struct BodyReader {
    body: Body,
    permit: Arc<Permit>,
    inflated: u64,
    limit: Option<usize>,
}

impl BodyReader {
    /// Reads `body` (already decompressed) under `permit`.
    pub fn new(body: Body, permit: Arc<Permit>) -> Self {
        BodyReader {
            body,
            permit,
            inflated: 0,
            limit: None,
        }
    }

    /// Fails with 413 past `limit` decompressed bytes (`--body-limit`).
    pub fn with_limit(body: Body, permit: Arc<Permit>, limit: usize) -> Self {
        let limited = Body::new(http_body_util::Limited::new(body, limit));
        BodyReader {
            limit: Some(limit),
            ..BodyReader::new(limited, permit)
        }
    }

    /// The decompressed size past which reading fails with 413, if any.
    pub fn limit(&self) -> Option<usize> {
        self.limit
    }

    /// The permit the body is read under.
    pub fn permit(&self) -> &Arc<Permit> {
        &self.permit
    }

    /// The next chunk of data; `None` at the end of the body.
    pub async fn chunk(&mut self) -> Result<Option<Bytes>, ApiError> {
        while let Some(frame) = self.body.frame().await {
            let frame = frame.map_err(|err| body_error(&err, self.limit))?;
            if let Ok(data) = frame.into_data() {
                self.inflated += data.len() as u64;
                self.permit.check_ratio(self.inflated)?;
                return Ok(Some(data));
            }
        }
        Ok(None)
    }

    /// True when the body is known to be over (no more data will come).
    pub fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }
}

/// The problem for a failed body read: 413 past the body limit (found by the
/// error type, never by its message), else 400.
pub fn body_error(err: &(dyn std::error::Error + 'static), limit: Option<usize>) -> ApiError {
    match limit {
        Some(limit) if is_length_limit(err) => ApiError::too_large(format!(
            "request body is over the configured limit of {limit} bytes (--body-limit)"
        )),
        _ => ApiError::bad_json(format!(
            "could not read the request body (bad gzip encoding or a broken connection): {err}"
        )),
    }
}

/// True when `err` or one of its sources is http-body-util's
/// [`LengthLimitError`](http_body_util::LengthLimitError): the error of our
/// own `Limited` reader and of tower-http's `RequestBodyLimitLayer` (which
/// wraps the same `Limited`), found by its type, never by its message.
fn is_length_limit(err: &(dyn std::error::Error + 'static)) -> bool {
    std::iter::successors(Some(err), |e| e.source())
        .any(|e| e.is::<http_body_util::LengthLimitError>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_permit_gives_its_bytes_back_when_dropped() {
        let budget = Arc::new(InflightBudget::new(100, 10));
        let a = Permit::new(budget.clone());
        assert!(a.reserve_up_to(60).is_ok());
        assert!(a.reserve_up_to(40).is_ok(), "shrinking is a no-op");
        let b = Permit::new(budget.clone());
        let full = b.reserve_up_to(50).err().map(|e| e.status().as_u16());
        assert_eq!(full, Some(503));
        let never = b.reserve_up_to(101).err().map(|e| e.status().as_u16());
        assert_eq!(never, Some(413));
        drop(a);
        assert_eq!(budget.used(), 0);
        assert!(b.reserve_up_to(100).is_ok());
        drop(b);
        assert_eq!(budget.used(), 0);
    }

    #[test]
    fn the_ratio_is_checked_only_for_compressed_bodies() {
        let budget = Arc::new(InflightBudget::new(100, 10));
        let plain = Permit::new(budget.clone());
        assert!(plain.check_ratio(u64::MAX).is_ok());
        let counter = Arc::new(AtomicU64::new(1000));
        let mut gzip = Permit::new(budget);
        gzip.compressed = Some(counter);
        assert!(gzip.check_ratio(10_000 + INFLATE_ALLOWANCE).is_ok());
        let over = gzip.check_ratio(10_001 + INFLATE_ALLOWANCE);
        assert_eq!(over.err().map(|e| e.status().as_u16()), Some(413));
    }

    #[test]
    fn an_error_that_only_reads_like_a_length_limit_is_not_one() {
        let lookalike = std::io::Error::other("length limit exceeded");
        assert!(!is_length_limit(&lookalike));
        assert_eq!(body_error(&lookalike, Some(10)).status().as_u16(), 400);
    }

    #[test]
    fn only_gzip_and_identity_are_accepted() {
        let mut headers = HeaderMap::new();
        assert_eq!(check_encoding(&headers).ok(), Some(false));
        for (value, compressed) in [("gzip", true), ("identity", false)] {
            headers.insert(header::CONTENT_ENCODING, value.parse().unwrap());
            assert_eq!(check_encoding(&headers).ok(), Some(compressed));
        }
        headers.insert(header::CONTENT_ENCODING, "deflate".parse().unwrap());
        let err = check_encoding(&headers).err().map(|e| e.detail);
        assert!(err.is_some_and(|d| d.contains("gzip, identity")));
    }
}
