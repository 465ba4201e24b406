//! `POST /normalize/{kind}` (batch, layer, instance, group norm) and
//! `GET /normalize` (the catalogue of kinds and their parameters).
//!
//! Each kind has its own parameter struct (see [`super::params`]), chosen by
//! the name in the path; the catalogue lists the parameters from the same
//! structs.

use std::future::Future;
use std::pin::Pin;
use std::sync::OnceLock;

use axum::extract::{FromRequest, Path, Request, State};
use axum::routing::get;
use axum::{Json, Router};
use bytes::Bytes;
use ndarray::ArrayViewD;
use serde::Serialize;

use super::activation::{check_finite, compute};
use super::catalogue::{self, Entry, Parameter};
use super::error::{ApiError, ApiResult};
use super::extract::{parse_off_the_async_workers, JsonBytes};
use super::limits::check_array_len;
use super::params::{
    param_set, union_of, Body, InputData, InputRoute, ParamDoc, ParamSet, RouteKeys,
};
use super::tensor::Tensor;
use super::AppState;
use crate::core::norm::{
    batch_norm, group_norm, instance_norm, layer_norm, Affine, BatchNormParams, NormError,
    Normalized, RunningStats,
};

/// Routes of this resource.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/normalize", get(catalogue))
        .route("/normalize/{kind}", get(describe).post(normalize))
}

/// The normalization kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Batch,
    Layer,
    Instance,
    Group,
}

/// One kind in the catalogue (its parameters come from its struct).
struct Spec {
    kind: Kind,
    name: &'static str,
    /// What it is, in one line (the catalogue's `summary`).
    summary: &'static str,
    formula: &'static str,
    stats_shape: &'static str,
}

const SPECS: [Spec; 4] = [
    Spec {
        kind: Kind::Batch,
        name: "batch",
        summary: "batch normalization over N and spatial dims, with running statistics (torch BatchNorm)",
        formula: "y = (x - mean[c]) / sqrt(var[c] + eps) * gamma[c] + beta[c]; statistics per channel over N and spatial dims",
        stats_shape: "[C]",
    },
    Spec {
        kind: Kind::Layer,
        name: "layer",
        summary: "layer normalization over the trailing dims (torch LayerNorm)",
        formula: "y = (x - mean) / sqrt(var + eps) * gamma + beta; statistics over the last normalized_dims dims",
        stats_shape: "the leading (non-normalized) dims",
    },
    Spec {
        kind: Kind::Instance,
        name: "instance",
        summary: "instance normalization per sample and channel (torch InstanceNorm)",
        formula: "y = (x - mean[n,c]) / sqrt(var[n,c] + eps) * gamma[c] + beta[c]; statistics per sample and channel over spatial dims",
        stats_shape: "[N, C]",
    },
    Spec {
        kind: Kind::Group,
        name: "group",
        summary: "group normalization per sample and group of channels (torch GroupNorm)",
        formula: "y = (x - mean[n,g]) / sqrt(var[n,g] + eps) * gamma[c] + beta[c]; statistics per sample and group of C/G channels",
        stats_shape: "[N, G]",
    },
];

fn spec(name: &str) -> Result<&'static Spec, ApiError> {
    SPECS.iter().find(|s| s.name == name).ok_or_else(|| {
        let valid: Vec<&str> = SPECS.iter().map(|s| s.name).collect();
        ApiError::unknown_name("normalization", name, &valid)
    })
}

/// PyTorch's default `eps` of every kind.
const DEFAULT_EPS: f64 = 1e-5;

param_set! {
    /// Parameters of batch norm.
    pub struct BatchParams {
        /// added to the variance; > 0
        eps: f64 = DEFAULT_EPS,
        /// scale; absent = 1
        gamma: Option<Tensor> = None,
        /// shift; absent = 0
        beta: Option<Tensor> = None,
        /// true: batch statistics (biased var) and running update with the unbiased var; false: running statistics
        training: bool = true,
        /// length C; absent = zeros
        running_mean: Option<Vec<f64>> = None,
        /// length C, >= 0; absent = ones
        running_var: Option<Vec<f64>> = None,
        /// running = (1 - momentum) * running + momentum * batch statistic; in [0, 1]
        momentum: f64 = 0.1,
    }
}

param_set! {
    /// Parameters of layer norm.
    pub struct LayerParams {
        /// added to the variance; > 0
        eps: f64 = DEFAULT_EPS,
        /// scale; absent = 1
        gamma: Option<Tensor> = None,
        /// shift; absent = 0
        beta: Option<Tensor> = None,
        /// number of trailing dims to normalize over; absent = all but N
        normalized_dims: Option<usize> = None,
    }
}

param_set! {
    /// Parameters of instance norm.
    pub struct InstanceParams {
        /// added to the variance; > 0
        eps: f64 = DEFAULT_EPS,
        /// scale; absent = 1
        gamma: Option<Tensor> = None,
        /// shift; absent = 0
        beta: Option<Tensor> = None,
    }
}

param_set! {
    /// Parameters of group norm.
    pub struct GroupParams {
        /// added to the variance; > 0
        eps: f64 = DEFAULT_EPS,
        /// scale; absent = 1
        gamma: Option<Tensor> = None,
        /// shift; absent = 0
        beta: Option<Tensor> = None,
        /// required; number of groups G, must divide C
        groups: Option<usize> = None,
    }
}

/// A kind's normalized input and, for batch norm, the updated running stats.
type Outcome = (Normalized, Option<RunningStats>);

/// A kind's parameter struct, run on an input.
trait NormParams: ParamSet {
    fn run(self, input: ArrayViewD<'_, f64>) -> Result<Outcome, ApiError>;
}

fn affine<'a>(gamma: &'a Option<Tensor>, beta: &'a Option<Tensor>) -> Affine<'a> {
    Affine {
        gamma: gamma.as_ref().map(|t| t.0.view()),
        beta: beta.as_ref().map(|t| t.0.view()),
    }
}

impl NormParams for BatchParams {
    fn run(self, input: ArrayViewD<'_, f64>) -> Result<Outcome, ApiError> {
        let running = running_stats(self.running_mean, self.running_var)?;
        let params = BatchNormParams {
            eps: self.eps,
            momentum: self.momentum,
            training: self.training,
        };
        let affine = affine(&self.gamma, &self.beta);
        let r = batch_norm(input, &affine, running, params).map_err(norm_error)?;
        Ok((r.normalized, Some(r.running)))
    }
}

impl NormParams for LayerParams {
    fn run(self, input: ArrayViewD<'_, f64>) -> Result<Outcome, ApiError> {
        let affine = affine(&self.gamma, &self.beta);
        let n = layer_norm(input, self.normalized_dims, &affine, self.eps).map_err(norm_error)?;
        Ok((n, None))
    }
}

impl NormParams for InstanceParams {
    fn run(self, input: ArrayViewD<'_, f64>) -> Result<Outcome, ApiError> {
        let affine = affine(&self.gamma, &self.beta);
        let n = instance_norm(input, &affine, self.eps).map_err(norm_error)?;
        Ok((n, None))
    }
}

impl NormParams for GroupParams {
    fn run(self, input: ArrayViewD<'_, f64>) -> Result<Outcome, ApiError> {
        let groups = self.groups.ok_or_else(|| {
            ApiError::invalid(
                "groups",
                "group norm needs groups, the number of channel groups (it must divide C)",
            )
        })?;
        let affine = affine(&self.gamma, &self.beta);
        let n = group_norm(input, groups, &affine, self.eps).map_err(norm_error)?;
        Ok((n, None))
    }
}

/// What the route needs of one kind's parameter struct: the one place that
/// maps a kind to its parameters.
struct ParamsOf {
    docs: &'static [ParamDoc],
    catalogue: fn() -> Vec<Parameter>,
    normalize: fn(Bytes, &'static str, usize) -> NormalizedFuture,
}

type NormalizedFuture = Pin<Box<dyn Future<Output = Result<NormalizeResponse, ApiError>> + Send>>;

impl ParamsOf {
    fn of<P: NormParams>() -> Self {
        ParamsOf {
            docs: P::DOCS,
            catalogue: P::catalogue,
            normalize: normalize_as::<P>,
        }
    }
}

fn params_of(kind: Kind) -> ParamsOf {
    match kind {
        Kind::Batch => ParamsOf::of::<BatchParams>(),
        Kind::Layer => ParamsOf::of::<LayerParams>(),
        Kind::Instance => ParamsOf::of::<InstanceParams>(),
        Kind::Group => ParamsOf::of::<GroupParams>(),
    }
}

/// `POST /normalize/{name}`: `input` beside the parameters.
struct NormalizeRoute;

impl InputRoute for NormalizeRoute {
    const EXPECTING: &'static str = "struct NormalizeRequest";

    /// Every normalization parameter, each once, in the order error messages
    /// have always listed them (group norm's before batch norm's, then layer
    /// norm's).
    fn keys() -> &'static RouteKeys {
        static KEYS: OnceLock<RouteKeys> = OnceLock::new();
        KEYS.get_or_init(|| {
            const LISTING: [Kind; 4] = [Kind::Group, Kind::Batch, Kind::Layer, Kind::Instance];
            let params = union_of(LISTING.map(|k| params_of(k).docs));
            RouteKeys::new(&["input"], params)
        })
    }
}

/// Parses the body as `P` beside the input, checks it (parameters of other
/// kinds, array lengths) and normalizes.
fn normalize_as<P: NormParams>(
    bytes: Bytes,
    kind: &'static str,
    max_len: usize,
) -> NormalizedFuture {
    Box::pin(async move {
        let body = parse_off_the_async_workers(bytes, |b| {
            serde_json::from_slice::<Body<InputData<NormalizeRoute>, P>>(b)
        })
        .await?;
        if let Some(field) = body.first_foreign() {
            return Err(ApiError::invalid(
                field,
                format!(
                    "{field} does not apply to {kind} norm; its parameters are: {}",
                    P::names().join(", ")
                ),
            ));
        }
        check_array_len("input", body.data.0.len(), max_len)?;
        for (field, len) in body.params.array_lens() {
            check_array_len(field, len, max_len)?;
        }
        let Body { data, params, .. } = body;
        let outcome = compute(data.0.len(), move || params.run(data.0.view())).await??;
        Ok(response(outcome))
    })
}

/// Response of `POST /normalize/{kind}`.
#[derive(Debug, Serialize)]
struct NormalizeResponse {
    output: Tensor,
    mean: Tensor,
    var: Tensor,
    #[serde(skip_serializing_if = "Option::is_none")]
    running_mean: Option<Vec<f64>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    running_var: Option<Vec<f64>>,
}

async fn normalize(
    State(state): State<AppState>,
    Path(kind): Path<String>,
    request: Request,
) -> Result<Json<NormalizeResponse>, ApiError> {
    // The name is checked before the body is read, so an unknown kind is a
    // 404 whatever the body holds.
    let spec = spec(&kind)?;
    let JsonBytes(bytes) = JsonBytes::from_request(request, &state).await?;
    let normalize = params_of(spec.kind).normalize;
    let response = normalize(bytes, spec.name, state.config.max_array_len).await?;
    check_finite("output", &response.output.0)?;
    check_finite("mean", &response.mean.0)?;
    check_finite("var", &response.var.0)?;
    for (field, stats) in [
        ("running_mean", &response.running_mean),
        ("running_var", &response.running_var),
    ] {
        if let Some(v) = stats {
            check_finite(field, &ndarray::Array1::from(v.clone()).into_dyn())?;
        }
    }
    Ok(Json(response))
}

/// Running stats from the request: both, or neither (then PyTorch's 0 and 1).
fn running_stats(
    mean: Option<Vec<f64>>,
    var: Option<Vec<f64>>,
) -> Result<Option<RunningStats>, ApiError> {
    match (mean, var) {
        (Some(mean), Some(var)) => Ok(Some(RunningStats { mean, var })),
        (None, None) => Ok(None),
        (Some(_), None) => Err(ApiError::invalid(
            "running_var",
            "running_mean was given without running_var; give both or neither",
        )),
        (None, Some(_)) => Err(ApiError::invalid(
            "running_mean",
            "running_var was given without running_mean; give both or neither",
        )),
    }
}

fn response((n, running): Outcome) -> NormalizeResponse {
    let (running_mean, running_var) = match running {
        Some(r) => (Some(r.mean), Some(r.var)),
        None => (None, None),
    };
    NormalizeResponse {
        output: Tensor(n.output),
        mean: Tensor(n.mean),
        var: Tensor(n.var),
        running_mean,
        running_var,
    }
}

/// A core error becomes a 422 naming the parameter; a shape error inside the
/// core would be our bug.
fn norm_error(err: NormError) -> ApiError {
    match err {
        NormError::Shape(_) => ApiError::internal(err),
        _ => ApiError::invalid(err.param(), err.to_string()),
    }
}

/// `GET /normalize`: every kind with its parameters, defaults and formula.
async fn catalogue() -> Json<Vec<Entry>> {
    Json(entries())
}

/// `GET /normalize/{kind}`: one catalogue entry.
async fn describe(Path(kind): Path<String>) -> ApiResult<Json<Entry>> {
    catalogue::describe("normalization", &kind, entries())
}

fn entries() -> Vec<Entry> {
    SPECS
        .iter()
        .map(|s| {
            Entry::new(s.name, s.summary, (params_of(s.kind).catalogue)())
                .detail("formula", s.formula)
                .detail("stats_shape", s.stats_shape)
        })
        .collect()
}
