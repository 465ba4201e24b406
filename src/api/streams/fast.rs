//! A fast path for the one NDJSON line shape that dominates real traffic:
//! `{"prediction": N, "label": L, "user_id": "S", "weight": N}`.
//!
//! [`scan_record`] recognizes exactly that shape (keys in any order, each at
//! most once, `user_id` and `weight` optional, JSON whitespace, a user id
//! without escapes or control characters, labels `0`, `1`, `true`, `false`)
//! and returns `None` for anything else, so the caller falls back to the full
//! serde parser, which either gives the same record or the precise error.
//!
//! Why by hand: this runs once per record of every NDJSON body (ten million
//! for a large request). A cursor of `Option`-returning steps, the keys read
//! as strings and then compared, every number handed to serde_json and every
//! user id checked by `str::from_utf8` took ~1,300 instructions a line of the
//! bench's shape; matching the keys in place, reading the number here and
//! packing a short id into the staging key as its bytes are checked takes a
//! small fraction of that (README → Performance).
//!
//! Numbers: a token of at most 15 significant digits with a decimal exponent
//! within ±22 is one exact IEEE division or multiplication (Clinger's fast
//! path, correctly rounded); any other token of at most 19 digits goes to
//! `f64::from_str`, anything longer to serde_json itself. serde_json with
//! `float_roundtrip` rounds correctly too, so every value has the bits the
//! full path (and `POST /metrics`) gives.

use crate::api::json_number::number;
use crate::state::batch::ShortId;

/// A record read by the fast path.
#[derive(Debug, Clone, PartialEq)]
pub struct FastRecord<'a> {
    pub prediction: f64,
    pub label: bool,
    pub user_id: Option<&'a str>,
    pub weight: Option<f64>,
}

/// A record as [`scan_record`] reads it: the user id as staging keys it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScannedRecord<'a> {
    pub prediction: f64,
    pub label: bool,
    pub user_id: Option<ScannedId<'a>>,
    pub weight: Option<f64>,
}

/// A user id read by the fast path.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ScannedId<'a> {
    /// At most 15 bytes: packed, and its bytes in the line.
    Short(ShortId, &'a [u8]),
    /// Longer ids, as text.
    Long(&'a str),
}

/// Reads `line` if it has the common record shape (see the module docs).
pub fn fast_record(line: &[u8]) -> Option<FastRecord<'_>> {
    let r = scan_record(line)?;
    let user_id = match r.user_id {
        None => None,
        Some(ScannedId::Long(id)) => Some(id),
        // Valid UTF-8: the scan packs only text.
        Some(ScannedId::Short(_, raw)) => Some(std::str::from_utf8(raw).ok()?),
    };
    Some(FastRecord {
        prediction: r.prediction,
        label: r.label,
        user_id,
        weight: r.weight,
    })
}

/// Reads `line` (without its newline) if it has the common record shape.
#[inline]
pub fn scan_record(line: &[u8]) -> Option<ScannedRecord<'_>> {
    match scan_from(line, 0)? {
        (record, end) if end == line.len() => Some(record),
        _ => None,
    }
}

/// The offset of the first byte at or after `pos` that is not JSON
/// whitespace (a line holds no newline).
#[inline(always)]
fn skip_ws(bytes: &[u8], mut pos: usize) -> usize {
    while let Some(b' ' | b'\t' | b'\r') = bytes.get(pos) {
        pos += 1;
    }
    pos
}

/// Whether `bytes` holds `word` at `pos` (compared as one fixed-size
/// array, without a call to `memcmp`).
#[inline(always)]
fn holds<const N: usize>(bytes: &[u8], pos: usize, word: &[u8; N]) -> bool {
    bytes
        .get(pos..pos + N)
        .and_then(|b| <&[u8; N]>::try_from(b).ok())
        .is_some_and(|b| b == word)
}

/// The keys of the record shape.
#[derive(Clone, Copy)]
enum Key {
    Prediction,
    Label,
    UserId,
    Weight,
}

/// The key whose text (after its opening quote) starts at `pos`, and the
/// offset past its closing quote; `None` for any other key (or an escape).
#[inline(always)]
fn key_at(bytes: &[u8], pos: usize) -> Option<(Key, usize)> {
    match bytes.get(pos)? {
        b'p' if holds(bytes, pos, b"prediction\"") => Some((Key::Prediction, pos + 11)),
        b'l' if holds(bytes, pos, b"label\"") => Some((Key::Label, pos + 6)),
        b'u' if holds(bytes, pos, b"user_id\"") => Some((Key::UserId, pos + 8)),
        b'w' if holds(bytes, pos, b"weight\"") => Some((Key::Weight, pos + 7)),
        _ => None,
    }
}

/// The record whose `{` is the first non-blank byte at or after `start`,
/// and the offset past its `}` and the blanks after it.
#[inline(always)]
fn scan_from(bytes: &[u8], start: usize) -> Option<(ScannedRecord<'_>, usize)> {
    let (mut prediction, mut label, mut user_id, mut weight) = (None, None, None, None);
    let mut pos = skip_ws(bytes, start);
    if bytes.get(pos) != Some(&b'{') {
        return None;
    }
    pos += 1;
    loop {
        pos = skip_ws(bytes, pos);
        if bytes.get(pos) != Some(&b'"') {
            return None;
        }
        let (key, after) = key_at(bytes, pos + 1)?;
        pos = skip_ws(bytes, after);
        if bytes.get(pos) != Some(&b':') {
            return None;
        }
        pos = skip_ws(bytes, pos + 1);
        pos = match key {
            Key::Prediction if prediction.is_none() => {
                let (value, end) = number(bytes, pos)?;
                prediction = Some(value);
                end
            }
            Key::Weight if weight.is_none() => {
                let (value, end) = number(bytes, pos)?;
                weight = Some(value);
                end
            }
            Key::Label if label.is_none() => {
                let (value, end) = binary_label(bytes, pos)?;
                label = Some(value);
                end
            }
            Key::UserId if user_id.is_none() => {
                let (value, end) = string_id(bytes, pos)?;
                user_id = Some(value);
                end
            }
            _ => return None,
        };
        pos = skip_ws(bytes, pos);
        match bytes.get(pos)? {
            b',' => pos += 1,
            b'}' => break,
            _ => return None,
        }
    }
    let record = ScannedRecord {
        prediction: prediction?,
        label: label?,
        user_id,
        weight,
    };
    Some((record, skip_ws(bytes, pos + 1)))
}

/// A label `0`, `1`, `false` or `true` at `pos` and the offset past it (the
/// caller checks what follows: only a delimiter is accepted).
#[inline(always)]
fn binary_label(bytes: &[u8], pos: usize) -> Option<(bool, usize)> {
    match bytes.get(pos)? {
        b'0' => Some((false, pos + 1)),
        b'1' => Some((true, pos + 1)),
        b't' if holds(bytes, pos, b"true") => Some((true, pos + 4)),
        b'f' if holds(bytes, pos, b"false") => Some((false, pos + 5)),
        _ => None,
    }
}

const ONES: u128 = u128::from_le_bytes([0x01; 16]);
const HIGHS: u128 = u128::from_le_bytes([0x80; 16]);

/// Bytes of a 16-byte word equal to `b`, flagged in their top bit (the
/// lowest flag is exact; flags above it may be false).
#[inline(always)]
fn bytes_equal(word: u128, b: u8) -> u128 {
    let x = word ^ (ONES * u128::from(b));
    x.wrapping_sub(ONES) & !x & HIGHS
}

/// Up to 16 bytes of `bytes` from `from` as a little-endian word (zeros
/// past the end), and how many of them are real.
#[inline(always)]
fn word_at(bytes: &[u8], from: usize) -> (u128, usize) {
    let rest = bytes.get(from..).unwrap_or_default();
    if let Some(w) = rest.get(..16).and_then(|w| <[u8; 16]>::try_from(w).ok()) {
        return (u128::from_le_bytes(w), 16);
    }
    let eight = |at: usize| {
        rest.get(at..at + 8)
            .and_then(|w| <[u8; 8]>::try_from(w).ok())
            .map_or(0, u64::from_le_bytes)
    };
    let n = rest.len();
    if n >= 8 {
        // The first 8 bytes, and the last 8 shifted down over bytes 8..n.
        let high = eight(n - 8).checked_shr(8 * (16 - n) as u32).unwrap_or(0);
        return (u128::from(eight(0)) | u128::from(high) << 64, n);
    }
    let mut word = [0u8; 16];
    for (w, &b) in word.iter_mut().zip(rest) {
        *w = b;
    }
    (u128::from_le_bytes(word), n)
}

/// The string user id whose opening quote is at `pos`, and the offset past
/// its closing quote; `None` for anything but a string without escapes or
/// control characters (serde reads those, or refuses them).
#[inline(always)]
fn string_id(bytes: &[u8], pos: usize) -> Option<(ScannedId<'_>, usize)> {
    if bytes.get(pos) != Some(&b'"') {
        return None;
    }
    let from = pos + 1;
    // One word finds the closing quote of a short id and is its key.
    let (word, real) = word_at(bytes, from);
    // Bytes that end the fast case: `"`, `\`, a control byte (< 0x20, which
    // serde refuses; also the zeros past the end) or a non-ASCII byte.
    let control = word.wrapping_sub(ONES * 0x20) & !word & HIGHS;
    let special = bytes_equal(word, b'"') | bytes_equal(word, b'\\') | control | (word & HIGHS);
    let len = (special.trailing_zeros() / 8) as usize;
    if len < real && bytes.get(from + len) == Some(&b'"') {
        if let Some(short) = ShortId::of_ascii_word(word, len) {
            let raw = bytes.get(from..from + len)?;
            return Some((ScannedId::Short(short, raw), from + len + 1));
        }
    }
    long_string_id(bytes, from)
}

/// [`string_id`] for an id of 16 bytes or more or with non-ASCII bytes
/// (`from`: after the opening quote).
#[cold]
fn long_string_id(bytes: &[u8], from: usize) -> Option<(ScannedId<'_>, usize)> {
    let mut end = from;
    loop {
        match *bytes.get(end)? {
            b'"' => break,
            b'\\' => return None,
            c if c < 0x20 => return None,
            _ => end += 1,
        }
    }
    let raw = bytes.get(from..end)?;
    let text = std::str::from_utf8(raw).ok()?;
    let id = match ShortId::of(text) {
        Some(short) => ScannedId::Short(short, raw),
        None => ScannedId::Long(text),
    };
    Some((id, end + 1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::streams::dto::Line;
    use proptest::prelude::*;

    /// What the full serde path reads from `line`, in the same shape.
    fn full(line: &[u8]) -> Option<(f64, bool, Option<String>, Option<f64>)> {
        let l: Line<'_> = serde_json::from_slice(line).ok()?;
        Some((
            l.prediction?,
            l.label?.0,
            l.user_id.map(|u| u.0.into_owned()),
            l.weight,
        ))
    }

    fn same(line: &str) {
        let fast = fast_record(line.as_bytes());
        if let Some(f) = &fast {
            let expected = full(line.as_bytes());
            let got = Some((
                f.prediction,
                f.label,
                f.user_id.map(str::to_owned),
                f.weight,
            ));
            // bit-identical numbers
            assert_eq!(
                got.as_ref()
                    .map(|g| (g.0.to_bits(), g.1, g.2.clone(), g.3.map(f64::to_bits))),
                expected
                    .as_ref()
                    .map(|g| (g.0.to_bits(), g.1, g.2.clone(), g.3.map(f64::to_bits))),
                "{line}"
            );
        }
    }

    #[test]
    fn the_common_shapes_take_the_fast_path() {
        for line in [
            r#"{"prediction":0.6251,"label":1,"user_id":"u25049"}"#,
            r#" { "label" : true , "prediction" : 1e-3 , "weight": 2.5 } "#,
            r#"{"user_id":"ü-7","prediction":-0.0,"label":0}"#,
        ] {
            assert!(fast_record(line.as_bytes()).is_some(), "{line}");
            same(line);
        }
    }

    #[test]
    fn anything_unusual_is_left_to_serde() {
        for line in [
            r#"{"prediction":0.5,"label":1,"prediction":0.5}"#,
            r#"{"prediction":0.5,"label":2}"#,
            r#"{"prediction":0.5,"label":1.0}"#,
            r#"{"prediction":0.5,"label":1,"user_id":7}"#,
            r#"{"prediction":0.5,"label":1,"user_id":"a\"b"}"#,
            r#"{"prediction":NaN,"label":1}"#,
            r#"{"prediction":0.5,"label":1,"user_id":null}"#,
            r#"{"prediction":0.5,"label":1} x"#,
            r#"{"prediction":0.5}"#,
            r#"{"predictions":[0.5],"labels":[1]}"#,
            r#"{"prediction":+1,"label":1}"#,
            "{\"prediction\":0.5,\"label\":1,\"user_id\":\"a\tb\"}",
        ] {
            assert_eq!(fast_record(line.as_bytes()), None, "{line}");
        }
    }

    #[test]
    fn numbers_and_ids_of_every_length_read_as_serde_reads_them() {
        for number in [
            "0",
            "-0",
            "-0.0",
            "1",
            "7.5",
            "0.6251",
            "0.0001",
            "123456789.123456789",
            "1e5",
            "1E+05",
            "2.5e-3",
            "123456789012345678901234",
            "0.1234567890123456789",
            "1e400",
            "01",
            "1.",
            ".5",
            "-",
            "1e",
            "1.5.2",
            "12345678",
            "1234567.8",
            "9007199254740993",
        ] {
            for id_len in 0..20 {
                let id: String = "u0123456789abcdefghij".chars().take(id_len).collect();
                for line in [
                    format!(r#"{{"prediction":{number},"label":1,"user_id":"{id}"}}"#),
                    format!(r#"{{"user_id":"{id}","label":0,"prediction":{number}}}"#),
                    format!(r#"{{"user_id":"{id}é","prediction":{number} ,"label":true}}"#),
                ] {
                    same(&line);
                    let serde_ok = full(line.as_bytes()).is_some();
                    let fast_ok = fast_record(line.as_bytes()).is_some();
                    assert!(!fast_ok || serde_ok, "{line}");
                }
            }
        }
        // an id with a quote or a control byte right after 15 bytes
        for line in [
            "{\"prediction\":0.5,\"label\":1,\"user_id\":\"0123456789abcde\\\"\"}",
            "{\"prediction\":0.5,\"label\":1,\"user_id\":\"0123456789abcde\u{1}\"}",
            "{\"prediction\":0.5,\"label\":1,\"user_id\":\"0123456789abcdef\"}",
        ] {
            same(line);
        }
    }

    proptest! {
        #[test]
        fn the_fast_path_reads_what_serde_reads(
            score in prop_oneof![0.0f64..1.0, -1e6f64..1e6, Just(0.1), Just(1e-300)],
            digits in 1usize..17,
            label in 0u8..4,
            user in proptest::option::of("[a-z0-9_é]{0,8}"),
            weight in proptest::option::of(0.0f64..10.0),
            order in 0usize..6,
            pad in prop_oneof![Just(""), Just(" "), Just("\t ")],
        ) {
            let label = ["0", "1", "true", "false"][label as usize];
            let mut fields = vec![
                format!("\"prediction\"{pad}:{pad}{score:.digits$}"),
                format!("\"label\":{pad}{label}"),
            ];
            if let Some(u) = &user { fields.push(format!("\"user_id\":\"{u}\"")); }
            if let Some(w) = weight { fields.push(format!("\"weight\":{w:e}")); }
            let n = fields.len();
            fields.rotate_left(order % n);
            let line = format!("{pad}{{{pad}{}{pad}}}", fields.join(&format!("{pad},{pad}")));
            prop_assert!(fast_record(line.as_bytes()).is_some(), "{}", line);
            same(&line);
        }
    }
}
