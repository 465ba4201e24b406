//! Idempotent retries of stream ingest: the `Idempotency-Key` header.

use crate::helpers::{assert_ok, assert_problem, spawn_app, spawn_app_with, TestApp, NDJSON};
use reqwest::header::HeaderValue;
use serde_json::{json, Value};

fn batch() -> Value {
    json!({"predictions": [0.9, 0.2, 0.6], "labels": [1, 0, 0], "user_ids": ["a", "a", "b"]})
}

/// The record count `GET /streams/{stream}` gives.
async fn count(app: &TestApp, stream: &str) -> Option<u64> {
    let info = assert_ok(app.stream_info(stream).await).await;
    info["count"].as_u64()
}

#[tokio::test]
async fn a_request_repeated_with_the_same_key_is_applied_once_and_answers_the_first_answer() {
    let app = spawn_app().await;
    let first = assert_ok(app.post_batch_keyed("ctr", "retry-1", &batch()).await).await;
    assert_eq!(
        first,
        json!({"stream": "ctr", "accepted": 3, "count": 3, "users": 2})
    );
    // Another batch in between: the repeat still answers what the first got.
    assert_ok(app.post_batch_keyed("ctr", "other", &batch()).await).await;
    let repeat = assert_ok(app.post_batch_keyed("ctr", "retry-1", &batch()).await).await;
    assert_eq!(repeat, first);
    assert_eq!(count(&app, "ctr").await, Some(6));
    let metrics = assert_ok(app.stream_metrics("ctr", "").await).await;
    assert_eq!(metrics["count"], 6, "{metrics}");
}

#[tokio::test]
async fn different_keys_and_requests_without_a_key_are_each_applied() {
    let app = spawn_app().await;
    assert_ok(app.post_batch_keyed("ctr", "k1", &batch()).await).await;
    assert_ok(app.post_batch_keyed("ctr", "k2", &batch()).await).await;
    assert_ok(app.post_batch("ctr", &batch()).await).await;
    assert_ok(app.post_batch("ctr", &batch()).await).await;
    assert_eq!(count(&app, "ctr").await, Some(12));
}

#[tokio::test]
async fn a_key_belongs_to_its_stream_and_works_for_ndjson_bodies() {
    let app = spawn_app().await;
    assert_ok(app.post_batch_keyed("one", "k", &batch()).await).await;
    assert_ok(app.post_batch_keyed("two", "k", &batch()).await).await;
    assert_eq!(
        (count(&app, "one").await, count(&app, "two").await),
        (Some(3), Some(3))
    );
    let lines = "{\"prediction\": 0.5, \"label\": 1, \"user_id\": \"c\"}\n";
    for _ in 0..2 {
        let response = app
            .client
            .post(app.url("/streams/one"))
            .header("content-type", NDJSON)
            .header("idempotency-key", "ndjson-1")
            .body(lines)
            .send()
            .await
            .expect("request failed");
        let body = assert_ok(response).await;
        assert_eq!(body["count"], 4, "{body}");
    }
    assert_eq!(count(&app, "one").await, Some(4));
}

#[tokio::test]
async fn a_bad_key_is_a_400_naming_the_header_and_changes_nothing() {
    let app = spawn_app().await;
    let long = "k".repeat(129);
    let bad: [(&str, HeaderValue); 5] = [
        ("empty", HeaderValue::from_static("")),
        (
            "129 characters",
            HeaderValue::from_str(&long).expect("ascii"),
        ),
        ("a space", HeaderValue::from_static("two words")),
        (
            "a tab",
            HeaderValue::from_bytes(b"a\tb").expect("tab is allowed in headers"),
        ),
        (
            "non-ASCII",
            HeaderValue::from_bytes("café".as_bytes()).expect("obs-text"),
        ),
    ];
    for (case, value) in bad {
        let response = app
            .client
            .post(app.url("/streams/ctr"))
            .header("idempotency-key", value)
            .json(&batch())
            .send()
            .await
            .expect("request failed");
        let problem = assert_problem(response, 400).await;
        assert_eq!(problem["field"], "Idempotency-Key", "{case}: {problem}");
    }
    assert_problem(app.stream_info("ctr").await, 404).await;
    // The longest and the most varied valid keys are accepted.
    let longest = "k".repeat(128);
    assert_ok(app.post_batch_keyed("ctr", &longest, &batch()).await).await;
    assert_ok(
        app.post_batch_keyed("ctr", "!~AZaz09-_.:{}", &batch())
            .await,
    )
    .await;
    assert_eq!(count(&app, "ctr").await, Some(6));
}

#[tokio::test]
async fn keys_are_forgotten_past_the_configured_window() {
    let app = spawn_app_with(|c| c.idempotency_ttl_secs = 0).await;
    assert_ok(app.post_batch_keyed("ctr", "k", &batch()).await).await;
    assert_ok(app.post_batch_keyed("ctr", "k", &batch()).await).await;
    assert_eq!(
        count(&app, "ctr").await,
        Some(6),
        "a zero window keeps nothing"
    );
}

/// Memory store only: Redis forgets keys by TTL alone (scripts/ci-redis skips this).
#[tokio::test]
async fn the_oldest_key_is_forgotten_past_the_configured_count() {
    let app = spawn_app_with(|c| c.idempotency_max_keys = 1).await;
    for key in ["k1", "k2", "k1", "k1"] {
        assert_ok(app.post_batch_keyed("ctr", key, &batch()).await).await;
    }
    // k2 pushed k1 out; k1 applied again is then remembered again.
    assert_eq!(count(&app, "ctr").await, Some(9));
}
