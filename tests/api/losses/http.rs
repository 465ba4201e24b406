//! `POST /loss/{name}`, `GET /loss` and `GET /loss/{name}` through the real
//! server: every loss's happy path, the catalogue, and every error.

use crate::helpers::{
    assert_detail_contains, assert_ok, assert_problem, spawn_app, spawn_app_with, TestApp,
    Tolerance,
};
use serde_json::{json, Value};

fn close(a: f64, b: f64) -> bool {
    Tolerance::Scaled(1e-12).accepts(a, b)
}

/// `POST /loss/{name}`, asserting a 200; returns the answer.
async fn post_ok(app: &TestApp, name: &str, body: Value) -> Value {
    assert_ok(app.post_loss(name, &body).await).await
}

#[tokio::test]
async fn every_loss_and_alias_answers_with_loss_and_gradient() {
    let app = spawn_app().await;
    let probs = json!([[0.9, 0.2], [0.4, 0.7]]);
    let binary = json!([[1, 0], [0, 1]]);
    let cases = [
        ("bce", json!({"predictions": probs, "targets": binary})),
        (
            "bce",
            json!({"predictions": [[2.0, -1.0], [0.5, 3.0]], "targets": binary, "from_logits": true, "pos_weight": [2.0, 1.0]}),
        ),
        (
            "cross_entropy",
            json!({"predictions": [[2.0, 1.0, 0.1], [0.5, 2.5, 0.3]], "targets": [0, 1]}),
        ),
        (
            "ce",
            json!({"predictions": [[2.0, 1.0, 0.1]], "targets": [[0.7, 0.2, 0.1]], "label_smoothing": 0.1}),
        ),
        (
            "l1",
            json!({"predictions": [1.0, 2.0], "targets": [1.5, 1.0]}),
        ),
        (
            "mae",
            json!({"predictions": [1.0, 2.0], "targets": [1.5, 1.0]}),
        ),
        (
            "mse",
            json!({"predictions": [1.0, 2.0], "targets": [1.5, 1.0]}),
        ),
        (
            "l2",
            json!({"predictions": [1.0, 2.0], "targets": [1.5, 1.0]}),
        ),
        (
            "smooth_l1",
            json!({"predictions": [1.0, 2.0], "targets": [1.5, 0.0], "beta": 0.5}),
        ),
        (
            "huber",
            json!({"predictions": [1.0, 2.0], "targets": [1.5, 0.0], "delta": 2.0}),
        ),
        (
            "focal",
            json!({"predictions": [[2.0, -1.0], [0.5, 3.0]], "targets": binary}),
        ),
        (
            "dice",
            json!({"predictions": probs, "targets": binary, "squared": true}),
        ),
        (
            "iou",
            json!({"predictions": probs, "targets": binary, "smooth": 0.0}),
        ),
        (
            "jaccard",
            json!({"predictions": [[2.0, -1.0], [0.5, 3.0]], "targets": binary, "from_logits": true}),
        ),
    ];
    for (name, body) in cases {
        let shape = body["predictions"].clone();
        let out = post_ok(&app, name, body).await;
        let loss = out["loss"].as_f64().unwrap_or(f64::NAN);
        assert!(loss.is_finite() && loss >= 0.0, "{name}: {out}");
        assert_eq!(out["reduction"], "mean", "{name}");
        // the gradient has the shape of the predictions
        let g = &out["gradient"];
        assert_eq!(
            g.as_array().map(Vec::len),
            shape.as_array().map(Vec::len),
            "{name}: {out}"
        );
        assert_eq!(
            g[0].as_array().map(Vec::len),
            shape[0].as_array().map(Vec::len),
            "{name}: {out}"
        );
    }
}

#[tokio::test]
async fn mse_gives_the_documented_numbers() {
    let app = spawn_app().await;
    let out = post_ok(
        &app,
        "mse",
        json!({"predictions": [1.0, 2.0, 4.0], "targets": [1.0, 0.0, 3.0], "reduction": "sum"}),
    )
    .await;
    assert_eq!(out["name"], "mse");
    assert!(close(out["loss"].as_f64().unwrap(), 5.0), "{out}");
    assert_eq!(out["gradient"], json!([0.0, 4.0, 2.0]));
}

#[tokio::test]
async fn aliases_resolve_to_the_canonical_name() {
    let app = spawn_app().await;
    let out = post_ok(
        &app,
        "ce",
        json!({"predictions": [[0.0, 0.0]], "targets": [1]}),
    )
    .await;
    assert_eq!(out["name"], "cross_entropy");
    assert!(close(out["loss"].as_f64().unwrap(), 2f64.ln()), "{out}");
}

#[tokio::test]
async fn reduction_none_returns_one_value_per_item() {
    let app = spawn_app().await;
    let out = post_ok(&app, "l1", json!({"predictions": [[1.0, 2.0], [3.0, 4.0]], "targets": [[0.0, 0.0], [0.0, 0.0]], "reduction": "none"})).await;
    assert_eq!(out["loss"], json!([[1.0, 2.0], [3.0, 4.0]]));
    assert_eq!(out["gradient"], json!([[1.0, 1.0], [1.0, 1.0]]));
    let ce = post_ok(&app, "cross_entropy", json!({"predictions": [[0.0, 0.0], [0.0, 0.0], [0.0, 0.0]], "targets": [0, -100, 1], "reduction": "none"})).await;
    let items = ce["loss"].as_array().expect("array").clone();
    assert_eq!(items.len(), 3, "{ce}");
    assert_eq!(items[1], json!(0.0), "ignored target contributes 0: {ce}");
    let dice = post_ok(&app, "dice", json!({"predictions": [[1.0, 0.0], [0.5, 0.5], [0.0, 0.0]], "targets": [[1, 0], [1, 0], [0, 1]], "reduction": "none"})).await;
    assert_eq!(
        dice["loss"].as_array().map(Vec::len),
        Some(3),
        "one value per sample: {dice}"
    );
}

#[tokio::test]
async fn regularization_adds_the_penalty_and_returns_its_gradient() {
    let app = spawn_app().await;
    let out = post_ok(
        &app,
        "mse",
        json!({
            "predictions": [1.0], "targets": [0.0],
            "regularization": {"weights": [2.0, 0.0, -1.0], "l1": 0.5, "l2": 0.25}
        }),
    )
    .await;
    // data loss 1, penalty 0.5 * 3 + 0.25 * 5 = 2.75
    assert!(close(out["penalty"].as_f64().unwrap(), 2.75), "{out}");
    assert!(close(out["data_loss"].as_f64().unwrap(), 1.0), "{out}");
    assert!(close(out["loss"].as_f64().unwrap(), 3.75), "{out}");
    assert_eq!(out["weights_gradient"], json!([1.5, 0.0, -1.0]));
    let plain = post_ok(&app, "mse", json!({"predictions": [1.0], "targets": [0.0]})).await;
    assert!(plain.get("penalty").is_none(), "{plain}");
}

#[tokio::test]
async fn the_catalogue_lists_every_loss_with_aliases_params_defaults_and_formula() {
    let app = spawn_app().await;
    let response = app.get("/loss").await;
    assert_eq!(response.status().as_u16(), 200);
    let body: Value = response.json().await.unwrap();
    let losses = body.as_array().expect("a list of losses");
    let names: Vec<&str> = losses.iter().filter_map(|l| l["name"].as_str()).collect();
    assert_eq!(
        names,
        [
            "bce",
            "cross_entropy",
            "l1",
            "smooth_l1",
            "huber",
            "mse",
            "focal",
            "dice",
            "iou"
        ]
    );
    for loss in losses {
        assert!(!loss["formula"].as_str().unwrap_or("").is_empty(), "{loss}");
        assert!(
            loss["aliases"].is_array() && loss["parameters"].is_array(),
            "{loss}"
        );
        assert!(!loss["summary"].as_str().unwrap_or("").is_empty(), "{loss}");
        // every loss takes `reduction`: its values and default are listed
        let reduction = &loss["parameters"][0];
        assert_eq!(reduction["name"], "reduction", "{loss}");
        assert_eq!(
            reduction["values"],
            json!(["mean", "sum", "none"]),
            "{loss}"
        );
        assert_eq!(reduction["default"], "mean", "{loss}");
    }
    let focal = losses.iter().find(|l| l["name"] == "focal").unwrap();
    let alpha = focal["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "alpha")
        .unwrap();
    assert_eq!(alpha["default"], json!(0.25));
    assert_eq!(alpha["type"], "number");
    let ce = losses
        .iter()
        .find(|l| l["name"] == "cross_entropy")
        .unwrap();
    assert_eq!(ce["aliases"], json!(["ce"]));

    let one: Value = app.get("/loss/jaccard").await.json().await.unwrap();
    assert_eq!(one["name"], "iou");
    let listed = losses.iter().find(|l| l["name"] == "iou").unwrap();
    assert_eq!(
        &one, listed,
        "GET /loss/{{name}} is the entry GET /loss lists"
    );
}

#[tokio::test]
async fn unknown_losses_are_404_listing_the_valid_names() {
    let app = spawn_app().await;
    for response in [
        app.post_loss("hinge", &json!({"predictions": [1.0], "targets": [1.0]}))
            .await,
        app.post_loss("hinge", &json!({"garbage": true})).await,
        app.get("/loss/hinge").await,
    ] {
        let body = assert_problem(response, 404).await;
        let detail = body["detail"].as_str().unwrap();
        assert!(
            detail.contains("'hinge'") && detail.contains("cross_entropy, ce"),
            "{body}"
        );
        assert!(
            body["valid"].as_array().is_some_and(|v| v.len() == 13),
            "{body}"
        );
    }
}

#[tokio::test]
async fn invalid_inputs_are_422_naming_the_field_and_position() {
    let app = spawn_app().await;
    // (case, loss, body, expected field, text the detail must contain)
    let cases = [
        (
            "ragged predictions",
            "mse",
            json!({"predictions": [[1, 2, 3], [4, 5]], "targets": [[1, 2, 3], [4, 5, 6]]}),
            "predictions",
            "at [1]: expected 3 elements, found 2",
        ),
        (
            "string in targets",
            "mse",
            json!({"predictions": [1, 2], "targets": [1, "a"]}),
            "targets",
            "",
        ),
        (
            "shape mismatch",
            "mse",
            json!({"predictions": [[1, 2]], "targets": [1, 2]}),
            "targets",
            "[2]",
        ),
        (
            "probability above 1",
            "bce",
            json!({"predictions": [0.5, 1.5], "targets": [1, 0]}),
            "predictions",
            "at [1] is 1.5",
        ),
        (
            "target probability below 0",
            "bce",
            json!({"predictions": [0.5, 0.5], "targets": [1, -0.5]}),
            "targets",
            "at [1]",
        ),
        (
            "dice probability above 1",
            "dice",
            json!({"predictions": [[0.5, 2.0]], "targets": [[1, 0]]}),
            "predictions",
            "at [0][1]",
        ),
        (
            "class index out of range",
            "cross_entropy",
            json!({"predictions": [[1, 2, 3], [1, 2, 3]], "targets": [0, 3]}),
            "targets",
            "at [1] is 3",
        ),
        (
            "class index not an integer",
            "ce",
            json!({"predictions": [[1, 2, 3]], "targets": [1.5]}),
            "targets",
            "at [0] is 1.5",
        ),
        (
            "ce target shape",
            "ce",
            json!({"predictions": [[1, 2, 3]], "targets": [1, 2]}),
            "targets",
            "class indices",
        ),
        (
            "class_weights length",
            "ce",
            json!({"predictions": [[1, 2, 3]], "targets": [1], "class_weights": [1, 2]}),
            "class_weights",
            "3 classes",
        ),
        (
            "class_weights negative",
            "ce",
            json!({"predictions": [[1, 2, 3]], "targets": [1], "class_weights": [1, -2, 1]}),
            "class_weights",
            "at [1]",
        ),
        (
            "every target ignored",
            "ce",
            json!({"predictions": [[1, 2, 3]], "targets": [-100]}),
            "targets",
            "0/0",
        ),
        (
            "label_smoothing above 1",
            "ce",
            json!({"predictions": [[1, 2]], "targets": [1], "label_smoothing": 1.5}),
            "label_smoothing",
            "[0, 1]",
        ),
        (
            "negative beta",
            "smooth_l1",
            json!({"predictions": [1], "targets": [1], "beta": -1}),
            "beta",
            ">= 0",
        ),
        (
            "zero delta",
            "huber",
            json!({"predictions": [1], "targets": [1], "delta": 0}),
            "delta",
            "> 0",
        ),
        (
            "negative gamma",
            "focal",
            json!({"predictions": [1], "targets": [1], "gamma": -1}),
            "gamma",
            ">= 0",
        ),
        (
            "alpha above 1",
            "focal",
            json!({"predictions": [1], "targets": [1], "alpha": 2}),
            "alpha",
            "<= 1",
        ),
        (
            "negative smooth",
            "iou",
            json!({"predictions": [0.5], "targets": [1], "smooth": -1}),
            "smooth",
            ">= 0",
        ),
        (
            "dice 0/0",
            "dice",
            json!({"predictions": [[0, 0]], "targets": [[0, 0]], "smooth": 0}),
            "predictions",
            "sample [0]",
        ),
        (
            "pos_weight on probabilities",
            "bce",
            json!({"predictions": [0.5], "targets": [1], "pos_weight": 2}),
            "pos_weight",
            "from_logits",
        ),
        (
            "weights not broadcastable",
            "bce",
            json!({"predictions": [0.5, 0.5], "targets": [1, 0], "weights": [1, 2, 3]}),
            "weights",
            "broadcast",
        ),
        (
            "negative weight",
            "bce",
            json!({"predictions": [0.5, 0.5], "targets": [1, 0], "weights": [1, -2]}),
            "weights",
            "at [1]",
        ),
        (
            "parameter of another loss",
            "mse",
            json!({"predictions": [1], "targets": [1], "beta": 1}),
            "beta",
            "not a parameter of loss 'mse'",
        ),
        (
            "unknown field",
            "mse",
            json!({"predictions": [1], "targets": [1], "betta": 1}),
            "betta",
            "unknown field",
        ),
        (
            "unknown reduction",
            "mse",
            json!({"predictions": [1], "targets": [1], "reduction": "avg"}),
            "reduction",
            "avg",
        ),
        (
            "negative l1",
            "mse",
            json!({"predictions": [1], "targets": [1], "regularization": {"weights": [1], "l1": -1}}),
            "regularization.l1",
            ">= 0",
        ),
        (
            "regularization without weights",
            "mse",
            json!({"predictions": [1], "targets": [1], "regularization": {"l2": 1}}),
            "regularization",
            "weights",
        ),
        (
            "empty predictions",
            "mse",
            json!({"predictions": [], "targets": []}),
            "predictions",
            "empty",
        ),
        (
            "overflow",
            "mse",
            json!({"predictions": [1e300], "targets": [-1e300]}),
            "predictions",
            "overflows",
        ),
        (
            "too many dimensions",
            "mse",
            json!({"predictions": [[[[[[[[[1]]]]]]]]], "targets": 1}),
            "predictions",
            "more than 8",
        ),
        (
            "missing targets",
            "mse",
            json!({"predictions": [1]}),
            "body",
            "targets",
        ),
    ];
    for (case, loss, body, field, text) in cases {
        let response = app.post_loss(loss, &body).await;
        let problem = assert_problem(response, 422).await;
        // the shared tensor parser reports the JSON path down to the bad
        // element (e.g. `predictions[1]`), the core the field itself
        let found = problem["field"].as_str().unwrap_or("");
        assert!(
            found == field || found.starts_with(&format!("{field}[")),
            "{case}: field {found:?}, expected {field:?}: {problem}"
        );
        let detail = problem["detail"].as_str().unwrap_or("");
        assert!(
            detail.contains(text),
            "{case}: detail {detail:?} lacks {text:?}"
        );
    }
}

#[tokio::test]
async fn arrays_over_max_array_len_are_rejected_naming_the_limit() {
    let app = spawn_app_with(|config| config.max_array_len = 4).await;
    let ok = app
        .post_loss(
            "mse",
            &json!({"predictions": [1, 2, 3, 4], "targets": [1, 2, 3, 4]}),
        )
        .await;
    assert_eq!(ok.status().as_u16(), 200);
    let body = json!({"predictions": [1, 2, 3, 4, 5], "targets": [1, 2, 3, 4, 5]});
    let problem = assert_problem(app.post_loss("mse", &body).await, 422).await;
    assert_eq!(problem["field"], "predictions");
    assert_detail_contains(&problem, "--max-array-len");
    let body = json!({"predictions": [1], "targets": [1], "regularization": {"weights": [1, 2, 3, 4, 5], "l2": 1}});
    let problem = assert_problem(app.post_loss("mse", &body).await, 422).await;
    assert_eq!(problem["field"], "regularization.weights");
}

#[tokio::test]
async fn wrong_methods_are_405() {
    let app = spawn_app().await;
    let delete = app.delete("/loss/mse").await;
    assert_problem(delete, 405).await;
    let post = app.post_json("/loss", &json!({})).await;
    assert_problem(post, 405).await;
}

#[tokio::test]
async fn non_json_bodies_are_415_and_broken_json_is_400() {
    let app = spawn_app().await;
    let text = app.post_raw("/loss/mse", "text/plain", "{}").await;
    assert_problem(text, 415).await;
    let broken = app
        .post_raw(
            "/loss/mse",
            "application/json",
            b"{\"predictions\": [1,".to_vec(),
        )
        .await;
    assert_problem(broken, 400).await;
}

#[tokio::test]
async fn a_large_request_is_computed_off_the_async_workers() {
    let app = spawn_app().await;
    let n = 100_000;
    let predictions: Vec<f64> = (0..n).map(|i| (i % 100) as f64 / 100.0).collect();
    let targets: Vec<f64> = (0..n).map(|i| ((i / 3) % 2) as f64).collect();
    let out = post_ok(
        &app,
        "bce",
        json!({"predictions": predictions, "targets": targets, "reduction": "sum"}),
    )
    .await;
    assert_eq!(out["gradient"].as_array().map(Vec::len), Some(n));
    assert!(
        out["loss"].as_f64().is_some_and(f64::is_finite),
        "loss is finite"
    );
}

#[tokio::test]
async fn the_openapi_document_describes_every_loss_route_and_error() {
    let app = spawn_app().await;
    let spec = app.openapi().await;
    let post = &spec["paths"]["/loss/{name}"]["post"];
    for status in ["200", "400", "404", "405", "413", "415", "422"] {
        assert!(
            post["responses"].get(status).is_some(),
            "POST /loss/{{name}} lacks {status}"
        );
    }
    assert!(spec["paths"]["/loss"]["get"]["responses"]
        .get("200")
        .is_some());
    assert!(spec["paths"]["/loss/{name}"]["get"]["responses"]
        .get("404")
        .is_some());
    let names = spec["components"]["schemas"]["LossName"]["enum"]
        .as_array()
        .unwrap();
    for name in evald::core::losses::all_names() {
        assert!(names.iter().any(|n| n == name), "LossName lacks {name}");
    }
    let properties = spec["components"]["schemas"]["LossRequest"]["properties"]
        .as_object()
        .unwrap();
    for loss in evald::core::losses::LOSSES {
        for param in evald::api::losses::param_docs(loss.kind) {
            assert!(
                properties.contains_key(param.name),
                "LossRequest lacks {}",
                param.name
            );
        }
    }
}

#[tokio::test]
async fn non_finite_numbers_cannot_arrive_and_cannot_leave() {
    let app = spawn_app().await;
    // JSON has no NaN: that literal is a syntax error (400) ...
    let raw = r#"{"predictions": [1, NaN], "targets": [1, 1]}"#;
    let response = app
        .post_raw("/loss/mse", "application/json", raw.as_bytes().to_vec())
        .await;
    assert_problem(response, 400).await;
    // ... 1e999 is valid JSON whose value is not a finite f64: 422 naming the field ...
    let raw = r#"{"predictions": [1, 1e999], "targets": [1, 1]}"#;
    let response = app
        .post_raw("/loss/mse", "application/json", raw.as_bytes().to_vec())
        .await;
    let problem = assert_problem(response, 422).await;
    assert!(
        problem["field"]
            .as_str()
            .unwrap()
            .starts_with("predictions"),
        "{problem}"
    );
    // ... and a finite input whose loss overflows f64 is a 422, never a null
    let body = json!({"predictions": [1.0, 1e200], "targets": [0.0, -1e200], "reduction": "none"});
    let problem = assert_problem(app.post_loss("mse", &body).await, 422).await;
    assert_detail_contains(&problem, "[1]");
}
