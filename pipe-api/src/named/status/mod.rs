//! Looking at named pipes from outside: [`status`] of one name, [`list`] of
//! every name this user may see, as `shmpipe list` / `shmpipe info` show
//! them.
//!
//! Both ask the name's server with the rendezvous protocol's `INFO` request
//! (see the `wire` module), so what they report is the server's own view at
//! that moment: nothing is kept in a registry that could go stale. A listing
//! finds the servers in `/proc/net/unix` (every name is an abstract socket
//! `@shmpipe-v1/<hash>`); the name itself comes from the reply, and must
//! hash to the socket it came from.
//!
//! A reply is decoded strictly: anything malformed or inconsistent is an
//! error (`InvalidData`), never a panic, so a hostile process squatting on
//! a socket name cannot crash the one asking (the codec is in `info`).

mod info;

use info::decode;
pub(crate) use info::encode;

use super::name::PipeName;
use super::options::{Direction, Permissions, MODE_MESSAGE_READ, MODE_NONBLOCKING};
use super::wire;
use crate::error::{Error, ErrorKind};
use crate::info::{PipeType, ReadMode, WaitMode};
use std::io;
use std::os::fd::AsFd;
use std::time::Duration;

/// How long a server may take to answer `INFO` (it answers from a fresh
/// thread; the machine may be loaded).
const QUERY_TIMEOUT: Duration = Duration::from_secs(2);
/// Servers asked at once by [`list`]: a server that does not answer delays
/// only its own batch.
const LIST_BATCH: usize = 16;
/// The abstract socket names of pipe servers: this, then 32 hex digits.
const SOCKET_PREFIX: &str = "shmpipe-v1/";

/// What an instance is doing (spec 1.4).
///
/// ```
/// use shmpipe::named::{status, ClientOptions, InstanceState, ServerOptions};
/// let name = format!(r"\\.\pipe\doc-instance-state-{}", std::process::id());
/// let server = ServerOptions::new().create(&name)?;
/// assert_eq!(status(&name)?.instances[0].state, InstanceState::Listening);
/// let client = ClientOptions::new().open(&name)?;
/// assert_eq!(status(&name)?.instances[0].state, InstanceState::Connected);
/// drop(client);
/// assert_eq!(status(&name)?.instances[0].state, InstanceState::ClientGone);
/// server.disconnect()?;
/// assert_eq!(status(&name)?.instances[0].state, InstanceState::Disconnected);
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum InstanceState {
    /// Waiting for a client: the next `open` may take it.
    Listening,
    /// A client has it open.
    Connected,
    /// Its client closed; the server has not disconnected it yet.
    ClientGone,
    /// The server disconnected it and has not called `connect` again.
    Disconnected,
}

/// One instance of a name, as its server sees it.
///
/// ```
/// use shmpipe::named::{status, ClientOptions, ServerOptions};
/// use shmpipe::{PipeType, ReadMode, WaitMode};
/// let name = format!(r"\\.\pipe\doc-instance-status-{}", std::process::id());
/// let server = ServerOptions::new()
///     .pipe_type(PipeType::Message)
///     .read_mode(ReadMode::Message)
///     .create(&name)?;
/// server.set_nonblocking(true)?;
/// let client = ClientOptions::new().open(&name)?;
/// client.send_msg(b"four")?;
/// let i = &status(&name)?.instances[0];
/// assert_eq!((i.read_mode, i.wait_mode), (ReadMode::Message, WaitMode::Nonblocking));
/// assert_eq!((i.client_pid, i.queued_in, i.queued_out), (Some(std::process::id()), 4, 0));
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct InstanceStatus {
    /// What the instance is doing.
    pub state: InstanceState,
    /// The server end's read mode.
    pub read_mode: ReadMode,
    /// The server end's wait mode.
    pub wait_mode: WaitMode,
    /// The process that opened the client end (`Connected`, `ClientGone`).
    pub client_pid: Option<u32>,
    /// Server→client bytes written and not yet read by the client.
    pub queued_out: u64,
    /// Client→server bytes written and not yet read by the server.
    pub queued_in: u64,
    /// The process holding the instance's server end: instances of one
    /// name may be created by several processes (its owner, which
    /// [`PipeStatus::server_pid`] names, and others it admitted). The
    /// queued byte counts of another process's instance are not known to
    /// the owner and read 0.
    ///
    /// ```
    /// use shmpipe::named::{status, ServerOptions};
    /// let name = format!(r"\\.\pipe\doc-instance-server-pid-{}", std::process::id());
    /// let _server = ServerOptions::new().create(&name)?;
    /// assert_eq!(status(&name)?.instances[0].server_pid, std::process::id());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub server_pid: u32,
}

impl InstanceStatus {
    /// Sets the read and wait modes from the server's mode bits.
    pub(crate) fn set_modes(&mut self, modes: u8) {
        self.read_mode = if modes & MODE_MESSAGE_READ != 0 {
            ReadMode::Message
        } else {
            ReadMode::Byte
        };
        self.wait_mode = WaitMode::from_nonblocking(modes & MODE_NONBLOCKING != 0);
    }
}

/// A named pipe, as its server describes it: attributes, instance counts,
/// processes and queued bytes. From [`status`] or [`list`].
///
/// The counts are exact; [`PipeStatus::instances`] has one entry per
/// instance except ServerGone ones (their server end is closed), and at
/// most 1024 entries.
///
/// ```
/// use shmpipe::named::{status, ClientOptions, ServerOptions};
/// let name = format!(r"\\.\pipe\doc-pipe-status-{}", std::process::id());
/// let server = ServerOptions::new().create(&name)?;
/// let client = ClientOptions::new().open(&name)?;
/// drop(server); // ServerGone: the client still holds its end
/// let s = status(&name)?;
/// assert_eq!((s.server_gone, s.current_instances()), (1, 1));
/// assert!(s.instances.is_empty());
/// drop(client); // and now the name is gone
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PipeStatus {
    /// The full name, `\\.\pipe\<name>`, spelled as its first instance's
    /// creator spelled it.
    pub name: String,
    /// Byte or message type.
    pub pipe_type: PipeType,
    /// Which way data flows.
    pub direction: Direction,
    /// Maximum instances; 255 means unlimited.
    pub max_instances: u32,
    /// The default timeout of `wait_available` (zero means 50 ms).
    pub default_timeout: Duration,
    /// The process serving the name: its owner, which answers for every
    /// instance (instances created by other processes name theirs in
    /// [`InstanceStatus::server_pid`]).
    pub server_pid: u32,
    /// The effective uid that created the name (its owner, spec 8).
    pub owner_uid: u32,
    /// Instances waiting for a client.
    pub listening: u32,
    /// Instances with a client.
    pub connected: u32,
    /// Instances whose client closed, not yet disconnected.
    pub client_gone: u32,
    /// Instances disconnected by the server, not listening again yet.
    pub disconnected: u32,
    /// Connections whose server end closed while their client still holds
    /// its end (ServerGone): they keep the name alive until the client
    /// closes.
    pub server_gone: u32,
    /// The instances (see the type's documentation).
    pub instances: Vec<InstanceStatus>,
}

impl PipeStatus {
    /// Adds an instance and counts it under its state.
    pub(crate) fn push(&mut self, i: InstanceStatus) -> &mut InstanceStatus {
        match i.state {
            InstanceState::Listening => self.listening += 1,
            InstanceState::Connected => self.connected += 1,
            InstanceState::ClientGone => self.client_gone += 1,
            InstanceState::Disconnected => self.disconnected += 1,
        }
        self.instances.push(i);
        self.instances.last_mut().expect("just pushed")
    }

    /// Instances that exist (what `get_state` reports): every state,
    /// ServerGone included.
    ///
    /// ```
    /// use shmpipe::named::{status, ServerOptions};
    /// let name = format!(r"\\.\pipe\doc-status-count-{}", std::process::id());
    /// let _a = ServerOptions::new().create(&name)?;
    /// let _b = ServerOptions::new().create(&name)?;
    /// assert_eq!(status(&name)?.current_instances(), 2);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn current_instances(&self) -> u32 {
        [
            self.listening,
            self.connected,
            self.client_gone,
            self.disconnected,
            self.server_gone,
        ]
        .into_iter()
        .fold(0u32, u32::saturating_add)
    }

    /// The pids of the clients of `Connected` instances, in instance order.
    ///
    /// ```
    /// use shmpipe::named::{status, ClientOptions, ServerOptions};
    /// let name = format!(r"\\.\pipe\doc-status-clients-{}", std::process::id());
    /// let _server = ServerOptions::new().create(&name)?;
    /// let _client = ClientOptions::new().open(&name)?;
    /// assert_eq!(status(&name)?.client_pids(), [std::process::id()]);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn client_pids(&self) -> Vec<u32> {
        self.instances
            .iter()
            .filter(|i| i.state == InstanceState::Connected)
            .filter_map(|i| i.client_pid)
            .collect()
    }

    /// Server→client bytes queued, summed over the listed instances.
    ///
    /// ```
    /// use shmpipe::named::{status, ClientOptions, ServerOptions};
    /// use std::io::Write;
    /// let name = format!(r"\\.\pipe\doc-status-queued-out-{}", std::process::id());
    /// let mut server = ServerOptions::new().create(&name)?;
    /// let _client = ClientOptions::new().open(&name)?;
    /// server.write_all(b"not read yet")?;
    /// assert_eq!(status(&name)?.queued_out(), 12);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn queued_out(&self) -> u64 {
        self.instances
            .iter()
            .fold(0u64, |a, i| a.saturating_add(i.queued_out))
    }

    /// Client→server bytes queued, summed over the listed instances.
    ///
    /// ```
    /// use shmpipe::named::{status, ClientOptions, ServerOptions};
    /// use std::io::Write;
    /// let name = format!(r"\\.\pipe\doc-status-queued-{}", std::process::id());
    /// let _server = ServerOptions::new().create(&name)?;
    /// let mut client = ClientOptions::new().open(&name)?;
    /// client.write_all(b"unread")?;
    /// let s = status(&name)?;
    /// assert_eq!((s.queued_in(), s.queued_out()), (6, 0));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn queued_in(&self) -> u64 {
        self.instances
            .iter()
            .fold(0u64, |a, i| a.saturating_add(i.queued_in))
    }
}

/// Asks the server of `name` (`\\.\pipe\<name>`, any case) to describe
/// the pipe.
///
/// Errors: `InvalidName`/`BadNetPath` for a malformed name, `FileNotFound`
/// when no instance exists, `AccessDenied` when the pipe's security grants
/// this user nothing, `Timeout` when the server does not answer within 2 s,
/// [`io::ErrorKind::InvalidData`] for a malformed answer.
///
/// ```
/// use shmpipe::named::{status, Direction, InstanceState, ServerOptions};
/// use shmpipe::PipeType;
/// let name = format!(r"\\.\pipe\Doc-Status-{}", std::process::id());
/// let _server = ServerOptions::new()
///     .pipe_type(PipeType::Message)
///     .max_instances(4)
///     .create(&name)?;
/// let s = status(&name.to_uppercase())?; // names are case-insensitive
/// assert_eq!(s.name, name); // spelled as created
/// assert_eq!((s.pipe_type, s.direction, s.max_instances), (PipeType::Message, Direction::Duplex, 4));
/// assert_eq!(s.server_pid, std::process::id());
/// assert_eq!((s.listening, s.connected), (1, 0));
/// assert_eq!(s.instances[0].state, InstanceState::Listening);
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn status(name: &str) -> io::Result<PipeStatus> {
    let name = PipeName::for_client(name)?;
    query(&name.socket_name(), Some(&name))
}

/// Every named pipe of this machine (this network namespace) that this user
/// may see, sorted by name: those whose security grants this user something
/// (the owner and root see all). Pipes that vanish while being asked, or
/// whose server does not answer properly, are left out.
///
/// Errors only when `/proc/net/unix` cannot be read.
///
/// ```
/// use shmpipe::named::{list, ServerOptions};
/// let name = format!(r"\\.\pipe\doc-list-{}", std::process::id());
/// let _server = ServerOptions::new().create(&name)?;
/// let pipes = list()?;
/// let mine = pipes.iter().find(|p| p.name == name).expect("listed");
/// assert_eq!(mine.server_pid, std::process::id());
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn list() -> io::Result<Vec<PipeStatus>> {
    let table = std::fs::read_to_string("/proc/net/unix")?;
    let sockets = listening_sockets(&table);
    let mut found = Vec::with_capacity(sockets.len());
    for batch in sockets.chunks(LIST_BATCH) {
        std::thread::scope(|scope| {
            let mut asked = Vec::with_capacity(batch.len());
            for sock in batch {
                match std::thread::Builder::new()
                    .name("shmpipe-list".into())
                    .spawn_scoped(scope, move || query(sock, None))
                {
                    Ok(h) => asked.push(h),
                    // No thread to spare: ask right here.
                    Err(_) => found.extend(query(sock, None).ok()),
                }
            }
            for h in asked {
                if let Ok(Ok(s)) = h.join() {
                    found.push(s);
                }
            }
        });
    }
    found.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(found)
}

/// The abstract names (without the leading `@`) of listening sequenced-packet
/// sockets that look like pipe servers, each once, from the text of
/// `/proc/net/unix`. Lines that do not parse are skipped.
fn listening_sockets(table: &str) -> Vec<String> {
    const ACCEPTING: u32 = 1 << 16; // __SO_ACCEPTCON
    const SEQPACKET: u32 = 5;
    let mut out: Vec<String> = Vec::new();
    // Num RefCount Protocol Flags Type St Inode Path
    for line in table.lines().skip(1) {
        let f: Vec<&str> = line.split_whitespace().collect();
        let [_, _, _, flags, kind, _, _, path] = f[..] else {
            continue;
        };
        let (Ok(flags), Ok(kind)) = (
            u32::from_str_radix(flags, 16),
            u32::from_str_radix(kind, 16),
        ) else {
            continue;
        };
        let Some(name) = path.strip_prefix('@') else {
            continue;
        };
        let pipe_socket = name.strip_prefix(SOCKET_PREFIX).is_some_and(|h| {
            h.len() == 32 && h.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        });
        if flags & ACCEPTING != 0
            && kind == SEQPACKET
            && pipe_socket
            && !out.iter().any(|o| o == name)
        {
            out.push(name.to_owned());
        }
    }
    out
}

/// Sends INFO to the server on `socket`; `name`, if known, is checked by the
/// server (and its reply against it).
fn query(socket: &str, name: Option<&PipeName>) -> io::Result<PipeStatus> {
    let not_found = || Error::io(ErrorKind::FileNotFound);
    let sock = wire::connect(socket)?.ok_or_else(not_found)?;
    let mut req = vec![wire::REQ_INFO];
    if let Some(n) = name {
        req.extend_from_slice(n.key().as_bytes());
    }
    wire::send(sock.as_fd(), &req, None).map_err(|_| not_found())?;
    let mut buf = vec![0u8; wire::MAX_INFO_PACKET];
    let (n, fd) =
        wire::recv_timeout(&sock, &mut buf, Some(QUERY_TIMEOUT))?.ok_or_else(not_found)?;
    let p = &buf[..n];
    if fd.is_some() {
        return Err(wire::bad_packet());
    }
    if p.first() == Some(&wire::RESP_ERROR) {
        return Err(wire::decode_error(p));
    }
    let s = decode(p)?;
    // The reply must describe the pipe that was asked about.
    let described = PipeName::for_client(&s.name).map_err(|_| wire::bad_packet())?;
    if described.socket_name() != socket || name.is_some_and(|n| n.key() != described.key()) {
        return Err(wire::bad_packet());
    }
    Ok(s)
}

/// Whether a peer with these permissions may see the pipe's status.
pub(crate) fn may_see(p: Permissions) -> bool {
    p != Permissions::NONE
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_net_unix_parsing() {
        let table = "\
Num       RefCount Protocol Flags    Type St Inode Path
0000000000000000: 00000002 00000000 00010000 0005 01 1001 @shmpipe-v1/0123456789abcdef0123456789abcdef
0000000000000000: 00000003 00000000 00000000 0005 03 1002 @shmpipe-v1/0123456789abcdef0123456789abcdef
0000000000000000: 00000002 00000000 00010000 0005 01 1003 @shmpipe-v1/0123456789abcdef0123456789abcdef
0000000000000000: 00000002 00000000 00010000 0001 01 1004 @shmpipe-v1/ffffffffffffffffffffffffffffffff
0000000000000000: 00000002 00000000 00010000 0005 01 1005 @shmpipe-v1/short
0000000000000000: 00000002 00000000 00010000 0005 01 1006 @other/0123456789abcdef0123456789abcdef
0000000000000000: 00000002 00000000 00010000 0005 01 1007 /run/shmpipe-v1/0123456789abcdef0123456789abcdef
0000000000000000: 00000002 00000000 00010000 0005 01 1008
garbage
0000000000000000: 00000002 00000000 0001000z 0005 01 1009 @shmpipe-v1/00000000000000000000000000000000
0000000000000000: 00000002 00000000 00010000 0005 01 1010 @shmpipe-v1/fedcba9876543210fedcba9876543210
";
        assert_eq!(
            listening_sockets(table),
            [
                "shmpipe-v1/0123456789abcdef0123456789abcdef",
                "shmpipe-v1/fedcba9876543210fedcba9876543210",
            ]
        );
    }
}
