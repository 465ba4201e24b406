//! Property tests: every analytic gradient equals a central finite difference
//! of the loss, and the numerically delicate inputs stay finite and correct.
//!
//! Finite difference: g_i ~ (L(x + h e_i) - L(x - h e_i)) / (2 h) with
//! h = 1e-6 * max(1, |x_i|). Its truncation error is O(h^2 L''') and its
//! rounding error O(1e-16 |L| / h) ~ 1e-10 |L|, so the comparison uses
//! |analytic - fd| <= 1e-5 * max(1, |analytic|). Inputs are kept a little away
//! from the kinks (|p - y| = 0 for l1, = beta/delta for smooth_l1/huber) and
//! from the ends of [0, 1] for probabilities, where a difference quotient
//! straddling the kink or the clamp would not be a derivative at all.

use evald::core::losses::kernels::{with_isa, Isa};
use evald::core::losses::{
    Bce, CrossEntropy, Dice, Focal, Huber, Iou, Loss, LossValue, Reduction, Regularization,
    SmoothL1,
};
use ndarray::{ArrayD, IxDyn};
use proptest::prelude::*;

const TOLERANCE: f64 = 1e-5;

fn total(loss: &Loss, x: &ArrayD<f64>, y: &ArrayD<f64>, reduction: Reduction) -> f64 {
    loss.compute(x.view(), y.view(), reduction)
        .expect("loss is defined at the probe point")
        .loss
        .total()
}

/// Asserts the analytic gradient of `loss` at `x` matches the central
/// difference in every coordinate where `probe(i)` is true, on every kernel
/// version the CPU runs.
fn assert_gradient(
    loss: &Loss,
    x: &ArrayD<f64>,
    y: &ArrayD<f64>,
    reduction: Reduction,
    probe: impl Fn(usize) -> bool,
) -> Result<(), TestCaseError> {
    for isa in Isa::available() {
        with_isa(isa, || assert_gradient_on(loss, x, y, reduction, &probe))?;
    }
    Ok(())
}

fn assert_gradient_on(
    loss: &Loss,
    x: &ArrayD<f64>,
    y: &ArrayD<f64>,
    reduction: Reduction,
    probe: &impl Fn(usize) -> bool,
) -> Result<(), TestCaseError> {
    let out = loss
        .compute(x.view(), y.view(), reduction)
        .expect("loss is defined");
    for (i, analytic) in out.gradient.iter().enumerate() {
        if !probe(i) {
            continue;
        }
        let xi = x.iter().nth(i).copied().unwrap_or(0.0);
        let h = 1e-6 * xi.abs().max(1.0);
        let mut plus = x.clone();
        let mut minus = x.clone();
        if let (Some(p), Some(m)) = (plus.iter_mut().nth(i), minus.iter_mut().nth(i)) {
            *p += h;
            *m -= h;
        }
        let fd = (total(loss, &plus, y, reduction) - total(loss, &minus, y, reduction)) / (2.0 * h);
        prop_assert!(
            (analytic - fd).abs() <= TOLERANCE * analytic.abs().max(1.0),
            "{loss:?} {reduction:?} on {:?} at [{i}]: analytic {analytic}, finite difference {fd}",
            Isa::current()
        );
    }
    Ok(())
}

fn array(shape: &[usize], data: Vec<f64>) -> ArrayD<f64> {
    ArrayD::from_shape_vec(IxDyn(shape), data).expect("strategy sizes match")
}

/// (shape [n, m], n * m values in `range`) pairs for predictions and targets.
fn pair(
    range: std::ops::Range<f64>,
    target: std::ops::Range<f64>,
) -> impl Strategy<Value = (ArrayD<f64>, ArrayD<f64>)> {
    (1usize..4, 1usize..5).prop_flat_map(move |(n, m)| {
        (
            prop::collection::vec(range.clone(), n * m),
            prop::collection::vec(target.clone(), n * m),
        )
            .prop_map(move |(x, y)| (array(&[n, m], x), array(&[n, m], y)))
    })
}

fn reduction() -> impl Strategy<Value = Reduction> {
    prop::sample::select(Reduction::ALL.to_vec())
}

/// Binary targets as 0/1, or soft targets, at random.
fn targets01(y: &ArrayD<f64>, hard: bool) -> ArrayD<f64> {
    if hard {
        y.mapv(|v| if v < 0.5 { 0.0 } else { 1.0 })
    } else {
        y.clone()
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn regression_gradients_match_finite_differences(
        (x, y) in pair(-4.0..4.0, -4.0..4.0),
        r in reduction(),
        threshold in 0.1f64..3.0,
    ) {
        let d: Vec<f64> = x.iter().zip(y.iter()).map(|(a, b)| a - b).collect();
        let away = |i: usize, kink: f64| d.get(i).is_some_and(|d| (d.abs() - kink).abs() > 1e-3);
        assert_gradient(&Loss::L1, &x, &y, r, |i| away(i, 0.0))?;
        assert_gradient(&Loss::Mse, &x, &y, r, |_| true)?;
        let smooth = Loss::SmoothL1(SmoothL1::new(threshold).unwrap());
        assert_gradient(&smooth, &x, &y, r, |i| away(i, threshold) && away(i, 0.0))?;
        let huber = Loss::Huber(Huber::new(threshold).unwrap());
        assert_gradient(&huber, &x, &y, r, |i| away(i, threshold) && away(i, 0.0))?;
    }

    #[test]
    fn bce_gradients_match_finite_differences(
        (p, y) in pair(0.05..0.95, 0.0..1.0),
        x in pair(-6.0..6.0, 0.0..1.0),
        r in reduction(),
        hard in any::<bool>(),
        pos_weight in 0.2f64..4.0,
    ) {
        let y = targets01(&y, hard);
        let on_probs = Loss::Bce(Bce::new(false, Some(p.mapv(|v| v + 0.5)), None).unwrap());
        assert_gradient(&on_probs, &p, &y, r, |_| true)?;
        let (logits, yl) = (x.0, targets01(&x.1, hard));
        let pw = Some(ArrayD::from_elem(IxDyn(&[]), pos_weight));
        let on_logits = Loss::Bce(Bce::new(true, None, pw).unwrap());
        assert_gradient(&on_logits, &logits, &yl, r, |_| true)?;
    }

    #[test]
    fn focal_gradients_match_finite_differences(
        (x, y) in pair(-5.0..5.0, 0.0..1.0),
        (p, yp) in pair(0.05..0.95, 0.0..1.0),
        r in reduction(),
        hard in any::<bool>(),
        alpha in -0.5f64..1.0,
        gamma in prop::sample::select(vec![0.0, 0.5, 1.0, 2.0, 3.5]),
    ) {
        let on_logits = Loss::Focal(Focal::new(alpha, gamma, true).unwrap());
        assert_gradient(&on_logits, &x, &targets01(&y, hard), r, |_| true)?;
        let on_probs = Loss::Focal(Focal::new(alpha, gamma, false).unwrap());
        assert_gradient(&on_probs, &p, &targets01(&yp, hard), r, |_| true)?;
    }

    #[test]
    fn cross_entropy_gradients_match_finite_differences(
        n in 1usize..4,
        c in 2usize..5,
        seed in prop::collection::vec(-4.0f64..4.0, 16),
        probs in prop::collection::vec(0.05f64..0.95, 16),
        classes in prop::collection::vec(0usize..5, 4),
        r in reduction(),
        smoothing in prop::sample::select(vec![0.0, 0.1, 0.5]),
        weighted in any::<bool>(),
        from_probabilities in any::<bool>(),
        probability_targets in any::<bool>(),
    ) {
        let source = if from_probabilities { &probs } else { &seed };
        let x = array(&[n, c], source.iter().cycle().take(n * c).copied().collect());
        let y = if probability_targets {
            array(&[n, c], probs.iter().rev().cycle().take(n * c).copied().collect())
        } else {
            array(&[n], classes.iter().cycle().take(n).map(|k| (k % c) as f64).collect())
        };
        let weights = weighted.then(|| (0..c).map(|k| 0.5 + k as f64).collect());
        let ce = Loss::CrossEntropy(CrossEntropy::new(weights, smoothing, -100, from_probabilities).unwrap());
        assert_gradient(&ce, &x, &y, r, |_| true)?;
    }

    #[test]
    fn dice_and_iou_gradients_match_finite_differences(
        (x, y) in pair(-4.0..4.0, 0.0..1.0),
        (p, yp) in pair(0.0..1.0, 0.0..1.0),
        r in reduction(),
        hard in any::<bool>(),
        smooth in prop::sample::select(vec![0.0, 1e-5, 1.0]),
        squared in any::<bool>(),
    ) {
        let (y, yp) = (targets01(&y, hard), targets01(&yp, hard));
        for from_logits in [true, false] {
            let (input, target) = if from_logits { (&x, &y) } else { (&p, &yp) };
            // smooth 0 with an all-zero sample is 0/0 by definition: skip it
            let defined = Dice::new(smooth, squared, from_logits).unwrap();
            if Loss::Dice(defined).compute(input.view(), target.view(), r).is_err() {
                continue;
            }
            assert_gradient(&Loss::Dice(defined), input, target, r, |_| true)?;
            let iou = Loss::Iou(Iou::new(smooth, from_logits).unwrap());
            assert_gradient(&iou, input, target, r, |_| true)?;
        }
    }

    #[test]
    fn regularization_gradient_matches_finite_differences(
        w in prop::collection::vec(-3.0f64..3.0, 1..8),
        l1 in 0.0f64..2.0,
        l2 in 0.0f64..2.0,
    ) {
        let reg = Regularization::new(l1, l2).unwrap();
        let weights = array(&[w.len()], w.clone());
        let penalty = reg.penalty(&weights).unwrap();
        for (i, g) in penalty.gradient.iter().enumerate() {
            let wi = w.get(i).copied().unwrap_or(0.0);
            if wi.abs() < 1e-3 {
                continue;
            }
            let h = 1e-6;
            let mut plus = weights.clone();
            let mut minus = weights.clone();
            plus[[i]] += h;
            minus[[i]] -= h;
            let fd = (reg.penalty(&plus).unwrap().value - reg.penalty(&minus).unwrap().value) / (2.0 * h);
            prop_assert!((g - fd).abs() <= TOLERANCE * g.abs().max(1.0), "[{i}]: {g} vs {fd}");
        }
    }
}

// ------------------------------------------------------------ stability

fn vector(v: &[f64]) -> ArrayD<f64> {
    array(&[v.len()], v.to_vec())
}

fn items(value: LossValue) -> Vec<f64> {
    match value {
        LossValue::PerItem(a) => a.iter().copied().collect(),
        LossValue::Scalar(v) => vec![v],
    }
}

#[test]
fn bce_on_probabilities_exactly_zero_and_one_is_finite_and_clamped() {
    let bce = Loss::Bce(Bce::new(false, None, None).unwrap());
    let p = vector(&[0.0, 1.0, 0.0, 1.0]);
    let y = vector(&[1.0, 0.0, 0.0, 1.0]);
    let out = bce.compute(p.view(), y.view(), Reduction::None).unwrap();
    // log clamped at -100: a confidently wrong prediction costs exactly 100
    assert_eq!(items(out.loss), vec![100.0, 100.0, 0.0, 0.0]);
    let eps = 1e-12_f32 as f64;
    assert_eq!(
        out.gradient.iter().copied().collect::<Vec<_>>(),
        vec![-1.0 / eps, 1.0 / eps, 0.0, 0.0]
    );
}

#[test]
fn logits_of_plus_minus_1000_are_finite_for_every_logit_loss() {
    let x = vector(&[1000.0, -1000.0, 1000.0, -1000.0]);
    let y = vector(&[1.0, 0.0, 0.0, 1.0]);
    let losses = [
        Loss::Bce(Bce::new(true, None, None).unwrap()),
        Loss::Focal(Focal::new(0.25, 2.0, true).unwrap()),
        Loss::Dice(Dice::new(1.0, false, true).unwrap()),
        Loss::Iou(Iou::new(1.0, true).unwrap()),
    ];
    for loss in &losses {
        let out = loss.compute(x.view(), y.view(), Reduction::Sum).unwrap();
        assert!(out.loss.total().is_finite(), "{loss:?}");
        assert!(out.gradient.iter().all(|g| g.is_finite()), "{loss:?}");
    }
    // BCE with logits: right answers cost 0, wrong ones exactly |x|
    let bce = losses[0]
        .compute(x.view(), y.view(), Reduction::None)
        .unwrap();
    assert_eq!(items(bce.loss), vec![0.0, 0.0, 1000.0, 1000.0]);
    // dice on saturated sigmoids: p = [1, 0, 1, 0], y = [1, 0, 0, 1]:
    // 1 - (2 * 1 + 1) / (2 + 2 + 1)
    let dice = losses[2]
        .compute(x.view(), y.view(), Reduction::Sum)
        .unwrap();
    assert!((dice.loss.total() - 0.4).abs() < 1e-15);
}

#[test]
fn cross_entropy_with_logits_of_plus_minus_1000_is_exact() {
    let ce = Loss::CrossEntropy(CrossEntropy::new(None, 0.0, -100, false).unwrap());
    let x = array(&[2, 3], vec![1000.0, -1000.0, 0.0, -1000.0, 1000.0, 0.0]);
    let y = vector(&[1.0, 1.0]);
    let out = ce.compute(x.view(), y.view(), Reduction::None).unwrap();
    assert_eq!(items(out.loss), vec![2000.0, 0.0]);
    assert!(out.gradient.iter().all(|g| g.is_finite()));
}

#[test]
fn cross_entropy_on_probabilities_with_zeros_is_clamped_not_infinite() {
    let ce = Loss::CrossEntropy(CrossEntropy::new(None, 0.1, -100, true).unwrap());
    let p = array(&[2, 2], vec![0.0, 1.0, 1.0, 0.0]);
    let y = vector(&[0.0, 0.0]);
    let out = ce.compute(p.view(), y.view(), Reduction::Sum).unwrap();
    // sample 0: -(0.95 * -100 + 0.05 * 0); sample 1: -(0.95 * 0 + 0.05 * -100)
    assert!((out.loss.total() - (95.0 + 5.0)).abs() < 1e-12);
    assert!(out.gradient.iter().all(|g| g.is_finite()));
}
