//! Built-in functions to minimise, each with its analytic gradient.
//!
//! - [`Quadratic`]: `f(x) = 1/2 sum_i lambda_i x_i^2`, eigenvalues spaced
//!   geometrically from 1 to the condition number, so plain gradient descent
//!   zig-zags along the steep axis while creeping along the flat one.
//! - [`Rosenbrock`]: `f(x) = sum_{i<d-1} 100 (x_{i+1} - x_i^2)^2 + (1 - x_i)^2`,
//!   minimum 0 at all ones, a curved narrow valley.
//! - [`Logistic`]: mean binary cross-entropy of a linear model on given
//!   features and 0/1 labels, plus `l1 sum|w| + l2 sum w^2` (the intercept is
//!   not penalised), minimised with mini-batches of a chosen size.

use ndarray::{Array2, ArrayView1};
use thiserror::Error;

/// Invalid objective settings or data.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum ObjectiveError {
    /// A setting is out of its domain.
    #[error("{name} must be {expected}, found {found}")]
    Invalid {
        name: &'static str,
        expected: &'static str,
        found: String,
    },
    /// Two inputs disagree in length.
    #[error("{name} has {found} elements but {other} has {expected}")]
    LengthMismatch {
        name: &'static str,
        found: usize,
        other: &'static str,
        expected: usize,
    },
    /// A label is not 0 or 1.
    #[error("labels at [{index}] is {found} but must be 0 or 1")]
    Label { index: usize, found: f64 },
}

/// A built-in objective.
#[derive(Debug, Clone, PartialEq)]
pub enum Objective {
    Quadratic(Quadratic),
    Rosenbrock(Rosenbrock),
    Logistic(Logistic),
}

/// Which built-in objective, by its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ObjectiveKind {
    Quadratic,
    Rosenbrock,
    Logistic,
}

impl ObjectiveKind {
    /// Every objective, in the order `GET /optimizer` lists them.
    pub const ALL: [ObjectiveKind; 3] = [
        ObjectiveKind::Quadratic,
        ObjectiveKind::Rosenbrock,
        ObjectiveKind::Logistic,
    ];

    /// The lower-case name (`quadratic`, ...).
    pub fn name(self) -> &'static str {
        match self {
            ObjectiveKind::Quadratic => "quadratic",
            ObjectiveKind::Rosenbrock => "rosenbrock",
            ObjectiveKind::Logistic => "logistic",
        }
    }

    /// Every name, for "valid names" messages.
    pub fn names() -> Vec<&'static str> {
        Self::ALL.iter().map(|k| k.name()).collect()
    }

    /// Looks a name up (exact, lower case).
    pub fn from_name(name: &str) -> Option<ObjectiveKind> {
        Self::ALL.into_iter().find(|k| k.name() == name)
    }
}

impl Objective {
    /// Which objective this is.
    pub fn kind(&self) -> ObjectiveKind {
        match self {
            Objective::Quadratic(_) => ObjectiveKind::Quadratic,
            Objective::Rosenbrock(_) => ObjectiveKind::Rosenbrock,
            Objective::Logistic(_) => ObjectiveKind::Logistic,
        }
    }

    /// Number of parameters.
    pub fn dimension(&self) -> usize {
        match self {
            Objective::Quadratic(q) => q.eigenvalues.len(),
            Objective::Rosenbrock(r) => r.dimension,
            Objective::Logistic(l) => l.dimension(),
        }
    }

    /// The customary starting point: all ones (quadratic), (-1.2, 1, -1.2, ...)
    /// (Rosenbrock, the classic start), zeros (logistic).
    pub fn default_start(&self) -> Vec<f64> {
        let d = self.dimension();
        match self {
            Objective::Quadratic(_) => vec![1.0; d],
            Objective::Rosenbrock(_) => (0..d)
                .map(|i| if i % 2 == 0 { -1.2 } else { 1.0 })
                .collect(),
            Objective::Logistic(_) => vec![0.0; d],
        }
    }

    /// The full objective at `x` (over every sample, for logistic).
    /// `x` must have [`Objective::dimension`] elements (checked by the run).
    pub fn loss(&self, x: &[f64]) -> f64 {
        match self {
            Objective::Quadratic(q) => q.loss(x),
            Objective::Rosenbrock(_) => Rosenbrock::loss(x),
            Objective::Logistic(l) => l.loss(x, None),
        }
    }

    /// The gradient at `x`; for logistic over the samples in `rows` (all when
    /// `None`), the mean of their gradients plus the penalty's.
    pub fn gradient(&self, x: &[f64], rows: Option<&[usize]>) -> Vec<f64> {
        match self {
            Objective::Quadratic(q) => q.gradient(x),
            Objective::Rosenbrock(_) => Rosenbrock::gradient(x),
            Objective::Logistic(l) => l.gradient(x, rows),
        }
    }
}

/// `f(x) = 1/2 sum_i lambda_i x_i^2` with `lambda_i = kappa^(i / (d - 1))`:
/// smallest eigenvalue 1, largest `kappa` (the condition number).
#[derive(Debug, Clone, PartialEq)]
pub struct Quadratic {
    pub eigenvalues: Vec<f64>,
}

impl Quadratic {
    /// `dimension` >= 1 and `condition_number` finite and >= 1; with one
    /// dimension the only eigenvalue is 1, so the condition number must be 1.
    pub fn new(dimension: usize, condition_number: f64) -> Result<Self, ObjectiveError> {
        if dimension == 0 {
            return Err(ObjectiveError::Invalid {
                name: "dimension",
                expected: ">= 1",
                found: "0".into(),
            });
        }
        if !(condition_number.is_finite() && condition_number >= 1.0) {
            return Err(ObjectiveError::Invalid {
                name: "condition_number",
                expected: "a finite number >= 1",
                found: condition_number.to_string(),
            });
        }
        if dimension == 1 && condition_number != 1.0 {
            return Err(ObjectiveError::Invalid {
                name: "condition_number",
                expected: "1 when dimension is 1 (one eigenvalue)",
                found: condition_number.to_string(),
            });
        }
        let last = (dimension - 1).max(1) as f64;
        let eigenvalues = (0..dimension)
            .map(|i| condition_number.powf(i as f64 / last))
            .collect();
        Ok(Quadratic { eigenvalues })
    }

    fn loss(&self, x: &[f64]) -> f64 {
        0.5 * self
            .eigenvalues
            .iter()
            .zip(x)
            .map(|(l, x)| l * x * x)
            .sum::<f64>()
    }

    fn gradient(&self, x: &[f64]) -> Vec<f64> {
        self.eigenvalues.iter().zip(x).map(|(l, x)| l * x).collect()
    }
}

/// The Rosenbrock function (a = 1, b = 100) in `dimension` >= 2 variables.
#[derive(Debug, Clone, PartialEq)]
pub struct Rosenbrock {
    pub dimension: usize,
}

impl Rosenbrock {
    /// `dimension` must be >= 2.
    pub fn new(dimension: usize) -> Result<Self, ObjectiveError> {
        if dimension < 2 {
            return Err(ObjectiveError::Invalid {
                name: "dimension",
                expected: ">= 2 for rosenbrock",
                found: dimension.to_string(),
            });
        }
        Ok(Rosenbrock { dimension })
    }

    fn loss(x: &[f64]) -> f64 {
        x.windows(2)
            .map(|w| match w {
                [a, b] => 100.0 * (b - a * a).powi(2) + (1.0 - a).powi(2),
                _ => 0.0,
            })
            .sum()
    }

    /// d/dx_i = -400 x_i (x_{i+1} - x_i^2) - 2 (1 - x_i) + 200 (x_i - x_{i-1}^2).
    fn gradient(x: &[f64]) -> Vec<f64> {
        let mut g = vec![0.0; x.len()];
        for (i, w) in x.windows(2).enumerate() {
            if let ([a, b], Some(ga)) = (w, g.get_mut(i)) {
                *ga += -400.0 * a * (b - a * a) - 2.0 * (1.0 - a);
            }
            if let ([a, b], Some(gb)) = (w, g.get_mut(i + 1)) {
                *gb += 200.0 * (b - a * a);
            }
        }
        g
    }
}

/// Logistic regression: parameters `[w_0 .. w_{d-1}, b]` (no `b` without an
/// intercept), loss per sample `softplus(z) - y z` with `z = w . x + b`.
#[derive(Debug, Clone, PartialEq)]
pub struct Logistic {
    pub features: Array2<f64>,
    pub labels: Vec<f64>,
    pub fit_intercept: bool,
    pub l1: f64,
    pub l2: f64,
    /// Samples per gradient: 1 = SGD, n = full-batch GD, between = mini-batch.
    pub batch_size: usize,
    /// Seed of the per-epoch shuffle of sample order.
    pub seed: u64,
}

impl Logistic {
    /// Checks: at least one sample; one label (0 or 1) per row; `l1`, `l2`
    /// finite and >= 0; `batch_size` in 1..=n.
    pub fn new(
        features: Array2<f64>,
        labels: Vec<f64>,
        fit_intercept: bool,
        (l1, l2): (f64, f64),
        batch_size: usize,
        seed: u64,
    ) -> Result<Self, ObjectiveError> {
        let n = features.nrows();
        if n == 0 {
            return Err(ObjectiveError::Invalid {
                name: "features",
                expected: "at least one sample",
                found: "no rows".into(),
            });
        }
        if labels.len() != n {
            return Err(ObjectiveError::LengthMismatch {
                name: "labels",
                found: labels.len(),
                other: "features",
                expected: n,
            });
        }
        if let Some(index) = labels.iter().position(|y| *y != 0.0 && *y != 1.0) {
            let found = labels.get(index).copied().unwrap_or(f64::NAN);
            return Err(ObjectiveError::Label { index, found });
        }
        for (name, value) in [("l1", l1), ("l2", l2)] {
            if !(value.is_finite() && value >= 0.0) {
                return Err(ObjectiveError::Invalid {
                    name,
                    expected: "a finite number >= 0",
                    found: value.to_string(),
                });
            }
        }
        if batch_size == 0 || batch_size > n {
            return Err(ObjectiveError::Invalid {
                name: "batch_size",
                expected: "between 1 and the number of samples",
                found: format!("{batch_size} with {n} samples"),
            });
        }
        Ok(Logistic {
            features,
            labels,
            fit_intercept,
            l1,
            l2,
            batch_size,
            seed,
        })
    }

    /// Number of samples.
    pub fn samples(&self) -> usize {
        self.features.nrows()
    }

    fn dimension(&self) -> usize {
        self.features.ncols() + usize::from(self.fit_intercept)
    }

    fn logit(&self, x: &[f64], row: ArrayView1<'_, f64>) -> f64 {
        let (w, b) = x.split_at(self.features.ncols().min(x.len()));
        let bias = if self.fit_intercept {
            b.first().copied().unwrap_or(0.0)
        } else {
            0.0
        };
        row.iter().zip(w).map(|(f, w)| f * w).sum::<f64>() + bias
    }

    fn weights<'a>(&self, x: &'a [f64]) -> &'a [f64] {
        x.get(..self.features.ncols()).unwrap_or(x)
    }

    fn penalty(&self, x: &[f64]) -> f64 {
        let w = self.weights(x);
        self.l1 * w.iter().map(|v| v.abs()).sum::<f64>()
            + self.l2 * w.iter().map(|v| v * v).sum::<f64>()
    }

    /// Mean of `softplus(z) - y z` over `rows` (all when `None`) plus the penalty.
    fn loss(&self, x: &[f64], rows: Option<&[usize]>) -> f64 {
        let total: f64 = self
            .sample_rows(rows)
            .map(|(row, y)| {
                let z = self.logit(x, row);
                softplus(z) - y * z
            })
            .sum();
        total / self.count(rows) as f64 + self.penalty(x)
    }

    /// Mean of `(sigmoid(z) - y) [x, 1]` over `rows`, plus `l1 sign(w) + 2 l2 w`
    /// (the subgradient 0 at w = 0, as torch's `abs` backward).
    fn gradient(&self, x: &[f64], rows: Option<&[usize]>) -> Vec<f64> {
        let d = self.features.ncols();
        let mut g = vec![0.0; self.dimension()];
        for (row, y) in self.sample_rows(rows) {
            let r = sigmoid(self.logit(x, row)) - y;
            for (gi, f) in g.iter_mut().zip(row.iter()) {
                *gi += r * f;
            }
            if let (true, Some(gb)) = (self.fit_intercept, g.get_mut(d)) {
                *gb += r;
            }
        }
        let count = self.count(rows) as f64;
        for (gi, w) in g.iter_mut().zip(self.weights(x)) {
            let sign = if *w > 0.0 {
                1.0
            } else if *w < 0.0 {
                -1.0
            } else {
                0.0
            };
            *gi = *gi / count + self.l1 * sign + 2.0 * self.l2 * w;
        }
        if let (true, Some(gb)) = (self.fit_intercept, g.get_mut(d)) {
            *gb /= count;
        }
        g
    }

    fn count(&self, rows: Option<&[usize]>) -> usize {
        rows.map_or(self.samples(), <[usize]>::len).max(1)
    }

    fn sample_rows<'a>(
        &'a self,
        rows: Option<&'a [usize]>,
    ) -> Box<dyn Iterator<Item = (ArrayView1<'a, f64>, f64)> + 'a> {
        match rows {
            None => Box::new(
                self.features
                    .rows()
                    .into_iter()
                    .zip(self.labels.iter().copied()),
            ),
            Some(rows) => Box::new(rows.iter().filter_map(move |&i| {
                let y = self.labels.get(i).copied()?;
                (i < self.samples()).then(|| (self.features.row(i), y))
            })),
        }
    }
}

/// `ln(1 + e^z)` without overflow: `max(z, 0) + ln(1 + e^-|z|)`.
fn softplus(z: f64) -> f64 {
    z.max(0.0) + (-z.abs()).exp().ln_1p()
}

/// `1 / (1 + e^-z)`, evaluated on the side that does not overflow.
fn sigmoid(z: f64) -> f64 {
    if z >= 0.0 {
        1.0 / (1.0 + (-z).exp())
    } else {
        let e = z.exp();
        e / (1.0 + e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    /// Central differences, step 1e-6; agreement to 1e-6 relative.
    fn assert_gradient_matches_finite_differences(objective: &Objective, x: &[f64]) {
        let g = objective.gradient(x, None);
        for i in 0..x.len() {
            let h = 1e-6;
            let mut up = x.to_vec();
            let mut down = x.to_vec();
            up[i] += h;
            down[i] -= h;
            let numeric = (objective.loss(&up) - objective.loss(&down)) / (2.0 * h);
            let scale = numeric.abs().max(1.0);
            assert!(
                (g[i] - numeric).abs() < 1e-6 * scale,
                "coordinate {i}: {} vs {numeric}",
                g[i]
            );
        }
    }

    #[test]
    fn quadratic_eigenvalues_run_from_one_to_the_condition_number() {
        let q = Quadratic::new(3, 100.0).unwrap();
        assert_eq!(q.eigenvalues.first(), Some(&1.0));
        assert!((q.eigenvalues[1] - 10.0).abs() < 1e-12);
        assert!((q.eigenvalues[2] - 100.0).abs() < 1e-12);
    }

    #[test]
    fn analytic_gradients_match_finite_differences() {
        let quad = Objective::Quadratic(Quadratic::new(3, 10.0).unwrap());
        assert_gradient_matches_finite_differences(&quad, &[0.3, -1.0, 2.0]);
        let rosen = Objective::Rosenbrock(Rosenbrock::new(4).unwrap());
        assert_gradient_matches_finite_differences(&rosen, &[-1.2, 1.0, 0.5, 0.7]);
        let features = array![[0.5, -1.0], [1.5, 2.0], [-0.3, 0.8]];
        let logistic =
            Logistic::new(features, vec![1.0, 0.0, 1.0], true, (0.0, 0.3), 3, 0).unwrap();
        assert_gradient_matches_finite_differences(
            &Objective::Logistic(logistic),
            &[0.2, -0.4, 0.1],
        );
    }

    #[test]
    fn rosenbrock_is_zero_at_all_ones() {
        let r = Objective::Rosenbrock(Rosenbrock::new(3).unwrap());
        assert_eq!(r.loss(&[1.0, 1.0, 1.0]), 0.0);
        assert_eq!(r.gradient(&[1.0, 1.0, 1.0], None), vec![0.0, 0.0, 0.0]);
    }

    #[test]
    fn logistic_rejects_labels_outside_zero_one_naming_the_position() {
        let err = Logistic::new(array![[1.0], [2.0]], vec![0.0, 2.0], true, (0.0, 0.0), 1, 0)
            .unwrap_err();
        assert_eq!(
            err,
            ObjectiveError::Label {
                index: 1,
                found: 2.0
            }
        );
    }

    #[test]
    fn logistic_loss_at_zero_is_ln_two() {
        let l =
            Logistic::new(array![[1.0], [2.0]], vec![0.0, 1.0], true, (0.0, 0.0), 2, 0).unwrap();
        let loss = Objective::Logistic(l).loss(&[0.0, 0.0]);
        assert!((loss - std::f64::consts::LN_2).abs() < 1e-15);
    }
}
