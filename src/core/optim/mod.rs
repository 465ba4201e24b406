//! Optimizers with PyTorch's numbers: one step of `torch.optim`'s single-tensor
//! code path on a flat parameter vector, with the per-parameter state made
//! explicit so a caller can hold it between steps.
//!
//! # Layout
//!
//! - [`sgd`], [`adagrad`], [`rmsprop`], [`adadelta`], [`adam`] (also AdamW):
//!   one module per update rule, each with its checked hyperparameters, its
//!   state and its `step`.
//! - [`hyper`]: the declaration each optimizer's hyperparameter struct is
//!   made from (names, defaults, descriptions: the catalogue), the union a
//!   caller gives, and the checks every optimizer shares.
//! - [`objectives`]: built-in functions to minimise (quadratic, Rosenbrock,
//!   logistic regression) with analytic gradients.
//! - [`run`]: the loop that minimises an objective for a number of steps.
//!
//! [`Optimizer::step`] is all-or-nothing: the update is computed on copies and
//! committed only when every new parameter and buffer is finite, so a failed
//! step leaves the caller's parameters and state as they were.

use thiserror::Error;

pub mod adadelta;
pub mod adagrad;
pub mod adam;
pub mod hyper;
pub mod objectives;
pub mod rmsprop;
pub mod run;
pub mod sgd;

pub use adadelta::{Adadelta, AdadeltaState};
pub use adagrad::{Adagrad, AdagradState};
pub use adam::{Adam, AdamState, AdamW};
pub use hyper::{HyperValue, Hyperparameter, HyperparameterSet, Hyperparameters};
pub use rmsprop::{Rmsprop, RmspropState};
pub use sgd::{Sgd, SgdState};

/// Everything that can go wrong when building or stepping an optimizer.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum OptimError {
    /// A hyperparameter is out of its domain.
    #[error("{name} must be {expected}, found {found}")]
    InvalidHyperparameter {
        name: &'static str,
        expected: &'static str,
        found: String,
    },
    /// A hyperparameter was given that this optimizer does not take.
    #[error("{name} is not a hyperparameter of {optimizer}; {optimizer} takes {accepted}")]
    UnknownHyperparameter {
        name: &'static str,
        optimizer: &'static str,
        accepted: String,
    },
    /// Two vectors that must have one element per parameter differ in length.
    #[error("{name} has {found} elements but params has {expected}")]
    LengthMismatch {
        name: &'static str,
        found: usize,
        expected: usize,
    },
    /// A state buffer the step needs is absent (the state was made with other
    /// hyperparameters, as torch creates these buffers only at initialisation).
    #[error("state has no {buffer}, which {optimizer} needs when {reason}; pass the state returned by a step with the same hyperparameters, or null to start fresh")]
    MissingBuffer {
        buffer: &'static str,
        optimizer: &'static str,
        reason: &'static str,
    },
    /// A state value is impossible for this optimizer (e.g. a negative running
    /// average of squares, whose square root the step takes).
    #[error("state {buffer} at [{index}] is {found} but must be >= 0")]
    NegativeBuffer {
        buffer: &'static str,
        index: usize,
        found: f64,
    },
    /// The step counter cannot be advanced.
    #[error("state step {0} cannot be advanced further")]
    StepOverflow(u64),
    /// The state belongs to another optimizer.
    #[error("state is for {found} but the optimizer is {expected}")]
    StateMismatch {
        expected: &'static str,
        found: &'static str,
    },
    /// The update overflowed or hit 0/0; nothing was applied.
    #[error("the step would make {buffer} at [{index}] non-finite (overflow or 0/0); nothing was applied")]
    NonFinite { buffer: &'static str, index: usize },
}

/// The optimizers this module implements, by their torch names (lower case).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OptimizerKind {
    Sgd,
    Adagrad,
    Rmsprop,
    Adadelta,
    Adam,
    AdamW,
}

impl OptimizerKind {
    /// Every optimizer, in the order `GET /optimizer` lists them.
    pub const ALL: [OptimizerKind; 6] = [
        OptimizerKind::Sgd,
        OptimizerKind::Adagrad,
        OptimizerKind::Rmsprop,
        OptimizerKind::Adadelta,
        OptimizerKind::Adam,
        OptimizerKind::AdamW,
    ];

    /// The lower-case name (`sgd`, `adamw`, ...).
    pub fn name(self) -> &'static str {
        match self {
            OptimizerKind::Sgd => "sgd",
            OptimizerKind::Adagrad => "adagrad",
            OptimizerKind::Rmsprop => "rmsprop",
            OptimizerKind::Adadelta => "adadelta",
            OptimizerKind::Adam => "adam",
            OptimizerKind::AdamW => "adamw",
        }
    }

    /// Every name, for "valid names" messages.
    pub fn names() -> Vec<&'static str> {
        Self::ALL.iter().map(|k| k.name()).collect()
    }

    /// Looks a name up (exact, lower case).
    pub fn from_name(name: &str) -> Option<OptimizerKind> {
        Self::ALL.into_iter().find(|k| k.name() == name)
    }

    /// What it is, in one line (the catalogue's `summary`).
    pub fn summary(self) -> &'static str {
        match self {
            OptimizerKind::Sgd => {
                "stochastic gradient descent with optional momentum, dampening and Nesterov"
            }
            OptimizerKind::Adagrad => {
                "per-coordinate steps scaled by the accumulated squared gradients"
            }
            OptimizerKind::Rmsprop => {
                "steps scaled by a running average of squared gradients, optionally centered"
            }
            OptimizerKind::Adadelta => {
                "unit-free steps from running averages of squared gradients and updates"
            }
            OptimizerKind::Adam => "bias-corrected running averages of the gradient and its square",
            OptimizerKind::AdamW => "Adam with weight decay decoupled from the gradient",
        }
    }

    /// The torch class this optimizer reproduces.
    pub fn torch_class(self) -> &'static str {
        match self {
            OptimizerKind::Sgd => "torch.optim.SGD",
            OptimizerKind::Adagrad => "torch.optim.Adagrad",
            OptimizerKind::Rmsprop => "torch.optim.RMSprop",
            OptimizerKind::Adadelta => "torch.optim.Adadelta",
            OptimizerKind::Adam => "torch.optim.Adam",
            OptimizerKind::AdamW => "torch.optim.AdamW",
        }
    }

    /// State buffers this optimizer may hold, each with whether it is always
    /// present (the others exist only with some hyperparameters, e.g.
    /// `max_exp_avg_sq` with AMSGrad). Every state also has `step`.
    pub fn state_buffers(self) -> &'static [(Buffer, bool)] {
        match self {
            OptimizerKind::Sgd => &[(Buffer::MomentumBuffer, false)],
            OptimizerKind::Adagrad => &[(Buffer::Sum, true)],
            OptimizerKind::Rmsprop => &[
                (Buffer::SquareAvg, true),
                (Buffer::MomentumBuffer, false),
                (Buffer::GradAvg, false),
            ],
            OptimizerKind::Adadelta => &[(Buffer::SquareAvg, true), (Buffer::AccDelta, true)],
            OptimizerKind::Adam | OptimizerKind::AdamW => &[
                (Buffer::ExpAvg, true),
                (Buffer::ExpAvgSq, true),
                (Buffer::MaxExpAvgSq, false),
            ],
        }
    }

    /// Hyperparameters with their defaults (torch's), in documentation
    /// order, read from the optimizer's hyperparameter struct.
    pub fn hyperparameters(self) -> Vec<Hyperparameter> {
        match self {
            OptimizerKind::Sgd => Sgd::catalogue(),
            OptimizerKind::Adagrad => Adagrad::catalogue(),
            OptimizerKind::Rmsprop => Rmsprop::catalogue(),
            OptimizerKind::Adadelta => Adadelta::catalogue(),
            OptimizerKind::Adam => Adam::catalogue(),
            OptimizerKind::AdamW => AdamW::catalogue(),
        }
    }
}

/// A state buffer; [`Buffer::name`] is torch's name for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Buffer {
    MomentumBuffer,
    Sum,
    SquareAvg,
    GradAvg,
    AccDelta,
    ExpAvg,
    ExpAvgSq,
    MaxExpAvgSq,
}

impl Buffer {
    /// Every buffer, in the order a state lists them.
    pub const ALL: [Buffer; 8] = [
        Buffer::MomentumBuffer,
        Buffer::Sum,
        Buffer::SquareAvg,
        Buffer::GradAvg,
        Buffer::AccDelta,
        Buffer::ExpAvg,
        Buffer::ExpAvgSq,
        Buffer::MaxExpAvgSq,
    ];

    /// Torch's name (`optimizer.state[p]` key).
    pub fn name(self) -> &'static str {
        match self {
            Buffer::MomentumBuffer => "momentum_buffer",
            Buffer::Sum => "sum",
            Buffer::SquareAvg => "square_avg",
            Buffer::GradAvg => "grad_avg",
            Buffer::AccDelta => "acc_delta",
            Buffer::ExpAvg => "exp_avg",
            Buffer::ExpAvgSq => "exp_avg_sq",
            Buffer::MaxExpAvgSq => "max_exp_avg_sq",
        }
    }
}

/// A checked optimizer: hyperparameters that passed every check, ready to step.
#[derive(Debug, Clone, PartialEq)]
pub enum Optimizer {
    Sgd(Sgd),
    Adagrad(Adagrad),
    Rmsprop(Rmsprop),
    Adadelta(Adadelta),
    Adam(Adam),
    /// Adam's update rule with decoupled weight decay.
    AdamW(AdamW),
}

/// Per-parameter state of one optimizer, named like torch's `optimizer.state[p]`.
#[derive(Debug, Clone, PartialEq)]
pub enum State {
    Sgd(SgdState),
    Adagrad(AdagradState),
    Rmsprop(RmspropState),
    Adadelta(AdadeltaState),
    Adam(AdamState),
}

impl State {
    /// The step counter (number of steps taken so far).
    pub fn step(&self) -> u64 {
        match self {
            State::Sgd(s) => s.step,
            State::Adagrad(s) => s.step,
            State::Rmsprop(s) => s.step,
            State::Adadelta(s) => s.step,
            State::Adam(s) => s.step,
        }
    }

    /// Builds `kind`'s state from a step count and its buffers, which `take`
    /// hands out (see [`OptimizerKind::state_buffers`]).
    ///
    /// # Errors
    /// [`OptimError::MissingBuffer`] when a buffer that is always present is
    /// not given. Lengths are checked by the step.
    pub fn from_parts(
        kind: OptimizerKind,
        step: u64,
        mut take: impl FnMut(Buffer) -> Option<Vec<f64>>,
    ) -> Result<State, OptimError> {
        let mut required = |buffer: Buffer| {
            take(buffer).ok_or(OptimError::MissingBuffer {
                buffer: buffer.name(),
                optimizer: kind.name(),
                reason: "stepping (it is always part of its state)",
            })
        };
        Ok(match kind {
            OptimizerKind::Sgd => State::Sgd(SgdState {
                step,
                momentum_buffer: take(Buffer::MomentumBuffer),
            }),
            OptimizerKind::Adagrad => State::Adagrad(AdagradState {
                step,
                sum: required(Buffer::Sum)?,
            }),
            OptimizerKind::Rmsprop => State::Rmsprop(RmspropState {
                step,
                square_avg: required(Buffer::SquareAvg)?,
                momentum_buffer: take(Buffer::MomentumBuffer),
                grad_avg: take(Buffer::GradAvg),
            }),
            OptimizerKind::Adadelta => State::Adadelta(AdadeltaState {
                step,
                square_avg: required(Buffer::SquareAvg)?,
                acc_delta: required(Buffer::AccDelta)?,
            }),
            OptimizerKind::Adam | OptimizerKind::AdamW => State::Adam(AdamState {
                step,
                exp_avg: required(Buffer::ExpAvg)?,
                exp_avg_sq: required(Buffer::ExpAvgSq)?,
                max_exp_avg_sq: take(Buffer::MaxExpAvgSq),
            }),
        })
    }

    /// Every buffer present, in a fixed order.
    pub fn contents(&self) -> Vec<(Buffer, &[f64])> {
        match self {
            State::Sgd(s) => s.buffers(),
            State::Adagrad(s) => s.buffers(),
            State::Rmsprop(s) => s.buffers(),
            State::Adadelta(s) => s.buffers(),
            State::Adam(s) => s.buffers(),
        }
    }

    /// Every buffer present by its torch name (as torch's state dict keys
    /// them), in a fixed order.
    pub fn buffers(&self) -> Vec<(&'static str, &[f64])> {
        self.contents()
            .into_iter()
            .map(|(buffer, values)| (buffer.name(), values))
            .collect()
    }

    fn family(&self) -> &'static str {
        match self {
            State::Sgd(_) => "sgd",
            State::Adagrad(_) => "adagrad",
            State::Rmsprop(_) => "rmsprop",
            State::Adadelta(_) => "adadelta",
            State::Adam(_) => "adam",
        }
    }
}

impl Optimizer {
    /// Checks `h` for `kind`, filling torch's defaults for what is absent.
    ///
    /// # Errors
    /// [`OptimError::UnknownHyperparameter`] for a hyperparameter `kind` does
    /// not take, [`OptimError::InvalidHyperparameter`] for a value out of range.
    pub fn new(kind: OptimizerKind, h: &Hyperparameters) -> Result<Optimizer, OptimError> {
        h.reject_unaccepted(kind)?;
        Ok(match kind {
            OptimizerKind::Sgd => Optimizer::Sgd(Sgd::from_given(h).checked()?),
            OptimizerKind::Adagrad => Optimizer::Adagrad(Adagrad::from_given(h).checked()?),
            OptimizerKind::Rmsprop => Optimizer::Rmsprop(Rmsprop::from_given(h).checked()?),
            OptimizerKind::Adadelta => Optimizer::Adadelta(Adadelta::from_given(h).checked()?),
            OptimizerKind::Adam => Optimizer::Adam(Adam::from_given(h).checked()?),
            OptimizerKind::AdamW => Optimizer::AdamW(AdamW::from_given(h).checked()?),
        })
    }

    /// Which optimizer this is.
    pub fn kind(&self) -> OptimizerKind {
        match self {
            Optimizer::Sgd(_) => OptimizerKind::Sgd,
            Optimizer::Adagrad(_) => OptimizerKind::Adagrad,
            Optimizer::Rmsprop(_) => OptimizerKind::Rmsprop,
            Optimizer::Adadelta(_) => OptimizerKind::Adadelta,
            Optimizer::Adam(_) => OptimizerKind::Adam,
            Optimizer::AdamW(_) => OptimizerKind::AdamW,
        }
    }

    /// The state torch creates on the first step for `len` parameters
    /// (zeros, or `initial_accumulator_value` for Adagrad; SGD's momentum
    /// buffer is created by the first step itself).
    pub fn init_state(&self, len: usize) -> State {
        match self {
            Optimizer::Sgd(_) => State::Sgd(SgdState::default()),
            Optimizer::Adagrad(o) => State::Adagrad(o.init_state(len)),
            Optimizer::Rmsprop(o) => State::Rmsprop(o.init_state(len)),
            Optimizer::Adadelta(_) => State::Adadelta(AdadeltaState::zeros(len)),
            Optimizer::Adam(o) => State::Adam(o.rule().init_state(len)),
            Optimizer::AdamW(o) => State::Adam(o.rule().init_state(len)),
        }
    }

    /// One optimizer step: `params` moves against `grads` (along them with
    /// `maximize`), `state` advances by one step.
    ///
    /// All-or-nothing: on any error `params` and `state` are unchanged.
    ///
    /// # Errors
    /// [`OptimError::LengthMismatch`] when `grads` or a state buffer does not
    /// have one element per parameter; [`OptimError::StateMismatch`] for
    /// another optimizer's state; [`OptimError::MissingBuffer`],
    /// [`OptimError::NegativeBuffer`], [`OptimError::StepOverflow`] for a state
    /// this step cannot use; [`OptimError::NonFinite`] when the result would
    /// overflow or divide 0 by 0. Empty `params` is a valid no-op that still
    /// counts a step.
    pub fn step(
        &self,
        params: &mut Vec<f64>,
        grads: &[f64],
        state: &mut State,
    ) -> Result<(), OptimError> {
        check_len("grads", grads.len(), params.len())?;
        let mut new_params = params.clone();
        let mut new_state = state.clone();
        match (self, &mut new_state) {
            (Optimizer::Sgd(o), State::Sgd(s)) => o.step(&mut new_params, grads, s)?,
            (Optimizer::Adagrad(o), State::Adagrad(s)) => o.step(&mut new_params, grads, s)?,
            (Optimizer::Rmsprop(o), State::Rmsprop(s)) => o.step(&mut new_params, grads, s)?,
            (Optimizer::Adadelta(o), State::Adadelta(s)) => o.step(&mut new_params, grads, s)?,
            (Optimizer::Adam(o), State::Adam(s)) => o.rule().step(&mut new_params, grads, s)?,
            (Optimizer::AdamW(o), State::Adam(s)) => o.rule().step(&mut new_params, grads, s)?,
            (o, s) => {
                return Err(OptimError::StateMismatch {
                    expected: o.kind().name(),
                    found: s.family(),
                })
            }
        }
        check_finite("params", &new_params)?;
        for (buffer, values) in new_state.contents() {
            check_finite(buffer.name(), values)?;
        }
        *params = new_params;
        *state = new_state;
        Ok(())
    }
}

/// `LengthMismatch` unless `found == expected`.
pub(crate) fn check_len(
    name: &'static str,
    found: usize,
    expected: usize,
) -> Result<(), OptimError> {
    if found == expected {
        Ok(())
    } else {
        Err(OptimError::LengthMismatch {
            name,
            found,
            expected,
        })
    }
}

/// `NegativeBuffer` at the first negative element of a buffer that holds
/// averages of squares (its square root is taken).
pub(crate) fn check_non_negative(buffer: &'static str, values: &[f64]) -> Result<(), OptimError> {
    match values.iter().position(|v| *v < 0.0) {
        None => Ok(()),
        Some(index) => Err(OptimError::NegativeBuffer {
            buffer,
            index,
            found: values.get(index).copied().unwrap_or(f64::NAN),
        }),
    }
}

/// `NonFinite` at the first non-finite element.
fn check_finite(buffer: &'static str, values: &[f64]) -> Result<(), OptimError> {
    match values.iter().position(|v| !v.is_finite()) {
        None => Ok(()),
        Some(index) => Err(OptimError::NonFinite { buffer, index }),
    }
}

/// The next step count (`step + 1`), as torch increments before updating.
pub(crate) fn next_step(step: u64) -> Result<u64, OptimError> {
    step.checked_add(1).ok_or(OptimError::StepOverflow(step))
}

/// `grad` as torch's optimizers see it: negated with `maximize`, then with
/// L2 weight decay `weight_decay * param` added (`grad.add(param, alpha=wd)`).
pub(crate) fn effective_grad(grad: f64, param: f64, weight_decay: f64, maximize: bool) -> f64 {
    let g = if maximize { -grad } else { grad };
    if weight_decay != 0.0 {
        g + weight_decay * param
    } else {
        g
    }
}

/// `torch.lerp(start, end, weight)` exactly as ATen computes it: the formula
/// switches at |weight| = 0.5 so that weight 1 returns `end` exactly.
pub(crate) fn lerp(start: f64, end: f64, weight: f64) -> f64 {
    if weight.abs() < 0.5 {
        start + weight * (end - start)
    } else {
        end - (end - start) * (1.0 - weight)
    }
}
