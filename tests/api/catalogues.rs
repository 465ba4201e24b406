//! `GET /loss`, `GET /activation`, `GET /normalize`, `GET /optimizer`: one
//! shape for all four, one entry per name at `GET /{resource}/{name}`.

use serde_json::Value;

use crate::helpers::{assert_ok, assert_problem, spawn_app};

const CATALOGUES: [(&str, &str); 4] = [
    ("/loss", "loss"),
    ("/activation", "activation"),
    ("/normalize", "normalization"),
    ("/optimizer", "optimizer"),
];

#[tokio::test]
async fn every_catalogue_is_a_list_of_entries_with_typed_parameters_and_defaults() {
    let app = spawn_app().await;
    for (path, _) in CATALOGUES {
        let list = app.get_ok(path).await;
        let entries = list
            .as_array()
            .unwrap_or_else(|| panic!("{path}: not a list: {list}"));
        assert!(!entries.is_empty(), "{path}");
        for entry in entries {
            let name = entry["name"]
                .as_str()
                .unwrap_or_else(|| panic!("{path}: {entry}"));
            assert!(entry["aliases"].is_array(), "{path} {name}");
            assert!(
                entry["summary"].as_str().is_some_and(|s| !s.is_empty()),
                "{path} {name}: no summary"
            );
            for p in entry["parameters"]
                .as_array()
                .unwrap_or_else(|| panic!("{path} {name}"))
            {
                assert!(p["name"].is_string(), "{path} {name}: {p}");
                assert!(p["type"].is_string(), "{path} {name}: {p}");
                assert!(p["description"].is_string(), "{path} {name}: {p}");
                assert!(
                    p.get("default").is_some(),
                    "{path} {name}: {p} has no default key"
                );
            }
            // the one-entry route answers the listed entry, for every alias too
            let one = app.get_ok(&format!("{path}/{name}")).await;
            assert_eq!(&one, entry, "{path}/{name}");
            for alias in entry["aliases"].as_array().into_iter().flatten() {
                let alias = alias.as_str().unwrap_or_default();
                assert_eq!(
                    &app.get_ok(&format!("{path}/{alias}")).await,
                    entry,
                    "{path}/{alias}"
                );
            }
        }
    }
}

#[tokio::test]
async fn an_unknown_name_is_a_404_naming_it_and_the_valid_names() {
    let app = spawn_app().await;
    for (path, kind) in CATALOGUES {
        let body: Value =
            assert_problem(app.get(&format!("{path}/no-such-thing")).await, 404).await;
        let detail = body["detail"].as_str().unwrap_or_default();
        assert!(
            detail.contains(&format!("unknown {kind} 'no-such-thing'")),
            "{path}: {body}"
        );
        let first = app.get_ok(path).await[0]["name"].clone();
        assert!(
            body["valid"].as_array().is_some_and(|v| v.contains(&first)),
            "{path}: {body}"
        );
    }
}

#[tokio::test]
async fn the_objectives_of_optimizer_runs_have_their_own_route() {
    let app = spawn_app().await;
    let objectives = assert_ok(app.get("/optimizer/objectives").await).await;
    let logistic = objectives
        .as_array()
        .and_then(|o| o.iter().find(|o| o["name"] == "logistic"))
        .cloned()
        .unwrap_or_default();
    assert!(
        logistic["settings"]
            .as_array()
            .is_some_and(|s| s.iter().any(|s| s == "features")),
        "{objectives}"
    );
}
