//! Admission-lock holders in other processes: who counts as alive, and what
//! wakes a handle waiting for the lock.
//!
//! * A holder in another pid namespace, with its own `/proc` (a sandbox, a
//!   container, `unshare --pid --fork --mount-proc`), keeps the lock while it
//!   is stopped or working; once SIGKILLed, its lock is taken over.
//! * A child forked without exec holds the lock under its own name: when it
//!   dies, its still-living parent does not keep the lock looking held.
//! * A holder that is stopped (SIGSTOP) does not stall the other handles of
//!   its end for good: their waits for the lock honour deadlines, and a
//!   disconnect or the peer end closing wakes them with that error.
//!
//! Holders report over a status pipe in 5-byte records (a tag and a
//! little-endian u32; a pipe write that small is atomic), so that a parent
//! and its child can both report on one pipe.
//!
//! Namespaces need root (CAP_SYS_ADMIN): without it the namespace tests say
//! so and pass, except under `CI=true`, where they fail.

use crate::common;

use common::*;
use shmpipe_engine::{channel, Error, Receiver, RingStorage, Sender};
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Bound on anything that should happen promptly (a takeover, a wake-up):
/// a hang guard, not a timing requirement.
const HANG: Duration = Duration::from_secs(20);
/// How long a waiter tries for a lock whose holder is alive: long enough
/// for many liveness checks (one per 4 ms park slice).
const PATIENCE: Duration = Duration::from_millis(300);
/// The holder's message: a first fragment published before it reports,
/// the rest after it is let go.
const FIRST: &[u8] = b"first fragment of the holder's write;";
const REST: &[u8] = b" and the rest of it";

fn report(status: &mut File, tag: u8, value: u32) {
    let mut rec = [tag, 0, 0, 0, 0];
    rec[1..].copy_from_slice(&value.to_le_bytes());
    status.write_all(&rec).expect("status pipe");
}

/// The next status record; `None` at end of file.
fn next_report(status: &mut File) -> Option<(u8, u32)> {
    let mut rec = [0u8; 5];
    match status.read_exact(&mut rec) {
        Ok(()) => Some((rec[0], u32::from_le_bytes(rec[1..].try_into().unwrap()))),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => None,
        Err(e) => panic!("status pipe: {e}"),
    }
}

/// Reads records until one tagged `tag`, returning its value; a `U` record
/// (no namespace could be made) returns `None`. Records that come before it
/// are kept in `seen`, for a later call: processes report in any order.
fn expect_report(status: &mut File, tag: u8) -> Option<u32> {
    expect_report_in(status, tag, &mut Vec::new())
}

fn expect_report_in(status: &mut File, tag: u8, seen: &mut Vec<(u8, u32)>) -> Option<u32> {
    if let Some(i) = seen.iter().position(|&(t, _)| t == tag) {
        return Some(seen.remove(i).1);
    }
    loop {
        match next_report(status) {
            Some((t, v)) if t == tag => return Some(v),
            Some((b'U', errno)) => {
                let e = std::io::Error::from_raw_os_error(errno as i32);
                if std::env::var("CI").as_deref() == Ok("true") {
                    panic!("CI=true: cannot make a pid namespace: {e}");
                }
                eprintln!("skipped: cannot make a pid namespace ({e}); needs root");
                return None;
            }
            Some(other) => seen.push(other),
            None => panic!("the child went away before reporting {:?}", tag as char),
        }
    }
}

/// Takes the writer lock of the end on descriptor 3, publishes [`FIRST`]
/// as the first fragment of a write, and calls `hold` while still holding
/// the lock; then publishes [`REST`].
fn hold_lock(hold: impl FnOnce(&mut File)) {
    let mut tx = Sender::from_fd(take_fd(3)).unwrap();
    let mut status = File::from(take_fd(4));
    tx.batch(|p| {
        assert!(p.try_push(FIRST, REST.len() as u64).unwrap());
        hold(&mut status);
        assert!(p.try_push(REST, 0).unwrap());
    })
    .unwrap();
}

/// Pid 1 of a new pid namespace with its own `/proc`, holding the lock
/// until the go byte (see [`hold_until_go`]).
fn child_ns_init_hold() {
    mount_own_proc();
    hold_until_go();
}

/// A holder that reports `L` and its pid, then waits for the go byte on
/// descriptor 5 (forever, if it is killed first).
fn hold_until_go() {
    let mut go = File::from(take_fd(5));
    hold_lock(|status| {
        report(status, b'L', std::process::id());
        assert!(wait_signal(&mut go), "parent went away");
    });
}

/// A holder that reports `L` and stops itself (SIGSTOP) holding the lock.
fn child_stop_holder() {
    hold_lock(|status| {
        report(status, b'L', std::process::id());
        // SAFETY: raise only sends a signal to this process.
        unsafe { libc::raise(libc::SIGSTOP) };
    });
}

/// In the test's namespaces: makes a new pid and mount namespace, then runs
/// `inner` as the first process (pid 1) of the new pid namespace, reporting
/// its pid (as this namespace sees it) as `P`, or `U` and the errno if the
/// namespaces cannot be made.
fn child_ns_parent() {
    let inner: String = role_arg(0);
    let mut status = File::from(take_fd(4));
    // SAFETY: unshare and mount with valid, NUL-terminated arguments.
    let made = unsafe {
        libc::unshare(libc::CLONE_NEWPID | libc::CLONE_NEWNS) == 0
            && libc::mount(
                std::ptr::null(),
                c"/".as_ptr(),
                std::ptr::null(),
                libc::MS_REC | libc::MS_PRIVATE,
                std::ptr::null(),
            ) == 0
    };
    if !made {
        let errno = std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
        report(&mut status, b'U', errno as u32);
        return;
    }
    let tx = take_fd(3);
    let go = take_fd(5);
    let mut child = spawn_child(
        &inner,
        &[(tx.as_fd(), 3), (status.as_fd(), 4), (go.as_fd(), 5)],
    );
    report(&mut status, b'P', child.id());
    drop((tx, go, status));
    // Killed or not, the namespace's end is the test's business.
    let _ = child.wait();
}

/// Gives the new pid namespace its own `/proc`, as sandboxes do: there,
/// `/proc/self` and every pid are the namespace's, which differ from what
/// the test's namespace sees.
fn mount_own_proc() {
    assert_eq!(
        std::process::id(),
        1,
        "the first process of a new pid namespace"
    );
    // SAFETY: mount with valid, NUL-terminated arguments.
    let r = unsafe {
        libc::mount(
            c"proc".as_ptr(),
            c"/proc".as_ptr(),
            c"proc".as_ptr(),
            libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
            std::ptr::null(),
        )
    };
    assert_eq!(r, 0, "mount proc: {}", std::io::Error::last_os_error());
}

/// Pid 1 of the new namespace: runs a [`child_stop_holder`] (pid 2 there),
/// reports `S` once it is stopped, and on the go byte lets it continue.
fn child_ns_init_stop() {
    mount_own_proc();
    let tx = take_fd(3);
    let mut status = File::from(take_fd(4));
    let mut go = File::from(take_fd(5));
    // Reaped by the waitpid calls below (std's `wait` cannot see a stop).
    let child = spawn_child("child_stop_holder", &[(tx.as_fd(), 3), (status.as_fd(), 4)]);
    drop(tx);
    let pid = child.id() as libc::pid_t;
    std::mem::forget(child);
    let mut st = 0;
    // SAFETY: waitpid on our own child with a valid status pointer.
    let r = unsafe { libc::waitpid(pid, &mut st, libc::WUNTRACED) };
    assert!(r == pid && libc::WIFSTOPPED(st), "holder did not stop");
    report(&mut status, b'S', pid as u32);
    assert!(wait_signal(&mut go), "parent went away");
    // SAFETY: plain signal to our own child.
    unsafe { libc::kill(pid, libc::SIGCONT) };
    // SAFETY: as above.
    let r = unsafe { libc::waitpid(pid, &mut st, 0) };
    assert!(r == pid && libc::WIFEXITED(st) && libc::WEXITSTATUS(st) == CHILD_OK);
}

/// Reads one message (the caller's [`Watchdog`] guards against a hang).
fn read_message(rx: &mut Receiver, buf: &mut [u8]) -> (usize, bool) {
    let m = rx.read_message(buf).expect("read a message");
    (m.len, m.end)
}

/// Starts `ns-parent:inner` with the end of `tx` and the control pipes;
/// returns the child, the status pipe and the go pipe.
fn spawn_in_namespace(tx: &Sender, inner: &str) -> (std::process::Child, File, File) {
    let (status_r, status_w) = pipe();
    let (go_r, go_w) = pipe();
    let child = spawn_child(
        &format!("child_ns_parent:{inner}"),
        &[(tx.as_fd(), 3), (status_w.as_fd(), 4), (go_r.as_fd(), 5)],
    );
    (child, status_r, go_w)
}

/// Regression (issue 9 item 11): the lock word named its holder by pid and
/// start time as seen in the holder's own namespace, so a waiter in another
/// namespace found "no such process" and took the lock of a live, stopped
/// holder: two writers, one ring.
fn stopped_holder_in_another_pid_namespace_keeps_the_lock() {
    let _dog = Watchdog::new("stopped_holder_in_another_pid_namespace", HANG);
    let (tx, mut rx) = channel(4096).unwrap();
    let mut waiter = tx.try_clone().unwrap();
    let (child, mut status, mut go) = spawn_in_namespace(&tx, "child_ns_init_stop");
    drop(tx);
    let mut seen = Vec::new();
    if expect_report_in(&mut status, b'P', &mut seen).is_none() {
        return reap_ok(child, "child_ns_parent");
    }
    expect_report_in(&mut status, b'L', &mut seen).unwrap();
    expect_report_in(&mut status, b'S', &mut seen).unwrap();
    let owner = |s: &Sender| s.ring().control().locks.0.writer.owner();
    let holder = owner(&waiter);
    assert_ne!(holder, 0, "the stopped holder holds the writer lock");

    let r = waiter.write_until(b"mine", Some(Instant::now() + PATIENCE));
    assert!(
        matches!(r, Err(Error::TimedOut)),
        "a waiter must not overrun a live holder in another pid namespace: {r:?}"
    );
    assert_eq!(owner(&waiter), holder, "the lock changed hands");

    signal(&mut go);
    waiter
        .write_until(b"mine", Some(Instant::now() + HANG))
        .unwrap();
    let mut buf = [0u8; 256];
    let whole = [FIRST, REST].concat();
    assert_eq!(read_message(&mut rx, &mut buf), (whole.len(), true));
    assert_eq!(&buf[..whole.len()], &whole[..]);
    assert_eq!(read_message(&mut rx, &mut buf), (4, true));
    assert_eq!(&buf[..4], b"mine");
    reap_ok(child, "child_ns_parent");
}

/// A holder in another pid namespace that is SIGKILLed loses the lock at
/// once: the next writer takes it over and ends the holder's write.
fn killed_holder_in_another_pid_namespace_loses_the_lock() {
    let _dog = Watchdog::new("killed_holder_in_another_pid_namespace", HANG);
    let (tx, mut rx) = channel(4096).unwrap();
    let mut waiter = tx.try_clone().unwrap();
    let (child, mut status, _go) = spawn_in_namespace(&tx, "child_ns_init_hold");
    drop(tx);
    let mut seen = Vec::new();
    let Some(init) = expect_report_in(&mut status, b'P', &mut seen) else {
        return reap_ok(child, "child_ns_parent");
    };
    expect_report_in(&mut status, b'L', &mut seen).unwrap();
    assert_ne!(waiter.ring().control().locks.0.writer.owner(), 0);
    // SAFETY: plain signal to the namespace's first process, our
    // grandchild (alive: it holds the lock and waits for the go byte).
    assert_eq!(unsafe { libc::kill(init as libc::pid_t, libc::SIGKILL) }, 0);

    waiter
        .write_until(b"mine", Some(Instant::now() + HANG))
        .expect("the dead holder's lock is taken over");
    let mut buf = [0u8; 256];
    // The holder's write, cut where it died, then ours.
    // Cut where the holder died: the part, unfinished, then the cut.
    assert_eq!(read_message(&mut rx, &mut buf), (FIRST.len(), false));
    assert!(matches!(rx.read_message(&mut buf), Err(Error::MessageCut)));
    assert_eq!(&buf[..FIRST.len()], FIRST);
    assert_eq!(read_message(&mut rx, &mut buf), (4, true));
    reap_ok(child, "child_ns_parent");
}

/// Writes once (so this process has its slot), then forks without exec: the
/// forked child takes the lock, reports `L` and waits forever, and the
/// parent reports the child's pid as `C` and waits for the go byte.
fn child_fork_holder() {
    let mut tx = Sender::from_fd(take_fd(3)).unwrap();
    let mut status = File::from(take_fd(4));
    let mut go = File::from(take_fd(5));
    tx.write(b"parent").unwrap();
    // SAFETY: the child only uses this thread's objects and exits with
    // `_exit`; the engine's fork handlers closed its copy of the parent's
    // slot description.
    match unsafe { libc::fork() } {
        0 => {
            // Die with the parent, so a failed test leaves nothing behind.
            // SAFETY: prctl with integer arguments only.
            unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) };
            let _ = tx.batch(|p| {
                assert!(p.try_push(FIRST, REST.len() as u64).unwrap());
                report(&mut status, b'L', std::process::id());
                loop {
                    // SAFETY: pause only waits for a signal.
                    unsafe { libc::pause() };
                }
            });
            // SAFETY: leaves the forked child without running the test
            // harness's exit path.
            unsafe { libc::_exit(1) }
        }
        pid if pid > 0 => {
            report(&mut status, b'C', pid as u32);
            assert!(wait_signal(&mut go), "parent went away");
            let mut st = 0;
            // SAFETY: reaps our own (killed) child.
            unsafe { libc::waitpid(pid, &mut st, 0) };
        }
        _ => panic!("fork: {}", std::io::Error::last_os_error()),
    }
}

/// A child forked without exec names itself by its own slot: when it dies
/// holding the lock, the lock is taken over although its parent, which
/// shares its memory image and once shared its descriptors, still lives.
fn forked_child_holder_dies_alone() {
    let _dog = Watchdog::new("forked_child_holder_dies_alone", HANG);
    let (tx, mut rx) = channel(4096).unwrap();
    let mut waiter = tx.try_clone().unwrap();
    let (status_r, status_w) = pipe();
    let (go_r, mut go) = pipe();
    let child = spawn_child(
        "child_fork_holder",
        &[(tx.as_fd(), 3), (status_w.as_fd(), 4), (go_r.as_fd(), 5)],
    );
    drop((tx, status_w, go_r));
    let mut status = status_r;
    let mut seen = Vec::new();
    let forked = expect_report_in(&mut status, b'C', &mut seen).unwrap();
    expect_report_in(&mut status, b'L', &mut seen).unwrap();
    let mut buf = [0u8; 256];
    assert_eq!(read_message(&mut rx, &mut buf), (6, true));
    assert_ne!(waiter.ring().control().locks.0.writer.owner(), 0);
    // SAFETY: plain signal to our grandchild, which holds the lock.
    let killed = unsafe { libc::kill(forked as libc::pid_t, libc::SIGKILL) };
    assert_eq!(killed, 0);

    waiter
        .write_until(b"mine", Some(Instant::now() + HANG))
        .expect("the dead forked child's lock is taken over");
    // Cut where the holder died: the part, unfinished, then the cut.
    assert_eq!(read_message(&mut rx, &mut buf), (FIRST.len(), false));
    assert!(matches!(rx.read_message(&mut buf), Err(Error::MessageCut)));
    assert_eq!(read_message(&mut rx, &mut buf), (4, true));
    signal(&mut go);
    reap_ok(child, "child_fork_holder");
}

/// Takes the reader lock of the read end on descriptor 3, reports `L` and
/// stops itself holding it.
fn child_stop_reader() {
    let mut rx = Receiver::from_fd(take_fd(3)).unwrap();
    let mut status = File::from(take_fd(4));
    rx.batch(|_| {
        report(&mut status, b'L', std::process::id());
        // SAFETY: raise only sends a signal to this process.
        unsafe { libc::raise(libc::SIGSTOP) };
        Ok(())
    })
    .unwrap();
}

/// Starts `role` on `end` (descriptor 3) and returns once it holds its lock
/// and is stopped (as `/proc/PID/stat` shows).
fn stopped_holder(role: &str, end: std::os::fd::BorrowedFd<'_>) -> std::process::Child {
    let (mut status, status_w) = pipe();
    let child = spawn_child(role, &[(end, 3), (status_w.as_fd(), 4)]);
    drop(status_w);
    let pid = expect_report(&mut status, b'L').unwrap();
    assert_eq!(pid, child.id());
    while process_state(pid) != Some('T') {
        std::thread::yield_now();
    }
    child
}

/// Runs `op` on a thread, returns once that thread is parked on a futex
/// (the lock's event: the only thing it can wait for), and gives back the
/// channel on which its result will arrive.
fn blocked<R: Send + 'static>(op: impl FnOnce() -> R + Send + 'static) -> mpsc::Receiver<R> {
    let (tid_tx, tid_rx) = mpsc::channel();
    let (res_tx, res_rx) = mpsc::channel();
    std::thread::spawn(move || {
        tid_tx
            .send(rustix::thread::gettid().as_raw_nonzero().get())
            .unwrap();
        let _ = res_tx.send(op());
    });
    let tid = tid_rx.recv().unwrap();
    let wchan = format!("/proc/self/task/{tid}/wchan");
    loop {
        match std::fs::read_to_string(&wchan) {
            Ok(w) if w.contains("futex") => break,
            Ok(_) => std::thread::yield_now(),
            Err(e) => panic!("the waiter ended before it blocked ({e})"),
        }
    }
    res_rx
}

/// Issue 9 item 12: a blocking write or read whose end's lock is held by a
/// stopped process returns `TimedOut` at its deadline (the lock wait
/// honours it), and the lock stays with its holder.
fn stopped_holders_time_out_blocking_calls() {
    let _dog = Watchdog::new("stopped_holders_time_out_blocking_calls", HANG);
    let (tx, rx) = channel(4096).unwrap();
    let mut writer = tx.try_clone().unwrap();
    let holder = stopped_holder("child_stop_holder", tx.as_fd());
    let r = writer.write_until(b"mine", Some(Instant::now() + PATIENCE));
    assert!(matches!(r, Err(Error::TimedOut)), "blocked write: {r:?}");
    kill_and_reap(holder);

    let mut reader = rx.try_clone().unwrap();
    writer
        .write_until(b"queued", Some(Instant::now() + HANG))
        .unwrap();
    let holder = stopped_holder("child_stop_reader", rx.as_fd());
    let r = reader.read_until(&mut [0u8; 16], Some(Instant::now() + PATIENCE));
    assert!(matches!(r, Err(Error::TimedOut)), "blocked read: {r:?}");
    kill_and_reap(holder);
}

/// Issue 9 item 12: `disconnect` wakes a handle waiting for a lock that a
/// stopped process holds, with `Disconnected` (before: it waited for the
/// holder for good).
fn disconnect_wakes_lock_waiters() {
    let _dog = Watchdog::new("disconnect_wakes_lock_waiters", HANG);
    let (tx, rx) = channel(4096).unwrap();
    let mut writer = tx.try_clone().unwrap();
    let holder = stopped_holder("child_stop_holder", tx.as_fd());
    let write = blocked(move || writer.write(b"mine"));
    rx.end().disconnect();
    let r = write
        .recv_timeout(HANG)
        .expect("the lock waiter was not woken");
    assert!(matches!(r, Err(Error::Disconnected)), "{r:?}");
    kill_and_reap(holder);

    // The reader lock, likewise.
    let (tx, rx) = channel(4096).unwrap();
    let mut reader = rx.try_clone().unwrap();
    let holder = stopped_holder("child_stop_reader", rx.as_fd());
    let read = blocked(move || reader.read(&mut [0u8; 16]));
    tx.end().disconnect();
    let r = read
        .recv_timeout(HANG)
        .expect("the lock waiter was not woken");
    assert!(matches!(r, Err(Error::Disconnected)), "{r:?}");
    kill_and_reap(holder);
}

/// Issue 9 item 12: the peer end closing wakes a lock waiter that can no
/// longer succeed: a writer (nobody will read) and a reader once nothing is
/// left to read, both with `PeerClosed`.
fn closed_peer_wakes_lock_waiters() {
    let _dog = Watchdog::new("closed_peer_wakes_lock_waiters", HANG);
    let (tx, rx) = channel(4096).unwrap();
    let mut writer = tx.try_clone().unwrap();
    let holder = stopped_holder("child_stop_holder", tx.as_fd());
    let write = blocked(move || writer.write(b"mine"));
    drop(rx);
    let r = write
        .recv_timeout(HANG)
        .expect("the lock waiter was not woken");
    assert!(matches!(r, Err(Error::PeerClosed)), "{r:?}");
    kill_and_reap(holder);

    let (tx, rx) = channel(4096).unwrap();
    let mut reader = rx.try_clone().unwrap();
    let holder = stopped_holder("child_stop_reader", rx.as_fd());
    let read = blocked(move || reader.read(&mut [0u8; 16]));
    drop(tx);
    let r = read
        .recv_timeout(HANG)
        .expect("the lock waiter was not woken");
    assert!(matches!(r, Err(Error::PeerClosed)), "{r:?}");
    kill_and_reap(holder);
}

/// A lock word is shared memory a peer can write anything into: a word
/// that names no process slot (out of range), or a slot nobody holds, is
/// nobody's lock, and the next writer takes it over instead of waiting for
/// a holder that does not exist.
fn lock_words_naming_no_live_slot_are_taken_over() {
    use shmpipe_engine::liveness::{SLOTS, SLOT_BASE};
    let _dog = Watchdog::new("lock_words_naming_no_live_slot_are_taken_over", HANG);
    let (mut tx, mut rx) = channel(4096).unwrap();
    let mut buf = [0u8; 16];
    for (i, garbage) in [
        1,
        // Names the lock byte of the read end's role, which the read end's
        // description holds: a check that did not bound the slot number
        // would find it locked and wait for good.
        1 << 32,
        u64::MAX,
        u64::from(SLOT_BASE - 1),
        u64::from(SLOT_BASE + SLOTS),
        (7 << 32) | u64::from(SLOT_BASE + 4321), // in range, held by nobody
    ]
    .into_iter()
    .enumerate()
    {
        let lock = &tx.ring().control().locks.0.writer;
        assert!(lock.try_lock(garbage), "case {i}: the lock was free");
        tx.write_until(&[i as u8; 3], Some(Instant::now() + HANG))
            .unwrap_or_else(|e| panic!("case {i} ({garbage:#x}): {e}"));
        assert_eq!(read_message(&mut rx, &mut buf), (3, true));
        assert_eq!(&buf[..3], &[i as u8; 3]);
    }
}

/// Takes the writer lock, publishes [`FIRST`], reports `L` and exits
/// without unlocking (`_exit`: no destructor runs). The parent does not
/// reap it at once, so it stays a zombie.
fn child_exit_holder() {
    hold_lock(|status| {
        report(status, b'L', std::process::id());
        // SAFETY: ends the process at once; nothing needs to run first.
        unsafe { libc::_exit(CHILD_OK) }
    });
}

/// A holder that exited holding the lock is dead, although its pid still
/// exists (a zombie, until reaped): its descriptors, and with them its
/// slot, were released at exit. (Before, with `/proc` hidden, a zombie's
/// pid counted as alive.)
fn zombie_holder_loses_the_lock() {
    let _dog = Watchdog::new("zombie_holder_loses_the_lock", HANG);
    let (tx, mut rx) = channel(4096).unwrap();
    let mut waiter = tx.try_clone().unwrap();
    let (mut status, status_w) = pipe();
    let child = spawn_child(
        "child_exit_holder",
        &[(tx.as_fd(), 3), (status_w.as_fd(), 4)],
    );
    drop((tx, status_w));
    let pid = expect_report(&mut status, b'L').unwrap();
    while process_state(pid) != Some('Z') {
        std::thread::yield_now();
    }
    assert_ne!(waiter.ring().control().locks.0.writer.owner(), 0);
    waiter
        .write_until(b"mine", Some(Instant::now() + HANG))
        .expect("the exited holder's lock is taken over");
    let mut buf = [0u8; 256];
    // Cut where the holder died: the part, unfinished, then the cut.
    assert_eq!(read_message(&mut rx, &mut buf), (FIRST.len(), false));
    assert!(matches!(rx.read_message(&mut buf), Err(Error::MessageCut)));
    assert_eq!(read_message(&mut rx, &mut buf), (4, true));
    reap_ok(child, "child_exit_holder");
}

common::tests! {
    tests: [
        stopped_holder_in_another_pid_namespace_keeps_the_lock,
        killed_holder_in_another_pid_namespace_loses_the_lock,
        forked_child_holder_dies_alone,
        stopped_holders_time_out_blocking_calls,
        disconnect_wakes_lock_waiters,
        closed_peer_wakes_lock_waiters,
        lock_words_naming_no_live_slot_are_taken_over,
        zombie_holder_loses_the_lock,
    ],
    children: [
        child_ns_parent,
        child_ns_init_stop,
        child_ns_init_hold,
        child_stop_holder,
        child_stop_reader,
        child_fork_holder,
        child_exit_holder,
    ],
}
