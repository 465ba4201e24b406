//! Confidence intervals over a stream: what the DeLong interval and the
//! GAUC standard error may assume about a stream's aggregates, and the
//! refusal of `ranking` (which needs record order, gone once aggregated).

use crate::api::{ApiError, Problem};
use crate::core::metrics::TableWeights;
use crate::state::ScoreAggregate;

/// What the weights of `agg`'s table are: counts while every record had
/// weight 1 and no score was merged into a bin, else sample weights or an
/// approximation (so `auc_ci` is `null` with the reason in `warnings`, as
/// `POST /metrics` with `sample_weights`).
pub fn weights_of(agg: &ScoreAggregate) -> TableWeights {
    if !agg.is_exact() {
        TableWeights::Approximate
    } else if agg.has_unit_weights() {
        TableWeights::Counts
    } else {
        TableWeights::Sample
    }
}

/// `?ranking=...` on a stream is a 400 naming it.
pub fn refuse_ranking(ranking: Option<&str>) -> Result<(), ApiError> {
    match ranking {
        None => Ok(()),
        Some(_) => Err(ApiError::new(
            Problem::BadRequest,
            "ranking needs each user's records in order and is available from POST /metrics only; a stream keeps aggregates",
        )
        .with_field("ranking")),
    }
}
