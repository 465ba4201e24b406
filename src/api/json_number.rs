//! JSON number tokens read as serde_json (with `float_roundtrip`) reads
//! them, bit for bit, without serde: the one number reader of the fast
//! paths of `POST /metrics` (`api::metrics::fast`) and of stream NDJSON
//! lines (`api::streams::fast`). Each caller checks what may follow a
//! number in its own grammar.

/// Powers of ten that are exact in an f64 (10^22 is the last).
const EXACT_POWERS_OF_TEN: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

/// The JSON number token at `pos` as serde_json (with `float_roundtrip`)
/// reads it into an f64, and the offset past it; `None` for anything that is
/// not a number token or not finite. The caller checks what follows (a
/// delimiter), which also refuses `01`, `1.5.2` or `1x`.
///
/// Exactness: a token of at most 15 significant digits with a decimal
/// exponent within ±22 is the quotient (or product) of two f64s that hold
/// their values exactly, so one IEEE division (multiplication) rounds it
/// correctly (Clinger's fast path, also the first step of std's parser).
/// Any other token of at most 19 digits goes to `f64::from_str`, which is
/// correctly rounded too; longer tokens (or huge exponents) to serde_json
/// itself. serde_json with `float_roundtrip` rounds correctly, integers
/// included (`u64 as f64` rounds to nearest), so all three agree with it.
#[inline(always)]
pub(crate) fn number(bytes: &[u8], start: usize) -> Option<(f64, usize)> {
    let mut pos = start;
    let negative = bytes.get(pos) == Some(&b'-');
    pos += usize::from(negative);
    let mut mantissa: u64 = 0;
    let int_start = pos;
    match bytes.get(pos) {
        Some(b'0') => pos += 1,
        Some(b'1'..=b'9') => pos = digit_run(bytes, pos, &mut mantissa),
        _ => return None,
    }
    let mut digits = pos - int_start;
    let mut exponent: i64 = 0;
    if bytes.get(pos) == Some(&b'.') {
        pos += 1;
        let frac_start = pos;
        pos = digit_run(bytes, pos, &mut mantissa);
        let frac_digits = pos - frac_start;
        if frac_digits == 0 {
            return None;
        }
        digits += frac_digits;
        exponent = -(frac_digits as i64);
    }
    let mut plain = true;
    if let Some(b'e' | b'E') = bytes.get(pos) {
        pos += 1;
        let exp_negative = match bytes.get(pos) {
            Some(b'-') => {
                pos += 1;
                true
            }
            Some(b'+') => {
                pos += 1;
                false
            }
            _ => false,
        };
        let exp_start = pos;
        let mut explicit: i64 = 0;
        while let Some(&d @ b'0'..=b'9') = bytes.get(pos) {
            explicit = explicit
                .saturating_mul(10)
                .saturating_add(i64::from(d - b'0'));
            pos += 1;
        }
        let exp_digits = pos - exp_start;
        if exp_digits == 0 {
            return None;
        }
        // Beyond 4 digits the exponent is exotic: serde decides.
        plain = exp_digits <= 4;
        // Saturating: `explicit` saturates at i64::MAX, and a fraction's
        // negative exponent minus that overflows (found by the ndjson
        // fuzzer; a debug build panicked, a release one wrapped to a huge
        // exponent, which serde then read, so answers were right).
        exponent = exponent.saturating_add(if exp_negative { -explicit } else { explicit });
    }
    let value = if digits <= 15 && (-22..=22).contains(&exponent) {
        let m = mantissa as f64;
        let power = EXACT_POWERS_OF_TEN[exponent.unsigned_abs() as usize];
        if exponent < 0 {
            m / power
        } else {
            m * power
        }
    } else {
        let token = bytes.get(start + usize::from(negative)..pos)?;
        if digits <= 19 && plain {
            std::str::from_utf8(token).ok()?.parse::<f64>().ok()?
        } else {
            serde_json::from_slice::<f64>(token).ok()?
        }
    };
    if !value.is_finite() {
        return None;
    }
    Some((if negative { -value } else { value }, pos))
}

/// Powers of ten up to 10^8, for [`digit_run`].
const POWERS_OF_TEN_U64: [u64; 9] = [
    1,
    10,
    100,
    1_000,
    10_000,
    100_000,
    1_000_000,
    10_000_000,
    100_000_000,
];

/// Reads the run of ASCII digits at `pos` into `mantissa` (each digit
/// appended in decimal, wrapping past `u64`, as the byte-by-byte loop it
/// replaces did) and returns the offset past the run.
///
/// Why: a score such as `0.123456` spent most of its ~160 instructions in a
/// per-digit loop (a bounds check, a range test and a multiply per digit).
/// Eight bytes at a time, the run's length is the position of the first
/// byte that is not a digit, and the digits' value comes from three
/// multiplications (SWAR, as in simdjson's `parse_eight_digits_unrolled`).
/// Near the end of the body, where eight bytes are not there to load, the
/// digits are read one by one.
#[inline(always)]
pub(crate) fn digit_run(bytes: &[u8], mut pos: usize, mantissa: &mut u64) -> usize {
    const ZEROS: u64 = u64::from_le_bytes([b'0'; 8]);
    const HIGHS: u64 = u64::from_le_bytes([0x80; 8]);
    // Adding 0x46 sets the top bit of a byte above '9', subtracting '0' that
    // of a byte below '0' (or of any byte from 0xb0 on); a carry or borrow
    // only reaches the bytes above a byte that is not a digit, so the
    // lowest flag is exact.
    const ABOVE_NINE: u64 = u64::from_le_bytes([0x46; 8]);
    while let Some(chunk) = bytes.get(pos..pos + 8) {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let word = u64::from_le_bytes(word);
        let values = word.wrapping_sub(ZEROS);
        let not_digit = (word.wrapping_add(ABOVE_NINE) | values) & HIGHS;
        let run = (not_digit.trailing_zeros() / 8) as usize;
        if run == 0 {
            return pos;
        }
        // The run's digit values in the top bytes, zeros (leading zeros of
        // the same number) below them.
        let aligned = values << (64 - 8 * run);
        *mantissa = mantissa
            .wrapping_mul(POWERS_OF_TEN_U64[run])
            .wrapping_add(eight_digits(aligned));
        pos += run;
        if run < 8 {
            return pos;
        }
    }
    while let Some(&d @ b'0'..=b'9') = bytes.get(pos) {
        *mantissa = mantissa.wrapping_mul(10).wrapping_add(u64::from(d - b'0'));
        pos += 1;
    }
    pos
}

/// The value of eight decimal digits (each byte 0..=9, the first digit in
/// the lowest byte).
#[inline(always)]
fn eight_digits(values: u64) -> u64 {
    const MASK: u64 = 0x0000_00ff_0000_00ff;
    const MUL1: u64 = 100 + (1_000_000 << 32);
    const MUL2: u64 = 1 + (10_000 << 32);
    // Pairs: byte 2k holds 10 * d_2k + d_2k+1.
    let pairs = values.wrapping_mul(10).wrapping_add(values >> 8);
    let quads = (pairs & MASK)
        .wrapping_mul(MUL1)
        .wrapping_add(((pairs >> 16) & MASK).wrapping_mul(MUL2));
    quads >> 32
}

#[cfg(test)]
mod tests {
    use super::number;

    /// Tokens whose exponent overflows an i64 (with or without a fraction)
    /// read as serde_json reads them, and none panics.
    #[test]
    fn exponents_past_i64_read_as_serde_reads_them() {
        let big = "9".repeat(40);
        let tokens = [
            format!("0.11e-{big}"),
            format!("0.11e+{big}"),
            format!("1e-{big}"),
            format!("1.5e{big}"),
            format!("-0.5111111111111111111111e-{big}"),
            "11111111e-1111111111111".to_owned(),
            "0.51111111111111111111111e-11111111111111111111111".to_owned(),
        ];
        for token in &tokens {
            let ours = number(token.as_bytes(), 0);
            let serde = serde_json::from_str::<f64>(token)
                .ok()
                .filter(|v| v.is_finite());
            assert_eq!(
                ours.map(|(v, _)| v.to_bits()),
                serde.map(f64::to_bits),
                "{token}"
            );
            if let Some((_, end)) = ours {
                assert_eq!(end, token.len(), "{token}");
            }
        }
    }
}
