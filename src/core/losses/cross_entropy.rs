//! Softmax cross entropy over a class dimension: `torch.nn.CrossEntropyLoss`.
//!
//! Predictions are N x C or N x C x d1 x ... (class dimension 1), or a single
//! vector of C scores (class dimension 0). Targets are either class indices
//! shaped like the predictions without the class dimension, or class
//! probabilities shaped like the predictions; the shape tells which.

use ndarray::ArrayViewD;

use super::kernels::{self, Isa, SoftmaxRows};
use super::reduction::{all_finite, finish, finish_scaled, CHUNK};
use super::{
    check_probabilities, non_empty, position, row_major, shaped, LossError, LossOutput, Reduction,
    LOG_FLOOR,
};
use crate::core::fastmath;

/// PyTorch's default `ignore_index`.
pub const DEFAULT_IGNORE_INDEX: i64 = -100;

/// Cross entropy with checked parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct CrossEntropy {
    class_weights: Option<Vec<f64>>,
    label_smoothing: f64,
    ignore_index: i64,
    from_probabilities: bool,
}

/// How the targets are given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Targets {
    Indices,
    Probabilities,
}

/// Predictions seen as (n, c, s): samples, classes, flattened spatial positions.
struct Layout {
    n: usize,
    c: usize,
    s: usize,
    /// Shape of one loss per position: the predictions without the class dim.
    item_shape: Vec<usize>,
}

impl CrossEntropy {
    /// Checks `class_weights` >= 0 and `label_smoothing` in [0, 1]; whether the
    /// weights have one entry per class is checked per call.
    pub fn new(
        class_weights: Option<Vec<f64>>,
        label_smoothing: f64,
        ignore_index: i64,
        from_probabilities: bool,
    ) -> Result<Self, LossError> {
        if !(0.0..=1.0).contains(&label_smoothing) {
            return Err(LossError::Param {
                name: "label_smoothing",
                value: label_smoothing,
                expected: "a number in [0, 1]",
            });
        }
        if let Some(i) = class_weights
            .iter()
            .flatten()
            .position(|w| *w < 0.0 || !w.is_finite())
        {
            let w = class_weights.as_ref().and_then(|w| w.get(i).copied());
            return Err(LossError::Negative {
                field: "class_weights",
                position: format!("[{i}]"),
                value: w.unwrap_or(f64::NAN),
            });
        }
        Ok(CrossEntropy {
            class_weights,
            label_smoothing,
            ignore_index,
            from_probabilities,
        })
    }

    /// With log-probabilities lp (log_softmax of the logits, or
    /// max(ln p, -100) when `from_probabilities`), weights w (1 when absent),
    /// smoothing e and C classes, each position contributes
    /// l = sum_c a_c (-lp_c), where
    /// - class index y: a_c = (1 - e) w_y [c = y] + e w_c / C (0 for every c
    ///   when y = ignore_index);
    /// - probability row q: a_c = w_c ((1 - e) q_c + e / C).
    ///
    /// Gradient: on logits x_j, A p_j - a_j with A = sum_c a_c and p the
    /// softmax; on probabilities, -a_j / p_j (0 where the log is clamped).
    ///
    /// `mean` is PyTorch's weighted mean: divided by sum of w_y over the
    /// non-ignored positions for class indices (the count when unweighted),
    /// by the number of positions for probability rows. When that weight
    /// sum is 0 (every target ignored) the mean is 0/0, which PyTorch returns
    /// as NaN: it is an [`LossError::Undefined`] here; `sum` gives 0.
    ///
    /// Errors: bad shapes, empty input, a class index that is not an integer
    /// in 0..C (nor `ignore_index`), target probabilities outside [0, 1],
    /// predictions outside [0, 1] when `from_probabilities`, `class_weights`
    /// of the wrong length, an undefined mean.
    pub fn compute(
        &self,
        predictions: ArrayViewD<'_, f64>,
        targets: ArrayViewD<'_, f64>,
        reduction: Reduction,
    ) -> Result<LossOutput, LossError> {
        let layout = layout(predictions.shape())?;
        non_empty("predictions", &predictions)?;
        let kind = target_kind(predictions.shape(), targets.shape(), &layout)?;
        let weights = self.weights(layout.c)?;
        let x = row_major(&predictions);
        let t = row_major(&targets);
        if self.from_probabilities {
            check_probabilities("predictions", &x, predictions.shape())?;
        }
        match kind {
            Targets::Indices => self.check_indices(&t, targets.shape(), layout.c)?,
            Targets::Probabilities => check_probabilities("targets", &t, targets.shape())?,
        }
        let denominator = match kind {
            Targets::Indices => self.index_weight_sum(&t, &weights),
            Targets::Probabilities => (layout.n * layout.s) as f64,
        };
        if reduction == Reduction::Mean && denominator <= 0.0 {
            return Err(LossError::Undefined {
                field: "targets",
                detail: format!(
                    "every target is ignore_index ({}) or has class weight 0, so the weighted mean is 0/0 (PyTorch gives NaN); use reduction sum or none",
                    self.ignore_index
                ),
            });
        }
        if kind == Targets::Indices && layout.s == 1 && !self.from_probabilities {
            // The common N x C case, in blocks of contiguous rows; its
            // gradient comes out already scaled for the reduction.
            let scale = match reduction {
                Reduction::Mean => 1.0 / denominator,
                Reduction::Sum | Reduction::None => 1.0,
            };
            let isa = Isa::current();
            let (items, gradient, finite) = self.index_rows(&x, &t, &weights, scale, isa);
            let items = shaped("targets", &layout.item_shape, items)?;
            let gradient = shaped("predictions", predictions.shape(), gradient)?;
            finish_scaled(items, gradient, reduction, denominator, finite)
        } else {
            let (items, gradient) = self.sum_and_gradient(&x, &t, kind, &weights, &layout);
            let items = shaped("targets", &layout.item_shape, items)?;
            let gradient = shaped("predictions", predictions.shape(), gradient)?;
            finish(items, gradient, reduction, denominator)
        }
    }

    /// Class-index targets over contiguous rows of C logits (N x C, or one
    /// row of C): the per-position losses, the gradient of their sum times
    /// `scale`, and whether all of both are finite.
    ///
    /// Rows go in blocks of about [`CHUNK`] values through the
    /// [`SoftmaxRows`] kernel, into a block buffer that stays in cache and
    /// is then appended to the gradient (written once, and checked for
    /// finiteness while in cache).
    fn index_rows(
        &self,
        x: &[f64],
        t: &[f64],
        weights: &[f64],
        scale: f64,
        isa: Isa,
    ) -> (Vec<f64>, Vec<f64>, bool) {
        let c = weights.len();
        let e = self.label_smoothing;
        let smoothing: Vec<f64> = weights.iter().map(|w| e * w / c as f64).collect();
        let rows = (CHUNK / c).max(1);
        let mut items = vec![0.0; t.len()];
        let mut gradient = Vec::with_capacity(x.len());
        let mut block = vec![0.0; rows * c];
        let (mut maxima, mut sums) = (vec![0.0; rows], vec![0.0; rows]);
        let mut finite = true;
        let blocks = x
            .chunks(rows * c)
            .zip(t.chunks(rows).zip(items.chunks_mut(rows)));
        for (xb, (tb, ib)) in blocks {
            let grad = &mut block[..xb.len()];
            let kernel = SoftmaxRows {
                x: xb,
                targets: tb,
                weights,
                smoothing: &smoothing,
                smoothing_total: smoothing.iter().sum(),
                target_share: 1.0 - e,
                ignore_index: self.ignore_index as f64,
                scale,
                maxima: &mut maxima,
                sums: &mut sums,
                items: &mut *ib,
                grad: &mut *grad,
            };
            kernels::run(isa, kernel);
            finite &= all_finite(grad) & all_finite(ib);
            gradient.extend_from_slice(grad);
        }
        (items, gradient, finite)
    }

    /// One weight per class: the given ones, or ones.
    fn weights(&self, c: usize) -> Result<Vec<f64>, LossError> {
        match &self.class_weights {
            None => Ok(vec![1.0; c]),
            Some(w) if w.len() == c => Ok(w.clone()),
            Some(w) => Err(LossError::Shape {
                field: "class_weights",
                found: vec![w.len()],
                expected: format!("predictions has {c} classes; one weight per class is required"),
            }),
        }
    }

    fn check_indices(&self, t: &[f64], shape: &[usize], c: usize) -> Result<(), LossError> {
        let ok = |v: f64| {
            v.fract() == 0.0 && ((v >= 0.0 && v < c as f64) || v == self.ignore_index as f64)
        };
        match t.iter().position(|v| !ok(*v)) {
            None => Ok(()),
            Some(i) => Err(LossError::ClassIndex {
                position: position(i, shape),
                value: t.get(i).copied().unwrap_or(f64::NAN),
                classes: c,
                ignore_index: self.ignore_index,
            }),
        }
    }

    /// Sum of w_y over the non-ignored targets (the mean's denominator).
    fn index_weight_sum(&self, t: &[f64], weights: &[f64]) -> f64 {
        t.iter()
            .filter(|&&y| y != self.ignore_index as f64)
            .map(|&y| weights.get(y as usize).copied().unwrap_or(0.0))
            .sum()
    }

    /// Per-position losses and the gradient of their sum, in one sweep over
    /// the positions. Each position's scores are gathered into a contiguous
    /// scratch row (they are strided when there are spatial dims), computed
    /// there, and the gradient scattered back; the scratch buffers (C values
    /// each) are the only allocations besides the outputs.
    fn sum_and_gradient(
        &self,
        x: &[f64],
        t: &[f64],
        kind: Targets,
        weights: &[f64],
        layout: &Layout,
    ) -> (Vec<f64>, Vec<f64>) {
        let Layout { n, c, s, .. } = *layout;
        let stride = s.max(1);
        let mut items = Vec::with_capacity(n * s);
        let mut gradient = vec![0.0; x.len()];
        let mut scratch = Scratch::new(c);
        for sample in 0..n {
            for pos in 0..s {
                let base = sample * c * s + pos;
                let item = sample * s + pos;
                let has_weight = match kind {
                    Targets::Indices => {
                        self.index_coefficients(t.get(item), weights, &mut scratch.a)
                    }
                    Targets::Probabilities => {
                        let q = t.iter().skip(base).step_by(stride);
                        self.probability_coefficients(q, weights, &mut scratch.a);
                        true
                    }
                };
                if !has_weight {
                    items.push(0.0);
                    continue;
                }
                for (r, v) in scratch
                    .row
                    .iter_mut()
                    .zip(x.iter().skip(base).step_by(stride))
                {
                    *r = *v;
                }
                items.push(self.position_loss(&mut scratch));
                let slots = gradient.iter_mut().skip(base).step_by(stride);
                for (slot, g) in slots.zip(&scratch.grad) {
                    *slot = *g;
                }
            }
        }
        (items, gradient)
    }

    /// Fills `a` for class index `y`; false (and no contribution) when `y`
    /// is ignored.
    fn index_coefficients(&self, y: Option<&f64>, weights: &[f64], a: &mut [f64]) -> bool {
        let Some(&y) = y else { return false };
        if y == self.ignore_index as f64 {
            return false;
        }
        let e = self.label_smoothing;
        let c = a.len() as f64;
        let target = y as usize;
        for (k, (a_k, w_k)) in a.iter_mut().zip(weights).enumerate() {
            *a_k = e * w_k / c + if k == target { (1.0 - e) * w_k } else { 0.0 };
        }
        true
    }

    /// Fills `a` for a probability row `q`.
    fn probability_coefficients<'a>(
        &self,
        q: impl Iterator<Item = &'a f64>,
        weights: &[f64],
        a: &mut [f64],
    ) {
        let e = self.label_smoothing;
        let c = a.len() as f64;
        for ((a_k, w_k), q_k) in a.iter_mut().zip(weights).zip(q) {
            *a_k = w_k * ((1.0 - e) * q_k + e / c);
        }
    }

    /// Loss of one position from `scratch.row` (scores) and `scratch.a`
    /// (coefficients); writes its gradient into `scratch.grad`.
    fn position_loss(&self, scratch: &mut Scratch) -> f64 {
        let Scratch {
            row,
            lp,
            softmax,
            a,
            grad,
        } = scratch;
        if self.from_probabilities {
            for ((l, g), (p, a_j)) in lp
                .iter_mut()
                .zip(grad.iter_mut())
                .zip(row.iter().zip(a.iter()))
            {
                let ln = fastmath::ln(*p);
                *l = ln.max(LOG_FLOOR);
                // d max(ln p, -100) / dp is 1/p above the floor, 0 on it
                *g = if ln > LOG_FLOOR { -a_j / p } else { 0.0 };
            }
        } else {
            log_softmax(row, lp, softmax);
            let total: f64 = a.iter().sum();
            for ((g, a_j), sm) in grad.iter_mut().zip(a.iter()).zip(softmax.iter()) {
                *g = total * sm - a_j;
            }
        }
        -a.iter().zip(lp.iter()).map(|(a, l)| a * l).sum::<f64>()
    }
}

/// Per-call buffers of C values each.
struct Scratch {
    row: Vec<f64>,
    lp: Vec<f64>,
    softmax: Vec<f64>,
    a: Vec<f64>,
    grad: Vec<f64>,
}

impl Scratch {
    fn new(c: usize) -> Self {
        Scratch {
            row: vec![0.0; c],
            lp: vec![0.0; c],
            softmax: vec![0.0; c],
            a: vec![0.0; c],
            grad: vec![0.0; c],
        }
    }
}

/// log_softmax and softmax of `row`, shifted by the maximum so no exponent
/// overflows (logits of +-1000 are fine); one exponential per class.
/// The shift, the exponentials and the sum are separate loops so the first
/// two vectorize (the serial float sum would block them); the exponential
/// and logarithm are `fastmath`'s, within 1 ulp of std.
fn log_softmax(row: &[f64], lp: &mut [f64], softmax: &mut [f64]) {
    let max = row.iter().fold(f64::NEG_INFINITY, |m, &v| m.max(v));
    for (l, v) in lp.iter_mut().zip(row) {
        *l = v - max;
    }
    fastmath::exp_slice(lp, softmax);
    let mut sum = 0.0;
    for e in softmax.iter() {
        sum += e;
    }
    let log_sum = fastmath::ln(sum);
    let inv = 1.0 / sum;
    for (l, e) in lp.iter_mut().zip(softmax.iter_mut()) {
        *l -= log_sum;
        *e *= inv;
    }
}

fn layout(shape: &[usize]) -> Result<Layout, LossError> {
    match shape {
        [] => Err(LossError::Shape {
            field: "predictions",
            found: vec![],
            expected: "cross entropy needs scores over classes: C, N x C or N x C x d1 x ..."
                .to_owned(),
        }),
        [c] => Ok(Layout {
            n: 1,
            c: *c,
            s: 1,
            item_shape: vec![],
        }),
        [n, c, rest @ ..] => {
            let mut item_shape = vec![*n];
            item_shape.extend_from_slice(rest);
            Ok(Layout {
                n: *n,
                c: *c,
                s: rest.iter().product(),
                item_shape,
            })
        }
    }
}

fn target_kind(
    predictions: &[usize],
    targets: &[usize],
    layout: &Layout,
) -> Result<Targets, LossError> {
    if targets == predictions {
        Ok(Targets::Probabilities)
    } else if targets == layout.item_shape.as_slice() {
        Ok(Targets::Indices)
    } else {
        Err(LossError::Shape {
            field: "targets",
            found: targets.to_vec(),
            expected: format!(
                "predictions has shape {predictions:?}; expected {:?} (class indices) or {predictions:?} (class probabilities)",
                layout.item_shape
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::losses::LossValue;
    use ndarray::{arr1, arr2, ArrayD};

    fn example_inputs(n: usize, c: usize) -> (ArrayD<f64>, ArrayD<f64>) {
        let x = ArrayD::from_shape_fn(ndarray::IxDyn(&[n, c]), |i| (i[0] + 2 * i[1]) as f64);
        let t = ArrayD::from_shape_fn(ndarray::IxDyn(&[n]), |i| (i[0] % c) as f64);
        (x, t)
    }

    fn ce() -> CrossEntropy {
        CrossEntropy::new(None, 0.0, DEFAULT_IGNORE_INDEX, false).unwrap()
    }

    #[test]
    fn uniform_logits_give_ln_c() {
        let x = arr2(&[[0.0, 0.0, 0.0, 0.0]]).into_dyn();
        let t = arr1(&[2.0]).into_dyn();
        let out = ce().compute(x.view(), t.view(), Reduction::Mean).unwrap();
        assert!((out.loss.total() - 4f64.ln()).abs() < 1e-15);
        let g = out.gradient.as_slice().unwrap();
        assert_eq!(g, &[0.25, 0.25, -0.75, 0.25]);
    }

    #[test]
    fn logits_of_1000_are_stable() {
        let x = arr2(&[[1000.0, -1000.0], [-1000.0, 1000.0]]).into_dyn();
        let t = arr1(&[1.0, 1.0]).into_dyn();
        let out = ce().compute(x.view(), t.view(), Reduction::None).unwrap();
        let LossValue::PerItem(items) = out.loss else {
            panic!("none gives items")
        };
        assert_eq!(items.as_slice().unwrap(), &[2000.0, 0.0]);
        assert_eq!(out.gradient.as_slice().unwrap(), &[1.0, -1.0, 0.0, 0.0]);
    }

    #[test]
    fn every_target_ignored_is_undefined_for_mean_and_zero_for_sum() {
        let x = arr2(&[[1.0, 2.0]]).into_dyn();
        let t = arr1(&[-100.0]).into_dyn();
        let err = ce()
            .compute(x.view(), t.view(), Reduction::Mean)
            .unwrap_err();
        assert_eq!(err.field(), "targets");
        let out = ce().compute(x.view(), t.view(), Reduction::Sum).unwrap();
        assert_eq!(out.loss, LossValue::Scalar(0.0));
    }

    #[test]
    fn class_index_out_of_range_names_its_position() {
        let x = arr2(&[[1.0, 2.0], [0.0, 0.0]]).into_dyn();
        let t = arr1(&[0.0, 2.0]).into_dyn();
        let err = ce()
            .compute(x.view(), t.view(), Reduction::Mean)
            .unwrap_err();
        assert!(err.to_string().contains("targets at [1] is 2"), "{err}");
        let t = arr1(&[0.5, 1.0]).into_dyn();
        assert!(ce().compute(x.view(), t.view(), Reduction::Mean).is_err());
    }

    #[test]
    fn wrong_target_shape_lists_both_accepted_shapes() {
        let x = arr2(&[[1.0, 2.0], [0.0, 0.0]]).into_dyn();
        let t = arr1(&[0.0, 1.0, 1.0]).into_dyn();
        let err = ce()
            .compute(x.view(), t.view(), Reduction::Mean)
            .unwrap_err();
        assert!(err.to_string().contains("class indices"), "{err}");
    }

    #[test]
    fn bad_parameters_are_rejected() {
        assert!(CrossEntropy::new(None, 1.5, -100, false).is_err());
        assert!(CrossEntropy::new(Some(vec![1.0, -1.0]), 0.0, -100, false).is_err());
        let ce = CrossEntropy::new(Some(vec![1.0]), 0.0, -100, false).unwrap();
        let (x, t) = example_inputs(3, 2);
        let err = ce.compute(x.view(), t.view(), Reduction::Mean).unwrap_err();
        assert_eq!(err.field(), "class_weights");
    }
}
