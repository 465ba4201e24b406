//! Exact area under the ROC curve.

use super::table::ScoreTable;

/// AUC of score groups given in descending score order as `(pos, neg)` weight
/// pairs (one pair per distinct score).
///
/// This is the trapezoid rule over the full exact ROC curve, summed in
/// unnormalized units: the step of a group adds the trapezoid
/// `neg * (tp_before + pos / 2)`, so tied positives and negatives count one
/// half, and the total is divided by `P * N` once at the end. It equals
/// `sklearn.metrics.roc_auc_score` (which integrates the `drop_intermediate`
/// curve; dropped points are collinear so the area is the same) and the
/// pairwise probability `P(score+ > score-) + P(tie) / 2`.
///
/// `None` when the positive or the negative weight is 0 (one class only, or
/// empty input): the AUC is undefined.
pub fn auc_of_groups(groups: impl IntoIterator<Item = (f64, f64)>) -> Option<f64> {
    AreaSums::of(groups).auc()
}

/// Twice the Mann-Whitney U statistic of unit-weight records given as the
/// positives' scores and the negatives' scores, each sorted ascending: the
/// sum over every (positive `x`, negative `y`) pair of 2 when `x > y` and 1
/// when `x == y`. Doubling keeps it an integer (a tie is half a win).
///
/// It is additive over disjoint record sets once the cross pairs are added,
/// which is what lets a stream keep it per user and answer the GAUC query
/// without walking the users' records: see [`auc_of_twice_u`].
///
/// When one list is much shorter (a batch's few records against a user's
/// history), each of its scores is located in the other by binary search;
/// otherwise one branch-free merge counts the pairs.
pub fn twice_u_statistic(positives: &[f64], negatives: &[f64]) -> u128 {
    let (p, n) = (positives.len(), negatives.len());
    let short = p.min(n);
    let long = p.max(n);
    // Binary search costs about log2(long) steps per short element.
    if short.saturating_mul(long.max(2).ilog2() as usize) < p + n {
        return twice_u_by_search(positives, negatives);
    }
    2 * p as u128 * n as u128 - twice_lost_pairs(positives, negatives)
}

/// The AUC from [`twice_u_statistic`] and the class sizes; `None` when a
/// class is empty. Equal to [`auc_of_groups`] over the same unit-weight
/// records bit for bit while `P * N < 2^52`: both are then the same
/// half-integer area (exact in an `f64`) divided by `P * N`. Past that the
/// walk's running sum rounds and this (one rounding of an exact integer)
/// is the closer of the two.
pub fn auc_of_twice_u(twice_u: u128, positives: usize, negatives: usize) -> Option<f64> {
    let pairs = positives as u128 * negatives as u128;
    (pairs > 0).then(|| twice_u as f64 / 2.0 / pairs as f64)
}

/// [`twice_u_statistic`] by locating each score of the shorter list in the
/// longer one.
fn twice_u_by_search(positives: &[f64], negatives: &[f64]) -> u128 {
    let below = |v: &[f64], s: f64| v.partition_point(|&x| x < s) as u128;
    let at_or_below = |v: &[f64], s: f64| v.partition_point(|&x| x <= s) as u128;
    if positives.len() <= negatives.len() {
        // Per positive x: negatives below x twice, tied negatives once.
        positives
            .iter()
            .map(|&x| below(negatives, x) + at_or_below(negatives, x))
            .sum()
    } else {
        // Per negative y: positives above y twice, tied positives once.
        let all = 2 * positives.len() as u128;
        negatives
            .iter()
            .map(|&y| all - below(positives, y) - at_or_below(positives, y))
            .sum()
    }
}

/// Sum over the negatives `y` of `#{x <= y} + #{x < y}` over the positives
/// `x`: twice the pairs a negative does not lose (a tie counts once).
///
/// One merge, positives first on ties, so when a negative `y` is reached
/// every positive `<= y` is behind it, and those equal to `y` are the run
/// of equal positives taken last. Branch-free (the selects compile to
/// conditional moves): with random labels a branch per record would
/// mispredict every other time.
fn twice_lost_pairs(positives: &[f64], negatives: &[f64]) -> u128 {
    let (mut i, mut j, mut sum) = (0usize, 0usize, 0u128);
    // The last positive taken and how many equal ones were taken in a row.
    let (mut last, mut run) = (f64::NAN, 0u128);
    while let (Some(&x), Some(&y)) = (positives.get(i), negatives.get(j)) {
        let take_positive = x <= y;
        let ties = run * u128::from(last == y);
        sum += (2 * i as u128 - ties) * u128::from(!take_positive);
        let next_run = run * u128::from(x == last) + 1;
        run = if take_positive { next_run } else { run };
        last = if take_positive { x } else { last };
        i += usize::from(take_positive);
        j += usize::from(!take_positive);
    }
    // Negatives above every positive (or tied with the last ones).
    let all = 2 * positives.len() as u128;
    let tail: u128 = negatives
        .get(j..)
        .unwrap_or_default()
        .iter()
        .map(|&y| all - run * u128::from(last == y))
        .sum();
    sum + tail
}

/// Unnormalized trapezoid area and the total positive and negative weight.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct AreaSums {
    pub area: f64,
    pub pos: f64,
    pub neg: f64,
}

impl AreaSums {
    /// Sums the groups, highest score first.
    pub fn of(groups: impl IntoIterator<Item = (f64, f64)>) -> Self {
        let mut sums = AreaSums::default();
        for (pos, neg) in groups {
            sums.add_group(pos, neg);
        }
        sums
    }

    /// Adds the next score's group (scores descending): the one update
    /// rule, shared by every way of walking the groups.
    #[inline(always)]
    pub fn add_group(&mut self, pos: f64, neg: f64) {
        self.area += neg * (self.pos + 0.5 * pos);
        self.pos += pos;
        self.neg += neg;
    }

    /// `area / (P * N)`, `None` when either class has no weight.
    pub fn auc(&self) -> Option<f64> {
        (self.pos > 0.0 && self.neg > 0.0).then(|| self.area / (self.pos * self.neg))
    }
}

/// AUC of a score table; see [`auc_of_groups`].
pub fn auc(table: &ScoreTable) -> Option<f64> {
    auc_of_groups(
        table
            .pos_weights()
            .iter()
            .copied()
            .zip(table.neg_weights().iter().copied()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn by_hand_with_a_tie() {
        // positives 0.8, 0.35; negatives 0.4, 0.1: 3 of 4 pairs ordered -> 0.75
        let t = ScoreTable::from_records(&[0.1, 0.4, 0.35, 0.8], &[false, false, true, true], None)
            .unwrap();
        assert_eq!(auc(&t), Some(0.75));
        // one tied pair counts one half
        let t = ScoreTable::from_records(&[0.5, 0.5], &[true, false], None).unwrap();
        assert_eq!(auc(&t), Some(0.5));
    }

    #[test]
    fn undefined_with_one_class_or_no_data() {
        let t = ScoreTable::from_records(&[0.1, 0.4], &[true, true], None).unwrap();
        assert_eq!(auc(&t), None);
        assert_eq!(auc(&ScoreTable::default()), None);
    }

    #[test]
    fn weights_count_as_repeated_rows() {
        let weighted = ScoreTable::from_records(
            &[0.9, 0.5, 0.1],
            &[false, true, true],
            Some(&[2.0, 1.0, 1.0]),
        )
        .unwrap();
        let repeated =
            ScoreTable::from_records(&[0.9, 0.9, 0.5, 0.1], &[false, false, true, true], None)
                .unwrap();
        assert_eq!(auc(&weighted), auc(&repeated));
        assert_eq!(auc(&weighted), Some(0.0));
    }

    fn auc_of_classes(pos: &[f64], neg: &[f64]) -> Option<f64> {
        auc_of_twice_u(twice_u_statistic(pos, neg), pos.len(), neg.len())
    }

    #[test]
    fn twice_u_by_hand() {
        // 3 of 4 pairs ordered, as in `by_hand_with_a_tie`
        assert_eq!(twice_u_statistic(&[0.35, 0.8], &[0.1, 0.4]), 6);
        assert_eq!(auc_of_classes(&[0.35, 0.8], &[0.1, 0.4]), Some(0.75));
        // (0.5+, 0.5-) tie: 1; (0.5+, 0.2-) won: 2; (0.1+, both) lost
        assert_eq!(twice_u_statistic(&[0.1, 0.5], &[0.2, 0.5]), 3);
        assert_eq!(auc_of_classes(&[0.1], &[]), None);
        assert_eq!(auc_of_classes(&[], &[0.1]), None);
    }

    proptest::proptest! {
        #[test]
        fn twice_u_auc_equals_the_group_walk_bit_for_bit(
            rows in proptest::collection::vec((0u8..12, proptest::bool::ANY), 0..80),
            extra_negatives in 0usize..200
        ) {
            // Extra negatives make one side long, so both counting paths run.
            let score = |s: u8| f64::from(s) / 8.0;
            let mut pos: Vec<f64> = rows.iter().filter(|r| r.1).map(|r| score(r.0)).collect();
            let mut neg: Vec<f64> = rows.iter().filter(|r| !r.1).map(|r| score(r.0)).collect();
            neg.extend((0..extra_negatives).map(|k| score((k % 12) as u8)));
            pos.sort_by(f64::total_cmp);
            neg.sort_by(f64::total_cmp);
            let groups = (0u8..12).rev().map(|s| {
                let count = |v: &[f64]| v.iter().filter(|&&x| x == score(s)).count() as f64;
                (count(&pos), count(&neg))
            });
            let want = auc_of_groups(groups);
            proptest::prop_assert_eq!(auc_of_classes(&pos, &neg).map(f64::to_bits), want.map(f64::to_bits));
            // both paths agree on the statistic itself
            proptest::prop_assert_eq!(
                twice_u_by_search(&pos, &neg),
                2 * pos.len() as u128 * neg.len() as u128 - twice_lost_pairs(&pos, &neg)
            );
        }
    }
}
