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

/// Records of one request, being collected.
#[derive(Debug, Default)]
pub struct BatchBuilder {
    /// User id -> dense index (the names are kept once, here).
    user_index: UserMap<u32>,
    records: Vec<Record>,
    users: Vec<u32>,
}

/// Why a record could not be staged.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RecordError {
    #[error("prediction must be a finite number, found {0}")]
    NonFiniteScore(f64),
    #[error("weight must be finite and >= 0, found {0}")]
    BadWeight(f64),
    #[error("more than {0} distinct users in one request")]
    TooManyUsers(usize),
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
        if !record.weight.is_finite() || record.weight < 0.0 {
            return Err(RecordError::BadWeight(record.weight));
        }
        let user = match user {
            None => NO_USER,
            Some(name) => self.intern(name)?,
        };
        self.records.push(record);
        self.users.push(user);
        Ok(())
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
            mut users,
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
        for &u in &users {
            if let Some(slot) = starts.get_mut(bucket(u) + 1) {
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
                let target = users.get(i).map_or(b, |&u| bucket(u));
                let Some(j) = next.get_mut(target) else { break };
                if target != b && *j < records.len() {
                    // Move record i to its bucket's cursor; what was there comes to i.
                    records.swap(i, *j);
                    users.swap(i, *j);
                }
                *j += 1;
            }
        }
        drop(users);
        let mut per_user = Vec::with_capacity(user_names.len());
        for (i, name) in user_names.into_iter().enumerate() {
            let lo = starts.get(i).copied().unwrap_or(0);
            let hi = starts.get(i + 1).copied().unwrap_or(0);
            if let Some(slice) = records.get_mut(lo..hi) {
                per_user.push((name, ScoreAggregate::from_records(slice)));
            }
        }
        let global = ScoreAggregate::from_records(&mut records);
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
