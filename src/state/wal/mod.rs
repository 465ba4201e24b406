//! The write-ahead log: every accepted batch and every delete, appended to
//! `--data-dir` before the request is acknowledged, replayed at start on top
//! of the last snapshot.
//!
//! # Appending and group commit
//! The store numbers and appends a record (under the stream's write lock,
//! after the budgets passed, just before it merges the batch), so a record
//! exists exactly for what is applied, in the order it is applied to its
//! stream. Appending only queues the encoded record in memory. One syncer
//! thread takes everything queued, writes it as one checksummed frame and
//! fsyncs it (`--fsync always`); requests wait for that before their 200, so
//! the batches that arrive during one fsync share the next one. With
//! `--fsync interval` requests do not wait and the syncer writes every
//! `--fsync-interval-ms`: a crash (of the process or the machine) can lose the
//! batches acknowledged in that window.
//!
//! # Snapshots and truncation
//! Records are spread over numbered segment files. A snapshot first
//! [`Wal::rotate`]s: later frames go to a new segment, so every record in the
//! older segments was appended (and, under the same lock hold, applied)
//! before the snapshot began and is in it; [`Wal::retire`] deletes them once
//! the snapshot is durable. Records of the new segment may be in the snapshot
//! too (applied after the rotation but before the snapshot read that stream):
//! each stream in a snapshot carries the sequence number of the last record
//! applied to it, and replay skips records at or below it. So a batch is
//! neither lost nor applied twice, and a deleted stream does not come back.
//!
//! # Failures
//! A failed write or fsync fails the requests waiting for it (they are not
//! acknowledged) and breaks the log: later appends are refused before
//! anything is applied, until a snapshot has saved the whole state and
//! retired the broken segment. `/readyz` reports it meanwhile.

pub mod codec;

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

pub use codec::{decode_segment, scan_segment, Entry, LogRecord, SegmentError, SegmentScan};

use super::batch::StagedBatch;
use super::health::Health;
use super::memory::MemoryStore;

/// When the log is fsynced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsyncMode {
    /// Before every acknowledgement (group commit).
    Always,
    /// Every so often; acknowledgements do not wait.
    Interval(Duration),
}

/// Largest frame (and so largest single record) the log writes.
const FRAME_MAX: usize = 1 << 30;

/// Failed groups remembered for late waiters (failures are rare and break
/// the log, so only a few groups can fail before it is healed).
const FAILED_RANGES_KEPT: usize = 1024;

/// Why a record was not logged or not made durable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LogError {
    #[error("the write-ahead log is unavailable since a write failed ({0}); nothing was applied; the next successful snapshot restores it")]
    Broken(String),
    #[error("the write-ahead log is closed (the server is shutting down); nothing was applied")]
    Closed,
    #[error(
        "one log record would take {0} bytes, over the limit of {FRAME_MAX}; send smaller requests"
    )]
    TooLarge(usize),
    #[error("could not encode the log record: {0}")]
    Encode(String),
    #[error("the batch was applied in memory but writing it to the write-ahead log failed, so it is not durable and may be lost on a crash")]
    NotDurable,
}

impl LogError {
    /// True when nothing was applied (a retry is safe).
    pub fn nothing_applied(&self) -> bool {
        !matches!(self, LogError::NotDurable)
    }
}

/// How far the syncer has got: every record up to `resolved` was written and
/// fsynced, except those in `failed` (inclusive ranges).
#[derive(Debug, Default)]
struct Progress {
    resolved: u64,
    failed: VecDeque<(u64, u64)>,
}

/// What a snapshot must cover (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rotation {
    /// Segments up to this number may be deleted once the snapshot is durable.
    pub through_segment: u64,
    /// The first sequence number not yet handed out: every record below it
    /// that is in a retired segment is covered by the snapshot.
    pub log_seq: u64,
}

#[derive(Debug)]
struct Inner {
    next_seq: u64,
    pending: VecDeque<(u64, Vec<u8>)>,
    /// The segment new frames go to.
    segment: u64,
    /// Why the log refuses appends, and the segment whose write failed.
    broken: Option<(String, u64)>,
    closing: bool,
}

#[derive(Debug)]
struct Shared {
    dir: PathBuf,
    mode: FsyncMode,
    inner: Mutex<Inner>,
    wake: Condvar,
    progress: tokio::sync::watch::Sender<Progress>,
    health: Arc<Health>,
}

/// The log of one data directory.
#[derive(Debug)]
pub struct Wal {
    shared: Arc<Shared>,
    syncer: Mutex<Option<JoinHandle<()>>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Path of segment `n` in `dir`.
pub fn segment_path(dir: &Path, n: u64) -> PathBuf {
    dir.join(format!("wal-{n:020}.log"))
}

/// The segments in `dir`, by number.
pub fn segments(dir: &Path) -> io::Result<Vec<(u64, PathBuf)>> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        if !entry.file_type()?.is_file() {
            continue;
        }
        let name = entry.file_name();
        let number = name
            .to_str()
            .and_then(|n| n.strip_prefix("wal-"))
            .and_then(|n| n.strip_suffix(".log"))
            .and_then(|n| n.parse::<u64>().ok());
        if let Some(n) = number {
            out.push((n, entry.path()));
        }
    }
    out.sort();
    Ok(out)
}

impl Wal {
    /// Starts the log of `dir`: records are numbered from `next_seq` and
    /// written to segments numbered from `first_segment` (created on the
    /// first write).
    pub fn start(
        dir: &Path,
        mode: FsyncMode,
        next_seq: u64,
        first_segment: u64,
        health: Arc<Health>,
    ) -> io::Result<Wal> {
        let shared = Arc::new(Shared {
            dir: dir.to_owned(),
            mode,
            inner: Mutex::new(Inner {
                next_seq: next_seq.max(1),
                pending: VecDeque::new(),
                segment: first_segment,
                broken: None,
                closing: false,
            }),
            wake: Condvar::new(),
            progress: tokio::sync::watch::Sender::new(Progress {
                resolved: next_seq.saturating_sub(1),
                failed: VecDeque::new(),
            }),
            health,
        });
        let for_thread = shared.clone();
        let handle = std::thread::Builder::new()
            .name("evald-wal".to_owned())
            .spawn(move || sync_loop(&for_thread))?;
        Ok(Wal {
            shared,
            syncer: Mutex::new(Some(handle)),
        })
    }

    /// The health record shared with the snapshot task.
    pub fn health(&self) -> &Arc<Health> {
        &self.shared.health
    }

    /// The fsync mode.
    pub fn mode(&self) -> FsyncMode {
        self.shared.mode
    }

    /// Numbers and queues a record: an ingest of `batch` into `stream`, or
    /// its deletion when `batch` is `None`. Called by the store where the
    /// change is certain to be applied; on an error it applies nothing.
    pub fn append(
        &self,
        stream: &str,
        at_ms: u64,
        batch: Option<&StagedBatch>,
    ) -> Result<u64, LogError> {
        let mut record = Vec::with_capacity(64 + batch.map_or(0, StagedBatch::heap_bytes));
        codec::encode_record(&mut record, 0, stream, at_ms, batch)
            .map_err(|e| LogError::Encode(e.to_string()))?;
        if record.len() > FRAME_MAX {
            return Err(LogError::TooLarge(record.len()));
        }
        let mut inner = lock(&self.shared.inner);
        if let Some((why, _)) = &inner.broken {
            return Err(LogError::Broken(why.clone()));
        }
        if inner.closing {
            return Err(LogError::Closed);
        }
        let seq = inner.next_seq;
        inner.next_seq += 1;
        codec::set_seq(&mut record, seq);
        inner.pending.push_back((seq, record));
        drop(inner);
        self.shared.wake.notify_all();
        Ok(seq)
    }

    /// Waits until record `seq` is durable (`--fsync always`; at once in
    /// interval mode, and for `seq` 0, which was not logged).
    pub async fn durable(&self, seq: u64) -> Result<(), LogError> {
        if seq == 0 || self.shared.mode != FsyncMode::Always {
            return Ok(());
        }
        let mut rx = self.shared.progress.subscribe();
        let progress = rx
            .wait_for(|p| p.resolved >= seq)
            .await
            .map_err(|_| LogError::NotDurable)?;
        if progress
            .failed
            .iter()
            .any(|&(lo, hi)| (lo..=hi).contains(&seq))
        {
            return Err(LogError::NotDurable);
        }
        Ok(())
    }

    /// Starts a new segment for the records that follow (see the module docs).
    pub fn rotate(&self) -> Rotation {
        let mut inner = lock(&self.shared.inner);
        let through_segment = inner.segment;
        inner.segment += 1;
        Rotation {
            through_segment,
            log_seq: inner.next_seq,
        }
    }

    /// Deletes the segments a durable snapshot covers (up to
    /// `rotation.through_segment`) and, when the log broke in one of them,
    /// takes appends again: the snapshot saved what the broken write lost.
    pub fn retire(&self, rotation: Rotation) -> io::Result<usize> {
        let mut removed = 0;
        for (n, path) in segments(&self.shared.dir)? {
            if n <= rotation.through_segment {
                fs::remove_file(&path)?;
                removed += 1;
            }
        }
        if removed > 0 {
            File::open(&self.shared.dir)?.sync_all()?;
        }
        let mut inner = lock(&self.shared.inner);
        if inner
            .broken
            .as_ref()
            .is_some_and(|(_, seg)| *seg <= rotation.through_segment)
        {
            inner.broken = None;
            self.shared.health.set_log_error(None);
            tracing::info!("the write-ahead log is available again after a snapshot");
        }
        Ok(removed)
    }

    /// Writes what is queued, stops the syncer and waits for it. Later
    /// appends are refused. Blocking: call it off the async workers.
    pub fn close(&self) {
        lock(&self.shared.inner).closing = true;
        self.shared.wake.notify_all();
        if let Some(handle) = lock(&self.syncer).take() {
            let _ = handle.join();
        }
    }
}

impl Drop for Wal {
    fn drop(&mut self) {
        self.close();
    }
}

/// One frame's worth of queued records.
struct Group {
    records: Vec<(u64, Vec<u8>)>,
    segment: u64,
    broken: Option<String>,
}

impl Shared {
    /// Waits for records to write (at once in `always` mode, every interval
    /// otherwise) and takes up to one frame of them; `None` once closing and
    /// nothing is left.
    fn next_group(&self) -> Option<Group> {
        let mut inner = lock(&self.inner);
        inner = match self.mode {
            FsyncMode::Always => self
                .wake
                .wait_while(inner, |i| i.pending.is_empty() && !i.closing)
                .unwrap_or_else(|e| e.into_inner()),
            FsyncMode::Interval(every) => {
                self.wake
                    .wait_timeout_while(inner, every, |i| !i.closing)
                    .unwrap_or_else(|e| e.into_inner())
                    .0
            }
        };
        if inner.pending.is_empty() && inner.closing {
            return None;
        }
        let mut records = Vec::new();
        let mut bytes = 0usize;
        while let Some((_, r)) = inner.pending.front() {
            if !records.is_empty() && bytes + r.len() > FRAME_MAX {
                break;
            }
            bytes += r.len();
            if let Some(rec) = inner.pending.pop_front() {
                records.push(rec);
            }
        }
        Some(Group {
            records,
            segment: inner.segment,
            broken: inner.broken.as_ref().map(|(why, _)| why.clone()),
        })
    }

    /// Marks the log broken by a failed write to `segment`.
    fn break_log(&self, why: &str, segment: u64) {
        let mut inner = lock(&self.inner);
        if inner.broken.is_none() {
            inner.broken = Some((why.to_owned(), segment));
            self.health.set_log_error(Some(why.to_owned()));
        }
    }
}

/// The syncer thread: writes and fsyncs one group at a time, then tells the
/// waiting requests.
fn sync_loop(shared: &Shared) {
    let mut file: Option<(u64, File)> = None;
    while let Some(group) = shared.next_group() {
        let (Some(first), Some(last)) = (
            group.records.first().map(|r| r.0),
            group.records.last().map(|r| r.0),
        ) else {
            continue;
        };
        let written = match &group.broken {
            Some(why) => Err(why.clone()),
            None => write_group(&shared.dir, &mut file, &group).map_err(|e| e.to_string()),
        };
        let ok = written.is_ok();
        match written {
            Ok(bytes) => shared.health.log_written(group.records.len(), bytes),
            Err(why) => {
                tracing::error!(error = %why, first, last, "could not write the write-ahead log; its records are not durable");
                shared.health.log_failed();
                shared.break_log(&why, group.segment);
                file = None;
            }
        }
        shared.progress.send_modify(|p| {
            p.resolved = p.resolved.max(last);
            if !ok {
                p.failed.push_back((first, last));
                if p.failed.len() > FAILED_RANGES_KEPT {
                    p.failed.pop_front();
                }
            }
        });
    }
    if let Some((_, f)) = file {
        let _ = f.sync_all();
    }
}

/// Creates segment `n` (never over an existing file) with its header, durably.
fn create_segment(dir: &Path, n: u64) -> io::Result<File> {
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(segment_path(dir, n))?;
    f.write_all(&codec::header())?;
    f.sync_all()?;
    File::open(dir)?.sync_all()?;
    Ok(f)
}

/// Writes `group` as one frame to its segment and fsyncs it; returns the bytes written.
fn write_group(dir: &Path, file: &mut Option<(u64, File)>, group: &Group) -> io::Result<u64> {
    let f = match file {
        Some((n, f)) if *n == group.segment => f,
        _ => {
            let f = create_segment(dir, group.segment)?;
            &mut file.insert((group.segment, f)).1
        }
    };
    let len: usize = group.records.iter().map(|r| r.1.len()).sum();
    let len32 = u32::try_from(len).map_err(|_| io::Error::other("frame over 4 GiB"))?;
    let crc = codec::frame_crc(len32, group.records.iter().map(|r| r.1.as_slice()));
    let mut out = BufWriter::with_capacity(1 << 20, &*f);
    out.write_all(&codec::frame_header(len32, crc))?;
    for (_, record) in &group.records {
        out.write_all(record)?;
    }
    out.flush()?;
    drop(out);
    f.sync_data()?;
    Ok((codec::FRAME_HEADER_LEN + len) as u64)
}

/// What replaying the log did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Replayed {
    pub segments: usize,
    pub records: usize,
    /// Records not already in the snapshot, so applied now.
    pub applied: usize,
    /// The highest sequence number in the log (0 when empty).
    pub last_seq: u64,
    /// The highest segment number (0 when none).
    pub last_segment: u64,
}

/// Why the log could not be replayed; the service refuses to start.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("could not read {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("{path} is corrupt: {error}")]
    Corrupt { path: PathBuf, error: SegmentError },
}

/// Applies every segment in `dir`, in order, to `store` (which holds the
/// last snapshot). A torn tail is cut off with a warning.
pub fn replay(dir: &Path, store: &MemoryStore) -> Result<Replayed, ReplayError> {
    let io_error = |path: &Path| {
        let path = path.to_owned();
        move |source| ReplayError::Io { path, source }
    };
    let mut out = Replayed::default();
    for (n, path) in segments(dir).map_err(io_error(dir))? {
        let bytes = fs::read(&path).map_err(io_error(&path))?;
        let scan = scan_segment(&bytes, &mut |record| {
            if store.replay(record) {
                out.applied += 1;
            }
        })
        .map_err(|error| ReplayError::Corrupt {
            path: path.clone(),
            error,
        })?;
        if let Some(torn) = scan.torn {
            tracing::warn!(path = %path.display(), offset = torn.offset, bytes = torn.bytes, reason = %torn.reason,
                "cutting off a torn log tail (a crash during a write; none of it was acknowledged)");
            if let Err(e) = cut(&path, torn.offset) {
                tracing::warn!(path = %path.display(), error = %e, "could not truncate the torn tail; it is skipped again at the next start");
            }
        }
        out.segments += 1;
        out.records += scan.records;
        out.last_seq = out.last_seq.max(scan.last_seq);
        out.last_segment = n;
    }
    Ok(out)
}

/// Truncates `path` to `len` bytes, durably.
fn cut(path: &Path, len: usize) -> io::Result<()> {
    let f = OpenOptions::new().write(true).open(path)?;
    f.set_len(len as u64)?;
    f.sync_all()
}
