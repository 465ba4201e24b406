//! Arrow IPC stream input of `POST /metrics`, `POST /metrics/compare` and
//! `POST /streams/{name}`:
//! the same answers as the same data sent as JSON, bit for bit, and the same
//! refusals, naming the column or the value.

use std::sync::Arc;

use arrow_array::{
    BooleanArray, Float32Array, Float64Array, Int64Array, Int8Array, LargeStringArray, RecordBatch,
    StringArray, UInt8Array,
};
use arrow_schema::{DataType, Field, Schema};
use serde_json::{json, Value};

use crate::helpers::{
    arrow_stream, assert_ok, assert_problem, column, spawn_app, spawn_app_with, write_stream,
    TestApp, ARROW_STREAM,
};

/// `n` records: scores in (0, 1) with ties, labels, 37 users, weights.
struct Records {
    scores: Vec<f64>,
    labels: Vec<bool>,
    users: Vec<String>,
    weights: Vec<f64>,
}

fn records(n: usize) -> Records {
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut r = Records {
        scores: Vec::new(),
        labels: Vec::new(),
        users: Vec::new(),
        weights: Vec::new(),
    };
    for _ in 0..n {
        let x = next();
        // a thousandth grid gives ties; the rest is full precision
        let score = if x % 3 == 0 {
            (x % 1000) as f64 / 1000.0
        } else {
            (x >> 11) as f64 / (1u64 << 53) as f64
        };
        r.scores.push(score);
        r.labels.push(next() % 10 < 4 || score > 0.8);
        r.users.push(format!("user-{}", next() % 37));
        r.weights.push((next() % 7) as f64 * 0.5);
    }
    r
}

async fn post_arrow(app: &TestApp, path: &str, body: Vec<u8>) -> reqwest::Response {
    app.post_raw(path, ARROW_STREAM, body).await
}

/// The problem's `field` and `detail`.
fn field_and_detail(problem: &Value) -> (String, String) {
    (
        problem["field"].as_str().unwrap_or("").to_owned(),
        problem["detail"].as_str().unwrap_or("").to_owned(),
    )
}

#[tokio::test]
async fn metrics_from_arrow_equal_the_json_request_bit_for_bit() {
    let app = spawn_app().await;
    let r = records(3000);
    let json_body = json!({
        "predictions": r.scores, "labels": r.labels, "user_ids": r.users,
        "sample_weights": r.weights, "threshold": 0.3,
        "roc": {"max_points": null}, "gauc_weighting": "clicks"
    });
    let expected = assert_ok(app.post_metrics(&json_body).await).await;
    // two record batches, string users, bool labels
    let half = r.scores.len() / 2;
    let batch = |range: std::ops::Range<usize>| {
        vec![
            (
                "prediction",
                column(Float64Array::from(r.scores[range.clone()].to_vec())),
            ),
            (
                "label",
                column(BooleanArray::from(r.labels[range.clone()].to_vec())),
            ),
            (
                "user_id",
                column(StringArray::from(r.users[range.clone()].to_vec())),
            ),
            (
                "weight",
                column(Float64Array::from(r.weights[range].to_vec())),
            ),
        ]
    };
    let body = arrow_stream(&[batch(0..half), batch(half..r.scores.len())]);
    let query = "/metrics?threshold=0.3&roc.max_points=null&gauc_weighting=clicks";
    let got = assert_ok(post_arrow(&app, query, body).await).await;
    assert_eq!(got, expected);
    assert!(got["gauc"]["value"].as_f64().is_some(), "{got}");
}

#[tokio::test]
async fn float32_predictions_int_labels_and_integer_users_read_as_json_would() {
    let app = spawn_app().await;
    let r = records(500);
    let scores32: Vec<f32> = r.scores.iter().map(|&s| s as f32).collect();
    let widened: Vec<f64> = scores32.iter().map(|&s| f64::from(s)).collect();
    let labels: Vec<u8> = r.labels.iter().map(|&l| u8::from(l)).collect();
    let users: Vec<i64> = (0..r.scores.len() as i64)
        .map(|i| (i * 7919) % 23)
        .collect();
    let expected = assert_ok(
        app.post_metrics(&json!({"predictions": widened, "labels": labels, "user_ids": users}))
            .await,
    )
    .await;
    let body = arrow_stream(&[vec![
        ("prediction", column(Float32Array::from(scores32))),
        ("label", column(UInt8Array::from(labels))),
        ("user_id", column(Int64Array::from(users))),
    ]]);
    let got = assert_ok(post_arrow(&app, "/metrics", body).await).await;
    assert_eq!(got, expected);
}

#[tokio::test]
async fn a_bad_label_gets_the_json_requests_problem() {
    let app = spawn_app().await;
    for bad in [2_i8, -1] {
        let labels = vec![1_i8, bad, 0];
        let json_problem = assert_problem(
            app.post_metrics(&json!({"predictions": [0.1, 0.2, 0.3], "labels": labels}))
                .await,
            422,
        )
        .await;
        let body = arrow_stream(&[vec![
            (
                "prediction",
                column(Float64Array::from(vec![0.1, 0.2, 0.3])),
            ),
            ("label", column(Int8Array::from(labels))),
        ]]);
        let problem = assert_problem(post_arrow(&app, "/metrics", body).await, 422).await;
        assert_eq!(field_and_detail(&problem), field_and_detail(&json_problem));
        assert_eq!(problem["field"], "labels[1]");
    }
}

#[tokio::test]
async fn wrong_missing_and_unknown_columns_are_422_naming_the_column() {
    let app = spawn_app().await;
    let scores = || column(Float64Array::from(vec![0.1, 0.9]));
    let labels = || column(BooleanArray::from(vec![false, true]));
    let cases = [
        (
            vec![
                ("prediction", column(StringArray::from(vec!["a", "b"]))),
                ("label", labels()),
            ],
            "prediction",
            "column 'prediction' is Utf8 but must be float32 or float64",
        ),
        (
            vec![
                ("prediction", scores()),
                ("label", column(Float64Array::from(vec![0.0, 1.0]))),
            ],
            "label",
            "must be bool or an integer type",
        ),
        (
            vec![("prediction", scores())],
            "label",
            "missing column 'label'",
        ),
        (
            vec![
                ("prediction", scores()),
                ("label", labels()),
                ("predictions", scores()),
            ],
            "predictions",
            "unknown column 'predictions'",
        ),
        (
            vec![
                ("prediction", scores()),
                ("label", labels()),
                ("user_id", column(Float64Array::from(vec![1.0, 2.0]))),
            ],
            "user_id",
            "must be utf8, large_utf8, utf8_view or an integer type",
        ),
    ];
    for (columns, field, fragment) in cases {
        let problem = assert_problem(
            post_arrow(&app, "/metrics", arrow_stream(&[columns])).await,
            422,
        )
        .await;
        let (got_field, detail) = field_and_detail(&problem);
        assert_eq!(got_field, field, "{problem}");
        assert!(detail.contains(fragment), "{problem}");
    }
}

#[tokio::test]
async fn nan_and_null_values_name_the_json_field_and_row() {
    let app = spawn_app().await;
    let body = arrow_stream(&[vec![
        (
            "prediction",
            column(Float64Array::from(vec![0.1, f64::NAN])),
        ),
        ("label", column(BooleanArray::from(vec![false, true]))),
    ]]);
    let problem = assert_problem(post_arrow(&app, "/metrics", body).await, 422).await;
    assert_eq!(problem["field"], "predictions[1]", "{problem}");
    assert!(field_and_detail(&problem)
        .1
        .contains("Arrow column prediction, row 1"));
    let body = arrow_stream(&[vec![
        (
            "prediction",
            column(Float64Array::from(vec![0.1, 0.2, 0.3])),
        ),
        (
            "label",
            column(BooleanArray::from(vec![Some(false), Some(true), None])),
        ),
    ]]);
    let problem = assert_problem(post_arrow(&app, "/metrics", body).await, 422).await;
    assert_eq!(problem["field"], "labels[2]", "{problem}");
    let body = arrow_stream(&[vec![
        ("prediction", column(Float64Array::from(vec![0.1, 0.2]))),
        ("label", column(BooleanArray::from(vec![false, true]))),
        (
            "user_id",
            column(LargeStringArray::from(vec![Some("a"), None])),
        ),
    ]]);
    let problem = assert_problem(post_arrow(&app, "/metrics", body).await, 422).await;
    assert_eq!(problem["field"], "user_ids[1]", "{problem}");
}

#[tokio::test]
async fn invalid_bytes_and_columns_of_unequal_length_are_400() {
    let app = spawn_app().await;
    let valid = arrow_stream(&[vec![
        ("prediction", column(Float64Array::from(vec![0.1, 0.9]))),
        ("label", column(BooleanArray::from(vec![false, true]))),
    ]]);
    let truncated = valid[..valid.len() - 20].to_vec();
    for body in [b"{\"predictions\": [0.5]}".to_vec(), truncated, Vec::new()] {
        let problem = assert_problem(post_arrow(&app, "/metrics", body).await, 400).await;
        assert!(
            field_and_detail(&problem)
                .1
                .starts_with("body is not a valid Arrow IPC stream"),
            "{problem}"
        );
    }
    // a batch whose label column is shorter than its prediction column
    let schema = Arc::new(Schema::new(vec![
        Field::new("prediction", DataType::Float64, false),
        Field::new("label", DataType::Boolean, false),
    ]));
    // SAFETY: the batch is never read here; it is written out to test that
    // the server refuses it.
    let uneven = unsafe {
        RecordBatch::new_unchecked(
            schema.clone(),
            vec![
                column(Float64Array::from(vec![0.1, 0.9, 0.5])),
                column(BooleanArray::from(vec![false, true])),
            ],
            3,
        )
    };
    let problem = assert_problem(
        post_arrow(&app, "/metrics", write_stream(&schema, &[uneven])).await,
        400,
    )
    .await;
    assert!(field_and_detail(&problem)
        .1
        .starts_with("body is not a valid Arrow IPC stream"));
}

#[tokio::test]
async fn options_in_the_query_are_read_and_refused_as_in_the_json_body() {
    let app = spawn_app().await;
    let body = || {
        arrow_stream(&[vec![
            ("prediction", column(Float64Array::from(vec![0.1, 0.9]))),
            ("label", column(BooleanArray::from(vec![false, true]))),
        ]])
    };
    let json_problem = assert_problem(
        app.post_metrics(&json!({"predictions": [0.1, 0.9], "labels": [0, 1], "threshold": "abc"}))
            .await,
        422,
    )
    .await;
    let problem = assert_problem(
        post_arrow(&app, "/metrics?threshold=abc", body()).await,
        422,
    )
    .await;
    assert_eq!(field_and_detail(&problem), field_and_detail(&json_problem));
    for (query, fragment) in [
        ("treshold=0.3", "treshold"),
        ("labels=1", "labels comes from the body's Arrow columns"),
        (
            "threshold=0.3&threshold=0.4",
            "threshold is given more than once",
        ),
        ("roc.points=3", "points"),
    ] {
        let problem = assert_problem(
            post_arrow(&app, &format!("/metrics?{query}"), body()).await,
            422,
        )
        .await;
        assert!(
            field_and_detail(&problem).1.contains(fragment),
            "{query}: {problem}"
        );
    }
    let ok = assert_ok(post_arrow(&app, "/metrics?average=weighted&beta=2", body()).await).await;
    assert_eq!(ok["task"], "binary");
}

#[tokio::test]
async fn arrow_bodies_are_held_to_the_body_limit_and_other_types_to_415() {
    let app = spawn_app_with(|c| c.body_limit = 1000).await;
    let big = arrow_stream(&[vec![
        ("prediction", column(Float64Array::from(vec![0.5; 500]))),
        ("label", column(BooleanArray::from(vec![true; 500]))),
    ]]);
    assert_problem(post_arrow(&app, "/metrics", big.clone()).await, 413).await;
    assert_problem(post_arrow(&app, "/streams/s", big).await, 413).await;
    let problem = assert_problem(
        app.post_raw("/metrics", "text/csv", "prediction,label")
            .await,
        415,
    )
    .await;
    assert!(
        field_and_detail(&problem).1.contains(ARROW_STREAM),
        "{problem}"
    );
}

#[tokio::test]
async fn stream_ingest_from_arrow_equals_ingest_from_json() {
    let app = spawn_app().await;
    let r = records(2000);
    assert_ok(
        app.post_batch(
            "from-json",
            &json!({"predictions": r.scores, "labels": r.labels, "user_ids": r.users,
                    "sample_weights": r.weights}),
        )
        .await,
    )
    .await;
    let body = arrow_stream(&[vec![
        ("prediction", column(Float64Array::from(r.scores.clone()))),
        ("label", column(BooleanArray::from(r.labels.clone()))),
        ("user_id", column(StringArray::from(r.users.clone()))),
        ("weight", column(Float64Array::from(r.weights.clone()))),
    ]]);
    let ingested =
        assert_ok(post_arrow(&app, "/streams/from-arrow?threshold=0.3", body).await).await;
    assert_eq!(ingested["accepted"], 2000);
    let query = "max_points=50";
    let mut expected = assert_ok(app.stream_metrics("from-json", query).await).await;
    let mut got = assert_ok(app.stream_metrics("from-arrow", query).await).await;
    assert_eq!(got["stream"], "from-arrow");
    for answer in [&mut expected, &mut got] {
        answer["stream"] = Value::Null;
    }
    // GAUC sums the users' AUCs in the order of each stream's user map, whose
    // hasher is seeded per map, so two streams holding the same users may
    // round the last bit differently: GAUC agrees to 1e-12, the rest exactly.
    for field in ["value", "std_error", "lower", "upper"] {
        let (a, b) = (&got["gauc"][field], &expected["gauc"][field]);
        let (a, b) = (a.as_f64().expect("a number"), b.as_f64().expect("a number"));
        assert!((a - b).abs() <= 1e-12, "gauc.{field}: {a} vs {b}");
    }
    for answer in [&mut expected, &mut got] {
        answer["gauc"] = Value::Null;
    }
    assert_eq!(got, expected);
}

#[tokio::test]
async fn stream_ingest_from_arrow_refuses_as_json_and_applies_nothing() {
    let app = spawn_app().await;
    let json_problem = assert_problem(
        app.post_batch("s", &json!({"predictions": [0.1, 0.2], "labels": [1, 2]}))
            .await,
        422,
    )
    .await;
    let body = arrow_stream(&[vec![
        ("prediction", column(Float64Array::from(vec![0.1, 0.2]))),
        ("label", column(Int64Array::from(vec![1, 2]))),
    ]]);
    let problem = assert_problem(post_arrow(&app, "/streams/s", body).await, 422).await;
    assert_eq!(field_and_detail(&problem), field_and_detail(&json_problem));
    let bad_weight = arrow_stream(&[vec![
        ("prediction", column(Float64Array::from(vec![0.1, 0.2]))),
        ("label", column(BooleanArray::from(vec![true, false]))),
        ("weight", column(Float64Array::from(vec![1.0, -1.0]))),
    ]]);
    let problem = assert_problem(post_arrow(&app, "/streams/s", bad_weight).await, 422).await;
    assert_eq!(problem["field"], "sample_weights[1]", "{problem}");
    assert_problem(app.stream_metrics("s", "").await, 404).await;
}

// ---- POST /metrics/compare ----

/// Model b's scores for the records of `r`: a's, perturbed (with ties).
fn scores_b(r: &Records) -> Vec<f64> {
    r.scores
        .iter()
        .enumerate()
        .map(|(i, &s)| 0.6 * s + ((i * 37) % 100) as f64 / 250.0)
        .collect()
}

/// Asserts `response` is a 200 and returns its body's bytes.
async fn ok_bytes(response: reqwest::Response) -> Vec<u8> {
    let status = response.status().as_u16();
    let bytes = response.bytes().await.expect("response body").to_vec();
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&bytes));
    bytes
}

/// A two-record compare body's columns (labels, a, b), the same rows as JSON.
fn small_compare(a: Vec<f64>) -> Vec<(&'static str, arrow_array::ArrayRef)> {
    let n = a.len();
    vec![
        (
            "label",
            column(BooleanArray::from(
                (0..n).map(|i| i % 2 == 0).collect::<Vec<_>>(),
            )),
        ),
        ("prediction_a", column(Float64Array::from(a))),
        (
            "prediction_b",
            column(Float64Array::from(
                (0..n)
                    .map(|i| (i as f64 + 0.5) / n as f64)
                    .collect::<Vec<_>>(),
            )),
        ),
    ]
}

#[tokio::test]
async fn compare_from_arrow_answers_the_json_requests_bytes() {
    let app = spawn_app().await;
    let r = records(3000);
    let b = scores_b(&r);
    // with user ids and weights: two record batches, string users, bool
    // labels, every option in the query
    let json_body = json!({
        "labels": r.labels, "predictions_a": r.scores, "predictions_b": b,
        "user_ids": r.users, "sample_weights": r.weights,
        "confidence": 0.9, "gauc_weighting": "clicks", "threshold": 0.3, "beta": 2.0,
        "max_fpr": 0.5, "thresholds": [0.2, 0.6], "calibration": {"n_bins": 5, "strategy": "quantile"}
    });
    let expected = ok_bytes(app.post_json("/metrics/compare", &json_body).await).await;
    let half = r.scores.len() / 2;
    let batch = |range: std::ops::Range<usize>| {
        vec![
            (
                "label",
                column(BooleanArray::from(r.labels[range.clone()].to_vec())),
            ),
            (
                "prediction_a",
                column(Float64Array::from(r.scores[range.clone()].to_vec())),
            ),
            (
                "prediction_b",
                column(Float64Array::from(b[range.clone()].to_vec())),
            ),
            (
                "user_id",
                column(StringArray::from(r.users[range.clone()].to_vec())),
            ),
            (
                "weight",
                column(Float64Array::from(r.weights[range].to_vec())),
            ),
        ]
    };
    let body = arrow_stream(&[batch(0..half), batch(half..r.scores.len())]);
    let query = "/metrics/compare?confidence=0.9&gauc_weighting=clicks&threshold=0.3&beta=2\
                 &max_fpr=0.5&thresholds=%5B0.2,0.6%5D&calibration.n_bins=5&calibration.strategy=quantile";
    let got = ok_bytes(post_arrow(&app, query, body).await).await;
    assert_eq!(
        String::from_utf8_lossy(&got),
        String::from_utf8_lossy(&expected)
    );
    let answer: Value = serde_json::from_slice(&got).expect("JSON");
    assert!(answer["gauc_diff"]["value"].as_f64().is_some(), "{answer}");
    assert_eq!(answer["a"]["threshold"], 0.3, "{answer}");
    assert!(answer["b"]["partial_auc"].as_f64().is_some(), "{answer}");
    assert_eq!(
        answer["a"]["calibration"]["strategy"], "quantile",
        "{answer}"
    );

    // without user ids and weights: float32 scores, integer labels, defaults
    let a32: Vec<f32> = r.scores.iter().map(|&s| s as f32).collect();
    let b32: Vec<f32> = b.iter().map(|&s| s as f32).collect();
    let widen = |v: &[f32]| v.iter().map(|&s| f64::from(s)).collect::<Vec<f64>>();
    let labels: Vec<i64> = r.labels.iter().map(|&l| i64::from(l)).collect();
    let expected = ok_bytes(
        app.post_json(
            "/metrics/compare",
            &json!({"labels": labels, "predictions_a": widen(&a32), "predictions_b": widen(&b32)}),
        )
        .await,
    )
    .await;
    let body = arrow_stream(&[vec![
        ("label", column(Int64Array::from(labels))),
        ("prediction_a", column(Float32Array::from(a32))),
        ("prediction_b", column(Float32Array::from(b32))),
    ]]);
    let got = ok_bytes(post_arrow(&app, "/metrics/compare", body).await).await;
    assert_eq!(
        String::from_utf8_lossy(&got),
        String::from_utf8_lossy(&expected)
    );
    let answer: Value = serde_json::from_slice(&got).expect("JSON");
    assert_eq!(answer["gauc_diff"], Value::Null, "{answer}");
}

#[tokio::test]
async fn compare_from_arrow_refuses_naming_the_column_or_the_json_field() {
    let app = spawn_app().await;
    // a missing prediction_b column
    let mut columns = small_compare(vec![0.1, 0.9, 0.4]);
    columns.pop();
    let problem = assert_problem(
        post_arrow(&app, "/metrics/compare", arrow_stream(&[columns])).await,
        422,
    )
    .await;
    let (field, detail) = field_and_detail(&problem);
    assert_eq!(field, "prediction_b", "{problem}");
    assert!(
        detail.contains("missing column 'prediction_b'") && detail.contains("predictions_b"),
        "{problem}"
    );
    // /metrics' column name is not one of compare's
    let mut columns = small_compare(vec![0.1, 0.9]);
    columns.push(("prediction", column(Float64Array::from(vec![0.1, 0.9]))));
    let problem = assert_problem(
        post_arrow(&app, "/metrics/compare", arrow_stream(&[columns])).await,
        422,
    )
    .await;
    assert_eq!(problem["field"], "prediction", "{problem}");
    assert!(
        field_and_detail(&problem)
            .1
            .contains("unknown column 'prediction'"),
        "{problem}"
    );
    // a NaN in prediction_a, in the second record batch: row 6 of the whole
    let first = small_compare(vec![0.1, 0.9, 0.4, 0.6]);
    let second = small_compare(vec![0.3, 0.2, f64::NAN, 0.8]);
    let problem = assert_problem(
        post_arrow(&app, "/metrics/compare", arrow_stream(&[first, second])).await,
        422,
    )
    .await;
    let (field, detail) = field_and_detail(&problem);
    assert_eq!(field, "predictions_a[6]", "{problem}");
    assert!(
        detail.contains("(Arrow column prediction_a, row 6)"),
        "{problem}"
    );
    // a label outside 0/1: the JSON request's problem
    let json_problem = assert_problem(
        app.post_json(
            "/metrics/compare",
            &json!({"labels": [1, 2], "predictions_a": [0.1, 0.9], "predictions_b": [0.2, 0.8]}),
        )
        .await,
        422,
    )
    .await;
    let mut columns = small_compare(vec![0.1, 0.9]);
    columns[0] = ("label", column(Int8Array::from(vec![1_i8, 2])));
    columns[2] = ("prediction_b", column(Float64Array::from(vec![0.2, 0.8])));
    let problem = assert_problem(
        post_arrow(&app, "/metrics/compare", arrow_stream(&[columns])).await,
        422,
    )
    .await;
    assert_eq!(field_and_detail(&problem), field_and_detail(&json_problem));
    assert_eq!(problem["field"], "labels[1]", "{problem}");
}

#[tokio::test]
async fn compare_columns_of_unequal_length_are_400_as_for_metrics() {
    // An IPC record batch has one length for all its columns, so a stream
    // whose prediction_b is shorter is not a valid stream (the JSON request
    // with a shorter predictions_b is the 422 naming it).
    let app = spawn_app().await;
    let json_problem = assert_problem(
        app.post_json(
            "/metrics/compare",
            &json!({"labels": [1, 0, 1], "predictions_a": [0.1, 0.9, 0.5], "predictions_b": [0.2, 0.8]}),
        )
        .await,
        422,
    )
    .await;
    assert_eq!(json_problem["field"], "predictions_b", "{json_problem}");
    let schema = Arc::new(Schema::new(vec![
        Field::new("label", DataType::Boolean, false),
        Field::new("prediction_a", DataType::Float64, false),
        Field::new("prediction_b", DataType::Float64, false),
    ]));
    // SAFETY: the batch is never read here; it is written out to test that
    // the server refuses it.
    let uneven = unsafe {
        RecordBatch::new_unchecked(
            schema.clone(),
            vec![
                column(BooleanArray::from(vec![true, false, true])),
                column(Float64Array::from(vec![0.1, 0.9, 0.5])),
                column(Float64Array::from(vec![0.2, 0.8])),
            ],
            3,
        )
    };
    let problem = assert_problem(
        post_arrow(&app, "/metrics/compare", write_stream(&schema, &[uneven])).await,
        400,
    )
    .await;
    assert!(
        field_and_detail(&problem)
            .1
            .starts_with("body is not a valid Arrow IPC stream"),
        "{problem}"
    );
}

#[tokio::test]
async fn compare_options_in_the_query_are_read_and_refused_as_in_the_json_body() {
    let app = spawn_app().await;
    let body = || arrow_stream(&[small_compare(vec![0.1, 0.9, 0.4, 0.6])]);
    let json_body = |option: &str, value: Value| {
        let mut body = json!({
            "labels": [1, 0, 1, 0],
            "predictions_a": [0.1, 0.9, 0.4, 0.6],
            "predictions_b": [0.125, 0.375, 0.625, 0.875],
        });
        body[option] = value;
        body
    };
    for (option, text, value) in [
        ("confidence", "1.5", json!(1.5)),
        ("confidence", "abc", json!("abc")),
        ("gauc_weighting", "clickz", json!("clickz")),
        ("beta", "0", json!(0)),
        ("threshold", "true", json!(true)),
    ] {
        let json_problem = assert_problem(
            app.post_json("/metrics/compare", &json_body(option, value))
                .await,
            422,
        )
        .await;
        let problem = assert_problem(
            post_arrow(&app, &format!("/metrics/compare?{option}={text}"), body()).await,
            422,
        )
        .await;
        assert_eq!(
            field_and_detail(&problem),
            field_and_detail(&json_problem),
            "{option}={text}"
        );
        assert_eq!(problem["field"], option, "{problem}");
    }
    for (query, field, fragment) in [
        (
            "predictions_a=[0.5]",
            "predictions_a",
            "predictions_a comes from the body's Arrow columns",
        ),
        ("roc.max_points=null", "roc", "roc"),
        (
            "beta=2&beta=3",
            "beta",
            "query parameter beta is given more than once",
        ),
    ] {
        let problem = assert_problem(
            post_arrow(&app, &format!("/metrics/compare?{query}"), body()).await,
            422,
        )
        .await;
        let (got_field, detail) = field_and_detail(&problem);
        assert_eq!(got_field, field, "{query}: {problem}");
        assert!(detail.contains(fragment), "{query}: {problem}");
    }
}

#[tokio::test]
async fn compare_takes_json_or_arrow_and_other_types_are_415_as_for_metrics() {
    let app = spawn_app_with(|c| c.body_limit = 1000).await;
    let big = arrow_stream(&[small_compare(vec![0.5; 500])]);
    assert_problem(post_arrow(&app, "/metrics/compare", big).await, 413).await;
    for content_type in ["text/csv", "application/octet-stream"] {
        let metrics = assert_problem(
            app.post_raw("/metrics", content_type, "label,prediction_a")
                .await,
            415,
        )
        .await;
        let problem = assert_problem(
            app.post_raw("/metrics/compare", content_type, "label,prediction_a")
                .await,
            415,
        )
        .await;
        assert_eq!(problem, metrics);
        assert!(
            field_and_detail(&problem).1.contains(ARROW_STREAM),
            "{problem}"
        );
    }
}
