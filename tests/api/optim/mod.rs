//! `POST /optimizer/{name}/step`, `POST /optimizer/{name}/run` and the optimizer core.

mod convergence;
mod http;
mod library;

use serde_json::Value;

/// The steps of a torch.optim fixture case (`tests/fixtures/optim_cases.json`):
/// each step's gradients and the parameters torch had after it.
fn fixture_steps(case: &Value) -> impl Iterator<Item = (&Value, &Value)> {
    let grads = case["grads"].as_array().expect("grads");
    let expected = case["expected_params"].as_array().expect("expected_params");
    grads.iter().zip(expected)
}
