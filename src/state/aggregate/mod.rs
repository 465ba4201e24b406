//! Mergeable score aggregates: the sufficient statistics of a binary evaluation.
//!
//! Every metric `POST /metrics` reports for binary scores (confusion counts at any
//! threshold, the exact ROC, AUC) depends on the records only through, per
//! distinct score `s`, the summed weight of positives `P(s)` and of negatives
//! `N(s)` (rows of weight 0 are dropped, as scikit-learn's `roc_curve` does),
//! plus the plain record counts. A [`ScoreAggregate`] keeps exactly that, so
//! `merge(ingest(a), ingest(b)) == ingest(a ++ b)` and a stream's metrics equal
//! the one-shot metrics over the concatenation of its batches.
//!
//! # Bounded form
//! Past a distinct-score budget the aggregate is *compacted*: adjacent scores
//! are merged into bins `[lo, hi]` holding their summed weights. Bins are
//! disjoint intervals, so every pair of records from different bins keeps its
//! exact order; only pairs inside one bin are counted as ties (one half). A
//! bin's true contribution to the AUC numerator lies in `[0, P_b * N_b]`, so the
//! AUC error is at most `sum_b P_b * N_b / 2 / (P * N)` ([`ScoreAggregate::auc_error_bound`]).

mod codec;
mod units;

use std::borrow::Cow;
use std::cmp::Ordering;

use crate::core::merge::merge_by;
use crate::core::metrics::auc::auc_of_groups;
use crate::core::metrics::canonical_zero;
/// Plain (unweighted) record counts, the core's type: a stream reports them as `POST /metrics` does.
pub use crate::core::metrics::RecordCounts;
pub use codec::{write_string, CodecError, Reader};
use units::{UnitGroups, UnitScores};

/// One bin of a compacted aggregate: the summed weights of every record whose
/// score lies in `[lo, hi]`. An exact score is a bin with `lo == hi`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bin {
    pub lo: f64,
    pub hi: f64,
    pub pos: f64,
    pub neg: f64,
}

impl Bin {
    /// The score that stands for the bin at query time: the score itself when
    /// exact, else the midpoint (inside the bin, so the order between bins holds).
    pub fn representative(&self) -> f64 {
        if self.lo == self.hi {
            self.lo
        } else {
            self.lo + (self.hi - self.lo) / 2.0
        }
    }

    /// Upper bound on this bin's contribution to the AUC numerator error.
    fn tie_error(&self) -> f64 {
        if self.lo == self.hi {
            0.0
        } else {
            self.pos * self.neg / 2.0
        }
    }
}

/// One exact score with unit-weight counts: 16 bytes, the common case
/// (records without `weight`), half of two `f64` weights.
#[derive(Debug, Clone, Copy, PartialEq)]
struct CountCell {
    score: f64,
    pos: u32,
    neg: u32,
}

/// One exact score with real (summed sample) weights.
#[derive(Debug, Clone, Copy, PartialEq)]
struct RealCell {
    score: f64,
    pos: f64,
    neg: f64,
}

/// What the sorted merge needs of a cell.
trait Cell: Copy {
    fn score(&self) -> f64;
    /// Adds `other` (same score); false when the sum does not fit.
    fn absorb(&mut self, other: &Self) -> bool;
}

impl Cell for CountCell {
    fn score(&self) -> f64 {
        self.score
    }
    fn absorb(&mut self, other: &Self) -> bool {
        match (
            self.pos.checked_add(other.pos),
            self.neg.checked_add(other.neg),
        ) {
            (Some(p), Some(n)) => {
                self.pos = p;
                self.neg = n;
                true
            }
            _ => false,
        }
    }
}

impl Cell for RealCell {
    fn score(&self) -> f64 {
        self.score
    }
    fn absorb(&mut self, other: &Self) -> bool {
        self.pos += other.pos;
        self.neg += other.neg;
        true
    }
}

impl From<CountCell> for RealCell {
    fn from(c: CountCell) -> Self {
        RealCell {
            score: c.score,
            pos: f64::from(c.pos),
            neg: f64::from(c.neg),
        }
    }
}

/// The distinct scores, ascending, with their weights. Unit-weight records
/// are kept as their scores while that is smaller ([`UnitScores`]), then as
/// `u32` counts; the first non-unit weight (or a count past `u32::MAX`)
/// promotes the aggregate to real weights; a compaction turns it into bins.
#[derive(Debug, Clone)]
enum Entries {
    Units(UnitScores),
    Counts(Vec<CountCell>),
    Real(Vec<RealCell>),
    /// Disjoint bins sorted by `lo` (after a compaction).
    Binned(Vec<Bin>),
}

impl Entries {
    /// Unit scores while they are the smaller layout, else counted cells.
    fn from_units(units: UnitScores) -> Entries {
        if UnitScores::is_compact(units.records(), units.distinct()) {
            Entries::Units(units)
        } else if units.records() < u32::MAX as usize {
            Entries::Counts(count_cells_of(&units))
        } else {
            Entries::Real(real_cells_of(&units))
        }
    }

    /// The exact entries as counted cells; `None` for real weights and bins.
    fn count_cells(&self) -> Option<Cow<'_, [CountCell]>> {
        match self {
            Entries::Counts(c) => Some(Cow::Borrowed(c)),
            Entries::Units(u) if u.records() < u32::MAX as usize => {
                Some(Cow::Owned(count_cells_of(u)))
            }
            Entries::Units(_) | Entries::Real(_) | Entries::Binned(_) => None,
        }
    }

    /// The entries as real-weight cells (bins by their representative).
    fn real_cells(&self) -> Cow<'_, [RealCell]> {
        match self {
            Entries::Real(c) => Cow::Borrowed(c),
            Entries::Counts(c) => Cow::Owned(to_real(c)),
            Entries::Units(u) => Cow::Owned(real_cells_of(u)),
            Entries::Binned(b) => Cow::Owned(
                b.iter()
                    .map(|b| RealCell {
                        score: b.representative(),
                        pos: b.pos,
                        neg: b.neg,
                    })
                    .collect(),
            ),
        }
    }
}

/// Aggregate of a set of binary records (see the module docs).
///
/// Equality is by content (record counts and entries), not by layout: the
/// same records held as unit scores or as counted cells are equal.
#[derive(Debug, Clone)]
pub struct ScoreAggregate {
    entries: Entries,
    counts: RecordCounts,
}

impl Default for ScoreAggregate {
    fn default() -> Self {
        ScoreAggregate {
            entries: Entries::Units(UnitScores::default()),
            counts: RecordCounts::default(),
        }
    }
}

impl PartialEq for ScoreAggregate {
    fn eq(&self, other: &Self) -> bool {
        self.counts == other.counts && self.bins() == other.bins()
    }
}

/// One record as staged for aggregation: score, label, weight.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Record {
    pub score: f64,
    pub positive: bool,
    pub weight: f64,
}

/// Releases capacity only when it is a noticeable waste, so merges that
/// fold a few duplicate scores do not pay a reallocation each time.
fn trim<T>(v: &mut Vec<T>) {
    if v.capacity() - v.len() > v.len() / 8 + 2 {
        v.shrink_to_fit();
    }
}

/// Appends `cell` to sorted `out`, folding it into the last cell on an equal
/// score. False when the fold overflows.
fn push_cell<C: Cell>(out: &mut Vec<C>, cell: C) -> bool {
    match out.last_mut() {
        Some(last) if last.score() == cell.score() => last.absorb(&cell),
        _ => {
            out.push(cell);
            true
        }
    }
}

/// Sorted merge of two cell lists (ascending score); `None` on overflow.
fn merge_cells<C: Cell>(a: &[C], b: &[C]) -> Option<Vec<C>> {
    let mut out = Vec::with_capacity(a.len() + b.len());
    let ascending = |x: &C, y: &C| x.score().total_cmp(&y.score()) == Ordering::Less;
    for &next in merge_by(a, b, ascending) {
        if !push_cell(&mut out, next) {
            return None;
        }
    }
    trim(&mut out);
    Some(out)
}

/// Unit scores as one cell per distinct score, built by `cell(score, pos, neg)`.
fn cells_of<C>(units: &UnitScores, cell: impl Fn(f64, usize, usize) -> C) -> Vec<C> {
    let mut cells = Vec::with_capacity(units.distinct());
    cells.extend(
        units
            .groups()
            .map(|(score, pos, neg)| cell(score, pos, neg)),
    );
    cells
}

/// Unit scores as counted cells; the caller checks that fewer than
/// `u32::MAX` records are held, so no count truncates.
fn count_cells_of(units: &UnitScores) -> Vec<CountCell> {
    cells_of(units, |score, pos, neg| CountCell {
        score,
        pos: pos as u32,
        neg: neg as u32,
    })
}

fn real_cells_of(units: &UnitScores) -> Vec<RealCell> {
    cells_of(units, |score, pos, neg| RealCell {
        score,
        pos: pos as f64,
        neg: neg as f64,
    })
}

fn to_real(cells: &[CountCell]) -> Vec<RealCell> {
    cells.iter().copied().map(RealCell::from).collect()
}

/// Iterator over `(pos, neg)` weights from the highest score down.
pub struct GroupsDesc<'a>(GroupsInner<'a>);

enum GroupsInner<'a> {
    Units(std::iter::Rev<UnitGroups<'a>>),
    Counts(std::iter::Rev<std::slice::Iter<'a, CountCell>>),
    Real(std::iter::Rev<std::slice::Iter<'a, RealCell>>),
    Bins(std::iter::Rev<std::slice::Iter<'a, Bin>>),
}

impl Iterator for GroupsDesc<'_> {
    type Item = (f64, f64);
    fn next(&mut self) -> Option<(f64, f64)> {
        match &mut self.0 {
            GroupsInner::Units(it) => it.next().map(|(_, p, n)| (p as f64, n as f64)),
            GroupsInner::Counts(it) => it.next().map(|c| (f64::from(c.pos), f64::from(c.neg))),
            GroupsInner::Real(it) => it.next().map(|c| (c.pos, c.neg)),
            GroupsInner::Bins(it) => it.next().map(|b| (b.pos, b.neg)),
        }
    }
}

impl ScoreAggregate {
    /// Aggregates `records` (any order; sorted in place). Scores and weights
    /// must be finite and weights `>= 0` (checked at the HTTP edge); a
    /// zero-weight record counts in [`RecordCounts`] but adds no score, as
    /// scikit-learn drops it from the ROC.
    pub fn from_records(records: &mut [Record]) -> ScoreAggregate {
        Self::from_records_by(records, |r| r.score, |r| *r)
    }

    /// [`ScoreAggregate::from_records`] over any staged representation:
    /// `score` reads the sort key, `view` the whole record. Lets the batch
    /// stager keep records in a packed form (16 bytes, weights in a side
    /// table) without a conversion pass or a second buffer.
    pub fn from_records_by<T>(
        records: &mut [T],
        score: impl Fn(&T) -> f64,
        view: impl Fn(&T) -> Record,
    ) -> ScoreAggregate {
        records.sort_unstable_by(|a, b| score(a).total_cmp(&score(b)));
        Self::from_sorted_by(records, view)
    }

    /// [`ScoreAggregate::from_records_by`] of records already sorted
    /// ascending by score (`f64::total_cmp`'s order; `-0.0` and `0.0` may
    /// come in either order, they are one score here). Why: the stream fold
    /// sorts a large chunk once and hands every user's run over in order,
    /// instead of sorting each run again. The order of records with equal
    /// scores does not matter for unit weights (counts); for real weights it
    /// is the order their weights are summed in.
    pub fn from_sorted_by<T>(records: &[T], view: impl Fn(&T) -> Record) -> ScoreAggregate {
        debug_assert!(records.is_sorted_by(|a, b| {
            canonical_zero(view(a).score) <= canonical_zero(view(b).score)
        }));
        let mut counts = RecordCounts::default();
        let mut unit = records.len() < u32::MAX as usize;
        // Counting the distinct scores first sizes the cells exactly: a batch
        // of a million records with ten thousand scores does not briefly hold
        // a million-cell buffer. One pass counts them with the records.
        let (mut distinct, mut kept_records) = (0usize, 0usize);
        let mut last = None;
        for r in records.iter().map(&view) {
            counts.count += 1;
            if r.positive {
                counts.positives += 1;
            } else {
                counts.negatives += 1;
            }
            unit &= r.weight == 1.0 || r.weight == 0.0;
            if r.weight != 0.0 {
                let s = canonical_zero(r.score);
                kept_records += 1;
                if last != Some(s) {
                    distinct += 1;
                    last = Some(s);
                }
            }
        }
        let kept = || records.iter().map(&view).filter(|r| r.weight != 0.0);
        let entries = if unit && UnitScores::is_compact(kept_records, distinct) {
            Entries::Units(UnitScores::from_sorted(
                kept().map(|r| (canonical_zero(r.score), r.positive)),
            ))
        } else if unit {
            let mut cells: Vec<CountCell> = Vec::with_capacity(distinct);
            for r in kept() {
                let (pos, neg) = if r.positive { (1, 0) } else { (0, 1) };
                // Cannot overflow: fewer than u32::MAX records.
                push_cell(
                    &mut cells,
                    CountCell {
                        score: canonical_zero(r.score),
                        pos,
                        neg,
                    },
                );
            }
            trim(&mut cells);
            Entries::Counts(cells)
        } else {
            let mut cells: Vec<RealCell> = Vec::with_capacity(distinct);
            for r in kept() {
                let (pos, neg) = if r.positive {
                    (r.weight, 0.0)
                } else {
                    (0.0, r.weight)
                };
                push_cell(
                    &mut cells,
                    RealCell {
                        score: canonical_zero(r.score),
                        pos,
                        neg,
                    },
                );
            }
            trim(&mut cells);
            Entries::Real(cells)
        };
        ScoreAggregate { entries, counts }
    }

    /// Plain record counts.
    pub fn counts(&self) -> RecordCounts {
        self.counts
    }

    /// Number of distinct scores (or bins once compacted).
    pub fn len(&self) -> usize {
        match &self.entries {
            Entries::Units(u) => u.distinct(),
            Entries::Counts(c) => c.len(),
            Entries::Real(c) => c.len(),
            Entries::Binned(b) => b.len(),
        }
    }

    /// True when no record with positive weight was added.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// True until a compaction merged distinct scores.
    pub fn is_exact(&self) -> bool {
        match &self.entries {
            Entries::Binned(bins) => bins.iter().all(|b| b.lo == b.hi),
            _ => true,
        }
    }

    /// Every entry as `(score, positive weight, negative weight)`, scores ascending.
    /// Bins give their [`Bin::representative`] score.
    pub fn iter(&self) -> Box<dyn Iterator<Item = (f64, f64, f64)> + '_> {
        match &self.entries {
            Entries::Units(u) => {
                Box::new(u.groups().map(|(s, pos, neg)| (s, pos as f64, neg as f64)))
            }
            Entries::Counts(c) => Box::new(
                c.iter()
                    .map(|c| (c.score, f64::from(c.pos), f64::from(c.neg))),
            ),
            Entries::Real(c) => Box::new(c.iter().map(|c| (c.score, c.pos, c.neg))),
            Entries::Binned(bins) => {
                Box::new(bins.iter().map(|b| (b.representative(), b.pos, b.neg)))
            }
        }
    }

    /// `(pos, neg)` weight per entry from the highest score down: the input
    /// of the metrics core's `auc_of_groups`, without building a table.
    pub fn groups_desc(&self) -> GroupsDesc<'_> {
        GroupsDesc(match &self.entries {
            Entries::Units(u) => GroupsInner::Units(u.groups().rev()),
            Entries::Counts(c) => GroupsInner::Counts(c.iter().rev()),
            Entries::Real(c) => GroupsInner::Real(c.iter().rev()),
            Entries::Binned(b) => GroupsInner::Bins(b.iter().rev()),
        })
    }

    /// The entries as bins (exact scores become `lo == hi` bins).
    pub fn bins(&self) -> Vec<Bin> {
        match &self.entries {
            Entries::Binned(bins) => bins.clone(),
            _ => self
                .iter()
                .map(|(s, pos, neg)| Bin {
                    lo: s,
                    hi: s,
                    pos,
                    neg,
                })
                .collect(),
        }
    }

    /// AUC of the entries (ties count one half); `None` with one class.
    /// Unit scores answer from their kept Mann-Whitney statistic (the GAUC
    /// query asks every user), which equals the group walk bit for bit.
    pub fn auc(&self) -> Option<f64> {
        match &self.entries {
            Entries::Units(u) => u.auc(),
            _ => auc_of_groups(self.groups_desc()),
        }
    }

    /// Summed positive and negative weight `(P, N)`.
    pub fn weight_totals(&self) -> (f64, f64) {
        if let Entries::Units(u) = &self.entries {
            let (pos, neg) = u.classes();
            return (pos.len() as f64, neg.len() as f64);
        }
        self.groups_desc()
            .fold((0.0, 0.0), |(p, n), (pos, neg)| (p + pos, n + neg))
    }

    /// True when every record added had weight 0 or 1, so the entries are
    /// counts of the records of weight 1 (those of weight 0 are dropped, as
    /// `POST /metrics` drops them). DeLong's variance is defined for such
    /// aggregates only.
    pub fn has_unit_weights(&self) -> bool {
        matches!(self.entries, Entries::Units(_) | Entries::Counts(_))
    }

    /// Certified bound on `|AUC(this aggregate) - AUC(the raw records)|`:
    /// `sum_b P_b * N_b / 2 / (P * N)` over merged bins; 0 while exact and when
    /// `P * N = 0` (the AUC is then undefined, not approximate).
    pub fn auc_error_bound(&self) -> f64 {
        let Entries::Binned(bins) = &self.entries else {
            return 0.0;
        };
        let (p, n) = self.weight_totals();
        if p * n <= 0.0 {
            return 0.0;
        }
        let err: f64 = bins.iter().map(Bin::tie_error).sum();
        (err / (p * n)).min(1.0)
    }

    /// Certified bound on the error of each weighted confusion count at
    /// `threshold` (predicted positive iff `score >= threshold`).
    ///
    /// Bins are disjoint, so at most one bin straddles the threshold
    /// (`lo < threshold <= hi`); every other bin lies wholly on one side and
    /// is counted exactly. The straddling bin is counted wholly on the side of
    /// its representative, while its records may lie on both sides, so `tp`
    /// and `fn` are off by at most its positive weight `P_b` and `fp` and `tn`
    /// by at most its negative weight `N_b` (`tp + fn` and `fp + tn` stay
    /// exact). Returns `max(P_b, N_b)`, the bound that holds for all four;
    /// 0 while exact, when no bin straddles, or for a threshold on a bin edge.
    pub fn confusion_error_bound(&self, threshold: f64) -> f64 {
        let Entries::Binned(bins) = &self.entries else {
            return 0.0;
        };
        // Sorted and disjoint, so `hi` is ascending too.
        let first_reaching = bins.partition_point(|b| b.hi < threshold);
        match bins.get(first_reaching) {
            Some(b) if b.lo < threshold => b.pos.max(b.neg),
            _ => 0.0,
        }
    }

    /// Approximate heap bytes held (capacity-based), for the memory budget.
    pub fn heap_bytes(&self) -> usize {
        match &self.entries {
            Entries::Units(u) => u.heap_bytes(),
            Entries::Counts(c) => c.capacity() * std::mem::size_of::<CountCell>(),
            Entries::Real(c) => c.capacity() * std::mem::size_of::<RealCell>(),
            Entries::Binned(b) => b.capacity() * std::mem::size_of::<Bin>(),
        }
    }

    /// Merges `other` into `self`; for exact aggregates the result equals the
    /// aggregate of both record sets (`merge(a, b) == ingest(a ++ b)`), up to
    /// the order of floating-point weight sums. Merging into an empty
    /// aggregate copies.
    pub fn merge(&mut self, other: &ScoreAggregate) {
        self.counts.add(other.counts);
        if other.is_empty() {
            return;
        }
        if self.is_empty() {
            self.entries = other.entries.clone();
            return;
        }
        if let (Entries::Units(a), Entries::Units(b)) = (&mut self.entries, &other.entries) {
            a.merge(b);
            if !UnitScores::is_compact(a.records(), a.distinct()) {
                self.entries = Entries::from_units(std::mem::take(a));
            }
            return;
        }
        let merged = match (&self.entries, &other.entries) {
            (Entries::Binned(_), _) | (_, Entries::Binned(_)) => {
                Entries::Binned(merge_bins(&self.bins(), &other.bins()))
            }
            (a, b) => match (a.count_cells(), b.count_cells()) {
                (Some(x), Some(y)) => match merge_cells(&x, &y) {
                    Some(cells) => Entries::Counts(cells),
                    None => {
                        Entries::Real(merge_cells(&to_real(&x), &to_real(&y)).unwrap_or_default())
                    }
                },
                _ => {
                    Entries::Real(merge_cells(&a.real_cells(), &b.real_cells()).unwrap_or_default())
                }
            },
        };
        self.entries = merged;
    }

    /// [`ScoreAggregate::merge`] of an aggregate the caller no longer needs:
    /// merging into an empty aggregate takes `other`'s entries instead of
    /// copying them. Why: a large request folds its records into per-user
    /// aggregates chunk by chunk, and a new stream (or a new user) receives
    /// the staged aggregates whole; copying them would briefly hold every
    /// user's records twice.
    pub fn merge_owned(&mut self, other: ScoreAggregate) {
        if self.is_empty() && !other.is_empty() {
            self.counts.add(other.counts);
            self.entries = other.entries;
        } else {
            self.merge(&other);
        }
    }

    /// When more than `budget` distinct scores are held, merges adjacent scores
    /// into at most `max(budget / 2, 1)` bins of about equal weight (halving
    /// leaves room, so compaction is not redone on every batch). Returns whether
    /// it compacted. Equal-weight bins keep `sum_b P_b N_b` near `(P+N)^2 / 4k`.
    pub fn compact(&mut self, budget: usize) -> bool {
        if self.len() <= budget {
            return false;
        }
        let target = (budget / 2).max(1);
        let bins = self.bins();
        let total: f64 = bins.iter().map(|b| b.pos + b.neg).sum();
        let mut out: Vec<Bin> = Vec::with_capacity(target + 1);
        let mut current: Option<Bin> = None;
        let mut cumulative = 0.0;
        let mut next_cut = 1usize;
        for b in bins {
            current = Some(match current {
                None => b,
                Some(c) => Bin {
                    lo: c.lo,
                    hi: b.hi,
                    pos: c.pos + b.pos,
                    neg: c.neg + b.neg,
                },
            });
            cumulative += b.pos + b.neg;
            // Close the bin once the running weight passes the next quantile cut.
            if total > 0.0 && cumulative >= total * next_cut as f64 / target as f64 {
                if let Some(c) = current.take() {
                    out.push(c);
                }
                next_cut =
                    ((cumulative / total * target as f64).floor() as usize).max(next_cut) + 1;
            }
        }
        if let Some(c) = current {
            out.push(c);
        }
        out.shrink_to_fit();
        self.entries = Entries::Binned(out);
        true
    }
}
/// Merges two sorted, disjoint bin lists; overlapping bins coalesce into one
/// (so the result is again disjoint and the error bound stays certified).
fn merge_bins(a: &[Bin], b: &[Bin]) -> Vec<Bin> {
    let mut out: Vec<Bin> = Vec::with_capacity(a.len() + b.len());
    for &next in merge_by(a, b, |x: &Bin, y: &Bin| x.lo < y.lo) {
        match out.last_mut() {
            Some(last) if next.lo <= last.hi => {
                last.hi = last.hi.max(next.hi);
                last.pos += next.pos;
                last.neg += next.neg;
            }
            _ => out.push(next),
        }
    }
    out.shrink_to_fit();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// One record; shared with the codec's tests.
    pub(super) fn rec(score: f64, positive: bool, weight: f64) -> Record {
        Record {
            score,
            positive,
            weight,
        }
    }

    /// AUC straight from the pair definition (ties count one half).
    fn pairwise_auc(records: &[Record]) -> Option<f64> {
        let (mut num, mut p, mut n) = (0.0, 0.0, 0.0);
        for a in records.iter().filter(|r| r.positive) {
            p += a.weight;
            for b in records.iter().filter(|r| !r.positive) {
                let w = a.weight * b.weight;
                num += match a.score.partial_cmp(&b.score) {
                    Some(Ordering::Greater) => w,
                    Some(Ordering::Equal) => w / 2.0,
                    _ => 0.0,
                };
            }
        }
        for b in records.iter().filter(|r| !r.positive) {
            n += b.weight;
        }
        (p * n > 0.0).then(|| num / (p * n))
    }

    /// AUC of an aggregate treating entries as scores (ties count one half).
    fn aggregate_auc(agg: &ScoreAggregate) -> Option<f64> {
        let (p, n) = agg.weight_totals();
        let mut below_neg = 0.0;
        let mut num = 0.0;
        for (_, pos, neg) in agg.iter() {
            num += pos * (below_neg + neg / 2.0);
            below_neg += neg;
        }
        (p * n > 0.0).then(|| num / (p * n))
    }

    fn records_strategy() -> impl Strategy<Value = Vec<Record>> {
        prop::collection::vec(
            (
                0u32..50,
                any::<bool>(),
                prop_oneof![Just(1.0), Just(0.0), 0.1f64..3.0],
            ),
            0..120,
        )
        .prop_map(|v| {
            v.into_iter()
                .map(|(s, p, w)| rec(f64::from(s) / 10.0, p, w))
                .collect()
        })
    }

    #[test]
    fn aggregate_of_known_records_sums_weights_per_distinct_score() {
        let mut r = vec![
            rec(0.5, true, 1.0),
            rec(0.1, false, 1.0),
            rec(0.5, false, 1.0),
            rec(0.9, true, 0.0),
            rec(-0.0, true, 1.0),
            rec(0.0, false, 1.0),
        ];
        let agg = ScoreAggregate::from_records(&mut r);
        let entries: Vec<_> = agg.iter().collect();
        assert_eq!(
            entries,
            vec![(0.0, 1.0, 1.0), (0.1, 0.0, 1.0), (0.5, 1.0, 1.0)]
        );
        assert_eq!(
            agg.counts(),
            RecordCounts {
                count: 6,
                positives: 3,
                negatives: 3
            }
        );
        assert_eq!(agg.auc_error_bound(), 0.0);
    }

    #[test]
    fn only_a_bin_straddling_the_threshold_bounds_the_confusion_error() {
        let bin = |lo: f64, hi: f64, pos: f64, neg: f64| Bin { lo, hi, pos, neg };
        let agg = ScoreAggregate::from_parts(
            vec![
                bin(0.1, 0.3, 2.0, 5.0),
                bin(0.5, 0.5, 7.0, 7.0),
                bin(0.6, 0.9, 3.0, 1.0),
            ],
            RecordCounts::default(),
        )
        .unwrap_or_default();
        for (threshold, bound) in [
            (0.05, 0.0), // below every bin
            (0.1, 0.0),  // on a lower edge: the whole bin is >= threshold
            (0.2, 5.0),  // inside [0.1, 0.3]: max(P_b, N_b)
            (0.3, 5.0),  // the upper edge is inside (0.3 >= 0.3, 0.1 < 0.3)
            (0.4, 0.0),  // between bins
            (0.5, 0.0),  // an exact score
            (0.75, 3.0), // inside [0.6, 0.9]
            (2.0, 0.0),  // above every bin
        ] {
            assert_eq!(
                agg.confusion_error_bound(threshold),
                bound,
                "threshold {threshold}"
            );
        }
        let exact = ScoreAggregate::from_records(&mut [rec(0.2, true, 1.0), rec(0.4, false, 1.0)]);
        assert_eq!(exact.confusion_error_bound(0.3), 0.0);
    }

    #[test]
    fn counts_promote_to_real_weights_on_overflow() {
        let mut a = ScoreAggregate::from_parts(
            vec![Bin {
                lo: 1.0,
                hi: 1.0,
                pos: f64::from(u32::MAX),
                neg: 0.0,
            }],
            RecordCounts::default(),
        )
        .unwrap_or_default();
        let b = ScoreAggregate::from_records(&mut [rec(1.0, true, 1.0)]);
        a.merge(&b);
        assert_eq!(a.iter().next(), Some((1.0, f64::from(u32::MAX) + 1.0, 0.0)));
    }

    #[test]
    fn sparse_unit_records_take_half_the_memory_and_dense_ones_switch_to_counts() {
        // 100 records on 100 distinct scores: 8 bytes each, not 16 per cell
        let mut sparse: Vec<Record> = (0..100)
            .map(|i| rec(f64::from(i) / 100.0, i % 3 == 0, 1.0))
            .collect();
        let agg = ScoreAggregate::from_records(&mut sparse);
        assert_eq!(agg.heap_bytes(), 100 * 8);
        // merging 300 records on the same scores makes cells the smaller layout
        let mut dense: Vec<Record> = (0..300)
            .map(|i| rec(f64::from(i % 100) / 100.0, i % 2 == 0, 1.0))
            .collect();
        let mut merged = agg.clone();
        merged.merge(&ScoreAggregate::from_records(&mut dense));
        assert_eq!(merged.len(), 100);
        assert_eq!(merged.heap_bytes(), 100 * 16);
        // the same switch from two unit-score parts
        let mut twice = agg.clone();
        for _ in 0..2 {
            twice.merge(&agg);
        }
        assert_eq!((twice.len(), twice.heap_bytes()), (100, 100 * 16));
        assert_eq!(twice.counts().count, 300);
        let mut all: Vec<Record> = sparse.iter().chain(&dense).copied().collect();
        assert_eq!(merged, ScoreAggregate::from_records(&mut all));
    }

    proptest! {
        #[test]
        fn merge_of_parts_equals_aggregate_of_concatenation(
            a in records_strategy(), b in records_strategy()
        ) {
            let mut both: Vec<Record> = a.iter().chain(&b).copied().collect();
            let mut merged = ScoreAggregate::from_records(&mut a.clone());
            merged.merge(&ScoreAggregate::from_records(&mut b.clone()));
            let whole = ScoreAggregate::from_records(&mut both);
            prop_assert_eq!(merged.counts(), whole.counts());
            let m: Vec<_> = merged.iter().collect();
            let w: Vec<_> = whole.iter().collect();
            prop_assert_eq!(m.len(), w.len());
            for (x, y) in m.iter().zip(&w) {
                prop_assert_eq!(x.0, y.0);
                // epsilon 1e-12: only the order of the weight sums differs
                prop_assert!((x.1 - y.1).abs() < 1e-12 && (x.2 - y.2).abs() < 1e-12);
            }
        }

        #[test]
        fn an_owned_merge_equals_a_borrowed_one(
            a in records_strategy(), b in records_strategy()
        ) {
            for first in [ScoreAggregate::default(), ScoreAggregate::from_records(&mut a.clone())] {
                let other = ScoreAggregate::from_records(&mut b.clone());
                let mut borrowed = first.clone();
                borrowed.merge(&other);
                let mut owned = first;
                owned.merge_owned(other);
                prop_assert_eq!(owned.counts(), borrowed.counts());
                let bits = |x: &ScoreAggregate| -> Vec<[u64; 3]> {
                    x.iter().map(|(s, p, n)| [s.to_bits(), p.to_bits(), n.to_bits()]).collect()
                };
                prop_assert_eq!(bits(&owned), bits(&borrowed));
            }
        }

        #[test]
        fn auc_equals_the_core_group_walk_bit_for_bit_in_every_layout(
            a in records_strategy(), b in records_strategy(), budget in 1usize..60
        ) {
            // unit weights only, so both parts may take the unit-score layout
            let unit = |v: &[Record]| -> Vec<Record> {
                v.iter().map(|r| rec(r.score, r.positive, 1.0)).collect()
            };
            let mut layouts = vec![
                ScoreAggregate::from_records(&mut unit(&a)),
                ScoreAggregate::from_records(&mut a.clone()),
            ];
            let mut merged = ScoreAggregate::from_records(&mut unit(&a));
            merged.merge(&ScoreAggregate::from_records(&mut unit(&b)));
            layouts.push(merged.clone());
            merged.compact(budget);
            layouts.push(merged);
            for agg in layouts {
                let want = auc_of_groups(agg.groups_desc());
                prop_assert_eq!(agg.auc().map(f64::to_bits), want.map(f64::to_bits));
                let (p, n) = agg.weight_totals();
                let walked = agg.groups_desc().fold((0.0, 0.0), |(x, y), (u, v)| (x + u, y + v));
                prop_assert_eq!((p, n), walked);
            }
        }

        #[test]
        fn exact_aggregate_auc_equals_pairwise_auc(r in records_strategy()) {
            let agg = ScoreAggregate::from_records(&mut r.clone());
            match (aggregate_auc(&agg), pairwise_auc(&r)) {
                (Some(x), Some(y)) => prop_assert!((x - y).abs() < 1e-12, "{} vs {}", x, y),
                (x, y) => prop_assert_eq!(x.is_none(), y.is_none()),
            }
        }

        #[test]
        fn compacted_confusion_error_stays_within_the_certified_bound(
            r in records_strategy(), budget in 1usize..12, t in 0u32..52
        ) {
            // thresholds on the score grid (k / 10) and between grid points
            let threshold = f64::from(t) / 10.0 - 0.05 * f64::from(t % 2);
            let mut agg = ScoreAggregate::from_records(&mut r.clone());
            agg.compact(budget);
            let (mut tp, mut fp) = (0.0, 0.0);
            for (score, pos, neg) in agg.iter() {
                if score >= threshold {
                    tp += pos;
                    fp += neg;
                }
            }
            let exact_tp: f64 = r.iter().filter(|x| x.positive && x.score >= threshold).map(|x| x.weight).sum();
            let exact_fp: f64 = r.iter().filter(|x| !x.positive && x.score >= threshold).map(|x| x.weight).sum();
            let bound = agg.confusion_error_bound(threshold);
            // epsilon 1e-9: weights summed in a different order
            prop_assert!((tp - exact_tp).abs() <= bound + 1e-9, "tp {} vs {} bound {}", tp, exact_tp, bound);
            prop_assert!((fp - exact_fp).abs() <= bound + 1e-9, "fp {} vs {} bound {}", fp, exact_fp, bound);
            if agg.is_exact() {
                prop_assert_eq!(bound, 0.0);
            }
        }

        #[test]
        fn compacted_auc_error_stays_within_the_certified_bound(
            r in records_strategy(), extra in records_strategy(), budget in 1usize..12
        ) {
            let mut agg = ScoreAggregate::from_records(&mut r.clone());
            agg.compact(budget);
            prop_assert!(agg.len() <= budget.max(2), "{} bins for budget {}", agg.len(), budget);
            // merging more data into a compacted aggregate keeps the bound certified
            agg.merge(&ScoreAggregate::from_records(&mut extra.clone()));
            agg.compact(budget);
            let all: Vec<Record> = r.iter().chain(&extra).copied().collect();
            let (p, n) = agg.weight_totals();
            let (tp, tn) = ScoreAggregate::from_records(&mut all.clone()).weight_totals();
            prop_assert!((p - tp).abs() < 1e-9 && (n - tn).abs() < 1e-9);
            if let (Some(approx), Some(exact)) = (aggregate_auc(&agg), pairwise_auc(&all)) {
                let bound = agg.auc_error_bound();
                prop_assert!((approx - exact).abs() <= bound + 1e-12,
                    "error {} over bound {}", (approx - exact).abs(), bound);
            }
        }
    }
}
