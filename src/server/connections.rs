//! The table of open connections: how many there are, which of them may be
//! closed to make room, and each one's phase (which deadline applies to it).
//!
//! A connection is *waiting* while it has no request in progress: either it
//! has not yet sent a complete request head (fresh: a slow or stalled client,
//! the slowloris case) or it is an idle keep-alive connection between
//! requests. Only waiting connections are ever evicted, fresh ones first,
//! oldest first: they cost the server a socket and a file descriptor but no
//! work is lost by closing them, and the client of an idle keep-alive
//! connection reconnects as it would after any keep-alive timeout. (A
//! connection evicted in the instant its request head completes loses that
//! request the same way: the client sees the connection close unanswered.)

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::{watch, Notify};
use tokio::time::Instant;

/// Where a connection is in its life; each phase but `Busy` has a deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Accepted at this instant; no complete request head yet.
    Fresh(Instant),
    /// At least one request in progress.
    Busy,
    /// The last response ended at this instant; no new request head yet.
    Idle(Instant),
}

/// Eviction order: never-served connections before idle ones, then by age
/// (ids grow with accept order).
type WaitingKey = (bool, u64);

struct Entry {
    conn: Arc<ConnShared>,
    in_progress: u32,
    served: bool,
}

impl Entry {
    fn waiting_key(&self) -> WaitingKey {
        (self.served, self.conn.id)
    }
}

#[derive(Default)]
struct Table {
    next_id: u64,
    open: HashMap<u64, Entry>,
    waiting: BTreeSet<WaitingKey>,
}

/// All open connections, bounded by `max`.
pub struct Tracker {
    max: usize,
    table: Mutex<Table>,
    /// Signalled when a connection closes or stops being busy, i.e. when the
    /// accept loop may find room that it did not find before.
    room: Notify,
}

/// What one connection's task and its requests share with the tracker.
pub struct ConnShared {
    id: u64,
    tracker: Arc<Tracker>,
    evict: Notify,
    phase: watch::Sender<Phase>,
}

/// A connection's place in the table; dropping it (when the connection's
/// task ends, after the socket is closed) frees the place.
pub struct Registration(Arc<ConnShared>);

/// A request in progress on a connection; dropping it (when the response
/// body is finished or abandoned) may make the connection idle.
pub struct RequestGuard(Arc<ConnShared>);

impl Tracker {
    pub fn new(max: usize) -> Arc<Self> {
        Arc::new(Tracker {
            max,
            table: Mutex::new(Table::default()),
            room: Notify::new(),
        })
    }

    fn table(&self) -> MutexGuard<'_, Table> {
        // The table stays consistent between statements, so a panic
        // elsewhere while it was locked leaves nothing half-done.
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Registers a just-accepted connection (fresh, no deadline passed yet).
    pub fn register(self: &Arc<Self>) -> Registration {
        let mut table = self.table();
        let id = table.next_id;
        table.next_id += 1;
        let (phase, _) = watch::channel(Phase::Fresh(Instant::now()));
        let conn = Arc::new(ConnShared {
            id,
            tracker: Arc::clone(self),
            evict: Notify::new(),
            phase,
        });
        let entry = Entry {
            conn: Arc::clone(&conn),
            in_progress: 0,
            served: false,
        };
        table.waiting.insert(entry.waiting_key());
        table.open.insert(id, entry);
        Registration(conn)
    }

    /// Number of open connections (evicted ones no longer count).
    pub fn open(&self) -> usize {
        self.table().open.len()
    }

    /// Waits until a new connection can be admitted: below `max`, or at it
    /// with a waiting connection to evict.
    pub async fn admissible(&self) {
        loop {
            {
                let table = self.table();
                if table.open.len() < self.max || !table.waiting.is_empty() {
                    return;
                }
            }
            // `notify_one` keeps a permit when nobody waits, so a change
            // between the check and this await is not lost.
            self.room.notified().await;
        }
    }

    /// Evicts one waiting connection when the table is full. Returns whether
    /// one was evicted.
    pub fn make_room(&self) -> bool {
        let mut table = self.table();
        table.open.len() >= self.max && Self::evict_from(&mut table)
    }

    /// Evicts the first waiting connection whatever the count (the process
    /// ran out of file descriptors). Returns whether one was evicted.
    pub fn evict_one(&self) -> bool {
        Self::evict_from(&mut self.table())
    }

    fn evict_from(table: &mut Table) -> bool {
        let Some((_, id)) = table.waiting.pop_first() else {
            return false;
        };
        match table.open.remove(&id) {
            Some(entry) => {
                entry.conn.evict.notify_one();
                true
            }
            None => false,
        }
    }

    /// Resolves when a connection closes or stops being busy.
    pub async fn room_changed(&self) {
        self.room.notified().await;
    }
}

impl ConnShared {
    /// Marks a request head as complete: the connection is busy.
    pub fn begin_request(self: &Arc<Self>) -> RequestGuard {
        let mut table = self.tracker.table();
        if let Some(entry) = table.open.get_mut(&self.id) {
            let key = entry.waiting_key();
            entry.in_progress += 1;
            entry.served = true;
            table.waiting.remove(&key);
        }
        self.phase.send_replace(Phase::Busy);
        RequestGuard(Arc::clone(self))
    }

    fn end_request(&self) {
        let mut table = self.tracker.table();
        let Some(entry) = table.open.get_mut(&self.id) else {
            return;
        };
        entry.in_progress = entry.in_progress.saturating_sub(1);
        if entry.in_progress == 0 {
            let key = entry.waiting_key();
            table.waiting.insert(key);
            self.phase.send_replace(Phase::Idle(Instant::now()));
            self.tracker.room.notify_one();
        }
    }
}

impl Registration {
    /// Shared with the requests of this connection.
    pub fn shared(&self) -> &Arc<ConnShared> {
        &self.0
    }

    /// Follows this connection's phase.
    pub fn phase(&self) -> watch::Receiver<Phase> {
        self.0.phase.subscribe()
    }

    /// Resolves when the accept loop evicted this connection.
    pub async fn evicted(&self) {
        self.0.evict.notified().await;
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        let tracker = &self.0.tracker;
        let mut table = tracker.table();
        if let Some(entry) = table.open.remove(&self.0.id) {
            let key = entry.waiting_key();
            table.waiting.remove(&key);
        }
        drop(table);
        tracker.room.notify_one();
    }
}

impl Drop for RequestGuard {
    fn drop(&mut self) {
        self.0.end_request();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::FutureExt;

    #[tokio::test]
    async fn a_full_table_evicts_the_oldest_fresh_connection_first() {
        let tracker = Tracker::new(3);
        let first = tracker.register();
        let second = tracker.register();
        let third = tracker.register();
        // The first has been served and is idle again; the second is busy.
        drop(first.shared().begin_request());
        let _busy = second.shared().begin_request();
        assert!(tracker.make_room());
        // The third (fresh) went before the first (idle, though older).
        assert_eq!(tracker.open(), 2);
        third.evicted().await;
        assert!(!tracker.make_room(), "below the maximum nothing is evicted");
        assert!(tracker.evict_one());
        first.evicted().await;
        assert!(!tracker.evict_one(), "a busy connection is never evicted");
    }

    #[tokio::test]
    async fn a_closed_connection_frees_its_place() {
        let tracker = Tracker::new(1);
        let only = tracker.register();
        let _busy = only.shared().begin_request();
        let admissible = tracker.admissible();
        tokio::pin!(admissible);
        assert!(admissible.as_mut().now_or_never().is_none());
        drop(only);
        admissible.await;
        assert_eq!(tracker.open(), 0);
    }
}
