//! Precision-recall: `sklearn.metrics.precision_recall_curve` (scikit-learn
//! 1.3 or later, with its `drop_intermediate`) and `average_precision_score`, both
//! read off the one [`ScoreTable`].

use super::curve::{push_points_at, thinned_indices, Point};
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
    if table.is_empty() {
        return None;
    }
    let total_pos = table.cumulative_totals().1;
    if total_pos <= 0.0 {
        return None;
    }
    let (mut ap, mut previous_recall) = (0.0, 0.0);
    table.each_cumulative(|threshold, fps, tps| {
        let p = Point {
            fps,
            tps,
            threshold,
        };
        let recall = p.tps / total_pos;
        ap += (recall - previous_recall) * precision_of(&p);
        previous_recall = recall;
    });
    Some(ap)
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

/// [`pick`] over every point of the table, in one pass of the cumulative sums.
fn pick_points(table: &ScoreTable, wanted: &[usize]) -> Vec<Point> {
    let mut found = Vec::with_capacity(wanted.len());
    push_points_at(table, wanted.iter().copied(), &mut found);
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
    let n = if drop_intermediate && table.len() > 2 {
        kept_points(table, true).count()
    } else {
        table.len()
    };
    // Output index j in 0..=n: j < n is kept point n - 1 - j (ascending
    // thresholds); j == n is the (recall 0, precision 1) end point.
    let picked = thinned_indices(n + 1, max_points);
    let mut wanted: Vec<usize> = picked
        .iter()
        .filter(|&&j| j < n)
        .map(|&j| n - 1 - j)
        .collect();
    wanted.reverse();
    let found = if drop_intermediate && table.len() > 2 {
        pick(kept_points(table, true), &wanted)
    } else {
        pick_points(table, &wanted)
    };
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
