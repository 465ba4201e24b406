//! Precision, recall and F-beta at every threshold: the data of a
//! "metrics against the threshold" chart.
//!
//! Each distinct score of a [`ScoreTable`] is a threshold (predict positive
//! iff `score >= threshold`), so the confusion counts at it are the
//! cumulative weights after that score: `tp = tps`, `fp = fps`,
//! `fn = tps_last - tps`, as scikit-learn's `precision_recall_curve` derives
//! them. The rates are the ones [`super::confusion`] defines, so a point
//! equals the `precision`/`recall`/`f_beta` a request with that threshold
//! gets.

use super::confusion::{f_beta, precision, recall};
use super::curve::thinned_indices;
use super::table::ScoreTable;

/// The rates at each kept threshold, thresholds descending. A rate is `None`
/// where it is undefined (no predicted positive for precision, no positive
/// for recall).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ThresholdCurve {
    pub thresholds: Vec<f64>,
    pub precision: Vec<Option<f64>>,
    pub recall: Vec<Option<f64>>,
    pub f_beta: Vec<Option<f64>>,
    pub beta: f64,
}

/// The rates at every distinct score of `table`, thinned to at most
/// `max_points` thresholds evenly spaced by index (first and last kept, as
/// the ROC curve is thinned). `O(distinct scores)`. `beta` must be finite
/// and > 0 (checked where it enters, `BinaryParams::check`).
pub fn threshold_curve(table: &ScoreTable, beta: f64, max_points: Option<usize>) -> ThresholdCurve {
    let cumulative: Vec<(f64, f64)> = table.cumulative().collect();
    let total_pos = cumulative.last().map_or(0.0, |&(_, tps)| tps);
    let mut curve = ThresholdCurve {
        beta,
        ..ThresholdCurve::default()
    };
    for i in thinned_indices(cumulative.len(), max_points) {
        let (Some(&threshold), Some(&(fp, tp))) = (table.scores().get(i), cumulative.get(i)) else {
            continue;
        };
        let fn_ = total_pos - tp;
        curve.thresholds.push(threshold);
        curve.precision.push(precision(tp, fp));
        curve.recall.push(recall(tp, fn_));
        curve.f_beta.push(f_beta(tp, fp, fn_, beta));
    }
    curve
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::metrics::Confusion;

    #[test]
    fn each_point_equals_the_confusion_rates_at_its_threshold() {
        let scores = [0.9, 0.8, 0.7, 0.6, 0.4, 0.3, 0.3];
        let labels = [true, true, false, false, true, false, true];
        let table = ScoreTable::from_records(&scores, &labels, None).unwrap();
        let curve = threshold_curve(&table, 2.0, None);
        assert_eq!(curve.thresholds, vec![0.9, 0.8, 0.7, 0.6, 0.4, 0.3]);
        for (i, &t) in curve.thresholds.iter().enumerate() {
            let c = Confusion::at_threshold(&table, t);
            assert_eq!(curve.precision[i], c.precision(), "precision at {t}");
            assert_eq!(curve.recall[i], c.recall(), "recall at {t}");
            assert_eq!(curve.f_beta[i], c.f_beta(2.0), "f_beta at {t}");
        }
    }

    #[test]
    fn thinning_keeps_the_highest_and_lowest_threshold() {
        let scores: Vec<f64> = (0..100).map(f64::from).collect();
        let labels: Vec<bool> = (0..100).map(|i| i % 3 == 0).collect();
        let table = ScoreTable::from_records(&scores, &labels, None).unwrap();
        let curve = threshold_curve(&table, 1.0, Some(10));
        assert_eq!(curve.thresholds.len(), 10);
        assert_eq!(curve.thresholds.first(), Some(&99.0));
        assert_eq!(curve.thresholds.last(), Some(&0.0));
        assert_eq!(curve.recall.last(), Some(&Some(1.0)));
    }

    #[test]
    fn without_positives_recall_is_undefined_and_precision_zero() {
        let table = ScoreTable::from_records(&[0.2, 0.1], &[false, false], None).unwrap();
        let curve = threshold_curve(&table, 1.0, None);
        assert_eq!(curve.recall, vec![None, None]);
        assert_eq!(curve.precision, vec![Some(0.0), Some(0.0)]);
        assert_eq!(curve.f_beta, vec![Some(0.0), Some(0.0)]);
        assert_eq!(
            threshold_curve(&ScoreTable::default(), 1.0, None),
            ThresholdCurve {
                beta: 1.0,
                ..ThresholdCurve::default()
            }
        );
    }
}
