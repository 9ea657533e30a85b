//! A message whose writer is SIGKILLed part-way (issue 9, item 6) is never
//! reported whole: in message-read mode the reader gets the part with
//! `complete == false`, and the next read fails (`BrokenPipe` when no writer
//! is left, `OperationAborted` when a duplicate of the writing end lives
//! on, which then goes on with its next message). A caller that loops while
//! `complete == false` (Windows' MoreData) thus gets the error, never a
//! later message glued on. In byte-read mode, and on byte pipes, the reader
//! gets exactly the bytes that arrived, then the end of the pipe.
//!
//! A nonblocking message read (item 10) never waits and never consumes bytes
//! it does not return: with the writer stopped (SIGSTOP) mid-message it
//! returns the part at once, and with the writer killed it returns the part
//! instead of dropping it in an error.
//!
//! The writers are this test binary run again (`child_*` entry points, see
//! [`common::named::Kid`]); they write one message larger than the ring and
//! are killed while it is blocked on a full ring.

use crate::common;

use common::named::{assert_kind, env, say, unique_name, Kid};
use common::{child_command, pattern, within, HANG, TOKEN_ENV};
use shmpipe::named::{ClientOptions, MsgRead, NamedPipeClient, NamedPipeServer, ServerOptions};
use shmpipe::{CommandExt as _, ErrorKind, PipeBuilder, PipeType, PipeWriter, ReadMode};
use std::io::{self, Read as _};
use std::os::unix::net::{UnixListener, UnixStream};
use std::time::Instant;

const NAME_ENV: &str = "SHMPIPE_CUT_TEST_NAME";
const SOCK_ENV: &str = "SHMPIPE_CUT_TEST_SOCK";
/// Larger than any ring these tests make (64 KiB): the writer blocks with
/// part of it published.
const BIG: usize = 256 * 1024;
/// Published bytes that prove the writer is blocked mid-message.
const PART: u64 = 32 * 1024;

/// Child: a client (opened by name, or a duplicate received from the parent
/// over a Unix socket) that writes one `BIG` message and is killed while it
/// waits for room.
fn child_big_message() {
    let client = match std::env::var(SOCK_ENV) {
        Ok(path) => NamedPipeClient::recv_from(&UnixStream::connect(path).unwrap()).unwrap(),
        Err(_) => ClientOptions::new().open(&env(NAME_ENV)).unwrap(),
    };
    say("writing");
    let r = client.send_msg(&pattern(BIG, 1));
    panic!("the parent kills us before the message is read: {r:?}");
}

/// Child: writes one `BIG` write to an inherited anonymous write end.
fn child_big_write() {
    let w = PipeWriter::from_inherited(&env(TOKEN_ENV)).unwrap();
    say("writing");
    let r = w
        .try_clone()
        .and_then(|mut w| io::Write::write(&mut w, &pattern(BIG, 1)));
    panic!("the parent kills us before the write is read: {r:?}");
}

/// A message server, reading in `mode`.
fn server(name: &str, mode: ReadMode) -> NamedPipeServer {
    ServerOptions::new()
        .pipe_type(PipeType::Message)
        .read_mode(mode)
        .quotas(1024, 1024)
        .create(name)
        .unwrap()
}

/// Waits until `available` reports at least `PART` bytes: the writer is
/// blocked on the full ring, mid-message.
fn wait_part(what: &str, available: impl Fn() -> u64) {
    let start = Instant::now();
    while available() < PART {
        assert!(
            start.elapsed() < HANG,
            "{what}: the writer never filled the ring"
        );
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

/// Starts `child_big_message` for `name` (with a duplicate handed over
/// `sock` if given) and returns it once its message fills the ring.
fn big_writer(name: &str, s: &NamedPipeServer, sock: Option<&str>) -> Kid {
    let mut envs = vec![(NAME_ENV, name.to_owned())];
    if let Some(p) = sock {
        envs.push((SOCK_ENV, p.to_owned()));
    }
    let mut kid = Kid::spawn("child_big_message", &envs);
    kid.expect("writing");
    wait_part("message", || s.peek(None).unwrap().total_available);
    kid
}

/// Reads like a Windows caller: on while `complete == false`. Returns the
/// bytes and how the loop ended.
fn read_message_loop(s: &NamedPipeServer, chunk: usize) -> (Vec<u8>, io::Result<MsgRead>) {
    let mut got = Vec::new();
    let mut buf = vec![0u8; chunk];
    loop {
        match s.recv_msg(&mut buf) {
            Ok(m) if !m.complete => got.extend_from_slice(&buf[..m.len]),
            other => {
                if let Ok(m) = &other {
                    got.extend_from_slice(&buf[..m.len]);
                }
                return (got, other);
            }
        }
    }
}

/// Message-read mode, with a buffer larger than the message and with one
/// smaller than the ring: the cut part is never reported complete, and the
/// loop ends with `BrokenPipe`.
fn cut_message_is_never_complete_in_message_read_mode() {
    for chunk in [2 * BIG, 1000] {
        let name = unique_name("cut-msg");
        let s = server(&name, ReadMode::Message);
        let mut kid = big_writer(&name, &s, None);
        kid.kill();
        let (got, end) = within("read the cut message", move || read_message_loop(&s, chunk));
        match end {
            Err(e) => assert_eq!(
                common::named::kind(&e),
                Some(ErrorKind::BrokenPipe),
                "chunk {chunk}: {e:?}"
            ),
            Ok(m) => panic!(
                "chunk {chunk}: a message of {} bytes, cut from {BIG}, was reported whole ({m:?})",
                got.len()
            ),
        }
        assert!(
            got.len() as u64 >= PART && got.len() < BIG,
            "chunk {chunk}: {} bytes",
            got.len()
        );
        assert!(
            got[..] == pattern(BIG, 1)[..got.len()],
            "chunk {chunk}: corrupt part"
        );
    }
}

/// With a duplicate of the killed client's end alive (here, in the parent),
/// the duplicate takes the writer lock over and writes its own message: the
/// reader gets the cut part (`complete == false`), then `OperationAborted`,
/// then the duplicate's message whole, never glued onto the cut one.
fn cut_message_then_the_next_writer_gets_an_error_in_between() {
    let name = unique_name("cut-dup");
    let s = server(&name, ReadMode::Message);
    let path = std::env::temp_dir().join(format!("shmpipe-cut-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let listener = UnixListener::bind(&path).unwrap();
    let mine = ClientOptions::new().open(&name).unwrap();
    let sender = std::thread::spawn({
        let mine = mine.try_clone().unwrap();
        move || {
            let (stream, _) = listener.accept().unwrap();
            mine.send_to(&stream).unwrap();
        }
    });
    let mut kid = big_writer(&name, &s, Some(path.to_str().unwrap()));
    sender.join().unwrap();
    let _ = std::fs::remove_file(&path);
    kid.kill();
    // Takes the dead writer's lock over: ends its message, then writes.
    let next = std::thread::spawn(move || mine.send_msg(b"next"));
    let (s, got, end) = within("read the cut message", move || {
        let (got, end) = read_message_loop(&s, 4096);
        (s, got, end)
    });
    match end {
        Err(e) => assert_eq!(
            common::named::kind(&e),
            Some(ErrorKind::OperationAborted),
            "{e:?}"
        ),
        Ok(m) => panic!(
            "the cut message ({} bytes of {BIG}) was reported whole: {m:?}",
            got.len()
        ),
    }
    assert!(
        got.len() as u64 >= PART && got.len() < BIG,
        "{} bytes",
        got.len()
    );
    assert!(got[..] == pattern(BIG, 1)[..got.len()], "corrupt part");
    assert_eq!(next.join().unwrap().unwrap(), 4);
    let (m, buf) = within("read the next message", move || {
        let mut buf = [0u8; 16];
        s.recv_msg(&mut buf).map(|m| (m, buf))
    })
    .unwrap();
    assert_eq!((&buf[..m.len], m.complete), (&b"next"[..], true));
}

/// Byte-read mode of a message pipe: exactly a prefix of the message, then
/// `BrokenPipe`.
fn cut_message_in_byte_read_mode_is_a_prefix_then_broken_pipe() {
    let name = unique_name("cut-byte-read");
    let s = server(&name, ReadMode::Byte);
    let mut kid = big_writer(&name, &s, None);
    kid.kill();
    let (got, end) = within("read the cut message", move || {
        let (mut got, mut buf) = (Vec::new(), vec![0u8; 1000]);
        loop {
            match s.recv_msg(&mut buf) {
                Ok(m) => got.extend_from_slice(&buf[..m.len]),
                Err(e) => return (got, e),
            }
        }
    });
    assert_kind::<()>(Err(end), ErrorKind::BrokenPipe, "after the part");
    assert!(
        got.len() as u64 >= PART && got.len() < BIG,
        "{} bytes",
        got.len()
    );
    assert!(got[..] == pattern(BIG, 1)[..got.len()], "corrupt part");
}

/// A byte pipe (anonymous): exactly a prefix of the write, then the end.
fn cut_write_on_a_byte_pipe_is_a_prefix_then_the_end() {
    let (mut r, w) = PipeBuilder::new()
        .buffer_size(1024)
        .inheritable(true)
        .build()
        .unwrap();
    let mut cmd = child_command("child_big_write");
    let token = cmd.inherit_end(&w).unwrap();
    let mut child = cmd.env(TOKEN_ENV, token).spawn().unwrap();
    drop(cmd);
    drop(w);
    wait_part("byte write", || r.available());
    child.kill().unwrap();
    child.wait().unwrap();
    let got = within("read the cut write", move || {
        let mut v = Vec::new();
        r.read_to_end(&mut v).map(|_| v)
    })
    .unwrap();
    assert!(
        got.len() as u64 >= PART && got.len() < BIG,
        "{} bytes",
        got.len()
    );
    assert!(got[..] == pattern(BIG, 1)[..got.len()], "corrupt part");
}

/// Item 10: a nonblocking message read while the writer is stopped
/// mid-message returns the published part at once (`complete == false`),
/// then `NoData` (nothing more yet); after the kill, `BrokenPipe`.
fn nonblocking_message_read_never_waits_for_a_stopped_writer() {
    let name = unique_name("nb-stopped");
    let s = server(&name, ReadMode::Message);
    let mut kid = big_writer(&name, &s, None);
    let pid = rustix::process::Pid::from_raw(kid.pid() as i32).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::STOP).unwrap();
    // Stopped for sure (the signal lands asynchronously): then nothing more
    // is published.
    let start = Instant::now();
    while common::process_state(kid.pid()) != Some('T') {
        assert!(start.elapsed() < HANG, "the writer never stopped");
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    let published = s.peek(None).unwrap().total_available as usize;
    s.set_nonblocking(true).unwrap();
    let s = within("nonblocking read with a stopped writer", move || {
        let mut buf = vec![0u8; 2 * BIG];
        let m = s.recv_msg(&mut buf).unwrap();
        assert_eq!((m.len, m.complete), (published, false));
        assert!(buf[..m.len] == pattern(BIG, 1)[..m.len], "corrupt part");
        assert_kind(s.recv_msg(&mut buf), ErrorKind::NoData, "nothing more yet");
        s
    });
    kid.kill();
    assert_kind(
        s.recv_msg(&mut [0u8; 16]),
        ErrorKind::BrokenPipe,
        "after the kill",
    );
}

/// Item 10: a nonblocking message read after the writer was killed
/// mid-message returns the part (consumed bytes are never dropped), then
/// `BrokenPipe`.
fn nonblocking_message_read_returns_the_part_of_a_killed_writer() {
    let name = unique_name("nb-killed");
    let s = server(&name, ReadMode::Message);
    let mut kid = big_writer(&name, &s, None);
    kid.kill();
    let published = s.peek(None).unwrap().total_available as usize;
    s.set_nonblocking(true).unwrap();
    within("nonblocking read after the kill", move || {
        let mut buf = vec![0u8; 2 * BIG];
        let m = s.recv_msg(&mut buf).unwrap();
        assert_eq!((m.len, m.complete), (published, false));
        assert!(buf[..m.len] == pattern(BIG, 1)[..m.len], "corrupt part");
        assert_kind(
            s.recv_msg(&mut buf),
            ErrorKind::BrokenPipe,
            "after the part",
        );
    });
}

common::tests! {
    tests: [
        cut_message_is_never_complete_in_message_read_mode,
        cut_message_then_the_next_writer_gets_an_error_in_between,
        cut_message_in_byte_read_mode_is_a_prefix_then_broken_pipe,
        cut_write_on_a_byte_pipe_is_a_prefix_then_the_end,
        nonblocking_message_read_never_waits_for_a_stopped_writer,
        nonblocking_message_read_returns_the_part_of_a_killed_writer,
    ],
    children: [child_big_message, child_big_write],
}
