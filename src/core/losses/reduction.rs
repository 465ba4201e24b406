//! How per-item losses become the answer: `mean`, `sum` or `none`, and the
//! single-pass fold the elementwise losses share.

use ndarray::ArrayD;

use super::kernels::{self, ChunkSummary, Isa};
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
pub(crate) const CHUNK: usize = 1024;

/// [`fold_elementwise`] for kernels written over slices, so that LLVM can
/// vectorize them (a per-element closure feeding a running sum cannot be:
/// the float sum is a serial dependency that blocks the whole loop).
///
/// `kernel(start, loss, gradient)` fills `loss[i]` and `gradient[i]` with the
/// loss and derivative of element `start + i`, for a chunk of at most
/// [`CHUNK`] elements, or fails (validation fused into the chunk loop). The
/// gradient is bit for bit the one `fold_elementwise` gives for the same
/// per-element values; the loss sum is [`lane_sum`]'s order, so it may
/// differ from the serial sum by rounding (relative 1e-16 times a small
/// factor).
pub(crate) fn fold_chunked(
    shape: &[usize],
    reduction: Reduction,
    mut kernel: impl FnMut(usize, &mut [f64], &mut [f64]) -> Result<(), LossError>,
) -> Result<LossOutput, LossError> {
    let n: usize = shape.iter().product();
    let isa = Isa::current();
    let keep_items = reduction == Reduction::None;
    let scale = match reduction {
        Reduction::Mean => 1.0 / n as f64,
        Reduction::Sum | Reduction::None => 1.0,
    };
    // The kernel writes into two chunk buffers that stay in L1, appended to
    // the outputs afterwards (the gradient scaled for the reduction while it
    // is copied): the outputs are written once, where a zero-filled vector
    // is written twice, the zeros first; and the sum and finiteness check
    // read the chunk while it is in cache instead of re-reading the whole
    // gradient from memory at the end. Scaling by 1 / n <= 1 cannot make a
    // finite value infinite, so checking the unscaled chunk is enough.
    let mut gradient = Vec::with_capacity(n);
    let mut items = Vec::with_capacity(if keep_items { n } else { 0 });
    let (mut loss_chunk, mut grad_chunk) = ([0.0; CHUNK], [0.0; CHUNK]);
    let mut total = 0.0;
    let mut finite = true;
    let mut start = 0;
    while start < n {
        let len = CHUNK.min(n - start);
        let (l, g) = (&mut loss_chunk[..len], &mut grad_chunk[..len]);
        kernel(start, l, g)?;
        let (sum, chunk_finite) = kernels::run(isa, ChunkSummary { loss: l, grad: g });
        finite &= chunk_finite;
        if keep_items {
            items.extend_from_slice(l);
        } else {
            total += sum;
        }
        if reduction == Reduction::Mean {
            gradient.extend(g.iter().map(|v| v * scale));
        } else {
            gradient.extend_from_slice(g);
        }
        start += len;
    }
    let loss = match reduction {
        Reduction::None => LossValue::PerItem(shaped("predictions", shape, items)?),
        Reduction::Mean => LossValue::Scalar(total / n as f64),
        Reduction::Sum => LossValue::Scalar(total),
    };
    let output = LossOutput {
        loss,
        gradient: shaped("predictions", shape, gradient)?,
    };
    let scalar_overflow = matches!(output.loss, LossValue::Scalar(v) if !v.is_finite());
    if !finite || scalar_overflow {
        // Fails, naming the first non-finite value.
        check_finite(&output)?;
    }
    Ok(output)
}

/// Whether every value is finite; an and-fold that vectorizes (no early
/// exit), for chunks already in cache.
#[inline(always)]
pub(crate) fn all_finite(values: &[f64]) -> bool {
    values.iter().fold(true, |all, v| all & v.is_finite())
}

/// Sum of `values` in [`LANES`] interleaved partial sums, added up at the
/// end. A single running sum is a chain of dependent additions (one per
/// element, each waiting for the previous one's latency), which cost more
/// than the transcendental kernels themselves; independent lanes vectorize
/// and overlap. Only the order of the additions differs from the serial sum.
#[inline(always)]
pub(crate) fn lane_sum(values: &[f64]) -> f64 {
    let mut lanes = [0.0; LANES];
    let mut blocks = values.chunks_exact(LANES);
    for block in &mut blocks {
        for (lane, v) in lanes.iter_mut().zip(block) {
            *lane += v;
        }
    }
    let mut total = lanes.iter().sum::<f64>();
    for v in blocks.remainder() {
        total += v;
    }
    total
}

/// Partial sums in [`lane_sum`]: two AVX registers, or four SSE2 ones.
const LANES: usize = 8;

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
    if reduction == Reduction::Mean {
        gradient.mapv_inplace(|g| g / denominator);
    }
    finish_scaled(items, gradient, reduction, denominator, false)
}

/// [`finish`] for a gradient the caller has already scaled for the
/// reduction (divided by `denominator` for `mean`), so the loss kernel did
/// it while writing instead of in a second pass. `checked_finite`: the
/// caller has seen every item and gradient value to be finite (while they
/// were in cache), so only the reduced loss is checked here.
pub(crate) fn finish_scaled(
    items: ArrayD<f64>,
    gradient: ArrayD<f64>,
    reduction: Reduction,
    denominator: f64,
    checked_finite: bool,
) -> Result<LossOutput, LossError> {
    let loss = match reduction {
        Reduction::Mean => LossValue::Scalar(items.sum() / denominator),
        Reduction::Sum => LossValue::Scalar(items.sum()),
        Reduction::None => LossValue::PerItem(items),
    };
    let output = LossOutput { loss, gradient };
    let scalar_overflow = matches!(output.loss, LossValue::Scalar(v) if !v.is_finite());
    if !checked_finite || scalar_overflow {
        check_finite(&output)?;
    }
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
    fn chunked_fold_equals_the_elementwise_fold() {
        let n = 2 * CHUNK + 77;
        let pair = |i: usize| ((i as f64 * 0.37).sin(), (i as f64 * 0.11).cos() * 3.0);
        for reduction in Reduction::ALL {
            let a = fold_elementwise(&[n], reduction, (0..n).map(pair)).unwrap();
            let b = fold_chunked(&[n], reduction, |start, l, g| {
                for (i, (l, g)) in l.iter_mut().zip(g.iter_mut()).enumerate() {
                    (*l, *g) = pair(start + i);
                }
                Ok(())
            })
            .unwrap();
            // Gradient and per-item losses bit for bit; the reduced loss up
            // to the summation order.
            assert_eq!(a.gradient, b.gradient, "{reduction:?}");
            match (a.loss, b.loss) {
                (LossValue::Scalar(x), LossValue::Scalar(y)) => {
                    assert!((x - y).abs() <= 1e-13 * x.abs().max(1.0), "{x} {y}")
                }
                (x, y) => assert_eq!(x, y, "{reduction:?}"),
            }
        }
    }

    #[test]
    fn lane_sum_adds_every_value() {
        for n in [0usize, 1, 7, 8, 9, 100] {
            let v: Vec<f64> = (0..n).map(|i| i as f64).collect();
            assert_eq!(lane_sum(&v), (n * n.saturating_sub(1) / 2) as f64, "{n}");
        }
    }

    #[test]
    fn overflow_is_an_error_not_infinity() {
        let err =
            fold_elementwise(&[1], Reduction::Sum, [(f64::INFINITY, 1.0)].into_iter()).unwrap_err();
        assert!(matches!(err, LossError::Overflow { .. }), "{err}");
    }
}
