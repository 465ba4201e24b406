//! `POST /metrics/compare` beyond the pROC fixtures: the user-paired GAUC
//! test against a direct computation, and what weights withhold.

use serde_json::{json, Value};

use crate::helpers::{assert_ok, assert_problem, spawn_app};

/// AUC of one user by the pairwise definition (ties one half).
fn pairwise_auc(scores: &[f64], labels: &[u8]) -> Option<f64> {
    let (mut wins, mut pairs) = (0.0, 0.0);
    for (i, &x) in scores.iter().enumerate() {
        for (j, &y) in scores.iter().enumerate() {
            if labels[i] == 1 && labels[j] == 0 {
                pairs += 1.0;
                wins += if x > y {
                    1.0
                } else if x == y {
                    0.5
                } else {
                    0.0
                };
            }
        }
    }
    (pairs > 0.0).then(|| wins / pairs)
}

#[tokio::test]
async fn gauc_diff_is_the_weighted_mean_of_per_user_differences_with_its_robust_error() {
    let app = spawn_app().await;
    let labels: Vec<u8> = vec![1, 0, 1, 0, 0, 1, 0, 1, 1, 0, 0, 1, 0, 1, 0, 0, 1, 1];
    let a: Vec<f64> = vec![
        0.9, 0.4, 0.3, 0.5, 0.2, 0.8, 0.6, 0.7, 0.1, 0.35, 0.5, 0.5, 0.9, 0.95, 0.2, 0.3, 0.4, 0.6,
    ];
    let b: Vec<f64> = vec![
        0.7, 0.2, 0.6, 0.3, 0.4, 0.9, 0.1, 0.3, 0.5, 0.45, 0.2, 0.8, 0.7, 0.85, 0.6, 0.1, 0.9, 0.2,
    ];
    let users: Vec<&str> = vec![
        "p", "p", "p", "p", "q", "q", "q", "r", "r", "r", "r", "s", "s", "s", "t", "t", "t", "t",
    ];
    let answer = assert_ok(
        app.post_json(
            "/metrics/compare",
            &json!({"labels": labels, "predictions_a": a, "predictions_b": b, "user_ids": users,
                    "gauc_weighting": "impressions", "confidence": 0.8}),
        )
        .await,
    )
    .await;
    // the direct computation: per-user AUCs, impressions weights
    let (mut w_sum, mut wd_sum, mut per_user) = (0.0, 0.0, Vec::new());
    for user in ["p", "q", "r", "s", "t"] {
        let idx: Vec<usize> = (0..users.len()).filter(|&i| users[i] == user).collect();
        let l: Vec<u8> = idx.iter().map(|&i| labels[i]).collect();
        let pick = |v: &[f64]| idx.iter().map(|&i| v[i]).collect::<Vec<f64>>();
        if let (Some(x), Some(y)) = (pairwise_auc(&pick(&a), &l), pairwise_auc(&pick(&b), &l)) {
            let w = idx.len() as f64;
            w_sum += w;
            wd_sum += w * (y - x);
            per_user.push((w, y - x));
        }
    }
    let mean = wd_sum / w_sum;
    let u = per_user.len() as f64;
    let spread: f64 = per_user
        .iter()
        .map(|(w, d)| w * w * (d - mean).powi(2))
        .sum();
    let se = (u / (u - 1.0) * spread).sqrt() / w_sum;
    let diff = &answer["gauc_diff"];
    let got = |k: &str| diff[k].as_f64().unwrap_or(f64::NAN);
    // epsilon 1e-12: the same sums in another order
    assert!((got("value") - mean).abs() < 1e-12, "{diff} vs {mean}");
    assert!((got("std_error") - se).abs() < 1e-12, "{diff} vs {se}");
    assert!((got("z") - mean / se).abs() < 1e-9, "{diff}");
    let z80 = 1.2815515655446008; // R 4.2.2: qnorm(0.9)
    assert!((got("lower") - (mean - z80 * se)).abs() < 1e-12, "{diff}");
    assert_eq!(diff["users"], json!(per_user.len()));
    assert_eq!(diff["method"], "user-paired");
    let gauc = |side: &str| answer[side]["gauc"]["value"].as_f64().unwrap_or(f64::NAN);
    assert!((got("value") - (gauc("b") - gauc("a"))).abs() < 1e-12);
}

#[tokio::test]
async fn sample_weights_leave_only_the_auc_difference() {
    let app = spawn_app().await;
    let answer = assert_ok(
        app.post_json(
            "/metrics/compare",
            &json!({
                "labels": [1, 0, 1, 0, 1, 0],
                "predictions_a": [0.9, 0.4, 0.7, 0.3, 0.35, 0.5],
                "predictions_b": [0.8, 0.3, 0.75, 0.1, 0.6, 0.45],
                "sample_weights": [1.0, 2.0, 1.0, 0.5, 1.0, 1.0],
            }),
        )
        .await,
    )
    .await;
    let diff = &answer["auc_diff"];
    assert!(diff["value"].as_f64().is_some(), "{answer}");
    for field in ["std_error", "lower", "upper", "z", "p_value"] {
        assert_eq!(diff[field], Value::Null, "{field}: {answer}");
    }
    assert!(
        answer["warnings"].to_string().contains("sample weights"),
        "{answer}"
    );
    assert_eq!(answer["a"]["auc_ci"], Value::Null);
    assert!(answer["a"]["warnings"]
        .to_string()
        .contains("auc_ci is undefined"));
    assert_eq!(answer["gauc_diff"], Value::Null);
}

#[tokio::test]
async fn records_of_weight_zero_are_left_out_of_the_paired_test() {
    let app = spawn_app().await;
    let labels = [1, 0, 1, 0, 1, 0, 0, 1, 1, 0];
    let a = [0.9, 0.4, 0.7, 0.3, 0.35, 0.5, 0.2, 0.8, 0.6, 0.1];
    let b = [0.8, 0.3, 0.75, 0.1, 0.6, 0.45, 0.25, 0.9, 0.4, 0.2];
    let weights = [1.0, 1.0, 0.0, 1.0, 1.0, 0.0, 1.0, 1.0, 1.0, 1.0];
    let weighted = assert_ok(
        app.post_json(
            "/metrics/compare",
            &json!({"labels": labels, "predictions_a": a, "predictions_b": b, "sample_weights": weights}),
        )
        .await,
    )
    .await;
    let kept: Vec<usize> = (0..labels.len()).filter(|&i| weights[i] == 1.0).collect();
    let pick = |v: &[f64]| kept.iter().map(|&i| v[i]).collect::<Vec<f64>>();
    let filtered = assert_ok(
        app.post_json(
            "/metrics/compare",
            &json!({
                "labels": kept.iter().map(|&i| labels[i]).collect::<Vec<_>>(),
                "predictions_a": pick(&a),
                "predictions_b": pick(&b),
            }),
        )
        .await,
    )
    .await;
    assert_eq!(weighted["auc_diff"], filtered["auc_diff"]);
    assert!(weighted["auc_diff"]["z"].as_f64().is_some(), "{weighted}");
    assert_eq!(weighted["a"]["auc_ci"], filtered["a"]["auc_ci"]);
}

#[tokio::test]
async fn each_side_is_the_metrics_answer_of_its_model_with_the_same_options() {
    let app = spawn_app().await;
    let labels = [1, 0, 1, 0, 1, 0, 0, 1, 1, 0, 1, 0];
    let a = [
        0.9, 0.4, 0.7, 0.3, 0.35, 0.5, 0.2, 0.8, 0.6, 0.1, 0.55, 0.45,
    ];
    let b = [
        0.8, 0.3, 0.75, 0.1, 0.6, 0.45, 0.25, 0.9, 0.4, 0.2, 0.65, 0.5,
    ];
    let users = ["p", "p", "p", "q", "q", "q", "r", "r", "r", "s", "s", "s"];
    let options = json!({
        "user_ids": users, "threshold": 0.42, "beta": 2.0, "confidence": 0.9,
        "gauc_weighting": "clicks", "pr": {"max_points": 4, "drop_intermediate": true},
        "calibration": {"n_bins": 3, "strategy": "quantile"}, "thresholds": [0.3, 0.7],
        "tpr_at_fpr": [0.1, 0.5], "max_fpr": 0.4
    });
    let with = |extra: Value| {
        let mut body = options.clone();
        if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
            body.extend(extra.clone());
        }
        body
    };
    let answer = assert_ok(
        app.post_json(
            "/metrics/compare",
            &with(json!({"labels": labels, "predictions_a": a, "predictions_b": b})),
        )
        .await,
    )
    .await;
    for (side, scores) in [("a", a), ("b", b)] {
        let alone = assert_ok(
            app.post_metrics(&with(json!({"labels": labels, "predictions": scores})))
                .await,
        )
        .await;
        assert_eq!(answer[side], alone, "side {side}");
    }
    for field in ["partial_auc", "average_precision", "log_loss"] {
        assert!(answer["a"][field].as_f64().is_some(), "{field}: {answer}");
    }
    assert_eq!(answer["b"]["at_thresholds"][1]["threshold"], 0.7);
    assert_eq!(answer["b"]["tpr_at_fpr"][0]["fpr"], 0.1);
}

#[tokio::test]
async fn a_bad_extended_option_is_refused_naming_it_as_post_metrics_does() {
    let app = spawn_app().await;
    let records = json!({"labels": [1, 0, 1, 0], "predictions_a": [0.9, 0.2, 0.6, 0.4],
                         "predictions_b": [0.8, 0.3, 0.7, 0.1]});
    for (option, value, field) in [
        ("max_fpr", json!(0.0), "max_fpr"),
        ("tpr_at_fpr", json!([0.1, 1.5]), "tpr_at_fpr"),
        ("calibration", json!({"n_bins": 0}), "calibration.n_bins"),
    ] {
        let mut body = records.clone();
        body[option] = value.clone();
        let problem = assert_problem(app.post_json("/metrics/compare", &body).await, 422).await;
        let mut alone = json!({"labels": [1, 0, 1, 0], "predictions": [0.9, 0.2, 0.6, 0.4]});
        alone[option] = value;
        let expected = assert_problem(app.post_metrics(&alone).await, 422).await;
        assert_eq!(problem["field"], field, "{problem}");
        assert_eq!(problem["detail"], expected["detail"], "{problem}");
    }
}
