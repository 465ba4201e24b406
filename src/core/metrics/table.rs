//! The sorted distinct-score table: the one sort that serves confusion counts,
//! ROC, AUC and (per user) GAUC.
//!
//! A [`ScoreTable`] holds the distinct scores in strictly descending order with
//! the summed positive weight and summed negative weight of each score (plain
//! counts when there are no sample weights). Everything threshold-based is a
//! prefix sum over this table, so after the single `O(n log n)` sort every
//! metric is `O(distinct scores)`.

use super::{radix, MetricsError};

/// Distinct scores, descending, with the positive and negative weight at each.
///
/// Invariants: `scores` is strictly descending and finite; `-0.0` is stored as
/// `0.0` (scikit-learn's `np.diff` treats them as one threshold); every entry
/// has `pos + neg > 0` (scores whose rows all have zero weight are dropped, as
/// scikit-learn >= 1.6 drops zero-weight rows before building the ROC curve).
#[derive(Debug, Clone, Default)]
pub struct ScoreTable {
    scores: Vec<f64>,
    pos: Vec<f64>,
    neg: Vec<f64>,
    /// Cumulative weights summed record by record, when built from weighted
    /// records (see [`ScoreTable::cumulative`]).
    sequential: Option<Cumulative>,
    /// What the weights are; DeLong's variance needs counts.
    weights: TableWeights,
    /// `(positives, records)` when every per-score weight is a record
    /// count summed as an integer (the unweighted tables of records): the
    /// totals are then known without a pass, and every partial sum of the
    /// weights is exact, in any order (see [`ScoreTable::exact_totals`]).
    counted: Option<(u64, u64)>,
}

/// What a table's per-score weights are. Metrics that hold for counts only
/// (DeLong's variance) read it; every other metric treats all kinds alike.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum TableWeights {
    /// Record counts: no sample weights, or weights of 0 and 1 only (rows of
    /// weight 0 are dropped, the others count once).
    #[default]
    Counts,
    /// Summed sample weights.
    Sample,
    /// Built from a compacted aggregate: scores merged into bins, so
    /// anything beyond the AUC and its certified bound is not exact.
    Approximate,
}

/// scikit-learn's `tps` and `fps`: cumulative positive and negative weight
/// after each distinct score, summed one record at a time in its order.
#[derive(Debug, Clone, Default)]
struct Cumulative {
    tps: Vec<f64>,
    fps: Vec<f64>,
}

/// Tables are equal when their distinct scores and per-score weights are;
/// how the cumulative sums were rounded is not part of the value.
impl PartialEq for ScoreTable {
    fn eq(&self, other: &Self) -> bool {
        self.scores == other.scores && self.pos == other.pos && self.neg == other.neg
    }
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
    /// [`MetricsError::TooMany`] past [`MAX_RECORDS`] records.
    ///
    /// Empty input gives an empty table (every metric of it is undefined).
    pub fn from_records(
        scores: &[f64],
        labels: &[bool],
        weights: Option<&[f64]>,
    ) -> Result<Self, MetricsError> {
        check_records(scores, labels, weights)?;
        let ranked = rank_records(scores, labels, None)?;
        Ok(Self::from_ranked(&ranked, weights))
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
            check_weight(index, pos)?;
            check_weight(index, neg)?;
            triples.push((canonical_zero(score), pos, neg));
        }
        triples.sort_unstable_by(|a, b| b.0.total_cmp(&a.0));
        let mut table = ScoreTable::with_capacity(triples.len());
        for (score, pos, neg) in triples {
            table.push_group(score, pos, neg);
        }
        table.drop_empty_groups();
        Ok(table)
    }

    /// Groups records sorted by [`rank_records`] into the table. `weights`
    /// must have passed [`check_records`].
    pub(crate) fn from_ranked(ranked: &SortedRecords, weights: Option<&[f64]>) -> Self {
        let Some(weights) = weights else {
            return Self::from_unweighted(ranked);
        };
        let mut table = Self::with_capacity(ranked.len());
        let mut sequential = Cumulative {
            tps: Vec::with_capacity(ranked.len()),
            fps: Vec::with_capacity(ranked.len()),
        };
        let (mut tps, mut fps) = (0.0, 0.0);
        let mut tie: Vec<(usize, bool)> = Vec::new();
        let mut records = ranked.iter().peekable();
        while let Some(first) = records.next() {
            tie.clear();
            tie.push((first.index(), first.positive()));
            while let Some(r) = records.next_if(|r| r.same_score(first)) {
                tie.push((r.index(), r.positive()));
            }
            // scikit-learn sorts descending with a stable sort, so a tie is
            // summed in record order; the sort is stable too, so this only
            // checks that (linear on sorted input) rather than trusting it.
            tie.sort_unstable_by_key(|&(index, _)| index);
            let (mut pos, mut neg) = (0.0, 0.0);
            for &(index, positive) in &tie {
                let w = weights.get(index).copied().unwrap_or(0.0);
                if positive {
                    pos += w;
                    tps += w;
                } else {
                    neg += w;
                    fps += w;
                }
            }
            table.push_group(first.score(), pos, neg);
            sequential.tps.push(tps);
            sequential.fps.push(fps);
        }
        table.sequential = Some(sequential);
        // Rows of weight 0 leave the table, so weights of 0 and 1 only leave
        // a table of counts (what a stream of such records holds, too).
        if weights.iter().any(|&w| w != 0.0 && w != 1.0) {
            table.weights = TableWeights::Sample;
        }
        table.drop_empty_groups();
        table
    }

    /// Unit weights: counts, exact in any order, so no sequential sums.
    ///
    /// Each distinct score's records are counted as integers and the counts
    /// converted once (the same bits as adding 1.0 per record: counts below
    /// 2^53 are exact). Large input is counted in two parts on two threads,
    /// cut at a key so no tie is split; the second part is appended to the
    /// first, which is the table one thread would have built.
    fn from_unweighted(ranked: &SortedRecords) -> Self {
        let (first, second) = ranked.parts();
        let mut table = Self::with_capacity(ranked.len());
        if ranked.len() < PARALLEL_MIN {
            let positives = table.count_groups(first, second);
            table.counted = Some((positives, ranked.len() as u64));
            return table;
        }
        // The sort's two parts: no tie spans them, and their sizes are
        // about even.
        let (positives, (tail, tail_positives)) = std::thread::scope(|scope| {
            let tail = scope.spawn(|| {
                let mut tail = Self::with_capacity(second.len());
                let positives = tail.count_groups(second, &[]);
                (tail, positives)
            });
            let positives = table.count_groups(first, &[]);
            let tail = tail.join().unwrap_or_else(|p| std::panic::resume_unwind(p));
            (positives, tail)
        });
        table.scores.extend_from_slice(&tail.scores);
        table.pos.extend_from_slice(&tail.pos);
        table.neg.extend_from_slice(&tail.neg);
        table.counted = Some((positives + tail_positives, ranked.len() as u64));
        table
    }

    /// Appends the distinct scores of the sorted records `first` then
    /// `second` (every key of `first` below those of `second`) with their
    /// positive and negative counts, and returns how many of the records
    /// are positive. The records' keys must all be above the table's last
    /// key.
    fn count_groups(&mut self, first: &[Ranked], second: &[Ranked]) -> u64 {
        let mut records = first.iter().chain(second);
        let Some(first) = records.next() else {
            return 0;
        };
        let mut all_positives = 0u64;
        let (mut key, mut count, mut positives) = (first.key, 1u32, u32::from(first.positive()));
        for r in records {
            if r.key != key {
                self.push_counts(key, count, positives);
                all_positives += u64::from(positives);
                (key, count, positives) = (r.key, 0, 0);
            }
            count += 1;
            positives += u32::from(r.positive());
        }
        self.push_counts(key, count, positives);
        all_positives + u64::from(positives)
    }

    /// Pushes a new distinct score (by its key) with its record counts.
    fn push_counts(&mut self, key: u64, count: u32, positives: u32) {
        self.scores.push(score_of_key(key));
        self.pos.push(f64::from(positives));
        self.neg.push(f64::from(count - positives));
    }

    /// Sized for the worst case (all scores distinct): untouched capacity
    /// costs no memory, while growing by doubling copies and leaves the old
    /// buffers behind.
    fn with_capacity(n: usize) -> Self {
        ScoreTable {
            scores: Vec::with_capacity(n),
            pos: Vec::with_capacity(n),
            neg: Vec::with_capacity(n),
            sequential: None,
            weights: TableWeights::Counts,
            counted: None,
        }
    }

    /// Says what the weights of a table built by
    /// [`ScoreTable::from_aggregates`] are (the aggregate knows; the triples
    /// do not). Such a table otherwise counts as [`TableWeights::Counts`].
    pub fn with_weights(mut self, weights: TableWeights) -> Self {
        self.weights = weights;
        self
    }

    /// What the weights are.
    pub fn weights(&self) -> TableWeights {
        self.weights
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
                if let Some(c) = &mut self.sequential {
                    c.tps[keep] = c.tps[i];
                    c.fps[keep] = c.fps[i];
                }
                keep += 1;
            }
        }
        self.scores.truncate(keep);
        self.pos.truncate(keep);
        self.neg.truncate(keep);
        if let Some(c) = &mut self.sequential {
            c.tps.truncate(keep);
            c.fps.truncate(keep);
        }
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

    /// `(fps, tps)` after each distinct score, descending: the cumulative
    /// negative and positive weight scikit-learn's `roc_curve` computes.
    ///
    /// From weighted records these are summed one record at a time in
    /// scikit-learn's order (descending score, ties in record order), so they
    /// are bit for bit numpy's `cumsum`: `drop_intermediate` tests second
    /// differences for exact zero, and a sum rounded differently can keep or
    /// drop a point. Otherwise (counts, or a table from aggregates, whose
    /// record order is gone) they are running sums of the per-score weights.
    ///
    /// A concrete iterator (not a boxed one): the passes over a million
    /// distinct scores inline it.
    pub fn cumulative(&self) -> CumulativeIter<'_> {
        match &self.sequential {
            Some(c) => CumulativeIter::Sequential {
                fps: c.fps.iter(),
                tps: c.tps.iter(),
            },
            None => CumulativeIter::Running {
                neg: self.neg.iter(),
                pos: self.pos.iter(),
                fps: 0.0,
                tps: 0.0,
            },
        }
    }

    /// Calls `f(score, fps, tps)` for each distinct score, descending, with
    /// the pairs of [`ScoreTable::cumulative`]: the kind of sums is matched
    /// once, not per point, so a pass over a million scores is one plain
    /// loop.
    #[inline(always)]
    pub(crate) fn each_cumulative(&self, mut f: impl FnMut(f64, f64, f64)) {
        match &self.sequential {
            Some(c) => {
                for ((&s, &fps), &tps) in self.scores.iter().zip(&c.fps).zip(&c.tps) {
                    f(s, fps, tps);
                }
            }
            None => {
                let (mut fps, mut tps) = (0.0, 0.0);
                for ((&s, &n), &p) in self.scores.iter().zip(&self.neg).zip(&self.pos) {
                    fps += n;
                    tps += p;
                    f(s, fps, tps);
                }
            }
        }
    }

    /// The last `(fps, tps)` of [`ScoreTable::cumulative`] (`(0, 0)` for an
    /// empty table), the same bits, in one pass without the pairs.
    pub fn cumulative_totals(&self) -> (f64, f64) {
        match &self.sequential {
            Some(c) => (
                c.fps.last().copied().unwrap_or(0.0),
                c.tps.last().copied().unwrap_or(0.0),
            ),
            None => self.cumulative().last().unwrap_or((0.0, 0.0)),
        }
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
        match self.exact_totals() {
            Some((pos, _)) => pos,
            None => self.pos.iter().sum(),
        }
    }

    /// Total negative weight (the negative count without weights).
    pub fn total_neg(&self) -> f64 {
        match self.exact_totals() {
            Some((_, neg)) => neg,
            None => self.neg.iter().sum(),
        }
    }

    /// `(total_pos, total_neg)` of a non-empty table of integer record
    /// counts, known from its build: the bits of summing the weights in
    /// any order (integers below 2^53 add exactly), without the pass. Also
    /// says that every partial sum of the weights is exact, so a suffix
    /// sum is the total minus a prefix sum (DeLong's placements use it).
    /// `None` for other tables (and the empty one, whose sum is `-0.0`).
    pub(crate) fn exact_totals(&self) -> Option<(f64, f64)> {
        let (positives, records) = self.counted.filter(|_| !self.scores.is_empty())?;
        Some((positives as f64, (records - positives) as f64))
    }
}

/// The iterator of [`ScoreTable::cumulative`].
#[derive(Debug, Clone)]
pub enum CumulativeIter<'a> {
    /// The record-by-record sums of a weighted table.
    Sequential {
        fps: std::slice::Iter<'a, f64>,
        tps: std::slice::Iter<'a, f64>,
    },
    /// Running sums of the per-score weights.
    Running {
        neg: std::slice::Iter<'a, f64>,
        pos: std::slice::Iter<'a, f64>,
        fps: f64,
        tps: f64,
    },
}

impl Iterator for CumulativeIter<'_> {
    type Item = (f64, f64);

    #[inline]
    fn next(&mut self) -> Option<(f64, f64)> {
        match self {
            CumulativeIter::Sequential { fps, tps } => Some((*fps.next()?, *tps.next()?)),
            CumulativeIter::Running { neg, pos, fps, tps } => {
                *fps += *neg.next()?;
                *tps += *pos.next()?;
                Some((*fps, *tps))
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let len = match self {
            CumulativeIter::Sequential { fps, .. } => fps.len(),
            CumulativeIter::Running { neg, .. } => neg.len(),
        };
        (len, Some(len))
    }
}

impl ExactSizeIterator for CumulativeIter<'_> {}

/// A sample weight must be finite and >= 0; `index` names it in the error.
fn check_weight(index: usize, w: f64) -> Result<(), MetricsError> {
    if !w.is_finite() {
        return Err(MetricsError::NonFinite {
            field: "sample_weights",
            index,
        });
    }
    if w < 0.0 {
        return Err(MetricsError::NegativeWeight { index, value: w });
    }
    Ok(())
}

/// The one spelling of a score: `-0.0` becomes `0.0`, every other value is
/// returned as is. `-0.0 == 0.0` yet their bits differ, and scikit-learn
/// treats them as one threshold, so a table, an aggregate or a hash that keys
/// on scores must see one of them only.
pub fn canonical_zero(score: f64) -> f64 {
    if score == 0.0 {
        0.0
    } else {
        score
    }
}

/// A `u64` whose ascending order is the descending order of the finite f64
/// `score` (with `-0.0` equal to `0.0`): [`radix::total_order_key`] of the
/// canonical score, inverted.
fn descending_key(score: f64) -> u64 {
    !radix::total_order_key(canonical_zero(score))
}

/// Inverse of [`descending_key`].
fn score_of_key(key: u64) -> f64 {
    let ascending = !key;
    let bits = if ascending >> 63 == 1 {
        ascending & !(1 << 63)
    } else {
        !ascending
    };
    f64::from_bits(bits)
}

/// Largest record count: the index shares a `u32` with the label bit.
pub const MAX_RECORDS: usize = (1 << 31) - 1;

/// One record in the global sort: 16 bytes carrying everything the table and
/// the GAUC buckets need, so neither reads the input arrays in random order
/// (which costs more than the sort itself at a million records).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Ranked {
    key: u64,
    /// Record index in the low 31 bits, the label in the top bit.
    tag: u32,
    pub user: u32,
}

impl Ranked {
    pub fn score(&self) -> f64 {
        score_of_key(self.key)
    }

    /// The sort key: equal keys are equal scores.
    pub fn key(&self) -> u64 {
        self.key
    }

    pub fn same_score(&self, other: &Ranked) -> bool {
        self.key == other.key
    }

    pub fn index(&self) -> usize {
        (self.tag & !(1 << 31)) as usize
    }

    pub fn positive(&self) -> bool {
        self.tag >> 31 == 1
    }
}

/// The one sort of the records: descending score, ties in record order (a
/// stable sort of records built in index order; consumers group equal
/// scores, and the weighted ones sum a tie in record order, scikit-learn's
/// order). `users[i]` rides along for the GAUC buckets.
///
/// # Errors
/// [`MetricsError::TooMany`] past [`MAX_RECORDS`]. Inputs must otherwise have
/// passed [`check_records`] (equal lengths, finite scores).
pub(crate) fn rank_records(
    scores: &[f64],
    labels: &[bool],
    users: Option<&[u32]>,
) -> Result<SortedRecords, MetricsError> {
    if scores.len() > MAX_RECORDS {
        return Err(MetricsError::TooMany {
            len: scores.len(),
            max: MAX_RECORDS,
        });
    }
    if scores.len() >= PARALLEL_MIN {
        return Ok(sort_in_two(scores, labels, users));
    }
    let record = |(i, ((&s, &l), user)): (usize, ((&f64, &bool), u32))| Ranked {
        key: descending_key(s),
        tag: i as u32 | (u32::from(l) << 31),
        user,
    };
    let columns = scores.iter().zip(labels);
    // Users zipped in when they cover every record (the checked case): no
    // per-record lookup of an optional slice.
    let ranked: Vec<Ranked> = match users {
        Some(u) if u.len() == scores.len() => columns
            .zip(u.iter().copied())
            .enumerate()
            .map(record)
            .collect(),
        _ => {
            let user = |i: usize| users.and_then(|u| u.get(i).copied()).unwrap_or(0);
            let columns = columns.enumerate().map(|(i, c)| (i, (c, user(i))));
            columns.map(record).collect()
        }
    };
    Ok(sort_by_key(ranked))
}

/// Records in descending-score order, held as two sorted parts, every key
/// of the first below every key of the second: the order is the first
/// part, then the second.
///
/// Why two parts and not one `Vec`: large input is sorted on two threads,
/// each building and sorting the records of one range of keys, and one
/// `Vec` would need a 16 MB copy (at a million records) to join them. The
/// consumers read the parts one after the other, with no merge.
#[derive(Debug, Clone)]
pub(crate) struct SortedRecords {
    first: Vec<Ranked>,
    second: Vec<Ranked>,
    /// The radix sort's scratch buffers (each as long as its part, or
    /// empty when the part was too short for it), free after the sort:
    /// the GAUC buckets are written into them rather than into fresh
    /// memory.
    spare: [Vec<Ranked>; 2],
}

impl SortedRecords {
    pub fn len(&self) -> usize {
        self.first.len() + self.second.len()
    }

    /// Takes the sort's scratch as one buffer as long as the records, or
    /// an empty one when the sort had none. On two parts the second's
    /// scratch is appended to the first's.
    pub fn take_spare(&mut self) -> Vec<Ranked> {
        let [first, second] = std::mem::take(&mut self.spare);
        if first.len() + second.len() != self.len() {
            return Vec::new();
        }
        let mut spare = first;
        spare.extend_from_slice(&second);
        spare
    }

    /// Drops the sort's scratch, when nothing reuses it.
    pub fn free_spare(&mut self) {
        self.spare = Default::default();
    }

    /// The records in key order (ties in record order).
    pub fn iter(
        &self,
    ) -> std::iter::Chain<std::slice::Iter<'_, Ranked>, std::slice::Iter<'_, Ranked>> {
        self.first.iter().chain(self.second.iter())
    }

    /// The two sorted parts (the second empty for small input).
    fn parts(&self) -> (&[Ranked], &[Ranked]) {
        (&self.first, &self.second)
    }

    /// The records in some order, for order-insensitive passes.
    pub fn unordered(
        &self,
    ) -> std::iter::Chain<std::slice::Iter<'_, Ranked>, std::slice::Iter<'_, Ranked>> {
        self.iter()
    }
}

/// Below this many records one thread does the work; above, two threads sort
/// the records (the service has two cores per instance), the table is built
/// in two parts, and the GAUC buckets and the evaluation beyond the basics
/// are built beside it. Small requests never spawn a thread.
pub(crate) const PARALLEL_MIN: usize = 100_000;

/// From this many records on, a run is sorted by an LSD radix sort on the
/// 8-byte key (a pass per digit that differs, linear); below it the standard
/// library's stable comparison sort wins (the radix sort's histograms and
/// scratch buffer cost more than a few `n log n` compares).
const RADIX_MIN: usize = 4096;

/// Sorts one run by key, stably: ties keep their order, which is record
/// order (the records are built in index order), whichever sort runs, so
/// the order is one function of the input and every answer keeps its bits.
/// `scratch` is as long as `run` from [`RADIX_MIN`] records on.
fn sort_run(run: &mut [Ranked], scratch: &mut [Ranked]) {
    if run.len() >= RADIX_MIN {
        radix::sort_by_key(run, scratch, |r| r.key);
    } else {
        run.sort_by_key(|r| r.key);
    }
}

/// Sorts small input by key on the calling thread, stably. The radix
/// sort's scratch, a copy of the records (a plain `memcpy`; every page of
/// it is written by the sort anyway), is kept as [`SortedRecords::spare`].
fn sort_by_key(mut records: Vec<Ranked>) -> SortedRecords {
    let mut spare = if records.len() >= RADIX_MIN {
        records.clone()
    } else {
        Vec::new()
    };
    sort_run(&mut records, &mut spare);
    SortedRecords {
        first: records,
        second: Vec::new(),
        spare: [spare, Vec::new()],
    }
}

/// How many keys [`split_bound`] samples.
const SPLIT_SAMPLES: usize = 8192;

/// A key that cuts the records' keys about in half (records of keys below
/// it, and the others), from an evenly spaced sample of the scores, and
/// about how many records fall below it. Any bound gives the right order;
/// a good one gives each thread half of the work. A tie is never cut, so
/// the bound is put below or above the median's tie, whichever is nearer
/// the middle.
fn split_bound(scores: &[f64]) -> (u64, usize) {
    let stride = (scores.len() / SPLIT_SAMPLES).max(1);
    let mut keys: Vec<u64> = scores
        .iter()
        .step_by(stride)
        .map(|&s| descending_key(s))
        .collect();
    let middle = keys.len() / 2;
    if keys.get(middle).is_none() {
        return (0, 0);
    }
    let median = *keys.select_nth_unstable(middle).1;
    let below = keys.iter().filter(|&&k| k < median).count();
    let up_to = keys.iter().filter(|&&k| k <= median).count();
    let (bound, sampled) = if middle - below <= up_to - middle {
        (median, below)
    } else {
        (median.saturating_add(1), up_to)
    };
    let below = sampled as u64 * scores.len() as u64 / keys.len() as u64;
    (bound, below as usize)
}

/// Sorts large input on two threads, stably. A key bound cuts the records
/// in two parts, every key of the first below every key of the second;
/// each part sorted stably, the two in turn are the stable order (ties in
/// record order, as one thread would give), and the consumers read them in
/// turn with no merge.
///
/// Two steps, each on both threads. First each thread reads half of the
/// columns, in record order, and builds its records straight into the two
/// parts, taking the radix sort's histograms in the same loop. Then each
/// thread joins the pieces of one part (its own half's first, so record
/// order) and sorts it; the pieces' two buffers become the part and its
/// scratch, so no memory beyond the two copies of the records is touched.
fn sort_in_two(scores: &[f64], labels: &[bool], users: Option<&[u32]>) -> SortedRecords {
    let n = scores.len();
    let (bound, below) = split_bound(scores);
    // Each piece may hold its whole part (the sample's estimate, with room
    // for its error; a part that outgrows it grows the `Vec`): untouched
    // capacity costs no memory.
    let room = n / 16 + RADIX_MIN;
    let capacity = [(below + room).min(n), (n - below.min(n) + room).min(n)];
    let mid = n / 2;
    let half = |start: usize, end: usize| {
        let (scores, labels) = (&scores[start..end], &labels[start..end]);
        match users {
            Some(u) if u.len() == n => {
                let u = u[start..end].iter().copied();
                build_parts(scores, labels, u, start, bound, capacity)
            }
            _ => {
                let u = users.unwrap_or(&[]).iter().skip(start).copied();
                let u = u.chain(std::iter::repeat(0));
                build_parts(scores, labels, u, start, bound, capacity)
            }
        }
    };
    let (first_half, second_half) = std::thread::scope(|scope| {
        let second = scope.spawn(|| half(mid, n));
        let first = half(0, mid);
        let second = second
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p));
        (first, second)
    });
    let ([first_a, second_a], [first_counts, second_counts]) = first_half;
    let ([first_b, second_b], [first_counts_b, second_counts_b]) = second_half;
    let ((first, first_spare), (second, second_spare)) = std::thread::scope(|scope| {
        let first = scope.spawn(|| sort_part(first_a, first_b, first_counts, &first_counts_b));
        let second = sort_part(second_a, second_b, second_counts, &second_counts_b);
        let first = first
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p));
        (first, second)
    });
    SortedRecords {
        first,
        second,
        spare: [first_spare, second_spare],
    }
}

/// The records of one stretch of the columns (record `start` first), in
/// record order, cut by `bound` into the two parts, and each part's radix
/// histograms.
#[inline(always)]
fn build_parts(
    scores: &[f64],
    labels: &[bool],
    users: impl Iterator<Item = u32>,
    start: usize,
    bound: u64,
    capacity: [usize; 2],
) -> ([Vec<Ranked>; 2], [radix::Histograms; 2]) {
    let mut parts = capacity.map(Vec::with_capacity);
    let mut counts = [radix::Histograms::new(), radix::Histograms::new()];
    for (i, ((&s, &l), user)) in scores.iter().zip(labels).zip(users).enumerate() {
        let key = descending_key(s);
        // An index, not a branch: the side is as random as the scores.
        let side = usize::from(key >= bound);
        counts[side].add(key);
        parts[side].push(Ranked {
            key,
            tag: (start + i) as u32 | (u32::from(l) << 31),
            user,
        });
    }
    (parts, counts)
}

/// Sorts one part from its two pieces (`a`, from the first half of the
/// records, then `b`) and their histograms; returns the part and its
/// scratch. `a` + `b` becomes the part and `b` + `a` the scratch (its
/// contents do not matter), each piece's buffer growing into its capacity.
fn sort_part(
    mut a: Vec<Ranked>,
    mut b: Vec<Ranked>,
    mut counts: radix::Histograms,
    counts_b: &radix::Histograms,
) -> (Vec<Ranked>, Vec<Ranked>) {
    let a_len = a.len();
    a.extend_from_slice(&b);
    if a.len() < RADIX_MIN {
        a.sort_by_key(|r| r.key);
        return (a, Vec::new());
    }
    b.extend_from_slice(&a[..a_len]);
    counts.merge(counts_b);
    radix::sort_counted(&mut a, &mut b, counts, |r| r.key);
    (a, b)
}

/// Checks lengths, finiteness and weight signs of binary records.
pub(crate) fn check_records(
    scores: &[f64],
    labels: &[bool],
    weights: Option<&[f64]>,
) -> Result<(), MetricsError> {
    if scores.len() > MAX_RECORDS {
        return Err(MetricsError::TooMany {
            len: scores.len(),
            max: MAX_RECORDS,
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
        check_weight(index, w)?;
    }
    Ok(())
}

/// Tables of every kind from one set of small records, for tests that
/// compare two computations of a metric on them.
#[cfg(test)]
pub(crate) fn test_tables(records: &[(u8, bool, u8)]) -> Vec<ScoreTable> {
    // Scores on a grid of 12 values in [0, 1] (ties, 0 and 1 included);
    // weights in quarters, 0 included.
    let scores: Vec<f64> = records.iter().map(|r| f64::from(r.0) / 11.0).collect();
    let labels: Vec<bool> = records.iter().map(|r| r.1).collect();
    let weights: Vec<f64> = records.iter().map(|r| f64::from(r.2) / 4.0).collect();
    let mut tables = vec![
        ScoreTable::from_records(&scores, &labels, None).unwrap_or_default(),
        ScoreTable::from_records(&scores, &labels, Some(&weights)).unwrap_or_default(),
    ];
    let triples = records.iter().map(|r| {
        let w = f64::from(r.2) / 3.0;
        let s = f64::from(r.0) / 11.0;
        if r.1 {
            (s, w, 0.0)
        } else {
            (s, 0.0, w)
        }
    });
    tables.push(ScoreTable::from_aggregates(triples).unwrap_or_default());
    tables
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
    fn the_two_thread_sort_equals_the_one_thread_sort() {
        let scores: Vec<f64> = (0..PARALLEL_MIN as u64 * 2 + 7)
            .map(|i| ((i.wrapping_mul(2654435761) % 1000) as f64) / 7.0)
            .collect();
        let labels = vec![false; scores.len()];
        let ranked = rank_records(&scores, &labels, None).unwrap();
        let keys: Vec<u64> = ranked.iter().map(|r| r.key).collect();
        let mut expected: Vec<u64> = scores.iter().map(|&s| descending_key(s)).collect();
        expected.sort_unstable();
        assert_eq!(keys, expected);
        let mut indices: Vec<usize> = ranked.iter().map(Ranked::index).collect();
        indices.sort_unstable();
        assert!(indices.iter().enumerate().all(|(i, &j)| i == j));
    }

    /// Scores with many ties, both zeros, negatives and extremes.
    const GRID: [f64; 12] = [
        0.0,
        -0.0,
        1.0,
        0.5,
        -0.5,
        1e-300,
        -1e-300,
        f64::MAX,
        f64::MIN,
        0.25,
        0.125,
        -3.0,
    ];

    fn records_of(picks: &[(usize, bool)]) -> Vec<Ranked> {
        picks
            .iter()
            .enumerate()
            .map(|(i, &(g, l))| Ranked {
                key: descending_key(GRID[g % GRID.len()]),
                tag: i as u32 | (u32::from(l) << 31),
                user: (i % 7) as u32,
            })
            .collect()
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(24))]
        /// The radix sort (runs of `RADIX_MIN` records or more) and the
        /// comparison sort of short runs give the order the comparison
        /// sort gave before: the same keys in the same order, each tie the
        /// same records; and within a tie record order (stable), so the
        /// order is one function of the input.
        #[test]
        fn the_run_sort_is_the_old_sort_made_stable(
            picks in proptest::collection::vec((0usize..12, proptest::bool::ANY), 0..(3 * RADIX_MIN)),
        ) {
            let records = records_of(&picks);
            let mut got = records.clone();
            sort_run(&mut got, &mut records.clone());
            let mut old = records.clone();
            old.sort_unstable_by_key(|r| r.key);
            let keys = |v: &[Ranked]| v.iter().map(|r| r.key).collect::<Vec<_>>();
            proptest::prop_assert_eq!(keys(&got), keys(&old));
            let ties = |v: &[Ranked]| {
                let mut v = v.to_vec();
                v.sort_unstable_by_key(|r| (r.key, r.tag & !(1 << 31)));
                v
            };
            proptest::prop_assert_eq!(ties(&got), ties(&old));
            let mut stable = records;
            stable.sort_by_key(|r| r.key);
            proptest::prop_assert_eq!(got, stable);
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(24))]
        /// The two-thread sort (called here on input of any size) gives the
        /// stable order, its parts cut at a key, with every user and label,
        /// and a spare as long as the records or none.
        #[test]
        fn the_two_part_sort_is_the_stable_sort(
            picks in proptest::collection::vec((0usize..12, proptest::bool::ANY), 0..(3 * RADIX_MIN)),
            short_users in proptest::bool::ANY,
        ) {
            let scores: Vec<f64> = picks.iter().map(|&(g, _)| GRID[g]).collect();
            let labels: Vec<bool> = picks.iter().map(|&(_, l)| l).collect();
            let users: Vec<u32> = (0..picks.len() as u32).map(|i| i % 7).collect();
            let users = if short_users { &users[..picks.len() / 2] } else { &users[..] };
            let mut sorted = sort_in_two(&scores, &labels, Some(users));
            let mut stable = records_of(&picks);
            for (i, r) in stable.iter_mut().enumerate() {
                r.user = users.get(i).copied().unwrap_or(0);
            }
            stable.sort_by_key(|r| r.key);
            let got: Vec<Ranked> = sorted.iter().copied().collect();
            proptest::prop_assert_eq!(got, stable);
            let (first, second) = sorted.parts();
            if let (Some(a), Some(b)) = (first.last(), second.first()) {
                proptest::prop_assert!(a.key < b.key);
            }
            let spare = sorted.take_spare().len();
            proptest::prop_assert!(spare == 0 || spare == picks.len());
        }
    }

    #[test]
    fn the_two_run_order_is_the_stable_order_and_the_table_cut_splits_no_tie() {
        let n = PARALLEL_MIN * 2 + 7;
        let picks: Vec<(usize, bool)> = (0..n)
            .map(|i| ((i.wrapping_mul(2654435761) >> 7) % 12, i % 3 == 0))
            .collect();
        let scores: Vec<f64> = picks.iter().map(|&(g, _)| GRID[g]).collect();
        let labels: Vec<bool> = picks.iter().map(|&(_, l)| l).collect();
        let ranked = rank_records(&scores, &labels, None).unwrap();
        let got: Vec<Ranked> = ranked.iter().copied().collect();
        let mut stable = records_of(&picks);
        stable.sort_by_key(|r| r.key);
        for r in &mut stable {
            r.user = 0;
        }
        assert_eq!(got, stable);
        // The two-thread table equals the one built record by record.
        let table = ScoreTable::from_records(&scores, &labels, None).unwrap();
        let mut expected = ScoreTable::with_capacity(n);
        for r in &stable {
            let (p, q) = if r.positive() { (1.0, 0.0) } else { (0.0, 1.0) };
            expected.push_group(r.score(), p, q);
        }
        assert_eq!(table, expected);
        assert_eq!(table.len(), 11, "{:?}", table.scores());
    }

    #[test]
    fn weighted_cumulative_sums_follow_scikit_learns_record_order() {
        // Two sorted runs (over PARALLEL_MIN records), many ties, weights
        // whose sums round: the reference is numpy's cumsum over the records
        // in descending score order, ties in record order.
        let n = PARALLEL_MIN + 5_000;
        let scores: Vec<f64> = (0..n).map(|i| ((i * 7919) % 97) as f64 / 97.0).collect();
        let labels: Vec<bool> = (0..n).map(|i| (i * 31) % 5 < 2).collect();
        let weights: Vec<f64> = (0..n).map(|i| [0.1, 0.2, 0.3, 0.7][i % 4]).collect();
        let table = ScoreTable::from_records(&scores, &labels, Some(&weights)).unwrap();
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
        let (mut tps, mut fps) = (0.0, 0.0);
        let mut expected = Vec::new();
        for (k, &i) in order.iter().enumerate() {
            if labels[i] {
                tps += weights[i];
            } else {
                fps += weights[i];
            }
            let last_of_tie = order.get(k + 1).is_none_or(|&j| scores[j] != scores[i]);
            if last_of_tie {
                expected.push((fps, tps));
            }
        }
        let got: Vec<(f64, f64)> = table.cumulative().collect();
        assert_eq!(got, expected);
    }

    #[test]
    fn ranking_sorts_descending_and_round_trips_scores_and_labels() {
        let scores: Vec<f64> = (0..5000)
            .map(|i| ((i as f64) * 0.618).sin() * 1e3 * if i % 3 == 0 { -1.0 } else { 1.0 })
            .chain([f64::MAX, f64::MIN, 1e-300, -1e-300, 0.0])
            .collect();
        let labels: Vec<bool> = (0..scores.len()).map(|i| i % 7 == 0).collect();
        let ranked = rank_records(&scores, &labels, None).unwrap();
        let sorted: Vec<f64> = ranked.iter().map(Ranked::score).collect();
        let mut expected = scores.clone();
        expected.sort_by(|a, b| b.total_cmp(a));
        assert_eq!(sorted, expected);
        assert!(ranked
            .iter()
            .all(|r| scores[r.index()] == r.score() && labels[r.index()] == r.positive()));
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
