//! The calibration curve (reliability diagram) with its expected and maximum
//! calibration errors, as `sklearn.calibration.calibration_curve`.
//!
//! Bin edges are either uniform on [0, 1] (`np.linspace(0, 1, n_bins + 1)`)
//! or quantiles of the predictions (`np.percentile(p, np.linspace(0, 1,
//! n_bins + 1) * 100)`, numpy's default linear interpolation), reproduced
//! bit for bit so a score on an edge lands where scikit-learn puts it. A
//! score belongs to the bin `np.searchsorted(edges[1:-1], p)` (side left): a
//! score equal to an inner edge falls in the lower bin. Empty bins are
//! removed.
//!
//! With sample weights the counts are summed weights, `prob_true` and
//! `prob_pred` weighted means, and the quantile edges are those of the
//! predictions repeated by their weights (for integer weights exactly the
//! edges of the repeated records; a zero-weight record has no effect).

use super::table::ScoreTable;

/// How the bin edges are placed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum BinStrategy {
    #[default]
    Uniform,
    Quantile,
}

impl BinStrategy {
    /// The name used in requests and responses.
    pub fn name(self) -> &'static str {
        match self {
            BinStrategy::Uniform => "uniform",
            BinStrategy::Quantile => "quantile",
        }
    }
}

/// A calibration curve over the non-empty bins, in ascending bin order.
#[derive(Debug, Clone, PartialEq)]
pub struct Calibration {
    /// Weighted fraction of positives in each bin.
    pub prob_true: Vec<f64>,
    /// Weighted mean prediction in each bin.
    pub prob_pred: Vec<f64>,
    /// Summed weight (record count without weights) in each bin.
    pub counts: Vec<f64>,
    /// `Σ_b (count_b / Σ count) · |prob_true_b − prob_pred_b|`.
    pub ece: f64,
    /// `max_b |prob_true_b − prob_pred_b|`.
    pub mce: f64,
    pub strategy: BinStrategy,
    pub n_bins: usize,
}

/// numpy's `linspace(0, 1, n + 1)`: `i · (1 / n)`, the last set to 1.
fn linspace01(n_bins: usize) -> Vec<f64> {
    let step = 1.0 / n_bins as f64;
    let mut edges: Vec<f64> = (0..=n_bins).map(|i| i as f64 * step).collect();
    if let Some(last) = edges.last_mut() {
        *last = 1.0;
    }
    edges
}

/// numpy's `_lerp`: `a + (b − a)·t`, computed from `b` when `t >= 0.5`.
fn lerp(a: f64, b: f64, t: f64) -> f64 {
    let diff = b - a;
    if t >= 0.5 {
        b - diff * (1.0 - t)
    } else {
        a + diff * t
    }
}

/// Ascending distinct scores with the weight at each, and the value of the
/// `k`-th (0-based) record of the weight-repeated sorted predictions.
struct Ascending {
    scores: Vec<f64>,
    /// Cumulative weight up to and including each score.
    cumulative: Vec<f64>,
}

impl Ascending {
    fn of(table: &ScoreTable) -> Self {
        let mut total = 0.0;
        let (mut scores, mut cumulative) = (Vec::new(), Vec::new());
        for (s, p, n) in table.iter().collect::<Vec<_>>().into_iter().rev() {
            total += p + n;
            scores.push(s);
            cumulative.push(total);
        }
        Ascending { scores, cumulative }
    }

    fn total(&self) -> f64 {
        self.cumulative.last().copied().unwrap_or(0.0)
    }

    /// The value at 0-based rank `k` (clamped to the last).
    fn at(&self, k: f64) -> f64 {
        let i = self.cumulative.partition_point(|&c| c <= k);
        let i = i.min(self.scores.len().saturating_sub(1));
        self.scores.get(i).copied().unwrap_or(0.0)
    }

    /// `np.percentile(values, q * 100)` with the linear method.
    fn percentile(&self, q: f64) -> f64 {
        let q = (q * 100.0) / 100.0;
        let n = self.total();
        let virtual_index = (n - 1.0) * q;
        if virtual_index >= n - 1.0 {
            return self.at(n - 1.0);
        }
        if virtual_index < 0.0 {
            return self.at(0.0);
        }
        let previous = virtual_index.floor();
        let gamma = virtual_index - previous;
        lerp(self.at(previous), self.at(previous + 1.0), gamma)
    }
}

/// The `n_bins + 1` edges of `strategy`.
fn edges(table: &ScoreTable, n_bins: usize, strategy: BinStrategy) -> Vec<f64> {
    let quantiles = linspace01(n_bins);
    match strategy {
        BinStrategy::Uniform => quantiles,
        BinStrategy::Quantile => {
            let ascending = Ascending::of(table);
            quantiles.iter().map(|&q| ascending.percentile(q)).collect()
        }
    }
}

/// The calibration curve of `table` with `n_bins` (>= 1) bins. `None` when a
/// score is outside [0, 1] or the table is empty.
pub fn calibration(
    table: &ScoreTable,
    n_bins: usize,
    strategy: BinStrategy,
) -> Option<Calibration> {
    if !super::probability::is_probability(table) || n_bins == 0 {
        return None;
    }
    let edges = edges(table, n_bins, strategy);
    let inner = edges.get(1..n_bins).unwrap_or(&[]);
    let (mut weight, mut positive, mut predicted) =
        (vec![0.0; n_bins], vec![0.0; n_bins], vec![0.0; n_bins]);
    for (p, pos, neg) in table.iter() {
        let bin = inner.partition_point(|&e| e < p);
        if let (Some(w), Some(y), Some(s)) = (
            weight.get_mut(bin),
            positive.get_mut(bin),
            predicted.get_mut(bin),
        ) {
            *w += pos + neg;
            *y += pos;
            *s += p * (pos + neg);
        }
    }
    let mut curve = Calibration {
        prob_true: Vec::new(),
        prob_pred: Vec::new(),
        counts: Vec::new(),
        ece: 0.0,
        mce: 0.0,
        strategy,
        n_bins,
    };
    let total: f64 = weight.iter().sum();
    for ((&w, &y), &s) in weight.iter().zip(&positive).zip(&predicted) {
        if w > 0.0 {
            let (prob_true, prob_pred) = (y / w, s / w);
            let gap = (prob_true - prob_pred).abs();
            curve.ece += w / total * gap;
            curve.mce = curve.mce.max(gap);
            curve.prob_true.push(prob_true);
            curve.prob_pred.push(prob_pred);
            curve.counts.push(w);
        }
    }
    (total > 0.0).then_some(curve)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(scores: &[f64], labels: &[bool], w: Option<&[f64]>) -> ScoreTable {
        ScoreTable::from_records(scores, labels, w).unwrap()
    }

    #[test]
    fn a_score_on_an_inner_edge_falls_in_the_lower_bin() {
        let t = table(
            &[0.5, 0.25, 0.75, 1.0, 0.0],
            &[true, false, true, true, false],
            None,
        );
        let c = calibration(&t, 2, BinStrategy::Uniform).unwrap();
        // bin [0, 0.5]: 0.0, 0.25, 0.5; bin (0.5, 1]: 0.75, 1.0
        assert_eq!(c.counts, vec![3.0, 2.0]);
        assert_eq!(c.prob_true, vec![1.0 / 3.0, 1.0]);
        assert_eq!(c.prob_pred, vec![0.25, 0.875]);
        let ece = 0.6 * (1.0f64 / 3.0 - 0.25).abs() + 0.4 * 0.125;
        assert!((c.ece - ece).abs() < 1e-15);
        assert_eq!(c.mce, 0.125);
    }

    #[test]
    fn quantile_edges_are_numpys_percentiles() {
        // np.percentile([0.1, 0.2, 0.4, 0.8], [0, 50, 100]) = [0.1, 0.3, 0.8]
        let t = table(&[0.1, 0.2, 0.4, 0.8], &[true, false, true, false], None);
        assert_eq!(
            edges(&t, 2, BinStrategy::Quantile),
            vec![0.1, 0.30000000000000004, 0.8]
        );
        // integer weights act as repeated records
        let w = table(&[0.1, 0.4], &[true, true], Some(&[2.0, 2.0]));
        let r = table(&[0.1, 0.1, 0.4, 0.4], &[true; 4], None);
        assert_eq!(
            edges(&w, 3, BinStrategy::Quantile),
            edges(&r, 3, BinStrategy::Quantile)
        );
    }

    #[test]
    fn empty_bins_are_removed_and_out_of_range_is_undefined() {
        let t = table(&[0.05, 0.95], &[false, true], None);
        let c = calibration(&t, 10, BinStrategy::Uniform).unwrap();
        assert_eq!(c.counts, vec![1.0, 1.0]);
        assert!((c.ece - 0.05).abs() < 1e-15, "{}", c.ece);
        assert!(calibration(&table(&[1.2], &[true], None), 10, BinStrategy::Uniform).is_none());
    }
}
