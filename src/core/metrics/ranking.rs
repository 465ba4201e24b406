//! Per-user ranking metrics at cutoffs k: hit rate, precision, recall, NDCG,
//! MAP, and the mean reciprocal rank.
//!
//! Each user's records are ranked by score, descending, ties kept in input
//! order (a stable sort). For a user with `P >= 1` positives and `hits(k)`
//! positives among the first `k` records:
//!
//! - hit rate@k = 1 when `hits(k) > 0`;
//! - precision@k = `hits(k) / k` (even when the user has fewer than k records);
//! - recall@k = `hits(k) / P`;
//! - NDCG@k = `DCG(k) / IDCG(min(k, P))`, binary gains, discount
//!   `1 / log2(rank + 1)` (Järvelin & Kekäläinen 2002; `sklearn.metrics.ndcg_score`
//!   on tie-free scores);
//! - MAP@k = `Σ_{positives at rank r <= k} hits(r) / r`, divided by `min(k, P)`;
//! - MRR = `1 / rank` of the first positive.
//!
//! Each is the unweighted mean over the users with at least one positive;
//! users without one are counted in `users_skipped`. Sample weights play no
//! part.

use super::gauc::UserIndex;
use super::table::Ranked;
use super::MetricsError;

/// Cutoffs that passed [`RankingParams::check`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RankingParams {
    /// Distinct positive cutoffs, in request order.
    pub k: Vec<usize>,
}

impl RankingParams {
    /// # Errors
    /// [`MetricsError::InvalidParameter`] naming `ranking.k` when the list is
    /// empty, longer than `max_k`, holds a 0 or repeats a cutoff.
    pub fn check(k: Vec<usize>, max_k: usize) -> Result<RankingParams, MetricsError> {
        let invalid = |detail: String| MetricsError::InvalidParameter {
            name: "ranking.k",
            detail,
        };
        if k.is_empty() {
            return Err(invalid("is empty but at least one cutoff is needed".into()));
        }
        if k.len() > max_k {
            return Err(invalid(format!(
                "has {} cutoffs but at most {max_k} are allowed",
                k.len()
            )));
        }
        if let Some(i) = k.iter().position(|&v| v == 0) {
            return Err(invalid(format!(
                "[{i}] is 0 but every cutoff must be a positive integer"
            )));
        }
        for (i, v) in k.iter().enumerate() {
            if k[..i].contains(v) {
                return Err(invalid(format!("[{i}] repeats the cutoff {v}")));
            }
        }
        Ok(RankingParams { k })
    }
}

/// The ranking metrics; every `Vec` is parallel to `k`.
#[derive(Debug, Clone, PartialEq)]
pub struct RankingReport {
    pub k: Vec<usize>,
    pub hit_rate: Vec<Option<f64>>,
    pub precision: Vec<Option<f64>>,
    pub recall: Vec<Option<f64>>,
    pub ndcg: Vec<Option<f64>>,
    pub map: Vec<Option<f64>>,
    pub mrr: Option<f64>,
    /// Distinct users with records.
    pub users: usize,
    /// Users without a positive.
    pub users_skipped: usize,
}

impl RankingReport {
    /// The sentence for `warnings` when no user has a positive.
    pub fn warning(&self) -> Option<String> {
        self.mrr.is_none().then(|| {
            format!(
                "ranking is undefined: none of the {} users has a positive label",
                self.users
            )
        })
    }
}

/// Sums over the contributing users, one per cutoff.
#[derive(Debug, Clone, Default)]
struct Sums {
    hit: Vec<f64>,
    precision: Vec<f64>,
    recall: Vec<f64>,
    ndcg: Vec<f64>,
    map: Vec<f64>,
    mrr: f64,
    users: usize,
}

/// Ranking metrics of binary records grouped by user (see the module docs).
///
/// `O(n log n)`: a stable counting sort by user, then a stable sort of each
/// user's records by score.
///
/// # Errors
/// Length mismatches and user indices out of range, as [`MetricsError`].
pub fn ranking(
    scores: &[f64],
    labels: &[bool],
    users: UserIndex<'_>,
    params: &RankingParams,
) -> Result<RankingReport, MetricsError> {
    if labels.len() != scores.len() {
        return Err(MetricsError::LengthMismatch {
            field: "labels",
            len: labels.len(),
            expected: scores.len(),
        });
    }
    users.check(scores.len())?;
    let by_user = group_by_user(users);
    let mut ranker = Ranker::new(params);
    for records in by_user.windows() {
        if records.is_empty() {
            continue;
        }
        ranker.run.clear();
        ranker
            .run
            .extend(records.iter().map(|&i| (scores[i], labels[i])));
        // Stable: ties keep input order.
        ranker.run.sort_by(|a, b| b.0.total_cmp(&a.0));
        ranker.add_run();
    }
    Ok(ranker.finish())
}

/// The ranking metrics of users added one at a time, each as its records
/// ranked (score descending, ties in input order): what [`ranking`] does
/// after its own sort, and what `POST /metrics` does with the user buckets
/// of its one global sort ([`Ranker::add_ranked`]), in user order both.
#[derive(Debug)]
pub(crate) struct Ranker<'p> {
    ks: &'p [usize],
    sums: Sums,
    ideal: IdealDcg,
    discounts: Discounts,
    /// Users with records.
    present: usize,
    /// The user being added, ranked: `(score, label)`.
    run: Vec<(f64, bool)>,
    /// Running hits, DCG and AP sum after each rank of the user.
    at: Vec<(usize, f64, f64)>,
}

impl<'p> Ranker<'p> {
    pub(crate) fn new(params: &'p RankingParams) -> Self {
        let n = params.k.len();
        Ranker {
            ks: &params.k,
            sums: Sums {
                hit: vec![0.0; n],
                precision: vec![0.0; n],
                recall: vec![0.0; n],
                ndcg: vec![0.0; n],
                map: vec![0.0; n],
                ..Sums::default()
            },
            ideal: IdealDcg::default(),
            discounts: Discounts::default(),
            present: 0,
            run: Vec::new(),
            at: Vec::new(),
        }
    }

    /// Adds one user's records from the global sort (descending score,
    /// ties in any order; not empty): ties are put in [`ranking`]'s order,
    /// `scores` (the records' scores as given) descending by `total_cmp`
    /// (which puts 0.0 before -0.0, one key in the sort), then input order.
    pub(crate) fn add_ranked(&mut self, records: &mut [Ranked], scores: &[f64]) {
        let score = |r: &Ranked| scores.get(r.index()).copied().unwrap_or(0.0);
        let mut start = 0;
        while let Some(first) = records.get(start).copied() {
            let len = records.get(start..).map_or(0, |rest| {
                rest.iter().take_while(|r| r.same_score(&first)).count()
            });
            if len > 1 {
                if let Some(tie) = records.get_mut(start..start + len) {
                    tie.sort_unstable_by(|a, b| {
                        score(b)
                            .total_cmp(&score(a))
                            .then(a.index().cmp(&b.index()))
                    });
                }
            }
            start += len.max(1);
        }
        self.run.clear();
        self.run
            .extend(records.iter().map(|r| (r.score(), r.positive())));
        self.add_run();
    }

    /// Adds the user in `self.run` (ranked, not empty).
    fn add_run(&mut self) {
        self.present += 1;
        add_user(
            &self.run,
            self.ks,
            &mut self.ideal,
            &mut self.discounts,
            &mut self.at,
            &mut self.sums,
        );
    }

    pub(crate) fn finish(self) -> RankingReport {
        let sums = &self.sums;
        let mean = |total: f64| (sums.users > 0).then(|| total / sums.users as f64);
        let means = |totals: &[f64]| totals.iter().map(|&t| mean(t)).collect();
        RankingReport {
            k: self.ks.to_vec(),
            hit_rate: means(&sums.hit),
            precision: means(&sums.precision),
            recall: means(&sums.recall),
            ndcg: means(&sums.ndcg),
            map: means(&sums.map),
            mrr: mean(sums.mrr),
            users: self.present,
            users_skipped: self.present - sums.users,
        }
    }
}

/// Record indices grouped by user, input order kept inside each group.
pub(crate) struct ByUser {
    starts: Vec<usize>,
    order: Vec<usize>,
}

impl ByUser {
    pub(crate) fn windows(&self) -> impl Iterator<Item = &[usize]> + '_ {
        self.starts
            .windows(2)
            .map(|b| self.order.get(b[0]..b[1]).unwrap_or(&[]))
    }
}

/// A stable counting sort of the record indices by user, `O(n + users)`.
/// `users` must have passed [`UserIndex::check`].
pub(crate) fn group_by_user(users: UserIndex<'_>) -> ByUser {
    let mut starts = vec![0usize; users.n_users + 1];
    for &u in users.users {
        if let Some(s) = starts.get_mut(u as usize + 1) {
            *s += 1;
        }
    }
    for u in 0..users.n_users {
        starts[u + 1] += starts[u];
    }
    let mut next = starts.clone();
    let mut order = vec![0usize; users.users.len()];
    for (i, &u) in users.users.iter().enumerate() {
        if let Some(slot) = next.get_mut(u as usize) {
            if let Some(o) = order.get_mut(*slot) {
                *o = i;
            }
            *slot += 1;
        }
    }
    ByUser { starts, order }
}

/// `IDCG(j) = Σ_{r=1..j} 1 / log2(r + 1)`, grown on demand.
#[derive(Debug, Default)]
struct IdealDcg(Vec<f64>);

impl IdealDcg {
    fn at(&mut self, j: usize) -> f64 {
        while self.0.len() <= j {
            let r = self.0.len();
            let prev = self.0.last().copied().unwrap_or(0.0);
            self.0.push(if r == 0 { 0.0 } else { prev + discount(r) });
        }
        self.0[j]
    }
}

/// The DCG discount of 1-based `rank`.
fn discount(rank: usize) -> f64 {
    1.0 / (rank as f64 + 1.0).log2()
}

/// [`discount`] of each rank, computed once per rank (the same bits): a
/// million records would otherwise take a logarithm per positive.
#[derive(Debug, Default)]
struct Discounts(Vec<f64>);

impl Discounts {
    fn of(&mut self, rank: usize) -> f64 {
        while self.0.len() <= rank {
            let r = self.0.len();
            self.0.push(if r == 0 { 0.0 } else { discount(r) });
        }
        self.0[rank]
    }
}

/// Adds one user's ranked records (`(score, label)`, descending); `at` is
/// scratch space.
fn add_user(
    run: &[(f64, bool)],
    ks: &[usize],
    ideal: &mut IdealDcg,
    discounts: &mut Discounts,
    at: &mut Vec<(usize, f64, f64)>,
    sums: &mut Sums,
) {
    let positives = run.iter().filter(|r| r.1).count();
    if positives == 0 {
        return;
    }
    sums.users += 1;
    // Running hits, DCG and the AP sum after each rank; cutoff c reads
    // index min(k, len).
    let (mut hits, mut dcg, mut ap) = (0usize, 0.0, 0.0);
    at.clear();
    at.push((0usize, 0.0, 0.0));
    let mut first = None;
    for (r, &(_, positive)) in run.iter().enumerate() {
        let rank = r + 1;
        if positive {
            hits += 1;
            dcg += discounts.of(rank);
            ap += hits as f64 / rank as f64;
            first.get_or_insert(rank);
        }
        at.push((hits, dcg, ap));
    }
    let p = positives as f64;
    for (i, &k) in ks.iter().enumerate() {
        let (hits, dcg, ap) = at[k.min(run.len())];
        let h = hits as f64;
        sums.hit[i] += if hits > 0 { 1.0 } else { 0.0 };
        sums.precision[i] += h / k as f64;
        sums.recall[i] += h / p;
        sums.ndcg[i] += dcg / ideal.at(k.min(positives));
        sums.map[i] += ap / k.min(positives) as f64;
    }
    if let Some(rank) = first {
        sums.mrr += 1.0 / rank as f64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The metrics of one user straight from the definitions.
    fn direct(user: &[(f64, bool)], k: usize) -> Option<[f64; 6]> {
        let mut ranked = user.to_vec();
        ranked.sort_by(|a, b| b.0.partial_cmp(&a.0).unwrap());
        let p = ranked.iter().filter(|r| r.1).count();
        if p == 0 {
            return None;
        }
        let top = &ranked[..k.min(ranked.len())];
        let hits = top.iter().filter(|r| r.1).count() as f64;
        let dcg: f64 = top
            .iter()
            .enumerate()
            .filter(|(_, r)| r.1)
            .map(|(i, _)| 1.0 / ((i + 2) as f64).log2())
            .sum();
        let idcg: f64 = (0..k.min(p)).map(|i| 1.0 / ((i + 2) as f64).log2()).sum();
        let mut ap = 0.0;
        for (i, r) in top.iter().enumerate() {
            if r.1 {
                ap += top[..=i].iter().filter(|r| r.1).count() as f64 / (i + 1) as f64;
            }
        }
        let first = ranked.iter().position(|r| r.1).unwrap() + 1;
        Some([
            f64::from(u8::from(hits > 0.0)),
            hits / k as f64,
            hits / p as f64,
            dcg / idcg,
            ap / k.min(p) as f64,
            1.0 / first as f64,
        ])
    }

    proptest! {
        #[test]
        fn metrics_equal_a_direct_per_user_computation(
            records in prop::collection::vec((0u8..20, any::<bool>(), 0u32..6), 1..80),
            ks in prop::collection::btree_set(1usize..12, 1..5),
        ) {
            let scores: Vec<f64> = records.iter().map(|r| f64::from(r.0) / 3.0).collect();
            let labels: Vec<bool> = records.iter().map(|r| r.1).collect();
            let users: Vec<u32> = records.iter().map(|r| r.2).collect();
            let params = RankingParams::check(ks.iter().copied().collect(), 100).unwrap();
            let got = ranking(&scores, &labels, UserIndex { users: &users, n_users: 6 }, &params).unwrap();
            for (i, &k) in params.k.iter().enumerate() {
                let per_user: Vec<[f64; 6]> = (0..6u32)
                    .filter_map(|u| {
                        // input order kept for ties: the direct sort is stable too
                        let user: Vec<(f64, bool)> = (0..records.len())
                            .filter(|&j| users[j] == u)
                            .map(|j| (scores[j], labels[j]))
                            .collect();
                        direct(&user, k)
                    })
                    .collect();
                let mean = |m: usize| (!per_user.is_empty())
                    .then(|| per_user.iter().map(|v| v[m]).sum::<f64>() / per_user.len() as f64);
                for (m, got) in [&got.hit_rate, &got.precision, &got.recall, &got.ndcg, &got.map].iter().enumerate() {
                    match (got[i], mean(m)) {
                        (Some(a), Some(b)) => prop_assert!((a - b).abs() < 1e-12, "metric {m} k {k}: {a} vs {b}"),
                        (None, None) => {}
                        other => prop_assert!(false, "metric {m}: {other:?}"),
                    }
                }
                match (got.mrr, mean(5)) {
                    (Some(a), Some(b)) => prop_assert!((a - b).abs() < 1e-12),
                    (None, None) => {}
                    other => prop_assert!(false, "mrr: {other:?}"),
                }
                prop_assert_eq!(got.users - got.users_skipped, per_user.len());
            }
        }
    }

    /// `POST /metrics`' path: the user buckets of the one global sort.
    fn from_the_one_sort(
        scores: &[f64],
        labels: &[bool],
        users: &[u32],
        n_users: usize,
        params: &RankingParams,
    ) -> Option<RankingReport> {
        use crate::core::metrics::{
            evaluate_records_ranked, BeyondNames, BeyondParams, BinaryParams, BinaryRecords,
            GaucWeighting,
        };
        let records = BinaryRecords {
            scores,
            labels,
            weights: None,
            users: Some(UserIndex { users, n_users }),
        };
        let beyond = BeyondParams::default()
            .check(BeyondNames::BODY, 10)
            .unwrap();
        let (_, _, ranked) = evaluate_records_ranked(
            &records,
            &BinaryParams::default(),
            GaucWeighting::Impressions,
            &beyond,
            Some(params),
        )
        .unwrap();
        ranked
    }

    proptest! {
        #[test]
        fn the_one_sorts_buckets_give_the_same_bits(
            records in prop::collection::vec((0u8..6, any::<bool>(), 0u32..5, any::<bool>()), 1..80),
            ks in prop::collection::btree_set(1usize..12, 1..5),
        ) {
            // Few distinct scores: many ties, 0.0 and -0.0 among them.
            let scores: Vec<f64> = records
                .iter()
                .map(|r| if r.3 { -f64::from(r.0) / 5.0 } else { f64::from(r.0) / 5.0 })
                .collect();
            let labels: Vec<bool> = records.iter().map(|r| r.1).collect();
            let users: Vec<u32> = records.iter().map(|r| r.2).collect();
            let params = RankingParams::check(ks.iter().copied().collect(), 100).unwrap();
            let want = ranking(&scores, &labels, UserIndex { users: &users, n_users: 5 }, &params).unwrap();
            let got = from_the_one_sort(&scores, &labels, &users, 5, &params);
            prop_assert_eq!(format!("{got:?}"), format!("{:?}", Some(want)));
        }
    }

    #[test]
    fn the_two_thread_sort_gives_the_same_bits() {
        let n = crate::core::metrics::table::PARALLEL_MIN + 1_000;
        let scores: Vec<f64> = (0..n)
            .map(|i| match i % 11 {
                0 => 0.0,
                1 => -0.0,
                _ => ((i * 7919) % 101) as f64 / 100.0,
            })
            .collect();
        let labels: Vec<bool> = (0..n).map(|i| (i * 31) % 7 < 3).collect();
        let users: Vec<u32> = (0..n).map(|i| ((i * 17) % 300) as u32).collect();
        let params = RankingParams::check(vec![1, 3, 10, 1000], 100).unwrap();
        let want = ranking(
            &scores,
            &labels,
            UserIndex {
                users: &users,
                n_users: 300,
            },
            &params,
        )
        .unwrap();
        let got = from_the_one_sort(&scores, &labels, &users, 300, &params);
        assert_eq!(format!("{got:?}"), format!("{:?}", Some(want)));
    }

    #[test]
    fn ties_keep_input_order() {
        // One user, scores tied: the first record (a negative) ranks first.
        let params = RankingParams::check(vec![1], 10).unwrap();
        let got = ranking(
            &[0.5, 0.5],
            &[false, true],
            UserIndex {
                users: &[0, 0],
                n_users: 1,
            },
            &params,
        )
        .unwrap();
        assert_eq!(got.hit_rate, vec![Some(0.0)]);
        assert_eq!(got.mrr, Some(0.5));
    }

    #[test]
    fn bad_cutoffs_name_ranking_k() {
        for k in [vec![], vec![0], vec![3, 3], vec![1, 2, 3]] {
            let err = RankingParams::check(k.clone(), 2).unwrap_err();
            assert_eq!(err.field(), "ranking.k", "{k:?}");
        }
    }
}
