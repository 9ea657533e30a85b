//! What a SIGKILLed peer leaves behind (issue 9, items 7 and 8).
//!
//! * `flush_buffers` says `Ok` only when the reader read everything: a
//!   reader killed before reading makes it fail with `BrokenPipe`, whether
//!   the flush starts after the kill or is waiting when it comes.
//! * The unread rest of a write pending on the quota vanishes when its
//!   process is killed (spec 5.2, 7.5, SEM-117), also when the kill comes
//!   right after the write's bytes became visible: the write's claim is made
//!   before any byte of it is published.
//!
//! Children are this test binary run again (`child_*` entry points, see
//! `common::child_command` and `common::named::Kid`); every one of them is
//! killed by the parent.

use crate::common;

use common::named::{assert_kind, env, hear, say, unique_name, Kid};
use common::{child_command, pattern, within, Pending, HANG, TOKEN_ENV};
use shmpipe::named::{ClientOptions, ServerOptions};
use shmpipe::PipeType;
use shmpipe::{CommandExt as _, Error, ErrorKind, PipeBuilder, PipeReader, PipeWriter, ReadMode};
use std::io::{Read as _, Write as _};
use std::time::Instant;

const NAME_ENV: &str = "SHMPIPE_KILLED_TEST_NAME";

/// Child: a server that never reads; it waits for the parent's kill.
fn child_server_never_reads() {
    let _server = ServerOptions::new()
        .quotas(4096, 4096)
        .create(&env(NAME_ENV))
        .unwrap();
    say("ready");
    let _ = hear();
    panic!("the parent kills us");
}

/// Child: holds an inherited read end and never reads.
fn child_hold_reader() {
    let _r = PipeReader::from_inherited(&env(TOKEN_ENV)).unwrap();
    say("ready");
    let _ = hear();
    panic!("the parent kills us");
}

/// Item 7, named pipe: the server is killed before it read the client's
/// message; the client's flush then fails, and so does a flush that was
/// already waiting.
fn flush_fails_when_the_server_was_killed_before_reading() {
    for waiting in [false, true] {
        let name = unique_name("flush-killed");
        let mut kid = Kid::spawn("child_server_never_reads", &[(NAME_ENV, name.clone())]);
        kid.expect("ready");
        let c = ClientOptions::new().open(&name).unwrap();
        assert_eq!(c.send_msg(&[7u8; 100]).unwrap(), 100);
        let flush = if waiting {
            let c = c.try_clone().unwrap();
            let f = Pending::start("flush", move || c.flush_buffers());
            // May or may not be waiting yet: either way it must fail.
            Some(f)
        } else {
            None
        };
        kid.kill();
        let r = match flush {
            Some(f) => f.finish(),
            None => within("flush after the kill", move || c.flush_buffers()),
        };
        assert_kind(r, ErrorKind::BrokenPipe, "flush of unread data");
    }
}

/// Item 7, anonymous pipe: the only read end is in a child killed before
/// reading.
fn flush_fails_when_the_reader_was_killed_before_reading() {
    let (r, mut w) = PipeBuilder::new().inheritable(true).build().unwrap();
    let mut cmd = child_command("child_hold_reader");
    let token = cmd.inherit_end(&r).unwrap();
    let mut child = cmd.env(TOKEN_ENV, token).spawn().unwrap();
    drop(cmd);
    drop(r);
    w.write_all(&[1u8; 100]).unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    let e = within("flush after the kill", move || w.flush_buffers()).unwrap_err();
    assert_eq!(Error::kind_of(&e), Some(ErrorKind::BrokenPipe), "{e:?}");
}

const QUOTA: u32 = 6000;
const PENDING_LEN: usize = 10_000;
const READ_FIRST: usize = 10;
const ROUNDS_ENV: &str = "SHMPIPE_PENDING_KILL_ROUNDS";

/// Child: one write that pends on the quota until the parent kills us.
fn child_pending_write() {
    let mut w = PipeWriter::from_inherited(&env(TOKEN_ENV)).unwrap();
    let r = w.write(&pattern(PENDING_LEN, 2));
    panic!("the parent kills us while the write pends: {r:?}");
}

/// Item 8 (SEM-117): a 10 000-byte write pending on a 6 000-byte quota; the
/// reader reads 10 bytes of it as soon as all of it is visible, the writer
/// is SIGKILLed: the rest is gone (a nonblocking read finds nothing, with
/// the parent's duplicate of the write end keeping the pipe open), and what
/// the parent writes next arrives whole. Looped, as the kill must land at
/// any point after publication (`SHMPIPE_PENDING_KILL_ROUNDS`, default 30).
fn killed_pending_write_rest_vanishes_even_right_after_publication() {
    let rounds: usize = std::env::var(ROUNDS_ENV).map_or(30, |v| v.parse().unwrap());
    let mut leaked = Vec::new();
    for round in 0..rounds {
        let (mut r, w) = PipeBuilder::new()
            .buffer_size(QUOTA)
            .inheritable(true)
            .build()
            .unwrap();
        let mut cmd = child_command("child_pending_write");
        let token = cmd.inherit_end(&w).unwrap();
        let mut child = cmd.env(TOKEN_ENV, token).spawn().unwrap();
        drop(cmd);
        let start = Instant::now();
        while r.available() < PENDING_LEN as u64 {
            assert!(
                start.elapsed() < HANG,
                "round {round}: the write never arrived"
            );
            std::hint::spin_loop();
        }
        let mut first = [0u8; READ_FIRST];
        r.read_exact(&mut first).unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
        assert_eq!(
            first[..],
            pattern(PENDING_LEN, 2)[..READ_FIRST],
            "round {round}"
        );
        r.set_nonblocking(true).unwrap();
        let mut buf = vec![0u8; PENDING_LEN];
        match r.read(&mut buf) {
            Err(e) if Error::kind_of(&e) == Some(ErrorKind::NoData) => {}
            Ok(n) => {
                leaked.push((round, n));
                continue;
            }
            Err(e) => panic!("round {round}: {e:?}"),
        }
        let mut w = w;
        w.write_all(b"after").unwrap();
        let n = r.read(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"after", "round {round}: the next write");
    }
    assert!(
        leaked.is_empty(),
        "the killed write's rest stayed readable in {} of {rounds} rounds \
         (round, bytes): {leaked:?}",
        leaked.len()
    );
}

/// Item 8 on a message pipe in message-read mode: the reader got the first
/// bytes of a pending message (`complete == false`), its writer is killed:
/// the next read reports the cut (`OperationAborted`, the parent's
/// duplicate keeping the end open) instead of returning the rest or gluing
/// the next message on; the next message then arrives whole.
fn killed_pending_message_rest_vanishes_and_the_cut_is_reported() {
    let name = unique_name("pending-msg");
    let s = ServerOptions::new()
        .pipe_type(PipeType::Message)
        .read_mode(ReadMode::Message)
        .quotas(QUOTA, QUOTA)
        .create(&name)
        .unwrap();
    let mine = ClientOptions::new().open(&name).unwrap();
    let path = std::env::temp_dir().join(format!("shmpipe-killed-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
    let mut kid = Kid::spawn(
        "child_pending_message",
        &[(NAME_ENV, path.to_str().unwrap().to_owned())],
    );
    mine.send_to(&listener.accept().unwrap().0).unwrap();
    let _ = std::fs::remove_file(&path);
    kid.expect("writing");
    let start = Instant::now();
    while s.peek(None).unwrap().total_available < PENDING_LEN as u64 {
        assert!(start.elapsed() < HANG, "the message never arrived");
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    let mut buf = vec![0u8; PENDING_LEN];
    let m = s.recv_msg(&mut buf[..READ_FIRST]).unwrap();
    assert_eq!((m.len, m.complete), (READ_FIRST, false));
    kid.kill();
    let (s, r) = within("the read after the cut part", move || {
        let r = s.recv_msg(&mut [0u8; PENDING_LEN]);
        (s, r)
    });
    assert_kind(
        r,
        ErrorKind::OperationAborted,
        "the read after the cut part",
    );
    mine.send_msg(b"next").unwrap();
    let m = s.recv_msg(&mut buf).unwrap();
    assert_eq!((&buf[..m.len], m.complete), (&b"next"[..], true));
}

/// Child: receives a duplicate of the parent's client end and writes one
/// message that pends on the quota.
fn child_pending_message() {
    let sock = std::os::unix::net::UnixStream::connect(env(NAME_ENV)).unwrap();
    let c = shmpipe::named::NamedPipeClient::recv_from(&sock).unwrap();
    say("writing");
    let r = c.send_msg(&pattern(PENDING_LEN, 3));
    panic!("the parent kills us while the message pends: {r:?}");
}

/// Child: takes the read end's admission lock through the engine and stops
/// itself while holding it (a reader frozen mid-read, by a debugger say).
fn child_stop_in_reader_lock() {
    let r = PipeReader::from_inherited(&env(TOKEN_ENV)).unwrap();
    let mut rx = shmpipe_engine::Receiver::from_fd(std::os::fd::OwnedFd::from(r)).unwrap();
    rx.batch(|_| {
        // SAFETY: `raise` only sends a signal to this process.
        unsafe { libc::raise(libc::SIGSTOP) };
        Ok(())
    })
    .unwrap();
    panic!("the parent kills us while we are stopped");
}

/// A nonblocking read while another process holds the read end's lock
/// (stopped inside it) answers `WouldBlock` at once, never the end of the
/// pipe while bytes are queued, even with every writer gone; once the
/// holder is killed its lock is taken over and the bytes arrive, then the
/// end of the pipe.
fn nonblocking_read_waits_for_no_stopped_reader_and_reports_no_false_end() {
    let (r, mut w) = PipeBuilder::new().inheritable(true).build().unwrap();
    w.write_all(b"queued").unwrap();
    drop(w);
    let mut cmd = child_command("child_stop_in_reader_lock");
    let token = cmd.inherit_end(&r).unwrap();
    let mut child = cmd.env(TOKEN_ENV, token).spawn().unwrap();
    drop(cmd);
    loop {
        match common::process_state(child.id()) {
            Some('T') => break,
            Some('Z') | None => panic!("the child ended before it stopped in the lock"),
            _ => std::thread::yield_now(),
        }
    }
    r.set_nonblocking(true).unwrap();
    let (mut r, first) = within("a nonblocking read", move || {
        let mut buf = [0u8; 16];
        let n = (&r).read(&mut buf);
        (r, n)
    });
    let e = first.unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::WouldBlock, "{e:?}");
    child.kill().unwrap();
    child.wait().unwrap();
    let mut text = Vec::new();
    let start = Instant::now();
    let end = loop {
        let mut buf = [0u8; 16];
        match r.read(&mut buf) {
            Ok(0) => break None,
            Ok(n) => text.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                assert!(
                    start.elapsed() < HANG,
                    "the dead holder's lock was not taken over"
                );
                std::thread::yield_now();
            }
            Err(e) => break Some(e),
        }
    };
    assert_eq!(text, b"queued");
    if let Some(e) = end {
        assert_eq!(Error::kind_of(&e), Some(ErrorKind::BrokenPipe), "{e:?}");
    }
}

common::tests! {
    tests: [
        flush_fails_when_the_server_was_killed_before_reading,
        flush_fails_when_the_reader_was_killed_before_reading,
        killed_pending_write_rest_vanishes_even_right_after_publication,
        killed_pending_message_rest_vanishes_and_the_cut_is_reported,
        nonblocking_read_waits_for_no_stopped_reader_and_reports_no_false_end,
    ],
    children: [
        child_server_never_reads,
        child_hold_reader,
        child_pending_write,
        child_pending_message,
        child_stop_in_reader_lock,
    ],
}
