//! The key layout of a stream in Redis.
//!
//! Every key starts with the configured prefix (default `evald:`). The hash
//! tag (the part in `{}`, which alone picks the cluster slot) only ever holds
//! numbers chosen by evald, never a client's stream, user or tenant name, so a
//! client cannot pile keys onto one slot by choosing names:
//!
//! | key | type | holds |
//! | --- | --- | --- |
//! | `P{r}:streams` | hash | stream name -> `"<id> <buckets> <created_ms>"` (the registry) |
//! | `P{r}:next` | string | the last stream id handed out |
//! | `P{s<id>}:meta` | hash | `count`, `users`, `updated` of the stream |
//! | `P{s<id>}:done:<batch>` | string, TTL | the answer of an applied batch |
//! | `P{s<id>\|<b>}:users` | hash | user id -> encoded aggregate, for the users of bucket `b` |
//! | `P{s<id>\|<b>}:sums` | hash | `v` (version), `s` (the bucket's GAUC sums and global partial) |
//! | `P{s<id>\|<b>}:done:<batch>` | string, TTL | marks batch `<batch>` applied to bucket `b` |
//!
//! A user belongs to bucket `crc32(user id) mod buckets`, so a user's
//! aggregate and the GAUC sums it feeds share a slot and one script updates
//! both atomically. A GAUC query reads the `buckets` sums keys, however many
//! users the stream has.

/// Key names of one deployment (one prefix).
#[derive(Debug, Clone)]
pub struct Keys {
    prefix: String,
}

impl Keys {
    pub fn new(prefix: &str) -> Self {
        Keys {
            prefix: prefix.to_owned(),
        }
    }

    /// The registry hash: stream name -> id, buckets, creation time.
    pub fn registry(&self) -> String {
        format!("{}{{r}}:streams", self.prefix)
    }

    /// The stream id counter (same slot as the registry).
    pub fn next_id(&self) -> String {
        format!("{}{{r}}:next", self.prefix)
    }

    pub fn meta(&self, id: u64) -> String {
        format!("{}{{s{id}}}:meta", self.prefix)
    }

    pub fn stream_done(&self, id: u64, batch: &str) -> String {
        format!("{}{{s{id}}}:done:{batch}", self.prefix)
    }

    pub fn users(&self, id: u64, bucket: u32) -> String {
        format!("{}{{s{id}|{bucket}}}:users", self.prefix)
    }

    pub fn sums(&self, id: u64, bucket: u32) -> String {
        format!("{}{{s{id}|{bucket}}}:sums", self.prefix)
    }

    pub fn bucket_done(&self, id: u64, bucket: u32, batch: &str) -> String {
        format!("{}{{s{id}|{bucket}}}:done:{batch}", self.prefix)
    }
}

/// The bucket of user `user` in a stream of `buckets` buckets. CRC-32 is
/// fixed forever (every evald replica and version must agree), unlike the
/// per-process seeded hash of the in-memory maps.
pub fn bucket_of(user: &str, buckets: u32) -> u32 {
    crc32fast::hash(user.as_bytes()) % buckets.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The slot-picking part of a key (Redis Cluster's rule: the first `{...}`).
    fn hash_tag(key: &str) -> &str {
        let open = key.find('{').unwrap_or(0);
        let close = key[open..].find('}').map_or(key.len(), |c| open + c);
        &key[open + 1..close]
    }

    #[test]
    fn a_users_aggregate_and_its_bucket_sums_share_a_hash_tag() {
        let k = Keys::new("evald:");
        assert_eq!(hash_tag(&k.users(7, 3)), "s7|3");
        assert_eq!(hash_tag(&k.users(7, 3)), hash_tag(&k.sums(7, 3)));
        assert_eq!(hash_tag(&k.sums(7, 3)), hash_tag(&k.bucket_done(7, 3, "b")));
        assert_eq!(hash_tag(&k.meta(7)), hash_tag(&k.stream_done(7, "b")));
        assert_eq!(hash_tag(&k.registry()), hash_tag(&k.next_id()));
    }

    #[test]
    fn a_client_chosen_name_never_lands_inside_the_hash_tag() {
        let k = Keys::new("evald:");
        assert_eq!(hash_tag(&k.bucket_done(7, 3, "{evil}")), "s7|3");
        assert_eq!(hash_tag(&k.stream_done(7, "{evil}")), "s7");
    }

    #[test]
    fn buckets_are_stable_and_in_range() {
        assert_eq!(bucket_of("u1", 32), crc32fast::hash(b"u1") % 32);
        assert!((0..1000).all(|i| bucket_of(&format!("u{i}"), 5) < 5));
        assert_eq!(bucket_of("u1", 0), 0);
    }
}
