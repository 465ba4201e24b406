//! One chart builder per kind: the metrics core's results in, a [`Chart`]
//! out. Every plotted number is taken as the core computed it (the same
//! value the JSON answer carries); the builders only choose what to show.
//! The curve kinds take several [`Curve`]s, so one builder draws a single
//! model and a comparison.

use crate::core::metrics::calibration::Calibration;
use crate::core::metrics::pr::PrCurve;
use crate::core::metrics::threshold::ThresholdRow;
use crate::core::metrics::{RocCurve, ScoreHistogram};

use super::{Axis, Chart, Corner, Series, Shape};

/// The chart kinds, as named in the URL (`/plots/{kind}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Roc,
    Pr,
    Calibration,
    Scores,
    Thresholds,
}

impl Kind {
    /// Every kind, in the order the documentation lists them.
    pub const ALL: [Kind; 5] = [
        Kind::Roc,
        Kind::Pr,
        Kind::Calibration,
        Kind::Scores,
        Kind::Thresholds,
    ];

    /// The kinds that draw one curve per model, so two models fit one chart.
    pub const CURVES: [Kind; 3] = [Kind::Roc, Kind::Pr, Kind::Calibration];

    /// The URL name.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Roc => "roc",
            Kind::Pr => "pr",
            Kind::Calibration => "calibration",
            Kind::Scores => "scores",
            Kind::Thresholds => "thresholds",
        }
    }

    /// The kind named `name` among `kinds`, if any.
    pub fn from_name(name: &str, kinds: &[Kind]) -> Option<Kind> {
        kinds.iter().copied().find(|k| k.name() == name)
    }
}

/// A number as legends print it: 4 decimals, or "undefined".
pub fn number(value: Option<f64>) -> String {
    value.map_or_else(|| "undefined".to_owned(), |v| format!("{v:.4}"))
}

/// A p-value as titles print it: `p 0.0312`, `p < 0.0001`, or "p undefined".
pub fn p_value(p: Option<f64>) -> String {
    match p {
        Some(p) if p < 1e-4 => "p < 0.0001".to_owned(),
        other => format!("p {}", number(other)),
    }
}

/// One model's curve: its legend name and headline (`AUC 0.8123 ...`), and
/// its points (empty when the curve is undefined).
#[derive(Debug, Clone, PartialEq)]
pub struct Curve {
    pub name: String,
    pub headline: String,
    pub points: Vec<(f64, f64)>,
}

impl Curve {
    fn series(&self, color: usize) -> Series {
        let points = if self.points.is_empty() {
            Vec::new()
        } else {
            vec![self.points.clone()]
        };
        Series {
            label: format!("{} ({})", self.name, self.headline),
            shape: Shape::Line(points),
            color,
        }
    }
}

/// `(fpr, tpr)` of an ROC curve; empty when a rate is undefined (one class).
pub fn roc_points(curve: &RocCurve) -> Vec<(f64, f64)> {
    match (&curve.fpr, &curve.tpr) {
        (Some(fpr), Some(tpr)) => fpr.iter().copied().zip(tpr.iter().copied()).collect(),
        _ => Vec::new(),
    }
}

/// `(recall, precision)` of a PR curve; empty when undefined (no positive).
pub fn pr_points(curve: Option<&PrCurve>) -> Vec<(f64, f64)> {
    curve.map_or_else(Vec::new, |c| {
        c.recall
            .iter()
            .copied()
            .zip(c.precision.iter().copied())
            .collect()
    })
}

/// `(prob_pred, prob_true)` of the non-empty calibration bins; empty when
/// the predictions are not probabilities.
pub fn calibration_points(curve: Option<&Calibration>) -> Vec<(f64, f64)> {
    curve.map_or_else(Vec::new, |c| {
        c.prob_pred
            .iter()
            .copied()
            .zip(c.prob_true.iter().copied())
            .collect()
    })
}

/// ROC curves with the chance diagonal.
pub fn roc(curves: &[Curve]) -> Chart {
    let mut series: Vec<Series> = curves
        .iter()
        .enumerate()
        .map(|(i, c)| c.series(i))
        .collect();
    series.push(diagonal("chance (AUC 0.5)"));
    Chart {
        title: "ROC curve".to_owned(),
        x: Axis::unit("False positive rate"),
        y: Axis::unit("True positive rate"),
        series,
        legend: Corner::LowerRight,
    }
}

/// Precision-recall curves with the chance level, the fraction of positive
/// weight (`prevalence`), when it is defined.
pub fn pr(curves: &[Curve], prevalence: Option<f64>) -> Chart {
    let mut series: Vec<Series> = curves
        .iter()
        .enumerate()
        .map(|(i, c)| c.series(i))
        .collect();
    if let Some(p) = prevalence {
        series.push(Series {
            label: format!("chance (precision {p:.4}, the positive rate)"),
            shape: Shape::Reference(vec![(0.0, p), (1.0, p)]),
            color: 0,
        });
    }
    Chart {
        title: "Precision-recall curve".to_owned(),
        x: Axis::unit("Recall"),
        y: Axis::unit("Precision"),
        series,
        legend: Corner::LowerLeft,
    }
}

/// Calibration curves (reliability diagram) with the diagonal of perfect
/// calibration.
pub fn calibration(curves: &[Curve]) -> Chart {
    let mut series: Vec<Series> = curves
        .iter()
        .enumerate()
        .map(|(i, c)| c.series(i))
        .collect();
    series.push(diagonal("perfectly calibrated"));
    Chart {
        title: "Calibration (reliability) curve".to_owned(),
        x: Axis::unit("Mean predicted probability (per bin)"),
        y: Axis::unit("Fraction of positives (per bin)"),
        series,
        legend: Corner::UpperLeft,
    }
}

/// The dashed `y = x` line.
fn diagonal(label: &str) -> Series {
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

/// Precision, recall and F-beta against the threshold (`rows` in descending
/// threshold order); the legend's headline is F-beta at the request's
/// threshold (`f_beta_at`, as the JSON answer gives it), marked by a dashed
/// line when it falls inside the plotted range.
pub fn thresholds(
    rows: &[ThresholdRow],
    beta: f64,
    threshold: f64,
    f_beta_at: Option<f64>,
) -> Chart {
    let f_name = if beta == 1.0 {
        "F1".to_owned()
    } else {
        format!("F-beta (beta {beta})")
    };
    let xs: Vec<f64> = rows.iter().map(|r| r.threshold).collect();
    let line = |label: String, value: fn(&ThresholdRow) -> Option<f64>, color: usize| {
        let ys: Vec<Option<f64>> = rows.iter().map(value).collect();
        Series {
            label,
            shape: Shape::Line(segments(&xs, &ys)),
            color,
        }
    };
    let (min, max) = match (xs.last(), xs.first()) {
        (Some(&min), Some(&max)) => (min, max),
        _ => (0.0, 1.0),
    };
    let mut series = vec![
        line("precision".to_owned(), |r| r.precision, 0),
        line("recall".to_owned(), |r| r.recall, 1),
        line(
            format!("{f_name} ({f_name} {} at {threshold})", number(f_beta_at)),
            |r| r.f_beta,
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
    use crate::core::metrics::calibration::calibration as calibration_curve;
    use crate::core::metrics::pr::pr_curve;
    use crate::core::metrics::threshold::at_thresholds;
    use crate::core::metrics::{roc_curve, score_histogram, BinStrategy, ScoreTable};
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

    fn assert_texts(texts: &[String], expected: &[&str]) {
        for t in expected {
            assert!(texts.iter().any(|s| s == t), "{t} in {texts:?}");
        }
    }

    const BLUE: &str = "#1F77B4";
    const ORANGE: &str = "#FF7F0E";
    const GREEN: &str = "#2CA02C";

    fn curve(name: &str, headline: &str, points: Vec<(f64, f64)>) -> Curve {
        Curve {
            name: name.to_owned(),
            headline: headline.to_owned(),
            points,
        }
    }

    #[test]
    fn the_roc_chart_plots_the_curve_points_and_the_auc() {
        let roc_data = roc_curve(&table(), true);
        let points = roc_points(&roc_data);
        assert_eq!(points.len(), roc_data.len());
        let chart = roc(&[curve("model", "AUC 0.7500", points.clone())]);
        assert_eq!(chart.series[0].shape, Shape::Line(vec![points]));
        let (texts, polylines) = parse(&render(&chart, SIZE).unwrap(), BLUE);
        assert_eq!(polylines, vec![roc_data.len(), 2]);
        assert_texts(
            &texts,
            &[
                "ROC curve",
                "False positive rate",
                "True positive rate",
                "model (AUC 0.7500)",
                "chance (AUC 0.5)",
            ],
        );
    }

    #[test]
    fn two_models_get_two_colours_and_two_legend_entries() {
        let t = table();
        let pr_data = pr_curve(&t, false, None);
        let points = pr_points(pr_data.as_ref());
        let chart = pr(
            &[
                curve("a", "AP 0.8", points.clone()),
                curve("b", "AP 0.7", points.clone()),
            ],
            Some(0.5),
        );
        let svg = render(&chart, SIZE).unwrap();
        let (texts, blue) = parse(&svg, BLUE);
        let (_, orange) = parse(&svg, ORANGE);
        assert_eq!(blue, vec![points.len(), 2]);
        assert_eq!(orange, vec![points.len(), 2]);
        assert_texts(
            &texts,
            &[
                "Precision-recall curve",
                "Recall",
                "Precision",
                "a (AP 0.8)",
                "b (AP 0.7)",
                "chance (precision 0.5000, the positive rate)",
            ],
        );
    }

    #[test]
    fn the_calibration_chart_plots_one_point_per_non_empty_bin() {
        let c = calibration_curve(&table(), 5, BinStrategy::Uniform).unwrap();
        let points = calibration_points(Some(&c));
        assert_eq!(points.len(), c.prob_true.len());
        let chart = calibration(&[curve("model", "ECE 0.1000", points.clone())]);
        let (texts, lines) = parse(&render(&chart, SIZE).unwrap(), BLUE);
        assert_eq!(lines, vec![points.len(), 2]);
        assert_texts(
            &texts,
            &[
                "Calibration (reliability) curve",
                "Mean predicted probability (per bin)",
                "Fraction of positives (per bin)",
                "model (ECE 0.1000)",
                "perfectly calibrated",
            ],
        );
    }

    #[test]
    fn an_undefined_curve_draws_no_line() {
        let t = ScoreTable::from_records(&[0.2, 0.1], &[true, true], None).unwrap();
        let chart = roc(&[curve(
            "model",
            "AUC undefined",
            roc_points(&roc_curve(&t, true)),
        )]);
        assert_eq!(chart.series[0].shape, Shape::Line(Vec::new()));
        assert!(roxmltree::Document::parse(&render(&chart, SIZE).unwrap()).is_ok());
    }

    #[test]
    fn the_scores_chart_has_a_bar_per_non_empty_bin_of_each_class() {
        let h = score_histogram(&table(), 4);
        let svg = render(&scores(&h, 0.5), SIZE).unwrap();
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
        assert_texts(
            &texts,
            &[
                "Score distribution by class",
                "Score",
                "Weight (records) per bin",
                "negatives (weight 4)",
                "positives (weight 4)",
                "threshold 0.5",
            ],
        );
    }

    #[test]
    fn the_thresholds_chart_draws_three_rates_at_every_threshold() {
        let t = table();
        let rows = at_thresholds(&t, t.scores(), 1.0);
        let svg = render(&thresholds(&rows, 1.0, 0.5, Some(0.75)), SIZE).unwrap();
        for color in [BLUE, ORANGE, GREEN] {
            let (_, lines) = parse(&svg, color);
            assert_eq!(lines, vec![rows.len(), 2], "{color}");
        }
        let (texts, _) = parse(&svg, BLUE);
        assert_texts(
            &texts,
            &[
                "Precision, recall and F1 by threshold",
                "precision",
                "recall",
                "F1 (F1 0.7500 at 0.5)",
                "Rate",
            ],
        );
    }

    #[test]
    fn undefined_values_break_the_line() {
        let xs = [3.0, 2.0, 1.0, 0.0];
        let ys = [None, Some(0.5), None, Some(1.0)];
        assert_eq!(segments(&xs, &ys), vec![vec![(2.0, 0.5)], vec![(0.0, 1.0)]]);
    }

    #[test]
    fn small_p_values_are_not_printed_as_zero() {
        assert_eq!(p_value(Some(3e-9)), "p < 0.0001");
        assert_eq!(p_value(Some(0.0312)), "p 0.0312");
        assert_eq!(p_value(None), "p undefined");
    }

    #[test]
    fn kinds_round_trip_their_names() {
        for kind in Kind::ALL {
            assert_eq!(Kind::from_name(kind.name(), &Kind::ALL), Some(kind));
        }
        assert_eq!(Kind::from_name("pie", &Kind::ALL), None);
        assert_eq!(Kind::from_name("scores", &Kind::CURVES), None);
    }
}
