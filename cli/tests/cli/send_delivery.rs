//! `shmpipe send` exits with status 0 only when the server read everything
//! it sent (issue 9, item 7): a server that goes away without reading makes
//! it fail, and one that reads lets it succeed. The server is this test
//! process, through the library; `send` is the real binary.

use shmpipe::named::{NamedPipeServer, ServerOptions};
use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Bound on anything that must happen: generous, as the machine is shared.
const HANG: Duration = Duration::from_secs(30);

fn name(tag: &str) -> String {
    format!(r"\\.\pipe\shmpipe-cli-send-{tag}-{}", std::process::id())
}

/// Starts `shmpipe send NAME DATA`.
fn send(name: &str, data: &str) -> Child {
    Command::new(env!("CARGO_BIN_EXE_shmpipe"))
        .args(["send", name, data])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits until `n` bytes sent by the client are queued for `server`.
fn wait_queued(server: &NamedPipeServer, n: u64) {
    let start = Instant::now();
    while server.peek(None).map_or(0, |p| p.total_available) != n {
        assert!(start.elapsed() < HANG, "the client's data never arrived");
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Waits for `child` (bounded) and returns its exit code and stderr.
fn finish(mut child: Child) -> (Option<i32>, String) {
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if start.elapsed() > HANG {
            let _ = child.kill();
            let _ = child.wait();
            panic!("shmpipe send did not exit within {HANG:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    (status.code(), err)
}

#[test]
fn send_fails_when_the_server_leaves_without_reading() {
    let name = name("unread");
    let server = ServerOptions::new().create(&name).unwrap();
    let child = send(&name, "hello");
    wait_queued(&server, 5);
    drop(server);
    let (code, err) = finish(child);
    assert_eq!(code, Some(1), "send said delivered; stderr: {err}");
    assert!(err.contains("did not read everything"), "stderr: {err}");
}

#[test]
fn send_succeeds_when_the_server_read_everything() {
    let name = name("read");
    let server = ServerOptions::new().create(&name).unwrap();
    let child = send(&name, "hello");
    wait_queued(&server, 5);
    let mut buf = [0u8; 5];
    assert_eq!(server.recv_msg(&mut buf).unwrap().len, 5);
    assert_eq!(&buf, b"hello");
    drop(server);
    let (code, err) = finish(child);
    assert_eq!(code, Some(0), "stderr: {err}");
}
