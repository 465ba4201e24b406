//! The memory store as the service runs it (`--store memory`, the default):
//! [`MemoryStore`] behind the async [`StreamStore`] interface, with its own
//! writer threads, and with `--data-dir` its snapshots and write-ahead log.
//!
//! Merges run on the stream's writer thread (see [`super::writers`]); reads
//! that walk users run on the blocking pool; cheap reads (a summary, the
//! list, the gauges) run inline. Nothing here holds a lock across `.await`.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::aggregate::ScoreAggregate;
use super::batch::StagedBatch;
use super::health::Health;
use super::memory::MemoryStore;
use super::store::{
    BatchId, BoxFuture, Budgets, Gauges, IngestSummary, Retention, StoreError, StreamInfo,
    StreamRead, StreamStore,
};
use super::tasks::{Background, DataDir, RestoreError};
use super::tenants::TenantLimits;
use super::users::{UserPager, UsersPage};
use super::wal::FsyncMode;
use super::writers::Writers;

/// Where and how the memory store keeps its state on disk.
#[derive(Debug, Clone)]
pub struct DataDirOptions {
    pub dir: PathBuf,
    pub fsync: FsyncMode,
    /// Time between periodic snapshots (at least 1 s).
    pub snapshot_interval: Duration,
}

/// Everything the memory store is configured with.
#[derive(Debug, Clone)]
pub struct MemoryOptions {
    pub budgets: Budgets,
    pub tenants: TenantLimits,
    pub retention: Retention,
    /// `None`: state lives in memory only and is lost on exit.
    pub data: Option<DataDirOptions>,
}

/// Why the memory store could not start.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("could not start the stream writer threads: {0}")]
    Writers(std::io::Error),
    #[error("refusing to start: {0}; {advice}", advice = .0.advice())]
    Restore(#[from] RestoreError),
}

/// See the module docs.
pub struct MemoryBackend {
    store: Arc<MemoryStore>,
    writers: Writers,
    data: Option<Arc<DataDir>>,
    /// The periodic snapshot task, taken (and stopped) on shutdown.
    snapshots: Mutex<Option<Background>>,
}

impl MemoryBackend {
    /// Starts the writer threads, restores `--data-dir` (refusing a bad
    /// snapshot or log) and starts the periodic snapshots. Call within a
    /// Tokio runtime.
    pub fn open(options: MemoryOptions) -> Result<MemoryBackend, OpenError> {
        let store = Arc::new(
            MemoryStore::new(options.budgets)
                .with_tenant_limits(options.tenants)
                .with_retention(options.retention),
        );
        let writers = Writers::per_core().map_err(OpenError::Writers)?;
        let mut background = Background::default();
        let data = match &options.data {
            Some(d) => {
                let data = Arc::new(DataDir::open(store.clone(), &d.dir, d.fsync)?);
                background.spawn_snapshots(data.clone(), d.snapshot_interval);
                Some(data)
            }
            None => None,
        };
        Ok(MemoryBackend {
            store,
            writers,
            data,
            snapshots: Mutex::new(Some(background)),
        })
    }

    /// The in-memory state itself.
    pub fn state(&self) -> &Arc<MemoryStore> {
        &self.store
    }

    /// Waits until log record `seq` is durable (`--fsync always`).
    async fn durable(&self, seq: u64) -> Result<(), StoreError> {
        match self.store.log() {
            Some(wal) => Ok(wal.durable(seq).await?),
            None => Ok(()),
        }
    }

    /// Runs `f` on the memory state on the blocking pool.
    async fn blocking<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&MemoryStore) -> Result<T, StoreError> + Send + 'static,
    {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || f(&store))
            .await
            .map_err(|e| StoreError::Internal(e.to_string()))?
    }
}

impl std::fmt::Debug for MemoryBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryBackend")
            .field("store", &self.store)
            .field("writers", &self.writers)
            .field("data", &self.data)
            .finish()
    }
}

impl StreamStore for MemoryBackend {
    fn admit_staged(&self, records: usize, staged_bytes: usize) -> Result<(), StoreError> {
        let headroom = self.store.memory_headroom();
        if staged_bytes > headroom {
            return Err(StoreError::StagedOverMemory {
                records,
                staged: staged_bytes,
                headroom,
            });
        }
        Ok(())
    }

    fn apply<'a>(
        &'a self,
        name: &'a str,
        batch: StagedBatch,
        id: &'a BatchId,
        now_ms: u64,
    ) -> BoxFuture<'a, Result<IngestSummary, StoreError>> {
        Box::pin(async move {
            let store = self.store.clone();
            let stream = name.to_owned();
            // Generated ids never repeat: not worth remembering.
            let key = id.is_from_client().then(|| id.key().to_owned());
            let summary = self
                .writers
                .run(name, move || {
                    store.ingest_once(&stream, batch, key.as_deref(), now_ms)
                })
                .await
                .map_err(|e| StoreError::Internal(e.to_string()))??;
            self.durable(summary.seq).await?;
            Ok(summary)
        })
    }

    fn info<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<StreamInfo, StoreError>> {
        Box::pin(async move { self.store.with_stream(name, |s| s.info()) })
    }

    fn stream<'a>(
        &'a self,
        name: &'a str,
        with_gauc: bool,
    ) -> BoxFuture<'a, Result<StreamRead, StoreError>> {
        let name = name.to_owned();
        Box::pin(self.blocking(move |store| store.with_stream(&name, |s| s.read(with_gauc))))
    }

    fn user<'a>(
        &'a self,
        name: &'a str,
        user_id: &'a str,
    ) -> BoxFuture<'a, Result<Option<ScoreAggregate>, StoreError>> {
        let (name, user_id) = (name.to_owned(), user_id.to_owned());
        Box::pin(
            self.blocking(move |store| {
                store.with_stream(&name, |s| s.users.get(&user_id).cloned())
            }),
        )
    }

    fn users<'a>(
        &'a self,
        name: &'a str,
        mut pager: UserPager,
    ) -> BoxFuture<'a, Result<UsersPage, StoreError>> {
        let name = name.to_owned();
        Box::pin(self.blocking(move |store| {
            store.with_stream(&name, |s| {
                for (id, agg) in &s.users {
                    pager.offer(id, agg);
                }
                pager.finish()
            })
        }))
    }

    fn list(&self) -> BoxFuture<'_, Result<Vec<StreamInfo>, StoreError>> {
        Box::pin(async move { Ok(self.store.list()) })
    }

    fn delete<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<bool, StoreError>> {
        let owned = name.to_owned();
        Box::pin(async move {
            let found = self.blocking(move |store| store.delete(&owned)).await?;
            match found {
                Some(seq) => {
                    self.durable(seq).await?;
                    Ok(true)
                }
                None => Ok(false),
            }
        })
    }

    fn purge_idle(
        &self,
        now_ms: u64,
        ttl_ms: u64,
    ) -> BoxFuture<'_, Result<Vec<String>, StoreError>> {
        Box::pin(self.blocking(move |store| Ok(store.purge_idle(now_ms, ttl_ms))))
    }

    fn gauges(&self) -> BoxFuture<'_, Result<Gauges, StoreError>> {
        Box::pin(async move { Ok(self.store.gauges()) })
    }

    fn readiness(&self) -> BoxFuture<'_, Vec<String>> {
        Box::pin(async move {
            self.data
                .as_ref()
                .map(|d| d.health().problems())
                .unwrap_or_default()
        })
    }

    fn data_dir_health(&self) -> Option<Arc<Health>> {
        self.data.as_ref().map(|d| d.health().clone())
    }

    fn shutdown(&self) -> BoxFuture<'_, std::io::Result<()>> {
        Box::pin(async move {
            let snapshots = self
                .snapshots
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .take();
            if let Some(background) = snapshots {
                background.stop().await;
            }
            let Some(data) = &self.data else {
                return Ok(());
            };
            let result = data.snapshot().await;
            data.close().await;
            result.map(|_| ())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::conformance;

    fn options() -> MemoryOptions {
        MemoryOptions {
            budgets: Budgets {
                max_streams: 100,
                max_users_per_stream: 1000,
                max_scores_per_user: 1000,
                max_scores_per_stream: 10_000,
                memory_budget: 1 << 30,
            },
            tenants: TenantLimits::default(),
            retention: Retention::default(),
            data: None,
        }
    }

    #[tokio::test]
    async fn the_memory_store_passes_the_store_conformance_checks() {
        let store = MemoryBackend::open(options()).unwrap_or_else(|e| panic!("{e}"));
        conformance::all(&store).await;
        assert_eq!(store.gauges().await, Ok(Gauges::default()));
    }

    #[tokio::test]
    async fn concurrent_attempts_with_one_key_apply_it_once() {
        let store = Arc::new(MemoryBackend::open(options()).unwrap_or_else(|e| panic!("{e}")));
        let attempts: Vec<_> = (0..8)
            .map(|_| {
                let store = store.clone();
                tokio::spawn(async move {
                    let id = BatchId::from_client("same");
                    store.apply("s", conformance::batch(10), &id, 1).await
                })
            })
            .collect();
        let mut answers = Vec::new();
        for a in attempts {
            answers.push(
                a.await
                    .map_err(|e| e.to_string())
                    .and_then(|r| r.map_err(|e| e.to_string())),
            );
        }
        assert!(
            answers.iter().all(|a| a == &answers[0] && a.is_ok()),
            "{answers:?}"
        );
        assert_eq!(store.info("s").await.map(|i| i.count), Ok(10));
    }

    #[tokio::test]
    async fn a_staged_body_past_the_memory_headroom_is_refused() {
        let mut opts = options();
        opts.budgets.memory_budget = 1000;
        let store = MemoryBackend::open(opts).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(store.admit_staged(10, 1000), Ok(()));
        assert_eq!(
            store.admit_staged(10, 1001),
            Err(StoreError::StagedOverMemory {
                records: 10,
                staged: 1001,
                headroom: 1000
            })
        );
    }
}
