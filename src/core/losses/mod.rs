//! Losses with their exact analytic gradients, PyTorch (float64) being the
//! numeric reference.
//!
//! Every loss takes `predictions` and `targets` as `ndarray` views of any shape
//! and a [`Reduction`], and returns a [`LossOutput`]: the reduced loss (or one
//! value per element / sample / position for [`Reduction::None`]) and the
//! gradient of the loss with respect to `predictions`, shaped like them. For
//! `None` the gradient is that of the *sum* of the per-item losses, as
//! `loss.sum().backward()` gives in PyTorch.
//!
//! Parameters are checked once, when a loss value ([`Loss`]) is built; data
//! (shapes, probability ranges, class indices) is checked on every call,
//! before any arithmetic, so a failed call has no partial result.
//!
//! Empty input is rejected ([`LossError::Empty`]): a mean over nothing is 0/0,
//! which PyTorch returns as NaN and JSON cannot carry.
//!
//! # Modules
//! - [`reduction`]: mean / sum / none and the elementwise fold shared by the
//!   elementwise losses.
//! - [`regression`]: l1, mse, smooth_l1, huber.
//! - [`bce`]: binary cross entropy on probabilities or logits.
//! - [`cross_entropy`]: softmax cross entropy over a class dimension.
//! - [`focal`]: torchvision's sigmoid focal loss.
//! - [`kernels`]: the hot loops of bce, focal and cross entropy, compiled
//!   for the baseline target and for AVX2 + FMA, chosen at run time.
//! - [`overlap`]: soft dice and IoU (Jaccard), per sample.
//! - [`regularization`]: L1/L2 penalty on a weight vector.
//! - [`registry`]: names, aliases and formulas.

pub mod bce;
pub mod cross_entropy;
pub mod focal;
pub mod kernels;
pub mod overlap;
pub mod reduction;
pub mod registry;
pub mod regression;
pub mod regularization;

use std::borrow::Cow;

use ndarray::{ArrayD, ArrayViewD, IxDyn};

pub use crate::core::index::position;

pub use bce::Bce;
pub use cross_entropy::CrossEntropy;
pub use focal::Focal;
pub use overlap::{Dice, Iou};
pub use reduction::Reduction;
pub use registry::{all_names, lookup, LossKind, LossSpec, LOSSES};
pub use regression::{Huber, SmoothL1};
pub use regularization::{Penalty, Regularization};

/// Why a loss could not be computed. Each variant names the offending request
/// field ([`LossError::field`]) and, for arrays, the position of the first bad
/// element in the `[i][j]` form the tensor parser uses.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LossError {
    #[error("{field} is empty (shape {shape:?}); at least one element is required")]
    Empty {
        field: &'static str,
        shape: Vec<usize>,
    },
    #[error("{field} has shape {found:?} but {expected}")]
    Shape {
        field: &'static str,
        found: Vec<usize>,
        expected: String,
    },
    #[error(
        "{field} at {position} is {value}, outside [0, 1]; {field} must be probabilities here"
    )]
    NotProbability {
        field: &'static str,
        position: String,
        value: f64,
    },
    #[error("targets at {position} is {value}; expected a class index in 0..{classes} or ignore_index ({ignore_index})")]
    ClassIndex {
        position: String,
        value: f64,
        classes: usize,
        ignore_index: i64,
    },
    #[error("{field} at {position} is {value}; expected a value >= 0")]
    Negative {
        field: &'static str,
        position: String,
        value: f64,
    },
    #[error("{name} is {value}; expected {expected}")]
    Param {
        name: &'static str,
        value: f64,
        expected: &'static str,
    },
    #[error("{field}: {detail}")]
    Undefined { field: &'static str, detail: String },
    #[error("the loss or its gradient overflows f64 (found a non-finite value at {position} of {field}); rescale the inputs")]
    Overflow {
        field: &'static str,
        position: String,
    },
}

impl LossError {
    /// The request field the error is about.
    pub fn field(&self) -> &'static str {
        match self {
            LossError::Empty { field, .. }
            | LossError::Shape { field, .. }
            | LossError::NotProbability { field, .. }
            | LossError::Negative { field, .. }
            | LossError::Undefined { field, .. }
            | LossError::Overflow { field, .. } => field,
            LossError::ClassIndex { .. } => "targets",
            LossError::Param { name, .. } => name,
        }
    }
}

/// The loss after reduction.
#[derive(Debug, Clone, PartialEq)]
pub enum LossValue {
    /// `mean` or `sum`.
    Scalar(f64),
    /// `none`: one value per element (elementwise losses), per position
    /// (cross entropy: the target shape) or per sample (dice, IoU).
    PerItem(ArrayD<f64>),
}

impl LossValue {
    /// The scalar, or the sum of the per-item values.
    pub fn total(&self) -> f64 {
        match self {
            LossValue::Scalar(v) => *v,
            LossValue::PerItem(a) => a.sum(),
        }
    }
}

/// A loss and its gradient with respect to the predictions.
#[derive(Debug, Clone, PartialEq)]
pub struct LossOutput {
    pub loss: LossValue,
    /// d loss / d predictions (for `none`: d sum(loss) / d predictions).
    pub gradient: ArrayD<f64>,
}

/// A loss with checked parameters, ready to be evaluated on data.
#[derive(Debug, Clone, PartialEq)]
pub enum Loss {
    Bce(Bce),
    CrossEntropy(CrossEntropy),
    L1,
    Mse,
    SmoothL1(SmoothL1),
    Huber(Huber),
    Focal(Focal),
    Dice(Dice),
    Iou(Iou),
}

impl Loss {
    /// Evaluates the loss and its gradient; see each loss for its formula and
    /// the data it accepts.
    pub fn compute(
        &self,
        predictions: ArrayViewD<'_, f64>,
        targets: ArrayViewD<'_, f64>,
        reduction: Reduction,
    ) -> Result<LossOutput, LossError> {
        match self {
            Loss::Bce(l) => l.compute(predictions, targets, reduction),
            Loss::CrossEntropy(l) => l.compute(predictions, targets, reduction),
            Loss::L1 => regression::l1(predictions, targets, reduction),
            Loss::Mse => regression::mse(predictions, targets, reduction),
            Loss::SmoothL1(l) => l.compute(predictions, targets, reduction),
            Loss::Huber(l) => l.compute(predictions, targets, reduction),
            Loss::Focal(l) => l.compute(predictions, targets, reduction),
            Loss::Dice(l) => l.compute(predictions, targets, reduction),
            Loss::Iou(l) => l.compute(predictions, targets, reduction),
        }
    }

    /// The kind of this loss (its registry entry).
    pub fn kind(&self) -> LossKind {
        match self {
            Loss::Bce(_) => LossKind::Bce,
            Loss::CrossEntropy(_) => LossKind::CrossEntropy,
            Loss::L1 => LossKind::L1,
            Loss::Mse => LossKind::Mse,
            Loss::SmoothL1(_) => LossKind::SmoothL1,
            Loss::Huber(_) => LossKind::Huber,
            Loss::Focal(_) => LossKind::Focal,
            Loss::Dice(_) => LossKind::Dice,
            Loss::Iou(_) => LossKind::Iou,
        }
    }
}

/// The elements of `a` in row-major order as one slice: borrowed when `a` is
/// already contiguous (the parser always produces that), copied otherwise.
pub(crate) fn row_major<'a>(a: &'a ArrayViewD<'_, f64>) -> Cow<'a, [f64]> {
    match a.as_slice() {
        Some(s) => Cow::Borrowed(s),
        None => Cow::Owned(a.iter().copied().collect()),
    }
}

/// Fails unless `predictions` and `targets` have the same, non-empty shape.
pub(crate) fn same_shape(
    predictions: &ArrayViewD<'_, f64>,
    targets: &ArrayViewD<'_, f64>,
) -> Result<(), LossError> {
    if predictions.shape() != targets.shape() {
        return Err(LossError::Shape {
            field: "targets",
            found: targets.shape().to_vec(),
            expected: format!(
                "predictions has shape {:?}; they must be equal",
                predictions.shape()
            ),
        });
    }
    non_empty("predictions", predictions)
}

/// Fails when `a` has no element.
pub(crate) fn non_empty(field: &'static str, a: &ArrayViewD<'_, f64>) -> Result<(), LossError> {
    if a.is_empty() {
        Err(LossError::Empty {
            field,
            shape: a.shape().to_vec(),
        })
    } else {
        Ok(())
    }
}

/// Fails at the first element of `values` outside [0, 1].
pub(crate) fn check_probabilities(
    field: &'static str,
    values: &[f64],
    shape: &[usize],
) -> Result<(), LossError> {
    if all_in_blocks(values, |v| (0.0..=1.0).contains(&v)) {
        return Ok(());
    }
    match values.iter().position(|v| !(0.0..=1.0).contains(v)) {
        None => Ok(()),
        Some(i) => Err(LossError::NotProbability {
            field,
            position: position(i, shape),
            value: values.get(i).copied().unwrap_or(f64::NAN),
        }),
    }
}

/// Whether the first `len` of `values` (a chunk) are all in [0, 1]: the
/// losses' range check fused into their chunk loops. An and-fold without
/// early exit, so it vectorizes.
#[inline]
pub(crate) fn probabilities_in(values: &[f64], len: usize) -> bool {
    let chunk = values.get(..len).unwrap_or(values);
    chunk
        .iter()
        .fold(true, |all, v| all & (0.0..=1.0).contains(v))
}

/// Fails at the first negative element of `a` (weights must be >= 0).
pub(crate) fn check_non_negative(field: &'static str, a: &ArrayD<f64>) -> Result<(), LossError> {
    match a.iter().position(|v| *v < 0.0 || !v.is_finite()) {
        None => Ok(()),
        Some(i) => Err(LossError::Negative {
            field,
            position: position(i, a.shape()),
            value: a.iter().nth(i).copied().unwrap_or(f64::NAN),
        }),
    }
}

/// `values` broadcast (NumPy rules, as PyTorch) to `shape`, as a contiguous
/// vector, or an error naming `field`.
pub(crate) fn broadcast_to(
    field: &'static str,
    values: &ArrayD<f64>,
    shape: &[usize],
) -> Result<Vec<f64>, LossError> {
    match values.broadcast(IxDyn(shape)) {
        Some(view) => Ok(view.iter().copied().collect()),
        None => Err(LossError::Shape {
            field,
            found: values.shape().to_vec(),
            expected: format!("it must broadcast to the predictions shape {shape:?}"),
        }),
    }
}

/// Wraps a row-major vector into an array of `shape`; the lengths always agree
/// by construction, and a disagreement is reported rather than panicking.
pub(crate) fn shaped(
    field: &'static str,
    shape: &[usize],
    data: Vec<f64>,
) -> Result<ArrayD<f64>, LossError> {
    let len = data.len();
    ArrayD::from_shape_vec(IxDyn(shape), data).map_err(|_| LossError::Shape {
        field,
        found: vec![len],
        expected: format!("{len} values cannot fill shape {shape:?}"),
    })
}

/// Fails when a finished output holds a non-finite value (an f64 overflow,
/// e.g. mse of 1e300): JSON cannot carry it and it would be wrong anyway.
pub(crate) fn check_finite(output: &LossOutput) -> Result<(), LossError> {
    if let Some(position) = first_non_finite(&output.gradient) {
        return Err(LossError::Overflow {
            field: "predictions",
            position,
        });
    }
    let position = match &output.loss {
        LossValue::Scalar(v) if !v.is_finite() => Some("the reduced loss".to_owned()),
        LossValue::Scalar(_) => None,
        LossValue::PerItem(a) => first_non_finite(a),
    };
    match position {
        Some(position) => Err(LossError::Overflow {
            field: "predictions",
            position,
        }),
        None => Ok(()),
    }
}

/// Position of the first non-finite element. Scans the contiguous slice when
/// there is one: iterating an `IxDyn` array element by element is several
/// times slower, and this runs on every output.
fn first_non_finite(a: &ArrayD<f64>) -> Option<String> {
    let index = match a.as_slice() {
        Some(s) if all_in_blocks(s, f64::is_finite) => None,
        Some(s) => s.iter().position(|v| !v.is_finite()),
        None => a.iter().position(|v| !v.is_finite()),
    };
    index.map(|i| position(i, a.shape()))
}

/// Whether `ok` holds for every value: the validation passes' fast path.
/// Within a block the test is an and-fold with no early exit, which LLVM
/// vectorizes (a `position` search cannot be: it exits at the first hit);
/// blocks keep an early exit at the first failing block. Callers locate
/// the failure with a plain search only when this says there is one.
#[inline]
pub(crate) fn all_in_blocks(values: &[f64], ok: impl Fn(f64) -> bool + Copy) -> bool {
    values
        .chunks(4096)
        .all(|block| block.iter().fold(true, |all, &v| all & ok(v)))
}

/// Numerically stable logistic sigmoid 1 / (1 + e^-x): never evaluates
/// e^x for large positive x, so +-1000 give exactly 1 and 0.
#[inline]
pub(crate) fn sigmoid(x: f64) -> f64 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

/// PyTorch clamps each log in BCE at -100 so that p = 0 or 1 gives a finite
/// loss (`torch.nn.BCELoss` docs).
pub(crate) const LOG_FLOOR: f64 = -100.0;

/// PyTorch's BCE backward divides by max(p (1 - p), EPSILON) with
/// `EPSILON = 1e-12` declared as a *float* (`aten/src/ATen/native/Loss.cpp`),
/// so even in float64 the clamp is 1e-12 rounded to f32,
/// 9.999999960041972e-13; p = 0 with y = 1 gives -1.0000000039958e12.
pub(crate) const BCE_GRAD_EPS: f64 = 1e-12_f32 as f64;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sigmoid_saturates_without_overflow() {
        assert_eq!(sigmoid(1000.0), 1.0);
        assert_eq!(sigmoid(-1000.0), 0.0);
        assert!((sigmoid(0.0) - 0.5).abs() < 1e-15);
    }
}
