//! The compact exact layout for unit-weight records.
//!
//! A stream's per-user aggregates hold most of its memory, and a user's
//! records rarely share a score (100 records of a user over 10,000 possible
//! scores), so a counted cell per distinct score (`f64` score and two `u32`
//! counts, 16 bytes) mostly stores a count of one. Keeping the records
//! themselves, as two sorted score multisets (8 bytes a record), holds the
//! same information exactly in half the memory; equal scores are grouped
//! when read. The aggregate switches to counted cells once records outnumber
//! twice the distinct scores, where cells become the smaller layout.

use crate::core::metrics::auc::{auc_of_twice_u, twice_u_statistic};

/// Unit-weight records as two ascending score multisets in one buffer (one
/// allocation per aggregate): the positives' scores, then the negatives'.
/// Scores are finite and canonical (no `-0.0`), so `==` groups them.
///
/// It also keeps the records' Mann-Whitney statistic, updated on every merge
/// from the cross pairs alone, so a user's AUC (the GAUC query runs it for
/// every user) is a division instead of a walk over the records.
#[derive(Debug, Clone, Default)]
pub(super) struct UnitScores {
    scores: Vec<f64>,
    /// Where the negatives start in `scores`.
    positives: usize,
    /// Distinct scores over both classes.
    distinct: usize,
    /// [`twice_u_statistic`] of the two classes.
    twice_u: u128,
}

impl UnitScores {
    /// From `(score, positive)` records sorted ascending by score; the
    /// iterator is read twice (positives, then negatives).
    pub fn from_sorted<I>(records: I) -> UnitScores
    where
        I: Iterator<Item = (f64, bool)> + Clone,
    {
        let mut scores = Vec::with_capacity(records.clone().count());
        scores.extend(records.clone().filter(|r| r.1).map(|r| r.0));
        let positives = scores.len();
        scores.extend(records.filter(|r| !r.1).map(|r| r.0));
        Self::with_split(scores, positives)
    }

    /// From ascending groups `(score, positives, negatives)` with distinct
    /// scores, as read back from counted cells.
    pub fn from_groups<I>(groups: I) -> UnitScores
    where
        I: Iterator<Item = (f64, usize, usize)> + Clone,
    {
        let records = groups.clone().map(|(_, p, n)| p + n).sum();
        let mut scores = Vec::with_capacity(records);
        for (s, p, _) in groups.clone() {
            scores.extend(std::iter::repeat_n(s, p));
        }
        let positives = scores.len();
        for (s, _, n) in groups {
            scores.extend(std::iter::repeat_n(s, n));
        }
        Self::with_split(scores, positives)
    }

    fn with_split(scores: Vec<f64>, positives: usize) -> UnitScores {
        let mut units = UnitScores {
            scores,
            positives,
            distinct: 0,
            twice_u: 0,
        };
        units.distinct = units.groups().count();
        let (pos, neg) = units.classes();
        units.twice_u = twice_u_statistic(pos, neg);
        units
    }

    /// True when `records` unit-weight records over `distinct` scores take
    /// no more memory as scores (8 bytes each) than as counted cells (16).
    pub fn is_compact(records: usize, distinct: usize) -> bool {
        records <= distinct.saturating_mul(2) && records < u32::MAX as usize
    }

    /// The positives' and the negatives' scores, each ascending.
    pub fn classes(&self) -> (&[f64], &[f64]) {
        self.scores.split_at(self.positives.min(self.scores.len()))
    }

    /// Records held.
    pub fn records(&self) -> usize {
        self.scores.len()
    }

    /// Distinct scores held.
    pub fn distinct(&self) -> usize {
        self.distinct
    }

    /// AUC of the records (ties count one half); `None` with one class.
    pub fn auc(&self) -> Option<f64> {
        let (pos, neg) = self.classes();
        auc_of_twice_u(self.twice_u, pos.len(), neg.len())
    }

    /// Heap bytes held (capacity-based).
    pub fn heap_bytes(&self) -> usize {
        self.scores.capacity() * std::mem::size_of::<f64>()
    }

    /// The records grouped by score: `(score, positives, negatives)`,
    /// ascending from the front and descending from the back.
    pub fn groups(&self) -> UnitGroups<'_> {
        let (pos, neg) = self.classes();
        UnitGroups { pos, neg }
    }

    /// Adds `other`'s records (exact: nothing is summed).
    ///
    /// Merges in place, from the back, into the buffer grown by exactly
    /// `other`'s length: the allocator grows a block within its size class
    /// without moving it, so most merges of a few records into a user's
    /// history allocate nothing, and none leaves spare capacity. (Allocating
    /// a fresh buffer per merge left the freed ones as allocator slack: every
    /// user's buffer is replaced on every large batch.)
    pub fn merge(&mut self, other: &UnitScores) {
        let (b_pos, b_neg) = other.classes();
        let shared = self.shared_scores(other);
        let cross = {
            let (a_pos, a_neg) = self.classes();
            twice_u_statistic(a_pos, b_neg) + twice_u_statistic(b_pos, a_neg)
        };
        let (a_len, a_pos_len) = (self.scores.len(), self.positives);
        self.scores.reserve_exact(other.records());
        self.scores.resize(a_len + other.records(), 0.0);
        // Negatives first: they move up by `b_pos.len()`, out of the way of
        // the positives, and each is read before its slot is written.
        merge_from_back(&mut self.scores[a_pos_len..], a_len - a_pos_len, b_neg);
        merge_from_back(
            &mut self.scores[..a_pos_len + b_pos.len()],
            a_pos_len,
            b_pos,
        );
        self.positives = a_pos_len + b_pos.len();
        self.twice_u += other.twice_u + cross;
        self.distinct = match shared {
            Some(shared) => self.distinct + other.distinct - shared,
            None => self.groups().count(),
        };
    }

    /// Distinct scores held by both, when the smaller holds few enough that
    /// looking each up beats counting the merged groups (`None`).
    fn shared_scores(&self, other: &UnitScores) -> Option<usize> {
        let (small, large) = if self.records() <= other.records() {
            (self, other)
        } else {
            (other, self)
        };
        let lookup = large.records().max(2).ilog2() as usize;
        if small.distinct.saturating_mul(lookup) >= large.records() {
            return None;
        }
        let (pos, neg) = large.classes();
        let contains = |v: &[f64], s: f64| v.get(v.partition_point(|&x| x < s)) == Some(&s);
        let held = |s: f64| contains(pos, s) || contains(neg, s);
        Some(small.groups().filter(|g| held(g.0)).count())
    }
}

/// Merges `b` into `buf`, whose first `a_len` elements are the sorted list
/// `a`; the result (sorted, stable) fills the last `a_len + b.len()` slots.
/// Walking from the back, the write cursor never passes the read cursor
/// into `a`, so no element of `a` is overwritten before it is read.
fn merge_from_back(buf: &mut [f64], a_len: usize, b: &[f64]) {
    let start = buf.len() - (a_len + b.len());
    let (mut i, mut j, mut w) = (a_len, b.len(), buf.len());
    while j > 0 {
        w -= 1;
        if i > 0 && buf[i - 1] > b[j - 1] {
            buf[w] = buf[i - 1];
            i -= 1;
        } else {
            buf[w] = b[j - 1];
            j -= 1;
        }
    }
    // What is left of `a` moves up to the start of the result.
    buf.copy_within(..i, start);
}

/// Groups of equal scores over the two sorted multisets.
pub(super) struct UnitGroups<'a> {
    pos: &'a [f64],
    neg: &'a [f64],
}

/// Removes the leading run of `s` from `run`; returns its length.
fn take_front(run: &mut &[f64], s: f64) -> usize {
    let n = run.iter().take_while(|&&x| x == s).count();
    *run = run.get(n..).unwrap_or_default();
    n
}

/// Removes the trailing run of `s` from `run`; returns its length.
fn take_back(run: &mut &[f64], s: f64) -> usize {
    let n = run.iter().rev().take_while(|&&x| x == s).count();
    *run = run.get(..run.len() - n).unwrap_or_default();
    n
}

impl Iterator for UnitGroups<'_> {
    type Item = (f64, usize, usize);

    fn next(&mut self) -> Option<(f64, usize, usize)> {
        let s = match (self.pos.first(), self.neg.first()) {
            (Some(&p), Some(&n)) => p.min(n),
            (Some(&p), None) => p,
            (None, Some(&n)) => n,
            (None, None) => return None,
        };
        Some((
            s,
            take_front(&mut self.pos, s),
            take_front(&mut self.neg, s),
        ))
    }
}

impl DoubleEndedIterator for UnitGroups<'_> {
    fn next_back(&mut self) -> Option<(f64, usize, usize)> {
        let s = match (self.pos.last(), self.neg.last()) {
            (Some(&p), Some(&n)) => p.max(n),
            (Some(&p), None) => p,
            (None, Some(&n)) => n,
            (None, None) => return None,
        };
        Some((s, take_back(&mut self.pos, s), take_back(&mut self.neg, s)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn of(records: &[(f64, bool)]) -> UnitScores {
        let mut sorted = records.to_vec();
        sorted.sort_by(|a, b| a.0.total_cmp(&b.0));
        UnitScores::from_sorted(sorted.into_iter())
    }

    /// Groups by a plain map, the definition the layout must match.
    fn reference(records: &[(f64, bool)]) -> Vec<(f64, usize, usize)> {
        let mut map = std::collections::BTreeMap::<u64, (usize, usize)>::new();
        for &(s, p) in records {
            let e = map.entry(s.to_bits()).or_default();
            if p {
                e.0 += 1;
            } else {
                e.1 += 1;
            }
        }
        let mut v: Vec<_> = map
            .into_iter()
            .map(|(b, (p, n))| (f64::from_bits(b), p, n))
            .collect();
        v.sort_by(|a, b| a.0.total_cmp(&b.0));
        v
    }

    #[test]
    fn groups_read_both_ways() {
        let u = of(&[
            (0.5, true),
            (0.1, false),
            (0.5, false),
            (0.5, true),
            (0.9, false),
        ]);
        let up: Vec<_> = u.groups().collect();
        assert_eq!(up, vec![(0.1, 0, 1), (0.5, 2, 1), (0.9, 0, 1)]);
        let down: Vec<_> = u.groups().rev().collect();
        assert_eq!(down, up.iter().rev().copied().collect::<Vec<_>>());
        assert_eq!((u.records(), u.distinct()), (5, 3));
    }

    #[test]
    fn compact_while_records_are_at_most_twice_the_scores() {
        assert!(UnitScores::is_compact(200, 100));
        assert!(!UnitScores::is_compact(201, 100));
        assert!(UnitScores::is_compact(0, 0));
    }

    fn records() -> impl Strategy<Value = Vec<(f64, bool)>> {
        prop::collection::vec((0u8..20, any::<bool>()), 0..60).prop_map(|v| {
            v.into_iter()
                .map(|(s, p)| (f64::from(s) / 4.0, p))
                .collect()
        })
    }

    proptest! {
        #[test]
        fn merge_and_groups_equal_the_grouped_union(a in records(), b in records()) {
            let mut merged = of(&a);
            merged.merge(&of(&b));
            let all: Vec<_> = a.iter().chain(&b).copied().collect();
            let want = reference(&all);
            let got: Vec<_> = merged.groups().collect();
            prop_assert_eq!(&got, &want);
            let mut down: Vec<_> = merged.groups().rev().collect();
            down.reverse();
            prop_assert_eq!(&down, &want);
            prop_assert_eq!(merged.distinct(), want.len());
            let whole = of(&all);
            prop_assert_eq!(merged.auc().map(f64::to_bits), whole.auc().map(f64::to_bits));
            prop_assert_eq!(merged.twice_u, whole.twice_u);
            let back = UnitScores::from_groups(want.iter().copied());
            prop_assert_eq!(back.groups().collect::<Vec<_>>(), want);
        }
    }
}
