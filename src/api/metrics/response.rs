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

use super::beyond::{BeyondBody, CalibrationBody, PrCurveBody};
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

/// The `application/json` answer of `POST /metrics`, byte for byte what
/// `axum::Json(response)` sends (serde_json's compact output, the same
/// Content-Type), written into one buffer of
/// [`MetricsResponse::json_capacity`] bytes: a binary answer by
/// [`AnswerWriter`] (its curves and floats without serde's per-value calls),
/// a multiclass one by serde with [`AnswerFormatter`]. Neither writes a
/// negative zero (`-0.0` as `0.0`, as
/// [`canonical_zeros`](crate::api::negative_zero::canonical_zeros) would),
/// so the answer is marked [`ZerosCanonical`](crate::api::negative_zero::ZerosCanonical)
/// and not scanned again.
///
/// # Errors
/// What serializing `response` fails with (never for these types).
pub fn metrics_answer(response: &MetricsResponse) -> Result<Response, serde_json::Error> {
    let mut buffer = Vec::with_capacity(response.json_capacity());
    response.write_json(&mut buffer)?;
    Ok(zeros_canonical_answer(buffer))
}

impl MetricsResponse {
    /// Appends the answer's JSON to `out`: what serde_json writes for
    /// `self`, without negative zeros. A binary answer (nearly all of its
    /// bytes are the numbers of its curves) goes through [`AnswerWriter`],
    /// a multiclass one (a few numbers per class) through serde.
    ///
    /// # Errors
    /// What serializing `self` fails with (never for these types).
    pub fn write_json(&self, out: &mut Vec<u8>) -> Result<(), serde_json::Error> {
        match self {
            MetricsResponse::Binary(b) => AnswerWriter::new(out).binary(b),
            MetricsResponse::Multiclass(m) => write_serde(out, m),
        }
    }
}

/// serde_json's compact output of `value` with [`AnswerFormatter`] (no
/// negative zero), appended to `out`.
fn write_serde<T: Serialize + ?Sized>(
    out: &mut Vec<u8>,
    value: &T,
) -> Result<(), serde_json::Error> {
    let mut serializer = serde_json::Serializer::with_formatter(out, AnswerFormatter::default());
    value.serialize(&mut serializer)
}

/// `buffer` as an `application/json` response marked
/// [`ZerosCanonical`](crate::api::negative_zero::ZerosCanonical): it was
/// written without a negative zero.
fn zeros_canonical_answer(buffer: Vec<u8>) -> Response {
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
    response
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
        let len = self.format_cached(value)?;
        writer.write_all(&self.last[..len])
    }
}

impl AnswerFormatter {
    /// Leaves the bytes of the finite `value` (see [`format_f64`]) in
    /// `self.last[..len]` and returns `len`; the last float's bytes stay
    /// when it is the same value. Shared by serde's calls
    /// ([`Formatter::write_f64`]) and [`AnswerWriter`], so both write the
    /// same bytes.
    #[inline]
    fn format_cached(&mut self, value: f64) -> io::Result<usize> {
        let bits = value.to_bits();
        if bits != self.last_bits || self.last_len == 0 {
            self.last_len = format_f64(value, &mut self.last)?;
            self.last_bits = bits;
        }
        Ok(self.last_len)
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
    match integral_count(*value) {
        Some(n) => serializer.serialize_i64(n),
        None => serializer.serialize_f64(*value),
    }
}

/// The count as an integer when it is one that a double holds exactly (below
/// 2^53 in magnitude); `None` for a fractional or non-finite sum. `-0.0` is 0.
fn integral_count(value: f64) -> Option<i64> {
    const EXACT: f64 = 9_007_199_254_740_992.0; // 2^53

    // `as` is exact here: an integral value below 2^53.
    (value.fract() == 0.0 && value.abs() < EXACT).then_some(value as i64)
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

/// Writes the binary answer of `POST /metrics` (and its extended fields)
/// into the output buffer: the same bytes as serde_json with
/// [`AnswerFormatter`] (as [`metrics_answer`] sends), field for field in the
/// order of the structs' declarations.
///
/// Why: a 1k-row answer is nearly all curve numbers (ROC, PR, calibration:
/// some 3,000 to 6,000 floats). serde_json inlines most of its per-value
/// machinery, so what costs outside the float formatting is the call of the
/// float writer and the `memcpy` of each float's bytes. Here each array is
/// one loop that puts the separators and the float's bytes straight into the
/// buffer, the per-float writer inlined and its bytes copied at a fixed size;
/// the one formatter ([`AnswerFormatter::format_cached`], so [`format_f64`])
/// makes them. About 80 -> 52 instructions a number outside the formatter
/// (callgrind, the server's 1k-row bench answer: 845 k -> 729 k a request).
/// The scalar floats are written likewise. Small or rare parts (strings,
/// integers, `gauc`, `auc_ci`, `ranking`, `best_threshold`, the requested
/// rows) stay on serde with the same formatter. The structs are destructured
/// without `..`, so a new field fails to compile here until it is written,
/// and the tests compare the bytes with serde_json's on random answers.
struct AnswerWriter<'a> {
    out: &'a mut Vec<u8>,
    floats: AnswerFormatter,
}

impl<'a> AnswerWriter<'a> {
    fn new(out: &'a mut Vec<u8>) -> Self {
        AnswerWriter {
            out,
            floats: AnswerFormatter::default(),
        }
    }

    /// `{"name":`, opening an object at its first field. Field names are
    /// the structs' (ASCII identifiers, nothing to escape).
    fn open(&mut self, name: &str) {
        self.out.extend_from_slice(b"{\"");
        self.out.extend_from_slice(name.as_bytes());
        self.out.extend_from_slice(b"\":");
    }

    /// `,"name":`, a further field.
    fn key(&mut self, name: &str) {
        self.out.extend_from_slice(b",\"");
        self.out.extend_from_slice(name.as_bytes());
        self.out.extend_from_slice(b"\":");
    }

    fn close(&mut self) {
        self.out.push(b'}');
    }

    /// A value serde writes (strings, integers, the small nested bodies).
    fn serde<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), serde_json::Error> {
        write_serde(self.out, value)
    }

    /// A float as serde_json's `serialize_f64` writes it: `null` when it is
    /// not finite, else the formatter's bytes (no negative zero). Inlined
    /// into the array loops: the call would cost about as much as the rest.
    /// The formatter's whole buffer is appended (a copy of fixed size, a few
    /// moves instead of a call to `memcpy` for each float), then cut back to
    /// the float's bytes.
    #[inline(always)]
    fn float(&mut self, value: f64) -> Result<(), serde_json::Error> {
        if value.is_finite() {
            let len = self
                .floats
                .format_cached(value)
                .map_err(serde_json::Error::io)?;
            let start = self.out.len();
            self.out.extend_from_slice(&self.floats.last);
            self.out.truncate(start + len);
        } else {
            self.out.extend_from_slice(b"null");
        }
        Ok(())
    }

    #[inline(always)]
    fn optional_float(&mut self, value: Option<f64>) -> Result<(), serde_json::Error> {
        match value {
            Some(v) => self.float(v),
            None => {
                self.out.extend_from_slice(b"null");
                Ok(())
            }
        }
    }

    /// `[a,b,...]` of floats.
    ///
    /// The three array loops (here, [`Self::optional_floats`],
    /// [`Self::counts`]) are written out: one generic loop taking the
    /// element writer as a closure measured +67 k instructions a 1k-row
    /// answer (729 k -> 797 k, callgrind, 200 requests), its per-float
    /// writer no longer inlined.
    fn floats(&mut self, values: &[f64]) -> Result<(), serde_json::Error> {
        self.out.push(b'[');
        if let Some((first, rest)) = values.split_first() {
            self.float(*first)?;
            for &value in rest {
                self.out.push(b',');
                self.float(value)?;
            }
        }
        self.out.push(b']');
        Ok(())
    }

    /// `[a,null,...]` of optional floats.
    fn optional_floats(&mut self, values: &[Option<f64>]) -> Result<(), serde_json::Error> {
        self.out.push(b'[');
        if let Some((first, rest)) = values.split_first() {
            self.optional_float(*first)?;
            for &value in rest {
                self.out.push(b',');
                self.optional_float(value)?;
            }
        }
        self.out.push(b']');
        Ok(())
    }

    /// A (weighted) count as [`count`] writes it.
    fn count(&mut self, value: f64) -> Result<(), serde_json::Error> {
        match integral_count(value) {
            Some(n) => self.serde(&n),
            None => self.float(value),
        }
    }

    /// `[...]` of counts, as [`counts`] writes them.
    fn counts(&mut self, values: &[f64]) -> Result<(), serde_json::Error> {
        self.out.push(b'[');
        for (i, &value) in values.iter().enumerate() {
            if i > 0 {
                self.out.push(b',');
            }
            self.count(value)?;
        }
        self.out.push(b']');
        Ok(())
    }

    /// [`BinaryMetricsResponse`] as its `Serialize` writes it (`ranking`
    /// only when present, then the fields of `beyond` flattened in).
    fn binary(&mut self, r: &BinaryMetricsResponse) -> Result<(), serde_json::Error> {
        let BinaryMetricsResponse {
            task,
            count,
            positives,
            negatives,
            threshold,
            beta,
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
            ranking,
            warnings,
            beyond,
        } = r;
        self.open("task");
        self.serde(task)?;
        self.key("count");
        self.serde(count)?;
        self.key("positives");
        self.serde(positives)?;
        self.key("negatives");
        self.serde(negatives)?;
        self.key("threshold");
        self.float(*threshold)?;
        self.key("beta");
        self.float(*beta)?;
        self.key("confusion");
        self.confusion(confusion)?;
        for (name, value) in [
            ("accuracy", accuracy),
            ("precision", precision),
            ("recall", recall),
            ("f1", f1),
            ("f_beta", f_beta),
            ("auc", auc),
        ] {
            self.key(name);
            self.optional_float(*value)?;
        }
        self.key("roc");
        self.roc(roc)?;
        self.key("gauc");
        self.serde(gauc)?;
        self.key("auc_ci");
        self.serde(auc_ci)?;
        if let Some(ranking) = ranking {
            self.key("ranking");
            self.serde(ranking)?;
        }
        self.key("warnings");
        self.serde(warnings)?;
        if let Some(beyond) = beyond {
            self.beyond(beyond)?;
        }
        self.close();
        Ok(())
    }

    fn confusion(&mut self, c: &ConfusionBody) -> Result<(), serde_json::Error> {
        let ConfusionBody { tp, fp, tn, fn_ } = c;
        self.open("tp");
        self.count(*tp)?;
        self.key("fp");
        self.count(*fp)?;
        self.key("tn");
        self.count(*tn)?;
        self.key("fn");
        self.count(*fn_)?;
        self.close();
        Ok(())
    }

    fn roc(&mut self, roc: &RocBody) -> Result<(), serde_json::Error> {
        let RocBody {
            fpr,
            tpr,
            thresholds,
            points_dropped,
        } = roc;
        self.open("fpr");
        self.optional_floats(fpr)?;
        self.key("tpr");
        self.optional_floats(tpr)?;
        self.key("thresholds");
        self.optional_floats(thresholds)?;
        self.key("points_dropped");
        self.serde(points_dropped)?;
        self.close();
        Ok(())
    }

    /// The fields of [`BeyondBody`], each after a comma (they follow
    /// `warnings` in the flattened answer).
    fn beyond(&mut self, b: &BeyondBody) -> Result<(), serde_json::Error> {
        let BeyondBody {
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
            best_threshold,
            at_thresholds,
            tpr_at_fpr,
            partial_auc,
        } = b;
        self.key("average_precision");
        self.optional_float(*average_precision)?;
        self.key("pr_curve");
        match pr_curve {
            Some(pr) => self.pr_curve(pr)?,
            None => self.out.extend_from_slice(b"null"),
        }
        for (name, value) in [
            ("log_loss", log_loss),
            ("brier_score", brier_score),
            ("mcc", mcc),
            ("balanced_accuracy", balanced_accuracy),
            ("specificity", specificity),
            ("npv", npv),
            ("cohen_kappa", cohen_kappa),
        ] {
            self.key(name);
            self.optional_float(*value)?;
        }
        self.key("calibration");
        match calibration {
            Some(c) => self.calibration(c)?,
            None => self.out.extend_from_slice(b"null"),
        }
        self.key("calibration_ratio");
        self.optional_float(*calibration_ratio)?;
        self.key("normalized_entropy");
        self.optional_float(*normalized_entropy)?;
        self.key("best_threshold");
        self.serde(best_threshold)?;
        if let Some(rows) = at_thresholds {
            self.key("at_thresholds");
            self.serde(rows)?;
        }
        if let Some(rows) = tpr_at_fpr {
            self.key("tpr_at_fpr");
            self.serde(rows)?;
        }
        if let Some(value) = partial_auc {
            self.key("partial_auc");
            self.optional_float(*value)?;
        }
        Ok(())
    }

    fn pr_curve(&mut self, pr: &PrCurveBody) -> Result<(), serde_json::Error> {
        let PrCurveBody {
            precision,
            recall,
            thresholds,
            points_dropped,
        } = pr;
        self.open("precision");
        self.floats(precision)?;
        self.key("recall");
        self.floats(recall)?;
        self.key("thresholds");
        self.floats(thresholds)?;
        self.key("points_dropped");
        self.serde(points_dropped)?;
        self.close();
        Ok(())
    }

    fn calibration(&mut self, c: &CalibrationBody) -> Result<(), serde_json::Error> {
        let CalibrationBody {
            prob_true,
            prob_pred,
            counts,
            ece,
            mce,
            strategy,
            n_bins,
        } = c;
        self.open("prob_true");
        self.floats(prob_true)?;
        self.key("prob_pred");
        self.floats(prob_pred)?;
        self.key("counts");
        self.counts(counts)?;
        self.key("ece");
        self.optional_float(*ece)?;
        self.key("mce");
        self.optional_float(*mce)?;
        self.key("strategy");
        self.serde(strategy)?;
        self.key("n_bins");
        self.serde(n_bins)?;
        self.close();
        Ok(())
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

    /// Random answers: every field of the binary answer and its extended
    /// part, each optional one present or not, floats of every kind the
    /// writer meets (short decimals, rates, repeats, any bits: NaN, the
    /// infinities, `-0.0`, subnormals) and warnings that need escaping.
    struct Random(u64);

    impl Random {
        fn next(&mut self) -> u64 {
            self.0 = self
                .0
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            self.0 >> 11
        }

        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }

        fn chance(&mut self, percent: u64) -> bool {
            self.below(100) < percent
        }

        fn float(&mut self) -> f64 {
            match self.below(12) {
                0 => f64::from_bits(self.next() << 11 ^ self.next()),
                1 => {
                    [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, -0.0, 0.0][self.below(5) as usize]
                }
                2 => -(self.below(1_000_000) as f64) / 1e6,
                3 => self.below(1_000) as f64,
                4 => 1e300 * (self.below(1000) as f64),
                5 => 5e-324 * (self.below(1000) as f64),
                6 | 7 => {
                    let n = self.below(100_000) + 1;
                    self.below(n + 1) as f64 / n as f64
                }
                _ => self.below(1_000_000) as f64 / 1e6,
            }
        }

        fn optional(&mut self) -> Option<f64> {
            (!self.chance(20)).then(|| self.float())
        }

        /// A curve: runs of one value as the curves hold them.
        fn floats(&mut self) -> Vec<f64> {
            let len = [0, 1, 2, 5, 40, 300][self.below(6) as usize];
            let mut values = Vec::with_capacity(len);
            while values.len() < len {
                let value = self.float();
                let run = 1 + self.below(4) as usize;
                values.extend(std::iter::repeat_n(value, run.min(len - values.len())));
            }
            values
        }

        fn optional_floats(&mut self) -> Vec<Option<f64>> {
            if self.chance(10) {
                let len = self.below(50) as usize;
                return vec![None; len];
            }
            let mut values: Vec<Option<f64>> = self.floats().into_iter().map(Some).collect();
            if let Some(first) = values.first_mut() {
                *first = None;
            }
            values
        }

        fn count(&mut self) -> f64 {
            match self.below(4) {
                0 => self.below(100_000) as f64,
                1 => [-0.0, 0.0, 9_007_199_254_740_992.0, 1e20][self.below(4) as usize],
                _ => self.float().abs(),
            }
        }

        fn string(&mut self) -> String {
            const PIECES: [&str; 9] = ["a", " ", "\"", "\\", "\n", "\u{1}", "é", "-0.0", "🦀"];
            (0..self.below(12))
                .map(|_| PIECES[self.below(PIECES.len() as u64) as usize])
                .collect()
        }

        fn binary(&mut self) -> BinaryMetricsResponse {
            let roc_len = self.below(400) as usize;
            let rates = |r: &mut Random| {
                if r.chance(15) {
                    vec![None; roc_len]
                } else {
                    (0..roc_len).map(|_| r.optional()).collect()
                }
            };
            let fpr = rates(self);
            // runs of repeats, of another length: serde writes it all the same
            let tpr = if self.chance(50) {
                rates(self)
            } else {
                self.optional_floats()
            };
            let thresholds = (0..roc_len)
                .map(|i| (i > 0).then(|| self.float()))
                .collect();
            let weighting = ["impressions", "clicks", "uniform"][self.below(3) as usize];
            BinaryMetricsResponse {
                task: "binary",
                count: self.next(),
                positives: self.below(1000),
                negatives: self.below(1000),
                threshold: self.float(),
                beta: self.float(),
                confusion: ConfusionBody {
                    tp: self.count(),
                    fp: self.count(),
                    tn: self.count(),
                    fn_: self.count(),
                },
                accuracy: self.optional(),
                precision: self.optional(),
                recall: self.optional(),
                f1: self.optional(),
                f_beta: self.optional(),
                auc: self.optional(),
                roc: RocBody {
                    fpr,
                    tpr,
                    thresholds,
                    points_dropped: self.below(10) as usize,
                },
                gauc: self.chance(50).then(|| GaucBody {
                    value: self.optional(),
                    users: self.below(100) as usize,
                    users_skipped: self.below(100) as usize,
                    weighting,
                    std_error: self.optional(),
                    lower: self.optional(),
                    upper: self.optional(),
                }),
                auc_ci: self.chance(50).then(|| AucCiBody {
                    lower: self.float(),
                    upper: self.float(),
                    std_error: self.float(),
                    level: self.float(),
                    method: "delong",
                }),
                ranking: self.chance(30).then(|| self.ranking()),
                warnings: (0..self.below(3)).map(|_| self.string()).collect(),
                beyond: self.chance(80).then(|| self.beyond()),
            }
        }

        fn ranking(&mut self) -> RankingBody {
            let k: Vec<usize> = (1..=self.below(4) as usize).map(|i| 3 * i - 2).collect();
            let keyed = |r: &mut Random| k.iter().map(|k| (k.to_string(), r.optional())).collect();
            RankingBody {
                hit_rate: keyed(self),
                precision: keyed(self),
                recall: keyed(self),
                ndcg: keyed(self),
                map: keyed(self),
                mrr: self.optional(),
                users: self.below(100) as usize,
                users_skipped: self.below(100) as usize,
                k,
            }
        }

        fn beyond(&mut self) -> BeyondBody {
            use super::super::beyond::{
                BestBody, BestThresholdBody, ThresholdRowBody, TprAtFprBody,
            };
            let pr_curve = self.chance(60).then(|| PrCurveBody {
                precision: self.floats(),
                recall: self.floats(),
                thresholds: self.floats(),
                points_dropped: self.below(10) as usize,
            });
            let calibration = self.chance(60).then(|| {
                let bins = self.below(12) as usize;
                CalibrationBody {
                    prob_true: (0..bins).map(|_| self.float()).collect(),
                    prob_pred: (0..bins).map(|_| self.float()).collect(),
                    counts: (0..bins).map(|_| self.count()).collect(),
                    ece: self.optional(),
                    mce: self.optional(),
                    strategy: ["uniform", "quantile"][self.below(2) as usize],
                    n_bins: self.below(20) as usize,
                }
            });
            let best = |r: &mut Random| {
                r.chance(70).then(|| BestBody {
                    threshold: r.float(),
                    value: r.float(),
                })
            };
            let best_threshold = self.chance(80).then(|| BestThresholdBody {
                f_beta: best(self),
                youden_j: best(self),
            });
            let at_thresholds = self.chance(50).then(|| {
                self.chance(80).then(|| {
                    (0..self.below(4))
                        .map(|_| ThresholdRowBody {
                            threshold: self.float(),
                            tp: self.count(),
                            fp: self.count(),
                            tn: self.count(),
                            fn_: self.count(),
                            precision: self.optional(),
                            recall: self.optional(),
                            f_beta: self.optional(),
                            fpr: self.optional(),
                            specificity: self.optional(),
                        })
                        .collect()
                })
            });
            let tpr_at_fpr = self.chance(50).then(|| {
                self.chance(80).then(|| {
                    (0..self.below(4))
                        .map(|_| TprAtFprBody {
                            fpr: self.float(),
                            tpr: self.float(),
                            threshold: self.optional(),
                        })
                        .collect()
                })
            });
            BeyondBody {
                average_precision: self.optional(),
                pr_curve,
                log_loss: self.optional(),
                brier_score: self.optional(),
                mcc: self.optional(),
                balanced_accuracy: self.optional(),
                specificity: self.optional(),
                npv: self.optional(),
                cohen_kappa: self.optional(),
                calibration,
                calibration_ratio: self.optional(),
                normalized_entropy: self.optional(),
                best_threshold,
                at_thresholds,
                tpr_at_fpr,
                partial_auc: self.chance(50).then(|| self.optional()),
            }
        }
    }

    /// What `axum::Json` and `canonical_zeros` send for `response`.
    fn serde_answer(response: &MetricsResponse) -> Vec<u8> {
        let plain = serde_json::to_vec(response).expect("serializes");
        crate::api::negative_zero::without_negative_zeros(&plain).unwrap_or(plain)
    }

    fn written(response: &MetricsResponse) -> Vec<u8> {
        let mut out = Vec::new();
        response.write_json(&mut out).expect("writes");
        out
    }

    #[test]
    fn the_binary_answer_writer_writes_what_serde_json_writes() {
        let mut random = Random(18);
        for case in 0..3_000 {
            let response = MetricsResponse::Binary(Box::new(random.binary()));
            let (ours, theirs) = (written(&response), serde_answer(&response));
            if ours != theirs {
                // The first difference, with some context.
                let at = ours.iter().zip(&theirs).take_while(|(a, b)| a == b).count();
                let near = |s: &[u8]| {
                    String::from_utf8_lossy(&s[at.saturating_sub(60)..(at + 60).min(s.len())])
                        .into_owned()
                };
                panic!(
                    "case {case}, byte {at}:\n ours  ...{}\n serde ...{}",
                    near(&ours),
                    near(&theirs)
                );
            }
        }
    }

    #[test]
    fn an_answer_after_other_bytes_is_appended_as_it_is_alone() {
        let mut random = Random(7);
        let response = MetricsResponse::Binary(Box::new(random.binary()));
        let mut out = b"{\"x\":".to_vec();
        response.write_json(&mut out).expect("writes");
        assert_eq!(&out[5..], serde_answer(&response).as_slice());
    }

    #[test]
    fn a_multiclass_answer_is_what_serde_json_writes() {
        let mut random = Random(3);
        let per = |r: &mut Random| (0..4).map(|_| r.optional()).collect::<Vec<_>>();
        let body = MulticlassMetricsResponse {
            task: "multiclass",
            count: 10,
            classes: 4,
            beta: random.float(),
            average: "macro",
            accuracy: random.optional(),
            top_k_accuracy: (1..=4)
                .map(|k| (k.to_string(), random.optional()))
                .collect(),
            confusion_matrix: (0..4)
                .map(|_| CountRow((0..4).map(|_| random.count()).collect()))
                .collect(),
            precision: random.optional(),
            recall: random.optional(),
            f1: random.optional(),
            f_beta: random.optional(),
            per_class: PerClassBody {
                precision: per(&mut random),
                recall: per(&mut random),
                f1: per(&mut random),
                f_beta: per(&mut random),
                auc: per(&mut random),
                support: (0..4).map(|_| random.count()).collect(),
            },
            auc: random.optional(),
            log_loss: random.optional(),
            warnings: vec![random.string()],
        };
        let response = MetricsResponse::Multiclass(Box::new(body));
        assert_eq!(written(&response), serde_answer(&response));
    }
}
