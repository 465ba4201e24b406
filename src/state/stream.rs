//! One named stream: a global aggregate and one aggregate per user.

use super::aggregate::ScoreAggregate;
use super::batch::StagedBatch;
use super::gauc::GaucSums;
use super::recent::RecentBatches;
use super::store::{StreamInfo, StreamRead};
use super::UserMap;

/// Approximate fixed heap cost of one user entry beyond its aggregate: the map
/// slot, the key `String` header and the aggregate struct.
pub const USER_OVERHEAD_BYTES: usize = 128;

/// A named, growing binary evaluation.
#[derive(Debug, Clone, Default)]
pub struct Stream {
    pub name: String,
    pub created_at_ms: u64,
    pub updated_at_ms: u64,
    /// Sequence number of the last write-ahead log record applied to the
    /// stream (0 when none): replay skips records at or below it.
    pub last_seq: u64,
    pub global: ScoreAggregate,
    pub users: UserMap<ScoreAggregate>,
    /// Client batch ids applied recently (not saved in snapshots).
    pub recent: RecentBatches,
}

impl Stream {
    /// An empty stream created at `now_ms`.
    pub fn new(name: &str, now_ms: u64) -> Self {
        Stream {
            name: name.to_owned(),
            created_at_ms: now_ms,
            updated_at_ms: now_ms,
            last_seq: 0,
            global: ScoreAggregate::default(),
            users: UserMap::default(),
            recent: RecentBatches::default(),
        }
    }

    /// Number of users whose records the batch adds that the stream lacks.
    pub fn new_users(&self, batch: &StagedBatch) -> usize {
        batch
            .users
            .iter()
            .filter(|(name, _)| !self.users.contains_key(name))
            .count()
    }

    /// Merges `batch`, then compacts any aggregate past its distinct-score
    /// budget. Returns the change in [`Stream::heap_bytes`]-style accounting.
    pub fn apply(
        &mut self,
        batch: StagedBatch,
        max_scores_per_user: usize,
        max_scores_per_stream: usize,
        now_ms: u64,
    ) -> isize {
        let mut delta = 0isize;
        let before = self.global.heap_bytes();
        // Owned merges: a new stream takes the batch's aggregates as they
        // are instead of copying them (see `ScoreAggregate::merge_owned`).
        self.global.merge_owned(batch.global);
        self.global.compact(max_scores_per_stream);
        delta += signed(self.global.heap_bytes()) - signed(before);
        for (name, agg) in batch.users {
            match self.users.get_mut(&name) {
                Some(existing) => {
                    let before = existing.heap_bytes();
                    existing.merge_owned(agg);
                    existing.compact(max_scores_per_user);
                    delta += signed(existing.heap_bytes()) - signed(before);
                }
                None => {
                    let mut agg = agg;
                    agg.compact(max_scores_per_user);
                    delta += signed(agg.heap_bytes() + name.len() + USER_OVERHEAD_BYTES);
                    self.users.insert(name, agg);
                }
            }
        }
        self.updated_at_ms = now_ms.max(self.updated_at_ms);
        delta
    }

    /// Approximate heap bytes held by the stream.
    pub fn heap_bytes(&self) -> usize {
        self.global.heap_bytes()
            + self.recent.heap_bytes()
            + self
                .users
                .iter()
                .map(|(name, agg)| agg.heap_bytes() + name.len() + USER_OVERHEAD_BYTES)
                .sum::<usize>()
    }

    /// The stream's summary.
    pub fn info(&self) -> StreamInfo {
        StreamInfo::new(
            &self.name,
            self.created_at_ms,
            self.updated_at_ms,
            self.users.len(),
            &self.global,
        )
    }

    /// The stream as a store read returns it: summary, a copy of the global
    /// aggregate and (when asked) the GAUC sums over its users as one bucket.
    pub fn read(&self, with_gauc: bool) -> StreamRead {
        StreamRead {
            info: self.info(),
            global: self.global.clone(),
            gauc: if with_gauc {
                vec![GaucSums::of_users(self.users.values())]
            } else {
                Vec::new()
            },
        }
    }

    /// Records in the stream.
    pub fn count(&self) -> u64 {
        self.global.counts().count
    }
}

pub(crate) fn signed(v: usize) -> isize {
    isize::try_from(v).unwrap_or(isize::MAX)
}
