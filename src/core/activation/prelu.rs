//! PReLU (He et al., 2015): leaky ReLU with a learned slope.

use ndarray::{ArrayD, ArrayViewD, IxDyn};

use super::{row_major, Activated, ActivationError};

/// PReLU's output and gradients.
#[derive(Debug, Clone, PartialEq)]
pub struct PreluOutput {
    /// Output and elementwise derivative with respect to the input.
    pub activated: Activated,
    /// `∂ Σ y / ∂ weight`, one entry per weight: the sum of the inputs `x <= 0`
    /// that the weight scaled (PyTorch autograd of `prelu(x, w).sum()`).
    pub weight_gradient: Vec<f64>,
}

/// PReLU: `y = x` for x > 0, `w_c x` for x <= 0, where c is the channel (dim 1)
/// when `weight` has one entry per channel, or the one shared weight. As in
/// PyTorch, an input of fewer than 2 dims has a single channel. Derivative:
/// 1 for x > 0, `w_c` for x <= 0 (so at 0 it is the slope, as PyTorch).
///
/// Errors: `weight` with neither 1 nor C entries.
pub fn prelu(input: ArrayViewD<'_, f64>, weight: &[f64]) -> Result<PreluOutput, ActivationError> {
    let shape = input.shape();
    let channels = if shape.len() >= 2 {
        shape.get(1).copied().unwrap_or(1)
    } else {
        1
    };
    if weight.len() != 1 && weight.len() != channels {
        return Err(ActivationError::Weight {
            found: weight.len(),
            channels,
        });
    }
    let spatial: usize = shape.iter().skip(2).product();
    let src = row_major(&input);
    let mut output = vec![0.0; src.len()];
    let mut gradient = vec![0.0; src.len()];
    let mut weight_gradient = vec![0.0; weight.len()];
    let run = if shape.len() >= 2 {
        spatial.max(1)
    } else {
        src.len().max(1)
    };
    let runs = src
        .chunks(run)
        .zip(output.chunks_mut(run))
        .zip(gradient.chunks_mut(run));
    for (i, ((xr, yr), gr)) in runs.enumerate() {
        let c = if weight.len() == 1 { 0 } else { i % channels };
        let w = weight.get(c).copied().unwrap_or(0.25);
        let mut wg = 0.0;
        for ((&x, y), g) in xr.iter().zip(yr).zip(gr) {
            if x > 0.0 {
                (*y, *g) = (x, 1.0);
            } else {
                (*y, *g) = (w * x, w);
                wg += x;
            }
        }
        if let Some(acc) = weight_gradient.get_mut(c) {
            *acc += wg;
        }
    }
    Ok(PreluOutput {
        activated: Activated {
            output: ArrayD::from_shape_vec(IxDyn(shape), output)?,
            gradient: ArrayD::from_shape_vec(IxDyn(shape), gradient)?,
        },
        weight_gradient,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn per_channel_weights_and_their_gradient_match_pytorch() {
        // torch: prelu([[-1, 0, 2], [0, -2, -3]], [0.25, 0.5, 0.1]).sum().backward()
        let x = array![[-1.0, 0.0, 2.0], [0.0, -2.0, -3.0]].into_dyn();
        let r = prelu(x.view(), &[0.25, 0.5, 0.1]).unwrap();
        assert_eq!(r.weight_gradient, vec![-1.0, -2.0, -3.0]);
        assert_eq!(
            r.activated.gradient,
            array![[0.25, 0.5, 1.0], [0.25, 0.5, 0.1]].into_dyn()
        );
    }

    #[test]
    fn a_single_weight_is_shared() {
        let x = array![-4.0, 2.0].into_dyn();
        let r = prelu(x.view(), &[0.5]).unwrap();
        assert_eq!(r.activated.output, array![-2.0, 2.0].into_dyn());
        assert_eq!(r.weight_gradient, vec![-4.0]);
    }

    #[test]
    fn weight_count_must_match_the_channels() {
        let x = ArrayD::zeros(IxDyn(&[2, 3]));
        assert_eq!(
            prelu(x.view(), &[0.1, 0.2]).unwrap_err(),
            ActivationError::Weight {
                found: 2,
                channels: 3
            }
        );
    }
}
