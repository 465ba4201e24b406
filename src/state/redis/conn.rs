//! One connection handle for a standalone Redis and for a Redis Cluster.
//!
//! The mode is found from the server (`INFO cluster` on the first seed that
//! answers): `cluster_enabled:1` builds the cluster client over every seed,
//! which routes each command by its key's hash slot and follows `MOVED` /
//! `ASK` redirections and failovers; otherwise a [`ConnectionManager`]
//! reconnects one server. Both are multiplexed and cheap to clone, so every
//! request uses its own clone without a pool.

use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClientBuilder;
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Pipeline, RedisFuture, RedisResult, Value};

/// How long one command may wait for an answer, and the connect timeout:
/// short, so that a dead primary becomes a 503 quickly instead of a hung
/// request (the client retries on its own after the failover).
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// Which kind of server the URLs point at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Standalone,
    Cluster,
}

/// A standalone or a cluster connection.
#[derive(Clone)]
pub enum Conn {
    Standalone(ConnectionManager),
    Cluster(ClusterConnection),
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Conn::Standalone(_) => "Conn::Standalone",
            Conn::Cluster(_) => "Conn::Cluster",
        })
    }
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Standalone(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Standalone(c) => c.req_packed_commands(pipeline, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Standalone(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
        }
    }
}

/// Splits `--redis-url` (comma-separated seed nodes) into URLs.
pub fn seeds(urls: &str) -> Vec<String> {
    urls.split(',')
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Asks the first seed that answers whether it is a cluster node.
async fn detect(seeds: &[String]) -> RedisResult<Mode> {
    let mut last = None;
    for url in seeds {
        let attempt = async {
            let client = redis::Client::open(url.as_str())?;
            let mut conn = client
                .get_multiplexed_async_connection_with_config(
                    &redis::AsyncConnectionConfig::new()
                        .set_connection_timeout(Some(CONNECT_TIMEOUT))
                        .set_response_timeout(Some(RESPONSE_TIMEOUT)),
                )
                .await?;
            let info: String = redis::cmd("INFO")
                .arg("cluster")
                .query_async(&mut conn)
                .await?;
            Ok::<_, redis::RedisError>(if info.contains("cluster_enabled:1") {
                Mode::Cluster
            } else {
                Mode::Standalone
            })
        };
        match attempt.await {
            Ok(mode) => return Ok(mode),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| {
        redis::RedisError::from((redis::ErrorKind::InvalidClientConfig, "no Redis URL given"))
    }))
}

/// Connects to the seeds, standalone or cluster as the server says.
pub async fn connect(urls: &str) -> RedisResult<(Conn, Mode)> {
    let seeds = seeds(urls);
    let mode = detect(&seeds).await?;
    let conn = match mode {
        Mode::Cluster => {
            let client = ClusterClientBuilder::new(seeds)
                .connection_timeout(CONNECT_TIMEOUT)
                .response_timeout(RESPONSE_TIMEOUT)
                // A few quick retries ride out a MOVED storm during a
                // reshard; a failover takes longer and is answered with 503.
                .retries(3)
                .min_retry_wait(50)
                .max_retry_wait(500)
                .build()?;
            Conn::Cluster(client.get_async_connection().await?)
        }
        Mode::Standalone => {
            let url = seeds.first().map(String::as_str).unwrap_or_default();
            let client = redis::Client::open(url)?;
            let config = ConnectionManagerConfig::new()
                .set_connection_timeout(Some(CONNECT_TIMEOUT))
                .set_response_timeout(Some(RESPONSE_TIMEOUT))
                .set_number_of_retries(2)
                .set_max_delay(Duration::from_millis(500));
            Conn::Standalone(client.get_connection_manager_with_config(config).await?)
        }
    };
    Ok((conn, mode))
}
