//! Several evald replicas on one Redis Cluster, over HTTP: the same answers
//! as one-shot `POST /metrics` and as the memory store; Idempotency-Key;
//! readiness and 503 while Redis cannot be reached.

use serde_json::{json, Value};

use super::{cluster_url, fresh_prefix};
use crate::helpers::{assert_matches_one_shot, assert_ok, assert_problem, spawn_app_with, TestApp};
use evald::config::StoreKind;

/// An app on the Redis store at `url` under key prefix `prefix`.
async fn redis_app(url: &str, prefix: &str) -> TestApp {
    let (url, prefix) = (url.to_owned(), prefix.to_owned());
    spawn_app_with(move |c| {
        c.store = StoreKind::Redis;
        c.redis_url = url.split(',').map(str::to_owned).collect();
        c.redis_key_prefix = prefix;
    })
    .await
}

async fn memory_app() -> TestApp {
    spawn_app_with(|c| c.store = StoreKind::Memory).await
}

/// A deterministic pseudo-random sequence (splitmix64), so a failure replays.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

#[derive(Debug, Clone)]
struct Rec {
    score: f64,
    label: u8,
    user: u64,
    weight: f64,
}

fn records(rng: &mut Rng, n: usize, users: u64, weighted: bool) -> Vec<Rec> {
    (0..n)
        .map(|_| Rec {
            score: rng.below(50) as f64 / 50.0,
            label: u8::from(rng.below(3) == 0),
            user: rng.below(users),
            weight: if weighted {
                0.25 + rng.below(16) as f64 / 4.0
            } else {
                1.0
            },
        })
        .collect()
}

fn batch_json(recs: &[Rec], weighted: bool) -> Value {
    let mut body = json!({
        "predictions": recs.iter().map(|r| r.score).collect::<Vec<_>>(),
        "labels": recs.iter().map(|r| r.label).collect::<Vec<_>>(),
        "user_ids": recs.iter().map(|r| format!("u{}", r.user)).collect::<Vec<_>>(),
    });
    if weighted {
        body["sample_weights"] = json!(recs.iter().map(|r| r.weight).collect::<Vec<_>>());
    }
    body
}

const QUERY: &str =
    "threshold=0.4&max_points=1000&drop_intermediate=false&gauc_weighting=impressions";

fn one_shot_params(body: &mut Value) {
    body["threshold"] = json!(0.4);
    body["roc"] = json!({"max_points": 1000, "drop_intermediate": false});
    body["gauc_weighting"] = json!("impressions");
}

#[tokio::test]
#[ignore = "needs Redis: run scripts/ci-redis"]
async fn two_replicas_on_one_cluster_equal_one_shot_and_the_memory_store() {
    let url = cluster_url();
    let prefix = fresh_prefix("replicas");
    let replicas = [
        redis_app(&url, &prefix).await,
        redis_app(&url, &prefix).await,
    ];
    let memory = memory_app().await;
    for (case, weighted) in [(1u64, false), (2, true), (3, true)] {
        let mut rng = Rng(case);
        let recs = records(&mut rng, 400, 25, weighted);
        let name = format!("s{case}");
        let mut at = 0;
        let mut turn = 0;
        while at < recs.len() {
            let end = (at + 1 + rng.below(90) as usize).min(recs.len());
            let body = batch_json(&recs[at..end], weighted);
            assert_ok(replicas[turn % 2].post_batch(&name, &body).await).await;
            assert_ok(memory.post_batch(&name, &body).await).await;
            at = end;
            turn += 1;
        }
        let mut whole = batch_json(&recs, weighted);
        one_shot_params(&mut whole);
        let one_shot = assert_ok(memory.post_metrics(&whole).await).await;
        let in_memory = assert_ok(memory.stream_metrics(&name, QUERY).await).await;
        for (i, replica) in replicas.iter().enumerate() {
            let got = assert_ok(replica.stream_metrics(&name, QUERY).await).await;
            assert_matches_one_shot(&got, &one_shot, &format!("case {case} replica {i}"));
            assert_matches_one_shot(
                &got,
                &in_memory,
                &format!("case {case} replica {i} vs memory"),
            );
            assert_eq!(got["gauc_error_bound"], in_memory["gauc_error_bound"]);
        }
        for user in 0..25 {
            let u = format!("u{user}");
            let want = memory.user_metrics(&name, &u, QUERY).await;
            let got = replicas[user as usize % 2]
                .user_metrics(&name, &u, QUERY)
                .await;
            assert_eq!(got.status(), want.status(), "user {u}");
            if want.status().is_success() {
                let (got, want) = (assert_ok(got).await, assert_ok(want).await);
                assert_matches_one_shot(&got, &want, &format!("case {case} user {u}"));
            }
        }
    }
    let listed = assert_ok(replicas[1].get("/streams").await).await;
    let counts: Vec<(Value, Value)> = listed
        .as_array()
        .map(|a| {
            a.iter()
                .map(|s| (s["name"].clone(), s["count"].clone()))
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(
        counts,
        vec![
            (json!("s1"), json!(400)),
            (json!("s2"), json!(400)),
            (json!("s3"), json!(400))
        ]
    );
}

#[tokio::test]
#[ignore = "needs Redis: run scripts/ci-redis"]
async fn the_same_idempotency_key_on_two_replicas_is_counted_once() {
    let url = cluster_url();
    let prefix = fresh_prefix("idem-http");
    let (a, b) = (
        redis_app(&url, &prefix).await,
        redis_app(&url, &prefix).await,
    );
    let body = batch_json(&records(&mut Rng(9), 30, 5, false), false);
    let send = |app: &TestApp, key: &str| {
        app.client
            .post(app.url("/streams/s"))
            .header("idempotency-key", key)
            .json(&body)
            .send()
    };
    let first = assert_ok(send(&a, "k1").await.expect("request")).await;
    let again = assert_ok(send(&b, "k1").await.expect("request")).await;
    assert_eq!(first, again);
    assert_eq!(first["count"], 30);
    let other = assert_ok(send(&b, "k2").await.expect("request")).await;
    assert_eq!(other["count"], 60);
}

#[tokio::test]
async fn without_redis_readyz_is_not_ready_and_stream_routes_answer_503_with_retry_after() {
    // A loopback port nobody listens on (bound, then released).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port");
    let app = redis_app(&format!("redis://127.0.0.1:{port}"), "evald:").await;
    assert_eq!(app.get("/healthz").await.status().as_u16(), 200);
    assert_eq!(app.get("/readyz").await.status().as_u16(), 503);
    let body = batch_json(&records(&mut Rng(1), 5, 2, false), false);
    let responses = [
        app.post_batch("s", &body).await,
        app.stream_metrics("s", "").await,
        app.get("/streams").await,
        app.delete("/streams/s").await,
    ];
    for response in responses {
        let retry_after = response.headers().get("retry-after").cloned();
        let problem = assert_problem(response, 503).await;
        assert!(retry_after.is_some(), "no Retry-After on {problem}");
    }
}
