//! Convergence behaviour of the optimizers on the built-in objectives, through
//! the core's `run` (no HTTP). Tolerances are stated per test.

use evald::core::optim::objectives::{Logistic, Objective, Quadratic, Rosenbrock};
use evald::core::optim::run::{run, Trace};
use evald::core::optim::{Hyperparameters, Optimizer, OptimizerKind};
use ndarray::Array2;

fn optimizer(kind: OptimizerKind, h: Hyperparameters) -> Optimizer {
    Optimizer::new(kind, &h).expect("valid hyperparameters")
}

/// First step index whose loss is below `tolerance`.
fn steps_to(trace: &Trace, tolerance: f64) -> Option<usize> {
    trace.losses.iter().position(|l| *l < tolerance)
}

fn ill_conditioned() -> Objective {
    Objective::Quadratic(Quadratic::new(2, 100.0).expect("valid quadratic"))
}

#[test]
fn momentum_reaches_the_tolerance_in_fewer_steps_than_plain_gradient_descent() {
    // kappa = 100: the stable step of plain GD is limited by lambda_max = 100,
    // so the flat direction (lambda 1) creeps; heavy-ball momentum
    // accelerates it. Tolerance 1e-6 on the loss (minimum 0).
    let objective = ill_conditioned();
    let start = objective.default_start();
    let lr = Some(0.015);
    let plain = run(
        &optimizer(
            OptimizerKind::Sgd,
            Hyperparameters {
                lr,
                ..Default::default()
            },
        ),
        &objective,
        start.clone(),
        3000,
    )
    .expect("run");
    let heavy = run(
        &optimizer(
            OptimizerKind::Sgd,
            Hyperparameters {
                lr,
                momentum: Some(0.8),
                ..Default::default()
            },
        ),
        &objective,
        start,
        3000,
    )
    .expect("run");
    let plain_steps = steps_to(&plain, 1e-6).expect("plain GD converges within 3000 steps");
    let momentum_steps = steps_to(&heavy, 1e-6).expect("momentum converges within 3000 steps");
    assert!(
        momentum_steps * 2 < plain_steps,
        "momentum took {momentum_steps} steps, plain GD {plain_steps}"
    );
}

#[test]
fn plain_gradient_descent_zig_zags_along_the_steep_axis_of_an_ill_conditioned_quadratic() {
    // lr 0.015 x lambda_max 100 = 1.5 > 1: the steep coordinate overshoots
    // and flips sign every step while shrinking.
    let objective = ill_conditioned();
    let trace = run(
        &optimizer(
            OptimizerKind::Sgd,
            Hyperparameters {
                lr: Some(0.015),
                ..Default::default()
            },
        ),
        &objective,
        objective.default_start(),
        10,
    )
    .expect("run");
    let steep: Vec<f64> = trace.path.iter().map(|p| p[1]).collect();
    for pair in steep.windows(2) {
        assert!(pair[0] * pair[1] < 0.0, "no sign flip in {steep:?}");
    }
}

#[test]
fn adam_converges_on_rosenbrock() {
    // From the classic start (-1.2, 1) to the minimum (1, 1): within 1e-3 in
    // each coordinate after 5000 steps of lr 0.02.
    let objective = Objective::Rosenbrock(Rosenbrock::new(2).expect("valid"));
    let trace = run(
        &optimizer(
            OptimizerKind::Adam,
            Hyperparameters {
                lr: Some(0.02),
                ..Default::default()
            },
        ),
        &objective,
        objective.default_start(),
        5000,
    )
    .expect("run");
    let end = trace.path.last().expect("path");
    assert!(trace.diverged_at_step.is_none());
    assert!(
        (end[0] - 1.0).abs() < 1e-3 && (end[1] - 1.0).abs() < 1e-3,
        "ended at {end:?}, loss {:?}",
        trace.losses.last()
    );
}

#[test]
fn every_optimizer_lowers_the_quadratic_loss() {
    let objective = Objective::Quadratic(Quadratic::new(5, 10.0).expect("valid"));
    for kind in OptimizerKind::ALL {
        let lr = if kind == OptimizerKind::Adadelta {
            1.0
        } else {
            0.05
        };
        let trace = run(
            &optimizer(
                kind,
                Hyperparameters {
                    lr: Some(lr),
                    ..Default::default()
                },
            ),
            &objective,
            objective.default_start(),
            200,
        )
        .expect("run");
        let (first, last) = (trace.losses[0], *trace.losses.last().expect("losses"));
        assert!(last < 0.5 * first, "{kind:?}: loss {first} -> {last}");
    }
}

/// Two Gaussian-ish clusters from a fixed arithmetic sequence (no RNG needed).
fn two_clusters(n: usize) -> (Array2<f64>, Vec<f64>) {
    let features = Array2::from_shape_fn((n, 2), |(i, j)| {
        let y = (i % 2) as f64;
        let jitter = ((i * 7 + j * 13) % 11) as f64 / 11.0 - 0.5;
        (2.0 * y - 1.0) * (1.0 + j as f64 * 0.5) + jitter
    });
    let labels = (0..n).map(|i| (i % 2) as f64).collect();
    (features, labels)
}

fn logistic(batch_size: usize, seed: u64) -> Objective {
    let (features, labels) = two_clusters(40);
    Objective::Logistic(
        Logistic::new(features, labels, true, (0.0, 0.01), batch_size, seed).expect("valid"),
    )
}

#[test]
fn logistic_loss_decreases_for_sgd_mini_batch_and_full_batch() {
    let sgd = optimizer(
        OptimizerKind::Sgd,
        Hyperparameters {
            lr: Some(0.1),
            ..Default::default()
        },
    );
    for batch_size in [1, 8, 40] {
        let objective = logistic(batch_size, 3);
        let trace = run(&sgd, &objective, objective.default_start(), 200).expect("run");
        let (first, last) = (trace.losses[0], *trace.losses.last().expect("losses"));
        assert!(
            (first - std::f64::consts::LN_2).abs() < 1e-12,
            "loss at w = 0 is ln 2"
        );
        assert!(last < 0.5 * first, "batch {batch_size}: {first} -> {last}");
    }
}

#[test]
fn full_batch_gradient_descent_decreases_the_logistic_loss_at_every_step() {
    // Small lr on a smooth convex loss: monotone descent (up to 1e-15 noise).
    let sgd = optimizer(
        OptimizerKind::Sgd,
        Hyperparameters {
            lr: Some(0.1),
            ..Default::default()
        },
    );
    let objective = logistic(40, 0);
    let trace = run(&sgd, &objective, objective.default_start(), 100).expect("run");
    for (k, pair) in trace.losses.windows(2).enumerate() {
        assert!(
            pair[1] <= pair[0] + 1e-15,
            "loss rose at step {}: {pair:?}",
            k + 1
        );
    }
}

#[test]
fn mini_batches_are_reproducible_with_the_same_seed_and_differ_with_another() {
    let sgd = optimizer(
        OptimizerKind::Sgd,
        Hyperparameters {
            lr: Some(0.1),
            ..Default::default()
        },
    );
    let a = run(&sgd, &logistic(4, 7), vec![0.0; 3], 50).expect("run");
    let b = run(&sgd, &logistic(4, 7), vec![0.0; 3], 50).expect("run");
    let c = run(&sgd, &logistic(4, 8), vec![0.0; 3], 50).expect("run");
    assert_eq!(a, b);
    assert_ne!(a.path, c.path);
}

#[test]
fn full_batch_ignores_the_seed() {
    let sgd = optimizer(
        OptimizerKind::Sgd,
        Hyperparameters {
            lr: Some(0.1),
            ..Default::default()
        },
    );
    let a = run(&sgd, &logistic(40, 1), vec![0.0; 3], 20).expect("run");
    let b = run(&sgd, &logistic(40, 2), vec![0.0; 3], 20).expect("run");
    assert_eq!(a, b);
}

#[test]
fn a_diverging_run_stops_before_any_non_finite_value() {
    // lr 1.5 on Rosenbrock blows up within a few steps.
    let objective = Objective::Rosenbrock(Rosenbrock::new(2).expect("valid"));
    let sgd = optimizer(
        OptimizerKind::Sgd,
        Hyperparameters {
            lr: Some(1.5),
            ..Default::default()
        },
    );
    let trace = run(&sgd, &objective, objective.default_start(), 1000).expect("run");
    let at = trace.diverged_at_step.expect("diverges");
    assert_eq!(trace.steps_taken(), at - 1);
    assert!(trace.losses.iter().all(|l| l.is_finite()));
    assert!(trace.path.iter().flatten().all(|v| v.is_finite()));
}
