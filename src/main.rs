use std::process::ExitCode;

use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = ringback::cli::Cli::parse();
    ringback::cli::run(cli).await
}
