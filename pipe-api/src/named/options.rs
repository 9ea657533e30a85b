//! Options and small types of named pipes.

use std::time::Duration;

/// An end's modes as one byte, the same everywhere they are kept or sent:
/// a server end's `modes`, a client end's shared modes word, a member's
/// link `STATE` and the `INFO` entries. Bit set: nonblocking wait mode.
pub(crate) const MODE_NONBLOCKING: u8 = 1;
/// See [`MODE_NONBLOCKING`]. Bit set: message read mode (never on a byte
/// pipe: every receiver checks).
pub(crate) const MODE_MESSAGE_READ: u8 = 2;

/// The direction of a named pipe (spec 2.1: `PIPE_ACCESS_*`).
///
/// ```
/// use shmpipe::named::{ClientOptions, Direction, ServerOptions};
/// use shmpipe::{Error, ErrorKind};
/// let name = format!(r"\\.\pipe\doc-direction-{}", std::process::id());
/// let server = ServerOptions::new().access(Direction::Inbound).create(&name)?;
/// let e = ClientOptions::new().open(&name).unwrap_err(); // asks to read an inbound pipe
/// assert_eq!(Error::kind_of(&e), Some(ErrorKind::AccessDenied));
/// let client = ClientOptions::new().read(false).open(&name)?;
/// client.send_msg(b"in")?;
/// assert_eq!(server.recv_msg(&mut [0u8; 8])?.len, 2);
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Client → server.
    Inbound,
    /// Server → client.
    Outbound,
    /// Both ways.
    Duplex,
}

impl Direction {
    pub(crate) fn to_u8(self) -> u8 {
        match self {
            Direction::Inbound => 1,
            Direction::Outbound => 2,
            Direction::Duplex => 3,
        }
    }

    pub(crate) fn from_u8(v: u8) -> Option<Direction> {
        match v {
            1 => Some(Direction::Inbound),
            2 => Some(Direction::Outbound),
            3 => Some(Direction::Duplex),
            _ => None,
        }
    }

    /// The server end's rights (spec 8.2).
    pub(crate) fn server_access(self) -> Access {
        match self {
            Direction::Duplex => Access::READ_WRITE,
            Direction::Inbound => Access {
                read_data: true,
                read_attributes: true,
                ..Access::NONE
            },
            Direction::Outbound => Access {
                write_data: true,
                write_attributes: true,
                ..Access::NONE
            },
        }
    }
}

/// Rights a handle carries (spec 4.4, 8.2).
///
/// ```
/// use shmpipe::named::{Access, ClientOptions, ServerOptions};
/// use shmpipe::{Error, ErrorKind};
/// let name = format!(r"\\.\pipe\doc-access-{}", std::process::id());
/// let server = ServerOptions::new().create(&name)?;
/// let client = ClientOptions::new().access(Access::READ).open(&name)?;
/// let e = client.send_msg(b"x").unwrap_err();
/// assert_eq!(Error::kind_of(&e), Some(ErrorKind::AccessDenied));
/// server.send_msg(b"y")?;
/// assert_eq!(client.recv_msg(&mut [0u8; 8])?.len, 1);
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Access {
    /// `read`, `peek`.
    pub read_data: bool,
    /// `write`, `flush`.
    pub write_data: bool,
    /// `get_info`, `get_state`.
    pub read_attributes: bool,
    /// `set_state`.
    pub write_attributes: bool,
}

impl Access {
    /// No rights: an open with it still takes the instance (spec 4.4).
    ///
    /// ```
    /// use shmpipe::named::{Access, ClientOptions, ServerOptions};
    /// use shmpipe::{Error, ErrorKind};
    /// let name = format!(r"\\.\pipe\doc-access-none-{}", std::process::id());
    /// let _server = ServerOptions::new().create(&name)?;
    /// let client = ClientOptions::new().access(Access::NONE).open(&name)?;
    /// assert_eq!(client.info()?.end, shmpipe::EndKind::Client); // may still query
    /// let e = ClientOptions::new().open(&name).unwrap_err(); // the one instance is taken
    /// assert_eq!(Error::kind_of(&e), Some(ErrorKind::PipeBusy));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub const NONE: Access = Access {
        read_data: false,
        write_data: false,
        read_attributes: false,
        write_attributes: false,
    };
    /// read-data + read-attributes.
    ///
    /// ```
    /// use shmpipe::named::Access;
    /// assert_eq!(Access::READ, Access { read_data: true, read_attributes: true, ..Access::NONE });
    /// ```
    pub const READ: Access = Access {
        read_data: true,
        write_data: false,
        read_attributes: true,
        write_attributes: false,
    };
    /// write-data + write-attributes.
    ///
    /// ```
    /// use shmpipe::named::Access;
    /// let write = Access { write_data: true, write_attributes: true, ..Access::NONE };
    /// assert_eq!(Access::WRITE, write);
    /// ```
    pub const WRITE: Access = Access {
        read_data: false,
        write_data: true,
        read_attributes: false,
        write_attributes: true,
    };
    /// Everything.
    ///
    /// ```
    /// use shmpipe::named::Access;
    /// let (r, w) = (Access::READ, Access::WRITE);
    /// let both = Access { read_data: r.read_data, read_attributes: r.read_attributes, ..w };
    /// assert_eq!(Access::READ_WRITE, both);
    /// ```
    pub const READ_WRITE: Access = Access {
        read_data: true,
        write_data: true,
        read_attributes: true,
        write_attributes: true,
    };

    pub(crate) fn to_u8(self) -> u8 {
        u8::from(self.read_data)
            | u8::from(self.write_data) << 1
            | u8::from(self.read_attributes) << 2
            | u8::from(self.write_attributes) << 3
    }

    pub(crate) fn from_u8(v: u8) -> Option<Access> {
        (v & !0xf == 0).then_some(Access {
            read_data: v & 1 != 0,
            write_data: v & 2 != 0,
            read_attributes: v & 4 != 0,
            write_attributes: v & 8 != 0,
        })
    }
}

/// What a user class may do with a pipe (spec 8.3).
///
/// ```
/// use shmpipe::named::{ClientOptions, Permissions, Security, ServerOptions};
/// let read_only = Permissions { connect_read: true, ..Permissions::NONE };
/// let name = format!(r"\\.\pipe\doc-permissions-{}", std::process::id());
/// let _server = ServerOptions::new()
///     .security(Security { group: read_only, others: Permissions::NONE })
///     .create(&name)?;
/// let client = ClientOptions::new().open(&name)?; // the owner may do everything
/// assert_eq!(client.server_process_id()?, std::process::id());
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Permissions {
    /// Open client ends with read-data.
    pub connect_read: bool,
    /// Open client ends with write-data.
    pub connect_write: bool,
    /// Create further instances of the name.
    pub create_instance: bool,
}

impl Permissions {
    /// Nothing.
    ///
    /// ```
    /// use shmpipe::named::Permissions;
    /// assert_eq!(Permissions::default(), Permissions::NONE);
    /// ```
    pub const NONE: Permissions = Permissions {
        connect_read: false,
        connect_write: false,
        create_instance: false,
    };
    /// Everything.
    ///
    /// ```
    /// use shmpipe::named::Permissions;
    /// let all = Permissions::ALL;
    /// assert!(all.connect_read && all.connect_write && all.create_instance);
    /// ```
    pub const ALL: Permissions = Permissions {
        connect_read: true,
        connect_write: true,
        create_instance: true,
    };
}

/// A pipe's security (spec 8): the owner (the creator's effective uid and
/// gid) may do everything; the group and other users get what is granted
/// here (nothing by default: on Linux, whoever can map a segment can read
/// it). root is always allowed. Checked by the server against the
/// kernel-reported credentials of each connecting process.
///
/// ```
/// use shmpipe::named::{ClientOptions, Permissions, Security, ServerOptions};
/// let name = format!(r"\\.\pipe\doc-security-{}", std::process::id());
/// let shared = Security { group: Permissions::ALL, others: Permissions::NONE };
/// let server = ServerOptions::new().security(shared).create(&name)?;
/// let _client = ClientOptions::new().open(&name)?;
/// assert_eq!(server.client_credentials()?.pid, std::process::id());
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Security {
    /// What members of the owner's group may do.
    pub group: Permissions,
    /// What every other user may do.
    pub others: Permissions,
}

impl Security {
    /// Owner only (the default).
    ///
    /// ```
    /// use shmpipe::named::Security;
    /// assert_eq!(Security::default(), Security::OWNER_ONLY);
    /// ```
    pub const OWNER_ONLY: Security = Security {
        group: Permissions::NONE,
        others: Permissions::NONE,
    };

    /// What a process with `uid`, primary `gid` and supplementary `groups`
    /// may do with a pipe owned by `owner`/`owner_gid`.
    pub(crate) fn permissions(
        &self,
        owner: u32,
        owner_gid: u32,
        uid: u32,
        gid: u32,
        groups: &[u32],
    ) -> Permissions {
        if uid == 0 || uid == owner {
            return Permissions::ALL;
        }
        let mut p = self.others;
        if gid == owner_gid || groups.contains(&owner_gid) {
            p.connect_read |= self.group.connect_read;
            p.connect_write |= self.group.connect_write;
            p.create_instance |= self.group.create_instance;
        }
        p
    }
}

/// How long `wait_available` and `call` wait (spec 4.5, 4.10).
///
/// ```
/// use shmpipe::named::{wait_available, ClientOptions, ServerOptions, WaitTimeout};
/// use shmpipe::{Error, ErrorKind};
/// use std::time::Duration;
/// let name = format!(r"\\.\pipe\doc-wait-timeout-{}", std::process::id());
/// let _server = ServerOptions::new().create(&name)?;
/// let _client = ClientOptions::new().open(&name)?; // no instance is Listening now
/// let e = wait_available(&name, WaitTimeout::Duration(Duration::from_millis(10))).unwrap_err();
/// assert_eq!(Error::kind_of(&e), Some(ErrorKind::Timeout));
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitTimeout {
    /// The pipe's default timeout (50 ms if the pipe was created with 0).
    Default,
    /// Do not wait (`call` only: PipeBusy at once).
    NoWait,
    /// Wait as long as it takes.
    Forever,
    /// Wait at most this long.
    Duration(Duration),
}

/// The outcome of a successful `connect` (spec 4.3).
///
/// ```
/// use shmpipe::named::{ClientOptions, Connected, ServerOptions};
/// let name = format!(r"\\.\pipe\doc-connected-{}", std::process::id());
/// let server = ServerOptions::new().create(&name)?;
/// let _client = ClientOptions::new().open(&name)?;
/// assert_eq!(server.connect()?, Connected::Already); // the client came first
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Connected {
    /// A client opened the instance while `connect` waited.
    New,
    /// A client had already opened it before the call (Windows'
    /// `ERROR_PIPE_CONNECTED`, which is a success).
    Already,
}

/// Who opened a client end (spec 4.18): captured by the kernel at the
/// handshake.
///
/// ```
/// use shmpipe::named::{ClientOptions, ServerOptions};
/// use std::os::unix::fs::MetadataExt;
/// let name = format!(r"\\.\pipe\doc-credentials-{}", std::process::id());
/// let server = ServerOptions::new().create(&name)?;
/// let _client = ClientOptions::new().open(&name)?;
/// let who = server.client_credentials()?;
/// assert_eq!(who.pid, std::process::id());
/// assert_eq!(who.uid, std::fs::metadata("/proc/self")?.uid());
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The opener's process id in the server's pid namespace (0 when the
    /// opener is outside it).
    pub pid: u32,
    /// Its user id.
    pub uid: u32,
    /// Its primary group id.
    pub gid: u32,
    /// Its supplementary groups (the remote marker removed).
    pub groups: Vec<u32>,
    /// The client came through a gateway (`\\host\pipe\name` on another
    /// machine): the kernel showed [`REMOTE_MARKER_GID`] among its groups.
    /// `uid`, `gid` and `groups` are then those the gateway mapped the
    /// client's certificate to, and `pid` is the gateway's.
    pub remote: bool,
    /// A remote client's certificate, as its gateway identified it: the
    /// SHA-256 fingerprint of its DER (hex with colons). Only ever set
    /// when `remote` is (a local process cannot claim it: an open that
    /// carries it without the kernel's remote mark is refused); `None`
    /// for local clients, and for remote clients of an instance in a
    /// process that joined a name another process owns.
    pub remote_fingerprint: Option<String>,
    /// The subject of that certificate (`CN=laptop, O=Example`), when the
    /// gateway could write it (at most 255 bytes); same rules as
    /// `remote_fingerprint`.
    pub remote_subject: Option<String>,
}

/// The supplementary group that marks a client as remote (1936289136,
/// "shmp"): a gateway opens local pipes for remote clients from a thread
/// carrying it, which only root can arrange (docs/remote-design.md). A
/// server seeing it in `SO_PEERGROUPS` treats the client as remote
/// ([`ServerOptions::reject_remote_clients`](super::ServerOptions::reject_remote_clients),
/// [`Credentials::remote`]); it grants nothing and is removed from the
/// groups `Security` judges. No local user may be a member of this group.
///
/// ```
/// assert_eq!(shmpipe::named::REMOTE_MARKER_GID.to_be_bytes(), *b"shmp");
/// ```
pub const REMOTE_MARKER_GID: u32 = u32::from_be_bytes(*b"shmp");

/// Who serves a client end (see
/// [`NamedPipeClient::server_credentials`](super::NamedPipeClient::server_credentials)):
/// the kernel's account of the process that sent this end its segment.
///
/// ```
/// use shmpipe::named::{ClientOptions, ServerOptions};
/// use std::os::unix::fs::MetadataExt;
/// let name = format!(r"\\.\pipe\doc-server-credentials-{}", std::process::id());
/// let _server = ServerOptions::new().create(&name)?;
/// let who = ClientOptions::new().open(&name)?.server_credentials()?;
/// assert_eq!(who.pid, std::process::id());
/// assert_eq!(who.uid, std::fs::metadata("/proc/self")?.uid());
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerCredentials {
    /// The server's process id in this process's pid namespace (0 when the
    /// server is outside it).
    pub pid: u32,
    /// Its effective user id.
    pub uid: u32,
    /// Its effective (primary) group id.
    pub gid: u32,
}
