//! Nested JSON arrays parsed straight into `ndarray`, with shape checks.
//!
//! One parser serves every endpoint that takes tensors (losses, normalization,
//! activations). It streams numbers into one flat `Vec<f64>` while the JSON is
//! read, so no intermediate `serde_json::Value` tree is built, and it reports
//! the position of the first problem: a ragged row, a non-number, a non-finite
//! value, or more than [`MAX_DIMS`] dimensions. The JSON path of the field is
//! added by the extractor, so errors read `predictions: ragged nested array at
//! [1]: expected 3 elements, found 2`.

use std::fmt;

use ndarray::{ArrayD, IxDyn};
use serde::de::{self, DeserializeSeed, Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serialize, Serializer};

use crate::core::index::format_index as position;

/// Nested arrays have at most this many dimensions (`Tensor` in `openapi/openapi.yaml`).
pub const MAX_DIMS: usize = 8;

/// A tensor read from (or written as) nested JSON arrays.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor(pub ArrayD<f64>);

impl Tensor {
    /// The shape as a slice.
    pub fn shape(&self) -> &[usize] {
        self.0.shape()
    }

    /// Unwraps the array.
    pub fn into_inner(self) -> ArrayD<f64> {
        self.0
    }
}

impl From<ArrayD<f64>> for Tensor {
    fn from(a: ArrayD<f64>) -> Self {
        Tensor(a)
    }
}

/// Parsing context shared by every level of the recursion.
struct Ctx {
    data: Vec<f64>,
    /// Length of each dimension, fixed by the first row seen at that depth.
    shape: Vec<Option<usize>>,
    /// Number of dimensions, fixed by the first leaf (or empty row) seen.
    ndim: Option<usize>,
    /// Index of the element being read at each depth, for error messages.
    index: Vec<usize>,
}

impl Ctx {
    fn leaf<E: de::Error>(&mut self, v: f64) -> Result<(), E> {
        let depth = self.index.len();
        match self.ndim {
            None => self.ndim = Some(depth),
            Some(n) if n != depth => {
                return Err(E::custom(format!(
                    "ragged nested array at {}: expected an array, found a number",
                    position(&self.index)
                )))
            }
            Some(_) => {}
        }
        if !v.is_finite() {
            return Err(E::custom(format!(
                "non-finite number at {}",
                position(&self.index)
            )));
        }
        self.data.push(v);
        Ok(())
    }
}

/// Seed that reads one value at the current depth.
struct Level<'a>(&'a mut Ctx);

impl<'de> DeserializeSeed<'de> for Level<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Level<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a number or a nested array of numbers")
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<(), E> {
        self.0.leaf(v)
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<(), E> {
        self.0.leaf(v as f64)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<(), E> {
        self.0.leaf(v as f64)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let ctx = self.0;
        let depth = ctx.index.len();
        if depth >= MAX_DIMS {
            return Err(de::Error::custom(format!(
                "nested array at {} has more than {MAX_DIMS} dimensions",
                position(&ctx.index)
            )));
        }
        if let Some(n) = ctx.ndim {
            if depth >= n {
                return Err(de::Error::custom(format!(
                    "ragged nested array at {}: expected a number, found an array",
                    position(&ctx.index)
                )));
            }
        }
        if ctx.shape.len() <= depth {
            ctx.shape.resize(depth + 1, None);
        }
        ctx.index.push(0);
        let mut len = 0usize;
        loop {
            *ctx.index.last_mut().unwrap_or(&mut 0) = len;
            if seq.next_element_seed(Level(ctx))?.is_none() {
                break;
            }
            len += 1;
        }
        ctx.index.pop();
        if len == 0 && ctx.ndim.is_none() {
            ctx.ndim = Some(depth + 1);
        }
        match ctx.shape[depth] {
            None => ctx.shape[depth] = Some(len),
            Some(expected) if expected != len => {
                return Err(de::Error::custom(format!(
                    "ragged nested array at {}: expected {expected} elements, found {len}",
                    position(&ctx.index)
                )))
            }
            Some(_) => {}
        }
        Ok(())
    }
}

impl<'de> Deserialize<'de> for Tensor {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let mut ctx = Ctx {
            data: Vec::new(),
            shape: Vec::new(),
            ndim: None,
            index: Vec::new(),
        };
        Level(&mut ctx).deserialize(deserializer)?;
        let ndim = ctx.ndim.unwrap_or(0);
        let shape: Vec<usize> = ctx.shape[..ndim.min(ctx.shape.len())]
            .iter()
            .map(|d| d.unwrap_or(0))
            .collect();
        ArrayD::from_shape_vec(IxDyn(&shape), ctx.data)
            .map(Tensor)
            .map_err(|e| de::Error::custom(format!("inconsistent nested array: {e}")))
    }
}

impl Serialize for Tensor {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serialize_array(&self.0.view(), serializer)
    }
}

/// Serializes any `ndarray` view of f64 as nested JSON arrays (a 0-d array as a
/// bare number). Non-finite values become `null`, as serde_json would, but the
/// core is expected never to produce them.
pub fn serialize_array<S: Serializer>(
    a: &ndarray::ArrayViewD<'_, f64>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeSeq;
    if a.ndim() == 0 {
        let v = a.iter().next().copied().unwrap_or(f64::NAN);
        return if v.is_finite() {
            serializer.serialize_f64(v)
        } else {
            serializer.serialize_none()
        };
    }
    let mut seq = serializer.serialize_seq(Some(a.shape()[0]))?;
    for sub in a.outer_iter() {
        seq.serialize_element(&SubView(sub))?;
    }
    seq.end()
}

struct SubView<'a>(ndarray::ArrayViewD<'a, f64>);

impl Serialize for SubView<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serialize_array(&self.0, serializer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Tensor, String> {
        serde_json::from_str::<Tensor>(s).map_err(|e| e.to_string())
    }

    #[test]
    fn parses_a_matrix_with_its_shape() {
        let t = parse("[[1, 2, 3], [4.5, 5, 6]]").unwrap();
        assert_eq!(t.shape(), &[2, 3]);
        assert_eq!(t.0[[1, 0]], 4.5);
    }

    #[test]
    fn parses_a_vector_and_a_scalar() {
        assert_eq!(parse("[1, 2]").unwrap().shape(), &[2]);
        assert_eq!(parse("3.5").unwrap().shape(), &[] as &[usize]);
    }

    #[test]
    fn rejects_a_short_row_naming_its_position() {
        let err = parse("[[1, 2, 3], [4, 5]]").unwrap_err();
        assert!(
            err.contains("at [1]: expected 3 elements, found 2"),
            "{err}"
        );
    }

    #[test]
    fn rejects_a_number_where_an_array_is_expected() {
        let err = parse("[[1, 2], 3]").unwrap_err();
        assert!(
            err.contains("at [1]: expected an array, found a number"),
            "{err}"
        );
    }

    #[test]
    fn rejects_an_array_where_a_number_is_expected() {
        let err = parse("[1, [2]]").unwrap_err();
        assert!(
            err.contains("at [1]: expected a number, found an array"),
            "{err}"
        );
    }

    #[test]
    fn rejects_strings() {
        assert!(parse(r#"[1, "a"]"#).is_err());
    }

    #[test]
    fn rejects_more_than_eight_dimensions() {
        let deep = format!("{}1{}", "[".repeat(9), "]".repeat(9));
        let err = parse(&deep).unwrap_err();
        assert!(err.contains("more than 8 dimensions"), "{err}");
        let ok = format!("{}1{}", "[".repeat(8), "]".repeat(8));
        assert_eq!(parse(&ok).unwrap().0.ndim(), 8);
    }

    #[test]
    fn round_trips_through_json() {
        let t = parse("[[[1, 2]], [[3, 4]]]").unwrap();
        let s = serde_json::to_string(&t).unwrap();
        assert_eq!(s, "[[[1.0,2.0]],[[3.0,4.0]]]");
    }
}
