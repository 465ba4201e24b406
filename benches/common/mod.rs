//! Timing helpers shared by the benches.

use std::hint::black_box;
use std::time::{Duration, Instant};

/// Runs `f` `iters` times and returns the bench thread's on-CPU time for
/// it (wall time where the kernel gives no schedstat), so other load on a
/// shared machine does not inflate the figure. Only for single-threaded
/// work: time spent on other threads is not counted.
pub fn on_cpu_time<T>(iters: u64, mut f: impl FnMut() -> T) -> Duration {
    let wall = Instant::now();
    let start = thread_cpu_ns();
    for _ in 0..iters {
        black_box(f());
    }
    match (start, thread_cpu_ns()) {
        (Some(a), Some(b)) => Duration::from_nanos(b.saturating_sub(a)),
        _ => wall.elapsed(),
    }
}

/// Time the calling thread has spent on a CPU, in nanoseconds: the first
/// field of Linux's `/proc/thread-self/schedstat`. None elsewhere (the
/// benches then fall back to wall time).
fn thread_cpu_ns() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    stat.split_whitespace().next()?.parse().ok()
}
