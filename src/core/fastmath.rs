//! Branch-free f64 `exp`, `ln` and `ln_1p` that LLVM can inline and
//! auto-vectorize.
//!
//! Why: std's `f64::ln` / `exp` / `ln_1p` are calls into the platform libm
//! (glibc here). A call per element cannot be inlined or vectorized, and on
//! the loss hot paths (BCE, focal, cross entropy) it was more than half of the
//! time. These versions are plain arithmetic, integer bit manipulation and
//! selects (no table lookups, no data-dependent branches, no FMA, no
//! `i64 -> f64` conversion instruction), so a loop over a slice of them
//! compiles to SIMD code on the baseline x86-64 target (SSE2).
//!
//! Algorithms: the argument reductions and polynomials are those of Sun's
//! fdlibm 5.3 (`e_exp.c`, `e_log.c`, as kept in musl `src/math/exp.c` and
//! `src/math/log.c` before musl moved to table-driven versions), whose
//! documented errors are < 1 ulp. They are rewritten without branches: the
//! special cases (0, negative, infinities, NaN, overflow, underflow) are
//! resolved with selects after the main path, subnormal inputs to `ln` are
//! pre-scaled by 2^54, and `exp`'s result is scaled by 2^k in two steps so
//! subnormal results come out gradually instead of flushing to zero.
//! `ln_1p` is `ln(1 + x)` plus the first-order correction
//! `(x - ((1 + x) - 1)) / (1 + x)` for the rounding of `1 + x` (the technique
//! of fdlibm's `s_log1p.c`, which adds the same `c / u` term).
//!
//! Measured error (`tests/api/fastmath.rs`, against std over wide random ranges
//! and the edge values): at most 1 ulp for `exp` and `ln`, at most 2 ulp for
//! `ln_1p`, for normal results; subnormal results of `exp` are within 1 unit
//! of the smallest subnormal. Special values follow IEEE / std: `ln(0) = -inf`,
//! `ln(x < 0) = NaN`, `ln(inf) = inf`, `exp(-inf) = 0`, `exp(inf) = inf`,
//! NaN in gives NaN out.
//!
//! Each function also comes as `*_with::<FMA>`: with `FMA = true` the
//! polynomial steps are fused multiply-adds (`f64::mul_add`, one rounding
//! instead of two, same bounds). That variant is meant to be inlined into
//! code compiled with `#[target_feature(enable = "fma")]` (the AVX2 loss
//! kernels, `core::losses::kernels`), where `mul_add` is one instruction;
//! elsewhere `mul_add` is a libm call, correct but slow. The plain names
//! are the `FMA = false` variant, which the baseline x86-64 target (SSE2,
//! no FMA) vectorizes 2-wide.

// The constants are written digit for digit as in fdlibm so they can be
// checked against the source (they round to the intended doubles).
#![allow(clippy::excessive_precision, clippy::approx_constant)]
// `max(..).min(..)` rather than `clamp`: it maps NaN to a finite number, so
// the integer bit tricks below never see a NaN's bits (NaN is restored at the
// end).
#![allow(clippy::manual_clamp)]

/// 1.5 * 2^52: adding it to a double of magnitude < 2^51 rounds it to an
/// integer (round to nearest even) held in the low mantissa bits.
const ROUND_SHIFT: f64 = 6_755_399_441_055_744.0;
const ROUND_SHIFT_BITS: i64 = 0x4338_0000_0000_0000;

const LN2_HI: f64 = 6.931_471_803_691_238_164_90e-1;
const LN2_LO: f64 = 1.908_214_929_270_587_700_02e-10;
const INV_LN2: f64 = 1.442_695_040_888_963_387_00;

/// ln(f64::MAX): above it exp overflows.
const EXP_OVERFLOW: f64 = 709.782_712_893_383_973_096;
/// Below this exp(x) rounds to 0 (it is below half the smallest subnormal).
const EXP_UNDERFLOW: f64 = -745.133_219_101_941_108_420;

const P1: f64 = 1.666_666_666_666_660_190_37e-1;
const P2: f64 = -2.777_777_777_701_559_338_42e-3;
const P3: f64 = 6.613_756_321_437_934_361_17e-5;
const P4: f64 = -1.653_390_220_546_525_153_90e-6;
const P5: f64 = 4.138_136_797_057_238_460_39e-8;

const LG1: f64 = 6.666_666_666_666_735_130e-1;
const LG2: f64 = 3.999_999_999_940_941_908e-1;
const LG3: f64 = 2.857_142_874_366_239_149e-1;
const LG4: f64 = 2.222_219_843_214_978_396e-1;
const LG5: f64 = 1.818_357_216_161_805_012e-1;
const LG6: f64 = 1.531_383_769_920_937_332e-1;
const LG7: f64 = 1.479_819_860_511_658_591e-1;

/// 2^k as a double for an integer k in [-1022, 1023] (a normal power of 2).
#[inline(always)]
fn pow2(k: i64) -> f64 {
    f64::from_bits(((k + 1023) as u64) << 52)
}

/// a * b + c: fused (one rounding) when `FMA`, two roundings otherwise.
/// Resolved at compile time; only the polynomial steps use it.
#[inline(always)]
fn madd<const FMA: bool>(a: f64, b: f64, c: f64) -> f64 {
    if FMA {
        a.mul_add(b, c)
    } else {
        a * b + c
    }
}

/// [`exp_with`] without fused multiply-adds.
#[inline(always)]
pub fn exp(x: f64) -> f64 {
    exp_with::<false>(x)
}

/// [`ln_with`] without fused multiply-adds.
#[inline(always)]
pub fn ln(x: f64) -> f64 {
    ln_with::<false>(x)
}

/// [`ln_1p_with`] without fused multiply-adds.
#[inline(always)]
pub fn ln_1p(x: f64) -> f64 {
    ln_1p_with::<false>(x)
}

/// e^x, within 1 ulp (fdlibm `e_exp.c`: x = k ln2 + r, |r| <= ln2 / 2,
/// e^r from a degree-5 rational-in-r^2 form, then scaled by 2^k).
#[inline(always)]
pub fn exp_with<const FMA: bool>(x: f64) -> f64 {
    // Clamp so k stays in [-1075, 1024]; the true overflow/underflow cases
    // are selected at the end. NaN passes through `max`/`min` as the other
    // operand, so it is restored by the last select.
    let xc = x.max(EXP_UNDERFLOW - 1.0).min(EXP_OVERFLOW + 1.0);
    let kf = xc * INV_LN2 + ROUND_SHIFT;
    let k = (kf.to_bits() as i64).wrapping_sub(ROUND_SHIFT_BITS);
    let kd = kf - ROUND_SHIFT;
    let hi = xc - kd * LN2_HI;
    let lo = kd * LN2_LO;
    let r = hi - lo;
    let z = r * r;
    let poly = madd::<FMA>(z, P5, P4);
    let poly = madd::<FMA>(z, poly, P3);
    let poly = madd::<FMA>(z, poly, P2);
    let poly = madd::<FMA>(z, poly, P1);
    let c = r - z * poly;
    let y = 1.0 - ((lo - (r * c) / (2.0 - c)) - hi);
    // Two scalings by 2^(k/2) each keep both factors normal for every k in
    // range, and let a subnormal result round once, gradually.
    let k1 = k >> 1;
    let k2 = k - k1;
    let scaled = y * pow2(k1) * pow2(k2);
    let scaled = if x > EXP_OVERFLOW {
        f64::INFINITY
    } else {
        scaled
    };
    let scaled = if x < EXP_UNDERFLOW { 0.0 } else { scaled };
    if x.is_nan() {
        x
    } else {
        scaled
    }
}

/// Natural logarithm, within 1 ulp (fdlibm `e_log.c`: x = 2^k m with
/// m in [sqrt(2)/2, sqrt(2)), ln m from s = (m - 1) / (m + 1) and a
/// degree-14 polynomial in s).
#[inline(always)]
pub fn ln_with<const FMA: bool>(x: f64) -> f64 {
    // Subnormals: scale into the normal range first, correct k below.
    let subnormal = x < f64::MIN_POSITIVE;
    let xs = if subnormal {
        x * 18_014_398_509_481_984.0
    } else {
        x
    }; // 2^54
    let k_bias: i64 = if subnormal { 54 } else { 0 };
    // Move the mantissa into [sqrt(2)/2, sqrt(2)) (musl's 0x3fe6a09e trick).
    let ix = (xs.to_bits() as i64).wrapping_add(0x3ff0_0000_0000_0000 - 0x3fe6_a09e_0000_0000);
    let k = (ix >> 52) - 0x3ff - k_bias;
    let m = f64::from_bits(((ix & 0x000f_ffff_ffff_ffff) + 0x3fe6_a09e_0000_0000) as u64);
    // k as a double without a conversion instruction: |k| < 2^20, so
    // 2^52 + 2^20 + k is exact and its low mantissa bits are k + 2^20.
    let dk = f64::from_bits((0x4330_0000_0010_0000_i64 + k) as u64) - 4_503_599_628_419_072.0;
    let result = ln_reduced::<FMA>(m - 1.0, dk);
    let result = if x == f64::INFINITY { x } else { result };
    let result = if x == 0.0 { f64::NEG_INFINITY } else { result };
    // Negative and NaN inputs.
    if x >= 0.0 {
        result
    } else {
        f64::NAN
    }
}

/// [`ln_with`] for u in [1, 2], bit for bit: there the exponent k is 0 or
/// 1, so the reduction is a compare and a select instead of bit
/// manipulation, and none of the special cases can occur. For
/// ln(1 + e^-|x|) in the logit losses, where the general reduction was a
/// good part of the loop. Outside [1, 2] the result is wrong (NaN stays NaN).
#[inline(always)]
pub fn ln_1_to_2_with<const FMA: bool>(u: f64) -> f64 {
    // Where ln_with's reduction moves to k = 1: mantissas from 0x6a09e
    // (just above sqrt(2)), so that m = 2^-k u is in [sqrt(2)/2, sqrt(2)).
    const K1_FROM: f64 = f64::from_bits(0x3ff6_a09e_0000_0000);
    let (m, dk) = if u >= K1_FROM {
        (0.5 * u, 1.0)
    } else {
        (u, 0.0)
    };
    ln_reduced::<FMA>(m - 1.0, dk)
}

/// fdlibm's ln(2^k m) from f = m - 1 (m in [sqrt(2)/2, sqrt(2))) and k as
/// a double.
#[inline(always)]
fn ln_reduced<const FMA: bool>(f: f64, dk: f64) -> f64 {
    let hfsq = 0.5 * f * f;
    let s = f / (2.0 + f);
    let z = s * s;
    let w = z * z;
    let t1 = w * madd::<FMA>(w, madd::<FMA>(w, LG6, LG4), LG2);
    let t2 = z * madd::<FMA>(w, madd::<FMA>(w, madd::<FMA>(w, LG7, LG5), LG3), LG1);
    let r = t2 + t1;
    s * (hfsq + r) + dk * LN2_LO - hfsq + f + dk * LN2_HI
}

/// ln(1 + x), within 2 ulp for x > -1 (the rounding of u = 1 + x is
/// corrected to first order by (x - (u - 1)) / u, as fdlibm `s_log1p.c`
/// does; without it ln_1p of small x would lose all its digits).
#[inline(always)]
pub fn ln_1p_with<const FMA: bool>(x: f64) -> f64 {
    let u = 1.0 + x;
    let correction = (x - (u - 1.0)) / u;
    let result = ln_with::<FMA>(u) + correction;
    // Tiny x (|x| < 2^-54): u == 1 and ln(u) == 0, the correction is x.
    // x = -1, infinities and NaN: the correction is NaN, ln(u) is right.
    if u.is_finite() && u != 0.0 {
        result
    } else {
        ln_with::<FMA>(u)
    }
}

/// `out[i] = ln(input[i])` for every i, a loop LLVM vectorizes.
/// Only `min(input.len(), out.len())` elements are written.
pub fn ln_slice(input: &[f64], out: &mut [f64]) {
    for (o, &x) in out.iter_mut().zip(input) {
        *o = ln(x);
    }
}

/// `out[i] = exp(input[i])` for every i, a loop LLVM vectorizes.
/// Only `min(input.len(), out.len())` elements are written.
pub fn exp_slice(input: &[f64], out: &mut [f64]) {
    for (o, &x) in out.iter_mut().zip(input) {
        *o = exp(x);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn special_values_follow_std() {
        assert_eq!(ln(0.0), f64::NEG_INFINITY);
        assert_eq!(ln(-0.0), f64::NEG_INFINITY);
        assert!(ln(-1.0).is_nan());
        assert!(ln(f64::NAN).is_nan());
        assert_eq!(ln(f64::INFINITY), f64::INFINITY);
        assert_eq!(ln(1.0), 0.0);
        assert_eq!(exp(0.0), 1.0);
        assert_eq!(exp(-1000.0), 0.0);
        assert_eq!(exp(f64::NEG_INFINITY), 0.0);
        assert_eq!(exp(1000.0), f64::INFINITY);
        assert!(exp(f64::NAN).is_nan());
        assert_eq!(ln_1p(0.0), 0.0);
        assert_eq!(ln_1p(-1.0), f64::NEG_INFINITY);
        assert_eq!(ln_1p(1e-300), 1e-300);
    }
}
