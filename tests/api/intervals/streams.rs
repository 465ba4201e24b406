//! Intervals over streams: `auc_ci` and the GAUC standard error equal the
//! one-shot answer (1e-12) over any split into batches, with `confidence`
//! as a query parameter; weights other than 0 and 1 give `null` + warning.

use proptest::prelude::*;
use serde_json::{json, Value};

use crate::helpers::{assert_matches_one_shot, assert_ok, spawn_app};

/// Records `(score, label, user, weight)` with ties and weights 0 or 1.
fn records() -> impl Strategy<Value = Vec<(u8, u8, u8, u8)>> {
    prop::collection::vec(
        (
            0u8..15,
            0u8..2,
            0u8..5,
            prop_oneof![9 => Just(1u8), 1 => Just(0u8)],
        ),
        4..90,
    )
}

fn body(recs: &[(u8, u8, u8, u8)]) -> Value {
    json!({
        "predictions": recs.iter().map(|r| f64::from(r.0) / 15.0).collect::<Vec<_>>(),
        "labels": recs.iter().map(|r| r.1).collect::<Vec<_>>(),
        "user_ids": recs.iter().map(|r| format!("u{}", r.2)).collect::<Vec<_>>(),
        "sample_weights": recs.iter().map(|r| f64::from(r.3)).collect::<Vec<_>>(),
    })
}

#[test]
fn stream_intervals_equal_one_shot_intervals_over_any_split() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let app = rt.block_on(spawn_app());
    let config = ProptestConfig {
        cases: 30,
        ..ProptestConfig::default()
    };
    let case = std::sync::atomic::AtomicU32::new(0);
    proptest!(config, |(recs in records(), cuts in prop::collection::vec(1usize..90, 0..4), level in 0.05f64..0.999)| {
        let name = format!("ci{}", case.fetch_add(1, std::sync::atomic::Ordering::SeqCst));
        rt.block_on(async {
            let mut bounds: Vec<usize> = cuts.iter().map(|c| c % recs.len()).collect();
            bounds.extend([0, recs.len()]);
            bounds.sort_unstable();
            bounds.dedup();
            for w in bounds.windows(2) {
                assert_ok(app.post_batch(&name, &body(&recs[w[0]..w[1]])).await).await;
            }
            let stream = assert_ok(app.stream_metrics(&name, &format!("confidence={level}&gauc_weighting=uniform")).await).await;
            let mut whole = body(&recs);
            whole["confidence"] = json!(level);
            whole["gauc_weighting"] = json!("uniform");
            let one_shot = assert_ok(app.post_metrics(&whole).await).await;
            assert_matches_one_shot(&stream["auc_ci"], &one_shot["auc_ci"], "auc_ci");
            assert_matches_one_shot(&stream["gauc"], &one_shot["gauc"], "gauc");
            assert_eq!(stream["warnings"], one_shot["warnings"]);
            if !stream["auc_ci"].is_null() {
                assert_eq!(stream["auc_ci"]["level"].as_f64(), Some(level));
            }
        });
    });
}

#[tokio::test]
async fn a_stream_with_real_weights_has_no_auc_ci_but_a_gauc_interval() {
    let app = spawn_app().await;
    let batch = json!({
        "predictions": [0.9, 0.8, 0.3, 0.2, 0.7, 0.1, 0.6, 0.4],
        "labels": [1, 0, 1, 0, 1, 0, 0, 1],
        "user_ids": ["a", "a", "a", "b", "b", "b", "c", "c"],
        "sample_weights": [1.0, 2.0, 1.0, 1.0, 0.5, 1.0, 1.0, 1.0],
    });
    assert_ok(app.post_batch("weighted", &batch).await).await;
    let stream = assert_ok(app.stream_metrics("weighted", "").await).await;
    assert_eq!(stream["auc_ci"], Value::Null);
    let warnings = stream["warnings"].to_string();
    assert!(
        warnings.contains("auc_ci is undefined") && warnings.contains("sample weights"),
        "{warnings}"
    );
    assert!(stream["gauc"]["std_error"].as_f64().is_some(), "{stream}");
}

#[tokio::test]
async fn a_stream_compared_with_itself_differs_by_nothing() {
    let app = spawn_app().await;
    let batch = json!({
        "predictions": [0.9, 0.8, 0.3, 0.2, 0.7, 0.1, 0.6, 0.4, 0.5, 0.35],
        "labels": [1, 0, 1, 0, 1, 0, 0, 1, 1, 0],
        "user_ids": ["a", "a", "a", "b", "b", "b", "c", "c", "c", "a"],
    });
    assert_ok(app.post_batch("self", &batch).await).await;
    let answer = assert_ok(app.get("/streams/self/compare/self?confidence=0.9").await).await;
    let auc = &answer["auc_diff"];
    assert_eq!(
        (&auc["value"], &auc["z"], &auc["p_value"]),
        (&json!(0.0), &json!(0.0), &json!(1.0)),
        "{answer}"
    );
    assert_eq!(
        auc["lower"].as_f64(),
        Some(-auc["upper"].as_f64().unwrap_or(f64::NAN))
    );
    let gauc = &answer["gauc_diff"];
    assert_eq!(
        (&gauc["value"], &gauc["method"], &gauc["users"]),
        (&json!(0.0), &json!("user-unpaired"), &Value::Null),
        "{answer}"
    );
    assert_eq!(gauc["z"], json!(0.0));
}

#[tokio::test]
async fn a_compacted_stream_withholds_the_intervals_it_cannot_bound() {
    let app = crate::helpers::spawn_app_with(|c| {
        c.max_scores_per_stream = 40;
        c.max_scores_per_user = 10;
    })
    .await;
    for part in 0..4 {
        let n = 100;
        let batch = json!({
            "predictions": (0..n).map(|i| f64::from(part * n + i) / 400.0).collect::<Vec<_>>(),
            "labels": (0..n).map(|i| (i * 7 + part) % 3 == 0).collect::<Vec<_>>(),
            "user_ids": (0..n).map(|i| format!("u{}", i % 4)).collect::<Vec<_>>(),
        });
        assert_ok(app.post_batch("compacted", &batch).await).await;
    }
    let stream = assert_ok(app.stream_metrics("compacted", "").await).await;
    assert!(
        stream["auc_error_bound"].as_f64().unwrap_or(0.0) > 0.0,
        "not compacted: {stream}"
    );
    assert_eq!(stream["auc_ci"], Value::Null);
    assert_eq!(stream["gauc"]["std_error"], Value::Null);
    assert_eq!(stream["gauc"]["lower"], Value::Null);
    let warnings = stream["warnings"].to_string();
    assert!(
        warnings.contains("auc_ci is undefined") && warnings.contains("compacted"),
        "{warnings}"
    );
    assert!(warnings.contains("gauc.std_error"), "{warnings}");
}
