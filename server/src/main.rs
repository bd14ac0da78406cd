//! `syncscript`: serve the API or run the migrations.

use std::io::IsTerminal;

use anyhow::Context;
use clap::Parser;
use syncscript::config::{Cli, Command};
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_new(&cli.log_level).context("invalid --log-level")?)
        .with_ansi(std::io::stdout().is_terminal())
        .init();
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
