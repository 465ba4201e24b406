//! Softmax and log-softmax along one dim, with their vector-Jacobian products.

use ndarray::{ArrayD, ArrayViewD, IxDyn};

use super::{grad_output_or_ones, row_major, Activated, ActivationError};

/// Resolves a PyTorch-style `dim` (negative counts from the end) for an input
/// of `ndim` dims. A 0-d input behaves as one of shape `[1]`, as in PyTorch.
///
/// Errors: `dim` outside `-max(ndim,1) ..= max(ndim,1) - 1`.
pub fn resolve_dim(dim: i64, ndim: usize) -> Result<usize, ActivationError> {
    let range = ndim.max(1);
    let r = i64::try_from(range).unwrap_or(i64::MAX);
    let resolved = if dim < 0 { dim + r } else { dim };
    if (0..r).contains(&resolved) {
        usize::try_from(resolved).map_err(|_| ActivationError::Dim { dim, ndim, range })
    } else {
        Err(ActivationError::Dim { dim, ndim, range })
    }
}

/// Softmax along `dim`: `y_i = e^{x_i - m} / Σ_j e^{x_j - m}`, `m = max_j x_j`
/// (subtracting the max makes it overflow-free and does not change y).
/// Gradient: the VJP `g_i' = y_i (g_i - Σ_j g_j y_j)` with `grad_output` g
/// (default ones, which gives 0 up to rounding: softmax sums to 1).
///
/// Errors: bad `dim`; `grad_output` not shaped like the input.
pub fn softmax(
    input: ArrayViewD<'_, f64>,
    dim: i64,
    grad_output: Option<ArrayViewD<'_, f64>>,
) -> Result<Activated, ActivationError> {
    along(input, dim, grad_output, softmax_row)
}

/// Log-softmax along `dim`: `y_i = x_i - m - ln Σ_j e^{x_j - m}`, computed in
/// log space so it never takes `ln 0`. Gradient: the VJP
/// `g_i' = g_i - e^{y_i} Σ_j g_j` (default g = ones).
///
/// Errors: bad `dim`; `grad_output` not shaped like the input.
pub fn log_softmax(
    input: ArrayViewD<'_, f64>,
    dim: i64,
    grad_output: Option<ArrayViewD<'_, f64>>,
) -> Result<Activated, ActivationError> {
    along(input, dim, grad_output, log_softmax_row)
}

/// One lane: input, upstream gradient, output, input gradient.
type RowFn = fn(&[f64], &[f64], &mut [f64], &mut [f64]);

/// Runs `row_fn` on every 1-d lane along `dim`. The dim is swapped to the
/// end first (one copy when it is not already last) so every lane is a
/// contiguous row: strided lanes would defeat the cache and vectorization.
fn along(
    input: ArrayViewD<'_, f64>,
    dim: i64,
    grad_output: Option<ArrayViewD<'_, f64>>,
    row_fn: RowFn,
) -> Result<Activated, ActivationError> {
    let axis = resolve_dim(dim, input.ndim())?;
    let shape = input.shape().to_vec();
    let g_flat = grad_output_or_ones(grad_output.as_ref(), &shape)?;
    // A 0-d input is one lane of length 1.
    let work_shape = if shape.is_empty() {
        vec![1]
    } else {
        shape.clone()
    };
    let last = work_shape.len() - 1;
    let mut x = if shape.is_empty() {
        input.into_shape_with_order(IxDyn(&work_shape))?
    } else {
        input
    };
    let mut g = ArrayViewD::from_shape(IxDyn(&work_shape), &g_flat)?;
    x.swap_axes(axis, last);
    g.swap_axes(axis, last);
    let swapped_shape = x.shape().to_vec();
    let (x_std, g_std) = (x.as_standard_layout(), g.as_standard_layout());
    let (x_view, g_view) = (x_std.view(), g_std.view());
    let (xs, gs) = (row_major(&x_view), row_major(&g_view));
    let mut y = vec![0.0; xs.len()];
    let mut dx = vec![0.0; xs.len()];
    let lane = work_shape.get(axis).copied().unwrap_or(1);
    if lane > 0 {
        let rows = xs.chunks_exact(lane).zip(gs.chunks_exact(lane));
        let outs = y.chunks_exact_mut(lane).zip(dx.chunks_exact_mut(lane));
        for ((xr, gr), (yr, dr)) in rows.zip(outs) {
            row_fn(xr, gr, yr, dr);
        }
    }
    let restore = |v: Vec<f64>| -> Result<ArrayD<f64>, ActivationError> {
        let mut a = ArrayD::from_shape_vec(IxDyn(&swapped_shape), v)?;
        a.swap_axes(axis, last);
        let a = if axis == last {
            a
        } else {
            a.as_standard_layout().into_owned()
        };
        Ok(a.into_shape_with_order(IxDyn(&shape))?)
    };
    Ok(Activated {
        output: restore(y)?,
        gradient: restore(dx)?,
    })
}

fn row_max(x: &[f64]) -> f64 {
    x.iter().copied().fold(f64::NEG_INFINITY, f64::max)
}

fn softmax_row(x: &[f64], g: &[f64], y: &mut [f64], dx: &mut [f64]) {
    let m = row_max(x);
    let mut sum = 0.0;
    for (y, &x) in y.iter_mut().zip(x) {
        *y = (x - m).exp();
        sum += *y;
    }
    let inv = 1.0 / sum;
    y.iter_mut().for_each(|v| *v *= inv);
    let dot: f64 = y.iter().zip(g).map(|(a, b)| a * b).sum();
    for ((d, &y), &g) in dx.iter_mut().zip(y.iter()).zip(g) {
        *d = y * (g - dot);
    }
}

fn log_softmax_row(x: &[f64], g: &[f64], y: &mut [f64], dx: &mut [f64]) {
    let m = row_max(x);
    let log_sum = x.iter().map(|&v| (v - m).exp()).sum::<f64>().ln();
    for (y, &x) in y.iter_mut().zip(x) {
        *y = x - m - log_sum;
    }
    let g_sum: f64 = g.iter().sum();
    for ((d, &y), &g) in dx.iter_mut().zip(y.iter()).zip(g) {
        *d = g - y.exp() * g_sum;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn negative_dims_count_from_the_end() {
        assert_eq!(resolve_dim(-1, 3).unwrap(), 2);
        assert_eq!(resolve_dim(-3, 3).unwrap(), 0);
        assert!(resolve_dim(3, 3).is_err());
        assert!(resolve_dim(-4, 3).is_err());
        assert_eq!(resolve_dim(-1, 0).unwrap(), 0);
    }

    #[test]
    fn softmax_rows_sum_to_one_even_for_huge_logits() {
        let x = array![[1000.0, 1000.0], [-1000.0, 0.0]].into_dyn();
        let r = softmax(x.view(), 1, None).unwrap();
        assert_eq!(r.output[[0, 0]], 0.5);
        assert_eq!(r.output[[1, 1]], 1.0);
        assert!(r.gradient.iter().all(|g| g.abs() < 1e-15));
    }

    #[test]
    fn log_softmax_is_finite_where_softmax_underflows() {
        let x = array![-1000.0, 0.0].into_dyn();
        let r = log_softmax(x.view(), 0, None).unwrap();
        assert_eq!(r.output[[0]], -1000.0);
    }

    #[test]
    fn any_dim_and_layout_agree_with_the_last_dim() {
        let x = array![[1.0, 2.0, 3.0], [0.5, -1.0, 4.0]];
        let g = array![[1.0, 0.0, -2.0], [0.3, 0.7, 0.1]];
        let rows = softmax(x.view().into_dyn(), -1, Some(g.view().into_dyn())).unwrap();
        // The transposed view is not in standard layout; softmax over its dim 0.
        let cols = softmax(x.t().into_dyn(), 0, Some(g.t().into_dyn())).unwrap();
        assert_eq!(cols.output.shape(), &[3, 2]);
        for i in 0..2 {
            for j in 0..3 {
                assert!((rows.output[[i, j]] - cols.output[[j, i]]).abs() < 1e-15);
                assert!((rows.gradient[[i, j]] - cols.gradient[[j, i]]).abs() < 1e-15);
            }
        }
    }

    #[test]
    fn a_scalar_is_one_lane_of_one() {
        let x = ndarray::arr0(3.0).into_dyn();
        let r = softmax(x.view(), -1, None).unwrap();
        assert_eq!(r.output.ndim(), 0);
        assert_eq!(r.output.iter().next(), Some(&1.0));
    }
}
