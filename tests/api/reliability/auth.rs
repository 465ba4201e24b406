//! API keys and tenants over HTTP: the scope of every route, 401 and 403,
//! tenant isolation of streams, per-tenant limits, and the open service
//! without keys (README, "API keys and tenants").

use std::collections::BTreeSet;
use std::path::PathBuf;

use evald::config::Config;
use reqwest::Method;
use serde_json::Value;

use crate::helpers::{
    assert_detail_contains, assert_ok, assert_problem, spawn_app, spawn_app_with, TestApp, NDJSON,
};

/// Tenant `acme`, one key per scope and one with read and write.
const READ_KEY: &str = "acme-read-0123456789abcdef";
const WRITE_KEY: &str = "acme-write-0123456789abcdef";
const ADMIN_KEY: &str = "acme-admin-0123456789abcdef";
const ACME_KEY: &str = "acme-rw-0123456789abcdef";
/// Tenant `globex`, read and write.
const GLOBEX_KEY: &str = "globex-rw-0123456789abcdef";
/// In no file.
const UNKNOWN_KEY: &str = "nobody-0123456789abcdef0000";

/// Every key a test file holds, for the log test too.
pub const CONFIGURED_KEYS: [&str; 5] = [READ_KEY, WRITE_KEY, ADMIN_KEY, ACME_KEY, GLOBEX_KEY];

/// Writes the key file of these tests (named by `tag`) and returns its path.
pub fn key_file(tag: &str) -> PathBuf {
    let text = format!(
        "# tenant acme\n{READ_KEY} acme read\n{WRITE_KEY} acme write\n{ADMIN_KEY} acme admin\n\
         {ACME_KEY} acme read,write\n\n# tenant globex\n{GLOBEX_KEY} globex read,write\n"
    );
    let path = std::env::temp_dir().join(format!("evald-keys-{tag}-{}", std::process::id()));
    std::fs::write(&path, text).expect("write the key file");
    path
}

/// The app with this file's keys, after `configure`.
async fn spawn_with_keys(tag: &str, configure: impl FnOnce(&mut Config)) -> TestApp {
    let path = key_file(tag);
    spawn_app_with(|config| {
        config.api_keys_file = Some(path);
        configure(config);
    })
    .await
}

/// `method path` with a `{}` JSON body and, when given, a bearer key.
async fn call(app: &TestApp, method: Method, path: &str, key: Option<&str>) -> reqwest::Response {
    let mut request = app
        .client
        .request(method, app.url(path))
        .header("content-type", "application/json")
        .body("{}");
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    request.send().await.expect("request failed")
}

/// `POST /streams/{stream}` with NDJSON `lines` and `key`.
async fn push(app: &TestApp, key: &str, stream: &str, lines: &str) -> reqwest::Response {
    app.client
        .post(app.url(&format!("/streams/{stream}")))
        .bearer_auth(key)
        .header("content-type", NDJSON)
        .body(lines.to_owned())
        .send()
        .await
        .expect("request failed")
}

/// GET `path` with `key`, asserting a 200 JSON body.
async fn get_ok(app: &TestApp, key: &str, path: &str) -> Value {
    assert_ok(call(app, Method::GET, path, Some(key)).await).await
}

/// The names `key`'s tenant sees in `GET /streams`, with their counts.
async fn listed(app: &TestApp, key: &str) -> Vec<(String, u64)> {
    let list = get_ok(app, key, "/streams").await;
    list.as_array()
        .expect("an array")
        .iter()
        .map(|s| {
            let name = s["name"].as_str().unwrap_or("").to_owned();
            (name, s["count"].as_u64().unwrap_or(0))
        })
        .collect()
}

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Needs {
    Nothing,
    Read,
    Write,
    Admin,
}

/// Every route of the service with the scope it needs (README, "API keys
/// and tenants"). The test below checks this table against the served spec,
/// which `ops::every_path_in_the_openapi_spec_is_routed` checks against the
/// router, so a new route cannot go untested.
const ROUTES: [(&str, &str, Needs); 24] = [
    ("get", "/healthz", Needs::Nothing),
    ("get", "/readyz", Needs::Nothing),
    ("get", "/openapi.json", Needs::Read),
    ("get", "/problems", Needs::Read),
    ("get", "/problems/{slug}", Needs::Read),
    ("get", "/internal/metrics", Needs::Admin),
    ("post", "/metrics", Needs::Write),
    ("get", "/streams", Needs::Read),
    ("post", "/streams/{name}", Needs::Write),
    ("delete", "/streams/{name}", Needs::Write),
    ("get", "/streams/{name}", Needs::Read),
    ("get", "/streams/{name}/users", Needs::Read),
    ("get", "/streams/{name}/metrics", Needs::Read),
    (
        "get",
        "/streams/{name}/users/{user_id}/metrics",
        Needs::Read,
    ),
    ("get", "/loss", Needs::Read),
    ("post", "/loss/{name}", Needs::Write),
    ("get", "/normalize", Needs::Read),
    ("post", "/normalize/{kind}", Needs::Write),
    ("get", "/activation", Needs::Read),
    ("post", "/activation/{name}", Needs::Write),
    ("get", "/optimizer", Needs::Read),
    ("post", "/optimizer/{name}/step", Needs::Write),
    ("post", "/optimizer/{name}/run", Needs::Write),
    ("get", "/loss/{name}", Needs::Read),
];

/// `template` with every `{param}` segment replaced by `x`.
fn concrete(template: &str) -> String {
    template
        .split('/')
        .map(|segment| {
            if segment.starts_with('{') {
                "x"
            } else {
                segment
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// The (method, path) pairs of the served spec.
async fn spec_routes(app: &TestApp) -> BTreeSet<(String, String)> {
    let spec = get_ok(app, READ_KEY, "/openapi.json").await;
    let paths = spec["paths"].as_object().expect("paths");
    let mut routes = BTreeSet::new();
    for (template, item) in paths {
        for method in item.as_object().expect("a path item").keys() {
            if ["get", "post", "put", "patch", "delete"].contains(&method.as_str()) {
                routes.insert((method.clone(), template.clone()));
            }
        }
    }
    routes
}

#[tokio::test]
async fn each_scope_opens_exactly_the_routes_that_need_it() {
    let app = spawn_with_keys("scopes", |_| {}).await;
    let table: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|(m, p, _)| ((*m).to_owned(), (*p).to_owned()))
        .collect();
    assert_eq!(
        table,
        spec_routes(&app).await,
        "the table and the spec differ"
    );

    let keys = [
        (READ_KEY, Needs::Read),
        (WRITE_KEY, Needs::Write),
        (ADMIN_KEY, Needs::Admin),
    ];
    for (method, template, needs) in ROUTES {
        let method = Method::from_bytes(method.to_uppercase().as_bytes()).expect("a method");
        let path = concrete(template);
        let anonymous = call(&app, method.clone(), &path, None).await;
        if needs == Needs::Nothing {
            assert_eq!(anonymous.status(), 200, "{method} {template} is open");
        } else {
            assert_eq!(anonymous.status(), 401, "{method} {template} without a key");
        }
        for (key, scope) in keys {
            let response = call(&app, method.clone(), &path, Some(key)).await;
            let status = response.status().as_u16();
            if needs == Needs::Nothing || needs == scope {
                assert!(
                    status != 401 && status != 403,
                    "{method} {template} with the {scope:?} key: {status}"
                );
            } else {
                let problem = assert_problem(response, 403).await;
                assert_eq!(problem["type"], "/problems/forbidden", "{problem}");
                let wanted = format!("{needs:?}").to_lowercase();
                assert_eq!(problem["scope"], wanted.as_str(), "{method} {template}");
            }
        }
    }
}

#[tokio::test]
async fn a_missing_malformed_or_unknown_key_is_a_401_with_a_bearer_challenge() {
    let app = spawn_with_keys("401", |_| {}).await;
    let unknown = app
        .client
        .get(app.url("/streams"))
        .bearer_auth(UNKNOWN_KEY)
        .send()
        .await
        .expect("request failed");
    let malformed = app
        .client
        .get(app.url("/streams"))
        .header("authorization", format!("Basic {ACME_KEY}"))
        .send()
        .await
        .expect("request failed");
    let missing = call(&app, Method::GET, "/streams", None).await;
    for (response, error) in [
        (missing, None),
        (malformed, Some("invalid_request")),
        (unknown, Some("invalid_token")),
    ] {
        let challenge = header(&response, "www-authenticate");
        assert!(challenge.starts_with("Bearer"), "{challenge}");
        if let Some(code) = error {
            assert!(challenge.contains(code), "{challenge}");
        }
        let problem = assert_problem(response, 401).await;
        assert_eq!(problem["type"], "/problems/unauthorized");
        let text = problem.to_string();
        assert!(
            !text.contains(UNKNOWN_KEY) && !text.contains(ACME_KEY),
            "{text}"
        );
    }
    // An unknown route needs a key too: nothing about the routes leaks.
    assert_eq!(
        call(&app, Method::GET, "/no/such/route", None)
            .await
            .status(),
        401
    );
}

#[tokio::test]
async fn a_tenant_cannot_list_read_write_or_delete_another_tenants_streams() {
    let app = spawn_with_keys("tenants", |_| {}).await;
    let lines = "{\"prediction\": 0.9, \"label\": 1, \"user_id\": \"u1\"}\n\
                 {\"prediction\": 0.2, \"label\": 0, \"user_id\": \"u1\"}\n";
    let pushed = assert_ok(push(&app, ACME_KEY, "shared", lines).await).await;
    assert_eq!(
        pushed["stream"], "shared",
        "the tenant's own name: {pushed}"
    );

    // List: globex sees nothing; acme sees its stream under its own name.
    assert!(listed(&app, GLOBEX_KEY).await.is_empty());
    assert_eq!(listed(&app, ACME_KEY).await, vec![("shared".to_owned(), 2)]);

    // Read, per-user read and delete of acme's stream by globex: 404, and the
    // answer never shows the stored (prefixed) name.
    for (method, path) in [
        (Method::GET, "/streams/shared/metrics"),
        (Method::GET, "/streams/shared/users/u1/metrics"),
        (Method::DELETE, "/streams/shared"),
        (Method::GET, "/streams/acme%2Fshared/metrics"),
    ] {
        let response = call(&app, method.clone(), path, Some(GLOBEX_KEY)).await;
        let problem = assert_problem(response, 404).await;
        assert!(!problem.to_string().contains("globex/"), "{problem}");
    }

    // Write: globex's "shared" is its own stream; acme's is unchanged.
    let one = "{\"prediction\": 0.5, \"label\": 1, \"user_id\": \"u9\"}\n";
    let theirs = assert_ok(push(&app, GLOBEX_KEY, "shared", one).await).await;
    assert_eq!(
        (theirs["stream"].as_str(), theirs["count"].as_u64()),
        (Some("shared"), Some(1))
    );
    assert_eq!(
        listed(&app, GLOBEX_KEY).await,
        vec![("shared".to_owned(), 1)]
    );
    let mine = get_ok(&app, ACME_KEY, "/streams/shared/metrics").await;
    assert_eq!(mine["stream"], "shared");
    assert_eq!(mine["count"], 2, "{mine}");
    let user = get_ok(&app, ACME_KEY, "/streams/shared/users/u1/metrics").await;
    assert_eq!(
        (user["stream"].as_str(), user["user_id"].as_str()),
        (Some("shared"), Some("u1"))
    );
    let missing_user = call(
        &app,
        Method::GET,
        "/streams/shared/users/u9/metrics",
        Some(ACME_KEY),
    );
    let problem = assert_problem(missing_user.await, 404).await;
    assert_detail_contains(&problem, "stream 'shared' has no user 'u9'");

    // Delete: globex deletes its own; acme's stays.
    let deleted = call(&app, Method::DELETE, "/streams/shared", Some(GLOBEX_KEY)).await;
    assert_eq!(deleted.status(), 204);
    assert!(listed(&app, GLOBEX_KEY).await.is_empty());
    assert_eq!(listed(&app, ACME_KEY).await, vec![("shared".to_owned(), 2)]);
    let again = call(&app, Method::DELETE, "/streams/shared", Some(GLOBEX_KEY)).await;
    let problem = assert_problem(again, 404).await;
    assert_detail_contains(&problem, "unknown stream 'shared'");
}

#[tokio::test]
async fn a_tenant_over_its_stream_limit_gets_a_503_naming_it_others_do_not() {
    let app = spawn_with_keys("max-streams", |c| c.tenant_max_streams = Some(2)).await;
    let line = "{\"prediction\": 0.5, \"label\": 1}\n";
    for stream in ["a", "b"] {
        assert_ok(push(&app, ACME_KEY, stream, line).await).await;
    }
    let problem = assert_problem(push(&app, ACME_KEY, "c", line).await, 503).await;
    assert_eq!(problem["limit"], "tenant_max_streams", "{problem}");
    assert_detail_contains(&problem, "--tenant-max-streams");
    // More data into an existing stream is fine, and so is another tenant.
    assert_ok(push(&app, ACME_KEY, "a", line).await).await;
    assert_ok(push(&app, GLOBEX_KEY, "c", line).await).await;
    assert_eq!(listed(&app, ACME_KEY).await.len(), 2);
}

#[tokio::test]
async fn a_tenant_over_its_memory_budget_gets_a_503_naming_it_others_do_not() {
    let app = spawn_with_keys("memory", |c| c.tenant_memory_budget = Some(16 * 1024)).await;
    // 500 users cost at least 500 x 128 bytes of per-user overhead.
    let many: String = (0..500)
        .map(|u| format!("{{\"prediction\": 0.5, \"label\": 1, \"user_id\": \"u{u}\"}}\n"))
        .collect();
    let problem = assert_problem(push(&app, ACME_KEY, "big", &many).await, 503).await;
    assert_eq!(problem["limit"], "tenant_memory_budget", "{problem}");
    assert_detail_contains(&problem, "--tenant-memory-budget");
    assert!(
        listed(&app, ACME_KEY).await.is_empty(),
        "nothing was applied"
    );
    let one = "{\"prediction\": 0.5, \"label\": 1, \"user_id\": \"u\"}\n";
    assert_ok(push(&app, ACME_KEY, "small", one).await).await;
    assert_ok(push(&app, GLOBEX_KEY, "small", one).await).await;
}

#[tokio::test]
async fn without_keys_every_route_is_open_as_before() {
    let app = spawn_app().await;
    assert_ok(call(&app, Method::GET, "/streams", None).await).await;
    let metrics = call(&app, Method::GET, "/internal/metrics", Some(UNKNOWN_KEY)).await;
    assert_eq!(metrics.status(), 200);
    let pushed = app
        .push_ndjson("open", "{\"prediction\": 0.5, \"label\": 1}\n")
        .await;
    assert_eq!(assert_ok(pushed).await["stream"], "open");
    assert_eq!(app.streams().await[0]["name"], "open");
    let response = call(
        &app,
        Method::GET,
        "/streams/open/metrics",
        Some(UNKNOWN_KEY),
    )
    .await;
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn cors_is_off_by_default_and_answers_the_configured_origins() {
    let preflight = |app: &TestApp| {
        app.client
            .request(Method::OPTIONS, app.url("/streams"))
            .header("origin", "https://dash.example")
            .header("access-control-request-method", "GET")
            .header("access-control-request-headers", "authorization")
            .send()
    };
    let closed = spawn_with_keys("cors-off", |_| {}).await;
    let response = preflight(&closed).await.expect("request failed");
    assert!(response
        .headers()
        .get("access-control-allow-origin")
        .is_none());

    let open = spawn_with_keys("cors-on", |c| {
        c.cors_origins = vec!["https://dash.example".to_owned()];
    })
    .await;
    let response = preflight(&open).await.expect("request failed");
    assert_eq!(response.status(), 200, "a preflight needs no key");
    let allow_origin = "access-control-allow-origin";
    assert_eq!(header(&response, allow_origin), "https://dash.example");
    let allow_headers = header(&response, "access-control-allow-headers").to_lowercase();
    assert!(allow_headers.contains("authorization"), "{allow_headers}");
    // The 401 a script gets without a key is readable by it.
    let refused = get_from(&open, "/streams", "https://dash.example").await;
    assert_eq!(refused.status(), 401);
    assert_eq!(header(&refused, allow_origin), "https://dash.example");
    let other = get_from(&open, "/healthz", "https://evil.example").await;
    assert!(other.headers().get(allow_origin).is_none());
}

/// GET `path` without a key, as a script on a page at `origin` does.
async fn get_from(app: &TestApp, path: &str, origin: &str) -> reqwest::Response {
    app.client
        .get(app.url(path))
        .header("origin", origin)
        .send()
        .await
        .expect("request failed")
}

/// The value of header `name` of `response`, "" when absent.
fn header(response: &reqwest::Response, name: &str) -> String {
    let value = response.headers().get(name).map(|v| v.to_str());
    value.and_then(Result::ok).unwrap_or("").to_owned()
}
