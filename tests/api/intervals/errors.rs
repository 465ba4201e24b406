//! Bad options of intervals, ranking and comparison: each a problem+json
//! naming the field, and nothing changes.

use serde_json::json;

use crate::helpers::{assert_ok, assert_problem, spawn_app, spawn_app_with};

fn binary() -> serde_json::Value {
    json!({
        "predictions": [0.9, 0.2, 0.6, 0.4],
        "labels": [1, 0, 1, 0],
        "user_ids": ["a", "a", "b", "b"],
    })
}

#[tokio::test]
async fn ranking_without_user_ids_names_ranking() {
    let app = spawn_app().await;
    let mut body = binary();
    body.as_object_mut().map(|o| o.remove("user_ids"));
    body["ranking"] = json!({"k": [1, 2]});
    let problem = assert_problem(app.post_metrics(&body).await, 422).await;
    assert_eq!(problem["field"], "ranking", "{problem}");
}

#[tokio::test]
async fn bad_cutoffs_name_ranking_k() {
    let app = spawn_app_with(|c| c.max_ranking_cutoffs = 3).await;
    for (k, why) in [
        (json!([]), "empty"),
        (json!([0, 1]), "zero"),
        (json!([2, 2]), "repeated"),
        (json!([1, 2, 3, 4]), "over the configured count"),
    ] {
        let mut body = binary();
        body["ranking"] = json!({"k": k});
        let problem = assert_problem(app.post_metrics(&body).await, 422).await;
        assert_eq!(problem["field"], "ranking.k", "{why}: {problem}");
    }
    let mut body = binary();
    body["ranking"] = json!({"k": [-1]});
    let problem = assert_problem(app.post_metrics(&body).await, 422).await;
    assert!(
        problem["field"]
            .as_str()
            .unwrap_or("")
            .starts_with("ranking.k"),
        "{problem}"
    );
}

#[tokio::test]
async fn confidence_outside_zero_one_names_confidence_everywhere() {
    let app = spawn_app().await;
    assert_ok(app.post_batch("conf", &binary()).await).await;
    for level in [0.0, 1.0, -0.5, 1.5] {
        let mut body = binary();
        body["confidence"] = json!(level);
        let problem = assert_problem(app.post_metrics(&body).await, 422).await;
        assert_eq!(problem["field"], "confidence", "{level}: {problem}");

        let compare = json!({
            "labels": [1, 0, 1, 0],
            "predictions_a": [0.9, 0.2, 0.6, 0.4],
            "predictions_b": [0.8, 0.3, 0.5, 0.6],
            "confidence": level,
        });
        let problem = assert_problem(app.post_json("/metrics/compare", &compare).await, 422).await;
        assert_eq!(problem["field"], "confidence", "{level}: {problem}");

        let problem = assert_problem(
            app.stream_metrics("conf", &format!("confidence={level}"))
                .await,
            422,
        )
        .await;
        assert_eq!(problem["field"], "confidence", "{level}: {problem}");
        let problem = assert_problem(
            app.get(&format!("/streams/conf/compare/conf?confidence={level}"))
                .await,
            422,
        )
        .await;
        assert_eq!(problem["field"], "confidence", "{level}: {problem}");
    }
}

#[tokio::test]
async fn ranking_asked_of_a_stream_is_a_400_naming_it() {
    let app = spawn_app().await;
    assert_ok(app.post_batch("rank", &binary()).await).await;
    let problem = assert_problem(app.stream_metrics("rank", "ranking=1,5").await, 400).await;
    assert_eq!(problem["field"], "ranking", "{problem}");
    let problem = assert_problem(app.user_metrics("rank", "a", "ranking=3").await, 400).await;
    assert_eq!(problem["field"], "ranking", "{problem}");
}

#[tokio::test]
async fn comparing_with_an_unknown_stream_is_a_404() {
    let app = spawn_app().await;
    assert_ok(app.post_batch("known", &binary()).await).await;
    for path in ["/streams/known/compare/nope", "/streams/nope/compare/known"] {
        let problem = assert_problem(app.get(path).await, 404).await;
        assert!(
            problem["detail"].as_str().unwrap_or("").contains("nope"),
            "{problem}"
        );
    }
}

#[tokio::test]
async fn compare_checks_lengths_against_predictions_a() {
    let app = spawn_app().await;
    let body = json!({
        "labels": [1, 0, 1],
        "predictions_a": [0.9, 0.2, 0.6, 0.4],
        "predictions_b": [0.8, 0.3, 0.5, 0.6],
    });
    let problem = assert_problem(app.post_json("/metrics/compare", &body).await, 422).await;
    assert_eq!(problem["field"], "labels", "{problem}");
    let body = json!({
        "labels": [1, 0, 1, 0],
        "predictions_a": [0.9, 0.2, 0.6, 0.4],
        "predictions_b": [0.8, 0.3, 0.5],
    });
    let problem = assert_problem(app.post_json("/metrics/compare", &body).await, 422).await;
    assert_eq!(problem["field"], "predictions_b", "{problem}");
}
