//! Memory admission control: a global budget for the bytes requests in flight
//! hold (`--max-inflight-bytes`) and a bound on how far a gzip body inflates
//! (`--max-decompression-ratio`). README, "Reliability and security".

use std::time::{Duration, Instant};

use futures_util::future::join_all;
use serde_json::{json, Value};

use crate::helpers::*;

/// A small budget: eight bombs cut at the ratio fit in it, a test fills it
/// with a few megabytes.
const BUDGET: usize = 64 << 20;

/// gzip of `n` bytes of `byte`: compresses about 1000:1.
fn bomb(byte: u8, n: usize) -> Vec<u8> {
    gzip(&vec![byte; n])
}

/// A JSON bomb (zeros, for `/metrics`) and an NDJSON one (newlines: blank
/// lines, for stream ingest).
fn bombs(n: usize) -> [(&'static str, &'static str, Vec<u8>); 2] {
    [
        ("/metrics", "application/json", bomb(0, n)),
        ("/streams/bombed", NDJSON, bomb(b'\n', n)),
    ]
}

/// POST a pre-compressed body with `content-encoding: gzip`.
async fn post_compressed(
    app: &TestApp,
    path: &str,
    content_type: &str,
    body: Vec<u8>,
) -> reqwest::Response {
    app.client
        .post(app.url(path))
        .header("content-type", content_type)
        .header("content-encoding", "gzip")
        .body(body)
        .send()
        .await
        .expect("request failed")
}

/// A refused bomb: 413 (inflates past the ratio, or could never fit) or 503
/// with `Retry-After` (the budget is full right now), as problem+json.
async fn assert_refused(response: reqwest::Response) -> Value {
    let status = response.status().as_u16();
    let retry_after = response.headers().get("retry-after").cloned();
    assert!(status == 413 || status == 503, "status {status}");
    if status == 503 {
        assert_eq!(
            retry_after.as_ref().and_then(|v| v.to_str().ok()),
            Some("1")
        );
    }
    let problem = assert_problem(response, status).await;
    let limit = problem["limit"].as_str().unwrap_or("");
    assert!(
        ["max_inflight_bytes", "max_decompression_ratio"].contains(&limit),
        "{problem}"
    );
    problem
}

fn small_metrics_body() -> Value {
    json!({"predictions": [0.1, 0.4, 0.35, 0.8], "labels": [0, 0, 1, 1]})
}

#[tokio::test]
async fn parallel_gzip_bombs_are_refused_while_other_requests_are_served() {
    let app = spawn_app_with(|c| c.max_inflight_bytes = BUDGET).await;
    let kinds = bombs(16 << 20);
    let bombs = (0..8).map(|i| {
        let (path, content_type, body) = &kinds[i % 2];
        post_compressed(&app, path, content_type, body.clone())
    });
    let bystanders = async {
        let health = app.get("/healthz").await;
        let metrics = app.post_metrics(&small_metrics_body()).await;
        (health, metrics)
    };
    let (refused, (health, metrics)) = tokio::join!(join_all(bombs), bystanders);
    for response in refused {
        assert_refused(response).await;
    }
    assert_ok(health).await;
    let metrics = assert_ok(metrics).await;
    assert_eq!(metrics["auc"], 0.75);
    assert_eq!(
        app.listed_stream("bombed").await,
        None,
        "a refused ingest created a stream"
    );
    // Every permit was given back: a body that needs most of the budget fits
    // (6 bytes per element, 8 times the body reserved).
    let n = BUDGET / 64;
    let big = json!({"predictions": vec![0.5; n], "labels": vec![1; n]});
    assert_ok(app.post_metrics(&big).await).await;
}

#[tokio::test]
async fn a_body_inflating_past_the_ratio_is_413_naming_the_flag() {
    let app = spawn_app().await;
    // Blank lines are work too: a gzip of newlines is refused before it
    // costs seconds of CPU.
    let started = Instant::now();
    for (path, content_type, body) in bombs(64 << 20) {
        let response = post_compressed(&app, path, content_type, body).await;
        let problem = assert_problem(response, 413).await;
        assert_eq!(problem["limit"], "max_decompression_ratio", "{problem}");
        assert_detail_contains(&problem, "--max-decompression-ratio");
    }
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(app.listed_stream("bombed").await, None);
    // An ordinary gzip body is still accepted.
    let plain = serde_json::to_vec(&small_metrics_body()).expect("json");
    assert_ok(post_compressed(&app, "/metrics", "application/json", gzip(&plain)).await).await;
}

#[tokio::test]
async fn a_full_budget_is_503_with_retry_after_until_the_holder_finishes() {
    // An NDJSON ingest holds its line buffer and chunk queue (~2 MiB) while
    // its body is open; a 200 kB JSON body then needs ~1.6 MB more.
    let app = spawn_app_with(|c| {
        c.max_inflight_bytes = 3 << 20;
        c.max_line_bytes = 1 << 20;
    })
    .await;
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(4);
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    let holder = app
        .client
        .post(app.url("/streams/held"))
        .header("content-type", NDJSON)
        .body(reqwest::Body::wrap_stream(stream))
        .send();
    let holder = tokio::spawn(holder);
    tx.send(Ok(b"{\"prediction\": 0.5, \"label\": 1}\n".to_vec()))
        .await
        .expect("holder is reading");
    let n = 200_000 / 6; // 6 bytes per element: a 200 kB body
    let body = json!({"predictions": vec![0.5; n], "labels": vec![1; n]});
    let deadline = Instant::now() + Duration::from_secs(10);
    let refused = loop {
        let response = app.post_metrics(&body).await;
        if response.status() == 503 {
            break response;
        }
        assert_eq!(response.status(), 200);
        assert!(Instant::now() < deadline, "the budget never filled");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let problem = assert_refused(refused).await;
    assert_eq!(problem["limit"], "max_inflight_bytes");
    assert_detail_contains(&problem, "--max-inflight-bytes");
    // /healthz needs no budget and is served meanwhile.
    assert_ok(app.get("/healthz").await).await;
    drop(tx);
    let held = holder.await.expect("holder task").expect("holder request");
    assert_eq!(assert_ok(held).await["accepted"], 1);
    assert_ok(app.post_metrics(&body).await).await;
}

#[tokio::test]
async fn a_body_larger_than_the_whole_budget_is_413_before_it_is_read() {
    let app = spawn_app_with(|c| c.max_inflight_bytes = 1 << 20).await;
    let n = 100_000;
    let body = json!({"predictions": vec![0.5; n], "labels": vec![1; n]});
    let problem = assert_problem(app.post_metrics(&body).await, 413).await;
    assert_eq!(problem["limit"], "max_inflight_bytes");
}
