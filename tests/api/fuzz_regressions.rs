//! Inputs found by the fuzz targets (`fuzz/`, README "Fuzzing"), replayed
//! through the very oracle each target calls (`evald::fuzzing`), and the
//! committed seed corpora, so the oracles run in every `cargo test`, not
//! only under the fuzzer.

use std::path::Path;

use evald::fuzzing::{check_csv, check_metrics_body, check_ndjson, check_snapshot, check_wal};

type Oracle = fn(&[u8]) -> Result<(), String>;

/// Each fuzz target and its oracle.
const TARGETS: [(&str, Oracle); 5] = [
    ("metrics_body", check_metrics_body),
    ("ndjson", check_ndjson),
    ("csv", check_csv),
    ("snapshot", check_snapshot),
    ("wal", check_wal),
];

#[test]
fn every_seed_of_every_target_passes_its_oracle() {
    for (target, oracle) in TARGETS {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fuzz/corpus")
            .join(target);
        let mut seeds: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|entry| entry.map(|e| e.path()))
            .collect::<Result<_, _>>()
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        seeds.sort();
        assert!(!seeds.is_empty(), "no seeds in {}", dir.display());
        for seed in seeds {
            let bytes = std::fs::read(&seed).unwrap_or_else(|e| panic!("{}: {e}", seed.display()));
            assert_eq!(oracle(&bytes), Ok(()), "{}", seed.display());
        }
    }
}
