//! Randomized leaky ReLU (Xu et al., 2015) in training mode, reproducible.

use ndarray::{ArrayD, ArrayViewD, IxDyn};

use super::{row_major, Activated, ActivationError};
use crate::core::rng::SplitMix64;

/// RReLU in training: every element i draws a slope `a_i ~ U(lower, upper)`
/// from `SplitMix64(seed)` (element i always gets the i-th draw, whatever the
/// values, so a seed fixes the slopes of a shape); `y = x` for x > 0 and
/// `a_i x` for x <= 0. Derivative: 1 for x > 0, `a_i` for x <= 0 (PyTorch's
/// rrelu_with_noise). PyTorch's own generator differs, so only the
/// distribution, not the draws, matches `torch.nn.functional.rrelu`.
/// Evaluation mode is [`super::Elementwise::LeakyRelu`] with slope
/// `(lower + upper) / 2`.
///
/// Errors: `lower > upper`.
pub fn rrelu_train(
    input: ArrayViewD<'_, f64>,
    lower: f64,
    upper: f64,
    seed: u64,
) -> Result<Activated, ActivationError> {
    if lower > upper {
        return Err(ActivationError::Bounds { lower, upper });
    }
    let mut rng = SplitMix64::new(seed);
    let src = row_major(&input);
    let mut output = vec![0.0; src.len()];
    let mut gradient = vec![0.0; src.len()];
    for ((&x, y), g) in src.iter().zip(&mut output).zip(&mut gradient) {
        let slope = lower + (upper - lower) * rng.next_f64();
        (*y, *g) = if x > 0.0 {
            (x, 1.0)
        } else {
            (slope * x, slope)
        };
    }
    let shape = input.shape();
    Ok(Activated {
        output: ArrayD::from_shape_vec(IxDyn(shape), output)?,
        gradient: ArrayD::from_shape_vec(IxDyn(shape), gradient)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array1;

    #[test]
    fn the_same_seed_gives_the_same_slopes_within_bounds() {
        let x = Array1::from_elem(1000, -1.0).into_dyn();
        let a = rrelu_train(x.view(), 0.125, 1.0 / 3.0, 7).unwrap();
        let b = rrelu_train(x.view(), 0.125, 1.0 / 3.0, 7).unwrap();
        let c = rrelu_train(x.view(), 0.125, 1.0 / 3.0, 8).unwrap();
        assert_eq!(a, b);
        assert_ne!(a.gradient, c.gradient);
        assert!(a.gradient.iter().all(|&s| (0.125..1.0 / 3.0).contains(&s)));
        let mean = a.gradient.sum() / 1000.0;
        assert!((mean - (0.125 + 1.0 / 3.0) / 2.0).abs() < 0.01, "{mean}");
    }
}
