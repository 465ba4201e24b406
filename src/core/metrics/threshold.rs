//! Decisions at many thresholds, read off the one [`ScoreTable`]: confusion
//! counts at requested thresholds, the best threshold by F-beta and by
//! Youden's J, TPR at a fixed FPR, and the partial AUC.

use super::confusion::{f_beta, Confusion};
use super::curve::roc_curve;
use super::table::ScoreTable;

/// Confusion counts and rates at one requested threshold.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ThresholdRow {
    pub threshold: f64,
    pub confusion: Confusion,
    pub precision: Option<f64>,
    pub recall: Option<f64>,
    pub f_beta: Option<f64>,
    pub fpr: Option<f64>,
    pub specificity: Option<f64>,
}

/// Prefix sums of the table's weights, so each threshold costs a binary
/// search. `pos[k]`, `neg[k]`: weight of the `k` highest distinct scores,
/// summed from the top, as [`Confusion::at_threshold`] sums them; the
/// complements are summed from the bottom.
struct Prefix {
    pos: Vec<f64>,
    neg: Vec<f64>,
    pos_below: Vec<f64>,
    neg_below: Vec<f64>,
}

impl Prefix {
    fn of(table: &ScoreTable) -> Self {
        let running = |w: &[f64], rev: bool| -> Vec<f64> {
            let mut out = Vec::with_capacity(w.len() + 1);
            let mut sum = 0.0;
            out.push(0.0);
            let items: Box<dyn Iterator<Item = &f64>> = if rev {
                Box::new(w.iter().rev())
            } else {
                Box::new(w.iter())
            };
            for x in items {
                sum += x;
                out.push(sum);
            }
            if rev {
                out.reverse();
            }
            out
        };
        Prefix {
            pos: running(table.pos_weights(), false),
            neg: running(table.neg_weights(), false),
            pos_below: running(table.pos_weights(), true),
            neg_below: running(table.neg_weights(), true),
        }
    }

    /// Counts when the `above` highest distinct scores are predicted positive.
    fn confusion(&self, above: usize) -> Confusion {
        let at = |v: &[f64]| v.get(above).copied().unwrap_or(0.0);
        Confusion {
            tp: at(&self.pos),
            fp: at(&self.neg),
            fn_: at(&self.pos_below),
            tn: at(&self.neg_below),
        }
    }
}

/// One row per threshold, in the given order; a record is predicted
/// positive iff `score >= threshold` (as the main `threshold`).
pub fn at_thresholds(table: &ScoreTable, thresholds: &[f64], beta: f64) -> Vec<ThresholdRow> {
    if thresholds.is_empty() {
        return Vec::new();
    }
    let prefix = Prefix::of(table);
    thresholds
        .iter()
        .map(|&threshold| {
            let above = table.scores().partition_point(|&s| s >= threshold);
            let c = prefix.confusion(above);
            ThresholdRow {
                threshold,
                confusion: c,
                precision: c.precision(),
                recall: c.recall(),
                f_beta: c.f_beta(beta),
                fpr: c.fpr(),
                specificity: c.specificity(),
            }
        })
        .collect()
}

/// A maximizing threshold and the maximum.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Best {
    pub threshold: f64,
    pub value: f64,
}

/// The best thresholds by F-beta and by Youden's J = TPR − FPR.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct BestThreshold {
    /// `None` for an empty table.
    pub f_beta: Option<Best>,
    /// `None` unless both classes have weight.
    pub youden_j: Option<Best>,
}

/// Values within this relative distance of the maximum are equal maxima, so
/// a tie in exact arithmetic is not broken by rounding.
const TIE: f64 = 1e-12;

/// The largest threshold whose value is within [`TIE`] (relative) of the
/// maximum; `candidates` come highest threshold first.
fn best_of(candidates: &[(f64, f64)]) -> Option<Best> {
    let max = candidates
        .iter()
        .map(|&(_, v)| v)
        .fold(f64::NEG_INFINITY, f64::max);
    let floor = max - TIE * max.abs();
    candidates
        .iter()
        .find(|&&(_, v)| v >= floor)
        .map(|&(threshold, value)| Best { threshold, value })
}

/// Every distinct score as a threshold (scikit-learn's cumulative sums),
/// highest first: F-beta from tp, fp, fn, and TPR − FPR.
pub fn best_threshold(table: &ScoreTable, beta: f64) -> BestThreshold {
    let (total_neg, total_pos) = table.cumulative().last().unwrap_or((0.0, 0.0));
    let mut by_f = Vec::with_capacity(table.len());
    let mut by_j = Vec::with_capacity(table.len());
    for (&s, (fps, tps)) in table.scores().iter().zip(table.cumulative()) {
        if let Some(f) = f_beta(tps, fps, total_pos - tps, beta) {
            by_f.push((s, f));
        }
        if total_pos > 0.0 && total_neg > 0.0 {
            by_j.push((s, tps / total_pos - fps / total_neg));
        }
    }
    BestThreshold {
        f_beta: best_of(&by_f),
        youden_j: best_of(&by_j),
    }
}

/// TPR at a maximum FPR.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TprAtFpr {
    /// The requested maximum FPR.
    pub fpr: f64,
    pub tpr: f64,
    /// Threshold of the first curve point reaching `tpr`; `None` for the
    /// `(0, 0)` point (+infinity).
    pub threshold: Option<f64>,
}

/// For each `x`, the largest TPR among the exact ROC points (every distinct
/// score, no interpolation) with FPR <= x. `None` unless both classes have
/// weight.
pub fn tpr_at_fpr(table: &ScoreTable, targets: &[f64]) -> Option<Vec<TprAtFpr>> {
    let (total_neg, total_pos) = table.cumulative().last()?;
    if !(total_pos > 0.0 && total_neg > 0.0) {
        return None;
    }
    // Point 0 is (0, 0) at +infinity, then one per distinct score; both
    // rates are non-decreasing along the curve.
    let mut fpr = vec![0.0];
    let mut tpr = vec![0.0];
    for (fps, tps) in table.cumulative() {
        fpr.push(fps / total_neg);
        tpr.push(tps / total_pos);
    }
    let rows = targets
        .iter()
        .map(|&x| {
            let last = fpr.partition_point(|&f| f <= x).saturating_sub(1);
            let best = tpr.get(last).copied().unwrap_or(0.0);
            let first = tpr.partition_point(|&t| t < best);
            TprAtFpr {
                fpr: x,
                tpr: best,
                threshold: first
                    .checked_sub(1)
                    .and_then(|i| table.scores().get(i).copied()),
            }
        })
        .collect();
    Some(rows)
}

/// `roc_auc_score(max_fpr=...)`: the area under the ROC curve up to
/// `max_fpr` (linear interpolation at `max_fpr`), standardized as McClish
/// (1989) so that 0.5 is chance and 1 is perfect: `(1 + (A − m²/2) / (m −
/// m²/2)) / 2`. `max_fpr` = 1 gives the plain AUC, as scikit-learn.
/// `max_fpr` must be in (0, 1]; `None` unless both classes have weight.
pub fn partial_auc(table: &ScoreTable, max_fpr: f64) -> Option<f64> {
    let roc = roc_curve(table, true);
    let (fpr, tpr) = (roc.fpr?, roc.tpr?);
    let trapezoid = |x: &[f64], y: &[f64]| -> f64 {
        x.windows(2)
            .zip(y.windows(2))
            .map(|(dx, dy)| (dx[1] - dx[0]) * (dy[1] + dy[0]) / 2.0)
            .sum()
    };
    if max_fpr >= 1.0 {
        return Some(trapezoid(&fpr, &tpr));
    }
    let stop = fpr.partition_point(|&f| f <= max_fpr);
    let (x0, x1) = (fpr.get(stop.checked_sub(1)?)?, fpr.get(stop)?);
    let (y0, y1) = (tpr.get(stop - 1)?, tpr.get(stop)?);
    let y = (y1 - y0) / (x1 - x0) * (max_fpr - x0) + y0;
    let mut xs: Vec<f64> = fpr.get(..stop)?.to_vec();
    let mut ys: Vec<f64> = tpr.get(..stop)?.to_vec();
    xs.push(max_fpr);
    ys.push(y);
    let area = trapezoid(&xs, &ys);
    let min_area = 0.5 * max_fpr * max_fpr;
    Some(0.5 * (1.0 + (area - min_area) / (max_fpr - min_area)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(scores: &[f64], labels: &[bool]) -> ScoreTable {
        ScoreTable::from_records(scores, labels, None).unwrap()
    }

    #[test]
    fn rows_equal_the_confusion_at_each_threshold() {
        let t = table(
            &[0.9, 0.8, 0.7, 0.6, 0.4, 0.3],
            &[true, true, false, false, true, false],
        );
        for row in at_thresholds(&t, &[0.0, 0.3, 0.65, 0.8, 2.0], 2.0) {
            let c = Confusion::at_threshold(&t, row.threshold);
            assert_eq!(row.confusion, c);
            assert_eq!(row.f_beta, c.f_beta(2.0));
        }
    }

    #[test]
    fn best_threshold_prefers_the_largest_of_equal_maxima() {
        // thresholds 0.9, 0.8, 0.7, 0.6: J = 0.5, 0.0, 0.5, 0
        let t = table(&[0.9, 0.8, 0.7, 0.6], &[true, false, true, false]);
        let best = best_threshold(&t, 1.0);
        assert_eq!(
            best.youden_j,
            Some(Best {
                threshold: 0.9,
                value: 0.5
            })
        );
        // F1: 2/3, 1/2, 4/5, 2/3
        assert_eq!(best.f_beta.map(|b| b.threshold), Some(0.7));
    }

    #[test]
    fn tpr_at_fpr_takes_the_exact_points() {
        let t = table(&[0.9, 0.8, 0.7, 0.6], &[true, false, true, false]);
        let rows = tpr_at_fpr(&t, &[0.0, 0.49, 0.5, 1.0]).unwrap();
        let got: Vec<(f64, Option<f64>)> = rows.iter().map(|r| (r.tpr, r.threshold)).collect();
        assert_eq!(
            got,
            vec![
                (0.5, Some(0.9)),
                (0.5, Some(0.9)),
                (1.0, Some(0.7)),
                (1.0, Some(0.7))
            ]
        );
        let none = table(&[0.9, 0.8], &[false, true]);
        assert_eq!(tpr_at_fpr(&none, &[0.0]).unwrap()[0].threshold, None);
    }

    #[test]
    fn partial_auc_of_a_perfect_and_a_full_curve() {
        let t = table(&[0.9, 0.8, 0.2, 0.1], &[true, true, false, false]);
        assert_eq!(partial_auc(&t, 0.5), Some(1.0));
        assert_eq!(partial_auc(&t, 1.0), Some(1.0));
        assert_eq!(partial_auc(&table(&[0.1], &[true]), 0.5), None);
    }
}
