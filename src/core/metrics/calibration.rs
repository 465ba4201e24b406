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
        let (mut ascending, mut cumulative) = (
            Vec::with_capacity(table.len()),
            Vec::with_capacity(table.len()),
        );
        let (scores, pos, neg) = (table.scores(), table.pos_weights(), table.neg_weights());
        for ((&s, &p), &n) in scores.iter().zip(pos).zip(neg).rev() {
            total += p + n;
            ascending.push(s);
            cumulative.push(total);
        }
        Ascending {
            scores: ascending,
            cumulative,
        }
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

/// The `n_bins + 1` bin edges, computed on demand: a request may ask for
/// any number of bins, and only the non-empty ones (at most one per distinct
/// score) are ever stored.
struct Edges {
    n_bins: usize,
    /// numpy's `linspace(0, 1, n + 1)` step: edge `i` is `i · (1 / n)`, the
    /// last is 1.
    step: f64,
    /// The sorted predictions, for quantile edges.
    quantile: Option<Ascending>,
}

impl Edges {
    fn new(table: &ScoreTable, n_bins: usize, strategy: BinStrategy) -> Self {
        Edges {
            n_bins,
            step: 1.0 / n_bins as f64,
            quantile: (strategy == BinStrategy::Quantile).then(|| Ascending::of(table)),
        }
    }

    /// Edge `i` in `0..=n_bins`.
    fn edge(&self, i: usize) -> f64 {
        let q = if i >= self.n_bins {
            1.0
        } else {
            i as f64 * self.step
        };
        match &self.quantile {
            Some(ascending) => ascending.percentile(q),
            None => q,
        }
    }

    /// `np.searchsorted(edges[1:-1], p)`: the number of inner edges below
    /// `p`, by binary search over the edge indices `1..n_bins`.
    fn bin_of(&self, p: f64) -> usize {
        self.bin_below(p, self.n_bins)
    }

    /// [`Edges::bin_of`] when `p` is known to be in a bin below `limit`
    /// (`edge(limit) >= p`): the search is over the indices `1..limit`.
    fn bin_below(&self, p: f64, limit: usize) -> usize {
        let (mut lo, mut hi) = (1, limit);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if self.edge(mid) < p {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo - 1
    }
}

/// [`Edges::bin_of`] for scores read in descending order: the bins come in
/// non-increasing order, so a score is first tried against the lower edge
/// of the previous score's bin (one comparison, the edge kept), and only a
/// score below it searches the lower bins. The same bins as a search per
/// score, as the edges are non-decreasing (numpy's percentiles are
/// monotonic, and so are the uniform edges).
struct DescendingBins<'a> {
    edges: &'a Edges,
    /// The previous score's bin and its lower edge (`-inf` for bin 0).
    current: Option<(usize, f64)>,
}

impl DescendingBins<'_> {
    fn bin_of(&mut self, p: f64) -> usize {
        let bin = match self.current {
            Some((bin, lower)) if lower < p => return bin,
            Some((bin, _)) => self.edges.bin_below(p, bin),
            None => self.edges.bin_of(p),
        };
        let lower = if bin == 0 {
            f64::NEG_INFINITY
        } else {
            self.edges.edge(bin)
        };
        self.current = Some((bin, lower));
        bin
    }
}

/// Summed weight, positive weight and weight · prediction of one bin.
#[derive(Debug, Clone, Copy)]
struct BinSums {
    bin: usize,
    weight: f64,
    positive: f64,
    predicted: f64,
}

/// The calibration curve of `table` with `n_bins` (>= 1) bins. `None` when a
/// score is outside [0, 1] or the table is empty.
pub fn calibration(
    table: &ScoreTable,
    n_bins: usize,
    strategy: BinStrategy,
) -> Option<Calibration> {
    let mut pass = CalibrationPass::new(table, n_bins, strategy)?;
    for (p, pos, neg) in table.iter() {
        pass.add(p, pos, neg);
    }
    pass.finish()
}

/// [`calibration`] one distinct score at a time, highest first, so a pass
/// that reads the table for other metrics too fills the bins in the same
/// order (the same bits).
pub(crate) struct CalibrationPass {
    edges: Edges,
    /// The previous score's bin and its lower edge (see [`DescendingBins`]).
    current: Option<(usize, f64)>,
    /// Scores come highest first, so bins come in non-increasing order.
    bins: Vec<BinSums>,
    strategy: BinStrategy,
    n_bins: usize,
}

impl CalibrationPass {
    /// `None` when a score is outside [0, 1], the table is empty or
    /// `n_bins` is 0 (no curve).
    pub(crate) fn new(table: &ScoreTable, n_bins: usize, strategy: BinStrategy) -> Option<Self> {
        if !super::probability::is_probability(table) || n_bins == 0 {
            return None;
        }
        Some(CalibrationPass {
            edges: Edges::new(table, n_bins, strategy),
            current: None,
            bins: Vec::new(),
            strategy,
            n_bins,
        })
    }

    /// Adds the next distinct score (descending) with its weights.
    #[inline(always)]
    pub(crate) fn add(&mut self, p: f64, pos: f64, neg: f64) {
        let mut descending = DescendingBins {
            edges: &self.edges,
            current: self.current,
        };
        let bin = descending.bin_of(p);
        self.current = descending.current;
        match self.bins.last_mut() {
            Some(last) if last.bin == bin => {
                last.weight += pos + neg;
                last.positive += pos;
                last.predicted += p * (pos + neg);
            }
            _ => self.bins.push(BinSums {
                bin,
                weight: pos + neg,
                positive: pos,
                predicted: p * (pos + neg),
            }),
        }
    }

    /// The curve of the scores added.
    pub(crate) fn finish(self) -> Option<Calibration> {
        let CalibrationPass {
            mut bins,
            strategy,
            n_bins,
            ..
        } = self;
        bins.reverse();
        let mut curve = Calibration {
            prob_true: Vec::with_capacity(bins.len()),
            prob_pred: Vec::with_capacity(bins.len()),
            counts: Vec::with_capacity(bins.len()),
            ece: 0.0,
            mce: 0.0,
            strategy,
            n_bins,
        };
        let total: f64 = bins.iter().map(|b| b.weight).sum();
        for b in bins.iter().filter(|b| b.weight > 0.0) {
            let (prob_true, prob_pred) = (b.positive / b.weight, b.predicted / b.weight);
            let gap = (prob_true - prob_pred).abs();
            curve.ece += b.weight / total * gap;
            curve.mce = curve.mce.max(gap);
            curve.prob_true.push(prob_true);
            curve.prob_pred.push(prob_pred);
            curve.counts.push(b.weight);
        }
        (total > 0.0).then_some(curve)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn edges(table: &ScoreTable, n_bins: usize, strategy: BinStrategy) -> Vec<f64> {
        let e = Edges::new(table, n_bins, strategy);
        (0..=n_bins).map(|i| e.edge(i)).collect()
    }

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
    fn the_descending_walk_finds_each_scores_bin() {
        let scores: Vec<f64> = (0..500)
            .map(|i| f64::from((i * 7919) % 1009) / 1008.0)
            .collect();
        let labels: Vec<bool> = (0..500).map(|i| i % 3 == 0).collect();
        let t = table(&scores, &labels, None);
        for strategy in [BinStrategy::Uniform, BinStrategy::Quantile] {
            for n_bins in [1, 2, 3, 10, 64, 1000, 5000] {
                let edges = Edges::new(&t, n_bins, strategy);
                let mut walk = DescendingBins {
                    edges: &edges,
                    current: None,
                };
                for &p in t.scores() {
                    assert_eq!(walk.bin_of(p), edges.bin_of(p), "{strategy:?} {n_bins} {p}");
                }
            }
        }
    }

    #[test]
    fn empty_bins_are_removed_and_out_of_range_is_undefined() {
        let t = table(&[0.05, 0.95], &[false, true], None);
        let c = calibration(&t, 10, BinStrategy::Uniform).unwrap();
        assert_eq!(c.counts, vec![1.0, 1.0]);
        assert!((c.ece - 0.05).abs() < 1e-15, "{}", c.ece);
        assert!(calibration(&table(&[1.2], &[true], None), 10, BinStrategy::Uniform).is_none());
        // a huge bin count stores only the non-empty bins
        let c = calibration(&t, usize::MAX / 2, BinStrategy::Quantile).unwrap();
        assert_eq!(c.counts, vec![1.0, 1.0]);
    }
}
