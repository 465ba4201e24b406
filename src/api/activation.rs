//! `POST /activation/{name}` (an activation's output and gradient) and
//! `GET /activation` (the catalogue: parameters, defaults, formulas).
//!
//! Each activation has its own parameter struct (see [`super::params`]),
//! chosen by the name in the path; the catalogue lists the parameters from
//! the same structs.
//!
//! Also home of two small helpers shared with [`super::normalize`]: the
//! finiteness guard and blocking-pool dispatch.

use std::future::Future;
use std::pin::Pin;
use std::sync::OnceLock;

use axum::extract::{FromRequest, Path, Request, State};
use axum::routing::get;
use axum::{Json, Router};
use bytes::Bytes;
use ndarray::{ArrayD, ArrayViewD, Dimension, IxDyn};
use serde::{Deserialize, Serialize};

use super::catalogue::{self, Entry, Parameter};
use super::error::{ApiError, ApiResult};
use super::extract::{parse_off_the_async_workers, JsonBytes};
use super::limits::check_array_len;
use super::params::{
    param_set, union_of, ArrayLen, Body, InputData, InputRoute, JsonType, ParamDoc, ParamSet,
    RouteKeys,
};
use super::tensor::Tensor;
use super::AppState;
use crate::core::activation::{
    log_softmax, maxout, prelu, rrelu_train, softmax, Activated, ActivationError, Elementwise,
    GeluApproximation, HardSigmoidVariant,
};
use crate::core::index::format_index;
use crate::core::rng::SplitMix64;

/// Inputs with more elements than this are computed on the blocking pool so
/// a large request does not stall the async workers.
const BLOCKING_THRESHOLD: usize = 64 * 1024;

/// Routes of this resource.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/activation", get(catalogue))
        .route("/activation/{name}", get(describe).post(activate))
}

/// Runs `f` inline for small inputs, on the blocking pool for large ones.
pub(super) async fn compute<T, F>(len: usize, f: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    if len > BLOCKING_THRESHOLD {
        tokio::task::spawn_blocking(f)
            .await
            .map_err(ApiError::internal)
    } else {
        Ok(f())
    }
}

/// 422 naming the position of the first non-finite value of a result: JSON
/// cannot carry it, and it only arises when the inputs are so large that the
/// result overflows f64.
pub(super) fn check_finite(field: &str, a: &ArrayD<f64>) -> Result<(), ApiError> {
    match a.indexed_iter().find(|(_, v)| !v.is_finite()) {
        None => Ok(()),
        Some((index, _)) => {
            let position = format_index(index.slice());
            Err(ApiError::invalid(
                field,
                format!("{field} overflows f64 at {position}; the input values or parameters are too large"),
            ))
        }
    }
}

/// Activation names, as in the URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Name {
    Sigmoid,
    HardSigmoid,
    Softmax,
    LogSoftmax,
    Tanh,
    Relu,
    Relu6,
    LeakyRelu,
    Prelu,
    Rrelu,
    Elu,
    Gelu,
    Swish,
    Silu,
    HardSwish,
    Maxout,
}

/// One activation in the catalogue (its parameters come from its struct).
struct Spec {
    name: Name,
    key: &'static str,
    /// What it is, in one line (the catalogue's `summary`).
    summary: &'static str,
    formula: &'static str,
    gradient: &'static str,
}

const SPECS: &[Spec] = &[
    Spec { name: Name::Sigmoid, key: "sigmoid", summary: "logistic sigmoid (torch.sigmoid)", formula: "1 / (1 + e^-x), evaluated without overflow", gradient: "s (1 - s), as e^-|x| / (1 + e^-|x|)^2" },
    Spec { name: Name::HardSigmoid, key: "hard_sigmoid", summary: "piecewise-linear sigmoid (torch Hardsigmoid or Keras 2)", formula: "pytorch: relu6(x + 3) / 6; keras2: clip(0.2 x + 0.5, 0, 1)", gradient: "pytorch: 1/6 on (-3, 3), else 0; keras2: 0.2 on (-2.5, 2.5), else 0" },
    Spec { name: Name::Softmax, key: "softmax", summary: "softmax along a dim (torch.softmax)", formula: "e^(x_i - max) / sum_j e^(x_j - max) along dim", gradient: "VJP: y_i (g_i - sum_j g_j y_j)" },
    Spec { name: Name::LogSoftmax, key: "log_softmax", summary: "log of softmax along a dim (torch.log_softmax)", formula: "x_i - max - ln sum_j e^(x_j - max) along dim", gradient: "VJP: g_i - e^(y_i) sum_j g_j" },
    Spec { name: Name::Tanh, key: "tanh", summary: "hyperbolic tangent (torch.tanh)", formula: "tanh x", gradient: "1 - tanh^2 x" },
    Spec { name: Name::Relu, key: "relu", summary: "rectified linear unit (torch.relu)", formula: "max(x, 0)", gradient: "1 for x > 0, else 0 (0 at x = 0)" },
    Spec { name: Name::Relu6, key: "relu6", summary: "ReLU capped at 6 (torch ReLU6)", formula: "min(max(x, 0), 6)", gradient: "1 on (0, 6), else 0 (0 at both kinks)" },
    Spec { name: Name::LeakyRelu, key: "leaky_relu", summary: "ReLU with a small negative slope (torch LeakyReLU)", formula: "x for x > 0, negative_slope * x otherwise", gradient: "1 for x > 0, negative_slope for x <= 0" },
    Spec { name: Name::Prelu, key: "prelu", summary: "ReLU with a learned slope per channel (torch PReLU)", formula: "x for x > 0, w_c * x otherwise (c = channel, dim 1)", gradient: "1 for x > 0, w_c for x <= 0; weight_gradient[c] = sum of x <= 0 in channel c (d sum(y) / d w)" },
    Spec { name: Name::Rrelu, key: "rrelu", summary: "ReLU with a random negative slope in training (torch RReLU)", formula: "x for x > 0; training: a_i x with a_i ~ U(lower, upper) drawn from seed; evaluation: (lower + upper) / 2 * x", gradient: "1 for x > 0, the slope used for x <= 0" },
    Spec { name: Name::Elu, key: "elu", summary: "exponential linear unit (torch ELU)", formula: "x for x > 0, alpha (e^x - 1) for x <= 0", gradient: "1 for x > 0, alpha e^x for x <= 0" },
    Spec { name: Name::Gelu, key: "gelu", summary: "Gaussian error linear unit, exact or tanh-approximated (torch GELU)", formula: "none: x Phi(x) = x/2 erfc(-x/sqrt 2); tanh: x/2 (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))", gradient: "none: Phi(x) + x phi(x); tanh: its exact derivative" },
    Spec { name: Name::Swish, key: "swish", summary: "x sigmoid(beta x)", formula: "x sigmoid(beta x)", gradient: "s + beta x s (1 - s), s = sigmoid(beta x)" },
    Spec { name: Name::Silu, key: "silu", summary: "sigmoid linear unit, swish with beta 1 (torch SiLU)", formula: "x sigmoid(x) (swish with beta 1)", gradient: "s + x s (1 - s)" },
    Spec { name: Name::HardSwish, key: "hard_swish", summary: "piecewise-quadratic swish (torch Hardswish)", formula: "x relu6(x + 3) / 6", gradient: "0 for x <= -3, x/3 + 1/2 on (-3, 3), 1 for x >= 3" },
    Spec { name: Name::Maxout, key: "maxout", summary: "maximum over groups of channels (Goodfellow et al. 2013)", formula: "y[n, j] = max_k x[n, j*pieces + k], k < pieces (channel dim 1)", gradient: "VJP: grad_output routed to the winning piece (first on ties), 0 elsewhere; shaped like the input" },
];

fn spec(name: &str) -> Result<&'static Spec, ApiError> {
    SPECS.iter().find(|s| s.key == name).ok_or_else(|| {
        let valid: Vec<&str> = SPECS.iter().map(|s| s.key).collect();
        ApiError::unknown_name("activation", name, &valid)
    })
}

/// `variant` of hard_sigmoid as it appears in requests.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum VariantName {
    #[default]
    Pytorch,
    Keras2,
}

impl JsonType for VariantName {
    const NAME: &'static str = "string";
}

impl ArrayLen for VariantName {}

impl From<VariantName> for HardSigmoidVariant {
    fn from(v: VariantName) -> Self {
        match v {
            VariantName::Pytorch => HardSigmoidVariant::Pytorch,
            VariantName::Keras2 => HardSigmoidVariant::Keras2,
        }
    }
}

/// `approximate` of gelu as it appears in requests.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ApproximateName {
    #[default]
    None,
    Tanh,
}

impl JsonType for ApproximateName {
    const NAME: &'static str = "string";
}

impl ArrayLen for ApproximateName {}

impl From<ApproximateName> for GeluApproximation {
    fn from(a: ApproximateName) -> Self {
        match a {
            ApproximateName::None => GeluApproximation::None,
            ApproximateName::Tanh => GeluApproximation::Tanh,
        }
    }
}

/// prelu's `weight`: one number, or one per channel.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(transparent)]
pub struct PreluWeight(pub Tensor);

impl JsonType for PreluWeight {
    const NAME: &'static str = "number | array";
}

impl ArrayLen for PreluWeight {
    fn array_len(&self) -> Option<usize> {
        self.0.array_len()
    }
}

param_set! {
    /// Activations without parameters.
    pub struct NoParams {}
}

param_set! {
    /// Parameters of `hard_sigmoid`.
    pub struct HardSigmoidParams {
        /// pytorch (also Keras 3) | keras2 (Keras 2 / tf.keras)
        variant: VariantName = VariantName::Pytorch,
    }
}

param_set! {
    /// Parameters of `softmax` and `log_softmax`.
    pub struct SoftmaxParams {
        /// dim to normalize along; negative counts from the end
        dim: i64 = -1,
        /// upstream gradient, shaped like the output; absent = ones
        grad_output: Option<Tensor> = None,
    }
}

param_set! {
    /// Parameters of `leaky_relu`.
    pub struct LeakyReluParams {
        /// slope for x <= 0
        negative_slope: f64 = 0.01,
    }
}

param_set! {
    /// Parameters of `prelu`.
    pub struct PreluParams {
        /// one shared slope, or one per channel (input.shape[1])
        weight: PreluWeight = PreluWeight(Tensor(ArrayD::from_elem(IxDyn(&[]), 0.25))),
    }
}

param_set! {
    /// Parameters of `rrelu`.
    pub struct RreluParams {
        /// lower bound of the slope
        lower: f64 = 1.0 / 8.0,
        /// upper bound of the slope; >= lower
        upper: f64 = 1.0 / 3.0,
        /// random slopes (true) or the mean slope (false), as F.rrelu
        training: bool = false,
        /// SplitMix64 seed for the slopes; absent = random, returned as seed
        seed: Option<u64> = None,
    }
}

param_set! {
    /// Parameters of `elu`.
    pub struct EluParams {
        /// scale of the negative part
        alpha: f64 = 1.0,
    }
}

param_set! {
    /// Parameters of `gelu`.
    pub struct GeluParams {
        /// none (exact, erf) | tanh
        approximate: ApproximateName = ApproximateName::None,
    }
}

param_set! {
    /// Parameters of `swish`.
    pub struct SwishParams {
        /// beta = 1 is silu
        beta: f64 = 1.0,
    }
}

param_set! {
    /// Parameters of `maxout`.
    pub struct MaxoutParams {
        /// required; pieces per output channel, must divide C
        pieces: Option<usize> = None,
        /// upstream gradient, shaped like the output; absent = ones
        grad_output: Option<Tensor> = None,
    }
}

/// An activation's parameter struct, run on an input.
trait ActivationParams: ParamSet {
    /// Checks that need the parameters alone (before the core runs).
    fn check(&self) -> Result<(), ApiError> {
        Ok(())
    }

    /// Runs the activation `name` (one this struct belongs to) on `x`.
    fn run(self, name: Name, x: ArrayViewD<'_, f64>) -> Result<ActivationResponse, ApiError>;
}

fn elementwise(e: Elementwise, x: ArrayViewD<'_, f64>) -> Result<ActivationResponse, ApiError> {
    e.apply(x)
        .map(ActivationResponse::from)
        .map_err(activation_error)
}

impl ActivationParams for NoParams {
    fn run(self, name: Name, x: ArrayViewD<'_, f64>) -> Result<ActivationResponse, ApiError> {
        let e = match name {
            Name::Sigmoid => Elementwise::Sigmoid,
            Name::Tanh => Elementwise::Tanh,
            Name::Relu => Elementwise::Relu,
            Name::Relu6 => Elementwise::Relu6,
            Name::Silu => Elementwise::Swish { beta: 1.0 },
            Name::HardSwish => Elementwise::HardSwish,
            other => return Err(ApiError::internal(format!("{other:?} has parameters"))),
        };
        elementwise(e, x)
    }
}

impl ActivationParams for HardSigmoidParams {
    fn run(self, _: Name, x: ArrayViewD<'_, f64>) -> Result<ActivationResponse, ApiError> {
        elementwise(Elementwise::HardSigmoid(self.variant.into()), x)
    }
}

impl ActivationParams for SoftmaxParams {
    fn run(self, name: Name, x: ArrayViewD<'_, f64>) -> Result<ActivationResponse, ApiError> {
        let g = self.grad_output.as_ref().map(|t| t.0.view());
        let result = if name == Name::LogSoftmax {
            log_softmax(x, self.dim, g)
        } else {
            softmax(x, self.dim, g)
        };
        result
            .map(ActivationResponse::from)
            .map_err(activation_error)
    }
}

impl ActivationParams for LeakyReluParams {
    fn run(self, _: Name, x: ArrayViewD<'_, f64>) -> Result<ActivationResponse, ApiError> {
        let negative_slope = self.negative_slope;
        elementwise(Elementwise::LeakyRelu { negative_slope }, x)
    }
}

impl ActivationParams for PreluParams {
    fn check(&self) -> Result<(), ApiError> {
        let ndim = self.weight.0 .0.ndim();
        if ndim > 1 {
            return Err(ApiError::invalid(
                "weight",
                format!("weight has {ndim} dimensions but must be a number or a 1-d array"),
            ));
        }
        Ok(())
    }

    fn run(self, _: Name, x: ArrayViewD<'_, f64>) -> Result<ActivationResponse, ApiError> {
        let weight = self.weight.0 .0;
        let flat: Vec<f64> = weight.iter().copied().collect();
        let r = prelu(x, &flat).map_err(activation_error)?;
        let weight_gradient = ArrayD::from_shape_vec(weight.raw_dim(), r.weight_gradient)
            .map_err(ApiError::internal)?;
        let mut response = ActivationResponse::from(r.activated);
        response.weight_gradient = Some(Tensor(weight_gradient));
        Ok(response)
    }
}

impl ActivationParams for RreluParams {
    fn run(self, _: Name, x: ArrayViewD<'_, f64>) -> Result<ActivationResponse, ApiError> {
        let RreluParams {
            lower,
            upper,
            training,
            seed,
        } = self;
        if lower > upper {
            return Err(activation_error(ActivationError::Bounds { lower, upper }));
        }
        if training {
            let seed = seed.unwrap_or_else(fresh_seed);
            let activated = rrelu_train(x, lower, upper, seed).map_err(activation_error)?;
            let mut response = ActivationResponse::from(activated);
            response.seed = Some(seed);
            Ok(response)
        } else {
            let negative_slope = (lower + upper) / 2.0;
            elementwise(Elementwise::LeakyRelu { negative_slope }, x)
        }
    }
}

impl ActivationParams for EluParams {
    fn run(self, _: Name, x: ArrayViewD<'_, f64>) -> Result<ActivationResponse, ApiError> {
        elementwise(Elementwise::Elu { alpha: self.alpha }, x)
    }
}

impl ActivationParams for GeluParams {
    fn run(self, _: Name, x: ArrayViewD<'_, f64>) -> Result<ActivationResponse, ApiError> {
        elementwise(Elementwise::Gelu(self.approximate.into()), x)
    }
}

impl ActivationParams for SwishParams {
    fn run(self, _: Name, x: ArrayViewD<'_, f64>) -> Result<ActivationResponse, ApiError> {
        elementwise(Elementwise::Swish { beta: self.beta }, x)
    }
}

impl ActivationParams for MaxoutParams {
    fn run(self, _: Name, x: ArrayViewD<'_, f64>) -> Result<ActivationResponse, ApiError> {
        let pieces = self.pieces.ok_or_else(|| {
            ApiError::invalid(
                "pieces",
                "maxout needs pieces, the number of channels per output channel (it must divide C)",
            )
        })?;
        let g = self.grad_output.as_ref().map(|t| t.0.view());
        maxout(x, pieces, g)
            .map(ActivationResponse::from)
            .map_err(activation_error)
    }
}

/// What the route needs of one activation's parameter struct: the one place
/// that maps an activation to its parameters.
struct ParamsOf {
    docs: &'static [ParamDoc],
    catalogue: fn() -> Vec<Parameter>,
    activate: fn(Bytes, Name, &'static str, usize) -> ActivatedFuture,
}

type ActivatedFuture = Pin<Box<dyn Future<Output = Result<ActivationResponse, ApiError>> + Send>>;

impl ParamsOf {
    fn of<P: ActivationParams>() -> Self {
        ParamsOf {
            docs: P::DOCS,
            catalogue: P::catalogue,
            activate: activate_as::<P>,
        }
    }
}

fn params_of(name: Name) -> ParamsOf {
    match name {
        Name::Sigmoid | Name::Tanh | Name::Relu | Name::Relu6 | Name::Silu | Name::HardSwish => {
            ParamsOf::of::<NoParams>()
        }
        Name::HardSigmoid => ParamsOf::of::<HardSigmoidParams>(),
        Name::Softmax | Name::LogSoftmax => ParamsOf::of::<SoftmaxParams>(),
        Name::LeakyRelu => ParamsOf::of::<LeakyReluParams>(),
        Name::Prelu => ParamsOf::of::<PreluParams>(),
        Name::Rrelu => ParamsOf::of::<RreluParams>(),
        Name::Elu => ParamsOf::of::<EluParams>(),
        Name::Gelu => ParamsOf::of::<GeluParams>(),
        Name::Swish => ParamsOf::of::<SwishParams>(),
        Name::Maxout => ParamsOf::of::<MaxoutParams>(),
    }
}

/// `POST /activation/{name}`: `input` beside the parameters.
struct ActivationRoute;

impl InputRoute for ActivationRoute {
    const EXPECTING: &'static str = "struct ActivationRequest";

    /// Every activation parameter, each once, in catalogue order except that
    /// `grad_output`, the one several activations share, comes first: the order
    /// in which error messages have always listed them.
    fn keys() -> &'static RouteKeys {
        static KEYS: OnceLock<RouteKeys> = OnceLock::new();
        KEYS.get_or_init(|| {
            let mut params = union_of(SPECS.iter().map(|s| params_of(s.name).docs));
            params.sort_by_key(|name| *name != "grad_output");
            RouteKeys::new(&["input"], params)
        })
    }
}

/// Parses the body as `P` beside the input, checks it (parameters of other
/// activations, array lengths, `P`'s own checks) and runs the activation.
fn activate_as<P: ActivationParams>(
    bytes: Bytes,
    name: Name,
    key: &'static str,
    max_len: usize,
) -> ActivatedFuture {
    Box::pin(async move {
        let body = parse_off_the_async_workers(bytes, |b| {
            serde_json::from_slice::<Body<InputData<ActivationRoute>, P>>(b)
        })
        .await?;
        if let Some(field) = body.first_foreign() {
            let names = P::names();
            let valid = if names.is_empty() {
                "none".to_owned()
            } else {
                names.join(", ")
            };
            return Err(ApiError::invalid(
                field,
                format!("{field} does not apply to {key}; its parameters are: {valid}"),
            ));
        }
        check_array_len("input", body.data.0.len(), max_len)?;
        for (field, len) in body.params.array_lens() {
            check_array_len(field, len, max_len)?;
        }
        body.params.check()?;
        let Body { data, params, .. } = body;
        compute(data.0.len(), move || params.run(name, data.0.view())).await?
    })
}

/// Response of `POST /activation/{name}`.
#[derive(Debug, Serialize)]
struct ActivationResponse {
    output: Tensor,
    gradient: Tensor,
    /// prelu only: d sum(output) / d weight, shaped like `weight`.
    #[serde(skip_serializing_if = "Option::is_none")]
    weight_gradient: Option<Tensor>,
    /// rrelu in training only: the seed that drew the slopes.
    #[serde(skip_serializing_if = "Option::is_none")]
    seed: Option<u64>,
}

impl From<Activated> for ActivationResponse {
    fn from(a: Activated) -> Self {
        ActivationResponse {
            output: Tensor(a.output),
            gradient: Tensor(a.gradient),
            weight_gradient: None,
            seed: None,
        }
    }
}

async fn activate(
    State(state): State<AppState>,
    Path(name): Path<String>,
    request: Request,
) -> Result<Json<ActivationResponse>, ApiError> {
    // The name is checked before the body is read: an unknown name is a 404
    // whatever the body holds.
    let spec = spec(&name)?;
    let JsonBytes(bytes) = JsonBytes::from_request(request, &state).await?;
    let activate = params_of(spec.name).activate;
    let response = activate(bytes, spec.name, spec.key, state.config.max_array_len).await?;
    check_finite("output", &response.output.0)?;
    check_finite("gradient", &response.gradient.0)?;
    if let Some(w) = &response.weight_gradient {
        check_finite("weight_gradient", &w.0)?;
    }
    Ok(Json(response))
}

/// A seed for a training rrelu call that did not bring one: the clock mixed
/// through SplitMix64, kept below 2^53 so JavaScript clients can send it back.
fn fresh_seed() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    SplitMix64::new(nanos).next_u64() >> 11
}

/// A core error becomes a 422 naming the parameter; a shape error inside the
/// core would be our bug.
fn activation_error(err: ActivationError) -> ApiError {
    match err {
        ActivationError::Shape(_) => ApiError::internal(err),
        _ => ApiError::invalid(err.param(), err.to_string()),
    }
}

/// `GET /activation`: every activation with its parameters, defaults,
/// formula and gradient convention.
async fn catalogue() -> Json<Vec<Entry>> {
    Json(entries())
}

/// `GET /activation/{name}`: one catalogue entry.
async fn describe(Path(name): Path<String>) -> ApiResult<Json<Entry>> {
    catalogue::describe("activation", &name, entries())
}

fn entries() -> Vec<Entry> {
    SPECS
        .iter()
        .map(|s| {
            Entry::new(s.key, s.summary, (params_of(s.name).catalogue)())
                .detail("formula", s.formula)
                .detail("gradient", s.gradient)
        })
        .collect()
}
