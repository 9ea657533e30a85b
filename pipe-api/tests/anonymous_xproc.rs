//! Anonymous pipes across real processes: inheritance (SEM-026, SEM-022),
//! end of data on process exit and SIGKILL, hand-off to an unrelated
//! process over a Unix socket, atomic writes from two processes (SEM-067),
//! no SIGPIPE (SEM-023) and redirected child stdio.
//!
//! Children are this test binary run again with `--exact <child test>` and
//! [`ROLE_ENV`] set; the `child_*` tests do nothing in an ordinary run. A
//! child reports success with exit status [`CHILD_OK`], so a child test that
//! was renamed (and therefore not run) cannot pass for one that worked.

mod common;

use common::{
    assert_child_ok, child_command, child_done, pattern, role, wait_child, within, Pending,
    CHILD_OK, HANG, SETTLE, TOKEN_ENV,
};
use shmpipe::redirect::{Redirect, StdioMode};
use shmpipe::{CommandExt as _, Error, ErrorKind, PipeBuilder, PipeReader, PipeWriter};
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

fn kind(e: &io::Error) -> Option<ErrorKind> {
    Error::kind_of(e)
}

/// True in the child started for `name` (see [`common::child_command`]).
fn is_child(name: &str) -> bool {
    role().as_deref() == Some(name)
}

/// A command for the child test `name`, playing the role of the same name.
fn child(name: &str) -> Command {
    child_command(name, name)
}

fn token() -> String {
    std::env::var(TOKEN_ENV).expect("token passed by the parent")
}

/// Reads until the end of the pipe, on a guarded thread.
fn read_all(r: PipeReader) -> Vec<u8> {
    within("read to the end of the pipe", move || {
        let mut r = r;
        let mut v = Vec::new();
        r.read_to_end(&mut v).map(|_| v)
    })
    .unwrap()
}

/// The child's stderr, for failure messages.
fn drain(mut s: Option<std::process::ChildStderr>) -> Vec<u8> {
    let mut v = Vec::new();
    if let Some(s) = s.as_mut() {
        let _ = s.read_to_end(&mut v);
    }
    v
}

// ------------------------------------------------------ SEM-026 inheritance

const GREETING: &[u8] = b"written by the child through an inherited end";

#[test]
fn child_write_inherited() {
    if !is_child("child_write_inherited") {
        return;
    }
    let t = token();
    let mut w = PipeWriter::from_inherited(&t).unwrap();
    // A token names its descriptor once: no second owner.
    let e = PipeWriter::from_inherited(&t).unwrap_err();
    assert_eq!(kind(&e), Some(ErrorKind::InvalidHandle));
    // And it names a write end, not a read end.
    let e = PipeReader::from_inherited(&t).unwrap_err();
    assert_eq!(kind(&e), Some(ErrorKind::AccessDenied));
    w.write_all(GREETING).unwrap();
    drop(w);
    child_done();
}

#[test]
fn sem_026_child_writes_through_an_inherited_write_end() {
    let (r, w) = PipeBuilder::new().inheritable(true).build().unwrap();
    let mut cmd = child("child_write_inherited");
    let t = cmd.inherit_end(&w).unwrap();
    let proc = cmd.env(TOKEN_ENV, t).spawn().unwrap();
    // The command keeps its duplicate until dropped.
    drop(cmd);
    drop(w);
    assert_eq!(read_all(r), GREETING);
    let (status, err) = wait_child(proc);
    assert_child_ok(status, &err);
}

#[test]
fn child_read_inherited() {
    if !is_child("child_read_inherited") {
        return;
    }
    let mut r = PipeReader::from_inherited(&token()).unwrap();
    let mut got = Vec::new();
    r.read_to_end(&mut got).unwrap();
    assert!(got == pattern(100_000, 20), "child read the wrong bytes");
    child_done();
}

#[test]
fn sem_026_child_reads_through_an_inherited_read_end() {
    let (r, w) = PipeBuilder::new().inheritable(true).build().unwrap();
    let mut cmd = child("child_read_inherited");
    let t = cmd.inherit_end(&r).unwrap();
    let proc = cmd.env(TOKEN_ENV, t).spawn().unwrap();
    drop(cmd);
    drop(r);
    within("write to the child", move || {
        let mut w = w;
        w.write_all(&pattern(100_000, 20))
    })
    .unwrap();
    let (status, err) = wait_child(proc);
    assert_child_ok(status, &err);
}

const FORGED_WRITE: &str = "SHMPIPE_TEST_FORGED_WRITE";
const FORGED_READ: &str = "SHMPIPE_TEST_FORGED_READ";

#[test]
fn child_forged_tokens() {
    if !is_child("child_forged_tokens") {
        return;
    }
    for (var, is_writer) in [(FORGED_WRITE, true), (FORGED_READ, false)] {
        let forged = std::env::var(var).unwrap();
        let e = if is_writer {
            PipeWriter::from_inherited(&forged).unwrap_err()
        } else {
            PipeReader::from_inherited(&forged).unwrap_err()
        };
        assert_eq!(kind(&e), Some(ErrorKind::InvalidHandle), "{forged}: {e}");
    }
    // Stay alive, holding whatever we inherited, until the parent says so.
    let mut control = PipeReader::from_inherited(&token()).unwrap();
    let mut rest = Vec::new();
    control.read_to_end(&mut rest).unwrap();
    child_done();
}

#[test]
fn sem_026_non_inheritable_end_cannot_reach_a_child() {
    let (r, w) = shmpipe::pipe().unwrap(); // not inheritable
    let mut cmd = child("child_forged_tokens");
    let e = cmd.inherit_end(&w).unwrap_err();
    assert_eq!(kind(&e), Some(ErrorKind::AccessDenied));
    let e = cmd.inherit_end(&r).unwrap_err();
    assert_eq!(kind(&e), Some(ErrorKind::AccessDenied));

    // A duplicate may be made inheritable (spec 1.6): the control pipe.
    let (control_r, control_w) = shmpipe::pipe().unwrap();
    let mut passed = control_r.try_clone().unwrap();
    passed.set_inheritable(true);
    assert!(!control_r.is_inheritable());
    let t = cmd.inherit_end(&passed).unwrap();
    // Tokens a child could guess: the real numbers of the ends we refused.
    cmd.env(TOKEN_ENV, t)
        .env(
            FORGED_WRITE,
            format!("shmpipe:anon-write:{}", w.as_fd().as_raw_fd()),
        )
        .env(
            FORGED_READ,
            format!("shmpipe:anon-read:{}", r.as_fd().as_raw_fd()),
        );
    let proc = cmd.spawn().unwrap();
    drop(cmd);
    drop((passed, control_r));

    // The child is alive (waiting on the control pipe) and holds no copy of
    // our write end: closing ours ends the data at once.
    drop(w);
    let e = within("read after the only write handle closed", move || {
        let r = r;
        r.read_pipe(&mut [0u8; 8]).unwrap_err()
    });
    assert_eq!(kind(&e), Some(ErrorKind::BrokenPipe));
    drop(control_w);
    let (status, err) = wait_child(proc);
    assert_child_ok(status, &err);
}

// ------------------------------------------- SEM-022 across processes

#[test]
fn child_hold_write_end() {
    if !is_child("child_hold_write_end") {
        return;
    }
    let w = PipeWriter::from_inherited(&token()).unwrap();
    // Hold it until the parent closes our stdin.
    let mut s = Vec::new();
    io::stdin().read_to_end(&mut s).unwrap();
    drop(w);
    child_done();
}

#[test]
fn sem_022_inherited_write_end_in_child_keeps_reader_waiting() {
    let (r, w) = PipeBuilder::new().inheritable(true).build().unwrap();
    let mut cmd = child("child_hold_write_end");
    let t = cmd.inherit_end(&w).unwrap();
    let mut proc = cmd.env(TOKEN_ENV, t).stdin(Stdio::piped()).spawn().unwrap();
    drop(cmd);
    drop(w);
    let read = Pending::start("read", move || r.read_pipe(&mut [0u8; 8]));
    read.assert_pending("the child holds a copy of the write end");
    drop(proc.stdin.take()); // let the child exit
    let e = read.finish().unwrap_err();
    assert_eq!(kind(&e), Some(ErrorKind::BrokenPipe));
    let (status, err) = wait_child(proc);
    assert_child_ok(status, &err);
}

// ------------------------------------------- process exit and SIGKILL

#[test]
fn child_write_and_exit() {
    if !is_child("child_write_and_exit") {
        return;
    }
    let mut w = PipeWriter::from_inherited(&token()).unwrap();
    w.write_all(b"last words").unwrap();
    // Exit without closing: the kernel closes the end.
    std::mem::forget(w);
    child_done();
}

#[test]
fn sem_021_writer_process_exit_ends_the_data() {
    let (r, w) = PipeBuilder::new().inheritable(true).build().unwrap();
    let mut cmd = child("child_write_and_exit");
    let t = cmd.inherit_end(&w).unwrap();
    let proc = cmd.env(TOKEN_ENV, t).spawn().unwrap();
    drop(cmd);
    drop(w);
    assert_eq!(read_all(r), b"last words");
    let (status, err) = wait_child(proc);
    assert_child_ok(status, &err);
}

/// Sleeps until killed, but not forever if the parent died first.
fn linger() -> ! {
    std::thread::sleep(Duration::from_secs(60));
    std::process::exit(1)
}

#[test]
fn child_write_then_linger() {
    if !is_child("child_write_then_linger") {
        return;
    }
    let mut w = PipeWriter::from_inherited(&token()).unwrap();
    w.write_all(&pattern(1000, 40)).unwrap();
    linger();
}

/// Spec 1.5 and 6: a killed process's handles close as if it had closed
/// them. The kill-to-EOF latency is printed (spec target: 10 ms); only a
/// hang fails the test.
#[test]
fn killed_writer_process_gives_data_then_end_of_pipe() {
    let (r, w) = PipeBuilder::new().inheritable(true).build().unwrap();
    let mut cmd = child("child_write_then_linger");
    let t = cmd.inherit_end(&w).unwrap();
    let mut proc = cmd.env(TOKEN_ENV, t).spawn().unwrap();
    drop(cmd);
    drop(w);
    let (got_tx, got_rx) = mpsc::channel();
    let end = Pending::start("reader", move || {
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        while got.len() < 1000 {
            let n = r.read_pipe(&mut buf).unwrap();
            got.extend_from_slice(&buf[..n]);
        }
        got_tx.send(got).unwrap();
        let res = r.read_pipe(&mut buf);
        (res, Instant::now())
    });
    let got = got_rx.recv_timeout(HANG).expect("the child's data");
    assert!(got == pattern(1000, 40));
    // Give the reader time to block again before the kill.
    std::thread::sleep(SETTLE);
    end.assert_pending_now("the child still holds the write end");
    let killed = Instant::now();
    proc.kill().unwrap();
    let (res, returned) = end.finish();
    let latency = returned.saturating_duration_since(killed);
    println!("SIGKILL of the writer -> reader saw end of pipe after {latency:?}");
    assert_eq!(kind(&res.unwrap_err()), Some(ErrorKind::BrokenPipe));
    assert!(latency < Duration::from_secs(2), "took {latency:?}");
    let status = proc.wait().unwrap();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(9)
    );
}

#[test]
fn child_hold_read_end() {
    if !is_child("child_hold_read_end") {
        return;
    }
    let _r = PipeReader::from_inherited(&token()).unwrap();
    linger();
}

/// Spec 1.5 and 6 ("process exit or kill: as for close"): once the process
/// holding the only read end is killed, writes fail with NoData. A killed
/// process runs no code, so it leaves no hang-up hint; a write that need not
/// wait asks the kernel when a tick of the coarse clock passed since it last
/// asked (see `pipe-api/src/conn.rs`), so single writes
/// spaced 20 ms apart each ask. Other tests of this binary fork children
/// concurrently, and a child between fork and exec briefly holds copies of
/// every descriptor of this process (the read end included, while it was
/// still open here): so NoData must come within a few spaced writes, not
/// necessarily the first.
#[test]
fn killed_reader_process_makes_writes_fail_with_no_data() {
    let (r, mut w) = PipeBuilder::new()
        .buffer_size(1 << 20)
        .inheritable(true)
        .build()
        .unwrap();
    let mut cmd = child("child_hold_read_end");
    let t = cmd.inherit_end(&r).unwrap();
    let mut proc = cmd.env(TOKEN_ENV, t).spawn().unwrap();
    drop(cmd);
    drop(r);
    w.write_all(b"the child holds the read end").unwrap();
    proc.kill().unwrap();
    proc.wait().unwrap();
    // Fewer spaced writes than the 64-write bound: only the time rule can
    // make one of them fail.
    let mut failed = None;
    for i in 0..20 {
        std::thread::sleep(Duration::from_millis(20));
        if let Err(e) = w.write(b"x") {
            failed = Some((i, e));
            break;
        }
    }
    let (i, e) = failed.expect("no NoData within 20 writes spaced 20 ms apart after the kill");
    println!("NoData at spaced write {i} after the kill");
    assert_eq!(kind(&e), Some(ErrorKind::NoData), "{e}");
    // And it stays that way, also for writes in quick succession.
    for _ in 0..3 {
        assert_eq!(kind(&w.write(b"x").unwrap_err()), Some(ErrorKind::NoData));
    }
}

// ------------------------------------------- SEM-023: no SIGPIPE

extern "C" {
    fn signal(signum: i32, handler: usize) -> usize;
}
const SIGPIPE: i32 = 13;
const SIG_DFL: usize = 0;
const SIG_ERR: usize = usize::MAX;

/// Whether SIGPIPE is ignored, from the kernel's own view of this process.
fn sigpipe_ignored() -> bool {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let mask = status
        .lines()
        .find_map(|l| l.strip_prefix("SigIgn:"))
        .map(|m| u64::from_str_radix(m.trim(), 16).unwrap())
        .unwrap();
    mask & (1 << (SIGPIPE - 1)) != 0
}

#[test]
fn child_sigpipe_default() {
    if !is_child("child_sigpipe_default") {
        return;
    }
    assert!(
        sigpipe_ignored(),
        "Rust programs start with SIGPIPE ignored"
    );
    // SAFETY: `signal` is the C library's; SIGPIPE and SIG_DFL are its
    // Linux values, and restoring the default disposition installs no
    // handler code.
    let prev = unsafe { signal(SIGPIPE, SIG_DFL) };
    assert_ne!(prev, SIG_ERR);
    assert!(!sigpipe_ignored(), "SIGPIPE now kills this process");
    let (r, mut w) = shmpipe::pipe().unwrap();
    drop(r);
    for _ in 0..3 {
        let e = w.write(b"nobody reads this").unwrap_err();
        assert_eq!(kind(&e), Some(ErrorKind::NoData));
    }
    child_done();
}

#[test]
fn sem_023_no_sigpipe_for_a_write_after_the_reader_closed() {
    let proc = child("child_sigpipe_default").spawn().unwrap();
    let (status, err) = wait_child(proc);
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        None,
        "the child was killed by a signal"
    );
    assert_child_ok(status, &err);
}

// ------------------------------------------- hand-off over a Unix socket

#[test]
fn child_recv_writer() {
    if !is_child("child_recv_writer") {
        return;
    }
    let sock = UnixStream::from(io::stdin().as_fd().try_clone_to_owned().unwrap());
    let mut w = PipeWriter::recv_from(&sock).unwrap();
    w.write_all(&pattern(50_000, 50)).unwrap();
    drop(w);
    child_done();
}

/// Spec 1.6: a handle passed to a process that inherited nothing from the
/// pipe (the pipe is not inheritable; only a socket is shared).
#[test]
fn write_end_sent_over_unix_socket_works_in_another_process() {
    let (r, w) = shmpipe::pipe().unwrap();
    let (mine, theirs) = UnixStream::pair().unwrap();
    let mut cmd = child("child_recv_writer");
    cmd.stdin(Stdio::from(OwnedFd::from(theirs)));
    let proc = cmd.spawn().unwrap();
    drop(cmd);
    w.send_to(&mine).unwrap();
    drop(w);
    let got = read_all(r);
    assert!(got == pattern(50_000, 50), "{} bytes", got.len());
    let (status, err) = wait_child(proc);
    assert_child_ok(status, &err);
}

// ------------------------------------------- SEM-067: atomic writes

const BLOCK: usize = 100_000;
const BLOCKS: u8 = 20;
const BASE_ENV: &str = "SHMPIPE_TEST_BLOCK_BASE";

#[test]
fn child_write_blocks() {
    if !is_child("child_write_blocks") {
        return;
    }
    let base: u8 = std::env::var(BASE_ENV).unwrap().parse().unwrap();
    let w = PipeWriter::from_inherited(&token()).unwrap();
    for i in 0..BLOCKS {
        assert_eq!(w.try_write(&[base + i; BLOCK]).unwrap(), BLOCK);
    }
    drop(w);
    child_done();
}

#[test]
fn sem_067_blocks_from_two_processes_stay_contiguous() {
    let (r, w) = PipeBuilder::new().inheritable(true).build().unwrap();
    let mut procs = Vec::new();
    for base in [1u8, 101] {
        let mut cmd = child("child_write_blocks");
        let t = cmd.inherit_end(&w).unwrap();
        procs.push(
            cmd.env(TOKEN_ENV, t)
                .env(BASE_ENV, base.to_string())
                .spawn()
                .unwrap(),
        );
    }
    drop(w);
    let got = read_all(r);
    assert_eq!(got.len(), 2 * BLOCKS as usize * BLOCK);
    let mut seen = Vec::new();
    for (i, block) in got.chunks(BLOCK).enumerate() {
        let v = block[0];
        assert!(
            block.iter().all(|&b| b == v),
            "block {i} (value {v}) is interleaved with another write"
        );
        seen.push(v);
    }
    let switches = seen
        .windows(2)
        .filter(|p| (p[0] < 101) != (p[1] < 101))
        .count();
    println!("SEM-067: the two writers alternated {switches} times");
    let mut sorted = seen.clone();
    sorted.sort_unstable();
    let expected: Vec<u8> = (0..BLOCKS)
        .map(|i| 1 + i)
        .chain((0..BLOCKS).map(|i| 101 + i))
        .collect();
    assert_eq!(sorted, expected, "every block exactly once");
    // Each writer's blocks keep their order.
    let a: Vec<u8> = seen.iter().copied().filter(|&v| v < 101).collect();
    assert!(a.windows(2).all(|p| p[0] < p[1]));
    for p in procs {
        let (status, err) = wait_child(p);
        assert_child_ok(status, &err);
    }
}

// ------------------------------------------- redirected stdio

/// Runs `program` with its stdin and stdout redirected to pipes, feeding it
/// `input` from a thread (a child that echoes while it reads would otherwise
/// deadlock with a parent that writes everything first).
fn run_redirected(mode: StdioMode, cmd: Command, input: Vec<u8>) -> (Vec<u8>, i32, Vec<u8>) {
    let (child_in, mut to_child) = shmpipe::pipe().unwrap();
    let (from_child, child_out) = shmpipe::pipe().unwrap();
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
    let out = read_all(from_child);
    feeder.finish().unwrap();
    let err = drain(stderr);
    let status = within("child exit", move || proc.wait()).unwrap();
    (out, status.code().unwrap_or(-1), err)
}

#[test]
fn relay_sort_sorts_lines() {
    let input = b"pear\napple\nfig\nbanana\n".to_vec();
    let (out, code, _) = run_redirected(StdioMode::Relay, Command::new("sort"), input);
    assert_eq!(code, 0);
    assert_eq!(out, b"apple\nbanana\nfig\npear\n");
}

#[test]
fn relay_cat_copies_a_megabyte() {
    let input = pattern(1 << 20, 60);
    let (out, code, _) = run_redirected(StdioMode::Relay, Command::new("cat"), input.clone());
    assert_eq!(code, 0);
    assert!(out == input, "cat returned {} bytes, differing", out.len());
}

#[test]
fn relay_tr_transforms_the_stream() {
    let mut cmd = Command::new("tr");
    cmd.args(["a-z", "A-Z"]);
    let input = b"shared memory pipes\n".repeat(5000);
    let (out, code, _) = run_redirected(StdioMode::Relay, cmd, input.clone());
    assert_eq!(code, 0);
    assert_eq!(out, input.to_ascii_uppercase());
}

#[test]
fn child_native_upcase() {
    if !is_child("child_native_upcase") {
        return;
    }
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

#[test]
fn native_child_reads_stdin_and_writes_stdout_through_shared_memory() {
    let input: Vec<u8> = b"native stdio, no kernel pipe in between\n".repeat(30_000);
    let (out, code, err) = run_redirected(
        StdioMode::Native,
        child("child_native_upcase"),
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
