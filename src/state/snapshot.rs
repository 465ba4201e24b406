//! Durable snapshots of every stream.
//!
//! # Format (version 2, little-endian)
//! ```text
//! "EVALDSNP"  u32 version
//! payload:    u64 log_seq (version 2), then per stream:
//!             name (u32 length + UTF-8), u64 created_at_ms, u64 updated_at_ms,
//!             u64 last_seq (version 2), global aggregate, u64 user count,
//!             per user: name, aggregate (aggregates as in `ScoreAggregate::encode`)
//! trailer:    u64 stream count, u64 payload length, u32 CRC-32 (IEEE) of the payload, "EVALDEND"
//! ```
//! Version 1 (without the two sequence numbers, read as 0) is still read.
//! `log_seq` is the write-ahead log position the snapshot was started at and
//! `last_seq` the last log record applied to each stream (see
//! [`crate::state::wal`]): together they say which log records it holds.
//!
//! # Atomicity
//! A snapshot is written to `streams.snap.tmp`, fsynced, renamed over
//! `streams.snap`, and the directory is fsynced. A crash at any point leaves
//! either the previous snapshot or the new one, never a torn file. What was
//! ingested after it is in the write-ahead log.

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use super::aggregate::{write_string, CodecError, Reader, ScoreAggregate};
use super::memory::MemoryStore;
use super::stream::Stream;

/// Leading magic bytes.
const MAGIC: &[u8; 8] = b"EVALDSNP";
/// Trailing magic bytes (a file cut short loses them).
const END_MAGIC: &[u8; 8] = b"EVALDEND";
/// The format version this build writes.
pub const VERSION: u32 = 2;
/// The oldest format version this build reads.
pub const OLDEST_VERSION: u32 = 1;
/// Snapshot file name inside `--data-dir`.
pub const FILE_NAME: &str = "streams.snap";

/// Why a snapshot could not be restored.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("could not read {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("{path} is not an evald snapshot (bad magic bytes)")]
    NotASnapshot { path: PathBuf },
    #[error("{path} has snapshot format version {found}; this build reads versions {OLDEST_VERSION} to {VERSION}")]
    UnknownVersion { path: PathBuf, found: u32 },
    #[error("{path} is corrupt: {reason}")]
    Corrupt { path: PathBuf, reason: Corruption },
}

/// What is wrong inside a snapshot whose header is right.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Corruption {
    #[error(transparent)]
    Codec(#[from] CodecError),
    #[error("file is truncated (no trailer)")]
    NoTrailer,
    #[error("file is truncated (no end marker)")]
    NoEndMarker,
    #[error("payload is {found} bytes but the trailer says {declared}")]
    PayloadLength { found: usize, declared: u64 },
    #[error("checksum mismatch")]
    Checksum,
    #[error("{0} unexpected bytes after the last stream")]
    TrailingBytes(usize),
    #[error("stream '{stream}': {error}")]
    Stream { stream: String, error: CodecError },
    #[error("stream '{stream}', user '{user}': {error}")]
    User {
        stream: String,
        user: String,
        error: CodecError,
    },
}

/// A snapshot read back.
#[derive(Debug, Clone, Default)]
pub struct Restored {
    /// The log position the snapshot was started at (0 for version 1).
    pub log_seq: u64,
    pub streams: Vec<Stream>,
}

/// What a snapshot wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapshotStats {
    pub streams: usize,
    pub bytes: u64,
}

/// Path of the snapshot in `dir`.
pub fn path_in(dir: &Path) -> PathBuf {
    dir.join(FILE_NAME)
}

/// A writer that counts bytes and updates a CRC-32 of what passes through.
struct Checksummed<W: Write> {
    inner: W,
    crc: crc32fast::Hasher,
    len: u64,
}

impl<W: Write> Write for Checksummed<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        let written = buf.get(..n).unwrap_or(buf);
        self.crc.update(written);
        self.len += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

fn encode_stream(w: &mut dyn Write, s: &Stream) -> io::Result<()> {
    write_string(w, &s.name)?;
    w.write_all(&s.created_at_ms.to_le_bytes())?;
    w.write_all(&s.updated_at_ms.to_le_bytes())?;
    w.write_all(&s.last_seq.to_le_bytes())?;
    s.global.encode(w)?;
    w.write_all(&(s.users.len() as u64).to_le_bytes())?;
    // Sorted so the same state always gives the same bytes.
    let mut users: Vec<(&String, &ScoreAggregate)> = s.users.iter().collect();
    users.sort_by(|a, b| a.0.cmp(b.0));
    for (name, agg) in users {
        write_string(w, name)?;
        agg.encode(w)?;
    }
    Ok(())
}

/// Writes every stream of `store` to `dir` atomically (see the module docs),
/// started at log position `log_seq`. Each stream is read under its own read
/// lock, so it is internally consistent; streams are taken one after
/// another. Callers must not write two snapshots of one `dir` at once (they
/// share the temporary file).
pub fn write(store: &MemoryStore, dir: &Path, log_seq: u64) -> io::Result<SnapshotStats> {
    fs::create_dir_all(dir)?;
    let tmp = dir.join(format!("{FILE_NAME}.tmp"));
    let file = File::create(&tmp)?;
    let mut out = BufWriter::with_capacity(1 << 20, file);
    out.write_all(MAGIC)?;
    out.write_all(&VERSION.to_le_bytes())?;
    // The stream count is known only once export has walked the map, so it
    // goes into the trailer.
    let mut body = Checksummed {
        inner: &mut out,
        crc: crc32fast::Hasher::new(),
        len: 0,
    };
    body.write_all(&log_seq.to_le_bytes())?;
    let mut streams = 0usize;
    let mut encode = |s: &Stream| -> io::Result<()> {
        streams += 1;
        encode_stream(&mut body, s)
    };
    store.export(&mut encode)?;
    let (crc, len) = (body.crc.finalize(), body.len);
    out.write_all(&(streams as u64).to_le_bytes())?;
    out.write_all(&len.to_le_bytes())?;
    out.write_all(&crc.to_le_bytes())?;
    out.write_all(END_MAGIC)?;
    let file = out.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()?;
    drop(file);
    let target = path_in(dir);
    fs::rename(&tmp, &target)?;
    // Persist the rename itself.
    File::open(dir)?.sync_all()?;
    Ok(SnapshotStats {
        streams,
        bytes: len + 8 + 4 + 8 + 8 + 4 + 8,
    })
}

/// Reads the snapshot in `dir`. `Ok(None)` when there is none (first start).
pub fn read(dir: &Path) -> Result<Option<Restored>, SnapshotError> {
    let path = path_in(dir);
    let bytes = match fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(SnapshotError::Io { path, source }),
    };
    decode(&bytes).map(Some).map_err(|e| e.at(path))
}

/// A decode failure before the path is known.
#[derive(Debug)]
pub(crate) enum DecodeError {
    NotASnapshot,
    UnknownVersion(u32),
    Corrupt(Corruption),
}

impl DecodeError {
    fn at(self, path: PathBuf) -> SnapshotError {
        match self {
            DecodeError::NotASnapshot => SnapshotError::NotASnapshot { path },
            DecodeError::UnknownVersion(found) => SnapshotError::UnknownVersion { path, found },
            DecodeError::Corrupt(reason) => SnapshotError::Corrupt { path, reason },
        }
    }
}

impl From<Corruption> for DecodeError {
    fn from(reason: Corruption) -> Self {
        DecodeError::Corrupt(reason)
    }
}

impl From<CodecError> for DecodeError {
    fn from(reason: CodecError) -> Self {
        DecodeError::Corrupt(reason.into())
    }
}

/// Size of the fixed trailer: stream count, payload length, CRC, end magic.
const TRAILER: usize = 8 + 8 + 4 + 8;

/// Decodes a whole snapshot file (crate-visible for [`crate::fuzzing`]).
pub(crate) fn decode(bytes: &[u8]) -> Result<Restored, DecodeError> {
    let mut r = Reader::new(bytes);
    if r.take(8).ok() != Some(MAGIC.as_slice()) {
        return Err(DecodeError::NotASnapshot);
    }
    let version = r.u32()?;
    if !(OLDEST_VERSION..=VERSION).contains(&version) {
        return Err(DecodeError::UnknownVersion(version));
    }
    let with_seqs = version >= 2;
    let rest = r.take(r.remaining())?;
    let split = rest
        .len()
        .checked_sub(TRAILER)
        .ok_or(Corruption::NoTrailer)?;
    let (payload, trailer) = rest.split_at(split);
    let mut t = Reader::new(trailer);
    let streams = t.u64()?;
    let len = t.u64()?;
    let crc = t.u32()?;
    if t.take(8)? != END_MAGIC.as_slice() {
        return Err(Corruption::NoEndMarker.into());
    }
    if len != payload.len() as u64 {
        return Err(Corruption::PayloadLength {
            found: payload.len(),
            declared: len,
        }
        .into());
    }
    if crc32fast::hash(payload) != crc {
        return Err(Corruption::Checksum.into());
    }
    Ok(decode_payload(payload, streams, with_seqs)?)
}

/// Decodes the `streams` streams of a payload whose frame (magic, version,
/// trailer, checksum) was checked; `with_seqs` for format version 2 and
/// later (the log position and each stream's last sequence number). Apart
/// from [`decode`] so the fuzzer ([`crate::fuzzing`]) reaches it without
/// forging a checksum.
pub(crate) fn decode_payload(
    payload: &[u8],
    streams: u64,
    with_seqs: bool,
) -> Result<Restored, Corruption> {
    let mut p = Reader::new(payload);
    let log_seq = if with_seqs { p.u64()? } else { 0 };
    let mut out = Vec::new();
    for _ in 0..streams {
        out.push(decode_stream(&mut p, with_seqs)?);
    }
    if p.remaining() != 0 {
        return Err(Corruption::TrailingBytes(p.remaining()));
    }
    Ok(Restored {
        log_seq,
        streams: out,
    })
}

fn decode_stream(r: &mut Reader<'_>, with_seqs: bool) -> Result<Stream, Corruption> {
    let name = r.string()?;
    let created_at_ms = r.u64()?;
    let updated_at_ms = r.u64()?;
    let last_seq = if with_seqs { r.u64()? } else { 0 };
    let global = ScoreAggregate::decode(r).map_err(|error| Corruption::Stream {
        stream: name.clone(),
        error,
    })?;
    let n = r.len(4 + 24 + 1 + 8)?;
    let mut users = super::UserMap::with_capacity_and_hasher(n, Default::default());
    for _ in 0..n {
        let user = r.string()?;
        let agg = ScoreAggregate::decode(r).map_err(|error| Corruption::User {
            stream: name.clone(),
            user: user.clone(),
            error,
        })?;
        users.insert(user, agg);
    }
    Ok(Stream {
        name,
        created_at_ms,
        updated_at_ms,
        last_seq,
        global,
        users,
        recent: Default::default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{BatchBuilder, Budgets, MemoryStore, Record};

    fn temp_dir(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("evald-snap-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    fn store_with_data() -> MemoryStore {
        let store = MemoryStore::new(Budgets {
            max_streams: 10,
            max_users_per_stream: 10,
            max_scores_per_user: 2,
            max_scores_per_stream: 100,
            memory_budget: 1 << 30,
        });
        for (name, weight) in [("a", 1.0), ("b", 0.5)] {
            let mut b = BatchBuilder::new();
            for i in 0..20 {
                let r = Record {
                    score: f64::from(i) / 7.0,
                    positive: i % 3 == 0,
                    weight,
                };
                assert!(b.push(Some(["u1", "u2"][i as usize % 2]), r).is_ok());
            }
            assert!(store.ingest(name, b.finish(), 42).is_ok());
        }
        store
    }

    fn dump(store: &MemoryStore) -> Vec<u8> {
        let mut out = Vec::new();
        let r = store.export(&mut |s| encode_stream(&mut out, s));
        assert!(r.is_ok());
        out
    }

    #[test]
    fn snapshot_round_trip_restores_identical_state() {
        let dir = temp_dir("roundtrip");
        let store = store_with_data();
        let stats = write(&store, &dir, 9);
        assert!(
            matches!(stats, Ok(SnapshotStats { streams: 2, .. })),
            "{stats:?}"
        );
        let restored = MemoryStore::new(store.budgets());
        match read(&dir) {
            Ok(Some(snap)) => {
                assert_eq!(snap.log_seq, 9);
                restored.import(snap.streams);
            }
            other => panic!("restore failed: {other:?}"),
        }
        assert_eq!(dump(&restored), dump(&store));
        assert_eq!(restored.gauges(), store.gauges());
        let _ = fs::remove_dir_all(&dir);
    }

    /// A version 1 file of `store`: no log position, no `last_seq`.
    fn version_1(store: &MemoryStore) -> Vec<u8> {
        let mut payload = Vec::new();
        let mut streams = 0u64;
        let r = store.export(&mut |s| {
            streams += 1;
            write_string(&mut payload, &s.name)?;
            payload.write_all(&s.created_at_ms.to_le_bytes())?;
            payload.write_all(&s.updated_at_ms.to_le_bytes())?;
            s.global.encode(&mut payload)?;
            payload.write_all(&(s.users.len() as u64).to_le_bytes())?;
            let mut users: Vec<_> = s.users.iter().collect();
            users.sort_by(|a, b| a.0.cmp(b.0));
            for (name, agg) in users {
                write_string(&mut payload, name)?;
                agg.encode(&mut payload)?;
            }
            Ok(())
        });
        assert!(r.is_ok());
        let mut out = MAGIC.to_vec();
        out.extend(1u32.to_le_bytes());
        out.extend(&payload);
        out.extend(streams.to_le_bytes());
        out.extend((payload.len() as u64).to_le_bytes());
        out.extend(crc32fast::hash(&payload).to_le_bytes());
        out.extend(END_MAGIC);
        out
    }

    #[test]
    fn a_version_1_snapshot_is_still_read() {
        let dir = temp_dir("v1");
        let store = store_with_data();
        assert!(fs::create_dir_all(&dir).is_ok());
        assert!(fs::write(path_in(&dir), version_1(&store)).is_ok());
        let restored = MemoryStore::new(store.budgets());
        match read(&dir) {
            Ok(Some(snap)) => {
                assert_eq!(snap.log_seq, 0);
                assert!(snap.streams.iter().all(|s| s.last_seq == 0));
                restored.import(snap.streams);
            }
            other => panic!("a version 1 snapshot was not read: {other:?}"),
        }
        assert_eq!(dump(&restored), dump(&store));
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_missing_snapshot_means_a_first_start() {
        assert!(matches!(read(&temp_dir("missing")), Ok(None)));
    }

    #[test]
    fn corrupt_truncated_and_foreign_snapshots_are_refused() {
        let dir = temp_dir("corrupt");
        assert!(write(&store_with_data(), &dir, 0).is_ok());
        let good = fs::read(path_in(&dir)).unwrap_or_default();
        let mut flipped = good.clone();
        if let Some(b) = flipped.get_mut(40) {
            *b ^= 0x10;
        }
        let mut future = good.clone();
        if let Some(v) = future.get_mut(8) {
            *v = 3;
        }
        let cases: Vec<(&str, Vec<u8>, &str)> = vec![
            ("flipped byte", flipped, "checksum mismatch"),
            ("truncated", good[..good.len() - 3].to_vec(), "truncated"),
            ("future version", future, "format version 3"),
            (
                "foreign file",
                b"hello world, not a snapshot".to_vec(),
                "not an evald snapshot",
            ),
        ];
        for (case, bytes, expected) in cases {
            assert!(fs::write(path_in(&dir), &bytes).is_ok());
            match read(&dir) {
                Err(e) => assert!(e.to_string().contains(expected), "{case}: {e}"),
                Ok(_) => panic!("{case}: a bad snapshot was accepted"),
            }
        }
        let _ = fs::remove_dir_all(&dir);
    }
}
