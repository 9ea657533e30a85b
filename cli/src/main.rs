//! `shmpipe`: the command-line face of shmpipe.
//!
//! Subcommands live in their own modules; `bench` is the first. Errors are
//! printed as one line (`shmpipe: <what went wrong>`) with exit status 1.

mod bench;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "shmpipe",
    version,
    about = "Windows-style named pipes for Linux, on lock-free shared memory"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Compare shmpipe with kernel pipes and Unix sockets between two processes
    Bench(bench::BenchArgs),
}

fn main() -> ExitCode {
    // `bench` re-executes this binary as its peer process.
    shmpipe_benches::run_if_peer();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Bench(args) => bench::run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("shmpipe: {e}");
            ExitCode::FAILURE
        }
    }
}
