//! `POST /metrics`: stateless binary or multiclass evaluation (README,
//! "Classification metrics"; `openapi/openapi.yaml`).
//!
//! The handler extracts the body ([`MetricsRequest`]), checks it into a
//! [`MetricsJob`] (lengths, label domain, array limits, parameters), runs the
//! core on the blocking pool when the input is large, and serializes a
//! [`MetricsResponse`].

use axum::extract::State;
use axum::response::Response;
use axum::routing::post;
use axum::Router;
use ndarray::{Array2, Ix2};

use super::arrow::JsonOrArrow;
use super::error::{ApiError, ApiResult};
use super::extract::parse_off_the_async_workers;
use super::labels::binary_of_index;
use super::limits::check_array_len;
use super::AppState;
use crate::core::metrics::ranking::RankingParams;
use crate::core::metrics::{
    check_confidence, evaluate_multiclass, evaluate_records_ranked, BeyondNames, BinaryParams,
    BinaryRecords, CheckedBeyondParams, CheckedBinaryParams, GaucWeighting, MetricsError,
    MulticlassParams, UserIndex,
};

pub mod beyond;
pub mod compare;
pub mod fast;
mod request;
mod response;

use beyond::BeyondOptions;
pub use request::{
    short_key, AverageParam, GaucWeightingParam, Interner, Labels, MetricsRequest,
    MetricsRequestWith, RankingRequest, RocParams, UserIds, PARALLEL_PARSE_MIN_BYTES,
};
pub use response::{
    metrics_answer, AnswerFormatter, AucCiBody, BinaryMetricsResponse, ConfusionBody,
    DifferenceBody, GaucBody, MetricsResponse, MulticlassMetricsResponse, PerClassBody,
    RankingBody, RocBody,
};

/// Inputs with more values than this are evaluated on the blocking pool so a
/// large request does not stall the async workers.
const BLOCKING_THRESHOLD: usize = 50_000;

/// Routes of this resource.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/metrics", post(post_metrics))
        .merge(compare::router())
}

async fn post_metrics(State(state): State<AppState>, body: JsonOrArrow) -> ApiResult<Response> {
    let request = match body {
        JsonOrArrow::Json(body) => {
            parse_off_the_async_workers(body, MetricsRequest::from_json_parallel).await?
        }
        JsonOrArrow::Arrow(body) => body.metrics_request().await?,
    };
    let job = MetricsJob::from_request(
        request,
        state.config.max_array_len,
        state.config.max_ranking_cutoffs,
        state.config.max_thresholds,
    )?;
    let response = if job.size() > BLOCKING_THRESHOLD {
        tokio::task::spawn_blocking(move || job.run())
            .await
            .map_err(ApiError::internal)??
    } else {
        job.run()?
    };
    metrics_answer(&response).map_err(ApiError::internal)
}

/// A core error as a 422 naming the field (with its index for arrays).
pub fn metrics_error(err: MetricsError) -> ApiError {
    ApiError::invalid(err.field(), err.to_string())
}

/// A checked evaluation, ready for the core.
#[derive(Debug)]
pub enum MetricsJob {
    Binary {
        scores: Vec<f64>,
        labels: Vec<bool>,
        weights: Option<Vec<f64>>,
        users: Option<UserIds>,
        params: CheckedBinaryParams,
        weighting: GaucWeighting,
        beyond: CheckedBeyondParams,
        ranking: Option<RankingParams>,
    },
    Multiclass {
        scores: Array2<f64>,
        labels: Vec<usize>,
        weights: Option<Vec<f64>>,
        params: MulticlassParams,
    },
}

impl MetricsJob {
    /// Checks `request`: array sizes against `max_array_len`, lengths against
    /// the predictions, the label domain (0/1 for flat predictions, class
    /// indices below C for N x C), and the parameters (at most
    /// `max_ranking_cutoffs` cutoffs in `ranking.k`; `max_thresholds` bounds
    /// the lists of the extended binary evaluation).
    ///
    /// # Errors
    /// 422 naming the field (and index) of the first problem.
    pub fn from_request(
        request: MetricsRequest,
        max_array_len: usize,
        max_ranking_cutoffs: usize,
        max_thresholds: usize,
    ) -> ApiResult<Self> {
        check_sizes(&request, max_array_len)?;
        check_confidence(request.confidence).map_err(metrics_error)?;
        let options = BeyondOptions {
            pr: request.pr,
            calibration: request.calibration,
            thresholds: request.thresholds.clone(),
            tpr_at_fpr: request.tpr_at_fpr.clone(),
            max_fpr: request.max_fpr,
        };
        let predictions = request.predictions.into_inner();
        if !matches!(predictions.ndim(), 1 | 2) {
            return Err(ApiError::invalid(
                "predictions",
                format!(
                    "predictions has {} dimensions but must be a flat array of binary scores or an N x C matrix of class scores",
                    predictions.ndim()
                ),
            ));
        }
        let rows = predictions.shape().first().copied().unwrap_or(0);
        check_length("labels", request.labels.values.len(), rows)?;
        if let Some(users) = &request.user_ids {
            check_length("user_ids", users.indices.len(), rows)?;
        }
        if let Some(w) = &request.sample_weights {
            check_length("sample_weights", w.len(), rows)?;
        }
        if rows == 0 {
            return Err(ApiError::invalid(
                "predictions",
                "predictions is empty but at least one prediction is needed",
            ));
        }
        match predictions.ndim() {
            1 => {
                let labels = binary_labels(&request.labels)?;
                let params = BinaryParams {
                    threshold: request.threshold,
                    beta: request.beta,
                    max_points: request.roc.max_points,
                    drop_intermediate: request.roc.drop_intermediate,
                    confidence: request.confidence,
                }
                .check()
                .map_err(metrics_error)?;
                let beyond = options
                    .params()
                    .check(BeyondNames::BODY, max_thresholds)
                    .map_err(metrics_error)?;
                let ranking = ranking_params(
                    request.ranking,
                    request.user_ids.is_some(),
                    max_ranking_cutoffs,
                )?;
                Ok(MetricsJob::Binary {
                    scores: predictions.into_raw_vec_and_offset().0,
                    labels,
                    weights: request.sample_weights,
                    users: request.user_ids,
                    params,
                    weighting: request.gauc_weighting.into(),
                    beyond,
                    ranking,
                })
            }
            2 => {
                if let Some(field) = options.first_given() {
                    return Err(ApiError::invalid(
                        field,
                        format!("{field} applies to binary predictions (a flat array) but predictions is an N x C matrix"),
                    ));
                }
                if request.ranking.is_some() {
                    return Err(ApiError::invalid(
                        "ranking",
                        "ranking needs binary predictions (a flat array) but predictions is an N x C matrix",
                    ));
                }
                if request.user_ids.is_some() {
                    return Err(ApiError::invalid(
                        "user_ids",
                        "user_ids (GAUC) needs binary predictions (a flat array) but predictions is an N x C matrix",
                    ));
                }
                let scores = predictions
                    .into_dimensionality::<Ix2>()
                    .map_err(ApiError::internal)?;
                let labels = class_labels(&request.labels, scores.ncols())?;
                let params = MulticlassParams {
                    beta: request.beta,
                    average: request.average.into(),
                };
                Ok(MetricsJob::Multiclass {
                    scores,
                    labels,
                    weights: request.sample_weights,
                    params,
                })
            }
            n => Err(ApiError::invalid(
                "predictions",
                format!(
                    "predictions has {n} dimensions but must be a flat array of binary scores or an N x C matrix of class scores"
                ),
            )),
        }
    }

    /// Number of values the evaluation reads.
    pub fn size(&self) -> usize {
        match self {
            MetricsJob::Binary { scores, .. } => scores.len(),
            MetricsJob::Multiclass { scores, .. } => scores.len(),
        }
    }

    /// Runs the core.
    ///
    /// # Errors
    /// 422 for what only the core checks (negative or non-finite weights,
    /// bad parameters).
    pub fn run(self) -> ApiResult<MetricsResponse> {
        match self {
            MetricsJob::Binary {
                scores,
                labels,
                weights,
                users,
                params,
                weighting,
                beyond,
                ranking: cutoffs,
            } => {
                let user_index = users.as_ref().map(|u| UserIndex {
                    users: &u.indices,
                    n_users: u.names.len(),
                });
                let records = BinaryRecords {
                    scores: &scores,
                    labels: &labels,
                    weights: weights.as_deref(),
                    users: user_index,
                };
                // Ranking needs users (checked into the job); it reads the
                // user buckets of the one sort.
                let cutoffs = cutoffs.filter(|_| user_index.is_some());
                let (report, extra, ranked) = evaluate_records_ranked(
                    &records,
                    &params,
                    weighting,
                    &beyond,
                    cutoffs.as_ref(),
                )
                .map_err(metrics_error)?;
                let mut body = BinaryMetricsResponse::from(report).with_beyond(extra);
                if let Some(report) = ranked {
                    body.warnings.extend(report.warning());
                    body.ranking = Some(report.into());
                }
                Ok(MetricsResponse::Binary(Box::new(body)))
            }
            MetricsJob::Multiclass {
                scores,
                labels,
                weights,
                params,
            } => {
                let report =
                    evaluate_multiclass(scores.view(), &labels, weights.as_deref(), &params)
                        .map_err(metrics_error)?;
                Ok(MetricsResponse::Multiclass(Box::new(report.into())))
            }
        }
    }
}

/// The checked `ranking` cutoffs; `ranking` needs `user_ids`.
fn ranking_params(
    request: Option<RankingRequest>,
    has_users: bool,
    max_cutoffs: usize,
) -> ApiResult<Option<RankingParams>> {
    let Some(request) = request else {
        return Ok(None);
    };
    if !has_users {
        return Err(ApiError::invalid(
            "ranking",
            "ranking needs user_ids (the metrics are per user) but user_ids is missing",
        ));
    }
    RankingParams::check(request.k, max_cutoffs)
        .map(Some)
        .map_err(metrics_error)
}

/// 422 when any array holds more than `max_array_len` values.
fn check_sizes(request: &MetricsRequest, max_array_len: usize) -> ApiResult<()> {
    let sizes = [
        ("predictions", request.predictions.0.len()),
        ("labels", request.labels.values.len()),
        (
            "user_ids",
            request.user_ids.as_ref().map_or(0, |u| u.indices.len()),
        ),
        (
            "sample_weights",
            request.sample_weights.as_ref().map_or(0, Vec::len),
        ),
    ];
    for (field, len) in sizes {
        check_array_len(field, len, max_array_len)?;
    }
    Ok(())
}

fn check_length(field: &str, len: usize, rows: usize) -> ApiResult<()> {
    if len == rows {
        Ok(())
    } else {
        Err(ApiError::invalid(
            field,
            format!("{field} has {len} elements but predictions has {rows}"),
        ))
    }
}

/// Binary labels must be 0/1 or true/false. One scan for the first label
/// that is neither, then one plain map (a per-label `Result` collected
/// through `try_process` cost 44 instructions a label).
fn binary_labels(labels: &Labels) -> ApiResult<Vec<bool>> {
    let not_binary = |&v: &u32| binary_of_index(v).is_none();
    if let Some(i) = labels.values.iter().position(not_binary) {
        let v = labels.values[i];
        return Err(ApiError::invalid(
            format!("labels[{i}]"),
            format!(
                "labels[{i}] is {v} but binary labels must be 0/1 or true/false (predictions is a flat array; send an N x C matrix for multiclass)"
            ),
        ));
    }
    Ok(labels.values.iter().map(|&v| v == 1).collect())
}

/// Multiclass labels must be class indices below `classes`, not booleans.
fn class_labels(labels: &Labels, classes: usize) -> ApiResult<Vec<usize>> {
    if let Some(i) = labels.first_bool {
        return Err(ApiError::invalid(
            format!("labels[{i}]"),
            format!(
                "labels[{i}] is a boolean but multiclass labels must be class indices 0..{classes}"
            ),
        ));
    }
    labels
        .values
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            let v = v as usize;
            if v < classes {
                Ok(v)
            } else {
                Err(ApiError::invalid(
                    format!("labels[{i}]"),
                    format!(
                        "labels[{i}] is {v} but class labels must be in 0..{classes} (predictions has {classes} columns)"
                    ),
                ))
            }
        })
        .collect()
}
