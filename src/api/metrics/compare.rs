//! `POST /metrics/compare`: two models scored on the same records (README,
//! "Confidence intervals and model comparison"; `openapi/openapi.yaml`).
//!
//! Each model gets the full binary answer of `POST /metrics`; `auc_diff` is
//! pROC's paired DeLong test and `gauc_diff` the user-paired test, both as
//! b − a.

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use super::beyond::{BeyondOptions, CalibrationParams, PrParams};
use super::request::{GaucWeightingParam, Labels, UserIds};
use super::{binary_labels, metrics_error, BinaryMetricsResponse, DifferenceBody};
use crate::api::arrow::JsonOrArrow;
use crate::api::error::{ApiError, ApiResult};
use crate::api::extract::parse_off_the_async_workers;
use crate::api::limits::check_array_len;
use crate::api::AppState;
use crate::core::metrics::compare::{paired_auc_diff, paired_gauc_diff, Difference};
use crate::core::metrics::{
    evaluate_records_beyond, BeyondNames, BinaryParams, BinaryRecords, CheckedBeyondParams,
    CheckedBinaryParams, GaucWeighting, ScoreTable, UserIndex,
};

/// Records past this many are compared on the blocking pool.
const BLOCKING_THRESHOLD: usize = 50_000;

/// Routes of this resource.
pub fn router() -> Router<AppState> {
    Router::new().route("/metrics/compare", post(post_compare))
}

/// `POST /metrics/compare` body (`CompareRequest` in `openapi/openapi.yaml`),
/// or its Arrow form (`ArrowCompareRecords`: columns, and the options as
/// query parameters).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompareRequest {
    pub labels: Labels,
    pub predictions_a: Vec<f64>,
    pub predictions_b: Vec<f64>,
    #[serde(default)]
    pub user_ids: Option<UserIds>,
    #[serde(default)]
    pub sample_weights: Option<Vec<f64>>,
    #[serde(default = "default_confidence")]
    pub confidence: f64,
    #[serde(default)]
    pub gauc_weighting: GaucWeightingParam,
    #[serde(default = "default_threshold")]
    pub threshold: f64,
    #[serde(default = "default_beta")]
    pub beta: f64,
    // Evaluation beyond the basics, applied to both models as `POST /metrics`
    // applies them to its one (see `super::beyond`).
    #[serde(default)]
    pub pr: Option<PrParams>,
    #[serde(default)]
    pub calibration: Option<CalibrationParams>,
    #[serde(default)]
    pub thresholds: Option<Vec<f64>>,
    #[serde(default)]
    pub tpr_at_fpr: Option<Vec<f64>>,
    #[serde(default)]
    pub max_fpr: Option<f64>,
}

// The defaults are the core's (`BinaryParams::default`).
fn default_confidence() -> f64 {
    BinaryParams::default().confidence
}

fn default_threshold() -> f64 {
    BinaryParams::default().threshold
}

fn default_beta() -> f64 {
    BinaryParams::default().beta
}

/// The answer of both comparison routes: each side's metrics (`M` is the
/// one-shot or the stream answer), the differences b − a, and the warnings
/// about the differences (each side's own stay in its `warnings`).
#[derive(Debug, Serialize)]
pub struct CompareResponse<M> {
    pub a: M,
    pub b: M,
    pub auc_diff: DifferenceBody,
    /// `null` without `user_ids` (or, for streams, without users).
    pub gauc_diff: Option<DifferenceBody>,
    pub warnings: Vec<String>,
}

async fn post_compare(
    State(state): State<AppState>,
    body: JsonOrArrow,
) -> ApiResult<Json<CompareResponse<BinaryMetricsResponse>>> {
    let request = match body {
        JsonOrArrow::Json(body) => {
            parse_off_the_async_workers(body, |b| serde_json::from_slice::<CompareRequest>(b))
                .await?
        }
        JsonOrArrow::Arrow(body) => body.compare_request().await?,
    };
    let job = CompareJob::from_request(
        request,
        state.config.max_array_len,
        state.config.max_thresholds,
    )?;
    let response = if job.labels.len() > BLOCKING_THRESHOLD {
        tokio::task::spawn_blocking(move || job.run())
            .await
            .map_err(ApiError::internal)??
    } else {
        job.run()?
    };
    Ok(Json(response))
}

/// A checked comparison.
#[derive(Debug)]
pub(crate) struct CompareJob {
    pub(crate) labels: Vec<bool>,
    pub(crate) a: Vec<f64>,
    pub(crate) b: Vec<f64>,
    users: Option<UserIds>,
    pub(crate) weights: Option<Vec<f64>>,
    pub(crate) params: CheckedBinaryParams,
    weighting: GaucWeighting,
    beyond: CheckedBeyondParams,
}

impl CompareJob {
    /// Checks a `POST /metrics/compare` body (also the body of
    /// `POST /plots/compare/{kind}`); `max_thresholds` bounds the lists of
    /// the extended evaluation, as for `POST /metrics`.
    pub(crate) fn from_request(
        request: CompareRequest,
        max_array_len: usize,
        max_thresholds: usize,
    ) -> ApiResult<Self> {
        let rows = request.predictions_a.len();
        let sizes = [
            ("predictions_a", rows),
            ("predictions_b", request.predictions_b.len()),
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
        check_length_a("predictions_b", request.predictions_b.len(), rows)?;
        check_length_a("labels", request.labels.values.len(), rows)?;
        if let Some(users) = &request.user_ids {
            check_length_a("user_ids", users.indices.len(), rows)?;
        }
        if let Some(weights) = &request.sample_weights {
            check_length_a("sample_weights", weights.len(), rows)?;
        }
        if rows == 0 {
            return Err(ApiError::invalid(
                "predictions_a",
                "predictions_a is empty but at least one prediction is needed",
            ));
        }
        let params = BinaryParams {
            threshold: request.threshold,
            beta: request.beta,
            confidence: request.confidence,
            ..BinaryParams::default()
        }
        .check()
        .map_err(metrics_error)?;
        let beyond = BeyondOptions {
            pr: request.pr,
            calibration: request.calibration,
            thresholds: request.thresholds,
            tpr_at_fpr: request.tpr_at_fpr,
            max_fpr: request.max_fpr,
        }
        .params()
        .check(BeyondNames::BODY, max_thresholds)
        .map_err(metrics_error)?;
        Ok(CompareJob {
            labels: binary_labels(&request.labels)?,
            a: request.predictions_a,
            b: request.predictions_b,
            users: request.user_ids,
            weights: request.sample_weights,
            params,
            weighting: request.gauc_weighting.into(),
            beyond,
        })
    }

    fn run(self) -> ApiResult<CompareResponse<BinaryMetricsResponse>> {
        let users = self.users.as_ref().map(|u| UserIndex {
            users: &u.indices,
            n_users: u.names.len(),
        });
        let weights = self.weights.as_deref();
        let evaluate = |scores: &[f64]| -> ApiResult<(BinaryMetricsResponse, ScoreTable)> {
            let records = BinaryRecords {
                scores,
                labels: &self.labels,
                weights,
                users,
            };
            let (report, extra) =
                evaluate_records_beyond(&records, &self.params, self.weighting, &self.beyond)
                    .map_err(metrics_error)?;
            let table =
                ScoreTable::from_records(scores, &self.labels, weights).map_err(metrics_error)?;
            Ok((
                BinaryMetricsResponse::from(report).with_beyond(extra),
                table,
            ))
        };
        let (a, table_a) = evaluate(&self.a).map_err(|e| rename(e, "predictions_a"))?;
        let (b, table_b) = evaluate(&self.b).map_err(|e| rename(e, "predictions_b"))?;
        let level = self.params.confidence;
        let (auc_diff, mut warnings) = paired_auc_diff(
            (&table_a, &self.a),
            (&table_b, &self.b),
            &self.labels,
            weights,
            level,
        );
        let gauc_diff = match users {
            Some(users) => {
                let (diff, more) = paired_gauc_diff(
                    &self.a,
                    &self.b,
                    &self.labels,
                    weights,
                    users,
                    self.weighting,
                    level,
                )
                .map_err(metrics_error)?;
                warnings.extend(more);
                Some(gauc_body(&diff, "user-paired"))
            }
            None => None,
        };
        Ok(CompareResponse {
            a,
            b,
            auc_diff: DifferenceBody::new(auc_diff, "delong-paired"),
            gauc_diff,
            warnings,
        })
    }
}

/// The `gauc_diff` body (with `users`).
pub fn gauc_body(diff: &Difference, method: &'static str) -> DifferenceBody {
    DifferenceBody::new(*diff, method).with_users(diff)
}

/// The core names a model's scores `predictions`; here they are
/// `predictions_a` or `predictions_b`.
fn rename(mut err: ApiError, side: &str) -> ApiError {
    if let Some(field) = err.field.as_mut() {
        if let Some(rest) = field.strip_prefix("predictions") {
            *field = format!("{side}{rest}");
        }
    }
    err
}

/// Every array must be as long as `predictions_a`.
fn check_length_a(field: &str, len: usize, rows: usize) -> ApiResult<()> {
    if len == rows {
        Ok(())
    } else {
        Err(ApiError::invalid(
            field,
            format!("{field} has {len} elements but predictions_a has {rows}"),
        ))
    }
}
