//! Maxout (Goodfellow et al., 2013) over groups of channels.

use ndarray::{ArrayD, ArrayViewD, IxDyn};

use super::{grad_output_or_ones, row_major, Activated, ActivationError};

/// Maxout with `pieces` along the channel dim 1: input `N x C x rest...`,
/// output `N x C/pieces x rest...`, where output channel j is the elementwise
/// max of input channels `j*pieces .. (j+1)*pieces` (the same grouping as
/// `x.view(N, C // pieces, pieces, *rest).max(dim=2)` in PyTorch).
///
/// Gradient (input shape): the VJP routes `grad_output` to the winning piece
/// and gives 0 to the others; on ties the first (lowest) piece wins.
///
/// Errors: fewer than 2 dims; `pieces` 0 or not dividing C; `grad_output` not
/// shaped like the output.
pub fn maxout(
    input: ArrayViewD<'_, f64>,
    pieces: usize,
    grad_output: Option<ArrayViewD<'_, f64>>,
) -> Result<Activated, ActivationError> {
    let shape = input.shape();
    if shape.len() < 2 {
        return Err(ActivationError::Rank {
            name: "maxout",
            found: shape.len(),
            needed: 2,
        });
    }
    let channels = shape.get(1).copied().unwrap_or(0);
    if pieces == 0 || channels % pieces != 0 {
        return Err(ActivationError::Pieces { pieces, channels });
    }
    let spatial: usize = shape.iter().skip(2).product();
    let mut out_shape = shape.to_vec();
    if let Some(c) = out_shape.get_mut(1) {
        *c = channels / pieces;
    }
    let g = grad_output_or_ones(grad_output.as_ref(), &out_shape)?;
    let src = row_major(&input);
    let mut output = vec![0.0; g.len()];
    let mut gradient = vec![0.0; src.len()];
    let mut winner = vec![0usize; spatial];
    if spatial > 0 {
        let blocks = src
            .chunks_exact(pieces * spatial)
            .zip(gradient.chunks_exact_mut(pieces * spatial))
            .zip(
                output
                    .chunks_exact_mut(spatial)
                    .zip(g.chunks_exact(spatial)),
            );
        for ((xb, db), (yb, gb)) in blocks {
            max_block(xb, yb, &mut winner, spatial);
            for (piece, dr) in db.chunks_exact_mut(spatial).enumerate() {
                for ((d, &w), &gv) in dr.iter_mut().zip(&winner).zip(gb) {
                    *d = if w == piece { gv } else { 0.0 };
                }
            }
        }
    }
    Ok(Activated {
        output: ArrayD::from_shape_vec(IxDyn(&out_shape), output)?,
        gradient: ArrayD::from_shape_vec(IxDyn(shape), gradient)?,
    })
}

/// Elementwise max over the pieces of one block (pieces runs of `spatial`
/// values), recording the first winning piece of each position.
fn max_block(xb: &[f64], yb: &mut [f64], winner: &mut [usize], spatial: usize) {
    for (piece, xr) in xb.chunks_exact(spatial).enumerate() {
        for ((y, w), &x) in yb.iter_mut().zip(winner.iter_mut()).zip(xr) {
            if piece == 0 || x > *y {
                *y = x;
                *w = piece;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn takes_the_max_of_consecutive_channel_groups() {
        let x = array![[[1.0, 5.0], [3.0, 2.0], [0.0, 0.0], [-1.0, 7.0]]].into_dyn();
        let r = maxout(x.view(), 2, None).unwrap();
        assert_eq!(r.output, array![[[3.0, 5.0], [0.0, 7.0]]].into_dyn());
        let expected = array![[[0.0, 1.0], [1.0, 0.0], [1.0, 0.0], [0.0, 1.0]]].into_dyn();
        assert_eq!(r.gradient, expected);
    }

    #[test]
    fn ties_go_to_the_first_piece() {
        let x = array![[2.0, 2.0]].into_dyn();
        let r = maxout(x.view(), 2, None).unwrap();
        assert_eq!(r.gradient, array![[1.0, 0.0]].into_dyn());
    }

    #[test]
    fn pieces_must_divide_the_channels() {
        let x = ArrayD::zeros(IxDyn(&[1, 3]));
        assert_eq!(
            maxout(x.view(), 2, None).unwrap_err(),
            ActivationError::Pieces {
                pieces: 2,
                channels: 3
            }
        );
    }
}
