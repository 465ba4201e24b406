//! Exact classification metrics, scikit-learn being the numeric reference.
//!
//! # Layout
//!
//! - [`table`]: [`ScoreTable`], the distinct scores in descending order with
//!   the summed positive and negative weight at each: built with ONE sort from
//!   records ([`ScoreTable::from_records`]) or from already-aggregated triples
//!   ([`ScoreTable::from_aggregates`], what streams use).
//! - [`confusion`]: counts at a threshold and the rates (accuracy, precision,
//!   recall, F-beta) derived from them.
//! - [`curve`]: the exact ROC curve (`sklearn.metrics.roc_curve`), thinning.
//! - [`auc`]: the exact AUC (`roc_auc_score`; ties count one half).
//! - [`gauc`]: per-user AUC averaged over users, [`GaucAccumulator`].
//! - [`histogram`]: score histograms by class (the data of a chart).
//! - [`pr`], [`probability`], [`calibration`], [`threshold`], gathered by
//!   [`beyond`]: average precision and the PR curve, log loss, Brier score,
//!   calibration, decisions at many thresholds, partial AUC; all read off
//!   the same table, so streams share them.
//! - [`multiclass`]: N x C scores: argmax and top-k accuracy, confusion matrix,
//!   per-class and averaged precision/recall/F, one-vs-rest AUC, log loss.
//!
//! # Binary entry points
//!
//! [`evaluate_binary`] is THE binary evaluation: a [`ScoreTable`], the plain
//! record counts, an optional finished [`Gauc`] and [`BinaryParams`] give a
//! [`BinaryReport`] with everything `POST /metrics` answers for binary input.
//! `POST /metrics` reaches it through [`evaluate_records`] (one sort of the
//! records serves the table and the GAUC); streams call it directly with a
//! table from [`ScoreTable::from_aggregates`] and a [`Gauc`] from a
//! [`GaucAccumulator`] fed one per-user table at a time, so a stream's metrics
//! equal `POST /metrics` over the concatenation of its batches.
//!
//! # Undefined values
//!
//! A value whose formula divides by 0 (precision with no predicted positive,
//! AUC with one class, ...) is `None`, never a silent 0 or a NaN, and the
//! report carries a sentence saying why in `warnings`.

use std::sync::atomic::{AtomicBool, Ordering};
use thiserror::Error;

pub mod auc;
pub mod beyond;
pub mod calibration;
pub mod compare;
pub mod confusion;
pub mod curve;
pub mod delong;
pub mod gauc;
pub mod histogram;
pub mod multiclass;
pub mod pr;
pub mod probability;
/// Crate-visible: the stream fold (`state::batch`) sorts a large chunk of
/// staged records with the same radix sort and score key as the table.
pub(crate) mod radix;
pub mod ranking;
pub mod stats;
pub mod table;
pub mod threshold;

pub use auc::auc;
pub use beyond::{evaluate_beyond, BeyondNames, BeyondParams, BeyondReport, CheckedBeyondParams};
pub use calibration::BinStrategy;
pub use confusion::Confusion;
pub use curve::{roc_curve, roc_curve_at_most, RocCurve};
pub use gauc::{Gauc, GaucAccumulator, GaucWeighting, UserIndex};
pub use histogram::{score_histogram, ScoreHistogram};
pub use multiclass::{evaluate_multiclass, Average, MulticlassParams, MulticlassReport, PerClass};
pub use table::{canonical_zero, ScoreTable, TableWeights, MAX_RECORDS};

/// Invalid input to a metric. Each variant names the offending field (see
/// [`MetricsError::field`]) and its message says what was found and what was
/// expected.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum MetricsError {
    #[error("{field} has {len} elements but predictions has {expected}")]
    LengthMismatch {
        field: &'static str,
        len: usize,
        expected: usize,
    },
    #[error("{field}[{index}] is not a finite number")]
    NonFinite { field: &'static str, index: usize },
    #[error("sample_weights[{index}] is {value} but sample weights must be >= 0")]
    NegativeWeight { index: usize, value: f64 },
    #[error("labels[{index}] is {label} but class labels must be in 0..{classes} (predictions has {classes} columns)")]
    LabelOutOfRange {
        index: usize,
        label: usize,
        classes: usize,
    },
    #[error("user_ids[{index}] maps to user {user} but there are only {n_users} users")]
    UserOutOfRange {
        index: usize,
        user: usize,
        n_users: usize,
    },
    #[error("{len} records is more than the maximum of {max}")]
    TooMany { len: usize, max: usize },
    #[error("{name} {detail}")]
    InvalidParameter { name: &'static str, detail: String },
    /// `max_points` below 2; `name` is how the caller spells the parameter
    /// (`roc.max_points` in a body, `max_points` in a stream query).
    #[error("{name} is {found} but must be at least 2 (the first and last points are always kept) or null")]
    TooFewRocPoints { name: &'static str, found: usize },
}

impl MetricsError {
    /// The offending field, with the element index for arrays
    /// (`sample_weights[3]`).
    pub fn field(&self) -> String {
        match self {
            MetricsError::LengthMismatch { field, .. } => (*field).to_owned(),
            MetricsError::NonFinite { field, index } => format!("{field}[{index}]"),
            MetricsError::NegativeWeight { index, .. } => format!("sample_weights[{index}]"),
            MetricsError::LabelOutOfRange { index, .. } => format!("labels[{index}]"),
            MetricsError::UserOutOfRange { index, .. } => format!("user_ids[{index}]"),
            MetricsError::TooMany { .. } => "predictions".to_owned(),
            MetricsError::InvalidParameter { name, .. }
            | MetricsError::TooFewRocPoints { name, .. } => (*name).to_owned(),
        }
    }
}

/// Parameters of a binary evaluation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BinaryParams {
    /// A record is predicted positive iff `score >= threshold`.
    pub threshold: f64,
    /// F-beta's beta, finite and > 0.
    pub beta: f64,
    /// Thin the ROC curve to at most this many points (>= 2); `None` = all.
    pub max_points: Option<usize>,
    /// Drop collinear ROC points as scikit-learn's `drop_intermediate`.
    pub drop_intermediate: bool,
    /// Level of every confidence interval (`auc_ci`, the GAUC interval),
    /// in (0, 1).
    pub confidence: f64,
}

impl Default for BinaryParams {
    /// The documented defaults (README, "Classification metrics"; the
    /// `MetricsRequest` schema in `openapi/openapi.yaml`): threshold 0.5,
    /// beta 1, 1000 points, drop_intermediate, confidence 0.95.
    fn default() -> Self {
        BinaryParams {
            threshold: 0.5,
            beta: 1.0,
            max_points: Some(1000),
            drop_intermediate: true,
            confidence: 0.95,
        }
    }
}

impl BinaryParams {
    /// Checks the parameters once, where they enter, and returns the form the
    /// evaluation takes.
    ///
    /// # Errors
    /// [`MetricsError::InvalidParameter`] for a non-finite threshold or a beta
    /// that is not finite and > 0, [`MetricsError::TooFewRocPoints`] for
    /// `max_points` below 2.
    pub fn check(self) -> Result<CheckedBinaryParams, MetricsError> {
        if !self.threshold.is_finite() {
            return Err(invalid(
                "threshold",
                format!("is {} but must be a finite number", self.threshold),
            ));
        }
        check_beta(self.beta)?;
        check_confidence(self.confidence)?;
        if let Some(found) = self.max_points.filter(|&m| m < 2) {
            return Err(MetricsError::TooFewRocPoints {
                name: "roc.max_points",
                found,
            });
        }
        Ok(CheckedBinaryParams(self))
    }
}

/// [`BinaryParams`] that passed [`BinaryParams::check`]. Only `check` builds
/// one, so code holding it never checks again: an HTTP handler checks at its
/// edge and hands this to the core (linfa's `ParamGuard` split of unchecked
/// and checked parameters).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CheckedBinaryParams(BinaryParams);

impl std::ops::Deref for CheckedBinaryParams {
    type Target = BinaryParams;
    fn deref(&self) -> &BinaryParams {
        &self.0
    }
}

/// What [`evaluate_records`] accepts: [`CheckedBinaryParams`] as they are, or
/// plain [`BinaryParams`], checked on entry (for library callers and tests
/// that build parameters by hand).
pub trait BinaryParamGuard {
    /// The checked parameters.
    ///
    /// # Errors
    /// As [`BinaryParams::check`].
    fn checked(&self) -> Result<CheckedBinaryParams, MetricsError>;
}

impl BinaryParamGuard for BinaryParams {
    fn checked(&self) -> Result<CheckedBinaryParams, MetricsError> {
        self.check()
    }
}

impl BinaryParamGuard for CheckedBinaryParams {
    fn checked(&self) -> Result<CheckedBinaryParams, MetricsError> {
        Ok(*self)
    }
}

/// Beta must be finite and > 0.
pub(crate) fn check_beta(beta: f64) -> Result<(), MetricsError> {
    if beta.is_finite() && beta > 0.0 {
        Ok(())
    } else {
        Err(invalid(
            "beta",
            format!("is {beta} but must be a finite number > 0"),
        ))
    }
}

/// A confidence level must be strictly between 0 and 1.
pub fn check_confidence(level: f64) -> Result<(), MetricsError> {
    if level > 0.0 && level < 1.0 {
        Ok(())
    } else {
        Err(invalid(
            "confidence",
            format!("is {level} but must be strictly between 0 and 1"),
        ))
    }
}

pub(crate) fn invalid(name: &'static str, detail: String) -> MetricsError {
    MetricsError::InvalidParameter { name, detail }
}

/// Plain record counts (never weighted): the `count`, `positives` and
/// `negatives` of a binary response (`BinaryMetrics` in `openapi/openapi.yaml`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RecordCounts {
    pub count: u64,
    pub positives: u64,
    pub negatives: u64,
}

impl RecordCounts {
    /// Counts of a label vector.
    pub fn of_labels(labels: &[bool]) -> Self {
        let positives = labels.iter().filter(|&&l| l).count() as u64;
        RecordCounts {
            count: labels.len() as u64,
            positives,
            negatives: labels.len() as u64 - positives,
        }
    }

    /// Adds `other`, saturating (2^64 records are out of reach of any
    /// budget): merging the counts of two record sets, as a stream does.
    pub fn add(&mut self, other: RecordCounts) {
        self.count = self.count.saturating_add(other.count);
        self.positives = self.positives.saturating_add(other.positives);
        self.negatives = self.negatives.saturating_add(other.negatives);
    }
}

/// Everything a binary evaluation answers (`BinaryMetrics` in `openapi/openapi.yaml`).
#[derive(Debug, Clone, PartialEq)]
pub struct BinaryReport {
    pub counts: RecordCounts,
    pub threshold: f64,
    pub beta: f64,
    /// Weighted when sample weights were given.
    pub confusion: Confusion,
    pub accuracy: Option<f64>,
    pub precision: Option<f64>,
    pub recall: Option<f64>,
    pub f1: Option<f64>,
    pub f_beta: Option<f64>,
    /// On the full exact curve, whatever `max_points` is.
    pub auc: Option<f64>,
    pub roc: RocCurve,
    pub gauc: Option<Gauc>,
    /// DeLong interval of `auc` (unweighted records only).
    pub auc_ci: Option<delong::AucCi>,
    /// One sentence per undefined value.
    pub warnings: Vec<String>,
}

/// The binary evaluation of a score table (see the module docs).
///
/// `counts` are reported as given (plain record counts); every other number
/// comes from `table` (weighted when it was built with weights). `gauc` is
/// passed through, its warning added when it is undefined.
///
/// Infallible: the parameters were checked when they became
/// [`CheckedBinaryParams`].
pub fn evaluate_binary(
    table: &ScoreTable,
    counts: RecordCounts,
    gauc: Option<Gauc>,
    params: &CheckedBinaryParams,
) -> BinaryReport {
    let confusion = Confusion::at_threshold(table, params.threshold);
    evaluate_binary_at(table, counts, gauc, params, confusion)
}

/// [`evaluate_binary`] with the confusion at the threshold already counted
/// (the evaluation beyond the basics needs it too).
fn evaluate_binary_at(
    table: &ScoreTable,
    counts: RecordCounts,
    gauc: Option<Gauc>,
    params: &CheckedBinaryParams,
    confusion: Confusion,
) -> BinaryReport {
    let auc_ci = || (delong::auc_ci(table, params.confidence), ());
    evaluate_binary_then(table, counts, gauc, params, confusion, auc_ci).0
}

/// [`evaluate_binary_at`] with DeLong's interval from `auc_ci`, called
/// last, with what else it hands back: a large request joins its second
/// thread there, after this thread's ROC and AUC (see [`evaluate_ranked`]).
fn evaluate_binary_then<T>(
    table: &ScoreTable,
    counts: RecordCounts,
    gauc: Option<Gauc>,
    params: &CheckedBinaryParams,
    confusion: Confusion,
    auc_ci: impl FnOnce() -> (Result<delong::AucCi, String>, T),
) -> (BinaryReport, T) {
    let mut warnings = Vec::new();
    let mut note = |value: Option<f64>, reason: &dyn Fn() -> String| {
        if value.is_none() {
            warnings.push(reason());
        }
        value
    };
    let accuracy = note(confusion.accuracy(), &|| {
        "accuracy is undefined: there are no records with positive weight".to_owned()
    });
    let precision = note(confusion.precision(), &|| {
        format!(
            "precision is undefined: no record is predicted positive at threshold {} (tp + fp = 0)",
            params.threshold
        )
    });
    let recall = note(confusion.recall(), &|| {
        "recall is undefined: there are no positive labels (tp + fn = 0)".to_owned()
    });
    let f1 = note(confusion.f_beta(1.0), &|| {
        "f1 is undefined: tp + fp + fn = 0".to_owned()
    });
    let f_beta = note(confusion.f_beta(params.beta), &|| {
        format!(
            "f_beta (beta {}) is undefined: tp + fp + fn = 0",
            params.beta
        )
    });
    let auc = note(auc::auc(table), &|| {
        format!(
            "auc is undefined: it needs both classes but the positive weight is {} and the negative weight is {}",
            table.total_pos(),
            table.total_neg()
        )
    });
    let roc = curve::roc_curve_at_most(table, params.drop_intermediate, params.max_points);
    if roc.fpr.is_none() {
        warnings.push("roc.fpr is undefined (null): there are no negative labels".to_owned());
    }
    if roc.tpr.is_none() {
        warnings.push("roc.tpr is undefined (null): there are no positive labels".to_owned());
    }
    if let Some(message) = gauc.as_ref().and_then(Gauc::warning) {
        warnings.push(message);
    }
    let gauc = gauc.map(|g| g.with_interval(params.confidence));
    if let Some(message) = gauc.as_ref().and_then(Gauc::std_error_warning) {
        warnings.push(message);
    }
    let (auc_ci, joined) = auc_ci();
    let auc_ci = auc_ci.map_err(|message| warnings.push(message)).ok();
    let report = BinaryReport {
        counts,
        threshold: params.threshold,
        beta: params.beta,
        confusion,
        accuracy,
        precision,
        recall,
        f1,
        f_beta,
        auc,
        roc,
        gauc,
        auc_ci,
        warnings,
    };
    (report, joined)
}

/// Binary records as posted: scores, labels, optional weights and users.
#[derive(Debug, Clone, Copy)]
pub struct BinaryRecords<'a> {
    pub scores: &'a [f64],
    pub labels: &'a [bool],
    pub weights: Option<&'a [f64]>,
    pub users: Option<UserIndex<'a>>,
}

/// [`evaluate_binary`] over raw records: ONE sort of the scores builds the
/// table and, through a stable bucket by user, the GAUC. `O(n log n)`.
///
/// # Errors
/// Length mismatches, non-finite scores or weights, negative weights, user
/// indices out of range and invalid parameters, as [`MetricsError`].
pub fn evaluate_records(
    records: &BinaryRecords<'_>,
    params: &impl BinaryParamGuard,
    weighting: GaucWeighting,
) -> Result<BinaryReport, MetricsError> {
    let params = params.checked()?;
    let (table, gauc) = table_and_gauc(records, weighting)?;
    Ok(evaluate_binary(
        &table,
        RecordCounts::of_labels(records.labels),
        gauc,
        &params,
    ))
}

/// [`evaluate_records`] plus [`evaluate_beyond`] over the same table (the
/// one sort serves both).
///
/// # Errors
/// As [`evaluate_records`].
pub fn evaluate_records_beyond(
    records: &BinaryRecords<'_>,
    params: &impl BinaryParamGuard,
    weighting: GaucWeighting,
    beyond: &CheckedBeyondParams,
) -> Result<(BinaryReport, BeyondReport), MetricsError> {
    let params = params.checked()?;
    let (report, extra, _) = evaluate_ranked(records, weighting, None, &params, beyond)?;
    Ok((report, extra))
}

/// [`evaluate_binary`] and [`evaluate_beyond`] of one table, on this
/// thread: small input (below [`table::PARALLEL_MIN`] records) never spawns.
fn binary_and_beyond(
    table: &ScoreTable,
    counts: RecordCounts,
    gauc: Option<Gauc>,
    params: &CheckedBinaryParams,
    beyond: &CheckedBeyondParams,
) -> (BinaryReport, BeyondReport) {
    let confusion = Confusion::at_threshold(table, params.threshold);
    let report = evaluate_binary_at(table, counts, gauc, params, confusion);
    let extra = evaluate_beyond(table, &confusion, params.beta, beyond);
    (report, extra)
}

/// [`evaluate_records_beyond`] plus, with users, the per-user ranking
/// metrics at the cutoffs of `ranking`: the user buckets of the one sort
/// (those of the GAUC) rank each user's records, so no second sort.
/// Equal to [`ranking::ranking`] over the same records.
///
/// # Errors
/// As [`evaluate_records`].
pub fn evaluate_records_ranked(
    records: &BinaryRecords<'_>,
    params: &impl BinaryParamGuard,
    weighting: GaucWeighting,
    beyond: &CheckedBeyondParams,
    ranking: Option<&ranking::RankingParams>,
) -> Result<(BinaryReport, BeyondReport, Option<ranking::RankingReport>), MetricsError> {
    let params = params.checked()?;
    evaluate_ranked(records, weighting, ranking, &params, beyond)
}

/// [`evaluate_records_ranked`] with checked parameters.
///
/// Large input ([`table::PARALLEL_MIN`] records or more) runs the
/// evaluation beyond the basics on a second thread as soon as the table
/// exists (it needs only the table, so it does not wait for the GAUC),
/// while this thread sums the GAUC (and the ranking) and then the basic
/// report. DeLong's interval is computed by whichever side finishes first
/// (a claimed flag): which side is longer depends on the request, and not
/// as the instruction counts say. The basic 1M request's GAUC (scattered
/// reads) takes ~16.5 ms on this side against ~12.8 ms on the other; with
/// ranking and every extra field the sides are even. Unweighted tables
/// are built on both threads first; a weighted table is built on one, so
/// there the GAUC is summed beside it, as before. The answers are those
/// of [`table_gauc_ranking`] then [`binary_and_beyond`], which small input
/// takes (and spawns nothing).
fn evaluate_ranked(
    records: &BinaryRecords<'_>,
    weighting: GaucWeighting,
    ranking: Option<&ranking::RankingParams>,
    params: &CheckedBinaryParams,
    beyond: &CheckedBeyondParams,
) -> Result<(BinaryReport, BeyondReport, Option<ranking::RankingReport>), MetricsError> {
    let counts = RecordCounts::of_labels(records.labels);
    if records.scores.len() < table::PARALLEL_MIN {
        let (table, gauc, ranked) = table_gauc_ranking(records, weighting, ranking)?;
        let (report, extra) = binary_and_beyond(&table, counts, gauc, params, beyond);
        return Ok((report, extra, ranked));
    }
    let (ranked, spare) = sorted_records(records, ranking)?;
    let ranked = &ranked;
    let accumulate = move |u: UserIndex<'_>| accumulate_users(ranked, spare, records, ranking, u);
    Ok(std::thread::scope(|scope| {
        let (early, accumulate) = if records.weights.is_some() {
            let early = records.users.map(|u| scope.spawn(move || accumulate(u)));
            (early, None)
        } else {
            (None, Some(accumulate))
        };
        let table = ScoreTable::from_ranked(ranked, records.weights);
        let confusion = Confusion::at_threshold(&table, params.threshold);
        let claimed = AtomicBool::new(false);
        std::thread::scope(|inner| {
            let table = &table;
            let claim = || !claimed.swap(true, Ordering::AcqRel);
            let interval = move || delong::auc_ci(table, params.confidence);
            let side = inner.spawn(move || {
                let extra = evaluate_beyond(table, &confusion, params.beta, beyond);
                (claim().then(interval), extra)
            });
            let accumulator = match early {
                Some(h) => Some(h.join().unwrap_or_else(|p| std::panic::resume_unwind(p))),
                None => accumulate.and_then(|f| records.users.map(f)),
            };
            let (accumulator, ranked) = accumulator.map_or((None, None), |(acc, r)| (Some(acc), r));
            let gauc = accumulator.map(|acc| acc.finish(weighting));
            let join = || {
                let mine = claim().then(interval);
                let (theirs, extra) = side.join().unwrap_or_else(|p| std::panic::resume_unwind(p));
                // Exactly one side claimed the interval; the fallback never runs.
                (mine.or(theirs).unwrap_or_else(interval), extra)
            };
            let (report, extra) =
                evaluate_binary_then(table, counts, gauc, params, confusion, join);
            (report, extra, ranked)
        })
    }))
}

/// The checked records' table and, with users, their GAUC: ONE sort.
fn table_and_gauc(
    records: &BinaryRecords<'_>,
    weighting: GaucWeighting,
) -> Result<(ScoreTable, Option<Gauc>), MetricsError> {
    let (table, gauc, _) = table_gauc_ranking(records, weighting, None)?;
    Ok((table, gauc))
}

/// The checked records in the one sort's order, and the sort's scratch
/// when the ranking's buckets reuse it (otherwise it is freed now, before
/// the table is built, so its pages can serve the table).
fn sorted_records(
    records: &BinaryRecords<'_>,
    ranking: Option<&ranking::RankingParams>,
) -> Result<(table::SortedRecords, Vec<table::Ranked>), MetricsError> {
    table::check_records(records.scores, records.labels, records.weights)?;
    if let Some(users) = &records.users {
        users.check(records.scores.len())?;
    }
    let mut ranked = table::rank_records(
        records.scores,
        records.labels,
        records.users.map(|u| u.users),
    )?;
    let spare = if ranking.is_some() {
        ranked.take_spare()
    } else {
        ranked.free_spare();
        Vec::new()
    };
    Ok((ranked, spare))
}

/// The per-user GAUC sums of the sorted records and, with `ranking`, the
/// ranking metrics (read from the GAUC's user buckets, written into
/// `spare`).
fn accumulate_users(
    ranked: &table::SortedRecords,
    spare: Vec<table::Ranked>,
    records: &BinaryRecords<'_>,
    ranking: Option<&ranking::RankingParams>,
    u: UserIndex<'_>,
) -> (gauc::GaucAccumulator, Option<ranking::RankingReport>) {
    if ranking.is_none() {
        return (
            gauc::accumulate_streamed(ranked, records.weights, u.n_users),
            None,
        );
    }
    let mut ranker = ranking.map(ranking::Ranker::new);
    let acc = gauc::accumulate_ranked(ranked, spare, records.weights, u.n_users, |run| {
        if let Some(ranker) = ranker.as_mut() {
            ranker.add_ranked(run, records.scores);
        }
    });
    (acc, ranker.map(ranking::Ranker::finish))
}

/// [`table_and_gauc`] and, with users and `ranking`, the ranking metrics.
fn table_gauc_ranking(
    records: &BinaryRecords<'_>,
    weighting: GaucWeighting,
    ranking: Option<&ranking::RankingParams>,
) -> Result<(ScoreTable, Option<Gauc>, Option<ranking::RankingReport>), MetricsError> {
    let (ranked, spare) = sorted_records(records, ranking)?;
    let ranked = &ranked;
    let accumulate = move |u: UserIndex<'_>| accumulate_users(ranked, spare, records, ranking, u);
    let (table, accumulator) = if ranked.len() < table::PARALLEL_MIN {
        let table = ScoreTable::from_ranked(ranked, records.weights);
        (table, records.users.map(accumulate))
    } else {
        // The GAUC buckets and the global table only read the sorted records,
        // so on large input they are built side by side.
        std::thread::scope(|scope| {
            let handle = records.users.map(|u| scope.spawn(move || accumulate(u)));
            let table = ScoreTable::from_ranked(ranked, records.weights);
            let accumulator =
                handle.map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)));
            (table, accumulator)
        })
    };
    let (accumulator, ranked) = accumulator.map_or((None, None), |(acc, r)| (Some(acc), r));
    let gauc = accumulator.map(|acc| acc.finish(weighting));
    Ok((table, gauc, ranked))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_api_example_by_hand() {
        // scores 0.9 0.8 0.7 0.6 0.4 0.3; labels 1 1 0 1 0 0 at threshold 0.65:
        // tp 2 (0.9, 0.8), fp 1 (0.7), fn 1 (0.6), tn 2.
        let scores = [0.9, 0.8, 0.7, 0.6, 0.4, 0.3];
        let labels = [true, true, false, false, true, false];
        let report = evaluate_records(
            &BinaryRecords {
                scores: &scores,
                labels: &labels,
                weights: None,
                users: None,
            },
            &BinaryParams {
                threshold: 0.65,
                ..BinaryParams::default()
            },
            GaucWeighting::Impressions,
        )
        .unwrap();
        assert_eq!(
            report.counts,
            RecordCounts {
                count: 6,
                positives: 3,
                negatives: 3
            }
        );
        assert_eq!(
            report.confusion,
            Confusion {
                tp: 2.0,
                fp: 1.0,
                tn: 2.0,
                fn_: 1.0
            }
        );
        assert_eq!(report.precision, Some(2.0 / 3.0));
        // pairs: pos 0.9 beats 3 neg, 0.8 beats 3, 0.4 beats 1 -> 7/9
        assert_eq!(report.auc, Some(7.0 / 9.0));
        assert!(report.warnings.is_empty());
        assert!(report.gauc.is_none());
    }

    #[test]
    fn one_class_input_warns_instead_of_inventing_numbers() {
        let report = evaluate_records(
            &BinaryRecords {
                scores: &[0.2, 0.3],
                labels: &[false, false],
                weights: None,
                users: None,
            },
            &BinaryParams::default(),
            GaucWeighting::Impressions,
        )
        .unwrap();
        assert_eq!(report.auc, None);
        assert_eq!(report.precision, None);
        assert_eq!(report.recall, None);
        assert_eq!(report.f1, None);
        assert_eq!(report.accuracy, Some(1.0));
        assert!(report.roc.tpr.is_none());
        assert_eq!(report.auc_ci, None);
        assert_eq!(report.warnings.len(), 7, "{:?}", report.warnings);
    }

    /// `n` deterministic records: scores in [0, 1] on a grid of `distinct`
    /// values, 3 positives in 7, users `0..n_users`.
    fn grid_records(n: usize, distinct: usize, n_users: usize) -> (Vec<f64>, Vec<bool>, Vec<u32>) {
        let scores = (0..n)
            .map(|i| ((i * 7919) % distinct) as f64 / distinct as f64)
            .collect();
        let labels = (0..n).map(|i| (i * 31) % 7 < 3).collect();
        let users = (0..n).map(|i| ((i * 17) % n_users) as u32).collect();
        (scores, labels, users)
    }

    #[test]
    fn the_two_thread_path_equals_per_user_tables() {
        let n = table::PARALLEL_MIN + 1_000;
        let (scores, labels, users) = grid_records(n, 1013, 50);
        let report = evaluate_records(
            &BinaryRecords {
                scores: &scores,
                labels: &labels,
                weights: None,
                users: Some(UserIndex {
                    users: &users,
                    n_users: 50,
                }),
            },
            &BinaryParams::default(),
            GaucWeighting::Clicks,
        )
        .unwrap();
        let mut acc = GaucAccumulator::new();
        for user in 0..50u32 {
            let (s, l): (Vec<f64>, Vec<bool>) = (0..n)
                .filter(|&i| users[i] == user)
                .map(|i| (scores[i], labels[i]))
                .unzip();
            acc.add_user(&ScoreTable::from_records(&s, &l, None).unwrap());
        }
        let expected = acc.finish(GaucWeighting::Clicks);
        let got = report.gauc.unwrap();
        assert_eq!(
            (got.users, got.users_skipped),
            (expected.users, expected.users_skipped)
        );
        assert!((got.value.unwrap() - expected.value.unwrap()).abs() < 1e-12);
        assert_eq!(
            report.auc,
            auc(&ScoreTable::from_records(&scores, &labels, None).unwrap())
        );
    }

    /// The large-request path (the evaluation beyond the basics beside the
    /// GAUC, DeLong's interval on either side) answers the small path's
    /// bits: with and without weights and ranking, probabilities or not.
    #[test]
    fn a_large_requests_threads_give_the_small_paths_bits() {
        let n = table::PARALLEL_MIN + 3_000;
        let (probabilities, labels, users) = grid_records(n, 4099, 300);
        let logits: Vec<f64> = probabilities.iter().map(|p| 8.0 * p - 4.0).collect();
        let weights: Vec<f64> = (0..n).map(|i| 0.5 + (i % 5) as f64).collect();
        let params = BinaryParams::default().check().unwrap();
        let beyond = BeyondParams {
            n_bins: 20,
            strategy: BinStrategy::Quantile,
            thresholds: vec![0.25, 0.5],
            ..BeyondParams::default()
        }
        .check(BeyondNames::BODY, 10)
        .unwrap();
        let ranking = ranking::RankingParams::check(vec![1, 5], 10).unwrap();
        for scores in [&probabilities, &logits] {
            for weights in [None, Some(weights.as_slice())] {
                for ranking in [None, Some(&ranking)] {
                    let records = BinaryRecords {
                        scores,
                        labels: &labels,
                        weights,
                        users: Some(UserIndex {
                            users: &users,
                            n_users: 300,
                        }),
                    };
                    let weighting = GaucWeighting::Clicks;
                    let large =
                        evaluate_ranked(&records, weighting, ranking, &params, &beyond).unwrap();
                    let (table, gauc, ranked) =
                        table_gauc_ranking(&records, weighting, ranking).unwrap();
                    let counts = RecordCounts::of_labels(&labels);
                    let (report, extra) = binary_and_beyond(&table, counts, gauc, &params, &beyond);
                    assert_eq!(
                        format!("{large:?}"),
                        format!("{:?}", (report, extra, ranked)),
                        "weights {}, ranking {}",
                        weights.is_some(),
                        ranking.is_some()
                    );
                    assert_eq!(large.1.calibration.is_some(), scores == &probabilities);
                }
            }
        }
    }

    #[test]
    fn bad_parameters_name_the_field() {
        for (params, field) in [
            (
                BinaryParams {
                    beta: 0.0,
                    ..BinaryParams::default()
                },
                "beta",
            ),
            (
                BinaryParams {
                    beta: f64::NAN,
                    ..BinaryParams::default()
                },
                "beta",
            ),
            (
                BinaryParams {
                    threshold: f64::INFINITY,
                    ..BinaryParams::default()
                },
                "threshold",
            ),
            (
                BinaryParams {
                    max_points: Some(1),
                    ..BinaryParams::default()
                },
                "roc.max_points",
            ),
        ] {
            let err = params.check().unwrap_err();
            assert_eq!(err.field(), field, "{params:?}");
            // unchecked parameters are checked on entry to the core
            let records = BinaryRecords {
                scores: &[0.5],
                labels: &[true],
                weights: None,
                users: None,
            };
            let err = evaluate_records(&records, &params, GaucWeighting::Uniform).unwrap_err();
            assert_eq!(err.field(), field, "{params:?}");
        }
    }
}
