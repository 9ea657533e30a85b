//! The trust flags of the `shmpipe` command, across users: a `serve`
//! process running as nobody (uid/gid 65534), and root's `call`, `send`,
//! `cat` and `serve` that refuse it by default (one error line naming the
//! uid and the flag) and use or join it when told to trust it.
//!
//! Needs root (to start a process as another user). Not root: under
//! `CI=true` every test fails, elsewhere it says why and returns.
//! Servers are waited for by asking `shmpipe info` until it shows them
//! owned by nobody; every wait is bounded only to turn a hang into a
//! failure.

use crate::common;

use common::{bin, drain, run_without_input as shmpipe, HANG};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The unprivileged user the servers run as.
const NOBODY: u32 = 65534;

/// Whether this process may start others as nobody; not root: fails under
/// `CI=true`, else says why (and the caller returns).
fn root() -> bool {
    if rustix::process::geteuid().is_root() {
        return true;
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "the trust tests need root to start a server as another user, and CI must run them"
    );
    eprintln!("not root: cannot start a server as another user; cli_trust not run");
    false
}

fn as_nobody(cmd: &mut Command) -> &mut Command {
    let id = rustix::process::Uid::from_raw(NOBODY);
    let gid = rustix::process::Gid::from_raw(NOBODY);
    // SAFETY: the closure runs in the forked child before exec, where only
    // async-signal-safe work is allowed: these are bare system calls
    // (rustix issues them directly; nothing allocates or locks). They
    // change only the calling thread's ids, which is the whole process in
    // the child (one thread after fork); groups and gid go first, while
    // the child may still change them.
    unsafe {
        cmd.pre_exec(move || {
            rustix::thread::set_thread_groups(&[])?;
            rustix::thread::set_thread_res_gid(gid, gid, gid)?;
            rustix::thread::set_thread_res_uid(id, id, id)?;
            Ok(())
        })
    }
}

/// A short pipe name no other test uses (machine-wide).
fn unique(tag: &str) -> String {
    format!("cli-trust-{tag}-{}", std::process::id())
}

#[track_caller]
fn assert_ok(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what}: {}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Asserts that `out` is the one-line refusal of a process running as
/// nobody, suggesting `flag`, and that nothing was printed.
#[track_caller]
fn assert_refused(out: &Output, flag: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "stderr: {stderr}");
    assert_eq!(stderr.lines().count(), 1, "not one line: {stderr}");
    let line = stderr.trim_end();
    assert!(line.starts_with("shmpipe: "), "{line}");
    assert!(line.contains(&format!("uid {NOBODY}")), "{line}");
    assert!(line.contains(&format!("{flag} {NOBODY}")), "{line}");
    assert!(line.ends_with(": ERROR_ACCESS_DENIED (5)"), "{line}");
    assert!(out.stdout.is_empty(), "printed {:?}", out.stdout);
}

/// The value of `label:` in `shmpipe info` output.
fn field<'a>(info: &'a str, label: &str) -> Option<&'a str> {
    info.lines()
        .find_map(|l| l.strip_prefix(label)?.strip_prefix(':'))
        .map(str::trim)
}

/// The number of instances `shmpipe info name` shows, once it shows the
/// name owned by nobody (`None` before).
fn instances_of_nobodys(name: &str) -> Option<u32> {
    let out = shmpipe(&["info", name]);
    let info = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() || field(&info, "owner uid") != Some(&NOBODY.to_string()) {
        return None;
    }
    field(&info, "instances")?.split(' ').next()?.parse().ok()
}

/// A `shmpipe serve` process (as nobody or as root), killed when dropped.
struct Server {
    child: Option<Child>,
    out: Option<mpsc::Receiver<Vec<u8>>>,
    err: Option<mpsc::Receiver<Vec<u8>>>,
    name: String,
}

impl Server {
    /// Starts `shmpipe serve NAME args...` as nobody and waits until
    /// `shmpipe info` shows it.
    fn nobody(name: &str, args: &[&str]) -> Server {
        let mut cmd = bin();
        as_nobody(cmd.arg("serve").arg(name).args(args));
        let mut s = Server::spawn(cmd, name);
        s.wait_until(|n| n >= 1, "came up");
        s
    }

    fn spawn(mut cmd: Command, name: &str) -> Server {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start shmpipe serve");
        Server {
            out: Some(drain(child.stdout.take().unwrap())),
            err: Some(drain(child.stderr.take().unwrap())),
            child: Some(child),
            name: name.to_owned(),
        }
    }

    /// Waits until nobody's name has a number of instances that satisfies
    /// `ok`, while this server runs.
    fn wait_until(&mut self, ok: impl Fn(u32) -> bool, what: &str) {
        let start = Instant::now();
        loop {
            if instances_of_nobodys(&self.name).is_some_and(&ok) {
                return;
            }
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                let err = self.err.take().unwrap().recv_timeout(HANG);
                panic!(
                    "serve {} exited ({status}) before it {what}: {}",
                    self.name,
                    String::from_utf8_lossy(&err.unwrap_or_default())
                );
            }
            assert!(start.elapsed() < HANG, "serve {} never {what}", self.name);
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits for a `--once` server to exit by itself; its output.
    fn finish(mut self) -> Output {
        let mut child = self.child.take().unwrap();
        let start = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            assert!(
                start.elapsed() < HANG,
                "serve {} --once never exited",
                self.name
            );
            std::thread::sleep(Duration::from_millis(10));
        };
        Output {
            status,
            stdout: self.out.take().unwrap().recv_timeout(HANG).unwrap(),
            stderr: self.err.take().unwrap().recv_timeout(HANG).unwrap(),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

#[test]
fn call_uses_another_users_server_only_when_trusted() {
    if !root() {
        return;
    }
    let name = unique("call");
    let _server = Server::nobody(&name, &["--message", "--echo"]);
    assert_refused(&shmpipe(&["call", &name, "hello"]), "--trust-uid");
    // Trusting someone else changes nothing.
    assert_refused(
        &shmpipe(&[
            "call",
            &name,
            "hello",
            "--trust-uid",
            "4242",
            "--trust-gid",
            "4242",
        ]),
        "--trust-uid",
    );
    for trust in [
        &["--trust-uid", "65534"][..],
        &["--trust-uid", "4242", "--trust-uid", "65534"],
        &["--trust-gid", "65534"],
        &["--trust-any-server"],
    ] {
        let mut args = vec!["call", &name, "hello"];
        args.extend_from_slice(trust);
        let out = shmpipe(&args);
        assert_ok(&out, &format!("call {trust:?}"));
        assert_eq!(out.stdout, b"hello", "call {trust:?}");
    }
}

#[test]
fn cat_and_send_use_another_users_server_only_when_trusted() {
    if !root() {
        return;
    }
    let content = b"for whoever is trusted\n";
    let file = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("cli-trust-motd-{}", std::process::id()));
    std::fs::write(&file, content).unwrap();
    // nobody reads it.
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let name = unique("cat");
    let path = file.to_str().unwrap();
    let server = Server::nobody(&name, &["--file", path]);
    assert_refused(&shmpipe(&["cat", &name]), "--trust-uid");
    let out = shmpipe(&["cat", &name, "--trust-uid", "65534"]);
    assert_ok(&out, "cat --trust-uid");
    assert_eq!(out.stdout, content);
    drop(server);
    std::fs::remove_file(&file).unwrap();

    // A refused send sends nothing: the one client `--once` serves is the
    // trusting one.
    let name = unique("send");
    let server = Server::nobody(&name, &["--once"]);
    assert_refused(&shmpipe(&["send", &name, "refused"]), "--trust-uid");
    assert_ok(
        &shmpipe(&["send", &name, "delivered", "--trust-any-server"]),
        "send --trust-any-server",
    );
    let out = server.finish();
    assert_ok(&out, "serve --once");
    assert_eq!(out.stdout, b"delivered");
}

#[test]
fn serve_joins_another_users_name_only_when_trusted() {
    if !root() {
        return;
    }
    let name = unique("join");
    let owner = Server::nobody(&name, &[]);
    let one = instances_of_nobodys(&name).expect("nobody's name");
    assert_refused(&shmpipe(&["serve", &name]), "--trust-owner-uid");
    assert_refused(
        &shmpipe(&["serve", &name, "--trust-owner-uid", "4242"]),
        "--trust-owner-uid",
    );
    // Trusted, root's instances join nobody's name (and keep serving).
    let mut joined = Vec::new();
    for (k, trust) in [
        ["--trust-owner-uid", "65534"],
        ["--trust-owner-gid", "65534"],
    ]
    .iter()
    .enumerate()
    {
        let mut cmd = bin();
        cmd.arg("serve").arg(&name).args(trust);
        joined.push(Server::spawn(cmd, &name));
        let want = one + 1 + k as u32;
        joined
            .last_mut()
            .unwrap()
            .wait_until(|n| n >= want, "joined");
    }
    drop(joined);
    drop(owner);
}
