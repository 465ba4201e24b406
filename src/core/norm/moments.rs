//! Mean and biased variance of groups of values, numerically stable.
//!
//! Uses the corrected two-pass algorithm (Chan, Golub & LeVeque, "Algorithms
//! for computing the sample variance", 1983, eq. 1.7):
//! `var = (Σ d² − (Σ d)² / n) / n` with `d = x − mean`. The first pass gives the
//! mean, the second the squared deviations; the correction term removes most
//! of the rounding error left in the mean. Unlike the textbook
//! `E[x²] − E[x]²`, this does not cancel catastrophically when |mean| >> std,
//! and it gives (almost exactly) 0 for a constant group.

/// Mean and biased variance (divide by n) of the values of all `runs` together.
///
/// Empty input (no values in any run) returns `(0, 0)`; the norms reject empty
/// inputs before they get here, so this only keeps the function total.
pub fn mean_var_runs<'a, I>(runs: I) -> (f64, f64)
where
    I: Iterator<Item = &'a [f64]> + Clone,
{
    let mut count = 0usize;
    let mut sum = 0.0;
    for run in runs.clone() {
        count += run.len();
        sum += run.iter().sum::<f64>();
    }
    if count == 0 {
        return (0.0, 0.0);
    }
    let n = count as f64;
    let mean = sum / n;
    let mut sum_d = 0.0;
    let mut sum_d2 = 0.0;
    for run in runs {
        for &x in run {
            let d = x - mean;
            sum_d += d;
            sum_d2 += d * d;
        }
    }
    let var = ((sum_d2 - sum_d * sum_d / n) / n).max(0.0);
    (mean, var)
}

/// Mean and biased variance of one contiguous run (see [`mean_var_runs`]).
pub fn mean_var(values: &[f64]) -> (f64, f64) {
    mean_var_runs(std::iter::once(values))
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
        let (m, v) = mean_var_runs(runs.iter().copied());
        assert_eq!((m, v), mean_var(&[1.0, 2.0, 3.0, 4.0]));
    }

    #[test]
    fn empty_input_is_zero_not_nan() {
        assert_eq!(mean_var(&[]), (0.0, 0.0));
    }
}
