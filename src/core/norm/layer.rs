//! Layer norm (Ba et al., 2016; `torch.nn.functional.layer_norm`).

use ndarray::{ArrayD, ArrayViewD, IxDyn};

use super::moments::moments;
use super::{check_eps, check_input, inv_std, row_major, Affine, NormError, Normalized};

/// Layer norm over the last `normalized_dims` dims (default: all but the
/// first, so one group per sample): for each index `i` of the leading dims,
/// `y[i, j] = (x[i, j] - mean[i]) / sqrt(var[i] + eps) * gamma[j] + beta[j]`,
/// biased variance. `gamma`/`beta` have the shape of the normalized dims;
/// `mean`/`var` the shape of the leading dims (`[]`, a scalar, when every dim
/// is normalized).
///
/// Errors: a zero-length dim; `normalized_dims` outside `1..=ndim` (with the
/// default, an input of fewer than 2 dims); `eps <= 0`; `gamma`/`beta` of
/// another shape. A group of one value has variance 0 and maps to `beta`,
/// as in PyTorch (which does not refuse it).
pub fn layer_norm(
    input: ArrayViewD<'_, f64>,
    normalized_dims: Option<usize>,
    affine: &Affine<'_>,
    eps: f64,
) -> Result<Normalized, NormError> {
    let ndim = input.ndim();
    let k = match normalized_dims {
        Some(k) => k,
        None => {
            check_input("layer", input.shape(), 2)?;
            ndim - 1
        }
    };
    if k == 0 || k > ndim {
        return Err(NormError::NormalizedDims { found: k, ndim });
    }
    check_input("layer", input.shape(), 1)?;
    check_eps(eps)?;
    let (lead, normalized) = input.shape().split_at(ndim - k);
    let ab = affine.resolve(normalized)?;
    let group_len: usize = normalized.iter().product();
    let src = row_major(&input);
    let mut out = vec![0.0; src.len()];
    let mut means = Vec::with_capacity(src.len() / group_len);
    let mut vars = Vec::with_capacity(src.len() / group_len);
    for (xs, ys) in src
        .chunks_exact(group_len)
        .zip(out.chunks_exact_mut(group_len))
    {
        let m = moments(xs);
        let inv = inv_std(m.var, eps);
        let params = ab.gamma.iter().zip(&ab.beta);
        for ((y, &x), (&gamma, &beta)) in ys.iter_mut().zip(xs).zip(params) {
            *y = m.center(x) * inv * gamma + beta;
        }
        means.push(m.mean());
        vars.push(m.var);
    }
    Ok(Normalized {
        output: ArrayD::from_shape_vec(IxDyn(input.shape()), out)?,
        mean: ArrayD::from_shape_vec(IxDyn(lead), means)?,
        var: ArrayD::from_shape_vec(IxDyn(lead), vars)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn default_normalizes_each_sample_over_everything_else() {
        let x = array![[[1.0, 2.0], [3.0, 4.0]], [[0.0, 0.0], [0.0, 8.0]]].into_dyn();
        let r = layer_norm(x.view(), None, &Affine::default(), 1e-5).unwrap();
        assert_eq!(r.mean.shape(), &[2]);
        assert_eq!(r.mean[[0]], 2.5);
        assert_eq!(r.var[[1]], 12.0);
    }

    #[test]
    fn last_dim_only_gives_statistics_per_row() {
        let x = array![[[1.0, 3.0], [5.0, 9.0]]].into_dyn();
        let r = layer_norm(x.view(), Some(1), &Affine::default(), 1e-5).unwrap();
        assert_eq!(r.mean.shape(), &[1, 2]);
        assert_eq!(r.mean[[0, 1]], 7.0);
        assert_eq!(r.var[[0, 1]], 4.0);
    }

    #[test]
    fn gamma_must_have_the_normalized_shape() {
        let x = ArrayD::zeros(IxDyn(&[2, 3, 4]));
        let gamma = ArrayD::ones(IxDyn(&[4]));
        let affine = Affine {
            gamma: Some(gamma.view()),
            beta: None,
        };
        let err = layer_norm(x.view(), None, &affine, 1e-5).unwrap_err();
        assert_eq!(
            err,
            NormError::ParamShape {
                param: "gamma",
                found: vec![4],
                expected: vec![3, 4]
            }
        );
        assert!(layer_norm(x.view(), Some(1), &affine, 1e-5).is_ok());
    }

    #[test]
    fn normalized_dims_out_of_range_is_an_error() {
        let x = ArrayD::zeros(IxDyn(&[2, 3]));
        for k in [0, 3] {
            let err = layer_norm(x.view(), Some(k), &Affine::default(), 1e-5).unwrap_err();
            assert_eq!(err.param(), "normalized_dims");
        }
    }
}
