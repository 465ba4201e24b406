//! Response bodies of `POST /metrics`, built from the core reports.
//!
//! [`BinaryMetricsResponse`] is public so the streams endpoint returns the
//! same JSON: embed it with `#[serde(flatten)]` next to `stream` and
//! `auc_error_bound`.

use std::collections::BTreeMap;
use std::io;

use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use serde::{Serialize, Serializer};
use serde_json::ser::{CompactFormatter, Formatter};

use super::beyond::BeyondBody;
use crate::core::metrics::compare::Difference;
use crate::core::metrics::delong::AucCi;
use crate::core::metrics::ranking::RankingReport;
use crate::core::metrics::{BeyondReport, BinaryReport, Gauc, MulticlassReport, RocCurve};

/// Either response, serialized without a wrapper (`task` tells them apart).
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum MetricsResponse {
    Binary(Box<BinaryMetricsResponse>),
    Multiclass(Box<MulticlassMetricsResponse>),
}

impl MetricsResponse {
    /// A capacity for the answer's JSON that is rarely exceeded: the curves
    /// hold nearly all of its numbers (about 9 to 19 bytes each with the
    /// comma), so the buffer is allocated once instead of doubled ~10 times.
    pub fn json_capacity(&self) -> usize {
        const FIXED: usize = 2048;
        const BYTES_PER_NUMBER: usize = 20;
        let numbers = match self {
            MetricsResponse::Binary(b) => {
                let beyond = b.beyond.as_ref().map_or(0, |x| {
                    x.pr_curve.as_ref().map_or(0, |p| 3 * p.precision.len())
                        + x.calibration.as_ref().map_or(0, |c| 3 * c.prob_true.len())
                });
                3 * b.roc.thresholds.len() + beyond
            }
            MetricsResponse::Multiclass(m) => m.classes.saturating_mul(m.classes + 8),
        };
        numbers
            .saturating_mul(BYTES_PER_NUMBER)
            .saturating_add(FIXED)
    }
}

/// The `application/json` answer of `value`, byte for byte what
/// `axum::Json(value)` sends (serde_json's compact output, the same
/// Content-Type), but written into one buffer of `capacity` bytes with
/// [`AnswerFormatter`], which writes no negative zero (`-0.0` as `0.0`, as
/// [`canonical_zeros`](crate::api::negative_zero::canonical_zeros) would),
/// so the answer is marked [`ZerosCanonical`](crate::api::negative_zero::ZerosCanonical)
/// and not scanned again.
///
/// # Errors
/// What serializing `value` fails with (never for the response types here:
/// their maps have string keys).
pub fn json_answer<T: Serialize + ?Sized>(
    value: &T,
    capacity: usize,
) -> Result<Response, serde_json::Error> {
    let mut buffer = Vec::with_capacity(capacity);
    let mut serializer =
        serde_json::Serializer::with_formatter(&mut buffer, AnswerFormatter::default());
    value.serialize(&mut serializer)?;
    let mut response = (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        buffer,
    )
        .into_response();
    response
        .extensions_mut()
        .insert(crate::api::negative_zero::ZerosCanonical);
    Ok(response)
}

/// serde_json's compact formatter with a cheaper way to the same bytes for
/// two kinds of floats, common in the curves:
///
/// - the same value as the float written just before (a ROC or PR curve
///   repeats a rate at every step of the other class): its bytes are copied;
/// - a value in [1e-5, 1) that is the double of a decimal with at most six
///   places (`0.99011`, a score given with six decimals, which every curve
///   echoes as its thresholds): its digits are written directly.
///
/// Every other float is written by serde_json's own formatter. A negative
/// zero is written `0.0`, as `canonical_zeros` would rewrite it.
#[derive(Default)]
pub struct AnswerFormatter {
    last_bits: u64,
    last_len: usize,
    last: [u8; FLOAT_BYTES],
}

/// Longest float serde_json writes is 24 bytes (`-1.2345678901234567e-308`).
const FLOAT_BYTES: usize = 32;

impl Formatter for AnswerFormatter {
    fn write_f64<W>(&mut self, writer: &mut W, value: f64) -> io::Result<()>
    where
        W: ?Sized + io::Write,
    {
        let bits = value.to_bits();
        if bits != self.last_bits || self.last_len == 0 {
            self.last_len = format_f64(value, &mut self.last)?;
            self.last_bits = bits;
        }
        writer.write_all(&self.last[..self.last_len])
    }
}

/// Writes the finite `value` into `out` as serde_json does (a negative zero
/// as `0.0`); returns the length.
fn format_f64(value: f64, out: &mut [u8; FLOAT_BYTES]) -> io::Result<usize> {
    if value == 0.0 {
        out[..3].copy_from_slice(b"0.0");
        return Ok(3);
    }
    if let Some(len) = short_decimal(value, out) {
        return Ok(len);
    }
    let mut rest: &mut [u8] = &mut out[..];
    CompactFormatter.write_f64(&mut rest, value)?;
    let unused = rest.len();
    Ok(FLOAT_BYTES - unused)
}

/// Decimal places of the fast path.
const SHORT_PLACES: u32 = 6;
const SHORT_SCALE: f64 = 1e6;
/// "00", "01", ... "99": two digits per lookup.
const DIGIT_PAIRS: &[u8; 200] = b"\
    0001020304050607080910111213141516171819\
    2021222324252627282930313233343536373839\
    4041424344454647484950515253545556575859\
    6061626364656667686970717273747576777879\
    8081828384858687888990919293949596979899";
/// Below 1e-5 serde_json switches to exponent notation (`5e-6`).
const SHORT_MIN_UNITS: u32 = 10;

/// `value` written as `0.` and its digits when it is in [1e-5, 1) and the
/// double nearest a decimal `m / 10^6`: that decimal then is its shortest
/// representation (another decimal with as few digits would differ from it
/// by at least 10^-6, far more than the width of the doubles rounding to
/// `value`), which is what serde_json writes, in fixed notation in this
/// range. The test `short_decimals_are_written_as_serde_json_writes_them`
/// checks every one of them against serde_json.
fn short_decimal(value: f64, out: &mut [u8; FLOAT_BYTES]) -> Option<usize> {
    if !(0.0..1.0).contains(&value) {
        return None;
    }
    // value < 1, so this is at most 10^6; `as` truncates.
    let units = (value * SHORT_SCALE + 0.5) as u32;
    // Division of two exact integers rounds as parsing the decimal does.
    if !(SHORT_MIN_UNITS..1_000_000).contains(&units) || f64::from(units) / SHORT_SCALE != value {
        return None;
    }
    // `0.` and six digits (leading zeros included), then without the
    // trailing zeros (there is a nonzero digit: units >= 10).
    let pairs = [units / 10_000, units / 100 % 100, units % 100];
    out[0] = b'0';
    out[1] = b'.';
    for (i, pair) in pairs.into_iter().enumerate() {
        let at = 2 * pair as usize;
        out[2 + 2 * i..4 + 2 * i].copy_from_slice(&DIGIT_PAIRS[at..at + 2]);
    }
    let mut len = 2 + SHORT_PLACES as usize;
    while out[len - 1] == b'0' {
        len -= 1;
    }
    Some(len)
}

/// A finite value or `None`: a non-finite number never reaches a response
/// (serde_json would print `null` silently; the core does not produce them,
/// this keeps it so even if weights overflow).
pub(super) fn finite(v: Option<f64>) -> Option<f64> {
    v.filter(|x| x.is_finite())
}

/// Writes integral counts as JSON integers (`"tp": 2`, as unweighted
/// counts read) and weighted sums as floats.
pub(super) fn count<S: Serializer>(value: &f64, serializer: S) -> Result<S::Ok, S::Error> {
    const EXACT: f64 = 9_007_199_254_740_992.0; // 2^53
    if value.fract() == 0.0 && value.abs() < EXACT {
        serializer.serialize_i64(*value as i64)
    } else {
        serializer.serialize_f64(*value)
    }
}

pub(super) fn counts<S: Serializer>(values: &[f64], serializer: S) -> Result<S::Ok, S::Error> {
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
    /// Evaluation beyond the basics; `None` (no fields) where not computed.
    #[serde(flatten)]
    pub beyond: Option<BeyondBody>,
}

impl BinaryMetricsResponse {
    /// Adds the extended evaluation and its warnings.
    pub fn with_beyond(mut self, report: BeyondReport) -> Self {
        let (body, warnings) = BeyondBody::of(report);
        self.attach_beyond(body, warnings);
        self
    }

    /// Sets the extended fields and appends their warnings.
    pub fn attach_beyond(&mut self, body: BeyondBody, warnings: Vec<String>) {
        self.beyond = Some(body);
        self.warnings.extend(warnings);
    }
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
            beyond: None,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn ours(value: f64) -> String {
        let mut out = [0; FLOAT_BYTES];
        let len = format_f64(value, &mut out).expect("fits");
        String::from_utf8(out[..len].to_vec()).expect("ASCII")
    }

    #[test]
    fn short_decimals_are_written_as_serde_json_writes_them() {
        // Every double the fast path can take is m / 10^6 for one m.
        let mut taken = 0;
        for units in 1..1_000_000u32 {
            let value = f64::from(units) / 1e6;
            let mut out = [0; FLOAT_BYTES];
            if let Some(len) = short_decimal(value, &mut out) {
                taken += 1;
                let theirs = serde_json::to_string(&value).expect("finite");
                assert_eq!(&out[..len], theirs.as_bytes(), "{units}");
            }
        }
        assert_eq!(taken, 1_000_000 - 10);
    }

    #[test]
    fn every_float_is_written_as_serde_json_writes_it() {
        let mut state = 0x9E37_79B9_7F4A_7C15_u64;
        let mut next = || {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1);
            state
        };
        let mut values = vec![
            1.0,
            -1.0,
            0.5,
            1e-5,
            9.99999e-6,
            0.1 + 0.2,
            0.999_999,
            0.999_999_5,
            1e15,
            1e16,
            f64::MIN_POSITIVE,
            f64::MAX,
            f64::MIN,
            5e-324,
            -0.25,
            0.123_456_7,
        ];
        for _ in 0..200_000 {
            let bits = next();
            values.push(f64::from_bits(bits));
            // rates k / n and scores with few decimals, as the curves hold
            let n = (next() % 100_000) + 1;
            values.push((next() % (n + 1)) as f64 / n as f64);
            values.push((next() % 10_000_000) as f64 / 1e7);
        }
        for value in values.into_iter().filter(|v| v.is_finite() && *v != 0.0) {
            let theirs = serde_json::to_string(&value).expect("finite");
            assert_eq!(ours(value), theirs, "{:#x}", value.to_bits());
        }
        assert_eq!(ours(0.0), "0.0");
        assert_eq!(ours(-0.0), "0.0", "canonical_zeros writes it so");
    }

    #[test]
    fn an_answer_is_what_axum_json_and_canonical_zeros_send() {
        let body = PerClassBody {
            precision: vec![Some(0.5), None, Some(-0.0), Some(0.5), Some(0.25)],
            recall: vec![Some(1.0 / 3.0); 3],
            f1: vec![Some(0.0), Some(-0.0), Some(0.000_01), Some(0.000_009)],
            f_beta: vec![],
            auc: vec![Some(0.990_11), Some(0.990_11), Some(0.999_999_9)],
            support: vec![3.0, 2.5, -0.0],
        };
        let plain = serde_json::to_vec(&body).expect("serializes");
        let expected = crate::api::negative_zero::without_negative_zeros(&plain).unwrap_or(plain);
        let mut buffer = Vec::new();
        let mut serializer =
            serde_json::Serializer::with_formatter(&mut buffer, AnswerFormatter::default());
        body.serialize(&mut serializer).expect("serializes");
        assert_eq!(
            String::from_utf8_lossy(&buffer),
            String::from_utf8_lossy(&expected)
        );
    }
}
