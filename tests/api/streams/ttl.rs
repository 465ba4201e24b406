//! Idle-stream expiry (`--stream-ttl-secs`) through the real server: the purge
//! task, not just the store's `purge_idle`, removes idle streams and keeps busy ones.

use std::time::{Duration, Instant};

use crate::helpers::{assert_ok, assert_problem, spawn_app_with, TestApp};
use serde_json::json;

/// Names listed by `GET /streams`.
async fn listed(app: &TestApp) -> Vec<String> {
    let list = app.streams().await;
    list.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s["name"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

async fn add(app: &TestApp, name: &str) {
    let resp = app
        .post_batch(
            name,
            &json!({"predictions": [0.2, 0.8], "labels": [0, 1], "user_ids": ["a", "b"]}),
        )
        .await;
    assert_eq!(resp.status().as_u16(), 200, "POST /streams/{name}");
}

#[tokio::test]
async fn an_idle_stream_expires_while_a_stream_that_keeps_receiving_data_stays() {
    // TTL 1 s: the purge task checks every second (its floor), so an idle
    // stream is gone within about 2 s; the busy one is fed every 200 ms.
    let app = spawn_app_with(|c| c.stream_ttl_secs = 1).await;
    add(&app, "idle").await;
    add(&app, "busy").await;
    let mut busy_batches = 1u64;
    assert_eq!(app.stream_metrics("idle", "").await.status().as_u16(), 200);

    let started = Instant::now();
    let deadline = Duration::from_secs(10);
    let mut expired_after = None;
    while started.elapsed() < deadline {
        add(&app, "busy").await;
        busy_batches += 1;
        let names = listed(&app).await;
        assert!(
            names.iter().any(|n| n == "busy"),
            "the busy stream expired after {:?}: {names:?}",
            started.elapsed()
        );
        if !names.iter().any(|n| n == "idle") {
            expired_after = Some(started.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let Some(after) = expired_after else {
        panic!("the idle stream was still listed after {deadline:?}");
    };
    assert!(
        after >= Duration::from_millis(900),
        "expired after {after:?}, before its TTL of 1 s"
    );
    assert_problem(app.stream_metrics("idle", "").await, 404).await;
    assert_problem(app.user_metrics("idle", "a", "").await, 404).await;

    // The busy stream keeps going for another two TTLs with all its records.
    let until = Instant::now() + Duration::from_secs(2);
    while Instant::now() < until {
        add(&app, "busy").await;
        busy_batches += 1;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let busy = assert_ok(app.stream_metrics("busy", "").await).await;
    assert_eq!(
        busy["count"].as_u64(),
        Some(2 * busy_batches),
        "the busy stream lost records"
    );
    assert!(listed(&app).await.contains(&"busy".to_owned()));
}

#[tokio::test]
async fn without_a_ttl_idle_streams_are_kept() {
    let app = spawn_app_with(|c| c.stream_ttl_secs = 0).await;
    add(&app, "kept").await;
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    assert_eq!(listed(&app).await, vec!["kept".to_owned()]);
}
