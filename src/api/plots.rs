//! `POST /plots/{kind}`, `GET /streams/{name}/plots/{kind}` and
//! `GET /streams/{name}/users/{user_id}/plots/{kind}`: the charts of
//! [`crate::plots`] as `image/svg+xml` (README, "Dashboard and plots").
//!
//! The input goes through the JSON routes' own checks: the body of
//! `POST /plots/{kind}` is checked into a [`MetricsJob`] exactly as
//! `POST /metrics` does it, and the stream routes take the query parameters
//! of `GET /streams/{name}/metrics`. Then the same core evaluation
//! ([`evaluate_binary`]) gives the numbers, so a chart shows what the JSON
//! answer says. The chart options `width`, `height` and `title` are query
//! parameters on every plot route (the POST body is the metrics body,
//! unchanged).

use axum::extract::{Path, RawQuery, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;

use super::error::echo;
use super::extract::{parse_off_the_async_workers, parse_query, JsonBytes};
use super::metrics::compare::{CompareJob, CompareRequest};
use super::metrics::{metrics_error, MetricsJob, MetricsRequest};
use super::streams::name::StreamName;
use super::streams::report::{table_of, MetricsQuery};
use super::streams::{store_error, unknown_user};
use super::{ApiError, ApiJson, ApiQuery, ApiResult, AppState};
use crate::core::metrics::compare::paired_auc_diff;
use crate::core::metrics::curve::thinned_indices;
use crate::core::metrics::threshold::at_thresholds;
use crate::core::metrics::{
    evaluate_beyond, evaluate_binary, score_histogram, BeyondNames, BeyondParams, BeyondReport,
    BinaryReport, CheckedBinaryParams, RecordCounts, ScoreTable,
};
use crate::plots::kinds::{self, number, Curve, Kind};
use crate::plots::{render, Chart, Size};
use crate::state::ScoreAggregate;

/// The SVG media type.
pub const SVG: &str = "image/svg+xml";

/// Default chart size in pixels.
const DEFAULT_SIZE: Size = Size {
    width: 720,
    height: 480,
};

/// Smallest width or height: below it the tick labels overlap.
const MIN_SIDE: u32 = 200;

/// Longest `title`, in characters: a title is one line of text.
const MAX_TITLE_CHARS: usize = 200;

/// Bins of the score histogram: enough to see the shape of each class,
/// few enough that a bin of a small sample is not empty by chance.
const SCORE_BINS: usize = 40;

/// Routes with a body (`POST /plots/{kind}`): merged under the JSON body
/// limit.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/plots/{kind}", post(post_plot))
        .route("/plots/compare/{kind}", post(post_compare_plot))
}

/// Routes on stream state.
pub fn stream_router() -> Router<AppState> {
    Router::new()
        .route("/streams/{name}/plots/{kind}", get(stream_plot))
        .route(
            "/streams/{name}/users/{user_id}/plots/{kind}",
            get(user_plot),
        )
}

/// The chart options, as query parameters.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlotOptions {
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub title: Option<String>,
}

/// The query parameter names of [`PlotOptions`], which the stream routes
/// take beside those of [`MetricsQuery`].
const OPTION_NAMES: [&str; 3] = ["width", "height", "title"];

/// [`PlotOptions`] after their checks.
#[derive(Debug, Clone)]
pub struct CheckedOptions {
    pub size: Size,
    pub title: Option<String>,
}

impl PlotOptions {
    /// Checks the size against `MIN_SIDE..=max_side` and the title length.
    ///
    /// # Errors
    /// 422 naming `width`, `height` or `title`.
    pub fn check(self, max_side: u32) -> ApiResult<CheckedOptions> {
        let side = |field: &str, value: Option<u32>, default: u32| {
            match value {
            None => Ok(default),
            Some(v) if (MIN_SIDE..=max_side).contains(&v) => Ok(v),
            Some(v) => Err(ApiError::invalid(
                field,
                format!("{field} is {v} but must be between {MIN_SIDE} and {max_side} pixels (--max-plot-side)"),
            )),
        }
        };
        let size = Size {
            width: side("width", self.width, DEFAULT_SIZE.width)?,
            height: side("height", self.height, DEFAULT_SIZE.height)?,
        };
        if let Some(title) = &self.title {
            let chars = title.chars().count();
            if chars > MAX_TITLE_CHARS {
                return Err(ApiError::invalid(
                    "title",
                    format!(
                        "title has {chars} characters but at most {MAX_TITLE_CHARS} are allowed"
                    ),
                ));
            }
        }
        Ok(CheckedOptions {
            size,
            title: self.title,
        })
    }
}

/// The kind named in the path among `kinds`, or 404 listing them.
fn kind_of(name: &str, kinds: &[Kind]) -> ApiResult<Kind> {
    Kind::from_name(name, kinds).ok_or_else(|| {
        let valid: Vec<&str> = kinds.iter().map(|k| k.name()).collect();
        ApiError::unknown_name("plot kind", name, &valid)
    })
}

/// What every chart is drawn from: the evaluation the JSON answer is made
/// of, the table it came from, and the name the legend gives the model.
pub struct Evaluated {
    pub name: String,
    pub table: ScoreTable,
    pub report: BinaryReport,
    /// PR curve, AP, calibration and ECE, as `POST /metrics` computes them
    /// with its default parameters.
    pub beyond: BeyondReport,
    /// The ROC `max_points` of the request, which also thins the threshold
    /// chart.
    pub max_points: Option<usize>,
}

impl Evaluated {
    /// Evaluates `table` as the JSON routes do (no GAUC: no chart shows it).
    ///
    /// # Errors
    /// 500 if the default parameters of the extended metrics fail their own
    /// check (a bug, caught by the tests).
    pub fn new(
        name: String,
        table: ScoreTable,
        counts: RecordCounts,
        params: &CheckedBinaryParams,
    ) -> ApiResult<Self> {
        let report = evaluate_binary(&table, counts, None, params);
        let beyond_params = BeyondParams::default()
            .check(BeyondNames::BODY, usize::MAX)
            .map_err(ApiError::internal)?;
        let beyond = evaluate_beyond(&table, &report.confusion, params.beta, &beyond_params);
        Ok(Evaluated {
            name,
            table,
            report,
            beyond,
            max_points: params.max_points,
        })
    }

    /// The model's curve of a curve kind, with its headline number.
    fn curve(&self, kind: Kind) -> Curve {
        let (headline, points) = match kind {
            Kind::Pr => (
                format!("AP {}", number(self.beyond.average_precision)),
                kinds::pr_points(self.beyond.pr_curve.as_ref()),
            ),
            Kind::Calibration => (
                format!(
                    "ECE {}",
                    number(self.beyond.calibration.as_ref().map(|c| c.ece))
                ),
                kinds::calibration_points(self.beyond.calibration.as_ref()),
            ),
            _ => (
                auc_headline(&self.report),
                kinds::roc_points(&self.report.roc),
            ),
        };
        Curve {
            name: self.name.clone(),
            headline,
            points,
        }
    }

    /// The fraction of positive weight, the PR chart's chance level.
    fn prevalence(&self) -> Option<f64> {
        let (pos, neg) = (self.table.total_pos(), self.table.total_neg());
        (pos + neg > 0.0).then(|| pos / (pos + neg))
    }
}

/// `AUC 0.8123, 95% CI [0.8000, 0.8246]`, the interval when there is one.
fn auc_headline(report: &BinaryReport) -> String {
    let auc = format!("AUC {}", number(report.auc));
    match &report.auc_ci {
        Some(ci) if ci.lower.is_finite() && ci.upper.is_finite() => format!(
            "{auc}, {}% CI [{:.4}, {:.4}]",
            ci.level * 100.0,
            ci.lower,
            ci.upper
        ),
        _ => auc,
    }
}

/// The chart of `kind` for the models `inputs` (one, or two compared).
pub fn chart(kind: Kind, inputs: &[&Evaluated]) -> Chart {
    let curves = || -> Vec<Curve> { inputs.iter().map(|i| i.curve(kind)).collect() };
    let Some(first) = inputs.first() else {
        return kinds::roc(&[]);
    };
    let report = &first.report;
    match kind {
        Kind::Roc => kinds::roc(&curves()),
        Kind::Pr => kinds::pr(&curves(), first.prevalence()),
        Kind::Calibration => kinds::calibration(&curves()),
        Kind::Scores => kinds::scores(&score_histogram(&first.table, SCORE_BINS), report.threshold),
        Kind::Thresholds => {
            let scores = first.table.scores();
            let picked: Vec<f64> = thinned_indices(scores.len(), first.max_points)
                .into_iter()
                .filter_map(|i| scores.get(i).copied())
                .collect();
            kinds::thresholds(
                &at_thresholds(&first.table, &picked, report.beta),
                report.beta,
                report.threshold,
                report.f_beta,
            )
        }
    }
}

/// Draws `kind` for `inputs` with the caller's options; the default title
/// names the models when they are not the anonymous one of `POST /plots`.
fn draw(
    kind: Kind,
    inputs: &[&Evaluated],
    options: &CheckedOptions,
    note: &str,
) -> ApiResult<String> {
    let mut chart = chart(kind, inputs);
    let names: Vec<&str> = inputs.iter().map(|i| i.name.as_str()).collect();
    chart.title = match &options.title {
        Some(title) => title.clone(),
        None if names == [ANONYMOUS] => chart.title,
        None => format!("{}: {}{note}", chart.title, names.join(" vs ")),
    };
    render(&chart, options.size).map_err(ApiError::internal)
}

/// The legend name of the model of a `POST /plots` body.
const ANONYMOUS: &str = "model";

/// An SVG answer; never cached, since stream charts change with every batch.
fn svg_response(svg: String) -> Response {
    (
        [
            (header::CONTENT_TYPE, SVG),
            (header::CACHE_CONTROL, "no-store"),
        ],
        svg,
    )
        .into_response()
}

async fn post_plot(
    State(state): State<AppState>,
    Path(kind): Path<String>,
    ApiQuery(options): ApiQuery<PlotOptions>,
    JsonBytes(body): JsonBytes,
) -> ApiResult<Response> {
    let kind = kind_of(&kind, &Kind::ALL)?;
    let options = options.check(state.config.max_plot_side)?;
    let request = parse_off_the_async_workers(body, MetricsRequest::from_json_parallel).await?;
    let job = MetricsJob::from_request(
        request,
        state.config.max_array_len,
        state.config.max_ranking_cutoffs,
        state.config.max_thresholds,
    )?;
    let svg = tokio::task::spawn_blocking(move || draw(kind, &[&evaluate_job(job)?], &options, ""))
        .await
        .map_err(ApiError::internal)??;
    Ok(svg_response(svg))
}

/// `POST /plots/compare/{kind}`: both models of a `POST /metrics/compare`
/// body on one chart; the ROC title carries the paired DeLong test of the
/// AUC difference.
async fn post_compare_plot(
    State(state): State<AppState>,
    Path(kind): Path<String>,
    ApiQuery(options): ApiQuery<PlotOptions>,
    ApiJson(request): ApiJson<CompareRequest>,
) -> ApiResult<Response> {
    let kind = kind_of(&kind, &Kind::CURVES)?;
    let options = options.check(state.config.max_plot_side)?;
    let job = CompareJob::from_request(
        request,
        state.config.max_array_len,
        state.config.max_thresholds,
    )?;
    let svg = tokio::task::spawn_blocking(move || draw_comparison(kind, &job, &options))
        .await
        .map_err(ApiError::internal)??;
    Ok(svg_response(svg))
}

fn draw_comparison(kind: Kind, job: &CompareJob, options: &CheckedOptions) -> ApiResult<String> {
    let evaluate = |name: &str, scores: &[f64]| -> ApiResult<Evaluated> {
        let table = ScoreTable::from_records(scores, &job.labels, job.weights.as_deref())
            .map_err(|e| ApiError::invalid(format!("predictions_{name}"), e.to_string()))?;
        Evaluated::new(
            name.to_owned(),
            table,
            RecordCounts::of_labels(&job.labels),
            &job.params,
        )
    };
    let (a, b) = (evaluate("a", &job.a)?, evaluate("b", &job.b)?);
    let note = match kind {
        Kind::Roc => {
            let (diff, _) = paired_auc_diff(
                (&a.table, &job.a),
                (&b.table, &job.b),
                &job.labels,
                job.weights.as_deref(),
                job.params.confidence,
            );
            format!(
                " (AUC b - a {}, {})",
                number(diff.value),
                kinds::p_value(diff.p_value)
            )
        }
        _ => String::new(),
    };
    draw(kind, &[&a, &b], options, &note)
}

/// The evaluation of a checked `POST /metrics` body; charts are binary only.
fn evaluate_job(job: MetricsJob) -> ApiResult<Evaluated> {
    let MetricsJob::Binary {
        scores,
        labels,
        weights,
        params,
        ..
    } = job
    else {
        return Err(ApiError::invalid(
            "predictions",
            "plots are drawn for binary predictions (a flat array of scores) but predictions is an N x C matrix",
        ));
    };
    let table =
        ScoreTable::from_records(&scores, &labels, weights.as_deref()).map_err(metrics_error)?;
    Evaluated::new(
        ANONYMOUS.to_owned(),
        table,
        RecordCounts::of_labels(&labels),
        &params,
    )
}

/// The `{kind}` (and `{user_id}`) of a stream plot route; `{name}` is read
/// by [`StreamName`].
#[derive(Deserialize)]
struct StreamPlotPath {
    kind: String,
    user_id: Option<String>,
}

/// A stream route's query: [`PlotOptions`] and the [`MetricsQuery`] of the
/// stream metrics routes, each checked by its own type.
fn stream_query(
    raw: Option<&str>,
    max_side: u32,
) -> ApiResult<(CheckedOptions, CheckedBinaryParams)> {
    let (mut options, mut metrics) = (
        form_urlencoded::Serializer::new(String::new()),
        form_urlencoded::Serializer::new(String::new()),
    );
    for (key, value) in form_urlencoded::parse(raw.unwrap_or("").as_bytes()) {
        let target = if OPTION_NAMES.contains(&key.as_ref()) {
            &mut options
        } else {
            &mut metrics
        };
        target.append_pair(&key, &value);
    }
    let options = parse_query::<PlotOptions>(&options.finish())?.check(max_side)?;
    let (params, _) = parse_query::<MetricsQuery>(&metrics.finish())?.params()?;
    Ok((options, params))
}

async fn stream_plot(
    State(state): State<AppState>,
    name: StreamName,
    Path(path): Path<StreamPlotPath>,
    RawQuery(query): RawQuery,
) -> ApiResult<Response> {
    plot_stream(state, name, path, query).await
}

async fn user_plot(
    State(state): State<AppState>,
    name: StreamName,
    Path(path): Path<StreamPlotPath>,
    RawQuery(query): RawQuery,
) -> ApiResult<Response> {
    plot_stream(state, name, path, query).await
}

/// A chart of a whole stream, or of one user when the path names one, read
/// through the store as `GET .../metrics` reads it.
async fn plot_stream(
    state: AppState,
    name: StreamName,
    path: StreamPlotPath,
    query: Option<String>,
) -> ApiResult<Response> {
    let kind = kind_of(&path.kind, &Kind::ALL)?;
    let (options, params) = stream_query(query.as_deref(), state.config.max_plot_side)?;
    let (agg, label) = match &path.user_id {
        None => {
            let read = state
                .streams
                .stream(&name.stored, false)
                .await
                .map_err(store_error)?;
            (read.global, name.local.clone())
        }
        Some(user) => {
            let agg = state
                .streams
                .user(&name.stored, user)
                .await
                .map_err(store_error)?
                .ok_or_else(|| unknown_user(&name.local, user))?;
            (agg, format!("{} user {}", name.local, echo(user)))
        }
    };
    let svg = tokio::task::spawn_blocking(move || {
        let input = evaluate_aggregate(&agg, label, &params)?;
        draw(kind, &[&input], &options, "")
    })
    .await
    .map_err(ApiError::internal)??;
    Ok(svg_response(svg))
}

/// The evaluation of a stream aggregate, as `GET .../metrics` makes it.
fn evaluate_aggregate(
    agg: &ScoreAggregate,
    name: String,
    params: &CheckedBinaryParams,
) -> ApiResult<Evaluated> {
    let table = table_of(agg).map_err(metrics_error)?;
    Evaluated::new(name, table, agg.counts(), params)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_are_checked_naming_the_field() {
        let ok = PlotOptions::default().check(4096).unwrap();
        assert_eq!(ok.size, DEFAULT_SIZE);
        for (options, field) in [
            (
                PlotOptions {
                    width: Some(MIN_SIDE - 1),
                    ..PlotOptions::default()
                },
                "width",
            ),
            (
                PlotOptions {
                    height: Some(5000),
                    ..PlotOptions::default()
                },
                "height",
            ),
            (
                PlotOptions {
                    title: Some("x".repeat(MAX_TITLE_CHARS + 1)),
                    ..PlotOptions::default()
                },
                "title",
            ),
        ] {
            let err = options.check(4096).unwrap_err();
            assert_eq!(err.field.as_deref(), Some(field));
        }
    }

    #[test]
    fn a_stream_query_splits_into_options_and_metrics_parameters() {
        let (options, params) =
            stream_query(Some("width=300&threshold=0.25&title=a%20b&beta=2"), 4096).unwrap();
        assert_eq!(options.size.width, 300);
        assert_eq!(options.title.as_deref(), Some("a b"));
        assert_eq!((params.threshold, params.beta), (0.25, 2.0));
        let err = stream_query(Some("colour=red"), 4096).unwrap_err();
        assert_eq!(err.status().as_u16(), 422);
        let err = stream_query(Some("width=wide"), 4096).unwrap_err();
        assert_eq!(err.field.as_deref(), Some("width"));
    }
}
