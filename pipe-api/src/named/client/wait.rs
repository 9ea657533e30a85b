//! Waiting for an instance ([`wait_available`], spec 4.5) and the whole
//! request/reply of [`call`] (Windows' `CallNamedPipe`, spec 4.10).
//!
//! `WAIT` asks the process that owns the name, after the kernel said who it
//! is (the same trust rule as `open`); the owner answers at once, or first
//! tells its default timeout and answers when an instance listens, or
//! hangs up when the name vanishes.

use super::err;
use super::ClientOptions;
use crate::datapath::MsgRead;
use crate::error::{Error, ErrorKind};
use crate::info::ReadMode;
use crate::named::name::PipeName;
use crate::named::options::{Access, WaitTimeout};
use crate::named::trust::{Role, TrustRule};
use crate::named::wire;
use std::io;
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

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
        wait(name, timeout, &self.trust, None)
    }

    /// [`ClientOptions::wait_available`] that also ends, with
    /// `OperationAborted`, as soon as `cancel` becomes readable (the async
    /// layer's future writes it when dropped, so the blocking thread that
    /// runs this wait does not outlive the future).
    #[cfg(feature = "tokio")]
    pub(crate) fn wait_available_cancellable(
        &self,
        name: &str,
        timeout: WaitTimeout,
        cancel: std::os::fd::BorrowedFd<'_>,
    ) -> io::Result<()> {
        wait(name, timeout, &self.trust, Some(cancel))
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

/// Waits until `sock` is readable, for at most `t` (`None`: no limit), or
/// until `cancel` is readable (`OperationAborted`). Without `cancel`, the
/// receive's own timeout does the waiting.
fn await_answer(
    sock: &std::os::fd::OwnedFd,
    cancel: Option<std::os::fd::BorrowedFd<'_>>,
    t: Option<Duration>,
) -> io::Result<()> {
    use rustix::event::{poll, PollFd, PollFlags};
    let Some(cancel) = cancel else {
        return Ok(());
    };
    let deadline = t.map(|t| Instant::now() + t);
    loop {
        let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        let ts = left.map(|l| rustix::time::Timespec {
            tv_sec: l.as_secs() as _,
            tv_nsec: l.subsec_nanos() as _,
        });
        let mut fds = [
            PollFd::new(sock, PollFlags::IN),
            PollFd::from_borrowed_fd(cancel, PollFlags::IN),
        ];
        match poll(&mut fds, ts.as_ref()) {
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
            Ok(_) if !fds[1].revents().is_empty() => return Err(err(ErrorKind::OperationAborted)),
            // Readable, hung up or failed: the receive says which.
            Ok(_) if !fds[0].revents().is_empty() => return Ok(()),
            Ok(_) => return Err(err(ErrorKind::Timeout)),
        }
    }
}

fn wait(
    name: &str,
    timeout: WaitTimeout,
    trust: &TrustRule,
    cancel: Option<std::os::fd::BorrowedFd<'_>>,
) -> io::Result<()> {
    let start = Instant::now();
    let name = match PipeName::for_client(name) {
        Ok(n) => n,
        // Another machine's pipe: its gateway waits (and stops waiting
        // when `cancel` ends ours).
        #[cfg(feature = "remote")]
        Err(e) if Error::kind_of(&e) == Some(ErrorKind::BadNetPath) => {
            return crate::remote::client::wait(name, timeout, trust.for_remote(), cancel);
        }
        Err(e) => return Err(e),
    };
    let sock = wire::connect(&name.socket_name())?.ok_or_else(|| err(ErrorKind::FileNotFound))?;
    // The process listening on the name's socket answers: the kernel says
    // who it is before we ask anything.
    let owner = wire::peer_cred(&sock).map_err(|_| err(ErrorKind::FileNotFound))?;
    trust.check(Role::Server, owner.pid, owner.uid, owner.gid)?;
    let mut req = vec![wire::REQ_WAIT];
    req.extend_from_slice(name.key().as_bytes());
    wire::send(sock.as_fd(), &req, None).map_err(|_| err(ErrorKind::FileNotFound))?;
    let mut buf = [0u8; 16];
    await_answer(&sock, cancel, Some(Duration::from_secs(10)))?;
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
    await_answer(&sock, cancel, remaining)?;
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
