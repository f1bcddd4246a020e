//! `grpc-chaos`: the fake gRPC server from the command line.

#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser;
use grpc_chaos_cli::{run, Cli};

#[tokio::main]
async fn main() -> ExitCode {
    // Log lines are written by a thread of their own, in batches: at tens of thousands
    // of calls a second, one write to stderr per line held `serve` to 0.7x a plain tonic
    // server. No line is dropped (a full buffer holds the logging call back), and the
    // guard writes out what is left when `main` returns.
    let (writer, _written_at_exit) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(false)
        .finish(std::io::stderr());
    tracing_subscriber::fmt()
        .with_writer(writer)
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
