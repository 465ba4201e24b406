//! Normalization layers over `N x C x (spatial...)` tensors with PyTorch's
//! semantics: batch, layer, instance and group norm.
//!
//! Every kind cuts the input into groups of values, reduces each group to a
//! mean and a *biased* variance (see [`moments`]), then writes
//! `y = (x - mean) / sqrt(var + eps) * gamma + beta`. The kinds differ only in
//! which values form a group:
//!
//! | kind | one group | `mean`/`var` shape |
//! |---|---|---|
//! | batch | one channel across the batch and space | `[C]` |
//! | layer | the last `k` dims of one leading index | leading dims |
//! | instance | one (sample, channel) | `[N, C]` |
//! | group | one (sample, group of C/G channels) | `[N, G]` |
//!
//! Empty input is an error everywhere: a mean over no values is 0/0.

mod affine;
mod batch;
mod group;
mod instance;
mod layer;
pub mod moments;

use std::borrow::Cow;

use ndarray::{ArrayD, ArrayViewD, ShapeError};
use thiserror::Error;

pub use affine::Affine;
pub use batch::{batch_norm, BatchNormParams, BatchNormed, RunningStats};
pub use group::group_norm;
pub use instance::instance_norm;
pub use layer::layer_norm;

/// The normalized tensor and the statistics that were used for it.
#[derive(Debug, Clone, PartialEq)]
pub struct Normalized {
    /// Same shape as the input.
    pub output: ArrayD<f64>,
    /// Mean of each group (shape depends on the kind, see the module docs).
    pub mean: ArrayD<f64>,
    /// Biased variance of each group, same shape as `mean`.
    pub var: ArrayD<f64>,
}

/// Why a normalization cannot be computed. Each message says what was found
/// and what was expected; [`NormError::param`] names the offending input.
#[derive(Debug, Error, PartialEq)]
pub enum NormError {
    #[error(
        "input has {found} dimensions but {kind} norm needs at least {needed} (N x C x spatial...)"
    )]
    Rank {
        kind: &'static str,
        found: usize,
        needed: usize,
    },
    #[error("input has shape {shape:?} with a zero-length dimension; a mean over no values is undefined")]
    Empty { shape: Vec<usize> },
    #[error("eps must be finite and > 0, found {0}")]
    Eps(f64),
    #[error("momentum must be in [0, 1], found {0}")]
    Momentum(f64),
    #[error("{param} has shape {found:?} but the input needs shape {expected:?}")]
    ParamShape {
        param: &'static str,
        found: Vec<usize>,
        expected: Vec<usize>,
    },
    #[error("running_var[{index}] is {value} but a variance must be >= 0")]
    NegativeRunningVar { index: usize, value: f64 },
    #[error("groups must be >= 1 and divide the {channels} channels of input (input.shape[1]), found {groups}")]
    Groups { groups: usize, channels: usize },
    #[error("normalized_dims must be between 1 and the input's {ndim} dimensions, found {found}")]
    NormalizedDims { found: usize, ndim: usize },
    #[error("expected more than 1 value per channel when training, got input shape {shape:?} (PyTorch refuses this too)")]
    OneValuePerChannel { shape: Vec<usize> },
    #[error("expected more than 1 spatial element when training, got input shape {shape:?} (PyTorch refuses this too)")]
    OneSpatialElement { shape: Vec<usize> },
    #[error("internal shape error: {0}")]
    Shape(#[from] ShapeError),
}

impl NormError {
    /// The request parameter at fault (`input` for shape problems).
    pub fn param(&self) -> &'static str {
        match self {
            NormError::Eps(_) => "eps",
            NormError::Momentum(_) => "momentum",
            NormError::ParamShape { param, .. } => param,
            NormError::NegativeRunningVar { .. } => "running_var",
            NormError::Groups { .. } => "groups",
            NormError::NormalizedDims { .. } => "normalized_dims",
            NormError::Rank { .. }
            | NormError::Empty { .. }
            | NormError::OneValuePerChannel { .. }
            | NormError::OneSpatialElement { .. }
            | NormError::Shape(_) => "input",
        }
    }
}

/// Checks `eps > 0` (finite): with `eps = 0` a constant group would give 0/0.
fn check_eps(eps: f64) -> Result<(), NormError> {
    if eps.is_finite() && eps > 0.0 {
        Ok(())
    } else {
        Err(NormError::Eps(eps))
    }
}

/// Checks the input has at least `needed` dims and no zero-length one.
fn check_input(kind: &'static str, shape: &[usize], needed: usize) -> Result<(), NormError> {
    if shape.len() < needed {
        return Err(NormError::Rank {
            kind,
            found: shape.len(),
            needed,
        });
    }
    if shape.contains(&0) {
        return Err(NormError::Empty {
            shape: shape.to_vec(),
        });
    }
    Ok(())
}

/// Splits a checked `N x C x spatial...` shape into `(N, C, S)`, S = product of
/// the spatial dims (1 when there are none).
fn ncs(shape: &[usize]) -> (usize, usize, usize) {
    let n = shape.first().copied().unwrap_or(1);
    let c = shape.get(1).copied().unwrap_or(1);
    let s = shape.iter().skip(2).product();
    (n, c, s)
}

/// `1 / sqrt(var + eps)`, the factor every kind scales by.
fn inv_std(var: f64, eps: f64) -> f64 {
    1.0 / (var + eps).sqrt()
}

/// Writes `(x - mean) * inv_std * gamma + beta` for one run of values that
/// share statistics and affine parameters. Centering first (rather than
/// folding the mean into one shift) keeps full precision when |mean| >> std.
fn normalize_run(src: &[f64], dst: &mut [f64], m: &moments::Moments, scale: f64, beta: f64) {
    for (y, &x) in dst.iter_mut().zip(src) {
        *y = m.center(x) * scale + beta;
    }
}

/// The values of `a` in row-major order: borrowed when `a` is already
/// contiguous (the usual case for a parsed request), copied once otherwise.
fn row_major<'a>(a: &ArrayViewD<'a, f64>) -> Cow<'a, [f64]> {
    match a.to_slice() {
        Some(s) => Cow::Borrowed(s),
        None => Cow::Owned(a.iter().copied().collect()),
    }
}
