//! Criterion benches of the metrics core on the data set:
//! 1,000,000 binary predictions from 20,000 users, already in memory.
//!
//! The data comes from the same splitmix64 recipe as
//! `scripts/gen_metrics_body.py` and `scripts/bench_metrics_sklearn.py`, so
//! all three time the same records:
//!   h_k(i) = splitmix64(4 i + k)  (the first draw of the core's SplitMix64
//!                                  seeded with 4 i + k)
//!   score  = (h_0(i) >> 11) % 1_000_000 / 1e6   (six decimals, some ties)
//!   label  = (h_1(i) >> 11) / 2^53 < score       (calibrated, AUC ~ 0.83)
//!   user   = (h_2(i) >> 11) % 20_000
//!
//! Besides the core, it times the request machinery a simplification must
//! not slow down: the two-thread parse of the body against one thread, and
//! the user-id interner against `indexmap` alternatives (README → Performance
//! has the figures and why the hand-rolled table stays).
//!
//! Run: `cargo bench --bench metrics` (one group: `-- interner`)

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use evald::api::extract::parse_json_with;
use evald::api::metrics::{short_key, Interner, MetricsRequest};
use evald::core::metrics::ranking::RankingParams;
use evald::core::metrics::{
    evaluate_records, evaluate_records_beyond, evaluate_records_ranked, BeyondNames, BeyondParams,
    BinStrategy, BinaryParams, BinaryRecords, GaucWeighting, ScoreTable, UserIndex,
};
use evald::core::rng::SplitMix64;
use indexmap::{IndexMap, IndexSet};

mod common;
use common::on_cpu_time;

const N: usize = 1_000_000;
const USERS: u64 = 20_000;

fn splitmix64(x: u64) -> u64 {
    SplitMix64::new(x).next_u64()
}

struct Data {
    scores: Vec<f64>,
    labels: Vec<bool>,
    users: Vec<u32>,
}

fn data() -> Data {
    let h = |i: usize, k: u64| splitmix64(4 * i as u64 + k) >> 11;
    let scores: Vec<f64> = (0..N).map(|i| (h(i, 0) % 1_000_000) as f64 / 1e6).collect();
    let labels = (0..N)
        .map(|i| (h(i, 1) as f64 / (1u64 << 53) as f64) < scores[i])
        .collect();
    let users = (0..N).map(|i| (h(i, 2) % USERS) as u32).collect();
    Data {
        scores,
        labels,
        users,
    }
}

/// The same records as a POST /metrics body (about 20 MB).
fn body(d: &Data) -> Vec<u8> {
    let mut out = String::with_capacity(22 << 20);
    out.push_str("{\"predictions\":[");
    for (i, s) in d.scores.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&s.to_string());
    }
    out.push_str("],\"labels\":[");
    for (i, &l) in d.labels.iter().enumerate() {
        out.push_str(if i > 0 { "," } else { "" });
        out.push(if l { '1' } else { '0' });
    }
    out.push_str("],\"user_ids\":[");
    for (i, u) in d.users.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&format!("\"u{u}\""));
    }
    out.push_str("]}");
    out.into_bytes()
}

/// foldhash, as the library's interner uses.
type Hasher = foldhash::fast::RandomState;

/// The drop-in `indexmap` replacement of the interner's short-key table:
/// packed key -> dense index, names beside it.
#[derive(Default)]
struct IndexMapInterner {
    short: IndexMap<u128, u32, Hasher>,
    by_name: IndexMap<Box<str>, u32, Hasher>,
    names: Vec<Box<str>>,
}

impl IndexMapInterner {
    fn string(&mut self, name: &str) -> u32 {
        let short = short_key(name);
        let known = match short {
            Some(key) => self.short.get(&key),
            None => self.by_name.get(name),
        };
        if let Some(&i) = known {
            return i;
        }
        let i = self.names.len() as u32;
        match short {
            Some(key) => self.short.insert(key, i),
            None => self.by_name.insert(name.into(), i),
        };
        self.names.push(name.into());
        i
    }
}

/// The simplest interner: the set's own insertion order is the dense index
/// and its entries are the names.
fn intern_with_index_set(ids: &[String]) -> (IndexSet<Box<str>, Hasher>, Vec<u32>) {
    let mut set = IndexSet::with_hasher(Hasher::default());
    let indices = ids
        .iter()
        .map(|id| match set.get_index_of(id.as_str()) {
            Some(i) => i as u32,
            None => set.insert_full(Box::from(id.as_str())).0 as u32,
        })
        .collect();
    (set, indices)
}

/// Interning the 1M user ids (20k distinct, `u0` to `u19999`).
fn interner(c: &mut Criterion) {
    let ids: Vec<String> = data().users.iter().map(|u| format!("u{u}")).collect();
    let mut group = c.benchmark_group("interner_1m_20k");
    group.sample_size(10);
    // On-CPU time of the bench thread: interning is single-threaded, and
    // this keeps other load on a shared machine out of the comparison.
    group.bench_function("hashbrown_table_of_u32_packed_keys", |b| {
        b.iter_custom(|iters| {
            on_cpu_time(iters, || {
                let mut interner = Interner::default();
                let indices: Vec<u32> = ids
                    .iter()
                    .map(|id| interner.string::<serde_json::Error>(id).unwrap_or(u32::MAX))
                    .collect();
                (interner, indices)
            })
        })
    });
    group.bench_function("indexmap_packed_keys", |b| {
        b.iter_custom(|iters| {
            on_cpu_time(iters, || {
                let mut interner = IndexMapInterner::default();
                let indices: Vec<u32> = ids.iter().map(|id| interner.string(id)).collect();
                (interner, indices)
            })
        })
    });
    group.bench_function("indexset_of_names", |b| {
        b.iter_custom(|iters| on_cpu_time(iters, || intern_with_index_set(black_box(&ids))))
    });
    group.finish();
}

fn bench(c: &mut Criterion) {
    let d = data();
    let records = BinaryRecords {
        scores: &d.scores,
        labels: &d.labels,
        weights: None,
        users: Some(UserIndex {
            users: &d.users,
            n_users: USERS as usize,
        }),
    };
    let params = BinaryParams::default();
    let mut group = c.benchmark_group("metrics_1m");
    group.sample_size(10);
    group.bench_function("core_confusion_roc_auc_gauc", |b| {
        b.iter(|| evaluate_records(black_box(&records), &params, GaucWeighting::Impressions))
    });
    // Every extended field asked for (README, "Evaluation beyond the
    // basics"): compare with core_confusion_roc_auc_gauc for its cost.
    let beyond = BeyondParams {
        strategy: BinStrategy::Quantile,
        thresholds: (0..10_000).map(|i| f64::from(i) / 10_000.0).collect(),
        tpr_at_fpr: vec![0.001, 0.01, 0.1],
        max_fpr: Some(0.1),
        ..BeyondParams::default()
    }
    .check(BeyondNames::BODY, 10_000)
    .unwrap_or_else(|e| panic!("bench parameters: {e}"));
    group.bench_function("core_with_every_extended_field", |b| {
        b.iter(|| {
            evaluate_records_beyond(
                black_box(&records),
                &params,
                GaucWeighting::Impressions,
                &beyond,
            )
        })
    });
    // The basic request as `POST /metrics` runs it (the extended fields
    // with their defaults are always answered): the base of the 1.3x target.
    let defaults = BeyondParams::default()
        .check(BeyondNames::BODY, 10_000)
        .unwrap_or_else(|e| panic!("bench parameters: {e}"));
    group.bench_function("core_basic_request", |b| {
        b.iter(|| {
            evaluate_records_beyond(
                black_box(&records),
                &params,
                GaucWeighting::Impressions,
                &defaults,
            )
        })
    });
    // The full request of `examples/profile_metrics.rs` (README →
    // Performance, "New fields"): every extended field and the ranking
    // metrics; compare with core_confusion_roc_auc_gauc for the 1.3x target.
    let full = BeyondParams {
        n_bins: 20,
        strategy: BinStrategy::Quantile,
        thresholds: (0..10_000).map(|i| f64::from(i) / 10_000.0).collect(),
        tpr_at_fpr: vec![0.001, 0.01, 0.1],
        max_fpr: Some(0.1),
        ..BeyondParams::default()
    }
    .check(BeyondNames::BODY, 10_000)
    .unwrap_or_else(|e| panic!("bench parameters: {e}"));
    let cutoffs = RankingParams::check(vec![1, 3, 5, 10, 50], 100)
        .unwrap_or_else(|e| panic!("bench cutoffs: {e}"));
    group.bench_function("core_full_request_with_ranking", |b| {
        b.iter(|| {
            evaluate_records_ranked(
                black_box(&records),
                &params,
                GaucWeighting::Impressions,
                &full,
                Some(&cutoffs),
            )
        })
    });
    group.bench_function("score_table_only", |b| {
        b.iter(|| ScoreTable::from_records(black_box(&d.scores), &d.labels, None))
    });
    let json = body(&d);
    group.bench_function("parse_20mb_request_body", |b| {
        b.iter(|| parse_json_with(black_box(&json), MetricsRequest::from_json_parallel))
    });
    group.bench_function("parse_20mb_request_body_one_thread", |b| {
        b.iter(|| {
            parse_json_with(black_box(&json), |bytes| {
                serde_json::from_slice::<MetricsRequest>(bytes)
            })
        })
    });
    group.finish();
}

criterion_group!(benches, bench, interner);
criterion_main!(benches);
