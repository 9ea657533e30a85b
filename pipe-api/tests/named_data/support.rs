//! Helpers of the named-pipe data-path tests.

use crate::common;

use common::{child_command, Pending, HANG};
use shmpipe::named::{
    ClientOptions, Direction, MsgRead, NamedPipeClient, NamedPipeServer, ServerOptions,
};
use shmpipe::{Error, ErrorKind, PeekInfo, PipeState, PipeType, ReadMode, WaitMode};
use std::fmt::Debug;
use std::io::{self};
use std::os::unix::process::ExitStatusExt;
use std::process::Child;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Bound for what must happen at once or soon: far above what a correct
/// implementation needs on a loaded machine, low enough that a broken one
/// fails without stalling the suite.
pub(super) const QUICK: Duration = Duration::from_secs(10);

/// Environment variable carrying the pipe name to a child process.
pub(super) const PIPE_ENV: &str = "SHMPIPE_TEST_PIPE";
/// Environment variable carrying the sample server's client count.
pub(super) const CLIENTS_ENV: &str = "SHMPIPE_TEST_CLIENTS";
/// Line the sample server child prints once its first instance listens.
pub(super) const READY: &str = "sample server ready";

// ------------------------------------------------------------------ helpers

pub(super) static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A pipe name no other test (or test run) uses.
pub(super) fn unique(tag: &str) -> String {
    format!(
        r"\\.\pipe\shmpipe-named-data-{}-{}-{tag}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

pub(super) fn kind(e: &io::Error) -> Option<ErrorKind> {
    Error::kind_of(e)
}

#[track_caller]
pub(super) fn assert_kind<T: Debug>(r: io::Result<T>, want: ErrorKind) {
    match r {
        Ok(v) => panic!("expected {want:?}, got Ok({v:?})"),
        Err(e) => assert_eq!(kind(&e), Some(want), "expected {want:?}, got {e:?}"),
    }
}

/// The spec's default pipe (section 9).
pub(super) fn defaults() -> ServerOptions {
    let mut o = ServerOptions::new();
    o.access(Direction::Duplex)
        .max_instances(1)
        .quotas(1024, 1024);
    o
}

/// The defaults with message type and a message-read server end.
pub(super) fn message_opts() -> ServerOptions {
    let mut o = defaults();
    o.pipe_type(PipeType::Message).read_mode(ReadMode::Message);
    o
}

pub(super) fn pair_with(o: &ServerOptions) -> (NamedPipeServer, NamedPipeClient) {
    let name = unique("pair");
    let s = o.create(&name).unwrap();
    let c = ClientOptions::new().open(&name).unwrap();
    (s, c)
}

/// A connected default byte pipe.
pub(super) fn byte_pair() -> (NamedPipeServer, NamedPipeClient) {
    pair_with(&defaults())
}

/// A connected message pipe, both ends in message-read mode.
pub(super) fn msg_pair() -> (NamedPipeServer, NamedPipeClient) {
    let (s, c) = pair_with(&message_opts());
    c.set_read_mode(ReadMode::Message).unwrap();
    (s, c)
}

pub(super) fn quota_pair(out: u32, inbound: u32) -> (NamedPipeServer, NamedPipeClient) {
    let mut o = defaults();
    o.quotas(out, inbound);
    pair_with(&o)
}

/// What the tests do with either end.
pub(super) trait PipeEnd: Send + Sync + 'static {
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
pub(super) type ReadResult = io::Result<(Vec<u8>, bool)>;

/// One read of at most `cap` bytes: the bytes and whether the message (or
/// byte read) was complete.
pub(super) fn recv_vec<E: PipeEnd + ?Sized>(e: &E, cap: usize) -> ReadResult {
    let mut buf = vec![0u8; cap];
    let m = e.recv(&mut buf)?;
    buf.truncate(m.len);
    Ok((buf, m.complete))
}

/// Reads exactly `n` bytes in byte-read mode.
pub(super) fn read_n<E: PipeEnd + ?Sized>(e: &E, n: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(n);
    while v.len() < n {
        let (chunk, _) = recv_vec(e, n - v.len()).unwrap();
        assert!(!chunk.is_empty(), "unexpected 0-byte read");
        v.extend_from_slice(&chunk);
    }
    v
}

/// Every unread byte queued for `e`.
pub(super) fn total<E: PipeEnd + ?Sized>(e: &E) -> u64 {
    e.peek_at(None).unwrap().total_available
}

pub(super) fn wait_until(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
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
pub(super) fn await_total<E: PipeEnd + ?Sized>(e: &E, n: u64) {
    assert!(
        wait_until(HANG, || total(e) == n),
        "{n} bytes never became available (have {})",
        total(e)
    );
}

pub(super) fn pending_send<E: PipeEnd>(e: &Arc<E>, data: Vec<u8>) -> Pending<io::Result<usize>> {
    let e = Arc::clone(e);
    Pending::start("write", move || e.send(&data))
}

pub(super) fn pending_recv<E: PipeEnd>(e: &Arc<E>, cap: usize) -> Pending<ReadResult> {
    let e = Arc::clone(e);
    Pending::start("read", move || recv_vec(&*e, cap))
}

pub(super) fn pending_flush<E: PipeEnd>(e: &Arc<E>) -> Pending<io::Result<()>> {
    let e = Arc::clone(e);
    Pending::start("flush", move || e.flush_all())
}

pub(super) fn pending_transact<E: PipeEnd>(
    e: &Arc<E>,
    request: &[u8],
    cap: usize,
) -> Pending<ReadResult> {
    let e = Arc::clone(e);
    let request = request.to_vec();
    Pending::start("transact", move || {
        let mut buf = vec![0u8; cap];
        let m = e.transact_with(&request, &mut buf)?;
        buf.truncate(m.len);
        Ok((buf, m.complete))
    })
}

/// In a child: the pipe name the parent passed.
pub(super) fn child_pipe() -> String {
    std::env::var(PIPE_ENV).expect("pipe name passed by the parent")
}

pub(super) fn spawn_child(test: &str, pipe: &str) -> Child {
    child_command(test)
        .env(PIPE_ENV, pipe)
        .spawn()
        .expect("spawn child")
}

/// Kills `child` with SIGKILL and reaps it.
pub(super) fn kill(mut child: Child) {
    child.kill().expect("SIGKILL");
    let status = child.wait().expect("reap child");
    assert_eq!(status.signal(), Some(9), "child ended otherwise: {status}");
}
