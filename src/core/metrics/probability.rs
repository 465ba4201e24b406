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

/// Binary log loss (cross-entropy, nats) as `sklearn.metrics.log_loss`:
/// probabilities clipped to `[eps, 1 − eps]` with `eps` the f64 machine
/// epsilon, so a confident miss costs `−ln(eps)` instead of infinity.
pub fn log_loss(table: &ScoreTable) -> Option<f64> {
    let clip = |p: f64| p.clamp(f64::EPSILON, 1.0 - f64::EPSILON);
    weighted_mean(table, |p, y| {
        // scikit-learn clips both columns [1 − p, p], so the negative class
        // sees clip(1 − p), not 1 − clip(p).
        if y {
            -clip(p).ln()
        } else {
            -clip(1.0 - p).ln()
        }
    })
}

/// Brier score `Σ w (y − p)² / Σ w` (`brier_score_loss`).
pub fn brier_score(table: &ScoreTable) -> Option<f64> {
    weighted_mean(table, |p, y| {
        let d = f64::from(u8::from(y)) - p;
        d * d
    })
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
    let loss = log_loss(table)?;
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
