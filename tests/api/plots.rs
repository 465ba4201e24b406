//! The plot routes and the dashboard page, through the real server: every
//! chart is SVG that parses as XML, its ROC points are the JSON `roc`
//! points, and bad input gets the problems of the JSON routes.

use proptest::prelude::*;
use serde_json::{json, Value};

use crate::helpers::{assert_ok, assert_problem, spawn_app, TestApp};

/// The stroke colour of the first model's curve.
const FIRST_MODEL: &str = "#1F77B4";
const SECOND_MODEL: &str = "#FF7F0E";

const KINDS: [&str; 5] = ["roc", "pr", "calibration", "scores", "thresholds"];

fn body() -> Value {
    json!({
        "predictions": [0.9, 0.8, 0.7, 0.6, 0.55, 0.4, 0.3, 0.2, 0.1, 0.05],
        "labels":      [1,   1,   0,   1,   1,    0,   1,   0,   0,   0]
    })
}

/// Asserts an SVG answer and returns the body.
async fn assert_svg(response: reqwest::Response) -> String {
    let status = response.status().as_u16();
    let url = response.url().path().to_owned();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let text = response.text().await.expect("response body");
    assert_eq!(status, 200, "{url}: {text}");
    assert_eq!(content_type, "image/svg+xml", "{url}");
    text
}

/// The trimmed `<text>` contents of `svg`, which must be XML.
fn texts(svg: &str) -> Vec<String> {
    let doc = roxmltree::Document::parse(svg).expect("the SVG is XML");
    doc.descendants()
        .filter(|n| n.has_tag_name("text"))
        .filter_map(|n| n.text().map(|t| t.trim().to_owned()))
        .collect()
}

/// The pixel points of the polylines stroked in `color`, in order.
fn polylines(svg: &str, color: &str) -> Vec<Vec<(f64, f64)>> {
    let doc = roxmltree::Document::parse(svg).expect("the SVG is XML");
    doc.descendants()
        .filter(|n| n.has_tag_name("polyline") && n.attribute("stroke") == Some(color))
        .map(|n| {
            n.attribute("points")
                .unwrap_or("")
                .split_whitespace()
                .map(|p| {
                    let (x, y) = p.split_once(',').expect("x,y");
                    (x.parse().expect("x"), y.parse().expect("y"))
                })
                .collect()
        })
        .collect()
}

fn assert_has_text(texts: &[String], expected: &str) {
    assert!(
        texts.iter().any(|t| t.contains(expected)),
        "{expected} in {texts:?}"
    );
}

#[tokio::test]
async fn every_kind_is_an_svg_chart_with_title_axes_and_headline() {
    let app = spawn_app().await;
    let metrics = assert_ok(app.post_metrics(&body()).await).await;
    let headlines = [
        (
            "roc",
            format!("AUC {:.4}", metrics["auc"].as_f64().unwrap()),
        ),
        ("pr", "AP ".to_owned()),
        ("calibration", "ECE ".to_owned()),
        ("scores", "positives (weight 5)".to_owned()),
        ("thresholds", "F1 ".to_owned()),
    ];
    for (kind, headline) in headlines {
        let svg = assert_svg(app.post_plot(kind, "", &body()).await).await;
        let texts = texts(&svg);
        assert_has_text(&texts, &headline);
        assert!(
            texts.len() > 8,
            "{kind}: title, axis labels and ticks: {texts:?}"
        );
    }
}

/// Scores at the ends of the doubles and scores one ulp apart: plotters'
/// tick search looped forever on such axes (the request timed out and a
/// server thread kept spinning), so every kind must still draw them.
#[tokio::test]
async fn extreme_and_nearly_equal_scores_still_draw_every_kind() {
    let app = spawn_app().await;
    let bodies = [
        json!({"predictions": [-1e308, 1e308, -1e308, 1e308], "labels": [0, 1, 1, 0]}),
        json!({"predictions": [1000.0, 1000.0000000000001, 1000.0, 1000.0000000000001],
               "labels": [0, 1, 1, 1]}),
    ];
    for body in &bodies {
        for kind in KINDS {
            let svg = assert_svg(app.post_plot(kind, "", body).await).await;
            assert!(
                texts(&svg).len() > 2,
                "{kind} of {body}: title and axis labels"
            );
        }
    }
}

#[tokio::test]
async fn the_roc_legend_carries_the_auc_interval_of_the_json_answer() {
    let app = spawn_app().await;
    let metrics = assert_ok(app.post_metrics(&body()).await).await;
    let ci = &metrics["auc_ci"];
    let svg = assert_svg(app.post_plot("roc", "", &body()).await).await;
    let expected = format!(
        "AUC {:.4}, 95% CI [{:.4}, {:.4}]",
        metrics["auc"].as_f64().unwrap(),
        ci["lower"].as_f64().unwrap(),
        ci["upper"].as_f64().unwrap()
    );
    assert_has_text(&texts(&svg), &expected);
}

#[tokio::test]
async fn options_set_the_size_and_title() {
    let app = spawn_app().await;
    let svg = assert_svg(
        app.post_plot(
            "roc",
            "width=300&height=250&title=My%20model%20%3C1%3E",
            &body(),
        )
        .await,
    )
    .await;
    let doc = roxmltree::Document::parse(&svg).expect("XML");
    assert_eq!(doc.root_element().attribute("width"), Some("300"));
    assert_eq!(doc.root_element().attribute("height"), Some("250"));
    assert_has_text(&texts(&svg), "My model <1>");
}

#[tokio::test]
async fn bad_bodies_get_the_problems_of_post_metrics() {
    let app = spawn_app().await;
    let cases = [
        (
            "length mismatch",
            json!({"predictions": [0.1, 0.2], "labels": [1]}),
        ),
        (
            "label out of range",
            json!({"predictions": [0.1, 0.2], "labels": [1, 2]}),
        ),
        ("missing labels", json!({"predictions": [0.1, 0.2]})),
        (
            "unknown field",
            json!({"predictions": [0.1], "labels": [1], "colour": 1}),
        ),
        (
            "bad beta",
            json!({"predictions": [0.1], "labels": [1], "beta": 0}),
        ),
        (
            "too few points",
            json!({"predictions": [0.1], "labels": [1], "roc": {"max_points": 1}}),
        ),
        ("empty", json!({"predictions": [], "labels": []})),
    ];
    for (case, bad) in cases {
        let expected = app.post_metrics(&bad).await;
        let status = expected.status().as_u16();
        let expected = assert_problem(expected, status).await;
        let got = assert_problem(app.post_plot("roc", "", &bad).await, status).await;
        assert_eq!(got["field"], expected["field"], "{case}");
        assert_eq!(got["detail"], expected["detail"], "{case}");
    }
}

#[tokio::test]
async fn bad_options_kinds_and_shapes_are_refused_naming_the_field() {
    let app = spawn_app().await;
    for (query, field) in [
        ("width=10", "width"),
        ("height=100000", "height"),
        ("width=wide", "width"),
        ("colour=red", "colour"),
    ] {
        let problem = assert_problem(app.post_plot("roc", query, &body()).await, 422).await;
        assert_eq!(problem["field"], field, "{query}: {problem}");
    }
    let long = "x".repeat(201);
    let problem = assert_problem(
        app.post_plot("roc", &format!("title={long}"), &body())
            .await,
        422,
    )
    .await;
    assert_eq!(problem["field"], "title");
    let problem = assert_problem(app.post_plot("pie", "", &body()).await, 404).await;
    assert_eq!(problem["valid"], json!(KINDS));
    let multiclass = json!({"predictions": [[0.2, 0.8], [0.6, 0.4]], "labels": [1, 0]});
    let problem = assert_problem(app.post_plot("roc", "", &multiclass).await, 422).await;
    assert_eq!(problem["field"], "predictions");
}

#[tokio::test]
async fn a_large_width_is_bounded_by_the_configured_limit() {
    let app = crate::helpers::spawn_app_with(|c| c.max_plot_side = 500).await;
    assert_svg(app.post_plot("roc", "width=500", &body()).await).await;
    let problem = assert_problem(app.post_plot("roc", "width=501", &body()).await, 422).await;
    assert!(problem["detail"]
        .as_str()
        .unwrap()
        .contains("--max-plot-side"));
}

/// Records with both classes: `(score in hundredths, label)`.
fn records() -> impl Strategy<Value = Vec<(u8, bool)>> {
    prop::collection::vec((0u8..=100, any::<bool>()), 2..120).prop_map(|mut r| {
        r[0].1 = true;
        r[1].1 = false;
        r
    })
}

#[test]
fn plotted_roc_points_are_the_json_roc_points() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let app = rt.block_on(spawn_app());
    let config = ProptestConfig {
        cases: 24,
        ..ProptestConfig::default()
    };
    proptest!(config, |(recs in records(), max_points in 2usize..40, drop in any::<bool>())| {
        rt.block_on(async {
            let body = json!({
                "predictions": recs.iter().map(|r| f64::from(r.0) / 100.0).collect::<Vec<_>>(),
                "labels": recs.iter().map(|r| u8::from(r.1)).collect::<Vec<_>>(),
                "roc": {"max_points": max_points, "drop_intermediate": drop},
            });
            let metrics = assert_ok(app.post_metrics(&body).await).await;
            let fpr: Vec<f64> = serde_json::from_value(metrics["roc"]["fpr"].clone()).unwrap();
            let tpr: Vec<f64> = serde_json::from_value(metrics["roc"]["tpr"].clone()).unwrap();
            let svg = assert_svg(app.post_plot("roc", "", &body).await).await;
            let lines = polylines(&svg, FIRST_MODEL);
            let curve = &lines[0];
            assert_eq!(curve.len(), fpr.len(), "one plotted point per JSON point");
            // The curve runs from (0, 0) to (1, 1); those two pixels fix the
            // linear map, and every other point must sit where it maps
            // (plotters rounds to whole pixels).
            let (x0, y0) = curve[0];
            let (x1, y1) = curve[curve.len() - 1];
            assert_eq!((fpr[0], tpr[0]), (0.0, 0.0));
            assert_eq!((fpr[fpr.len() - 1], tpr[tpr.len() - 1]), (1.0, 1.0));
            for (i, &(x, y)) in curve.iter().enumerate() {
                let (ex, ey) = (x0 + fpr[i] * (x1 - x0), y0 + tpr[i] * (y1 - y0));
                assert!((x - ex).abs() <= 1.0 && (y - ey).abs() <= 1.0,
                    "point {i}: pixel ({x}, {y}) but ({}, {}) maps to ({ex}, {ey})", fpr[i], tpr[i]);
            }
        });
    });
}

async fn ingest(app: &TestApp, stream: &str) {
    let mut lines = String::new();
    for i in 0..200u32 {
        let score = f64::from((i * 37) % 101) / 100.0;
        let label = u8::from((i * 13) % 7 < 3 + u32::from(score > 0.5) * 2);
        lines.push_str(&format!(
            "{{\"prediction\":{score},\"label\":{label},\"user_id\":\"u{}\"}}\n",
            i % 5
        ));
    }
    assert_ok(app.push_ndjson(stream, lines).await).await;
}

#[tokio::test]
async fn stream_and_user_plots_show_the_stream_metrics() {
    let app = spawn_app().await;
    ingest(&app, "plotted").await;
    let metrics = assert_ok(app.stream_metrics("plotted", "threshold=0.3").await).await;
    for kind in KINDS {
        let svg = assert_svg(
            app.get(&format!(
                "/streams/plotted/plots/{kind}?threshold=0.3&width=400"
            ))
            .await,
        )
        .await;
        assert_has_text(&texts(&svg), "plotted");
    }
    let svg = assert_svg(app.get("/streams/plotted/plots/roc").await).await;
    assert_has_text(
        &texts(&svg),
        &format!("AUC {:.4}", metrics["auc"].as_f64().unwrap()),
    );
    let svg = assert_svg(
        app.get("/streams/plotted/plots/thresholds?threshold=0.3")
            .await,
    )
    .await;
    assert_has_text(
        &texts(&svg),
        &format!("F1 {:.4} at 0.3", metrics["f1"].as_f64().unwrap()),
    );
    let user = assert_ok(app.user_metrics("plotted", "u2", "").await).await;
    let svg = assert_svg(app.get("/streams/plotted/users/u2/plots/roc").await).await;
    assert_has_text(
        &texts(&svg),
        &format!("AUC {:.4}", user["auc"].as_f64().unwrap()),
    );
}

#[tokio::test]
async fn stream_plots_refuse_what_stream_metrics_refuse() {
    let app = spawn_app().await;
    ingest(&app, "checked").await;
    for (plot, metrics, status) in [
        ("/streams/nope/plots/roc", "/streams/nope/metrics", 404),
        (
            "/streams/checked/users/nobody/plots/roc",
            "/streams/checked/users/nobody/metrics",
            404,
        ),
        (
            "/streams/checked/plots/roc?beta=-1",
            "/streams/checked/metrics?beta=-1",
            422,
        ),
        (
            "/streams/checked/plots/roc?max_points=1",
            "/streams/checked/metrics?max_points=1",
            422,
        ),
        (
            "/streams/checked/plots/roc?colour=red",
            "/streams/checked/metrics?colour=red",
            422,
        ),
    ] {
        let expected = assert_problem(app.get(metrics).await, status).await;
        let got = assert_problem(app.get(plot).await, status).await;
        assert_eq!(got["detail"], expected["detail"], "{plot}");
        assert_eq!(got["field"], expected["field"], "{plot}");
    }
    let problem = assert_problem(app.get("/streams/checked/plots/roc?width=1").await, 422).await;
    assert_eq!(problem["field"], "width");
}

#[tokio::test]
async fn two_models_share_one_chart_with_a_legend_each() {
    let app = spawn_app().await;
    let compare = json!({
        "labels":        [1,   1,   0,   1,   0,   0,   1,   0],
        "predictions_a": [0.9, 0.8, 0.7, 0.6, 0.4, 0.3, 0.2, 0.1],
        "predictions_b": [0.6, 0.9, 0.2, 0.8, 0.3, 0.5, 0.7, 0.1]
    });
    let json_answer = assert_ok(app.post_json("/metrics/compare", &compare).await).await;
    for kind in ["roc", "pr", "calibration"] {
        let svg = assert_svg(
            app.post_json(&format!("/plots/compare/{kind}"), &compare)
                .await,
        )
        .await;
        // each model's curve, then its legend sample
        assert_eq!(polylines(&svg, FIRST_MODEL).len(), 2, "{kind}");
        assert_eq!(polylines(&svg, SECOND_MODEL).len(), 2, "{kind}");
        let texts = texts(&svg);
        assert_has_text(&texts, "a (");
        assert_has_text(&texts, "b (");
    }
    let svg = assert_svg(app.post_json("/plots/compare/roc", &compare).await).await;
    let diff = json_answer["auc_diff"]["value"].as_f64().unwrap();
    assert_has_text(&texts(&svg), &format!("AUC b - a {diff:.4}"));
    assert_problem(app.post_json("/plots/compare/scores", &compare).await, 404).await;
    let short = json!({"labels": [1, 0], "predictions_a": [0.1, 0.2], "predictions_b": [0.3]});
    let expected = assert_problem(app.post_json("/metrics/compare", &short).await, 422).await;
    let got = assert_problem(app.post_json("/plots/compare/roc", &short).await, 422).await;
    assert_eq!(got["field"], expected["field"]);
}

#[tokio::test]
async fn the_dashboard_page_and_its_assets_are_served_from_the_binary() {
    let app = spawn_app().await;
    for path in ["/", "/ui/", "/ui/streams/some-stream", "/ui/compare"] {
        let response = app.get(path).await;
        assert_eq!(response.status().as_u16(), 200, "{path}");
        let content_type = response.headers()["content-type"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(
            content_type.starts_with("text/html"),
            "{path}: {content_type}"
        );
        let csp = response.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(csp.contains("default-src 'self'"), "{csp}");
        let html = response.text().await.unwrap();
        assert!(html.contains("/ui/assets/app.js"), "{path}");
    }
    for (asset, media) in [
        ("app.js", "text/javascript"),
        ("errors.js", "text/javascript"),
        ("style.css", "text/css"),
    ] {
        let response = app.get(&format!("/ui/assets/{asset}")).await;
        assert_eq!(response.status().as_u16(), 200, "{asset}");
        let content_type = response.headers()["content-type"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(content_type.starts_with(media), "{asset}: {content_type}");
    }
    assert_problem(app.get("/ui/assets/missing.js").await, 404).await;
}
