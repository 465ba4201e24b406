//! Evaluation beyond the basics (binary): scikit-learn parity on
//! `tests/fixtures/eval_cases.json` (written by `scripts/gen_eval_fixtures.py`,
//! scikit-learn 1.9.1, numpy 2.4.6), HTTP errors, and properties.
//!
//! Epsilon: 1e-9, relative above magnitude 1; `null` must match exactly.

use evald::api::extract::parse_json;
use evald::api::metrics::{MetricsJob, MetricsRequest};
use evald::core::metrics::threshold::at_thresholds;
use evald::core::metrics::{pr::average_precision, pr::pr_curve, Confusion, ScoreTable};
use proptest::prelude::*;
use serde_json::{json, Value};

use crate::helpers::{
    assert_json_contains, assert_ok, assert_problem, fixture_cases, spawn_app, spawn_app_with,
    Tolerance,
};

const EPSILON: f64 = 1e-9;

/// Evaluates a case the way the handler does: parse the body, check it, run.
fn through_request(input: &Value) -> Value {
    let body = serde_json::to_vec(input).expect("serializable");
    let request: MetricsRequest = parse_json(&body).expect("valid request");
    let job =
        MetricsJob::from_request(request, usize::MAX, usize::MAX, 10_000).expect("checked request");
    serde_json::to_value(job.run().expect("evaluation")).expect("serializable")
}

#[test]
fn every_extended_field_matches_scikit_learn_on_every_fixture() {
    let cases = fixture_cases("eval_cases.json");
    assert!(cases.len() >= 50, "only {} cases", cases.len());
    for case in cases {
        let name = case["name"].as_str().unwrap_or("?").to_owned();
        let actual = through_request(&case["input"]);
        assert_json_contains(
            &case["expected"],
            &actual,
            Tolerance::Scaled(EPSILON),
            &name,
        );
    }
}

#[tokio::test]
async fn the_answer_has_every_group_over_http() {
    let app = spawn_app().await;
    let body = json!({
        "predictions": [0.9, 0.8, 0.7, 0.6, 0.4, 0.3],
        "labels": [1, 1, 0, 1, 0, 0],
        "thresholds": [0.65, 0.35],
        "tpr_at_fpr": [0.0, 0.34],
        "max_fpr": 0.5,
        "calibration": {"n_bins": 2, "strategy": "quantile"},
        "pr": {"max_points": null, "drop_intermediate": true}
    });
    let got = assert_ok(app.post_metrics(&body).await).await;
    // By hand: labels by descending score 1 1 0 1 0 0. AP = (1 + 1 + 3/4) / 3.
    assert_json_contains(
        &json!({
            "average_precision": 11.0 / 12.0,
            "specificity": 2.0 / 3.0,
            "npv": 1.0,
            "at_thresholds": [
                {"threshold": 0.65, "tp": 2, "fp": 1, "tn": 2, "fn": 1, "precision": 2.0 / 3.0,
                 "recall": 2.0 / 3.0, "fpr": 1.0 / 3.0, "specificity": 2.0 / 3.0},
                {"threshold": 0.35, "tp": 3, "fp": 2, "tn": 1, "fn": 0, "recall": 1.0}
            ],
            "tpr_at_fpr": [
                {"fpr": 0.0, "tpr": 2.0 / 3.0, "threshold": 0.8},
                {"fpr": 0.34, "tpr": 1.0, "threshold": 0.6}
            ],
            // J = 2/3 at 0.8 and at 0.6: the larger threshold wins
            "best_threshold": {"youden_j": {"threshold": 0.8, "value": 2.0 / 3.0}},
            "calibration": {"n_bins": 2, "strategy": "quantile", "counts": [3, 3]}
        }),
        &got,
        Tolerance::Scaled(1e-12),
        "by hand",
    );
    for field in [
        "log_loss",
        "brier_score",
        "mcc",
        "cohen_kappa",
        "partial_auc",
        "calibration_ratio",
        "normalized_entropy",
        "balanced_accuracy",
    ] {
        assert!(got[field].is_number(), "{field}: {got}");
    }
}

#[tokio::test]
async fn undefined_extended_values_are_null_with_a_warning() {
    let app = spawn_app().await;
    let body =
        json!({"predictions": [0.2, 1.5], "labels": [0, 0], "max_fpr": 0.5, "tpr_at_fpr": [0.1]});
    let got = assert_ok(app.post_metrics(&body).await).await;
    let warnings = got["warnings"].to_string();
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
        "partial_auc",
        "tpr_at_fpr",
    ] {
        assert!(got[field].is_null(), "{field}: {}", got[field]);
        assert!(
            warnings.contains(field),
            "no warning for {field}: {warnings}"
        );
    }
    assert!(got["best_threshold"]["youden_j"].is_null());
}

#[tokio::test]
async fn bad_extended_options_are_problems_naming_the_field() {
    let app = spawn_app_with(|c| c.max_array_len = 4).await;
    let base = json!({"predictions": [0.1, 0.9], "labels": [0, 1]});
    let many: Vec<f64> = (0..10_001).map(|i| f64::from(i) / 10_001.0).collect();
    for (extra, field) in [
        (json!({"thresholds": many}), "thresholds"),
        (json!({"max_fpr": 0.0}), "max_fpr"),
        (json!({"max_fpr": 1.01}), "max_fpr"),
        (json!({"max_fpr": -0.5}), "max_fpr"),
        (json!({"tpr_at_fpr": [0.1, 2.0]}), "tpr_at_fpr"),
        (json!({"calibration": {"n_bins": 0}}), "calibration.n_bins"),
        (json!({"calibration": {"n_bins": -1}}), "calibration.n_bins"),
        (
            json!({"calibration": {"strategy": "median"}}),
            "calibration.strategy",
        ),
        (json!({"pr": {"max_points": 1}}), "pr.max_points"),
    ] {
        let mut body = base.clone();
        for (k, v) in extra.as_object().expect("object") {
            body[k] = v.clone();
        }
        let problem = assert_problem(app.post_metrics(&body).await, 422).await;
        assert_eq!(problem["field"], field, "{extra}: {problem}");
    }
    // a huge bin count is fine (only non-empty bins are stored), and the
    // default bins do not depend on --max-array-len (4 here)
    let mut body = base.clone();
    body["calibration"] = json!({"n_bins": 1_000_000_000_000u64, "strategy": "quantile"});
    let got = assert_ok(app.post_metrics(&body).await).await;
    assert_eq!(got["calibration"]["counts"], json!([1, 1]));
    // exactly the limit is fine
    let mut body = base.clone();
    body["thresholds"] = json!(vec![0.5; 10_000]);
    assert_ok(app.post_metrics(&body).await).await;
    // binary options with multiclass input
    let multi = json!({"predictions": [[0.2, 0.8], [0.6, 0.4]], "labels": [1, 0], "max_fpr": 0.5});
    let problem = assert_problem(app.post_metrics(&multi).await, 422).await;
    assert_eq!(problem["field"], "max_fpr");
}

/// Records with many ties and weights (zeros included).
fn records() -> impl Strategy<Value = Vec<(f64, bool, f64)>> {
    prop::collection::vec(
        (
            (0u8..9).prop_map(|s| f64::from(s) / 8.0),
            any::<bool>(),
            prop::sample::select(vec![0.0, 0.5, 1.0, 2.25]),
        ),
        0..60,
    )
}

proptest! {
    #[test]
    fn average_precision_and_the_pr_curve_ignore_record_order(recs in records(), seed in any::<u64>()) {
        let mut shuffled = recs.clone();
        let mut rng = evald::core::rng::SplitMix64::new(seed);
        for i in (1..shuffled.len()).rev() {
            let j = (rng.next_u64() % (i as u64 + 1)) as usize;
            shuffled.swap(i, j);
        }
        let table = |r: &[(f64, bool, f64)]| {
            let (s, l, w): (Vec<f64>, Vec<bool>, Vec<f64>) =
                r.iter().fold((vec![], vec![], vec![]), |(mut s, mut l, mut w), x| {
                    s.push(x.0); l.push(x.1); w.push(x.2); (s, l, w)
                });
            ScoreTable::from_records(&s, &l, Some(&w)).expect("valid records")
        };
        let (a, b) = (table(&recs), table(&shuffled));
        // weights are multiples of 0.25: every sum is exact in any order
        prop_assert_eq!(average_precision(&a), average_precision(&b));
        prop_assert_eq!(pr_curve(&a, false, None), pr_curve(&b, false, None));
        prop_assert_eq!(pr_curve(&a, true, Some(7)), pr_curve(&b, true, Some(7)));
    }

    #[test]
    fn at_thresholds_equal_the_confusion_at_each_threshold(
        recs in records(),
        thresholds in prop::collection::vec(-0.5f64..1.5, 1..20),
    ) {
        let s: Vec<f64> = recs.iter().map(|r| r.0).collect();
        let l: Vec<bool> = recs.iter().map(|r| r.1).collect();
        let w: Vec<f64> = recs.iter().map(|r| r.2).collect();
        let table = ScoreTable::from_records(&s, &l, Some(&w)).expect("valid records");
        let mut all = thresholds.clone();
        all.extend(s.iter().copied());
        for row in at_thresholds(&table, &all, 1.5) {
            let c = Confusion::at_threshold(&table, row.threshold);
            prop_assert_eq!(row.confusion, c, "threshold {}", row.threshold);
            prop_assert_eq!(row.f_beta, c.f_beta(1.5));
            prop_assert_eq!(row.specificity, c.specificity());
        }
    }
}
