#![no_main]
//! See `evald::fuzzing::check_metrics_body`.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(disagreement) = evald::fuzzing::check_metrics_body(data) {
        panic!("{disagreement}");
    }
});
