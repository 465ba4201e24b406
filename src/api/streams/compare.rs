//! `GET /streams/{a}/compare/{b}`: the unpaired comparison of two streams
//! (README, "Confidence intervals and model comparison"): each stream's
//! metrics, DeLong's unpaired test of `AUC_b − AUC_a` (pROC's
//! `roc.test(paired = FALSE)`) and the GAUC difference with the two
//! cluster-robust variances added.

use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Extension, Json, Router};

use super::report::{evaluate_stream, table_of, MetricsQuery, StreamMetricsResponse};
use super::{off_thread, store_error};
use crate::api::auth::Tenant;
use crate::api::metrics::compare::{gauc_body, CompareResponse};
use crate::api::metrics::{metrics_error, DifferenceBody};
use crate::api::{ApiQuery, ApiResult, AppState};
use crate::core::metrics::compare::{unpaired_auc_diff, unpaired_gauc_diff, AucEstimate};
use crate::core::metrics::{CheckedBinaryParams, GaucWeighting};
use crate::state::{tenants, StreamRead};

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
    let read_a = state.streams.stream(&a, true).await.map_err(store_error)?;
    let read_b = state.streams.stream(&b, true).await.map_err(store_error)?;
    let response = off_thread(move || {
        let side_a = evaluate_side(&read_a, &params, weighting)?;
        let side_b = evaluate_side(&read_b, &params, weighting)?;
        Ok(compare(side_a, side_b, params.confidence))
    })
    .await?;
    Ok(Json(response))
}

/// One stream's answer and its AUC estimate, from one consistent read.
fn evaluate_side(
    read: &StreamRead,
    params: &CheckedBinaryParams,
    weighting: GaucWeighting,
) -> ApiResult<(StreamMetricsResponse, AucEstimate)> {
    let response = evaluate_stream(read, params, weighting)?;
    let table = table_of(&read.global).map_err(metrics_error)?;
    Ok((response, AucEstimate::of(&table)))
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
