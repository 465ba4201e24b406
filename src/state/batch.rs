//! Staging one request's records into a local aggregate.
//!
//! Ingest parses the whole request into a [`BatchBuilder`] without touching the
//! store; only a fully parsed, valid batch becomes a [`StagedBatch`] that the
//! store merges under its lock. This is what makes a request atomic (a bad line
//! anywhere applies nothing) and keeps parsing outside every lock.

use super::aggregate::{Record, ScoreAggregate};
use super::UserMap;

/// Marks a staged record without a user.
const NO_USER: u32 = u32::MAX;

/// The label bit of [`Staged::tag`].
const POSITIVE: u32 = 1 << 31;
/// Weight codes in the low 31 bits of [`Staged::tag`]: the two weights that
/// cover nearly all traffic, then indices into the side table (offset by 2).
const WEIGHT_ONE: u32 = 0;
const WEIGHT_ZERO: u32 = 1;
const WEIGHT_TABLE: u32 = 2;

/// One staged record in 16 bytes (instead of 28: an `f64` weight with a
/// padded `bool`, and the user in a separate array): the exact score, the
/// user index, and a tag packing the label with a weight code. Any other
/// weight is kept exactly in [`BatchBuilder::weights`], so staging loses
/// nothing; it only costs 8 more bytes for such a record.
#[derive(Debug, Clone, Copy)]
struct Staged {
    score: f64,
    user: u32,
    tag: u32,
}

/// Records of one request, being collected.
#[derive(Debug, Default)]
pub struct BatchBuilder {
    /// User id -> dense index (the names are kept once, here).
    user_index: UserMap<u32>,
    records: Vec<Staged>,
    /// Weights other than 0 and 1, in staging order.
    weights: Vec<f64>,
}

/// The largest sample weight a stream takes. A stream keeps summing weights
/// (per score, per user, over the stream) batch after batch, so finite
/// weights near `f64::MAX` would overflow to infinity in its state and make
/// every later metrics query fail. At 1e100 a stream would need more than
/// 1e200 records to reach the f64 range, and the Mann-Whitney products of two
/// such sums stay finite too.
pub const MAX_WEIGHT: f64 = 1e100;

/// The one weight rule of a stream record: finite, >= 0 and at most
/// [`MAX_WEIGHT`]. The ingest routes call it to name the offending field
/// before staging; staging calls it again for callers that stage directly.
pub fn check_weight(weight: f64) -> Result<(), RecordError> {
    if !weight.is_finite() || weight < 0.0 {
        Err(RecordError::BadWeight(weight))
    } else if weight > MAX_WEIGHT {
        Err(RecordError::TooLargeWeight(weight))
    } else {
        Ok(())
    }
}

/// Why a record could not be staged.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RecordError {
    #[error("prediction must be a finite number, found {0}")]
    NonFiniteScore(f64),
    #[error("weight must be finite and >= 0, found {0}")]
    BadWeight(f64),
    #[error("weight must be at most {MAX_WEIGHT:e}, found {0}")]
    TooLargeWeight(f64),
    #[error("more than {0} distinct users in one request")]
    TooManyUsers(usize),
    #[error("more than {0} records with a weight other than 0 or 1 in one request")]
    TooManyWeights(usize),
}

/// The record a staged entry stands for.
fn unpack(r: &Staged, weights: &[f64]) -> Record {
    let weight = match r.tag & !POSITIVE {
        WEIGHT_ONE => 1.0,
        WEIGHT_ZERO => 0.0,
        // Always in range: codes are handed out by `push`.
        code => weights
            .get((code - WEIGHT_TABLE) as usize)
            .copied()
            .unwrap_or(0.0),
    };
    Record {
        score: r.score,
        positive: r.tag & POSITIVE != 0,
        weight,
    }
}

impl BatchBuilder {
    /// An empty builder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Stages one record; `user` groups it for GAUC. Checks what the parser
    /// cannot: a finite score and a finite weight `>= 0`.
    pub fn push(&mut self, user: Option<&str>, record: Record) -> Result<(), RecordError> {
        if !record.score.is_finite() {
            return Err(RecordError::NonFiniteScore(record.score));
        }
        check_weight(record.weight)?;
        let user = match user {
            None => NO_USER,
            Some(name) => self.intern(name)?,
        };
        let code = if record.weight == 1.0 {
            WEIGHT_ONE
        } else if record.weight == 0.0 {
            WEIGHT_ZERO
        } else {
            let code = u32::try_from(self.weights.len())
                .ok()
                .and_then(|i| i.checked_add(WEIGHT_TABLE))
                .filter(|&c| c < POSITIVE)
                .ok_or(RecordError::TooManyWeights(
                    (POSITIVE - WEIGHT_TABLE) as usize,
                ))?;
            self.weights.push(record.weight);
            code
        };
        let label = if record.positive { POSITIVE } else { 0 };
        self.records.push(Staged {
            score: record.score,
            user,
            tag: label | code,
        });
        Ok(())
    }

    /// Heap bytes the staged records hold (what the memory budget is
    /// checked against while a large body is still arriving).
    pub fn staged_bytes(&self) -> usize {
        self.records.capacity() * std::mem::size_of::<Staged>()
            + self.weights.capacity() * std::mem::size_of::<f64>()
    }

    fn intern(&mut self, name: &str) -> Result<u32, RecordError> {
        if let Some(&i) = self.user_index.get(name) {
            return Ok(i);
        }
        let i = u32::try_from(self.user_index.len())
            .ok()
            .filter(|&i| i < NO_USER)
            .ok_or(RecordError::TooManyUsers(NO_USER as usize))?;
        self.user_index.insert(name.to_owned(), i);
        Ok(i)
    }

    /// Records staged so far.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Distinct users staged so far.
    pub fn users(&self) -> usize {
        self.user_index.len()
    }

    /// True when nothing was staged.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Aggregates the staged records: one global aggregate and one per user.
    ///
    /// Records are grouped by user in place (an American flag sort: counting
    /// pass, then cycle swaps, linear and without a second buffer, which keeps
    /// the peak memory of a large batch low), each user's run is sorted by
    /// score into its aggregate, and finally the whole batch is sorted by
    /// score for the global aggregate.
    pub fn finish(self) -> StagedBatch {
        let BatchBuilder {
            user_index,
            mut records,
            weights,
        } = self;
        let mut user_names = vec![String::new(); user_index.len()];
        for (name, i) in user_index {
            if let Some(slot) = user_names.get_mut(i as usize) {
                *slot = name;
            }
        }
        let buckets = user_names.len() + 1; // the last bucket: records without a user
        let bucket = |u: u32| (u as usize).min(buckets - 1);
        let mut starts = vec![0usize; buckets + 1];
        for r in &records {
            if let Some(slot) = starts.get_mut(bucket(r.user) + 1) {
                *slot += 1;
            }
        }
        for i in 1..starts.len() {
            let prev = starts.get(i - 1).copied().unwrap_or(0);
            if let Some(slot) = starts.get_mut(i) {
                *slot += prev;
            }
        }
        let mut next = starts.clone();
        for b in 0..buckets {
            let end = starts.get(b + 1).copied().unwrap_or(0);
            while let Some(&i) = next.get(b).filter(|&&i| i < end) {
                let target = records.get(i).map_or(b, |r| bucket(r.user));
                let Some(j) = next.get_mut(target) else { break };
                if target != b && *j < records.len() {
                    // Move record i to its bucket's cursor; what was there comes to i.
                    records.swap(i, *j);
                }
                *j += 1;
            }
        }
        let score = |r: &Staged| r.score;
        let view = |r: &Staged| unpack(r, &weights);
        let mut per_user = Vec::with_capacity(user_names.len());
        for (i, name) in user_names.into_iter().enumerate() {
            let lo = starts.get(i).copied().unwrap_or(0);
            let hi = starts.get(i + 1).copied().unwrap_or(0);
            if let Some(slice) = records.get_mut(lo..hi) {
                per_user.push((name, ScoreAggregate::from_records_by(slice, score, view)));
            }
        }
        let global = ScoreAggregate::from_records_by(&mut records, score, view);
        StagedBatch {
            global,
            users: per_user,
        }
    }
}

/// A fully parsed, valid batch, aggregated and ready to merge.
#[derive(Debug, Clone, Default)]
pub struct StagedBatch {
    pub global: ScoreAggregate,
    pub users: Vec<(String, ScoreAggregate)>,
}

impl StagedBatch {
    /// Number of records in the batch.
    pub fn records(&self) -> u64 {
        self.global.counts().count
    }

    /// Upper bound on the heap the batch adds to a stream when merged.
    pub fn heap_bytes(&self) -> usize {
        self.global.heap_bytes()
            + self
                .users
                .iter()
                .map(|(name, agg)| agg.heap_bytes() + name.len())
                .sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(score: f64, positive: bool) -> Record {
        Record {
            score,
            positive,
            weight: 1.0,
        }
    }

    #[test]
    fn finish_groups_records_by_user_and_keeps_the_global_total() {
        let mut b = BatchBuilder::new();
        b.push(Some("a"), rec(0.1, true)).unwrap_or(());
        b.push(Some("b"), rec(0.2, false)).unwrap_or(());
        b.push(None, rec(0.3, true)).unwrap_or(());
        b.push(Some("a"), rec(0.4, false)).unwrap_or(());
        let staged = b.finish();
        assert_eq!(staged.records(), 4);
        let names: Vec<_> = staged
            .users
            .iter()
            .map(|(n, a)| (n.as_str(), a.counts().count))
            .collect();
        assert_eq!(names, vec![("a", 2), ("b", 1)]);
        let a: Vec<_> = staged.users[0].1.iter().collect();
        assert_eq!(a, vec![(0.1, 1.0, 0.0), (0.4, 0.0, 1.0)]);
    }

    proptest::proptest! {
        #[test]
        fn finish_equals_aggregating_each_users_records_alone(
            rows in proptest::collection::vec((0u8..30, proptest::bool::ANY, 0u8..5), 0..200)
        ) {
            let mut b = BatchBuilder::new();
            let user = |u: u8| (u < 4).then(|| format!("u{u}"));
            for &(s, p, u) in &rows {
                proptest::prop_assert!(b.push(user(u).as_deref(), rec(f64::from(s) / 30.0, p)).is_ok());
            }
            let staged = b.finish();
            let mut all: Vec<Record> = rows.iter().map(|&(s, p, _)| rec(f64::from(s) / 30.0, p)).collect();
            proptest::prop_assert_eq!(&staged.global, &ScoreAggregate::from_records(&mut all));
            for (name, agg) in &staged.users {
                let mut mine: Vec<Record> = rows
                    .iter()
                    .filter(|&&(_, _, u)| user(u).as_deref() == Some(name.as_str()))
                    .map(|&(s, p, _)| rec(f64::from(s) / 30.0, p))
                    .collect();
                proptest::prop_assert_eq!(agg, &ScoreAggregate::from_records(&mut mine));
            }
        }
    }

    #[test]
    fn a_staged_record_takes_16_bytes() {
        assert_eq!(std::mem::size_of::<Staged>(), 16);
    }

    proptest::proptest! {
        #[test]
        fn packed_weights_and_labels_stage_exactly(
            rows in proptest::collection::vec(
                (0u8..30, proptest::bool::ANY, 0u8..5,
                 proptest::prop_oneof![proptest::strategy::Just(1.0), proptest::strategy::Just(0.0), 1e-9f64..1e9]),
                0..200)
        ) {
            let mut b = BatchBuilder::new();
            let user = |u: u8| (u < 4).then(|| format!("u{u}"));
            let record = |s: u8, p: bool, w: f64| Record { score: f64::from(s) / 30.0, positive: p, weight: w };
            for &(s, p, u, w) in &rows {
                proptest::prop_assert!(b.push(user(u).as_deref(), record(s, p, w)).is_ok());
            }
            let staged = b.finish();
            let mut all: Vec<Record> = rows.iter().map(|&(s, p, _, w)| record(s, p, w)).collect();
            let whole = ScoreAggregate::from_records(&mut all);
            proptest::prop_assert_eq!(staged.global.counts(), whole.counts());
            let got: Vec<_> = staged.global.iter().collect();
            let want: Vec<_> = whole.iter().collect();
            proptest::prop_assert_eq!(got.len(), want.len());
            for (x, y) in got.iter().zip(&want) {
                // epsilon relative 1e-12: only the order of the weight sums differs
                proptest::prop_assert_eq!(x.0, y.0);
                proptest::prop_assert!((x.1 - y.1).abs() <= 1e-12 * y.1.max(1.0), "{:?} vs {:?}", x, y);
                proptest::prop_assert!((x.2 - y.2).abs() <= 1e-12 * y.2.max(1.0), "{:?} vs {:?}", x, y);
            }
        }
    }

    #[test]
    fn push_rejects_non_finite_scores_and_negative_weights() {
        let mut b = BatchBuilder::new();
        assert_eq!(
            b.push(None, rec(f64::NAN, true)).map_err(|e| e.to_string()),
            Err("prediction must be a finite number, found NaN".to_owned())
        );
        let bad = Record {
            score: 0.5,
            positive: true,
            weight: -1.0,
        };
        assert_eq!(b.push(None, bad), Err(RecordError::BadWeight(-1.0)));
        assert!(b.is_empty());
    }
}
