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
}
