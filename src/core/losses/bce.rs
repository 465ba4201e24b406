//! Binary cross entropy: `torch.nn.BCELoss` on probabilities and
//! `torch.nn.BCEWithLogitsLoss` on logits.

use ndarray::{ArrayD, ArrayViewD};

use super::reduction::{fold_chunked, tail};
use super::{
    bce_prob, bce_prob_grad, broadcast_to, check_non_negative, check_probabilities, clamped_ln,
    row_major, same_shape, LossError, LossOutput, Reduction,
};
use crate::core::fastmath;

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
        check_probabilities("targets", &t, shape)?;
        if !self.from_logits {
            check_probabilities("predictions", &p, shape)?;
        }
        let w = self
            .weights
            .as_ref()
            .map(|w| broadcast_to("weights", w, shape))
            .transpose()?;
        let pw = self
            .pos_weight
            .as_ref()
            .map(|w| broadcast_to("pos_weight", w, shape))
            .transpose()?;
        if self.from_logits {
            fold_chunked(shape, reduction, |start, l, g| {
                let (x, y) = (tail(&p, start), tail(&t, start));
                let out = l.iter_mut().zip(g.iter_mut());
                match &pw {
                    None => {
                        for ((l, g), (&x, &y)) in out.zip(x.iter().zip(y)) {
                            (*l, *g) = bce_logit(x, y, 1.0);
                        }
                    }
                    Some(pw) => {
                        let xyw = x.iter().zip(y).zip(tail(pw, start));
                        for ((l, g), ((&x, &y), &pw)) in out.zip(xyw) {
                            (*l, *g) = bce_logit(x, y, pw);
                        }
                    }
                }
                if let Some(w) = &w {
                    scale_chunk(tail(w, start), l, g);
                }
            })
        } else {
            fold_chunked(shape, reduction, |start, l, g| {
                bce_prob_chunk(tail(&p, start), tail(&t, start), l, g);
                if let Some(w) = &w {
                    scale_chunk(tail(w, start), l, g);
                }
            })
        }
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

/// [`bce_prob`] over a chunk. When every target of the chunk is a hard
/// label (the common case) the loop takes one logarithm of a selected
/// argument and has no branch, so it vectorizes; the general loop gives
/// the same values for hard labels (0 times a clamped log is exactly 0).
fn bce_prob_chunk(p: &[f64], t: &[f64], loss: &mut [f64], grad: &mut [f64]) {
    let n = loss.len().min(grad.len());
    let hard = t
        .iter()
        .take(n)
        .fold(true, |all, &y| all & ((y == 0.0) | (y == 1.0)));
    let out = loss.iter_mut().zip(grad.iter_mut());
    if hard {
        for ((l, g), (&p, &y)) in out.zip(p.iter().zip(t)) {
            let q = if y == 1.0 { p } else { 1.0 - p };
            *l = -clamped_ln(q);
            *g = bce_prob_grad(p, y);
        }
    } else {
        for ((l, g), (&p, &y)) in out.zip(p.iter().zip(t)) {
            (*l, *g) = bce_prob(p, y);
        }
    }
}

/// BCE on logit `x` with positive weight `pw`, in the overflow-free form
/// PyTorch uses; the gradient reuses e^-|x| from the loss.
// Inlined so the chunk loops that call it vectorize.
#[inline(always)]
pub(crate) fn bce_logit(x: f64, y: f64, pw: f64) -> (f64, f64) {
    let (l, g, _) = bce_logit_with_sigmoid(x, y, pw);
    (l, g)
}

/// [`bce_logit`] plus sigmoid(x), which it computes anyway (focal needs it).
// Inlined so the chunk loops that call it vectorize.
#[inline(always)]
pub(crate) fn bce_logit_with_sigmoid(x: f64, y: f64, pw: f64) -> (f64, f64, f64) {
    // fastmath (within 2 ulp of std) instead of libm calls: this inlines
    // and has no branch, so the loops over it vectorize.
    let (ln_1p_e, e) = fastmath::softplus_neg_abs(x);
    let softplus_neg = ln_1p_e + (-x).max(0.0);
    let s = if x >= 0.0 { 1.0 } else { e } / (1.0 + e);
    let lw = 1.0 + (pw - 1.0) * y;
    ((1.0 - y) * x + lw * softplus_neg, lw * s - pw * y, s)
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
            assert!((bce_logit(x, 0.0, 1.0).1 - crate::core::losses::sigmoid(x)).abs() < 1e-15);
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
