//! The [`NamedPipeClient`] end: reads, writes, modes, queries, and passing
//! the end to another process (spec 4.6 to 4.18 on a client end).

use super::err;
use super::shared::Shared;
use crate::datapath::{Conn, MsgRead};
use crate::error::ErrorKind;
use crate::info::{EndKind, PeekInfo, PipeInfo, PipeState, PipeType, ReadMode, WaitMode};
use crate::named::name::PipeName;
use crate::named::options::{
    ServerCredentials, MODE_MESSAGE_READ as MESSAGE_READ, MODE_NONBLOCKING as NONBLOCKING,
};
use crate::named::wire;
use shmpipe_engine::WaitPolicy;
use std::io;
use std::os::unix::net::UnixStream;
use std::sync::Arc;

/// A client end of a named pipe instance. [`NamedPipeClient::try_clone`]
/// makes duplicate handles of the same end (they share its modes).
///
/// ```
/// use shmpipe::named::{ClientOptions, ServerOptions};
/// use std::io::{Read, Write};
/// let name = format!(r"\\.\pipe\doc-client-{}", std::process::id());
/// let mut server = ServerOptions::new().create(&name)?;
/// let mut client = ClientOptions::new().open(&name)?;
/// client.write_all(b"ping")?;
/// let mut buf = [0u8; 4];
/// server.read_exact(&mut buf)?;
/// server.write_all(&buf.to_ascii_uppercase())?;
/// client.read_exact(&mut buf)?;
/// assert_eq!(&buf, b"PING");
/// # Ok::<(), std::io::Error>(())
/// ```
///
/// Only a server end can `connect` (Windows fails it on a client end with
/// `ERROR_INVALID_FUNCTION`, SEM-032); here the call does not compile:
///
/// ```compile_fail,E0599
/// // SEM-032: a client end has no `connect`.
/// fn connect_client(client: &shmpipe::named::NamedPipeClient) {
///     let _ = client.connect();
/// }
/// ```
#[derive(Debug)]
pub struct NamedPipeClient {
    pub(super) shared: Arc<Shared>,
}

impl NamedPipeClient {
    fn need(&self, ok: bool) -> io::Result<()> {
        if ok {
            Ok(())
        } else {
            Err(err(ErrorKind::AccessDenied))
        }
    }

    fn live_conn(&self) -> io::Result<&Conn> {
        let c = &self.shared.conn;
        // One load of a word in the segment (see `Conn::is_disconnected`).
        if c.is_disconnected() {
            return Err(err(ErrorKind::PipeNotConnected));
        }
        Ok(c)
    }

    fn modes(&self) -> u8 {
        // Only the mode bits, and never message-read on a byte pipe, whatever
        // the shared word holds.
        let m = self.shared.modes() as u8 & (NONBLOCKING | MESSAGE_READ);
        if self.shared.info.pipe_type == PipeType::Byte {
            m & !MESSAGE_READ
        } else {
            m
        }
    }

    fn nonblocking(&self) -> bool {
        self.modes() & NONBLOCKING != 0
    }

    /// Sets how blocking operations on this end wait (see
    /// [`ClientOptions::wait_policy`](super::ClientOptions::wait_policy)). Duplicates made with
    /// [`NamedPipeClient::try_clone`] share it; an operation already
    /// waiting keeps the policy it started with.
    ///
    /// ```
    /// use shmpipe::named::{ClientOptions, ServerOptions};
    /// use shmpipe::WaitPolicy;
    /// let name = format!(r"\\.\pipe\doc-client-set-policy-{}", std::process::id());
    /// let server = ServerOptions::new().create(&name)?;
    /// let mut client = ClientOptions::new().open(&name)?;
    /// client.set_wait_policy(WaitPolicy::park());
    /// let t = std::thread::spawn(move || server.send_msg(b"late").map(|_| server));
    /// assert_eq!(client.recv_msg(&mut [0u8; 4])?.len, 4); // parks until the data comes
    /// t.join().unwrap()?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set_wait_policy(&mut self, policy: WaitPolicy) {
        self.shared.conn.set_wait_policy(policy);
    }

    /// The canceller of this end's blocking operations (Windows'
    /// `CancelIoEx`): reads, writes, flushes and transacts. Duplicates made
    /// with [`NamedPipeClient::try_clone`] share it. See
    /// [`Canceller`](crate::Canceller) for what a cancelled operation
    /// leaves behind.
    ///
    /// ```
    /// use shmpipe::named::{ClientOptions, ServerOptions};
    /// use shmpipe::{Error, ErrorKind};
    /// let name = format!(r"\\.\pipe\doc-client-cancel-{}", std::process::id());
    /// let _server = ServerOptions::new().create(&name)?;
    /// let client = std::sync::Arc::new(ClientOptions::new().open(&name)?);
    /// let canceller = client.canceller();
    /// let c = client.clone();
    /// let t = std::thread::spawn(move || c.recv_msg(&mut [0u8; 8]));
    /// while canceller.pending() == 0 {
    ///     std::thread::yield_now(); // until the read waits
    /// }
    /// canceller.cancel()?;
    /// let e = t.join().unwrap().unwrap_err();
    /// assert_eq!(Error::kind_of(&e), Some(ErrorKind::OperationAborted));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn canceller(&self) -> crate::Canceller {
        crate::Canceller(self.shared.conn.canceller())
    }

    /// A duplicate handle of this end: the end stays open until both are
    /// closed, and mode changes through one are seen through the other.
    ///
    /// ```
    /// use shmpipe::named::{ClientOptions, ServerOptions};
    /// let name = format!(r"\\.\pipe\doc-client-clone-{}", std::process::id());
    /// let _server = ServerOptions::new().create(&name)?;
    /// let client = ClientOptions::new().open(&name)?;
    /// let duplicate = client.try_clone()?;
    /// client.set_nonblocking(true)?;
    /// assert!(duplicate.state()?.nonblocking); // one end, one set of modes
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn try_clone(&self) -> io::Result<NamedPipeClient> {
        Ok(NamedPipeClient {
            shared: Arc::clone(&self.shared),
        })
    }

    /// Sends a duplicate of this end to another process over a Unix socket
    /// (`SCM_RIGHTS`; Windows' `DuplicateHandle` into another process). The
    /// end stays open while any duplicate, in any process, is open; all
    /// duplicates share its read and wait modes.
    ///
    /// ```
    /// use shmpipe::named::{ClientOptions, NamedPipeClient, ServerOptions};
    /// use std::io::{Read, Write};
    /// use std::os::unix::net::UnixStream;
    /// let name = format!(r"\\.\pipe\doc-client-send-to-{}", std::process::id());
    /// let server = ServerOptions::new().create(&name)?;
    /// let client = ClientOptions::new().open(&name)?;
    /// let (a, b) = UnixStream::pair()?; // one end of `b` could be in another process
    /// client.send_to(&a)?;
    /// drop(client); // the duplicate keeps the client end open
    /// let received = NamedPipeClient::recv_from(&b)?;
    /// (&received).write_all(b"moved")?;
    /// let mut buf = [0u8; 5];
    /// (&server).read_exact(&mut buf)?;
    /// assert_eq!(&buf, b"moved");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn send_to(&self, sock: &UnixStream) -> io::Result<()> {
        crate::handoff::send_end(
            sock,
            self.shared.conn.end().fd(),
            crate::handoff::TAG_NAMED_CLIENT,
            &self.shared.describe(),
        )
    }

    /// Receives a client end sent with [`NamedPipeClient::send_to`]. Anything
    /// else on the socket (an anonymous end, a malformed description, a
    /// descriptor that is no client end) is an error, and what arrived is
    /// closed.
    ///
    /// ```
    /// use shmpipe::named::NamedPipeClient;
    /// use shmpipe::{Error, ErrorKind};
    /// use std::os::unix::net::UnixStream;
    /// let (a, b) = UnixStream::pair()?;
    /// let (reader, _writer) = shmpipe::pipe()?;
    /// reader.send_to(&a)?; // an anonymous end, not a named client end
    /// let e = NamedPipeClient::recv_from(&b).unwrap_err();
    /// assert_eq!(Error::kind_of(&e), Some(ErrorKind::AccessDenied));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn recv_from(sock: &UnixStream) -> io::Result<NamedPipeClient> {
        let (tag, fd, description) = crate::handoff::recv_end(sock)?;
        if tag != crate::handoff::TAG_NAMED_CLIENT {
            return Err(crate::handoff::wrong_tag());
        }
        let (info, access, opener) = Shared::parse(&description)?;
        let shared = Shared::attach(fd, None, info, access, opener, None)
            .map_err(crate::handoff::attach_error)?;
        Ok(NamedPipeClient {
            shared: Arc::new(shared),
        })
    }

    /// Writes one write (a message on a message pipe); see
    /// [`NamedPipeServer::send_msg`](crate::named::NamedPipeServer::send_msg).
    ///
    /// ```
    /// use shmpipe::named::{ClientOptions, ServerOptions};
    /// use shmpipe::{PipeType, ReadMode};
    /// let name = format!(r"\\.\pipe\doc-client-send-{}", std::process::id());
    /// let server = ServerOptions::new()
    ///     .pipe_type(PipeType::Message)
    ///     .read_mode(ReadMode::Message)
    ///     .create(&name)?;
    /// let client = ClientOptions::new().open(&name)?;
    /// assert_eq!(client.send_msg(b"one")?, 3);
    /// assert_eq!(client.send_msg(b"two")?, 3);
    /// assert_eq!(server.recv_msg(&mut [0u8; 16])?.len, 3); // message by message
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn send_msg(&self, data: &[u8]) -> io::Result<usize> {
        self.need(self.shared.access.write_data)?;
        self.live_conn()?.write(data, self.nonblocking())
    }

    /// Reads one message (message-read mode) or bytes (byte-read mode).
    ///
    /// ```
    /// use shmpipe::named::{ClientOptions, ServerOptions};
    /// use shmpipe::{PipeType, ReadMode};
    /// let name = format!(r"\\.\pipe\doc-client-recv-{}", std::process::id());
    /// let server = ServerOptions::new().pipe_type(PipeType::Message).create(&name)?;
    /// let client = ClientOptions::new().open(&name)?;
    /// client.set_read_mode(ReadMode::Message)?;
    /// server.send_msg(b"hello")?;
    /// let mut buf = [0u8; 3];
    /// let first = client.recv_msg(&mut buf)?;
    /// assert_eq!((first.len, first.complete), (3, false)); // Windows' MoreData
    /// let rest = client.recv_msg(&mut buf)?;
    /// assert_eq!((&buf[..rest.len], rest.complete), (&b"lo"[..], true));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn recv_msg(&self, buf: &mut [u8]) -> io::Result<MsgRead> {
        self.need(self.shared.access.read_data)?;
        let conn = self.live_conn()?;
        if self.modes() & MESSAGE_READ != 0 {
            conn.read_msg(buf, self.nonblocking())
        } else {
            conn.read_bytes(buf, self.nonblocking()).map(|len| MsgRead {
                len,
                complete: true,
            })
        }
    }

    /// Writes one write of `len` bytes in place (zero copy; a message on a
    /// message pipe); see
    /// [`NamedPipeServer::send_msg_with`](crate::named::NamedPipeServer::send_msg_with).
    ///
    /// ```
    /// use shmpipe::named::{ClientOptions, ServerOptions};
    /// use shmpipe::{PipeType, ReadMode};
    /// let name = format!(r"\\.\pipe\doc-client-send-with-{}", std::process::id());
    /// let server = ServerOptions::new()
    ///     .pipe_type(PipeType::Message)
    ///     .read_mode(ReadMode::Message)
    ///     .create(&name)?;
    /// let client = ClientOptions::new().open(&name)?;
    /// client.send_msg_with(3, |buf| buf.copy_from_slice(b"one"))?;
    /// let mut buf = [0u8; 8];
    /// let m = server.recv_msg(&mut buf)?;
    /// assert_eq!((&buf[..m.len], m.complete), (&b"one"[..], true));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn send_msg_with<R>(&self, len: usize, fill: impl FnOnce(&mut [u8]) -> R) -> io::Result<R> {
        self.need(self.shared.access.write_data)?;
        self.live_conn()?.write_with(len, self.nonblocking(), fill)
    }

    /// Reads one message (message-read mode) or the bytes of one write
    /// (byte-read mode) in place (zero copy); see
    /// [`NamedPipeServer::recv_msg_with`](crate::named::NamedPipeServer::recv_msg_with).
    ///
    /// ```
    /// use shmpipe::named::{ClientOptions, ServerOptions};
    /// use shmpipe::{PipeType, ReadMode};
    /// let name = format!(r"\\.\pipe\doc-client-recv-with-{}", std::process::id());
    /// let server = ServerOptions::new().pipe_type(PipeType::Message).create(&name)?;
    /// let client = ClientOptions::new().open(&name)?;
    /// client.set_read_mode(ReadMode::Message)?;
    /// server.send_msg(b"hello")?;
    /// let sum = client.recv_msg_with(|msg| msg.iter().map(|&b| u32::from(b)).sum::<u32>())?;
    /// assert_eq!(sum, b"hello".iter().map(|&b| u32::from(b)).sum());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn recv_msg_with<R>(&self, look: impl FnOnce(&[u8]) -> R) -> io::Result<R> {
        self.need(self.shared.access.read_data)?;
        let conn = self.live_conn()?;
        if self.modes() & MESSAGE_READ != 0 {
            conn.read_msg_with(self.nonblocking(), look)
        } else {
            conn.read_whole_with(self.nonblocking(), look)
        }
    }

    /// Reads bytes in place (zero copy), whatever the read mode; see
    /// [`NamedPipeServer::read_with`](crate::named::NamedPipeServer::read_with).
    ///
    /// ```
    /// use shmpipe::named::{ClientOptions, ServerOptions};
    /// let name = format!(r"\\.\pipe\doc-client-read-with-{}", std::process::id());
    /// let server = ServerOptions::new().create(&name)?;
    /// let client = ClientOptions::new().open(&name)?;
    /// server.send_msg(b"abc")?;
    /// let mut copy = Vec::new();
    /// assert_eq!(client.read_with(|bytes| { copy.extend_from_slice(bytes); bytes.len() })?, 3);
    /// assert_eq!(copy, b"abc");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn read_with(&self, look: impl FnOnce(&[u8]) -> usize) -> io::Result<usize> {
        self.need(self.shared.access.read_data)?;
        self.live_conn()?.read_with(self.nonblocking(), look)
    }

    /// Peeks (spec 4.8).
    ///
    /// ```
    /// use shmpipe::named::{ClientOptions, ServerOptions};
    /// let name = format!(r"\\.\pipe\doc-client-peek-{}", std::process::id());
    /// let server = ServerOptions::new().create(&name)?;
    /// let client = ClientOptions::new().open(&name)?;
    /// server.send_msg(b"abc")?;
    /// let mut buf = [0u8; 8];
    /// let p = client.peek(Some(&mut buf))?;
    /// assert_eq!((p.copied, p.total_available), (3, 3));
    /// assert_eq!(client.recv_msg(&mut buf)?.len, 3); // still there
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn peek(&self, buf: Option<&mut [u8]>) -> io::Result<PeekInfo> {
        self.need(self.shared.access.read_data)?;
        self.live_conn()?.peek(buf)
    }

    /// Waits until the server read everything written (spec 4.11). `Ok`
    /// always means "read": if the server end is gone (closed or killed,
    /// before the call or while it waits) with bytes unread, it fails with
    /// `BrokenPipe`, and with `PipeNotConnected` after a disconnect (Windows
    /// would let a flush after the close succeed; see
    /// `docs/guide/named-pipes.md`).
    ///
    /// ```
    /// use shmpipe::named::{ClientOptions, ServerOptions};
    /// let name = format!(r"\\.\pipe\doc-client-flush-{}", std::process::id());
    /// let server = ServerOptions::new().create(&name)?;
    /// let client = ClientOptions::new().open(&name)?;
    /// client.send_msg(b"data")?;
    /// let t = std::thread::spawn(move || -> std::io::Result<_> {
    ///     let read = server.recv_msg(&mut [0u8; 4])?;
    ///     Ok((read.len, server))
    /// });
    /// client.flush_buffers()?; // returns once the server has read it
    /// let (len, _server) = t.join().unwrap()?;
    /// assert_eq!(len, 4);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn flush_buffers(&self) -> io::Result<()> {
        self.need(self.shared.access.write_data)?;
        let conn = self.live_conn()?;
        conn.flush()?;
        // A remote end: the bridge took it all; now the remote reader.
        #[cfg(feature = "remote")]
        if let Some(link) = self.shared.remote.get() {
            return link.flush(conn.consumed_by_peer());
        }
        Ok(())
    }

    /// Sends `request` as one message and waits for the next message
    /// (spec 4.9); needs message type and message-read mode.
    ///
    /// ```
    /// use shmpipe::named::{ClientOptions, ServerOptions};
    /// use shmpipe::{PipeType, ReadMode};
    /// let name = format!(r"\\.\pipe\doc-client-transact-{}", std::process::id());
    /// let server = ServerOptions::new()
    ///     .pipe_type(PipeType::Message)
    ///     .read_mode(ReadMode::Message)
    ///     .create(&name)?;
    /// let client = ClientOptions::new().open(&name)?;
    /// client.set_read_mode(ReadMode::Message)?;
    /// let t = std::thread::spawn(move || -> std::io::Result<_> {
    ///     let mut buf = [0u8; 16];
    ///     let request = server.recv_msg(&mut buf)?;
    ///     server.send_msg(&buf[..request.len].repeat(2))?;
    ///     Ok(server)
    /// });
    /// let mut reply = [0u8; 16];
    /// let r = client.transact(b"ab", &mut reply)?;
    /// assert_eq!(&reply[..r.len], b"abab");
    /// t.join().unwrap()?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn transact(&self, request: &[u8], reply: &mut [u8]) -> io::Result<MsgRead> {
        let a = self.shared.access;
        self.need(a.read_data && a.write_data)?;
        if self.shared.info.pipe_type != PipeType::Message || self.modes() & MESSAGE_READ == 0 {
            return Err(err(ErrorKind::BadPipe));
        }
        self.live_conn()?.transact(request, reply)
    }

    /// `get_info` (spec 4.14): sizes in the server's perspective.
    ///
    /// ```
    /// use shmpipe::named::{ClientOptions, ServerOptions};
    /// use shmpipe::EndKind;
    /// let name = format!(r"\\.\pipe\doc-client-info-{}", std::process::id());
    /// let _server = ServerOptions::new().quotas(1000, 2000).create(&name)?;
    /// let info = ClientOptions::new().open(&name)?.info()?;
    /// assert_eq!(info.end, EndKind::Client);
    /// assert_eq!((info.out_size, info.in_size), (1000, 2000)); // server→client, client→server
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn info(&self) -> io::Result<PipeInfo> {
        self.need(self.shared.access.read_attributes)?;
        let i = &self.shared.info;
        Ok(PipeInfo {
            end: EndKind::Client,
            pipe_type: i.pipe_type,
            out_size: i.out_size,
            in_size: i.in_size,
            max_instances: i.max_instances,
        })
    }

    /// `get_state` (spec 4.15). The instance count is asked from the server
    /// (the last known count, 1, if the server is gone).
    ///
    /// ```
    /// use shmpipe::named::{ClientOptions, ServerOptions};
    /// let name = format!(r"\\.\pipe\doc-client-state-{}", std::process::id());
    /// let _first = ServerOptions::new().create(&name)?;
    /// let _second = ServerOptions::new().create(&name)?;
    /// let state = ClientOptions::new().open(&name)?.state()?;
    /// assert_eq!(state.current_instances, 2);
    /// assert!(!state.nonblocking && !state.message_read);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn state(&self) -> io::Result<PipeState> {
        self.need(self.shared.access.read_attributes)?;
        let m = self.modes();
        Ok(PipeState {
            nonblocking: m & NONBLOCKING != 0,
            message_read: m & MESSAGE_READ != 0,
            current_instances: instance_count(&self.shared.info.name).unwrap_or(1),
        })
    }

    /// `set_state` (spec 4.16).
    ///
    /// ```
    /// use shmpipe::named::{ClientOptions, ServerOptions};
    /// use shmpipe::{Error, ErrorKind, ReadMode, WaitMode};
    /// let name = format!(r"\\.\pipe\doc-client-set-state-{}", std::process::id());
    /// let _server = ServerOptions::new().create(&name)?; // a byte pipe
    /// let client = ClientOptions::new().open(&name)?;
    /// client.set_state(None, Some(WaitMode::Nonblocking))?;
    /// assert!(client.state()?.nonblocking);
    /// let e = client.set_state(Some(ReadMode::Message), None).unwrap_err();
    /// assert_eq!(Error::kind_of(&e), Some(ErrorKind::InvalidParameter));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set_state(
        &self,
        read_mode: Option<ReadMode>,
        wait_mode: Option<WaitMode>,
    ) -> io::Result<()> {
        self.need(self.shared.access.write_attributes)?;
        if read_mode == Some(ReadMode::Message) && self.shared.info.pipe_type == PipeType::Byte {
            return Err(err(ErrorKind::InvalidParameter));
        }
        match read_mode {
            Some(ReadMode::Message) => self.shared.set_modes(u64::from(MESSAGE_READ)),
            Some(ReadMode::Byte) => self.shared.clear_modes(u64::from(MESSAGE_READ)),
            None => 0,
        };
        match wait_mode {
            Some(WaitMode::Nonblocking) => self.shared.set_modes(u64::from(NONBLOCKING)),
            Some(WaitMode::Blocking) => self.shared.clear_modes(u64::from(NONBLOCKING)),
            None => 0,
        };
        Ok(())
    }

    /// Shorthand for `set_state(Some(mode), None)`.
    ///
    /// ```
    /// use shmpipe::named::{ClientOptions, ServerOptions};
    /// use shmpipe::{PipeType, ReadMode};
    /// let name = format!(r"\\.\pipe\doc-client-read-mode-{}", std::process::id());
    /// let _server = ServerOptions::new().pipe_type(PipeType::Message).create(&name)?;
    /// let client = ClientOptions::new().open(&name)?;
    /// client.set_read_mode(ReadMode::Message)?;
    /// assert!(client.state()?.message_read);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set_read_mode(&self, mode: ReadMode) -> io::Result<()> {
        self.set_state(Some(mode), None)
    }

    /// Shorthand for `set_state(None, Some(..))`.
    ///
    /// ```
    /// use shmpipe::named::{ClientOptions, ServerOptions};
    /// use shmpipe::{Error, ErrorKind};
    /// let name = format!(r"\\.\pipe\doc-client-nonblocking-{}", std::process::id());
    /// let _server = ServerOptions::new().create(&name)?;
    /// let client = ClientOptions::new().open(&name)?;
    /// client.set_nonblocking(true)?;
    /// let e = client.recv_msg(&mut [0u8; 8]).unwrap_err(); // nothing queued
    /// assert_eq!(e.kind(), std::io::ErrorKind::WouldBlock);
    /// assert_eq!(Error::kind_of(&e), Some(ErrorKind::NoData));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set_nonblocking(&self, yes: bool) -> io::Result<()> {
        self.set_state(None, Some(WaitMode::from_nonblocking(yes)))
    }

    /// The pid of the process that opened this end (spec 4.17);
    /// `PipeNotConnected` once the server disconnected it.
    ///
    /// ```
    /// use shmpipe::named::{ClientOptions, ServerOptions};
    /// use shmpipe::{Error, ErrorKind};
    /// let name = format!(r"\\.\pipe\doc-client-pid-{}", std::process::id());
    /// let server = ServerOptions::new().create(&name)?;
    /// let client = ClientOptions::new().open(&name)?;
    /// assert_eq!(client.client_process_id()?, std::process::id());
    /// server.disconnect()?;
    /// let e = client.client_process_id().unwrap_err();
    /// assert_eq!(Error::kind_of(&e), Some(ErrorKind::PipeNotConnected));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn client_process_id(&self) -> io::Result<u32> {
        self.live_conn()?;
        Ok(self.shared.opener)
    }

    /// The pid of the process that created the instance, as the kernel
    /// reported it when this end connected, translated into this process's
    /// pid namespace (0 when the server lives where this one cannot see).
    ///
    /// ```
    /// use shmpipe::named::{ClientOptions, ServerOptions};
    /// let name = format!(r"\\.\pipe\doc-client-server-pid-{}", std::process::id());
    /// let _server = ServerOptions::new().create(&name)?; // created by this process
    /// let client = ClientOptions::new().open(&name)?;
    /// assert_eq!(client.server_process_id()?, std::process::id());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn server_process_id(&self) -> io::Result<u32> {
        self.live_conn()?;
        Ok(self.shared.info.server.pid)
    }

    /// Who serves this end: the pid, effective uid and gid of the process
    /// that sent it its segment, as the kernel reported them with that very
    /// packet (`SCM_CREDENTIALS`). When the name's owner forwarded the open
    /// to another process's instance, that process, not the owner. `open`
    /// checked them against [`ClientOptions::trust_server_uid`](super::ClientOptions::trust_server_uid)'s rule
    /// before returning. An end received with
    /// [`NamedPipeClient::recv_from`] reports what the sending process
    /// knew (it vouches for the end it sent).
    ///
    /// ```
    /// use shmpipe::named::{ClientOptions, ServerOptions};
    /// let name = format!(r"\\.\pipe\doc-client-server-creds-{}", std::process::id());
    /// let _server = ServerOptions::new().create(&name)?;
    /// let client = ClientOptions::new().open(&name)?;
    /// let who = client.server_credentials()?;
    /// assert_eq!(who.pid, std::process::id());
    /// use std::os::unix::fs::MetadataExt;
    /// assert_eq!(who.uid, std::fs::metadata("/proc/self")?.uid());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn server_credentials(&self) -> io::Result<ServerCredentials> {
        Ok(self.shared.info.server)
    }
}

byte_io!(NamedPipeClient);

fn instance_count(full: &str) -> io::Result<u32> {
    wire::ask_instance_count(&PipeName::for_client(full)?)
}
