//! The multiversioned loss kernels (`core::losses::kernels`): the portable
//! build and the AVX2 + FMA one must give the same losses and gradients up
//! to the few roundings the fused multiply-adds change, and both must agree
//! with a straightforward reference written on std's `exp` / `ln` / `ln_1p`.
//! On a CPU without AVX2 and FMA only the portable version runs (and the
//! comparison is with itself).
//!
//! Inputs span the loss ranges and their edges: logits of +-1000 and
//! around 0, probabilities exactly 0 and 1 and near the -100 log clamp,
//! soft and hard targets, sizes that are not multiples of the vector width
//! or of the chunk length.

use evald::core::losses::cross_entropy::DEFAULT_IGNORE_INDEX;
use evald::core::losses::kernels::{with_isa, Isa};
use evald::core::losses::{Bce, CrossEntropy, Focal, Loss, LossOutput, LossValue, Reduction};
use evald::core::rng::SplitMix64;
use ndarray::{ArrayD, IxDyn};

use crate::helpers::assert_close;
use crate::helpers::Tolerance::Relative;

/// Relative agreement between the two kernel versions: a handful of ulp,
/// amplified at most by the few operations after the transcendental.
const ISA_TOLERANCE: f64 = 1e-13;

/// Deterministic values in [0, 1).
fn uniform(n: usize, seed: u64) -> Vec<f64> {
    let mut rng = SplitMix64::new(seed);
    (0..n).map(|_| rng.next_f64()).collect()
}

fn array(shape: &[usize], data: Vec<f64>) -> ArrayD<f64> {
    ArrayD::from_shape_vec(IxDyn(shape), data).expect("sizes match")
}

/// 2,500 logits: edges first, then a wide random spread.
fn logits() -> Vec<f64> {
    let edges = [
        0.0, -0.0, 1e-300, -1e-300, 1e-17, -1e-17, 0.5, -0.5, 36.0, -36.0, 37.5, -37.5, 709.0,
        -709.0, 745.2, -745.2, 1000.0, -1000.0,
    ];
    let spread = uniform(2500 - edges.len(), 11)
        .into_iter()
        .map(|u| (u - 0.5) * 80.0);
    edges.iter().copied().chain(spread).collect()
}

/// 2,500 probabilities: exact 0 and 1, around the clamp e^-100, then random.
fn probabilities() -> Vec<f64> {
    let tiny = (-100.0f64).exp();
    let edges = [
        0.0,
        1.0,
        tiny,
        tiny * 0.5,
        tiny * 2.0,
        1.0 - f64::EPSILON,
        f64::EPSILON,
        1e-300,
        0.5,
    ];
    let spread = uniform(2500 - edges.len(), 12);
    edges.iter().copied().chain(spread).collect()
}

fn hard_targets(n: usize, seed: u64) -> Vec<f64> {
    uniform(n, seed).into_iter().map(f64::round).collect()
}

fn values(out: &LossOutput) -> Vec<f64> {
    let mut v = match &out.loss {
        LossValue::Scalar(s) => vec![*s],
        LossValue::PerItem(a) => a.iter().copied().collect(),
    };
    v.extend(out.gradient.iter().copied());
    v
}

/// Runs `loss` on every kernel version and checks they agree.
fn on_every_isa(what: &str, loss: &Loss, x: &ArrayD<f64>, y: &ArrayD<f64>) -> LossOutput {
    let mut outputs = Vec::new();
    for reduction in Reduction::ALL {
        let runs: Vec<(Isa, LossOutput)> = Isa::available()
            .into_iter()
            .map(|isa| {
                let out = with_isa(isa, || loss.compute(x.view(), y.view(), reduction));
                (isa, out.expect("defined"))
            })
            .collect();
        let (_, first) = &runs[0];
        for (isa, out) in &runs[1..] {
            let label = format!("{what} {reduction:?}: {isa:?} vs portable");
            assert_close(
                &label,
                &values(out),
                &values(first),
                Relative(ISA_TOLERANCE),
            );
        }
        outputs.push(runs.into_iter().next_back().expect("one run").1);
    }
    outputs.pop().expect("reduction none ran last")
}

fn per_item(out: &LossOutput) -> Vec<f64> {
    match &out.loss {
        LossValue::PerItem(a) => a.iter().copied().collect(),
        LossValue::Scalar(_) => panic!("reduction none gives items"),
    }
}

/// Reference BCE on logits, on std: l = (1 - y) x + lw softplus(-x),
/// g = lw sigmoid(x) - pw y.
fn bce_logit_reference(x: f64, y: f64, pw: f64) -> (f64, f64) {
    let softplus_neg = (-x.abs()).exp().ln_1p() + (-x).max(0.0);
    let sigmoid = if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        x.exp() / (1.0 + x.exp())
    };
    let lw = 1.0 + (pw - 1.0) * y;
    ((1.0 - y) * x + lw * softplus_neg, lw * sigmoid - pw * y)
}

#[test]
fn bce_on_logits_agrees_across_isas_and_with_std() {
    let x = logits();
    let n = x.len();
    for (label, y) in [("hard", hard_targets(n, 13)), ("soft", uniform(n, 14))] {
        let pw = uniform(n, 15).iter().map(|u| 3.0 * u).collect::<Vec<_>>();
        let (xa, ya) = (array(&[n], x.clone()), array(&[n], y.clone()));
        let plain = Loss::Bce(Bce::new(true, None, None).expect("valid"));
        let out = on_every_isa(&format!("bce logits {label}"), &plain, &xa, &ya);
        let (l, g): (Vec<f64>, Vec<f64>) = x
            .iter()
            .zip(&y)
            .map(|(&x, &y)| bce_logit_reference(x, y, 1.0))
            .unzip();
        assert_close(
            "bce logits vs std, loss",
            &per_item(&out),
            &l,
            Relative(1e-13),
        );
        assert_close(
            "bce logits vs std, gradient",
            out.gradient.as_slice().expect("contiguous"),
            &g,
            Relative(1e-13),
        );

        let weighted =
            Loss::Bce(Bce::new(true, None, Some(array(&[n], pw.clone()))).expect("valid"));
        let out = on_every_isa(
            &format!("bce logits pos_weight {label}"),
            &weighted,
            &xa,
            &ya,
        );
        let (l, g): (Vec<f64>, Vec<f64>) = x
            .iter()
            .zip(&y)
            .zip(&pw)
            .map(|((&x, &y), &pw)| bce_logit_reference(x, y, pw))
            .unzip();
        assert_close(
            "bce pos_weight vs std, loss",
            &per_item(&out),
            &l,
            Relative(1e-13),
        );
        assert_close(
            "bce pos_weight vs std, gradient",
            out.gradient.as_slice().expect("contiguous"),
            &g,
            Relative(1e-13),
        );
    }
}

#[test]
fn bce_on_probabilities_agrees_across_isas_and_with_std() {
    let p = probabilities();
    let n = p.len();
    for (label, y) in [("hard", hard_targets(n, 16)), ("soft", uniform(n, 17))] {
        let (pa, ya) = (array(&[n], p.clone()), array(&[n], y.clone()));
        let weights = array(&[n], uniform(n, 18));
        for (what, loss) in [
            ("bce probabilities", Bce::new(false, None, None)),
            (
                "bce probabilities weighted",
                Bce::new(false, Some(weights.clone()), None),
            ),
        ] {
            let loss = Loss::Bce(loss.expect("valid"));
            let out = on_every_isa(&format!("{what} {label}"), &loss, &pa, &ya);
            let w: Vec<f64> = if what.ends_with("weighted") {
                weights.iter().copied().collect()
            } else {
                vec![1.0; n]
            };
            let clamped = |v: f64| v.ln().max(-100.0);
            let reference: Vec<f64> = p
                .iter()
                .zip(&y)
                .zip(&w)
                .map(|((&p, &y), &w)| -w * (y * clamped(p) + (1.0 - y) * clamped(1.0 - p)))
                .collect();
            assert_close(
                &format!("{what} {label} vs std"),
                &per_item(&out),
                &reference,
                Relative(1e-14),
            );
        }
    }
}

#[test]
fn focal_agrees_across_isas() {
    let x = logits();
    let n = x.len();
    let y = hard_targets(n, 19);
    let (xa, ya) = (array(&[n], x), array(&[n], y.clone()));
    let pa = array(&[n], probabilities());
    for gamma in [0.0, 0.5, 1.0, 2.0, 3.0, 5.0] {
        for alpha in [0.25, -1.0] {
            let on_logits = Loss::Focal(Focal::new(alpha, gamma, true).expect("valid"));
            on_every_isa(
                &format!("focal logits {alpha} {gamma}"),
                &on_logits,
                &xa,
                &ya,
            );
            let on_probs = Loss::Focal(Focal::new(alpha, gamma, false).expect("valid"));
            on_every_isa(
                &format!("focal probabilities {alpha} {gamma}"),
                &on_probs,
                &pa,
                &ya,
            );
        }
    }
}

#[test]
fn cross_entropy_agrees_across_isas_and_with_std() {
    let x = logits();
    for c in [1usize, 3, 10, 1100] {
        let rows = x.len() / c;
        let xs = x[..rows * c].to_vec();
        let mut t: Vec<f64> = uniform(rows, 20)
            .iter()
            .map(|u| (u * c as f64).floor())
            .collect();
        if let Some(first) = t.first_mut() {
            *first = DEFAULT_IGNORE_INDEX as f64;
        }
        let (xa, ta) = (array(&[rows, c], xs.clone()), array(&[rows], t.clone()));
        let weights: Vec<f64> = uniform(c, 21).iter().map(|u| 0.5 + u).collect();
        for smoothing in [0.0, 0.1] {
            for w in [None, Some(weights.clone())] {
                let loss = Loss::CrossEntropy(
                    CrossEntropy::new(w.clone(), smoothing, DEFAULT_IGNORE_INDEX, false)
                        .expect("valid"),
                );
                let what = format!("cross entropy C={c} e={smoothing} weighted={}", w.is_some());
                let out = on_every_isa(&what, &loss, &xa, &ta);
                // Reference per row with std: log_softmax, coefficients a_c.
                let w = w.unwrap_or_else(|| vec![1.0; c]);
                let reference: Vec<f64> = xs
                    .chunks(c)
                    .zip(&t)
                    .map(|(row, &y)| {
                        if y == DEFAULT_IGNORE_INDEX as f64 {
                            return 0.0;
                        }
                        let max = row.iter().fold(f64::NEG_INFINITY, |m, &v| m.max(v));
                        let log_sum = row.iter().map(|v| (v - max).exp()).sum::<f64>().ln();
                        row.iter()
                            .enumerate()
                            .map(|(k, v)| {
                                let a = smoothing * w[k] / c as f64
                                    + if k == y as usize {
                                        (1.0 - smoothing) * w[k]
                                    } else {
                                        0.0
                                    };
                                -a * ((v - max) - log_sum)
                            })
                            .sum()
                    })
                    .collect();
                // Per-row losses are sums of C terms that may cancel
                // (logits of +-40): compare against the row's scale.
                for (i, (a, b)) in per_item(&out).iter().zip(&reference).enumerate() {
                    let scale = xs[i * c..(i + 1) * c]
                        .iter()
                        .fold(1.0f64, |m, v| m.max(v.abs()));
                    assert!(
                        (a - b).abs() <= 1e-14 * scale * c as f64,
                        "{what} row {i}: {a:e} vs {b:e}"
                    );
                }
            }
        }
    }
}
