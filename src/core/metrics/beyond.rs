//! Evaluation beyond the basics: everything of a binary evaluation past the
//! confusion counts, ROC, AUC and GAUC (README, "Evaluation beyond the
//! basics"). Computed from the one [`ScoreTable`], so `POST /metrics` and
//! streams share every number.

use super::calibration::{calibration, BinStrategy, Calibration};
use super::confusion::Confusion;
use super::pr::{average_precision, pr_curve, PrCurve};
use super::probability::{is_probability, ProbabilityMetrics};
use super::table::ScoreTable;
use super::threshold::{
    at_thresholds, best_threshold, partial_auc, tpr_at_fpr, BestThreshold, ThresholdRow, TprAtFpr,
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

/// The extended evaluation of `table`; `confusion` is the one at the main
/// threshold and `beta` the request's.
pub fn evaluate_beyond(
    table: &ScoreTable,
    confusion: &Confusion,
    beta: f64,
    params: &CheckedBeyondParams,
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
        average_precision(table),
        "average_precision",
        no_positive,
    );
    let pr_curve = pr_curve(table, params.pr_drop_intermediate, params.pr_max_points);
    if pr_curve.is_none() {
        warnings.push(format!("pr_curve is undefined (null): {no_positive}"));
    }
    // One pass for the four, the logarithms taken once.
    let probabilities = ProbabilityMetrics::of(table);
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
    let calibration = calibration(table, params.n_bins, params.strategy);
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
    let best = best_threshold(table, beta);
    if best.f_beta.is_none() {
        warnings.push(
            "best_threshold.f_beta is undefined: there are no records with positive weight"
                .to_owned(),
        );
    }
    if best.youden_j.is_none() {
        warnings.push("best_threshold.youden_j is undefined: it needs both classes".to_owned());
    }
    let tpr_at_fpr = (!params.tpr_at_fpr.is_empty()).then(|| {
        let rows = tpr_at_fpr(table, &params.tpr_at_fpr);
        if rows.is_none() {
            warnings.push("tpr_at_fpr is undefined (null): it needs both classes".to_owned());
        }
        rows
    });
    let partial_auc = params.max_fpr.map(|m| {
        let value = partial_auc(table, m);
        if value.is_none() {
            warnings.push(format!(
                "partial_auc (max_fpr {m}) is undefined: it needs both classes"
            ));
        }
        value
    });
    let at_thresholds =
        (!params.thresholds.is_empty()).then(|| at_thresholds(table, &params.thresholds, beta));
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
