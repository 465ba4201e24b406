//! HTTP routes for optimizers: one `torch.optim` step with explicit state,
//! a run on a built-in objective, and the catalogue.
//!
//! - `GET /optimizer`: every optimizer with its hyperparameters, defaults and
//!   state buffers, and every objective with its settings.
//! - `POST /optimizer/{name}/step`: `params`, `grads`, `state` (or null) and
//!   hyperparameters in; new `params` and `state` out.
//! - `POST /optimizer/{name}/run`: minimise `quadratic`, `rosenbrock` or
//!   `logistic` for `steps` steps; loss per step and the parameter path out.
//!
//! The optimizer name is checked before the body is read, so an unknown name
//! is a 404 listing the valid ones whatever the body holds.

use axum::extract::{FromRequest, Path, Request, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use ndarray::{ArrayD, Ix2, IxDyn};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::catalogue::{self, Entry, Parameter};
use super::error::{ApiError, ApiResult};
use super::extract::ApiJson;
use super::limits::{check_array_len, over_limit};
use super::tensor::Tensor;
use super::AppState;
use crate::core::index::position;
use crate::core::optim::hyper::with_every_hyperparameter;
use crate::core::optim::objectives::{
    Logistic, Objective, ObjectiveError, ObjectiveKind, Quadratic, Rosenbrock,
};
use crate::core::optim::run::{run, RunError, Trace};
use crate::core::optim::{
    Buffer, HyperValue, Hyperparameters, OptimError, Optimizer, OptimizerKind, State as OptimState,
};

/// Steps on more parameters than this run on the blocking pool.
const BLOCKING_STEP_LEN: usize = 64 * 1024;

/// Upper bound on the arithmetic one run may ask for, counted as
/// `steps x (dimension + 2 x samples x (dimension + 10))` for logistic (each
/// step evaluates the full loss and at most a full-batch gradient; the 10
/// stands for the exp and log of each sample) and `steps x dimension`
/// otherwise. Without it a small body (many steps over many samples) could
/// hold a blocking thread for minutes; the figure is a count, not a
/// measured time (no benchmark backs a seconds figure yet).
pub const MAX_RUN_WORK: u64 = 2_000_000_000;

/// Routes of this resource.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/optimizer", get(catalogue))
        .route("/optimizer/objectives", get(objectives))
        .route("/optimizer/{name}", get(describe))
        .route("/optimizer/{name}/step", post(step))
        .route("/optimizer/{name}/run", post(run_objective))
}

/// Declares a request struct that also carries every optimizer
/// hyperparameter as a top-level field (the names and types come from
/// [`with_every_hyperparameter!`], which calls this macro). serde's `flatten`
/// cannot be combined with `deny_unknown_fields`, so the fields are spliced
/// in; the derived parse keeps serde's own messages (types, duplicates,
/// "unknown field" listing every field).
macro_rules! request_with_hyperparameters {
    (
        $(#[$meta:meta])*
        struct $name:ident { $($(#[$fmeta:meta])* $field:ident: $ty:ty,)* } ;
        $($hyper:ident: $wire:ty => $held:ty,)*
    ) => {
        $(#[$meta])*
        #[derive(Debug, Deserialize)]
        #[serde(deny_unknown_fields)]
        struct $name {
            $($(#[$fmeta])* $field: $ty,)*
            $($hyper: Option<$wire>,)*
        }

        impl $name {
            /// The hyperparameters as given (unchecked).
            fn hyperparameters(&self) -> Hyperparameters {
                Hyperparameters { $($hyper: self.$hyper.map(Into::into),)* }
            }
        }
    };
}

with_every_hyperparameter! {
    request_with_hyperparameters! {
        /// Body of `POST /optimizer/{name}/step`.
        struct StepRequest {
            params: Tensor,
            grads: Tensor,
            state: Option<StateDto>,
        }
    }
}

with_every_hyperparameter! {
    request_with_hyperparameters! {
        /// Body of `POST /optimizer/{name}/run`.
        struct RunRequest {
            objective: String,
            steps: usize,
            start: Option<Vec<f64>>,
            dimension: Option<usize>,
            condition_number: Option<f64>,
            features: Option<Tensor>,
            labels: Option<Vec<BinaryLabel>>,
            fit_intercept: Option<bool>,
            batch_size: Option<usize>,
            seed: Option<u64>,
            l1: Option<f64>,
            l2: Option<f64>,
        }
    }
}

/// A logistic label: 0, 1, `false` or `true` (as the metrics endpoints take
/// them); any other number is passed on and refused with its position.
#[derive(Debug, Clone, Copy)]
struct BinaryLabel(f64);

impl<'de> Deserialize<'de> for BinaryLabel {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        super::labels::JsonLabel::deserialize_expecting(deserializer, "0, 1, false or true")
            .map(|label| BinaryLabel(label.number()))
    }
}

/// Optimizer state as JSON: the optimizer it belongs to, the step count and
/// torch's buffers, each shaped like `params`.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct StateDto {
    optimizer: String,
    step: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    momentum_buffer: Option<Tensor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sum: Option<Tensor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    square_avg: Option<Tensor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    grad_avg: Option<Tensor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    acc_delta: Option<Tensor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    exp_avg: Option<Tensor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    exp_avg_sq: Option<Tensor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    max_exp_avg_sq: Option<Tensor>,
}

impl StateDto {
    /// The field that holds `buffer`.
    fn slot(&mut self, buffer: Buffer) -> &mut Option<Tensor> {
        match buffer {
            Buffer::MomentumBuffer => &mut self.momentum_buffer,
            Buffer::Sum => &mut self.sum,
            Buffer::SquareAvg => &mut self.square_avg,
            Buffer::GradAvg => &mut self.grad_avg,
            Buffer::AccDelta => &mut self.acc_delta,
            Buffer::ExpAvg => &mut self.exp_avg,
            Buffer::ExpAvgSq => &mut self.exp_avg_sq,
            Buffer::MaxExpAvgSq => &mut self.max_exp_avg_sq,
        }
    }

    /// The buffers present, in [`Buffer::ALL`] order.
    fn present(&mut self) -> Vec<Buffer> {
        Buffer::ALL
            .into_iter()
            .filter(|buffer| self.slot(*buffer).is_some())
            .collect()
    }

    /// The JSON form of a core state, buffers shaped as `shape`.
    fn from_core(kind: OptimizerKind, state: &OptimState, shape: &[usize]) -> ApiResult<Self> {
        let mut dto = StateDto {
            optimizer: kind.name().to_owned(),
            step: state.step(),
            ..StateDto::default()
        };
        for (buffer, values) in state.contents() {
            let array = ArrayD::from_shape_vec(IxDyn(shape), values.to_vec()).map_err(|e| {
                ApiError::internal(format!("state {} lost its shape: {e}", buffer.name()))
            })?;
            *dto.slot(buffer) = Some(Tensor(array));
        }
        Ok(dto)
    }

    /// The checked core state for `kind`, every buffer shaped like `shape`.
    fn into_core(mut self, kind: OptimizerKind, shape: &[usize]) -> ApiResult<OptimState> {
        if self.optimizer != kind.name() {
            return Err(ApiError::invalid(
                "state.optimizer",
                format!(
                    "state.optimizer is '{}' but this is {}; pass the state returned by /optimizer/{}/step, or null to start fresh",
                    self.optimizer,
                    kind.name(),
                    kind.name()
                ),
            ));
        }
        let own: Vec<Buffer> = kind.state_buffers().iter().map(|(b, _)| *b).collect();
        for buffer in self.present() {
            let name = buffer.name();
            if !own.contains(&buffer) {
                let names: Vec<&str> = own.iter().map(|b| b.name()).collect();
                return Err(ApiError::invalid(
                    format!("state.{name}"),
                    format!(
                        "state.{name} is not part of {} state, which holds step, {}",
                        kind.name(),
                        names.join(", ")
                    ),
                ));
            }
            let found = self.slot(buffer).as_ref().map(|t| t.shape().to_vec());
            if let Some(found) = found.filter(|f| f.as_slice() != shape) {
                return Err(ApiError::invalid(
                    format!("state.{name}"),
                    format!("state.{name} has shape {found:?} but params has shape {shape:?}"),
                ));
            }
        }
        let step = self.step;
        OptimState::from_parts(kind, step, |buffer| {
            self.slot(buffer).take().map(|t| flat(t.into_inner()))
        })
        .map_err(|e| optim_error(e, shape))
    }
}

/// Response of `POST /optimizer/{name}/step`.
#[derive(Debug, Serialize)]
struct StepResponse {
    params: Tensor,
    state: StateDto,
}

/// Response of `POST /optimizer/{name}/run`.
#[derive(Debug, Serialize)]
struct RunResponse {
    optimizer: &'static str,
    objective: &'static str,
    steps: usize,
    steps_taken: usize,
    loss: Vec<f64>,
    path: Vec<Vec<f64>>,
    final_params: Vec<f64>,
    final_loss: f64,
    diverged_at_step: Option<usize>,
    warnings: Vec<String>,
}

/// The elements of `a` in row-major order, without a copy for the
/// standard-layout arrays the Tensor parser builds.
fn flat(a: ArrayD<f64>) -> Vec<f64> {
    if !a.is_standard_layout() {
        return a.iter().copied().collect();
    }
    // A standard-layout array's elements are raw[offset..offset + len].
    let len = a.len();
    let (mut raw, offset) = a.into_raw_vec_and_offset();
    raw.drain(..offset.unwrap_or(0).min(raw.len()));
    raw.truncate(len);
    raw
}

/// The 404 for an unknown optimizer name.
fn optimizer_kind(name: &str) -> ApiResult<OptimizerKind> {
    OptimizerKind::from_name(name)
        .ok_or_else(|| ApiError::unknown_name("optimizer", name, &OptimizerKind::names()))
}

/// A core error as a 422 naming the field (positions in `shape`'s terms).
fn optim_error(err: OptimError, shape: &[usize]) -> ApiError {
    let detail = err.to_string();
    match err {
        OptimError::InvalidHyperparameter { name, .. }
        | OptimError::UnknownHyperparameter { name, .. }
        | OptimError::LengthMismatch { name, .. } => ApiError::invalid(name, detail),
        OptimError::MissingBuffer { buffer, .. } => {
            ApiError::invalid(format!("state.{buffer}"), detail)
        }
        OptimError::NegativeBuffer { buffer, index, found } => ApiError::invalid(
            format!("state.{buffer}"),
            format!(
                "state.{buffer} at {} is {found} but must be >= 0 (it is a running average of squares)",
                position(index, shape)
            ),
        ),
        OptimError::StepOverflow(_) => ApiError::invalid("state.step", detail),
        OptimError::StateMismatch { .. } => ApiError::invalid("state.optimizer", detail),
        OptimError::NonFinite { buffer, index } => {
            let field = if buffer == "params" {
                "params".to_owned()
            } else {
                format!("state.{buffer}")
            };
            ApiError::invalid(
                field.clone(),
                format!(
                    "the step would make {field} at {} non-finite (overflow or 0/0); nothing was applied",
                    position(index, shape)
                ),
            )
        }
    }
}

/// An objective error as a 422 naming the field.
fn objective_error(err: ObjectiveError) -> ApiError {
    let detail = err.to_string();
    match err {
        ObjectiveError::Invalid { name, .. } | ObjectiveError::LengthMismatch { name, .. } => {
            ApiError::invalid(name, detail)
        }
        ObjectiveError::Label { .. } => ApiError::invalid("labels", detail),
    }
}

/// `POST /optimizer/{name}/step`.
async fn step(
    Path(name): Path<String>,
    State(app): State<AppState>,
    request: Request,
) -> ApiResult<Json<StepResponse>> {
    let kind = optimizer_kind(&name)?;
    let ApiJson(body) = ApiJson::<StepRequest>::from_request(request, &app).await?;
    let optimizer =
        Optimizer::new(kind, &body.hyperparameters()).map_err(|e| optim_error(e, &[]))?;
    let shape = body.params.shape().to_vec();
    if body.grads.shape() != shape.as_slice() {
        return Err(ApiError::invalid(
            "grads",
            format!(
                "grads has shape {:?} but params has shape {shape:?}",
                body.grads.shape()
            ),
        ));
    }
    let len = body.params.0.len();
    check_array_len("params", len, app.config.max_array_len)?;
    let mut state = match body.state {
        Some(dto) => dto.into_core(kind, &shape)?,
        None => optimizer.init_state(len),
    };
    let mut params = flat(body.params.into_inner());
    let grads = flat(body.grads.into_inner());
    let compute = move || {
        optimizer
            .step(&mut params, &grads, &mut state)
            .map(|()| (params, state))
    };
    let result = if len > BLOCKING_STEP_LEN {
        tokio::task::spawn_blocking(compute)
            .await
            .map_err(ApiError::internal)?
    } else {
        compute()
    };
    let (params, state) = result.map_err(|e| optim_error(e, &shape))?;
    let params = ArrayD::from_shape_vec(IxDyn(&shape), params)
        .map_err(|e| ApiError::internal(format!("params lost their shape: {e}")))?;
    Ok(Json(StepResponse {
        params: Tensor(params),
        state: StateDto::from_core(kind, &state, &shape)?,
    }))
}

/// Which request fields each objective takes (besides `objective`, `steps`
/// and the hyperparameters).
fn objective_settings(objective: ObjectiveKind) -> &'static [&'static str] {
    match objective {
        ObjectiveKind::Quadratic => &["start", "dimension", "condition_number"],
        ObjectiveKind::Rosenbrock => &["start", "dimension"],
        ObjectiveKind::Logistic => &[
            "start",
            "features",
            "labels",
            "fit_intercept",
            "batch_size",
            "seed",
            "l1",
            "l2",
        ],
    }
}

impl RunRequest {
    /// Names of the objective settings that were given.
    fn given_settings(&self) -> Vec<&'static str> {
        [
            ("start", self.start.is_some()),
            ("dimension", self.dimension.is_some()),
            ("condition_number", self.condition_number.is_some()),
            ("features", self.features.is_some()),
            ("labels", self.labels.is_some()),
            ("fit_intercept", self.fit_intercept.is_some()),
            ("batch_size", self.batch_size.is_some()),
            ("seed", self.seed.is_some()),
            ("l1", self.l1.is_some()),
            ("l2", self.l2.is_some()),
        ]
        .into_iter()
        .filter(|(_, given)| *given)
        .map(|(name, _)| name)
        .collect()
    }

    /// The dimension of a quadratic or Rosenbrock run: `dimension`, else the
    /// length of `start`, else 2; the two must agree when both are given.
    fn dimension_or_start(&self) -> ApiResult<usize> {
        match (self.dimension, &self.start) {
            (Some(d), Some(s)) if s.len() != d => Err(ApiError::invalid(
                "start",
                format!("start has {} elements but dimension is {d}", s.len()),
            )),
            (Some(d), _) => Ok(d),
            (None, Some(s)) => Ok(s.len()),
            (None, None) => Ok(2),
        }
    }

    /// The checked objective `kind` (the one the request names).
    fn objective(&mut self, kind: ObjectiveKind) -> ApiResult<Objective> {
        let name = kind.name();
        let accepted = objective_settings(kind);
        if let Some(extra) = self
            .given_settings()
            .into_iter()
            .find(|s| !accepted.contains(s))
        {
            return Err(ApiError::invalid(
                extra,
                format!(
                    "{extra} is not a setting of the {name} objective, which takes {}",
                    accepted.join(", ")
                ),
            ));
        }
        match kind {
            ObjectiveKind::Quadratic => {
                let d = self.dimension_or_start()?;
                Quadratic::new(d, self.condition_number.unwrap_or(10.0))
                    .map(Objective::Quadratic)
                    .map_err(objective_error)
            }
            ObjectiveKind::Rosenbrock => Rosenbrock::new(self.dimension_or_start()?)
                .map(Objective::Rosenbrock)
                .map_err(objective_error),
            ObjectiveKind::Logistic => self.logistic().map(Objective::Logistic),
        }
    }

    fn logistic(&mut self) -> ApiResult<Logistic> {
        let features = self.features.take().ok_or_else(|| {
            ApiError::invalid(
                "features",
                "the logistic objective needs features (samples x features)",
            )
        })?;
        let labels = self.labels.take().ok_or_else(|| {
            ApiError::invalid(
                "labels",
                "the logistic objective needs labels (one 0/1 per sample)",
            )
        })?;
        let labels: Vec<f64> = labels.into_iter().map(|l| l.0).collect();
        let shape = features.shape().to_vec();
        let features =
            features
                .into_inner()
                .into_dimensionality::<Ix2>()
                .map_err(|_| {
                    ApiError::invalid(
                "features",
                format!("features must be a 2-d array (samples x features), found shape {shape:?}"),
            )
                })?;
        let n = features.nrows();
        Logistic::new(
            features,
            labels,
            self.fit_intercept.unwrap_or(true),
            (self.l1.unwrap_or(0.0), self.l2.unwrap_or(0.0)),
            self.batch_size.unwrap_or(n),
            self.seed.unwrap_or(0),
        )
        .map_err(objective_error)
    }
}

/// 422 when `features`, `labels` or `start` is over `--max-array-len` elements,
/// or `dimension` asks for more: checked before the objective allocates its
/// `dimension` coefficients.
fn check_input_lengths(body: &RunRequest, max_len: usize) -> ApiResult<()> {
    let lengths = [
        ("dimension", body.dimension.unwrap_or(0)),
        ("features", body.features.as_ref().map_or(0, |f| f.0.len())),
        ("labels", body.labels.as_ref().map_or(0, Vec::len)),
        ("start", body.start.as_ref().map_or(0, Vec::len)),
    ];
    lengths
        .into_iter()
        .try_for_each(|(field, len)| check_array_len(field, len, max_len))
}

/// 422 naming `steps` when the run would exceed the configured step cap, the
/// element limit on the returned path, or [`MAX_RUN_WORK`].
fn check_run_size(
    steps: usize,
    objective: &Objective,
    max_steps: usize,
    max_len: usize,
) -> ApiResult<()> {
    if steps > max_steps {
        return Err(ApiError::invalid(
            "steps",
            format!("steps is {steps}, over the limit of {max_steps} (--max-optimizer-steps)"),
        ));
    }
    let d = objective.dimension() as u64;
    let path_len = (steps as u64 + 1).saturating_mul(d);
    if path_len > max_len as u64 {
        let what = "the path ((steps + 1) x dimension)";
        return Err(ApiError::invalid(
            "steps",
            over_limit(
                what,
                usize::try_from(path_len).unwrap_or(usize::MAX),
                max_len,
            ),
        ));
    }
    let per_step = match objective {
        Objective::Logistic(l) => (l.samples() as u64)
            .saturating_mul(2 * (d + 10))
            .saturating_add(d),
        _ => d,
    };
    let work = (steps as u64).saturating_mul(per_step);
    if work > MAX_RUN_WORK {
        return Err(ApiError::invalid(
            "steps",
            format!("the run would take {work} operations (steps x (dimension + 2 x samples x (dimension + 10))), over the limit of {MAX_RUN_WORK}; use fewer steps or fewer samples"),
        ));
    }
    Ok(())
}

/// `POST /optimizer/{name}/run`.
async fn run_objective(
    Path(name): Path<String>,
    State(app): State<AppState>,
    request: Request,
) -> ApiResult<Json<RunResponse>> {
    let kind = optimizer_kind(&name)?;
    let ApiJson(mut body) = ApiJson::<RunRequest>::from_request(request, &app).await?;
    let objective_kind = ObjectiveKind::from_name(&body.objective).ok_or_else(|| {
        ApiError::unknown_name("objective", &body.objective, &ObjectiveKind::names())
    })?;
    let optimizer =
        Optimizer::new(kind, &body.hyperparameters()).map_err(|e| optim_error(e, &[]))?;
    check_input_lengths(&body, app.config.max_array_len)?;
    let objective = body.objective(objective_kind)?;
    let steps = body.steps;
    check_run_size(
        steps,
        &objective,
        app.config.max_optimizer_steps,
        app.config.max_array_len,
    )?;
    let start = match body.start.take() {
        Some(start) => start,
        None => objective.default_start(),
    };
    let trace = tokio::task::spawn_blocking(move || run(&optimizer, &objective, start, steps))
        .await
        .map_err(ApiError::internal)?
        .map_err(|e| match e {
            RunError::Objective(e) => objective_error(e),
            RunError::Optim(e) => optim_error(e, &[]),
        })?;
    Ok(Json(run_response(kind, objective_kind, steps, trace)))
}

fn run_response(
    kind: OptimizerKind,
    objective: ObjectiveKind,
    steps: usize,
    trace: Trace,
) -> RunResponse {
    let steps_taken = trace.steps_taken();
    let warnings = trace
        .diverged_at_step
        .map(|k| {
            vec![format!(
                "the run diverged at step {k} (parameters or loss would be non-finite) and stopped after {steps_taken} steps; try a smaller lr"
            )]
        })
        .unwrap_or_default();
    RunResponse {
        optimizer: kind.name(),
        objective: objective.name(),
        steps,
        steps_taken,
        final_params: trace.path.last().cloned().unwrap_or_default(),
        final_loss: trace.losses.last().copied().unwrap_or(0.0),
        loss: trace.losses,
        path: trace.path,
        diverged_at_step: trace.diverged_at_step,
        warnings,
    }
}

fn default_json(value: HyperValue) -> Value {
    match value {
        HyperValue::Number(v) => json!(v),
        HyperValue::Bool(v) => json!(v),
        HyperValue::Pair(a, b) => json!([a, b]),
    }
}

/// A hyperparameter as the catalogues list parameters.
fn parameter(h: &crate::core::optim::hyper::Hyperparameter) -> Parameter {
    let kind = match h.default {
        HyperValue::Number(_) => "number",
        HyperValue::Bool(_) => "boolean",
        HyperValue::Pair(..) => "array",
    };
    Parameter {
        name: h.name,
        kind,
        default: default_json(h.default),
        description: h.description,
        values: None,
    }
}

/// `GET /optimizer`: every optimizer with its hyperparameters (torch's
/// defaults), torch class and state buffers.
async fn catalogue() -> Json<Vec<Entry>> {
    Json(entries())
}

/// `GET /optimizer/{name}`: one catalogue entry.
async fn describe(Path(name): Path<String>) -> ApiResult<Json<Entry>> {
    catalogue::describe("optimizer", &name, entries())
}

fn entries() -> Vec<Entry> {
    OptimizerKind::ALL
        .iter()
        .map(|kind| {
            let parameters = kind.hyperparameters().iter().map(parameter).collect();
            let state: Vec<Value> = kind
                .state_buffers()
                .iter()
                .map(|(buffer, always)| json!({"name": buffer.name(), "always": always}))
                .collect();
            Entry::new(kind.name(), kind.summary(), parameters)
                .detail("torch", kind.torch_class())
                .detail("state_buffers", state)
        })
        .collect()
}

/// `GET /optimizer/objectives`: the objectives `POST /optimizer/{name}/run`
/// takes, each with the body fields it reads.
async fn objectives() -> Json<Value> {
    let objectives: Vec<Value> = ObjectiveKind::ALL
        .iter()
        .map(|k| json!({"name": k.name(), "settings": objective_settings(*k)}))
        .collect();
    Json(Value::Array(objectives))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flat_reads_row_major_even_from_a_sliced_or_transposed_array() {
        let a = ndarray::Array::from_shape_vec(IxDyn(&[2, 3]), vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
            .unwrap();
        assert_eq!(flat(a.clone()), vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        let tail = a.slice_move(ndarray::s![1.., ..]).into_dyn();
        assert_eq!(flat(tail), vec![4.0, 5.0, 6.0]);
        let b = ndarray::Array::from_shape_vec(IxDyn(&[2, 2]), vec![1.0, 2.0, 3.0, 4.0]).unwrap();
        assert_eq!(flat(b.reversed_axes()), vec![1.0, 3.0, 2.0, 4.0]);
    }
}
