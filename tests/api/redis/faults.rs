//! The cluster moving under a running writer: slots resharded, a primary
//! killed. A writer resends a batch with the same Idempotency-Key until it is
//! acknowledged, as a client should; the stream must count every batch once.

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::{cluster_url, fresh_prefix, redis_url};
use crate::helpers::{assert_ok, spawn_app_with, TestApp};
use evald::config::StoreKind;

const BATCH: usize = 40;

async fn redis_app(prefix: &str) -> TestApp {
    let (url, prefix) = (cluster_url(), prefix.to_owned());
    spawn_app_with(move |c| {
        c.store = StoreKind::Redis;
        c.redis_url = url.split(',').map(str::to_owned).collect();
        c.redis_key_prefix = prefix;
    })
    .await
}

fn batch(i: usize) -> Value {
    json!({
        "predictions": (0..BATCH).map(|k| ((i * 7 + k) % 20) as f64 / 20.0).collect::<Vec<_>>(),
        "labels": (0..BATCH).map(|k| u8::from((i + k) % 3 == 0)).collect::<Vec<_>>(),
        "user_ids": (0..BATCH).map(|k| format!("u{}", (i * 13 + k) % 97)).collect::<Vec<_>>(),
    })
}

/// Sends batch `i` with key `b<i>` until it is acknowledged; every answer is
/// 200 or 503 (never 500). Returns the 503s seen.
async fn send_until_applied(app: &TestApp, i: usize, deadline: Instant) -> usize {
    let mut unavailable = 0;
    loop {
        let response = app
            .client
            .post(app.url("/streams/s"))
            .header("idempotency-key", format!("b{i}"))
            .json(&batch(i))
            .send()
            .await
            .expect("request");
        match response.status().as_u16() {
            200 => return unavailable,
            503 => {
                assert!(response.headers().contains_key("retry-after"));
                unavailable += 1;
                assert!(
                    Instant::now() < deadline,
                    "batch {i}: still 503 at the deadline"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            other => {
                let body = response.text().await.unwrap_or_default();
                panic!("batch {i}: status {other} (only 200 or 503 allowed): {body}");
            }
        }
    }
}

/// `CLUSTER NODES` lines of the node on `port`.
fn cluster_nodes(port: &str) -> Vec<String> {
    let out = Command::new("redis-cli")
        .args(["-p", port, "cluster", "nodes"])
        .output()
        .expect("redis-cli cluster nodes");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

/// (node id, port) of the cluster's primaries that hold slots.
fn primaries(any_port: &str) -> Vec<(String, String)> {
    cluster_nodes(any_port)
        .iter()
        .filter(|l| l.contains("master") && !l.contains("fail") && l.split(' ').count() > 8)
        .filter_map(|l| {
            let mut f = l.split(' ');
            let id = f.next()?.to_owned();
            let addr = f.next()?;
            let port = addr.split('@').next()?.rsplit(':').next()?.to_owned();
            Some((id, port))
        })
        .collect()
}

/// "port:pid" pairs of every cluster node.
fn node_pids() -> Vec<(String, u32)> {
    redis_url("EVALD_TEST_REDIS_CLUSTER_NODES")
        .split_whitespace()
        .filter_map(|pair| {
            let (port, pid) = pair.split_once(':')?;
            Some((port.to_owned(), pid.parse().ok()?))
        })
        .collect()
}

async fn stream_count(app: &TestApp) -> u64 {
    let metrics = assert_ok(app.stream_metrics("s", "").await).await;
    let info = assert_ok(app.get("/streams").await).await;
    let count = info[0]["count"].as_u64().unwrap_or(0);
    assert_eq!(metrics["counts"]["count"].as_u64().unwrap_or(count), count);
    count
}

#[tokio::test]
#[ignore = "needs Redis: run scripts/ci-redis"]
async fn resharding_slots_while_a_writer_runs_loses_and_doubles_nothing() {
    let app = redis_app(&fresh_prefix("reshard")).await;
    let (seed_port, _) = node_pids().into_iter().next().expect("cluster nodes");
    let nodes = primaries(&seed_port);
    assert!(nodes.len() >= 2, "need two primaries: {nodes:?}");
    let (from, to) = (nodes[0].0.clone(), nodes[1].0.clone());
    let port = seed_port.clone();
    let reshard = tokio::task::spawn_blocking(move || {
        Command::new("timeout")
            .args(["120", "redis-cli", "--cluster", "reshard"])
            .arg(format!("127.0.0.1:{port}"))
            .args(["--cluster-from", &from, "--cluster-to", &to])
            .args([
                "--cluster-slots",
                "3000",
                "--cluster-yes",
                "--cluster-pipeline",
                "10",
            ])
            .output()
    });
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut sent = 0;
    let mut i = 0;
    while !reshard.is_finished() || i < 20 {
        send_until_applied(&app, i, deadline).await;
        sent += BATCH as u64;
        i += 1;
    }
    let out = reshard.await.expect("join").expect("redis-cli reshard");
    assert!(
        out.status.success(),
        "reshard failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stream_count(&app).await, sent, "after {i} batches");
}

#[tokio::test]
#[ignore = "needs Redis: run scripts/ci-redis"]
async fn killing_a_primary_gives_503_until_failover_then_the_stream_answers() {
    let app = redis_app(&fresh_prefix("failover")).await;
    let pids = node_pids();
    let (seed_port, _) = pids.first().cloned().expect("cluster nodes");
    let deadline = Instant::now() + Duration::from_secs(30);
    for i in 0..10 {
        send_until_applied(&app, i, deadline).await;
    }
    // Kill a primary that is not the seed we ask for the topology.
    let victim = primaries(&seed_port)
        .into_iter()
        .find(|(_, port)| *port != seed_port)
        .expect("a second primary");
    let pid = pids
        .iter()
        .find(|(port, _)| *port == victim.1)
        .map(|(_, pid)| *pid)
        .expect("the victim's pid");
    let killed = Command::new("kill").args(["-9", &pid.to_string()]).status();
    assert!(killed.is_ok_and(|s| s.success()), "kill -9 {pid}");
    let mut unavailable = 0;
    for i in 10..40 {
        unavailable += send_until_applied(&app, i, deadline).await;
    }
    assert!(unavailable > 0, "no 503 while the primary was down");
    let count = stream_count(&app).await;
    // Redis replicates asynchronously: a write acknowledged just before the
    // kill may be lost (README, "Scale out"); nothing is ever counted twice.
    assert!(
        count <= 40 * BATCH as u64,
        "count {count} over what was sent"
    );
    // Loopback replication lags by far less than one batch: at most the
    // last batch acknowledged before the kill can be missing.
    let floor = 39 * BATCH as u64;
    assert!(
        count >= floor,
        "count {count}: more lost than the replication window allows"
    );
}
