//! Criterion benches of stream ingest's NDJSON line parsing: the fast path
//! for the common record shape (`api::streams::fast`) against the general
//! serde parser every other line goes through, on the same 200,000 lines.
//!
//! Records come from the core's SplitMix64: a six-decimal score, a label
//! drawn below the score (calibrated), one of 20,000 users, and weight 1.
//!
//! Times are the bench thread's on-CPU time (parsing is single-threaded),
//! so other load on a shared machine stays out of the comparison.
//!
//! Run: `cargo bench --bench streams`

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use evald::api::streams::dto::{stage_line, Line};
use evald::api::streams::fast::fast_record;
use evald::api::streams::ndjson::parse_line;
use evald::core::rng::SplitMix64;
use evald::state::BatchBuilder;

mod common;
use common::on_cpu_time;

const LINES: usize = 200_000;
const USERS: u64 = 20_000;

/// `{"prediction": .., "label": .., "user_id": "u..", "weight": 1.0}` lines.
fn lines() -> Vec<Vec<u8>> {
    let mut rng = SplitMix64::new(7);
    (0..LINES)
        .map(|_| {
            let score = (rng.next_u64() % 1_000_000) as f64 / 1e6;
            let label = u8::from(rng.next_f64() < score);
            let user = rng.next_u64() % USERS;
            format!(
                r#"{{"prediction": {score}, "label": {label}, "user_id": "u{user}", "weight": 1.0}}"#
            )
            .into_bytes()
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let lines = lines();
    let bytes: usize = lines.iter().map(|l| l.len() + 1).sum();
    let mut group = c.benchmark_group("ndjson_200k_lines");
    group.sample_size(10);
    group.throughput(Throughput::Bytes(bytes as u64));
    // What ingest does: the fast path, staged into a batch.
    group.bench_function("parse_line_fast_path", |b| {
        b.iter_custom(|iters| {
            on_cpu_time(iters, || {
                let mut builder = BatchBuilder::new();
                for (n, line) in lines.iter().enumerate() {
                    let _ = parse_line(&mut builder, n as u64 + 1, black_box(line));
                }
                builder
            })
        })
    });
    // The same lines through the general parser, staged the same way.
    group.bench_function("general_serde_path", |b| {
        b.iter_custom(|iters| {
            on_cpu_time(iters, || {
                let mut builder = BatchBuilder::new();
                for (n, line) in lines.iter().enumerate() {
                    if let Ok(parsed) = serde_json::from_slice::<Line<'_>>(black_box(line)) {
                        let _ = stage_line(&mut builder, n as u64 + 1, parsed);
                    }
                }
                builder
            })
        })
    });
    // The recognizers alone, without staging.
    group.bench_function("fast_record_only", |b| {
        b.iter_custom(|iters| {
            on_cpu_time(iters, || {
                lines
                    .iter()
                    .filter_map(|l| fast_record(black_box(l)))
                    .count()
            })
        })
    });
    group.bench_function("serde_line_only", |b| {
        b.iter_custom(|iters| {
            on_cpu_time(iters, || {
                lines
                    .iter()
                    .filter(|l| serde_json::from_slice::<Line<'_>>(black_box(l)).is_ok())
                    .count()
            })
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
