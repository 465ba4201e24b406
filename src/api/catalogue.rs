//! The one shape of the catalogues `GET /loss`, `GET /activation`,
//! `GET /normalize` and `GET /optimizer`, and of their one-entry routes
//! (`GET /loss/{name}`, ...): a list of [`Entry`], each with its
//! [`Parameter`]s.
//!
//! Clients (the Python client, notebooks building forms) read all four the
//! same way; what only one resource has (a formula, torch's class name)
//! sits beside the common keys. The parameters come from the declarations
//! the routes parse requests with (`param_set!`, `hyperparameter_set!`), so
//! the catalogue cannot drift from what a request takes.

use axum::Json;
use serde::Serialize;
use serde_json::{Map, Value};

use super::error::{ApiError, ApiResult};

/// One parameter of an operation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Parameter {
    pub name: &'static str,
    /// JSON type: "number", "integer", "boolean", "string", "array",
    /// "nested array".
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The value used when the parameter is absent or `null` (`null` when
    /// there is none, e.g. an optional array).
    pub default: Value,
    pub description: &'static str,
    /// The accepted values of a string parameter.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub values: Option<Vec<&'static str>>,
}

/// One operation: its name (and other names it answers to), a one-line
/// summary, its parameters, and details of its resource.
#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    pub name: &'static str,
    /// Other names the routes accept; empty when there are none.
    pub aliases: &'static [&'static str],
    pub summary: &'static str,
    pub parameters: Vec<Parameter>,
    /// Keys only this resource has (`formula`, `gradient`, `torch`, ...).
    #[serde(flatten)]
    pub details: Map<String, Value>,
}

impl Entry {
    /// An entry without aliases or details.
    pub fn new(name: &'static str, summary: &'static str, parameters: Vec<Parameter>) -> Self {
        Entry {
            name,
            aliases: &[],
            summary,
            parameters,
            details: Map::new(),
        }
    }

    /// With `aliases`.
    pub fn aliases(mut self, aliases: &'static [&'static str]) -> Self {
        self.aliases = aliases;
        self
    }

    /// With the detail `key: value`.
    pub fn detail(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.details.insert(key.to_owned(), value.into());
        self
    }

    fn answers_to(&self, name: &str) -> bool {
        self.name == name || self.aliases.contains(&name)
    }
}

/// The entry called `name` (or one of its aliases), or a 404 naming it and
/// listing the valid names; `kind` is the resource ("loss", "activation").
pub fn describe(kind: &str, name: &str, entries: Vec<Entry>) -> ApiResult<Json<Entry>> {
    let valid: Vec<&'static str> = entries
        .iter()
        .flat_map(|e| std::iter::once(e.name).chain(e.aliases.iter().copied()))
        .collect();
    entries
        .into_iter()
        .find(|e| e.answers_to(name))
        .map(Json)
        .ok_or_else(|| ApiError::unknown_name(kind, name, &valid))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_serialize_the_common_keys_beside_their_details() {
        let entry = Entry::new("mse", "mean squared error", vec![])
            .aliases(&["l2"])
            .detail("formula", "l = (p - y)^2");
        let json = serde_json::to_value(&entry).unwrap_or_default();
        assert_eq!(
            json,
            serde_json::json!({"name": "mse", "aliases": ["l2"], "summary": "mean squared error",
                "parameters": [], "formula": "l = (p - y)^2"})
        );
    }

    #[test]
    fn describe_finds_aliases_and_names_an_unknown_entry() {
        let entries = || vec![Entry::new("iou", "s", vec![]).aliases(&["jaccard"])];
        assert_eq!(
            describe("loss", "jaccard", entries())
                .map(|j| j.0.name)
                .ok(),
            Some("iou")
        );
        match describe("loss", "hinge", entries()) {
            Err(e) => assert!(
                e.detail.contains("'hinge'") && e.detail.contains("iou, jaccard"),
                "{}",
                e.detail
            ),
            Ok(j) => panic!("found {}", j.0.name),
        }
    }
}
