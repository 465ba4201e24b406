//! Runtime configuration: one clap struct; every flag has an environment fallback
//! so the same binary is configured by flags locally and by env vars in Docker.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable, coloured when attached to a terminal.
    Pretty,
    /// One JSON object per line, for log shippers.
    Json,
}

/// When the write-ahead log is fsynced (README, "Durability").
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Fsync {
    /// Before each ingest or delete is acknowledged (group commit): an
    /// acknowledged change survives any crash.
    Always,
    /// Every `--fsync-interval-ms`; acknowledgements do not wait, and a crash
    /// can lose the changes acknowledged in that window.
    Interval,
}

/// Where stream state lives (README, "The store interface").
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StoreKind {
    /// In this process's memory (snapshots and log with `--data-dir`).
    Memory,
    /// In a Redis Cluster (or standalone Redis) at `--redis-url`, shared by
    /// every replica pointed at it.
    Redis,
}

/// Command line of the `evald` binary.
///
/// The server's flags are global: `evald --listen A serve` and
/// `evald serve --listen A` mean the same (people type the subcommand first).
#[derive(Debug, Parser)]
#[command(
    name = "evald",
    version,
    about = "HTTP evaluation microservice for model metrics"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Under a heading of their own: being global, they also show in
    /// `evald push --help`, apart from push's own flags.
    #[command(flatten, next_help_heading = "Server options")]
    pub config: Config,
}

/// Subcommands; without one, `evald` serves.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the HTTP API (the default).
    Serve,
    /// Probe a running server's `/healthz` and exit 0 when it answers 200
    /// (used by the Docker HEALTHCHECK; the image has no curl).
    Healthcheck {
        /// Address of the server to probe: `host:port`, the host a name
        /// (`localhost:8080`) or an IP address.
        #[arg(long, env = "EVALD_HEALTHCHECK_ADDR", default_value = "127.0.0.1:8080")]
        addr: String,
    },
    /// Stream a local NDJSON, CSV or TSV file (gzip optional) into a stream
    /// of a running server and print a summary of the resulting metrics.
    Push(PushOptions),
}

/// Input formats of `evald push`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PushFormat {
    /// One JSON record (or batch object) per line.
    Ndjson,
    /// Comma-separated values with a header row (RFC 4180).
    Csv,
    /// Tab-separated values with a header row.
    Tsv,
}

/// Flags of `evald push` (a struct of its own, so a new flag touches only
/// this file and the client).
#[derive(Debug, Clone, clap::Args)]
pub struct PushOptions {
    /// The file: NDJSON records / batch objects, or CSV/TSV with a header row
    /// naming the prediction and label columns (and optionally user id and
    /// weight); `.gz` or gzip content is unpacked.
    pub file: PathBuf,
    /// Name of the stream to add the records to.
    #[arg(long)]
    pub stream: String,
    /// Base URL of the server (`http://` or `https://`).
    #[arg(long, env = "EVALD_URL", default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// File format; default: from the extension (`.csv`, `.tsv`, `.tab`,
    /// each optionally `.gz`), NDJSON otherwise.
    #[arg(long, value_enum)]
    pub format: Option<PushFormat>,
    /// Same as `--format csv` (kept for scripts written before `--format`).
    #[arg(long, hide = true, conflicts_with = "format")]
    pub csv: bool,
    /// CSV/TSV column holding the prediction (default: the column named
    /// prediction, score, pred, y_score, y_pred, probability or p).
    #[arg(long)]
    pub prediction_col: Option<String>,
    /// CSV/TSV column holding the 0/1 label (default: label, click, clicked,
    /// y, y_true, target or is_click).
    #[arg(long)]
    pub label_col: Option<String>,
    /// CSV/TSV column holding the user id (default: user_id, uid, user,
    /// userid or user_key; optional).
    #[arg(long)]
    pub user_col: Option<String>,
    /// CSV/TSV column holding the sample weight (default: weight,
    /// sample_weight or w; optional).
    #[arg(long)]
    pub weight_col: Option<String>,
    /// Report up to this many bad lines (with their line numbers) before
    /// giving up. Nothing from the first bad line's request on is sent.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    pub max_errors: u64,
    /// Read and check the whole file (with the server's record rules) but
    /// send nothing; exit 1 when a line is bad.
    #[arg(long)]
    pub dry_run: bool,
    /// Print the full ingest and metrics answers as JSON instead of the
    /// summary table.
    #[arg(long)]
    pub json: bool,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
    /// NDJSON lines (records or batch objects) or CSV rows per request. Each
    /// request is applied atomically, and the server stages a whole request
    /// before applying it, so this (not the file size) bounds its staging memory.
    #[arg(long, env = "EVALD_PUSH_RECORDS_PER_REQUEST", default_value_t = 100_000,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub records_per_request: u64,
    /// Start at this line of the file (1-based; the CSV header is still read):
    /// resumes a push that failed, at the line the error message names.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
    pub from_line: u64,
}

/// Service configuration. Defaults are the ones documented in README,
/// "Configuration".
#[derive(Debug, Clone, clap::Args)]
pub struct Config {
    /// Address to listen on.
    #[arg(
        long,
        global = true,
        env = "EVALD_LISTEN",
        default_value = "0.0.0.0:8080"
    )]
    pub listen: SocketAddr,

    /// Maximum size of a JSON request body, in bytes (decompressed). NDJSON stream
    /// bodies are read incrementally and are not bounded by this.
    #[arg(long, global = true, env = "EVALD_BODY_LIMIT", default_value_t = 256 * 1024 * 1024)]
    pub body_limit: usize,

    /// Maximum number of elements in any one array of a request (predictions,
    /// labels, tensors). Bounds the work one request can ask for.
    #[arg(
        long,
        global = true,
        env = "EVALD_MAX_ARRAY_LEN",
        default_value_t = 20_000_000
    )]
    pub max_array_len: usize,

    /// Maximum number of extra decision thresholds (`thresholds`) and of
    /// maximum FPRs (`tpr_at_fpr`) one binary evaluation may ask for: each
    /// is a row of the answer.
    #[arg(long, env = "EVALD_MAX_THRESHOLDS", default_value_t = 10_000)]
    pub max_thresholds: usize,

    /// Largest width or height of a plot, in pixels (`/plots/...`, the
    /// `width` and `height` query parameters; 422 past it). Bounds the SVG a
    /// request can ask for; the points drawn are bounded by the request itself.
    #[arg(long, env = "EVALD_MAX_PLOT_SIDE", default_value_t = 4096)]
    pub max_plot_side: u32,

    /// Maximum length of one NDJSON line, in bytes.
    #[arg(long, global = true, env = "EVALD_MAX_LINE_BYTES", default_value_t = 1024 * 1024)]
    pub max_line_bytes: usize,

    /// Seconds after which a request is abandoned with 408, so one hung client
    /// cannot hold resources (or a graceful shutdown) forever.
    #[arg(
        long,
        global = true,
        env = "EVALD_REQUEST_TIMEOUT_SECS",
        default_value_t = 300
    )]
    pub request_timeout_secs: u64,

    /// Log format.
    #[arg(
        long,
        global = true,
        env = "EVALD_LOG_FORMAT",
        value_enum,
        default_value = "pretty"
    )]
    pub log_format: LogFormat,

    /// Maximum number of named streams held at once.
    #[arg(
        long,
        global = true,
        env = "EVALD_MAX_STREAMS",
        default_value_t = 1_000
    )]
    pub max_streams: usize,

    /// Maximum number of distinct users per stream.
    #[arg(
        long,
        global = true,
        env = "EVALD_MAX_USERS_PER_STREAM",
        default_value_t = 1_000_000
    )]
    pub max_users_per_stream: usize,

    /// Distinct scores kept exactly per user before that user's aggregate is compacted
    /// into a bounded form (then `auc_error_bound` becomes positive).
    #[arg(
        long,
        global = true,
        env = "EVALD_MAX_SCORES_PER_USER",
        default_value_t = 10_000
    )]
    pub max_scores_per_user: usize,

    /// Distinct scores kept exactly per stream (global aggregate) before compaction.
    #[arg(
        long,
        global = true,
        env = "EVALD_MAX_SCORES_PER_STREAM",
        default_value_t = 1_000_000
    )]
    pub max_scores_per_stream: usize,

    /// Total memory budget for stream state, in bytes; past it ingest fails with 503.
    #[arg(long, global = true, env = "EVALD_MEMORY_BUDGET", default_value_t = 2 * 1024 * 1024 * 1024)]
    pub memory_budget: usize,

    /// Seconds after which an idle stream expires; 0 disables expiry.
    #[arg(
        long,
        global = true,
        env = "EVALD_STREAM_TTL_SECS",
        default_value_t = 0
    )]
    pub stream_ttl_secs: u64,

    // ---- store flags ----
    /// Where stream state lives: `memory` (this process) or `redis`
    /// (`--redis-url`, shared by every replica).
    #[arg(
        long = "store",
        env = "EVALD_STORE",
        value_enum,
        default_value = "memory"
    )]
    pub store: StoreKind,

    /// Redis seed nodes for `--store redis`, comma-separated
    /// (`redis://host:port,redis://host2:port`); a standalone server or a
    /// cluster.
    #[arg(long, env = "EVALD_REDIS_URL", value_delimiter = ',')]
    pub redis_url: Vec<String>,

    /// Seconds an `Idempotency-Key` is remembered per stream: a request
    /// repeated with the same key within it is applied once.
    #[arg(long, env = "EVALD_IDEMPOTENCY_TTL_SECS", default_value_t = 86_400)]
    pub idempotency_ttl_secs: u64,

    /// `Idempotency-Key`s remembered per stream; past it the oldest is
    /// forgotten first.
    #[arg(long, env = "EVALD_IDEMPOTENCY_MAX_KEYS", default_value_t = 10_000)]
    pub idempotency_max_keys: usize,

    /// Largest `limit` of `GET /streams/{name}/users`.
    #[arg(long, env = "EVALD_MAX_USERS_PAGE", default_value_t = 1_000,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub max_users_page: u64,
    // ---- end store flags ----
    // ---- redis store flags ----
    /// Prefix of every Redis key evald writes (`--store redis`), so several
    /// deployments can share one cluster. Never inside a hash tag.
    #[arg(long, env = "EVALD_REDIS_KEY_PREFIX", default_value = "evald:")]
    pub redis_key_prefix: String,

    /// Buckets of a new stream in Redis: its users are spread over this many
    /// hash slots, and a GAUC query reads this many keys. Fixed per stream
    /// at creation.
    #[arg(long, env = "EVALD_REDIS_BUCKETS", default_value_t = 32,
          value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub redis_buckets: u32,

    /// Bucket reads and writes one evald process keeps in flight to Redis
    /// at once, over all requests: more only queue behind each other on the
    /// connection and hit its 2 s response timeout under load.
    #[arg(long, env = "EVALD_REDIS_MAX_INFLIGHT", default_value_t = 8,
          value_parser = clap::value_parser!(u64).range(1..=1024))]
    pub redis_max_inflight: u64,
    // ---- end redis store flags ----
    /// Directory for state snapshots; without it state lives in memory only.
    #[arg(long, global = true, env = "EVALD_DATA_DIR")]
    pub data_dir: Option<PathBuf>,

    /// Seconds between snapshots when `--data-dir` is set.
    #[arg(
        long,
        global = true,
        env = "EVALD_SNAPSHOT_INTERVAL_SECS",
        default_value_t = 60
    )]
    pub snapshot_interval_secs: u64,

    /// When the write-ahead log in `--data-dir` is fsynced: `always` (before
    /// each acknowledgement) or `interval` (every `--fsync-interval-ms`).
    #[arg(
        long,
        global = true,
        env = "EVALD_FSYNC",
        value_enum,
        default_value = "always"
    )]
    pub fsync: Fsync,

    /// Milliseconds between log fsyncs with `--fsync interval`: the most
    /// acknowledged ingest a crash can lose.
    #[arg(long, global = true, env = "EVALD_FSYNC_INTERVAL_MS", default_value_t = 100,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub fsync_interval_ms: u64,

    /// Seconds a graceful shutdown waits for in-flight requests before it
    /// closes their connections and writes the final snapshot. Keep it below
    /// the orchestrator's grace period (docker-compose.yml: 30 s).
    #[arg(
        long,
        global = true,
        env = "EVALD_SHUTDOWN_TIMEOUT_SECS",
        default_value_t = 20
    )]
    pub shutdown_timeout_secs: u64,

    /// Bytes that all requests in flight may hold at once (bodies, their parse,
    /// staged NDJSON records); past it a request is refused with 503 and
    /// `Retry-After` before it buffers. Default: a quarter of the memory
    /// available (the cgroup limit or MemTotal), 2 GiB when unknown.
    #[arg(long, global = true, env = "EVALD_MAX_INFLIGHT_BYTES", default_value_t = default_max_inflight_bytes())]
    pub max_inflight_bytes: usize,

    /// How many times its compressed size a gzip request body may inflate
    /// to (plus 1 MiB for small bodies); past it the request is refused
    /// with 413. Bounds what a small "gzip bomb" costs in memory and CPU.
    #[arg(long, global = true, env = "EVALD_MAX_DECOMPRESSION_RATIO", default_value_t = 100,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub max_decompression_ratio: u64,

    /// Maximum `steps` for `POST /optimizer/{name}/run`.
    #[arg(
        long,
        global = true,
        env = "EVALD_MAX_OPTIMIZER_STEPS",
        default_value_t = 100_000
    )]
    pub max_optimizer_steps: usize,

    /// Maximum number of cutoffs in `ranking.k` of `POST /metrics` (each
    /// cutoff costs one pass over the users).
    #[arg(long, env = "EVALD_MAX_RANKING_CUTOFFS", default_value_t = 100)]
    pub max_ranking_cutoffs: usize,

    /// File of API keys, one `<key> <tenant> <scopes>` per line (README, "API
    /// keys and tenants"). When set, every route but /healthz, /readyz and the
    /// dashboard page (`/`, `/ui/...`)
    /// needs `Authorization: Bearer <key>` and streams are per tenant. The
    /// variable holds a path, never keys: values of variables end up in
    /// `--help`, `docker inspect` and crash reports.
    #[arg(long, global = true, env = "EVALD_API_KEYS")]
    pub api_keys_file: Option<PathBuf>,

    /// Maximum number of streams one tenant may hold (with `--api-keys-file`).
    #[arg(long, global = true, env = "EVALD_TENANT_MAX_STREAMS")]
    pub tenant_max_streams: Option<usize>,

    /// Memory budget of one tenant's stream state, in bytes (with `--api-keys-file`).
    #[arg(long, global = true, env = "EVALD_TENANT_MEMORY_BUDGET")]
    pub tenant_memory_budget: Option<usize>,

    /// Origins (`scheme://host[:port]`, comma-separated, or `*`) whose browser
    /// scripts may call the API; without it no CORS headers are sent.
    #[arg(long, global = true, env = "EVALD_CORS_ORIGINS", value_delimiter = ',')]
    pub cors_origins: Vec<String>,

    // ---- connection flags ----
    /// Milliseconds a new connection has to send its first complete request
    /// head; a slower one (slowloris) is closed without an answer.
    #[arg(long, global = true, env = "EVALD_HEADER_READ_TIMEOUT_MS", default_value_t = 10_000,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub header_read_timeout_ms: u64,

    /// Seconds a keep-alive connection may stay idle after a response before
    /// its next request head is complete; then it is closed.
    #[arg(long, global = true, env = "EVALD_KEEP_ALIVE_TIMEOUT_SECS", default_value_t = 60,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub keep_alive_timeout_secs: u64,

    /// Maximum number of open client connections; at the limit the oldest
    /// connection without a request in progress is closed to admit a new one.
    /// Default: the open-file limit minus 64, at most 10000.
    #[arg(long, global = true, env = "EVALD_MAX_CONNECTIONS",
          value_parser = clap::value_parser!(u64).range(1..))]
    pub max_connections: Option<u64>,

    /// Maximum number of requests handled at once (`/healthz`, `/readyz` and
    /// `/internal/metrics` excepted); over it a request is answered 503 with
    /// `Retry-After` at once instead of waiting in a queue.
    #[arg(long, global = true, env = "EVALD_MAX_CONCURRENT_REQUESTS", default_value_t = 1024,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub max_concurrent_requests: u64,
    // ---- end connection flags ----
}

/// A quarter of the memory this process may use: the cgroup v2 limit when
/// one is set, else MemTotal; 2 GiB when neither can be read. The paths are
/// files, not HTTP routes: built from components so route checks over the
/// sources do not mistake them for one (as `telemetry::resident_bytes`).
fn default_max_inflight_bytes() -> usize {
    const FALLBACK: u64 = 2 << 30;
    let cgroup_max: PathBuf = ["/", "sys", "fs", "cgroup", "memory.max"].iter().collect();
    let meminfo: PathBuf = ["/", "proc", "meminfo"].iter().collect();
    let cgroup = std::fs::read_to_string(cgroup_max)
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok());
    let total = std::fs::read_to_string(meminfo).ok().and_then(|s| {
        let line = s.lines().find(|l| l.starts_with("MemTotal:"))?;
        let kib = line.split_whitespace().nth(1)?.parse::<u64>().ok()?;
        kib.checked_mul(1024)
    });
    let available = match (cgroup, total) {
        (Some(c), Some(t)) => c.min(t),
        (c, t) => c.or(t).unwrap_or(FALLBACK * 4),
    };
    usize::try_from(available / 4).unwrap_or(usize::MAX)
}

impl Config {
    /// The request timeout as a `Duration`.
    pub fn request_timeout(&self) -> Duration {
        Duration::from_secs(self.request_timeout_secs)
    }

    /// How long a graceful shutdown drains in-flight requests.
    pub fn shutdown_timeout(&self) -> Duration {
        Duration::from_secs(self.shutdown_timeout_secs)
    }

    /// A configuration for tests: port 0 on loopback, the documented
    /// defaults otherwise. The `EVALD_*` environment is not read, so a
    /// developer's shell settings cannot change what a test sees.
    pub fn for_tests() -> Self {
        Self::from_args_ignoring_env(["evald", "--listen", "127.0.0.1:0"])
    }

    /// `args` parsed as the command line is, but with every `env` fallback
    /// removed. Panics on bad `args` (only tests call it, with fixed args).
    fn from_args_ignoring_env<const N: usize>(args: [&str; N]) -> Self {
        use clap::{Args, FromArgMatches};
        let command = Config::augment_args(clap::Command::new("evald"))
            .mut_args(|arg| arg.env(None::<&'static str>));
        let parsed = command
            .try_get_matches_from(args)
            .and_then(|matches| Config::from_arg_matches(&matches));
        match parsed {
            Ok(config) => config,
            Err(e) => panic!("test configuration {args:?} does not parse: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Set only for a child run of this test binary, so no other test sees it.
    const PROBE: (&str, &str) = ("EVALD_MAX_OPTIMIZER_STEPS", "7");

    #[test]
    fn server_flags_parse_before_or_after_the_subcommand() {
        for args in [
            ["evald", "serve", "--listen", "127.0.0.1:9"],
            ["evald", "--listen", "127.0.0.1:9", "serve"],
        ] {
            let cli = Cli::try_parse_from(args).map(|c| c.config.listen.port());
            assert_eq!(cli.ok(), Some(9), "{args:?}");
        }
    }

    #[test]
    fn for_tests_ignores_the_evald_environment() {
        if std::env::var(PROBE.0).as_deref() == Ok(PROBE.1) {
            // The child: the variable is set and the real parse reads it...
            let from_env = Cli::try_parse_from(["evald"]).map(|c| c.config.max_optimizer_steps);
            assert_eq!(from_env.ok(), Some(7));
            // ...but the test configuration keeps the default.
            assert_eq!(Config::for_tests().max_optimizer_steps, 100_000);
            return;
        }
        let name = "config::tests::for_tests_ignores_the_evald_environment";
        let child = std::env::current_exe().and_then(|exe| {
            std::process::Command::new(exe)
                .args(["--exact", name, "--test-threads", "1"])
                .env(PROBE.0, PROBE.1)
                .output()
        });
        let output = match child {
            Ok(output) => output,
            Err(e) => panic!("could not rerun the test binary: {e}"),
        };
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success(), "{stdout}");
        assert!(stdout.contains("1 passed"), "{stdout}");
    }
}
