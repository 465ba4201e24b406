//! Evaluation beyond the basics for a stream (README, "Evaluation beyond the
//! basics", streams): the query parameters and the one function the metrics
//! report calls with the stream's (or a user's) aggregate.
//!
//! While the aggregate is exact its table holds the records' exact distinct
//! scores and weights, so [`evaluate_beyond`] gives the numbers `POST
//! /metrics` gives for the same records. Once compacted, the scores inside a
//! bin are gone and none of these fields has a certified bound yet: each is
//! `null` and one warning says why.

use super::report::MetricsQuery;
use crate::api::metrics::beyond::{BeyondBody, StrategyParam};
use crate::api::metrics::metrics_error;
use crate::api::ApiError;
use crate::core::metrics::{
    evaluate_beyond, BeyondNames, BeyondParams, BinaryReport, CheckedBeyondParams, ScoreTable,
};
use crate::state::ScoreAggregate;

/// A comma-separated list of numbers; `field` names an element in errors.
fn parse_list(field: &str, raw: Option<&str>) -> Result<Vec<f64>, ApiError> {
    let Some(raw) = raw.filter(|r| !r.trim().is_empty()) else {
        return Ok(Vec::new());
    };
    raw.split(',')
        .enumerate()
        .map(|(i, item)| {
            item.trim().parse::<f64>().map_err(|_| {
                ApiError::invalid(
                    format!("{field}[{i}]"),
                    format!("{field}[{i}] is '{item}' but must be a number ({field} is a comma-separated list)"),
                )
            })
        })
        .collect()
}

/// `pr_max_points`: an integer >= 2, or `null` / `none` for the full curve.
fn parse_max_points(raw: Option<&str>) -> Result<Option<usize>, ApiError> {
    match raw {
        None => Ok(BeyondParams::default().pr_max_points),
        Some("null" | "none") => Ok(None),
        Some(other) => other.parse::<usize>().map(Some).map_err(|_| {
            ApiError::invalid(
                "pr_max_points",
                format!("pr_max_points must be an integer >= 2 or null, found '{other}'"),
            )
        }),
    }
}

impl MetricsQuery {
    /// The checked options of the extended evaluation; lists are bounded by
    /// `max_thresholds` (`--max-thresholds`).
    ///
    /// # Errors
    /// 422 naming the query parameter.
    pub fn beyond(&self, max_thresholds: usize) -> Result<CheckedBeyondParams, ApiError> {
        let defaults = BeyondParams::default();
        BeyondParams {
            pr_max_points: parse_max_points(self.pr_max_points.as_deref())?,
            pr_drop_intermediate: defaults.pr_drop_intermediate,
            n_bins: self.n_bins.unwrap_or(defaults.n_bins),
            strategy: self.strategy.unwrap_or(StrategyParam::Uniform).into(),
            thresholds: parse_list("thresholds", self.thresholds.as_deref())?,
            tpr_at_fpr: parse_list("tpr_at_fpr", self.tpr_at_fpr.as_deref())?,
            max_fpr: self.max_fpr,
        }
        .check(BeyondNames::QUERY, max_thresholds)
        .map_err(metrics_error)
    }
}

/// Why the extended fields are `null` on a compacted aggregate.
const COMPACTED: &str = "average_precision, pr_curve, log_loss, brier_score, calibration, calibration_ratio, normalized_entropy, mcc, balanced_accuracy, specificity, npv, cohen_kappa, best_threshold, at_thresholds, tpr_at_fpr and partial_auc are null: the score aggregate was compacted past its distinct-score budget and these have no certified error bound";

/// The extended fields of one aggregate (the stream's or a user's) whose
/// `table` and basic `report` were just computed, with their warnings.
pub fn beyond_of_aggregate(
    agg: &ScoreAggregate,
    table: &ScoreTable,
    report: &BinaryReport,
    params: &CheckedBeyondParams,
) -> (BeyondBody, Vec<String>) {
    if agg.is_exact() {
        BeyondBody::of(evaluate_beyond(
            table,
            &report.confusion,
            report.beta,
            params,
        ))
    } else {
        (BeyondBody::undefined(params), vec![COMPACTED.to_owned()])
    }
}
