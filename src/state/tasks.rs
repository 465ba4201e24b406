//! Background work on the store: restore at start (snapshot, then the log),
//! periodic and final snapshots, and TTL purge of idle streams.
//!
//! Snapshots and purges run on the blocking pool: they take std locks and
//! write files. The periodic tasks belong to a [`Background`], which stops
//! and joins them on shutdown *before* the final snapshot, so a periodic
//! snapshot never runs alongside it.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::health::Health;
use super::memory::MemoryStore;
use super::snapshot::{self, SnapshotError};
use super::store::StreamStore;
use super::wal::{self, FsyncMode, ReplayError, Wal};

/// Why the state of a data directory could not be restored; the service
/// does not start (rather than start empty and later overwrite the only copy
/// of the data).
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    #[error(transparent)]
    Log(#[from] ReplayError),
    #[error("could not use the data directory {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl RestoreError {
    /// What the operator can do about it.
    pub fn advice(&self) -> &'static str {
        match self {
            RestoreError::Snapshot(_) => "move the file aside to start with empty streams",
            RestoreError::Log(_) => "move the file aside to start from the snapshot and the logs before it (the records after the damage are lost)",
            RestoreError::Io { .. } => "check the path and its permissions",
        }
    }
}

/// The state kept in `--data-dir`: the snapshot and the write-ahead log.
pub struct DataDir {
    dir: PathBuf,
    store: Arc<MemoryStore>,
    wal: Arc<Wal>,
    /// The store generation the last snapshot saved; held while a snapshot
    /// is written, so two never run at once (they share the temporary file).
    saved: tokio::sync::Mutex<Option<u64>>,
}

impl DataDir {
    /// Restores `store` from `dir` (the snapshot, then the log records after
    /// it), then starts the log and attaches it to the store. A missing
    /// snapshot is a first start; a corrupt one, or a corrupt log record
    /// before the log's tail, is refused; a torn tail is cut off.
    pub fn open(
        store: Arc<MemoryStore>,
        dir: &Path,
        mode: FsyncMode,
    ) -> Result<DataDir, RestoreError> {
        let io_error = |source| RestoreError::Io {
            path: dir.to_owned(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(io_error)?;
        let mut next_seq = restore(store.as_ref(), dir)?;
        let replayed = wal::replay(dir, store.as_ref())?;
        if replayed.segments > 0 {
            tracing::info!(
                segments = replayed.segments,
                records = replayed.records,
                applied = replayed.applied,
                "replayed the write-ahead log"
            );
        }
        next_seq = next_seq.max(replayed.last_seq + 1);
        let health = Arc::new(Health::default());
        let wal =
            Wal::start(dir, mode, next_seq, replayed.last_segment + 1, health).map_err(io_error)?;
        let wal = Arc::new(wal);
        store.attach_log(wal.clone());
        // Without a log to fold in, the files already hold exactly this state.
        let saved = (replayed.segments == 0).then(|| store.generation());
        Ok(DataDir {
            dir: dir.to_owned(),
            store,
            wal,
            saved: tokio::sync::Mutex::new(saved),
        })
    }

    /// The health of the snapshot and the log.
    pub fn health(&self) -> &Arc<Health> {
        self.wal.health()
    }

    /// Writes a snapshot unless nothing changed since the last one, then
    /// deletes the log segments it covers. Returns whether one was written.
    pub async fn snapshot(&self) -> std::io::Result<bool> {
        let mut saved = self.saved.lock().await;
        let generation = self.store.generation();
        if *saved == Some(generation) {
            self.health().snapshot_skipped();
            return Ok(false);
        }
        let started = std::time::Instant::now();
        let rotation = self.wal.rotate();
        let (store, wal, dir) = (self.store.clone(), self.wal.clone(), self.dir.clone());
        let result = tokio::task::spawn_blocking(move || {
            let stats = snapshot::write(store.as_ref(), &dir, rotation.log_seq)?;
            let retired = wal.retire(rotation)?;
            Ok::<_, std::io::Error>((stats, retired))
        })
        .await
        .map_err(std::io::Error::other)
        .and_then(|r| r);
        match result {
            Ok((stats, retired)) => {
                tracing::info!(
                    streams = stats.streams,
                    bytes = stats.bytes,
                    log_segments_retired = retired,
                    millis = started.elapsed().as_millis() as u64,
                    "wrote stream snapshot"
                );
                self.health().snapshot_done(Ok(()));
                *saved = Some(generation);
                Ok(true)
            }
            Err(e) => {
                tracing::error!(error = %e, "could not write stream snapshot; the previous one and the log are kept");
                self.health().snapshot_done(Err(e.to_string()));
                Err(e)
            }
        }
    }

    /// Writes what the log has queued and stops it (after the final snapshot).
    pub async fn close(&self) {
        let wal = self.wal.clone();
        let _ = tokio::task::spawn_blocking(move || wal.close()).await;
    }
}

impl std::fmt::Debug for DataDir {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataDir").field("dir", &self.dir).finish()
    }
}

/// Loads the snapshot in `dir` into `store` and returns the first log
/// sequence number it does not cover. A missing file is a first start.
///
/// # Errors
/// A corrupt, truncated, foreign or unknown-version snapshot is refused. The
/// operator moves the file aside to start empty.
pub fn restore(store: &MemoryStore, dir: &Path) -> Result<u64, SnapshotError> {
    match snapshot::read(dir)? {
        Some(snap) => {
            let n = snap.streams.len();
            let covered = snap.streams.iter().map(|s| s.last_seq + 1).max();
            store.import(snap.streams);
            tracing::info!(path = %snapshot::path_in(dir).display(), streams = n, "restored stream snapshot");
            Ok(covered.unwrap_or(0).max(snap.log_seq))
        }
        None => {
            tracing::info!(dir = %dir.display(), "no stream snapshot yet; starting empty");
            Ok(0)
        }
    }
}

/// Resolves when `stop` turns true; never when its [`Background`] was
/// dropped without stopping (the tasks then run until the runtime ends).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    if stop.wait_for(|stopped| *stopped).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// The periodic tasks, stopped and joined together on shutdown.
#[derive(Debug)]
pub struct Background {
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Default for Background {
    fn default() -> Self {
        Background {
            stop: watch::Sender::new(false),
            tasks: Vec::new(),
        }
    }
}

impl Background {
    /// Runs `work` every `every` (the first run after one period) until
    /// stopped. A run in progress completes before the task ends.
    fn every<F, Fut>(&mut self, every: Duration, mut work: F)
    where
        F: FnMut() -> Fut + Send + 'static,
        Fut: std::future::Future<Output = ()> + Send,
    {
        let mut stop = self.stop.subscribe();
        self.tasks.push(tokio::spawn(async move {
            let mut ticker = tokio::time::interval(every);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            ticker.tick().await; // the first tick is immediate
            loop {
                tokio::select! {
                    _ = ticker.tick() => work().await,
                    _ = stopped(&mut stop) => break,
                }
            }
        }));
    }

    /// Snapshots `data` every `interval` (at least 1 s).
    pub fn spawn_snapshots(&mut self, data: Arc<DataDir>, interval: Duration) {
        self.every(interval.max(Duration::from_secs(1)), move || {
            let data = data.clone();
            async move {
                let _ = data.snapshot().await;
            }
        });
    }

    /// Removes streams idle for longer than `ttl`, checking every `ttl / 4`
    /// (between 1 s and 60 s), so a stream lives at most about 1.25 x `ttl` idle.
    pub fn spawn_purge(&mut self, store: Arc<dyn StreamStore>, ttl: Duration) {
        let every = (ttl / 4).clamp(Duration::from_secs(1), Duration::from_secs(60));
        let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX);
        self.every(every, move || {
            let store = store.clone();
            async move {
                match store.purge_idle(super::now_ms(), ttl_ms).await {
                    Ok(purged) => {
                        for name in purged {
                            tracing::info!(stream = %name, "expired idle stream (--stream-ttl-secs)");
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "could not expire idle streams"),
                }
            }
        });
    }

    /// Stops every task and waits for each to end (a snapshot or purge in
    /// progress completes first).
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{BatchBuilder, Budgets, Record, StagedBatch};

    fn temp_dir(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("evald-tasks-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    fn store() -> Arc<MemoryStore> {
        Arc::new(MemoryStore::new(Budgets {
            max_streams: 10,
            max_users_per_stream: 100,
            max_scores_per_user: 1000,
            max_scores_per_stream: 1000,
            memory_budget: 1 << 30,
        }))
    }

    fn batch(n: u32) -> StagedBatch {
        let mut b = BatchBuilder::new();
        for i in 0..n {
            let r = Record {
                score: f64::from(i % 10) / 10.0,
                positive: i % 2 == 0,
                weight: 1.0,
            };
            assert!(b.push(Some(["a", "b", "c"][i as usize % 3]), r).is_ok());
        }
        b.finish()
    }

    async fn ingest(store: &Arc<MemoryStore>, name: &str, n: u32) {
        let summary = store.ingest(name, batch(n), 1);
        let seq = summary.map(|s| s.seq).unwrap_or_else(|e| panic!("{e}"));
        let wal = store.log().unwrap_or_else(|| panic!("no log"));
        assert_eq!(wal.durable(seq).await, Ok(()));
    }

    fn counts(store: &Arc<MemoryStore>) -> Vec<(String, u64)> {
        store
            .list()
            .into_iter()
            .map(|s| (s.name, s.count))
            .collect()
    }

    #[tokio::test]
    async fn records_around_a_snapshot_are_restored_exactly_once() {
        let dir = temp_dir("barrier");
        let first = store();
        let data =
            DataDir::open(first.clone(), &dir, FsyncMode::Always).unwrap_or_else(|e| panic!("{e}"));
        ingest(&first, "s", 10).await; // before the rotation: retired with it
        ingest(&first, "gone", 4).await;
        let rotation = data.wal.rotate();
        ingest(&first, "s", 20).await; // after it, but in the snapshot
        assert!(snapshot::write(first.as_ref(), &dir, rotation.log_seq).is_ok());
        ingest(&first, "s", 30).await; // after the snapshot: only in the log
        assert!(matches!(first.delete("gone"), Ok(Some(_))));
        assert!(data.wal.retire(rotation).is_ok_and(|n| n == 1));
        data.close().await;
        let want = vec![("s".to_owned(), 60)];
        assert_eq!(counts(&first), want);

        let second = store();
        let reopened = DataDir::open(second.clone(), &dir, FsyncMode::Always)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(counts(&second), want);
        // and once more after a snapshot of the replayed state
        assert!(reopened.snapshot().await.is_ok_and(|written| written));
        ingest(&second, "t", 3).await;
        reopened.close().await;
        let third = store();
        let _last =
            DataDir::open(third.clone(), &dir, FsyncMode::Always).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            counts(&third),
            vec![("s".to_owned(), 60), ("t".to_owned(), 3)]
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
