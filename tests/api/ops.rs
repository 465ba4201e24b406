//! Operational routes and the framework-level error paths, through the real server.

use crate::helpers::{assert_detail_contains, assert_problem, spawn_app};
use serde_json::Value;

#[tokio::test]
async fn healthz_and_readyz_answer_ok() {
    let app = spawn_app().await;
    for path in ["/healthz", "/readyz"] {
        let response = app.get(path).await;
        assert_eq!(response.status(), 200, "{path}");
        let body: Value = response.json().await.unwrap();
        assert!(body["status"].is_string(), "{path}: {body}");
    }
}

#[tokio::test]
async fn openapi_json_serves_the_yaml_spec_as_json() {
    let app = spawn_app().await;
    let response = app.get("/openapi.json").await;
    assert_eq!(response.status(), 200);
    let spec: Value = response.json().await.unwrap();
    assert_eq!(spec["openapi"], "3.1.0");
    assert!(spec["paths"]["/healthz"]["get"].is_object(), "{spec}");
    assert!(spec["components"]["schemas"]["Problem"].is_object());
}

#[tokio::test]
async fn an_unknown_route_is_a_404_problem() {
    let app = spawn_app().await;
    let body = assert_problem(app.get("/no/such/route").await, 404).await;
    assert_eq!(body["type"], "/problems/not-found");
    assert_detail_contains(&body, "/no/such/route");
}

#[tokio::test]
async fn a_wrong_method_is_a_405_problem_with_an_allow_header() {
    let app = spawn_app().await;
    let response = app.delete("/healthz").await;
    let allow = response
        .headers()
        .get("allow")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    assert!(allow.contains("GET"), "allow header was {allow:?}");
    let body = assert_problem(response, 405).await;
    assert_eq!(body["type"], "/problems/method-not-allowed");
}

#[tokio::test]
async fn every_problem_type_is_described_and_unknown_ones_are_404() {
    let app = spawn_app().await;
    let list: Value = app.get("/problems").await.json().await.unwrap();
    let list = list.as_array().expect("array");
    assert!(list.len() >= 9);
    for entry in list {
        let kind = entry["type"].as_str().unwrap();
        let response = app.get(kind).await;
        assert_eq!(response.status(), 200, "{kind}");
        let one: Value = response.json().await.unwrap();
        assert!(!one["description"].as_str().unwrap().is_empty(), "{kind}");
    }
    let body = assert_problem(app.get("/problems/no-such-problem").await, 404).await;
    assert!(
        body["valid"].as_array().is_some_and(|v| !v.is_empty()),
        "{body}"
    );
}

#[tokio::test]
async fn responses_carry_a_request_id_and_keep_the_clients_one() {
    let app = spawn_app().await;
    let generated = app.get("/healthz").await;
    let id = generated
        .headers()
        .get("x-request-id")
        .expect("x-request-id");
    assert!(!id.is_empty());
    let response = app
        .client
        .get(app.url("/healthz"))
        .header("x-request-id", "client-chosen-id")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-request-id"], "client-chosen-id");
}

#[tokio::test]
async fn responses_are_gzip_compressed_when_the_client_accepts_it() {
    let app = spawn_app().await;
    // reqwest's `gzip` feature sends Accept-Encoding: gzip and decodes transparently,
    // so ask with a raw client that does not decode.
    let raw = reqwest::Client::builder().no_gzip().build().unwrap();
    let response = raw
        .get(app.url("/openapi.json"))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-encoding"], "gzip");
}

#[tokio::test]
async fn prometheus_metrics_count_requests_by_route() {
    let app = spawn_app().await;
    app.get("/healthz").await;
    let text = app.get("/internal/metrics").await.text().await.unwrap();
    assert!(
        text.contains(r#"evald_requests_total{method="GET",route="/healthz",status="200"} 1"#),
        "{text}"
    );
    assert!(
        text.contains("evald_request_duration_seconds_bucket"),
        "{text}"
    );
    assert!(text.contains("evald_resident_memory_bytes"), "{text}");
}

/// The spec and the router must agree: every documented path and method is
/// routed (neither the unknown-route 404 nor a 405).
#[tokio::test]
async fn every_path_in_the_openapi_spec_is_routed() {
    let app = spawn_app().await;
    let spec = app.openapi().await;
    let paths = spec["paths"].as_object().expect("paths");
    for (template, item) in paths {
        let path = fill_template(template);
        let methods = item.as_object().unwrap().keys().filter(|k| {
            ["get", "put", "post", "delete", "patch", "head", "options"].contains(&k.as_str())
        });
        for method in methods {
            let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let response = app
                .client
                .request(method.clone(), app.url(&path))
                .header("content-type", "application/json")
                .body("{}")
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            let body: Value = response.json().await.unwrap_or(Value::Null);
            let unrouted = status == 405
                || (status == 404
                    && body["detail"]
                        .as_str()
                        .is_some_and(|d| d.starts_with("no route")));
            assert!(
                !unrouted,
                "{method} {template} is documented but not routed: {body}"
            );
        }
    }
}

/// Replaces each `{param}` with a plausible value.
fn fill_template(template: &str) -> String {
    let mut out = String::new();
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let end = rest[start..]
            .find('}')
            .map(|e| start + e)
            .unwrap_or(rest.len() - 1);
        let name = &rest[start + 1..end];
        out.push_str(match name {
            "slug" => "invalid-input",
            "name" => "example",
            "kind" => "batch",
            _ => "x",
        });
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

#[tokio::test]
async fn a_number_beyond_f64_range_is_a_422_naming_the_field() {
    let app = spawn_app().await;
    let response = app
        .post_raw(
            "/metrics",
            "application/json",
            br#"{"predictions": [0.5, 1e999], "labels": [0, 1]}"#.to_vec(),
        )
        .await;
    let body = assert_problem(response, 422).await;
    assert!(
        body["field"].as_str().unwrap().starts_with("predictions"),
        "{body}"
    );
}
