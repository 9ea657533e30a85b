//! The classic Windows pipe example ("Creating a Child Process with
//! Redirected Input and Output"), on shmpipe: the parent creates two
//! anonymous pipes, starts a child whose stdin and stdout are those pipes,
//! writes a file (or a built-in text) into the child's stdin, closes it, and
//! prints everything the child wrote until end of pipe.
//!
//! ```text
//! cargo run -p shmpipe --example redirect_child                # both modes, in turn
//! cargo run -p shmpipe --example redirect_child -- --native    # native mode only
//! cargo run -p shmpipe --example redirect_child -- --input FILE tr a-z A-Z
//! ```
//!
//! Both ways of connecting the child are shown:
//!
//! * [`StdioMode::Relay`], for any program (`sort` by default): the child
//!   gets kernel pipes as its stdio, and relay threads in this process copy
//!   between them and the shared-memory pipes.
//! * [`StdioMode::Native`], for a child built with shmpipe: this program
//!   starts itself again with `--child`; that child takes the pipe ends with
//!   `shmpipe::redirect::stdin()` / `stdout()` ([`child_main`]) and sorts the
//!   lines itself, so the data never leaves shared memory.

use shmpipe::redirect::{self, Redirect, StdioMode};
use std::io::{self, Read, Write};
use std::process::{Command, ExitCode, ExitStatus};

/// The argument that makes this program the native child.
pub const CHILD_ARG: &str = "--child";

/// The input when no `--input FILE` is given.
pub const BUILT_IN: &str = "\
pear
apple
fig
banana
cherry
";

fn usage() -> ExitCode {
    eprintln!("usage: redirect_child [--input FILE] [--native | PROGRAM [ARGS...]]");
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    if args == [CHILD_ARG] {
        return match child_main() {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("redirect_child {CHILD_ARG}: {e}");
                ExitCode::FAILURE
            }
        };
    }
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
    let native = || -> io::Result<Command> {
        let mut cmd = Command::new(std::env::current_exe()?);
        cmd.arg(CHILD_ARG);
        Ok(cmd)
    };
    let jobs: Vec<(io::Result<Command>, StdioMode)> = match args.split_first() {
        None => vec![
            (Ok(Command::new("sort")), StdioMode::Relay),
            (native(), StdioMode::Native),
        ],
        Some((flag, [])) if flag == "--native" => vec![(native(), StdioMode::Native)],
        Some((flag, _)) if flag.starts_with('-') => return usage(),
        Some((program, rest)) => {
            let mut cmd = Command::new(program);
            cmd.args(rest);
            vec![(Ok(cmd), StdioMode::Relay)]
        }
    };
    let mut code = ExitCode::SUCCESS;
    for (cmd, mode) in jobs {
        let name = cmd.as_ref().map_or_else(
            |_| "this program".to_owned(),
            |c| c.get_program().to_string_lossy().into_owned(),
        );
        let shown = cmd.and_then(|cmd| show(cmd, mode, input.clone()));
        match shown {
            Ok(true) => {}
            Ok(false) => code = ExitCode::FAILURE,
            Err(e) => {
                eprintln!("redirect_child: {name} ({mode:?}): {e}");
                code = ExitCode::FAILURE;
            }
        }
    }
    code
}

/// Runs one child and prints its output; `Ok(false)` if it failed.
fn show(cmd: Command, mode: StdioMode, input: Vec<u8>) -> io::Result<bool> {
    let program = cmd.get_program().to_string_lossy().into_owned();
    let (output, status) = run(cmd, mode, input)?;
    let mut out = io::stdout().lock();
    out.write_all(&output)?;
    out.flush()?;
    eprintln!(
        "redirect_child: {program} ({mode:?}) exited with {status}, {} bytes of output",
        output.len()
    );
    Ok(status.success())
}

/// The parent's side, the same in both modes: starts `cmd` with its stdin
/// and stdout redirected to two new pipes, writes `input` into the child's
/// stdin, closes it, and returns everything the child wrote, with its exit
/// status.
pub fn run(cmd: Command, mode: StdioMode, input: Vec<u8>) -> io::Result<(Vec<u8>, ExitStatus)> {
    // One pipe for the child's stdin, one for its stdout.
    let (child_stdin, mut to_child) = shmpipe::pipe()?;
    let (mut from_child, child_stdout) = shmpipe::pipe()?;

    let child = Redirect::new()
        .stdin(child_stdin)
        .stdout(child_stdout)
        .mode(mode)
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
    Ok((output, status))
}

/// The native child's side: the pipe ends come from the parent's
/// [`Redirect`] (named in the environment), not from fds 0 and 1. Sorts the
/// lines of its input, like `sort`.
pub fn child_main() -> io::Result<()> {
    let not_native = || io::Error::other("not started by a native Redirect");
    let mut input = redirect::stdin()?.ok_or_else(not_native)?;
    let mut output = redirect::stdout()?.ok_or_else(not_native)?;
    let mut text = Vec::new();
    input.read_to_end(&mut text)?;
    fn key(line: &[u8]) -> &[u8] {
        line.strip_suffix(b"\n").unwrap_or(line)
    }
    let mut lines: Vec<&[u8]> = text.split_inclusive(|&b| b == b'\n').collect();
    lines.sort_unstable_by(|a, b| key(a).cmp(key(b)));
    for line in lines {
        output.write_all(line)?;
        if !line.ends_with(b"\n") {
            output.write_all(b"\n")?;
        }
    }
    // Closing the write end is the parent's end of data.
    drop(output);
    Ok(())
}
