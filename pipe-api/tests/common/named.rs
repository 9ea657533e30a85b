//! Helpers for the named-pipe test binaries: unique pipe names, the spec's
//! default pipe, error-kind checks, and children (this test binary run
//! again) that talk to the parent over their stdin/stdout one line at a
//! time. The hang guards and the child protocol's basics are in the parent
//! module and re-exported here.

use shmpipe::named::{Direction, ServerOptions};
use shmpipe::{Error, ErrorKind};
use std::io::{self, BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;

// Each binary uses a different subset.
#[allow(unused_imports)]
pub use super::{child_done, Pending, CHILD_OK, HANG, ROLE_ENV};

/// A pipe name no other test (in this or another test process) uses:
/// tests run in parallel and names are machine-wide.
pub fn unique_name(tag: &str) -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!(r"\\.\pipe\shmpipe-test-{tag}-{}-{n}", std::process::id())
}

/// The spec's default pipe (section 9): Duplex, max instances 1, quota 1024
/// each way.
pub fn default_opts() -> ServerOptions {
    let mut o = ServerOptions::new();
    o.access(Direction::Duplex)
        .max_instances(1)
        .quotas(1024, 1024);
    o
}

/// The pipe error kind of `e`.
pub fn kind(e: &io::Error) -> Option<ErrorKind> {
    Error::kind_of(e)
}

/// Asserts that `r` failed with `want`.
#[track_caller]
pub fn assert_kind<T: std::fmt::Debug>(r: io::Result<T>, want: ErrorKind, what: &str) {
    match r {
        Ok(v) => panic!("{what}: expected {want:?}, got Ok({v:?})"),
        Err(e) => assert_eq!(kind(&e), Some(want), "{what}: got error {e:?}"),
    }
}

/// Marks the lines a child says to its parent (anything else the child
/// prints goes to the same stdout).
const MARK: &str = "@@";

/// In a child: an environment variable the parent set.
pub fn env(key: &str) -> String {
    std::env::var(key).unwrap_or_else(|_| panic!("{key} passed by the parent"))
}

/// In a child: tells the parent `line`.
pub fn say(line: &str) {
    let mut out = io::stdout().lock();
    // A fresh line: whatever the child printed before may lack its newline.
    writeln!(out, "\n{MARK}{line}").unwrap();
    out.flush().unwrap();
}

/// In a child: the parent's next line (`None` at end of input).
pub fn hear() -> Option<String> {
    let mut line = String::new();
    match io::stdin().lock().read_line(&mut line) {
        Ok(0) | Err(_) => None,
        Ok(_) => Some(line.trim_end().to_owned()),
    }
}

/// A child process playing one role, talked to line by line. Killed and
/// reaped when dropped, so a failing test leaves nothing behind.
pub struct Kid {
    /// `None` once [`Kid::finish`] took it.
    child: Option<Child>,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
    stderr: mpsc::Receiver<Vec<u8>>,
    name: String,
}

impl Kid {
    /// Runs this test binary as its child `name` (a child function listed in
    /// its `main!`) with the extra environment `envs`.
    pub fn spawn(name: &str, envs: &[(&str, String)]) -> Kid {
        Kid::spawn_under(&[], name, envs)
    }

    /// Like [`Kid::spawn`], run through the command `wrapper` (say
    /// `unshare --pid ...`), which must exec or fork the test binary given
    /// as its last arguments and pass its stdio through.
    pub fn spawn_under(wrapper: &[&str], name: &str, envs: &[(&str, String)]) -> Kid {
        let exe = std::env::current_exe().expect("test binary path");
        let mut cmd = match wrapper.split_first() {
            Some((program, args)) => {
                let mut c = Command::new(program);
                c.args(args).arg(exe);
                c
            }
            None => Command::new(exe),
        };
        cmd.env(ROLE_ENV, name)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn child");
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(rest) = line.find(MARK).map(|at| &line[at + MARK.len()..]) {
                    if tx.send(rest.to_owned()).is_err() {
                        break;
                    }
                }
            }
        });
        let mut err = child.stderr.take().unwrap();
        let (etx, stderr) = mpsc::channel();
        std::thread::spawn(move || {
            let mut v = Vec::new();
            let _ = io::Read::read_to_end(&mut err, &mut v);
            let _ = etx.send(v);
        });
        Kid {
            stdin: child.stdin.take(),
            child: Some(child),
            lines,
            stderr,
            name: name.to_owned(),
        }
    }

    /// The child's pid.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("child not finished").id()
    }

    /// Sends the child one line.
    pub fn tell(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("child stdin open");
        writeln!(stdin, "{line}").expect("write to child");
        stdin.flush().expect("flush to child");
    }

    /// Closes the child's stdin (its [`hear`] returns `None`).
    pub fn hang_up(&mut self) {
        self.stdin = None;
    }

    /// The child's next line; fails the test (showing the child's stderr)
    /// if none comes within [`HANG`].
    #[track_caller]
    pub fn listen(&mut self) -> String {
        match self.lines.recv_timeout(HANG) {
            Ok(l) => l,
            Err(_) => {
                self.kill();
                let err = self.stderr.recv_timeout(HANG).unwrap_or_default();
                panic!(
                    "child {} said nothing more; its stderr:\n{}",
                    self.name,
                    String::from_utf8_lossy(&err)
                )
            }
        }
    }

    /// Asserts the child's next line is `want`.
    #[track_caller]
    pub fn expect(&mut self, want: &str) {
        let got = self.listen();
        assert_eq!(got, want, "child {} said something else", self.name);
    }

    /// SIGKILLs the child and reaps it.
    pub fn kill(&mut self) {
        if let Some(c) = self.child.as_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Closes its stdin, waits for the child to exit and asserts it ran its
    /// role to the end.
    #[track_caller]
    pub fn finish(mut self) {
        self.hang_up();
        let mut child = self.child.take().expect("child not finished");
        let pid = child.id();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(child.wait());
        });
        let status = match rx.recv_timeout(HANG) {
            Ok(s) => s.expect("wait for child"),
            Err(_) => {
                // Do not leave a stuck child behind.
                if let Some(p) = rustix::process::Pid::from_raw(pid as i32) {
                    let _ = rustix::process::kill_process(p, rustix::process::Signal::KILL);
                }
                panic!("child {} did not exit within {HANG:?}", self.name)
            }
        };
        let err = self.stderr.recv_timeout(HANG).unwrap_or_default();
        assert_eq!(
            status.code(),
            Some(CHILD_OK),
            "child {} failed ({status}); its stderr:\n{}",
            self.name,
            String::from_utf8_lossy(&err)
        );
    }
}

impl Drop for Kid {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The uid and gid `nobody`.
pub const NOBODY: u32 = 65534;

/// Drops this (child) process to uid and gid `nobody`, without
/// supplementary groups.
pub fn become_nobody() {
    // SAFETY: plain system calls with valid arguments (an empty group list
    // needs no buffer); glibc applies them to every thread of the process.
    let r = unsafe { libc::setgroups(0, std::ptr::null()) };
    assert_eq!(r, 0, "setgroups: {}", io::Error::last_os_error());
    // SAFETY: as above.
    let r = unsafe { libc::setgid(NOBODY) };
    assert_eq!(r, 0, "setgid: {}", io::Error::last_os_error());
    // SAFETY: as above.
    let r = unsafe { libc::setuid(NOBODY) };
    assert_eq!(r, 0, "setuid: {}", io::Error::last_os_error());
    assert_eq!(rustix::process::geteuid().as_raw(), NOBODY);
    assert_eq!(rustix::process::getegid().as_raw(), NOBODY);
}

/// A bare control socket (what a hostile or fake peer uses) and the address
/// of `name`'s server on it.
pub fn raw_control_socket(name: &str) -> (std::os::fd::OwnedFd, rustix::net::SocketAddrUnix) {
    use rustix::net::{AddressFamily, SocketAddrUnix, SocketFlags, SocketType};
    let pn = shmpipe::named::PipeName::for_client(name).unwrap();
    let sock = rustix::net::socket_with(
        AddressFamily::UNIX,
        SocketType::SEQPACKET,
        SocketFlags::CLOEXEC,
        None,
    )
    .unwrap();
    let addr = SocketAddrUnix::new_abstract_name(pn.socket_name().as_bytes()).unwrap();
    (sock, addr)
}

/// Joins `name` as another process's instance would (a raw CREATE for a
/// Duplex instance) and returns the link after checking the JOINED reply;
/// what the caller does with the link after that is up to it.
pub fn raw_member(name: &str) -> std::os::fd::OwnedFd {
    let (sock, addr) = raw_control_socket(name);
    rustix::net::connect(&sock, &addr).unwrap();
    let key = shmpipe::named::PipeName::for_client(name).unwrap();
    let mut req = vec![4u8, 3, 0];
    req.extend_from_slice(key.key().as_bytes());
    rustix::net::send(&sock, &req, rustix::net::SendFlags::NOSIGNAL).unwrap();
    let mut buf = [0u8; 64];
    let (n, _) = rustix::net::recv(&sock, &mut buf, rustix::net::RecvFlags::empty()).unwrap();
    assert_eq!((n, buf[0]), (19, 0x85), "JOINED");
    sock
}
