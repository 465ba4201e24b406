//! Elementwise activations `y = f(x)` with their derivative `f'(x)`.

use std::f64::consts::{FRAC_1_SQRT_2, PI};

use ndarray::{ArrayD, ArrayViewD, IxDyn};

use super::{row_major, Activated, ActivationError};

/// Which hard sigmoid: PyTorch's (and Keras 3's) or Keras 2's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HardSigmoidVariant {
    /// `relu6(x + 3) / 6`, breakpoints at ±3.
    #[default]
    Pytorch,
    /// `clip(0.2 x + 0.5, 0, 1)`, breakpoints at ±2.5.
    Keras2,
}

/// GELU: exact (`erf`) or PyTorch's `approximate="tanh"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum GeluApproximation {
    #[default]
    None,
    Tanh,
}

/// An activation that acts on each element alone, with its parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Elementwise {
    Sigmoid,
    HardSigmoid(HardSigmoidVariant),
    Tanh,
    Relu,
    Relu6,
    LeakyRelu {
        negative_slope: f64,
    },
    Elu {
        alpha: f64,
    },
    Gelu(GeluApproximation),
    /// `x * sigmoid(beta * x)`; beta 1 is SiLU.
    Swish {
        beta: f64,
    },
    HardSwish,
}

impl Elementwise {
    /// `(f(x), f'(x))` for one value. Derivatives at kinks follow PyTorch
    /// autograd; see each helper.
    pub fn eval(self, x: f64) -> (f64, f64) {
        match self {
            Elementwise::Sigmoid => sigmoid(x),
            Elementwise::HardSigmoid(HardSigmoidVariant::Pytorch) => hard_sigmoid(x),
            Elementwise::HardSigmoid(HardSigmoidVariant::Keras2) => hard_sigmoid_keras2(x),
            Elementwise::Tanh => tanh(x),
            Elementwise::Relu => relu(x),
            Elementwise::Relu6 => relu6(x),
            Elementwise::LeakyRelu { negative_slope } => leaky_relu(x, negative_slope),
            Elementwise::Elu { alpha } => elu(x, alpha),
            Elementwise::Gelu(GeluApproximation::None) => gelu(x),
            Elementwise::Gelu(GeluApproximation::Tanh) => gelu_tanh(x),
            Elementwise::Swish { beta } => swish(x, beta),
            Elementwise::HardSwish => hard_swish(x),
        }
    }

    /// Applies the activation to every element, into new arrays.
    pub fn apply(self, input: ArrayViewD<'_, f64>) -> Result<Activated, ActivationError> {
        let src = row_major(&input);
        let mut output = vec![0.0; src.len()];
        let mut gradient = vec![0.0; src.len()];
        self.apply_slice(&src, &mut output, &mut gradient);
        let shape = input.shape();
        Ok(Activated {
            output: ArrayD::from_shape_vec(IxDyn(shape), output)?,
            gradient: ArrayD::from_shape_vec(IxDyn(shape), gradient)?,
        })
    }

    /// Writes `f(x)` and `f'(x)` of each value of `src` into `output` and
    /// `gradient`, for callers that reuse buffers across calls; the shortest
    /// of the three slices bounds the work. The match is hoisted out of the
    /// loop so each arm compiles to its own tight, inlined loop.
    pub fn apply_slice(self, src: &[f64], output: &mut [f64], gradient: &mut [f64]) {
        match self {
            Elementwise::Sigmoid => fill(src, output, gradient, sigmoid),
            Elementwise::HardSigmoid(HardSigmoidVariant::Pytorch) => {
                fill(src, output, gradient, hard_sigmoid)
            }
            Elementwise::HardSigmoid(HardSigmoidVariant::Keras2) => {
                fill(src, output, gradient, hard_sigmoid_keras2)
            }
            Elementwise::Tanh => fill(src, output, gradient, tanh),
            Elementwise::Relu => fill(src, output, gradient, relu),
            Elementwise::Relu6 => fill(src, output, gradient, relu6),
            Elementwise::LeakyRelu { negative_slope } => {
                fill(src, output, gradient, |x| leaky_relu(x, negative_slope))
            }
            Elementwise::Elu { alpha } => fill(src, output, gradient, |x| elu(x, alpha)),
            Elementwise::Gelu(GeluApproximation::None) => fill(src, output, gradient, gelu),
            Elementwise::Gelu(GeluApproximation::Tanh) => fill(src, output, gradient, gelu_tanh),
            Elementwise::Swish { beta } => fill(src, output, gradient, |x| swish(x, beta)),
            Elementwise::HardSwish => fill(src, output, gradient, hard_swish),
        }
    }
}

#[inline(always)]
fn fill(src: &[f64], output: &mut [f64], gradient: &mut [f64], f: impl Fn(f64) -> (f64, f64)) {
    for ((&x, y), g) in src.iter().zip(output.iter_mut()).zip(gradient.iter_mut()) {
        (*y, *g) = f(x);
    }
}

/// `1 / (1 + e^-x)`, derivative `e^-|x| / (1 + e^-|x|)^2`. Only `e^-|x|` is
/// ever formed, so neither overflows for large |x|, and the derivative keeps
/// its relative precision in the tails (where `s (1 - s)` would round to 0).
pub fn sigmoid(x: f64) -> (f64, f64) {
    let e = (-x.abs()).exp();
    let d = e / ((1.0 + e) * (1.0 + e));
    let s = if x >= 0.0 {
        1.0 / (1.0 + e)
    } else {
        e / (1.0 + e)
    };
    (s, d)
}

/// PyTorch `hardsigmoid`: `relu6(x + 3) / 6`; derivative `1/6` on the open
/// interval (-3, 3), 0 elsewhere (PyTorch returns 0 at ±3).
fn hard_sigmoid(x: f64) -> (f64, f64) {
    let y = (x + 3.0).clamp(0.0, 6.0) / 6.0;
    let d = if x > -3.0 && x < 3.0 { 1.0 / 6.0 } else { 0.0 };
    (y, d)
}

/// Keras 2 `hard_sigmoid`: `clip(0.2 x + 0.5, 0, 1)`; derivative 0.2 where the
/// clip is not active (0 < 0.2 x + 0.5 < 1), 0 at and past the breakpoints
/// ±2.5, as autograd of `torch.clamp` gives.
fn hard_sigmoid_keras2(x: f64) -> (f64, f64) {
    let z = 0.2 * x + 0.5;
    let d = if z > 0.0 && z < 1.0 { 0.2 } else { 0.0 };
    (z.clamp(0.0, 1.0), d)
}

/// `tanh x`, derivative `1 - tanh^2 x`.
fn tanh(x: f64) -> (f64, f64) {
    let t = x.tanh();
    (t, 1.0 - t * t)
}

/// `max(x, 0)`; derivative 1 for x > 0, 0 for x <= 0 (PyTorch: relu'(0) = 0).
fn relu(x: f64) -> (f64, f64) {
    if x > 0.0 {
        (x, 1.0)
    } else {
        (0.0, 0.0)
    }
}

/// `min(max(x, 0), 6)`; derivative 1 on the open interval (0, 6), 0 elsewhere
/// (PyTorch's hardtanh backward: 0 at both kinks).
fn relu6(x: f64) -> (f64, f64) {
    let d = if x > 0.0 && x < 6.0 { 1.0 } else { 0.0 };
    (x.clamp(0.0, 6.0), d)
}

/// `x` for x > 0, `slope * x` otherwise; derivative at 0 is `slope` (PyTorch).
fn leaky_relu(x: f64, slope: f64) -> (f64, f64) {
    if x > 0.0 {
        (x, 1.0)
    } else {
        (slope * x, slope)
    }
}

/// `x` for x > 0, `alpha (e^x - 1)` for x <= 0 (via `exp_m1` for precision
/// near 0); derivative `alpha e^x` for x <= 0, so `elu'(0) = alpha` (PyTorch).
fn elu(x: f64, alpha: f64) -> (f64, f64) {
    if x > 0.0 {
        (x, 1.0)
    } else {
        (alpha * x.exp_m1(), alpha * x.exp())
    }
}

/// Exact GELU `x Φ(x)`, `Φ(x) = erfc(-x/√2) / 2` (erfc, unlike `1 + erf`,
/// keeps precision for very negative x); derivative `Φ(x) + x φ(x)`.
fn gelu(x: f64) -> (f64, f64) {
    let cdf = 0.5 * libm::erfc(-x * FRAC_1_SQRT_2);
    let pdf = (-0.5 * x * x).exp() / (2.0 * PI).sqrt();
    (x * cdf, cdf + x * pdf)
}

/// PyTorch's tanh GELU: `x/2 (1 + tanh(√(2/π) (x + 0.044715 x³)))`.
fn gelu_tanh(x: f64) -> (f64, f64) {
    const C: f64 = 0.044715;
    let k = (2.0 / PI).sqrt();
    let t = (k * (x + C * x * x * x)).tanh();
    let d = 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * k * (1.0 + 3.0 * C * x * x);
    (0.5 * x * (1.0 + t), d)
}

/// Swish `x σ(βx)`; derivative `σ(βx) + β x σ'(βx)`.
fn swish(x: f64, beta: f64) -> (f64, f64) {
    let (s, ds) = sigmoid(beta * x);
    (x * s, s + beta * x * ds)
}

/// PyTorch `hardswish`: `x relu6(x + 3) / 6`; derivative 0 for x <= -3,
/// `x/3 + 1/2` for -3 < x < 3, 1 for x >= 3 (PyTorch's backward).
fn hard_swish(x: f64) -> (f64, f64) {
    let y = x * (x + 3.0).clamp(0.0, 6.0) / 6.0;
    let d = if x <= -3.0 {
        0.0
    } else if x < 3.0 {
        x / 3.0 + 0.5
    } else {
        1.0
    };
    (y, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sigmoid_is_finite_and_exact_in_the_tails() {
        assert_eq!(sigmoid(-1000.0), (0.0, 0.0));
        assert_eq!(sigmoid(1000.0).0, 1.0);
        let (s, d) = sigmoid(-40.0);
        assert!((s / (-40.0f64).exp() - 1.0).abs() < 1e-12);
        assert!((d / (-40.0f64).exp() - 1.0).abs() < 1e-12);
    }

    #[test]
    fn kinks_follow_pytorch_autograd() {
        assert_eq!(relu(0.0).1, 0.0);
        assert_eq!(relu6(6.0).1, 0.0);
        assert_eq!(leaky_relu(0.0, 0.1).1, 0.1);
        assert_eq!(elu(0.0, 2.0).1, 2.0);
        assert_eq!(hard_swish(-3.0).1, 0.0);
        assert_eq!(hard_swish(3.0).1, 1.0);
        assert_eq!(hard_sigmoid(3.0).1, 0.0);
        assert_eq!(hard_sigmoid_keras2(2.5), (1.0, 0.0));
    }

    #[test]
    fn swish_with_beta_one_is_silu() {
        let (y, _) = swish(2.0, 1.0);
        assert!((y - 2.0 / (1.0 + (-2.0f64).exp())).abs() < 1e-15);
    }

    #[test]
    fn exact_gelu_keeps_precision_far_left() {
        let (y, _) = gelu(-10.0);
        assert!(y < 0.0 && y > -1e-21, "{y}");
    }
}
