//! Metrics of predictions read as probabilities: log loss, Brier score, the
//! calibration ratio and normalized entropy.
//!
//! Each is a weighted mean of a per-record loss that depends only on the
//! score and the label, so it is a sum over the distinct scores of the
//! [`ScoreTable`]: a score `p` contributes `pos_w · loss(p, 1) + neg_w ·
//! loss(p, 0)`. Streams and `POST /metrics` thus share the code and agree to
//! rounding (the sums are grouped by score instead of by record).

use super::table::ScoreTable;

/// True when every score (of a record with positive weight) is in [0, 1]
/// and there is at least one such record.
pub fn is_probability(table: &ScoreTable) -> bool {
    match (table.scores().first(), table.scores().last()) {
        (Some(&high), Some(&low)) => high <= 1.0 && low >= 0.0,
        _ => false,
    }
}

/// `Σ w · f(p, y) / Σ w` over the table, `None` when the scores are not
/// probabilities or the total weight is 0.
fn weighted_mean(table: &ScoreTable, loss: impl Fn(f64, bool) -> f64) -> Option<f64> {
    if !is_probability(table) {
        return None;
    }
    let (mut sum, mut total) = (0.0, 0.0);
    for (p, pos, neg) in table.iter() {
        if pos > 0.0 {
            sum += pos * loss(p, true);
        }
        if neg > 0.0 {
            sum += neg * loss(p, false);
        }
        total += pos + neg;
    }
    (total > 0.0).then(|| sum / total)
}

/// The log loss of one record: scikit-learn clips both columns [1 − p, p]
/// to `[eps, 1 − eps]`, so the negative class sees clip(1 − p), not
/// 1 − clip(p).
#[inline]
fn log_term(p: f64, y: bool) -> f64 {
    let clip = |p: f64| p.clamp(f64::EPSILON, 1.0 - f64::EPSILON);
    if y {
        -clip(p).ln()
    } else {
        -clip(1.0 - p).ln()
    }
}

/// The Brier loss of one record, `(y − p)²`.
#[inline]
fn brier_term(p: f64, y: bool) -> f64 {
    let d = f64::from(u8::from(y)) - p;
    d * d
}

/// Binary log loss (cross-entropy, nats) as `sklearn.metrics.log_loss`:
/// probabilities clipped to `[eps, 1 − eps]` with `eps` the f64 machine
/// epsilon, so a confident miss costs `−ln(eps)` instead of infinity.
pub fn log_loss(table: &ScoreTable) -> Option<f64> {
    weighted_mean(table, log_term)
}

/// Brier score `Σ w (y − p)² / Σ w` (`brier_score_loss`).
pub fn brier_score(table: &ScoreTable) -> Option<f64> {
    weighted_mean(table, brier_term)
}

/// [`log_loss`], [`brier_score`], [`calibration_ratio`] and
/// [`normalized_entropy`] of one table from ONE pass over it, each the same
/// bits as its own function (every sum takes the same terms in the same
/// order), and the logarithms taken once for the log loss and the
/// normalized entropy.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProbabilityMetrics {
    pub log_loss: Option<f64>,
    pub brier_score: Option<f64>,
    pub calibration_ratio: Option<f64>,
    pub normalized_entropy: Option<f64>,
}

impl ProbabilityMetrics {
    pub fn of(table: &ScoreTable) -> ProbabilityMetrics {
        if !is_probability(table) {
            return ProbabilityMetrics::undefined();
        }
        let mut sums = ProbabilitySums::default();
        for (p, pos, neg) in table.iter() {
            sums.add(p, pos, neg);
        }
        sums.finish(table)
    }

    /// Every metric undefined: the scores are not probabilities.
    pub(crate) fn undefined() -> ProbabilityMetrics {
        ProbabilityMetrics {
            log_loss: None,
            brier_score: None,
            calibration_ratio: None,
            normalized_entropy: None,
        }
    }
}

/// The running sums of [`ProbabilityMetrics::of`], one distinct score at a
/// time (highest first), so a pass that reads the table for other metrics
/// too can add them in the same order and get the same bits.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct ProbabilitySums {
    log_sum: f64,
    brier_sum: f64,
    total: f64,
    predicted: f64,
    observed: f64,
}

impl ProbabilitySums {
    /// Adds the distinct score `p` with its positive and negative weight.
    #[inline(always)]
    pub(crate) fn add(&mut self, p: f64, pos: f64, neg: f64) {
        if pos > 0.0 {
            self.log_sum += pos * log_term(p, true);
            self.brier_sum += pos * brier_term(p, true);
        }
        if neg > 0.0 {
            self.log_sum += neg * log_term(p, false);
            self.brier_sum += neg * brier_term(p, false);
        }
        self.total += pos + neg;
        self.predicted += p * (pos + neg);
        self.observed += pos;
    }

    /// The metrics of the sums over every score of `table` (whose scores
    /// must be probabilities).
    pub(crate) fn finish(self, table: &ScoreTable) -> ProbabilityMetrics {
        let total = self.total;
        let log_loss = (total > 0.0).then(|| self.log_sum / total);
        ProbabilityMetrics {
            log_loss,
            brier_score: (total > 0.0).then(|| self.brier_sum / total),
            calibration_ratio: (self.observed > 0.0).then(|| self.predicted / self.observed),
            normalized_entropy: log_loss.and_then(|loss| entropy_ratio(table, loss)),
        }
    }
}

/// `Σ w·p / Σ w·y`: mean prediction over observed positive rate (1 =
/// calibrated on average). `None` without positive weight.
pub fn calibration_ratio(table: &ScoreTable) -> Option<f64> {
    if !is_probability(table) {
        return None;
    }
    let (mut predicted, mut observed) = (0.0, 0.0);
    for (p, pos, neg) in table.iter() {
        predicted += p * (pos + neg);
        observed += pos;
    }
    (observed > 0.0).then(|| predicted / observed)
}

/// Normalized entropy (He et al., 2014, "Practical lessons from predicting
/// clicks on ads at Facebook"): the log loss divided by the entropy of the
/// base rate, `H(q) = −q ln q − (1 − q) ln(1 − q)`, `q = Σ w·y / Σ w`; the
/// log loss of always predicting the base rate is `H(q)`, so NE < 1 means the
/// model beats it. `None` when `q` is 0 or 1 (`H = 0`).
pub fn normalized_entropy(table: &ScoreTable) -> Option<f64> {
    entropy_ratio(table, log_loss(table)?)
}

/// `loss / H(q)`, `None` when `H(q)` is 0.
fn entropy_ratio(table: &ScoreTable, loss: f64) -> Option<f64> {
    let (pos, neg) = (table.total_pos(), table.total_neg());
    let q = pos / (pos + neg);
    if !(q > 0.0 && q < 1.0) {
        return None;
    }
    let entropy = -q * q.ln() - (1.0 - q) * (1.0 - q).ln();
    Some(loss / entropy)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(scores: &[f64], labels: &[bool], w: Option<&[f64]>) -> ScoreTable {
        ScoreTable::from_records(scores, labels, w).unwrap()
    }

    #[test]
    fn log_loss_and_brier_by_hand() {
        let t = table(&[0.9, 0.2, 0.6], &[true, false, false], None);
        let expected = -(0.9f64.ln() + 0.8f64.ln() + 0.4f64.ln()) / 3.0;
        assert!((log_loss(&t).unwrap() - expected).abs() < 1e-15);
        let brier = (0.01 + 0.04 + 0.36) / 3.0;
        assert!((brier_score(&t).unwrap() - brier).abs() < 1e-15);
    }

    #[test]
    fn a_confident_miss_is_clipped_not_infinite() {
        let t = table(&[1.0, 0.0], &[false, true], None);
        let got = log_loss(&t).unwrap();
        assert!((got + (f64::EPSILON).ln()).abs() < 1e-12, "{got}");
    }

    #[test]
    fn calibration_ratio_and_normalized_entropy() {
        let t = table(
            &[0.5, 0.5, 0.25, 0.75],
            &[true, false, false, true],
            Some(&[1.0, 1.0, 2.0, 0.0]),
        );
        // Σ w p = 0.5 + 0.5 + 0.5 = 1.5, Σ w y = 1
        assert_eq!(calibration_ratio(&t), Some(1.5));
        let q: f64 = 0.25;
        let h = -q * q.ln() - (1.0 - q) * (1.0 - q).ln();
        let ne = normalized_entropy(&t).unwrap();
        assert!((ne - log_loss(&t).unwrap() / h).abs() < 1e-15);
    }

    #[test]
    fn the_one_pass_equals_each_function_bit_for_bit() {
        let scores = [0.9, 0.2, 0.6, 0.6, 0.0, 1.0, 0.33, 0.2];
        let labels = [true, false, false, true, true, false, true, true];
        let weights = [0.3, 1.7, 2.0, 0.1, 1.0, 0.25, 3.5, 0.0];
        for t in [
            table(&scores, &labels, None),
            table(&scores, &labels, Some(&weights)),
            table(&[0.5, 0.2], &[false, false], None),
            table(&[1.5, 0.2], &[true, false], None),
            ScoreTable::default(),
        ] {
            let all = ProbabilityMetrics::of(&t);
            let bits = |v: Option<f64>| v.map(f64::to_bits);
            assert_eq!(bits(all.log_loss), bits(log_loss(&t)));
            assert_eq!(bits(all.brier_score), bits(brier_score(&t)));
            assert_eq!(bits(all.calibration_ratio), bits(calibration_ratio(&t)));
            assert_eq!(bits(all.normalized_entropy), bits(normalized_entropy(&t)));
        }
    }

    #[test]
    fn out_of_range_or_one_class_is_undefined() {
        let t = table(&[1.5, 0.2], &[true, false], None);
        assert_eq!(log_loss(&t), None);
        assert_eq!(brier_score(&t), None);
        assert_eq!(calibration_ratio(&t), None);
        let one_class = table(&[0.5, 0.2], &[false, false], None);
        assert!(log_loss(&one_class).is_some());
        assert_eq!(calibration_ratio(&one_class), None);
        assert_eq!(normalized_entropy(&one_class), None);
        assert_eq!(log_loss(&ScoreTable::default()), None);
    }
}
