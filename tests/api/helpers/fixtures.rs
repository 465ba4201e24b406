//! The committed reference fixtures in `tests/fixtures/`, written by the
//! `gen_*.py` scripts beside them (README names the reference library and
//! version of each).

use serde_json::Value;

/// The whole fixture document `tests/fixtures/{file}`.
pub fn fixture(file: &str) -> Value {
    let path = format!("{}/tests/fixtures/{file}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("fixture {path} is committed: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("fixture {path} is JSON: {e}"))
}

/// The `cases` array of the fixture document `tests/fixtures/{file}`.
pub fn fixture_cases(file: &str) -> Vec<Value> {
    fixture(file)["cases"]
        .as_array()
        .cloned()
        .unwrap_or_else(|| panic!("fixture {file} has a cases array"))
}
