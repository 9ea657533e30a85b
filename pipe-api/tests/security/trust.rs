//! Who may serve a name (issue 9, security items 1 and 2; docs/security.md
//! "Named-pipe rendezvous"): another local user who takes a name first
//! (squatting), or who answers a server's CREATE with a forged JOINED and
//! FWD, gets nothing from a root server or a root client.
//!
//! These tests run as root and start children that drop to `nobody`
//! (`become_nobody`). Not root: they fail under `CI=true`, and say why and
//! return elsewhere. Children are this test binary run again (see
//! [`common::named::Kid`]); the `child_*` tests do nothing in an ordinary
//! run.

use crate::common;

use common::named::{
    become_nobody, child_done, env, hear, kind, raw_control_socket, say, unique_name, Kid, HANG,
    NOBODY,
};
use shmpipe::named::{
    call, wait_available, ClientOptions, Connected, Permissions, Security, ServerOptions,
    WaitTimeout,
};
use shmpipe::{Error, ErrorKind, PeerRole, UntrustedPeer};
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, Instant};

const NAME_ENV: &str = "SHMPIPE_TRUST_TEST_NAME";
const COUNT_ENV: &str = "SHMPIPE_TRUST_TEST_COUNT";

/// Whether the test can run: as root. Under `CI=true` not being root is a
/// failure (CI runs as root; a skip there would pass without testing).
fn running_as_root(test: &str) -> bool {
    common::require(
        common::is_root(),
        test,
        "needs root: it starts a process of another uid",
    )
}

/// Asserts `r` is the AccessDenied whose message names uid 65534, and
/// returns the refused process it reports.
#[track_caller]
fn assert_denied_naming_nobody<T>(r: io::Result<T>, what: &str) -> UntrustedPeer {
    match r {
        Ok(_) => panic!("{what}: expected AccessDenied, got Ok"),
        Err(e) => {
            assert_eq!(kind(&e), Some(ErrorKind::AccessDenied), "{what}: {e:?}");
            assert!(
                e.to_string().contains(&format!("uid {NOBODY}")),
                "{what}: the message does not name uid {NOBODY}: {e}"
            );
            let peer = Error::untrusted_peer_of(&e).expect("a trust refusal names its peer");
            assert_eq!((peer.uid, peer.gid), (NOBODY, NOBODY), "{what}");
            peer
        }
    }
}

/// Retries `f` until it succeeds (for what another process does
/// asynchronously, such as taking a name over); fails on a hang.
#[track_caller]
fn eventually<T>(what: &str, mut f: impl FnMut() -> io::Result<T>) -> T {
    let start = Instant::now();
    loop {
        match f() {
            Ok(v) => return v,
            Err(e) if start.elapsed() > HANG => panic!("{what}: still {e:?} after {HANG:?}"),
            Err(_) => std::thread::sleep(Duration::from_millis(5)),
        }
    }
}

/// As nobody: creates `COUNT_ENV` instances of `NAME_ENV` (as its owner, or
/// as a member of root's name), each answering its client with "nobody";
/// says "ready", then runs until its stdin closes.
fn child_nobody_server() {
    become_nobody();
    let name = env(NAME_ENV);
    let count: usize = env(COUNT_ENV).parse().unwrap();
    for _ in 0..count {
        let server = ServerOptions::new().create(&name).unwrap();
        std::thread::spawn(move || {
            if server.connect().is_ok() {
                let _ = server.send_msg(b"nobody");
            }
            // Keep the instance (and the name) until the process ends.
            std::thread::park();
        });
    }
    say("ready");
    while hear().is_some() {}
    child_done();
}

fn nobody_server(name: &str, count: usize) -> Kid {
    let mut kid = Kid::spawn(
        "child_nobody_server",
        &[(NAME_ENV, name.to_owned()), (COUNT_ENV, count.to_string())],
    );
    kid.expect("ready");
    kid
}

/// Item 1, server side: a name nobody took first is not joined by root's
/// `create` unless root trusts nobody as an owner.
fn create_does_not_join_a_name_another_uid_owns_unless_trusted() {
    if !running_as_root("create_does_not_join_a_name_another_uid_owns_unless_trusted") {
        return;
    }
    let name = unique_name("squat-create");
    let kid = nobody_server(&name, 1);
    let owner = assert_denied_naming_nobody(
        ServerOptions::new().create(&name),
        "root's create on nobody's name",
    );
    assert_eq!((owner.role, owner.pid), (PeerRole::Owner, Some(kid.pid())));
    let e = ServerOptions::new()
        .first_instance(true)
        .create(&name)
        .expect_err("first_instance on an existing name");
    assert_eq!(kind(&e), Some(ErrorKind::AccessDenied));
    let s = ServerOptions::new()
        .trust_owner_uid(NOBODY)
        .create(&name)
        .expect("joins an owner it trusts by uid");
    assert_eq!(s.state().unwrap().current_instances, 2);
    let g = ServerOptions::new()
        .trust_owner_gid(NOBODY)
        .create(&name)
        .expect("joins an owner it trusts by gid");
    assert_eq!(g.state().unwrap().current_instances, 3);
    kid.finish();
}

/// Item 1, client side: a root client does not use nobody's server unless
/// it trusts it, and then learns who it is from the kernel.
fn open_uses_a_server_of_another_uid_only_when_trusted() {
    if !running_as_root("open_uses_a_server_of_another_uid_only_when_trusted") {
        return;
    }
    let name = unique_name("squat-open");
    let kid = nobody_server(&name, 3);
    assert_denied_naming_nobody(
        wait_available(&name, WaitTimeout::Default),
        "wait_available on nobody's name",
    );
    ClientOptions::new()
        .trust_server_uid(NOBODY)
        .wait_available(&name, WaitTimeout::Default)
        .expect("wait_available trusting nobody");
    assert_denied_naming_nobody(
        ClientOptions::new().open(&name),
        "root's open of nobody's pipe",
    );
    for (what, opts) in [
        ("trust_any_server", {
            let mut o = ClientOptions::new();
            o.trust_any_server(true);
            o
        }),
        ("trust_server_uid", {
            let mut o = ClientOptions::new();
            o.trust_server_uid(NOBODY);
            o
        }),
    ] {
        let client = opts.open(&name).unwrap_or_else(|e| panic!("{what}: {e}"));
        let who = client.server_credentials().unwrap();
        assert_eq!((who.uid, who.gid), (NOBODY, NOBODY), "{what}");
        assert_eq!(who.pid, kid.pid(), "{what}");
        assert_eq!(client.server_process_id().unwrap(), kid.pid(), "{what}");
        let mut buf = [0u8; 16];
        let m = client.recv_msg(&mut buf).unwrap();
        assert_eq!(&buf[..m.len], b"nobody", "{what}");
    }
    let mut reply = [0u8; 16];
    assert_denied_naming_nobody(
        call(&name, b"x", &mut reply, WaitTimeout::NoWait),
        "call on nobody's pipe",
    );
    kid.finish();
}

/// Item 1, forwarding: the client's socket is connected to root's name
/// socket, but the instance that serves it is nobody's (a member); the
/// client judges, and reports, nobody.
fn a_client_forwarded_to_another_uids_instance_judges_that_process() {
    if !running_as_root("a_client_forwarded_to_another_uids_instance_judges_that_process") {
        return;
    }
    let name = unique_name("squat-forward");
    let grant = Security {
        group: Permissions::NONE,
        others: Permissions {
            create_instance: true,
            ..Permissions::NONE
        },
    };
    let owner = ServerOptions::new().security(grant).create(&name).unwrap();
    // Root's own instance is taken: the next clients go to nobody's.
    let first = ClientOptions::new().open(&name).unwrap();
    assert_eq!(first.server_credentials().unwrap().pid, std::process::id());
    let kid = nobody_server(&name, 2);
    assert_eq!(owner.state().unwrap().current_instances, 3);
    let server = assert_denied_naming_nobody(
        ClientOptions::new().open(&name),
        "forwarded to nobody's instance",
    );
    assert_eq!(
        (server.role, server.pid),
        (PeerRole::Server, Some(kid.pid()))
    );
    let client = ClientOptions::new()
        .trust_server_uid(NOBODY)
        .open(&name)
        .unwrap();
    let who = client.server_credentials().unwrap();
    assert_eq!((who.pid, who.uid), (kid.pid(), NOBODY), "not the owner");
    kid.finish();
}

/// What the forged owner saw, as it reports it.
const NO_CREATE: &str = "no CREATE";

/// As nobody: binds `NAME_ENV`'s socket before any server and plays its
/// owner. To each CREATE it answers a forged JOINED (owner uid 65534,
/// every right to everyone) and forwards one end of its own socketpair as a
/// client (FWD); then it reports what came back on the other end: `OPENED`
/// (with or without a descriptor), `ERROR <code>`, `EOF` or `nothing`
/// (within a second), or [`NO_CREATE`] if the server sent no CREATE.
fn child_forged_owner() {
    use rustix::net::{RecvFlags, SendFlags};
    become_nobody();
    let name = env(NAME_ENV);
    let (listener, addr) = raw_control_socket(&name);
    rustix::net::bind(&listener, &addr).unwrap();
    rustix::net::listen(&listener, 8).unwrap();
    say("ready");
    // Links stay open until the end: closing one would close the instance.
    let mut links: Vec<OwnedFd> = Vec::new();
    while let Some(line) = hear() {
        assert_eq!(line, "serve");
        let conn = rustix::net::accept(&listener).unwrap();
        timeout(&conn);
        let mut buf = [0u8; 1024];
        let n = rustix::net::recv(&conn, &mut buf, RecvFlags::empty()).map_or(0, |(n, _)| n);
        if buf[..n].first() != Some(&4) {
            say(NO_CREATE);
            continue;
        }
        let mut joined = vec![0x85, 0, 3, 255, 0, 0, 0, 0, 0];
        joined.extend_from_slice(&NOBODY.to_le_bytes());
        joined.extend_from_slice(&NOBODY.to_le_bytes());
        joined.extend_from_slice(&[7, 7]);
        rustix::net::send(&conn, &joined, SendFlags::NOSIGNAL).unwrap();
        let (mine, forwarded) = rustix::net::socketpair(
            rustix::net::AddressFamily::UNIX,
            rustix::net::SocketType::SEQPACKET,
            rustix::net::SocketFlags::CLOEXEC,
            None,
        )
        .unwrap();
        send_fd(&conn, &[0x90, 0x0f], &forwarded);
        drop(forwarded);
        timeout(&mine);
        say(&what_came(&mine));
        links.push(conn);
    }
    child_done();
}

fn timeout(fd: &OwnedFd) {
    rustix::net::sockopt::set_socket_timeout(
        fd,
        rustix::net::sockopt::Timeout::Recv,
        Some(Duration::from_secs(1)),
    )
    .unwrap();
}

/// Sends `bytes` with `fd` attached.
fn send_fd(sock: &OwnedFd, bytes: &[u8], fd: &OwnedFd) {
    use rustix::net::{SendAncillaryBuffer, SendAncillaryMessage, SendFlags};
    let mut space = [std::mem::MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    let fds = [fd.as_fd()];
    assert!(control.push(SendAncillaryMessage::ScmRights(&fds)));
    rustix::net::sendmsg(
        sock,
        &[io::IoSlice::new(bytes)],
        &mut control,
        SendFlags::NOSIGNAL,
    )
    .unwrap();
}

/// The first packet on `sock`, described.
fn what_came(sock: &OwnedFd) -> String {
    use rustix::net::{RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags};
    let mut space = [std::mem::MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(2))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let mut buf = [0u8; 256];
    let r = rustix::net::recvmsg(
        sock,
        &mut [io::IoSliceMut::new(&mut buf)],
        &mut control,
        RecvFlags::CMSG_CLOEXEC,
    );
    let fds = control
        .drain()
        .filter(|m| matches!(m, RecvAncillaryMessage::ScmRights(_)))
        .count();
    match r {
        Err(rustix::io::Errno::AGAIN) => "nothing".to_owned(),
        Err(e) => format!("recv error {e}"),
        Ok(m) if m.bytes == 0 => "EOF".to_owned(),
        Ok(_) if buf[0] == 0x81 => format!("OPENED with {fds} descriptor(s)"),
        Ok(m) if buf[0] == 0x82 && m.bytes == 5 => {
            format!(
                "ERROR {}",
                u32::from_le_bytes([buf[1], buf[2], buf[3], buf[4]])
            )
        }
        Ok(m) => format!("packet {:?}", &buf[..m.bytes]),
    }
}

/// Item 2: nobody binds the name first and forges the owner's side of the
/// handshake. Root's `create` refuses to join it (and sends it nothing);
/// a root server that does trust nobody as an owner joins, but judges the
/// forged client by the kernel (its socketpair: nobody) against its own
/// security, never against the forged JOINED: nobody never gets OPENED or
/// a segment. When the forger leaves, root's instance takes the name over
/// and a legitimate root client connects to it.
fn a_forged_owner_gets_neither_a_join_nor_a_segment() {
    if !running_as_root("a_forged_owner_gets_neither_a_join_nor_a_segment") {
        return;
    }
    let name = unique_name("forged");
    let mut kid = Kid::spawn("child_forged_owner", &[(NAME_ENV, name.clone())]);
    kid.expect("ready");

    // Default rule: refused before anything is sent.
    kid.tell("serve");
    assert_denied_naming_nobody(
        ServerOptions::new().create(&name),
        "create on a forged owner's name",
    );
    kid.expect(NO_CREATE);

    // Trusting nobody as an owner: joins, but the forged client is refused.
    kid.tell("serve");
    let server = ServerOptions::new()
        .trust_owner_uid(NOBODY)
        .create(&name)
        .expect("joins an owner it was told to trust");
    let got = kid.listen();
    assert_eq!(
        got,
        format!("ERROR {}", ErrorKind::AccessDenied.code()),
        "the forged client must be refused"
    );
    server.set_nonblocking(true).unwrap();
    let e = server.connect().expect_err("no client was attached");
    assert_eq!(kind(&e), Some(ErrorKind::PipeListening));
    server.set_nonblocking(false).unwrap();

    // The forger leaves; root's instance takes the name over, and a
    // legitimate root client reaches it.
    kid.finish();
    let client = eventually("a root client opens root's instance", || {
        ClientOptions::new().open(&name)
    });
    assert_eq!(client.server_credentials().unwrap().pid, std::process::id());
    assert!(matches!(
        server.connect().unwrap(),
        Connected::Already | Connected::New
    ));
    client.send_msg(b"legit").unwrap();
    let mut buf = [0u8; 8];
    assert_eq!(server.recv_msg(&mut buf).unwrap().len, 5);
}

common::tests! {
    tests: [
        create_does_not_join_a_name_another_uid_owns_unless_trusted,
        open_uses_a_server_of_another_uid_only_when_trusted,
        a_client_forwarded_to_another_uids_instance_judges_that_process,
        a_forged_owner_gets_neither_a_join_nor_a_segment,
    ],
    children: [child_nobody_server, child_forged_owner],
}
