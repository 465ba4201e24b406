//! Gradient property tests: every analytic derivative / vector-Jacobian
//! product of `evald::core::activation` against central finite differences,
//! `(f(x + h) - f(x - h)) / 2h` with h = 1e-6, away from kinks.
//!
//! Epsilon: 1e-6 absolute + 1e-6 relative (the finite difference itself is
//! only accurate to ~h² f''' + ulp/h ≈ 1e-10..1e-7).

use evald::core::activation::{
    log_softmax, maxout, prelu, softmax, Elementwise, GeluApproximation, HardSigmoidVariant,
};
use ndarray::{ArrayD, IxDyn};
use proptest::prelude::*;

const H: f64 = 1e-6;
const TOL: f64 = 1e-6;

fn close(analytic: f64, numeric: f64) -> bool {
    (analytic - numeric).abs() <= TOL * (1.0 + numeric.abs())
}

/// `(f(x + h e_j) - f(x - h e_j)) / 2h`: the central difference of `f` in
/// coordinate `j` (in memory order) of `x`.
fn central_difference(x: &ArrayD<f64>, j: usize, f: impl Fn(&ArrayD<f64>) -> f64) -> f64 {
    let mut plus = x.clone();
    let mut minus = x.clone();
    plus.as_slice_mut().unwrap()[j] += H;
    minus.as_slice_mut().unwrap()[j] -= H;
    (f(&plus) - f(&minus)) / (2.0 * H)
}

fn all_elementwise() -> Vec<(Elementwise, &'static [f64])> {
    vec![
        (Elementwise::Sigmoid, &[]),
        (
            Elementwise::HardSigmoid(HardSigmoidVariant::Pytorch),
            &[-3.0, 3.0],
        ),
        (
            Elementwise::HardSigmoid(HardSigmoidVariant::Keras2),
            &[-2.5, 2.5],
        ),
        (Elementwise::Tanh, &[]),
        (Elementwise::Relu, &[0.0]),
        (Elementwise::Relu6, &[0.0, 6.0]),
        (
            Elementwise::LeakyRelu {
                negative_slope: 0.07,
            },
            &[0.0],
        ),
        (Elementwise::Elu { alpha: 1.7 }, &[0.0]),
        (Elementwise::Gelu(GeluApproximation::None), &[]),
        (Elementwise::Gelu(GeluApproximation::Tanh), &[]),
        (Elementwise::Swish { beta: 1.0 }, &[]),
        (Elementwise::Swish { beta: -2.5 }, &[]),
        (Elementwise::HardSwish, &[-3.0, 3.0]),
    ]
}

proptest! {
    #[test]
    fn elementwise_derivatives_match_finite_differences(x in -12.0f64..12.0) {
        for (act, kinks) in all_elementwise() {
            if kinks.iter().any(|k| (x - k).abs() < 1e-3) {
                continue;
            }
            let (_, d) = act.eval(x);
            let numeric = (act.eval(x + H).0 - act.eval(x - H).0) / (2.0 * H);
            prop_assert!(close(d, numeric), "{act:?} at {x}: analytic {d}, numeric {numeric}");
        }
    }

    #[test]
    fn apply_agrees_with_eval_elementwise(xs in prop::collection::vec(-30.0f64..30.0, 1..40)) {
        let input = ArrayD::from_shape_vec(IxDyn(&[xs.len()]), xs.clone()).unwrap();
        for (act, _) in all_elementwise() {
            let r = act.apply(input.view()).unwrap();
            for (i, &x) in xs.iter().enumerate() {
                prop_assert_eq!((r.output[[i]], r.gradient[[i]]), act.eval(x));
            }
        }
    }

    #[test]
    fn softmax_and_log_softmax_vjps_match_finite_differences(
        xs in prop::collection::vec(-5.0f64..5.0, 12),
        gs in prop::collection::vec(-2.0f64..2.0, 12),
        dim in -2i64..2,
    ) {
        let x = ArrayD::from_shape_vec(IxDyn(&[3, 4]), xs).unwrap();
        let g = ArrayD::from_shape_vec(IxDyn(&[3, 4]), gs).unwrap();
        type F = fn(ndarray::ArrayViewD<'_, f64>, i64, Option<ndarray::ArrayViewD<'_, f64>>)
            -> Result<evald::core::activation::Activated, evald::core::activation::ActivationError>;
        for (name, f) in [("softmax", softmax as F), ("log_softmax", log_softmax as F)] {
            let r = f(x.view(), dim, Some(g.view())).unwrap();
            // L(x) = Σ g ⊙ y(x); the VJP is ∂L/∂x.
            let loss = |x: &ArrayD<f64>| (f(x.view(), dim, None).unwrap().output * &g).sum();
            for j in 0..x.len() {
                let numeric = central_difference(&x, j, loss);
                let analytic = r.gradient.as_slice().unwrap()[j];
                prop_assert!(close(analytic, numeric), "{name} dim {dim} at {j}: {analytic} vs {numeric}");
            }
        }
    }

    #[test]
    fn maxout_vjp_matches_finite_differences_without_ties(
        xs in prop::collection::vec(-5.0f64..5.0, 24),
        gs in prop::collection::vec(-2.0f64..2.0, 8),
    ) {
        // A near-tie would let the finite difference straddle the switch.
        let distinct = xs.iter().enumerate().all(|(i, a)| xs[i + 1..].iter().all(|b| (a - b).abs() > 1e-4));
        prop_assume!(distinct);
        let x = ArrayD::from_shape_vec(IxDyn(&[2, 6, 2]), xs).unwrap();
        let g = ArrayD::from_shape_vec(IxDyn(&[2, 2, 2]), gs).unwrap();
        let r = maxout(x.view(), 3, Some(g.view())).unwrap();
        let loss = |x: &ArrayD<f64>| (maxout(x.view(), 3, None).unwrap().output * &g).sum();
        for j in 0..x.len() {
            let numeric = central_difference(&x, j, loss);
            let analytic = r.gradient.as_slice().unwrap()[j];
            prop_assert!(close(analytic, numeric), "maxout at {j}: {analytic} vs {numeric}");
        }
    }

    #[test]
    fn prelu_gradients_match_finite_differences(
        xs in prop::collection::vec(-5.0f64..5.0, 12),
        ws in prop::collection::vec(-1.0f64..1.0, 3),
    ) {
        prop_assume!(xs.iter().all(|x| x.abs() > 1e-3));
        let x = ArrayD::from_shape_vec(IxDyn(&[2, 3, 2]), xs).unwrap();
        let r = prelu(x.view(), &ws).unwrap();
        let total = |w: &[f64]| prelu(x.view(), w).unwrap().activated.output.sum();
        for c in 0..3 {
            let mut plus = ws.clone();
            let mut minus = ws.clone();
            plus[c] += H;
            minus[c] -= H;
            let numeric = (total(&plus) - total(&minus)) / (2.0 * H);
            prop_assert!(close(r.weight_gradient[c], numeric), "weight {c}");
        }
        for j in 0..x.len() {
            let numeric = central_difference(&x, j, |x| prelu(x.view(), &ws).unwrap().activated.output.sum());
            prop_assert!(close(r.activated.gradient.as_slice().unwrap()[j], numeric), "input {j}");
        }
    }
}
