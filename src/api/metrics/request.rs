//! The `POST /metrics` request body and its streaming deserializers.
//!
//! A 20 MB body holds millions of numbers, so nothing here builds a
//! `serde_json::Value` tree: predictions go through the shared nested-array
//! parser ([`Tensor`]), labels straight into a `Vec<u32>`, and user ids are
//! interned into dense indices while they are read (a string is allocated
//! once per distinct user, not once per record). Errors raised inside these
//! deserializers carry the element index in their JSON path
//! (`labels[3]`), which the extractor turns into the problem's `field`.

use std::collections::HashMap;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, SeqAccess, Visitor};
use serde::Deserialize;

use crate::api::tensor::Tensor;
use crate::core::metrics::{Average, GaucWeighting};

/// `POST /metrics` request (API.md). Unknown fields are rejected.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsRequest {
    /// Flat binary scores, or an N x C matrix of class scores.
    pub predictions: Tensor,
    pub labels: Labels,
    #[serde(default)]
    pub user_ids: Option<UserIds>,
    #[serde(default)]
    pub sample_weights: Option<Vec<f64>>,
    #[serde(default = "default_threshold")]
    pub threshold: f64,
    #[serde(default = "default_beta")]
    pub beta: f64,
    #[serde(default)]
    pub average: AverageParam,
    #[serde(default)]
    pub roc: RocParams,
    #[serde(default)]
    pub gauc_weighting: GaucWeightingParam,
}

fn default_threshold() -> f64 {
    0.5
}

fn default_beta() -> f64 {
    1.0
}

fn default_max_points() -> Option<usize> {
    Some(1000)
}

fn default_true() -> bool {
    true
}

/// `roc` parameters: `max_points` absent = 1000, `null` = unlimited.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RocParams {
    #[serde(default = "default_max_points")]
    pub max_points: Option<usize>,
    #[serde(default = "default_true")]
    pub drop_intermediate: bool,
}

impl Default for RocParams {
    fn default() -> Self {
        RocParams {
            max_points: default_max_points(),
            drop_intermediate: true,
        }
    }
}

/// `average`: micro | macro | weighted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AverageParam {
    Micro,
    #[default]
    Macro,
    Weighted,
}

impl From<AverageParam> for Average {
    fn from(a: AverageParam) -> Self {
        match a {
            AverageParam::Micro => Average::Micro,
            AverageParam::Macro => Average::Macro,
            AverageParam::Weighted => Average::Weighted,
        }
    }
}

/// `gauc_weighting`: impressions | clicks | uniform.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GaucWeightingParam {
    #[default]
    Impressions,
    Clicks,
    Uniform,
}

impl From<GaucWeightingParam> for GaucWeighting {
    fn from(w: GaucWeightingParam) -> Self {
        match w {
            GaucWeightingParam::Impressions => GaucWeighting::Impressions,
            GaucWeightingParam::Clicks => GaucWeighting::Clicks,
            GaucWeightingParam::Uniform => GaucWeighting::Uniform,
        }
    }
}

/// Labels as read: `true`/`false` become 1/0, non-negative integers (or
/// integral floats such as `1.0`) are kept. Whether they must be 0/1 or class
/// indices is decided later, from the shape of `predictions`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Labels {
    pub values: Vec<u32>,
    /// Index of the first boolean label, if any (booleans are binary only).
    pub first_bool: Option<usize>,
}

impl<'de> Deserialize<'de> for Labels {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_seq(LabelsVisitor)
    }
}

struct LabelsVisitor;

impl<'de> Visitor<'de> for LabelsVisitor {
    type Value = Labels;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array of labels (0/1, true/false or class indices)")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Labels, A::Error> {
        let mut labels = Labels {
            values: Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1 << 20)),
            first_bool: None,
        };
        while let Some(label) = seq.next_element::<Label>()? {
            if label.boolean && labels.first_bool.is_none() {
                labels.first_bool = Some(labels.values.len());
            }
            labels.values.push(label.value);
        }
        Ok(labels)
    }
}

/// One label.
struct Label {
    value: u32,
    boolean: bool,
}

impl<'de> Deserialize<'de> for Label {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(LabelVisitor)
    }
}

struct LabelVisitor;

impl LabelVisitor {
    fn integer<E: de::Error>(value: u64) -> Result<Label, E> {
        u32::try_from(value)
            .map(|value| Label {
                value,
                boolean: false,
            })
            .map_err(|_| E::custom(format!("label {value} is too large for a class index")))
    }
}

impl<'de> Visitor<'de> for LabelVisitor {
    type Value = Label;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a label: 0/1, true/false or a non-negative class index")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Label, E> {
        Ok(Label {
            value: u32::from(v),
            boolean: true,
        })
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Label, E> {
        Self::integer(v)
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Label, E> {
        match u64::try_from(v) {
            Ok(v) => Self::integer(v),
            Err(_) => Err(E::custom(format!(
                "label {v} is negative; expected 0/1, true/false or a class index >= 0"
            ))),
        }
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Label, E> {
        if v >= 0.0 && v.fract() == 0.0 && v <= f64::from(u32::MAX) {
            Ok(Label {
                value: v as u32,
                boolean: false,
            })
        } else {
            Err(E::custom(format!(
                "label {v} is not an integer >= 0; expected 0/1, true/false or a class index"
            )))
        }
    }
}

/// User ids, strings or integers, interned into dense indices `0..names.len()`
/// in order of first appearance. An integer id is the same user as its
/// decimal string (`7` and `"7"` are one user), so clients may mix them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UserIds {
    /// Dense user index of each record.
    pub indices: Vec<u32>,
    /// Id of each dense index.
    pub names: Vec<Box<str>>,
}

impl<'de> Deserialize<'de> for UserIds {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_seq(UserIdsVisitor)
    }
}

#[derive(Default)]
struct Interner {
    by_name: HashMap<Box<str>, u32>,
    by_integer: HashMap<i128, u32>,
    ids: UserIds,
}

impl Interner {
    fn string<E: de::Error>(&mut self, name: &str) -> Result<u32, E> {
        if let Some(&i) = self.by_name.get(name) {
            return Ok(i);
        }
        let i = u32::try_from(self.ids.names.len())
            .map_err(|_| E::custom("more than 2^32 distinct user ids"))?;
        self.by_name.insert(name.into(), i);
        self.ids.names.push(name.into());
        Ok(i)
    }

    fn integer<E: de::Error>(&mut self, value: i128) -> Result<u32, E> {
        if let Some(&i) = self.by_integer.get(&value) {
            return Ok(i);
        }
        let i = self.string(&value.to_string())?;
        self.by_integer.insert(value, i);
        Ok(i)
    }
}

struct UserIdsVisitor;

impl<'de> Visitor<'de> for UserIdsVisitor {
    type Value = UserIds;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array of user ids (strings or integers)")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<UserIds, A::Error> {
        let mut interner = Interner::default();
        interner.ids.indices = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1 << 20));
        while let Some(i) = seq.next_element_seed(UserIdSeed(&mut interner))? {
            interner.ids.indices.push(i);
        }
        Ok(interner.ids)
    }
}

struct UserIdSeed<'a>(&'a mut Interner);

impl<'de> DeserializeSeed<'de> for UserIdSeed<'_> {
    type Value = u32;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<u32, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for UserIdSeed<'_> {
    type Value = u32;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a user id: a string or an integer")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<u32, E> {
        self.0.string(v)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<u32, E> {
        self.0.integer(i128::from(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<u32, E> {
        self.0.integer(i128::from(v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(body: &str) -> Result<MetricsRequest, String> {
        crate::api::extract::parse_json::<MetricsRequest>(body.as_bytes())
            .map_err(|e| format!("{} {}", e.field.unwrap_or_default(), e.detail))
    }

    #[test]
    fn defaults_follow_the_api() {
        let r = parse(r#"{"predictions": [0.1], "labels": [true]}"#).unwrap();
        assert_eq!(r.threshold, 0.5);
        assert_eq!(r.beta, 1.0);
        assert_eq!(r.average, AverageParam::Macro);
        assert_eq!(r.roc.max_points, Some(1000));
        assert!(r.roc.drop_intermediate);
        assert_eq!(r.gauc_weighting, GaucWeightingParam::Impressions);
        assert_eq!(r.labels.values, vec![1]);
        assert_eq!(r.labels.first_bool, Some(0));
    }

    #[test]
    fn null_max_points_means_unlimited() {
        let r =
            parse(r#"{"predictions": [0.1], "labels": [1], "roc": {"max_points": null}}"#).unwrap();
        assert_eq!(r.roc.max_points, None);
    }

    #[test]
    fn user_ids_are_interned_and_integers_match_their_strings() {
        let r = parse(r#"{"predictions": [1, 2, 3, 4], "labels": [1, 0, 1, 0], "user_ids": ["a", 7, "7", "a"]}"#)
            .unwrap();
        let ids = r.user_ids.unwrap();
        assert_eq!(ids.indices, vec![0, 1, 1, 0]);
        assert_eq!(ids.names, vec!["a".into(), "7".into()] as Vec<Box<str>>);
    }

    #[test]
    fn bad_labels_name_their_index() {
        let err = parse(r#"{"predictions": [1, 2], "labels": [1, -1]}"#).unwrap_err();
        assert!(err.starts_with("labels[1] "), "{err}");
        let err = parse(r#"{"predictions": [1, 2], "labels": [1, 0.5]}"#).unwrap_err();
        assert!(err.starts_with("labels[1] "), "{err}");
        let err = parse(r#"{"predictions": [1, 2], "labels": [1, "x"]}"#).unwrap_err();
        assert!(err.starts_with("labels[1] "), "{err}");
    }

    #[test]
    fn unknown_fields_are_rejected() {
        let err = parse(r#"{"predictions": [1], "labels": [1], "treshold": 0.3}"#).unwrap_err();
        assert!(err.contains("treshold"), "{err}");
        let err =
            parse(r#"{"predictions": [1], "labels": [1], "roc": {"points": 3}}"#).unwrap_err();
        assert!(err.starts_with("roc"), "{err}");
    }
}
