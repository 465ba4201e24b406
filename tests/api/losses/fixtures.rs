//! Every loss x reduction x main parameter against PyTorch (float64): the
//! committed `tests/fixtures/losses_cases.json` was written by
//! `tests/fixtures/gen_losses.py` (torch 2.15, autograd for the gradients).
//!
//! Each case's request goes through the same path as `POST /loss/{name}`
//! after extraction (name lookup, parameter checks, core, serialization), so
//! aliases and defaults are covered too. Epsilon: |ours - torch| <=
//! 1e-9 * max(1, |torch|) for every loss, gradient, penalty and weight-gradient
//! value (relative for the large values, e.g. BCE's -1e12 at p = 0), on
//! each kernel version (`core::losses::kernels::Isa`) the CPU can run.

use evald::api::losses::{compute, LossRequest};
use evald::core::losses::kernels::{with_isa, Isa};
use evald::core::losses::lookup;
use serde_json::Value;

use crate::helpers::{fixture_cases, numbers_within, Tolerance};

const EPSILON: f64 = 1e-9;

/// Numbers and arrays within [`EPSILON`], relative above 1, shapes equal.
fn close(ours: &Value, torch: &Value, at: &str) -> Result<(), String> {
    numbers_within(ours, torch, Tolerance::Scaled(EPSILON), at)
}

/// Every case on every kernel version this CPU runs (the portable build and,
/// on x86-64 with AVX2 and FMA, the multiversioned one the service picks).
#[test]
fn every_fixture_case_matches_pytorch_to_1e_9() {
    let available = Isa::available();
    println!("kernel versions: {available:?}");
    for isa in available {
        with_isa(isa, || {
            assert_eq!(Isa::current(), isa);
            check_every_case(isa);
        });
    }
}

fn check_every_case(isa: Isa) {
    let cases = fixture_cases("losses_cases.json");
    assert!(
        cases.len() > 500,
        "expected the full fixture set, got {}",
        cases.len()
    );
    let mut failures = Vec::new();
    for case in &cases {
        let id = case["id"].as_str().unwrap_or("?");
        let name = case["loss"].as_str().unwrap_or("?");
        let spec = lookup(name).unwrap_or_else(|| panic!("{id}: unknown loss {name}"));
        let request: LossRequest = serde_json::from_value(case["request"].clone())
            .unwrap_or_else(|e| panic!("{id}: request does not parse: {e}"));
        let response = match compute(spec, request) {
            Ok(r) => serde_json::to_value(&r).expect("response serializes"),
            Err(e) => {
                failures.push(format!("{id}: {e}"));
                continue;
            }
        };
        let expected = &case["expected"];
        for key in ["loss", "gradient", "penalty", "weights_gradient"] {
            if expected.get(key).is_some() {
                if let Err(e) = close(&response[key], &expected[key], key) {
                    failures.push(format!("{id}: {e}"));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases differ from PyTorch on {isa:?}:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn fixtures_cover_every_loss_and_reduction() {
    let cases = fixture_cases("losses_cases.json");
    for spec in evald::core::losses::LOSSES {
        for reduction in ["mean", "sum", "none"] {
            let covered = cases.iter().any(|c| {
                lookup(c["loss"].as_str().unwrap_or("")).map(|s| s.name) == Some(spec.name)
                    && c["request"]["reduction"] == reduction
            });
            assert!(
                covered,
                "no fixture for {} with reduction {reduction}",
                spec.name
            );
        }
    }
}
