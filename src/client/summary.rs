//! The short table `evald push` prints at the end: what was pushed and the
//! stream's headline metrics. The full answer (ROC curve included, often
//! thousands of lines) is what `--json` is for.
//!
//! The table reads the metrics answer as JSON by key, so a field the server
//! adds later does not break it and one it does not send shows as `-`.

use serde_json::Value;

use super::push::Applied;

/// The summary table of a push: `applied`, then the stream's metrics
/// (`GET /streams/{name}/metrics`).
pub fn table(applied: &Applied, metrics: &Value) -> String {
    let number = |key: &str| show(metrics.get(key));
    let gauc = metrics.get("gauc").filter(|g| !g.is_null());
    let mut rows: Vec<(&str, String)> = vec![
        ("stream", applied.stream.clone()),
        (
            "pushed",
            format!(
                "{} records in {} request(s)",
                applied.accepted, applied.requests
            ),
        ),
        (
            "count",
            format!(
                "{} ({} positives, {} negatives)",
                number("count"),
                number("positives"),
                number("negatives")
            ),
        ),
        ("users", applied.users.to_string()),
        ("auc", number("auc")),
        (
            "gauc",
            match gauc {
                Some(g) => format!(
                    "{} over {} users",
                    show(g.get("value")),
                    show(g.get("users"))
                ),
                None => "-".to_owned(),
            },
        ),
    ];
    let threshold = number("threshold");
    for key in ["accuracy", "precision", "recall", "f1"] {
        rows.push((key, format!("{} at threshold {threshold}", number(key))));
    }
    let warnings: Vec<&str> = metrics
        .get("warnings")
        .and_then(Value::as_array)
        .map(|w| w.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    for warning in warnings {
        rows.push(("warning", warning.to_owned()));
    }
    let mut out: String = rows.iter().map(|(k, v)| format!("{k:<10} {v}\n")).collect();
    out.push_str("(--json prints the full answer, ROC curve included)");
    out
}

/// A number with at most 6 decimals, an integer as is, `-` for
/// null or absent.
fn show(value: Option<&Value>) -> String {
    match value {
        Some(Value::Number(n)) if n.is_f64() => {
            let x = n.as_f64().unwrap_or_default();
            let text = format!("{x:.6}");
            let text = text.trim_end_matches('0');
            text.strip_suffix('.').unwrap_or(text).to_owned()
        }
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::String(s)) => s.clone(),
        _ => "-".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_table_has_the_headline_metrics_and_dashes_for_missing_ones() {
        let applied = Applied {
            stream: "ctr".into(),
            accepted: 4,
            count: 4,
            users: 2,
            requests: 1,
            ..Applied::default()
        };
        let metrics = json!({"count": 4, "positives": 2, "negatives": 2, "auc": 0.75,
            "threshold": 0.5, "accuracy": 0.5, "precision": null, "gauc": {"value": 1.0, "users": 2},
            "warnings": ["w1"], "roc": {"fpr": [0.0, 1.0]}});
        let text = table(&applied, &metrics);
        for needle in [
            "stream     ctr\n",
            "pushed     4 records in 1 request(s)\n",
            "count      4 (2 positives, 2 negatives)\n",
            "auc        0.75\n",
            "gauc       1 over 2 users\n",
            "precision  - at threshold 0.5\n",
            "warning    w1\n",
        ] {
            assert!(text.contains(needle), "{needle:?} not in\n{text}");
        }
        assert!(!text.contains("fpr"), "{text}");
        assert!(text.lines().count() < 20, "{text}");
    }
}
