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
            sums.area += neg * (sums.pos + 0.5 * pos);
            sums.pos += pos;
            sums.neg += neg;
        }
        sums
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
}
