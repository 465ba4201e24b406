//! A stream's summary (`GET /streams/{name}`) and its users, paged
//! (`GET /streams/{name}/users`).

use crate::helpers::{
    assert_detail_contains, assert_ok, assert_problem, spawn_app, spawn_app_with, TestApp,
};
use serde_json::{json, Value};

/// Seven users: `u0`..`u6`, user `i` with `i % 3 + 1` records (`u0` with one
/// class, the rest with AUC `(i % 4) / 4` or so, by construction below).
async fn seven_users(app: &TestApp, stream: &str) {
    let mut predictions = Vec::new();
    let mut labels = Vec::new();
    let mut users = Vec::new();
    // u0: one positive only (no AUC).
    predictions.push(0.5);
    labels.push(1);
    users.push("u0".to_owned());
    for i in 1..7u32 {
        // A positive at p and a negative at n: AUC 1 when p > n, 0 when
        // p < n, 0.5 on a tie; plus i % 3 extra negatives at 0.95 (above both).
        let (p, n) = match i % 3 {
            0 => (0.9, 0.1),
            1 => (0.1, 0.9),
            _ => (0.4, 0.4),
        };
        predictions.extend([p, n]);
        labels.extend([1, 0]);
        users.extend([format!("u{i}"), format!("u{i}")]);
        for _ in 0..i % 3 {
            predictions.push(0.95);
            labels.push(0);
            users.push(format!("u{i}"));
        }
    }
    let body = json!({"predictions": predictions, "labels": labels, "user_ids": users});
    assert_ok(app.post_batch(stream, &body).await).await;
}

/// Every user over all pages of `query` with `limit`, checking each page's size.
async fn all_pages(app: &TestApp, query: &str, limit: usize) -> Vec<Value> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..20 {
        let mut q = format!("limit={limit}&{query}");
        if let Some(c) = &cursor {
            q.push_str(&format!("&cursor={c}"));
        }
        let page = assert_ok(app.stream_users("s", &q).await).await;
        let users = page["users"].as_array().expect("users").clone();
        assert!(users.len() <= limit, "{page}");
        out.extend(users);
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return out,
        }
    }
    panic!("paging did not end");
}

fn ids(users: &[Value]) -> Vec<&str> {
    users.iter().filter_map(|u| u["user_id"].as_str()).collect()
}

#[tokio::test]
async fn the_summary_names_counts_times_and_exactness() {
    let app = spawn_app().await;
    seven_users(&app, "s").await;
    let info = assert_ok(app.stream_info("s").await).await;
    assert_eq!(info["name"], "s");
    // u0: 1; u1..u6: 2 each plus i % 3 extra negatives (1, 2, 0, 1, 2, 0).
    assert_eq!(info["count"], 1 + 6 * 2 + 6);
    assert_eq!(info["users"], 7);
    assert_eq!(info["exact"], true);
    assert_eq!(info["auc_error_bound"], 0.0);
    assert_eq!(info["created_at"], info["updated_at"], "{info}");
    assert!(info["created_at"]
        .as_str()
        .is_some_and(|t| t.ends_with('Z')));
    // The list shows the same summary.
    let listed = app.listed_stream("s").await.expect("listed");
    assert_eq!(
        (listed["count"].clone(), listed["users"].clone()),
        (info["count"].clone(), info["users"].clone())
    );
}

#[tokio::test]
async fn a_compacted_stream_is_not_exact_and_gives_its_bound() {
    let app = spawn_app_with(|c| c.max_scores_per_stream = 4).await;
    let predictions: Vec<f64> = (0..40).map(|i| f64::from(i) / 40.0).collect();
    let labels: Vec<u8> = (0..40).map(|i| u8::from(i % 3 == 0)).collect();
    let body = json!({"predictions": predictions, "labels": labels});
    assert_ok(app.post_batch("wide", &body).await).await;
    let info = assert_ok(app.stream_info("wide").await).await;
    let metrics = assert_ok(app.stream_metrics("wide", "").await).await;
    assert_eq!(info["exact"], false, "{info}");
    assert!(
        info["auc_error_bound"].as_f64().is_some_and(|b| b > 0.0),
        "{info}"
    );
    assert_eq!(info["auc_error_bound"], metrics["auc_error_bound"]);
}

#[tokio::test]
async fn users_page_by_id_by_default_and_every_user_once() {
    let app = spawn_app().await;
    seven_users(&app, "s").await;
    let first = assert_ok(app.stream_users("s", "").await).await;
    assert_eq!(first["stream"], "s");
    assert_eq!(first["order"], "user_id");
    assert_eq!(first["next_cursor"], Value::Null);
    assert_eq!(
        ids(first["users"].as_array().expect("users")),
        ["u0", "u1", "u2", "u3", "u4", "u5", "u6"]
    );
    // u0: one record, a positive, no AUC; u3: 2 records, AUC 1; u1: 3, AUC 0.
    let users = first["users"].as_array().expect("users");
    assert_eq!(
        users[0],
        json!({"user_id": "u0", "count": 1, "positives": 1, "auc": null})
    );
    assert_eq!(
        users[3],
        json!({"user_id": "u3", "count": 2, "positives": 1, "auc": 1.0})
    );
    assert_eq!(
        users[1],
        json!({"user_id": "u1", "count": 3, "positives": 1, "auc": 0.0})
    );
    for limit in [1, 2, 3, 7] {
        let paged = all_pages(&app, "", limit).await;
        assert_eq!(paged, *users, "limit {limit}");
    }
}

#[tokio::test]
async fn users_order_by_auc_worst_first_or_by_impressions() {
    let app = spawn_app().await;
    seven_users(&app, "s").await;
    // AUC: u1, u4 (0), u2, u5 (1/6), u3, u6 (1), then u0 (none); ties by id.
    let by_auc = all_pages(&app, "order=auc", 2).await;
    assert_eq!(ids(&by_auc), ["u1", "u4", "u2", "u5", "u3", "u6", "u0"]);
    // Records: u2, u5 (4), u1, u4 (3), u3, u6 (2), u0 (1).
    let by_count = all_pages(&app, "order=impressions", 3).await;
    assert_eq!(ids(&by_count), ["u2", "u5", "u1", "u4", "u3", "u6", "u0"]);
}

#[tokio::test]
async fn bad_paging_parameters_are_problems_naming_the_parameter() {
    let app = spawn_app_with(|c| c.max_users_page = 5).await;
    seven_users(&app, "s").await;
    let page = assert_ok(app.stream_users("s", "limit=2&order=auc").await).await;
    let auc_cursor = page["next_cursor"]
        .as_str()
        .expect("a next page")
        .to_owned();
    let cases = [
        ("limit=0", "limit"),
        ("limit=6", "limit"),
        ("limit=-1", "limit"),
        ("limit=two", "limit"),
        ("order=best", "order"),
        ("cursor=zz", "cursor"),
        ("cursor=", "cursor"),
    ];
    for (query, field) in cases {
        let problem = assert_problem(app.stream_users("s", query).await, 422).await;
        assert_eq!(problem["field"], field, "{query}: {problem}");
    }
    // An unknown parameter is named in the detail (as on every query route).
    let problem = assert_problem(app.stream_users("s", "page=2").await, 422).await;
    assert_detail_contains(&problem, "page");
    // A cursor of one order is refused for another.
    let problem = assert_problem(
        app.stream_users("s", &format!("cursor={auc_cursor}")).await,
        422,
    )
    .await;
    assert_eq!(problem["field"], "cursor", "{problem}");
    assert_detail_contains(&problem, "order=auc");
    // The configured maximum is allowed, and is the default when below 100.
    assert_ok(app.stream_users("s", "limit=5").await).await;
    let default = assert_ok(app.stream_users("s", "").await).await;
    assert_eq!(default["users"].as_array().map(Vec::len), Some(5));
}

#[tokio::test]
async fn an_unknown_stream_is_404_on_both_routes() {
    let app = spawn_app().await;
    for response in [
        app.stream_info("nope").await,
        app.stream_users("nope", "").await,
    ] {
        let problem = assert_problem(response, 404).await;
        assert_detail_contains(&problem, "unknown stream 'nope'");
    }
}

#[tokio::test]
async fn tenants_see_only_their_own_stream_and_users() {
    let path = std::env::temp_dir().join(format!("evald-keys-summary-{}", std::process::id()));
    std::fs::write(
        &path,
        "acme-key-0123456789abcdef acme read,write\nglobex-key-0123456789abcdef globex read,write\n",
    )
    .expect("write the key file");
    let app = spawn_app_with(|c| c.api_keys_file = Some(path)).await;
    let get = |key: &'static str, path: &'static str| {
        app.client.get(app.url(path)).bearer_auth(key).send()
    };
    let body = json!({"predictions": [0.9, 0.1], "labels": [1, 0], "user_ids": ["a", "a"]});
    let pushed = app
        .client
        .post(app.url("/streams/shared"))
        .bearer_auth("acme-key-0123456789abcdef")
        .json(&body)
        .send()
        .await
        .expect("request failed");
    assert_ok(pushed).await;
    for path in ["/streams/shared", "/streams/shared/users"] {
        let theirs = get("globex-key-0123456789abcdef", path)
            .await
            .expect("request failed");
        let problem = assert_problem(theirs, 404).await;
        assert!(!problem.to_string().contains("acme"), "{problem}");
    }
    let info = assert_ok(
        get("acme-key-0123456789abcdef", "/streams/shared")
            .await
            .expect("request failed"),
    )
    .await;
    assert_eq!(
        (info["name"].as_str(), info["count"].as_u64()),
        (Some("shared"), Some(2))
    );
    let users = assert_ok(
        get("acme-key-0123456789abcdef", "/streams/shared/users")
            .await
            .expect("request failed"),
    )
    .await;
    assert_eq!(users["stream"], "shared");
    assert_eq!(ids(users["users"].as_array().expect("users")), ["a"]);
}
