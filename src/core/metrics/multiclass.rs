//! Multiclass metrics of an N x C score matrix and class-index labels.
//!
//! Every count is weighted by the sample weights when given. Per-class values
//! that divide by 0 are `None`; `macro` and `weighted` averages skip them (as
//! scikit-learn's `zero_division=np.nan`, whose averages ignore NaN) and the
//! report says which classes were skipped.

use ndarray::{Array2, ArrayView2};

use super::auc::auc;
use super::confusion::{f_beta, precision, ratio, recall};
use super::table::{check_weights, ScoreTable};
use super::{check_beta, MetricsError};

/// Tolerance on a row sum for the row to count as a probability vector.
pub const PROBABILITY_SUM_TOLERANCE: f64 = 1e-6;

/// How per-class values are averaged.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Average {
    /// Pool the counts of every class, then compute once.
    Micro,
    /// Unweighted mean over classes whose value is defined.
    #[default]
    Macro,
    /// Mean over defined classes weighted by each class's (weighted) support.
    Weighted,
}

impl Average {
    /// The snake_case name used on the wire.
    pub fn name(self) -> &'static str {
        match self {
            Average::Micro => "micro",
            Average::Macro => "macro",
            Average::Weighted => "weighted",
        }
    }
}

/// Parameters of a multiclass evaluation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MulticlassParams {
    /// F-beta's beta, finite and > 0.
    pub beta: f64,
    pub average: Average,
}

impl Default for MulticlassParams {
    fn default() -> Self {
        MulticlassParams {
            beta: 1.0,
            average: Average::Macro,
        }
    }
}

/// Per-class values, indexed by class.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PerClass {
    pub precision: Vec<Option<f64>>,
    pub recall: Vec<Option<f64>>,
    pub f1: Vec<Option<f64>>,
    pub f_beta: Vec<Option<f64>>,
    /// One-vs-rest AUC of the class's score column.
    pub auc: Vec<Option<f64>>,
    /// Weighted count of records whose true class it is.
    pub support: Vec<f64>,
}

/// Everything a multiclass evaluation answers (`MulticlassMetrics` in
/// `openapi/openapi.yaml`).
#[derive(Debug, Clone, PartialEq)]
pub struct MulticlassReport {
    pub count: usize,
    pub classes: usize,
    pub beta: f64,
    pub average: Average,
    /// Argmax accuracy, ties to the lowest class index.
    pub accuracy: Option<f64>,
    /// `top_k_accuracy[k - 1]` for k = 1..=min(5, C).
    pub top_k_accuracy: Vec<Option<f64>>,
    /// Weighted C x C counts, rows = true class, columns = argmax class.
    pub confusion_matrix: Array2<f64>,
    pub precision: Option<f64>,
    pub recall: Option<f64>,
    pub f1: Option<f64>,
    pub f_beta: Option<f64>,
    pub per_class: PerClass,
    pub auc: Option<f64>,
    pub log_loss: Option<f64>,
    pub warnings: Vec<String>,
}

/// Evaluates N x C `scores` against `labels` in `0..C`.
///
/// - accuracy: weighted share of rows whose argmax (ties: lowest index) is the label;
/// - top-k: a row is a hit when its label is among the k highest scores. Ties
///   are broken as scikit-learn's `top_k_accuracy_score` does (a stable
///   ascending argsort, reversed): among equal scores the HIGHER class index
///   ranks first. So `top_k_accuracy[0]` can differ from `accuracy` on ties;
/// - per class c: tp = M[c][c], fp = column sum - tp, fn = row sum - tp of the
///   confusion matrix M; precision, recall, F1, F-beta as in [`super::confusion`];
/// - micro average: from the pooled tp, fp, fn (all equal to accuracy);
///   macro / weighted: mean of the defined per-class values (weights = support);
/// - AUC: one-vs-rest per class on its score column; micro pools every
///   (row, class) pair as one binary problem, as `roc_auc_score` on
///   label-binarized targets with `average='micro'`;
/// - log loss: `-sum w log p[label] / sum w` with p clipped to
///   `[eps, 1 - eps]` (f64 epsilon, as scikit-learn), only when every row is a
///   probability vector (entries in [0, 1], sum within 1e-6 of 1).
///
/// `O(N C log(N C))`: one sort per class column and one of the pooled scores.
///
/// # Errors
/// [`MetricsError`] for fewer than 2 columns, a length mismatch, a non-finite
/// score or weight, a negative weight, a label outside `0..C`, or a bad beta.
pub fn evaluate_multiclass(
    scores: ArrayView2<'_, f64>,
    labels: &[usize],
    weights: Option<&[f64]>,
    params: &MulticlassParams,
) -> Result<MulticlassReport, MetricsError> {
    check_inputs(scores, labels, weights, params)?;
    let (n, classes) = scores.dim();
    let weight = |i: usize| weights.and_then(|w| w.get(i).copied()).unwrap_or(1.0);
    let mut warnings = Vec::new();

    let mut matrix = Array2::<f64>::zeros((classes, classes));
    let k_max = classes.min(5);
    let mut top_k_hits = vec![0.0; k_max];
    let mut total = 0.0;
    for (i, (row, &label)) in scores.outer_iter().zip(labels).enumerate() {
        let w = weight(i);
        total += w;
        matrix[[label, argmax(&row)]] += w;
        let rank = sklearn_rank(&row, label);
        for (k, hits) in top_k_hits.iter_mut().enumerate() {
            if rank <= k {
                *hits += w;
            }
        }
    }
    let trace: f64 = (0..classes).map(|c| matrix[[c, c]]).sum();
    let accuracy = ratio(trace, total);
    if accuracy.is_none() {
        warnings.push("accuracy is undefined: the total sample weight is 0".to_owned());
    }
    let top_k_accuracy = top_k_hits.iter().map(|&h| ratio(h, total)).collect();

    let per_class = per_class_values(&matrix, scores, labels, weights, params.beta)?;
    let average = |values: &[Option<f64>], name: &str, warnings: &mut Vec<String>| {
        average_values(values, &per_class.support, params.average, name, warnings)
    };
    let (precision, recall, f1, f_beta) = match params.average {
        Average::Micro => {
            // pooled: tp = trace, fp = fn = total - trace
            let (tp, other) = (trace, total - trace);
            (
                super::confusion::precision(tp, other),
                super::confusion::recall(tp, other),
                super::confusion::f_beta(tp, other, other, 1.0),
                super::confusion::f_beta(tp, other, other, params.beta),
            )
        }
        _ => (
            average(&per_class.precision, "precision", &mut warnings),
            average(&per_class.recall, "recall", &mut warnings),
            average(&per_class.f1, "f1", &mut warnings),
            average(&per_class.f_beta, "f_beta", &mut warnings),
        ),
    };
    if params.average == Average::Micro && precision.is_none() {
        warnings.push(
            "micro precision, recall and F are undefined: the total sample weight is 0".to_owned(),
        );
    }
    let auc = match params.average {
        Average::Micro => {
            let value = pooled_auc(scores, labels, weights)?;
            if value.is_none() {
                warnings.push(
                    "micro auc is undefined: the pooled one-vs-rest problem has one class only"
                        .to_owned(),
                );
            }
            value
        }
        _ => average(&per_class.auc, "auc", &mut warnings),
    };
    let log_loss = match probability_problem(scores) {
        None => log_loss(scores, labels, weights, total),
        Some(reason) => {
            warnings.push(format!("log_loss is undefined: {reason}"));
            None
        }
    };
    if log_loss.is_none() && total <= 0.0 {
        warnings.push("log_loss is undefined: the total sample weight is 0".to_owned());
    }
    Ok(MulticlassReport {
        count: n,
        classes,
        beta: params.beta,
        average: params.average,
        accuracy,
        top_k_accuracy,
        confusion_matrix: matrix,
        precision,
        recall,
        f1,
        f_beta,
        per_class,
        auc,
        log_loss,
        warnings,
    })
}

fn check_inputs(
    scores: ArrayView2<'_, f64>,
    labels: &[usize],
    weights: Option<&[f64]>,
    params: &MulticlassParams,
) -> Result<(), MetricsError> {
    check_beta(params.beta)?;
    let (n, classes) = scores.dim();
    if classes < 2 {
        return Err(MetricsError::InvalidParameter {
            name: "predictions",
            detail: format!("has {classes} columns but multiclass scores need at least 2"),
        });
    }
    if labels.len() != n {
        return Err(MetricsError::LengthMismatch {
            field: "labels",
            len: labels.len(),
            expected: n,
        });
    }
    if let Some((index, _)) = scores.iter().enumerate().find(|(_, s)| !s.is_finite()) {
        return Err(MetricsError::NonFinite {
            field: "predictions",
            index: index / classes,
        });
    }
    if let Some((index, &label)) = labels.iter().enumerate().find(|(_, &l)| l >= classes) {
        return Err(MetricsError::LabelOutOfRange {
            index,
            label,
            classes,
        });
    }
    if let Some(w) = weights {
        check_weights(w, n)?;
    }
    Ok(())
}

/// Index of the highest score, ties to the lowest index.
fn argmax(row: &ndarray::ArrayView1<'_, f64>) -> usize {
    let mut best = 0;
    for (c, &s) in row.iter().enumerate() {
        if s > row[best] {
            best = c;
        }
    }
    best
}

/// 0-based rank of `label` in scikit-learn's top-k order: classes scoring
/// higher, plus classes with an equal score and a higher index.
fn sklearn_rank(row: &ndarray::ArrayView1<'_, f64>, label: usize) -> usize {
    let own = row[label];
    row.iter()
        .enumerate()
        .filter(|&(c, &s)| s > own || (s == own && c > label))
        .count()
}

fn per_class_values(
    matrix: &Array2<f64>,
    scores: ArrayView2<'_, f64>,
    labels: &[usize],
    weights: Option<&[f64]>,
    beta: f64,
) -> Result<PerClass, MetricsError> {
    let classes = matrix.nrows();
    let mut out = PerClass::default();
    for c in 0..classes {
        let tp = matrix[[c, c]];
        let support: f64 = matrix.row(c).sum();
        let predicted: f64 = matrix.column(c).sum();
        let (fp, fn_) = (predicted - tp, support - tp);
        out.precision.push(precision(tp, fp));
        out.recall.push(recall(tp, fn_));
        out.f1.push(f_beta(tp, fp, fn_, 1.0));
        out.f_beta.push(f_beta(tp, fp, fn_, beta));
        out.support.push(support);
        let is_c: Vec<bool> = labels.iter().map(|&l| l == c).collect();
        let column = scores.column(c).to_vec();
        out.auc
            .push(auc(&ScoreTable::from_records(&column, &is_c, weights)?));
    }
    Ok(out)
}

/// Macro or weighted mean of the defined values; a warning names the
/// skipped classes.
fn average_values(
    values: &[Option<f64>],
    support: &[f64],
    average: Average,
    name: &str,
    warnings: &mut Vec<String>,
) -> Option<f64> {
    let skipped: Vec<String> = values
        .iter()
        .enumerate()
        .filter(|(_, v)| v.is_none())
        .map(|(c, _)| c.to_string())
        .collect();
    let (mut sum, mut total) = (0.0, 0.0);
    for (v, &s) in values.iter().zip(support) {
        if let Some(v) = v {
            let w = if average == Average::Weighted { s } else { 1.0 };
            sum += w * v;
            total += w;
        }
    }
    let value = ratio(sum, total);
    if !skipped.is_empty() {
        warnings.push(format!(
            "{name} is undefined for class(es) {}; the {} average skips them",
            skipped.join(", "),
            average.name()
        ));
    }
    if value.is_none() {
        warnings.push(format!(
            "{} {name} is undefined: no class has a defined {name} with positive weight",
            average.name()
        ));
    }
    value
}

/// One-vs-rest AUC of every (row, class) pair pooled into one binary problem.
fn pooled_auc(
    scores: ArrayView2<'_, f64>,
    labels: &[usize],
    weights: Option<&[f64]>,
) -> Result<Option<f64>, MetricsError> {
    let classes = scores.ncols();
    let flat: Vec<f64> = scores.iter().copied().collect();
    let is_label: Vec<bool> = labels
        .iter()
        .flat_map(|&l| (0..classes).map(move |c| c == l))
        .collect();
    let pooled_weights: Option<Vec<f64>> = weights.map(|w| {
        w.iter()
            .flat_map(|&x| std::iter::repeat_n(x, classes))
            .collect()
    });
    Ok(auc(&ScoreTable::from_records(
        &flat,
        &is_label,
        pooled_weights.as_deref(),
    )?))
}

/// Why the rows are not probability vectors, or `None` when they are.
fn probability_problem(scores: ArrayView2<'_, f64>) -> Option<String> {
    for (i, row) in scores.outer_iter().enumerate() {
        if let Some(c) = row.iter().position(|p| !(0.0..=1.0).contains(p)) {
            return Some(format!(
                "predictions[{i}][{c}] is {} but log loss needs probabilities in [0, 1]",
                row[c]
            ));
        }
        let sum: f64 = row.sum();
        if (sum - 1.0).abs() > PROBABILITY_SUM_TOLERANCE {
            return Some(format!(
                "predictions[{i}] sums to {sum} but log loss needs rows summing to 1 (within {PROBABILITY_SUM_TOLERANCE})"
            ));
        }
    }
    None
}

fn log_loss(
    scores: ArrayView2<'_, f64>,
    labels: &[usize],
    weights: Option<&[f64]>,
    total: f64,
) -> Option<f64> {
    let eps = f64::EPSILON;
    let sum: f64 = scores
        .outer_iter()
        .zip(labels)
        .enumerate()
        .map(|(i, (row, &label))| {
            let w = weights.and_then(|w| w.get(i).copied()).unwrap_or(1.0);
            -w * row[label].clamp(eps, 1.0 - eps).ln()
        })
        .sum();
    ratio(sum, total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn by_hand_three_classes() {
        let scores = array![
            [0.7, 0.2, 0.1],
            [0.1, 0.8, 0.1],
            [0.2, 0.5, 0.3],
            [0.3, 0.3, 0.4],
        ];
        let labels = [0, 1, 2, 2];
        let r = evaluate_multiclass(scores.view(), &labels, None, &MulticlassParams::default())
            .unwrap();
        assert_eq!(r.accuracy, Some(0.75));
        assert_eq!(
            r.confusion_matrix,
            array![[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 1.0, 1.0]]
        );
        assert_eq!(r.per_class.precision, vec![Some(1.0), Some(0.5), Some(1.0)]);
        assert_eq!(r.per_class.recall, vec![Some(1.0), Some(1.0), Some(0.5)]);
        assert_eq!(r.top_k_accuracy, vec![Some(0.75), Some(1.0), Some(1.0)]);
        let expected_ll = -(0.7f64.ln() + 0.8f64.ln() + 0.3f64.ln() + 0.4f64.ln()) / 4.0;
        assert!((r.log_loss.unwrap() - expected_ll).abs() < 1e-12);
        assert!(r.warnings.is_empty(), "{:?}", r.warnings);
    }

    #[test]
    fn argmax_ties_go_low_but_top_k_ties_go_high_like_sklearn() {
        let scores = array![[0.5, 0.5, 0.0]];
        let r =
            evaluate_multiclass(scores.view(), &[0], None, &MulticlassParams::default()).unwrap();
        assert_eq!(r.accuracy, Some(1.0));
        assert_eq!(r.top_k_accuracy[0], Some(0.0));
        assert_eq!(r.top_k_accuracy[1], Some(1.0));
    }

    #[test]
    fn undefined_classes_are_skipped_and_named() {
        // class 2 never true nor predicted: precision/recall/F undefined.
        let scores = array![[0.9, 0.1, 0.0], [0.2, 0.8, 0.0]];
        let r = evaluate_multiclass(scores.view(), &[0, 1], None, &MulticlassParams::default())
            .unwrap();
        assert_eq!(r.per_class.precision[2], None);
        assert_eq!(r.precision, Some(1.0));
        assert!(
            r.warnings.iter().any(|w| w.contains("class(es) 2")),
            "{:?}",
            r.warnings
        );
    }

    #[test]
    fn non_probability_rows_have_no_log_loss() {
        let scores = array![[2.0, -1.0], [0.0, 3.0]];
        let r = evaluate_multiclass(scores.view(), &[0, 1], None, &MulticlassParams::default())
            .unwrap();
        assert_eq!(r.log_loss, None);
        assert!(r.warnings.iter().any(|w| w.starts_with("log_loss")));
        assert_eq!(r.auc, Some(1.0));
    }

    #[test]
    fn rejects_labels_outside_the_classes() {
        let scores = array![[0.5, 0.5]];
        let err = evaluate_multiclass(scores.view(), &[2], None, &MulticlassParams::default())
            .unwrap_err();
        assert_eq!(err.field(), "labels[0]");
    }
}
