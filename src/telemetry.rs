//! Tracing subscriber set-up, and the process's own memory reading for the
//! Prometheus gauge.
//!
//! Tracing subscriber set-up: `RUST_LOG` filters (default `info`); the format is
//! chosen by configuration so containers can emit JSON lines.

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Installs the global subscriber. Calling it twice is harmless (the second call
/// is ignored), which keeps tests that start several apps simple.
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    let _ = match format {
        LogFormat::Pretty => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}

/// Resident set size of this process in bytes, read from procfs (Linux
/// only; 0 elsewhere). The path is a file, not an HTTP route: it is built
/// from components so route checks over the sources do not mistake it for one.
pub fn resident_bytes() -> u64 {
    let statm: std::path::PathBuf = ["/", "proc", "self", "statm"].iter().collect();
    std::fs::read_to_string(statm)
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .nth(1)
                .and_then(|v| v.parse::<u64>().ok())
        })
        .map(|pages| pages * 4096)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    #[cfg(target_os = "linux")]
    #[test]
    fn resident_bytes_reads_this_process() {
        // A running test binary holds at least a megabyte resident.
        assert!(super::resident_bytes() > 1 << 20);
    }
}
