//! What the `shmpipe` command's test binaries share: running the binary
//! with a bound on how long it may take, and draining its output so that a
//! child blocked on a full pipe never stalls a test.
//!
//! Every binary uses a different subset, hence the `dead_code` allowance.
#![allow(dead_code)]

use std::io::Read;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Bound on anything that must happen: generous, as the machine is shared.
pub const HANG: Duration = Duration::from_secs(30);

/// The `shmpipe` binary under test.
pub fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_shmpipe"))
}

/// Reads `from` to the end on a thread of its own (a child blocked on a
/// full output pipe would never finish).
pub fn drain(mut from: impl Read + Send + 'static) -> mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = from.read_to_end(&mut v);
        let _ = tx.send(v);
    });
    rx
}

/// Waits for `child` (whose stdout and stderr are being drained into
/// `out` and `err`) to exit; kills it and fails the test after [`HANG`].
pub fn wait_bounded(
    mut child: Child,
    out: mpsc::Receiver<Vec<u8>>,
    err: mpsc::Receiver<Vec<u8>>,
    what: &str,
) -> Output {
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > HANG {
            let _ = child.kill();
            let _ = child.wait();
            let err = err.recv_timeout(HANG).unwrap_or_default();
            panic!(
                "{what} did not exit within {HANG:?}; stderr: {}",
                String::from_utf8_lossy(&err)
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Output {
        status,
        stdout: out.recv_timeout(HANG).expect("stdout drained"),
        stderr: err.recv_timeout(HANG).expect("stderr drained"),
    }
}

/// Runs `shmpipe args` to its end with no standard input, killing it and
/// failing after [`HANG`].
pub fn run_without_input(args: &[&str]) -> Output {
    let mut child = bin()
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run shmpipe");
    let out = drain(child.stdout.take().unwrap());
    let err = drain(child.stderr.take().unwrap());
    wait_bounded(child, out, err, &format!("shmpipe {args:?}"))
}

/// The full form of pipe name `name`.
pub fn full(name: &str) -> String {
    format!(r"\\.\pipe\{name}")
}
