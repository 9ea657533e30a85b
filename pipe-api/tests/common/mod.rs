//! Helpers shared by the test binaries: hang guards for operations that
//! must (or must not) return, and re-executing the test binary as a child
//! process that plays one role; [`named`] adds what the named-pipe tests
//! need.
//!
//! Every binary uses a different subset, hence the `dead_code` allowance.
#![allow(dead_code)]

pub mod named;

use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// How long an operation that must finish may take before the test calls it
/// a hang. Generous: it only turns a hang into a failure, it never measures
/// speed.
pub const HANG: Duration = Duration::from_secs(20);

/// How long a "still pending" check waits before looking. A correct
/// implementation can never fail such a check; a wrong one is caught as soon
/// as it returns early, which it does well within this time.
pub const SETTLE: Duration = Duration::from_millis(200);

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
}

impl<T: Send + 'static> Pending<T> {
    /// Starts `f` on a new thread.
    pub fn start(what: &str, f: impl FnOnce() -> T + Send + 'static) -> Pending<T> {
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(f());
        });
        Pending {
            rx,
            what: what.to_owned(),
        }
    }

    /// Asserts that the operation has not returned, after giving it
    /// [`SETTLE`] to do so wrongly.
    #[track_caller]
    pub fn assert_pending(&self, why: &str) {
        std::thread::sleep(SETTLE);
        self.assert_pending_now(why);
    }

    /// Asserts that the operation has not returned, without waiting.
    #[track_caller]
    pub fn assert_pending_now(&self, why: &str) {
        match self.rx.try_recv() {
            Err(mpsc::TryRecvError::Empty) => {}
            Err(mpsc::TryRecvError::Disconnected) => {
                panic!("{}: thread died ({why})", self.what)
            }
            Ok(_) => panic!("{} returned too early: {why}", self.what),
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

/// Environment variable naming the role a re-executed test binary plays.
pub const ROLE_ENV: &str = "SHMPIPE_TEST_ROLE";
/// Environment variable carrying an inheritance token to a child.
pub const TOKEN_ENV: &str = "SHMPIPE_TEST_TOKEN";
/// Exit status of a child that ran its role to the end. A child test that
/// was renamed (and so silently not run by `--exact`) exits with 0, a
/// failing one with 101: neither passes for success.
pub const CHILD_OK: i32 = 42;

/// A command that re-runs this test binary, running only the test `name`
/// with [`ROLE_ENV`] = `role`. Output is captured (stdout to null, stderr
/// piped) so the child's harness chatter does not clutter the parent's.
pub fn child_command(name: &str, role: &str) -> Command {
    let exe = std::env::current_exe().expect("test binary path");
    let mut cmd = Command::new(exe);
    cmd.args(["--exact", name, "--nocapture", "--test-threads=1"])
        .env(ROLE_ENV, role)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    cmd
}

/// In a child test: the role this process was started for, or `None` when
/// the test runs as part of the ordinary suite (it then does nothing).
pub fn role() -> Option<String> {
    std::env::var(ROLE_ENV).ok()
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
