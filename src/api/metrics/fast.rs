//! A strict fast parser for the common shape of a `POST /metrics` body: an
//! object whose `predictions` is a flat array of plain JSON numbers, whose
//! `labels` are `0`/`1`/`true`/`false` (or small class indices) and whose
//! `user_ids` are strings without escapes (or small non-negative integers).
//!
//! Why: serde_json reads a number through its generic `deserialize_any`
//! machinery (a peek, a visitor call and a `Result` per byte class), and a
//! user id through `visit_str` into an interner that packs and hashes it
//! again. Scanning the bytes by hand and handing the interner a key built
//! from the bytes already loaded halves the instructions of a 1M-row body
//! (README → Performance).
//!
//! The contract that keeps it safe: this parser only ever *accepts* text it
//! is sure of, and gives the value serde_json (with `float_roundtrip`) gives
//! for that text, bit for bit. Whenever it meets anything else (an escape, a
//! nested array, an exotic number, a wrong type, a non-finite value, a
//! duplicate key...) it answers "don't know" (`None`): an array value is then
//! parsed by the serde path ([`MetricsRequestWith`]'s own field types) from
//! its first byte, and anything at the top level sends the whole body back
//! to the serde parse. Errors therefore never come from here: a body this
//! parser cannot read is read (and its error worded) by serde, as before.
//!
//! Every member other than the three arrays (the options) is left to serde:
//! its value is skipped with serde's own scanner, copied into a small
//! residual object with the three arrays replaced by `0`, and that object is
//! deserialized as the request with placeholder array types, so unknown
//! fields, duplicates, missing fields and defaults are exactly serde's.

use serde::de::{DeserializeOwned, DeserializeSeed, IgnoredAny};
use serde_json::Deserializer;

use super::request::{Interner, Labels, MetricsRequest, MetricsRequestWith, UserIdSeed, UserIds};
use crate::api::json_number;
use crate::api::tensor::Tensor;

/// The request with the three arrays as placeholders, for the residual
/// object of the options.
type Options = MetricsRequestWith<IgnoredAny, IgnoredAny, IgnoredAny>;

/// Parses a whole `POST /metrics` body; `None` when any part of it is not
/// the common shape (the caller then parses the body with serde).
/// `users_ahead(start)` may return the `user_ids` value starting at byte
/// `start` and its end, already parsed by [`user_ids_value`] on another
/// thread.
pub(super) fn request(
    bytes: &[u8],
    mut users_ahead: impl FnMut(usize) -> Option<(Option<UserIds>, usize)>,
) -> Option<MetricsRequest> {
    let mut pos = skip_ws(bytes, 0);
    if bytes.get(pos) != Some(&b'{') {
        return None;
    }
    pos = skip_ws(bytes, pos + 1);
    let mut residual = Vec::with_capacity(64);
    residual.push(b'{');
    let (mut predictions, mut labels, mut user_ids) = (None, None, None);
    if bytes.get(pos) == Some(&b'}') {
        pos += 1;
    } else {
        loop {
            // The key: a plain string (an escaped one goes to serde).
            if bytes.get(pos) != Some(&b'"') {
                return None;
            }
            let key_end = pos + 1 + memchr::memchr2(b'"', b'\\', bytes.get(pos + 1..)?)?;
            if bytes[key_end] != b'"' {
                return None;
            }
            let key = &bytes[pos + 1..key_end];
            if residual.len() > 1 {
                residual.push(b',');
            }
            residual.extend_from_slice(&bytes[pos..=key_end]);
            residual.push(b':');
            pos = skip_ws(bytes, key_end + 1);
            if bytes.get(pos) != Some(&b':') {
                return None;
            }
            let start = skip_ws(bytes, pos + 1);
            let end = match key {
                b"predictions" => {
                    let (value, end) = predictions_value(bytes, start)?;
                    predictions = Some(value);
                    end
                }
                b"labels" => {
                    let (value, end) = labels_value(bytes, start)?;
                    labels = Some(value);
                    end
                }
                b"user_ids" => {
                    let (value, end) = match users_ahead(start) {
                        Some(ahead) => ahead,
                        None => user_ids_value(bytes, start)?,
                    };
                    user_ids = Some(value);
                    end
                }
                _ => {
                    let end = serde_value_at::<IgnoredAny>(bytes, start)?.1;
                    residual.extend_from_slice(&bytes[start..end]);
                    end
                }
            };
            if matches!(key, b"predictions" | b"labels" | b"user_ids") {
                residual.push(b'0');
            }
            pos = skip_ws(bytes, end);
            match bytes.get(pos) {
                Some(b',') => pos = skip_ws(bytes, pos + 1),
                Some(b'}') => {
                    pos += 1;
                    break;
                }
                _ => return None,
            }
        }
    }
    if skip_ws(bytes, pos) != bytes.len() {
        return None;
    }
    residual.push(b'}');
    // Unknown fields, duplicate keys, missing arrays, the options' own
    // types and defaults: all decided by serde on the residual object.
    let options: Options = serde_json::from_slice(&residual).ok()?;
    Some(MetricsRequest {
        predictions: predictions?,
        labels: labels?,
        user_ids: user_ids.flatten(),
        sample_weights: options.sample_weights,
        threshold: options.threshold,
        beta: options.beta,
        average: options.average,
        roc: options.roc,
        gauc_weighting: options.gauc_weighting,
        pr: options.pr,
        calibration: options.calibration,
        thresholds: options.thresholds,
        tpr_at_fpr: options.tpr_at_fpr,
        max_fpr: options.max_fpr,
        confidence: options.confidence,
        ranking: options.ranking,
    })
}

/// JSON whitespace (exactly serde_json's four bytes) from `pos` on.
fn skip_ws(bytes: &[u8], mut pos: usize) -> usize {
    while let Some(b' ' | b'\n' | b'\t' | b'\r') = bytes.get(pos) {
        pos += 1;
    }
    pos
}

/// The value of type `T` starting at `start` as serde reads it, and the
/// offset just past it; `None` if serde refuses it.
fn serde_value_at<T: DeserializeOwned>(bytes: &[u8], start: usize) -> Option<(T, usize)> {
    let mut values = Deserializer::from_slice(bytes.get(start..)?).into_iter::<T>();
    let value = values.next()?.ok()?;
    Some((value, start + values.byte_offset()))
}

/// The `predictions` value at `start` and its end: a flat array of numbers
/// read here, anything else (a matrix, a scalar, an odd number) by serde.
pub fn predictions_value(bytes: &[u8], start: usize) -> Option<(Tensor, usize)> {
    flat_predictions(bytes, start).or_else(|| serde_value_at::<Tensor>(bytes, start))
}

/// The `labels` value at `start` and its end.
pub fn labels_value(bytes: &[u8], start: usize) -> Option<(Labels, usize)> {
    plain_labels(bytes, start).or_else(|| serde_value_at::<Labels>(bytes, start))
}

/// The `user_ids` value at `start` (`null` is `None`) and its end.
pub fn user_ids_value(bytes: &[u8], start: usize) -> Option<(Option<UserIds>, usize)> {
    match plain_user_ids(bytes, start) {
        Some((ids, end)) => Some((Some(ids), end)),
        None => serde_value_at::<Option<UserIds>>(bytes, start),
    }
}

/// Walks the elements of the array starting at `start` (`[` there), calling
/// `element(pos)` at the first byte of each; `element` returns the offset
/// past it or `None` to give up. Returns the offset past the `]`.
fn walk_array(
    bytes: &[u8],
    start: usize,
    mut element: impl FnMut(usize) -> Option<usize>,
) -> Option<usize> {
    if bytes.get(start) != Some(&b'[') {
        return None;
    }
    let mut pos = skip_ws(bytes, start + 1);
    if bytes.get(pos) == Some(&b']') {
        return Some(pos + 1);
    }
    loop {
        pos = element(pos)?;
        // The common case, `,` right after the value, without a call.
        match bytes.get(pos) {
            Some(b',') => pos = skip_ws(bytes, pos + 1),
            Some(b']') => return Some(pos + 1),
            _ => {
                pos = skip_ws(bytes, pos);
                match bytes.get(pos) {
                    Some(b',') => pos = skip_ws(bytes, pos + 1),
                    Some(b']') => return Some(pos + 1),
                    _ => return None,
                }
            }
        }
    }
}

/// A flat array of numbers as a 1-d tensor (what serde's [`Tensor`] makes
/// of it), or `None`.
fn flat_predictions(bytes: &[u8], start: usize) -> Option<(Tensor, usize)> {
    let mut data = Vec::new();
    let end = walk_array(bytes, start, |pos| {
        let (value, end) = number(bytes, pos)?;
        data.push(value);
        Some(end)
    })?;
    let len = data.len();
    let array = ndarray::ArrayD::from_shape_vec(ndarray::IxDyn(&[len]), data).ok()?;
    Some((Tensor(array), end))
}

/// The JSON number token at `pos` (as [`json_number::number`] reads it)
/// and the offset past it, or `None` unless a delimiter follows it (serde
/// refuses `1x`, `01`, `1.5.2`).
#[inline]
fn number(bytes: &[u8], start: usize) -> Option<(f64, usize)> {
    let (value, end) = json_number::number(bytes, start)?;
    matches!(
        bytes.get(end),
        Some(b',' | b']' | b' ' | b'\n' | b'\t' | b'\r')
    )
    .then_some((value, end))
}

/// Labels written `0`, `1`, `true`, `false` or as a class index of at most
/// nine digits; `None` for anything else (`1.0`, `-1`, a string...), which
/// serde reads (or refuses).
fn plain_labels(bytes: &[u8], start: usize) -> Option<(Labels, usize)> {
    let mut labels = Labels::default();
    let end = walk_array(bytes, start, |pos| {
        let (value, boolean, end) = match bytes.get(pos..pos + 2) {
            Some(b"0," | b"0]") => (0, false, pos + 1),
            Some(b"1," | b"1]") => (1, false, pos + 1),
            _ => label_token(bytes, pos)?,
        };
        if boolean && labels.first_bool.is_none() {
            labels.first_bool = Some(labels.values.len());
        }
        labels.values.push(value);
        Some(end)
    })?;
    Some((labels, end))
}

/// One label token other than the common `0,`/`1,`: its value, whether it
/// was a boolean, and its end.
fn label_token(bytes: &[u8], pos: usize) -> Option<(u32, bool, usize)> {
    let (value, boolean, end) = if bytes[pos..].starts_with(b"true") {
        (1, true, pos + 4)
    } else if bytes[pos..].starts_with(b"false") {
        (0, true, pos + 5)
    } else {
        let digits = bytes[pos..]
            .iter()
            .take(10)
            .take_while(|b| b.is_ascii_digit())
            .count();
        // No leading zero (serde refuses `01`), at most 9 digits (< 2^32).
        if digits == 0 || digits > 9 || (digits > 1 && bytes[pos] == b'0') {
            return None;
        }
        let value = bytes[pos..pos + digits]
            .iter()
            .fold(0u32, |v, &d| v * 10 + u32::from(d - b'0'));
        (value, false, pos + digits)
    };
    if !matches!(
        bytes.get(end),
        Some(b',' | b']' | b' ' | b'\n' | b'\t' | b'\r')
    ) {
        return None;
    }
    Some((value, boolean, end))
}

/// Bytes of a 16-byte word equal to `b`, flagged in their top bit (the lowest
/// flag is exact; flags above it may be false).
#[inline]
fn bytes_equal(word: u128, b: u8) -> u128 {
    const ONES: u128 = u128::from_le_bytes([0x01; 16]);
    const HIGHS: u128 = u128::from_le_bytes([0x80; 16]);
    let x = word ^ (ONES * u128::from(b));
    x.wrapping_sub(ONES) & !x & HIGHS
}

/// User ids that are strings without escapes or non-negative integers of at
/// most 19 digits; a string with an escape is read by serde on its own; any
/// other id gives up (serde reads the whole array).
fn plain_user_ids(bytes: &[u8], start: usize) -> Option<(UserIds, usize)> {
    let mut interner = Interner::default();
    let end = walk_array(bytes, start, |pos| {
        let (index, end) = match bytes.get(pos) {
            Some(b'"') => string_id(bytes, pos, &mut interner)?,
            Some(b'0'..=b'9') => integer_id(bytes, pos, &mut interner)?,
            _ => return None,
        };
        interner.push_record(index);
        Some(end)
    })?;
    Some((interner.into_ids(), end))
}

/// The string user id whose opening quote is at `pos`: its dense index and
/// the offset past its closing quote.
#[inline]
fn string_id(bytes: &[u8], pos: usize, interner: &mut Interner) -> Option<(u32, usize)> {
    const HIGHS: u128 = u128::from_le_bytes([0x80; 16]);
    const ONES: u128 = u128::from_le_bytes([0x01; 16]);
    let from = pos + 1;
    // One 16-byte load finds the closing quote of a short id and is its key.
    if let Some(chunk) = bytes.get(from..from + 16) {
        let mut word = [0u8; 16];
        word.copy_from_slice(chunk);
        let word = u128::from_le_bytes(word);
        // Bytes that end the fast case: `"`, `\`, a control byte (< 0x20,
        // refused by serde) or a non-ASCII byte (UTF-8 to validate).
        let control = word.wrapping_sub(ONES * 0x20) & !word & HIGHS;
        let special = bytes_equal(word, b'"') | bytes_equal(word, b'\\') | control | (word & HIGHS);
        let len = (special.trailing_zeros() / 8) as usize;
        if len < 16 && bytes[from + len] == b'"' {
            // Bytes 0..len of the word, the length in byte 15: `short_key`.
            let mask = (1u128 << (8 * len)) - 1;
            let key = (word & mask) | (len as u128) << 120;
            let index = interner.short_bytes(key, &bytes[from..from + len])?;
            return Some((index, from + len + 1));
        }
    }
    long_string_id(bytes, pos, interner)
}

/// [`string_id`] for an id of 16 bytes or more, one with non-ASCII bytes or
/// an escape, or one at the very end of the body.
#[cold]
fn long_string_id(bytes: &[u8], pos: usize, interner: &mut Interner) -> Option<(u32, usize)> {
    let from = pos + 1;
    let stop = from + memchr::memchr2(b'"', b'\\', bytes.get(from..)?)?;
    if bytes[stop] == b'"' {
        let raw = &bytes[from..stop];
        if raw.iter().any(|&b| b < 0x20) {
            return None;
        }
        let name = std::str::from_utf8(raw).ok()?;
        let index = interner.string::<serde_json::Error>(name).ok()?;
        return Some((index, stop + 1));
    }
    // An escape: find the closing quote (a `\` escapes the next byte), and
    // let serde read the id from exactly that text.
    let mut end = stop;
    loop {
        match bytes.get(end)? {
            b'\\' => end += 2,
            b'"' => break,
            _ => end += 1,
        }
    }
    let mut de = Deserializer::from_slice(&bytes[pos..=end]);
    let index = UserIdSeed(interner).deserialize(&mut de).ok()?;
    de.end().ok()?;
    Some((index, end + 1))
}

/// A non-negative integer user id of at most 19 digits (a `u64`, which
/// serde reads with `visit_u64`).
fn integer_id(bytes: &[u8], pos: usize, interner: &mut Interner) -> Option<(u32, usize)> {
    let digits = bytes[pos..]
        .iter()
        .take(20)
        .take_while(|b| b.is_ascii_digit())
        .count();
    if digits > 19 || (digits > 1 && bytes[pos] == b'0') {
        return None;
    }
    let end = pos + digits;
    if !matches!(
        bytes.get(end),
        Some(b',' | b']' | b' ' | b'\n' | b'\t' | b'\r')
    ) {
        return None;
    }
    let value = bytes[pos..end]
        .iter()
        .fold(0u64, |v, &d| v * 10 + u64::from(d - b'0'));
    let index = interner
        .integer::<serde_json::Error>(i128::from(value))
        .ok()?;
    Some((index, end))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::extract::{parse_json, parse_json_with};
    use crate::api::json_number::digit_run;
    use proptest::prelude::*;

    /// Everything a request holds, floats as bits (ndarray's `Debug`
    /// elides long arrays).
    fn fingerprint(r: &MetricsRequest) -> String {
        let bits: Vec<u64> = r.predictions.0.iter().map(|v| v.to_bits()).collect();
        format!(
            "{:?} {bits:?} {:?} {:?} {:?} {:?} {:?} {:?} {:?} {:?} {:?} {:?} {:?} {:?} {:?} {:?} {:?}",
            r.predictions.shape(),
            r.labels,
            r.user_ids,
            r.sample_weights,
            r.threshold.to_bits(),
            r.beta.to_bits(),
            r.average,
            r.roc,
            r.gauc_weighting,
            r.pr,
            r.calibration,
            r.thresholds,
            r.tpr_at_fpr,
            r.max_fpr,
            r.confidence.to_bits(),
            r.ranking
        )
    }

    /// The fast parse (one thread and two) against serde's: the same value,
    /// or both failing; and the same answer (value or problem) through the
    /// extractor. Returns whether the fast parser read the body itself.
    fn check(body: &str) -> bool {
        let bytes = body.as_bytes();
        let serde = serde_json::from_slice::<MetricsRequest>(bytes);
        let fast = request(bytes, |_| None);
        let one = MetricsRequest::from_json(bytes);
        let two = MetricsRequest::from_json_two_threads(bytes);
        let show = |r: &Result<MetricsRequest, serde_json::Error>| r.as_ref().ok().map(fingerprint);
        assert_eq!(show(&one), show(&serde), "one thread, body {body}");
        assert_eq!(show(&two), show(&serde), "two threads, body {body}");
        if let Some(fast) = &fast {
            assert_eq!(Some(fingerprint(fast)), show(&serde), "fast, body {body}");
        }
        let answer = |r: Result<MetricsRequest, crate::api::ApiError>| match r {
            Ok(v) => fingerprint(&v),
            Err(e) => format!("{:?} {:?} {}", e.problem, e.field, e.detail),
        };
        assert_eq!(
            answer(parse_json_with(bytes, MetricsRequest::from_json_parallel)),
            answer(parse_json::<MetricsRequest>(bytes)),
            "answer, body {body}"
        );
        fast.is_some()
    }

    #[test]
    fn number_edge_cases_are_bit_identical_to_serde() {
        let numbers = [
            "0",
            "-0",
            "0.0",
            "-0.0",
            "0e0",
            "-0e-0",
            "1",
            "-1",
            "1.0",
            "0.5",
            "1e5",
            "1E5",
            "1e+5",
            "1e-5",
            "1.5e-7",
            "0.1",
            "0.3",
            "2.2250738585072014e-308",
            "2.2250738585072011e-308",
            "4.9e-324",
            "5e-324",
            "2e-324",
            "1e-320",
            "1e-400",
            "-1e-400",
            "0e999999999999",
            "1.7976931348623157e308",
            "9007199254740993",
            "9007199254740992.5",
            "18446744073709551615",
            "18446744073709551616",
            "-9223372036854775808",
            "-9223372036854775809",
            "123456789012345678901234567890",
            "0.1000000000000000055511151231257827021181583404541015625",
            "0.30000000000000004",
            "0.8234567891234567",
            "0.9234567891234567",
            "1e22",
            "1e23",
            "123456789012345e-22",
            "1234567890123456e-22",
            "1e0001",
            "1e-00001",
            "1.00000000000000000000000000000000000000001",
            "0.000000000000000000000000000000001",
            "7.2057594037927933e16",
            "1e-99999999999",
            "0.00000e99999999999",
        ];
        for n in numbers {
            let body = format!(r#"{{"predictions": [{n}, {n},{n}], "labels": [1, 0, 1]}}"#);
            assert!(check(&body), "the fast parser reads {n}");
        }
        // Out of range, not numbers, odd spellings: serde decides.
        for n in [
            "1e400",
            "-1e400",
            "1e99999999999",
            "NaN",
            "Infinity",
            "01",
            "1.",
            ".5",
            "-",
            "1e",
            "+1",
            "1.5.2",
            "0x10",
            "\"1\"",
            "null",
            "[1]",
            "1 2",
        ] {
            let body = format!(r#"{{"predictions": [0.5, {n}], "labels": [1, 0]}}"#);
            check(&body);
        }
    }

    /// `number` against serde_json (with `float_roundtrip`) on one token.
    fn assert_number_is_serde(token: &str, delimiter: &str) {
        let text = format!("{token}{delimiter}");
        let fast = number(text.as_bytes(), 0);
        let serde = serde_json::from_str::<f64>(token).ok();
        if let Some((value, end)) = fast {
            assert_eq!(end, token.len(), "end of {token:?}");
            assert_eq!(
                Some(value.to_bits()),
                serde.map(f64::to_bits),
                "token {token:?}"
            );
        }
    }

    #[test]
    fn six_place_scores_are_bit_identical_to_serde() {
        // The scores of the benchmark's body, and their shorter spellings.
        for v in (0..1_000_000u32).step_by(7).chain(999_990..1_000_000) {
            let token = format!("0.{v:06}");
            for delimiter in [",", "]", " "] {
                assert_number_is_serde(&token, delimiter);
            }
            let trimmed = token.trim_end_matches('0');
            if trimmed.len() > 2 {
                assert_number_is_serde(trimmed, ",");
                assert_number_is_serde(&format!("-{trimmed}"), "]");
            }
            assert!(
                number(format!("{token},").as_bytes(), 0).is_some(),
                "{token}"
            );
        }
    }

    #[test]
    fn digit_runs_of_every_length_and_alignment() {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1);
            state >> 33
        };
        for int_len in 0..22 {
            for frac_len in 0..26 {
                let mut token = String::new();
                for i in 0..int_len {
                    let d = next() % 10;
                    token.push(char::from(
                        b'0' + if i == 0 { 1 + d as u8 % 9 } else { d as u8 },
                    ));
                }
                if int_len == 0 {
                    token.push('0');
                }
                if frac_len > 0 {
                    token.push('.');
                    for _ in 0..frac_len {
                        token.push(char::from(b'0' + (next() % 10) as u8));
                    }
                }
                for suffix in ["", "e5", "E-3", "e+22", "e-308"] {
                    let token = format!("{token}{suffix}");
                    for delimiter in [",", "]", "\n", "x", "", "0", ".", "/", ":", "\u{e9}"] {
                        assert_number_is_serde(&token, delimiter);
                    }
                    // At the very end of the text too.
                    let fast = number(token.as_bytes(), 0);
                    assert!(fast.is_none(), "no delimiter after {token}");
                }
            }
        }
        // A digit run scanned against the byte-by-byte loop, every byte
        // value right after the run.
        for after in 0..=255u8 {
            for len in 0..20 {
                let mut text: Vec<u8> = (0..len).map(|i| b'0' + ((i * 7 + 3) % 10) as u8).collect();
                text.push(after);
                text.extend_from_slice(b"123456789");
                let mut fast = 0u64;
                let end = digit_run(&text, 0, &mut fast);
                let (mut slow, mut pos) = (0u64, 0);
                while let Some(&d @ b'0'..=b'9') = text.get(pos) {
                    slow = slow.wrapping_mul(10).wrapping_add(u64::from(d - b'0'));
                    pos += 1;
                }
                assert_eq!((end, fast), (pos, slow), "len {len}, byte {after}");
            }
        }
    }

    #[test]
    fn common_bodies_are_read_by_the_fast_parser() {
        for body in [
            r#"{"predictions": [0.1, 0.9, 0.4], "labels": [0, 1, 1], "user_ids": ["a", "b", "a"]}"#,
            r#" { "user_ids" : [7, "7", "x"] , "predictions":[0.5,0.25,1e-3],"labels":[true,false,true],"threshold":0.3 } "#,
            "{\"predictions\":\n[0.1,\t0.2\r\n],\"labels\":[ 1 ,0 ],\"user_ids\":[ \"a\" , \"b\" ]}",
            r#"{"predictions": [], "labels": []}"#,
            r#"{"predictions": [0.1], "labels": [1], "user_ids": null, "sample_weights": null}"#,
            r#"{"predictions": [0.1, 0.2], "labels": [1, 0], "sample_weights": [2, 0.5], "roc": {"max_points": null}}"#,
            r#"{"predictions": [0.1, 0.2, 0.3], "labels": [1, 0, 1], "user_ids": ["a-very-long-user-identifier", "é", "a\"b", "a\u0041", "\u00e9", "a-very-long-user-identifier", "A"]}"#,
            r#"{"predictions": [[0.1, 0.9], [0.8, 0.2]], "labels": [1, 0], "average": "weighted"}"#,
            r#"{"predictions": [0.1, 0.2], "labels": [1.0, 0], "user_ids": [-3, 18446744073709551615]}"#,
            r#"{"labels": [2, 1000000000, 999999999], "predictions": [0.1, 0.2, 0.3]}"#,
        ] {
            assert!(check(body), "{body}");
        }
    }

    #[test]
    fn malformed_bodies_fail_with_the_same_problem() {
        for body in [
            "",
            "[]",
            "{}",
            "{",
            r#"{"predictions": [0.1], "labels": [1]"#,
            r#"{"predictions": [0.1], "labels": [1]} x"#,
            r#"{"predictions": [0.1], "labels": [1],}"#,
            r#"{"predictions": [0.1,], "labels": [1]}"#,
            r#"{"predictions": [0.1], "labels": [1,]}"#,
            r#"{"predictions": [0.1], "labels": [1], "user_ids": ["a",]}"#,
            r#"{"predictions": [0.1] "labels": [1]}"#,
            r#"{"predictions": [0.1], "labels": [1], "extra": 1}"#,
            r#"{"predictions": [0.1], "labels": [1], "user_ids": ["a"], "user_ids": ["b"]}"#,
            r#"{"predictions": [0.1], "predictions": [0.2], "labels": [1]}"#,
            r#"{"predictions": [0.1], "labels": [1], "user_ids": [{"a": 1}]}"#,
            r#"{"predictions": [0.1], "labels": [1], "user_ids": [1.5]}"#,
            r#"{"predictions": [0.1], "labels": [1], "user_ids": [-0]}"#,
            r#"{"predictions": [0.1], "labels": [1], "user_ids": ["a\x"]}"#,
            "{\"predictions\": [0.1], \"labels\": [1], \"user_ids\": [\"a\u{1}\"]}",
            r#"{"predictions": [0.1], "labels": [1], "user_ids": ["a"#,
            r#"{"predictions": [1e999], "labels": [1]}"#,
            r#"{"predictions": [0.5, "x"], "labels": [1, 0]}"#,
            r#"{"predictions": [[0.5], [0.1, 0.2]], "labels": [1, 0]}"#,
            r#"{"predictions": [0.5, 0.1], "labels": [1, -1]}"#,
            r#"{"predictions": [0.5, 0.1], "labels": [1, 0.5]}"#,
            r#"{"predictions": [0.5, 0.1], "labels": [1, "1"]}"#,
            r#"{"predictions": [0.5, 0.1], "labels": [1, 4294967296]}"#,
            r#"{"predictions": [0.5, 0.1], "labels": [1, 01]}"#,
            r#"{"predictions": [0.5, 0.1], "labels": [1, tru]}"#,
            r#"{"predictions": [0.5], "labels": [1], "roc": {"points": 3}}"#,
            r#"{"predictions": [0.5], "labels": [1], "threshold": "x"}"#,
            r#"{"predictions": [0.5], "labels": [1], "threshold": 1e999}"#,
            r#"{"predictions": [0.5], "labels": [1], "thr\u0065shold": 0.3}"#,
            r#"{"pred\u0069ctions": [0.5], "labels": [1]}"#,
            r#"{"labels": [1]}"#,
            r#"{"predictions": [0.5]}"#,
            r#"{"predictions": [0.5], "labels": [1], "user_ids": "a"}"#,
            "{\"predictions\": [0.5], \"labels\": [1]}\u{a0}",
            "{\"predictions\":\u{a0}[0.5], \"labels\": [1]}",
            "{\"predictions\": [0.5\u{c}], \"labels\": [1]}",
        ] {
            check(body);
        }
    }

    /// A number token: a random finite f64 in one of several spellings, or
    /// a hand-written edge case.
    fn number_token() -> impl Strategy<Value = String> {
        prop_oneof![
            any::<f64>()
                .prop_filter("finite", |v| v.is_finite())
                .prop_map(|v| format!("{v:?}")),
            any::<f64>()
                .prop_filter("finite", |v| v.is_finite())
                .prop_map(|v| format!("{v:e}")),
            (0.0f64..1.0).prop_map(|v| format!("{v}")),
            (0u32..1_000_000).prop_map(|v| format!("0.{v:06}")),
            any::<i64>().prop_map(|v| v.to_string()),
            any::<u64>().prop_map(|v| v.to_string()),
            (any::<u64>(), -330i32..330).prop_map(|(m, e)| format!("{m}e{e}")),
            (any::<u32>(), 0usize..25, -30i32..30)
                .prop_map(|(m, zeros, e)| format!("0.{}{m}E{e:+}", "0".repeat(zeros))),
            (1u64..1 << 53, -25i32..25).prop_map(|(m, e)| format!("-{m}e{e}")),
            prop::sample::select(vec![
                "-0",
                "-0.0",
                "0",
                "1e-320",
                "4.9e-324",
                "1e-400",
                "1e308",
                "123456789012345678901234",
                "0.99999999999999999999",
                "1.0",
                "100",
                "1E+2",
                "1e400",
            ])
            .prop_map(str::to_owned),
        ]
    }

    fn label_token() -> impl Strategy<Value = String> {
        prop::sample::select(vec![
            "0",
            "0",
            "1",
            "1",
            "true",
            "false",
            "2",
            "17",
            "1.0",
            "0.0",
            "-0.0",
            "1e0",
            "999999999",
            "4294967295",
        ])
        .prop_map(str::to_owned)
    }

    fn user_token() -> impl Strategy<Value = String> {
        prop_oneof![
            4 => "[a-z0-9]{0,6}".prop_map(|s| format!("\"{s}\"")),
            1 => "[a-zA-Z0-9_-]{14,20}".prop_map(|s| format!("\"{s}\"")),
            1 => "[a-zé\"\\\\ü\u{1F600}/]{0,8}".prop_map(|s| serde_json::to_string(&s).unwrap_or_default()),
            1 => "[a-z]{0,3}".prop_map(|s| format!("\"{s}\\u0041\\/\"")),
            1 => (0u64..50).prop_map(|v| v.to_string()),
            1 => prop::sample::select(vec!["-5", "18446744073709551615", "007"]).prop_map(str::to_owned),
        ]
    }

    fn separator() -> impl Strategy<Value = String> {
        prop::sample::select(vec!["", "", "", " ", "\n", "\t", "\r\n  "]).prop_map(str::to_owned)
    }

    fn array(items: Vec<String>, seps: Vec<String>) -> String {
        let mut out = String::from("[");
        for (i, item) in items.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(&seps[i % seps.len()]);
            out.push_str(item);
            out.push_str(&seps[(i + 1) % seps.len()]);
        }
        out.push(']');
        out
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(400))]

        #[test]
        fn the_fast_parser_equals_serde_on_random_arrays(
            predictions in prop::collection::vec(number_token(), 0..40),
            labels in prop::collection::vec(label_token(), 0..40),
            users in prop::collection::vec(user_token(), 0..40),
            seps in prop::collection::vec(separator(), 1..5),
            with_users in any::<bool>(),
            users_first in any::<bool>(),
        ) {
            let n = predictions.len().min(labels.len());
            let p = array(predictions[..n].to_vec(), seps.clone());
            let l = array(labels[..n].to_vec(), seps.clone());
            let u = array(users.iter().cycle().take(if users.is_empty() { 0 } else { n }).cloned().collect(), seps.clone());
            let body = match (with_users, users_first) {
                (false, _) => format!(r#"{{"predictions":{p},"labels":{l}}}"#),
                (true, false) => format!(r#"{{"predictions":{p},"labels":{l},"user_ids":{u}}}"#),
                (true, true) => format!(r#"{{"user_ids":{u}, "threshold": 0.25, "labels":{l},"predictions":{p}}}"#),
            };
            check(&body);
        }

        #[test]
        fn a_mangled_body_gets_the_same_answer(
            predictions in prop::collection::vec(number_token(), 1..8),
            users in prop::collection::vec(user_token(), 1..8),
            at in any::<prop::sample::Index>(),
            cut in 0usize..4,
            insert in prop::sample::select(vec!["", "\"", ",", "]", "[", "}", "{", "\\", "-", "e", "0", " ", "x", "\u{1}", "é", "null"]),
        ) {
            let n = predictions.len().min(users.len());
            let body = format!(
                r#"{{"predictions":{},"labels":{},"user_ids":{}}}"#,
                array(predictions[..n].to_vec(), vec![String::new()]),
                array(vec!["1".to_owned(); n], vec![String::new()]),
                array(users[..n].to_vec(), vec![String::new()]),
            );
            let mut bytes = body.into_bytes();
            let i = at.index(bytes.len());
            let end = (i + cut).min(bytes.len());
            bytes.splice(i..end, insert.bytes());
            if let Ok(text) = String::from_utf8(bytes) {
                check(&text);
            }
        }
    }
}
