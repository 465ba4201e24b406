//! No answer carries `-0.0`: every JSON response passes through
//! [`canonical_zeros`], which writes a negative zero as `0.0`.
//!
//! Why here and not in each report: `-0.0` comes from many places (a recall of
//! `-0.0 / x`, `tanh(-0.0)`, a gradient `-1 * 0`), equals `0.0`, and only
//! confuses clients that compare text or signs; one pass over the serialized
//! body covers every route, present and future, and the value is the one
//! [`canonical_zero`](crate::core::metrics::canonical_zero) gives. The pass
//! is a `memchr` scan for `-` that stops at once on bodies without a
//! negative zero; only a body with one is copied.

use axum::body::Body;
use axum::extract::Request;
use axum::http::header;
use axum::middleware::Next;
use axum::response::Response;
use memchr::memchr_iter;

use super::extract::is_json_media_type;

/// A response extension saying that its JSON body was written without a
/// negative zero (see `api::metrics::metrics_answer`), so
/// [`canonical_zeros`] passes it on without reading it.
#[derive(Debug, Clone, Copy)]
pub struct ZerosCanonical;

/// Middleware: rewrites `-0`, `-0.0`, `-0e0`... number tokens of a JSON
/// response as the same token without its sign.
pub async fn canonical_zeros(req: Request, next: Next) -> Response {
    let response = next.run(req).await;
    if response.extensions().get::<ZerosCanonical>().is_some() {
        return response;
    }
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(is_json_media_type);
    if !is_json {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let bytes = match axum::body::to_bytes(body, usize::MAX).await {
        Ok(bytes) => bytes,
        Err(e) => {
            tracing::error!(error = %e, "could not read a JSON response body");
            return Response::from_parts(parts, Body::empty());
        }
    };
    match without_negative_zeros(&bytes) {
        Some(fixed) => {
            parts.headers.remove(header::CONTENT_LENGTH);
            Response::from_parts(parts, Body::from(fixed))
        }
        None => Response::from_parts(parts, Body::from(bytes)),
    }
}

/// `json` with the sign of every negative-zero number removed, or `None`
/// when it has none (the common case: no copy).
pub fn without_negative_zeros(json: &[u8]) -> Option<Vec<u8>> {
    memchr_iter(b'-', json).find(|&i| is_negative_zero_at(json, i))?;
    // A candidate may sit inside a string ("id": "a,-0"): scan for real.
    let mut out = Vec::with_capacity(json.len());
    let (mut in_string, mut escaped, mut changed) = (false, false, false);
    for (i, &b) in json.iter().enumerate() {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
        } else if b == b'"' {
            in_string = true;
        } else if b == b'-' && is_negative_zero_at(json, i) {
            changed = true;
            continue;
        }
        out.push(b);
    }
    changed.then_some(out)
}

/// True when a number token starting with the `-` at `at` is a zero: `-0`,
/// then only zeros after a point, then an optional exponent, then no digit.
fn is_negative_zero_at(json: &[u8], at: usize) -> bool {
    let starts_value = at == 0
        || json
            .get(at - 1)
            .is_some_and(|b| matches!(b, b'[' | b',' | b':' | b' ' | b'\n' | b'\r' | b'\t'));
    if !starts_value || json.get(at + 1) != Some(&b'0') {
        return false;
    }
    let mut i = at + 2;
    if json.get(i) == Some(&b'.') {
        i += 1;
        while json.get(i) == Some(&b'0') {
            i += 1;
        }
    }
    // What follows is an exponent (zero times any power of ten is zero) or
    // the end of the number; a nonzero digit makes it a nonzero number.
    !matches!(json.get(i), Some(b'1'..=b'9'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixed(json: &str) -> String {
        match without_negative_zeros(json.as_bytes()) {
            Some(v) => String::from_utf8_lossy(&v).into_owned(),
            None => json.to_owned(),
        }
    }

    #[test]
    fn negative_zeros_lose_their_sign_and_nothing_else_changes() {
        assert_eq!(fixed(r#"{"recall":-0.0}"#), r#"{"recall":0.0}"#);
        assert_eq!(
            fixed("[-0, -0.0,-0.00e5,-0.5,-1.0,-0.01]"),
            "[0, 0.0,0.00e5,-0.5,-1.0,-0.01]"
        );
        for unchanged in [
            r#"{"user":"a,-0.0","x":-0.25}"#,
            r#"{"s":"\"-0.0"}"#,
            "[-10.0,-0.000001,1e-0]",
        ] {
            assert_eq!(
                without_negative_zeros(unchanged.as_bytes()),
                None,
                "{unchanged}"
            );
        }
        assert_eq!(fixed(r#"{"s":"\\",-0.0:1}"#), r#"{"s":"\\",0.0:1}"#);
    }
}
