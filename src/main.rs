use std::process::ExitCode;

use clap::Parser;

/// Imports allocate many small strings; mimalloc handles that far better than the system allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    ringback::runtime::small_pages();
    let cli = match ringback::cli::Cli::try_parse() {
        Ok(cli) => cli,
        // --help and --version print and succeed; a command line in error is the user's
        // (exit 1, as every other bad input), not a runtime failure (2, clap's own code).
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    ringback::cli::run(cli).await
}
