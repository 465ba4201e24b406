//! Softmax and log-softmax along one dim, with their vector-Jacobian products.

use ndarray::{ArrayD, ArrayView1, ArrayViewD, ArrayViewMut1, Axis, IxDyn, Zip};

use super::{grad_output_or_ones, Activated, ActivationError};

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
    along(input, dim, grad_output, softmax_lane)
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
    along(input, dim, grad_output, log_softmax_lane)
}

type Lane<'a> = ArrayView1<'a, f64>;
type LaneMut<'a> = ArrayViewMut1<'a, f64>;

/// Runs `lane_fn` on every 1-d lane along `dim`.
fn along(
    input: ArrayViewD<'_, f64>,
    dim: i64,
    grad_output: Option<ArrayViewD<'_, f64>>,
    lane_fn: fn(Lane<'_>, Lane<'_>, LaneMut<'_>, LaneMut<'_>),
) -> Result<Activated, ActivationError> {
    let axis = Axis(resolve_dim(dim, input.ndim())?);
    let shape = input.shape().to_vec();
    let g_flat = grad_output_or_ones(grad_output.as_ref(), &shape)?;
    // A 0-d input is one lane of length 1.
    let work_shape = if shape.is_empty() {
        vec![1]
    } else {
        shape.clone()
    };
    let x = input.to_shape(IxDyn(&work_shape))?;
    let g = ArrayViewD::from_shape(IxDyn(&work_shape), &g_flat)?;
    let mut output = ArrayD::zeros(IxDyn(&work_shape));
    let mut gradient = ArrayD::zeros(IxDyn(&work_shape));
    Zip::from(x.lanes(axis))
        .and(g.lanes(axis))
        .and(output.lanes_mut(axis))
        .and(gradient.lanes_mut(axis))
        .for_each(lane_fn);
    Ok(Activated {
        output: output.into_shape_with_order(IxDyn(&shape))?,
        gradient: gradient.into_shape_with_order(IxDyn(&shape))?,
    })
}

fn lane_max(x: &Lane<'_>) -> f64 {
    x.iter().copied().fold(f64::NEG_INFINITY, f64::max)
}

fn softmax_lane(x: Lane<'_>, g: Lane<'_>, mut y: LaneMut<'_>, mut dx: LaneMut<'_>) {
    let m = lane_max(&x);
    let mut sum = 0.0;
    Zip::from(&mut y).and(&x).for_each(|y, &x| {
        *y = (x - m).exp();
        sum += *y;
    });
    y.mapv_inplace(|v| v / sum);
    let dot: f64 = y.iter().zip(g.iter()).map(|(a, b)| a * b).sum();
    Zip::from(&mut dx)
        .and(&y)
        .and(&g)
        .for_each(|d, &y, &g| *d = y * (g - dot));
}

fn log_softmax_lane(x: Lane<'_>, g: Lane<'_>, mut y: LaneMut<'_>, mut dx: LaneMut<'_>) {
    let m = lane_max(&x);
    let log_sum = x.iter().map(|&v| (v - m).exp()).sum::<f64>().ln();
    Zip::from(&mut y)
        .and(&x)
        .for_each(|y, &x| *y = x - m - log_sum);
    let g_sum = g.sum();
    Zip::from(&mut dx)
        .and(&y)
        .and(&g)
        .for_each(|d, &y, &g| *d = g - y.exp() * g_sum);
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
    fn a_scalar_is_one_lane_of_one() {
        let x = ndarray::arr0(3.0).into_dyn();
        let r = softmax(x.view(), -1, None).unwrap();
        assert_eq!(r.output.ndim(), 0);
        assert_eq!(r.output.iter().next(), Some(&1.0));
    }
}
