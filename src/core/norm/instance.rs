//! Instance norm (Ulyanov et al., 2016; `torch.nn.functional.instance_norm`
//! with batch statistics, i.e. `use_input_stats=True`).

use ndarray::ArrayViewD;

use super::group::normalize_groups;
use super::{check_eps, check_input, ncs, Affine, NormError, Normalized};

/// Instance norm: each (sample n, channel c) is normalized over its spatial
/// positions: `y = (x - mean[n,c]) / sqrt(var[n,c] + eps) * gamma[c] + beta[c]`,
/// biased variance; `mean`/`var` have shape `[N, C]`. It is group norm with one
/// channel per group.
///
/// Errors: fewer than 2 dims or a zero-length dim; `eps <= 0`; `gamma`/`beta`
/// not of shape `[C]`; and, as PyTorch, a single spatial element (each
/// instance would be one value, so its variance says nothing).
pub fn instance_norm(
    input: ArrayViewD<'_, f64>,
    affine: &Affine<'_>,
    eps: f64,
) -> Result<Normalized, NormError> {
    check_input("instance", input.shape(), 2)?;
    check_eps(eps)?;
    let (_, c, s) = ncs(input.shape());
    if s == 1 {
        return Err(NormError::OneSpatialElement {
            shape: input.shape().to_vec(),
        });
    }
    let ab = affine.resolve(&[c])?;
    normalize_groups(&input, c, &ab, eps)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{array, ArrayD, IxDyn};

    #[test]
    fn each_sample_and_channel_gets_its_own_statistics() {
        let x = array![[[1.0, 3.0], [10.0, 30.0]], [[0.0, 0.0], [2.0, 4.0]]].into_dyn();
        let r = instance_norm(x.view(), &Affine::default(), 1e-5).unwrap();
        assert_eq!(r.mean.shape(), &[2, 2]);
        assert_eq!(r.mean[[0, 1]], 20.0);
        assert_eq!(r.var[[0, 1]], 100.0);
        assert_eq!(r.var[[1, 0]], 0.0);
        assert_eq!(r.output[[1, 0, 0]], 0.0);
    }

    #[test]
    fn one_spatial_element_is_refused_as_in_pytorch() {
        let x = ArrayD::zeros(IxDyn(&[4, 3, 1]));
        let err = instance_norm(x.view(), &Affine::default(), 1e-5).unwrap_err();
        assert!(matches!(err, NormError::OneSpatialElement { .. }));
    }
}
