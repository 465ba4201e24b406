//! Binary cross entropy: `torch.nn.BCELoss` on probabilities and
//! `torch.nn.BCEWithLogitsLoss` on logits.

use ndarray::{ArrayD, ArrayViewD};

use super::kernels::{self, BceLogits, BceProbabilities, Isa};
use super::reduction::{fold_chunked, tail};
use super::{
    broadcast_to, check_non_negative, check_probabilities, probabilities_in, row_major, same_shape,
    LossError, LossOutput, Reduction,
};

/// Binary cross entropy with optional per-element `weights` and, on logits,
/// a `pos_weight` for the positive term.
#[derive(Debug, Clone, PartialEq)]
pub struct Bce {
    from_logits: bool,
    weights: Option<ArrayD<f64>>,
    pos_weight: Option<ArrayD<f64>>,
}

impl Bce {
    /// Checks the parameters: `weights` and `pos_weight` must be >= 0, and
    /// `pos_weight` needs `from_logits` (only `BCEWithLogitsLoss` has it in
    /// PyTorch; the probability form has no reference to follow).
    /// Whether they broadcast to the predictions is checked per call.
    pub fn new(
        from_logits: bool,
        weights: Option<ArrayD<f64>>,
        pos_weight: Option<ArrayD<f64>>,
    ) -> Result<Self, LossError> {
        if let Some(w) = &weights {
            check_non_negative("weights", w)?;
        }
        if let Some(pw) = &pos_weight {
            if !from_logits {
                return Err(LossError::Undefined {
                    field: "pos_weight",
                    detail: "pos_weight needs from_logits: true (PyTorch defines it only for BCEWithLogitsLoss)".to_owned(),
                });
            }
            check_non_negative("pos_weight", pw)?;
        }
        Ok(Bce {
            from_logits,
            weights,
            pos_weight,
        })
    }

    /// With y the target (in [0, 1]) and w the weight (1 when absent):
    ///
    /// - probabilities p: l = -w (y max(ln p, -100) + (1 - y) max(ln(1 - p), -100));
    ///   gradient w (p - y) / max(p (1 - p), 1e-12), PyTorch's backward rule.
    /// - logits x, with lw = 1 + (pos_weight - 1) y:
    ///   l = w ((1 - y) x + lw softplus(-x)), softplus(-x) = ln(1 + e^-|x|) + max(-x, 0)
    ///   (stable for any finite x); gradient w (lw sigmoid(x) - pos_weight y).
    ///
    /// `weights` and `pos_weight` broadcast to the predictions (so a
    /// `pos_weight` of length C applies per class of an N x C input).
    /// `mean` divides by the element count, not by the weight sum (PyTorch).
    ///
    /// Errors: shape mismatch, empty input, targets outside [0, 1],
    /// probabilities outside [0, 1], weights that do not broadcast.
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
        // The range checks run per chunk inside the fold (one read of the
        // inputs instead of two); on a failing chunk, or before reporting a
        // weights error, `check_inputs` scans everything in the documented
        // order, so the error is the same as checking first.
        let check_inputs = || -> Result<(), LossError> {
            check_probabilities("targets", &t, shape)?;
            if !self.from_logits {
                check_probabilities("predictions", &p, shape)?;
            }
            Ok(())
        };
        let w = self
            .weights
            .as_ref()
            .map(|w| broadcast_to("weights", w, shape))
            .transpose();
        let pw = self
            .pos_weight
            .as_ref()
            .map(|w| broadcast_to("pos_weight", w, shape))
            .transpose();
        if w.is_err() || pw.is_err() {
            check_inputs()?;
        }
        let (w, pw) = (w?, pw?);
        let isa = Isa::current();
        fold_chunked(shape, reduction, |start, loss, grad| {
            let (x, y) = (tail(&p, start), tail(&t, start));
            let len = loss.len();
            if !(probabilities_in(y, len) && (self.from_logits || probabilities_in(x, len))) {
                check_inputs()?;
            }
            if self.from_logits {
                let pos_weight = pw.as_deref().map(|pw| tail(pw, start));
                let kernel = BceLogits {
                    x,
                    y,
                    pos_weight,
                    loss: &mut *loss,
                    grad: &mut *grad,
                };
                kernels::run(isa, kernel);
            } else {
                let kernel = BceProbabilities {
                    p: x,
                    y,
                    loss: &mut *loss,
                    grad: &mut *grad,
                };
                kernels::run(isa, kernel);
            }
            if let Some(w) = &w {
                scale_chunk(tail(w, start), loss, grad);
            }
            Ok(())
        })
    }
}

/// Per-element weights: `(w l, w g)`, as the loss and gradient scale.
#[inline]
fn scale_chunk(w: &[f64], loss: &mut [f64], grad: &mut [f64]) {
    for ((l, g), w) in loss.iter_mut().zip(grad.iter_mut()).zip(w) {
        *l *= w;
        *g *= w;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::losses::LossValue;
    use ndarray::arr1;

    #[test]
    fn logits_at_plus_minus_1000_are_finite_and_exact() {
        let bce = Bce::new(true, None, None).unwrap();
        let x = arr1(&[1000.0, -1000.0, 1000.0, -1000.0]).into_dyn();
        let y = arr1(&[1.0, 0.0, 0.0, 1.0]).into_dyn();
        let out = bce.compute(x.view(), y.view(), Reduction::None).unwrap();
        let LossValue::PerItem(items) = out.loss else {
            panic!("none gives items")
        };
        assert_eq!(items.as_slice().unwrap(), &[0.0, 0.0, 1000.0, 1000.0]);
        assert_eq!(out.gradient.as_slice().unwrap(), &[0.0, 0.0, 1.0, -1.0]);
    }

    #[test]
    fn gradient_uses_the_shared_sigmoid() {
        for x in [-3.0, 0.0, 2.5] {
            for (_, g, s) in [
                kernels::bce_logit_from_exp::<false>(x, (-x.abs()).exp(), 0.0, 1.0),
                kernels::bce_logit_from_exp::<true>(x, (-x.abs()).exp(), 0.0, 1.0),
            ] {
                let sigmoid = crate::core::losses::sigmoid(x);
                assert!((g - sigmoid).abs() < 1e-15 && (s - sigmoid).abs() < 1e-15);
            }
        }
    }

    #[test]
    fn pos_weight_needs_logits() {
        let pw = Some(arr1(&[2.0]).into_dyn());
        let err = Bce::new(false, None, pw).unwrap_err();
        assert_eq!(err.field(), "pos_weight");
    }

    #[test]
    fn probabilities_outside_the_unit_interval_are_named() {
        let bce = Bce::new(false, None, None).unwrap();
        let p = arr1(&[0.5, 1.5]).into_dyn();
        let y = arr1(&[1.0, 0.0]).into_dyn();
        let err = bce
            .compute(p.view(), y.view(), Reduction::Mean)
            .unwrap_err();
        assert_eq!(err.field(), "predictions");
        assert!(err.to_string().contains("[1]"), "{err}");
    }

    /// The range checks run per chunk, but the first error is still the
    /// one of checking targets, then predictions, then weights, up front.
    #[test]
    fn errors_keep_their_order_across_chunks() {
        let n = 5000;
        let mut p = vec![0.5; n];
        let mut y = vec![1.0; n];
        p[10] = 1.5; // first chunk
        y[4000] = 2.0; // a later chunk
        let (p, y) = (arr1(&p).into_dyn(), arr1(&y).into_dyn());
        let bce = Bce::new(false, None, None).unwrap();
        let err = bce.compute(p.view(), y.view(), Reduction::Sum).unwrap_err();
        assert_eq!(err.field(), "targets");
        assert!(err.to_string().contains("[4000]"), "{err}");

        let unbroadcastable = Some(arr1(&[1.0, 2.0, 3.0]).into_dyn());
        let bce = Bce::new(false, unbroadcastable, None).unwrap();
        let err = bce.compute(p.view(), y.view(), Reduction::Sum).unwrap_err();
        assert_eq!(err.field(), "targets");

        let focal = crate::core::losses::Focal::new(0.25, 2.0, false).unwrap();
        let err = focal
            .compute(p.view(), y.view(), Reduction::Sum)
            .unwrap_err();
        assert_eq!(err.field(), "targets");
    }

    #[test]
    fn weights_that_do_not_broadcast_are_rejected() {
        let bce = Bce::new(false, Some(arr1(&[1.0, 2.0, 3.0]).into_dyn()), None).unwrap();
        let p = arr1(&[0.5, 0.5]).into_dyn();
        let err = bce
            .compute(p.view(), p.view(), Reduction::Mean)
            .unwrap_err();
        assert_eq!(err.field(), "weights");
    }
}
