//! The store interface: where stream state lives, as seen by the routes.
//!
//! [`StreamStore`] is async and speaks in mergeable aggregates, so a store
//! in this process ([`crate::state::memory`]) and a remote one (Redis
//! Cluster) answer through the same core code:
//!
//! - writes are whole validated batches ([`StagedBatch`], parsed and
//!   aggregated before the store sees them) tagged with a [`BatchId`], so a
//!   retried request is applied once;
//! - reads return aggregates, never raw records: the global
//!   [`ScoreAggregate`] of a stream (with its summary), one user's
//!   aggregate, GAUC as per-bucket [`GaucSums`] (a fixed number of sums,
//!   whatever the number of users), and pages of users selected by
//!   [`UserPager`];
//! - how a store runs (threads, snapshots, a write-ahead log, connections)
//!   is its own business, started by its constructor and ended by
//!   [`StreamStore::shutdown`].
//!
//! Methods are object-safe (`Arc<dyn StreamStore>`, chosen by
//! configuration): async ones return a [`BoxFuture`] rather than using
//! `async fn` in the trait, which is not object-safe. Stream names are the
//! stored names (tenant prefix included, see [`super::tenants`]).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use super::aggregate::ScoreAggregate;
use super::batch::StagedBatch;
use super::gauc::GaucSums;
use super::health::Health;
use super::tenants;
use super::users::{UserPager, UsersPage};
use super::wal::LogError;

/// A boxed, sendable future: what the store's async methods return.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Configured limits of the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budgets {
    pub max_streams: usize,
    pub max_users_per_stream: usize,
    pub max_scores_per_user: usize,
    pub max_scores_per_stream: usize,
    pub memory_budget: usize,
}

/// How long and how many client batch ids a store remembers per stream, to
/// answer a retried request with its first answer instead of applying it
/// again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Milliseconds a batch id is remembered after its batch was applied.
    pub ttl_ms: u64,
    /// Batch ids remembered per stream; the oldest is forgotten first.
    pub max_keys: usize,
}

impl Default for Retention {
    /// 24 hours, 10,000 ids per stream.
    fn default() -> Self {
        Retention {
            ttl_ms: 24 * 3600 * 1000,
            max_keys: 10_000,
        }
    }
}

/// The id of one ingest request: the client's `Idempotency-Key`, or one the
/// service generated (never repeated).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchId {
    key: String,
    from_client: bool,
}

impl BatchId {
    /// The client's key (already checked by the caller).
    pub fn from_client(key: impl Into<String>) -> BatchId {
        BatchId {
            key: key.into(),
            from_client: true,
        }
    }

    /// A fresh id, unique within this process and practically unique across
    /// processes (time, process id, counter and a per-process random seed).
    pub fn generated() -> BatchId {
        use std::hash::BuildHasher;
        use std::sync::atomic::{AtomicU64, Ordering};
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        static SEED: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
        let seed = *SEED
            .get_or_init(|| foldhash::fast::RandomState::default().hash_one(std::process::id()));
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        BatchId {
            key: format!("gen-{:x}-{seed:016x}-{n:x}", super::now_ms()),
            from_client: false,
        }
    }

    /// The id's text.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// True when the client sent it, so a repeat is expected and must be
    /// recognised; a generated id can never repeat and need not be kept.
    pub fn is_from_client(&self) -> bool {
        self.from_client
    }
}

/// Why the store refused a request; nothing was applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    #[error("unknown stream '{}'", tenants::local_name(.0))]
    UnknownStream(String),
    #[error("the service already holds {limit} streams (--max-streams); delete a stream or raise the limit")]
    TooManyStreams { limit: usize },
    #[error("stream '{}' has {users} users and this batch adds {new_users} new ones, over the limit of {limit} users per stream (--max-users-per-stream)", tenants::local_name(stream))]
    TooManyUsers {
        stream: String,
        users: usize,
        new_users: usize,
        limit: usize,
    },
    #[error("stream state holds about {used} bytes and this batch needs up to {needed} more, over the memory budget of {limit} bytes (--memory-budget)")]
    OverMemory {
        used: usize,
        needed: usize,
        limit: usize,
    },
    #[error("the {records} records staged so far need about {staged} bytes but only {headroom} bytes of the memory budget are free (--memory-budget)")]
    StagedOverMemory {
        records: usize,
        staged: usize,
        headroom: usize,
    },
    #[error("tenant '{tenant}' already holds {limit} streams (--tenant-max-streams); delete one of its streams or raise the limit")]
    TenantTooManyStreams { tenant: String, limit: usize },
    #[error("tenant '{tenant}' holds about {used} bytes of stream state and this batch needs up to {needed} more, over its budget of {limit} bytes (--tenant-memory-budget)")]
    TenantOverMemory {
        tenant: String,
        used: usize,
        needed: usize,
        limit: usize,
    },
    #[error(transparent)]
    Log(#[from] LogError),
    /// A remote store could not be reached or is failing over; nothing was
    /// applied and a retry may succeed (503 with `Retry-After`).
    #[error("the stream store is unavailable: {0}")]
    Unavailable(String),
    /// The store failed in a way a retry will not fix (a bug; 500).
    #[error("the stream store failed: {0}")]
    Internal(String),
}

/// A configured limit of the store, for a refusal to name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    MaxStreams,
    MaxUsersPerStream,
    MemoryBudget,
    TenantMaxStreams,
    TenantMemoryBudget,
}

impl Limit {
    /// The limit's name as a problem's `limit` member gives it (the flag
    /// without its dashes).
    pub fn name(self) -> &'static str {
        match self {
            Limit::MaxStreams => "max_streams",
            Limit::MaxUsersPerStream => "max_users_per_stream",
            Limit::MemoryBudget => "memory_budget",
            Limit::TenantMaxStreams => "tenant_max_streams",
            Limit::TenantMemoryBudget => "tenant_memory_budget",
        }
    }
}

impl StoreError {
    /// The limit that was hit, if any.
    pub fn limit(&self) -> Option<Limit> {
        match self {
            StoreError::UnknownStream(_)
            | StoreError::Log(_)
            | StoreError::Unavailable(_)
            | StoreError::Internal(_) => None,
            StoreError::TooManyStreams { .. } => Some(Limit::MaxStreams),
            StoreError::TooManyUsers { .. } => Some(Limit::MaxUsersPerStream),
            StoreError::OverMemory { .. } | StoreError::StagedOverMemory { .. } => {
                Some(Limit::MemoryBudget)
            }
            StoreError::TenantTooManyStreams { .. } => Some(Limit::TenantMaxStreams),
            StoreError::TenantOverMemory { .. } => Some(Limit::TenantMemoryBudget),
        }
    }
}

/// The answer to a successful ingest (or, for a repeated batch id, the
/// answer its first attempt got).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IngestSummary {
    pub accepted: u64,
    pub count: u64,
    pub users: usize,
    /// The write-ahead log record of the batch (0 without a log); internal
    /// to the memory store, which waits for it before answering.
    pub seq: u64,
}

/// A stream's summary: one line of `GET /streams`, and `GET /streams/{name}`.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamInfo {
    pub name: String,
    pub count: u64,
    pub users: usize,
    pub created_at_ms: u64,
    pub updated_at_ms: u64,
    /// True until the global aggregate was compacted.
    pub exact: bool,
    /// Upper bound on |auc - exact auc| of the global aggregate.
    pub auc_error_bound: f64,
}

impl StreamInfo {
    /// The summary of a stream whose global aggregate is `global`.
    pub fn new(
        name: &str,
        created_at_ms: u64,
        updated_at_ms: u64,
        users: usize,
        global: &ScoreAggregate,
    ) -> Self {
        StreamInfo {
            name: name.to_owned(),
            count: global.counts().count,
            users,
            created_at_ms,
            updated_at_ms,
            exact: global.is_exact(),
            auc_error_bound: global.auc_error_bound(),
        }
    }
}

/// A stream's global aggregate and summary, and (when asked) its GAUC sums,
/// all from one consistent view in the memory store (see
/// [`StreamStore::stream`] for a remote store's guarantee).
#[derive(Debug, Clone)]
pub struct StreamRead {
    pub info: StreamInfo,
    pub global: ScoreAggregate,
    /// Per-bucket GAUC sums (empty unless asked for); add them up with
    /// [`GaucSums::total`].
    pub gauc: Vec<GaucSums>,
}

/// Totals for `/internal/metrics`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Gauges {
    pub streams: usize,
    pub users: usize,
    pub records: u64,
    pub bytes: usize,
}

/// Where stream state lives (see the module docs).
///
/// Every method that changes state either applies its whole change or none
/// of it, and says which: an `Err` means nothing was applied.
pub trait StreamStore: Send + Sync + std::fmt::Debug {
    /// Cheap check while a large body is still being staged: refuses
    /// (`StagedOverMemory`) when `staged_bytes` for `records` records could
    /// not fit the store's memory budget anyway, before the rest is read.
    /// Stores without a local memory budget accept.
    fn admit_staged(&self, records: usize, staged_bytes: usize) -> Result<(), StoreError>;

    /// Merges a validated `batch` into stream `name` (created on first
    /// use), atomically: all of it or, on `Err`, none of it. A batch whose
    /// client id (`id.is_from_client()`) was already applied to this stream
    /// within the store's [`Retention`] is not applied again: the answer is
    /// the first attempt's. Answers once the change is as durable as the
    /// store makes changes (the memory store's `--fsync always` waits for
    /// the log).
    fn apply<'a>(
        &'a self,
        name: &'a str,
        batch: StagedBatch,
        id: &'a BatchId,
        now_ms: u64,
    ) -> BoxFuture<'a, Result<IngestSummary, StoreError>>;

    /// The summary of stream `name` (`UnknownStream` when absent).
    fn info<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<StreamInfo, StoreError>>;

    /// The global aggregate of stream `name` with its summary, and its
    /// per-bucket GAUC sums when `with_gauc`. The memory store reads all of
    /// it under one lock (a batch is seen entirely or not at all); a remote
    /// store documents what a reader may see while a batch is applied.
    fn stream<'a>(
        &'a self,
        name: &'a str,
        with_gauc: bool,
    ) -> BoxFuture<'a, Result<StreamRead, StoreError>>;

    /// User `user_id`'s aggregate in stream `name`: `Ok(None)` for a user the
    /// stream lacks, `UnknownStream` for a missing stream.
    fn user<'a>(
        &'a self,
        name: &'a str,
        user_id: &'a str,
    ) -> BoxFuture<'a, Result<Option<ScoreAggregate>, StoreError>>;

    /// One page of stream `name`'s users: the store feeds every user to
    /// `pager` ([`UserPager::offer`]) and returns [`UserPager::finish`].
    fn users<'a>(
        &'a self,
        name: &'a str,
        pager: UserPager,
    ) -> BoxFuture<'a, Result<UsersPage, StoreError>>;

    /// Every stream's summary, sorted by name.
    fn list(&self) -> BoxFuture<'_, Result<Vec<StreamInfo>, StoreError>>;

    /// Removes stream `name`: true when it existed. On `Err` nothing was
    /// removed.
    fn delete<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<bool, StoreError>>;

    /// Removes streams not updated since `now_ms - ttl_ms`; returns their names.
    fn purge_idle(
        &self,
        now_ms: u64,
        ttl_ms: u64,
    ) -> BoxFuture<'_, Result<Vec<String>, StoreError>>;

    /// Totals over every stream.
    fn gauges(&self) -> BoxFuture<'_, Result<Gauges, StoreError>>;

    /// What keeps the store from serving (for `/readyz`); empty when ready.
    fn readiness(&self) -> BoxFuture<'_, Vec<String>>;

    /// The health counters of a local data directory (snapshot and log), for
    /// `/internal/metrics`; `None` for a store without one.
    fn data_dir_health(&self) -> Option<Arc<Health>> {
        None
    }

    /// Ends the store's own work after the requests drained (the memory
    /// store writes its final snapshot and closes its log).
    fn shutdown(&self) -> BoxFuture<'_, std::io::Result<()>>;
}
