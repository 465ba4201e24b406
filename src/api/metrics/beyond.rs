//! Evaluation beyond the basics (binary): the request options of
//! `POST /metrics` and the response fields, shared with the stream routes
//! (README, "Evaluation beyond the basics").

use serde::{Deserialize, Serialize};

use super::response::{count, counts, finite};
use crate::core::metrics::calibration::Calibration;
use crate::core::metrics::pr::PrCurve;
use crate::core::metrics::threshold::{Best, BestThreshold, ThresholdRow, TprAtFpr};
use crate::core::metrics::{BeyondParams, BeyondReport, BinStrategy};

fn default_pr_max_points() -> Option<usize> {
    BeyondParams::default().pr_max_points
}

fn default_pr_drop_intermediate() -> bool {
    BeyondParams::default().pr_drop_intermediate
}

fn default_n_bins() -> usize {
    BeyondParams::default().n_bins
}

/// `pr`: PR curve thinning; `max_points` absent = 1000, `null` = unlimited.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrParams {
    #[serde(default = "default_pr_max_points")]
    pub max_points: Option<usize>,
    #[serde(default = "default_pr_drop_intermediate")]
    pub drop_intermediate: bool,
}

/// `calibration`: bins and their placement.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CalibrationParams {
    #[serde(default = "default_n_bins")]
    pub n_bins: usize,
    #[serde(default)]
    pub strategy: StrategyParam,
}

/// `strategy`: uniform | quantile.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StrategyParam {
    #[default]
    Uniform,
    Quantile,
}

impl From<StrategyParam> for BinStrategy {
    fn from(s: StrategyParam) -> Self {
        match s {
            StrategyParam::Uniform => BinStrategy::Uniform,
            StrategyParam::Quantile => BinStrategy::Quantile,
        }
    }
}

/// The options of the request body, as given (each absent = default).
#[derive(Debug, Clone, Default)]
pub struct BeyondOptions {
    pub pr: Option<PrParams>,
    pub calibration: Option<CalibrationParams>,
    pub thresholds: Option<Vec<f64>>,
    pub tpr_at_fpr: Option<Vec<f64>>,
    pub max_fpr: Option<f64>,
}

impl BeyondOptions {
    /// The first option given, for refusing them with multiclass input.
    pub fn first_given(&self) -> Option<&'static str> {
        [
            ("pr", self.pr.is_some()),
            ("calibration", self.calibration.is_some()),
            ("thresholds", self.thresholds.is_some()),
            ("tpr_at_fpr", self.tpr_at_fpr.is_some()),
            ("max_fpr", self.max_fpr.is_some()),
        ]
        .into_iter()
        .find_map(|(name, given)| given.then_some(name))
    }

    /// The core's (unchecked) parameters.
    pub fn params(self) -> BeyondParams {
        let defaults = BeyondParams::default();
        let (pr_max_points, pr_drop_intermediate) = self.pr.map_or(
            (defaults.pr_max_points, defaults.pr_drop_intermediate),
            |p| (p.max_points, p.drop_intermediate),
        );
        let (n_bins, strategy) = self
            .calibration
            .map_or((defaults.n_bins, defaults.strategy), |c| {
                (c.n_bins, c.strategy.into())
            });
        BeyondParams {
            pr_max_points,
            pr_drop_intermediate,
            n_bins,
            strategy,
            thresholds: self.thresholds.unwrap_or_default(),
            tpr_at_fpr: self.tpr_at_fpr.unwrap_or_default(),
            max_fpr: self.max_fpr,
        }
    }
}

/// The PR curve (thresholds ascending; precision and recall one longer).
#[derive(Debug, Clone, Serialize)]
pub struct PrCurveBody {
    pub precision: Vec<f64>,
    pub recall: Vec<f64>,
    pub thresholds: Vec<f64>,
    pub points_dropped: usize,
}

impl From<PrCurve> for PrCurveBody {
    fn from(c: PrCurve) -> Self {
        PrCurveBody {
            precision: c.precision,
            recall: c.recall,
            thresholds: c.thresholds,
            points_dropped: c.points_dropped,
        }
    }
}

/// The calibration curve over the non-empty bins.
#[derive(Debug, Clone, Serialize)]
pub struct CalibrationBody {
    pub prob_true: Vec<f64>,
    pub prob_pred: Vec<f64>,
    #[serde(serialize_with = "counts")]
    pub counts: Vec<f64>,
    pub ece: Option<f64>,
    pub mce: Option<f64>,
    pub strategy: &'static str,
    pub n_bins: usize,
}

impl From<Calibration> for CalibrationBody {
    fn from(c: Calibration) -> Self {
        CalibrationBody {
            prob_true: c.prob_true,
            prob_pred: c.prob_pred,
            counts: c.counts,
            ece: finite(Some(c.ece)),
            mce: finite(Some(c.mce)),
            strategy: c.strategy.name(),
            n_bins: c.n_bins,
        }
    }
}

/// Counts and rates at one requested threshold.
#[derive(Debug, Clone, Serialize)]
pub struct ThresholdRowBody {
    pub threshold: f64,
    #[serde(serialize_with = "count")]
    pub tp: f64,
    #[serde(serialize_with = "count")]
    pub fp: f64,
    #[serde(serialize_with = "count")]
    pub tn: f64,
    #[serde(rename = "fn", serialize_with = "count")]
    pub fn_: f64,
    pub precision: Option<f64>,
    pub recall: Option<f64>,
    pub f_beta: Option<f64>,
    pub fpr: Option<f64>,
    pub specificity: Option<f64>,
}

impl From<ThresholdRow> for ThresholdRowBody {
    fn from(r: ThresholdRow) -> Self {
        ThresholdRowBody {
            threshold: r.threshold,
            tp: r.confusion.tp,
            fp: r.confusion.fp,
            tn: r.confusion.tn,
            fn_: r.confusion.fn_,
            precision: finite(r.precision),
            recall: finite(r.recall),
            f_beta: finite(r.f_beta),
            fpr: finite(r.fpr),
            specificity: finite(r.specificity),
        }
    }
}

/// A maximizing threshold and the maximum.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct BestBody {
    pub threshold: f64,
    pub value: f64,
}

/// The best thresholds by F-beta and by Youden's J.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct BestThresholdBody {
    pub f_beta: Option<BestBody>,
    pub youden_j: Option<BestBody>,
}

impl From<BestThreshold> for BestThresholdBody {
    fn from(b: BestThreshold) -> Self {
        let body = |best: Option<Best>| {
            best.filter(|b| b.value.is_finite()).map(|b| BestBody {
                threshold: b.threshold,
                value: b.value,
            })
        };
        BestThresholdBody {
            f_beta: body(b.f_beta),
            youden_j: body(b.youden_j),
        }
    }
}

/// The largest TPR with FPR at most `fpr`.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct TprAtFprBody {
    pub fpr: f64,
    pub tpr: f64,
    pub threshold: Option<f64>,
}

impl From<TprAtFpr> for TprAtFprBody {
    fn from(r: TprAtFpr) -> Self {
        TprAtFprBody {
            fpr: r.fpr,
            tpr: r.tpr,
            threshold: r.threshold,
        }
    }
}

/// The response fields of the extended evaluation, flattened into the
/// binary answer. `at_thresholds`, `tpr_at_fpr` and `partial_auc` appear
/// only when asked for (then `null` when undefined).
#[derive(Debug, Clone, Serialize)]
pub struct BeyondBody {
    pub average_precision: Option<f64>,
    pub pr_curve: Option<PrCurveBody>,
    pub log_loss: Option<f64>,
    pub brier_score: Option<f64>,
    pub mcc: Option<f64>,
    pub balanced_accuracy: Option<f64>,
    pub specificity: Option<f64>,
    pub npv: Option<f64>,
    pub cohen_kappa: Option<f64>,
    pub calibration: Option<CalibrationBody>,
    pub calibration_ratio: Option<f64>,
    pub normalized_entropy: Option<f64>,
    pub best_threshold: Option<BestThresholdBody>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub at_thresholds: Option<Option<Vec<ThresholdRowBody>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tpr_at_fpr: Option<Option<Vec<TprAtFprBody>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partial_auc: Option<Option<f64>>,
}

/// `Some(None)` (present, `null`) when `given`, else `None` (absent).
fn asked<T>(given: bool) -> Option<Option<T>> {
    given.then_some(None)
}

impl BeyondBody {
    /// The answer's body and its warnings.
    pub fn of(r: BeyondReport) -> (BeyondBody, Vec<String>) {
        let body = BeyondBody {
            average_precision: finite(r.average_precision),
            pr_curve: r.pr_curve.map(PrCurveBody::from),
            log_loss: finite(r.log_loss),
            brier_score: finite(r.brier_score),
            mcc: finite(r.mcc),
            balanced_accuracy: finite(r.balanced_accuracy),
            specificity: finite(r.specificity),
            npv: finite(r.npv),
            cohen_kappa: finite(r.cohen_kappa),
            calibration: r.calibration.map(CalibrationBody::from),
            calibration_ratio: finite(r.calibration_ratio),
            normalized_entropy: finite(r.normalized_entropy),
            best_threshold: Some(r.best_threshold.into()),
            at_thresholds: r
                .at_thresholds
                .map(|rows| Some(rows.into_iter().map(ThresholdRowBody::from).collect())),
            tpr_at_fpr: r
                .tpr_at_fpr
                .map(|rows| rows.map(|rows| rows.into_iter().map(TprAtFprBody::from).collect())),
            partial_auc: r.partial_auc.map(finite),
        };
        (body, r.warnings)
    }

    /// Every field `null` (the requested ones present as `null`): what a
    /// stream answers once its aggregate is no longer exact.
    pub fn undefined(params: &BeyondParams) -> BeyondBody {
        BeyondBody {
            average_precision: None,
            pr_curve: None,
            log_loss: None,
            brier_score: None,
            mcc: None,
            balanced_accuracy: None,
            specificity: None,
            npv: None,
            cohen_kappa: None,
            calibration: None,
            calibration_ratio: None,
            normalized_entropy: None,
            best_threshold: None,
            at_thresholds: asked(!params.thresholds.is_empty()),
            tpr_at_fpr: asked(!params.tpr_at_fpr.is_empty()),
            partial_auc: asked(params.max_fpr.is_some()),
        }
    }
}
