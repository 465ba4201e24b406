//! Criterion benches for nn (filled in by its resource).

fn main() {}
