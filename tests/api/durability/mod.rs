//! Durability of the real binary (README, "Durability"): snapshots, the
//! write-ahead log under `kill -9`, and the ordered shutdown. Each test
//! spawns `evald` on its own temporary `--data-dir` and stops what it starts.

mod process;
mod shutdown;
mod snapshot;
mod wal;
