//! The `evald` binary: telemetry, configuration, build the app, serve until a
//! shutdown signal.

use clap::Parser;

/// mimalloc instead of the system allocator: stream ingest regrows many small
/// per-user arrays, a pattern glibc malloc fragments badly (RSS 2.5x the live
/// heap in the streams benchmark); size-class free lists reuse the blocks.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's `mi_option_purge_delay` (its position in `mi_option_e`).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;
/// Freed pages go back to the OS after this many ms instead of mimalloc 3's
/// 1000 (and 10 s for whole arena chunks, 10x this). A large metrics
/// request or stream batch frees tens of MB at once; held for a second,
/// they stacked up under back-to-back requests: the streams benchmark
/// peaked at 257-303 MB with 1000 ms and 232-237 MB with 100 ms, and
/// `POST /metrics` at 9.6x its body against 7.9x. Purging at once (0)
/// costs the next large request its page faults (`POST /metrics` p50
/// 234 ms at 10 ms, 212 ms at 100 ms, 199 ms at 1000 ms).
const PURGE_DELAY_MS: std::ffi::c_long = 100;

/// Applies [`PURGE_DELAY_MS`] unless the operator set `MIMALLOC_PURGE_DELAY`
/// (or its older name `MIMALLOC_RESET_DELAY`).
fn tune_allocator() {
    let set_by_operator = ["MIMALLOC_PURGE_DELAY", "MIMALLOC_RESET_DELAY"]
        .iter()
        .any(|name| std::env::var_os(name).is_some());
    if !set_by_operator {
        // SAFETY: sets one integer option in mimalloc's option table; the
        // index is in range and mimalloc reads the option on every purge.
        unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, PURGE_DELAY_MS) };
    }
}

use evald::config::{Cli, Command};
use evald::{startup, telemetry};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tune_allocator();
    let cli = Cli::parse();
    let result = match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => {
            telemetry::init(cli.config.log_format);
            serve(cli.config).await
        }
        Command::Healthcheck { addr } => healthcheck(addr),
        Command::Push(options) => evald::client::push::run(options.into())
            .await
            .map_err(std::io::Error::other),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("evald: {e}");
            tracing::error!(error = %e, "evald stopped with an error");
            std::process::ExitCode::FAILURE
        }
    }
}

fn healthcheck(addr: String) -> std::io::Result<()> {
    let timeout = std::time::Duration::from_secs(3);
    if evald::healthcheck::probe(&addr, "/healthz", timeout)? {
        Ok(())
    } else {
        Err(std::io::Error::other(format!(
            "{addr}/healthz did not answer 200"
        )))
    }
}

/// Serves until SIGTERM / Ctrl-C, then stops in order: drain requests (for
/// at most `--shutdown-timeout-secs`), stop and join the periodic tasks,
/// write the final snapshot, close the log.
async fn serve(config: evald::config::Config) -> std::io::Result<()> {
    let drain = config.shutdown_timeout();
    let app = startup::build(config).await?;
    tracing::info!(address = %app.local_addr()?, "evald listening");
    let signal = startup::shutdown_signal();
    let tasks = startup::run_draining(app, signal, Some(drain)).await?;
    tasks.shutdown().await?;
    tracing::info!("evald stopped");
    Ok(())
}
