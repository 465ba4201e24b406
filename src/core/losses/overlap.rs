//! Soft overlap losses for segmentation: dice and IoU (Jaccard).
//!
//! The sums run over every element of one sample: all dimensions after the
//! first (a 1-d input is one sample). `reduction` then applies across the N
//! samples, so `none` gives N values and `mean` divides by N. MONAI (smooth
//! 1e-5, per sample and channel) and segmentation_models_pytorch (smooth 0)
//! differ in where they sum and how they smooth; pass `smooth` to match them.

use ndarray::{ArrayD, ArrayViewD};

use super::reduction::finish;
use super::{
    check_probabilities, row_major, same_shape, shaped, sigmoid, LossError, LossOutput, Reduction,
};

/// Default `smooth` of dice and IoU.
pub const DEFAULT_SMOOTH: f64 = 1.0;

/// Soft dice loss.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Dice {
    smooth: f64,
    squared: bool,
    from_logits: bool,
}

/// Soft IoU (Jaccard) loss.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Iou {
    smooth: f64,
    from_logits: bool,
}

fn check_smooth(smooth: f64) -> Result<(), LossError> {
    if smooth.is_finite() && smooth >= 0.0 {
        Ok(())
    } else {
        Err(LossError::Param {
            name: "smooth",
            value: smooth,
            expected: "a finite number >= 0",
        })
    }
}

/// Per-sample sums of one sample: I = sum p y, P = sum p (or p^2), Y = sum y
/// (or y^2).
struct Sums {
    intersection: f64,
    predicted: f64,
    target: f64,
}

impl Dice {
    /// Checks `smooth` >= 0.
    pub fn new(smooth: f64, squared: bool, from_logits: bool) -> Result<Self, LossError> {
        check_smooth(smooth)?;
        Ok(Dice {
            smooth,
            squared,
            from_logits,
        })
    }

    /// Per sample, with p the probabilities (sigmoid of the logits when
    /// `from_logits`), y the targets in [0, 1] and s = `smooth`:
    /// l = 1 - (2 I + s) / (P + Y + s), I = sum p y, P = sum p, Y = sum y
    /// (sum p^2 and sum y^2 when `squared`).
    ///
    /// Gradient: -(2 y_j D - (2 I + s) dP_j) / D^2, D = P + Y + s,
    /// dP_j = 1 (or 2 p_j), times p_j (1 - p_j) on logits.
    ///
    /// Errors: shape mismatch, empty or 0-d input, values outside [0, 1], and
    /// a sample with D = 0 (all zeros with smooth 0: 0/0, undefined).
    pub fn compute(
        &self,
        predictions: ArrayViewD<'_, f64>,
        targets: ArrayViewD<'_, f64>,
        reduction: Reduction,
    ) -> Result<LossOutput, LossError> {
        let squared = self.squared;
        let smooth = self.smooth;
        per_sample(
            predictions,
            targets,
            reduction,
            self.from_logits,
            |p, y| {
                if squared {
                    (p * p, y * y)
                } else {
                    (p, y)
                }
            },
            |sums| {
                let num = 2.0 * sums.intersection + smooth;
                let den = sums.predicted + sums.target + smooth;
                let grad = move |p: f64, y: f64| {
                    let dp = if squared { 2.0 * p } else { 1.0 };
                    -(2.0 * y * den - num * dp) / (den * den)
                };
                (den, 1.0 - num / den, grad)
            },
        )
    }
}

impl Iou {
    /// Checks `smooth` >= 0.
    pub fn new(smooth: f64, from_logits: bool) -> Result<Self, LossError> {
        check_smooth(smooth)?;
        Ok(Iou {
            smooth,
            from_logits,
        })
    }

    /// Per sample, with p, y and s as for dice:
    /// l = 1 - (I + s) / (U + s), I = sum p y, U = sum p + sum y - I.
    ///
    /// Gradient: -(y_j D - (I + s)(1 - y_j)) / D^2, D = U + s, times
    /// p_j (1 - p_j) on logits.
    ///
    /// Errors: as dice (D = 0 only when a sample is all zeros with smooth 0).
    pub fn compute(
        &self,
        predictions: ArrayViewD<'_, f64>,
        targets: ArrayViewD<'_, f64>,
        reduction: Reduction,
    ) -> Result<LossOutput, LossError> {
        let smooth = self.smooth;
        per_sample(
            predictions,
            targets,
            reduction,
            self.from_logits,
            |p, y| (p, y),
            |sums| {
                let num = sums.intersection + smooth;
                let den = sums.predicted + sums.target - sums.intersection + smooth;
                let grad = move |_p: f64, y: f64| -(y * den - num * (1.0 - y)) / (den * den);
                (den, 1.0 - num / den, grad)
            },
        )
    }
}

/// The shared skeleton: validate, split into samples, accumulate [`Sums`]
/// (with `terms` giving the summands of P and Y), let `score` turn them into
/// (denominator, loss, d loss / d p), then chain through the sigmoid.
fn per_sample<G: Fn(f64, f64) -> f64>(
    predictions: ArrayViewD<'_, f64>,
    targets: ArrayViewD<'_, f64>,
    reduction: Reduction,
    from_logits: bool,
    terms: impl Fn(f64, f64) -> (f64, f64),
    score: impl Fn(&Sums) -> (f64, f64, G),
) -> Result<LossOutput, LossError> {
    same_shape(&predictions, &targets)?;
    let shape = predictions.shape();
    let (n, m) = match shape {
        [] => {
            return Err(LossError::Shape {
                field: "predictions",
                found: vec![],
                expected: "dice and IoU need at least one dimension (a 1-d input is one sample)"
                    .to_owned(),
            })
        }
        [len] => (1, *len),
        [n, rest @ ..] => (*n, rest.iter().product()),
    };
    let x = row_major(&predictions);
    let y = row_major(&targets);
    check_probabilities("targets", &y, shape)?;
    if !from_logits {
        check_probabilities("predictions", &x, shape)?;
    }
    // Probabilities first; the gradient overwrites them in place, so one
    // buffer serves both and the sigmoid is evaluated once per element.
    let mut gradient: Vec<f64> = if from_logits {
        x.iter().map(|&v| sigmoid(v)).collect()
    } else {
        x.to_vec()
    };
    let mut items = Vec::with_capacity(n);
    for (sample, (g, y)) in gradient
        .chunks_mut(m.max(1))
        .zip(y.chunks(m.max(1)))
        .enumerate()
    {
        let mut sums = Sums {
            intersection: 0.0,
            predicted: 0.0,
            target: 0.0,
        };
        for (&p, &y) in g.iter().zip(y) {
            let (tp, ty) = terms(p, y);
            sums.intersection += p * y;
            sums.predicted += tp;
            sums.target += ty;
        }
        let (den, loss, grad) = score(&sums);
        if den <= 0.0 {
            return Err(LossError::Undefined {
                field: "predictions",
                detail: format!(
                    "sample [{sample}] has all-zero predictions and targets and smooth is 0, so the ratio is 0/0; pass smooth > 0"
                ),
            });
        }
        items.push(loss);
        for (g, &y) in g.iter_mut().zip(y) {
            let p = *g;
            let chain = if from_logits { p * (1.0 - p) } else { 1.0 };
            *g = grad(p, y) * chain;
        }
    }
    let items: ArrayD<f64> = shaped("predictions", &[n], items)?;
    let gradient = shaped("predictions", shape, gradient)?;
    finish(items, gradient, reduction, n as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{arr1, arr2};

    #[test]
    fn perfect_overlap_with_smooth_zero_is_zero_loss() {
        let p = arr2(&[[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]]).into_dyn();
        let dice = Dice::new(0.0, false, false).unwrap();
        let iou = Iou::new(0.0, false).unwrap();
        assert_eq!(
            dice.compute(p.view(), p.view(), Reduction::Mean)
                .unwrap()
                .loss
                .total(),
            0.0
        );
        assert_eq!(
            iou.compute(p.view(), p.view(), Reduction::Mean)
                .unwrap()
                .loss
                .total(),
            0.0
        );
    }

    #[test]
    fn a_vector_is_one_sample() {
        let p = arr1(&[0.5, 0.5]).into_dyn();
        let y = arr1(&[1.0, 0.0]).into_dyn();
        let out = Dice::new(1.0, false, false)
            .unwrap()
            .compute(p.view(), y.view(), Reduction::None)
            .unwrap();
        let crate::core::losses::LossValue::PerItem(items) = out.loss else {
            panic!("none gives items")
        };
        assert_eq!(items.shape(), &[1]);
        assert!((items[[0]] - (1.0 - 2.0 / 3.0)).abs() < 1e-15);
    }

    #[test]
    fn all_zero_sample_with_smooth_zero_is_undefined() {
        let z = arr2(&[[0.0, 0.0]]).into_dyn();
        let err = Iou::new(0.0, false)
            .unwrap()
            .compute(z.view(), z.view(), Reduction::Mean)
            .unwrap_err();
        assert!(err.to_string().contains("sample [0]"), "{err}");
    }

    #[test]
    fn negative_smooth_is_rejected() {
        assert_eq!(Dice::new(-1.0, false, false).unwrap_err().field(), "smooth");
    }
}
