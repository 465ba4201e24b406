//! L1/L2 (elastic-net style) penalty on a weight tensor, added to a loss.

use ndarray::ArrayD;

use super::{position, LossError};

/// Penalty strengths, both >= 0.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Regularization {
    l1: f64,
    l2: f64,
}

/// The penalty on some weights and its gradient with respect to them.
#[derive(Debug, Clone, PartialEq)]
pub struct Penalty {
    pub value: f64,
    /// Shaped like the weights.
    pub gradient: ArrayD<f64>,
}

impl Regularization {
    /// Checks `l1` and `l2` are finite and >= 0 (a negative strength would
    /// reward large weights, which no regularizer means to do).
    pub fn new(l1: f64, l2: f64) -> Result<Self, LossError> {
        for (name, value) in [("regularization.l1", l1), ("regularization.l2", l2)] {
            if !value.is_finite() || value < 0.0 {
                return Err(LossError::Param {
                    name,
                    value,
                    expected: "a finite number >= 0",
                });
            }
        }
        Ok(Regularization { l1, l2 })
    }

    /// penalty = l1 sum |w| + l2 sum w^2; gradient l1 sign(w) + 2 l2 w, where
    /// sign(0) = 0: the subgradient of |w| at 0 that PyTorch's `sign` gives.
    /// Empty weights give a penalty of 0.
    ///
    /// Errors: overflow of the penalty or its gradient (|w| near f64::MAX).
    pub fn penalty(&self, weights: &ArrayD<f64>) -> Result<Penalty, LossError> {
        let (l1, l2) = (self.l1, self.l2);
        let value = weights
            .iter()
            .map(|&w| l1 * w.abs() + l2 * w * w)
            .sum::<f64>();
        let gradient = weights.mapv(|w| {
            let sign = if w > 0.0 {
                1.0
            } else if w < 0.0 {
                -1.0
            } else {
                0.0
            };
            l1 * sign + 2.0 * l2 * w
        });
        if let Some(i) = gradient.iter().position(|g| !g.is_finite()) {
            return Err(LossError::Overflow {
                field: "regularization.weights",
                position: position(i, weights.shape()),
            });
        }
        if !value.is_finite() {
            return Err(LossError::Overflow {
                field: "regularization.weights",
                position: "the penalty".to_owned(),
            });
        }
        Ok(Penalty { value, gradient })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::arr1;

    #[test]
    fn penalty_and_subgradient_at_zero() {
        let r = Regularization::new(0.5, 0.25).unwrap();
        let w = arr1(&[2.0, 0.0, -1.0]).into_dyn();
        let p = r.penalty(&w).unwrap();
        assert_eq!(p.value, 0.5 * 3.0 + 0.25 * 5.0);
        assert_eq!(p.gradient.as_slice().unwrap(), &[1.5, 0.0, -1.0]);
    }

    #[test]
    fn negative_strengths_are_rejected_with_their_field() {
        assert_eq!(
            Regularization::new(-1.0, 0.0).unwrap_err().field(),
            "regularization.l1"
        );
        assert_eq!(
            Regularization::new(0.0, f64::NAN).unwrap_err().field(),
            "regularization.l2"
        );
    }
}
