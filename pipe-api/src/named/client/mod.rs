//! The client side (spec 4.4, 4.5, 4.10): the [`ClientOptions`] builder
//! and `open`'s handshake with the name's owner, here; the end itself in
//! `end` (what it holds in `shared`); [`wait_available`] and [`call`] in
//! `wait`.

#[cfg(feature = "tokio")]
mod async_hooks;
mod end;
mod readiness;
mod shared;
mod wait;

pub use end::NamedPipeClient;
use shared::{Instance, Shared};
pub use wait::{call, wait_available};

use super::name::PipeName;
use super::options::{Access, ServerCredentials};
use super::trust::{self, Role, TrustRule};
use super::wire;
use crate::error::{Error, ErrorKind};
use shmpipe_engine::WaitPolicy;
use std::io;
use std::os::fd::AsFd;
use std::sync::Arc;
use std::time::Duration;

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
    /// Set by a gateway only (its opens carry the remote mark).
    #[cfg(feature = "remote")]
    pub(crate) remote_identity: Option<wire::RemoteIdentity>,
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
            #[cfg(feature = "remote")]
            remote_identity: None,
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
        let name = match PipeName::for_client(name) {
            Ok(n) => n,
            // Another machine's pipe: through its gateway. Local opens pay
            // nothing for it (the parse says BadNetPath only for those).
            #[cfg(feature = "remote")]
            Err(e) if Error::kind_of(&e) == Some(ErrorKind::BadNetPath) => {
                return crate::remote::client::open(
                    name,
                    self.access,
                    self.policy,
                    self.trust.for_remote(),
                );
            }
            Err(e) => return Err(e),
        };
        // A handle opened with no rights can still query (spec 4.4).
        let mut access = self.access;
        if access == Access::NONE {
            access.read_attributes = true;
        }
        let mut buf = [0u8; wire::MAX_PACKET];
        // --- begin: retry while the name changes hands (server/registry.rs, server/link.rs) ---
        // A server that hangs up without answering was serving the name a
        // moment ago: it died, and another process with instances of the
        // name may be taking it over. Look again, briefly.
        let mut retries = 0;
        let (sock, n, fd, map, slot, sender) = loop {
            let again = retries > 0 && retries < OPEN_RETRIES;
            // Credentials are asked for before the connection exists, so
            // that every reply comes with the kernel's account of who sent
            // it (see `wire::connect_with_credentials`).
            let Some(sock) = wire::connect_with_credentials(&name.socket_name())? else {
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
            let mut req = vec![wire::REQ_OPEN, access.to_u8()];
            #[cfg(feature = "remote")]
            if let Some(id) = &self.remote_identity {
                req[0] = wire::REQ_OPEN_REMOTE;
                id.encode(&mut req);
            }
            req.extend_from_slice(name.key().as_bytes());
            wire::send(sock.as_fd(), &req, None).map_err(|_| err(ErrorKind::FileNotFound))?;
            match trust::recv_with_sender(&sock, &mut buf, Some(Duration::from_secs(10))) {
                Ok(Some(p)) => break (sock, p.len, p.fd, p.fd2, p.fd3, p.sender),
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
        match (p.first(), fd, map) {
            // The end, and the descriptions to map it through and to make
            // our process slot with (a server of an earlier version sends
            // neither or no slot: we then reopen the end, as before).
            (Some(&wire::RESP_OPENED), Some(fd), map) => {
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
                let given = map.map(|m| (m, slot));
                let shared =
                    Shared::attach(fd, given, info, access, std::process::id(), self.policy)?;
                // Do not return before the server has let go of its copy of
                // our end's descriptor, so that our end closes when we close
                // it: whatever follows our return (a close included) must
                // be what the server sees.
                // From the process that sent the segment, not from another
                // that holds the same connection (a forwarding owner).
                let mut done = [0u8; 8];
                // (The receive timeout is still the one set for OPENED.)
                match trust::recv_with_sender_as_set(&sock, &mut done)? {
                    Some(trust::Packet {
                        len: 1,
                        fd: None,
                        fd2: None,
                        fd3: None,
                        sender: Some(s),
                    }) if done[0] == wire::RESP_DONE && s == server => {}
                    _ => return Err(wire::bad_packet()),
                }
                Ok(NamedPipeClient {
                    shared: Arc::new(shared),
                })
            }
            (Some(&wire::RESP_ERROR), ..) => Err(wire::decode_error(p)),
            _ => Err(wire::bad_packet()),
        }
    }
}

/// A client end attached to the client side of a segment this process
/// made itself (a remote pipe's private segment: `remote::client`), with
/// what the gateway said of the instance.
#[cfg(feature = "remote")]
pub(crate) fn attach_private(
    fd: std::os::fd::OwnedFd,
    name: String,
    opened: &crate::remote::frame::Opened,
    access: Access,
    policy: Option<WaitPolicy>,
) -> io::Result<NamedPipeClient> {
    let info = Instance {
        name,
        direction: opened.direction,
        pipe_type: opened.pipe_type,
        max_instances: opened.max_instances,
        out_size: opened.out_size,
        in_size: opened.in_size,
        server: ServerCredentials {
            pid: opened.server_pid,
            uid: opened.server_uid,
            gid: opened.server_gid,
        },
    };
    let shared = Shared::attach(fd, None, info, access, std::process::id(), policy)?;
    Ok(NamedPipeClient {
        shared: Arc::new(shared),
    })
}

/// Joins a remote client end to its bridge, whose flush then waits for
/// the remote reader.
#[cfg(feature = "remote")]
pub(crate) fn set_remote_link(c: &NamedPipeClient, link: crate::remote::bridge::Link) {
    let _ = c.shared.remote.set(link);
}

/// What a gateway tells a remote client about the instance `c` opened
/// (the default timeout is not kept by a client end: 0).
#[cfg(feature = "remote")]
pub(crate) fn describe_opened(c: &NamedPipeClient) -> crate::remote::frame::Opened {
    let i = &c.shared.info;
    crate::remote::frame::Opened {
        pipe_type: i.pipe_type,
        direction: i.direction,
        max_instances: i.max_instances,
        out_size: i.out_size,
        in_size: i.in_size,
        default_timeout_ms: 0,
        server_pid: i.server.pid,
        server_uid: i.server.uid,
        server_gid: i.server.gid,
    }
}
