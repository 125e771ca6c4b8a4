//! `desk`: the one binary. Thin on purpose: parse the command line, start telemetry, run the app.

use clap::Parser;

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
