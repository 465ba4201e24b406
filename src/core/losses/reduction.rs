//! How per-item losses become the answer: `mean`, `sum` or `none`, and the
//! single-pass fold the elementwise losses share.

use ndarray::ArrayD;

use super::{check_finite, shaped, LossError, LossOutput, LossValue};

/// PyTorch's `reduction` argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Reduction {
    /// Sum divided by the loss's denominator (the element count for
    /// elementwise losses; see each loss for its own rule).
    #[default]
    Mean,
    /// Plain sum.
    Sum,
    /// No reduction: one value per item; the gradient is that of the sum.
    None,
}

impl Reduction {
    /// Every reduction, in catalogue order.
    pub const ALL: [Reduction; 3] = [Reduction::Mean, Reduction::Sum, Reduction::None];

    /// The name used in requests and responses.
    pub fn name(self) -> &'static str {
        match self {
            Reduction::Mean => "mean",
            Reduction::Sum => "sum",
            Reduction::None => "none",
        }
    }

    /// Looks a name up.
    pub fn from_name(name: &str) -> Option<Reduction> {
        Reduction::ALL.into_iter().find(|r| r.name() == name)
    }
}

/// Folds per-element `(loss, d loss / d prediction)` pairs of an elementwise
/// loss over `shape` in one pass.
///
/// `mean` divides by the element count n, so the gradient is scaled by 1 / n
/// while it is written; `sum` and `none` leave it as is. Only `none` keeps the
/// per-element losses. No allocation per element: the output vectors are
/// sized once.
pub(crate) fn fold_elementwise(
    shape: &[usize],
    reduction: Reduction,
    pairs: impl Iterator<Item = (f64, f64)>,
) -> Result<LossOutput, LossError> {
    let n: usize = shape.iter().product();
    let scale = match reduction {
        Reduction::Mean => 1.0 / n as f64,
        Reduction::Sum | Reduction::None => 1.0,
    };
    // Zero-filled vectors come from calloc (pages mapped lazily, no extra
    // pass), and writing through `iter_mut().zip` has no capacity checks.
    let mut gradient = vec![0.0; n];
    let loss = if reduction == Reduction::None {
        let mut items = vec![0.0; n];
        for ((slot, item), (l, g)) in gradient.iter_mut().zip(items.iter_mut()).zip(pairs) {
            *item = l;
            *slot = g;
        }
        LossValue::PerItem(shaped("predictions", shape, items)?)
    } else {
        let mut total = 0.0;
        for (slot, (l, g)) in gradient.iter_mut().zip(pairs) {
            total += l;
            *slot = g * scale;
        }
        LossValue::Scalar(match reduction {
            Reduction::Mean => total / n as f64,
            _ => total,
        })
    };
    let output = LossOutput {
        loss,
        gradient: shaped("predictions", shape, gradient)?,
    };
    check_finite(&output)?;
    Ok(output)
}

/// Elements per chunk in [`fold_chunked`]: the loss scratch (8 KB) and the
/// chunk of gradient being written stay in L1.
const CHUNK: usize = 1024;

/// [`fold_elementwise`] for kernels written over slices, so that LLVM can
/// vectorize them (a per-element closure feeding a running sum cannot be:
/// the float sum is a serial dependency that blocks the whole loop).
///
/// `kernel(start, loss, gradient)` fills `loss[i]` and `gradient[i]` with the
/// loss and derivative of element `start + i`, for a chunk of at most
/// [`CHUNK`] elements. The sum then runs over the chunk in element order and
/// `mean` scales the gradient afterwards, so the results are bit for bit
/// those `fold_elementwise` gives for the same per-element values.
pub(crate) fn fold_chunked(
    shape: &[usize],
    reduction: Reduction,
    mut kernel: impl FnMut(usize, &mut [f64], &mut [f64]),
) -> Result<LossOutput, LossError> {
    let n: usize = shape.iter().product();
    let mut gradient = vec![0.0; n];
    let loss = if reduction == Reduction::None {
        let mut items = vec![0.0; n];
        let chunks = items.chunks_mut(CHUNK).zip(gradient.chunks_mut(CHUNK));
        for (i, (l, g)) in chunks.enumerate() {
            kernel(i * CHUNK, l, g);
        }
        LossValue::PerItem(shaped("predictions", shape, items)?)
    } else {
        let scale = 1.0 / n as f64;
        let mut scratch = [0.0; CHUNK];
        let mut total = 0.0;
        for (i, g) in gradient.chunks_mut(CHUNK).enumerate() {
            let l = &mut scratch[..g.len()];
            kernel(i * CHUNK, l, g);
            for v in l.iter() {
                total += v;
            }
            if reduction == Reduction::Mean {
                for v in g.iter_mut() {
                    *v *= scale;
                }
            }
        }
        LossValue::Scalar(match reduction {
            Reduction::Mean => total / n as f64,
            _ => total,
        })
    };
    let output = LossOutput {
        loss,
        gradient: shaped("predictions", shape, gradient)?,
    };
    check_finite(&output)?;
    Ok(output)
}

/// `s[start..]`, empty when `start` is past the end: kernels of
/// [`fold_chunked`] zip it with their output chunk, which bounds the length.
#[inline]
pub(crate) fn tail(s: &[f64], start: usize) -> &[f64] {
    s.get(start..).unwrap_or(&[])
}

/// Applies `reduction` to per-item losses whose gradient (of their plain sum)
/// is already known: `mean` divides both by `denominator` (which the caller
/// has checked to be positive), `sum` sums, `none` keeps the items.
pub(crate) fn finish(
    items: ArrayD<f64>,
    mut gradient: ArrayD<f64>,
    reduction: Reduction,
    denominator: f64,
) -> Result<LossOutput, LossError> {
    let loss = match reduction {
        Reduction::Mean => {
            gradient.mapv_inplace(|g| g / denominator);
            LossValue::Scalar(items.sum() / denominator)
        }
        Reduction::Sum => LossValue::Scalar(items.sum()),
        Reduction::None => LossValue::PerItem(items),
    };
    let output = LossOutput { loss, gradient };
    check_finite(&output)?;
    Ok(output)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for r in Reduction::ALL {
            assert_eq!(Reduction::from_name(r.name()), Some(r));
        }
        assert_eq!(Reduction::from_name("avg"), None);
    }

    #[test]
    fn mean_scales_loss_and_gradient_by_the_count() {
        let out =
            fold_elementwise(&[2], Reduction::Mean, [(1.0, 2.0), (3.0, 4.0)].into_iter()).unwrap();
        assert_eq!(out.loss, LossValue::Scalar(2.0));
        assert_eq!(out.gradient.as_slice().unwrap(), &[1.0, 2.0]);
    }

    #[test]
    fn none_keeps_items_and_the_gradient_of_the_sum() {
        let out =
            fold_elementwise(&[2], Reduction::None, [(1.0, 2.0), (3.0, 4.0)].into_iter()).unwrap();
        assert_eq!(out.loss.total(), 4.0);
        assert_eq!(out.gradient.as_slice().unwrap(), &[2.0, 4.0]);
    }

    #[test]
    fn chunked_fold_equals_the_elementwise_fold_bit_for_bit() {
        let n = 2 * CHUNK + 77;
        let pair = |i: usize| ((i as f64 * 0.37).sin(), (i as f64 * 0.11).cos() * 3.0);
        for reduction in Reduction::ALL {
            let a = fold_elementwise(&[n], reduction, (0..n).map(pair)).unwrap();
            let b = fold_chunked(&[n], reduction, |start, l, g| {
                for (i, (l, g)) in l.iter_mut().zip(g.iter_mut()).enumerate() {
                    (*l, *g) = pair(start + i);
                }
            })
            .unwrap();
            assert_eq!(a, b, "{reduction:?}");
        }
    }

    #[test]
    fn overflow_is_an_error_not_infinity() {
        let err =
            fold_elementwise(&[1], Reduction::Sum, [(f64::INFINITY, 1.0)].into_iter()).unwrap_err();
        assert!(matches!(err, LossError::Overflow { .. }), "{err}");
    }
}
