//! Decisions at many thresholds, read off the one [`ScoreTable`]: confusion
//! counts at requested thresholds, the best threshold by F-beta and by
//! Youden's J, TPR at a fixed FPR, and the partial AUC.

use super::confusion::{f_beta, Confusion};
use super::curve::kept_points_iter;
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

impl ThresholdRow {
    /// The row of `confusion` at `threshold`, its rates derived from it.
    pub fn of(threshold: f64, confusion: Confusion, beta: f64) -> ThresholdRow {
        ThresholdRow {
            threshold,
            confusion,
            precision: confusion.precision(),
            recall: confusion.recall(),
            f_beta: confusion.f_beta(beta),
            fpr: confusion.fpr(),
            specificity: confusion.specificity(),
        }
    }
}

/// One row per threshold, in the given order; a record is predicted
/// positive iff `score >= threshold` (as the main `threshold`).
///
/// Each threshold's cut (the number of distinct scores at or above it) is a
/// binary search; the counts at the cuts come from one walk down the table
/// (tp, fp: summed from the top, as [`Confusion::at_threshold`] sums them)
/// and one walk up (fn, tn: summed from the bottom), stopping at each cut
/// in turn, so 10,000 thresholds cost two passes, not 10,000.
pub fn at_thresholds(table: &ScoreTable, thresholds: &[f64], beta: f64) -> Vec<ThresholdRow> {
    if thresholds.is_empty() {
        return Vec::new();
    }
    let scores = table.scores();
    let cut_of: Vec<usize> = thresholds
        .iter()
        .map(|&t| scores.partition_point(|&s| s >= t))
        .collect();
    let mut cuts = cut_of.clone();
    cuts.sort_unstable();
    cuts.dedup();
    let (pos, neg) = (table.pos_weights(), table.neg_weights());
    // above[c] = (tp, fp) and below[c] = (fn, tn) at cuts[c].
    let mut above = Vec::with_capacity(cuts.len());
    let (mut i, mut tp, mut fp) = (0, 0.0, 0.0);
    for &cut in &cuts {
        while i < cut {
            tp += pos.get(i).copied().unwrap_or(0.0);
            fp += neg.get(i).copied().unwrap_or(0.0);
            i += 1;
        }
        above.push((tp, fp));
    }
    let mut below = vec![(0.0, 0.0); cuts.len()];
    let (mut i, mut fn_, mut tn) = (scores.len(), 0.0, 0.0);
    for (&cut, slot) in cuts.iter().zip(below.iter_mut()).rev() {
        while i > cut {
            i -= 1;
            fn_ += pos.get(i).copied().unwrap_or(0.0);
            tn += neg.get(i).copied().unwrap_or(0.0);
        }
        *slot = (fn_, tn);
    }
    thresholds
        .iter()
        .zip(&cut_of)
        .map(|(&threshold, cut)| {
            let c = cuts.binary_search(cut).unwrap_or(0);
            let (tp, fp) = above.get(c).copied().unwrap_or((0.0, 0.0));
            let (fn_, tn) = below.get(c).copied().unwrap_or((0.0, 0.0));
            ThresholdRow::of(threshold, Confusion { tp, fp, tn, fn_ }, beta)
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

/// Every distinct score as a threshold (scikit-learn's cumulative sums),
/// highest first: F-beta from tp, fp, fn, and TPR − FPR. Of equal maxima
/// (within [`TIE`], relative) the largest threshold wins.
///
/// One pass over the table, both criteria at once (see [`Leader`]): the
/// answer is the first point whose value reaches the maximum less [`TIE`],
/// found without a second walk down a million-score table.
pub fn best_threshold(table: &ScoreTable, beta: f64) -> BestThreshold {
    let (total_neg, total_pos) = table.cumulative_totals();
    let mut pass = BestThresholdPass::new(total_neg, total_pos, beta);
    // Inlined into the loop: called once per distinct score, a call frame
    // with the captures reloaded cost ~20 instructions a point.
    table.each_cumulative(
        #[inline(always)]
        |threshold, fps, tps| pass.add(threshold, fps, tps),
    );
    pass.finish()
}

/// [`best_threshold`] one point at a time, highest threshold first, so a
/// pass that reads the cumulative sums for other metrics too can offer
/// them here (the same points in the same order: the same answer).
#[derive(Debug)]
pub(crate) struct BestThresholdPass {
    total_pos: f64,
    total_neg: f64,
    beta: f64,
    youden: bool,
    f_lead: Leader,
    j_lead: Leader,
}

impl BestThresholdPass {
    /// `total_neg` and `total_pos` are the table's
    /// [`ScoreTable::cumulative_totals`].
    pub(crate) fn new(total_neg: f64, total_pos: f64, beta: f64) -> Self {
        BestThresholdPass {
            total_pos,
            total_neg,
            beta,
            youden: total_pos > 0.0 && total_neg > 0.0,
            f_lead: Leader::default(),
            j_lead: Leader::default(),
        }
    }

    /// Offers the next point: its threshold and cumulative sums.
    #[inline(always)]
    pub(crate) fn add(&mut self, threshold: f64, fps: f64, tps: f64) {
        if let Some(value) = f_beta(tps, fps, self.total_pos - tps, self.beta) {
            self.f_lead.offer(threshold, value);
        }
        if self.youden {
            self.j_lead
                .offer(threshold, tps / self.total_pos - fps / self.total_neg);
        }
    }

    pub(crate) fn finish(self) -> BestThreshold {
        BestThreshold {
            f_beta: self.f_lead.best(),
            youden_j: self.j_lead.best(),
        }
    }
}

/// The first point reaching the maximum less [`TIE`], in one pass.
///
/// That point beats every point before it (they are all below the floor,
/// it is not), so it is one of the running maxima. `records[head..]` keeps
/// the running maxima (strictly increasing) that still reach the floor of
/// the maximum so far; the floor only rises, so a record below it never
/// comes back, and `records[head]` is the answer. Only values within
/// [`TIE`] of each other stay (a handful), so the pass costs one comparison
/// a point. A plain `Vec` and a head index, not a `VecDeque`: a new
/// maximum usually leaves every earlier record below its floor, and then
/// the vector is simply cleared (the deque's ring arithmetic cost ~24
/// instructions a point at a million distinct scores).
#[derive(Debug)]
struct Leader {
    records: Vec<Best>,
    head: usize,
    top: f64,
}

impl Default for Leader {
    fn default() -> Self {
        Leader {
            records: Vec::new(),
            head: 0,
            top: f64::NEG_INFINITY,
        }
    }
}

impl Leader {
    #[inline]
    fn offer(&mut self, threshold: f64, value: f64) {
        let new_top = value > self.top || (self.head == self.records.len() && !value.is_nan());
        if !new_top {
            return;
        }
        self.top = value;
        let floor = value - TIE * value.abs();
        // The records increase, so the last below the floor means all are.
        if self.records.last().is_some_and(|b| b.value < floor) {
            self.records.clear();
            self.head = 0;
        }
        while self.records.get(self.head).is_some_and(|b| b.value < floor) {
            self.head += 1;
        }
        self.records.push(Best { threshold, value });
    }

    fn best(&self) -> Option<Best> {
        self.records.get(self.head).copied()
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
///
/// One walk along the curve with the targets in ascending order, which
/// stops at the largest target: both rates are non-decreasing along the
/// curve, so the last point with FPR <= x has the largest TPR, and the first
/// point reaching that TPR starts the run of points sharing it.
pub fn tpr_at_fpr(table: &ScoreTable, targets: &[f64]) -> Option<Vec<TprAtFpr>> {
    let (total_neg, total_pos) = table.cumulative_totals();
    if !(total_pos > 0.0 && total_neg > 0.0) {
        return None;
    }
    let mut order: Vec<usize> = (0..targets.len()).collect();
    order.sort_unstable_by(|&a, &b| targets[a].total_cmp(&targets[b]));
    // Point 0 is (0, 0) at +infinity, point i >= 1 the (i − 1)-th distinct
    // score. `run_start`: the first point whose TPR equals the current one.
    let mut points = table
        .cumulative()
        .map(|(fps, tps)| (fps / total_neg, tps / total_pos))
        .peekable();
    let (mut at, mut tpr, mut run_start) = (0usize, 0.0, 0usize);
    let mut rows = vec![None; targets.len()];
    for k in order {
        let x = targets.get(k).copied().unwrap_or(0.0);
        while let Some((_, next_tpr)) = points.next_if(|&(next_fpr, _)| next_fpr <= x) {
            at += 1;
            if next_tpr != tpr {
                run_start = at;
            }
            tpr = next_tpr;
        }
        if let Some(row) = rows.get_mut(k) {
            *row = Some(TprAtFpr {
                fpr: x,
                tpr,
                threshold: run_start
                    .checked_sub(1)
                    .and_then(|i| table.scores().get(i).copied()),
            });
        }
    }
    rows.into_iter().collect()
}

/// `roc_auc_score(max_fpr=...)`: the area under the ROC curve up to
/// `max_fpr` (linear interpolation at `max_fpr`), standardized as McClish
/// (1989) so that 0.5 is chance and 1 is perfect: `(1 + (A − m²/2) / (m −
/// m²/2)) / 2`. `max_fpr` = 1 gives the plain AUC, as scikit-learn.
/// `max_fpr` must be in (0, 1]; `None` unless both classes have weight.
pub fn partial_auc(table: &ScoreTable, max_fpr: f64) -> Option<f64> {
    // The curve of `roc_curve(table, true)`, read lazily: below `max_fpr`
    // only the points up to the first one past it are needed.
    let (total_neg, total_pos) = table.cumulative_totals();
    if !(total_pos > 0.0 && total_neg > 0.0) {
        return None;
    }
    let origin = (0.0, 0.0);
    let points = std::iter::once(origin)
        .chain(kept_points_iter(table, true).map(|p| (p.fps / total_neg, p.tps / total_pos)));
    let term = |(x0, y0): (f64, f64), (x1, y1): (f64, f64)| (x1 - x0) * (y1 + y0) / 2.0;
    if max_fpr >= 1.0 {
        let area = points
            .scan(None, |previous: &mut Option<(f64, f64)>, point| {
                Some(previous.replace(point).map(|before| term(before, point)))
            })
            .flatten()
            .sum();
        return Some(area);
    }
    // The trapezoids up to the last point with FPR <= max_fpr, then the one
    // to the curve linearly interpolated at max_fpr.
    // (Every term is >= +0, so a running sum is `Iterator::sum`'s bits.)
    let mut area = 0.0;
    let mut previous = origin;
    let mut interpolated = None;
    for (i, point) in points.enumerate() {
        if point.0 > max_fpr {
            let ((x0, y0), (x1, y1)) = (previous, point);
            let y = (y1 - y0) / (x1 - x0) * (max_fpr - x0) + y0;
            interpolated = Some((max_fpr, y));
            break;
        }
        if i > 0 {
            area += term(previous, point);
        }
        previous = point;
    }
    area += term(previous, interpolated?);
    let min_area = 0.5 * max_fpr * max_fpr;
    Some(0.5 * (1.0 + (area - min_area) / (max_fpr - min_area)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::metrics::table::test_tables;
    use proptest::prelude::*;

    /// The first implementations (prefix vectors, a search per threshold,
    /// materialized curves): the passes above must give their bits.
    mod reference {
        use super::super::*;
        use crate::core::metrics::curve::roc_curve;

        pub fn at_thresholds(
            table: &ScoreTable,
            thresholds: &[f64],
            beta: f64,
        ) -> Vec<ThresholdRow> {
            let running = |w: &[f64], rev: bool| -> Vec<f64> {
                let mut out = vec![0.0];
                let mut sum = 0.0;
                let items: Vec<f64> = if rev {
                    w.iter().rev().copied().collect()
                } else {
                    w.to_vec()
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
            let pos = running(table.pos_weights(), false);
            let neg = running(table.neg_weights(), false);
            let pos_below = running(table.pos_weights(), true);
            let neg_below = running(table.neg_weights(), true);
            thresholds
                .iter()
                .map(|&threshold| {
                    let above = table.scores().partition_point(|&s| s >= threshold);
                    let c = Confusion {
                        tp: pos[above],
                        fp: neg[above],
                        fn_: pos_below[above],
                        tn: neg_below[above],
                    };
                    ThresholdRow::of(threshold, c, beta)
                })
                .collect()
        }

        fn best_of<I>(candidates: impl Fn() -> I) -> Option<Best>
        where
            I: Iterator<Item = (f64, f64)>,
        {
            let max = candidates().map(|(_, v)| v).reduce(f64::max)?;
            let floor = max - TIE * max.abs();
            candidates()
                .find(|&(_, v)| v >= floor)
                .map(|(threshold, value)| Best { threshold, value })
        }

        pub fn best_threshold(table: &ScoreTable, beta: f64) -> BestThreshold {
            let (total_neg, total_pos) = table.cumulative().last().unwrap_or((0.0, 0.0));
            let points = || table.scores().iter().copied().zip(table.cumulative());
            let f_beta = best_of(|| {
                points().filter_map(move |(s, (fps, tps))| {
                    f_beta(tps, fps, total_pos - tps, beta).map(|f| (s, f))
                })
            });
            let youden_j = if total_pos > 0.0 && total_neg > 0.0 {
                best_of(|| {
                    points().map(move |(s, (fps, tps))| (s, tps / total_pos - fps / total_neg))
                })
            } else {
                None
            };
            BestThreshold { f_beta, youden_j }
        }

        pub fn tpr_at_fpr(table: &ScoreTable, targets: &[f64]) -> Option<Vec<TprAtFpr>> {
            let (total_neg, total_pos) = table.cumulative().last()?;
            if !(total_pos > 0.0 && total_neg > 0.0) {
                return None;
            }
            let mut fpr = vec![0.0];
            let mut tpr = vec![0.0];
            for (fps, tps) in table.cumulative() {
                fpr.push(fps / total_neg);
                tpr.push(tps / total_pos);
            }
            Some(
                targets
                    .iter()
                    .map(|&x| {
                        let last = fpr.partition_point(|&f| f <= x).saturating_sub(1);
                        let best = tpr[last];
                        let first = tpr.partition_point(|&t| t < best);
                        TprAtFpr {
                            fpr: x,
                            tpr: best,
                            threshold: first
                                .checked_sub(1)
                                .and_then(|i| table.scores().get(i).copied()),
                        }
                    })
                    .collect(),
            )
        }

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
    }

    /// `Debug` prints every f64 with all its digits, so equal text is equal
    /// bits (and `None` equals `None`).
    fn same<T: std::fmt::Debug>(a: &T, b: &T) -> bool {
        format!("{a:?}") == format!("{b:?}")
    }

    proptest! {
        #[test]
        fn the_passes_give_the_first_implementations_bits(
            records in prop::collection::vec((0u8..12, any::<bool>(), 0u8..8), 0..60),
            cuts in prop::collection::vec(-2i8..14, 0..8),
            fprs in prop::collection::vec(0u8..=20, 0..8),
            max_fpr in 1u8..=20,
            beta in 1u8..4,
        ) {
            let thresholds: Vec<f64> = cuts.iter().map(|&c| f64::from(c) / 11.0).collect();
            let targets: Vec<f64> = fprs.iter().map(|&f| f64::from(f) / 20.0).collect();
            let (max_fpr, beta) = (f64::from(max_fpr) / 20.0, f64::from(beta) / 2.0);
            for t in test_tables(&records) {
                let (got, want) = (at_thresholds(&t, &thresholds, beta), reference::at_thresholds(&t, &thresholds, beta));
                prop_assert!(same(&got, &want), "{got:?} {want:?}");
                let (got, want) = (best_threshold(&t, beta), reference::best_threshold(&t, beta));
                prop_assert!(same(&got, &want), "{got:?} {want:?}");
                let (got, want) = (tpr_at_fpr(&t, &targets), reference::tpr_at_fpr(&t, &targets));
                prop_assert!(same(&got, &want), "{got:?} {want:?}");
                let (got, want) = (partial_auc(&t, max_fpr), reference::partial_auc(&t, max_fpr));
                prop_assert!(same(&got, &want), "{max_fpr} {got:?} {want:?}");
            }
        }
    }

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
