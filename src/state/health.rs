//! The health of the data directory: whether the last snapshot and the log
//! writes succeeded (what `/readyz` reports) and their counters (what
//! `/internal/metrics` shows).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// Shared by the log's syncer and the snapshot task.
#[derive(Debug, Default)]
pub struct Health {
    snapshot_error: Mutex<Option<String>>,
    log_error: Mutex<Option<String>>,
    counters: [AtomicU64; Counter::ALL.len()],
}

/// A counter of [`Health`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counter {
    SnapshotsWritten,
    SnapshotsSkipped,
    SnapshotFailures,
    LogFrames,
    LogRecords,
    LogBytes,
    LogFailures,
}

impl Counter {
    pub const ALL: [Counter; 7] = [
        Counter::SnapshotsWritten,
        Counter::SnapshotsSkipped,
        Counter::SnapshotFailures,
        Counter::LogFrames,
        Counter::LogRecords,
        Counter::LogBytes,
        Counter::LogFailures,
    ];

    /// The Prometheus name and help text.
    pub fn describe(self) -> (&'static str, &'static str) {
        match self {
            Counter::SnapshotsWritten => ("evald_snapshots_written_total", "Snapshots written."),
            Counter::SnapshotsSkipped => (
                "evald_snapshots_skipped_total",
                "Periodic snapshots skipped because nothing changed.",
            ),
            Counter::SnapshotFailures => {
                ("evald_snapshot_failures_total", "Snapshots that failed.")
            }
            Counter::LogFrames => (
                "evald_wal_fsyncs_total",
                "Write-ahead log frames written and fsynced (group commits).",
            ),
            Counter::LogRecords => (
                "evald_wal_records_total",
                "Write-ahead log records written.",
            ),
            Counter::LogBytes => ("evald_wal_bytes_total", "Write-ahead log bytes written."),
            Counter::LogFailures => (
                "evald_wal_failures_total",
                "Write-ahead log writes or fsyncs that failed.",
            ),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Health {
    fn add(&self, counter: Counter, n: u64) {
        if let Some(c) = self.counters.get(counter as usize) {
            c.fetch_add(n, Ordering::Relaxed);
        }
    }

    /// The value of `counter`.
    pub fn get(&self, counter: Counter) -> u64 {
        self.counters
            .get(counter as usize)
            .map_or(0, |c| c.load(Ordering::Relaxed))
    }

    /// Records the outcome of a snapshot: a failure makes the service not
    /// ready until one succeeds.
    pub fn snapshot_done(&self, result: Result<(), String>) {
        let counter = match &result {
            Ok(()) => Counter::SnapshotsWritten,
            Err(_) => Counter::SnapshotFailures,
        };
        self.add(counter, 1);
        *lock(&self.snapshot_error) = result.err();
    }

    /// Counts a snapshot skipped because nothing changed.
    pub fn snapshot_skipped(&self) {
        self.add(Counter::SnapshotsSkipped, 1);
    }

    /// Counts one frame of `records` written and fsynced.
    pub fn log_written(&self, records: usize, bytes: u64) {
        self.add(Counter::LogFrames, 1);
        self.add(Counter::LogRecords, records as u64);
        self.add(Counter::LogBytes, bytes);
    }

    /// Counts a failed log write.
    pub fn log_failed(&self) {
        self.add(Counter::LogFailures, 1);
    }

    /// Sets (or clears) why the log refuses appends.
    pub fn set_log_error(&self, why: Option<String>) {
        *lock(&self.log_error) = why;
    }

    /// Why the log refuses appends, if it does.
    pub fn log_error(&self) -> Option<String> {
        lock(&self.log_error).clone()
    }

    /// What keeps the service from being ready: empty when ready.
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(e) = lock(&self.snapshot_error).as_ref() {
            out.push(format!("the last snapshot failed: {e}"));
        }
        if let Some(e) = self.log_error() {
            out.push(format!("the write-ahead log is unavailable: {e}"));
        }
        out
    }
}
