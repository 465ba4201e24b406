//! GAUC: the per-user AUC averaged over users.
//!
//! `GAUC = sum_u w_u * AUC_u / sum_u w_u` over the users whose AUC is defined
//! (both classes present with positive weight). `w_u` is the user's
//! impressions (record count, or summed sample weight), clicks (positive count,
//! or summed positive weight) or 1, see [`GaucWeighting`]. Users with one class
//! are skipped and counted; with no contributing user the value is `None`.

use super::auc::AreaSums;
use super::stats::{gauc_std_error, z_critical, MeanMoments};
use super::table::{Ranked, ScoreTable, SortedRecords};
use super::MetricsError;

/// How users are weighted in the GAUC mean.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum GaucWeighting {
    /// Records of the user (summed sample weight when weighted).
    #[default]
    Impressions,
    /// Positives of the user (summed positive weight when weighted).
    Clicks,
    /// Every contributing user counts once.
    Uniform,
}

impl GaucWeighting {
    /// Every weighting, in declaration order.
    pub const ALL: [GaucWeighting; 3] = [
        GaucWeighting::Impressions,
        GaucWeighting::Clicks,
        GaucWeighting::Uniform,
    ];

    /// The snake_case name used on the wire.
    pub fn name(self) -> &'static str {
        match self {
            GaucWeighting::Impressions => "impressions",
            GaucWeighting::Clicks => "clicks",
            GaucWeighting::Uniform => "uniform",
        }
    }

    /// A contributing user's weight in the GAUC mean, from the user's summed
    /// positive and negative weight (plain counts when unweighted). The one
    /// place the rule lives, shared by `POST /metrics` and the streams.
    pub fn user_weight(self, pos: f64, neg: f64) -> f64 {
        match self {
            GaucWeighting::Impressions => pos + neg,
            GaucWeighting::Clicks => pos,
            GaucWeighting::Uniform => 1.0,
        }
    }

    fn slot(self) -> usize {
        self as usize
    }
}

/// A finished GAUC.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Gauc {
    /// Weighted mean of the per-user AUCs; `None` when no user has both classes.
    pub value: Option<f64>,
    /// Every distinct user seen, skipped or not.
    pub users: usize,
    /// Users whose labels were all one class (AUC undefined), left out of the mean.
    pub users_skipped: usize,
    pub weighting: GaucWeighting,
    /// Cluster-robust standard error of `value` ([`gauc_std_error`]);
    /// `None` with fewer than two contributing users.
    pub std_error: Option<f64>,
    /// `value ± z·std_error` clipped to [0, 1], once a confidence level is
    /// applied ([`Gauc::with_interval`]).
    pub interval: Option<(f64, f64)>,
}

impl Gauc {
    /// A GAUC from its per-user moments: the weighted mean and its
    /// cluster-robust standard error. The one constructor of both values,
    /// shared by `POST /metrics` and the streams.
    pub fn from_moments(
        moments: &MeanMoments,
        users: usize,
        users_skipped: usize,
        weighting: GaucWeighting,
    ) -> Gauc {
        Gauc {
            value: moments.mean(),
            users,
            users_skipped,
            weighting,
            std_error: gauc_std_error(moments),
            interval: None,
        }
    }

    /// Sets the normal interval at confidence `level` (in (0, 1)).
    pub fn with_interval(mut self, level: f64) -> Gauc {
        self.interval = self.value.zip(self.std_error).map(|(v, se)| {
            let half = z_critical(level) * se;
            ((v - half).clamp(0.0, 1.0), (v + half).clamp(0.0, 1.0))
        });
        self
    }

    /// The sentence for `warnings` when the value is defined but its
    /// standard error is not.
    pub fn std_error_warning(&self) -> Option<String> {
        (self.value.is_some() && self.std_error.is_none()).then(|| {
            format!(
                "gauc.std_error, gauc.lower and gauc.upper are undefined: they need at least two contributing users (there are {}) and exact per-user aggregates",
                self.users - self.users_skipped
            )
        })
    }

    /// The sentence for `warnings` when the value is undefined.
    pub fn warning(&self) -> Option<String> {
        self.value.is_none().then(|| {
            format!(
                "gauc is undefined: none of the {} users has both positive and negative labels",
                self.users
            )
        })
    }
}

/// Adds users one at a time; the streams engine feeds it one [`ScoreTable`]
/// per user, `POST /metrics` feeds it sorted record buckets. Both end in the
/// same sums. It keeps the sums for every weighting so the weighting can be
/// chosen at [`GaucAccumulator::finish`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GaucAccumulator {
    users: usize,
    skipped: usize,
    /// The moments of the per-user AUCs per [`GaucWeighting`] slot.
    sums: [MeanMoments; 3],
}

impl GaucAccumulator {
    /// An empty accumulator.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one user's score table (a user with an empty table, e.g. all
    /// weights 0, is counted and skipped).
    pub fn add_user(&mut self, table: &ScoreTable) {
        self.add_sums(AreaSums::of(
            table
                .pos_weights()
                .iter()
                .copied()
                .zip(table.neg_weights().iter().copied()),
        ));
    }

    fn add_sums(&mut self, sums: AreaSums) {
        self.users += 1;
        let Some(auc) = sums.auc() else {
            self.skipped += 1;
            return;
        };
        for weighting in GaucWeighting::ALL {
            let w = weighting.user_weight(sums.pos, sums.neg);
            self.sums[weighting.slot()].add(w, auc);
        }
    }

    /// The weighted mean for `weighting`.
    pub fn finish(self, weighting: GaucWeighting) -> Gauc {
        Gauc::from_moments(
            &self.sums[weighting.slot()],
            self.users,
            self.skipped,
            weighting,
        )
    }
}

/// Users of the records, as dense indices `0..n_users` (the caller maps user
/// ids to indices, e.g. in order of first appearance).
#[derive(Debug, Clone, Copy)]
pub struct UserIndex<'a> {
    pub users: &'a [u32],
    pub n_users: usize,
}

impl UserIndex<'_> {
    /// # Errors
    /// [`MetricsError::LengthMismatch`] when there are not `expected` users,
    /// [`MetricsError::UserOutOfRange`] for an index `>= n_users`.
    pub fn check(&self, expected: usize) -> Result<(), MetricsError> {
        if self.users.len() != expected {
            return Err(MetricsError::LengthMismatch {
                field: "user_ids",
                len: self.users.len(),
                expected,
            });
        }
        match self.users.iter().position(|&u| u as usize >= self.n_users) {
            Some(index) => Err(MetricsError::UserOutOfRange {
                index,
                user: self.users[index] as usize,
                n_users: self.n_users,
            }),
            None => Ok(()),
        }
    }
}

/// GAUC of records from the one global sort ([`rank_records`] with users,
/// already checked by [`UserIndex::check`]).
///
/// A stable counting sort by user keeps each user's records in score order, so
/// no per-user sort is needed: `O(n + users)` after the global sort. `users`
/// counts the distinct indices that have records. Each user's records (in
/// score order, not empty) also go to `each_user`, in user order: the
/// per-user ranking metrics read the same buckets. `spare`, when as long
/// as the records (the sort's scratch), holds the buckets; otherwise they
/// go to a copy of the records.
pub(crate) fn accumulate_ranked(
    ranked: &SortedRecords,
    spare: Vec<Ranked>,
    weights: Option<&[f64]>,
    n_users: usize,
    mut each_user: impl FnMut(&mut [Ranked]),
) -> GaucAccumulator {
    let mut starts = vec![0usize; n_users + 1];
    for r in ranked.unordered() {
        if let Some(slot) = starts.get_mut(r.user as usize + 1) {
            *slot += 1;
        }
    }
    for u in 0..n_users {
        starts[u + 1] += starts[u];
    }
    let mut next = starts.clone();
    // Every slot is overwritten below (each record has a user < n_users).
    let mut bucketed = if spare.len() == ranked.len() {
        spare
    } else {
        ranked.unordered().copied().collect()
    };
    for r in ranked.iter() {
        if let Some(slot) = next.get_mut(r.user as usize) {
            if let Some(b) = bucketed.get_mut(*slot) {
                *b = *r;
            }
            *slot += 1;
        }
    }
    let mut acc = GaucAccumulator::new();
    for bounds in starts.windows(2) {
        let run = bucketed.get_mut(bounds[0]..bounds[1]).unwrap_or(&mut []);
        if !run.is_empty() {
            acc.add_sums(AreaSums::of(ScoreGroups { run, weights }));
            each_user(run);
        }
    }
    acc
}

/// [`accumulate_ranked`] without the buckets, when nothing else reads
/// them (no ranking): the records are read once in score order and each
/// goes straight to its user's running sums, which see that user's records
/// in the order its bucket would hold them, so every sum has the same bits.
/// No 16-byte copy of every record into buckets, no histogram pass: one
/// small running state per user (48 bytes; the states of 20,000 users stay
/// in L2).
pub(crate) fn accumulate_streamed(
    ranked: &SortedRecords,
    weights: Option<&[f64]>,
    n_users: usize,
) -> GaucAccumulator {
    let mut users = vec![UserSums::default(); n_users];
    for r in ranked.iter() {
        if let Some(user) = users.get_mut(r.user as usize) {
            let w = weights.and_then(|w| w.get(r.index()).copied());
            user.add(r.key(), r.positive(), w.unwrap_or(1.0));
        }
    }
    let mut acc = GaucAccumulator::new();
    for user in users.iter_mut().filter(|u| u.seen) {
        user.close_group();
        acc.add_sums(user.sums);
    }
    acc
}

/// One user's [`AreaSums`] so far and the group of its current score.
#[derive(Debug, Clone, Copy, Default)]
struct UserSums {
    seen: bool,
    key: u64,
    group_pos: f64,
    group_neg: f64,
    sums: AreaSums,
}

impl UserSums {
    /// The user's next record (keys ascending, i.e. scores descending).
    #[inline(always)]
    fn add(&mut self, key: u64, positive: bool, w: f64) {
        if key != self.key || !self.seen {
            if self.seen {
                self.close_group();
            }
            (self.seen, self.key, self.group_pos, self.group_neg) = (true, key, 0.0, 0.0);
        }
        if positive {
            self.group_pos += w;
        } else {
            self.group_neg += w;
        }
    }

    /// Adds the current score's group to the sums, as [`ScoreGroups`]
    /// yields it to [`AreaSums::of`].
    fn close_group(&mut self) {
        self.sums.add_group(self.group_pos, self.group_neg);
    }
}

/// `(pos, neg)` weight per distinct score of a run of ranked records.
struct ScoreGroups<'a> {
    run: &'a [Ranked],
    weights: Option<&'a [f64]>,
}

impl Iterator for ScoreGroups<'_> {
    type Item = (f64, f64);

    fn next(&mut self) -> Option<(f64, f64)> {
        let first = *self.run.first()?;
        let (mut pos, mut neg) = (0.0, 0.0);
        let mut taken = 0;
        for r in self.run.iter().take_while(|r| r.same_score(&first)) {
            let w = self
                .weights
                .and_then(|w| w.get(r.index()).copied())
                .unwrap_or(1.0);
            if r.positive() {
                pos += w;
            } else {
                neg += w;
            }
            taken += 1;
        }
        self.run = self.run.get(taken..).unwrap_or(&[]);
        Some((pos, neg))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::metrics::table::rank_records;

    fn accumulate(
        scores: &[f64],
        labels: &[bool],
        weights: Option<&[f64]>,
        users: &[u32],
        n_users: usize,
    ) -> Result<GaucAccumulator, MetricsError> {
        UserIndex { users, n_users }.check(scores.len())?;
        let ranked = rank_records(scores, labels, Some(users))?;
        Ok(accumulate_ranked(
            &ranked,
            Vec::new(),
            weights,
            n_users,
            |_| {},
        ))
    }

    #[test]
    fn averages_per_user_auc_by_hand() {
        // user 0: pos 0.9, neg 0.1, 0.8 -> auc 1, 3 impressions, 1 click
        // user 1: pos 0.2, neg 0.7 -> auc 0, 2 impressions, 1 click
        // user 2: only positives -> skipped
        let scores = [0.9, 0.1, 0.8, 0.2, 0.7, 0.5];
        let labels = [true, false, false, true, false, true];
        let users = [0, 0, 0, 1, 1, 2];
        let acc = accumulate(&scores, &labels, None, &users, 3).unwrap();
        let g = acc.clone().finish(GaucWeighting::Impressions);
        assert_eq!(g.value, Some(3.0 / 5.0));
        assert_eq!((g.users, g.users_skipped), (3, 1));
        assert_eq!(acc.clone().finish(GaucWeighting::Clicks).value, Some(0.5));
        assert_eq!(acc.finish(GaucWeighting::Uniform).value, Some(0.5));
    }

    #[test]
    fn tables_and_record_buckets_agree() {
        let scores = [0.3, 0.3, 0.9, 0.1, 0.3, 0.5];
        let labels = [true, false, false, true, true, false];
        let weights = [1.5, 2.0, 0.0, 1.0, 0.25, 3.0];
        let from_records = accumulate(&scores, &labels, Some(&weights), &[0; 6], 1).unwrap();
        let mut from_table = GaucAccumulator::new();
        from_table.add_user(&ScoreTable::from_records(&scores, &labels, Some(&weights)).unwrap());
        assert_eq!(from_records, from_table);
    }

    proptest::proptest! {
        /// The streamed sums are the bucketed ones, bit for bit: ties,
        /// weights with zeros, users without records.
        #[test]
        fn streamed_equals_bucketed(
            records in proptest::collection::vec((0u8..6, proptest::bool::ANY, 0u8..4, 0u32..9), 0..400),
            weighted in proptest::bool::ANY,
        ) {
            let scores: Vec<f64> = records.iter().map(|r| f64::from(r.0) / 5.0).collect();
            let labels: Vec<bool> = records.iter().map(|r| r.1).collect();
            let weights: Vec<f64> = records.iter().map(|r| f64::from(r.2) / 3.0).collect();
            let users: Vec<u32> = records.iter().map(|r| r.3).collect();
            let weights = weighted.then_some(weights.as_slice());
            let ranked = rank_records(&scores, &labels, Some(&users)).unwrap();
            let bucketed = accumulate_ranked(&ranked, Vec::new(), weights, 10, |_| {});
            let streamed = accumulate_streamed(&ranked, weights, 10);
            proptest::prop_assert_eq!(format!("{bucketed:?}"), format!("{streamed:?}"));
        }
    }

    #[test]
    fn no_contributing_user_is_none_with_a_warning() {
        let mut acc = GaucAccumulator::new();
        acc.add_user(&ScoreTable::from_records(&[0.1], &[true], None).unwrap());
        acc.add_user(&ScoreTable::default());
        let g = acc.finish(GaucWeighting::Impressions);
        assert_eq!(g.value, None);
        assert_eq!((g.users, g.users_skipped), (2, 2));
        assert!(g.warning().is_some());
    }

    #[test]
    fn rejects_user_indices_out_of_range() {
        let r = accumulate(&[0.5], &[true], None, &[3], 2);
        assert!(matches!(
            r,
            Err(MetricsError::UserOutOfRange {
                index: 0,
                user: 3,
                ..
            })
        ));
    }
}
