//! `grpc-chaos`: the fake gRPC server from the command line.

#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser;
use grpc_chaos_cli::{run, Cli};

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    match run(Cli::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("grpc-chaos: {error}");
            ExitCode::from(error.exit_code())
        }
    }
}
