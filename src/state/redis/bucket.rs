//! The value of a bucket's `sums` key: the bucket's GAUC sums over its users
//! and its share of the stream's global aggregate, in one blob.
//!
//! Format (little endian): a format byte (1), users (u64), skipped users
//! (u64), for each GAUC weighting (in `GaucWeighting::ALL` order) the f64
//! sums `Σw`, `Σw·a`, `Σw·bound`, `Σw²`, `Σw²·a`, `Σw²·a²`, then the global
//! partial in the aggregate codec (the snapshot's).

use std::io::Write;

use crate::state::aggregate::{CodecError, Reader};
use crate::state::gauc::{GaucSums, UserContribution, WeightedSums};
use crate::state::ScoreAggregate;

const FORMAT: u8 = 1;

/// One bucket's state besides its users.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Bucket {
    /// The GAUC sums over the bucket's users (the store interface's type,
    /// updated by removing a user's old contribution and adding its new one).
    pub gauc: GaucSums,
    /// The bucket's share of the stream's records (merged over buckets at query time).
    pub global: ScoreAggregate,
}

fn fields(w: &mut WeightedSums) -> [&mut f64; 6] {
    [
        &mut w.weight,
        &mut w.weighted_auc,
        &mut w.weighted_bound,
        &mut w.weight_sq,
        &mut w.weight_sq_auc,
        &mut w.weight_sq_auc_sq,
    ]
}

impl Bucket {
    /// Replaces a user's contribution: `old` out (when it was there), `new` in.
    pub fn replace(&mut self, old: Option<&ScoreAggregate>, new: &ScoreAggregate) {
        if let Some(old) = old {
            self.gauc.remove(&UserContribution::of(old));
        }
        self.gauc.add(&UserContribution::of(new));
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(1 + 16 + 3 * 6 * 8 + 64);
        out.push(FORMAT);
        out.extend_from_slice(&self.gauc.users.to_le_bytes());
        out.extend_from_slice(&self.gauc.skipped.to_le_bytes());
        let mut sums = self.gauc.by_weighting;
        for w in sums.iter_mut() {
            for v in fields(w) {
                out.extend_from_slice(&v.to_le_bytes());
            }
        }
        // Writing into a Vec cannot fail.
        let _ = self.global.encode(&mut out as &mut dyn Write);
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<Bucket, CodecError> {
        let mut r = Reader::new(bytes);
        let format = r.u8()?;
        if format != FORMAT {
            return Err(CodecError::UnknownLayout(format));
        }
        let mut b = Bucket::default();
        b.gauc.users = r.u64()?;
        b.gauc.skipped = r.u64()?;
        for w in b.gauc.by_weighting.iter_mut() {
            for v in fields(w) {
                *v = r.f64()?;
            }
        }
        b.global = ScoreAggregate::decode(&mut r)?;
        Ok(b)
    }
}

/// Encodes one user's aggregate for its hash field, in the compact layout
/// (Redis memory is paid per user).
pub fn encode_user(agg: &ScoreAggregate) -> Vec<u8> {
    let mut out = Vec::with_capacity(12 + 10 * agg.len());
    agg.encode_compact(&mut out);
    out
}

pub fn decode_user(bytes: &[u8]) -> Result<ScoreAggregate, CodecError> {
    ScoreAggregate::decode_compact(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::metrics::GaucWeighting;
    use crate::state::Record;

    fn agg(records: &[(f64, bool)]) -> ScoreAggregate {
        let mut rs: Vec<Record> = records
            .iter()
            .map(|&(score, positive)| Record {
                score,
                positive,
                weight: 1.0,
            })
            .collect();
        ScoreAggregate::from_records(&mut rs)
    }

    #[test]
    fn a_bucket_round_trips_through_its_blob() {
        let mut b = Bucket::default();
        let a = agg(&[(0.1, false), (0.9, true), (0.5, true)]);
        b.replace(None, &a);
        b.replace(None, &agg(&[(0.3, true)]));
        b.global = a;
        assert_eq!(Bucket::decode(&b.encode()), Ok(b));
    }

    #[test]
    fn replacing_a_user_equals_summing_the_users_afresh() {
        let mut b = Bucket::default();
        let keep = agg(&[(0.1, false), (0.9, true)]);
        let old = agg(&[(0.2, true), (0.7, false), (0.4, true)]);
        let new = agg(&[(0.2, true), (0.7, false), (0.4, true), (0.6, false)]);
        b.replace(None, &keep);
        b.replace(None, &old);
        b.replace(Some(&old), &new);
        let fresh = GaucSums::of_users([&keep, &new]);
        assert_eq!((b.gauc.users, b.gauc.skipped), (fresh.users, fresh.skipped));
        for w in GaucWeighting::ALL {
            let (x, y) = (b.gauc.weighted(w), fresh.weighted(w));
            assert!((x.weighted_auc - y.weighted_auc).abs() < 1e-15, "{w:?}");
            assert!((x.weight - y.weight).abs() < 1e-15, "{w:?}");
        }
    }

    #[test]
    fn a_corrupt_blob_is_an_error_not_a_panic() {
        let blob = Bucket::default().encode();
        for cut in 0..blob.len() {
            assert!(Bucket::decode(&blob[..cut]).is_err(), "cut at {cut}");
        }
        assert!(Bucket::decode(&[9]).is_err());
    }
}
