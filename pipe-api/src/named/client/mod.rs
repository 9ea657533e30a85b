//! The client side: `open`, `wait_available`, `call` (spec 4.4, 4.5, 4.10).

use super::name::PipeName;
use super::options::{
    Access, Direction, ServerCredentials, WaitTimeout, MODE_MESSAGE_READ as MESSAGE_READ,
    MODE_NONBLOCKING as NONBLOCKING,
};
use super::trust::{self, Role, TrustRule};
use super::wire;
use crate::conn::{Conn, MsgRead, RING_IN, RING_OUT, ROLE_CLIENT, ROLE_SERVER};
use crate::error::{Error, ErrorKind};
use crate::info::{EndKind, PeekInfo, PipeInfo, PipeState, PipeType, ReadMode, WaitMode};
use shmpipe_engine::channel::End;
use shmpipe_engine::layout::{HANGUP_READER, HANGUP_WRITER};
use shmpipe_engine::WaitPolicy;
use std::io;
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How many times `open` looks again at a name whose server hung up on it
/// (2 ms apart).
const OPEN_RETRIES: u32 = 50;

fn err(kind: ErrorKind) -> io::Error {
    Error::io(kind)
}

/// Options for opening a client end (spec 4.4), in the manner of tokio's
/// `ClientOptions`.
///
/// ```
/// use shmpipe::named::{ClientOptions, ServerOptions};
/// use std::io::{Read, Write};
/// let name = format!(r"\\.\pipe\doc-client-{}", std::process::id());
/// let server = ServerOptions::new().create(&name)?;
/// let mut client = ClientOptions::new().open(&name)?;
/// client.write_all(b"hi")?;
/// let mut buf = [0u8; 2];
/// (&server).read_exact(&mut buf)?;
/// assert_eq!(&buf, b"hi");
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct ClientOptions {
    access: Access,
    policy: Option<WaitPolicy>,
    trust: TrustRule,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self::new()
    }
}

impl ClientOptions {
    /// Read and write access.
    ///
    /// ```
    /// use shmpipe::named::{ClientOptions, ServerOptions};
    /// let name = format!(r"\\.\pipe\doc-client-new-{}", std::process::id());
    /// let server = ServerOptions::new().create(&name)?;
    /// let client = ClientOptions::new().open(&name)?;
    /// client.send_msg(b"up")?;
    /// server.send_msg(b"down")?;
    /// assert_eq!(client.recv_msg(&mut [0u8; 8])?.len, 4); // both ways
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn new() -> Self {
        ClientOptions {
            access: Access::READ_WRITE,
            policy: None,
            trust: TrustRule::default(),
        }
    }

    /// Request read access (read-data + read-attributes).
    ///
    /// ```
    /// use shmpipe::named::{ClientOptions, ServerOptions};
    /// use shmpipe::{Error, ErrorKind};
    /// let name = format!(r"\\.\pipe\doc-client-read-{}", std::process::id());
    /// let _server = ServerOptions::new().create(&name)?;
    /// let client = ClientOptions::new().read(false).open(&name)?;
    /// let e = client.peek(None).unwrap_err();
    /// assert_eq!(Error::kind_of(&e), Some(ErrorKind::AccessDenied));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn read(&mut self, yes: bool) -> &mut Self {
        self.access.read_data = yes;
        self.access.read_attributes = yes;
        self
    }

    /// Request write access (write-data + write-attributes).
    ///
    /// ```
    /// use shmpipe::named::{ClientOptions, Direction, ServerOptions};
    /// let name = format!(r"\\.\pipe\doc-client-write-{}", std::process::id());
    /// let server = ServerOptions::new().access(Direction::Outbound).create(&name)?;
    /// let client = ClientOptions::new().write(false).open(&name)?; // read-only fits outbound
    /// server.send_msg(b"news")?;
    /// assert_eq!(client.recv_msg(&mut [0u8; 8])?.len, 4);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn write(&mut self, yes: bool) -> &mut Self {
        self.access.write_data = yes;
        self.access.write_attributes = yes;
        self
    }

    /// Request exactly these rights.
    ///
    /// ```
    /// use shmpipe::named::{Access, ClientOptions, ServerOptions};
    /// use shmpipe::{Error, ErrorKind};
    /// let name = format!(r"\\.\pipe\doc-client-access-{}", std::process::id());
    /// let _server = ServerOptions::new().create(&name)?;
    /// let client = ClientOptions::new().access(Access::WRITE).open(&name)?;
    /// let e = client.recv_msg(&mut [0u8; 8]).unwrap_err();
    /// assert_eq!(Error::kind_of(&e), Some(ErrorKind::AccessDenied)); // no read-data
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn access(&mut self, access: Access) -> &mut Self {
        self.access = access;
        self
    }

    /// How blocking operations on the client end wait.
    ///
    /// ```
    /// use shmpipe::named::{ClientOptions, ServerOptions};
    /// use shmpipe::WaitPolicy;
    /// let name = format!(r"\\.\pipe\doc-client-policy-{}", std::process::id());
    /// let server = ServerOptions::new().create(&name)?;
    /// let client = ClientOptions::new().wait_policy(WaitPolicy::park()).open(&name)?;
    /// let t = std::thread::spawn(move || server.send_msg(b"late").map(|_| server));
    /// assert_eq!(client.recv_msg(&mut [0u8; 4])?.len, 4); // parks until the data comes
    /// t.join().unwrap()?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn wait_policy(&mut self, p: WaitPolicy) -> &mut Self {
        self.policy = Some(p);
        self
    }

    /// Also accept a server running as effective uid `uid` (may be called
    /// several times).
    ///
    /// By default `open` accepts only a server running as root or as this
    /// process's effective uid, judged by the kernel: first the process
    /// that owns the name (`SO_PEERCRED` of the connection to its socket),
    /// before the request is sent, then the process that sent the segment
    /// (another one when the owner forwarded the open to an instance of
    /// another process; see [`NamedPipeClient::server_credentials`]). Any
    /// other server gives `AccessDenied`, whose message names its uid, and
    /// the client sends it no data. On Windows any process may create a name first and every
    /// client talks to it (pipe squatting); this default is a deliberate
    /// difference. A service running as another user is accepted with this
    /// call, [`ClientOptions::trust_server_gid`] or
    /// [`ClientOptions::trust_any_server`].
    ///
    /// ```
    /// use shmpipe::named::{ClientOptions, ServerOptions};
    /// let name = format!(r"\\.\pipe\doc-client-trust-uid-{}", std::process::id());
    /// let _server = ServerOptions::new().create(&name)?;
    /// // This process's own uid is trusted anyway; a service user would be added so.
    /// let client = ClientOptions::new().trust_server_uid(65534).open(&name)?;
    /// assert_eq!(client.server_credentials()?.pid, std::process::id());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn trust_server_uid(&mut self, uid: u32) -> &mut Self {
        self.trust.uids.push(uid);
        self
    }

    /// Also accept a server whose effective (primary) gid is `gid` (may be
    /// called several times); see [`ClientOptions::trust_server_uid`].
    ///
    /// ```
    /// use shmpipe::named::{ClientOptions, ServerOptions};
    /// let name = format!(r"\\.\pipe\doc-client-trust-gid-{}", std::process::id());
    /// let _server = ServerOptions::new().create(&name)?;
    /// let _client = ClientOptions::new().trust_server_gid(100).open(&name)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn trust_server_gid(&mut self, gid: u32) -> &mut Self {
        self.trust.gids.push(gid);
        self
    }

    /// Accept a server running as anyone (Windows' behaviour), or, with
    /// `false`, only the default ones and those trusted by uid or gid. See
    /// [`ClientOptions::trust_server_uid`] for why this is not the default.
    /// [`NamedPipeClient::server_credentials`] still tells who it is.
    ///
    /// ```
    /// use shmpipe::named::{ClientOptions, ServerOptions};
    /// let name = format!(r"\\.\pipe\doc-client-trust-any-{}", std::process::id());
    /// let _server = ServerOptions::new().create(&name)?;
    /// let client = ClientOptions::new().trust_any_server(true).open(&name)?;
    /// assert_eq!(client.server_credentials()?.pid, std::process::id());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn trust_any_server(&mut self, yes: bool) -> &mut Self {
        self.trust.any = yes;
        self
    }

    /// Opens a client end of `name` (`\\.\pipe\<name>`). Errors in check
    /// order: `InvalidName`/`BadNetPath`, `FileNotFound` (no instance),
    /// `AccessDenied` (security, or access incompatible with the
    /// direction), `PipeBusy` (no instance is Listening), and
    /// `AccessDenied` naming the server's uid when it runs as someone these
    /// options do not trust (see [`ClientOptions::trust_server_uid`]).
    ///
    /// ```
    /// use shmpipe::named::{ClientOptions, ServerOptions};
    /// use shmpipe::{Error, ErrorKind};
    /// let name = format!(r"\\.\pipe\doc-client-open-{}", std::process::id());
    /// let e = ClientOptions::new().open(&name).unwrap_err();
    /// assert_eq!(Error::kind_of(&e), Some(ErrorKind::FileNotFound));
    /// let _server = ServerOptions::new().create(&name)?;
    /// let _client = ClientOptions::new().open(&name)?;
    /// let e = ClientOptions::new().open(&name).unwrap_err(); // its only instance is taken
    /// assert_eq!(Error::kind_of(&e), Some(ErrorKind::PipeBusy));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn open(&self, name: &str) -> io::Result<NamedPipeClient> {
        let name = PipeName::for_client(name)?;
        // A handle opened with no rights can still query (spec 4.4).
        let mut access = self.access;
        if access == Access::NONE {
            access.read_attributes = true;
        }
        let mut buf = [0u8; wire::MAX_PACKET];
        // --- begin: retry while the name changes hands (server.rs, link.rs) ---
        // A server that hangs up without answering was serving the name a
        // moment ago: it died, and another process with instances of the
        // name may be taking it over. Look again, briefly.
        let mut retries = 0;
        let (sock, n, fd, sender) = loop {
            let again = retries > 0 && retries < OPEN_RETRIES;
            let Some(sock) = wire::connect(&name.socket_name())? else {
                if again {
                    retries += 1;
                    std::thread::sleep(Duration::from_millis(2));
                    continue;
                }
                return Err(err(ErrorKind::FileNotFound));
            };
            // The process that owns the name picks our instance: one we do
            // not trust gets nothing, not even the request (and no
            // instance of its is spent on us).
            match wire::peer_cred(&sock) {
                Ok(owner) => self
                    .trust
                    .check(Role::Server, owner.pid, owner.uid, owner.gid)?,
                Err(_) => return Err(err(ErrorKind::FileNotFound)),
            }
            // Before the request: every reply then comes with the kernel's
            // account of who sent it.
            trust::want_credentials(sock.as_fd())?;
            let mut req = vec![wire::REQ_OPEN, access.to_u8()];
            req.extend_from_slice(name.key().as_bytes());
            wire::send(sock.as_fd(), &req, None).map_err(|_| err(ErrorKind::FileNotFound))?;
            match trust::recv_with_sender(&sock, &mut buf, Some(Duration::from_secs(10))) {
                Ok(Some(p)) => break (sock, p.len, p.fd, p.sender),
                Ok(None) if retries < OPEN_RETRIES => {}
                Err(e) if e.raw_os_error() == Some(libc::ECONNRESET) && retries < OPEN_RETRIES => {}
                // Hung up on, again and again: whoever had the name is
                // gone, and nobody took it over.
                Ok(None) => return Err(err(ErrorKind::FileNotFound)),
                Err(e) if e.raw_os_error() == Some(libc::ECONNRESET) => {
                    return Err(err(ErrorKind::FileNotFound))
                }
                Err(e) => return Err(e),
            }
            retries += 1;
            std::thread::sleep(Duration::from_millis(2));
        };
        // --- end: retry while the name changes hands ---
        let p = &buf[..n];
        match (p.first(), fd) {
            (Some(&wire::RESP_OPENED), Some(fd)) => {
                let opened = wire::Opened::decode(p)?;
                // Who sent the segment: the owner, or the member it
                // forwarded us to (not our socket's peer, then). Judged
                // before anything else: an untrusted server gets nothing
                // from us but the close of its segment.
                let server = sender.ok_or_else(wire::bad_packet)?;
                self.trust
                    .check(Role::Server, server.pid, server.uid, server.gid)?;
                let info = Instance {
                    name: name.full(),
                    direction: opened.direction,
                    pipe_type: opened.pipe_type,
                    max_instances: opened.max_instances,
                    out_size: opened.out_size,
                    in_size: opened.in_size,
                    // The kernel's view of the server's pid, translated into
                    // our pid namespace (0 if the server is outside it); the
                    // pid in the reply is only the server's own view.
                    server: ServerCredentials {
                        pid: server.pid,
                        uid: server.uid,
                        gid: server.gid,
                    },
                };
                // Attached while the server finishes (the DONE below is
                // usually there by the time this is done).
                let shared = Shared::attach(fd, info, access, std::process::id(), self.policy)?;
                // Do not return before the server has let go of its copy of
                // our end's descriptor, so that our end closes when we close
                // it: whatever follows our return (a close included) must
                // be what the server sees.
                // From the process that sent the segment, not from another
                // that holds the same connection (a forwarding owner).
                let mut done = [0u8; 8];
                match trust::recv_with_sender(&sock, &mut done, Some(Duration::from_secs(10)))? {
                    Some(trust::Packet {
                        len: 1,
                        fd: None,
                        sender: Some(s),
                    }) if done[0] == wire::RESP_DONE && s == server => {}
                    _ => return Err(wire::bad_packet()),
                }
                Ok(NamedPipeClient {
                    shared: Arc::new(shared),
                })
            }
            (Some(&wire::RESP_ERROR), _) => Err(wire::decode_error(p)),
            _ => Err(wire::bad_packet()),
        }
    }
}

#[derive(Debug)]
struct Instance {
    name: String,
    direction: Direction,
    pipe_type: PipeType,
    max_instances: u32,
    out_size: u32,
    in_size: u32,
    server: ServerCredentials,
}

#[derive(Debug)]
struct Shared {
    conn: Conn,
    info: Instance,
    access: Access,
    opener: u32,
}

/// The user word (of the ring [`Conn::user_words`] picks, the same for every
/// duplicate of an end) holding the client end's modes: in the segment, so
/// duplicates in other processes share them as Windows' duplicates share one
/// file object. The server never writes it; a hostile one could only flip
/// the client's own modes, which are validated on every read.
const W_CLIENT_MODES: usize = 4;

impl Shared {
    /// The client end behind `fd` (received from the server, or from
    /// another process holding the end).
    fn attach(
        fd: std::os::fd::OwnedFd,
        info: Instance,
        access: Access,
        opener: u32,
        policy: Option<WaitPolicy>,
    ) -> io::Result<Shared> {
        let end = End::attach(
            fd,
            ROLE_CLIENT,
            &[(RING_OUT, HANGUP_READER), (RING_IN, HANGUP_WRITER)],
        )
        .map_err(super::conn_engine_error)?;
        let conn = Conn::new(
            end,
            (access.write_data && info.direction != Direction::Outbound).then_some(RING_IN),
            (access.read_data && info.direction != Direction::Inbound).then_some(RING_OUT),
            ROLE_SERVER,
            info.pipe_type,
            info.in_size,
            policy,
        )?;
        Ok(Shared {
            conn,
            info,
            access,
            opener,
        })
    }

    fn modes_word(&self) -> &AtomicU64 {
        &self.conn.user_words()[W_CLIENT_MODES]
    }

    /// The description that travels with the end's descriptor:
    /// `version, pipe type, direction, access` (u8 each), `max instances,
    /// out size, in size, server pid, opener pid, server uid, server gid`
    /// (u32 LE each), `name` (UTF-8).
    fn describe(&self) -> Vec<u8> {
        let i = &self.info;
        let mut d = vec![
            DESCRIPTION_VERSION,
            u8::from(i.pipe_type == PipeType::Message),
            i.direction.to_u8(),
            self.access.to_u8(),
        ];
        for v in [
            i.max_instances,
            i.out_size,
            i.in_size,
            i.server.pid,
            self.opener,
            i.server.uid,
            i.server.gid,
        ] {
            d.extend_from_slice(&v.to_le_bytes());
        }
        d.extend_from_slice(i.name.as_bytes());
        d
    }

    /// Parses [`Shared::describe`]'s output, which came from another
    /// process: every field is checked.
    fn parse(d: &[u8]) -> io::Result<(Instance, Access, u32)> {
        let bad = || -> io::Error {
            Error::with_source(
                ErrorKind::InvalidHandle,
                "malformed named-pipe end description",
            )
            .into()
        };
        let [version, kind, dir, access, ..] = *d else {
            return Err(bad());
        };
        if version != DESCRIPTION_VERSION || d.len() < NAME_AT {
            return Err(bad());
        }
        let pipe_type = match kind {
            0 => PipeType::Byte,
            1 => PipeType::Message,
            _ => return Err(bad()),
        };
        let direction = Direction::from_u8(dir).ok_or_else(bad)?;
        let access = Access::from_u8(access).ok_or_else(bad)?;
        let word = |k: usize| wire::u32_at(d, 4 + 4 * k).map_err(|_| bad());
        let name = std::str::from_utf8(&d[NAME_AT..]).map_err(|_| bad())?;
        // The name must be one a client could have opened.
        let name = PipeName::for_client(name).map_err(|_| bad())?.full();
        let info = Instance {
            name,
            direction,
            pipe_type,
            max_instances: word(0)?,
            out_size: word(1)?,
            in_size: word(2)?,
            server: ServerCredentials {
                pid: word(3)?,
                uid: word(5)?,
                gid: word(6)?,
            },
        };
        Ok((info, access, word(4)?))
    }
}

/// 2: the server's uid and gid came.
const DESCRIPTION_VERSION: u8 = 2;
/// Where the name starts in a description.
const NAME_AT: usize = 4 + 7 * 4;

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
    shared: Arc<Shared>,
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
        let m = self.shared.modes_word().load(Relaxed) as u8 & (NONBLOCKING | MESSAGE_READ);
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
    /// [`ClientOptions::wait_policy`]). Duplicates made with
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
        let shared =
            Shared::attach(fd, info, access, opener, None).map_err(crate::handoff::attach_error)?;
        Ok(NamedPipeClient {
            shared: Arc::new(shared),
        })
    }

    /// Writes one write (a message on a message pipe); see
    /// [`NamedPipeServer::send_msg`](super::NamedPipeServer::send_msg).
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
        self.live_conn()?.flush()
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
        let word = self.shared.modes_word();
        match read_mode {
            Some(ReadMode::Message) => word.fetch_or(u64::from(MESSAGE_READ), Relaxed),
            Some(ReadMode::Byte) => word.fetch_and(!u64::from(MESSAGE_READ), Relaxed),
            None => 0,
        };
        match wait_mode {
            Some(WaitMode::Nonblocking) => word.fetch_or(u64::from(NONBLOCKING), Relaxed),
            Some(WaitMode::Blocking) => word.fetch_and(!u64::from(NONBLOCKING), Relaxed),
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
    /// checked them against [`ClientOptions::trust_server_uid`]'s rule
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

impl io::Read for &NamedPipeClient {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        match self.recv_msg(buf) {
            Ok(m) => Ok(m.len),
            Err(e) if Error::kind_of(&e) == Some(ErrorKind::BrokenPipe) => Ok(0),
            Err(e) => Err(e),
        }
    }
}

impl io::Read for NamedPipeClient {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        (&*self).read(buf)
    }
}

impl io::Write for &NamedPipeClient {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self.send_msg(buf)? {
            0 if !buf.is_empty() => Err(io::Error::new(
                io::ErrorKind::WouldBlock,
                Error::new(ErrorKind::NoData),
            )),
            n => Ok(n),
        }
    }

    /// Does nothing (see [`NamedPipeClient::flush_buffers`]).
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl io::Write for NamedPipeClient {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        (&*self).write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn instance_count(full: &str) -> io::Result<u32> {
    let name = PipeName::for_client(full)?;
    let sock = wire::connect(&name.socket_name())?.ok_or_else(|| err(ErrorKind::FileNotFound))?;
    let mut req = vec![wire::REQ_STATE];
    req.extend_from_slice(name.key().as_bytes());
    wire::send(sock.as_fd(), &req, None)?;
    let mut buf = [0u8; 16];
    match wire::recv_timeout(&sock, &mut buf, Some(Duration::from_secs(2)))? {
        Some((5, None)) if buf[0] == wire::RESP_STATE => wire::u32_at(&buf, 1),
        _ => Err(wire::bad_packet()),
    }
}

/// Waits until an instance of `name` is Listening (spec 4.5). Success
/// reserves nothing: the next `open` may still meet `PipeBusy`.
///
/// Errors: `FileNotFound` at once when no instance exists (and when the last
/// one closes during the wait), `Timeout` when the time passes,
/// `InvalidName`/`BadNetPath` for a malformed name, `AccessDenied` when the
/// name's owner runs as a uid other than root or ours (the default rule of
/// [`ClientOptions::trust_server_uid`]; [`ClientOptions::wait_available`]
/// takes other rules), `NoSystemResources` when the server already keeps as
/// many waits as it allows (in all, or for this user: a bound against one
/// user exhausting the server's descriptors; unlike `PipeBusy`, not a reason
/// to wait again at once) or when this process is out of descriptors.
///
/// ```
/// use shmpipe::named::{wait_available, ServerOptions, WaitTimeout};
/// let name = format!(r"\\.\pipe\doc-wait-{}", std::process::id());
/// let _server = ServerOptions::new().create(&name)?;
/// wait_available(&name, WaitTimeout::Default)?; // a fresh instance listens
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn wait_available(name: &str, timeout: WaitTimeout) -> io::Result<()> {
    ClientOptions::new().wait_available(name, timeout)
}

impl ClientOptions {
    /// [`wait_available`] that trusts the servers these options trust
    /// (see [`ClientOptions::trust_server_uid`]): the answer comes from the
    /// process that owns the name, and an owner running as someone else
    /// gives `AccessDenied` naming its uid, at once.
    ///
    /// ```
    /// use shmpipe::named::{ClientOptions, ServerOptions, WaitTimeout};
    /// let name = format!(r"\\.\pipe\doc-client-wait-{}", std::process::id());
    /// let _server = ServerOptions::new().create(&name)?;
    /// ClientOptions::new().trust_server_uid(65534).wait_available(&name, WaitTimeout::Default)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn wait_available(&self, name: &str, timeout: WaitTimeout) -> io::Result<()> {
        wait(name, timeout, &self.trust)
    }

    /// [`call`] with these options' trust rule and wait policy (the pipe is
    /// opened for reading and writing whatever [`ClientOptions::access`]
    /// says, as Windows' `CallNamedPipe` does).
    ///
    /// ```
    /// use shmpipe::named::{ClientOptions, ServerOptions, WaitTimeout};
    /// use shmpipe::{PipeType, ReadMode};
    /// let name = format!(r"\\.\pipe\doc-client-call-{}", std::process::id());
    /// let server = ServerOptions::new().pipe_type(PipeType::Message).read_mode(ReadMode::Message).create(&name)?;
    /// let t = std::thread::spawn(move || -> std::io::Result<()> {
    ///     server.connect()?;
    ///     let mut buf = [0u8; 16];
    ///     let m = server.recv_msg(&mut buf)?;
    ///     server.send_msg(&buf[..m.len])?;
    ///     Ok(())
    /// });
    /// let mut reply = [0u8; 16];
    /// let r = ClientOptions::new().trust_any_server(true).call(&name, b"echo", &mut reply, WaitTimeout::Default)?;
    /// assert_eq!(&reply[..r.len], b"echo");
    /// t.join().unwrap()?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn call(
        &self,
        name: &str,
        request: &[u8],
        reply: &mut [u8],
        timeout: WaitTimeout,
    ) -> io::Result<MsgRead> {
        let mut opts = self.clone();
        opts.access(Access::READ_WRITE);
        let open = || opts.open(name);
        let client = match open() {
            Err(e)
                if Error::kind_of(&e) == Some(ErrorKind::PipeBusy)
                    && timeout != WaitTimeout::NoWait =>
            {
                opts.wait_available(name, timeout)?;
                open()?
            }
            r => r?,
        };
        client.set_read_mode(ReadMode::Message)?;
        client.transact(request, reply)
    }
}

fn wait(name: &str, timeout: WaitTimeout, trust: &TrustRule) -> io::Result<()> {
    let start = Instant::now();
    let name = PipeName::for_client(name)?;
    let sock = wire::connect(&name.socket_name())?.ok_or_else(|| err(ErrorKind::FileNotFound))?;
    // The process listening on the name's socket answers: the kernel says
    // who it is before we ask anything.
    let owner = wire::peer_cred(&sock).map_err(|_| err(ErrorKind::FileNotFound))?;
    trust.check(Role::Server, owner.pid, owner.uid, owner.gid)?;
    let mut req = vec![wire::REQ_WAIT];
    req.extend_from_slice(name.key().as_bytes());
    wire::send(sock.as_fd(), &req, None).map_err(|_| err(ErrorKind::FileNotFound))?;
    let mut buf = [0u8; 16];
    let first = wire::recv_timeout(&sock, &mut buf, Some(Duration::from_secs(10)))?;
    let default_ms = match first {
        None => return Err(err(ErrorKind::FileNotFound)),
        Some((_, _)) if buf[0] == wire::RESP_AVAILABLE => return Ok(()),
        Some((n, _)) if buf[0] == wire::RESP_ERROR => return Err(wire::decode_error(&buf[..n])),
        Some((5, None)) if buf[0] == wire::RESP_STATE => wire::u32_at(&buf, 1)?,
        Some(_) => return Err(wire::bad_packet()),
    };
    let limit = match timeout {
        WaitTimeout::Forever => None,
        WaitTimeout::NoWait => Some(Duration::ZERO),
        WaitTimeout::Duration(d) => Some(d),
        WaitTimeout::Default if default_ms == 0 => Some(Duration::from_millis(50)),
        WaitTimeout::Default => Some(Duration::from_millis(u64::from(default_ms))),
    };
    let remaining = limit.map(|l| l.saturating_sub(start.elapsed()));
    if remaining == Some(Duration::ZERO) {
        return Err(err(ErrorKind::Timeout));
    }
    match wire::recv_timeout(&sock, &mut buf, remaining)? {
        None => Err(err(ErrorKind::FileNotFound)),
        Some(_) if buf[0] == wire::RESP_AVAILABLE => Ok(()),
        Some(_) => Err(wire::bad_packet()),
    }
}

/// Windows' `CallNamedPipe` (spec 4.10): opens `name` for reading and
/// writing (waiting once per `timeout` if every instance is busy), switches
/// to message-read mode, sends `request`, reads the reply into `reply`, and
/// closes. A reply longer than `reply` comes back truncated with
/// `complete == false`, and its rest is lost. Only a server running as root
/// or as our uid is used (see [`ClientOptions::trust_server_uid`];
/// [`ClientOptions::call`] takes other rules).
///
/// ```
/// use shmpipe::named::{call, ServerOptions, WaitTimeout};
/// use shmpipe::{PipeType, ReadMode};
/// let name = format!(r"\\.\pipe\doc-call-{}", std::process::id());
/// let server = ServerOptions::new().pipe_type(PipeType::Message).read_mode(ReadMode::Message).create(&name)?;
/// let t = std::thread::spawn(move || -> std::io::Result<()> {
///     server.connect()?;
///     let mut buf = [0u8; 64];
///     let m = server.recv_msg(&mut buf)?;
///     server.send_msg(&buf[..m.len].to_ascii_uppercase())?;
///     Ok(())
/// });
/// let mut reply = [0u8; 64];
/// let r = call(&name, b"ping", &mut reply, WaitTimeout::Default)?;
/// assert_eq!(&reply[..r.len], b"PING");
/// t.join().unwrap()?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn call(
    name: &str,
    request: &[u8],
    reply: &mut [u8],
    timeout: WaitTimeout,
) -> io::Result<MsgRead> {
    ClientOptions::new().call(name, request, reply, timeout)
}
