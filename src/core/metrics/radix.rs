//! A stable LSD radix sort on a 64-bit key, for the one sort of the
//! records (`table::rank_records`).
//!
//! Why not a crate's: 11-bit digits take six passes over the records where
//! the usual 8-bit digits take eight (the scores' keys vary in every byte:
//! a probability's exponent and all its mantissa), each pass reading and
//! writing every 16-byte record once; the histograms of all six digits
//! (6 x 2048 `u32`, 48 KiB) come from one first pass and stay in L2. The
//! caller owns the scratch buffer, so it outlives the sort: the GAUC's
//! bucketing by user reuses it instead of faulting in a fresh copy of the
//! records.

/// A `u64` whose ascending order is the order of the f64 `score` by
/// `f64::total_cmp` (so `-0.0` sorts just before `0.0`): the usual
/// sign-flip trick, a negative's bits inverted, a positive's sign bit set.
/// The one mapping of a score to a radix key: the table's descending key is
/// its complement, and the stream fold sorts a chunk by it.
#[inline(always)]
pub(crate) fn total_order_key(score: f64) -> u64 {
    let bits = score.to_bits();
    if bits >> 63 == 1 {
        !bits
    } else {
        bits | (1 << 63)
    }
}

/// Bits per digit.
const DIGIT_BITS: u32 = 11;
/// Buckets per digit.
const BUCKETS: usize = 1 << DIGIT_BITS;
/// Digits of a 64-bit key (the last one 9 bits wide).
const DIGITS: usize = 64usize.div_ceil(DIGIT_BITS as usize);

/// The bucket of `key` at digit `d`.
#[inline(always)]
fn bucket(key: u64, d: usize) -> usize {
    ((key >> (d as u32 * DIGIT_BITS)) as usize) & (BUCKETS - 1)
}

/// Bucket counts of every digit of a set of keys: the first pass of the
/// sort, which a caller building the records can take in the same loop.
pub(crate) struct Histograms {
    counts: Box<[[u32; BUCKETS]; DIGITS]>,
}

impl Histograms {
    pub fn new() -> Self {
        // Zeroed memory from the allocator, not a 48 KiB array copied off
        // the stack.
        let counts = vec![[0u32; BUCKETS]; DIGITS].into_boxed_slice();
        // The length is `DIGITS`, so the conversion cannot fail; a fresh
        // box keeps it panic-free all the same.
        let counts = counts
            .try_into()
            .unwrap_or_else(|_| Box::new([[0u32; BUCKETS]; DIGITS]));
        Histograms { counts }
    }

    /// Adds the counts of `other`.
    pub fn merge(&mut self, other: &Histograms) {
        for (c, o) in self.counts.iter_mut().zip(other.counts.iter()) {
            for (c, o) in c.iter_mut().zip(o) {
                *c += o;
            }
        }
    }

    /// Counts one key.
    #[inline(always)]
    pub fn add(&mut self, key: u64) {
        for (d, c) in self.counts.iter_mut().enumerate() {
            c[bucket(key, d)] += 1;
        }
    }
}

/// Sorts `run` by `key`, stably (equal keys keep their order). `scratch`
/// must be as long as `run` (anything shorter leaves `run` as it is); its
/// contents on return are unspecified. `run.len()` must fit a `u32`.
pub(crate) fn sort_by_key<T: Copy>(run: &mut [T], scratch: &mut [T], key: impl Fn(&T) -> u64) {
    let mut counts = Histograms::new();
    for r in run.iter() {
        counts.add(key(r));
    }
    sort_counted(run, scratch, counts, key);
}

/// [`sort_by_key`] with the histograms already taken: `counts` must hold
/// the key of every record of `run` once.
pub(crate) fn sort_counted<T: Copy>(
    run: &mut [T],
    scratch: &mut [T],
    counts: Histograms,
    key: impl Fn(&T) -> u64,
) {
    let Some(first) = run.first().map(&key) else {
        return;
    };
    if scratch.len() != run.len() || u32::try_from(run.len()).is_err() {
        return;
    }
    let mut counts = counts.counts;
    let mut in_scratch = false;
    for (d, c) in counts.iter_mut().enumerate() {
        // A digit every key shares moves nothing: skipped.
        if c[bucket(first, d)] as usize == run.len() {
            continue;
        }
        starts(c);
        if in_scratch {
            scatter(scratch, run, c, d, &key);
        } else {
            scatter(run, scratch, c, d, &key);
        }
        in_scratch = !in_scratch;
    }
    if in_scratch {
        run.copy_from_slice(scratch);
    }
}

/// Turns bucket counts into the start offset of each bucket.
fn starts(counts: &mut [u32; BUCKETS]) {
    let mut sum = 0;
    for c in counts.iter_mut() {
        let n = *c;
        *c = sum;
        sum += n;
    }
}

/// One pass: each record of `from`, in order, to the next slot of its
/// bucket at digit `d` in `to` (stable).
#[inline(always)]
fn scatter<T: Copy>(
    from: &[T],
    to: &mut [T],
    next: &mut [u32; BUCKETS],
    d: usize,
    key: &impl Fn(&T) -> u64,
) {
    for r in from {
        let slot = &mut next[bucket(key(r), d)];
        if let Some(t) = to.get_mut(*slot as usize) {
            *t = *r;
        }
        *slot += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// The keys' order is `f64::total_cmp`'s, on any bits (the
        /// infinities, NaNs and both zeros included).
        #[test]
        fn total_order_key_orders_like_total_cmp(a in proptest::prelude::any::<u64>(), b in proptest::prelude::any::<u64>()) {
            let (x, y) = (f64::from_bits(a), f64::from_bits(b));
            proptest::prop_assert_eq!(total_order_key(x).cmp(&total_order_key(y)), x.total_cmp(&y));
        }
    }

    #[test]
    fn total_order_key_puts_negative_zero_just_before_zero() {
        let (neg, zero) = (total_order_key(-0.0), total_order_key(0.0));
        assert_eq!(zero, neg + 1);
        assert!(total_order_key(-f64::MIN_POSITIVE) < neg);
        assert!(total_order_key(f64::MIN_POSITIVE) > zero);
    }

    proptest::proptest! {
        /// The order of the standard library's stable sort, on keys with
        /// few and many distinct digits.
        #[test]
        fn sorts_like_the_stable_sort(
            keys in proptest::collection::vec(proptest::prelude::any::<u64>(), 0..3000),
            mask in proptest::prelude::any::<u64>(),
        ) {
            let items: Vec<(u64, usize)> =
                keys.iter().enumerate().map(|(i, &k)| (k & mask, i)).collect();
            let mut got = items.clone();
            let mut scratch = items.clone();
            sort_by_key(&mut got, &mut scratch, |r| r.0);
            let mut want = items;
            want.sort_by_key(|r| r.0);
            proptest::prop_assert_eq!(got, want);
        }
    }
}
