//! Stream state: named, growing binary evaluations kept as mergeable aggregates,
//! globally and per user, behind a small store interface. No HTTP types here.
//!
//! - [`aggregate`]: [`ScoreAggregate`], the exact (or compacted, with a certified
//!   AUC error bound) sufficient statistics of a set of binary records.
//! - [`batch`]: [`BatchBuilder`] stages one request's records into a local
//!   aggregate *before* any lock is taken, so a bad line leaves nothing applied.
//! - [`stream`]: [`Stream`], one named stream (global + per-user aggregates).
//! - [`store`]: the async [`StreamStore`] interface every store implements
//!   (apply a batch with its id, read aggregates, GAUC sums, pages of users,
//!   list, delete, purge), and the types it speaks.
//! - [`gauc`]: [`GaucSums`], GAUC as a fixed set of mergeable per-bucket sums.
//! - [`users`]: [`UserPager`], pages of a stream's users with keyset cursors.
//! - [`memory`]: [`MemoryStore`], the in-memory state with budgets
//!   (streams, users, memory), TTL purge and log replay.
//! - [`memory_backend`]: [`MemoryBackend`], the memory store as the service
//!   runs it (`--store memory`): writer threads, snapshots, the log.
//! - [`recent`]: the client batch ids a stream applied recently.
//! - `conformance` (tests only): the checks every store's tests run.
//! - [`snapshot`]: the versioned, checksummed on-disk format and atomic writes.
//! - [`wal`]: the write-ahead log of accepted batches and deletes, with group
//!   commit, replayed at start on top of the snapshot.
//! - [`health`]: whether the last snapshot and log writes succeeded.
//! - [`tasks`]: restore at start, periodic and final snapshots, TTL purge.
//! - [`writers`]: the dedicated threads that merge batches into streams.
//! - [`redis`]: `--store redis`, the stream state in Redis / Redis Cluster.
//! - [`tenants`]: tenant namespaces of stream names and per-tenant budgets.

pub mod aggregate;
pub mod batch;
#[cfg(test)]
pub mod conformance;
pub mod gauc;
pub mod health;
pub mod memory;
pub mod memory_backend;
pub mod recent;
pub mod redis;
pub mod snapshot;
pub mod store;
pub mod stream;
pub mod tasks;
pub mod tenants;
pub mod users;
pub mod wal;
pub mod writers;

pub use aggregate::{Bin, Record, RecordCounts, ScoreAggregate};
pub use batch::{BatchBuilder, StagedBatch};
pub use gauc::{GaucSummary, GaucSums, UserContribution};
pub use memory::MemoryStore;
pub use memory_backend::{DataDirOptions, MemoryBackend, MemoryOptions};
pub use store::{
    BatchId, BoxFuture, Budgets, Gauges, IngestSummary, Limit, Retention, StoreError, StreamInfo,
    StreamRead, StreamStore,
};
pub use stream::Stream;
pub use tenants::TenantLimits;
pub use users::{CursorError, UserEntry, UserOrder, UserPager, UsersPage};
pub use writers::{WriterGone, Writers};

/// Maps keyed by user id. foldhash is several times faster than SipHash on
/// short keys and still seeded per process, so ids chosen by a client cannot
/// be precomputed to collide.
pub type UserMap<V> = std::collections::HashMap<String, V, foldhash::fast::RandomState>;

/// Milliseconds since the Unix epoch, the store's clock.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}
