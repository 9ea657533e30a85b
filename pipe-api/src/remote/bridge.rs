//! Copies one pipe end to and from one QUIC stream. The client's private
//! segment ([`start`]): two threads per pipe end, one reads the pipe and
//! writes frames, one reads frames and writes the pipe. The gateway's
//! local client end ([`serve_async`]): one task on the connection's
//! runtime awaiting the end's readiness. Whichever learns first that the instance is over (the
//! stream ended, was reset, its connection died, or the pipe refused a
//! write) stops the other and lets the pipe end go, so a peer blocked on it
//! sees the pipe broken.

use super::frame::{Frame, FrameError, HEADER, MAX_PAYLOAD};
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;
use tokio::runtime::Handle;

/// A message longer than this, sent in parts, resets the stream: its
/// parts are held in memory until the last one comes (a remote peer can
/// make a gateway hold this much per stream).
pub(crate) const MAX_MESSAGE: usize = 16 << 20;

/// The stream reset that says the server disconnected the instance
/// (`disconnect`): the client's end then fails with `PipeNotConnected`.
const RESET_DISCONNECTED: quinn::VarInt = quinn::VarInt::from_u32(3);

/// The pipe end a bridge serves.
pub(crate) trait PipeSide: Send + Sync + 'static {
    /// Whether it is a message pipe (parts of a message are collected and
    /// written as one message).
    fn message(&self) -> bool;
    /// Reads what the local peer wrote: `(len, complete)`; the end of the
    /// pipe is an error.
    fn recv(&self, buf: &mut [u8]) -> io::Result<(usize, bool)>;
    /// Writes one message (or bytes) whole.
    fn send(&self, data: &[u8]) -> io::Result<()>;
    /// Ends a blocked `recv` now (returns whether one was pending).
    fn cancel(&self) -> bool;
    /// The remote server disconnected the instance (only the client's
    /// side does anything).
    fn disconnect(&self) {}
    /// The peer asked (`FLUSH`): waits until the local peer read
    /// everything written to this end so far. Only the gateway answers
    /// (in [`serve_async`], not through this trait); a `FLUSH` sent to a client is hostile and ends the stream.
    fn flush(&self) -> io::Result<()> {
        Err(io::ErrorKind::InvalidData.into())
    }
}

/// Reads one frame from `recv`; `Ok(None)` at a clean end of the stream
/// (between frames).
pub(crate) async fn read_frame(recv: &mut quinn::RecvStream) -> io::Result<Option<Frame>> {
    let mut h = [0u8; HEADER];
    match recv.read_exact(&mut h).await {
        Ok(()) => {}
        Err(quinn::ReadExactError::FinishedEarly(0)) => return Ok(None),
        Err(quinn::ReadExactError::ReadError(e)) => return Err(read_error(e)),
        Err(e) => return Err(io::Error::new(io::ErrorKind::BrokenPipe, e)),
    }
    let (t, len) = Frame::header(&h).map_err(invalid)?;
    // Grown as the payload arrives (flow-controlled), not from the length
    // a peer claims: many streams announcing large frames cost nothing.
    let mut p = Vec::with_capacity(len.min(16 << 10));
    while p.len() < len {
        match recv.read_chunk(len - p.len(), true).await {
            Ok(Some(chunk)) => p.extend_from_slice(&chunk.bytes),
            Ok(None) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Err(e) => return Err(read_error(e)),
        }
    }
    Frame::parse(t, p).map(Some).map_err(invalid)
}

/// A failed stream read: `NotConnected` for the server's disconnect,
/// `BrokenPipe` for anything else.
fn read_error(e: quinn::ReadError) -> io::Error {
    let kind = match e {
        quinn::ReadError::Reset(code) if code == RESET_DISCONNECTED => io::ErrorKind::NotConnected,
        _ => io::ErrorKind::BrokenPipe,
    };
    io::Error::new(kind, e)
}

fn invalid(e: FrameError) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e)
}

/// Writes one frame to `send`.
pub(crate) async fn write_frame(send: &mut quinn::SendStream, f: &Frame) -> io::Result<()> {
    send.write_all(&f.encode())
        .await
        .map_err(|e| io::Error::new(io::ErrorKind::BrokenPipe, e))
}

/// Where the flushes of a client end stand.
#[derive(Default)]
struct Flushes {
    /// Payload bytes the out thread took from the pipe and wrote to the
    /// stream (frame written, in order).
    sent: u64,
    /// `FLUSH` frames sent.
    asked: u64,
    /// `FLUSH_ACK` frames received (the gateway answers in order).
    acked: u64,
}

/// What the two threads and the connection's watcher share.
struct State {
    /// The stream's send half: the out thread writes data through it, a
    /// flushing caller its `FLUSH`; one whole frame at a time.
    send: Mutex<quinn::SendStream>,
    flushes: Mutex<Flushes>,
    /// Signals a change of `flushes` or `stopping`.
    flushed: Condvar,
    /// Set once the instance is over: the threads stop at their next look.
    stopping: AtomicBool,
    /// How many of the two threads still run.
    running: Mutex<u8>,
    cv: Condvar,
    /// Tells the watcher both threads are done.
    done: Mutex<Option<tokio::sync::oneshot::Sender<()>>>,
}

impl State {
    fn lock(&self) -> std::sync::MutexGuard<'_, u8> {
        self.running.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A thread is done.
    fn exit(&self) {
        let mut r = self.lock();
        *r -= 1;
        if *r == 0 {
            if let Some(tx) = self.done.lock().unwrap_or_else(|e| e.into_inner()).take() {
                let _ = tx.send(());
            }
        }
        self.cv.notify_all();
    }

    fn flushes(&self) -> std::sync::MutexGuard<'_, Flushes> {
        self.flushes.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Writes `f` to the stream, whole, between the other writers' frames.
    fn write(&self, h: &Handle, f: &Frame) -> io::Result<()> {
        let mut send = self.send.lock().unwrap_or_else(|e| e.into_inner());
        h.block_on(write_frame(&mut send, f))
    }

    /// Waits until the instance is over (by [`State::stop_all`]).
    fn wait_stopping(&self) {
        let mut r = self.lock();
        while !self.stopping.load(Ordering::SeqCst) {
            r = self
                .cv
                .wait_timeout(r, Duration::from_millis(50))
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Ends the instance: both threads stop, whatever they wait for on the
    /// pipe (a cancel ends a blocked read or write of the end), and this
    /// returns once they have.
    fn stop_all(&self, pipe: &dyn PipeSide) {
        self.stopping.store(true, Ordering::SeqCst);
        // Flushes waiting for an answer give up (taken so that none misses
        // the store between its check and its wait).
        drop(self.flushes());
        self.flushed.notify_all();
        let mut r = self.lock();
        self.cv.notify_all();
        while *r > 0 {
            // A cancel finds only an operation waiting now; one about to
            // wait is caught by the next round (each thread checks
            // `stopping` before each operation).
            pipe.cancel();
            r = self
                .cv
                .wait_timeout(r, Duration::from_millis(5))
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}

/// A running bridge, as the client end's `flush_buffers` reaches it.
#[derive(Clone)]
pub(crate) struct Link {
    state: Arc<State>,
    handle: Handle,
}

impl std::fmt::Debug for Link {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Link")
            .field("stopping", &self.state.stopping.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl Link {
    /// The remote half of a client end's flush, called once the local
    /// flush returned (the bridge took everything: `consumed` payload bytes
    /// in all): waits until the bridge wrote those bytes to the stream,
    /// sends `FLUSH` behind them, and waits for its `FLUSH_ACK` (the
    /// gateway's local flush returned: the server read them all).
    /// `BrokenPipe` if the instance ends first (the server left with bytes
    /// unread, the gateway or the network died: within the idle timeout).
    pub(crate) fn flush(&self, consumed: u64) -> io::Result<()> {
        let work = || self.flush_on_this_thread(consumed);
        // From async code this thread may not block on the runtime: a
        // helper thread does (as for a remote open).
        if Handle::try_current().is_ok() {
            std::thread::scope(|s| s.spawn(work).join())
                .map_err(|_| io::Error::other("remote flush panicked"))?
        } else {
            work()
        }
    }

    fn flush_on_this_thread(&self, consumed: u64) -> io::Result<()> {
        let st = &*self.state;
        let broken = || crate::Error::io(crate::ErrorKind::BrokenPipe);
        let wait = |done: &dyn Fn(&Flushes) -> bool| -> io::Result<()> {
            let mut f = st.flushes();
            while !done(&f) {
                if st.stopping.load(Ordering::SeqCst) {
                    return Err(broken());
                }
                f = st.flushed.wait(f).unwrap_or_else(|e| e.into_inner());
            }
            Ok(())
        };
        wait(&|f| f.sent >= consumed)?;
        let mine = {
            let mut send = st.send.lock().unwrap_or_else(|e| e.into_inner());
            if st.stopping.load(Ordering::SeqCst) {
                return Err(broken());
            }
            self.handle
                .block_on(write_frame(&mut send, &Frame::Flush))
                .map_err(|_| broken())?;
            let mut f = st.flushes();
            f.asked += 1;
            f.asked
        };
        wait(&|f| f.acked >= mine)
    }
}

/// Starts the two threads that join `pipe` and the stream of `conn`; they
/// end when the instance is over: the stream ended or was reset, the pipe
/// refused a write, or the connection died (a watcher on the runtime then
/// stops both, even if both wait on the pipe).
pub(crate) fn start<P: PipeSide>(
    handle: Handle,
    pipe: Arc<P>,
    conn: quinn::Connection,
    send: quinn::SendStream,
    recv: quinn::RecvStream,
) -> io::Result<Link> {
    let (done_tx, done_rx) = tokio::sync::oneshot::channel();
    let state = Arc::new(State {
        send: Mutex::new(send),
        flushes: Mutex::default(),
        flushed: Condvar::new(),
        stopping: AtomicBool::new(false),
        running: Mutex::new(2),
        cv: Condvar::new(),
        done: Mutex::new(Some(done_tx)),
    });
    let (p, st, h) = (Arc::clone(&pipe), Arc::clone(&state), handle.clone());
    std::thread::Builder::new()
        .name("shmpipe-remote-out".into())
        .spawn(move || {
            let failed = pipe_to_stream(&h, &*p, &st);
            st.exit();
            // The peer will not read what we send: the other thread may
            // wait on the pipe for good (a full pipe nobody reads).
            if failed {
                st.stop_all(&*p);
            }
        })?;
    let (p, st, h) = (Arc::clone(&pipe), Arc::clone(&state), handle.clone());
    let started = std::thread::Builder::new()
        .name("shmpipe-remote-in".into())
        .spawn(move || {
            stream_to_pipe(&h, &*p, recv, &st);
            st.exit();
            // The instance is over: the other thread lets go too.
            st.stop_all(&*p);
        });
    if let Err(e) = started {
        state.exit();
        state.stop_all(&*pipe);
        return Err(e);
    }
    let link = Link {
        state: Arc::clone(&state),
        handle: handle.clone(),
    };
    handle.spawn(async move {
        tokio::select! {
            _ = conn.closed() => {
                let _ = tokio::task::spawn_blocking(move || state.stop_all(&*pipe)).await;
            }
            _ = done_rx => {}
        }
    });
    Ok(link)
}

/// Returns `true` if the stream failed (the peer stopped reading it, or the
/// connection died): the instance is over.
fn pipe_to_stream(h: &Handle, pipe: &dyn PipeSide, st: &State) -> bool {
    let send = || st.send.lock().unwrap_or_else(|e| e.into_inner());
    let stop = &st.stopping;
    // A frame's header, then room for what one pipe read gives: the
    // payload is read in place behind its header and the frame written
    // with one call (quinn's copy into its send buffer is the only one).
    let mut buf = vec![0u8; HEADER + (64 << 10)];
    while !stop.load(Ordering::SeqCst) {
        let (n, complete) = match pipe.recv(&mut buf[HEADER..]) {
            Ok(r) => r,
            // Nothing ever to read here (a one-way pipe, or an end opened
            // without read access): the stream stays open, its end would
            // tell the peer the instance is over. (Dropping `send` would
            // finish it.)
            Err(e) if crate::Error::kind_of(&e) == Some(crate::ErrorKind::AccessDenied) => {
                st.wait_stopping();
                return false;
            }
            // The server disconnected the instance: the client hears it.
            Err(e) if crate::Error::kind_of(&e) == Some(crate::ErrorKind::PipeNotConnected) => {
                let _ = send().reset(RESET_DISCONNECTED);
                return false;
            }
            // The local end closed: the peer hears the end of the stream.
            Err(_) => break,
        };
        if stop.load(Ordering::SeqCst) {
            break;
        }
        debug_assert!(n <= MAX_PAYLOAD);
        buf[..HEADER].copy_from_slice(&data_header(complete, n));
        let written = {
            let mut send = send();
            h.block_on(send.write_all(&buf[..HEADER + n]))
        };
        if written.is_err() {
            return true;
        }
        // Only now may a flush that counts these bytes send its `FLUSH`:
        // behind their frame.
        st.flushes().sent += n as u64;
        st.flushed.notify_all();
    }
    let _ = send().finish();
    false
}

/// The header of a `DATA` (`complete`) or `MORE` frame of `len` bytes.
fn data_header(complete: bool, len: usize) -> [u8; HEADER] {
    // The type byte as the codec writes it: an empty frame is its header.
    let empty = if complete {
        Frame::Data(Vec::new())
    } else {
        Frame::More(Vec::new())
    }
    .encode();
    let mut h = [0u8; HEADER];
    h[0] = empty[0];
    h[1..].copy_from_slice(&(len as u32).to_le_bytes());
    h
}

fn stream_to_pipe(h: &Handle, pipe: &dyn PipeSide, mut recv: quinn::RecvStream, st: &State) {
    let stop = &st.stopping;
    let mut partial: Vec<u8> = Vec::new();
    while !stop.load(Ordering::SeqCst) {
        let frame = match h.block_on(read_frame(&mut recv)) {
            Ok(Some(f)) => f,
            Err(e) if e.kind() == io::ErrorKind::NotConnected => {
                pipe.disconnect();
                return;
            }
            Ok(None) | Err(_) => return,
        };
        let ok = match frame {
            Frame::More(d) if pipe.message() => {
                if partial.len() + d.len() > MAX_MESSAGE {
                    let _ = recv.stop(quinn::VarInt::from_u32(1));
                    return;
                }
                partial.extend_from_slice(&d);
                Ok(())
            }
            Frame::Data(d) if pipe.message() => {
                if partial.is_empty() {
                    pipe.send(&d)
                } else {
                    partial.extend_from_slice(&d);
                    let r = pipe.send(&partial);
                    partial.clear();
                    r
                }
            }
            Frame::More(d) | Frame::Data(d) => pipe.send(&d),
            // Only a gateway answers a `FLUSH` (in `serve_async`): the
            // client's side refuses it.
            Frame::Flush => pipe.flush().and_then(|()| st.write(h, &Frame::FlushAck)),
            Frame::FlushAck => {
                let mut f = st.flushes();
                if f.acked < f.asked {
                    f.acked += 1;
                    drop(f);
                    st.flushed.notify_all();
                    Ok(())
                } else {
                    // An answer to nothing asked: hostile.
                    Err(io::Error::from(io::ErrorKind::InvalidData))
                }
            }
            // Only data flows once the pipe is open.
            _ => Err(io::Error::from(io::ErrorKind::InvalidData)),
        };
        if ok.is_err() {
            let _ = recv.stop(quinn::VarInt::from_u32(1));
            return;
        }
    }
}

/// The gateway's bridge: both directions as futures of one task on the
/// connection's runtime, awaiting the local pipe end's readiness (its
/// eventfd) instead of blocking threads, so the worker that drives quinn
/// also moves the bytes (no thread wakes another to pass a frame on).
/// It ends as [`start`]'s threads do: the stream ended, was reset or
/// refused a write, the pipe refused a write, or the connection died;
/// dropping the end then lets the local server see the pipe broken.
pub(crate) async fn serve_async(
    pipe: crate::tokio::NamedPipeClient,
    message: bool,
    conn: quinn::Connection,
    send: quinn::SendStream,
    mut recv: quinn::RecvStream,
) {
    let send = tokio::sync::Mutex::new(send);
    let pipe = &pipe;
    let out = async {
        let mut buf = vec![0u8; HEADER + (64 << 10)];
        loop {
            let (n, complete) = match pipe.recv_msg(&mut buf[HEADER..]).await {
                Ok(m) => (m.len, m.complete),
                // Nothing ever to read (a one-way pipe, an end without
                // read access): the stream stays open until the other
                // direction ends the instance.
                Err(e) if crate::Error::kind_of(&e) == Some(crate::ErrorKind::AccessDenied) => {
                    return std::future::pending::<bool>().await;
                }
                Err(e) if crate::Error::kind_of(&e) == Some(crate::ErrorKind::PipeNotConnected) => {
                    let _ = send.lock().await.reset(RESET_DISCONNECTED);
                    return std::future::pending::<bool>().await;
                }
                // The local end closed: the peer hears the end of the
                // stream; the other direction goes on until it ends.
                Err(_) => {
                    let _ = send.lock().await.finish();
                    return std::future::pending::<bool>().await;
                }
            };
            debug_assert!(n <= MAX_PAYLOAD);
            buf[..HEADER].copy_from_slice(&data_header(complete, n));
            if send
                .lock()
                .await
                .write_all(&buf[..HEADER + n])
                .await
                .is_err()
            {
                // The peer will not read it: the instance is over.
                return true;
            }
        }
    };
    let into = async {
        let mut partial: Vec<u8> = Vec::new();
        loop {
            let frame = match read_frame(&mut recv).await {
                Ok(Some(f)) => f,
                Ok(None) | Err(_) => return,
            };
            let ok = match frame {
                Frame::More(d) if message => {
                    if partial.len() + d.len() > MAX_MESSAGE {
                        let _ = recv.stop(quinn::VarInt::from_u32(1));
                        return;
                    }
                    partial.extend_from_slice(&d);
                    Ok(())
                }
                Frame::Data(d) if message && !partial.is_empty() => {
                    partial.extend_from_slice(&d);
                    let r = send_all(pipe, &partial).await;
                    partial.clear();
                    r
                }
                Frame::More(d) | Frame::Data(d) => send_all(pipe, &d).await,
                // Everything before it is in the pipe: answers once the
                // server read it.
                Frame::Flush => match pipe.flush_buffers().await {
                    Ok(()) => write_frame(&mut *send.lock().await, &Frame::FlushAck).await,
                    Err(e) => Err(e),
                },
                // The gateway asks no flushes: an answer is hostile, as is
                // anything but data once the pipe is open.
                _ => Err(io::Error::from(io::ErrorKind::InvalidData)),
            };
            if ok.is_err() {
                let _ = recv.stop(quinn::VarInt::from_u32(1));
                return;
            }
        }
    };
    tokio::select! {
        _ = out => {}
        () = into => {}
        _ = conn.closed() => {}
    }
}

/// Writes `d` to the pipe whole (a message at once; bytes as they fit).
async fn send_all(pipe: &crate::tokio::NamedPipeClient, mut d: &[u8]) -> io::Result<()> {
    loop {
        let n = pipe.send_msg(d).await?;
        d = &d[n.min(d.len())..];
        if d.is_empty() {
            return Ok(());
        }
    }
}
