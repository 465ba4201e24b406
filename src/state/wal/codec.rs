//! The on-disk format of a log segment, and its decoder.
//!
//! # Format (version 1, little-endian)
//! ```text
//! segment: "EVALDWAL"  u32 version  frame*
//! frame:   u32 FRAME_MAGIC  u32 payload length (> 0)  u32 CRC-32 of (length ++ payload)  payload
//! payload: record+
//! record:  u64 seq  u8 kind  name (u32 length + UTF-8)  u64 at_ms
//!          kind 1 (ingest): global aggregate, u64 user count, per user: name, aggregate
//!          kind 2 (delete): nothing more
//!          (aggregates as in `ScoreAggregate::encode`)
//! ```
//!
//! # Frames and torn tails
//! A frame is what one `write` + `fsync` of the log puts on disk (one group
//! commit), and the next frame is written only after that fsync returned. So a
//! crash can tear only the last frame, and no record in it was acknowledged.
//! A bad frame (short, wrong magic, wrong checksum) with no valid frame after
//! it is therefore a torn tail: it is cut off. A bad frame *followed by* a
//! valid one cannot come from a crash (that frame was written after the bad
//! one was synced): it is corruption of acknowledged data, and the log is
//! refused, as a corrupt snapshot is.
//!
//! Decoding never panics on any input ([`decode_segment`]).

use std::io::{self, Write};

use super::super::aggregate::{write_string, CodecError, Reader, ScoreAggregate};
use super::super::batch::StagedBatch;

/// Leading magic bytes of a segment file.
pub const MAGIC: &[u8; 8] = b"EVALDWAL";
/// The only format version this build reads and writes.
pub const VERSION: u32 = 1;
/// Bytes of the segment header (magic and version).
pub const HEADER_LEN: usize = 8 + 4;
/// Marks the start of a frame, so the decoder can tell a valid frame after a
/// bad one (corruption) from garbage after a torn write.
pub const FRAME_MAGIC: u32 = 0xE7A1_D0F5;
/// Bytes of a frame header (magic, length, checksum).
pub const FRAME_HEADER_LEN: usize = 4 + 4 + 4;

const KIND_INGEST: u8 = 1;
const KIND_DELETE: u8 = 2;

/// What one log record says happened.
#[derive(Debug, Clone)]
pub enum Entry {
    /// A validated batch was merged into the stream.
    Ingest(StagedBatch),
    /// The stream was deleted (`DELETE /streams/{name}` or TTL expiry).
    Delete,
}

/// One decoded log record.
#[derive(Debug, Clone)]
pub struct LogRecord {
    /// Position in the log: strictly increasing over the whole log.
    pub seq: u64,
    /// The stream it applies to.
    pub stream: String,
    /// The store's clock when it was applied.
    pub at_ms: u64,
    pub entry: Entry,
}

/// Why a segment is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SegmentError {
    #[error("not an evald log (bad magic bytes)")]
    NotALog,
    #[error("log format version {0}; this build reads version {VERSION}")]
    UnknownVersion(u32),
    #[error("corrupt frame at byte {offset} ({reason}) followed by a valid frame at byte {next}: acknowledged records are damaged")]
    CorruptFrame {
        offset: usize,
        reason: FrameError,
        next: usize,
    },
    #[error(
        "frame at byte {offset} passed its checksum but a record in it does not decode: {error}"
    )]
    BadRecord { offset: usize, error: CodecError },
    #[error(
        "frame at byte {offset} passed its checksum but holds a record of unknown kind {kind}"
    )]
    UnknownKind { offset: usize, kind: u8 },
    #[error("record at frame byte {offset} has sequence number {seq}, not after {previous}")]
    OutOfOrder {
        offset: usize,
        seq: u64,
        previous: u64,
    },
}

/// Why a frame is not valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("truncated")]
    Truncated,
    #[error("no frame marker")]
    NoMarker,
    #[error("empty frame")]
    Empty,
    #[error("checksum mismatch")]
    Checksum,
}

/// A torn tail that was found (and is to be cut off).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TornTail {
    /// Where the valid prefix ends.
    pub offset: usize,
    /// Bytes after it.
    pub bytes: usize,
    pub reason: FrameError,
}

/// What a readable segment holds.
#[derive(Debug, Default)]
pub struct SegmentScan {
    /// Records, in log order.
    pub records: usize,
    /// The highest sequence number seen (0 when none).
    pub last_seq: u64,
    /// Length of the valid prefix (the whole file unless torn).
    pub valid_len: usize,
    pub torn: Option<TornTail>,
}

/// Appends one record to `out`. Its first 8 bytes hold `seq`; the log
/// patches them when it numbers the record (see [`set_seq`]).
pub fn encode_record(
    out: &mut Vec<u8>,
    seq: u64,
    stream: &str,
    at_ms: u64,
    batch: Option<&StagedBatch>,
) -> io::Result<()> {
    out.write_all(&seq.to_le_bytes())?;
    out.write_all(&[if batch.is_some() {
        KIND_INGEST
    } else {
        KIND_DELETE
    }])?;
    write_string(out, stream)?;
    out.write_all(&at_ms.to_le_bytes())?;
    if let Some(batch) = batch {
        batch.global.encode(out)?;
        out.write_all(&(batch.users.len() as u64).to_le_bytes())?;
        for (name, agg) in &batch.users {
            write_string(out, name)?;
            agg.encode(out)?;
        }
    }
    Ok(())
}

/// Sets the sequence number of a record encoded by [`encode_record`].
pub fn set_seq(record: &mut [u8], seq: u64) {
    if let Some(head) = record.get_mut(..8) {
        head.copy_from_slice(&seq.to_le_bytes());
    }
}

/// The segment header.
pub fn header() -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[..8].copy_from_slice(MAGIC);
    h[8..].copy_from_slice(&VERSION.to_le_bytes());
    h
}

/// The header of a frame holding `payload_len` bytes whose CRC-32 state
/// after the payload is `payload_crc` (see [`frame_crc`]).
pub fn frame_header(payload_len: u32, crc: u32) -> [u8; FRAME_HEADER_LEN] {
    let mut h = [0u8; FRAME_HEADER_LEN];
    h[..4].copy_from_slice(&FRAME_MAGIC.to_le_bytes());
    h[4..8].copy_from_slice(&payload_len.to_le_bytes());
    h[8..].copy_from_slice(&crc.to_le_bytes());
    h
}

/// The CRC-32 of a frame: over its length, then each part of its payload.
pub fn frame_crc<'a>(payload_len: u32, parts: impl IntoIterator<Item = &'a [u8]>) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&payload_len.to_le_bytes());
    for part in parts {
        h.update(part);
    }
    h.finalize()
}

/// The payload of the frame at `offset` and the offset after it.
fn frame_at(bytes: &[u8], offset: usize) -> Result<(&[u8], usize), FrameError> {
    let rest = bytes.get(offset..).ok_or(FrameError::Truncated)?;
    let head = rest.get(..FRAME_HEADER_LEN).ok_or(FrameError::Truncated)?;
    let word = |i: usize| {
        head.get(i..i + 4)
            .and_then(|b| <[u8; 4]>::try_from(b).ok())
            .map_or(0, u32::from_le_bytes)
    };
    if word(0) != FRAME_MAGIC {
        return Err(FrameError::NoMarker);
    }
    let len = word(4);
    if len == 0 {
        return Err(FrameError::Empty);
    }
    let end = FRAME_HEADER_LEN.saturating_add(len as usize);
    let payload = rest
        .get(FRAME_HEADER_LEN..end)
        .ok_or(FrameError::Truncated)?;
    if frame_crc(len, [payload]) != word(8) {
        return Err(FrameError::Checksum);
    }
    Ok((payload, offset + end))
}

/// The first valid frame starting after `offset`, if any.
fn next_valid_frame(bytes: &[u8], offset: usize) -> Option<usize> {
    let marker = FRAME_MAGIC.to_le_bytes();
    let from = offset.checked_add(1)?;
    let tail = bytes.get(from..)?;
    memchr::memmem::find_iter(tail, &marker)
        .map(|i| from + i)
        .find(|&at| frame_at(bytes, at).is_ok())
}

/// Decodes one record of the frame at `offset`.
fn decode_record(r: &mut Reader<'_>, offset: usize) -> Result<LogRecord, SegmentError> {
    let bad = |error| SegmentError::BadRecord { offset, error };
    decode_fields(r)
        .map_err(bad)?
        .map_err(|kind| SegmentError::UnknownKind { offset, kind })
}

/// A record, `Ok(Err(kind))` for an unknown kind.
fn decode_fields(r: &mut Reader<'_>) -> Result<Result<LogRecord, u8>, CodecError> {
    let seq = r.u64()?;
    let kind = r.u8()?;
    let stream = r.string()?;
    let at_ms = r.u64()?;
    let entry = match kind {
        KIND_INGEST => {
            let global = ScoreAggregate::decode(r)?;
            let n = r.len(4 + 24 + 1 + 8)?;
            let mut users = Vec::with_capacity(n);
            for _ in 0..n {
                let name = r.string()?;
                users.push((name, ScoreAggregate::decode(r)?));
            }
            Entry::Ingest(StagedBatch { global, users })
        }
        KIND_DELETE => Entry::Delete,
        other => return Ok(Err(other)),
    };
    Ok(Ok(LogRecord {
        seq,
        stream,
        at_ms,
        entry,
    }))
}

/// Decodes a whole segment file, handing each record to `on_record` in log
/// order. A torn tail is reported in the result (the caller cuts it off); a
/// foreign file, an unknown version or corruption before the tail is an
/// error. A file shorter than its header is a segment torn at creation.
/// Never panics, whatever `bytes` holds.
pub fn scan_segment(
    bytes: &[u8],
    on_record: &mut dyn FnMut(LogRecord),
) -> Result<SegmentScan, SegmentError> {
    let mut scan = SegmentScan::default();
    if bytes.len() < HEADER_LEN {
        if !MAGIC.starts_with(bytes.get(..bytes.len().min(8)).unwrap_or_default()) {
            return Err(SegmentError::NotALog);
        }
        scan.torn = Some(TornTail {
            offset: 0,
            bytes: bytes.len(),
            reason: FrameError::Truncated,
        });
        return Ok(scan);
    }
    let mut r = Reader::new(bytes);
    if r.take(8).ok() != Some(MAGIC.as_slice()) {
        return Err(SegmentError::NotALog);
    }
    match r.u32() {
        Ok(VERSION) => {}
        Ok(other) => return Err(SegmentError::UnknownVersion(other)),
        Err(_) => return Err(SegmentError::NotALog),
    }
    let mut offset = HEADER_LEN;
    while offset < bytes.len() {
        let (payload, next) = match frame_at(bytes, offset) {
            Ok(frame) => frame,
            Err(reason) => {
                if let Some(next) = next_valid_frame(bytes, offset) {
                    return Err(SegmentError::CorruptFrame {
                        offset,
                        reason,
                        next,
                    });
                }
                scan.torn = Some(TornTail {
                    offset,
                    bytes: bytes.len() - offset,
                    reason,
                });
                break;
            }
        };
        let mut p = Reader::new(payload);
        while p.remaining() > 0 {
            let record = decode_record(&mut p, offset)?;
            if record.seq <= scan.last_seq {
                return Err(SegmentError::OutOfOrder {
                    offset,
                    seq: record.seq,
                    previous: scan.last_seq,
                });
            }
            scan.last_seq = record.seq;
            scan.records += 1;
            on_record(record);
        }
        offset = next;
    }
    scan.valid_len = scan.torn.map_or(bytes.len(), |t| t.offset);
    Ok(scan)
}

/// Decodes a segment and returns its records (for tests and fuzzing; the
/// service replays through [`scan_segment`] without holding them all).
/// Never panics, whatever `bytes` holds.
pub fn decode_segment(bytes: &[u8]) -> Result<(Vec<LogRecord>, SegmentScan), SegmentError> {
    let mut records = Vec::new();
    let scan = scan_segment(bytes, &mut |r| records.push(r))?;
    Ok((records, scan))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{BatchBuilder, Record};

    fn batch(n: u32) -> StagedBatch {
        let mut b = BatchBuilder::new();
        for i in 0..n {
            let r = Record {
                score: f64::from(i) / 10.0,
                positive: i % 2 == 0,
                weight: if i % 3 == 0 { 0.5 } else { 1.0 },
            };
            assert!(b.push(Some(["a", "b"][i as usize % 2]), r).is_ok());
        }
        b.finish()
    }

    fn frame(records: &[(u64, Option<StagedBatch>)]) -> Vec<u8> {
        let mut payload = Vec::new();
        for (seq, b) in records {
            assert!(encode_record(&mut payload, *seq, "s", 7, b.as_ref()).is_ok());
        }
        let len = payload.len() as u32;
        let mut out = frame_header(len, frame_crc(len, [payload.as_slice()])).to_vec();
        out.extend(payload);
        out
    }

    fn segment() -> (Vec<u8>, usize) {
        let mut bytes = header().to_vec();
        bytes.extend(frame(&[(1, Some(batch(5))), (2, None)]));
        let first_end = bytes.len();
        bytes.extend(frame(&[(3, Some(batch(3)))]));
        (bytes, first_end)
    }

    #[test]
    fn records_round_trip_in_order() {
        let (bytes, _) = segment();
        let (records, scan) = decode_segment(&bytes).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(scan.records, 3);
        assert_eq!(scan.last_seq, 3);
        assert_eq!(scan.valid_len, bytes.len());
        assert!(scan.torn.is_none());
        let seqs: Vec<u64> = records.iter().map(|r| r.seq).collect();
        assert_eq!(seqs, vec![1, 2, 3]);
        assert!(matches!(&records[1].entry, Entry::Delete));
        match &records[0].entry {
            Entry::Ingest(b) => {
                assert_eq!(b.global, batch(5).global);
                assert_eq!(b.users, batch(5).users);
            }
            Entry::Delete => panic!("expected an ingest"),
        }
        assert_eq!((records[0].stream.as_str(), records[0].at_ms), ("s", 7));
    }

    #[test]
    fn every_cut_of_the_last_frame_is_a_torn_tail_keeping_the_first() {
        let (bytes, first_end) = segment();
        for cut in first_end..bytes.len() {
            let scan = decode_segment(&bytes[..cut]).map(|(_, s)| s);
            match scan {
                Ok(s) => {
                    assert_eq!(s.records, 2, "cut at {cut}");
                    assert_eq!(s.valid_len, first_end, "cut at {cut}");
                    assert_eq!(s.torn.is_some(), cut > first_end, "cut at {cut}");
                }
                Err(e) => panic!("cut at {cut} refused: {e}"),
            }
        }
        // a segment torn inside its header holds nothing, and is not refused
        for cut in 0..HEADER_LEN {
            assert!(decode_segment(&bytes[..cut]).is_ok_and(|(r, _)| r.is_empty()));
        }
    }

    #[test]
    fn a_zero_filled_or_garbage_tail_is_torn() {
        let (mut bytes, _) = segment();
        let end = bytes.len();
        bytes.extend([0u8; 4096]);
        let scan = decode_segment(&bytes).map(|(_, s)| s);
        assert!(
            matches!(&scan, Ok(s) if s.valid_len == end && s.records == 3),
            "{scan:?}"
        );
    }

    #[test]
    fn a_checksum_mismatch_in_the_last_frame_is_torn_but_before_a_valid_frame_is_refused() {
        let (bytes, first_end) = segment();
        let mut last_bad = bytes.clone();
        if let Some(b) = last_bad.get_mut(first_end + FRAME_HEADER_LEN + 3) {
            *b ^= 0x40;
        }
        let scan = decode_segment(&last_bad).map(|(_, s)| s);
        assert!(
            matches!(&scan, Ok(s) if s.torn.map(|t| t.reason) == Some(FrameError::Checksum)),
            "{scan:?}"
        );
        let mut middle_bad = bytes.clone();
        if let Some(b) = middle_bad.get_mut(HEADER_LEN + FRAME_HEADER_LEN + 3) {
            *b ^= 0x40;
        }
        let refused = decode_segment(&middle_bad).map(|(_, s)| s);
        match refused {
            Err(e @ SegmentError::CorruptFrame { .. }) => {
                assert!(e.to_string().contains("checksum mismatch"), "{e}");
                assert!(e.to_string().contains(&format!("byte {first_end}")), "{e}");
            }
            other => panic!("a corrupt middle frame was accepted: {other:?}"),
        }
    }

    #[test]
    fn foreign_and_future_files_are_refused() {
        assert_eq!(
            decode_segment(b"hello world, not a log").map(|_| ()).err(),
            Some(SegmentError::NotALog)
        );
        let mut future = header().to_vec();
        future[8] = 9;
        assert_eq!(
            decode_segment(&future).map(|_| ()).err(),
            Some(SegmentError::UnknownVersion(9))
        );
    }

    #[test]
    fn sequence_numbers_must_increase() {
        let mut bytes = header().to_vec();
        bytes.extend(frame(&[(5, None), (5, None)]));
        assert!(matches!(
            decode_segment(&bytes),
            Err(SegmentError::OutOfOrder {
                seq: 5,
                previous: 5,
                ..
            })
        ));
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(tail in proptest::collection::vec(proptest::num::u8::ANY, 0..512), flip in 0usize..4096) {
            let (mut bytes, _) = segment();
            let at = flip % bytes.len();
            bytes[at] ^= 0x5a;
            let _ = decode_segment(&bytes);
            let mut with_tail = header().to_vec();
            with_tail.extend(&tail);
            let _ = decode_segment(&with_tail);
            let _ = decode_segment(&tail);
        }
    }
}
