//! `--store redis` against real servers: a standalone Redis and a 3-primary
//! cluster started by `scripts/redis-test-servers` (run by `scripts/ci-redis`).
//!
//! Every test here is `#[ignore]`d in a plain `cargo test` because it needs
//! those servers; `scripts/ci-redis` runs them with `--ignored`. Run that way
//! without the servers' addresses, each test fails (it never skips).

mod faults;
mod http;
mod store;

/// The URL in `var`, or a failing test that says how to get one.
pub fn redis_url(var: &str) -> String {
    match std::env::var(var) {
        Ok(url) if !url.trim().is_empty() => url,
        _ => panic!(
            "{var} is not set: the Redis tests need running servers; run them with scripts/ci-redis"
        ),
    }
}

/// The standalone server's URL.
pub fn standalone_url() -> String {
    redis_url("EVALD_TEST_REDIS_URL")
}

/// The cluster's seed URLs (comma-separated).
pub fn cluster_url() -> String {
    redis_url("EVALD_TEST_REDIS_CLUSTER_URL")
}

/// A key prefix no other test uses, so tests share the servers without
/// seeing each other's streams.
pub fn fresh_prefix(test: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("t:{test}:{nanos}:")
}
