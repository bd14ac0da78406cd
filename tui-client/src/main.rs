use std::process::ExitCode;

use clap::Parser;
use syncscript_tui::login::Args;

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    match syncscript_tui::run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("syncscript-tui: {error:#}");
            ExitCode::FAILURE
        }
    }
}
