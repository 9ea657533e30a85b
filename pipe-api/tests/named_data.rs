//! Named pipes: the data path (spec sections 4.6–4.16, 5 and 6), one test
//! per testable behaviour SEM-059 to SEM-135, plus the ported Windows
//! samples (`examples/named_*.rs`) run against each other across processes.
//!
//! Unless a test says otherwise the pipe has the spec's defaults (section
//! 9): Duplex, max instances 1, quotas 1024 each way, client opened for
//! reading and writing.
//!
//! Not here (listed by number only, so that the coverage tool does not count
//! them): behaviours 065, 119, 121, 131 and the asynchronous half of 100 need
//! the async API or cancellation, which the crate does not have yet; SEM-067, SEM-070 and SEM-081 concern one end held by several
//! processes, which needs client-end passing between processes, so they run
//! with threads holding duplicates of the end.
//!
//! Waiting: "still pending" is checked once the operation's thread sleeps
//! in the kernel (`Pending::assert_pending`: a wrong implementation returns
//! instead of going to sleep), "completes at once" as returning instead of
//! going to sleep (`Pending::settle`), and everything that must happen is
//! given [`QUICK`] or [`HANG`], so load on the machine cannot make a correct
//! implementation fail.
//!
//! Processes: children are this test binary run again as one of the
//! `child_*` functions listed in `main` at the end (see `common`).

mod common;

#[allow(dead_code)]
#[path = "../examples/named_call_client.rs"]
mod sample_call;
#[allow(dead_code)]
#[path = "../examples/named_client.rs"]
mod sample_client;
#[allow(dead_code)]
#[path = "../examples/named_server_multithreaded.rs"]
mod sample_server;
#[allow(dead_code)]
#[path = "../examples/named_transact_client.rs"]
mod sample_transact;

use common::{child_command, child_done, pattern, wait_child, within, Pending, HANG};
use shmpipe::named::{
    call, ClientOptions, Connected, Direction, MsgRead, NamedPipeClient, NamedPipeServer,
    ServerOptions, WaitTimeout,
};
use shmpipe::{Error, ErrorKind, PeekInfo, PipeState, PipeType, ReadMode, WaitMode};
use std::fmt::Debug;
use std::io::{self, BufRead, Read, Write};
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

/// Bound for what must happen at once or soon: far above what a correct
/// implementation needs on a loaded machine, low enough that a broken one
/// fails without stalling the suite.
const QUICK: Duration = Duration::from_secs(10);

/// Environment variable carrying the pipe name to a child process.
const PIPE_ENV: &str = "SHMPIPE_TEST_PIPE";
/// Environment variable carrying the sample server's client count.
const CLIENTS_ENV: &str = "SHMPIPE_TEST_CLIENTS";
/// Line the sample server child prints once its first instance listens.
const READY: &str = "sample server ready";

// ------------------------------------------------------------------ helpers

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A pipe name no other test (or test run) uses.
fn unique(tag: &str) -> String {
    format!(
        r"\\.\pipe\shmpipe-named-data-{}-{}-{tag}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

fn kind(e: &io::Error) -> Option<ErrorKind> {
    Error::kind_of(e)
}

#[track_caller]
fn assert_kind<T: Debug>(r: io::Result<T>, want: ErrorKind) {
    match r {
        Ok(v) => panic!("expected {want:?}, got Ok({v:?})"),
        Err(e) => assert_eq!(kind(&e), Some(want), "expected {want:?}, got {e:?}"),
    }
}

/// The spec's default pipe (section 9).
fn defaults() -> ServerOptions {
    let mut o = ServerOptions::new();
    o.access(Direction::Duplex)
        .max_instances(1)
        .quotas(1024, 1024);
    o
}

/// The defaults with message type and a message-read server end.
fn message_opts() -> ServerOptions {
    let mut o = defaults();
    o.pipe_type(PipeType::Message).read_mode(ReadMode::Message);
    o
}

fn pair_with(o: &ServerOptions) -> (NamedPipeServer, NamedPipeClient) {
    let name = unique("pair");
    let s = o.create(&name).unwrap();
    let c = ClientOptions::new().open(&name).unwrap();
    (s, c)
}

/// A connected default byte pipe.
fn byte_pair() -> (NamedPipeServer, NamedPipeClient) {
    pair_with(&defaults())
}

/// A connected message pipe, both ends in message-read mode.
fn msg_pair() -> (NamedPipeServer, NamedPipeClient) {
    let (s, c) = pair_with(&message_opts());
    c.set_read_mode(ReadMode::Message).unwrap();
    (s, c)
}

fn quota_pair(out: u32, inbound: u32) -> (NamedPipeServer, NamedPipeClient) {
    let mut o = defaults();
    o.quotas(out, inbound);
    pair_with(&o)
}

/// What the tests do with either end.
trait PipeEnd: Send + Sync + 'static {
    fn send(&self, data: &[u8]) -> io::Result<usize>;
    fn recv(&self, buf: &mut [u8]) -> io::Result<MsgRead>;
    fn peek_at(&self, buf: Option<&mut [u8]>) -> io::Result<PeekInfo>;
    fn flush_all(&self) -> io::Result<()>;
    fn get_state(&self) -> io::Result<PipeState>;
    fn put_state(&self, r: Option<ReadMode>, w: Option<WaitMode>) -> io::Result<()>;
    fn transact_with(&self, request: &[u8], reply: &mut [u8]) -> io::Result<MsgRead>;
}

macro_rules! pipe_end {
    ($t:ty) => {
        impl PipeEnd for $t {
            fn send(&self, data: &[u8]) -> io::Result<usize> {
                self.send_msg(data)
            }
            fn recv(&self, buf: &mut [u8]) -> io::Result<MsgRead> {
                self.recv_msg(buf)
            }
            fn peek_at(&self, buf: Option<&mut [u8]>) -> io::Result<PeekInfo> {
                self.peek(buf)
            }
            fn flush_all(&self) -> io::Result<()> {
                self.flush_buffers()
            }
            fn get_state(&self) -> io::Result<PipeState> {
                self.state()
            }
            fn put_state(&self, r: Option<ReadMode>, w: Option<WaitMode>) -> io::Result<()> {
                self.set_state(r, w)
            }
            fn transact_with(&self, request: &[u8], reply: &mut [u8]) -> io::Result<MsgRead> {
                self.transact(request, reply)
            }
        }
    };
}
pipe_end!(NamedPipeServer);
pipe_end!(NamedPipeClient);

/// The bytes of a read and whether it completed the message.
type ReadResult = io::Result<(Vec<u8>, bool)>;

/// One read of at most `cap` bytes: the bytes and whether the message (or
/// byte read) was complete.
fn recv_vec<E: PipeEnd + ?Sized>(e: &E, cap: usize) -> ReadResult {
    let mut buf = vec![0u8; cap];
    let m = e.recv(&mut buf)?;
    buf.truncate(m.len);
    Ok((buf, m.complete))
}

/// Reads exactly `n` bytes in byte-read mode.
fn read_n<E: PipeEnd + ?Sized>(e: &E, n: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(n);
    while v.len() < n {
        let (chunk, _) = recv_vec(e, n - v.len()).unwrap();
        assert!(!chunk.is_empty(), "unexpected 0-byte read");
        v.extend_from_slice(&chunk);
    }
    v
}

/// Every unread byte queued for `e`.
fn total<E: PipeEnd + ?Sized>(e: &E) -> u64 {
    e.peek_at(None).unwrap().total_available
}

fn wait_until(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    loop {
        if f() {
            return true;
        }
        if start.elapsed() > limit {
            return false;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[track_caller]
fn await_total<E: PipeEnd + ?Sized>(e: &E, n: u64) {
    assert!(
        wait_until(HANG, || total(e) == n),
        "{n} bytes never became available (have {})",
        total(e)
    );
}

fn pending_send<E: PipeEnd>(e: &Arc<E>, data: Vec<u8>) -> Pending<io::Result<usize>> {
    let e = Arc::clone(e);
    Pending::start("write", move || e.send(&data))
}

fn pending_recv<E: PipeEnd>(e: &Arc<E>, cap: usize) -> Pending<ReadResult> {
    let e = Arc::clone(e);
    Pending::start("read", move || recv_vec(&*e, cap))
}

fn pending_flush<E: PipeEnd>(e: &Arc<E>) -> Pending<io::Result<()>> {
    let e = Arc::clone(e);
    Pending::start("flush", move || e.flush_all())
}

fn pending_transact<E: PipeEnd>(e: &Arc<E>, request: &[u8], cap: usize) -> Pending<ReadResult> {
    let e = Arc::clone(e);
    let request = request.to_vec();
    Pending::start("transact", move || {
        let mut buf = vec![0u8; cap];
        let m = e.transact_with(&request, &mut buf)?;
        buf.truncate(m.len);
        Ok((buf, m.complete))
    })
}

// ------------------------------------------------- 9.6 byte-mode transfer

fn sem_059_duplex_byte_pipe_carries_both_directions_independently() {
    let (s, c) = byte_pair();
    assert_eq!(s.send_msg(b"from the server").unwrap(), 15);
    assert_eq!(c.send_msg(b"from the client!").unwrap(), 16);
    // Each end sees only what the other end wrote.
    assert_eq!(total(&c), 15);
    assert_eq!(total(&s), 16);
    let mut buf = [0u8; 64];
    let n = (&c).read(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"from the server");
    // Draining one direction left the other untouched.
    assert_eq!(total(&s), 16);
    let n = (&s).read(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"from the client!");
    assert_eq!(total(&c), 0);
    assert_eq!(total(&s), 0);
}

fn sem_060_blocking_read_returns_as_soon_as_some_bytes_are_there() {
    let (s, c) = byte_pair();
    let c = Arc::new(c);
    let r = pending_recv(&c, 100);
    r.assert_pending("nothing was written yet");
    s.send_msg(&[7u8; 10]).unwrap();
    let (data, _) = r.finish().unwrap();
    assert_eq!(data, vec![7u8; 10]);
}

fn sem_061_byte_read_joins_two_writes() {
    let (s, c) = byte_pair();
    s.send_msg(b"hello world").unwrap();
    s.send_msg(b"0123456789").unwrap();
    let (data, complete) = recv_vec(&c, 32).unwrap();
    assert_eq!(data, b"hello world0123456789");
    assert!(complete);
}

fn sem_062_short_byte_read_leaves_the_rest_queued() {
    let (s, c) = byte_pair();
    s.send_msg(b"0123456789").unwrap();
    let (data, complete) = recv_vec(&c, 4).unwrap();
    assert_eq!(data, b"0123");
    assert!(complete, "byte reads never report MoreData");
    assert_eq!(total(&c), 6);
    assert_eq!(recv_vec(&c, 32).unwrap().0, b"456789");
}

fn sem_063_zero_length_write_on_byte_pipe_queues_nothing() {
    let (s, c) = byte_pair();
    let c = Arc::new(c);
    let r = pending_recv(&c, 16);
    r.assert_pending("nothing written yet");
    assert_eq!(s.send_msg(&[]).unwrap(), 0);
    r.assert_pending("a zero-length write on a byte pipe completes no read");
    assert_eq!(total(&*c), 0);
    s.send_msg(b"x").unwrap();
    assert_eq!(r.finish().unwrap().0, b"x");
    // Nothing else was queued by the empty write.
    c.set_nonblocking(true).unwrap();
    assert_kind(recv_vec(&*c, 16), ErrorKind::NoData);
}

fn sem_064_zero_length_byte_read_returns_at_once_and_consumes_nothing() {
    let (s, c) = byte_pair();
    s.send_msg(b"0123456789").unwrap();
    let (c, m) = within("zero-length read", move || {
        let m = c.recv_msg(&mut []);
        (c, m)
    });
    assert_eq!(
        m.unwrap(),
        MsgRead {
            len: 0,
            complete: true
        }
    );
    assert_eq!(total(&c), 10);
    assert_eq!(recv_vec(&c, 32).unwrap().0, b"0123456789");
}

fn sem_066_data_calls_on_a_never_connected_server_end_fail_with_pipe_listening() {
    let s = defaults().create(&unique("listening")).unwrap();
    assert!(!s.state().unwrap().nonblocking);
    let (w, r, rr) = within("read/write on a listening end", move || {
        let w = s.send_msg(b"x");
        let r = s.recv_msg(&mut [0u8; 8]);
        let rr = (&s).read(&mut [0u8; 8]);
        (w, r, rr)
    });
    assert_kind(w, ErrorKind::PipeListening);
    assert_kind(r, ErrorKind::PipeListening);
    assert_kind(rr, ErrorKind::PipeListening);
}

/// Asserts that `stream` consists of whole `block`-byte runs of one byte
/// value each, exactly the values in `want`.
fn assert_blocks(stream: &[u8], block: usize, mut want: Vec<u8>) {
    assert_eq!(stream.len(), block * want.len());
    let mut got: Vec<u8> = stream
        .chunks(block)
        .enumerate()
        .map(|(i, b)| {
            assert!(
                b.iter().all(|&x| x == b[0]),
                "block {i} is not contiguous: another write cut into it"
            );
            b[0]
        })
        .collect();
    got.sort_unstable();
    want.sort_unstable();
    assert_eq!(got, want);
}

fn sem_067_concurrent_writers_on_one_end_keep_blocks_contiguous() {
    // Two threads here (both directions); two processes on one client end
    // in named_handoff.rs.
    const BLOCK: usize = 100_000;
    const PER_WRITER: u8 = 3;
    let (s, c) = byte_pair();
    within("two writers, one reader", move || {
        let c2 = c.try_clone().unwrap();
        let want: Vec<u8> = (1..=2 * PER_WRITER).collect();
        // Client → server, through two handles of the client end.
        let stream = std::thread::scope(|sc| {
            for (w, end) in [(0u8, &c), (1u8, &c2)] {
                sc.spawn(move || {
                    for i in 0..PER_WRITER {
                        let v = 1 + w * PER_WRITER + i;
                        assert_eq!(end.send_msg(&vec![v; BLOCK]).unwrap(), BLOCK);
                    }
                });
            }
            read_n(&s, BLOCK * want.len())
        });
        assert_blocks(&stream, BLOCK, want.clone());
        // Server → client, the server end shared by two threads.
        let stream = std::thread::scope(|sc| {
            for w in 0..2u8 {
                let s = &s;
                sc.spawn(move || {
                    for i in 0..PER_WRITER {
                        let v = 1 + w * PER_WRITER + i;
                        assert_eq!(s.send_msg(&vec![v; BLOCK]).unwrap(), BLOCK);
                    }
                });
            }
            read_n(&c, BLOCK * want.len())
        });
        assert_blocks(&stream, BLOCK, want);
    });
}

// ------------------------------------------------------- 9.7 message mode

fn sem_068_message_read_returns_one_message_per_read() {
    let (s, c) = msg_pair();
    c.send_msg(b"first message").unwrap();
    c.send_msg(b"second").unwrap();
    assert_eq!(
        recv_vec(&s, 256).unwrap(),
        (b"first message".to_vec(), true)
    );
    assert_eq!(recv_vec(&s, 256).unwrap(), (b"second".to_vec(), true));
}

fn sem_069_short_message_reads_give_more_data_then_the_rest() {
    let (s, c) = msg_pair();
    s.send_msg(b"0123456789").unwrap();
    assert_eq!(recv_vec(&c, 4).unwrap(), (b"0123".to_vec(), false));
    assert_eq!(recv_vec(&c, 4).unwrap(), (b"4567".to_vec(), false));
    assert_eq!(recv_vec(&c, 4).unwrap(), (b"89".to_vec(), true));
}

fn sem_070_partly_read_message_is_continued_by_another_thread() {
    // Another thread here, through a duplicate handle (client) and a shared
    // end (server); another process in named_handoff.rs.
    let (s, c) = msg_pair();
    s.send_msg(b"0123456789").unwrap();
    assert_eq!(recv_vec(&c, 4).unwrap(), (b"0123".to_vec(), false));
    let dup = Arc::new(c.try_clone().unwrap());
    let rest = pending_recv(&dup, 32).finish().unwrap();
    assert_eq!(rest, (b"456789".to_vec(), true));

    c.send_msg(b"abcdefghij").unwrap();
    let s = Arc::new(s);
    assert_eq!(recv_vec(&*s, 4).unwrap(), (b"abcd".to_vec(), false));
    let rest = pending_recv(&s, 32).finish().unwrap();
    assert_eq!(rest, (b"efghij".to_vec(), true));
}

fn sem_071_byte_read_end_on_message_pipe_reads_across_messages() {
    let (s, c) = pair_with(&message_opts());
    assert!(!c.state().unwrap().message_read);
    s.send_msg(b"hello world").unwrap();
    s.send_msg(b"0123456789").unwrap();
    assert_eq!(
        recv_vec(&c, 32).unwrap(),
        (b"hello world0123456789".to_vec(), true)
    );
}

fn sem_072_byte_read_end_on_message_pipe_never_gets_more_data() {
    let (s, c) = pair_with(&message_opts());
    s.send_msg(b"0123456789").unwrap();
    assert_eq!(recv_vec(&c, 4).unwrap(), (b"0123".to_vec(), true));
    let mut buf = [0u8; 4];
    assert_eq!((&c).read(&mut buf).unwrap(), 4);
    assert_eq!(&buf, b"4567");
    assert_eq!(recv_vec(&c, 4).unwrap(), (b"89".to_vec(), true));
}

fn sem_073_zero_length_write_on_message_pipe_is_an_empty_message() {
    let (s, c) = msg_pair();
    assert_eq!(c.send_msg(&[]).unwrap(), 0);
    let (s, r) = within("read the empty message", move || {
        let r = recv_vec(&s, 32);
        (s, r)
    });
    assert_eq!(r.unwrap(), (Vec::new(), true));
    // Exactly one message was queued.
    s.set_nonblocking(true).unwrap();
    assert_kind(recv_vec(&s, 32), ErrorKind::NoData);
}

fn sem_074_empty_message_completes_exactly_one_of_two_pending_reads() {
    let (s, c) = msg_pair();
    let c = Arc::new(c);
    let first = pending_recv(&c, 32);
    first.assert_pending("nothing written yet");
    let second = pending_recv(&c, 32);
    second.assert_pending("nothing written yet");
    s.send_msg(&[]).unwrap();
    // Which thread's read was issued first is not observable from here (a
    // loaded machine may start them late), so accept either as the one the
    // empty message completes.
    let mut done = None;
    assert!(
        wait_until(HANG, || {
            done = first
                .try_finish()
                .map(|r| (r, 0))
                .or_else(|| second.try_finish().map(|r| (r, 1)));
            done.is_some()
        }),
        "the empty message completed no read"
    );
    let (r, which) = done.unwrap();
    assert_eq!(r.unwrap(), (Vec::new(), true));
    let other = if which == 0 { second } else { first };
    other.assert_pending("an empty message completes only one read");
    s.send_msg(b"next").unwrap();
    assert_eq!(other.finish().unwrap(), (b"next".to_vec(), true));
}

fn sem_075_empty_message_behind_data_is_read_separately_in_both_read_modes() {
    let (s, c) = msg_pair();
    for mode in [ReadMode::Message, ReadMode::Byte] {
        c.set_read_mode(mode).unwrap();
        s.send_msg(b"abc").unwrap();
        s.send_msg(&[]).unwrap();
        s.send_msg(b"def").unwrap();
        assert_eq!(
            recv_vec(&c, 32).unwrap(),
            (b"abc".to_vec(), true),
            "{mode:?}"
        );
        assert_eq!(recv_vec(&c, 32).unwrap(), (Vec::new(), true), "{mode:?}");
        assert_eq!(
            recv_vec(&c, 32).unwrap(),
            (b"def".to_vec(), true),
            "{mode:?}"
        );
    }
}

fn sem_076_zero_length_message_read_gives_more_data_and_consumes_nothing() {
    let (s, c) = msg_pair();
    s.send_msg(b"0123456789").unwrap();
    let (c, m) = within("zero-length message read", move || {
        let m = c.recv_msg(&mut []);
        (c, m)
    });
    assert_eq!(
        m.unwrap(),
        MsgRead {
            len: 0,
            complete: false
        }
    );
    let p = c.peek(None).unwrap();
    assert_eq!((p.total_available, p.left_in_message), (10, 10));
    assert_eq!(recv_vec(&c, 32).unwrap(), (b"0123456789".to_vec(), true));
}

fn sem_077_message_larger_than_the_quota_arrives_intact() {
    let (s, c) = msg_pair();
    let s = Arc::new(s);
    let data = pattern(1024 + 2000, 77);
    let w = pending_send(&s, data.clone());
    let (got, complete) = recv_vec(&c, 8192).unwrap();
    assert!(complete);
    assert_eq!(got, data);
    assert_eq!(w.finish().unwrap(), data.len());
}

fn sem_078_message_read_mode_on_byte_pipe_is_invalid_parameter() {
    let (s, c) = byte_pair();
    assert_kind(
        s.set_read_mode(ReadMode::Message),
        ErrorKind::InvalidParameter,
    );
    assert_kind(
        c.set_read_mode(ReadMode::Message),
        ErrorKind::InvalidParameter,
    );
    assert_kind(
        c.set_state(Some(ReadMode::Message), Some(WaitMode::Nonblocking)),
        ErrorKind::InvalidParameter,
    );
    for st in [s.state().unwrap(), c.state().unwrap()] {
        assert!(!st.message_read);
        assert!(!st.nonblocking, "a failed set_state changed nothing");
    }
}

fn sem_079_message_type_without_message_read_option_starts_in_byte_read_mode() {
    let mut o = defaults();
    o.pipe_type(PipeType::Message);
    let (s, c) = pair_with(&o);
    assert!(!s.state().unwrap().message_read);
    assert_eq!(s.info().unwrap().pipe_type, PipeType::Message);
    // And it reads like a byte-read end: across message boundaries.
    c.send_msg(b"ab").unwrap();
    c.send_msg(b"cd").unwrap();
    assert_eq!(recv_vec(&s, 32).unwrap(), (b"abcd".to_vec(), true));
}

fn sem_080_client_switches_read_mode_and_each_read_follows_it() {
    let (s, c) = pair_with(&message_opts());
    for m in ["one", "two", "three", "four", "five"] {
        s.send_msg(m.as_bytes()).unwrap();
    }
    assert!(!c.state().unwrap().message_read);
    assert_eq!(recv_vec(&c, 5).unwrap(), (b"onetw".to_vec(), true));
    c.set_read_mode(ReadMode::Message).unwrap();
    assert!(c.state().unwrap().message_read);
    assert_eq!(recv_vec(&c, 32).unwrap(), (b"o".to_vec(), true));
    assert_eq!(recv_vec(&c, 32).unwrap(), (b"three".to_vec(), true));
    c.set_read_mode(ReadMode::Byte).unwrap();
    assert!(!c.state().unwrap().message_read);
    assert_eq!(recv_vec(&c, 32).unwrap(), (b"fourfive".to_vec(), true));
}

/// Message `seq` of writer `w` in SEM-081: a header naming both, then a
/// pattern; lengths from 3 to 3002 bytes (many above the quota).
fn numbered_message(w: u8, seq: u16) -> Vec<u8> {
    let len = 3 + (usize::from(seq) * 397 + usize::from(w) * 131) % 3000;
    let mut m = vec![w];
    m.extend_from_slice(&seq.to_le_bytes());
    m.extend(pattern(
        len - 3,
        w.wrapping_mul(100).wrapping_add(seq as u8),
    ));
    m
}

fn sem_081_messages_of_concurrent_writers_arrive_whole_and_separate() {
    // Two threads with duplicate handles of the client end; two processes
    // in named_handoff.rs.
    const PER_WRITER: u16 = 40;
    let (s, c) = msg_pair();
    within("two message writers", move || {
        let c2 = c.try_clone().unwrap();
        std::thread::scope(|sc| {
            for (w, end) in [(0u8, &c), (1u8, &c2)] {
                sc.spawn(move || {
                    for seq in 0..PER_WRITER {
                        let m = numbered_message(w, seq);
                        assert_eq!(end.send_msg(&m).unwrap(), m.len());
                    }
                });
            }
            let mut next = [0u16; 2];
            for _ in 0..2 * PER_WRITER {
                let (m, complete) = recv_vec(&s, 4096).unwrap();
                assert!(complete, "a message was split");
                let w = m[0];
                let seq = u16::from_le_bytes([m[1], m[2]]);
                assert_eq!(seq, next[usize::from(w)], "writer {w}: lost or reordered");
                assert_eq!(m, numbered_message(w, seq), "message mixed with another");
                next[usize::from(w)] += 1;
            }
        });
    });
}

// --------------------------------------------------------------- 9.8 peek

fn sem_082_peek_copies_without_consuming() {
    let (s, c) = byte_pair();
    s.send_msg(b"peek me").unwrap();
    for _ in 0..2 {
        let mut buf = [0u8; 32];
        let p = c.peek(Some(&mut buf)).unwrap();
        assert_eq!((p.copied, p.total_available), (7, 7));
        assert_eq!(&buf[..7], b"peek me");
    }
    assert_eq!(recv_vec(&c, 32).unwrap().0, b"peek me");
    assert_eq!(total(&c), 0);
}

fn sem_083_peek_counts_every_queued_message() {
    let (s, c) = msg_pair();
    s.send_msg(b"hello world").unwrap();
    s.send_msg(b"0123456789").unwrap();
    assert_eq!(total(&c), 21);
    c.send_msg(b"hello world").unwrap();
    c.send_msg(b"0123456789").unwrap();
    assert_eq!(total(&s), 21);
}

fn sem_084_peek_on_message_pipe_stops_at_the_head_message() {
    let (s, c) = pair_with(&message_opts());
    // The client end is in byte-read mode; peek still respects messages.
    assert!(!c.state().unwrap().message_read);
    s.send_msg(b"hello world").unwrap();
    s.send_msg(b"0123456789").unwrap();
    c.send_msg(b"hello world").unwrap();
    c.send_msg(b"0123456789").unwrap();
    for p in [
        {
            let mut buf = [0u8; 32];
            let p = c.peek(Some(&mut buf)).unwrap();
            assert_eq!(&buf[..p.copied], b"hello world");
            p
        },
        {
            let mut buf = [0u8; 32];
            let p = s.peek(Some(&mut buf)).unwrap();
            assert_eq!(&buf[..p.copied], b"hello world");
            p
        },
    ] {
        assert_eq!(p.copied, 11);
        assert_eq!(p.total_available, 21);
        assert_eq!(p.left_in_message, 0);
    }
}

fn sem_085_short_peek_reports_bytes_left_in_message() {
    let (s, c) = msg_pair();
    s.send_msg(b"0123456789").unwrap();
    let mut buf = [0u8; 4];
    let p = c.peek(Some(&mut buf)).unwrap();
    assert_eq!(&buf, b"0123");
    assert_eq!((p.copied, p.total_available, p.left_in_message), (4, 10, 6));

    let (s, c) = byte_pair();
    s.send_msg(b"0123456789").unwrap();
    let mut buf = [0u8; 4];
    let p = c.peek(Some(&mut buf)).unwrap();
    assert_eq!(&buf, b"0123");
    assert_eq!((p.copied, p.total_available, p.left_in_message), (4, 10, 0));
}

fn sem_086_peek_without_buffer_reports_totals_and_head_message_length() {
    let (s, c) = msg_pair();
    s.send_msg(b"hello world").unwrap();
    s.send_msg(b"0123456789").unwrap();
    let p = c.peek(None).unwrap();
    assert_eq!(
        (p.copied, p.total_available, p.left_in_message),
        (0, 21, 11)
    );
    let p = c.peek(Some(&mut [])).unwrap();
    assert_eq!(
        (p.copied, p.total_available, p.left_in_message),
        (0, 21, 11)
    );

    let (s, c) = byte_pair();
    s.send_msg(b"hello world").unwrap();
    let p = c.peek(None).unwrap();
    assert_eq!((p.copied, p.total_available, p.left_in_message), (0, 11, 0));
}

fn sem_087_peek_on_empty_pipe_returns_at_once() {
    let (s, c) = msg_pair();
    let (b, m) = byte_pair();
    let results = within("peek on empty pipes", move || {
        let mut buf = [0u8; 16];
        [
            c.peek(None),
            c.peek(Some(&mut buf)),
            s.peek(Some(&mut buf)),
            b.peek(None),
            m.peek(Some(&mut buf)),
        ]
        .map(|r| r.map(|p| (p.copied, p.total_available, p.left_in_message)))
    });
    for r in results {
        assert_eq!(r.unwrap(), (0, 0, 0));
    }
}

fn sem_088_peek_on_unconnected_ends() {
    let name = unique("peek-states");
    let s = defaults().create(&name).unwrap();
    assert_kind(s.peek(None), ErrorKind::BadPipe);
    let c = ClientOptions::new().open(&name).unwrap();
    s.send_msg(b"x").unwrap();
    s.disconnect().unwrap();
    assert_kind(s.peek(None), ErrorKind::BadPipe);
    assert_kind(c.peek(None), ErrorKind::PipeNotConnected);
}

fn sem_089_peek_after_peer_closed_reports_queued_data_then_broken_pipe() {
    let (s, c) = byte_pair();
    c.send_msg(b"left behind!").unwrap();
    drop(c);
    let mut buf = [0u8; 32];
    let p = s.peek(Some(&mut buf)).unwrap();
    assert_eq!((p.copied, p.total_available), (12, 12));
    assert_eq!(read_n(&s, 12), b"left behind!");
    assert_kind(s.peek(None), ErrorKind::BrokenPipe);

    let (s, c) = msg_pair();
    s.send_msg(b"left behind!").unwrap();
    drop(s);
    let p = c.peek(None).unwrap();
    assert_eq!((p.total_available, p.left_in_message), (12, 12));
    assert_eq!(recv_vec(&c, 32).unwrap(), (b"left behind!".to_vec(), true));
    assert_kind(c.peek(None), ErrorKind::BrokenPipe);
}

fn sem_090_peek_without_read_data_access_is_access_denied() {
    let name = unique("peek-access");
    let s = defaults().create(&name).unwrap();
    let c = ClientOptions::new().read(false).open(&name).unwrap();
    s.send_msg(b"x").unwrap();
    assert_kind(c.peek(None), ErrorKind::AccessDenied);

    let name = unique("peek-outbound");
    let mut o = defaults();
    o.access(Direction::Outbound);
    let s = o.create(&name).unwrap();
    let _c = ClientOptions::new().write(false).open(&name).unwrap();
    assert_kind(s.peek(None), ErrorKind::AccessDenied);
}

fn sem_091_peek_after_one_byte_of_a_large_message() {
    let (s, c) = msg_pair();
    let s = Arc::new(s);
    let data = pattern(5000, 91);
    let w = pending_send(&s, data.clone());
    assert_eq!(recv_vec(&c, 1).unwrap(), (data[..1].to_vec(), false));
    let p = c.peek(None).unwrap();
    assert_eq!((p.total_available, p.left_in_message), (4999, 4999));
    let mut buf = [0u8; 100];
    let p = c.peek(Some(&mut buf)).unwrap();
    assert_eq!(&buf[..], &data[1..101]);
    assert_eq!((p.copied, p.left_in_message), (100, 4899));
    assert_eq!(recv_vec(&c, 8192).unwrap(), (data[1..].to_vec(), true));
    assert_eq!(w.finish().unwrap(), 5000);
}

// ----------------------------------------------- 9.9 quota, blocking writes

fn sem_092_write_pends_until_bytes_ahead_fit_the_quota() {
    let (s, c) = quota_pair(5000, 5000);
    let s = Arc::new(s);
    let first = pattern(3000, 1);
    let second = pattern(5000, 2);
    // 3000 <= 5000: completes with nobody reading.
    assert_eq!(pending_send(&s, first.clone()).finish().unwrap(), 3000);
    let w = pending_send(&s, second.clone());
    w.assert_pending("8000 bytes queued, quota 5000");
    assert_eq!(read_n(&c, 2999), first[..2999]);
    w.assert_pending("5001 bytes still ahead of its end");
    assert_eq!(read_n(&c, 1), first[2999..]);
    assert_eq!(w.finish().unwrap(), 5000);
    assert_eq!(read_n(&c, 5000), second);
}

fn sem_093_oversized_write_completes_when_the_rest_fits_the_quota() {
    let (s, c) = byte_pair();
    let s = Arc::new(s);
    let data = pattern(1024 + 2000, 93);
    let w = pending_send(&s, data.clone());
    w.assert_pending("3024 bytes queued, quota 1024");
    assert_eq!(read_n(&c, 1999), data[..1999]);
    w.assert_pending("1025 bytes of it still unread");
    assert_eq!(read_n(&c, 1), data[1999..2000]);
    assert_eq!(w.finish().unwrap(), data.len());
    assert_eq!(read_n(&c, 1024), data[2000..]);
}

fn sem_094_bytes_of_a_pending_write_are_peekable_and_readable() {
    let (s, c) = byte_pair();
    let s = Arc::new(s);
    let data = pattern(3024, 94);
    let w = pending_send(&s, data.clone());
    await_total(&c, 3024);
    w.assert_pending_now("3024 bytes queued, quota 1024");
    assert_eq!(read_n(&c, 100), data[..100]);
    w.assert_pending("2924 bytes still queued");
    assert_eq!(total(&c), 2924);
    assert_eq!(read_n(&c, 2924), data[100..]);
    assert_eq!(w.finish().unwrap(), 3024);
}

fn sem_095_pending_writes_complete_in_issue_order() {
    let (s, c) = byte_pair();
    let s = Arc::new(s);
    let a = pattern(2000, 1);
    let b = pattern(500, 2);
    let wa = pending_send(&s, a.clone());
    await_total(&c, 2000);
    let wb = pending_send(&s, b.clone());
    // The second pending write is queued too (spec 5.1, 5.2 worked
    // example): its bytes count as available while it waits.
    let both_queued = wait_until(QUICK, || total(&c) == 2500);
    wa.assert_pending_now("2000 bytes ahead of A's end, quota 1024");
    wb.assert_pending_now("B is behind A");
    // After 976 bytes: ahead(A) = 1024 completes A; ahead(B) = 1524 does not.
    assert_eq!(read_n(&c, 976), a[..976]);
    assert_eq!(wa.finish().unwrap(), 2000);
    wb.assert_pending("1524 bytes ahead of B's end");
    assert_eq!(read_n(&c, 500), a[976..1476]);
    assert_eq!(wb.finish().unwrap(), 500);
    let rest = read_n(&c, 1024);
    assert_eq!(rest[..524], a[1476..]);
    assert_eq!(rest[524..], b[..]);
    assert!(
        both_queued,
        "the bytes of the second pending write were not queued while the first was pending"
    );
}

fn sem_096_quota_per_direction_follows_out_and_in_sizes() {
    let (s, c) = quota_pair(5000, 6000);
    for info in [s.info().unwrap(), c.info().unwrap()] {
        assert_eq!((info.out_size, info.in_size), (5000, 6000));
    }
    let s = Arc::new(s);
    let c = Arc::new(c);
    // Server → client: 5000 bytes complete unread, one more pends.
    assert_eq!(pending_send(&s, vec![1; 5000]).finish().unwrap(), 5000);
    let w = pending_send(&s, vec![2]);
    w.assert_pending("5001 bytes queued towards the client, quota 5000");
    assert_eq!(read_n(&*c, 1), [1]);
    assert_eq!(w.finish().unwrap(), 1);
    // Client → server: 6000 complete unread, one more pends.
    assert_eq!(pending_send(&c, vec![3; 6000]).finish().unwrap(), 6000);
    let w = pending_send(&c, vec![4]);
    w.assert_pending("6001 bytes queued towards the server, quota 6000");
    assert_eq!(read_n(&*s, 1), [3]);
    assert_eq!(w.finish().unwrap(), 1);
}

fn sem_097_zero_length_write_completes_while_other_writes_pend_byte_pipe() {
    let (s, c) = byte_pair();
    let c = Arc::new(c);
    let big = pending_send(&c, pattern(2000, 97));
    await_total(&s, 2000);
    let zero = pending_send(&c, Vec::new());
    // It returns instead of going to sleep.
    assert!(
        !zero.settle(),
        "zero-length write waited behind a pending write"
    );
    big.assert_pending_now("2000 bytes queued, quota 1024");
    assert_eq!(zero.finish().unwrap(), 0);
    assert_eq!(total(&s), 2000);
    assert_eq!(read_n(&s, 2000), pattern(2000, 97));
    assert_eq!(big.finish().unwrap(), 2000);
}

fn sem_097_zero_length_write_completes_while_other_writes_pend_message_pipe() {
    let (s, c) = msg_pair();
    let c = Arc::new(c);
    let big = pending_send(&c, pattern(2000, 97));
    await_total(&s, 2000);
    let zero = pending_send(&c, Vec::new());
    // It returns instead of going to sleep.
    assert!(
        !zero.settle(),
        "zero-length write waited behind a pending write"
    );
    big.assert_pending_now("2000 bytes queued, quota 1024");
    assert_eq!(zero.finish().unwrap(), 0);
    let p = s.peek(None).unwrap();
    assert_eq!((p.total_available, p.left_in_message), (2000, 2000));
    assert_eq!(recv_vec(&s, 4096).unwrap(), (pattern(2000, 97), true));
    assert_eq!(big.finish().unwrap(), 2000);
    assert_eq!(recv_vec(&s, 4096).unwrap(), (Vec::new(), true));
}

fn sem_098_pending_one_byte_read_lets_quota_plus_one_write_complete() {
    let (s, c) = quota_pair(512, 512);
    let s = Arc::new(s);
    let c = Arc::new(c);
    let r = pending_recv(&c, 1);
    r.assert_pending("nothing written yet");
    let data = pattern(513, 98);
    // Completes without any further read: 1 byte to the read, 512 queued.
    assert_eq!(pending_send(&s, data.clone()).finish().unwrap(), 513);
    assert_eq!(r.finish().unwrap().0, data[..1]);
    assert_eq!(total(&*c), 512);
    assert_eq!(read_n(&*c, 512), data[1..]);
}

fn sem_099_pending_read_takes_its_share_of_a_write() {
    let (s, c) = byte_pair();
    let s = Arc::new(s);
    let c = Arc::new(c);
    let r = pending_recv(&c, 1000);
    r.assert_pending("nothing written yet");
    let data = pattern(4000, 99);
    let w = pending_send(&s, data.clone());
    assert_eq!(r.finish().unwrap(), (data[..1000].to_vec(), true));
    assert_eq!(total(&*c), 3000);
    // 3000 bytes queued against quota 1024: the write itself still waits.
    w.assert_pending("3000 bytes ahead, quota 1024");
    assert_eq!(read_n(&*c, 1976), data[1000..2976]);
    assert_eq!(w.finish().unwrap(), 4000);
    assert_eq!(read_n(&*c, 1024), data[2976..]);
}

// ---------------------------------------------------- 9.10 nonblocking mode

fn sem_100_nonblocking_read_on_empty_pipe_is_no_data() {
    let (s, c) = byte_pair();
    let (ms, mc) = msg_pair();
    let results = within("nonblocking reads", move || {
        let ends: [&dyn PipeEnd; 4] = [&s, &c, &ms, &mc];
        ends.map(|e| {
            e.put_state(None, Some(WaitMode::Nonblocking)).unwrap();
            recv_vec(e, 16)
        })
    });
    for r in results {
        assert_kind(r, ErrorKind::NoData);
    }
}

fn sem_101_nonblocking_write_of_exactly_the_quota_writes_everything() {
    for (s, c) in [byte_pair(), msg_pair()] {
        s.set_nonblocking(true).unwrap();
        c.set_nonblocking(true).unwrap();
        assert_eq!(s.send_msg(&pattern(1024, 1)).unwrap(), 1024);
        assert_eq!(c.send_msg(&pattern(1024, 2)).unwrap(), 1024);
        assert_eq!(total(&c), 1024);
        assert_eq!(total(&s), 1024);
        assert_eq!(recv_vec(&c, 2048).unwrap().0, pattern(1024, 1));
    }
}

fn sem_102_nonblocking_write_over_the_quota_writes_nothing() {
    for (s, c) in [byte_pair(), msg_pair()] {
        s.set_nonblocking(true).unwrap();
        c.set_nonblocking(true).unwrap();
        assert_eq!(s.send_msg(&pattern(1025, 1)).unwrap(), 0);
        assert_eq!(total(&c), 0);
        assert_kind(recv_vec(&c, 2048), ErrorKind::NoData);
        // The Write adapter says "would block" for it.
        let e = (&s).write(&pattern(1025, 1)).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
    }
}

fn sem_103_nonblocking_write_on_byte_pipe_feeds_a_pending_read_only() {
    let (s, c) = quota_pair(512, 512);
    let c = Arc::new(c);
    s.set_nonblocking(true).unwrap();
    let r = pending_recv(&c, 1);
    r.assert_pending("nothing written yet");
    let data = pattern(514, 103);
    // 514 - 1 = 513 > 512: only the pending read's byte is transferred.
    assert_eq!(s.send_msg(&data).unwrap(), 1);
    assert_eq!(r.finish().unwrap(), (data[..1].to_vec(), true));
    assert_eq!(total(&*c), 0, "nothing was queued");
}

fn sem_104_nonblocking_write_on_message_pipe_leaves_a_pending_read_alone() {
    let (s, c) = {
        let mut o = message_opts();
        o.quotas(512, 512);
        pair_with(&o)
    };
    c.set_read_mode(ReadMode::Message).unwrap();
    let c = Arc::new(c);
    s.set_nonblocking(true).unwrap();
    let r = pending_recv(&c, 1);
    r.assert_pending("nothing written yet");
    assert_eq!(s.send_msg(&pattern(514, 104)).unwrap(), 0);
    r.assert_pending("a message that does not fit is not written at all");
    assert_eq!(total(&*c), 0);
    // Control (spec 5.5): with the same read pending, 513 bytes fit (1 to
    // the read, 512 queued), which shows the read was there to be seen.
    let data = pattern(513, 105);
    assert_eq!(s.send_msg(&data).unwrap(), 513);
    assert_eq!(r.finish().unwrap(), (data[..1].to_vec(), false));
    let p = c.peek(None).unwrap();
    assert_eq!((p.total_available, p.left_in_message), (512, 512));
}

fn sem_105_set_state_switches_wait_and_read_modes() {
    let mut o = defaults();
    o.pipe_type(PipeType::Message);
    let (s, c) = pair_with(&o);
    let s = Arc::new(s);
    let c = Arc::new(c);
    fn flags(e: &dyn PipeEnd) -> (bool, bool) {
        let st = e.get_state().unwrap();
        (st.nonblocking, st.message_read)
    }
    for (e, peer) in [(&*s as &dyn PipeEnd, &*c as &dyn PipeEnd), (&*c, &*s)] {
        assert_eq!(flags(e), (false, false));
        e.put_state(Some(ReadMode::Message), Some(WaitMode::Nonblocking))
            .unwrap();
        assert_eq!(flags(e), (true, true));
        assert_kind(recv_vec(e, 8), ErrorKind::NoData);
        e.put_state(None, Some(WaitMode::Blocking)).unwrap();
        assert_eq!(flags(e), (false, true));
        peer.send(b"abc").unwrap();
        peer.send(b"def").unwrap();
        assert_eq!(recv_vec(e, 8).unwrap(), (b"abc".to_vec(), true));
        e.put_state(Some(ReadMode::Byte), None).unwrap();
        assert_eq!(flags(e), (false, false));
        assert_eq!(recv_vec(e, 8).unwrap(), (b"def".to_vec(), true));
    }
    // Blocking again: a read waits.
    let r = pending_recv(&c, 8);
    r.assert_pending("blocking read on an empty pipe");
    s.send_msg(b"late").unwrap();
    assert_eq!(r.finish().unwrap().0, b"late");
}

// ------------------------------------------------ 9.11 disconnect and close

fn sem_106_disconnect_discards_data_in_both_directions() {
    let name = unique("discard");
    let s = defaults().create(&name).unwrap();
    let c = ClientOptions::new().open(&name).unwrap();
    s.send_msg(b"to client").unwrap();
    c.send_msg(b"to server").unwrap();
    assert_eq!((total(&s), total(&c)), (9, 9));
    s.disconnect().unwrap();
    let (s, c, r) = within("reads after disconnect", move || {
        let r = [recv_vec(&c, 32), recv_vec(&s, 32)];
        (s, c, r)
    });
    for r in r {
        assert_kind(r, ErrorKind::PipeNotConnected);
    }
    assert_kind(c.peek(None), ErrorKind::PipeNotConnected);
    // The instance serves a new client with nothing left of the old one.
    s.set_nonblocking(true).unwrap();
    assert_kind(s.connect(), ErrorKind::PipeListening);
    let c2 = ClientOptions::new().open(&name).unwrap();
    assert_eq!(s.connect().unwrap(), Connected::Already);
    assert_eq!((total(&s), total(&c2)), (0, 0));
    assert_kind(recv_vec(&c, 32), ErrorKind::PipeNotConnected);
}

fn sem_107_read_and_write_after_disconnect_are_pipe_not_connected() {
    let (s, c) = byte_pair();
    s.disconnect().unwrap();
    let r = within("data calls after disconnect", move || {
        [
            s.send_msg(b"x").map(drop),
            s.recv_msg(&mut [0; 8]).map(drop),
            c.send_msg(b"x").map(drop),
            c.recv_msg(&mut [0; 8]).map(drop),
            (&c).write(b"x").map(drop),
            (&c).read(&mut [0; 8]).map(drop),
        ]
    });
    for r in r {
        assert_kind(r, ErrorKind::PipeNotConnected);
    }
}

fn sem_108_second_disconnect_is_pipe_not_connected() {
    let (s, _c) = byte_pair();
    s.disconnect().unwrap();
    assert_kind(s.disconnect(), ErrorKind::PipeNotConnected);
}

fn sem_109_disconnect_ends_pending_writes_and_flush_with_pipe_not_connected() {
    let (s, c) = byte_pair();
    let s = Arc::new(s);
    let c = Arc::new(c);
    let ws = pending_send(&s, pattern(3024, 1));
    let wc = pending_send(&c, pattern(3024, 2));
    await_total(&*c, 3024);
    await_total(&*s, 3024);
    let fc = pending_flush(&c);
    ws.assert_pending("3024 bytes, quota 1024");
    wc.assert_pending_now("3024 bytes, quota 1024");
    fc.assert_pending_now("the server read nothing");
    s.disconnect().unwrap();
    assert_kind(ws.finish(), ErrorKind::PipeNotConnected);
    assert_kind(wc.finish(), ErrorKind::PipeNotConnected);
    assert_kind(fc.finish(), ErrorKind::PipeNotConnected);
}

fn sem_110_client_reads_queued_bytes_then_broken_pipe_after_server_closed() {
    let (s, c) = byte_pair();
    s.send_msg(b"twelve bytes").unwrap();
    drop(s);
    let (r1, r2, eof) = within("reads after the server closed", move || {
        let r1 = recv_vec(&c, 64);
        let r2 = recv_vec(&c, 64);
        let eof = (&c).read(&mut [0u8; 8]);
        (r1, r2, eof)
    });
    assert_eq!(r1.unwrap().0, b"twelve bytes");
    assert_kind(r2, ErrorKind::BrokenPipe);
    assert_eq!(eof.unwrap(), 0, "the Read adapter reports the end as Ok(0)");
}

fn sem_111_write_after_peer_closed_is_no_data() {
    let (s, c) = byte_pair();
    drop(c);
    assert_kind(s.send_msg(b"x"), ErrorKind::NoData);
    assert_kind((&s).write(b"x"), ErrorKind::NoData);

    let (s, c) = byte_pair();
    drop(s);
    assert_kind(c.send_msg(b"x"), ErrorKind::NoData);
    assert_kind((&c).write(b"x"), ErrorKind::NoData);
}

fn sem_112_blocked_read_fails_with_broken_pipe_when_peer_closes() {
    let (s, c) = byte_pair();
    let c = Arc::new(c);
    let r = pending_recv(&c, 16);
    r.assert_pending("nothing written");
    drop(s);
    assert_kind(r.finish(), ErrorKind::BrokenPipe);

    let (s, c) = msg_pair();
    let s = Arc::new(s);
    let r = pending_recv(&s, 16);
    r.assert_pending("nothing written");
    drop(c);
    assert_kind(r.finish(), ErrorKind::BrokenPipe);
}

fn sem_113_pending_write_and_flush_fail_with_broken_pipe_when_peer_closes() {
    // Client side: the server closes.
    let (s, c) = quota_pair(5000, 5000);
    let c = Arc::new(c);
    let w = pending_send(&c, pattern(7000, 1));
    await_total(&s, 7000);
    let f = pending_flush(&c);
    w.assert_pending("7000 bytes, quota 5000");
    f.assert_pending_now("nothing was read");
    drop(s);
    let client_side = (w.finish(), f.finish());
    // Server side: the client closes.
    let (s, c) = quota_pair(5000, 5000);
    let s = Arc::new(s);
    let w = pending_send(&s, pattern(7000, 2));
    await_total(&c, 7000);
    let f = pending_flush(&s);
    w.assert_pending("7000 bytes, quota 5000");
    f.assert_pending_now("nothing was read");
    drop(c);
    let server_side = (w.finish(), f.finish());
    let kinds = |(w, f): (io::Result<usize>, io::Result<()>)| {
        (w.map_err(|e| kind(&e)).map(drop), f.map_err(|e| kind(&e)))
    };
    let broken = Err(Some(ErrorKind::BrokenPipe));
    assert_eq!(
        [kinds(client_side), kinds(server_side)],
        [(broken, broken), (broken, broken)],
        "[(client write, client flush), (server write, server flush)]"
    );
}

fn sem_114_empty_message_before_close_is_read_then_broken_pipe() {
    let (s, c) = msg_pair();
    c.send_msg(&[]).unwrap();
    drop(c);
    let (first, second) = within("reads after the close", move || {
        (recv_vec(&s, 16), recv_vec(&s, 16))
    });
    assert_eq!(first.unwrap(), (Vec::new(), true));
    assert_kind(second, ErrorKind::BrokenPipe);
}

fn sem_115_get_and_set_state_work_after_peer_closed() {
    let (s, c) = msg_pair();
    drop(s);
    c.state().unwrap();
    c.set_state(Some(ReadMode::Byte), Some(WaitMode::Nonblocking))
        .unwrap();
    let st = c.state().unwrap();
    assert!(st.nonblocking && !st.message_read);

    let (s, c) = msg_pair();
    drop(c);
    s.state().unwrap();
    s.set_state(Some(ReadMode::Byte), Some(WaitMode::Nonblocking))
        .unwrap();
    let st = s.state().unwrap();
    assert!(st.nonblocking && !st.message_read);
}

/// In a child: the pipe name the parent passed.
fn child_pipe() -> String {
    std::env::var(PIPE_ENV).expect("pipe name passed by the parent")
}

fn spawn_child(test: &str, pipe: &str) -> Child {
    child_command(test)
        .env(PIPE_ENV, pipe)
        .spawn()
        .expect("spawn child")
}

/// Kills `child` with SIGKILL and reaps it.
fn kill(mut child: Child) {
    child.kill().expect("SIGKILL");
    let status = child.wait().expect("reap child");
    assert_eq!(status.signal(), Some(9), "child ended otherwise: {status}");
}

const QUEUED: &[u8] = b"queued bytes";

fn child_sem_116_client() {
    let name = child_pipe();
    let c = ClientOptions::new().open(&name).unwrap();
    c.send_msg(QUEUED).unwrap();
    // Wait to be killed; this read ends only if the parent is gone.
    let _ = c.recv_msg(&mut [0u8; 16]);
    std::process::exit(3);
}

fn sem_116_sigkilled_client_looks_closed_to_the_server() {
    let name = unique("sigkill");
    let s = defaults().create(&name).unwrap();
    let child = spawn_child("child_sem_116_client", &name);
    let queued = wait_until(HANG, || {
        s.peek(None)
            .is_ok_and(|p| p.total_available == QUEUED.len() as u64)
    });
    kill(child);
    assert!(queued, "the child's bytes never arrived");
    let (s, r) = within("reads after the kill", move || {
        let r = [recv_vec(&s, 64), recv_vec(&s, 64)];
        (s, r)
    });
    let [data, end] = r;
    assert_eq!(data.unwrap().0, QUEUED);
    assert_kind(end, ErrorKind::BrokenPipe);
    // Like after a close: writes NoData, peek BrokenPipe, and the instance
    // is ClientGone (connect NoData) until disconnect.
    let after = [
        s.send_msg(b"x").map(drop),
        s.peek(None).map(drop),
        s.connect().map(drop),
    ]
    .map(|r| r.map_err(|e| kind(&e)));
    assert_eq!(
        after,
        [
            Err(Some(ErrorKind::NoData)),
            Err(Some(ErrorKind::BrokenPipe)),
            Err(Some(ErrorKind::NoData))
        ],
        "[write, peek, connect] after the client was killed"
    );
}

const FIRST_PART: &[u8] = b"first-part";

fn child_sem_117_writer() {
    let name = child_pipe();
    let c = ClientOptions::new().open(&name).unwrap();
    c.send_msg(FIRST_PART).unwrap();
    // Pends (3024 bytes, quota 1024) until the parent kills us.
    let _ = c.send_msg(&pattern(3024, 117));
    std::process::exit(3);
}

fn sem_117_killed_pending_writer_loses_the_unread_rest() {
    let name = unique("killed-writer");
    let s = defaults().create(&name).unwrap();
    let child = spawn_child("child_sem_117_writer", &name);
    let queued = wait_until(HANG, || {
        s.peek(None)
            .is_ok_and(|p| p.total_available == (FIRST_PART.len() + 3024) as u64)
    });
    if !queued {
        kill(child);
        panic!("the child's writes never arrived");
    }
    assert_eq!(read_n(&s, FIRST_PART.len()), FIRST_PART);
    assert_eq!(read_n(&s, 100), pattern(3024, 117)[..100]);
    kill(child);
    // What was read stays read; the unread 2924 bytes of the pending write
    // are gone with their writer.
    let (s, r) = within("read after the kill", move || {
        let r = recv_vec(&s, 4096);
        (s, r)
    });
    match r {
        Ok((data, _)) => panic!(
            "read {} bytes of a write whose process was killed",
            data.len()
        ),
        Err(e) => assert_eq!(kind(&e), Some(ErrorKind::BrokenPipe), "{e:?}"),
    }
    assert_kind(s.peek(None), ErrorKind::BrokenPipe);
}

fn sem_118_no_client_attaches_to_an_instance_whose_server_end_closed() {
    let name = unique("server-gone");
    let s = defaults().create(&name).unwrap();
    let c = ClientOptions::new().open(&name).unwrap();
    drop(s);
    assert_kind(ClientOptions::new().open(&name), ErrorKind::PipeBusy);
    drop(c);
    assert_kind(ClientOptions::new().open(&name), ErrorKind::FileNotFound);
}

// -------------------------------------------------------------- 9.12 flush

fn sem_120_flush_returns_at_once_when_everything_was_read() {
    let (s, c) = byte_pair();
    s.send_msg(b"0123456789").unwrap();
    c.send_msg(b"0123456789").unwrap();
    assert_eq!(read_n(&c, 10).len(), 10);
    assert_eq!(read_n(&s, 10).len(), 10);
    let r = within("flush with nothing unread", move || {
        [s.flush_buffers(), c.flush_buffers()]
    });
    for r in r {
        r.unwrap();
    }
    // And with nothing ever written.
    let (s, c) = byte_pair();
    within("flush of a fresh pipe", move || {
        s.flush_buffers().unwrap();
        c.flush_buffers().unwrap();
    });
}

fn sem_120_flush_waits_until_the_peer_read_every_byte() {
    let (s, c) = byte_pair();
    let s = Arc::new(s);
    let c = Arc::new(c);
    // Server end.
    s.send_msg(&[1; 100]).unwrap();
    let f = pending_flush(&s);
    f.assert_pending("nothing read");
    read_n(&*c, 99);
    f.assert_pending("one byte unread");
    read_n(&*c, 1);
    f.finish().unwrap();
    // Client end.
    c.send_msg(&[2; 100]).unwrap();
    let f = pending_flush(&c);
    f.assert_pending("nothing read");
    read_n(&*s, 99);
    f.assert_pending("one byte unread");
    read_n(&*s, 1);
    f.finish().unwrap();
}

fn sem_120_flush_waits_for_the_bytes_of_pending_writes() {
    let (s, c) = byte_pair();
    let c = Arc::new(c);
    let w = pending_send(&c, pattern(3024, 120));
    await_total(&s, 3024);
    let f = pending_flush(&c);
    f.assert_pending("nothing read");
    read_n(&s, 3023);
    assert_eq!(w.finish().unwrap(), 3024);
    f.assert_pending("one byte of the pending write unread");
    read_n(&s, 1);
    f.finish().unwrap();
}

fn sem_120_flush_waits_for_a_queued_empty_message() {
    let (s, c) = msg_pair();
    let c = Arc::new(c);
    c.send_msg(&[]).unwrap();
    let f = pending_flush(&c);
    f.assert_pending("the empty message is unread");
    assert_eq!(recv_vec(&s, 16).unwrap(), (Vec::new(), true));
    f.finish().unwrap();
}

fn sem_122_flush_without_write_data_access_is_access_denied() {
    let name = unique("flush-access");
    let s = defaults().create(&name).unwrap();
    let c = ClientOptions::new().write(false).open(&name).unwrap();
    assert_kind(c.flush_buffers(), ErrorKind::AccessDenied);
    drop((s, c));

    let name = unique("flush-inbound");
    let mut o = defaults();
    o.access(Direction::Inbound);
    let s = o.create(&name).unwrap();
    let _c = ClientOptions::new().read(false).open(&name).unwrap();
    assert_kind(s.flush_buffers(), ErrorKind::AccessDenied);
}

/// SEM-123, with shmpipe's deliberate difference (issue 9): a flush after
/// the peer closed returns at once, `Ok` only if the peer had read
/// everything, `BrokenPipe` if bytes were left unread.
fn sem_123_flush_after_peer_closed_returns_at_once_and_ok_only_if_all_was_read() {
    let (s, c) = byte_pair();
    c.send_msg(&[1; 100]).unwrap();
    drop(s);
    let r = within("client flush after the server closed", move || {
        c.flush_buffers()
    });
    assert_kind(r, ErrorKind::BrokenPipe);

    let (s, c) = byte_pair();
    s.send_msg(&[1; 100]).unwrap();
    drop(c);
    let r = within("server flush after the client closed", move || {
        s.flush_buffers()
    });
    assert_kind(r, ErrorKind::BrokenPipe);

    let (s, c) = byte_pair();
    c.send_msg(&[1; 100]).unwrap();
    assert_eq!(s.recv_msg(&mut [0; 100]).unwrap().len, 100);
    drop(s);
    within(
        "client flush after the server read all and closed",
        move || c.flush_buffers(),
    )
    .unwrap();
}

// ------------------------------------------------ 9.13 transact and call

fn sem_124_transact_needs_message_type_and_message_read_mode() {
    let (s, c) = byte_pair();
    assert_kind(c.transact(b"req", &mut [0; 8]), ErrorKind::BadPipe);
    assert_kind(s.transact(b"req", &mut [0; 8]), ErrorKind::BadPipe);
    let mut o = defaults();
    o.pipe_type(PipeType::Message);
    let (s, c) = pair_with(&o);
    assert_kind(c.transact(b"req", &mut [0; 8]), ErrorKind::BadPipe);
    assert_kind(s.transact(b"req", &mut [0; 8]), ErrorKind::BadPipe);
    // Nothing was written.
    assert_eq!((total(&s), total(&c)), (0, 0));
}

fn sem_125_transact_with_unread_data_is_pipe_busy_and_writes_nothing() {
    let (s, c) = msg_pair();
    s.set_nonblocking(true).unwrap();
    s.send_msg(b"unread").unwrap();
    assert_kind(c.transact(b"req", &mut [0; 8]), ErrorKind::PipeBusy);
    assert_kind(recv_vec(&s, 16), ErrorKind::NoData);
    assert_eq!(recv_vec(&c, 16).unwrap().0, b"unread");
    // An unread empty message counts too.
    s.send_msg(&[]).unwrap();
    assert_kind(c.transact(b"req", &mut [0; 8]), ErrorKind::PipeBusy);
    assert_kind(recv_vec(&s, 16), ErrorKind::NoData);
}

fn sem_126_transact_sends_one_message_and_returns_the_next_reply() {
    let (s, c) = msg_pair();
    let c = Arc::new(c);
    let request = pattern(300, 126);
    let t = pending_transact(&c, &request, 64);
    assert_eq!(recv_vec(&s, 4096).unwrap(), (request, true));
    t.assert_pending("no reply yet");
    s.send_msg(b"the reply").unwrap();
    assert_eq!(t.finish().unwrap(), (b"the reply".to_vec(), true));
}

fn sem_127_long_transact_reply_gives_more_data_and_the_rest_is_readable() {
    let (s, c) = msg_pair();
    let c = Arc::new(c);
    let t = pending_transact(&c, b"q", 6);
    assert_eq!(recv_vec(&s, 16).unwrap().0, b"q");
    s.send_msg(b"0123456789").unwrap();
    assert_eq!(t.finish().unwrap(), (b"012345".to_vec(), false));
    assert_eq!(recv_vec(&*c, 32).unwrap(), (b"6789".to_vec(), true));
}

fn sem_128_transact_ignores_the_quota_behind_a_pending_write() {
    let (s, c) = msg_pair();
    let c = Arc::new(c);
    let big = pattern(1024 + 2000, 128);
    let w = pending_send(&c, big.clone());
    await_total(&s, 3024);
    let t = pending_transact(&c, b"request", 64);
    // The request is queued at once, behind the still pending write.
    let queued = wait_until(QUICK, || total(&s) == 3024 + 7);
    w.assert_pending_now("3024 bytes, quota 1024");
    t.assert_pending_now("no reply yet");
    assert_eq!(recv_vec(&s, 4096).unwrap(), (big, true));
    assert_eq!(w.finish().unwrap(), 3024);
    assert_eq!(recv_vec(&s, 64).unwrap(), (b"request".to_vec(), true));
    s.send_msg(b"reply").unwrap();
    assert_eq!(t.finish().unwrap(), (b"reply".to_vec(), true));
    assert!(
        queued,
        "the transact request waited behind the pending write instead of being queued at once"
    );
}

fn sem_129_only_a_reply_completes_a_transact_even_an_empty_one() {
    let (s, c) = msg_pair();
    let c = Arc::new(c);
    let t = pending_transact(&c, b"req", 0);
    assert_eq!(recv_vec(&s, 16).unwrap(), (b"req".to_vec(), true));
    t.assert_pending("the peer read the request but did not reply");
    s.send_msg(&[]).unwrap();
    assert_eq!(t.finish().unwrap(), (Vec::new(), true));
}

fn sem_130_either_end_transacts_and_a_transact_can_be_the_reply() {
    let (s, c) = msg_pair();
    let s = Arc::new(s);
    let c = Arc::new(c);
    let tc = pending_transact(&c, b"ping", 64);
    assert_eq!(recv_vec(&*s, 16).unwrap(), (b"ping".to_vec(), true));
    let ts = pending_transact(&s, b"pong", 64);
    assert_eq!(tc.finish().unwrap(), (b"pong".to_vec(), true));
    ts.assert_pending("the client has not answered the server's transact");
    c.send_msg(b"ack").unwrap();
    assert_eq!(ts.finish().unwrap(), (b"ack".to_vec(), true));
}

/// A message server instance answering one request with `reply(request)`
/// on its own thread; returns what the server saw afterwards: the result of
/// a read (the client's close) and of a write.
fn serve_one(
    s: Arc<NamedPipeServer>,
    reply: impl Fn(&[u8]) -> Vec<u8> + Send + 'static,
) -> Pending<(ReadResult, io::Result<usize>)> {
    Pending::start("server", move || {
        s.connect().unwrap();
        let (req, complete) = recv_vec(&*s, 4096).unwrap();
        assert!(complete);
        s.send_msg(&reply(&req)).unwrap();
        let after = recv_vec(&*s, 16);
        (after, s.send_msg(b"x"))
    })
}

fn sem_132_call_opens_transacts_and_closes() {
    let name = unique("call");
    let s = Arc::new(message_opts().create(&name).unwrap());
    let server = serve_one(Arc::clone(&s), |r| r.to_ascii_uppercase());
    let mut reply = [0u8; 64];
    let m = call(&name, b"ping", &mut reply, WaitTimeout::Default).unwrap();
    assert_eq!((&reply[..m.len], m.complete), (&b"PING"[..], true));
    // The call's client end is closed afterwards.
    let (after, write) = server.finish();
    assert_kind(after, ErrorKind::BrokenPipe);
    assert_kind(write, ErrorKind::NoData);
}

fn sem_133_call_with_short_buffer_truncates_the_reply() {
    let name = unique("call-short");
    let s = Arc::new(message_opts().create(&name).unwrap());
    let server = serve_one(Arc::clone(&s), |_| b"0123456789abcdefghij".to_vec());
    let mut reply = [0u8; 8];
    let m = call(&name, b"q", &mut reply, WaitTimeout::Default).unwrap();
    assert_eq!(
        m,
        MsgRead {
            len: 8,
            complete: false
        }
    );
    assert_eq!(&reply, b"01234567");
    // The rest went with the closed client end.
    let (after, write) = server.finish();
    assert_kind(after, ErrorKind::BrokenPipe);
    assert_kind(write, ErrorKind::NoData);
}

fn sem_134_call_waits_for_a_busy_pipe_according_to_its_timeout() {
    let name = unique("call-busy");
    let s = Arc::new(message_opts().create(&name).unwrap());
    let holder = ClientOptions::new().open(&name).unwrap();
    let mut reply = [0u8; 16];
    assert_kind(
        call(&name, b"q", &mut reply, WaitTimeout::NoWait),
        ErrorKind::PipeBusy,
    );
    assert_kind(
        call(
            &name,
            b"q",
            &mut reply,
            WaitTimeout::Duration(Duration::from_millis(200)),
        ),
        ErrorKind::Timeout,
    );
    // An instance that becomes Listening during the wait serves the call.
    let caller = {
        let name = name.clone();
        Pending::start("call", move || {
            let mut reply = [0u8; 16];
            call(&name, b"late", &mut reply, WaitTimeout::Duration(HANG))
                .map(|m| reply[..m.len].to_vec())
        })
    };
    caller.assert_pending("every instance is busy");
    drop(holder);
    s.disconnect().unwrap();
    let server = serve_one(s, |r| r.to_ascii_uppercase());
    assert_eq!(caller.finish().unwrap(), b"LATE");
    let (after, _) = server.finish();
    assert_kind(after, ErrorKind::BrokenPipe);
}

fn sem_135_call_on_byte_pipe_or_missing_name_fails() {
    let name = unique("call-byte");
    let _s = defaults().create(&name).unwrap();
    let mut reply = [0u8; 16];
    assert_kind(
        call(&name, b"q", &mut reply, WaitTimeout::Default),
        ErrorKind::InvalidParameter,
    );
    assert_kind(
        call(&unique("nobody"), b"q", &mut reply, WaitTimeout::Default),
        ErrorKind::FileNotFound,
    );
}

// ------------------- 9.14 operations pending at once (blocking, in threads)

fn sem_142_two_pending_reads_complete_in_issue_order() {
    // Blocking reads in two threads, the second issued once the first is
    // surely waiting: successive writes complete them in that order. In
    // message-read mode, and in byte-read mode (where a read returns as soon
    // as some bytes are there).
    for message in [true, false] {
        let (s, c) = if message { msg_pair() } else { byte_pair() };
        let c = Arc::new(c);
        let first = pending_recv(&c, 16);
        first.assert_pending("nothing written yet");
        let second = pending_recv(&c, 16);
        second.assert_pending("nothing written yet");
        s.send_msg(b"one").unwrap();
        assert_eq!(first.finish().unwrap(), (b"one".to_vec(), true));
        second.assert_pending("the first write went to the first read");
        s.send_msg(b"two").unwrap();
        assert_eq!(second.finish().unwrap(), (b"two".to_vec(), true));
    }
}

fn sem_146_pending_read_and_write_on_one_duplex_end_complete_independently() {
    // The server end has a read waiting for the client and a write waiting
    // on the quota (out quota 16, nothing read yet): each completes when
    // its own condition is met, in either order.
    for write_first in [true, false] {
        let (s, c) = quota_pair(16, 1024);
        let s = Arc::new(s);
        let read = pending_recv(&s, 64);
        read.assert_pending("the client wrote nothing");
        let write = pending_send(&s, vec![7u8; 48]);
        write.assert_pending("48 bytes over a 16-byte quota, nothing read");
        read.assert_pending_now("a pending write does not complete a read");
        if write_first {
            assert_eq!(read_n(&c, 48), vec![7u8; 48]);
            assert_eq!(write.finish().unwrap(), 48);
            read.assert_pending("the client still wrote nothing");
            c.send_msg(b"up").unwrap();
            assert_eq!(read.finish().unwrap(), (b"up".to_vec(), true));
        } else {
            c.send_msg(b"up").unwrap();
            assert_eq!(read.finish().unwrap(), (b"up".to_vec(), true));
            write.assert_pending("the client still read nothing");
            assert_eq!(read_n(&c, 48), vec![7u8; 48]);
            assert_eq!(write.finish().unwrap(), 48);
        }
    }
}

// ---------------------------------------- the Windows samples, across processes

/// The requests the sample clients send: one short, one longer than the
/// samples' 512-byte buffers (it arrives and is answered in pieces).
fn sample_requests() -> [Vec<u8>; 2] {
    let long: Vec<u8> = (0..2000)
        .map(|i| b"abcdefghijklmnopqrstuvwxyz"[i % 26])
        .collect();
    [b"Default message from client.".to_vec(), long]
}

fn child_sample_server() {
    let name = child_pipe();
    let clients = std::env::var(CLIENTS_ENV).ok().map(|v| v.parse().unwrap());
    let summary = sample_server::serve(&name, clients, || {
        println!("{READY}");
        io::stdout().flush().unwrap();
    })
    .unwrap();
    if let Some(n) = clients {
        assert_eq!(summary.clients, n);
        assert_eq!(summary.requests, n);
    }
    child_done();
}

fn child_sample_client() {
    let name = child_pipe();
    for req in sample_requests() {
        let reply = sample_client::exchange(&name, &req).unwrap();
        assert_eq!(reply, sample_server::reply_for(&req));
    }
    child_done();
}

fn child_sample_transact() {
    let name = child_pipe();
    for req in sample_requests() {
        let reply = sample_transact::transact_once(&name, &req).unwrap();
        assert_eq!(reply, sample_server::reply_for(&req));
    }
    child_done();
}

fn child_sample_call() {
    let name = child_pipe();
    let [short, long] = sample_requests();
    let reply = sample_call::call_once(&name, &short, sample_call::BUFSIZE).unwrap();
    assert_eq!(reply.data, sample_server::reply_for(&short));
    assert!(!reply.truncated);
    let reply = sample_call::call_once(&name, &long, sample_call::BUFSIZE).unwrap();
    assert_eq!(
        reply.data,
        sample_server::reply_for(&long)[..sample_call::BUFSIZE]
    );
    assert!(reply.truncated);
    child_done();
}

/// Starts the sample server in a child process and waits until it listens.
fn start_sample_server(name: &str, clients: Option<usize>) -> Child {
    let mut cmd = child_command("child_sample_server");
    cmd.env(PIPE_ENV, name).stdout(Stdio::piped());
    if let Some(n) = clients {
        cmd.env(CLIENTS_ENV, n.to_string());
    }
    let mut child = cmd.spawn().expect("spawn sample server");
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        // Look for the child's line, then keep draining so the child never
        // blocks on a full pipe.
        let mut told = false;
        for line in io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if !told && line.ends_with(READY) {
                told = tx.send(()).is_ok();
            }
        }
    });
    if rx.recv_timeout(HANG).is_err() {
        let _ = child.kill();
        let (_, stderr) = wait_child(child);
        panic!(
            "sample server never became ready; its stderr:\n{}",
            String::from_utf8_lossy(&stderr)
        );
    }
    child
}

fn samples_serve_concurrent_client_processes() {
    let name = unique("samples");
    // Two connections from each of the three client processes.
    let server = start_sample_server(&name, Some(6));
    let clients: Vec<Child> = [
        "child_sample_client",
        "child_sample_transact",
        "child_sample_call",
    ]
    .into_iter()
    .map(|t| spawn_child(t, &name))
    .collect();
    for c in clients {
        let (status, stderr) = wait_child(c);
        common::assert_child_ok(status, &stderr);
    }
    let (status, stderr) = wait_child(server);
    common::assert_child_ok(status, &stderr);
}

fn samples_server_stops_when_told_to_quit() {
    let name = unique("samples-quit");
    let server = start_sample_server(&name, None);
    let reply = sample_client::exchange(&name, sample_server::QUIT).unwrap();
    assert_eq!(reply, sample_server::reply_for(sample_server::QUIT));
    let (status, stderr) = wait_child(server);
    common::assert_child_ok(status, &stderr);
}

common::main! {
    tests: [
        sem_059_duplex_byte_pipe_carries_both_directions_independently,
        sem_060_blocking_read_returns_as_soon_as_some_bytes_are_there,
        sem_061_byte_read_joins_two_writes,
        sem_062_short_byte_read_leaves_the_rest_queued,
        sem_063_zero_length_write_on_byte_pipe_queues_nothing,
        sem_064_zero_length_byte_read_returns_at_once_and_consumes_nothing,
        sem_066_data_calls_on_a_never_connected_server_end_fail_with_pipe_listening,
        sem_067_concurrent_writers_on_one_end_keep_blocks_contiguous,
        sem_068_message_read_returns_one_message_per_read,
        sem_069_short_message_reads_give_more_data_then_the_rest,
        sem_070_partly_read_message_is_continued_by_another_thread,
        sem_071_byte_read_end_on_message_pipe_reads_across_messages,
        sem_072_byte_read_end_on_message_pipe_never_gets_more_data,
        sem_073_zero_length_write_on_message_pipe_is_an_empty_message,
        sem_074_empty_message_completes_exactly_one_of_two_pending_reads,
        sem_075_empty_message_behind_data_is_read_separately_in_both_read_modes,
        sem_076_zero_length_message_read_gives_more_data_and_consumes_nothing,
        sem_077_message_larger_than_the_quota_arrives_intact,
        sem_078_message_read_mode_on_byte_pipe_is_invalid_parameter,
        sem_079_message_type_without_message_read_option_starts_in_byte_read_mode,
        sem_080_client_switches_read_mode_and_each_read_follows_it,
        sem_081_messages_of_concurrent_writers_arrive_whole_and_separate,
        sem_082_peek_copies_without_consuming,
        sem_083_peek_counts_every_queued_message,
        sem_084_peek_on_message_pipe_stops_at_the_head_message,
        sem_085_short_peek_reports_bytes_left_in_message,
        sem_086_peek_without_buffer_reports_totals_and_head_message_length,
        sem_087_peek_on_empty_pipe_returns_at_once,
        sem_088_peek_on_unconnected_ends,
        sem_089_peek_after_peer_closed_reports_queued_data_then_broken_pipe,
        sem_090_peek_without_read_data_access_is_access_denied,
        sem_091_peek_after_one_byte_of_a_large_message,
        sem_092_write_pends_until_bytes_ahead_fit_the_quota,
        sem_093_oversized_write_completes_when_the_rest_fits_the_quota,
        sem_094_bytes_of_a_pending_write_are_peekable_and_readable,
        sem_095_pending_writes_complete_in_issue_order,
        sem_096_quota_per_direction_follows_out_and_in_sizes,
        sem_097_zero_length_write_completes_while_other_writes_pend_byte_pipe,
        sem_097_zero_length_write_completes_while_other_writes_pend_message_pipe,
        sem_098_pending_one_byte_read_lets_quota_plus_one_write_complete,
        sem_099_pending_read_takes_its_share_of_a_write,
        sem_100_nonblocking_read_on_empty_pipe_is_no_data,
        sem_101_nonblocking_write_of_exactly_the_quota_writes_everything,
        sem_102_nonblocking_write_over_the_quota_writes_nothing,
        sem_103_nonblocking_write_on_byte_pipe_feeds_a_pending_read_only,
        sem_104_nonblocking_write_on_message_pipe_leaves_a_pending_read_alone,
        sem_105_set_state_switches_wait_and_read_modes,
        sem_106_disconnect_discards_data_in_both_directions,
        sem_107_read_and_write_after_disconnect_are_pipe_not_connected,
        sem_108_second_disconnect_is_pipe_not_connected,
        sem_109_disconnect_ends_pending_writes_and_flush_with_pipe_not_connected,
        sem_110_client_reads_queued_bytes_then_broken_pipe_after_server_closed,
        sem_111_write_after_peer_closed_is_no_data,
        sem_112_blocked_read_fails_with_broken_pipe_when_peer_closes,
        sem_113_pending_write_and_flush_fail_with_broken_pipe_when_peer_closes,
        sem_114_empty_message_before_close_is_read_then_broken_pipe,
        sem_115_get_and_set_state_work_after_peer_closed,
        sem_116_sigkilled_client_looks_closed_to_the_server,
        sem_117_killed_pending_writer_loses_the_unread_rest,
        sem_118_no_client_attaches_to_an_instance_whose_server_end_closed,
        sem_120_flush_returns_at_once_when_everything_was_read,
        sem_120_flush_waits_until_the_peer_read_every_byte,
        sem_120_flush_waits_for_the_bytes_of_pending_writes,
        sem_120_flush_waits_for_a_queued_empty_message,
        sem_122_flush_without_write_data_access_is_access_denied,
        sem_123_flush_after_peer_closed_returns_at_once_and_ok_only_if_all_was_read,
        sem_124_transact_needs_message_type_and_message_read_mode,
        sem_125_transact_with_unread_data_is_pipe_busy_and_writes_nothing,
        sem_126_transact_sends_one_message_and_returns_the_next_reply,
        sem_127_long_transact_reply_gives_more_data_and_the_rest_is_readable,
        sem_128_transact_ignores_the_quota_behind_a_pending_write,
        sem_129_only_a_reply_completes_a_transact_even_an_empty_one,
        sem_130_either_end_transacts_and_a_transact_can_be_the_reply,
        sem_132_call_opens_transacts_and_closes,
        sem_133_call_with_short_buffer_truncates_the_reply,
        sem_134_call_waits_for_a_busy_pipe_according_to_its_timeout,
        sem_135_call_on_byte_pipe_or_missing_name_fails,
        sem_142_two_pending_reads_complete_in_issue_order,
        sem_146_pending_read_and_write_on_one_duplex_end_complete_independently,
        samples_serve_concurrent_client_processes,
        samples_server_stops_when_told_to_quit,
    ],
    children: [
        child_sem_116_client,
        child_sem_117_writer,
        child_sample_server,
        child_sample_client,
        child_sample_transact,
        child_sample_call,
    ],
}
