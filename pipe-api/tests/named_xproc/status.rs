//! `named::status` and `named::list`: what a server reports about its pipe
//! (attributes, instance states, processes, queued bytes), across processes
//! and users, and what a client does with replies it must not trust.
//!
//! Children are this test binary run again (see [`common::named::Kid`]) as
//! one of the `child_*` functions listed in `common::tests!` at the end.

use crate::common;

use common::named::{
    assert_kind, become_nobody, child_done, env, hear, say, unique_name, Kid, HANG,
};
use shmpipe::named::{
    list, status, ClientOptions, Direction, InstanceState, Permissions, PipeName, PipeStatus,
    Security, ServerOptions,
};
use shmpipe::{ErrorKind, PipeType, ReadMode, WaitMode};
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, Instant};

const NAME_ENV: &str = "SHMPIPE_STATUS_TEST_NAME";

fn listed(name: &str) -> Option<PipeStatus> {
    list().unwrap().into_iter().find(|p| p.name == name)
}

/// Waits (bounded by [`HANG`]) until `status(name)` satisfies `ok`, and
/// returns that status: what a server reports about a client that just
/// closed may lag by one kernel round trip in another thread.
#[track_caller]
fn status_until(name: &str, what: &str, ok: impl Fn(&PipeStatus) -> bool) -> PipeStatus {
    let start = Instant::now();
    loop {
        let s = status(name).unwrap();
        if ok(&s) {
            return s;
        }
        assert!(start.elapsed() < HANG, "{what}: still {s:#?}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn status_follows_attributes_states_pids_and_queued_bytes() {
    let name = unique_name("Status");
    let me = std::process::id();
    let a = ServerOptions::new()
        .pipe_type(PipeType::Message)
        .read_mode(ReadMode::Message)
        .max_instances(3)
        .default_timeout(Duration::from_millis(300))
        .create(&name)
        .unwrap();
    let s = status(&name).unwrap();
    assert_eq!(s.name, name);
    assert_eq!(s.pipe_type, PipeType::Message);
    assert_eq!(s.direction, Direction::Duplex);
    assert_eq!(s.max_instances, 3);
    assert_eq!(s.default_timeout, Duration::from_millis(300));
    assert_eq!(s.server_pid, me);
    assert_eq!(s.owner_uid, rustix::process::geteuid().as_raw());
    assert_eq!((s.listening, s.connected, s.current_instances()), (1, 0, 1));
    let i = &s.instances[0];
    assert_eq!(i.state, InstanceState::Listening);
    assert_eq!(
        (i.read_mode, i.wait_mode),
        (ReadMode::Message, WaitMode::Blocking)
    );
    assert_eq!((i.client_pid, i.queued_out, i.queued_in), (None, 0, 0));

    // A second instance; a client takes the first (longest listening).
    let b = ServerOptions::new()
        .pipe_type(PipeType::Message)
        .create(&name)
        .unwrap();
    b.set_nonblocking(true).unwrap();
    let client = ClientOptions::new().open(&name).unwrap();
    client.send_msg(b"ten bytes!").unwrap();
    a.send_msg(b"seven..").unwrap();
    let s = status(&name).unwrap();
    assert_eq!((s.listening, s.connected, s.current_instances()), (1, 1, 2));
    assert_eq!(s.client_pids(), [me]);
    assert_eq!((s.queued_out(), s.queued_in()), (7, 10));
    assert_eq!(s.instances[0].state, InstanceState::Connected);
    assert_eq!(s.instances[0].client_pid, Some(me));
    assert_eq!(s.instances[1].state, InstanceState::Listening);
    assert_eq!(
        (s.instances[1].read_mode, s.instances[1].wait_mode),
        (ReadMode::Byte, WaitMode::Nonblocking)
    );

    // Reading drains what is queued, in each direction.
    let mut buf = [0u8; 16];
    assert_eq!(a.recv_msg(&mut buf).unwrap().len, 10);
    client.set_read_mode(ReadMode::Message).unwrap();
    assert_eq!(client.recv_msg(&mut buf).unwrap().len, 7);
    let s = status(&name).unwrap();
    assert_eq!((s.queued_out(), s.queued_in()), (0, 0));

    // The client closes: ClientGone, and its pid is still known.
    drop(client);
    let s = status_until(&name, "client closed", |s| s.client_gone == 1);
    assert_eq!((s.connected, s.instances[0].client_pid), (0, Some(me)));
    assert!(s.client_pids().is_empty());

    // Disconnected until connect re-arms it.
    a.disconnect().unwrap();
    let s = status(&name).unwrap();
    assert_eq!((s.disconnected, s.client_gone, s.listening), (1, 0, 1));
    assert_eq!(s.instances[0].client_pid, None);

    // A server end closed under a client: ServerGone keeps the name alive.
    let client = ClientOptions::new().open(&name).unwrap(); // takes `b`
    drop(b);
    let s = status(&name).unwrap();
    assert_eq!(
        (s.server_gone, s.disconnected, s.instances.len()),
        (1, 1, 1)
    );
    drop(a);
    let s = status(&name).unwrap();
    assert_eq!((s.server_gone, s.current_instances()), (1, 1));
    assert!(s.instances.is_empty());
    drop(client);
    // The acceptor notices the last client leaving within a tick.
    let start = Instant::now();
    loop {
        match status(&name) {
            Err(e) if shmpipe::Error::kind_of(&e) == Some(ErrorKind::FileNotFound) => break,
            Err(e) => panic!("unexpected error {e:?}"),
            Ok(s) => assert!(start.elapsed() < HANG, "name did not vanish: {s:#?}"),
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn one_way_pipes_report_the_direction_they_carry() {
    let name = unique_name("Outbound");
    let server = ServerOptions::new()
        .access(Direction::Outbound)
        .create(&name)
        .unwrap();
    let mut client = ClientOptions::new();
    let client = client.read(true).write(false).open(&name).unwrap();
    (&server).write_all(b"abc").unwrap();
    let s = status(&name).unwrap();
    assert_eq!(s.direction, Direction::Outbound);
    assert_eq!((s.queued_out(), s.queued_in()), (3, 0));
    drop(client);
}

fn status_errors() {
    let missing = unique_name("missing");
    assert_kind(status(&missing), ErrorKind::FileNotFound, "no such pipe");
    assert_kind(status("no prefix"), ErrorKind::InvalidName, "bad name");
    assert_kind(
        status(r"\\elsewhere\pipe\x"),
        ErrorKind::BadNetPath,
        "remote",
    );
    // Case-insensitive, reported as created.
    let name = unique_name("MixedCase");
    let _server = ServerOptions::new().create(&name).unwrap();
    assert_eq!(status(&name.to_lowercase()).unwrap().name, name);
    assert_eq!(status(&name.to_uppercase()).unwrap().name, name);
}

fn list_shows_live_pipes_and_forgets_vanished_ones() {
    let bytes = unique_name("list-byte");
    let messages = unique_name("list-message");
    let b = ServerOptions::new()
        .max_instances(2)
        .create(&bytes)
        .unwrap();
    let m = ServerOptions::new()
        .pipe_type(PipeType::Message)
        .access(Direction::Inbound)
        .create(&messages)
        .unwrap();
    let all = list().unwrap();
    let names: Vec<&str> = all.iter().map(|p| p.name.as_str()).collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted, "sorted by name");
    let lb = all
        .iter()
        .find(|p| p.name == bytes)
        .expect("byte pipe listed");
    assert_eq!(lb, &status(&bytes).unwrap());
    assert_eq!(
        (lb.pipe_type, lb.max_instances, lb.listening),
        (PipeType::Byte, 2, 1)
    );
    let lm = all
        .iter()
        .find(|p| p.name == messages)
        .expect("message pipe listed");
    assert_eq!(
        (lm.pipe_type, lm.direction, lm.server_pid),
        (PipeType::Message, Direction::Inbound, std::process::id())
    );
    // The last instance gone, the name is gone at once.
    drop(b);
    drop(m);
    assert!(listed(&bytes).is_none());
    assert!(listed(&messages).is_none());
}

// ------------------------------------------------------- across processes

fn child_server() {
    let server = ServerOptions::new()
        .pipe_type(PipeType::Message)
        .max_instances(2)
        .security(Security {
            group: Permissions::NONE,
            others: Permissions {
                connect_read: true,
                ..Permissions::NONE
            },
        })
        .create(&env(NAME_ENV))
        .unwrap();
    say("ready");
    server.connect().unwrap();
    let mut buf = [0u8; 5];
    (&server).read_exact(&mut buf).unwrap();
    say(&String::from_utf8_lossy(&buf));
    let _ = hear();
    drop(server);
    child_done();
}

fn status_of_a_pipe_served_by_another_process() {
    let name = unique_name("xproc");
    let mut kid = Kid::spawn("child_server", &[(NAME_ENV, name.clone())]);
    kid.expect("ready");
    let s = status(&name).unwrap();
    assert_eq!(s.server_pid, kid.pid());
    assert_eq!(
        (s.pipe_type, s.max_instances, s.listening),
        (PipeType::Message, 2, 1)
    );
    let mut client = ClientOptions::new().open(&name).unwrap();
    client.write_all(b"hello").unwrap();
    kid.expect("hello");
    let s = status(&name).unwrap();
    assert_eq!(s.client_pids(), [std::process::id()]);
    assert_eq!((s.queued_in(), s.connected), (0, 1));
    let l = listed(&name).expect("listed");
    assert_eq!(l.server_pid, kid.pid());
    drop(client);
    kid.finish();
}

fn child_nobody_looks() {
    become_nobody();
    let mut names = env(NAME_ENV).lines().map(str::to_owned).collect::<Vec<_>>();
    let (private, shared) = (names.remove(0), names.remove(0));
    let show = |r: io::Result<PipeStatus>| match r {
        Ok(s) => format!("ok {}", s.owner_uid),
        Err(e) => format!("{:?}", shmpipe::Error::kind_of(&e)),
    };
    say(&format!("private {}", show(status(&private))));
    say(&format!("shared {}", show(status(&shared))));
    let all = list().unwrap();
    say(&format!(
        "listed {} {}",
        all.iter().any(|p| p.name == private),
        all.iter().any(|p| p.name == shared)
    ));
    child_done();
}

fn only_users_the_security_grants_something_may_look() {
    if !common::require(
        common::is_root(),
        "only_users_the_security_grants_something_may_look",
        "not root (needs to start a process of another uid)",
    ) {
        return;
    }
    let private = unique_name("private");
    let shared = unique_name("shared");
    let _p = ServerOptions::new().create(&private).unwrap();
    let _s = ServerOptions::new()
        .security(Security {
            group: Permissions::NONE,
            others: Permissions {
                connect_read: true,
                ..Permissions::NONE
            },
        })
        .create(&shared)
        .unwrap();
    let mut kid = Kid::spawn(
        "child_nobody_looks",
        &[(NAME_ENV, format!("{private}\n{shared}"))],
    );
    kid.expect("private Some(AccessDenied)");
    kid.expect("shared ok 0");
    kid.expect("listed false true");
    kid.finish();
}

// ------------------------------------------------------ hostile servers

/// A process squatting on the socket of `name`, answering each request
/// with `reply` (or with nothing when `None`) until dropped.
struct FakeServer {
    sock: OwnedFd,
}

impl FakeServer {
    fn bind(name: &str, reply: Option<Vec<u8>>) -> FakeServer {
        use rustix::net::{
            AddressFamily, RecvFlags, SendFlags, SocketAddrUnix, SocketFlags, SocketType,
        };
        let sock = rustix::net::socket_with(
            AddressFamily::UNIX,
            SocketType::SEQPACKET,
            SocketFlags::CLOEXEC,
            None,
        )
        .unwrap();
        let socket_name = PipeName::for_client(name).unwrap().socket_name();
        let addr = SocketAddrUnix::new_abstract_name(socket_name.as_bytes()).unwrap();
        rustix::net::bind(&sock, &addr).unwrap();
        rustix::net::listen(&sock, 16).unwrap();
        let listener = sock.try_clone().unwrap();
        std::thread::spawn(move || {
            let mut held = Vec::new();
            while let Ok(conn) = rustix::net::accept(&listener) {
                let mut buf = [0u8; 4096];
                let _ = rustix::net::recv(&conn, &mut buf, RecvFlags::empty());
                if let Some(r) = &reply {
                    let _ = rustix::net::send(&conn, r, SendFlags::NOSIGNAL);
                }
                held.push(conn); // never hang up: the client must time out
            }
        });
        FakeServer { sock }
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        let _ = rustix::net::shutdown(self.sock.as_fd(), rustix::net::Shutdown::Both);
    }
}

/// An INFO reply (laid out as `named/status/info.rs` documents it) describing `name`
/// with one Connected instance of client `pid`.
fn info_reply(name: &str, pid: u32) -> Vec<u8> {
    let mut p = vec![0x87, 1, 3, 255, 0];
    for v in [77u32, 1000, 0, 0, 1, 0, 0, 0] {
        p.extend_from_slice(&v.to_le_bytes());
    }
    p.extend_from_slice(&(name.len() as u16).to_le_bytes());
    p.extend_from_slice(name.as_bytes());
    p.extend_from_slice(&1u16.to_le_bytes());
    p.extend_from_slice(&[1, 2]);
    p.extend_from_slice(&pid.to_le_bytes());
    p.extend_from_slice(&5u64.to_le_bytes());
    p.extend_from_slice(&6u64.to_le_bytes());
    p
}

fn the_documented_reply_layout_decodes() {
    let name = unique_name("fake-good");
    let _fake = FakeServer::bind(&name, Some(info_reply(&name, 99)));
    let s = status(&name).unwrap();
    assert_eq!((s.server_pid, s.owner_uid, s.connected), (77, 1000, 1));
    assert_eq!(
        (s.pipe_type, s.direction),
        (PipeType::Message, Direction::Duplex)
    );
    assert_eq!(s.client_pids(), [99]);
    assert_eq!(s.instances[0].read_mode, ReadMode::Message);
    assert_eq!((s.queued_out(), s.queued_in()), (5, 6));
}

fn malformed_or_misdirected_replies_are_errors_and_left_out_of_lists() {
    let garbage = unique_name("fake-garbage");
    let truncated = unique_name("fake-truncated");
    let other = unique_name("fake-other");
    let silent = unique_name("fake-silent");
    let mut cut = info_reply(&truncated, 1);
    cut.pop();
    let _f1 = FakeServer::bind(&garbage, Some(b"\x87hello".to_vec()));
    let _f2 = FakeServer::bind(&truncated, Some(cut));
    // A well-formed reply about some other pipe.
    let _f3 = FakeServer::bind(&other, Some(info_reply(&unique_name("elsewhere"), 1)));
    let _f4 = FakeServer::bind(&silent, None);
    for name in [&garbage, &truncated, &other] {
        let e = status(name).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData, "{name}: {e:?}");
    }
    assert_kind(status(&silent), ErrorKind::Timeout, "silent server");
    // A real pipe next to them is still listed; they are not.
    let real = unique_name("real");
    let _server = ServerOptions::new().create(&real).unwrap();
    let all = list().unwrap();
    assert!(all.iter().any(|p| p.name == real));
    for name in [&garbage, &truncated, &other, &silent] {
        assert!(!all.iter().any(|p| &p.name == name), "{name} listed");
    }
}

// ------------------------------------------------------------ lock order

/// `disconnect` of a Listening instance, racing clients that open it and
/// `status` calls that look at it, never deadlocks. (`disconnect` once took
/// the instance's lock before the name's while `open` took them the other
/// way round: this test hung within half a second then.)
fn disconnect_racing_open_and_status_never_deadlocks() {
    let name = unique_name("lock-order");
    let server = ServerOptions::new().max_instances(1).create(&name).unwrap();
    server.set_nonblocking(true).unwrap();
    let work = Duration::from_millis(500);
    let racer = |f: fn(&str)| {
        let name = name.clone();
        common::named::Pending::start("racer", move || {
            let end = Instant::now() + work;
            while Instant::now() < end {
                f(&name);
            }
        })
    };
    let opener = racer(|n| drop(ClientOptions::new().open(n)));
    let looker = racer(|n| drop(status(n)));
    let flipper = common::named::Pending::start("disconnect/connect", move || {
        let end = Instant::now() + work;
        let mut rounds = 0u64;
        while Instant::now() < end {
            let _ = server.disconnect();
            let _ = server.connect(); // re-arms; nonblocking: returns at once
            rounds += 1;
        }
        rounds
    });
    assert!(flipper.finish() > 0);
    opener.finish();
    looker.finish();
}

common::tests! {
    tests: [
        status_follows_attributes_states_pids_and_queued_bytes,
        one_way_pipes_report_the_direction_they_carry,
        status_errors,
        list_shows_live_pipes_and_forgets_vanished_ones,
        status_of_a_pipe_served_by_another_process,
        only_users_the_security_grants_something_may_look,
        the_documented_reply_layout_decodes,
        malformed_or_misdirected_replies_are_errors_and_left_out_of_lists,
        disconnect_racing_open_and_status_never_deadlocks,
    ],
    children: [child_server, child_nobody_looks],
}
