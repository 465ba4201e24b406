//! Edges of input and output: no `-0.0` in an answer, a truncated body is a
//! syntax error, an ingest without records is refused, odd names, paths and
//! encodings get a clear problem, and echoed input is cut short. A refused
//! request changes no state.

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::*;

/// Sends `head` (a request line and headers, no body) over a fresh
/// connection, byte for byte (no client normalizes the path), and returns the
/// status code and the body of the answer.
async fn raw_request(app: &TestApp, head: &str) -> (u16, Value) {
    let mut socket = tokio::net::TcpStream::connect(app.addr)
        .await
        .expect("connect");
    let request =
        format!("{head}\r\nhost: 127.0.0.1\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
    socket.write_all(request.as_bytes()).await.expect("write");
    let mut answer = Vec::new();
    let read = socket.read_to_end(&mut answer);
    tokio::time::timeout(std::time::Duration::from_secs(10), read)
        .await
        .expect("answer within 10 s")
        .expect("read");
    let text = String::from_utf8_lossy(&answer);
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .and_then(|(_, b)| serde_json::from_str(b).ok())
        .unwrap_or(Value::Null);
    (status, body)
}

#[tokio::test]
async fn no_answer_carries_a_negative_zero() {
    let app = spawn_app().await;
    let body = json!({"predictions": [0.1, 0.9], "labels": [0, 1], "threshold": 0.95});
    let response = app.post_metrics(&body).await;
    assert_eq!(response.status(), 200);
    let text = response.text().await.expect("body");
    assert!(!text.contains("-0.0"), "{text}");
    let value: Value = serde_json::from_str(&text).expect("json");
    assert_eq!(value["recall"], 0.0);
    // An activation of -0.0 is 0.0 too.
    let response = app
        .post_activation("tanh", &json!({"input": [-0.0, -0.5]}))
        .await;
    let text = response.text().await.expect("body");
    assert!(!text.contains("-0.0,") && !text.contains("-0.0]"), "{text}");
    assert!(text.contains("-0.46"), "{text}");
}

#[tokio::test]
async fn a_truncated_body_is_a_syntax_error_even_after_a_wrong_field() {
    let app = spawn_app().await;
    let truncated = app
        .post_raw(
            "/normalize/batch",
            "application/json",
            r#"{"predictions": [0.1, 0.2,"#,
        )
        .await;
    let problem = assert_problem(truncated, 400).await;
    assert_eq!(problem["type"], "/problems/bad-json");
    // The same field with the body complete is a 422 about that field.
    let whole = app
        .post_raw(
            "/normalize/batch",
            "application/json",
            r#"{"predictions": [0.1, 0.2]}"#,
        )
        .await;
    assert_problem(whole, 422).await;
    // An NDJSON line whose first value fails its check, then is cut short.
    let line =
        "{\"prediction\": 0.5, \"label\": 1}\n{\"prediction\": 0.5, \"label\": 7, \"user_id\": ";
    let problem = assert_problem(app.push_ndjson("cut", line).await, 400).await;
    assert_eq!(problem["type"], "/problems/bad-ndjson");
    assert_eq!(problem["line"], 2);
    assert_eq!(app.listed_stream("cut").await, None);
}

#[tokio::test]
async fn an_ingest_without_records_is_422_and_creates_no_stream() {
    let app = spawn_app().await;
    for body in ["", "\n\n  \r\n"] {
        let problem = assert_problem(app.push_ndjson("empty", body).await, 422).await;
        assert_eq!(problem["field"], "body");
    }
    let batch = json!({"predictions": [], "labels": []});
    let problem = assert_problem(app.post_batch("empty", &batch).await, 422).await;
    assert_eq!(problem["field"], "predictions");
    assert_eq!(app.listed_stream("empty").await, None);
    assert_eq!(app.streams().await, json!([]));
}

#[tokio::test]
async fn dot_names_are_refused_and_long_input_is_cut_when_echoed() {
    let app = spawn_app().await;
    for name in [".", "..", "%2E%2E"] {
        let (status, problem) = raw_request(&app, &format!("POST /streams/{name} HTTP/1.1")).await;
        assert_eq!(status, 422, "{name}: {problem}");
        assert_eq!(problem["field"], "name", "{name}: {problem}");
    }
    let long = "x".repeat(5000);
    let problem = assert_problem(app.push_ndjson(&long, "{}").await, 422).await;
    assert!(
        problem["detail"].as_str().unwrap_or("").len() < 300,
        "{problem}"
    );
    assert_detail_contains(&problem, "5000 bytes");
    let problem = assert_problem(app.stream_metrics(&long, "").await, 404).await;
    assert!(
        problem["detail"].as_str().unwrap_or("").len() < 300,
        "{problem}"
    );
    let problem = assert_problem(app.get(&format!("/{long}")).await, 404).await;
    assert!(
        problem["detail"].as_str().unwrap_or("").len() < 300,
        "{problem}"
    );
    let unknown_field = format!(r#"{{"predictions": [0.5], "labels": [1], "{long}": 1}}"#);
    let response = app
        .post_raw("/metrics", "application/json", unknown_field)
        .await;
    let problem = assert_problem(response, 422).await;
    assert!(
        problem["detail"].as_str().unwrap_or("").len() < 500,
        "{problem}"
    );
    assert_eq!(app.streams().await, json!([]));
}

#[tokio::test]
async fn a_path_that_does_not_decode_is_a_bad_request_not_bad_gzip() {
    let app = spawn_app().await;
    let response = app.get("/streams/%FF/metrics").await;
    let problem = assert_problem(response, 400).await;
    assert_eq!(problem["type"], "/problems/bad-request");
    let detail = problem["detail"].as_str().unwrap_or("");
    assert!(!detail.contains("gzip"), "{problem}");
}

#[tokio::test]
async fn an_unsupported_content_encoding_names_the_supported_ones() {
    let app = spawn_app().await;
    for encoding in ["deflate", "br", "gzip, gzip"] {
        let response = app
            .client
            .post(app.url("/metrics"))
            .header("content-type", "application/json")
            .header("content-encoding", encoding)
            .body("{}")
            .send()
            .await
            .expect("request");
        let accept = response.headers().get("accept-encoding").cloned();
        let problem = assert_problem(response, 415).await;
        assert_detail_contains(&problem, "supported encodings: gzip, identity");
        assert_eq!(problem["supported"], json!(["gzip", "identity"]));
        assert_eq!(
            accept.as_ref().and_then(|v| v.to_str().ok()),
            Some("gzip, identity")
        );
    }
    assert_eq!(app.streams().await, json!([]));
}

#[tokio::test]
async fn a_weight_a_stream_could_not_sum_is_refused_and_the_stream_stays_queryable() {
    let app = spawn_app().await;
    // Two records on one score at weights near f64::MAX would sum to
    // infinity in the stream's state and break every later query.
    let ndjson = "{\"prediction\": 0.5, \"label\": 1, \"weight\": 1e300}\n";
    let problem = assert_problem(app.push_ndjson("w", ndjson).await, 422).await;
    assert_eq!(problem["field"], "weight", "{problem}");
    assert_detail_contains(&problem, "at most 1e100");
    let batch =
        json!({"predictions": [0.5, 0.5], "labels": [1, 0], "sample_weights": [1.0, 1e300]});
    let problem = assert_problem(app.post_batch("w", &batch).await, 422).await;
    assert_eq!(problem["field"], "weights[1]", "{problem}");
    assert_eq!(app.streams().await, json!([]));
    // The largest weight taken, twice on one score, still gives finite metrics.
    let batch = json!({"predictions": [0.5, 0.5, 0.2], "labels": [1, 1, 0], "sample_weights": [1e100, 1e100, 1e100]});
    assert_ok(app.post_batch("w", &batch).await).await;
    let metrics = assert_ok(app.stream_metrics("w", "").await).await;
    assert_eq!(metrics["auc"], 1.0, "{metrics}");
}
