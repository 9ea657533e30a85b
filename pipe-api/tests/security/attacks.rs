//! Attacks on the rendezvous by another local user (issue 9, items 3 to 5).
//!
//! The test process runs as root; the attacker is a child that drops to uid
//! `nobody` and talks the raw wire protocol (`named/wire/`). Where the
//! victim's descriptors matter, the victim is a root child of its own with a
//! known descriptor limit, so that parallel tests do not blur its counts.
//! Each test asserts that the attack fails and that a legitimate client
//! still gets through afterwards. Without root these tests are skipped,
//! except under `CI=true`, where they fail.
//!
//! Squatting and forged link packets are tested elsewhere (items 1 and 2).

use crate::common;

use common::named::{
    become_nobody, child_done, env, hear, kind, raw_control_socket, say, unique_name, Kid,
};
use shmpipe::named::{
    status, wait_available, ClientOptions, NamedPipeServer, Permissions, PipeName, Security,
    ServerOptions, WaitTimeout,
};
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::time::Duration;

const NAME_ENV: &str = "SHMPIPE_ATTACK_NAME";
const LIMIT_ENV: &str = "SHMPIPE_ATTACK_NOFILE";

/// The descriptor limit of the victim child in the flood tests (a common
/// default soft limit).
const VICTIM_NOFILE: u64 = 1024;

/// Whether the test can start a process of another uid; fails under
/// `CI=true` when it cannot.
fn root(test: &str) -> bool {
    common::require(
        common::is_root(),
        test,
        "needs root: it drops a child to uid nobody",
    )
}

fn outcome<T>(r: &io::Result<T>) -> String {
    match r {
        Ok(_) => "ok".into(),
        Err(e) => match kind(e) {
            Some(k) => format!("{k:?}"),
            None => format!("raw({e})"),
        },
    }
}

fn set_nofile(n: u64) {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let mut l = getrlimit(Resource::Nofile);
    l.current = Some(n);
    setrlimit(Resource::Nofile, l).unwrap();
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

/// The pipe every victim serves: owner-only, one instance.
fn victim_opts() -> ServerOptions {
    let mut o = ServerOptions::new();
    o.max_instances(1);
    o
}

// ------------------------------------------------------------ the victim

/// A root server process: `NAME_ENV`'s only instance, connected to a
/// client of its own (so that `WAIT`s park). Commands:
/// `memfds` (its segment descriptors and their modes), `fill <free>` (take
/// every descriptor but the `free` highest), `check <name>` (descriptors in
/// use, and whether a new pipe can be created and opened), `exhausted`
/// (what creating and opening say with no descriptor left), `free` (drop
/// the filler and its client, and listen again).
fn child_victim() {
    if let Ok(n) = std::env::var(LIMIT_ENV) {
        set_nofile(n.parse().unwrap());
    }
    let name = env(NAME_ENV);
    let server = std::sync::Arc::new(victim_opts().create(&name).unwrap());
    let mut own = Some(ClientOptions::new().open(&name).unwrap());
    server.connect().unwrap();
    let mut filler: Vec<OwnedFd> = Vec::new();
    let mut kept = Vec::new();
    say("ready");
    while let Some(line) = hear() {
        let words: Vec<&str> = line.split(' ').collect();
        match words[..] {
            ["memfds"] => {
                let mut found = Vec::new();
                for e in std::fs::read_dir("/proc/self/fd").unwrap().flatten() {
                    let Ok(link) = std::fs::read_link(e.path()) else {
                        continue;
                    };
                    if link.to_string_lossy().starts_with("/memfd:shmpipe") {
                        let fd = e.file_name().to_string_lossy().into_owned();
                        let mode = std::fs::metadata(e.path()).unwrap();
                        use std::os::unix::fs::MetadataExt;
                        found.push(format!("{fd}:{:o}", mode.mode() & 0o777));
                    }
                }
                say(&format!(
                    "memfds {} {}",
                    std::process::id(),
                    found.join(",")
                ));
            }
            ["fill", free] => {
                while let Ok(fd) = rustix::io::fcntl_dupfd_cloexec(rustix::stdio::stdin(), 0) {
                    filler.push(fd);
                    assert!(filler.len() < 1 << 20, "no descriptor limit");
                }
                // The highest numbers go back: the lowest free one is high.
                for _ in 0..free.parse::<usize>().unwrap() {
                    filler.pop();
                }
                say("filled");
            }
            ["check", other] => {
                let fds = open_fds();
                let created = victim_opts().create(other);
                let opened = ClientOptions::new().open(other);
                say(&format!(
                    "fds {fds} create {} open {}",
                    outcome(&created),
                    outcome(&opened)
                ));
                kept.push((created, opened));
            }
            ["exhausted", other] => {
                while let Ok(fd) = rustix::io::fcntl_dupfd_cloexec(rustix::stdio::stdin(), 0) {
                    filler.push(fd);
                }
                let created = victim_opts().create(other);
                let opened = ClientOptions::new().open(&name);
                let waited = wait_available(&name, WaitTimeout::NoWait);
                let described = status(&name);
                let r = format!(
                    "create {} open {} wait {} status {}",
                    outcome(&created),
                    outcome(&opened),
                    outcome(&waited),
                    outcome(&described)
                );
                filler.clear();
                say(&r);
            }
            ["free"] => {
                filler.clear();
                own = None;
                server.disconnect().unwrap();
                let s = std::sync::Arc::clone(&server);
                std::thread::spawn(move || {
                    let _ = s.connect();
                    let mut buf = [0u8; 5];
                    if (&*s).read_exact(&mut buf).is_ok() {
                        let _ = (&*s).write_all(&buf);
                    }
                });
                say("freed");
            }
            _ => panic!("unknown command {line}"),
        }
    }
    drop(own);
    child_done();
}

fn victim(name: &str, nofile: Option<u64>) -> Kid {
    let mut envs = vec![(NAME_ENV, name.to_owned())];
    if let Some(n) = nofile {
        envs.push((LIMIT_ENV, n.to_string()));
    }
    let mut kid = Kid::spawn("child_victim", &envs);
    kid.expect("ready");
    kid
}

/// A legitimate (root) client gets through to `name` once its instance
/// listens again, and talks to it.
fn legitimate_client_connects(name: &str) {
    wait_available(name, WaitTimeout::Duration(common::HANG)).unwrap();
    let client = ClientOptions::new().open(name).unwrap();
    (&client).write_all(b"hello").unwrap();
    let mut buf = [0u8; 5];
    (&client).read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"hello");
}

// ----------------------------------------------------------- the attacker

/// A connection to `name`'s rendezvous socket, as anyone can make one.
fn raw_connect(name: &str) -> io::Result<OwnedFd> {
    let (sock, addr) = raw_control_socket(name);
    // Nonblocking: a server that stopped accepting fails the test at once
    // instead of hanging the attacker in `connect`.
    rustix::io::ioctl_fionbio(&sock, true)?;
    rustix::net::connect(&sock, &addr)?;
    rustix::io::ioctl_fionbio(&sock, false)?;
    // Answers come at once or not at all: never hang the test.
    rustix::net::sockopt::set_socket_timeout(
        &sock,
        rustix::net::sockopt::Timeout::Recv,
        Some(common::HANG),
    )?;
    Ok(sock)
}

fn request(name: &str, code: u8) -> Vec<u8> {
    let mut req = vec![code];
    req.extend_from_slice(PipeName::for_client(name).unwrap().key().as_bytes());
    req
}

/// The first reply on `sock`: `parked` (STATE: the WAIT was kept),
/// `available`, `state <n>`, `error <code>`, `eof`, or `other`.
fn reply(sock: &OwnedFd) -> String {
    let mut buf = [0u8; 64];
    match rustix::net::recv(sock, &mut buf, rustix::net::RecvFlags::empty()) {
        Ok((0, _)) => "eof".into(),
        Ok((5, _)) if buf[0] == 0x84 => {
            let n = u32::from_le_bytes([buf[1], buf[2], buf[3], buf[4]]);
            format!("state:{n}")
        }
        Ok((1, _)) if buf[0] == 0x83 => "available".into(),
        Ok((5, _)) if buf[0] == 0x82 => {
            let code = u32::from_le_bytes([buf[1], buf[2], buf[3], buf[4]]);
            format!("error:{code}")
        }
        Ok(_) => "other".into(),
        Err(rustix::io::Errno::CONNRESET) => "eof".into(),
        Err(e) => format!("failed:{e:?}"),
    }
}

/// Counts of equal strings, as `a=2 b=1`, sorted.
fn tally(items: impl IntoIterator<Item = String>) -> String {
    let mut m = std::collections::BTreeMap::new();
    for i in items {
        *m.entry(i).or_insert(0usize) += 1;
    }
    m.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// How many connections the attacker can hold.
fn attacker_budget(want: usize) -> usize {
    let soft = rustix::process::getrlimit(rustix::process::Resource::Nofile)
        .current
        .unwrap_or(1 << 20);
    want.min(usize::try_from(soft).unwrap_or(usize::MAX) - 100)
}

/// Uid `nobody` attacking `NAME_ENV`. Commands (each answered with one
/// line): `wait <n>` (n WAITs held open: the tally of first replies),
/// `silent <n>` (n connections that never send: held), `state <n>` (n raw
/// STATEs: tally), `garbage` (malformed packets: tally), `proc <pid>
/// <fd>,...` (open another process's descriptors through /proc), `closed`
/// (whether the server closed every silent connection).
fn child_attacker() {
    become_nobody();
    let name = env(NAME_ENV);
    let mut held: Vec<OwnedFd> = Vec::new();
    let mut silent: Vec<OwnedFd> = Vec::new();
    say("nobody");
    while let Some(line) = hear() {
        let words: Vec<&str> = line.split(' ').collect();
        match words[..] {
            ["wait", n] => {
                let n = attacker_budget(n.parse().unwrap());
                let mut replies = Vec::with_capacity(n);
                for _ in 0..n {
                    let Ok(sock) = raw_connect(&name) else {
                        replies.push("refused".into());
                        continue;
                    };
                    // The server may have dropped the connection already.
                    let sent = rustix::net::send(
                        &sock,
                        &request(&name, 2),
                        rustix::net::SendFlags::NOSIGNAL,
                    );
                    let r = match sent {
                        Ok(_) => reply(&sock),
                        Err(_) => "dropped".into(),
                    };
                    replies.push(if r.starts_with("state") {
                        "parked".into()
                    } else {
                        r
                    });
                    held.push(sock);
                }
                say(&tally(replies));
            }
            ["silent", n] => {
                let n = attacker_budget(n.parse().unwrap());
                for _ in 0..n {
                    if let Ok(sock) = raw_connect(&name) {
                        silent.push(sock);
                    }
                }
                say(&format!("silent {}", silent.len()));
            }
            ["closed"] => {
                // Every silent connection must be dropped by the server
                // within a bounded time (the receive timeout is HANG).
                let r = tally(silent.drain(..).map(|s| reply(&s)));
                say(&r);
            }
            ["state", n] => {
                let n: usize = n.parse().unwrap();
                let r = tally((0..n).map(|_| {
                    let sock = raw_connect(&name).unwrap();
                    rustix::net::send(&sock, &request(&name, 3), rustix::net::SendFlags::empty())
                        .unwrap();
                    reply(&sock)
                }));
                say(&r);
            }
            ["garbage"] => {
                let key = PipeName::for_client(&name).unwrap();
                let key = key.key().as_bytes();
                let mut packets: Vec<Vec<u8>> = vec![
                    vec![],
                    vec![0],
                    vec![0xff; 7],
                    vec![0x81; 25],
                    [&[1u8, 0xee][..], key].concat(), // OPEN, bad access byte
                    [&[2u8][..], b"other-key"].concat(), // WAIT, wrong key
                    [&[4u8, 3, 0][..], key].concat(), // CREATE without the right
                    vec![0x90, 3],                    // a link packet on a request
                    vec![5; 4096],                    // longer than any request
                ];
                packets.extend((0..64u8).map(|i| {
                    (0..(usize::from(i) * 31 % 300))
                        .map(|j| (j as u8).wrapping_mul(i).wrapping_add(0x5a))
                        .collect()
                }));
                let mut replies = Vec::new();
                for p in &packets {
                    let sock = raw_connect(&name).unwrap();
                    let _ = rustix::net::send(&sock, p, rustix::net::SendFlags::empty());
                    replies.push(reply(&sock));
                }
                // A descriptor nobody asked for, with a WAIT.
                let sock = raw_connect(&name).unwrap();
                let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
                send_with_fd(&sock, &request(&name, 2), a.as_fd());
                replies.push(reply(&sock));
                say(&tally(replies));
            }
            ["proc", pid, fds] => {
                let r = tally(fds.split(',').flat_map(|fd| {
                    let path = format!("/proc/{pid}/fd/{fd}");
                    let rw = std::fs::OpenOptions::new()
                        .read(true)
                        .write(true)
                        .open(&path);
                    let ro = std::fs::File::open(&path);
                    [rw, ro].into_iter().map(|r| match r {
                        Ok(_) => "opened".to_owned(),
                        Err(e) => format!("{:?}", e.kind()),
                    })
                }));
                say(&r);
            }
            _ => panic!("unknown command {line}"),
        }
    }
    drop(held);
    child_done();
}

fn send_with_fd(sock: &OwnedFd, bytes: &[u8], fd: std::os::fd::BorrowedFd<'_>) {
    use rustix::net::{SendAncillaryBuffer, SendAncillaryMessage, SendFlags};
    let mut space = [std::mem::MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    let fds = [fd];
    assert!(control.push(SendAncillaryMessage::ScmRights(&fds)));
    rustix::net::sendmsg(
        sock,
        &[io::IoSlice::new(bytes)],
        &mut control,
        SendFlags::empty(),
    )
    .unwrap();
}

fn attacker(name: &str) -> Kid {
    let mut kid = Kid::spawn("child_attacker", &[(NAME_ENV, name.to_owned())]);
    kid.expect("nobody");
    kid
}

/// `key=count` out of a tally (0 when absent).
fn count(tally: &str, key: &str) -> usize {
    tally
        .split(' ')
        .find_map(|kv| kv.strip_prefix(&format!("{key}=")))
        .map_or(0, |n| n.parse().unwrap())
}

// ----------------------------------------------------------------- tests

/// Finding (issue 9, item 3): 5 000 WAITs held by nobody took a root
/// server from 13 to 4 096 descriptors; it could then create no pipe.
fn a_wait_flood_is_bounded_per_uid_and_refused_with_no_system_resources() {
    if !root("wait flood") {
        return;
    }
    let name = unique_name("attack-wait");
    let mut server = victim(&name, Some(VICTIM_NOFILE));
    let mut nobody = attacker(&name);
    nobody.tell("wait 5000");
    let t = nobody.listen();
    // Parked: at most nobody's share (an eighth of a quarter of the limit);
    // every other WAIT refused with ERROR_NO_SYSTEM_RESOURCES (1450).
    let parked = count(&t, "parked");
    assert!(parked >= 1, "{t}");
    assert!(parked as u64 <= VICTIM_NOFILE / 4 / 8, "{t}");
    assert!(count(&t, "error:1450") >= 4000, "{t}");
    assert_eq!(count(&t, "parked") + count(&t, "error:1450"), 5000, "{t}");
    // Another uid's wait is still parked (not refused): it times out.
    let e = wait_available(&name, WaitTimeout::Duration(Duration::from_millis(100)));
    assert_eq!(outcome(&e), "Timeout");
    // The victim holds few descriptors and creates pipes as usual.
    server.tell(&format!("check {}", unique_name("attack-wait-other")));
    let c = server.listen();
    let fds: usize = c.split(' ').nth(1).unwrap().parse().unwrap();
    assert!(fds < 100 + parked, "{c}");
    assert!(c.ends_with("create ok open ok"), "{c}");
    server.tell("free");
    server.expect("freed");
    legitimate_client_connects(&name);
    nobody.finish();
    server.finish();
}

/// Close to its descriptor limit, the victim holds no rendezvous
/// connection (no parked WAIT, no silent peer): its own `create` and
/// `open` still find descriptors.
fn near_the_descriptor_limit_a_flood_does_not_starve_create() {
    if !root("near the limit") {
        return;
    }
    let name = unique_name("attack-limit");
    let mut server = victim(&name, Some(VICTIM_NOFILE));
    server.tell("fill 24");
    server.expect("filled");
    let mut nobody = attacker(&name);
    nobody.tell("silent 300");
    let _ = nobody.listen();
    nobody.tell("wait 300");
    let t = nobody.listen();
    // Refused, or dropped before the request was read (the send failed,
    // or the connection closed unanswered): none parked.
    let dropped = count(&t, "dropped") + count(&t, "eof");
    assert_eq!(count(&t, "parked"), 0, "{t}");
    assert_eq!(count(&t, "error:1450") + dropped, 300, "{t}");
    server.tell(&format!("check {}", unique_name("attack-limit-other")));
    let c = server.listen();
    assert!(c.ends_with("create ok open ok"), "{c}");
    server.tell("free");
    server.expect("freed");
    legitimate_client_connects(&name);
    nobody.finish();
    server.finish();
}

/// Out of descriptors, `create`, `open`, `wait_available` and `status` fail
/// with `NoSystemResources`, not a raw "Too many open files".
fn running_out_of_descriptors_is_no_system_resources() {
    let name = unique_name("attack-emfile");
    let mut server = victim(&name, Some(VICTIM_NOFILE));
    server.tell(&format!("exhausted {}", unique_name("attack-emfile-other")));
    assert_eq!(
        server.listen(),
        "create NoSystemResources open NoSystemResources \
         wait NoSystemResources status NoSystemResources"
    );
    server.tell("free");
    server.expect("freed");
    legitimate_client_connects(&name);
    server.finish();
}

/// Finding (item 4): a raw STATE told anyone the instance count, even a
/// user `status` refuses.
fn state_is_refused_to_a_user_the_pipe_grants_nothing() {
    if !root("state") {
        return;
    }
    let name = unique_name("attack-state");
    let server = victim_opts().create(&name).unwrap();
    let shared = unique_name("attack-state-shared");
    let readable = Security {
        group: Permissions::NONE,
        others: Permissions {
            connect_read: true,
            ..Permissions::NONE
        },
    };
    let _shared = victim_opts().security(readable).create(&shared).unwrap();
    let mut nobody = attacker(&name);
    nobody.tell("state 2000");
    assert_eq!(nobody.listen(), "error:5=2000");
    drop(nobody);
    // A user the pipe grants something still gets the count.
    let mut nobody = attacker(&shared);
    nobody.tell("state 1");
    assert_eq!(nobody.listen(), "state:1=1");
    nobody.finish();
    serve_one(server, &name);
}

/// Serves one legitimate client on `server` (an echo of 5 bytes).
fn serve_one(server: NamedPipeServer, name: &str) {
    let t = std::thread::spawn(move || {
        server.connect().unwrap();
        let mut buf = [0u8; 5];
        (&server).read_exact(&mut buf).unwrap();
        (&server).write_all(&buf).unwrap();
        // Until the client has read the echo.
        let _ = (&server).read(&mut buf);
    });
    legitimate_client_connects(name);
    t.join().unwrap();
}

/// Garbage and silent peers on the rendezvous: each bad packet costs its
/// sender its connection; a silent one is dropped after a bounded time;
/// the name keeps serving everyone else meanwhile.
fn garbage_and_silent_peers_do_not_stop_the_name() {
    if !root("garbage") {
        return;
    }
    let name = unique_name("attack-garbage");
    let server = victim_opts().create(&name).unwrap();
    let mut nobody = attacker(&name);
    nobody.tell("garbage");
    let t = nobody.listen();
    // Malformed requests are cut off (end of stream); well-formed ones the
    // sender has no right to are refused.
    assert_eq!(count(&t, "other") + count(&t, "available"), 0, "{t}");
    assert_eq!(count(&t, "error:2"), 1, "WAIT with another key: {t}");
    assert_eq!(count(&t, "error:5"), 1, "CREATE without the right: {t}");
    nobody.tell("silent 200");
    let s = nobody.listen();
    assert!(s.starts_with("silent "), "{s}");
    // While nobody holds its silent connections, root is served.
    let s2 = wait_available(&name, WaitTimeout::Duration(common::HANG));
    assert_eq!(outcome(&s2), "ok");
    assert_eq!(status(&name).unwrap().listening, 1);
    nobody.tell("closed");
    let c = nobody.listen();
    assert!(c.starts_with("eof="), "every silent peer is cut off: {c}");
    nobody.finish();
    serve_one(server, &name);
}

/// Another user cannot open this process's segments through
/// `/proc/PID/fd` (ptrace rules, and the memfds are mode 0600).
fn another_user_cannot_open_segments_through_proc() {
    if !root("proc") {
        return;
    }
    let name = unique_name("attack-proc");
    let mut server = victim(&name, None);
    server.tell("memfds");
    let m = server.listen();
    let words: Vec<&str> = m.split(' ').collect();
    let (pid, fds) = (words[1], words[2]);
    let fds: Vec<(&str, &str)> = fds.split(',').map(|f| f.split_once(':').unwrap()).collect();
    assert!(fds.len() >= 2, "the client's and the server's segment: {m}");
    assert!(fds.iter().all(|(_, mode)| *mode == "600"), "{m}");
    let list: Vec<&str> = fds.iter().map(|(fd, _)| *fd).collect();
    let mut nobody = attacker(&name);
    nobody.tell(&format!("proc {pid} {}", list.join(",")));
    let t = nobody.listen();
    assert_eq!(t, format!("PermissionDenied={}", 2 * list.len()));
    nobody.finish();
    server.tell("free");
    server.expect("freed");
    legitimate_client_connects(&name);
    server.finish();
}

common::tests! {
    tests: [
        a_wait_flood_is_bounded_per_uid_and_refused_with_no_system_resources,
        near_the_descriptor_limit_a_flood_does_not_starve_create,
        running_out_of_descriptors_is_no_system_resources,
        state_is_refused_to_a_user_the_pipe_grants_nothing,
        garbage_and_silent_peers_do_not_stop_the_name,
        another_user_cannot_open_segments_through_proc,
    ],
    children: [child_victim, child_attacker],
}
