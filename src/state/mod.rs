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

/// The users in an order that depends on their ids alone: by a fixed-seed
/// hash of the id, then the id. A [`UserMap`]'s own order changes with its
/// per-process seed, and sums over users in floating point (GAUC and, above
/// all, its standard error, a difference of near-equal sums) change in the
/// last bits with the order: a restart would answer other bits than before.
/// A hash sorts faster than the ids themselves (the GAUC query walks them).
pub fn users_in_fixed_order<V>(users: &UserMap<V>) -> Vec<(&str, &V)> {
    use std::hash::BuildHasher;
    let fixed = foldhash::fast::FixedState::with_seed(0);
    let mut keyed: Vec<(u64, &str, &V)> = users
        .iter()
        .map(|(id, v)| (fixed.hash_one(id), id.as_str(), v))
        .collect();
    keyed.sort_unstable_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
    keyed.into_iter().map(|(_, id, v)| (id, v)).collect()
}

/// Milliseconds since the Unix epoch, the store's clock.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod fixed_order_tests {
    use super::*;

    #[test]
    fn the_fixed_user_order_ignores_the_maps_seed_and_insertion_order() {
        let ids: Vec<String> = (0..1000).map(|i| format!("u{i}")).collect();
        let (mut a, mut b) = (UserMap::default(), UserMap::default());
        for (i, id) in ids.iter().enumerate() {
            a.insert(id.clone(), i);
        }
        for (i, id) in ids.iter().enumerate().rev() {
            b.insert(id.clone(), i);
        }
        let order = |m: &UserMap<usize>| -> Vec<(String, usize)> {
            users_in_fixed_order(m)
                .into_iter()
                .map(|(id, v)| (id.to_owned(), *v))
                .collect()
        };
        let (in_a, in_b) = (order(&a), order(&b));
        assert_eq!(in_a.len(), 1000);
        assert_eq!(in_a, in_b);
    }
}
