//! The hot loops of the transcendental losses (BCE, focal, cross entropy),
//! compiled twice and chosen at run time.
//!
//! Why: the release build targets baseline x86-64 (SSE2, no FMA) so the
//! binary runs on any x86-64 CPU. There the branch-free
//! [`fastmath`](crate::core::fastmath) polynomials vectorize only 2-wide and
//! every multiply-add is two instructions, which kept BCE on logits, focal
//! and cross entropy above 10 ns/element. Each kernel here is therefore also
//! compiled with `#[target_feature(enable = "avx2,fma")]` (4-wide, fused
//! multiply-adds), and [`Isa::current`] picks that version when the CPU has
//! both features (detected once, then cached) — function multiversioning,
//! without a second build or `-C target-cpu=native`.
//!
//! Both versions are the same source: a [`Kernel`]'s `run::<FMA>` is
//! `#[inline(always)]`, so it is compiled inside the AVX2 trampoline with
//! that trampoline's features. They differ only by the roundings the fused
//! multiply-adds remove in the fastmath polynomials (both within the
//! fastmath ulp bounds), and `tests/api/losses/kernels.rs` runs every loss on
//! both and compares them, and against the PyTorch fixtures.
//!
//! The only `unsafe` of the losses is the call of the AVX2 trampoline in
//! [`run`], guarded by the run-time detection right there.

use std::cell::Cell;
use std::sync::OnceLock;

use crate::core::fastmath::{exp_with, ln_1_to_2_with, ln_with};

use super::reduction::{all_finite, lane_sum};
use super::{BCE_GRAD_EPS, LOG_FLOOR};

/// An instruction set the loss kernels are compiled for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isa {
    /// The build target's baseline (SSE2 on x86-64), no fused multiply-add.
    Portable,
    /// x86-64 with AVX2 and FMA (Haswell, Zen and later).
    Avx2Fma,
}

thread_local! {
    /// [`with_isa`]'s override for the calling thread.
    static OVERRIDE: Cell<Option<Isa>> = const { Cell::new(None) };
}

impl Isa {
    /// The best instruction set this CPU runs, detected on first use and
    /// cached (`is_x86_feature_detected!` caches too, but this keeps the
    /// choice in one place).
    pub fn detected() -> Isa {
        static DETECTED: OnceLock<Isa> = OnceLock::new();
        *DETECTED.get_or_init(|| {
            #[cfg(target_arch = "x86_64")]
            if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
                return Isa::Avx2Fma;
            }
            Isa::Portable
        })
    }

    /// Every instruction set this CPU can run, portable first (for tests
    /// and benches that compare them).
    pub fn available() -> Vec<Isa> {
        match Isa::detected() {
            Isa::Portable => vec![Isa::Portable],
            Isa::Avx2Fma => vec![Isa::Portable, Isa::Avx2Fma],
        }
    }

    /// The instruction set the losses use on this thread: [`with_isa`]'s
    /// override if any, else [`Isa::detected`].
    pub fn current() -> Isa {
        OVERRIDE.with(Cell::get).unwrap_or_else(Isa::detected)
    }
}

/// Runs `f` with the losses of this thread on `isa` (falling back to
/// [`Isa::Portable`] if the CPU lacks it), then restores the previous
/// choice. For tests and benches that compare the kernel versions; the
/// service never calls it.
pub fn with_isa<R>(isa: Isa, f: impl FnOnce() -> R) -> R {
    let isa = if Isa::available().contains(&isa) {
        isa
    } else {
        Isa::Portable
    };
    let previous = OVERRIDE.with(|o| o.replace(Some(isa)));
    // Restore on unwind too, so a failing test does not leak its choice.
    struct Restore(Option<Isa>);
    impl Drop for Restore {
        fn drop(&mut self) {
            OVERRIDE.with(|o| o.set(self.0));
        }
    }
    let _restore = Restore(previous);
    f()
}

/// A loop over a chunk, written once and compiled per [`Isa`].
pub(crate) trait Kernel {
    /// What the loop returns besides what it writes (often nothing).
    type Output;
    /// The loop; `FMA` selects fused multiply-adds in the fastmath
    /// polynomials. Implementations must be `#[inline(always)]` so that the
    /// AVX2 trampoline compiles them with its features.
    fn run<const FMA: bool>(self) -> Self::Output;
}

/// Runs `kernel` on `isa`.
#[inline]
pub(crate) fn run<K: Kernel>(isa: Isa, kernel: K) -> K::Output {
    match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2Fma if Isa::detected() == Isa::Avx2Fma => {
            // SAFETY: `avx2_fma` is compiled with AVX2 and FMA enabled; it is
            // sound to call because the CPU was just checked to have both
            // (`Isa::detected` runs `is_x86_feature_detected!`).
            unsafe { avx2_fma(kernel) }
        }
        _ => kernel.run::<false>(),
    }
}

/// The AVX2 + FMA trampoline: the kernel's loop is inlined here and so
/// compiled 4-wide with fused multiply-adds.
///
/// # Safety
///
/// The CPU must support AVX2 and FMA (executing it elsewhere is undefined
/// behaviour: illegal instructions at best). Only [`run`] calls it, after
/// checking [`Isa::detected`].
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn avx2_fma<K: Kernel>(kernel: K) -> K::Output {
    kernel.run::<true>()
}

/// ln(x) clamped below at [`LOG_FLOOR`], as PyTorch's BCE (ln(0) = -inf
/// is clamped like any other value).
#[inline(always)]
pub(crate) fn clamped_ln<const FMA: bool>(x: f64) -> f64 {
    ln_with::<FMA>(x).max(LOG_FLOOR)
}

/// PyTorch's BCE backward rule (p - y) / max(p (1 - p), 1e-12).
#[inline(always)]
fn bce_prob_grad(p: f64, y: f64) -> f64 {
    (p - y) / (p * (1.0 - p)).max(BCE_GRAD_EPS)
}

/// BCE of probability `p` against target `y` with PyTorch's clamped logs,
/// and its derivative by PyTorch's backward rule. Both logarithms, no
/// branch: for a hard label the other term is 0 times a clamped (finite)
/// log, exactly 0, so the value is that of the one-log form.
#[inline(always)]
pub(crate) fn bce_prob<const FMA: bool>(p: f64, y: f64) -> (f64, f64) {
    let loss = -(y * clamped_ln::<FMA>(p) + (1.0 - y) * clamped_ln::<FMA>(1.0 - p));
    (loss, bce_prob_grad(p, y))
}

/// BCE on probabilities over a chunk: `loss[i]`, `grad[i]` for `p[i]`,
/// `y[i]`. When every target of the chunk is a hard label (the common
/// case) the loop takes one logarithm of a selected argument; otherwise
/// both clamped logarithms, which give the same values for hard labels
/// (0 times a clamped log is exactly 0). Neither loop branches per element.
pub(crate) struct BceProbabilities<'a> {
    pub p: &'a [f64],
    pub y: &'a [f64],
    pub loss: &'a mut [f64],
    pub grad: &'a mut [f64],
}

impl Kernel for BceProbabilities<'_> {
    type Output = ();

    #[inline(always)]
    fn run<const FMA: bool>(self) {
        let n = self.loss.len().min(self.grad.len());
        let hard = self
            .y
            .iter()
            .take(n)
            .fold(true, |all, &y| all & ((y == 0.0) | (y == 1.0)));
        let out = self.loss.iter_mut().zip(self.grad.iter_mut());
        let inputs = self.p.iter().zip(self.y);
        if hard {
            for ((l, g), (&p, &y)) in out.zip(inputs) {
                let q = if y == 1.0 { p } else { 1.0 - p };
                *l = -clamped_ln::<FMA>(q);
                *g = bce_prob_grad(p, y);
            }
        } else {
            for ((l, g), (&p, &y)) in out.zip(inputs) {
                (*l, *g) = bce_prob::<FMA>(p, y);
            }
        }
    }
}

/// BCE on logit `x`, target `y`, positive weight `pw`, in PyTorch's
/// overflow-free form, plus sigmoid(x), given `e` = e^-|x|; see
/// [`BceLogits`].
#[inline(always)]
pub(crate) fn bce_logit_from_exp<const FMA: bool>(
    x: f64,
    e: f64,
    y: f64,
    pw: f64,
) -> (f64, f64, f64) {
    // One exponential serves the softplus and the sigmoid: e = e^-|x| is in
    // [0, 1], so u = 1 + e never overflows, and one division r = 1 / u gives
    // sigmoid(|x|) = r, sigmoid(-|x|) = e r, and ln_1p's rounding correction
    // (e - (u - 1)) / u of ln(u) (see fastmath::ln_1p).
    let u = 1.0 + e;
    let r = 1.0 / u;
    let ln_1p_e = ln_1_to_2_with::<FMA>(u) + (e - (u - 1.0)) * r;
    let softplus_neg = ln_1p_e + (-x).max(0.0);
    let s = if x >= 0.0 { r } else { e * r };
    let lw = 1.0 + (pw - 1.0) * y;
    ((1.0 - y) * x + lw * softplus_neg, lw * s - pw * y, s)
}

/// BCE on logits over a chunk (`pos_weight` per element when given):
/// l = (1 - y) x + lw softplus(-x), gradient lw sigmoid(x) - pw y, with
/// lw = 1 + (pw - 1) y. The target enters only through arithmetic, so the
/// loop has no branch on it.
pub(crate) struct BceLogits<'a> {
    pub x: &'a [f64],
    pub y: &'a [f64],
    pub pos_weight: Option<&'a [f64]>,
    pub loss: &'a mut [f64],
    pub grad: &'a mut [f64],
}

/// `out[i]` = e^-|x[i]|: the first sweep of the logit kernels. They run in
/// two sweeps over the chunk, the exponentials (into the loss buffer, which
/// the second sweep overwrites) and then the rest: a single sweep is a chain
/// of some 200 instructions with three divisions per vector, longer than the
/// out-of-order window, so consecutive vectors barely overlapped; shorter
/// loop bodies do, and keep their constants in registers.
#[inline(always)]
fn exp_neg_abs<const FMA: bool>(x: &[f64], out: &mut [f64]) {
    for (o, &x) in out.iter_mut().zip(x) {
        *o = exp_with::<FMA>(-x.abs());
    }
}

impl Kernel for BceLogits<'_> {
    type Output = ();

    #[inline(always)]
    fn run<const FMA: bool>(self) {
        exp_neg_abs::<FMA>(self.x, self.loss);
        let out = self.loss.iter_mut().zip(self.grad.iter_mut());
        let inputs = self.x.iter().zip(self.y);
        match self.pos_weight {
            None => {
                for ((l, g), (&x, &y)) in out.zip(inputs) {
                    (*l, *g, _) = bce_logit_from_exp::<FMA>(x, *l, y, 1.0);
                }
            }
            Some(pw) => {
                for ((l, g), ((&x, &y), &pw)) in out.zip(inputs.zip(pw)) {
                    (*l, *g, _) = bce_logit_from_exp::<FMA>(x, *l, y, pw);
                }
            }
        }
    }
}

/// The focal modulation of a BCE `(ce, dce)` at probability `p` (whose
/// derivative with respect to the prediction is `dp`), target `y`:
/// `a_t ce q^gamma` and its derivative, with q = 1 - p_t and
/// `power(q)` = (q^gamma, gamma q^(gamma - 1)). At q = 0 the factor is
/// 0^gamma (1 for gamma = 0) and the derivative term is taken as 0 (its
/// limit), with selects rather than branches.
#[inline(always)]
pub(crate) fn focal_modulate(
    (ce, dce): (f64, f64),
    p: f64,
    dp: f64,
    y: f64,
    alpha: Option<f64>,
    gamma: f64,
    power: impl Fn(f64) -> (f64, f64),
) -> (f64, f64) {
    let p_t = p * y + (1.0 - p) * (1.0 - y);
    // p_t <= 1 in exact arithmetic; rounding must not make q negative,
    // where a fractional power is NaN.
    let q = (1.0 - p_t).max(0.0);
    let (factor, dfactor) = power(q);
    let zero_factor = if gamma == 0.0 { 1.0 } else { 0.0 };
    let (factor, dfactor) = if q == 0.0 {
        (zero_factor, 0.0)
    } else {
        (factor, dfactor)
    };
    let a_t = match alpha {
        Some(a) => a * y + (1.0 - a) * (1.0 - y),
        None => 1.0,
    };
    let dq = -(2.0 * y - 1.0) * dp;
    (a_t * ce * factor, a_t * (dce * factor + ce * dfactor * dq))
}

/// Sigmoid focal loss over a chunk, on logits or on probabilities; `power`
/// as in [`focal_modulate`], chosen once per call so the common integer
/// gammas are plain multiplications.
pub(crate) struct FocalKernel<'a, P> {
    /// Logits when `from_logits`, else probabilities.
    pub input: &'a [f64],
    pub from_logits: bool,
    pub y: &'a [f64],
    pub alpha: Option<f64>,
    pub gamma: f64,
    pub power: P,
    pub loss: &'a mut [f64],
    pub grad: &'a mut [f64],
}

impl<P: Fn(f64) -> (f64, f64) + Copy> Kernel for FocalKernel<'_, P> {
    type Output = ();

    #[inline(always)]
    fn run<const FMA: bool>(self) {
        let FocalKernel {
            input,
            from_logits,
            y,
            alpha,
            gamma,
            power,
            loss,
            grad,
        } = self;
        // One loop per input kind: the choice stays out of the hot loop.
        if from_logits {
            exp_neg_abs::<FMA>(input, loss);
        }
        let out = loss.iter_mut().zip(grad.iter_mut());
        if from_logits {
            for ((l, g), (&x, &y)) in out.zip(input.iter().zip(y)) {
                let (ce, dce, s) = bce_logit_from_exp::<FMA>(x, *l, y, 1.0);
                (*l, *g) = focal_modulate((ce, dce), s, s * (1.0 - s), y, alpha, gamma, power);
            }
        } else {
            for ((l, g), (&p, &y)) in out.zip(input.iter().zip(y)) {
                (*l, *g) = focal_modulate(bce_prob::<FMA>(p, y), p, 1.0, y, alpha, gamma, power);
            }
        }
    }
}

/// Softmax cross entropy with class-index targets over a block of rows of
/// C logits (`x`, row-major; C = `weights.len()`): the loss of each row in
/// `items` and the gradient of their sum times `scale` in `grad`.
///
/// With a_c = b_c + [c = y] (1 - e) w_y, b_c = e w_c / C the smoothing part
/// (`smoothing`, the same for every row; `smoothing_total` its sum) and
/// A = sum_c a_c: loss = -sum_c a_c lp_c with lp_c = (x_c - max) - ln(sum),
/// sum = sum_c e^(x_c - max), and gradient (A e^(x_j - max) / sum - a_j).
/// Rows whose target is `ignore_index` get loss and gradient 0.
///
/// Three sweeps, so that the exponentials and logarithms run as long
/// vectorizable loops (one row of 10 classes alone would barely fill two
/// AVX registers): the logits shifted by their row maximum (no exponent
/// overflows) into `grad`, where their exponentials replace them in one
/// sweep over the whole block; then the row sums and their logarithms;
/// then per row the loss and the gradient, reusing the exponentials.
/// `maxima` and `sums` are scratch of at least one value per row.
pub(crate) struct SoftmaxRows<'a> {
    pub x: &'a [f64],
    pub targets: &'a [f64],
    pub weights: &'a [f64],
    pub smoothing: &'a [f64],
    pub smoothing_total: f64,
    /// 1 - e: the share of the target's own weight.
    pub target_share: f64,
    pub ignore_index: f64,
    pub scale: f64,
    pub maxima: &'a mut [f64],
    pub sums: &'a mut [f64],
    pub items: &'a mut [f64],
    pub grad: &'a mut [f64],
}

impl Kernel for SoftmaxRows<'_> {
    type Output = ();

    #[inline(always)]
    fn run<const FMA: bool>(self) {
        let c = self.weights.len();
        let rows = self.x.chunks_exact(c).zip(self.grad.chunks_exact_mut(c));
        for ((xr, gr), max) in rows.zip(self.maxima.iter_mut()) {
            // A compare-select rather than `f64::max`, whose NaN rule blocks
            // vectorization; NaN is skipped all the same.
            *max = xr
                .iter()
                .fold(f64::NEG_INFINITY, |m, &v| if v > m { v } else { m });
            for (g, v) in gr.iter_mut().zip(xr) {
                *g = v - *max;
            }
        }
        for g in self.grad.iter_mut() {
            *g = exp_with::<FMA>(*g);
        }
        for (sum, gr) in self.sums.iter_mut().zip(self.grad.chunks_exact(c)) {
            *sum = gr.iter().sum();
        }
        // The logarithms of the sums go into `items`, overwritten below; a
        // loop of its own so that it vectorizes across rows.
        for (log_sum, &sum) in self.items.iter_mut().zip(self.sums.iter()) {
            *log_sum = ln_with::<FMA>(sum);
        }
        let per_row = self.maxima.iter().zip(self.sums.iter());
        let rows = self.x.chunks_exact(c).zip(self.grad.chunks_exact_mut(c));
        let targets = self.targets.iter().zip(self.items.iter_mut());
        for (((xr, gr), (&y, item)), (&max, &sum)) in rows.zip(targets).zip(per_row) {
            if y == self.ignore_index {
                gr.fill(0.0);
                *item = 0.0;
                continue;
            }
            let log_sum = *item;
            // The caller has checked y to be an integer in 0..C.
            let target = y as usize;
            let hit = self.target_share * self.weights.get(target).copied().unwrap_or(0.0);
            let total_over_sum = (self.smoothing_total + hit) / sum;
            // Gradient and loss in separate loops: the gradient's has no
            // serial sum, so it vectorizes.
            for (g, &b) in gr.iter_mut().zip(self.smoothing) {
                *g = (total_over_sum * *g - b) * self.scale;
            }
            let mut loss = 0.0;
            for (&v, &b) in xr.iter().zip(self.smoothing) {
                loss -= b * ((v - max) - log_sum);
            }
            if let (Some(g), Some(&v)) = (gr.get_mut(target), xr.get(target)) {
                loss -= hit * ((v - max) - log_sum);
                *g -= hit * self.scale;
            }
            *item = loss;
        }
    }
}

/// The reduction's view of a computed chunk: the sum of its losses
/// ([`lane_sum`]) and whether every loss and gradient value is finite, in
/// one kernel so that it runs 4-wide too.
pub(crate) struct ChunkSummary<'a> {
    pub loss: &'a [f64],
    pub grad: &'a [f64],
}

impl Kernel for ChunkSummary<'_> {
    /// (sum of the losses, all finite).
    type Output = (f64, bool);

    #[inline(always)]
    fn run<const FMA: bool>(self) -> (f64, bool) {
        let finite = all_finite(self.loss) & all_finite(self.grad);
        (lane_sum(self.loss), finite)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bce_prob_is_finite_at_zero_and_one() {
        assert_eq!(bce_prob::<false>(0.0, 1.0).0, 100.0);
        assert_eq!(bce_prob::<false>(1.0, 0.0).0, 100.0);
        assert_eq!(bce_prob::<false>(1.0, 1.0), (0.0, 0.0));
        assert_eq!(bce_prob::<false>(0.0, 1.0).1, -1.0 / 9.999999960041972e-13);
    }

    #[test]
    fn with_isa_overrides_and_restores() {
        let before = Isa::current();
        with_isa(Isa::Portable, || assert_eq!(Isa::current(), Isa::Portable));
        for isa in Isa::available() {
            with_isa(isa, || assert_eq!(Isa::current(), isa));
        }
        assert_eq!(Isa::current(), before);
    }
}
