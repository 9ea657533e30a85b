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
pub const ENV_STDIN: &str = "SHMPIPE_STDIN";
/// Names the inherited stdout end in a native child.
pub const ENV_STDOUT: &str = "SHMPIPE_STDOUT";

/// How the child's stdio is connected.
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
#[derive(Debug, Default)]
pub struct Redirect {
    stdin: Option<PipeReader>,
    stdout: Option<PipeWriter>,
    mode: StdioMode,
}

/// A running redirected child.
#[derive(Debug)]
pub struct RedirectedChild {
    child: Child,
    relays: Vec<JoinHandle<io::Result<u64>>>,
}

impl Redirect {
    /// Nothing redirected yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// The child reads its stdin from `reader`.
    pub fn stdin(mut self, reader: PipeReader) -> Self {
        self.stdin = Some(reader);
        self
    }

    /// The child writes its stdout to `writer`.
    pub fn stdout(mut self, writer: PipeWriter) -> Self {
        self.stdout = Some(writer);
        self
    }

    /// Relay (any child) or native (shmpipe child) stdio.
    pub fn mode(mut self, mode: StdioMode) -> Self {
        self.mode = mode;
        self
    }

    /// Starts `cmd`. The ends are consumed: after this call the child (or
    /// the relays) hold them, so the parent's reader sees end-of-pipe when
    /// the child's output ends.
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
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// The child process (to signal it, for example).
    pub fn child_mut(&mut self) -> &mut Child {
        &mut self.child
    }

    /// Waits for the child and for the relays to finish; a relay's I/O error
    /// is returned after the child is reaped.
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
pub fn stdin() -> io::Result<Option<PipeReader>> {
    match std::env::var(ENV_STDIN) {
        Ok(token) => PipeReader::from_inherited(&token).map(Some),
        Err(_) => Ok(None),
    }
}

/// In a child started with [`StdioMode::Native`], the inherited stdout end.
pub fn stdout() -> io::Result<Option<PipeWriter>> {
    match std::env::var(ENV_STDOUT) {
        Ok(token) => PipeWriter::from_inherited(&token).map(Some),
        Err(_) => Ok(None),
    }
}
