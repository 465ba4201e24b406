//! POST /normalize/{kind}, POST /activation/{name} and their catalogues,
//! through the real server: shapes of the answers, edge cases and errors.

use crate::helpers::{
    assert_detail_contains, assert_ok, assert_problem, floats, spawn_app, spawn_app_with, TestApp,
};
use serde_json::{json, Value};

/// POST `body` to `path`, asserting a 200; returns the answer.
async fn ok(app: &TestApp, path: &str, body: Value) -> Value {
    assert_ok(app.post_json(path, &body).await).await
}

#[tokio::test]
async fn batch_norm_returns_output_statistics_and_updated_running_stats() {
    let app = spawn_app().await;
    let body = ok(
        &app,
        "/normalize/batch",
        json!({"input": [[1.0, 10.0], [3.0, 10.0]]}),
    )
    .await;
    assert_eq!(floats(&body["mean"]), vec![2.0, 10.0]);
    assert_eq!(floats(&body["var"]), vec![1.0, 0.0]);
    // Unbiased variance of [1, 3] is 2; default momentum 0.1 from 0 and 1.
    let rv = floats(&body["running_var"]);
    assert!(
        (rv[0] - 1.1).abs() < 1e-12 && (rv[1] - 0.9).abs() < 1e-12,
        "{rv:?}"
    );
    assert_eq!(
        floats(&body["output"])[1],
        0.0,
        "a constant channel maps to beta = 0"
    );
}

#[tokio::test]
async fn batch_norm_in_evaluation_uses_and_keeps_the_running_stats() {
    let app = spawn_app().await;
    let body = ok(
        &app,
        "/normalize/batch",
        json!({"input": [[2.0]], "training": false, "running_mean": [1.0], "running_var": [3.0], "eps": 1.0}),
    )
    .await;
    assert_eq!(floats(&body["output"]), vec![0.5]);
    assert_eq!(floats(&body["running_mean"]), vec![1.0]);
    assert_eq!(floats(&body["mean"]), vec![1.0]);
}

#[tokio::test]
async fn statistics_have_the_documented_shapes() {
    let app = spawn_app().await;
    let x: Vec<Vec<Vec<f64>>> = (0..2)
        .map(|n| {
            (0..4)
                .map(|c| (0..3).map(|s| (n * 12 + c * 3 + s * s) as f64).collect())
                .collect()
        })
        .collect();
    let cases = [
        ("/normalize/layer", json!({"input": x}), json!([2])),
        (
            "/normalize/layer",
            json!({"input": x, "normalized_dims": 1}),
            json!([2, 4]),
        ),
        (
            "/normalize/layer",
            json!({"input": x, "normalized_dims": 3}),
            json!([]),
        ),
        ("/normalize/instance", json!({"input": x}), json!([2, 4])),
        (
            "/normalize/group",
            json!({"input": x, "groups": 2}),
            json!([2, 2]),
        ),
        ("/normalize/batch", json!({"input": x}), json!([4])),
    ];
    for (path, body, shape) in cases {
        let r = ok(&app, path, body).await;
        let mut dims = vec![];
        let mut v = &r["mean"];
        while let Value::Array(a) = v {
            dims.push(a.len());
            v = &a[0];
        }
        assert_eq!(json!(dims), shape, "{path}");
        assert!(
            r.get("running_mean").is_some() == path.ends_with("batch"),
            "{path}"
        );
    }
}

#[tokio::test]
async fn very_large_inputs_normalize_without_overflow_or_precision_loss() {
    let app = spawn_app().await;
    let big = json!([[[1e150, -1e150, 3e150, 1e150]]]);
    let r = ok(&app, "/normalize/layer", json!({"input": big})).await;
    let out = floats(&r["output"]);
    let expected = [0.0, -2f64.sqrt(), 2f64.sqrt(), 0.0];
    for (o, e) in out.iter().zip(expected) {
        assert!((o - e).abs() < 1e-12, "{out:?}");
    }
    let offset = json!([[1e12 + 1.0, 1e12 - 1.0, 1e12 + 1.0, 1e12 - 1.0]]);
    let r = ok(
        &app,
        "/normalize/layer",
        json!({"input": offset, "eps": 1e-12}),
    )
    .await;
    for (o, e) in floats(&r["output"]).iter().zip([1.0, -1.0, 1.0, -1.0]) {
        assert!((o - e).abs() < 1e-9, "{r}");
    }
}

#[tokio::test]
async fn results_too_large_for_f64_are_a_422_not_null() {
    let app = spawn_app().await;
    let r = app
        .post_normalize("layer", &json!({"input": [[1e308, -1e308]]}))
        .await;
    let body = assert_problem(r, 422).await;
    assert_eq!(body["field"], "var");
    let r = app
        .post_activation(
            "leaky_relu",
            &json!({"input": [-1e300], "negative_slope": 1e300}),
        )
        .await;
    let body = assert_problem(r, 422).await;
    assert_eq!(body["field"], "output");
    assert_detail_contains(&body, "at [0]");
}

#[tokio::test]
async fn every_activation_answers_with_output_and_gradient_shaped_like_the_input() {
    let app = spawn_app().await;
    let catalogue = app.activations().await;
    let input = json!([[[-2.0, 0.5], [1.0, 3.0]], [[0.0, -0.25], [4.0, -7.0]]]);
    for entry in catalogue.as_array().expect("array") {
        let name = entry["name"].as_str().expect("name");
        let mut body = json!({"input": input});
        if name == "maxout" {
            body["pieces"] = json!(2);
        }
        let r = ok(&app, &format!("/activation/{name}"), body).await;
        assert_eq!(floats(&r["gradient"]).len(), 8, "{name}");
        let out_len = if name == "maxout" { 4 } else { 8 };
        assert_eq!(floats(&r["output"]).len(), out_len, "{name}");
        assert!(
            entry["formula"].as_str().is_some_and(|f| !f.is_empty()),
            "{name}"
        );
    }
}

#[tokio::test]
async fn catalogue_lists_parameters_with_defaults() {
    let app = spawn_app().await;
    let catalogue = app.activations().await;
    let leaky = catalogue
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "leaky_relu")
        .expect("leaky_relu listed");
    assert_eq!(leaky["parameters"][0]["name"], "negative_slope");
    assert_eq!(leaky["parameters"][0]["default"], 0.01);
    assert_eq!(app.get_ok("/activation/leaky_relu").await, *leaky);
    let kinds = app.get_ok("/normalize").await;
    let names: Vec<&str> = kinds
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|k| k["name"].as_str())
        .collect();
    assert_eq!(names, ["batch", "layer", "instance", "group"]);
    let group = app.get_ok("/normalize/group").await;
    assert_eq!(group["stats_shape"], kinds[3]["stats_shape"], "{group}");
    assert_eq!(group["parameters"], kinds[3]["parameters"], "{group}");
}

#[tokio::test]
async fn rrelu_training_is_reproducible_with_a_seed_and_returns_the_seed() {
    let app = spawn_app().await;
    let input: Vec<f64> = (0..50).map(|i| -1.0 - i as f64).collect();
    let body = json!({"input": input, "training": true, "seed": 42});
    let a = ok(&app, "/activation/rrelu", body.clone()).await;
    let b = ok(&app, "/activation/rrelu", body).await;
    assert_eq!(a, b);
    assert_eq!(a["seed"], 42);
    let slopes = floats(&a["gradient"]);
    assert!(
        slopes.iter().all(|s| (0.125..1.0 / 3.0).contains(s)),
        "{slopes:?}"
    );
    assert!(slopes.windows(2).any(|w| w[0] != w[1]), "slopes are random");
    let fresh = ok(
        &app,
        "/activation/rrelu",
        json!({"input": input, "training": true}),
    )
    .await;
    let seed = fresh["seed"].as_u64().expect("a seed is returned");
    let again = ok(
        &app,
        "/activation/rrelu",
        json!({"input": input, "training": true, "seed": seed}),
    )
    .await;
    assert_eq!(fresh["gradient"], again["gradient"]);
}

#[tokio::test]
async fn prelu_returns_the_weight_gradient_shaped_like_the_weight() {
    let app = spawn_app().await;
    let r = ok(
        &app,
        "/activation/prelu",
        json!({"input": [[-1.0, 2.0], [-3.0, -4.0]], "weight": [0.1, 0.2]}),
    )
    .await;
    assert_eq!(r["weight_gradient"], json!([-4.0, -4.0]));
    let r = ok(
        &app,
        "/activation/prelu",
        json!({"input": [[-1.0, 2.0], [-3.0, -4.0]]}),
    )
    .await;
    assert_eq!(r["weight_gradient"], json!(-8.0));
}

#[tokio::test]
async fn invalid_requests_are_422_naming_the_field() {
    let app = spawn_app().await;
    let cases: Vec<(&str, Value, &str, &str)> = vec![
        (
            "/normalize/batch",
            json!({"input": [[1.0, 2.0, 3.0]]}),
            "input",
            "more than 1 value per channel",
        ),
        (
            "/normalize/batch",
            json!({"input": [[[1.0], [2.0]]]}),
            "input",
            "more than 1 value per channel",
        ),
        (
            "/normalize/batch",
            json!({"input": [[1.0, 2.0], [3.0, 4.0]], "gamma": [1.0, 2.0, 3.0]}),
            "gamma",
            "shape [3] but the input needs shape [2]",
        ),
        (
            "/normalize/batch",
            json!({"input": [[1.0], [2.0]], "running_mean": [0.0]}),
            "running_var",
            "without running_var",
        ),
        (
            "/normalize/batch",
            json!({"input": [[1.0], [2.0]], "running_mean": [0.0], "running_var": [-1.0]}),
            "running_var",
            "running_var[0] is -1",
        ),
        (
            "/normalize/batch",
            json!({"input": [[1.0], [2.0]], "momentum": 1.5}),
            "momentum",
            "[0, 1]",
        ),
        (
            "/normalize/batch",
            json!({"input": [[1.0], [2.0]], "eps": 0.0}),
            "eps",
            "> 0",
        ),
        (
            "/normalize/batch",
            json!({"input": [1.0, 2.0]}),
            "input",
            "needs at least 2",
        ),
        (
            "/normalize/batch",
            json!({"input": [[1.0, 2.0], [3.0]]}),
            "input[1]",
            "ragged nested array at [1]: expected 2 elements, found 1",
        ),
        (
            "/normalize/batch",
            json!({"input": [[1.0], [2.0]], "groups": 2}),
            "groups",
            "does not apply to batch norm",
        ),
        (
            "/normalize/batch",
            json!({"input": [[1.0], [2.0]], "gama": [1.0]}),
            "gama",
            "unknown field",
        ),
        (
            "/normalize/group",
            json!({"input": [[1.0, 2.0, 3.0]], "groups": 2}),
            "groups",
            "divide the 3 channels",
        ),
        (
            "/normalize/group",
            json!({"input": [[1.0, 2.0, 3.0]]}),
            "groups",
            "needs groups",
        ),
        (
            "/normalize/group",
            json!({"input": [[[1.0], [2.0]]], "groups": 2}),
            "input",
            "more than 1 value per channel",
        ),
        (
            "/normalize/instance",
            json!({"input": [[[1.0], [2.0]]]}),
            "input",
            "more than 1 spatial element",
        ),
        (
            "/normalize/layer",
            json!({"input": [[1.0, 2.0]], "normalized_dims": 3}),
            "normalized_dims",
            "between 1 and the input's 2",
        ),
        (
            "/normalize/layer",
            json!({"input": [[[1.0, 2.0]]], "gamma": [1.0]}),
            "gamma",
            "needs shape [1, 2]",
        ),
        (
            "/normalize/layer",
            json!({"input": [[[]]]}),
            "input",
            "zero-length dimension",
        ),
        (
            "/activation/softmax",
            json!({"input": [[1.0, 2.0]], "dim": 2}),
            "dim",
            "-2 <= dim < 2",
        ),
        (
            "/activation/softmax",
            json!({"input": [[1.0, 2.0]], "grad_output": [1.0, 2.0]}),
            "grad_output",
            "shape [2] but the output has shape [1, 2]",
        ),
        (
            "/activation/maxout",
            json!({"input": [[1.0, 2.0, 3.0]], "pieces": 2}),
            "pieces",
            "divide the 3 channels",
        ),
        (
            "/activation/maxout",
            json!({"input": [[1.0, 2.0]]}),
            "pieces",
            "needs pieces",
        ),
        (
            "/activation/maxout",
            json!({"input": [1.0, 2.0], "pieces": 1}),
            "input",
            "at least 2",
        ),
        (
            "/activation/maxout",
            json!({"input": [[1.0, 2.0]], "pieces": 1, "grad_output": [[1.0]]}),
            "grad_output",
            "shape [1, 1]",
        ),
        (
            "/activation/prelu",
            json!({"input": [[1.0, 2.0, 3.0]], "weight": [0.1, 0.2]}),
            "weight",
            "2 elements but expected 1 or the 3 channels",
        ),
        (
            "/activation/prelu",
            json!({"input": [[1.0]], "weight": [[0.1]]}),
            "weight",
            "number or a 1-d array",
        ),
        (
            "/activation/rrelu",
            json!({"input": [1.0], "lower": 0.5, "upper": 0.1}),
            "lower",
            "must not be greater than upper",
        ),
        (
            "/activation/relu",
            json!({"input": [1.0], "alpha": 1.0}),
            "alpha",
            "does not apply to relu; its parameters are: none",
        ),
        (
            "/activation/elu",
            json!({"input": [1.0], "beta": 1.0}),
            "beta",
            "its parameters are: alpha",
        ),
        (
            "/activation/hard_sigmoid",
            json!({"input": [1.0], "variant": "keras3"}),
            "variant",
            "unknown variant",
        ),
        (
            "/activation/gelu",
            json!({"input": [1.0], "approximate": "erf"}),
            "approximate",
            "unknown variant",
        ),
        (
            "/activation/tanh",
            json!({"input": [1.0, "a"]}),
            "input[1]",
            "a number or a nested array",
        ),
        (
            "/activation/tanh",
            json!({}),
            "body",
            "missing field `input`",
        ),
    ];
    for (path, body, field, detail) in cases {
        let response = app.post_json(path, &body).await;
        let problem = assert_problem(response, 422).await;
        assert_eq!(problem["field"], field, "{path} {body}: {problem}");
        let text = problem["detail"].as_str().unwrap_or("");
        assert!(
            text.contains(detail),
            "{path} {body}: detail {text:?} lacks {detail:?}"
        );
    }
}

#[tokio::test]
async fn unknown_names_are_404_listing_the_valid_ones() {
    let app = spawn_app().await;
    let r = app.post_activation("mish", &json!({"input": [1.0]})).await;
    let body = assert_problem(r, 404).await;
    assert!(
        body["valid"]
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v == "hard_swish"),
        "{body}"
    );
    // The name is checked before the body: a bad body still gets the 404.
    let r = app
        .post_raw(
            "/normalize/weight",
            "application/json",
            b"{not json".to_vec(),
        )
        .await;
    let body = assert_problem(r, 404).await;
    assert_eq!(
        body["valid"],
        json!(["batch", "layer", "instance", "group"])
    );
}

#[tokio::test]
async fn wrong_methods_are_405() {
    let app = spawn_app().await;
    // GET describes the entry now (issue #16); DELETE is still no method of theirs
    for path in ["/activation/relu", "/normalize/batch"] {
        assert_problem(app.delete(path).await, 405).await;
    }
    let r = app.delete("/activation").await;
    assert_problem(r, 405).await;
}

#[tokio::test]
async fn bad_json_and_content_type_are_400_and_415() {
    let app = spawn_app().await;
    let r = app
        .post_raw(
            "/activation/relu",
            "application/json",
            b"{\"input\": [1,".to_vec(),
        )
        .await;
    assert_problem(r, 400).await;
    let r = app.post_raw("/normalize/batch", "text/plain", "{}").await;
    assert_problem(r, 415).await;
}

#[tokio::test]
async fn arrays_over_max_array_len_are_refused() {
    let app = spawn_app_with(|c| c.max_array_len = 4).await;
    let r = app
        .post_activation("relu", &json!({"input": [1.0, 2.0, 3.0, 4.0, 5.0]}))
        .await;
    let body = assert_problem(r, 422).await;
    assert_eq!(body["field"], "input");
    assert_detail_contains(&body, "--max-array-len");
    let r = app
        .post_normalize(
            "batch",
            &json!({"input": [[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]}),
        )
        .await;
    assert_problem(r, 422).await;
    ok(
        &app,
        "/activation/relu",
        json!({"input": [1.0, 2.0, 3.0, 4.0]}),
    )
    .await;
}

#[tokio::test]
async fn large_inputs_are_computed_and_match_small_ones() {
    let app = spawn_app().await;
    let input: Vec<f64> = (0..200_000)
        .map(|i| ((i % 97) as f64 - 48.0) / 7.0)
        .collect();
    let r = ok(&app, "/activation/gelu", json!({"input": input})).await;
    let out = floats(&r["output"]);
    assert_eq!(out.len(), 200_000);
    let small = ok(&app, "/activation/gelu", json!({"input": &input[..97]})).await;
    assert_eq!(&out[..97], floats(&small["output"]).as_slice());
}

#[tokio::test]
async fn the_openapi_document_describes_these_routes() {
    let app = spawn_app().await;
    let spec = app.openapi().await;
    for path in [
        "/normalize",
        "/normalize/{kind}",
        "/activation",
        "/activation/{name}",
    ] {
        assert!(
            spec["paths"][path].is_object(),
            "{path} missing from openapi.yaml"
        );
    }
    let names = &spec["paths"]["/activation/{name}"]["post"]["parameters"][0]["schema"]["enum"];
    let catalogue = app.activations().await;
    let listed: Vec<&Value> = catalogue
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["name"])
        .collect();
    assert_eq!(names.as_array().unwrap().iter().collect::<Vec<_>>(), listed);
    for schema in [
        "NormalizeRequest",
        "NormalizeResponse",
        "ActivationRequest",
        "ActivationResponse",
    ] {
        assert!(
            spec["components"]["schemas"][schema].is_object(),
            "{schema}"
        );
    }
}

#[tokio::test]
async fn large_normalizations_run_on_the_blocking_pool_and_agree_with_small_ones() {
    let app = spawn_app().await;
    // 2 x 4 x 100 x 100 = 80,000 values: over the 65,536 inline threshold.
    let big: Vec<Vec<Vec<Vec<f64>>>> = (0..2)
        .map(|n| {
            (0..4)
                .map(|c| {
                    (0..100)
                        .map(|i| {
                            (0..100)
                                .map(|j| ((n * 7 + c * 3 + i * 11 + j * 13) % 17) as f64)
                                .collect()
                        })
                        .collect()
                })
                .collect()
        })
        .collect();
    let r = ok(&app, "/normalize/group", json!({"input": big, "groups": 2})).await;
    assert_eq!(floats(&r["output"]).len(), 80_000);
    // Sample 0, group 0 alone, normalized as a layer over its channels and space.
    let part = json!([[big[0][0], big[0][1]]]);
    let small = ok(&app, "/normalize/layer", json!({"input": part})).await;
    assert!((floats(&small["mean"])[0] - floats(&r["mean"])[0]).abs() < 1e-12);
    let head = &floats(&r["output"])[..20_000];
    for (a, b) in head.iter().zip(floats(&small["output"])) {
        assert!((a - b).abs() < 1e-12);
    }
}
