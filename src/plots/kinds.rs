//! One chart builder per kind: the metrics core's results in, a [`Chart`]
//! out. Every plotted number is taken as the core computed it (the same
//! value the JSON answer carries); the builders only choose what to show.

use crate::core::metrics::{RocCurve, ScoreHistogram, ThresholdCurve};

use super::{Axis, Chart, Corner, Series, Shape};

/// The chart kinds, as named in the URL (`/plots/{kind}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Roc,
    Scores,
    Thresholds,
}

impl Kind {
    /// Every kind, in the order the documentation lists them.
    pub const ALL: [Kind; 3] = [Kind::Roc, Kind::Scores, Kind::Thresholds];

    /// The URL name.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Roc => "roc",
            Kind::Scores => "scores",
            Kind::Thresholds => "thresholds",
        }
    }

    /// The kind named `name`, if any.
    pub fn from_name(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.name() == name)
    }
}

/// A number as legends print it: 4 decimals, or "undefined".
pub fn number(value: Option<f64>) -> String {
    value.map_or_else(|| "undefined".to_owned(), |v| format!("{v:.4}"))
}

/// The ROC curve of model `name` with its AUC in the legend (`auc_text` is
/// the headline as the caller words it, e.g. `AUC 0.8123`), and the chance
/// diagonal. A curve with an undefined rate (one class only) draws no line.
pub fn roc(name: &str, curve: &RocCurve, auc_text: &str) -> Chart {
    let points = match (&curve.fpr, &curve.tpr) {
        (Some(fpr), Some(tpr)) => vec![fpr.iter().copied().zip(tpr.iter().copied()).collect()],
        _ => Vec::new(),
    };
    Chart {
        title: "ROC curve".to_owned(),
        x: Axis::unit("False positive rate"),
        y: Axis::unit("True positive rate"),
        series: vec![
            Series {
                label: format!("{name} ({auc_text})"),
                shape: Shape::Line(points),
                color: 0,
            },
            chance_diagonal("chance (AUC 0.5)"),
        ],
        legend: Corner::LowerRight,
    }
}

/// The dashed `y = x` line.
pub fn chance_diagonal(label: &str) -> Series {
    Series {
        label: label.to_owned(),
        shape: Shape::Reference(vec![(0.0, 0.0), (1.0, 1.0)]),
        color: 0,
    }
}

/// The score histograms of positives and negatives, overlaid, and the
/// decision threshold when it falls inside the score range.
pub fn scores(histogram: &ScoreHistogram, threshold: f64) -> Chart {
    let bars = |weights: &[f64]| -> Vec<(f64, f64, f64)> {
        histogram
            .edges
            .windows(2)
            .zip(weights)
            .map(|(edge, &w)| (edge[0], edge[1], w))
            .collect()
    };
    let (min, max) = match (histogram.edges.first(), histogram.edges.last()) {
        (Some(&min), Some(&max)) => (min, max),
        _ => (0.0, 1.0),
    };
    let top = histogram
        .pos
        .iter()
        .chain(&histogram.neg)
        .fold(0.0_f64, |a, &b| a.max(b));
    let total = |w: &[f64]| w.iter().sum::<f64>();
    let mut series = vec![
        Series {
            label: format!("negatives (weight {})", total(&histogram.neg)),
            shape: Shape::Bars(bars(&histogram.neg)),
            color: 0,
        },
        Series {
            label: format!("positives (weight {})", total(&histogram.pos)),
            shape: Shape::Bars(bars(&histogram.pos)),
            color: 1,
        },
    ];
    let top = if top > 0.0 { top * 1.1 } else { 1.0 };
    if (min..=max).contains(&threshold) {
        series.push(threshold_line(threshold, 0.0, top));
    }
    Chart {
        title: "Score distribution by class".to_owned(),
        x: Axis {
            label: "Score".to_owned(),
            min,
            max,
        },
        y: Axis {
            label: "Weight (records) per bin".to_owned(),
            min: 0.0,
            max: top,
        },
        series,
        legend: Corner::UpperRight,
    }
}

/// A dashed vertical line at the decision threshold.
fn threshold_line(threshold: f64, y0: f64, y1: f64) -> Series {
    Series {
        label: format!("threshold {threshold}"),
        shape: Shape::Reference(vec![(threshold, y0), (threshold, y1)]),
        color: 0,
    }
}

/// Precision, recall and F-beta against the threshold; the legend's headline
/// is F-beta at the request's threshold (`f_beta_at`, as the JSON answer
/// gives it), marked by a dashed line when it falls inside the score range.
pub fn thresholds(curve: &ThresholdCurve, threshold: f64, f_beta_at: Option<f64>) -> Chart {
    let f_name = if curve.beta == 1.0 {
        "F1".to_owned()
    } else {
        format!("F-beta (beta {})", curve.beta)
    };
    let line = |label: String, values: &[Option<f64>], color: usize| Series {
        label,
        shape: Shape::Line(segments(&curve.thresholds, values)),
        color,
    };
    let (min, max) = match (curve.thresholds.last(), curve.thresholds.first()) {
        (Some(&min), Some(&max)) => (min, max),
        _ => (0.0, 1.0),
    };
    let mut series = vec![
        line("precision".to_owned(), &curve.precision, 0),
        line("recall".to_owned(), &curve.recall, 1),
        line(
            format!("{f_name} ({f_name} {} at {threshold})", number(f_beta_at)),
            &curve.f_beta,
            2,
        ),
    ];
    if (min..=max).contains(&threshold) {
        series.push(threshold_line(threshold, 0.0, 1.0));
    }
    Chart {
        title: format!("Precision, recall and {f_name} by threshold"),
        x: Axis {
            label: "Threshold (predict positive when score >= threshold)".to_owned(),
            min,
            max,
        },
        y: Axis::unit("Rate"),
        series,
        legend: Corner::LowerLeft,
    }
}

/// `(x, y)` runs where `y` is defined: an undefined value breaks the line
/// instead of being drawn as 0.
pub fn segments(xs: &[f64], ys: &[Option<f64>]) -> Vec<Vec<(f64, f64)>> {
    let mut out: Vec<Vec<(f64, f64)>> = Vec::new();
    let mut current = Vec::new();
    for (&x, y) in xs.iter().zip(ys) {
        match y {
            Some(y) => current.push((x, *y)),
            None if !current.is_empty() => out.push(std::mem::take(&mut current)),
            None => {}
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::metrics::{roc_curve, score_histogram, threshold_curve, ScoreTable};
    use crate::plots::{render, Size};

    const SIZE: Size = Size {
        width: 720,
        height: 480,
    };

    fn table() -> ScoreTable {
        ScoreTable::from_records(
            &[0.9, 0.8, 0.7, 0.6, 0.4, 0.3, 0.2, 0.1],
            &[true, true, false, true, false, true, false, false],
            None,
        )
        .unwrap()
    }

    /// Parses `svg` and returns its `<text>` contents and the point counts of
    /// its polylines stroked in `color` (`#RRGGBB`).
    fn parse(svg: &str, color: &str) -> (Vec<String>, Vec<usize>) {
        let doc = roxmltree::Document::parse(svg).expect("the SVG is XML");
        let texts = doc
            .descendants()
            .filter(|n| n.has_tag_name("text"))
            .filter_map(|n| n.text().map(|t| t.trim().to_owned()))
            .collect();
        let lines = doc
            .descendants()
            .filter(|n| n.has_tag_name("polyline") && n.attribute("stroke") == Some(color))
            .map(|n| {
                n.attribute("points")
                    .unwrap_or("")
                    .split_whitespace()
                    .count()
            })
            .collect();
        (texts, lines)
    }

    const BLUE: &str = "#1F77B4";
    const ORANGE: &str = "#FF7F0E";
    const GREEN: &str = "#2CA02C";

    #[test]
    fn the_roc_chart_plots_the_curve_points_and_the_auc() {
        let curve = roc_curve(&table(), true);
        let chart = roc("model", &curve, "AUC 0.7500");
        let Shape::Line(lines) = &chart.series[0].shape else {
            panic!("the ROC series is a line");
        };
        let expected: Vec<(f64, f64)> = curve
            .fpr
            .clone()
            .unwrap()
            .into_iter()
            .zip(curve.tpr.clone().unwrap())
            .collect();
        assert_eq!(lines, &vec![expected]);
        let (texts, polylines) = parse(&render(&chart, SIZE).unwrap(), BLUE);
        assert_eq!(polylines, vec![curve.len(), 2]);
        for t in [
            "ROC curve",
            "False positive rate",
            "True positive rate",
            "model (AUC 0.7500)",
            "chance (AUC 0.5)",
        ] {
            assert!(texts.iter().any(|s| s == t), "{t} in {texts:?}");
        }
    }

    #[test]
    fn one_class_draws_no_roc_line() {
        let t = ScoreTable::from_records(&[0.2, 0.1], &[true, true], None).unwrap();
        let chart = roc("model", &roc_curve(&t, true), "AUC undefined");
        assert_eq!(chart.series[0].shape, Shape::Line(Vec::new()));
        assert!(roxmltree::Document::parse(&render(&chart, SIZE).unwrap()).is_ok());
    }

    #[test]
    fn the_scores_chart_has_a_bar_per_non_empty_bin_of_each_class() {
        let h = score_histogram(&table(), 4);
        let chart = scores(&h, 0.5);
        let svg = render(&chart, SIZE).unwrap();
        let doc = roxmltree::Document::parse(&svg).unwrap();
        let bars = |color: &str| {
            doc.descendants()
                .filter(|n| n.has_tag_name("rect") && n.attribute("fill") == Some(color))
                .count()
        };
        let non_empty = |w: &[f64]| w.iter().filter(|&&w| w > 0.0).count();
        // one rectangle per non-empty bin plus the legend sample
        assert_eq!(bars(BLUE), non_empty(&h.neg) + 1);
        assert_eq!(bars(ORANGE), non_empty(&h.pos) + 1);
        let (texts, _) = parse(&svg, BLUE);
        for t in [
            "Score distribution by class",
            "Score",
            "Weight (records) per bin",
            "negatives (weight 4)",
            "positives (weight 4)",
            "threshold 0.5",
        ] {
            assert!(texts.iter().any(|s| s == t), "{t} in {texts:?}");
        }
    }

    #[test]
    fn the_thresholds_chart_draws_three_rates_at_every_threshold() {
        let curve = threshold_curve(&table(), 1.0, None);
        let chart = thresholds(&curve, 0.5, Some(0.75));
        let svg = render(&chart, SIZE).unwrap();
        for color in [BLUE, ORANGE, GREEN] {
            let (_, lines) = parse(&svg, color);
            assert_eq!(lines, vec![curve.thresholds.len(), 2], "{color}");
        }
        let (texts, _) = parse(&svg, BLUE);
        for t in [
            "Precision, recall and F1 by threshold",
            "precision",
            "recall",
            "F1 (F1 0.7500 at 0.5)",
            "Rate",
        ] {
            assert!(texts.iter().any(|s| s == t), "{t} in {texts:?}");
        }
    }

    #[test]
    fn undefined_values_break_the_line() {
        let xs = [3.0, 2.0, 1.0, 0.0];
        let ys = [None, Some(0.5), None, Some(1.0)];
        assert_eq!(segments(&xs, &ys), vec![vec![(2.0, 0.5)], vec![(0.0, 1.0)]]);
    }

    #[test]
    fn kinds_round_trip_their_names() {
        for kind in Kind::ALL {
            assert_eq!(Kind::from_name(kind.name()), Some(kind));
        }
        assert_eq!(Kind::from_name("pie"), None);
    }
}
