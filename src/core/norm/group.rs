//! Group norm (Wu & He, 2018; `torch.nn.functional.group_norm`).

use ndarray::{ArrayD, ArrayViewD, IxDyn};

use super::affine::Resolved;
use super::moments::moments;
use super::{
    check_eps, check_input, inv_std, ncs, normalize_run, row_major, Affine, NormError, Normalized,
};

/// Group norm: the `C` channels are split into `groups` consecutive groups of
/// `C / groups`; each (sample n, group g) is normalized over its channels and
/// all spatial positions:
/// `y = (x - mean[n,g]) / sqrt(var[n,g] + eps) * gamma[c] + beta[c]`,
/// with the biased variance. `mean`/`var` have shape `[N, G]`.
///
/// Errors: input with fewer than 2 dims or a zero-length dim; `eps <= 0`;
/// `groups` 0 or not dividing C; `gamma`/`beta` not of shape `[C]`; and, as
/// PyTorch, `N * (C / G) * spatial == 1` ("more than 1 value per channel").
/// A constant group has variance 0 and maps to `beta`.
pub fn group_norm(
    input: ArrayViewD<'_, f64>,
    groups: usize,
    affine: &Affine<'_>,
    eps: f64,
) -> Result<Normalized, NormError> {
    check_input("group", input.shape(), 2)?;
    check_eps(eps)?;
    let (n, c, s) = ncs(input.shape());
    if groups == 0 || c % groups != 0 {
        return Err(NormError::Groups {
            groups,
            channels: c,
        });
    }
    let per_group = c / groups;
    // PyTorch checks group norm as a batch norm of shape [N*C/G, G, spatial...].
    if n * per_group * s == 1 {
        return Err(NormError::OneValuePerChannel {
            shape: input.shape().to_vec(),
        });
    }
    let ab = affine.resolve(&[c])?;
    normalize_groups(&input, groups, &ab, eps)
}

/// The shared work of group and instance norm on a checked input: statistics
/// per (n, group of `C / groups` channels), affine per channel.
pub(super) fn normalize_groups(
    input: &ArrayViewD<'_, f64>,
    groups: usize,
    ab: &Resolved,
    eps: f64,
) -> Result<Normalized, NormError> {
    let (n, c, s) = ncs(input.shape());
    let per_group = c / groups.max(1);
    let src = row_major(input);
    let mut out = vec![0.0; src.len()];
    let mut means = Vec::with_capacity(n * groups);
    let mut vars = Vec::with_capacity(n * groups);
    let group_len = per_group * s;
    let chunks = src
        .chunks_exact(group_len)
        .zip(out.chunks_exact_mut(group_len));
    for (i, (xs, ys)) in chunks.enumerate() {
        let m = moments(xs);
        let inv = inv_std(m.var, eps);
        let first_channel = (i % groups) * per_group;
        let runs = xs.chunks_exact(s).zip(ys.chunks_exact_mut(s));
        for (j, (xr, yr)) in runs.enumerate() {
            let ch = first_channel + j;
            let gamma = ab.gamma.get(ch).copied().unwrap_or(1.0);
            let beta = ab.beta.get(ch).copied().unwrap_or(0.0);
            normalize_run(xr, yr, &m, inv * gamma, beta);
        }
        means.push(m.mean());
        vars.push(m.var);
    }
    Ok(Normalized {
        output: ArrayD::from_shape_vec(IxDyn(input.shape()), out)?,
        mean: ArrayD::from_shape_vec(IxDyn(&[n, groups]), means)?,
        var: ArrayD::from_shape_vec(IxDyn(&[n, groups]), vars)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn two_groups_of_two_channels_normalize_separately() {
        let x = array![[[1.0, 3.0], [5.0, 7.0], [10.0, 10.0], [10.0, 30.0]]].into_dyn();
        let r = group_norm(x.view(), 2, &Affine::default(), 1e-5).unwrap();
        assert_eq!(r.mean.shape(), &[1, 2]);
        assert!((r.mean[[0, 0]] - 4.0).abs() < 1e-12);
        assert!((r.var[[0, 0]] - 5.0).abs() < 1e-12);
        assert!((r.mean[[0, 1]] - 15.0).abs() < 1e-12);
        let expected = (1.0 - 4.0) / (5.0f64 + 1e-5).sqrt();
        assert!((r.output[[0, 0, 0]] - expected).abs() < 1e-12);
    }

    #[test]
    fn groups_must_divide_the_channels() {
        let x = ArrayD::zeros(IxDyn(&[2, 3, 2]));
        let err = group_norm(x.view(), 2, &Affine::default(), 1e-5).unwrap_err();
        assert_eq!(
            err,
            NormError::Groups {
                groups: 2,
                channels: 3
            }
        );
        assert_eq!(err.param(), "groups");
    }

    #[test]
    fn a_constant_group_maps_to_beta() {
        let x = ArrayD::from_elem(IxDyn(&[1, 2, 3]), 0.7);
        let beta = array![0.5, -1.0].into_dyn();
        let affine = Affine {
            gamma: None,
            beta: Some(beta.view()),
        };
        let r = group_norm(x.view(), 1, &affine, 1e-5).unwrap();
        assert!((r.output[[0, 0, 1]] - 0.5).abs() < 1e-9);
        assert!((r.output[[0, 1, 2]] + 1.0).abs() < 1e-9);
    }
}
