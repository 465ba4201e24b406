//! GAUC as a fixed set of mergeable sums, so any store can answer it without
//! handing every user to the caller.
//!
//! A store keeps (or computes at query time) one [`GaucSums`] per bucket of
//! users; the caller adds the buckets up ([`GaucSums::merge`]) and finishes
//! ([`GaucSums::finish`]). The in-memory store answers with a single bucket
//! built over its users; a remote store keeps per-bucket sums next to the
//! users they cover and updates them as users change (subtracting a user's
//! old [`UserContribution`] and adding its new one). Either way the per-user
//! rule ([`UserContribution::of`]) and the final arithmetic are this code.
//!
//! For a user `u` with AUC `a_u`, weight `w_u` (the core's
//! [`GaucWeighting::user_weight`]) and AUC error bound `b_u`, each weighting
//! keeps
//!
//! ```text
//! W = Σ w_u   Σ w_u·a_u   Σ w_u·b_u   Σ w_u²   Σ w_u²·a_u   Σ w_u²·a_u²
//! ```
//!
//! over the contributing users (both classes with positive weight), plus the
//! number of users and of skipped (one-class) users. Then
//! `GAUC = Σ w_u·a_u / W`, its bound is `Σ w_u·b_u / W`, and the
//! cluster-robust standard error is
//! `sqrt(U/(U−1) · Σ w_u²·(a_u − G)²) / W` with
//! `Σ w_u²·(a_u − G)² = Σ w_u²·a_u² − 2G·Σ w_u²·a_u + G²·Σ w_u²`.

use crate::core::metrics::stats::MeanMoments;
use crate::core::metrics::{Gauc, GaucWeighting};

use super::aggregate::ScoreAggregate;

/// What one user adds to the GAUC sums: its AUC (`None` with one class), its
/// summed positive and negative weight and its AUC error bound.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct UserContribution {
    pub auc: Option<f64>,
    pub pos: f64,
    pub neg: f64,
    pub auc_error_bound: f64,
}

impl UserContribution {
    /// A total order on the fields' bits (see [`GaucSums::of_users`]).
    fn order_key(&self) -> (u64, u64, u64, u64) {
        (
            self.auc.map_or(u64::MAX, f64::to_bits),
            self.pos.to_bits(),
            self.neg.to_bits(),
            self.auc_error_bound.to_bits(),
        )
    }

    /// The contribution of a user's aggregate. The AUC comes from the core
    /// run straight over the aggregate ([`ScoreAggregate::auc`]), no table.
    pub fn of(agg: &ScoreAggregate) -> UserContribution {
        let auc = agg.auc();
        let (pos, neg) = agg.weight_totals();
        let contributes = auc.is_some() && pos > 0.0 && neg > 0.0;
        UserContribution {
            auc: if contributes { auc } else { None },
            pos,
            neg,
            // Only a contributing user's bound enters a sum.
            auc_error_bound: if contributes {
                agg.auc_error_bound()
            } else {
                0.0
            },
        }
    }
}

/// The sums of one weighting (see the module docs).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct WeightedSums {
    /// `Σ w_u`
    pub weight: f64,
    /// `Σ w_u·a_u`
    pub weighted_auc: f64,
    /// `Σ w_u·b_u`
    pub weighted_bound: f64,
    /// `Σ w_u²`
    pub weight_sq: f64,
    /// `Σ w_u²·a_u`
    pub weight_sq_auc: f64,
    /// `Σ w_u²·a_u²`
    pub weight_sq_auc_sq: f64,
}

impl WeightedSums {
    fn add(&mut self, w: f64, auc: f64, bound: f64, sign: f64) {
        self.weight += sign * w;
        self.weighted_auc += sign * (w * auc);
        self.weighted_bound += sign * (w * bound);
        let w2 = w * w;
        self.weight_sq += sign * w2;
        self.weight_sq_auc += sign * (w2 * auc);
        self.weight_sq_auc_sq += sign * (w2 * auc * auc);
    }

    fn merge(&mut self, o: &WeightedSums) {
        self.weight += o.weight;
        self.weighted_auc += o.weighted_auc;
        self.weighted_bound += o.weighted_bound;
        self.weight_sq += o.weight_sq;
        self.weight_sq_auc += o.weight_sq_auc;
        self.weight_sq_auc_sq += o.weight_sq_auc_sq;
    }
}

/// The GAUC sums of a set of users (one bucket, or a whole stream once the
/// buckets are merged), for every weighting at once so the weighting is
/// chosen at query time.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct GaucSums {
    /// Every user counted, skipped or not.
    pub users: u64,
    /// Users with one class only (AUC undefined), left out of the sums.
    pub skipped: u64,
    /// Indexed like [`GaucWeighting::ALL`].
    pub by_weighting: [WeightedSums; 3],
}

/// A finished GAUC with its certified bound and cluster-robust standard error.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GaucSummary {
    pub gauc: Gauc,
    /// Upper bound on |gauc - exact gauc|: the weighted mean of the users'
    /// AUC bounds (each user's AUC moves by at most its bound; the weights
    /// are exact); 0 when there is no contributing user.
    pub error_bound: f64,
}

fn slot(weighting: GaucWeighting) -> usize {
    GaucWeighting::ALL
        .iter()
        .position(|w| *w == weighting)
        .unwrap_or(0)
}

impl GaucSums {
    /// The sums over `users`' aggregates (the in-memory store's single
    /// bucket), the same bits in whatever order `users` come. Floating-point
    /// sums change in the last bits with the order (the standard error most,
    /// a difference of near-equal sums), and a map's order changes from
    /// process to process: a restart would answer other bits. So the
    /// contributions are added in the order of their own bits; equal keys
    /// are equal contributions. Sorting them reads no user id and walks the
    /// map in its own order, where sorting the users by id read every key
    /// and then the map at random (README, Performance).
    pub fn of_users<'a>(users: impl IntoIterator<Item = &'a ScoreAggregate>) -> GaucSums {
        let mut contributions: Vec<UserContribution> =
            users.into_iter().map(UserContribution::of).collect();
        contributions.sort_unstable_by_key(UserContribution::order_key);
        let mut sums = GaucSums::default();
        for user in &contributions {
            sums.add(user);
        }
        sums
    }

    /// Adds one user.
    pub fn add(&mut self, user: &UserContribution) {
        self.apply(user, 1.0);
    }

    /// Takes one user out again (its contribution as it was added), so a
    /// store can replace a changed user's old contribution with its new one.
    pub fn remove(&mut self, user: &UserContribution) {
        self.apply(user, -1.0);
    }

    fn apply(&mut self, user: &UserContribution, sign: f64) {
        let step = |n: u64| {
            if sign > 0.0 {
                n.saturating_add(1)
            } else {
                n.saturating_sub(1)
            }
        };
        self.users = step(self.users);
        let Some(auc) = user.auc else {
            self.skipped = step(self.skipped);
            return;
        };
        for weighting in GaucWeighting::ALL {
            let w = weighting.user_weight(user.pos, user.neg);
            self.by_weighting[slot(weighting)].add(w, auc, user.auc_error_bound, sign);
        }
    }

    /// Adds another bucket's sums.
    pub fn merge(&mut self, other: &GaucSums) {
        self.users = self.users.saturating_add(other.users);
        self.skipped = self.skipped.saturating_add(other.skipped);
        for (mine, theirs) in self.by_weighting.iter_mut().zip(&other.by_weighting) {
            mine.merge(theirs);
        }
    }

    /// The sum of several buckets, in the order given.
    pub fn total<'a>(buckets: impl IntoIterator<Item = &'a GaucSums>) -> GaucSums {
        let mut sums = GaucSums::default();
        for b in buckets {
            sums.merge(b);
        }
        sums
    }

    /// The sums of one weighting.
    pub fn weighted(&self, weighting: GaucWeighting) -> &WeightedSums {
        &self.by_weighting[slot(weighting)]
    }

    /// GAUC, its bound and its standard error under `weighting`.
    pub fn finish(&self, weighting: GaucWeighting) -> GaucSummary {
        let s = self.weighted(weighting);
        let contributing = self.users.saturating_sub(self.skipped);
        let moments = MeanMoments {
            n: usize::try_from(contributing).unwrap_or(usize::MAX),
            w: s.weight,
            wa: s.weighted_auc,
            w2: s.weight_sq,
            w2a: s.weight_sq_auc,
            w2a2: s.weight_sq_auc_sq,
        };
        let mut gauc = Gauc::from_moments(
            &moments,
            usize::try_from(self.users).unwrap_or(usize::MAX),
            usize::try_from(self.skipped).unwrap_or(usize::MAX),
            weighting,
        );
        let error_bound = if s.weight > 0.0 {
            s.weighted_bound / s.weight
        } else {
            0.0
        };
        // A compacted user's AUC is known only within its bound, and no
        // certified bound on the standard error is derived: withhold it.
        if error_bound > 0.0 {
            gauc.std_error = None;
        }
        GaucSummary { gauc, error_bound }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::Record;

    fn user(records: &[(f64, bool)]) -> ScoreAggregate {
        let mut rs: Vec<Record> = records
            .iter()
            .map(|&(score, positive)| Record {
                score,
                positive,
                weight: 1.0,
            })
            .collect();
        ScoreAggregate::from_records(&mut rs)
    }

    fn users() -> Vec<ScoreAggregate> {
        vec![
            user(&[(0.9, true), (0.1, false)]), // auc 1, 2 records
            user(&[(0.2, true), (0.8, false), (0.5, true), (0.3, false)]), // auc 0.25, 4 records
            user(&[(0.3, true), (0.4, true)]),  // one class: skipped
            user(&[(0.6, true), (0.6, false)]), // auc 0.5, 2 records
        ]
    }

    #[test]
    fn the_sums_have_the_same_bits_in_any_user_order() {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let many: Vec<ScoreAggregate> = (0..2000)
            .map(|_| {
                let n = 2 + next() % 9;
                let records: Vec<(f64, bool)> = (0..n)
                    .map(|_| ((next() % 1000) as f64 / 999.0, next() % 3 == 0))
                    .collect();
                user(&records)
            })
            .collect();
        let forward = GaucSums::of_users(&many);
        let backward = GaucSums::of_users(many.iter().rev());
        let rotated = GaucSums::of_users(many[700..].iter().chain(&many[..700]));
        for weighting in GaucWeighting::ALL {
            let bits = |s: &GaucSums| {
                let f = s.finish(weighting);
                (
                    f.gauc.value.map(f64::to_bits),
                    f.gauc.std_error.map(f64::to_bits),
                )
            };
            assert!(bits(&forward).1.is_some(), "{weighting:?}");
            assert_eq!(bits(&forward), bits(&backward), "{weighting:?}");
            assert_eq!(bits(&forward), bits(&rotated), "{weighting:?}");
        }
    }

    #[test]
    fn gauc_and_standard_error_by_hand() {
        let sums = GaucSums::of_users(&users());
        let s = sums.finish(GaucWeighting::Impressions);
        // (2*1 + 4*0.25 + 2*0.5) / 8
        let g = 4.0 / 8.0;
        assert_eq!(s.gauc.users, 4);
        assert_eq!(s.gauc.users_skipped, 1);
        assert!(s.gauc.value.is_some_and(|v| (v - g).abs() < 1e-15));
        let spread: f64 = [(2.0, 1.0), (4.0, 0.25), (2.0, 0.5)]
            .iter()
            .map(|(w, a): &(f64, f64)| w * w * (a - g).powi(2))
            .sum();
        let se = (3.0 / 2.0 * spread).sqrt() / 8.0;
        assert!(
            s.gauc.std_error.is_some_and(|v| (v - se).abs() < 1e-15),
            "{s:?}"
        );
        assert_eq!(s.error_bound, 0.0);
        let uniform = sums.finish(GaucWeighting::Uniform);
        assert!(uniform
            .gauc
            .value
            .is_some_and(|v| (v - 1.75 / 3.0).abs() < 1e-15));
    }

    #[test]
    fn buckets_merge_to_the_whole_and_a_removed_user_leaves_no_trace() {
        let all = users();
        let whole = GaucSums::of_users(&all);
        let (a, b) = all.split_at(2);
        let merged = GaucSums::total([&GaucSums::of_users(a), &GaucSums::of_users(b)]);
        for w in GaucWeighting::ALL {
            let (x, y) = (whole.finish(w), merged.finish(w));
            assert_eq!(x.gauc.users, y.gauc.users);
            assert!(
                matches!((x.gauc.value, y.gauc.value), (Some(p), Some(q)) if (p - q).abs() < 1e-15)
            );
        }
        let mut changed = whole;
        changed.remove(&UserContribution::of(&all[1]));
        assert_eq!(changed.users, 3);
        let without = GaucSums::of_users([&all[0], &all[2], &all[3]]);
        let (x, y) = (
            changed.finish(GaucWeighting::Impressions),
            without.finish(GaucWeighting::Impressions),
        );
        assert!(
            matches!((x.gauc.value, y.gauc.value), (Some(p), Some(q)) if (p - q).abs() < 1e-15)
        );
    }

    #[test]
    fn no_contributing_user_has_no_value_and_one_user_no_standard_error() {
        let none = GaucSums::of_users(&[user(&[(0.1, true)])]);
        let s = none.finish(GaucWeighting::Impressions);
        assert_eq!(
            (s.gauc.value, s.gauc.std_error, s.error_bound),
            (None, None, 0.0)
        );
        let one = GaucSums::of_users(&[user(&[(0.9, true), (0.1, false)])]);
        let s = one.finish(GaucWeighting::Clicks);
        assert_eq!((s.gauc.value, s.gauc.std_error), (Some(1.0), None));
    }
}
