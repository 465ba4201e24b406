//! The sorted distinct-score table: the one sort that serves confusion counts,
//! ROC, AUC and (per user) GAUC.
//!
//! A [`ScoreTable`] holds the distinct scores in strictly descending order with
//! the summed positive weight and summed negative weight of each score (plain
//! counts when there are no sample weights). Everything threshold-based is a
//! prefix sum over this table, so after the single `O(n log n)` sort every
//! metric is `O(distinct scores)`.

use super::MetricsError;

/// Distinct scores, descending, with the positive and negative weight at each.
///
/// Invariants: `scores` is strictly descending and finite; `-0.0` is stored as
/// `0.0` (scikit-learn's `np.diff` treats them as one threshold); every entry
/// has `pos + neg > 0` (scores whose rows all have zero weight are dropped, as
/// scikit-learn >= 1.6 drops zero-weight rows before building the ROC curve).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ScoreTable {
    scores: Vec<f64>,
    pos: Vec<f64>,
    neg: Vec<f64>,
}

impl ScoreTable {
    /// Builds the table from records with one sort.
    ///
    /// `labels[i]` is true for a positive. `weights`, when given, must be finite
    /// and >= 0; rows of weight 0 do not appear in the table.
    ///
    /// # Errors
    /// [`MetricsError::LengthMismatch`] when `labels` or `weights` differ in
    /// length from `scores`, [`MetricsError::NonFinite`] for a NaN or infinite
    /// score or weight, [`MetricsError::NegativeWeight`], and
    /// [`MetricsError::TooMany`] past `u32::MAX` records.
    ///
    /// Empty input gives an empty table (every metric of it is undefined).
    pub fn from_records(
        scores: &[f64],
        labels: &[bool],
        weights: Option<&[f64]>,
    ) -> Result<Self, MetricsError> {
        check_records(scores, labels, weights)?;
        let order = descending_order(scores);
        Ok(Self::from_sorted_records(&order, scores, labels, weights))
    }

    /// Builds the table from already-aggregated `(score, pos_weight, neg_weight)`
    /// triples, in any order and with repeated scores allowed (they are summed).
    ///
    /// This is how streams turn per-user (or per-stream) aggregates into the
    /// same table [`ScoreTable::from_records`] would have built from the raw
    /// records, so both paths give identical metrics (up to the order in which
    /// floating-point weights are summed). Triples whose weights sum to 0 are
    /// dropped.
    ///
    /// # Errors
    /// [`MetricsError::NonFinite`] for a non-finite score or weight and
    /// [`MetricsError::NegativeWeight`] for a negative weight; `index` is the
    /// position of the triple in the iteration.
    pub fn from_aggregates(
        items: impl IntoIterator<Item = (f64, f64, f64)>,
    ) -> Result<Self, MetricsError> {
        let mut triples: Vec<(f64, f64, f64)> = Vec::new();
        for (index, (score, pos, neg)) in items.into_iter().enumerate() {
            if !score.is_finite() {
                return Err(MetricsError::NonFinite {
                    field: "scores",
                    index,
                });
            }
            for w in [pos, neg] {
                if !w.is_finite() {
                    return Err(MetricsError::NonFinite {
                        field: "sample_weights",
                        index,
                    });
                }
                if w < 0.0 {
                    return Err(MetricsError::NegativeWeight { index, value: w });
                }
            }
            triples.push((normalize_zero(score), pos, neg));
        }
        triples.sort_unstable_by(|a, b| b.0.total_cmp(&a.0));
        let mut table = ScoreTable::default();
        for (score, pos, neg) in triples {
            table.push_group(score, pos, neg);
        }
        table.drop_empty_groups();
        Ok(table)
    }

    /// Groups records already visited in descending score order (`order` from
    /// [`descending_order`]) into the table. Inputs must have passed
    /// [`check_records`].
    pub(crate) fn from_sorted_records(
        order: &[u32],
        scores: &[f64],
        labels: &[bool],
        weights: Option<&[f64]>,
    ) -> Self {
        let mut table = ScoreTable::default();
        for &i in order {
            let i = i as usize;
            let (Some(&score), Some(&label)) = (scores.get(i), labels.get(i)) else {
                continue;
            };
            let w = weights.and_then(|w| w.get(i).copied()).unwrap_or(1.0);
            let (pos, neg) = if label { (w, 0.0) } else { (0.0, w) };
            table.push_group(normalize_zero(score), pos, neg);
        }
        table.drop_empty_groups();
        table
    }

    /// Adds weight at `score`, which must be <= the last score pushed.
    fn push_group(&mut self, score: f64, pos: f64, neg: f64) {
        match (self.scores.last(), self.pos.last_mut(), self.neg.last_mut()) {
            (Some(&last), Some(p), Some(n)) if last == score => {
                *p += pos;
                *n += neg;
            }
            _ => {
                self.scores.push(score);
                self.pos.push(pos);
                self.neg.push(neg);
            }
        }
    }

    /// Removes scores whose rows all had zero weight (scikit-learn >= 1.6).
    fn drop_empty_groups(&mut self) {
        if self.pos.iter().zip(&self.neg).all(|(p, n)| p + n > 0.0) {
            return;
        }
        let mut keep = 0;
        for i in 0..self.scores.len() {
            if self.pos[i] + self.neg[i] > 0.0 {
                self.scores[keep] = self.scores[i];
                self.pos[keep] = self.pos[i];
                self.neg[keep] = self.neg[i];
                keep += 1;
            }
        }
        self.scores.truncate(keep);
        self.pos.truncate(keep);
        self.neg.truncate(keep);
    }

    /// Distinct scores, strictly descending.
    pub fn scores(&self) -> &[f64] {
        &self.scores
    }

    /// Positive weight at each distinct score.
    pub fn pos_weights(&self) -> &[f64] {
        &self.pos
    }

    /// Negative weight at each distinct score.
    pub fn neg_weights(&self) -> &[f64] {
        &self.neg
    }

    /// `(score, pos_weight, neg_weight)` in descending score order; feeding
    /// these back to [`ScoreTable::from_aggregates`] rebuilds the same table.
    pub fn iter(&self) -> impl Iterator<Item = (f64, f64, f64)> + '_ {
        self.scores
            .iter()
            .zip(&self.pos)
            .zip(&self.neg)
            .map(|((&s, &p), &n)| (s, p, n))
    }

    /// Number of distinct scores.
    pub fn len(&self) -> usize {
        self.scores.len()
    }

    /// True when no record of positive weight was seen.
    pub fn is_empty(&self) -> bool {
        self.scores.is_empty()
    }

    /// Total positive weight (the positive count without weights).
    pub fn total_pos(&self) -> f64 {
        self.pos.iter().sum()
    }

    /// Total negative weight (the negative count without weights).
    pub fn total_neg(&self) -> f64 {
        self.neg.iter().sum()
    }
}

/// `-0.0` and `0.0` are one score.
fn normalize_zero(score: f64) -> f64 {
    if score == 0.0 {
        0.0
    } else {
        score
    }
}

/// A `u64` whose ascending order is the descending order of the finite f64
/// `score` (with `-0.0` equal to `0.0`): the usual sign-flip trick, inverted.
fn descending_key(score: f64) -> u64 {
    let bits = normalize_zero(score).to_bits();
    let ascending = if bits >> 63 == 1 {
        !bits
    } else {
        bits | (1 << 63)
    };
    !ascending
}

/// Record indices in descending score order: the one sort of the records.
///
/// Ties come in an unspecified order; every consumer groups equal scores, so
/// the order within a tie never changes a result. Sorting integer keys with an
/// LSD radix sort keeps 1M records at a few milliseconds.
pub fn descending_order(scores: &[f64]) -> Vec<u32> {
    let mut keyed: Vec<(u64, u32)> = scores
        .iter()
        .enumerate()
        .map(|(i, &s)| (descending_key(s), i as u32))
        .collect();
    radix_sort(&mut keyed);
    keyed.into_iter().map(|(_, i)| i).collect()
}

/// LSD radix sort on the key, 16 bits per pass, skipping passes where every
/// key has the same digit (common for scores in [0, 1], whose top bits agree).
fn radix_sort(items: &mut Vec<(u64, u32)>) {
    const BITS: u32 = 16;
    const BUCKETS: usize = 1 << BITS;
    if items.len() < 256 {
        items.sort_unstable();
        return;
    }
    let mut buffer = vec![(0u64, 0u32); items.len()];
    let mut counts = vec![0usize; BUCKETS];
    for pass in 0..(64 / BITS) {
        let shift = pass * BITS;
        let digit = |k: u64| ((k >> shift) as usize) & (BUCKETS - 1);
        counts.iter_mut().for_each(|c| *c = 0);
        for &(k, _) in items.iter() {
            counts[digit(k)] += 1;
        }
        if counts.contains(&items.len()) {
            continue;
        }
        let mut sum = 0;
        for c in counts.iter_mut() {
            let here = *c;
            *c = sum;
            sum += here;
        }
        for &item in items.iter() {
            let d = digit(item.0);
            buffer[counts[d]] = item;
            counts[d] += 1;
        }
        std::mem::swap(items, &mut buffer);
    }
}

/// Checks lengths, finiteness and weight signs of binary records.
pub(crate) fn check_records(
    scores: &[f64],
    labels: &[bool],
    weights: Option<&[f64]>,
) -> Result<(), MetricsError> {
    if scores.len() > u32::MAX as usize {
        return Err(MetricsError::TooMany {
            len: scores.len(),
            max: u32::MAX as usize,
        });
    }
    if labels.len() != scores.len() {
        return Err(MetricsError::LengthMismatch {
            field: "labels",
            len: labels.len(),
            expected: scores.len(),
        });
    }
    if let Some(index) = scores.iter().position(|s| !s.is_finite()) {
        return Err(MetricsError::NonFinite {
            field: "predictions",
            index,
        });
    }
    if let Some(w) = weights {
        check_weights(w, scores.len())?;
    }
    Ok(())
}

/// Sample weights: same length as the predictions, finite and >= 0.
pub(crate) fn check_weights(weights: &[f64], expected: usize) -> Result<(), MetricsError> {
    if weights.len() != expected {
        return Err(MetricsError::LengthMismatch {
            field: "sample_weights",
            len: weights.len(),
            expected,
        });
    }
    for (index, &w) in weights.iter().enumerate() {
        if !w.is_finite() {
            return Err(MetricsError::NonFinite {
                field: "sample_weights",
                index,
            });
        }
        if w < 0.0 {
            return Err(MetricsError::NegativeWeight { index, value: w });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_ties_and_sorts_descending() {
        let t = ScoreTable::from_records(
            &[0.1, 0.4, 0.35, 0.8, 0.4],
            &[false, false, true, true, true],
            None,
        )
        .unwrap();
        assert_eq!(t.scores(), &[0.8, 0.4, 0.35, 0.1]);
        assert_eq!(t.pos_weights(), &[1.0, 1.0, 1.0, 0.0]);
        assert_eq!(t.neg_weights(), &[0.0, 1.0, 0.0, 1.0]);
    }

    #[test]
    fn drops_scores_whose_rows_all_weigh_zero() {
        let t = ScoreTable::from_records(
            &[0.9, 0.5, 0.5, 0.1],
            &[true, false, true, false],
            Some(&[2.0, 0.0, 0.0, 1.5]),
        )
        .unwrap();
        assert_eq!(t.scores(), &[0.9, 0.1]);
        assert_eq!(t.total_pos(), 2.0);
        assert_eq!(t.total_neg(), 1.5);
    }

    #[test]
    fn negative_zero_and_zero_are_one_score() {
        let t = ScoreTable::from_records(&[-0.0, 0.0, -1.0], &[true, false, false], None).unwrap();
        assert_eq!(t.len(), 2);
        assert_eq!(t.pos_weights()[0], 1.0);
        assert_eq!(t.neg_weights()[0], 1.0);
    }

    #[test]
    fn aggregates_rebuild_the_record_table() {
        let scores: Vec<f64> = (0..1000)
            .map(|i| ((i * 7919) % 97) as f64 / 13.0 - 3.0)
            .collect();
        let labels: Vec<bool> = (0..1000).map(|i| (i * 31) % 5 < 2).collect();
        let t = ScoreTable::from_records(&scores, &labels, None).unwrap();
        let agg = ScoreTable::from_aggregates(
            scores
                .iter()
                .zip(&labels)
                .map(|(&s, &l)| (s, f64::from(u8::from(l)), f64::from(u8::from(!l)))),
        )
        .unwrap();
        assert_eq!(t, agg);
        assert_eq!(ScoreTable::from_aggregates(t.iter()).unwrap(), t);
    }

    #[test]
    fn radix_order_matches_a_comparison_sort() {
        let scores: Vec<f64> = (0..5000)
            .map(|i| ((i as f64) * 0.618).sin() * 1e3 * if i % 3 == 0 { -1.0 } else { 1.0 })
            .collect();
        let order = descending_order(&scores);
        let sorted: Vec<f64> = order.iter().map(|&i| scores[i as usize]).collect();
        let mut expected = scores.clone();
        expected.sort_by(|a, b| b.total_cmp(a));
        assert_eq!(sorted, expected);
    }

    #[test]
    fn rejects_bad_records_naming_the_problem() {
        assert!(matches!(
            ScoreTable::from_records(&[0.1, 0.2], &[true], None),
            Err(MetricsError::LengthMismatch {
                field: "labels",
                len: 1,
                expected: 2
            })
        ));
        assert!(matches!(
            ScoreTable::from_records(&[0.1, f64::NAN], &[true, false], None),
            Err(MetricsError::NonFinite {
                field: "predictions",
                index: 1
            })
        ));
        assert!(matches!(
            ScoreTable::from_records(&[0.1, 0.2], &[true, false], Some(&[1.0, -1.0])),
            Err(MetricsError::NegativeWeight { index: 1, .. })
        ));
        assert!(matches!(
            ScoreTable::from_aggregates([(0.5, 1.0, f64::INFINITY)]),
            Err(MetricsError::NonFinite { index: 0, .. })
        ));
    }
}
