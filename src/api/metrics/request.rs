//! The `POST /metrics` request body and its streaming deserializers.
//!
//! A 20 MB body holds millions of numbers, so nothing here builds a
//! `serde_json::Value` tree: predictions go through the shared nested-array
//! parser ([`Tensor`]), labels straight into a `Vec<u32>`, and user ids are
//! interned into dense indices while they are read (a string is allocated
//! once per distinct user, not once per record). Errors raised inside these
//! deserializers carry the element index in their JSON path
//! (`labels[3]`), which the extractor turns into the problem's `field`.

use std::collections::HashMap;
use std::fmt;
use std::hash::BuildHasher;

use serde::de::{self, DeserializeSeed, Deserializer, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;

use super::beyond::{CalibrationParams, PrParams};
use super::fast;
use crate::api::labels::{ClassLabel, JsonLabel};
use crate::api::tensor::Tensor;
use crate::core::metrics::{Average, BinaryParams, GaucWeighting};

/// `POST /metrics` request (`MetricsRequest` in `openapi/openapi.yaml`).
/// Unknown fields are rejected.
pub type MetricsRequest = MetricsRequestWith<UserIds>;

/// The request with `user_ids` read as `U`: [`UserIds`] for the request
/// itself, raw JSON text for the first pass of the two-thread parse; and
/// with placeholders for all three arrays (`P`, `L`) when the fast parser
/// (`fast.rs`) leaves only the options to serde.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsRequestWith<U, P = Tensor, L = Labels> {
    /// Flat binary scores, or an N x C matrix of class scores.
    pub predictions: P,
    pub labels: L,
    #[serde(default = "Option::default")]
    pub user_ids: Option<U>,
    #[serde(default)]
    pub sample_weights: Option<Vec<f64>>,
    #[serde(default = "default_threshold")]
    pub threshold: f64,
    #[serde(default = "default_beta")]
    pub beta: f64,
    #[serde(default)]
    pub average: AverageParam,
    #[serde(default)]
    pub roc: RocParams,
    #[serde(default)]
    pub gauc_weighting: GaucWeightingParam,
    // Evaluation beyond the basics (binary only): see `super::beyond`.
    #[serde(default)]
    pub pr: Option<PrParams>,
    #[serde(default)]
    pub calibration: Option<CalibrationParams>,
    #[serde(default)]
    pub thresholds: Option<Vec<f64>>,
    #[serde(default)]
    pub tpr_at_fpr: Option<Vec<f64>>,
    #[serde(default)]
    pub max_fpr: Option<f64>,
    // ---- intervals, comparison and ranking (README, "Confidence intervals
    // and model comparison", "Ranking metrics") ----
    /// Level of every confidence interval, in (0, 1).
    #[serde(default = "default_confidence")]
    pub confidence: f64,
    /// Per-user ranking metrics; needs `user_ids`.
    #[serde(default)]
    pub ranking: Option<RankingRequest>,
    // ---- end intervals and ranking ----
}

fn default_confidence() -> f64 {
    BinaryParams::default().confidence
}

/// `ranking`: the cutoffs k.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RankingRequest {
    pub k: Vec<usize>,
}

// The defaults are the core's (`BinaryParams::default`), kept in one place.
fn default_threshold() -> f64 {
    BinaryParams::default().threshold
}

fn default_beta() -> f64 {
    BinaryParams::default().beta
}

fn default_max_points() -> Option<usize> {
    BinaryParams::default().max_points
}

fn default_drop_intermediate() -> bool {
    BinaryParams::default().drop_intermediate
}

/// `roc` parameters: `max_points` absent = 1000, `null` = unlimited.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RocParams {
    #[serde(default = "default_max_points")]
    pub max_points: Option<usize>,
    #[serde(default = "default_drop_intermediate")]
    pub drop_intermediate: bool,
}

impl Default for RocParams {
    fn default() -> Self {
        RocParams {
            max_points: default_max_points(),
            drop_intermediate: default_drop_intermediate(),
        }
    }
}

/// `average`: micro | macro | weighted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AverageParam {
    Micro,
    #[default]
    Macro,
    Weighted,
}

impl From<AverageParam> for Average {
    fn from(a: AverageParam) -> Self {
        match a {
            AverageParam::Micro => Average::Micro,
            AverageParam::Macro => Average::Macro,
            AverageParam::Weighted => Average::Weighted,
        }
    }
}

/// `gauc_weighting`: impressions | clicks | uniform.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GaucWeightingParam {
    #[default]
    Impressions,
    Clicks,
    Uniform,
}

impl From<GaucWeightingParam> for GaucWeighting {
    fn from(w: GaucWeightingParam) -> Self {
        match w {
            GaucWeightingParam::Impressions => GaucWeighting::Impressions,
            GaucWeightingParam::Clicks => GaucWeighting::Clicks,
            GaucWeightingParam::Uniform => GaucWeighting::Uniform,
        }
    }
}

/// Below this body size a second thread costs more than it saves (the JSON
/// parse's threshold, and the Arrow reading's).
pub const PARALLEL_PARSE_MIN_BYTES: usize = 256 * 1024;

/// `user_ids` as parsed ahead of time from a guessed position: the ids and
/// the byte range of the array they were read from.
struct SpeculativeUsers {
    ids: UserIds,
    range: std::ops::Range<usize>,
}

impl MetricsRequest {
    /// Parses a body on one thread: the fast parser ([`super::fast`]) for
    /// the common shape, serde for anything else. Same value as
    /// deserializing `MetricsRequest` with serde_json, and the same bodies
    /// fail. Errors carry no JSON path: callers re-parse a failing body with
    /// path tracking to report it (`parse_json_with`).
    pub fn from_json(bytes: &[u8]) -> Result<MetricsRequest, serde_json::Error> {
        match fast::request(bytes, |_| None) {
            Some(request) => Ok(request),
            None => serde_json::from_slice(bytes),
        }
    }

    /// Parses a valid body on two threads: `user_ids`, the costliest array (a
    /// string and a hash lookup per record), on one; everything else on the
    /// other.
    ///
    /// The second thread cannot know where `user_ids` starts without a scan
    /// of the whole body, which would cost as much as it saves, so it guesses:
    /// it parses the array after the first `"user_ids":` in the text. The
    /// main parse takes the guessed result only when the real `user_ids`
    /// value starts exactly there; otherwise (say, a user id spelled
    /// `"user_ids"` came first) it parses the value itself. Either way the
    /// value equals deserializing `MetricsRequest` directly, and the same
    /// bodies fail. Both threads use the fast parser; a body it does not
    /// read falls back to the serde parse on two threads. Errors carry no
    /// JSON path (see [`MetricsRequest::from_json`]).
    pub fn from_json_parallel(bytes: &[u8]) -> Result<MetricsRequest, serde_json::Error> {
        if bytes.len() < PARALLEL_PARSE_MIN_BYTES {
            return Self::from_json(bytes);
        }
        Self::from_json_two_threads(bytes)
    }

    /// The two-thread parse whatever the body size. Crate-visible for
    /// [`crate::fuzzing`], which checks it against the one-thread serde
    /// parse on the small bodies a fuzzer makes (so the fuzzer checks the
    /// fast parser too).
    pub(crate) fn from_json_two_threads(bytes: &[u8]) -> Result<MetricsRequest, serde_json::Error> {
        match fast_on_two_threads(bytes) {
            Some(request) => Ok(request),
            None => parse_on_two_threads(bytes),
        }
    }
}

/// The fast parse with `user_ids` read ahead on a second thread from the
/// guessed position; `None` when the fast parser does not read the body.
fn fast_on_two_threads(bytes: &[u8]) -> Option<MetricsRequest> {
    std::thread::scope(|scope| {
        let mut guess = user_ids_guess(bytes).map(|start| {
            (
                start,
                scope.spawn(move || fast::user_ids_value(bytes, start)),
            )
        });
        fast::request(bytes, |start| match guess.take() {
            Some((guessed, handle)) if guessed == start => handle.join().ok().flatten(),
            other => {
                guess = other;
                None
            }
        })
    })
}

/// The two-thread parse of [`MetricsRequest::from_json_parallel`].
fn parse_on_two_threads(bytes: &[u8]) -> Result<MetricsRequest, serde_json::Error> {
    std::thread::scope(|scope| {
        let guess =
            user_ids_guess(bytes).map(|start| scope.spawn(move || parse_users_at(bytes, start)));
        let request: MetricsRequestWith<&RawValue> = serde_json::from_slice(bytes)?;
        let speculative = guess.and_then(|handle| handle.join().ok().flatten());
        let user_ids = match request.user_ids {
            None => None,
            Some(raw) => Some(users_from_raw(bytes, raw, speculative)?),
        };
        Ok(MetricsRequest {
            predictions: request.predictions,
            labels: request.labels,
            user_ids,
            sample_weights: request.sample_weights,
            threshold: request.threshold,
            beta: request.beta,
            average: request.average,
            roc: request.roc,
            gauc_weighting: request.gauc_weighting,
            pr: request.pr,
            calibration: request.calibration,
            thresholds: request.thresholds,
            tpr_at_fpr: request.tpr_at_fpr,
            max_fpr: request.max_fpr,
            confidence: request.confidence,
            ranking: request.ranking,
        })
    })
}

/// Offset of the value after the first `"user_ids"` key-like text, skipping
/// whitespace and the colon; `None` if there is no such text.
fn user_ids_guess(bytes: &[u8]) -> Option<usize> {
    const KEY: &[u8] = b"\"user_ids\"";
    let after_key = memchr::memmem::find(bytes, KEY)? + KEY.len();
    let skip_ws = |from: usize| {
        bytes[from..]
            .iter()
            .position(|b| !b.is_ascii_whitespace())
            .map(|n| from + n)
    };
    let colon = skip_ws(after_key)?;
    if bytes[colon] != b':' {
        return None;
    }
    skip_ws(colon + 1)
}

/// Parses the array of user ids starting at `start`; `None` if that is not
/// one.
fn parse_users_at(bytes: &[u8], start: usize) -> Option<SpeculativeUsers> {
    let mut values = serde_json::Deserializer::from_slice(&bytes[start..]).into_iter::<UserIds>();
    let ids = values.next()?.ok()?;
    let end = start + values.byte_offset();
    Some(SpeculativeUsers {
        ids,
        range: start..end,
    })
}

/// The ids of the real `user_ids` value `raw`: the speculative result if it
/// was read from exactly these bytes, else a parse of `raw`.
fn users_from_raw(
    bytes: &[u8],
    raw: &RawValue,
    speculative: Option<SpeculativeUsers>,
) -> Result<UserIds, serde_json::Error> {
    let text = raw.get();
    let start = (text.as_ptr() as usize).wrapping_sub(bytes.as_ptr() as usize);
    match speculative {
        Some(guess) if guess.range == (start..start + text.len()) => Ok(guess.ids),
        _ => serde_json::from_str(text),
    }
}

/// Labels as read: `true`/`false` become 1/0, non-negative integers (or
/// integral floats such as `1.0`) are kept. Whether they must be 0/1 or class
/// indices is decided later, from the shape of `predictions`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Labels {
    pub values: Vec<u32>,
    /// Index of the first boolean label, if any (booleans are binary only).
    pub first_bool: Option<usize>,
}

impl<'de> Deserialize<'de> for Labels {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_seq(LabelsVisitor)
    }
}

struct LabelsVisitor;

impl<'de> Visitor<'de> for LabelsVisitor {
    type Value = Labels;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array of labels (0/1, true/false or class indices)")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Labels, A::Error> {
        let mut labels = Labels {
            values: Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1 << 20)),
            first_bool: None,
        };
        while let Some(Label(label)) = seq.next_element()? {
            if label.boolean && labels.first_bool.is_none() {
                labels.first_bool = Some(labels.values.len());
            }
            labels.values.push(label.value);
        }
        Ok(labels)
    }
}

/// One label of `POST /metrics`, read by the shared label reader as a class
/// index (0/1 for flat predictions is checked once the shape is known).
struct Label(ClassLabel);

impl<'de> Deserialize<'de> for Label {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        const EXPECTING: &str = "a label: 0/1, true/false or a non-negative class index";
        JsonLabel::deserialize_expecting(deserializer, EXPECTING)?
            .class_index()
            .map(Label)
            .map_err(de::Error::custom)
    }
}

/// User ids, strings or integers, interned into dense indices `0..names.len()`
/// in order of first appearance. An integer id is the same user as its
/// decimal string (`7` and `"7"` are one user), so clients may mix them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UserIds {
    /// Dense user index of each record.
    pub indices: Vec<u32>,
    /// Id of each dense index.
    pub names: Vec<Box<str>>,
}

impl<'de> Deserialize<'de> for UserIds {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_seq(UserIdsVisitor)
    }
}

/// foldhash instead of SipHash: the keys come from the request, but every
/// map gets its own random seed and lives only as long as its request, so
/// flooding one costs the attacker as much as it costs us; and SipHash was a
/// fifth of the interning time.
type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// Interns user ids into dense indices (public for `benches/metrics.rs`).
///
/// Ids of up to 15 bytes (nearly all real ones) are keyed by their bytes
/// packed into a `u128` with the length in the last byte, so a lookup
/// compares integers, never chases a pointer to a heap string. Longer ids go
/// through an ordinary map.
#[derive(Default)]
pub struct Interner {
    short: ShortKeys,
    by_name: FastMap<Box<str>, u32>,
    by_integer: FastMap<i128, u32>,
    ids: UserIds,
}

/// Packed short ids to dense indices, laid out for the cache: the hash table
/// holds only 4-byte indices and the keys sit in a dense array beside it.
///
/// Why not `HashMap<u128, u32>`: its 32-byte buckets make a 20,000-user table
/// 1 MiB, twice this core's L2 cache, and profiling a million-record request
/// put most of the interning time in the cache miss of each probe. Here the
/// slots are 256 KiB (at most half full) and the keys 320 KiB.
///
/// Why not `hashbrown::HashTable<u32>` (used before): its probe (control
/// bytes, a group match, two closures) and foldhash's `hash_one` took ~110
/// of the ~220 instructions a million-record `user_ids` array spent per id
/// (callgrind, README → Performance); one folded multiply and a linear probe
/// of 4-byte slots do the same work.
///
/// Why not `indexmap`: its entries carry the hash beside the key (32 bytes
/// each for a `u128` key, plus 8-byte table slots), so interning 1,000,000
/// ids of 20,000 users took 84–99 ms against the former hashbrown table's 48–62 ms, and an
/// `IndexSet` of the names themselves 61–108 ms (on-CPU time, two runs of
/// `cargo bench --bench metrics -- interner` on a loaded 2-core machine).
struct ShortKeys {
    /// Open addressing with linear probing, at most half full: 0 is a free
    /// slot, anything else a dense index plus one.
    slots: Vec<u32>,
    /// Short ids in `slots`.
    len: usize,
    /// Key of each dense index; [`NOT_SHORT`] for ids kept in `by_name`.
    keys: Vec<u128>,
    /// The map's random seeds (from foldhash's per-map random state).
    seeds: (u64, u64),
}

impl Default for ShortKeys {
    fn default() -> Self {
        let random = foldhash::fast::RandomState::default();
        ShortKeys {
            slots: Vec::new(),
            len: 0,
            keys: Vec::new(),
            seeds: (random.hash_one(1u64), random.hash_one(2u64)),
        }
    }
}

impl ShortKeys {
    /// One folded 64 x 64 -> 128-bit multiplication of the key's halves,
    /// each mixed with a random seed (foldhash's core step).
    #[inline(always)]
    fn hash(&self, key: u128) -> usize {
        let product =
            u128::from(key as u64 ^ self.seeds.0) * u128::from((key >> 64) as u64 ^ self.seeds.1);
        (product as u64 ^ (product >> 64) as u64) as usize
    }

    /// Doubles the slots (16 at first) and puts every short key back.
    #[cold]
    fn grow(&mut self) {
        let size = (self.slots.len() * 2).max(16);
        let mut slots = vec![0u32; size];
        let mask = size - 1;
        for (index, &key) in self.keys.iter().enumerate() {
            if key == NOT_SHORT {
                continue;
            }
            let mut at = self.hash(key) & mask;
            while slots.get(at).is_some_and(|&s| s != 0) {
                at = (at + 1) & mask;
            }
            if let Some(slot) = slots.get_mut(at) {
                // Indices stay below 2^32 (checked when interned).
                *slot = index as u32 + 1;
            }
        }
        self.slots = slots;
    }
}

/// A key no short id packs to (its length byte would be 255).
const NOT_SHORT: u128 = u128::MAX;

/// `name` packed into a `u128` (bytes, then the length in byte 15), when it
/// has at most 15 bytes. Distinct strings give distinct keys.
pub fn short_key(name: &str) -> Option<u128> {
    let bytes = name.as_bytes();
    if bytes.len() > 15 {
        return None;
    }
    // Shifted in byte by byte: a memcpy into a stack array read back as
    // one u128 stalled on store forwarding, a sixth of the interning time.
    let key = bytes
        .iter()
        .enumerate()
        .fold((bytes.len() as u128) << 120, |key, (i, &b)| {
            key | u128::from(b) << (8 * i)
        });
    Some(key)
}

impl Interner {
    /// The dense index of user id `name`, the next free one on first sight.
    pub fn string<E: de::Error>(&mut self, name: &str) -> Result<u32, E> {
        self.string_with_key(name, short_key(name))
    }

    /// [`Interner::string`] for a caller that already has `short_key(name)`
    /// (the fast parser builds it from the bytes it loaded to find the
    /// closing quote), so the id is not packed again. `key` must be
    /// `short_key(name)`.
    pub fn string_with_key<E: de::Error>(
        &mut self,
        name: &str,
        key: Option<u128>,
    ) -> Result<u32, E> {
        debug_assert_eq!(key, short_key(name));
        match key {
            Some(key) => self.short_index(key, || Some(name)),
            None => self.long_index(name),
        }
        .ok_or_else(|| E::custom("more than 2^32 distinct user ids"))
    }

    /// The dense index of a short id given as its key and its bytes, which
    /// are read (and checked to be UTF-8) only on first sight; `None` past
    /// 2^32 ids or for bytes that are not UTF-8. `key` must be the
    /// [`short_key`] of `name`.
    pub fn short_bytes(&mut self, key: u128, name: &[u8]) -> Option<u32> {
        self.short_index(key, || std::str::from_utf8(name).ok())
    }

    /// One hash and one probe: the index of `key` if known, else `name()`
    /// is recorded under the next index (the table's free slot found by
    /// the same probe). `None` past 2^32 ids or if `name()` is `None`.
    fn short_index<'n>(
        &mut self,
        key: u128,
        name: impl FnOnce() -> Option<&'n str>,
    ) -> Option<u32> {
        if 2 * (self.short.len + 1) > self.short.slots.len() {
            self.short.grow();
        }
        let mask = self.short.slots.len() - 1;
        let mut at = self.short.hash(key) & mask;
        loop {
            match self.short.slots.get(at).copied()? {
                0 => break,
                slot => {
                    if self.short.keys.get(slot as usize - 1) == Some(&key) {
                        return Some(slot - 1);
                    }
                }
            }
            at = (at + 1) & mask;
        }
        // A free slot: the next index (slots hold index + 1, so at most
        // 2^32 - 1 ids).
        let i = u32::try_from(self.ids.names.len())
            .ok()
            .filter(|&i| i < u32::MAX)?;
        let name = name()?;
        *self.short.slots.get_mut(at)? = i + 1;
        self.short.len += 1;
        self.short.keys.push(key);
        self.ids.names.push(name.into());
        Some(i)
    }

    /// The index of an id of more than 15 bytes (the ordinary map).
    fn long_index(&mut self, name: &str) -> Option<u32> {
        if let Some(&i) = self.by_name.get(name) {
            return Some(i);
        }
        let i = u32::try_from(self.ids.names.len()).ok()?;
        self.by_name.insert(name.into(), i);
        self.short.keys.push(NOT_SHORT);
        self.ids.names.push(name.into());
        Some(i)
    }

    /// The dense index of integer user id `value` (the same user as its
    /// decimal string).
    pub fn integer<E: de::Error>(&mut self, value: i128) -> Result<u32, E> {
        if let Some(&i) = self.by_integer.get(&value) {
            return Ok(i);
        }
        let i = self.string(&value.to_string())?;
        self.by_integer.insert(value, i);
        Ok(i)
    }
}

impl Interner {
    /// Records the next record's user, `index` (from [`Interner::string`] or
    /// [`Interner::integer`]), for input read column by column.
    pub fn push_record(&mut self, index: u32) {
        self.ids.indices.push(index);
    }

    /// Makes room for `records` more [`Interner::push_record`] calls, for a
    /// caller that knows the count.
    pub fn reserve_records(&mut self, records: usize) {
        self.ids.indices.reserve(records);
    }

    /// The records' user indices and the interned names.
    pub fn into_ids(self) -> UserIds {
        self.ids
    }
}

struct UserIdsVisitor;

impl<'de> Visitor<'de> for UserIdsVisitor {
    type Value = UserIds;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array of user ids (strings or integers)")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<UserIds, A::Error> {
        let mut interner = Interner::default();
        interner.ids.indices = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1 << 20));
        while let Some(i) = seq.next_element_seed(UserIdSeed(&mut interner))? {
            interner.ids.indices.push(i);
        }
        Ok(interner.ids)
    }
}

pub(super) struct UserIdSeed<'a>(pub(super) &'a mut Interner);

impl<'de> DeserializeSeed<'de> for UserIdSeed<'_> {
    type Value = u32;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<u32, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for UserIdSeed<'_> {
    type Value = u32;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a user id: a string or an integer")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<u32, E> {
        self.0.string(v)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<u32, E> {
        self.0.integer(i128::from(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<u32, E> {
        self.0.integer(i128::from(v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(body: &str) -> Result<MetricsRequest, String> {
        crate::api::extract::parse_json::<MetricsRequest>(body.as_bytes())
            .map_err(|e| format!("{} {}", e.field.unwrap_or_default(), e.detail))
    }

    /// The parallel parse against the plain one: same value (compared by
    /// `Debug`, which prints every f64 exactly) or both failing.
    fn assert_parallel_matches(body: &str) {
        let parallel = parse_on_two_threads(body.as_bytes());
        let plain = serde_json::from_str::<MetricsRequest>(body);
        match (&parallel, &plain) {
            (Ok(a), Ok(b)) => assert_eq!(format!("{a:?}"), format!("{b:?}"), "body {body}"),
            (Err(_), Err(_)) => {}
            _ => panic!("parallel {parallel:?} but plain {plain:?} for body {body}"),
        }
    }

    #[test]
    fn parallel_parse_equals_plain_parse() {
        let bodies = [
            // the common layouts, with whitespace around the colon
            r#"{"predictions": [0.1, 0.9, 0.4], "labels": [0, 1, 1], "user_ids": ["a", "b", "a"]}"#,
            r#"{"user_ids" :  [7, "7", "x"], "predictions": [0.5, 0.25, 1e-3], "labels": [true, false, true], "threshold": 0.3}"#,
            r#"{"predictions": [[0.1, 0.9], [0.8, 0.2]], "labels": [1, 0], "average": "weighted"}"#,
            r#"{"predictions": [0.1], "labels": [1], "user_ids": null, "sample_weights": null}"#,
            r#"{"predictions": [0.1, 0.2], "labels": [1, 0], "sample_weights": [2, 0.5], "roc": {"max_points": null}}"#,
            // the guess finds text that is not the real key: an escaped key,
            // and a user id spelled like the key
            r#"{"predictions": [0.1, 0.2], "labels": [1, 0], "user_ids": ["user_ids", "b"]}"#,
            r#"{"predictions": [0.1, 0.2], "labels": [1, 0], "user_ids": [""user_ids":", "b"]}"#,
            // long ids (over 15 bytes) and escapes inside ids
            r#"{"predictions": [0.1, 0.2, 0.3], "labels": [1, 0, 1], "user_ids": ["a-very-long-user-identifier", "é", "a-very-long-user-identifier"]}"#,
            // failures: unknown field, duplicate key, bad user id, trailing text
            r#"{"predictions": [0.1], "labels": [1], "user_ids": ["a"], "extra": 1}"#,
            r#"{"predictions": [0.1], "labels": [1], "user_ids": ["a"], "user_ids": ["b"]}"#,
            r#"{"predictions": [0.1], "labels": [1], "user_ids": [{"a": 1}]}"#,
            r#"{"predictions": [0.1], "labels": [1], "user_ids": ["a"]} x"#,
            r#"{"predictions": [1e999], "labels": [1], "user_ids": ["a"]}"#,
            r#"{"roc": {"user_ids": ["a"]}, "predictions": [0.1], "labels": [1], "user_ids": ["a"]}"#,
        ];
        for body in bodies {
            assert_parallel_matches(body);
        }
        let ok = parse_on_two_threads(bodies[0].as_bytes()).unwrap();
        let users = ok.user_ids.unwrap();
        assert_eq!(users.indices, vec![0, 1, 0]);
        assert!(parse_on_two_threads(bodies[9].as_bytes()).is_err());
    }

    #[test]
    fn interning_many_short_and_long_ids_keeps_first_appearance_order() {
        let ids: Vec<String> = (0..5000)
            .map(|i| match i % 3 {
                0 => format!("u{}", (i * 7919) % 1200),
                1 => format!("a-long-user-identifier-{}", (i * 31) % 700),
                _ => ((i * 13) % 900).to_string(),
            })
            .collect();
        let body = format!(
            r#"{{"predictions": [{}], "labels": [{}], "user_ids": {}}}"#,
            vec!["0.5"; ids.len()].join(","),
            vec!["1"; ids.len()].join(","),
            serde_json::to_string(&ids).unwrap()
        );
        assert_parallel_matches(&body);
        let users = parse_on_two_threads(body.as_bytes())
            .unwrap()
            .user_ids
            .unwrap();
        let mut expected_names: Vec<&str> = Vec::new();
        for (record, id) in ids.iter().enumerate() {
            let index = match expected_names.iter().position(|n| n == id) {
                Some(i) => i,
                None => {
                    expected_names.push(id);
                    expected_names.len() - 1
                }
            };
            assert_eq!(users.indices[record] as usize, index, "record {record}");
        }
        let names: Vec<&str> = users.names.iter().map(|n| &**n).collect();
        assert_eq!(names, expected_names);
    }

    #[test]
    fn defaults_follow_the_api() {
        let r = parse(r#"{"predictions": [0.1], "labels": [true]}"#).unwrap();
        assert_eq!(r.threshold, 0.5);
        assert_eq!(r.beta, 1.0);
        assert_eq!(r.average, AverageParam::Macro);
        assert_eq!(r.roc.max_points, Some(1000));
        assert!(r.roc.drop_intermediate);
        assert_eq!(r.gauc_weighting, GaucWeightingParam::Impressions);
        assert_eq!(r.labels.values, vec![1]);
        assert_eq!(r.labels.first_bool, Some(0));
    }

    #[test]
    fn null_max_points_means_unlimited() {
        let r =
            parse(r#"{"predictions": [0.1], "labels": [1], "roc": {"max_points": null}}"#).unwrap();
        assert_eq!(r.roc.max_points, None);
    }

    #[test]
    fn user_ids_are_interned_and_integers_match_their_strings() {
        let r = parse(r#"{"predictions": [1, 2, 3, 4], "labels": [1, 0, 1, 0], "user_ids": ["a", 7, "7", "a"]}"#)
            .unwrap();
        let ids = r.user_ids.unwrap();
        assert_eq!(ids.indices, vec![0, 1, 1, 0]);
        assert_eq!(ids.names, vec!["a".into(), "7".into()] as Vec<Box<str>>);
    }

    #[test]
    fn short_and_long_ids_intern_alike_and_never_collide() {
        let long = "a-user-id-longer-than-fifteen-bytes";
        let body = format!(
            r#"{{"predictions": [1, 2, 3, 4, 5, 6], "labels": [1, 0, 1, 0, 1, 0],
               "user_ids": ["", "a\u0000", "a", "{long}", "a", "{long}"]}}"#
        );
        let ids = parse(&body).unwrap().user_ids.unwrap();
        assert_eq!(ids.indices, vec![0, 1, 2, 3, 2, 3]);
        assert_eq!(ids.names.len(), 4);
        assert_ne!(short_key("a"), short_key("a\0"));
        assert_eq!(
            short_key("exactly15bytes!").map(|k| (k >> 120) as u8),
            Some(15)
        );
        assert_eq!(short_key("sixteen-bytes-id"), None);
    }

    #[test]
    fn bad_labels_name_their_index() {
        let err = parse(r#"{"predictions": [1, 2], "labels": [1, -1]}"#).unwrap_err();
        assert!(err.starts_with("labels[1] "), "{err}");
        let err = parse(r#"{"predictions": [1, 2], "labels": [1, 0.5]}"#).unwrap_err();
        assert!(err.starts_with("labels[1] "), "{err}");
        let err = parse(r#"{"predictions": [1, 2], "labels": [1, "x"]}"#).unwrap_err();
        assert!(err.starts_with("labels[1] "), "{err}");
    }

    #[test]
    fn unknown_fields_are_rejected() {
        let err = parse(r#"{"predictions": [1], "labels": [1], "treshold": 0.3}"#).unwrap_err();
        assert!(err.contains("treshold"), "{err}");
        let err =
            parse(r#"{"predictions": [1], "labels": [1], "roc": {"points": 3}}"#).unwrap_err();
        assert!(err.starts_with("roc"), "{err}");
    }
}
