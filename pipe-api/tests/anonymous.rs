//! Anonymous pipes within one process: spec 9.2 (SEM-018 to SEM-025,
//! SEM-027, SEM-028) and the byte-pipe behaviours of 9.6 to 9.12 that apply
//! to a pipe with one read end and one write end.
//!
//! Operations that must wait run on their own thread ([`Pending`]): a
//! "still pending" check waits until the operation's thread sleeps in the
//! kernel and then looks, which a correct implementation cannot fail, and a
//! wrong one fails by returning first; a completion check has a generous hang
//! guard, so a wrong implementation fails a test instead of hanging CI.
//! Cross-process behaviours (SEM-026, inherited copies, kills) are in
//! `anonymous_xproc.rs`.

mod common;

use common::{pattern, within, Pending, HANG};
use shmpipe::{
    EndKind, Error, ErrorKind, PipeBuilder, PipeReader, PipeType, PipeWriter, ReadMode, WaitMode,
};
use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

fn kind(e: &io::Error) -> Option<ErrorKind> {
    Error::kind_of(e)
}

fn pipe_with(quota: u32) -> (PipeReader, PipeWriter) {
    PipeBuilder::new().buffer_size(quota).build().unwrap()
}

/// Reads exactly `n` bytes that are known to be queued.
fn take(r: &mut PipeReader, n: usize) -> Vec<u8> {
    let mut buf = vec![0; n];
    r.read_exact(&mut buf).unwrap();
    buf
}

/// Polls `cond` until it holds; fails the test on a hang.
fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < HANG, "never happened: {what}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Compile-time proof that `$t` does not implement `$tr`: if it did, the
/// path below would match two impls and the crate would not compile.
macro_rules! assert_not_impl {
    ($t:ty: $tr:path) => {
        const _: fn() = || {
            trait AmbiguousIfImpl<A> {
                fn some_item() {}
            }
            impl<T: ?Sized> AmbiguousIfImpl<()> for T {}
            #[allow(dead_code)]
            struct Invalid;
            impl<T: ?Sized + $tr> AmbiguousIfImpl<Invalid> for T {}
            let _ = <$t as AmbiguousIfImpl<_>>::some_item;
        };
    };
}

/// Compile-time proof that `$t` has no inherent method `$m`: a path
/// `<$t>::$m` resolves to an inherent method before a trait's, so if `$t`
/// had one, it would be chosen here instead of the stand-in, and its type
/// could not be `fn(&$t) -> Absent` (`Absent` is private to this check).
macro_rules! assert_no_method {
    ($t:ty, $m:ident) => {
        const _: fn() = || {
            struct Absent;
            trait StandIn {
                fn $m(&self) -> Absent {
                    Absent
                }
            }
            impl<T: ?Sized> StandIn for T {}
            let _: fn(&$t) -> Absent = <$t>::$m;
        };
    };
}

// Neither end derefs to the other, so its methods are all it has.
assert_not_impl!(PipeReader: std::ops::Deref);
assert_not_impl!(PipeWriter: std::ops::Deref);

// SEM-024: reading from a write end or writing to a read end is not even
// expressible, through std's traits (also on shared references, which
// implement them for the right end) or through the pipe's own calls.
assert_not_impl!(PipeWriter: Read);
assert_not_impl!(&'static PipeWriter: Read);
assert_no_method!(PipeWriter, read_pipe);
assert_not_impl!(PipeReader: Write);
assert_not_impl!(&'static PipeReader: Write);
assert_no_method!(PipeReader, try_write);
// SEM-090: the write end lacks read-data access (spec 8.2); peek through
// it is not expressible. (Runtime AccessDenied, for named-pipe ends
// without read access: named_data.rs.)
assert_no_method!(PipeWriter, peek);
assert_no_method!(PipeWriter, available);
// SEM-122: the read end lacks write-data access; flush (`FlushFileBuffers`,
// spec 4.11) through it is not expressible. `Write::flush`, a no-op, is
// excluded with `Write` above.
assert_no_method!(PipeReader, flush_buffers);

// ---------------------------------------------------------------- 9.2

#[test]
fn sem_018_bytes_arrive_in_write_order() {
    let (mut r, w) = pipe_with(1000);
    // Writes of many sizes, several beyond the quota, so blocking and
    // fragmented writes are part of the stream.
    let sizes: Vec<usize> = (0..300).map(|i| (i * 37) % 2900 + 1).collect();
    let data = pattern(sizes.iter().sum(), 7);
    let expected = data.clone();
    let writer = Pending::start("writer", move || {
        let mut at = 0;
        for n in sizes {
            assert_eq!(w.try_write(&data[at..at + n]).unwrap(), n);
            at += n;
        }
    });
    let got = within("read to the end", move || {
        let mut got = Vec::new();
        let mut buf = vec![0; 1500];
        let mut i = 0usize;
        loop {
            // Varying buffer sizes: reads must not depend on write sizes.
            let len = i % 1500 + 1;
            i += 613;
            match r.read(&mut buf[..len]).unwrap() {
                0 => return got,
                n => got.extend_from_slice(&buf[..n]),
            }
        }
    });
    writer.finish();
    assert_eq!(got.len(), expected.len());
    assert!(got == expected, "stream differs from what was written");
}

#[test]
fn sem_019_info_of_anonymous_ends() {
    for (hint, size) in [(0, 4096), (1, 1), (61440, 61440)] {
        let (r, w) = pipe_with(hint);
        let ri = r.info().unwrap();
        assert_eq!(ri.end, EndKind::Server, "hint {hint}");
        assert_eq!(ri.pipe_type, PipeType::Byte);
        assert_eq!((ri.out_size, ri.in_size), (size, size), "hint {hint}");
        assert_eq!(ri.max_instances, 1);
        let wi = w.info().unwrap();
        assert_eq!(wi.end, EndKind::Client, "hint {hint}");
        assert_eq!(wi.pipe_type, PipeType::Byte);
        assert_eq!((wi.out_size, wi.in_size), (size, size), "hint {hint}");
        assert_eq!(wi.max_instances, 1);
    }
    let (r, _w) = shmpipe::pipe().unwrap();
    assert_eq!(r.info().unwrap().in_size, 4096);
}

#[test]
fn sem_019_info_survives_duplication_and_handoff() {
    // An end rebuilt from its descriptor reads the size from shared memory.
    let (r, w) = pipe_with(32792);
    let (a, b) = UnixStream::pair().unwrap();
    w.send_to(&a).unwrap();
    let w2 = PipeWriter::recv_from(&b).unwrap();
    let wi = w2.info().unwrap();
    assert_eq!(
        (wi.end, wi.out_size, wi.in_size),
        (EndKind::Client, 32792, 32792)
    );
    let ri = r.try_clone().unwrap().info().unwrap();
    assert_eq!(
        (ri.end, ri.out_size, ri.in_size),
        (EndKind::Server, 32792, 32792)
    );
}

#[test]
fn sem_020_write_up_to_the_hint_completes_without_a_reader() {
    let (mut r, w) = pipe_with(32792);
    let data = pattern(32768, 1);
    let sent = data.clone();
    let n = within(
        "32768-byte write into a 32792-byte pipe, no reader",
        move || {
            let n = w.try_write(&sent).unwrap();
            (n, w)
        },
    )
    .0;
    assert_eq!(n, 32768);
    assert_eq!(r.available(), 32768);
    assert!(take(&mut r, 32768) == data);
}

#[test]
fn sem_021_reader_gets_everything_then_broken_pipe() {
    let (r, mut w) = shmpipe::pipe().unwrap();
    let mut w2 = w.try_clone().unwrap();
    w.write_all(b"first ").unwrap();
    w2.write_all(b"second ").unwrap();
    w.write_all(b"third").unwrap();
    drop(w);
    drop(w2);
    let (got, end, again, r) = within("reading a closed pipe", move || {
        let mut got = Vec::new();
        let mut buf = [0u8; 4];
        let end = loop {
            match r.read_pipe(&mut buf) {
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(e) => break e,
            }
        };
        let again = r.read_pipe(&mut buf).unwrap_err();
        (got, end, again, r)
    });
    assert_eq!(got, b"first second third");
    assert_eq!(kind(&end), Some(ErrorKind::BrokenPipe));
    assert_eq!(end.kind(), io::ErrorKind::BrokenPipe);
    assert_eq!(
        kind(&again),
        Some(ErrorKind::BrokenPipe),
        "the end is final"
    );
    // std's `Read` reports the same end as Ok(0).
    let mut r = r;
    assert_eq!(
        within("Read::read at the end", move || r
            .read(&mut [0u8; 8])
            .unwrap()),
        0
    );
}

#[test]
fn sem_022_duplicate_of_write_end_keeps_reader_waiting() {
    let (r, w) = shmpipe::pipe().unwrap();
    let dup = w.try_clone().unwrap();
    drop(w);
    let read = Pending::start("read", move || r.read_pipe(&mut [0u8; 8]));
    read.assert_pending("a duplicate of the write end is still open");
    drop(dup);
    let e = read.finish().unwrap_err();
    assert_eq!(kind(&e), Some(ErrorKind::BrokenPipe));
}

#[test]
fn sem_023_write_after_read_end_closed_fails_with_no_data() {
    // The test binary, like every Rust program, ignores SIGPIPE, so the
    // "no SIGPIPE" half is checked in a child with the default disposition
    // (anonymous_xproc.rs, sem_023_no_sigpipe_...).
    let (r, mut w) = shmpipe::pipe().unwrap();
    let r2 = r.try_clone().unwrap();
    drop(r);
    w.write_all(b"still open").unwrap();
    drop(r2);
    let e = w.write(b"x").unwrap_err();
    assert_eq!(kind(&e), Some(ErrorKind::NoData));
    assert_eq!(e.kind(), io::ErrorKind::BrokenPipe);
    let e = w.try_write(b"y").unwrap_err();
    assert_eq!(kind(&e), Some(ErrorKind::NoData));
    // Spec 4.7 puts the peer's state before the data outcomes: a write of
    // nothing fails too.
    let e = w.write(&[]).unwrap_err();
    assert_eq!(kind(&e), Some(ErrorKind::NoData));
    let e = w.try_write(&[]).unwrap_err();
    assert_eq!(kind(&e), Some(ErrorKind::NoData));
    // Also as the very first write after the close (nothing found the
    // reader gone before it).
    let (r, mut w) = shmpipe::pipe().unwrap();
    drop(r);
    let e = w.write(&[]).unwrap_err();
    assert_eq!(kind(&e), Some(ErrorKind::NoData));
}

#[test]
fn sem_024_wrong_end_descriptor_is_access_denied() {
    let (mut r, mut w) = shmpipe::pipe().unwrap();
    let e = PipeReader::from_fd(w.try_clone().unwrap().into_fd()).unwrap_err();
    assert_eq!(kind(&e), Some(ErrorKind::AccessDenied));
    assert_eq!(e.kind(), io::ErrorKind::PermissionDenied);
    let e = PipeWriter::from_fd(r.try_clone().unwrap().into_fd()).unwrap_err();
    assert_eq!(kind(&e), Some(ErrorKind::AccessDenied));

    // The same through a Unix socket: the receiver asks for the wrong end.
    let (a, b) = UnixStream::pair().unwrap();
    w.send_to(&a).unwrap();
    let e = PipeReader::recv_from(&b).unwrap_err();
    assert_eq!(kind(&e), Some(ErrorKind::AccessDenied));
    r.send_to(&a).unwrap();
    let e = PipeWriter::recv_from(&b).unwrap_err();
    assert_eq!(kind(&e), Some(ErrorKind::AccessDenied));

    // The refused duplicates are gone and the pipe is intact.
    w.write_all(b"intact").unwrap();
    drop(w);
    let text = within("read to the end", move || {
        let mut s = String::new();
        r.read_to_string(&mut s).map(|_| s)
    });
    assert_eq!(text.unwrap(), "intact");
}

#[test]
fn from_fd_refuses_a_descriptor_that_is_not_a_pipe_end() {
    let f = std::fs::File::open("/dev/null").unwrap();
    let e = PipeReader::from_fd(f.into()).unwrap_err();
    assert_eq!(kind(&e), Some(ErrorKind::InvalidHandle), "{e}");
    let f = std::fs::File::open("/dev/null").unwrap();
    let e = PipeWriter::from_fd(f.into()).unwrap_err();
    assert_eq!(kind(&e), Some(ErrorKind::InvalidHandle), "{e}");
}

#[test]
fn sem_025_message_read_mode_is_invalid_on_both_ends() {
    let (r, w) = shmpipe::pipe().unwrap();
    let e = r.set_state(Some(ReadMode::Message), None).unwrap_err();
    assert_eq!(kind(&e), Some(ErrorKind::InvalidParameter));
    let e = w.set_state(Some(ReadMode::Message), None).unwrap_err();
    assert_eq!(kind(&e), Some(ErrorKind::InvalidParameter));
    assert!(!r.state().unwrap().message_read);
    assert!(!w.state().unwrap().message_read);
    // Byte read mode is what they have; asking for it is fine.
    r.set_state(Some(ReadMode::Byte), None).unwrap();
    w.set_state(Some(ReadMode::Byte), None).unwrap();

    r.set_state(None, Some(WaitMode::Nonblocking)).unwrap();
    assert!(r.state().unwrap().nonblocking);
    let e = r.read_pipe(&mut [0u8; 4]).unwrap_err();
    assert_eq!(kind(&e), Some(ErrorKind::NoData), "now nonblocking");
}

#[test]
fn sem_027_mode_change_is_seen_through_duplicates() {
    let (r, w) = pipe_with(16);
    let r2 = r.try_clone().unwrap();
    r2.set_nonblocking(true).unwrap();
    assert!(r.state().unwrap().nonblocking);
    let (e, r) = within("read through the other handle", move || {
        let r = r;
        (r.read_pipe(&mut [0u8; 4]).unwrap_err(), r)
    });
    assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
    assert_eq!(kind(&e), Some(ErrorKind::NoData));

    // A duplicate made by hand-off shares the mode too, both ways.
    let (a, b) = UnixStream::pair().unwrap();
    r.send_to(&a).unwrap();
    let r3 = PipeReader::recv_from(&b).unwrap();
    assert!(r3.state().unwrap().nonblocking);
    r3.set_nonblocking(false).unwrap();
    assert!(!r.state().unwrap().nonblocking);
    assert!(!r2.state().unwrap().nonblocking);

    let w = w;
    let w2 = w.try_clone().unwrap();
    w2.set_state(None, Some(WaitMode::Nonblocking)).unwrap();
    assert!(w.state().unwrap().nonblocking);
    // Over the quota: a nonblocking write takes nothing instead of waiting.
    let n = within("nonblocking write", move || {
        w.try_write(&[1u8; 17]).unwrap()
    });
    assert_eq!(n, 0);
    assert_eq!(r.available(), 0);
}

#[test]
fn sem_028_closing_one_of_two_handles_leaves_the_peer_unaffected() {
    let (mut r, mut w) = shmpipe::pipe().unwrap();
    let r2 = r.try_clone().unwrap();
    let mut w2 = w.try_clone().unwrap();

    drop(r2);
    w.write_all(b"one").unwrap();
    assert_eq!(take(&mut r, 3), b"one");

    drop(w2.try_clone().unwrap());
    drop(w);
    // The write end is still open through w2: no end of data.
    let p = r.peek(None).unwrap();
    assert_eq!((p.copied, p.total_available), (0, 0));
    r.set_nonblocking(true).unwrap();
    let err = r.read_pipe(&mut [0u8; 4]).unwrap_err();
    assert_eq!(kind(&err), Some(ErrorKind::NoData), "empty, not ended");
    r.set_nonblocking(false).unwrap();
    w2.write_all(b"two").unwrap();
    assert_eq!(take(&mut r, 3), b"two");
}

// ---------------------------------------------------------------- 9.6

#[test]
fn sem_060_blocking_read_returns_as_soon_as_some_bytes_arrive() {
    let (r, mut w) = shmpipe::pipe().unwrap();
    let read = Pending::start("100-byte read", move || {
        let mut buf = [0u8; 100];
        r.read_pipe(&mut buf).map(|n| buf[..n].to_vec())
    });
    read.assert_pending("nothing written yet");
    w.write_all(&[7u8; 10]).unwrap();
    // The write end stays open: the read must not wait for more or for EOF.
    assert_eq!(read.finish().unwrap(), [7u8; 10]);
    drop(w);
}

#[test]
fn sem_061_two_writes_are_returned_by_one_read() {
    let (r, mut w) = shmpipe::pipe().unwrap();
    w.write_all(b"eleven byte").unwrap();
    w.write_all(b"ten bytes!").unwrap();
    let mut buf = [0u8; 32];
    let n = r.read_pipe(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"eleven byteten bytes!");
}

#[test]
fn sem_062_partial_read_leaves_the_rest_queued() {
    let (r, mut w) = shmpipe::pipe().unwrap();
    w.write_all(b"0123456789").unwrap();
    let mut buf = [0u8; 4];
    assert_eq!(r.read_pipe(&mut buf).unwrap(), 4);
    assert_eq!(&buf, b"0123");
    assert_eq!(r.available(), 6);
    assert_eq!(r.peek(None).unwrap().total_available, 6);
    let mut rest = [0u8; 32];
    let n = r.read_pipe(&mut rest).unwrap();
    assert_eq!(&rest[..n], b"456789");
}

#[test]
fn sem_063_zero_length_write_queues_nothing_and_completes_no_read() {
    let (r, mut w) = shmpipe::pipe().unwrap();
    let probe = r.try_clone().unwrap();
    let r = r;
    let read = Pending::start("pending read", move || {
        let mut buf = [0u8; 8];
        r.read_pipe(&mut buf).map(|n| buf[..n].to_vec())
    });
    assert_eq!(w.try_write(&[]).unwrap(), 0);
    assert_eq!(w.write(&[]).unwrap(), 0);
    assert_eq!(probe.available(), 0);
    read.assert_pending("a zero-length write must not complete a read");
    w.write_all(b"z").unwrap();
    assert_eq!(read.finish().unwrap(), b"z");
}

/// Tested through `read_pipe` (Windows' `ReadFile`). `Read::read` with an
/// empty buffer also returns `Ok(0)` at once, as std requires of every
/// reader, and is checked too.
#[test]
fn sem_064_zero_length_read_returns_0_and_consumes_nothing() {
    let (r, mut w) = shmpipe::pipe().unwrap();
    w.write_all(b"hello").unwrap();
    let mut r = within("zero-length reads", move || {
        let mut r = r;
        assert_eq!(r.read_pipe(&mut []).unwrap(), 0);
        assert_eq!(r.read(&mut []).unwrap(), 0);
        r
    });
    assert_eq!(r.available(), 5);
    assert_eq!(take(&mut r, 5), b"hello");
}

/// Spec 4.6: a blocking zero-length `read_pipe` on an empty pipe waits for
/// data, then returns 0 and leaves the data queued (`ReadFile` semantics).
#[test]
fn zero_length_read_pipe_waits_for_data_and_consumes_nothing() {
    let (r, mut w) = shmpipe::pipe().unwrap();
    let read = Pending::start("zero-length read_pipe", move || {
        let n = r.read_pipe(&mut []);
        (n.map_err(|e| e.to_string()), r)
    });
    read.assert_pending("no data arrived yet");
    w.write_all(b"q").unwrap();
    let (n, mut r) = read.finish();
    assert_eq!(n, Ok(0));
    assert_eq!(r.available(), 1);
    assert_eq!(take(&mut r, 1), b"q");
}

// ---------------------------------------------------------------- 9.8

#[test]
fn sem_082_peek_does_not_consume() {
    let (r, mut w) = shmpipe::pipe().unwrap();
    w.write_all(b"look ").unwrap();
    w.write_all(b"twice").unwrap();
    let mut buf = [0u8; 32];
    let p = r.peek(Some(&mut buf)).unwrap();
    assert_eq!(p.copied, 10);
    assert_eq!(&buf[..10], b"look twice");
    let again = r.peek(Some(&mut buf)).unwrap();
    assert_eq!(again.copied, 10);
    let mut read = [0u8; 32];
    let n = r.read_pipe(&mut read).unwrap();
    assert_eq!(&read[..n], b"look twice");
}

#[test]
fn sem_085_peek_with_small_buffer_reports_left_in_message_0() {
    let (r, mut w) = shmpipe::pipe().unwrap();
    w.write_all(b"0123456789").unwrap();
    let mut buf = [0u8; 4];
    let p = r.peek(Some(&mut buf)).unwrap();
    assert_eq!((p.copied, p.total_available, p.left_in_message), (4, 10, 0));
    assert_eq!(&buf, b"0123");
    assert_eq!(r.available(), 10);
}

#[test]
fn sem_086_peek_without_buffer_reports_total_available() {
    let (r, mut w) = shmpipe::pipe().unwrap();
    w.write_all(b"eleven byte").unwrap();
    w.write_all(b"ten bytes!").unwrap();
    let p = r.peek(None).unwrap();
    assert_eq!((p.copied, p.total_available, p.left_in_message), (0, 21, 0));
    let p = r.peek(Some(&mut [])).unwrap();
    assert_eq!((p.copied, p.total_available, p.left_in_message), (0, 21, 0));
}

#[test]
fn sem_087_peek_on_empty_pipe_returns_at_once() {
    let (r, w) = shmpipe::pipe().unwrap();
    assert!(!r.state().unwrap().nonblocking);
    let (a, b) = within("peek on an empty pipe", move || {
        let r = r;
        let a = r.peek(None).unwrap();
        let b = r.peek(Some(&mut [0u8; 16])).unwrap();
        (a, b)
    });
    for p in [a, b] {
        assert_eq!((p.copied, p.total_available, p.left_in_message), (0, 0, 0));
    }
    drop(w);
}

#[test]
fn sem_089_peek_after_peer_closed_reports_data_then_broken_pipe() {
    let (mut r, mut w) = shmpipe::pipe().unwrap();
    w.write_all(b"twelve bytes").unwrap();
    drop(w);
    let mut buf = [0u8; 32];
    let p = r.peek(Some(&mut buf)).unwrap();
    assert_eq!((p.copied, p.total_available), (12, 12));
    assert_eq!(&buf[..12], b"twelve bytes");
    assert_eq!(take(&mut r, 5), b"twelv");
    assert_eq!(r.peek(None).unwrap().total_available, 7);
    assert_eq!(take(&mut r, 7), b"e bytes");
    let e = r.peek(None).unwrap_err();
    assert_eq!(kind(&e), Some(ErrorKind::BrokenPipe));
}

// ---------------------------------------------------------------- 9.9

/// Starts a blocking write of `data` on its own thread.
fn start_write(w: PipeWriter, data: Vec<u8>) -> Pending<(io::Result<usize>, PipeWriter)> {
    Pending::start("blocking write", move || (w.try_write(&data), w))
}

#[test]
fn sem_092_write_completes_when_queue_ahead_fits_the_quota() {
    let (mut r, mut w) = pipe_with(5000);
    let a = pattern(3000, 1);
    let b = pattern(5000, 2);
    let a2 = a.clone();
    let w = within("3000-byte write", move || {
        w.write_all(&a2).unwrap();
        w
    });
    let write = start_write(w, b.clone());
    wait_until("the write is queued", || r.available() == 8000);
    write.assert_pending("8000 bytes unread, quota 5000");
    assert!(take(&mut r, 2999) == a[..2999]);
    write.assert_pending("5001 bytes unread, quota 5000");
    assert_eq!(take(&mut r, 1), a[2999..]);
    assert_eq!(write.finish().0.unwrap(), 5000);
    assert!(take(&mut r, 5000) == b);
}

#[test]
fn sem_093_write_over_quota_completes_when_reader_consumed_the_excess() {
    let (mut r, w) = pipe_with(5000);
    let data = pattern(7000, 3);
    let write = start_write(w, data.clone());
    wait_until("the write is queued", || r.available() == 7000);
    write.assert_pending("7000 bytes unread, quota 5000");
    assert!(take(&mut r, 1999) == data[..1999]);
    write.assert_pending("5001 bytes unread");
    assert_eq!(take(&mut r, 1), data[1999..2000]);
    assert_eq!(write.finish().0.unwrap(), 7000);
    assert!(take(&mut r, 5000) == data[2000..]);
}

#[test]
fn sem_094_bytes_of_a_pending_write_are_peekable_and_readable() {
    let (mut r, w) = pipe_with(1000);
    let data = pattern(3000, 4);
    let write = start_write(w, data.clone());
    wait_until("the write is published", || r.available() == 3000);
    let mut buf = vec![0u8; 4000];
    let p = r.peek(Some(&mut buf)).unwrap();
    assert_eq!((p.copied, p.total_available), (3000, 3000));
    assert!(buf[..3000] == data[..]);
    write.assert_pending("3000 bytes unread, quota 1000");
    let mut part = vec![0u8; 1500];
    let n = r.read_pipe(&mut part).unwrap();
    assert_eq!(n, 1500, "all 3000 bytes are readable already");
    assert!(part == data[..1500]);
    write.assert_pending_now("1500 bytes unread, quota 1000");
    assert!(take(&mut r, 500) == data[1500..2000]);
    assert_eq!(write.finish().0.unwrap(), 3000);
    assert!(take(&mut r, 1000) == data[2000..]);
}

/// The worked example of spec 5.2 (quota 5000), with SEM-097's zero-length
/// write in the middle.
#[test]
fn sem_095_pending_writes_complete_in_issue_order() {
    let (mut r, mut w) = pipe_with(5000);
    let a = pattern(3000, 5);
    let b = pattern(5000, 6);
    let c = vec![0xC5u8];
    let a2 = a.clone();
    let w = within("write A", move || {
        w.write_all(&a2).unwrap();
        w
    });
    let write_b = start_write(w.try_clone().unwrap(), b.clone());
    wait_until("B queued", || r.available() == 8000);
    let write_c = start_write(w.try_clone().unwrap(), c.clone());
    wait_until("C queued", || r.available() == 8001);
    write_b.assert_pending("B: 8000 ahead");
    write_c.assert_pending_now("C: 8001 ahead");

    // SEM-097: D, zero bytes, completes at once and changes nothing.
    let (d, w) = within("write D (0 bytes)", move || {
        let w = w;
        (w.try_write(&[]).unwrap(), w)
    });
    assert_eq!(d, 0);
    assert_eq!(r.peek(None).unwrap().total_available, 8001);

    assert!(take(&mut r, 3000) == a);
    assert_eq!(write_b.finish().0.unwrap(), 5000, "B: 5000 ahead");
    write_c.assert_pending("C: 5001 ahead");
    assert_eq!(take(&mut r, 1), b[..1]);
    assert_eq!(write_c.finish().0.unwrap(), 1, "C: 5000 ahead");
    let rest = take(&mut r, 5000);
    assert!(rest[..4999] == b[1..]);
    assert_eq!(rest[4999..], c[..]);
    drop(w);
}

#[test]
fn sem_097_zero_length_write_completes_while_another_is_pending() {
    let (mut r, w) = pipe_with(1000);
    let w2 = w.try_clone().unwrap();
    let data = pattern(3000, 8);
    let write = start_write(w, data.clone());
    wait_until("the write is queued", || r.available() == 3000);
    let w2 = within("zero-length writes", move || {
        let mut w2 = w2;
        assert_eq!(w2.try_write(&[]).unwrap(), 0);
        assert_eq!(w2.write(&[]).unwrap(), 0);
        w2
    });
    let p = r.peek(None).unwrap();
    assert_eq!((p.total_available, p.left_in_message), (3000, 0));
    write.assert_pending_now("3000 bytes unread, quota 1000");
    assert!(take(&mut r, 3000) == data);
    assert_eq!(write.finish().0.unwrap(), 3000);
    drop(w2);
}

/// Spec 5.2/5.3: a read pending when a write arrives takes its share
/// first, and only the rest counts against the quota. The read is checked
/// to be pending before the write starts, and nothing else reads until the
/// write returned; the contrast half shows the same write on the same pipe
/// waits when no read is pending. The reading thread runs as soon as data
/// arrives, so this does not check that the write completes while the
/// reader cannot run (a stopped process).
#[test]
fn sem_098_write_of_quota_plus_one_completes_with_a_1_byte_read_pending() {
    let (mut r, w) = pipe_with(512);
    let r2 = r.try_clone().unwrap();
    let data = pattern(513, 9);
    let read = Pending::start("1-byte read", move || {
        let mut b = [0u8; 1];
        r2.read_pipe(&mut b).map(|n| (n, b[0]))
    });
    read.assert_pending("nothing written yet");
    let write = start_write(w, data.clone());
    let (res, w) = write.finish();
    assert_eq!(
        res.unwrap(),
        513,
        "1 byte to the pending read, 512 queued: within the quota"
    );
    assert_eq!(read.finish().unwrap(), (1, data[0]));
    assert_eq!(r.available(), 512);
    assert!(take(&mut r, 512) == data[1..]);

    // No read pending: 513 bytes are over the quota until one is read.
    let data = pattern(513, 13);
    let write = start_write(w, data.clone());
    wait_until("the write is queued", || r.available() == 513);
    write.assert_pending("513 unread, quota 512, no read pending");
    assert_eq!(take(&mut r, 1), data[..1]);
    assert_eq!(write.finish().0.unwrap(), 513);
    assert!(take(&mut r, 512) == data[1..]);
}

#[test]
fn sem_099_pending_read_takes_its_share_of_a_write() {
    let (mut r, mut w) = pipe_with(5000);
    let r2 = r.try_clone().unwrap();
    let data = pattern(4000, 10);
    let read = Pending::start("1000-byte read", move || {
        let mut b = vec![0u8; 1000];
        r2.read_pipe(&mut b).map(|n| b[..n].to_vec())
    });
    read.assert_pending("nothing written yet");
    let d2 = data.clone();
    within("4000-byte write", move || w.write_all(&d2).map(|()| w)).unwrap();
    assert!(read.finish().unwrap() == data[..1000]);
    assert_eq!(r.available(), 3000);
    assert!(take(&mut r, 3000) == data[1000..]);
}

// ---------------------------------------------------------------- 9.10

#[test]
fn sem_100_nonblocking_read_on_empty_pipe_is_no_data() {
    let (r, _w) = shmpipe::pipe().unwrap();
    r.set_nonblocking(true).unwrap();
    let (e1, e2) = within("nonblocking reads", move || {
        let mut r = r;
        let e1 = r.read_pipe(&mut [0u8; 8]).unwrap_err();
        let e2 = r.read(&mut [0u8; 8]).unwrap_err();
        (e1, e2)
    });
    for e in [e1, e2] {
        assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
        assert_eq!(kind(&e), Some(ErrorKind::NoData));
    }
}

#[test]
fn sem_101_nonblocking_write_of_exactly_the_quota_is_written() {
    let (mut r, mut w) = pipe_with(512);
    w.set_nonblocking(true).unwrap();
    let data = pattern(512, 11);
    assert_eq!(w.try_write(&data).unwrap(), 512);
    assert!(take(&mut r, 512) == data);
    assert_eq!(w.write(&data).unwrap(), 512, "through io::Write as well");
    assert_eq!(r.available(), 512);
}

#[test]
fn sem_102_nonblocking_write_over_the_quota_writes_nothing() {
    let (r, mut w) = pipe_with(512);
    w.set_nonblocking(true).unwrap();
    assert_eq!(w.try_write(&[1u8; 513]).unwrap(), 0);
    assert_eq!(r.available(), 0);
    let e = w.write(&[1u8; 513]).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
    assert_eq!(kind(&e), Some(ErrorKind::NoData));
    assert_eq!(r.available(), 0);
    // The boundary with data already queued: 100 + 412 fits, 1 more does not.
    assert_eq!(w.try_write(&[2u8; 100]).unwrap(), 100);
    assert_eq!(w.try_write(&[3u8; 413]).unwrap(), 0);
    assert_eq!(w.try_write(&[3u8; 412]).unwrap(), 412);
    assert_eq!(w.try_write(&[4u8; 1]).unwrap(), 0);
    assert_eq!(r.available(), 512);
}

/// Runs a nonblocking write of `len` bytes (quota 512) while another thread
/// has a 1-byte blocking read pending, and returns (bytes written, the byte
/// the read got, bytes left queued).
///
/// The writer learns of the pending read from a word the reader sets just
/// before it waits, so the write comes once the reader sleeps in its wait.
fn nonblocking_write_with_1_byte_read_pending(len: usize) -> (usize, u8, u64, Vec<u8>) {
    let (r, w) = pipe_with(512);
    w.set_nonblocking(true).unwrap();
    let r2 = r.try_clone().unwrap();
    let read = Pending::start("1-byte read", move || {
        let mut b = [0u8; 1];
        r2.read_pipe(&mut b).map(|n| (n, b[0]))
    });
    read.assert_pending("nothing written yet");
    let data = pattern(len, 12);
    let written = w.try_write(&data).unwrap();
    assert_ne!(written, 0, "the pending read was not taken into account");
    let (n, byte) = read.finish().unwrap();
    assert_eq!(n, 1);
    (written, byte, r.available(), data)
}

#[test]
fn sem_103_nonblocking_write_hands_the_pending_read_its_byte_only() {
    let (written, byte, left, data) = nonblocking_write_with_1_byte_read_pending(514);
    assert_eq!(written, 1);
    assert_eq!(byte, data[0]);
    assert_eq!(left, 0, "nothing but the read's byte may be written");
}

/// Spec 5.5's other data point: with the read's byte taken, 512 bytes fit.
#[test]
fn nonblocking_513_bytes_with_a_1_byte_read_pending_are_all_written() {
    let (written, byte, left, data) = nonblocking_write_with_1_byte_read_pending(513);
    assert_eq!(written, 513);
    assert_eq!(byte, data[0]);
    assert_eq!(left, 512);
}

#[test]
fn sem_105_set_state_switches_wait_mode_and_state_reports_it() {
    let (r, w) = pipe_with(16);
    for s in [r.state().unwrap(), w.state().unwrap()] {
        assert!(!s.nonblocking && !s.message_read);
        assert_eq!(s.current_instances, 1);
    }
    r.set_state(None, Some(WaitMode::Nonblocking)).unwrap();
    w.set_state(None, Some(WaitMode::Nonblocking)).unwrap();
    for s in [r.state().unwrap(), w.state().unwrap()] {
        assert!(s.nonblocking && !s.message_read);
    }
    let (r, w) = within("nonblocking operations", move || {
        let (r, w) = (r, w);
        let e = r.read_pipe(&mut [0u8; 4]).unwrap_err();
        assert_eq!(kind(&e), Some(ErrorKind::NoData));
        assert_eq!(w.try_write(&[0u8; 17]).unwrap(), 0);
        (r, w)
    });

    r.set_state(None, Some(WaitMode::Blocking)).unwrap();
    w.set_nonblocking(false).unwrap();
    for s in [r.state().unwrap(), w.state().unwrap()] {
        assert!(!s.nonblocking && !s.message_read);
    }
    let mut probe = r.try_clone().unwrap();
    let r = r;
    let mut w = w;
    let read = Pending::start("blocking read", move || r.read_pipe(&mut [0u8; 4]));
    read.assert_pending("the read end is blocking again");
    w.write_all(b"x").unwrap();
    assert_eq!(read.finish().unwrap(), 1);
    let write = start_write(w, vec![5u8; 17]);
    write.assert_pending("the write end is blocking again: 17 unread, quota 16");
    assert_eq!(take(&mut probe, 1), [5]);
    assert_eq!(write.finish().0.unwrap(), 17);
}

// spec 4.16: a wait-mode change applies to operations started afterwards;
// operations already pending keep the mode they started in.
#[test]
fn pending_read_and_write_keep_the_wait_mode_they_started_in() {
    let (r, w) = pipe_with(16);
    let mut r2 = r.try_clone().unwrap();
    let w2 = w.try_clone().unwrap();

    let read = Pending::start("blocking read", move || {
        let mut buf = [0u8; 8];
        r.read_pipe(&mut buf).map(|n| buf[..n].to_vec())
    });
    read.assert_pending("empty pipe, blocking end");
    r2.set_state(None, Some(WaitMode::Nonblocking)).unwrap();
    // A read started now is nonblocking...
    let (e, r2_back) = within("nonblocking read beside the pending one", move || {
        let r2 = r2;
        (r2.read_pipe(&mut [0u8; 8]).unwrap_err(), r2)
    });
    r2 = r2_back;
    assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
    assert_eq!(kind(&e), Some(ErrorKind::NoData));
    // ...the one already waiting neither fails nor returns: it still blocks.
    read.assert_pending("started blocking: keeps waiting for data");
    let mut w = w;
    w.write_all(b"data").unwrap();
    assert_eq!(read.finish().unwrap(), b"data");

    // The same for a write waiting on the quota.
    r2.set_nonblocking(false).unwrap();
    let data = pattern(17, 14);
    let write = start_write(w, data.clone());
    wait_until("the write is queued", || r2.available() == 17);
    write.assert_pending("17 unread, quota 16");
    w2.set_state(None, Some(WaitMode::Nonblocking)).unwrap();
    let (n, w2) = within("nonblocking write beside the pending one", move || {
        let w2 = w2;
        (w2.try_write(&[1u8; 1]).unwrap(), w2)
    });
    assert_eq!(n, 0, "a write started now is nonblocking: over the quota");
    write.assert_pending("started blocking: keeps waiting for the quota");
    assert_eq!(r2.available(), 17, "nothing withdrawn, nothing added");
    assert_eq!(take(&mut r2, 1), data[..1]);
    assert_eq!(write.finish().0.unwrap(), 17);
    assert!(take(&mut r2, 16) == data[1..]);
    drop(w2);
}

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
