//! Elementwise regression losses: l1, mse, smooth_l1, huber.
//!
//! All take `predictions` and `targets` of one and the same shape (PyTorch
//! would broadcast with a warning; a mismatch is almost always a bug, so it is
//! an error here) and any finite values. With d = prediction - target:
//! `mean` divides by the element count.

use ndarray::ArrayViewD;

use super::reduction::fold_elementwise;
use super::{row_major, same_shape, LossError, LossOutput, Reduction};

/// Default `beta` of smooth_l1 (PyTorch's default).
pub const DEFAULT_BETA: f64 = 1.0;
/// Default `delta` of huber (PyTorch's default).
pub const DEFAULT_DELTA: f64 = 1.0;

/// Runs `f(d)` -> (loss, d loss / d d) over d = prediction - target.
fn elementwise_diff(
    predictions: ArrayViewD<'_, f64>,
    targets: ArrayViewD<'_, f64>,
    reduction: Reduction,
    f: impl Fn(f64) -> (f64, f64),
) -> Result<LossOutput, LossError> {
    same_shape(&predictions, &targets)?;
    let p = row_major(&predictions);
    let t = row_major(&targets);
    let pairs = p.iter().zip(t.iter()).map(|(&p, &t)| f(p - t));
    fold_elementwise(predictions.shape(), reduction, pairs)
}

/// The sign PyTorch uses in its L1 backward: sign(0) = 0, so a perfect
/// prediction gets a zero (sub)gradient.
#[inline]
fn sign(d: f64) -> f64 {
    if d > 0.0 {
        1.0
    } else if d < 0.0 {
        -1.0
    } else {
        0.0
    }
}

/// L1 (MAE): |d|; gradient sign(d), 0 at d = 0 (PyTorch's subgradient).
///
/// Errors: shape mismatch, empty input.
pub fn l1(
    predictions: ArrayViewD<'_, f64>,
    targets: ArrayViewD<'_, f64>,
    reduction: Reduction,
) -> Result<LossOutput, LossError> {
    elementwise_diff(predictions, targets, reduction, |d| (d.abs(), sign(d)))
}

/// MSE: d^2; gradient 2 d.
///
/// Errors: shape mismatch, empty input, overflow (|d| > ~1.3e154).
pub fn mse(
    predictions: ArrayViewD<'_, f64>,
    targets: ArrayViewD<'_, f64>,
    reduction: Reduction,
) -> Result<LossOutput, LossError> {
    elementwise_diff(predictions, targets, reduction, |d| (d * d, 2.0 * d))
}

/// SmoothL1Loss with threshold `beta` >= 0.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SmoothL1 {
    beta: f64,
}

impl SmoothL1 {
    /// Checks `beta` >= 0 and finite. `beta` = 0 is L1, as in PyTorch (which
    /// special-cases it to avoid dividing by zero).
    pub fn new(beta: f64) -> Result<Self, LossError> {
        if beta.is_finite() && beta >= 0.0 {
            Ok(SmoothL1 { beta })
        } else {
            Err(LossError::Param {
                name: "beta",
                value: beta,
                expected: "a finite number >= 0",
            })
        }
    }

    /// The threshold.
    pub fn beta(&self) -> f64 {
        self.beta
    }

    /// 0.5 d^2 / beta if |d| < beta, else |d| - 0.5 beta; gradient d / beta or
    /// sign(d).
    ///
    /// Errors: shape mismatch, empty input.
    pub fn compute(
        &self,
        predictions: ArrayViewD<'_, f64>,
        targets: ArrayViewD<'_, f64>,
        reduction: Reduction,
    ) -> Result<LossOutput, LossError> {
        let beta = self.beta;
        if beta == 0.0 {
            return l1(predictions, targets, reduction);
        }
        let inv_beta = 1.0 / beta;
        // Branch-free form of the two pieces: with c = min(|d|, beta),
        // c (|d| - c / 2) / beta is 0.5 d^2 / beta below beta and
        // |d| - 0.5 beta above, and the gradient is clamp(d, -beta, beta) / beta.
        // Random data would mispredict a branch half of the time.
        elementwise_diff(predictions, targets, reduction, |d| {
            let a = d.abs();
            let c = a.min(beta);
            (
                c * (a - 0.5 * c) * inv_beta,
                d.clamp(-beta, beta) * inv_beta,
            )
        })
    }
}

/// HuberLoss with threshold `delta` > 0.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Huber {
    delta: f64,
}

impl Huber {
    /// Checks `delta` > 0 and finite (PyTorch rejects delta <= 0).
    pub fn new(delta: f64) -> Result<Self, LossError> {
        if delta.is_finite() && delta > 0.0 {
            Ok(Huber { delta })
        } else {
            Err(LossError::Param {
                name: "delta",
                value: delta,
                expected: "a finite number > 0",
            })
        }
    }

    /// The threshold.
    pub fn delta(&self) -> f64 {
        self.delta
    }

    /// 0.5 d^2 if |d| <= delta, else delta (|d| - 0.5 delta); gradient d or
    /// delta sign(d). Equals delta * smooth_l1 with beta = delta.
    ///
    /// Errors: shape mismatch, empty input.
    pub fn compute(
        &self,
        predictions: ArrayViewD<'_, f64>,
        targets: ArrayViewD<'_, f64>,
        reduction: Reduction,
    ) -> Result<LossOutput, LossError> {
        let delta = self.delta;
        // Branch-free, as smooth_l1: c = min(|d|, delta) gives c (|d| - c / 2)
        // and the gradient clamp(d, -delta, delta).
        elementwise_diff(predictions, targets, reduction, |d| {
            let a = d.abs();
            let c = a.min(delta);
            (c * (a - 0.5 * c), d.clamp(-delta, delta))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::losses::LossValue;
    use ndarray::{arr1, arr2};

    #[test]
    fn l1_mean_matches_hand_computation() {
        let p = arr1(&[1.0, 2.0, 3.0]).into_dyn();
        let t = arr1(&[1.5, 2.0, 1.0]).into_dyn();
        let out = l1(p.view(), t.view(), Reduction::Mean).unwrap();
        assert_eq!(out.loss, LossValue::Scalar(2.5 / 3.0));
        assert_eq!(
            out.gradient.as_slice().unwrap(),
            &[-1.0 / 3.0, 0.0, 1.0 / 3.0]
        );
    }

    #[test]
    fn mse_rejects_shape_mismatch_naming_targets() {
        let p = arr2(&[[1.0, 2.0]]).into_dyn();
        let t = arr1(&[1.0, 2.0]).into_dyn();
        let err = mse(p.view(), t.view(), Reduction::Sum).unwrap_err();
        assert_eq!(err.field(), "targets");
        assert!(err.to_string().contains("[2]"), "{err}");
    }

    #[test]
    fn smooth_l1_with_beta_zero_is_l1() {
        let p = arr1(&[0.2, -3.0]).into_dyn();
        let t = arr1(&[0.0, 0.0]).into_dyn();
        let a = SmoothL1::new(0.0)
            .unwrap()
            .compute(p.view(), t.view(), Reduction::Sum);
        assert_eq!(a, l1(p.view(), t.view(), Reduction::Sum));
    }

    #[test]
    fn bad_thresholds_are_rejected() {
        assert!(SmoothL1::new(-0.1).is_err());
        assert!(Huber::new(0.0).is_err());
        assert!(Huber::new(f64::NAN).is_err());
    }

    #[test]
    fn mse_overflow_is_reported() {
        let p = arr1(&[1e300]).into_dyn();
        let t = arr1(&[-1e300]).into_dyn();
        let err = mse(p.view(), t.view(), Reduction::Sum).unwrap_err();
        assert!(matches!(err, LossError::Overflow { .. }), "{err}");
    }
}
