//! A SIGKILLed peer is noticed from the kernel's own notice (the process's
//! inotify watcher, `shmpipe_engine::liveness::watch`), not from the
//! waiter's park slices: every waiter here parks with a park slice of ten
//! minutes, so nothing but the watcher can end its wait within the hang
//! guard. Nothing is timed; a hang aborts through the watchdog.
//!
//! Also: a peer end still open in another process keeps the wait going when
//! one holder is killed; the watches go away with the ends (a watch pins
//! the segment's memory); a process forked without exec watches its own
//! ends through its own instance.

mod common;

use common::*;
use shmpipe_engine::liveness::{reopen, watch};
use shmpipe_engine::{channel, Error, Receiver, Sender, WaitPolicy};
use std::fs::File;
use std::os::fd::AsFd;
use std::os::unix::process::ExitStatusExt;
use std::process::Child;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Only a notify ends a park under this policy within the hang guard.
const PARK_LONG: WaitPolicy = WaitPolicy {
    spin: Some(Duration::ZERO),
    park_slice: Duration::from_secs(600),
};

/// The hang guard of every test.
const HANG: Duration = Duration::from_secs(30);

/// One test at a time: the watch count is per process, and a child forked
/// while another test's end closes would hold that end open until it execs.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn alone() -> MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

fn channel_long(cap: usize) -> (Sender, Receiver) {
    let (mut tx, mut rx) = channel(cap).expect("channel");
    tx.set_wait_policy(PARK_LONG);
    rx.set_wait_policy(PARK_LONG);
    (tx, rx)
}

/// Child `child_hold_writer:extra`: adopts the write end on descriptor 3,
/// writes one message, says so on descriptor 4 and holds the end until
/// killed (or descriptor 5 closes). With `extra` = 1 it also holds a second
/// description of the segment, without any role: its release when the
/// child dies is an event for the watcher that must not end the wait.
fn child_hold_writer() {
    let extra: u8 = role_arg(0);
    let mut status = File::from(take_fd(4));
    let mut hold = File::from(take_fd(5));
    let mut tx = Sender::from_fd(take_fd(3)).unwrap();
    let _other = (extra == 1).then(|| reopen(tx.as_fd()).unwrap());
    tx.write(b"alive").unwrap();
    signal(&mut status);
    wait_signal(&mut hold);
}

/// Child `child_hold_reader`: adopts the read end on descriptor 3, reads
/// one message, says so and holds the end until killed.
fn child_hold_reader() {
    let mut status = File::from(take_fd(4));
    let mut hold = File::from(take_fd(5));
    let mut rx = Receiver::from_fd(take_fd(3)).unwrap();
    let mut buf = [0u8; 16];
    let m = rx.read_message(&mut buf).unwrap();
    assert_eq!(&buf[..m.len], b"alive");
    signal(&mut status);
    wait_signal(&mut hold);
}

/// Spawns `role` with `end` as descriptor 3; returns once it said it is
/// ready, with the write end of its hold pipe.
fn spawn_holder(role: &str, end: std::os::fd::BorrowedFd<'_>) -> (Child, File) {
    let (mut status_r, status_w) = pipe();
    let (hold_r, hold_w) = pipe();
    let child = spawn_child(
        role,
        &[(end, 3), (status_w.as_fd(), 4), (hold_r.as_fd(), 5)],
    );
    drop((status_w, hold_r));
    assert!(
        wait_signal(&mut status_r),
        "{role} failed before it was ready"
    );
    (child, hold_w)
}

/// SIGKILLs `child` and reaps it, checking that the kill is what ended it.
fn kill_reaped(mut child: Child) {
    child.kill().expect("kill child");
    let st = child.wait().expect("reap child");
    assert_eq!(
        st.signal(),
        Some(libc::SIGKILL),
        "child ended otherwise: {st}"
    );
}

/// Runs `wait` on this thread; another thread, once this one is parked,
/// kills and reaps `child`.
fn kill_while<R>(child: Child, wait: impl FnOnce() -> R) -> R {
    let waiter = gettid();
    std::thread::scope(|s| {
        let killer = s.spawn(move || {
            wait_until_blocked(waiter);
            kill_reaped(child);
        });
        let r = wait();
        killer.join().unwrap();
        r
    })
}

/// The watches of the process's inotify instance, as the kernel lists them.
fn kernel_watches() -> usize {
    let Some(fd) = watch::watcher_fd() else {
        return 0;
    };
    std::fs::read_to_string(format!("/proc/self/fdinfo/{fd}"))
        .expect("fdinfo of the watcher")
        .lines()
        .filter(|l| l.starts_with("inotify wd:"))
        .count()
}

/// A read parked (ten-minute slices) on an empty ring returns `PeerClosed`
/// once the only writer, in a child, is SIGKILLed.
fn a_parked_reader_sees_its_killed_writer() {
    let _one = alone();
    let _dog = Watchdog::new("a_parked_reader_sees_its_killed_writer", HANG);
    let (tx, mut rx) = channel_long(4096);
    let (child, _hold) = spawn_holder("child_hold_writer:0", tx.as_fd());
    drop(tx);
    let mut buf = [0u8; 16];
    let m = rx.read_message(&mut buf).unwrap();
    assert_eq!(&buf[..m.len], b"alive");
    // Our drop left a hang-up hint: take it now (the child's copy keeps the
    // end open), so that no hint is left for the read below.
    let now = Instant::now();
    assert!(matches!(
        rx.read_until(&mut buf, Some(now)),
        Err(Error::TimedOut)
    ));
    let r = kill_while(child, || rx.read(&mut buf));
    assert!(matches!(r, Err(Error::PeerClosed)), "{r:?}");
}

/// The writer is killed (and reaped) before the reader ever waited: the
/// read that then parks registers its end after the death, which sent no
/// event it could get; the look right after registering ends it.
fn a_reader_whose_writer_died_before_it_waited() {
    let _one = alone();
    let _dog = Watchdog::new("a_reader_whose_writer_died_before_it_waited", HANG);
    let (tx, mut rx) = channel_long(4096);
    let (child, _hold) = spawn_holder("child_hold_writer:0", tx.as_fd());
    // Our copy goes without a hang-up hint (the child's keeps the end open).
    drop(tx.into_fd());
    let mut buf = [0u8; 16];
    // There already: no wait, so no registration yet.
    let m = rx.read_message(&mut buf).unwrap();
    assert_eq!(&buf[..m.len], b"alive");
    kill_reaped(child);
    let r = rx.read(&mut buf);
    assert!(matches!(r, Err(Error::PeerClosed)), "{r:?}");
}

/// A write blocked on a full ring (ten-minute slices) returns `PeerClosed`
/// once the only reader, in a child, is SIGKILLed.
fn a_writer_blocked_on_a_full_ring_sees_its_killed_reader() {
    let _one = alone();
    let _dog = Watchdog::new(
        "a_writer_blocked_on_a_full_ring_sees_its_killed_reader",
        HANG,
    );
    let (mut tx, rx) = channel_long(4096);
    tx.write(b"alive").unwrap();
    let (child, _hold) = spawn_holder("child_hold_reader", rx.as_fd());
    drop(rx);
    // Fill the ring (the first write takes the hint our drop left and finds
    // the child's end open).
    while tx.try_write(&[1; 100]).unwrap() {}
    let r = kill_while(child, || tx.write(&[2; 100]));
    assert!(matches!(r, Err(Error::PeerClosed)), "{r:?}");
}

/// The writing end is open in two children (one description, inherited by
/// both; the first also holds a second description, whose release is a
/// close event): killing the first does not end the parked read, killing
/// the last holder does.
fn a_peer_end_open_elsewhere_keeps_the_wait_until_its_last_holder_dies() {
    let _one = alone();
    let _dog = Watchdog::new("a_peer_end_open_elsewhere_keeps_the_wait", HANG);
    let (tx, mut rx) = channel_long(4096);
    let (first, _hold1) = spawn_holder("child_hold_writer:1", tx.as_fd());
    let (second, _hold2) = spawn_holder("child_hold_writer:0", tx.as_fd());
    drop(tx);
    let mut buf = [0u8; 16];
    for _ in 0..2 {
        let m = rx.read_message(&mut buf).unwrap();
        assert_eq!(&buf[..m.len], b"alive");
    }
    let now = Instant::now();
    assert!(matches!(
        rx.read_until(&mut buf, Some(now)),
        Err(Error::TimedOut)
    ));
    let reader = gettid();
    let r = std::thread::scope(|s| {
        let killer = s.spawn(move || {
            wait_until_blocked(reader);
            kill_reaped(first);
            // The first holder is gone (reaped: its descriptions are
            // released, and the watcher had its events); the reader must
            // still wait, the end being open in the second.
            wait_until_blocked(reader);
            kill_reaped(second);
        });
        let r = rx.read(&mut buf);
        assert!(
            killer.is_finished() || !rx.is_peer_alive().unwrap(),
            "the read ended while the second holder lived: {r:?}"
        );
        killer.join().unwrap();
        r
    });
    assert!(matches!(r, Err(Error::PeerClosed)), "{r:?}");
}

/// Registrations do not accumulate: 200 channels, both ends of each
/// watched in this process (one inode: one watch; one watcher thread for
/// all), then closed; the kernel's list of watches goes back to where it
/// was.
fn watches_go_away_with_their_ends() {
    let _one = alone();
    let _dog = Watchdog::new("watches_go_away_with_their_ends", HANG);
    // Make sure the instance exists, to count from.
    let (tx, mut rx) = channel_long(4096);
    let now = Instant::now();
    assert!(matches!(
        rx.read_until(&mut [0; 8], Some(now)),
        Err(Error::TimedOut)
    ));
    let fd = watch::watcher_fd();
    if !require(
        fd.is_some(),
        "watches_go_away_with_their_ends",
        "no inotify",
    ) {
        return;
    }
    drop((tx, rx));
    // Each channel takes a few descriptors: allow them where the soft limit
    // is low.
    let lim = rustix::process::getrlimit(rustix::process::Resource::Nofile);
    rustix::process::setrlimit(
        rustix::process::Resource::Nofile,
        rustix::process::Rlimit {
            current: lim.maximum,
            maximum: lim.maximum,
        },
    )
    .expect("raise the descriptor limit");
    let base = kernel_watches();
    let mut chans = Vec::new();
    for _ in 0..200 {
        let (tx, mut rx) = channel_long(4096);
        // The wait path registers (a deadline already past: no wait).
        let now = Instant::now();
        assert!(matches!(
            rx.read_until(&mut [0; 8], Some(now)),
            Err(Error::TimedOut)
        ));
        tx.end().watch_peer();
        chans.push((tx, rx));
    }
    assert_eq!(kernel_watches(), base + 200, "one watch per segment");
    let watchers = std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(Result::ok)
        .filter(|t| {
            std::fs::read_to_string(t.path().join("comm"))
                .is_ok_and(|c| c.trim_end() == "shmpipe-watch")
        })
        .count();
    assert_eq!(watchers, 1, "one watcher thread per process");
    for (i, (tx, rx)) in chans.into_iter().enumerate() {
        // Either end may close first.
        if i % 2 == 0 {
            drop(tx);
            drop(rx);
        } else {
            drop(rx);
            drop(tx);
        }
    }
    assert_eq!(kernel_watches(), base, "watches left behind");
}

/// A child forked (no exec) from a process whose watcher runs gets its own:
/// a read parked in the child ends when the write end's last description is
/// closed without a hang-up hint (`into_fd`, then close).
fn a_forked_child_watches_with_its_own_instance() {
    let _one = alone();
    let _dog = Watchdog::new("a_forked_child_watches_with_its_own_instance", HANG);
    // The parent's watcher exists and watches something.
    let (tx, mut rx) = channel_long(4096);
    let now = Instant::now();
    assert!(matches!(
        rx.read_until(&mut [0; 8], Some(now)),
        Err(Error::TimedOut)
    ));
    let parent_watches = kernel_watches();
    // SAFETY: the child only runs code that does not depend on other
    // threads of this process (theirs are gone): the engine's fork handlers
    // reset its registries, and the test's own locks are not taken.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        // SAFETY: alarm only arms a timer: the child dies if it hangs.
        unsafe { libc::alarm(HANG.as_secs() as u32) };
        let ok = std::panic::catch_unwind(|| {
            let (tx2, mut rx2) = channel_long(4096);
            let reader = gettid();
            let r = std::thread::scope(|s| {
                s.spawn(move || {
                    wait_until_blocked(reader);
                    // No hint is left: only the kernel's notice tells.
                    drop(tx2.into_fd());
                });
                rx2.read(&mut [0; 8])
            });
            let watched = kernel_watches();
            drop(rx2);
            matches!(r, Err(Error::PeerClosed)) && watched == 1 && kernel_watches() == 0
        });
        // SAFETY: ends the child without running the parent's atexit code.
        unsafe { libc::_exit(if matches!(ok, Ok(true)) { 0 } else { 1 }) };
    }
    let mut status = 0;
    // SAFETY: waits for our own child; `status` is a valid out-pointer.
    let r = unsafe { libc::waitpid(pid, &mut status, 0) };
    assert_eq!(r, pid);
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "the forked child failed (status {status:#x})"
    );
    // The child removed nothing of ours.
    assert_eq!(kernel_watches(), parent_watches);
    drop((tx, rx));
}

common::main! {
    tests: [
        a_parked_reader_sees_its_killed_writer,
        a_reader_whose_writer_died_before_it_waited,
        a_writer_blocked_on_a_full_ring_sees_its_killed_reader,
        a_peer_end_open_elsewhere_keeps_the_wait_until_its_last_holder_dies,
        watches_go_away_with_their_ends,
        a_forked_child_watches_with_its_own_instance,
    ],
    children: [child_hold_writer, child_hold_reader],
}
