//! Sigmoid focal loss, as `torchvision.ops.sigmoid_focal_loss` (Lin et al.,
//! "Focal Loss for Dense Object Detection", 2017).

use ndarray::ArrayViewD;

use super::kernels::{self, FocalKernel, Isa};
use super::reduction::{fold_chunked, tail};
use super::{
    check_probabilities, probabilities_in, row_major, same_shape, LossError, LossOutput, Reduction,
};

/// torchvision's default `alpha`.
pub const DEFAULT_ALPHA: f64 = 0.25;
/// torchvision's default `gamma`.
pub const DEFAULT_GAMMA: f64 = 2.0;

/// Focal loss with checked parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Focal {
    alpha: Option<f64>,
    gamma: f64,
    from_logits: bool,
}

impl Focal {
    /// `alpha` < 0 turns the class balance off (torchvision's convention);
    /// otherwise it must be in [0, 1]. `gamma` must be finite and >= 0.
    pub fn new(alpha: f64, gamma: f64, from_logits: bool) -> Result<Self, LossError> {
        if !alpha.is_finite() || alpha > 1.0 {
            return Err(LossError::Param {
                name: "alpha",
                value: alpha,
                expected: "a number <= 1 (negative turns the class balance off)",
            });
        }
        if !gamma.is_finite() || gamma < 0.0 {
            return Err(LossError::Param {
                name: "gamma",
                value: gamma,
                expected: "a finite number >= 0",
            });
        }
        Ok(Focal {
            alpha: (alpha >= 0.0).then_some(alpha),
            gamma,
            from_logits,
        })
    }

    /// With p = sigmoid(x) (or the given probability), y the target in [0, 1],
    /// ce the BCE of p against y (stable on logits, logs clamped at -100 on
    /// probabilities), p_t = p y + (1 - p)(1 - y) and
    /// a_t = alpha y + (1 - alpha)(1 - y) (1 when alpha is off):
    /// l = a_t ce (1 - p_t)^gamma.
    ///
    /// Gradient: a_t (ce' (1 - p_t)^gamma - ce gamma (1 - p_t)^(gamma - 1) (2y - 1) p'),
    /// with p' = p (1 - p) on logits and 1 on probabilities; the second term
    /// is taken as 0 where 1 - p_t = 0 (its limit; gamma < 1 would otherwise
    /// give 0 * infinity). `mean` divides by the element count.
    ///
    /// Errors: shape mismatch, empty input, targets (or probabilities)
    /// outside [0, 1].
    pub fn compute(
        &self,
        predictions: ArrayViewD<'_, f64>,
        targets: ArrayViewD<'_, f64>,
        reduction: Reduction,
    ) -> Result<LossOutput, LossError> {
        same_shape(&predictions, &targets)?;
        let shape = predictions.shape();
        let p = row_major(&predictions);
        let t = row_major(&targets);
        // The exponent is fixed per call: pick the power once, outside the
        // loop, so the common integer gammas are plain multiplications (no
        // division for the derivative either) and the loop body stays
        // branch-free. Each closure gives (q^gamma, gamma q^(gamma - 1)).
        let g = self.gamma;
        match g {
            0.0 => self.fold(&p, &t, shape, reduction, |_| (1.0, 0.0)),
            1.0 => self.fold(&p, &t, shape, reduction, |q| (q, 1.0)),
            2.0 => self.fold(&p, &t, shape, reduction, |q| (q * q, 2.0 * q)),
            3.0 => self.fold(&p, &t, shape, reduction, |q| (q * q * q, 3.0 * q * q)),
            _ if g.fract() == 0.0 && g <= 64.0 => self.fold(&p, &t, shape, reduction, |q| {
                let below = q.powi(g as i32 - 1);
                (below * q, g * below)
            }),
            // q = 0 (where the quotient is not finite) is selected away in
            // `focal_modulate`.
            _ => self.fold(&p, &t, shape, reduction, |q| {
                let power = q.powf(g);
                (power, g * power / q)
            }),
        }
    }

    /// The loss over chunks, with `power(q)` = (q^gamma, gamma q^(gamma - 1)).
    fn fold(
        &self,
        p: &[f64],
        t: &[f64],
        shape: &[usize],
        reduction: Reduction,
        power: impl Fn(f64) -> (f64, f64) + Copy,
    ) -> Result<LossOutput, LossError> {
        let isa = Isa::current();
        let (alpha, gamma) = (self.alpha, self.gamma);
        fold_chunked(shape, reduction, |start, loss, grad| {
            let (x, y) = (tail(p, start), tail(t, start));
            // The range checks, per chunk (one read of the inputs instead of
            // two); a failing chunk scans everything in the documented order.
            let len = loss.len();
            if !(probabilities_in(y, len) && (self.from_logits || probabilities_in(x, len))) {
                check_probabilities("targets", t, shape)?;
                if !self.from_logits {
                    check_probabilities("predictions", p, shape)?;
                }
            }
            let kernel = FocalKernel {
                input: x,
                from_logits: self.from_logits,
                y,
                alpha,
                gamma,
                power,
                loss,
                grad,
            };
            kernels::run(isa, kernel);
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::arr1;

    #[test]
    fn gamma_zero_and_alpha_off_is_bce_with_logits() {
        let focal = Focal::new(-1.0, 0.0, true).unwrap();
        let bce = super::super::Bce::new(true, None, None).unwrap();
        let x = arr1(&[-2.0, 0.3, 4.0]).into_dyn();
        let y = arr1(&[0.0, 1.0, 0.7]).into_dyn();
        let a = focal.compute(x.view(), y.view(), Reduction::Sum).unwrap();
        let b = bce.compute(x.view(), y.view(), Reduction::Sum).unwrap();
        assert!((a.loss.total() - b.loss.total()).abs() < 1e-14);
        for (g, h) in a.gradient.iter().zip(b.gradient.iter()) {
            assert!((g - h).abs() < 1e-14);
        }
    }

    #[test]
    fn saturated_logits_give_finite_values() {
        let focal = Focal::new(0.25, 0.5, true).unwrap();
        let x = arr1(&[1000.0, -1000.0, 1000.0, -1000.0]).into_dyn();
        let y = arr1(&[1.0, 0.0, 0.0, 1.0]).into_dyn();
        let out = focal.compute(x.view(), y.view(), Reduction::Sum).unwrap();
        assert_eq!(out.loss.total(), 0.75 * 1000.0 + 0.25 * 1000.0);
        assert_eq!(out.gradient.as_slice().unwrap(), &[0.0, 0.0, 0.75, -0.25]);
    }

    #[test]
    fn bad_parameters_are_rejected() {
        assert_eq!(Focal::new(1.5, 2.0, true).unwrap_err().field(), "alpha");
        assert_eq!(Focal::new(0.25, -1.0, true).unwrap_err().field(), "gamma");
    }
}
