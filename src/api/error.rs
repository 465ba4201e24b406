//! The one error type of the HTTP layer. Every failure, including the
//! framework's own rejections, leaves the service as `application/problem+json`
//! (RFC 9457) with a stable `type` slug that clients can branch on.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Map, Value};

/// Media type of every error body.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// The kinds of problem the service reports; each has a slug documented at
/// `GET /problems/{slug}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Problem {
    /// 400: the request itself is malformed (e.g. a path that is not UTF-8).
    BadRequest,
    /// 400: body is not parseable JSON.
    BadJson,
    /// 400: an NDJSON line is not parseable.
    BadNdjson,
    /// 401: the route needs an API key and none, or an unknown one, was sent.
    Unauthorized,
    /// 403: the API key lacks the scope the route needs.
    Forbidden,
    /// 404: unknown route or resource.
    NotFound,
    /// 405: the route exists but not with this method.
    MethodNotAllowed,
    /// 408: the request took longer than the configured timeout.
    Timeout,
    /// 413: the body (or one NDJSON line) is over the configured limit.
    PayloadTooLarge,
    /// 415: Content-Type is not one the endpoint accepts.
    UnsupportedMediaType,
    /// 422: valid JSON whose meaning is invalid.
    InvalidInput,
    /// 503: a configured budget (memory, streams, users) would be exceeded.
    OverBudget,
    /// 503: the data directory cannot take the change (the write-ahead log
    /// failed) or the server is shutting down.
    Unavailable,
    /// 500: a bug on our side; details are logged, not sent.
    Internal,
}

impl Problem {
    /// Every problem kind, for the `/problems` catalogue.
    pub const ALL: [Problem; 14] = [
        Problem::BadRequest,
        Problem::BadJson,
        Problem::BadNdjson,
        Problem::Unauthorized,
        Problem::Forbidden,
        Problem::NotFound,
        Problem::MethodNotAllowed,
        Problem::Timeout,
        Problem::PayloadTooLarge,
        Problem::UnsupportedMediaType,
        Problem::InvalidInput,
        Problem::OverBudget,
        Problem::Unavailable,
        Problem::Internal,
    ];

    /// Stable slug used in the `type` member (`/problems/<slug>`).
    pub fn slug(self) -> &'static str {
        match self {
            Problem::BadRequest => "bad-request",
            Problem::BadJson => "bad-json",
            Problem::BadNdjson => "bad-ndjson",
            Problem::Unauthorized => "unauthorized",
            Problem::Forbidden => "forbidden",
            Problem::NotFound => "not-found",
            Problem::MethodNotAllowed => "method-not-allowed",
            Problem::Timeout => "timeout",
            Problem::PayloadTooLarge => "payload-too-large",
            Problem::UnsupportedMediaType => "unsupported-media-type",
            Problem::InvalidInput => "invalid-input",
            Problem::OverBudget => "over-budget",
            Problem::Unavailable => "unavailable",
            Problem::Internal => "internal",
        }
    }

    /// HTTP status of this problem.
    pub fn status(self) -> StatusCode {
        match self {
            Problem::BadRequest | Problem::BadJson | Problem::BadNdjson => StatusCode::BAD_REQUEST,
            Problem::Unauthorized => StatusCode::UNAUTHORIZED,
            Problem::Forbidden => StatusCode::FORBIDDEN,
            Problem::NotFound => StatusCode::NOT_FOUND,
            Problem::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Problem::Timeout => StatusCode::REQUEST_TIMEOUT,
            Problem::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Problem::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Problem::InvalidInput => StatusCode::UNPROCESSABLE_ENTITY,
            Problem::OverBudget | Problem::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Problem::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Short human title (the RFC 9457 `title`).
    pub fn title(self) -> &'static str {
        match self {
            Problem::BadRequest => "Bad request",
            Problem::BadJson => "Body is not valid JSON",
            Problem::BadNdjson => "Body is not valid NDJSON",
            Problem::Unauthorized => "API key required",
            Problem::Forbidden => "Scope missing",
            Problem::NotFound => "Not found",
            Problem::MethodNotAllowed => "Method not allowed",
            Problem::Timeout => "Request timed out",
            Problem::PayloadTooLarge => "Payload too large",
            Problem::UnsupportedMediaType => "Unsupported media type",
            Problem::InvalidInput => "Invalid input",
            Problem::OverBudget => "Over budget",
            Problem::Unavailable => "Service unavailable",
            Problem::Internal => "Internal error",
        }
    }

    /// Plain-words description served at `GET /problems/{slug}`.
    pub fn description(self) -> &'static str {
        match self {
            Problem::BadRequest => "The request could not be understood as sent, before its body was looked at: for example a path whose percent-encoding is not UTF-8. `detail` says what was wrong.",
            Problem::BadJson => "The request body could not be parsed as JSON. `detail` gives the line and column of the first syntax error. Fix the JSON and retry.",
            Problem::BadNdjson => "A line of an application/x-ndjson body could not be parsed as a JSON value. `detail` and `line` give the 1-based line number. Nothing from the request was applied.",
            Problem::Unauthorized => "The server is configured with API keys and this route needs one: send `Authorization: Bearer <key>`. The key was missing, malformed or unknown; the WWW-Authenticate header says which. Only /healthz and /readyz are open.",
            Problem::Forbidden => "The API key is valid but lacks the scope this route needs: `read` for GET, `write` for computations and stream changes, `admin` for /internal/metrics. `scope` names the missing one.",
            Problem::NotFound => "The route, stream, user, loss, activation, normalization or optimizer does not exist. Where a name was unknown, `detail` lists the valid names.",
            Problem::MethodNotAllowed => "The route exists but does not accept this HTTP method; the Allow header lists the methods it accepts.",
            Problem::Timeout => "The request did not complete within the configured request timeout (--request-timeout-secs).",
            Problem::PayloadTooLarge => "The body, or one NDJSON line, is larger than the configured limit (--body-limit, --max-line-bytes), a compressed body inflates more than --max-decompression-ratio allows, or the request alone would need more memory than --max-inflight-bytes. `detail` names the limit.",
            Problem::UnsupportedMediaType => "The Content-Type is not accepted by this endpoint, or the Content-Encoding is not one the server decodes (gzip, identity). JSON endpoints take application/json; stream ingest also takes application/x-ndjson.",
            Problem::InvalidInput => "The body is valid JSON but its meaning is not: a length mismatch, a non-finite number, a label outside its domain, a ragged nested array, an unknown field or a parameter out of range. `field` names the offending field and `detail` says what was found and what was expected.",
            Problem::OverBudget => "Accepting the request would exceed a configured budget (memory, number of streams, users per stream, memory held by requests in flight). `detail` and `limit` name it. Nothing was applied; free resources (e.g. DELETE a stream) or raise the limit. When the budget frees by itself (requests in flight), the answer carries Retry-After: retry then.",
            Problem::Unavailable => "The service cannot take changes right now: writing its data directory failed (the write-ahead log or the last snapshot; `GET /readyz` says which) or it is shutting down. Nothing was applied; retry later, or on another instance.",
            Problem::Internal => "An unexpected error on the server. It has been logged; please report it with the x-request-id header of the response.",
        }
    }

    /// Looks a slug up.
    pub fn from_slug(slug: &str) -> Option<Problem> {
        Problem::ALL.into_iter().find(|p| p.slug() == slug)
    }

    /// The problem a bare framework status code stands for.
    pub fn from_status(status: StatusCode) -> Problem {
        match status {
            StatusCode::BAD_REQUEST => Problem::BadJson,
            StatusCode::UNAUTHORIZED => Problem::Unauthorized,
            StatusCode::FORBIDDEN => Problem::Forbidden,
            StatusCode::NOT_FOUND => Problem::NotFound,
            StatusCode::METHOD_NOT_ALLOWED => Problem::MethodNotAllowed,
            StatusCode::REQUEST_TIMEOUT => Problem::Timeout,
            StatusCode::PAYLOAD_TOO_LARGE => Problem::PayloadTooLarge,
            StatusCode::UNSUPPORTED_MEDIA_TYPE => Problem::UnsupportedMediaType,
            StatusCode::UNPROCESSABLE_ENTITY => Problem::InvalidInput,
            StatusCode::SERVICE_UNAVAILABLE => Problem::OverBudget,
            _ => Problem::Internal,
        }
    }
}

/// An error answer: a problem kind, a sentence saying what was found and what
/// was expected, the offending field when there is one, and optional extension
/// members (e.g. `line` for NDJSON, `valid` names for an unknown loss).
#[derive(Debug, Clone)]
pub struct ApiError {
    pub problem: Problem,
    pub detail: String,
    pub field: Option<String>,
    pub extensions: Map<String, Value>,
    /// Seconds for the `Retry-After` header, for a refusal that passes.
    pub retry_after_secs: Option<u64>,
}

/// Result alias for handlers.
pub type ApiResult<T, E = ApiError> = Result<T, E>;

impl ApiError {
    /// An error of `problem` with a detail sentence.
    pub fn new(problem: Problem, detail: impl Into<String>) -> Self {
        ApiError {
            problem,
            detail: detail.into(),
            field: None,
            extensions: Map::new(),
            retry_after_secs: None,
        }
    }

    /// 422 naming the offending `field`.
    pub fn invalid(field: impl Into<String>, detail: impl Into<String>) -> Self {
        ApiError::new(Problem::InvalidInput, detail).with_field(field)
    }

    /// 400 for unparseable JSON.
    pub fn bad_json(detail: impl Into<String>) -> Self {
        ApiError::new(Problem::BadJson, detail)
    }

    /// 400 for an unparseable NDJSON line (1-based `line`).
    pub fn bad_ndjson(line: u64, detail: impl Into<String>) -> Self {
        ApiError::new(Problem::BadNdjson, detail).with_extension("line", line)
    }

    /// 404 for an unknown resource.
    pub fn not_found(detail: impl Into<String>) -> Self {
        ApiError::new(Problem::NotFound, detail)
    }

    /// 404 for an unknown name, listing the valid ones.
    pub fn unknown_name(kind: &str, name: &str, valid: &[&str]) -> Self {
        ApiError::not_found(format!(
            "unknown {kind} '{}'; valid names: {}",
            echo(name),
            valid.join(", ")
        ))
        .with_extension("valid", valid.to_vec())
    }

    /// 413 naming the limit that was hit.
    pub fn too_large(detail: impl Into<String>) -> Self {
        ApiError::new(Problem::PayloadTooLarge, detail)
    }

    /// 415 naming what is accepted.
    pub fn unsupported_media_type(detail: impl Into<String>) -> Self {
        ApiError::new(Problem::UnsupportedMediaType, detail)
    }

    /// 503 naming the budget.
    pub fn over_budget(detail: impl Into<String>) -> Self {
        ApiError::new(Problem::OverBudget, detail)
    }

    /// 500; the cause is logged here and never sent to the client.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(%cause, "internal error");
        ApiError::new(Problem::Internal, "internal error; see the server log")
    }

    /// Sets the offending field.
    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    /// Asks the client to retry after `secs` seconds (`Retry-After`).
    pub fn with_retry_after(mut self, secs: u64) -> Self {
        self.retry_after_secs = Some(secs);
        self
    }

    /// Adds an extension member to the problem body.
    pub fn with_extension(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.extensions.insert(key.to_owned(), value.into());
        self
    }

    /// The HTTP status of this error.
    pub fn status(&self) -> StatusCode {
        self.problem.status()
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.problem.slug(), self.detail)
    }
}

impl std::error::Error for ApiError {}

#[derive(Serialize)]
struct ProblemBody<'a> {
    #[serde(rename = "type")]
    kind: String,
    title: &'a str,
    status: u16,
    detail: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<&'a str>,
    #[serde(flatten)]
    extensions: &'a Map<String, Value>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let body = ProblemBody {
            kind: format!("/problems/{}", self.problem.slug()),
            title: self.problem.title(),
            status: status.as_u16(),
            detail: &self.detail,
            field: self.field.as_deref(),
            extensions: &self.extensions,
        };
        let bytes = serde_json::to_vec(&body).unwrap_or_else(|_| b"{}".to_vec());
        let mut response = (status, bytes).into_response();
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if let Some(secs) = self.retry_after_secs {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

/// Longest piece of client input (a name, a path, a header value) repeated in
/// an error, in characters.
pub const MAX_ECHO_CHARS: usize = 64;

/// `input` as an error message may repeat it: cut to [`MAX_ECHO_CHARS`]
/// characters, with the full length said, so a megabyte-long name cannot
/// make a megabyte-long error (or log line). Every error that repeats client
/// input passes it through here.
pub fn echo(input: &str) -> String {
    match input.char_indices().nth(MAX_ECHO_CHARS) {
        None => input.to_owned(),
        Some((cut, _)) => format!(
            "{}... ({} bytes in all)",
            input.get(..cut).unwrap_or_default(),
            input.len()
        ),
    }
}

/// `message` with every `backquoted` piece passed through [`echo`]: serde's
/// errors quote the client's keys and values that way (`unknown field `x``).
pub fn echo_quoted(message: &str) -> String {
    let mut out = String::with_capacity(message.len().min(1024));
    for (i, piece) in message.split('`').enumerate() {
        if i > 0 {
            out.push('`');
        }
        if i % 2 == 1 {
            out.push_str(&echo(piece));
        } else {
            out.push_str(piece);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_input_is_cut_when_echoed_and_short_input_is_not() {
        assert_eq!(echo("ctr"), "ctr");
        let long = "é".repeat(1000);
        let cut = echo(&long);
        assert!(cut.starts_with(&"é".repeat(MAX_ECHO_CHARS)), "{cut}");
        assert!(cut.ends_with("... (2000 bytes in all)"), "{cut}");
        let message = format!("unknown field `{}`, expected `labels`", "k".repeat(500));
        let short = echo_quoted(&message);
        assert!(short.len() < 200, "{short}");
        assert!(short.ends_with(", expected `labels`"), "{short}");
    }
}
