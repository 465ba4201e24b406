//! Activation functions with their derivatives, PyTorch's definitions.
//!
//! - [`Elementwise`]: `y = f(x)` per element, returned with `f'(x)`. At kinks
//!   the derivative is the one PyTorch autograd gives (e.g. `relu'(0) = 0`,
//!   `leaky_relu'(0) = negative_slope`, `elu'(0) = alpha`).
//! - [`softmax`], [`log_softmax`] and [`maxout`] mix elements, so they return
//!   the vector-Jacobian product `grad_output^T J` instead of a derivative.
//! - [`prelu`] also returns the gradient with respect to its weight;
//!   [`rrelu_train`] draws its slopes from a seeded generator.
//!
//! Each function reads the input once into a flat row-major buffer and writes
//! two preallocated output buffers: no allocation per element.

mod elementwise;
mod maxout;
mod prelu;
mod rrelu;
mod softmax;

use std::borrow::Cow;

use ndarray::{ArrayD, ArrayViewD, ShapeError};
use thiserror::Error;

pub use elementwise::{Elementwise, GeluApproximation, HardSigmoidVariant};
pub use maxout::maxout;
pub use prelu::{prelu, PreluOutput};
pub use rrelu::rrelu_train;
pub use softmax::{log_softmax, resolve_dim, softmax};

/// An activation's output and its gradient (same shape as the input).
#[derive(Debug, Clone, PartialEq)]
pub struct Activated {
    pub output: ArrayD<f64>,
    /// The elementwise derivative, or for softmax, log_softmax and maxout the
    /// vector-Jacobian product with `grad_output`.
    pub gradient: ArrayD<f64>,
}

/// Why an activation cannot be computed; [`ActivationError::param`] names
/// the offending request parameter.
#[derive(Debug, Error, PartialEq)]
pub enum ActivationError {
    #[error("dim {dim} is out of range for an input of {ndim} dimensions; expected -{range} <= dim < {range}")]
    Dim { dim: i64, ndim: usize, range: usize },
    #[error("grad_output has shape {found:?} but the output has shape {expected:?}")]
    GradOutputShape {
        found: Vec<usize>,
        expected: Vec<usize>,
    },
    #[error("input has {found} dimensions but {name} needs at least {needed} (N x C x ...)")]
    Rank {
        name: &'static str,
        found: usize,
        needed: usize,
    },
    #[error("pieces must be >= 1 and divide the {channels} channels of input (input.shape[1]), found {pieces}")]
    Pieces { pieces: usize, channels: usize },
    #[error("weight has {found} elements but expected 1 or the {channels} channels of input (input.shape[1])")]
    Weight { found: usize, channels: usize },
    #[error("lower ({lower}) must not be greater than upper ({upper})")]
    Bounds { lower: f64, upper: f64 },
    #[error("internal shape error: {0}")]
    Shape(#[from] ShapeError),
}

impl ActivationError {
    /// The request parameter at fault.
    pub fn param(&self) -> &'static str {
        match self {
            ActivationError::Dim { .. } => "dim",
            ActivationError::GradOutputShape { .. } => "grad_output",
            ActivationError::Pieces { .. } => "pieces",
            ActivationError::Weight { .. } => "weight",
            ActivationError::Bounds { .. } => "lower",
            ActivationError::Rank { .. } | ActivationError::Shape(_) => "input",
        }
    }
}

/// The values of `a` in row-major order, borrowed when already contiguous.
fn row_major<'a>(a: &ArrayViewD<'a, f64>) -> Cow<'a, [f64]> {
    match a.to_slice() {
        Some(s) => Cow::Borrowed(s),
        None => Cow::Owned(a.iter().copied().collect()),
    }
}

/// Checks `grad_output` has `expected` shape and returns it row-major, or
/// ones when absent (the VJP with ones is the gradient of the sum).
fn grad_output_or_ones<'a>(
    grad_output: Option<&ArrayViewD<'a, f64>>,
    expected: &[usize],
) -> Result<Cow<'a, [f64]>, ActivationError> {
    match grad_output {
        None => Ok(Cow::Owned(vec![1.0; expected.iter().product()])),
        Some(g) if g.shape() == expected => Ok(row_major(g)),
        Some(g) => Err(ActivationError::GradOutputShape {
            found: g.shape().to_vec(),
            expected: expected.to_vec(),
        }),
    }
}
