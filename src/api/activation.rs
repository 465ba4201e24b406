//! `POST /activation/{name}` (an activation's output and gradient) and
//! `GET /activation` (the catalogue: parameters, defaults, formulas).
//!
//! Also home of two small helpers shared with [`super::normalize`]: the
//! finiteness guard and blocking-pool dispatch.

use axum::extract::{FromRequest, Path, Request, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use ndarray::{ArrayD, Dimension, IxDyn};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::error::ApiError;
use super::extract::ApiJson;
use super::limits::check_array_len as check_len;
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
        .route("/activation/{name}", post(activate))
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

/// One parameter in the catalogue; `default` is a JSON literal.
struct Param {
    name: &'static str,
    ty: &'static str,
    default: &'static str,
    description: &'static str,
}

/// One activation in the catalogue.
struct Spec {
    name: Name,
    key: &'static str,
    formula: &'static str,
    gradient: &'static str,
    params: &'static [Param],
}

const GRAD_OUTPUT: Param = Param {
    name: "grad_output",
    ty: "nested array",
    default: "null",
    description: "upstream gradient, shaped like the output; absent = ones",
};

const SPECS: &[Spec] = &[
    Spec { name: Name::Sigmoid, key: "sigmoid", formula: "1 / (1 + e^-x), evaluated without overflow", gradient: "s (1 - s), as e^-|x| / (1 + e^-|x|)^2", params: &[] },
    Spec { name: Name::HardSigmoid, key: "hard_sigmoid", formula: "pytorch: relu6(x + 3) / 6; keras2: clip(0.2 x + 0.5, 0, 1)", gradient: "pytorch: 1/6 on (-3, 3), else 0; keras2: 0.2 on (-2.5, 2.5), else 0", params: &[
        Param { name: "variant", ty: "string", default: "\"pytorch\"", description: "pytorch (also Keras 3) | keras2 (Keras 2 / tf.keras)" },
    ] },
    Spec { name: Name::Softmax, key: "softmax", formula: "e^(x_i - max) / sum_j e^(x_j - max) along dim", gradient: "VJP: y_i (g_i - sum_j g_j y_j)", params: &[
        Param { name: "dim", ty: "integer", default: "-1", description: "dim to normalize along; negative counts from the end" },
        GRAD_OUTPUT,
    ] },
    Spec { name: Name::LogSoftmax, key: "log_softmax", formula: "x_i - max - ln sum_j e^(x_j - max) along dim", gradient: "VJP: g_i - e^(y_i) sum_j g_j", params: &[
        Param { name: "dim", ty: "integer", default: "-1", description: "dim to normalize along; negative counts from the end" },
        GRAD_OUTPUT,
    ] },
    Spec { name: Name::Tanh, key: "tanh", formula: "tanh x", gradient: "1 - tanh^2 x", params: &[] },
    Spec { name: Name::Relu, key: "relu", formula: "max(x, 0)", gradient: "1 for x > 0, else 0 (0 at x = 0)", params: &[] },
    Spec { name: Name::Relu6, key: "relu6", formula: "min(max(x, 0), 6)", gradient: "1 on (0, 6), else 0 (0 at both kinks)", params: &[] },
    Spec { name: Name::LeakyRelu, key: "leaky_relu", formula: "x for x > 0, negative_slope * x otherwise", gradient: "1 for x > 0, negative_slope for x <= 0", params: &[
        Param { name: "negative_slope", ty: "number", default: "0.01", description: "slope for x <= 0" },
    ] },
    Spec { name: Name::Prelu, key: "prelu", formula: "x for x > 0, w_c * x otherwise (c = channel, dim 1)", gradient: "1 for x > 0, w_c for x <= 0; weight_gradient[c] = sum of x <= 0 in channel c (d sum(y) / d w)", params: &[
        Param { name: "weight", ty: "number | array", default: "0.25", description: "one shared slope, or one per channel (input.shape[1])" },
    ] },
    Spec { name: Name::Rrelu, key: "rrelu", formula: "x for x > 0; training: a_i x with a_i ~ U(lower, upper) drawn from seed; evaluation: (lower + upper) / 2 * x", gradient: "1 for x > 0, the slope used for x <= 0", params: &[
        Param { name: "lower", ty: "number", default: "0.125", description: "lower bound of the slope" },
        Param { name: "upper", ty: "number", default: "0.3333333333333333", description: "upper bound of the slope; >= lower" },
        Param { name: "training", ty: "boolean", default: "false", description: "random slopes (true) or the mean slope (false), as F.rrelu" },
        Param { name: "seed", ty: "integer", default: "null", description: "SplitMix64 seed for the slopes; absent = random, returned as seed" },
    ] },
    Spec { name: Name::Elu, key: "elu", formula: "x for x > 0, alpha (e^x - 1) for x <= 0", gradient: "1 for x > 0, alpha e^x for x <= 0", params: &[
        Param { name: "alpha", ty: "number", default: "1.0", description: "scale of the negative part" },
    ] },
    Spec { name: Name::Gelu, key: "gelu", formula: "none: x Phi(x) = x/2 erfc(-x/sqrt 2); tanh: x/2 (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))", gradient: "none: Phi(x) + x phi(x); tanh: its exact derivative", params: &[
        Param { name: "approximate", ty: "string", default: "\"none\"", description: "none (exact, erf) | tanh" },
    ] },
    Spec { name: Name::Swish, key: "swish", formula: "x sigmoid(beta x)", gradient: "s + beta x s (1 - s), s = sigmoid(beta x)", params: &[
        Param { name: "beta", ty: "number", default: "1.0", description: "beta = 1 is silu" },
    ] },
    Spec { name: Name::Silu, key: "silu", formula: "x sigmoid(x) (swish with beta 1)", gradient: "s + x s (1 - s)", params: &[] },
    Spec { name: Name::HardSwish, key: "hard_swish", formula: "x relu6(x + 3) / 6", gradient: "0 for x <= -3, x/3 + 1/2 on (-3, 3), 1 for x >= 3", params: &[] },
    Spec { name: Name::Maxout, key: "maxout", formula: "y[n, j] = max_k x[n, j*pieces + k], k < pieces (channel dim 1)", gradient: "VJP: grad_output routed to the winning piece (first on ties), 0 elsewhere; shaped like the input", params: &[
        Param { name: "pieces", ty: "integer", default: "null", description: "required; pieces per output channel, must divide C" },
        GRAD_OUTPUT,
    ] },
];

fn spec(name: &str) -> Result<&'static Spec, ApiError> {
    SPECS.iter().find(|s| s.key == name).ok_or_else(|| {
        let valid: Vec<&str> = SPECS.iter().map(|s| s.key).collect();
        ApiError::unknown_name("activation", name, &valid)
    })
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
enum VariantDto {
    Pytorch,
    Keras2,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
enum ApproximateDto {
    None,
    Tanh,
}

/// Body of `POST /activation/{name}`; which optional fields apply depends on
/// the name (see the catalogue); any other is a 422.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ActivationRequest {
    input: Tensor,
    grad_output: Option<Tensor>,
    variant: Option<VariantDto>,
    dim: Option<i64>,
    negative_slope: Option<f64>,
    weight: Option<Tensor>,
    lower: Option<f64>,
    upper: Option<f64>,
    training: Option<bool>,
    seed: Option<u64>,
    alpha: Option<f64>,
    approximate: Option<ApproximateDto>,
    beta: Option<f64>,
    pieces: Option<usize>,
}

impl ActivationRequest {
    fn present(&self) -> Vec<&'static str> {
        let flags = [
            ("grad_output", self.grad_output.is_some()),
            ("variant", self.variant.is_some()),
            ("dim", self.dim.is_some()),
            ("negative_slope", self.negative_slope.is_some()),
            ("weight", self.weight.is_some()),
            ("lower", self.lower.is_some()),
            ("upper", self.upper.is_some()),
            ("training", self.training.is_some()),
            ("seed", self.seed.is_some()),
            ("alpha", self.alpha.is_some()),
            ("approximate", self.approximate.is_some()),
            ("beta", self.beta.is_some()),
            ("pieces", self.pieces.is_some()),
        ];
        flags
            .into_iter()
            .filter(|(_, p)| *p)
            .map(|(n, _)| n)
            .collect()
    }

    /// Every field present must apply to `spec`; arrays within the budget.
    fn check(&self, spec: &Spec, max_len: usize) -> Result<(), ApiError> {
        for field in self.present() {
            if !spec.params.iter().any(|p| p.name == field) {
                let names: Vec<&str> = spec.params.iter().map(|p| p.name).collect();
                let valid = if names.is_empty() {
                    "none".to_owned()
                } else {
                    names.join(", ")
                };
                return Err(ApiError::invalid(
                    field,
                    format!(
                        "{field} does not apply to {}; its parameters are: {valid}",
                        spec.key
                    ),
                ));
            }
        }
        check_len("input", self.input.0.len(), max_len)?;
        if let Some(g) = &self.grad_output {
            check_len("grad_output", g.0.len(), max_len)?;
        }
        if let Some(w) = &self.weight {
            check_len("weight", w.0.len(), max_len)?;
            if w.0.ndim() > 1 {
                return Err(ApiError::invalid(
                    "weight",
                    format!(
                        "weight has {} dimensions but must be a number or a 1-d array",
                        w.0.ndim()
                    ),
                ));
            }
        }
        Ok(())
    }
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
    let ApiJson(body) = ApiJson::<ActivationRequest>::from_request(request, &state).await?;
    body.check(spec, state.config.max_array_len)?;
    let len = body.input.0.len();
    let response = compute(len, move || run(spec.name, body)).await??;
    check_finite("output", &response.output.0)?;
    check_finite("gradient", &response.gradient.0)?;
    if let Some(w) = &response.weight_gradient {
        check_finite("weight_gradient", &w.0)?;
    }
    Ok(Json(response))
}

/// Runs the core for `name` on a checked request.
fn run(name: Name, body: ActivationRequest) -> Result<ActivationResponse, ApiError> {
    let x = body.input.0.view();
    let g = body.grad_output.as_ref().map(|t| t.0.view());
    let dim = body.dim.unwrap_or(-1);
    let elementwise = |e: Elementwise| e.apply(x.clone()).map(ActivationResponse::from);
    let result = match name {
        Name::Sigmoid => elementwise(Elementwise::Sigmoid),
        Name::HardSigmoid => elementwise(Elementwise::HardSigmoid(match body.variant {
            None | Some(VariantDto::Pytorch) => HardSigmoidVariant::Pytorch,
            Some(VariantDto::Keras2) => HardSigmoidVariant::Keras2,
        })),
        Name::Softmax => softmax(x.clone(), dim, g).map(ActivationResponse::from),
        Name::LogSoftmax => log_softmax(x.clone(), dim, g).map(ActivationResponse::from),
        Name::Tanh => elementwise(Elementwise::Tanh),
        Name::Relu => elementwise(Elementwise::Relu),
        Name::Relu6 => elementwise(Elementwise::Relu6),
        Name::LeakyRelu => elementwise(Elementwise::LeakyRelu {
            negative_slope: body.negative_slope.unwrap_or(0.01),
        }),
        Name::Prelu => return run_prelu(&body),
        Name::Rrelu => return run_rrelu(&body),
        Name::Elu => elementwise(Elementwise::Elu {
            alpha: body.alpha.unwrap_or(1.0),
        }),
        Name::Gelu => elementwise(Elementwise::Gelu(match body.approximate {
            None | Some(ApproximateDto::None) => GeluApproximation::None,
            Some(ApproximateDto::Tanh) => GeluApproximation::Tanh,
        })),
        Name::Swish => elementwise(Elementwise::Swish {
            beta: body.beta.unwrap_or(1.0),
        }),
        Name::Silu => elementwise(Elementwise::Swish { beta: 1.0 }),
        Name::HardSwish => elementwise(Elementwise::HardSwish),
        Name::Maxout => {
            let pieces = body.pieces.ok_or_else(|| {
                ApiError::invalid("pieces", "maxout needs pieces, the number of channels per output channel (it must divide C)")
            })?;
            maxout(x.clone(), pieces, g).map(ActivationResponse::from)
        }
    };
    result.map_err(activation_error)
}

fn run_prelu(body: &ActivationRequest) -> Result<ActivationResponse, ApiError> {
    let default = ArrayD::from_elem(IxDyn(&[]), 0.25);
    let weight = body.weight.as_ref().map_or(&default, |w| &w.0);
    let flat: Vec<f64> = weight.iter().copied().collect();
    let r = prelu(body.input.0.view(), &flat).map_err(activation_error)?;
    let weight_gradient =
        ArrayD::from_shape_vec(weight.raw_dim(), r.weight_gradient).map_err(ApiError::internal)?;
    let mut response = ActivationResponse::from(r.activated);
    response.weight_gradient = Some(Tensor(weight_gradient));
    Ok(response)
}

fn run_rrelu(body: &ActivationRequest) -> Result<ActivationResponse, ApiError> {
    let lower = body.lower.unwrap_or(1.0 / 8.0);
    let upper = body.upper.unwrap_or(1.0 / 3.0);
    if lower > upper {
        return Err(activation_error(ActivationError::Bounds { lower, upper }));
    }
    let x = body.input.0.view();
    if body.training.unwrap_or(false) {
        let seed = body.seed.unwrap_or_else(fresh_seed);
        let mut response =
            ActivationResponse::from(rrelu_train(x, lower, upper, seed).map_err(activation_error)?);
        response.seed = Some(seed);
        Ok(response)
    } else {
        let negative_slope = (lower + upper) / 2.0;
        Elementwise::LeakyRelu { negative_slope }
            .apply(x)
            .map(ActivationResponse::from)
            .map_err(activation_error)
    }
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
async fn catalogue() -> Json<Value> {
    let list: Vec<Value> = SPECS
        .iter()
        .map(|s| {
            let params: Vec<Value> = s
                .params
                .iter()
                .map(|p| {
                    let default = serde_json::from_str::<Value>(p.default).unwrap_or(Value::Null);
                    json!({"name": p.name, "type": p.ty, "default": default, "description": p.description})
                })
                .collect();
            json!({"name": s.key, "formula": s.formula, "gradient": s.gradient, "params": params})
        })
        .collect();
    Json(Value::Array(list))
}
