//! `syncscript-cli`: see `syncscript-cli --help`.

use std::process::ExitCode;

use clap::Parser;
use syncscript_cli::cli::Cli;
use syncscript_cli::commands;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match commands::run(cli).await {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
