//! Comparisons of numbers and of JSON answers; each states its tolerance.

use serde_json::Value;

/// How close a computed number must be to the expected one.
#[derive(Debug, Clone, Copy)]
pub enum Tolerance {
    /// `|ours - expected| <= eps`: for values of order 1.
    Absolute(f64),
    /// `|ours - expected| <= eps * max(1, |expected|)`: absolute up to
    /// magnitude 1, relative above (fixtures with values up to 1e240).
    Scaled(f64),
    /// `ours == expected` or `|ours - expected| <= eps * |expected|` (with
    /// |expected| floored at 1e-300): relative at every magnitude, for
    /// comparing two implementations of the same formula.
    Relative(f64),
}

impl Tolerance {
    /// Whether `ours` is close enough to `expected`.
    pub fn accepts(self, ours: f64, expected: f64) -> bool {
        match self {
            Tolerance::Absolute(eps) => (ours - expected).abs() <= eps,
            Tolerance::Scaled(eps) => (ours - expected).abs() <= eps * expected.abs().max(1.0),
            Tolerance::Relative(eps) => {
                ours == expected || (ours - expected).abs() <= eps * expected.abs().max(1e-300)
            }
        }
    }
}

/// Every number of a JSON number or (nested) array, in order; anything else
/// fails the test.
pub fn floats(v: &Value) -> Vec<f64> {
    match v {
        Value::Array(a) => a.iter().flat_map(floats).collect(),
        Value::Number(n) => vec![n.as_f64().expect("f64")],
        other => panic!("not a number: {other}"),
    }
}

/// Asserts `ours` has the length of `expected` and each element is within
/// `tolerance` of its counterpart; `what` names the values in a failure.
pub fn assert_close(what: &str, ours: &[f64], expected: &[f64], tolerance: Tolerance) {
    assert_eq!(ours.len(), expected.len(), "{what}: length");
    for (i, (a, b)) in ours.iter().zip(expected).enumerate() {
        assert!(
            tolerance.accepts(*a, *b),
            "{what}[{i}]: {a:e} vs expected {b:e} ({tolerance:?})"
        );
    }
}

/// Compares numbers and arrays of numbers (any nesting, so shapes must
/// agree): each number within `tolerance`; anything else is a mismatch.
/// Returns the first mismatch as a sentence naming its `path`, so a caller
/// can collect every failing case before failing.
pub fn numbers_within(
    actual: &Value,
    expected: &Value,
    tolerance: Tolerance,
    path: &str,
) -> Result<(), String> {
    match (actual, expected) {
        (Value::Array(a), Value::Array(e)) => {
            if a.len() != e.len() {
                return Err(format!(
                    "{path}: length {} but expected {}",
                    a.len(),
                    e.len()
                ));
            }
            a.iter().zip(e).enumerate().try_for_each(|(i, (a, e))| {
                numbers_within(a, e, tolerance, &format!("{path}[{i}]"))
            })
        }
        (Value::Number(a), Value::Number(e)) => {
            let (a, e) = (
                a.as_f64().unwrap_or(f64::NAN),
                e.as_f64().unwrap_or(f64::NAN),
            );
            if tolerance.accepts(a, e) {
                Ok(())
            } else {
                Err(format!(
                    "{path}: got {a:e}, expected {e:e} (diff {:e})",
                    (a - e).abs()
                ))
            }
        }
        _ => Err(format!("{path}: got {actual}, expected {expected}")),
    }
}

/// Asserts `actual` contains `expected`: every key of `expected` (extra keys
/// of `actual` are allowed), numbers within `tolerance`, everything else
/// (null, strings, booleans) exactly; `path` names the place of a mismatch.
pub fn assert_json_contains(expected: &Value, actual: &Value, tolerance: Tolerance, path: &str) {
    match (expected, actual) {
        (Value::Object(e), Value::Object(a)) => {
            for (k, ev) in e {
                let av = a
                    .get(k)
                    .unwrap_or_else(|| panic!("{path}.{k} missing in {actual}"));
                assert_json_contains(ev, av, tolerance, &format!("{path}.{k}"));
            }
        }
        (Value::Array(e), Value::Array(a)) => {
            assert_eq!(e.len(), a.len(), "{path}: length differs");
            for (i, (ev, av)) in e.iter().zip(a).enumerate() {
                assert_json_contains(ev, av, tolerance, &format!("{path}[{i}]"));
            }
        }
        (Value::Number(e), Value::Number(a)) => {
            let (e, a) = (
                e.as_f64().unwrap_or(f64::NAN),
                a.as_f64().unwrap_or(f64::NAN),
            );
            assert!(tolerance.accepts(a, e), "{path}: expected {e}, got {a}");
        }
        _ => assert_eq!(expected, actual, "{path}"),
    }
}

/// Fields a stream response adds to the one-shot `POST /metrics` response.
pub const STREAM_ONLY_FIELDS: [&str; 5] = [
    "stream",
    "user_id",
    "auc_error_bound",
    "confusion_error_bound",
    "gauc_error_bound",
];

/// Asserts a stream response equals a one-shot response: the same keys (but
/// [`STREAM_ONLY_FIELDS`]) and numbers within 1e-12 (only the order of
/// floating-point weight sums differs).
pub fn assert_matches_one_shot(stream: &Value, one_shot: &Value, path: &str) {
    match (stream, one_shot) {
        (Value::Number(x), Value::Number(y)) => {
            let (x, y) = (
                x.as_f64().unwrap_or(f64::NAN),
                y.as_f64().unwrap_or(f64::NAN),
            );
            assert!(
                Tolerance::Absolute(1e-12).accepts(x, y),
                "{path}: {x} vs {y}"
            );
        }
        (Value::Array(x), Value::Array(y)) => {
            assert_eq!(x.len(), y.len(), "{path}: lengths differ");
            for (i, (u, v)) in x.iter().zip(y).enumerate() {
                assert_matches_one_shot(u, v, &format!("{path}[{i}]"));
            }
        }
        (Value::Object(x), Value::Object(y)) => {
            let keys = |m: &serde_json::Map<String, Value>| {
                let mut k: Vec<String> = m
                    .keys()
                    .filter(|k| !STREAM_ONLY_FIELDS.contains(&k.as_str()))
                    .cloned()
                    .collect();
                k.sort();
                k
            };
            assert_eq!(keys(x), keys(y), "{path}: keys differ");
            for k in keys(x) {
                assert_matches_one_shot(&x[&k], &y[&k], &format!("{path}.{k}"));
            }
        }
        _ => assert_eq!(stream, one_shot, "{path}"),
    }
}
