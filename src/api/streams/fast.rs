//! A fast path for the one NDJSON line shape that dominates real traffic:
//! `{"prediction": N, "label": L, "user_id": "S", "weight": N}`.
//!
//! [`fast_record`] recognizes exactly that shape (keys in any order, each at
//! most once, `user_id` and `weight` optional, JSON whitespace, a user id
//! without escapes or control characters, labels `0`, `1`, `true`, `false`)
//! and returns `None` for anything else, so the caller falls back to the full
//! serde parser, which either gives the same record or the precise error.
//! Numbers are handed to serde_json itself, so they round to the very same
//! `f64` as on the full path and in `POST /metrics`.

use crate::api::labels::binary_token;

/// A record read by the fast path.
#[derive(Debug, Clone, PartialEq)]
pub struct FastRecord<'a> {
    pub prediction: f64,
    pub label: bool,
    pub user_id: Option<&'a str>,
    pub weight: Option<f64>,
}

struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let b = self.peek()?;
        self.at += 1;
        Some(b)
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\r' | b'\n')) {
            self.at += 1;
        }
    }

    fn expect(&mut self, byte: u8) -> Option<()> {
        (self.next()? == byte).then_some(())
    }

    /// The bytes up to the closing quote (the opening one already read);
    /// `None` on an escape or a control character (left to serde).
    fn plain_string(&mut self) -> Option<&'a [u8]> {
        let start = self.at;
        loop {
            match self.next()? {
                b'"' => return self.bytes.get(start..self.at - 1),
                b'\\' => return None,
                c if c < 0x20 => return None,
                _ => {}
            }
        }
    }

    /// The bytes of a bare token (number or literal).
    fn token(&mut self) -> &'a [u8] {
        let start = self.at;
        while matches!(
            self.peek(),
            Some(b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E' | b'a'..=b'z')
        ) {
            self.at += 1;
        }
        self.bytes.get(start..self.at).unwrap_or_default()
    }

    fn number(&mut self) -> Option<f64> {
        let token = self.token();
        if token.is_empty()
            || !token
                .iter()
                .all(|b| b.is_ascii_digit() || matches!(b, b'-' | b'+' | b'.' | b'e' | b'E'))
        {
            return None;
        }
        serde_json::from_slice::<f64>(token).ok()
    }
}

/// Reads `line` if it has the common record shape (see the module docs).
pub fn fast_record(line: &[u8]) -> Option<FastRecord<'_>> {
    let mut c = Cursor { bytes: line, at: 0 };
    let (mut prediction, mut label, mut user_id, mut weight) = (None, None, None, None);
    c.skip_ws();
    c.expect(b'{')?;
    loop {
        c.skip_ws();
        c.expect(b'"')?;
        let key = c.plain_string()?;
        c.skip_ws();
        c.expect(b':')?;
        c.skip_ws();
        match key {
            b"prediction" if prediction.is_none() => prediction = Some(c.number()?),
            b"weight" if weight.is_none() => weight = Some(c.number()?),
            b"label" if label.is_none() => label = Some(binary_token(c.token())?),
            b"user_id" if user_id.is_none() => {
                c.expect(b'"')?;
                user_id = Some(std::str::from_utf8(c.plain_string()?).ok()?);
            }
            _ => return None,
        }
        c.skip_ws();
        match c.next()? {
            b',' => continue,
            b'}' => break,
            _ => return None,
        }
    }
    c.skip_ws();
    if c.peek().is_some() {
        return None;
    }
    Some(FastRecord {
        prediction: prediction?,
        label: label?,
        user_id,
        weight,
    })
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
