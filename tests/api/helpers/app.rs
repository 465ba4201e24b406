//! Test harness: start the real server on 127.0.0.1 port 0 and talk to it with
//! reqwest, like a client. Logs are silent unless `TEST_LOG` is set.

#![allow(dead_code)]

use std::net::SocketAddr;

use evald::config::Config;
use evald::startup;
use serde_json::Value;

/// A running server and a client pointed at it.
pub struct TestApp {
    pub addr: SocketAddr,
    pub client: reqwest::Client,
}

/// Starts the app with the default test configuration.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// Starts the app after letting `configure` adjust the test configuration.
pub async fn spawn_app_with(configure: impl FnOnce(&mut Config)) -> TestApp {
    if std::env::var_os("TEST_LOG").is_some() {
        evald::telemetry::init(evald::config::LogFormat::Pretty);
    }
    let mut config = Config::for_tests();
    configure(&mut config);
    let app = startup::build(config).await.expect("bind 127.0.0.1:0");
    let addr = app.local_addr().expect("local addr");
    tokio::spawn(startup::run(
        app.listener,
        app.router,
        std::future::pending(),
    ));
    TestApp {
        addr,
        client: reqwest::Client::new(),
    }
}

impl TestApp {
    /// Absolute URL of `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// GET `path`.
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .send()
            .await
            .expect("request failed")
    }

    /// POST `body` as JSON to `path`.
    pub async fn post_json(&self, path: &str, body: &Value) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .expect("request failed")
    }

    /// POST raw bytes with a content type.
    pub async fn post_raw(
        &self,
        path: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .expect("request failed")
    }
}

/// Asserts `response` is a problem+json with `status`, returns its body.
pub async fn assert_problem(response: reqwest::Response, status: u16) -> Value {
    assert_eq!(response.status().as_u16(), status, "unexpected status");
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    assert!(
        content_type.starts_with("application/problem+json"),
        "content-type was {content_type}"
    );
    let body: Value = response.json().await.expect("problem body is JSON");
    assert_eq!(body["status"].as_u64(), Some(u64::from(status)), "{body}");
    assert!(
        body["type"]
            .as_str()
            .unwrap_or("")
            .starts_with("/problems/"),
        "{body}"
    );
    assert!(!body["detail"].as_str().unwrap_or("").is_empty(), "{body}");
    body
}

/// Fields a stream response adds to the one-shot `POST /metrics` response.
pub const STREAM_ONLY_FIELDS: [&str; 5] = [
    "stream",
    "user_id",
    "auc_error_bound",
    "confusion_error_bound",
    "gauc_error_bound",
];

/// Asserts a stream response equals a one-shot response: the same keys (but
/// [`STREAM_ONLY_FIELDS`]) and numbers within 1e-12 (only the order of
/// floating-point weight sums differs).
pub fn assert_matches_one_shot(stream: &Value, one_shot: &Value, path: &str) {
    match (stream, one_shot) {
        (Value::Number(x), Value::Number(y)) => {
            let (x, y) = (
                x.as_f64().unwrap_or(f64::NAN),
                y.as_f64().unwrap_or(f64::NAN),
            );
            assert!((x - y).abs() <= 1e-12, "{path}: {x} vs {y}");
        }
        (Value::Array(x), Value::Array(y)) => {
            assert_eq!(x.len(), y.len(), "{path}: lengths differ");
            for (i, (u, v)) in x.iter().zip(y).enumerate() {
                assert_matches_one_shot(u, v, &format!("{path}[{i}]"));
            }
        }
        (Value::Object(x), Value::Object(y)) => {
            let keys = |m: &serde_json::Map<String, Value>| {
                let mut k: Vec<String> = m
                    .keys()
                    .filter(|k| !STREAM_ONLY_FIELDS.contains(&k.as_str()))
                    .cloned()
                    .collect();
                k.sort();
                k
            };
            assert_eq!(keys(x), keys(y), "{path}: keys differ");
            for k in keys(x) {
                assert_matches_one_shot(&x[&k], &y[&k], &format!("{path}.{k}"));
            }
        }
        _ => assert_eq!(stream, one_shot, "{path}"),
    }
}
