//! Background work on the store: restore at start, periodic snapshots, the
//! final snapshot on graceful shutdown, and TTL purge of idle streams.
//!
//! Snapshots and purges run on the blocking pool: they take std locks and
//! write files. The tasks hold only an `Arc` of the store and end with the
//! runtime.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use super::snapshot::{self, SnapshotError};
use super::store::StreamStore;

/// Loads the snapshot in `dir` into `store`. A missing file is a first start.
///
/// # Errors
/// A corrupt, truncated, foreign or unknown-version snapshot is refused: the
/// service does not start (rather than start empty and later overwrite the
/// only copy of the data). The operator moves the file aside to start empty.
pub fn restore(store: &dyn StreamStore, dir: &Path) -> Result<usize, SnapshotError> {
    match snapshot::read(dir)? {
        Some(streams) => {
            let n = streams.len();
            store.import(streams);
            tracing::info!(path = %snapshot::path_in(dir).display(), streams = n, "restored stream snapshot");
            Ok(n)
        }
        None => {
            tracing::info!(dir = %dir.display(), "no stream snapshot yet; starting empty");
            Ok(0)
        }
    }
}

/// Writes one snapshot on the blocking pool, logging the outcome.
pub async fn snapshot_now(store: Arc<dyn StreamStore>, dir: PathBuf) -> std::io::Result<()> {
    let started = std::time::Instant::now();
    let result = tokio::task::spawn_blocking(move || snapshot::write(store.as_ref(), &dir))
        .await
        .map_err(std::io::Error::other)?;
    match result {
        Ok(stats) => {
            tracing::info!(
                streams = stats.streams,
                bytes = stats.bytes,
                millis = started.elapsed().as_millis() as u64,
                "wrote stream snapshot"
            );
            Ok(())
        }
        Err(e) => {
            tracing::error!(error = %e, "could not write stream snapshot; the previous one is kept");
            Err(e)
        }
    }
}

/// Snapshots every `interval` until the runtime stops.
pub fn spawn_snapshots(store: Arc<dyn StreamStore>, dir: PathBuf, interval: Duration) {
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(interval.max(Duration::from_secs(1)));
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticker.tick().await; // the first tick is immediate; nothing to save yet
        loop {
            ticker.tick().await;
            let _ = snapshot_now(store.clone(), dir.clone()).await;
        }
    });
}

/// Removes streams idle for longer than `ttl`, checking every `ttl / 4`
/// (between 1 s and 60 s), so a stream lives at most about 1.25 x `ttl` idle.
pub fn spawn_purge(store: Arc<dyn StreamStore>, ttl: Duration) {
    let every = (ttl / 4).clamp(Duration::from_secs(1), Duration::from_secs(60));
    let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX);
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(every);
        loop {
            ticker.tick().await;
            let store = store.clone();
            let purged =
                tokio::task::spawn_blocking(move || store.purge_idle(super::now_ms(), ttl_ms))
                    .await;
            if let Ok(names) = purged {
                for name in names {
                    tracing::info!(stream = %name, "expired idle stream (--stream-ttl-secs)");
                }
            }
        }
    });
}
