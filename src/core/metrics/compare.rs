//! Comparing two models: the difference of their AUCs (DeLong, paired or
//! unpaired, as pROC's `roc.test(method = "delong")`) and of their GAUCs
//! (per-user, cluster-robust).
//!
//! Every signed field follows `value = model b − model a` (pROC reports
//! a − b): `z = value / std_error` and the interval is
//! `value ± z_(1+level)/2 · std_error`, not clipped.

use super::auc::auc;
use super::delong::delong_variance;
use super::gauc::{GaucWeighting, UserIndex};
use super::stats::{
    gauc_std_error, normal_two_sided_p, student_t_two_sided_p, z_critical, MeanMoments,
};
use super::table::ScoreTable;
use super::MetricsError;

/// A difference b − a with its test. Fields other than `value` (and
/// `users`) are `None` when the test is undefined, with a warning.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Difference {
    pub value: Option<f64>,
    pub std_error: Option<f64>,
    pub lower: Option<f64>,
    pub upper: Option<f64>,
    /// The test statistic (z, or t for the unpaired DeLong test).
    pub z: Option<f64>,
    pub p_value: Option<f64>,
    /// Welch–Satterthwaite degrees of freedom (unpaired DeLong only).
    pub df: Option<f64>,
    /// Users in both models (GAUC only; `None` when unpaired).
    pub users: Option<usize>,
}

/// The test of `value` with standard error `se`; `p` maps the statistic to
/// its two-sided p-value. A zero `se` with a zero `value` (identical
/// models) is z 0, p 1; with a non-zero `value` the test is undefined.
fn test(
    value: f64,
    se: f64,
    level: f64,
    p: impl Fn(f64) -> f64,
) -> Result<Difference, &'static str> {
    if !se.is_finite() {
        return Err("its standard error is not finite");
    }
    let z = if se > 0.0 {
        value / se
    } else if value == 0.0 {
        0.0
    } else {
        return Err("its standard error is 0 but the difference is not");
    };
    let half = z_critical(level) * se;
    Ok(Difference {
        value: Some(value),
        std_error: Some(se),
        lower: Some(value - half),
        upper: Some(value + half),
        z: Some(z),
        p_value: Some(p(z)),
        df: None,
        users: None,
    })
}

fn only_value(value: Option<f64>) -> Difference {
    Difference {
        value,
        ..Difference::default()
    }
}

/// `roc.test(roc_a, roc_b, method = "delong", paired = TRUE)` on records
/// scored by both models (same labels, unweighted).
///
/// The variance of `AUC_b − AUC_a` is DeLong's, written with the per-record
/// placement differences `d_i = (V_b,i − θ_b) − (V_a,i − θ_a)`:
/// `Σ_pos d² / (m (m − 1)) + Σ_neg d² / (n (n − 1))`, which is pROC's
/// `L S Lᵀ` with `L = (1, −1)` summed without its cancellation.
///
/// Returns the difference and the warnings about it.
/// `weights`, when given, may only be 0 or 1 for the test to be defined
/// (the tables say so); records of weight 0 are left out, as the tables
/// left them out.
pub fn paired_auc_diff(
    (table_a, scores_a): (&ScoreTable, &[f64]),
    (table_b, scores_b): (&ScoreTable, &[f64]),
    labels: &[bool],
    weights: Option<&[f64]>,
    level: f64,
) -> (Difference, Vec<String>) {
    let value = auc(table_b).zip(auc(table_a)).map(|(b, a)| b - a);
    let fail = |reason: String| {
        (
            only_value(value),
            vec![format!("auc_diff test is undefined: {reason}")],
        )
    };
    let (pa, pb) = match (delong_variance(table_a), delong_variance(table_b)) {
        (Ok((pa, _)), Ok((pb, _))) => (pa, pb),
        (Err(reason), _) | (_, Err(reason)) => return fail(reason),
    };
    let Some(value) = value else {
        return fail("an AUC is undefined".to_owned());
    };
    let va = pa.per_record(table_a, scores_a, labels);
    let vb = pb.per_record(table_b, scores_b, labels);
    let (mut pos, mut neg) = (0.0, 0.0);
    for (i, ((a, b), &positive)) in va.iter().zip(&vb).zip(labels).enumerate() {
        if weights.and_then(|w| w.get(i)) == Some(&0.0) {
            continue;
        }
        let d = (b - pb.theta) - (a - pa.theta);
        if positive {
            pos += d * d;
        } else {
            neg += d * d;
        }
    }
    let (m, n) = (pa.m, pa.n);
    let variance = pos / (m * (m - 1.0)) + neg / (n * (n - 1.0));
    match test(value, variance.sqrt(), level, normal_two_sided_p) {
        Ok(d) => (d, Vec::new()),
        Err(reason) => fail(reason.to_owned()),
    }
}

/// One side of an unpaired DeLong comparison: the AUC and, when DeLong's
/// variance is defined, `(variance, record count)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AucEstimate {
    pub auc: Option<f64>,
    pub variance: Option<(f64, f64)>,
}

impl AucEstimate {
    /// The estimate of a table (variance `None` where [`delong_variance`]
    /// gives none: weights, compaction, fewer than two of a class).
    pub fn of(table: &ScoreTable) -> AucEstimate {
        AucEstimate {
            auc: auc(table),
            variance: delong_variance(table)
                .ok()
                .map(|(_, v)| (v, table.total_pos() + table.total_neg())),
        }
    }
}

/// `roc.test(roc_a, roc_b, method = "delong", paired = FALSE)`: the two
/// DeLong variances added, `t = value / sqrt(V_a + V_b)`, and the p-value
/// from Student's t with pROC's Welch–Satterthwaite degrees of freedom
/// `df = (V_a + V_b)² / (V_a² / (n_a − 1) + V_b² / (n_b − 1))`, `n` the
/// record count of each side. The interval is normal, as for the paired
/// test.
pub fn unpaired_auc_diff(
    a: &AucEstimate,
    b: &AucEstimate,
    level: f64,
) -> (Difference, Vec<String>) {
    let value = b.auc.zip(a.auc).map(|(b, a)| b - a);
    let fail = |reason: &str| {
        (
            only_value(value),
            vec![format!("auc_diff test is undefined: {reason}")],
        )
    };
    let (Some(value), Some((va, na)), Some((vb, nb))) = (value, a.variance, b.variance) else {
        return fail("it needs DeLong's variance on both sides (see each side's auc_ci warning)");
    };
    let total = va + vb;
    let df = total * total / (va * va / (na - 1.0) + vb * vb / (nb - 1.0));
    let df = df.is_finite().then_some(df);
    let p = |t: f64| match df {
        Some(df) => student_t_two_sided_p(t, df),
        // Both variances 0: only reached with a zero difference (t = 0).
        None => 1.0,
    };
    match test(value, total.sqrt(), level, p) {
        Ok(d) => (Difference { df, ..d }, Vec::new()),
        Err(reason) => fail(reason),
    }
}

/// `GAUC_b − GAUC_a` over the users that contribute to both: the weighted
/// mean of the per-user differences `d_u = AUC_b,u − AUC_a,u` (GAUC weights)
/// and its cluster-robust standard error ([`gauc_std_error`]), normal test.
///
/// # Errors
/// Length mismatches and bad user indices, as [`MetricsError`].
pub fn paired_gauc_diff(
    scores_a: &[f64],
    scores_b: &[f64],
    labels: &[bool],
    weights: Option<&[f64]>,
    users: UserIndex<'_>,
    weighting: GaucWeighting,
    level: f64,
) -> Result<(Difference, Vec<String>), MetricsError> {
    for (field, len) in [
        ("predictions_a", scores_a.len()),
        ("predictions_b", scores_b.len()),
    ] {
        if len != labels.len() {
            return Err(MetricsError::LengthMismatch {
                field,
                len,
                expected: labels.len(),
            });
        }
    }
    if let Some(w) = weights {
        super::table::check_weights(w, labels.len())?;
    }
    users.check(labels.len())?;
    let mut moments = MeanMoments::default();
    let mut bucket: Vec<usize> = Vec::new();
    let by_user = super::ranking::group_by_user(users);
    for records in by_user.windows() {
        bucket.clear();
        bucket.extend_from_slice(records);
        let pick = |v: &[f64]| -> Vec<f64> { bucket.iter().map(|&i| v[i]).collect() };
        let user_labels: Vec<bool> = bucket.iter().map(|&i| labels[i]).collect();
        let user_weights = weights.map(pick);
        let table = |scores: &[f64]| {
            ScoreTable::from_records(&pick(scores), &user_labels, user_weights.as_deref())
        };
        let (ta, tb) = (table(scores_a)?, table(scores_b)?);
        if let (Some(a), Some(b)) = (auc(&ta), auc(&tb)) {
            let w = weighting.user_weight(ta.total_pos(), ta.total_neg());
            moments.add(w, b - a);
        }
    }
    Ok(moments_diff(
        &moments,
        Some(moments.n),
        level,
        "user-paired",
    ))
}

/// `GAUC_b − GAUC_a` of two independent GAUCs given as `(value,
/// std_error)`: their cluster-robust variances added, normal test.
pub fn unpaired_gauc_diff(
    a: (Option<f64>, Option<f64>),
    b: (Option<f64>, Option<f64>),
    level: f64,
) -> (Difference, Vec<String>) {
    let value = b.0.zip(a.0).map(|(b, a)| b - a);
    let (Some(value), Some(sa), Some(sb)) = (value, a.1, b.1) else {
        return (
            only_value(value),
            vec!["gauc_diff test is undefined: each GAUC needs a standard error (at least two contributing users, exact aggregates)".to_owned()],
        );
    };
    match test(value, (sa * sa + sb * sb).sqrt(), level, normal_two_sided_p) {
        Ok(d) => (d, Vec::new()),
        Err(reason) => (
            only_value(Some(value)),
            vec![format!("gauc_diff test is undefined: {reason}")],
        ),
    }
}

/// The test of a weighted mean of per-user differences.
fn moments_diff(
    moments: &MeanMoments,
    users: Option<usize>,
    level: f64,
    what: &str,
) -> (Difference, Vec<String>) {
    let value = moments.mean();
    let undefined = |reason: String| {
        (
            Difference {
                users,
                ..only_value(value)
            },
            vec![format!("gauc_diff ({what}) test is undefined: {reason}")],
        )
    };
    let (Some(value), Some(se)) = (value, gauc_std_error(moments)) else {
        return undefined(format!(
            "it needs at least two users contributing to both models, and there are {}",
            moments.n
        ));
    };
    if se == 0.0 {
        return undefined("the standard error of the per-user differences is 0".to_owned());
    }
    match test(value, se, level, normal_two_sided_p) {
        Ok(d) => (Difference { users, ..d }, Vec::new()),
        Err(reason) => undefined(reason.to_owned()),
    }
}
