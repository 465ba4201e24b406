//! The one check of `--max-array-len` and its one wording.
//!
//! Every array a request carries (predictions, tensors, parameter vectors,
//! an optimizer's recorded path) is held to the same limit, and an array
//! over it gets the same sentence whichever route refused it.

use super::error::{ApiError, ApiResult};

/// "`what` has `len` elements, over the limit of `max` (--max-array-len)".
pub fn over_limit(what: &str, len: usize, max: usize) -> String {
    format!("{what} has {len} elements, over the limit of {max} (--max-array-len)")
}

/// 422 naming `field` when its `len` elements are over `max`.
pub fn check_array_len(field: &str, len: usize, max: usize) -> ApiResult<()> {
    if len > max {
        Err(ApiError::invalid(field, over_limit(field, len, max)))
    } else {
        Ok(())
    }
}

/// [`check_array_len`] for a route that can take the data another way,
/// which `remedy` names (e.g. "send larger data as NDJSON").
pub fn check_array_len_or(field: &str, len: usize, max: usize, remedy: &str) -> ApiResult<()> {
    check_array_len(field, len, max).map_err(|mut err| {
        err.detail = format!("{}; {remedy}", err.detail);
        err
    })
}
