//! Spec 9.11 and 9.12: a closed peer, flush, and ends shared by threads.

use crate::common;

use super::support::*;
use common::{within, Pending};
use shmpipe::{EndKind, Error, ErrorKind, ReadMode, WaitMode};
use std::io::{self, Read, Write};

// ---------------------------------------------------------------- 9.11

#[test]
fn sem_111_write_after_peer_closed_is_no_data() {
    let (r, mut w) = shmpipe::pipe().unwrap();
    w.write_all(b"unread").unwrap();
    drop(r);
    for _ in 0..3 {
        let e = w.write(b"more").unwrap_err();
        assert_eq!(kind(&e), Some(ErrorKind::NoData), "{e}");
    }
    let w2 = w.try_clone().unwrap();
    let e = w2.try_write(b"more").unwrap_err();
    assert_eq!(kind(&e), Some(ErrorKind::NoData), "every handle sees it");
}

/// The peer-closed state decides before the quota does (spec 3, check
/// order; 4.7): a nonblocking write that would not fit anyway still reports
/// the closed reader rather than "0 bytes written".
#[test]
fn sem_111_nonblocking_write_after_peer_closed_is_no_data_even_over_quota() {
    let (r, mut w) = pipe_with(16);
    w.write_all(&[1u8; 16]).unwrap();
    drop(r);
    w.set_nonblocking(true).unwrap();
    let e = w.try_write(&[2u8; 4]).unwrap_err();
    assert_eq!(kind(&e), Some(ErrorKind::NoData), "{e}");
}

#[test]
fn sem_111_nonblocking_write_after_peer_closed_is_no_data() {
    let (r, w) = pipe_with(16);
    drop(r);
    w.set_nonblocking(true).unwrap();
    let e = w.try_write(&[2u8; 4]).unwrap_err();
    assert_eq!(kind(&e), Some(ErrorKind::NoData), "{e}");
}

#[test]
fn sem_112_blocked_read_ends_when_the_writer_closes() {
    let (r, w) = shmpipe::pipe().unwrap();
    let mut r2 = r.try_clone().unwrap();
    let r = r;
    let pipe_read = Pending::start("read_pipe", move || r.read_pipe(&mut [0u8; 8]));
    let std_read = Pending::start("Read::read", move || r2.read(&mut [0u8; 8]));
    pipe_read.assert_pending("writer open");
    std_read.assert_pending_now("writer open");
    drop(w);
    let e = pipe_read.finish().unwrap_err();
    assert_eq!(kind(&e), Some(ErrorKind::BrokenPipe));
    assert_eq!(std_read.finish().unwrap(), 0, "std readers see end of file");
}

#[test]
fn sem_113_pending_write_fails_with_broken_pipe_when_reader_closes() {
    let (r, w) = pipe_with(5000);
    let write = start_write(w, vec![9u8; 7000]);
    wait_until("the write is queued", || r.available() == 7000);
    write.assert_pending("7000 unread, quota 5000");
    drop(r);
    let (res, mut w) = write.finish();
    let e = res.unwrap_err();
    assert_eq!(kind(&e), Some(ErrorKind::BrokenPipe), "{e}");
    assert_eq!(e.kind(), io::ErrorKind::BrokenPipe);
    // Later writes find the reader already gone.
    let e = w.write(b"x").unwrap_err();
    assert_eq!(kind(&e), Some(ErrorKind::NoData), "{e}");
}

#[test]
fn sem_113_pending_flush_fails_with_broken_pipe_when_reader_closes() {
    let (r, mut w) = pipe_with(5000);
    w.write_all(&[9u8; 3000]).unwrap();
    let flush = Pending::start("flush", move || w.flush_buffers());
    flush.assert_pending("3000 bytes unread");
    drop(r);
    let e = flush
        .finish()
        .expect_err("a flush pending when the reader closes must fail (spec 4.11)");
    assert_eq!(kind(&e), Some(ErrorKind::BrokenPipe), "{e}");
}

#[test]
fn sem_115_state_calls_work_after_peer_closed() {
    let (r, w) = shmpipe::pipe().unwrap();
    drop(r);
    w.set_state(None, Some(WaitMode::Nonblocking)).unwrap();
    assert!(w.state().unwrap().nonblocking);
    assert_eq!(w.info().unwrap().end, EndKind::Client);
    let (r, w) = shmpipe::pipe().unwrap();
    drop(w);
    r.set_state(Some(ReadMode::Byte), Some(WaitMode::Nonblocking))
        .unwrap();
    assert!(r.state().unwrap().nonblocking);
    assert_eq!(r.info().unwrap().end, EndKind::Server);
}

// ---------------------------------------------------------------- 9.12

#[test]
fn sem_120_flush_waits_until_the_reader_read_everything() {
    let (mut r, w) = shmpipe::pipe().unwrap();
    // Nothing unread: at once.
    let mut w = within("flush of an empty pipe", move || {
        let w = w;
        w.flush_buffers().unwrap();
        w
    });
    w.write_all(b"0123456789").unwrap();
    assert_eq!(take(&mut r, 10), b"0123456789");
    let mut w = within("flush after everything was read", move || {
        w.flush_buffers().unwrap();
        w
    });

    w.write_all(&[1u8; 100]).unwrap();
    let flush = Pending::start("flush", move || w.flush_buffers().map(|()| w));
    flush.assert_pending("100 bytes unread");
    take(&mut r, 99);
    flush.assert_pending("1 byte unread");
    take(&mut r, 1);
    flush.finish().unwrap();
}

#[test]
fn sem_120_flush_waits_for_the_bytes_of_pending_writes() {
    let (mut r, w) = pipe_with(100);
    let w2 = w.try_clone().unwrap();
    let write = start_write(w, vec![3u8; 300]);
    wait_until("the write is queued", || r.available() == 300);
    let flush = Pending::start("flush", move || w2.flush_buffers());
    flush.assert_pending("300 bytes unread");
    take(&mut r, 250);
    assert_eq!(write.finish().0.unwrap(), 300, "50 unread, quota 100");
    flush.assert_pending("the write completed but 50 bytes are unread");
    take(&mut r, 50);
    flush.finish().unwrap();
}

/// SEM-123, with shmpipe's deliberate difference (issue 9): a flush after
/// the reader closed returns at once, `Ok` only if the reader had read
/// everything, `BrokenPipe` if bytes were left unread ("Ok" means "read").
#[test]
fn sem_123_flush_after_peer_closed_returns_at_once_and_ok_only_if_all_was_read() {
    let (r, mut w) = shmpipe::pipe().unwrap();
    w.write_all(&[1u8; 100]).unwrap();
    drop(r);
    let e = within("flush after the reader closed", move || w.flush_buffers()).unwrap_err();
    assert_eq!(Error::kind_of(&e), Some(ErrorKind::BrokenPipe), "{e:?}");

    let (mut r, mut w) = shmpipe::pipe().unwrap();
    w.write_all(&[1u8; 100]).unwrap();
    r.read_exact(&mut [0u8; 100]).unwrap();
    drop(r);
    within("flush after the reader read all and closed", move || {
        w.flush_buffers()
    })
    .unwrap();
}

/// `Read for &PipeReader` and `Write for &PipeWriter`, as for std's pipes:
/// two threads share one handle of each end.
#[test]
fn shared_references_read_and_write() {
    let (r, w) = shmpipe::pipe().unwrap();
    let (r, w) = (std::sync::Arc::new(r), std::sync::Arc::new(w));
    let writers: Vec<_> = (0..2u8)
        .map(|k| {
            let w = std::sync::Arc::clone(&w);
            std::thread::spawn(move || {
                for _ in 0..100 {
                    (&*w).write_all(&[k; 32]).unwrap();
                }
            })
        })
        .collect();
    let mut got = vec![0u8; 2 * 100 * 32];
    (&*r).read_exact(&mut got).unwrap();
    for t in writers {
        t.join().unwrap();
    }
    // Every 32-byte write arrived whole.
    for block in got.chunks(32) {
        assert!(block.iter().all(|&b| b == block[0]), "interleaved write");
    }
    assert_eq!(got.iter().filter(|&&b| b == 1).count(), 100 * 32);
}
