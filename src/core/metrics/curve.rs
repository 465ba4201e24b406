//! The exact ROC curve, as `sklearn.metrics.roc_curve` (scikit-learn >= 1.6).

use super::table::{CumulativeIter, ScoreTable};

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
    /// `max_points` below 2 is treated as 2. Same picks as
    /// [`roc_curve_at_most`].
    pub fn thin(&mut self, max_points: usize) {
        let len = self.len();
        let picked = thinned_indices(len, Some(max_points));
        if picked.len() == len {
            return;
        }
        let pick_f = |v: &Vec<f64>| picked.iter().filter_map(|&i| v.get(i).copied()).collect();
        self.fpr = self.fpr.as_ref().map(pick_f);
        self.tpr = self.tpr.as_ref().map(pick_f);
        self.thresholds = picked
            .iter()
            .filter_map(|&i| self.thresholds.get(i).copied())
            .collect();
        self.points_dropped += len - picked.len();
    }
}

/// One point of the curve before normalization: cumulative false-positive and
/// true-positive weight at a threshold (scikit-learn's `fps`, `tps`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Point {
    pub fps: f64,
    pub tps: f64,
    pub threshold: f64,
}

/// The points scikit-learn keeps, one per distinct score, highest first.
///
/// With `drop_intermediate` and more than 2 thresholds, the first, the last
/// and every point where the second difference `np.diff(fps, 2)` or
/// `np.diff(tps, 2)` is non-zero (a corner) are kept; collinear points in
/// between never change the plotted curve or its area. The difference is
/// computed exactly as numpy does, `(x[i+1] - x[i]) - (x[i] - x[i-1])`, and
/// compared with 0 exactly. A rolling window of three points keeps memory at
/// the size of the kept curve.
///
/// A plain loop over the table, one per kind of cumulative sums (no
/// per-point `match` on the kind nor the window's `Option`s of
/// [`KeptPoints`]): the whole curve of a million distinct scores is read
/// here for every ROC.
#[cfg(test)]
fn kept_points(table: &ScoreTable, drop_intermediate: bool) -> Vec<Point> {
    let mut kept = Vec::with_capacity(table.len());
    each_kept(table, drop_intermediate, |_, p| kept.push(p));
    kept
}

/// Calls `keep` with each point [`kept_points`] keeps and its index in the
/// table, in order, without storing the points: a caller that thins the
/// curve keeps 4 bytes per kept point (its index) rather than 24 (15 MB of
/// fresh pages at a million scores).
#[inline(always)]
fn each_kept(table: &ScoreTable, drop_intermediate: bool, keep: impl FnMut(usize, Point)) {
    let scores = table.scores();
    let drop = drop_intermediate && table.len() > 2;
    match table.cumulative() {
        CumulativeIter::Sequential { fps, tps } => {
            kept_of(scores, fps.copied().zip(tps.copied()), drop, keep)
        }
        CumulativeIter::Running { neg, pos, .. } => {
            let (mut fps, mut tps) = (0.0, 0.0);
            let running = neg.zip(pos).map(move |(&n, &p)| {
                fps += n;
                tps += p;
                (fps, tps)
            });
            kept_of(scores, running, drop, keep)
        }
    }
}

/// The loop of [`each_kept`] over one kind of cumulative sums.
#[inline(always)]
fn kept_of(
    scores: &[f64],
    cumulative: impl Iterator<Item = (f64, f64)>,
    drop: bool,
    mut keep: impl FnMut(usize, Point),
) {
    let mut points = scores
        .iter()
        .zip(cumulative)
        .map(|(&threshold, (fps, tps))| Point {
            fps,
            tps,
            threshold,
        })
        .enumerate();
    if !drop {
        points.for_each(|(i, p)| keep(i, p));
        return;
    }
    let (Some(mut before), Some(mut middle)) = (points.next(), points.next()) else {
        return;
    };
    keep(before.0, before.1);
    for after in points {
        let (a, m, b) = (&after.1, &middle.1, &before.1);
        if (a.fps - m.fps) - (m.fps - b.fps) != 0.0 || (a.tps - m.tps) - (m.tps - b.tps) != 0.0 {
            keep(middle.0, middle.1);
        }
        before = middle;
        middle = after;
    }
    keep(middle.0, middle.1);
}

/// Below this many distinct scores the ROC's kept points are gathered in
/// one pass and thinned from the vector (24 bytes a score, under 200 KB);
/// from it on, a curve that may be thinned keeps 4-byte indices and reads
/// the picked points in a second pass. At 1,000 records the gathered form
/// saves the index vector and the second pass, ~22 k instructions of every
/// such request (callgrind, `profile_metrics core`, 1k stage).
const GATHER_BELOW: usize = 1 << 13;

/// The points of the ROC curve (the origin, then the kept points) at the
/// indices [`thinned_indices`] picks for `max_points`, and how many points
/// the whole curve has. A curve that cannot be thinned (no more points than
/// the maximum, even if nothing is dropped) or of fewer than
/// [`GATHER_BELOW`] distinct scores is collected as it is read (and thinned
/// from the vector); a larger one that may be thinned keeps the table index
/// of each kept point, and a second pass, of the cumulative sums only,
/// reads the picked points.
fn picked_points(
    table: &ScoreTable,
    drop_intermediate: bool,
    max_points: Option<usize>,
    origin: Point,
) -> (Vec<Point>, usize) {
    let may_thin = max_points.is_some_and(|m| table.len() + 1 > m.max(2));
    if !may_thin || table.len() < GATHER_BELOW {
        let mut all = Vec::with_capacity(table.len() + 1);
        all.push(origin);
        each_kept(table, drop_intermediate, |_, p| all.push(p));
        let len = all.len();
        let thinning = Thinning::new(len, max_points);
        if thinning.count() == len {
            return (all, len);
        }
        let picked = (0..thinning.count())
            .filter_map(|i| all.get(thinning.at(i)).copied())
            .collect();
        return (picked, len);
    }
    // Table indices fit a u32 (at most `MAX_RECORDS` scores).
    let mut kept_at: Vec<u32> = Vec::with_capacity(table.len());
    each_kept(table, drop_intermediate, |i, _| kept_at.push(i as u32));
    let len = kept_at.len() + 1;
    let wanted = thinned_indices(len, max_points);
    let mut picked = Vec::with_capacity(wanted.len());
    if wanted.first() == Some(&0) {
        picked.push(origin);
    }
    let rows = wanted.iter().filter_map(|&w| w.checked_sub(1));
    let rows = rows.filter_map(|k| kept_at.get(k)).map(|&i| i as usize);
    push_points_at(table, rows, &mut picked);
    (picked, len)
}

/// Pushes onto `out` the points at the table indices `rows` (ascending), in
/// one plain loop of the cumulative sums (the table's kind of sums matched
/// once, not per point): the ROC's and the PR curve's thinned picks.
pub(crate) fn push_points_at(
    table: &ScoreTable,
    rows: impl Iterator<Item = usize>,
    out: &mut Vec<Point>,
) {
    let mut rows = rows.peekable();
    let mut index = 0;
    table.each_cumulative(
        #[inline(always)]
        |threshold, fps, tps| {
            if rows.next_if_eq(&index).is_some() {
                out.push(Point {
                    fps,
                    tps,
                    threshold,
                });
            }
            index += 1;
        },
    );
}

/// [`kept_points`] lazily, for a reader that stops early (the partial AUC).
pub(crate) fn kept_points_iter(table: &ScoreTable, drop_intermediate: bool) -> KeptPoints<'_> {
    KeptPoints {
        points: table.scores().iter().zip(table.cumulative()),
        drop: drop_intermediate && table.len() > 2,
        started: false,
        before: None,
        middle: None,
    }
}

/// The iterator of [`kept_points_iter`].
pub(crate) struct KeptPoints<'a> {
    points: std::iter::Zip<std::slice::Iter<'a, f64>, CumulativeIter<'a>>,
    /// Whether collinear points are dropped (more than 2 points only).
    drop: bool,
    started: bool,
    /// The window: the last two points read.
    before: Option<Point>,
    middle: Option<Point>,
}

impl KeptPoints<'_> {
    fn read(&mut self) -> Option<Point> {
        self.points.next().map(|(&threshold, (fps, tps))| Point {
            fps,
            tps,
            threshold,
        })
    }
}

impl Iterator for KeptPoints<'_> {
    type Item = Point;

    fn next(&mut self) -> Option<Point> {
        if !self.drop {
            return self.read();
        }
        if !self.started {
            self.started = true;
            let first = self.read()?;
            self.before = Some(first);
            self.middle = self.read();
            return Some(first);
        }
        let corner = |a: &Point, b: &Point, c: &Point| {
            (c.fps - b.fps) - (b.fps - a.fps) != 0.0 || (c.tps - b.tps) - (b.tps - a.tps) != 0.0
        };
        loop {
            let middle = self.middle?;
            let Some(after) = self.read() else {
                // The last point is always kept.
                self.middle = None;
                return Some(middle);
            };
            let before = self.before.replace(middle)?;
            self.middle = Some(after);
            if corner(&before, &middle, &after) {
                return Some(middle);
            }
        }
    }
}

/// `max_points` indices evenly spaced over `0..len`, first and last included;
/// all of them when `len <= max_points` (`max_points` below 2 counts as 2).
pub(crate) fn thinned_indices(len: usize, max_points: Option<usize>) -> Vec<usize> {
    match max_points.map(|m| m.max(2)) {
        // i * (len - 1) / (m - 1) is strictly increasing in i because len > m.
        Some(m) if len > m => (0..m).map(|i| i * (len - 1) / (m - 1)).collect(),
        _ => (0..len).collect(),
    }
}

/// The indices of [`thinned_indices`] one at a time, without the vector: a
/// pass that picks points as it reads them asks for them as it goes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Thinning {
    len: usize,
    /// `Some(m)` when `len > m`: `m` points are picked of `len`.
    thinned_to: Option<usize>,
}

impl Thinning {
    pub(crate) fn new(len: usize, max_points: Option<usize>) -> Self {
        Thinning {
            len,
            thinned_to: max_points.map(|m| m.max(2)).filter(|&m| len > m),
        }
    }

    /// How many indices are picked.
    pub(crate) fn count(&self) -> usize {
        self.thinned_to.unwrap_or(self.len)
    }

    /// The `i`-th picked index (`i < count()`).
    #[inline]
    pub(crate) fn at(&self, i: usize) -> usize {
        match self.thinned_to {
            Some(m) => i * (self.len - 1) / (m - 1),
            None => i,
        }
    }
}

/// The ROC curve of `table`, every point kept; see [`roc_curve_at_most`].
pub fn roc_curve(table: &ScoreTable, drop_intermediate: bool) -> RocCurve {
    roc_curve_at_most(table, drop_intermediate, None)
}

/// The ROC curve of `table`, thinned to at most `max_points` points.
///
/// One point per distinct score (ties form one step), descending, preceded by
/// `(0, 0)` at threshold +infinity; `fpr = fps / fps_last`, `tpr = tps /
/// tps_last`. With `drop_intermediate`, collinear points are removed exactly
/// as scikit-learn's `roc_curve` does (see [`kept_points`]). Thinning picks
/// evenly spaced points of that curve (first and last kept, as
/// [`RocCurve::thin`]) before the rates are materialized, so a million-point
/// curve never allocates a million-point answer. An empty table gives the
/// single point `(0, 0)` with both rates undefined.
pub fn roc_curve_at_most(
    table: &ScoreTable,
    drop_intermediate: bool,
    max_points: Option<usize>,
) -> RocCurve {
    let origin = Point {
        fps: 0.0,
        tps: 0.0,
        threshold: f64::INFINITY,
    };
    let (picked, len) = picked_points(table, drop_intermediate, max_points, origin);
    // The last point is always picked: the totals.
    let (total_neg, total_pos) = picked.last().map_or((0.0, 0.0), |p| (p.fps, p.tps));
    let rate = |value: fn(&Point) -> f64, total: f64| -> Option<Vec<f64>> {
        (total > 0.0).then(|| picked.iter().map(|p| value(p) / total).collect())
    };
    RocCurve {
        fpr: rate(|p| p.fps, total_neg),
        tpr: rate(|p| p.tps, total_pos),
        thresholds: picked
            .iter()
            .map(|p| p.threshold.is_finite().then_some(p.threshold))
            .collect(),
        points_dropped: len - picked.len(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::metrics::table::test_tables;
    use proptest::prelude::*;

    /// The first implementation of [`kept_points`]: a window over the
    /// points, pushing into a `Vec`.
    fn reference_kept_points(table: &ScoreTable, drop_intermediate: bool) -> Vec<Point> {
        let mut cumulative =
            table
                .scores()
                .iter()
                .zip(table.cumulative())
                .map(|(&threshold, (fps, tps))| Point {
                    fps,
                    tps,
                    threshold,
                });
        if !drop_intermediate || table.len() <= 2 {
            return cumulative.collect();
        }
        let corner = |a: &Point, b: &Point, c: &Point| {
            (c.fps - b.fps) - (b.fps - a.fps) != 0.0 || (c.tps - b.tps) - (b.tps - a.tps) != 0.0
        };
        let mut kept = Vec::new();
        let (Some(mut before), Some(mut middle)) = (cumulative.next(), cumulative.next()) else {
            return kept;
        };
        kept.push(before);
        for after in cumulative {
            if corner(&before, &middle, &after) {
                kept.push(middle);
            }
            before = middle;
            middle = after;
        }
        kept.push(middle);
        kept
    }

    proptest! {
        #[test]
        fn the_lazy_window_keeps_the_same_points(
            records in prop::collection::vec((0u8..12, any::<bool>(), 0u8..8), 0..60),
            drop_intermediate in any::<bool>(),
        ) {
            for t in test_tables(&records) {
                let got = kept_points(&t, drop_intermediate);
                let want = reference_kept_points(&t, drop_intermediate);
                prop_assert_eq!(format!("{got:?}"), format!("{want:?}"));
            }
        }
    }

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
        assert_eq!(roc, roc_curve_at_most(&t, false, Some(10)));
    }

    #[test]
    fn thinning_from_gathered_points_or_from_indices_gives_the_same_bits() {
        for len in [GATHER_BELOW / 2, GATHER_BELOW * 3] {
            let scores: Vec<f64> = (0..len)
                .map(|i| ((i * 7919) % len) as f64 / len as f64)
                .collect();
            let labels: Vec<bool> = (0..len).map(|i| (i * 7919 % len) / 5 % 3 == 0).collect();
            let t = ScoreTable::from_records(&scores, &labels, None).unwrap();
            for drop_intermediate in [false, true] {
                for max_points in [2, 1000, len + 5] {
                    let mut whole = roc_curve(&t, drop_intermediate);
                    whole.thin(max_points);
                    let got = roc_curve_at_most(&t, drop_intermediate, Some(max_points));
                    assert_eq!(format!("{got:?}"), format!("{whole:?}"));
                }
            }
        }
    }
}
