//! Properties relating two ways of computing the same thing, on random data
//! with many ties and weights (including zeros). Epsilon 1e-9 throughout.

use evald::core::metrics::{
    auc, evaluate_records, roc_curve, BinaryParams, BinaryRecords, GaucAccumulator, GaucWeighting,
    ScoreTable, UserIndex,
};
use evald::core::rng::SplitMix64;
use proptest::prelude::*;

use crate::helpers::Tolerance;

const EPSILON: f64 = 1e-9;

/// Records: scores from a small grid (many ties), labels, weights in
/// {0, 0.5, 1, 2.5}, users among 5.
fn records() -> impl Strategy<Value = Vec<(f64, bool, f64, u32)>> {
    prop::collection::vec(
        (
            (0u8..8).prop_map(|s| f64::from(s) / 4.0 - 0.5),
            any::<bool>(),
            prop::sample::select(vec![0.0, 0.5, 1.0, 2.5]),
            0u32..5,
        ),
        0..80,
    )
}

fn columns(r: &[(f64, bool, f64, u32)]) -> (Vec<f64>, Vec<bool>, Vec<f64>, Vec<u32>) {
    (
        r.iter().map(|x| x.0).collect(),
        r.iter().map(|x| x.1).collect(),
        r.iter().map(|x| x.2).collect(),
        r.iter().map(|x| x.3).collect(),
    )
}

/// O(n^2) weighted pairwise AUC, ties one half.
fn pairwise_auc(scores: &[f64], labels: &[bool], weights: &[f64]) -> Option<f64> {
    let (mut num, mut pos, mut neg) = (0.0, 0.0, 0.0);
    for i in 0..scores.len() {
        if labels[i] {
            pos += weights[i];
        } else {
            neg += weights[i];
        }
        for j in 0..scores.len() {
            if labels[i] && !labels[j] {
                let w = weights[i] * weights[j];
                if scores[i] > scores[j] {
                    num += w;
                } else if scores[i] == scores[j] {
                    num += 0.5 * w;
                }
            }
        }
    }
    (pos > 0.0 && neg > 0.0).then(|| num / (pos * neg))
}

fn close(a: Option<f64>, b: Option<f64>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => Tolerance::Absolute(EPSILON).accepts(a, b),
        (None, None) => true,
        _ => false,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn auc_equals_the_pairwise_count_with_ties_as_one_half(r in records()) {
        let (s, l, w, _) = columns(&r);
        let table = ScoreTable::from_records(&s, &l, Some(&w)).unwrap();
        let ones = vec![1.0; s.len()];
        let unweighted = ScoreTable::from_records(&s, &l, None).unwrap();
        prop_assert!(close(auc(&table), pairwise_auc(&s, &l, &w)));
        prop_assert!(close(auc(&unweighted), pairwise_auc(&s, &l, &ones)));
    }

    #[test]
    fn roc_is_monotone_from_origin_to_one_one(r in records(), drop in any::<bool>()) {
        let (s, l, w, _) = columns(&r);
        let roc = roc_curve(&ScoreTable::from_records(&s, &l, Some(&w)).unwrap(), drop);
        prop_assert_eq!(roc.thresholds[0], None);
        let thresholds: Vec<f64> = roc.thresholds.iter().skip(1).map(|t| t.unwrap()).collect();
        prop_assert!(thresholds.windows(2).all(|p| p[0] > p[1]));
        for rate in [&roc.fpr, &roc.tpr].into_iter().flatten() {
            prop_assert_eq!(rate[0], 0.0);
            prop_assert!(rate.windows(2).all(|p| p[0] <= p[1]));
            prop_assert!((rate[rate.len() - 1] - 1.0).abs() <= EPSILON);
        }
    }

    #[test]
    fn shuffling_the_records_changes_nothing(r in records(), seed in any::<u64>()) {
        let mut shuffled = r.clone();
        SplitMix64::new(seed).shuffle(&mut shuffled);
        let report = |r: &[(f64, bool, f64, u32)]| {
            let (s, l, w, u) = columns(r);
            let records = BinaryRecords {
                scores: &s, labels: &l, weights: Some(&w),
                users: Some(UserIndex { users: &u, n_users: 5 }),
            };
            evaluate_records(&records, &BinaryParams { threshold: 0.25, ..BinaryParams::default() }, GaucWeighting::Clicks).unwrap()
        };
        let (a, b) = (report(&r), report(&shuffled));
        prop_assert!(close(a.auc, b.auc));
        prop_assert!(close(a.precision, b.precision));
        prop_assert!(close(a.recall, b.recall));
        prop_assert!(close(a.f_beta, b.f_beta));
        prop_assert!(close(a.accuracy, b.accuracy));
        prop_assert!(close(a.gauc.unwrap().value, b.gauc.unwrap().value));
        prop_assert!((a.confusion.tp - b.confusion.tp).abs() <= EPSILON);
        prop_assert!((a.confusion.fp - b.confusion.fp).abs() <= EPSILON);
        prop_assert_eq!(a.roc.thresholds, b.roc.thresholds);
        prop_assert_eq!(a.counts, b.counts);
    }

    #[test]
    fn gauc_equals_a_naive_per_user_computation(r in records(), weighted in any::<bool>()) {
        let (s, l, w, u) = columns(&r);
        let weights = weighted.then_some(w.as_slice());
        let records = BinaryRecords { scores: &s, labels: &l, weights, users: Some(UserIndex { users: &u, n_users: 5 }) };
        for weighting in GaucWeighting::ALL {
            let got = evaluate_records(&records, &BinaryParams::default(), weighting).unwrap().gauc.unwrap();
            // naive: filter each user's records, pairwise AUC, weighted mean
            let (mut sum, mut total, mut users, mut skipped) = (0.0, 0.0, 0, 0);
            for user in 0..5u32 {
                let idx: Vec<usize> = (0..s.len()).filter(|&i| u[i] == user).collect();
                if idx.is_empty() { continue; }
                users += 1;
                let us: Vec<f64> = idx.iter().map(|&i| s[i]).collect();
                let ul: Vec<bool> = idx.iter().map(|&i| l[i]).collect();
                let uw: Vec<f64> = idx.iter().map(|&i| if weighted { w[i] } else { 1.0 }).collect();
                match pairwise_auc(&us, &ul, &uw) {
                    None => skipped += 1,
                    Some(a) => {
                        let weight = match weighting {
                            GaucWeighting::Impressions => uw.iter().sum(),
                            GaucWeighting::Clicks => ul.iter().zip(&uw).filter(|p| *p.0).map(|p| p.1).sum(),
                            GaucWeighting::Uniform => 1.0,
                        };
                        sum += weight * a;
                        total += weight;
                    }
                }
            }
            prop_assert_eq!((got.users, got.users_skipped), (users, skipped));
            prop_assert!(close(got.value, (total > 0.0).then(|| sum / total)));
        }
    }

    #[test]
    fn per_user_tables_fed_to_the_accumulator_equal_the_record_path(r in records()) {
        let (s, l, w, u) = columns(&r);
        let records = BinaryRecords { scores: &s, labels: &l, weights: Some(&w), users: Some(UserIndex { users: &u, n_users: 5 }) };
        let from_records = evaluate_records(&records, &BinaryParams::default(), GaucWeighting::Impressions).unwrap().gauc.unwrap();
        let mut acc = GaucAccumulator::new();
        for user in 0..5u32 {
            let idx: Vec<usize> = (0..s.len()).filter(|&i| u[i] == user).collect();
            if idx.is_empty() { continue; }
            // aggregates in arbitrary (reversed) order, as a stream would hold them
            let table = ScoreTable::from_aggregates(idx.iter().rev().map(|&i| {
                if l[i] { (s[i], w[i], 0.0) } else { (s[i], 0.0, w[i]) }
            })).unwrap();
            acc.add_user(&table);
        }
        let from_tables = acc.finish(GaucWeighting::Impressions);
        prop_assert_eq!((from_tables.users, from_tables.users_skipped), (from_records.users, from_records.users_skipped));
        prop_assert!(close(from_tables.value, from_records.value));
    }
}
