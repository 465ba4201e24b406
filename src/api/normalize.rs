//! `POST /normalize/{kind}` (batch, layer, instance, group norm) and
//! `GET /normalize` (the catalogue of kinds and their parameters).

use axum::extract::{FromRequest, Path, Request, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::activation::{check_finite, compute};
use super::error::ApiError;
use super::extract::ApiJson;
use super::limits::check_array_len as check_len;
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
        .route("/normalize/{kind}", post(normalize))
}

/// The normalization kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Batch,
    Layer,
    Instance,
    Group,
}

const KIND_NAMES: [&str; 4] = ["batch", "layer", "instance", "group"];

impl Kind {
    fn parse(name: &str) -> Result<Kind, ApiError> {
        match name {
            "batch" => Ok(Kind::Batch),
            "layer" => Ok(Kind::Layer),
            "instance" => Ok(Kind::Instance),
            "group" => Ok(Kind::Group),
            _ => Err(ApiError::unknown_name("normalization", name, &KIND_NAMES)),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Kind::Batch => "batch",
            Kind::Layer => "layer",
            Kind::Instance => "instance",
            Kind::Group => "group",
        }
    }

    /// The request fields besides `input` that this kind accepts.
    fn params(self) -> &'static [&'static str] {
        match self {
            Kind::Batch => &[
                "eps",
                "gamma",
                "beta",
                "training",
                "running_mean",
                "running_var",
                "momentum",
            ],
            Kind::Layer => &["eps", "gamma", "beta", "normalized_dims"],
            Kind::Instance => &["eps", "gamma", "beta"],
            Kind::Group => &["eps", "gamma", "beta", "groups"],
        }
    }
}

/// Body of `POST /normalize/{kind}`; which optional fields apply depends on
/// the kind (a field that does not apply is a 422, like an unknown one).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NormalizeRequest {
    input: Tensor,
    eps: Option<f64>,
    gamma: Option<Tensor>,
    beta: Option<Tensor>,
    groups: Option<usize>,
    training: Option<bool>,
    running_mean: Option<Vec<f64>>,
    running_var: Option<Vec<f64>>,
    momentum: Option<f64>,
    normalized_dims: Option<usize>,
}

impl NormalizeRequest {
    /// Names of the optional fields present in the body.
    fn present(&self) -> Vec<&'static str> {
        let flags = [
            ("eps", self.eps.is_some()),
            ("gamma", self.gamma.is_some()),
            ("beta", self.beta.is_some()),
            ("groups", self.groups.is_some()),
            ("training", self.training.is_some()),
            ("running_mean", self.running_mean.is_some()),
            ("running_var", self.running_var.is_some()),
            ("momentum", self.momentum.is_some()),
            ("normalized_dims", self.normalized_dims.is_some()),
        ];
        flags
            .into_iter()
            .filter(|(_, p)| *p)
            .map(|(n, _)| n)
            .collect()
    }

    /// Checks that every field present applies to `kind` and that no array is
    /// longer than `--max-array-len`.
    fn check(&self, kind: Kind, max_len: usize) -> Result<(), ApiError> {
        for field in self.present() {
            if !kind.params().contains(&field) {
                return Err(ApiError::invalid(
                    field,
                    format!(
                        "{field} does not apply to {} norm; its parameters are: {}",
                        kind.name(),
                        kind.params().join(", ")
                    ),
                ));
            }
        }
        check_len("input", self.input.0.len(), max_len)?;
        for (field, t) in [("gamma", &self.gamma), ("beta", &self.beta)] {
            if let Some(t) = t {
                check_len(field, t.0.len(), max_len)?;
            }
        }
        for (field, v) in [
            ("running_mean", &self.running_mean),
            ("running_var", &self.running_var),
        ] {
            if let Some(v) = v {
                check_len(field, v.len(), max_len)?;
            }
        }
        Ok(())
    }
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
    let kind = Kind::parse(&kind)?;
    let ApiJson(body) = ApiJson::<NormalizeRequest>::from_request(request, &state).await?;
    body.check(kind, state.config.max_array_len)?;
    let len = body.input.0.len();
    let response = compute(len, move || run(kind, body)).await??;
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

/// Runs the core for `kind` on a checked request.
fn run(kind: Kind, body: NormalizeRequest) -> Result<NormalizeResponse, ApiError> {
    let eps = body.eps.unwrap_or(1e-5);
    let affine = Affine {
        gamma: body.gamma.as_ref().map(|t| t.0.view()),
        beta: body.beta.as_ref().map(|t| t.0.view()),
    };
    let input = body.input.0.view();
    let (normalized, running) = match kind {
        Kind::Batch => {
            let running = running_stats(&body)?;
            let params = BatchNormParams {
                eps,
                momentum: body.momentum.unwrap_or(0.1),
                training: body.training.unwrap_or(true),
            };
            let r = batch_norm(input, &affine, running, params).map_err(norm_error)?;
            (r.normalized, Some(r.running))
        }
        Kind::Layer => (
            layer_norm(input, body.normalized_dims, &affine, eps).map_err(norm_error)?,
            None,
        ),
        Kind::Instance => (
            instance_norm(input, &affine, eps).map_err(norm_error)?,
            None,
        ),
        Kind::Group => {
            let groups = body.groups.ok_or_else(|| {
                ApiError::invalid(
                    "groups",
                    "group norm needs groups, the number of channel groups (it must divide C)",
                )
            })?;
            (
                group_norm(input, groups, &affine, eps).map_err(norm_error)?,
                None,
            )
        }
    };
    Ok(response(normalized, running))
}

/// Running stats from the request: both, or neither (then PyTorch's 0 and 1).
fn running_stats(body: &NormalizeRequest) -> Result<Option<RunningStats>, ApiError> {
    match (&body.running_mean, &body.running_var) {
        (Some(mean), Some(var)) => Ok(Some(RunningStats {
            mean: mean.clone(),
            var: var.clone(),
        })),
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

fn response(n: Normalized, running: Option<RunningStats>) -> NormalizeResponse {
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
async fn catalogue() -> Json<Value> {
    let common = |extra: Value| {
        let mut params = vec![
            json!({"name": "eps", "type": "number", "default": 1e-5, "description": "added to the variance; > 0"}),
            json!({"name": "gamma", "type": "nested array", "default": null, "description": "scale; absent = 1"}),
            json!({"name": "beta", "type": "nested array", "default": null, "description": "shift; absent = 0"}),
        ];
        if let Value::Array(more) = extra {
            params.extend(more);
        }
        params
    };
    Json(json!([
        {
            "kind": "batch",
            "formula": "y = (x - mean[c]) / sqrt(var[c] + eps) * gamma[c] + beta[c]; statistics per channel over N and spatial dims",
            "stats_shape": "[C]",
            "params": common(json!([
                {"name": "training", "type": "boolean", "default": true, "description": "true: batch statistics (biased var) and running update with the unbiased var; false: running statistics"},
                {"name": "running_mean", "type": "array", "default": null, "description": "length C; absent = zeros"},
                {"name": "running_var", "type": "array", "default": null, "description": "length C, >= 0; absent = ones"},
                {"name": "momentum", "type": "number", "default": 0.1, "description": "running = (1 - momentum) * running + momentum * batch statistic; in [0, 1]"}
            ])),
        },
        {
            "kind": "layer",
            "formula": "y = (x - mean) / sqrt(var + eps) * gamma + beta; statistics over the last normalized_dims dims",
            "stats_shape": "the leading (non-normalized) dims",
            "params": common(json!([
                {"name": "normalized_dims", "type": "integer", "default": null, "description": "number of trailing dims to normalize over; absent = all but N"}
            ])),
        },
        {
            "kind": "instance",
            "formula": "y = (x - mean[n,c]) / sqrt(var[n,c] + eps) * gamma[c] + beta[c]; statistics per sample and channel over spatial dims",
            "stats_shape": "[N, C]",
            "params": common(json!([])),
        },
        {
            "kind": "group",
            "formula": "y = (x - mean[n,g]) / sqrt(var[n,g] + eps) * gamma[c] + beta[c]; statistics per sample and group of C/G channels",
            "stats_shape": "[N, G]",
            "params": common(json!([
                {"name": "groups", "type": "integer", "default": null, "description": "required; number of groups G, must divide C"}
            ])),
        }
    ]))
}
