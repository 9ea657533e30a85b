//! End-to-end tests of the pipe subcommands of the `shmpipe` binary: real
//! `serve` processes talked to by real `call`, `send` and `cat` processes
//! (and by this test process through the library), `list`/`info` checked
//! against what is known to be there, and errors as one line.
//!
//! Nothing here depends on timing: a server is waited for by asking
//! `shmpipe info` until it answers, and every wait is bounded only to turn
//! a hang into a failure.

use crate::common;

use common::{bin, drain, full, wait_bounded, HANG};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::process::{Child, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// `shmpipe args` with `input` on its standard input (none: empty).
fn run(args: &[&str], input: &[u8]) -> Output {
    let mut child = bin()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run shmpipe");
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let out = drain(child.stdout.take().unwrap());
    let err = drain(child.stderr.take().unwrap());
    let output = wait_bounded(child, out, err, &format!("shmpipe {args:?}"));
    writer.join().unwrap().expect("write stdin");
    output
}

fn shmpipe(args: &[&str]) -> Output {
    run(args, b"")
}

fn shmpipe_with_input(args: &[&str], input: &[u8]) -> Output {
    run(args, input)
}

/// A short pipe name no other test uses (machine-wide).
fn unique(tag: &str) -> String {
    format!("cli-{tag}-{}", std::process::id())
}

fn tmp_file(tag: &str, content: &[u8]) -> PathBuf {
    let p = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("cli-pipes-{tag}-{}", std::process::id()));
    std::fs::write(&p, content).unwrap();
    p
}

/// Bytes that show where they come from if they come back wrong.
fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| b'a' + (i % 23) as u8).collect()
}

#[track_caller]
fn assert_ok(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what}: {}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A `shmpipe serve` process, killed when dropped. Its output is drained
/// all along.
struct Server {
    child: Option<Child>,
    out: Option<mpsc::Receiver<Vec<u8>>>,
    err: Option<mpsc::Receiver<Vec<u8>>>,
    name: String,
}

impl Server {
    /// Starts `shmpipe serve NAME args...` and waits until it answers.
    fn start(name: &str, args: &[&str]) -> Server {
        let mut child = bin()
            .arg("serve")
            .arg(name)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start shmpipe serve");
        let out = drain(child.stdout.take().unwrap());
        let err = drain(child.stderr.take().unwrap());
        let mut s = Server {
            child: Some(child),
            out: Some(out),
            err: Some(err),
            name: name.to_owned(),
        };
        s.wait_up();
        s
    }

    fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    fn wait_up(&mut self) {
        let start = Instant::now();
        loop {
            if shmpipe(&["info", &self.name]).status.success() {
                return;
            }
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                let err = self.err.take().unwrap().recv_timeout(HANG);
                panic!(
                    "serve {} exited ({status}): {}",
                    self.name,
                    String::from_utf8_lossy(&err.unwrap_or_default())
                );
            }
            assert!(start.elapsed() < HANG, "serve {} never came up", self.name);
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits for a `--once` server to exit by itself.
    fn finish(mut self) -> Output {
        let what = format!("serve {} --once", self.name);
        wait_bounded(
            self.child.take().unwrap(),
            self.out.take().unwrap(),
            self.err.take().unwrap(),
            &what,
        )
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

#[test]
fn serve_echo_answers_call() {
    let name = unique("echo");
    let _server = Server::start(&name, &["--message", "--echo"]);
    let out = shmpipe(&["call", &name, "ping"]);
    assert_ok(&out, "call");
    assert_eq!(out.stdout, b"ping");
    // The full name works too, and so does a request from standard input
    // longer than the server's read buffer: it comes back as one message.
    let big = pattern(200_000);
    let out = shmpipe_with_input(&["call", &full(&name), "-", "--timeout", "20000"], &big);
    assert_ok(&out, "call with stdin");
    assert!(out.stdout == big, "long reply differs");
    // Calls from several processes at once each get their own answer.
    let calls: Vec<_> = (0..4)
        .map(|k| {
            let name = name.clone();
            std::thread::spawn(move || (k, shmpipe(&["call", &name, &format!("call {k}")])))
        })
        .collect();
    for c in calls {
        let (k, out) = c.join().unwrap();
        assert_ok(&out, "concurrent call");
        assert_eq!(out.stdout, format!("call {k}").as_bytes());
    }
}

#[test]
fn serve_echo_on_a_byte_pipe_echoes_bytes() {
    let name = unique("echo-bytes");
    let _server = Server::start(&name, &["--echo", "--instances", "1"]);
    // `call` needs a message pipe: the error names the reason.
    let out = shmpipe(&["call", &name, "x"]);
    assert_eq!(out.status.code(), Some(1));
    // Through the library: bytes in, the same bytes out.
    use shmpipe::named::ClientOptions;
    let mut client = ClientOptions::new().open(&full(&name)).unwrap();
    let data = pattern(100_000);
    let writer = {
        let c = client.try_clone().unwrap();
        let data = data.clone();
        std::thread::spawn(move || (&c).write_all(&data))
    };
    let mut back = vec![0u8; data.len()];
    client.read_exact(&mut back).unwrap();
    writer.join().unwrap().unwrap();
    assert!(back == data, "echoed bytes differ");
}

#[test]
fn serve_file_feeds_cat() {
    let content = pattern(50_000); // more than the quota: flow control at work
    let file = tmp_file("feed", &content);
    let name = unique("file");
    let server = Server::start(
        &name,
        &["--file", file.to_str().unwrap(), "--instances", "2"],
    );
    // An instance is reused (disconnect, connect) for client after client.
    for round in 0..3 {
        let out = shmpipe(&["cat", &name]);
        assert_ok(&out, "cat");
        assert!(out.stdout == content, "round {round}: content differs");
    }
    drop(server);

    // Unlimited instances, one client, then the server exits.
    let name = unique("file-once");
    let server = Server::start(&name, &["--file", file.to_str().unwrap(), "--once"]);
    let out = shmpipe(&["cat", &name]);
    assert_ok(&out, "cat");
    assert!(out.stdout == content, "content differs");
    let out = server.finish();
    assert_ok(&out, "serve --once");
    std::fs::remove_file(file).ok();
}

#[test]
fn send_reaches_the_server() {
    let name = unique("sink");
    let server = Server::start(&name, &["--once"]);
    let out = shmpipe(&["send", &name, "hello, server"]);
    assert_ok(&out, "send");
    let out = server.finish();
    assert_ok(&out, "serve --once");
    assert_eq!(out.stdout, b"hello, server");

    // Standard input, to a message pipe with one instance.
    let name = unique("sink-message");
    let server = Server::start(&name, &["--once", "--message", "--instances", "1"]);
    let data = pattern(300_000);
    let out = shmpipe_with_input(&["send", &name, "-"], &data);
    assert_ok(&out, "send from stdin");
    let out = server.finish();
    assert_ok(&out, "serve --once");
    assert!(out.stdout == data, "received data differs");
}

/// The value after `label:` in `shmpipe info` output.
fn field<'a>(info: &'a str, label: &str) -> &'a str {
    info.lines()
        .find_map(|l| l.strip_prefix(label)?.strip_prefix(':'))
        .unwrap_or_else(|| panic!("no {label:?} in:\n{info}"))
        .trim()
}

fn info_text(name: &str) -> String {
    let out = shmpipe(&["info", name]);
    assert_ok(&out, "info");
    String::from_utf8(out.stdout).unwrap()
}

/// The row of `shmpipe list` for `name` (the name is the last column).
fn list_row(name: &str) -> Option<Vec<String>> {
    let out = shmpipe(&["list"]);
    assert_ok(&out, "list");
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.starts_with("SERVER"), "no header:\n{text}");
    text.lines()
        .find(|l| l.ends_with(&format!(" {}", full(name))))
        .map(|l| l.split_whitespace().map(str::to_owned).collect())
}

#[test]
fn list_and_info_show_served_pipes() {
    let content = pattern(100);
    let file = tmp_file("listed", &content);
    let name = unique("listed");
    let server = Server::start(
        &name,
        &["--file", file.to_str().unwrap(), "--instances", "2"],
    );
    let info = info_text(&name);
    assert_eq!(field(&info, "name"), full(&name));
    assert_eq!(field(&info, "type"), "byte, duplex");
    assert_eq!(field(&info, "max instances"), "2");
    assert_eq!(field(&info, "server pid"), server.pid().to_string());
    assert!(
        field(&info, "instances").starts_with("2 (2 listening, 0 connected"),
        "{info}"
    );
    let row = list_row(&name).expect("listed");
    let me = std::process::id().to_string();
    let server_pid = server.pid().to_string();
    assert_eq!(
        row[..6],
        [server_pid.as_str(), "byte", "duplex", "2/0/2", "-", "0/0"]
    );

    // This process connects and reads nothing yet: the file waits in the
    // pipe, and both views show the client and the queued bytes.
    use shmpipe::named::ClientOptions;
    let mut client = ClientOptions::new().open(&full(&name)).unwrap();
    let start = Instant::now();
    let info = loop {
        let info = info_text(&name);
        if field(&info, "queued") == "100 bytes out, 0 bytes in" {
            break info;
        }
        assert!(start.elapsed() < HANG, "file never queued:\n{info}");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(
        field(&info, "instances").starts_with("2 (1 listening, 1 connected"),
        "{info}"
    );
    let instance = info
        .lines()
        .find(|l| l.contains(" connected "))
        .expect("a connected instance row");
    let cells: Vec<&str> = instance.split_whitespace().collect();
    assert_eq!(
        cells[1..],
        ["connected", "byte", "blocking", &me, "100", "0"]
    );
    let row = list_row(&name).expect("listed");
    assert_eq!(
        row[..6],
        [
            server_pid.as_str(),
            "byte",
            "duplex",
            "1/1/2",
            me.as_str(),
            "100/0"
        ]
    );
    let mut got = vec![0u8; content.len()];
    client.read_exact(&mut got).unwrap();
    assert_eq!(got, content);
    drop(client);

    // A message pipe with one instance.
    let messages = unique("listed-message");
    let _m = Server::start(&messages, &["--message", "--echo", "--instances", "1"]);
    let row = list_row(&messages).expect("message pipe listed");
    assert_eq!(row[1..4], ["message", "duplex", "1/0/1"]);

    // A pipe whose server is gone is not listed.
    drop(server);
    let start = Instant::now();
    while list_row(&name).is_some() {
        assert!(start.elapsed() < HANG, "{name} still listed");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::fs::remove_file(file).ok();
}

#[test]
fn list_watch_refreshes() {
    let name = unique("watched");
    let _server = Server::start(&name, &[]);
    let mut watch = bin()
        .args(["list", "--watch"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = watch.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let (mut refreshes, mut seen) = (0, false);
    let start = Instant::now();
    while refreshes < 2 || !seen {
        let left = HANG.saturating_sub(start.elapsed());
        let Ok(line) = rx.recv_timeout(left) else {
            let _ = watch.kill();
            let _ = watch.wait();
            panic!("list --watch: {refreshes} refreshes, pipe seen: {seen}");
        };
        refreshes += usize::from(line.contains("refreshed every second"));
        seen |= line.ends_with(&full(&name));
    }
    watch.kill().unwrap();
    watch.wait().unwrap();
}

#[track_caller]
fn assert_error_line(out: &Output, ends_with: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "stderr: {stderr}");
    assert_eq!(stderr.lines().count(), 1, "not one line: {stderr}");
    let line = stderr.trim_end();
    assert!(
        line.starts_with("shmpipe: ") && line.ends_with(ends_with),
        "{line:?} does not end with {ends_with:?}"
    );
}

#[test]
fn errors_are_one_line_with_the_windows_name_and_code() {
    let missing = unique("missing");
    for args in [
        vec!["call", &missing, "x"],
        vec!["send", &missing, "x"],
        vec!["cat", &missing],
        vec!["info", &missing],
    ] {
        let out = shmpipe(&args);
        assert_error_line(&out, ": ERROR_FILE_NOT_FOUND (2)");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(&full(&missing)), "{args:?}: {stderr}");
    }
    assert_error_line(
        &shmpipe(&["call", r"\\faraway\pipe\x", "x"]),
        ": ERROR_BAD_NETPATH (53)",
    );
    assert_error_line(
        &shmpipe(&["serve", &unique("zero"), "--instances", "0"]),
        ": ERROR_INVALID_PARAMETER (87)",
    );
    // Not a pipe error: the system's message.
    let out = shmpipe(&["serve", &unique("nofile"), "--file", "/nonexistent/x"]);
    assert_error_line(&out, "(os error 2)");
    // A name whose only instance is served by another process cannot get
    // a second one (with more allowed, the second server would join it).
    let name = unique("taken");
    let _server = Server::start(&name, &["--instances", "1"]);
    assert_error_line(&shmpipe(&["serve", &name]), ": ERROR_PIPE_BUSY (231)");
}
