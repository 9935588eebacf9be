use std::process::ExitCode;

use clap::Parser;

/// Imports allocate many small strings; mimalloc handles that far better than the system allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    ringback::runtime::small_pages();
    let cli = ringback::cli::Cli::parse();
    ringback::cli::run(cli).await
}
