//! Helpers shared by the test binaries: hang guards for operations that
//! must (or must not) return, re-executing the test binary as a child
//! process that plays one role, and gates for tests that need root or a
//! namespace; [`named`] adds what the named-pipe tests need.
//!
//! # How to write a cross-process test
//!
//! A child is a plain function named `child_*`, not a test and with no role check, that the
//! parent test starts with [`child_command`]`("child_x")` (or
//! `named::Kid::spawn("child_x", ..)`); it reports success by returning or
//! calling [`child_done`] (exit status [`CHILD_OK`]), and a panic fails it.
//! The test file declares itself `harness = false` in `pipe-api/Cargo.toml`
//! (`[[test]] name = "file" harness = false`) and ends with
//!
//! ```ignore
//! common::main! {
//!     tests: [some_test, another_test],
//!     children: [child_x],
//! }
//! ```
//!
//! listing every test (they keep their doc comments but lose `#[test]`) and
//! every child; one left out is dead code, which clippy rejects. Children
//! are not tests, so they are not counted. A binary of several modules
//! (`tests/<bin>/main.rs` with `#[path = "../common/mod.rs"] mod common;`,
//! its modules beside it) ends each module with `common::tests! { tests:
//! [..], children: [..] }` and its `main.rs` with `common::main! { modules:
//! [..] }`; to add a test to one of these, add it to its module's list. Converting an old-style file:
//! drop `#[test]` and the `if !is_child(..) { return; }` guard of each
//! child, drop `#[test]` of each test, write `child_command("child_x")`
//! for `child_command("child_x", "child_x")` (`is_child` and `role` are
//! gone), add the `main!` and the `[[test]]` entry. Details in [`harness`].
//!
//! A test that needs root, a namespace or a tool starts with
//! `if !require(cond, "test_name", "why") { return; }`: it skips outside CI
//! and fails under `CI=true`.
//!
//! To act once another thread (or a child) waits, wait until it is seen
//! waiting: [`Pending::assert_pending`] / [`Pending::settle`] for an
//! operation on its own thread, [`wait_until_blocked`] with a tid from
//! [`gettid`], [`wait_until_process_blocked`] for a child; never a sleep.
//!
//! Every binary uses a different subset, hence the `dead_code` allowance.
#![allow(dead_code)]

#[path = "../../../engine/tests/common/harness.rs"]
pub mod harness;
pub mod named;

#[allow(unused_imports)] // Each binary uses its own subset.
pub use harness::{
    blocked_unless, gettid, is_root, process_state, require, stop_process, wait_until_blocked,
    wait_until_process_blocked, wait_until_spinning, wait_until_threads_asleep, Task, CHILD_OK,
    ROLE_ENV,
};
#[allow(unused_imports)] // Binaries without children have no `main!`.
pub(crate) use harness::{main, tests};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

/// How long an operation that must finish may take before the test calls it
/// a hang. Generous: it only turns a hang into a failure, it never measures
/// speed.
pub const HANG: Duration = Duration::from_secs(20);

/// Runs `f` on a thread and returns its result; fails the test if it does
/// not return within [`HANG`] (the thread is left behind, blocked).
pub fn within<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(HANG) {
        Ok(v) => v,
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("{what}: did not return within {HANG:?}"),
        Err(mpsc::RecvTimeoutError::Disconnected) => panic!("{what}: panicked"),
    }
}

/// An operation running on its own thread, whose completion the test
/// observes without timing assumptions.
pub struct Pending<T> {
    rx: mpsc::Receiver<T>,
    what: String,
    tid: i32,
    returned: Arc<AtomicBool>,
}

impl<T: Send + 'static> Pending<T> {
    /// Starts `f` on a new thread.
    pub fn start(what: &str, f: impl FnOnce() -> T + Send + 'static) -> Pending<T> {
        let (tx, rx) = mpsc::channel();
        let (tid_tx, tid_rx) = mpsc::channel();
        let returned = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&returned);
        std::thread::spawn(move || {
            let _ = tid_tx.send(gettid());
            let v = f();
            flag.store(true, Ordering::Release);
            let _ = tx.send(v);
        });
        Pending {
            rx,
            what: what.to_owned(),
            tid: tid_rx.recv().expect("the operation's thread started"),
            returned,
        }
    }

    /// For an operation that may either wait or return: waits until it
    /// sleeps in the kernel (as in [`Pending::assert_pending`]) or has
    /// returned; `true` if it sleeps.
    pub fn settle(&self) -> bool {
        blocked_unless(Task::Thread(self.tid), "", || {
            self.returned.load(Ordering::Acquire)
        })
    }

    /// Asserts that the operation has not returned: waits until its thread
    /// sleeps in the kernel (a park, or the engine's futex wait after its
    /// spin) on two looks in a row, then checks it did not return. Fails as
    /// soon as the operation returns instead. No time is given to return
    /// wrongly after going to sleep: a wrong implementation returns instead
    /// of sleeping.
    #[track_caller]
    pub fn assert_pending(&self, why: &str) {
        let mut early = Ok(());
        let blocked = blocked_unless(Task::Thread(self.tid), "", || {
            early = self.check_pending(why);
            early.is_err()
        });
        assert!(blocked, "{}", early.unwrap_err());
    }

    fn check_pending(&self, why: &str) -> Result<(), String> {
        match self.rx.try_recv() {
            Err(mpsc::TryRecvError::Empty) => Ok(()),
            Err(mpsc::TryRecvError::Disconnected) => {
                Err(format!("{}: thread died ({why})", self.what))
            }
            Ok(_) => Err(format!("{} returned too early: {why}", self.what)),
        }
    }

    /// Asserts that the operation has not returned, without waiting.
    #[track_caller]
    pub fn assert_pending_now(&self, why: &str) {
        if let Err(msg) = self.check_pending(why) {
            panic!("{msg}");
        }
    }

    /// Waits for the result; fails the test on a hang.
    #[track_caller]
    pub fn finish(self) -> T {
        match self.rx.recv_timeout(HANG) {
            Ok(v) => v,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                panic!("{}: did not return within {HANG:?}", self.what)
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => panic!("{}: panicked", self.what),
        }
    }

    /// The result if the operation has returned by now.
    pub fn try_finish(&self) -> Option<T> {
        self.rx.try_recv().ok()
    }
}

/// Environment variable carrying an inheritance token to a child.
pub const TOKEN_ENV: &str = "SHMPIPE_TEST_TOKEN";

/// A command that re-runs this test binary as the child `role` (a child
/// function listed in the binary's [`main!`]). Output is captured (stdout
/// to null, stderr piped) so the child's chatter does not clutter the
/// parent's.
pub fn child_command(role: &str) -> Command {
    let exe = std::env::current_exe().expect("test binary path");
    let mut cmd = Command::new(exe);
    cmd.env(ROLE_ENV, role)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    cmd
}

/// In a child: reports success to the parent (see [`CHILD_OK`]).
pub fn child_done() -> ! {
    std::process::exit(CHILD_OK)
}

/// Asserts that a child ran its role successfully; `stderr` is shown on
/// failure.
pub fn assert_child_ok(status: ExitStatus, stderr: &[u8]) {
    assert_eq!(
        status.code(),
        Some(CHILD_OK),
        "child failed ({status}); its stderr:\n{}",
        String::from_utf8_lossy(stderr)
    );
}

/// Waits for `child` (failing the test on a hang) and returns its status
/// and captured stderr.
pub fn wait_child(child: std::process::Child) -> (ExitStatus, Vec<u8>) {
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(HANG) {
        Ok(out) => {
            let out = out.expect("wait for child");
            (out.status, out.stderr)
        }
        Err(_) => {
            // Do not leave a stuck child behind.
            if let Some(p) = rustix::process::Pid::from_raw(pid as i32) {
                let _ = rustix::process::kill_process(p, rustix::process::Signal::KILL);
            }
            panic!("child {pid} did not exit within {HANG:?}")
        }
    }
}

/// A deterministic byte pattern that does not repeat with any short period,
/// so a lost, duplicated or reordered chunk shows up in a comparison.
pub fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(31).wrapping_add(u32::from(seed)) as u8 ^ (i >> 8) as u8)
        .collect()
}

/// Whether SIGPIPE is ignored, from the kernel's own view of this process
/// (`SigIgn` in `/proc/self/status`).
pub fn sigpipe_ignored() -> bool {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let mask = status
        .lines()
        .find_map(|l| l.strip_prefix("SigIgn:"))
        .map(|m| u64::from_str_radix(m.trim(), 16).unwrap())
        .unwrap();
    mask & (1 << (libc::SIGPIPE - 1)) != 0
}
