//! Redirected child stdio (`shmpipe::redirect`) across real processes:
//! relay mode with ordinary programs, native mode with a shmpipe child, no
//! SIGPIPE from a relay even with the default disposition, `wait` for a
//! child that exits while the parent still holds its input, and the
//! `redirect_child` example.
//!
//! The example is compiled into this test binary as a module (`#[path]`),
//! so its parent side ([`example::run`]) and its native child
//! ([`example::child_main`]) are tested as written, without depending on
//! where, or whether, cargo built the example binary.

use crate::common;

#[path = "../../examples/redirect_child.rs"]
#[allow(dead_code)]
mod example;

use common::{
    assert_child_ok, child_command, child_done, pattern, wait_child, within, Pending, CHILD_OK,
};
use shmpipe::redirect::{Redirect, StdioMode};
use shmpipe::{Error, ErrorKind};
use std::io::{self, Read, Write};
use std::os::unix::process::ExitStatusExt as _;
use std::process::{Command, Stdio};
use std::time::Duration;

/// Runs `cmd` with its stdin and stdout redirected to pipes, feeding it
/// `input` from a thread (a child that echoes while it reads would otherwise
/// deadlock with a parent that writes everything first).
fn run_redirected(mode: StdioMode, cmd: Command, input: Vec<u8>) -> (Vec<u8>, i32, Vec<u8>) {
    let (child_in, mut to_child) = shmpipe::pipe().unwrap();
    let (mut from_child, child_out) = shmpipe::pipe().unwrap();
    let mut proc = Redirect::new()
        .stdin(child_in)
        .stdout(child_out)
        .mode(mode)
        .spawn(cmd)
        .unwrap();
    let stderr = proc.child_mut().stderr.take();
    let feeder = Pending::start("feeding the child", move || {
        let r = to_child.write_all(&input);
        drop(to_child);
        r
    });
    let out = within("read the child's output", move || {
        let mut v = Vec::new();
        from_child.read_to_end(&mut v).map(|_| v)
    })
    .unwrap();
    feeder.finish().unwrap();
    let mut err = Vec::new();
    if let Some(mut s) = stderr {
        let _ = s.read_to_end(&mut err);
    }
    let status = within("child exit", move || proc.wait()).unwrap();
    (out, status.code().unwrap_or(-1), err)
}

// ------------------------------------------------ relay and native modes

fn relay_sort_sorts_lines() {
    let input = b"pear\napple\nfig\nbanana\n".to_vec();
    let (out, code, _) = run_redirected(StdioMode::Relay, Command::new("sort"), input);
    assert_eq!(code, 0);
    assert_eq!(out, b"apple\nbanana\nfig\npear\n");
}

fn relay_cat_copies_a_megabyte() {
    let input = pattern(1 << 20, 60);
    let (out, code, _) = run_redirected(StdioMode::Relay, Command::new("cat"), input.clone());
    assert_eq!(code, 0);
    assert!(out == input, "cat returned {} bytes, differing", out.len());
}

fn relay_tr_transforms_the_stream() {
    let mut cmd = Command::new("tr");
    cmd.args(["a-z", "A-Z"]);
    let input = b"shared memory pipes\n".repeat(5000);
    let (out, code, _) = run_redirected(StdioMode::Relay, cmd, input.clone());
    assert_eq!(code, 0);
    assert_eq!(out, input.to_ascii_uppercase());
}

fn child_native_upcase() {
    let mut input = shmpipe::redirect::stdin().unwrap().expect("stdin end");
    let mut output = shmpipe::redirect::stdout().unwrap().expect("stdout end");
    let mut buf = vec![0u8; 7777];
    loop {
        let n = input.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        buf[..n].make_ascii_uppercase();
        output.write_all(&buf[..n]).unwrap();
    }
    drop(output);
    child_done();
}

fn native_child_reads_stdin_and_writes_stdout_through_shared_memory() {
    let input: Vec<u8> = b"native stdio, no kernel pipe in between\n".repeat(30_000);
    let (out, code, err) = run_redirected(
        StdioMode::Native,
        child_command("child_native_upcase"),
        input.clone(),
    );
    assert_eq!(
        code,
        CHILD_OK,
        "child failed: {}",
        String::from_utf8_lossy(&err)
    );
    assert!(
        out == input.to_ascii_uppercase(),
        "{} bytes back",
        out.len()
    );
}

// ------------------------------------------------ no SIGPIPE from a relay

fn child_relay_to_a_child_that_never_reads() {
    // A C host or a CLI tool: SIGPIPE kills.
    // SAFETY: restoring the default disposition installs no handler code.
    let prev = unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    assert_ne!(prev, libc::SIG_ERR);
    assert!(!common::sigpipe_ignored(), "SIGPIPE now kills this process");
    let (child_in, mut to_child) = shmpipe::pipe().unwrap();
    let grandchild = Redirect::new()
        .stdin(child_in)
        .spawn(Command::new("true"))
        .unwrap();
    // More than the shared ring, the relay's buffer and the kernel pipe hold
    // together: the relay has to write into the kernel pipe after `true`
    // exited.
    let e = to_child.write_all(&pattern(1 << 20, 7)).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::BrokenPipe, "{e}");
    let kind = Error::kind_of(&e);
    assert!(
        matches!(kind, Some(ErrorKind::NoData | ErrorKind::BrokenPipe)),
        "{kind:?}: {e}"
    );
    assert!(grandchild.wait().unwrap().success());
    // Once more, with the relay already gone.
    let e = to_child.write(b"x").unwrap_err();
    assert_eq!(Error::kind_of(&e), Some(ErrorKind::NoData), "{e}");
    child_done();
}

/// The relay's write into the kernel pipe of a child that exited without
/// reading must fail with EPIPE and not kill the host, even when the host
/// has the default SIGPIPE disposition.
fn relay_into_a_child_that_exited_raises_no_sigpipe() {
    let proc = child_command("child_relay_to_a_child_that_never_reads")
        .spawn()
        .unwrap();
    let (status, err) = wait_child(proc);
    assert_eq!(
        status.signal(),
        None,
        "the child was killed by a signal; its stderr:\n{}",
        String::from_utf8_lossy(&err)
    );
    assert_child_ok(status, &err);
}

// ------------------------------------------------ wait and the stdin relay

/// `wait` returns once the child exited, although the stdin relay is still
/// blocked on the parent's open write end; the relay then ends at the first
/// bytes it forwards, and the parent's writes fail.
fn wait_returns_when_the_child_exits_while_the_parent_holds_the_writer() {
    let (child_in, mut to_child) = shmpipe::pipe().unwrap();
    let child = Redirect::new()
        .stdin(child_in)
        .spawn(Command::new("true"))
        .unwrap();
    let status = within("wait, with the writer still open", move || child.wait()).unwrap();
    assert!(status.success(), "{status}");
    let (e, to_child) = within("a write after the child exited", move || {
        let e = to_child.write_all(&pattern(1 << 20, 9)).unwrap_err();
        (e, to_child)
    });
    assert_eq!(e.kind(), io::ErrorKind::BrokenPipe, "{e}");
    // The relay let go of the read end: it is closed for good.
    let e = (&to_child).write(b"x").unwrap_err();
    assert_eq!(Error::kind_of(&e), Some(ErrorKind::NoData), "{e}");
}

/// The same after the relay forwarded input the child read: the relay is
/// back to waiting for more when the child exits, and `wait` returns the
/// child's own status.
fn wait_returns_after_the_child_read_part_of_its_input() {
    let (child_in, mut to_child) = shmpipe::pipe().unwrap();
    let mut cmd = Command::new("sh");
    cmd.args(["-c", r#"read line && test "$line" = first && exit 7"#]);
    let child = Redirect::new().stdin(child_in).spawn(cmd).unwrap();
    to_child.write_all(b"first\n").unwrap();
    let status = within("wait, with the writer still open", move || child.wait()).unwrap();
    assert_eq!(status.code(), Some(7), "{status}");
    drop(to_child);
}

/// Not waiting for the stdin relay is not ending it: whoever still reads the
/// child's stdin (here a process the shell left running in the background)
/// keeps getting the parent's input after `wait`.
fn stdin_relay_keeps_feeding_a_background_reader_after_wait() {
    let path = std::env::temp_dir().join(format!(
        "shmpipe-redirect-background-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_file(&path);
    let mut cmd = Command::new("sh");
    // An asynchronous list gets /dev/null as stdin unless it is told to use
    // another descriptor: fd 3, a copy of the shell's stdin.
    cmd.args([
        "-c",
        r#"exec 3<&0; cat <&3 >"$0.part" && mv "$0.part" "$0" &"#,
    ])
    .arg(&path)
    .stdout(Stdio::null());
    let (child_in, mut to_child) = shmpipe::pipe().unwrap();
    let child = Redirect::new().stdin(child_in).spawn(cmd).unwrap();
    let status = within("wait for the shell", move || child.wait()).unwrap();
    assert!(status.success());
    let text = b"written after the shell exited\n".repeat(1000);
    to_child.write_all(&text).unwrap();
    drop(to_child); // end of input: `cat` finishes and the file appears
    let got = within("the background reader's file", move || loop {
        match std::fs::read(&path) {
            Ok(got) => {
                let _ = std::fs::remove_file(&path);
                break got;
            }
            Err(_) => std::thread::sleep(Duration::from_millis(10)),
        }
    });
    assert!(got == text, "{} bytes arrived", got.len());
}

/// The stdout relay ends when the parent closes its reader; the child gets
/// EPIPE (or SIGPIPE) like any writer to an unread kernel pipe, and `wait`
/// reports the child's status rather than the relay's write error.
fn parent_closing_its_reader_ends_the_stdout_relay() {
    let (from_child, child_out) = shmpipe::pipe().unwrap();
    let child = Redirect::new()
        .stdout(child_out)
        .spawn(Command::new("yes"))
        .unwrap();
    drop(from_child);
    let status = within("wait for `yes`", move || child.wait()).unwrap();
    assert!(!status.success(), "{status}");
}

// ------------------------------------------------ the redirect_child example

const SORTED: &[u8] = b"apple\nbanana\ncherry\nfig\npear\n";

fn example_relay_mode_sorts_with_sort() {
    let (out, status) = within("the example with sort", || {
        example::run(
            Command::new("sort"),
            StdioMode::Relay,
            example::BUILT_IN.into(),
        )
    })
    .unwrap();
    assert!(status.success(), "{status}");
    assert_eq!(out, SORTED);
}

fn child_example_native() {
    example::child_main().unwrap();
    child_done();
}

/// The example's native mode, with this binary standing in for the
/// example's `--child` re-execution: the same [`example::child_main`] runs
/// in the child, and it fails unless the ends arrived natively.
fn example_native_mode_sorts_in_the_child() {
    let mut cmd = child_command("child_example_native");
    cmd.stderr(Stdio::inherit()); // nobody drains a pipe here
    let mut input = example::BUILT_IN.as_bytes().to_vec();
    input.extend_from_slice(b"date"); // a last line without its newline
    let (out, status) = within("the example's native child", move || {
        example::run(cmd, StdioMode::Native, input)
    })
    .unwrap();
    assert_eq!(status.code(), Some(CHILD_OK), "{status}");
    assert_eq!(out, b"apple\nbanana\ncherry\ndate\nfig\npear\n");
}

/// The example's child refuses to run unless started natively.
fn example_child_main_needs_native_ends() {
    let e = example::child_main().unwrap_err();
    assert!(e.to_string().contains("native"), "{e}");
}

common::tests! {
    tests: [
        relay_sort_sorts_lines,
        relay_cat_copies_a_megabyte,
        relay_tr_transforms_the_stream,
        native_child_reads_stdin_and_writes_stdout_through_shared_memory,
        relay_into_a_child_that_exited_raises_no_sigpipe,
        wait_returns_when_the_child_exits_while_the_parent_holds_the_writer,
        wait_returns_after_the_child_read_part_of_its_input,
        stdin_relay_keeps_feeding_a_background_reader_after_wait,
        parent_closing_its_reader_ends_the_stdout_relay,
        example_relay_mode_sorts_with_sort,
        example_native_mode_sorts_in_the_child,
        example_child_main_needs_native_ends,
    ],
    children: [child_native_upcase, child_relay_to_a_child_that_never_reads, child_example_native],
}
