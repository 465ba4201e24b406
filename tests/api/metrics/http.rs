//! `POST /metrics` through the real server: every status the endpoint can
//! answer, and scikit-learn parity for a few fixtures end to end.

use crate::helpers::{
    assert_json_contains, assert_ok, assert_problem, fixture_cases, spawn_app, spawn_app_with,
    Tolerance,
};
use serde_json::{json, Value};

/// scikit-learn parity: 1e-9, relative above 1.
const SKLEARN: Tolerance = Tolerance::Scaled(1e-9);

async fn post_metrics(body: &Value) -> reqwest::Response {
    spawn_app().await.post_metrics(body).await
}

#[tokio::test]
async fn binary_metrics_match_the_api_example() {
    let response = post_metrics(&json!({
        "predictions": [0.9, 0.8, 0.7, 0.6, 0.4, 0.3],
        "labels": [1, 1, 0, 0, 1, 0],
        "threshold": 0.65
    }))
    .await;
    assert_eq!(response.status().as_u16(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["task"], "binary");
    assert_eq!(
        (body["count"].as_u64(), body["positives"].as_u64()),
        (Some(6), Some(3))
    );
    assert_eq!(
        body["confusion"],
        json!({"tp": 2, "fp": 1, "tn": 2, "fn": 1})
    );
    assert!((body["auc"].as_f64().unwrap() - 7.0 / 9.0).abs() < 1e-12);
    assert_eq!(body["roc"]["thresholds"][0], Value::Null);
    assert_eq!(body["roc"]["points_dropped"], 0);
    assert_eq!(body["gauc"], Value::Null);
    assert_eq!(body["warnings"], json!([]));
}

#[tokio::test]
async fn gauc_skips_single_class_users_and_counts_them() {
    let response = post_metrics(&json!({
        "predictions": [0.9, 0.1, 0.8, 0.2, 0.7, 0.5],
        "labels": [true, false, false, true, false, true],
        "user_ids": ["a", "a", "a", 7, 7, "solo"],
        "gauc_weighting": "impressions"
    }))
    .await;
    assert_eq!(response.status().as_u16(), 200);
    let body: Value = response.json().await.unwrap();
    // user a: auc 1 with 3 impressions, user 7: auc 0 with 2 -> 3/5
    let gauc = &body["gauc"];
    assert_eq!(
        [
            &gauc["value"],
            &gauc["users"],
            &gauc["users_skipped"],
            &gauc["weighting"]
        ],
        [&json!(0.6), &json!(3), &json!(1), &json!("impressions")]
    );
    // cluster-robust: sqrt(2/1 * (9 * 0.4^2 + 4 * 0.6^2)) / 5 = 0.48; the
    // interval 0.6 +- 1.96 * 0.48 is clipped to [0, 1]
    assert!(
        (gauc["std_error"].as_f64().unwrap() - 0.48).abs() < 1e-15,
        "{gauc}"
    );
    assert_eq!((&gauc["lower"], &gauc["upper"]), (&json!(0.0), &json!(1.0)));
}

#[tokio::test]
async fn undefined_values_are_null_with_a_warning() {
    let response = post_metrics(&json!({"predictions": [0.2, 0.3], "labels": [0, 0]})).await;
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["auc"], Value::Null);
    assert_eq!(body["precision"], Value::Null);
    assert_eq!(body["roc"]["tpr"], json!([null, null, null]));
    assert!(body["warnings"].as_array().unwrap().len() >= 4, "{body}");
}

#[tokio::test]
async fn multiclass_metrics_for_an_n_by_c_matrix() {
    let response = post_metrics(&json!({
        "predictions": [[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.2, 0.5, 0.3], [0.3, 0.3, 0.4]],
        "labels": [0, 1, 2, 2],
        "average": "micro"
    }))
    .await;
    assert_eq!(response.status().as_u16(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["task"], "multiclass");
    assert_eq!(body["accuracy"], 0.75);
    assert_eq!(body["precision"], 0.75);
    assert_eq!(
        body["confusion_matrix"],
        json!([[1, 0, 0], [0, 1, 0], [0, 1, 1]])
    );
    assert_eq!(
        body["top_k_accuracy"],
        json!({"1": 0.75, "2": 1.0, "3": 1.0})
    );
    assert!(body["log_loss"].as_f64().is_some());
}

#[tokio::test]
async fn a_few_scikit_learn_fixtures_match_end_to_end() {
    let app = spawn_app().await;
    let wanted = [
        "binary weights with zeros",
        "binary threshold on a tie",
        "gauc weighted clicks",
        "multiclass undefined classes macro",
        "multiclass six classes with ties weighted",
    ];
    let mut seen = 0;
    for case in fixture_cases("metrics_cases.json") {
        let name = case["name"].as_str().unwrap();
        if !wanted.contains(&name) {
            continue;
        }
        seen += 1;
        let response = app.post_metrics(&case["input"]).await;
        assert_eq!(response.status().as_u16(), 200, "{name}");
        let body: Value = response.json().await.unwrap();
        assert_json_contains(&case["expected"], &body, SKLEARN, name);
    }
    assert_eq!(seen, wanted.len());
}

#[tokio::test]
async fn syntax_errors_are_400() {
    let app = spawn_app().await;
    let response = app
        .post_raw(
            "/metrics",
            "application/json",
            b"{\"predictions\": [0.1,".to_vec(),
        )
        .await;
    assert_problem(response, 400).await;
}

#[tokio::test]
async fn unknown_routes_are_404() {
    let app = spawn_app().await;
    assert_problem(app.post_json("/metric", &json!({})).await, 404).await;
}

#[tokio::test]
async fn get_on_metrics_is_405() {
    let app = spawn_app().await;
    assert_problem(app.get("/metrics").await, 405).await;
}

#[tokio::test]
async fn bodies_over_the_limit_are_413() {
    let app = spawn_app_with(|config| config.body_limit = 1_000).await;
    let scores: Vec<f64> = (0..500).map(|i| f64::from(i) / 500.0).collect();
    let labels: Vec<u8> = (0..500).map(|i| (i % 2) as u8).collect();
    let response = app
        .post_metrics(&json!({"predictions": scores, "labels": labels}))
        .await;
    assert_problem(response, 413).await;
}

#[tokio::test]
async fn non_json_content_types_are_415() {
    let app = spawn_app().await;
    let response = app
        .post_raw(
            "/metrics",
            "text/plain",
            br#"{"predictions": [0.5], "labels": [1]}"#.to_vec(),
        )
        .await;
    assert_problem(response, 415).await;
}

#[tokio::test]
async fn invalid_meaning_is_422_naming_the_field() {
    let app = spawn_app_with(|config| config.max_array_len = 4).await;
    let cases: [(&str, Value, &str); 16] = [
        (
            "length mismatch",
            json!({"predictions": [0.1, 0.2], "labels": [1]}),
            "labels",
        ),
        (
            "binary label 2",
            json!({"predictions": [0.1, 0.2], "labels": [1, 2]}),
            "labels[1]",
        ),
        (
            "negative label",
            json!({"predictions": [0.1, 0.2], "labels": [1, -1]}),
            "labels[1]",
        ),
        (
            "class index out of range",
            json!({"predictions": [[0.1, 0.9]], "labels": [2]}),
            "labels[0]",
        ),
        (
            "boolean multiclass label",
            json!({"predictions": [[0.1, 0.9]], "labels": [true]}),
            "labels[0]",
        ),
        (
            "negative weight",
            json!({"predictions": [0.1, 0.2], "labels": [1, 0], "sample_weights": [1, -0.5]}),
            "sample_weights[1]",
        ),
        (
            "beta zero",
            json!({"predictions": [0.1], "labels": [1], "beta": 0}),
            "beta",
        ),
        (
            "beta negative",
            json!({"predictions": [0.1], "labels": [1], "beta": -1}),
            "beta",
        ),
        (
            "unknown field",
            json!({"predictions": [0.1], "labels": [1], "treshold": 0.2}),
            "treshold",
        ),
        (
            "ragged multiclass row",
            json!({"predictions": [[0.1, 0.9], [1.0]], "labels": [0, 1]}),
            "predictions[1]",
        ),
        (
            "too many elements",
            json!({"predictions": [0.1, 0.2, 0.3, 0.4, 0.5], "labels": [1, 0, 1, 0, 1]}),
            "predictions",
        ),
        (
            "bad average",
            json!({"predictions": [[0.1, 0.9]], "labels": [1], "average": "mean"}),
            "average",
        ),
        (
            "max_points below 2",
            json!({"predictions": [0.1], "labels": [1], "roc": {"max_points": 1}}),
            "roc.max_points",
        ),
        (
            "empty predictions",
            json!({"predictions": [], "labels": []}),
            "predictions",
        ),
        (
            "scalar predictions",
            json!({"predictions": 0.5, "labels": [1]}),
            "predictions",
        ),
        (
            "three-dimensional predictions",
            json!({"predictions": [[[0.5]]], "labels": [0]}),
            "predictions",
        ),
    ];
    for (name, body, field) in cases {
        let problem = assert_problem(app.post_metrics(&body).await, 422).await;
        let got = problem["field"].as_str().unwrap_or("");
        assert_eq!(got, field, "{name}: {problem}");
        if name == "length mismatch" {
            assert_eq!(
                problem["detail"],
                "labels has 1 elements but predictions has 2"
            );
        }
        if name == "ragged multiclass row" {
            let detail = problem["detail"].as_str().unwrap();
            assert!(
                detail.contains("[1]: expected 2 elements, found 1"),
                "{detail}"
            );
        }
    }
}

#[tokio::test]
async fn gzip_request_bodies_are_accepted() {
    let app = spawn_app().await;
    let body = serde_json::to_vec(&json!({"predictions": [0.9, 0.1], "labels": [1, 0]})).unwrap();
    let response = app.post_gzip("/metrics", "application/json", &body).await;
    assert_eq!(response.status().as_u16(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["auc"], 1.0);
}

#[tokio::test]
async fn the_openapi_examples_are_what_the_server_answers() {
    let app = spawn_app().await;
    let spec = app.openapi().await;
    let post = &spec["paths"]["/metrics"]["post"];
    for name in ["binary", "multiclass"] {
        let request =
            &post["requestBody"]["content"]["application/json"]["examples"][name]["value"];
        let expected =
            &post["responses"]["200"]["content"]["application/json"]["examples"][name]["value"];
        assert!(
            request.is_object() && expected.is_object(),
            "example {name} missing"
        );
        let body = assert_ok(app.post_metrics(request).await).await;
        assert_json_contains(expected, &body, SKLEARN, name);
    }
}
