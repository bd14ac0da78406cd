//! `syncscript`: serve the API or run the migrations.

use std::io::IsTerminal;

use anyhow::Context;
use clap::Parser;
use syncscript::config::{Cli, Command};
use tracing_subscriber::filter::{EnvFilter, FilterExt, LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{Layer, fmt};

/// The crates whose `trace` level logs what goes over the wire, frame by
/// frame: a handshake's CONNECT packet carries the session token, so they
/// never log above `debug`, whatever `--log-level` asks.
const FRAME_LOGGERS: [&str; 5] = [
    "tungstenite",
    "tokio_tungstenite",
    "engineioxide",
    "socketioxide",
    "socketioxide_core",
];

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let asked = EnvFilter::try_new(&cli.log_level).context("invalid --log-level")?;
    let capped = FRAME_LOGGERS.into_iter().fold(
        Targets::new().with_default(LevelFilter::TRACE),
        |targets, crate_name| targets.with_target(crate_name, LevelFilter::DEBUG),
    );
    let output = fmt::layer()
        .with_ansi(std::io::stdout().is_terminal())
        .with_filter(asked.and(capped));
    tracing_subscriber::registry().with(output).init();
    match cli.command {
        Command::Serve(args) => {
            let listener = tokio::net::TcpListener::bind(args.bind)
                .await
                .with_context(|| format!("cannot listen on {}", args.bind))?;
            syncscript::run(listener, (*args).into(), syncscript::shutdown_signal()).await
        }
        Command::Migrate(args) => {
            syncscript::db::migrate(&args.database_url).await?;
            tracing::info!("migrations applied");
            Ok(())
        }
    }
}
