//! The control protocol between the benchmark process and a peer process:
//! starting the peer ([`Process::spawn`]), the line-oriented control socket
//! ([`Control`]), and the helpers every role parses its commands with. The
//! roles ([`link`](super::link), [`kill`](super::kill) and
//! [`connect`](crate::connect)'s server) build on this module; it knows
//! none of them.
//!
//! # Spawning
//!
//! [`Process::spawn`] re-executes the current binary
//! (`std::env::current_exe()`) with [`PEER_ENV`] set. The child's
//! descriptors travel by inheritance: the parent duplicates each one above
//! [`STAGING_MIN`] (close-on-exec, so nothing leaks anywhere else), and the
//! `pre_exec` hook of the child alone `dup2`s them to fixed numbers (control
//! socket at [`CONTROL_FD`], the role's descriptors after it), which
//! clears close-on-exec on the copies only. The parent then closes its own
//! copies of the child's ends: a pipe's EOF and an end's liveness lock must
//! depend on the child alone. The child also asks for `SIGKILL` when its
//! parent dies, so a killed benchmark never leaves a spinning orphan.
//! Strings a role needs besides descriptors (the name a named pipe is
//! opened by) travel in the child's environment ([`PEER_ARG_ENV`]).

use crate::policy;
use rustix::fd::{AsRawFd, OwnedFd, RawFd};
use shmpipe_engine::WaitPolicy;
use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// Environment variable that turns a process into a peer: `kind=<name>;
/// fds=<n>;args=<n>;cpu=<n|none>`, where `<name>` is a transport's name or
/// [`CONNECT_ROLE`] or [`KILL_ROLE`].
pub const PEER_ENV: &str = "SHMPIPE_BENCH_PEER";
/// Prefix of the environment variables carrying the peer's string arguments
/// (`SHMPIPE_BENCH_PEER_ARG0`, ...): whatever a transport needs besides
/// descriptors, such as a named pipe's name.
pub const PEER_ARG_ENV: &str = "SHMPIPE_BENCH_PEER_ARG";
/// The peer role that serves the connection set-up measurement.
pub const CONNECT_ROLE: &str = "connect-server";
/// The peer role that holds one pipe end until it is SIGKILLed, for the
/// killed-peer measurement of [`crate::liveness`].
pub const KILL_ROLE: &str = "kill";
/// The control socket's descriptor number in the child.
pub const CONTROL_FD: RawFd = 100;
/// Where the transport's descriptors start in the child.
pub const FIRST_LINK_FD: RawFd = CONTROL_FD + 1;
/// Parent-side copies are made at or above this number, clear of the
/// targets, so one `dup2` can never overwrite the source of another.
pub const STAGING_MIN: RawFd = 200;

/// How long a control reply may take. Replies come right after the child's
/// work, which ends when the parent's does, so this only catches a wedged
/// peer.
const CONTROL_TIMEOUT: Duration = Duration::from_secs(60);
/// Size of round-trip messages and of the stream acknowledgement.
pub const SMALL: usize = 64;

/// A line-oriented control connection.
pub(crate) struct Control {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
}

impl Control {
    pub(crate) fn new(sock: UnixStream) -> io::Result<Control> {
        Ok(Control {
            writer: sock.try_clone()?,
            reader: BufReader::new(sock),
        })
    }

    /// Sends one line (a newline inside `line` would split it: it becomes a
    /// space).
    pub(crate) fn send(&mut self, line: &str) -> io::Result<()> {
        self.writer
            .write_all(format!("{}\n", line.replace('\n', " ")).as_bytes())
    }

    /// The next line, `None` at EOF.
    pub(crate) fn recv(&mut self) -> io::Result<Option<String>> {
        let mut s = String::new();
        if self.reader.read_line(&mut s)? == 0 {
            return Ok(None);
        }
        Ok(Some(s.trim_end().to_owned()))
    }

    fn set_timeout(&self, t: Duration) -> io::Result<()> {
        self.reader.get_ref().set_read_timeout(Some(t))
    }
}

pub(crate) fn protocol_error(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

/// A running peer process and the parent's end of its control socket.
pub(crate) struct Process {
    child: Child,
    ctl: Control,
    /// The protocol is out of step (an error mid-command): kill, don't ask.
    broken: bool,
    reaped: bool,
    pinned: bool,
}

impl Process {
    /// Starts the current binary as a peer with `role` (a transport name,
    /// [`CONNECT_ROLE`] or [`KILL_ROLE`]), handing it `fds` (which only the child holds
    /// afterwards) and `args`, pinned to `cpu` if given; returns once it
    /// said hello.
    pub(crate) fn spawn(
        role: &str,
        fds: Vec<OwnedFd>,
        args: &[String],
        cpu: Option<usize>,
    ) -> io::Result<Process> {
        let (ctl_parent, ctl_child) = UnixStream::pair()?;
        let mut staged = vec![rustix::io::fcntl_dupfd_cloexec(&ctl_child, STAGING_MIN)?];
        for fd in &fds {
            staged.push(rustix::io::fcntl_dupfd_cloexec(fd, STAGING_MIN)?);
        }
        let moves: Vec<(RawFd, RawFd)> = staged
            .iter()
            .zip(CONTROL_FD..)
            .map(|(fd, to)| (fd.as_raw_fd(), to))
            .collect();
        let spec = format!(
            "kind={role};fds={};args={};cpu={}",
            fds.len(),
            args.len(),
            cpu.map_or_else(|| "none".to_owned(), |c| c.to_string())
        );
        let mut cmd = Command::new(std::env::current_exe()?);
        cmd.env(PEER_ENV, spec)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        for (i, arg) in args.iter().enumerate() {
            cmd.env(format!("{PEER_ARG_ENV}{i}"), arg);
        }
        // SAFETY: the hook runs in the forked child before exec. It only
        // makes async-signal-safe system calls (dup2, prctl) on numbers
        // computed before the fork, reads a Vec allocated before the fork,
        // and neither allocates nor takes locks. The sources are open
        // (held by `staged` until after spawn) and lie above every target.
        unsafe {
            cmd.pre_exec(move || {
                for &(from, to) in &moves {
                    if libc::dup2(from, to) < 0 {
                        return Err(io::Error::last_os_error());
                    }
                }
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) < 0 {
                    return Err(io::Error::last_os_error());
                }
                Ok(())
            })
        };
        let child = cmd.spawn()?;
        // Only the child may hold its ends from now on.
        drop(staged);
        drop(fds);
        drop(ctl_child);

        let ctl = Control::new(ctl_parent)?;
        ctl.set_timeout(CONTROL_TIMEOUT)?;
        let mut process = Process {
            child,
            ctl,
            broken: false,
            reaped: false,
            pinned: false,
        };
        let hello = process.expect("hello")?;
        process.pinned = hello.split_whitespace().any(|w| w == "pinned=1");
        Ok(process)
    }

    /// Whether the peer pinned itself to the CPU it was given.
    pub(crate) fn pinned(&self) -> bool {
        self.pinned
    }

    /// Reads the next control line, which must start with `what`.
    pub(crate) fn expect(&mut self, what: &str) -> io::Result<String> {
        let r = match self.ctl.recv() {
            Ok(Some(line)) if line.split_whitespace().next() == Some(what) => Ok(line),
            Ok(Some(line)) => match line.strip_prefix("error ") {
                Some(why) => Err(io::Error::other(format!("the peer reported: {why}"))),
                None => Err(protocol_error(format!(
                    "the peer sent {line:?}, expected {what:?}"
                ))),
            },
            // A peer that dies with unread control lines resets the socket.
            Ok(None) => Err(self.exited()),
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => Err(self.exited()),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "the peer did not answer on the control socket",
                ))
            }
            Err(e) => Err(e),
        };
        if r.is_err() {
            self.broken = true;
        }
        r
    }

    fn exited(&mut self) -> io::Error {
        let status = match self.child.wait() {
            Ok(s) => {
                self.reaped = true;
                s.to_string()
            }
            Err(e) => e.to_string(),
        };
        io::Error::other(format!("the peer exited unexpectedly ({status})"))
    }

    /// Turns an error of the measured transport into one that says what the
    /// peer saw, if it reported anything.
    pub(crate) fn link_failed(&mut self, e: io::Error) -> io::Error {
        self.broken = true;
        let _ = self.ctl.set_timeout(Duration::from_secs(2));
        match self.ctl.recv() {
            Ok(Some(line)) if line.starts_with("error ") => {
                io::Error::new(e.kind(), format!("{e} (the peer reported: {})", &line[6..]))
            }
            _ => e,
        }
    }

    /// Sends a command line.
    pub(crate) fn command(&mut self, line: &str) -> io::Result<()> {
        if self.broken {
            return Err(io::Error::other(
                "the peer is unusable after an earlier error",
            ));
        }
        if let Err(e) = self.ctl.send(line) {
            self.broken = true;
            return Err(e);
        }
        Ok(())
    }

    /// Marks the protocol as out of step (the peer is killed, not asked, at
    /// the end).
    pub(crate) fn set_broken(&mut self) {
        self.broken = true;
    }

    /// Sends the peer `SIGKILL` at once (the protocol is over: it is reaped,
    /// not asked, from now on).
    pub(crate) fn kill(&mut self) -> io::Result<()> {
        self.broken = true;
        self.child.kill()
    }

    /// Reaps the peer, which must have died of `SIGKILL`.
    pub(crate) fn expect_killed(&mut self) -> io::Result<()> {
        let status = self.child.wait()?;
        self.reaped = true;
        if status.signal() == Some(libc::SIGKILL) {
            Ok(())
        } else {
            Err(io::Error::other(format!(
                "the peer ended with {status}, not by the kill"
            )))
        }
    }

    /// Tells the peer to quit and reaps it.
    pub(crate) fn quit(mut self) -> io::Result<ExitStatus> {
        self.command("quit")?;
        let status = self.reap()?;
        if status.success() {
            Ok(status)
        } else {
            Err(io::Error::other(format!("the peer exited with {status}")))
        }
    }

    /// Waits up to 5 s for the child, then kills it.
    fn reap(&mut self) -> io::Result<ExitStatus> {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            if let Some(s) = self.child.try_wait()? {
                self.reaped = true;
                return Ok(s);
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                let s = self.child.wait()?;
                self.reaped = true;
                return Ok(s);
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if self.reaped {
            return;
        }
        if self.broken || self.ctl.send("quit").is_err() {
            let _ = self.child.kill();
        }
        let _ = self.reap();
    }
}

/// Pins the calling thread to `cpu`, if given; whether it worked.
pub(crate) fn pin(cpu: Option<usize>) -> bool {
    cpu.is_some_and(|c| crate::affinity::pin_current_thread(c).is_ok())
}

pub(crate) fn num<T: std::str::FromStr>(w: Option<&str>) -> io::Result<T> {
    w.and_then(|s| s.parse().ok())
        .ok_or_else(|| protocol_error("malformed command".into()))
}

/// Parses the arguments of a `policy` command.
pub(crate) fn parse_policy<'a>(mut w: impl Iterator<Item = &'a str>) -> io::Result<WaitPolicy> {
    match (w.next(), w.next()) {
        (Some(spin), Some(slice)) => policy::decode_wait(spin, slice),
        _ => None,
    }
    .ok_or_else(|| protocol_error("bad policy command".into()))
}

/// Ends a command: `ok`, or the payload check that failed (the first
/// one; the command still ran to its end so the link stays in step).
pub(crate) fn report(ctl: &mut Control, bad: Option<String>) -> io::Result<()> {
    match bad {
        None => ctl.send("ok"),
        Some(why) => ctl.send(&format!("error payload check failed: {why}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_commands_parse() {
        let w = WaitPolicy::spin();
        let line = policy::encode_wait(&w);
        assert_eq!(parse_policy(line.split(' ')).unwrap(), w);
        assert!(parse_policy("12".split(' ')).is_err());
    }
}
