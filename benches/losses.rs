//! Criterion benches for losses.
//!
//! - `losses_1m/<loss>`: the core, loss plus gradient (reduction mean) over
//!   1,000,000 prediction elements, output allocation included. Throughput is
//!   reported in elements, so ns/element = time / 1e6.
//! - `losses_1m_cpu/<loss>`: the same, timed in on-CPU time of the bench
//!   thread (`/proc/thread-self/schedstat`) instead of wall time, so that
//!   other processes on a shared machine do not inflate it.
//! - `losses_1m_portable_cpu/<loss>`: the losses with multiversioned kernels
//!   (bce, focal, cross entropy) pinned to the portable kernels
//!   (`kernels::with_isa`), in on-CPU time: what a CPU without AVX2 and FMA
//!   runs.
//! - `losses_http_100k/<loss>`: one `POST /loss/{name}` with 100,000
//!   predictions and targets against the real server on 127.0.0.1 (JSON
//!   parsing, compute, serialization of the 100,000-element gradient and
//!   the loopback round trip), measured from a reqwest client that does not
//!   ask for gzip (`mse_gzip_response` does, to show what compression adds).
//!
//! Run: `cargo bench --bench losses`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use evald::core::losses::kernels::{with_isa, Isa};
use evald::core::losses::{Bce, CrossEntropy, Dice, Focal, Huber, Iou, Loss, Reduction, SmoothL1};
use evald::core::rng::SplitMix64;
use ndarray::{ArrayD, IxDyn};

mod common;
use common::on_cpu_time;

const N: usize = 1_000_000;

/// Deterministic pseudo-random values in [0, 1) (the core's SplitMix64).
fn uniform(n: usize, seed: u64) -> Vec<f64> {
    let mut rng = SplitMix64::new(seed);
    (0..n).map(|_| rng.next_f64()).collect()
}

fn array(shape: &[usize], data: Vec<f64>) -> ArrayD<f64> {
    ArrayD::from_shape_vec(IxDyn(shape), data).expect("sizes match")
}

fn core_benches(c: &mut Criterion) {
    let probs = array(
        &[N],
        uniform(N, 1).iter().map(|u| 0.01 + 0.98 * u).collect(),
    );
    let logits = array(&[N], uniform(N, 2).iter().map(|u| 12.0 * u - 6.0).collect());
    let labels = array(&[N], uniform(N, 3).iter().map(|u| u.round()).collect());
    let values = array(&[N], uniform(N, 4).iter().map(|u| 4.0 * u - 2.0).collect());
    let targets = array(&[N], uniform(N, 5).iter().map(|u| 4.0 * u - 2.0).collect());
    let classes = 10;
    let ce_logits = array(&[N / classes, classes], logits.iter().copied().collect());
    let ce_targets = array(
        &[N / classes],
        uniform(N / classes, 6)
            .iter()
            .map(|u| (u * classes as f64).floor())
            .collect(),
    );
    let seg_probs = array(&[1000, 1000], probs.iter().copied().collect());
    let seg_labels = array(&[1000, 1000], labels.iter().copied().collect());

    let elementwise: Vec<(&str, Loss, &ArrayD<f64>, &ArrayD<f64>)> = vec![
        ("l1", Loss::L1, &values, &targets),
        ("mse", Loss::Mse, &values, &targets),
        (
            "smooth_l1",
            Loss::SmoothL1(SmoothL1::new(1.0).unwrap()),
            &values,
            &targets,
        ),
        (
            "huber",
            Loss::Huber(Huber::new(1.0).unwrap()),
            &values,
            &targets,
        ),
        (
            "bce_probabilities",
            Loss::Bce(Bce::new(false, None, None).unwrap()),
            &probs,
            &labels,
        ),
        (
            "bce_logits",
            Loss::Bce(Bce::new(true, None, None).unwrap()),
            &logits,
            &labels,
        ),
        (
            "focal_logits",
            Loss::Focal(Focal::new(0.25, 2.0, true).unwrap()),
            &logits,
            &labels,
        ),
        (
            "cross_entropy_100k_x_10",
            Loss::CrossEntropy(CrossEntropy::new(None, 0.0, -100, false).unwrap()),
            &ce_logits,
            &ce_targets,
        ),
        (
            "cross_entropy_smoothing_0.1",
            Loss::CrossEntropy(CrossEntropy::new(None, 0.1, -100, false).unwrap()),
            &ce_logits,
            &ce_targets,
        ),
        (
            "dice_1000_x_1000",
            Loss::Dice(Dice::new(1.0, false, false).unwrap()),
            &seg_probs,
            &seg_labels,
        ),
        (
            "iou_1000_x_1000",
            Loss::Iou(Iou::new(1.0, false).unwrap()),
            &seg_probs,
            &seg_labels,
        ),
    ];
    let mut group = c.benchmark_group("losses_1m");
    group.throughput(Throughput::Elements(N as u64));
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(4));
    for (name, loss, x, y) in &elementwise {
        group.bench_function(*name, |b| {
            b.iter(|| {
                black_box(
                    loss.compute(black_box(x.view()), black_box(y.view()), Reduction::Mean)
                        .expect("defined"),
                )
            })
        });
    }
    group.finish();

    // The same calls timed in on-CPU time of the bench thread: on a shared
    // machine, wall time also counts the time other processes hold the core.
    let mut group = c.benchmark_group("losses_1m_cpu");
    group.throughput(Throughput::Elements(N as u64));
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(4));
    for (name, loss, x, y) in &elementwise {
        group.bench_function(*name, |b| {
            b.iter_custom(|iters| {
                on_cpu_time(iters, || {
                    loss.compute(black_box(x.view()), black_box(y.view()), Reduction::Mean)
                        .expect("defined")
                })
            })
        });
    }
    group.finish();

    // The portable kernels, as a CPU without AVX2 and FMA runs them.
    let mut group = c.benchmark_group("losses_1m_portable_cpu");
    group.throughput(Throughput::Elements(N as u64));
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(4));
    let multiversioned = elementwise.iter().filter(|(name, ..)| {
        ["bce", "focal", "cross"]
            .iter()
            .any(|p| name.starts_with(p))
    });
    for (name, loss, x, y) in multiversioned {
        group.bench_function(*name, |b| {
            b.iter_custom(|iters| {
                with_isa(Isa::Portable, || {
                    on_cpu_time(iters, || {
                        loss.compute(black_box(x.view()), black_box(y.view()), Reduction::Mean)
                            .expect("defined")
                    })
                })
            })
        });
    }
    group.finish();
}

fn http_benches(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let addr = rt.block_on(async {
        let app = evald::startup::build(evald::config::Config::for_tests())
            .await
            .expect("bind 127.0.0.1:0");
        let addr = app.local_addr().expect("local addr");
        tokio::spawn(evald::startup::run(app, std::future::pending()));
        addr
    });
    // Plain client: no Accept-Encoding, like curl without --compressed. The
    // gzip client shows the cost of response compression on top.
    let plain = reqwest::Client::builder()
        .no_gzip()
        .build()
        .expect("client");
    let gzip = reqwest::Client::new();
    let n = 100_000;
    let probs: Vec<f64> = uniform(n, 7).iter().map(|u| 0.01 + 0.98 * u).collect();
    let labels: Vec<f64> = uniform(n, 8).iter().map(|u| u.round()).collect();
    let body = serde_json::json!({"predictions": probs, "targets": labels});
    let bodies = [
        ("mse", "mse", &plain),
        ("bce", "bce", &plain),
        ("mse_gzip_response", "mse", &gzip),
    ];
    let mut group = c.benchmark_group("losses_http_100k");
    group.throughput(Throughput::Elements(n as u64));
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(8));
    let bytes = serde_json::to_vec(&body).expect("body serializes");
    for (label, name, client) in bodies {
        let url = format!("http://{addr}/loss/{name}");
        group.bench_function(label, |b| {
            b.iter(|| {
                rt.block_on(async {
                    let response = client
                        .post(&url)
                        .header("content-type", "application/json")
                        .body(bytes.clone())
                        .send()
                        .await
                        .expect("request");
                    assert_eq!(response.status().as_u16(), 200);
                    black_box(response.bytes().await.expect("body"))
                })
            })
        });
    }
    group.finish();
}

criterion_group!(benches, core_benches, http_benches);
criterion_main!(benches);
