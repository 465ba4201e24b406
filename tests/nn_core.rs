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

const FIXTURES: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/nn_cases.json"
));
const EPSILON: f64 = 1e-9;

fn tensor(v: &Value) -> ArrayD<f64> {
    serde_json::from_value::<Tensor>(v.clone())
        .expect("nested array")
        .0
}

fn vector(v: &Value) -> Vec<f64> {
    tensor(v).iter().copied().collect()
}

fn assert_close(
    what: &str,
    actual: impl IntoIterator<Item = f64>,
    expected: impl IntoIterator<Item = f64>,
) {
    let (a, e): (Vec<f64>, Vec<f64>) =
        (actual.into_iter().collect(), expected.into_iter().collect());
    assert_eq!(a.len(), e.len(), "{what}: length");
    for (i, (a, e)) in a.iter().zip(&e).enumerate() {
        assert!((a - e).abs() <= EPSILON, "{what}[{i}]: {a} vs {e}");
    }
}

#[test]
fn batch_norm_over_several_calls_follows_a_pytorch_module() {
    let fixtures: Value = serde_json::from_str(FIXTURES).expect("fixture JSON");
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
            r.normalized.output.iter().copied(),
            tensor(&step["output"]).iter().copied(),
        );
        assert_close(
            &format!("step {i} running_mean"),
            r.running.mean.clone(),
            vector(&step["running_mean"]),
        );
        assert_close(
            &format!("step {i} running_var"),
            r.running.var.clone(),
            vector(&step["running_var"]),
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
    assert_close("mean", trained.running.mean.clone(), [3.0, 2.0]);
    assert_close("var", trained.running.var.clone(), [4.0, 16.0]);
    let eval = BatchNormParams {
        training: false,
        eps: 1e-12,
        ..Default::default()
    };
    let r = batch_norm(x.view(), &Affine::default(), Some(trained.running), eval).expect("eval");
    assert_close(
        "output",
        r.normalized.output.iter().copied(),
        [-1.0, -1.0, 0.0, 1.0, 1.0, 0.0],
    );
}
