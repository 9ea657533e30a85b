//! Handing pipe ends to child processes (spec 1.6).
//!
//! [`CommandExt::inherit_end`] arranges for one end to survive `exec` in the
//! child, *and only that end*: every descriptor this crate opens is
//! close-on-exec, and the flag is cleared in the child alone, between `fork`
//! and `exec` (clearing it in the parent would leak the end into any process
//! another thread spawns at the same moment). It returns a *token* to give
//! the child (as an argument or an environment variable); the child turns it
//! back into the end with [`PipeReader::from_inherited`] or
//! [`PipeWriter::from_inherited`].
//!
//! The child accepts a token only for a descriptor its parent announced in
//! the `SHMPIPE_INHERITED` environment variable, and only once, so a forged
//! or repeated token cannot make two owners of one descriptor.
//!
//! ```no_run
//! use shmpipe::{CommandExt, PipeBuilder};
//! use std::process::Command;
//! let (reader, writer) = PipeBuilder::new().inheritable(true).build()?;
//! let mut cmd = Command::new("my-shmpipe-child");
//! let token = cmd.inherit_end(&writer)?;
//! let child = cmd.arg(token).spawn()?;
//! drop((writer, cmd)); // the child holds the write end now: EOF comes when it exits
//! # drop((reader, child));
//! # Ok::<(), std::io::Error>(())
//! ```

use crate::error::{Error, ErrorKind};
use crate::{PipeReader, PipeWriter};
use rustix::io::FdFlags;
use std::collections::HashSet;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt as _;
use std::process::Command;
use std::sync::Mutex;

/// The environment variable listing the descriptors a parent passed.
///
/// ```
/// use shmpipe::{inherit::ENV_INHERITED, CommandExt, PipeBuilder};
/// let (_reader, writer) = PipeBuilder::new().inheritable(true).build()?;
/// let mut cmd = std::process::Command::new("true");
/// let token = cmd.inherit_end(&writer)?;
/// let (_, fds) = cmd.get_envs().find(|(k, _)| *k == ENV_INHERITED).unwrap();
/// let fd = fds.unwrap().to_str().unwrap();
/// assert_eq!(token, format!("shmpipe:anon-write:{fd}"));
/// # Ok::<(), std::io::Error>(())
/// ```
pub const ENV_INHERITED: &str = "SHMPIPE_INHERITED";

mod sealed {
    pub trait Sealed {}
}

/// A pipe end that can be passed to a child process.
///
/// ```
/// use shmpipe::inherit::InheritableEnd;
/// use shmpipe::CommandExt;
/// use std::process::Command;
/// fn pass_to<E: InheritableEnd>(cmd: &mut Command, end: &E) -> std::io::Result<String> {
///     cmd.inherit_end(end)
/// }
/// let (reader, writer) = shmpipe::PipeBuilder::new().inheritable(true).build()?;
/// let mut cmd = Command::new("true");
/// assert!(pass_to(&mut cmd, &reader)?.starts_with("shmpipe:anon-read:"));
/// assert!(pass_to(&mut cmd, &writer)?.starts_with("shmpipe:anon-write:"));
/// # Ok::<(), std::io::Error>(())
/// ```
pub trait InheritableEnd: AsFd + sealed::Sealed {
    /// The token tag of this end type.
    #[doc(hidden)]
    const TAG: &'static str;
    /// Whether the handle was created (or marked) inheritable.
    ///
    /// ```
    /// use shmpipe::inherit::InheritableEnd;
    /// let (reader, _writer) = shmpipe::pipe()?;
    /// assert!(!InheritableEnd::inheritable(&reader));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    fn inheritable(&self) -> bool;
}

impl sealed::Sealed for PipeReader {}
impl InheritableEnd for PipeReader {
    const TAG: &'static str = "anon-read";
    fn inheritable(&self) -> bool {
        self.is_inheritable()
    }
}
impl sealed::Sealed for PipeWriter {}
impl InheritableEnd for PipeWriter {
    const TAG: &'static str = "anon-write";
    fn inheritable(&self) -> bool {
        self.is_inheritable()
    }
}

/// Extends [`Command`] with pipe-end inheritance.
///
/// ```
/// use shmpipe::{CommandExt, PipeBuilder, PipeWriter};
/// use std::io::{Read, Write};
/// if let Ok(token) = std::env::var("DOC_COMMAND_EXT_TOKEN") {
///     // The child: this same program, started below.
///     PipeWriter::from_inherited(&token)?.write_all(b"from the child")?;
///     return Ok(());
/// }
/// let (mut reader, writer) = PipeBuilder::new().inheritable(true).build()?;
/// let mut cmd = std::process::Command::new(std::env::current_exe()?);
/// let token = cmd.inherit_end(&writer)?;
/// let mut child = cmd.env("DOC_COMMAND_EXT_TOKEN", token).spawn()?;
/// drop((writer, cmd)); // only the child holds the write end now
/// let mut text = String::new();
/// reader.read_to_string(&mut text)?; // until the child's end closes
/// assert!(child.wait()?.success());
/// assert_eq!(text, "from the child");
/// # Ok::<(), std::io::Error>(())
/// ```
pub trait CommandExt {
    /// Lets the child inherit `end` and returns the token that names it in
    /// the child. Refuses an end whose handle is not inheritable
    /// ([`ErrorKind::AccessDenied`]): like Windows, only inheritable handles
    /// reach a child.
    ///
    /// ```
    /// use shmpipe::{CommandExt, Error, ErrorKind, PipeBuilder};
    /// let (_r, w) = PipeBuilder::new().build()?; // not inheritable
    /// let err = std::process::Command::new("true").inherit_end(&w).unwrap_err();
    /// assert_eq!(Error::kind_of(&err), Some(ErrorKind::AccessDenied));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    fn inherit_end<E: InheritableEnd>(&mut self, end: &E) -> io::Result<String>;
}

impl CommandExt for Command {
    fn inherit_end<E: InheritableEnd>(&mut self, end: &E) -> io::Result<String> {
        if !end.inheritable() {
            return Err(Error::with_source(
                ErrorKind::AccessDenied,
                "the handle is not inheritable",
            )
            .into());
        }
        // A privileged parent may start the child under another uid
        // (`Command::uid`), which reopens the segment by path: it must be
        // allowed to (segments are owner-only). An unprivileged parent's
        // children keep its uid, and its segments stay owner-only.
        if rustix::process::geteuid().is_root() {
            let _ = shmpipe_engine::Segment::share_with_any(end.as_fd());
        }
        // A private duplicate, owned by the command until it is dropped, so
        // the number stays valid whatever the caller does with `end`.
        let dup = rustix::io::fcntl_dupfd_cloexec(end.as_fd(), 3)
            .map_err(|e| crate::error::from_os(e.into()))?;
        let raw = dup.as_raw_fd();
        let list = self
            .get_envs()
            .find(|(k, _)| *k == ENV_INHERITED)
            .and_then(|(_, v)| v.map(|v| v.to_string_lossy().into_owned()))
            .filter(|v| !v.is_empty());
        let list = match list {
            Some(prev) => format!("{prev},{raw}"),
            None => raw.to_string(),
        };
        self.env(ENV_INHERITED, list);
        // SAFETY: the closure runs in the child between fork and exec; it
        // only makes one fcntl system call on a descriptor the closure owns
        // (so it is open), which is async-signal-safe, and allocates nothing.
        unsafe {
            self.pre_exec(move || {
                rustix::io::fcntl_setfd(&dup, FdFlags::empty())?;
                Ok(())
            });
        }
        Ok(format!("shmpipe:{}:{raw}", E::TAG))
    }
}

static TAKEN: Mutex<Option<HashSet<RawFd>>> = Mutex::new(None);

/// Claims the descriptor a token names, once.
pub(crate) fn take_inherited(token: &str, tag: &str) -> io::Result<OwnedFd> {
    let bad = |why: &'static str| -> io::Error {
        Error::with_source(ErrorKind::InvalidHandle, why).into()
    };
    let mut parts = token.splitn(3, ':');
    let (Some("shmpipe"), Some(t), Some(n)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(bad("not a shmpipe inheritance token"));
    };
    if t != tag {
        return Err(
            Error::with_source(ErrorKind::AccessDenied, "the token names the other end").into(),
        );
    }
    let fd: RawFd = n
        .parse()
        .map_err(|_| bad("bad descriptor number in token"))?;
    let announced = std::env::var(ENV_INHERITED).unwrap_or_default();
    if fd < 3 || !announced.split(',').any(|s| s == n) {
        return Err(bad("the parent did not pass this descriptor"));
    }
    let mut taken = TAKEN.lock().unwrap_or_else(|e| e.into_inner());
    if !taken.get_or_insert_with(HashSet::new).insert(fd) {
        return Err(bad("the descriptor was already taken"));
    }
    // SAFETY: the descriptor is only borrowed for this check; a closed one
    // makes fcntl fail with EBADF, which is reported.
    let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
    rustix::io::fcntl_getfd(borrowed).map_err(|_| bad("the descriptor is not open"))?;
    // Do not leak it further into our own children.
    rustix::io::fcntl_setfd(borrowed, FdFlags::CLOEXEC)?;
    // SAFETY: the parent announced this descriptor as passed to us, it is
    // open, and `TAKEN` guarantees this process claims it at most once, so
    // nobody else in this process owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

impl PipeReader {
    /// Takes the read end a parent passed with
    /// [`CommandExt::inherit_end`], named by its token. Fails with
    /// [`ErrorKind::InvalidHandle`] for a token the parent did not issue (or
    /// one already used) and [`ErrorKind::AccessDenied`] for a write end's
    /// token.
    ///
    /// ```
    /// use shmpipe::{Error, ErrorKind, PipeReader};
    /// // A real token comes from the parent (see `CommandExt`); a forged one is refused.
    /// let e = PipeReader::from_inherited("shmpipe:anon-read:7").unwrap_err();
    /// assert_eq!(Error::kind_of(&e), Some(ErrorKind::InvalidHandle));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn from_inherited(token: &str) -> io::Result<PipeReader> {
        let fd = take_inherited(token, <PipeReader as InheritableEnd>::TAG)?;
        let mut r = PipeReader::from_fd(fd)?;
        r.set_inheritable(true);
        Ok(r)
    }
}

impl PipeWriter {
    /// Takes the write end a parent passed; see
    /// [`PipeReader::from_inherited`].
    ///
    /// ```
    /// use shmpipe::{Error, ErrorKind, PipeWriter};
    /// let e = PipeWriter::from_inherited("shmpipe:anon-read:7").unwrap_err();
    /// assert_eq!(Error::kind_of(&e), Some(ErrorKind::AccessDenied)); // a read end's token
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn from_inherited(token: &str) -> io::Result<PipeWriter> {
        let fd = take_inherited(token, <PipeWriter as InheritableEnd>::TAG)?;
        let mut w = PipeWriter::from_fd(fd)?;
        w.set_inheritable(true);
        Ok(w)
    }
}
