//! Criterion benches of the metrics core on the data set:
//! 1,000,000 binary predictions from 20,000 users, already in memory.
//!
//! The data comes from the same splitmix64 recipe as
//! `scripts/gen_metrics_body.py` and `scripts/bench_metrics_sklearn.py`, so
//! all three time the same records:
//!   h_k(i) = splitmix64(4 i + k)
//!   score  = (h_0(i) >> 11) % 1_000_000 / 1e6   (six decimals, some ties)
//!   label  = (h_1(i) >> 11) / 2^53 < score       (calibrated, AUC ~ 0.83)
//!   user   = (h_2(i) >> 11) % 20_000
//!
//! Run: `cargo bench --bench metrics`

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use evald::api::extract::parse_json_with;
use evald::api::metrics::MetricsRequest;
use evald::core::metrics::{
    evaluate_records, BinaryParams, BinaryRecords, GaucWeighting, ScoreTable, UserIndex,
};

const N: usize = 1_000_000;
const USERS: u64 = 20_000;

fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
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
    group.bench_function("score_table_only", |b| {
        b.iter(|| ScoreTable::from_records(black_box(&d.scores), &d.labels, None))
    });
    let json = body(&d);
    group.bench_function("parse_20mb_request_body", |b| {
        b.iter(|| parse_json_with(black_box(&json), MetricsRequest::from_json_parallel))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
