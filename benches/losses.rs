//! Criterion benches for losses (filled in by its resource).

fn main() {}
