//! `core::fastmath` against std (glibc's correctly-rounded-in-practice libm)
//! over wide random ranges and the edge values the losses hit, asserting the
//! documented ulp bounds: 1 ulp for `exp` and `ln`, 2 ulp for `ln_1p`.
//! Random arguments come from proptest (uniform bit patterns and uniform
//! values in the loss ranges); a fixed sweep also reports the largest error
//! seen (`cargo test --test api fastmath::sweep -- --nocapture`).

use evald::core::fastmath::{
    exp, exp_slice, exp_with, ln, ln_1_to_2_with, ln_1p, ln_1p_with, ln_slice, ln_with,
};
use proptest::prelude::*;

/// Distance in units in the last place between two finite doubles of the
/// same sign (adjacent doubles are 1 apart); equal values (and two NaNs,
/// and equal infinities) are 0 apart.
fn ulps(a: f64, b: f64) -> u64 {
    if a == b || (a.is_nan() && b.is_nan()) {
        return 0;
    }
    if a.is_nan() || b.is_nan() || a.is_infinite() || b.is_infinite() {
        return u64::MAX;
    }
    // Map the doubles onto a monotone integer line.
    let key = |x: f64| {
        let bits = x.to_bits() as i64;
        if bits < 0 {
            i64::MIN - bits
        } else {
            bits
        }
    };
    key(a).abs_diff(key(b))
}

const EXP_ULP: u64 = 1;
const LN_ULP: u64 = 1;
const LN_1P_ULP: u64 = 2;

fn check_exp(x: f64) -> Result<(), String> {
    let want = x.exp();
    for (variant, got) in [("", exp(x)), (" (fma)", exp_with::<true>(x))] {
        let e = ulps(got, want);
        if e > EXP_ULP {
            return Err(format!(
                "exp({x:e}){variant} = {got:e}, std {want:e}: {e} ulp"
            ));
        }
    }
    Ok(())
}

fn check_ln(x: f64) -> Result<(), String> {
    let want = x.ln();
    for (variant, got) in [("", ln(x)), (" (fma)", ln_with::<true>(x))] {
        let e = ulps(got, want);
        if e > LN_ULP {
            return Err(format!(
                "ln({x:e}){variant} = {got:e}, std {want:e}: {e} ulp"
            ));
        }
    }
    Ok(())
}

fn check_ln_1p(x: f64) -> Result<(), String> {
    let want = x.ln_1p();
    for (variant, got) in [("", ln_1p(x)), (" (fma)", ln_1p_with::<true>(x))] {
        let e = ulps(got, want);
        if e > LN_1P_ULP {
            return Err(format!(
                "ln_1p({x:e}){variant} = {got:e}, std {want:e}: {e} ulp"
            ));
        }
    }
    Ok(())
}

#[test]
fn edge_values_match_std_within_the_bound() {
    let min_sub = f64::from_bits(1);
    let edges = [
        0.0,
        -0.0,
        1.0,
        -1.0,
        0.5,
        2.0,
        f64::MIN_POSITIVE,
        min_sub,
        f64::MIN_POSITIVE - min_sub,
        f64::MAX,
        f64::EPSILON,
        1.0 - f64::EPSILON / 2.0,
        1.0 + f64::EPSILON,
        std::f64::consts::E,
        std::f64::consts::SQRT_2,
        std::f64::consts::FRAC_1_SQRT_2,
        std::f64::consts::LN_2,
        // BCE's log floor: ln p = -100 at p = e^-100.
        (-100.0f64).exp(),
        -100.0,
        1e-12,
        1e-300,
        -1e-300,
        709.78,
        709.782712893384,
        709.79,
        -708.39,
        -709.0,
        -730.0,
        -744.44,
        -745.13,
        -745.14,
        -1000.0,
        1000.0,
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::NAN,
    ];
    let mut failures = Vec::new();
    for x in edges {
        for check in [check_exp, check_ln, check_ln_1p] {
            if let Err(e) = check(x) {
                failures.push(e);
            }
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

/// Subnormal results of exp: within one unit of the smallest subnormal of
/// std (the two-step scaling rounds once, from a < 1 ulp value).
#[test]
fn exp_subnormal_results_are_gradual() {
    let mut x: f64 = -745.13;
    while x < -708.4 {
        let want = x.exp();
        for got in [exp(x), exp_with::<true>(x)] {
            assert!(ulps(got, want) <= 1, "exp({x}) = {got:e}, std {want:e}");
        }
        x += 0.0137;
    }
}

/// A deterministic sweep of 2 million arguments per function, reporting the
/// largest error it saw and failing above the bound.
#[test]
fn sweep_reports_the_largest_error() {
    let mut rng = evald::core::rng::SplitMix64::new(0x9e37_79b9_7f4a_7c15);
    let mut next = || rng.next_f64();
    let (mut max_exp, mut max_ln, mut max_ln_1p) = (0, 0, 0);
    for _ in 0..2_000_000 {
        let u = next();
        let v = next();
        let x_exp = -745.0 + 1454.7 * u;
        let x_ln = 10f64.powf(-320.0 + 628.0 * v);
        let x_ln_1p = 10f64.powf(-20.0 + 40.0 * u) * if v < 0.5 { 1.0 } else { -0.0 }
            - if v < 0.5 { 0.0 } else { 1.0 - v };
        max_exp = max_exp.max(ulps(exp(x_exp), x_exp.exp()));
        max_exp = max_exp.max(ulps(exp_with::<true>(x_exp), x_exp.exp()));
        max_ln = max_ln.max(ulps(ln(x_ln), x_ln.ln()));
        max_ln = max_ln.max(ulps(ln_with::<true>(x_ln), x_ln.ln()));
        // x in (-1, 0] from the second branch, positive from the first.
        let x_ln_1p = if x_ln_1p <= -1.0 { -0.5 } else { x_ln_1p };
        max_ln_1p = max_ln_1p.max(ulps(ln_1p(x_ln_1p), x_ln_1p.ln_1p()));
        max_ln_1p = max_ln_1p.max(ulps(ln_1p_with::<true>(x_ln_1p), x_ln_1p.ln_1p()));
        // The loss ranges: probabilities and e^-|x| in [0, 1].
        max_ln = max_ln.max(ulps(ln(u), u.ln()));
        max_ln_1p = max_ln_1p.max(ulps(ln_1p(u), u.ln_1p()));
        max_exp = max_exp.max(ulps(exp(-40.0 * v), (-40.0 * v).exp()));
    }
    println!("max ulp error: exp {max_exp}, ln {max_ln}, ln_1p {max_ln_1p}");
    assert!(max_exp <= EXP_ULP, "exp: {max_exp} ulp");
    assert!(max_ln <= LN_ULP, "ln: {max_ln} ulp");
    assert!(max_ln_1p <= LN_1P_ULP, "ln_1p: {max_ln_1p} ulp");
}

/// The [1, 2] logarithm is the general one, bit for bit, over its range:
/// the ends, both sides of the reduction threshold, and a dense sweep.
#[test]
fn ln_on_1_to_2_equals_ln_bit_for_bit() {
    let threshold = f64::from_bits(0x3ff6_a09e_0000_0000);
    let mut points = vec![
        1.0,
        2.0,
        1.0 + f64::EPSILON,
        2.0 - f64::EPSILON,
        threshold,
        f64::from_bits(threshold.to_bits() - 1),
        f64::from_bits(threshold.to_bits() + 1),
        std::f64::consts::SQRT_2,
    ];
    points.extend((0..=1_000_000).map(|i| 1.0 + i as f64 / 1_000_000.0));
    for u in points {
        for (got, want) in [
            (ln_1_to_2_with::<false>(u), ln_with::<false>(u)),
            (ln_1_to_2_with::<true>(u), ln_with::<true>(u)),
        ] {
            assert_eq!(got.to_bits(), want.to_bits(), "ln({u:e})");
        }
    }
    assert!(ln_1_to_2_with::<false>(f64::NAN).is_nan());
}

#[test]
fn slice_kernels_equal_the_scalar_functions() {
    let input: Vec<f64> = (0..1003).map(|i| (i as f64 - 500.0) * 0.37).collect();
    let mut out = vec![0.0; input.len()];
    ln_slice(&input, &mut out);
    for (x, o) in input.iter().zip(&out) {
        assert_eq!(o.to_bits(), ln(*x).to_bits(), "ln_slice at {x}");
    }
    exp_slice(&input, &mut out);
    for (x, o) in input.iter().zip(&out) {
        assert_eq!(o.to_bits(), exp(*x).to_bits(), "exp_slice at {x}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(20_000))]

    /// Any bit pattern: every finite, subnormal, infinite and NaN double.
    #[test]
    fn ln_of_any_double_is_within_1_ulp(bits in any::<u64>()) {
        let x = f64::from_bits(bits);
        prop_assert!(check_ln(x).is_ok(), "{}", check_ln(x).unwrap_err());
    }

    #[test]
    fn exp_over_its_whole_range_is_within_1_ulp(x in -760.0f64..720.0) {
        prop_assert!(check_exp(x).is_ok(), "{}", check_exp(x).unwrap_err());
    }

    #[test]
    fn exp_of_any_double_is_within_1_ulp(bits in any::<u64>()) {
        let x = f64::from_bits(bits);
        prop_assert!(check_exp(x).is_ok(), "{}", check_exp(x).unwrap_err());
    }

    #[test]
    fn ln_1p_above_minus_1_is_within_2_ulp(x in -1.0f64..1e6) {
        prop_assert!(check_ln_1p(x).is_ok(), "{}", check_ln_1p(x).unwrap_err());
    }

    #[test]
    fn ln_1p_of_small_arguments_is_within_2_ulp(m in -1.0f64..1.0, e in -300i32..0) {
        let x = m * 10f64.powi(e);
        prop_assert!(check_ln_1p(x).is_ok(), "{}", check_ln_1p(x).unwrap_err());
    }

    #[test]
    fn ln_1p_of_any_double_is_within_2_ulp(bits in any::<u64>()) {
        let x = f64::from_bits(bits);
        prop_assert!(check_ln_1p(x).is_ok(), "{}", check_ln_1p(x).unwrap_err());
    }
}
