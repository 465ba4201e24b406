//! Wire types of stream ingest: labels, user ids, the JSON batch body and one
//! NDJSON line, plus the check that turns them into staged records.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, IgnoredAny, Visitor};
use serde::{Deserialize, Deserializer};

use crate::api::labels::JsonLabel;
use crate::api::ApiError;
use crate::state::batch::{check_weight, RecordError, ShortId, MAX_WEIGHT};
use crate::state::{BatchBuilder, Record};

/// A binary label: `0`/`1`, `0.0`/`1.0` or `false`/`true`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Label(pub bool);

impl<'de> Deserialize<'de> for Label {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        JsonLabel::deserialize_expecting(d, "a binary label: 0, 1, false or true")?
            .binary()
            .map(Label)
            .map_err(de::Error::custom)
    }
}

/// Reads a user id: a string, or an integer taken as its decimal text (so
/// `7` and `"7"` are the same user).
struct UserIdVisitor;

impl<'de> Visitor<'de> for UserIdVisitor {
    type Value = Cow<'de, str>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a user id (string or integer)")
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v.to_owned()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v.to_string()))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v.to_string()))
    }
}

/// A user id borrowed from the line when it has no escapes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserId<'a>(pub Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for UserId<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(UserIdVisitor).map(UserId)
    }
}

/// An owned user id, for bodies deserialized as a whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedUserId(pub String);

impl<'de> Deserialize<'de> for OwnedUserId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(UserIdVisitor)
            .map(|c| OwnedUserId(c.into_owned()))
    }
}

/// `POST /streams/{name}` as `application/json`: the `POST /metrics` input.
/// The metric parameters are accepted so the same body can be sent to both
/// endpoints, and ignored: a stream takes them at query time.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchBody {
    pub predictions: Vec<f64>,
    pub labels: Vec<Label>,
    #[serde(default)]
    pub user_ids: Option<Vec<OwnedUserId>>,
    #[serde(default)]
    pub sample_weights: Option<Vec<f64>>,
    #[serde(default)]
    pub threshold: Option<IgnoredAny>,
    #[serde(default)]
    pub beta: Option<IgnoredAny>,
    #[serde(default)]
    pub average: Option<IgnoredAny>,
    #[serde(default)]
    pub roc: Option<IgnoredAny>,
    #[serde(default)]
    pub gauc_weighting: Option<IgnoredAny>,
    // Options of the extended evaluation, taken at query time too.
    #[serde(default)]
    pub pr: Option<IgnoredAny>,
    #[serde(default)]
    pub calibration: Option<IgnoredAny>,
    #[serde(default)]
    pub thresholds: Option<IgnoredAny>,
    #[serde(default)]
    pub tpr_at_fpr: Option<IgnoredAny>,
    #[serde(default)]
    pub max_fpr: Option<IgnoredAny>,
}

/// One NDJSON line: a record (`prediction`, `label`, `user_id`, `weight`) or a
/// batch object (`predictions`, `labels`, `user_ids`, `sample_weights`). One
/// flat struct (rather than an untagged enum, which buffers every value) keeps
/// the hot path a single pass.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Line<'a> {
    pub prediction: Option<f64>,
    pub label: Option<Label>,
    #[serde(borrow)]
    pub user_id: Option<UserId<'a>>,
    pub weight: Option<f64>,
    pub predictions: Option<Vec<f64>>,
    pub labels: Option<Vec<Label>>,
    #[serde(borrow)]
    pub user_ids: Option<Vec<UserId<'a>>>,
    pub sample_weights: Option<Vec<f64>>,
    pub threshold: Option<IgnoredAny>,
    pub beta: Option<IgnoredAny>,
    pub average: Option<IgnoredAny>,
    pub roc: Option<IgnoredAny>,
    pub gauc_weighting: Option<IgnoredAny>,
    // Options of the extended evaluation, taken at query time too.
    pub pr: Option<IgnoredAny>,
    pub calibration: Option<IgnoredAny>,
    pub thresholds: Option<IgnoredAny>,
    pub tpr_at_fpr: Option<IgnoredAny>,
    pub max_fpr: Option<IgnoredAny>,
}

/// Where an error was found: an NDJSON line number, or the JSON body.
#[derive(Debug, Clone, Copy)]
pub enum Origin {
    Body,
    Line(u64),
}

impl Origin {
    /// A 422 naming `field`, with the line number when there is one.
    pub fn invalid(self, field: &str, detail: impl fmt::Display) -> ApiError {
        match self {
            Origin::Body => ApiError::invalid(field, detail.to_string()),
            Origin::Line(n) => {
                ApiError::invalid(field, format!("line {n}: {detail}")).with_extension("line", n)
            }
        }
    }
}

/// Stages one record, checking the weight (the score is finite by JSON).
pub fn stage_record(
    builder: &mut BatchBuilder,
    origin: Origin,
    score: f64,
    label: bool,
    user: Option<&str>,
    weight: Option<f64>,
    field: impl Fn(&str) -> String,
) -> Result<(), ApiError> {
    stage_with(builder, origin, score, label, weight, field, |b, record| {
        b.push(user, record)
    })
}

/// [`stage_record`] of a record whose user id the NDJSON fast path packed.
#[inline]
pub fn stage_short(
    builder: &mut BatchBuilder,
    line: u64,
    score: f64,
    label: bool,
    user: ShortId,
    weight: Option<f64>,
) -> Result<(), ApiError> {
    let origin = Origin::Line(line);
    stage_with(
        builder,
        origin,
        score,
        label,
        weight,
        str::to_owned,
        |b, r| b.push_short(user, r),
    )
}

/// Checks the weight (naming the field), then stages the record by `push`.
#[inline]
fn stage_with(
    builder: &mut BatchBuilder,
    origin: Origin,
    score: f64,
    label: bool,
    weight: Option<f64>,
    field: impl Fn(&str) -> String,
    push: impl FnOnce(&mut BatchBuilder, Record) -> Result<(), RecordError>,
) -> Result<(), ApiError> {
    let weight = weight.unwrap_or(1.0);
    if let Err(refused) = check_weight(weight) {
        let name = field("weight");
        let message = match refused {
            RecordError::TooLargeWeight(_) => format!(
                "{name} is {weight:e} but must be at most {MAX_WEIGHT:e} (a stream sums its weights)"
            ),
            _ => format!("{name} is {weight} but must be finite and >= 0"),
        };
        return Err(origin.invalid(&name, message));
    }
    let record = Record {
        score,
        positive: label,
        weight,
    };
    push(builder, record).map_err(|e| origin.invalid(&field("prediction"), e))
}

/// Stages a batch object (or the JSON body): equal lengths, weights finite
/// and >= 0. Field names are the request's (`predictions`, `sample_weights[3]`).
pub fn stage_batch<U: AsRef<str>>(
    builder: &mut BatchBuilder,
    origin: Origin,
    predictions: &[f64],
    labels: &[Label],
    user_ids: Option<&[U]>,
    sample_weights: Option<&[f64]>,
) -> Result<(), ApiError> {
    let n = predictions.len();
    let mismatch = |name: &str, len: usize| {
        origin.invalid(
            name,
            format!("{name} has {len} elements but predictions has {n}"),
        )
    };
    if labels.len() != n {
        return Err(mismatch("labels", labels.len()));
    }
    if let Some(u) = user_ids {
        if u.len() != n {
            return Err(mismatch("user_ids", u.len()));
        }
    }
    if let Some(w) = sample_weights {
        if w.len() != n {
            return Err(mismatch("sample_weights", w.len()));
        }
    }
    for (i, (&score, label)) in predictions.iter().zip(labels).enumerate() {
        let user = user_ids.and_then(|u| u.get(i)).map(AsRef::as_ref);
        let weight = sample_weights.and_then(|w| w.get(i)).copied();
        if let Some(w) = weight {
            if !(w.is_finite() && w >= 0.0) {
                let name = format!("sample_weights[{i}]");
                return Err(
                    origin.invalid(&name, format!("{name} is {w} but must be finite and >= 0"))
                );
            }
        }
        stage_record(builder, origin, score, label.0, user, weight, |f| {
            format!("{f}s[{i}]")
        })?;
    }
    Ok(())
}

impl AsRef<str> for UserId<'_> {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for OwnedUserId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// Stages one parsed NDJSON line.
pub fn stage_line(
    builder: &mut BatchBuilder,
    line_no: u64,
    line: Line<'_>,
) -> Result<(), ApiError> {
    let origin = Origin::Line(line_no);
    let is_record = line.prediction.is_some()
        || line.label.is_some()
        || line.user_id.is_some()
        || line.weight.is_some();
    let is_batch = line.predictions.is_some()
        || line.labels.is_some()
        || line.user_ids.is_some()
        || line.sample_weights.is_some();
    match (is_record, is_batch) {
        (true, true) => Err(origin.invalid(
            "line",
            "a line is either a record (prediction, label, user_id, weight) or a batch object (predictions, labels, user_ids, sample_weights), not both",
        )),
        (false, false) => Err(origin.invalid(
            "line",
            "expected a record with prediction and label, or a batch object with predictions and labels",
        )),
        (true, false) => {
            let score = line
                .prediction
                .ok_or_else(|| origin.invalid("prediction", "missing field prediction"))?;
            let label = line
                .label
                .ok_or_else(|| origin.invalid("label", "missing field label"))?;
            let user = line.user_id.as_ref().map(|u| u.0.as_ref());
            stage_record(builder, origin, score, label.0, user, line.weight, str::to_owned)
        }
        (false, true) => {
            let predictions = line
                .predictions
                .ok_or_else(|| origin.invalid("predictions", "missing field predictions"))?;
            let labels = line
                .labels
                .ok_or_else(|| origin.invalid("labels", "missing field labels"))?;
            stage_batch(
                builder,
                origin,
                &predictions,
                &labels,
                line.user_ids.as_deref(),
                line.sample_weights.as_deref(),
            )
        }
    }
}
