//! The batch ids a stream applied recently, with the answer each got, so a
//! retried request (same `Idempotency-Key`) is answered without being
//! applied twice. Bounded in time and count ([`Retention`]).
//!
//! Kept in memory only: a snapshot or the write-ahead log does not hold them,
//! so after a restart a retry of a batch applied before it is applied again.

use std::collections::VecDeque;

use super::store::{IngestSummary, Retention};
use super::UserMap;

/// Approximate heap bytes of one remembered id beyond its text: the map
/// slot, the queue slot and the two `String` headers.
const ENTRY_OVERHEAD_BYTES: usize = 128;

/// Recent batch ids of one stream, oldest first.
#[derive(Debug, Clone, Default)]
pub struct RecentBatches {
    order: VecDeque<(String, u64)>,
    answers: UserMap<(u64, IngestSummary)>,
    bytes: usize,
}

impl RecentBatches {
    /// The first answer to batch `key`, if it was applied within the
    /// retention window before `now_ms`.
    pub fn answer(&self, key: &str, now_ms: u64, retention: Retention) -> Option<&IngestSummary> {
        self.answers
            .get(key)
            .filter(|(at, _)| now_ms.saturating_sub(*at) < retention.ttl_ms)
            .map(|(_, summary)| summary)
    }

    /// Remembers batch `key`'s answer, forgetting ids past the window or
    /// over the count. Returns the change in [`RecentBatches::heap_bytes`].
    pub fn remember(
        &mut self,
        key: &str,
        summary: IngestSummary,
        now_ms: u64,
        retention: Retention,
    ) -> isize {
        let before = self.bytes;
        if retention.max_keys > 0 {
            // An expired id applied again gets a new slot; its old slot,
            // when forgotten, leaves the newer answer alone.
            self.answers.insert(key.to_owned(), (now_ms, summary));
            self.order.push_back((key.to_owned(), now_ms));
            self.bytes += 2 * key.len() + ENTRY_OVERHEAD_BYTES;
        }
        self.forget(now_ms, retention);
        super::stream::signed(self.bytes) - super::stream::signed(before)
    }

    fn forget(&mut self, now_ms: u64, retention: Retention) {
        while let Some((key, at)) = self.order.front() {
            let expired = now_ms.saturating_sub(*at) >= retention.ttl_ms;
            if !expired && self.order.len() <= retention.max_keys {
                break;
            }
            if self.answers.get(key).is_some_and(|(t, _)| t == at) {
                self.answers.remove(key);
            }
            self.bytes = self
                .bytes
                .saturating_sub(2 * key.len() + ENTRY_OVERHEAD_BYTES);
            self.order.pop_front();
        }
    }

    /// Approximate heap bytes held.
    pub fn heap_bytes(&self) -> usize {
        self.bytes
    }

    /// Ids remembered.
    pub fn len(&self) -> usize {
        self.order.len()
    }

    /// True when no id is remembered.
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(n: u64) -> IngestSummary {
        IngestSummary {
            accepted: n,
            count: n,
            users: 1,
            seq: 0,
        }
    }

    #[test]
    fn ids_are_forgotten_after_the_window_and_over_the_count() {
        let r = Retention {
            ttl_ms: 100,
            max_keys: 2,
        };
        let mut recent = RecentBatches::default();
        assert!(recent.remember("a", answer(1), 0, r) > 0);
        assert_eq!(recent.answer("a", 99, r), Some(&answer(1)));
        assert_eq!(recent.answer("a", 100, r), None);
        recent.remember("b", answer(2), 10, r);
        recent.remember("c", answer(3), 20, r);
        assert_eq!(recent.len(), 2);
        assert_eq!(recent.answer("a", 21, r), None);
        assert_eq!(recent.answer("c", 21, r), Some(&answer(3)));
        let freed = recent.remember("d", answer(4), 500, r);
        assert!(freed < 0);
        assert_eq!(recent.len(), 1);
        assert_eq!(recent.answer("d", 501, r), Some(&answer(4)));
    }
}
