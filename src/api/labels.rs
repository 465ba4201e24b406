//! The one reader of a label as JSON writes it, and the rules that give it a
//! meaning: a binary label (streams), a class index (`POST /metrics`, whose
//! 0/1 rule waits for the shape of `predictions`) or a number (the logistic
//! objective of `POST /optimizer/{name}/run`, which the core refuses by
//! position when it is not 0 or 1).
//!
//! Every endpoint reads `true`/`false`, integers and integral floats the same
//! way through [`JsonLabel`]; only the domain, and the sentence naming it,
//! differ.

use std::fmt;

use serde::de::{self, Deserializer, Visitor};

/// A label as written: a boolean or a number. Integers keep their exact
/// value (a `u64` label is not rounded through `f64`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum JsonLabel {
    Bool(bool),
    Unsigned(u64),
    Negative(i64),
    Float(f64),
}

/// A label outside the domain asked for.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LabelError {
    #[error("label must be 0, 1, false or true, found {0}")]
    NotBinary(JsonLabel),
    #[error("label {0} is too large for a class index")]
    TooLarge(u64),
    #[error("label {0} is negative; expected 0/1, true/false or a class index >= 0")]
    Negative(i64),
    #[error("label {0} is not an integer >= 0; expected 0/1, true/false or a class index")]
    NotAnInteger(f64),
}

/// A class index read from a label; `boolean` when it was written
/// `true`/`false` (allowed for binary input only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClassLabel {
    pub value: u32,
    pub boolean: bool,
}

impl fmt::Display for JsonLabel {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            JsonLabel::Bool(v) => v.fmt(f),
            JsonLabel::Unsigned(v) => v.fmt(f),
            JsonLabel::Negative(v) => v.fmt(f),
            JsonLabel::Float(v) => v.fmt(f),
        }
    }
}

/// The binary meaning of a class index: 0 is negative, 1 positive.
pub fn binary_of_index(value: u32) -> Option<bool> {
    match value {
        0 => Some(false),
        1 => Some(true),
        _ => None,
    }
}

impl JsonLabel {
    /// Reads one label; `expecting` completes serde's sentence for a value of
    /// the wrong type ("invalid type: string, expected ...").
    pub fn deserialize_expecting<'de, D: Deserializer<'de>>(
        deserializer: D,
        expecting: &'static str,
    ) -> Result<JsonLabel, D::Error> {
        deserializer.deserialize_any(LabelVisitor { expecting })
    }

    /// `0`, `1`, `0.0`, `1.0`, `false` or `true`.
    ///
    /// # Errors
    /// [`LabelError::NotBinary`] for anything else.
    pub fn binary(self) -> Result<bool, LabelError> {
        let bit = match self {
            JsonLabel::Bool(v) => Some(v),
            JsonLabel::Unsigned(v) => u32::try_from(v).ok().and_then(binary_of_index),
            JsonLabel::Negative(_) => None,
            JsonLabel::Float(0.0) => Some(false),
            JsonLabel::Float(1.0) => Some(true),
            JsonLabel::Float(_) => None,
        };
        bit.ok_or(LabelError::NotBinary(self))
    }

    /// A non-negative integer (or integral float) that fits a `u32`, or a
    /// boolean as 0/1.
    ///
    /// # Errors
    /// Too large, negative or not an integer, each with its own sentence.
    pub fn class_index(self) -> Result<ClassLabel, LabelError> {
        let index = |value| ClassLabel {
            value,
            boolean: false,
        };
        match self {
            JsonLabel::Bool(v) => Ok(ClassLabel {
                value: u32::from(v),
                boolean: true,
            }),
            JsonLabel::Unsigned(v) => u32::try_from(v)
                .map(index)
                .map_err(|_| LabelError::TooLarge(v)),
            JsonLabel::Negative(v) => Err(LabelError::Negative(v)),
            JsonLabel::Float(v) if v >= 0.0 && v.fract() == 0.0 && v <= f64::from(u32::MAX) => {
                Ok(index(v as u32))
            }
            JsonLabel::Float(v) => Err(LabelError::NotAnInteger(v)),
        }
    }

    /// The label as a number: `false`/`true` are 0/1.
    pub fn number(self) -> f64 {
        match self {
            JsonLabel::Bool(v) => f64::from(u8::from(v)),
            JsonLabel::Unsigned(v) => v as f64,
            JsonLabel::Negative(v) => v as f64,
            JsonLabel::Float(v) => v,
        }
    }
}

/// The fast NDJSON path's reading of a bare label token: exactly the
/// spellings `0`, `1`, `false` and `true`, which [`JsonLabel::binary`] reads
/// the same way; `None` leaves every other token to the full parse.
pub fn binary_token(token: &[u8]) -> Option<bool> {
    match token {
        b"0" | b"false" => Some(false),
        b"1" | b"true" => Some(true),
        _ => None,
    }
}

struct LabelVisitor {
    expecting: &'static str,
}

impl Visitor<'_> for LabelVisitor {
    type Value = JsonLabel;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(self.expecting)
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<JsonLabel, E> {
        Ok(JsonLabel::Bool(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<JsonLabel, E> {
        Ok(JsonLabel::Unsigned(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<JsonLabel, E> {
        Ok(match u64::try_from(v) {
            Ok(u) => JsonLabel::Unsigned(u),
            Err(_) => JsonLabel::Negative(v),
        })
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<JsonLabel, E> {
        Ok(JsonLabel::Float(v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> JsonLabel {
        let mut de = serde_json::Deserializer::from_str(text);
        match JsonLabel::deserialize_expecting(&mut de, "a label") {
            Ok(label) => label,
            Err(e) => panic!("{text}: {e}"),
        }
    }

    #[test]
    fn every_domain_reads_the_same_spellings() {
        for (text, binary, class, number) in [
            ("true", Some(true), Some((1, true)), 1.0),
            ("false", Some(false), Some((0, true)), 0.0),
            ("1", Some(true), Some((1, false)), 1.0),
            ("0", Some(false), Some((0, false)), 0.0),
            ("1.0", Some(true), Some((1, false)), 1.0),
            ("-0.0", Some(false), Some((0, false)), -0.0),
            ("2", None, Some((2, false)), 2.0),
            ("-1", None, None, -1.0),
            ("0.5", None, None, 0.5),
            ("4294967296", None, None, 4_294_967_296.0),
        ] {
            let label = read(text);
            assert_eq!(label.binary().ok(), binary, "{text}");
            let index = label.class_index().ok().map(|c| (c.value, c.boolean));
            assert_eq!(index, class, "{text}");
            assert_eq!(label.number(), number, "{text}");
        }
    }

    #[test]
    fn refusals_keep_their_sentences() {
        let message = |text: &str, class: bool| {
            let label = read(text);
            let err = if class {
                label.class_index().err()
            } else {
                label.binary().err()
            };
            err.map(|e| e.to_string()).unwrap_or_default()
        };
        assert_eq!(
            message("5", false),
            "label must be 0, 1, false or true, found 5"
        );
        assert_eq!(
            message("-3", false),
            "label must be 0, 1, false or true, found -3"
        );
        assert_eq!(
            message("2.0", false),
            "label must be 0, 1, false or true, found 2"
        );
        assert_eq!(
            message("4294967296", true),
            "label 4294967296 is too large for a class index"
        );
        assert_eq!(
            message("-1", true),
            "label -1 is negative; expected 0/1, true/false or a class index >= 0"
        );
        assert_eq!(
            message("0.5", true),
            "label 0.5 is not an integer >= 0; expected 0/1, true/false or a class index"
        );
    }

    #[test]
    fn the_fast_token_agrees_with_the_full_reading() {
        for token in ["0", "1", "true", "false", "2", "1.0", "-0", "01", "tru"] {
            if let Some(bit) = binary_token(token.as_bytes()) {
                assert_eq!(read(token).binary().ok(), Some(bit), "{token}");
            }
        }
        assert_eq!(binary_token(b"1.0"), None);
    }
}
