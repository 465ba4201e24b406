//! The normalization core used as a library: a batch norm module followed
//! over several calls (running statistics fed back), against the
//! `batch_sequence` of `tests/fixtures/nn_cases.json` (a float64
//! `torch.nn.BatchNorm2d`, momentum 0.2, four training steps then evaluation).
//!
//! Epsilon: 1e-9 absolute (all values are O(1)).

use evald::api::tensor::Tensor;
use evald::core::norm::{batch_norm, Affine, BatchNormParams, RunningStats};
use ndarray::ArrayD;
use serde_json::Value;

use crate::helpers::{assert_close, fixture, Tolerance};

/// 1e-9 absolute (all values are O(1)).
const EPSILON: Tolerance = Tolerance::Absolute(1e-9);

fn tensor(v: &Value) -> ArrayD<f64> {
    serde_json::from_value::<Tensor>(v.clone())
        .expect("nested array")
        .0
}

fn vector(v: &Value) -> Vec<f64> {
    values(&tensor(v))
}

/// The values of `a` in logical (row-major) order.
fn values(a: &ArrayD<f64>) -> Vec<f64> {
    a.iter().copied().collect()
}

#[test]
fn batch_norm_over_several_calls_follows_a_pytorch_module() {
    let fixtures = fixture("nn_cases.json");
    let seq = &fixtures["batch_sequence"];
    let gamma = tensor(&seq["gamma"]);
    let beta = tensor(&seq["beta"]);
    let affine = Affine {
        gamma: Some(gamma.view()),
        beta: Some(beta.view()),
    };
    let momentum = seq["momentum"].as_f64().expect("momentum");
    let eps = seq["eps"].as_f64().expect("eps");
    let steps = seq["steps"].as_array().expect("steps");
    assert!(steps.len() >= 5);
    let mut running: Option<RunningStats> = None;
    for (i, step) in steps.iter().enumerate() {
        let input = tensor(&step["input"]);
        let training = step["training"].as_bool().expect("training");
        let params = BatchNormParams {
            eps,
            momentum,
            training,
        };
        let r = batch_norm(input.view(), &affine, running.take(), params).expect("batch norm");
        assert_close(
            &format!("step {i} output"),
            &values(&r.normalized.output),
            &vector(&step["output"]),
            EPSILON,
        );
        assert_close(
            &format!("step {i} running_mean"),
            &r.running.mean,
            &vector(&step["running_mean"]),
            EPSILON,
        );
        assert_close(
            &format!("step {i} running_var"),
            &r.running.var,
            &vector(&step["running_var"]),
            EPSILON,
        );
        running = Some(r.running);
    }
}

#[test]
fn evaluation_after_training_uses_what_training_accumulated() {
    let x = ndarray::array![[1.0, -2.0], [3.0, 6.0], [5.0, 2.0]].into_dyn();
    let train = BatchNormParams {
        momentum: 1.0,
        ..Default::default()
    };
    let trained = batch_norm(x.view(), &Affine::default(), None, train).expect("train");
    // momentum 1: the running stats are exactly the batch mean and unbiased var.
    assert_close("mean", &trained.running.mean, &[3.0, 2.0], EPSILON);
    assert_close("var", &trained.running.var, &[4.0, 16.0], EPSILON);
    let eval = BatchNormParams {
        training: false,
        eps: 1e-12,
        ..Default::default()
    };
    let r = batch_norm(x.view(), &Affine::default(), Some(trained.running), eval).expect("eval");
    assert_close(
        "output",
        &values(&r.normalized.output),
        &[-1.0, -1.0, 0.0, 1.0, 1.0, 0.0],
        EPSILON,
    );
}

mod properties {
    //! Two ways of computing the same normalization must agree.
    //! Epsilon: 1e-12 absolute (inputs are O(10), outputs O(1)).

    use evald::core::norm::{group_norm, instance_norm, layer_norm, Affine};
    use ndarray::{ArrayD, Axis, IxDyn};
    use proptest::prelude::*;

    fn input() -> impl Strategy<Value = ArrayD<f64>> {
        (1usize..4, 1usize..4, 2usize..6).prop_flat_map(|(n, g, s)| {
            let c = 2 * g;
            prop::collection::vec(-10.0f64..10.0, n * c * s)
                .prop_map(move |v| ArrayD::from_shape_vec(IxDyn(&[n, c, s]), v).unwrap())
        })
    }

    fn max_diff(a: &ArrayD<f64>, b: &ArrayD<f64>) -> f64 {
        a.iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f64::max)
    }

    proptest! {
        #[test]
        fn group_norm_with_one_group_is_layer_norm(x in input()) {
            let g = group_norm(x.view(), 1, &Affine::default(), 1e-5).unwrap();
            let l = layer_norm(x.view(), None, &Affine::default(), 1e-5).unwrap();
            prop_assert!(max_diff(&g.output, &l.output) < 1e-12);
            prop_assert!(max_diff(&g.mean.index_axis(Axis(1), 0).to_owned(), &l.mean) < 1e-12);
        }

        #[test]
        fn group_norm_with_a_group_per_channel_is_instance_norm(x in input()) {
            let c = x.shape()[1];
            let g = group_norm(x.view(), c, &Affine::default(), 1e-5).unwrap();
            let i = instance_norm(x.view(), &Affine::default(), 1e-5).unwrap();
            prop_assert!(max_diff(&g.output, &i.output) < 1e-12);
            prop_assert!(max_diff(&g.var, &i.var) < 1e-12);
        }

        #[test]
        fn every_normalized_group_has_mean_beta_and_shrunk_variance(x in input()) {
            let beta = 0.75;
            let c = x.shape()[1];
            let betas = ArrayD::from_elem(IxDyn(&[c]), beta);
            let affine = Affine { gamma: None, beta: Some(betas.view()) };
            let r = instance_norm(x.view(), &affine, 1e-5).unwrap();
            for (lane, var) in r.output.lanes(Axis(2)).into_iter().zip(r.var.iter()) {
                let n = lane.len() as f64;
                let mean = lane.sum() / n;
                let v = lane.iter().map(|y| (y - mean).powi(2)).sum::<f64>() / n;
                prop_assert!((mean - beta).abs() < 1e-12);
                prop_assert!((v - var / (var + 1e-5)).abs() < 1e-9, "{v} vs {}", var / (var + 1e-5));
            }
        }
    }
}
