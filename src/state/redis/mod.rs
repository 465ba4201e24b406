//! `--store redis`: stream state in Redis (standalone) or Redis Cluster, shared
//! by any number of evald replicas that never talk to each other.
//!
//! - [`keys`]: the key layout (hash tags, buckets).
//! - [`bucket`]: a bucket's GAUC sums and global partial, and the user codec.
//! - [`scripts`]: the one-slot Lua scripts (compare-and-set of a bucket).
//! - [`conn`]: one connection handle for standalone and cluster.
//!
//! # Ingest
//! A staged batch is split by bucket (`crc32(user) mod buckets`); the batch's
//! global aggregate goes to one bucket chosen by the batch id. Each touched
//! bucket is read (its sums, its version, the batch's users), merged in Rust
//! with the memory store's aggregate code (merge, then compaction at
//! `--max-scores-per-user` / `--max-scores-per-stream`), and written back by
//! [`scripts::apply_bucket`] only if its version did not move (else read
//! again and retry). Buckets are independent slots, so they are applied
//! concurrently; each leaves a marker `done:<batch id>` (with a TTL) in its
//! slot, and the stream's totals get the same kind of marker. A batch retried
//! with the same id after a failure halfway skips the buckets it already
//! applied: it is counted once.

pub mod bucket;
pub mod conn;
pub mod keys;
pub mod scripts;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use redis::{AsyncCommands, RedisError, Script, Value};
use tokio::sync::OnceCell;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;

use bucket::{decode_user, encode_user, Bucket};
use conn::{Conn, Mode};
use keys::{bucket_of, Keys};

use super::aggregate::CodecError;
use super::batch::StagedBatch;
use super::gauc::GaucSums;
use super::store::{
    BatchId, BoxFuture, Budgets, Gauges, IngestSummary, StoreError, StreamInfo, StreamRead,
    StreamStore,
};
use super::tenants::{TenantLedger, TenantLimits};
use super::users::{UserPager, UsersPage};
use super::ScoreAggregate;

/// Settings of the Redis store besides the shared budgets.
#[derive(Debug, Clone)]
pub struct RedisOptions {
    /// Comma-separated seed URLs.
    pub urls: String,
    /// Prefix of every key (outside the hash tag).
    pub prefix: String,
    /// Buckets of a new stream (its GAUC query reads this many keys).
    pub buckets: u32,
    /// How long a batch id is remembered (retries within it are counted once).
    pub batch_ttl: Duration,
    /// Bucket reads and writes this process has in flight at once, over all
    /// requests (at least 1).
    pub max_inflight: usize,
}

/// Times a bucket's compare-and-set is retried after a concurrent writer
/// moved it, before the batch is answered 503 (applied buckets stay marked,
/// so a retry with the same Idempotency-Key completes it).
const MAX_CONFLICTS: usize = 200;

/// The scripts, hashed once.
#[derive(Debug)]
struct Scripts {
    create: Script,
    apply_bucket: Script,
    apply_meta: Script,
    unregister: Script,
}

/// A registered stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Registered {
    id: u64,
    buckets: u32,
    created_ms: u64,
}

impl Registered {
    fn parse(v: &str) -> Option<Registered> {
        let mut it = v.split(' ').map(str::parse::<u64>);
        let (id, buckets, created_ms) = (it.next()?.ok()?, it.next()?.ok()?, it.next()?.ok()?);
        Some(Registered {
            id,
            buckets: u32::try_from(buckets).ok().filter(|b| *b > 0)?,
            created_ms,
        })
    }
}

/// The Redis-backed stream store.
#[derive(Debug)]
pub struct RedisStore {
    /// Connected on first use, and again after a failed attempt: evald
    /// starts (not ready) while Redis is down and serves once it is up.
    conn: OnceCell<(Conn, Mode)>,
    keys: Keys,
    budgets: Budgets,
    tenants: TenantLedger,
    options: RedisOptions,
    scripts: Scripts,
    batch_counter: AtomicU64,
    /// Bounds the bucket commands in flight: a large batch touches every
    /// bucket, and sending all at once queued them behind each other on the
    /// multiplexed connection until the last ones hit the response timeout
    /// (503s under load, measured with `scripts/bench-streams --store redis`).
    inflight: Arc<Semaphore>,
}

/// A permit to send one bucket command (see `RedisStore::inflight`).
async fn permit(inflight: Arc<Semaphore>) -> Result<OwnedSemaphorePermit, StoreError> {
    inflight
        .acquire_owned()
        .await
        .map_err(|_| StoreError::Unavailable("the Redis store is shutting down".to_owned()))
}

/// A Redis failure: the store is unavailable (503, retry).
fn unavailable(e: RedisError) -> StoreError {
    tracing::warn!(error = %e, "redis command failed");
    StoreError::Unavailable(format!("the Redis store did not answer: {e}"))
}

fn corrupt(what: &str, e: CodecError) -> StoreError {
    tracing::error!(error = %e, what, "undecodable value in Redis");
    StoreError::Internal(format!("{what} in Redis could not be decoded: {e}"))
}

fn joined<T>(r: Result<T, tokio::task::JoinError>) -> Result<T, StoreError> {
    r.map_err(|e| StoreError::Internal(format!("a Redis task failed: {e}")))
}

/// A bucket as read before a merge.
struct BucketRead {
    done: Option<String>,
    version: String,
    blob: Option<Vec<u8>>,
    users: Vec<Option<Vec<u8>>>,
}

/// The part of a batch for one bucket.
struct BucketPart {
    bucket: u32,
    users: Vec<(String, ScoreAggregate)>,
    global: Option<ScoreAggregate>,
}

impl RedisStore {
    /// The store at `options.urls`; connects on first use (standalone or
    /// cluster, as the server says).
    pub fn new(options: RedisOptions, budgets: Budgets, tenants: TenantLimits) -> RedisStore {
        let inflight = Arc::new(Semaphore::new(options.max_inflight.max(1)));
        RedisStore {
            conn: OnceCell::new(),
            keys: Keys::new(&options.prefix),
            budgets,
            tenants: TenantLedger::new(tenants),
            options,
            scripts: Scripts {
                create: scripts::create(),
                apply_bucket: scripts::apply_bucket(),
                apply_meta: scripts::apply_meta(),
                unregister: scripts::unregister(),
            },
            batch_counter: AtomicU64::new(0),
            inflight,
        }
    }

    /// Connects now (tests, and a start-up check); the store otherwise
    /// connects on first use.
    pub async fn connect(
        options: RedisOptions,
        budgets: Budgets,
        tenants: TenantLimits,
    ) -> Result<RedisStore, StoreError> {
        let store = RedisStore::new(options, budgets, tenants);
        store.conn().await?;
        Ok(store)
    }

    /// A handle on the connection, connecting first when needed.
    async fn conn(&self) -> Result<Conn, StoreError> {
        let (conn, _) = self
            .conn
            .get_or_try_init(|| async {
                let (conn, mode) = conn::connect(&self.options.urls)
                    .await
                    .map_err(unavailable)?;
                tracing::info!(?mode, "connected to Redis");
                Ok::<_, StoreError>((conn, mode))
            })
            .await?;
        Ok(conn.clone())
    }

    /// Standalone or cluster, once connected.
    pub fn mode(&self) -> Option<Mode> {
        self.conn.get().map(|(_, mode)| *mode)
    }

    /// The configured budgets.
    pub fn budgets(&self) -> Budgets {
        self.budgets
    }

    /// True when Redis answers a PING (for `/readyz`).
    pub async fn ping(&self) -> Result<(), StoreError> {
        let mut c = self.conn().await?;
        redis::cmd("PING")
            .query_async::<String>(&mut c)
            .await
            .map(|_| ())
            .map_err(unavailable)
    }

    /// How long batch markers live; 0 (`--idempotency-ttl-secs 0`) writes none.
    fn ttl_ms(&self) -> u64 {
        u64::try_from(self.options.batch_ttl.as_millis()).unwrap_or(u64::MAX)
    }

    /// A batch id no other batch has: the process, time and a counter,
    /// hashed with a per-process random seed.
    fn new_batch_id(&self) -> String {
        use std::hash::BuildHasher;
        let n = self.batch_counter.fetch_add(1, Ordering::Relaxed);
        let seed = foldhash::fast::RandomState::default();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let a = seed.hash_one((now, n, std::process::id()));
        let b = seed.hash_one((a, n));
        format!("g{a:016x}{b:016x}")
    }

    async fn lookup(&self, name: &str) -> Result<Option<Registered>, StoreError> {
        let mut c = self.conn().await?;
        let v: Option<String> = c
            .hget(self.keys.registry(), name)
            .await
            .map_err(unavailable)?;
        Ok(v.as_deref().and_then(Registered::parse))
    }

    async fn lookup_existing(&self, name: &str) -> Result<Registered, StoreError> {
        self.lookup(name)
            .await?
            .ok_or_else(|| StoreError::UnknownStream(name.to_owned()))
    }

    /// The stream `name`, created (within the stream limits) when missing.
    async fn register(&self, name: &str, now_ms: u64) -> Result<Registered, StoreError> {
        if let Some(r) = self.lookup(name).await? {
            return Ok(r);
        }
        if self.tenants.limits().max_streams.is_some() {
            let mut c = self.conn().await?;
            let names: Vec<String> = c.hkeys(self.keys.registry()).await.map_err(unavailable)?;
            self.tenants.check_new_stream(name, names.iter())?;
        }
        let mut c = self.conn().await?;
        let v: Option<String> = self
            .scripts
            .create
            .key(self.keys.registry())
            .key(self.keys.next_id())
            .arg(name)
            .arg(self.budgets.max_streams)
            .arg(self.options.buckets)
            .arg(now_ms)
            .invoke_async(&mut c)
            .await
            .map_err(unavailable)?;
        let v = v.ok_or(StoreError::TooManyStreams {
            limit: self.budgets.max_streams,
        })?;
        Registered::parse(&v).ok_or_else(|| {
            StoreError::Internal(format!("registry entry of stream '{name}' is '{v}'"))
        })
    }

    /// Merges `batch` into stream `name` (created on first use). `batch_id`
    /// is the client's Idempotency-Key, if any: a batch with an id applied
    /// before (within the TTL) is not applied again and gets its first answer.
    pub async fn ingest(
        &self,
        name: &str,
        batch: StagedBatch,
        batch_id: Option<&str>,
        now_ms: u64,
    ) -> Result<IngestSummary, StoreError> {
        self.ingest_upto(name, batch, batch_id, now_ms, usize::MAX)
            .await?
            .ok_or_else(|| StoreError::Unavailable("the batch was interrupted".to_owned()))
    }

    /// Fault injection for tests: applies only the first `buckets` buckets
    /// of the batch and stops before the stream's totals, as a replica dying
    /// halfway through a batch would. A retry with the same key completes it.
    #[doc(hidden)]
    pub async fn ingest_interrupted(
        &self,
        name: &str,
        batch: StagedBatch,
        batch_id: &str,
        buckets: usize,
        now_ms: u64,
    ) -> Result<(), StoreError> {
        self.ingest_upto(name, batch, Some(batch_id), now_ms, buckets)
            .await
            .map(|_| ())
    }

    /// [`RedisStore::ingest`], stopping after `max_buckets` buckets
    /// (`None` then: the batch is not complete).
    async fn ingest_upto(
        &self,
        name: &str,
        batch: StagedBatch,
        batch_id: Option<&str>,
        now_ms: u64,
        max_buckets: usize,
    ) -> Result<Option<IngestSummary>, StoreError> {
        let stream = self.register(name, now_ms).await?;
        let accepted = batch.records();
        let id = match batch_id {
            Some(key) => {
                let key = format!("k{key}");
                if let Some(answer) = self.first_answer(stream.id, &key).await? {
                    return Ok(Some(summary(accepted, &answer)));
                }
                key
            }
            None => self.new_batch_id(),
        };
        let mut parts = split(batch, stream.buckets, &id);
        let interrupted = parts.len() > max_buckets;
        parts.truncate(max_buckets);
        let reads = self.read_buckets(stream.id, &parts, &id).await?;
        let new_users: usize = reads
            .iter()
            .filter(|r| r.done.is_none())
            .map(|r| r.users.iter().filter(|u| u.is_none()).count())
            .sum();
        self.check_users(name, stream.id, new_users).await?;
        let new_users = self.apply_buckets(stream.id, parts, reads, &id).await?;
        if interrupted {
            return Ok(None);
        }
        let mut c = self.conn().await?;
        let answer: String = self
            .scripts
            .apply_meta
            .key(self.keys.meta(stream.id))
            .key(self.keys.stream_done(stream.id, &id))
            .arg(accepted)
            .arg(new_users)
            .arg(now_ms)
            .arg(self.ttl_ms())
            .invoke_async(&mut c)
            .await
            .map_err(unavailable)?;
        Ok(Some(summary(accepted, &answer)))
    }

    async fn first_answer(&self, id: u64, batch: &str) -> Result<Option<String>, StoreError> {
        let mut c = self.conn().await?;
        c.get(self.keys.stream_done(id, batch))
            .await
            .map_err(unavailable)
    }

    async fn check_users(&self, name: &str, id: u64, new_users: usize) -> Result<(), StoreError> {
        let limit = self.budgets.max_users_per_stream;
        let mut c = self.conn().await?;
        let users: Option<u64> = c
            .hget(self.keys.meta(id), "users")
            .await
            .map_err(unavailable)?;
        let users = usize::try_from(users.unwrap_or(0)).unwrap_or(usize::MAX);
        if users.saturating_add(new_users) > limit {
            return Err(StoreError::TooManyUsers {
                stream: name.to_owned(),
                users,
                new_users,
                limit,
            });
        }
        Ok(())
    }

    /// Reads every touched bucket, concurrently.
    async fn read_buckets(
        &self,
        id: u64,
        parts: &[BucketPart],
        batch: &str,
    ) -> Result<Vec<BucketRead>, StoreError> {
        let mut set = JoinSet::new();
        for (i, part) in parts.iter().enumerate() {
            let conn = self.conn().await?;
            let keys = self.keys.clone();
            let names: Vec<String> = part.users.iter().map(|(n, _)| n.clone()).collect();
            let (bucket, batch) = (part.bucket, batch.to_owned());
            let inflight = self.inflight.clone();
            set.spawn(async move {
                let read = match permit(inflight).await {
                    Ok(_permit) => read_bucket(conn, keys, id, bucket, &batch, &names)
                        .await
                        .map_err(unavailable),
                    Err(e) => Err(e),
                };
                (i, read)
            });
        }
        let mut out: Vec<Option<BucketRead>> = (0..parts.len()).map(|_| None).collect();
        while let Some(joined) = set.join_next().await {
            let (i, read) = joined.map_err(|e| StoreError::Unavailable(e.to_string()))?;
            if let Some(slot) = out.get_mut(i) {
                *slot = Some(read?);
            }
        }
        Ok(out.into_iter().flatten().collect())
    }

    /// Merges and writes every bucket (compare-and-set, re-read on conflict);
    /// returns the users the batch added.
    async fn apply_buckets(
        &self,
        id: u64,
        parts: Vec<BucketPart>,
        reads: Vec<BucketRead>,
        batch: &str,
    ) -> Result<u64, StoreError> {
        let mut set = JoinSet::new();
        for (part, read) in parts.into_iter().zip(reads) {
            let ctx = ApplyCtx {
                conn: self.conn().await?,
                keys: self.keys.clone(),
                script: self.scripts.apply_bucket.clone(),
                id,
                batch: batch.to_owned(),
                ttl_ms: self.ttl_ms(),
                budgets: self.budgets,
            };
            let inflight = self.inflight.clone();
            set.spawn(async move {
                let _permit = permit(inflight).await?;
                ctx.apply(part, read).await
            });
        }
        let mut added = 0u64;
        let mut first_err = None;
        while let Some(joined) = set.join_next().await {
            match joined {
                Ok(Ok(n)) => added += n,
                Ok(Err(e)) => {
                    first_err.get_or_insert(e);
                }
                Err(e) => {
                    first_err.get_or_insert(StoreError::Unavailable(e.to_string()));
                }
            }
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(added),
        }
    }

    /// The stream's global aggregate (the buckets' partials merged, then
    /// compacted at `--max-scores-per-stream`) and each bucket's GAUC sums.
    /// Each bucket is read atomically; a batch being applied may be visible
    /// in some buckets and not yet in others (README, "Scale out").
    pub async fn read_stream(&self, name: &str) -> Result<StreamRead, StoreError> {
        let stream = self.lookup_existing(name).await?;
        let mut set = JoinSet::new();
        for b in 0..stream.buckets {
            let mut c = self.conn().await?;
            let key = self.keys.sums(stream.id, b);
            set.spawn(async move { c.hget::<_, _, Option<Vec<u8>>>(key, "s").await });
        }
        let mut c = self.conn().await?;
        let updated: Option<u64> = c
            .hget(self.keys.meta(stream.id), "updated")
            .await
            .map_err(unavailable)?;
        let mut global = ScoreAggregate::default();
        let mut gauc = Vec::with_capacity(stream.buckets as usize);
        while let Some(read) = set.join_next().await {
            let Some(blob) = joined(read)?.map_err(unavailable)? else {
                continue;
            };
            let b = Bucket::decode(&blob).map_err(|e| corrupt("a bucket", e))?;
            global.merge(&b.global);
            gauc.push(b.gauc);
        }
        global.compact(self.budgets.max_scores_per_stream);
        let users = usize::try_from(GaucSums::total(&gauc).users).unwrap_or(usize::MAX);
        let info = StreamInfo::new(
            name,
            stream.created_ms,
            updated.unwrap_or(stream.created_ms),
            users,
            &global,
        );
        Ok(StreamRead { info, global, gauc })
    }

    /// One user's aggregate; `Ok(None)` when the stream has no such user.
    pub async fn read_user(
        &self,
        name: &str,
        user: &str,
    ) -> Result<Option<ScoreAggregate>, StoreError> {
        let stream = self.lookup_existing(name).await?;
        let mut c = self.conn().await?;
        let blob: Option<Vec<u8>> = c
            .hget(
                self.keys.users(stream.id, bucket_of(user, stream.buckets)),
                user,
            )
            .await
            .map_err(unavailable)?;
        blob.map(|b| decode_user(&b).map_err(|e| corrupt("a user aggregate", e)))
            .transpose()
    }

    /// Feeds every user of stream `name` to `pager`, one bucket at a time
    /// (`HSCAN`, so a large bucket is read in pieces).
    pub async fn page_users(
        &self,
        name: &str,
        mut pager: UserPager,
    ) -> Result<UsersPage, StoreError> {
        let stream = self.lookup_existing(name).await?;
        let mut c = self.conn().await?;
        for b in 0..stream.buckets {
            let key = self.keys.users(stream.id, b);
            let mut cursor = 0u64;
            loop {
                let (next, items): (u64, Vec<(String, Vec<u8>)>) = redis::cmd("HSCAN")
                    .arg(&key)
                    .arg(cursor)
                    .arg("COUNT")
                    .arg(1000)
                    .query_async(&mut c)
                    .await
                    .map_err(unavailable)?;
                for (user, blob) in items {
                    let agg = decode_user(&blob).map_err(|e| corrupt("a user aggregate", e))?;
                    pager.offer(&user, &agg);
                }
                if next == 0 {
                    break;
                }
                cursor = next;
            }
        }
        Ok(pager.finish())
    }

    /// Every stream, sorted by name (each read as a metrics query reads it).
    pub async fn list(&self) -> Result<Vec<StreamInfo>, StoreError> {
        let mut c = self.conn().await?;
        let names: Vec<String> = c.hkeys(self.keys.registry()).await.map_err(unavailable)?;
        let mut out = Vec::with_capacity(names.len());
        for name in names {
            match self.read_stream(&name).await {
                Ok(read) => out.push(read.info),
                // Deleted since the registry was read.
                Err(StoreError::UnknownStream(_)) => {}
                Err(e) => return Err(e),
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// Removes stream `name`: true when it existed. The registry entry goes
    /// first (atomically: from then on the name is unknown, or a new stream
    /// with a new id), then the stream's keys.
    pub async fn delete(&self, name: &str) -> Result<bool, StoreError> {
        let Some(stream) = self.lookup(name).await? else {
            return Ok(false);
        };
        let mut c = self.conn().await?;
        let removed: i64 = self
            .scripts
            .unregister
            .key(self.keys.registry())
            .arg(name)
            .arg(stream.id)
            .invoke_async(&mut c)
            .await
            .map_err(unavailable)?;
        if removed != 1 {
            return Ok(false);
        }
        let _: () = c
            .unlink(self.keys.meta(stream.id))
            .await
            .map_err(unavailable)?;
        for b in 0..stream.buckets {
            let _: () = c
                .unlink(&[self.keys.users(stream.id, b), self.keys.sums(stream.id, b)])
                .await
                .map_err(unavailable)?;
        }
        Ok(true)
    }

    /// Removes streams not updated since `now_ms - ttl_ms`; returns their names.
    pub async fn purge_idle(&self, now_ms: u64, ttl_ms: u64) -> Result<Vec<String>, StoreError> {
        let cutoff = now_ms.saturating_sub(ttl_ms);
        let mut gone = Vec::new();
        for info in self.list().await? {
            if info.updated_at_ms < cutoff && self.delete(&info.name).await? {
                gone.push(info.name);
            }
        }
        Ok(gone)
    }
}

/// The ingest answer from the stream's `"<count> <users>"`.
fn summary(accepted: u64, answer: &str) -> IngestSummary {
    let mut it = answer.split(' ').map(|v| v.parse::<u64>().unwrap_or(0));
    let count = it.next().unwrap_or(0);
    let users = usize::try_from(it.next().unwrap_or(0)).unwrap_or(usize::MAX);
    IngestSummary {
        accepted,
        count,
        users,
        seq: 0,
    }
}

/// Splits a batch by bucket; the global part goes to the bucket the batch id
/// picks (so successive batches spread it).
fn split(batch: StagedBatch, buckets: u32, batch_id: &str) -> Vec<BucketPart> {
    let global_bucket = bucket_of(batch_id, buckets);
    let mut by: HashMap<u32, BucketPart> = HashMap::new();
    for (name, agg) in batch.users {
        let b = bucket_of(&name, buckets);
        by.entry(b)
            .or_insert_with(|| BucketPart {
                bucket: b,
                users: Vec::new(),
                global: None,
            })
            .users
            .push((name, agg));
    }
    by.entry(global_bucket)
        .or_insert_with(|| BucketPart {
            bucket: global_bucket,
            users: Vec::new(),
            global: None,
        })
        .global = Some(batch.global);
    let mut parts: Vec<BucketPart> = by.into_values().collect();
    parts.sort_by_key(|p| p.bucket);
    parts
}

async fn read_bucket(
    mut c: Conn,
    keys: Keys,
    id: u64,
    bucket: u32,
    batch: &str,
    users: &[String],
) -> Result<BucketRead, RedisError> {
    let mut pipe = redis::pipe();
    pipe.get(keys.bucket_done(id, bucket, batch))
        .hmget(keys.sums(id, bucket), &["v", "s"]);
    if !users.is_empty() {
        pipe.hmget(keys.users(id, bucket), users);
    }
    let mut values: Vec<Value> = pipe.query_async(&mut c).await?;
    let user_values: Vec<Option<Vec<u8>>> = if users.is_empty() {
        Vec::new()
    } else {
        match values.pop() {
            Some(v) => redis::from_redis_value(v)?,
            None => Vec::new(),
        }
    };
    let mut it = values.into_iter();
    let done: Option<String> = redis::from_redis_value(it.next().unwrap_or(Value::Nil))?;
    let (version, blob): (Option<String>, Option<Vec<u8>>) =
        redis::from_redis_value(it.next().unwrap_or(Value::Nil))?;
    Ok(BucketRead {
        done,
        version: version.unwrap_or_else(|| "0".to_owned()),
        blob,
        users: user_values,
    })
}

/// What one bucket's merge needs.
struct ApplyCtx {
    conn: Conn,
    keys: Keys,
    script: Script,
    id: u64,
    batch: String,
    ttl_ms: u64,
    budgets: Budgets,
}

impl ApplyCtx {
    /// Merges `part` into its bucket, retrying on a concurrent change;
    /// returns the users it added (the first attempt's, when already applied).
    async fn apply(mut self, part: BucketPart, mut read: BucketRead) -> Result<u64, StoreError> {
        for _ in 0..MAX_CONFLICTS {
            if let Some(done) = &read.done {
                return Ok(done.parse().unwrap_or(0));
            }
            let (blob, new_users, pairs) = self.merge(&part, &read)?;
            let mut inv = self.script.prepare_invoke();
            inv.key(self.keys.users(self.id, part.bucket))
                .key(self.keys.sums(self.id, part.bucket))
                .key(self.keys.bucket_done(self.id, part.bucket, &self.batch))
                .arg(&read.version)
                .arg(self.ttl_ms)
                .arg(blob)
                .arg(new_users);
            for (name, value) in &pairs {
                inv.arg(name).arg(value);
            }
            let (status, value): (i64, String) = inv
                .invoke_async(&mut self.conn)
                .await
                .map_err(unavailable)?;
            match status {
                1 | 2 => return Ok(value.parse().unwrap_or(0)),
                _ => {
                    let names: Vec<String> = part.users.iter().map(|(n, _)| n.clone()).collect();
                    read = read_bucket(
                        self.conn.clone(),
                        self.keys.clone(),
                        self.id,
                        part.bucket,
                        &self.batch,
                        &names,
                    )
                    .await
                    .map_err(unavailable)?;
                }
            }
        }
        Err(StoreError::Unavailable(format!(
            "bucket {} changed under {MAX_CONFLICTS} attempts to write it; retry",
            part.bucket
        )))
    }

    /// The bucket blob after the merge, the users added, and the users'
    /// new encoded aggregates, with the memory store's merge and compaction.
    #[allow(clippy::type_complexity)]
    fn merge(
        &self,
        part: &BucketPart,
        read: &BucketRead,
    ) -> Result<(Vec<u8>, u64, Vec<(String, Vec<u8>)>), StoreError> {
        let mut bucket = match &read.blob {
            Some(b) => Bucket::decode(b).map_err(|e| corrupt("a bucket", e))?,
            None => Bucket::default(),
        };
        let mut new_users = 0u64;
        let mut pairs = Vec::with_capacity(part.users.len());
        for ((name, add), old) in part.users.iter().zip(&read.users) {
            let old = old
                .as_deref()
                .map(decode_user)
                .transpose()
                .map_err(|e| corrupt("a user aggregate", e))?;
            let mut merged = match &old {
                Some(agg) => {
                    let mut agg = agg.clone();
                    agg.merge(add);
                    agg
                }
                None => {
                    new_users += 1;
                    add.clone()
                }
            };
            merged.compact(self.budgets.max_scores_per_user);
            bucket.replace(old.as_ref(), &merged);
            pairs.push((name.clone(), encode_user(&merged)));
        }
        if let Some(global) = &part.global {
            bucket.global.merge(global);
            bucket.global.compact(self.budgets.max_scores_per_stream);
        }
        Ok((bucket.encode(), new_users, pairs))
    }
}

impl StreamStore for RedisStore {
    fn admit_staged(&self, _records: usize, _staged_bytes: usize) -> Result<(), StoreError> {
        // No local memory budget: Redis's `maxmemory` bounds the state.
        Ok(())
    }

    fn apply<'a>(
        &'a self,
        name: &'a str,
        batch: StagedBatch,
        id: &'a BatchId,
        now_ms: u64,
    ) -> BoxFuture<'a, Result<IngestSummary, StoreError>> {
        Box::pin(async move {
            let key = id.is_from_client().then(|| id.key());
            self.ingest(name, batch, key, now_ms).await
        })
    }

    fn info<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<StreamInfo, StoreError>> {
        Box::pin(async move { Ok(self.read_stream(name).await?.info) })
    }

    fn stream<'a>(
        &'a self,
        name: &'a str,
        with_gauc: bool,
    ) -> BoxFuture<'a, Result<StreamRead, StoreError>> {
        Box::pin(async move {
            let mut read = self.read_stream(name).await?;
            if !with_gauc {
                read.gauc.clear();
            }
            Ok(read)
        })
    }

    fn user<'a>(
        &'a self,
        name: &'a str,
        user_id: &'a str,
    ) -> BoxFuture<'a, Result<Option<ScoreAggregate>, StoreError>> {
        Box::pin(self.read_user(name, user_id))
    }

    fn users<'a>(
        &'a self,
        name: &'a str,
        pager: UserPager,
    ) -> BoxFuture<'a, Result<UsersPage, StoreError>> {
        Box::pin(self.page_users(name, pager))
    }

    fn list(&self) -> BoxFuture<'_, Result<Vec<StreamInfo>, StoreError>> {
        Box::pin(RedisStore::list(self))
    }

    fn delete<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(RedisStore::delete(self, name))
    }

    fn purge_idle(
        &self,
        now_ms: u64,
        ttl_ms: u64,
    ) -> BoxFuture<'_, Result<Vec<String>, StoreError>> {
        Box::pin(RedisStore::purge_idle(self, now_ms, ttl_ms))
    }

    fn gauges(&self) -> BoxFuture<'_, Result<Gauges, StoreError>> {
        Box::pin(async move {
            let list = RedisStore::list(self).await?;
            Ok(Gauges {
                streams: list.len(),
                users: list.iter().map(|i| i.users).sum(),
                records: list.iter().map(|i| i.count).sum(),
                // The state's bytes are Redis's (`INFO memory`), not this process's.
                bytes: 0,
            })
        })
    }

    fn readiness(&self) -> BoxFuture<'_, Vec<String>> {
        Box::pin(async move {
            match self.ping().await {
                Ok(()) => Vec::new(),
                Err(e) => vec![format!("redis: {e}")],
            }
        })
    }

    fn shutdown(&self) -> BoxFuture<'_, std::io::Result<()>> {
        // Every acknowledged change is already in Redis.
        Box::pin(async { Ok(()) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::conformance;

    /// The store at `var` (set by scripts/redis-test-servers); a test run
    /// without it fails, it never skips.
    async fn store_at(var: &str) -> RedisStore {
        let url =
            std::env::var(var).unwrap_or_else(|_| panic!("{var} is not set: run scripts/ci-redis"));
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let options = RedisOptions {
            urls: url,
            prefix: format!("t:conformance:{nanos}:"),
            buckets: 4,
            batch_ttl: Duration::from_secs(600),
            max_inflight: 8,
        };
        let budgets = Budgets {
            max_streams: 100,
            max_users_per_stream: 1000,
            max_scores_per_user: 1000,
            max_scores_per_stream: 10_000,
            memory_budget: 1 << 30,
        };
        RedisStore::connect(options, budgets, TenantLimits::default())
            .await
            .unwrap_or_else(|e| panic!("connecting to {var}: {e}"))
    }

    #[tokio::test]
    #[ignore = "needs Redis: run scripts/ci-redis"]
    async fn the_redis_store_passes_the_store_conformance_checks_standalone() {
        conformance::all(&store_at("EVALD_TEST_REDIS_URL").await).await;
    }

    #[tokio::test]
    #[ignore = "needs Redis: run scripts/ci-redis"]
    async fn the_redis_store_passes_the_store_conformance_checks_on_a_cluster() {
        conformance::all(&store_at("EVALD_TEST_REDIS_CLUSTER_URL").await).await;
    }
}
