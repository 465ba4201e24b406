//! Query-time metrics of a stream: the glue between the state layer's
//! aggregates and the metrics core.
//!
//! The stream's global aggregate becomes one `ScoreTable` (the same table
//! `POST /metrics` builds from raw records) and GAUC comes from the store's
//! per-bucket [`GaucSums`] (each user's AUC from the core's AUC functions,
//! [`ScoreAggregate::auc`]), so a stream's answer equals the one-shot answer
//! over the concatenation of its batches, whichever store holds it.

use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize};

use crate::api::metrics::{metrics_error, BinaryMetricsResponse, GaucWeightingParam};
use crate::api::ApiError;
use crate::core::metrics::{
    evaluate_binary, BinaryParams, BinaryReport, CheckedBinaryParams, GaucWeighting, MetricsError,
    ScoreTable,
};
use crate::state::{tenants, GaucSums, ScoreAggregate, StreamRead};

/// Query parameters of the metrics endpoints (defaults as `POST /metrics`).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsQuery {
    pub threshold: Option<f64>,
    pub beta: Option<f64>,
    /// An integer >= 2, or `null` / `none` for the full curve.
    #[serde(default, deserialize_with = "max_points")]
    pub max_points: Option<MaxPoints>,
    pub drop_intermediate: Option<bool>,
    pub gauc_weighting: Option<GaucWeightingParam>,
}

/// `max_points` as given in the query string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MaxPoints {
    Unlimited,
    At(usize),
}

fn max_points<'de, D: Deserializer<'de>>(d: D) -> Result<Option<MaxPoints>, D::Error> {
    let raw = String::deserialize(d)?;
    match raw.as_str() {
        "null" | "none" => Ok(Some(MaxPoints::Unlimited)),
        other => other
            .parse::<usize>()
            .map(|n| Some(MaxPoints::At(n)))
            .map_err(|_| {
                de::Error::custom(format!(
                    "max_points must be an integer >= 2 or null, found '{other}'"
                ))
            }),
    }
}

impl MetricsQuery {
    /// The checked core parameters and the GAUC weighting.
    pub fn params(&self) -> Result<(CheckedBinaryParams, GaucWeighting), ApiError> {
        let defaults = BinaryParams::default();
        let params = BinaryParams {
            threshold: self.threshold.unwrap_or(defaults.threshold),
            beta: self.beta.unwrap_or(defaults.beta),
            max_points: match self.max_points {
                None => defaults.max_points,
                Some(MaxPoints::Unlimited) => None,
                Some(MaxPoints::At(n)) => Some(n),
            },
            drop_intermediate: self.drop_intermediate.unwrap_or(defaults.drop_intermediate),
        };
        let params = params.check().map_err(|e| match e {
            // The query names it `max_points`, not `roc.max_points`.
            MetricsError::TooFewRocPoints { found, .. } => {
                metrics_error(MetricsError::TooFewRocPoints {
                    name: "max_points",
                    found,
                })
            }
            other => metrics_error(other),
        })?;
        let weighting = self
            .gauc_weighting
            .map(GaucWeighting::from)
            .unwrap_or_default();
        Ok((params, weighting))
    }
}

/// `GET /streams/{name}/metrics` and the per-user variant: everything
/// `POST /metrics` returns, plus the stream, the user (per-user only) and the
/// certified error bounds.
#[derive(Debug, Serialize)]
pub struct StreamMetricsResponse {
    pub stream: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    #[serde(flatten)]
    pub metrics: BinaryMetricsResponse,
    /// Upper bound on |auc - exact auc|; 0 while the aggregate is exact.
    pub auc_error_bound: f64,
    /// Upper bound on the error of each (weighted) confusion count at the
    /// query's threshold: the larger class weight of the compacted bin that
    /// straddles the threshold; 0 when the counts are exact.
    pub confusion_error_bound: f64,
    /// Upper bound on |gauc - exact gauc|; `null` when there is no GAUC.
    pub gauc_error_bound: Option<f64>,
}

fn table_of(agg: &ScoreAggregate) -> Result<ScoreTable, MetricsError> {
    ScoreTable::from_aggregates(agg.iter())
}

/// Bound sentence added to `warnings` once an aggregate was compacted.
fn compaction_warning(bound: f64) -> String {
    format!(
        "the score aggregate was compacted past its distinct-score budget; auc may differ from the exact value by at most {bound:e} (auc_error_bound)"
    )
}

/// Bound sentence added to `warnings` when the threshold falls inside a
/// compacted bin, so the confusion counts (and the rates built on them) are
/// approximate.
fn confusion_warning(threshold: f64, bound: f64) -> String {
    format!(
        "the threshold {threshold} falls inside a compacted score bin; each confusion count may differ from the exact one by at most {bound} (confusion_error_bound); a threshold outside the bin is exact"
    )
}

/// Evaluates a whole stream: the global table, plus GAUC over its users
/// when it has any. GAUC, its bound (the weighted mean of the users' AUC
/// bounds) and its weighting rule come from the store's [`GaucSums`]; users
/// with one class are counted and skipped.
pub fn evaluate_stream(
    read: &StreamRead,
    params: &CheckedBinaryParams,
    weighting: GaucWeighting,
) -> Result<StreamMetricsResponse, ApiError> {
    let table = table_of(&read.global).map_err(metrics_error)?;
    let sums = GaucSums::total(&read.gauc);
    let (gauc, gauc_bound) = if sums.users == 0 {
        (None, None)
    } else {
        let summary = sums.finish(weighting);
        (Some(summary.gauc), Some(summary.error_bound))
    };
    let report = evaluate_binary(&table, read.global.counts(), gauc, params);
    Ok(respond(
        &read.info.name,
        None,
        report,
        Bounds {
            auc: read.global.auc_error_bound(),
            confusion: read.global.confusion_error_bound(params.threshold),
            gauc: gauc_bound,
        },
    ))
}

/// Evaluates one user of stream `stream` (its stored name), whose aggregate
/// is `agg` (no GAUC).
pub fn evaluate_user(
    stream: &str,
    user_id: &str,
    agg: &ScoreAggregate,
    params: &CheckedBinaryParams,
) -> Result<StreamMetricsResponse, ApiError> {
    let table = table_of(agg).map_err(metrics_error)?;
    let report = evaluate_binary(&table, agg.counts(), None, params);
    Ok(respond(
        stream,
        Some(user_id),
        report,
        Bounds {
            auc: agg.auc_error_bound(),
            confusion: agg.confusion_error_bound(params.threshold),
            gauc: None,
        },
    ))
}

/// The certified error bounds of one answer.
struct Bounds {
    auc: f64,
    confusion: f64,
    gauc: Option<f64>,
}

fn respond(
    stream: &str,
    user_id: Option<&str>,
    report: BinaryReport,
    bounds: Bounds,
) -> StreamMetricsResponse {
    let threshold = report.threshold;
    let mut metrics = BinaryMetricsResponse::from(report);
    let worst = bounds.auc.max(bounds.gauc.unwrap_or(0.0));
    if worst > 0.0 {
        metrics.warnings.push(compaction_warning(worst));
    }
    if bounds.confusion > 0.0 {
        metrics
            .warnings
            .push(confusion_warning(threshold, bounds.confusion));
    }
    StreamMetricsResponse {
        stream: tenants::local_name(stream).to_owned(),
        user_id: user_id.map(str::to_owned),
        metrics,
        auc_error_bound: bounds.auc,
        confusion_error_bound: bounds.confusion,
        gauc_error_bound: bounds.gauc,
    }
}
