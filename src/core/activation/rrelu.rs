//! Randomized leaky ReLU (Xu et al., 2015) in training mode, reproducible.

use ndarray::{ArrayD, ArrayViewD, IxDyn};

use super::{row_major, Activated, ActivationError};

/// SplitMix64 (Steele, Lea & Flood, 2014; Vigna's reference constants): a tiny,
/// fast generator whose whole state is one `u64`, so a request's `seed`
/// fully determines its slopes on every platform. Not cryptographic.
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1) with 53 random bits.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
}

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
    fn splitmix_matches_the_reference_sequence() {
        // First outputs of Vigna's splitmix64.c seeded with 1234567.
        let mut r = SplitMix64::new(1234567);
        assert_eq!(r.next_u64(), 6457827717110365317);
        assert_eq!(r.next_u64(), 3203168211198807973);
    }

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
