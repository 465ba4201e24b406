//! HTTP routes for losses: `POST /loss/{name}` evaluates a loss and its
//! gradient, `GET /loss` lists the catalogue, `GET /loss/{name}` describes one.
//!
//! Each loss has its own parameter struct ([`BceParams`], [`FocalParams`],
//! ...; see [`super::params`]), chosen by the name in the path: the body is
//! read as the data beside that struct, a parameter of another loss is
//! refused by name, and the struct is checked into the core's [`Loss`] once.
//! The catalogue lists the parameters from the same structs. Data checks
//! (shapes, ranges, class indices) happen in the core.

use std::future::Future;
use std::pin::Pin;
use std::sync::OnceLock;

use axum::extract::{FromRequest, Path, Request, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use bytes::Bytes;
use serde::de::MapAccess;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::catalogue::{self, Entry, Parameter};
use super::error::{ApiError, ApiResult};
use super::extract::{json_error, parse_off_the_async_workers, JsonBytes};
use super::limits::check_array_len;
use super::params::{
    fill, param_set, required, union_of, Body, Envelope, ParamDoc, ParamSet, RouteKeys,
};
use super::tensor::Tensor;
use super::AppState;
use crate::core::losses::{
    all_names, lookup, Bce, CrossEntropy, Dice, Focal, Huber, Iou, Loss, LossError, LossKind,
    LossSpec, LossValue, Reduction, Regularization, SmoothL1, LOSSES,
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

param_set! {
    /// Parameters of `bce`.
    pub struct BceParams {
        /// per-element weights >= 0, broadcast to the predictions
        weights: Option<Tensor> = None,
        /// predictions are logits; the sigmoid is applied first
        from_logits: bool = false,
        /// weight >= 0 of the positive term, broadcast to the predictions (needs from_logits)
        pos_weight: Option<Tensor> = None,
    }
}

param_set! {
    /// Parameters of `cross_entropy`.
    pub struct CrossEntropyParams {
        /// one weight >= 0 per class; mean divides by the summed weight of the targets
        class_weights: Option<Tensor> = None,
        /// in [0, 1]: targets become (1 - e) target + e / C
        label_smoothing: f64 = 0.0,
        /// class-index targets equal to it contribute nothing (class indices only)
        ignore_index: i64 = cross_entropy::DEFAULT_IGNORE_INDEX,
        /// predictions are probabilities; max(ln p, -100) replaces log_softmax
        from_probabilities: bool = false,
    }
}

param_set! {
    /// `l1` takes no parameters.
    pub struct L1Params {}
}

param_set! {
    /// `mse` takes no parameters.
    pub struct MseParams {}
}

param_set! {
    /// Parameters of `smooth_l1`.
    pub struct SmoothL1Params {
        /// threshold >= 0 (0 = l1)
        beta: f64 = regression::DEFAULT_BETA,
    }
}

param_set! {
    /// Parameters of `huber`.
    pub struct HuberParams {
        /// threshold > 0
        delta: f64 = regression::DEFAULT_DELTA,
    }
}

param_set! {
    /// Parameters of `focal`.
    pub struct FocalParams {
        /// weight of the positive class, <= 1; negative = off
        alpha: f64 = focal::DEFAULT_ALPHA,
        /// focusing exponent >= 0
        gamma: f64 = focal::DEFAULT_GAMMA,
        /// predictions are logits (torchvision); false = probabilities
        from_logits: bool = true,
    }
}

param_set! {
    /// Parameters of `dice`.
    pub struct DiceParams {
        /// added to numerator and denominator, >= 0
        smooth: f64 = overlap::DEFAULT_SMOOTH,
        /// denominator sums p^2 and y^2
        squared: bool = false,
        /// predictions are logits; the sigmoid is applied first
        from_logits: bool = false,
    }
}

param_set! {
    /// Parameters of `iou`.
    pub struct IouParams {
        /// added to numerator and denominator, >= 0
        smooth: f64 = overlap::DEFAULT_SMOOTH,
        /// predictions are logits; the sigmoid is applied first
        from_logits: bool = false,
    }
}

/// A loss's parameter struct, checked into the core's [`Loss`].
pub trait LossParams: ParamSet {
    /// The checked loss (the core refuses values out of range).
    fn build(self) -> ApiResult<Loss>;
}

impl LossParams for BceParams {
    fn build(self) -> ApiResult<Loss> {
        let weights = self.weights.map(Tensor::into_inner);
        let pos_weight = self.pos_weight.map(Tensor::into_inner);
        Ok(Loss::Bce(Bce::new(self.from_logits, weights, pos_weight)?))
    }
}

impl LossParams for CrossEntropyParams {
    fn build(self) -> ApiResult<Loss> {
        Ok(Loss::CrossEntropy(CrossEntropy::new(
            class_weights(self.class_weights.as_ref())?,
            self.label_smoothing,
            self.ignore_index,
            self.from_probabilities,
        )?))
    }
}

impl LossParams for L1Params {
    fn build(self) -> ApiResult<Loss> {
        Ok(Loss::L1)
    }
}

impl LossParams for MseParams {
    fn build(self) -> ApiResult<Loss> {
        Ok(Loss::Mse)
    }
}

impl LossParams for SmoothL1Params {
    fn build(self) -> ApiResult<Loss> {
        Ok(Loss::SmoothL1(SmoothL1::new(self.beta)?))
    }
}

impl LossParams for HuberParams {
    fn build(self) -> ApiResult<Loss> {
        Ok(Loss::Huber(Huber::new(self.delta)?))
    }
}

impl LossParams for FocalParams {
    fn build(self) -> ApiResult<Loss> {
        Ok(Loss::Focal(Focal::new(
            self.alpha,
            self.gamma,
            self.from_logits,
        )?))
    }
}

impl LossParams for DiceParams {
    fn build(self) -> ApiResult<Loss> {
        Ok(Loss::Dice(Dice::new(
            self.smooth,
            self.squared,
            self.from_logits,
        )?))
    }
}

impl LossParams for IouParams {
    fn build(self) -> ApiResult<Loss> {
        Ok(Loss::Iou(Iou::new(self.smooth, self.from_logits)?))
    }
}

/// What the routes need of one loss's parameter struct: the one place that
/// maps a loss of the core's catalogue to its parameters.
struct ParamsOf {
    docs: &'static [ParamDoc],
    catalogue: fn() -> Vec<Parameter>,
    from_bytes: fn(Bytes, &'static str, usize) -> PreparedFuture,
    from_value: fn(Value, &'static str) -> ApiResult<Prepared>,
}

type PreparedFuture = Pin<Box<dyn Future<Output = ApiResult<Prepared>> + Send>>;

impl ParamsOf {
    fn of<P: LossParams>() -> Self {
        ParamsOf {
            docs: P::DOCS,
            catalogue: P::catalogue,
            from_bytes: prepare_bytes::<P>,
            from_value: prepare_value::<P>,
        }
    }
}

fn params_of(kind: LossKind) -> ParamsOf {
    match kind {
        LossKind::Bce => ParamsOf::of::<BceParams>(),
        LossKind::CrossEntropy => ParamsOf::of::<CrossEntropyParams>(),
        LossKind::L1 => ParamsOf::of::<L1Params>(),
        LossKind::SmoothL1 => ParamsOf::of::<SmoothL1Params>(),
        LossKind::Huber => ParamsOf::of::<HuberParams>(),
        LossKind::Mse => ParamsOf::of::<MseParams>(),
        LossKind::Focal => ParamsOf::of::<FocalParams>(),
        LossKind::Dice => ParamsOf::of::<DiceParams>(),
        LossKind::Iou => ParamsOf::of::<IouParams>(),
    }
}

/// The parameters of the loss `kind`, as `GET /loss` lists them.
pub fn param_docs(kind: LossKind) -> &'static [ParamDoc] {
    params_of(kind).docs
}

/// The keys of `POST /loss/{name}`: every loss parameter, each once, in
/// catalogue order.
fn route_keys() -> &'static RouteKeys {
    static KEYS: OnceLock<RouteKeys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let params = union_of(LOSSES.iter().map(|spec| param_docs(spec.kind)));
        RouteKeys::new(LossData::FIELDS, params)
    })
}

/// The data of `POST /loss/{name}`, read beside the loss's parameters.
#[derive(Debug, Default)]
pub struct LossData {
    predictions: Option<Tensor>,
    targets: Option<Tensor>,
    reduction: Option<ReductionName>,
    regularization: Option<Option<RegularizationRequest>>,
}

/// [`LossData`] once read: what every loss is evaluated on.
#[derive(Debug)]
pub struct LossInputs {
    pub predictions: Tensor,
    pub targets: Tensor,
    pub reduction: ReductionName,
    pub regularization: Option<RegularizationRequest>,
}

impl Envelope for LossData {
    type Data = LossInputs;
    const EXPECTING: &'static str = "struct LossRequest";
    const FIELDS: &'static [&'static str] =
        &["predictions", "targets", "reduction", "regularization"];

    fn keys() -> &'static RouteKeys {
        route_keys()
    }

    fn read<'de, A: MapAccess<'de>>(
        &mut self,
        key: &'static str,
        map: &mut A,
    ) -> Result<(), A::Error> {
        match key {
            "predictions" => fill(&mut self.predictions, key, map),
            "targets" => fill(&mut self.targets, key, map),
            "reduction" => fill(&mut self.reduction, key, map),
            _ => fill(&mut self.regularization, key, map),
        }
    }

    fn finish<E: serde::de::Error>(self) -> Result<LossInputs, E> {
        Ok(LossInputs {
            predictions: required(self.predictions, "predictions")?,
            targets: required(self.targets, "targets")?,
            reduction: self.reduction.unwrap_or_default(),
            regularization: self.regularization.flatten(),
        })
    }
}

/// A body of `POST /loss/{name}` not yet checked against its loss, for
/// callers without a server (see [`compute`]).
#[derive(Debug, Clone, Deserialize)]
#[serde(transparent)]
pub struct LossRequest(pub serde_json::Map<String, Value>);

/// A request checked against its loss: the data and the checked loss.
#[derive(Debug)]
pub struct Prepared {
    pub inputs: LossInputs,
    pub loss: Loss,
}

fn prepare_bytes<P: LossParams>(bytes: Bytes, loss: &'static str, max: usize) -> PreparedFuture {
    Box::pin(async move {
        let body =
            parse_off_the_async_workers(bytes, |b| serde_json::from_slice::<Body<LossData, P>>(b))
                .await?;
        prepare(body, loss, Some(max))
    })
}

fn prepare_value<P: LossParams>(value: Value, loss: &'static str) -> ApiResult<Prepared> {
    let body = Body::<LossData, P>::deserialize(value).map_err(|e| json_error(e, "."))?;
    prepare(body, loss, None)
}

/// Checks a parsed body, in the order the route always has: array lengths
/// (when `max` is given), then parameters of other losses, then the
/// parameters' values.
fn prepare<P: LossParams>(
    body: Body<LossData, P>,
    loss: &'static str,
    max: Option<usize>,
) -> ApiResult<Prepared> {
    if let Some(max) = max {
        let inputs = &body.data;
        let data = [
            ("predictions", inputs.predictions.0.len()),
            ("targets", inputs.targets.0.len()),
        ];
        let penalty = inputs
            .regularization
            .as_ref()
            .map(|r| ("regularization.weights", r.weights.0.len()));
        data.into_iter()
            .chain(body.params.array_lens())
            .chain(penalty)
            .try_for_each(|(field, len)| check_array_len(field, len, max))?;
    }
    if let Some(name) = body.first_foreign() {
        let valid = P::names();
        let valid = if valid.is_empty() {
            "it takes none".to_owned()
        } else {
            format!("its parameters are {}", valid.join(", "))
        };
        return Err(ApiError::invalid(
            name,
            format!("{name} is not a parameter of loss '{loss}'; {valid}"),
        ));
    }
    Ok(Prepared {
        loss: body.params.build()?,
        inputs: body.data,
    })
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
async fn catalogue() -> Json<Vec<Entry>> {
    Json(entries())
}

/// `GET /loss/{name}`: one catalogue entry (aliases accepted).
async fn describe(Path(name): Path<String>) -> ApiResult<Json<Entry>> {
    catalogue::describe("loss", &name, entries())
}

/// The catalogue: every loss, `reduction` first among its parameters (the
/// route takes it for every loss).
fn entries() -> Vec<Entry> {
    LOSSES
        .iter()
        .map(|spec| {
            let parameters = std::iter::once(reduction_parameter())
                .chain((params_of(spec.kind).catalogue)())
                .collect();
            Entry::new(spec.name, spec.summary, parameters)
                .aliases(spec.aliases)
                .detail("formula", spec.formula)
        })
        .collect()
}

fn reduction_parameter() -> Parameter {
    Parameter {
        name: "reduction",
        kind: "string",
        default: Reduction::from(ReductionName::default()).name().into(),
        description: "how per-element losses are combined: their mean, their sum, or none (one value per item)",
        values: Some(Reduction::ALL.iter().map(|r| r.name()).collect()),
    }
}

/// The loss called `name`, or a 404 listing the valid names.
fn resolve(name: &str) -> ApiResult<&'static LossSpec> {
    lookup(name).ok_or_else(|| ApiError::unknown_name("loss", name, &all_names()))
}

/// `POST /loss/{name}`. The name is resolved before the body is read, so an
/// unknown loss is a 404 whatever the body holds; the body is then read as
/// that loss's parameters beside the data.
async fn evaluate(
    State(state): State<AppState>,
    Path(name): Path<String>,
    request: Request,
) -> ApiResult<Response> {
    let spec = resolve(&name)?;
    let JsonBytes(bytes) = JsonBytes::from_request(request, &state).await?;
    let prepared =
        (params_of(spec.kind).from_bytes)(bytes, spec.name, state.config.max_array_len).await?;
    let bytes = if prepared.inputs.predictions.0.len() > BLOCKING_THRESHOLD {
        tokio::task::spawn_blocking(move || evaluate_to_json(spec, prepared))
            .await
            .map_err(ApiError::internal)??
    } else {
        evaluate_to_json(spec, prepared)?
    };
    Ok(([(header::CONTENT_TYPE, "application/json")], bytes).into_response())
}

fn evaluate_to_json(spec: &LossSpec, prepared: Prepared) -> ApiResult<Vec<u8>> {
    let response = evaluate_prepared(spec, prepared)?;
    serde_json::to_vec(&response).map_err(ApiError::internal)
}

/// Evaluates the loss `spec` on an unchecked request: the whole of
/// `POST /loss/{name}` after reading the body (without the array-length
/// limit, which is the server's), usable without a server.
pub fn compute(spec: &LossSpec, body: LossRequest) -> ApiResult<LossResponse> {
    let prepared = (params_of(spec.kind).from_value)(Value::Object(body.0), spec.name)?;
    evaluate_prepared(spec, prepared)
}

/// The loss, its gradient and the penalty of a checked request.
fn evaluate_prepared(spec: &LossSpec, prepared: Prepared) -> ApiResult<LossResponse> {
    let Prepared { inputs, loss } = prepared;
    let reduction = Reduction::from(inputs.reduction);
    let output = loss
        .compute(
            inputs.predictions.0.view(),
            inputs.targets.0.view(),
            reduction,
        )
        .map_err(invalid)?;
    let penalty = inputs
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
