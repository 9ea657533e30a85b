//! The public async named ends. Their common methods are written once
//! (`common!`), with examples that run on either end.

use super::Duplex;
use super::{
    AsyncRead, AsyncWrite, ClientOptions, ConnectProgress, Connected, Context, Interest, MsgRead,
    PeekInfo, Pin, PipeInfo, PipeState, Poll, ReadBuf, Ready, ServerOptions, WaitTimeout,
};
use crate::named;
use std::io;

/// The methods both ends have. `$me` names the end in the examples
/// (`server` or `client`), `$peer` the other one.
macro_rules! common {
    ($ty:ident, $me:literal, $peer:literal) => {
        impl $ty {
            /// Reads one message (message-read mode; `complete == false` is
            /// Windows' MoreData, as on the blocking end) or what is queued
            /// (byte-read mode), waiting for data. Takes `&self`: several
            /// reads may be pending; dropping one consumes nothing.
            ///
            /// ```
            /// # tokio::runtime::Builder::new_current_thread().enable_io().build()?.block_on(async {
            /// # let name = format!(r"\\.\pipe\doc-async-{}-{}", std::process::id(), std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos());
            /// # let server = shmpipe::tokio::NamedPipeServer::create(&shmpipe::named::ServerOptions::new(), &name)?;
            /// # let client = shmpipe::tokio::NamedPipeClient::open(&shmpipe::named::ClientOptions::new(), &name)?;
            #[doc = concat!("let (me, peer) = (&", $me, ", &", $peer, ");")]
            /// peer.send_msg(b"hi").await?;
            /// let mut buf = [0u8; 8];
            /// assert_eq!(me.recv_msg(&mut buf).await?.len, 2);
            /// # Ok::<(), std::io::Error>(())
            /// # })?;
            /// # Ok::<(), std::io::Error>(())
            /// ```
            pub async fn recv_msg(&self, buf: &mut [u8]) -> io::Result<MsgRead> {
                self.inner.recv_msg(buf).await
            }

            /// Writes one message (message pipe: whole, once it fits the
            /// quota; larger than the quota: `InvalidInput`) or what fits
            /// the quota (byte pipe), waiting until something does. A
            /// pending write has published nothing, so dropping it leaves
            /// nothing behind.
            ///
            /// ```
            /// # tokio::runtime::Builder::new_current_thread().enable_io().build()?.block_on(async {
            /// # let name = format!(r"\\.\pipe\doc-async-{}-{}", std::process::id(), std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos());
            /// # let server = shmpipe::tokio::NamedPipeServer::create(&shmpipe::named::ServerOptions::new(), &name)?;
            /// # let client = shmpipe::tokio::NamedPipeClient::open(&shmpipe::named::ClientOptions::new(), &name)?;
            #[doc = concat!("let (me, peer) = (&", $me, ", &", $peer, ");")]
            /// assert_eq!(me.send_msg(b"hello").await?, 5);
            /// assert_eq!(peer.recv_msg(&mut [0; 8]).await?.len, 5);
            /// # Ok::<(), std::io::Error>(())
            /// # })?;
            /// # Ok::<(), std::io::Error>(())
            /// ```
            pub async fn send_msg(&self, data: &[u8]) -> io::Result<usize> {
                self.inner.send_msg(data).await
            }

            /// Sends `request` as one message, then waits for the next
            /// message (spec 4.9; message type and message-read mode, else
            /// `BadPipe`). Dropping the future while it waits for the reply
            /// cancels only that wait: the request stays in the pipe.
            ///
            /// ```
            /// use shmpipe::{PipeType, ReadMode};
            /// # tokio::runtime::Builder::new_current_thread().enable_io().build()?.block_on(async {
            /// # let name = format!(r"\\.\pipe\doc-async-{}-{}", std::process::id(), std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos());
            /// let opts = shmpipe::named::ServerOptions::new().pipe_type(PipeType::Message).read_mode(ReadMode::Message).clone();
            /// let server = shmpipe::tokio::NamedPipeServer::create(&opts, &name)?;
            /// let client = shmpipe::tokio::NamedPipeClient::open(&shmpipe::named::ClientOptions::new(), &name)?;
            /// client.get_ref().set_read_mode(ReadMode::Message)?;
            #[doc = concat!("let (me, peer) = (&", $me, ", &", $peer, ");")]
            /// let answer = async {
            ///     let mut buf = [0u8; 16];
            ///     let n = peer.recv_msg(&mut buf).await?.len;
            ///     peer.send_msg(&buf[..n].repeat(2)).await
            /// };
            /// let mut reply = [0u8; 16];
            /// let (r, sent) = tokio::join!(me.transact(b"ab", &mut reply), answer);
            /// sent?;
            /// assert_eq!(&reply[..r?.len], b"abab");
            /// # Ok::<(), std::io::Error>(())
            /// # })?;
            /// # Ok::<(), std::io::Error>(())
            /// ```
            pub async fn transact(&self, request: &[u8], reply: &mut [u8]) -> io::Result<MsgRead> {
                self.inner.transact(request, reply).await
            }

            /// Waits until a read may make progress (data queued, or the
            /// peer gone). May be stale by the time of the read, as tokio's.
            ///
            /// ```
            /// # tokio::runtime::Builder::new_current_thread().enable_io().build()?.block_on(async {
            /// # let name = format!(r"\\.\pipe\doc-async-{}-{}", std::process::id(), std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos());
            /// # let server = shmpipe::tokio::NamedPipeServer::create(&shmpipe::named::ServerOptions::new(), &name)?;
            /// # let client = shmpipe::tokio::NamedPipeClient::open(&shmpipe::named::ClientOptions::new(), &name)?;
            #[doc = concat!("let (me, peer) = (&", $me, ", &", $peer, ");")]
            /// peer.try_write(b"x")?;
            /// me.readable().await?;
            /// assert_eq!(me.try_read(&mut [0; 4])?, 1);
            /// # Ok::<(), std::io::Error>(())
            /// # })?;
            /// # Ok::<(), std::io::Error>(())
            /// ```
            pub async fn readable(&self) -> io::Result<()> {
                self.inner.readable().await
            }

            /// Waits until a write may make progress (less than the quota
            /// unread, or the peer gone).
            ///
            /// ```
            /// # tokio::runtime::Builder::new_current_thread().enable_io().build()?.block_on(async {
            /// # let name = format!(r"\\.\pipe\doc-async-{}-{}", std::process::id(), std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos());
            /// # let server = shmpipe::tokio::NamedPipeServer::create(&shmpipe::named::ServerOptions::new(), &name)?;
            /// # let client = shmpipe::tokio::NamedPipeClient::open(&shmpipe::named::ClientOptions::new(), &name)?;
            #[doc = concat!("let me = &", $me, ";")]
            /// me.writable().await?;
            /// assert_eq!(me.try_write(b"x")?, 1);
            /// # drop((server, client));
            /// # Ok::<(), std::io::Error>(())
            /// # })?;
            /// # Ok::<(), std::io::Error>(())
            /// ```
            pub async fn writable(&self) -> io::Result<()> {
                self.inner.writable().await
            }

            /// Waits for any of the readiness kinds in `interest`; a read
            /// and a write readiness are watched independently.
            ///
            /// ```
            /// use tokio::io::Interest;
            /// # tokio::runtime::Builder::new_current_thread().enable_io().build()?.block_on(async {
            /// # let name = format!(r"\\.\pipe\doc-async-{}-{}", std::process::id(), std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos());
            /// # let server = shmpipe::tokio::NamedPipeServer::create(&shmpipe::named::ServerOptions::new(), &name)?;
            /// # let client = shmpipe::tokio::NamedPipeClient::open(&shmpipe::named::ClientOptions::new(), &name)?;
            #[doc = concat!("let me = &", $me, ";")]
            /// let ready = me.ready(Interest::READABLE | Interest::WRITABLE).await?;
            /// assert!(ready.is_writable()); // nothing to read yet, room to write
            /// # drop((server, client));
            /// # Ok::<(), std::io::Error>(())
            /// # })?;
            /// # Ok::<(), std::io::Error>(())
            /// ```
            pub async fn ready(&self, interest: Interest) -> io::Result<Ready> {
                self.inner.ready(interest).await
            }

            /// Reads without waiting: `WouldBlock` when nothing is queued,
            /// `Ok(0)` at the end of the pipe.
            ///
            /// ```
            /// # tokio::runtime::Builder::new_current_thread().enable_io().build()?.block_on(async {
            /// # let name = format!(r"\\.\pipe\doc-async-{}-{}", std::process::id(), std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos());
            /// # let server = shmpipe::tokio::NamedPipeServer::create(&shmpipe::named::ServerOptions::new(), &name)?;
            /// # let client = shmpipe::tokio::NamedPipeClient::open(&shmpipe::named::ClientOptions::new(), &name)?;
            #[doc = concat!("let me = &", $me, ";")]
            /// let e = me.try_read(&mut [0; 4]).unwrap_err();
            /// assert_eq!(e.kind(), std::io::ErrorKind::WouldBlock);
            /// # drop((server, client));
            /// # Ok::<(), std::io::Error>(())
            /// # })?;
            /// # Ok::<(), std::io::Error>(())
            /// ```
            pub fn try_read(&self, buf: &mut [u8]) -> io::Result<usize> {
                super::eof_is_zero(self.inner.try_recv(buf).map(|m| m.len))
            }

            /// Writes without waiting (a message whole, or bytes that fit
            /// the quota): `WouldBlock` when nothing fits.
            ///
            /// ```
            /// # tokio::runtime::Builder::new_current_thread().enable_io().build()?.block_on(async {
            /// # let name = format!(r"\\.\pipe\doc-async-{}-{}", std::process::id(), std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos());
            /// # let server = shmpipe::tokio::NamedPipeServer::create(&shmpipe::named::ServerOptions::new(), &name)?;
            /// # let client = shmpipe::tokio::NamedPipeClient::open(&shmpipe::named::ClientOptions::new(), &name)?;
            #[doc = concat!("let me = &", $me, ";")]
            /// assert_eq!(me.try_write(b"abc")?, 3);
            /// # drop((server, client));
            /// # Ok::<(), std::io::Error>(())
            /// # })?;
            /// # Ok::<(), std::io::Error>(())
            /// ```
            pub fn try_write(&self, buf: &[u8]) -> io::Result<usize> {
                self.inner.try_send(buf)
            }

            /// Waits until the peer read everything written (Windows'
            /// `FlushFileBuffers`); `BrokenPipe` if it left with data unread.
            ///
            /// ```
            /// # tokio::runtime::Builder::new_current_thread().enable_io().build()?.block_on(async {
            /// # let name = format!(r"\\.\pipe\doc-async-{}-{}", std::process::id(), std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos());
            /// # let server = shmpipe::tokio::NamedPipeServer::create(&shmpipe::named::ServerOptions::new(), &name)?;
            /// # let client = shmpipe::tokio::NamedPipeClient::open(&shmpipe::named::ClientOptions::new(), &name)?;
            #[doc = concat!("let (me, peer) = (&", $me, ", &", $peer, ");")]
            /// me.try_write(b"abc")?;
            /// let mut buf = [0u8; 8];
            /// let (flushed, read) = tokio::join!(me.flush_buffers(), peer.recv_msg(&mut buf));
            /// assert_eq!(read?.len, 3);
            /// flushed?;
            /// # Ok::<(), std::io::Error>(())
            /// # })?;
            /// # Ok::<(), std::io::Error>(())
            /// ```
            pub async fn flush_buffers(&self) -> io::Result<()> {
                self.inner.flush_buffers().await
            }

            /// Peeks (spec 4.8), as the blocking end; never waits for data.
            ///
            /// ```
            /// # tokio::runtime::Builder::new_current_thread().enable_io().build()?.block_on(async {
            /// # let name = format!(r"\\.\pipe\doc-async-{}-{}", std::process::id(), std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos());
            /// # let server = shmpipe::tokio::NamedPipeServer::create(&shmpipe::named::ServerOptions::new(), &name)?;
            /// # let client = shmpipe::tokio::NamedPipeClient::open(&shmpipe::named::ClientOptions::new(), &name)?;
            #[doc = concat!("let (me, peer) = (&", $me, ", &", $peer, ");")]
            /// peer.try_write(b"abc")?;
            /// assert_eq!(me.peek(None)?.total_available, 3);
            /// # Ok::<(), std::io::Error>(())
            /// # })?;
            /// # Ok::<(), std::io::Error>(())
            /// ```
            pub fn peek(&self, buf: Option<&mut [u8]>) -> io::Result<PeekInfo> {
                self.inner.end.peek(buf)
            }

            /// `get_info` (spec 4.14), as the blocking end.
            ///
            /// ```
            /// # tokio::runtime::Builder::new_current_thread().enable_io().build()?.block_on(async {
            /// # let name = format!(r"\\.\pipe\doc-async-{}-{}", std::process::id(), std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos());
            /// # let server = shmpipe::tokio::NamedPipeServer::create(&shmpipe::named::ServerOptions::new(), &name)?;
            /// # let client = shmpipe::tokio::NamedPipeClient::open(&shmpipe::named::ClientOptions::new(), &name)?;
            #[doc = concat!("let me = &", $me, ";")]
            /// assert_eq!(me.info()?.max_instances, shmpipe::named::UNLIMITED_INSTANCES);
            /// # drop((server, client));
            /// # Ok::<(), std::io::Error>(())
            /// # })?;
            /// # Ok::<(), std::io::Error>(())
            /// ```
            pub fn info(&self) -> io::Result<PipeInfo> {
                self.inner.end.info()
            }

            /// `get_state` (spec 4.15), as the blocking end. Credentials,
            /// process ids and `set_state` are on [`Self::get_ref`].
            ///
            /// ```
            /// # tokio::runtime::Builder::new_current_thread().enable_io().build()?.block_on(async {
            /// # let name = format!(r"\\.\pipe\doc-async-{}-{}", std::process::id(), std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos());
            /// # let server = shmpipe::tokio::NamedPipeServer::create(&shmpipe::named::ServerOptions::new(), &name)?;
            /// # let client = shmpipe::tokio::NamedPipeClient::open(&shmpipe::named::ClientOptions::new(), &name)?;
            #[doc = concat!("let me = &", $me, ";")]
            /// assert!(!me.state()?.nonblocking);
            /// assert_eq!(me.get_ref().server_process_id()?, std::process::id());
            /// # drop((server, client));
            /// # Ok::<(), std::io::Error>(())
            /// # })?;
            /// # Ok::<(), std::io::Error>(())
            /// ```
            pub fn state(&self) -> io::Result<PipeState> {
                self.inner.end.state()
            }

            /// The blocking end: modes, credentials, process ids, hand-off.
            /// Its blocking calls block the runtime's thread.
            ///
            /// ```
            /// # tokio::runtime::Builder::new_current_thread().enable_io().build()?.block_on(async {
            /// # let name = format!(r"\\.\pipe\doc-async-{}-{}", std::process::id(), std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos());
            /// # let server = shmpipe::tokio::NamedPipeServer::create(&shmpipe::named::ServerOptions::new(), &name)?;
            /// # let client = shmpipe::tokio::NamedPipeClient::open(&shmpipe::named::ClientOptions::new(), &name)?;
            #[doc = concat!("let me = &", $me, ";")]
            /// assert_eq!(me.get_ref().client_process_id()?, std::process::id());
            /// # drop((server, client));
            /// # Ok::<(), std::io::Error>(())
            /// # })?;
            /// # Ok::<(), std::io::Error>(())
            /// ```
            pub fn get_ref(&self) -> &named::$ty {
                &self.inner.end
            }

            /// Gives back the blocking end.
            ///
            /// ```
            /// # tokio::runtime::Builder::new_current_thread().enable_io().build()?.block_on(async {
            /// # let name = format!(r"\\.\pipe\doc-async-{}-{}", std::process::id(), std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos());
            /// # let server = shmpipe::tokio::NamedPipeServer::create(&shmpipe::named::ServerOptions::new(), &name)?;
            /// # let client = shmpipe::tokio::NamedPipeClient::open(&shmpipe::named::ClientOptions::new(), &name)?;
            #[doc = concat!("let blocking = ", $me, ".into_std()?;")]
            /// # drop(blocking);
            /// # Ok::<(), std::io::Error>(())
            /// # })?;
            /// # Ok::<(), std::io::Error>(())
            /// ```
            pub fn into_std(self) -> io::Result<named::$ty> {
                Ok(self.inner.end)
            }

            /// Makes a blocking end async (inside a tokio runtime).
            ///
            /// ```
            /// # tokio::runtime::Builder::new_current_thread().enable_io().build()?.block_on(async {
            /// # let name = format!(r"\\.\pipe\doc-async-{}-{}", std::process::id(), std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos());
            /// # let server = shmpipe::tokio::NamedPipeServer::create(&shmpipe::named::ServerOptions::new(), &name)?;
            /// # let client = shmpipe::tokio::NamedPipeClient::open(&shmpipe::named::ClientOptions::new(), &name)?;
            #[doc = concat!("let again = shmpipe::tokio::", stringify!($ty), "::from_std(", $me, ".into_std()?)?;")]
            /// # drop(again);
            /// # Ok::<(), std::io::Error>(())
            /// # })?;
            /// # Ok::<(), std::io::Error>(())
            /// ```
            pub fn from_std(end: named::$ty) -> io::Result<$ty> {
                Ok($ty {
                    inner: Duplex::new(end)?,
                })
            }
        }

        impl AsyncRead for $ty {
            /// Reads a message or bytes as [`Self::recv_msg`] does; `Ok`
            /// with nothing filled at the end of the pipe.
            fn poll_read(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &mut ReadBuf<'_>,
            ) -> Poll<io::Result<()>> {
                self.inner.poll_read(cx, buf)
            }
        }

        impl AsyncWrite for $ty {
            /// Writes as [`Self::send_msg`] does.
            fn poll_write(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &[u8],
            ) -> Poll<io::Result<usize>> {
                self.inner.poll_write(cx, buf)
            }

            /// Nothing is buffered in the handle: done at once
            /// ([`Self::flush_buffers`] waits for the reader).
            fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                Poll::Ready(Ok(()))
            }

            /// Done at once: dropping the end closes it.
            fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                Poll::Ready(Ok(()))
            }
        }
    };
}

/// The server end of a named pipe instance, for tokio (Windows' overlapped
/// server handle): [`NamedPipeServer::create`], an async
/// [`NamedPipeServer::connect`], [`AsyncRead`] / [`AsyncWrite`], messages.
///
/// ```
/// use shmpipe::named::{ClientOptions, ServerOptions};
/// use shmpipe::tokio::{NamedPipeClient, NamedPipeServer};
/// # tokio::runtime::Builder::new_current_thread().enable_io().build()?.block_on(async {
/// let name = format!(r"\\.\pipe\doc-async-server-{}", std::process::id());
/// let server = NamedPipeServer::create(&ServerOptions::new(), &name)?;
/// let connecting = server.connect();
/// let client = NamedPipeClient::open(&ClientOptions::new(), &name)?;
/// connecting.await?;
/// client.send_msg(b"ping").await?;
/// assert_eq!(server.recv_msg(&mut [0; 4]).await?.len, 4);
/// # Ok::<(), std::io::Error>(())
/// # })?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct NamedPipeServer {
    inner: Duplex<named::NamedPipeServer>,
}

common!(NamedPipeServer, "server", "client");

impl NamedPipeServer {
    /// Creates an instance of `name` as [`ServerOptions::create`] does,
    /// async (inside a tokio runtime).
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_io().build()?.block_on(async {
    /// let name = format!(r"\\.\pipe\doc-async-create-{}", std::process::id());
    /// let server = shmpipe::tokio::NamedPipeServer::create(&shmpipe::named::ServerOptions::new(), &name)?;
    /// assert_eq!(server.get_ref().name(), name);
    /// # Ok::<(), std::io::Error>(())
    /// # })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn create(options: &ServerOptions, name: &str) -> io::Result<NamedPipeServer> {
        NamedPipeServer::from_std(options.create(name)?)
    }

    /// Waits for a client (spec 4.3), as the blocking `connect`:
    /// `Connected::Already` if one attached before the call (SEM-037),
    /// `NoData` if it already left, `PipeListening` at once on a
    /// nonblocking end. Dropping the future cancels the wait and leaves
    /// the instance Listening: a client can still open it.
    ///
    /// ```
    /// use shmpipe::named::Connected;
    /// # tokio::runtime::Builder::new_current_thread().enable_io().build()?.block_on(async {
    /// let name = format!(r"\\.\pipe\doc-async-connect-{}", std::process::id());
    /// let server = shmpipe::tokio::NamedPipeServer::create(&shmpipe::named::ServerOptions::new(), &name)?;
    /// let _client = shmpipe::named::ClientOptions::new().open(&name)?;
    /// assert_eq!(server.connect().await?, Connected::Already);
    /// # Ok::<(), std::io::Error>(())
    /// # })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub async fn connect(&self) -> io::Result<Connected> {
        let mut progress = ConnectProgress::default();
        std::future::poll_fn(|cx| self.inner.end.poll_connect(&mut progress, cx.waker())).await
    }

    /// Cuts the client off (spec 4.12), as the blocking `disconnect`; a
    /// pending `connect` of this instance fails with `PipeNotConnected`.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_io().build()?.block_on(async {
    /// let name = format!(r"\\.\pipe\doc-async-disconnect-{}", std::process::id());
    /// let server = shmpipe::tokio::NamedPipeServer::create(&shmpipe::named::ServerOptions::new(), &name)?;
    /// let _client = shmpipe::named::ClientOptions::new().open(&name)?;
    /// server.connect().await?;
    /// server.disconnect()?;
    /// # Ok::<(), std::io::Error>(())
    /// # })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn disconnect(&self) -> io::Result<()> {
        let r = self.inner.end.disconnect();
        self.inner.end.async_wake();
        r
    }
}

/// The client end of a named pipe instance, for tokio:
/// [`NamedPipeClient::open`], [`AsyncRead`] / [`AsyncWrite`], messages.
///
/// ```
/// use shmpipe::named::{ClientOptions, ServerOptions};
/// use tokio::io::{AsyncReadExt, AsyncWriteExt};
/// # tokio::runtime::Builder::new_current_thread().enable_io().build()?.block_on(async {
/// let name = format!(r"\\.\pipe\doc-async-client-{}", std::process::id());
/// let mut server = shmpipe::tokio::NamedPipeServer::create(&ServerOptions::new(), &name)?;
/// let mut client = shmpipe::tokio::NamedPipeClient::open(&ClientOptions::new(), &name)?;
/// client.write_all(b"ping").await?;
/// let mut buf = [0u8; 4];
/// server.read_exact(&mut buf).await?;
/// assert_eq!(&buf, b"ping");
/// # Ok::<(), std::io::Error>(())
/// # })?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct NamedPipeClient {
    inner: Duplex<named::NamedPipeClient>,
}

common!(NamedPipeClient, "client", "server");

impl NamedPipeClient {
    /// Opens an instance of `name` as [`ClientOptions::open`] does (which
    /// never waits for a free instance: `PipeBusy` then, see
    /// [`wait_available`]), async (inside a tokio runtime).
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_io().build()?.block_on(async {
    /// let name = format!(r"\\.\pipe\doc-async-open-{}", std::process::id());
    /// let _server = shmpipe::tokio::NamedPipeServer::create(&shmpipe::named::ServerOptions::new(), &name)?;
    /// let client = shmpipe::tokio::NamedPipeClient::open(&shmpipe::named::ClientOptions::new(), &name)?;
    /// # drop(client);
    /// # Ok::<(), std::io::Error>(())
    /// # })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn open(options: &ClientOptions, name: &str) -> io::Result<NamedPipeClient> {
        NamedPipeClient::from_std(options.open(name)?)
    }
}

/// [`named::wait_available`], async: the blocking wait (a request to the
/// name's owner over its socket, answered when an instance listens) runs on
/// tokio's blocking thread pool, so the runtime's threads never wait.
/// Dropping the future cancels that wait at once (the blocking thread polls
/// a cancel descriptor the future's drop writes), so a timed-out wait does
/// not hold the pool's thread, nor keep a runtime from shutting down.
///
/// ```
/// use shmpipe::named::WaitTimeout;
/// # tokio::runtime::Builder::new_current_thread().enable_io().build()?.block_on(async {
/// let name = format!(r"\\.\pipe\doc-async-wait-{}", std::process::id());
/// let _server = shmpipe::tokio::NamedPipeServer::create(&shmpipe::named::ServerOptions::new(), &name)?;
/// shmpipe::tokio::wait_available(&name, WaitTimeout::Default).await?;
/// # Ok::<(), std::io::Error>(())
/// # })?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub async fn wait_available(name: &str, timeout: WaitTimeout) -> io::Result<()> {
    wait_cancellable(&ClientOptions::new(), name, timeout).await
}

/// Runs the blocking wait on tokio's blocking pool with a cancel
/// descriptor: dropping the future (a `timeout` around it, a `select!`)
/// writes the descriptor, and the blocking wait, which polls it beside the
/// owner's socket, returns at once: the pool's thread is not held for the
/// rest of the wait, and a runtime being dropped does not wait for it.
async fn wait_cancellable(
    options: &ClientOptions,
    name: &str,
    timeout: WaitTimeout,
) -> io::Result<()> {
    use rustix::event::{eventfd, EventfdFlags};
    use std::os::fd::AsFd;
    /// Writes the eventfd when the future goes away (or completes).
    struct CancelOnDrop(std::sync::Arc<std::os::fd::OwnedFd>);
    impl Drop for CancelOnDrop {
        fn drop(&mut self) {
            let _ = rustix::io::write(&*self.0, &1u64.to_ne_bytes());
        }
    }
    let cancel = std::sync::Arc::new(eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK)?);
    let _guard = CancelOnDrop(std::sync::Arc::clone(&cancel));
    let (options, name) = (options.clone(), name.to_owned());
    tokio::task::spawn_blocking(move || {
        options.wait_available_cancellable(&name, timeout, cancel.as_fd())
    })
    .await
    .map_err(io::Error::other)?
}

/// [`named::ClientOptions::call`], async (Windows' `CallNamedPipe`): opens
/// `name` for reading and writing with `options`' trust rule, waiting (on
/// tokio's blocking pool, as [`wait_available`]) once per `timeout` if
/// every instance is busy, switches to message-read mode, sends `request`,
/// reads the reply into `reply` and closes. Dropping the future while it
/// waits for the reply leaves the request in the pipe (as `transact`).
///
/// ```
/// use shmpipe::named::{ClientOptions, ServerOptions, WaitTimeout};
/// use shmpipe::{PipeType, ReadMode};
/// # tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(async {
/// let name = format!(r"\\.\pipe\doc-async-call-{}", std::process::id());
/// let mut opts = ServerOptions::new();
/// opts.pipe_type(PipeType::Message).read_mode(ReadMode::Message);
/// let server = shmpipe::tokio::NamedPipeServer::create(&opts, &name)?;
/// let answer = async {
///     server.connect().await?;
///     let mut buf = [0u8; 16];
///     let m = server.recv_msg(&mut buf).await?;
///     server.send_msg(&buf[..m.len].to_ascii_uppercase()).await
/// };
/// let mut reply = [0u8; 16];
/// let client = ClientOptions::new();
/// let call = shmpipe::tokio::call(&client, &name, b"ping", &mut reply, WaitTimeout::Default);
/// let (r, sent) = tokio::join!(call, answer);
/// sent?;
/// assert_eq!(&reply[..r?.len], b"PING");
/// # Ok::<(), std::io::Error>(())
/// # })?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub async fn call(
    options: &ClientOptions,
    name: &str,
    request: &[u8],
    reply: &mut [u8],
    timeout: WaitTimeout,
) -> io::Result<MsgRead> {
    let mut opts = options.clone();
    opts.access(named::Access::READ_WRITE);
    let client = match NamedPipeClient::open(&opts, name) {
        Err(e)
            if crate::Error::kind_of(&e) == Some(crate::ErrorKind::PipeBusy)
                && timeout != WaitTimeout::NoWait =>
        {
            wait_cancellable(&opts, name, timeout).await?;
            NamedPipeClient::open(&opts, name)?
        }
        r => r?,
    };
    client.get_ref().set_read_mode(crate::ReadMode::Message)?;
    client.transact(request, reply).await
}
