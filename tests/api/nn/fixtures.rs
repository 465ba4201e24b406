//! Every normalization and activation against PyTorch (float64) reference
//! values from `tests/fixtures/gen_nn.py`, through the real HTTP server.
//!
//! Epsilon: 1e-9, absolute for |expected| <= 1 and relative above (the
//! fixtures include values of magnitude 1e100 and variances of 1e240).

use serde_json::Value;

use crate::helpers::{fixture, numbers_within, spawn_app, Tolerance};

const FIXTURES: &str = "nn_cases.json";
const EPSILON: f64 = 1e-9;

/// Compares `actual` to `expected` recursively; returns the first mismatch.
fn compare(path: &str, actual: &Value, expected: &Value) -> Result<(), String> {
    numbers_within(actual, expected, Tolerance::Scaled(EPSILON), path)
}

#[tokio::test]
async fn every_case_matches_pytorch_to_1e_9() {
    let fixtures = fixture(FIXTURES);
    let cases = fixtures["cases"].as_array().expect("cases array");
    assert!(cases.len() >= 60, "only {} cases", cases.len());
    let app = spawn_app().await;
    let mut failures = Vec::new();
    for case in cases {
        let name = case["name"].as_str().unwrap_or("?");
        let path = case["path"].as_str().expect("path");
        let response = app.post_json(path, &case["request"]).await;
        let status = response.status();
        let body: Value = response.json().await.expect("JSON body");
        if status != 200 {
            failures.push(format!("{name}: status {status}: {body}"));
            continue;
        }
        let expected = case["expected"].as_object().expect("expected object");
        for (field, want) in expected {
            if let Err(e) = compare(field, &body[field], want) {
                failures.push(format!("{name}: {e}"));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[tokio::test]
async fn fixtures_cover_every_kind_and_activation() {
    let fixtures = fixture(FIXTURES);
    let paths: Vec<&str> = fixtures["cases"]
        .as_array()
        .expect("cases")
        .iter()
        .filter_map(|c| c["path"].as_str())
        .collect();
    let app = spawn_app().await;
    let catalogue = app.activations().await;
    let mut wanted: Vec<String> = ["batch", "layer", "instance", "group"]
        .iter()
        .map(|k| format!("/normalize/{k}"))
        .collect();
    for entry in catalogue.as_array().expect("catalogue array") {
        wanted.push(format!(
            "/activation/{}",
            entry["name"].as_str().expect("name")
        ));
    }
    for path in wanted {
        assert!(paths.contains(&path.as_str()), "no fixture for {path}");
    }
}

#[tokio::test]
async fn batch_norm_running_stats_fed_back_over_http_follow_a_pytorch_module() {
    let fixtures = fixture(FIXTURES);
    let seq = &fixtures["batch_sequence"];
    let app = spawn_app().await;
    let mut running: Option<(Value, Value)> = None;
    for (i, step) in seq["steps"].as_array().expect("steps").iter().enumerate() {
        let mut body = serde_json::json!({
            "input": step["input"], "training": step["training"], "momentum": seq["momentum"],
            "eps": seq["eps"], "gamma": seq["gamma"], "beta": seq["beta"],
        });
        if let Some((mean, var)) = &running {
            body["running_mean"] = mean.clone();
            body["running_var"] = var.clone();
        }
        let response = app.post_normalize("batch", &body).await;
        assert_eq!(response.status(), 200, "step {i}");
        let got: Value = response.json().await.expect("JSON");
        for field in ["output", "running_mean", "running_var"] {
            if let Err(e) = compare(field, &got[field], &step[field]) {
                panic!("step {i}: {e}");
            }
        }
        running = Some((got["running_mean"].clone(), got["running_var"].clone()));
    }
}
