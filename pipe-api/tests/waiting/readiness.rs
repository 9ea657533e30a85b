//! `shmpipe::readiness` with a plain `poll` loop (what mio, `polling` or
//! `epoll` do with the same descriptor): data written by another thread
//! and by another process reaches a nonblocking reader that waits only on
//! its readiness `eventfd`; a writer on a full pipe is signalled when the
//! reader drains; a named pipe server reads through the loop; an armed
//! descriptor is not readable while nothing happened; a closed peer
//! signals it and the retry reports the end of the pipe.

use crate::common;

use common::named::{assert_kind, unique_name};
use common::{child_command, pattern, wait_child, TOKEN_ENV};
use rustix::event::{poll, PollFd, PollFlags, Timespec};
use shmpipe::named::{ClientOptions, ServerOptions};
use shmpipe::readiness::{Readiness, Tickets};
use shmpipe::{CommandExt as _, ErrorKind, PipeBuilder, PipeReader, PipeWriter};
use std::io::{self, Read as _, Write as _};

/// Whether `ready` is readable now (a zero timeout: state, not timing).
fn readable_now(ready: &Readiness) -> bool {
    let mut fds = [PollFd::new(ready, PollFlags::IN)];
    let zero = Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    poll(&mut fds, Some(&zero)).expect("poll") == 1
}

/// Waits until `ready` is readable (the hang guard of the caller bounds it).
fn wait_readable(ready: &Readiness) {
    let mut fds = [PollFd::new(ready, PollFlags::IN)];
    while poll(&mut fds, None).expect("poll") == 0 {}
    assert!(fds[0].revents().contains(PollFlags::IN));
}

fn would_block<T>(r: &io::Result<T>) -> bool {
    matches!(r, Err(e) if e.kind() == io::ErrorKind::WouldBlock)
}

/// The event-loop protocol of `shmpipe::readiness` for one operation:
/// try, announce, try, arm, poll, clear, again. Returns the operation's
/// result and how many times it waited on the descriptor.
fn drive<T>(
    ready: &Readiness,
    mut op: impl FnMut() -> io::Result<T>,
    not_now: impl Fn(&io::Result<T>) -> bool,
    announce: impl Fn() -> io::Result<Tickets>,
) -> (io::Result<T>, usize) {
    let mut waits = 0;
    loop {
        let r = op();
        if !not_now(&r) {
            return (r, waits);
        }
        let tickets = announce().expect("announce");
        let r = op();
        if !not_now(&r) {
            return (r, waits);
        }
        ready.arm(tickets).expect("arm");
        wait_readable(ready);
        ready.clear().expect("clear");
        waits += 1;
    }
}

/// Reads `reader` through the loop until the end of the pipe.
fn read_all_via_poll(reader: &PipeReader) -> (Vec<u8>, usize) {
    reader.set_nonblocking(true).unwrap();
    let ready = Readiness::new().unwrap();
    let mut got = Vec::new();
    let mut waits = 0;
    let mut buf = [0u8; 1000];
    loop {
        let (r, w) = drive(
            &ready,
            || reader.read_pipe(&mut buf),
            would_block,
            || reader.announce_read(),
        );
        waits += w;
        match r {
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) => {
                assert_eq!(shmpipe::Error::kind_of(&e), Some(ErrorKind::BrokenPipe));
                return (got, waits);
            }
        }
    }
}

/// A thread writes more than the quota (so the reader must wait, and the
/// writer too); the reader gets all of it, in order, through the loop.
fn reads_what_a_thread_writes() {
    common::within("thread writer", || {
        let (reader, mut writer) = shmpipe::pipe().unwrap();
        let data = pattern(64 * 1024, 3);
        let sent = data.clone();
        let t = std::thread::spawn(move || {
            for chunk in sent.chunks(700) {
                writer.write_all(chunk).unwrap();
            }
        });
        let (got, _) = read_all_via_poll(&reader);
        t.join().unwrap();
        assert!(
            got == data,
            "bytes differ ({} of {})",
            got.len(),
            data.len()
        );
    });
}

/// Child: once the parent says so (a line on stdin), writes a pattern
/// into the inherited write end, then exits.
fn child_writer() {
    let mut w = PipeWriter::from_inherited(&std::env::var(TOKEN_ENV).unwrap()).unwrap();
    let mut go = String::new();
    std::io::stdin().read_line(&mut go).unwrap();
    for chunk in pattern(48 * 1024, 9).chunks(1000) {
        w.write_all(chunk).unwrap();
    }
}

/// Another process writes; the reader gets everything through the loop,
/// then the end of the pipe when the child exits. The child starts writing
/// only once the reader sleeps in `poll` on the empty pipe, so the loop
/// certainly waits (an earlier version let the child write first, and on a
/// busy machine the reader could find data on every look).
fn reads_what_a_process_writes() {
    common::within("process writer", || {
        let (reader, w) = PipeBuilder::new().inheritable(true).build().unwrap();
        let mut cmd = child_command("child_writer");
        let token = cmd.inherit_end(&w).unwrap();
        let mut child = cmd
            .env(TOKEN_ENV, token)
            .stdin(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        drop(cmd);
        drop(w);
        let mut go = child.stdin.take().unwrap();
        let loop_ = common::Pending::start("the poll loop", move || read_all_via_poll(&reader));
        assert!(loop_.settle(), "the poll loop returned on an empty pipe");
        go.write_all(b"go\n").unwrap();
        drop(go);
        let (got, waits) = loop_.finish();
        let (status, stderr) = wait_child(child);
        common::assert_child_ok(status, &stderr);
        assert!(got == pattern(48 * 1024, 9), "bytes differ ({})", got.len());
        // 48 KiB through a 4 KiB quota: the reader must have waited.
        assert!(waits > 0);
    });
}

/// A writer on a full pipe: armed, not readable; the reader drains;
/// readable; the retry writes.
fn full_writer_is_signalled_when_drained() {
    common::within("full writer", || {
        let (mut reader, writer) = shmpipe::pipe().unwrap();
        writer.set_nonblocking(true).unwrap();
        assert_eq!(writer.try_write(&[5; 4096]).unwrap(), 4096);
        assert_eq!(writer.try_write(&[5; 1]).unwrap(), 0);
        let ready = Readiness::new().unwrap();
        let tickets = writer.announce_write().unwrap();
        assert_eq!(writer.try_write(&[5; 1]).unwrap(), 0, "still full");
        ready.arm(tickets).unwrap();
        assert!(!readable_now(&ready), "signalled while full");
        let t = std::thread::spawn(move || {
            reader.read_exact(&mut [0u8; 4096]).unwrap();
            reader
        });
        wait_readable(&ready);
        ready.clear().unwrap();
        let _reader = t.join().unwrap();
        assert_eq!(writer.try_write(&[5; 10]).unwrap(), 10);
    });
}

/// Armed with nothing happening, the descriptor is not readable (the
/// loop sleeps), for an anonymous reader and a named client; the first
/// message then signals it.
fn idle_descriptor_is_not_signalled() {
    let (reader, _writer) = shmpipe::pipe().unwrap();
    reader.set_nonblocking(true).unwrap();
    let ready = Readiness::new().unwrap();
    assert!(would_block(&reader.read_pipe(&mut [0u8; 8])));
    let tickets = reader.announce_read().unwrap();
    assert!(would_block(&reader.read_pipe(&mut [0u8; 8])));
    ready.arm(tickets).unwrap();
    assert!(
        !readable_now(&ready),
        "anonymous reader signalled while idle"
    );

    let name = unique_name("ready-idle");
    let server = ServerOptions::new().create(&name).unwrap();
    let client = ClientOptions::new().open(&name).unwrap();
    client.set_nonblocking(true).unwrap();
    let ready = Readiness::new().unwrap();
    let tickets = client.announce_read().unwrap();
    assert!(would_block(&client.recv_msg(&mut [0u8; 8])));
    ready.arm(tickets).unwrap();
    assert!(!readable_now(&ready), "named client signalled while idle");
    // And the first state change does signal it.
    server.send_msg(b"x").unwrap();
    common::within("client signalled", move || {
        wait_readable(&ready);
        assert_eq!(client.recv_msg(&mut [0u8; 8]).unwrap().len, 1);
    });
}

/// A named pipe server reads what a client thread sends through the loop.
fn named_server_reads_via_poll() {
    common::within("named server", || {
        let name = unique_name("ready-server");
        let server = ServerOptions::new().create(&name).unwrap();
        let client = ClientOptions::new().open(&name).unwrap();
        server.set_nonblocking(true).unwrap();
        let data = pattern(40 * 1024, 5);
        let sent = data.clone();
        let t = std::thread::spawn(move || {
            for chunk in sent.chunks(900) {
                assert_eq!(client.send_msg(chunk).unwrap(), chunk.len());
            }
        });
        let ready = Readiness::new().unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 1000];
        while got.len() < data.len() {
            let (r, _) = drive(
                &ready,
                || server.recv_msg(&mut buf),
                would_block,
                || server.announce_read(),
            );
            got.extend_from_slice(&buf[..r.unwrap().len]);
        }
        t.join().unwrap();
        assert!(got == data, "bytes differ");
    });
}

/// A closed peer signals an armed descriptor; the retry reports the end
/// of the pipe: `BrokenPipe` for a reader, `NoData` for a writer (the read
/// end was closed before the retry).
fn closed_peer_signals() {
    common::within("closed peer", || {
        let (reader, writer) = shmpipe::pipe().unwrap();
        reader.set_nonblocking(true).unwrap();
        let ready = Readiness::new().unwrap();
        let tickets = reader.announce_read().unwrap();
        assert!(would_block(&reader.read_pipe(&mut [0u8; 8])));
        ready.arm(tickets).unwrap();
        assert!(!readable_now(&ready));
        drop(writer);
        wait_readable(&ready);
        ready.clear().unwrap();
        assert_kind(
            reader.read_pipe(&mut [0u8; 8]),
            ErrorKind::BrokenPipe,
            "read after the writer closed",
        );

        let (reader, writer) = shmpipe::pipe().unwrap();
        writer.set_nonblocking(true).unwrap();
        assert_eq!(writer.try_write(&[1; 4096]).unwrap(), 4096);
        let ready = Readiness::new().unwrap();
        let tickets = writer.announce_write().unwrap();
        assert_eq!(writer.try_write(&[1; 1]).unwrap(), 0);
        ready.arm(tickets).unwrap();
        assert!(!readable_now(&ready));
        drop(reader);
        wait_readable(&ready);
        ready.clear().unwrap();
        assert_kind(
            writer.try_write(&[1; 1]),
            ErrorKind::NoData,
            "write after the reader closed",
        );
    });
}

/// Each end's tickets name the words its peer's progress changes: not
/// changed by the announcing end's own retry, changed by the peer's write
/// (or drain). A deterministic check that the readiness fd is woken by the
/// pipe, not by the bridge's liveness slice (which would also end a poll).
fn tickets_name_the_peers_words() {
    let (mut reader, mut writer) = shmpipe::pipe().unwrap();
    reader.set_nonblocking(true).unwrap();
    let t = reader.announce_read().unwrap();
    assert!(would_block(&reader.read_pipe(&mut [0u8; 8])));
    assert!(
        !t.changed(),
        "anonymous reader: the retry changed its tickets"
    );
    writer.write_all(b"x").unwrap();
    assert!(t.changed(), "anonymous reader: a write left its tickets");
    reader.read_exact(&mut [0u8; 1]).unwrap();

    writer.set_nonblocking(true).unwrap();
    assert_eq!(writer.try_write(&[2; 4096]).unwrap(), 4096);
    let t = writer.announce_write().unwrap();
    assert_eq!(writer.try_write(&[2; 1]).unwrap(), 0);
    assert!(
        !t.changed(),
        "anonymous writer: the retry changed its tickets"
    );
    reader.read_exact(&mut [0u8; 4096]).unwrap();
    assert!(t.changed(), "anonymous writer: a drain left its tickets");

    let name = unique_name("ready-words");
    let server = ServerOptions::new().create(&name).unwrap();
    let client = ClientOptions::new().open(&name).unwrap();
    server.set_nonblocking(true).unwrap();
    client.set_nonblocking(true).unwrap();
    for (who, rd, wr) in [
        ("server", &server as &dyn Duplex, &client as &dyn Duplex),
        ("client", &client, &server),
    ] {
        let t = rd.announce_read().unwrap();
        assert!(would_block(&rd.recv(&mut [0u8; 8])));
        assert!(!t.changed(), "{who} read: the retry changed its tickets");
        assert_eq!(wr.send(b"y").unwrap(), 1);
        assert!(t.changed(), "{who} read: the peer's send left its tickets");
        assert_eq!(rd.recv(&mut [0u8; 8]).unwrap(), 1);
    }
}

/// The named ends' calls the test above needs, as one type.
trait Duplex {
    fn announce_read(&self) -> io::Result<Tickets>;
    fn recv(&self, buf: &mut [u8]) -> io::Result<usize>;
    fn send(&self, data: &[u8]) -> io::Result<usize>;
}

macro_rules! duplex {
    ($t:ty) => {
        impl Duplex for $t {
            fn announce_read(&self) -> io::Result<Tickets> {
                <$t>::announce_read(self)
            }
            fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
                self.recv_msg(buf).map(|m| m.len)
            }
            fn send(&self, data: &[u8]) -> io::Result<usize> {
                self.send_msg(data)
            }
        }
    };
}
duplex!(shmpipe::named::NamedPipeServer);
duplex!(shmpipe::named::NamedPipeClient);

common::tests! {
    tests: [
        reads_what_a_thread_writes,
        reads_what_a_process_writes,
        full_writer_is_signalled_when_drained,
        idle_descriptor_is_not_signalled,
        named_server_reads_via_poll,
        closed_peer_signals,
        tickets_name_the_peers_words,
    ],
    children: [child_writer],
}
