//! The `shmpipe` command's errors name the cause and the fix: a `call` to
//! the byte pipe `serve` makes without `--message` (the README's first
//! shell lines, as a newcomer types them), a name nothing serves, every
//! instance busy, a bad `--instances`. Real `serve`, `call`, `send` and
//! `cat` processes; the README's corrected lines are checked to work.
//!
//! Nothing here depends on timing: a server is waited for by asking
//! `shmpipe info` until it answers, an instance is taken by this process
//! (open returns once the instance is claimed), and every wait is bounded
//! only to turn a hang into a failure.

use crate::common;

use common::{bin, full, run_without_input as shmpipe, HANG};
use std::process::{Child, Output, Stdio};
use std::time::{Duration, Instant};

/// A short pipe name no other test uses (machine-wide).
fn unique(tag: &str) -> String {
    format!("cli-err-{tag}-{}", std::process::id())
}

/// A `shmpipe serve` process, killed when dropped.
struct Server(Child);

impl Server {
    /// Starts `shmpipe serve NAME args...` and waits until it answers.
    fn start(name: &str, args: &[&str]) -> Server {
        let child = bin()
            .arg("serve")
            .arg(name)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start shmpipe serve");
        let mut s = Server(child);
        let start = Instant::now();
        while !shmpipe(&["info", name]).status.success() {
            if let Some(status) = s.0.try_wait().unwrap() {
                panic!("serve {name} exited: {status}");
            }
            assert!(start.elapsed() < HANG, "serve {name} never came up");
            std::thread::sleep(Duration::from_millis(20));
        }
        s
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The one error line of a failed `shmpipe` (exit status 1).
#[track_caller]
fn error_line(out: &Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "stderr: {stderr}");
    assert_eq!(stderr.lines().count(), 1, "not one line: {stderr}");
    stderr.trim_end().to_owned()
}

#[test]
fn call_on_a_byte_pipe_says_it_needs_a_message_pipe_and_how_to_serve_one() {
    // The README's lines as they were: `serve NAME --echo` makes a byte pipe.
    let name = unique("byte");
    let server = Server::start(&name, &["--echo"]);
    let line = error_line(&shmpipe(&["call", &name, "hello"]));
    assert_eq!(
        line,
        format!(
            "shmpipe: cannot call {full} ({full} is a byte pipe; `call` needs a message \
             pipe: `shmpipe serve {name} --message`): ERROR_INVALID_PARAMETER (87)",
            full = full(&name)
        )
    );
    drop(server);
    // The fix it names, as the README now says it: works as written.
    let name = unique("message");
    let _server = Server::start(&name, &["--message", "--echo"]);
    let out = shmpipe(&["call", &name, "hello"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.stdout, b"hello");
}

#[test]
fn a_name_nothing_serves_says_how_to_serve_it() {
    let name = unique("missing");
    let line = error_line(&shmpipe(&["call", &name, "x"]));
    assert!(
        line.contains(&format!(
            "nothing serves {}; start a message-pipe server, e.g. `shmpipe serve {name} \
             --message --echo`",
            full(&name)
        )),
        "{line}"
    );
    assert!(line.ends_with(": ERROR_FILE_NOT_FOUND (2)"), "{line}");
    for cmd in [vec!["send", &name, "x"], vec!["cat", &name]] {
        let line = error_line(&shmpipe(&cmd));
        assert!(
            line.contains(&format!("start a server: `shmpipe serve {name}`")),
            "{cmd:?}: {line}"
        );
        assert!(line.ends_with(": ERROR_FILE_NOT_FOUND (2)"), "{line}");
    }
}

#[test]
fn busy_instances_and_bad_options_name_the_flag_that_helps() {
    let line = error_line(&shmpipe(&["serve", &unique("zero"), "--instances", "0"]));
    assert!(
        line.contains("--instances takes 1 to 255") && line.ends_with("(87)"),
        "{line}"
    );
    // One instance, taken by this process: a client cannot get it, and a
    // second server cannot add one.
    let name = unique("busy");
    let _server = Server::start(&name, &["--instances", "1"]);
    let _held = shmpipe::named::ClientOptions::new()
        .open(&full(&name))
        .expect("take the only instance");
    let line = error_line(&shmpipe(&["send", &name, "x", "--timeout", "0"]));
    assert!(
        line.contains("is busy with another client; wait longer (--timeout MS)")
            && line.ends_with(": ERROR_PIPE_BUSY (231)"),
        "{line}"
    );
    let line = error_line(&shmpipe(&["serve", &name]));
    assert!(
        line.contains("its --instances allows; stop it, or serve another name")
            && line.ends_with(": ERROR_PIPE_BUSY (231)"),
        "{line}"
    );
    let line = error_line(&shmpipe(&["call", r"\\faraway\pipe\x", "x"]));
    assert!(line.contains("pipes are local only"), "{line}");
}
