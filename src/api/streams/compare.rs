//! `GET /streams/{a}/compare/{b}`: the unpaired comparison of two streams
//! (README, "Confidence intervals and model comparison"): each stream's
//! metrics, DeLong's unpaired test of `AUC_b − AUC_a` (pROC's
//! `roc.test(paired = FALSE)`) and the GAUC difference with the two
//! cluster-robust variances added.

use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Extension, Json, Router};

use super::report::{evaluate_stream, table_of, MetricsQuery, StreamMetricsResponse};
use super::store_error;
use crate::api::auth::Tenant;
use crate::api::metrics::compare::{gauc_body, CompareResponse};
use crate::api::metrics::{metrics_error, DifferenceBody};
use crate::api::{ApiError, ApiQuery, ApiResult, AppState};
use crate::core::metrics::compare::{unpaired_auc_diff, unpaired_gauc_diff, AucEstimate};
use crate::core::metrics::{CheckedBinaryParams, GaucWeighting};
use crate::state::tenants;

/// Routes of this resource.
pub fn router() -> Router<AppState> {
    Router::new().route("/streams/{name}/compare/{other}", get(compare_streams))
}

async fn compare_streams(
    State(state): State<AppState>,
    tenant: Option<Extension<Tenant>>,
    Path((a, b)): Path<(String, String)>,
    ApiQuery(query): ApiQuery<MetricsQuery>,
) -> ApiResult<Json<CompareResponse<StreamMetricsResponse>>> {
    let (params, weighting) = query.params()?;
    let tenant = tenant.as_ref().map(|Extension(t)| t.name());
    let (a, b) = (tenants::qualify(tenant, &a), tenants::qualify(tenant, &b));
    let store = state.streams.clone();
    let response = tokio::task::spawn_blocking(move || {
        let side_a = evaluate_side(&*store, &a, &params, weighting)?;
        let side_b = evaluate_side(&*store, &b, &params, weighting)?;
        Ok::<_, ApiError>(compare(side_a, side_b, params.confidence))
    })
    .await
    .map_err(ApiError::internal)??;
    Ok(Json(response))
}

/// One stream's answer and its AUC estimate, read under one lock.
fn evaluate_side(
    store: &dyn crate::state::StreamStore,
    name: &str,
    params: &CheckedBinaryParams,
    weighting: GaucWeighting,
) -> ApiResult<(StreamMetricsResponse, AucEstimate)> {
    let mut out = None;
    store
        .read(name, &mut |stream| {
            out = Some(
                evaluate_stream(stream, params, weighting).and_then(|response| {
                    let table = table_of(&stream.global).map_err(metrics_error)?;
                    Ok((response, AucEstimate::of(&table)))
                }),
            )
        })
        .map_err(store_error)?;
    out.unwrap_or_else(|| Err(ApiError::internal("stream read did not run")))
}

/// The answer from both sides.
fn compare(
    (a, estimate_a): (StreamMetricsResponse, AucEstimate),
    (b, estimate_b): (StreamMetricsResponse, AucEstimate),
    level: f64,
) -> CompareResponse<StreamMetricsResponse> {
    let (auc_diff, mut warnings) = unpaired_auc_diff(&estimate_a, &estimate_b, level);
    let gauc_of =
        |r: &StreamMetricsResponse| r.metrics.gauc.as_ref().map(|g| (g.value, g.std_error));
    let gauc_diff = match (gauc_of(&a), gauc_of(&b)) {
        (Some(ga), Some(gb)) => {
            let (diff, more) = unpaired_gauc_diff(ga, gb, level);
            warnings.extend(more);
            Some(gauc_body(&diff, "user-unpaired"))
        }
        _ => {
            warnings.push("gauc_diff is null: a stream without user ids has no GAUC".to_owned());
            None
        }
    };
    CompareResponse {
        a,
        b,
        auc_diff: DifferenceBody::new(auc_diff, "delong-unpaired").with_df(&auc_diff),
        gauc_diff,
        warnings,
    }
}
