//! Response bodies of `POST /metrics`, built from the core reports.
//!
//! [`BinaryMetricsResponse`] is public so the streams endpoint returns the
//! same JSON: embed it with `#[serde(flatten)]` next to `stream` and
//! `auc_error_bound`.

use std::collections::BTreeMap;

use serde::{Serialize, Serializer};

use crate::core::metrics::compare::Difference;
use crate::core::metrics::delong::AucCi;
use crate::core::metrics::ranking::RankingReport;
use crate::core::metrics::{BinaryReport, Gauc, MulticlassReport, RocCurve};

/// Either response, serialized without a wrapper (`task` tells them apart).
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum MetricsResponse {
    Binary(Box<BinaryMetricsResponse>),
    Multiclass(Box<MulticlassMetricsResponse>),
}

/// A finite value or `None`: a non-finite number never reaches a response
/// (serde_json would print `null` silently; the core does not produce them,
/// this keeps it so even if weights overflow).
fn finite(v: Option<f64>) -> Option<f64> {
    v.filter(|x| x.is_finite())
}

/// Writes integral counts as JSON integers (`"tp": 2`, as unweighted
/// counts read) and weighted sums as floats.
fn count<S: Serializer>(value: &f64, serializer: S) -> Result<S::Ok, S::Error> {
    const EXACT: f64 = 9_007_199_254_740_992.0; // 2^53
    if value.fract() == 0.0 && value.abs() < EXACT {
        serializer.serialize_i64(*value as i64)
    } else {
        serializer.serialize_f64(*value)
    }
}

fn counts<S: Serializer>(values: &[f64], serializer: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeSeq;
    let mut seq = serializer.serialize_seq(Some(values.len()))?;
    for v in values {
        seq.serialize_element(&Count(*v))?;
    }
    seq.end()
}

#[derive(Debug, Clone, Copy)]
struct Count(f64);

impl Serialize for Count {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        count(&self.0, serializer)
    }
}

/// Weighted confusion counts at the threshold.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct ConfusionBody {
    #[serde(serialize_with = "count")]
    pub tp: f64,
    #[serde(serialize_with = "count")]
    pub fp: f64,
    #[serde(serialize_with = "count")]
    pub tn: f64,
    #[serde(rename = "fn", serialize_with = "count")]
    pub fn_: f64,
}

/// The ROC curve; a rate that is 0/0 everywhere (one class) is all `null`.
#[derive(Debug, Clone, Serialize)]
pub struct RocBody {
    pub fpr: Vec<Option<f64>>,
    pub tpr: Vec<Option<f64>>,
    /// `null` first: +infinity.
    pub thresholds: Vec<Option<f64>>,
    pub points_dropped: usize,
}

impl From<RocCurve> for RocBody {
    fn from(roc: RocCurve) -> Self {
        let len = roc.thresholds.len();
        let rate = |r: Option<Vec<f64>>| match r {
            Some(v) => v.into_iter().map(|x| finite(Some(x))).collect(),
            None => vec![None; len],
        };
        RocBody {
            fpr: rate(roc.fpr),
            tpr: rate(roc.tpr),
            thresholds: roc.thresholds,
            points_dropped: roc.points_dropped,
        }
    }
}

/// GAUC and how it was formed.
#[derive(Debug, Clone, Serialize)]
pub struct GaucBody {
    pub value: Option<f64>,
    pub users: usize,
    pub users_skipped: usize,
    pub weighting: &'static str,
    /// Cluster-robust standard error and the interval at `confidence`.
    pub std_error: Option<f64>,
    pub lower: Option<f64>,
    pub upper: Option<f64>,
}

impl From<Gauc> for GaucBody {
    fn from(g: Gauc) -> Self {
        GaucBody {
            value: finite(g.value),
            users: g.users,
            users_skipped: g.users_skipped,
            weighting: g.weighting.name(),
            std_error: finite(g.std_error),
            lower: finite(g.interval.map(|i| i.0)),
            upper: finite(g.interval.map(|i| i.1)),
        }
    }
}

/// `auc_ci`: DeLong's interval of the AUC.
#[derive(Debug, Clone, Serialize)]
pub struct AucCiBody {
    pub lower: f64,
    pub upper: f64,
    pub std_error: f64,
    pub level: f64,
    pub method: &'static str,
}

impl AucCiBody {
    fn of(ci: AucCi) -> Option<Self> {
        [ci.lower, ci.upper, ci.std_error]
            .iter()
            .all(|v| v.is_finite())
            .then_some(AucCiBody {
                lower: ci.lower,
                upper: ci.upper,
                std_error: ci.std_error,
                level: ci.level,
                method: "delong",
            })
    }
}

/// `ranking`: per-user metrics keyed by k (as `top_k_accuracy`).
#[derive(Debug, Clone, Serialize)]
pub struct RankingBody {
    pub k: Vec<usize>,
    pub hit_rate: BTreeMap<String, Option<f64>>,
    pub precision: BTreeMap<String, Option<f64>>,
    pub recall: BTreeMap<String, Option<f64>>,
    pub ndcg: BTreeMap<String, Option<f64>>,
    pub map: BTreeMap<String, Option<f64>>,
    pub mrr: Option<f64>,
    pub users: usize,
    pub users_skipped: usize,
}

impl From<RankingReport> for RankingBody {
    fn from(r: RankingReport) -> Self {
        let keyed = |values: &[Option<f64>]| {
            r.k.iter()
                .zip(values)
                .map(|(k, &v)| (k.to_string(), finite(v)))
                .collect()
        };
        RankingBody {
            hit_rate: keyed(&r.hit_rate),
            precision: keyed(&r.precision),
            recall: keyed(&r.recall),
            ndcg: keyed(&r.ndcg),
            map: keyed(&r.map),
            mrr: finite(r.mrr),
            users: r.users,
            users_skipped: r.users_skipped,
            k: r.k,
        }
    }
}

/// `auc_diff` / `gauc_diff` of a comparison: b − a and its test.
#[derive(Debug, Clone, Serialize)]
pub struct DifferenceBody {
    pub value: Option<f64>,
    pub std_error: Option<f64>,
    pub lower: Option<f64>,
    pub upper: Option<f64>,
    pub z: Option<f64>,
    pub p_value: Option<f64>,
    /// Unpaired DeLong only (there `null` when undefined).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub df: Option<Option<f64>>,
    /// GAUC only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub users: Option<Option<usize>>,
    pub method: &'static str,
}

impl DifferenceBody {
    /// The body without `df` and `users`; `method` names the test.
    pub fn new(d: Difference, method: &'static str) -> Self {
        DifferenceBody {
            value: finite(d.value),
            std_error: finite(d.std_error),
            lower: finite(d.lower),
            upper: finite(d.upper),
            z: finite(d.z),
            p_value: finite(d.p_value),
            df: None,
            users: None,
            method,
        }
    }

    /// Adds `df` (the unpaired DeLong test).
    pub fn with_df(mut self, d: &Difference) -> Self {
        self.df = Some(finite(d.df));
        self
    }

    /// Adds `users` (the GAUC tests; `null` when unpaired).
    pub fn with_users(mut self, d: &Difference) -> Self {
        self.users = Some(d.users);
        self
    }
}

/// The binary response (`BinaryMetrics` in `openapi/openapi.yaml`). `gauc`
/// is `null` without `user_ids`.
#[derive(Debug, Clone, Serialize)]
pub struct BinaryMetricsResponse {
    pub task: &'static str,
    pub count: u64,
    pub positives: u64,
    pub negatives: u64,
    pub threshold: f64,
    pub beta: f64,
    pub confusion: ConfusionBody,
    pub accuracy: Option<f64>,
    pub precision: Option<f64>,
    pub recall: Option<f64>,
    pub f1: Option<f64>,
    pub f_beta: Option<f64>,
    pub auc: Option<f64>,
    pub roc: RocBody,
    pub gauc: Option<GaucBody>,
    // ---- intervals and ranking ----
    /// `null` (with a warning) when undefined: weighted records, fewer than
    /// two records of a class.
    pub auc_ci: Option<AucCiBody>,
    /// Only when asked for (`POST /metrics` with `ranking`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ranking: Option<RankingBody>,
    // ---- end intervals and ranking ----
    pub warnings: Vec<String>,
}

impl From<BinaryReport> for BinaryMetricsResponse {
    fn from(r: BinaryReport) -> Self {
        BinaryMetricsResponse {
            task: "binary",
            count: r.counts.count,
            positives: r.counts.positives,
            negatives: r.counts.negatives,
            threshold: r.threshold,
            beta: r.beta,
            confusion: ConfusionBody {
                tp: r.confusion.tp,
                fp: r.confusion.fp,
                tn: r.confusion.tn,
                fn_: r.confusion.fn_,
            },
            accuracy: finite(r.accuracy),
            precision: finite(r.precision),
            recall: finite(r.recall),
            f1: finite(r.f1),
            f_beta: finite(r.f_beta),
            auc: finite(r.auc),
            roc: r.roc.into(),
            gauc: r.gauc.map(GaucBody::from),
            auc_ci: r.auc_ci.and_then(AucCiBody::of),
            ranking: None,
            warnings: r.warnings,
        }
    }
}

/// Per-class arrays, indexed by class.
#[derive(Debug, Clone, Serialize)]
pub struct PerClassBody {
    pub precision: Vec<Option<f64>>,
    pub recall: Vec<Option<f64>>,
    pub f1: Vec<Option<f64>>,
    pub f_beta: Vec<Option<f64>>,
    pub auc: Vec<Option<f64>>,
    #[serde(serialize_with = "counts")]
    pub support: Vec<f64>,
}

/// The multiclass response (`MulticlassMetrics` in `openapi/openapi.yaml`).
#[derive(Debug, Clone, Serialize)]
pub struct MulticlassMetricsResponse {
    pub task: &'static str,
    pub count: usize,
    pub classes: usize,
    pub beta: f64,
    pub average: &'static str,
    pub accuracy: Option<f64>,
    /// Keyed by k ("1" .. "5").
    pub top_k_accuracy: BTreeMap<String, Option<f64>>,
    pub confusion_matrix: Vec<CountRow>,
    pub precision: Option<f64>,
    pub recall: Option<f64>,
    pub f1: Option<f64>,
    pub f_beta: Option<f64>,
    pub per_class: PerClassBody,
    pub auc: Option<f64>,
    pub log_loss: Option<f64>,
    pub warnings: Vec<String>,
}

/// One confusion-matrix row of (weighted) counts.
#[derive(Debug, Clone, Serialize)]
pub struct CountRow(#[serde(serialize_with = "counts")] pub Vec<f64>);

impl From<MulticlassReport> for MulticlassMetricsResponse {
    fn from(r: MulticlassReport) -> Self {
        let all_finite = |v: Vec<Option<f64>>| v.into_iter().map(finite).collect();
        MulticlassMetricsResponse {
            task: "multiclass",
            count: r.count,
            classes: r.classes,
            beta: r.beta,
            average: r.average.name(),
            accuracy: finite(r.accuracy),
            top_k_accuracy: r
                .top_k_accuracy
                .iter()
                .enumerate()
                .map(|(k, &v)| ((k + 1).to_string(), finite(v)))
                .collect(),
            confusion_matrix: r
                .confusion_matrix
                .outer_iter()
                .map(|row| CountRow(row.to_vec()))
                .collect(),
            precision: finite(r.precision),
            recall: finite(r.recall),
            f1: finite(r.f1),
            f_beta: finite(r.f_beta),
            per_class: PerClassBody {
                precision: all_finite(r.per_class.precision),
                recall: all_finite(r.per_class.recall),
                f1: all_finite(r.per_class.f1),
                f_beta: all_finite(r.per_class.f_beta),
                auc: all_finite(r.per_class.auc),
                support: r.per_class.support,
            },
            auc: finite(r.auc),
            log_loss: finite(r.log_loss),
            warnings: r.warnings,
        }
    }
}
