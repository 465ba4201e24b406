//! Criterion benches for metrics (filled in by its resource).

fn main() {}
