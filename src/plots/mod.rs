//! SVG charts drawn by the server from plain data (no HTTP here).
//!
//! # Layout
//!
//! - this module: the chart description ([`Chart`]: title, axes, series) and
//!   [`render`], which draws it with `plotters`' SVG backend.
//! - [`kinds`]: one builder per chart kind (`roc`, `scores`, `thresholds`,
//!   ...), turning the metrics core's results into a [`Chart`].
//!
//! Why a description between the numbers and the drawing: the builders decide
//! *what* is shown (which points, which legend text) and can be tested on
//! their data, while [`render`] decides only *how*; a plotted point is the
//! value the JSON answer carries, never a second computation of it.

use std::fmt;

use plotters::coord::Shift;
use plotters::prelude::*;

pub mod kinds;

/// A chart: a title, two axes and the series drawn on them, first drawn
/// first (so later series sit on top).
#[derive(Debug, Clone, PartialEq)]
pub struct Chart {
    pub title: String,
    pub x: Axis,
    pub y: Axis,
    pub series: Vec<Series>,
    /// Corner of the plot where the legend goes (where the data rarely is).
    pub legend: Corner,
}

/// An axis: its label and the data range it shows.
#[derive(Debug, Clone, PartialEq)]
pub struct Axis {
    pub label: String,
    pub min: f64,
    pub max: f64,
}

impl Axis {
    /// The unit interval, for rates and probabilities.
    pub fn unit(label: &str) -> Self {
        Axis {
            label: label.to_owned(),
            min: 0.0,
            max: 1.0,
        }
    }
}

/// Legend placement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Corner {
    UpperLeft,
    UpperRight,
    LowerLeft,
    LowerRight,
}

/// One legend entry and what it draws.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Legend text; an empty label has no legend entry.
    pub label: String,
    pub shape: Shape,
    /// Index into the palette ([`PALETTE`]); reference lines are grey.
    pub color: usize,
}

/// What a series draws.
#[derive(Debug, Clone, PartialEq)]
pub enum Shape {
    /// Solid polylines, one per segment (a gap where the value is undefined).
    Line(Vec<Vec<(f64, f64)>>),
    /// A dashed grey line: chance, the diagonal, a chosen threshold.
    Reference(Vec<(f64, f64)>),
    /// Filled bars `(x_from, x_to, height)`, half transparent so two
    /// histograms can overlap.
    Bars(Vec<(f64, f64, f64)>),
}

/// Series colours (the matplotlib "tab10" start: distinct for colour-blind
/// readers in the first four).
pub const PALETTE: [RGBColor; 5] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
];

/// Colour of reference lines.
const REFERENCE: RGBColor = RGBColor(128, 128, 128);

/// Pixel size of the drawing, checked by the caller (the HTTP layer bounds
/// it; see `api::plots`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Size {
    pub width: u32,
    pub height: u32,
}

/// Drawing failed (plotters reports backend errors; the SVG backend writes
/// to a string, so this means a bug rather than bad input).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlotError(pub String);

impl fmt::Display for PlotError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "drawing the chart failed: {}", self.0)
    }
}

impl std::error::Error for PlotError {}

fn failed(err: impl fmt::Debug) -> PlotError {
    PlotError(format!("{err:?}"))
}

/// Font sizes in pixels: title, axis labels, ticks and legend.
const TITLE_PX: u32 = 20;
const LABEL_PX: u32 = 15;
const TICK_PX: u32 = 13;

/// Draws `chart` as an SVG document of `size` pixels.
///
/// # Errors
/// [`PlotError`] when plotters fails to draw (not expected: the target is an
/// in-memory string and every range is made non-empty here).
pub fn render(chart: &Chart, size: Size) -> Result<String, PlotError> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (size.width, size.height)).into_drawing_area();
        root.fill(&WHITE).map_err(failed)?;
        draw(&root, chart)?;
        root.present().map_err(failed)?;
    }
    Ok(svg)
}

/// The axis ends at most this far from zero, so its width stays finite
/// (values beyond it land at most 4x the plot's size away).
const AXIS_LIMIT: f64 = f64::MAX / 4.0;
/// The narrowest axis, relative to the largest magnitude it shows.
const RELATIVE_WIDTH: f64 = 1e-9;

/// A range plotters can map: finite, and widened when empty or too narrow.
///
/// Why: plotters' tick search (`compute_f64_key_points`, 0.3.7) loops
/// forever on a width that overflows to infinity (an axis from -1e308 to
/// 1e308) and on one near the float resolution of its values (1000 to the
/// next double), where its remainders lose every digit. So the range is
/// clamped to ±[`AXIS_LIMIT`] and made at least [`RELATIVE_WIDTH`] of its
/// magnitude wide; a range that is not is centred on a width of at least 1,
/// as an empty range always was.
fn span(axis: &Axis) -> std::ops::Range<f64> {
    let (min, max) = if axis.min.is_finite() && axis.max.is_finite() {
        (axis.min, axis.max)
    } else {
        (0.0, 1.0)
    };
    let min = min.clamp(-AXIS_LIMIT, AXIS_LIMIT);
    let max = max.clamp(min, AXIS_LIMIT);
    let magnitude = min.abs().max(max.abs());
    let least = magnitude * RELATIVE_WIDTH;
    if max - min > least {
        return min..max;
    }
    let half = (least / 2.0).max(0.5);
    let middle = min / 2.0 + max / 2.0;
    middle - half..middle + half
}

fn draw(root: &DrawingArea<SVGBackend<'_>, Shift>, chart: &Chart) -> Result<(), PlotError> {
    let mut context = ChartBuilder::on(root)
        .caption(&chart.title, ("sans-serif", TITLE_PX))
        .margin(12)
        .x_label_area_size(46)
        .y_label_area_size(58)
        .build_cartesian_2d(span(&chart.x), span(&chart.y))
        .map_err(failed)?;
    context
        .configure_mesh()
        .x_desc(&chart.x.label)
        .y_desc(&chart.y.label)
        .x_labels(6)
        .y_labels(6)
        .label_style(("sans-serif", TICK_PX))
        .axis_desc_style(("sans-serif", LABEL_PX))
        .light_line_style(WHITE.mix(0.0))
        .bold_line_style(BLACK.mix(0.08))
        .draw()
        .map_err(failed)?;
    for series in &chart.series {
        draw_series(&mut context, series)?;
    }
    if chart.series.iter().any(|s| !s.label.is_empty()) {
        context
            .configure_series_labels()
            .position(position(chart.legend))
            .label_font(("sans-serif", TICK_PX))
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK.mix(0.3))
            .draw()
            .map_err(failed)?;
    }
    Ok(())
}

type Context<'a, 'b> = ChartContext<
    'a,
    SVGBackend<'b>,
    Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>,
>;

fn draw_series(context: &mut Context<'_, '_>, series: &Series) -> Result<(), PlotError> {
    let color = PALETTE[series.color % PALETTE.len()];
    let legend = |anno: &mut plotters::chart::SeriesAnno<'_, SVGBackend<'_>>,
                  style: ShapeStyle,
                  bar: bool| {
        if series.label.is_empty() {
            return;
        }
        anno.label(series.label.as_str());
        if bar {
            anno.legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 18, y + 5)], style));
        } else {
            anno.legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], style));
        }
    };
    match &series.shape {
        Shape::Line(segments) => {
            let style = color.stroke_width(2);
            for (i, segment) in segments.iter().enumerate() {
                let anno = context
                    .draw_series(LineSeries::new(segment.iter().copied(), style))
                    .map_err(failed)?;
                if i == 0 {
                    legend(anno, style, false);
                }
            }
        }
        Shape::Reference(points) => {
            let style = REFERENCE.stroke_width(1);
            let anno = context
                .draw_series(DashedLineSeries::new(points.iter().copied(), 6, 4, style))
                .map_err(failed)?;
            legend(anno, style, false);
        }
        Shape::Bars(bars) => {
            let style = color.mix(0.45).filled();
            let anno = context
                .draw_series(
                    bars.iter()
                        .filter(|&&(_, _, h)| h > 0.0)
                        .map(|&(x0, x1, h)| Rectangle::new([(x0, 0.0), (x1, h)], style)),
                )
                .map_err(failed)?;
            legend(anno, style, true);
        }
    }
    Ok(())
}

fn position(corner: Corner) -> SeriesLabelPosition {
    match corner {
        Corner::UpperLeft => SeriesLabelPosition::UpperLeft,
        Corner::UpperRight => SeriesLabelPosition::UpperRight,
        Corner::LowerLeft => SeriesLabelPosition::LowerLeft,
        Corner::LowerRight => SeriesLabelPosition::LowerRight,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Chart {
        Chart {
            title: "A & B <chart>".to_owned(),
            x: Axis::unit("False positive rate"),
            y: Axis::unit("True positive rate"),
            series: vec![
                Series {
                    label: "model".to_owned(),
                    shape: Shape::Line(vec![vec![(0.0, 0.0), (0.2, 0.7), (1.0, 1.0)]]),
                    color: 0,
                },
                Series {
                    label: "chance".to_owned(),
                    shape: Shape::Reference(vec![(0.0, 0.0), (1.0, 1.0)]),
                    color: 0,
                },
                Series {
                    label: "bars".to_owned(),
                    shape: Shape::Bars(vec![(0.0, 0.5, 0.25), (0.5, 1.0, 0.0)]),
                    color: 1,
                },
            ],
            legend: Corner::LowerRight,
        }
    }

    #[test]
    fn the_svg_is_xml_with_title_axis_labels_legend_and_every_point() {
        let svg = render(
            &sample(),
            Size {
                width: 640,
                height: 480,
            },
        )
        .unwrap();
        let doc = roxmltree::Document::parse(&svg).unwrap();
        let root = doc.root_element();
        assert_eq!(root.tag_name().name(), "svg");
        assert_eq!(root.attribute("width"), Some("640"));
        let texts: Vec<&str> = doc
            .descendants()
            .filter(|n| n.has_tag_name("text"))
            .filter_map(|n| n.text().map(str::trim))
            .collect();
        for expected in [
            "A & B <chart>",
            "False positive rate",
            "True positive rate",
            "model",
            "chance",
            "bars",
        ] {
            assert!(texts.contains(&expected), "{expected} in {texts:?}");
        }
        let model = format!("#{:02X}{:02X}{:02X}", 31, 119, 180);
        let lines: Vec<usize> = doc
            .descendants()
            .filter(|n| n.has_tag_name("polyline") && n.attribute("stroke") == Some(&model))
            .map(|n| {
                n.attribute("points")
                    .unwrap_or("")
                    .split_whitespace()
                    .count()
            })
            .collect();
        // the series itself, then its 2-point legend sample
        assert_eq!(lines, vec![3, 2]);
    }

    /// Each of these ranges made plotters' tick search loop forever (a
    /// server thread spinning after the request's timeout); the render runs
    /// on a thread so a regression fails here instead of hanging the suite.
    #[test]
    fn overflowing_and_too_narrow_ranges_still_draw() {
        let ranges = [
            (-1e308, 1e308),
            (-f64::MAX, f64::MAX),
            (1000.0, 1000.0 + 1.2e-13),
            (1e16, 1e16),
            (1e300, f64::MAX),
            (-3.0e-300, 4.0e-300),
            (0.0, 0.0),
        ];
        for (min, max) in ranges {
            let mut chart = sample();
            (chart.x.min, chart.x.max) = (min, max);
            (chart.y.min, chart.y.max) = (min, max);
            // a chart's axes come from its data: the data span them
            chart.series = vec![Series {
                label: "model".to_owned(),
                shape: Shape::Line(vec![vec![(min, min), (max, max)]]),
                color: 0,
            }];
            let (tx, rx) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                let size = Size {
                    width: 200,
                    height: 150,
                };
                let _ = tx.send(render(&chart, size).map(|svg| svg.len()));
            });
            let drawn = rx.recv_timeout(std::time::Duration::from_secs(20));
            assert!(
                matches!(drawn, Ok(Ok(len)) if len > 0),
                "range {min:e}..{max:e}: {drawn:?}"
            );
        }
    }

    #[test]
    fn empty_and_non_finite_ranges_still_draw() {
        let mut chart = sample();
        chart.x.min = 1.0;
        chart.x.max = 1.0;
        chart.y.max = f64::INFINITY;
        let size = Size {
            width: 200,
            height: 150,
        };
        assert!(roxmltree::Document::parse(&render(&chart, size).unwrap()).is_ok());
    }
}
