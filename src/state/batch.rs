//! Staging one request's records into a local aggregate.
//!
//! Ingest parses the whole request into a [`BatchBuilder`] without touching the
//! store; only a fully parsed, valid batch becomes a [`StagedBatch`] that the
//! store merges under its lock. This is what makes a request atomic (a bad line
//! anywhere applies nothing) and keeps parsing outside every lock.

use std::hash::BuildHasher;

use super::aggregate::{Record, ScoreAggregate};
use crate::core::metrics::radix;

/// Marks a staged record without a user.
const NO_USER: u32 = u32::MAX;

/// The label bit of [`Staged::tag`].
const POSITIVE: u32 = 1 << 31;
/// Weight codes in the low 31 bits of [`Staged::tag`]: the two weights that
/// cover nearly all traffic, then indices into the side table (offset by 2).
const WEIGHT_ONE: u32 = 0;
const WEIGHT_ZERO: u32 = 1;
const WEIGHT_TABLE: u32 = 2;

/// Staged records folded into aggregates at a time (see
/// [`BatchBuilder::with_fold_every`]). Why 2^20: the staged copy of a large
/// request then stays at 16 MiB (the records vector reaches exactly this
/// capacity), and each fold sorts few enough records per user that folding
/// costs about what one sort of the whole request did. Without folding, a
/// 10,000,000-record request held 160 MB of staged records on top of the
/// per-user aggregates built from them.
pub const FOLD_EVERY: usize = 1 << 20;

/// From this many records on, a chunk whose weights are all 0 or 1 is folded
/// by one radix sort of the whole chunk by score, then a stable scatter by
/// user ([`BatchBuilder::fold`]); smaller chunks sort each user's run on its
/// own. Why a floor: the radix sort reads the chunk seven times and takes
/// 48 KiB of histograms and a second buffer of the chunk, a fixed cost that
/// large chunks repay (a chunk of 2^20 records over 100,000 users folds in
/// ~21% fewer instructions) and that a request folded once below this size
/// is spared: it keeps folding in place, without the second buffer. The
/// floor itself was not tuned.
const ONE_SORT_MIN: usize = 100_000;

/// One staged record in 16 bytes (instead of 28: an `f64` weight with a
/// padded `bool`, and the user in a separate array): the exact score, the
/// user index, and a tag packing the label with a weight code. Any other
/// weight is kept exactly in [`BatchBuilder::weights`], so staging loses
/// nothing; it only costs 8 more bytes for such a record.
#[derive(Debug, Clone, Copy)]
struct Staged {
    score: f64,
    user: u32,
    tag: u32,
}

/// The user ids of one request, each interned once to a dense index.
///
/// Why not a `HashMap<String, u32>`: its 32-byte buckets hold the `String`,
/// and a probe follows the `String` to its bytes. Here the table holds only
/// 4-byte indices, and an id of at most 15 bytes is also kept packed in a
/// `u128` ([`short_key`]), hashed and compared as one number: a probe reads
/// the table and one key (each a cache miss at 100,000 users, the most of
/// interning's time). The ids themselves are allocated one by one as they
/// are first seen, as the map did, and handed to the staged batch as they
/// are. (Keeping them back to back in one buffer and allocating each user's
/// `String` only in `finish` raised the peak RSS of the streams benchmark
/// by ~25 MB, also with bodies too small to fold or to parse on two
/// threads, the stream state being the same.)
#[derive(Default)]
struct UserIds {
    /// Every id, in index order.
    names: Vec<String>,
    /// `keys[i]`: id `i` packed, or [`NOT_SHORT`].
    keys: Vec<u128>,
    table: hashbrown::HashTable<u32>,
    hasher: foldhash::fast::RandomState,
}

/// The key of ids longer than 15 bytes (no short id packs to it: its
/// length byte would be 255).
const NOT_SHORT: u128 = u128::MAX;

/// A user id of at most 15 bytes packed into a `u128`: its bytes, then its
/// length in byte 15; distinct ids give distinct keys. It is the interning
/// key itself, so a parser that reads an id's bytes can stage a record of a
/// known user with one hash and one comparison of a number, without making
/// the id's `&str` (its text is rebuilt from the key on first sight).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShortId(u128);

impl ShortId {
    /// `id` packed, when it has at most 15 bytes.
    pub fn of(id: &str) -> Option<ShortId> {
        Self::pack(id.as_bytes())
    }

    /// `bytes` packed, when they are at most 15 ASCII bytes (text without
    /// a UTF-8 check).
    #[inline]
    pub fn of_ascii(bytes: &[u8]) -> Option<ShortId> {
        if bytes.is_ascii() {
            Self::pack(bytes)
        } else {
            None
        }
    }

    /// The first `len` bytes of `word` (first byte lowest) packed, when
    /// `len` is at most 15 and they are ASCII: what a parser that loaded an
    /// id's bytes as one word has in hand.
    #[inline]
    pub fn of_ascii_word(word: u128, len: usize) -> Option<ShortId> {
        const HIGHS: u128 = u128::from_le_bytes([0x80; 16]);
        if len > 15 {
            return None;
        }
        let bytes = word & ((1u128 << (8 * len)) - 1);
        (bytes & HIGHS == 0).then_some(ShortId(bytes | (len as u128) << 120))
    }

    /// Only for bytes that are UTF-8 text.
    #[inline]
    fn pack(bytes: &[u8]) -> Option<ShortId> {
        let mut word = [0u8; 16];
        word.get_mut(..bytes.len())
            .filter(|_| bytes.len() <= 15)?
            .copy_from_slice(bytes);
        word[15] = bytes.len() as u8;
        Some(ShortId(u128::from_le_bytes(word)))
    }

    /// The id's text.
    fn text(self) -> String {
        let word = self.0.to_le_bytes();
        let len = usize::from(word[15]).min(15);
        // Always text: `pack` only takes UTF-8.
        String::from_utf8_lossy(&word[..len]).into_owned()
    }
}

/// `id` packed into a `u128` ([`ShortId`]) when it has at most 15 bytes,
/// else [`NOT_SHORT`].
fn short_key(id: &str) -> u128 {
    ShortId::of(id).map_or(NOT_SHORT, |short| short.0)
}

/// Id `i` of `names` (empty for an index out of range, which the table
/// never holds).
fn id_of(names: &[String], i: u32) -> &str {
    names.get(i as usize).map_or("", String::as_str)
}

/// The table hash of an id: of its short key, or of its bytes when long.
fn hash_id(hasher: &foldhash::fast::RandomState, key: u128, name: &str) -> u64 {
    if key == NOT_SHORT {
        hasher.hash_one(name)
    } else {
        hasher.hash_one(key)
    }
}

impl UserIds {
    fn len(&self) -> usize {
        self.names.len()
    }

    #[cfg(test)]
    fn id(&self, i: u32) -> &str {
        id_of(&self.names, i)
    }

    /// The index of user id `name`, the next free one on first sight (then
    /// `name` is kept: a `String` moves in, a `&str` is copied).
    fn intern<S: AsRef<str> + Into<String>>(&mut self, name: S) -> Result<u32, RecordError> {
        let (key, hash) = {
            let id = name.as_ref();
            let key = short_key(id);
            let hash = self.hash(key, id);
            let (names, keys) = (&self.names, &self.keys);
            let same = |&i: &u32| match keys.get(i as usize) {
                Some(&k) if k != NOT_SHORT => k == key,
                _ => key == NOT_SHORT && id_of(names, i) == id,
            };
            if let Some(&i) = self.table.find(hash, same) {
                return Ok(i);
            }
            (key, hash)
        };
        let i = u32::try_from(self.names.len())
            .ok()
            .filter(|&i| i < NO_USER)
            .ok_or(RecordError::TooManyUsers(NO_USER as usize))?;
        self.names.push(name.into());
        self.keys.push(key);
        let UserIds {
            names,
            keys,
            table,
            hasher,
        } = self;
        table.insert_unique(hash, i, |&j| {
            let key = keys.get(j as usize).copied().unwrap_or(NOT_SHORT);
            hash_id(hasher, key, id_of(names, j))
        });
        Ok(i)
    }

    /// [`UserIds::intern`] of a short id.
    #[inline]
    fn intern_short(&mut self, id: ShortId) -> Result<u32, RecordError> {
        let key = id.0;
        let hash = self.hasher.hash_one(key);
        let keys = &self.keys;
        if let Some(&i) = self
            .table
            .find(hash, |&i| keys.get(i as usize) == Some(&key))
        {
            return Ok(i);
        }
        self.intern(id.text())
    }

    fn hash(&self, key: u128, name: &str) -> u64 {
        hash_id(&self.hasher, key, name)
    }
}

impl std::fmt::Debug for UserIds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserIds")
            .field("users", &self.len())
            .finish()
    }
}

/// Records of one request, being collected.
///
/// Staged records are folded into per-user aggregates (the type a stream
/// keeps) every [`FOLD_EVERY`] records, so a large request holds its users'
/// aggregates plus at most one chunk of raw records, not every record.
#[derive(Debug)]
pub struct BatchBuilder {
    users: UserIds,
    /// Records staged since the last fold.
    records: Vec<Staged>,
    /// Weights other than 0 and 1 of `records`, in staging order.
    weights: Vec<f64>,
    /// Records with such a weight in the whole request.
    weighted: usize,
    /// The folded records: one aggregate per user index (the id is filled
    /// in by [`BatchBuilder::finish`], so this vector becomes the staged
    /// batch's without a copy), and all of them.
    folded: Vec<(String, ScoreAggregate)>,
    global: ScoreAggregate,
    /// Records folded so far.
    folded_records: usize,
    /// Heap bytes of `folded` and `global`.
    folded_bytes: usize,
    fold_every: usize,
    /// [`ONE_SORT_MIN`], lowered by tests to fold small chunks both ways.
    one_sort_min: usize,
}

impl Default for BatchBuilder {
    fn default() -> Self {
        Self::with_fold_every(FOLD_EVERY)
    }
}
/// The largest sample weight a stream takes. A stream keeps summing weights
/// (per score, per user, over the stream) batch after batch, so finite
/// weights near `f64::MAX` would overflow to infinity in its state and make
/// every later metrics query fail. At 1e100 a stream would need more than
/// 1e200 records to reach the f64 range, and the Mann-Whitney products of two
/// such sums stay finite too.
pub const MAX_WEIGHT: f64 = 1e100;

/// The one weight rule of a stream record: finite, >= 0 and at most
/// [`MAX_WEIGHT`]. The ingest routes call it to name the offending field
/// before staging; staging calls it again for callers that stage directly.
pub fn check_weight(weight: f64) -> Result<(), RecordError> {
    if !weight.is_finite() || weight < 0.0 {
        Err(RecordError::BadWeight(weight))
    } else if weight > MAX_WEIGHT {
        Err(RecordError::TooLargeWeight(weight))
    } else {
        Ok(())
    }
}

/// Why a record could not be staged.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RecordError {
    #[error("prediction must be a finite number, found {0}")]
    NonFiniteScore(f64),
    #[error("weight must be finite and >= 0, found {0}")]
    BadWeight(f64),
    #[error("weight must be at most {MAX_WEIGHT:e}, found {0}")]
    TooLargeWeight(f64),
    #[error("more than {0} distinct users in one request")]
    TooManyUsers(usize),
    #[error("more than {0} records with a weight other than 0 or 1 in one request")]
    TooManyWeights(usize),
}

/// What [`BatchBuilder::push`] checks that the parser cannot: a finite
/// score and a weight [`check_weight`] takes.
#[inline]
fn check_record(record: &Record) -> Result<(), RecordError> {
    if !record.score.is_finite() {
        return Err(RecordError::NonFiniteScore(record.score));
    }
    check_weight(record.weight)
}

/// The record a staged entry stands for.
fn unpack(r: &Staged, weights: &[f64]) -> Record {
    let weight = match r.tag & !POSITIVE {
        WEIGHT_ONE => 1.0,
        WEIGHT_ZERO => 0.0,
        // Always in range: codes are handed out by `push`.
        code => weights
            .get((code - WEIGHT_TABLE) as usize)
            .copied()
            .unwrap_or(0.0),
    };
    Record {
        score: r.score,
        positive: r.tag & POSITIVE != 0,
        weight,
    }
}

impl BatchBuilder {
    /// An empty builder.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty builder folding its staged records into aggregates every
    /// `fold_every` records (at least 1); [`BatchBuilder::new`] folds every
    /// [`FOLD_EVERY`]. The answers do not depend on it (tests fold tiny
    /// chunks to show that).
    pub fn with_fold_every(fold_every: usize) -> Self {
        BatchBuilder {
            users: UserIds::default(),
            records: Vec::new(),
            weights: Vec::new(),
            weighted: 0,
            folded: Vec::new(),
            global: ScoreAggregate::default(),
            folded_records: 0,
            folded_bytes: 0,
            fold_every: fold_every.max(1),
            one_sort_min: ONE_SORT_MIN,
        }
    }

    /// Stages one record; `user` groups it for GAUC. Checks what the parser
    /// cannot: a finite score and a finite weight `>= 0`.
    pub fn push(&mut self, user: Option<&str>, record: Record) -> Result<(), RecordError> {
        check_record(&record)?;
        let user = match user {
            None => NO_USER,
            Some(name) => self.users.intern(name)?,
        };
        self.push_checked(user, record)
    }

    /// [`BatchBuilder::push`] for a record of a user whose id is short.
    #[inline]
    pub fn push_short(&mut self, user: ShortId, record: Record) -> Result<(), RecordError> {
        check_record(&record)?;
        let user = self.users.intern_short(user)?;
        self.push_checked(user, record)
    }

    /// Stages a checked record of user index `user`.
    #[inline]
    fn push_checked(&mut self, user: u32, record: Record) -> Result<(), RecordError> {
        let code = if record.weight == 1.0 {
            WEIGHT_ONE
        } else if record.weight == 0.0 {
            WEIGHT_ZERO
        } else {
            let limit = (POSITIVE - WEIGHT_TABLE) as usize;
            if self.weighted >= limit {
                return Err(RecordError::TooManyWeights(limit));
            }
            // Below POSITIVE - WEIGHT_TABLE: the side table is cleared on
            // every fold and never holds more than `weighted`.
            let code = u32::try_from(self.weights.len())
                .ok()
                .and_then(|i| i.checked_add(WEIGHT_TABLE))
                .filter(|&c| c < POSITIVE)
                .ok_or(RecordError::TooManyWeights(limit))?;
            self.weights.push(record.weight);
            self.weighted += 1;
            code
        };
        let label = if record.positive { POSITIVE } else { 0 };
        self.stage(Staged {
            score: record.score,
            user,
            tag: label | code,
        });
        Ok(())
    }

    fn stage(&mut self, record: Staged) {
        self.records.push(record);
        if self.records.len() >= self.fold_every {
            self.fold();
        }
    }

    /// Heap bytes the staged records hold (what the memory budget is
    /// checked against while a large body is still arriving): the records
    /// not yet folded and the aggregates folded so far.
    pub fn staged_bytes(&self) -> usize {
        self.records.capacity() * std::mem::size_of::<Staged>()
            + self.weights.capacity() * std::mem::size_of::<f64>()
            + self.folded_bytes
    }

    /// Records staged so far.
    pub fn len(&self) -> usize {
        self.folded_records + self.records.len()
    }

    /// Distinct users staged so far.
    pub fn users(&self) -> usize {
        self.users.len()
    }

    /// True when nothing was staged.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Folds the records staged since the last fold into the per-user and
    /// the global aggregates, and empties the staging vectors (keeping
    /// their capacity for the next chunk).
    ///
    /// Records are grouped by user in place ([`group_by_user`]), each user's
    /// run is sorted by score into an aggregate merged into the user's, and
    /// finally the whole chunk is sorted by score for the global aggregate.
    /// Merging exact aggregates gives the aggregate of all their records, so
    /// the answers are those of one aggregation over the whole request.
    ///
    /// A chunk of at least [`ONE_SORT_MIN`] records whose weights are all 0
    /// or 1 is instead sorted once ([`sort_by_score`]): the global
    /// aggregate is built from the sorted chunk, and a stable scatter by
    /// user ([`scatter_into`] the sort's scratch buffer, which then becomes
    /// the staging vector, as in [`scatter_by_user`]) hands every user's run
    /// over already sorted. The sorted copy is freed before the per-user
    /// builds, so they run with the chunk held once, as before. The aggregates are
    /// the same: with unit weights an aggregate holds counts (or the scores
    /// themselves) per score, which do not depend on the order of records
    /// with equal scores. Real weights are summed in record order, so their
    /// chunks keep the per-user sorts, whose order the answers have always
    /// had.
    fn fold(&mut self) {
        let BatchBuilder {
            users,
            records,
            weights,
            folded,
            global,
            folded_records,
            folded_bytes,
            fold_every,
            one_sort_min,
            ..
        } = self;
        if folded.len() < users.len() {
            folded.resize_with(users.len(), Default::default);
        }
        let table: &[f64] = weights.as_slice();
        let view = |r: &Staged| unpack(r, table);
        let mut fold_into = |agg: &mut ScoreAggregate, part: ScoreAggregate| {
            let before = agg.heap_bytes();
            agg.merge_owned(part);
            *folded_bytes = folded_bytes.saturating_sub(before) + agg.heap_bytes();
        };
        if table.is_empty() && records.len() >= *one_sort_min {
            if let Some(mut scratch) = sort_by_score(records) {
                fold_into(global, ScoreAggregate::from_sorted_by(records, view));
                let starts = scatter_into(records, &mut scratch, users.len());
                // The grouped copy has the chunk's length: what the next
                // chunk fills.
                *records = scratch;
                for (i, (_, agg)) in folded.iter_mut().enumerate() {
                    if let Some(run) = run_of(records, &starts, i) {
                        fold_into(agg, ScoreAggregate::from_sorted_by(run, view));
                    }
                }
                *folded_records += records.len();
                records.clear();
                weights.clear();
                return;
            }
        }
        // A request folded once, at its end, is grouped in place (no second
        // buffer: the peak of many concurrent mid-size requests stays as it
        // was); a large one is grouped through a scratch copy of the chunk,
        // several times faster (see `scatter_by_user`).
        let large = *folded_records > 0 || records.len() >= *fold_every;
        let starts = if large {
            scatter_by_user(records, users.len())
        } else {
            group_by_user(records, users.len())
        };
        let score = |r: &Staged| r.score;
        for (i, (_, agg)) in folded.iter_mut().enumerate() {
            let lo = starts.get(i).copied().unwrap_or(0);
            let hi = starts.get(i + 1).copied().unwrap_or(0);
            if let Some(run) = records.get_mut(lo..hi).filter(|r| !r.is_empty()) {
                fold_into(agg, ScoreAggregate::from_records_by(run, score, view));
            }
        }
        fold_into(
            global,
            ScoreAggregate::from_records_by(records, score, view),
        );
        *folded_records += records.len();
        records.clear();
        weights.clear();
    }

    /// Aggregates the staged records: one global aggregate and one per user
    /// (in the order the users first appeared).
    pub fn finish(mut self) -> StagedBatch {
        if !self.records.is_empty() || self.folded_records == 0 {
            self.fold();
        }
        let BatchBuilder {
            users,
            mut folded,
            global,
            ..
        } = self;
        folded.resize_with(users.len(), Default::default);
        for ((slot, _), name) in folded.iter_mut().zip(users.names) {
            *slot = name;
        }
        StagedBatch {
            global,
            users: folded,
        }
    }
}

/// Groups `records` by user through a second buffer and returns where each
/// user's run starts (as [`group_by_user`]): a counting pass, then every
/// record copied to its user's cursor. The in-place cycle swaps wait on one
/// cache miss after another (a million records over 100,000 users spent a
/// fifth of a large request's time on one store), where the copies read in
/// order and their stores do not wait on each other. The chunk is briefly
/// held twice.
fn scatter_by_user(records: &mut Vec<Staged>, users: usize) -> Vec<usize> {
    let mut grouped = vec![FILLER; records.len()];
    let starts = scatter_into(records, &mut grouped, users);
    // The grouped copy has the chunk's length: what the next chunk fills.
    *records = grouped;
    starts
}

/// What a scratch copy of staged records starts as.
const FILLER: Staged = Staged {
    score: 0.0,
    user: NO_USER,
    tag: 0,
};

/// Sorts `records` by score, stably, by [`radix::total_order_key`], and
/// returns the radix sort's scratch buffer (as long as `records`), for the
/// stable copy grouped by user that follows ([`scatter_into`]): every
/// user's run then comes out sorted by score too, one sort of the chunk in
/// place of a sort per user (a chunk of 2^20 records over 100,000 users
/// sorted 100,000 runs of ~10 records, and the whole chunk again for the
/// global aggregate).
///
/// `None` (nothing done) for a chunk the radix sort does not take (more
/// than `u32::MAX` records).
fn sort_by_score(records: &mut [Staged]) -> Option<Vec<Staged>> {
    u32::try_from(records.len()).ok()?;
    let mut scratch = vec![FILLER; records.len()];
    radix::sort_by_key(records, &mut scratch, |r| radix::total_order_key(r.score));
    Some(scratch)
}

/// The run of user `i` in records grouped by user, when not empty.
fn run_of<'a>(grouped: &'a [Staged], starts: &[usize], i: usize) -> Option<&'a [Staged]> {
    let lo = starts.get(i).copied().unwrap_or(0);
    let hi = starts.get(i + 1).copied().unwrap_or(0);
    grouped.get(lo..hi).filter(|r| !r.is_empty())
}

/// Copies `from` into `to` (as long) grouped by user, stably: a counting
/// pass, then every record to its user's cursor. Returns where each user's
/// run starts (as [`group_by_user`]).
fn scatter_into(from: &[Staged], to: &mut [Staged], users: usize) -> Vec<usize> {
    let buckets = users + 1;
    let bucket = |u: u32| (u as usize).min(buckets - 1);
    let mut starts = vec![0usize; buckets + 1];
    for r in from.iter() {
        if let Some(slot) = starts.get_mut(bucket(r.user) + 1) {
            *slot += 1;
        }
    }
    for i in 1..starts.len() {
        let prev = starts.get(i - 1).copied().unwrap_or(0);
        if let Some(slot) = starts.get_mut(i) {
            *slot += prev;
        }
    }
    let mut next = starts.clone();
    for r in from.iter() {
        if let Some(cursor) = next.get_mut(bucket(r.user)) {
            if let Some(slot) = to.get_mut(*cursor) {
                *slot = *r;
            }
            *cursor += 1;
        }
    }
    starts
}

/// Groups `records` by user in place and returns where each user's run
/// starts (`users + 2` entries: one per user, the records without a user,
/// and the end).
///
/// An American flag sort: a counting pass, then cycle swaps, linear and
/// without a second buffer (a comparison sort of a million records by user
/// cost more than the per-user score sorts after it; a second buffer would
/// hold another copy of the chunk).
fn group_by_user(records: &mut [Staged], users: usize) -> Vec<usize> {
    let buckets = users + 1; // the last bucket: records without a user
    let bucket = |u: u32| (u as usize).min(buckets - 1);
    let mut starts = vec![0usize; buckets + 1];
    for r in records.iter() {
        if let Some(slot) = starts.get_mut(bucket(r.user) + 1) {
            *slot += 1;
        }
    }
    for i in 1..starts.len() {
        let prev = starts.get(i - 1).copied().unwrap_or(0);
        if let Some(slot) = starts.get_mut(i) {
            *slot += prev;
        }
    }
    let mut next = starts.clone();
    for b in 0..buckets {
        let end = starts.get(b + 1).copied().unwrap_or(0);
        while let Some(&i) = next.get(b).filter(|&&i| i < end) {
            let target = records.get(i).map_or(b, |r| bucket(r.user));
            let Some(j) = next.get_mut(target) else { break };
            if target != b && *j < records.len() {
                // Move record i to its bucket's cursor; what was there comes to i.
                records.swap(i, *j);
            }
            *j += 1;
        }
    }
    starts
}

/// A fully parsed, valid batch, aggregated and ready to merge.
#[derive(Debug, Clone, Default)]
pub struct StagedBatch {
    pub global: ScoreAggregate,
    pub users: Vec<(String, ScoreAggregate)>,
}

impl StagedBatch {
    /// Number of records in the batch.
    pub fn records(&self) -> u64 {
        self.global.counts().count
    }

    /// Upper bound on the heap the batch adds to a stream when merged.
    pub fn heap_bytes(&self) -> usize {
        self.global.heap_bytes()
            + self
                .users
                .iter()
                .map(|(name, agg)| agg.heap_bytes() + name.len())
                .sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(score: f64, positive: bool) -> Record {
        Record {
            score,
            positive,
            weight: 1.0,
        }
    }

    #[test]
    fn finish_groups_records_by_user_and_keeps_the_global_total() {
        let mut b = BatchBuilder::new();
        b.push(Some("a"), rec(0.1, true)).unwrap_or(());
        b.push(Some("b"), rec(0.2, false)).unwrap_or(());
        b.push(None, rec(0.3, true)).unwrap_or(());
        b.push(Some("a"), rec(0.4, false)).unwrap_or(());
        let staged = b.finish();
        assert_eq!(staged.records(), 4);
        let names: Vec<_> = staged
            .users
            .iter()
            .map(|(n, a)| (n.as_str(), a.counts().count))
            .collect();
        assert_eq!(names, vec![("a", 2), ("b", 1)]);
        let a: Vec<_> = staged.users[0].1.iter().collect();
        assert_eq!(a, vec![(0.1, 1.0, 0.0), (0.4, 0.0, 1.0)]);
    }

    proptest::proptest! {
        #[test]
        fn finish_equals_aggregating_each_users_records_alone(
            rows in proptest::collection::vec((0u8..30, proptest::bool::ANY, 0u8..5), 0..200)
        ) {
            let mut b = BatchBuilder::new();
            let user = |u: u8| (u < 4).then(|| format!("u{u}"));
            for &(s, p, u) in &rows {
                proptest::prop_assert!(b.push(user(u).as_deref(), rec(f64::from(s) / 30.0, p)).is_ok());
            }
            let staged = b.finish();
            let mut all: Vec<Record> = rows.iter().map(|&(s, p, _)| rec(f64::from(s) / 30.0, p)).collect();
            proptest::prop_assert_eq!(&staged.global, &ScoreAggregate::from_records(&mut all));
            for (name, agg) in &staged.users {
                let mut mine: Vec<Record> = rows
                    .iter()
                    .filter(|&&(_, _, u)| user(u).as_deref() == Some(name.as_str()))
                    .map(|&(s, p, _)| rec(f64::from(s) / 30.0, p))
                    .collect();
                proptest::prop_assert_eq!(agg, &ScoreAggregate::from_records(&mut mine));
            }
        }
    }

    /// Stages `rows` (score step, label, user, weight) into `b`.
    fn stage(b: &mut BatchBuilder, rows: &[(u8, bool, u8, f64)]) {
        for &(s, p, u, w) in rows {
            let user = (u < 200).then(|| format!("u{u}"));
            let record = Record {
                score: f64::from(s) / 30.0,
                positive: p,
                weight: w,
            };
            assert_eq!(b.push(user.as_deref(), record), Ok(()));
        }
    }

    /// The aggregate's entries and counts as bits.
    fn bits(agg: &ScoreAggregate) -> (RecordCounts, Vec<[u64; 3]>, Option<u64>) {
        let entries = agg
            .iter()
            .map(|(s, p, n)| [s.to_bits(), p.to_bits(), n.to_bits()])
            .collect();
        (agg.counts(), entries, agg.auc().map(f64::to_bits))
    }

    use crate::state::aggregate::RecordCounts;
    use crate::state::GaucSums;

    proptest::proptest! {
        #[test]
        fn folding_in_chunks_gives_the_same_bits_as_one_aggregation(
            rows in proptest::collection::vec(
                (0u8..30, proptest::bool::ANY, proptest::prop_oneof![0u8..6, 0u8..250],
                 proptest::prop_oneof![4 => proptest::strategy::Just(1.0), 1 => proptest::strategy::Just(0.0)]),
                0..300),
            every in proptest::prop_oneof![1usize..4, 4usize..64],
        ) {
            let mut whole = BatchBuilder::with_fold_every(usize::MAX);
            stage(&mut whole, &rows);
            let mut chunked = BatchBuilder::with_fold_every(every);
            stage(&mut chunked, &rows);
            proptest::prop_assert_eq!(chunked.len(), rows.len());
            proptest::prop_assert!(chunked.records.len() < every);
            let (whole, chunked) = (whole.finish(), chunked.finish());
            proptest::prop_assert_eq!(bits(&chunked.global), bits(&whole.global));
            proptest::prop_assert_eq!(chunked.users.len(), whole.users.len());
            for ((n1, a1), (n2, a2)) in chunked.users.iter().zip(&whole.users) {
                proptest::prop_assert_eq!(n1, n2);
                proptest::prop_assert_eq!(bits(a1), bits(a2));
            }
            // GAUC and its standard error, as the stream query sums them
            let gauc = |b: &StagedBatch| GaucSums::of_users(b.users.iter().map(|(_, a)| a));
            proptest::prop_assert_eq!(gauc(&chunked), gauc(&whole));
        }

        #[test]
        fn folding_real_weights_changes_only_the_order_of_the_sums(
            rows in proptest::collection::vec(
                (0u8..30, proptest::bool::ANY, 0u8..6,
                 proptest::prop_oneof![proptest::strategy::Just(1.0), 1e-3f64..1e3]),
                0..300),
            every in 1usize..50,
        ) {
            let mut whole = BatchBuilder::with_fold_every(usize::MAX);
            stage(&mut whole, &rows);
            let mut chunked = BatchBuilder::with_fold_every(every);
            stage(&mut chunked, &rows);
            let (whole, chunked) = (whole.finish(), chunked.finish());
            let pairs = std::iter::once((&chunked.global, &whole.global))
                .chain(chunked.users.iter().map(|(_, a)| a).zip(whole.users.iter().map(|(_, a)| a)));
            for (x, y) in pairs {
                proptest::prop_assert_eq!(x.counts(), y.counts());
                same_entries_up_to_sum_order(x, y)?;
            }
        }
    }

    /// The same scores with the same weight sums up to a relative 1e-12
    /// (only the order of the weight sums may differ).
    fn same_entries_up_to_sum_order(
        x: &ScoreAggregate,
        y: &ScoreAggregate,
    ) -> Result<(), proptest::test_runner::TestCaseError> {
        let (xs, ys): (Vec<_>, Vec<_>) = (x.iter().collect(), y.iter().collect());
        proptest::prop_assert_eq!(xs.len(), ys.len());
        for (a, b) in xs.iter().zip(&ys) {
            proptest::prop_assert_eq!(a.0, b.0);
            proptest::prop_assert!(
                (a.1 - b.1).abs() <= 1e-12 * b.1.max(1.0),
                "{:?} vs {:?}",
                a,
                b
            );
            proptest::prop_assert!(
                (a.2 - b.2).abs() <= 1e-12 * b.2.max(1.0),
                "{:?} vs {:?}",
                a,
                b
            );
        }
        Ok(())
    }

    /// Scores with ties, both zeros and neighbours of zero.
    const GRID: [f64; 10] = [
        -0.0,
        0.0,
        0.5,
        -0.5,
        1e-300,
        -1e-300,
        1.0 / 3.0,
        0.1 + 0.2,
        0.3,
        -7.25,
    ];

    /// A builder folding every `every` records, by one sort from
    /// `one_sort_min` records on, with `rows` (grid or fine score, label,
    /// user, weight) staged.
    fn staged_with(
        rows: &[(u16, bool, u16, f64)],
        every: usize,
        one_sort_min: usize,
    ) -> StagedBatch {
        let mut b = BatchBuilder::with_fold_every(every);
        b.one_sort_min = one_sort_min;
        for &(s, p, u, w) in rows {
            let score = GRID
                .get(usize::from(s))
                .copied()
                .unwrap_or(f64::from(s) / 997.0 - 0.5);
            let user = (u % 50 != 49).then(|| format!("u{u}"));
            let record = Record {
                score,
                positive: p,
                weight: w,
            };
            assert_eq!(b.push(user.as_deref(), record), Ok(()));
        }
        b.finish()
    }

    /// Both staged batches hold the same aggregates, bit for bit, and the
    /// same GAUC sums.
    fn same_bits(
        x: &StagedBatch,
        y: &StagedBatch,
    ) -> Result<(), proptest::test_runner::TestCaseError> {
        proptest::prop_assert_eq!(bits(&x.global), bits(&y.global));
        proptest::prop_assert_eq!(x.users.len(), y.users.len());
        for ((n1, a1), (n2, a2)) in x.users.iter().zip(&y.users) {
            proptest::prop_assert_eq!(n1, n2);
            proptest::prop_assert_eq!(bits(a1), bits(a2));
            proptest::prop_assert_eq!(a1.heap_bytes(), a2.heap_bytes());
        }
        let gauc = |b: &StagedBatch| GaucSums::of_users(b.users.iter().map(|(_, a)| a));
        proptest::prop_assert_eq!(gauc(x), gauc(y));
        Ok(())
    }

    proptest::proptest! {
        /// The one-sort fold gives the aggregates of the per-user sorts, bit
        /// for bit: ties, `-0.0` next to `0.0`, users with one class or one
        /// record, records without a user, weights 0 and 1, one chunk or
        /// several; a chunk with another weight keeps the per-user sorts
        /// (the one sort would sum its weights in another order).
        #[test]
        fn one_sort_folds_exactly_as_the_per_user_sorts(
            rows in proptest::collection::vec(
                (proptest::prop_oneof![0u16..10, 0u16..1000], proptest::bool::ANY,
                 proptest::prop_oneof![0u16..3, 0u16..60, 0u16..400],
                 proptest::prop_oneof![6 => proptest::strategy::Just(1.0), 2 => proptest::strategy::Just(0.0),
                                       1 => proptest::prop_oneof![proptest::strategy::Just(0.1), proptest::strategy::Just(0.7), 1e-3f64..1e3]]),
                0..600),
            every in proptest::prop_oneof![1usize..8, 8usize..700],
            one_sort_min in 0usize..40,
        ) {
            let one_sort = staged_with(&rows, every, one_sort_min);
            let per_user = staged_with(&rows, every, usize::MAX);
            same_bits(&one_sort, &per_user)?;
            // and the aggregation of the whole request at once
            let whole = staged_with(&rows, usize::MAX, usize::MAX);
            proptest::prop_assert_eq!(one_sort.global.counts(), whole.global.counts());
        }
    }

    /// [`ONE_SORT_MIN`] itself: a request of 220,000 records in chunks of
    /// 2^17 (both over the floor, the last below it) over 3,000 users,
    /// scores with ties and both zeros, some weights 0.
    #[test]
    fn one_sort_at_its_floor_folds_exactly_as_the_per_user_sorts(
    ) -> Result<(), proptest::test_runner::TestCaseError> {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let rows: Vec<(u16, bool, u16, f64)> = (0..220_000)
            .map(|_| {
                let r = next();
                let score = if r % 4 == 0 {
                    (r >> 8) % 10
                } else {
                    (r >> 8) % 1000
                };
                let weight = if (r >> 20) % 9 == 0 { 0.0 } else { 1.0 };
                (
                    score as u16,
                    (r >> 30) % 3 == 0,
                    ((r >> 40) % 3000) as u16,
                    weight,
                )
            })
            .collect();
        const { assert!(1 << 17 >= ONE_SORT_MIN && 220_000 - (1 << 17) < ONE_SORT_MIN) };
        let one_sort = staged_with(&rows, 1 << 17, ONE_SORT_MIN);
        same_bits(&one_sort, &staged_with(&rows, 1 << 17, usize::MAX))?;
        same_bits(&one_sort, &staged_with(&rows, usize::MAX, usize::MAX))
    }

    #[test]
    fn sorted_then_scattered_records_come_grouped_by_user_with_every_run_sorted() {
        let users = [2u32, 0, NO_USER, 1, 0, 2, 0, NO_USER];
        let scores = [0.5, 0.0, 0.3, -0.0, -1.0, 0.5, 0.25, -0.0];
        let mut records: Vec<Staged> = users
            .iter()
            .zip(scores)
            .enumerate()
            .map(|(i, (&user, score))| Staged {
                score,
                user,
                tag: i as u32,
            })
            .collect();
        let Some(mut grouped) = sort_by_score(&mut records) else {
            panic!("a small chunk is sorted");
        };
        let starts = scatter_into(&records, &mut grouped, 3);
        let tags = |r: &[Staged]| r.iter().map(|r| r.tag).collect::<Vec<_>>();
        // the chunk sorted by score, stably (-0.0 before 0.0)
        assert_eq!(tags(&records), [4, 3, 7, 1, 6, 2, 0, 5]);
        assert_eq!(starts, [0, 3, 4, 6, 8]);
        assert_eq!(tags(&grouped), [4, 1, 6, 3, 0, 5, 7, 2]);
        assert_eq!(run_of(&grouped, &starts, 1).map(tags), Some(vec![3]));
        assert!(run_of(&grouped, &starts, 9).is_none());
    }

    #[test]
    fn the_staged_copy_stays_within_one_chunk() {
        let mut b = BatchBuilder::with_fold_every(64);
        let rows: Vec<(u8, bool, u8, f64)> = (0..1000u32)
            .map(|i| ((i % 30) as u8, i % 3 == 0, (i % 7) as u8, 1.0))
            .collect();
        stage(&mut b, &rows);
        assert_eq!((b.len(), b.users()), (1000, 7));
        assert!(b.records.capacity() <= 64, "{}", b.records.capacity());
        assert!(b.staged_bytes() >= b.folded_bytes && b.folded_bytes > 0);
        assert_eq!(b.finish().records(), 1000);
    }

    #[test]
    fn user_ids_intern_to_dense_indices_in_first_seen_order() {
        let mut ids = UserIds::default();
        let long = "a-user-id-longer-than-15-bytes";
        let names = [
            "b",
            "",
            "a",
            "é",
            "ab",
            long,
            "0123456789abcde",
            "b",
            "a",
            long,
        ];
        let got: Vec<_> = names.iter().map(|n| ids.intern(*n)).collect();
        assert_eq!(got, [0, 1, 2, 3, 4, 5, 6, 0, 2, 5].map(Ok));
        for (i, n) in names.iter().take(7).enumerate() {
            assert_eq!(ids.id(i as u32), *n);
        }
        assert_eq!(ids.id(99), "");
    }

    #[test]
    fn a_staged_record_takes_16_bytes() {
        assert_eq!(std::mem::size_of::<Staged>(), 16);
    }

    proptest::proptest! {
        #[test]
        fn packed_weights_and_labels_stage_exactly(
            rows in proptest::collection::vec(
                (0u8..30, proptest::bool::ANY, 0u8..5,
                 proptest::prop_oneof![proptest::strategy::Just(1.0), proptest::strategy::Just(0.0), 1e-9f64..1e9]),
                0..200)
        ) {
            let mut b = BatchBuilder::new();
            let user = |u: u8| (u < 4).then(|| format!("u{u}"));
            let record = |s: u8, p: bool, w: f64| Record { score: f64::from(s) / 30.0, positive: p, weight: w };
            for &(s, p, u, w) in &rows {
                proptest::prop_assert!(b.push(user(u).as_deref(), record(s, p, w)).is_ok());
            }
            let staged = b.finish();
            let mut all: Vec<Record> = rows.iter().map(|&(s, p, _, w)| record(s, p, w)).collect();
            let whole = ScoreAggregate::from_records(&mut all);
            proptest::prop_assert_eq!(staged.global.counts(), whole.counts());
            same_entries_up_to_sum_order(&staged.global, &whole)?;
        }
    }

    #[test]
    fn push_rejects_non_finite_scores_and_negative_weights() {
        let mut b = BatchBuilder::new();
        assert_eq!(
            b.push(None, rec(f64::NAN, true)).map_err(|e| e.to_string()),
            Err("prediction must be a finite number, found NaN".to_owned())
        );
        let bad = Record {
            score: 0.5,
            positive: true,
            weight: -1.0,
        };
        assert_eq!(b.push(None, bad), Err(RecordError::BadWeight(-1.0)));
        assert!(b.is_empty());
    }
}
