//! The optimizer core against torch.optim: every fixture case of
//! `tests/fixtures/optim_cases.json` (written by `gen_optim.py` with torch
//! 2.15, float64) is replayed step by step through `Optimizer::step`, feeding
//! the state back, and every parameter after every step and every final state
//! buffer must agree to 1e-9 (absolute, values are O(1)).

use evald::core::optim::{Hyperparameters, OptimError, Optimizer, OptimizerKind, State};
use serde_json::Value;

use crate::helpers::{assert_close, fixture_cases, floats, Tolerance};

/// 1e-9 absolute: the values are O(1).
const EPSILON: Tolerance = Tolerance::Absolute(1e-9);

fn cases() -> Vec<Value> {
    fixture_cases("optim_cases.json")
}

fn hyperparameters(v: &Value) -> Hyperparameters {
    let num = |k: &str| v.get(k).and_then(Value::as_f64);
    let flag = |k: &str| v.get(k).and_then(Value::as_bool);
    Hyperparameters {
        lr: num("lr"),
        momentum: num("momentum"),
        dampening: num("dampening"),
        nesterov: flag("nesterov"),
        weight_decay: num("weight_decay"),
        maximize: flag("maximize"),
        lr_decay: num("lr_decay"),
        initial_accumulator_value: num("initial_accumulator_value"),
        eps: num("eps"),
        alpha: num("alpha"),
        centered: flag("centered"),
        rho: num("rho"),
        betas: v.get("betas").map(|b| {
            let b = floats(b);
            (b[0], b[1])
        }),
        amsgrad: flag("amsgrad"),
    }
}

#[test]
fn every_optimizer_and_option_matches_torch_over_chained_steps() {
    let cases = cases();
    assert!(cases.len() >= 20, "expected the full fixture set");
    for case in &cases {
        let name = case["optimizer"].as_str().expect("optimizer");
        let label = format!("{name} {}", case["label"].as_str().unwrap_or(""));
        let kind = OptimizerKind::from_name(name).expect("known optimizer");
        let optimizer = Optimizer::new(kind, &hyperparameters(&case["hyperparameters"]))
            .unwrap_or_else(|e| panic!("{label}: {e}"));
        let mut params = floats(&case["params"]);
        let mut state = optimizer.init_state(params.len());
        for (k, (grads, after)) in super::fixture_steps(case).enumerate() {
            optimizer
                .step(&mut params, &floats(grads), &mut state)
                .unwrap_or_else(|e| panic!("{label} step {k}: {e}"));
            assert_close(
                &format!("{label}: params after step {}", k + 1),
                &params,
                &floats(after),
                EPSILON,
            );
        }
        let torch_state = case["expected_state"].as_object().expect("state");
        assert_eq!(
            Some(state.step()),
            torch_state["step"].as_u64(),
            "{label}: step"
        );
        let ours = state.buffers();
        assert_eq!(
            ours.len() + 1,
            torch_state.len(),
            "{label}: buffers {:?}",
            ours.iter().map(|b| b.0).collect::<Vec<_>>()
        );
        for (buffer, values) in ours {
            let torch_values = torch_state
                .get(buffer)
                .unwrap_or_else(|| panic!("{label}: torch has no {buffer}"));
            assert_close(
                &format!("{label}: {buffer}"),
                values,
                &floats(torch_values),
                EPSILON,
            );
        }
    }
}

#[test]
fn a_failed_step_changes_neither_params_nor_state() {
    let optimizer = Optimizer::new(
        OptimizerKind::Sgd,
        &Hyperparameters {
            lr: Some(4.0),
            momentum: Some(0.9),
            ..Default::default()
        },
    )
    .expect("valid");
    let mut params = vec![1.0, 2.0];
    let mut state = optimizer.init_state(2);
    optimizer
        .step(&mut params, &[0.5, 0.5], &mut state)
        .expect("finite step");
    let (before_params, before_state) = (params.clone(), state.clone());
    let err = optimizer
        .step(&mut params, &[f64::MAX, f64::MAX], &mut state)
        .unwrap_err();
    assert!(matches!(err, OptimError::NonFinite { .. }), "{err}");
    assert_eq!(params, before_params);
    assert_eq!(state, before_state);
}

#[test]
fn state_of_another_optimizer_is_refused() {
    let adam = Optimizer::new(OptimizerKind::Adam, &Hyperparameters::default()).expect("valid");
    let sgd = Optimizer::new(OptimizerKind::Sgd, &Hyperparameters::default()).expect("valid");
    let mut state: State = sgd.init_state(1);
    let err = adam.step(&mut vec![1.0], &[1.0], &mut state).unwrap_err();
    assert_eq!(
        err,
        OptimError::StateMismatch {
            expected: "adam",
            found: "sgd"
        }
    );
}

#[test]
fn hyperparameters_an_optimizer_does_not_take_are_refused() {
    let h = Hyperparameters {
        momentum: Some(0.9),
        ..Default::default()
    };
    let err = Optimizer::new(OptimizerKind::Adam, &h).unwrap_err();
    assert!(
        matches!(
            err,
            OptimError::UnknownHyperparameter {
                name: "momentum",
                optimizer: "adam",
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn out_of_range_hyperparameters_are_refused_by_name() {
    let table: Vec<(OptimizerKind, Hyperparameters, &str)> = vec![
        (
            OptimizerKind::Sgd,
            Hyperparameters {
                lr: Some(0.0),
                ..Default::default()
            },
            "lr",
        ),
        (
            OptimizerKind::Sgd,
            Hyperparameters {
                momentum: Some(-0.1),
                ..Default::default()
            },
            "momentum",
        ),
        (
            OptimizerKind::Adam,
            Hyperparameters {
                betas: Some((1.0, 0.9)),
                ..Default::default()
            },
            "betas[0]",
        ),
        (
            OptimizerKind::AdamW,
            Hyperparameters {
                betas: Some((0.9, -0.1)),
                ..Default::default()
            },
            "betas[1]",
        ),
        (
            OptimizerKind::Adam,
            Hyperparameters {
                eps: Some(0.0),
                ..Default::default()
            },
            "eps",
        ),
        (
            OptimizerKind::Rmsprop,
            Hyperparameters {
                alpha: Some(1.5),
                ..Default::default()
            },
            "alpha",
        ),
        (
            OptimizerKind::Adadelta,
            Hyperparameters {
                rho: Some(-0.5),
                ..Default::default()
            },
            "rho",
        ),
        (
            OptimizerKind::Adagrad,
            Hyperparameters {
                lr_decay: Some(-1.0),
                ..Default::default()
            },
            "lr_decay",
        ),
        (
            OptimizerKind::Adagrad,
            Hyperparameters {
                weight_decay: Some(f64::INFINITY),
                ..Default::default()
            },
            "weight_decay",
        ),
    ];
    for (kind, h, field) in table {
        match Optimizer::new(kind, &h) {
            Err(OptimError::InvalidHyperparameter { name, .. }) => {
                assert_eq!(name, field, "{kind:?}")
            }
            other => panic!("{kind:?} {field}: expected InvalidHyperparameter, got {other:?}"),
        }
    }
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    fn vectors() -> impl Strategy<Value = (Vec<f64>, Vec<f64>)> {
        (1usize..16).prop_flat_map(|n| {
            (
                proptest::collection::vec(-100.0f64..100.0, n),
                proptest::collection::vec(-100.0f64..100.0, n),
            )
        })
    }

    proptest! {
        /// Adam's first bias-corrected step is lr * g / (|g| + eps): no
        /// coordinate moves by more than lr, whatever the gradient's scale.
        #[test]
        fn adams_first_step_moves_each_coordinate_by_at_most_lr((params, grads) in vectors(), lr in 1e-4f64..1.0) {
            let adam = Optimizer::new(OptimizerKind::Adam, &Hyperparameters { lr: Some(lr), ..Default::default() }).unwrap();
            let mut moved = params.clone();
            let mut state = adam.init_state(params.len());
            adam.step(&mut moved, &grads, &mut state).unwrap();
            for (before, after) in params.iter().zip(&moved) {
                prop_assert!((after - before).abs() <= lr * (1.0 + 1e-12));
            }
        }

        /// Plain SGD is p - lr * g, and maximize is descent on -g.
        #[test]
        fn plain_sgd_is_p_minus_lr_g_and_maximize_flips_it((params, grads) in vectors(), lr in 1e-4f64..1.0) {
            let h = Hyperparameters { lr: Some(lr), ..Default::default() };
            let sgd = Optimizer::new(OptimizerKind::Sgd, &h).unwrap();
            let up = Optimizer::new(OptimizerKind::Sgd, &Hyperparameters { maximize: Some(true), ..h }).unwrap();
            let (mut down_p, mut up_p) = (params.clone(), params.clone());
            let (mut s1, mut s2) = (sgd.init_state(params.len()), up.init_state(params.len()));
            sgd.step(&mut down_p, &grads, &mut s1).unwrap();
            up.step(&mut up_p, &grads, &mut s2).unwrap();
            for i in 0..params.len() {
                prop_assert_eq!(down_p[i], params[i] + -lr * grads[i]);
                prop_assert_eq!(up_p[i], params[i] + -lr * -grads[i]);
            }
        }
    }
}
