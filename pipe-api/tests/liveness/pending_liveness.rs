//! Spec 7.5 / SEM-117 across `fork` without `exec`: a pending write's
//! claimant is its *process*, so a forked child and its parent must never
//! be taken for one another. When one of the two is SIGKILLed holding a
//! pending write, the unread rest of that write vanishes while the other
//! lives on with its copies of the write end; the live one's writes arrive
//! whole.
//!
//! (An earlier version named the claimant by a per-handle lock whose open
//! file description a forked child inherited: parent and child then shared
//! one "alive" signal, and a dead one's rest stayed readable while the
//! other lived. Claimants are now named by the engine's process slot, which
//! a forked child draws anew.)
//!
//! Children are this test binary run again (see `common::child_command`);
//! the grandchildren are forks of a child, without exec.

use crate::common;

use common::{assert_child_ok, child_command, pattern, within, HANG, TOKEN_ENV};
use shmpipe::{CommandExt as _, PipeBuilder, PipeReader, PipeWriter};
use std::io::{Read, Write};
use std::process::Stdio;
use std::time::Instant;

const QUOTA: u32 = 4096;
/// Larger than the quota: a first write that pends and completes, so the
/// child's end has made everything a pending write needs before it forks.
const FIRST_LEN: usize = 5000;
/// The write that pends when its process is killed.
const PENDING_LEN: usize = 10_000;
/// What the surviving process writes after the kill.
const AFTER_LEN: usize = 3000;
/// The line a child prints once the process it killed is reaped.
const KILLED: &str = "shmpipe-test: killed and reaped";

/// Waits until `r` holds `n` unread bytes.
fn wait_queued(r: &PipeReader, n: u64) {
    let start = Instant::now();
    while r.peek(None).unwrap().total_available != n {
        assert!(start.elapsed() < HANG, "the writes never arrived");
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

fn read_exactly(r: &mut PipeReader, n: usize) -> Vec<u8> {
    let mut v = vec![0u8; n];
    r.read_exact(&mut v).unwrap();
    v
}

/// Forks (without exec): the child's pid in the parent, `None` in the
/// child.
fn fork() -> Option<libc::pid_t> {
    // SAFETY: the callers' children only make calls that are safe after a
    // fork of this (glibc) process: the forking thread holds no lock, and
    // glibc's fork resets the allocator's locks in the child.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork: {}", std::io::Error::last_os_error());
    (pid > 0).then_some(pid)
}

/// Child: a pending write that completes, then a fork whose child (without
/// exec) starts a pending write of its own. On a byte from the parent
/// (stdin) we SIGKILL that child, reap it, say so on stdout and, alive with
/// our own copy of the write end, write [`AFTER_LEN`] bytes and exit.
fn child_fork_a_pending_writer() {
    let token = std::env::var(TOKEN_ENV).unwrap();
    let mut w = PipeWriter::from_inherited(&token).unwrap();
    w.write_all(&pattern(FIRST_LEN, 1)).unwrap();
    let Some(grandchild) = fork() else {
        let _ = w.write(&pattern(PENDING_LEN, 2));
        // SAFETY: `_exit` ends the process at once; never reached anyway,
        // the parent kills us while the write pends.
        unsafe { libc::_exit(3) };
    };
    let mut go = [0u8; 1];
    std::io::stdin().read_exact(&mut go).unwrap();
    // SAFETY: plain system calls on our own child's pid; `waitpid` returns
    // once it is dead and its descriptors are closed.
    unsafe {
        assert_eq!(libc::kill(grandchild, libc::SIGKILL), 0);
        assert_eq!(
            libc::waitpid(grandchild, std::ptr::null_mut(), 0),
            grandchild
        );
    }
    println!("{KILLED}");
    std::io::stdout().flush().unwrap();
    w.write_all(&pattern(AFTER_LEN, 3)).unwrap();
    drop(w);
    common::child_done();
}

/// A forked child (without exec) holding a pending write is SIGKILLed
/// while its parent lives on with the same write end: the rest of the
/// child's write vanishes, and the parent's write after it (which pends
/// until the reader gets past the dead rest) arrives whole. Failed with
/// the per-handle claim locks: the child's claim looked alive as long as
/// the parent held the inherited lock, so the reader got the dead rest.
fn sem_117_forked_childs_pending_write_vanishes_while_its_parent_lives() {
    let (mut r, w) = PipeBuilder::new()
        .buffer_size(QUOTA)
        .inheritable(true)
        .build()
        .unwrap();
    let mut cmd = child_command("child_fork_a_pending_writer");
    let token = cmd.inherit_end(&w).unwrap();
    cmd.env(TOKEN_ENV, token)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    drop(cmd);
    drop(w); // only the child and its fork write
    let mut go = child.stdin.take().unwrap();
    let mut said = std::io::BufReader::new(child.stdout.take().unwrap());

    wait_queued(&r, FIRST_LEN as u64);
    assert_eq!(read_exactly(&mut r, FIRST_LEN), pattern(FIRST_LEN, 1));
    wait_queued(&r, PENDING_LEN as u64);
    assert_eq!(read_exactly(&mut r, 50), pattern(PENDING_LEN, 2)[..50]);
    go.write_all(b"k").unwrap();
    // Read only once the claimant is dead (a read before would rightly
    // deliver the rest of a write that was still pending).
    within("the kill", move || {
        // The harness may have begun the line ("test NAME ... ").
        let mut line = String::new();
        while !line.contains(KILLED) {
            line.clear();
            let n = std::io::BufRead::read_line(&mut said, &mut line).unwrap();
            assert!(n > 0, "the child ended without killing its fork");
        }
    });

    let got = within("read after the kill", move || {
        let mut v = Vec::new();
        r.read_to_end(&mut v).map(|_| v)
    })
    .unwrap();
    assert_eq!(
        got.len(),
        AFTER_LEN,
        "after the kill the reader must see exactly the live parent's write"
    );
    assert!(
        got == pattern(AFTER_LEN, 3),
        "the parent's write arrived corrupted"
    );
    drop(go);
    let (status, stderr) = common::wait_child(child);
    assert_child_ok(status, &stderr);
}

/// Child: a pending write that completes, then a fork whose child (without
/// exec) only keeps its copies of everything until its stdin closes, then a
/// pending write of our own, during which the parent kills us.
fn child_fork_then_pend() {
    let token = std::env::var(TOKEN_ENV).unwrap();
    let mut w = PipeWriter::from_inherited(&token).unwrap();
    w.write_all(&pattern(FIRST_LEN, 1)).unwrap();
    if fork().is_none() {
        let mut b = [0u8; 64];
        // SAFETY: `read` into a buffer we own, then `_exit`: both safe after
        // a fork; no Rust runtime state is touched.
        unsafe {
            while libc::read(0, b.as_mut_ptr().cast(), b.len()) > 0 {}
            libc::_exit(0);
        }
    }
    let _ = w.write(&pattern(PENDING_LEN, 2));
    std::process::exit(3); // never reached: the parent kills us first
}

/// A process holding a pending write forks a child (without exec) that
/// lives on with copies of the write end; the process is SIGKILLed: the
/// rest of its write vanishes, and a later write from a live duplicate
/// arrives whole. Failed with the per-handle claim locks: the forked child
/// inherited the dead writer's lock, so its claim looked alive.
fn sem_117_pending_write_vanishes_while_a_forked_child_lives() {
    let (mut r, mut w) = PipeBuilder::new()
        .buffer_size(QUOTA)
        .inheritable(true)
        .build()
        .unwrap();
    let mut cmd = child_command("child_fork_then_pend");
    let token = cmd.inherit_end(&w).unwrap();
    // The forked grandchild blocks on this stdin; it also shares the
    // child's stderr, so the child is reaped with `wait`, not with
    // `wait_with_output` (which would wait for the grandchild too).
    cmd.env(TOKEN_ENV, token)
        .stdin(Stdio::piped())
        .stderr(Stdio::null());
    let mut child = cmd.spawn().unwrap();
    drop(cmd);
    let hold = child.stdin.take().unwrap();

    wait_queued(&r, FIRST_LEN as u64);
    assert_eq!(read_exactly(&mut r, FIRST_LEN), pattern(FIRST_LEN, 1));
    // The child forked before it began this write.
    wait_queued(&r, PENDING_LEN as u64);
    assert_eq!(read_exactly(&mut r, 50), pattern(PENDING_LEN, 2)[..50]);
    child.kill().unwrap();
    child.wait().unwrap();

    // Our own write pends (the dead rest still fills the quota) until the
    // reader gets past the dead write.
    let writer = std::thread::spawn(move || {
        w.write_all(&pattern(AFTER_LEN, 3)).unwrap();
        w
    });
    let (got, r) = within("read after the kill", move || {
        let v = read_exactly(&mut r, AFTER_LEN);
        (v, r)
    });
    // Checked before the writer is joined: had the reader got the dead
    // rest instead, our write would still pend behind the remainder.
    assert!(
        got == pattern(AFTER_LEN, 3),
        "after the kill the reader must see exactly the duplicate's write"
    );
    let w = within("the duplicate's write", move || writer.join().unwrap());
    assert_eq!(r.peek(None).unwrap().total_available, 0, "nothing else");
    drop((w, hold)); // the grandchild sees its stdin close and exits
}

common::tests! {
    tests: [
        sem_117_forked_childs_pending_write_vanishes_while_its_parent_lives,
        sem_117_pending_write_vanishes_while_a_forked_child_lives,
    ],
    children: [child_fork_a_pending_writer, child_fork_then_pend],
}
