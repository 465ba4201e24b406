//! The value of a bucket's `sums` key: the bucket's GAUC sums over its users
//! and its share of the stream's global aggregate, in one blob.
//!
//! Format (little endian): a format byte (1), users (u64), skipped users
//! (u64), for each GAUC weighting the compensated sums (value, compensation
//! as two f64 each) of `w`, `w·a`, `w²`, `w²·a`, `w²·a²`, `w·bound`, then the
//! global partial in the aggregate codec.

use std::io::Write;

use crate::core::metrics::GaucWeighting;
use crate::state::aggregate::{CodecError, Reader};
use crate::state::ScoreAggregate;

const FORMAT: u8 = 1;
/// Sums kept per weighting: w, w·a, w², w²·a, w²·a², w·bound.
pub const SUMS: usize = 6;

/// A Neumaier-compensated sum: a bucket's sums are updated by adding a
/// user's new contribution and subtracting its old one batch after batch;
/// compensation keeps them at the accuracy of summing the users afresh.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Compensated {
    sum: f64,
    comp: f64,
}

impl Compensated {
    pub fn add(&mut self, x: f64) {
        let t = self.sum + x;
        if self.sum.abs() >= x.abs() {
            self.comp += (self.sum - t) + x;
        } else {
            self.comp += (x - t) + self.sum;
        }
        self.sum = t;
    }

    pub fn value(&self) -> f64 {
        self.sum + self.comp
    }
}

/// One bucket's state besides its users.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Bucket {
    /// Users in the bucket, and those of them with one class only (skipped by GAUC).
    pub users: u64,
    pub skipped: u64,
    pub sums: [[Compensated; SUMS]; 3],
    /// The bucket's share of the stream's records (merged over buckets at query time).
    pub global: ScoreAggregate,
}

/// What one user adds to the GAUC sums: AUC, class weights and AUC bound;
/// `None` when the user has one class only.
fn contribution(agg: &ScoreAggregate) -> Option<(f64, f64, f64, f64)> {
    let (p, n) = agg.weight_totals();
    let auc = agg.auc()?;
    (p > 0.0 && n > 0.0).then(|| (auc, p, n, agg.auc_error_bound()))
}

impl Bucket {
    /// Adds (`sign` 1) or removes (`sign` -1) one user's aggregate.
    pub fn account(&mut self, agg: &ScoreAggregate, sign: f64) {
        let step = |c: &mut u64| {
            *c = if sign > 0.0 {
                c.saturating_add(1)
            } else {
                c.saturating_sub(1)
            };
        };
        step(&mut self.users);
        match contribution(agg) {
            None => step(&mut self.skipped),
            Some((auc, p, n, bound)) => {
                for w8 in GaucWeighting::ALL {
                    let w = w8.user_weight(p, n);
                    let parts = [w, w * auc, w * w, w * w * auc, w * w * auc * auc, w * bound];
                    for (acc, x) in self.sums[w8 as usize].iter_mut().zip(parts) {
                        acc.add(sign * x);
                    }
                }
            }
        }
    }

    /// The sums of `weighting`: w, w·a, w², w²·a, w²·a², w·bound.
    pub fn sums(&self, weighting: GaucWeighting) -> [f64; SUMS] {
        self.sums[weighting as usize].map(|c| c.value())
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(1 + 16 + 3 * SUMS * 16 + 64);
        out.push(FORMAT);
        out.extend_from_slice(&self.users.to_le_bytes());
        out.extend_from_slice(&self.skipped.to_le_bytes());
        for c in self.sums.iter().flatten() {
            out.extend_from_slice(&c.sum.to_le_bytes());
            out.extend_from_slice(&c.comp.to_le_bytes());
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
        let mut b = Bucket {
            users: r.u64()?,
            skipped: r.u64()?,
            ..Bucket::default()
        };
        for c in b.sums.iter_mut().flatten() {
            c.sum = r.f64()?;
            c.comp = r.f64()?;
        }
        b.global = ScoreAggregate::decode(&mut r)?;
        Ok(b)
    }
}

/// Encodes one user's aggregate for its hash field.
pub fn encode_user(agg: &ScoreAggregate) -> Vec<u8> {
    let mut out = Vec::with_capacity(25 + 16 * agg.len());
    let _ = agg.encode(&mut out as &mut dyn Write);
    out
}

pub fn decode_user(bytes: &[u8]) -> Result<ScoreAggregate, CodecError> {
    ScoreAggregate::decode(&mut Reader::new(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
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
        b.account(&a, 1.0);
        b.account(&agg(&[(0.3, true)]), 1.0);
        b.global = a;
        assert_eq!(Bucket::decode(&b.encode()), Ok(b));
    }

    #[test]
    fn removing_a_user_undoes_adding_it() {
        let mut b = Bucket::default();
        let keep = agg(&[(0.1, false), (0.9, true)]);
        let gone = agg(&[(0.2, true), (0.7, false), (0.4, true)]);
        b.account(&keep, 1.0);
        b.account(&gone, 1.0);
        b.account(&gone, -1.0);
        let mut only = Bucket::default();
        only.account(&keep, 1.0);
        for w in GaucWeighting::ALL {
            for (x, y) in b.sums(w).iter().zip(only.sums(w)) {
                assert!((x - y).abs() < 1e-15, "{w:?}: {x} vs {y}");
            }
        }
        assert_eq!((b.users, b.skipped), (1, 0));
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
