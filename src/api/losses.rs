//! HTTP routes for losses: `POST /loss/{name}` evaluates a loss and its
//! gradient, `GET /loss` lists the catalogue, `GET /loss/{name}` describes one.
//!
//! The request DTO holds every loss parameter as an option; [`build_loss`]
//! rejects the ones the named loss does not take (so a typo or a parameter of
//! another loss never passes silently) and turns the rest into a checked
//! [`Loss`]. Data checks (shapes, ranges, class indices) happen in the core.

use axum::extract::{FromRequest, Path, Request, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::error::{ApiError, ApiResult};
use super::extract::ApiJson;
use super::tensor::Tensor;
use super::AppState;
use crate::core::losses::{
    all_names, lookup, Bce, CrossEntropy, Dice, Focal, Huber, Iou, Loss, LossError, LossKind,
    LossSpec, LossValue, ParamDefault, Reduction, Regularization, SmoothL1, LOSSES,
};
use crate::core::losses::{cross_entropy, focal, overlap, regression};

/// Requests with more prediction elements than this are computed (and their
/// response serialized) on the blocking pool, so a large loss does not stall
/// the async workers serving everyone else.
const BLOCKING_THRESHOLD: usize = 64 * 1024;

/// Routes of this resource.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/loss", get(catalogue))
        .route("/loss/{name}", get(describe).post(evaluate))
}

/// `reduction` as it appears in requests.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReductionName {
    #[default]
    Mean,
    Sum,
    None,
}

impl From<ReductionName> for Reduction {
    fn from(r: ReductionName) -> Self {
        match r {
            ReductionName::Mean => Reduction::Mean,
            ReductionName::Sum => Reduction::Sum,
            ReductionName::None => Reduction::None,
        }
    }
}

/// The optional `regularization` object.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegularizationRequest {
    pub weights: Tensor,
    #[serde(default)]
    pub l1: f64,
    #[serde(default)]
    pub l2: f64,
}

/// Body of `POST /loss/{name}`: data, reduction, and every loss's parameters
/// (each loss accepts only its own; see `GET /loss`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LossRequest {
    pub predictions: Tensor,
    pub targets: Tensor,
    #[serde(default)]
    pub reduction: ReductionName,
    pub regularization: Option<RegularizationRequest>,
    pub weights: Option<Tensor>,
    pub from_logits: Option<bool>,
    pub pos_weight: Option<Tensor>,
    pub class_weights: Option<Tensor>,
    pub label_smoothing: Option<f64>,
    pub ignore_index: Option<i64>,
    pub from_probabilities: Option<bool>,
    pub beta: Option<f64>,
    pub delta: Option<f64>,
    pub alpha: Option<f64>,
    pub gamma: Option<f64>,
    pub smooth: Option<f64>,
    pub squared: Option<bool>,
}

impl LossRequest {
    /// Names of the loss parameters present in the request.
    fn given_params(&self) -> Vec<&'static str> {
        let flags = [
            ("weights", self.weights.is_some()),
            ("from_logits", self.from_logits.is_some()),
            ("pos_weight", self.pos_weight.is_some()),
            ("class_weights", self.class_weights.is_some()),
            ("label_smoothing", self.label_smoothing.is_some()),
            ("ignore_index", self.ignore_index.is_some()),
            ("from_probabilities", self.from_probabilities.is_some()),
            ("beta", self.beta.is_some()),
            ("delta", self.delta.is_some()),
            ("alpha", self.alpha.is_some()),
            ("gamma", self.gamma.is_some()),
            ("smooth", self.smooth.is_some()),
            ("squared", self.squared.is_some()),
        ];
        flags
            .into_iter()
            .filter_map(|(name, given)| given.then_some(name))
            .collect()
    }

    /// Every array of the request with its field name.
    fn arrays(&self) -> Vec<(&'static str, &Tensor)> {
        let mut arrays = vec![
            ("predictions", &self.predictions),
            ("targets", &self.targets),
        ];
        let optional = [
            ("weights", &self.weights),
            ("pos_weight", &self.pos_weight),
            ("class_weights", &self.class_weights),
        ];
        arrays.extend(
            optional
                .into_iter()
                .filter_map(|(name, t)| t.as_ref().map(|t| (name, t))),
        );
        if let Some(r) = &self.regularization {
            arrays.push(("regularization.weights", &r.weights));
        }
        arrays
    }
}

/// Body of a successful `POST /loss/{name}`.
#[derive(Debug, Clone, Serialize)]
pub struct LossResponse {
    /// Canonical name of the loss (aliases resolve to it).
    pub name: &'static str,
    pub reduction: &'static str,
    /// The reduced loss (plus the penalty), or one value per item for `none`.
    pub loss: LossJson,
    /// d loss / d predictions, shaped like the predictions.
    pub gradient: Tensor,
    /// The loss before the penalty (only with `regularization`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_loss: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub penalty: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub weights_gradient: Option<Tensor>,
}

/// A loss value in JSON: a number, or nested arrays for `none`.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum LossJson {
    Scalar(f64),
    Items(Tensor),
}

/// A core error as a 422 naming its field.
fn invalid(err: LossError) -> ApiError {
    ApiError::invalid(err.field(), err.to_string())
}

/// `GET /loss`: every loss with its aliases, parameters, defaults and formula.
async fn catalogue() -> Json<Value> {
    let losses: Vec<Value> = LOSSES.iter().map(describe_spec).collect();
    let reductions: Vec<&str> = Reduction::ALL.iter().map(|r| r.name()).collect();
    Json(json!({"losses": losses, "reductions": reductions, "default_reduction": "mean"}))
}

/// `GET /loss/{name}`: one catalogue entry (aliases accepted).
async fn describe(Path(name): Path<String>) -> ApiResult<Json<Value>> {
    resolve(&name).map(|spec| Json(describe_spec(spec)))
}

fn describe_spec(spec: &LossSpec) -> Value {
    let params: Vec<Value> = spec
        .params
        .iter()
        .map(|p| {
            let default = match p.default {
                ParamDefault::Absent => Value::Null,
                ParamDefault::Number(v) => json!(v),
                ParamDefault::Integer(v) => json!(v),
                ParamDefault::Bool(v) => json!(v),
            };
            json!({"name": p.name, "type": p.kind, "default": default, "description": p.description})
        })
        .collect();
    json!({"name": spec.name, "aliases": spec.aliases, "params": params, "formula": spec.formula})
}

/// The loss called `name`, or a 404 listing the valid names.
fn resolve(name: &str) -> ApiResult<&'static LossSpec> {
    lookup(name).ok_or_else(|| ApiError::unknown_name("loss", name, &all_names()))
}

/// `POST /loss/{name}`. The name is resolved before the body is read, so an
/// unknown loss is a 404 whatever the body holds.
async fn evaluate(
    State(state): State<AppState>,
    Path(name): Path<String>,
    request: Request,
) -> ApiResult<Response> {
    let spec = resolve(&name)?;
    let ApiJson(body) = ApiJson::<LossRequest>::from_request(request, &state).await?;
    check_lengths(&body, state.config.max_array_len)?;
    let bytes = if body.predictions.0.len() > BLOCKING_THRESHOLD {
        tokio::task::spawn_blocking(move || evaluate_to_json(spec, body))
            .await
            .map_err(ApiError::internal)??
    } else {
        evaluate_to_json(spec, body)?
    };
    Ok(([(header::CONTENT_TYPE, "application/json")], bytes).into_response())
}

fn evaluate_to_json(spec: &LossSpec, body: LossRequest) -> ApiResult<Vec<u8>> {
    let response = compute(spec, body)?;
    serde_json::to_vec(&response).map_err(ApiError::internal)
}

/// 422 when an array is over `--max-array-len`.
fn check_lengths(body: &LossRequest, max: usize) -> ApiResult<()> {
    for (field, tensor) in body.arrays() {
        let len = tensor.0.len();
        if len > max {
            return Err(ApiError::invalid(
                field,
                format!("{field} has {len} elements, over the limit of {max} (--max-array-len)"),
            ));
        }
    }
    Ok(())
}

/// Evaluates the loss `spec` on a parsed request: the whole of
/// `POST /loss/{name}` after extraction, usable without a server.
pub fn compute(spec: &LossSpec, body: LossRequest) -> ApiResult<LossResponse> {
    let loss = build_loss(spec, &body)?;
    let reduction = Reduction::from(body.reduction);
    let output = loss
        .compute(body.predictions.0.view(), body.targets.0.view(), reduction)
        .map_err(invalid)?;
    let penalty = body
        .regularization
        .as_ref()
        .map(|r| {
            Regularization::new(r.l1, r.l2)
                .and_then(|reg| reg.penalty(&r.weights.0))
                .map_err(invalid)
        })
        .transpose()?;
    let added = penalty.as_ref().map_or(0.0, |p| p.value);
    let (loss, data_loss) = match output.loss {
        LossValue::Scalar(v) => (LossJson::Scalar(v + added), penalty.is_some().then_some(v)),
        // Per-item losses are left as they are: adding the penalty to every
        // item would count it once per item in their sum.
        LossValue::PerItem(items) => (LossJson::Items(Tensor(items)), None),
    };
    Ok(LossResponse {
        name: spec.name,
        reduction: reduction.name(),
        loss,
        gradient: Tensor(output.gradient),
        data_loss,
        penalty: penalty.as_ref().map(|p| p.value),
        weights_gradient: penalty.map(|p| Tensor(p.gradient)),
    })
}

/// Checks that every given parameter belongs to `spec`, then builds the
/// checked core loss with the defaults of the catalogue.
pub fn build_loss(spec: &LossSpec, body: &LossRequest) -> ApiResult<Loss> {
    for name in body.given_params() {
        if spec.param(name).is_none() {
            let valid: Vec<&str> = spec.params.iter().map(|p| p.name).collect();
            let valid = if valid.is_empty() {
                "it takes none".to_owned()
            } else {
                format!("its parameters are {}", valid.join(", "))
            };
            return Err(ApiError::invalid(
                name,
                format!("{name} is not a parameter of loss '{}'; {valid}", spec.name),
            ));
        }
    }
    let from_logits = body.from_logits.unwrap_or(false);
    let array = |t: &Option<Tensor>| t.as_ref().map(|t| t.0.clone());
    let loss = match spec.kind {
        LossKind::Bce => Loss::Bce(Bce::new(
            from_logits,
            array(&body.weights),
            array(&body.pos_weight),
        )?),
        LossKind::CrossEntropy => Loss::CrossEntropy(CrossEntropy::new(
            class_weights(body.class_weights.as_ref())?,
            body.label_smoothing.unwrap_or(0.0),
            body.ignore_index
                .unwrap_or(cross_entropy::DEFAULT_IGNORE_INDEX),
            body.from_probabilities.unwrap_or(false),
        )?),
        LossKind::L1 => Loss::L1,
        LossKind::Mse => Loss::Mse,
        LossKind::SmoothL1 => Loss::SmoothL1(SmoothL1::new(
            body.beta.unwrap_or(regression::DEFAULT_BETA),
        )?),
        LossKind::Huber => {
            Loss::Huber(Huber::new(body.delta.unwrap_or(regression::DEFAULT_DELTA))?)
        }
        LossKind::Focal => Loss::Focal(Focal::new(
            body.alpha.unwrap_or(focal::DEFAULT_ALPHA),
            body.gamma.unwrap_or(focal::DEFAULT_GAMMA),
            body.from_logits.unwrap_or(true),
        )?),
        LossKind::Dice => Loss::Dice(Dice::new(
            body.smooth.unwrap_or(overlap::DEFAULT_SMOOTH),
            body.squared.unwrap_or(false),
            from_logits,
        )?),
        LossKind::Iou => Loss::Iou(Iou::new(
            body.smooth.unwrap_or(overlap::DEFAULT_SMOOTH),
            from_logits,
        )?),
    };
    Ok(loss)
}

/// `class_weights` must be a vector (one weight per class).
fn class_weights(t: Option<&Tensor>) -> ApiResult<Option<Vec<f64>>> {
    match t {
        None => Ok(None),
        Some(t) if t.0.ndim() == 1 => Ok(Some(t.0.iter().copied().collect())),
        Some(t) => Err(ApiError::invalid(
            "class_weights",
            format!(
                "class_weights has shape {:?}; expected a vector with one weight per class",
                t.shape()
            ),
        )),
    }
}

impl From<LossError> for ApiError {
    fn from(err: LossError) -> Self {
        invalid(err)
    }
}
