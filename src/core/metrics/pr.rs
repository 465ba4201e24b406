//! Precision-recall: `sklearn.metrics.precision_recall_curve` (scikit-learn
//! 1.3 or later, with its `drop_intermediate`) and `average_precision_score`, both
//! read off the one [`ScoreTable`].

use super::curve::{thinned_indices, Point, Thinning};
use super::table::ScoreTable;

/// A precision-recall curve laid out as scikit-learn's: `thresholds`
/// ascending, `precision` and `recall` one element longer, ending at
/// (recall 0, precision 1), which has no threshold.
#[derive(Debug, Clone, PartialEq)]
pub struct PrCurve {
    pub precision: Vec<f64>,
    pub recall: Vec<f64>,
    pub thresholds: Vec<f64>,
    /// Points removed by thinning to `max_points` (not by `drop_intermediate`).
    pub points_dropped: usize,
}

/// Every distinct score as a threshold, highest first, with scikit-learn's
/// cumulative sums ([`ScoreTable::cumulative`]).
fn points(table: &ScoreTable) -> impl Iterator<Item = Point> + '_ {
    table
        .scores()
        .iter()
        .zip(table.cumulative())
        .map(|(&threshold, (fps, tps))| Point {
            fps,
            tps,
            threshold,
        })
}

/// `tps / (tps + fps)`, 0 where no record is predicted positive (never the
/// case once zero-weight scores are gone; scikit-learn's `where=ps != 0`).
fn precision_of(p: &Point) -> f64 {
    let ps = p.tps + p.fps;
    if ps != 0.0 {
        p.tps / ps
    } else {
        0.0
    }
}

/// Average precision, `Σ_i (R_i − R_{i−1}) · P_i` over the distinct scores
/// from the highest down (`R_{−1} = 0`): `average_precision_score`, weighted
/// by the table's weights. `None` when there is no positive weight (recall is
/// 0/0; scikit-learn warns and returns a meaningless number).
pub fn average_precision(table: &ScoreTable) -> Option<f64> {
    let mut pass = PrPass::new(table, table.cumulative_totals().1, false, None)?;
    table.each_cumulative(
        #[inline(always)]
        |threshold, fps, tps| pass.add(threshold, fps, tps),
    );
    pass.average_precision()
}

/// Average precision and, without `drop_intermediate`, the thinned PR curve,
/// one point at a time, highest threshold first: a pass that reads the
/// cumulative sums for other metrics too offers them here. The curve's
/// picked points are pushed as they are read (highest threshold first) and
/// the vectors reversed once at the end, so nothing is gathered, nothing
/// searched. Each value is computed as [`average_precision`] and
/// [`pr_curve`] compute it: the same bits.
pub(crate) struct PrPass {
    total_pos: f64,
    ap: f64,
    previous_recall: f64,
    /// Table index of the next point.
    row: usize,
    /// Table index of the next point the curve picks (`usize::MAX` when
    /// none is left or no curve is written).
    next_row: usize,
    curve: Option<CurveSlots>,
}

/// The curve being written: slot `slot` (ascending thresholds) takes table
/// row [`PrPass::next_row`]; the slots are filled from the last but one (the
/// last is the (recall 0, precision 1) end point) down to 0.
struct CurveSlots {
    curve: PrCurve,
    thinning: Thinning,
    /// Distinct scores in the table.
    n: usize,
    slot: usize,
}

impl PrPass {
    /// `total_pos` is the table's [`ScoreTable::cumulative_totals`]`.1`;
    /// `curve`: whether to write the curve (`drop_intermediate` off) and
    /// its `max_points`. `None` when the table is empty or has no positive
    /// weight (no average precision, no curve).
    pub(crate) fn new(
        table: &ScoreTable,
        total_pos: f64,
        curve: bool,
        max_points: Option<usize>,
    ) -> Option<Self> {
        if table.is_empty() || total_pos <= 0.0 {
            return None;
        }
        let n = table.len();
        let curve = curve.then(|| {
            // Output index j in 0..=n: j < n is table row n - 1 - j.
            let thinning = Thinning::new(n + 1, max_points);
            let m = thinning.count();
            let mut curve = PrCurve {
                precision: Vec::with_capacity(m),
                recall: Vec::with_capacity(m),
                thresholds: Vec::with_capacity(m - 1),
                points_dropped: n + 1 - m,
            };
            // The end point, last once reversed.
            curve.precision.push(1.0);
            curve.recall.push(0.0);
            CurveSlots {
                curve,
                thinning,
                n,
                slot: m - 2,
            }
        });
        let next_row = curve
            .as_ref()
            .map_or(usize::MAX, |c| c.n - 1 - c.thinning.at(c.slot));
        Some(PrPass {
            total_pos,
            ap: 0.0,
            previous_recall: 0.0,
            row: 0,
            next_row,
            curve,
        })
    }

    /// Adds the next point: its threshold and cumulative sums.
    #[inline(always)]
    pub(crate) fn add(&mut self, threshold: f64, fps: f64, tps: f64) {
        let p = Point {
            fps,
            tps,
            threshold,
        };
        let recall = p.tps / self.total_pos;
        let precision = precision_of(&p);
        self.ap += (recall - self.previous_recall) * precision;
        self.previous_recall = recall;
        if self.next_row == self.row {
            self.pick(precision, recall, threshold);
        }
        self.row += 1;
    }

    /// Writes the point of the current slot and moves to the one below.
    #[inline]
    fn pick(&mut self, precision: f64, recall: f64, threshold: f64) {
        let Some(c) = &mut self.curve else {
            return;
        };
        c.curve.precision.push(precision);
        c.curve.recall.push(recall);
        c.curve.thresholds.push(threshold);
        self.next_row = match c.slot.checked_sub(1) {
            Some(slot) => {
                c.slot = slot;
                c.n - 1 - c.thinning.at(slot)
            }
            None => usize::MAX,
        };
    }

    pub(crate) fn average_precision(&self) -> Option<f64> {
        Some(self.ap)
    }

    /// The curve (when asked for in [`PrPass::new`]).
    pub(crate) fn curve(self) -> Option<PrCurve> {
        self.curve.map(|c| {
            let mut curve = c.curve;
            curve.precision.reverse();
            curve.recall.reverse();
            curve.thresholds.reverse();
            curve
        })
    }
}

/// The points left by `drop_intermediate`, highest threshold first: of the
/// points sharing one `tps` value, only the first and the last
/// (scikit-learn's test `np.diff(tps)` is exact, so this compares the
/// cumulative sums exactly too); the first and last thresholds are always
/// kept. All the points without `drop_intermediate` or with at most 2.
fn kept_points(table: &ScoreTable, drop_intermediate: bool) -> impl Iterator<Item = Point> + '_ {
    let drop = drop_intermediate && table.len() > 2;
    let mut previous: Option<f64> = None;
    let mut rest = points(table).peekable();
    std::iter::from_fn(move || loop {
        let p = rest.next()?;
        let keep = !drop
            || match (previous, rest.peek()) {
                (Some(before), Some(after)) => before != p.tps || after.tps != p.tps,
                _ => true,
            };
        previous = Some(p.tps);
        if keep {
            return Some(p);
        }
    })
}

/// The points at the (ascending) positions `wanted` of `points`.
fn pick(points: impl Iterator<Item = Point>, wanted: &[usize]) -> Vec<Point> {
    let mut found = Vec::with_capacity(wanted.len());
    let mut next = wanted.iter().copied();
    let Some(mut want) = next.next() else {
        return found;
    };
    for (i, p) in points.enumerate() {
        if i == want {
            found.push(p);
            match next.next() {
                Some(w) => want = w,
                None => break,
            }
        }
    }
    found
}

/// The precision-recall curve, thinned to at most `max_points` points
/// (counting the final (recall 0, precision 1) point; first and last always
/// kept, as the ROC curve's thinning). `None` when there is no positive
/// weight. `drop_intermediate`: see [`kept_points`].
///
/// One pass over the table picks the points thinning keeps (a second one
/// counts the points `drop_intermediate` keeps, when asked): a million
/// distinct scores are never gathered into a million points.
pub fn pr_curve(
    table: &ScoreTable,
    drop_intermediate: bool,
    max_points: Option<usize>,
) -> Option<PrCurve> {
    if table.is_empty() {
        return None;
    }
    let total_pos = table.cumulative_totals().1;
    if total_pos <= 0.0 {
        return None;
    }
    if !(drop_intermediate && table.len() > 2) {
        let mut pass = PrPass::new(table, total_pos, true, max_points)?;
        table.each_cumulative(
            #[inline(always)]
            |threshold, fps, tps| pass.add(threshold, fps, tps),
        );
        return pass.curve();
    }
    let n = kept_points(table, true).count();
    // Output index j in 0..=n: j < n is kept point n - 1 - j (ascending
    // thresholds); j == n is the (recall 0, precision 1) end point.
    let picked = thinned_indices(n + 1, max_points);
    let mut wanted: Vec<usize> = picked
        .iter()
        .filter(|&&j| j < n)
        .map(|&j| n - 1 - j)
        .collect();
    wanted.reverse();
    let found = pick(kept_points(table, true), &wanted);
    let mut curve = PrCurve {
        precision: Vec::with_capacity(picked.len()),
        recall: Vec::with_capacity(picked.len()),
        thresholds: Vec::with_capacity(picked.len()),
        points_dropped: n + 1 - picked.len(),
    };
    let mut descending = found.iter().rev();
    for j in picked {
        if j < n {
            let p = descending.next()?;
            curve.precision.push(precision_of(p));
            curve.recall.push(p.tps / total_pos);
            curve.thresholds.push(p.threshold);
        } else {
            curve.precision.push(1.0);
            curve.recall.push(0.0);
        }
    }
    Some(curve)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::metrics::table::test_tables;
    use proptest::prelude::*;

    /// The first implementation: every point gathered, then thinned.
    fn reference_pr_curve(
        table: &ScoreTable,
        drop_intermediate: bool,
        max_points: Option<usize>,
    ) -> Option<PrCurve> {
        let all: Vec<Point> = points(table).collect();
        let total_pos = all.last().map(|p| p.tps)?;
        if total_pos <= 0.0 {
            return None;
        }
        let kept: Vec<Point> = if drop_intermediate && all.len() > 2 {
            let last = all.len() - 1;
            all.iter()
                .enumerate()
                .filter(|&(i, p)| {
                    i == 0
                        || i == last
                        || all.get(i - 1).is_some_and(|b| b.tps != p.tps)
                        || all.get(i + 1).is_some_and(|a| a.tps != p.tps)
                })
                .map(|(_, p)| *p)
                .collect()
        } else {
            all
        };
        let n = kept.len();
        let picked = thinned_indices(n + 1, max_points);
        let mut curve = PrCurve {
            precision: Vec::new(),
            recall: Vec::new(),
            thresholds: Vec::new(),
            points_dropped: n + 1 - picked.len(),
        };
        for j in picked {
            match kept
                .get(n.wrapping_sub(1).wrapping_sub(j))
                .filter(|_| j < n)
            {
                Some(p) => {
                    curve.precision.push(precision_of(p));
                    curve.recall.push(p.tps / total_pos);
                    curve.thresholds.push(p.threshold);
                }
                None => {
                    curve.precision.push(1.0);
                    curve.recall.push(0.0);
                }
            }
        }
        Some(curve)
    }

    proptest! {
        #[test]
        fn the_one_pass_curve_gives_the_gathered_curves_bits(
            records in prop::collection::vec((0u8..12, any::<bool>(), 0u8..8), 0..60),
            drop_intermediate in any::<bool>(),
            max_points in prop::option::of(2usize..12),
        ) {
            for t in test_tables(&records) {
                let got = pr_curve(&t, drop_intermediate, max_points);
                let want = reference_pr_curve(&t, drop_intermediate, max_points);
                prop_assert_eq!(format!("{got:?}"), format!("{want:?}"));
            }
        }
    }

    fn table(scores: &[f64], labels: &[bool]) -> ScoreTable {
        ScoreTable::from_records(scores, labels, None).unwrap()
    }

    #[test]
    fn matches_the_scikit_learn_docstring_example() {
        // precision_recall_curve([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
        let t = table(&[0.1, 0.4, 0.35, 0.8], &[false, false, true, true]);
        let c = pr_curve(&t, false, None).unwrap();
        assert_eq!(c.precision, vec![0.5, 2.0 / 3.0, 0.5, 1.0, 1.0]);
        assert_eq!(c.recall, vec![1.0, 1.0, 0.5, 0.5, 0.0]);
        assert_eq!(c.thresholds, vec![0.1, 0.35, 0.4, 0.8]);
        // average_precision_score(...) = 0.8333...
        assert!((average_precision(&t).unwrap() - 0.8333333333333333).abs() < 1e-15);
    }

    #[test]
    fn drop_intermediate_keeps_the_ends_of_each_recall_level() {
        // labels by descending score 1 0 0 0 1: tps 1 1 1 1 2
        let t = table(
            &[0.9, 0.8, 0.7, 0.6, 0.5],
            &[true, false, false, false, true],
        );
        let c = pr_curve(&t, true, None).unwrap();
        assert_eq!(c.thresholds, vec![0.5, 0.6, 0.9]);
        assert_eq!(c.precision.len(), 4);
    }

    #[test]
    fn thinning_keeps_the_end_point_and_the_layout() {
        let scores: Vec<f64> = (0..100).map(f64::from).collect();
        let labels: Vec<bool> = (0..100).map(|i| i % 3 == 0).collect();
        let t = table(&scores, &labels);
        let c = pr_curve(&t, false, Some(10)).unwrap();
        assert_eq!(c.precision.len(), 10);
        assert_eq!(c.thresholds.len(), 9);
        assert_eq!(c.points_dropped, 91);
        assert_eq!((c.recall[9], c.precision[9]), (0.0, 1.0));
        assert_eq!(c.thresholds[0], 0.0);
    }

    #[test]
    fn no_positive_is_undefined() {
        let t = table(&[0.3, 0.2], &[false, false]);
        assert_eq!(average_precision(&t), None);
        assert_eq!(pr_curve(&t, false, None), None);
        assert_eq!(average_precision(&ScoreTable::default()), None);
    }
}
