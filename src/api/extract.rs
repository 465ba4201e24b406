//! Request extractors whose rejections are [`ApiError`]s, so malformed input
//! gets the same problem+json body as every other failure.

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::{header, request::Parts, HeaderMap};
use bytes::Bytes;
use serde::de::DeserializeOwned;

use super::admission::{permit_of, BodyReader, Permit};
use super::error::{echo, echo_quoted, ApiError};
use super::AppState;

/// Bodies larger than this are deserialized on the blocking pool so a 20 MB
/// request does not stall the async workers that serve everyone else.
pub const BLOCKING_PARSE_THRESHOLD: usize = 256 * 1024;

/// Bytes a JSON request holds in flight per byte of its body, from the read
/// to the answer: the body itself, the parsed arrays and what the handler
/// builds from them. Measured as (peak RSS - idle RSS) / body size on
/// `POST /metrics` with a 97 MB body of 5M predictions, labels and user ids:
/// 2.7x on a debug build, and 5x to 7.4x reported on release builds (the
/// parallel parse holds more at once; README, "Reliability and security");
/// rounded up so the reservation is not short.
pub const JSON_BYTES_HELD_PER_BODY_BYTE: usize = 8;

/// A JSON body deserialized into `T`.
///
/// - Content-Type must be `application/json` (or `application/*+json`): else 415.
/// - Body over `--body-limit`: 413.
/// - Syntax errors: 400 with line and column.
/// - Type errors, unknown fields, failed checks inside `Deserialize`: 422 whose
///   `field` is the JSON path of the offending value (e.g. `roc.max_points`).
#[derive(Debug, Clone)]
pub struct ApiJson<T>(pub T);

impl<T> FromRequest<AppState> for ApiJson<T>
where
    T: DeserializeOwned + Send + 'static,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let JsonBytes(bytes) = JsonBytes::from_request(req, state).await?;
        parse_off_the_async_workers(bytes, |b| serde_json::from_slice::<T>(b))
            .await
            .map(ApiJson)
    }
}

/// The raw bytes of a JSON body, after the checks [`ApiJson`] makes before
/// parsing (415 for a non-JSON Content-Type, 413 past `--body-limit`), for
/// handlers with their own fast parse (see [`parse_off_the_async_workers`]).
#[derive(Debug, Clone)]
pub struct JsonBytes(pub Bytes);

impl FromRequest<AppState> for JsonBytes {
    type Rejection = ApiError;

    /// Reserves the body's in-flight memory before reading it, then what
    /// parsing and handling it will hold ([`JSON_BYTES_HELD_PER_BODY_BYTE`]).
    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        require_json_content_type(req.headers())?;
        read_bounded_body(req, state, JSON_BYTES_HELD_PER_BODY_BYTE)
            .await
            .map(JsonBytes)
    }
}

/// Reads a whole body of at most `--body-limit` bytes, reserving from the
/// in-flight budget `held_per_byte` times its size (the declared size first,
/// then the real one): what parsing and handling this kind of body holds.
pub async fn read_bounded_body(
    req: Request,
    state: &AppState,
    held_per_byte: usize,
) -> Result<Bytes, ApiError> {
    let held = |body_bytes: usize| body_bytes.saturating_mul(held_per_byte);
    let size_hint = content_length(req.headers());
    let limit = state.config.body_limit;
    let permit = permit_of(&req, state);
    if let Some(hint) = size_hint {
        permit.reserve_up_to(held(hint.min(limit)))?;
    }
    let reader = BodyReader::with_limit(req.into_body(), permit.clone(), limit);
    let bytes = read_body(reader, size_hint).await?;
    permit.reserve_up_to(held(bytes.len()))?;
    Ok(bytes)
}

/// [`parse_json_with`], on the blocking pool for large bodies so a 20 MB
/// request does not stall the async workers that serve everyone else.
pub async fn parse_off_the_async_workers<T, F>(bytes: Bytes, fast: F) -> Result<T, ApiError>
where
    T: DeserializeOwned + Send + 'static,
    F: FnOnce(&[u8]) -> Result<T, serde_json::Error> + Send + 'static,
{
    let large = bytes.len() > BLOCKING_PARSE_THRESHOLD;
    let parse = move || parse_json_with(&bytes, fast);
    if large {
        tokio::task::spawn_blocking(parse)
            .await
            .map_err(ApiError::internal)?
    } else {
        parse()
    }
}

/// 415 unless the request declares a JSON media type.
pub fn require_json_content_type(headers: &HeaderMap) -> Result<(), ApiError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if is_json_media_type(content_type) {
        Ok(())
    } else if content_type.is_empty() {
        Err(ApiError::unsupported_media_type(
            "missing Content-Type; expected application/json",
        ))
    } else {
        Err(ApiError::unsupported_media_type(format!(
            "Content-Type '{}' is not supported; expected application/json",
            echo(content_type)
        )))
    }
}

/// The media type of a Content-Type value without its parameters, lowercase
/// (`Application/JSON; charset=utf-8` -> `application/json`).
pub fn media_type_essence(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// True for `application/json` and `application/<anything>+json`, any parameters.
pub fn is_json_media_type(content_type: &str) -> bool {
    let essence = media_type_essence(content_type);
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// The declared Content-Length, if any (absent for chunked or decompressed
/// bodies: the decompression layer removes it).
pub fn content_length(headers: &HeaderMap) -> Option<usize> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

/// Reads a whole body into one buffer sized from `size_hint` (capped at
/// the reader's limit, so a false Content-Length cannot reserve more), growing
/// the request's reservation *before* the buffer grows, so a body that does
/// not fit the in-flight budget is refused (503) instead of allocated.
///
/// Why not `axum::body::to_bytes`: it keeps every received chunk and copies
/// them into a contiguous buffer at the end, so a 20 MB body briefly takes
/// 40 MB and is copied twice. Appending each chunk to a buffer of the right
/// size copies once and holds the body once.
pub async fn read_body(
    mut reader: BodyReader,
    size_hint: Option<usize>,
) -> Result<Bytes, ApiError> {
    let permit = reader.permit().clone();
    let first = size_hint
        .unwrap_or(0)
        .min(reader.limit().unwrap_or(usize::MAX));
    permit.reserve_up_to(first)?;
    let mut buffer = Vec::with_capacity(first);
    while let Some(chunk) = reader.chunk().await? {
        grow_within(&mut buffer, chunk.len(), &permit)?;
        buffer.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(buffer))
}

/// Makes room for `more` bytes in `buffer`, doubling as `Vec` would, but
/// reserving the new capacity from `permit` first.
fn grow_within(buffer: &mut Vec<u8>, more: usize, permit: &Permit) -> Result<(), ApiError> {
    let needed = buffer.len().saturating_add(more);
    if needed <= buffer.capacity() {
        return Ok(());
    }
    let capacity = needed.max(buffer.capacity().saturating_mul(2));
    permit.reserve_up_to(capacity)?;
    buffer.reserve_exact(capacity - buffer.len());
    Ok(())
}

/// Parses `bytes` as [`parse_json`] does (same result, same errors), but
/// with `fast` first, which must accept exactly the bodies [`parse_json`]
/// accepts, with the same value (plain `serde_json::from_slice`, or a
/// type's own parallel parse). Tracking the path of every element costs
/// about three times the parse itself on a 20 MB body of a million numbers,
/// and a valid body never needs it: only an invalid body is parsed a second
/// time, with path tracking, to locate the error.
pub fn parse_json_with<T, F>(bytes: &[u8], fast: F) -> Result<T, ApiError>
where
    T: DeserializeOwned,
    F: FnOnce(&[u8]) -> Result<T, serde_json::Error>,
{
    fast(bytes).or_else(|_| parse_json::<T>(bytes))
}

/// Deserializes `bytes`, mapping syntax errors to 400 and meaning errors to 422
/// with the JSON path of the offending value as `field`.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let result: Result<T, _> = serde_path_to_error::deserialize(&mut de);
    let value = result.map_err(|err| {
        let path = err.path().to_string();
        let err = err.into_inner();
        match syntax_error_after(&err, bytes) {
            Some(syntax) => json_error(syntax, "."),
            None => json_error(err, &path),
        }
    })?;
    de.end().map_err(|err| json_error(err, "."))?;
    Ok(value)
}

/// The syntax error of `bytes` when `err` is a meaning error but the text is
/// not valid JSON either: a truncated body whose first field is wrong is a
/// 400 (fix the JSON first), not a 422 about that field. A cheap pass that
/// builds nothing ([`IgnoredAny`](serde::de::IgnoredAny)), run only on the
/// error path.
pub fn syntax_error_after(err: &serde_json::Error, bytes: &[u8]) -> Option<serde_json::Error> {
    use serde_json::error::Category;
    if err.classify() != Category::Data {
        return None;
    }
    serde_json::from_slice::<serde::de::IgnoredAny>(bytes)
        .err()
        .filter(|e| matches!(e.classify(), Category::Syntax | Category::Eof))
}

/// Classifies a serde_json error as 400 (syntax) or 422 (meaning, with `path`).
pub fn json_error(err: serde_json::Error, path: &str) -> ApiError {
    use serde_json::error::Category;
    // JSON has no NaN or infinity; a literal like 1e999 is valid JSON whose
    // value is not a finite f64, so it is a meaning error (422), not syntax.
    // serde_json has no typed form of this error (its `ErrorCode` is private
    // and `classify()` calls it Syntax), so its fixed message is the only test.
    if err.to_string().starts_with("number out of range") {
        let field = if path.is_empty() || path == "." {
            "body"
        } else {
            path
        };
        return ApiError::invalid(
            field,
            format!(
                "{field}: number out of the finite f64 range (non-finite numbers are not accepted)"
            ),
        );
    }
    match err.classify() {
        Category::Syntax | Category::Eof | Category::Io => {
            ApiError::bad_json(format!("body is not valid JSON: {err}"))
        }
        Category::Data => {
            let field = if path.is_empty() || path == "." {
                "body".to_owned()
            } else {
                echo(path)
            };
            let message = echo_quoted(&strip_position(&err.to_string()));
            ApiError::invalid(field.clone(), format!("{field}: {message}"))
        }
    }
}

/// serde_json appends " at line L column C" to data errors; for a field error
/// the path already says where, so the position is noise.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message.to_owned(),
    }
}

/// Query string parsed into `T`, with 422 naming the parameter on failure.
#[derive(Debug, Clone)]
pub struct ApiQuery<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parse_query(parts.uri.query().unwrap_or("")).map(ApiQuery)
    }
}

/// A query string parsed into `T`, with 422 naming the parameter on failure
/// (what [`ApiQuery`] does, for handlers that split one query between two
/// parameter types).
pub fn parse_query<T: DeserializeOwned>(query: &str) -> Result<T, ApiError> {
    let de = serde_urlencoded_deserializer(query);
    serde_path_to_error::deserialize(de).map_err(|err| {
        let field = err.path().to_string();
        let field = if field.is_empty() || field == "." {
            "query".to_owned()
        } else {
            field
        };
        ApiError::invalid(
            field.clone(),
            format!("query parameter {field}: {}", err.into_inner()),
        )
    })
}

fn serde_urlencoded_deserializer(query: &str) -> serde_urlencoded::Deserializer<'_> {
    serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::admission::InflightBudget;
    use axum::body::Body;
    use http_body_util::{Full, Limited};
    use std::sync::Arc;

    fn status_of(result: Result<Bytes, ApiError>) -> u16 {
        result.map_or_else(|e| e.status().as_u16(), |_| 200)
    }

    /// `read_body` of `body` past `limit` bytes, under a budget of `budget`.
    async fn read(body: Body, limit: usize, budget: usize) -> Result<Bytes, ApiError> {
        let permit = Permit::new(Arc::new(InflightBudget::new(budget, 100)));
        read_body(BodyReader::with_limit(body, Arc::new(permit), limit), None).await
    }

    #[tokio::test]
    async fn a_body_over_the_limit_is_413_found_by_the_error_type() {
        let body = || Body::from(vec![b'x'; 100]);
        assert_eq!(status_of(read(body(), 10, 1 << 20).await), 413);
        assert_eq!(status_of(read(body(), 100, 1 << 20).await), 200);
        // a limit applied by an outer layer (as tower-http's), boxed in axum's error
        let limited = Body::new(Limited::new(Full::new(Bytes::from(vec![b'x'; 100])), 10));
        assert_eq!(status_of(read(limited, 1_000, 1 << 20).await), 413);
    }

    #[tokio::test]
    async fn a_body_that_does_not_fit_the_in_flight_budget_is_refused_before_it_is_held() {
        let body = || Body::from(vec![b'x'; 100]);
        assert_eq!(status_of(read(body(), 1_000, 99).await), 413);
        assert_eq!(status_of(read(body(), 1_000, 100).await), 200);
    }

    #[test]
    fn a_truncated_body_is_a_syntax_error_even_after_a_wrong_field() {
        #[derive(Debug, serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct Body {
            values: Vec<f64>,
        }
        let truncated = parse_json::<Body>(br#"{"predictions": [0.1, 0.2,"#);
        assert_eq!(truncated.err().map(|e| e.status().as_u16()), Some(400));
        let whole = parse_json::<Body>(br#"{"predictions": [0.1, 0.2]}"#);
        assert_eq!(whole.err().map(|e| e.status().as_u16()), Some(422));
    }
}
