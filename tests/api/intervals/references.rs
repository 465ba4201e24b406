//! Against the committed references: R's pROC for DeLong
//! (`tests/fixtures/proc_delong_cases.json`, `scripts/gen_proc_fixtures.R`)
//! and scikit-learn's `ndcg_score` (`tests/fixtures/ranking_ndcg_cases.json`,
//! `scripts/gen_ranking_fixtures.py`). Tolerance 1e-9 (absolute for values
//! of order 1, relative for variances and p-values).

use serde_json::{json, Value};

use crate::helpers::{assert_ok, fixture, spawn_app, Tolerance};

const EPS: f64 = 1e-9;

fn num(v: &Value, what: &str) -> f64 {
    v.as_f64()
        .unwrap_or_else(|| panic!("{what} is a number: {v}"))
}

fn check(what: &str, ours: &Value, expected: f64, tolerance: Tolerance) {
    let ours = num(ours, what);
    assert!(
        tolerance.accepts(ours, expected),
        "{what}: {ours:e} vs pROC {expected:e}"
    );
}

#[tokio::test]
async fn auc_ci_equals_proc_ci_auc_delong() {
    let app = spawn_app().await;
    let doc = fixture("proc_delong_cases.json");
    for case in doc["ci"].as_array().expect("ci cases") {
        let name = case["name"].as_str().unwrap_or("?");
        let body = json!({
            "predictions": case["predictions"],
            "labels": case["labels"],
            "confidence": case["confidence"],
        });
        let answer = assert_ok(app.post_metrics(&body).await).await;
        let ci = &answer["auc_ci"];
        check(
            &format!("{name}: auc"),
            &answer["auc"],
            num(&case["auc"], "auc"),
            Tolerance::Absolute(EPS),
        );
        let se = num(&ci["std_error"], "std_error");
        check(
            &format!("{name}: variance"),
            &json!(se * se),
            num(&case["variance"], "variance"),
            Tolerance::Relative(EPS),
        );
        check(
            &format!("{name}: lower"),
            &ci["lower"],
            num(&case["lower"], "lower"),
            Tolerance::Absolute(EPS),
        );
        check(
            &format!("{name}: upper"),
            &ci["upper"],
            num(&case["upper"], "upper"),
            Tolerance::Absolute(EPS),
        );
        assert_eq!(ci["level"], case["confidence"], "{name}");
        assert_eq!(ci["method"], "delong", "{name}");
    }
}

#[tokio::test]
async fn paired_comparison_equals_proc_roc_test_paired() {
    let app = spawn_app().await;
    let doc = fixture("proc_delong_cases.json");
    for case in doc["paired"].as_array().expect("paired cases") {
        let name = case["name"].as_str().unwrap_or("?");
        let body = json!({
            "labels": case["labels"],
            "predictions_a": case["predictions_a"],
            "predictions_b": case["predictions_b"],
            "confidence": case["confidence"],
        });
        let answer = assert_ok(app.post_json("/metrics/compare", &body).await).await;
        let diff = &answer["auc_diff"];
        let (auc_a, auc_b) = (num(&case["auc_a"], "auc_a"), num(&case["auc_b"], "auc_b"));
        check(
            &format!("{name}: a.auc"),
            &answer["a"]["auc"],
            auc_a,
            Tolerance::Absolute(EPS),
        );
        check(
            &format!("{name}: b.auc"),
            &answer["b"]["auc"],
            auc_b,
            Tolerance::Absolute(EPS),
        );
        check(
            &format!("{name}: value"),
            &diff["value"],
            auc_b - auc_a,
            Tolerance::Absolute(EPS),
        );
        // pROC reports a - b; here every signed field is b - a
        check(
            &format!("{name}: z"),
            &diff["z"],
            -num(&case["statistic"], "z"),
            Tolerance::Scaled(EPS),
        );
        check(
            &format!("{name}: p"),
            &diff["p_value"],
            num(&case["p_value"], "p"),
            Tolerance::Relative(EPS),
        );
        let conf = &case["conf_int"];
        check(
            &format!("{name}: lower"),
            &diff["lower"],
            -num(&conf[1], "upper"),
            Tolerance::Absolute(EPS),
        );
        check(
            &format!("{name}: upper"),
            &diff["upper"],
            -num(&conf[0], "lower"),
            Tolerance::Absolute(EPS),
        );
        let variance = num(&case["variance_a"], "va") + num(&case["variance_b"], "vb")
            - 2.0 * num(&case["covariance"], "cov");
        let se = num(&diff["std_error"], "std_error");
        assert!(
            (se * se - variance).abs() <= EPS * variance.abs().max(1e-12),
            "{name}: variance {} vs pROC {variance}",
            se * se
        );
        assert_eq!(diff["method"], "delong-paired");
        assert_eq!(answer["gauc_diff"], Value::Null);
    }
}

#[tokio::test]
async fn stream_comparison_equals_proc_roc_test_unpaired() {
    let app = spawn_app().await;
    let doc = fixture("proc_delong_cases.json");
    for (i, case) in doc["unpaired"]
        .as_array()
        .expect("unpaired cases")
        .iter()
        .enumerate()
    {
        let name = case["name"].as_str().unwrap_or("?");
        let (a, b) = (format!("proc-a{i}"), format!("proc-b{i}"));
        for (stream, side) in [(&a, "a"), (&b, "b")] {
            let batch = json!({
                "predictions": case[format!("predictions_{side}")],
                "labels": case[format!("labels_{side}")],
            });
            assert_ok(app.post_batch(stream, &batch).await).await;
        }
        let answer = assert_ok(app.get(&format!("/streams/{a}/compare/{b}")).await).await;
        let diff = &answer["auc_diff"];
        let (auc_a, auc_b) = (num(&case["auc_a"], "auc_a"), num(&case["auc_b"], "auc_b"));
        check(
            &format!("{name}: value"),
            &diff["value"],
            auc_b - auc_a,
            Tolerance::Absolute(EPS),
        );
        check(
            &format!("{name}: t"),
            &diff["z"],
            -num(&case["statistic"], "t"),
            Tolerance::Scaled(EPS),
        );
        check(
            &format!("{name}: df"),
            &diff["df"],
            num(&case["df"], "df"),
            Tolerance::Relative(EPS),
        );
        check(
            &format!("{name}: p"),
            &diff["p_value"],
            num(&case["p_value"], "p"),
            Tolerance::Relative(EPS),
        );
        let variance = num(&case["variance_a"], "va") + num(&case["variance_b"], "vb");
        let se = num(&diff["std_error"], "std_error");
        check(
            &format!("{name}: variance"),
            &json!(se * se),
            variance,
            Tolerance::Relative(EPS),
        );
        let half = 1.959963984540054 * se;
        check(
            &format!("{name}: lower"),
            &diff["lower"],
            auc_b - auc_a - half,
            Tolerance::Absolute(EPS),
        );
        check(
            &format!("{name}: upper"),
            &diff["upper"],
            auc_b - auc_a + half,
            Tolerance::Absolute(EPS),
        );
        assert_eq!(diff["method"], "delong-unpaired");
        assert_eq!(answer["a"]["stream"], a.as_str());
        assert_eq!(answer["b"]["stream"], b.as_str());
    }
}

#[tokio::test]
async fn ranking_ndcg_equals_scikit_learn_ndcg_score() {
    let app = spawn_app().await;
    let doc = fixture("ranking_ndcg_cases.json");
    for (i, case) in doc["cases"].as_array().expect("cases").iter().enumerate() {
        let answer = assert_ok(app.post_metrics(&case["input"]).await).await;
        let ranking = &answer["ranking"];
        for (k, expected) in case["ndcg"].as_object().expect("ndcg by k") {
            check(
                &format!("case {i}: ndcg@{k}"),
                &ranking["ndcg"][k],
                num(expected, "ndcg"),
                Tolerance::Absolute(EPS),
            );
        }
        assert_eq!(ranking["users"], case["users"], "case {i}");
        assert_eq!(ranking["users_skipped"], case["users_skipped"], "case {i}");
        assert_eq!(ranking["k"], case["input"]["ranking"]["k"], "case {i}");
    }
}
