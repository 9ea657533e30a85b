//! Async anonymous pipe ends (`shmpipe::tokio`, spec section 7): pending
//! reads and writes, what dropping them does, immediate results, and
//! futures pending on a peer process that is SIGKILLed.
//!
//! Children are this test binary run again (`child_*`); each holds an
//! inherited end.

use crate::common;
use crate::support::{bridge_asleep, poll_once, run, serial, spawn_parked};
use common::named::{env, hear};
use common::{child_command, HANG, TOKEN_ENV};
use shmpipe::{CommandExt as _, Error, ErrorKind, PipeBuilder};
use std::io::Write as _;
use std::process::Stdio;
use std::task::Poll;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// SEM-065: a zero-length async read on an empty pipe stays pending, then
/// completes with 0 bytes when 1 byte arrives, and that byte remains
/// readable.
fn sem_065_zero_length_async_read_pends_then_completes_with_zero() {
    let _serial = serial();
    run(async {
        let (reader, writer) = shmpipe::tokio::pipe().unwrap();
        let mut empty = [0u8; 0];
        let mut read = Box::pin(reader.read_pipe(&mut empty));
        assert!(poll_once(&mut read).await.is_pending());
        assert_eq!(writer.try_write(b"z").unwrap(), 1);
        assert_eq!(read.await.unwrap(), 0);
        let mut buf = [0u8; 4];
        assert_eq!(reader.try_read(&mut buf).unwrap(), 1);
        assert_eq!(buf[0], b'z');
    });
}

/// SEM-143: two pending reads; the second is cancelled (its future
/// dropped); the next 1-byte write completes the first, and the dropped
/// read consumed nothing.
fn sem_143_dropping_the_second_pending_read_leaves_the_byte_to_the_first() {
    let _serial = serial();
    run(async {
        let (reader, writer) = shmpipe::tokio::pipe().unwrap();
        let (mut b1, mut b2) = ([0u8; 8], [0u8; 8]);
        let mut first = Box::pin(reader.read_pipe(&mut b1));
        let mut second = Box::pin(reader.read_pipe(&mut b2));
        assert!(poll_once(&mut first).await.is_pending());
        assert!(poll_once(&mut second).await.is_pending());
        drop(second);
        writer.try_write(b"1").unwrap();
        assert_eq!(first.await.unwrap(), 1);
        assert_eq!(b1[0], b'1');
        assert_eq!(reader.available(), 0);
    });
}

/// SEM-147: an async write to a pipe whose reader is closed fails at its
/// first poll (no pending state, no later completion).
fn sem_147_async_write_to_a_closed_pipe_fails_at_once() {
    let _serial = serial();
    run(async {
        let (reader, mut writer) = shmpipe::tokio::pipe().unwrap();
        drop(reader);
        let mut write = Box::pin(writer.write_pipe(b"late"));
        match poll_once(&mut write).await {
            Poll::Ready(Err(e)) => assert_eq!(Error::kind_of(&e), Some(ErrorKind::NoData)),
            other => panic!("not failed at once: {other:?}"),
        }
        drop(write);
        let e = writer.write_all(b"x").await.unwrap_err();
        assert_eq!(Error::kind_of(&e), Some(ErrorKind::NoData));
    });
}

/// SEM-119: a pending operation on an end whose last handle is closed
/// completes as aborted. In Rust the item reduces to this: a pending
/// future borrows or owns its handle, so the last handle can close only
/// after (or as) the operation is cancelled: a future that owns it is
/// dropped with it (here: a task owning the only read end is aborted with
/// a read pending), and a future that borrows it must end first. No other
/// handle's close can be "the last" while one pends. The task completes
/// as cancelled (tokio's OperationAborted); what shmpipe must do, and
/// what can fail, is close the end with the future and tell the peer at
/// once: the writer's next write fails with NoData (it would succeed if
/// the dropped future kept the end or its segment alive), and nothing was
/// consumed.
fn sem_119_a_read_pending_when_its_last_handle_closes_completes_aborted() {
    let _serial = serial();
    run(async {
        let (reader, writer) = shmpipe::tokio::pipe().unwrap();
        let (started_tx, started_rx) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(async move {
            let mut buf = [0u8; 8];
            let mut read = Box::pin(reader.read_pipe(&mut buf));
            assert!(poll_once(&mut read).await.is_pending());
            started_tx.send(()).unwrap();
            read.await
        });
        started_rx.await.unwrap();
        task.abort();
        let joined = task.await.unwrap_err();
        assert!(joined.is_cancelled(), "{joined:?}");
        let e = writer.try_write(b"x").unwrap_err();
        assert_eq!(Error::kind_of(&e), Some(ErrorKind::NoData), "{e:?}");
    });
}

/// A pending write published nothing (nothing fitted the quota), so
/// dropping it leaves the stream as it was: the reader gets the first
/// write whole and nothing of the dropped one.
fn dropping_a_pending_write_leaves_nothing_in_the_pipe() {
    let _serial = serial();
    run(async {
        let (reader, writer) = shmpipe::tokio::pipe().unwrap();
        assert_eq!(writer.try_write(&[1; 4096]).unwrap(), 4096);
        let mut write = Box::pin(writer.write_pipe(&[2; 100]));
        assert!(poll_once(&mut write).await.is_pending());
        drop(write);
        let mut buf = vec![0u8; 8192];
        assert_eq!(reader.read_pipe(&mut buf).await.unwrap(), 4096);
        assert!(buf[..4096].iter().all(|&b| b == 1));
        assert_eq!(reader.available(), 0);
    });
}

/// A write larger than the quota goes through `write_all` as the reader
/// drains, both tasks on one current-thread runtime: every wake-up in
/// both directions comes through the readiness bridge.
fn a_megabyte_crosses_between_two_tasks_of_one_thread() {
    let _serial = serial();
    run(async {
        let (mut reader, mut writer) = shmpipe::tokio::pipe().unwrap();
        let data: Vec<u8> = (0..1 << 20).map(|i| (i % 251) as u8).collect();
        let expect = data.clone();
        let task = tokio::spawn(async move { writer.write_all(&data).await });
        let mut got = Vec::new();
        reader.read_to_end(&mut got).await.unwrap();
        task.await.unwrap().unwrap();
        assert!(got == expect, "stream differs");
    });
}

/// `from_std` / `into_std`: a blocking end made async and back keeps its
/// data and its peer.
fn ends_convert_from_and_into_blocking_ones() {
    let _serial = serial();
    run(async {
        let (r, mut w) = shmpipe::pipe().unwrap();
        w.write_all(b"before").unwrap();
        let reader = shmpipe::tokio::PipeReader::from_std(r).unwrap();
        let mut buf = [0u8; 6];
        assert_eq!(reader.read_pipe(&mut buf).await.unwrap(), 6);
        let mut r = reader.into_std().unwrap();
        w.write_all(b"after").unwrap();
        assert_eq!(std::io::Read::read(&mut r, &mut buf).unwrap(), 5);
    });
}

/// An idle pending read on a live, silent peer costs no fallback signal
/// while a readiness of an unwatched end, armed after it, is signalled
/// for its 50 ms slice: the future's end watches its peer (the kill would
/// change a word), so it gets the 1 s slice, and a thousand idle futures
/// stay cheap. Before the fix every entry was signalled every 50 ms (and
/// the twin handle the read announces through did not carry the watch).
fn an_idle_future_on_a_watched_peer_gets_no_short_fallback() {
    let _serial = serial();
    run(async {
        let (mut reader, writer) = shmpipe::tokio::pipe().unwrap();
        let fallbacks = shmpipe_engine::readiness::fallback_signals();
        let read = spawn_parked(async move { reader.read(&mut [0u8; 8]).await }).await;
        // An engine channel whose peer is not watched: 50 ms.
        let (_tx, rx) = shmpipe_engine::channel(4096).unwrap();
        let other = shmpipe_engine::readiness::Readiness::new().unwrap();
        other.arm(rx.announce_read()).unwrap();
        // Blocks the runtime's thread: the parked task need not run.
        let mut fds = [rustix::event::PollFd::new(
            &other,
            rustix::event::PollFlags::IN,
        )];
        let hang = rustix::time::Timespec {
            tv_sec: HANG.as_secs() as _,
            tv_nsec: 0,
        };
        assert_eq!(rustix::event::poll(&mut fds, Some(&hang)).unwrap(), 1);
        assert_eq!(other.fallback_signals(), 1);
        assert_eq!(
            shmpipe_engine::readiness::fallback_signals() - fallbacks,
            1,
            "the idle future was signalled by the short fallback slice"
        );
        assert!(!read.is_finished());
        read.abort();
        drop(writer);
    });
}

/// A nonblocking read on an async end does not wait behind a blocking read
/// of the same handle (made through `get_ref` on another thread, parked
/// for data): `try_read` reports `WouldBlock` while that read stays
/// parked (its thread seen asleep in a futex wait), instead of waiting for
/// the handle's half (a tokio worker would stall until data came). The
/// reviewer's try_blocks probe.
fn a_try_read_does_not_wait_behind_a_blocking_read_of_the_same_handle() {
    use std::io::Read as _;
    let _serial = serial();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let _in_rt = rt.enter();
    let (r, mut w) = shmpipe::pipe().unwrap();
    let reader = shmpipe::tokio::PipeReader::from_std(r).unwrap();
    let blocking: &shmpipe::PipeReader = reader.get_ref();
    std::thread::scope(|s| {
        let (tid_tx, tid_rx) = std::sync::mpsc::channel();
        let parked = s.spawn(move || {
            tid_tx
                .send(rustix::thread::gettid().as_raw_nonzero())
                .unwrap();
            let mut b = [0u8; 1];
            let mut h = blocking;
            h.read(&mut b).unwrap()
        });
        let tid = tid_rx.recv().unwrap();
        // Parked: asleep in a futex wait (the ring's event).
        let start = std::time::Instant::now();
        loop {
            let dir = format!("/proc/self/task/{tid}");
            let stat = std::fs::read_to_string(format!("{dir}/stat")).unwrap();
            let state = stat
                .rsplit(')')
                .next()
                .unwrap()
                .split_whitespace()
                .next()
                .unwrap();
            let wchan = std::fs::read_to_string(format!("{dir}/wchan")).unwrap();
            if state == "S" && wchan.contains("futex") {
                break;
            }
            assert!(start.elapsed() < HANG, "the blocking read did not park");
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        let reader = &reader;
        s.spawn(move || {
            let _ = done_tx.send(reader.try_read(&mut [0u8; 4]).map_err(|e| e.kind()));
        });
        let got = done_rx.recv_timeout(HANG);
        // Release the blocking read whatever happened.
        w.write_all(b"xy").unwrap();
        assert_eq!(parked.join().unwrap(), 1);
        assert_eq!(
            got.expect("try_read waited behind the blocking read"),
            Err(std::io::ErrorKind::WouldBlock)
        );
    });
}

/// Child: holds the inherited write end; writes one line when told, then
/// waits to be killed.
fn child_writer() {
    let mut w = shmpipe::PipeWriter::from_inherited(&env(TOKEN_ENV)).unwrap();
    if hear().as_deref() == Some("write") {
        w.write_all(b"from the child").unwrap();
    }
    let _ = hear();
    panic!("the parent kills us");
}

/// Child: holds the inherited read end, never reads.
fn child_reader() {
    let _r = shmpipe::PipeReader::from_inherited(&env(TOKEN_ENV)).unwrap();
    let _ = hear();
    panic!("the parent kills us");
}

/// A read pending in this process completes when another process writes:
/// the cross-process wake-up reaches the bridge's shared futex wait.
fn a_pending_read_is_completed_by_a_write_of_another_process() {
    let _serial = serial();
    let (r, w) = PipeBuilder::new().inheritable(true).build().unwrap();
    let mut cmd = child_command("child_writer");
    let token = cmd.inherit_end(&w).unwrap();
    let mut child = cmd
        .env(TOKEN_ENV, token)
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    drop((cmd, w));
    let mut stdin = child.stdin.take().unwrap();
    run(async {
        let reader = shmpipe::tokio::PipeReader::from_std(r).unwrap();
        let mut buf = [0u8; 32];
        let mut read = Box::pin(reader.read_pipe(&mut buf));
        assert!(poll_once(&mut read).await.is_pending());
        writeln!(stdin, "write").unwrap();
        assert_eq!(read.await.unwrap(), 14);
        assert_eq!(&buf[..14], b"from the child");
    });
    child.kill().unwrap();
    child.wait().unwrap();
}

/// A read and a write future pending on peers in other processes, which
/// are SIGKILLed: the read ends with the end of the pipe (`Ok(0)` through
/// `AsyncRead`), the write with NoData. The kill is noticed by the
/// process's watcher, whose hint changes the announced ring word, which
/// the bridge waits on: no fallback signal is needed (the counter stays
/// put; it moves if the future does not watch its peer, or if the bridge
/// does not wait on the announced words).
fn futures_pending_on_a_sigkilled_peer_complete_with_its_end() {
    let _serial = serial();
    let fallbacks = shmpipe_engine::readiness::fallback_signals();
    // The read side: a child holds the only write end.
    let (r, w) = PipeBuilder::new().inheritable(true).build().unwrap();
    let mut cmd = child_command("child_writer");
    let token = cmd.inherit_end(&w).unwrap();
    let mut writer_kid = cmd
        .env(TOKEN_ENV, token)
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    drop((cmd, w));
    // The write side: a child holds the only read end; the quota is full.
    let (r2, w2) = PipeBuilder::new().inheritable(true).build().unwrap();
    let mut cmd = child_command("child_reader");
    let token = cmd.inherit_end(&r2).unwrap();
    let mut reader_kid = cmd
        .env(TOKEN_ENV, token)
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    drop((cmd, r2));
    run(async {
        let mut reader = shmpipe::tokio::PipeReader::from_std(r).unwrap();
        let mut writer = shmpipe::tokio::PipeWriter::from_std(w2).unwrap();
        assert_eq!(writer.try_write(&[0; 4096]).unwrap(), 4096);
        let read = spawn_parked(async move { reader.read(&mut [0u8; 8]).await }).await;
        let write = spawn_parked(async move { writer.write(b"more").await }).await;
        bridge_asleep();
        writer_kid.kill().unwrap();
        reader_kid.kill().unwrap();
        writer_kid.wait().unwrap();
        reader_kid.wait().unwrap();
        assert_eq!(read.await.unwrap().unwrap(), 0);
        let e = write.await.unwrap().unwrap_err();
        assert_eq!(Error::kind_of(&e), Some(ErrorKind::NoData), "{e:?}");
    });
    assert_eq!(
        shmpipe_engine::readiness::fallback_signals(),
        fallbacks,
        "the kill was noticed by the bridge's fallback slice"
    );
}

common::tests! {
    tests: [
        sem_065_zero_length_async_read_pends_then_completes_with_zero,
        sem_143_dropping_the_second_pending_read_leaves_the_byte_to_the_first,
        sem_147_async_write_to_a_closed_pipe_fails_at_once,
        sem_119_a_read_pending_when_its_last_handle_closes_completes_aborted,
        dropping_a_pending_write_leaves_nothing_in_the_pipe,
        a_megabyte_crosses_between_two_tasks_of_one_thread,
        ends_convert_from_and_into_blocking_ones,
        a_pending_read_is_completed_by_a_write_of_another_process,
        futures_pending_on_a_sigkilled_peer_complete_with_its_end,
        an_idle_future_on_a_watched_peer_gets_no_short_fallback,
        a_try_read_does_not_wait_behind_a_blocking_read_of_the_same_handle,
    ],
    children: [child_writer, child_reader],
}
