//! Distributions and the weighted-mean standard error behind the confidence
//! intervals and tests: the normal CDF and quantile, Student's t tail, and
//! the cluster-robust standard error of a weighted mean (GAUC).
//!
//! R is the reference (`pnorm`, `qnorm`, `pt`): the tests compare against
//! values printed by R 4 and the fixtures in `tests/fixtures/` come from R's
//! pROC, which calls these functions.

/// `P(|Z| >= |z|)` for a standard normal `Z`: `2 * pnorm(-|z|)` in R.
///
/// Computed as `erfc(|z| / sqrt 2)`, which keeps full relative precision far
/// into the tail (a p-value of 1e-300 is not rounded to 0 early).
pub fn normal_two_sided_p(z: f64) -> f64 {
    libm::erfc(z.abs() / std::f64::consts::SQRT_2)
}

/// Standard normal CDF, `pnorm(x)`.
pub fn normal_cdf(x: f64) -> f64 {
    0.5 * libm::erfc(-x / std::f64::consts::SQRT_2)
}

/// Standard normal quantile, `qnorm(p)`, for `p` in (0, 1); `NaN` outside.
///
/// Acklam's rational approximation (relative error below 1.15e-9) refined by
/// one Halley step on `normal_cdf`, which brings it to a few ulps (Acklam,
/// "An algorithm for computing the inverse normal cumulative distribution
/// function", 2003; the refinement is the one he gives).
pub fn normal_quantile(p: f64) -> f64 {
    if !(p > 0.0 && p < 1.0) {
        return f64::NAN;
    }
    const A: [f64; 6] = [
        -3.969_683_028_665_376e1,
        2.209_460_984_245_205e2,
        -2.759_285_104_469_687e2,
        1.383_577_518_672_69e2,
        -3.066_479_806_614_716e1,
        2.506_628_277_459_239,
    ];
    const B: [f64; 5] = [
        -5.447_609_879_822_406e1,
        1.615_858_368_580_409e2,
        -1.556_989_798_598_866e2,
        6.680_131_188_771_972e1,
        -1.328_068_155_288_572e1,
    ];
    const C: [f64; 6] = [
        -7.784_894_002_430_293e-3,
        -3.223_964_580_411_365e-1,
        -2.400_758_277_161_838,
        -2.549_732_539_343_734,
        4.374_664_141_464_968,
        2.938_163_982_698_783,
    ];
    const D: [f64; 4] = [
        7.784_695_709_041_462e-3,
        3.224_671_290_700_398e-1,
        2.445_134_137_142_996,
        3.754_408_661_907_416,
    ];
    const LOW: f64 = 0.02425;
    let tail = |q: f64| {
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    let x = if p < LOW {
        tail((-2.0 * p.ln()).sqrt())
    } else if p <= 1.0 - LOW {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    } else {
        -tail((-2.0 * (1.0 - p).ln()).sqrt())
    };
    // Halley step: e = CDF(x) - p, u = e / pdf(x).
    let e = if p < 0.5 {
        normal_cdf(x) - p
    } else {
        // The same error written with upper tails (1 - p is exact here), so
        // it does not cancel near 1.
        (1.0 - p) - 0.5 * libm::erfc(x / std::f64::consts::SQRT_2)
    };
    let u = e * (2.0 * std::f64::consts::PI).sqrt() * (x * x / 2.0).exp();
    x - u / (1.0 + x * u / 2.0)
}

/// The two-sided normal critical value of a confidence level:
/// `z_(1+level)/2`, e.g. 1.959964 for 0.95. `level` must be in (0, 1).
pub fn z_critical(level: f64) -> f64 {
    // (1 + level) / 2 written as 1 - (1 - level) / 2 = upper tail (1-level)/2:
    // qnorm of the small tail probability keeps its precision.
    -normal_quantile((1.0 - level) / 2.0)
}

/// `P(|T| >= |t|)` for Student's t with `df > 0` degrees of freedom
/// (non-integer allowed): `2 * pt(-|t|, df)` in R.
///
/// The tail is the regularized incomplete beta `I_x(df/2, 1/2)` with
/// `x = df / (df + t^2)`; `1 - x` is passed as `t^2 / (df + t^2)` so a small
/// `t` does not cancel. `NaN` for a non-positive or non-finite `df`.
pub fn student_t_two_sided_p(t: f64, df: f64) -> f64 {
    if df.is_nan() || df <= 0.0 || df.is_infinite() || t.is_nan() {
        return f64::NAN;
    }
    if t.is_infinite() {
        return 0.0;
    }
    let t2 = t * t;
    let denom = df + t2;
    regularized_beta(df / 2.0, 0.5, df / denom, t2 / denom)
}

/// The regularized incomplete beta function `I_x(a, b)`, given `x` and
/// `y = 1 - x` separately (the caller often knows `y` more precisely).
///
/// Continued fraction of Numerical Recipes (3rd ed., §6.4, `betacf`) by the
/// modified Lentz method, on `I_x(a, b)` when `x < (a + 1) / (a + b + 2)`
/// (where it converges fast) and on `1 - I_y(b, a)` otherwise. The prefactor
/// `x^a y^b / (a B(a, b))` goes through `lgamma`, whose absolute error grows
/// with `a + b`: the relative error is about `1e-16 * lgamma(a + b)`, below
/// 1e-11 for `df` up to 10^5.
fn regularized_beta(a: f64, b: f64, x: f64, y: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if y <= 0.0 {
        return 1.0;
    }
    let ln_front =
        libm::lgamma(a + b) - libm::lgamma(a) - libm::lgamma(b) + a * x.ln() + b * y.ln();
    let front = ln_front.exp();
    if x < (a + 1.0) / (a + b + 2.0) {
        front * beta_continued_fraction(a, b, x) / a
    } else {
        1.0 - front * beta_continued_fraction(b, a, y) / b
    }
}

/// Numerical Recipes' `betacf`: the continued fraction of `I_x(a, b)`.
fn beta_continued_fraction(a: f64, b: f64, x: f64) -> f64 {
    const TINY: f64 = 1e-300;
    const EPS: f64 = 1e-16;
    const MAX_ITER: usize = 10_000;
    let (qab, qap, qam) = (a + b, a + 1.0, a - 1.0);
    let mut c = 1.0;
    let mut d = 1.0 - qab * x / qap;
    if d.abs() < TINY {
        d = TINY;
    }
    d = 1.0 / d;
    let mut h = d;
    for m in 1..=MAX_ITER {
        let m = m as f64;
        let m2 = 2.0 * m;
        let aa = m * (b - m) * x / ((qam + m2) * (a + m2));
        d = 1.0 + aa * d;
        if d.abs() < TINY {
            d = TINY;
        }
        c = 1.0 + aa / c;
        if c.abs() < TINY {
            c = TINY;
        }
        d = 1.0 / d;
        h *= d * c;
        let aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2));
        d = 1.0 + aa * d;
        if d.abs() < TINY {
            d = TINY;
        }
        c = 1.0 + aa / c;
        if c.abs() < TINY {
            c = TINY;
        }
        d = 1.0 / d;
        let del = d * c;
        h *= del;
        if (del - 1.0).abs() < EPS {
            break;
        }
    }
    h
}

/// The sums behind a weighted mean of per-cluster values `a_u` with weights
/// `w_u` and its cluster-robust standard error: mergeable by addition, so a
/// stream can keep them per bucket of users and `POST /metrics` builds the
/// same sums user by user.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct MeanMoments {
    /// Number of clusters (contributing users), `U`.
    pub n: usize,
    /// `Σ w`.
    pub w: f64,
    /// `Σ w·a`.
    pub wa: f64,
    /// `Σ w²`.
    pub w2: f64,
    /// `Σ w²·a`.
    pub w2a: f64,
    /// `Σ w²·a²`.
    pub w2a2: f64,
}

impl MeanMoments {
    /// Adds one cluster with value `a` and weight `w`.
    pub fn add(&mut self, w: f64, a: f64) {
        let w2 = w * w;
        self.n += 1;
        self.w += w;
        self.wa += w * a;
        self.w2 += w2;
        self.w2a += w2 * a;
        self.w2a2 += w2 * a * a;
    }

    /// Adds every cluster of `other`.
    pub fn merge(&mut self, other: &MeanMoments) {
        self.n += other.n;
        self.w += other.w;
        self.wa += other.wa;
        self.w2 += other.w2;
        self.w2a += other.w2a;
        self.w2a2 += other.w2a2;
    }

    /// `Σ w·a / Σ w`; `None` when `Σ w` is 0.
    pub fn mean(&self) -> Option<f64> {
        (self.w > 0.0).then(|| self.wa / self.w)
    }
}

/// The cluster-robust standard error of the weighted mean `m = Σ w a / W`:
///
/// `sqrt(U / (U − 1) · Σ w² (a − m)²) / W`,
///
/// with `Σ w² (a − m)² = Σ w²a² − 2m Σ w²a + m² Σ w²` (so it is a function
/// of the mergeable [`MeanMoments`]; a rounding below 0 is clamped to 0).
/// `None` when `U < 2` or `W = 0`. This is THE formula for GAUC: one-shot
/// and streams both call it.
///
/// Conditioning: the expanded form loses about `log10(Σ w²a² / Σ w²(a − m)²)`
/// digits to cancellation, a digit or two when the users' AUCs spread by a
/// few hundredths or more (the usual case); it is the price of sums that a
/// store can merge and subtract bucket by bucket.
pub fn gauc_std_error(sums: &MeanMoments) -> Option<f64> {
    if sums.n < 2 {
        return None;
    }
    let m = sums.mean()?;
    let spread = (sums.w2a2 - 2.0 * m * sums.w2a + m * m * sums.w2).max(0.0);
    let u = sums.n as f64;
    let se = (u / (u - 1.0) * spread).sqrt() / sums.w;
    se.is_finite().then_some(se)
}

// R's `%.17g` digits are kept verbatim, so a reader can compare them.
#[allow(clippy::excessive_precision)]
#[cfg(test)]
mod tests {
    use super::*;

    fn close(got: f64, want: f64, rel: f64) -> bool {
        (got - want).abs() <= rel * want.abs().max(f64::MIN_POSITIVE)
    }

    #[test]
    fn normal_quantile_matches_r_qnorm() {
        // R 4.2.2: sprintf("%.17g", qnorm(p))
        for (p, want) in [
            (0.975, 1.9599639845400536),
            (0.995, 2.5758293035488999),
            (0.95, 1.6448536269514715),
            (0.5, 0.0),
            (0.6, 0.25334710313579978),
            (0.02, -2.0537489106318225),
            (1e-10, -6.3613409024040557),
            (1e-300, -37.047096299361201),
            (0.999999, 4.7534243088170891),
        ] {
            let got = normal_quantile(p);
            assert!(
                (got - want).abs() <= 1e-14 * want.abs().max(1.0),
                "qnorm({p}) = {want}, got {got}"
            );
        }
        assert!(normal_quantile(0.0).is_nan());
        assert!(normal_quantile(1.0).is_nan());
        assert!((z_critical(0.95) - 1.9599639845400536).abs() < 1e-14);
    }

    #[test]
    fn normal_tail_matches_r_pnorm() {
        // R 4.2.2: sprintf("%.17g", 2 * pnorm(-abs(z)))
        for (z, want) in [
            (1.959963984540054, 0.050000000000000024),
            (0.0, 1.0),
            (-3.0, 0.0026997960632601892),
            (10.0, 1.5239706048321054e-23),
        ] {
            assert!(close(normal_two_sided_p(z), want, 1e-13), "z {z}");
        }
    }

    #[test]
    fn student_t_tail_matches_r_pt() {
        // R 4.2.2: sprintf("%.17g", 2 * pt(-abs(t), df))
        for (t, df, want) in [
            (2.0, 10.0, 0.073388034770740393),
            (0.5, 3.5, 0.64685043932255104),
            (-1.2, 57.25, 0.23508169742802595),
            (4.0, 1.0, 0.15595826075473865),
            (8.0, 300.0, 2.7350153901538275e-14),
            (0.0, 5.0, 1.0),
            (1e-8, 20.0, 0.99999999212022828),
        ] {
            let got = student_t_two_sided_p(t, df);
            assert!(close(got, want, 1e-12), "t {t} df {df}: {got} vs {want}");
        }
        assert!(student_t_two_sided_p(1.0, 0.0).is_nan());
    }

    #[test]
    fn gauc_std_error_is_the_direct_formula() {
        let clusters = [(3.0, 0.8), (1.0, 0.55), (2.5, 0.9), (4.0, 0.3)];
        let mut m = MeanMoments::default();
        for (w, a) in clusters {
            m.add(w, a);
        }
        let total: f64 = clusters.iter().map(|c| c.0).sum();
        let mean = clusters.iter().map(|c| c.0 * c.1).sum::<f64>() / total;
        let spread: f64 = clusters
            .iter()
            .map(|(w, a)| w * w * (a - mean).powi(2))
            .sum();
        let want = (4.0 / 3.0 * spread).sqrt() / total;
        let got = gauc_std_error(&m).unwrap();
        assert!((got - want).abs() < 1e-15, "{got} vs {want}");
        let mut one = MeanMoments::default();
        one.add(1.0, 0.5);
        assert_eq!(gauc_std_error(&one), None);
    }
}
