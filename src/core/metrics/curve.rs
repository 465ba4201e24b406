//! The exact ROC curve, as `sklearn.metrics.roc_curve` (scikit-learn >= 1.6).

use super::table::ScoreTable;

/// An ROC curve: one point per kept threshold, first point `(0, 0)` at
/// threshold +infinity (`None`, which JSON cannot carry).
///
/// `fpr` is `None` when there is no negative weight and `tpr` when there is no
/// positive weight: the rate is 0/0 at every point (scikit-learn fills it with
/// NaN and warns).
#[derive(Debug, Clone, PartialEq)]
pub struct RocCurve {
    pub fpr: Option<Vec<f64>>,
    pub tpr: Option<Vec<f64>>,
    pub thresholds: Vec<Option<f64>>,
    /// Points removed by [`RocCurve::thin`] (not by `drop_intermediate`).
    pub points_dropped: usize,
}

impl RocCurve {
    /// Number of points.
    pub fn len(&self) -> usize {
        self.thresholds.len()
    }

    /// Never true: the curve always has its `(0, 0)` point.
    pub fn is_empty(&self) -> bool {
        self.thresholds.is_empty()
    }

    /// Keeps at most `max_points` points, evenly spaced by index, always keeping
    /// the first and the last; adds the removed count to `points_dropped`.
    /// `max_points` below 2 is treated as 2.
    pub fn thin(&mut self, max_points: usize) {
        let len = self.len();
        let max_points = max_points.max(2);
        if len <= max_points {
            return;
        }
        // i * (len - 1) / (max_points - 1) is strictly increasing in i because
        // len > max_points, so the picked indices are distinct.
        let picked: Vec<usize> = (0..max_points)
            .map(|i| i * (len - 1) / (max_points - 1))
            .collect();
        let pick_f = |v: &Vec<f64>| picked.iter().filter_map(|&i| v.get(i).copied()).collect();
        self.fpr = self.fpr.as_ref().map(pick_f);
        self.tpr = self.tpr.as_ref().map(pick_f);
        self.thresholds = picked
            .iter()
            .filter_map(|&i| self.thresholds.get(i).copied())
            .collect();
        self.points_dropped += len - max_points;
    }
}

/// Cumulative false-positive and true-positive weight at each distinct score,
/// highest score first (scikit-learn's `fps`, `tps`).
fn cumulative_counts(table: &ScoreTable) -> (Vec<f64>, Vec<f64>) {
    let mut fps = Vec::with_capacity(table.len());
    let mut tps = Vec::with_capacity(table.len());
    let (mut fp, mut tp) = (0.0, 0.0);
    for (_, pos, neg) in table.iter() {
        tp += pos;
        fp += neg;
        fps.push(fp);
        tps.push(tp);
    }
    (fps, tps)
}

/// Indices scikit-learn keeps with `drop_intermediate=True`: when there are
/// more than 2 thresholds, keep the first, the last and every point where the
/// second difference `np.diff(fps, 2)` or `np.diff(tps, 2)` is non-zero, i.e.
/// where the curve has a corner. Collinear points in between never change the
/// plotted curve or its area. The difference is computed exactly as numpy
/// does, `(x[i+1] - x[i]) - (x[i] - x[i-1])`, and compared with 0 exactly.
fn corner_indices(fps: &[f64], tps: &[f64]) -> Vec<usize> {
    let n = fps.len();
    if n <= 2 {
        return (0..n).collect();
    }
    let second_diff_nonzero = |x: &[f64], i: usize| (x[i + 1] - x[i]) - (x[i] - x[i - 1]) != 0.0;
    let mut keep = Vec::with_capacity(n);
    keep.push(0);
    keep.extend((1..n - 1).filter(|&i| second_diff_nonzero(fps, i) || second_diff_nonzero(tps, i)));
    keep.push(n - 1);
    keep
}

/// The ROC curve of `table`.
///
/// One point per distinct score (ties form one step), descending, preceded by
/// `(0, 0)` at threshold +infinity; `fpr = fps / fps_last`, `tpr = tps /
/// tps_last`. With `drop_intermediate`, collinear points are removed exactly
/// as scikit-learn's `roc_curve` does (see [`corner_indices`]). An empty table
/// gives the single point `(0, 0)` with both rates undefined.
pub fn roc_curve(table: &ScoreTable, drop_intermediate: bool) -> RocCurve {
    let (fps, tps) = cumulative_counts(table);
    let kept: Vec<usize> = if drop_intermediate {
        corner_indices(&fps, &tps)
    } else {
        (0..fps.len()).collect()
    };
    let total_neg = fps.last().copied().unwrap_or(0.0);
    let total_pos = tps.last().copied().unwrap_or(0.0);
    let rate = |counts: &[f64], total: f64| -> Option<Vec<f64>> {
        (total > 0.0).then(|| {
            std::iter::once(0.0)
                .chain(kept.iter().map(|&i| counts[i] / total))
                .collect()
        })
    };
    let scores = table.scores();
    RocCurve {
        fpr: rate(&fps, total_neg),
        tpr: rate(&tps, total_pos),
        thresholds: std::iter::once(None)
            .chain(kept.iter().map(|&i| scores.get(i).copied()))
            .collect(),
        points_dropped: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_scikit_learn_docstring_example() {
        // sklearn roc_curve([1, 1, 2, 2], [0.1, 0.4, 0.35, 0.8], pos_label=2)
        let t = ScoreTable::from_records(&[0.1, 0.4, 0.35, 0.8], &[false, false, true, true], None)
            .unwrap();
        let roc = roc_curve(&t, true);
        assert_eq!(roc.fpr.unwrap(), vec![0.0, 0.0, 0.5, 0.5, 1.0]);
        assert_eq!(roc.tpr.unwrap(), vec![0.0, 0.5, 0.5, 1.0, 1.0]);
        assert_eq!(
            roc.thresholds,
            vec![None, Some(0.8), Some(0.4), Some(0.35), Some(0.1)]
        );
    }

    #[test]
    fn drop_intermediate_removes_collinear_points_only() {
        // labels by descending score: 1 1 1 0 0: tps 1 2 3 3 3, fps 0 0 0 1 2
        let t = ScoreTable::from_records(
            &[0.9, 0.8, 0.7, 0.6, 0.5],
            &[true, true, true, false, false],
            None,
        )
        .unwrap();
        let full = roc_curve(&t, false);
        assert_eq!(full.len(), 6);
        let dropped = roc_curve(&t, true);
        assert_eq!(
            dropped.thresholds,
            vec![None, Some(0.9), Some(0.7), Some(0.5)]
        );
        assert_eq!(dropped.tpr.unwrap(), vec![0.0, 1.0 / 3.0, 1.0, 1.0]);
    }

    #[test]
    fn one_class_leaves_the_other_rate_undefined() {
        let t = ScoreTable::from_records(&[0.9, 0.1], &[true, true], None).unwrap();
        let roc = roc_curve(&t, true);
        assert!(roc.fpr.is_none());
        assert_eq!(roc.tpr.unwrap(), vec![0.0, 0.5, 1.0]);
    }

    #[test]
    fn thinning_keeps_first_and_last() {
        let scores: Vec<f64> = (0..100).map(f64::from).collect();
        let labels: Vec<bool> = (0..100).map(|i| i % 2 == 0).collect();
        let t = ScoreTable::from_records(&scores, &labels, None).unwrap();
        let mut roc = roc_curve(&t, false);
        assert_eq!(roc.len(), 101);
        roc.thin(10);
        assert_eq!(roc.len(), 10);
        assert_eq!(roc.points_dropped, 91);
        assert_eq!(roc.thresholds[0], None);
        assert_eq!(roc.thresholds[9], Some(0.0));
        assert_eq!(roc.fpr.as_ref().unwrap()[9], 1.0);
    }
}
