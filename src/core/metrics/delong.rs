//! DeLong's variance of the AUC and the confidence interval built on it, as
//! R's pROC computes them (`var(roc, method = "delong")`,
//! `ci.auc(roc, method = "delong")`).
//!
//! DeLong, DeLong & Clarke-Pearson (1988) write the AUC of `m` positives `X`
//! and `n` negatives `Y` as the mean of the placements
//! `V10(X_i) = (1/n) Σ_j ψ(X_i, Y_j)` (over the negatives) and
//! `V01(Y_j) = (1/m) Σ_i ψ(X_i, Y_j)` (over the positives), `ψ` = 1 for a win,
//! 1/2 for a tie, and estimate
//! `Var(AUC) = S10 / m + S01 / n` with `S10`, `S01` the sample variances
//! (denominators `m − 1`, `n − 1`) of the two placement vectors.
//!
//! Sun & Xu (2014, "Fast implementation of DeLong's algorithm for comparing
//! the areas under correlated receiver operating characteristic curves")
//! get every placement from midranks after one sort, `O(n log n)` instead of
//! the `O(m n)` pair loop. The [`ScoreTable`] is that sort already done: the
//! records are grouped by distinct score, descending, so a positive's
//! placement is (negatives strictly below + half the tied negatives) / n — a
//! suffix sum — and a negative's is (positives strictly above + half the tied
//! positives) / m — a prefix sum. Every record of a group shares its
//! placement, so the variance sums are weighted by the group counts and the
//! whole computation is `O(distinct scores)` after the sort.

use super::stats::z_critical;
use super::table::{canonical_zero, ScoreTable, TableWeights};

/// The DeLong placements of one table, per distinct score (descending).
#[derive(Debug, Clone, PartialEq)]
pub struct Placements {
    /// `V10` of the positives at each distinct score.
    pub positive: Vec<f64>,
    /// `V01` of the negatives at each distinct score.
    pub negative: Vec<f64>,
    /// The AUC as pROC's `theta`: the mean positive placement.
    pub theta: f64,
    /// Number of positives, `m`.
    pub m: f64,
    /// Number of negatives, `n`.
    pub n: f64,
}

impl Placements {
    /// Placements of a table of counts; `None` when a class is empty.
    pub fn of(table: &ScoreTable) -> Option<Placements> {
        let (m, n) = (table.total_pos(), table.total_neg());
        if !(m > 0.0 && n > 0.0) {
            return None;
        }
        let len = table.len();
        let mut positive = vec![0.0; len];
        let mut negative = vec![0.0; len];
        // Scores descend, so the positives above group g are a prefix sum...
        let mut pos_above = 0.0;
        for (&p, v) in table.pos_weights().iter().zip(&mut negative) {
            *v = (pos_above + p / 2.0) / m;
            pos_above += p;
        }
        // ...and the negatives below it a suffix sum.
        let mut neg_below = 0.0;
        for (&q, v) in table.neg_weights().iter().zip(&mut positive).rev() {
            *v = (neg_below + q / 2.0) / n;
            neg_below += q;
        }
        let theta = weighted_sum(table.pos_weights(), &positive) / m;
        Some(Placements {
            positive,
            negative,
            theta,
            m,
            n,
        })
    }

    /// `(S10, S01)`: the sample variances of the positive and the negative
    /// placements around `theta`, as pROC (denominators `m − 1`, `n − 1`).
    fn sample_variances(&self, table: &ScoreTable) -> (f64, f64) {
        let s10 =
            weighted_squares(table.pos_weights(), &self.positive, self.theta) / (self.m - 1.0);
        let s01 =
            weighted_squares(table.neg_weights(), &self.negative, self.theta) / (self.n - 1.0);
        (s10, s01)
    }

    /// DeLong's variance of the AUC; `None` with fewer than two records of
    /// either class (pROC answers `NA` there).
    pub fn variance(&self, table: &ScoreTable) -> Option<f64> {
        if self.m < 2.0 || self.n < 2.0 {
            return None;
        }
        let (s10, s01) = self.sample_variances(table);
        Some(s10 / self.m + s01 / self.n)
    }

    /// The placement of each record, given its score and label: the group of
    /// the score is found by binary search in the table. Used by the paired
    /// test, which needs both models' placements record by record.
    pub fn per_record(&self, table: &ScoreTable, scores: &[f64], labels: &[bool]) -> Vec<f64> {
        let distinct = table.scores();
        scores
            .iter()
            .zip(labels)
            .map(|(&s, &positive)| {
                let s = canonical_zero(s);
                let g = distinct.partition_point(|&d| d > s);
                let v = if positive {
                    &self.positive
                } else {
                    &self.negative
                };
                v.get(g).copied().unwrap_or(f64::NAN)
            })
            .collect()
    }
}

fn weighted_sum(counts: &[f64], values: &[f64]) -> f64 {
    counts.iter().zip(values).map(|(c, v)| c * v).sum()
}

fn weighted_squares(counts: &[f64], values: &[f64], center: f64) -> f64 {
    counts
        .iter()
        .zip(values)
        .map(|(c, v)| c * (v - center) * (v - center))
        .sum()
}

/// The DeLong confidence interval of the AUC.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AucCi {
    pub lower: f64,
    pub upper: f64,
    /// `sqrt` of DeLong's variance.
    pub std_error: f64,
    pub level: f64,
}

/// Why a DeLong quantity is not given.
pub fn delong_unavailable(table: &ScoreTable) -> Option<String> {
    match table.weights() {
        TableWeights::Sample => {
            return Some("DeLong's variance is defined for unweighted records only, and sample weights other than 0 and 1 were given".to_owned())
        }
        TableWeights::Approximate => {
            return Some("the score aggregate was compacted, and DeLong's variance needs the exact scores".to_owned())
        }
        TableWeights::Counts => {}
    }
    let (m, n) = (table.total_pos(), table.total_neg());
    (m < 2.0 || n < 2.0).then(|| {
        format!("DeLong's variance needs at least two positives and two negatives, and there are {m} positives and {n} negatives")
    })
}

/// DeLong's variance of the table's AUC, or the reason it is not given
/// (sample weights, a compacted aggregate, fewer than two of a class).
pub fn delong_variance(table: &ScoreTable) -> Result<(Placements, f64), String> {
    if let Some(reason) = delong_unavailable(table) {
        return Err(reason);
    }
    let placements = Placements::of(table).ok_or_else(|| "a class is empty".to_owned())?;
    let variance = placements
        .variance(table)
        .ok_or_else(|| "a class has fewer than two records".to_owned())?;
    Ok((placements, variance))
}

/// `(theta, variance)` of [`delong_variance`], the same bits, without the
/// two placement vectors (at a million distinct scores they are 16 MB of
/// fresh, zeroed memory per request): for a table of exact integer counts
/// ([`ScoreTable::exact_totals`]) a positive's suffix sum of negatives
/// below is the total minus a prefix sum, exactly, so both placements come
/// in one forward pass, computed again for the variance sums.
fn theta_and_variance(table: &ScoreTable) -> Result<(f64, f64), String> {
    if let Some(reason) = delong_unavailable(table) {
        return Err(reason);
    }
    let Some((m, n)) = table.exact_totals() else {
        let (placements, variance) = delong_variance(table)?;
        return Ok((placements.theta, variance));
    };
    let theta = placements_of_counts(table, m, n)
        .map(|(p, v, _, _)| p * v)
        .sum::<f64>()
        / m;
    let (mut s10, mut s01) = (0.0, 0.0);
    for (p, v10, q, v01) in placements_of_counts(table, m, n) {
        s10 += p * (v10 - theta) * (v10 - theta);
        s01 += q * (v01 - theta) * (v01 - theta);
    }
    // A sum of terms >= +0 starting at +0 has the bits of `Iterator::sum`.
    let (s10, s01) = (s10 / (m - 1.0), s01 / (n - 1.0));
    Ok((theta, s10 / m + s01 / n))
}

/// `(pos, V10, neg, V01)` per distinct score of a table of exact counts
/// with `m` positives and `n` negatives, descending: the values
/// [`Placements::of`] stores.
fn placements_of_counts(
    table: &ScoreTable,
    m: f64,
    n: f64,
) -> impl Iterator<Item = (f64, f64, f64, f64)> + '_ {
    let (mut pos_above, mut neg_through) = (0.0, 0.0);
    table
        .pos_weights()
        .iter()
        .zip(table.neg_weights())
        .map(move |(&p, &q)| {
            let v01 = (pos_above + p / 2.0) / m;
            pos_above += p;
            neg_through += q;
            let v10 = ((n - neg_through) + q / 2.0) / n;
            (p, v10, q, v01)
        })
}

/// `ci.auc(method = "delong")`: AUC ± z·sqrt(var), clipped to [0, 1], at
/// confidence `level` (in (0, 1), checked with the parameters).
///
/// # Errors
/// The sentence for `warnings` when the interval is undefined.
pub fn auc_ci(table: &ScoreTable, level: f64) -> Result<AucCi, String> {
    let (theta, variance) =
        theta_and_variance(table).map_err(|reason| format!("auc_ci is undefined: {reason}"))?;
    let std_error = variance.sqrt();
    let half = z_critical(level) * std_error;
    Ok(AucCi {
        lower: (theta - half).clamp(0.0, 1.0),
        upper: (theta + half).clamp(0.0, 1.0),
        std_error,
        level,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// DeLong's variance straight from its definition: every (positive,
    /// negative) pair, `O(m n)`.
    fn variance_by_pairs(scores: &[f64], labels: &[bool]) -> Option<f64> {
        let xs: Vec<f64> = scores
            .iter()
            .zip(labels)
            .filter(|p| *p.1)
            .map(|p| *p.0)
            .collect();
        let ys: Vec<f64> = scores
            .iter()
            .zip(labels)
            .filter(|p| !*p.1)
            .map(|p| *p.0)
            .collect();
        let (m, n) = (xs.len() as f64, ys.len() as f64);
        if m < 2.0 || n < 2.0 {
            return None;
        }
        let psi = |x: f64, y: f64| {
            if x > y {
                1.0
            } else if x == y {
                0.5
            } else {
                0.0
            }
        };
        let v10: Vec<f64> = xs
            .iter()
            .map(|&x| ys.iter().map(|&y| psi(x, y)).sum::<f64>() / n)
            .collect();
        let v01: Vec<f64> = ys
            .iter()
            .map(|&y| xs.iter().map(|&x| psi(x, y)).sum::<f64>() / m)
            .collect();
        let theta = v10.iter().sum::<f64>() / m;
        let s10 = v10.iter().map(|v| (v - theta).powi(2)).sum::<f64>() / (m - 1.0);
        let s01 = v01.iter().map(|v| (v - theta).powi(2)).sum::<f64>() / (n - 1.0);
        Some(s10 / m + s01 / n)
    }

    proptest! {
        /// The pass without placement vectors gives the bits of the
        /// stored placements, on every kind of table.
        #[test]
        fn theta_and_variance_keep_the_bits_of_the_placements(
            records in prop::collection::vec((0u8..12, any::<bool>(), 0u8..3), 0..300)
        ) {
            for table in crate::core::metrics::table::test_tables(&records) {
                let stored = delong_variance(&table).map(|(p, v)| (p.theta.to_bits(), v.to_bits()));
                let streamed = theta_and_variance(&table).map(|(t, v)| (t.to_bits(), v.to_bits()));
                prop_assert_eq!(stored, streamed);
            }
        }

        #[test]
        fn fast_variance_equals_the_pairwise_definition(
            records in prop::collection::vec((0u8..12, any::<bool>()), 0..60)
        ) {
            // Scores on a coarse grid, so ties are common.
            let scores: Vec<f64> = records.iter().map(|r| f64::from(r.0) / 4.0).collect();
            let labels: Vec<bool> = records.iter().map(|r| r.1).collect();
            let table = ScoreTable::from_records(&scores, &labels, None).unwrap();
            let fast = delong_variance(&table).ok().map(|(_, v)| v);
            let slow = variance_by_pairs(&scores, &labels);
            match (fast, slow) {
                (Some(f), Some(s)) => prop_assert!((f - s).abs() <= 1e-14 * s.max(1e-300), "{f} vs {s}"),
                (None, None) => {}
                other => prop_assert!(false, "fast and pairwise disagree: {other:?}"),
            }
            if let Some(p) = Placements::of(&table) {
                let by_record = p.per_record(&table, &scores, &labels);
                let m = p.m;
                let theta: f64 = by_record.iter().zip(&labels).filter(|r| *r.1).map(|r| r.0).sum::<f64>() / m;
                prop_assert!((theta - p.theta).abs() < 1e-14);
            }
        }
    }

    #[test]
    fn weights_and_small_classes_have_no_interval() {
        let scores = [0.1, 0.4, 0.35, 0.8];
        let labels = [false, false, true, true];
        let table =
            ScoreTable::from_records(&scores, &labels, Some(&[1.0, 2.0, 1.0, 1.0])).unwrap();
        assert!(auc_ci(&table, 0.95).unwrap_err().contains("sample weights"));
        // weights of 0 and 1 drop rows and count the others: still counts
        let table =
            ScoreTable::from_records(&scores, &labels, Some(&[1.0, 0.0, 1.0, 1.0])).unwrap();
        assert!(auc_ci(&table, 0.95).unwrap_err().contains("two negatives"));
        let table = ScoreTable::from_records(&scores[1..], &labels[1..], None).unwrap();
        assert!(auc_ci(&table, 0.95).unwrap_err().contains("two negatives"));
        let table = ScoreTable::from_records(&scores, &labels, None).unwrap();
        let ci = auc_ci(&table, 0.95).unwrap();
        assert!(ci.lower <= 0.75 && 0.75 <= ci.upper && ci.upper <= 1.0);
    }
}
