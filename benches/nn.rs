//! Criterion benches of the normalization and activation core.
//!
//! Run: `cargo bench --bench nn`. Throughput is reported in elements/s;
//! README ("Performance") converts it to ns/element.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use evald::core::activation::{
    log_softmax, maxout, prelu, rrelu_train, softmax, Elementwise, GeluApproximation,
    HardSigmoidVariant,
};
use evald::core::norm::{batch_norm, group_norm, layer_norm, Affine, BatchNormParams};
use evald::core::rng::SplitMix64;
use ndarray::{ArrayD, IxDyn};

/// Deterministic pseudo-normal-ish values in [-4, 4).
fn tensor(shape: &[usize], seed: u64) -> ArrayD<f64> {
    let mut rng = SplitMix64::new(seed);
    let n = shape.iter().product();
    let data = (0..n).map(|_| 8.0 * rng.next_f64() - 4.0).collect();
    ArrayD::from_shape_vec(IxDyn(shape), data).expect("shape")
}

fn norms(c: &mut Criterion) {
    let shape = [32, 64, 56, 56];
    let x = tensor(&shape, 1);
    let gamma = tensor(&[64], 2);
    let beta = tensor(&[64], 3);
    let affine = Affine {
        gamma: Some(gamma.view()),
        beta: Some(beta.view()),
    };
    let mut group = c.benchmark_group("norm_32x64x56x56");
    group.throughput(Throughput::Elements(x.len() as u64));
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(8));
    group.bench_function("group_norm_g32", |b| {
        b.iter(|| group_norm(black_box(x.view()), 32, &affine, 1e-5).expect("group norm"))
    });
    group.bench_function("batch_norm_training", |b| {
        b.iter(|| {
            batch_norm(
                black_box(x.view()),
                &affine,
                None,
                BatchNormParams::default(),
            )
            .expect("batch norm")
        })
    });
    group.bench_function("layer_norm_default", |b| {
        b.iter(|| {
            layer_norm(black_box(x.view()), None, &Affine::default(), 1e-5).expect("layer norm")
        })
    });
    group.finish();
}

fn activations(c: &mut Criterion) {
    let n = 1_000_000;
    let x = tensor(&[1000, 1000], 4);
    let mut group = c.benchmark_group("activation_1M");
    group.throughput(Throughput::Elements(n as u64));
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(3));
    let elementwise = [
        ("sigmoid", Elementwise::Sigmoid),
        (
            "hard_sigmoid",
            Elementwise::HardSigmoid(HardSigmoidVariant::Pytorch),
        ),
        (
            "hard_sigmoid_keras2",
            Elementwise::HardSigmoid(HardSigmoidVariant::Keras2),
        ),
        ("tanh", Elementwise::Tanh),
        ("relu", Elementwise::Relu),
        ("relu6", Elementwise::Relu6),
        (
            "leaky_relu",
            Elementwise::LeakyRelu {
                negative_slope: 0.01,
            },
        ),
        (
            "rrelu_eval",
            Elementwise::LeakyRelu {
                negative_slope: (0.125 + 1.0 / 3.0) / 2.0,
            },
        ),
        ("elu", Elementwise::Elu { alpha: 1.0 }),
        ("gelu", Elementwise::Gelu(GeluApproximation::None)),
        ("gelu_tanh", Elementwise::Gelu(GeluApproximation::Tanh)),
        ("swish", Elementwise::Swish { beta: 1.0 }),
        ("hard_swish", Elementwise::HardSwish),
    ];
    for (name, act) in elementwise {
        group.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.iter(|| act.apply(black_box(x.view())).expect("activation"))
        });
    }
    // The same kernels into reused buffers: the compute cost without the
    // allocation and first-touch page faults of two fresh 8 MB outputs.
    let src = x.as_slice().expect("contiguous");
    let (mut out, mut grad) = (vec![0.0; n], vec![0.0; n]);
    for (name, act) in elementwise {
        group.bench_function(BenchmarkId::new("into_buffers", name), |b| {
            b.iter(|| act.apply_slice(black_box(src), &mut out, &mut grad))
        });
    }
    group.bench_function("softmax_dim-1", |b| {
        b.iter(|| softmax(black_box(x.view()), -1, None).expect("softmax"))
    });
    group.bench_function("log_softmax_dim-1", |b| {
        b.iter(|| log_softmax(black_box(x.view()), -1, None).expect("log_softmax"))
    });
    group.bench_function("softmax_dim0", |b| {
        b.iter(|| softmax(black_box(x.view()), 0, None).expect("softmax"))
    });
    let weights = tensor(&[1000], 5);
    let w = weights.as_slice().expect("contiguous").to_vec();
    group.bench_function("prelu_per_channel", |b| {
        b.iter(|| prelu(black_box(x.view()), &w).expect("prelu"))
    });
    group.bench_function("rrelu_training", |b| {
        b.iter(|| rrelu_train(black_box(x.view()), 0.125, 1.0 / 3.0, 7).expect("rrelu"))
    });
    let x4 = tensor(&[10, 100, 1000], 6);
    group.bench_function("maxout_pieces4", |b| {
        b.iter(|| maxout(black_box(x4.view()), 4, None).expect("maxout"))
    });
    group.finish();
}

criterion_group!(benches, norms, activations);
criterion_main!(benches);
