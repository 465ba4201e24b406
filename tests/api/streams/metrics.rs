//! Stream metrics equal `POST /metrics` over the concatenation of the batches
//! (epsilon 1e-12: only the order of floating-point weight sums differs).

use crate::helpers::{
    assert_matches_one_shot, assert_ok, assert_problem, spawn_app, spawn_app_with, TestApp,
};
use proptest::prelude::*;
use serde_json::{json, Value};

#[derive(Debug, Clone)]
struct Rec {
    score: f64,
    label: u8,
    user: u8,
    weight: f64,
}

fn records() -> impl Strategy<Value = Vec<Rec>> {
    prop::collection::vec(
        (
            0u8..20,
            0u8..2,
            0u8..6,
            prop_oneof![Just(1.0), Just(0.0), 0.25f64..4.0],
        ),
        1..80,
    )
    .prop_map(|v| {
        v.into_iter()
            .map(|(s, label, user, weight)| Rec {
                score: f64::from(s) / 20.0,
                label,
                user,
                weight,
            })
            .collect()
    })
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

fn ndjson(recs: &[Rec], weighted: bool) -> String {
    recs.iter()
        .map(|r| {
            let mut line =
                json!({"prediction": r.score, "label": r.label, "user_id": format!("u{}", r.user)});
            if weighted {
                line["weight"] = json!(r.weight);
            }
            format!("{line}\n")
        })
        .collect()
}

/// `POST /metrics` over `body`: the one-shot answer a stream is held to.
async fn one_shot(app: &TestApp, body: &Value) -> Value {
    assert_ok(app.post_metrics(body).await).await
}

/// Each weighted confusion count of `got` is within `bound` of `want`'s.
fn assert_confusion_within(got: &Value, want: &Value, bound: f64, context: &str) {
    for cell in ["tp", "fp", "tn", "fn"] {
        let g = got["confusion"][cell].as_f64().unwrap_or(f64::NAN);
        let w = want["confusion"][cell].as_f64().unwrap_or(f64::NAN);
        assert!(
            (g - w).abs() <= bound,
            "{context}: {cell} {g} vs exact {w}, bound {bound}"
        );
    }
}

/// The stream query and the matching one-shot parameters.
///
/// With real weights the curve is compared without `drop_intermediate`:
/// `POST /metrics` sums weights record by record in scikit-learn's order, so
/// its collinearity test sees numpy's rounding, while a stream keeps only
/// per-score sums (the record order is gone) and may keep or drop a
/// collinear point differently (README, Streams). Every point of the full
/// curve still agrees to 1e-12, and unit weights (counts) agree exactly.
fn query(weighted: bool) -> String {
    format!(
        "threshold=0.4&beta=2&max_points=5&gauc_weighting=clicks&drop_intermediate={}&{BEYOND_QUERY}",
        !weighted
    )
}

fn one_shot_params(body: &mut Value, weighted: bool) {
    body["threshold"] = json!(0.4);
    body["beta"] = json!(2.0);
    body["roc"] = json!({"max_points": 5, "drop_intermediate": !weighted});
    body["gauc_weighting"] = json!("clicks");
    body["thresholds"] = json!([0.1, 0.5, 0.9, 2.0]);
    body["tpr_at_fpr"] = json!([0.0, 0.2, 1.0]);
    body["max_fpr"] = json!(0.3);
    body["calibration"] = json!({"n_bins": 4, "strategy": "quantile"});
    body["pr"] = json!({"max_points": 5});
}

/// Every option of the extended evaluation, as [`one_shot_params`] sets them.
const BEYOND_QUERY: &str =
    "thresholds=0.1,0.5,0.9,2&tpr_at_fpr=0,0.2,1&max_fpr=0.3&n_bins=4&strategy=quantile&pr_max_points=5";

#[test]
fn stream_metrics_equal_one_shot_metrics_over_any_split_into_batches() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let app = rt.block_on(spawn_app());
    let config = ProptestConfig {
        cases: 40,
        ..ProptestConfig::default()
    };
    let case = std::sync::atomic::AtomicU32::new(0);
    proptest!(config, |(recs in records(), cuts in prop::collection::vec(0usize..80, 0..4), weighted in any::<bool>())| {
        let n = case.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let name = format!("prop{n}");
        rt.block_on(async {
            let mut bounds: Vec<usize> = cuts.iter().map(|c| c % (recs.len() + 1)).collect();
            bounds.push(0);
            bounds.push(recs.len());
            bounds.sort_unstable();
            for (i, w) in bounds.windows(2).enumerate() {
                let part = recs.get(w[0]..w[1]).unwrap_or_default();
                let resp = if i % 2 == 0 {
                    app.post_batch(&name, &batch_json(part, weighted)).await
                } else {
                    app.push_ndjson(&name, ndjson(part, weighted)).await
                };
                if part.is_empty() {
                    // A batch without records is refused and changes nothing.
                    assert_eq!(resp.status().as_u16(), 422);
                    continue;
                }
                assert_eq!(resp.status().as_u16(), 200);
            }
            let stream = assert_ok(app.stream_metrics(&name, &query(weighted)).await).await;
            let mut whole = batch_json(&recs, weighted);
            one_shot_params(&mut whole, weighted);
            let whole_answer = one_shot(&app, &whole).await;
            assert_matches_one_shot(&stream, &whole_answer, "");
            assert_eq!(stream["stream"], name.as_str());
            assert_eq!(stream["auc_error_bound"], 0.0);
            assert_eq!(stream["confusion_error_bound"], 0.0);

            // one user of the stream equals the one-shot metrics of its records
            let user = recs[0].user;
            let mine: Vec<Rec> = recs.iter().filter(|r| r.user == user).cloned().collect();
            let per_user = assert_ok(app.user_metrics(&name, &format!("u{user}"), &query(weighted)).await).await;
            let mut body = batch_json(&mine, weighted);
            body.as_object_mut().map(|o| o.remove("user_ids"));
            one_shot_params(&mut body, weighted);
            let exact = one_shot(&app, &body).await;
            assert_matches_one_shot(&per_user, &exact, "user");
            assert_eq!(per_user["user_id"], format!("u{user}"));
        });
    });
}

/// A server with tight score budgets and a stream `name` of 400 records (5
/// users, 200 distinct scores) sent in 4 batches, so it has been compacted.
async fn spawn_with_compacted_stream(name: &str) -> (TestApp, Vec<Rec>) {
    let app = spawn_app_with(|c| {
        c.max_scores_per_stream = 16;
        c.max_scores_per_user = 4;
    })
    .await;
    let recs: Vec<Rec> = (0..400)
        .map(|i| Rec {
            score: f64::from((i * 37) % 200) / 200.0,
            label: u8::from((i * 37) % 200 > 80 + (i % 7) * 10),
            user: (i % 5) as u8,
            weight: 1.0,
        })
        .collect();
    for part in recs.chunks(100) {
        let resp = app.post_batch(name, &batch_json(part, false)).await;
        assert_eq!(resp.status().as_u16(), 200);
    }
    (app, recs)
}

#[tokio::test]
async fn a_compacted_stream_reports_a_bound_that_holds() {
    let (app, recs) = spawn_with_compacted_stream("big").await;
    let stream = assert_ok(app.stream_metrics("big", "").await).await;
    let exact = one_shot(&app, &batch_json(&recs, false)).await;
    let bound = stream["auc_error_bound"].as_f64().unwrap_or(-1.0);
    assert!(bound > 0.0 && bound < 0.1, "bound {bound}");
    let error =
        (stream["auc"].as_f64().unwrap_or(9.0) - exact["auc"].as_f64().unwrap_or(0.0)).abs();
    assert!(error <= bound, "auc error {error} over bound {bound}");
    let gauc_bound = stream["gauc_error_bound"].as_f64().unwrap_or(-1.0);
    let gauc_error = (stream["gauc"]["value"].as_f64().unwrap_or(9.0)
        - exact["gauc"]["value"].as_f64().unwrap_or(0.0))
    .abs();
    assert!(
        gauc_bound > 0.0 && gauc_error <= gauc_bound,
        "gauc error {gauc_error} over bound {gauc_bound}"
    );
    assert!(
        stream["warnings"].to_string().contains("auc_error_bound"),
        "{stream}"
    );
    // plain counts stay exact whatever the compaction
    assert_eq!(stream["count"], 400);
    assert_eq!(stream["positives"], exact["positives"]);
}

#[tokio::test]
async fn confusion_counts_of_a_compacted_stream_stay_within_the_reported_bound() {
    let (app, recs) = spawn_with_compacted_stream("cb").await;
    let (mut straddled, mut exact_edges) = (0, 0);
    // Thresholds on the score grid (k / 200) and between its points.
    for k in 0..=80 {
        let threshold = f64::from(k) / 80.0;
        let query = format!("threshold={threshold}");
        let stream = assert_ok(app.stream_metrics("cb", &query).await).await;
        let mut body = batch_json(&recs, false);
        body["threshold"] = json!(threshold);
        let exact = one_shot(&app, &body).await;
        let bound = stream["confusion_error_bound"].as_f64().unwrap_or(-1.0);
        assert!(bound >= 0.0, "threshold {threshold}: {stream}");
        assert_confusion_within(&stream, &exact, bound, &format!("threshold {threshold}"));
        if bound > 0.0 {
            straddled += 1;
            assert!(
                stream["warnings"]
                    .to_string()
                    .contains("confusion_error_bound"),
                "{stream}"
            );
        } else {
            exact_edges += 1;
            assert_eq!(
                stream["confusion"], exact["confusion"],
                "threshold {threshold}"
            );
        }
    }
    assert!(
        straddled > 0 && exact_edges > 0,
        "{straddled} straddling, {exact_edges} exact"
    );

    // The per-user answer carries its own bound (users have 4 scores at most).
    let user = assert_ok(app.user_metrics("cb", "u1", "threshold=0.5").await).await;
    let mine: Vec<Rec> = recs.iter().filter(|r| r.user == 1).cloned().collect();
    let mut body = batch_json(&mine, false);
    body.as_object_mut().map(|o| o.remove("user_ids"));
    let exact = one_shot(&app, &body).await;
    let bound = user["confusion_error_bound"].as_f64().unwrap_or(-1.0);
    assert_confusion_within(&user, &exact, bound, "user");
}

#[tokio::test]
async fn bad_queries_and_unknown_names_are_refused() {
    let app = spawn_app().await;
    app.post_batch(
        "q",
        &json!({"predictions": [0.3, 0.6], "labels": [0, 1], "user_ids": ["a", "a"]}),
    )
    .await;
    let cases = [
        ("/streams/q/metrics?threshold=abc", 422, "threshold"),
        ("/streams/q/metrics?beta=0", 422, "beta"),
        ("/streams/q/metrics?max_points=1", 422, "max_points"),
        (
            "/streams/q/metrics?gauc_weighting=views",
            422,
            "gauc_weighting",
        ),
        ("/streams/q/metrics?colour=red", 422, "query"),
        ("/streams/nope/metrics", 404, ""),
        ("/streams/q/users/zed/metrics", 404, ""),
    ];
    for (path, status, field) in cases {
        let problem = assert_problem(app.get(path).await, status).await;
        if !field.is_empty() {
            assert!(
                problem["field"].as_str().unwrap_or("").contains(field)
                    || problem["detail"].as_str().unwrap_or("").contains(field),
                "{path}: {problem}"
            );
        }
    }
    let full = assert_ok(
        app.stream_metrics("q", "max_points=null&drop_intermediate=false")
            .await,
    )
    .await;
    assert_eq!(
        full["roc"]["fpr"].as_array().map(Vec::len),
        Some(3),
        "{full}"
    );
}

#[tokio::test]
async fn a_compacted_stream_gives_null_extended_fields_with_a_warning() {
    let (app, _) = spawn_with_compacted_stream("big").await;
    let stream = assert_ok(
        app.stream_metrics("big", "thresholds=0.5&tpr_at_fpr=0.1&max_fpr=0.2")
            .await,
    )
    .await;
    for field in [
        "average_precision",
        "pr_curve",
        "log_loss",
        "brier_score",
        "calibration",
        "calibration_ratio",
        "normalized_entropy",
        "mcc",
        "balanced_accuracy",
        "specificity",
        "npv",
        "cohen_kappa",
        "best_threshold",
        "at_thresholds",
        "tpr_at_fpr",
        "partial_auc",
    ] {
        assert!(stream[field].is_null(), "{field}: {}", stream[field]);
        assert!(stream.get(field).is_some(), "{field} missing");
    }
    assert!(
        stream["warnings"]
            .to_string()
            .contains("no certified error bound"),
        "{stream}"
    );
}

#[tokio::test]
async fn bad_extended_query_parameters_are_refused_naming_them() {
    let app = spawn_app_with(|c| c.max_thresholds = 3).await;
    let body = json!({"predictions": [0.1, 0.9], "labels": [0, 1]});
    assert_ok(app.post_batch("q", &body).await).await;
    for (query, field) in [
        ("thresholds=0.1,0.2,0.3,0.4", "thresholds"),
        ("thresholds=0.1,abc", "thresholds[1]"),
        ("tpr_at_fpr=1.5", "tpr_at_fpr"),
        ("max_fpr=0", "max_fpr"),
        ("max_fpr=1.5", "max_fpr"),
        ("n_bins=0", "n_bins"),
        ("n_bins=-1", "n_bins"),
        ("strategy=median", "strategy"),
        ("pr_max_points=1", "pr_max_points"),
    ] {
        let problem = assert_problem(app.stream_metrics("q", query).await, 422).await;
        assert_eq!(problem["field"], field, "{query}: {problem}");
        let problem = assert_problem(app.user_metrics("q", "u", query).await, 422).await;
        assert_eq!(problem["field"], field, "{query} (user route): {problem}");
    }
}

#[tokio::test]
async fn a_batch_may_carry_the_extended_options_of_post_metrics() {
    let app = spawn_app().await;
    let body = json!({
        "predictions": [0.1, 0.9], "labels": [0, 1],
        "pr": {"max_points": 10}, "calibration": {"n_bins": 3}, "thresholds": [0.5],
        "tpr_at_fpr": [0.1], "max_fpr": 0.5
    });
    assert_ok(app.post_batch("opts", &body).await).await;
    let line = json!({"predictions": [0.2], "labels": [1], "thresholds": [0.5]});
    assert_ok(app.push_ndjson("opts", format!("{line}\n")).await).await;
    let stream = assert_ok(app.stream_metrics("opts", "").await).await;
    assert_eq!(stream["count"], 3);
}
