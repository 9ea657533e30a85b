//! `shmpipe`: the command-line face of shmpipe.
//!
//! Subcommands live in their own modules: `bench` measures, `pipes` serves
//! and uses named pipes, `show` lists and describes them. Errors are printed
//! as one line (`shmpipe: <what went wrong>`; for pipe errors
//! `shmpipe: <what>: <ERROR_NAME> (<code>)`) with exit status 1.

mod bench;
mod fail;
mod gateway;
mod pipes;
mod show;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "shmpipe",
    version,
    about = "Windows-style named pipes for Linux, on lock-free shared memory",
    after_help = r"A pipe NAME is `\\.\pipe\NAME` or just NAME (which means `\\.\pipe\NAME`)."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve a named pipe: copy what clients send to standard output, echo
    /// it back (--echo), or send them a file (--file); runs until killed
    Serve(pipes::ServeArgs),
    /// Open a named pipe, write DATA (or standard input) and close it once
    /// the server read it all
    Send(pipes::SendArgs),
    /// Send one request message and print the reply message (CallNamedPipe)
    Call(pipes::CallArgs),
    /// Open a named pipe for reading and copy it to standard output until
    /// the server ends it
    Cat(pipes::CatArgs),
    /// List the named pipes this user can see: instances, processes, bytes
    /// queued
    List(show::ListArgs),
    /// Describe one named pipe and each of its instances
    Info(show::InfoArgs),
    /// Compare shmpipe with kernel pipes and Unix sockets between two processes
    Bench(bench::BenchArgs),
    /// Export this machine's named pipes to remote clients over QUIC with
    /// mutual TLS (`gateway init` makes the certificates)
    Gateway(gateway::GatewayArgs),
}

fn main() -> ExitCode {
    // `bench` re-executes this binary as its peer process.
    shmpipe_benches::run_if_peer();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => pipes::serve(&args).map_err(|f| f.to_string()),
        Command::Send(args) => pipes::send(&args).map_err(|f| f.to_string()),
        Command::Call(args) => pipes::call(&args).map_err(|f| f.to_string()),
        Command::Cat(args) => pipes::cat(&args).map_err(|f| f.to_string()),
        Command::List(args) => show::list(&args).map_err(|f| f.to_string()),
        Command::Info(args) => show::info(&args).map_err(|f| f.to_string()),
        Command::Bench(args) => bench::run(&args).map_err(|e| e.to_string()),
        Command::Gateway(args) => gateway::run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line, whatever the message holds.
            eprintln!("shmpipe: {}", e.replace('\n', " "));
            ExitCode::FAILURE
        }
    }
}
