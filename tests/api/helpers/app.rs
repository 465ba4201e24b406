//! Test harness: start the real server on 127.0.0.1 port 0 and talk to it with
//! reqwest, like a client. Logs are silent unless `TEST_LOG` is set.
//!
//! Requests a test repeats have a typed method here (`post_metrics`,
//! `post_loss`, `push_ndjson`, `stream_metrics`, ...), so a route's path is
//! spelled once; [`assert_ok`] and [`assert_problem`] check the answer.

use std::net::SocketAddr;

use evald::config::Config;
use evald::startup;
use serde_json::Value;

/// The content type of NDJSON stream bodies.
pub const NDJSON: &str = "application/x-ndjson";

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
    use_store_from_env(&mut config);
    configure(&mut config);
    let app = startup::build(config).await.expect("bind 127.0.0.1:0");
    let addr = app.local_addr().expect("local addr");
    tokio::spawn(startup::run(app, std::future::pending()));
    TestApp {
        addr,
        client: reqwest::Client::new(),
    }
}

/// `EVALD_TEST_STORE=redis` runs the app on the Redis store at
/// `EVALD_TEST_REDIS_CLUSTER_URL` (scripts/ci-redis runs the stream tests a
/// second time this way, so both stores pass the same suite), each app under
/// a key prefix of its own. Without the variable: the memory store.
fn use_store_from_env(config: &mut Config) {
    match std::env::var("EVALD_TEST_STORE").as_deref() {
        Err(_) | Ok("" | "memory") => {}
        Ok("redis") => {
            static APPS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
            let url = std::env::var("EVALD_TEST_REDIS_CLUSTER_URL").unwrap_or_else(|_| {
                panic!("EVALD_TEST_STORE=redis needs EVALD_TEST_REDIS_CLUSTER_URL: run scripts/ci-redis")
            });
            let n = APPS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0);
            config.store = evald::config::StoreKind::Redis;
            config.redis_url = url.split(',').map(str::to_owned).collect();
            config.redis_key_prefix = format!("t:{}:{nanos}:{n}:", std::process::id());
        }
        Ok(other) => panic!("EVALD_TEST_STORE must be memory or redis, not '{other}'"),
    }
}

impl TestApp {
    /// Absolute URL of `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Sends `request`; a transport failure fails the test.
    async fn send(&self, request: reqwest::RequestBuilder) -> reqwest::Response {
        request.send().await.expect("request failed")
    }

    /// GET `path`.
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.send(self.client.get(self.url(path))).await
    }

    /// DELETE `path`.
    pub async fn delete(&self, path: &str) -> reqwest::Response {
        self.send(self.client.delete(self.url(path))).await
    }

    /// POST `body` as JSON to `path`.
    pub async fn post_json(&self, path: &str, body: &Value) -> reqwest::Response {
        self.send(self.client.post(self.url(path)).json(body)).await
    }

    /// POST raw bytes with a content type.
    pub async fn post_raw(
        &self,
        path: &str,
        content_type: &str,
        body: impl Into<reqwest::Body>,
    ) -> reqwest::Response {
        let request = self
            .client
            .post(self.url(path))
            .header("content-type", content_type)
            .body(body);
        self.send(request).await
    }

    /// POST gzip-compressed bytes (`content-encoding: gzip`) with a content type.
    pub async fn post_gzip(
        &self,
        path: &str,
        content_type: &str,
        body: &[u8],
    ) -> reqwest::Response {
        let request = self
            .client
            .post(self.url(path))
            .header("content-type", content_type)
            .header("content-encoding", "gzip")
            .body(super::gzip(body));
        self.send(request).await
    }

    /// GET `path`, asserting a 200 with a JSON body, which it returns.
    pub async fn get_ok(&self, path: &str) -> Value {
        assert_ok(self.get(path).await).await
    }

    /// The served OpenAPI document.
    pub async fn openapi(&self) -> Value {
        self.get_ok("/openapi.json").await
    }

    /// `POST /metrics`.
    pub async fn post_metrics(&self, body: &Value) -> reqwest::Response {
        self.post_json("/metrics", body).await
    }

    /// POST a metrics `body` to `/plots/{kind}?{query}` (an SVG, or a problem).
    pub async fn post_plot(&self, kind: &str, query: &str, body: &Value) -> reqwest::Response {
        self.post_json(&format!("/plots/{kind}?{query}"), body)
            .await
    }

    /// `POST /loss/{name}`.
    pub async fn post_loss(&self, name: &str, body: &Value) -> reqwest::Response {
        self.post_json(&format!("/loss/{name}"), body).await
    }

    /// `POST /activation/{name}`.
    pub async fn post_activation(&self, name: &str, body: &Value) -> reqwest::Response {
        self.post_json(&format!("/activation/{name}"), body).await
    }

    /// `POST /normalize/{kind}`.
    pub async fn post_normalize(&self, kind: &str, body: &Value) -> reqwest::Response {
        self.post_json(&format!("/normalize/{kind}"), body).await
    }

    /// `GET /activation`: the activation catalogue.
    pub async fn activations(&self) -> Value {
        self.get_ok("/activation").await
    }

    /// `POST /optimizer/{name}/step`.
    pub async fn optimizer_step(&self, name: &str, body: &Value) -> reqwest::Response {
        self.post_json(&format!("/optimizer/{name}/step"), body)
            .await
    }

    /// `POST /optimizer/{name}/run`.
    pub async fn optimizer_run(&self, name: &str, body: &Value) -> reqwest::Response {
        self.post_json(&format!("/optimizer/{name}/run"), body)
            .await
    }

    /// `POST /streams/{stream}` with a JSON batch.
    pub async fn post_batch(&self, stream: &str, body: &Value) -> reqwest::Response {
        self.post_json(&format!("/streams/{stream}"), body).await
    }

    /// `POST /streams/{stream}` with an NDJSON body.
    pub async fn push_ndjson(&self, stream: &str, body: impl Into<String>) -> reqwest::Response {
        self.post_raw(&format!("/streams/{stream}"), NDJSON, body.into())
            .await
    }

    /// `GET /streams/{stream}/metrics?{query}` (no query when it is empty).
    pub async fn stream_metrics(&self, stream: &str, query: &str) -> reqwest::Response {
        self.get(&with_query(&format!("/streams/{stream}/metrics"), query))
            .await
    }

    /// `GET /streams/{stream}/users/{user}/metrics?{query}`.
    pub async fn user_metrics(&self, stream: &str, user: &str, query: &str) -> reqwest::Response {
        let path = format!("/streams/{stream}/users/{user}/metrics");
        self.get(&with_query(&path, query)).await
    }

    /// `GET /streams`: the list of streams.
    pub async fn streams(&self) -> Value {
        self.get_ok("/streams").await
    }

    /// The entry of `stream` in `GET /streams`, `None` when it is not listed.
    pub async fn listed_stream(&self, stream: &str) -> Option<Value> {
        let list = self.streams().await;
        list.as_array()?
            .iter()
            .find(|s| s["name"] == stream)
            .cloned()
    }

    /// `POST /streams/{stream}` with a JSON batch and an `Idempotency-Key`.
    pub async fn post_batch_keyed(
        &self,
        stream: &str,
        key: &str,
        body: &Value,
    ) -> reqwest::Response {
        let request = self
            .client
            .post(self.url(&format!("/streams/{stream}")))
            .header("idempotency-key", key)
            .json(body);
        self.send(request).await
    }

    /// `GET /streams/{stream}`: the stream's summary.
    pub async fn stream_info(&self, stream: &str) -> reqwest::Response {
        self.get(&format!("/streams/{stream}")).await
    }

    /// `GET /streams/{stream}/users?{query}`: one page of its users.
    pub async fn stream_users(&self, stream: &str, query: &str) -> reqwest::Response {
        self.get(&with_query(&format!("/streams/{stream}/users"), query))
            .await
    }
}

/// `path?query`, or `path` when `query` is empty.
fn with_query(path: &str, query: &str) -> String {
    if query.is_empty() {
        path.to_owned()
    } else {
        format!("{path}?{query}")
    }
}

/// Asserts `response` is a 200 with a JSON body and returns the body; a
/// failure names the URL and shows the body.
pub async fn assert_ok(response: reqwest::Response) -> Value {
    let status = response.status().as_u16();
    let url = response.url().path().to_owned();
    let text = response.text().await.expect("response body");
    assert_eq!(status, 200, "{url}: {text}");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{url}: body is not JSON ({e}): {text}"))
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

/// Asserts the `detail` of a `problem` body contains `fragment`.
pub fn assert_detail_contains(problem: &Value, fragment: &str) {
    let detail = problem["detail"].as_str().unwrap_or("");
    assert!(detail.contains(fragment), "{problem}");
}
