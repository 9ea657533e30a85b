//! The options of a server end: the [`ServerOptions`] builder, and
//! [`Attrs`], the part of them that becomes the name's attributes when the
//! first instance is created (spec 2.1, 2.6). `create` itself, which finds
//! or makes the name, is in the `registry` module.

use crate::info::{PipeType, ReadMode, WaitMode};
use crate::named::options::{Direction, Security};
use crate::named::trust::TrustRule;
use shmpipe_engine::WaitPolicy;
use std::time::Duration;

/// Unlimited instances (spec 2.1).
pub const UNLIMITED_INSTANCES: u32 = 255;

/// Options for creating an instance of a named pipe, in the manner of
/// tokio's `ServerOptions` (spec 2.1).
///
/// ```
/// use shmpipe::named::{Direction, ServerOptions};
/// use shmpipe::{PipeType, ReadMode};
/// let server = ServerOptions::new()
///     .access(Direction::Duplex)
///     .pipe_type(PipeType::Message)
///     .read_mode(ReadMode::Message)
///     .max_instances(4)
///     .quotas(4096, 4096)
///     .create(&format!(r"\\.\pipe\doc-server-options-{}", std::process::id()))?;
/// assert_eq!(server.state()?.current_instances, 1);
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct ServerOptions {
    pub(super) direction: Direction,
    pub(super) pipe_type: PipeType,
    pub(super) read_mode: ReadMode,
    pub(super) wait_mode: WaitMode,
    pub(super) max_instances: u32,
    pub(super) out_size: u32,
    pub(super) in_size: u32,
    pub(super) default_timeout: Duration,
    pub(super) first_instance: bool,
    pub(super) reject_remote: bool,
    pub(super) write_through: bool,
    pub(super) security: Security,
    pub(super) policy: Option<WaitPolicy>,
    pub(super) owner_trust: TrustRule,
}

impl Default for ServerOptions {
    fn default() -> Self {
        Self::new()
    }
}

impl ServerOptions {
    /// Duplex, byte type and read mode, blocking, unlimited instances, 4096
    /// bytes each way, default timeout 0 (50 ms), owner-only security.
    pub fn new() -> Self {
        ServerOptions {
            direction: Direction::Duplex,
            pipe_type: PipeType::Byte,
            read_mode: ReadMode::Byte,
            wait_mode: WaitMode::Blocking,
            max_instances: UNLIMITED_INSTANCES,
            out_size: 4096,
            in_size: 4096,
            default_timeout: Duration::ZERO,
            first_instance: false,
            reject_remote: false,
            write_through: false,
            security: Security::OWNER_ONLY,
            policy: None,
            owner_trust: TrustRule::default(),
        }
    }

    /// The pipe's direction (must match existing instances).
    pub fn access(&mut self, d: Direction) -> &mut Self {
        self.direction = d;
        self
    }

    /// Byte or message type.
    pub fn pipe_type(&mut self, t: PipeType) -> &mut Self {
        self.pipe_type = t;
        self
    }

    /// The server end's initial read mode (message needs message type).
    pub fn read_mode(&mut self, m: ReadMode) -> &mut Self {
        self.read_mode = m;
        self
    }

    /// The server end's initial wait mode.
    pub fn wait_mode(&mut self, m: WaitMode) -> &mut Self {
        self.wait_mode = m;
        self
    }

    /// 1 to 254, or [`UNLIMITED_INSTANCES`] (255).
    pub fn max_instances(&mut self, n: u32) -> &mut Self {
        self.max_instances = n;
        self
    }

    /// Write quotas: `out` for server→client data, `inbound` for
    /// client→server data (spec 2.4). Reported exactly by `info`.
    pub fn quotas(&mut self, out: u32, inbound: u32) -> &mut Self {
        self.out_size = out;
        self.in_size = inbound;
        self
    }

    /// The default timeout of `wait_available(Default)` (0 means 50 ms).
    pub fn default_timeout(&mut self, t: Duration) -> &mut Self {
        self.default_timeout = t;
        self
    }

    /// Fail with `AccessDenied` if the name already exists.
    pub fn first_instance(&mut self, yes: bool) -> &mut Self {
        self.first_instance = yes;
        self
    }

    /// Refuse clients that come through a gateway from another machine
    /// with `AccessDenied` (`PIPE_REJECT_REMOTE_CLIENTS`, spec 2.1). Like
    /// `Security`, the name's first instance decides for the name.
    ///
    /// ```
    /// use shmpipe::named::{ClientOptions, ServerOptions};
    /// let name = format!(r"\\.\pipe\doc-reject-remote-{}", std::process::id());
    /// let _server = ServerOptions::new().reject_remote_clients(true).create(&name)?;
    /// let _client = ClientOptions::new().open(&name)?; // local clients still connect
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn reject_remote_clients(&mut self, yes: bool) -> &mut Self {
        self.reject_remote = yes;
        self
    }

    /// Accepted; no local effect (spec 2.1).
    pub fn write_through(&mut self, yes: bool) -> &mut Self {
        self.write_through = yes;
        self
    }

    /// Who may connect and create instances. The first instance's security
    /// is the name's: the process that owns the name checks every client
    /// and every `create` of another process against it. An instance
    /// created while another process owns the name also checks each client
    /// forwarded to it against its own security (with its creator as the
    /// owner): it trusts nothing the owner says about the name's security.
    ///
    /// ```
    /// use shmpipe::named::{ClientOptions, Permissions, Security, ServerOptions};
    /// let name = format!(r"\\.\pipe\doc-server-security-{}", std::process::id());
    /// let readers = Security { group: Permissions::NONE, others: Permissions { connect_read: true, ..Permissions::NONE } };
    /// let _server = ServerOptions::new().security(readers).create(&name)?;
    /// let _client = ClientOptions::new().open(&name)?; // the owner itself may do everything
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn security(&mut self, s: Security) -> &mut Self {
        self.security = s;
        self
    }

    /// Also join a name owned by a process running as effective uid `uid`
    /// (may be called several times).
    ///
    /// `create` on a name another process owns adds an instance to that
    /// process's name: the owner then decides which client reaches the
    /// instance. So, before it sends anything, `create` asks the kernel
    /// who owns the name (`SO_PEERCRED` of its connection to the name's
    /// socket) and joins only an owner running as root, as this process's
    /// effective uid, or as a uid or gid trusted here; any other owner
    /// (someone who took the name first, say) gives `AccessDenied`, whose
    /// message names the owner's uid.
    ///
    /// ```
    /// use shmpipe::named::ServerOptions;
    /// let name = format!(r"\\.\pipe\doc-server-trust-uid-{}", std::process::id());
    /// let first = ServerOptions::new().create(&name)?;
    /// // Joins: the name's owner runs as this process's uid (trusted anyway).
    /// let _second = ServerOptions::new().trust_owner_uid(65534).create(&name)?;
    /// assert_eq!(first.state()?.current_instances, 2);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn trust_owner_uid(&mut self, uid: u32) -> &mut Self {
        self.owner_trust.uids.push(uid);
        self
    }

    /// Also join a name owned by a process whose effective (primary) gid is
    /// `gid` (may be called several times); see
    /// [`ServerOptions::trust_owner_uid`].
    ///
    /// ```
    /// use shmpipe::named::ServerOptions;
    /// let name = format!(r"\\.\pipe\doc-server-trust-gid-{}", std::process::id());
    /// let _first = ServerOptions::new().create(&name)?;
    /// let _second = ServerOptions::new().trust_owner_gid(100).create(&name)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn trust_owner_gid(&mut self, gid: u32) -> &mut Self {
        self.owner_trust.gids.push(gid);
        self
    }

    /// How blocking operations on the server end wait.
    pub fn wait_policy(&mut self, p: WaitPolicy) -> &mut Self {
        self.policy = Some(p);
        self
    }
}

/// A name's attributes, fixed by its first instance (spec 2.6): an owner
/// has them from its options; a member has the pipe's description from the
/// owner's JOINED, but its own security and itself as the owner (nothing
/// the owner says about who may do what is believed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Attrs {
    pub(super) direction: Direction,
    pub(super) pipe_type: PipeType,
    pub(super) max_instances: u32,
    pub(super) default_timeout: Duration,
    pub(super) security: Security,
    /// Refuse clients marked remote (`reject_remote_clients`); a member
    /// learns nothing of it (its clients were judged by the owner).
    pub(super) reject_remote: bool,
    /// Effective uid and gid of the first instance's creator (in a member:
    /// of this process).
    pub(super) owner: (u32, u32),
}

impl Attrs {
    /// Whether `other` describes the same pipe (security and owner aside).
    pub(super) fn same_pipe(&self, other: &Attrs) -> bool {
        (
            self.direction,
            self.pipe_type,
            self.max_instances,
            self.default_timeout,
        ) == (
            other.direction,
            other.pipe_type,
            other.max_instances,
            other.default_timeout,
        )
    }
}
