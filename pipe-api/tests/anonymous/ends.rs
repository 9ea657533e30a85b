//! Spec 9.2: the two ends of an anonymous pipe, what each can and cannot
//! do (some of it checked at compile time), duplicates and closing.

use crate::common;

use super::support::*;
use common::{pattern, within, Pending};
use shmpipe::{EndKind, ErrorKind, PipeReader, PipeType, PipeWriter, ReadMode, WaitMode};
use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;

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
// without read access: named_data/peek.rs.)
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
    // (anonymous_xproc/ends_across_processes.rs, sem_023_no_sigpipe_...).
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
