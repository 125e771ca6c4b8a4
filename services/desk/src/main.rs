//! `desk`: the one binary. Thin on purpose: parse the command line, start telemetry, run the app.

use clap::Parser;

/// Answers such as a CMDB impact closure build and free thousands of small strings per call: in a
/// profile of the impact benchmark glibc's malloc and free took about a third of the desk's CPU.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = desk::cli::Cli::parse();
    match desk::run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("desk: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
