//! scikit-learn parity: every case of `tests/fixtures/metrics_cases.json`
//! (written by `tests/fixtures/gen_metrics.py`, scikit-learn 1.9.1) is
//! evaluated through the core directly and through the request conversion,
//! and compared to scikit-learn's numbers.
//!
//! Epsilon: numbers agree within 1e-9, relative for magnitudes above 1
//! (`|a - e| <= 1e-9 * max(1, |e|)`); `null` (undefined) must match exactly.

use std::collections::HashMap;

use evald::api::extract::parse_json;
use evald::api::metrics::{
    BinaryMetricsResponse, MetricsJob, MetricsRequest, MulticlassMetricsResponse,
};
use evald::core::metrics::{
    evaluate_multiclass, evaluate_records, Average, BinaryParams, BinaryRecords, GaucWeighting,
    MulticlassParams, UserIndex,
};
use ndarray::Array2;
use serde_json::Value;

use crate::helpers::{assert_json_contains, fixture_cases, floats, Tolerance};

const EPSILON: f64 = 1e-9;

fn cases() -> Vec<Value> {
    fixture_cases("metrics_cases.json")
}

/// Asserts `actual` contains `expected` (every key of `expected`, numbers to
/// [`EPSILON`], nulls exactly); `path` names the place of a mismatch.
fn assert_matches(expected: &Value, actual: &Value, path: &str) {
    assert_json_contains(expected, actual, Tolerance::Scaled(EPSILON), path);
}

fn label_value(v: &Value) -> usize {
    v.as_bool()
        .map(usize::from)
        .or_else(|| v.as_u64().map(|x| x as usize))
        .expect("label")
}

fn user_index(ids: &Value) -> (Vec<u32>, usize) {
    let mut seen: HashMap<String, u32> = HashMap::new();
    let indices = ids
        .as_array()
        .expect("user ids")
        .iter()
        .map(|id| {
            let key = id
                .as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| id.to_string());
            let next = seen.len() as u32;
            *seen.entry(key).or_insert(next)
        })
        .collect();
    (indices, seen.len())
}

/// Evaluates a case by calling the core directly.
fn through_core(input: &Value) -> Value {
    let labels: Vec<usize> = input["labels"]
        .as_array()
        .expect("labels")
        .iter()
        .map(label_value)
        .collect();
    let weights = input.get("sample_weights").map(floats);
    let beta = input["beta"].as_f64().unwrap_or(1.0);
    let rows = input["predictions"].as_array().expect("predictions");
    if rows.first().is_some_and(Value::is_array) {
        let flat: Vec<f64> = rows.iter().flat_map(floats).collect();
        let scores =
            Array2::from_shape_vec((rows.len(), flat.len() / rows.len()), flat).expect("matrix");
        let average = match input["average"].as_str() {
            Some("micro") => Average::Micro,
            Some("weighted") => Average::Weighted,
            _ => Average::Macro,
        };
        let report = evaluate_multiclass(
            scores.view(),
            &labels,
            weights.as_deref(),
            &MulticlassParams { beta, average },
        )
        .expect("multiclass evaluation");
        serde_json::to_value(MulticlassMetricsResponse::from(report)).expect("serializable")
    } else {
        let scores = floats(&input["predictions"]);
        let labels: Vec<bool> = labels.iter().map(|&l| l == 1).collect();
        let users = input.get("user_ids").map(user_index);
        let weighting = match input["gauc_weighting"].as_str() {
            Some("clicks") => GaucWeighting::Clicks,
            Some("uniform") => GaucWeighting::Uniform,
            _ => GaucWeighting::Impressions,
        };
        let params = BinaryParams {
            threshold: input["threshold"].as_f64().unwrap_or(0.5),
            beta,
            max_points: None,
            drop_intermediate: input["roc"]["drop_intermediate"].as_bool().unwrap_or(true),
            ..BinaryParams::default()
        };
        let records = BinaryRecords {
            scores: &scores,
            labels: &labels,
            weights: weights.as_deref(),
            users: users.as_ref().map(|(users, n_users)| UserIndex {
                users,
                n_users: *n_users,
            }),
        };
        let report = evaluate_records(&records, &params, weighting).expect("binary evaluation");
        serde_json::to_value(BinaryMetricsResponse::from(report)).expect("serializable")
    }
}

/// Evaluates a case the way the handler does: parse the body, check it, run.
fn through_request(input: &Value) -> Value {
    let body = serde_json::to_vec(input).expect("serializable");
    let request: MetricsRequest = parse_json(&body).expect("valid request");
    let job = MetricsJob::from_request(request, usize::MAX, usize::MAX).expect("checked request");
    serde_json::to_value(job.run().expect("evaluation")).expect("serializable")
}

#[test]
fn there_are_at_least_forty_scikit_learn_cases() {
    assert!(cases().len() >= 40, "only {} cases", cases().len());
}

#[test]
fn the_core_matches_scikit_learn_on_every_fixture() {
    for case in cases() {
        let name = case["name"].as_str().unwrap_or("?").to_owned();
        let actual = through_core(&case["input"]);
        assert_matches(&case["expected"], &actual, &name);
    }
}

#[test]
fn the_request_path_matches_scikit_learn_on_every_fixture() {
    for case in cases() {
        let name = case["name"].as_str().unwrap_or("?").to_owned();
        let actual = through_request(&case["input"]);
        assert_matches(&case["expected"], &actual, &name);
    }
}

#[test]
#[should_panic(expected = "expected 0.5, got 0.5000001")]
fn the_comparison_catches_a_difference_beyond_epsilon() {
    assert_matches(
        &serde_json::json!({"auc": 0.5}),
        &serde_json::json!({"auc": 0.5000001}),
        "case",
    );
}

#[test]
#[should_panic(expected = "case.auc")]
fn the_comparison_does_not_confuse_null_with_a_number() {
    assert_matches(
        &serde_json::json!({"auc": null}),
        &serde_json::json!({"auc": 0.0}),
        "case",
    );
}
