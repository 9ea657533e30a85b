//! Cancelling pending operations (spec 7.4, Windows' `CancelIoEx`):
//! `shmpipe::Canceller` on every kind of handle.
//!
//! Tests act once the operation to cancel is seen pending (the canceller's
//! count, a thread asleep in the kernel), never after a sleep; a cancel that
//! did not wake its operation hangs, which the hang guards turn into a
//! failure.

use crate::common;

use common::named::{assert_kind, default_opts, unique_name};
use common::{child_command, pattern, within, Pending, HANG, TOKEN_ENV};
use shmpipe::named::{ClientOptions, Connected, NamedPipeServer};
use shmpipe::{Canceller, CommandExt as _, ErrorKind, PipeBuilder, PipeType, PipeWriter, ReadMode};
use std::io::{BufRead, Read, Write};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Instant;

const QUOTA: u32 = 4096;
/// The pending write of SEM-145 and SEM-121: quota + 2000 bytes.
const BIG: usize = QUOTA as usize + 2000;
/// The write that follows the cancelled one (SEM-145).
const NEXT: &[u8] = b"the following write";
/// Marks the lines a child says to its parent.
const MARK: &str = "@@cancel:";

/// Waits until `c` counts `n` pending operations.
#[track_caller]
pub(super) fn wait_pending(c: &Canceller, n: usize) {
    let start = Instant::now();
    while c.pending() < n {
        assert!(start.elapsed() < HANG, "never {n} pending operations");
        std::thread::yield_now();
    }
}

/// A no-op SIGUSR1 handler, installed without `SA_RESTART`: a system call
/// it interrupts returns `EINTR` instead of being restarted by the kernel.
extern "C" fn on_sigusr1(_: libc::c_int) {}

fn install_sigusr1() {
    // SAFETY: a zeroed `sigaction` is valid (empty mask, no flags); the
    // handler is an `extern "C"` function that does nothing, which is
    // async-signal-safe.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_sigusr1 as extern "C" fn(libc::c_int) as usize;
        assert_eq!(libc::sigaction(libc::SIGUSR1, &sa, std::ptr::null_mut()), 0);
    }
}

/// SEM-148: a blocking `connect` waiting in one thread is ended with
/// OperationAborted by a cancel from another thread, and not by a signal
/// delivered to the waiting thread. The instance stays Listening: a client
/// opens it afterwards and the next `connect` reports it.
fn sem_148_blocking_connect_is_cancelled_but_not_interrupted_by_a_signal() {
    install_sigusr1();
    let name = unique_name("cancel-connect");
    let server = Arc::new(default_opts().create(&name).unwrap());
    let canceller = server.canceller();
    let s = Arc::clone(&server);
    let (tid_tx, tid_rx) = std::sync::mpsc::channel();
    let connect = Pending::start("connect", move || {
        tid_tx.send(common::gettid()).unwrap();
        s.connect()
    });
    let tid = tid_rx.recv().unwrap();
    wait_pending(&canceller, 1);
    connect.assert_pending("no client yet");
    for _ in 0..3 {
        // SAFETY: tgkill sends a signal to one thread of this process,
        // whose handler (installed above) does nothing.
        let r = unsafe { libc::syscall(libc::SYS_tgkill, libc::getpid(), tid, libc::SIGUSR1) };
        assert_eq!(r, 0, "tgkill: {}", std::io::Error::last_os_error());
        // Asleep again after the signal, and still pending.
        connect.assert_pending("a signal must not end a connect");
    }
    canceller.cancel().unwrap();
    assert_kind(
        connect.finish(),
        ErrorKind::OperationAborted,
        "cancelled connect",
    );
    // Still Listening: a client can open it, and connect then finds it.
    let _client = ClientOptions::new().open(&name).unwrap();
    assert_eq!(server.connect().unwrap(), Connected::Already);
}

/// SEM-144: cancelling when the operation was already cancelled (nothing
/// pending any more) fails with NotFound; the handle then works as before.
fn sem_144_cancelling_an_already_cancelled_read_is_not_found() {
    let (mut r, mut w) = shmpipe::pipe().unwrap();
    let canceller = r.canceller();
    assert_kind(
        canceller.cancel(),
        ErrorKind::NotFound,
        "nothing pending yet",
    );
    let read = Pending::start("read", move || {
        let got = r.read(&mut [0u8; 8]);
        (got, r)
    });
    wait_pending(&canceller, 1);
    canceller.cancel().unwrap();
    let (got, mut r) = read.finish();
    assert_kind(got, ErrorKind::OperationAborted, "cancelled read");
    assert_kind(canceller.cancel(), ErrorKind::NotFound, "cancelled twice");
    // The cancelled read consumed nothing and the handle reads on.
    w.write_all(b"after").unwrap();
    let mut buf = [0u8; 8];
    assert_eq!(r.read(&mut buf).unwrap(), 5);
    assert_eq!(&buf[..5], b"after");
}

/// SEM-143: of two pending reads (here on two handles of the read end, each
/// with its own canceller), cancelling the second completes it with
/// OperationAborted, and the next 1-byte write completes the first.
fn sem_143_cancelling_the_second_of_two_pending_reads() {
    let (mut first_r, mut w) = shmpipe::pipe().unwrap();
    let mut second_r = first_r.try_clone().unwrap();
    let (first_c, second_c) = (first_r.canceller(), second_r.canceller());
    let first = Pending::start("first read", move || {
        let mut b = [0u8; 4];
        first_r.read(&mut b).map(|n| b[..n].to_vec())
    });
    wait_pending(&first_c, 1);
    let second = Pending::start("second read", move || second_r.read(&mut [0u8; 4]));
    wait_pending(&second_c, 1);
    second_c.cancel().unwrap();
    assert_kind(second.finish(), ErrorKind::OperationAborted, "second read");
    first.assert_pending("nothing written yet");
    w.write_all(b"x").unwrap();
    assert_eq!(first.finish().unwrap(), b"x");
}

/// Says `line` to the parent.
pub(super) fn say(line: &str) {
    println!("{MARK}{line}");
}

/// Waits for the child's line `want`.
pub(super) fn hear(lines: &mut impl BufRead, want: &str) {
    let mut line = String::new();
    loop {
        line.clear();
        let n = lines.read_line(&mut line).unwrap();
        assert!(n > 0, "the child ended before saying {want:?}");
        if let Some(at) = line.find(MARK) {
            assert_eq!(line[at + MARK.len()..].trim_end(), want);
            return;
        }
    }
}

/// Child of SEM-145: a write of quota + 2000 bytes that pends; when the
/// parent says so (a line on stdin), cancels it, checks it ended with
/// OperationAborted, and writes [`NEXT`].
fn child_cancel_a_pending_write() {
    let token = std::env::var(TOKEN_ENV).unwrap();
    let mut w = PipeWriter::from_inherited(&token).unwrap();
    let canceller = w.canceller();
    let t = std::thread::spawn(move || {
        let r = w.write(&pattern(BIG, 7));
        (r, w)
    });
    wait_pending(&canceller, 1);
    say("pending");
    let mut go = String::new();
    std::io::stdin().read_line(&mut go).unwrap();
    canceller.cancel().unwrap();
    let (r, mut w) = t.join().unwrap();
    let e = r.unwrap_err();
    assert_eq!(
        shmpipe::Error::kind_of(&e),
        Some(ErrorKind::OperationAborted)
    );
    w.write_all(NEXT).unwrap();
    say("written");
}

/// SEM-145: cancelling a pending write of quota + 2000 bytes after the
/// reader consumed 10 of them withdraws the rest; the next read returns the
/// data of the following write. Writer and reader are different processes.
fn sem_145_cancelled_write_withdraws_its_unread_rest() {
    let (mut r, w) = PipeBuilder::new()
        .buffer_size(QUOTA)
        .inheritable(true)
        .build()
        .unwrap();
    let mut cmd = child_command("child_cancel_a_pending_write");
    let token = cmd.inherit_end(&w).unwrap();
    cmd.env(TOKEN_ENV, token)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    drop((cmd, w));
    let mut go = child.stdin.take().unwrap();
    let mut said = std::io::BufReader::new(child.stdout.take().unwrap());
    hear(&mut said, "pending");
    let mut first = [0u8; 10];
    r.read_exact(&mut first).unwrap();
    assert_eq!(first[..], pattern(BIG, 7)[..10]);
    go.write_all(b"cancel\n").unwrap();
    let said = within("the child's cancel", move || {
        hear(&mut said, "written");
        said
    });
    let (got, r) = within("the read after the cancel", move || {
        let mut buf = vec![0u8; BIG];
        let n = r.read(&mut buf).unwrap();
        buf.truncate(n);
        (buf, r)
    });
    assert_eq!(
        String::from_utf8_lossy(&got),
        String::from_utf8_lossy(NEXT),
        "the next read must return the following write, not the withdrawn rest"
    );
    drop((go, said));
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(common::CHILD_OK), "child failed");
    // Nothing else: the end of the pipe (the child exited).
    let mut r = r;
    assert_eq!(
        r.read(&mut [0u8; 8]).unwrap(),
        0,
        "nothing after the following write"
    );
}

/// SEM-121: cancelling the only pending write releases a `flush` waiting
/// (through another handle of the write end) for it, which succeeds.
fn sem_121_cancelling_the_only_pending_write_releases_a_flush() {
    let (_r, mut w) = PipeBuilder::new().buffer_size(QUOTA).build().unwrap();
    let flusher = w.try_clone().unwrap();
    let (write_c, flush_c) = (w.canceller(), flusher.canceller());
    let write = Pending::start("write", move || w.write(&pattern(BIG, 3)));
    wait_pending(&write_c, 1);
    let flush = Pending::start("flush", move || flusher.flush_buffers());
    wait_pending(&flush_c, 1);
    flush.assert_pending("the write is unread");
    write_c.cancel().unwrap();
    assert_kind(
        write.finish(),
        ErrorKind::OperationAborted,
        "cancelled write",
    );
    flush
        .finish()
        .expect("the flush succeeds once the write is withdrawn");
}

/// A message pipe with the spec's default quotas, connected.
pub(super) fn message_pipe(tag: &str) -> (NamedPipeServer, shmpipe::named::NamedPipeClient) {
    let name = unique_name(tag);
    let mut o = default_opts();
    o.pipe_type(PipeType::Message).read_mode(ReadMode::Message);
    let server = o.create(&name).unwrap();
    let client = ClientOptions::new().open(&name).unwrap();
    client.set_read_mode(ReadMode::Message).unwrap();
    assert_eq!(server.connect().unwrap(), Connected::Already);
    (server, client)
}

/// SEM-131: cancelling a pending `transact` completes it with
/// OperationAborted and leaves its request readable by the peer.
fn sem_131_cancelled_transact_leaves_its_request_readable() {
    let (server, client) = message_pipe("cancel-transact");
    let canceller = client.canceller();
    let transact = Pending::start("transact", move || {
        let r = client.transact(b"request", &mut [0u8; 16]);
        (r, client)
    });
    wait_pending(&canceller, 1);
    canceller.cancel().unwrap();
    let (r, _client) = transact.finish();
    assert_kind(r, ErrorKind::OperationAborted, "cancelled transact");
    let mut buf = [0u8; 16];
    let m = server.recv_msg(&mut buf).unwrap();
    assert!(m.complete);
    assert_eq!(&buf[..m.len], b"request");
}

/// Message pipes (spec 7.4): a message-read reader that got part of a
/// message whose write is then cancelled gets OperationAborted for the
/// rest, then the next message whole.
fn cancelled_message_write_is_cut_for_a_reader_that_read_part() {
    let (server, client) = message_pipe("cancel-message");
    let canceller = client.canceller();
    let big = pattern(3000, 5); // the quota is 1024: it pends
    let b = big.clone();
    let write = Pending::start("send", move || {
        let r = client.send_msg(&b);
        (r, client)
    });
    wait_pending(&canceller, 1);
    let mut part = [0u8; 10];
    let m = server.recv_msg(&mut part).unwrap();
    assert_eq!((m.len, m.complete), (10, false));
    assert_eq!(part[..], big[..10]);
    canceller.cancel().unwrap();
    let (r, client) = write.finish();
    assert_kind(r, ErrorKind::OperationAborted, "cancelled send");
    client.send_msg(b"next").unwrap();
    let mut buf = [0u8; 4096];
    assert_kind(
        server.recv_msg(&mut buf),
        ErrorKind::OperationAborted,
        "the rest of the cut message",
    );
    let m = server.recv_msg(&mut buf).unwrap();
    assert!(m.complete);
    assert_eq!(&buf[..m.len], b"next");
}

/// Each kind of handle cancels its own blocking operations: a server's
/// read, a client's flush, an anonymous writer's quota wait.
fn every_handle_cancels_its_blocking_operations() {
    let (server, client) = message_pipe("cancel-every");
    let (server, client) = (Arc::new(server), Arc::new(client));
    let c = server.canceller();
    let s = Arc::clone(&server);
    let read = Pending::start("server read", move || s.recv_msg(&mut [0u8; 8]));
    wait_pending(&c, 1);
    c.cancel().unwrap();
    assert_kind(read.finish(), ErrorKind::OperationAborted, "server read");

    client.send_msg(b"unread").unwrap();
    let c = client.canceller();
    let cl = Arc::clone(&client);
    let flush = Pending::start("client flush", move || cl.flush_buffers());
    wait_pending(&c, 1);
    c.cancel().unwrap();
    assert_kind(flush.finish(), ErrorKind::OperationAborted, "client flush");

    let (_r, mut w) = PipeBuilder::new().buffer_size(QUOTA).build().unwrap();
    let c = w.canceller();
    let write = Pending::start("anonymous write", move || w.write(&pattern(BIG, 1)));
    wait_pending(&c, 1);
    c.cancel().unwrap();
    assert_kind(
        write.finish(),
        ErrorKind::OperationAborted,
        "anonymous write",
    );
}

common::tests! {
    tests: [
        sem_148_blocking_connect_is_cancelled_but_not_interrupted_by_a_signal,
        sem_144_cancelling_an_already_cancelled_read_is_not_found,
        sem_143_cancelling_the_second_of_two_pending_reads,
        sem_145_cancelled_write_withdraws_its_unread_rest,
        sem_121_cancelling_the_only_pending_write_releases_a_flush,
        sem_131_cancelled_transact_leaves_its_request_readable,
        cancelled_message_write_is_cut_for_a_reader_that_read_part,
        every_handle_cancels_its_blocking_operations,
    ],
    children: [child_cancel_a_pending_write],
}
