//! The classic Windows pipe example ("Creating a Child Process with
//! Redirected Input and Output"), on shmpipe: the parent creates two
//! anonymous pipes, starts a child whose stdin and stdout are those pipes,
//! writes a file (or a built-in text) into the child's stdin, closes it, and
//! prints everything the child wrote until end of pipe.
//!
//! ```text
//! cargo run -p shmpipe --example redirect_child                      # sort the built-in text
//! cargo run -p shmpipe --example redirect_child -- --input FILE tr a-z A-Z
//! ```
//!
//! The child is any program (`sort` by default), so its stdio is relayed
//! through kernel pipes ([`StdioMode::Relay`]); a child built with shmpipe
//! would use [`StdioMode::Native`] and `shmpipe::redirect::stdin()` /
//! `stdout()` instead.

use shmpipe::redirect::{Redirect, StdioMode};
use std::io::{self, Read, Write};
use std::process::{Command, ExitCode};

const BUILT_IN: &str = "\
pear
apple
fig
banana
cherry
";

fn usage() -> ExitCode {
    eprintln!("usage: redirect_child [--input FILE] [PROGRAM [ARGS...]]");
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let input = if args.first().map(String::as_str) == Some("--input") {
        if args.len() < 2 {
            return usage();
        }
        let path = args.remove(1);
        args.remove(0);
        match std::fs::read(&path) {
            Ok(data) => data,
            Err(e) => {
                eprintln!("redirect_child: {path}: {e}");
                return ExitCode::FAILURE;
            }
        }
    } else {
        BUILT_IN.as_bytes().to_vec()
    };
    if args.first().is_some_and(|a| a.starts_with('-')) {
        return usage();
    }
    let (program, program_args) = match args.split_first() {
        Some((p, rest)) => (p.clone(), rest.to_vec()),
        None => ("sort".to_owned(), Vec::new()),
    };
    match run(&program, &program_args, input) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("redirect_child: {program}: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(program: &str, args: &[String], input: Vec<u8>) -> io::Result<ExitCode> {
    // One pipe for the child's stdin, one for its stdout.
    let (child_stdin, mut to_child) = shmpipe::pipe()?;
    let (mut from_child, child_stdout) = shmpipe::pipe()?;

    let mut cmd = Command::new(program);
    cmd.args(args);
    let child = Redirect::new()
        .stdin(child_stdin)
        .stdout(child_stdout)
        .mode(StdioMode::Relay)
        .spawn(cmd)?;

    // Write from a thread: a child that answers while it reads (cat, tr)
    // would otherwise fill its output pipe while we are still writing.
    let writer = std::thread::spawn(move || -> io::Result<()> {
        match to_child.write_all(&input) {
            // The child stopped reading (or never did): not our error.
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
            // Dropping the write end is the child's end of input.
            r => r,
        }
    });

    // Read until every write handle of the child's stdout is closed.
    let mut output = Vec::new();
    from_child.read_to_end(&mut output)?;
    writer
        .join()
        .map_err(|_| io::Error::other("writer thread panicked"))??;
    let status = child.wait()?;

    let mut out = io::stdout().lock();
    out.write_all(&output)?;
    out.flush()?;
    eprintln!(
        "redirect_child: {program} exited with {status}, {} bytes of output",
        output.len()
    );
    Ok(if status.success() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
