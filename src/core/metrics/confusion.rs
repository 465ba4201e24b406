//! Confusion counts at a threshold and the rates derived from them.
//!
//! Every rate is a ratio of (weighted) counts. When its denominator is 0 the
//! rate is undefined and the functions return `None`; callers put a sentence
//! in their warnings instead of a silent 0 (scikit-learn's
//! `zero_division=np.nan` gives the same numbers).

use super::table::ScoreTable;

/// Weighted confusion counts of a binary decision (plain counts without
/// weights). `fn_` is the false-negative count (`fn` is a Rust keyword).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Confusion {
    pub tp: f64,
    pub fp: f64,
    pub tn: f64,
    pub fn_: f64,
}

impl Confusion {
    /// Counts at `threshold`: a record is predicted positive iff
    /// `score >= threshold`. `O(distinct scores)` over the sorted table.
    pub fn at_threshold(table: &ScoreTable, threshold: f64) -> Self {
        let above = table.scores().partition_point(|&s| s >= threshold);
        let (pos, neg) = (table.pos_weights(), table.neg_weights());
        let tp: f64 = pos.get(..above).unwrap_or(&[]).iter().sum();
        let fp: f64 = neg.get(..above).unwrap_or(&[]).iter().sum();
        let fn_: f64 = pos.get(above..).unwrap_or(&[]).iter().sum();
        let tn: f64 = neg.get(above..).unwrap_or(&[]).iter().sum();
        Confusion { tp, fp, tn, fn_ }
    }

    /// `(tp + tn) / (tp + fp + tn + fn)`; `None` when the total weight is 0.
    pub fn accuracy(&self) -> Option<f64> {
        ratio(self.tp + self.tn, self.tp + self.fp + self.tn + self.fn_)
    }

    /// `tp / (tp + fp)`; `None` with no predicted positives.
    pub fn precision(&self) -> Option<f64> {
        precision(self.tp, self.fp)
    }

    /// `tp / (tp + fn)`; `None` with no actual positives.
    pub fn recall(&self) -> Option<f64> {
        recall(self.tp, self.fn_)
    }

    /// F-beta from the counts, see [`f_beta`].
    pub fn f_beta(&self, beta: f64) -> Option<f64> {
        f_beta(self.tp, self.fp, self.fn_, beta)
    }

    /// Specificity (true negative rate) `tn / (tn + fp)`; `None` with no
    /// actual negatives.
    pub fn specificity(&self) -> Option<f64> {
        ratio(self.tn, self.tn + self.fp)
    }

    /// Negative predictive value `tn / (tn + fn)`; `None` with no predicted
    /// negatives.
    pub fn npv(&self) -> Option<f64> {
        ratio(self.tn, self.tn + self.fn_)
    }

    /// False positive rate `fp / (fp + tn)`; `None` with no actual negatives.
    pub fn fpr(&self) -> Option<f64> {
        ratio(self.fp, self.fp + self.tn)
    }

    /// Balanced accuracy `(recall + specificity) / 2`; `None` unless both
    /// classes have weight (scikit-learn then averages the one defined
    /// recall and warns; we do not invent a number).
    pub fn balanced_accuracy(&self) -> Option<f64> {
        Some((self.recall()? + self.specificity()?) / 2.0)
    }

    /// Matthews correlation coefficient in scikit-learn's form
    /// (`matthews_corrcoef`): `(c·s − t·p) / sqrt((s² − p·p)(s² − t·t))` with
    /// `c` the correct weight, `s` the total, `t` and `p` the true and
    /// predicted class totals. `None` when a factor of the denominator is 0
    /// (one true or one predicted class; scikit-learn returns 0).
    pub fn mcc(&self) -> Option<f64> {
        let t = [self.tn + self.fp, self.fn_ + self.tp];
        let p = [self.tn + self.fn_, self.fp + self.tp];
        let n = p[0] + p[1];
        let correct = self.tp + self.tn;
        let cov_ytyp = correct * n - (t[0] * p[0] + t[1] * p[1]);
        let cov_ypyp = n * n - (p[0] * p[0] + p[1] * p[1]);
        let cov_ytyt = n * n - (t[0] * t[0] + t[1] * t[1]);
        let den = cov_ytyt * cov_ypyp;
        (den > 0.0).then(|| cov_ytyp / den.sqrt())
    }

    /// Cohen's kappa of labels against decisions, as `cohen_kappa_score`:
    /// `1 − (fp + fn) / E`, `E` the off-diagonal weight expected from the
    /// margins, `(p₀·t₁ + p₁·t₀) / total`. `None` when `E` is 0.
    pub fn cohen_kappa(&self) -> Option<f64> {
        let t = [self.tn + self.fp, self.fn_ + self.tp];
        let p = [self.tn + self.fn_, self.fp + self.tp];
        let total = p[0] + p[1];
        if total <= 0.0 {
            return None;
        }
        let expected = (p[0] * t[1] + p[1] * t[0]) / total;
        (expected > 0.0).then(|| 1.0 - (self.fp + self.fn_) / expected)
    }
}

/// `num / den`, `None` when `den` is 0 (0/0 and x/0 are undefined, never 0).
pub fn ratio(num: f64, den: f64) -> Option<f64> {
    (den > 0.0).then(|| num / den)
}

/// Precision `tp / (tp + fp)`; `None` when `tp + fp = 0`.
pub fn precision(tp: f64, fp: f64) -> Option<f64> {
    ratio(tp, tp + fp)
}

/// Recall `tp / (tp + fn)`; `None` when `tp + fn = 0`.
pub fn recall(tp: f64, fn_: f64) -> Option<f64> {
    ratio(tp, tp + fn_)
}

/// F-beta `(1 + b²) tp / ((1 + b²) tp + b² fn + fp)`, computed from the counts
/// as scikit-learn >= 1.4 does (`(1 + b²) tp / (b² (tp + fn) + (tp + fp))`), so
/// it is defined whenever `tp + fp + fn > 0`, even if precision or recall is
/// not (then it is 0). `None` only when `tp + fp + fn = 0`.
pub fn f_beta(tp: f64, fp: f64, fn_: f64, beta: f64) -> Option<f64> {
    let b2 = beta * beta;
    ratio((1.0 + b2) * tp, b2 * (tp + fn_) + (tp + fp))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> ScoreTable {
        // scores 0.9 0.8 0.7 0.6 0.5 0.4, labels 1 1 0 1 0 0
        ScoreTable::from_records(
            &[0.9, 0.8, 0.7, 0.6, 0.5, 0.4],
            &[true, true, false, true, false, false],
            None,
        )
        .unwrap()
    }

    #[test]
    fn counts_scores_at_the_threshold_as_positive() {
        let c = Confusion::at_threshold(&table(), 0.6);
        assert_eq!(
            c,
            Confusion {
                tp: 3.0,
                fp: 1.0,
                tn: 2.0,
                fn_: 0.0
            }
        );
        let c = Confusion::at_threshold(&table(), 0.65);
        assert_eq!(
            c,
            Confusion {
                tp: 2.0,
                fp: 1.0,
                tn: 2.0,
                fn_: 1.0
            }
        );
    }

    #[test]
    fn rates_by_hand() {
        let c = Confusion::at_threshold(&table(), 0.65);
        assert_eq!(c.accuracy(), Some(4.0 / 6.0));
        assert_eq!(c.precision(), Some(2.0 / 3.0));
        assert_eq!(c.recall(), Some(2.0 / 3.0));
        assert_eq!(c.f_beta(1.0), Some(2.0 / 3.0));
        // beta 2: 5*2 / (4*3 + 3) = 10/15
        assert_eq!(c.f_beta(2.0), Some(10.0 / 15.0));
    }

    #[test]
    fn undefined_rates_are_none_not_zero() {
        let c = Confusion::at_threshold(&table(), 2.0);
        assert_eq!(c.precision(), None);
        assert_eq!(c.recall(), Some(0.0));
        assert_eq!(c.f_beta(1.0), Some(0.0));
        assert_eq!(f_beta(0.0, 0.0, 0.0, 1.0), None);
        assert_eq!(Confusion::default().accuracy(), None);
    }
}
