//! Mean and biased variance of groups of values, numerically stable.
//!
//! Uses the corrected two-pass algorithm (Chan, Golub & LeVeque, "Algorithms
//! for computing the sample variance", 1983, eq. 1.7):
//! `var = (Σ d² − (Σ d)² / n) / n` with `d = x − mean`. The first pass gives the
//! mean, the second the squared deviations; the correction term removes most
//! of the rounding error left in the mean. Unlike the textbook
//! `E[x²] − E[x]²`, this does not cancel catastrophically when |mean| >> std,
//! and it gives (almost exactly) 0 for a constant group. The same correction
//! `Σ d / n` is the rounding error left in the first-pass mean; it is kept as a
//! separate low part ([`Moments::mean_lo`]) so `(x - hi) - lo` stays accurate
//! even when |mean| is 1e9 times the spread (one f64 cannot hold that mean to
//! the precision the normalized output needs).

/// Mean (as an unevaluated sum `hi + lo`) and biased variance of a group.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Moments {
    /// First-pass mean, `Σ x / n` rounded.
    pub mean_hi: f64,
    /// Its correction `Σ (x - mean_hi) / n`.
    pub mean_lo: f64,
    /// Biased variance (divide by n).
    pub var: f64,
}

impl Moments {
    /// The mean as one f64.
    pub fn mean(&self) -> f64 {
        self.mean_hi + self.mean_lo
    }

    /// `x - mean`, subtracting the high part first (exact when x is near it).
    #[inline]
    pub fn center(&self, x: f64) -> f64 {
        (x - self.mean_hi) - self.mean_lo
    }
}

/// Mean and biased variance (divide by n) of the values of all `runs` together.
///
/// Empty input (no values in any run) returns zeros; the norms reject empty
/// inputs before they get here, so this only keeps the function total.
pub fn moments_runs<'a, I>(runs: I) -> Moments
where
    I: Iterator<Item = &'a [f64]> + Clone,
{
    let mut count = 0usize;
    let mut sum = 0.0;
    for run in runs.clone() {
        count += run.len();
        sum += lane_sum(run);
    }
    if count == 0 {
        return Moments {
            mean_hi: 0.0,
            mean_lo: 0.0,
            var: 0.0,
        };
    }
    let n = count as f64;
    let mean = sum / n;
    let mut sum_d = 0.0;
    let mut sum_d2 = 0.0;
    for run in runs {
        let (d, d2) = lane_deviations(run, mean);
        sum_d += d;
        sum_d2 += d2;
    }
    let var = ((sum_d2 - sum_d * sum_d / n) / n).max(0.0);
    Moments {
        mean_hi: mean,
        mean_lo: sum_d / n,
        var,
    }
}

/// Independent accumulators per reduction: they break the add-latency chain
/// (so the loop vectorizes) and cut the rounding error of a long sum by
/// about the same factor, as numpy's pairwise sum does.
const LANES: usize = 8;

/// Σ x with [`LANES`] interleaved accumulators.
fn lane_sum(values: &[f64]) -> f64 {
    let mut acc = [0.0; LANES];
    let chunks = values.chunks_exact(LANES);
    let tail: f64 = chunks.remainder().iter().sum();
    for chunk in chunks {
        for (a, &x) in acc.iter_mut().zip(chunk) {
            *a += x;
        }
    }
    acc.iter().sum::<f64>() + tail
}

/// (Σ d, Σ d²) with `d = x - mean`, [`LANES`] accumulators each.
fn lane_deviations(values: &[f64], mean: f64) -> (f64, f64) {
    let mut acc = [0.0; LANES];
    let mut acc2 = [0.0; LANES];
    let chunks = values.chunks_exact(LANES);
    let (mut tail, mut tail2) = (0.0, 0.0);
    for &x in chunks.remainder() {
        let d = x - mean;
        tail += d;
        tail2 += d * d;
    }
    for chunk in chunks {
        for ((a, a2), &x) in acc.iter_mut().zip(acc2.iter_mut()).zip(chunk) {
            let d = x - mean;
            *a += d;
            *a2 += d * d;
        }
    }
    (
        acc.iter().sum::<f64>() + tail,
        acc2.iter().sum::<f64>() + tail2,
    )
}

/// Moments of one contiguous run (see [`moments_runs`]).
pub fn moments(values: &[f64]) -> Moments {
    moments_runs(std::iter::once(values))
}

/// `(mean, biased variance)` of one run, for callers that need no more.
pub fn mean_var(values: &[f64]) -> (f64, f64) {
    let m = moments(values);
    (m.mean(), m.var)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_definition_on_a_small_sample() {
        let (m, v) = mean_var(&[1.0, 2.0, 3.0, 4.0]);
        assert!((m - 2.5).abs() < 1e-15);
        assert!((v - 1.25).abs() < 1e-15);
    }

    #[test]
    fn constant_values_have_zero_variance() {
        let (m, v) = mean_var(&[0.1; 7]);
        assert!((m - 0.1).abs() < 1e-16);
        assert!(v.abs() < 1e-30, "{v}");
    }

    #[test]
    fn a_huge_offset_does_not_destroy_the_variance() {
        let xs: Vec<f64> = [1.0, 2.0, 3.0, 4.0].iter().map(|x| x + 1e9).collect();
        let (_, v) = mean_var(&xs);
        assert!((v - 1.25).abs() < 1e-6, "{v}");
    }

    #[test]
    fn runs_pool_their_values() {
        let a = [1.0, 2.0];
        let b = [3.0, 4.0];
        let runs = [&a[..], &b[..]];
        let m = moments_runs(runs.iter().copied());
        assert_eq!(m, moments(&[1.0, 2.0, 3.0, 4.0]));
    }

    #[test]
    fn lanes_and_tails_cover_every_value() {
        for len in [1, 7, 8, 9, 17, 100] {
            let xs: Vec<f64> = (0..len).map(|i| i as f64).collect();
            let n = len as f64;
            assert_eq!(lane_sum(&xs), n * (n - 1.0) / 2.0, "len {len}");
            let (m, v) = mean_var(&xs);
            assert!((m - (n - 1.0) / 2.0).abs() < 1e-12, "len {len}");
            assert!((v - (n * n - 1.0) / 12.0).abs() < 1e-9, "len {len}");
        }
    }

    #[test]
    fn empty_input_is_zero_not_nan() {
        assert_eq!(mean_var(&[]), (0.0, 0.0));
    }
}
