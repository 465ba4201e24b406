//! The snapshot codec of an aggregate: [`ScoreAggregate::encode`] and
//! [`ScoreAggregate::decode`], the bounds-checked byte [`Reader`] they and the
//! snapshot file share, and [`ScoreAggregate::from_parts`], which rebuilds a
//! checked aggregate from decoded bins. Kept apart from the aggregate logic so
//! the on-disk format is read in one place; the format itself is described in
//! [`crate::state::snapshot`].
//!
//! Decoding never panics on bad input: every failure is a [`CodecError`].

use std::io::{self, Write};

use super::units::UnitScores;
use super::{Bin, CountCell, Entries, RealCell, RecordCounts, ScoreAggregate};
use crate::core::metrics::canonical_zero;

/// Why bytes could not be decoded. The messages name what was found, so a
/// corrupt snapshot says where it went wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    #[error("truncated: needed {needed} bytes, {left} left")]
    Truncated { needed: usize, left: usize },
    #[error("length out of range")]
    LengthOutOfRange,
    #[error("length {len} exceeds the remaining {left} bytes")]
    LengthExceedsRest { len: usize, left: usize },
    #[error("name is not UTF-8")]
    NotUtf8,
    #[error("record counts do not add up")]
    CountsDoNotAddUp,
    #[error("unknown aggregate layout {0}")]
    UnknownLayout(u8),
    #[error("bin {0} is not finite, sorted and disjoint")]
    BadBin(usize),
}

/// Writes `name` as [`Reader::string`] reads it: a u32 byte length, then UTF-8.
pub fn write_string(w: &mut dyn Write, name: &str) -> io::Result<()> {
    let len = u32::try_from(name.len()).map_err(|_| io::Error::other("name longer than 4 GiB"))?;
    w.write_all(&len.to_le_bytes())?;
    w.write_all(name.as_bytes())
}

/// Tags of the encoded entry layouts (see [`ScoreAggregate::encode`]).
const TAG_COUNTS: u8 = 0;
const TAG_REAL: u8 = 1;
const TAG_BINS: u8 = 2;

impl ScoreAggregate {
    /// Rebuilds an aggregate from its parts (snapshot restore). `bins` must be
    /// finite, sorted by `lo` and disjoint, each `lo <= hi`, weights `>= 0`.
    /// All-exact bins are stored in the smallest exact layout again (unit
    /// scores or counts when integral), as ingest would have built them.
    pub fn from_parts(bins: Vec<Bin>, counts: RecordCounts) -> Result<ScoreAggregate, CodecError> {
        let mut prev_hi = f64::NEG_INFINITY;
        for (i, b) in bins.iter().enumerate() {
            let finite = [b.lo, b.hi, b.pos, b.neg].iter().all(|v| v.is_finite());
            if !finite || b.lo > b.hi || b.pos < 0.0 || b.neg < 0.0 || (i > 0 && b.lo <= prev_hi) {
                return Err(CodecError::BadBin(i));
            }
            prev_hi = b.hi;
        }
        let fits_u32 = |w: f64| w.fract() == 0.0 && w <= f64::from(u32::MAX);
        let integral = bins.iter().all(|b| fits_u32(b.pos) && fits_u32(b.neg));
        let records: f64 = bins.iter().map(|b| b.pos + b.neg).sum();
        // Unit scores hold no empty score, so only non-empty ones count.
        let scores = bins.iter().filter(|b| b.pos + b.neg > 0.0).count();
        let entries = if bins.iter().any(|b| b.lo != b.hi) {
            Entries::Binned(bins)
        } else if integral
            && records < f64::from(u32::MAX)
            && UnitScores::is_compact(records as usize, scores)
        {
            Entries::Units(UnitScores::from_groups(
                bins.iter()
                    .map(|b| (canonical_zero(b.lo), b.pos as usize, b.neg as usize)),
            ))
        } else if integral {
            Entries::Counts(
                bins.iter()
                    .map(|b| CountCell {
                        score: canonical_zero(b.lo),
                        pos: b.pos as u32,
                        neg: b.neg as u32,
                    })
                    .collect(),
            )
        } else {
            Entries::Real(
                bins.iter()
                    .map(|b| RealCell {
                        score: canonical_zero(b.lo),
                        pos: b.pos,
                        neg: b.neg,
                    })
                    .collect(),
            )
        };
        Ok(ScoreAggregate { entries, counts })
    }

    /// Writes the aggregate in the snapshot format: the three record counts
    /// (u64 LE), a layout tag, the entry count (u64) and the entries: exact
    /// counts as (f64 score, u32 pos, u32 neg), exact weights as three f64,
    /// bins as four f64 (lo, hi, pos, neg).
    pub fn encode(&self, w: &mut dyn Write) -> io::Result<()> {
        for v in [
            self.counts.count,
            self.counts.positives,
            self.counts.negatives,
        ] {
            w.write_all(&v.to_le_bytes())?;
        }
        match &self.entries {
            Entries::Units(u) => {
                // Written as the counted cells it stands for (one format).
                w.write_all(&[TAG_COUNTS])?;
                w.write_all(&(u.distinct() as u64).to_le_bytes())?;
                for (score, pos, neg) in u.groups() {
                    w.write_all(&score.to_le_bytes())?;
                    w.write_all(&(pos as u32).to_le_bytes())?;
                    w.write_all(&(neg as u32).to_le_bytes())?;
                }
            }
            Entries::Counts(cells) => {
                w.write_all(&[TAG_COUNTS])?;
                w.write_all(&(cells.len() as u64).to_le_bytes())?;
                for c in cells {
                    w.write_all(&c.score.to_le_bytes())?;
                    w.write_all(&c.pos.to_le_bytes())?;
                    w.write_all(&c.neg.to_le_bytes())?;
                }
            }
            Entries::Real(cells) => {
                w.write_all(&[TAG_REAL])?;
                w.write_all(&(cells.len() as u64).to_le_bytes())?;
                for c in cells {
                    for v in [c.score, c.pos, c.neg] {
                        w.write_all(&v.to_le_bytes())?;
                    }
                }
            }
            Entries::Binned(bins) => {
                w.write_all(&[TAG_BINS])?;
                w.write_all(&(bins.len() as u64).to_le_bytes())?;
                for b in bins {
                    for v in [b.lo, b.hi, b.pos, b.neg] {
                        w.write_all(&v.to_le_bytes())?;
                    }
                }
            }
        }
        Ok(())
    }

    /// Reads an aggregate written by [`ScoreAggregate::encode`], checking that
    /// the entries are finite, sorted and disjoint. Never panics on bad input.
    pub fn decode(r: &mut Reader<'_>) -> Result<ScoreAggregate, CodecError> {
        let counts = RecordCounts {
            count: r.u64()?,
            positives: r.u64()?,
            negatives: r.u64()?,
        };
        if counts.positives.checked_add(counts.negatives) != Some(counts.count) {
            return Err(CodecError::CountsDoNotAddUp);
        }
        let tag = r.u8()?;
        let n = r.len(match tag {
            TAG_COUNTS => 16,
            TAG_REAL => 24,
            _ => 32,
        })?;
        let mut bins = Vec::with_capacity(n);
        for _ in 0..n {
            let bin = match tag {
                TAG_COUNTS => {
                    let s = r.f64()?;
                    let (p, q) = (r.u32()?, r.u32()?);
                    Bin {
                        lo: s,
                        hi: s,
                        pos: f64::from(p),
                        neg: f64::from(q),
                    }
                }
                TAG_REAL => {
                    let s = r.f64()?;
                    Bin {
                        lo: s,
                        hi: s,
                        pos: r.f64()?,
                        neg: r.f64()?,
                    }
                }
                TAG_BINS => Bin {
                    lo: r.f64()?,
                    hi: r.f64()?,
                    pos: r.f64()?,
                    neg: r.f64()?,
                },
                other => return Err(CodecError::UnknownLayout(other)),
            };
            bins.push(bin);
        }
        // The layout is chosen afresh (equality is by content).
        ScoreAggregate::from_parts(bins, counts)
    }
}

/// Tags of the compact layout (see [`ScoreAggregate::encode_compact`]).
const COMPACT_UNITS: u8 = 0x10;
const COMPACT_COUNTS: u8 = 0x11;
const COMPACT_SNAPSHOT: u8 = 0x12;

impl ScoreAggregate {
    /// Writes the aggregate in the compact layout the Redis store keeps per
    /// user, where every byte is paid once per user: the record count and
    /// positives, then unit scores as their two sorted runs (`f64`
    /// positives, then negatives) after the two run lengths, or counted
    /// cells as (`f64` score, pos, neg) after their number; integers as
    /// LEB128 varints. (The record counts are kept: integral weights restored
    /// from a snapshot are held as counts too.) Real weights and bins, rare
    /// per user, in the snapshot format after a tag. At 20 records on 20
    /// scores this is 165 bytes where the snapshot format takes 353.
    pub fn encode_compact(&self, out: &mut Vec<u8>) {
        let mut head = |tag: u8| {
            out.push(tag);
            put_varint(out, self.counts.count);
            put_varint(out, self.counts.positives);
        };
        match &self.entries {
            Entries::Units(u) => {
                head(COMPACT_UNITS);
                let (pos, neg) = u.classes();
                put_varint(out, pos.len() as u64);
                put_varint(out, neg.len() as u64);
                for score in pos.iter().chain(neg) {
                    out.extend_from_slice(&score.to_le_bytes());
                }
            }
            Entries::Counts(cells) => {
                head(COMPACT_COUNTS);
                put_varint(out, cells.len() as u64);
                for c in cells {
                    out.extend_from_slice(&c.score.to_le_bytes());
                    put_varint(out, u64::from(c.pos));
                    put_varint(out, u64::from(c.neg));
                }
            }
            Entries::Real(_) | Entries::Binned(_) => {
                out.push(COMPACT_SNAPSHOT);
                // Writing into a Vec cannot fail.
                let _ = self.encode(out as &mut dyn Write);
            }
        }
    }

    /// Reads an aggregate written by [`ScoreAggregate::encode_compact`], with
    /// the checks of [`ScoreAggregate::decode`]. Never panics on bad input.
    pub fn decode_compact(bytes: &[u8]) -> Result<ScoreAggregate, CodecError> {
        let mut r = Reader::new(bytes);
        let tag = r.u8()?;
        match tag {
            COMPACT_SNAPSHOT => return ScoreAggregate::decode(&mut r),
            COMPACT_UNITS | COMPACT_COUNTS => {}
            other => return Err(CodecError::UnknownLayout(other)),
        }
        let count = r.varint()?;
        let positives = r.varint()?;
        let negatives = count
            .checked_sub(positives)
            .ok_or(CodecError::CountsDoNotAddUp)?;
        let bins = match tag {
            COMPACT_UNITS => {
                let n_pos = r.varint_len(0)?;
                let n_neg = r.varint_len(0)?;
                let scores = n_pos.saturating_add(n_neg);
                if scores.saturating_mul(8) > r.remaining() {
                    return Err(CodecError::LengthExceedsRest {
                        len: scores,
                        left: r.remaining(),
                    });
                }
                let pos = (0..n_pos).map(|_| r.f64()).collect::<Result<Vec<_>, _>>()?;
                let neg = (0..n_neg).map(|_| r.f64()).collect::<Result<Vec<_>, _>>()?;
                unit_bins(&pos, &neg)?
            }
            COMPACT_COUNTS => {
                // A cell takes at least 10 bytes (score and two 1-byte varints).
                let n = r.varint_len(10)?;
                let mut bins = Vec::with_capacity(n);
                for _ in 0..n {
                    let score = r.f64()?;
                    let (p, q) = (r.varint_u32()?, r.varint_u32()?);
                    bins.push(Bin {
                        lo: score,
                        hi: score,
                        pos: f64::from(p),
                        neg: f64::from(q),
                    });
                }
                bins
            }
            other => return Err(CodecError::UnknownLayout(other)),
        };
        let counts = RecordCounts {
            count,
            positives,
            negatives,
        };
        ScoreAggregate::from_parts(bins, counts)
    }
}

/// The counted bins of two sorted runs of unit records (positives,
/// negatives); an error when a score is not finite or a run not sorted.
fn unit_bins(pos: &[f64], neg: &[f64]) -> Result<Vec<Bin>, CodecError> {
    for run in [pos, neg] {
        if let Some(i) =
            (0..run.len()).find(|&i| !run[i].is_finite() || (i > 0 && run[i - 1] > run[i]))
        {
            return Err(CodecError::BadBin(i));
        }
    }
    let (mut i, mut j) = (0, 0);
    let mut bins = Vec::new();
    while i < pos.len() || j < neg.len() {
        // Finite values: the smaller head is taken, so each step moves on.
        let score = match (pos.get(i), neg.get(j)) {
            (Some(&p), Some(&n)) => p.min(n),
            (Some(&p), None) => p,
            (None, Some(&n)) => n,
            (None, None) => break,
        };
        let (i0, j0) = (i, j);
        while pos.get(i) == Some(&score) {
            i += 1;
        }
        while neg.get(j) == Some(&score) {
            j += 1;
        }
        bins.push(Bin {
            lo: score,
            hi: score,
            pos: (i - i0) as f64,
            neg: (j - j0) as f64,
        });
    }
    Ok(bins)
}

/// Appends `v` as an unsigned LEB128 varint. Nine lines, so no crate for it.
fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// A bounds-checked little-endian reader over a byte slice.
#[derive(Debug)]
pub struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    /// Reads from `bytes`.
    pub fn new(bytes: &'a [u8]) -> Self {
        Reader { bytes }
    }

    /// Bytes not yet read.
    pub fn remaining(&self) -> usize {
        self.bytes.len()
    }

    /// The next `n` bytes.
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], CodecError> {
        if n > self.bytes.len() {
            return Err(CodecError::Truncated {
                needed: n,
                left: self.bytes.len(),
            });
        }
        let (head, tail) = self.bytes.split_at(n);
        self.bytes = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], CodecError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    /// One byte.
    pub fn u8(&mut self) -> Result<u8, CodecError> {
        Ok(self.array::<1>()?[0])
    }

    /// A u32.
    pub fn u32(&mut self) -> Result<u32, CodecError> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    /// A u64.
    pub fn u64(&mut self) -> Result<u64, CodecError> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    /// An f64.
    pub fn f64(&mut self) -> Result<f64, CodecError> {
        Ok(f64::from_le_bytes(self.array()?))
    }

    /// An element count, refused when `count * item_bytes` exceeds what is left
    /// (so a corrupt length cannot trigger a huge allocation).
    pub fn len(&mut self, item_bytes: usize) -> Result<usize, CodecError> {
        let n = usize::try_from(self.u64()?).map_err(|_| CodecError::LengthOutOfRange)?;
        if n.saturating_mul(item_bytes) > self.bytes.len() {
            return Err(CodecError::LengthExceedsRest {
                len: n,
                left: self.bytes.len(),
            });
        }
        Ok(n)
    }

    /// An unsigned LEB128 varint (at most 10 bytes, no overflow).
    pub fn varint(&mut self) -> Result<u64, CodecError> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = self.u8()?;
            let bits = u64::from(byte & 0x7f);
            if shift == 63 && bits > 1 {
                return Err(CodecError::LengthOutOfRange);
            }
            v |= bits << shift;
            if byte & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(CodecError::LengthOutOfRange)
    }

    /// A varint that fits a u32.
    pub fn varint_u32(&mut self) -> Result<u32, CodecError> {
        u32::try_from(self.varint()?).map_err(|_| CodecError::LengthOutOfRange)
    }

    /// A varint element count, refused as [`Reader::len`] refuses one.
    pub fn varint_len(&mut self, item_bytes: usize) -> Result<usize, CodecError> {
        let n = usize::try_from(self.varint()?).map_err(|_| CodecError::LengthOutOfRange)?;
        if n.saturating_mul(item_bytes) > self.bytes.len() {
            return Err(CodecError::LengthExceedsRest {
                len: n,
                left: self.bytes.len(),
            });
        }
        Ok(n)
    }

    /// A u32-length-prefixed UTF-8 string.
    pub fn string(&mut self) -> Result<String, CodecError> {
        let n = self.u32()? as usize;
        let bytes = self.take(n)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| CodecError::NotUtf8)
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::rec;
    use super::*;

    #[test]
    fn restored_parts_take_the_layout_their_nonempty_scores_call_for() {
        let exact = |s: f64, pos: f64, neg: f64| Bin {
            lo: s,
            hi: s,
            pos,
            neg,
        };
        let counts = RecordCounts {
            count: 3,
            positives: 3,
            negatives: 0,
        };
        // 3 records on one non-empty score: counted cells, not unit scores
        let parts = vec![
            exact(0.1, 3.0, 0.0),
            exact(0.2, 0.0, 0.0),
            exact(0.3, 0.0, 0.0),
        ];
        let agg = ScoreAggregate::from_parts(parts, counts).unwrap_or_default();
        assert!(matches!(agg.entries, Entries::Counts(_)));
        // -0.0 is stored as 0.0 in every layout
        for (pos, neg) in [(1.0, 0.0), (3.0, 4.0), (0.5, 2.0)] {
            let agg =
                ScoreAggregate::from_parts(vec![exact(-0.0, pos, neg)], counts).unwrap_or_default();
            let first = agg.iter().next().map(|e| e.0.to_bits());
            assert_eq!(first, Some(0.0f64.to_bits()), "{pos} {neg}");
        }
    }

    #[test]
    fn encode_then_decode_round_trips_every_layout() {
        let mut unit = vec![
            rec(0.2, true, 1.0),
            rec(0.7, false, 1.0),
            rec(0.7, true, 1.0),
        ];
        let mut real = vec![rec(0.2, true, 0.5), rec(0.7, false, 2.0)];
        let mut binned = ScoreAggregate::from_records(&mut unit.clone());
        binned.merge(&ScoreAggregate::from_records(&mut real.clone()));
        binned.compact(1);
        for agg in [
            ScoreAggregate::from_records(&mut unit),
            ScoreAggregate::from_records(&mut real),
            binned,
            ScoreAggregate::default(),
        ] {
            let mut bytes = Vec::new();
            assert!(agg.encode(&mut bytes).is_ok());
            let back = ScoreAggregate::decode(&mut Reader::new(&bytes));
            assert_eq!(back.as_ref(), Ok(&agg));
            // every truncation is an error, never a panic
            for cut in 0..bytes.len() {
                assert!(ScoreAggregate::decode(&mut Reader::new(&bytes[..cut])).is_err());
            }
        }
    }

    #[test]
    fn the_compact_layout_round_trips_every_layout_and_refuses_bad_bytes() {
        let mut unit = vec![
            rec(0.2, true, 1.0),
            rec(0.7, false, 1.0),
            rec(0.7, true, 1.0),
        ];
        let mut counted: Vec<_> = (0..5).map(|i| rec(0.4, i % 2 == 0, 1.0)).collect();
        counted.push(rec(-0.0, false, 1.0));
        let mut real = vec![rec(0.2, true, 0.5), rec(0.7, false, 2.0)];
        let mut binned = ScoreAggregate::from_records(&mut unit.clone());
        binned.merge(&ScoreAggregate::from_records(&mut real.clone()));
        binned.compact(1);
        // Integral weights restored from a snapshot: held as unit scores,
        // with fewer records than scores.
        let restored = ScoreAggregate::from_parts(
            vec![
                Bin {
                    lo: 0.3,
                    hi: 0.3,
                    pos: 2.0,
                    neg: 0.0,
                },
                Bin {
                    lo: 0.5,
                    hi: 0.5,
                    pos: 0.0,
                    neg: 1.0,
                },
            ],
            RecordCounts {
                count: 2,
                positives: 1,
                negatives: 1,
            },
        );
        let layouts = [
            restored.unwrap_or_default(),
            ScoreAggregate::from_records(&mut unit),
            ScoreAggregate::from_records(&mut counted),
            ScoreAggregate::from_records(&mut real),
            binned,
            ScoreAggregate::default(),
        ];
        assert_eq!(layouts[0].counts().count, 2);
        assert!(matches!(layouts[0].entries, Entries::Units(_)));
        assert!(matches!(layouts[1].entries, Entries::Units(_)));
        assert!(matches!(layouts[2].entries, Entries::Counts(_)));
        for agg in layouts {
            let mut bytes = Vec::new();
            agg.encode_compact(&mut bytes);
            assert_eq!(ScoreAggregate::decode_compact(&bytes).as_ref(), Ok(&agg));
            for cut in 0..bytes.len() {
                assert!(
                    ScoreAggregate::decode_compact(&bytes[..cut]).is_err(),
                    "cut {cut}"
                );
            }
        }
        // Unsorted or non-finite runs, an unknown tag, an overlong varint.
        let units = |pos: &[f64], neg: &[f64]| {
            let n = (pos.len() + neg.len()) as u8;
            let mut b = vec![
                COMPACT_UNITS,
                n,
                pos.len() as u8,
                pos.len() as u8,
                neg.len() as u8,
            ];
            for s in pos.iter().chain(neg) {
                b.extend_from_slice(&s.to_le_bytes());
            }
            ScoreAggregate::decode_compact(&b)
        };
        assert!(units(&[0.5, 0.2], &[]).is_err());
        assert!(units(&[0.2], &[f64::NAN]).is_err());
        assert!(units(&[0.2, 0.2], &[0.1, 0.2]).is_ok());
        assert_eq!(
            ScoreAggregate::decode_compact(&[0x7f]),
            Err(CodecError::UnknownLayout(0x7f))
        );
        let mut overlong = vec![COMPACT_COUNTS];
        overlong.extend([0xff; 11]);
        assert!(ScoreAggregate::decode_compact(&overlong).is_err());
        // More positives than records.
        assert_eq!(
            ScoreAggregate::decode_compact(&[COMPACT_COUNTS, 1, 2, 0]),
            Err(CodecError::CountsDoNotAddUp)
        );
    }

    #[test]
    fn twenty_unit_records_on_twenty_scores_take_165_compact_bytes() {
        let mut records: Vec<_> = (0..20)
            .map(|i| rec(f64::from(i) / 20.0, i % 3 == 0, 1.0))
            .collect();
        let agg = ScoreAggregate::from_records(&mut records);
        let mut compact = Vec::new();
        agg.encode_compact(&mut compact);
        let mut snapshot = Vec::new();
        assert!(agg.encode(&mut snapshot).is_ok());
        assert_eq!((compact.len(), snapshot.len()), (165, 353));
    }

    #[test]
    fn varints_round_trip_at_the_edges() {
        for v in [
            0,
            1,
            127,
            128,
            16_383,
            16_384,
            u64::from(u32::MAX),
            u64::MAX,
        ] {
            let mut b = Vec::new();
            put_varint(&mut b, v);
            let mut r = Reader::new(&b);
            assert_eq!(r.varint(), Ok(v));
            assert_eq!(r.remaining(), 0);
        }
    }
}
