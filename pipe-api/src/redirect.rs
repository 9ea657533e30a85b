//! Redirecting a child's standard input and output to pipes: the classic
//! Windows example of a parent that feeds a child's stdin and reads its
//! stdout.
//!
//! A program that knows nothing of shmpipe (`sort`, `cat`, `tr`) needs real
//! OS-level stdio, so in [`StdioMode::Relay`] (the default) the child gets
//! kernel pipes and one relay thread per stream copies between them and the
//! shared-memory pipe.
//!
//! A child built with shmpipe can skip the relay: in [`StdioMode::Native`]
//! the ends themselves are inherited, named by `SHMPIPE_STDIN` /
//! `SHMPIPE_STDOUT`, and the child picks them up with [`stdin`] / [`stdout`]:
//! the data never leaves shared memory.
//!
//! ```
//! use std::io::{Read, Write};
//! use std::process::Command;
//! use shmpipe::redirect::Redirect;
//!
//! let (child_in, mut to_child) = shmpipe::pipe()?;
//! let (mut from_child, child_out) = shmpipe::pipe()?;
//! let child = Redirect::new().stdin(child_in).stdout(child_out).spawn(Command::new("sort"))?;
//! to_child.write_all(b"pear\napple\n")?;
//! drop(to_child); // EOF for sort
//! let mut sorted = String::new();
//! from_child.read_to_string(&mut sorted)?;
//! assert!(child.wait()?.success());
//! assert_eq!(sorted, "apple\npear\n");
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! # What the relay costs
//!
//! More than the kernel pipe it replaces. Compared with giving the child a
//! kernel pipe directly ([`std::process::Stdio::piped`]), each relayed byte
//! is copied twice more and passes through one more thread. Towards the
//! child: the parent's write copies it into the shared ring, the relay
//! thread copies it out into its buffer, `write(2)` copies it into the
//! kernel pipe and the child's `read(2)` copies it out: four copies where a
//! kernel pipe makes two. From the child, the same path backwards. The relay
//! thread has to run for every batch (woken through the ring's wait policy
//! on one side, by the kernel pipe on the other), so each stream adds a
//! thread to schedule, which on a machine with few cores competes with the
//! parent and the child.
//!
//! Measured by hand (not a test or benchmark; a 2-vCPU VM, AMD EPYC, shared
//! with other work, release build): 256 MiB through `cat` and back,
//! the parent writing and reading 64 KiB at a time; the range of the
//! medians of 5 runs over three or four sessions:
//!
//! | stdio of `cat` | time |
//! |---|---|
//! | kernel pipes (`Stdio::piped()`), no shmpipe | 0.18-0.20 s |
//! | relay, pipes from [`crate::pipe()`] (4096-byte quota) | 0.36-0.43 s |
//! | relay, pipes with a 64 KiB quota | 0.30-0.36 s |
//! | native mode, a shmpipe child copying instead of `cat` | 0.15-0.17 s |
//!
//! So a relayed child takes about twice the time of one on plain kernel
//! pipes; the relay is for compatibility, and a child that can use
//! [`StdioMode::Native`] should. (The relays copy 64 KiB at a time, a
//! kernel pipe's default capacity; copying 8 KiB at a time, as
//! `std::io::copy` does, took up to twice as long again.)
//!
//! # Relay threads, SIGPIPE and the child's exit
//!
//! No relay write raises SIGPIPE, whatever the host's disposition of it (a
//! C host or a CLI tool may have the default one, which kills): the stdin
//! relay blocks SIGPIPE in its own thread and consumes the one a write into
//! a pipe nobody reads leaves pending. The relays treat a peer that stopped
//! reading as the end of their stream, not as an error: the stdin relay
//! ends when the child's stdin has no reader left, and then the parent's
//! writes into its end fail with [`ErrorKind::NoData`] (or
//! [`ErrorKind::BrokenPipe`] for a write that was waiting), both
//! [`io::ErrorKind::BrokenPipe`]; the stdout relay ends when the parent
//! closed its reader, and the child then gets `EPIPE` (or SIGPIPE) as from
//! any kernel pipe nobody reads. [`RedirectedChild::wait`] returns once the
//! child has exited and its output is delivered; it does not wait for the
//! stdin relay (see there).
//!
//! [`ErrorKind::NoData`]: crate::ErrorKind::NoData
//! [`ErrorKind::BrokenPipe`]: crate::ErrorKind::BrokenPipe

use crate::inherit::CommandExt as _;
use crate::{PipeReader, PipeWriter};
use std::io::{self, Read, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;

/// A relay's buffer: the default capacity of a kernel pipe, so that one
/// `write(2)` can fill it and one `read(2)` can empty it.
const RELAY_BUF: usize = 64 * 1024;

/// Names the inherited stdin end in a native child.
///
/// ```
/// use shmpipe::redirect::{Redirect, StdioMode};
/// use std::io::Read;
/// use std::process::{Command, Stdio};
/// let (reader, _writer) = shmpipe::pipe()?;
/// let mut cmd = Command::new("sh");
/// cmd.args(["-c", r#"printf %s "$SHMPIPE_STDIN""#]).stdout(Stdio::piped());
/// let mut child = Redirect::new().mode(StdioMode::Native).stdin(reader).spawn(cmd)?;
/// let mut token = String::new();
/// child.child_mut().stdout.take().unwrap().read_to_string(&mut token)?;
/// assert!(child.wait()?.success());
/// assert!(token.starts_with("shmpipe:anon-read:"));
/// # Ok::<(), std::io::Error>(())
/// ```
pub const ENV_STDIN: &str = "SHMPIPE_STDIN";
/// Names the inherited stdout end in a native child.
///
/// ```
/// use shmpipe::redirect::{Redirect, StdioMode};
/// use std::process::Command;
/// let (_reader, writer) = shmpipe::pipe()?;
/// let mut cmd = Command::new("sh");
/// cmd.args(["-c", r#"case "$SHMPIPE_STDOUT" in shmpipe:anon-write:*) exit 0;; esac; exit 1"#]);
/// let child = Redirect::new().mode(StdioMode::Native).stdout(writer).spawn(cmd)?;
/// assert!(child.wait()?.success());
/// # Ok::<(), std::io::Error>(())
/// ```
pub const ENV_STDOUT: &str = "SHMPIPE_STDOUT";

/// How the child's stdio is connected.
///
/// ```
/// use shmpipe::redirect::StdioMode;
/// assert_eq!(StdioMode::default(), StdioMode::Relay); // works with any program
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StdioMode {
    /// Kernel pipes as the child's stdio, relayed to the shmpipe ends by
    /// threads: works with any program.
    #[default]
    Relay,
    /// The shmpipe ends are inherited; the child (built with shmpipe) takes
    /// them with [`stdin`] and [`stdout`].
    Native,
}

/// Builds a child process whose stdin and/or stdout are pipes.
///
/// ```
/// use shmpipe::redirect::Redirect;
/// use std::io::{Read, Write};
/// use std::process::Command;
/// let (child_in, mut to_child) = shmpipe::pipe()?;
/// let (mut from_child, child_out) = shmpipe::pipe()?;
/// let child = Redirect::new().stdin(child_in).stdout(child_out).spawn(Command::new("cat"))?;
/// to_child.write_all(b"echoed")?;
/// drop(to_child);
/// let mut text = String::new();
/// from_child.read_to_string(&mut text)?;
/// assert!(child.wait()?.success());
/// assert_eq!(text, "echoed");
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Default)]
pub struct Redirect {
    stdin: Option<PipeReader>,
    stdout: Option<PipeWriter>,
    mode: StdioMode,
}

/// A running redirected child.
///
/// ```
/// use shmpipe::redirect::Redirect;
/// use std::process::Command;
/// let mut cmd = Command::new("sh");
/// cmd.args(["-c", "exit 3"]);
/// let child = Redirect::new().spawn(cmd)?;
/// assert_eq!(child.wait()?.code(), Some(3));
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct RedirectedChild {
    child: Child,
    /// Where the stdin relay records its error (not joined: see `wait`).
    stdin_relay: Option<Arc<Mutex<Option<io::Error>>>>,
    stdout_relay: Option<JoinHandle<io::Result<()>>>,
}

impl Redirect {
    /// Nothing redirected yet.
    ///
    /// ```
    /// use shmpipe::redirect::Redirect;
    /// let child = Redirect::new().spawn(std::process::Command::new("true"))?; // plain stdio
    /// assert!(child.wait()?.success());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// The child reads its stdin from `reader`.
    ///
    /// ```
    /// use shmpipe::redirect::Redirect;
    /// use std::io::Write;
    /// use std::process::Command;
    /// let (child_in, mut to_child) = shmpipe::pipe()?;
    /// let mut cmd = Command::new("sh");
    /// cmd.args(["-c", r#"read line && test "$line" = ping"#]);
    /// let child = Redirect::new().stdin(child_in).spawn(cmd)?;
    /// to_child.write_all(b"ping\n")?;
    /// drop(to_child);
    /// assert!(child.wait()?.success());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn stdin(mut self, reader: PipeReader) -> Self {
        self.stdin = Some(reader);
        self
    }

    /// The child writes its stdout to `writer`.
    ///
    /// ```
    /// use shmpipe::redirect::Redirect;
    /// use std::io::Read;
    /// use std::process::Command;
    /// let (mut from_child, child_out) = shmpipe::pipe()?;
    /// let mut cmd = Command::new("echo");
    /// cmd.arg("hi");
    /// let child = Redirect::new().stdout(child_out).spawn(cmd)?;
    /// let mut text = String::new();
    /// from_child.read_to_string(&mut text)?;
    /// assert!(child.wait()?.success());
    /// assert_eq!(text, "hi\n");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn stdout(mut self, writer: PipeWriter) -> Self {
        self.stdout = Some(writer);
        self
    }

    /// Relay (any child) or native (shmpipe child) stdio.
    ///
    /// ```
    /// use shmpipe::redirect::{Redirect, StdioMode};
    /// use std::process::Command;
    /// let has_token = || {
    ///     let mut cmd = Command::new("sh");
    ///     cmd.args(["-c", r#"test -n "$SHMPIPE_STDIN""#]);
    ///     cmd
    /// };
    /// let (reader, _writer) = shmpipe::pipe()?;
    /// let native = Redirect::new().mode(StdioMode::Native).stdin(reader).spawn(has_token())?;
    /// assert!(native.wait()?.success()); // the end itself was inherited
    /// let (reader, writer) = shmpipe::pipe()?;
    /// let relayed = Redirect::new().stdin(reader).spawn(has_token())?;
    /// drop(writer); // end of input for the relay
    /// assert!(!relayed.wait()?.success()); // a kernel pipe, no token
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn mode(mut self, mode: StdioMode) -> Self {
        self.mode = mode;
        self
    }

    /// Starts `cmd`. The ends are consumed: after this call the child (or
    /// the relays) hold them, so the parent's reader sees end-of-pipe when
    /// the child's output ends.
    ///
    /// ```
    /// use shmpipe::redirect::Redirect;
    /// let missing = std::process::Command::new("/nonexistent/program");
    /// let e = Redirect::new().spawn(missing).unwrap_err();
    /// assert_eq!(e.kind(), std::io::ErrorKind::NotFound);
    /// ```
    pub fn spawn(self, mut cmd: Command) -> io::Result<RedirectedChild> {
        match self.mode {
            StdioMode::Native => {
                if let Some(mut r) = self.stdin {
                    r.set_inheritable(true);
                    let token = cmd.inherit_end(&r)?;
                    cmd.env(ENV_STDIN, token);
                }
                if let Some(mut w) = self.stdout {
                    w.set_inheritable(true);
                    let token = cmd.inherit_end(&w)?;
                    cmd.env(ENV_STDOUT, token);
                }
                let child = cmd.spawn()?;
                // `cmd` holds the inherited duplicates until it is dropped.
                drop(cmd);
                Ok(RedirectedChild {
                    child,
                    stdin_relay: None,
                    stdout_relay: None,
                })
            }
            StdioMode::Relay => {
                if self.stdin.is_some() {
                    cmd.stdin(Stdio::piped());
                }
                if self.stdout.is_some() {
                    cmd.stdout(Stdio::piped());
                }
                let mut child = cmd.spawn()?;
                drop(cmd);
                let os_in = child.stdin.take();
                let os_out = child.stdout.take();
                let mut started = RedirectedChild {
                    child,
                    stdin_relay: None,
                    stdout_relay: None,
                };
                let relays = (|| -> io::Result<()> {
                    if let (Some(reader), Some(os_in)) = (self.stdin, os_in) {
                        started.stdin_relay = Some(spawn_stdin_relay(reader, os_in)?);
                    }
                    if let (Some(writer), Some(os_out)) = (self.stdout, os_out) {
                        started.stdout_relay = Some(
                            std::thread::Builder::new()
                                .name("shmpipe-stdout-relay".into())
                                .spawn(move || relay_stdout(os_out, writer))?,
                        );
                    }
                    Ok(())
                })();
                if let Err(e) = relays {
                    // No thread to relay: do not leave a child behind that
                    // waits for input that cannot come.
                    let _ = started.child.kill();
                    let _ = started.child.wait();
                    return Err(e);
                }
                Ok(started)
            }
        }
    }
}

/// Starts the thread that copies the parent's pipe into the child's stdin;
/// returns where it records an error.
fn spawn_stdin_relay(
    reader: PipeReader,
    os_in: ChildStdin,
) -> io::Result<Arc<Mutex<Option<io::Error>>>> {
    let slot = Arc::new(Mutex::new(None));
    let record = Arc::clone(&slot);
    std::thread::Builder::new()
        .name("shmpipe-stdin-relay".into())
        .spawn(move || {
            if let Err(e) = relay_stdin(reader, &os_in) {
                *record.lock().unwrap_or_else(PoisonError::into_inner) = Some(e);
            }
            // Only now: an error must be on record before the child can see
            // its input end and exit (see `RedirectedChild::wait`).
            drop(os_in);
        })?;
    Ok(slot)
}

/// The stdin relay: shared-memory pipe -> kernel pipe, until the parent's
/// end closes (end of input) or nobody reads the kernel pipe any more (the
/// child and whoever shares its stdin stopped reading: the end of this
/// stream, not an error; dropping `from` on return tells the parent's
/// writer).
fn relay_stdin(from: PipeReader, to: &ChildStdin) -> io::Result<()> {
    sigpipe::block_in_this_thread()?;
    relay(from, to, sigpipe::discard_pending)
}

/// The stdout relay: kernel pipe -> shared-memory pipe, until the child's
/// stdout closes (in the child and whoever inherited it) or the parent closes
/// its reader (dropping `from` then gives the child EPIPE, as a kernel pipe
/// nobody reads would). Writes into a shmpipe end never raise SIGPIPE.
fn relay_stdout(from: ChildStdout, to: PipeWriter) -> io::Result<()> {
    relay(from, to, || {})
}

/// Copies until `from` ends or `to` has no reader (`BrokenPipe`: then
/// `on_broken` runs and the relay ends without an error).
fn relay(mut from: impl Read, mut to: impl Write, on_broken: impl FnOnce()) -> io::Result<()> {
    let mut buf = vec![0u8; RELAY_BUF];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        match to.write_all(&buf[..n]) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {
                on_broken();
                return Ok(());
            }
            Err(e) => return Err(e),
        }
    }
}

/// Keeping SIGPIPE from the stdin relay's writes. Ignoring the signal
/// process-wide is not ours to do (the host may rely on its disposition),
/// so the relay thread blocks it: a write into a pipe without readers then
/// fails with `EPIPE` and leaves SIGPIPE pending on this thread only, where
/// it is consumed before anything could unblock it.
mod sigpipe {
    use std::io;
    use std::mem::MaybeUninit;

    fn set() -> libc::sigset_t {
        let mut set = MaybeUninit::<libc::sigset_t>::uninit();
        // SAFETY: `sigemptyset` initialises the set it is given; `sigaddset`
        // then gets an initialised set and a valid signal number.
        unsafe {
            libc::sigemptyset(set.as_mut_ptr());
            libc::sigaddset(set.as_mut_ptr(), libc::SIGPIPE);
            set.assume_init()
        }
    }

    /// Blocks SIGPIPE in the calling thread (a relay thread, which ends
    /// with it blocked).
    pub(super) fn block_in_this_thread() -> io::Result<()> {
        let set = set();
        // SAFETY: `set` is an initialised signal set; a null old set is
        // allowed. Only this thread's mask changes.
        let rc = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
        if rc == 0 {
            Ok(())
        } else {
            Err(io::Error::from_raw_os_error(rc))
        }
    }

    /// After `EPIPE`: takes the SIGPIPE that write left pending on this
    /// thread (a thread-directed signal is taken before a process-wide
    /// one), if any, without waiting.
    pub(super) fn discard_pending() {
        let set = set();
        let now = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        loop {
            // SAFETY: `set` and `now` are initialised and outlive the call;
            // a null `siginfo` pointer is allowed.
            let rc = unsafe { libc::sigtimedwait(&set, std::ptr::null_mut(), &now) };
            if rc != -1 || io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
                return;
            }
        }
    }
}

impl RedirectedChild {
    /// The child's process id.
    ///
    /// ```
    /// use shmpipe::redirect::Redirect;
    /// let child = Redirect::new().spawn(std::process::Command::new("true"))?;
    /// assert_ne!(child.id(), std::process::id());
    /// child.wait()?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// The child process (to signal it, for example).
    ///
    /// ```
    /// use shmpipe::redirect::Redirect;
    /// let (child_in, to_child) = shmpipe::pipe()?;
    /// let mut child = Redirect::new().stdin(child_in).spawn(std::process::Command::new("cat"))?;
    /// child.child_mut().kill()?; // `cat` would wait for input forever
    /// assert!(!child.wait()?.success()); // even while `to_child` is open
    /// # drop(to_child);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn child_mut(&mut self) -> &mut Child {
        &mut self.child
    }

    /// Waits for the child to exit and for its output to be delivered (the
    /// stdout relay reaches the end of the child's stdout: if the child left
    /// a copy of its stdout to a process still running, that process's end
    /// of it too), and returns the child's exit status. A relay's I/O error
    /// is returned instead, after the child is reaped.
    ///
    /// The stdin relay is not waited for: it can be blocked on the parent's
    /// end of the pipe for as long as the parent keeps that end open, child
    /// or no child. It ends by itself, and with it its thread and its two
    /// descriptors (the pipe's read end and the write end of the kernel pipe
    /// that is the child's stdin):
    ///
    /// * when the parent closes its write end (end of input), or
    /// * at the first bytes it forwards once nobody reads the child's stdin
    ///   (the write gets `EPIPE`); from then on the parent's writes fail
    ///   with [`ErrorKind::NoData`] (a write that was waiting: with
    ///   [`ErrorKind::BrokenPipe`]; both are [`io::ErrorKind::BrokenPipe`]).
    ///   The bytes written after the child exited and before that are lost,
    ///   as they would be in a kernel pipe.
    ///
    /// Until then it forwards to whoever still reads the child's stdin (a
    /// process the child started in the background, say). Its descriptors
    /// are close-on-exec, so later children do not inherit them. An error of
    /// the stdin relay is returned if it happened before the child exited
    /// (the child then saw its input end early).
    ///
    /// [`ErrorKind::NoData`]: crate::ErrorKind::NoData
    /// [`ErrorKind::BrokenPipe`]: crate::ErrorKind::BrokenPipe
    ///
    /// ```
    /// use shmpipe::redirect::Redirect;
    /// use std::io::{Read, Write};
    /// let (mut from_child, child_out) = shmpipe::pipe()?;
    /// let child = Redirect::new().stdout(child_out).spawn(std::process::Command::new("pwd"))?;
    /// assert!(child.wait()?.success());
    /// let mut text = String::new();
    /// from_child.read_to_string(&mut text)?; // the relay has delivered everything
    /// assert!(text.ends_with('\n'));
    ///
    /// // A child that exits without reading its input, while the parent
    /// // still holds the write end: `wait` returns all the same.
    /// let (child_in, mut to_child) = shmpipe::pipe()?;
    /// let child = Redirect::new().stdin(child_in).spawn(std::process::Command::new("true"))?;
    /// assert!(child.wait()?.success());
    /// let late = to_child.write_all(&vec![0; 1 << 20]).unwrap_err(); // nobody reads it
    /// assert_eq!(late.kind(), std::io::ErrorKind::BrokenPipe);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn wait(mut self) -> io::Result<ExitStatus> {
        let status = self.child.wait()?;
        let stdout = match self.stdout_relay.take() {
            Some(relay) => relay
                .join()
                .map_err(|_| io::Error::other("relay thread panicked"))?,
            None => Ok(()),
        };
        // Recorded before the relay let go of the child's stdin, so before
        // an exit that followed from it.
        let stdin = self
            .stdin_relay
            .take()
            .and_then(|slot| slot.lock().unwrap_or_else(PoisonError::into_inner).take());
        stdout?;
        match stdin {
            Some(e) => Err(e),
            None => Ok(status),
        }
    }
}

/// In a child started with [`StdioMode::Native`], the inherited stdin end.
/// `Ok(None)` when the parent passed none.
///
/// ```
/// use shmpipe::redirect::{self, Redirect, StdioMode};
/// use std::io::{Read, Write};
/// if let Some(mut input) = redirect::stdin()? {
///     // The child: this same program, started below in native mode.
///     let mut text = String::new();
///     input.read_to_string(&mut text)?;
///     redirect::stdout()?.unwrap().write_all(text.to_uppercase().as_bytes())?;
///     return Ok(());
/// }
/// let (child_in, mut to_child) = shmpipe::pipe()?;
/// let (mut from_child, child_out) = shmpipe::pipe()?;
/// let child = Redirect::new()
///     .mode(StdioMode::Native)
///     .stdin(child_in)
///     .stdout(child_out)
///     .spawn(std::process::Command::new(std::env::current_exe()?))?;
/// to_child.write_all(b"shared memory all the way")?;
/// drop(to_child);
/// let mut text = String::new();
/// from_child.read_to_string(&mut text)?;
/// assert!(child.wait()?.success());
/// assert_eq!(text, "SHARED MEMORY ALL THE WAY");
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn stdin() -> io::Result<Option<PipeReader>> {
    match std::env::var(ENV_STDIN) {
        Ok(token) => PipeReader::from_inherited(&token).map(Some),
        Err(_) => Ok(None),
    }
}

/// In a child started with [`StdioMode::Native`], the inherited stdout end.
///
/// ```
/// // This process was not started by a native `Redirect` (`stdin()` shows one that is).
/// assert!(shmpipe::redirect::stdout()?.is_none());
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn stdout() -> io::Result<Option<PipeWriter>> {
    match std::env::var(ENV_STDOUT) {
        Ok(token) => PipeWriter::from_inherited(&token).map(Some),
        Err(_) => Ok(None),
    }
}
