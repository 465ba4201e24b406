//! The in-memory stream state: a map of [`Stream`]s with budgets, batch-id
//! retention, export/import for snapshots and write-ahead log replay.
//!
//! Its methods are synchronous and take std locks: the service calls them
//! from its writer threads and the blocking pool through
//! [`super::memory_backend::MemoryBackend`], which implements the async
//! [`super::StreamStore`] interface on top.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock, RwLock, RwLockReadGuard, RwLockWriteGuard};

use super::batch::StagedBatch;
use super::store::{Budgets, Gauges, IngestSummary, Retention, StoreError, StreamInfo};
use super::stream::{signed, Stream, USER_OVERHEAD_BYTES};
use super::tenants::{TenantLedger, TenantLimits};
use super::wal::{Entry, LogError, LogRecord, Wal};

/// A stream behind its own lock, plus its last-update time readable without it.
#[derive(Debug)]
struct Cell {
    stream: RwLock<Stream>,
    updated_at_ms: AtomicU64,
    /// Set (under the stream's write lock) when the stream left the map, so an
    /// ingest that fetched the handle before the delete retries instead of
    /// writing into a dropped stream.
    deleted: AtomicBool,
}

impl Cell {
    fn new(stream: Stream) -> Arc<Cell> {
        Arc::new(Cell {
            updated_at_ms: AtomicU64::new(stream.updated_at_ms),
            stream: RwLock::new(stream),
            deleted: false.into(),
        })
    }
}

/// In-memory store: a map of streams, each behind its own `RwLock`.
///
/// Locks are std locks held only for map look-ups and for merging an already
/// staged batch (never during parsing, never across `.await`). The map lock is
/// taken briefly; ingest into one stream does not block other streams, and
/// queries share a read lock so they see a batch entirely or not at all.
#[derive(Debug)]
pub struct MemoryStore {
    streams: RwLock<HashMap<String, Arc<Cell>>>,
    budgets: Budgets,
    bytes: AtomicUsize,
    /// Per-tenant budgets (see [`tenants`]).
    tenants: TenantLedger,
    log: OnceLock<Arc<Wal>>,
    generation: AtomicU64,
    /// How long and how many client batch ids each stream remembers.
    retention: Retention,
}

fn read_lock<T>(l: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    // A panic while holding a lock cannot leave an aggregate half-merged in a
    // way reads could observe wrongly beyond that one batch; keep serving.
    l.read().unwrap_or_else(|e| e.into_inner())
}

fn write_lock<T>(l: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|e| e.into_inner())
}

impl MemoryStore {
    /// An empty store with `budgets`.
    pub fn new(budgets: Budgets) -> Self {
        MemoryStore {
            streams: RwLock::new(HashMap::new()),
            budgets,
            bytes: AtomicUsize::new(0),
            tenants: TenantLedger::default(),
            log: OnceLock::new(),
            generation: AtomicU64::new(0),
            retention: Retention::default(),
        }
    }

    /// The store with `retention` for client batch ids.
    pub fn with_retention(mut self, retention: Retention) -> Self {
        self.retention = retention;
        self
    }

    /// The store with per-tenant budgets (only streams stored under a tenant
    /// prefix are subject to them).
    pub fn with_tenant_limits(mut self, limits: TenantLimits) -> Self {
        self.tenants = TenantLedger::new(limits);
        self
    }

    /// The configured budgets.
    pub fn budgets(&self) -> Budgets {
        self.budgets
    }

    /// Checks the user and memory budgets for merging `batch` into `stream`,
    /// reserving the memory; returns the reservation.
    fn reserve(&self, stream: &Stream, batch: &StagedBatch) -> Result<usize, StoreError> {
        let new_users = stream.new_users(batch);
        let limit = self.budgets.max_users_per_stream;
        if stream.users.len().saturating_add(new_users) > limit {
            return Err(StoreError::TooManyUsers {
                stream: stream.name.clone(),
                users: stream.users.len(),
                new_users,
                limit,
            });
        }
        let needed = batch.heap_bytes() + new_users * USER_OVERHEAD_BYTES;
        let used = self.bytes.fetch_add(needed, Ordering::SeqCst);
        if used.saturating_add(needed) > self.budgets.memory_budget {
            self.bytes.fetch_sub(needed, Ordering::SeqCst);
            return Err(StoreError::OverMemory {
                used,
                needed,
                limit: self.budgets.memory_budget,
            });
        }
        if let Err(e) = self.tenants.reserve(&stream.name, needed) {
            self.bytes.fetch_sub(needed, Ordering::SeqCst);
            return Err(e);
        }
        Ok(needed)
    }

    /// Appends a change to the attached log (0 without one).
    fn log_change(
        &self,
        name: &str,
        at_ms: u64,
        batch: Option<&StagedBatch>,
    ) -> Result<u64, LogError> {
        self.log
            .get()
            .map_or(Ok(0), |wal| wal.append(name, at_ms, batch))
    }

    /// Applies `batch` to `stream` after reserving its budget and logging it
    /// (the last step that can fail), then trues up the memory accounting
    /// with the measured change.
    fn apply(
        &self,
        stream: &mut Stream,
        batch: StagedBatch,
        key: Option<&str>,
        now_ms: u64,
    ) -> Result<IngestSummary, StoreError> {
        if let Some(first) = key.and_then(|k| stream.recent.answer(k, now_ms, self.retention)) {
            return Ok(first.clone());
        }
        let reserved = self.reserve(stream, &batch)?;
        let seq = match self.log_change(&stream.name, now_ms, Some(&batch)) {
            Ok(seq) => seq,
            Err(e) => {
                self.bytes.fetch_sub(reserved, Ordering::SeqCst);
                return Err(e.into());
            }
        };
        let accepted = batch.records();
        let mut delta = stream.apply(
            batch,
            self.budgets.max_scores_per_user,
            self.budgets.max_scores_per_stream,
            now_ms,
        );
        stream.last_seq = stream.last_seq.max(seq);
        let summary = IngestSummary {
            accepted,
            count: stream.count(),
            users: stream.users.len(),
            seq,
        };
        if let Some(key) = key {
            delta += stream
                .recent
                .remember(key, summary.clone(), now_ms, self.retention);
        }
        self.bytes.fetch_sub(reserved, Ordering::SeqCst);
        self.adjust_bytes(delta);
        self.tenants.adjust(
            &stream.name,
            delta - isize::try_from(reserved).unwrap_or(isize::MAX),
        );
        self.generation.fetch_add(1, Ordering::SeqCst);
        Ok(summary)
    }

    fn adjust_bytes(&self, delta: isize) {
        if delta >= 0 {
            self.bytes.fetch_add(delta.unsigned_abs(), Ordering::SeqCst);
        } else {
            let d = delta.unsigned_abs();
            let _ = self
                .bytes
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |b| {
                    Some(b.saturating_sub(d))
                });
        }
    }

    fn handle(&self, name: &str) -> Option<Arc<Cell>> {
        read_lock(&self.streams).get(name).cloned()
    }
}

impl MemoryStore {
    /// Merges a staged batch into stream `name` (created on first use)
    /// atomically: either the whole batch is applied (and logged, when a log
    /// is attached) or, on a budget or log error, nothing is.
    pub fn ingest(
        &self,
        name: &str,
        batch: StagedBatch,
        now_ms: u64,
    ) -> Result<IngestSummary, StoreError> {
        self.ingest_once(name, batch, None, now_ms)
    }

    /// [`MemoryStore::ingest`], unless the client batch id `key` was already
    /// applied to the stream within the retention window: then nothing is
    /// applied and the answer is the first one (its log record included).
    /// The check and the apply happen under the stream's write lock, so two
    /// concurrent attempts with one key apply it once.
    pub fn ingest_once(
        &self,
        name: &str,
        batch: StagedBatch,
        key: Option<&str>,
        now_ms: u64,
    ) -> Result<IngestSummary, StoreError> {
        loop {
            if let Some(cell) = self.handle(name) {
                let mut stream = write_lock(&cell.stream);
                if cell.deleted.load(Ordering::SeqCst) {
                    continue;
                }
                let summary = self.apply(&mut stream, batch, key, now_ms)?;
                cell.updated_at_ms
                    .store(stream.updated_at_ms, Ordering::SeqCst);
                return Ok(summary);
            }
            let mut map = write_lock(&self.streams);
            if map.contains_key(name) {
                continue;
            }
            if map.len() >= self.budgets.max_streams {
                return Err(StoreError::TooManyStreams {
                    limit: self.budgets.max_streams,
                });
            }
            self.tenants.check_new_stream(name, map.keys())?;
            // The new stream is private until inserted: a failed batch leaves no trace.
            let mut stream = Stream::new(name, now_ms);
            let summary = self.apply(&mut stream, batch, key, now_ms)?;
            map.insert(name.to_owned(), Cell::new(stream));
            return Ok(summary);
        }
    }

    /// Runs `f` on a consistent view of stream `name` (never a half-applied batch).
    pub fn read(&self, name: &str, f: &mut dyn FnMut(&Stream)) -> Result<(), StoreError> {
        self.with_stream(name, |stream| f(stream))
    }

    /// `f` of a consistent view of stream `name`.
    pub fn with_stream<T>(
        &self,
        name: &str,
        f: impl FnOnce(&Stream) -> T,
    ) -> Result<T, StoreError> {
        let cell = self
            .handle(name)
            .ok_or_else(|| StoreError::UnknownStream(name.to_owned()))?;
        let stream = read_lock(&cell.stream);
        Ok(f(&stream))
    }

    /// Every stream, sorted by name.
    pub fn list(&self) -> Vec<StreamInfo> {
        let cells: Vec<Arc<Cell>> = read_lock(&self.streams).values().cloned().collect();
        let mut out: Vec<StreamInfo> = cells
            .iter()
            .map(|cell| {
                let s = read_lock(&cell.stream);
                s.info()
            })
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }

    /// Removes stream `name` (logging it first when a log is attached):
    /// `Some(seq)` of its log record (0 without a log), `None` when it did
    /// not exist. On a log error nothing is removed.
    pub fn delete(&self, name: &str) -> Result<Option<u64>, StoreError> {
        let Some(cell) = self.handle(name) else {
            return Ok(None);
        };
        // Stream lock first, then the map's (the order ingest takes them in),
        // so a long merge does not hold up the whole map.
        let stream = write_lock(&cell.stream);
        if cell.deleted.load(Ordering::SeqCst) {
            return Ok(None);
        }
        let seq = self.log_change(name, super::now_ms(), None)?;
        // Deletion sets `deleted` under the stream lock, so the map still
        // holds this very cell.
        write_lock(&self.streams).remove(name);
        cell.deleted.store(true, Ordering::SeqCst);
        let freed = -signed(stream.heap_bytes());
        self.adjust_bytes(freed);
        self.tenants.adjust(name, freed);
        self.generation.fetch_add(1, Ordering::SeqCst);
        Ok(Some(seq))
    }

    /// Removes streams not updated since `now_ms - ttl_ms`; returns their names.
    pub fn purge_idle(&self, now_ms: u64, ttl_ms: u64) -> Vec<String> {
        let cutoff = now_ms.saturating_sub(ttl_ms);
        let idle: Vec<String> = read_lock(&self.streams)
            .iter()
            .filter(|(_, c)| c.updated_at_ms.load(Ordering::SeqCst) < cutoff)
            .map(|(n, _)| n.clone())
            .collect();
        idle.into_iter()
            .filter(|name| {
                // Re-check: an ingest may have touched it since the scan.
                let still_idle = self
                    .handle(name)
                    .is_some_and(|c| c.updated_at_ms.load(Ordering::SeqCst) < cutoff);
                still_idle
                    && match self.delete(name) {
                        Ok(found) => found.is_some(),
                        Err(e) => {
                            tracing::warn!(stream = %name, error = %e, "could not expire an idle stream");
                            false
                        }
                    }
            })
            .collect()
    }

    /// Totals over every stream.
    pub fn gauges(&self) -> Gauges {
        let cells: Vec<Arc<Cell>> = read_lock(&self.streams).values().cloned().collect();
        let mut g = Gauges {
            streams: cells.len(),
            bytes: self.bytes.load(Ordering::SeqCst),
            ..Gauges::default()
        };
        for cell in cells {
            let s = read_lock(&cell.stream);
            g.users += s.users.len();
            g.records += s.count();
        }
        g
    }

    /// Bytes of the memory budget not yet used.
    pub fn memory_headroom(&self) -> usize {
        self.budgets
            .memory_budget
            .saturating_sub(self.bytes.load(Ordering::SeqCst))
    }

    /// Calls `f` on each stream in turn (for snapshots); each is consistent.
    pub fn export(&self, f: &mut dyn FnMut(&Stream) -> std::io::Result<()>) -> std::io::Result<()> {
        let mut cells: Vec<(String, Arc<Cell>)> = read_lock(&self.streams)
            .iter()
            .map(|(n, c)| (n.clone(), c.clone()))
            .collect();
        cells.sort_by(|a, b| a.0.cmp(&b.0));
        for (_, cell) in cells {
            let s = read_lock(&cell.stream);
            f(&s)?;
        }
        Ok(())
    }

    /// Replaces every stream with `streams` (restore at start).
    pub fn import(&self, streams: Vec<Stream>) {
        let mut map = write_lock(&self.streams);
        map.clear();
        self.tenants
            .reset(streams.iter().map(|s| (s.name.as_str(), s.heap_bytes())));
        let mut bytes = 0;
        for s in streams {
            bytes += s.heap_bytes();
            map.insert(s.name.clone(), Cell::new(s));
        }
        self.bytes.store(bytes, Ordering::SeqCst);
        self.generation.fetch_add(1, Ordering::SeqCst);
    }

    /// Applies a log record at start, unless the stream already holds it
    /// (its `last_seq` is at or past the record's): true when applied.
    /// Budgets are not checked: the record was accepted once.
    pub fn replay(&self, record: LogRecord) -> bool {
        let LogRecord {
            seq,
            stream: name,
            at_ms,
            entry,
        } = record;
        let mut map = write_lock(&self.streams);
        let applied = match entry {
            Entry::Delete => {
                let newer = map
                    .get(&name)
                    .is_some_and(|c| seq > read_lock(&c.stream).last_seq);
                if let Some(cell) = map.remove(&name).filter(|_| newer) {
                    let freed = -signed(read_lock(&cell.stream).heap_bytes());
                    self.adjust_bytes(freed);
                    self.tenants.adjust(&name, freed);
                }
                newer
            }
            Entry::Ingest(batch) => {
                let cell = map
                    .entry(name.clone())
                    .or_insert_with(|| Cell::new(Stream::new(&name, at_ms)));
                let mut stream = write_lock(&cell.stream);
                let newer = seq > stream.last_seq;
                if newer {
                    let b = &self.budgets;
                    let delta =
                        stream.apply(batch, b.max_scores_per_user, b.max_scores_per_stream, at_ms);
                    stream.last_seq = seq;
                    cell.updated_at_ms
                        .store(stream.updated_at_ms, Ordering::SeqCst);
                    self.adjust_bytes(delta);
                    self.tenants.adjust(&name, delta);
                }
                newer
            }
        };
        self.generation.fetch_add(1, Ordering::SeqCst);
        applied
    }

    /// Logs every later change to `wal` (once replay is done).
    pub fn attach_log(&self, wal: Arc<Wal>) {
        let _ = self.log.set(wal);
    }

    /// The attached log.
    pub fn log(&self) -> Option<Arc<Wal>> {
        self.log.get().cloned()
    }

    /// A counter that moves on every change (a snapshot with nothing new to
    /// save is skipped).
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{BatchBuilder, Record};

    fn budgets() -> Budgets {
        Budgets {
            max_streams: 2,
            max_users_per_stream: 3,
            max_scores_per_user: 100,
            max_scores_per_stream: 1000,
            memory_budget: 1 << 30,
        }
    }

    fn batch(users: &[&str]) -> StagedBatch {
        let mut b = BatchBuilder::new();
        for (i, u) in users.iter().enumerate() {
            let r = Record {
                score: i as f64 / 10.0,
                positive: i % 2 == 0,
                weight: 1.0,
            };
            assert!(b.push(Some(u), r).is_ok());
        }
        b.finish()
    }

    /// (records, users, global entries) of a stream.
    type View = (u64, usize, Vec<(f64, f64, f64)>);

    fn snapshot_of(store: &MemoryStore, name: &str) -> Option<View> {
        let mut out = None;
        store
            .read(name, &mut |s| {
                out = Some((s.count(), s.users.len(), s.global.iter().collect()))
            })
            .ok()?;
        out
    }

    #[test]
    fn a_batch_over_the_user_limit_changes_nothing() {
        let store = MemoryStore::new(budgets());
        assert!(store.ingest("s", batch(&["a", "b"]), 1).is_ok());
        let before = snapshot_of(&store, "s");
        let err = store.ingest("s", batch(&["c", "d"]), 2);
        assert!(
            matches!(
                err,
                Err(StoreError::TooManyUsers {
                    limit: 3,
                    new_users: 2,
                    ..
                })
            ),
            "{err:?}"
        );
        assert_eq!(snapshot_of(&store, "s"), before);
    }

    #[test]
    fn a_new_stream_over_the_stream_limit_is_refused_and_not_created() {
        let store = MemoryStore::new(budgets());
        assert!(store.ingest("a", batch(&["u"]), 1).is_ok());
        assert!(store.ingest("b", batch(&["u"]), 1).is_ok());
        assert_eq!(
            store.ingest("c", batch(&["u"]), 1),
            Err(StoreError::TooManyStreams { limit: 2 })
        );
        assert_eq!(store.list().len(), 2);
    }

    #[test]
    fn a_batch_over_the_memory_budget_is_refused_and_a_new_stream_not_created() {
        let store = MemoryStore::new(Budgets {
            memory_budget: 64,
            ..budgets()
        });
        let err = store.ingest("s", batch(&["a", "b"]), 1);
        assert!(
            matches!(err, Err(StoreError::OverMemory { limit: 64, .. })),
            "{err:?}"
        );
        assert!(store.list().is_empty());
        assert_eq!(store.gauges().bytes, 0);
    }

    #[test]
    fn delete_and_ttl_purge_remove_streams_and_release_memory() {
        let store = MemoryStore::new(budgets());
        assert!(store.ingest("old", batch(&["a"]), 1_000).is_ok());
        assert!(store.ingest("new", batch(&["a"]), 9_000).is_ok());
        assert!(store.gauges().bytes > 0);
        assert_eq!(store.purge_idle(10_000, 5_000), vec!["old".to_owned()]);
        assert_eq!(store.delete("new"), Ok(Some(0)));
        assert_eq!(store.delete("new"), Ok(None));
        assert_eq!(store.gauges(), Gauges::default());
    }

    #[test]
    fn concurrent_ingest_from_threads_equals_sequential_ingest() {
        let concurrent = Arc::new(MemoryStore::new(budgets()));
        let sequential = MemoryStore::new(budgets());
        let batches: Vec<StagedBatch> = (0..8)
            .map(|i| batch(&["a", "b", "c"][..(i % 3 + 1)]))
            .collect();
        for b in &batches {
            assert!(sequential.ingest("s", b.clone(), 1).is_ok());
        }
        let handles: Vec<_> = batches
            .into_iter()
            .map(|b| {
                let store = concurrent.clone();
                std::thread::spawn(move || store.ingest("s", b, 1).is_ok())
            })
            .collect();
        for h in handles {
            assert_eq!(h.join().ok(), Some(true));
        }
        assert_eq!(snapshot_of(&concurrent, "s"), snapshot_of(&sequential, "s"));
    }
}
