//! Dedicated writer threads: every merge into a stream runs on the thread its
//! name hashes to.
//!
//! Why not the blocking pool: a stream's per-user arrays are re-allocated on
//! every merge, and mimalloc hands a block freed by another thread back to
//! its owner only lazily. With merges landing on whichever pool thread is
//! free, each thread's freed arrays waited on the others' heaps while they
//! allocated fresh pages. One thread per stream keeps a stream's arrays
//! allocated and freed on one heap, so freed blocks are reused at once. In
//! the streams benchmark (a 93 MB live heap at the end) the peak RSS went
//! from 278-290 MB to 232-237 MB (three runs each).
//!
//! Merges into one stream are serial anyway (its write lock); streams that
//! hash to different lanes still merge in parallel. Parsing and staging stay
//! on the request's own threads. The price: a merge waiting for its stream's
//! lock (held by a snapshot encoding that stream, or a query reading it)
//! also delays the merges queued behind it on the same lane, for other
//! streams too. Both holders are short (a GAUC query over 100,000 users
//! takes ~6 ms).

use std::hash::BuildHasher;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc;

type Job = Box<dyn FnOnce() + Send>;

/// A fixed set of writer threads, each running its jobs in order.
pub struct Writers {
    lanes: Vec<mpsc::Sender<Job>>,
    hasher: foldhash::fast::FixedState,
}

/// The writer thread is gone (it could not be started, or the job panicked).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the stream writer thread did not complete the job")]
pub struct WriterGone;

impl Writers {
    /// Starts `lanes` writer threads (at least one). They end when the
    /// `Writers` is dropped.
    pub fn new(lanes: usize) -> std::io::Result<Writers> {
        let lanes = (0..lanes.max(1))
            .map(|i| {
                let (tx, rx) = mpsc::channel::<Job>();
                std::thread::Builder::new()
                    .name(format!("evald-writer-{i}"))
                    .spawn(move || {
                        for job in rx {
                            job();
                        }
                    })
                    .map(|_| tx)
            })
            .collect::<std::io::Result<Vec<_>>>()?;
        Ok(Writers {
            lanes,
            hasher: foldhash::fast::FixedState::default(),
        })
    }

    /// One writer lane per available core.
    pub fn per_core() -> std::io::Result<Writers> {
        Writers::new(std::thread::available_parallelism().map_or(1, usize::from))
    }

    /// Runs `job` on the lane of `key` and waits for its result without
    /// blocking the async worker. A panic in `job` is contained (the lane
    /// keeps running) and reported as [`WriterGone`].
    pub async fn run<T, F>(&self, key: &str, job: F) -> Result<T, WriterGone>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            if let Ok(result) = catch_unwind(AssertUnwindSafe(job)) {
                let _ = tx.send(result);
            }
        });
        let sender = self.lanes.get(self.lane(key)).ok_or(WriterGone)?;
        sender.send(job).map_err(|_| WriterGone)?;
        rx.await.map_err(|_| WriterGone)
    }

    fn lane(&self, key: &str) -> usize {
        (self.hasher.hash_one(key) % self.lanes.len() as u64) as usize
    }
}

impl std::fmt::Debug for Writers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writers")
            .field("lanes", &self.lanes.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_key_always_runs_on_the_same_thread() {
        let writers = Writers::new(3).unwrap_or_else(|e| panic!("{e}"));
        let name = || std::thread::current().name().map(str::to_owned);
        let first = writers.run("stream-a", name).await;
        for _ in 0..10 {
            assert_eq!(writers.run("stream-a", name).await, first);
        }
        assert!(first.is_ok_and(|n| n.is_some_and(|n| n.starts_with("evald-writer-"))));
    }

    #[tokio::test]
    async fn a_panicking_job_is_reported_and_the_lane_keeps_working() {
        let writers = Writers::new(1).unwrap_or_else(|e| panic!("{e}"));
        let failed = writers.run("s", || -> u32 { panic!("boom") }).await;
        assert_eq!(failed, Err(WriterGone));
        assert_eq!(writers.run("s", || 7).await, Ok(7));
    }
}
