//! Request extractors whose rejections are [`ApiError`]s, so malformed input
//! gets the same problem+json body as every other failure.

use axum::body::Body;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::{header, request::Parts, HeaderMap};
use bytes::Bytes;
use http_body_util::BodyExt;
use serde::de::DeserializeOwned;

use super::error::ApiError;
use super::AppState;

/// Bodies larger than this are deserialized on the blocking pool so a 20 MB
/// request does not stall the async workers that serve everyone else.
const BLOCKING_PARSE_THRESHOLD: usize = 256 * 1024;

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

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        require_json_content_type(req.headers())?;
        let size_hint = content_length(req.headers());
        read_body(req.into_body(), state.config.body_limit, size_hint)
            .await
            .map(JsonBytes)
    }
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
            "Content-Type '{content_type}' is not supported; expected application/json"
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

/// Reads a whole body, failing with 413 past `limit` bytes, into one buffer sized from `size_hint` (capped at
/// `limit`, so a false Content-Length cannot reserve more than the limit).
///
/// Why not `axum::body::to_bytes`: it keeps every received chunk and copies
/// them into a contiguous buffer at the end, so a 20 MB body briefly takes
/// 40 MB and is copied twice. Appending each chunk to a buffer of the right
/// size copies once and holds the body once.
pub async fn read_body(
    body: Body,
    limit: usize,
    size_hint: Option<usize>,
) -> Result<Bytes, ApiError> {
    let mut body = http_body_util::Limited::new(body, limit);
    let mut buffer = Vec::with_capacity(size_hint.unwrap_or(0).min(limit));
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|err| body_error(&*err, limit))?;
        if let Ok(chunk) = frame.into_data() {
            buffer.extend_from_slice(&chunk);
        }
    }
    Ok(Bytes::from(buffer))
}

fn body_error(err: &(dyn std::error::Error + 'static), limit: usize) -> ApiError {
    if is_length_limit(err) {
        ApiError::too_large(format!(
            "request body is over the configured limit of {limit} bytes (--body-limit)"
        ))
    } else {
        ApiError::bad_json(format!("could not read the request body: {err}"))
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
        json_error(err.into_inner(), &path)
    })?;
    de.end().map_err(|err| json_error(err, "."))?;
    Ok(value)
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
                path.to_owned()
            };
            let message = strip_position(&err.to_string());
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
        let query = parts.uri.query().unwrap_or("");
        let de = serde_urlencoded_deserializer(query);
        serde_path_to_error::deserialize(de)
            .map(ApiQuery)
            .map_err(|err| {
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
}

fn serde_urlencoded_deserializer(query: &str) -> serde_urlencoded::Deserializer<'_> {
    serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::{Full, Limited};

    fn status_of(result: Result<Bytes, ApiError>) -> u16 {
        result.map_or_else(|e| e.status().as_u16(), |_| 200)
    }

    #[tokio::test]
    async fn a_body_over_the_limit_is_413_found_by_the_error_type() {
        let body = || Body::from(vec![b'x'; 100]);
        assert_eq!(status_of(read_body(body(), 10, None).await), 413);
        assert_eq!(status_of(read_body(body(), 100, None).await), 200);
        // a limit applied by an outer layer (as tower-http's), boxed in axum's error
        let limited = Body::new(Limited::new(Full::new(Bytes::from(vec![b'x'; 100])), 10));
        assert_eq!(status_of(read_body(limited, 1_000, None).await), 413);
    }

    #[test]
    fn an_error_that_only_reads_like_a_length_limit_is_not_one() {
        let lookalike = std::io::Error::other("length limit exceeded");
        assert!(!is_length_limit(&lookalike));
        assert_eq!(body_error(&lookalike, 10).status().as_u16(), 400);
    }
}
