//! Evaluation beyond the basics: everything of a binary evaluation past the
//! confusion counts, ROC, AUC and GAUC (README, "Evaluation beyond the
//! basics"). Computed from the one [`ScoreTable`], so `POST /metrics` and
//! streams share every number.

use super::calibration::{BinStrategy, Calibration, CalibrationPass};
use super::confusion::Confusion;
use super::pr::{pr_curve, PrCurve, PrPass};
use super::probability::{is_probability, ProbabilityMetrics, ProbabilitySums};
use super::table::{CumulativeIter, ScoreTable};
use super::threshold::{
    at_thresholds, partial_auc, tpr_at_fpr, BestThreshold, BestThresholdPass, ThresholdRow,
    TprAtFpr,
};
use super::{invalid, MetricsError};

/// Options of the extended evaluation (defaults as documented).
#[derive(Debug, Clone, PartialEq)]
pub struct BeyondParams {
    /// Thin the PR curve to at most this many points (>= 2); `None` = all.
    pub pr_max_points: Option<usize>,
    pub pr_drop_intermediate: bool,
    /// Calibration bins, >= 1.
    pub n_bins: usize,
    pub strategy: BinStrategy,
    /// Extra decision thresholds (finite), answered in this order.
    pub thresholds: Vec<f64>,
    /// Maximum FPRs for `tpr_at_fpr`, each in [0, 1].
    pub tpr_at_fpr: Vec<f64>,
    /// Partial AUC up to this FPR, in (0, 1].
    pub max_fpr: Option<f64>,
}

impl Default for BeyondParams {
    fn default() -> Self {
        BeyondParams {
            pr_max_points: Some(1000),
            pr_drop_intermediate: false,
            n_bins: 10,
            strategy: BinStrategy::Uniform,
            thresholds: Vec::new(),
            tpr_at_fpr: Vec::new(),
            max_fpr: None,
        }
    }
}

/// How the caller spells the parameters that differ between a JSON body
/// (`pr.max_points`) and a query string (`pr_max_points`).
#[derive(Debug, Clone, Copy)]
pub struct BeyondNames {
    pub pr_max_points: &'static str,
    pub n_bins: &'static str,
}

impl BeyondNames {
    /// Names in a `POST /metrics` body.
    pub const BODY: BeyondNames = BeyondNames {
        pr_max_points: "pr.max_points",
        n_bins: "calibration.n_bins",
    };
    /// Names in a stream query string.
    pub const QUERY: BeyondNames = BeyondNames {
        pr_max_points: "pr_max_points",
        n_bins: "n_bins",
    };
}

impl BeyondParams {
    /// Checks the values once, where they enter. List lengths are bounded by
    /// `max_list` (the service's `--max-thresholds`); `n_bins` needs no
    /// bound, only non-empty bins are stored (at most one per distinct score).
    ///
    /// # Errors
    /// [`MetricsError`] naming the field: a list over `max_list`, a
    /// non-finite threshold, a `tpr_at_fpr` outside [0, 1], `max_fpr`
    /// outside (0, 1], `n_bins` of 0, `max_points` < 2.
    pub fn check(
        self,
        names: BeyondNames,
        max_list: usize,
    ) -> Result<CheckedBeyondParams, MetricsError> {
        for (name, len) in [
            ("thresholds", self.thresholds.len()),
            ("tpr_at_fpr", self.tpr_at_fpr.len()),
        ] {
            if len > max_list {
                return Err(invalid(
                    name,
                    format!("has {len} elements, over the limit of {max_list} (--max-thresholds)"),
                ));
            }
        }
        if let Some(index) = self.thresholds.iter().position(|t| !t.is_finite()) {
            return Err(MetricsError::NonFinite {
                field: "thresholds",
                index,
            });
        }
        if let Some((i, x)) = self
            .tpr_at_fpr
            .iter()
            .enumerate()
            .find(|(_, x)| !(0.0..=1.0).contains(*x))
        {
            return Err(invalid(
                "tpr_at_fpr",
                format!("has {x} at index {i} but each maximum FPR must be in [0, 1]"),
            ));
        }
        if let Some(m) = self.max_fpr.filter(|m| !(*m > 0.0 && *m <= 1.0)) {
            return Err(invalid("max_fpr", format!("is {m} but must be in (0, 1]")));
        }
        if self.n_bins == 0 {
            return Err(invalid(
                names.n_bins,
                "is 0 but must be an integer >= 1".to_owned(),
            ));
        }
        if let Some(found) = self.pr_max_points.filter(|&m| m < 2) {
            return Err(MetricsError::TooFewRocPoints {
                name: names.pr_max_points,
                found,
            });
        }
        Ok(CheckedBeyondParams(self))
    }
}

/// [`BeyondParams`] that passed [`BeyondParams::check`].
#[derive(Debug, Clone, PartialEq)]
pub struct CheckedBeyondParams(BeyondParams);

impl std::ops::Deref for CheckedBeyondParams {
    type Target = BeyondParams;
    fn deref(&self) -> &BeyondParams {
        &self.0
    }
}

/// Everything the extended evaluation answers. `None` values are undefined
/// and have a sentence in `warnings`; the `Option<Vec>` / `Option<Option>`
/// fields are `None` when not requested.
#[derive(Debug, Clone, PartialEq)]
pub struct BeyondReport {
    pub average_precision: Option<f64>,
    pub pr_curve: Option<PrCurve>,
    pub log_loss: Option<f64>,
    pub brier_score: Option<f64>,
    pub mcc: Option<f64>,
    pub balanced_accuracy: Option<f64>,
    pub specificity: Option<f64>,
    pub npv: Option<f64>,
    pub cohen_kappa: Option<f64>,
    pub calibration: Option<Calibration>,
    pub calibration_ratio: Option<f64>,
    pub normalized_entropy: Option<f64>,
    pub at_thresholds: Option<Vec<ThresholdRow>>,
    pub best_threshold: BestThreshold,
    /// Outer `None`: not requested; inner `None`: undefined.
    pub tpr_at_fpr: Option<Option<Vec<TprAtFpr>>>,
    pub partial_auc: Option<Option<f64>>,
    pub warnings: Vec<String>,
}

/// `value`, with "`what` is undefined: `why`" in `warnings` when it is `None`.
fn note(warnings: &mut Vec<String>, value: Option<f64>, what: &str, why: &str) -> Option<f64> {
    if value.is_none() {
        warnings.push(format!("{what} is undefined: {why}"));
    }
    value
}

/// What the passes over the cumulative sums give: average precision, the
/// PR curve, the best thresholds, and the requested TPR at FPR and partial
/// AUC.
struct CumulativeParts {
    average_precision: Option<f64>,
    pr_curve: Option<PrCurve>,
    best: BestThreshold,
    tpr_at_fpr: Option<Option<Vec<TprAtFpr>>>,
    partial_auc: Option<Option<f64>>,
}

/// What the pass over the distinct scores alone gives (the probability
/// metrics and the calibration curve), and the requested rows at
/// thresholds (which read the per-score weights).
struct ScoreParts {
    probabilities: ProbabilityMetrics,
    calibration: Option<Calibration>,
    at_thresholds: Option<Vec<ThresholdRow>>,
}

/// The table's `(fps, tps)` totals, the bits of
/// [`ScoreTable::cumulative_totals`]: a counted table knows them exactly
/// without a pass (integer sums below 2^53 are exact in any order).
fn totals(table: &ScoreTable) -> (f64, f64) {
    match table.exact_totals() {
        Some((pos, neg)) => (neg, pos),
        None => table.cumulative_totals(),
    }
}

/// The accumulators of the cumulative sums' metrics, before the pass.
fn cumulative_passes(
    table: &ScoreTable,
    beta: f64,
    params: &CheckedBeyondParams,
) -> (Option<PrPass>, BestThresholdPass) {
    let (total_neg, total_pos) = totals(table);
    let write_curve = !(params.pr_drop_intermediate && table.len() > 2);
    let pr = PrPass::new(table, total_pos, write_curve, params.pr_max_points);
    (pr, BestThresholdPass::new(total_neg, total_pos, beta))
}

/// The parts of the accumulators after the pass (the PR curve with
/// `drop_intermediate` takes its own passes), and the requested TPR at FPR
/// and partial AUC.
fn cumulative_parts(
    table: &ScoreTable,
    params: &CheckedBeyondParams,
    pr: Option<PrPass>,
    best: BestThresholdPass,
) -> CumulativeParts {
    let average_precision = pr.as_ref().and_then(PrPass::average_precision);
    let pr_curve = if params.pr_drop_intermediate && table.len() > 2 {
        pr_curve(table, true, params.pr_max_points)
    } else {
        pr.and_then(PrPass::curve)
    };
    CumulativeParts {
        average_precision,
        pr_curve,
        best: best.finish(),
        tpr_at_fpr: (!params.tpr_at_fpr.is_empty()).then(|| tpr_at_fpr(table, &params.tpr_at_fpr)),
        partial_auc: params.max_fpr.map(|m| partial_auc(table, m)),
    }
}

/// The accumulators of the per-score metrics; `None` unless the scores are
/// probabilities.
fn score_passes(
    table: &ScoreTable,
    params: &CheckedBeyondParams,
) -> Option<(ProbabilitySums, Option<CalibrationPass>)> {
    is_probability(table).then(|| {
        let calibration = CalibrationPass::new(table, params.n_bins, params.strategy);
        (ProbabilitySums::default(), calibration)
    })
}

/// The per-score parts after the pass, and the requested rows at
/// thresholds.
fn score_parts(
    table: &ScoreTable,
    beta: f64,
    params: &CheckedBeyondParams,
    passes: Option<(ProbabilitySums, Option<CalibrationPass>)>,
) -> ScoreParts {
    let (probabilities, calibration) = match passes {
        Some((sums, calibration)) => (
            sums.finish(table),
            calibration.and_then(CalibrationPass::finish),
        ),
        None => (ProbabilityMetrics::undefined(), None),
    };
    ScoreParts {
        probabilities,
        calibration,
        at_thresholds: (!params.thresholds.is_empty())
            .then(|| at_thresholds(table, &params.thresholds, beta)),
    }
}

/// Calls `f(score, pos, neg, fps, tps)` for each distinct score, highest
/// first, with the cumulative sums of [`ScoreTable::cumulative`]: the kind
/// of sums matched once, so the fused pass is one plain loop.
#[inline(always)]
fn each_point(table: &ScoreTable, mut f: impl FnMut(f64, f64, f64, f64, f64)) {
    let (scores, pos, neg) = (table.scores(), table.pos_weights(), table.neg_weights());
    let weights = scores.iter().zip(pos).zip(neg);
    match table.cumulative() {
        CumulativeIter::Sequential { fps, tps } => {
            for ((((&s, &p), &n), &fps), &tps) in weights.zip(fps).zip(tps) {
                f(s, p, n, fps, tps);
            }
        }
        CumulativeIter::Running { .. } => {
            let (mut fps, mut tps) = (0.0, 0.0);
            for ((&s, &p), &n) in weights {
                fps += n;
                tps += p;
                f(s, p, n, fps, tps);
            }
        }
    }
}

/// Every pass of the evaluation beyond the basics as ONE pass over the
/// table: average precision, the PR curve, the best thresholds, the
/// probability metrics and the calibration bins each add the same terms in
/// the same order as their own pass (the same bits), and the table is read
/// once instead of five times.
fn fused_metrics(
    table: &ScoreTable,
    beta: f64,
    params: &CheckedBeyondParams,
) -> (CumulativeParts, ScoreParts) {
    let (mut pr, mut best) = cumulative_passes(table, beta, params);
    let mut scores = score_passes(table, params);
    match &mut scores {
        Some((sums, calibration)) => each_point(
            table,
            #[inline(always)]
            |s, p, n, fps, tps| {
                if let Some(pr) = &mut pr {
                    pr.add(s, fps, tps);
                }
                best.add(s, fps, tps);
                sums.add(s, p, n);
                if let Some(c) = calibration {
                    c.add(s, p, n);
                }
            },
        ),
        None => table.each_cumulative(
            #[inline(always)]
            |s, fps, tps| {
                if let Some(pr) = &mut pr {
                    pr.add(s, fps, tps);
                }
                best.add(s, fps, tps);
            },
        ),
    }
    (
        cumulative_parts(table, params, pr, best),
        score_parts(table, beta, params, scores),
    )
}

/// The extended evaluation of `table`; `confusion` is the one at the main
/// threshold and `beta` the request's.
pub fn evaluate_beyond(
    table: &ScoreTable,
    confusion: &Confusion,
    beta: f64,
    params: &CheckedBeyondParams,
) -> BeyondReport {
    let (cumulative, scores) = fused_metrics(table, beta, params);
    beyond_report(table, confusion, params, cumulative, scores)
}

/// The report of the parts, with its warnings in their documented order.
fn beyond_report(
    table: &ScoreTable,
    confusion: &Confusion,
    params: &CheckedBeyondParams,
    cumulative: CumulativeParts,
    scores: ScoreParts,
) -> BeyondReport {
    let mut warnings = Vec::new();
    let no_positive = "there is no positive label with positive weight";
    let not_probability = if table.is_empty() {
        "there are no records with positive weight"
    } else {
        "a prediction is outside [0, 1], so the predictions are not probabilities"
    };
    let probability = is_probability(table);
    let average_precision = note(
        &mut warnings,
        cumulative.average_precision,
        "average_precision",
        no_positive,
    );
    let pr_curve = cumulative.pr_curve;
    if pr_curve.is_none() {
        warnings.push(format!("pr_curve is undefined (null): {no_positive}"));
    }
    let probabilities = scores.probabilities;
    let log_loss = note(
        &mut warnings,
        probabilities.log_loss,
        "log_loss",
        not_probability,
    );
    let brier_score = note(
        &mut warnings,
        probabilities.brier_score,
        "brier_score",
        not_probability,
    );
    let mcc = note(
        &mut warnings,
        confusion.mcc(),
        "mcc",
        "the labels or the decisions at the threshold are all one class",
    );
    let balanced_accuracy = note(
        &mut warnings,
        confusion.balanced_accuracy(),
        "balanced_accuracy",
        "it needs both classes in the labels",
    );
    let specificity = note(
        &mut warnings,
        confusion.specificity(),
        "specificity",
        "there are no negative labels (tn + fp = 0)",
    );
    let npv = note(
        &mut warnings,
        confusion.npv(),
        "npv",
        "no record is predicted negative at the threshold (tn + fn = 0)",
    );
    let cohen_kappa = note(
        &mut warnings,
        confusion.cohen_kappa(),
        "cohen_kappa",
        "the labels and the decisions are the same single class (no disagreement is possible)",
    );
    let calibration = scores.calibration;
    if calibration.is_none() {
        warnings.push(format!(
            "calibration is undefined (null): {not_probability}"
        ));
    }
    let calibration_ratio = note(
        &mut warnings,
        probabilities.calibration_ratio,
        "calibration_ratio",
        if probability {
            no_positive
        } else {
            not_probability
        },
    );
    let normalized_entropy = note(
        &mut warnings,
        probabilities.normalized_entropy,
        "normalized_entropy",
        if probability {
            "the labels are all one class, so the base-rate entropy is 0"
        } else {
            not_probability
        },
    );
    let best = cumulative.best;
    if best.f_beta.is_none() {
        warnings.push(
            "best_threshold.f_beta is undefined: there are no records with positive weight"
                .to_owned(),
        );
    }
    if best.youden_j.is_none() {
        warnings.push("best_threshold.youden_j is undefined: it needs both classes".to_owned());
    }
    let tpr_at_fpr = cumulative.tpr_at_fpr;
    if matches!(tpr_at_fpr, Some(None)) {
        warnings.push("tpr_at_fpr is undefined (null): it needs both classes".to_owned());
    }
    let partial_auc = cumulative.partial_auc;
    if let (Some(None), Some(m)) = (partial_auc, params.max_fpr) {
        warnings.push(format!(
            "partial_auc (max_fpr {m}) is undefined: it needs both classes"
        ));
    }
    let at_thresholds = scores.at_thresholds;
    let undefined_row = |r: &ThresholdRow| {
        [r.precision, r.recall, r.f_beta, r.fpr, r.specificity]
            .iter()
            .any(Option::is_none)
    };
    if at_thresholds
        .as_ref()
        .is_some_and(|rows| rows.iter().any(undefined_row))
    {
        warnings.push(
            "at_thresholds: a rate whose denominator is 0 at its threshold is null".to_owned(),
        );
    }
    BeyondReport {
        average_precision,
        pr_curve,
        log_loss,
        brier_score,
        mcc,
        balanced_accuracy,
        specificity,
        npv,
        cohen_kappa,
        calibration,
        calibration_ratio,
        normalized_entropy,
        at_thresholds,
        best_threshold: best,
        tpr_at_fpr,
        partial_auc,
        warnings,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::metrics::calibration::calibration;
    use crate::core::metrics::pr::average_precision;
    use crate::core::metrics::table::test_tables;
    use crate::core::metrics::threshold::best_threshold;
    use proptest::prelude::*;

    /// The metrics of the cumulative sums in their own pass.
    fn cumulative_metrics(
        table: &ScoreTable,
        beta: f64,
        params: &CheckedBeyondParams,
    ) -> CumulativeParts {
        let (mut pr, mut best) = cumulative_passes(table, beta, params);
        table.each_cumulative(
            #[inline(always)]
            |threshold, fps, tps| {
                if let Some(pr) = &mut pr {
                    pr.add(threshold, fps, tps);
                }
                best.add(threshold, fps, tps);
            },
        );
        cumulative_parts(table, params, pr, best)
    }

    /// The per-score metrics in their own pass over the distinct scores, and
    /// the requested rows at thresholds.
    fn score_metrics(table: &ScoreTable, beta: f64, params: &CheckedBeyondParams) -> ScoreParts {
        let mut passes = score_passes(table, params);
        if let Some((sums, calibration)) = &mut passes {
            for (p, pos, neg) in table.iter() {
                sums.add(p, pos, neg);
                if let Some(c) = calibration {
                    c.add(p, pos, neg);
                }
            }
        }
        score_parts(table, beta, params, passes)
    }

    proptest! {
        /// The fused pass gives the report of every metric's own pass, bit
        /// for bit (`{:?}` of an `f64` is its shortest round-trip form:
        /// equal text, equal bits).
        #[test]
        fn the_fused_pass_gives_each_passs_bits(
            records in prop::collection::vec((0u8..14, any::<bool>(), 0u8..8), 0..60),
            pr_drop_intermediate in any::<bool>(),
            pr_max_points in prop::option::of(2usize..12),
            n_bins in 1usize..7,
            quantile in any::<bool>(),
            beta in 0.25f64..4.0,
            extras in any::<bool>(),
        ) {
            let strategy = if quantile { BinStrategy::Quantile } else { BinStrategy::Uniform };
            let params = BeyondParams {
                pr_max_points,
                pr_drop_intermediate,
                n_bins,
                strategy,
                thresholds: if extras { vec![0.5, 0.1, 2.0] } else { Vec::new() },
                tpr_at_fpr: if extras { vec![0.25, 0.0, 1.0] } else { Vec::new() },
                max_fpr: extras.then_some(0.5),
            }
            .check(BeyondNames::BODY, 10)
            .map_err(|e| TestCaseError::fail(format!("{e:?}")))?;
            for t in test_tables(&records) {
                let confusion = Confusion::at_threshold(&t, 0.5);
                let fused = evaluate_beyond(&t, &confusion, beta, &params);
                let own_passes = beyond_report(
                    &t,
                    &confusion,
                    &params,
                    cumulative_metrics(&t, beta, &params),
                    score_metrics(&t, beta, &params),
                );
                prop_assert_eq!(format!("{fused:?}"), format!("{own_passes:?}"));
                let own = ProbabilityMetrics::of(&t);
                prop_assert_eq!(
                    format!("{:?}", (fused.log_loss, fused.brier_score)),
                    format!("{:?}", (own.log_loss, own.brier_score))
                );
                prop_assert_eq!(
                    format!("{:?}", (fused.calibration_ratio, fused.normalized_entropy)),
                    format!("{:?}", (own.calibration_ratio, own.normalized_entropy))
                );
                prop_assert_eq!(
                    format!("{:?}", fused.average_precision),
                    format!("{:?}", average_precision(&t))
                );
                prop_assert_eq!(
                    format!("{:?}", fused.pr_curve),
                    format!("{:?}", pr_curve(&t, pr_drop_intermediate, pr_max_points))
                );
                prop_assert_eq!(
                    format!("{:?}", fused.calibration),
                    format!("{:?}", calibration(&t, n_bins, strategy))
                );
                prop_assert_eq!(
                    format!("{:?}", fused.best_threshold),
                    format!("{:?}", best_threshold(&t, beta))
                );
            }
        }
    }
}
