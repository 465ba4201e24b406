//! The `evald` binary: telemetry, configuration, build the app, serve until a
//! shutdown signal.

use clap::Parser;

use evald::config::{Cli, Command};
use evald::{startup, telemetry};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    telemetry::init(cli.config.log_format);
    let result = match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(cli.config).await,
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "evald stopped with an error");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn serve(config: evald::config::Config) -> std::io::Result<()> {
    let app = startup::build(config).await?;
    tracing::info!(address = %app.local_addr()?, "evald listening");
    startup::run(app.listener, app.router, startup::shutdown_signal()).await?;
    tracing::info!("evald stopped");
    Ok(())
}
