#![no_main]
//! See `evald::fuzzing::check_wal`.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(disagreement) = evald::fuzzing::check_wal(data) {
        panic!("{disagreement}");
    }
});
