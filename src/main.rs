//! The `evald` binary: telemetry, configuration, build the app, serve until a
//! shutdown signal.

use clap::Parser;

/// mimalloc instead of the system allocator: stream ingest regrows many small
/// per-user arrays, a pattern glibc malloc fragments badly (RSS 2.5x the live
/// heap in the streams benchmark); size-class free lists reuse the blocks.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use evald::config::{Cli, Command};
use evald::{startup, telemetry};

#[tokio::main]
async fn main() -> std::process::ExitCode {
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

fn healthcheck(addr: std::net::SocketAddr) -> std::io::Result<()> {
    let timeout = std::time::Duration::from_secs(3);
    if evald::healthcheck::probe(addr, "/healthz", timeout)? {
        Ok(())
    } else {
        Err(std::io::Error::other(format!(
            "{addr}/healthz did not answer 200"
        )))
    }
}

async fn serve(config: evald::config::Config) -> std::io::Result<()> {
    let app = startup::build(config).await?;
    tracing::info!(address = %app.local_addr()?, "evald listening");
    let state = app.state.clone();
    startup::run(app.listener, app.router, startup::shutdown_signal()).await?;
    startup::final_snapshot(&state).await?;
    tracing::info!("evald stopped");
    Ok(())
}
