//! Redirecting a child's standard input and output to pipes: the classic
//! Windows example of a parent that feeds a child's stdin and reads its
//! stdout.
//!
//! A program that knows nothing of shmpipe (`sort`, `cat`, `tr`) needs real
//! OS-level stdio, so in [`StdioMode::Relay`] (the default) the child gets
//! kernel pipes and one relay thread per stream copies between them and the
//! shared-memory pipe. The cost is one extra copy and one kernel pipe per
//! byte, which is exactly what such a child would cost without shmpipe.
//!
//! A child built with shmpipe can skip all that: in [`StdioMode::Native`]
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

use crate::inherit::CommandExt as _;
use crate::{PipeReader, PipeWriter};
use std::io;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread::JoinHandle;

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
    relays: Vec<JoinHandle<io::Result<u64>>>,
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
                    relays: Vec::new(),
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
                let mut relays = Vec::new();
                if let (Some(mut reader), Some(mut os_in)) = (self.stdin, child.stdin.take()) {
                    relays.push(std::thread::spawn(move || {
                        match io::copy(&mut reader, &mut os_in) {
                            // The child stopped reading: not our error.
                            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(0),
                            r => r,
                        }
                    }));
                }
                if let (Some(mut writer), Some(mut os_out)) = (self.stdout, child.stdout.take()) {
                    relays.push(std::thread::spawn(move || {
                        io::copy(&mut os_out, &mut writer)
                    }));
                }
                Ok(RedirectedChild { child, relays })
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
    /// drop(to_child); // lets the relay thread finish
    /// assert!(!child.wait()?.success());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn child_mut(&mut self) -> &mut Child {
        &mut self.child
    }

    /// Waits for the child and for the relays to finish; a relay's I/O error
    /// is returned after the child is reaped.
    ///
    /// ```
    /// use shmpipe::redirect::Redirect;
    /// use std::io::Read;
    /// let (mut from_child, child_out) = shmpipe::pipe()?;
    /// let child = Redirect::new().stdout(child_out).spawn(std::process::Command::new("pwd"))?;
    /// assert!(child.wait()?.success());
    /// let mut text = String::new();
    /// from_child.read_to_string(&mut text)?; // the relay has delivered everything
    /// assert!(text.ends_with('\n'));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn wait(mut self) -> io::Result<ExitStatus> {
        let status = self.child.wait()?;
        for r in self.relays.drain(..) {
            r.join()
                .map_err(|_| io::Error::other("relay thread panicked"))??;
        }
        Ok(status)
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
